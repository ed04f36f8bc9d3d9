//! Prometheus text exposition (format 0.0.4), rendered at scrape time.
//!
//! Worker counters are summed here; nothing on the hot path touches a shared counter.
//! Every metric is documented in docs/metrics.md.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use pipeline::{Action, DropReason};

use crate::control::StatusView;

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Render all metrics.
#[must_use]
#[allow(clippy::too_many_lines)] // one flat list of metric families reads best
pub fn render(v: &StatusView) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let workers = &v.workers;
    let sum = |f: &dyn Fn(&crate::stats::WorkerShared) -> u64| -> u64 {
        workers.iter().map(|w| f(w)).sum()
    };

    header(&mut o, "podfwd_build_info", "gauge", "Build and mode information; always 1.");
    let _ = writeln!(
        o,
        "podfwd_build_info{{version=\"{}\",mode=\"{}\",node=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        v.mode,
        esc(&v.node)
    );

    header(&mut o, "podfwd_interface_packets_total", "counter", "Frames per interface and direction through podfwd's AF_XDP sockets.");
    for (p, port) in v.ports.iter().enumerate() {
        let rx = sum(&|w| w.ports.get(p).map_or(0, |s| s.rx_packets.load(Relaxed)));
        let tx = sum(&|w| w.ports.get(p).map_or(0, |s| s.tx_packets.load(Relaxed)));
        let _ = writeln!(o, "podfwd_interface_packets_total{{interface=\"{}\",direction=\"rx\"}} {rx}", esc(&port.name));
        let _ = writeln!(o, "podfwd_interface_packets_total{{interface=\"{}\",direction=\"tx\"}} {tx}", esc(&port.name));
    }
    header(&mut o, "podfwd_interface_bytes_total", "counter", "Bytes per interface and direction through podfwd's AF_XDP sockets.");
    for (p, port) in v.ports.iter().enumerate() {
        let rx = sum(&|w| w.ports.get(p).map_or(0, |s| s.rx_bytes.load(Relaxed)));
        let tx = sum(&|w| w.ports.get(p).map_or(0, |s| s.tx_bytes.load(Relaxed)));
        let _ = writeln!(o, "podfwd_interface_bytes_total{{interface=\"{}\",direction=\"rx\"}} {rx}", esc(&port.name));
        let _ = writeln!(o, "podfwd_interface_bytes_total{{interface=\"{}\",direction=\"tx\"}} {tx}", esc(&port.name));
    }

    header(&mut o, "podfwd_actions_total", "counter", "Frames forwarded, by pipeline action.");
    for a in Action::ALL {
        let n = sum(&|w| w.actions.get(a as usize).map_or(0, |c| c.load(Relaxed)));
        let _ = writeln!(o, "podfwd_actions_total{{action=\"{}\"}} {n}", a.label());
    }
    header(&mut o, "podfwd_drops_total", "counter", "Frames dropped, by reason.");
    for r in DropReason::ALL {
        let n = sum(&|w| w.drops.get(r as usize).map_or(0, |c| c.load(Relaxed)));
        let _ = writeln!(o, "podfwd_drops_total{{reason=\"{}\"}} {n}", r.label());
    }
    header(&mut o, "podfwd_passed_total", "counter", "Frames that reached podfwd but are the kernel's to handle; podfwd cannot re-inject them and recycles them.");
    let _ = writeln!(o, "podfwd_passed_total {}", sum(&|w| w.passed.load(Relaxed)));
    header(&mut o, "podfwd_checksums_completed_total", "counter", "Partial (offloaded) TCP/UDP checksums from pods completed by podfwd.");
    let _ = writeln!(o, "podfwd_checksums_completed_total {}", sum(&|w| w.csum_completed.load(Relaxed)));

    let per_worker: [(&str, &str, fn(&crate::stats::WorkerShared) -> u64); 6] = [
        ("podfwd_worker_batches_total", "RX batches processed.", |w| w.batches.load(Relaxed)),
        ("podfwd_worker_busy_polls_total", "Loop iterations that moved frames.", |w| w.busy_polls.load(Relaxed)),
        ("podfwd_worker_idle_polls_total", "Loop iterations that found no frames.", |w| w.idle_polls.load(Relaxed)),
        ("podfwd_worker_sleeps_total", "Times the worker slept in epoll.", |w| w.sleeps.load(Relaxed)),
        ("podfwd_worker_tx_wakeups_total", "TX wakeup syscalls (sendto).", |w| w.tx_wakeups.load(Relaxed)),
        ("podfwd_worker_rx_wakeups_total", "Fill-ring wakeup syscalls.", |w| w.rx_wakeups.load(Relaxed)),
    ];
    for (name, help, f) in per_worker {
        header(&mut o, name, "counter", help);
        for w in workers {
            let _ = writeln!(o, "{name}{{worker=\"{}\"}} {}", w.id, f(w));
        }
    }
    header(&mut o, "podfwd_worker_heartbeat_age_seconds", "gauge", "Seconds since the worker last ran its loop (a worker sleeps at most 0.1 s).");
    let now = crate::stats::now_ms();
    for w in workers {
        let age = now.saturating_sub(w.heartbeat_ms.load(Relaxed));
        #[allow(clippy::cast_precision_loss)]
        let secs = age as f64 / 1000.0;
        let _ = writeln!(o, "podfwd_worker_heartbeat_age_seconds{{worker=\"{}\"}} {secs}", w.id);
    }
    header(&mut o, "podfwd_umem_frames_in_use", "gauge", "UMEM frames not on the worker's free list.");
    for w in workers {
        let _ = writeln!(o, "podfwd_umem_frames_in_use{{worker=\"{}\"}} {}", w.id, w.umem_in_use.load(Relaxed));
    }
    header(&mut o, "podfwd_umem_frames", "gauge", "UMEM size in frames.");
    for w in workers {
        let _ = writeln!(o, "podfwd_umem_frames{{worker=\"{}\"}} {}", w.id, w.umem_frames.load(Relaxed));
    }

    let xdp: [(&str, &str, fn(&crate::stats::PortShared) -> u64); 6] = [
        ("podfwd_xsk_rx_dropped_total", "Kernel: frames dropped before reaching the RX ring (XDP_STATISTICS rx_dropped).", |s| s.xdp_rx_dropped.load(Relaxed)),
        ("podfwd_xsk_rx_invalid_descs_total", "Kernel: invalid RX descriptors.", |s| s.xdp_rx_invalid_descs.load(Relaxed)),
        ("podfwd_xsk_tx_invalid_descs_total", "Kernel: invalid TX descriptors.", |s| s.xdp_tx_invalid_descs.load(Relaxed)),
        ("podfwd_xsk_rx_ring_full_total", "Kernel: frames dropped because the RX ring was full.", |s| s.xdp_rx_ring_full.load(Relaxed)),
        ("podfwd_xsk_fill_ring_empty_total", "Kernel: times the fill ring was empty when a frame arrived.", |s| s.xdp_rx_fill_ring_empty_descs.load(Relaxed)),
        ("podfwd_xsk_tx_ring_empty_total", "Kernel: times the TX ring was empty on a wakeup.", |s| s.xdp_tx_ring_empty_descs.load(Relaxed)),
    ];
    for (name, help, f) in xdp {
        header(&mut o, name, "counter", help);
        for (p, port) in v.ports.iter().enumerate() {
            let n = sum(&|w| w.ports.get(p).map_or(0, f));
            let _ = writeln!(o, "{name}{{interface=\"{}\"}} {n}", esc(&port.name));
        }
    }

    header(&mut o, "podfwd_route_generation", "gauge", "Generation of the published route snapshot.");
    let _ = writeln!(o, "podfwd_route_generation {}", v.generation);
    header(&mut o, "podfwd_route_prefixes", "gauge", "Prefixes in the PodCIDR table.");
    let _ = writeln!(o, "podfwd_route_prefixes {}", v.prefixes);
    header(&mut o, "podfwd_route_nodes", "gauge", "Remote nodes in the route table.");
    let _ = writeln!(o, "podfwd_route_nodes {}", v.nodes.len());
    header(&mut o, "podfwd_route_endpoints", "gauge", "Local endpoints (pods) in the route table.");
    let _ = writeln!(o, "podfwd_route_endpoints {}", v.endpoints);
    header(&mut o, "podfwd_neighbours", "gauge", "Next hops of remote nodes by state.");
    let resolved = v.nodes.iter().filter(|n| n.mac.is_some()).count();
    let _ = writeln!(o, "podfwd_neighbours{{state=\"resolved\"}} {resolved}");
    let _ = writeln!(o, "podfwd_neighbours{{state=\"missing\"}} {}", v.nodes.len() - resolved);
    header(&mut o, "podfwd_reloads_total", "counter", "Config reloads by result.");
    let _ = writeln!(o, "podfwd_reloads_total{{result=\"success\"}} {}", v.reloads_ok);
    let _ = writeln!(o, "podfwd_reloads_total{{result=\"failure\"}} {}", v.reloads_failed);
    header(&mut o, "podfwd_xdp_steering_total", "counter", "Decisions of the XDP steering program, summed over CPUs.");
    for (name, n) in &v.steering {
        let _ = writeln!(o, "podfwd_xdp_steering_total{{decision=\"{}\"}} {n}", esc(name));
    }
    o
}
