//! Frames in several buffers (multi-buffer AF_XDP descriptor chains): the pipeline sees
//! the first buffer and the length of the rest. Each decision on a chained frame must
//! write the same bytes into the first buffer as on the whole frame in one buffer, keep
//! the rest as it is, count the length of all of it, and refuse chains whose lengths
//! disagree with their headers.

mod common;

use common::*;
use pipeline::{Action, DropReason, Frame, Pipeline, TxCsum, Verdict};
use route::{Mode, PortId, Snapshot};
use wire::checksum;

/// What the pipeline left of a frame it was given as its first `head` bytes and `more`.
struct Out {
    v: Verdict,
    off: usize,
    bytes: Vec<u8>,
    more: usize,
    csum: Option<TxCsum>,
    csum_chain: Option<TxCsum>,
}

fn run_split(pl: &mut Pipeline, snap: &Snapshot, port: PortId, frame: &[u8], head: usize) -> Out {
    let mut c = chunk(&frame[..head]);
    let mut f = Frame::chained(&mut c, HEADROOM, head, frame.len() - head);
    let v = pl.process(snap, port, &mut f);
    Out {
        v,
        off: f.off,
        bytes: f.data().to_vec(),
        more: f.more,
        csum: f.csum,
        csum_chain: f.csum_chain,
    }
}

/// `frame` through one pipeline whole and through another as a chain whose first
/// buffer holds `head` bytes: same verdict, the same bytes in the first buffer, the rest
/// left to go as it came.
fn same_as_whole(snap: &Snapshot, port: PortId, frame: &[u8], head: usize) -> Out {
    let (mut p1, mut p2) = (Pipeline::new(), Pipeline::new());
    let whole = run_split(&mut p1, snap, port, frame, frame.len());
    let split = run_split(&mut p2, snap, port, frame, head);
    assert_eq!(split.v, whole.v);
    assert_eq!(whole.more, 0);
    assert_eq!(split.off, whole.off);
    // Longer by 50 after encap, shorter by 50 after decap.
    let head_out = head + whole.bytes.len() - frame.len();
    assert_eq!(split.bytes[..], whole.bytes[..head_out]);
    assert_eq!(split.more, frame.len() - head);
    assert_eq!(p1.counters().frames(), 1);
    assert_eq!(p2.counters().frames(), 1);
    split
}

#[test]
fn native_routing_of_a_chain_rewrites_its_first_buffer_only() {
    let snap = snapshot(Mode::Native);
    let f = from_pod1(REMOTE_B, 1400);
    let out = same_as_whole(&snap, LXC1, &f, 600);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::RoutedNative
        }
    );
}

#[test]
fn encapsulating_a_chain_counts_all_of_it_in_the_outer_lengths() {
    let snap = snapshot(Mode::Tunnel);
    let f = from_pod1(REMOTE_B, 1300);
    let out = same_as_whole(&snap, LXC1, &f, 500);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
    assert_eq!(out.bytes.len(), 500 + 50);
    let outer_total = u16::from_be_bytes([out.bytes[16], out.bytes[17]]);
    assert_eq!(usize::from(outer_total), f.len() + 50 - 14);
    let udp_len = u16::from_be_bytes([out.bytes[38], out.bytes[39]]);
    assert_eq!(usize::from(udp_len), f.len() + 50 - 14 - 20);
}

#[test]
fn decapsulating_a_chain_strips_the_outer_headers_from_its_first_buffer() {
    let snap = snapshot(Mode::Tunnel);
    let f = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(POD2, 1300));
    let out = same_as_whole(&snap, UPLINK, &f, 700);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC2,
            action: Action::Decapsulated
        }
    );
    assert_eq!(out.bytes.len(), 700 - 50);
}

#[test]
fn a_chain_whose_lengths_disagree_with_its_headers_is_malformed() {
    let snap = snapshot(Mode::Native);
    let f = from_pod1(REMOTE_B, 1400);
    let mut pl = Pipeline::new();
    // The headers say 1442 bytes; the chain holds 600 + 10.
    let mut c = chunk(&f[..600]);
    let mut fr = Frame::chained(&mut c, HEADROOM, 600, 10);
    assert_eq!(
        pl.process(&snap, LXC1, &mut fr),
        Verdict::Drop(DropReason::MalformedIpv4)
    );
    // Longer than the headers say (junk after the packet, which a chain never has).
    let mut c = chunk(&f[..600]);
    let mut fr = Frame::chained(&mut c, HEADROOM, 600, f.len() - 600 + 10);
    assert_eq!(
        pl.process(&snap, LXC1, &mut fr),
        Verdict::Drop(DropReason::MalformedIpv4)
    );
    // VXLAN whose outer lengths do not reach the end of the chain.
    let tsnap = snapshot(Mode::Tunnel);
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(POD2, 1300));
    let mut c = chunk(&v[..700]);
    let mut fr = Frame::chained(&mut c, HEADROOM, 700, v.len() - 700 + 4);
    assert_eq!(
        pl.process(&tsnap, UPLINK, &mut fr),
        Verdict::Drop(DropReason::MalformedIpv4)
    );
    assert_eq!(pl.counters().dropped(DropReason::MalformedIpv4), 3);
    assert_eq!(pl.counters().frames(), 3);
}

/// A UDP frame from pod 1 whose checksum is left partial (a pod with checksum offload).
fn partial_udp(dst: [u8; 4], payload: usize) -> Vec<u8> {
    let mut f = from_pod1(dst, payload);
    let udp_len = u16::try_from(payload + 8).unwrap();
    let p = checksum::partial_pseudo_header(
        u32::from_be_bytes(POD1),
        u32::from_be_bytes(dst),
        17,
        udp_len,
    );
    f[40..42].copy_from_slice(&p.to_be_bytes());
    f
}

#[test]
fn a_chains_partial_checksum_is_left_to_the_transmit() {
    let snap = snapshot(Mode::Native);
    let f = partial_udp(POD2, 1400);
    // Software: the transmit completes it over every buffer (the pipeline sees one).
    let mut pl = Pipeline::new();
    let out = run_split(&mut pl, &snap, LXC1, &f, 600);
    // From the frame's first byte: Ethernet 14 + IPv4 20.
    let want = TxCsum {
        start: 34,
        offset: 6,
    };
    assert_eq!((out.csum, out.csum_chain), (None, Some(want)));
    assert_eq!(pl.counters().csum_completed, 1);
    assert_eq!(&out.bytes[40..42], &f[40..42], "not summed over one buffer");
    // Offload: the kernel's request, as for a frame in one buffer.
    let mut pl = Pipeline::new();
    pl.offload_checksums(Some(24));
    let out = run_split(&mut pl, &snap, LXC1, &f, 600);
    assert_eq!((out.csum, out.csum_chain), (Some(want), None));
    assert_eq!(pl.counters().csum_offloaded, 1);
}

#[test]
fn the_transmit_completes_a_chains_checksum_as_if_it_were_one_buffer() {
    let f = partial_udp(POD2, 5000);
    let c = TxCsum {
        start: 34,
        offset: 6,
    };
    let mut whole = f.clone();
    assert!(c.complete(&mut whole));
    for cut in [1792, 1793, 42, 43, 4999] {
        let (mut first, rest) = (f[..cut].to_vec(), &f[cut..]);
        let pieces: Vec<&[u8]> = rest.chunks(1791).collect();
        assert!(c.complete_with_rest(&mut first, checksum::sum_pieces(pieces)));
        assert_eq!(&first[40..42], &whole[40..42], "cut at {cut}");
    }
}

#[test]
fn a_chain_too_big_with_df_becomes_one_icmp_error() {
    let snap = snapshot(Mode::Native);
    let f = from_pod1(REMOTE_B, 2000); // over the uplink's 1500
    let mut pl = Pipeline::new();
    let out = run_split(&mut pl, &snap, LXC1, &f, 1000);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC1,
            action: Action::IcmpFragNeeded
        }
    );
    assert_eq!(out.more, 0, "the rest of the chain does not go");
    assert_eq!(out.bytes.len(), 14 + 20 + 8 + 28);
}

#[test]
fn a_chain_that_is_not_a_frame_is_counted_as_bad_chain() {
    let mut pl = Pipeline::new();
    pl.drop_bad_chain();
    assert_eq!(pl.counters().dropped(DropReason::BadChain), 1);
    assert_eq!(pl.counters().frames(), 1);
}
