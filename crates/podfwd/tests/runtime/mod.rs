//! Pods made by the CNI plugin `podfwd-cni`, on the namespace bed of `common`: the
//! plugin binary, per-prefix podfwd configs, and the plugin invoked exactly as a container
//! runtime does (`CNI_*` environment, network config on stdin, run in the node's netns).
//!
//! Everything here is named after the prefix (`PODFWD_TEST_PF`): control sockets
//! `/run/podfwd/<pf>-node-{a,b}.sock`, pod namespaces `<pf>-a<N>` (which
//! `scripts/topology down` removes too), temp dirs `podfwd-<pf>-*`. So a run under another
//! prefix never touches the default bed's sockets (`/run/podfwd/node-a.sock`).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::common::{bin, config, nsx, pf, root, stdout};

/// Where Debian's containernetworking-plugins keep host-local and loopback.
pub const CNI_LIB: &str = "/usr/lib/cni";

/// Skip (printing why), or fail when `PODFWD_REQUIRE_NETNS` is set (scripts/test, CI).
pub fn unavailable(why: &str) {
    assert!(
        std::env::var_os("PODFWD_REQUIRE_NETNS").is_none(),
        "{why}, and PODFWD_REQUIRE_NETNS is set"
    );
    eprintln!("skipped: {why}");
}

/// The plugin binary `podfwd-cni`. Cargo gives a test the binaries of its own package
/// only (`CARGO_BIN_EXE_*`), so it is looked up next to `podfwd` in the same target
/// profile dir (`target/<profile>/podfwd-cni`); scripts/test builds the whole workspace
/// before the tests (`cargo test --workspace`). Missing or older than the plugin's
/// sources: an error saying how to build it, not a test of a stale binary.
pub fn plugin_bin() -> Result<PathBuf, String> {
    let p = bin().with_file_name("podfwd-cni");
    let built = fs::metadata(&p)
        .and_then(|m| m.modified())
        .map_err(|e| {
            format!(
                "{} not found ({e}): build it first with `cargo build -p podfwd-cni` (same profile as the tests)",
                p.display()
            )
        })?;
    let newest = ["crates/cni/src", "crates/api/src"]
        .iter()
        .flat_map(|d| fs::read_dir(root().join(d)).into_iter().flatten())
        .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if newest > built {
        return Err(format!(
            "{} is older than crates/cni/src: rebuild it with `cargo build -p podfwd-cni`",
            p.display()
        ));
    }
    Ok(p)
}

/// Node `n`'s (a, b) control socket under this prefix.
pub fn socket(n: &str) -> String {
    format!("/run/podfwd/{}-node-{n}.sock", pf())
}

/// A temp dir `podfwd-<pf>-<what>-<pid>`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("podfwd-{}-{what}-{}", pf(), std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    /// Also removes the nodes' endpoint state files under this prefix, which podfwd
    /// leaves when a test stopped it (or failed) with plugin pods still attached.
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
        for n in ["a", "b"] {
            let _ = fs::remove_file(Path::new(&socket(n)).with_extension("endpoints.json"));
        }
    }
}

/// config/node-<n>.tunnel.yaml with this prefix's control socket, written into `dir`;
/// `edit` may change the text further (PodCIDRs, umem). The state file next to the socket
/// (`<pf>-node-<n>.endpoints.json`) is removed so no endpoint comes back from an earlier run.
pub fn tunnel_config(dir: &TempDir, n: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = fs::read_to_string(config(&format!("node-{n}.tunnel.yaml"))).unwrap();
    let default = format!("socket: /run/podfwd/node-{n}.sock");
    assert!(
        text.contains(&default),
        "config/node-{n}.tunnel.yaml has no `{default}`"
    );
    let text = edit(text.replace(&default, &format!("socket: {}", socket(n))));
    let _ = fs::remove_file(Path::new(&socket(n)).with_extension("endpoints.json"));
    let p = dir.path(&format!("node-{n}.yaml"));
    fs::write(&p, text).unwrap();
    p
}

/// `podfwd endpoint list --json` on node `n`.
pub fn endpoints(n: &str) -> Vec<Value> {
    let sock = socket(n);
    let o = nsx(
        n,
        &[
            bin().to_str().unwrap(),
            "endpoint",
            "list",
            "--json",
            "--socket",
            &sock,
        ],
    );
    assert!(
        o.status.success(),
        "endpoint list: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Host-side veths on node `n` other than the bed's own lxc0/lxc1.
pub fn plugin_veths(n: &str) -> Vec<String> {
    let o = nsx(n, &["ip", "-j", "link", "show"]);
    let links: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    links
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| n.starts_with("lxc") && *n != "lxc0" && *n != "lxc1")
        .map(str::to_owned)
        .collect()
}

/// Frames node `n`'s podfwd received (sum of its interfaces' rx_packets) and frames it
/// accounted for (every action + passed + every drop reason), from `podfwd status --json`.
pub fn frame_balance(status: &Value) -> (u64, u64) {
    let sum = |v: &Value| -> u64 {
        v.as_object()
            .map(|o| o.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    };
    let rx = status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["rx_packets"].as_u64())
        .sum();
    let accounted =
        sum(&status["actions"]) + status["passed"].as_u64().unwrap() + sum(&status["drops"]);
    (rx, accounted)
}

/// The network config a runtime derives from a conflist with the plugin `podfwd` alone:
/// host-local over `ranges` with its dataDir in `ipam_dir`, node a's control socket.
pub fn net_conf(name: &str, ranges: Value, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "type": "podfwd",
        "socket": socket("a"),
        "ipam": {"type": "host-local", "ranges": ranges, "dataDir": ipam_dir},
    })
}

/// The addresses host-local holds for network `name` (one file per address).
pub fn allocations(ipam_dir: &Path, name: &str) -> Vec<String> {
    fs::read_dir(ipam_dir.join(name))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.parse::<std::net::Ipv4Addr>().is_ok())
        .collect()
}

/// The plugin started as a runtime starts it: in node a's netns, exactly the `CNI_*`
/// environment (plus PATH), the config on stdin. Returns the running child (stdout and
/// stderr piped) so callers can run many at once.
pub fn spawn_plugin(plugin: &Path, command: &str, cid: &str, netns: &str, conf: &Value) -> Child {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &crate::common::ns("a")])
        .arg(plugin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", CNI_LIB)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start podfwd-cni");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    child
}

/// The plugin's outcome: the result (ADD) or `Err` with exit code, stdout and stderr.
pub fn plugin_result(child: Child) -> Result<Value, String> {
    let out: Output = child.wait_with_output().unwrap();
    if out.status.success() {
        let text = stdout(&out);
        return Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        });
    }
    Err(format!(
        "exit {:?}: {}{}",
        out.status.code(),
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Pod namespaces `<pf>-a<N>` made by a test for plugin pods; deleted on drop (a pod's
/// veth dies with its namespace, so even a failed test leaves no lxc behind).
#[derive(Default)]
pub struct PodNamespaces(pub Vec<String>);

impl PodNamespaces {
    /// `ip netns add <pf>-a<i>`; returns its path for CNI_NETNS.
    pub fn add(&mut self, i: usize) -> String {
        let name = crate::common::ns(&format!("a{i}"));
        let o = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        self.0.push(name.clone());
        format!("/run/netns/{name}")
    }

    pub fn del(&mut self, i: usize) {
        let name = crate::common::ns(&format!("a{i}"));
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        self.0.retain(|n| *n != name);
    }
}

impl Drop for PodNamespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}
