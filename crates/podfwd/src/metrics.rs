//! Prometheus text exposition (format 0.0.4), rendered at scrape time.
//!
//! Worker counters are summed here; nothing on the hot path touches a shared counter.
//! Every per-worker value only grows (each worker publishes its own monotonic totals with
//! relaxed stores), so the sums only grow too: no counter ever goes backwards between two
//! scrapes. Every metric is documented in docs/metrics.md; the unit tests below check
//! the naming rules (counters end in `_total`, one HELP and TYPE per family, samples
//! only of declared families).

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use pipeline::{Action, DropReason};

use crate::stats::{PortShared, WorkerShared};
use crate::views::StatusView;

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escape a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[allow(clippy::cast_precision_loss)] // milliseconds since the epoch fit an f64 exactly
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

type WorkerField = fn(&WorkerShared) -> u64;
type PortField = fn(&PortShared) -> u64;

/// Per-worker counters: name, help, accessor.
const WORKER_COUNTERS: [(&str, &str, WorkerField); 6] = [
    (
        "podfwd_worker_batches_total",
        "Non-empty RX batches processed, per worker.",
        |w| w.batches.load(Relaxed),
    ),
    (
        "podfwd_worker_busy_polls_total",
        "Worker loop iterations that moved at least one frame.",
        |w| w.busy_polls.load(Relaxed),
    ),
    (
        "podfwd_worker_idle_polls_total",
        "Worker loop iterations that found no frame.",
        |w| w.idle_polls.load(Relaxed),
    ),
    (
        "podfwd_worker_sleeps_total",
        "Times the worker went to sleep in epoll (idle).",
        |w| w.sleeps.load(Relaxed),
    ),
    (
        "podfwd_worker_tx_wakeups_total",
        "TX wakeup syscalls (sendto) the worker made.",
        |w| w.tx_wakeups.load(Relaxed),
    ),
    (
        "podfwd_worker_rx_wakeups_total",
        "Fill-ring wakeup syscalls (recvfrom) the worker made.",
        |w| w.rx_wakeups.load(Relaxed),
    ),
];

/// Kernel socket statistics (XDP_STATISTICS), per interface, summed over workers.
const XSK_COUNTERS: [(&str, &str, PortField); 6] = [
    ("podfwd_xsk_rx_dropped_total", "Kernel XDP_STATISTICS rx_dropped: frames the kernel dropped before the RX ring (e.g. too big for a UMEM frame).", |s| s.xdp_rx_dropped.load(Relaxed)),
    ("podfwd_xsk_rx_invalid_descs_total", "Kernel XDP_STATISTICS rx_invalid_descs: invalid fill-ring descriptors.", |s| s.xdp_rx_invalid_descs.load(Relaxed)),
    ("podfwd_xsk_tx_invalid_descs_total", "Kernel XDP_STATISTICS tx_invalid_descs: invalid TX descriptors (the frame is lost).", |s| s.xdp_tx_invalid_descs.load(Relaxed)),
    ("podfwd_xsk_rx_ring_full_total", "Kernel XDP_STATISTICS rx_ring_full: frames dropped because the RX ring was full (worker too slow).", |s| s.xdp_rx_ring_full.load(Relaxed)),
    ("podfwd_xsk_fill_ring_empty_total", "Kernel XDP_STATISTICS rx_fill_ring_empty_descs: frames that found the fill ring empty (UMEM starved).", |s| s.xdp_rx_fill_ring_empty_descs.load(Relaxed)),
    ("podfwd_xsk_tx_ring_empty_total", "Kernel XDP_STATISTICS tx_ring_empty_descs: TX wakeups that found the TX ring empty.", |s| s.xdp_tx_ring_empty_descs.load(Relaxed)),
];

/// Render all metrics.
#[must_use]
#[allow(clippy::too_many_lines)] // one flat list of metric families reads best
pub fn render(v: &StatusView) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let workers = &v.workers;
    let sum = |f: &dyn Fn(&WorkerShared) -> u64| -> u64 { workers.iter().map(|w| f(w)).sum() };
    let port_sum = |p: usize, f: PortField| -> u64 {
        workers.iter().map(|w| w.ports.get(p).map_or(0, f)).sum()
    };
    let now = crate::stats::now_ms();

    // ---- process ----
    header(
        &mut o,
        "podfwd_build_info",
        "gauge",
        "Build and mode information; always 1.",
    );
    let _ = writeln!(
        o,
        "podfwd_build_info{{version=\"{}\",mode=\"{}\",node=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        esc(&v.mode),
        esc(&v.node)
    );
    header(
        &mut o,
        "podfwd_start_time_seconds",
        "gauge",
        "Start time of the podfwd process, seconds since the Unix epoch.",
    );
    let _ = writeln!(o, "podfwd_start_time_seconds {}", secs(v.started_ms));
    header(
        &mut o,
        "podfwd_healthy",
        "gauge",
        "1 when every worker heartbeats (what /healthz says), else 0.",
    );
    let _ = writeln!(o, "podfwd_healthy {}", u8::from(v.healthy().is_ok()));
    header(&mut o, "podfwd_ready", "gauge", "1 when programs are attached, sockets bound and every node's next hop resolved (what /readyz says), else 0.");
    let _ = writeln!(o, "podfwd_ready {}", u8::from(v.ready().is_ok()));

    // ---- interfaces ----
    header(
        &mut o,
        "podfwd_interface_info",
        "gauge",
        "Interfaces podfwd serves, with role and XDP attach mode; always 1.",
    );
    for p in &v.ports {
        let _ = writeln!(
            o,
            "podfwd_interface_info{{interface=\"{}\",role=\"{}\",xdp_mode=\"{}\",mtu=\"{}\"}} 1",
            esc(&p.name),
            p.role,
            esc(&p.xdp_mode),
            p.mtu
        );
    }
    header(&mut o, "podfwd_interface_recoveries_total", "counter", "Times the interface was re-created (new ifindex) and podfwd attached it again by itself (XDP program, AF_XDP sockets).");
    for p in &v.ports {
        let _ = writeln!(
            o,
            "podfwd_interface_recoveries_total{{interface=\"{}\"}} {}",
            esc(&p.name),
            p.recoveries
        );
    }
    header(&mut o, "podfwd_interface_packets_total", "counter", "Frames per interface and direction through podfwd's AF_XDP sockets (rx: taken from the RX ring; tx: placed on the TX ring).");
    for (p, port) in v.ports.iter().enumerate() {
        let rx = port_sum(p, |s| s.rx_packets.load(Relaxed));
        let tx = port_sum(p, |s| s.tx_packets.load(Relaxed));
        let _ = writeln!(
            o,
            "podfwd_interface_packets_total{{interface=\"{}\",direction=\"rx\"}} {rx}",
            esc(&port.name)
        );
        let _ = writeln!(
            o,
            "podfwd_interface_packets_total{{interface=\"{}\",direction=\"tx\"}} {tx}",
            esc(&port.name)
        );
    }
    header(&mut o, "podfwd_interface_bytes_total", "counter", "Bytes (whole Ethernet frames) per interface and direction through podfwd's AF_XDP sockets.");
    for (p, port) in v.ports.iter().enumerate() {
        let rx = port_sum(p, |s| s.rx_bytes.load(Relaxed));
        let tx = port_sum(p, |s| s.tx_bytes.load(Relaxed));
        let _ = writeln!(
            o,
            "podfwd_interface_bytes_total{{interface=\"{}\",direction=\"rx\"}} {rx}",
            esc(&port.name)
        );
        let _ = writeln!(
            o,
            "podfwd_interface_bytes_total{{interface=\"{}\",direction=\"tx\"}} {tx}",
            esc(&port.name)
        );
    }

    // ---- pipeline ----
    header(
        &mut o,
        "podfwd_actions_total",
        "counter",
        "Frames forwarded, by pipeline action.",
    );
    for a in Action::ALL {
        let n = sum(&|w| w.actions.get(a as usize).map_or(0, |c| c.load(Relaxed)));
        let _ = writeln!(o, "podfwd_actions_total{{action=\"{}\"}} {n}", a.label());
    }
    header(
        &mut o,
        "podfwd_drops_total",
        "counter",
        "Frames dropped by podfwd, by reason (pipeline::DropReason).",
    );
    for r in DropReason::ALL {
        let n = sum(&|w| w.drops.get(r as usize).map_or(0, |c| c.load(Relaxed)));
        let _ = writeln!(o, "podfwd_drops_total{{reason=\"{}\"}} {n}", r.label());
    }
    header(&mut o, "podfwd_passed_total", "counter", "Frames that reached an AF_XDP socket but are the kernel's to handle (verdict pass); podfwd cannot re-inject them and recycles them.");
    let _ = writeln!(
        o,
        "podfwd_passed_total {}",
        sum(&|w| w.passed.load(Relaxed))
    );
    header(
        &mut o,
        "podfwd_checksums_completed_total",
        "counter",
        "Partial (offloaded) TCP/UDP checksums from pods completed by podfwd.",
    );
    let _ = writeln!(
        o,
        "podfwd_checksums_completed_total {}",
        sum(&|w| w.csum_completed.load(Relaxed))
    );

    // ---- workers ----
    for (name, help, f) in WORKER_COUNTERS {
        header(&mut o, name, "counter", help);
        for w in workers {
            let _ = writeln!(o, "{name}{{worker=\"{}\"}} {}", w.id, f(w));
        }
    }
    header(
        &mut o,
        "podfwd_worker_heartbeat_age_seconds",
        "gauge",
        "Seconds since the worker last published (at least every 0.1 s while it runs).",
    );
    for w in workers {
        let age = now.saturating_sub(w.heartbeat_ms.load(Relaxed));
        let _ = writeln!(
            o,
            "podfwd_worker_heartbeat_age_seconds{{worker=\"{}\"}} {}",
            w.id,
            secs(age)
        );
    }
    header(
        &mut o,
        "podfwd_worker_route_generation",
        "gauge",
        "Route snapshot generation the worker last used.",
    );
    for w in workers {
        let _ = writeln!(
            o,
            "podfwd_worker_route_generation{{worker=\"{}\"}} {}",
            w.id,
            w.generation.load(Relaxed)
        );
    }
    header(&mut o, "podfwd_umem_frames_in_use", "gauge", "UMEM frames not on the worker's free list (fill/RX/TX/completion rings, in the kernel, in flight).");
    for w in workers {
        let _ = writeln!(
            o,
            "podfwd_umem_frames_in_use{{worker=\"{}\"}} {}",
            w.id,
            w.umem_in_use.load(Relaxed)
        );
    }
    header(
        &mut o,
        "podfwd_umem_frames",
        "gauge",
        "UMEM size in frames, per worker.",
    );
    for w in workers {
        let _ = writeln!(
            o,
            "podfwd_umem_frames{{worker=\"{}\"}} {}",
            w.id,
            w.umem_frames.load(Relaxed)
        );
    }

    // ---- kernel socket statistics ----
    for (name, help, f) in XSK_COUNTERS {
        header(&mut o, name, "counter", help);
        for (p, port) in v.ports.iter().enumerate() {
            let _ = writeln!(
                o,
                "{name}{{interface=\"{}\"}} {}",
                esc(&port.name),
                port_sum(p, f)
            );
        }
    }

    // ---- control plane ----
    header(&mut o, "podfwd_route_generation", "gauge", "Generation of the published route snapshot (grows on every rebuild: reload, neighbour change).");
    let _ = writeln!(o, "podfwd_route_generation {}", v.generation);
    header(
        &mut o,
        "podfwd_route_prefixes",
        "gauge",
        "Prefixes in the PodCIDR table.",
    );
    let _ = writeln!(o, "podfwd_route_prefixes {}", v.prefixes);
    header(
        &mut o,
        "podfwd_route_nodes",
        "gauge",
        "Remote nodes in the route table.",
    );
    let _ = writeln!(o, "podfwd_route_nodes {}", v.nodes.len());
    header(
        &mut o,
        "podfwd_route_endpoints",
        "gauge",
        "Local endpoints (pods) in the route table.",
    );
    let _ = writeln!(o, "podfwd_route_endpoints {}", v.endpoints);
    header(&mut o, "podfwd_neighbours", "gauge", "Neighbour entries podfwd needs, by kind (node: a remote node's next hop; endpoint: a local pod's MAC) and state.");
    let nodes_ok = v.nodes.iter().filter(|n| n.mac.is_some()).count();
    let eps_ok = v.endpoints_resolved.min(v.endpoints);
    let _ = writeln!(
        o,
        "podfwd_neighbours{{kind=\"node\",state=\"resolved\"}} {nodes_ok}"
    );
    let _ = writeln!(
        o,
        "podfwd_neighbours{{kind=\"node\",state=\"missing\"}} {}",
        v.nodes.len() - nodes_ok
    );
    let _ = writeln!(
        o,
        "podfwd_neighbours{{kind=\"endpoint\",state=\"resolved\"}} {eps_ok}"
    );
    let _ = writeln!(
        o,
        "podfwd_neighbours{{kind=\"endpoint\",state=\"missing\"}} {}",
        v.endpoints - eps_ok
    );
    header(
        &mut o,
        "podfwd_reloads_total",
        "counter",
        "Config reloads (SIGHUP or POST /reload) by result.",
    );
    let _ = writeln!(
        o,
        "podfwd_reloads_total{{result=\"success\"}} {}",
        v.reloads_ok
    );
    let _ = writeln!(
        o,
        "podfwd_reloads_total{{result=\"failure\"}} {}",
        v.reloads_failed
    );
    header(
        &mut o,
        "podfwd_xdp_steering_total",
        "counter",
        "Decisions of the XDP steering program, summed over CPUs.",
    );
    for (name, n) in &v.steering {
        let _ = writeln!(
            o,
            "podfwd_xdp_steering_total{{decision=\"{}\"}} {n}",
            esc(name)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::views::{NodeView, PortView};

    fn view() -> StatusView {
        let ports = ["eth0", "lxc0"]
            .iter()
            .enumerate()
            .map(|(i, n)| PortView {
                name: (*n).to_owned(),
                role: if i == 0 { "uplink" } else { "pod" },
                mac: "02:00:00:00:00:01".into(),
                mtu: 1500,
                xdp_mode: "native".into(),
                endpoint: None,
                recoveries: 0,
            })
            .collect();
        let workers: Vec<_> = (0..2)
            .map(|i| Arc::new(WorkerShared::new(i, None, 2)))
            .collect();
        StatusView {
            node: "node-\"a\"".into(),
            mode: "tunnel".into(),
            ports,
            workers,
            nodes: vec![NodeView {
                name: "node-b".into(),
                ip: "198.18.0.2".parse().unwrap(),
                pod_cidr: "10.0.2.0/24".into(),
                mac: None,
            }],
            endpoints: 2,
            endpoints_resolved: 1,
            attached: true,
            steering: vec![("redirected".into(), 7)],
            ..StatusView::default()
        }
    }

    /// name{labels} -> value, for every sample.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn families_follow_the_conventions() {
        let text = render(&view());
        let mut types = BTreeMap::new();
        let mut helps = 0;
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "TYPE twice: {name}"
                );
                assert!(name.starts_with("podfwd_"), "{name}");
                match kind {
                    "counter" => assert!(
                        name.ends_with("_total"),
                        "counter {name} must end in _total"
                    ),
                    "gauge" => assert!(
                        !name.ends_with("_total"),
                        "gauge {name} must not end in _total"
                    ),
                    _ => panic!("unexpected type {kind} of {name}"),
                }
            } else if l.starts_with("# HELP ") {
                helps += 1;
            } else {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(
                    types.contains_key(name),
                    "sample of an undeclared family: {l}"
                );
            }
        }
        assert_eq!(helps, types.len());
    }

    #[test]
    fn sums_workers_and_labels_every_reason() {
        let v = view();
        v.workers[0].actions[Action::Encapsulated as usize].store(3, Relaxed);
        v.workers[1].actions[Action::Encapsulated as usize].store(4, Relaxed);
        v.workers[1].drops[DropReason::NoRoute as usize].store(5, Relaxed);
        v.workers[0].ports[1].rx_bytes.store(100, Relaxed);
        v.workers[1].ports[1].rx_bytes.store(23, Relaxed);
        v.workers[1].ports[0].xdp_rx_ring_full.store(9, Relaxed);
        let s = samples(&render(&v));
        assert_eq!(s["podfwd_actions_total{action=\"encapsulated\"}"], 7.0);
        assert_eq!(s["podfwd_drops_total{reason=\"no_route\"}"], 5.0);
        assert_eq!(
            s["podfwd_interface_bytes_total{interface=\"lxc0\",direction=\"rx\"}"],
            123.0
        );
        assert_eq!(s["podfwd_xsk_rx_ring_full_total{interface=\"eth0\"}"], 9.0);
        for r in DropReason::ALL {
            assert!(
                s.contains_key(&format!("podfwd_drops_total{{reason=\"{}\"}}", r.label())),
                "{r}"
            );
        }
        assert_eq!(s["podfwd_neighbours{kind=\"node\",state=\"missing\"}"], 1.0);
        assert_eq!(
            s["podfwd_neighbours{kind=\"endpoint\",state=\"missing\"}"],
            1.0
        );
        assert_eq!(s["podfwd_ready"], 0.0, "node-b's next hop is missing");
        assert_eq!(s["podfwd_healthy"], 1.0);
        assert_eq!(s["podfwd_xdp_steering_total{decision=\"redirected\"}"], 7.0);
        // Label values are escaped.
        assert!(s
            .keys()
            .any(|k| k.starts_with("podfwd_build_info{") && k.contains(r#"node="node-\"a\"""#)));
    }
}
