//! Traffic between pods a0 and b0 whose delivery a test can check byte for byte: a TCP
//! stream of pseudo-random bytes (its SHA-256 on both ends) and numbered UDP datagrams,
//! and the pods' checksum error counters.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{ns, nsx, stdout};

pub const TCP_PORT: &str = "5001";
pub const UDP_PORT: &str = "5002";
/// Bytes of the TCP stream per transfer.
pub const TCP_BYTES: &str = "16777216";
/// UDP datagrams per transfer (2 ms apart).
pub const UDP_COUNT: &str = "200";

/// The pods' traffic: a TCP stream and numbered UDP datagrams of pseudo-random bytes,
/// each side printing what it sent or got.
const SCRIPT: &str = r#"
import hashlib, random, socket, sys, time
socket.setdefaulttimeout(30)  # a stalled flow fails the test instead of hanging it
cmd, port = sys.argv[1], int(sys.argv[2])
def payload(seq, size):
    return seq.to_bytes(4, "big") + random.Random(seq).randbytes(size - 4)
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
    want, size = int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Room for every datagram (SO_RCVBUFFORCE, as root): a receiver descheduled on a
    # loaded machine must not lose any to its own buffer (UdpRcvbufErrors).
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)
    s.bind(("0.0.0.0", port))
    ok = bad = 0; seen = set()
    try:
        while len(seen) < want:
            d = s.recv(65536); seq = int.from_bytes(d[:4], "big"); s.settimeout(5)
            if d == payload(seq, size) and seq < want: ok += seq not in seen; seen.add(seq)
            else: bad += 1
    except socket.timeout:
        pass
    print(ok, bad)
elif cmd == "udp-client":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for seq in range(int(sys.argv[4])):
        s.sendto(payload(seq, int(sys.argv[5])), (sys.argv[3], port)); time.sleep(0.002)
"#;

/// [`SCRIPT`] in a file of its own for the suite `what`.
pub fn script(what: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("podfwd-{what}-{}.py", std::process::id()));
    std::fs::write(&p, SCRIPT).unwrap();
    p
}

pub fn spawn_in(n: &str, args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &ns(n)])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {args:?} in {n}: {e}"))
}

pub fn output_of(c: Child) -> String {
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Waits until something listens on `port` (`ss` option `-t` or `-u`) in `n`.
pub fn wait_listening(n: &str, proto: &str, port: &str) {
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
pub struct Delivered {
    /// "LEN SHA256" the TCP client sent and the server received.
    pub tcp_sent: String,
    pub tcp_received: String,
    /// UDP datagrams that arrived intact, and ones that arrived different.
    pub udp_ok: u64,
    pub udp_bad: u64,
}

/// One transfer of [`TCP_BYTES`] and [`UDP_COUNT`] datagrams of `udp_size` bytes.
pub fn transfer(py: &str, udp_size: usize) -> Delivered {
    let size = udp_size.to_string();
    let tcp_srv = spawn_in("b0", &["python3", py, "tcp-server", TCP_PORT]);
    let udp_srv = spawn_in(
        "b0",
        &["python3", py, "udp-server", UDP_PORT, UDP_COUNT, &size],
    );
    wait_listening("b0", "t", TCP_PORT);
    wait_listening("b0", "u", UDP_PORT);
    let tcp = spawn_in(
        "a0",
        &["python3", py, "tcp-client", TCP_PORT, "10.0.2.2", TCP_BYTES],
    );
    let udp = spawn_in(
        "a0",
        &[
            "python3",
            py,
            "udp-client",
            UDP_PORT,
            "10.0.2.2",
            UDP_COUNT,
            &size,
        ],
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

pub fn assert_delivered(d: &Delivered, what: &str) {
    assert!(
        d.tcp_sent.starts_with(&format!("{TCP_BYTES} ")),
        "{what}: TCP client: {d:?}"
    );
    assert_eq!(d.tcp_received, d.tcp_sent, "{what}: TCP stream content");
    assert_eq!(
        (d.udp_ok, d.udp_bad),
        (UDP_COUNT.parse().unwrap(), 0),
        "{what}: UDP datagrams (b0: {})",
        stdout(&nsx(
            "b0",
            &["nstat", "-asz", "UdpRcvbufErrors", "UdpInErrors"]
        ))
    );
}

/// `TcpInCsumErrors` and `UdpInCsumErrors` of namespace `n` (absolute).
pub fn csum_errors(n: &str) -> (u64, u64) {
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
