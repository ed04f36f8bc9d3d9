//! The namespace test bed for end-to-end tests: real namespaces, real packets.
//!
//! Every test that touches the network takes [`lock`], builds the bed with
//! `scripts/topology` under the prefix `pft`, and tears it down on drop (also on panic).
#![allow(dead_code)]

pub mod transfer;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Namespace prefix: `PODFWD_TEST_PF`, else the suite's own default ([`set_default_pf`]),
/// else `pft` (so suites run side by side can use different ones).
pub fn pf() -> String {
    std::env::var("PODFWD_TEST_PF")
        .unwrap_or_else(|_| DEFAULT_PF.get().copied().unwrap_or("pft").to_owned())
}

static DEFAULT_PF: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// A suite whose bed must not collide with the others' (e.g. the routed bed, `pfo`) sets
/// its default prefix before it builds anything; the first call wins.
pub fn set_default_pf(prefix: &'static str) {
    let _ = DEFAULT_PF.set(prefix);
}

static LOCK: Mutex<()> = Mutex::new(());

/// Serialise namespace tests (they share names and CPUs).
pub fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Skip (with a printed reason) unless root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            // scripts/test (and so CI) sets this: there, a skipped namespace test is a failure.
            assert!(
                std::env::var_os("PODFWD_REQUIRE_NETNS").is_none(),
                "namespace tests need root, and PODFWD_REQUIRE_NETNS is set"
            );
            eprintln!("skipped: namespace tests need root");
            return;
        }
    };
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_podfwd"))
}

pub fn ns(name: &str) -> String {
    format!("{}-{name}", pf())
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

/// Run in namespace `n` (a, b, a0, ...), returning the output.
pub fn nsx(n: &str, args: &[&str]) -> Output {
    run(Command::new("ip")
        .args(["netns", "exec", &ns(n)])
        .args(args))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn topology(args: &[&str]) {
    let out = run(Command::new(root().join("scripts/topology"))
        .args(args)
        .env("PF", pf()));
    assert!(
        out.status.success(),
        "topology {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace bed; torn down on drop.
pub struct Bed;

impl Bed {
    pub fn up(pod_mtu: u16) -> Bed {
        topology(&["up", "--pod-mtu", &pod_mtu.to_string()]);
        Bed
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/topology"))
            .arg("down")
            .env("PF", pf())
            .status();
    }
}

/// ping from a namespace; returns the number of replies.
pub fn ping(from: &str, dst: &str, count: u32) -> u32 {
    ping_with(from, dst, count, &[])
}

/// [`ping`] with extra options (e.g. `-M do -s 1472`); returns the number of replies.
pub fn ping_with(from: &str, dst: &str, count: u32, extra: &[&str]) -> u32 {
    let count = count.to_string();
    let mut args = vec!["ping"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-c", &count, "-i", "0.2", "-W", "1", "-q", dst]);
    let out = nsx(from, &args);
    // "5 packets transmitted, 5 received, 0% packet loss, ..."
    stdout(&out)
        .lines()
        .find_map(|l| {
            l.split(", ")
                .nth(1)
                .filter(|r| r.ends_with("received"))
                .and_then(|r| r.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A running podfwd in a node namespace; SIGTERM and wait on drop.
pub struct Podfwd {
    pub node: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Podfwd {
    pub fn start(node: &str, config: &Path) -> Podfwd {
        Self::start_with_env(node, config, &[])
    }

    /// [`Podfwd::start`] with extra environment variables (e.g. `PODFWD_XSK_SNDBUF`).
    pub fn start_with_env(node: &str, config: &Path, env: &[(&str, &str)]) -> Podfwd {
        let log =
            std::env::temp_dir().join(format!("podfwd-e2e-{node}-{}.log", std::process::id()));
        let f = fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns(node)])
            .arg(bin())
            .args(["run", "--config"])
            .arg(config)
            .env("PODFWD_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("start podfwd");
        let p = Podfwd {
            node: node.to_owned(),
            child: Some(child),
            log,
        };
        p.wait_ready();
        p
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until podfwd is ready and knows the MAC of every endpoint (15 s at most).
    pub fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            let o = nsx(&self.node, &[bin().to_str().unwrap(), "status", "--json"]);
            if o.status.success() {
                let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                if j["ready"] == true && j["endpoints_resolved"] == j["endpoints"] {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "podfwd on {} not ready after 15 s; log:\n{}",
                self.node,
                self.log_text()
            );
            sleep(Duration::from_millis(200));
        }
    }

    pub fn status(&self) -> serde_json::Value {
        let o = nsx(&self.node, &[bin().to_str().unwrap(), "status", "--json"]);
        assert!(
            o.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    pub fn metrics(&self) -> String {
        let o = nsx(
            &self.node,
            &["curl", "-sf", "http://127.0.0.1:9475/metrics"],
        );
        assert!(o.status.success());
        stdout(&o)
    }

    /// SIGTERM, then wait (at most 10 s) for the exit status.
    pub fn stop(self) -> ExitStatus {
        self.stop_with_log().0
    }

    /// [`Podfwd::stop`], and the whole log it wrote (its last lines come at exit).
    pub fn stop_with_log(mut self) -> (ExitStatus, String) {
        let status = self
            .terminate()
            .expect("podfwd did not exit within 10 s of SIGTERM");
        (status, self.log_text())
    }

    fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Podfwd {
    fn drop(&mut self) {
        let _ = self.terminate();
        // Keep the log of a failed test for its report; remove it otherwise.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Interfaces of a namespace that hold an XDP program.
pub fn xdp_attached(n: &str) -> Vec<String> {
    let text = stdout(&nsx(n, &["ip", "-o", "link", "show"]));
    text.lines()
        .filter(|l| l.contains(" xdp") || l.contains("prog/xdp"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        .collect()
}

/// Start a capture on the underlay switch port toward node a; returns the child.
pub fn capture_underlay(filter: &str, count: u32) -> Child {
    let limits = [
        "-c".to_owned(),
        count.to_string(),
        "-a".to_owned(),
        "duration:10".to_owned(),
    ];
    let fields = ["ip.src", "ip.dst", "udp.dstport", "vxlan.vni", "icmp.type"];
    tshark_on("u", &["ua"], filter, &limits, &fields)
}

/// tshark on interfaces `ifaces` of namespace `n` with `filter`, stopped by `limits`
/// (`-c N`, `-a duration:S`), printing `fields` separated by `|`; returns once it
/// captures.
pub fn tshark_on(
    n: &str,
    ifaces: &[&str],
    filter: &str,
    limits: &[String],
    fields: &[&str],
) -> Child {
    let mut cmd = Command::new("ip");
    // -f before the first -i: the capture filter of every interface.
    cmd.args(["netns", "exec", &ns(n), "tshark", "-l", "-n", "-f", filter]);
    for i in ifaces {
        cmd.args(["-i", i]);
    }
    cmd.args(limits).args([
        "-d",
        "udp.port==8472,vxlan",
        "-T",
        "fields",
        "-E",
        "separator=|",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let mut c = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark");
    // tshark says "Capturing on ..." once it captures; keep draining its stderr after.
    let (tx, rx) = mpsc::channel();
    let err = c.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("Capturing on") {
                let _ = tx.send(());
            }
        }
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "tshark on {ifaces:?} in {n} did not start capturing"
    );
    sleep(Duration::from_millis(300));
    c
}

pub fn capture_lines(mut c: Child) -> Vec<String> {
    let mut s = String::new();
    let _ = c.stdout.take().unwrap().read_to_string(&mut s);
    let _ = c.wait();
    s.lines().map(str::to_owned).collect()
}

/// An iperf3 TCP flow running in the background.
pub struct Flow {
    server: Child,
    client: Child,
}

impl Flow {
    pub fn start(from: &str, server_ns: &str, dst: &str, secs: u32) -> Flow {
        let server = Command::new("ip")
            .args(["netns", "exec", &ns(server_ns), "iperf3", "-s", "-1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the server listens (a fixed sleep loses the race on a loaded machine).
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            let o = nsx(server_ns, &["ss", "-Hltn", "sport = :5201"]);
            if !stdout(&o).trim().is_empty() {
                break;
            }
            sleep(Duration::from_millis(50));
        }
        let client = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns(from),
                "iperf3",
                "-c",
                dst,
                "-t",
                &secs.to_string(),
                "-J",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Flow { server, client }
    }

    /// Wait for the client; (bytes received, retransmits).
    pub fn finish(mut self) -> (u64, u64) {
        let client = std::mem::replace(&mut self.client, Command::new("true").spawn().unwrap());
        let out = client.wait_with_output().unwrap();
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (
            j["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0),
            j["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
        )
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        let _ = self.client.kill();
        let _ = self.client.wait();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// iperf3 TCP from `from` to `dst` (server in `server_ns`) for `secs`; returns bytes received.
pub fn iperf(from: &str, server_ns: &str, dst: &str, secs: u32) -> u64 {
    Flow::start(from, server_ns, dst, secs).finish().0
}

pub fn config(name: &str) -> PathBuf {
    root().join("config").join(name)
}
