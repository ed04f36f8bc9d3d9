//! Real containers through podfwd: containerd 1.6 (Debian) in node a's namespace,
//! `ctr run --cni` with a busybox-static rootfs and the plugin `podfwd-cni` as CNI
//! plugin `podfwd`. Two containers ping a pod on node b (VXLAN through podfwd on both
//! nodes) and each other, and run iperf3 to node b; podfwd lists them (origin api, the
//! runtime's container id) while they run, and nothing is left when `ctr` removed them
//! (ctr calls CNI DEL itself after the task exited).
//!
//! How the runtime is set up, all under a temp dir and this prefix (`PODFWD_TEST_PF`):
//! - `containerd --config C` with root, state, and the gRPC/ttrpc sockets in the temp dir
//!   and the CRI plugin disabled, started with `nsenter --net` into node a (not
//!   `ip netns exec`: that remounts /sys, hiding /sys/fs/cgroup, which runc needs), as a
//!   foreground child killed at the end.
//! - containerd 1.6's `ctr run --cni` has no option for the CNI directories: it reads
//!   /etc/cni/net.d and /opt/cni/bin. So `ctr run` runs in a private mount namespace
//!   (`unshare --mount`) in which temp dirs are bind-mounted there: the plugin binary as
//!   `/opt/cni/bin/podfwd`, host-local and loopback from /usr/lib/cni, and the conflist.
//!   Nothing is installed in the host's view (empty mount points are created if missing
//!   and removed after). `ctr run` is also where CNI ADD and DEL run, so it runs in node
//!   a's netns and stays alive (`--rm`, not detached) for the container's whole life.
//! - The rootfs: busybox-static with `--install -s`, /etc/passwd, and /lib, /lib64 links
//!   into usr/ so the host's /usr, bind-mounted read-only, provides /usr/bin/iperf3
//!   (Debian is merged-/usr).

mod common;
mod runtime;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use runtime::*;
use serde_json::{json, Value};

/// The CNI network name (also host-local's subdirectory).
fn net_name() -> String {
    format!("{}-ctr", pf())
}

/// What must be installed (Debian packages containerd, runc, busybox-static,
/// containernetworking-plugins), or why not.
fn missing() -> Option<String> {
    if !is_root() {
        return Some("namespace tests need root".into());
    }
    for (tool, package) in [
        ("containerd", "containerd"),
        ("ctr", "containerd"),
        ("runc", "runc"),
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} not found (apt-get install {package})"));
        }
    }
    for (file, package) in [
        ("/bin/busybox", "busybox-static"),
        ("/usr/lib/cni/host-local", "containernetworking-plugins"),
        ("/usr/lib/cni/loopback", "containernetworking-plugins"),
    ] {
        if !Path::new(file).is_file() {
            return Some(format!("{file} not found (apt-get install {package})"));
        }
    }
    let o = Command::new("ldd").arg("/bin/busybox").output();
    if o.is_ok_and(|o| stdout(&o).contains("=>")) {
        return Some("/bin/busybox is dynamically linked (apt-get install busybox-static)".into());
    }
    plugin_bin().err()
}

/// Directories created as mount points for the private CNI view; removed on drop when
/// this test created them (and they are still empty).
struct MountPoints(Vec<PathBuf>);

impl MountPoints {
    fn ensure(dirs: &[&str]) -> MountPoints {
        let mut made = Vec::new();
        for d in dirs {
            // Record every ancestor that did not exist, deepest last.
            let mut missing: Vec<PathBuf> = Path::new(d)
                .ancestors()
                .take_while(|p| !p.exists())
                .map(Path::to_path_buf)
                .collect();
            missing.reverse();
            fs::create_dir_all(d).unwrap();
            made.extend(missing);
        }
        MountPoints(made)
    }
}

impl Drop for MountPoints {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

/// containerd in node a's netns; killed (and waited for) on drop.
struct Containerd {
    child: Child,
    address: PathBuf,
    log: PathBuf,
}

impl Containerd {
    fn start(dir: &TempDir) -> Result<Containerd, String> {
        let address = dir.path("containerd.sock");
        let conf = dir.path("containerd.toml");
        fs::write(
            &conf,
            format!(
                "version = 2\nroot = {:?}\nstate = {:?}\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = {:?}\n[ttrpc]\n  address = {:?}\n",
                dir.path("root"),
                dir.path("state"),
                address,
                dir.path("containerd-ttrpc.sock"),
            ),
        )
        .unwrap();
        let log = dir.path("containerd.log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", ns("a")))
            .arg("containerd")
            .arg("--config")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .map_err(|e| format!("cannot start containerd: {e}"))?;
        let mut c = Containerd {
            child,
            address,
            log,
        };
        let start = Instant::now();
        loop {
            if c.ctr(&["version"]).status.success() {
                return Ok(c);
            }
            if let Ok(Some(st)) = c.child.try_wait() {
                return Err(format!(
                    "containerd exited ({st}): {}",
                    fs::read_to_string(&c.log).unwrap_or_default()
                ));
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "containerd not answering after 20 s: {}",
                    fs::read_to_string(&c.log).unwrap_or_default()
                ));
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// `ctr --address SOCK ARGS` (from the host: talks to containerd over its socket).
    fn ctr(&self, args: &[&str]) -> std::process::Output {
        run(Command::new("ctr")
            .arg("--address")
            .arg(&self.address)
            .args(args))
    }

    /// `ctr task exec` in container `id`; (exit code, stdout+stderr).
    fn exec(&self, id: &str, exec_id: &str, args: &[&str]) -> (Option<i32>, String) {
        let mut a = vec!["task", "exec", "--exec-id", exec_id, id];
        a.extend_from_slice(args);
        let o = self.ctr(&a);
        (
            o.status.code(),
            format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)),
        )
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A container run by `ctr run --rm --cni` in node a (the child is `ctr run` itself,
/// which does CNI ADD before the task starts and CNI DEL after it exited).
/// On drop (a failed test) the task is killed and the container removed, so no shim
/// outlives the test.
struct Container {
    id: String,
    run: Option<Child>,
    log: PathBuf,
    address: PathBuf,
}

impl Container {
    fn run(ctd: &Containerd, dir: &TempDir, id: &str) -> Container {
        let log = dir.path(&format!("{id}.ctr.log"));
        let net = dir.path("cni/net.d");
        let bin = dir.path("cni/bin");
        let script = format!(
            "mount --bind {net:?} /etc/cni/net.d && mount --bind {bin:?} /opt/cni/bin && \
             exec ctr --address {addr:?} run --rm --cni \
             --mount type=bind,src=/usr,dst=/usr,options=rbind:ro \
             --rootfs {rootfs:?} {id} /bin/sleep 3600",
            addr = ctd.address,
            rootfs = dir.path("rootfs"),
        );
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", ns("a")))
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(dir.path(&format!("{id}.ctr.err"))).unwrap())
            .spawn()
            .expect("start ctr run");
        let c = Container {
            id: id.to_owned(),
            run: Some(child),
            log,
            address: ctd.address.clone(),
        };
        // Running once its task is RUNNING (CNI ADD happened before the start).
        let start = Instant::now();
        loop {
            let o = ctd.ctr(&["task", "ls"]);
            if stdout(&o)
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id) && l.contains("RUNNING"))
            {
                return c;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "container {id} not running after 30 s: {}",
                c.output(dir)
            );
            sleep(Duration::from_millis(100));
        }
    }

    fn output(&self, dir: &TempDir) -> String {
        format!(
            "{}{}",
            fs::read_to_string(&self.log).unwrap_or_default(),
            fs::read_to_string(dir.path(&format!("{}.ctr.err", self.id))).unwrap_or_default()
        )
    }

    /// SIGKILL its task (sleep as pid 1 ignores SIGTERM) and wait for `ctr run` to
    /// delete the task, call CNI DEL, and remove the container.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.run.take()?;
        let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", &self.id]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Container {
    fn ctr(&self, args: &[&str]) -> std::process::Output {
        run(Command::new("ctr")
            .arg("--address")
            .arg(&self.address)
            .args(args))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.run.is_some() {
            let _ = self.stop();
            let _ = self.ctr(&["task", "delete", "--force", &self.id]);
            let _ = self.ctr(&["containers", "delete", &self.id]);
        }
    }
}

/// Build the rootfs and the private CNI directories under `dir`.
fn prepare(dir: &TempDir, plugin: &Path, ipam: &Path) {
    let rootfs = dir.path("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "run", "usr"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let o =
        run(Command::new("chroot")
            .arg(&rootfs)
            .args(["/bin/busybox", "--install", "-s", "/bin"]));
    assert!(o.status.success(), "busybox --install: {o:?}");
    for l in ["lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), rootfs.join(l)).unwrap();
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();

    let bin = dir.path("cni/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy(plugin, bin.join("podfwd")).unwrap();
    for p in ["host-local", "loopback"] {
        fs::copy(Path::new(CNI_LIB).join(p), bin.join(p)).unwrap();
    }
    let net = dir.path("cni/net.d");
    fs::create_dir_all(&net).unwrap();
    // No `mtu`: the plugin takes podfwd's pod MTU (1450 in tunnel mode) from its ping.
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": net_name(),
        "plugins": [{
            "type": "podfwd",
            "socket": socket("a"),
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.0.1.128/25", "rangeStart": "10.0.1.130", "rangeEnd": "10.0.1.254"}]],
                "dataDir": ipam,
            },
        }],
    });
    fs::write(
        net.join("10-podfwd.conflist"),
        serde_json::to_string_pretty(&conflist).unwrap(),
    )
    .unwrap();
}

/// The endpoint podfwd on node a lists for a container, by the id the runtime gave CNI.
fn endpoint_of<'a>(list: &'a [Value], cid: &str) -> Option<&'a Value> {
    list.iter().find(|e| e["container_id"] == cid)
}

#[test]
fn containers_from_containerd_reach_pods_through_podfwd() {
    if let Some(why) = missing() {
        unavailable(&why);
        return;
    }
    let plugin = plugin_bin().unwrap();
    let _g = lock();
    let _bed = Bed::up(1450);
    let dir = TempDir::new("containerd");
    let ipam = dir.path("ipam");
    prepare(&dir, &plugin, &ipam);
    let _mounts = MountPoints::ensure(&["/etc/cni/net.d", "/opt/cni/bin"]);
    let a = Podfwd::start("a", &tunnel_config(&dir, "a", |t| t));
    let b = Podfwd::start("b", &tunnel_config(&dir, "b", |t| t));
    let ctd = match Containerd::start(&dir) {
        Ok(c) => c,
        Err(e) => panic!("containerd does not run in this VM: {e}"),
    };

    let ids = [format!("{}-ctr1", pf()), format!("{}-ctr2", pf())];
    let mut containers: Vec<Container> = ids
        .iter()
        .map(|id| Container::run(&ctd, &dir, id))
        .collect();

    // podfwd serves both, under the id containerd's ctr gives CNI: `<namespace>-<id>`.
    let list = endpoints("a");
    assert_eq!(list.len(), 4, "{list:?}");
    let mut ips = Vec::new();
    for id in &ids {
        let cid = format!("default-{id}");
        let e =
            endpoint_of(&list, &cid).unwrap_or_else(|| panic!("no endpoint for {cid}: {list:?}"));
        assert_eq!(e["origin"], "api", "{e}");
        let ip = e["ip"].as_str().unwrap().to_owned();
        assert!(
            ip.starts_with("10.0.1.1") || ip.starts_with("10.0.1.2"),
            "{ip} from 10.0.1.128/25"
        );
        ips.push(ip);
    }
    assert_eq!(plugin_veths("a").len(), 2);
    let mut held = allocations(&ipam, &net_name());
    held.sort();
    let mut want = ips.clone();
    want.sort();
    assert_eq!(held, want, "host-local's allocations");

    // Inside the containers: the address and MTU the plugin gave eth0, then traffic.
    for (k, id) in ids.iter().enumerate() {
        let (code, text) = ctd.exec(id, "addr", &["/bin/ip", "-4", "-o", "addr", "show", "eth0"]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains(&format!("inet {}/32", ips[k])), "{text}");
        let (_, mtu) = ctd.exec(id, "mtu", &["/bin/cat", "/sys/class/net/eth0/mtu"]);
        assert_eq!(mtu.trim(), "1450", "pod MTU from podfwd's ping");
        let (code, text) = ctd.exec(
            id,
            "ping-b",
            &["/bin/ping", "-c", "3", "-W", "2", "10.0.2.2"],
        );
        assert_eq!(code, Some(0), "{id} → 10.0.2.2 (pod b0 on node b): {text}");
        assert!(text.contains("3 packets received"), "{text}");
        let other = &ips[1 - k];
        let (code, text) = ctd.exec(id, "ping-o", &["/bin/ping", "-c", "3", "-W", "2", other]);
        assert_eq!(
            code,
            Some(0),
            "{id} → {other} (the other container): {text}"
        );
        assert!(text.contains("3 packets received"), "{text}");
    }
    assert_eq!(ping("b0", &ips[0], 3), 3, "b0 → container 1");

    // iperf3 from container 1 (the host's /usr/bin/iperf3) to b0 on node b.
    let server = Command::new("ip")
        .args(["netns", "exec", &ns("b0"), "iperf3", "-s", "-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while stdout(&nsx("b0", &["ss", "-Hltn", "sport = :5201"]))
        .trim()
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "iperf3 server not listening"
        );
        sleep(Duration::from_millis(50));
    }
    let (code, text) = ctd.exec(
        &ids[0],
        "iperf",
        &["/usr/bin/iperf3", "-c", "10.0.2.2", "-t", "3", "-J"],
    );
    let mut server = server;
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, Some(0), "{text}");
    let j: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let bytes = j["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    eprintln!(
        "iperf3 container 1 → b0: {bytes} bytes, {:.0} Mbit/s, {} retransmits",
        j["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            / 1e6,
        j["end"]["sum_sent"]["retransmits"]
    );
    assert!(bytes > 1_000_000, "{bytes} bytes delivered");

    // Stopped: ctr deleted the tasks, called CNI DEL, removed the containers.
    for c in &mut containers {
        let st = c.stop();
        assert!(
            st.is_some(),
            "ctr run for {} did not exit after its task was killed: {}",
            c.id,
            c.output(&dir)
        );
    }
    let list = endpoints("a");
    assert_eq!(list.len(), 2, "only the bed's pods: {list:?}");
    assert_eq!(plugin_veths("a"), Vec::<String>::new(), "no lxc left");
    assert_eq!(
        allocations(&ipam, &net_name()),
        Vec::<String>::new(),
        "host-local released"
    );
    let o = ctd.ctr(&["containers", "list", "-q"]);
    assert_eq!(stdout(&o).trim(), "", "containers left in containerd");

    drop(ctd);
    let (code, log) = a.stop_with_log();
    assert_eq!(code.code(), Some(0), "{log}");
    assert!(
        log.contains("frame accounting ok") && !log.contains("MISMATCH"),
        "{log}"
    );
    assert_eq!(b.stop().code(), Some(0));
}
