//! Semantic checks: from the spanned [`RawConfig`] to a [`Config`], collecting every
//! problem with its place in the file. Each message says how to fix the value.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;
use wire::ethernet::{mac_is_unicast, parse_mac};

use crate::raw::{
    RawConfig, RawControl, RawEndpoint, RawMetrics, RawNode, RawOffload, RawRemoteNode, RawRoutes,
    RawUmem, RawVxlan, RawWorkers, S,
};
use crate::{
    Config, ConfigError, ControlConfig, EndpointConfig, MetricsConfig, Mode, NodeConfig,
    OffloadConfig, RemoteNodeConfig, RoutesConfig, Switch, UmemConfig, VxlanConfig, WorkersConfig,
    DEFAULT_GATEWAY, IFNAMSIZ, MAX_ENDPOINTS, MAX_UMEM_FRAMES, MAX_VNI, MAX_WORKERS,
    MIN_UMEM_FRAMES,
};

/// A place in the file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    line: usize,
    column: usize,
}

fn pos<T>(s: &S<T>) -> Pos {
    let at = s.referenced;
    Pos {
        line: usize::try_from(at.line()).unwrap_or(usize::MAX),
        column: usize::try_from(at.column()).unwrap_or(usize::MAX),
    }
}

struct Checker<'a> {
    source: &'a str,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn err(&mut self, at: Pos, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            source: self.source.to_owned(),
            line: Some(at.line),
            column: Some(at.column),
            field: field.into(),
            message: message.into(),
        });
    }

    fn ipv4(&mut self, s: &S<String>, field: &str) -> Option<Ipv4Addr> {
        let text = s.value.trim();
        if let Ok(ip) = text.parse::<Ipv4Addr>() {
            return Some(ip);
        }
        let message = if let Ok(net) = text.parse::<Ipv4Net>() {
            format!(
                "`{text}` is a CIDR, not an address: write the address alone, e.g. {}",
                net.addr()
            )
        } else {
            format!("`{text}` is not an IPv4 address: write four dotted numbers, e.g. 198.18.0.1")
        };
        self.err(pos(s), field, message);
        None
    }

    /// An address that can sit on an interface and be routed to.
    fn unicast(&mut self, s: &S<String>, field: &str, what: &str) -> Option<Ipv4Addr> {
        let ip = self.ipv4(s, field)?;
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
            self.err(
                pos(s),
                field,
                format!("{ip} cannot be {what}: use a unicast address"),
            );
            return None;
        }
        Some(ip)
    }

    fn cidr(&mut self, s: &S<String>, field: &str) -> Option<Ipv4Net> {
        let text = s.value.trim();
        match text.parse::<Ipv4Net>() {
            Ok(net) if net.trunc() == net => Some(net),
            Ok(net) => {
                self.err(
                    pos(s),
                    field,
                    format!("{text} has host bits set: did you mean {}?", net.trunc()),
                );
                None
            }
            Err(_) => {
                let message = if text.parse::<Ipv4Addr>().is_ok() {
                    format!("`{text}` has no prefix length: write it as a CIDR, e.g. {text}/24")
                } else {
                    format!("`{text}` is not an IPv4 CIDR: write address/prefix-length, e.g. 10.0.1.0/24")
                };
                self.err(pos(s), field, message);
                None
            }
        }
    }

    /// Linux interface names: 1..=15 bytes, no '/', ':' or whitespace, not `.` or `..`
    /// (`dev_valid_name()` in net/core/dev.c; IFNAMSIZ counts the NUL).
    fn ifname(&mut self, s: &S<String>, field: &str) -> Option<String> {
        let name = s.value.as_str();
        let problem = if name.is_empty() {
            Some(
                "interface name is empty: give the interface's name as `ip link` shows it"
                    .to_owned(),
            )
        } else if name.len() >= IFNAMSIZ {
            Some(format!(
                "`{name}` is {} bytes long: Linux interface names are at most {} bytes",
                name.len(),
                IFNAMSIZ - 1
            ))
        } else if name == "."
            || name == ".."
            || name.contains(['/', ':'])
            || name.contains(char::is_whitespace)
        {
            Some(format!(
                "`{name}` is not a valid interface name: it must not be `.` or `..` nor contain '/', ':' or spaces"
            ))
        } else {
            None
        };
        match problem {
            Some(message) => {
                self.err(pos(s), field, message);
                None
            }
            None => Some(name.to_owned()),
        }
    }

    fn node_name(&mut self, s: &S<String>, field: &str) -> Option<String> {
        let name = s.value.trim();
        if name.is_empty() {
            self.err(
                pos(s),
                field,
                "node name is empty: give the node's name, e.g. node-a",
            );
            return None;
        }
        Some(name.to_owned())
    }
}

/// First definition of a value, for "already used by ... (line N)" messages.
struct Seen<K> {
    first: HashMap<K, (String, Pos)>,
}

impl<K: std::hash::Hash + Eq> Seen<K> {
    fn new() -> Self {
        Self {
            first: HashMap::new(),
        }
    }

    /// Records `key`; if it was seen before, returns where.
    fn insert(&mut self, key: K, field: &str, at: Pos) -> Option<(String, Pos)> {
        match self.first.get(&key) {
            Some(prev) => Some(prev.clone()),
            None => {
                self.first.insert(key, (field.to_owned(), at));
                None
            }
        }
    }
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn u32_in(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// This node's own fields, as far as they resolved.
struct Local {
    name: Option<String>,
    ip: Option<Ipv4Addr>,
    uplink: Option<String>,
    pod_cidr: Option<Ipv4Net>,
}

/// The cluster CIDR (and its line, for messages) and the pods' gateway.
struct Cluster {
    cidr: Option<Ipv4Net>,
    line: usize,
    gateway: Option<Ipv4Addr>,
}

/// Names, underlay IPs and PodCIDRs already given, this node's included.
struct NodesSeen {
    names: Seen<String>,
    ips: Seen<Ipv4Addr>,
    cidrs: Vec<(String, Ipv4Net, Pos)>,
}

/// Checks `raw`; on success every field is resolved (defaults filled in).
/// `online_cpus` is the set `workers.cpus` must come from; `None` skips that check.
pub(crate) fn validate(
    raw: &RawConfig,
    source: &str,
    online_cpus: Option<&[usize]>,
) -> Result<Config, Vec<ConfigError>> {
    let mut c = Checker {
        source,
        errors: Vec::new(),
    };
    // Sections in file order; errors are sorted by place at the end anyway.
    let local = c.check_node(&raw.node.value);
    let mode = c.check_mode(raw.mode.as_ref());
    let cluster = c.check_cluster(raw, &local);
    let vxlan = c.check_vxlan(raw.vxlan.as_ref());
    let endpoints = c.check_endpoints(raw, &local);
    let nodes = c.check_nodes(raw, &local, &cluster);
    let workers = c.check_workers(raw.workers.as_ref(), online_cpus);
    let umem = c.check_umem(raw.umem.as_ref());
    let metrics = c.check_metrics(raw.metrics.as_ref());
    let control = c.check_control(raw.control.as_ref());
    let routes = c.check_routes(raw.routes.as_ref());
    let offload = c.check_offload(raw.offload.as_ref());

    if !c.errors.is_empty() {
        // Report in file order, whatever order the checks ran in.
        c.errors.sort_by_key(|e| (e.line, e.column));
        return Err(c.errors);
    }
    match (local, mode, cluster) {
        (
            Local {
                name: Some(name),
                ip: Some(ip),
                uplink: Some(uplink),
                pod_cidr: Some(pod_cidr),
            },
            Some(mode),
            Cluster {
                cidr: Some(cluster_cidr),
                gateway: Some(gateway),
                ..
            },
        ) => Ok(Config {
            node: NodeConfig {
                name,
                ip,
                uplink,
                pod_cidr,
            },
            mode,
            cluster_cidr,
            gateway,
            vxlan,
            endpoints,
            nodes,
            workers,
            umem,
            metrics,
            control,
            routes,
            offload,
            source: source.to_owned(),
        }),
        // Every `None` above pushed an error; this arm is only a safety net.
        _ => Err(vec![ConfigError {
            source: source.to_owned(),
            line: None,
            column: None,
            field: String::new(),
            message: "internal error: a field could not be resolved; please report this config"
                .to_owned(),
        }]),
    }
}

impl Checker<'_> {
    /// `node`: name, underlay IP, uplink, PodCIDR.
    fn check_node(&mut self, node: &RawNode) -> Local {
        Local {
            name: self.node_name(&node.name, "node.name"),
            ip: self.unicast(&node.ip, "node.ip", "a node's underlay address"),
            uplink: self.ifname(&node.uplink, "node.uplink"),
            pod_cidr: self.cidr(&node.pod_cidr, "node.pod_cidr"),
        }
    }

    /// `mode`: `tunnel` (the default), `native` or `hybrid`.
    fn check_mode(&mut self, mode: Option<&S<String>>) -> Option<Mode> {
        let Some(m) = mode else {
            return Some(Mode::Tunnel);
        };
        let name = m.value.trim();
        let mode = Mode::from_name(name);
        if mode.is_none() {
            self.err(
                pos(m),
                "mode",
                format!("unknown mode `{name}`: use `tunnel` (VXLAN between nodes), `native` (the underlay routes PodCIDRs) or `hybrid` (native to on-link nodes, VXLAN to nodes behind a router)"),
            );
        }
        mode
    }

    /// `cluster_cidr` and `gateway`, and what must (not) be inside the cluster CIDR.
    fn check_cluster(&mut self, raw: &RawConfig, local: &Local) -> Cluster {
        let node = &raw.node.value;
        let cluster = self.cidr(&raw.cluster_cidr, "cluster_cidr");
        let cluster_line = pos(&raw.cluster_cidr).line;
        let gateway = match &raw.gateway {
            None => Some(DEFAULT_GATEWAY),
            Some(g) => self.unicast(g, "gateway", "the pods' gateway"),
        };
        if let (Some(cl), Some(gw), Some(g)) = (cluster, gateway, &raw.gateway) {
            if cl.contains(&gw) {
                self.err(
                    pos(g),
                    "gateway",
                    format!("{gw} is inside cluster_cidr {cl} (line {cluster_line}): pick an address no pod can have; the default 169.254.1.1 (link-local) always works"),
                );
            }
        }
        if let (Some(cl), Some(ip)) = (cluster, local.ip) {
            if cl.contains(&ip) {
                self.err(
                    pos(&node.ip),
                    "node.ip",
                    format!("{ip} is inside cluster_cidr {cl} (line {cluster_line}): underlay and pod addresses must not overlap; use the node's address on its uplink"),
                );
            }
        }
        if let (Some(cl), Some(pc)) = (cluster, local.pod_cidr) {
            if !cl.contains(&pc) {
                self.err(
                    pos(&node.pod_cidr),
                    "node.pod_cidr",
                    format!("{pc} is outside cluster_cidr {cl} (line {cluster_line}): pick a PodCIDR inside the cluster CIDR, or widen cluster_cidr"),
                );
            }
        }
        Cluster {
            cidr: cluster,
            line: cluster_line,
            gateway,
        }
    }

    /// `vxlan`: UDP port and VNI.
    fn check_vxlan(&mut self, raw: Option<&S<RawVxlan>>) -> VxlanConfig {
        let mut vxlan = VxlanConfig::default();
        let Some(v) = raw else {
            return vxlan;
        };
        if let Some(port) = &v.value.port {
            match u16::try_from(port.value) {
                Ok(p) if p != 0 => vxlan.port = p,
                _ => self.err(
                    pos(port),
                    "vxlan.port",
                    format!("UDP port {} is out of range: use 1..=65535 (8472 is the Linux/flannel/Cilium default, 4789 the IANA one)", port.value),
                ),
            }
        }
        if let Some(vni) = &v.value.vni {
            match u32::try_from(vni.value) {
                Ok(n) if (1..=MAX_VNI).contains(&n) => vxlan.vni = n,
                _ => self.err(
                    pos(vni),
                    "vxlan.vni",
                    format!("VNI {} is out of range: a VXLAN network identifier is 24 bits, use 1..={MAX_VNI}", vni.value),
                ),
            }
        }
        vxlan
    }

    /// `endpoints`: the local pods, inside this node's PodCIDR, each on its own veth.
    fn check_endpoints(&mut self, raw: &RawConfig, local: &Local) -> Vec<EndpointConfig> {
        let mut endpoints = Vec::new();
        let mut ips = Seen::new();
        let mut ifaces = Seen::new();
        for (i, e) in raw.endpoints.iter().flatten().enumerate() {
            if i == MAX_ENDPOINTS {
                self.err(
                    pos(&e.value.ip),
                    format!("endpoints[{i}]"),
                    format!("more than {MAX_ENDPOINTS} endpoints: one podfwd serves at most {MAX_ENDPOINTS} pods (the XDP program's interface table holds 512 interfaces, the uplink included)"),
                );
            }
            let ip = self.endpoint_ip(raw, local, i, &e.value, &mut ips);
            let iface = self.endpoint_iface(raw, local, i, &e.value, &mut ifaces);
            if let (Some(ip), Some(interface)) = (ip, iface) {
                endpoints.push(EndpointConfig { ip, interface });
            }
        }
        endpoints
    }

    /// `endpoints[i].ip`: a host address of this node's PodCIDR, not used twice.
    fn endpoint_ip(
        &mut self,
        raw: &RawConfig,
        local: &Local,
        i: usize,
        e: &RawEndpoint,
        seen: &mut Seen<Ipv4Addr>,
    ) -> Option<Ipv4Addr> {
        let ip_field = format!("endpoints[{i}].ip");
        let pod_cidr_line = pos(&raw.node.value.pod_cidr).line;
        let ip = self.ipv4(&e.ip, &ip_field);
        if let (Some(ip), Some(pc)) = (ip, local.pod_cidr) {
            let at = pos(&e.ip);
            if !pc.contains(&ip) {
                self.err(at, &ip_field, format!("{ip} is outside node.pod_cidr {pc} (line {pod_cidr_line}): local pods take their addresses from this node's PodCIDR"));
            } else if pc.prefix_len() < 31 && ip == pc.network() {
                self.err(at, &ip_field, format!("{ip} is the network address of node.pod_cidr {pc}: give the pod a host address, e.g. {}", pc.hosts().next().unwrap_or(ip)));
            } else if pc.prefix_len() < 31 && ip == pc.broadcast() {
                self.err(at, &ip_field, format!("{ip} is the broadcast address of node.pod_cidr {pc}: give the pod a host address below it"));
            } else if let Some((prev, p)) = seen.insert(ip, &ip_field, at) {
                self.err(
                    at,
                    &ip_field,
                    format!(
                        "{ip} is already used by {prev} (line {}): give every pod its own address",
                        p.line
                    ),
                );
            }
        }
        ip
    }

    /// `endpoints[i].interface`: a host-side veth, not the uplink, not used twice.
    fn endpoint_iface(
        &mut self,
        raw: &RawConfig,
        local: &Local,
        i: usize,
        e: &RawEndpoint,
        seen: &mut Seen<String>,
    ) -> Option<String> {
        let if_field = format!("endpoints[{i}].interface");
        let uplink_line = pos(&raw.node.value.uplink).line;
        let iface = self.ifname(&e.interface, &if_field);
        if let Some(name) = &iface {
            let at = pos(&e.interface);
            if local.uplink.as_deref() == Some(name.as_str()) {
                self.err(at, &if_field, format!("{name} is the uplink (node.uplink, line {uplink_line}): give the pod's host-side veth, e.g. lxc0"));
            } else if let Some((prev, p)) = seen.insert(name.clone(), &if_field, at) {
                self.err(at, &if_field, format!("{name} is already used by {prev} (line {}): every pod has its own host-side veth", p.line));
            }
        }
        iface
    }

    /// `nodes`: the remote nodes; names, IPs and PodCIDRs unique, this node's included.
    fn check_nodes(
        &mut self,
        raw: &RawConfig,
        local: &Local,
        cluster: &Cluster,
    ) -> Vec<RemoteNodeConfig> {
        let node = &raw.node.value;
        let mut seen = NodesSeen {
            names: Seen::new(),
            ips: Seen::new(),
            cidrs: Vec::new(),
        };
        if let Some(n) = &local.name {
            seen.names.insert(n.clone(), "node.name", pos(&node.name));
        }
        if let Some(ip) = local.ip {
            seen.ips.insert(ip, "node.ip", pos(&node.ip));
        }
        if let Some(pc) = local.pod_cidr {
            seen.cidrs
                .push(("node.pod_cidr".to_owned(), pc, pos(&node.pod_cidr)));
        }
        raw.nodes
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, n)| self.check_remote_node(i, &n.value, cluster, &mut seen))
            .collect()
    }

    /// `nodes[i]`: name, underlay IP, PodCIDR, VTEP MAC.
    fn check_remote_node(
        &mut self,
        i: usize,
        r: &RawRemoteNode,
        cluster: &Cluster,
        seen: &mut NodesSeen,
    ) -> Option<RemoteNodeConfig> {
        let name_field = format!("nodes[{i}].name");
        let ip_field = format!("nodes[{i}].ip");
        let cluster_line = cluster.line;

        let name = self.node_name(&r.name, &name_field);
        if let Some(name) = &name {
            if let Some((prev, p)) = seen.names.insert(name.clone(), &name_field, pos(&r.name)) {
                self.err(
                    pos(&r.name),
                    &name_field,
                    format!(
                        "{name} is already used by {prev} (line {}): node names must be unique",
                        p.line
                    ),
                );
            }
        }

        let ip = self.unicast(&r.ip, &ip_field, "a node's underlay address");
        if let Some(ip) = ip {
            let at = pos(&r.ip);
            if let Some((prev, p)) = seen.ips.insert(ip, &ip_field, at) {
                self.err(at, &ip_field, format!("{ip} is already used by {prev} (line {}): every node has its own underlay address", p.line));
            } else if let Some(cl) = cluster.cidr.filter(|cl| cl.contains(&ip)) {
                self.err(at, &ip_field, format!("{ip} is inside cluster_cidr {cl} (line {cluster_line}): underlay and pod addresses must not overlap; use the node's underlay address"));
            }
        }

        let pc = self.remote_pod_cidr(i, r, cluster, seen);
        let vtep_mac = self.vtep_mac(i, r);

        if let (Some(name), Some(ip), Some(pod_cidr), Some(vtep_mac)) = (name, ip, pc, vtep_mac) {
            Some(RemoteNodeConfig {
                name,
                ip,
                pod_cidr,
                vtep_mac,
            })
        } else {
            None
        }
    }

    /// `nodes[i].pod_cidr`: inside the cluster CIDR, overlapping no other PodCIDR.
    fn remote_pod_cidr(
        &mut self,
        i: usize,
        r: &RawRemoteNode,
        cluster: &Cluster,
        seen: &mut NodesSeen,
    ) -> Option<Ipv4Net> {
        let cidr_field = format!("nodes[{i}].pod_cidr");
        let cluster_line = cluster.line;
        let pc = self.cidr(&r.pod_cidr, &cidr_field)?;
        let at = pos(&r.pod_cidr);
        if let Some(cl) = cluster.cidr.filter(|cl| !cl.contains(&pc)) {
            self.err(at, &cidr_field, format!("{pc} is outside cluster_cidr {cl} (line {cluster_line}): pick a PodCIDR inside the cluster CIDR, or widen cluster_cidr"));
        } else if let Some((prev, other, p)) =
            seen.cidrs.iter().find(|(_, other, _)| overlaps(pc, *other))
        {
            self.err(
                at,
                &cidr_field,
                format!(
                    "{pc} overlaps {prev} {other} (line {}): give every node its own PodCIDR",
                    p.line
                ),
            );
        }
        seen.cidrs.push((cidr_field, pc, at));
        Some(pc)
    }

    /// `nodes[i].vtep_mac`: `Some(None)` when absent, `None` when refused.
    fn vtep_mac(&mut self, i: usize, r: &RawRemoteNode) -> Option<Option<[u8; 6]>> {
        let Some(m) = &r.vtep_mac else {
            return Some(None);
        };
        match parse_mac(&m.value) {
            Some(mac) if mac_is_unicast(&mac) => Some(Some(mac)),
            _ => {
                self.err(
                    pos(m),
                    format!("nodes[{i}].vtep_mac"),
                    format!(
                        "{:?} is not a unicast MAC address: write it as six hex bytes, e.g. 02:fe:c6:12:00:02 (flannel publishes it as VtepMAC)",
                        m.value
                    ),
                );
                None
            }
        }
    }

    /// `workers`: count, and optionally one distinct online CPU per worker.
    fn check_workers(
        &mut self,
        raw: Option<&S<RawWorkers>>,
        online_cpus: Option<&[usize]>,
    ) -> WorkersConfig {
        let mut workers = WorkersConfig::default();
        let Some(w) = raw else {
            return workers;
        };
        let mut count_ok = true;
        let mut count_line = None;
        if let Some(count) = &w.value.count {
            count_line = Some(pos(count).line);
            match usize::try_from(count.value) {
                Ok(n) if (1..=MAX_WORKERS).contains(&n) => workers.count = n,
                _ => {
                    count_ok = false;
                    self.err(pos(count), "workers.count", format!("{} workers is out of range: use 1..={MAX_WORKERS}, usually one per core given to podfwd (worker N serves queue N of every interface; the XDP program has 16 queues per interface)", count.value));
                }
            }
        }
        if let Some(cpus) = &w.value.cpus {
            if count_ok && cpus.value.len() != workers.count {
                let what = match count_line {
                    Some(l) => format!("workers.count is {} (line {l})", workers.count),
                    None => format!("workers.count is {} (the default)", workers.count),
                };
                self.err(pos(cpus), "workers.cpus", format!("{} CPUs listed but {what}: give exactly one CPU per worker, or leave cpus out to let the kernel place workers", cpus.value.len()));
            }
            workers.cpus = Some(self.check_cpus(&cpus.value, online_cpus));
        }
        workers
    }

    /// `workers.cpus[i]`: online (when known), each given once.
    fn check_cpus(&mut self, cpus: &[S<u64>], online_cpus: Option<&[usize]>) -> Vec<usize> {
        let mut seen = Seen::new();
        let mut list = Vec::new();
        for (i, cpu) in cpus.iter().enumerate() {
            let field = format!("workers.cpus[{i}]");
            let at = pos(cpu);
            let n = usize::try_from(cpu.value).unwrap_or(usize::MAX);
            if let Some(online) = online_cpus.filter(|o| !o.contains(&n)) {
                self.err(at, &field, format!("CPU {} is not online on this machine (online: {}): pick CPUs from that list", cpu.value, format_cpu_list(online)));
            } else if let Some((prev, p)) = seen.insert(n, &field, at) {
                self.err(at, &field, format!("CPU {n} is already given to {prev} (line {}): pin each worker to its own CPU", p.line));
            }
            list.push(n);
        }
        list
    }

    /// `umem`: frames per worker (a power of two in range) and frame size.
    fn check_umem(&mut self, raw: Option<&S<RawUmem>>) -> UmemConfig {
        let mut umem = UmemConfig::default();
        let Some(u) = raw else {
            return umem;
        };
        if let Some(frames) = &u.value.frames {
            let f = frames.value;
            if f < u64::from(MIN_UMEM_FRAMES)
                || f > u64::from(MAX_UMEM_FRAMES)
                || !f.is_power_of_two()
            {
                let hint = frames_hint(f);
                self.err(pos(frames), "umem.frames", format!("{f} frames: use a power of two from {MIN_UMEM_FRAMES} to {MAX_UMEM_FRAMES}{hint}"));
            } else {
                umem.frames = u32_in(f);
            }
        }
        if let Some(size) = &u.value.frame_size {
            match size.value {
                2048 | 4096 => umem.frame_size = u32_in(size.value),
                other => self.err(pos(size), "umem.frame_size", format!("frame size {other} is not supported: use 2048 or 4096 (AF_XDP frames are half or a whole page)")),
            }
        }
        umem
    }

    /// `metrics.listen`: an ip:port.
    fn check_metrics(&mut self, raw: Option<&S<RawMetrics>>) -> MetricsConfig {
        let mut metrics = MetricsConfig::default();
        if let Some(listen) = raw.and_then(|m| m.value.listen.as_ref()) {
            match listen.value.trim().parse::<SocketAddr>() {
                Ok(addr) => metrics.listen = addr,
                Err(_) => self.err(
                    pos(listen),
                    "metrics.listen",
                    format!(
                        "`{}` is not a socket address: write ip:port, e.g. 127.0.0.1:9475",
                        listen.value
                    ),
                ),
            }
        }
        metrics
    }

    /// `routes.table`: a kernel routing table other than main, local and default.
    fn check_routes(&mut self, raw: Option<&S<RawRoutes>>) -> RoutesConfig {
        let mut routes = RoutesConfig::default();
        if let Some(t) = raw.and_then(|r| r.value.table.as_ref()) {
            match u32::try_from(t.value) {
                Ok(id @ 1..=252 | id @ 256..) => routes.table = Some(id),
                _ => self.err(
                    pos(t),
                    "routes.table",
                    format!(
                        "table {} cannot hold learned PodCIDRs: use a table of its own, 1-252 or 256 and up (e.g. 201), not main (254), local (255) or default (253)",
                        t.value
                    ),
                ),
            }
        }
        routes
    }

    /// `offload.tx_checksum` and `offload.multi_buffer`: `auto`, `on` or `off`.
    fn check_offload(&mut self, raw: Option<&S<RawOffload>>) -> OffloadConfig {
        let mut offload = OffloadConfig::default();
        let Some(o) = raw.map(|o| &o.value) else {
            return offload;
        };
        if let Some(v) = self.check_switch(
            o.tx_checksum.as_ref(),
            "offload.tx_checksum",
            "`auto` (the kernel's checksum offload where it has AF_XDP TX metadata, else software), `on` (offload, or do not start) or `off` (podfwd completes partial checksums itself)",
        ) {
            offload.tx_checksum = v;
        }
        if let Some(v) = self.check_switch(
            o.multi_buffer.as_ref(),
            "offload.multi_buffer",
            "`auto` (frames larger than one UMEM frame as AF_XDP descriptor chains where the kernel has them, Linux 6.6+), `on` (chains, or do not start) or `off` (such frames are dropped)",
        ) {
            offload.multi_buffer = v;
        }
        offload
    }

    /// A `Switch` field, if given and valid; an error naming `field` and what `choices`
    /// mean otherwise.
    fn check_switch(
        &mut self,
        raw: Option<&S<String>>,
        field: &'static str,
        choices: &str,
    ) -> Option<Switch> {
        let t = raw?;
        let v = Switch::from_name(t.value.trim());
        if v.is_none() {
            self.err(
                pos(t),
                field,
                format!("`{}` is not a setting: use {choices}", t.value),
            );
        }
        v
    }

    /// `control.socket`: an absolute path.
    fn check_control(&mut self, raw: Option<&S<RawControl>>) -> ControlConfig {
        let mut control = ControlConfig::default();
        if let Some(sock) = raw.and_then(|c| c.value.socket.as_ref()) {
            let path = std::path::Path::new(sock.value.trim());
            if path.is_absolute() && path.file_name().is_some() {
                control.socket = path.to_owned();
            } else {
                self.err(
                    pos(sock),
                    "control.socket",
                    format!(
                        "`{}` is not an absolute socket path: write e.g. /run/podfwd/podfwd.sock",
                        sock.value
                    ),
                );
            }
        }
        control
    }
}

/// " (nearest: a, b)" for a frame count that is not a power of two; "" otherwise.
fn frames_hint(f: u64) -> String {
    if f.is_power_of_two() {
        return String::new();
    }
    let up = f.checked_next_power_of_two().unwrap_or(u64::MAX);
    let near: Vec<String> = [up / 2, up]
        .into_iter()
        .filter(|n| (u64::from(MIN_UMEM_FRAMES)..=u64::from(MAX_UMEM_FRAMES)).contains(n))
        .map(|n| n.to_string())
        .collect();
    if near.is_empty() {
        String::new()
    } else {
        format!(" (nearest: {})", near.join(", "))
    }
}

/// `0-3,5` form, as the kernel writes CPU lists.
pub(crate) fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Parses the kernel's CPU list format (`/sys/devices/system/cpu/online`: `0-3,5,7-8`).
pub(crate) fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (
                    a.trim().parse::<usize>().ok()?,
                    b.trim().parse::<usize>().ok()?,
                );
                if a > b {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::{format_cpu_list, parse_cpu_list};

    #[test]
    fn cpu_lists_round_trip_in_kernel_format() {
        assert_eq!(
            parse_cpu_list("0-3,5,7-8\n"),
            Some(vec![0, 1, 2, 3, 5, 7, 8])
        );
        assert_eq!(parse_cpu_list("0\n"), Some(vec![0]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(format_cpu_list(&[8, 0, 1, 2, 3, 5, 7]), "0-3,5,7-8");
        assert_eq!(format_cpu_list(&[]), "");
    }
}
