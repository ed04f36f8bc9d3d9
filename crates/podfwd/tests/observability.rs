//! Observability end to end: a real Prometheus scraping podfwd in a node namespace,
//! `promtool check metrics` on a real scrape, /healthz and /readyz, `podfwd status`
//! (human, JSON, rates), counters that never go backwards under traffic, and the
//! `--log-level` flag.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const METRICS: &str = "http://127.0.0.1:9475";
const PROM: &str = "http://127.0.0.1:9090";

/// A Prometheus server in a node namespace; killed and its directory removed on drop
/// (also on panic).
struct Prometheus {
    child: Option<Child>,
    dir: PathBuf,
    node: String,
    /// podfwd's log in that namespace, shown when a query does not give what we wait for.
    podfwd_log: PathBuf,
}

impl Prometheus {
    fn start(node: &str, podfwd: &Podfwd) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("podfwd-obs-prom-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("data")).unwrap();
        let cfg = dir.join("prometheus.yml");
        fs::write(
            &cfg,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: podfwd\n    scrape_timeout: 1s\n    \
             static_configs:\n      - targets: ['127.0.0.1:9475']\n",
        )
        .unwrap();
        let log = fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns(node), "prometheus"])
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .args(["--web.listen-address=127.0.0.1:9090", "--log.level=warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus (Debian package `prometheus`)");
        let p = Prometheus {
            child: Some(child),
            dir,
            node: node.to_owned(),
            podfwd_log: podfwd.log.clone(),
        };
        let start = Instant::now();
        while !nsx(node, &["curl", "-sf", &format!("{PROM}/-/ready")])
            .status
            .success()
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "prometheus not ready after 30 s: {}",
                p.log()
            );
            sleep(Duration::from_millis(250));
        }
        p
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query; returns `data.result`.
    fn query(&self, q: &str) -> Vec<Value> {
        let o = nsx(
            &self.node,
            &[
                "curl",
                "-sf",
                "-G",
                &format!("{PROM}/api/v1/query"),
                "--data-urlencode",
                &format!("query={q}"),
            ],
        );
        assert!(
            o.status.success(),
            "query {q} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["status"], "success", "{q}: {j}");
        j["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Poll `q` until `ok(result)` holds (at most `secs`); returns the last result.
    fn wait_for(&self, q: &str, secs: u64, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let r = self.query(q);
            if ok(&r) {
                return r;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "prometheus query `{q}` still gives {r:?} after {secs} s; targets: {}; prometheus log:\n{}\npodfwd log:\n{}",
                stdout(&nsx(&self.node, &["curl", "-s", &format!("{PROM}/api/v1/targets")])),
                self.log(),
                fs::read_to_string(&self.podfwd_log).unwrap_or_default()
            );
            sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The value of a query result's sample.
fn value(r: &Value) -> f64 {
    r["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// GET `path` on podfwd's listener in namespace `node`: (status code, body).
fn get(node: &str, path: &str) -> (u16, String) {
    let o = nsx(
        node,
        &[
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            &format!("{METRICS}{path}"),
        ],
    );
    let text = stdout(&o);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Every sample of a scrape: `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {l}"));
            (
                k.to_owned(),
                v.parse().unwrap_or_else(|_| panic!("bad value in {l}")),
            )
        })
        .collect()
}

/// Counter families (from the TYPE lines) of a scrape.
fn counters(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .map(str::to_owned)
        .collect()
}

/// A real Prometheus in node a's namespace scrapes podfwd and sees its counters move.
#[test]
fn prometheus_scrapes_podfwd_and_sees_traffic() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    let _b = Podfwd::start("b", &config("node-b.tunnel.yaml"));
    let prom = Prometheus::start("a", &a);

    prom.wait_for(r#"up{job="podfwd"} == 1"#, 30, |r| r.len() == 1);
    // Every drop reason is there, as one labelled family.
    let r = prom.wait_for("count(podfwd_drops_total)", 10, |r| !r.is_empty());
    #[allow(clippy::cast_precision_loss)]
    let reasons = pipeline::DropReason::COUNT as f64;
    assert_eq!(
        value(&r[0]),
        reasons,
        "one podfwd_drops_total series per DropReason"
    );
    let r = prom.query(r#"podfwd_build_info{mode="tunnel",node="node-a"}"#);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(prom.query("podfwd_ready == 1").len(), 1);

    // Traffic: pings across nodes and on the node, then TCP.
    assert_eq!(ping("a0", "10.0.2.2", 5), 5);
    assert_eq!(ping("a0", "10.0.1.3", 3), 3);
    // iperf3's server may start late when the machine is busy: try again.
    let bytes = (0..3)
        .map(|_| iperf("a0", "b0", "10.0.2.2", 2))
        .find(|b| *b > 1_000_000);
    assert!(bytes.is_some(), "iperf3 a0 -> b0 moved nothing in 3 tries");

    let moved = |q: &str| {
        prom.wait_for(q, 20, |r| !r.is_empty());
    };
    moved(r#"increase(podfwd_actions_total{action="encapsulated"}[1m]) > 1000"#);
    moved(r#"increase(podfwd_actions_total{action="decapsulated"}[1m]) > 0"#);
    moved(r#"increase(podfwd_actions_total{action="delivered_local"}[1m]) > 0"#);
    moved(
        r#"increase(podfwd_interface_packets_total{interface="eth0",direction="tx"}[1m]) > 1000"#,
    );
    moved(
        r#"increase(podfwd_interface_bytes_total{interface="lxc0",direction="rx"}[1m]) > 1000000"#,
    );
    moved(r#"increase(podfwd_worker_batches_total{worker="0"}[1m]) > 0"#);
    moved(r#"increase(podfwd_worker_tx_wakeups_total[1m]) > 0"#);
    // Partial checksums from the pods: left to the kernel's offload where the kernel has
    // AF_XDP TX metadata (offload.tx_checksum auto), else completed; the gauge says which.
    moved(
        "(podfwd_worker_tx_checksum_offload == 1 and on() increase(podfwd_checksums_offloaded_total[1m]) > 0) \
         or (podfwd_worker_tx_checksum_offload == 0 and on() increase(podfwd_checksums_completed_total[1m]) > 0)",
    );
    moved(r#"podfwd_neighbours{kind="node",state="resolved"} == 1"#);
    moved("podfwd_umem_frames_in_use > 0");
    moved("podfwd_worker_heartbeat_age_seconds < 2");
    // Prometheus never saw a counter go backwards (one query per counter family:
    // resets() drops the name, so families sharing label sets cannot go in one query).
    let families = counters(&get("a", "/metrics").1);
    assert!(families.len() >= 20, "{families:?}");
    for f in &families {
        let resets = prom.query(&format!("resets({f}[5m]) > 0"));
        assert!(
            resets.is_empty(),
            "{f}: counter resets seen by Prometheus: {resets:?}"
        );
    }
    // Our recording rules' expressions work on real data.
    let rules = fs::read_to_string(root().join("config/podfwd.rules.yml")).unwrap();
    assert!(rules.contains("podfwd_umem_frames_in_use / podfwd_umem_frames"));
    let r = prom.query("podfwd_umem_frames_in_use / podfwd_umem_frames");
    assert!(
        r.len() == 1 && value(&r[0]) > 0.0 && value(&r[0]) < 1.0,
        "{r:?}"
    );
}

/// A real scrape passes `promtool check metrics`; /healthz, /readyz; counters only grow
/// across scrapes under traffic; `podfwd status` shows what it should, with rates.
#[test]
fn scrape_health_status_and_monotonic_counters() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1500);
    let a = Podfwd::start("a", &config("node-a.native.yaml"));
    let _b = Podfwd::start("b", &config("node-b.native.yaml"));

    assert_eq!(get("a", "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(get("a", "/readyz"), (200, "ready\n".to_owned()));
    assert_eq!(
        get("a", "/metrics?name=x").0,
        200,
        "a query string is ignored"
    );
    assert_eq!(get("a", "/nope").0, 404);

    assert_eq!(ping("a0", "10.0.2.2", 3), 3);
    let traffic = Flow::start("a0", "b0", "10.0.2.2", 30); // stopped at the end: outlasts a loaded machine's slow steps
    sleep(Duration::from_millis(1000));

    // promtool: a scrape under traffic is valid and lint-clean (no output at all).
    let o = run(Command::new("ip")
        .args(["netns", "exec", &ns("a"), "sh", "-c"])
        .arg(format!(
            "curl -sf {METRICS}/metrics | promtool check metrics"
        )));
    let out = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(
        o.status.success() && out.trim().is_empty(),
        "promtool check metrics: {out}"
    );

    // Counters never go backwards: many scrapes under traffic, every pair checked.
    let mut prev = samples(&a.metrics());
    let families = counters(&a.metrics());
    assert!(
        families.iter().all(|f| f.ends_with("_total")),
        "{families:?}"
    );
    for f in [
        "podfwd_interface_packets_total",
        "podfwd_drops_total",
        "podfwd_worker_tx_wakeups_total",
        "podfwd_xsk_rx_ring_full_total",
    ] {
        assert!(
            families.iter().any(|x| x == f),
            "{f} missing from {families:?}"
        );
    }
    let first = prev.clone();
    for _ in 0..10 {
        sleep(Duration::from_millis(150));
        let next = samples(&a.metrics());
        for (k, v) in &next {
            let name = k.split('{').next().unwrap();
            if !families.iter().any(|f| f == name) {
                continue;
            }
            let before = prev.get(k).copied().unwrap_or(0.0);
            assert!(*v >= before, "counter {k} went backwards: {before} -> {v}");
        }
        prev = next;
    }
    let key = r#"podfwd_actions_total{action="routed_native"}"#;
    assert!(prev[key] > first[key], "{key} did not move under traffic");
    let up_key = r#"podfwd_interface_bytes_total{interface="eth0",direction="tx"}"#;
    assert!(
        prev[up_key] > first[up_key],
        "{up_key} did not move under traffic"
    );

    // `podfwd status`: human summary with rates (default 1 s interval).
    let o = nsx("a", &[bin().to_str().unwrap(), "status"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h = stdout(&o);
    for want in [
        "on node-a — mode native",
        "healthy, ready",
        "routes: generation ",
        "3 prefixes, 2 local endpoints (2 with a known MAC), 1 remote nodes",
        "  node node-b       198.18.0.2      10.0.2.0/24        native next hop ",
        "interfaces:",
        "  eth0     uplink xdp ",
        "  lxc0     pod    xdp ",
        "pod 10.0.1.2",
        "rates over 1.",
        "workers:",
        "  worker 0 cpu - heartbeat ",
        "actions: ",
        "routed_native=",
        "kernel socket drops",
        "reloads: 0 ok, 0 refused",
    ] {
        assert!(h.contains(want), "`podfwd status` lacks {want:?}:\n{h}");
    }
    assert!(
        h.contains("drops: none") || h.contains("top drops: "),
        "{h}"
    );
    // lxc0 carries the iperf3 client: its rx rate is not zero.
    let lxc0 = h
        .lines()
        .find(|l| l.trim_start().starts_with("lxc0     rx"))
        .unwrap_or_else(|| panic!("{h}"));
    assert!(!lxc0.contains("rx        0 pps"), "{lxc0}");

    // --json: one sample by default, rates with --interval.
    let j = a.status();
    for k in [
        "node",
        "mode",
        "version",
        "time_ms",
        "uptime_s",
        "healthy",
        "ready",
        "generation",
        "prefixes",
        "endpoints",
        "endpoints_resolved",
        "nodes",
        "interfaces",
        "workers",
        "actions",
        "drops",
        "passed",
        "checksums_completed",
        "checksums_offloaded",
        "reloads",
        "steering",
    ] {
        assert!(!j[k].is_null(), "status --json lacks {k}: {j}");
    }
    assert!(j["rates"].is_null(), "no rates without --interval");
    assert_eq!(j["mode"], "native");
    assert_eq!(j["healthy"], true);
    assert_eq!(
        j["drops"].as_object().unwrap().len(),
        pipeline::DropReason::COUNT
    );
    let w = &j["workers"][0];
    for k in [
        "id",
        "heartbeat_age_ms",
        "batches",
        "busy_polls",
        "idle_polls",
        "sleeps",
        "tx_wakeups",
        "rx_wakeups",
        "umem_in_use",
        "umem_frames",
        "generation",
    ] {
        assert!(w[k].is_u64(), "worker field {k}: {w}");
    }
    let p = &j["interfaces"][0];
    for k in [
        "name",
        "role",
        "mac",
        "mtu",
        "xdp_mode",
        "rx_packets",
        "rx_bytes",
        "tx_packets",
        "tx_bytes",
        "xsk_rx_dropped",
        "xsk_rx_ring_full",
        "xsk_fill_ring_empty",
    ] {
        assert!(!p[k].is_null(), "interface field {k}: {p}");
    }
    let o = nsx(
        "a",
        &[
            bin().to_str().unwrap(),
            "status",
            "--json",
            "--interval",
            "0.5",
        ],
    );
    assert!(o.status.success());
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &j["rates"];
    assert!(r["interval_s"].as_f64().unwrap() >= 0.4, "{r}");
    let eth0 = r["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap();
    assert!(
        eth0["tx_pps"].as_f64().unwrap() > 0.0 && eth0["tx_bps"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert!(r["forwarded_pps"].as_f64().unwrap() > 0.0, "{r}");
    drop(traffic);
}

/// A node whose next hop cannot be resolved: alive but not ready, and everything says
/// why; `--log-level` selects the log level.
#[test]
fn unresolved_node_is_not_ready_and_said_everywhere() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1500);
    let cfg = std::env::temp_dir().join(format!("podfwd-obs-unready-{}.yaml", std::process::id()));
    let text = fs::read_to_string(config("node-a.native.yaml")).unwrap();
    let text = text.replacen(
        "    pod_cidr: 10.0.2.0/24\n",
        "    pod_cidr: 10.0.2.0/24\n  - name: node-c\n    ip: 198.18.0.9\n    pod_cidr: 10.0.3.0/24\n",
        1,
    );
    assert!(text.contains("node-c"));
    fs::write(&cfg, text).unwrap();
    let log = std::env::temp_dir().join(format!("podfwd-obs-unready-{}.log", std::process::id()));
    let child = Command::new("ip")
        .args(["netns", "exec", &ns("a")])
        .arg(bin())
        .args(["run", "--log-level", "podfwd=debug", "--config"])
        .arg(&cfg)
        .env("PODFWD_LOG", "error")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    struct Kill(Child, Vec<PathBuf>);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.0.try_wait() {
                    break;
                }
                sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
            for f in &self.1 {
                let _ = fs::remove_file(f);
            }
        }
    }
    let guard = Kill(child, vec![cfg.clone(), log.clone()]);

    // Up and healthy, but not ready while node-c's next hop is unknown.
    let start = Instant::now();
    while get("a", "/healthz").0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        sleep(Duration::from_millis(200));
    }
    sleep(Duration::from_millis(1500));
    let (code, body) = get("a", "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("next hop not resolved for node(s) node-c"),
        "{body}"
    );
    assert_eq!(get("a", "/healthz").0, 200);

    let m = samples(&get("a", "/metrics").1);
    assert_eq!(m["podfwd_ready"], 0.0);
    assert_eq!(m["podfwd_healthy"], 1.0);
    assert_eq!(m[r#"podfwd_neighbours{kind="node",state="missing"}"#], 1.0);
    assert_eq!(m[r#"podfwd_neighbours{kind="node",state="resolved"}"#], 1.0);
    assert_eq!(m["podfwd_route_nodes"], 2.0);

    let o = nsx("a", &[bin().to_str().unwrap(), "status", "--interval", "0"]);
    let h = stdout(&o);
    assert!(
        h.contains("NOT READY (next hop not resolved for node(s) node-c)"),
        "{h}"
    );
    assert!(
        h.contains(
            "  node node-c       198.18.0.9      10.0.3.0/24        native next hop MISSING"
        ),
        "{h}"
    );
    assert!(
        !h.contains("rates over"),
        "--interval 0 takes one sample: {h}"
    );

    // --log-level overrides PODFWD_LOG: podfwd's debug lines are there.
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("DEBUG podfwd::control::start] attached XDP steering to eth0"),
        "{text}"
    );
    drop(guard);
}
