//! Parse once: where a frame's headers lie in its chunk and the fields the decisions
//! read, validated with the checked `wire` constructors before any decision or write.
//!
//! Like the `l2_hdr_offset`/`l3_hdr_offset`/`l4_hdr_offset` VPP keeps in each
//! `vlib_buffer_t`, [`Headers`] holds offsets into [`Frame::buf`](crate::Frame), so the
//! rewrite steps ([`crate::rewrite`]) work on ranges this module already validated and
//! need neither re-parse nor re-check them.

use route::LocalNode;
use wire::ethernet::{self, EtherType, EthernetFrame, Mac};
use wire::ipv4::{self, IpProtocol, Ipv4Packet};
use wire::udp::UdpPacket;
use wire::vxlan::{self, VxlanPacket};

use crate::{DropReason, Frame};

/// The fields of a validated IPv4 header the decisions need, read before any write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ip4 {
    pub src: u32,
    pub dst: u32,
    pub total_len: u16,
    pub header_len: usize,
    pub ttl: u8,
    pub dont_frag: bool,
    pub is_fragment: bool,
    /// In bytes; non-zero for a non-initial fragment (RFC 791 §3.1).
    pub frag_offset: u16,
    pub proto: IpProtocol,
}

impl Ip4 {
    /// Validates the IPv4 header in `b` (version, IHL, total length, checksum), for a
    /// packet that goes on for `more` bytes past `b` (a descriptor chain's further
    /// buffers): then it must end exactly where the chain does.
    #[inline(always)]
    fn parse(b: &[u8], more: usize) -> Result<Self, DropReason> {
        let ip = Ipv4Packet::new_checked_with(b, more).map_err(|_| DropReason::MalformedIpv4)?;
        if !ip.verify_checksum() || (more > 0 && usize::from(ip.total_len()) != b.len() + more) {
            return Err(DropReason::MalformedIpv4);
        }
        Ok(Self::read(&ip))
    }

    #[inline(always)]
    fn read<T: AsRef<[u8]>>(ip: &Ipv4Packet<T>) -> Self {
        Self {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            total_len: ip.total_len(),
            header_len: ip.header_len(),
            ttl: ip.ttl(),
            dont_frag: ip.dont_frag(),
            is_fragment: ip.is_fragment(),
            frag_offset: ip.frag_offset(),
            proto: ip.protocol(),
        }
    }
}

/// An untagged Ethernet/IPv4 frame, parsed: offsets into the chunk and the fields the
/// decisions read. Invariant (established by the checked parse):
/// `l2 + 14 == l3`, `l3 + 20 <= l4 <= end <= buf.len()`, `l4 - l3 == ip.header_len`,
/// `end - l3 + more == ip.total_len`.
///
/// `more` is non-zero only for a frame received as a descriptor chain (multi-buffer
/// AF_XDP, a frame larger than one UMEM frame): the headers lie in the first buffer,
/// which `buf` is, and the packet goes on in the others, which the pipeline neither
/// reads nor writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Headers {
    /// Start of the Ethernet header.
    pub l2: usize,
    /// Start of the IPv4 header.
    pub l3: usize,
    /// Start of the IPv4 payload (after options, if any).
    pub l4: usize,
    /// End of the IPv4 packet in `buf` (`l3` + total length, less `more`): Ethernet
    /// padding after it is not part of the frame that leaves.
    pub end: usize,
    /// Bytes of the packet past `buf` (the rest of a descriptor chain).
    pub more: usize,
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub ip: Ip4,
}

impl Headers {
    /// The headers of the IPv4 packet in `eth`, which starts at `l2` in the chunk.
    #[inline(always)]
    fn ipv4(eth: &EthernetFrame<&[u8]>, l2: usize, more: usize) -> Result<Self, DropReason> {
        let ip = Ip4::parse(eth.payload(), more)?;
        let l3 = l2 + ethernet::HEADER_LEN;
        Ok(Self {
            l2,
            l3,
            l4: l3 + ip.header_len,
            end: l3 + usize::from(ip.total_len) - more,
            more,
            src_mac: eth.src_addr(),
            dst_mac: eth.dst_addr(),
            ip,
        })
    }

    /// The part of the frame in `buf`, which the rewrite steps write: `buf[l2..end]`.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.l2
    }

    /// The whole frame's length: [`Headers::len`] and the rest of a chain.
    #[inline]
    pub fn total_len(&self) -> usize {
        self.len() + self.more
    }

    /// The IPv4 payload's length (the transport segment, also past `buf`).
    #[inline]
    pub fn l4_len(&self) -> usize {
        self.end - self.l4 + self.more
    }
}

/// The received Ethernet header of `data`: untagged IPv4 is `Some`, another EtherType is
/// `None` (the kernel's business).
#[inline(always)]
fn untagged_ipv4(data: &[u8]) -> Result<Option<EthernetFrame<&[u8]>>, DropReason> {
    let eth = EthernetFrame::new_checked(data).map_err(|_| DropReason::MalformedEthernet)?;
    if eth.is_tagged() {
        return Err(DropReason::VlanTagged);
    }
    Ok((eth.ethertype() == EtherType::IPV4).then_some(eth))
}

/// Parses the (clamped) `frame` as untagged Ethernet/IPv4: `None` when it is not IPv4.
///
/// Always inlined: returned through memory, `Headers` costs store-forwarding stalls on
/// the way back (about 10 ns a frame in a tight loop); inlined, its fields stay in
/// registers. The same holds for [`Ip4`] and the `(Egress, u16)` of the route steps.
#[inline(always)]
pub(crate) fn frame(frame: &Frame) -> Result<Option<Headers>, DropReason> {
    let data = &frame.buf[frame.off..frame.off + frame.len];
    match untagged_ipv4(data)? {
        // A literal 0 for the common frame in one buffer, so that the inlined parse
        // carries none of the chain's checks.
        Some(eth) if frame.more == 0 => Headers::ipv4(&eth, frame.off, 0).map(Some),
        Some(eth) => Headers::ipv4(&eth, frame.off, frame.more).map(Some),
        None => Ok(None),
    }
}

/// Parses the (clamped) `frame` received on the uplink in tunnel mode: outer
/// Ethernet/IPv4/UDP/VXLAN for `local`, and the inner frame, whose [`Headers`] it returns.
/// `None` for traffic that is not VXLAN to the node IP (the kernel's business).
#[inline(always)]
pub(crate) fn vxlan(frame: &Frame, local: &LocalNode) -> Result<Option<Headers>, DropReason> {
    let data = &frame.buf[frame.off..frame.off + frame.len];
    let Some((at, end)) = vxlan_inner(data, frame.more, local)? else {
        return Ok(None);
    };
    let ieth = EthernetFrame::new_unchecked(&data[at..end]);
    if frame.more == 0 {
        return Headers::ipv4(&ieth, frame.off + at, 0).map(Some);
    }
    Headers::ipv4(&ieth, frame.off + at, frame.more).map(Some)
}

/// The outer headers of [`vxlan`] and the inner Ethernet header: where the untagged
/// IPv4 inner frame lies in `data`. Out of line, and returning two words rather than
/// [`Headers`], so that the outer parse does not crowd the inner one out of registers.
///
/// The outer UDP checksum is not verified (RFC 7348 §5: MAY; Linux sends 0). A frame
/// that goes on for `more` bytes past `data` (a descriptor chain) must have its outer
/// IPv4 and UDP lengths end exactly where the chain does.
#[inline(never)]
fn vxlan_inner(
    data: &[u8],
    more: usize,
    local: &LocalNode,
) -> Result<Option<(usize, usize)>, DropReason> {
    let Some(eth) = untagged_ipv4(data)? else {
        return Ok(None);
    };
    let outer_ip =
        Ipv4Packet::new_checked_with(eth.payload(), more).map_err(|_| DropReason::MalformedIpv4)?;
    if outer_ip.dst_addr() != u32::from(local.ip) || outer_ip.protocol() != IpProtocol::UDP {
        return Ok(None);
    }
    if !outer_ip.verify_checksum()
        || (more > 0 && usize::from(outer_ip.total_len()) != eth.payload().len() + more)
    {
        return Err(DropReason::MalformedIpv4);
    }
    if outer_ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let udp =
        UdpPacket::new_checked_with(outer_ip.payload(), more).map_err(|_| DropReason::BadVxlan)?;
    if more > 0 && usize::from(udp.len()) != outer_ip.payload().len() + more {
        return Err(DropReason::BadVxlan);
    }
    if udp.dst_port() != local.vxlan_port {
        return Err(DropReason::WrongPort);
    }
    let vx = VxlanPacket::new_checked(udp.payload()).map_err(|_| DropReason::BadVxlan)?;
    if !vx.has_vni() {
        return Err(DropReason::BadVxlan);
    }
    if vx.vni() != local.vni {
        return Err(DropReason::WrongVni);
    }
    let inner = vx.payload();
    if inner.len() < ethernet::HEADER_LEN + ipv4::HEADER_LEN {
        return Err(DropReason::InnerTooShort);
    }
    let ieth = EthernetFrame::new_unchecked(inner);
    if ieth.is_tagged() {
        return Err(DropReason::VlanTagged);
    }
    if ieth.ethertype() != EtherType::IPV4 {
        return Err(DropReason::NotIpv4);
    }
    // The inner frame starts right after the VXLAN header: every view above was checked
    // to hold its whole header.
    let at =
        ethernet::HEADER_LEN + outer_ip.header_len() + wire::udp::HEADER_LEN + vxlan::HEADER_LEN;
    Ok(Some((at, at + inner.len())))
}
