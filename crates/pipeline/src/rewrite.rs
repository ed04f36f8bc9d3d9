//! The in-place rewrites: L2 to the next hop, TTL, VXLAN encapsulation, partial
//! checksum completion, ICMP fragmentation-needed, the flow hash (VXLAN source port,
//! multipath next hop).
//!
//! Each step takes the [`Headers`] the frame was parsed into and writes through `wire`
//! views over the ranges that parse validated (so the views are `new_unchecked` and
//! nothing is re-checked); callers run every check before the first write.

use route::{OuterHeader, OUTER_LEN};
use wire::ethernet::{self, EthernetFrame, Mac};
use wire::icmpv4::Icmpv4Packet;
use wire::ipv4::{self, IpProtocol, Ipv4Packet};
use wire::tcp::{self, TcpPacket};
use wire::udp::{self, UdpPacket};

use crate::parse::Headers;

/// The outer IPv4 header of the VXLAN template has no options (RFC 7348 §5).
#[allow(clippy::cast_possible_truncation)] // 20 bytes; `u16::try_from` is not const
const OUTER_IP_HEADER_LEN: u16 = (OuterHeader::UDP - OuterHeader::IP) as u16;

/// Sets source and destination MAC of the Ethernet frame `frame`.
#[inline]
pub(crate) fn set_l2(frame: &mut [u8], src: Mac, dst: Mac) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
}

/// TTL - 1 with the incremental header checksum update (RFC 1624), as a router
/// forwards (RFC 1812 §5.3.1).
#[inline]
pub(crate) fn decrement_ttl(buf: &mut [u8], h: &Headers) {
    Ipv4Packet::new_unchecked(&mut buf[h.l3..h.end]).decrement_ttl();
}

/// The transport header of a packet whose checksum is partial (offloaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Partial {
    Tcp,
    Udp,
}

impl Partial {
    /// Offset of the checksum field in the transport header (the kernel's
    /// `csum_offset`: `offsetof(struct tcphdr, check)`, `offsetof(struct udphdr, check)`).
    #[inline]
    pub(crate) const fn field(self) -> u16 {
        match self {
            Partial::Tcp => 16,
            Partial::Udp => 6,
        }
    }
}

/// Whether the parsed non-fragment `h` carries an offloaded (CHECKSUM_PARTIAL) TCP or UDP
/// checksum, and which.
///
/// Linux leaves the folded, *non-inverted* pseudo-header sum in the checksum field of a
/// CHECKSUM_PARTIAL packet (`__tcp_v4_send_check`: `th->check = ~tcp_v4_check(len, s, d,
/// 0)`; `udp4_hwcsum` likewise) and expects the device to finish it. A field equal to that
/// value is taken as partial. A complete checksum can collide with it, but completing a
/// correct checksum yields the same value (in software here or in the kernel's offload,
/// which sums the field along), so a false positive only costs the sum, never corrupts.
/// Anything else is left alone (not verified).
#[inline]
pub(crate) fn partial_csum(buf: &[u8], h: &Headers) -> Option<Partial> {
    let (src, dst) = (h.ip.src, h.ip.dst);
    // The segment may go on past `buf` (a descriptor chain): its length is IPv4's.
    let l4 = &buf[h.l4..h.end];
    let len = u16::try_from(h.l4_len()).ok()?;
    match h.ip.proto {
        IpProtocol::TCP if l4.len() >= tcp::HEADER_LEN => {
            let partial = wire::checksum::partial_pseudo_header(src, dst, 6, len);
            (TcpPacket::new_unchecked(l4).checksum() == partial).then_some(Partial::Tcp)
        }
        IpProtocol::UDP if l4.len() >= udp::HEADER_LEN => {
            let dgram = UdpPacket::new_unchecked(l4);
            // A UDP length that disagrees with IP: not a packet Linux would have offloaded.
            (dgram.len() == len && dgram.checksum_is_partial(src, dst)).then_some(Partial::Udp)
        }
        _ => None,
    }
}

/// Completes the partial checksum [`partial_csum`] found in `h`, which lies wholly in
/// `buf` (`h.more == 0`; a chain's is completed by the transmit, over all its buffers).
#[inline]
pub(crate) fn complete_csum(buf: &mut [u8], h: &Headers, p: Partial) {
    debug_assert_eq!(
        h.more, 0,
        "a chained segment's checksum is not in one buffer"
    );
    let (src, dst) = (h.ip.src, h.ip.dst);
    let l4 = &mut buf[h.l4..h.end];
    match p {
        Partial::Tcp => TcpPacket::new_unchecked(l4).fill_checksum(src, dst),
        // RFC 768: a computed 0 is sent as all ones (fill_checksum does).
        Partial::Udp => UdpPacket::new_unchecked(l4).fill_checksum(src, dst),
    }
}

/// murmur3's 64-bit finaliser: every input bit reaches every output bit.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The flow hash of an inner 5-tuple (ports 0 for anything but TCP and UDP): murmur3's
/// finaliser over the addresses, protocol and ports. One hash serves both per-flow
/// choices, from independent bits: the VXLAN source port ([`src_port_of`], bits 32..45)
/// and the next hop of a multipath node (`route::hop_slot`, bits 58..63).
#[inline]
#[must_use]
pub fn flow_hash(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> u64 {
    let a = (u64::from(src) << 32) | u64::from(dst);
    let b = (u64::from(proto) << 32) | (u64::from(sport) << 16) | u64::from(dport);
    fmix64(a ^ fmix64(b))
}

/// VXLAN UDP source port for a flow hash: 49152 + bits 32..45 of it, in the dynamic
/// range (RFC 7348 §5 recommends a hash of the inner headers there, so that the
/// underlay's ECMP spreads flows; Linux does the same with `udp_flow_src_port`).
#[inline]
#[must_use]
pub fn src_port_of(flow_hash: u64) -> u16 {
    #[allow(clippy::cast_possible_truncation)] // masked to 14 bits
    let low = (flow_hash >> 32) as u16 & 0x3fff;
    0xc000 | low
}

/// VXLAN UDP source port for an inner flow: [`src_port_of`] its [`flow_hash`].
#[inline]
#[must_use]
pub fn flow_src_port(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> u16 {
    src_port_of(flow_hash(src, dst, proto, sport, dport))
}

/// The [`flow_hash`] of the parsed packet `h`.
#[inline]
pub(crate) fn frame_flow_hash(buf: &[u8], h: &Headers) -> u64 {
    let (sp, dp) = l4_ports(buf, h);
    flow_hash(h.ip.src, h.ip.dst, h.ip.proto.0, sp, dp)
}

/// The ports of a TCP or UDP payload of the parsed `h`, zeros for anything else or a
/// payload too short to hold them.
#[inline]
pub(crate) fn l4_ports(buf: &[u8], h: &Headers) -> (u16, u16) {
    let l4 = &buf[h.l4..h.end];
    // Both headers start with source and destination port (RFC 793 §3.1, RFC 768).
    const PORTS_LEN: usize = 4;
    if l4.len() < PORTS_LEN {
        return (0, 0);
    }
    match h.ip.proto {
        IpProtocol::TCP => {
            let seg = TcpPacket::new_unchecked(l4);
            (seg.src_port(), seg.dst_port())
        }
        IpProtocol::UDP => {
            let dgram = UdpPacket::new_unchecked(l4);
            (dgram.src_port(), dgram.dst_port())
        }
        _ => (0, 0),
    }
}

/// The inner frame's destination and source MACs that `outer` asks for.
#[inline]
fn inner_macs(outer: &OuterHeader) -> (Mac, Mac) {
    let (mut dst, mut src) = ([0; 6], [0; 6]);
    dst.copy_from_slice(&outer.inner_l2[..6]);
    src.copy_from_slice(&outer.inner_l2[6..]);
    (dst, src)
}

/// Prepends `outer` to the parsed frame `h` in `buf` (50 bytes of headroom before
/// `h.l2`, which the caller checked), then patches the outer IPv4 total length and
/// checksum (RFC 1624, from the template's checksum for length 0), the UDP length and
/// source port. The UDP checksum stays 0 (RFC 7348 §5). Returns the new frame's offset
/// and length in `buf`.
#[inline]
pub(crate) fn encap(
    buf: &mut [u8],
    h: &Headers,
    outer: &OuterHeader,
    sport: u16,
) -> (usize, usize) {
    let start = h.l2 - OUTER_LEN;
    // Inner L2: the remote VTEP's MAC and ours (a kernel VXLAN device on the far side
    // drops inner frames not addressed to it).
    let (dst, src) = inner_macs(outer);
    set_l2(&mut buf[h.l2..h.end], src, dst);
    let hdr = &mut buf[start..h.l2];
    hdr.copy_from_slice(&outer.bytes);
    // Outer IPv4 = IPv4 20 + UDP 8 + VXLAN 8 + inner frame (all of it, also the part in
    // a chain's further buffers).
    let ip_total =
        u16::try_from(h.total_len() + (OUTER_LEN - ethernet::HEADER_LEN)).unwrap_or(u16::MAX);
    Ipv4Packet::new_unchecked(&mut hdr[OuterHeader::IP..OuterHeader::UDP])
        .set_total_len_incremental(ip_total);
    let mut udp = UdpPacket::new_unchecked(&mut hdr[OuterHeader::UDP..OuterHeader::VXLAN]);
    udp.set_src_port(sport);
    udp.set_len(ip_total - OUTER_IP_HEADER_LEN);
    (start, h.len() + OUTER_LEN)
}

/// Turns the parsed IPv4 frame `h` into an ICMP destination unreachable /
/// fragmentation needed (RFC 792, RFC 1191 §4) back to its sender, in place in
/// `buf[h.l2..rx_end]` (`rx_end`: the end of the frame as received, padding included):
/// Ethernet to the original source MAC from `port_mac`; IPv4 from `src_ip` to the
/// original source, TTL 64, TOS 0xc0 (as Linux's `icmp_send`); ICMP type 3 code 4 with
/// `mtu`, quoting the original IPv4 header and the first 8 bytes of its payload
/// (RFC 792). Returns the new frame length, or `None` when the frame cannot hold it.
pub(crate) fn frag_needed(
    buf: &mut [u8],
    h: &Headers,
    rx_end: usize,
    port_mac: Mac,
    src_ip: u32,
    mtu: u16,
) -> Option<usize> {
    let hl = h.ip.header_len;
    let quote = hl + usize::from(h.ip.total_len).saturating_sub(hl).min(8);
    let frame = buf.get_mut(h.l2..rx_end)?;
    let ip_at = h.l3 - h.l2;
    let icmp_at = ip_at + ipv4::HEADER_LEN;
    let icmp_len = wire::icmpv4::HEADER_LEN + quote;
    let ip_total = ipv4::HEADER_LEN + icmp_len;
    let new_len = ip_at + ip_total;
    if frame.len() < new_len {
        return None;
    }
    // Move the quoted header + 8 bytes behind the new IPv4 and ICMP headers (overlapping
    // move of at most 68 bytes; this is the error path, not the payload path).
    frame.copy_within(ip_at..ip_at + quote, icmp_at + wire::icmpv4::HEADER_LEN);
    set_l2(frame, port_mac, h.src_mac);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[ip_at..new_len]);
        ip.set_version_and_header_len(ipv4::HEADER_LEN);
        ip.set_dscp_ecn(0x30, 0); // TOS 0xc0: internetwork control
        ip.set_total_len(u16::try_from(ip_total).unwrap_or(u16::MAX));
        ip.set_ident(0);
        ip.set_flags_and_frag_offset(false, false, 0);
        ip.set_ttl(64);
        ip.set_protocol(IpProtocol::ICMP);
        ip.set_src_addr(src_ip);
        ip.set_dst_addr(h.ip.src);
        ip.fill_checksum();
    }
    let mut icmp = Icmpv4Packet::new_unchecked(&mut frame[icmp_at..new_len]);
    icmp.set_frag_needed(mtu);
    icmp.fill_checksum();
    Some(new_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_port_in_dynamic_range_and_spread() {
        let mut seen = std::collections::HashSet::new();
        for sport in 0..2000u16 {
            let p = flow_src_port(0x0a00_0102, 0x0a00_0203, 6, 30000 + sport, 5201);
            assert!(p >= 49152);
            seen.insert(p);
        }
        // 2000 flows into 16384 buckets: a decent hash leaves few collisions.
        assert!(seen.len() > 1850, "only {} distinct ports", seen.len());
        assert_eq!(flow_src_port(1, 2, 17, 3, 4), flow_src_port(1, 2, 17, 3, 4));
    }
}
