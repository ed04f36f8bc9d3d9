//! Partial checksums from pods at their default offloads, in both modes: completed by
//! podfwd in software (`offload.tx_checksum: off`) or left to the kernel through AF_XDP
//! TX metadata (`on`). Observed: the bytes that reach the receiving pod (TCP stream
//! digest, UDP datagrams), the pods' `TcpInCsumErrors`/`UdpInCsumErrors`, the checksums
//! tshark finds on the underlay, and podfwd's counters of which path each node took.
//!
//! With offload, a veth never computes a checksum: the skb crosses it `CHECKSUM_PARTIAL`
//! and the receiving stack trusts it, so the wire shows the unfinished field (the
//! pseudo-header sum) and a pod's counters cannot tell a wrong request from a right one.
//! So the requests are also checked where the kernel does complete them: with
//! tx-checksumming off on the uplinks (the kernel sums podfwd's requests before the
//! underlay: tshark must find them right) and on the pods' host-side veths (the kernel
//! sums them before the pod, which then verifies them).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::transfer::*;
use common::*;

/// Bytes of each UDP datagram.
const UDP_SIZE: usize = 1000;

/// `config/node-NODE.MODE.yaml` with this bed's control socket and `tx_checksum`.
fn node_config(node: &str, mode: &str, tx_checksum: &str) -> PathBuf {
    let text = std::fs::read_to_string(config(&format!("node-{node}.{mode}.yaml"))).unwrap();
    let sock = format!("/run/podfwd/{}-{node}.sock", pf());
    let text = text.replace(&format!("/run/podfwd/node-{node}.sock"), &sock)
        + &format!("\noffload:\n  tx_checksum: {tx_checksum}\n");
    let p = std::env::temp_dir().join(format!(
        "podfwd-csum-{}-{node}-{mode}-{tx_checksum}.yaml",
        std::process::id()
    ));
    std::fs::write(&p, text).unwrap();
    p
}

/// tshark on the underlay port toward node a, checksum validation on, for the pods'
/// TCP data from a0 (inside VXLAN in tunnel mode): one checksum status per segment.
struct Capture(Child);

impl Capture {
    fn start(mode: &str) -> Capture {
        // Inner TCP in tunnel mode: the inner IPv4 protocol byte is 39 bytes into the
        // outer UDP header (UDP 8 + VXLAN 8 + Ethernet 14 + 9).
        let filter = if mode == "tunnel" {
            "udp port 8472 and src host 198.18.0.1 and udp[39] = 6 and greater 600"
        } else {
            "tcp and src host 10.0.1.2 and greater 600"
        };
        let mut c = Command::new("ip")
            .args(["netns", "exec", &ns("u"), "tshark", "-l", "-n", "-i", "ua"])
            .args(["-c", "40", "-a", "duration:60", "-f", filter])
            .args(["-d", "udp.port==8472,vxlan"])
            .args(["-o", "tcp.check_checksum:TRUE"])
            .args(["-T", "fields", "-e", "tcp.checksum.status"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark");
        // tshark says so on stderr once it captures.
        let (tx, rx) = std::sync::mpsc::channel();
        let err = c.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if line.starts_with("Capturing on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("tshark did not start capturing on the underlay within 30 s");
        Capture(c)
    }

    /// tshark's checksum status of each captured segment: 1 good, 0 bad.
    fn statuses(self) -> Vec<String> {
        let s = output_of(self.0);
        s.lines().map(str::to_owned).collect()
    }
}

/// tx-checksumming on `iface` of node `node`: off makes the kernel complete partial
/// checksums before the frame leaves (`validate_xmit_skb`).
fn tx_checksumming(node: &str, iface: &str, on: bool) {
    let o = nsx(
        node,
        &["ethtool", "-K", iface, "tx", if on { "on" } else { "off" }],
    );
    assert!(
        o.status.success(),
        "ethtool -K {iface} tx on {node}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// (completed in software, left to the kernel, the worker's `tx_checksum`).
fn csum_counters(p: &Podfwd) -> (u64, u64, String) {
    let s = p.status();
    (
        s["checksums_completed"].as_u64().unwrap(),
        s["checksums_offloaded"].as_u64().unwrap(),
        s["workers"][0]["tx_checksum"].as_str().unwrap().to_owned(),
    )
}

/// One transfer with a capture on the underlay; returns the segments' checksum
/// statuses, after checking what the pods received and their checksum error counters.
fn checked_transfer(mode: &str, py: &str, what: &str) -> Vec<String> {
    let cap = Capture::start(mode);
    let d = transfer(py, UDP_SIZE);
    let statuses = cap.statuses();
    assert_delivered(&d, what);
    for pod in ["a0", "b0"] {
        assert_eq!(csum_errors(pod), (0, 0), "{what}: checksum errors in {pod}");
    }
    assert!(statuses.len() >= 20, "{what}: captured {statuses:?}");
    eprintln!("{what}: {d:?}; checksum status on the wire: {statuses:?}");
    statuses
}

fn show(what: &str, a: &Podfwd, b: &Podfwd) {
    eprintln!(
        "{what}: node a (completed, offloaded, path) {:?}, node b {:?}",
        csum_counters(a),
        csum_counters(b)
    );
}

fn start_nodes(mode: &str, tx_checksum: &str) -> (Podfwd, Podfwd) {
    let a = Podfwd::start("a", &node_config("a", mode, tx_checksum));
    let b = Podfwd::start("b", &node_config("b", mode, tx_checksum));
    assert_eq!(ping("a0", "10.0.2.2", 3), 3, "a0 -> b0");
    (a, b)
}

fn exercise(mode: &str, pod_mtu: u16) {
    let _g = lock();
    let _bed = Bed::up(pod_mtu);
    let py = script("csum");
    let py = py.to_str().unwrap();

    // Software: every checksum on the wire is right; nothing is left to the kernel.
    let (a, b) = start_nodes(mode, "off");
    let st = checked_transfer(mode, py, "software");
    assert!(st.iter().all(|s| s == "1"), "software: {st:?}");
    show("software", &a, &b);
    let (ca, cb) = (csum_counters(&a), csum_counters(&b));
    assert!(ca.0 > 1000 && ca.1 == 0, "software, node a: {ca:?}");
    // Node b completes the pod's ACKs; the data from node a arrived complete.
    assert!(cb.0 > 0 && cb.1 == 0, "software, node b: {cb:?}");
    assert_eq!((ca.2.as_str(), cb.2.as_str()), ("software", "software"));
    drop((a, b));

    // Offload: both nodes leave every partial checksum to the kernel. On veth nothing
    // sums it, so the underlay carries the unfinished field (tshark: bad) and the pods
    // take the skb as verified.
    let (a, b) = start_nodes(mode, "on");
    assert_eq!(csum_counters(&a).2, "offload");
    let st = checked_transfer(mode, py, "offload");
    assert!(
        st.iter().all(|s| s == "0"),
        "offload, partial on the wire: {st:?}"
    );
    show("offload", &a, &b);
    let (ca, cb) = (csum_counters(&a), csum_counters(&b));
    assert!(ca.0 == 0 && ca.1 > 1000, "offload, node a: {ca:?}");
    // In native mode node b gets the partial checksums as they left node a; in tunnel
    // mode inside the VXLAN frame: both leave them partial again toward b0.
    assert!(cb.0 == 0 && cb.1 > 1000, "offload, node b: {cb:?}");

    // The uplinks' tx-checksumming off: the kernel completes node a's requests (data)
    // and node b's (ACKs) before the underlay, where tshark checks them; node b then
    // gets complete checksums and b0 verifies them.
    tx_checksumming("a", "eth0", false);
    tx_checksumming("b", "eth0", false);
    let before = csum_counters(&a).1;
    let st = checked_transfer(mode, py, "offload, uplinks summing");
    assert!(
        st.iter().all(|s| s == "1"),
        "offload, uplinks summing: {st:?}"
    );
    assert!(
        csum_counters(&a).1 > before + 1000,
        "{:?}",
        csum_counters(&a)
    );
    tx_checksumming("a", "eth0", true);
    tx_checksumming("b", "eth0", true);

    // The pods' host-side veths' tx-checksumming off: the kernel completes the requests
    // for frames toward the pods (from the far node, still partial), which verify them.
    tx_checksumming("a", "lxc0", false);
    tx_checksumming("b", "lxc0", false);
    let before = csum_counters(&b).1;
    let st = checked_transfer(mode, py, "offload, pod veths summing");
    assert!(st.iter().all(|s| s == "0"), "{st:?}");
    assert!(
        csum_counters(&b).1 > before + 1000,
        "{:?}",
        csum_counters(&b)
    );
    assert_eq!(csum_counters(&a).0 + csum_counters(&b).0, 0);

    for p in [a, b] {
        let (status, log) = p.stop_with_log();
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(log.contains("frame accounting ok"), "{log}");
    }
    let _ = std::fs::remove_file(py);
    for node in ["a", "b"] {
        for setting in ["on", "off"] {
            let _ = std::fs::remove_file(node_config(node, mode, setting));
        }
    }
}

#[test]
fn native_mode_checksums_completed_or_offloaded() {
    require_root!();
    exercise("native", 1500);
}

#[test]
fn tunnel_mode_checksums_completed_or_offloaded() {
    require_root!();
    exercise("tunnel", 1450);
}
