//! The shipped examples (config/) load, and resolve to the test cluster's topology.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use podfwd_config::{Config, Mode};

fn example(name: &str) -> Config {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(name);
    // The examples pin no CPUs, so they load on any machine.
    Config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn all_four_examples_load() {
    for (file, name, ip, pods, other, mode) in [
        (
            "node-a.tunnel.yaml",
            "node-a",
            [198, 18, 0, 1],
            1,
            "node-b",
            Mode::Tunnel,
        ),
        (
            "node-b.tunnel.yaml",
            "node-b",
            [198, 18, 0, 2],
            2,
            "node-a",
            Mode::Tunnel,
        ),
        (
            "node-a.native.yaml",
            "node-a",
            [198, 18, 0, 1],
            1,
            "node-b",
            Mode::Native,
        ),
        (
            "node-b.native.yaml",
            "node-b",
            [198, 18, 0, 2],
            2,
            "node-a",
            Mode::Native,
        ),
        (
            "node-a.hybrid.yaml",
            "node-a",
            [198, 18, 0, 1],
            1,
            "node-b",
            Mode::Hybrid,
        ),
        (
            "node-b.hybrid.yaml",
            "node-b",
            [198, 18, 0, 2],
            2,
            "node-a",
            Mode::Hybrid,
        ),
    ] {
        let c = example(file);
        assert_eq!(c.mode, mode, "{file}");
        assert_eq!(c.node.name, name);
        assert_eq!(c.node.ip, Ipv4Addr::from(ip));
        assert_eq!(c.node.uplink, "eth0");
        assert_eq!(c.node.pod_cidr.to_string(), format!("10.0.{pods}.0/24"));
        assert_eq!(c.cluster_cidr.to_string(), "10.0.0.0/16");
        assert_eq!(c.gateway, Ipv4Addr::new(169, 254, 1, 1));
        assert_eq!((c.vxlan.port, c.vxlan.vni), (8472, 1));
        let eps: Vec<String> = c
            .endpoints
            .iter()
            .map(|e| format!("{}={}", e.ip, e.interface))
            .collect();
        assert_eq!(
            eps,
            [format!("10.0.{pods}.2=lxc0"), format!("10.0.{pods}.3=lxc1")]
        );
        assert_eq!(c.nodes.len(), 1);
        assert_eq!(c.nodes[0].name, other);
        assert_eq!(c.workers.count, 1);
        assert_eq!(c.workers.cpus, None);
        assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9475");
        assert!(c.source.ends_with(file));
    }
}

#[test]
fn tunnel_and_native_examples_differ_only_in_mode() {
    for node in ["node-a", "node-b"] {
        let tunnel = example(&format!("{node}.tunnel.yaml"));
        let native = example(&format!("{node}.native.yaml"));
        let native_as_tunnel = Config {
            mode: Mode::Tunnel,
            source: tunnel.source.clone(),
            ..native
        };
        assert_eq!(native_as_tunnel, tunnel);
    }
}

#[test]
fn defaults_fill_optional_sections() {
    let text = "\
node:
  name: solo
  ip: 198.18.0.9
  uplink: eth0
  pod_cidr: 10.0.9.0/24
cluster_cidr: 10.0.0.0/16
";
    let c = Config::parse(text, "solo.yaml").unwrap();
    assert_eq!(c.mode, Mode::Tunnel);
    assert_eq!(c.gateway, Ipv4Addr::new(169, 254, 1, 1));
    assert_eq!((c.vxlan.port, c.vxlan.vni), (8472, 1));
    assert!(c.endpoints.is_empty() && c.nodes.is_empty());
    assert_eq!((c.workers.count, c.workers.cpus.clone()), (1, None));
    assert_eq!((c.umem.frames, c.umem.frame_size), (16384, 4096));
    assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9475");
    // Empty sections mean "all defaults" too.
    let with_empty = format!("{text}vxlan:\nworkers:\numem:\nmetrics:\nendpoints:\nnodes:\n");
    assert_eq!(Config::parse(&with_empty, "solo.yaml").unwrap(), c);
}

#[test]
fn cpus_are_checked_against_this_machine() {
    // `parse` reads /sys/devices/system/cpu/online; CPU 4095 is online nowhere here.
    let text = "\
node: {name: a, ip: 198.18.0.1, uplink: eth0, pod_cidr: 10.0.1.0/24}
cluster_cidr: 10.0.0.0/16
workers: {count: 1, cpus: [4095]}
";
    let online = podfwd_config::online_cpus().expect("/sys/devices/system/cpu/online readable");
    assert!(online.contains(&0));
    let err = Config::parse(text, "a.yaml").unwrap_err();
    assert_eq!(err.field, "workers.cpus[0]");
    assert!(
        err.message
            .starts_with("CPU 4095 is not online on this machine (online: 0"),
        "{err}"
    );
}
