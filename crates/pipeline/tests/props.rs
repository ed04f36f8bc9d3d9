//! Property tests: any bytes from any port in either mode: no panic, frame bounds stay in
//! the chunk, Tx ports exist, and every transmitted frame has valid IPv4 checksums; with
//! checksum offload, what the kernel makes of each request is what software completion
//! writes.

mod common;

use common::*;
use etherparse::{LaxNetSlice, LaxSlicedPacket};
use pipeline::{Action, Frame, Pipeline, Verdict};
use proptest::prelude::*;
use route::{Mode, PortId, Snapshot};

/// Checks the invariants on one processed frame.
fn check(snap: &Snapshot, pl: &mut Pipeline, port: PortId, bytes: &[u8], off: usize) {
    let mut c = chunk_at(bytes, off);
    let n = c.len();
    let mut f = Frame::new(&mut c, off, bytes.len());
    let before = pl.counters().frames();
    let v = pl.process(snap, port, &mut f);
    assert_eq!(pl.counters().frames(), before + 1);
    assert!(
        f.off <= n && f.len <= n - f.off,
        "frame out of its chunk: off {} len {}",
        f.off,
        f.len
    );
    if let Verdict::Tx { port: out, action } = v {
        assert!(
            usize::from(out) < snap.ports.len(),
            "tx port {out} does not exist"
        );
        let data = f.data();
        // Only Ethernet and IPv4 are podfwd's to get right: a router forwards a mangled
        // TCP header as it came, so L4 is not parsed here.
        let ip_ok = |d: &[u8]| {
            let p = LaxSlicedPacket::from_ethernet(d).expect("tx frame parses");
            let Some(LaxNetSlice::Ipv4(ip)) = p.net else {
                panic!("tx frame is not IPv4")
            };
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            h
        };
        let h = ip_ok(data);
        if action == Action::Encapsulated {
            assert_eq!(usize::from(h.total_len), data.len() - 14);
            ip_ok(&data[50..]);
        }
    } else {
        // Untouched when not transmitted.
        assert_eq!((f.off, f.data()), (off, bytes));
    }
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(sport, dport)| L4::Udp { sport, dport }),
        (any::<u16>(), any::<u16>()).prop_map(|(sport, dport)| L4::Tcp { sport, dport }),
        Just(L4::Icmp),
    ]
}

fn addr() -> impl Strategy<Value = [u8; 4]> {
    prop_oneof![
        Just(POD1),
        Just(POD2),
        Just(POD3),
        Just(REMOTE_B),
        Just(REMOTE_C),
        Just(NODE_A),
        Just([10, 0, 1, 99]),
        Just([224, 0, 0, 1]),
        any::<[u8; 4]>(),
    ]
}

/// One frame through `pl` at `off`: verdict, transmitted bytes (with the checksum request
/// completed as the kernel would) and whether a request was made.
fn through(
    snap: &Snapshot,
    pl: &mut Pipeline,
    port: PortId,
    bytes: &[u8],
    off: usize,
) -> (Verdict, usize, Vec<u8>, bool) {
    let mut c = chunk_at(bytes, off);
    let mut f = Frame::new(&mut c, off, bytes.len());
    let v = pl.process(snap, port, &mut f);
    let (start, csum) = (f.off, f.csum);
    let mut out = f.data().to_vec();
    if let Some(req) = csum {
        assert!(start >= 24, "a request without room for the TX metadata");
        assert!(matches!(v, Verdict::Tx { .. }));
        assert!(req.complete(&mut out), "request outside the frame: {req:?}");
    }
    (v, start, out, csum.is_some())
}

/// Puts the folded pseudo-header sum into the TCP/UDP checksum field of the IPv4 packet
/// at `ip_at` (as Linux leaves a CHECKSUM_PARTIAL packet).
fn make_partial(f: &mut [u8], ip_at: usize) {
    let ip = wire::ipv4::Ipv4Packet::new_unchecked(&f[ip_at..]);
    let (proto, at) = match ip.protocol().0 {
        6 => (6, 16),
        17 => (17, 6),
        _ => return,
    };
    let l4_len = ip.total_len().saturating_sub(20);
    let ps = wire::checksum::pseudo_header_sum(ip.src_addr(), ip.dst_addr(), proto, l4_len);
    let at = ip_at + 20 + at;
    f[at..at + 2].copy_from_slice(&wire::checksum::fold(ps).to_be_bytes());
}

/// Tunnel, native or hybrid (node B on-link, node D behind a router).
fn snap_for(mode: u8) -> Snapshot {
    match mode {
        0 => snapshot(Mode::Tunnel),
        1 => snapshot(Mode::Native),
        _ => hybrid_snapshot(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), port in 0u16..5, off in 0usize..300, mode in 0u8..3) {
        let snap = snap_for(mode);
        check(&snap, &mut Pipeline::new(), port, &bytes, off);
    }

    #[test]
    fn mutated_frames_keep_invariants(
        src in addr(), dst in addr(), ttl in any::<u8>(), l4 in l4(), len in 0usize..1600,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        vxlan in any::<bool>(), port in 0u16..4, mode in 0u8..3, off in 0usize..300,
    ) {
        let snap = snap_for(mode);
        let inner = frame(POD1_MAC, LXC1_MAC, src, dst, ttl, l4, len);
        let mut f = if vxlan { vxlan_frame(NODE_A, 8472, 0x08, 1, &inner) } else { inner };
        for (i, v) in flips {
            let n = f.len();
            f[i % n] = v;
        }
        let mut pl = Pipeline::new();
        check(&snap, &mut pl, port, &f, off);
        // The same frame once more: learned state must not break anything either.
        check(&snap, &mut pl, port, &f, off);
    }

    #[test]
    fn offloaded_checksums_end_as_software_writes_them(
        src in prop_oneof![Just(POD1), addr()], dst in prop_oneof![Just(POD2), Just(REMOTE_B), addr()],
        l4 in l4(), len in 0usize..1400, partial in any::<bool>(), vxlan in any::<bool>(),
        port in prop_oneof![Just(LXC1), 0u16..4], mode in 0u8..3, off in 0usize..300,
    ) {
        let snap = snap_for(mode);
        let mut inner = frame(POD1_MAC, LXC1_MAC, src, dst, 64, l4, len);
        if partial {
            make_partial(&mut inner, 14);
        }
        let f = if vxlan { vxlan_frame(NODE_A, 8472, 0x08, 1, &inner) } else { inner };
        let (mut sw, mut hw) = (Pipeline::new(), Pipeline::new());
        hw.offload_checksums(Some(24));
        let a = through(&snap, &mut sw, port, &f, off);
        let b = through(&snap, &mut hw, port, &f, off);
        prop_assert!(!a.3, "software asked for offload");
        prop_assert_eq!((a.0, a.1, &a.2), (b.0, b.1, &b.2));
        let (s, h) = (sw.counters(), hw.counters());
        prop_assert_eq!(s.csum_completed, h.csum_completed + h.csum_offloaded);
        prop_assert_eq!(h.csum_offloaded, u64::from(b.3));
    }
}
