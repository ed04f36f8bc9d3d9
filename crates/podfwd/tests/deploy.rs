//! The install files in deploy/: the systemd unit passes `systemd-analyze verify`, the
//! Kubernetes manifest parses and says what docs/running.md says, and every one of them
//! grants the same capabilities (the set crates/podfwd/tests/caps.rs proves necessary
//! and sufficient). No privileges, no namespaces; nothing is deployed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The required capabilities, as podfwd's start-up check lists them.
const REQUIRED: [&str; 5] = [
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("podfwd-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `systemd-analyze verify` on `unit` (named podfwd.service in a temp dir): its
/// complaints, if any. Exit 0 is not enough: it only warns ("ignoring") about a bad
/// value or an unknown key, so any output counts as a failure.
fn verify(unit: &str, dir: &Path) -> Result<(), String> {
    let path = dir.join("podfwd.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is missing: install Debian's systemd package (scripts/lib.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {text}", out.status))
    }
}

/// The unit with ExecStart pointing at the built binary (verify checks that it exists).
fn unit_for_test() -> String {
    let unit = read("deploy/systemd/podfwd.service");
    let exec = "ExecStart=/usr/local/bin/podfwd ";
    assert!(unit.contains(exec), "the unit runs {exec}...");
    unit.replace(
        exec,
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_podfwd")),
    )
}

fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .collect();
    assert_eq!(lines.len(), 1, "{key} once in the unit");
    lines[0].split_whitespace().map(str::to_owned).collect()
}

#[test]
fn systemd_unit_verifies() {
    let dir = tempdir("unit");
    let unit = unit_for_test();
    verify(&unit, &dir).unwrap_or_else(|e| panic!("systemd-analyze verify: {e}"));
    // The check is live: a broken copy fails it.
    for (from, to) in [
        ("Type=notify\n", "Type=notfy\n"),
        ("Restart=on-failure\n", "Restart=on-failur\n"),
        ("NoNewPrivileges=yes\n", "NoNewPrivilege=yes\n"),
    ] {
        assert!(unit.contains(from));
        let broken = unit.replace(from, to);
        assert!(verify(&broken, &dir).is_err(), "{to:?} passed verify");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn systemd_unit_has_what_the_docs_promise() {
    let unit = read("deploy/systemd/podfwd.service");
    for line in [
        "Type=notify",
        "ExecStart=/usr/local/bin/podfwd run --config /etc/podfwd/node.yaml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RuntimeDirectory=podfwd",
        "RuntimeDirectoryMode=0700",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "ReadWritePaths=/run/podfwd",
        "After=network-online.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks {line}");
    }
    assert_eq!(unit_values(&unit, "CapabilityBoundingSet"), REQUIRED);
    assert_eq!(unit_values(&unit, "AmbientCapabilities"), REQUIRED);
}

fn manifest() -> Vec<Value> {
    let text = read("deploy/kubernetes/podfwd.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("podfwd.yaml parses");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in podfwd.yaml"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn daemonset_manifest_parses_and_grants_the_same_capabilities() {
    let docs = manifest();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet"
        ]
    );
    let ds = kind(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], false);
    let main = &pod["containers"][0];
    assert_eq!(main["name"], "podfwd");
    assert_eq!(
        strings(&main["command"]),
        [
            "/usr/local/bin/podfwd",
            "run",
            "--config",
            "/etc/podfwd/node.yaml"
        ]
    );
    let sc = &main["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    let add: Vec<String> = strings(&sc["capabilities"]["add"])
        .into_iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    assert_eq!(add, REQUIRED, "securityContext.capabilities.add");
    // Init containers need no capabilities at all.
    for init in pod["initContainers"].as_array().unwrap() {
        assert_eq!(init["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert!(init["securityContext"]["capabilities"]["add"].is_null());
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &main[probe]["httpGet"];
        assert_eq!(get["path"], path);
        assert_eq!(get["port"], 9475);
        assert_eq!(get["host"], "127.0.0.1");
    }
    let host_paths: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["hostPath"]["path"].as_str())
        .collect();
    assert_eq!(
        host_paths,
        ["/run/podfwd", "/opt/cni/bin", "/etc/cni/net.d"]
    );
    let mounts = strings(&Value::Array(
        main["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].clone())
            .collect(),
    ));
    assert!(mounts.contains(&"/run/podfwd".to_owned()));
}

#[test]
fn docs_list_the_same_capabilities() {
    let docs = read("docs/running.md");
    let line = REQUIRED.join(" ");
    assert!(
        docs.contains(&format!("`{line}`")),
        "docs/running.md does not list `{line}`"
    );
    for cap in REQUIRED {
        assert!(
            docs.contains(&format!("| `{cap}` |")),
            "docs/running.md has no row for {cap}"
        );
    }
}

/// render.sh from the ConfigMap, run with a stand-in `kubectl` (two nodes, one without a
/// PodCIDR yet) and `ip`: the node config it writes passes `podfwd check` and the
/// conflist carries the node's PodCIDR.
#[test]
fn render_script_makes_a_valid_node_config() {
    let docs = manifest();
    let data = &kind(&docs, "ConfigMap")["data"];
    let dir = tempdir("render");
    let (tmpl, out, bin) = (dir.join("config"), dir.join("out"), dir.join("bin"));
    for d in [&tmpl, &out, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    for f in ["node.yaml.tmpl", "10-podfwd.conflist.tmpl", "render.sh"] {
        std::fs::write(tmpl.join(f), data[f].as_str().unwrap()).unwrap();
    }
    let kubectl = r#"#!/bin/sh
case "$*" in
  "get node node-a -o jsonpath={.spec.podCIDR}") printf '10.0.1.0/24' ;;
  "get nodes -o jsonpath="*) printf 'node-a 10.0.1.0/24 198.18.0.1 fd00::1\nnode-b 10.0.2.0/24 fd00::2 198.18.0.2\nnode-c  198.18.0.3\n' ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac
"#;
    let ip = "#!/bin/sh\nprintf '1: lo    inet 127.0.0.1/8 scope host lo\\n2: ens5    inet 198.18.0.1/24 brd 198.18.0.255 scope global ens5\\n'\n";
    for (name, text) in [("kubectl", kubectl), ("ip", ip)] {
        std::fs::write(bin.join(name), text).unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(bin.join(name))
            .status()
            .unwrap();
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_podfwd"), bin.join("podfwd")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let o = Command::new("sh")
        .arg(tmpl.join("render.sh"))
        .env("PATH", path)
        .env("NODE_NAME", "node-a")
        .env("NODE_IP", "198.18.0.1")
        .env("TEMPLATES", &tmpl)
        .env("OUT", &out)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "render.sh failed:\n{said}");
    assert!(said.contains("config") && said.contains("OK"), "{said}");
    let node = std::fs::read_to_string(out.join("node.yaml")).unwrap();
    assert!(node.contains("  uplink: ens5\n"), "{node}");
    assert!(
        node.contains("nodes:\n  - name: node-b\n    ip: 198.18.0.2\n    pod_cidr: 10.0.2.0/24\n"),
        "{node}"
    );
    assert!(
        !node.contains("node-c"),
        "a node without a PodCIDR is skipped: {node}"
    );
    let conf: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("10-podfwd.conflist")).unwrap())
            .unwrap();
    assert_eq!(conf["plugins"][0]["type"], "podfwd");
    assert_eq!(
        conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        "10.0.1.0/24"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
