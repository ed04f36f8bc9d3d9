//! Real attach/detach and steering checks in throwaway network namespaces.
//!
//! How the tests get into a namespace without `unsafe` (no setns here): each
//! outer test (a normal `#[test]`) creates two namespaces with `ip` — "node"
//! holding `lxc0`, "pod" holding its veth peer `eth0` — then re-runs this
//! same test binary under `ip netns exec <node> <this exe> --exact <inner>
//! --ignored`. The inner tests are `#[ignore]`d and do nothing unless the
//! environment variable `PODFWD_BPF_TEST_INNER` is set, so a plain
//! `cargo test -- --ignored` outside a namespace cannot touch the host.
//! The namespaces are deleted by a Drop guard whatever happens; deleting the
//! node namespace also deletes the veth pair.
//!
//! Skipped (with a printed reason) unless running as root with `ip`,
//! `ping` and `bpftool` available; when `PODFWD_REQUIRE_NETNS` is set
//! (scripts/test sets it, as for crates/podfwd/tests) every such skip fails
//! the test instead: the outer tests, an inner test started outside its
//! netns, and the crafted-frame checks without python3. Addresses: 10.0.0.0/16 and 198.18.0.0/15,
//! inside the test's namespaces only.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bpf::{xdp_prog_id, AttachMode, BpfError, Role, Steering, SteeringConfig, SteeringStats};
use route::Mode;

const INNER_ENV: &str = "PODFWD_BPF_TEST_INNER";
const POD_NS_ENV: &str = "PODFWD_BPF_TEST_POD_NS";
const OBJ_ENV: &str = "PODFWD_BPF_TEST_OBJ";
/// Set by scripts/test (and so CI): a namespace test that cannot run fails. Inner tests
/// see it too (`ip netns exec` keeps the environment).
const REQUIRE_ENV: &str = "PODFWD_REQUIRE_NETNS";

// ---------------------------------------------------------------- helpers

/// Prints why a test (or part of one) does not run, or fails when [`REQUIRE_ENV`] is set.
fn skip(why: &str) {
    assert!(
        std::env::var_os(REQUIRE_ENV).is_none(),
        "{why}, and {REQUIRE_ENV} is set: namespace tests must run, not skip"
    );
    println!("skipped: {why}");
}

/// Whether the outer tests can run; if not, see [`skip`].
fn can_run() -> bool {
    match skip_reason() {
        Some(why) => {
            skip(&why);
            false
        }
        None => true,
    }
}

fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1)); // effective uid
    if uid != Some("0") {
        return Some("not running as root".into());
    }
    for tool in [["ip", "-V"], ["bpftool", "version"], ["ping", "-V"]] {
        if Command::new(tool[0]).arg(tool[1]).output().is_err() {
            return Some(format!("`{}` is not installed", tool[0]));
        }
    }
    None
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    out
}

fn sh(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Topology {
    node: String,
    pod: String,
    obj_path: String,
}

impl Topology {
    fn new(tag: &str) -> Topology {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", std::process::id());
        let t = Topology {
            node: format!("pfbpf-node-{tag}-{id}"),
            pod: format!("pfbpf-pod-{tag}-{id}"),
            obj_path: format!("/tmp/podfwd-bpf-test-{id}.o"),
        };
        sh(&["ip", "netns", "add", &t.node]);
        sh(&["ip", "netns", "add", &t.pod]);
        let (node, pod) = (t.node.as_str(), t.pod.as_str());
        for cmd in [
            vec!["ip", "-n", node, "link", "set", "lo", "up"],
            vec!["ip", "-n", pod, "link", "set", "lo", "up"],
            vec![
                "ip", "-n", node, "link", "add", "lxc0", "type", "veth", "peer", "name", "eth0",
                "netns", pod,
            ],
            vec![
                "ip",
                "-n",
                node,
                "addr",
                "add",
                "10.0.0.1/24",
                "dev",
                "lxc0",
            ],
            vec![
                "ip",
                "-n",
                node,
                "addr",
                "add",
                "198.18.0.1/32",
                "dev",
                "lxc0",
            ],
            vec!["ip", "-n", pod, "addr", "add", "10.0.0.2/24", "dev", "eth0"],
            vec!["ip", "-n", node, "link", "set", "lxc0", "up"],
            vec!["ip", "-n", pod, "link", "set", "eth0", "up"],
            vec![
                "ip",
                "-n",
                pod,
                "route",
                "add",
                "198.18.0.1/32",
                "via",
                "10.0.0.1",
            ],
        ] {
            sh(&cmd);
        }
        std::fs::write(&t.obj_path, bpf::PROGRAM_OBJECT).unwrap();
        t
    }

    /// Run the `#[ignore]`d test `inner` in the node namespace; panic with its
    /// output if it fails.
    fn run_inner(&self, inner: &str) {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.node])
            .arg(&exe)
            .args([
                "--exact",
                inner,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(INNER_ENV, "1")
            .env(POD_NS_ENV, &self.pod)
            .env(OBJ_ENV, &self.obj_path)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("info".into()),
            )
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("---- {inner} (in netns {}) ----\n{text}", self.node);
        assert!(out.status.success(), "inner test {inner} failed");
        assert!(text.contains("1 passed"), "inner test {inner} did not run");
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.node, &self.pod] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_file(&self.obj_path);
    }
}

/// In an inner test: are we really inside a test namespace?
fn inner_env() -> Option<(String, String)> {
    if std::env::var_os(INNER_ENV).is_none() {
        skip("only meaningful when started by its outer test inside a netns");
        return None;
    }
    let _ = env_logger::builder().is_test(true).try_init();
    Some((
        std::env::var(POD_NS_ENV).unwrap(),
        std::env::var(OBJ_ENV).unwrap(),
    ))
}

fn config() -> SteeringConfig {
    SteeringConfig {
        cluster_cidr: (Ipv4Addr::new(10, 0, 0, 0), 16),
        pod_cidr: (Ipv4Addr::new(10, 0, 0, 0), 24),
        node_ip: Ipv4Addr::new(198, 18, 0, 1),
        vxlan_port: 8472,
        mode: Mode::Tunnel,
        frags: false,
    }
}

fn ping_from_pod(pod: &str, dst: &str, count: u32) -> bool {
    run(&[
        "ip",
        "netns",
        "exec",
        pod,
        "ping",
        "-c",
        &count.to_string(),
        "-i",
        "0.2",
        "-W",
        "2",
        dst,
    ])
    .status
    .success()
}

/// Poll the counters until `done` holds (up to 2 s); return the last reading.
fn wait_stats(st: &Steering, done: impl Fn(&SteeringStats) -> bool) -> SteeringStats {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let s = st.stats().unwrap();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------ outer tests

#[test]
fn attach_detach_and_stale_replacement() {
    if !can_run() {
        return;
    }
    Topology::new("life").run_inner("inner_attach_lifecycle");
}

#[test]
fn generic_fallback_when_native_is_refused() {
    if !can_run() {
        return;
    }
    let t = Topology::new("gen");
    // veth refuses native XDP without frags support when the peer's MTU
    // exceeds one page (drivers/net/veth.c, "Peer MTU is too large to set XDP");
    // the frags entry point it takes.
    sh(&["ip", "-n", &t.pod, "link", "set", "eth0", "mtu", "9000"]);
    t.run_inner("inner_generic_fallback");
}

#[test]
fn pod_steering_without_xsk_falls_back_to_pass() {
    if !can_run() {
        return;
    }
    Topology::new("pod").run_inner("inner_pod_steering");
}

#[test]
fn uplink_steering_rules() {
    if !can_run() {
        return;
    }
    Topology::new("up").run_inner("inner_uplink_steering");
}

// ------------------------------------------------------------ inner tests

#[test]
#[ignore = "run by attach_detach_and_stale_replacement inside a netns"]
fn inner_attach_lifecycle() {
    let Some((_pod, obj)) = inner_env() else {
        return;
    };
    assert_eq!(xdp_prog_id("lxc0").unwrap(), None, "fresh veth has no XDP");

    let mut st = Steering::load(&config()).unwrap();
    let err = st.attach("nosuch0", Role::Pod).unwrap_err();
    assert!(matches!(err, BpfError::InterfaceNotFound { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("not found in this network namespace"));

    // Attach: native on veth; visible to the kernel, ip and bpftool.
    let mode = st.attach("lxc0", Role::Pod).unwrap();
    assert_eq!(mode, AttachMode::Native);
    let id = st.prog_id().unwrap();
    assert_eq!(xdp_prog_id("lxc0").unwrap(), Some(id));
    let link = sh(&["ip", "-d", "link", "show", "dev", "lxc0"]);
    assert!(link.contains(&format!("prog/xdp id {id}")), "{link}");
    let links = sh(&["bpftool", "link", "show"]);
    assert!(
        links.contains("xdp") && links.contains(&format!("prog {id}")),
        "attached through a bpf_link: {links}"
    );
    let ifindex = bpf::ifindex("lxc0").unwrap();
    assert_eq!(
        st.attached(),
        vec![("lxc0".to_string(), ifindex, AttachMode::Native)]
    );
    // Socket registration: the kernel only takes bound AF_XDP sockets, and
    // the error names the map; queues beyond the key space are refused.
    let not_xsk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = st.register_xsk("lxc0", 0, not_xsk.as_raw_fd()).unwrap_err();
    assert!(err.to_string().contains("`xsks`"), "{err}");
    let err = st
        .register_xsk("lxc0", 16, not_xsk.as_raw_fd())
        .unwrap_err();
    assert!(
        matches!(err, BpfError::QueueOutOfRange { queue: 16, .. }),
        "{err}"
    );
    st.unregister_xsk("lxc0", 0).unwrap();
    // Attaching again is a no-op that reports the mode held.
    assert_eq!(st.attach("lxc0", Role::Pod).unwrap(), AttachMode::Native);

    // A second Steering cannot take over a live link: clear error, no damage.
    let mut other = Steering::load(&config()).unwrap();
    let err = other.attach("lxc0", Role::Pod).unwrap_err();
    assert!(
        matches!(err, BpfError::Busy { prog_id, .. } if prog_id == id),
        "{err}"
    );
    assert!(other.attached().is_empty());
    assert_eq!(xdp_prog_id("lxc0").unwrap(), Some(id));
    drop(other);

    // Explicit detach.
    st.detach("lxc0").unwrap();
    assert_eq!(xdp_prog_id("lxc0").unwrap(), None);
    assert!(st.attached().is_empty());
    assert!(matches!(
        st.detach("lxc0"),
        Err(BpfError::NotAttached { .. })
    ));

    // Dropping the Steering detaches (the link goes with it).
    st.attach("lxc0", Role::Pod).unwrap();
    assert!(xdp_prog_id("lxc0").unwrap().is_some());
    drop(st);
    assert_eq!(
        xdp_prog_id("lxc0").unwrap(),
        None,
        "dropping Steering detaches"
    );

    // Stale programs attached through netlink, generic then native, are replaced.
    for mode in ["xdpgeneric", "xdpdrv"] {
        sh(&[
            "ip", "link", "set", "dev", "lxc0", mode, "obj", &obj, "sec", "xdp",
        ]);
        let stale = xdp_prog_id("lxc0").unwrap().expect("ip attached a program");
        let mut st = Steering::load(&config()).unwrap();
        assert_eq!(st.attach("lxc0", Role::Pod).unwrap(), AttachMode::Native);
        let now = xdp_prog_id("lxc0").unwrap();
        assert_eq!(now, Some(st.prog_id().unwrap()), "{mode}: ours is attached");
        assert_ne!(now, Some(stale), "{mode}: stale program {stale} replaced");
        drop(st);
        assert_eq!(
            xdp_prog_id("lxc0").unwrap(),
            None,
            "{mode}: nothing left behind (the stale program is not restored)"
        );
    }
}

#[test]
#[ignore = "run by generic_fallback_when_native_is_refused inside a netns"]
fn inner_generic_fallback() {
    let Some(_) = inner_env() else {
        return;
    };
    let mut st = Steering::load(&config()).unwrap();
    assert_eq!(st.attach("lxc0", Role::Pod).unwrap(), AttachMode::Generic);
    let id = st.prog_id().unwrap();
    assert_eq!(xdp_prog_id("lxc0").unwrap(), Some(id));
    let link = sh(&["ip", "-d", "link", "show", "dev", "lxc0"]);
    assert!(link.contains("xdpgeneric"), "{link}");
    drop(st);
    assert_eq!(xdp_prog_id("lxc0").unwrap(), None);

    // The xdp.frags entry point (multi-buffer) is taken natively at that MTU.
    let mut st = Steering::load(&SteeringConfig {
        frags: true,
        ..config()
    })
    .unwrap();
    assert!(st.frags());
    assert_eq!(st.attach("lxc0", Role::Pod).unwrap(), AttachMode::Native);
    let id = st.prog_id().unwrap();
    assert_eq!(xdp_prog_id("lxc0").unwrap(), Some(id));
    let prog = sh(&["bpftool", "prog", "show", "id", &id.to_string()]);
    assert!(prog.contains("podfwd_steer_mb"), "{prog}");
    drop(st);
    assert_eq!(xdp_prog_id("lxc0").unwrap(), None);
}

#[test]
#[ignore = "run by pod_steering_without_xsk_falls_back_to_pass inside a netns"]
fn inner_pod_steering() {
    let Some((pod, _)) = inner_env() else {
        return;
    };
    let mut st = Steering::load(&config()).unwrap();
    st.attach("lxc0", Role::Pod).unwrap();
    sh(&["ip", "-n", &pod, "neigh", "flush", "dev", "eth0"]);

    // Cluster-destined IPv4 with no socket registered: redirect falls back to
    // PASS, so the kernel still answers; ARP is passed untouched.
    assert!(ping_from_pod(&pod, "10.0.0.1", 3), "ping across the veth");
    let s1 = st.stats().unwrap();
    println!("after cluster ping: {s1:?}");
    assert!(s1.redirect_failed >= 3, "{s1:?}");
    assert!(s1.passed_not_ipv4 >= 1, "ARP passed: {s1:?}");
    assert_eq!(s1.redirected, 0);

    // Destination outside the cluster CIDR: passed, not steered.
    assert!(ping_from_pod(&pod, "198.18.0.1", 3));
    let s2 = st.stats().unwrap();
    assert!(s2.passed_not_cluster >= 3, "{s2:?}");
    assert_eq!(s2.redirect_failed, s1.redirect_failed, "{s2:?}");

    // The node's own IP is never steered (config change applies live).
    let mut cfg = config();
    cfg.node_ip = Ipv4Addr::new(10, 0, 0, 1);
    st.update_config(&cfg).unwrap();
    assert!(ping_from_pod(&pod, "10.0.0.1", 3));
    let s3 = st.stats().unwrap();
    assert!(s3.passed_not_ours >= 3, "{s3:?}");
    assert_eq!(s3.redirect_failed, s2.redirect_failed, "{s3:?}");

    // Crafted frames from the pod side (802.1Q needs the 8021q module, which
    // a test bed may lack, so the tagged frames are written raw).
    let mac = std::fs::read_to_string("/sys/class/net/lxc0/address").unwrap();
    let eth = format!("{}020000000002", mac.trim().replace(':', ""));
    let ipv4 = "4500001400004000400100000a0005020a000501"; // 10.0.5.2 -> 10.0.5.1
    let frames = [
        // One 802.1Q tag (VID 5), IPv4 to the cluster: steered so userspace
        // can count and drop it -> redirect_failed (no socket).
        format!("{eth}81000005 0800{ipv4}"),
        // Tagged ARP: passed.
        format!("{eth}81000005 0806{}", "00".repeat(28)),
        // IPv4 ethertype with only 10 bytes of header: passed as malformed.
        format!("{eth}0800{}", &ipv4[..20]),
    ];
    if !inject(&pod, &frames) {
        skip("crafted-frame checks: python3 not available");
        return;
    }
    let s4 = wait_stats(&st, |s| s.passed_malformed >= 1);
    println!("after crafted frames: {s4:?}");
    assert_eq!(s4.redirect_failed, s3.redirect_failed + 1, "{s4:?}");
    // >=: the pod's IPv6 autoconfiguration (ND, MLD) also lands here.
    assert!(s4.passed_not_ipv4 > s3.passed_not_ipv4, "{s4:?}");
    assert_eq!(s4.passed_malformed, 1, "{s4:?}");
}

/// Send raw Ethernet frames (hex) out of the pod's eth0 with an AF_PACKET
/// socket. false if python3 is missing.
fn inject(pod: &str, frames: &[String]) -> bool {
    const SCRIPT: &str = "import socket, sys\n\
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
s.bind((sys.argv[1], 0))\n\
for h in sys.argv[2:]:\n    s.send(bytes.fromhex(h))\n";
    if Command::new("python3").arg("-V").output().is_err() {
        return false;
    }
    let mut args = vec!["ip", "netns", "exec", pod, "python3", "-c", SCRIPT, "eth0"];
    args.extend(frames.iter().map(String::as_str));
    sh(&args);
    true
}

#[test]
#[ignore = "run by uplink_steering_rules inside a netns"]
fn inner_uplink_steering() {
    let Some((pod, _)) = inner_env() else {
        return;
    };
    // Treat lxc0 as the uplink; the "pod" namespace plays the other node.
    let mut cfg = config();
    cfg.node_ip = Ipv4Addr::new(10, 0, 0, 1);
    let mut st = Steering::load(&cfg).unwrap();
    st.attach("lxc0", Role::Uplink).unwrap();
    let udp = |port: u16| {
        // bash's /dev/udp sends one datagram; nobody listens, which is fine.
        let script = format!("echo x > /dev/udp/10.0.0.1/{port}");
        sh(&["ip", "netns", "exec", &pod, "bash", "-c", &script]);
    };

    // Tunnel: UDP to node_ip:vxlan_port is steered, other ports and ICMP are not.
    udp(8472);
    udp(8472);
    // The first datagram may wait for ARP: give it a moment.
    let s1 = wait_stats(&st, |s| s.redirect_failed >= 2);
    assert_eq!(s1.redirect_failed, 2, "{s1:?}");
    udp(8473);
    assert!(ping_from_pod(&pod, "10.0.0.1", 2));
    let s2 = wait_stats(&st, |s| s.passed_not_ours >= 3);
    assert_eq!(s2.redirect_failed, 2, "{s2:?}");
    assert!(s2.passed_not_ours >= 3, "{s2:?}");

    // Native: IPv4 to the PodCIDR is steered whatever the protocol.
    cfg.mode = Mode::Native;
    st.update_config(&cfg).unwrap();
    assert!(ping_from_pod(&pod, "10.0.0.1", 2));
    let s3 = st.stats().unwrap();
    assert!(s3.redirect_failed >= 4, "{s3:?}");
    assert!(ping_from_pod(&pod, "198.18.0.1", 2));
    let s4 = st.stats().unwrap();
    assert!(s4.passed_not_cluster >= 2, "{s4:?}");
    assert_eq!(s4.redirect_failed, s3.redirect_failed, "{s4:?}");
}
