//! Every action and every drop reason on real frames: the verdict, the rewritten bytes
//! (cross-checked with etherparse) and the counters.

mod common;

use common::*;
use etherparse::{Icmpv4Header, Icmpv4Type, NetSlice, SlicedPacket, TransportSlice};
use pipeline::{flow_src_port, Action, DropReason, Frame, Pipeline, TxCsum, TxQueues, Verdict};
use route::{Mode, PortId, Snapshot};
use wire::checksum;
use wire::ipv4::Ipv4Packet;

struct Out {
    v: Verdict,
    off: usize,
    bytes: Vec<u8>,
    /// The whole chunk after processing.
    chunk: Vec<u8>,
    /// The checksum the transmit must ask the kernel to complete.
    csum: Option<TxCsum>,
}

fn run_at(pl: &mut Pipeline, snap: &Snapshot, port: PortId, frame: &[u8], off: usize) -> Out {
    let mut c = chunk_at(frame, off);
    let mut f = Frame::new(&mut c, off, frame.len());
    let v = pl.process(snap, port, &mut f);
    assert!(f.off + f.len <= f.buf.len());
    let (off, bytes, csum) = (f.off, f.data().to_vec(), f.csum);
    Out {
        v,
        off,
        bytes,
        chunk: c,
        csum,
    }
}

fn run(pl: &mut Pipeline, snap: &Snapshot, port: PortId, frame: &[u8]) -> Out {
    run_at(pl, snap, port, frame, HEADROOM)
}

/// One frame through a fresh pipeline; returns the verdict and checks it was the only
/// thing counted.
fn verdict(snap: &Snapshot, port: PortId, frame: &[u8]) -> Verdict {
    let mut pl = Pipeline::new();
    let out = run(&mut pl, snap, port, frame);
    assert_eq!(pl.counters().frames(), 1);
    out.v
}

fn assert_drop(snap: &Snapshot, port: PortId, frame: &[u8], reason: DropReason) {
    let mut pl = Pipeline::new();
    let out = run(&mut pl, snap, port, frame);
    assert_eq!(out.v, Verdict::Drop(reason));
    assert_eq!(pl.counters().dropped(reason), 1, "{reason} counted");
    assert_eq!(pl.counters().frames(), 1);
    // A dropped frame is left as it came.
    assert_eq!(out.off, HEADROOM);
    assert_eq!(out.bytes, frame, "{reason}: dropped frame was modified");
}

/// etherparse parses `bytes` as Ethernet/IPv4 and finds every checksum right.
fn assert_valid(bytes: &[u8]) -> SlicedPacket<'_> {
    let p = SlicedPacket::from_ethernet(bytes).expect("etherparse parses the frame");
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("no IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let (s, d) = (h.source, h.destination);
    match &p.transport {
        Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
            let c = u
                .to_header()
                .calc_checksum_ipv4_raw(s, d, u.payload())
                .unwrap();
            assert_eq!(u.checksum(), c, "UDP checksum");
        }
        Some(TransportSlice::Tcp(t)) => assert_eq!(
            t.checksum(),
            t.calc_checksum_ipv4(s, d).unwrap(),
            "TCP checksum"
        ),
        Some(TransportSlice::Icmpv4(i)) => {
            assert_eq!(
                i.checksum(),
                Icmpv4Header::with_checksum(i.icmp_type(), i.payload()).checksum,
                "ICMP checksum"
            )
        }
        _ => {}
    }
    p
}

fn ip_of(bytes: &[u8]) -> etherparse::Ipv4Header {
    let p = SlicedPacket::from_ethernet(bytes).unwrap();
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("no IPv4")
    };
    ip.header().to_header()
}

// ---------------------------------------------------------------- actions, from pods

#[test]
fn pod_to_local_pod_is_delivered_with_l2_rewrite_and_ttl() {
    for mode in [Mode::Tunnel, Mode::Native] {
        let snap = snapshot(mode);
        let mut pl = Pipeline::new();
        let input = frame(POD1_MAC, LXC1_MAC, POD1, POD2, 64, L4::Icmp, 56);
        let out = run(&mut pl, &snap, LXC1, &input);
        assert_eq!(
            out.v,
            Verdict::Tx {
                port: LXC2,
                action: Action::DeliveredLocal
            }
        );
        assert_eq!(out.off, HEADROOM);
        assert_eq!(&out.bytes[0..6], &POD2_MAC);
        assert_eq!(&out.bytes[6..12], &LXC2_MAC);
        assert_valid(&out.bytes);
        let ip = ip_of(&out.bytes);
        assert_eq!(ip.time_to_live, 63);
        assert_eq!(ip.source, POD1);
        assert_eq!(ip.destination, POD2);
        // Only the MACs, TTL and IP checksum changed.
        assert_eq!(out.bytes[12..22], input[12..22]);
        assert_eq!(out.bytes[26..], input[26..]);
        assert_eq!(pl.counters().action(Action::DeliveredLocal), 1);
        assert_eq!(pl.counters().frames(), 1);
    }
}

#[test]
fn pod_to_pod_with_learned_mac() {
    let snap = snapshot(Mode::Tunnel);
    let mut pl = Pipeline::new();
    let to_pod3 = from_pod1(POD3, 32);
    // Pod 3's MAC is not in the snapshot and not learned yet.
    assert_eq!(
        run(&mut pl, &snap, LXC1, &to_pod3).v,
        Verdict::Drop(DropReason::NoNeighbour)
    );
    // Pod 3 sends something (to pod 1): its MAC is learned from that frame.
    let from3 = frame(
        POD3_MAC,
        LXC3_MAC,
        POD3,
        POD1,
        64,
        L4::Udp { sport: 1, dport: 2 },
        8,
    );
    assert_eq!(
        run(&mut pl, &snap, LXC3, &from3).v,
        Verdict::Tx {
            port: LXC1,
            action: Action::DeliveredLocal
        }
    );
    assert_eq!(pl.counters().macs_learned, 2); // pod 1 and pod 3
    let out = run(&mut pl, &snap, LXC1, &to_pod3);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC3,
            action: Action::DeliveredLocal
        }
    );
    assert_eq!(&out.bytes[0..6], &POD3_MAC);
    assert_eq!(&out.bytes[6..12], &LXC3_MAC);
    assert_valid(&out.bytes);
    // Learning again with the same MAC is not a change.
    run(&mut pl, &snap, LXC3, &from3);
    assert_eq!(pl.counters().macs_learned, 2);
    // Its interface re-created: the learned MAC is forgotten, nothing goes to it until
    // the pod sends again.
    pl.forget_learned(LXC3);
    assert_eq!(
        run(&mut pl, &snap, LXC1, &to_pod3).v,
        Verdict::Drop(DropReason::NoNeighbour)
    );
    pl.forget_learned(200); // a port never seen: nothing to forget
    run(&mut pl, &snap, LXC3, &from3);
    assert_eq!(pl.counters().macs_learned, 3);
    assert_eq!(
        run(&mut pl, &snap, LXC1, &to_pod3).v,
        Verdict::Tx {
            port: LXC3,
            action: Action::DeliveredLocal
        }
    );
}

#[test]
fn pod_to_remote_pod_tunnel_is_encapsulated() {
    let snap = snapshot(Mode::Tunnel);
    let mut pl = Pipeline::new();
    let input = frame(
        POD1_MAC,
        LXC1_MAC,
        POD1,
        REMOTE_B,
        64,
        L4::Tcp {
            sport: 40000,
            dport: 5201,
        },
        100,
    );
    let out = run(&mut pl, &snap, LXC1, &input);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
    assert_eq!(out.off, HEADROOM - 50);
    assert_eq!(out.bytes.len(), input.len() + 50);

    // Outer headers, as etherparse reads them.
    let p = assert_valid(&out.bytes);
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
        panic!("no Ethernet")
    };
    assert_eq!(eth.source(), UPLINK_MAC);
    assert_eq!(eth.destination(), NODE_B_MAC);
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    let oh = ip.header().to_header();
    assert_eq!(oh.source, NODE_A);
    assert_eq!(oh.destination, NODE_B);
    assert_eq!(oh.time_to_live, 64);
    assert!(oh.dont_fragment);
    assert_eq!(usize::from(oh.total_len), input.len() + 36);
    assert_eq!(oh.protocol, etherparse::IpNumber::UDP);
    let Some(TransportSlice::Udp(udp)) = &p.transport else {
        panic!("no UDP")
    };
    assert_eq!(udp.destination_port(), 8472);
    assert_eq!(udp.checksum(), 0);
    assert_eq!(usize::from(udp.length()), input.len() + 16);
    assert_eq!(
        udp.source_port(),
        flow_src_port(
            u32::from_be_bytes(POD1),
            u32::from_be_bytes(REMOTE_B),
            6,
            40000,
            5201
        )
    );
    assert!(udp.source_port() >= 49152);
    let vx = udp.payload();
    assert_eq!(&vx[..8], &[0x08, 0, 0, 0, 0, 0, 1, 0]);

    // Inner frame: the pod's frame with TTL − 1 and a valid checksum, nothing else changed.
    let inner = &vx[8..];
    assert_eq!(inner.len(), input.len());
    assert_valid(inner);
    assert_eq!(ip_of(inner).time_to_live, 63);
    // Inner L2 is rewritten to the remote VTEP's MAC (the node's next hop unless a VTEP
    // MAC is configured) and our uplink MAC, for kernel VXLAN peers.
    assert_eq!(inner[..6], NODE_B_MAC);
    assert_eq!(inner[6..12], UPLINK_MAC);
    assert_eq!(inner[..12], snap.nodes[0].hops.resolved()[0].outer.inner_l2);
    assert_eq!(inner[12..22], input[12..22]);
    assert_eq!(inner[26..], input[26..]);
    assert_eq!(pl.counters().action(Action::Encapsulated), 1);
}

#[test]
fn encap_source_port_follows_the_flow() {
    let snap = snapshot(Mode::Tunnel);
    let mut pl = Pipeline::new();
    let sport_of = |pl: &mut Pipeline, sp: u16| {
        let f = frame(
            POD1_MAC,
            LXC1_MAC,
            POD1,
            REMOTE_B,
            64,
            L4::Udp {
                sport: sp,
                dport: 53,
            },
            10,
        );
        let out = run(pl, &snap, LXC1, &f);
        u16::from_be_bytes([out.bytes[34], out.bytes[35]])
    };
    let a = sport_of(&mut pl, 1000);
    assert_eq!(a, sport_of(&mut pl, 1000));
    let distinct: std::collections::HashSet<u16> =
        (1000..1064).map(|p| sport_of(&mut pl, p)).collect();
    assert!(
        distinct.len() > 56,
        "64 flows spread over {} ports",
        distinct.len()
    );
}

#[test]
fn pod_to_remote_pod_native_is_routed() {
    let snap = snapshot(Mode::Native);
    let mut pl = Pipeline::new();
    let input = from_pod1(REMOTE_B, 200);
    let out = run(&mut pl, &snap, LXC1, &input);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::RoutedNative
        }
    );
    assert_eq!(out.off, HEADROOM);
    assert_eq!(&out.bytes[0..6], &NODE_B_MAC);
    assert_eq!(&out.bytes[6..12], &UPLINK_MAC);
    assert_valid(&out.bytes);
    assert_eq!(ip_of(&out.bytes).time_to_live, 63);
    assert_eq!(pl.counters().action(Action::RoutedNative), 1);
}

#[test]
fn ethernet_padding_is_trimmed() {
    let snap = snapshot(Mode::Native);
    let mut input = from_pod1(REMOTE_B, 2); // 44 bytes
    input.resize(60, 0); // padded to the Ethernet minimum
    let mut pl = Pipeline::new();
    let out = run(&mut pl, &snap, LXC1, &input);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::RoutedNative
        }
    );
    assert_eq!(out.bytes.len(), 44);
    let snap = snapshot(Mode::Tunnel);
    let out = run(&mut pl, &snap, LXC1, &input);
    assert_eq!(out.bytes.len(), 44 + 50);
    assert_valid(&out.bytes);
}

// ------------------------------------------------------------- partial checksums

/// Puts the folded, non-inverted pseudo-header sum in the L4 checksum field, as Linux
/// leaves a CHECKSUM_PARTIAL packet.
fn make_partial(frame: &mut [u8], csum_at: usize, proto: u8) {
    let ip = Ipv4Packet::new_unchecked(&frame[14..]);
    let l4_len = ip.total_len() - 20;
    let ps = checksum::pseudo_header_sum(ip.src_addr(), ip.dst_addr(), proto, l4_len);
    let at = 34 + csum_at;
    frame[at..at + 2].copy_from_slice(&checksum::fold(ps).to_be_bytes());
}

#[test]
fn partial_tcp_checksum_is_completed_on_every_path() {
    for (mode, dst, action, inner_at) in [
        (Mode::Native, POD2, Action::DeliveredLocal, 0),
        (Mode::Native, REMOTE_B, Action::RoutedNative, 0),
        (Mode::Tunnel, REMOTE_B, Action::Encapsulated, 50),
    ] {
        let snap = snapshot(mode);
        let mut pl = Pipeline::new();
        let good = frame(
            POD1_MAC,
            LXC1_MAC,
            POD1,
            dst,
            64,
            L4::Tcp {
                sport: 40000,
                dport: 5201,
            },
            1400 - 40,
        );
        let mut partial = good.clone();
        make_partial(&mut partial, 16, 6);
        assert_ne!(partial[50..52], good[50..52]);
        let out = run(&mut pl, &snap, LXC1, &partial);
        assert_eq!(
            out.v,
            Verdict::Tx {
                port: if dst == POD2 { LXC2 } else { UPLINK },
                action
            }
        );
        let inner = &out.bytes[inner_at..];
        assert_valid(inner); // etherparse: TCP checksum right
        assert_eq!(
            inner[50..52],
            good[50..52],
            "completed checksum = the one etherparse wrote"
        );
        assert_eq!(pl.counters().csum_completed, 1);
    }
}

#[test]
fn partial_udp_checksum_is_completed() {
    let snap = snapshot(Mode::Tunnel);
    let mut pl = Pipeline::new();
    let good = from_pod1(REMOTE_B, 333);
    let mut partial = good.clone();
    make_partial(&mut partial, 6, 17);
    let out = run(&mut pl, &snap, LXC1, &partial);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
    assert_valid(&out.bytes[50..]);
    assert_eq!(out.bytes[50 + 40..50 + 42], good[40..42]);
    assert_eq!(pl.counters().csum_completed, 1);
}

#[test]
fn complete_or_absent_checksums_are_left_alone() {
    let snap = snapshot(Mode::Native);
    let mut pl = Pipeline::new();
    // A complete TCP checksum.
    let good = frame(
        POD1_MAC,
        LXC1_MAC,
        POD1,
        REMOTE_B,
        64,
        L4::Tcp { sport: 1, dport: 2 },
        10,
    );
    let out = run(&mut pl, &snap, LXC1, &good);
    assert_eq!(out.bytes[50..52], good[50..52]);
    // A wrong (not partial) checksum is not fixed: podfwd does not verify every frame.
    let mut bad = good.clone();
    bad[50] ^= 0x55;
    let out = run(&mut pl, &snap, LXC1, &bad);
    assert_eq!(out.bytes[50..52], bad[50..52]);
    // UDP without checksum (0) stays 0.
    let mut none = from_pod1(REMOTE_B, 10);
    none[40] = 0;
    none[41] = 0;
    let out = run(&mut pl, &snap, LXC1, &none);
    assert_eq!(out.bytes[40..42], [0, 0]);
    assert_eq!(pl.counters().csum_completed, 0);
    assert_eq!(pl.counters().action(Action::RoutedNative), 3);
}

#[test]
fn partial_checksums_are_left_to_the_kernel_on_every_path_with_offload() {
    let tcp = L4::Tcp {
        sport: 40000,
        dport: 5201,
    };
    let partial = |mut f: Vec<u8>| {
        make_partial(&mut f, 16, 6);
        f
    };
    let from_pod = |dst| partial(frame(POD1_MAC, LXC1_MAC, POD1, dst, 64, tcp, 1360));
    let inner = partial(frame(NODE_B_MAC, UPLINK_MAC, REMOTE_B, POD1, 63, tcp, 1000));
    // (mode, rx port, frame, where its TCP header is, action, where it leaves)
    let cases = [
        (
            Mode::Native,
            LXC1,
            from_pod(POD2),
            34,
            Action::DeliveredLocal,
            34,
        ),
        (
            Mode::Native,
            LXC1,
            from_pod(REMOTE_B),
            34,
            Action::RoutedNative,
            34,
        ),
        (
            Mode::Tunnel,
            LXC1,
            from_pod(REMOTE_B),
            34,
            Action::Encapsulated,
            84,
        ),
        (
            Mode::Tunnel,
            UPLINK,
            vxlan_frame(NODE_A, 8472, 0x08, 1, &inner),
            84,
            Action::Decapsulated,
            34,
        ),
        (
            Mode::Native,
            UPLINK,
            inner.clone(),
            34,
            Action::DeliveredLocal,
            34,
        ),
    ];
    for (mode, rx, input, l4_in, action, start) in cases {
        let snap = snapshot(mode);
        let mut pl = Pipeline::new();
        pl.offload_checksums(Some(24));
        let out = run(&mut pl, &snap, rx, &input);
        assert!(
            matches!(out.v, Verdict::Tx { action: a, .. } if a == action),
            "{action}: {:?}",
            out.v
        );
        assert_eq!(out.csum, Some(TxCsum { start, offset: 16 }), "{action}");
        let (field_in, field_out) = (l4_in + 16, usize::from(start) + 16);
        assert_eq!(
            out.bytes[field_out..field_out + 2],
            input[field_in..field_in + 2],
            "{action}: the field stays partial"
        );
        // Completed as the kernel does (TxCsum::complete), it is valid for etherparse.
        let mut wire = out.bytes.clone();
        assert!(out.csum.unwrap().complete(&mut wire));
        assert_valid(&wire[usize::from(start) - 34..]);
        assert_eq!(pl.counters().csum_offloaded, 1, "{action}");
        assert_eq!(pl.counters().csum_completed, 0, "{action}");
    }
}

#[test]
fn offload_completes_in_software_without_room_and_leaves_complete_checksums_alone() {
    let snap = snapshot(Mode::Native);
    let mut pl = Pipeline::new();
    pl.offload_checksums(Some(24));
    let good = from_pod1(REMOTE_B, 333);
    let mut partial = good.clone();
    make_partial(&mut partial, 6, 17);
    // UDP: offset 6.
    let out = run(&mut pl, &snap, LXC1, &partial);
    assert_eq!(
        out.csum,
        Some(TxCsum {
            start: 34,
            offset: 6
        })
    );
    // 23 bytes in front of the frame: no room for the TX metadata, completed here.
    let out = run_at(&mut pl, &snap, LXC1, &partial, 23);
    assert_eq!(out.csum, None);
    assert_valid(&out.bytes);
    assert_eq!(out.bytes[40..42], good[40..42]);
    // A complete checksum needs nothing.
    let out = run(&mut pl, &snap, LXC1, &good);
    assert_eq!((out.csum, &out.bytes[40..42]), (None, &good[40..42]));
    let c = pl.counters();
    assert_eq!((c.csum_offloaded, c.csum_completed), (1, 1));
    assert_eq!(c.action(Action::RoutedNative), 3);
    // Back to software.
    pl.offload_checksums(None);
    let out = run(&mut pl, &snap, LXC1, &partial);
    assert_eq!(out.csum, None);
    assert_valid(&out.bytes);
    assert_eq!(pl.counters().csum_completed, 2);
}

/// The batch loop hands each frame's request to the transmit ([`FrameMem::tx_desc`]).
#[test]
fn batches_pass_checksum_requests_to_the_transmit() {
    let snap = snapshot(Mode::Tunnel);
    let good = from_pod1(REMOTE_B, 100);
    let mut partial = good.clone();
    make_partial(&mut partial, 6, 17);
    let (mut mem, descs) = VecMem::with_frames(&[partial.clone(), good, partial]);
    let mut tx = TxQueues::new(3, 8);
    let mut pl = Pipeline::new();
    pl.offload_checksums(Some(24));
    pl.process_batch(&snap, LXC1, &descs, &mut mem, &mut tx);
    let req = TxCsum {
        start: 84,
        offset: 6,
    };
    assert_eq!(mem.csum_requests, vec![(0, req), (2, req)]);
    assert_eq!(tx.pending(usize::from(UPLINK)).len(), 3);
}

// ---------------------------------------------------------------------- MTU / ICMP

/// Checks an ICMP frag-needed reply to pod 1's `input`, sent back out of `port` with
/// MACs `src_mac` -> `dst_mac`.
fn assert_frag_needed(
    out: &Out,
    input: &[u8],
    port: PortId,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    mtu: u16,
) {
    assert_eq!(
        out.v,
        Verdict::Tx {
            port,
            action: Action::IcmpFragNeeded
        }
    );
    assert_eq!(&out.bytes[0..6], &dst_mac);
    assert_eq!(&out.bytes[6..12], &src_mac);
    let p = assert_valid(&out.bytes);
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(h.source, NODE_A);
    assert_eq!(h.destination, ip_of(input).source);
    assert_eq!(h.time_to_live, 64);
    assert_eq!(h.protocol, etherparse::IpNumber::ICMP);
    assert_eq!(usize::from(h.total_len), 20 + 8 + 20 + 8);
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!("no ICMP")
    };
    assert_eq!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu }
        )
    );
    // RFC 792: the original IP header (as received, TTL not yet decremented) + 8 bytes.
    assert_eq!(icmp.payload(), &input[14..14 + 28]);
    assert_eq!(out.bytes.len(), 14 + 56);
}

#[test]
fn too_big_with_df_gets_icmp_frag_needed() {
    // Tunnel: limit = uplink MTU − 50 = 1450.
    let snap = snapshot(Mode::Tunnel);
    let mut pl = Pipeline::new();
    let fits = from_pod1(REMOTE_B, 1450 - 28);
    assert_eq!(
        run(&mut pl, &snap, LXC1, &fits).v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
    let big = from_pod1(REMOTE_B, 1451 - 28);
    let out = run(&mut pl, &snap, LXC1, &big);
    assert_frag_needed(&out, &big, LXC1, LXC1_MAC, POD1_MAC, 1450);
    assert_eq!(out.off, HEADROOM);
    assert_eq!(pl.counters().action(Action::IcmpFragNeeded), 1);

    // Native: limit = uplink MTU.
    let snap = snapshot(Mode::Native);
    let big = from_pod1(REMOTE_B, 1501 - 28);
    let out = run(&mut pl, &snap, LXC1, &big);
    assert_frag_needed(&out, &big, LXC1, LXC1_MAC, POD1_MAC, 1500);
    let fits = from_pod1(REMOTE_B, 1500 - 28);
    assert_eq!(
        run(&mut pl, &snap, LXC1, &fits).v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::RoutedNative
        }
    );

    // Local delivery: limit = the destination port's MTU (1450 in tunnel mode).
    let snap = snapshot(Mode::Tunnel);
    let big = from_pod1(POD2, 1451 - 28);
    let out = run(&mut pl, &snap, LXC1, &big);
    assert_frag_needed(&out, &big, LXC1, LXC1_MAC, POD1_MAC, 1450);
}

#[test]
fn too_big_from_uplink_native_reflects_to_the_router() {
    let snap = snapshot(Mode::Native);
    let mut pl = Pipeline::new();
    // Pod MTU is 1500 in native mode; shrink it for this test with a jumbo-ish frame.
    let big = frame(
        ROUTER_MAC,
        UPLINK_MAC,
        REMOTE_B,
        POD1,
        63,
        L4::Udp { sport: 9, dport: 9 },
        1501 - 28,
    );
    let out = run(&mut pl, &snap, UPLINK, &big);
    assert_frag_needed(&out, &big, UPLINK, UPLINK_MAC, ROUTER_MAC, 1500);
}

#[test]
fn too_big_without_df_is_frame_too_big() {
    let snap = snapshot(Mode::Tunnel);
    let mut big = from_pod1(REMOTE_B, 1451 - 28);
    patch_ip(&mut big, 14, |ip| {
        ip.set_flags_and_frag_offset(false, false, 0)
    });
    assert_drop(&snap, LXC1, &big, DropReason::FrameTooBig);
    // Decapsulated frames too big for the pod port are dropped even with DF.
    let inner = inner_frame(POD1, 1451 - 28);
    let f = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner);
    assert_drop(&snap, UPLINK, &f, DropReason::FrameTooBig);
}

// ------------------------------------------------------------------ from the uplink

#[test]
fn vxlan_from_uplink_is_decapsulated_to_the_pod() {
    let snap = snapshot(Mode::Tunnel);
    let mut pl = Pipeline::new();
    let inner = inner_frame(POD1, 100);
    let f = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner);
    let out = run(&mut pl, &snap, UPLINK, &f);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC1,
            action: Action::Decapsulated
        }
    );
    assert_eq!(out.off, HEADROOM + 50);
    assert_eq!(out.bytes.len(), inner.len());
    assert_eq!(&out.bytes[0..6], &POD1_MAC);
    assert_eq!(&out.bytes[6..12], &LXC1_MAC);
    assert_valid(&out.bytes);
    assert_eq!(ip_of(&out.bytes).time_to_live, 62);
    assert_eq!(out.bytes[12..22], inner[12..22]);
    assert_eq!(out.bytes[26..], inner[26..]);
    assert_eq!(pl.counters().action(Action::Decapsulated), 1);
}

#[test]
fn vxlan_with_outer_ip_options_is_stripped_by_ihl() {
    let snap = snapshot(Mode::Tunnel);
    let inner = inner_frame(POD2, 40);
    let f = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner);
    // Insert a 4-byte option (NOP NOP NOP EOL) into the outer IPv4 header.
    let mut g = f[..34].to_vec();
    g.extend_from_slice(&[1, 1, 1, 0]);
    g.extend_from_slice(&f[34..]);
    patch_ip(&mut g, 14, |ip| {
        ip.set_version_and_header_len(24);
        ip.set_total_len(ip.total_len() + 4);
    });
    let mut pl = Pipeline::new();
    let out = run(&mut pl, &snap, UPLINK, &g);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC2,
            action: Action::Decapsulated
        }
    );
    assert_eq!(out.off, HEADROOM + 54);
    assert_eq!(out.bytes.len(), inner.len());
    assert_valid(&out.bytes);
}

#[test]
fn kernel_vxlan_frame_is_decapsulated() {
    // The frame Linux's vxlan driver sends from node A to node B, received on node B.
    let snap = node_b_snapshot();
    let mut pl = Pipeline::new();
    let out = run(&mut pl, &snap, UPLINK, &KERNEL_VXLAN_FRAME);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC1,
            action: Action::Decapsulated
        }
    );
    assert_eq!(out.bytes.len(), KERNEL_VXLAN_FRAME.len() - 50);
    assert_eq!(&out.bytes[0..6], &POD2_MAC);
    assert_eq!(&out.bytes[6..12], &LXC1_MAC);
    assert_valid(&out.bytes);
    assert_eq!(ip_of(&out.bytes).time_to_live, 62);
    assert_eq!(out.bytes[34..], KERNEL_VXLAN_FRAME[84..]); // ICMP untouched
}

#[test]
fn encap_then_decap_round_trips() {
    // Node A encapsulates pod 1 -> 10.0.2.3; node B decapsulates it to its pod.
    let a = snapshot(Mode::Tunnel);
    let b = node_b_snapshot();
    let input = frame(POD1_MAC, LXC1_MAC, POD1, [10, 0, 2, 3], 64, L4::Icmp, 56);
    let mut pa = Pipeline::new();
    let out = run(&mut pa, &a, LXC1, &input);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
    let mut pb = Pipeline::new();
    let back = run(&mut pb, &b, UPLINK, &out.bytes);
    assert_eq!(
        back.v,
        Verdict::Tx {
            port: LXC1,
            action: Action::Decapsulated
        }
    );
    assert_eq!(ip_of(&back.bytes).time_to_live, 62);
    assert_eq!(back.bytes[34..], input[34..]);
    assert_valid(&back.bytes);
}

#[test]
fn native_from_uplink_is_delivered_to_the_pod() {
    let snap = snapshot(Mode::Native);
    let mut pl = Pipeline::new();
    let f = frame(
        ROUTER_MAC,
        UPLINK_MAC,
        REMOTE_B,
        POD2,
        63,
        L4::Tcp {
            sport: 5201,
            dport: 40000,
        },
        500,
    );
    let out = run(&mut pl, &snap, UPLINK, &f);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC2,
            action: Action::DeliveredLocal
        }
    );
    assert_eq!(&out.bytes[0..6], &POD2_MAC);
    assert_eq!(&out.bytes[6..12], &LXC2_MAC);
    assert_valid(&out.bytes);
    assert_eq!(ip_of(&out.bytes).time_to_live, 62);
}

// ---------------------------------------------------------------------------- pass

#[test]
fn not_ours_is_passed() {
    let mut pl = Pipeline::new();
    let t = snapshot(Mode::Tunnel);
    let n = snapshot(Mode::Native);
    let arp = {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&POD1_MAC);
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0; 28]);
        f
    };
    let mut ipv6 = from_pod1(REMOTE_B, 10);
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let cases: Vec<(&Snapshot, PortId, Vec<u8>)> = vec![
        (&t, LXC1, arp.clone()),
        (&t, LXC1, ipv6),
        (&t, LXC1, from_pod1([8, 8, 8, 8], 10)), // outside the cluster
        (&t, LXC1, from_pod1(NODE_A, 10)),       // the node itself
        (&t, LXC1, from_pod1(GATEWAY, 10)),      // the pods' gateway
        (&t, UPLINK, arp),
        (
            &t,
            UPLINK,
            frame(
                NODE_B_MAC,
                UPLINK_MAC,
                NODE_B,
                [198, 18, 0, 9],
                64,
                L4::Udp {
                    sport: 1,
                    dport: 8472,
                },
                60,
            ),
        ),
        (
            &t,
            UPLINK,
            frame(
                NODE_B_MAC,
                UPLINK_MAC,
                NODE_B,
                NODE_A,
                64,
                L4::Tcp {
                    sport: 22,
                    dport: 22,
                },
                60,
            ),
        ),
        (
            &n,
            UPLINK,
            frame(NODE_B_MAC, UPLINK_MAC, NODE_B, NODE_A, 64, L4::Icmp, 60),
        ),
        (
            &n,
            UPLINK,
            frame(
                NODE_B_MAC,
                UPLINK_MAC,
                REMOTE_B,
                [10, 0, 2, 9],
                64,
                L4::Icmp,
                60,
            ),
        ),
        (&t, 99, from_pod1(REMOTE_B, 10)), // a port the snapshot does not know
    ];
    for (i, (snap, port, f)) in cases.iter().enumerate() {
        let out = run(&mut pl, snap, *port, f);
        assert_eq!(out.v, Verdict::Pass, "case {i}");
        assert_eq!(out.bytes, *f, "case {i}: passed frame was modified");
    }
    assert_eq!(pl.counters().passed, cases.len() as u64);
    assert_eq!(pl.counters().frames(), cases.len() as u64);
}

// ------------------------------------------------------------ drops, from pods

#[test]
fn drop_ttl_expired() {
    let snap = snapshot(Mode::Tunnel);
    let f = frame(POD1_MAC, LXC1_MAC, POD1, REMOTE_B, 1, L4::Icmp, 8);
    assert_drop(&snap, LXC1, &f, DropReason::TtlExpired);
    let f = frame(POD1_MAC, LXC1_MAC, POD1, POD2, 0, L4::Icmp, 8);
    assert_drop(&snap, LXC1, &f, DropReason::TtlExpired);
    let inner = frame([2; 6], [4; 6], REMOTE_B, POD1, 1, L4::Icmp, 8);
    assert_drop(
        &snap,
        UPLINK,
        &vxlan_frame(NODE_A, 8472, 0x08, 1, &inner),
        DropReason::TtlExpired,
    );
    let n = snapshot(Mode::Native);
    let f = frame(ROUTER_MAC, UPLINK_MAC, REMOTE_B, POD1, 1, L4::Icmp, 8);
    assert_drop(&n, UPLINK, &f, DropReason::TtlExpired);
}

#[test]
fn drop_malformed_ethernet() {
    let snap = snapshot(Mode::Tunnel);
    assert_drop(&snap, LXC1, &[0u8; 13], DropReason::MalformedEthernet);
    assert_drop(&snap, UPLINK, &[0u8; 10], DropReason::MalformedEthernet);
    assert_drop(
        &snapshot(Mode::Native),
        UPLINK,
        &[],
        DropReason::MalformedEthernet,
    );
    // Tagged but cut before the inner EtherType.
    let mut f = from_pod1(REMOTE_B, 10)[..16].to_vec();
    f[12..14].copy_from_slice(&[0x81, 0x00]);
    assert_drop(&snap, LXC1, &f, DropReason::MalformedEthernet);
}

#[test]
fn drop_malformed_ipv4() {
    let snap = snapshot(Mode::Tunnel);
    let good = from_pod1(REMOTE_B, 20);
    let mut bad_version = good.clone();
    patch_ip(&mut bad_version, 14, |ip| ip.set_version_and_header_len(20));
    bad_version[14] = 0x65;
    assert_drop(&snap, LXC1, &bad_version, DropReason::MalformedIpv4);
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    assert_drop(&snap, LXC1, &bad_ihl, DropReason::MalformedIpv4);
    let mut too_long = good.clone();
    patch_ip(&mut too_long, 14, |ip| ip.set_total_len(ip.total_len() + 1));
    assert_drop(&snap, LXC1, &too_long, DropReason::MalformedIpv4);
    let mut too_short = good.clone();
    patch_ip(&mut too_short, 14, |ip| ip.set_total_len(19));
    assert_drop(&snap, LXC1, &too_short, DropReason::MalformedIpv4);
    let mut bad_csum = good.clone();
    bad_csum[24] ^= 0xff;
    assert_drop(&snap, LXC1, &bad_csum, DropReason::MalformedIpv4);
    assert_drop(&snap, LXC1, &good[..30], DropReason::MalformedIpv4);
    // On the uplink: outer header checksum, inner header checksum.
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(POD1, 10));
    let mut outer_bad = v.clone();
    outer_bad[24] ^= 1;
    assert_drop(&snap, UPLINK, &outer_bad, DropReason::MalformedIpv4);
    let mut inner_bad = v.clone();
    inner_bad[50 + 24] ^= 1;
    assert_drop(&snap, UPLINK, &inner_bad, DropReason::MalformedIpv4);
    let n = snapshot(Mode::Native);
    let mut f = frame(ROUTER_MAC, UPLINK_MAC, REMOTE_B, POD1, 63, L4::Icmp, 8);
    f[24] ^= 1;
    assert_drop(&n, UPLINK, &f, DropReason::MalformedIpv4);
}

#[test]
fn drop_ip_options() {
    let snap = snapshot(Mode::Tunnel);
    let f = from_pod1(REMOTE_B, 20);
    let mut g = f[..34].to_vec();
    g.extend_from_slice(&[1, 1, 1, 0]);
    g.extend_from_slice(&f[34..]);
    patch_ip(&mut g, 14, |ip| {
        ip.set_version_and_header_len(24);
        ip.set_total_len(ip.total_len() + 4);
    });
    assert_drop(&snap, LXC1, &g, DropReason::IpOptions);
}

#[test]
fn drop_fragment() {
    let snap = snapshot(Mode::Tunnel);
    let mut first = from_pod1(REMOTE_B, 64);
    patch_ip(&mut first, 14, |ip| {
        ip.set_flags_and_frag_offset(false, true, 0)
    });
    assert_drop(&snap, LXC1, &first, DropReason::Fragment);
    let mut later = from_pod1(REMOTE_B, 64);
    patch_ip(&mut later, 14, |ip| {
        ip.set_flags_and_frag_offset(false, false, 1480)
    });
    assert_drop(&snap, LXC1, &later, DropReason::Fragment);
    let mut outer = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(POD1, 10));
    patch_ip(&mut outer, 14, |ip| {
        ip.set_flags_and_frag_offset(false, true, 0)
    });
    assert_drop(&snap, UPLINK, &outer, DropReason::Fragment);
}

fn tag(f: &[u8]) -> Vec<u8> {
    let mut g = f[..12].to_vec();
    g.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    g.extend_from_slice(&f[12..]);
    g
}

#[test]
fn drop_vlan_tagged() {
    let snap = snapshot(Mode::Tunnel);
    assert_drop(
        &snap,
        LXC1,
        &tag(&from_pod1(REMOTE_B, 10)),
        DropReason::VlanTagged,
    );
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(POD1, 10));
    assert_drop(&snap, UPLINK, &tag(&v), DropReason::VlanTagged);
    let inner_tagged = vxlan_frame(NODE_A, 8472, 0x08, 1, &tag(&inner_frame(POD1, 10)));
    assert_drop(&snap, UPLINK, &inner_tagged, DropReason::VlanTagged);
    let n = snapshot(Mode::Native);
    assert_drop(
        &n,
        UPLINK,
        &tag(&frame(
            ROUTER_MAC,
            UPLINK_MAC,
            REMOTE_B,
            POD1,
            63,
            L4::Icmp,
            8,
        )),
        DropReason::VlanTagged,
    );
}

#[test]
fn drop_not_ipv4_inside_vxlan() {
    let snap = snapshot(Mode::Tunnel);
    let mut inner = inner_frame(POD1, 10);
    inner[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_drop(
        &snap,
        UPLINK,
        &vxlan_frame(NODE_A, 8472, 0x08, 1, &inner),
        DropReason::NotIpv4,
    );
}

#[test]
fn drop_no_route() {
    let snap = snapshot(Mode::Tunnel);
    assert_drop(
        &snap,
        LXC1,
        &from_pod1([10, 0, 9, 9], 10),
        DropReason::NoRoute,
    );
    assert_drop(
        &snap,
        LXC1,
        &from_pod1([10, 0, 1, 99], 10),
        DropReason::NoRoute,
    );
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame([10, 0, 1, 99], 10));
    assert_drop(&snap, UPLINK, &v, DropReason::NoRoute);
    let n = snapshot(Mode::Native);
    assert_drop(
        &n,
        UPLINK,
        &frame(
            ROUTER_MAC,
            UPLINK_MAC,
            REMOTE_B,
            [10, 0, 1, 99],
            63,
            L4::Icmp,
            8,
        ),
        DropReason::NoRoute,
    );
}

#[test]
fn drop_no_neighbour() {
    // Tunnel: node C's outer header is unresolved.
    assert_drop(
        &snapshot(Mode::Tunnel),
        LXC1,
        &from_pod1(REMOTE_C, 10),
        DropReason::NoNeighbour,
    );
    // Native: node C's next-hop MAC is unresolved.
    assert_drop(
        &snapshot(Mode::Native),
        LXC1,
        &from_pod1(REMOTE_C, 10),
        DropReason::NoNeighbour,
    );
    // Pod 3's MAC is neither configured nor learned.
    assert_drop(
        &snapshot(Mode::Tunnel),
        LXC1,
        &from_pod1(POD3, 10),
        DropReason::NoNeighbour,
    );
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(POD3, 10));
    assert_drop(&snapshot(Mode::Tunnel), UPLINK, &v, DropReason::NoNeighbour);
}

#[test]
fn drop_no_headroom() {
    let snap = snapshot(Mode::Tunnel);
    let f = from_pod1(REMOTE_B, 10);
    let mut pl = Pipeline::new();
    let out = run_at(&mut pl, &snap, LXC1, &f, 49);
    assert_eq!(out.v, Verdict::Drop(DropReason::NoHeadroom));
    assert_eq!(out.bytes, f);
    let out = run_at(&mut pl, &snap, LXC1, &f, 50);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
    assert_eq!(out.off, 0);
    assert_eq!(out.chunk[..out.bytes.len()], out.bytes[..]);
    assert_eq!(pl.counters().dropped(DropReason::NoHeadroom), 1);
}

#[test]
fn drop_hairpin() {
    let snap = snapshot(Mode::Tunnel);
    // Pod 1 to its own address through the gateway.
    assert_drop(&snap, LXC1, &from_pod1(POD1, 10), DropReason::Hairpin);
    // VXLAN for a pod of another node would go straight back out of the uplink.
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(REMOTE_C, 10));
    assert_drop(&snap, UPLINK, &v, DropReason::Hairpin);
}

#[test]
fn drop_broadcast_multicast() {
    let snap = snapshot(Mode::Tunnel);
    assert_drop(
        &snap,
        LXC1,
        &from_pod1([224, 0, 0, 251], 10),
        DropReason::BroadcastMulticast,
    );
    assert_drop(
        &snap,
        LXC1,
        &from_pod1([255, 255, 255, 255], 10),
        DropReason::BroadcastMulticast,
    );
    let f = frame(POD1_MAC, [0xff; 6], POD1, REMOTE_B, 64, L4::Icmp, 8);
    assert_drop(&snap, LXC1, &f, DropReason::BroadcastMulticast);
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame([239, 1, 2, 3], 10));
    assert_drop(&snap, UPLINK, &v, DropReason::BroadcastMulticast);
    let n = snapshot(Mode::Native);
    let f = frame(
        ROUTER_MAC,
        [0x01, 0, 0x5e, 0, 0, 1],
        REMOTE_B,
        POD1,
        63,
        L4::Icmp,
        8,
    );
    assert_drop(&n, UPLINK, &f, DropReason::BroadcastMulticast);
}

#[test]
fn drop_martian_source() {
    let snap = snapshot(Mode::Tunnel);
    // Pod 1 spoofing pod 2's address.
    let f = frame(POD1_MAC, LXC1_MAC, POD2, REMOTE_B, 64, L4::Icmp, 8);
    assert_drop(&snap, LXC1, &f, DropReason::MartianSource);
    let f = frame(POD1_MAC, LXC1_MAC, [10, 0, 1, 200], POD2, 64, L4::Icmp, 8);
    assert_drop(&snap, LXC1, &f, DropReason::MartianSource);
    // A spoofed frame does not teach a MAC.
    let mut pl = Pipeline::new();
    let spoof = frame(
        [0x0e, 9, 9, 9, 9, 9],
        LXC3_MAC,
        [10, 0, 1, 200],
        POD1,
        64,
        L4::Icmp,
        8,
    );
    run(&mut pl, &snap, LXC3, &spoof);
    assert_eq!(pl.counters().macs_learned, 0);
    assert_eq!(
        run(&mut pl, &snap, LXC1, &from_pod1(POD3, 8)).v,
        Verdict::Drop(DropReason::NoNeighbour)
    );
}

// ------------------------------------------------------------ drops, from the uplink

#[test]
fn drop_wrong_port() {
    let snap = snapshot(Mode::Tunnel);
    let v = vxlan_frame(NODE_A, 4789, 0x08, 1, &inner_frame(POD1, 10));
    assert_drop(&snap, UPLINK, &v, DropReason::WrongPort);
}

#[test]
fn drop_bad_vxlan() {
    let snap = snapshot(Mode::Tunnel);
    let v = vxlan_frame(NODE_A, 8472, 0x00, 1, &inner_frame(POD1, 10));
    assert_drop(&snap, UPLINK, &v, DropReason::BadVxlan);
    // UDP payload shorter than the VXLAN header.
    let mut short = Vec::new();
    etherparse::PacketBuilder::ethernet2(NODE_B_MAC, UPLINK_MAC)
        .ipv4(NODE_B, NODE_A, 64)
        .udp(1, 8472)
        .write(&mut short, &[0x08, 0, 0, 0])
        .unwrap();
    assert_drop(&snap, UPLINK, &short, DropReason::BadVxlan);
    // UDP length field larger than the IP payload.
    let mut bad_len = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(POD1, 10));
    bad_len[38..40].copy_from_slice(&0xffffu16.to_be_bytes());
    assert_drop(&snap, UPLINK, &bad_len, DropReason::BadVxlan);
}

#[test]
fn drop_wrong_vni() {
    let snap = snapshot(Mode::Tunnel);
    let v = vxlan_frame(NODE_A, 8472, 0x08, 2, &inner_frame(POD1, 10));
    assert_drop(&snap, UPLINK, &v, DropReason::WrongVni);
}

#[test]
fn drop_inner_too_short() {
    let snap = snapshot(Mode::Tunnel);
    let inner = inner_frame(POD1, 10);
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner[..33]);
    assert_drop(&snap, UPLINK, &v, DropReason::InnerTooShort);
    let v = vxlan_frame(NODE_A, 8472, 0x08, 1, &[]);
    assert_drop(&snap, UPLINK, &v, DropReason::InnerTooShort);
}

#[test]
fn drop_tx_ring_full_counts_the_frame_once_not_as_its_action() {
    let snap = snapshot(Mode::Native);
    let (mut mem, rx) = VecMem::with_frames(&[from_pod1(REMOTE_B, 10)]);
    let mut tx = TxQueues::new(snap.ports.len(), 8);
    let mut pl = Pipeline::new();
    pl.process_batch(&snap, LXC1, &rx, &mut mem, &mut tx);
    tx.settle(usize::from(UPLINK), 0, &mut pl, &mut mem);
    assert_eq!(pl.counters().dropped(DropReason::TxRingFull), 1);
    assert_eq!(pl.counters().action(Action::RoutedNative), 0);
    assert_eq!(pl.counters().frames(), 1);
    assert_eq!(mem.freed, [0]);
}

// --------------------------------------------------------------- API properties

#[test]
fn labels_are_stable_unique_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for (i, a) in Action::ALL.iter().enumerate() {
        assert_eq!(*a as usize, i);
        assert!(seen.insert(a.label()));
    }
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
        assert!(seen.insert(r.label()));
    }
    for l in &seen {
        assert!(
            l.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
            "{l}"
        );
    }
    assert_eq!(Action::COUNT, 5);
    assert_eq!(Action::Encapsulated.label(), "encapsulated");
    assert_eq!(DropReason::TtlExpired.label(), "ttl_expired");
    assert_eq!(DropReason::NoNeighbour.to_string(), "no_neighbour");
    assert_eq!(std::mem::align_of::<pipeline::Counters>(), 64);
}

#[test]
fn every_drop_reason_is_reachable() {
    // The tests above each assert one reason; this lists them so a new reason without a
    // test is noticed.
    let tested = [
        DropReason::TtlExpired,
        DropReason::MalformedEthernet,
        DropReason::MalformedIpv4,
        DropReason::IpOptions,
        DropReason::Fragment,
        DropReason::VlanTagged,
        DropReason::NotIpv4,
        DropReason::NoRoute,
        DropReason::NoNeighbour,
        DropReason::BadVxlan,
        DropReason::WrongVni,
        DropReason::WrongPort,
        DropReason::InnerTooShort,
        DropReason::FrameTooBig,
        DropReason::NoHeadroom,
        DropReason::Hairpin,
        DropReason::BroadcastMulticast,
        DropReason::MartianSource,
        DropReason::TxRingFull,
        DropReason::NoTxSocket,
        DropReason::BadChain, // tests/chains.rs
    ];
    assert_eq!(tested.len(), DropReason::COUNT);
}

#[test]
fn batch_queues_tx_frames_in_order_and_frees_the_rest() {
    let snap = snapshot(Mode::Tunnel);
    let inputs = [
        from_pod1(REMOTE_B, 10),
        from_pod1(POD2, 10),
        from_pod1([8, 8, 8, 8], 10),
        from_pod1(REMOTE_C, 10),
        from_pod1(REMOTE_B, 11),
    ];
    let (mut mem, rx) = VecMem::with_frames(&inputs);
    let mut tx = TxQueues::new(snap.ports.len(), 8);
    let mut pl = Pipeline::new();
    let bytes = pl.process_batch(&snap, LXC1, &rx, &mut mem, &mut tx);
    assert_eq!(bytes, inputs.iter().map(|f| f.len() as u64).sum::<u64>());
    // Passed (8.8.8.8) and dropped (no_neighbour for node C) frames are freed and counted
    // at once; the TX frames wait, uncounted, on their port's queue.
    assert_eq!(mem.freed, [2, 3]);
    let c = pl.counters();
    assert_eq!((c.passed, c.dropped(DropReason::NoNeighbour)), (1, 1));
    assert_eq!(c.frames(), 2);
    let up = tx.pending(usize::from(UPLINK)).to_vec();
    assert_eq!(up.iter().map(|d| d.chunk).collect::<Vec<_>>(), [0, 4]);
    assert_eq!(up[0].off, HEADROOM - 50, "encap moved the frame start back");
    assert_eq!(up[0].len, inputs[0].len() + 50);
    assert_valid(&mem.bytes(&up[0])[50..]);
    assert_eq!(tx.pending(usize::from(LXC2)).len(), 1);
    // The ring took one of the two uplink frames: one encapsulated, one tx_ring_full.
    let s = tx.settle(usize::from(UPLINK), 1, &mut pl, &mut mem);
    assert_eq!((s.sent, s.dropped), (1, 1));
    assert_eq!(s.bytes, (inputs[0].len() + 50) as u64);
    assert_eq!(mem.freed, [2, 3, 4]);
    let s = tx.settle(usize::from(LXC2), 1, &mut pl, &mut mem);
    assert_eq!((s.sent, s.dropped), (1, 0));
    assert!(tx.is_empty());
    let c = pl.counters();
    assert_eq!(
        (
            c.action(Action::Encapsulated),
            c.action(Action::DeliveredLocal),
            c.dropped(DropReason::TxRingFull),
        ),
        (1, 1, 1)
    );
    // Every frame counted exactly once: 5 in, 5 counted.
    assert_eq!(c.frames(), 5);
    let mut sum = pipeline::Counters::new();
    sum.add(c);
    sum.add(c);
    assert_eq!(sum.frames(), 10);
}

#[test]
fn batch_verdict_for_a_port_without_socket_is_counted_and_freed() {
    // The snapshot knows LXC2 but this worker has sockets for the uplink and LXC1 only
    // (a port being added): the frame is no_tx_socket, freed, counted once.
    let snap = snapshot(Mode::Tunnel);
    let (mut mem, rx) = VecMem::with_frames(&[from_pod1(POD2, 10)]);
    let mut tx = TxQueues::new(2, 8);
    let mut pl = Pipeline::new();
    pl.process_batch(&snap, LXC1, &rx, &mut mem, &mut tx);
    assert!(tx.is_empty());
    assert_eq!(mem.freed, [0]);
    assert_eq!(pl.counters().dropped(DropReason::NoTxSocket), 1);
    assert_eq!(pl.counters().frames(), 1);
}

#[test]
fn batch_from_an_unknown_port_passes_every_frame() {
    let snap = snapshot(Mode::Tunnel);
    let (mut mem, rx) = VecMem::with_frames(&[from_pod1(POD2, 10), from_pod1(REMOTE_B, 10)]);
    let mut tx = TxQueues::new(snap.ports.len(), 8);
    let mut pl = Pipeline::new();
    pl.process_batch(&snap, 99, &rx, &mut mem, &mut tx);
    assert!(tx.is_empty());
    assert_eq!(mem.freed, [0, 1]);
    assert_eq!(pl.counters().passed, 2);
}

#[test]
fn batch_and_single_frame_decide_alike() {
    for mode in [Mode::Tunnel, Mode::Native] {
        let snap = snapshot(mode);
        let inputs = [
            from_pod1(REMOTE_B, 100),
            from_pod1(POD2, 100),
            from_pod1([8, 8, 8, 8], 10),
            from_pod1(REMOTE_B, 1500),
        ];
        let (mut mem, rx) = VecMem::with_frames(&inputs);
        let mut tx = TxQueues::new(snap.ports.len(), 8);
        let mut batch = Pipeline::new();
        batch.process_batch(&snap, LXC1, &rx, &mut mem, &mut tx);
        let mut single = Pipeline::new();
        for (i, f) in inputs.iter().enumerate() {
            let out = run(&mut single, &snap, LXC1, f);
            if let Verdict::Tx { port, .. } = out.v {
                let q = tx.pending(usize::from(port));
                let d = q.iter().find(|d| d.chunk == i).expect("queued");
                assert_eq!(mem.bytes(d), &out.bytes[..], "{mode:?} frame {i}");
            }
        }
        for p in 0..tx.nports() {
            let n = tx.pending(p).len();
            tx.settle(p, n, &mut batch, &mut mem);
        }
        assert_eq!(batch.counters(), single.counters(), "{mode:?}");
    }
}

#[test]
fn out_of_range_frame_bounds_are_clamped() {
    let snap = snapshot(Mode::Tunnel);
    let mut pl = Pipeline::new();
    let mut buf = vec![0u8; 100];
    let mut f = Frame::new(&mut buf, 90, 5000);
    let v = pl.process(&snap, LXC1, &mut f);
    assert_eq!(v, Verdict::Drop(DropReason::MalformedEthernet));
    assert!(f.off + f.len <= 100);
    let mut f = Frame::new(&mut buf, 500, 10);
    assert_eq!(
        pl.process(&snap, LXC1, &mut f),
        Verdict::Drop(DropReason::MalformedEthernet)
    );
    assert!(f.off + f.len <= 100);
}

#[test]
fn counters_count_every_verdict_once() {
    let snap = snapshot(Mode::Tunnel);
    assert_eq!(
        verdict(&snap, LXC1, &from_pod1(REMOTE_B, 1)),
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
}

#[test]
fn encap_uses_the_configured_vtep_mac_for_inner_l2() {
    use std::net::Ipv4Addr;
    let vtep = [0x0e, 0x5c, 0x1a, 0x2b, 0x3c, 0x4d];
    let local = snapshot(Mode::Tunnel).local.clone();
    let mut b = route::SnapshotBuilder::new(2, local);
    b.port("eth0", route::PortRole::Uplink, UPLINK_MAC, UPLINK_MTU);
    b.port("lxc1", route::PortRole::Pod, LXC1_MAC, 1450);
    b.endpoint(Ipv4Addr::from(POD1), LXC1, Some(POD1_MAC));
    b.node(
        "node-b",
        Ipv4Addr::from(NODE_B),
        "10.0.2.0/24".parse().unwrap(),
        Some(NODE_B_MAC),
    );
    b.vtep_mac(vtep);
    let snap = b.build().unwrap();
    let mut pl = Pipeline::new();
    let out = run(&mut pl, &snap, LXC1, &from_pod1(REMOTE_B, 20));
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
    assert_eq!(out.bytes[..6], NODE_B_MAC); // outer: next hop
    assert_eq!(out.bytes[50..56], vtep); // inner: the VTEP
    assert_eq!(out.bytes[56..62], UPLINK_MAC);
    assert_valid(&out.bytes[50..]);
}

#[test]
fn no_icmp_error_about_an_icmp_error_or_a_later_fragment() {
    // RFC 1812 §4.3.2.7. An echo request that is too big gets frag-needed ...
    let snap = snapshot(Mode::Tunnel);
    let mut pl = Pipeline::new();
    let echo = frame(POD1_MAC, LXC1_MAC, POD1, REMOTE_B, 64, L4::Icmp, 1451 - 28);
    let out = run(&mut pl, &snap, LXC1, &echo);
    assert_frag_needed(&out, &echo, LXC1, LXC1_MAC, POD1_MAC, 1450);
    // ... but the same packet turned into an ICMP error (type 3) is dropped without one.
    let mut err = echo.clone();
    err[34] = 3; // ICMP type: destination unreachable
    err[35] = 1;
    let csum_at = 36;
    err[csum_at] = 0;
    err[csum_at + 1] = 0;
    let c = wire::checksum::checksum(&err[34..], 0);
    err[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    assert_drop(&snap, LXC1, &err, DropReason::FrameTooBig);
}

// --------------------------------------------------------------- hybrid mode

#[test]
fn hybrid_routes_on_link_nodes_natively_and_tunnels_to_the_rest() {
    let snap = hybrid_snapshot();
    // Node B is on-link: the pod packet goes as it is, to B's MAC.
    let out = run(&mut Pipeline::new(), &snap, LXC1, &from_pod1(REMOTE_B, 40));
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::RoutedNative
        }
    );
    assert_eq!(out.bytes[..6], NODE_B_MAC);
    assert_eq!(out.bytes[30..34], REMOTE_B, "bare pod IP on the wire");
    // Node D is behind a router: VXLAN to D's IP, outer MAC the router's.
    let out = run(&mut Pipeline::new(), &snap, LXC1, &from_pod1(REMOTE_D, 40));
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: UPLINK,
            action: Action::Encapsulated
        }
    );
    assert_eq!(out.bytes[..6], ROUTER_MAC);
    assert_eq!(out.bytes[30..34], NODE_D, "outer destination: node D");
    assert_valid(&out.bytes[50..]);
    // A pod MTU of 1450 leaves room for the tunnel: a 1450-byte DF packet to D fits.
    let out = run(
        &mut Pipeline::new(),
        &snap,
        LXC1,
        &from_pod1(REMOTE_D, 1450 - 28),
    );
    assert!(matches!(
        out.v,
        Verdict::Tx {
            action: Action::Encapsulated,
            ..
        }
    ));
}

#[test]
fn hybrid_takes_vxlan_and_native_frames_on_the_uplink() {
    let snap = hybrid_snapshot();
    let inner = inner_frame(POD1, 20);
    let out = run(
        &mut Pipeline::new(),
        &snap,
        UPLINK,
        &vxlan_frame(NODE_A, 8472, 0x08, 1, &inner),
    );
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC1,
            action: Action::Decapsulated
        }
    );
    let native = frame(
        NODE_B_MAC,
        UPLINK_MAC,
        REMOTE_B,
        POD1,
        64,
        L4::Udp { sport: 1, dport: 2 },
        20,
    );
    let out = run(&mut Pipeline::new(), &snap, UPLINK, &native);
    assert_eq!(
        out.v,
        Verdict::Tx {
            port: LXC1,
            action: Action::DeliveredLocal
        }
    );
    // VXLAN checks still apply (wrong VNI), and the node's own traffic passes.
    assert_drop(
        &snap,
        UPLINK,
        &vxlan_frame(NODE_A, 8472, 0x08, 7, &inner),
        DropReason::WrongVni,
    );
    let to_node = frame(
        NODE_B_MAC,
        UPLINK_MAC,
        NODE_B,
        NODE_A,
        64,
        L4::Tcp {
            sport: 179,
            dport: 40000,
        },
        20,
    );
    assert_eq!(verdict(&snap, UPLINK, &to_node), Verdict::Pass);
}
