//! Fake sockets for tests without privileges (feature `testing`, always on in this
//! crate's own tests): an [`XskSocket`] whose four rings live in anonymous memory, and
//! a [`FakeKernel`] holding the other side of each ring, so a test can play the kernel
//! (consume the fill and TX rings, produce RX and completions, set need_wakeup).
//! Syscalls on a fake socket (`kick_tx`, `wakeup_rx`) only count.
//!
//! The fake kernel reads and writes frames it holds (taken from the fill or TX ring)
//! without the caller-ownership check of [`Umem::chunk_mut`]; that is sound because a
//! `Umem` with fake sockets can never get a real one (and vice versa), so no real kernel
//! accesses the area.

use crate::if_xdp::{XdpDesc, XDP_PACKET_HEADROOM, XDP_PKT_CONTD};
use crate::ring::{fake::pair, ConsumerRing, ProducerRing};
use crate::{Umem, XskSocket};

pub use crate::ring::fake::pair as ring_pair;

/// The kernel's side of a fake socket's rings.
#[derive(Debug)]
pub struct FakeKernel {
    pub fill: ConsumerRing<u64>,
    pub comp: ProducerRing<u64>,
    pub rx: ProducerRing<XdpDesc>,
    pub tx: ConsumerRing<XdpDesc>,
    /// Offset of packet data in a received chunk (UMEM headroom + XDP_PACKET_HEADROOM,
    /// as in copy mode).
    pub rx_data_offset: u64,
    /// Reused by the batch calls, so that a benchmark's kernel side does not allocate.
    scratch_addrs: Vec<u64>,
    scratch_descs: Vec<XdpDesc>,
}

/// A fake socket on `umem` with the ring sizes of its config, all indices starting at
/// `start` (use a value near `u32::MAX` to test wraparound).
pub fn fake_socket(umem: &Umem, need_wakeup: bool, start: u32) -> (XskSocket, FakeKernel) {
    let c = umem.config();
    let (fill_p, fill_c) = pair::<u64>(c.fill_size, start);
    let (comp_p, comp_c) = pair::<u64>(c.comp_size, start);
    let (rx_p, rx_c) = pair::<XdpDesc>(c.rx_size.max(1), start);
    let (tx_p, tx_c) = pair::<XdpDesc>(c.tx_size.max(1), start);
    let sock = XskSocket::fake(umem, need_wakeup, Some(rx_c), Some(tx_p), fill_p, comp_c);
    let kernel = FakeKernel {
        fill: fill_c,
        comp: comp_p,
        rx: rx_p,
        tx: tx_c,
        rx_data_offset: u64::from(c.headroom + XDP_PACKET_HEADROOM),
        scratch_addrs: Vec::new(),
        scratch_descs: Vec::new(),
    };
    (sock, kernel)
}

impl FakeKernel {
    /// Receives one frame as copy mode does: takes a fill-ring frame, copies `payload`
    /// into it after the headroom and produces an RX descriptor. `None` if the fill ring
    /// is empty or the RX ring is full (nothing is taken then).
    pub fn receive(&mut self, umem: &mut Umem, payload: &[u8]) -> Option<XdpDesc> {
        if self.rx.free(1) == 0 || self.fill.available(1) == 0 {
            return None;
        }
        let base = self.fill.pop()?;
        let addr = base + self.rx_data_offset;
        let (chunk, off) = umem.fake_kernel_chunk_mut(addr);
        chunk[off..off + payload.len()].copy_from_slice(payload);
        let desc = XdpDesc {
            addr,
            len: u32::try_from(payload.len()).expect("the payload fit a frame (copied above)"),
            options: 0,
        };
        assert!(self.rx.push(desc));
        Some(desc)
    }

    /// Receives up to `n` copies of `payload` at once, as a NIC's receive poll does:
    /// takes fill-ring frames, copies `payload` into each after the headroom and
    /// publishes their RX descriptors with one producer update. Returns how many (fewer
    /// when the fill ring runs short or the RX ring is full).
    pub fn receive_batch(&mut self, umem: &mut Umem, payload: &[u8], n: usize) -> usize {
        let want = u32::try_from(n).unwrap_or(u32::MAX);
        let n = self.rx.free(want).min(self.fill.available(want)).min(want) as usize;
        let len = u32::try_from(payload.len()).expect("a payload fits a frame");
        let off = self.rx_data_offset;
        let addrs = &mut self.scratch_addrs;
        addrs.clear();
        self.fill.consume_with(n, |base| addrs.push(base + off));
        umem.fake_kernel_write(addrs, payload);
        self.scratch_descs.clear();
        self.scratch_descs.extend(addrs.iter().map(|&addr| XdpDesc {
            addr,
            len,
            options: 0,
        }));
        let pushed = self.rx.push_slice(&self.scratch_descs);
        assert_eq!(pushed, n, "room was checked above");
        pushed
    }

    /// Transmits up to `max` TX descriptors and completes them with one producer update,
    /// as [`FakeKernel::transmit`] without returning them; returns how many.
    pub fn transmit_batch(&mut self, max: usize) -> usize {
        let want = u32::try_from(max).unwrap_or(u32::MAX);
        let room = self.comp.free(want).min(want) as usize;
        let addrs = &mut self.scratch_addrs;
        addrs.clear();
        self.tx.consume_with(room, |d| addrs.push(d.addr));
        let done = self.comp.push_slice(addrs);
        assert_eq!(done, addrs.len(), "room was checked above");
        done
    }

    /// Transmits up to `max` TX descriptors (as many as the completion ring has room
    /// for), completing their addresses; returns the descriptors sent.
    pub fn transmit(&mut self, max: usize) -> Vec<XdpDesc> {
        let room = self.comp.free(u32::try_from(max).unwrap_or(u32::MAX)) as usize;
        let mut sent = Vec::new();
        self.tx.consume_into(&mut sent, max.min(room));
        for d in &sent {
            assert!(self.comp.push(d.addr));
        }
        sent
    }

    /// As [`FakeKernel::transmit`], also returning a copy of each frame's `len` bytes as
    /// the wire would see them.
    pub fn transmit_with_data(&mut self, umem: &Umem, max: usize) -> Vec<(XdpDesc, Vec<u8>)> {
        self.transmit(max)
            .into_iter()
            .map(|d| {
                let (chunk, off) = umem.fake_kernel_chunk(d.addr);
                (d, chunk[off..off + d.len as usize].to_vec())
            })
            .collect()
    }

    /// Receives `payload` as multi-buffer copy mode does a frame larger than one
    /// buffer: pieces of `piece` bytes (the last one shorter) into fill-ring frames,
    /// `XDP_PKT_CONTD` on all but the last descriptor, published with one producer
    /// update. `None` (nothing taken) when the fill ring or the RX ring is too short.
    pub fn receive_chain(
        &mut self,
        umem: &mut Umem,
        payload: &[u8],
        piece: usize,
    ) -> Option<Vec<XdpDesc>> {
        let descs = self.stage_chain(umem, payload, piece)?;
        assert_eq!(self.rx.push_slice(&descs), descs.len(), "room was checked");
        Some(descs)
    }

    /// As [`FakeKernel::receive_chain`], without producing the descriptors: the caller
    /// pushes them onto `rx` (e.g. a chain in two producer updates).
    pub fn stage_chain(
        &mut self,
        umem: &mut Umem,
        payload: &[u8],
        piece: usize,
    ) -> Option<Vec<XdpDesc>> {
        let pieces: Vec<&[u8]> = payload.chunks(piece).collect();
        let n = u32::try_from(pieces.len()).ok()?;
        if self.rx.free(n) < n || self.fill.available(n) < n {
            return None;
        }
        let last = pieces.len() - 1;
        let mut descs = Vec::with_capacity(pieces.len());
        for (i, p) in pieces.into_iter().enumerate() {
            let addr = self.fill.pop()? + self.rx_data_offset;
            let (chunk, off) = umem.fake_kernel_chunk_mut(addr);
            chunk[off..off + p.len()].copy_from_slice(p);
            descs.push(XdpDesc {
                addr,
                len: u32::try_from(p.len()).expect("a piece fits a frame"),
                options: if i < last { XDP_PKT_CONTD } else { 0 },
            });
        }
        Some(descs)
    }

    /// As [`FakeKernel::transmit_with_data`], a frame per descriptor chain: each
    /// frame's descriptors and its bytes put together.
    pub fn transmit_frames(&mut self, umem: &Umem, max: usize) -> Vec<(Vec<XdpDesc>, Vec<u8>)> {
        let mut frames: Vec<(Vec<XdpDesc>, Vec<u8>)> = Vec::new();
        let mut open = false;
        for (d, bytes) in self.transmit_with_data(umem, max) {
            if !open {
                frames.push((Vec::new(), Vec::new()));
            }
            let f = frames.last_mut().expect("pushed above");
            f.0.push(d);
            f.1.extend_from_slice(&bytes);
            open = d.options & XDP_PKT_CONTD != 0;
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UmemConfig;

    fn cfg() -> UmemConfig {
        UmemConfig {
            frame_count: 64,
            frame_size: 2048,
            headroom: 0,
            fill_size: 16,
            comp_size: 16,
            rx_size: 16,
            tx_size: 8,
            tx_metadata: crate::TxMetadata::Off,
            multi_buffer: crate::MultiBuffer::Off,
        }
    }

    #[test]
    fn forward_loop_keeps_every_frame_accounted() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut a, mut ka) = fake_socket(&umem, true, u32::MAX - 3);
        let (mut b, mut kb) = fake_socket(&umem, true, u32::MAX - 40);
        umem.check_accounting(&[&a, &b], 0).unwrap();

        let mut rx = Vec::new();
        let mut held: Vec<XdpDesc> = Vec::new();
        let mut forwarded = 0usize;
        for round in 0..500u32 {
            // Userspace keeps both fill rings topped up.
            a.fill(&mut umem, 16);
            b.fill(&mut umem, 16);
            umem.check_accounting(&[&a, &b], held.len()).unwrap();

            // "Kernel" receives a few frames on a.
            for i in 0..(round % 6) {
                // The low byte of the round tags the frame; wrapping is fine.
                let payload = [round.to_le_bytes()[0], u8::try_from(i).unwrap(), 0xee];
                if ka.receive(&mut umem, &payload).is_none() {
                    break;
                }
            }
            umem.check_accounting(&[&a, &b], held.len()).unwrap();

            // Worker: rx on a, rewrite in place, tx on b.
            rx.clear();
            a.rx_batch(&mut umem, &mut rx, 4);
            for d in &rx {
                let (chunk, off) = umem.chunk_mut(d.addr);
                assert_eq!(chunk[off + 2], 0xee);
                chunk[off + 2] = 0xdd;
            }
            held.extend_from_slice(&rx);
            umem.check_accounting(&[&a, &b], held.len()).unwrap();
            assert_eq!(umem.caller_owned(), held.len());
            // The "kernel" sleeps on every other round and asks for a kick.
            kb.tx.set_need_wakeup(round % 2 == 0);
            let n = b.tx_push(&mut umem, &held);
            held.drain(..n);
            assert_eq!(umem.caller_owned(), held.len());
            forwarded += n;
            if b.tx_needs_wakeup() {
                b.kick_tx().unwrap();
            }
            umem.check_accounting(&[&a, &b], held.len()).unwrap();

            // "Kernel" transmits some of b's TX ring; the frames carry the rewrite.
            for (_, data) in kb.transmit_with_data(&umem, (round % 3) as usize) {
                assert_eq!(data[2], 0xdd);
            }
            umem.check_accounting(&[&a, &b], held.len()).unwrap();
            b.complete(&mut umem, 5);
            umem.check_accounting(&[&a, &b], held.len()).unwrap();
        }
        assert!(forwarded > 300, "forwarded only {forwarded}");
        assert_eq!(b.wakeup_counters().tx_kicks, 250);

        drain(&mut umem, held, &mut b, &mut ka, &mut kb);
        assert_eq!(umem.caller_owned(), 0);
        umem.check_accounting(&[&a, &b], 0).unwrap();
        assert_eq!(umem.free_frames(), 64);
    }

    /// End of a forward loop from `a` (kernel `ka`) to `b` (kernel `kb`): every frame
    /// returns to the free list.
    fn drain(
        umem: &mut Umem,
        held: Vec<XdpDesc>,
        b: &mut XskSocket,
        ka: &mut FakeKernel,
        kb: &mut FakeKernel,
    ) {
        for d in held {
            umem.free_frame(d.addr);
        }
        loop {
            let sent = kb.transmit(8).len();
            let done = b.complete(umem, 64);
            if sent == 0 && done == 0 {
                break;
            }
        }
        assert_eq!(b.tx_outstanding(), 0);
        // Kernel gives back unused fill frames (as if the sockets were torn down).
        // Those frames were the kernel's, so they come back the way completions do.
        while let Some(addr) = ka.fill.pop() {
            umem.free_completed(addr);
        }
        while let Some(addr) = kb.fill.pop() {
            umem.free_completed(addr);
        }
    }

    #[test]
    fn batch_receive_and_transmit_move_whole_batches() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, u32::MAX - 5);
        assert_eq!(s.fill(&mut umem, 10), 10);
        // The RX ring holds 16, the fill ring had 10: 10 received, each with the payload.
        assert_eq!(k.receive_batch(&mut umem, b"frame", 12), 10);
        assert_eq!(
            k.receive_batch(&mut umem, b"frame", 4),
            0,
            "fill ring empty"
        );
        let mut rx = Vec::new();
        assert_eq!(s.rx_batch(&mut umem, &mut rx, 16), 10);
        for d in &rx {
            assert_eq!(d.len, 5);
            let (chunk, off) = umem.chunk(d.addr);
            assert_eq!(&chunk[off..off + 5], b"frame");
        }
        // TX ring of 8: 8 pushed; the completion ring takes them in one batch of 6, then 2.
        assert_eq!(s.tx_push(&mut umem, &rx), 8);
        assert_eq!(k.transmit_batch(6), 6);
        assert_eq!(k.transmit_batch(6), 2);
        assert_eq!(k.transmit_batch(6), 0);
        assert_eq!(s.complete(&mut umem, 16), 8);
        umem.check_accounting(&[&s], 2).unwrap();
        for d in &rx[8..] {
            umem.free_frame(d.addr);
        }
        umem.check_accounting(&[&s], 0).unwrap();
        assert_eq!(umem.free_frames(), 64);
    }

    #[test]
    fn accounting_detects_leak_and_double_count() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, 0);
        s.fill(&mut umem, 4);
        k.receive(&mut umem, b"x").unwrap();
        let mut rx = Vec::new();
        assert_eq!(s.rx_batch(&mut umem, &mut rx, 8), 1);
        // Caller forgot to declare the frame it holds: one frame is unaccounted.
        let e = umem.check_accounting(&[&s], 0).unwrap_err();
        assert!(e.contains("leaked or held by the kernel"), "{e}");
        assert_eq!(umem.accounting(&[&s], 0).kernel_held(), 1);
        // Claiming too many: a frame would be in two places.
        let e = umem.check_accounting(&[&s], 2).unwrap_err();
        assert!(e.contains("two places"), "{e}");
        umem.check_accounting(&[&s], 1).unwrap();
        let a = umem.accounting(&[&s], 1);
        assert_eq!((a.free, a.fill, a.rx, a.held_by_caller), (60, 3, 0, 1));
        // A socket of another UMEM is reported, not silently summed.
        let other = Umem::new(&cfg()).unwrap();
        let (o, _ok) = fake_socket(&other, true, 0);
        assert!(umem
            .check_accounting(&[&s, &o], 1)
            .unwrap_err()
            .contains("not on this UMEM"));
    }

    #[test]
    fn fill_is_limited_by_ring_and_free_list() {
        let mut umem = Umem::new(&UmemConfig {
            frame_count: 20,
            ..cfg()
        })
        .unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, u32::MAX);
        assert_eq!(s.fill(&mut umem, 100), 16); // ring size
        assert_eq!(s.fill(&mut umem, 100), 0);
        assert_eq!(umem.free_frames(), 4);
        for _ in 0..10 {
            k.fill.pop().unwrap();
        }
        assert_eq!(s.fill(&mut umem, 100), 4); // free list
        assert_eq!(umem.free_frames(), 0);
        // Frames go out low addresses first, each exactly once.
        let mut seen = std::collections::HashSet::new();
        while let Some(a) = k.fill.pop() {
            assert!(seen.insert(a));
        }
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn tx_push_partial_when_ring_full() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, u32::MAX - 2);
        let descs: Vec<XdpDesc> = (0..12)
            .map(|_| XdpDesc {
                addr: umem.alloc_frame().unwrap() + 256,
                len: 60,
                options: 0,
            })
            .collect();
        assert_eq!(s.tx_free(), 8);
        assert_eq!(s.tx_push(&mut umem, &descs), 8);
        assert_eq!(s.tx_free(), 0);
        assert_eq!(s.tx_push(&mut umem, &descs[8..]), 0);
        assert_eq!(s.tx_queued(), 8);
        assert_eq!(k.transmit(3).len(), 3);
        assert_eq!(s.tx_free(), 3);
        assert_eq!(s.tx_push(&mut umem, &descs[8..]), 3);
        // Frames not pushed stay the caller's; pushed ones do not.
        assert!(umem.is_caller_owned(descs[11].addr));
        assert!(!umem.is_caller_owned(descs[10].addr));
        assert_eq!(umem.caller_owned(), 1);
        assert_eq!(s.tx_outstanding(), 11);
        umem.check_accounting(&[&s], 1).unwrap();
        k.transmit(100);
        assert_eq!(s.complete(&mut umem, 100), 11);
        assert_eq!(s.tx_outstanding(), 0);
        // Completed addresses were normalised to chunk bases.
        assert_eq!(umem.free_frames(), 63);
    }

    /// A socket with 4 frames in its fill ring and one frame received (caller-owned).
    fn one_received() -> (Umem, XskSocket, FakeKernel, XdpDesc) {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, 0);
        assert_eq!(s.fill(&mut umem, 4), 4);
        k.receive(&mut umem, b"hello").unwrap();
        let mut rx = Vec::new();
        assert_eq!(s.rx_batch(&mut umem, &mut rx, 8), 1);
        (umem, s, k, rx[0])
    }

    #[test]
    #[should_panic(
        expected = "Umem::chunk_mut: UMEM frame 0x800 (address 0x800) is not owned by the caller"
    )]
    fn chunk_mut_on_fill_ring_frame_panics() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, _k) = fake_socket(&umem, true, 0);
        s.fill(&mut umem, 4); // frames 0x0..0x1800 are the kernel's now
        let _ = umem.chunk_mut(0x800);
    }

    #[test]
    #[should_panic(
        expected = "Umem::chunk: UMEM frame 0x1000 (address 0x1010) is not owned by the caller"
    )]
    fn chunk_on_fill_ring_frame_panics() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, _k) = fake_socket(&umem, true, 0);
        s.fill(&mut umem, 4);
        let _ = umem.chunk(0x1010);
    }

    #[test]
    fn chunk_mut_after_rx_batch_works() {
        let (mut umem, _s, k, d) = one_received();
        assert!(umem.is_caller_owned(d.addr));
        assert_eq!(umem.caller_owned(), 1);
        assert_eq!(umem.chunk_base(d.addr) + k.rx_data_offset, d.addr);
        let (chunk, off) = umem.chunk_mut(d.addr);
        assert_eq!(&chunk[off..off + 5], b"hello");
        chunk[off] = b'j';
        let (chunk, off) = umem.chunk(d.addr);
        assert_eq!(&chunk[off..off + 5], b"jello");
    }

    #[test]
    #[should_panic(
        expected = "Umem::chunk_mut: UMEM frame 0x1800 (address 0x1900) is not owned by the caller"
    )]
    fn chunk_mut_after_tx_push_panics() {
        let (mut umem, mut s, _k, d) = one_received();
        let _ = umem.chunk_mut(d.addr);
        assert_eq!(s.tx_push(&mut umem, &[d]), 1);
        assert!(!umem.is_caller_owned(d.addr));
        let _ = umem.chunk_mut(d.addr);
    }

    #[test]
    #[should_panic(
        expected = "Umem::free_frame: UMEM frame 0x1800 (address 0x1900) is not owned by the caller"
    )]
    fn free_frame_after_tx_push_panics() {
        let (mut umem, mut s, _k, d) = one_received();
        assert_eq!(s.tx_push(&mut umem, &[d]), 1);
        umem.free_frame(d.addr);
    }

    #[test]
    #[should_panic(
        expected = "Umem::free_frame: UMEM frame 0x1800 (address 0x1800) is not owned by the caller"
    )]
    fn free_frame_of_fill_ring_frame_panics() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, _k) = fake_socket(&umem, true, 0);
        s.fill(&mut umem, 4);
        umem.free_frame(0x1800);
    }

    #[test]
    fn tx_push_stops_at_a_frame_the_caller_does_not_own() {
        let (mut umem, mut s, mut k, d) = one_received();
        // 0x800 is in the fill ring: not the caller's.
        let a = umem.alloc_frame().unwrap();
        let b = umem.alloc_frame().unwrap();
        let desc = |addr| XdpDesc {
            addr,
            len: 60,
            options: 0,
        };
        let descs = [d, desc(a), desc(0x800), desc(b)];
        assert_eq!(s.tx_push(&mut umem, &descs), 2);
        assert_eq!(s.tx_queued(), 2);
        assert!(!umem.is_caller_owned(d.addr) && !umem.is_caller_owned(a));
        assert!(
            umem.is_caller_owned(b),
            "frames after the refused one stay the caller's"
        );
        assert_eq!(s.tx_push(&mut umem, &descs[2..]), 0);
        // The same frame twice in one batch: the second is refused.
        assert_eq!(s.tx_push(&mut umem, &[desc(b), desc(b + 100)]), 1);
        assert_eq!(s.tx_queued(), 3);
        // Outside the UMEM: refused.
        let c = umem.alloc_frame().unwrap();
        assert_eq!(s.tx_push(&mut umem, &[desc(64 * 2048), desc(c)]), 0);
        umem.free_frame(c);
        assert_eq!(umem.caller_owned(), 0);
        // The pushed frames complete back to the free list without tripping the checks.
        assert_eq!(k.transmit(8).len(), 3);
        assert_eq!(s.complete(&mut umem, 8), 3);
        umem.check_accounting(&[&s], 0).unwrap();
        assert_eq!(umem.free_frames(), 64 - 3);
    }

    #[test]
    fn tx_push_refuses_descriptors_the_kernel_would_reject_for_tx_metadata() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, 0);
        let mut desc = |off: u64| XdpDesc {
            addr: umem.alloc_frame().unwrap() + off,
            len: 60,
            options: 0,
        };
        let (plain, early, late) = (desc(0), desc(23), desc(24));
        // Without TX metadata, a descriptor asking for it would fail every sendto.
        let flagged = XdpDesc {
            options: crate::if_xdp::XDP_TX_METADATA,
            ..late
        };
        assert_eq!(s.tx_push(&mut umem, &[flagged]), 0);
        assert_eq!(s.tx_push(&mut umem, &[plain]), 1);
        // With 24 bytes of metadata, data must start at least 24 bytes into its chunk.
        umem.set_tx_metadata_len(24);
        assert_eq!(s.tx_push(&mut umem, &[early, late]), 0);
        assert_eq!(s.tx_push(&mut umem, &[late, early]), 1);
        assert!(umem.is_caller_owned(early.addr));
        umem.free_frame(early.addr);
        assert_eq!(k.transmit(8), vec![plain, late]);
        assert_eq!(s.complete(&mut umem, 8), 2);
        umem.check_accounting(&[&s], 0).unwrap();
    }

    #[test]
    fn tx_push_on_a_full_ring_keeps_ownership() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, _k) = fake_socket(&umem, true, 0);
        let descs: Vec<XdpDesc> = (0..10)
            .map(|_| XdpDesc {
                addr: umem.alloc_frame().unwrap(),
                len: 60,
                options: 0,
            })
            .collect();
        assert_eq!(s.tx_push(&mut umem, &descs), 8);
        assert_eq!(umem.caller_owned(), 2);
        assert!(descs[8..].iter().all(|d| umem.is_caller_owned(d.addr)));
        for d in &descs[8..] {
            umem.free_frame(d.addr);
        }
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "outside the UMEM"))]
    fn rx_descriptor_outside_the_umem_is_dropped() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, 0);
        assert!(k.rx.push(XdpDesc {
            addr: 64 * 2048 + 256,
            len: 60,
            options: 0,
        }));
        let mut rx = Vec::new();
        assert_eq!(s.rx_batch(&mut umem, &mut rx, 8), 0);
        assert!(rx.is_empty());
        assert_eq!(umem.caller_owned(), 0);
    }

    #[test]
    fn reclaim_dead_returns_every_frame_on_the_four_rings() {
        // Indices start just below u32::MAX so that they wrap during the test.
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut dead, mut kd) = fake_socket(&umem, true, u32::MAX - 2);
        let (mut live, mut kl) = fake_socket(&umem, true, u32::MAX - 9);
        assert_eq!(dead.fill(&mut umem, 16), 16);
        assert_eq!(live.fill(&mut umem, 8), 8);
        // The "kernel" receives 5 frames on the dead socket; the worker takes 2 of them
        // and forwards one out of each socket; the other 3 stay on the RX ring.
        for i in 0..5u8 {
            kd.receive(&mut umem, &[i; 60]).unwrap();
        }
        let mut rx = Vec::new();
        assert_eq!(dead.rx_batch(&mut umem, &mut rx, 2), 2);
        assert_eq!(live.tx_push(&mut umem, &rx[..1]), 1);
        assert_eq!(dead.tx_push(&mut umem, &rx[1..]), 1);
        // Three more TX frames on the dead socket from the free list, one sent and
        // completed (completion not consumed), three never taken by the "kernel".
        let extra: Vec<XdpDesc> = (0..3)
            .map(|_| XdpDesc {
                addr: umem.alloc_frame().unwrap() + 256,
                len: 60,
                options: 0,
            })
            .collect();
        assert_eq!(dead.tx_push(&mut umem, &extra), 3);
        assert_eq!(kd.transmit(1).len(), 1);
        // One frame held by the caller across the teardown.
        let held = umem.alloc_frame().unwrap();
        let o = dead.ring_occupancy();
        assert_eq!((o.fill, o.rx, o.tx, o.completion), (11, 3, 3, 1));
        umem.check_accounting(&[&dead, &live], 1).unwrap();
        let free_before = umem.free_frames();

        assert_eq!(
            dead.reclaim_dead(&mut umem).map_err(|e| e.to_string()),
            Ok(18)
        );
        assert_eq!(umem.free_frames(), free_before + 18);
        // Exact: every frame is on the free list, the live socket's rings or held.
        umem.check_accounting(&[&live], 1).unwrap();
        assert!(umem.is_caller_owned(held));
        assert_eq!(umem.caller_owned(), 1);
        umem.free_frame(held);
        // The live socket keeps working; its frames come back the usual way.
        assert_eq!(kl.transmit(8).len(), 1);
        assert_eq!(live.complete(&mut umem, 8), 1);
        while let Some(addr) = kl.fill.pop() {
            umem.free_completed(addr);
        }
        umem.check_accounting(&[&live], 0).unwrap();
        assert_eq!(umem.free_frames(), 64);
        // Reclaimed frames are ordinary free frames: each can be allocated exactly once.
        let mut seen = std::collections::HashSet::new();
        while let Some(a) = umem.alloc_frame() {
            assert!(seen.insert(a), "frame {a:#x} twice on the free list");
        }
        assert_eq!(seen.len(), 64);
    }

    #[test]
    fn reclaim_dead_of_an_idle_socket_returns_its_fill_ring() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, 7);
        assert_eq!(s.fill(&mut umem, 16), 16);
        // The "kernel" consumed 4 fill entries and received into them (RX ring, not
        // taken yet); 12 are still on the fill ring.
        for _ in 0..4 {
            k.receive(&mut umem, b"x").unwrap();
        }
        assert_eq!(s.reclaim_dead(&mut umem).unwrap(), 16);
        umem.check_accounting(&[], 0).unwrap();
        assert_eq!(umem.free_frames(), 64);
    }

    #[test]
    fn fake_and_real_sockets_never_share_a_umem() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let _fake = fake_socket(&umem, true, 0);
        let e = XskSocket::new(&mut umem, &crate::SocketConfig::new(1, 0)).unwrap_err();
        assert!(e.to_string().contains("fake"), "{e}");
    }

    #[test]
    fn need_wakeup_flags() {
        let umem = Umem::new(&cfg()).unwrap();
        let (s, k) = fake_socket(&umem, true, 0);
        assert!(!s.tx_needs_wakeup());
        assert!(!s.fill_needs_wakeup());
        k.tx.set_need_wakeup(true);
        k.fill.set_need_wakeup(true);
        assert!(s.tx_needs_wakeup());
        assert!(s.fill_needs_wakeup());
        s.wakeup_rx().unwrap();
        assert_eq!(s.wakeup_counters().rx_wakeups, 1);

        // Without need_wakeup every batch needs a syscall.
        let (s, _k) = fake_socket(&umem, false, 0);
        assert!(s.tx_needs_wakeup());
        assert!(s.fill_needs_wakeup());
    }

    fn multi_buffer_cfg() -> UmemConfig {
        UmemConfig {
            multi_buffer: crate::MultiBuffer::Auto,
            ..cfg()
        }
    }

    #[test]
    fn rx_batch_hands_out_whole_chains_only() {
        let mut umem = Umem::new(&multi_buffer_cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, u32::MAX - 1);
        assert!(s.multi_buffer());
        assert_eq!(s.fill(&mut umem, 10), 10);
        let one = k.receive_chain(&mut umem, &[7; 100], 40).unwrap();
        assert_eq!(one.len(), 3);
        assert_eq!(
            one.iter().map(|d| (d.len, d.options)).collect::<Vec<_>>(),
            [(40, XDP_PKT_CONTD), (40, XDP_PKT_CONTD), (20, 0)]
        );
        // A second chain published in two producer updates: only its first half so far.
        let two = k.stage_chain(&mut umem, &[8; 90], 30).unwrap();
        assert!(k.rx.push(two[0]) && k.rx.push(two[1]));
        let mut rx = Vec::new();
        // `max` cutting the first chain hands out nothing of it.
        assert_eq!(s.rx_batch(&mut umem, &mut rx, 2), 0);
        assert_eq!(
            s.rx_batch(&mut umem, &mut rx, 16),
            3,
            "the whole first chain"
        );
        assert_eq!(rx, one);
        assert_eq!(
            s.rx_batch(&mut umem, &mut rx, 16),
            0,
            "the second is unfinished"
        );
        assert!(k.rx.push(two[2]));
        assert_eq!(s.rx_batch(&mut umem, &mut rx, 16), 3);
        assert_eq!(&rx[3..], &two[..]);
        for d in rx {
            umem.free_frame(d.addr);
        }
    }

    #[test]
    fn tx_push_moves_whole_chains_only() {
        let mut umem = Umem::new(&multi_buffer_cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, 0);
        assert_eq!(s.fill(&mut umem, 16), 16);
        let mut descs = Vec::new();
        for _ in 0..4 {
            descs.extend(k.receive_chain(&mut umem, &[1; 50], 20).unwrap());
        }
        let mut rx = Vec::new();
        assert_eq!(s.rx_batch(&mut umem, &mut rx, 16), 12);
        // TX ring of 8: two chains of three fit, the third would be cut after two.
        assert_eq!(s.tx_push(&mut umem, &rx), 6);
        let frames = k.transmit_frames(&umem, 16);
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|(d, b)| d.len() == 3 && b == &[1; 50]));
        assert_eq!(s.complete(&mut umem, 16), 6);
        assert_eq!(s.tx_push(&mut umem, &rx[6..]), 6);
        assert_eq!(k.transmit_frames(&umem, 16).len(), 2);
        s.complete(&mut umem, 16);

        // A socket without multi-buffer pushes nothing chained.
        let mut plain = Umem::new(&cfg()).unwrap();
        let (mut p, _kp) = fake_socket(&plain, true, 0);
        assert!(!p.multi_buffer());
        let d = plain.alloc_frame().unwrap();
        let chained = XdpDesc {
            addr: d,
            len: 10,
            options: XDP_PKT_CONTD,
        };
        assert_eq!(p.tx_push(&mut plain, &[chained]), 0);
    }
}
