//! The kernel-side speed levers beside podfwd's AF_XDP path, each checked for what it sets
//! and that traffic still flows with it (their speed is bench/levers' business):
//! `PODFWD_XSK_SNDBUF` (every socket's send buffer, as the kernel reads it back), GRO on
//! the pods' eth0 and threaded NAPI on the veths (scripts/topology gro|threaded).

mod common;

use std::process::Command;

use common::*;

/// `config/node-NODE.MODE.yaml` with this bed's control socket.
fn node_config(node: &str, mode: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(config(&format!("node-{node}.{mode}.yaml"))).unwrap();
    let sock = format!("/run/podfwd/{}-{node}.sock", pf());
    let text = text.replace(&format!("/run/podfwd/node-{node}.sock"), &sock);
    let p = std::env::temp_dir().join(format!(
        "podfwd-levers-{}-{node}-{mode}.yaml",
        std::process::id()
    ));
    std::fs::write(&p, text).unwrap();
    p
}

fn sysfs(n: &str, path: &str) -> String {
    stdout(&nsx(n, &["cat", path])).trim().to_owned()
}

fn all_levers_deliver(mode: &str, pod_mtu: u16) {
    let _g = lock();
    let _bed = Bed::up(pod_mtu);
    let env = [("PODFWD_XSK_SNDBUF", "1048576")];
    let a = Podfwd::start_with_env("a", &node_config("a", mode), &env);
    let b = Podfwd::start_with_env("b", &node_config("b", mode), &env);
    // Every socket (uplink eth0, lxc0, lxc1 on each node) has the buffer asked for; the
    // kernel reports twice the request (net/core/sock.c __sock_set_sndbuf).
    for p in [&a, &b] {
        let log = p.log_text();
        for iface in ["eth0", "lxc0", "lxc1"] {
            let want = format!(
                "worker 0: AF_XDP socket on {iface} queue 0: SO_SNDBUF 2097152 bytes (PODFWD_XSK_SNDBUF=1048576;"
            );
            assert!(
                log.contains(&want),
                "node {}: no `{want}` in:\n{log}",
                p.node
            );
        }
    }
    topology(&["gro", "on"]);
    topology(&["threaded", "on"]);
    for pod in ["a0", "b0"] {
        let k = stdout(&nsx(pod, &["ethtool", "-k", "eth0"]));
        assert!(k.contains("generic-receive-offload: on\n"), "{pod}: {k}");
        assert_eq!(sysfs(pod, "/sys/class/net/eth0/threaded"), "1", "{pod}");
    }
    // podfwd's XDP program gave the host-side veths a NAPI: threaded took.
    for n in ["a", "b"] {
        assert_eq!(
            sysfs(n, "/sys/class/net/lxc0/threaded"),
            "1",
            "node {n} lxc0"
        );
    }
    assert_eq!(ping("a0", "10.0.2.2", 3), 3, "a0 -> b0");
    assert_eq!(ping("b0", "10.0.1.2", 3), 3, "b0 -> a0");
    let bytes = iperf("a0", "b0", "10.0.2.2", 2);
    assert!(
        bytes > 1_000_000,
        "a0 -> b0 TCP delivered only {bytes} bytes"
    );
    let bytes = iperf("b0", "a0", "10.0.1.2", 2);
    assert!(
        bytes > 1_000_000,
        "b0 -> a0 TCP delivered only {bytes} bytes"
    );
    assert!(a.stop().success());
    assert!(b.stop().success());
    for n in ["a", "b"] {
        let _ = std::fs::remove_file(node_config(n, mode));
    }
}

#[test]
fn native_mode_delivers_with_sndbuf_gro_and_threaded_napi() {
    require_root!();
    all_levers_deliver("native", 1500);
}

#[test]
fn tunnel_mode_delivers_with_sndbuf_gro_and_threaded_napi() {
    require_root!();
    all_levers_deliver("tunnel", 1450);
}

#[test]
fn a_bad_sndbuf_refuses_to_start_and_attaches_nothing() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1500);
    let cfg = node_config("a", "native");
    for bad in ["4M", "100", "0"] {
        let out = run(Command::new("ip")
            .args(["netns", "exec", &ns("a")])
            .arg(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("PODFWD_XSK_SNDBUF", bad));
        assert!(!out.status.success(), "{bad}: podfwd started");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!(
            "PODFWD_XSK_SNDBUF=`{bad}` is not a send buffer size: give bytes, 4096..=1073741824 (e.g. 4194304), or unset it for the kernel's default"
        );
        assert!(err.contains(&want), "{bad}: no `{want}` in:\n{err}");
        assert_eq!(
            xdp_attached("a"),
            Vec::<String>::new(),
            "{bad}: XDP left attached"
        );
    }
    let _ = std::fs::remove_file(cfg);
}
