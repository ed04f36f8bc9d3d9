//! Reliability (issue 6): hostile frames, bad operations, reloads, recovery, crashes,
//! MTU and a bounded soak, on the two-node namespace bed with real packets.
//!
//! Run with `PODFWD_TEST_PF=pfz cargo test -p podfwd --test reliability -- --test-threads=1`.
//! What each test shows and the figures measured: docs/reliability.md.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn u(j: &Value) -> u64 {
    j.as_u64().unwrap_or(0)
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `podfwd status --json` in a node namespace.
fn status_of(node: &str) -> Value {
    let o = nsx(node, &[bin().to_str().unwrap(), "status", "--json"]);
    assert!(o.status.success(), "status on {node}: {}", err(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `podfwd reload` in a node namespace.
fn reload(node: &str) -> Output {
    let sock = format!("/run/podfwd/node-{node}.sock");
    nsx(
        node,
        &[bin().to_str().unwrap(), "reload", "--socket", &sock],
    )
}

/// The counters under `key` ("drops", "actions", "steering") as a map.
fn counters(j: &Value, key: &str) -> BTreeMap<String, u64> {
    j[key]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), u(v))).collect())
        .unwrap_or_default()
}

fn delta(before: &Value, after: &Value, key: &str) -> BTreeMap<String, u64> {
    let b = counters(before, key);
    counters(after, key)
        .into_iter()
        .map(|(k, v)| {
            let d = v - b.get(&k).copied().unwrap_or(0);
            (k, d)
        })
        .collect()
}

/// `umem.frames: n` in a config text.
fn set_frames(t: &str, n: u32) -> String {
    let out: Vec<String> = t
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("frames:") {
                format!("  frames: {n}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    out.join("\n") + "\n"
}

/// A config file derived from one in config/, written to a temp dir.
struct TempCfg(PathBuf);

impl TempCfg {
    fn new(tag: &str, base: &str, edit: impl Fn(String) -> String) -> TempCfg {
        let p = std::env::temp_dir().join(format!("podfwd-rel-{}-{tag}.yaml", std::process::id()));
        let text = std::fs::read_to_string(config(base)).unwrap();
        let new = edit(text.clone());
        std::fs::write(&p, new).unwrap();
        TempCfg(p)
    }
    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempCfg {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The pid of the podfwd running in a node namespace.
fn podfwd_pid(node: &str) -> Option<u32> {
    let o = run(Command::new("ip").args(["netns", "pids", &ns(node)]));
    stdout(&o)
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "podfwd")
        })
}

fn mac_of(node: &str, iface: &str) -> String {
    stdout(&nsx(
        node,
        &["cat", &format!("/sys/class/net/{iface}/address")],
    ))
    .trim()
    .to_owned()
}

/// Run scripts/inject.py in namespace `n`; returns {kind: {"sent", "expect"}}.
fn inject(n: &str, args: &[&str]) -> serde_json::Map<String, Value> {
    let script = root().join("scripts/inject.py");
    let o = nsx(n, &[&["python3", script.to_str().unwrap()], args].concat());
    assert!(o.status.success(), "inject {args:?}: {}", err(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    j.as_object().unwrap().clone()
}

/// Expected counter deltas from inject's report: (drops, steering, actions).
fn expected(sent: &serde_json::Map<String, Value>) -> [BTreeMap<String, u64>; 3] {
    let mut out: [BTreeMap<String, u64>; 3] = Default::default();
    for v in sent.values() {
        let e = v["expect"].as_str().unwrap();
        let (kind, name) = e.split_once(':').unwrap();
        let i = match kind {
            "drop" => 0,
            "xdp" => 1,
            "action" => 2,
            _ => panic!("{e}"),
        };
        *out[i].entry(name.to_owned()).or_default() += u(&v["sent"]);
    }
    out
}

/// Poll `f` until it returns true or `secs` pass; returns the time it took.
fn within(secs: u64, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return Some(start.elapsed());
        }
        sleep(Duration::from_millis(200));
    }
    None
}

// ---------------------------------------------------------------------------------------
// 1. Bad input on the wire.
// ---------------------------------------------------------------------------------------

/// While TCP runs a0 -> b0, pod a1 and the underlay switch send every malformed or
/// hostile kind N times. Each must land in exactly its counter; the flow must not notice.
#[test]
fn hostile_frames_are_counted_and_traffic_flows() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    // a1 at 1500 so it can send frames too big for the tunnel; node b's host veths at the
    // pod MTU (as a CNI sets them) so an oversized decapsulated frame is too big.
    nsx("a1", &["ip", "link", "set", "eth0", "mtu", "1500"]);
    for l in ["lxc0", "lxc1"] {
        nsx("b", &["ip", "link", "set", l, "mtu", "1450"]);
    }
    nsx("u", &["ip", "link", "set", "ub", "mtu", "1600"]);
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    let b = Podfwd::start("b", &config("node-b.tunnel.yaml"));
    let (a0, b0) = (a.status(), b.status());

    const N: &str = "25";
    let flow = Flow::start("a0", "b0", "10.0.2.2", 6);
    sleep(Duration::from_secs(1));
    let lxc1 = mac_of("a", "lxc1");
    let pod = inject(
        "a1",
        &[
            "pod",
            "--iface",
            "eth0",
            "--dst-mac",
            &lxc1,
            "--src-ip",
            "10.0.1.3",
            "--remote-ip",
            "10.0.2.2",
            "-n",
            N,
        ],
    );
    let b_eth0 = mac_of("b", "eth0");
    let ul = inject(
        "u",
        &[
            "underlay",
            "--iface",
            "ub",
            "--dst-mac",
            &b_eth0,
            "--src-ip",
            "198.18.0.1",
            "--dst-ip",
            "198.18.0.2",
            "--pod-ip",
            "10.0.2.2",
            "--foreign-pod",
            "10.0.1.2",
            "-n",
            N,
        ],
    );
    assert_eq!(pod.len(), 23, "every pod kind sent: {pod:?}");
    assert_eq!(ul.len(), 23, "every underlay kind sent: {ul:?}");
    let (bytes, retr) = flow.finish();
    sleep(Duration::from_millis(1500)); // steering counters refresh once a second
    let (a1, b1) = (a.status(), b.status());
    assert!(
        bytes > 20_000_000,
        "TCP a0 -> b0 under attack moved only {bytes} bytes"
    );
    eprintln!("hostile frames: iperf3 {bytes} bytes, {retr} retransmits");

    for (node, sent, before, after) in [("a", &pod, &a0, &a1), ("b", &ul, &b0, &b1)] {
        let [want_drops, want_xdp, want_actions] = expected(sent);
        let drops = delta(before, after, "drops");
        for (reason, got) in &drops {
            if reason == "tx_ring_full" {
                continue; // load-dependent, not injected
            }
            let want = want_drops.get(reason).copied().unwrap_or(0);
            assert_eq!(
                *got, want,
                "node {node}: drops.{reason} grew by {got}, want {want}; all: {drops:?}"
            );
        }
        for r in want_drops.keys() {
            assert!(drops.contains_key(r), "unknown drop reason {r}");
        }
        let xdp = delta(before, after, "steering");
        for (stat, want) in &want_xdp {
            let got = xdp[stat];
            if stat == "passed_malformed" {
                assert_eq!(got, *want, "node {node}: steering.{stat}: {xdp:?}");
            } else {
                // ARP, the nodes' own traffic: more than injected is fine.
                assert!(
                    got >= *want,
                    "node {node}: steering.{stat} {got} < {want}: {xdp:?}"
                );
            }
        }
        let acts = delta(before, after, "actions");
        assert_eq!(
            acts["icmp_frag_needed"],
            want_actions.get("icmp_frag_needed").copied().unwrap_or(0),
            "node {node}: {acts:?}"
        );
        eprintln!("node {node}: drops {drops:?}\n  steering {xdp:?}");
    }
    assert_eq!(a1["healthy"], true);
    assert_eq!(b1["healthy"], true);
    assert_eq!(ping("a0", "10.0.2.2", 3), 3, "forwarding after the attack");
    assert_eq!(a.stop().code(), Some(0));
    assert_eq!(b.stop().code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 2. Bad operations.
// ---------------------------------------------------------------------------------------

/// A missing endpoint interface, too small a UMEM for the interfaces, a second podfwd on
/// the node: each refused with a message that says what to do, nothing left attached.
/// And no bpffs is needed (bpf_links): the node namespace has none mounted.
#[test]
fn bad_operations_are_refused_with_clear_messages() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let podfwd = bin();
    let run_with = |c: &TempCfg| {
        nsx(
            "a",
            &[
                podfwd.to_str().unwrap(),
                "run",
                "--config",
                c.path().to_str().unwrap(),
            ],
        )
    };

    let missing = TempCfg::new("missing-ep", "node-a.tunnel.yaml", |t| {
        t.replace("interface: lxc1", "interface: lxc7")
    });
    let o = run_with(&missing);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("interface lxc7 not found in this network namespace"),
        "{}",
        err(&o)
    );
    assert_eq!(xdp_attached("a"), Vec::<String>::new());

    // Six interfaces (uplink + 5 pods) need 6 x 128 frames: 512 is refused.
    for i in 2..5 {
        let l = format!("lxc{i}");
        nsx(
            "a",
            &[
                "ip",
                "link",
                "add",
                &l,
                "type",
                "veth",
                "peer",
                "name",
                &format!("{l}p"),
            ],
        );
        nsx("a", &["ip", "link", "set", &l, "up"]);
        nsx("a", &["ip", "link", "set", &format!("{l}p"), "up"]);
    }
    let small = TempCfg::new("small-umem", "node-a.tunnel.yaml", |t| {
        let extra: String = (2..5)
            .map(|i| format!("  - ip: 10.0.1.{}\n    interface: lxc{i}\n", i + 2))
            .collect();
        set_frames(&t, 512).replace(
            "    interface: lxc1\n",
            &format!("    interface: lxc1\n{extra}"),
        )
    });
    let o = run_with(&small);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&format!(
            "{}: umem.frames 512 is too few for 6 interfaces: each needs a 64-frame fill ring and as many frames in flight; set umem.frames to 1024 or more",
            small.path().display()
        )),
        "{}",
        err(&o)
    );
    assert_eq!(xdp_attached("a"), Vec::<String>::new());

    // No bpffs in the node namespace (ip netns exec mounts a fresh /sys), and 512 frames
    // are enough for 3 interfaces.
    let mounts = stdout(&nsx("a", &["cat", "/proc/self/mounts"]));
    assert!(
        !mounts
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some("bpf")),
        "bpffs mounted: {mounts}"
    );
    let ok = TempCfg::new("512", "node-a.tunnel.yaml", |t| set_frames(&t, 512));
    let a = Podfwd::start("a", ok.path());
    let b = Podfwd::start("b", &config("node-b.tunnel.yaml"));
    assert_eq!(ping("a0", "10.0.2.2", 3), 3);

    // A second podfwd, same config or another metrics port: refused, names the first.
    let pid = podfwd_pid("a").expect("podfwd pid");
    let other_port = TempCfg::new("second", "node-a.tunnel.yaml", |t| {
        t.replace("127.0.0.1:9475", "127.0.0.1:9476")
    });
    for c in [&ok, &other_port] {
        let o = run_with(c);
        assert_eq!(o.status.code(), Some(1), "{}", err(&o));
        assert!(
            err(&o).contains(&format!("error: another podfwd is running on this node (pid {pid}, holding the abstract socket @podfwd in this network namespace); stop it first, or use `podfwd reload` to change its config")),
            "{}",
            err(&o)
        );
    }
    assert_eq!(
        ping("a0", "10.0.2.2", 3),
        3,
        "the first podfwd still forwards"
    );
    assert_eq!(a.status()["ready"], true);
    assert_eq!(a.stop().code(), Some(0));
    assert_eq!(b.stop().code(), Some(0));
    assert_eq!(xdp_attached("a"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// 3. Reload.
// ---------------------------------------------------------------------------------------

const NODE_C: &str = "  - name: node-c\n    ip: 198.18.0.3\n    pod_cidr: 10.0.3.0/24\n";

fn with_node_c(t: &str) -> String {
    t.replace(
        "    pod_cidr: 10.0.2.0/24\n",
        &format!("    pod_cidr: 10.0.2.0/24\n{NODE_C}"),
    )
}

/// `podfwd reload` and SIGHUP under TCP load: nodes come and go without restarting
/// workers; a bad config and an interface change are refused (exit 1, file:line) and the
/// running config stays; a node's IP change applies and reverts.
#[test]
fn reload_under_load_applies_nodes_and_refuses_bad_configs() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let base = std::fs::read_to_string(config("node-a.tunnel.yaml")).unwrap();
    let cfg = TempCfg::new("reload", "node-a.tunnel.yaml", |t| t);
    let a = Podfwd::start("a", cfg.path());
    let b = Podfwd::start("b", &config("node-b.tunnel.yaml"));
    let pid = podfwd_pid("a").unwrap();

    let (base_bytes, base_retr) = Flow::start("a0", "b0", "10.0.2.2", 4).finish();
    let s0 = a.status();
    let flow = Flow::start("a0", "b0", "10.0.2.2", 8);
    sleep(Duration::from_secs(1));
    let mut reloads = 0;
    for i in 0..6 {
        // Add node-c with `podfwd reload`, remove it with SIGHUP, three times.
        if i % 2 == 0 {
            cfg.write(&with_node_c(&base));
            let o = reload("a");
            assert!(o.status.success(), "{}", err(&o));
            assert_eq!(stdout(&o), format!("reloaded {}\n", cfg.path().display()));
            assert_eq!(a.status()["nodes"].as_array().unwrap().len(), 2);
        } else {
            cfg.write(&base);
            run(Command::new("kill").args(["-HUP", &pid.to_string()]));
            assert!(
                within(3, || status_of("a")["nodes"].as_array().unwrap().len() == 1).is_some(),
                "SIGHUP reload not applied"
            );
        }
        reloads += 1;
        sleep(Duration::from_millis(700));
    }
    let (bytes, retr) = flow.finish();
    let s1 = a.status();
    eprintln!(
        "reload: baseline 4 s {base_bytes} bytes / {base_retr} retransmits; with {reloads} reloads in 8 s {bytes} bytes / {retr} retransmits; drops {:?}",
        delta(&s0, &s1, "drops").into_iter().filter(|(_, v)| *v > 0).collect::<Vec<_>>()
    );
    assert!(
        bytes > 20_000_000,
        "TCP during reloads moved only {bytes} bytes"
    );
    assert_eq!(u(&s1["reloads"]["success"]), reloads);
    let d = delta(&s0, &s1, "drops");
    assert_eq!(
        d["no_route"] + d["no_neighbour"],
        0,
        "a reload lost frames: {d:?}"
    );
    assert!(
        u(&s1["workers"][0]["generation"]) > u(&s0["workers"][0]["generation"]),
        "workers use the new snapshot"
    );

    // A bad config: refused, file:line named, running config kept.
    cfg.write(&base.replace("ip: 198.18.0.2\n", "ip: 198.18.0.300\n"));
    let o = reload("a");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains(&format!(
            "error: reload refused: {}:28:9: nodes[0].ip: `198.18.0.300` is not an IPv4 address",
            cfg.path().display()
        )),
        "{}",
        err(&o)
    );
    let s = a.status();
    assert_eq!(u(&s["reloads"]["failure"]), 1);
    assert!(
        s["reloads"]["last_error"]
            .as_str()
            .unwrap()
            .contains(":28:9: nodes[0].ip"),
        "{s}"
    );
    assert_eq!(ping("a0", "10.0.2.2", 3), 3, "running config kept");

    // Adding an endpoint (interface) needs new sockets in the workers: refused, clearly.
    cfg.write(&base.replace(
        "    interface: lxc1\n",
        "    interface: lxc1\n  - ip: 10.0.1.4\n    interface: lxc2\n",
    ));
    let o = reload("a");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains(&format!(
            "{}: the interface set changed (was eth0,lxc0,lxc1, now eth0,lxc0,lxc1,lxc2); adding or removing interfaces needs a restart, or `podfwd endpoint add|del`",
            cfg.path().display()
        )),
        "{}",
        err(&o)
    );
    // Moving a pod IP on an attached interface is fine.
    cfg.write(&base.replace("ip: 10.0.1.3\n", "ip: 10.0.1.9\n"));
    assert!(reload("a").status.success());
    assert_eq!(
        ping("a1", "10.0.2.2", 2),
        0,
        "a1's old IP is no longer its endpoint"
    );
    cfg.write(&base);
    assert!(reload("a").status.success());
    assert!(
        within(5, || ping("a1", "10.0.2.2", 1) == 1).is_some(),
        "a1 back"
    );

    // A node's IP changes: traffic follows the config (here to an address nobody has,
    // so it stops and is counted), then comes back.
    let before = a.status();
    cfg.write(&base.replace("ip: 198.18.0.2\n", "ip: 198.18.0.9\n"));
    assert!(reload("a").status.success());
    assert_eq!(ping("a0", "10.0.2.2", 3), 0);
    let after = a.status();
    assert!(
        delta(&before, &after, "drops")["no_neighbour"] >= 3,
        "{after}"
    );
    assert_eq!(after["ready"], false);
    assert!(
        after["not_ready_reason"]
            .as_str()
            .unwrap()
            .contains("node-b"),
        "{after}"
    );
    cfg.write(&base);
    assert!(reload("a").status.success());
    assert!(
        within(5, || ping("a0", "10.0.2.2", 1) == 1).is_some(),
        "node-b back"
    );
    assert_eq!(a.stop().code(), Some(0));
    assert_eq!(b.stop().code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 4. Recovery.
// ---------------------------------------------------------------------------------------

/// The uplink goes down and up; the remote node's MAC changes; a pod's veth is deleted
/// and re-created.
#[test]
fn recovers_from_uplink_flap_and_mac_change_and_recreated_veth() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    let b = Podfwd::start("b", &config("node-b.tunnel.yaml"));

    // Uplink down: not ready, says why; up: forwarding recovers by itself.
    nsx("a", &["ip", "link", "set", "eth0", "down"]);
    assert!(
        within(4, || status_of("a")["not_ready_reason"]
            .as_str()
            .unwrap_or("")
            .contains("interface eth0 is down"))
        .is_some(),
        "{}",
        a.status()
    );
    assert_eq!(ping("a0", "10.0.2.2", 2), 0);
    nsx("a", &["ip", "link", "set", "eth0", "up"]);
    let t = within(15, || ping("a0", "10.0.2.2", 1) == 1)
        .expect("forwarding after the uplink came back");
    eprintln!("uplink flap: forwarding back {t:?} after link up");
    assert!(within(4, || status_of("a")["ready"] == true).is_some());

    // Node b's MAC changes: node a's next hop follows within seconds, frames on the wire
    // carry the new MAC, node b's own outer source MAC too.
    let new_mac = "02:00:c6:12:00:99";
    nsx("b", &["ip", "link", "set", "eth0", "address", new_mac]);
    let t = within(10, || {
        let _ = ping("a0", "10.0.2.2", 1);
        status_of("a")["nodes"][0]["mac"] == new_mac
    })
    .expect("node a never learned node b's new MAC");
    eprintln!("MAC change: node a's next hop updated after {t:?}");
    assert!(within(4, || status_of("b")["interfaces"][0]["mac"] == new_mac).is_some());
    let cap = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns("u"),
            "tshark",
            "-l",
            "-n",
            "-i",
            "ub",
            "-c",
            "2",
            "-a",
            "duration:8",
        ])
        .args([
            "-f",
            &format!("ether dst {new_mac} and udp port 8472"),
            "-T",
            "fields",
            "-e",
            "eth.dst",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(2500));
    assert_eq!(ping("a0", "10.0.2.2", 3), 3);
    assert_eq!(
        capture_lines(cap).len(),
        2,
        "VXLAN to node b's new MAC on the wire"
    );

    // lxc1 deleted: reported (log, not ready, reason). Re-created: podfwd attaches it
    // again by itself (XDP program, a new socket in the worker, XSKMAP), the pod behind
    // it forwards again to a remote and a same-node pod, /readyz is ready, the recovery
    // is counted once, and at stop every UMEM frame is accounted for (the old socket's
    // frames came back).
    let lxc1_rx = |j: &Value| u(&j["interfaces"][2]["rx_packets"]);
    assert_eq!(status_of("a")["interfaces"][2]["name"], "lxc1");
    nsx("a", &["ip", "link", "del", "lxc1"]);
    assert!(
        within(4, || status_of("a")["not_ready_reason"]
            .as_str()
            .unwrap_or("")
            .contains("interface lxc1 is gone"))
        .is_some(),
        "{}",
        a.status()
    );
    run(Command::new("ip").args([
        "link",
        "add",
        "lxc1",
        "netns",
        &ns("a"),
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &ns("a1"),
    ]));
    nsx(
        "a1",
        &[
            "ip",
            "link",
            "set",
            "eth0",
            "address",
            "02:00:0a:00:01:03",
            "mtu",
            "1450",
            "up",
        ],
    );
    nsx("a1", &["ip", "addr", "add", "10.0.1.3/32", "dev", "eth0"]);
    nsx(
        "a1",
        &[
            "ip",
            "route",
            "add",
            "169.254.1.1",
            "dev",
            "eth0",
            "scope",
            "link",
        ],
    );
    nsx(
        "a1",
        &[
            "ip",
            "route",
            "add",
            "default",
            "via",
            "169.254.1.1",
            "dev",
            "eth0",
        ],
    );
    nsx(
        "a",
        &[
            "ip",
            "addr",
            "add",
            "169.254.1.1/32",
            "dev",
            "lxc1",
            "scope",
            "link",
        ],
    );
    nsx("a", &["ip", "link", "set", "lxc1", "up"]);
    nsx(
        "a",
        &[
            "ip",
            "route",
            "replace",
            "10.0.1.3/32",
            "dev",
            "lxc1",
            "src",
            "198.18.0.1",
        ],
    );
    assert_eq!(ping("a0", "10.0.2.2", 3), 3, "other pods unaffected");
    // Node a has no kernel route to node b's PodCIDR: a reply proves podfwd forwarded.
    let t = within(10, || ping("a1", "10.0.2.2", 1) == 1).unwrap_or_else(|| {
        panic!(
            "a1 -> remote pod never worked after lxc1 was re-created; status {}\nlog:\n{}",
            a.status(),
            a.log_text()
        )
    });
    eprintln!("re-created lxc1: forwarding back {t:?} after the pod side was set up");
    let before = status_of("a");
    assert_eq!(ping("a1", "10.0.2.2", 3), 3, "a1 -> remote pod");
    assert_eq!(ping("a1", "10.0.1.2", 3), 3, "a1 -> same-node pod");
    assert_eq!(ping("a0", "10.0.1.3", 3), 3, "same-node pod -> a1");
    let after = status_of("a");
    assert!(
        lxc1_rx(&after) >= lxc1_rx(&before) + 9,
        "the pings went through podfwd's new socket on lxc1: {before} {after}"
    );
    assert!(
        within(4, || status_of("a")["ready"] == true).is_some(),
        "{}",
        a.status()
    );
    let st = status_of("a");
    assert_eq!(st["interfaces"][2]["recoveries"], 1, "{st}");
    assert_eq!(st["interfaces"][1]["recoveries"], 0, "{st}");
    let m = a.metrics();
    assert!(
        m.lines()
            .any(|l| l == "podfwd_interface_recoveries_total{interface=\"lxc1\"} 1"),
        "{m}"
    );
    assert_eq!(ping("a0", "10.0.2.2", 3), 3, "other pods unaffected");
    let log = a.log_text();
    assert!(
        log.contains("interface lxc1 is gone")
            && log.contains("interface lxc1 re-created (ifindex")
            && log.contains("forwarding resumed"),
        "{log}"
    );
    assert_eq!(
        log.matches("forwarding resumed").count(),
        1,
        "one recovery, one line: {log}"
    );
    let (status, log) = a.stop_with_log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("frame accounting ok") && !log.contains("MISMATCH"),
        "frame accounting after the recovery: {log}"
    );
    assert_eq!(b.stop().code(), Some(0));
    assert_eq!(xdp_attached("a"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// 5. kill -9 under load.
// ---------------------------------------------------------------------------------------

#[test]
fn kill_9_under_load_leaves_no_program_and_restart_forwards() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    let b = Podfwd::start("b", &config("node-b.tunnel.yaml"));
    let flow = Flow::start("a0", "b0", "10.0.2.2", 10);
    sleep(Duration::from_secs(2));
    assert_eq!(xdp_attached("a").len(), 3);
    let pid = podfwd_pid("a").unwrap();
    run(Command::new("kill").args(["-KILL", &pid.to_string()]));
    let t =
        within(5, || xdp_attached("a").is_empty()).expect("XDP programs left behind after kill -9");
    eprintln!("kill -9: programs gone after {t:?}");
    drop(a);
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    let (bytes, retr) = flow.finish();
    eprintln!("kill -9: flow across the restart {bytes} bytes, {retr} retransmits");
    assert!(
        bytes > 5_000_000,
        "flow across the restart moved only {bytes} bytes"
    );
    assert_eq!(ping("a0", "10.0.2.2", 3), 3);
    assert!(iperf("a0", "b0", "10.0.2.2", 3) > 10_000_000);
    assert_eq!(a.stop().code(), Some(0));
    assert_eq!(b.stop().code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 6. MTU.
// ---------------------------------------------------------------------------------------

#[test]
fn tunnel_pmtu_for_1500_pods_and_none_for_1450() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1500);
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    let b = Podfwd::start("b", &config("node-b.tunnel.yaml"));

    let o = nsx(
        "a0",
        &[
            "ping", "-M", "do", "-s", "1472", "-c", "2", "-i", "0.3", "-W", "1", "10.0.2.2",
        ],
    );
    assert!(
        stdout(&o).contains("From 198.18.0.1 icmp_seq=1 Frag needed and DF set (mtu = 1450)"),
        "{}",
        stdout(&o)
    );
    let s0 = a.status();
    assert_eq!(ping_sized("a1", "10.0.2.3", "dont", 3), 0);
    let s1 = a.status();
    assert_eq!(delta(&s0, &s1, "drops")["frame_too_big"], 3, "{s1}");

    let bytes = iperf("a0", "b0", "10.0.2.2", 4);
    assert!(
        bytes > 10_000_000,
        "TCP at pod MTU 1500 over a 1500 underlay: {bytes} bytes"
    );
    let s2 = a.status();
    assert!(u(&s2["actions"]["icmp_frag_needed"]) >= 1, "{s2}");

    topology(&["pod-mtu", "1450"]);
    let bytes = iperf("a1", "b1", "10.0.2.3", 3);
    assert!(bytes > 10_000_000);
    let s3 = a.status();
    assert_eq!(
        delta(&s2, &s3, "actions")["icmp_frag_needed"],
        0,
        "pods at 1450 never need one"
    );
    assert_eq!(delta(&s2, &s3, "drops")["frame_too_big"], 0);
    assert_eq!(a.stop().code(), Some(0));
    assert_eq!(b.stop().code(), Some(0));
}

fn ping_sized(from: &str, dst: &str, pmtu: &str, count: u32) -> u32 {
    ping_with(from, dst, count, &["-M", pmtu, "-s", "1472"])
}

// ---------------------------------------------------------------------------------------
// 7. Soak, bounded (the full one: `scripts/soak 600`).
// ---------------------------------------------------------------------------------------

#[test]
fn soak_60s_counters_add_up_and_memory_stays_flat() {
    require_root!();
    let _g = lock();
    let o = run(Command::new(root().join("scripts/soak"))
        .arg("60")
        .env("PF", pf())
        .env("PODFWD", bin()));
    let text = stdout(&o);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("soak: "))
        .unwrap_or_else(|| panic!("no summary from scripts/soak:\n{text}\n{}", err(&o)));
    eprintln!("{text}");
    let j: Value = serde_json::from_str(line).unwrap();
    assert!(
        o.status.success(),
        "soak failed: {:#}\n{}",
        j["failures"],
        err(&o)
    );
    assert_eq!(j["failures"], serde_json::json!([]));
    assert_eq!(j["reloads"], 3, "reloads at 15, 30 and 45 s");
    assert_eq!(j["inject_rounds"], 5, "hostile frames at 10..50 s");
    assert!(u(&j["bytes"]) > 100_000_000, "{j}");
    for n in ["a", "b"] {
        assert_eq!(j["nodes"][n]["received"], j["nodes"][n]["accounted"], "{j}");
        assert!(u(&j["nodes"][n]["received"]) > 10_000, "{j}");
    }
}
