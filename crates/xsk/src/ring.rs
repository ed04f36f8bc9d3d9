//! Single-producer/single-consumer rings shared with the kernel
//! (`Documentation/networking/af_xdp.rst`, "Rings"; libxdp `xsk.h`).
//!
//! A ring is a power-of-two array of entries plus a free-running `u32` producer and
//! consumer index and a `flags` word, all in one shared mapping. Indices wrap through
//! `u32::MAX`; occupancy is always `producer.wrapping_sub(consumer)` and a slot is
//! `index & mask`.
//!
//! Memory ordering (same pairing as the kernel's `xsk_queue.h`): the producer writes
//! entries, then publishes them with a `Release` store of `producer`; the consumer
//! `Acquire`-loads `producer` before reading entries, then frees slots with a `Release`
//! store of `consumer`, which the producer `Acquire`-loads before overwriting them.
//!
//! Each side keeps cached copies of both indices so that the shared cache line is only
//! touched when the cache says there is not enough room / not enough entries.
//!
//! [`ProducerRing`] is userspace's side of the fill and TX rings; [`ConsumerRing`] of
//! the RX and completion rings. The fake rings in `xsk::testing` (feature `testing`) put both sides on
//! one anonymous mapping so the logic runs without privileges.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Arc;

use crate::if_xdp::{xdp_ring_offset, XDP_RING_NEED_WAKEUP};
use crate::mmap::Mmap;

/// Pointers into one ring mapping, validated at construction.
#[derive(Debug)]
struct RingMem<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    size: u32,
    mask: u32,
    /// Keeps the mapping alive (shared by the two sides of a fake ring).
    _mem: Arc<Mmap>,
    _marker: PhantomData<T>,
}

// SAFETY: the pointers target the mapping kept alive by `_mem`; the indices are
// atomics, and entry slots are only accessed through `&mut` ring methods under the
// SPSC protocol, so moving the ring to another thread is sound for `T: Send`.
unsafe impl<T: Send> Send for RingMem<T> {}

/// Reason a ring layout was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayoutError(pub String);

impl<T: Copy> RingMem<T> {
    fn new(mem: Arc<Mmap>, off: &xdp_ring_offset, size: u32) -> Result<Self, LayoutError> {
        if size == 0 || !size.is_power_of_two() {
            return Err(LayoutError(format!(
                "ring size {size} is not a power of two"
            )));
        }
        let len = mem.len() as u64;
        let word = |name: &str, o: u64| -> Result<NonNull<AtomicU32>, LayoutError> {
            let at = usize::try_from(o)
                .ok()
                .filter(|&at| at % 4 == 0 && at.checked_add(4).is_some_and(|end| end <= mem.len()));
            let Some(at) = at else {
                return Err(LayoutError(format!(
                    "ring {name} offset {o} is misaligned or outside the {len}-byte mapping"
                )));
            };
            // SAFETY: `at + 4 <= mem.len()`, so the offset stays inside the mapping.
            let p = unsafe { mem.as_ptr().add(at) };
            Ok(NonNull::new(p.cast::<AtomicU32>()).expect("mapping pointer is non-null"))
        };
        let producer = word("producer", off.producer)?;
        let consumer = word("consumer", off.consumer)?;
        let flags = word("flags", off.flags)?;
        let entry = std::mem::size_of::<T>() as u64;
        let end = off.desc.checked_add(entry * u64::from(size));
        let at = usize::try_from(off.desc).ok().filter(|_| {
            off.desc % std::mem::align_of::<T>() as u64 == 0 && end.is_some_and(|end| end <= len)
        });
        let Some(at) = at else {
            return Err(LayoutError(format!(
                "ring descriptors at {} x {size} entries of {entry} bytes do not fit the {len}-byte mapping",
                off.desc
            )));
        };
        // SAFETY: `at + size * entry <= len`, so the array is inside the mapping.
        let descs = unsafe { mem.as_ptr().add(at) };
        Ok(RingMem {
            producer,
            consumer,
            flags,
            descs: NonNull::new(descs.cast::<T>()).expect("mapping pointer is non-null"),
            size,
            mask: size - 1,
            _mem: mem,
            _marker: PhantomData,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: validated in `new` to be an aligned, in-bounds u32 of the live mapping;
        // it is only ever accessed atomically (by us and by the kernel).
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    /// Reads the entry at free-running index `idx`.
    fn read(&self, idx: u32) -> T {
        // SAFETY: `idx & mask < size` and the array of `size` entries was validated in
        // `new`. Callers only read slots in [consumer, producer) whose entries are fully
        // written and that nobody writes while they are read: the consumer side after an
        // Acquire load of the producer (the other side has finished writing them and
        // will not touch them until we publish a new consumer index); the producer side
        // only its own published entries (`ProducerRing::take_unconsumed`), which it
        // wrote itself and which the consumer side only ever reads, never writes.
        unsafe { self.descs.as_ptr().add((idx & self.mask) as usize).read() }
    }

    /// Writes the entry at free-running index `idx`.
    fn write(&self, idx: u32, v: T) {
        // SAFETY: in bounds as for `read`. Callers only write slots in
        // [producer, consumer + size), which the consumer side does not read until we
        // Release-store a producer index past them.
        unsafe { self.descs.as_ptr().add((idx & self.mask) as usize).write(v) }
    }

    /// `producer - consumer` as currently published in the shared mapping.
    fn occupancy(&self) -> u32 {
        let cons = self.consumer().load(Ordering::Acquire);
        let prod = self.producer().load(Ordering::Acquire);
        prod.wrapping_sub(cons)
    }

    fn need_wakeup(&self) -> bool {
        // Store-load ordering: our Release store of the producer index must be visible
        // before we read the flag the kernel sets just before it goes to sleep after
        // re-checking the ring, or a wakeup can be lost.
        fence(Ordering::SeqCst);
        self.flags().load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }
}

/// The producing side of a ring (userspace: fill and TX rings).
#[derive(Debug)]
pub struct ProducerRing<T> {
    mem: RingMem<T>,
    cached_prod: u32,
    /// Consumer index plus ring size, so `cached_cons - cached_prod` is the free room.
    cached_cons: u32,
}

impl<T: Copy> ProducerRing<T> {
    pub(crate) fn new(
        mem: Arc<Mmap>,
        off: &xdp_ring_offset,
        size: u32,
    ) -> Result<Self, LayoutError> {
        let mem = RingMem::new(mem, off, size)?;
        let cached_prod = mem.producer().load(Ordering::Relaxed);
        let cached_cons = mem
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(mem.size);
        Ok(ProducerRing {
            mem,
            cached_prod,
            cached_cons,
        })
    }

    /// Number of entries the ring holds.
    pub fn size(&self) -> u32 {
        self.mem.size
    }

    /// Free slots, refreshing the cached consumer index only when fewer than `want`
    /// are known to be free.
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return free;
        }
        self.cached_cons = self
            .mem
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.mem.size);
        self.cached_cons.wrapping_sub(self.cached_prod)
    }

    /// Free slots right now (always reads the shared consumer index).
    pub fn free_now(&self) -> u32 {
        self.mem
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.mem.size)
            .wrapping_sub(self.cached_prod)
    }

    /// Produces as many of `items` as fit and publishes them; returns how many.
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        let want = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let n = self.free(want).min(want);
        for (i, item) in (0..n).zip(items) {
            self.mem.write(self.cached_prod.wrapping_add(i), *item);
        }
        self.submit(n);
        n as usize
    }

    /// Produces one entry; false if the ring is full.
    pub fn push(&mut self, item: T) -> bool {
        self.push_slice(std::slice::from_ref(&item)) == 1
    }

    fn submit(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.cached_prod = self.cached_prod.wrapping_add(n);
        // Release: the entries written above become visible before the new index.
        self.mem
            .producer()
            .store(self.cached_prod, Ordering::Release);
    }

    /// Entries published and not yet consumed by the other side.
    pub fn occupancy(&self) -> u32 {
        self.mem.occupancy()
    }

    /// Hands every entry this side published that the consumer has not consumed yet
    /// (`[consumer, producer)`, oldest first) to `f`, and returns how many. No index
    /// changes: the entries stay in the ring, so this is only meaningful once the
    /// consumer has stopped for good, e.g. the kernel side of a socket whose device is
    /// gone ([`crate::XskSocket::reclaim_dead`]); while the consumer still runs, an
    /// entry handed to `f` may be consumed at the same time. A published consumer index
    /// ahead of our producer or more than a ring behind it (a broken ring) yields
    /// nothing.
    pub(crate) fn take_unconsumed(&mut self, mut f: impl FnMut(T)) -> usize {
        // Acquire: pairs with the consumer's Release store; slots before it are done.
        let cons = self.mem.consumer().load(Ordering::Acquire);
        let n = self.cached_prod.wrapping_sub(cons);
        if n > self.mem.size {
            return 0;
        }
        for i in 0..n {
            f(self.mem.read(cons.wrapping_add(i)));
        }
        n as usize
    }

    /// The consumer has asked to be woken up (`XDP_RING_NEED_WAKEUP`).
    pub fn needs_wakeup(&self) -> bool {
        self.mem.need_wakeup()
    }

    /// Sets or clears `XDP_RING_NEED_WAKEUP` (the kernel's job; for fake rings).
    #[cfg(any(test, feature = "testing"))]
    pub fn set_need_wakeup(&self, on: bool) {
        set_flag(&self.mem, on);
    }
}

/// The consuming side of a ring (userspace: RX and completion rings).
#[derive(Debug)]
pub struct ConsumerRing<T> {
    mem: RingMem<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> ConsumerRing<T> {
    pub(crate) fn new(
        mem: Arc<Mmap>,
        off: &xdp_ring_offset,
        size: u32,
    ) -> Result<Self, LayoutError> {
        let mem = RingMem::new(mem, off, size)?;
        let cached_cons = mem.consumer().load(Ordering::Relaxed);
        let cached_prod = mem.producer().load(Ordering::Acquire);
        Ok(ConsumerRing {
            mem,
            cached_prod,
            cached_cons,
        })
    }

    /// Number of entries the ring holds.
    pub fn size(&self) -> u32 {
        self.mem.size
    }

    /// Entries ready to consume, refreshing the cached producer index only when fewer
    /// than `want` are known to be ready.
    pub fn available(&mut self, want: u32) -> u32 {
        let ready = self.cached_prod.wrapping_sub(self.cached_cons);
        if ready >= want {
            return ready;
        }
        // Acquire: pairs with the producer's Release store; entries up to the new
        // index are fully written.
        self.cached_prod = self.mem.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Entries ready right now (always reads the shared producer index).
    pub fn pending(&self) -> u32 {
        self.mem
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.cached_cons)
    }

    /// Consumes up to `max` entries, handing each to `f`, then releases their slots.
    pub fn consume_with(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        let want = u32::try_from(max).unwrap_or(u32::MAX);
        let n = self.available(want).min(want);
        for i in 0..n {
            f(self.mem.read(self.cached_cons.wrapping_add(i)));
        }
        self.release(n);
        n as usize
    }

    /// How many of the first `max` available entries to consume so that the last one
    /// ends a chain: entries for which `continues` is true belong with the next one. A
    /// chain cut by `max` (or not yet wholly produced) is left for later.
    pub fn whole_chains(&mut self, max: usize, continues: impl Fn(&T) -> bool) -> usize {
        let want = u32::try_from(max).unwrap_or(u32::MAX);
        let n = self.available(want).min(want);
        let mut i = n;
        while i > 0 && continues(&self.mem.read(self.cached_cons.wrapping_add(i - 1))) {
            i -= 1;
        }
        i as usize
    }

    /// Consumes up to `max` entries, appending them to `out`.
    pub fn consume_into(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        out.reserve(max.min(self.mem.size as usize));
        self.consume_with(max, |v| out.push(v))
    }

    /// Consumes one entry.
    pub fn pop(&mut self) -> Option<T> {
        let mut got = None;
        self.consume_with(1, |v| got = Some(v));
        got
    }

    fn release(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.cached_cons = self.cached_cons.wrapping_add(n);
        // Release: our reads of the slots happen before the producer may reuse them.
        self.mem
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }

    /// Entries published and not yet consumed (shared indices).
    pub fn occupancy(&self) -> u32 {
        self.mem.occupancy()
    }

    /// `XDP_RING_NEED_WAKEUP` is set on this ring.
    pub fn needs_wakeup(&self) -> bool {
        self.mem.need_wakeup()
    }

    /// Sets or clears `XDP_RING_NEED_WAKEUP` (the kernel's job; for fake rings).
    #[cfg(any(test, feature = "testing"))]
    pub fn set_need_wakeup(&self, on: bool) {
        set_flag(&self.mem, on);
    }
}

#[cfg(any(test, feature = "testing"))]
fn set_flag<T: Copy>(mem: &RingMem<T>, on: bool) {
    if on {
        mem.flags().fetch_or(XDP_RING_NEED_WAKEUP, Ordering::SeqCst);
    } else {
        mem.flags()
            .fetch_and(!XDP_RING_NEED_WAKEUP, Ordering::SeqCst);
    }
}

/// Fake rings on anonymous memory: both sides of one ring, for tests without privileges.
#[cfg(any(test, feature = "testing"))]
pub mod fake {
    use super::*;

    /// Layout used by fake rings: indices on separate cache lines, entries after.
    pub(crate) const FAKE_OFFSETS: xdp_ring_offset = xdp_ring_offset {
        producer: 0,
        consumer: 64,
        flags: 128,
        desc: 192,
    };

    /// One ring in anonymous memory with both indices starting at `start` (pick a value
    /// near `u32::MAX` to exercise index wraparound). Returns (producer side, consumer side).
    pub fn pair<T: Copy>(size: u32, start: u32) -> (ProducerRing<T>, ConsumerRing<T>) {
        let desc = usize::try_from(FAKE_OFFSETS.desc).expect("FAKE_OFFSETS.desc is 192");
        let len = desc + std::mem::size_of::<T>() * size as usize;
        let mem = Arc::new(Mmap::anonymous(len, false).expect("anonymous mmap for a fake ring"));
        {
            let init =
                RingMem::<T>::new(mem.clone(), &FAKE_OFFSETS, size).expect("fake ring layout");
            init.producer().store(start, Ordering::Relaxed);
            init.consumer().store(start, Ordering::Relaxed);
        }
        let p = ProducerRing::new(mem.clone(), &FAKE_OFFSETS, size).expect("fake ring layout");
        let c = ConsumerRing::new(mem, &FAKE_OFFSETS, size).expect("fake ring layout");
        (p, c)
    }
}

#[cfg(test)]
mod tests {
    use super::fake::pair;
    use crate::if_xdp::XdpDesc;

    #[test]
    fn rejects_bad_sizes() {
        let mem = std::sync::Arc::new(crate::mmap::Mmap::anonymous(4096, false).unwrap());
        let e = super::ProducerRing::<u64>::new(mem.clone(), &super::fake::FAKE_OFFSETS, 3)
            .unwrap_err();
        assert!(e.0.contains("power of two"), "{e:?}");
        let e = super::ConsumerRing::<u64>::new(mem, &super::fake::FAKE_OFFSETS, 1024).unwrap_err();
        assert!(e.0.contains("do not fit"), "{e:?}");
    }

    #[test]
    fn produce_consume_in_order() {
        let (mut p, mut c) = pair::<u64>(8, 0);
        assert_eq!(p.push_slice(&[1, 2, 3]), 3);
        assert_eq!(p.occupancy(), 3);
        let mut out = Vec::new();
        assert_eq!(c.consume_into(&mut out, 2), 2);
        assert_eq!(out, [1, 2]);
        assert_eq!(c.pop(), Some(3));
        assert_eq!(c.pop(), None);
        assert_eq!(p.occupancy(), 0);
    }

    #[test]
    fn batch_is_partial_when_full() {
        let (mut p, mut c) = pair::<u64>(4, 0);
        assert_eq!(p.push_slice(&[10, 11, 12]), 3);
        // Only one slot left: a batch of three is cut to one.
        assert_eq!(p.push_slice(&[13, 14, 15]), 1);
        assert_eq!(p.push_slice(&[16]), 0);
        assert!(!p.push(17));
        assert_eq!(p.free_now(), 0);
        // Consumer frees two; producer sees them only after refreshing its cache.
        assert_eq!(c.consume_with(2, |_| {}), 2);
        assert_eq!(p.free_now(), 2);
        assert_eq!(p.push_slice(&[20, 21, 22]), 2);
        let mut out = Vec::new();
        c.consume_into(&mut out, 100);
        assert_eq!(out, [12, 13, 20, 21]);
    }

    #[test]
    fn wraps_through_u32_overflow() {
        // Start 5 below u32::MAX: indices overflow during the run, slots wrap many times.
        let (mut p, mut c) = pair::<XdpDesc>(8, u32::MAX - 5);
        let mut next = 0u64;
        let mut expect = 0u64;
        for round in 0..1000usize {
            let batch: Vec<XdpDesc> = (0..(round % 7 + 1) as u64)
                .map(|i| XdpDesc {
                    addr: next + i,
                    len: u32::try_from(next + i).unwrap(),
                    options: 0,
                })
                .collect();
            let n = p.push_slice(&batch);
            next += n as u64;
            assert!(p.occupancy() <= 8);
            let mut out = Vec::new();
            c.consume_into(&mut out, round % 5 + 1);
            for d in out {
                assert_eq!(d.addr, expect);
                assert_eq!(u64::from(d.len), expect);
                expect += 1;
            }
        }
        let mut out = Vec::new();
        c.consume_into(&mut out, 8);
        expect += out.len() as u64;
        assert_eq!(expect, next);
        assert!(next > 1000, "the test must actually move entries");
        assert_eq!(p.occupancy(), 0);
    }

    #[test]
    fn consumer_cache_refreshes_only_when_short() {
        let (mut p, mut c) = pair::<u64>(8, 0);
        p.push_slice(&[1, 2]);
        assert_eq!(c.available(1), 2);
        p.push_slice(&[3]);
        // Cache says 2 >= 1: no refresh, the third entry is not yet seen...
        assert_eq!(c.available(1), 2);
        // ...but asking for more refreshes it.
        assert_eq!(c.available(3), 3);
        assert_eq!(c.pending(), 3);
    }

    #[test]
    fn need_wakeup_flag() {
        let (p, c) = pair::<u64>(8, 0);
        assert!(!p.needs_wakeup());
        c.set_need_wakeup(true);
        assert!(p.needs_wakeup());
        assert!(c.needs_wakeup());
        p.set_need_wakeup(false);
        assert!(!c.needs_wakeup());
    }

    #[test]
    fn spsc_across_threads() {
        let (mut p, mut c) = pair::<u64>(64, u32::MAX - 1000);
        const N: u64 = 200_000;
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                let batch: Vec<u64> = (i..(i + 17).min(N)).collect();
                i += p.push_slice(&batch) as u64;
                std::hint::spin_loop();
            }
        });
        let mut expect = 0;
        while expect < N {
            c.consume_with(32, |v| {
                assert_eq!(v, expect);
                expect += 1;
            });
        }
        t.join().unwrap();
    }
}
