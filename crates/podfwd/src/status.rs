//! `podfwd status`: the running process's state, for people and for scripts.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use pipeline::{Action, DropReason};
use serde_json::{json, Value};

use crate::control::StatusView;
use crate::stats::now_ms;

/// The JSON document served on /status.
#[must_use]
pub fn to_json(v: &StatusView) -> Value {
    let sum = |f: &dyn Fn(&crate::stats::WorkerShared) -> u64| -> u64 {
        v.workers.iter().map(|w| f(w)).sum()
    };
    let actions: serde_json::Map<String, Value> = Action::ALL
        .iter()
        .map(|a| {
            let n = sum(&|w| w.actions[*a as usize].load(Relaxed));
            (a.label().to_owned(), json!(n))
        })
        .collect();
    let drops: serde_json::Map<String, Value> = DropReason::ALL
        .iter()
        .map(|r| {
            let n = sum(&|w| w.drops[*r as usize].load(Relaxed));
            (r.label().to_owned(), json!(n))
        })
        .collect();
    let now = now_ms();
    let ports: Vec<Value> = v
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let g = |f: &dyn Fn(&crate::stats::PortShared) -> u64| -> u64 {
                v.workers.iter().map(|w| w.ports.get(i).map_or(0, f)).sum()
            };
            json!({
                "name": p.name, "role": p.role, "mac": p.mac, "mtu": p.mtu,
                "xdp_mode": p.xdp_mode, "endpoint": p.endpoint,
                "rx_packets": g(&|s| s.rx_packets.load(Relaxed)),
                "rx_bytes": g(&|s| s.rx_bytes.load(Relaxed)),
                "tx_packets": g(&|s| s.tx_packets.load(Relaxed)),
                "tx_bytes": g(&|s| s.tx_bytes.load(Relaxed)),
                "xsk_rx_dropped": g(&|s| s.xdp_rx_dropped.load(Relaxed)),
            })
        })
        .collect();
    let workers: Vec<Value> = v
        .workers
        .iter()
        .map(|w| {
            json!({
                "id": w.id, "cpu": w.cpu,
                "heartbeat_age_ms": now.saturating_sub(w.heartbeat_ms.load(Relaxed)),
                "batches": w.batches.load(Relaxed),
                "sleeps": w.sleeps.load(Relaxed),
                "tx_wakeups": w.tx_wakeups.load(Relaxed),
                "umem_in_use": w.umem_in_use.load(Relaxed),
                "umem_frames": w.umem_frames.load(Relaxed),
                "generation": w.generation.load(Relaxed),
            })
        })
        .collect();
    json!({
        "node": v.node,
        "mode": v.mode,
        "config": v.config,
        "uptime_s": now.saturating_sub(v.started_ms) / 1000,
        "healthy": v.healthy().is_ok(),
        "ready": v.ready().is_ok(),
        "not_ready_reason": v.ready().err(),
        "generation": v.generation,
        "prefixes": v.prefixes,
        "endpoints": v.endpoints,
        "endpoints_resolved": v.endpoints_resolved,
        "nodes": v.nodes,
        "interfaces": ports,
        "workers": workers,
        "actions": actions,
        "drops": drops,
        "passed": sum(&|w| w.passed.load(Relaxed)),
        "checksums_completed": sum(&|w| w.csum_completed.load(Relaxed)),
        "reloads": {"success": v.reloads_ok, "failure": v.reloads_failed, "last_error": v.last_reload_error},
        "steering": v.steering.iter().map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
    })
}

/// The human summary printed by `podfwd status`.
#[must_use]
pub fn human(j: &Value) -> String {
    let mut o = String::new();
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let _ = writeln!(
        o,
        "podfwd on {} — mode {}, up {} s, {}{}",
        s(&j["node"]),
        s(&j["mode"]),
        j["uptime_s"],
        if j["ready"].as_bool() == Some(true) { "ready" } else { "NOT READY" },
        j["not_ready_reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "routes: generation {}, {} prefixes, {} local endpoints ({} with a known MAC), {} remote nodes",
        j["generation"], j["prefixes"], j["endpoints"], j["endpoints_resolved"],
        j["nodes"].as_array().map_or(0, Vec::len)
    );
    for n in j["nodes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  node {:<12} {:<15} {:<18} next hop {}",
            s(&n["name"]),
            s(&n["ip"]),
            s(&n["pod_cidr"]),
            n["mac"].as_str().unwrap_or("MISSING")
        );
    }
    let _ = writeln!(o, "interfaces:");
    for p in j["interfaces"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  {:<8} {:<6} xdp {:<7} rx {:>10} pkts {:>14} B   tx {:>10} pkts {:>14} B{}",
            s(&p["name"]),
            s(&p["role"]),
            s(&p["xdp_mode"]),
            p["rx_packets"], p["rx_bytes"], p["tx_packets"], p["tx_bytes"],
            p["endpoint"].as_str().map(|e| format!("  pod {e}")).unwrap_or_default()
        );
    }
    let _ = writeln!(o, "workers:");
    for w in j["workers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  worker {} cpu {} heartbeat {} ms ago, {} batches, {} sleeps, {} tx wakeups, UMEM {}/{} frames in use",
            w["id"], w["cpu"], w["heartbeat_age_ms"], w["batches"], w["sleeps"], w["tx_wakeups"],
            w["umem_in_use"], w["umem_frames"]
        );
    }
    let _ = write!(o, "actions:");
    for (k, v) in j["actions"].as_object().into_iter().flatten() {
        let _ = write!(o, " {k}={v}");
    }
    let _ = writeln!(o, " passed={}", j["passed"]);
    let mut drops: Vec<(&String, u64)> = j["drops"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    drops.sort_by(|a, b| b.1.cmp(&a.1));
    if drops.is_empty() {
        let _ = writeln!(o, "drops: none");
    } else {
        let _ = write!(o, "top drops:");
        for (k, n) in drops.iter().take(5) {
            let _ = write!(o, " {k}={n}");
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "reloads: {} ok, {} refused",
        j["reloads"]["success"], j["reloads"]["failure"]
    );
    o
}
