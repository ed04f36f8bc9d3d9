//! The resolved tables in words, for `podfwd check`.

use std::fmt::Write;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::{Config, Mode};

/// Where a prefix leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RouteTarget {
    /// A local pod: index into [`Config::endpoints`].
    Endpoint(usize),
    /// Another node: index into [`Config::nodes`].
    Node(usize),
}

/// One entry of the longest-prefix-match table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Route {
    pub prefix: Ipv4Net,
    pub target: RouteTarget,
}

pub(crate) fn routes(config: &Config) -> Vec<Route> {
    let mut routes: Vec<Route> = config
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| Route {
            prefix: Ipv4Net::from(e.ip),
            target: RouteTarget::Endpoint(i),
        })
        .chain(config.nodes.iter().enumerate().map(|(i, n)| Route {
            prefix: n.pod_cidr,
            target: RouteTarget::Node(i),
        }))
        .collect();
    routes.sort_by_key(|r| (std::cmp::Reverse(r.prefix.prefix_len()), r.prefix.network()));
    routes
}

pub(crate) fn describe(c: &Config) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_describe(&mut s, c);
    s
}

fn write_describe(s: &mut String, c: &Config) -> std::fmt::Result {
    writeln!(s, "config {}: OK", c.source)?;
    match c.mode {
        Mode::Tunnel => writeln!(
            s,
            "mode: tunnel (VXLAN, VNI {}, UDP port {})",
            c.vxlan.vni, c.vxlan.port
        )?,
        Mode::Native => writeln!(s, "mode: native (the underlay routes the PodCIDRs)")?,
    }
    writeln!(
        s,
        "node {}: underlay {} on {}, PodCIDR {}",
        c.node.name, c.node.ip, c.node.uplink, c.node.pod_cidr
    )?;
    writeln!(s, "cluster {}, pods' gateway {}", c.cluster_cidr, c.gateway)?;
    writeln!(s, "routes (longest prefix first):")?;
    let routes = routes(c);
    let width = routes
        .iter()
        .map(|r| r.prefix.to_string().len())
        .chain([c.node.pod_cidr.to_string().len()])
        .max()
        .unwrap_or(0);
    for r in &routes {
        let prefix = r.prefix.to_string();
        match r.target {
            RouteTarget::Endpoint(i) => {
                let e = &c.endpoints[i];
                writeln!(s, "  {prefix:<width$} -> local pod on {}", e.interface)?;
            }
            RouteTarget::Node(i) => {
                let n = &c.nodes[i];
                let how = match c.mode {
                    Mode::Tunnel => "VXLAN to",
                    Mode::Native => "via uplink to",
                };
                writeln!(s, "  {prefix:<width$} -> node {} ({how} {})", n.name, n.ip)?;
            }
        }
    }
    let own = c.node.pod_cidr.to_string();
    writeln!(s, "  {own:<width$} -> this node, no such pod: drop")?;
    let workers = match &c.workers.cpus {
        Some(cpus) => format!(
            "{} pinned to CPUs {}",
            c.workers.count,
            cpus.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => format!("{} (not pinned)", c.workers.count),
    };
    writeln!(s, "workers: {workers}")?;
    let bytes = u64::from(c.umem.frames) * u64::from(c.umem.frame_size);
    writeln!(
        s,
        "umem: {} frames x {} B = {} MiB per worker",
        c.umem.frames,
        c.umem.frame_size,
        bytes >> 20
    )?;
    writeln!(s, "metrics: http://{}/metrics", c.metrics.listen)
}
