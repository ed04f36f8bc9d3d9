//! Semantic checks: from the spanned [`RawConfig`] to a [`Config`], collecting every
//! problem with its place in the file. Each message says how to fix the value.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;
use wire::ethernet::{mac_is_unicast, parse_mac};

use crate::raw::{RawConfig, S};
use crate::{
    Config, ConfigError, EndpointConfig, MetricsConfig, Mode, NodeConfig, RemoteNodeConfig,
    UmemConfig, VxlanConfig, WorkersConfig, DEFAULT_GATEWAY, IFNAMSIZ, MAX_ENDPOINTS,
    MAX_UMEM_FRAMES, MAX_VNI, MAX_WORKERS, MIN_UMEM_FRAMES,
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

    // node
    let node = &raw.node.value;
    let node_name = c.node_name(&node.name, "node.name");
    let node_ip = c.unicast(&node.ip, "node.ip", "a node's underlay address");
    let uplink = c.ifname(&node.uplink, "node.uplink");
    let pod_cidr = c.cidr(&node.pod_cidr, "node.pod_cidr");

    // mode
    let mode = match &raw.mode {
        None => Some(Mode::Tunnel),
        Some(m) => match Mode::from_name(m.value.trim()) {
            Some(mode) => Some(mode),
            None => {
                let other = m.value.trim();
                c.err(
                    pos(m),
                    "mode",
                    format!("unknown mode `{other}`: use `tunnel` (VXLAN between nodes) or `native` (the underlay routes PodCIDRs)"),
                );
                None
            }
        },
    };

    // cluster CIDR and what must (not) be inside it
    let cluster = c.cidr(&raw.cluster_cidr, "cluster_cidr");
    let cluster_line = pos(&raw.cluster_cidr).line;
    let gateway = match &raw.gateway {
        None => Some(DEFAULT_GATEWAY),
        Some(g) => c.unicast(g, "gateway", "the pods' gateway"),
    };
    if let (Some(cl), Some(gw), Some(g)) = (cluster, gateway, &raw.gateway) {
        if cl.contains(&gw) {
            c.err(
                pos(g),
                "gateway",
                format!("{gw} is inside cluster_cidr {cl} (line {cluster_line}): pick an address no pod can have; the default 169.254.1.1 (link-local) always works"),
            );
        }
    }
    if let (Some(cl), Some(ip)) = (cluster, node_ip) {
        if cl.contains(&ip) {
            c.err(
                pos(&node.ip),
                "node.ip",
                format!("{ip} is inside cluster_cidr {cl} (line {cluster_line}): underlay and pod addresses must not overlap; use the node's address on its uplink"),
            );
        }
    }
    if let (Some(cl), Some(pc)) = (cluster, pod_cidr) {
        if !cl.contains(&pc) {
            c.err(
                pos(&node.pod_cidr),
                "node.pod_cidr",
                format!("{pc} is outside cluster_cidr {cl} (line {cluster_line}): pick a PodCIDR inside the cluster CIDR, or widen cluster_cidr"),
            );
        }
    }

    // vxlan
    let mut vxlan = VxlanConfig::default();
    if let Some(v) = &raw.vxlan {
        if let Some(port) = &v.value.port {
            match u16::try_from(port.value) {
                Ok(p) if p != 0 => vxlan.port = p,
                _ => c.err(
                    pos(port),
                    "vxlan.port",
                    format!("UDP port {} is out of range: use 1..=65535 (8472 is the Linux/flannel/Cilium default, 4789 the IANA one)", port.value),
                ),
            }
        }
        if let Some(vni) = &v.value.vni {
            match u32::try_from(vni.value) {
                Ok(n) if (1..=MAX_VNI).contains(&n) => vxlan.vni = n,
                _ => c.err(
                    pos(vni),
                    "vxlan.vni",
                    format!("VNI {} is out of range: a VXLAN network identifier is 24 bits, use 1..={MAX_VNI}", vni.value),
                ),
            }
        }
    }

    // endpoints (local pods)
    let mut endpoints = Vec::new();
    let mut endpoint_ips = Seen::new();
    let mut endpoint_ifaces = Seen::new();
    let pod_cidr_line = pos(&node.pod_cidr).line;
    let uplink_line = pos(&node.uplink).line;
    for (i, e) in raw.endpoints.iter().flatten().enumerate() {
        if i == MAX_ENDPOINTS {
            c.err(
                pos(&e.value.ip),
                format!("endpoints[{i}]"),
                format!("more than {MAX_ENDPOINTS} endpoints: one podfwd serves at most {MAX_ENDPOINTS} pods (the XDP program's interface table holds 64 interfaces, the uplink included)"),
            );
        }
        let ip_field = format!("endpoints[{i}].ip");
        let if_field = format!("endpoints[{i}].interface");
        let ip = c.ipv4(&e.value.ip, &ip_field);
        if let (Some(ip), Some(pc)) = (ip, pod_cidr) {
            let at = pos(&e.value.ip);
            if !pc.contains(&ip) {
                c.err(at, &ip_field, format!("{ip} is outside node.pod_cidr {pc} (line {pod_cidr_line}): local pods take their addresses from this node's PodCIDR"));
            } else if pc.prefix_len() < 31 && ip == pc.network() {
                c.err(at, &ip_field, format!("{ip} is the network address of node.pod_cidr {pc}: give the pod a host address, e.g. {}", pc.hosts().next().unwrap_or(ip)));
            } else if pc.prefix_len() < 31 && ip == pc.broadcast() {
                c.err(at, &ip_field, format!("{ip} is the broadcast address of node.pod_cidr {pc}: give the pod a host address below it"));
            } else if let Some((prev, p)) = endpoint_ips.insert(ip, &ip_field, at) {
                c.err(
                    at,
                    &ip_field,
                    format!(
                        "{ip} is already used by {prev} (line {}): give every pod its own address",
                        p.line
                    ),
                );
            }
        }
        let iface = c.ifname(&e.value.interface, &if_field);
        if let Some(name) = &iface {
            let at = pos(&e.value.interface);
            if uplink.as_deref() == Some(name.as_str()) {
                c.err(at, &if_field, format!("{name} is the uplink (node.uplink, line {uplink_line}): give the pod's host-side veth, e.g. lxc0"));
            } else if let Some((prev, p)) = endpoint_ifaces.insert(name.clone(), &if_field, at) {
                c.err(at, &if_field, format!("{name} is already used by {prev} (line {}): every pod has its own host-side veth", p.line));
            }
        }
        if let (Some(ip), Some(interface)) = (ip, iface) {
            endpoints.push(EndpointConfig { ip, interface });
        }
    }

    // remote nodes
    let mut nodes = Vec::new();
    let mut names = Seen::new();
    let mut ips = Seen::new();
    let mut cidrs: Vec<(String, Ipv4Net, Pos)> = Vec::new();
    if let Some(n) = &node_name {
        names.insert(n.clone(), "node.name", pos(&node.name));
    }
    if let Some(ip) = node_ip {
        ips.insert(ip, "node.ip", pos(&node.ip));
    }
    if let Some(pc) = pod_cidr {
        cidrs.push(("node.pod_cidr".to_owned(), pc, pos(&node.pod_cidr)));
    }
    for (i, n) in raw.nodes.iter().flatten().enumerate() {
        let r = &n.value;
        let name_field = format!("nodes[{i}].name");
        let ip_field = format!("nodes[{i}].ip");
        let cidr_field = format!("nodes[{i}].pod_cidr");

        let name = c.node_name(&r.name, &name_field);
        if let Some(name) = &name {
            if let Some((prev, p)) = names.insert(name.clone(), &name_field, pos(&r.name)) {
                c.err(
                    pos(&r.name),
                    &name_field,
                    format!(
                        "{name} is already used by {prev} (line {}): node names must be unique",
                        p.line
                    ),
                );
            }
        }

        let ip = c.unicast(&r.ip, &ip_field, "a node's underlay address");
        if let Some(ip) = ip {
            let at = pos(&r.ip);
            if let Some((prev, p)) = ips.insert(ip, &ip_field, at) {
                c.err(at, &ip_field, format!("{ip} is already used by {prev} (line {}): every node has its own underlay address", p.line));
            } else if let Some(cl) = cluster.filter(|cl| cl.contains(&ip)) {
                c.err(at, &ip_field, format!("{ip} is inside cluster_cidr {cl} (line {cluster_line}): underlay and pod addresses must not overlap; use the node's underlay address"));
            }
        }

        let pc = c.cidr(&r.pod_cidr, &cidr_field);
        if let Some(pc) = pc {
            let at = pos(&r.pod_cidr);
            if let Some(cl) = cluster.filter(|cl| !cl.contains(&pc)) {
                c.err(at, &cidr_field, format!("{pc} is outside cluster_cidr {cl} (line {cluster_line}): pick a PodCIDR inside the cluster CIDR, or widen cluster_cidr"));
            } else if let Some((prev, other, p)) =
                cidrs.iter().find(|(_, other, _)| overlaps(pc, *other))
            {
                c.err(
                    at,
                    &cidr_field,
                    format!(
                        "{pc} overlaps {prev} {other} (line {}): give every node its own PodCIDR",
                        p.line
                    ),
                );
            }
            cidrs.push((cidr_field.clone(), pc, at));
        }

        let mut vtep_mac = None;
        let mut vtep_ok = true;
        if let Some(m) = &r.vtep_mac {
            match parse_mac(&m.value) {
                Some(mac) if mac_is_unicast(&mac) => vtep_mac = Some(mac),
                _ => {
                    vtep_ok = false;
                    c.err(
                        pos(m),
                        format!("nodes[{i}].vtep_mac"),
                        format!(
                            "{:?} is not a unicast MAC address: write it as six hex bytes, e.g. 02:fe:c6:12:00:02 (flannel publishes it as VtepMAC)",
                            m.value
                        ),
                    );
                }
            }
        }

        if let (Some(name), Some(ip), Some(pod_cidr), true) = (name, ip, pc, vtep_ok) {
            nodes.push(RemoteNodeConfig {
                name,
                ip,
                pod_cidr,
                vtep_mac,
            });
        }
    }

    // workers
    let mut workers = WorkersConfig::default();
    let mut count_ok = true;
    let mut count_line = None;
    if let Some(w) = &raw.workers {
        if let Some(count) = &w.value.count {
            count_line = Some(pos(count).line);
            match usize::try_from(count.value) {
                Ok(n) if (1..=MAX_WORKERS).contains(&n) => workers.count = n,
                _ => {
                    count_ok = false;
                    c.err(pos(count), "workers.count", format!("{} workers is out of range: use 1..={MAX_WORKERS}, usually one per core given to podfwd (worker N serves queue N of every interface; the XDP program has 16 queues per interface)", count.value));
                }
            }
        }
        if let Some(cpus) = &w.value.cpus {
            if count_ok && cpus.value.len() != workers.count {
                let what = match count_line {
                    Some(l) => format!("workers.count is {} (line {l})", workers.count),
                    None => format!("workers.count is {} (the default)", workers.count),
                };
                c.err(pos(cpus), "workers.cpus", format!("{} CPUs listed but {what}: give exactly one CPU per worker, or leave cpus out to let the kernel place workers", cpus.value.len()));
            }
            let mut seen = Seen::new();
            let mut list = Vec::new();
            for (i, cpu) in cpus.value.iter().enumerate() {
                let field = format!("workers.cpus[{i}]");
                let at = pos(cpu);
                let n = usize::try_from(cpu.value).unwrap_or(usize::MAX);
                if let Some(online) = online_cpus.filter(|o| !o.contains(&n)) {
                    c.err(at, &field, format!("CPU {} is not online on this machine (online: {}): pick CPUs from that list", cpu.value, format_cpu_list(online)));
                } else if let Some((prev, p)) = seen.insert(n, &field, at) {
                    c.err(at, &field, format!("CPU {n} is already given to {prev} (line {}): pin each worker to its own CPU", p.line));
                }
                list.push(n);
            }
            workers.cpus = Some(list);
        }
    }

    // umem
    let mut umem = UmemConfig::default();
    if let Some(u) = &raw.umem {
        if let Some(frames) = &u.value.frames {
            let f = frames.value;
            if f < u64::from(MIN_UMEM_FRAMES)
                || f > u64::from(MAX_UMEM_FRAMES)
                || !f.is_power_of_two()
            {
                let hint = if f.is_power_of_two() {
                    String::new()
                } else {
                    let up = f.checked_next_power_of_two().unwrap_or(u64::MAX);
                    let near: Vec<String> = [up / 2, up]
                        .into_iter()
                        .filter(|n| {
                            (u64::from(MIN_UMEM_FRAMES)..=u64::from(MAX_UMEM_FRAMES)).contains(n)
                        })
                        .map(|n| n.to_string())
                        .collect();
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (nearest: {})", near.join(", "))
                    }
                };
                c.err(pos(frames), "umem.frames", format!("{f} frames: use a power of two from {MIN_UMEM_FRAMES} to {MAX_UMEM_FRAMES}{hint}"));
            } else {
                umem.frames = u32_in(f);
            }
        }
        if let Some(size) = &u.value.frame_size {
            match size.value {
                2048 | 4096 => umem.frame_size = u32_in(size.value),
                other => c.err(pos(size), "umem.frame_size", format!("frame size {other} is not supported: use 2048 or 4096 (AF_XDP frames are half or a whole page)")),
            }
        }
    }

    // metrics
    let mut metrics = MetricsConfig::default();
    if let Some(listen) = raw.metrics.as_ref().and_then(|m| m.value.listen.as_ref()) {
        match listen.value.trim().parse::<SocketAddr>() {
            Ok(addr) => metrics.listen = addr,
            Err(_) => c.err(
                pos(listen),
                "metrics.listen",
                format!(
                    "`{}` is not a socket address: write ip:port, e.g. 127.0.0.1:9475",
                    listen.value
                ),
            ),
        }
    }

    if !c.errors.is_empty() {
        // Report in file order, whatever order the checks ran in.
        c.errors.sort_by_key(|e| (e.line, e.column));
        return Err(c.errors);
    }
    match (node_name, node_ip, uplink, pod_cidr, mode, cluster, gateway) {
        (
            Some(name),
            Some(ip),
            Some(uplink),
            Some(pod_cidr),
            Some(mode),
            Some(cluster_cidr),
            Some(gateway),
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
