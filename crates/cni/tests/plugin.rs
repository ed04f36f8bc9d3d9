//! The plugin binary invoked exactly as a container runtime does: `CNI_*` environment,
//! the network config on stdin, the result (or error) read from stdout plus the exit code.
//!
//! Every namespace test builds its own bed: a "node" namespace the plugin runs in (as the
//! runtime's namespace), a "pod" namespace for CNI_NETNS, both named `cni-<pid>-<n>-*` and
//! deleted on drop (also on panic); host-local (Debian's containernetworking-plugins, in
//! /usr/lib/cni) with its dataDir in a temp dir; and a fake podfwd on a unix socket that
//! answers every line `{"ok":true}` and records it. Addresses: 10.0.0.0/16 only, and no
//! packet leaves the test's namespaces.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

const HOST_LOCAL_DIR: &str = "/usr/lib/cni";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_podfwd-cni"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Can namespace tests run here? If not: skip, or fail under PODFWD_REQUIRE_NETNS (as
/// scripts/test and CI set it), like crates/podfwd/tests/common.
fn netns_ready() -> bool {
    let why = if !is_root() {
        "namespace tests need root"
    } else if !Path::new(HOST_LOCAL_DIR).join("host-local").is_file() {
        "host-local not found in /usr/lib/cni (apt-get install containernetworking-plugins)"
    } else {
        return true;
    };
    assert!(
        std::env::var_os("PODFWD_REQUIRE_NETNS").is_none(),
        "{why}, and PODFWD_REQUIRE_NETNS is set"
    );
    eprintln!("skipped: {why}");
    false
}

fn host_local_ready() -> bool {
    if Path::new(HOST_LOCAL_DIR).join("host-local").is_file() {
        return true;
    }
    assert!(
        std::env::var_os("PODFWD_REQUIRE_NETNS").is_none(),
        "host-local not found in /usr/lib/cni, and PODFWD_REQUIRE_NETNS is set"
    );
    eprintln!("skipped: host-local not found in /usr/lib/cni");
    false
}

static N: AtomicUsize = AtomicUsize::new(0);

fn unique() -> String {
    format!(
        "cni-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    out
}

fn sh_ok(args: &[&str]) -> String {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(name: String) -> Self {
        sh_ok(&["ip", "netns", "add", &name]);
        Self { name }
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["ip", "netns", "exec", &self.name];
        a.extend_from_slice(args);
        sh(&a)
    }

    fn exec_ok(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "netns", "exec", &self.name];
        a.extend_from_slice(args);
        sh_ok(&a)
    }

    /// `ip -j ARGS` in this namespace.
    fn ip_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["ip", "-j"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.exec_ok(&a)).unwrap()
    }

    fn link_names(&self) -> Vec<String> {
        self.ip_json(&["link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.name]);
    }
}

/// A fake podfwd: answers every request line with `{"ok":true}` and records it.
struct FakePodfwd {
    path: PathBuf,
    requests: Arc<Mutex<Vec<Value>>>,
    /// Answer `endpoint_add` with `{"ok":false}`.
    refuse_add: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakePodfwd {
    fn start(path: PathBuf) -> Self {
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let refuse_add = Arc::new(AtomicBool::new(false));
        let (r, s, refuse) = (requests.clone(), stop.clone(), refuse_add.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    let req: Value = serde_json::from_str(line.trim_end()).unwrap();
                    let answer: &[u8] =
                        if req["op"] == "endpoint_add" && refuse.load(Ordering::Relaxed) {
                            b"{\"ok\":false,\"error\":\"no room for another endpoint\"}\n"
                        } else {
                            b"{\"ok\":true}\n"
                        };
                    r.lock().unwrap().push(req);
                    (&conn).write_all(answer).unwrap();
                    line.clear();
                }
            }
        });
        Self {
            path,
            requests,
            refuse_add,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    fn ops(&self, op: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["op"] == op)
            .collect()
    }
}

impl Drop for FakePodfwd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

/// A temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(name);
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

struct Outcome {
    code: Option<i32>,
    stdout: Value,
    raw: String,
}

impl Outcome {
    fn ok(&self) -> &Value {
        assert_eq!(self.code, Some(0), "plugin failed: {}", self.raw);
        &self.stdout
    }

    /// A spec error result: exit non-zero, stdout {cniVersion, code, msg, details}.
    fn err(&self, code: u64) -> &Value {
        assert_ne!(self.code, Some(0), "plugin succeeded: {}", self.raw);
        let e = &self.stdout;
        assert!(e["cniVersion"].is_string(), "error without cniVersion: {e}");
        assert!(e["msg"].is_string(), "error without msg: {e}");
        assert!(e["details"].is_string(), "error without details: {e}");
        assert_eq!(e["code"].as_u64(), Some(code), "wrong error code: {e}");
        e
    }
}

/// Run the plugin binary as a runtime does, in namespace `netns` (None: here), with exactly
/// the given environment (plus PATH).
fn invoke(netns: Option<&Netns>, env: &[(&str, &str)], stdin: &[u8]) -> Outcome {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns.name]).arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "plugin {:?} -> {:?}\n  stdout: {raw}\n  stderr: {}",
        env.iter().find(|(k, _)| *k == "CNI_COMMAND"),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = if raw.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&raw).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {raw}"))
    };
    Outcome {
        code: out.status.code(),
        stdout,
        raw,
    }
}

/// One test's world: node + pod namespaces, a temp dir (IPAM data, podfwd socket), the
/// fake podfwd.
struct Bed {
    id: String,
    node: Netns,
    pod: Option<Netns>,
    dir: TempDir,
    podfwd: Option<FakePodfwd>,
    version: String,
    container_id: String,
}

impl Bed {
    fn new() -> Self {
        Self::with_version("1.1.0")
    }

    fn with_version(v: &str) -> Self {
        let id = unique();
        let dir = TempDir::new(&id);
        let podfwd = Some(FakePodfwd::start(dir.0.join("podfwd.sock")));
        Self {
            node: Netns::new(format!("{id}-node")),
            pod: Some(Netns::new(format!("{id}-pod"))),
            dir,
            podfwd,
            version: v.to_owned(),
            container_id: format!("{id}-container"),
            id,
        }
    }

    fn pod(&self) -> &Netns {
        self.pod.as_ref().unwrap()
    }

    fn podfwd(&self) -> &FakePodfwd {
        self.podfwd.as_ref().unwrap()
    }

    fn ipam_dir(&self) -> PathBuf {
        self.dir.0.join("ipam")
    }

    fn conf(&self) -> Value {
        json!({
            "cniVersion": self.version,
            "name": "podfwd-test",
            "type": "podfwd",
            "mtu": 1400,
            "socket": self.dir.0.join("podfwd.sock"),
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.10", "rangeEnd": "10.0.1.20"}]],
                "dataDir": self.ipam_dir(),
            },
        })
    }

    fn run(&self, command: &str, conf: &Value, extra: &[(&str, &str)]) -> Outcome {
        self.run_as(command, conf, &self.container_id, extra)
    }

    fn run_as(&self, command: &str, conf: &Value, cid: &str, extra: &[(&str, &str)]) -> Outcome {
        let netns = self
            .pod
            .as_ref()
            .map(Netns::path)
            .unwrap_or_else(|| format!("/run/netns/{}-pod", self.id));
        let mut env = vec![
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", cid),
            ("CNI_NETNS", netns.as_str()),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", HOST_LOCAL_DIR),
        ];
        env.extend_from_slice(extra);
        invoke(Some(&self.node), &env, conf.to_string().as_bytes())
    }

    fn add(&self) -> Value {
        self.run("ADD", &self.conf(), &[]).ok().clone()
    }

    /// The config with `prevResult` as the runtime passes it to CHECK and DEL.
    fn conf_with_prev(&self, prev: &Value) -> Value {
        let mut c = self.conf();
        c["prevResult"] = prev.clone();
        c
    }

    /// IP addresses host-local holds (one file per allocation, named by the address).
    fn allocations(&self) -> Vec<Ipv4Addr> {
        let dir = self.ipam_dir().join("podfwd-test");
        let Ok(rd) = fs::read_dir(dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    fn host_veths(&self) -> Vec<String> {
        self.node
            .link_names()
            .into_iter()
            .filter(|n| n.starts_with("lxc"))
            .collect()
    }
}

/// Check the ADD result against SPEC.md section 5 ("ADD Success"), key by key and type by
/// type (the spec repo has no JSON schema to validate against).
fn assert_add_result(r: &Value, version: &str, netns: &str) -> (String, Ipv4Addr) {
    assert_eq!(r["cniVersion"], version);
    let ifs = r["interfaces"].as_array().expect("interfaces is a list");
    assert_eq!(ifs.len(), 2, "host veth + container interface: {r}");
    let mac_ok = |m: &Value| {
        let m = m.as_str().expect("mac is a string");
        m.len() == 17 && m.split(':').all(|b| u8::from_str_radix(b, 16).is_ok())
    };
    let host = &ifs[0];
    assert!(host["name"].as_str().unwrap().starts_with("lxc"));
    assert!(host["name"].as_str().unwrap().len() <= 15);
    assert!(mac_ok(&host["mac"]), "host mac: {host}");
    assert!(
        host.get("sandbox").is_none_or(|s| s == ""),
        "host side is on the host: {host}"
    );
    let cont = &ifs[1];
    assert_eq!(cont["name"], "eth0");
    assert!(mac_ok(&cont["mac"]), "container mac: {cont}");
    assert_eq!(cont["sandbox"], netns);
    if version == "1.1.0" {
        assert_eq!(host["mtu"], 1400);
        assert_eq!(cont["mtu"], 1400);
    }
    let ips = r["ips"].as_array().expect("ips is a list");
    assert_eq!(ips.len(), 1);
    let addr = ips[0]["address"].as_str().expect("address is a string");
    let (ip, len) = addr.split_once('/').expect("address in CIDR notation");
    assert_eq!(len, "32");
    let ip: Ipv4Addr = ip.parse().unwrap();
    assert!(
        (Ipv4Addr::new(10, 0, 1, 10)..=Ipv4Addr::new(10, 0, 1, 20)).contains(&ip),
        "{ip} from the configured range"
    );
    assert_eq!(ips[0]["gateway"], "169.254.1.1");
    assert_eq!(
        ips[0]["interface"].as_u64(),
        Some(1),
        "index of the container iface"
    );
    if version.starts_with("0.") {
        assert_eq!(ips[0]["version"], "4");
    } else {
        assert!(ips[0].get("version").is_none());
    }
    let routes = r["routes"].as_array().expect("routes is a list");
    assert_eq!(routes[0]["dst"], "0.0.0.0/0");
    assert_eq!(routes[0]["gw"], "169.254.1.1");
    assert!(r["dns"].is_object(), "dns is a dictionary");
    (host["name"].as_str().unwrap().to_owned(), ip)
}

#[test]
fn version_lists_supported_versions() {
    let out = invoke(
        None,
        &[("CNI_COMMAND", "VERSION")],
        br#"{"cniVersion":"1.0.0"}"#,
    );
    let v = out.ok();
    assert_eq!(v["cniVersion"], "1.0.0");
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

fn plain_env(cmd: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/run/netns/cni-does-not-exist"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", HOST_LOCAL_DIR),
    ]
}

#[test]
fn bad_stdin_is_code_6() {
    invoke(None, &plain_env("ADD"), b"{not json").err(6);
    invoke(None, &plain_env("ADD"), b"").err(6);
}

#[test]
fn unsupported_version_is_code_1() {
    let conf = br#"{"cniVersion":"0.2.0","name":"n","type":"podfwd","ipam":{"type":"host-local"}}"#;
    let e = invoke(None, &plain_env("ADD"), conf);
    assert!(e.err(1)["details"].as_str().unwrap().contains("0.2.0"));
    // CHECK exists from 0.4.0, STATUS from 1.1.0.
    let conf = br#"{"cniVersion":"0.3.1","name":"n","type":"podfwd","ipam":{"type":"host-local"}}"#;
    invoke(None, &plain_env("CHECK"), conf).err(1);
    invoke(None, &plain_env("STATUS"), conf).err(1);
}

#[test]
fn missing_netns_or_command_is_code_4() {
    let conf = br#"{"cniVersion":"1.0.0","name":"n","type":"podfwd","ipam":{"type":"host-local"}}"#;
    let env: Vec<_> = plain_env("ADD")
        .into_iter()
        .filter(|(k, _)| *k != "CNI_NETNS")
        .collect();
    let e = invoke(None, &env, conf);
    assert!(e.err(4)["details"].as_str().unwrap().contains("CNI_NETNS"));
    invoke(None, &plain_env("FROB"), conf).err(4);
    let env: Vec<_> = plain_env("ADD")
        .into_iter()
        .filter(|(k, _)| *k != "CNI_COMMAND")
        .collect();
    invoke(None, &env, conf).err(4);
}

#[test]
fn missing_ipam_is_code_7() {
    let conf = br#"{"cniVersion":"1.0.0","name":"n","type":"podfwd"}"#;
    invoke(None, &plain_env("ADD"), conf).err(7);
}

/// `ethtool -k eth0` in the pod: the generic-receive-offload line.
fn pod_gro(bed: &Bed) -> String {
    let k = bed.pod().exec_ok(&["ethtool", "-k", "eth0"]);
    k.lines()
        .find(|l| l.starts_with("generic-receive-offload:"))
        .unwrap_or_else(|| panic!("no GRO line in ethtool -k: {k}"))
        .to_owned()
}

#[test]
fn gro_sets_the_container_interface() {
    if !netns_ready() {
        return;
    }
    // Absent: the kernel's default for a veth (off); true/false: what was asked, set
    // through ethtool netlink in the pod's namespace.
    for (gro, want) in [(None, "off"), (Some(true), "on"), (Some(false), "off")] {
        let bed = Bed::new();
        let mut conf = bed.conf();
        if let Some(g) = gro {
            conf["gro"] = json!(g);
        }
        bed.run("ADD", &conf, &[]).ok();
        assert_eq!(
            pod_gro(&bed),
            format!("generic-receive-offload: {want}"),
            "gro {gro:?}"
        );
    }
}

#[test]
fn a_bad_gro_is_code_7_and_touches_nothing() {
    if !netns_ready() {
        return;
    }
    for bad in [json!("on"), json!(1), json!(null)] {
        let bed = Bed::new();
        let mut conf = bed.conf();
        conf["gro"] = bad.clone();
        let r = bed.run("ADD", &conf, &[]);
        if bad.is_null() {
            // JSON null is "not set" to serde: the default, and ADD succeeds.
            r.ok();
            continue;
        }
        let e = r.err(7);
        assert_eq!(
            e["details"],
            format!(
                "gro {bad} is not a setting: use true (GRO on the container interface) or false"
            )
        );
        assert!(bed.host_veths().is_empty());
        assert_eq!(bed.pod().link_names(), vec!["lo"]);
        assert!(bed.allocations().is_empty());
        assert!(bed.podfwd().ops("endpoint_add").is_empty());
    }
}

#[test]
fn status_pings_podfwd() {
    if !host_local_ready() {
        return;
    }
    let dir = TempDir::new(&unique());
    let sock = dir.0.join("podfwd.sock");
    let conf = json!({"cniVersion": "1.1.0", "name": "n", "type": "podfwd",
        "socket": sock, "ipam": {"type": "host-local"}});
    let env = [("CNI_COMMAND", "STATUS"), ("CNI_PATH", HOST_LOCAL_DIR)];
    invoke(None, &env, conf.to_string().as_bytes()).err(50);
    let fake = FakePodfwd::start(sock);
    let out = invoke(None, &env, conf.to_string().as_bytes());
    assert_eq!(out.code, Some(0), "{}", out.raw);
    assert_eq!(out.stdout, Value::Null, "STATUS prints nothing on success");
    assert_eq!(fake.requests(), vec![json!({"op": "ping"})]);
}

#[test]
fn add_addresses_the_pod_and_registers_it() {
    if !netns_ready() {
        return;
    }
    for v in ["1.1.0", "1.0.0", "0.4.0", "0.3.1"] {
        let bed = Bed::with_version(v);
        let r = bed.add();
        let (host, ip) = assert_add_result(&r, v, &bed.pod().path());
        assert_eq!(host, format!("lxc{}", &sha256_hex(&bed.container_id)[..11]));

        // The pod: eth0 up with the /32 and MTU, gateway on-link, default via it.
        let l = bed.pod().ip_json(&["addr", "show", "dev", "eth0"]);
        let l = &l[0];
        assert_eq!(l["mtu"], 1400);
        assert!(l["flags"].as_array().unwrap().contains(&json!("UP")));
        let a = &l["addr_info"].as_array().unwrap();
        assert!(
            a.iter()
                .any(|a| a["local"] == ip.to_string() && a["prefixlen"] == 32),
            "{l}"
        );
        let routes = bed.pod().exec_ok(&["ip", "route", "show"]);
        assert!(
            routes.contains("169.254.1.1 dev eth0 scope link"),
            "{routes}"
        );
        assert!(
            routes.contains(&format!("default via 169.254.1.1 dev eth0 src {ip}")),
            "{routes}"
        );
        // The host side: up, MTU, holds the gateway, routes the pod's /32.
        let h = bed.node.ip_json(&["addr", "show", "dev", &host]);
        assert_eq!(h[0]["mtu"], 1400);
        assert!(h[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["local"] == "169.254.1.1" && a["prefixlen"] == 32));
        let hr = bed.node.exec_ok(&["ip", "route", "show"]);
        assert!(hr.contains(&format!("{ip} dev {host} scope link")), "{hr}");

        // The node answers ARP for the gateway and the ping itself.
        let p = bed
            .pod()
            .exec(&["ping", "-c", "1", "-W", "2", "169.254.1.1"]);
        assert!(
            p.status.success(),
            "ping 169.254.1.1 from the pod: {}",
            String::from_utf8_lossy(&p.stdout)
        );

        assert_eq!(bed.allocations(), vec![ip]);
        assert_eq!(
            bed.podfwd().ops("endpoint_add"),
            vec![
                json!({"op": "endpoint_add", "ip": ip.to_string(), "interface": host,
                "container_id": bed.container_id})
            ]
        );

        let d = bed.run("DEL", &bed.conf_with_prev(&r), &[]);
        assert_eq!(d.code, Some(0), "{}", d.raw);
        assert!(bed.allocations().is_empty());
        assert!(bed.host_veths().is_empty());
        assert_eq!(
            bed.podfwd().ops("endpoint_del"),
            vec![json!({"op": "endpoint_del", "interface": host, "ip": ip.to_string()})]
        );
    }
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn check_passes_then_fails_when_the_address_is_gone() {
    if !netns_ready() {
        return;
    }
    let bed = Bed::new();
    let r = bed.add();
    let conf = bed.conf_with_prev(&r);
    let c = bed.run("CHECK", &conf, &[]);
    assert_eq!(c.code, Some(0), "{}", c.raw);
    let ip = r["ips"][0]["address"].as_str().unwrap();
    bed.pod().exec_ok(&["ip", "addr", "del", ip, "dev", "eth0"]);
    let e = bed.run("CHECK", &conf, &[]);
    let e = e.err(103);
    assert!(e["details"]
        .as_str()
        .unwrap()
        .contains(ip.split('/').next().unwrap()));
}

#[test]
fn del_is_idempotent() {
    if !netns_ready() {
        return;
    }
    let mut bed = Bed::new();
    // Never added: success.
    let conf = bed.conf();
    let d = bed.run_as("DEL", &conf, "unknown-container", &[]);
    assert_eq!(d.code, Some(0), "{}", d.raw);
    // Added, deleted twice (the second time without prevResult).
    let r = bed.add();
    let d = bed.run("DEL", &bed.conf_with_prev(&r), &[]);
    assert_eq!(d.code, Some(0), "{}", d.raw);
    let d = bed.run("DEL", &conf, &[]);
    assert_eq!(d.code, Some(0), "{}", d.raw);
    assert!(bed.host_veths().is_empty());
    assert!(bed.allocations().is_empty());
    // Added, then the pod's namespace is gone (the veth went with it) before DEL.
    let r = bed.add();
    assert_eq!(bed.allocations().len(), 1);
    bed.pod = None;
    let d = bed.run("DEL", &bed.conf_with_prev(&r), &[]);
    assert_eq!(d.code, Some(0), "{}", d.raw);
    let d = bed.run("DEL", &bed.conf_with_prev(&r), &[]);
    assert_eq!(d.code, Some(0), "{}", d.raw);
    assert!(bed.host_veths().is_empty());
    assert!(
        bed.allocations().is_empty(),
        "IPAM released without the netns"
    );
}

#[test]
fn add_twice_fails_and_leaves_the_first_intact() {
    if !netns_ready() {
        return;
    }
    let bed = Bed::new();
    let r = bed.add();
    let before = bed.node.ip_json(&["addr", "show"]);
    let pod_before = bed.pod().ip_json(&["addr", "show"]);
    let e = bed.run("ADD", &bed.conf(), &[]);
    assert!(e.err(101)["details"]
        .as_str()
        .unwrap()
        .contains(r["interfaces"][0]["name"].as_str().unwrap()));
    assert_eq!(bed.node.ip_json(&["addr", "show"]), before);
    assert_eq!(bed.pod().ip_json(&["addr", "show"]), pod_before);
    assert_eq!(bed.allocations().len(), 1, "no second allocation");
    assert!(bed.podfwd().ops("endpoint_del").is_empty());
    let c = bed.run("CHECK", &bed.conf_with_prev(&r), &[]);
    assert_eq!(c.code, Some(0), "first attachment still checks: {}", c.raw);
}

#[test]
fn a_failed_add_leaves_nothing_behind() {
    if !netns_ready() {
        return;
    }
    for point in ["after-veth", "after-ipam", "after-gro", "after-register"] {
        let bed = Bed::new();
        let mut conf = bed.conf();
        conf["gro"] = json!(true);
        let e = bed.run("ADD", &conf, &[("PODFWD_CNI_FAIL_AT", point)]);
        assert!(e.err(199)["details"].as_str().unwrap().contains(point));
        assert!(bed.host_veths().is_empty(), "{point}: host veth left");
        assert_eq!(
            bed.pod().link_names(),
            vec!["lo"],
            "{point}: pod iface left"
        );
        assert!(
            bed.allocations().is_empty(),
            "{point}: IPAM allocation left"
        );
        let adds = bed.podfwd().ops("endpoint_add");
        let dels = bed.podfwd().ops("endpoint_del");
        assert_eq!(dels.len(), 1, "{point}: podfwd told to forget: {dels:?}");
        let host = format!("lxc{}", &sha256_hex(&bed.container_id)[..11]);
        assert_eq!(dels[0]["interface"], host);
        if point == "after-register" {
            assert_eq!(adds.len(), 1);
            assert_eq!(dels[0]["ip"], adds[0]["ip"]);
        } else {
            assert!(adds.is_empty(), "{point}: registered too early");
        }
        // And the same container can be added afterwards.
        bed.add();
    }
}

#[test]
fn add_without_podfwd_is_try_again_later() {
    if !netns_ready() {
        return;
    }
    let mut bed = Bed::new();
    bed.podfwd = None;
    let e = bed.run("ADD", &bed.conf(), &[]);
    assert!(e.err(11)["details"]
        .as_str()
        .unwrap()
        .contains("podfwd.sock"));
    assert!(bed.host_veths().is_empty());
    assert_eq!(bed.pod().link_names(), vec!["lo"]);
    assert!(bed.allocations().is_empty());
}

#[test]
fn the_shipped_conflist_works() {
    if !netns_ready() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/cni/10-podfwd.conflist");
    let list: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(list["plugins"][0]["type"], "podfwd");
    // Derived as a runtime does (SPEC.md section 3): the plugin object plus cniVersion and
    // name; only the socket and the IPAM data dir are moved into the test's temp dir.
    let bed = Bed::with_version(list["cniVersion"].as_str().unwrap());
    let mut conf = list["plugins"][0].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    conf["name"] = "podfwd-test".into();
    conf["socket"] = json!(bed.dir.0.join("podfwd.sock"));
    conf["ipam"]["dataDir"] = json!(bed.ipam_dir());
    let r = bed.run("ADD", &conf, &[]);
    let r = r.ok();
    assert_eq!(r["ips"][0]["address"], "10.0.1.2/32");
    let mtu = bed.pod().ip_json(&["link", "show", "dev", "eth0"])[0]["mtu"].clone();
    assert_eq!(mtu, 1450);
    conf["prevResult"] = r.clone();
    let d = bed.run("DEL", &conf, &[]);
    assert_eq!(d.code, Some(0), "{}", d.raw);
    assert!(bed.allocations().is_empty());
}

#[test]
fn podfwd_refusing_the_endpoint_rolls_back() {
    if !netns_ready() {
        return;
    }
    let bed = Bed::new();
    bed.podfwd().refuse_add.store(true, Ordering::Relaxed);
    let e = bed.run("ADD", &bed.conf(), &[]);
    assert!(e.err(102)["details"]
        .as_str()
        .unwrap()
        .contains("no room for another endpoint"));
    assert!(bed.host_veths().is_empty());
    assert_eq!(bed.pod().link_names(), vec!["lo"]);
    assert!(bed.allocations().is_empty());
    assert_eq!(bed.podfwd().ops("endpoint_del").len(), 1);
}

#[test]
fn ipam_exhausted_passes_its_error_on_and_rolls_back() {
    if !netns_ready() {
        return;
    }
    let bed = Bed::new();
    let mut conf = bed.conf();
    conf["ipam"]["ranges"] = json!([[{"subnet": "10.0.1.0/24",
        "rangeStart": "10.0.1.10", "rangeEnd": "10.0.1.10"}]]);
    let r = bed.run("ADD", &conf, &[]);
    let first = r.ok()["interfaces"][0]["name"].as_str().unwrap().to_owned();
    // A second pod (its own namespace) finds the range full.
    let other = Netns::new(format!("{}-pod2", bed.id));
    let out = invoke(
        Some(&bed.node),
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "second"),
            ("CNI_NETNS", &other.path()),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", HOST_LOCAL_DIR),
        ],
        conf.to_string().as_bytes(),
    );
    assert_ne!(out.code, Some(0));
    assert!(
        out.stdout["details"]
            .as_str()
            .unwrap()
            .contains("host-local"),
        "IPAM's error passed on: {}",
        out.raw
    );
    assert_eq!(bed.host_veths(), vec![first], "only the first pod's veth");
    assert_eq!(other.link_names(), vec!["lo"]);
    assert_eq!(bed.allocations(), vec![Ipv4Addr::new(10, 0, 1, 10)]);
}
