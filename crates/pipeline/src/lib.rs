//! podfwd's per-frame decision: parse, classify, look up, rewrite in place.
//!
//! [`Pipeline::process`] is a pure function of the frame bytes, the rx port and the
//! route [`Snapshot`], plus two pieces of worker-local state: the pod MACs it has
//! learned and its [`Counters`]. It never allocates and never copies a payload: a
//! forwarded frame is rewritten where it lies, and VXLAN encapsulation moves
//! [`Frame::off`] back 50 bytes into the UMEM chunk's headroom (decapsulation moves it
//! forward). Every frame gets exactly one [`Verdict`] and bumps exactly one counter of
//! `actions`/`drops`/`passed`.
//!
//! The decisions (DESIGN.md, "Data path" 4) are spelled out on [`Pipeline::process`].
//! A frame that is dropped is left untouched: all checks run before the first write.
#![forbid(unsafe_code)]

mod batch;
mod counters;
mod rewrite;
mod verdict;

use std::net::Ipv4Addr;

use route::{Mode, PortId, PortInfo, Snapshot, Target, OUTER_LEN};
use wire::ethernet::{self, mac_is_multicast, EtherType, EthernetFrame, Mac};
use wire::ipv4::{IpProtocol, Ipv4Packet};
use wire::udp::UdpPacket;
use wire::vxlan::VxlanPacket;

pub use batch::{FrameMem, Settled, TxQueues};
pub use counters::Counters;
pub use rewrite::flow_src_port;
pub use verdict::{Action, DropReason, Verdict};

use rewrite::IP;

/// One received frame: `buf[off..off + len]` inside its whole UMEM chunk `buf`, so that
/// the pipeline can grow it at the front (encap) or shrink it (decap, ICMP).
///
/// After [`Pipeline::process`] returns [`Verdict::Tx`], `off` and `len` describe the frame
/// to transmit; they always stay within `buf`.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The whole UMEM chunk.
    pub buf: &'a mut [u8],
    /// Start of the packet within `buf`.
    pub off: usize,
    /// Length of the packet.
    pub len: usize,
}

impl<'a> Frame<'a> {
    /// A frame of `len` bytes at `off` in `buf`.
    pub fn new(buf: &'a mut [u8], off: usize, len: usize) -> Self {
        Self { buf, off, len }
    }

    /// Keeps `off` and `len` inside `buf`, whatever the caller handed over.
    #[inline]
    pub(crate) fn clamp(&mut self) {
        self.off = self.off.min(self.buf.len());
        self.len = self.len.min(self.buf.len() - self.off);
    }

    /// The packet bytes (clamped to `buf`).
    #[must_use]
    pub fn data(&self) -> &[u8] {
        let off = self.off.min(self.buf.len());
        let end = off.saturating_add(self.len).min(self.buf.len());
        &self.buf[off..end]
    }
}

/// A learned pod MAC, valid for the pod IP it was learned with: if the control side
/// puts a different pod behind the same port, the old MAC is not used for it.
#[derive(Debug, Clone, Copy)]
struct Learned {
    ip: u32,
    mac: Mac,
}

/// One worker's pipeline: learned pod MACs per port and counters. Not shared.
#[derive(Debug)]
pub struct Pipeline {
    learned: Vec<Option<Learned>>,
    counters: Counters,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

type Decision = Result<Verdict, DropReason>;

#[inline]
fn is_broadcast_or_multicast_ip(ip: u32) -> bool {
    ip >> 28 == 0xe || ip == u32::MAX
}

/// Whether `ip` lies in the prefix `net`/`mask` (as `ipnet::Ipv4Net::network()` and
/// `netmask()` return them).
#[inline]
fn in_net(ip: u32, net: Ipv4Addr, mask: Ipv4Addr) -> bool {
    let mask = u32::from(mask);
    ip & mask == u32::from(net) & mask
}

/// The fields of a validated IPv4 header the decisions need, read before any write.
#[derive(Debug, Clone, Copy)]
struct Ip4 {
    src: u32,
    dst: u32,
    total_len: u16,
    header_len: usize,
    ttl: u8,
    dont_frag: bool,
    is_fragment: bool,
    proto: IpProtocol,
}

impl Ip4 {
    /// Validates the IPv4 header in `b` (version, IHL, total length, checksum).
    #[inline]
    fn parse(b: &[u8]) -> Result<Self, DropReason> {
        let ip = Ipv4Packet::new_checked(b).map_err(|_| DropReason::MalformedIpv4)?;
        if !ip.verify_checksum() {
            return Err(DropReason::MalformedIpv4);
        }
        Ok(Self::read(&ip))
    }

    #[inline]
    fn read<T: AsRef<[u8]>>(ip: &Ipv4Packet<T>) -> Self {
        Self {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            total_len: ip.total_len(),
            header_len: ip.header_len(),
            ttl: ip.ttl(),
            dont_frag: ip.dont_frag(),
            is_fragment: ip.is_fragment(),
            proto: ip.protocol(),
        }
    }
}

/// Where a routed frame goes and what it becomes.
#[derive(Debug, Clone, Copy)]
enum Egress<'s> {
    /// L2 rewrite and TTL - 1, out of `port`.
    Rewrite {
        port: PortId,
        src: Mac,
        dst: Mac,
        action: Action,
    },
    /// TTL - 1 and VXLAN encap, out of the uplink.
    Encap {
        port: PortId,
        outer: &'s route::OuterHeader,
    },
}

impl Pipeline {
    /// A pipeline with nothing learned and zero counters.
    #[must_use]
    pub fn new() -> Self {
        Self {
            learned: Vec::new(),
            counters: Counters::new(),
        }
    }

    /// This worker's counters.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts a drop decided after the frame's verdict (a full TX ring, no socket).
    #[inline]
    pub(crate) fn record_drop(&mut self, reason: DropReason) {
        self.counters.drops[reason as usize] += 1;
    }

    /// Decides one frame received on `rx_port`, rewrites it in place for
    /// [`Verdict::Tx`], and counts the verdict.
    ///
    /// From a **pod port**: untagged Ethernet (tagged: `vlan_tagged`; not IPv4: `Pass`);
    /// a valid IPv4 header (`malformed_ipv4`) without options (`ip_options`) that is not a
    /// fragment (`fragment`: podfwd does not reassemble, and a non-first fragment has no
    /// ports to hash or checksum to complete); source IP = the port's endpoint IP
    /// (`martian_source`), which also learns the pod's MAC; unicast destination
    /// (`broadcast_multicast`). Traffic for the node IP, the pods' gateway IP or outside
    /// the cluster CIDR is `Pass`. Then TTL > 1 (`ttl_expired`) and the LPM lookup
    /// (`no_route`): a local pod gets L2 rewritten to it (`hairpin` if it is the sender's
    /// own port, `no_neighbour` without its MAC) as `DeliveredLocal`; a remote node gets
    /// VXLAN (`Encapsulated`, `no_neighbour` while its outer header is unresolved,
    /// `no_headroom` when `off < 50`) or an L2 rewrite to its next hop (`RoutedNative`).
    /// TCP/UDP with a partial checksum is completed before it leaves.
    ///
    /// From the **uplink**, tunnel mode: IPv4/UDP to the node IP (else `Pass`), not a
    /// fragment, to our VXLAN port (`wrong_port`), VXLAN with the I flag (`bad_vxlan`) and
    /// our VNI (`wrong_vni`), an untagged IPv4 inner frame of at least 34 bytes
    /// (`inner_too_short`, `vlan_tagged`, `not_ipv4`, `malformed_ipv4`) for a local pod
    /// (`hairpin` for another node's pod, `no_route`): stripped, L2 rewritten to the pod,
    /// TTL - 1, `Decapsulated`. Native mode: IPv4 into our PodCIDR (else `Pass`) is
    /// delivered to the local pod as `DeliveredLocal`.
    ///
    /// Size: an IPv4 packet larger than the egress limit (tunnel: uplink MTU - 50; native:
    /// uplink MTU; local pod: that port's MTU) with DF set becomes an ICMP
    /// fragmentation-needed from the node IP back out of the rx port (`IcmpFragNeeded`);
    /// without DF it is dropped as `frame_too_big` (podfwd does not fragment). A
    /// decapsulated frame too big for the pod port is always `frame_too_big` (the ICMP
    /// would need encapsulating back).
    ///
    /// A port the snapshot does not know is `Pass`.
    #[inline]
    pub fn process(&mut self, snap: &Snapshot, rx_port: PortId, frame: &mut Frame) -> Verdict {
        let v = self.decide(snap, rx_port, frame);
        self.counters.record(&v);
        v
    }

    /// Forgets the pod MAC learned on `port`, e.g. when its interface was re-created:
    /// the pod behind the new interface may have another MAC, and until its first frame
    /// (or the neighbour table) says which, its frames must not go to the old one.
    pub fn forget_learned(&mut self, port: PortId) {
        if let Some(slot) = self.learned.get_mut(usize::from(port)) {
            *slot = None;
        }
    }

    #[inline]
    fn learn(&mut self, port: PortId, ip: u32, mac: Mac) {
        let i = usize::from(port);
        if i >= self.learned.len() {
            self.learned.resize(i + 1, None);
        }
        let slot = &mut self.learned[i];
        match slot {
            Some(l) if l.ip == ip && l.mac == mac => {}
            _ => {
                if ethernet::mac_is_unicast(&mac) {
                    *slot = Some(Learned { ip, mac });
                    self.counters.macs_learned += 1;
                }
            }
        }
    }

    /// The MAC of the pod `ep`: the control side's, else the learned one.
    #[inline]
    fn pod_mac(&self, ep: &route::Endpoint) -> Option<Mac> {
        ep.mac.or_else(|| {
            let ip = u32::from(ep.ip);
            match self.learned.get(usize::from(ep.port)) {
                Some(Some(l)) if l.ip == ip => Some(l.mac),
                _ => None,
            }
        })
    }

    /// Resolves a local endpoint to its egress rewrite and MTU.
    #[inline]
    fn to_local<'s>(
        &self,
        snap: &'s Snapshot,
        idx: u32,
        rx_port: PortId,
    ) -> Result<(Egress<'s>, u16), DropReason> {
        let ep = snap
            .endpoints
            .get(idx as usize)
            .ok_or(DropReason::NoRoute)?;
        if ep.port == rx_port {
            return Err(DropReason::Hairpin);
        }
        let port = snap
            .ports
            .get(usize::from(ep.port))
            .ok_or(DropReason::NoRoute)?;
        let dst = self.pod_mac(ep).ok_or(DropReason::NoNeighbour)?;
        let eg = Egress::Rewrite {
            port: ep.port,
            src: port.mac,
            dst,
            action: Action::DeliveredLocal,
        };
        Ok((eg, port.mtu))
    }

    fn rx_from_pod(
        &mut self,
        snap: &Snapshot,
        rx_port: PortId,
        rx: &PortInfo,
        frame: &mut Frame,
    ) -> Decision {
        let data = &frame.buf[frame.off..frame.off + frame.len];
        let eth = EthernetFrame::new_checked(data).map_err(|_| DropReason::MalformedEthernet)?;
        if eth.is_tagged() {
            return Err(DropReason::VlanTagged);
        }
        if eth.ethertype() != EtherType::IPV4 {
            return Ok(Verdict::Pass);
        }
        let (src_mac, dst_mac) = (eth.src_addr(), eth.dst_addr());
        let ip = Ip4::parse(eth.payload())?;
        if ip.header_len != wire::ipv4::HEADER_LEN {
            return Err(DropReason::IpOptions);
        }
        if ip.is_fragment {
            return Err(DropReason::Fragment);
        }
        let own_ip = rx
            .endpoint
            .and_then(|i| snap.endpoints.get(i as usize))
            .map(|e| u32::from(e.ip));
        if own_ip != Some(ip.src) {
            return Err(DropReason::MartianSource);
        }
        self.learn(rx_port, ip.src, src_mac);
        if mac_is_multicast(&dst_mac) || is_broadcast_or_multicast_ip(ip.dst) {
            return Err(DropReason::BroadcastMulticast);
        }
        let local = &snap.local;
        if ip.dst == u32::from(local.ip)
            || ip.dst == u32::from(local.gateway)
            || !in_net(
                ip.dst,
                local.cluster_cidr.network(),
                local.cluster_cidr.netmask(),
            )
        {
            return Ok(Verdict::Pass);
        }
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExpired);
        }
        let uplink = snap
            .ports
            .get(usize::from(local.uplink))
            .ok_or(DropReason::NoRoute)?;
        let (egress, limit) = match snap.lookup(ip.dst).ok_or(DropReason::NoRoute)? {
            Target::Local(i) => self.to_local(snap, i, rx_port)?,
            Target::Remote(i) => {
                let node = snap.nodes.get(i as usize).ok_or(DropReason::NoRoute)?;
                match local.mode {
                    Mode::Tunnel => {
                        let outer = node.outer.as_ref().ok_or(DropReason::NoNeighbour)?;
                        let limit = uplink.mtu.saturating_sub(OUTER_LEN as u16);
                        (
                            Egress::Encap {
                                port: local.uplink,
                                outer,
                            },
                            limit,
                        )
                    }
                    Mode::Native => {
                        let dst = node.next_hop_mac.ok_or(DropReason::NoNeighbour)?;
                        let eg = Egress::Rewrite {
                            port: local.uplink,
                            src: uplink.mac,
                            dst,
                            action: Action::RoutedNative,
                        };
                        (eg, uplink.mtu)
                    }
                }
            }
        };
        if ip.total_len > limit {
            return reflect_frag_needed(snap, rx_port, rx, frame, &ip, limit);
        }
        if matches!(egress, Egress::Encap { .. }) && frame.off < OUTER_LEN {
            return Err(DropReason::NoHeadroom);
        }
        // All checks passed: write.
        frame.len = IP + usize::from(ip.total_len); // drop Ethernet padding
        self.complete_csum(frame, &ip);
        Ok(emit(frame, &ip, egress))
    }

    fn rx_uplink_tunnel(&mut self, snap: &Snapshot, frame: &mut Frame) -> Decision {
        let local = &snap.local;
        let data = &frame.buf[frame.off..frame.off + frame.len];
        let eth = EthernetFrame::new_checked(data).map_err(|_| DropReason::MalformedEthernet)?;
        if eth.is_tagged() {
            return Err(DropReason::VlanTagged);
        }
        if eth.ethertype() != EtherType::IPV4 {
            return Ok(Verdict::Pass);
        }
        let outer_ip =
            Ipv4Packet::new_checked(eth.payload()).map_err(|_| DropReason::MalformedIpv4)?;
        if outer_ip.dst_addr() != u32::from(local.ip) || outer_ip.protocol() != IpProtocol::UDP {
            return Ok(Verdict::Pass);
        }
        if !outer_ip.verify_checksum() {
            return Err(DropReason::MalformedIpv4);
        }
        if outer_ip.is_fragment() {
            return Err(DropReason::Fragment);
        }
        let udp = UdpPacket::new_checked(outer_ip.payload()).map_err(|_| DropReason::BadVxlan)?;
        if udp.dst_port() != local.vxlan_port {
            return Err(DropReason::WrongPort);
        }
        // The outer UDP checksum is not verified (RFC 7348 §5: MAY; Linux sends 0).
        let vx = VxlanPacket::new_checked(udp.payload()).map_err(|_| DropReason::BadVxlan)?;
        if !vx.has_vni() {
            return Err(DropReason::BadVxlan);
        }
        if vx.vni() != local.vni {
            return Err(DropReason::WrongVni);
        }
        let inner = vx.payload();
        if inner.len() < ethernet::HEADER_LEN + wire::ipv4::HEADER_LEN {
            return Err(DropReason::InnerTooShort);
        }
        let outer_len = ethernet::HEADER_LEN
            + outer_ip.header_len()
            + wire::udp::HEADER_LEN
            + wire::vxlan::HEADER_LEN;
        let ieth = EthernetFrame::new_unchecked(inner);
        if ieth.is_tagged() {
            return Err(DropReason::VlanTagged);
        }
        if ieth.ethertype() != EtherType::IPV4 {
            return Err(DropReason::NotIpv4);
        }
        let ip = Ip4::parse(ieth.payload())?;
        if is_broadcast_or_multicast_ip(ip.dst) {
            return Err(DropReason::BroadcastMulticast);
        }
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExpired);
        }
        let (egress, limit) = match snap.lookup(ip.dst) {
            Some(Target::Local(i)) => self.to_local(snap, i, local.uplink)?,
            Some(Target::Remote(_)) => return Err(DropReason::Hairpin),
            None => return Err(DropReason::NoRoute),
        };
        if ip.total_len > limit {
            return Err(DropReason::FrameTooBig);
        }
        frame.off += outer_len;
        frame.len = IP + usize::from(ip.total_len);
        self.complete_csum(frame, &ip);
        let v = emit(frame, &ip, egress);
        Ok(match v {
            Verdict::Tx { port, .. } => Verdict::Tx {
                port,
                action: Action::Decapsulated,
            },
            other => other,
        })
    }

    fn rx_uplink_native(
        &mut self,
        snap: &Snapshot,
        rx_port: PortId,
        rx: &PortInfo,
        frame: &mut Frame,
    ) -> Decision {
        let local = &snap.local;
        let data = &frame.buf[frame.off..frame.off + frame.len];
        let eth = EthernetFrame::new_checked(data).map_err(|_| DropReason::MalformedEthernet)?;
        if eth.is_tagged() {
            return Err(DropReason::VlanTagged);
        }
        if eth.ethertype() != EtherType::IPV4 {
            return Ok(Verdict::Pass);
        }
        let dst_mac = eth.dst_addr();
        let ip = Ip4::parse(eth.payload())?;
        if !in_net(ip.dst, local.pod_cidr.network(), local.pod_cidr.netmask()) {
            return Ok(Verdict::Pass);
        }
        if mac_is_multicast(&dst_mac) {
            return Err(DropReason::BroadcastMulticast);
        }
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExpired);
        }
        let (egress, limit) = match snap.lookup(ip.dst) {
            Some(Target::Local(i)) => self.to_local(snap, i, rx_port)?,
            Some(Target::Remote(_)) => return Err(DropReason::Hairpin),
            None => return Err(DropReason::NoRoute),
        };
        if ip.total_len > limit {
            return reflect_frag_needed(snap, rx_port, rx, frame, &ip, limit);
        }
        frame.len = IP + usize::from(ip.total_len);
        self.complete_csum(frame, &ip);
        Ok(emit(frame, &ip, egress))
    }

    /// Complete a partial TCP/UDP checksum in the IPv4 packet at `frame.off`. A sender
    /// with checksum offload (a kernel VXLAN device or kernel routing on the far side
    /// forwarding over veth) leaves it partial; completing an already valid checksum
    /// rewrites the same value, so this is safe on any frame.
    #[inline]
    fn complete_csum(&mut self, frame: &mut Frame, ip: &Ip4) {
        if ip.is_fragment {
            return;
        }
        let pkt = &mut frame.buf[frame.off..frame.off + frame.len];
        if let Some(l4) = pkt.get_mut(IP + ip.header_len..) {
            if rewrite::complete_partial_csum(l4, ip.src, ip.dst, ip.proto) {
                self.counters.csum_completed += 1;
            }
        }
    }
}

/// Writes the egress rewrite into a frame whose checks all passed.
#[inline]
fn emit(frame: &mut Frame, ip: &Ip4, egress: Egress) -> Verdict {
    let pkt = &mut frame.buf[frame.off..frame.off + frame.len];
    rewrite::decrement_ttl(pkt);
    match egress {
        Egress::Rewrite {
            port,
            src,
            dst,
            action,
        } => {
            rewrite::set_l2(pkt, src, dst);
            Verdict::Tx { port, action }
        }
        Egress::Encap { port, outer } => {
            let l4 = &pkt[IP + ip.header_len..];
            let (sp, dp) = rewrite::l4_ports(ip.proto, l4);
            let sport = flow_src_port(ip.src, ip.dst, ip.proto.0, sp, dp);
            rewrite::encap(frame.buf, &mut frame.off, &mut frame.len, outer, sport);
            Verdict::Tx {
                port,
                action: Action::Encapsulated,
            }
        }
    }
}

/// Too big for `limit`: ICMP fragmentation-needed back out of the rx port with DF set,
/// `frame_too_big` without.
/// RFC 1812 §4.3.2.7: no ICMP error about an ICMP error, nor about a non-initial
/// fragment.
fn may_answer_with_icmp_error(frame: &Frame, ip: &Ip4) -> bool {
    let pkt = &frame.buf[frame.off..frame.off + frame.len];
    let Ok(view) = Ipv4Packet::new_checked(&pkt[IP..]) else {
        return false;
    };
    if view.frag_offset() != 0 {
        return false;
    }
    if ip.proto == IpProtocol::ICMP {
        // Types 3, 4, 5, 11, 12 are errors; an ICMP header that is not there is no echo.
        return match view.payload().first() {
            Some(t) => !matches!(t, 3 | 4 | 5 | 11 | 12),
            None => false,
        };
    }
    true
}

fn reflect_frag_needed(
    snap: &Snapshot,
    rx_port: PortId,
    rx: &PortInfo,
    frame: &mut Frame,
    ip: &Ip4,
    limit: u16,
) -> Decision {
    if !ip.dont_frag || !may_answer_with_icmp_error(frame, ip) {
        return Err(DropReason::FrameTooBig);
    }
    let pkt = &mut frame.buf[frame.off..frame.off + frame.len];
    let len = rewrite::frag_needed(pkt, rx.mac, u32::from(snap.local.ip), limit)
        .ok_or(DropReason::FrameTooBig)?;
    frame.len = len;
    Ok(Verdict::Tx {
        port: rx_port,
        action: Action::IcmpFragNeeded,
    })
}
