//! Real AF_XDP sockets on a veth pair inside a network namespace this test creates and
//! deletes. Needs root: skipped otherwise, failed instead when `PODFWD_REQUIRE_NETNS` is
//! set (scripts/test sets it, as for crates/podfwd/tests). Only TX is exercised: RX needs an XDP
//! program redirecting into an XSKMAP, which lives in the `bpf` crate. Binding, TX in
//! copy mode, completions, shared UMEM, bind errors and taking back the frames of a
//! socket whose device was deleted need no program.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use xsk::{BindMode, SocketConfig, TxMetadata, Umem, UmemConfig, XdpDesc, XskError, XskSocket};

const ETHERTYPE: u16 = 0x88b5; // IEEE local experimental
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// A network namespace, deleted on drop (also when the test panics).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "xsk-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        Netns { name }
    }

    /// Adds veth pair `a`/`b` with fixed MACs, both up.
    fn veth(&self, a: &str, b: &str) {
        let (ma, mb) = (mac_str(&MAC_A), mac_str(&MAC_B));
        ip(&[
            "-n", &self.name, "link", "add", a, "address", &ma, "type", "veth", "peer", "name", b,
            "address", &mb,
        ]);
        for dev in [a, b] {
            // No IPv6 autoconf chatter on the links.
            let _ = Command::new("ip")
                .args(["netns", "exec", &self.name, "sysctl", "-qw"])
                .arg(format!("net.ipv6.conf.{dev}.disable_ipv6=1"))
                .status();
            ip(&["-n", &self.name, "link", "set", dev, "up"]);
        }
    }

    /// Runs `f` on a thread that has entered this namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        let t = std::thread::spawn(move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: setns on a valid namespace fd; it only changes this thread's netns.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        });
        match t.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let ok = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("warning: could not delete netns {}", self.name);
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Set by scripts/test (and so CI): there a namespace test that cannot run fails.
const REQUIRE_ENV: &str = "PODFWD_REQUIRE_NETNS";

/// Whether the namespace tests can run here; if not, prints why and returns false (the
/// test then skips), or fails the test when [`REQUIRE_ENV`] is set.
fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let why = if unsafe { libc::geteuid() } != 0 {
        "AF_XDP veth test needs root (network namespaces, CAP_NET_RAW)"
    } else if Command::new("ip").arg("-V").output().is_err() {
        "the `ip` tool (iproute2) is not installed"
    } else {
        return true;
    };
    assert!(
        std::env::var_os(REQUIRE_ENV).is_none(),
        "{why}, and {REQUIRE_ENV} is set: namespace tests must run, not skip"
    );
    eprintln!("skipping: {why}");
    false
}

fn ifindex(name: &str) -> u32 {
    let c = CString::new(name).unwrap();
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(i, 0, "no interface {name} in this netns");
    i
}

/// AF_PACKET socket receiving our test ethertype on `ifindex`.
fn packet_socket(ifindex: u32) -> OwnedFd {
    let proto = ETHERTYPE.to_be();
    // SAFETY: plain socket creation; result checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = u16::try_from(libc::AF_PACKET).unwrap();
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll and its size is passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).unwrap(),
        )
    };
    assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: tv is a valid timeval and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            u32::try_from(std::mem::size_of::<libc::timeval>()).unwrap(),
        )
    };
    assert_eq!(rc, 0);
    fd
}

/// Receives frames until `want` distinct sequence numbers arrived or 3 s passed.
fn receive_frames(fd: &OwnedFd, tag: u32, want: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut got: Vec<Option<Vec<u8>>> = vec![None; want];
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && got.iter().any(Option::is_none) {
        // SAFETY: buf is a live, writable buffer of the length passed.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            continue; // timeout: check the deadline
        }
        let f = &buf[..usize::try_from(n).unwrap()];
        if f.len() >= 22 && f[12..14] == ETHERTYPE.to_be_bytes() && f[14..18] == tag.to_be_bytes() {
            let seq = u32::from_be_bytes(f[18..22].try_into().unwrap()) as usize;
            if seq < want {
                got[seq] = Some(f.to_vec());
            }
        }
    }
    let missing: Vec<usize> = (0..want).filter(|&i| got[i].is_none()).collect();
    assert!(
        missing.is_empty(),
        "frames never arrived on the peer: {missing:?}"
    );
    got.into_iter().map(Option::unwrap).collect()
}

fn frame(dst: [u8; 6], src: [u8; 6], tag: u32, seq: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(100);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&tag.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend((0..78u8).map(|i| i ^ u8::try_from(seq % 256).unwrap()));
    f
}

/// Writes `frames` into fresh UMEM frames at `offset` into each chunk (as VXLAN encap
/// moves the start back), returning TX descriptors.
fn build(umem: &mut Umem, frames: &[Vec<u8>], offset: u64) -> Vec<XdpDesc> {
    frames
        .iter()
        .map(|f| {
            let addr = umem.alloc_frame().expect("free frame") + offset;
            let (chunk, off) = umem.chunk_mut(addr);
            chunk[off..off + f.len()].copy_from_slice(f);
            XdpDesc {
                addr,
                len: u32::try_from(f.len()).unwrap(),
                options: 0,
            }
        })
        .collect()
}

/// Kicks and collects completions until every pushed frame is back or 3 s passed.
fn drain_tx(sock: &mut XskSocket, umem: &mut Umem) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while sock.tx_outstanding() > 0 && Instant::now() < deadline {
        if sock.tx_queued() > 0 && sock.tx_needs_wakeup() {
            sock.kick_tx().expect("kick_tx");
        }
        if sock.complete(umem, 64) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(
        sock.tx_outstanding(),
        0,
        "TX frames never completed; counters {:?}, stats {:?}",
        sock.wakeup_counters(),
        sock.statistics()
    );
}

fn small_umem() -> UmemConfig {
    UmemConfig {
        frame_count: 128,
        frame_size: 2048,
        headroom: 0,
        fill_size: 32,
        comp_size: 64,
        rx_size: 32,
        tx_size: 64,
        tx_metadata: TxMetadata::Off,
        multi_buffer: xsk::MultiBuffer::Off,
    }
}

#[test]
fn tx_in_copy_mode_reaches_peer_and_completes() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    ns.veth("xa", "xb");
    ns.run(|| {
        let (xa, xb) = (ifindex("xa"), ifindex("xb"));
        let rx_peer = packet_socket(xb);
        let mut umem = Umem::new(&small_umem()).unwrap();
        let cfg = SocketConfig {
            bind: BindMode::Copy,
            ..SocketConfig::new(xa, 0)
        };
        let mut sock = XskSocket::new(&mut umem, &cfg).unwrap();
        assert_eq!(sock.bound_mode(), BindMode::Copy);
        assert!(sock.fd() >= 0);
        assert!(sock.need_wakeup_enabled());

        // Frames in the fill ring stay there: no XDP program redirects to us.
        assert_eq!(sock.fill(&mut umem, 16), 16);
        umem.check_accounting(&[&sock], 0).unwrap();

        // 40 frames: more than copy mode sends per sendto (32), so it takes >1 kick.
        let tag = std::process::id();
        let frames: Vec<Vec<u8>> = (0..40).map(|s| frame(MAC_B, MAC_A, tag, s)).collect();
        let descs = build(&mut umem, &frames, 64);
        umem.check_accounting(&[&sock], descs.len()).unwrap();
        assert_eq!(sock.tx_push(&mut umem, &descs), 40);
        assert!(sock.tx_needs_wakeup(), "copy mode always needs a TX kick");
        umem.check_accounting(&[&sock], 0).unwrap();
        drain_tx(&mut sock, &mut umem);

        let got = receive_frames(&rx_peer, tag, frames.len());
        assert_eq!(got, frames, "peer received different bytes than were sent");
        assert!(
            sock.wakeup_counters().tx_kicks >= 2,
            "{:?}",
            sock.wakeup_counters()
        );

        // Every frame is back: free list + the 16 in the fill ring.
        umem.check_accounting(&[&sock], 0).unwrap();
        assert_eq!(umem.free_frames(), 128 - 16);
        sock.wakeup_rx().unwrap();
        assert_eq!(sock.rx_pending(), 0);
        let st = sock.statistics().unwrap();
        assert_eq!(st.tx_invalid_descs, 0, "{st:?}");
        assert_eq!(st.rx_dropped, 0, "{st:?}");
    });
}

#[test]
fn shared_umem_second_socket_on_peer() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    ns.veth("xa", "xb");
    ns.run(|| {
        let (xa, xb) = (ifindex("xa"), ifindex("xb"));
        let rx_on_a = packet_socket(xa);
        let mut umem = Umem::new(&small_umem()).unwrap();
        // Auto on veth (no zero-copy) falls back to copy.
        let mut a = XskSocket::new(&mut umem, &SocketConfig::new(xa, 0)).unwrap();
        assert_eq!(a.bound_mode(), BindMode::Copy);
        let mut b = XskSocket::new(&mut umem, &SocketConfig::new(xb, 0)).unwrap();
        assert_eq!(b.bound_mode(), BindMode::Copy);
        assert_ne!(a.fd(), b.fd());

        a.fill(&mut umem, 8);
        b.fill(&mut umem, 8);
        let tag = std::process::id() ^ 0x5a5a;
        let frames: Vec<Vec<u8>> = (0..5).map(|s| frame(MAC_A, MAC_B, tag, s)).collect();
        let descs = build(&mut umem, &frames, 0);
        assert_eq!(b.tx_push(&mut umem, &descs), 5);
        drain_tx(&mut b, &mut umem); // completions come back on b's own ring
        assert_eq!(a.tx_outstanding(), 0);
        assert_eq!(receive_frames(&rx_on_a, tag, 5), frames);
        umem.check_accounting(&[&a, &b], 0).unwrap();
        assert_eq!(umem.free_frames(), 128 - 16);

        // Dropping the socket that registered the UMEM: a new socket shares through b.
        // The kernel frees the queue asynchronously after close: EBUSY for a moment.
        drop(a);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut tries = 0;
        let a2 = loop {
            tries += 1;
            match XskSocket::new(&mut umem, &SocketConfig::new(xa, 0)) {
                Ok(s) => break s,
                Err(XskError::Bind { source, .. })
                    if source.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("rebinding xa after close: {e}"),
            }
        };
        eprintln!("rebind after close took {tries} attempt(s)");
        assert_eq!(a2.bound_mode(), BindMode::Copy);

        // The UMEM is in copy mode: asking a shared socket for zero-copy is refused.
        let zc = SocketConfig {
            bind: BindMode::ZeroCopy,
            ..SocketConfig::new(xa, 0)
        };
        let e = XskSocket::new(&mut umem, &zc).unwrap_err();
        assert!(matches!(e, XskError::Config(_)), "{e}");
        assert!(
            e.to_string()
                .contains("shared with a socket bound in copy mode"),
            "{e}"
        );
    });
}

#[test]
fn bind_errors_explain_themselves() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    ns.veth("xa", "xb");
    ns.run(|| {
        let xa = ifindex("xa");
        let mut u1 = Umem::new(&small_umem()).unwrap();
        let _a = XskSocket::new(&mut u1, &SocketConfig::new(xa, 0)).unwrap();

        // Same queue from another UMEM: EBUSY.
        let mut u2 = Umem::new(&small_umem()).unwrap();
        let e = XskSocket::new(&mut u2, &SocketConfig::new(xa, 0)).unwrap_err();
        let s = e.to_string();
        assert!(s.contains(&format!("bind to ifindex {xa} queue 0")), "{s}");
        assert!(s.contains("already bound to that interface queue"), "{s}");

        // No such interface.
        let mut u3 = Umem::new(&small_umem()).unwrap();
        let e = XskSocket::new(&mut u3, &SocketConfig::new(9999, 0)).unwrap_err();
        assert!(
            e.to_string().contains("no interface with that ifindex"),
            "{e}"
        );

        // Queue out of range (veth has one queue here).
        let xb = ifindex("xb");
        let e = XskSocket::new(&mut u3, &SocketConfig::new(xb, 7)).unwrap_err();
        assert!(e.to_string().contains("queue id is out of range"), "{e}");

        // Forced zero-copy on veth: EOPNOTSUPP.
        let zc = SocketConfig {
            bind: BindMode::ZeroCopy,
            ..SocketConfig::new(xb, 0)
        };
        let e = XskSocket::new(&mut u3, &zc).unwrap_err();
        assert!(e.to_string().contains("no zero-copy AF_XDP support"), "{e}");

        // After those failures the UMEM still works on a fresh socket.
        let ok = XskSocket::new(
            &mut u3,
            &SocketConfig {
                bind: BindMode::Copy,
                ..SocketConfig::new(xb, 0)
            },
        )
        .unwrap();
        assert_eq!(ok.bound_mode(), BindMode::Copy);
    });
}

#[test]
fn reclaim_dead_after_the_device_is_deleted_and_recreated() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    ns.veth("xa", "xb");
    ns.veth("ya", "yb");
    let name = ns.name.clone();
    ns.run(move || {
        let mut umem = Umem::new(&small_umem()).unwrap();
        // `a` registers the UMEM; `y` shares it.
        let mut a = XskSocket::new(&mut umem, &SocketConfig::new(ifindex("xa"), 0)).unwrap();
        let mut y = XskSocket::new(&mut umem, &SocketConfig::new(ifindex("ya"), 0)).unwrap();
        assert_eq!(a.fill(&mut umem, 8), 8);
        assert_eq!(y.fill(&mut umem, 8), 8);
        // Three TX descriptors the kernel never takes (no kick).
        let tag = std::process::id() ^ 0x7e7e;
        let frames: Vec<Vec<u8>> = (0..3).map(|s| frame(MAC_B, MAC_A, tag, s)).collect();
        let descs = build(&mut umem, &frames, 0);
        assert_eq!(a.tx_push(&mut umem, &descs), 3);
        umem.check_accounting(&[&a, &y], 0).unwrap();

        // Its device still exists: refused, the socket comes back unchanged.
        let a = match a.reclaim_dead(&mut umem) {
            Err(xsk::StillBound(s)) => *s,
            Ok(n) => panic!("reclaimed {n} frames of a bound socket"),
        };
        assert_eq!(a.tx_queued(), 3);
        umem.check_accounting(&[&a, &y], 0).unwrap();

        // The device is deleted and re-created under the same name (new ifindex).
        ip(&["-n", &name, "link", "del", "xa"]);
        ns_veth(&name, "xa", "xb");
        // A new socket on it shares the UMEM through `y`: `a`, first in line, is unbound
        // and the kernel would refuse to share through it.
        let a2 = XskSocket::new(&mut umem, &SocketConfig::new(ifindex("xa"), 0)).unwrap();
        assert_ne!(a2.ifindex(), a.ifindex());
        // The old socket's frames come back: 8 on the fill ring, 3 on the TX ring.
        assert_eq!(a.reclaim_dead(&mut umem).unwrap(), 11);
        umem.check_accounting(&[&a2, &y], 0).unwrap();
        assert_eq!(umem.free_frames(), 128 - 8);
        drop(a2);
        drop(y);
    });
}

/// `Netns::veth` for a namespace known by name (inside `Netns::run`).
fn ns_veth(ns: &str, a: &str, b: &str) {
    ip(&[
        "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b,
    ]);
    for dev in [a, b] {
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
}

/// Resident set size and open file descriptors of this process.
fn rss_kib_and_fds() -> (u64, usize) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    (pages * page / 1024, fds)
}

/// A worker's socket set (one UMEM shared by a socket on each end of a veth pair)
/// created, used and dropped 1,000 times: every cycle's frame accounting is exact, and
/// neither memory nor file descriptors grow.
#[test]
fn thousand_start_stop_cycles_leak_no_frame_memory_or_fd() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    ns.veth("xa", "xb");
    ns.run(|| {
        let (xa, xb) = (ifindex("xa"), ifindex("xb"));
        let tag = std::process::id();
        let frames: Vec<Vec<u8>> = (0..8).map(|s| frame(MAC_B, MAC_A, tag, s)).collect();
        let mut baseline = None;
        for cycle in 0..1000 {
            if cycle == 50 {
                // Allocator and kernel caches are warm by now.
                baseline = Some(rss_kib_and_fds());
            }
            let mut umem = Umem::new(&small_umem()).unwrap();
            let mut socks = Vec::new();
            for ifindex in [xa, xb] {
                let cfg = SocketConfig {
                    bind: BindMode::Copy,
                    ..SocketConfig::new(ifindex, 0)
                };
                // The kernel frees a queue asynchronously after its socket closes:
                // a rebind right away may see EBUSY for a few milliseconds.
                let deadline = Instant::now() + Duration::from_secs(2);
                let s = loop {
                    match XskSocket::new(&mut umem, &cfg) {
                        Ok(s) => break s,
                        Err(e) if Instant::now() < deadline && e.to_string().contains("busy") => {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => panic!("cycle {cycle}: {e}"),
                    }
                };
                socks.push(s);
            }
            for s in &mut socks {
                assert_eq!(s.fill(&mut umem, 16), 16);
            }
            let descs = build(&mut umem, &frames, 0);
            assert_eq!(socks[0].tx_push(&mut umem, &descs), descs.len());
            drain_tx(&mut socks[0], &mut umem);
            let refs: Vec<&XskSocket> = socks.iter().collect();
            umem.check_accounting(&refs, 0)
                .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
            drop(refs);
            drop(socks);
            drop(umem);
        }
        let (rss0, fds0) = baseline.unwrap();
        let (rss1, fds1) = rss_kib_and_fds();
        eprintln!(
            "after 50 cycles: RSS {rss0} KiB, {fds0} fds; after 1000: RSS {rss1} KiB, {fds1} fds"
        );
        assert_eq!(fds1, fds0, "file descriptors leaked over 950 cycles");
        // Each cycle maps 256 KiB of UMEM plus rings: a leak of one cycle's mappings
        // would add far more than this margin over 950 cycles.
        assert!(
            rss1 <= rss0 + 2048,
            "RSS grew from {rss0} KiB to {rss1} KiB over 950 cycles"
        );
    });
}

/// An AF_PACKET socket on `ifindex` (as [`packet_socket`]) that also reports each
/// frame's `tp_status` (`PACKET_AUXDATA`).
fn packet_socket_with_status(ifindex: u32) -> OwnedFd {
    let fd = packet_socket(ifindex);
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid c_int and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            (&on as *const libc::c_int).cast(),
            u32::try_from(std::mem::size_of::<libc::c_int>()).unwrap(),
        )
    };
    assert_eq!(rc, 0, "PACKET_AUXDATA: {}", std::io::Error::last_os_error());
    fd
}

/// A frame the peer received and its `tp_status`.
type Received = (Vec<u8>, u32);

/// Receives frames as [`receive_frames`] does, each with its `tp_status`
/// (`TP_STATUS_CSUMNOTREADY`: the skb arrived `CHECKSUM_PARTIAL`).
fn receive_with_status(fd: &OwnedFd, tag: u32, want: usize) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut got: Vec<Option<Received>> = vec![None; want];
    let mut buf = [0u8; 2048];
    let mut ctl = [0u64; 16];
    while Instant::now() < deadline && got.iter().any(Option::is_none) {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data; all-zero is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&ctl);
        // SAFETY: msg points at live buffers of the lengths it gives.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            continue; // timeout: check the deadline
        }
        let mut status = None;
        // SAFETY: walking the control messages the kernel wrote into `ctl`, as described
        // by `msg` (CMSG_* stay within msg_controllen).
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                    let aux: libc::tpacket_auxdata =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    status = Some(aux.tp_status);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let f = &buf[..usize::try_from(n).unwrap()];
        if f.len() >= 22 && f[12..14] == ETHERTYPE.to_be_bytes() && f[14..18] == tag.to_be_bytes() {
            let seq = u32::from_be_bytes(f[18..22].try_into().unwrap()) as usize;
            if seq < want {
                got[seq] = Some((f.to_vec(), status.expect("PACKET_AUXDATA control message")));
            }
        }
    }
    let missing: Vec<usize> = (0..want).filter(|&i| got[i].is_none()).collect();
    assert!(
        missing.is_empty(),
        "frames never arrived on the peer: {missing:?}"
    );
    got.into_iter().map(Option::unwrap).collect()
}

/// The folded ones' complement sum of `b` (16-bit big-endian words, RFC 1071).
fn ones_sum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    u16::try_from(s).unwrap()
}

/// Where the test frames want their checksum: over bytes 22.. (after tag and sequence
/// number), stored at 22..24, starting from this seed (as a TCP field starts from the
/// pseudo-header sum).
const CSUM_START: u16 = 22;
const CSUM_SEED: u16 = 0x1234;

/// TX metadata UMEM, frames at 256 into their chunks (as received frames are), every
/// other one with a checksum request; sends them from `xa`, returns what `xb` saw.
fn send_with_checksum_requests(md: TxMetadata, tag: u32) -> (Vec<Vec<u8>>, Vec<Received>) {
    let (xa, xb) = (ifindex("xa"), ifindex("xb"));
    let rx_peer = packet_socket_with_status(xb);
    let mut umem = Umem::new(&UmemConfig {
        tx_metadata: md,
        multi_buffer: xsk::MultiBuffer::Off,
        ..small_umem()
    })
    .unwrap();
    assert_eq!(umem.tx_metadata_len(), 0, "not registered yet");
    let mut sock = XskSocket::new(&mut umem, &SocketConfig::new(xa, 0)).unwrap();
    assert_eq!(sock.bound_mode(), BindMode::Copy);
    assert_eq!(
        umem.tx_metadata_len(),
        24,
        "this kernel (6.11+) grants TX metadata"
    );
    let frames: Vec<Vec<u8>> = (0..8)
        .map(|s| {
            let mut f = frame(MAC_B, MAC_A, tag, s);
            f[22..24].copy_from_slice(&CSUM_SEED.to_be_bytes());
            f
        })
        .collect();
    let mut descs = build(&mut umem, &frames, 256);
    for d in descs.iter_mut().step_by(2) {
        assert!(umem.request_tx_checksum(d, CSUM_START, 0));
    }
    assert_eq!(sock.tx_push(&mut umem, &descs), 8);
    drain_tx(&mut sock, &mut umem);
    let st = sock.statistics().unwrap();
    assert_eq!(st.tx_invalid_descs, 0, "{st:?}");
    umem.check_accounting(&[&sock], 0).unwrap();
    (frames, receive_with_status(&rx_peer, tag, 8))
}

/// Asserts that frame `got` is `sent` with a complete checksum over 22.. in 22..24:
/// with the seed (the pseudo-header sum of TCP) the sum verifies.
fn assert_completed(sent: &[u8], got: &[u8]) {
    let sum = u32::from(ones_sum(&got[22..])) + u32::from(CSUM_SEED);
    assert_eq!(
        (sum & 0xffff) + (sum >> 16),
        0xffff,
        "checksum over 22.. of {got:02x?}"
    );
    assert_eq!(got[..22], sent[..22]);
    assert_eq!(got[24..], sent[24..]);
}

/// A checksum request makes copy mode hand the veth a `CHECKSUM_PARTIAL` skb: the peer
/// gets the frame as sent (the field still holds the seed) marked not yet summed
/// (`TP_STATUS_CSUMNOTREADY`), a frame without a request is not; with the device's
/// checksum offload off, the kernel completes it before it leaves.
#[test]
fn tx_checksum_request_leaves_the_skb_partial_or_the_kernel_completes_it() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    ns.veth("xa", "xb");
    let name = ns.name.clone();
    ns.run(move || {
        let tag = std::process::id() ^ 0x0c5c;
        let (sent, got) = send_with_checksum_requests(TxMetadata::Offload, tag);
        for (i, (s, (g, status))) in sent.iter().zip(&got).enumerate() {
            assert_eq!(g, s, "frame {i} changed on the way");
            let partial = status & libc::TP_STATUS_CSUMNOTREADY != 0;
            assert_eq!(partial, i % 2 == 0, "frame {i}: tp_status {status:#x}");
        }

        // tx-checksumming off on xa: validate_xmit_skb sums it in software.
        let off = Command::new("ip")
            .args(["netns", "exec", &name, "ethtool", "-K", "xa", "tx", "off"])
            .output()
            .expect("ethtool");
        assert!(
            off.status.success(),
            "{}",
            String::from_utf8_lossy(&off.stderr)
        );
        let (sent, got) = send_with_checksum_requests(TxMetadata::Offload, tag ^ 1);
        for (i, (s, (g, status))) in sent.iter().zip(&got).enumerate() {
            assert_eq!(status & libc::TP_STATUS_CSUMNOTREADY, 0, "frame {i}");
            if i % 2 == 0 {
                assert_completed(s, g);
            } else {
                assert_eq!(g, s, "frame {i} without a request changed");
            }
        }
    });
}

/// `XDP_UMEM_TX_SW_CSUM`: copy mode completes requested checksums itself.
#[test]
fn tx_checksum_request_with_sw_csum_arrives_complete() {
    if !can_run() {
        return;
    }
    let ns = Netns::new();
    ns.veth("xa", "xb");
    ns.run(|| {
        let tag = std::process::id() ^ 0x5c5c;
        let (sent, got) = send_with_checksum_requests(TxMetadata::SoftwareChecksum, tag);
        for (i, (s, (g, status))) in sent.iter().zip(&got).enumerate() {
            assert_eq!(status & libc::TP_STATUS_CSUMNOTREADY, 0, "frame {i}");
            if i % 2 == 0 {
                assert_completed(s, g);
                assert_ne!(g[22..24], CSUM_SEED.to_be_bytes(), "frame {i}");
            } else {
                assert_eq!(g, s, "frame {i} without a request changed");
            }
        }
    });
}
