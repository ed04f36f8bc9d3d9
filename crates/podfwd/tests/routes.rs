//! PodCIDRs learned from a kernel routing table (`routes.table`), as a BGP daemon
//! installs them: a learned route carries pod traffic and a withdrawn one makes it
//! `no_route`; one route learned and withdrawn (time from the kernel's change to the
//! published snapshot), then 5,000 in one burst and withdrawn again while a TCP flow
//! between two other pods runs (no retransmit, time to apply, snapshots published).
//! bench/routes measures the time from the kernel's change to the worker using it.

mod common;

use std::fs;
use std::io::Write as _;
use std::time::{Duration, Instant};

use common::*;

/// node a's tunnel config, following table 201; without the file's `nodes:` when
/// `learned_only`.
fn config_201(learned_only: bool) -> std::path::PathBuf {
    let mut text = String::new();
    let mut in_nodes = false;
    for l in fs::read_to_string(config("node-a.tunnel.yaml"))
        .unwrap()
        .lines()
    {
        in_nodes = learned_only && (l.starts_with("nodes:") || (in_nodes && l.starts_with("  ")));
        if !in_nodes {
            text += l;
            text.push('\n');
        }
    }
    text += "routes:\n  table: 201\n";
    own_socket("a", &text)
}

/// `text` (node `n`'s config) with a control socket of this bed's prefix (the test beds
/// of other prefixes share /run/podfwd), written to a temporary file.
fn own_socket(n: &str, text: &str) -> std::path::PathBuf {
    let sock = format!("/run/podfwd/{}-node-{n}.sock", pf());
    let text = text.replace(&format!("/run/podfwd/node-{n}.sock"), &sock);
    assert!(text.contains(&sock));
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let i = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("podfwd-routes-{}-{n}-{i}.yaml", std::process::id()));
    fs::write(&p, text).unwrap();
    p
}

/// node b's tunnel config.
fn config_b() -> std::path::PathBuf {
    own_socket(
        "b",
        &fs::read_to_string(config("node-b.tunnel.yaml")).unwrap(),
    )
}

/// The `no_route` drops on `a`.
fn no_route(a: &Podfwd) -> u64 {
    a.status()["drops"]["no_route"].as_u64().unwrap()
}

#[test]
fn a_learned_route_carries_traffic_and_a_withdrawn_one_is_no_route() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let cfg = config_201(true);
    let a = Podfwd::start("a", &cfg);
    let cfg_b = config_b();
    let b = Podfwd::start("b", &cfg_b);
    let nodes = |st: &serde_json::Value| st["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(nodes(&a.status()), 0, "node a knows no node from its file");
    let d0 = no_route(&a);
    assert_eq!(
        ping("a0", "10.0.2.2", 3),
        0,
        "no route to node b's pods yet"
    );
    assert_eq!(
        no_route(&a) - d0,
        3,
        "each ping request counted as no_route"
    );

    ip_batch(&["route add 10.0.2.0/24 via 198.18.0.2 dev eth0 table 201 proto bird".into()]);
    until(&a, 5, |st| nodes(st) == 1 && st["ready"] == true);
    let d1 = no_route(&a);
    assert_eq!(
        ping("a0", "10.0.2.2", 3),
        3,
        "the learned route carries a0 -> b0"
    );
    assert_eq!(no_route(&a), d1);

    ip_batch(&["route del 10.0.2.0/24 via 198.18.0.2 dev eth0 table 201".into()]);
    until(&a, 5, |st| nodes(st) == 0);
    let d2 = no_route(&a);
    assert_eq!(
        ping("a0", "10.0.2.2", 3),
        0,
        "withdrawn: no longer forwarded"
    );
    assert_eq!(no_route(&a) - d2, 3, "withdrawn: no_route");
    let (code, log) = a.stop_with_log();
    assert_eq!(code.code(), Some(0), "{log}");
    assert!(
        log.contains("learned: PodCIDR 10.0.2.0/24 on node 198.18.0.2"),
        "{log}"
    );
    assert_eq!(b.stop().code(), Some(0));
    let _ = fs::remove_file(cfg);
    let _ = fs::remove_file(cfg_b);
}

/// `ip -batch` in node a with `lines`.
fn ip_batch(lines: &[String]) {
    let p = std::env::temp_dir().join(format!("podfwd-routes-{}.batch", std::process::id()));
    let mut f = fs::File::create(&p).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let o = nsx("a", &["ip", "-batch", p.to_str().unwrap()]);
    let _ = fs::remove_file(&p);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Wait (at most `secs`) until `f(status)` holds; the time it took.
fn until(a: &Podfwd, secs: u64, f: impl Fn(&serde_json::Value) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let st = a.status();
        if f(&st) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "not within {secs} s: {st}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The i-th learned route: a /29 from 10.0.32.0 on, owned by a node behind no route of
/// its own (198.18.100.0 and up, `onlink`, so the kernel resolves nothing and no frame
/// goes anywhere).
fn route(op: &str, i: u32) -> String {
    let net = 0x0a00_2000 + i * 8;
    let gw = 0xc612_6401 + (i / 250) * 256 + i % 250;
    format!(
        "route {op} {}/29 via {} dev eth0 onlink table 201 proto bird",
        std::net::Ipv4Addr::from(net),
        std::net::Ipv4Addr::from(gw)
    )
}

#[test]
fn pod_cidrs_follow_the_routing_table() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let cfg = config_201(false);
    let a = Podfwd::start("a", &cfg);
    let cfg_b = config_b();
    let b = Podfwd::start("b", &cfg_b);
    let nodes = |st: &serde_json::Value| st["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(nodes(&a.status()), 1, "node-b from the file");

    // One route learned, then withdrawn.
    ip_batch(&["route add 10.0.9.0/24 via 198.18.0.9 dev eth0 table 201 proto bird".into()]);
    let learned = until(&a, 5, |st| nodes(st) == 2);
    let n = a.status()["nodes"][1].clone();
    assert_eq!(
        (n["ip"].as_str(), n["pod_cidr"].as_str()),
        (Some("198.18.0.9"), Some("10.0.9.0/24"))
    );
    ip_batch(&["route del 10.0.9.0/24 via 198.18.0.9 dev eth0 table 201".into()]);
    let withdrawn = until(&a, 5, |st| nodes(st) == 1);
    // Outside the cluster CIDR: ignored, shown.
    ip_batch(&["route add 192.168.50.0/24 via 198.18.0.9 dev eth0 table 201 proto bird".into()]);
    until(&a, 5, |st| st["learned_ignored"] == 1);

    // 5,000 in one burst while a0 -> b0 runs.
    let flow = Flow::start("a0", "b0", "10.0.2.2", 10);
    std::thread::sleep(Duration::from_secs(2));
    let generation = |st: &serde_json::Value| st["generation"].as_u64().unwrap();
    let g0 = generation(&a.status());
    let start = Instant::now();
    ip_batch(&(0..5000).map(|i| route("add", i)).collect::<Vec<_>>());
    let in_kernel = start.elapsed();
    until(&a, 30, |st| {
        st["learned_routes"] == 5000 && nodes(st) == 5001
    });
    let applied = start.elapsed();
    let st = a.status();
    let snapshots = generation(&st) - g0;
    assert_eq!(nodes(&st), 5001);
    assert_eq!(st["prefixes"], 5003, "2 pods + node b + 5,000 learned");
    std::thread::sleep(Duration::from_secs(1));
    let g1 = generation(&a.status());
    let start = Instant::now();
    ip_batch(&(0..5000).map(|i| route("del", i)).collect::<Vec<_>>());
    until(&a, 30, |st| st["learned_routes"] == 0);
    let removed = start.elapsed();
    let withdraw_snapshots = generation(&a.status()) - g1;
    let (bytes, retransmits) = flow.finish();
    println!(
        "routes: one route learned in {} ms, withdrawn in {} ms; 5,000 in the kernel in {} ms, in podfwd's snapshot {} ms after the burst began ({snapshots} snapshots), all withdrawn {} ms after ({withdraw_snapshots} snapshots); flow {bytes} bytes, {retransmits} retransmits",
        learned.as_millis(),
        withdrawn.as_millis(),
        in_kernel.as_millis(),
        applied.as_millis(),
        removed.as_millis()
    );
    assert!(bytes > 10_000_000, "{bytes} bytes");
    assert_eq!(retransmits, 0, "the burst must not disturb existing flows");
    assert_eq!(ping("a0", "10.0.2.2", 3), 3);
    let (code, log) = a.stop_with_log();
    assert_eq!(code.code(), Some(0), "{log}");
    assert!(log.contains("frame accounting ok"), "{log}");
    assert_eq!(b.stop().code(), Some(0));
    let _ = fs::remove_file(cfg);
    let _ = fs::remove_file(cfg_b);
}
