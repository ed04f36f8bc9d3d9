//! Prometheus text exposition (format 0.0.4), rendered at scrape time.
//!
//! Rendered through the `prometheus` crate (tikv/rust-prometheus, plain model, no
//! protobuf): a custom [`Collector`] over one [`StatusView`] builds the metric families
//! and `TextEncoder` writes them (escaping, number formatting, HELP/TYPE lines). We chose
//! it over `prometheus-client` because that crate only writes OpenMetrics, whose counter
//! families drop the `_total` suffix from HELP/TYPE and end in `# EOF`: what Prometheus,
//! promtool, `config/podfwd.rules.yml` and the tests read today would change. The
//! `prometheus` crate writes text 0.0.4 exactly as before.
//!
//! Nothing on the hot path touches a shared counter or a library metric: workers publish
//! plain per-worker totals (`stats`), and the collector reads and sums them once per
//! scrape through [`StatusView::totals`]. Every per-worker value only grows, so the sums
//! only grow too: no counter ever goes backwards between two scrapes. Every metric is
//! documented in docs/metrics.md; the unit tests below check the naming rules (counters
//! end in `_total`, one HELP and TYPE per family, samples only of declared families).

use std::collections::HashMap;
use std::sync::LazyLock;

use pipeline::{Action, DropReason};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

use crate::views::{PortTotals, StatusView, Totals, WorkerTotals};

/// Content type of what [`render`] returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What one scrape reads: the view, and its workers' counters summed once.
struct Scrape<'a> {
    v: &'a StatusView,
    t: Totals,
}

/// One sample: label values (in the family's label order) and its value.
type Sample = (Vec<String>, f64);

/// One metric family: what docs/metrics.md lists, and where its samples come from.
struct Family {
    name: &'static str,
    kind: MetricType,
    help: &'static str,
    labels: &'static [&'static str],
    samples: fn(&Scrape<'_>) -> Vec<Sample>,
}

const COUNTER: MetricType = MetricType::COUNTER;
const GAUGE: MetricType = MetricType::GAUGE;

fn n(x: u64) -> f64 {
    x as f64
}

fn c(x: usize) -> f64 {
    x as f64
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn one(x: f64) -> Vec<Sample> {
    vec![(Vec::new(), x)]
}

fn labelled<const N: usize>(rows: [(&str, f64); N]) -> Vec<Sample> {
    rows.into_iter()
        .map(|(l, x)| (vec![l.to_owned()], x))
        .collect()
}

impl Scrape<'_> {
    /// One sample per worker, labelled `worker`.
    fn per_worker(&self, f: fn(&WorkerTotals) -> f64) -> Vec<Sample> {
        self.t
            .workers
            .iter()
            .map(|w| (vec![w.id.to_string()], f(w)))
            .collect()
    }

    /// One sample per interface, labelled `interface`, summed over workers.
    fn per_port(&self, f: fn(&PortTotals) -> u64) -> Vec<Sample> {
        self.v
            .ports
            .iter()
            .zip(&self.t.ports)
            .filter(|(p, _)| !p.vacant)
            .map(|(p, t)| (vec![p.name.clone()], n(f(t))))
            .collect()
    }

    /// Two samples per interface (`direction` rx and tx).
    fn per_port_dir(&self, rx: fn(&PortTotals) -> u64, tx: fn(&PortTotals) -> u64) -> Vec<Sample> {
        let mut out = Vec::with_capacity(2 * self.t.ports.len());
        for (p, t) in self
            .v
            .ports
            .iter()
            .zip(&self.t.ports)
            .filter(|(p, _)| !p.vacant)
        {
            out.push((vec![p.name.clone(), "rx".into()], n(rx(t))));
            out.push((vec![p.name.clone(), "tx".into()], n(tx(t))));
        }
        out
    }

    /// `podfwd_neighbours`: kind × state.
    fn neighbours(&self) -> Vec<Sample> {
        let v = self.v;
        let nodes_ok = v.nodes.iter().filter(|n| n.mac.is_some()).count();
        let hops = v.nodes.iter().map(|n| n.next_hops.len()).sum::<usize>();
        let hops_ok = v
            .nodes
            .iter()
            .flat_map(|n| &n.next_hops)
            .filter(|h| h.mac.is_some())
            .count();
        let eps_ok = v.endpoints_resolved.min(v.endpoints);
        [
            ("node", "resolved", nodes_ok),
            ("node", "missing", v.nodes.len() - nodes_ok),
            ("next_hop", "resolved", hops_ok),
            ("next_hop", "missing", hops - hops_ok),
            ("endpoint", "resolved", eps_ok),
            ("endpoint", "missing", v.endpoints - eps_ok),
        ]
        .into_iter()
        .map(|(k, s, x)| (vec![k.to_owned(), s.to_owned()], c(x)))
        .collect()
    }
}

const PROCESS: &[Family] = &[
    Family {
        name: "podfwd_build_info",
        kind: GAUGE,
        help: "Build and mode information; always 1.",
        labels: &["version", "mode", "node"],
        samples: |s| {
            let labels = vec![env!("CARGO_PKG_VERSION").to_owned(), s.v.mode.clone(), s.v.node.clone()];
            vec![(labels, 1.0)]
        },
    },
    Family {
        name: "podfwd_start_time_seconds",
        kind: GAUGE,
        help: "Start time of the podfwd process, seconds since the Unix epoch.",
        labels: &[],
        samples: |s| one(secs(s.v.started_ms)),
    },
    Family {
        name: "podfwd_healthy",
        kind: GAUGE,
        help: "1 when every worker heartbeats (what /healthz says), else 0.",
        labels: &[],
        samples: |s| one(f64::from(u8::from(s.v.healthy().is_ok()))),
    },
    Family {
        name: "podfwd_ready",
        kind: GAUGE,
        help: "1 when programs are attached, sockets bound and every node's next hop resolved (what /readyz says), else 0.",
        labels: &[],
        samples: |s| one(f64::from(u8::from(s.v.ready().is_ok()))),
    },
];

const INTERFACES: &[Family] = &[
    Family {
        name: "podfwd_interface_info",
        kind: GAUGE,
        help: "Interfaces podfwd serves, with role and XDP attach mode; always 1.",
        labels: &["interface", "role", "xdp_mode", "mtu"],
        samples: |s| {
            let row = |p: &crate::views::PortView| {
                let labels = vec![p.name.clone(), p.role.to_owned(), p.xdp_mode.clone(), p.mtu.to_string()];
                (labels, 1.0)
            };
            s.v.ports.iter().filter(|p| !p.vacant).map(row).collect()
        },
    },
    Family {
        name: "podfwd_interface_recoveries_total",
        kind: COUNTER,
        help: "Times the interface was re-created (new ifindex) and podfwd attached it again by itself (XDP program, AF_XDP sockets).",
        labels: &["interface"],
        samples: |s| {
            s.v.ports
                .iter()
                .filter(|p| !p.vacant)
                .map(|p| (vec![p.name.clone()], n(p.recoveries)))
                .collect()
        },
    },
    Family {
        name: "podfwd_interface_packets_total",
        kind: COUNTER,
        help: "Frames per interface and direction through podfwd's AF_XDP sockets (rx: taken from the RX ring; tx: placed on the TX ring).",
        labels: &["interface", "direction"],
        samples: |s| s.per_port_dir(|p| p.rx_packets, |p| p.tx_packets),
    },
    Family {
        name: "podfwd_interface_bytes_total",
        kind: COUNTER,
        help: "Bytes (whole Ethernet frames) per interface and direction through podfwd's AF_XDP sockets.",
        labels: &["interface", "direction"],
        samples: |s| s.per_port_dir(|p| p.rx_bytes, |p| p.tx_bytes),
    },
];

const PIPELINE: &[Family] = &[
    Family {
        name: "podfwd_actions_total",
        kind: COUNTER,
        help: "Frames forwarded, by pipeline action.",
        labels: &["action"],
        samples: |s| Action::ALL.iter().map(|a| (vec![a.label().to_owned()], n(s.t.action(*a)))).collect(),
    },
    Family {
        name: "podfwd_drops_total",
        kind: COUNTER,
        help: "Frames dropped by podfwd, by reason (pipeline::DropReason).",
        labels: &["reason"],
        samples: |s| DropReason::ALL.iter().map(|r| (vec![r.label().to_owned()], n(s.t.dropped(*r)))).collect(),
    },
    Family {
        name: "podfwd_passed_total",
        kind: COUNTER,
        help: "Frames that reached an AF_XDP socket but are the kernel's to handle (verdict pass); podfwd cannot re-inject them and recycles them.",
        labels: &[],
        samples: |s| one(n(s.t.passed)),
    },
    Family {
        name: "podfwd_checksums_completed_total",
        kind: COUNTER,
        help: "Partial (offloaded) TCP/UDP checksums completed by podfwd in software.",
        labels: &[],
        samples: |s| one(n(s.t.csum_completed)),
    },
    Family {
        name: "podfwd_checksums_offloaded_total",
        kind: COUNTER,
        help: "Partial TCP/UDP checksums podfwd left partial and asked the kernel to complete on transmit (AF_XDP TX metadata checksum offload).",
        labels: &[],
        samples: |s| one(n(s.t.csum_offloaded)),
    },
];

/// A per-worker family (label `worker`).
const fn worker(
    name: &'static str,
    kind: MetricType,
    help: &'static str,
    samples: fn(&Scrape<'_>) -> Vec<Sample>,
) -> Family {
    Family {
        name,
        kind,
        help,
        labels: &["worker"],
        samples,
    }
}

const WORKERS: &[Family] = &[
    worker("podfwd_worker_batches_total", COUNTER, "Non-empty RX batches processed, per worker.", |s| s.per_worker(|w| n(w.batches))),
    worker("podfwd_worker_busy_polls_total", COUNTER, "Worker loop iterations that moved at least one frame.", |s| s.per_worker(|w| n(w.busy_polls))),
    worker("podfwd_worker_idle_polls_total", COUNTER, "Worker loop iterations that found no frame.", |s| s.per_worker(|w| n(w.idle_polls))),
    worker("podfwd_worker_sleeps_total", COUNTER, "Times the worker went to sleep in epoll (idle).", |s| s.per_worker(|w| n(w.sleeps))),
    worker("podfwd_worker_tx_wakeups_total", COUNTER, "TX wakeup syscalls (sendto) the worker made.", |s| s.per_worker(|w| n(w.tx_wakeups))),
    worker("podfwd_worker_rx_wakeups_total", COUNTER, "Fill-ring wakeup syscalls (recvfrom) the worker made.", |s| s.per_worker(|w| n(w.rx_wakeups))),
    worker("podfwd_worker_heartbeat_age_seconds", GAUGE, "Seconds since the worker last published (at least every 0.1 s while it runs).", |s| s.per_worker(|w| secs(w.heartbeat_age_ms))),
    worker("podfwd_worker_multi_buffer", GAUGE, "1 if the worker's AF_XDP sockets take frames larger than one UMEM frame as descriptor chains (multi-buffer), 0 if the kernel drops such frames.", |s| s.per_worker(|w| n(u64::from(w.multi_buffer)))),
    worker("podfwd_worker_tx_checksum_offload", GAUGE, "1 if the worker leaves partial checksums to the kernel's checksum offload (TX metadata), 0 if it completes them in software.", |s| s.per_worker(|w| n(u64::from(w.tx_csum_offload)))),
    worker("podfwd_worker_route_generation", GAUGE, "Route snapshot generation the worker last used.", |s| s.per_worker(|w| n(w.generation))),
    worker("podfwd_umem_frames_in_use", GAUGE, "UMEM frames not on the worker's free list (fill/RX/TX/completion rings, in the kernel, in flight).", |s| s.per_worker(|w| n(w.umem_in_use))),
    worker("podfwd_umem_frames", GAUGE, "UMEM size in frames, per worker.", |s| s.per_worker(|w| n(w.umem_frames))),
];

/// A kernel socket statistics family (XDP_STATISTICS), per interface, summed over workers.
const fn xsk(
    name: &'static str,
    help: &'static str,
    samples: fn(&Scrape<'_>) -> Vec<Sample>,
) -> Family {
    Family {
        name,
        kind: COUNTER,
        help,
        labels: &["interface"],
        samples,
    }
}

const XSK: &[Family] = &[
    xsk("podfwd_xsk_rx_dropped_total", "Kernel XDP_STATISTICS rx_dropped: frames the kernel dropped before the RX ring: in copy mode no frame on the fill ring (counted in podfwd_xsk_fill_ring_empty_total too), or too big for a UMEM frame.", |s| s.per_port(|p| p.xsk_rx_dropped)),
    xsk("podfwd_xsk_rx_invalid_descs_total", "Kernel XDP_STATISTICS rx_invalid_descs: invalid fill-ring descriptors.", |s| s.per_port(|p| p.xsk_rx_invalid_descs)),
    xsk("podfwd_xsk_tx_invalid_descs_total", "Kernel XDP_STATISTICS tx_invalid_descs: invalid TX descriptors (the frame is lost).", |s| s.per_port(|p| p.xsk_tx_invalid_descs)),
    xsk("podfwd_xsk_rx_ring_full_total", "Kernel XDP_STATISTICS rx_ring_full: frames dropped because the RX ring was full (worker too slow).", |s| s.per_port(|p| p.xsk_rx_ring_full)),
    xsk("podfwd_xsk_fill_ring_empty_total", "Kernel XDP_STATISTICS rx_fill_ring_empty_descs: frames that found the fill ring empty (UMEM starved).", |s| s.per_port(|p| p.xsk_fill_ring_empty)),
    xsk("podfwd_xsk_tx_ring_empty_total", "Kernel XDP_STATISTICS tx_ring_empty_descs: TX wakeups that found the TX ring empty.", |s| s.per_port(|p| p.xsk_tx_ring_empty)),
];

const CONTROL: &[Family] = &[
    Family {
        name: "podfwd_route_generation",
        kind: GAUGE,
        help: "Generation of the published route snapshot (grows on every rebuild: reload, neighbour change).",
        labels: &[],
        samples: |s| one(n(s.v.generation)),
    },
    Family {
        name: "podfwd_route_prefixes",
        kind: GAUGE,
        help: "Prefixes in the PodCIDR table.",
        labels: &[],
        samples: |s| one(c(s.v.prefixes)),
    },
    Family {
        name: "podfwd_route_nodes",
        kind: GAUGE,
        help: "Remote nodes in the route table.",
        labels: &[],
        samples: |s| one(c(s.v.nodes.len())),
    },
    Family {
        name: "podfwd_route_learned",
        kind: GAUGE,
        help: "Routes of routes.table: used as remote nodes, or ignored (outside the cluster CIDR, or over this node's PodCIDR).",
        labels: &["state"],
        samples: |s| {
            vec![
                (vec!["used".into()], c(s.v.learned_routes)),
                (vec!["ignored".into()], c(s.v.learned_ignored)),
            ]
        },
    },
    Family {
        name: "podfwd_route_endpoints",
        kind: GAUGE,
        help: "Local endpoints (pods) in the route table.",
        labels: &[],
        samples: |s| one(c(s.v.endpoints)),
    },
    Family {
        name: "podfwd_neighbours",
        kind: GAUGE,
        help: "Neighbour entries podfwd needs, by kind (node: a remote node with a resolved next hop or none; next_hop: each next hop of each remote node, several for a multipath route; endpoint: a local pod's MAC) and state.",
        labels: &["kind", "state"],
        samples: |s| s.neighbours(),
    },
    Family {
        name: "podfwd_reloads_total",
        kind: COUNTER,
        help: "Config reloads (SIGHUP or POST /reload) by result.",
        labels: &["result"],
        samples: |s| labelled([("success", n(s.v.reloads_ok)), ("failure", n(s.v.reloads_failed))]),
    },
    Family {
        name: "podfwd_xdp_steering_total",
        kind: COUNTER,
        help: "Decisions of the XDP steering program, summed over CPUs.",
        labels: &["decision"],
        samples: |s| s.v.steering.iter().map(|(d, x)| (vec![d.clone()], n(*x))).collect(),
    },
];

/// Every family, in the order of docs/metrics.md.
const SECTIONS: [&[Family]; 6] = [PROCESS, INTERFACES, PIPELINE, WORKERS, XSK, CONTROL];

fn families() -> impl Iterator<Item = &'static Family> {
    SECTIONS.iter().flat_map(|s| s.iter())
}

/// The families' descriptors, built (and validated by `Desc::new`) once.
static DESCS: LazyLock<Vec<Desc>> = LazyLock::new(|| {
    families()
        .map(|f| {
            let labels = f.labels.iter().map(|l| (*l).to_owned()).collect();
            Desc::new(f.name.into(), f.help.into(), labels, HashMap::new())
                .unwrap_or_else(|e| panic!("metric family {}: {e}", f.name))
        })
        .collect()
});

impl Family {
    fn collect(&self, s: &Scrape<'_>) -> MetricFamily {
        let metrics = (self.samples)(s)
            .into_iter()
            .map(|(values, x)| {
                debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
                let labels = self.labels.iter().zip(values).map(|(name, value)| {
                    let mut l = LabelPair::default();
                    l.set_name((*name).to_owned());
                    l.set_value(value);
                    l
                });
                let mut m = proto::Metric::from_label(labels.collect());
                if self.kind == COUNTER {
                    let mut v = proto::Counter::default();
                    v.set_value(x);
                    m.set_counter(v);
                } else {
                    let mut v = proto::Gauge::default();
                    v.set_value(x);
                    m.set_gauge(v);
                }
                m
            })
            .collect();
        let mut mf = MetricFamily::default();
        mf.set_name(self.name.to_owned());
        mf.set_help(self.help.to_owned());
        mf.set_field_type(self.kind);
        mf.set_metric(metrics);
        mf
    }
}

/// A collector over one [`StatusView`]: each `collect` reads the workers' counters once
/// (through [`StatusView::totals`]) and builds every family from that one reading.
#[derive(Debug)]
pub struct ViewCollector<'a> {
    view: &'a StatusView,
}

impl<'a> ViewCollector<'a> {
    /// A collector reading `view`.
    #[must_use]
    pub fn new(view: &'a StatusView) -> ViewCollector<'a> {
        ViewCollector { view }
    }
}

impl Collector for ViewCollector<'_> {
    fn desc(&self) -> Vec<&Desc> {
        DESCS.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = Scrape {
            v: self.view,
            t: self.view.totals(),
        };
        families().map(|f| f.collect(&s)).collect()
    }
}

/// Render all metrics in the text format ([`CONTENT_TYPE`]).
///
/// A family with no sample (no interfaces yet, no steering counters read) is left out:
/// the text format has no use for a HELP/TYPE pair without samples, and the encoder
/// refuses one.
#[must_use]
pub fn render(v: &StatusView) -> String {
    let mut families = ViewCollector::new(v).collect();
    families.retain(|f| !f.get_metric().is_empty());
    let mut out = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
        // Only an empty family or name fails, and neither is passed here.
        log::error!("metrics encoding failed: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Arc;

    use super::*;
    use crate::stats::WorkerShared;
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
                vacant: false,
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
                next_hops: vec![crate::views::NextHopView {
                    via: "198.18.0.2".parse().unwrap(),
                    weight: 1,
                    mac: None,
                    slots: 0,
                }],
                path: "vxlan",
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
        // Every family of the table is there (the view has ports, workers, steering).
        assert_eq!(types.len(), families().count());
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
            s["podfwd_neighbours{kind=\"next_hop\",state=\"missing\"}"],
            1.0
        );
        assert_eq!(
            s["podfwd_neighbours{kind=\"next_hop\",state=\"resolved\"}"],
            0.0
        );
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

    /// Two fake workers, counters set by hand: the exact lines a scrape shows.
    #[test]
    fn two_workers_render_exact_lines() {
        let mut v = view();
        v.started_ms = 1_700_000_000_250;
        v.generation = 12;
        v.reloads_ok = 2;
        v.reloads_failed = 1;
        let (a, b) = (&v.workers[0], &v.workers[1]);
        a.actions[Action::DeliveredLocal as usize].store(10, Relaxed);
        b.actions[Action::DeliveredLocal as usize].store(5, Relaxed);
        a.passed.store(1, Relaxed);
        b.passed.store(2, Relaxed);
        a.ports[0].tx_packets.store(40, Relaxed);
        b.ports[0].tx_packets.store(2, Relaxed);
        a.ports[1].xdp_rx_fill_ring_empty_descs.store(6, Relaxed);
        a.batches.store(3, Relaxed);
        b.batches.store(4, Relaxed);
        b.umem_frames.store(4096, Relaxed);
        b.generation.store(11, Relaxed);
        a.heartbeat_ms.store(0, Relaxed);
        let text = render(&v);
        let version = env!("CARGO_PKG_VERSION");
        for line in [
            "# HELP podfwd_passed_total Frames that reached an AF_XDP socket but are the kernel's to handle (verdict pass); podfwd cannot re-inject them and recycles them.",
            "# TYPE podfwd_passed_total counter",
            "podfwd_passed_total 3",
            &format!(r#"podfwd_build_info{{version="{version}",mode="tunnel",node="node-\"a\""}} 1"#),
            "podfwd_start_time_seconds 1700000000.25",
            "podfwd_healthy 0",
            "# TYPE podfwd_interface_info gauge",
            r#"podfwd_interface_info{interface="lxc0",role="pod",xdp_mode="native",mtu="1500"} 1"#,
            r#"podfwd_interface_packets_total{interface="eth0",direction="tx"} 42"#,
            r#"podfwd_interface_packets_total{interface="eth0",direction="rx"} 0"#,
            r#"podfwd_actions_total{action="delivered_local"} 15"#,
            r#"podfwd_xsk_fill_ring_empty_total{interface="lxc0"} 6"#,
            "# TYPE podfwd_worker_batches_total counter",
            r#"podfwd_worker_batches_total{worker="0"} 3"#,
            r#"podfwd_worker_batches_total{worker="1"} 4"#,
            r#"podfwd_umem_frames{worker="1"} 4096"#,
            r#"podfwd_worker_route_generation{worker="1"} 11"#,
            "podfwd_route_generation 12",
            "podfwd_route_nodes 1",
            r#"podfwd_neighbours{kind="endpoint",state="resolved"} 1"#,
            r#"podfwd_reloads_total{result="success"} 2"#,
            r#"podfwd_reloads_total{result="failure"} 1"#,
            r#"podfwd_xdp_steering_total{decision="redirected"} 7"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
        // Worker 0 never heartbeated since the epoch: a huge age, not a negative one.
        let s = samples(&text);
        assert!(s[r#"podfwd_worker_heartbeat_age_seconds{worker="0"}"#] > 1e9);
        assert!(s[r#"podfwd_worker_heartbeat_age_seconds{worker="1"}"#] < 2.0);
    }

    #[test]
    fn descriptors_match_what_is_collected() {
        let v = view();
        let c = ViewCollector::new(&v);
        let described: Vec<&str> = c.desc().iter().map(|d| d.fq_name.as_str()).collect();
        let collected: Vec<String> = c.collect().iter().map(|f| f.name().to_owned()).collect();
        assert_eq!(described, collected);
        // A registry accepts the descriptors: valid names, no family twice.
        let r = prometheus::Registry::new();
        let leaked: &'static StatusView = Box::leak(Box::new(view()));
        r.register(Box::new(ViewCollector::new(leaked))).unwrap();
        assert_eq!(r.gather().len(), families().count());
    }

    #[test]
    fn empty_families_are_left_out() {
        let text = render(&StatusView::default());
        assert!(!text.contains("podfwd_interface_info"), "{text}");
        assert!(!text.contains("podfwd_xdp_steering_total"), "{text}");
        assert!(text.contains("podfwd_healthy 1\n"), "{text}");
    }

    /// `promtool check metrics` finds nothing to say about a scrape (when promtool is
    /// installed: scripts/test installs it).
    #[test]
    fn promtool_accepts_a_scrape() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("promtool not installed: skipped");
            return;
        };
        let text = render(&view());
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && said.trim().is_empty(), "{said}");
    }
}
