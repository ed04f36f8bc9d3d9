//! The capabilities `podfwd run` needs (docs/running.md, "Installing on a node"), on real
//! namespaces: with exactly the required set podfwd starts, is ready and forwards; with
//! any one of them dropped it refuses before touching anything, naming the missing one.
//!
//! podfwd runs as root with a reduced capability set, the way the systemd unit and the
//! DaemonSet run it: `ip netns exec NODE setpriv --bounding-set=-all,+... podfwd run`
//! (setpriv runs inside the namespace, since entering one needs CAP_SYS_ADMIN), under
//! `prlimit --memlock=8 MiB` so that dropping CAP_IPC_LOCK fails the same way whatever
//! limit the test runner has.
//!
//! The namespaces use the prefix `pfc` instead of common's default `pft`, so this suite
//! can run beside the other namespace suites. common reads the prefix from
//! `PODFWD_TEST_PF`; every test here sets it to the same value under common's `lock()`
//! before using any helper, so no test ever sees another prefix.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

const PREFIX: &str = "pfc";

/// The required set, in the order podfwd's message lists it (same list as
/// deploy/systemd/podfwd.service and deploy/kubernetes/podfwd.yaml).
const REQUIRED: [&str; 5] = [
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
];

/// `CapEff` of a process holding exactly [`REQUIRED`]: bits 39, 38, 12, 13, 14.
const REQUIRED_MASK: u64 = (1 << 39) | (1 << 38) | (1 << 12) | (1 << 13) | (1 << 14);

fn set_prefix() {
    // Edition 2021: set_var is safe; we hold common's lock and always set the same value.
    std::env::set_var("PODFWD_TEST_PF", PREFIX);
}

/// Node a's tunnel config with a control socket of its own (the test bed's nodes share
/// one filesystem, and another suite may run `/run/podfwd/node-a.sock`).
fn node_config() -> PathBuf {
    let text = std::fs::read_to_string(config("node-a.tunnel.yaml")).unwrap();
    let text = text.replace("/run/podfwd/node-a.sock", &socket().display().to_string());
    let path = std::env::temp_dir().join(format!("podfwd-caps-a-{}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn socket() -> PathBuf {
    PathBuf::from(format!("/run/podfwd/{PREFIX}-caps-a.sock"))
}

/// `podfwd run` in node a with exactly `caps` (names without `CAP_`, lower case, as
/// setpriv spells them), or with root's full set for `None`.
fn spawn(caps: Option<&[&str]>, notify: Option<&PathBuf>) -> std::process::Child {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns("a")]);
    cmd.args(["prlimit", "--memlock=8388608:8388608", "--"]);
    if let Some(caps) = caps {
        let set: String = caps.iter().map(|c| format!(",+{c}")).collect();
        cmd.args(["setpriv", "--inh-caps=-all", "--ambient-caps=-all"])
            .arg(format!("--bounding-set=-all{set}"))
            .arg("--");
    }
    cmd.arg(bin())
        .args(["run", "--config"])
        .arg(node_config())
        .env("PODFWD_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log_path()).unwrap());
    if let Some(n) = notify {
        cmd.env("NOTIFY_SOCKET", n);
    }
    cmd.spawn().expect("start podfwd")
}

/// podfwd's stderr (a file: a pipe nobody reads could fill and block it).
fn log_path() -> PathBuf {
    std::env::temp_dir().join(format!("podfwd-caps-{}.log", std::process::id()))
}

/// Removes this process's config and log files when a test ends well (kept for the
/// report of a failed one).
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let a = std::env::temp_dir().join(format!("podfwd-caps-a-{}.yaml", std::process::id()));
            let _ = std::fs::remove_file(a);
            let _ = std::fs::remove_file(log_path());
        }
    }
}

fn log_text() -> String {
    std::fs::read_to_string(log_path()).unwrap_or_default()
}

fn setpriv_name(cap: &str) -> String {
    cap.trim_start_matches("CAP_").to_lowercase()
}

fn cap_eff(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = s
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_owned();
    u64::from_str_radix(&hex, 16).unwrap()
}

fn status_json() -> Option<serde_json::Value> {
    let o = nsx("a", &[bin().to_str().unwrap(), "status", "--json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).ok())
        .flatten()
}

fn wait_ready(child: &mut std::process::Child) {
    let start = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "podfwd exited with {st} before it was ready:\n{}",
                log_text()
            );
        }
        if status_json().is_some_and(|j| j["ready"] == true) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "podfwd not ready after 20 s:\n{}",
            log_text()
        );
        sleep(Duration::from_millis(200));
    }
}

fn delivered_local() -> u64 {
    let text = stdout(&nsx("a", &["curl", "-sf", "http://127.0.0.1:9475/metrics"]));
    text.lines()
        .find_map(|l| l.strip_prefix("podfwd_actions_total{action=\"delivered_local\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// SIGTERM and the exit code (at most 10 s).
fn stop(mut child: std::process::Child) -> Option<i32> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Start with `caps`, check it is ready, forwards a ping between node a's pods through
/// its pipeline, and stops cleanly.
fn works_with(caps: Option<&[&str]>) {
    let notify_path =
        std::env::temp_dir().join(format!("podfwd-caps-notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = spawn(caps, Some(&notify_path));
    if caps.is_some() {
        // ip netns exec, prlimit and setpriv exec in turn: the pid is podfwd's.
        sleep(Duration::from_millis(300));
        assert_eq!(
            cap_eff(child.id()),
            REQUIRED_MASK,
            "podfwd does not run with exactly the required set"
        );
    }
    wait_ready(&mut child);
    // Type=notify: READY=1 arrives once start-up is done.
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("no READY=1 on NOTIFY_SOCKET");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("READY=1\n"), "{msg:?}");
    let _ = std::fs::remove_file(&notify_path);
    assert_eq!(xdp_attached("a").len(), 3, "uplink and two pods");
    let before = delivered_local();
    assert_eq!(ping("a0", "10.0.1.3", 3), 3, "pod to pod on node a");
    assert!(
        delivered_local() >= before + 3,
        "the pings did not go through podfwd"
    );
    assert_eq!(stop(child), Some(0));
    assert!(xdp_attached("a").is_empty());
}

#[test]
fn runs_with_exactly_the_required_capabilities_and_as_full_root() {
    require_root!();
    let _g = lock();
    set_prefix();
    let _clean = Cleanup;
    let _bed = Bed::up(1500);
    let caps: Vec<String> = REQUIRED.iter().map(|c| setpriv_name(c)).collect();
    let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
    works_with(Some(&caps));
    // Root with every capability, the common case.
    works_with(None);
}

#[test]
fn each_missing_capability_is_named_and_nothing_is_attached() {
    require_root!();
    let _g = lock();
    set_prefix();
    let _clean = Cleanup;
    let _bed = Bed::up(1500);
    for dropped in REQUIRED {
        let caps: Vec<String> = REQUIRED
            .iter()
            .filter(|c| **c != dropped)
            .map(|c| setpriv_name(c))
            .collect();
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        let mut child = spawn(Some(&caps), None);
        let status = child.wait().unwrap();
        let err = log_text();
        assert_eq!(status.code(), Some(1), "without {dropped}: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("without {dropped}: no error line in\n{err}"));
        assert!(
            line.starts_with(
                "error: podfwd needs CAP_BPF (load the XDP program and its maps), CAP_PERFMON ("
            ),
            "{line}"
        );
        let missing = line
            .split("; missing: ")
            .nth(1)
            .and_then(|m| m.split(". Run it as root").next())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(
            missing.starts_with(&format!("{dropped} (")),
            "without {dropped}, missing says: {missing}"
        );
        for other in REQUIRED.iter().filter(|c| **c != dropped) {
            assert!(!missing.contains(other), "{other} is not missing: {line}");
        }
        assert!(
            line.contains(
                "AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK"
            ),
            "{line}"
        );
        assert!(
            xdp_attached("a").is_empty(),
            "without {dropped}: XDP left attached"
        );
        assert!(
            !socket().exists(),
            "without {dropped}: the control socket was created"
        );
    }
}
