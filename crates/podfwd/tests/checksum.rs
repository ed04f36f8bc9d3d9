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
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

const TCP_PORT: &str = "5001";
const UDP_PORT: &str = "5002";
/// Bytes of the TCP stream per transfer.
const TCP_BYTES: &str = "16777216";
/// UDP datagrams per transfer (1000 bytes each, 2 ms apart).
const UDP_COUNT: &str = "200";

/// The pods' traffic: a TCP stream and numbered UDP datagrams of pseudo-random bytes,
/// each side printing what it sent or got.
const SCRIPT: &str = r#"
import hashlib, random, socket, sys, time
socket.setdefaulttimeout(30)  # a stalled flow fails the test instead of hanging it
cmd, port = sys.argv[1], int(sys.argv[2])
def payload(seq):
    return seq.to_bytes(4, "big") + random.Random(seq).randbytes(996)
if cmd == "tcp-server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(1)
    c, _ = s.accept(); h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(1 << 16)
        if not d: break
        h.update(d); n += len(d)
    print(n, h.hexdigest())
elif cmd == "tcp-client":
    data = random.Random(11).randbytes(int(sys.argv[4]))
    c = socket.create_connection((sys.argv[3], port)); c.sendall(data); c.close()
    print(len(data), hashlib.sha256(data).hexdigest())
elif cmd == "udp-server":
    want = int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    ok = bad = 0; seen = set()
    try:
        while len(seen) < want:
            d = s.recv(2048); seq = int.from_bytes(d[:4], "big"); s.settimeout(5)
            if d == payload(seq) and seq < want: ok += seq not in seen; seen.add(seq)
            else: bad += 1
    except socket.timeout:
        pass
    print(ok, bad)
elif cmd == "udp-client":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for seq in range(int(sys.argv[4])):
        s.sendto(payload(seq), (sys.argv[3], port)); time.sleep(0.002)
"#;

fn script() -> PathBuf {
    let p = std::env::temp_dir().join(format!("podfwd-csum-{}.py", std::process::id()));
    std::fs::write(&p, SCRIPT).unwrap();
    p
}

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

fn spawn_in(n: &str, args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &ns(n)])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {args:?} in {n}: {e}"))
}

fn output_of(c: Child) -> String {
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Waits until something listens on `port` (`ss` option `-t` or `-u`) in `n`.
fn wait_listening(n: &str, proto: &str, port: &str) {
    let start = Instant::now();
    let filter = format!("sport = :{port}");
    while stdout(&nsx(n, &["ss", &format!("-Hl{proto}n"), &filter]))
        .trim()
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "nothing listens on {proto} port {port} in {n}"
        );
        sleep(Duration::from_millis(50));
    }
}

/// What one transfer from pod a0 to pod b0 (10.0.2.2) delivered.
#[derive(Debug)]
struct Delivered {
    /// "LEN SHA256" the TCP client sent and the server received.
    tcp_sent: String,
    tcp_received: String,
    /// UDP datagrams that arrived intact, and ones that arrived different.
    udp_ok: u64,
    udp_bad: u64,
}

fn transfer(py: &str) -> Delivered {
    let tcp_srv = spawn_in("b0", &["python3", py, "tcp-server", TCP_PORT]);
    let udp_srv = spawn_in("b0", &["python3", py, "udp-server", UDP_PORT, UDP_COUNT]);
    wait_listening("b0", "t", TCP_PORT);
    wait_listening("b0", "u", UDP_PORT);
    let tcp = spawn_in(
        "a0",
        &["python3", py, "tcp-client", TCP_PORT, "10.0.2.2", TCP_BYTES],
    );
    let udp = spawn_in(
        "a0",
        &["python3", py, "udp-client", UDP_PORT, "10.0.2.2", UDP_COUNT],
    );
    let tcp_sent = output_of(tcp);
    output_of(udp);
    let tcp_received = output_of(tcp_srv);
    let udp_got = output_of(udp_srv);
    let mut u = udp_got.split_whitespace().map(|x| x.parse().unwrap_or(0));
    Delivered {
        tcp_sent,
        tcp_received,
        udp_ok: u.next().unwrap_or(0),
        udp_bad: u.next().unwrap_or(0),
    }
}

fn assert_delivered(d: &Delivered, what: &str) {
    assert!(
        d.tcp_sent.starts_with(&format!("{TCP_BYTES} ")),
        "{what}: TCP client: {d:?}"
    );
    assert_eq!(d.tcp_received, d.tcp_sent, "{what}: TCP stream content");
    assert_eq!(
        (d.udp_ok, d.udp_bad),
        (UDP_COUNT.parse().unwrap(), 0),
        "{what}: UDP datagrams"
    );
}

/// `TcpInCsumErrors` and `UdpInCsumErrors` of namespace `n` (absolute).
fn csum_errors(n: &str) -> (u64, u64) {
    let out = stdout(&nsx(
        n,
        &["nstat", "-asz", "TcpInCsumErrors", "UdpInCsumErrors"],
    ));
    let get = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in nstat output of {n}: {out}"))
    };
    (get("TcpInCsumErrors"), get("UdpInCsumErrors"))
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
    let d = transfer(py);
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
    let py = script();
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
