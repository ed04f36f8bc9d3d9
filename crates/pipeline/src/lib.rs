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
mod parse;
mod rewrite;
mod verdict;

use std::net::Ipv4Addr;

use route::{PortId, PortInfo, Snapshot, Target, OUTER_LEN};
use wire::ethernet::{self, mac_is_multicast, Mac};
use wire::icmpv4::Icmpv4Packet;
use wire::ipv4::IpProtocol;

pub use batch::{FrameMem, Settled, TxQueues};
pub use counters::Counters;
pub use rewrite::{flow_hash, flow_src_port, src_port_of};
pub use verdict::{Action, DropReason, Verdict};

use parse::Headers;

/// One received frame: `buf[off..off + len]` inside its whole UMEM chunk `buf`, so that
/// the pipeline can grow it at the front (encap) or shrink it (decap, ICMP).
///
/// After [`Pipeline::process`] returns [`Verdict::Tx`], `off` and `len` describe the frame
/// to transmit; they always stay within `buf`. `csum` says whether it leaves with a
/// partial checksum for the kernel to complete.
///
/// A frame received as a descriptor chain (multi-buffer AF_XDP: larger than one UMEM
/// frame) is its first buffer here, with `more` bytes in the chain's other buffers. The
/// pipeline reads and writes only the first (the headers are there); the others leave
/// as they came, unless the pipeline sets `more` to 0 (an ICMP error built in the first
/// buffer), when the transmit frees them.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The whole UMEM chunk.
    pub buf: &'a mut [u8],
    /// Start of the packet within `buf`.
    pub off: usize,
    /// Length of the packet in `buf`.
    pub len: usize,
    /// Bytes of the packet in further buffers of its descriptor chain.
    pub more: usize,
    /// Set by the pipeline (only with [`Pipeline::offload_checksums`]) for a frame to
    /// transmit whose TCP/UDP checksum it left partial: the transmit must ask the kernel
    /// to complete it (AF_XDP TX metadata), or the receiver drops the packet.
    pub csum: Option<TxCsum>,
    /// Set by the pipeline for a chained frame (`more > 0`) to transmit whose partial
    /// TCP/UDP checksum must be completed in software: only the transmit sees all the
    /// buffers it covers ([`TxCsum::complete_chain`]).
    pub csum_chain: Option<TxCsum>,
}

/// What to transmit of a decided frame: [`Frame`]'s outputs, for [`FrameMem::tx_desc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOut {
    /// Start of the frame in the first buffer's chunk.
    pub off: usize,
    /// Its length in the first buffer.
    pub len: usize,
    /// Whether the chain's further buffers go too (false: free them).
    pub keep_chain: bool,
    /// Ask the kernel to complete this checksum (AF_XDP TX metadata).
    pub csum: Option<TxCsum>,
    /// Complete this checksum over the whole chain before sending.
    pub csum_chain: Option<TxCsum>,
}

/// A checksum to complete on transmit, in the kernel's `CHECKSUM_PARTIAL` terms: sum from
/// `start` (counted from the frame's first byte, [`Frame::off`]) to the end of the frame,
/// store the result at `start + offset`. The field already holds the pseudo-header sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxCsum {
    /// Where the transport header starts in the transmitted frame.
    pub start: u16,
    /// Where its checksum field is in it (16 for TCP, 6 for UDP).
    pub offset: u16,
}

impl TxCsum {
    /// Does what the kernel does for the request (`skb_checksum_help`) on the frame
    /// `frame` (from its first byte): the transmit's fallback when it cannot ask. False,
    /// changing nothing, if the checksum field is not inside `frame`.
    pub fn complete(&self, frame: &mut [u8]) -> bool {
        let (start, at) = (
            usize::from(self.start),
            usize::from(self.start) + usize::from(self.offset),
        );
        if at + 2 > frame.len() {
            return false;
        }
        let sum = wire::checksum::fold(wire::checksum::sum(&frame[start..], 0));
        // An all-zero result is sent as all ones (CSUM_MANGLED_0; RFC 768 for UDP).
        let c = match !sum {
            0 => 0xffff,
            c => c,
        };
        frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
        true
    }

    /// [`TxCsum::complete`] for a frame whose bytes go on past `first` (the rest of a
    /// descriptor chain): `rest` is the sum of those bytes as one sequence
    /// ([`wire::checksum::sum_pieces`]). False, changing nothing, if the checksum field
    /// is not in `first`.
    pub fn complete_with_rest(&self, first: &mut [u8], rest: u16) -> bool {
        let (start, at) = (
            usize::from(self.start),
            usize::from(self.start) + usize::from(self.offset),
        );
        if at + 2 > first.len() {
            return false;
        }
        // After an odd number of bytes, the rest's bytes sit in the other half of each
        // 16-bit word: its sum's bytes swap (RFC 1071 §2 (B)).
        let rest = if (first.len() - start) % 2 == 1 {
            rest.swap_bytes()
        } else {
            rest
        };
        let sum = wire::checksum::fold(wire::checksum::sum(&first[start..], u32::from(rest)));
        let c = match !sum {
            0 => 0xffff,
            c => c,
        };
        first[at..at + 2].copy_from_slice(&c.to_be_bytes());
        true
    }
}

impl<'a> Frame<'a> {
    /// A frame of `len` bytes at `off` in `buf`.
    pub fn new(buf: &'a mut [u8], off: usize, len: usize) -> Self {
        Self::chained(buf, off, len, 0)
    }

    /// The first buffer of a chained frame: `len` bytes at `off` in `buf`, `more` in the
    /// chain's other buffers.
    pub fn chained(buf: &'a mut [u8], off: usize, len: usize, more: usize) -> Self {
        Self {
            buf,
            off,
            len,
            more,
            csum: None,
            csum_chain: None,
        }
    }

    /// What to transmit, once decided.
    #[must_use]
    pub fn tx_out(&self) -> TxOut {
        TxOut {
            off: self.off,
            len: self.len,
            keep_chain: self.more > 0,
            csum: self.csum,
            csum_chain: self.csum_chain,
        }
    }

    /// Keeps `off` and `len` inside `buf`, whatever the caller handed over, and clears
    /// `csum` (the decision sets it).
    #[inline]
    pub(crate) fn clamp(&mut self) {
        self.csum = None;
        self.csum_chain = None;
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

/// One worker's pipeline: learned pod MACs per port, counters and how partial checksums
/// leave. Not shared.
#[derive(Debug)]
pub struct Pipeline {
    learned: Vec<Option<Learned>>,
    counters: Counters,
    /// `Some(room)`: partial checksums of frames with at least `room` bytes in front of
    /// them (for the TX metadata) are left to the kernel; `None`: completed here.
    csum_offload: Option<usize>,
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
    /// TTL - 1 and VXLAN encap, out of the uplink, from UDP source port `sport`.
    Encap {
        port: PortId,
        outer: &'s route::OuterHeader,
        sport: u16,
    },
}

impl Pipeline {
    /// A pipeline with nothing learned and zero counters.
    #[must_use]
    pub fn new() -> Self {
        Self {
            learned: Vec::new(),
            counters: Counters::new(),
            csum_offload: None,
        }
    }

    /// How partial TCP/UDP checksums leave: `None` (the default) completes them in
    /// software; `Some(room)` leaves them partial in frames that have at least `room`
    /// bytes in their chunk in front of them (the transmit's TX metadata needs them) and
    /// sets [`Frame::csum`] for the transmit to request the kernel's checksum offload,
    /// completing the others.
    pub fn offload_checksums(&mut self, room: Option<usize>) {
        self.csum_offload = room;
    }

    /// What [`Pipeline::offload_checksums`] last set.
    #[must_use]
    pub fn checksum_offload(&self) -> Option<usize> {
        self.csum_offload
    }

    /// This worker's counters.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts a descriptor chain dropped before it was a frame (see
    /// [`DropReason::BadChain`]); the caller frees its buffers.
    pub fn drop_bad_chain(&mut self) {
        self.record_drop(DropReason::BadChain);
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
    /// VXLAN (`Encapsulated`, `no_neighbour` while no next hop of it is resolved,
    /// `no_headroom` when `off < 50`) or an L2 rewrite to its next hop (`RoutedNative`).
    /// A node with several resolved next hops (a multipath route) gets each flow through
    /// the one its flow hash picks ([`flow_hash`], the hash of the VXLAN source port;
    /// `route::NextHops::pick`), so a flow keeps its hop and flows spread by weight.
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
    #[inline(always)]
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

    /// Resolves the destination `dst` of a pod's frame (the uplink must exist, whatever
    /// the target) to its egress and the size limit there. `flow` is the frame's flow
    /// hash, computed only when needed: for the VXLAN source port, or to choose among
    /// several resolved next hops.
    #[inline(always)]
    fn route_from_pod<'s>(
        &self,
        snap: &'s Snapshot,
        rx_port: PortId,
        dst: u32,
        flow: impl FnOnce() -> u64,
    ) -> Result<(Egress<'s>, u16), DropReason> {
        let local = &snap.local;
        let uplink = snap
            .ports
            .get(usize::from(local.uplink))
            .ok_or(DropReason::NoRoute)?;
        let i = match snap.lookup(dst).ok_or(DropReason::NoRoute)? {
            Target::Local(i) => return self.to_local(snap, i, rx_port),
            Target::Remote(i) => i,
        };
        let node = snap.nodes.get(i as usize).ok_or(DropReason::NoRoute)?;
        // Tunnel mode encapsulates to every node, native to none, hybrid to those
        // behind a router (decided on the control side, `Node::encap`).
        Ok(match node.encap {
            true => {
                let hash = flow();
                let hop = node.hops.pick(|| hash).ok_or(DropReason::NoNeighbour)?;
                let eg = Egress::Encap {
                    port: local.uplink,
                    outer: &hop.outer,
                    sport: rewrite::src_port_of(hash),
                };
                (
                    eg,
                    uplink
                        .mtu
                        .saturating_sub(u16::try_from(OUTER_LEN).unwrap_or(u16::MAX)),
                )
            }
            false => {
                let hop = node.hops.pick(flow).ok_or(DropReason::NoNeighbour)?;
                let eg = Egress::Rewrite {
                    port: local.uplink,
                    src: uplink.mac,
                    dst: hop.mac,
                    action: Action::RoutedNative,
                };
                (eg, uplink.mtu)
            }
        })
    }

    /// Resolves the destination `dst` of a frame from the uplink: only a local pod.
    #[inline(always)]
    fn route_from_uplink<'s>(
        &self,
        snap: &'s Snapshot,
        rx_port: PortId,
        dst: u32,
    ) -> Result<(Egress<'s>, u16), DropReason> {
        match snap.lookup(dst) {
            Some(Target::Local(i)) => self.to_local(snap, i, rx_port),
            Some(Target::Remote(_)) => Err(DropReason::Hairpin),
            None => Err(DropReason::NoRoute),
        }
    }

    fn rx_from_pod(
        &mut self,
        snap: &Snapshot,
        rx_port: PortId,
        rx: &PortInfo,
        frame: &mut Frame,
    ) -> Decision {
        let Some(h) = parse::frame(frame)? else {
            return Ok(Verdict::Pass);
        };
        let ip = &h.ip;
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
        self.learn(rx_port, ip.src, h.src_mac);
        if mac_is_multicast(&h.dst_mac) || is_broadcast_or_multicast_ip(ip.dst) {
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
        let buf: &[u8] = frame.buf;
        let flow = || rewrite::frame_flow_hash(buf, &h);
        let (egress, limit) = self.route_from_pod(snap, rx_port, ip.dst, flow)?;
        if ip.total_len > limit {
            return reflect_frag_needed(snap, rx_port, rx, frame, &h, limit);
        }
        if matches!(egress, Egress::Encap { .. }) && h.l2 < OUTER_LEN {
            return Err(DropReason::NoHeadroom);
        }
        Ok(self.forward(frame, &h, egress))
    }

    fn rx_uplink_tunnel(&mut self, snap: &Snapshot, frame: &mut Frame) -> Decision {
        let Some(h) = parse::vxlan(frame, &snap.local)? else {
            return Ok(Verdict::Pass);
        };
        let ip = &h.ip;
        if is_broadcast_or_multicast_ip(ip.dst) {
            return Err(DropReason::BroadcastMulticast);
        }
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExpired);
        }
        let (egress, limit) = self.route_from_uplink(snap, snap.local.uplink, ip.dst)?;
        if ip.total_len > limit {
            return Err(DropReason::FrameTooBig);
        }
        Ok(match self.forward(frame, &h, egress) {
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
        let Some(h) = parse::frame(frame)? else {
            return Ok(Verdict::Pass);
        };
        let ip = &h.ip;
        if !in_net(ip.dst, local.pod_cidr.network(), local.pod_cidr.netmask()) {
            return Ok(Verdict::Pass);
        }
        if mac_is_multicast(&h.dst_mac) {
            return Err(DropReason::BroadcastMulticast);
        }
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExpired);
        }
        let (egress, limit) = self.route_from_uplink(snap, rx_port, ip.dst)?;
        if ip.total_len > limit {
            return reflect_frag_needed(snap, rx_port, rx, frame, &h, limit);
        }
        Ok(self.forward(frame, &h, egress))
    }

    /// All checks passed: write. The frame that leaves starts at the parsed Ethernet
    /// header (after the outer headers of a decapsulated frame) and ends with the IPv4
    /// packet (no Ethernet padding); a partial TCP/UDP checksum is completed or left to
    /// the kernel ([`Pipeline::offload_checksums`]).
    #[inline]
    fn forward(&mut self, frame: &mut Frame, h: &Headers, egress: Egress) -> Verdict {
        frame.off = h.l2;
        // `frame.more` stays: the parse required the chain to end where the packet does.
        frame.len = h.len();
        let v = emit(frame, h, egress);
        // After the rewrite, which leaves the transport header and its pseudo-header
        // fields alone: the checksum is the same before and after.
        self.settle_csum(frame, h);
        v
    }

    /// A partial TCP/UDP checksum in the parsed packet `h` (now at `frame.off`) is
    /// completed, or left for the kernel with [`Frame::csum`] set. A sender with
    /// checksum offload (a pod at its default offloads, a kernel VXLAN device or kernel
    /// routing on the far side forwarding over veth, a podfwd that left it partial)
    /// leaves it partial; completing an already valid checksum rewrites the same value,
    /// so this is safe on any frame. A fragment has no L4 header to complete (or not all
    /// of the datagram it covers).
    #[inline]
    fn settle_csum(&mut self, frame: &mut Frame, h: &Headers) {
        if h.ip.is_fragment {
            return;
        }
        let Some(p) = rewrite::partial_csum(frame.buf, h) else {
            return;
        };
        let start =
            h.l4.checked_sub(frame.off)
                .and_then(|s| u16::try_from(s).ok());
        match (self.csum_offload, start) {
            (Some(room), Some(start)) if frame.off >= room => {
                frame.csum = Some(TxCsum {
                    start,
                    offset: p.field(),
                });
                self.counters.csum_offloaded += 1;
            }
            (_, Some(start)) if h.more > 0 => {
                frame.csum_chain = Some(TxCsum {
                    start,
                    offset: p.field(),
                });
                self.counters.csum_completed += 1;
            }
            // A chained segment whose header is beyond 64 KiB into its chunk cannot be
            // (the chunk is smaller); left as it is rather than summed over one piece.
            _ if h.more > 0 => {}
            _ => {
                rewrite::complete_csum(frame.buf, h, p);
                self.counters.csum_completed += 1;
            }
        }
    }
}

/// Writes the egress rewrite into the parsed frame `h` (at `frame.off`), whose checks all
/// passed.
#[inline]
fn emit(frame: &mut Frame, h: &Headers, egress: Egress) -> Verdict {
    rewrite::decrement_ttl(frame.buf, h);
    match egress {
        Egress::Rewrite {
            port,
            src,
            dst,
            action,
        } => {
            rewrite::set_l2(&mut frame.buf[h.l2..h.end], src, dst);
            Verdict::Tx { port, action }
        }
        Egress::Encap { port, outer, sport } => {
            (frame.off, frame.len) = rewrite::encap(frame.buf, h, outer, sport);
            Verdict::Tx {
                port,
                action: Action::Encapsulated,
            }
        }
    }
}

/// RFC 1812 §4.3.2.7: no ICMP error about an ICMP error, nor about a non-initial
/// fragment.
#[inline]
fn may_answer_with_icmp_error(buf: &[u8], h: &Headers) -> bool {
    if h.ip.frag_offset != 0 {
        return false;
    }
    if h.ip.proto == IpProtocol::ICMP {
        // An ICMP header that is not there is no echo.
        return h.l4 < h.end && !Icmpv4Packet::new_unchecked(&buf[h.l4..h.end]).is_error();
    }
    true
}

/// Too big for `limit`: ICMP fragmentation-needed back out of the rx port with DF set,
/// `frame_too_big` without.
fn reflect_frag_needed(
    snap: &Snapshot,
    rx_port: PortId,
    rx: &PortInfo,
    frame: &mut Frame,
    h: &Headers,
    limit: u16,
) -> Decision {
    if !h.ip.dont_frag || !may_answer_with_icmp_error(frame.buf, h) {
        return Err(DropReason::FrameTooBig);
    }
    let rx_end = frame.off + frame.len;
    let src_ip = u32::from(snap.local.ip);
    let len = rewrite::frag_needed(frame.buf, h, rx_end, rx.mac, src_ip, limit)
        .ok_or(DropReason::FrameTooBig)?;
    frame.off = h.l2;
    frame.len = len;
    // The error quotes only the first bytes: a chain's other buffers do not go.
    frame.more = 0;
    Ok(Verdict::Tx {
        port: rx_port,
        action: Action::IcmpFragNeeded,
    })
}
