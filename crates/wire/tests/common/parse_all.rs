// Shared by tests/props.rs and fuzz/fuzz_targets/parse_all.rs through `include!`:
// every checked constructor of `wire` over `data` (directly and nested the way the
// pipeline nests them), then every getter of every view that was accepted. Must never
// panic. Returns a value derived from all reads so nothing is optimised away.
#[allow(dead_code)]
fn parse_all(data: &[u8]) -> u64 {
    use wire::{
        ArpPacket, EthernetFrame, Icmpv4Packet, Ipv4Packet, TcpPacket, UdpPacket, VxlanPacket,
    };

    fn eth(d: &[u8]) -> u64 {
        let Ok(f) = EthernetFrame::new_checked(d) else {
            return 0;
        };
        let mut acc = u64::from(f.dst_addr()[0]) + u64::from(f.src_addr()[5]);
        acc += u64::from(f.outer_ethertype().0) + u64::from(f.ethertype().0);
        acc += u64::from(f.vlan().unwrap_or(0)) + u64::from(f.tci().unwrap_or(0));
        acc += u64::from(f.is_tagged()) + f.header_len() as u64 + f.payload().len() as u64;
        acc + ip(f.payload()) + arp(f.payload())
    }
    fn arp(d: &[u8]) -> u64 {
        let Ok(a) = ArpPacket::new_checked(d) else {
            return 0;
        };
        u64::from(a.hardware_type())
            + u64::from(a.protocol_type())
            + u64::from(a.hardware_len())
            + u64::from(a.protocol_len())
            + u64::from(a.operation().0)
            + u64::from(a.sender_hw_addr()[0])
            + u64::from(a.sender_proto_addr())
            + u64::from(u32::from(a.sender_ip()))
            + u64::from(a.target_hw_addr()[0])
            + u64::from(a.target_proto_addr())
            + u64::from(u32::from(a.target_ip()))
    }
    fn ip(d: &[u8]) -> u64 {
        let Ok(p) = Ipv4Packet::new_checked(d) else {
            return 0;
        };
        let mut acc = u64::from(p.version()) + u64::from(p.ihl()) + p.header_len() as u64;
        acc += u64::from(p.has_options()) + u64::from(p.dscp()) + u64::from(p.ecn());
        acc += u64::from(p.total_len()) + u64::from(p.ident()) + u64::from(p.dont_frag());
        acc += u64::from(p.more_frags()) + u64::from(p.frag_offset()) + u64::from(p.is_fragment());
        acc += u64::from(p.ttl()) + u64::from(p.protocol().0) + u64::from(p.checksum());
        acc += u64::from(p.src_addr()) + u64::from(p.dst_addr());
        acc += u64::from(u32::from(p.src_ip())) + u64::from(u32::from(p.dst_ip()));
        acc += p.header().len() as u64 + p.options().len() as u64 + p.payload().len() as u64;
        acc += u64::from(p.verify_checksum()) + u64::from(p.compute_checksum());
        let (s, t) = (p.src_addr(), p.dst_addr());
        acc + udp(p.payload(), s, t) + tcp(p.payload(), s, t) + icmp(p.payload())
    }
    fn udp(d: &[u8], s: u32, t: u32) -> u64 {
        let Ok(u) = UdpPacket::new_checked(d) else {
            return 0;
        };
        let acc = u64::from(u.src_port()) + u64::from(u.dst_port()) + u64::from(u.len());
        acc + u64::from(u.checksum())
            + u.payload().len() as u64
            + u64::from(u.compute_checksum(s, t))
            + u64::from(u.verify_checksum(s, t))
            + vxlan(u.payload())
    }
    fn tcp(d: &[u8], s: u32, t: u32) -> u64 {
        let Ok(p) = TcpPacket::new_checked(d) else {
            return 0;
        };
        u64::from(p.src_port())
            + u64::from(p.dst_port())
            + u64::from(p.seq_number())
            + u64::from(p.ack_number())
            + p.header_len() as u64
            + u64::from(p.flags())
            + u64::from(p.window())
            + u64::from(p.checksum())
            + p.payload().len() as u64
            + u64::from(p.compute_checksum(s, t))
            + u64::from(p.verify_checksum(s, t))
    }
    fn icmp(d: &[u8]) -> u64 {
        let Ok(p) = Icmpv4Packet::new_checked(d) else {
            return 0;
        };
        u64::from(p.msg_type())
            + u64::from(p.code())
            + u64::from(p.checksum())
            + u64::from(p.echo_ident())
            + u64::from(p.echo_seq_no())
            + u64::from(p.is_frag_needed())
            + u64::from(p.next_hop_mtu())
            + p.data().len() as u64
            + u64::from(p.verify_checksum())
            + ip(p.data())
    }
    fn vxlan(d: &[u8]) -> u64 {
        let Ok(v) = VxlanPacket::new_checked(d) else {
            return 0;
        };
        u64::from(v.flags()) + u64::from(v.has_vni()) + u64::from(v.vni()) + eth(v.payload())
    }

    // Each constructor straight on the input, then the nested walk from Ethernet.
    let (s, t) = (0x0a00_0102, 0x0a00_0203);
    eth(data)
        .wrapping_add(arp(data))
        .wrapping_add(ip(data))
        .wrapping_add(udp(data, s, t))
        .wrapping_add(tcp(data, s, t))
        .wrapping_add(icmp(data))
        .wrapping_add(vxlan(data))
}
