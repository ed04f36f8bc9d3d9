//! Fake sockets for tests without privileges (feature `testing`, always on in this
//! crate's own tests): an [`XskSocket`] whose four rings live in anonymous memory, and
//! a [`FakeKernel`] holding the other side of each ring, so a test can play the kernel
//! (consume the fill and TX rings, produce RX and completions, set need_wakeup).
//! Syscalls on a fake socket (`kick_tx`, `wakeup_rx`) only count.

use crate::if_xdp::{XdpDesc, XDP_PACKET_HEADROOM};
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
        let (chunk, off) = umem.chunk_mut(addr);
        chunk[off..off + payload.len()].copy_from_slice(payload);
        let desc = XdpDesc {
            addr,
            len: payload.len() as u32,
            options: 0,
        };
        assert!(self.rx.push(desc));
        Some(desc)
    }

    /// Transmits up to `max` TX descriptors (as many as the completion ring has room
    /// for), completing their addresses; returns the descriptors sent.
    pub fn transmit(&mut self, max: usize) -> Vec<XdpDesc> {
        let room = self.comp.free(max as u32) as usize;
        let mut sent = Vec::new();
        self.tx.consume_into(&mut sent, max.min(room));
        for d in &sent {
            assert!(self.comp.push(d.addr));
        }
        sent
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
                let payload = [round as u8, i as u8, 0xee];
                if ka.receive(&mut umem, &payload).is_none() {
                    break;
                }
            }
            umem.check_accounting(&[&a, &b], held.len()).unwrap();

            // Worker: rx on a, rewrite in place, tx on b.
            rx.clear();
            a.rx_batch(&mut rx, 4);
            for d in &rx {
                let (chunk, off) = umem.chunk_mut(d.addr);
                assert_eq!(chunk[off + 2], 0xee);
                chunk[off + 2] = 0xdd;
            }
            held.extend_from_slice(&rx);
            umem.check_accounting(&[&a, &b], held.len()).unwrap();
            // The "kernel" sleeps on every other round and asks for a kick.
            kb.tx.set_need_wakeup(round % 2 == 0);
            let n = b.tx_push(&held);
            held.drain(..n);
            forwarded += n;
            if b.tx_needs_wakeup() {
                b.kick_tx().unwrap();
            }
            umem.check_accounting(&[&a, &b], held.len()).unwrap();

            // "Kernel" transmits some of b's TX ring; the frames carry the rewrite.
            for d in kb.transmit((round % 3) as usize) {
                let (chunk, off) = umem.chunk(d.addr);
                assert_eq!(chunk[off + 2], 0xdd);
            }
            umem.check_accounting(&[&a, &b], held.len()).unwrap();
            b.complete(&mut umem, 5);
            umem.check_accounting(&[&a, &b], held.len()).unwrap();
        }
        assert!(forwarded > 300, "forwarded only {forwarded}");
        assert_eq!(b.wakeup_counters().tx_kicks, 250);

        // Drain: everything returns to the free list.
        for d in held.drain(..) {
            umem.free_frame(d.addr);
        }
        loop {
            let sent = kb.transmit(8).len();
            let done = b.complete(&mut umem, 64);
            if sent == 0 && done == 0 {
                break;
            }
        }
        assert_eq!(b.tx_outstanding(), 0);
        // Kernel gives back unused fill frames (as if the sockets were torn down).
        while let Some(addr) = ka.fill.pop() {
            umem.free_frame(addr);
        }
        while let Some(addr) = kb.fill.pop() {
            umem.free_frame(addr);
        }
        umem.check_accounting(&[&a, &b], 0).unwrap();
        assert_eq!(umem.free_frames(), 64);
    }

    #[test]
    fn accounting_detects_leak_and_double_count() {
        let mut umem = Umem::new(&cfg()).unwrap();
        let (mut s, mut k) = fake_socket(&umem, true, 0);
        s.fill(&mut umem, 4);
        k.receive(&mut umem, b"x").unwrap();
        let mut rx = Vec::new();
        assert_eq!(s.rx_batch(&mut rx, 8), 1);
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
        assert_eq!(s.tx_push(&descs), 8);
        assert_eq!(s.tx_free(), 0);
        assert_eq!(s.tx_push(&descs[8..]), 0);
        assert_eq!(s.tx_queued(), 8);
        assert_eq!(k.transmit(3).len(), 3);
        assert_eq!(s.tx_free(), 3);
        assert_eq!(s.tx_push(&descs[8..]), 3);
        assert_eq!(s.tx_outstanding(), 11);
        umem.check_accounting(&[&s], 1).unwrap();
        k.transmit(100);
        assert_eq!(s.complete(&mut umem, 100), 11);
        assert_eq!(s.tx_outstanding(), 0);
        // Completed addresses were normalised to chunk bases.
        assert_eq!(umem.free_frames(), 63);
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
}
