//! Property tests: agreement with etherparse on random frames, no panic on any bytes,
//! RFC 1624 incremental updates against full recomputation.

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use wire::checksum;
use wire::{EtherType, EthernetFrame, Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};

include!("common/parse_all.rs");

#[derive(Debug, Clone)]
enum L4 {
    Udp {
        sport: u16,
        dport: u16,
    },
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        window: u16,
    },
    Icmp {
        id: u16,
        seq: u16,
    },
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(sport, dport)| L4::Udp { sport, dport }),
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u16>()).prop_map(
            |(sport, dport, seq, window)| L4::Tcp {
                sport,
                dport,
                seq,
                window
            }
        ),
        (any::<u16>(), any::<u16>()).prop_map(|(id, seq)| L4::Icmp { id, seq }),
    ]
}

#[allow(clippy::too_many_arguments)]
fn build(
    smac: [u8; 6],
    dmac: [u8; 6],
    vlan: Option<u16>,
    sip: [u8; 4],
    dip: [u8; 4],
    ttl: u8,
    l4: &L4,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(smac, dmac);
    let mut out = Vec::new();
    macro_rules! finish {
        ($ip:expr) => {{
            let ip = $ip;
            match *l4 {
                L4::Udp { sport, dport } => ip.udp(sport, dport).write(&mut out, payload).unwrap(),
                L4::Tcp {
                    sport,
                    dport,
                    seq,
                    window,
                } => ip
                    .tcp(sport, dport, seq, window)
                    .write(&mut out, payload)
                    .unwrap(),
                L4::Icmp { id, seq } => ip
                    .icmpv4_echo_request(id, seq)
                    .write(&mut out, payload)
                    .unwrap(),
            }
        }};
    }
    match vlan {
        Some(v) => finish!(eth
            .single_vlan(etherparse::VlanId::try_new(v).unwrap())
            .ipv4(sip, dip, ttl)),
        None => finish!(eth.ipv4(sip, dip, ttl)),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Frames etherparse builds parse the same way through our views.
    #[test]
    fn agrees_with_etherparse(
        smac in any::<[u8; 6]>(), dmac in any::<[u8; 6]>(),
        vlan in proptest::option::of(0u16..4096),
        sip in any::<[u8; 4]>(), dip in any::<[u8; 4]>(), ttl in any::<u8>(),
        l4 in l4(), payload in proptest::collection::vec(any::<u8>(), 0..300),
        padding in 0usize..20,
    ) {
        let mut frame = build(smac, dmac, vlan, sip, dip, ttl, &l4, &payload);
        // Ethernet padding after the IP datagram must not leak into the payload.
        frame.extend(std::iter::repeat_n(0u8, padding));
        let theirs = SlicedPacket::from_ethernet(&frame).unwrap();

        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        prop_assert_eq!(eth.src_addr(), smac);
        prop_assert_eq!(eth.dst_addr(), dmac);
        prop_assert_eq!(eth.vlan(), vlan);
        prop_assert_eq!(eth.ethertype(), EtherType::IPV4);
        prop_assert_eq!(eth.header_len(), if vlan.is_some() { 18 } else { 14 });

        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let Some(NetSlice::Ipv4(tip)) = theirs.net else { panic!("etherparse saw no IPv4") };
        let th = tip.header();
        prop_assert_eq!(ip.header_len(), usize::from(th.ihl()) * 4);
        prop_assert_eq!(ip.total_len(), th.total_len());
        prop_assert_eq!(ip.ident(), th.identification());
        prop_assert_eq!(ip.dont_frag(), th.dont_fragment());
        prop_assert_eq!(ip.more_frags(), th.more_fragments());
        prop_assert_eq!(ip.frag_offset(), th.fragments_offset().value() * 8);
        prop_assert_eq!(ip.ttl(), th.ttl());
        prop_assert_eq!(ip.protocol().0, th.protocol().0);
        prop_assert_eq!(ip.checksum(), th.header_checksum());
        prop_assert_eq!(ip.src_addr().to_be_bytes(), th.source());
        prop_assert_eq!(ip.dst_addr().to_be_bytes(), th.destination());
        prop_assert!(ip.verify_checksum());
        prop_assert_eq!(ip.compute_checksum(), th.to_header().calc_header_checksum());
        prop_assert_eq!(ip.payload(), tip.payload().payload);
        let (s, d) = (ip.src_addr(), ip.dst_addr());

        match (theirs.transport, &l4) {
            (Some(TransportSlice::Udp(tu)), L4::Udp { .. }) => {
                prop_assert_eq!(ip.protocol(), IpProtocol::UDP);
                let u = UdpPacket::new_checked(ip.payload()).unwrap();
                prop_assert_eq!(u.src_port(), tu.source_port());
                prop_assert_eq!(u.dst_port(), tu.destination_port());
                prop_assert_eq!(u.len(), tu.length());
                prop_assert_eq!(u.checksum(), tu.checksum());
                prop_assert_eq!(u.payload(), tu.payload());
                prop_assert!(u.verify_checksum(s, d));
                prop_assert_eq!(u.compute_checksum(s, d), tu.checksum());
            }
            (Some(TransportSlice::Tcp(tt)), L4::Tcp { .. }) => {
                let t = TcpPacket::new_checked(ip.payload()).unwrap();
                prop_assert_eq!(t.src_port(), tt.source_port());
                prop_assert_eq!(t.dst_port(), tt.destination_port());
                prop_assert_eq!(t.seq_number(), tt.sequence_number());
                prop_assert_eq!(t.window(), tt.window_size());
                prop_assert_eq!(t.header_len(), tt.header_len());
                prop_assert_eq!(t.checksum(), tt.checksum());
                prop_assert_eq!(t.payload(), tt.payload());
                prop_assert!(t.verify_checksum(s, d));
                prop_assert_eq!(t.compute_checksum(s, d), tt.checksum());
            }
            (Some(TransportSlice::Icmpv4(ti)), L4::Icmp { id, seq }) => {
                let p = Icmpv4Packet::new_checked(ip.payload()).unwrap();
                prop_assert_eq!(p.msg_type(), ti.type_u8());
                prop_assert_eq!(p.code(), ti.code_u8());
                prop_assert_eq!(p.checksum(), ti.checksum());
                prop_assert_eq!(p.echo_ident(), *id);
                prop_assert_eq!(p.echo_seq_no(), *seq);
                prop_assert_eq!(p.data(), ti.payload());
                prop_assert!(p.verify_checksum());
            }
            (t, l) => prop_assert!(false, "transport mismatch: {t:?} vs {l:?}"),
        }
    }

    /// Arbitrary bytes: whenever etherparse accepts an IPv4 header, we read the same fields.
    #[test]
    fn ipv4_agrees_on_arbitrary_bytes(mut b in proptest::collection::vec(any::<u8>(), 20..80)) {
        b[0] = 0x40 | (b[0] & 0x0f); // mostly version 4, so headers get through
        let ours = Ipv4Packet::new_checked(&b[..]);
        if let Ok(th) = etherparse::Ipv4HeaderSlice::from_slice(&b) {
            if let Ok(p) = ours {
                prop_assert_eq!(p.header_len(), th.slice().len());
                prop_assert_eq!(p.total_len(), th.total_len());
                prop_assert_eq!(p.is_fragment(), th.is_fragmenting_payload());
                prop_assert_eq!(p.ttl(), th.ttl());
                prop_assert_eq!(p.src_addr().to_be_bytes(), th.source());
                prop_assert_eq!(p.options(), th.options());
            }
        }
    }

    /// Every checked constructor and every getter, on any bytes: no panic.
    #[test]
    fn no_panic_on_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_all(&b);
    }

    /// Same, on bytes that are mostly a valid frame with a few corruptions, so that the
    /// nested views (VXLAN inner frames included) are reached.
    #[test]
    fn no_panic_on_corrupted_frames(
        l4 in l4(), payload in proptest::collection::vec(any::<u8>(), 0..120),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let mut f = build([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], None, [10, 0, 1, 2], [10, 0, 2, 3], 64, &l4, &payload);
        for (i, v) in flips {
            let n = f.len();
            f[i % n] = v;
        }
        let n = cut % (f.len() + 1);
        let _ = parse_all(&f[..n]);
        let _ = parse_all(&f);
    }

    /// RFC 1624 eqn. 3 against a full recomputation over an IPv4 header, for any 16-bit
    /// field other than the checksum itself.
    #[test]
    fn incremental_u16_equals_full(mut h in any::<[u8; 20]>(), word in 0usize..10, new in any::<u16>()) {
        prop_assume!(word != 5);
        h[0] = 0x45; // as in any IPv4 header: the sum is never zero
        h[10] = 0; h[11] = 0;
        let c = checksum::checksum(&h, 0);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let old = u16::from_be_bytes([h[2 * word], h[2 * word + 1]]);
        h[2 * word..2 * word + 2].copy_from_slice(&new.to_be_bytes());
        let inc = checksum::update_u16(c, old, new);
        h[10] = 0; h[11] = 0;
        prop_assert_eq!(inc, checksum::checksum(&h, 0));
    }

    /// The same for a 32-bit field (source or destination address).
    #[test]
    fn incremental_u32_equals_full(mut h in any::<[u8; 20]>(), dst in any::<bool>(), new in any::<u32>()) {
        h[0] = 0x45;
        h[10] = 0; h[11] = 0;
        let c = checksum::checksum(&h, 0);
        let at = if dst { 16 } else { 12 };
        let old = u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        h[at..at + 4].copy_from_slice(&new.to_be_bytes());
        prop_assert_eq!(checksum::update_u32(c, old, new), checksum::checksum(&h, 0));
    }

    /// On arbitrary data (which may sum to zero), incremental and full results are the
    /// same ones'-complement value: equal, or the two representations of zero.
    #[test]
    fn incremental_equivalent_on_any_data(mut d in proptest::collection::vec(any::<u16>(), 1..40), i in any::<usize>(), new in any::<u16>()) {
        let bytes = |d: &[u16]| d.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>();
        let c = checksum::checksum(&bytes(&d), 0);
        let i = i % d.len();
        let old = d[i];
        d[i] = new;
        let inc = checksum::update_u16(c, old, new);
        let full = checksum::checksum(&bytes(&d), 0);
        prop_assert!(inc == full || (inc ^ full == 0xffff && (inc == 0 || full == 0)), "inc {inc:#x} full {full:#x}");
    }

    /// The 8-byte-stride sum equals a plain word-by-word sum.
    #[test]
    fn sum_equals_naive(d in proptest::collection::vec(any::<u8>(), 0..600), init in 0u32..0x10000) {
        let mut s: u64 = u64::from(init);
        for w in d.chunks(2) {
            s += u64::from(if w.len() == 2 { u16::from_be_bytes([w[0], w[1]]) } else { u16::from(w[0]) << 8 });
        }
        while s > 0xffff { s = (s & 0xffff) + (s >> 16); }
        prop_assert_eq!(u64::from(checksum::fold(checksum::sum(&d, init))), s);
    }
}
