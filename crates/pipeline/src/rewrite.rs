//! The in-place rewrites: L2 to the next hop, VXLAN encap/decap offsets, partial
//! checksum completion, ICMP fragmentation-needed, the VXLAN source-port flow hash.
//! Callers have validated lengths; these only write.

use route::{OuterHeader, OUTER_LEN};
use wire::checksum;
use wire::ethernet::{self, EthernetFrame, Mac};
use wire::icmpv4::Icmpv4Packet;
use wire::ipv4::{self, IpProtocol, Ipv4Packet};

/// Offset of the IPv4 header in an untagged frame.
pub(crate) const IP: usize = ethernet::HEADER_LEN;

/// Sets source and destination MAC of the frame starting at `frame[0]`.
#[inline]
pub(crate) fn set_l2(frame: &mut [u8], src: Mac, dst: Mac) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
}

/// TTL - 1 with the incremental header checksum update, on the IPv4 header at `IP`.
#[inline]
pub(crate) fn decrement_ttl(frame: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut frame[IP..]).decrement_ttl();
}

/// Completes an offloaded (CHECKSUM_PARTIAL) TCP or UDP checksum in `l4`, the IPv4
/// payload of a non-fragment.
///
/// Linux leaves the folded, *non-inverted* pseudo-header sum in the checksum field of a
/// CHECKSUM_PARTIAL packet (`__tcp_v4_send_check`: `th->check = ~tcp_v4_check(len, s, d,
/// 0)`; `udp4_hwcsum` likewise) and expects the device to finish it. A field equal to that
/// value is taken as partial and completed. A complete checksum can collide with it, but
/// recomputing a correct checksum yields the same value, so a false positive only costs
/// the sum, never corrupts. Anything else is left alone (not verified).
///
/// Returns whether it wrote a checksum.
#[inline]
pub(crate) fn complete_partial_csum(l4: &mut [u8], src: u32, dst: u32, proto: IpProtocol) -> bool {
    let (at, udp) = match proto {
        IpProtocol::TCP => (wire::tcp::CHECKSUM_OFFSET, false),
        IpProtocol::UDP => (wire::udp::CHECKSUM_OFFSET, true),
        _ => return false,
    };
    let min = if udp {
        wire::udp::HEADER_LEN
    } else {
        wire::tcp::HEADER_LEN
    };
    if l4.len() < min {
        return false;
    }
    let Ok(len) = u16::try_from(l4.len()) else {
        return false;
    };
    if udp && u16::from_be_bytes([l4[4], l4[5]]) != len {
        // The UDP length disagrees with IP: not a packet Linux would have offloaded.
        return false;
    }
    let pseudo = checksum::pseudo_header_sum(src, dst, proto.0, len);
    let cur = u16::from_be_bytes([l4[at], l4[at + 1]]);
    if cur != checksum::fold(pseudo) {
        return false;
    }
    // Sum over the segment with the field counted as zero: add ~cur to cancel it.
    let s = checksum::sum(l4, pseudo) + u32::from(!cur);
    let mut c = !checksum::fold(s);
    if udp && c == 0 {
        c = 0xffff; // RFC 768: a computed 0 is sent as all ones.
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
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

/// VXLAN UDP source port for an inner flow: 49152 + hash(src, dst, proto, sport, dport)
/// mod 16384 (RFC 7348 §5 recommends a hash of the inner headers in the dynamic range, so
/// that the underlay's ECMP spreads flows; Linux does the same with `udp_flow_src_port`).
#[inline]
#[must_use]
pub fn flow_src_port(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> u16 {
    let a = (u64::from(src) << 32) | u64::from(dst);
    let b = (u64::from(proto) << 32) | (u64::from(sport) << 16) | u64::from(dport);
    let h = fmix64(a ^ fmix64(b));
    #[allow(clippy::cast_possible_truncation)] // masked to 14 bits
    let low = (h >> 32) as u16 & 0x3fff;
    0xc000 | low
}

/// The ports of a TCP or UDP payload, zeros for anything else or a short payload.
#[inline]
pub(crate) fn l4_ports(proto: IpProtocol, l4: &[u8]) -> (u16, u16) {
    if (proto == IpProtocol::TCP || proto == IpProtocol::UDP) && l4.len() >= 4 {
        (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        )
    } else {
        (0, 0)
    }
}

/// Prepends `outer` to the inner frame `buf[*off..*off + *len]` by moving `off` back 50
/// bytes, then patches the outer IPv4 total length and checksum (RFC 1624, from the
/// template's checksum for length 0), the UDP length and source port. The UDP checksum
/// stays 0 (RFC 7348 §5). The caller checked `*off >= 50` and that the sizes fit in u16.
#[inline]
pub(crate) fn encap(
    buf: &mut [u8],
    off: &mut usize,
    len: &mut usize,
    outer: &OuterHeader,
    sport: u16,
) {
    let start = *off - OUTER_LEN;
    // Inner L2: the remote VTEP's MAC and ours (a kernel VXLAN device on the far side
    // drops inner frames not addressed to it).
    buf[*off..*off + 12].copy_from_slice(&outer.inner_l2);
    let hdr = &mut buf[start..*off];
    hdr.copy_from_slice(&outer.bytes);
    // Outer IPv4 = IPv4 20 + UDP 8 + VXLAN 8 + inner frame.
    let ip_total = u16::try_from(*len + (OUTER_LEN - ethernet::HEADER_LEN)).unwrap_or(u16::MAX);
    let ip = OuterHeader::IP;
    hdr[ip + 2..ip + 4].copy_from_slice(&ip_total.to_be_bytes());
    let c = checksum::update_u16(outer.ip_checksum_base(), 0, ip_total);
    hdr[ip + ipv4::CHECKSUM_OFFSET..ip + ipv4::CHECKSUM_OFFSET + 2]
        .copy_from_slice(&c.to_be_bytes());
    let udp = OuterHeader::UDP;
    hdr[udp..udp + 2].copy_from_slice(&sport.to_be_bytes());
    hdr[udp + 4..udp + 6].copy_from_slice(&(ip_total - 20).to_be_bytes());
    *off = start;
    *len += OUTER_LEN;
}

/// Turns the IPv4 frame `frame` (untagged, header at `IP`, lengths validated) into an
/// ICMP destination unreachable / fragmentation needed (RFC 792, RFC 1191 §4) back to its
/// sender, in place: Ethernet to the original source MAC from `port_mac`; IPv4 from
/// `src_ip` to the original source, TTL 64, TOS 0xc0 (as Linux's `icmp_send`); ICMP
/// type 3 code 4 with `mtu`, quoting the original IPv4 header and the first 8 bytes of its
/// payload (RFC 792). Returns the new frame length, or `None` when `frame` cannot hold it.
pub(crate) fn frag_needed(frame: &mut [u8], port_mac: Mac, src_ip: u32, mtu: u16) -> Option<usize> {
    let (orig_src_mac, orig_src, quote) = {
        let eth = EthernetFrame::new_unchecked(&*frame);
        let ip = Ipv4Packet::new_unchecked(&frame[IP..]);
        let hl = ip.header_len();
        let data = usize::from(ip.total_len()).saturating_sub(hl).min(8);
        (eth.src_addr(), ip.src_addr(), hl + data)
    };
    let icmp_len = wire::icmpv4::HEADER_LEN + quote;
    let ip_total = ipv4::HEADER_LEN + icmp_len;
    let new_len = IP + ip_total;
    if frame.len() < new_len {
        return None;
    }
    // Move the quoted header + 8 bytes behind the new IPv4 and ICMP headers (overlapping
    // move of at most 68 bytes; this is the error path, not the payload path).
    let quote_at = IP + ipv4::HEADER_LEN + wire::icmpv4::HEADER_LEN;
    frame.copy_within(IP..IP + quote, quote_at);
    set_l2(frame, port_mac, orig_src_mac);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[IP..IP + ip_total]);
        ip.set_version_and_header_len(ipv4::HEADER_LEN);
        ip.set_dscp_ecn(0x30, 0); // TOS 0xc0: internetwork control
        ip.set_total_len(u16::try_from(ip_total).unwrap_or(u16::MAX));
        ip.set_ident(0);
        ip.set_flags_and_frag_offset(false, false, 0);
        ip.set_ttl(64);
        ip.set_protocol(IpProtocol::ICMP);
        ip.set_src_addr(src_ip);
        ip.set_dst_addr(orig_src);
        ip.fill_checksum();
    }
    let mut icmp = Icmpv4Packet::new_unchecked(&mut frame[IP + ipv4::HEADER_LEN..new_len]);
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
