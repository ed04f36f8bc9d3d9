//! Immutable route snapshots.
//!
//! A [`Snapshot`] is built on the control side by [`SnapshotBuilder`] and then only read.
//! Workers hold an `Arc<Snapshot>` and pick up a new one between batches, so a lookup never
//! takes a lock and never sees a half-applied change.
//!
//! Ports are the interfaces a worker forwards between, numbered by the control thread:
//! the uplink and every pod-facing (host-side veth) interface. A [`PortId`] indexes
//! [`Snapshot::ports`] and the worker's socket array alike.

use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use wire::ethernet::{Mac, MacDisplay};
use wire::{ethernet, ipv4, udp, vxlan};
use wire::{EtherType, EthernetFrame, IpProtocol, Ipv4Packet, UdpPacket, VxlanPacket};

use crate::hops::{NextHop, NextHops};
use crate::lpm::{Lpm, LpmError};

/// Index of a port (interface) in [`Snapshot::ports`] and in a worker's socket array.
pub type PortId = u16;

/// Length of the VXLAN outer header podfwd prepends: Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8.
pub const OUTER_LEN: usize = wire::VXLAN_OVERHEAD;

/// How frames to pods on other nodes travel; the config's `mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Inside VXLAN (RFC 7348) between node IPs; the underlay only needs to reach the nodes.
    #[default]
    Tunnel,
    /// As they are, pod IPs on the wire; the underlay must route the PodCIDRs.
    Native,
    /// Per node: native to nodes the kernel's FIB reaches on-link (the uplink's own
    /// subnet), VXLAN to nodes behind a router (flannel's DirectRouting, Calico's
    /// CrossSubnet).
    Hybrid,
}

impl Mode {
    /// Lower-case name, as written in the config and shown in metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tunnel => "tunnel",
            Mode::Native => "native",
            Mode::Hybrid => "hybrid",
        }
    }

    /// The mode [`Mode::as_str`] names, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Mode> {
        [Mode::Tunnel, Mode::Native, Mode::Hybrid]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an interface is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortRole {
    /// The node's underlay interface.
    Uplink,
    /// A host-side veth whose peer is a pod's `eth0`.
    Pod,
}

/// One interface a worker forwards on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Interface name in the node's network namespace.
    pub name: String,
    /// Uplink or pod-facing.
    pub role: PortRole,
    /// The interface's own MAC: source MAC of every frame podfwd sends out of it.
    pub mac: [u8; 6],
    /// The interface MTU (largest IPv4 packet it carries).
    pub mtu: u16,
    /// For a pod port: the endpoint behind it (index into [`Snapshot::endpoints`]).
    pub endpoint: Option<u32>,
}

/// A pod on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod's IPv4 address (a /32 route in the table).
    pub ip: Ipv4Addr,
    /// The host-side port the pod sits behind.
    pub port: PortId,
    /// The pod's MAC, when the control side knows it (kernel neighbour table). Workers
    /// also learn it from the pod's own frames.
    pub mac: Option<[u8; 6]>,
}

/// The precomputed VXLAN outer header toward one remote node (tunnel mode).
///
/// Per packet the pipeline only patches the IPv4 total length and checksum, the UDP
/// length and the UDP source port; everything else is fixed here.
#[derive(Clone, PartialEq, Eq)]
pub struct OuterHeader {
    /// Ethernet + IPv4 + UDP + VXLAN, with IPv4 total length, UDP length and UDP source
    /// port zero and the IPv4 checksum computed for that zero total length.
    pub bytes: [u8; OUTER_LEN],
    /// The inner frame's destination and source MACs once encapsulated: the remote
    /// VTEP's MAC (what a kernel VXLAN device on the far side expects, flannel's
    /// `VtepMAC`) and this node's uplink MAC. podfwd on the far side ignores them.
    pub inner_l2: [u8; 12],
}

impl fmt::Debug for OuterHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OuterHeader(")?;
        for b in &self.bytes {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

impl OuterHeader {
    /// Offset of the outer IPv4 header.
    pub const IP: usize = ethernet::HEADER_LEN;
    /// Offset of the outer UDP header.
    pub const UDP: usize = Self::IP + ipv4::HEADER_LEN;
    /// Offset of the VXLAN header.
    pub const VXLAN: usize = Self::UDP + udp::HEADER_LEN;

    /// Build the outer header: Ethernet `src_mac` → `dst_mac`, IPv4 `src` → `dst` with
    /// DF set and TTL 64, UDP to `port` with checksum 0 (RFC 7348 §5: "SHOULD be
    /// transmitted as zero"), VXLAN flags 0x08 (I bit) and `vni`.
    #[must_use]
    pub fn new(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        port: u16,
        vni: u32,
    ) -> OuterHeader {
        let mut b = [0u8; OUTER_LEN];
        let mut eth = EthernetFrame::new_unchecked(&mut b[..Self::IP]);
        eth.set_dst_addr(dst_mac);
        eth.set_src_addr(src_mac);
        eth.set_outer_ethertype(EtherType::IPV4);
        let mut ip = Ipv4Packet::new_unchecked(&mut b[Self::IP..Self::UDP]);
        ip.set_version_and_header_len(ipv4::HEADER_LEN);
        ip.set_dscp_ecn(0, 0);
        // Total length stays 0 until the pipeline patches it per packet; identification
        // stays 0 too, which DF makes irrelevant (RFC 6864).
        ip.set_total_len(0);
        ip.set_ident(0);
        ip.set_flags_and_frag_offset(true, false, 0);
        ip.set_ttl(64);
        ip.set_protocol(IpProtocol::UDP);
        ip.set_src_addr(u32::from(src));
        ip.set_dst_addr(u32::from(dst));
        ip.fill_checksum();
        let mut u = UdpPacket::new_unchecked(&mut b[Self::UDP..Self::VXLAN]);
        u.set_src_port(0);
        u.set_dst_port(port);
        u.set_len(0);
        u.set_checksum(0);
        let mut vx = VxlanPacket::new_unchecked(&mut b[Self::VXLAN..]);
        vx.set_flags(vxlan::FLAG_I);
        vx.set_vni(vni);
        let mut inner_l2 = [0u8; 12];
        inner_l2[..6].copy_from_slice(&dst_mac);
        inner_l2[6..].copy_from_slice(&src_mac);
        OuterHeader { bytes: b, inner_l2 }
    }

    /// The IPv4 header checksum stored in the template (for total length 0).
    #[must_use]
    pub fn ip_checksum_base(&self) -> u16 {
        Ipv4Packet::new_unchecked(&self.bytes[Self::IP..Self::UDP]).checksum()
    }
}

/// A remote node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Node name, as in the config.
    pub name: String,
    /// The node's underlay IP.
    pub ip: Ipv4Addr,
    /// The node's PodCIDR.
    pub pod_cidr: Ipv4Net,
    /// The next hops toward the node on the uplink (the node itself on a shared L2, the
    /// gateways of its FIB route otherwise, several for a multipath route), each with its
    /// MAC and outer header once resolved. Frames spread over the resolved ones by flow
    /// ([`NextHops::pick`]); with none resolved they are `no_neighbour`.
    pub hops: NextHops,
    /// The node's VTEP MAC, when configured (see [`OuterHeader::inner_l2`]).
    pub vtep_mac: Option<[u8; 6]>,
    /// Frames to it are VXLAN-encapsulated (tunnel mode; hybrid mode toward a node
    /// behind a router), else routed natively.
    pub encap: bool,
}

/// Where a destination pod address leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A pod on this node: index into [`Snapshot::endpoints`].
    Local(u32),
    /// A pod on another node: index into [`Snapshot::nodes`].
    Remote(u32),
}

const REMOTE_BIT: u32 = 1 << 30;

/// The [`Target`] an LPM value encodes.
#[inline]
fn target(v: u32) -> Target {
    if v & REMOTE_BIT != 0 {
        Target::Remote(v & !REMOTE_BIT)
    } else {
        Target::Local(v)
    }
}

/// This node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNode {
    /// Node name.
    pub name: String,
    /// Underlay IP of this node.
    pub ip: Ipv4Addr,
    /// This node's PodCIDR.
    pub pod_cidr: Ipv4Net,
    /// The cluster (native-routing) CIDR that holds every PodCIDR.
    pub cluster_cidr: Ipv4Net,
    /// The pods' default gateway address (link-local, answered on every host-side veth).
    pub gateway: Ipv4Addr,
    /// Tunnel or native.
    pub mode: Mode,
    /// VXLAN network identifier (24 bits).
    pub vni: u32,
    /// VXLAN UDP destination port.
    pub vxlan_port: u16,
    /// The uplink's port id.
    pub uplink: PortId,
}

/// Errors building a snapshot. The config layer validates first, so these mean the
/// control side handed over inconsistent tables.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// An endpoint or the uplink names a port that does not exist.
    #[error("{what} refers to port {port}, but only {count} ports exist")]
    NoSuchPort {
        /// What referred to it.
        what: String,
        /// The port id.
        port: PortId,
        /// How many ports there are.
        count: usize,
    },
    /// Too many endpoints or nodes for the table's value encoding.
    #[error("too many {0} for one route table")]
    TooMany(&'static str),
    /// The LPM refused the entries.
    #[error("building the PodCIDR table failed: {0}")]
    Lpm(#[from] LpmError),
}

/// The precomputed outer header toward node `ip` through next hop `mac`; the inner
/// destination MAC is the node's VTEP MAC when it has one (a kernel VXLAN peer).
fn outer_for(
    local: &LocalNode,
    uplink_mac: Mac,
    mac: Mac,
    ip: Ipv4Addr,
    vtep_mac: Option<Mac>,
) -> OuterHeader {
    let mut o = OuterHeader::new(uplink_mac, mac, local.ip, ip, local.vxlan_port, local.vni);
    if let Some(v) = vtep_mac {
        o.inner_l2[..6].copy_from_slice(&v);
    }
    o
}

/// The table entries as the lookup resolves them: longest prefix first, and among equal
/// prefixes the last one given (the one the LPM keeps).
fn resolved_routes(entries: &[(Ipv4Net, u32)]) -> Vec<(Ipv4Net, Target)> {
    let mut routes: Vec<(Ipv4Net, Target)> = entries
        .iter()
        .map(|&(net, v)| (net.trunc(), target(v)))
        .collect();
    // Stable, so among equal prefixes the input order survives and the last one ends
    // its run.
    routes.sort_by_key(|(net, _)| (std::cmp::Reverse(net.prefix_len()), net.network()));
    routes.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1 = later.1;
        }
        same
    });
    routes
}

/// One immutable routing view, shared read-only by all workers.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every snapshot the control side publishes.
    pub generation: u64,
    /// This node.
    pub local: LocalNode,
    /// All ports, indexed by [`PortId`].
    pub ports: Vec<PortInfo>,
    /// Local pods.
    pub endpoints: Vec<Endpoint>,
    /// Remote nodes.
    pub nodes: Vec<Node>,
    lpm: Lpm,
    prefixes: usize,
    /// The entries the LPM was built from, as it resolves them: longest prefix first,
    /// one per prefix (the last one given wins, as in [`Lpm::build`]).
    routes: Vec<(Ipv4Net, Target)>,
}

impl Snapshot {
    /// Longest-prefix match of a destination address (host byte order).
    #[inline]
    #[must_use]
    pub fn lookup(&self, dst: u32) -> Option<Target> {
        self.lpm.lookup(dst).map(target)
    }

    /// Number of prefixes in the table (endpoint /32s plus remote PodCIDRs).
    #[must_use]
    pub fn prefix_count(&self) -> usize {
        self.prefixes
    }

    /// The uplink port.
    #[must_use]
    pub fn uplink(&self) -> &PortInfo {
        &self.ports[usize::from(self.local.uplink)]
    }

    /// The prefixes of the table and where each leads, longest prefix first.
    #[must_use]
    pub fn routes(&self) -> &[(Ipv4Net, Target)] {
        &self.routes
    }

    /// The tables in words (what `podfwd check` prints): mode, this node, ports,
    /// endpoints, remote nodes with their next hops, and the LPM entries.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_describe(&mut s);
        s
    }

    fn port_name(&self, port: PortId) -> &str {
        self.ports
            .get(usize::from(port))
            .map_or("?", |p| p.name.as_str())
    }

    fn write_describe(&self, s: &mut String) -> fmt::Result {
        let l = &self.local;
        match l.mode {
            Mode::Tunnel => writeln!(
                s,
                "mode: tunnel (VXLAN, VNI {}, UDP port {})",
                l.vni, l.vxlan_port
            )?,
            Mode::Native => writeln!(s, "mode: native (the underlay routes the PodCIDRs)")?,
            Mode::Hybrid => writeln!(
                s,
                "mode: hybrid (native to on-link nodes, VXLAN VNI {} UDP port {} to nodes behind a router, from the FIB)",
                l.vni, l.vxlan_port
            )?,
        }
        writeln!(
            s,
            "node {}: underlay {} on {}, PodCIDR {}",
            l.name,
            l.ip,
            self.port_name(l.uplink),
            l.pod_cidr
        )?;
        writeln!(s, "cluster {}, pods' gateway {}", l.cluster_cidr, l.gateway)?;
        writeln!(s, "ports:")?;
        for (i, p) in self.ports.iter().enumerate() {
            let role = match p.role {
                PortRole::Uplink => "uplink",
                PortRole::Pod => "pod",
            };
            writeln!(
                s,
                "  {i} {}: {role}, MAC {}, MTU {}",
                p.name,
                MacDisplay(&p.mac),
                p.mtu
            )?;
        }
        writeln!(s, "endpoints:{}", none_if(self.endpoints.is_empty()))?;
        for e in &self.endpoints {
            writeln!(
                s,
                "  {} on {}: MAC {}",
                e.ip,
                self.port_name(e.port),
                OrUnresolved(e.mac.as_ref())
            )?;
        }
        writeln!(s, "nodes:{}", none_if(self.nodes.is_empty()))?;
        for n in &self.nodes {
            write!(s, "  {} {}, PodCIDR {}: ", n.name, n.ip, n.pod_cidr)?;
            write_hops(s, n)?;
            if let Some(v) = &n.vtep_mac {
                write!(s, ", VTEP MAC {}", MacDisplay(v))?;
            }
            writeln!(s)?;
        }
        self.write_routes(s)
    }

    fn write_routes(&self, s: &mut String) -> fmt::Result {
        writeln!(s, "routes (longest prefix first):")?;
        let own = self.local.pod_cidr.to_string();
        let width = self
            .routes
            .iter()
            .map(|(p, _)| p.to_string().len())
            .chain([own.len()])
            .max()
            .unwrap_or(0);
        for (prefix, t) in &self.routes {
            let prefix = prefix.to_string();
            match *t {
                Target::Local(i) => {
                    let port = self
                        .endpoints
                        .get(i as usize)
                        .map_or("?", |e| self.port_name(e.port));
                    writeln!(s, "  {prefix:<width$} -> local pod on {port}")?;
                }
                Target::Remote(i) => match self.nodes.get(i as usize) {
                    Some(n) => {
                        let how = if n.encap { "VXLAN to" } else { "via uplink to" };
                        writeln!(s, "  {prefix:<width$} -> node {} ({how} {})", n.name, n.ip)?
                    }
                    None => writeln!(s, "  {prefix:<width$} -> node #{i}")?,
                },
            }
        }
        writeln!(s, "  {own:<width$} -> this node, no such pod: drop")
    }
}

/// A node's next hops in words: `next hop MAC m` for the node itself (or `next hop
/// VIA MAC m` for a gateway); several as `next hops VIA MAC m (weight w, k/64 slots), ...`.
fn write_hops(s: &mut String, n: &Node) -> fmt::Result {
    match n.hops.all() {
        [] => s.write_str("no next hop on the uplink"),
        [h] if h.via == n.ip => write!(s, "next hop MAC {}", OrUnresolved(h.mac.as_ref())),
        [h] => write!(s, "next hop {} MAC {}", h.via, OrUnresolved(h.mac.as_ref())),
        hops => {
            s.write_str("next hops ")?;
            for (i, h) in hops.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(
                    s,
                    "{sep}{} MAC {} (weight {}, {}/{} slots)",
                    h.via,
                    OrUnresolved(h.mac.as_ref()),
                    h.weight,
                    n.hops.slots_of(i),
                    crate::hops::HOP_SLOTS
                )?;
            }
            Ok(())
        }
    }
}

fn none_if(empty: bool) -> &'static str {
    if empty {
        " none"
    } else {
        ""
    }
}

/// A MAC, or "unresolved" while the neighbour table has none.
struct OrUnresolved<'a>(Option<&'a [u8; 6]>);

impl fmt::Display for OrUnresolved<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(m) => MacDisplay(m).fmt(f),
            None => f.write_str("unresolved"),
        }
    }
}

/// Builds a [`Snapshot`] from the control side's view.
#[derive(Debug, Clone)]
pub struct SnapshotBuilder {
    generation: u64,
    local: LocalNode,
    ports: Vec<PortInfo>,
    endpoints: Vec<Endpoint>,
    nodes: Vec<(String, Ipv4Addr, Ipv4Net, Vec<NextHop>)>,
    vteps: Vec<Option<[u8; 6]>>,
    /// Per node, hybrid mode: whether it is on-link (native) rather than behind a router.
    on_link: Vec<bool>,
}

impl SnapshotBuilder {
    /// Start a snapshot for `local`, with `generation`.
    #[must_use]
    pub fn new(generation: u64, local: LocalNode) -> SnapshotBuilder {
        SnapshotBuilder {
            generation,
            local,
            ports: Vec::new(),
            endpoints: Vec::new(),
            nodes: Vec::new(),
            vteps: Vec::new(),
            on_link: Vec::new(),
        }
    }

    /// Add a port; returns its id.
    pub fn port(&mut self, name: &str, role: PortRole, mac: [u8; 6], mtu: u16) -> PortId {
        let id = PortId::try_from(self.ports.len()).unwrap_or(PortId::MAX);
        self.ports.push(PortInfo {
            name: name.to_owned(),
            role,
            mac,
            mtu,
            endpoint: None,
        });
        id
    }

    /// Add a local pod behind `port`.
    pub fn endpoint(&mut self, ip: Ipv4Addr, port: PortId, mac: Option<[u8; 6]>) -> &mut Self {
        self.endpoints.push(Endpoint { ip, port, mac });
        self
    }

    /// Add a remote node reached directly: one next hop, the node itself, whose MAC
    /// `next_hop_mac` is `None` while unresolved. [`SnapshotBuilder::next_hops`] sets
    /// others.
    pub fn node(
        &mut self,
        name: &str,
        ip: Ipv4Addr,
        pod_cidr: Ipv4Net,
        next_hop_mac: Option<[u8; 6]>,
    ) -> &mut Self {
        let hop = NextHop {
            via: ip,
            weight: 1,
            mac: next_hop_mac,
        };
        self.nodes.push((name.to_owned(), ip, pod_cidr, vec![hop]));
        self.vteps.push(None);
        self.on_link.push(false);
        self
    }

    /// Set the next hops of the node added last (its FIB route's usable hops on the
    /// uplink, in order; the first [`crate::MAX_NEXT_HOPS`] are kept). None: frames to it
    /// are `no_neighbour`.
    pub fn next_hops(&mut self, hops: &[NextHop]) -> &mut Self {
        if let Some(n) = self.nodes.last_mut() {
            n.3 = hops.to_vec();
        }
        self
    }

    /// Mark the node added last as on-link (the FIB reaches it without a gateway): in
    /// hybrid mode its frames are routed natively instead of encapsulated.
    pub fn on_link(&mut self, on_link: bool) -> &mut Self {
        if let Some(v) = self.on_link.last_mut() {
            *v = on_link;
        }
        self
    }

    /// Set the VTEP MAC of the node added last (see [`OuterHeader::inner_l2`]).
    pub fn vtep_mac(&mut self, mac: [u8; 6]) -> &mut Self {
        if let Some(v) = self.vteps.last_mut() {
            *v = Some(mac);
        }
        self
    }

    /// Build the snapshot: the LPM over endpoint /32s and remote PodCIDRs, and the outer
    /// header of every resolved node.
    ///
    /// # Errors
    /// A port reference out of range, or more than 2^30 endpoints or nodes.
    pub fn build(self) -> Result<Snapshot, RouteError> {
        let SnapshotBuilder {
            generation,
            local,
            mut ports,
            endpoints,
            nodes,
            vteps,
            on_link,
        } = self;
        let count = ports.len();
        let uplink = ports
            .get(usize::from(local.uplink))
            .ok_or(RouteError::NoSuchPort {
                what: "the uplink".into(),
                port: local.uplink,
                count,
            })?;
        let uplink_mac = uplink.mac;
        if endpoints.len() >= REMOTE_BIT as usize {
            return Err(RouteError::TooMany("endpoints"));
        }
        if nodes.len() >= REMOTE_BIT as usize {
            return Err(RouteError::TooMany("nodes"));
        }
        let mut entries = Vec::with_capacity(endpoints.len() + nodes.len());
        // Remote PodCIDRs first, endpoints after: a duplicate prefix resolves to the last.
        let mut built_nodes = Vec::with_capacity(nodes.len());
        for (i, (name, ip, pod_cidr, hops)) in nodes.into_iter().enumerate() {
            let idx = u32::try_from(i).map_err(|_| RouteError::TooMany("nodes"))?;
            entries.push((pod_cidr, idx | REMOTE_BIT));
            let vtep_mac = vteps.get(i).copied().flatten();
            let hops = NextHops::new(&hops, |mac| {
                outer_for(&local, uplink_mac, mac, ip, vtep_mac)
            });
            let encap = match local.mode {
                Mode::Tunnel => true,
                Mode::Native => false,
                Mode::Hybrid => !on_link.get(i).copied().unwrap_or(false),
            };
            built_nodes.push(Node {
                name,
                ip,
                pod_cidr,
                hops,
                vtep_mac,
                encap,
            });
        }
        for (i, ep) in endpoints.iter().enumerate() {
            let idx = u32::try_from(i).map_err(|_| RouteError::TooMany("endpoints"))?;
            let port =
                ports
                    .get_mut(usize::from(ep.port))
                    .ok_or_else(|| RouteError::NoSuchPort {
                        what: format!("endpoint {}", ep.ip),
                        port: ep.port,
                        count,
                    })?;
            port.endpoint = Some(idx);
            entries.push((Ipv4Net::from(ep.ip), idx));
        }
        let prefixes = entries.len();
        let lpm = Lpm::build(&entries)?;
        let routes = resolved_routes(&entries);
        Ok(Snapshot {
            generation,
            local,
            ports,
            endpoints,
            nodes: built_nodes,
            lpm,
            prefixes,
            routes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hops::{HOP_SLOTS, MAX_NEXT_HOPS};

    fn local(mode: Mode) -> LocalNode {
        LocalNode {
            name: "node-a".into(),
            ip: Ipv4Addr::new(198, 18, 0, 1),
            pod_cidr: "10.0.1.0/24".parse().unwrap(),
            cluster_cidr: "10.0.0.0/16".parse().unwrap(),
            gateway: Ipv4Addr::new(169, 254, 1, 1),
            mode,
            vni: 1,
            vxlan_port: 8472,
            uplink: 0,
        }
    }

    fn two_node(mode: Mode) -> Snapshot {
        let mut b = SnapshotBuilder::new(7, local(mode));
        b.port("eth0", PortRole::Uplink, [2, 0, 0, 0, 0, 1], 1500);
        let p1 = b.port("lxc0", PortRole::Pod, [2, 0, 0, 0, 1, 1], 1500);
        b.endpoint(Ipv4Addr::new(10, 0, 1, 2), p1, None);
        b.node(
            "node-b",
            Ipv4Addr::new(198, 18, 0, 2),
            "10.0.2.0/24".parse().unwrap(),
            Some([2, 0, 0, 0, 0, 2]),
        );
        b.node(
            "node-c",
            Ipv4Addr::new(198, 18, 0, 3),
            "10.0.3.0/24".parse().unwrap(),
            None,
        );
        b.build().unwrap()
    }

    #[test]
    fn lookup_resolves_local_and_remote() {
        let s = two_node(Mode::Tunnel);
        assert_eq!(s.generation, 7);
        assert_eq!(s.prefix_count(), 3);
        assert_eq!(
            s.lookup(u32::from(Ipv4Addr::new(10, 0, 1, 2))),
            Some(Target::Local(0))
        );
        assert_eq!(s.lookup(u32::from(Ipv4Addr::new(10, 0, 1, 3))), None);
        assert_eq!(
            s.lookup(u32::from(Ipv4Addr::new(10, 0, 2, 200))),
            Some(Target::Remote(0))
        );
        assert_eq!(
            s.lookup(u32::from(Ipv4Addr::new(10, 0, 3, 1))),
            Some(Target::Remote(1))
        );
        assert_eq!(s.ports[1].endpoint, Some(0));
        assert_eq!(s.uplink().name, "eth0");
        assert!(
            s.nodes[1].hops.resolved().is_empty(),
            "unresolved node has no outer header"
        );
    }

    #[test]
    fn outer_header_is_rfc7348_vxlan_to_8472() {
        let s = two_node(Mode::Tunnel);
        let o = &s.nodes[0].hops.resolved()[0].outer;
        let expected: [u8; OUTER_LEN] = [
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet
            0x45, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 64, 17, 0xae, 0xc5, 198, 18, 0, 1, 198,
            18, 0, 2, // IPv4
            0x00, 0x00, 0x21, 0x18, 0x00, 0x00, 0x00, 0x00, // UDP dport 8472
            0x08, 0, 0, 0, 0, 0, 1, 0, // VXLAN I flag, VNI 1
        ];
        assert_eq!(o.bytes, expected);
        // With the total length still 0 the header must sum to 0xffff.
        assert_eq!(wire::checksum::checksum(&o.bytes[14..34], 0), 0);
        // By hand: 4500+0000+0000+4000+4011+c612+0001+c612+0002 = 0x25138 -> 0x513a -> !0xaec5.
        assert_eq!(o.ip_checksum_base(), 0xaec5);
        assert_eq!(o.inner_l2, [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    }

    /// A 24-bit VNI, the IANA port and addresses with high bits set, byte for byte as
    /// the raw-offset builder this one replaced wrote them.
    #[test]
    fn outer_header_literal_bytes_wide_fields() {
        let o = OuterHeader::new(
            [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01],
            [0x0e, 0x11, 0x22, 0x33, 0x44, 0xfe],
            Ipv4Addr::new(10, 255, 0, 1),
            Ipv4Addr::new(192, 168, 200, 254),
            4789,
            0x00ab_cdef,
        );
        let expected: [u8; OUTER_LEN] = [
            0x0e, 0x11, 0x22, 0x33, 0x44, 0xfe, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01, 0x08, 0x00,
            0x45, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xa6, 0x46, 0x0a, 0xff,
            0x00, 0x01, 0xc0, 0xa8, 0xc8, 0xfe, // IPv4
            0x00, 0x00, 0x12, 0xb5, 0x00, 0x00, 0x00, 0x00, // UDP dport 4789
            0x08, 0x00, 0x00, 0x00, 0xab, 0xcd, 0xef, 0x00, // VXLAN VNI 0xabcdef
        ];
        assert_eq!(o.bytes, expected);
        assert_eq!(o.ip_checksum_base(), 0xa646);
        assert_eq!(OuterHeader::IP, 14);
        assert_eq!(OuterHeader::UDP, 34);
        assert_eq!(OuterHeader::VXLAN, 42);
        assert_eq!(OUTER_LEN, 50);
    }

    #[test]
    fn describe_shows_what_was_built() {
        let mut b = SnapshotBuilder::new(7, local(Mode::Tunnel));
        b.port("eth0", PortRole::Uplink, [2, 0, 0, 0, 0, 1], 1500);
        let p1 = b.port("lxc0", PortRole::Pod, [2, 0, 0, 0, 1, 1], 1450);
        b.endpoint(Ipv4Addr::new(10, 0, 1, 2), p1, Some([2, 0, 10, 0, 1, 2]));
        b.node(
            "node-b",
            Ipv4Addr::new(198, 18, 0, 2),
            "10.0.2.0/24".parse().unwrap(),
            Some([2, 0, 0, 0, 0, 2]),
        );
        b.vtep_mac([2, 0xfe, 0xc6, 0x12, 0, 2]);
        b.node(
            "node-c",
            Ipv4Addr::new(198, 18, 0, 3),
            "10.0.128.0/17".parse().unwrap(),
            None,
        );
        let s = b.build().unwrap();
        assert_eq!(
            s.describe(),
            "\
mode: tunnel (VXLAN, VNI 1, UDP port 8472)
node node-a: underlay 198.18.0.1 on eth0, PodCIDR 10.0.1.0/24
cluster 10.0.0.0/16, pods' gateway 169.254.1.1
ports:
  0 eth0: uplink, MAC 02:00:00:00:00:01, MTU 1500
  1 lxc0: pod, MAC 02:00:00:00:01:01, MTU 1450
endpoints:
  10.0.1.2 on lxc0: MAC 02:00:0a:00:01:02
nodes:
  node-b 198.18.0.2, PodCIDR 10.0.2.0/24: next hop MAC 02:00:00:00:00:02, VTEP MAC 02:fe:c6:12:00:02
  node-c 198.18.0.3, PodCIDR 10.0.128.0/17: next hop MAC unresolved
routes (longest prefix first):
  10.0.1.2/32   -> local pod on lxc0
  10.0.2.0/24   -> node node-b (VXLAN to 198.18.0.2)
  10.0.128.0/17 -> node node-c (VXLAN to 198.18.0.3)
  10.0.1.0/24   -> this node, no such pod: drop
"
        );
    }

    #[test]
    fn describe_native_without_pods() {
        let mut b = SnapshotBuilder::new(1, local(Mode::Native));
        b.port("eth0", PortRole::Uplink, [0; 6], 9000);
        let s = b.build().unwrap();
        assert_eq!(
            s.describe(),
            "\
mode: native (the underlay routes the PodCIDRs)
node node-a: underlay 198.18.0.1 on eth0, PodCIDR 10.0.1.0/24
cluster 10.0.0.0/16, pods' gateway 169.254.1.1
ports:
  0 eth0: uplink, MAC 00:00:00:00:00:00, MTU 9000
endpoints: none
nodes: none
routes (longest prefix first):
  10.0.1.0/24 -> this node, no such pod: drop
"
        );
    }

    /// `routes()` lists what `lookup` resolves: a prefix given twice shows the last target.
    #[test]
    fn routes_are_the_lpm_entries() {
        let mut b = SnapshotBuilder::new(1, local(Mode::Native));
        b.port("eth0", PortRole::Uplink, [0; 6], 1500);
        let p1 = b.port("lxc0", PortRole::Pod, [0; 6], 1500);
        b.endpoint(Ipv4Addr::new(10, 0, 2, 9), p1, None);
        b.node(
            "b",
            Ipv4Addr::new(198, 18, 0, 2),
            "10.0.2.0/24".parse().unwrap(),
            None,
        );
        b.node(
            "b2",
            Ipv4Addr::new(198, 18, 0, 4),
            "10.0.2.0/24".parse().unwrap(),
            None,
        );
        b.node(
            "c",
            Ipv4Addr::new(198, 18, 0, 3),
            "10.0.0.0/23".parse().unwrap(),
            None,
        );
        let s = b.build().unwrap();
        let routes: Vec<(String, Target)> = s
            .routes()
            .iter()
            .map(|(p, t)| (p.to_string(), *t))
            .collect();
        assert_eq!(
            routes,
            [
                ("10.0.2.9/32".to_owned(), Target::Local(0)),
                ("10.0.2.0/24".to_owned(), Target::Remote(1)),
                ("10.0.0.0/23".to_owned(), Target::Remote(2)),
            ]
        );
        for (p, t) in s.routes() {
            assert_eq!(s.lookup(u32::from(p.broadcast())), Some(*t), "{p}");
        }
    }

    fn hop(via: [u8; 4], weight: u16, mac: Option<[u8; 6]>) -> NextHop {
        NextHop {
            via: Ipv4Addr::from(via),
            weight,
            mac,
        }
    }

    /// A multipath route: an outer header per resolved hop, slots by weight over the
    /// resolved ones only, the top six bits of the flow hash choosing the slot.
    #[test]
    fn multipath_node_spreads_over_its_resolved_hops() {
        let (ma, mc) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xc]);
        let mut b = SnapshotBuilder::new(1, local(Mode::Tunnel));
        b.port("eth0", PortRole::Uplink, [2, 0, 0, 0, 0, 1], 1500);
        b.node(
            "node-b",
            Ipv4Addr::new(198, 18, 2, 2),
            "10.0.2.0/24".parse().unwrap(),
            None,
        )
        .next_hops(&[
            hop([198, 18, 0, 253], 1, Some(ma)),
            hop([198, 18, 0, 254], 1, None),
            hop([198, 18, 0, 252], 3, Some(mc)),
        ]);
        let s = b.build().unwrap();
        let h = &s.nodes[0].hops;
        assert_eq!(h.all().len(), 3);
        let r: Vec<(u8, [u8; 6])> = h.resolved().iter().map(|r| (r.index, r.mac)).collect();
        assert_eq!(r, [(0, ma), (2, mc)]);
        for r in h.resolved() {
            assert_eq!(r.outer.bytes[..6], r.mac, "outer header to the hop's MAC");
            assert_eq!(
                r.outer.bytes[30..34],
                [198, 18, 2, 2],
                "outer IP the node's"
            );
        }
        assert_eq!((h.slots_of(0), h.slots_of(1), h.slots_of(2)), (16, 0, 48));
        assert_eq!(h.pick(|| 0).map(|r| r.index), Some(0));
        assert_eq!(h.pick(|| 15 << 58).map(|r| r.index), Some(0));
        assert_eq!(h.pick(|| 16 << 58).map(|r| r.index), Some(2));
        assert_eq!(h.pick(|| u64::MAX).map(|r| r.index), Some(2));
        assert!(s.describe().contains(
            "  node-b 198.18.2.2, PodCIDR 10.0.2.0/24: next hops \
             198.18.0.253 MAC 02:00:00:00:00:0a (weight 1, 16/64 slots), \
             198.18.0.254 MAC unresolved (weight 1, 0/64 slots), \
             198.18.0.252 MAC 02:00:00:00:00:0c (weight 3, 48/64 slots)\n"
        ));
    }

    /// One resolved hop: taken without asking for the flow hash; none: no hop.
    #[test]
    fn single_or_no_resolved_hop_needs_no_hash() {
        let mut b = SnapshotBuilder::new(1, local(Mode::Native));
        b.port("eth0", PortRole::Uplink, [2, 0, 0, 0, 0, 1], 1500);
        let ip = Ipv4Addr::new(198, 18, 2, 2);
        let cidr = "10.0.2.0/24".parse().unwrap();
        b.node("b", ip, cidr, None).next_hops(&[
            hop([198, 18, 0, 253], 1, None),
            hop([198, 18, 0, 254], 1, Some([2, 0, 0, 0, 0, 4])),
        ]);
        b.node("c", ip, "10.0.3.0/24".parse().unwrap(), None)
            .next_hops(&[hop([198, 18, 0, 253], 1, None)]);
        b.node("d", ip, "10.0.4.0/24".parse().unwrap(), None)
            .next_hops(&[]);
        let s = b.build().unwrap();
        let never = || -> u64 { panic!("the flow hash is not needed") };
        assert_eq!(s.nodes[0].hops.pick(never).map(|r| r.index), Some(1));
        assert_eq!(s.nodes[0].hops.slots_of(1), HOP_SLOTS);
        assert!(s.nodes[1].hops.pick(never).is_none());
        assert!(s.nodes[2].hops.pick(never).is_none());
        let d = s.describe();
        assert!(
            d.contains(
                "  b 198.18.2.2, PodCIDR 10.0.2.0/24: next hops 198.18.0.253 MAC unresolved"
            ),
            "{d}"
        );
        assert!(
            d.contains(
                "  c 198.18.2.2, PodCIDR 10.0.3.0/24: next hop 198.18.0.253 MAC unresolved\n"
            ),
            "{d}"
        );
        assert!(
            d.contains("  d 198.18.2.2, PodCIDR 10.0.4.0/24: no next hop on the uplink\n"),
            "{d}"
        );
    }

    #[test]
    fn at_most_eight_next_hops_are_kept() {
        let mut b = SnapshotBuilder::new(1, local(Mode::Native));
        b.port("eth0", PortRole::Uplink, [2, 0, 0, 0, 0, 1], 1500);
        let hops: Vec<NextHop> = (0..12u8)
            .map(|i| hop([198, 18, 0, 200 + i], 1, Some([2, 0, 0, 0, 1, i])))
            .collect();
        b.node(
            "b",
            Ipv4Addr::new(198, 18, 2, 2),
            "10.0.2.0/24".parse().unwrap(),
            None,
        )
        .next_hops(&hops);
        let s = b.build().unwrap();
        assert_eq!(s.nodes[0].hops.all(), &hops[..MAX_NEXT_HOPS]);
        assert_eq!(s.nodes[0].hops.resolved().len(), MAX_NEXT_HOPS);
        let slots: usize = (0..MAX_NEXT_HOPS)
            .map(|i| s.nodes[0].hops.slots_of(i))
            .sum();
        assert_eq!(slots, HOP_SLOTS);
    }

    #[test]
    fn bad_port_is_refused() {
        let mut b = SnapshotBuilder::new(1, local(Mode::Native));
        b.port("eth0", PortRole::Uplink, [0; 6], 1500);
        b.endpoint(Ipv4Addr::new(10, 0, 1, 2), 5, None);
        let err = b.build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "endpoint 10.0.1.2 refers to port 5, but only 1 ports exist"
        );
    }
}
