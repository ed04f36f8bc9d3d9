//! The routed bed: nodes on three subnets behind a router namespace, PodCIDRs from BGP
//! (BIRD 2), built by `scripts/topology-routed` under the prefix `pfo` (or
//! `PODFWD_TEST_PF`) and torn down on drop.
//!
//! What it shows: the kernel-only reference needs the router to know every PodCIDR
//! (static routes, or BIRD with the router as route reflector); tunnel mode needs only
//! the node IPs routed, and its frames leave each node toward the router's MAC; native
//! mode works across the router once the router routes the PodCIDRs (from BIRD).

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Default prefix of this suite's bed: never the `pf`/`pft` of the two-node bed.
const PF: &str = "pfo";

/// A node of the bed: the third octet of its underlay subnet (198.18.N.0/24), its host
/// number there, the third octet of its PodCIDR (10.0.P.0/24), and the router's
/// interface toward its subnet. Node d shares node a's subnet (through the switch `s`).
fn node(n: &str) -> (u8, u8, u8, &'static str) {
    match n {
        "a" => (11, 2, 11, "ra"),
        "b" => (12, 2, 12, "rb"),
        "c" => (13, 2, 13, "rc"),
        "d" => (11, 3, 14, "ra"),
        _ => panic!("no node {n} in the routed bed"),
    }
}

fn node_ip(n: &str) -> String {
    let (net, host, _, _) = node(n);
    format!("198.18.{net}.{host}")
}

fn pod_ip(n: &str, i: u8) -> String {
    format!("10.0.{}.{}", node(n).2, i + 2)
}

fn pod_cidr(n: &str) -> String {
    format!("10.0.{}.0/24", node(n).2)
}

/// The router's interface toward node `n`'s subnet.
fn link(n: &str) -> &'static str {
    node(n).3
}

/// Run `scripts/topology-routed ARGS` under this suite's prefix; panics on failure.
fn routed(args: &[&str]) -> Output {
    let out = run(Command::new(root().join("scripts/topology-routed"))
        .args(args)
        .env("PF", pf()));
    assert!(
        out.status.success(),
        "topology-routed {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The routed bed; torn down on drop (every process in it, bird and podfwd included).
struct RoutedBed;

impl RoutedBed {
    fn up(nodes: &str, pod_mtu: u16) -> RoutedBed {
        routed(&["up", "--nodes", nodes, "--pod-mtu", &pod_mtu.to_string()]);
        RoutedBed
    }
}

impl Drop for RoutedBed {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/topology-routed"))
            .arg("down")
            .env("PF", pf())
            .status();
    }
}

/// Take the lock and set this suite's prefix (before anything names a namespace).
fn setup() -> std::sync::MutexGuard<'static, ()> {
    set_default_pf(PF);
    lock()
}

/// A running bird on a node or the router; stopped on drop (also on panic).
struct Bird {
    who: String,
}

impl Bird {
    fn start(who: &str) -> Bird {
        routed(&["bird", "start", who]);
        Bird {
            who: who.to_owned(),
        }
    }

    fn pid(&self) -> String {
        let f = format!("/run/podfwd-bed/{}/bird-{}.pid", pf(), self.who);
        std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .trim()
            .to_owned()
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig} bird on {}", self.who);
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        // SIGCONT first: a bird frozen by a test would not act on SIGTERM.
        if let Ok(pid) =
            std::fs::read_to_string(format!("/run/podfwd-bed/{}/bird-{}.pid", pf(), self.who))
        {
            let _ = Command::new("kill").args(["-CONT", pid.trim()]).status();
        }
        let _ = Command::new(root().join("scripts/topology-routed"))
            .args(["bird", "stop", &self.who])
            .env("PF", pf())
            .status();
    }
}

/// A file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// podfwd's config for `me` in the routed bed, the other nodes in `peers`; its own
/// control socket, so it never meets the two-node bed's podfwds.
fn node_config(me: &str, peers: &[&str], mode: &str) -> TempFile {
    node_config_with(me, peers, mode, None)
}

/// [`node_config`], following kernel table `table` (`routes.table`) if given.
fn node_config_with(me: &str, peers: &[&str], mode: &str, table: Option<u32>) -> TempFile {
    let mut y = format!(
        "node:\n  name: node-{me}\n  ip: {}\n  uplink: eth0\n  pod_cidr: {}\n\
         mode: {mode}\ncluster_cidr: 10.0.0.0/16\ngateway: 169.254.1.1\n\
         vxlan:\n  port: 8472\n  vni: 1\nendpoints:\n",
        node_ip(me),
        pod_cidr(me)
    );
    for i in 0..2u8 {
        y += &format!("  - ip: {}\n    interface: lxc{i}\n", pod_ip(me, i));
    }
    y += if peers.is_empty() {
        "nodes: []\n"
    } else {
        "nodes:\n"
    };
    for p in peers {
        y += &format!(
            "  - name: node-{p}\n    ip: {}\n    pod_cidr: {}\n",
            node_ip(p),
            pod_cidr(p)
        );
    }
    y += &format!(
        "workers:\n  count: 1\numem:\n  frames: 16384\n  frame_size: 4096\n\
         metrics:\n  listen: 127.0.0.1:9475\ncontrol:\n  socket: /run/podfwd/{}-node-{me}.sock\n",
        pf()
    );
    if let Some(t) = table {
        y += &format!("routes:\n  table: {t}\n");
    }
    let path = std::env::temp_dir().join(format!(
        "podfwd-{}-node-{me}.{mode}-{}.yaml",
        pf(),
        std::process::id()
    ));
    std::fs::write(&path, y).unwrap();
    TempFile(path)
}

/// `ip route show [table T]` in a namespace.
fn routes(n: &str, table: Option<&str>) -> String {
    let mut args = vec!["ip", "route", "show"];
    if let Some(t) = table {
        args.extend(["table", t]);
    }
    stdout(&nsx(n, &args))
}

/// The route for `prefix` in a route listing, if any.
fn route_for(listing: &str, prefix: &str) -> Option<String> {
    listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(prefix))
        .map(str::to_owned)
}

/// Wait until `cond` holds (polling every 100 ms); the time it took. Panics after `limit`.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(100));
    }
}

/// A node's (or the router's) MAC on `dev`.
fn mac(n: &str, dev: &str) -> String {
    let o = stdout(&nsx(n, &["ip", "-br", "link", "show", "dev", dev]));
    o.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no MAC for {dev} in {n}: {o}"))
        .to_owned()
}

/// tshark on the router's interfaces toward `nodes` (ra, rb, ...): one line per frame,
/// `interface|eth.src|eth.dst|ip.src|ip.dst|udp.dstport|icmp.type` (outer header first,
/// comma-separated, for VXLAN). Returns once tshark captures.
fn capture_router(nodes: &[&str], filter: &str, count: u32) -> Child {
    tshark_on_router(nodes, filter, &limits(count), &FIELDS)
}

/// `-c N -a duration:15`: stop after `count` frames or 15 s.
fn limits(count: u32) -> [String; 4] {
    [
        "-c".to_owned(),
        count.to_string(),
        "-a".into(),
        "duration:15".into(),
    ]
}

/// What [`capture_router`] and [`capture_on`] print per frame.
const FIELDS: [&str; 7] = [
    "frame.interface_name",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "udp.dstport",
    "icmp.type",
];

/// [`capture_router`] on interfaces `ifaces` of namespace `n` (e.g. the switch's port
/// `sd` toward node d).
fn capture_on(n: &str, ifaces: &[&str], filter: &str, count: u32) -> Child {
    tshark_on(n, ifaces, filter, &limits(count), &FIELDS)
}

/// tshark on the router's interfaces toward `nodes` (see [`tshark_on`]).
fn tshark_on_router(nodes: &[&str], filter: &str, limits: &[String], fields: &[&str]) -> Child {
    let mut links: Vec<&str> = nodes.iter().map(|n| link(n)).collect();
    links.dedup();
    tshark_on("r", &links, filter, limits, fields)
}

fn captured(mut c: Child) -> Vec<Vec<String>> {
    let mut s = String::new();
    let _ = c.stdout.take().unwrap().read_to_string(&mut s);
    let _ = c.wait();
    s.lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// The outer (first) value of a tshark field that repeats for encapsulated headers.
fn outer(f: &str) -> &str {
    f.split(',').next().unwrap_or("")
}

/// Every captured frame is a hop between a node and the router: the node sends to the
/// router's MAC on that link, the router sends to the node's MAC. Returns the
/// interfaces on which a node was seen sending.
fn check_hops(lines: &[Vec<String>], nodes: &[&str]) -> Vec<String> {
    let mut sending = Vec::new();
    for f in lines {
        let (iface, src, dst) = (f[0].as_str(), outer(&f[1]), outer(&f[2]));
        let n = nodes
            .iter()
            .find(|n| iface == link(n))
            .unwrap_or_else(|| panic!("frame on an unexpected interface: {f:?}"));
        let (router_mac, node_mac) = (mac("r", iface), mac(n, "eth0"));
        if src == node_mac {
            assert_eq!(
                dst, router_mac,
                "node {n} must send to the router's MAC on {iface}: {f:?}"
            );
            if !sending.contains(&f[0]) {
                sending.push(f[0].clone());
            }
        } else {
            assert_eq!(
                (src, dst),
                (router_mac.as_str(), node_mac.as_str()),
                "{f:?}"
            );
        }
    }
    sending.sort();
    sending
}

fn u(j: &serde_json::Value) -> u64 {
    j.as_u64().unwrap_or(0)
}

fn s(j: &serde_json::Value) -> String {
    j.as_str().unwrap_or("").to_owned()
}

/// The kernel-only reference across the router: static routes on the nodes (remote
/// PodCIDRs via the router) and on the router (each PodCIDR to its node); bare pod IPs
/// on the wire. Without the routes, nothing gets through.
#[test]
fn kernel_reference_needs_routes_on_the_router() {
    require_root!();
    let _g = setup();
    let _bed = RoutedBed::up("a,b", 1500);
    assert_eq!(
        ping("a0", &pod_ip("b", 0), 2),
        0,
        "no PodCIDR routes yet: a0 -> b0 must fail"
    );

    routed(&["kernel", "native"]);
    let cap = capture_router(&["a", "b"], "icmp", 8);
    assert_eq!(ping("a0", &pod_ip("b", 0), 2), 2, "a0 -> b0 via the router");
    let lines = captured(cap);
    for l in &lines {
        println!("router capture (kernel native): {}", l.join("|"));
    }
    assert_eq!(
        lines.len(),
        8,
        "2 requests + 2 replies on ra and rb: {lines:?}"
    );
    for f in &lines {
        let (s, d) = (f[3].as_str(), f[4].as_str());
        assert!(
            (s, d) == ("10.0.11.2", "10.0.12.2") || (s, d) == ("10.0.12.2", "10.0.11.2"),
            "bare pod IPs on the wire: {f:?}"
        );
        assert_eq!(f[5], "", "no UDP (no tunnel): {f:?}");
    }
    assert_eq!(check_hops(&lines, &["a", "b"]), ["ra", "rb"]);
    assert_eq!(ping("b1", &pod_ip("a", 1), 2), 2, "b1 -> a1 via the router");

    routed(&["kernel", "off"]);
    assert_eq!(ping("a0", &pod_ip("b", 0), 2), 0, "routes removed again");
}

/// BIRD: the router is the iBGP route reflector; every node announces its PodCIDR and
/// installs the others' into table 201; the router installs all of them into its main
/// table, so the nodes need one route for the whole cluster CIDR and no per-node route.
#[test]
fn bird_learns_withdraws_and_relearns_pod_cidrs() {
    require_root!();
    let _g = setup();
    let _bed = RoutedBed::up("a,b,c", 1500);
    // The nodes send the cluster CIDR to the router; the router knows no PodCIDR yet.
    routed(&["kernel", "cluster"]);
    assert_eq!(
        ping("a0", &pod_ip("b", 0), 1),
        0,
        "the router knows no PodCIDR: a0 -> b0 must fail"
    );

    // The reference's experiment: pings fail until BIRD has converged.
    let start = Instant::now();
    let r = Bird::start("router");
    let a = Bird::start("a");
    let b = Bird::start("b");
    let (mut t_a, mut t_b, mut t_r, mut t_ping) = (None, None, None, None);
    let mut failed = 0;
    while t_ping.is_none() || t_a.is_none() || t_b.is_none() || t_r.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "BIRD did not converge within 15 s: a table 201:\n{}b table 201:\n{}router:\n{}",
            routes("a", Some("201")),
            routes("b", Some("201")),
            routes("r", None)
        );
        if t_a.is_none() && route_for(&routes("a", Some("201")), "10.0.12.0/24").is_some() {
            t_a = Some(start.elapsed());
        }
        if t_b.is_none() && route_for(&routes("b", Some("201")), "10.0.11.0/24").is_some() {
            t_b = Some(start.elapsed());
        }
        let rt = routes("r", None);
        if t_r.is_none()
            && route_for(&rt, "10.0.11.0/24").is_some()
            && route_for(&rt, "10.0.12.0/24").is_some()
        {
            t_r = Some(start.elapsed());
        }
        if t_ping.is_none() {
            if ping("a0", &pod_ip("b", 0), 1) == 1 {
                t_ping = Some(start.elapsed());
            } else {
                failed += 1;
            }
        } else {
            sleep(Duration::from_millis(100));
        }
    }
    println!(
        "BIRD convergence from start: node a table 201 {:.2} s, node b table 201 {:.2} s, \
         router main table {:.2} s, first a0 -> b0 reply {:.2} s ({failed} pings failed before)",
        t_a.unwrap().as_secs_f64(),
        t_b.unwrap().as_secs_f64(),
        t_r.unwrap().as_secs_f64(),
        t_ping.unwrap().as_secs_f64()
    );
    assert!(failed >= 1, "the first ping must fail before BGP converges");

    // What BIRD installed.
    let a201 = route_for(&routes("a", Some("201")), "10.0.12.0/24").unwrap();
    println!("node a table 201: {a201}");
    for w in ["via 198.18.12.2", "dev eth0", "proto bird", "onlink"] {
        assert!(a201.contains(w), "node a table 201: {a201}");
    }
    let b201 = route_for(&routes("b", Some("201")), "10.0.11.0/24").unwrap();
    assert!(
        b201.contains("via 198.18.11.2") && b201.contains("onlink") && b201.contains("proto bird"),
        "node b table 201: {b201}"
    );
    let rt = routes("r", None);
    println!("router main table:\n{rt}");
    for (p, via) in [
        ("10.0.11.0/24", "via 198.18.11.2 dev ra proto bird"),
        ("10.0.12.0/24", "via 198.18.12.2 dev rb proto bird"),
    ] {
        let l = route_for(&rt, p).unwrap();
        assert!(l.contains(via), "router: {l}");
    }
    assert_eq!(
        routes("r", None)
            .lines()
            .filter(|l| l.contains("static"))
            .count(),
        0,
        "no static route on the router"
    );
    // Pod traffic both ways through the router, on BIRD's routes alone.
    assert_eq!(ping("a0", &pod_ip("b", 0), 3), 3, "a0 -> b0");
    assert_eq!(ping("b1", &pod_ip("a", 1), 3), 3, "b1 -> a1");

    // Node b hangs (bird frozen, its TCP session still open): the router's hold timer
    // (9 s; keepalives every 3 s) expires and 10.0.12.0/24 is withdrawn everywhere.
    b.signal("-STOP");
    let t = wait_for(
        "10.0.12.0/24 withdrawn from node a's table 201 after node b hung",
        Duration::from_secs(11),
        || route_for(&routes("a", Some("201")), "10.0.12.0/24").is_none(),
    );
    println!(
        "node b's bird frozen: withdrawn from node a after {:.2} s (hold time 9 s)",
        t.as_secs_f64()
    );
    assert!(
        t <= Duration::from_millis(9500),
        "hold time 9 s: took {t:?}"
    );
    assert!(route_for(&routes("r", None), "10.0.12.0/24").is_none());
    b.signal("-CONT");
    let t = wait_for(
        "10.0.12.0/24 back in node a's table 201 after node b's bird resumed",
        Duration::from_secs(15),
        || route_for(&routes("a", Some("201")), "10.0.12.0/24").is_some(),
    );
    println!(
        "node b's bird resumed: relearned after {:.2} s",
        t.as_secs_f64()
    );

    // bird stopped on node b (a clean shutdown: BGP Cease): withdrawn at once.
    let stop = Instant::now();
    drop(b);
    wait_for(
        "10.0.12.0/24 withdrawn from node a's table 201 after bird stopped on node b",
        Duration::from_secs(9),
        || route_for(&routes("a", Some("201")), "10.0.12.0/24").is_none(),
    );
    println!(
        "bird stopped on node b: withdrawn from node a after {:.2} s",
        stop.elapsed().as_secs_f64()
    );
    assert!(route_for(&routes("r", None), "10.0.12.0/24").is_none());
    assert_eq!(
        ping("a0", &pod_ip("b", 0), 1),
        0,
        "the router forgot 10.0.12.0/24: a0 -> b0 fails"
    );
    let b = Bird::start("b");
    let t = wait_for(
        "10.0.12.0/24 back in node a's table 201 after bird restarted on node b",
        Duration::from_secs(15),
        || route_for(&routes("a", Some("201")), "10.0.12.0/24").is_some(),
    );
    println!(
        "bird restarted on node b: relearned after {:.2} s",
        t.as_secs_f64()
    );
    assert_eq!(ping("a0", &pod_ip("b", 0), 3), 3, "a0 -> b0 again");

    // Node c joins later: a and b learn it with their configs and birds untouched.
    let conf_a = std::fs::read_to_string(format!("/run/podfwd-bed/{}/bird-a.conf", pf())).unwrap();
    assert!(
        !conf_a.contains("198.18.13."),
        "node a's config names no other node"
    );
    let c = Bird::start("c");
    let t = wait_for(
        "10.0.13.0/24 learned by nodes a and b",
        Duration::from_secs(15),
        || {
            [("a", "via 198.18.13.2"), ("b", "via 198.18.13.2")]
                .iter()
                .all(|(n, via)| {
                    route_for(&routes(n, Some("201")), "10.0.13.0/24")
                        .is_some_and(|l| l.contains(via))
                })
        },
    );
    println!(
        "node c's bird started: learned by nodes a and b after {:.2} s",
        t.as_secs_f64()
    );
    let c201 = routes("c", Some("201"));
    assert!(
        route_for(&c201, "10.0.11.0/24").is_some() && route_for(&c201, "10.0.12.0/24").is_some(),
        "node c learned a and b: {c201}"
    );
    assert_eq!(ping("a0", &pod_ip("c", 0), 3), 3, "a0 -> c0");
    // Node b learns c on its own BGP session: it may converge a little after node a.
    wait_for(
        "c1 -> b1 after node c joined",
        Duration::from_secs(20),
        || ping("c1", &pod_ip("b", 1), 1) == 1,
    );
    assert_eq!(ping("c1", &pod_ip("b", 1), 3), 3, "c1 -> b1");
    drop((c, b, a, r));
}

/// What podfwd must do across the router in either mode: pods on a and b ping and move
/// TCP, and every frame leaves a node toward the router's MAC. Returns the capture.
fn podfwd_across_router(mode: &str) {
    let a_cfg = node_config("a", &["b"], mode);
    let b_cfg = node_config("b", &["a"], mode);
    let a = Podfwd::start("a", &a_cfg.0);
    let b = Podfwd::start("b", &b_cfg.0);

    assert_eq!(
        ping("a0", &pod_ip("b", 0), 5),
        5,
        "a0 -> b0 across the router"
    );
    assert_eq!(
        ping("b1", &pod_ip("a", 1), 5),
        5,
        "b1 -> a1 across the router"
    );
    assert_eq!(ping("a0", &pod_ip("a", 1), 3), 3, "a0 -> a1 on one node");

    let filter = if mode == "tunnel" {
        "udp port 8472"
    } else {
        "icmp"
    };
    let cap = capture_router(&["a", "b"], filter, 8);
    assert_eq!(ping("a0", &pod_ip("b", 0), 2), 2);
    let lines = captured(cap);
    for l in &lines {
        println!("router capture ({mode}): {}", l.join("|"));
    }
    assert_eq!(
        lines.len(),
        8,
        "2 requests + 2 replies on ra and rb: {lines:?}"
    );
    for f in &lines {
        let (s, d) = (f[3].as_str(), f[4].as_str());
        if mode == "tunnel" {
            // Outer node IPs (end to end: the router only forwards), inner pod IPs.
            let (os, od) = (outer(s), outer(d));
            assert!(
                (os, od) == ("198.18.11.2", "198.18.12.2")
                    || (os, od) == ("198.18.12.2", "198.18.11.2"),
                "outer IPs are the node IPs: {f:?}"
            );
            assert!(
                s.contains("10.0.1") && d.contains("10.0.1"),
                "inner pod IPs: {f:?}"
            );
            assert_eq!(outer(&f[5]), "8472", "VXLAN port: {f:?}");
        } else {
            assert!(
                (s, d) == ("10.0.11.2", "10.0.12.2") || (s, d) == ("10.0.12.2", "10.0.11.2"),
                "bare pod IPs: {f:?}"
            );
            assert_eq!(f[5], "", "no UDP on the wire in native mode: {f:?}");
        }
    }
    assert_eq!(
        check_hops(&lines, &["a", "b"]),
        ["ra", "rb"],
        "both nodes send to the router's MAC"
    );

    let bytes = iperf("a0", "b0", &pod_ip("b", 0), 5);
    println!("iperf3 a0 -> b0 across the router ({mode}): {bytes} bytes in 5 s");
    assert!(
        bytes > 10_000_000,
        "iperf3 a0 -> b0 moved only {bytes} bytes"
    );

    let (sa, sb) = (a.status(), b.status());
    if mode == "tunnel" {
        assert!(u(&sa["actions"]["encapsulated"]) > 1000, "{sa}");
        assert!(u(&sb["actions"]["decapsulated"]) > 1000, "{sb}");
    } else {
        assert!(u(&sa["actions"]["routed_native"]) > 1000, "{sa}");
        assert!(u(&sb["actions"]["delivered_local"]) > 1000, "{sb}");
    }
    let (st_a, log_a) = a.stop_with_log();
    assert_eq!(st_a.code(), Some(0), "{log_a}");
    let (st_b, log_b) = b.stop_with_log();
    assert_eq!(st_b.code(), Some(0), "{log_b}");
    for n in ["a", "b"] {
        assert_eq!(
            xdp_attached(n),
            Vec::<String>::new(),
            "XDP left on node {n}"
        );
    }
}

/// Tunnel mode across the router: only the node IPs are routed (no PodCIDR anywhere in
/// the underlay, no BGP); VXLAN between 198.18.11.2 and 198.18.12.2, each hop to the
/// router's MAC (the next hop podfwd takes from the node's FIB).
#[test]
fn podfwd_tunnel_across_the_router() {
    require_root!();
    let _g = setup();
    let _bed = RoutedBed::up("a,b", 1450);
    assert_eq!(
        route_for(&routes("r", None), "10.0.12.0/24"),
        None,
        "the router must not route PodCIDRs in this test"
    );
    podfwd_across_router("tunnel");
}

/// Native mode across the router: the router routes the PodCIDRs it learns from BIRD;
/// podfwd sends bare pod packets to the router's MAC.
#[test]
fn podfwd_native_across_the_router() {
    require_root!();
    let _g = setup();
    let _bed = RoutedBed::up("a,b", 1500);
    let birds = [Bird::start("router"), Bird::start("a"), Bird::start("b")];
    wait_for(
        "the router learns 10.0.11.0/24 and 10.0.12.0/24 from BIRD",
        Duration::from_secs(15),
        || {
            let rt = routes("r", None);
            route_for(&rt, "10.0.11.0/24").is_some() && route_for(&rt, "10.0.12.0/24").is_some()
        },
    );
    podfwd_across_router("native");
    drop(birds);
}

/// The issue's whole case: no node list anywhere. podfwd (tunnel) on each node follows
/// table 201, which BIRD fills from the route reflector; pods reach a node's pods once
/// BGP has its PodCIDR, a node that joins later is reachable without touching any
/// config, and a node whose BGP goes away is dropped from podfwd's routes.
#[test]
fn podfwd_follows_pod_cidrs_from_bird() {
    require_root!();
    let _g = setup();
    let _bed = RoutedBed::up("a,b,c", 1450);
    let cfg: Vec<TempFile> = ["a", "b", "c"]
        .iter()
        .map(|n| node_config_with(n, &[], "tunnel", Some(201)))
        .collect();
    let birds = [Bird::start("router"), Bird::start("a"), Bird::start("b")];
    let start = Instant::now();
    let pa = Podfwd::start("a", &cfg[0].0);
    let pb = Podfwd::start("b", &cfg[1].0);
    wait_for(
        "a0 -> b0 with the PodCIDRs from BIRD",
        Duration::from_secs(20),
        || ping("a0", &pod_ip("b", 0), 1) == 1,
    );
    println!(
        "podfwd from table 201: first a0 -> b0 reply {:.2} s after bird and podfwd started",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(ping("b1", &pod_ip("a", 1), 3), 3, "b1 -> a1");
    let bytes = iperf("a0", "b0", &pod_ip("b", 0), 3);
    assert!(
        bytes > 10_000_000,
        "iperf3 a0 -> b0 moved only {bytes} bytes"
    );
    assert!(u(&pa.status()["actions"]["encapsulated"]) > 1000);

    // Node c joins: bird and podfwd on c; a and b keep running with their configs.
    let bird_c = Bird::start("c");
    let pc = Podfwd::start("c", &cfg[2].0);
    let t = wait_for(
        "a0 -> c0 after node c joined",
        Duration::from_secs(20),
        || ping("a0", &pod_ip("c", 0), 1) == 1,
    );
    println!(
        "node c joined: a0 -> c0 answered after {:.2} s",
        t.as_secs_f64()
    );
    // Node b learns c on its own BGP session: it may converge a little after node a.
    wait_for(
        "c1 -> b1 after node c joined",
        Duration::from_secs(20),
        || ping("c1", &pod_ip("b", 1), 1) == 1,
    );
    assert_eq!(ping("c1", &pod_ip("b", 1), 3), 3, "c1 -> b1");

    // Node c's BGP goes away: its PodCIDR leaves node a's table 201 and podfwd's routes.
    drop(bird_c);
    wait_for(
        "10.0.13.0/24 withdrawn from node a's table 201",
        Duration::from_secs(9),
        || route_for(&routes("a", Some("201")), "10.0.13.0/24").is_none(),
    );
    // podfwd drops the route on the table event (a ping with a reply in flight may
    // still get through, so allow a few seconds).
    wait_for(
        "a0 -> c0 fails once 10.0.13.0/24 is withdrawn",
        Duration::from_secs(5),
        || ping("a0", &pod_ip("c", 0), 1) == 0,
    );
    assert_eq!(ping("a0", &pod_ip("b", 0), 2), 2, "a0 -> b0 unaffected");
    for p in [pc, pb, pa] {
        let (st, log) = p.stop_with_log();
        assert_eq!(st.code(), Some(0), "{log}");
    }
    drop(birds);
}

/// The router's second address on node a's link, with a MAC of its own (a macvlan on
/// `ra`): the second gateway of a multipath route.
const GW2: &str = "198.18.11.254";
const GW2_MAC: &str = "02:00:c6:12:0b:fe";

/// Run in namespace `n`; panics unless it succeeds.
fn must(n: &str, args: &[&str]) {
    let o = nsx(n, args);
    assert!(
        o.status.success(),
        "{n}: {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Node a reaches node b's subnet through two gateways on its link: the router's `ra`
/// (198.18.11.1) and [`GW2`] on a macvlan over `ra`. Each answers ARP only for its own
/// address (`arp_ignore=1`; by default `ra` would answer for both with its MAC).
fn second_gateway_for_a() {
    must(
        "r",
        &[
            "ip", "link", "add", "ra2", "link", "ra", "address", GW2_MAC, "type", "macvlan",
            "mode", "bridge",
        ],
    );
    for dev in ["ra", "ra2"] {
        must(
            "r",
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{dev}.arp_ignore=1"),
            ],
        );
    }
    must(
        "r",
        &["ip", "addr", "add", &format!("{GW2}/24"), "dev", "ra2"],
    );
    must("r", &["ip", "link", "set", "ra2", "up"]);
    must(
        "a",
        &[
            "ip",
            "route",
            "add",
            "198.18.12.0/24",
            "proto",
            "static",
            "nexthop",
            "via",
            "198.18.11.1",
            "dev",
            "eth0",
            "nexthop",
            "via",
            GW2,
            "dev",
            "eth0",
        ],
    );
}

/// scripts/flows.py serving TCP in a pod; killed on drop.
struct FlowServer(Child);

impl FlowServer {
    fn start(pod: &str, port: u16) -> FlowServer {
        let script = root().join("scripts/flows.py");
        let mut c = Command::new("ip")
            .args(["netns", "exec", &ns(pod), "python3"])
            .arg(script)
            .args(["serve", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("flows.py serve");
        let mut line = String::new();
        let _ = BufReader::new(c.stdout.take().unwrap()).read_line(&mut line);
        assert_eq!(line.trim(), "listening", "flows.py serve in {pod}");
        FlowServer(c)
    }
}

impl Drop for FlowServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The innermost value of a tshark field that repeats for encapsulated headers.
fn inner(f: &str) -> &str {
    f.rsplit(',').next().unwrap_or("")
}

/// Per flow (protocol, source port) of the pod frames node a sent, captured as
/// `eth.dst|ip.proto|ip.src|ip.dst|tcp.srcport|udp.srcport`: the MACs it went to and
/// how many frames.
fn flows_by_mac(lines: &[Vec<String>]) -> BTreeMap<(String, String), (BTreeSet<String>, usize)> {
    let mut flows: BTreeMap<(String, String), (BTreeSet<String>, usize)> = BTreeMap::new();
    for f in lines {
        let (dst, proto) = (outer(&f[0]), inner(&f[1]));
        assert_eq!(
            (inner(&f[2]), inner(&f[3])),
            ("10.0.11.2", "10.0.12.2"),
            "a0 -> b0: {f:?}"
        );
        let sport = if proto == "6" { &f[4] } else { inner(&f[5]) };
        let e = flows
            .entry((proto.to_owned(), sport.to_owned()))
            .or_default();
        e.0.insert(dst.to_owned());
        e.1 += 1;
    }
    flows
}

/// 8 TCP and 8 UDP flows from a0 to b0 with podfwd in `mode` on both nodes, source
/// ports from `sport`: node a's podfwd sends each flow to one of the two gateways and
/// uses both.
fn multipath_flows(mode: &str, sport: u16) {
    let a_cfg = node_config("a", &["b"], mode);
    let b_cfg = node_config("b", &["a"], mode);
    let a = Podfwd::start("a", &a_cfg.0);
    let b = Podfwd::start("b", &b_cfg.0);
    let hops = |a: &Podfwd| a.status()["nodes"][0]["next_hops"].clone();
    wait_for(
        "podfwd on node a resolves both gateways",
        Duration::from_secs(10),
        || {
            hops(&a)
                .as_array()
                .is_some_and(|h| h.len() == 2 && h.iter().all(|h| h["mac"].is_string()))
        },
    );
    let ra = mac("r", "ra");
    let shown: Vec<(String, String, u64)> = hops(&a)
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (s(&h["via"]), s(&h["mac"]), u(&h["slots"])))
        .collect();
    assert_eq!(
        shown,
        [
            ("198.18.11.1".into(), ra.clone(), 32),
            (GW2.into(), GW2_MAC.into(), 32)
        ],
        "{mode}: podfwd status shows both next hops"
    );

    let node_a_mac = mac("a", "eth0");
    let filter = match mode {
        "tunnel" => format!("ether src {node_a_mac} and udp dst port 8472"),
        _ => format!("ether src {node_a_mac} and dst net 10.0.12.0/24"),
    };
    let fields = [
        "eth.dst",
        "ip.proto",
        "ip.src",
        "ip.dst",
        "tcp.srcport",
        "udp.srcport",
    ];
    let cap = tshark_on_router(
        &["a"],
        &filter,
        &["-a".into(), "duration:60".into()],
        &fields,
    );
    let script = root().join("scripts/flows.py");
    let (sp, port) = (sport.to_string(), "5001".to_string());
    let out = nsx(
        "a0",
        &[
            "python3",
            script.to_str().unwrap(),
            "send",
            "--dst",
            &pod_ip("b", 0),
            "--port",
            &port,
            "--sport",
            &sp,
            "--flows",
            "8",
        ],
    );
    let sent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "flows.py send: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let n = |k: &str| sent[k].as_array().map_or(0, Vec::len);
    assert_eq!(
        (n("tcp"), n("udp")),
        (8, 8),
        "{mode}: every flow got through: {sent}"
    );
    sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &cap.id().to_string()])
        .status();
    let flows = flows_by_mac(&captured(cap));
    let mut per_mac: BTreeMap<String, usize> = BTreeMap::new();
    for ((proto, port), (macs, frames)) in &flows {
        println!("{mode}: flow proto {proto} from port {port}: {frames} frames to {macs:?}");
        assert_eq!(
            macs.len(),
            1,
            "{mode}: flow {proto}/{port} went to {macs:?}"
        );
        assert!(
            *frames >= 3,
            "{mode}: flow {proto}/{port}: only {frames} frames"
        );
        *per_mac
            .entry(macs.iter().next().unwrap().clone())
            .or_default() += 1;
    }
    assert_eq!(
        flows.len(),
        16,
        "{mode}: 8 TCP + 8 UDP flows seen: {flows:?}"
    );
    assert_eq!(
        per_mac.keys().cloned().collect::<Vec<_>>(),
        {
            let mut both = vec![ra, GW2_MAC.to_owned()];
            both.sort();
            both
        },
        "{mode}: flows over both gateways: {per_mac:?}"
    );
    println!("{mode}: flows per gateway MAC: {per_mac:?}");
    for p in [a, b] {
        let (st, log) = p.stop_with_log();
        assert_eq!(st.code(), Some(0), "{log}");
    }
}

/// A multipath route to node b's subnet on node a (`nexthop via 198.18.11.1 nexthop via
/// 198.18.11.254`, two MACs of the router): podfwd shows both next hops and spreads
/// flows over them by flow hash, each flow staying on one, in tunnel and native mode
/// (a capture on the router's side of node a's link tells the MACs).
#[test]
fn podfwd_spreads_flows_over_a_multipath_route() {
    require_root!();
    let _g = setup();
    let _bed = RoutedBed::up("a,b", 1450);
    second_gateway_for_a();
    let _server = FlowServer::start("b0", 5001);
    multipath_flows("tunnel", 41000);
    // Native: the router must route the PodCIDRs.
    routed(&["kernel", "native"]);
    multipath_flows("native", 43000);
}

/// Datagrams the router has forwarded (`Ip: ForwDatagrams` of its namespace).
fn router_forwarded() -> u64 {
    let snmp = stdout(&nsx("r", &["cat", "/proc/net/snmp"]));
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().unwrap_or(""), ip.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(k, _)| *k == "ForwDatagrams")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no ForwDatagrams in the router's /proc/net/snmp:\n{snmp}"))
}

/// What podfwd on `p` shows for node `n` in `status --json`: (path, next-hop MAC).
fn node_path(p: &Podfwd, n: &str) -> (String, String) {
    let st = p.status();
    let name = format!("node-{n}");
    let v = st["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["name"] == name.as_str()))
        .unwrap_or_else(|| panic!("no {name} in node {}'s status: {st}", p.node))
        .clone();
    let f = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    (f("path"), f("mac"))
}

/// A counter of `status --json`'s `actions`.
fn action(p: &Podfwd, what: &str) -> u64 {
    u(&p.status()["actions"][what])
}

/// Ping and TCP both ways between the pods `x`0/1 and `y`0/1; returns once each
/// direction moved more than 10 MB.
fn both_ways(x: &str, y: &str) {
    let (x0, x1, y0, y1) = (
        format!("{x}0"),
        format!("{x}1"),
        format!("{y}0"),
        format!("{y}1"),
    );
    assert_eq!(ping(&x0, &pod_ip(y, 0), 3), 3, "{x0} -> {y0}");
    assert_eq!(ping(&y1, &pod_ip(x, 1), 3), 3, "{y1} -> {x1}");
    for (from, to, ip) in [(&x0, &y0, pod_ip(y, 0)), (&y1, &x1, pod_ip(x, 1))] {
        let bytes = iperf(from, to, &ip, 3);
        println!("iperf3 {from} -> {to}: {bytes} bytes in 3 s");
        assert!(
            bytes > 10_000_000,
            "iperf3 {from} -> {to} moved only {bytes} bytes"
        );
    }
}

/// Hybrid mode with node d on node a's subnet and node b behind the router: native
/// between a and d (the router forwards nothing, the shared segment sees bare pod IPs
/// from a's MAC to d's), VXLAN between node IPs to b (through the router); and a route
/// that puts d behind the router turns a <-> d into VXLAN through it, and back.
#[test]
fn podfwd_hybrid_across_the_router() {
    require_root!();
    let _g = setup();
    // Hybrid pods get the tunnel MTU: some of their peers are behind a router.
    let _bed = RoutedBed::up("a,b,d", 1450);
    assert_eq!(
        route_for(&routes("r", None), "10.0.14.0/24"),
        None,
        "the router must not route PodCIDRs in this test"
    );
    let cfg = [
        node_config("a", &["b", "d"], "hybrid"),
        node_config("b", &["a", "d"], "hybrid"),
        node_config("d", &["a", "b"], "hybrid"),
    ];
    let a = Podfwd::start("a", &cfg[0].0);
    let b = Podfwd::start("b", &cfg[1].0);
    let d = Podfwd::start("d", &cfg[2].0);
    let router_a = mac("r", "ra");
    let (mac_a, mac_d) = (mac("a", "eth0"), mac("d", "eth0"));

    // The per-node decision, from each node's FIB.
    assert_eq!(node_path(&a, "d"), ("native".into(), mac_d.clone()));
    assert_eq!(node_path(&a, "b"), ("vxlan".into(), router_a.clone()));
    assert_eq!(node_path(&d, "a"), ("native".into(), mac_a.clone()));
    assert_eq!(node_path(&d, "b"), ("vxlan".into(), router_a.clone()));
    assert_eq!(node_path(&b, "a").0, "vxlan");
    assert_eq!(node_path(&b, "d").0, "vxlan");

    hybrid_same_subnet_is_native(&a, &d, &mac_a, &mac_d);
    hybrid_behind_router_is_vxlan(&a, &b);
    assert_eq!(ping("b0", &pod_ip("d", 0), 3), 3, "b0 -> d0 (VXLAN)");

    // Routes that send a <-> d through the router: re-decided as VXLAN.
    for (n, peer) in [("a", "d"), ("d", "a")] {
        let dst = format!("{}/32", node_ip(peer));
        let o = nsx(
            n,
            &[
                "ip",
                "route",
                "add",
                &dst,
                "via",
                "198.18.11.1",
                "dev",
                "eth0",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let t = wait_for(
        "a and d put each other behind the router",
        Duration::from_secs(10),
        || {
            node_path(&a, "d") == ("vxlan".into(), router_a.clone())
                && node_path(&d, "a") == ("vxlan".into(), router_a.clone())
        },
    );
    println!(
        "routes via the router: a and d switched to VXLAN after {:.2} s",
        t.as_secs_f64()
    );
    hybrid_rerouted_is_vxlan(&a, &mac_a, &mac_d, &router_a);

    // The routes removed: native again, the router out of the path.
    for (n, peer) in [("a", "d"), ("d", "a")] {
        let dst = format!("{}/32", node_ip(peer));
        let o = nsx(n, &["ip", "route", "del", &dst]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    wait_for("a and d on-link again", Duration::from_secs(10), || {
        node_path(&a, "d") == ("native".into(), mac_d.clone())
            && node_path(&d, "a") == ("native".into(), mac_a.clone())
    });
    let fw = router_forwarded();
    assert_eq!(ping("a0", &pod_ip("d", 0), 3), 3, "a0 -> d0 native again");
    assert_eq!(
        router_forwarded() - fw,
        0,
        "a <-> d bypasses the router again"
    );

    for p in [d, b, a] {
        let n = p.node.clone();
        let (st, log) = p.stop_with_log();
        assert_eq!(st.code(), Some(0), "{log}");
        assert_eq!(
            xdp_attached(&n),
            Vec::<String>::new(),
            "XDP left on node {n}"
        );
    }
}

/// a <-> d, one subnet: bare pod packets from one node's MAC to the other's on the
/// switch, nothing forwarded by the router, nothing encapsulated.
fn hybrid_same_subnet_is_native(a: &Podfwd, d: &Podfwd, mac_a: &str, mac_d: &str) {
    let fw = router_forwarded();
    let cap = capture_on("s", &["sd"], "icmp or udp port 8472", 4);
    assert_eq!(ping("a0", &pod_ip("d", 0), 2), 2, "a0 -> d0 on one subnet");
    let lines = captured(cap);
    for l in &lines {
        println!("switch port sd capture (hybrid, a <-> d): {}", l.join("|"));
    }
    assert_eq!(lines.len(), 4, "2 requests + 2 replies on sd: {lines:?}");
    for f in &lines {
        let hop = (f[1].as_str(), f[2].as_str(), f[3].as_str(), f[4].as_str());
        assert!(
            hop == (mac_a, mac_d, "10.0.11.2", "10.0.14.2")
                || hop == (mac_d, mac_a, "10.0.14.2", "10.0.11.2"),
            "bare pod IPs, node to node without the router: {f:?}"
        );
        assert_eq!(f[5], "", "no UDP (no VXLAN) between on-link nodes: {f:?}");
    }
    both_ways("a", "d");
    assert_eq!(
        router_forwarded() - fw,
        0,
        "the router forwarded a <-> d traffic"
    );
    for p in [a, d] {
        assert!(action(p, "routed_native") > 1000, "{}", p.status());
        assert_eq!(action(p, "encapsulated"), 0, "{}", p.status());
        assert_eq!(action(p, "decapsulated"), 0, "{}", p.status());
    }
}

/// a <-> b, behind the router: VXLAN between the node IPs, each hop to the router's MAC.
fn hybrid_behind_router_is_vxlan(a: &Podfwd, b: &Podfwd) {
    let fw = router_forwarded();
    let cap = capture_router(&["a", "b"], "udp port 8472", 8);
    assert_eq!(
        ping("a0", &pod_ip("b", 0), 2),
        2,
        "a0 -> b0 across the router"
    );
    let lines = captured(cap);
    for l in &lines {
        println!("router capture (hybrid, a <-> b): {}", l.join("|"));
    }
    assert_eq!(
        lines.len(),
        8,
        "2 requests + 2 replies on ra and rb: {lines:?}"
    );
    for f in &lines {
        let (s, d) = (outer(&f[3]), outer(&f[4]));
        assert!(
            (s, d) == ("198.18.11.2", "198.18.12.2") || (s, d) == ("198.18.12.2", "198.18.11.2"),
            "outer IPs are the node IPs: {f:?}"
        );
        assert!(
            f[3].contains(",10.0.1") && f[4].contains(",10.0.1"),
            "inner pod IPs: {f:?}"
        );
        assert_eq!(outer(&f[5]), "8472", "VXLAN port: {f:?}");
    }
    assert_eq!(check_hops(&lines, &["a", "b"]), ["ra", "rb"]);
    both_ways("a", "b");
    assert!(
        router_forwarded() - fw > 2000,
        "a <-> b goes through the router"
    );
    for p in [a, b] {
        assert!(action(p, "encapsulated") > 1000, "{}", p.status());
        assert!(action(p, "decapsulated") > 1000, "{}", p.status());
    }
}

/// a <-> d with routes via the router: VXLAN between 198.18.11.2 and 198.18.11.3, sent
/// to the router's MAC and forwarded by it back onto the same subnet.
fn hybrid_rerouted_is_vxlan(a: &Podfwd, mac_a: &str, mac_d: &str, router: &str) {
    let (fw, enc) = (router_forwarded(), action(a, "encapsulated"));
    let cap = capture_on("r", &["ra"], "udp port 8472", 8);
    assert_eq!(ping("a0", &pod_ip("d", 0), 2), 2, "a0 -> d0 via the router");
    let lines = captured(cap);
    for l in &lines {
        println!(
            "router capture (hybrid, a <-> d via the router): {}",
            l.join("|")
        );
    }
    assert_eq!(
        lines.len(),
        8,
        "2 requests + 2 replies, in and out of ra: {lines:?}"
    );
    for f in &lines {
        let (s, d) = (outer(&f[3]), outer(&f[4]));
        assert!(
            (s, d) == ("198.18.11.2", "198.18.11.3") || (s, d) == ("198.18.11.3", "198.18.11.2"),
            "outer IPs are the node IPs: {f:?}"
        );
        assert_eq!(outer(&f[5]), "8472", "VXLAN port: {f:?}");
        let (src, dst) = (outer(&f[1]), outer(&f[2]));
        assert!(
            (src == mac_a || src == mac_d) && dst == router
                || src == router && (dst == mac_a || dst == mac_d),
            "every hop is between a node and the router: {f:?}"
        );
    }
    both_ways("a", "d");
    assert!(
        router_forwarded() - fw > 2000,
        "a <-> d goes through the router now"
    );
    assert!(action(a, "encapsulated") - enc > 1000, "{}", a.status());
}
