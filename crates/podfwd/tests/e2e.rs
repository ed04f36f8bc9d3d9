//! End to end: two nodes in namespaces, podfwd on each, real pods, real packets.

mod common;

use common::*;

fn u(j: &serde_json::Value) -> u64 {
    j.as_u64().unwrap_or(0)
}

/// What every mode must do: cross-node and same-node pod traffic, the node's own IP and a
/// non-cluster host through the kernel, TCP, counters, and a clean stop.
fn exercise(mode: &str, pod_mtu: u16) {
    let _g = lock();
    let _bed = Bed::up(pod_mtu);
    let a = Podfwd::start("a", &config(&format!("node-a.{mode}.yaml")));
    let b = Podfwd::start("b", &config(&format!("node-b.{mode}.yaml")));

    // Cross-node, both directions, and same-node.
    assert_eq!(ping("a0", "10.0.2.2", 5), 5, "a0 -> b0 across nodes");
    assert_eq!(ping("b1", "10.0.1.3", 5), 5, "b1 -> a1 across nodes");
    assert_eq!(ping("a0", "10.0.1.3", 5), 5, "a0 -> a1 on one node");
    // The node's own IP and a host outside the cluster: passed to the kernel.
    assert_eq!(ping("a0", "198.18.0.1", 3), 3, "a0 -> its node's IP");
    assert_eq!(
        ping("a0", "198.19.0.2", 3),
        3,
        "a0 -> a host outside the cluster"
    );

    // What crosses the underlay.
    let cap = capture_underlay("udp port 8472 or icmp", 2);
    assert_eq!(ping("a0", "10.0.2.3", 2), 2);
    let lines = capture_lines(cap);
    assert!(!lines.is_empty(), "nothing captured on the underlay");
    for l in &lines {
        let f: Vec<&str> = l.split('|').collect();
        if mode == "tunnel" {
            // Outer node IPs then inner pod IPs, UDP 8472, VNI 1.
            assert!(f[0].contains("198.18.0.") && f[0].contains("10.0."), "{l}");
            assert_eq!(f[2], "8472", "{l}");
            assert_eq!(f[3], "1", "{l}");
        } else {
            assert!(
                f[0] == "10.0.1.2" || f[0] == "10.0.2.3",
                "bare pod IPs: {l}"
            );
            assert_eq!(f[2], "", "no UDP on the wire in native mode: {l}");
            assert_eq!(f[3], "", "no VXLAN in native mode: {l}");
        }
    }

    // TCP, pods at their default offloads (partial checksums completed by podfwd).
    let bytes = iperf("a0", "b0", "10.0.2.2", 5);
    assert!(
        bytes > 10_000_000,
        "iperf3 a0 -> b0 moved only {bytes} bytes"
    );

    let sa = a.status();
    let sb = b.status();
    if mode == "tunnel" {
        assert!(u(&sa["actions"]["encapsulated"]) > 1000, "{sa}");
        assert!(u(&sb["actions"]["decapsulated"]) > 1000, "{sb}");
    } else {
        assert!(u(&sa["actions"]["routed_native"]) > 1000, "{sa}");
        assert!(u(&sb["actions"]["delivered_local"]) > 1000, "{sb}");
    }
    assert!(
        u(&sa["actions"]["delivered_local"]) >= 5,
        "same-node pings: {sa}"
    );
    // TCP from a pod at default offloads: partial checksums, left to the kernel's
    // offload (offload.tx_checksum auto, a kernel with AF_XDP TX metadata) or completed.
    let done = match sa["workers"][0]["tx_checksum"].as_str() {
        Some("offload") => "checksums_offloaded",
        _ => "checksums_completed",
    };
    assert!(u(&sa[done]) > 1000, "{done}: {sa}");

    // Clean stop: exit 0, no program left, and the kernel forwards again.
    let (status_a, log_a) = a.stop_with_log();
    assert_eq!(status_a.code(), Some(0), "{log_a}");
    let (status_b, log_b) = b.stop_with_log();
    assert_eq!(status_b.code(), Some(0));
    // Every UMEM frame accounted for after forwarding thousands of frames.
    assert!(
        log_b.contains("worker 0 stopped; frame accounting ok"),
        "{log_b}"
    );
    for n in ["a", "b"] {
        assert_eq!(
            xdp_attached(n),
            Vec::<String>::new(),
            "XDP left on node {n}"
        );
    }
    topology(&["kernel", if mode == "tunnel" { "vxlan" } else { "native" }]);
    assert_eq!(
        ping("a0", "10.0.2.2", 3),
        3,
        "kernel forwarding after podfwd stopped"
    );
}

#[test]
fn tunnel_mode_end_to_end() {
    require_root!();
    exercise("tunnel", 1450);
}

#[test]
fn native_mode_end_to_end() {
    require_root!();
    exercise("native", 1500);
}

/// One node runs podfwd, the other the kernel's own VXLAN device (flannel style).
/// Hybrid mode on the one-L2 bed: every node is on-link, so pods' traffic is routed
/// natively (tunnelling to nodes behind a router is tested in routed.rs).
#[test]
fn hybrid_mode_end_to_end() {
    require_root!();
    exercise("hybrid", 1450);
}

#[test]
fn tunnel_interop_with_kernel_vxlan() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    topology(&["kernel", "vxlan"]);
    // The kernel's VXLAN device on node b only accepts inner frames to its own VTEP MAC.
    let cfg = std::env::temp_dir().join(format!("podfwd-e2e-interop-{}.yaml", std::process::id()));
    let text = std::fs::read_to_string(config("node-a.tunnel.yaml")).unwrap();
    let text = text.replace(
        "pod_cidr: 10.0.2.0/24",
        "pod_cidr: 10.0.2.0/24\n    vtep_mac: 02:fe:c6:12:00:02",
    );
    assert!(text.contains("vtep_mac"));
    std::fs::write(&cfg, text).unwrap();
    let a = Podfwd::start("a", &cfg);
    assert_eq!(ping("a0", "10.0.2.2", 5), 5, "podfwd -> kernel VXLAN");
    assert_eq!(ping("b1", "10.0.1.2", 5), 5, "kernel VXLAN -> podfwd");
    let bytes = iperf("b0", "a1", "10.0.1.3", 3);
    assert!(
        bytes > 5_000_000,
        "TCP kernel VXLAN -> podfwd moved only {bytes} bytes"
    );
    let s = a.status();
    assert!(u(&s["actions"]["encapsulated"]) >= 5, "{s}");
    assert!(u(&s["actions"]["decapsulated"]) >= 5, "{s}");
    assert_eq!(a.stop().code(), Some(0));
    let _ = std::fs::remove_file(&cfg);
}

#[test]
fn bad_config_is_refused_before_anything_is_attached() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1500);
    let dir = std::env::temp_dir().join(format!("podfwd-e2e-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(config("node-a.native.yaml")).unwrap();

    let bad = dir.join("overlap.yaml");
    std::fs::write(
        &bad,
        good.replace("pod_cidr: 10.0.2.0/24", "pod_cidr: 10.0.1.0/25"),
    )
    .unwrap();
    let o = nsx(
        "a",
        &[
            bin().to_str().unwrap(),
            "run",
            "--config",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{}:", bad.display()))
            && err.contains("nodes[0].pod_cidr: 10.0.1.0/25 overlaps node.pod_cidr 10.0.1.0/24"),
        "{err}"
    );
    assert_eq!(xdp_attached("a"), Vec::<String>::new());

    let missing = dir.join("missing.yaml");
    std::fs::write(&missing, good.replace("uplink: eth0", "uplink: eth9")).unwrap();
    let o = nsx(
        "a",
        &[
            bin().to_str().unwrap(),
            "run",
            "--config",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("interface eth9 not found in this network namespace"),
        "{err}"
    );
    assert_eq!(xdp_attached("a"), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}
