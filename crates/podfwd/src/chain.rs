//! Frames in several UMEM buffers (multi-buffer AF_XDP, `XDP_USE_SG`): a frame larger
//! than one UMEM frame arrives as a chain of RX descriptors, all but the last with
//! `XDP_PKT_CONTD`, and leaves as one on TX.
//!
//! The pipeline sees a chain as its first buffer (the headers are there) and the length
//! of the rest ([`pipeline::Frame::more`]). The worker keeps the rest here: a [`Pkt`] is
//! the first descriptor and a reference into [`Chains`], which holds the further
//! descriptors of the frames of one loop iteration (every frame received in an iteration
//! is transmitted or freed in it, so the store is emptied at the start of the next).
//!
//! [`UmemFrames`] is the UMEM as the pipeline's [`FrameMem`]: it frees a chain's buffers
//! with its first, keeps them in order on TX, completes a partial checksum over all of
//! them where the pipeline asks ([`pipeline::TxOut::csum_chain`]), and [`expand`] lays a
//! queue of frames out as the TX ring's descriptors.

use pipeline::{Frame, FrameMem, TxOut};
use xsk::if_xdp::XDP_PKT_CONTD;
use xsk::{Umem, XdpDesc};

/// One frame: its first descriptor and the rest of its chain, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkt {
    /// The first buffer (options without `XDP_PKT_CONTD`).
    pub head: XdpDesc,
    /// Bytes in the chain's other buffers.
    pub more: u32,
    /// Where the other buffers' descriptors are in [`Chains`]: index << 5 | count.
    chain: u32,
}

/// Bits of [`Pkt::chain`] that count the further descriptors (at most
/// `xsk::MAX_CHAIN - 1` = 17).
const COUNT_BITS: u32 = 5;

impl Pkt {
    /// A frame in one buffer.
    #[must_use]
    pub fn single(head: XdpDesc) -> Self {
        Pkt {
            head,
            more: 0,
            chain: 0,
        }
    }

    /// Whether the frame has further buffers.
    #[inline]
    #[must_use]
    pub fn is_chained(&self) -> bool {
        self.chain != 0
    }

    /// Number of further buffers.
    #[inline]
    #[must_use]
    pub fn tail_count(&self) -> usize {
        (self.chain & ((1 << COUNT_BITS) - 1)) as usize
    }

    fn tail_start(&self) -> usize {
        (self.chain >> COUNT_BITS) as usize
    }
}

/// The further descriptors of this iteration's chained frames.
#[derive(Debug, Default)]
pub struct Chains {
    tails: Vec<XdpDesc>,
}

impl Chains {
    /// Forgets every chain (all of the last iteration's frames are gone).
    pub fn clear(&mut self) {
        self.tails.clear();
    }

    /// Whether no frame of this iteration is chained.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tails.is_empty()
    }

    /// The further descriptors of `p`.
    #[inline]
    #[must_use]
    pub fn tail(&self, p: &Pkt) -> &[XdpDesc] {
        if !p.is_chained() {
            return &[];
        }
        let s = p.tail_start();
        self.tails.get(s..s + p.tail_count()).unwrap_or(&[])
    }

    /// Groups received descriptors `rx` into frames, appended to `out`: a descriptor
    /// with `XDP_PKT_CONTD` continues in the next. The socket hands out whole chains
    /// only (`XskSocket::rx_batch`); a chain still open at the end of `rx`, or longer
    /// than a frame can be, is handed to `drop_frame` descriptor by descriptor instead.
    /// Returns the frames appended.
    pub fn group(
        &mut self,
        rx: &[XdpDesc],
        out: &mut Vec<Pkt>,
        mut drop_frame: impl FnMut(&[XdpDesc]),
    ) -> usize {
        let before = out.len();
        // Most batches have no chain at all: one pass to see, then a plain copy.
        if rx.iter().all(|d| d.options & XDP_PKT_CONTD == 0) {
            out.extend(rx.iter().map(|&d| Pkt::single(d)));
            return rx.len();
        }
        let mut i = 0;
        while i < rx.len() {
            let head = rx[i];
            if head.options & XDP_PKT_CONTD == 0 {
                out.push(Pkt::single(head));
                i += 1;
                continue;
            }
            let end = rx[i..]
                .iter()
                .position(|d| d.options & XDP_PKT_CONTD == 0)
                .map(|j| i + j + 1);
            let Some(end) = end.filter(|&e| e - i <= xsk::MAX_CHAIN) else {
                let end = end.unwrap_or(rx.len());
                drop_frame(&rx[i..end]);
                i = end;
                continue;
            };
            let start = self.tails.len();
            let tail = &rx[i + 1..end];
            self.tails.extend_from_slice(tail);
            let more: u32 = tail.iter().map(|d| d.len).sum();
            let count = u32::try_from(tail.len()).unwrap_or(0);
            let start = u32::try_from(start).unwrap_or(u32::MAX >> COUNT_BITS);
            out.push(Pkt {
                head: XdpDesc {
                    options: head.options & !XDP_PKT_CONTD,
                    ..head
                },
                more,
                chain: (start << COUNT_BITS) | count,
            });
            i = end;
        }
        out.len() - before
    }
}

/// Lays `pkts` out as TX descriptors in `out` (cleared first): each frame's first
/// descriptor, then its further ones, `XDP_PKT_CONTD` on all but a frame's last.
pub fn expand(chains: &Chains, pkts: &[Pkt], out: &mut Vec<XdpDesc>) {
    out.clear();
    if chains.is_empty() {
        out.extend(pkts.iter().map(|p| p.head));
        return;
    }
    for p in pkts {
        let tail = chains.tail(p);
        if tail.is_empty() {
            out.push(p.head);
            continue;
        }
        out.push(XdpDesc {
            options: p.head.options | XDP_PKT_CONTD,
            ..p.head
        });
        let last = tail.len() - 1;
        out.extend(tail.iter().enumerate().map(|(i, d)| XdpDesc {
            options: if i < last { XDP_PKT_CONTD } else { 0 },
            ..*d
        }));
    }
}

/// How many of `pkts` the first `descs` descriptors of their [`expand`]ed layout hold
/// whole (what a TX push of a prefix moved).
#[must_use]
pub fn whole_frames(chains: &Chains, pkts: &[Pkt], descs: usize) -> usize {
    if chains.is_empty() {
        return descs.min(pkts.len());
    }
    let mut used = 0;
    for (n, p) in pkts.iter().enumerate() {
        used += 1 + p.tail_count();
        if used > descs {
            return n;
        }
    }
    pkts.len()
}

/// The UMEM as the pipeline's frame store: [`Pkt`]s of this worker's rings.
#[derive(Debug)]
pub struct UmemFrames<'a> {
    /// The worker's UMEM.
    pub umem: &'a mut Umem,
    /// The chains of this iteration's frames.
    pub chains: &'a Chains,
}

impl UmemFrames<'_> {
    /// Completes the checksum `c` of the frame `d` leaves as (`out`), over its first
    /// buffer and the rest of its chain.
    fn complete(&mut self, d: &Pkt, out: &TxOut, c: pipeline::TxCsum) {
        let rest = wire::checksum::sum_pieces(self.chains.tail(d).iter().map(|t| {
            let (chunk, off) = self.umem.chunk(t.addr);
            &chunk[off..off + t.len as usize]
        }));
        let (chunk, _) = self.umem.chunk_mut(d.head.addr);
        c.complete_with_rest(&mut chunk[out.off..out.off + out.len], rest);
    }
}

impl FrameMem for UmemFrames<'_> {
    type Desc = Pkt;

    #[inline]
    fn frame(&mut self, d: Pkt) -> Frame<'_> {
        let (buf, off) = self.umem.chunk_mut(d.head.addr);
        Frame::chained(buf, off, d.head.len as usize, d.more as usize)
    }

    #[inline]
    fn tx_desc(&mut self, d: Pkt, out: TxOut) -> Pkt {
        // Within one UMEM chunk (at most frame_size, a u32), so the casts are lossless.
        let mut head = XdpDesc {
            addr: self.umem.chunk_base(d.head.addr) + out.off as u64,
            len: u32::try_from(out.len).unwrap_or(u32::MAX),
            options: 0,
        };
        if !out.keep_chain && d.is_chained() {
            for t in self.chains.tail(&d) {
                self.umem.free_frame(t.addr);
            }
            return Pkt::single(head);
        }
        if let Some(c) = out.csum_chain {
            self.complete(&d, &out, c);
        }
        if let Some(c) = out.csum {
            if !self.umem.request_tx_checksum(&mut head, c.start, c.offset) {
                // The pipeline asks only with the room the UMEM's metadata needs
                // (Worker::update_csum_offload), so this does not happen; if it did, the
                // checksum is completed as the kernel would have.
                debug_assert!(false, "TX checksum request {c:?} refused for {head:?}");
                self.complete(&d, &out, c);
            }
        }
        Pkt { head, ..d }
    }

    #[inline]
    fn free(&mut self, d: Pkt) {
        self.umem.free_frame(d.head.addr);
        if d.is_chained() {
            for t in self.chains.tail(&d) {
                self.umem.free_frame(t.addr);
            }
        }
    }

    #[inline]
    fn len(d: &Pkt) -> usize {
        d.head.len as usize + d.more as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(addr: u64, len: u32, contd: bool) -> XdpDesc {
        XdpDesc {
            addr,
            len,
            options: if contd { XDP_PKT_CONTD } else { 0 },
        }
    }

    #[test]
    fn groups_chains_and_lays_them_out_again() {
        let rx = [
            d(0x1000, 60, false),
            d(0x2000, 3840, true),
            d(0x3000, 3840, true),
            d(0x4000, 1334, false),
            d(0x5000, 100, false),
        ];
        let mut chains = Chains::default();
        let mut pkts = Vec::new();
        let n = chains.group(&rx, &mut pkts, |_| panic!("nothing to drop"));
        assert_eq!(n, 3);
        assert_eq!(pkts[0], Pkt::single(rx[0]));
        assert_eq!(pkts[1].head.addr, 0x2000);
        assert_eq!(pkts[1].head.options, 0);
        assert_eq!(pkts[1].more, 3840 + 1334);
        assert_eq!(chains.tail(&pkts[1]), &rx[2..4]);
        assert_eq!(<UmemFrames as FrameMem>::len(&pkts[1]), 9014);
        let mut out = Vec::new();
        expand(&chains, &pkts, &mut out);
        assert_eq!(out, rx);
        assert_eq!(whole_frames(&chains, &pkts, 5), 3);
        assert_eq!(whole_frames(&chains, &pkts, 4), 2);
        assert_eq!(whole_frames(&chains, &pkts, 3), 1);
        assert_eq!(whole_frames(&chains, &pkts, 1), 1);
        assert_eq!(whole_frames(&chains, &pkts, 0), 0);
        let plain = [Pkt::single(rx[0]), Pkt::single(rx[4])];
        chains.clear();
        expand(&chains, &plain, &mut out);
        assert_eq!(out, [rx[0], rx[4]]);
        assert_eq!(whole_frames(&chains, &plain, 1), 1);
    }

    #[test]
    fn an_unfinished_or_overlong_chain_is_dropped_whole() {
        let mut chains = Chains::default();
        let mut pkts = Vec::new();
        let mut dropped = Vec::new();
        let rx = [d(0x1000, 3840, true), d(0x2000, 3840, true)];
        chains.group(&rx, &mut pkts, |ds| dropped.extend_from_slice(ds));
        assert!(pkts.is_empty());
        assert_eq!(dropped, rx);

        dropped.clear();
        let mut long: Vec<XdpDesc> = (0..xsk::MAX_CHAIN as u64)
            .map(|i| d(0x1000 * (i + 1), 3840, true))
            .collect();
        long.push(d(0x100_000, 10, false));
        long.push(d(0x200_000, 60, false));
        chains.group(&long, &mut pkts, |ds| dropped.extend_from_slice(ds));
        assert_eq!(dropped.len(), xsk::MAX_CHAIN + 1);
        assert_eq!(pkts, vec![Pkt::single(d(0x200_000, 60, false))]);
    }
}
