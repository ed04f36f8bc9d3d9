//! Multipath routes: a node behind several gateways gets each flow through one of them,
//! chosen by the flow hash that also makes the VXLAN source port; flows spread by weight
//! over the resolved gateways only.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use pipeline::{flow_hash, src_port_of, Action, DropReason, Frame, Pipeline, Verdict};
use route::{Mode, Snapshot};

/// A UDP frame from pod 1 to a pod on node B with these ports.
fn udp(sport: u16, dport: u16) -> Vec<u8> {
    frame(
        POD1_MAC,
        LXC1_MAC,
        POD1,
        REMOTE_B,
        64,
        L4::Udp { sport, dport },
        40,
    )
}

fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    frame(
        POD1_MAC,
        LXC1_MAC,
        POD1,
        REMOTE_B,
        64,
        L4::Tcp { sport, dport },
        40,
    )
}

/// The frame through `pl`: its verdict and the bytes that leave.
fn send(pl: &mut Pipeline, snap: &Snapshot, f: &[u8]) -> (Verdict, Vec<u8>) {
    let mut c = chunk(f);
    let mut fr = Frame::new(&mut c, HEADROOM, f.len());
    let v = pl.process(snap, LXC1, &mut fr);
    (v, fr.data().to_vec())
}

/// The destination MAC a frame to node B leaves with (the outer one in tunnel mode).
fn hop_mac(pl: &mut Pipeline, snap: &Snapshot, f: &[u8]) -> [u8; 6] {
    let (v, out) = send(pl, snap, f);
    let action = match snap.local.mode {
        Mode::Native => Action::RoutedNative,
        _ => Action::Encapsulated,
    };
    assert_eq!(
        v,
        Verdict::Tx {
            port: UPLINK,
            action
        }
    );
    out[..6].try_into().unwrap()
}

const TWO: [Gateway; 2] = [(GW1, 1, Some(GW1_MAC)), (GW2, 1, Some(GW2_MAC))];

fn modes() -> [Mode; 2] {
    [Mode::Tunnel, Mode::Native]
}

#[test]
fn one_flow_always_takes_one_hop() {
    for mode in modes() {
        let snap = multipath_snapshot(mode, &TWO);
        let mut pl = Pipeline::new();
        for (sport, mk) in [(40000, udp as fn(u16, u16) -> Vec<u8>), (40001, tcp)] {
            let first = hop_mac(&mut pl, &snap, &mk(sport, 5201));
            for i in 0..500usize {
                // Same 5-tuple, other payload bytes and TTL: the same hop every time.
                let mut f = mk(sport, 5201);
                let n = f.len();
                f[n - 1] = u8::try_from(i % 256).unwrap();
                assert_eq!(hop_mac(&mut pl, &snap, &f), first, "{mode} frame {i}");
            }
        }
    }
}

/// 256 flows (source ports) over two equal gateways: both used, about half each; the
/// hop is the one the flow hash's slot names, and in tunnel mode the VXLAN source port
/// comes from the same hash.
#[test]
fn flows_spread_over_both_hops_by_the_vxlan_flow_hash() {
    for mode in modes() {
        let snap = multipath_snapshot(mode, &TWO);
        let node = &snap.nodes[0];
        let mut pl = Pipeline::new();
        let mut per_mac: BTreeMap<[u8; 6], usize> = BTreeMap::new();
        for sport in 30000..30256u16 {
            let f = udp(sport, 5201);
            let (_, out) = send(&mut pl, &snap, &f);
            let mac: [u8; 6] = out[..6].try_into().unwrap();
            *per_mac.entry(mac).or_default() += 1;
            let h = flow_hash(
                u32::from_be_bytes(POD1),
                u32::from_be_bytes(REMOTE_B),
                17,
                sport,
                5201,
            );
            assert_eq!(mac, node.hops.pick(|| h).unwrap().mac, "{mode} {sport}");
            if mode == Mode::Tunnel {
                let udp_sport = u16::from_be_bytes([out[34], out[35]]);
                assert_eq!(udp_sport, src_port_of(h), "one hash for both");
            }
        }
        assert_eq!(per_mac.len(), 2, "{mode}: {per_mac:?}");
        for (mac, n) in &per_mac {
            assert!((96..=160).contains(n), "{mode}: {mac:02x?} took {n} of 256");
        }
        assert_eq!(pl.counters().frames(), 256);
    }
}

#[test]
fn weights_set_the_shares() {
    let snap = multipath_snapshot(
        Mode::Tunnel,
        &[(GW1, 1, Some(GW1_MAC)), (GW2, 3, Some(GW2_MAC))],
    );
    let mut pl = Pipeline::new();
    let mut to_gw2 = 0;
    for sport in 0..1024u16 {
        if hop_mac(&mut pl, &snap, &udp(20000 + sport, 443)) == GW2_MAC {
            to_gw2 += 1;
        }
    }
    // Weight 3 of 4: 48 of 64 slots, so about 768 of 1024 flows.
    assert!(
        (704..=832).contains(&to_gw2),
        "{to_gw2} of 1024 to weight 3"
    );
}

/// A hop without a MAC yet holds no slot: every flow goes to the resolved one, none is
/// dropped; with no hop resolved, frames are `no_neighbour` as for any unresolved node.
#[test]
fn unresolved_hops_are_skipped() {
    for mode in modes() {
        let snap = multipath_snapshot(mode, &[(GW1, 1, None), (GW2, 1, Some(GW2_MAC))]);
        let mut pl = Pipeline::new();
        let macs: BTreeSet<[u8; 6]> = (0..256u16)
            .map(|p| hop_mac(&mut pl, &snap, &udp(30000 + p, 53)))
            .collect();
        assert_eq!(macs, BTreeSet::from([GW2_MAC]), "{mode}");

        let none = multipath_snapshot(mode, &[(GW1, 1, None), (GW2, 1, None)]);
        let mut pl = Pipeline::new();
        let f = udp(30000, 53);
        let (v, out) = send(&mut pl, &none, &f);
        assert_eq!(v, Verdict::Drop(DropReason::NoNeighbour), "{mode}");
        assert_eq!(out, f, "a dropped frame is left as it came");
    }
}

/// Without ports (ICMP) the flow is the address pair: every echo takes one hop.
#[test]
fn icmp_between_two_pods_keeps_one_hop() {
    let snap = multipath_snapshot(Mode::Native, &TWO);
    let mut pl = Pipeline::new();
    let macs: BTreeSet<[u8; 6]> = (0..50usize)
        .map(|n| {
            let f = frame(POD1_MAC, LXC1_MAC, POD1, REMOTE_B, 64, L4::Icmp, n);
            hop_mac(&mut pl, &snap, &f)
        })
        .collect();
    assert_eq!(macs.len(), 1, "{macs:02x?}");
}
