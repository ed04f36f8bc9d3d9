//! `podfwd status`: the running process's state, for people and for scripts.

use std::fmt::Write as _;

use pipeline::{Action, DropReason};
use serde_json::{json, Value};

use crate::stats::now_ms;
use crate::views::{StatusView, WorkerTotals};

/// The JSON document served on /status. The counters come from one
/// [`StatusView::totals`] reading, the same /metrics uses.
#[must_use]
pub fn to_json(v: &StatusView) -> Value {
    let t = v.totals();
    let actions: serde_json::Map<String, Value> = Action::ALL
        .iter()
        .map(|a| (a.label().to_owned(), json!(t.action(*a))))
        .collect();
    let drops: serde_json::Map<String, Value> = DropReason::ALL
        .iter()
        .map(|r| (r.label().to_owned(), json!(t.dropped(*r))))
        .collect();
    let ports: Vec<Value> = v
        .ports
        .iter()
        .zip(&t.ports)
        .filter(|(p, _)| !p.vacant)
        .map(|(p, c)| {
            json!({
                "name": p.name, "role": p.role, "mac": p.mac, "mtu": p.mtu,
                "xdp_mode": p.xdp_mode, "endpoint": p.endpoint, "recoveries": p.recoveries,
                "rx_packets": c.rx_packets,
                "rx_bytes": c.rx_bytes,
                "tx_packets": c.tx_packets,
                "tx_bytes": c.tx_bytes,
                "xsk_rx_dropped": c.xsk_rx_dropped,
                "xsk_rx_ring_full": c.xsk_rx_ring_full,
                "xsk_fill_ring_empty": c.xsk_fill_ring_empty,
            })
        })
        .collect();
    let workers: Vec<Value> = t.workers.iter().map(worker_json).collect();
    let now = now_ms();
    json!({
        "node": v.node,
        "mode": v.mode,
        "config": v.config,
        "version": env!("CARGO_PKG_VERSION"),
        "time_ms": now,
        "uptime_s": now.saturating_sub(v.started_ms) / 1000,
        "healthy": v.healthy().is_ok(),
        "not_healthy_reason": v.healthy().err(),
        "ready": v.ready().is_ok(),
        "not_ready_reason": v.ready().err(),
        "generation": v.generation,
        "prefixes": v.prefixes,
        "endpoints": v.endpoints,
        "endpoints_resolved": v.endpoints_resolved,
        "nodes": v.nodes,
        "learned_routes": v.learned_routes,
        "rx_packets_removed_ports": t.closed_rx_packets,
        "learned_ignored": v.learned_ignored,
        "interfaces": ports,
        "workers": workers,
        "actions": actions,
        "drops": drops,
        "passed": t.passed,
        "checksums_completed": t.csum_completed,
        "checksums_offloaded": t.csum_offloaded,
        "reloads": {"success": v.reloads_ok, "failure": v.reloads_failed, "last_error": v.last_reload_error},
        "steering": v.steering.iter().map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
    })
}

fn worker_json(w: &WorkerTotals) -> Value {
    json!({
        "id": w.id, "cpu": w.cpu,
        "heartbeat_age_ms": w.heartbeat_age_ms,
        "batches": w.batches,
        "busy_polls": w.busy_polls,
        "idle_polls": w.idle_polls,
        "sleeps": w.sleeps,
        "tx_wakeups": w.tx_wakeups,
        "rx_wakeups": w.rx_wakeups,
        "umem_in_use": w.umem_in_use,
        "umem_frames": w.umem_frames,
        "generation": w.generation,
        "tx_checksum": if w.tx_csum_offload { "offload" } else { "software" },
        "multi_buffer": w.multi_buffer,
    })
}

/// Rates between two /status documents of the same process (`before` taken first):
/// per interface packets and bits per second each way, and frames forwarded, dropped and
/// passed per second. The interval is the server's own clock (`time_ms`), so HTTP latency
/// does not skew it. `None` when the documents do not allow a rate (no time passed, or
/// the process restarted in between: counters went backwards).
#[must_use]
pub fn rates(before: &Value, after: &Value) -> Option<Value> {
    let t0 = before["time_ms"].as_u64()?;
    let t1 = after["time_ms"].as_u64()?;
    if t1 <= t0 || after["uptime_s"].as_u64() < before["uptime_s"].as_u64() {
        return None;
    }
    let secs = (t1 - t0) as f64 / 1000.0;
    // Per-second rate of one counter; None when it went backwards (restart).
    let per_s = |a: &Value, b: &Value| -> Option<f64> {
        let (a, b) = (a.as_u64().unwrap_or(0), b.as_u64().unwrap_or(0));
        b.checked_sub(a).map(|d| d as f64 / secs)
    };
    let sum = |v: &Value| -> u64 {
        v.as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    };
    let mut ifaces = Vec::new();
    let empty = Vec::new();
    let a_ports = before["interfaces"].as_array().unwrap_or(&empty);
    for p in after["interfaces"].as_array().unwrap_or(&empty) {
        let Some(q) = a_ports.iter().find(|q| q["name"] == p["name"]) else {
            continue;
        };
        ifaces.push(json!({
            "name": p["name"],
            "rx_pps": per_s(&q["rx_packets"], &p["rx_packets"])?,
            "rx_bps": per_s(&q["rx_bytes"], &p["rx_bytes"])? * 8.0,
            "tx_pps": per_s(&q["tx_packets"], &p["tx_packets"])?,
            "tx_bps": per_s(&q["tx_bytes"], &p["tx_bytes"])? * 8.0,
        }));
    }
    Some(json!({
        "interval_s": secs,
        "interfaces": ifaces,
        "forwarded_pps": per_s(&json!(sum(&before["actions"])), &json!(sum(&after["actions"])))?,
        "dropped_pps": per_s(&json!(sum(&before["drops"])), &json!(sum(&after["drops"])))?,
        "passed_pps": per_s(&before["passed"], &after["passed"])?,
    }))
}

/// `1234567.0` -> `1.23 M` (SI prefixes, for rates).
fn si(x: f64) -> String {
    let (v, p) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    if p.is_empty() {
        format!("{v:.0} ")
    } else {
        format!("{v:.2} {p}")
    }
}

/// A JSON string, or `-`.
fn s(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_owned()
}

/// The human summary printed by `podfwd status` (rates when the document has `rates`).
#[must_use]
pub fn human(j: &Value) -> String {
    let mut o = String::new();
    head(&mut o, j);
    routes(&mut o, j);
    interfaces(&mut o, j);
    if j["rates"].is_object() {
        rates_lines(&mut o, &j["rates"]);
    }
    workers(&mut o, j);
    pipeline(&mut o, j);
    kernel_and_reloads(&mut o, j);
    o
}

/// Version, node, mode, uptime, health and readiness.
fn head(o: &mut String, j: &Value) {
    let _ = writeln!(
        o,
        "podfwd {} on {} — mode {}, up {} s, {}, {}{}",
        s(&j["version"]),
        s(&j["node"]),
        s(&j["mode"]),
        j["uptime_s"],
        if j["healthy"].as_bool() == Some(true) {
            "healthy"
        } else {
            "NOT HEALTHY"
        },
        if j["ready"].as_bool() == Some(true) {
            "ready"
        } else {
            "NOT READY"
        },
        j["not_healthy_reason"]
            .as_str()
            .or(j["not_ready_reason"].as_str())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
}

/// The route table and each remote node.
fn routes(o: &mut String, j: &Value) {
    let _ = writeln!(
        o,
        "routes: generation {}, {} prefixes, {} local endpoints ({} with a known MAC), {} remote nodes",
        j["generation"], j["prefixes"], j["endpoints"], j["endpoints_resolved"],
        j["nodes"].as_array().map_or(0, Vec::len)
    );
    for n in j["nodes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  node {:<12} {:<15} {:<18} {:<6} {}",
            s(&n["name"]),
            s(&n["ip"]),
            s(&n["pod_cidr"]),
            s(&n["path"]),
            next_hops(n)
        );
    }
}

/// A node's next hops: `next hop MAC` for one (`MISSING` while unresolved), `next hops
/// MAC via GATEWAY (weight W, S/64 slots), ...` for a multipath route.
fn next_hops(n: &Value) -> String {
    let hops = n["next_hops"].as_array().map_or(&[][..], Vec::as_slice);
    let mac = |h: &Value| h["mac"].as_str().unwrap_or("MISSING").to_owned();
    match hops {
        [] => format!("next hop {}", n["mac"].as_str().unwrap_or("MISSING")),
        [h] if h["via"] == n["ip"] => format!("next hop {}", mac(h)),
        [h] => format!("next hop {} via {}", mac(h), s(&h["via"])),
        _ => {
            let each: Vec<String> = hops
                .iter()
                .map(|h| {
                    format!(
                        "{} via {} (weight {}, {}/64 slots)",
                        mac(h),
                        s(&h["via"]),
                        h["weight"],
                        h["slots"]
                    )
                })
                .collect();
            format!("next hops {}", each.join(", "))
        }
    }
}

/// Each interface with its totals.
fn interfaces(o: &mut String, j: &Value) {
    let _ = writeln!(o, "interfaces:");
    for p in j["interfaces"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  {:<8} {:<6} xdp {:<7} rx {:>10} pkts {:>14} B   tx {:>10} pkts {:>14} B{}",
            s(&p["name"]),
            s(&p["role"]),
            s(&p["xdp_mode"]),
            // Value's Display ignores width: format the numbers as strings.
            p["rx_packets"].to_string(),
            p["rx_bytes"].to_string(),
            p["tx_packets"].to_string(),
            p["tx_bytes"].to_string(),
            p["endpoint"]
                .as_str()
                .map(|e| format!("  pod {e}"))
                .unwrap_or_default()
        );
    }
}

/// The `rates` object of [`rates`].
fn rates_lines(o: &mut String, rates: &Value) {
    let _ = writeln!(
        o,
        "rates over {:.1} s:",
        rates["interval_s"].as_f64().unwrap_or(0.0)
    );
    for r in rates["interfaces"].as_array().into_iter().flatten() {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            o,
            "  {:<8} rx {:>9}pps {:>9}bit/s   tx {:>9}pps {:>9}bit/s",
            s(&r["name"]),
            si(f("rx_pps")),
            si(f("rx_bps")),
            si(f("tx_pps")),
            si(f("tx_bps"))
        );
    }
    let f = |k: &str| rates[k].as_f64().unwrap_or(0.0);
    let _ = writeln!(
        o,
        "  forwarded {}pps, dropped {}pps, passed {}pps",
        si(f("forwarded_pps")),
        si(f("dropped_pps")),
        si(f("passed_pps"))
    );
}

/// One line per worker.
fn workers(o: &mut String, j: &Value) {
    let _ = writeln!(o, "workers:");
    for w in j["workers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  worker {} cpu {} heartbeat {} ms ago, {} batches, {} busy / {} idle polls, {} sleeps, {} tx + {} rx wakeups, UMEM {}/{} frames in use",
            w["id"],
            w["cpu"].as_u64().map_or_else(|| "-".to_owned(), |c| c.to_string()),
            w["heartbeat_age_ms"], w["batches"], w["busy_polls"], w["idle_polls"],
            w["sleeps"], w["tx_wakeups"], w["rx_wakeups"], w["umem_in_use"], w["umem_frames"]
        );
    }
}

/// Actions, and the top five drop reasons.
fn pipeline(o: &mut String, j: &Value) {
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
    drops.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if drops.is_empty() {
        let _ = writeln!(o, "drops: none");
    } else {
        let _ = write!(o, "top drops:");
        for (k, n) in drops.iter().take(5) {
            let _ = write!(o, " {k}={n}");
        }
        let _ = writeln!(o);
    }
}

/// Kernel socket drops over every interface, and reloads.
fn kernel_and_reloads(o: &mut String, j: &Value) {
    let kernel: u64 = j["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            ["xsk_rx_dropped", "xsk_rx_ring_full"]
                .iter()
                .map(|k| p[*k].as_u64().unwrap_or(0))
                .sum::<u64>()
        })
        .sum();
    let _ = writeln!(
        o,
        "kernel socket drops (rx_dropped + rx_ring_full): {kernel}"
    );
    let _ = writeln!(
        o,
        "reloads: {} ok, {} refused{}",
        j["reloads"]["success"],
        j["reloads"]["failure"],
        j["reloads"]["last_error"]
            .as_str()
            .map(|e| format!(" (last: {e})"))
            .unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(t: u64, rx: u64, bytes: u64, enc: u64) -> Value {
        json!({
            "time_ms": t, "uptime_s": t / 1000, "node": "node-a", "mode": "tunnel",
            "healthy": true, "ready": true, "version": "0.1.0",
            "interfaces": [{"name": "lxc0", "rx_packets": rx, "rx_bytes": bytes, "tx_packets": 0, "tx_bytes": 0}],
            "actions": {"encapsulated": enc}, "drops": {"no_route": 2}, "passed": 1,
            "reloads": {"success": 0, "failure": 0},
        })
    }

    #[test]
    fn rates_use_the_server_clock() {
        let r = rates(
            &doc(10_000, 100, 10_000, 50),
            &doc(12_000, 300, 30_000, 250),
        )
        .unwrap();
        assert_eq!(r["interval_s"], 2.0);
        assert_eq!(r["interfaces"][0]["rx_pps"], 100.0);
        assert_eq!(r["interfaces"][0]["rx_bps"], 80_000.0);
        assert_eq!(r["forwarded_pps"], 100.0);
        assert_eq!(r["dropped_pps"], 0.0);
        // A restart in between (counters went backwards) or no time: no rates.
        assert!(rates(
            &doc(10_000, 300, 30_000, 250),
            &doc(12_000, 100, 10_000, 50)
        )
        .is_none());
        assert!(rates(&doc(10_000, 1, 1, 1), &doc(10_000, 1, 1, 1)).is_none());
    }

    #[test]
    fn next_hops_one_gateway_or_several() {
        let on_link = json!({"ip": "198.18.0.2", "mac": "02:00:00:00:00:02",
            "next_hops": [{"via": "198.18.0.2", "weight": 1, "mac": "02:00:00:00:00:02", "slots": 64}]});
        assert_eq!(next_hops(&on_link), "next hop 02:00:00:00:00:02");
        let missing = json!({"ip": "198.18.0.2", "mac": null,
            "next_hops": [{"via": "198.18.11.1", "weight": 1, "mac": null, "slots": 0}]});
        assert_eq!(next_hops(&missing), "next hop MISSING via 198.18.11.1");
        let multi = json!({"ip": "198.18.12.2", "mac": "02:00:c6:12:0b:01", "next_hops": [
            {"via": "198.18.11.1", "weight": 1, "mac": "02:00:c6:12:0b:01", "slots": 64},
            {"via": "198.18.11.254", "weight": 2, "mac": null, "slots": 0}]});
        assert_eq!(
            next_hops(&multi),
            "next hops 02:00:c6:12:0b:01 via 198.18.11.1 (weight 1, 64/64 slots), \
             MISSING via 198.18.11.254 (weight 2, 0/64 slots)"
        );
        assert_eq!(
            next_hops(&json!({"ip": "198.18.0.2", "next_hops": []})),
            "next hop MISSING"
        );
    }

    #[test]
    fn human_shows_each_nodes_path_and_next_hop() {
        let mut d = doc(12_000, 300, 30_000, 250);
        d["nodes"] = json!([
            {"name": "node-b", "ip": "198.18.12.2", "pod_cidr": "10.0.12.0/24",
             "mac": "02:00:c6:12:0b:01", "path": "vxlan", "next_hops": [
                {"via": "198.18.11.1", "weight": 1, "mac": "02:00:c6:12:0b:01", "slots": 64}]},
            {"name": "node-d", "ip": "198.18.11.3", "pod_cidr": "10.0.14.0/24",
             "mac": null, "path": "native", "next_hops": [
                {"via": "198.18.11.3", "weight": 1, "mac": null, "slots": 0}]},
        ]);
        let h = human(&d);
        assert!(
            h.contains("  node node-b       198.18.12.2     10.0.12.0/24       vxlan  next hop 02:00:c6:12:0b:01 via 198.18.11.1\n"),
            "{h}"
        );
        assert!(
            h.contains(
                "  node node-d       198.18.11.3     10.0.14.0/24       native next hop MISSING\n"
            ),
            "{h}"
        );
    }

    #[test]
    fn human_shows_rates_and_top_drops() {
        let mut d = doc(12_000, 300, 30_000, 250);
        d["rates"] = rates(&doc(10_000, 100, 10_000, 50), &d).unwrap();
        let h = human(&d);
        assert!(h.contains("mode tunnel"), "{h}");
        assert!(h.contains("rates over 2.0 s:"), "{h}");
        assert!(h.contains("lxc0     rx      100 pps   80.00 kbit/s"), "{h}");
        assert!(h.contains("rx        300 pkts          30000 B"), "{h}");
        assert!(h.contains("top drops: no_route=2"), "{h}");
        assert_eq!(si(1_234_567.0), "1.23 M");
    }
}
