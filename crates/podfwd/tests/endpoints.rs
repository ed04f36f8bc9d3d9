//! Pods added and removed while podfwd runs (`podfwd endpoint add|del|list` over the
//! control socket): forwarding starts and stops without a restart, a flow between two
//! other pods does not notice, an added pod survives a restart of podfwd, and every frame
//! is accounted for when podfwd stops.

mod common;

use std::process::Output;

use common::*;
use serde_json::Value;

const SOCK_A: &str = "/run/podfwd/node-a.sock";

/// `podfwd endpoint ARGS` in node a.
fn endpoint(args: &[&str]) -> Output {
    let mut v = vec![bin().to_str().unwrap().to_owned(), "endpoint".into()];
    v.extend(args.iter().map(|s| (*s).to_owned()));
    v.extend(["--socket".into(), SOCK_A.into()]);
    let refs: Vec<&str> = v.iter().map(String::as_str).collect();
    nsx("a", &refs)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(o)
}

/// Whether node a's interface `name` holds an XDP program.
fn has_xdp(name: &str) -> bool {
    xdp_attached("a")
        .iter()
        .any(|n| n.split('@').next() == Some(name))
}

fn listed() -> Vec<Value> {
    let text = ok(&endpoint(&["list", "--json"]));
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

#[test]
fn endpoints_come_and_go_live() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let state = std::path::Path::new("/run/podfwd/node-a.endpoints.json");
    let _ = std::fs::remove_file(state);
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    let b = Podfwd::start("b", &config("node-b.tunnel.yaml"));
    let flow = Flow::start("a0", "b0", "10.0.2.2", 8);

    // A new pod a2 (10.0.1.4 behind lxc2): served as soon as it is added.
    topology(&["pod-add", "a", "2", "1450"]);
    assert_eq!(
        ok(&endpoint(&[
            "add",
            "10.0.1.4",
            "lxc2",
            "--container-id",
            "c-a2"
        ])),
        "endpoint 10.0.1.4 on lxc2 added\n"
    );
    // Served once podfwd knows the new pod's MAC (the kernel resolves it on request).
    a.wait_ready();
    assert_eq!(ping("a2", "10.0.2.2", 3), 3, "to a pod on the other node");
    assert_eq!(ping("a2", "10.0.1.2", 3), 3, "to a pod on the same node");
    assert!(has_xdp("lxc2"));
    let l = listed();
    assert_eq!(l.len(), 3, "{l:?}");
    assert_eq!(l[2]["ip"], "10.0.1.4");
    assert_eq!(l[2]["origin"], "api");
    assert_eq!(l[2]["container_id"], "c-a2");
    let st = a.status();
    let lxc2 = st["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lxc2")
        .expect("lxc2 in status")
        .clone();
    // At least the three echo requests of one ping run (counters are published within a
    // millisecond or so of the frames; the status may be read just before).
    assert!(lxc2["rx_packets"].as_u64().unwrap() >= 3, "{lxc2}");

    // Removed: detached, no longer forwarded, not listed.
    assert_eq!(
        ok(&endpoint(&["del", "lxc2"])),
        "endpoint 10.0.1.4 on lxc2 removed\n"
    );
    assert!(!has_xdp("lxc2"));
    assert_eq!(ping("a2", "10.0.2.2", 2), 0);
    assert_eq!(listed().len(), 2);
    assert_eq!(
        ok(&endpoint(&["del", "lxc2"])),
        "endpoint lxc2 was not served\n"
    );
    let o = endpoint(&["add", "10.0.2.9", "lxc2"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: endpoint 10.0.2.9: not a pod address of this node's PodCIDR 10.0.1.0/24\n"
    );

    // The flow between a0 and b0 did not notice.
    let (bytes, retransmits) = flow.finish();
    assert!(bytes > 10_000_000, "{bytes} bytes");
    assert_eq!(retransmits, 0);

    // Added again, podfwd restarted: it comes back from the state file.
    ok(&endpoint(&["add", "10.0.1.4", "lxc2"]));
    let (code, log) = a.stop_with_log();
    assert_eq!(code.code(), Some(0), "{log}");
    assert!(
        log.contains("frame accounting ok") && !log.contains("MISMATCH"),
        "{log}"
    );
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    assert!(
        a.log_text()
            .contains("endpoint 10.0.1.4 on lxc2 restored from the state file"),
        "{}",
        a.log_text()
    );
    assert_eq!(ping("a2", "10.0.2.2", 3), 3);
    ok(&endpoint(&["del", "10.0.1.4"]));
    topology(&["pod-del", "a", "2"]);
    let (code, log) = a.stop_with_log();
    assert_eq!(code.code(), Some(0), "{log}");
    assert!(
        log.contains("frame accounting ok") && !log.contains("MISMATCH"),
        "{log}"
    );
    assert_eq!(b.stop().code(), Some(0));
    assert!(xdp_attached("a").is_empty());
    let _ = std::fs::remove_file(state);
}

#[test]
fn the_control_socket_is_root_only() {
    require_root!();
    let _g = lock();
    let _bed = Bed::up(1450);
    let a = Podfwd::start("a", &config("node-a.tunnel.yaml"));
    let meta = std::fs::metadata(SOCK_A).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    // A non-root process that gets a connection (here: the socket and its directory
    // opened up for the test) is refused by its credentials.
    let dir_mode = std::fs::metadata("/run/podfwd").unwrap().permissions();
    for (mode, path) in [("0666", SOCK_A), ("0711", "/run/podfwd")] {
        let _ = std::process::Command::new("chmod")
            .args([mode, path])
            .status();
    }
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .args(["endpoint", "list", "--socket", SOCK_A])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    std::fs::set_permissions("/run/podfwd", dir_mode).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: permission denied: the control socket is root-only (peer uid 65534)\n"
    );
    // The metrics listener changes nothing.
    let o = nsx(
        "a",
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "http://127.0.0.1:9475/reload",
        ],
    );
    assert_eq!(stdout(&o), "404");
    assert_eq!(a.stop().code(), Some(0));
    assert!(
        !std::path::Path::new(SOCK_A).exists(),
        "socket removed at stop"
    );
}
