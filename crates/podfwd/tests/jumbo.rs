//! Jumbo frames through podfwd in both modes: pods and the underlay at MTU 9000, so
//! frames larger than one UMEM frame arrive at podfwd's AF_XDP sockets as descriptor
//! chains (multi-buffer, `offload.multi_buffer`) behind the `xdp.frags` steering
//! program. Observed: full-size DF pings, a TCP stream's digest and 8000-byte UDP
//! datagrams at the receiving pod with checksums completed in software and offloaded,
//! the pods' checksum error counters, podfwd's per-port frame and byte counters (the
//! mean frame size), the kernel sockets' drops (none: every frame over 3840 bytes, each
//! datagram among them, crossed as a chain), the ICMP error for a pod whose MTU is
//! above what the tunnel carries, frame accounting at exit; and with multi-buffer off,
//! the same large frames dropped and counted by the kernel while small ones pass.

mod common;

use std::path::PathBuf;

use common::transfer::*;
use common::*;

/// Bytes of each UDP datagram: larger than two UMEM frames.
const UDP_SIZE: usize = 8000;
/// MTU of the underlay and the host-side veths.
const LINK_MTU: u16 = 9000;

/// `config/node-NODE.MODE.yaml` with this bed's control socket and `offload` settings.
fn node_config(node: &str, mode: &str, offload: &[(&str, &str)]) -> PathBuf {
    let text = std::fs::read_to_string(config(&format!("node-{node}.{mode}.yaml"))).unwrap();
    let sock = format!("/run/podfwd/{}-{node}.sock", pf());
    let mut text = text.replace(&format!("/run/podfwd/node-{node}.sock"), &sock) + "\noffload:\n";
    for (k, v) in offload {
        text += &format!("  {k}: {v}\n");
    }
    let tag: String = offload.iter().map(|(k, v)| format!("-{k}-{v}")).collect();
    let p = std::env::temp_dir().join(format!(
        "podfwd-jumbo-{}-{node}-{mode}{tag}.yaml",
        std::process::id()
    ));
    std::fs::write(&p, text).unwrap();
    p
}

/// Node a's port `name` in `status`.
fn port<'s>(status: &'s serde_json::Value, name: &str) -> &'s serde_json::Value {
    status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name} in {status}"))
}

/// Frames the kernel dropped on any of the node's AF_XDP sockets.
fn kernel_drops(status: &serde_json::Value) -> u64 {
    status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["xsk_rx_dropped"].as_u64().unwrap() + p["xsk_rx_ring_full"].as_u64().unwrap())
        .sum()
}

fn start_nodes(mode: &str, offload: &[(&str, &str)]) -> (Podfwd, Podfwd) {
    let a = Podfwd::start("a", &node_config("a", mode, offload));
    let b = Podfwd::start("b", &node_config("b", mode, offload));
    (a, b)
}

fn stop_clean(nodes: (Podfwd, Podfwd), what: &str) {
    for p in [nodes.0, nodes.1] {
        let (status, log) = p.stop_with_log();
        assert_eq!(status.code(), Some(0), "{what}: {log}");
        assert!(log.contains("frame accounting ok"), "{what}: {log}");
    }
}

fn exercise(mode: &str, pod_mtu: u16) {
    let _g = lock();
    let _bed = Bed::up(pod_mtu);
    topology(&["link-mtu", &LINK_MTU.to_string()]);
    let py = script("jumbo");
    let py = py.to_str().unwrap();
    let full = (pod_mtu - 28).to_string();

    for tx_checksum in ["off", "on"] {
        let what = format!("{mode}, tx_checksum {tx_checksum}");
        let (a, b) = start_nodes(mode, &[("tx_checksum", tx_checksum)]);
        for p in [&a, &b] {
            assert_eq!(
                p.status()["workers"][0]["multi_buffer"],
                true,
                "{what}: node {}",
                p.node
            );
        }
        assert_eq!(
            ping_with("a0", "10.0.2.2", 5, &["-M", "do", "-s", &full]),
            5,
            "{what}: DF pings of {full} bytes a0 -> b0"
        );
        let d = transfer(py, UDP_SIZE);
        for p in [&a, &b] {
            let s = p.status();
            let drops: Vec<_> = s["drops"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, n)| **n != 0)
                .collect();
            eprintln!(
                "{what}: node {}: actions {} drops {drops:?} socket drops {}",
                p.node,
                s["actions"],
                kernel_drops(&s)
            );
        }
        assert_delivered(&d, &what);
        for pod in ["a0", "b0"] {
            assert_eq!(csum_errors(pod), (0, 0), "{what}: checksum errors in {pod}");
        }
        let (sa, sb) = (a.status(), b.status());
        let lxc0 = port(&sa, "lxc0");
        let (bytes, frames) = (
            lxc0["rx_bytes"].as_u64().unwrap(),
            lxc0["rx_packets"].as_u64().unwrap(),
        );
        eprintln!("{what}: node a lxc0 received {frames} frames, {bytes} bytes");
        // The TCP stream went in frames of up to 9000 bytes, each counted once (a chain
        // of three descriptors is one frame).
        assert!(
            frames > 0 && bytes / frames > 6000,
            "{what}: mean frame {bytes}/{frames}"
        );
        assert_eq!(kernel_drops(&sa), 0, "{what}: node a socket drops: {sa}");
        assert_eq!(kernel_drops(&sb), 0, "{what}: node b socket drops: {sb}");
        assert_eq!(sa["drops"]["bad_chain"], 0);
        let (done, offloaded) = (
            sa["checksums_completed"].as_u64().unwrap(),
            sa["checksums_offloaded"].as_u64().unwrap(),
        );
        match tx_checksum {
            "off" => assert!(done > 500 && offloaded == 0, "{what}: {done} {offloaded}"),
            _ => assert!(done == 0 && offloaded > 500, "{what}: {done} {offloaded}"),
        }

        if mode == "tunnel" {
            // A pod at the link's MTU sends more than the tunnel carries: podfwd answers
            // a chained frame with one ICMP error, and the pod lowers its path MTU.
            nsx(
                "a0",
                &["ip", "link", "set", "eth0", "mtu", &LINK_MTU.to_string()],
            );
            let big = (LINK_MTU - 28).to_string();
            let o = nsx(
                "a0",
                &[
                    "ping", "-M", "do", "-s", &big, "-c", "1", "-W", "1", "10.0.2.2",
                ],
            );
            let text = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
            let mtu = format!("mtu = {}", LINK_MTU - 50);
            assert!(text.contains(&mtu), "{what}: {text}");
            assert!(
                a.status()["actions"]["icmp_frag_needed"].as_u64().unwrap() >= 1,
                "{what}"
            );
            nsx("a0", &["ip", "route", "flush", "cache"]);
            nsx(
                "a0",
                &["ip", "link", "set", "eth0", "mtu", &pod_mtu.to_string()],
            );
        }
        stop_clean((a, b), &what);
    }

    // Multi-buffer off: the plain steering program (generic XDP at this MTU) and no
    // chains: a frame larger than one UMEM frame is dropped by the kernel and counted
    // on the socket; small frames still pass.
    let what = format!("{mode}, multi_buffer off");
    let (a, b) = start_nodes(mode, &[("multi_buffer", "off")]);
    assert_eq!(a.status()["workers"][0]["multi_buffer"], false);
    assert_eq!(ping("a0", "10.0.2.2", 3), 3, "{what}: small pings");
    assert_eq!(
        ping_with("a0", "10.0.2.2", 3, &["-M", "do", "-s", &full]),
        0,
        "{what}: full-size pings"
    );
    let dropped = port(&a.status(), "lxc0")["xsk_rx_dropped"]
        .as_u64()
        .unwrap();
    assert!(dropped >= 3, "{what}: xsk_rx_dropped on lxc0 {dropped}");
    stop_clean((a, b), &what);

    let _ = std::fs::remove_file(py);
    for node in ["a", "b"] {
        for o in [
            &[("tx_checksum", "off")][..],
            &[("tx_checksum", "on")],
            &[("multi_buffer", "off")],
        ] {
            let _ = std::fs::remove_file(node_config(node, mode, o));
        }
    }
}

#[test]
fn native_mode_carries_jumbo_frames_as_descriptor_chains() {
    require_root!();
    exercise("native", LINK_MTU);
}

#[test]
fn tunnel_mode_carries_jumbo_frames_as_descriptor_chains() {
    require_root!();
    exercise("tunnel", LINK_MTU - 50);
}
