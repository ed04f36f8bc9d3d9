//! A VXLAN frame as the Linux kernel's vxlan driver emits it (flannel's `flannel.1`
//! between two nodes): outer Ethernet / IPv4 (no DF, TTL 64) / UDP dport 8472 with
//! checksum 0 (`udpcsum` off, the kernel default for IPv4) / VXLAN VNI 1 / inner
//! Ethernet / IPv4 10.0.1.2 -> 10.0.2.3 (TTL 63: routed once) / ICMP echo request of
//! `ping`'s default 56 data bytes (16-byte timeval, then 0x10..0x37).
//! Parse what the bytes say, then build the same bytes with the setters.

use std::net::Ipv4Addr;

use wire::ethernet::{self, EtherType, EthernetFrame};
use wire::icmpv4::{self, Icmpv4Packet};
use wire::ipv4::{IpProtocol, Ipv4Packet};
use wire::udp::UdpPacket;
use wire::vxlan::{self, VxlanPacket};

#[rustfmt::skip]
pub const KERNEL_VXLAN_FRAME: [u8; 148] = [
    // outer Ethernet
    0x02, 0x00, 0xc6, 0x12, 0x00, 0x02, 0x02, 0x00, 0xc6, 0x12, 0x00, 0x01, 0x08, 0x00,
    // outer IPv4
    0x45, 0x00, 0x00, 0x86, 0x8f, 0x3a, 0x00, 0x00, 0x40, 0x11, 0x5f, 0x05, 0xc6, 0x12,
    0x00, 0x01, 0xc6, 0x12, 0x00, 0x02,
    // outer UDP
    0xd6, 0xb5, 0x21, 0x18, 0x00, 0x72, 0x00, 0x00,
    // VXLAN
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    // inner Ethernet
    0x0e, 0x5c, 0x1a, 0x2b, 0x3c, 0x4d, 0x72, 0x9f, 0x11, 0x22, 0x33, 0x44, 0x08, 0x00,
    // inner IPv4
    0x45, 0x00, 0x00, 0x54, 0x3b, 0x2a, 0x40, 0x00, 0x3f, 0x01, 0xe9, 0x7a, 0x0a, 0x00,
    0x01, 0x02, 0x0a, 0x00, 0x02, 0x03,
    // ICMP echo request header
    0x08, 0x00, 0x96, 0x0b, 0x0b, 0x1c, 0x00, 0x01,
    // ICMP data (timeval + 0x10..0x37)
    0x00, 0xb9, 0x55, 0x69, 0x00, 0x00, 0x00, 0x00, 0x40, 0xe2, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
    0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
];

const OUTER_DST: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x02];
const OUTER_SRC: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x01];
const INNER_DST: [u8; 6] = [0x0e, 0x5c, 0x1a, 0x2b, 0x3c, 0x4d];
const INNER_SRC: [u8; 6] = [0x72, 0x9f, 0x11, 0x22, 0x33, 0x44];

#[test]
fn parse_kernel_vxlan_frame() {
    let f = &KERNEL_VXLAN_FRAME[..];
    let eth = EthernetFrame::new_checked(f).unwrap();
    assert_eq!(eth.dst_addr(), OUTER_DST);
    assert_eq!(eth.src_addr(), OUTER_SRC);
    assert_eq!(eth.ethertype(), EtherType::IPV4);
    assert_eq!(eth.header_len(), 14);

    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(ip.header_len(), 20);
    assert_eq!(ip.total_len(), 134);
    assert_eq!(ip.ident(), 0x8f3a);
    assert!(!ip.dont_frag());
    assert!(!ip.is_fragment());
    assert_eq!(ip.ttl(), 64);
    assert_eq!(ip.protocol(), IpProtocol::UDP);
    assert_eq!(ip.src_ip(), Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(ip.dst_ip(), Ipv4Addr::new(198, 18, 0, 2));
    assert!(ip.verify_checksum());

    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(udp.src_port(), 54965);
    assert!((49152..=65535).contains(&udp.src_port()));
    assert_eq!(udp.dst_port(), vxlan::PORT_LINUX);
    assert_eq!(udp.len(), 114);
    assert_eq!(udp.checksum(), 0);
    assert!(udp.verify_checksum(ip.src_addr(), ip.dst_addr()));

    let vx = VxlanPacket::new_checked(udp.payload()).unwrap();
    assert_eq!(vx.flags(), vxlan::FLAG_I);
    assert!(vx.has_vni());
    assert_eq!(vx.vni(), 1);
    assert_eq!(vx.payload().len(), 98);
    assert_eq!(
        KERNEL_VXLAN_FRAME.len() - vx.payload().len(),
        wire::VXLAN_OVERHEAD
    );

    let ieth = EthernetFrame::new_checked(vx.payload()).unwrap();
    assert_eq!(ieth.dst_addr(), INNER_DST);
    assert_eq!(ieth.src_addr(), INNER_SRC);
    assert_eq!(ieth.ethertype(), EtherType::IPV4);

    let iip = Ipv4Packet::new_checked(ieth.payload()).unwrap();
    assert_eq!(iip.total_len(), 84);
    assert!(iip.dont_frag());
    assert_eq!(iip.ttl(), 63);
    assert_eq!(iip.protocol(), IpProtocol::ICMP);
    assert_eq!(iip.src_ip(), Ipv4Addr::new(10, 0, 1, 2));
    assert_eq!(iip.dst_ip(), Ipv4Addr::new(10, 0, 2, 3));
    assert!(iip.verify_checksum());

    let icmp = Icmpv4Packet::new_checked(iip.payload()).unwrap();
    assert_eq!(icmp.msg_type(), icmpv4::TYPE_ECHO_REQUEST);
    assert_eq!(icmp.code(), 0);
    assert_eq!(icmp.echo_ident(), 0x0b1c);
    assert_eq!(icmp.echo_seq_no(), 1);
    assert_eq!(icmp.data().len(), 56);
    assert_eq!(&icmp.data()[16..], &(0x10u8..0x38).collect::<Vec<_>>()[..]);
    assert!(icmp.verify_checksum());
}

#[test]
fn build_kernel_vxlan_frame() {
    let mut buf = [0u8; 148];
    // The ICMP data is opaque payload here; everything else goes through setters.
    let data_at = wire::VXLAN_OVERHEAD + 14 + 20 + 8;
    buf[data_at..].copy_from_slice(&KERNEL_VXLAN_FRAME[data_at..]);

    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.set_dst_addr(OUTER_DST);
    eth.set_src_addr(OUTER_SRC);
    eth.set_ethertype(EtherType::IPV4);

    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip.set_version_and_header_len(20);
    ip.set_dscp_ecn(0, 0);
    ip.set_total_len(134);
    ip.set_ident(0x8f3a);
    ip.set_flags_and_frag_offset(false, false, 0);
    ip.set_ttl(64);
    ip.set_protocol(IpProtocol::UDP);
    ip.set_src_addr(u32::from(Ipv4Addr::new(198, 18, 0, 1)));
    ip.set_dst_addr(u32::from(Ipv4Addr::new(198, 18, 0, 2)));
    ip.fill_checksum();

    let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
    udp.set_src_port(54965);
    udp.set_dst_port(vxlan::PORT_LINUX);
    udp.set_len(114);
    udp.set_checksum(0);

    let mut vx = VxlanPacket::new_unchecked(udp.payload_mut());
    vx.set_flags(vxlan::FLAG_I);
    vx.set_vni(1);

    let mut ieth = EthernetFrame::new_unchecked(vx.payload_mut());
    ieth.set_dst_addr(INNER_DST);
    ieth.set_src_addr(INNER_SRC);
    ieth.set_ethertype(EtherType::IPV4);

    let mut iip = Ipv4Packet::new_unchecked(ieth.payload_mut());
    iip.set_version_and_header_len(20);
    iip.set_total_len(84);
    iip.set_ident(0x3b2a);
    iip.set_flags_and_frag_offset(true, false, 0);
    iip.set_ttl(63);
    iip.set_protocol(IpProtocol::ICMP);
    iip.set_src_addr(u32::from(Ipv4Addr::new(10, 0, 1, 2)));
    iip.set_dst_addr(u32::from(Ipv4Addr::new(10, 0, 2, 3)));
    iip.fill_checksum();

    let mut icmp = Icmpv4Packet::new_unchecked(iip.payload_mut());
    icmp.set_msg_type(icmpv4::TYPE_ECHO_REQUEST);
    icmp.set_code(0);
    icmp.set_echo_ident(0x0b1c);
    icmp.set_echo_seq_no(1);
    icmp.fill_checksum();

    assert_eq!(buf, KERNEL_VXLAN_FRAME);
}

/// etherparse reads the same frame the same way (and the inner one after 50 bytes).
#[test]
fn etherparse_agrees_on_kernel_frame() {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let p = SlicedPacket::from_ethernet(&KERNEL_VXLAN_FRAME).unwrap();
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("no IPv4")
    };
    assert_eq!(ip.header().source(), [198, 18, 0, 1]);
    assert_eq!(ip.header().total_len(), 134);
    let Some(TransportSlice::Udp(udp)) = p.transport else {
        panic!("no UDP")
    };
    assert_eq!(udp.destination_port(), 8472);
    assert_eq!(udp.checksum(), 0);
    let inner = SlicedPacket::from_ethernet(&KERNEL_VXLAN_FRAME[wire::VXLAN_OVERHEAD..]).unwrap();
    let Some(NetSlice::Ipv4(iip)) = inner.net else {
        panic!("no inner IPv4")
    };
    assert_eq!(iip.header().destination(), [10, 0, 2, 3]);
    assert!(matches!(inner.transport, Some(TransportSlice::Icmpv4(_))));
    assert_eq!(ethernet::HEADER_LEN, 14);
}
