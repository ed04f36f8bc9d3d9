//! Every check, with the exact text the user sees.

use podfwd_config::Config;

const BASE: &str = "\
node:
  name: node-a
  ip: 198.18.0.1
  uplink: eth0
  pod_cidr: 10.0.1.0/24
mode: tunnel
cluster_cidr: 10.0.0.0/16
gateway: 169.254.1.1
vxlan:
  port: 8472
  vni: 1
endpoints:
  - ip: 10.0.1.2
    interface: lxc0
  - ip: 10.0.1.3
    interface: lxc1
nodes:
  - name: node-b
    ip: 198.18.0.2
    pod_cidr: 10.0.2.0/24
  - name: node-c
    ip: 198.18.0.3
    pod_cidr: 10.0.3.0/24
workers:
  count: 2
  cpus: [0, 1]
umem:
  frames: 4096
  frame_size: 4096
metrics:
  listen: 127.0.0.1:9475
";

const ONLINE: &[usize] = &[0, 1, 2, 3];

fn parse(text: &str) -> Result<Config, Vec<String>> {
    Config::parse_with_cpus(text, "node-a.yaml", Some(ONLINE))
        .map_err(|errs| errs.iter().map(ToString::to_string).collect())
}

/// BASE with `from` (which must occur exactly once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    BASE.replacen(from, to, 1)
}

/// The first error for BASE edited as given.
fn first_error(from: &str, to: &str) -> String {
    match parse(&edit(from, to)) {
        Ok(_) => panic!("`{from}` -> `{to}` was accepted"),
        Err(errs) => errs[0].clone(),
    }
}

#[test]
fn base_is_valid() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.nodes.len(), 2);
    assert_eq!(c.workers.cpus, Some(vec![0, 1]));
}

macro_rules! cases {
    ($($name:ident: $from:expr => $to:expr, $want:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!(first_error($from, $to), $want);
            }
        )*
    };
}

cases! {
    // structure, from the YAML reader
    syntax_error: "  cpus: [0, 1]\n" => "  cpus: [0, 1\n",
        "node-a.yaml:27:5: workers.cpus: YAML syntax error: illegal placement of ':' indicator; check the indentation (spaces only) and quoting";
    syntax_error_tab: "  vni: 1\n" => "\tvni: 1\n",
        "node-a.yaml:10:9: vxlan: YAML syntax error: while scanning a plain scalar, found a tab; check the indentation (spaces only) and quoting";
    unknown_field_top: "mode: tunnel\n" => "mdoe: tunnel\n",
        "node-a.yaml:6:1: mdoe: unknown field `mdoe`: the fields allowed here are node, mode, cluster_cidr, gateway, vxlan, endpoints, nodes, workers, umem, metrics, control, routes, offload; check the spelling and the indentation";
    unknown_field_nested: "    interface: lxc1\n" => "    interface: lxc1\n    mac: aa\n",
        "node-a.yaml:17:5: endpoints[1].mac: unknown field `mac`: the fields allowed here are ip, interface; check the spelling and the indentation";
    missing_field_node: "  uplink: eth0\n" => "",
        "node-a.yaml:4:3: node.uplink: missing required field `uplink` in node: add it (see config/README.md)";
    missing_field_top: "cluster_cidr: 10.0.0.0/16\n" => "",
        "node-a.yaml:29:1: cluster_cidr: missing required field `cluster_cidr` at the top level: add it (see config/README.md)";
    missing_field_item: "    ip: 198.18.0.3\n" => "",
        "node-a.yaml:22:5: nodes[1].ip: missing required field `ip` in nodes[1]: add it (see config/README.md)";
    duplicate_key: "  vni: 1\n" => "  vni: 1\n  vni: 2\n",
        "node-a.yaml:12:3: vxlan.vni: `vni` is given twice in the same section: keep only one";
    not_a_number: "  port: 8472\n" => "  port: eighty\n",
        "node-a.yaml:10:9: vxlan.port: expected a whole number (0 or more): write it without quotes, units or sign";
    negative_number: "  count: 2\n" => "  count: -1\n",
        "node-a.yaml:25:10: workers.count: expected a whole number (0 or more): write it without quotes, units or sign";
    node_not_a_section: "node:\n  name: node-a\n  ip: 198.18.0.1\n  uplink: eth0\n  pod_cidr: 10.0.1.0/24\n" => "node: node-a\n",
        "node-a.yaml:1:7: node: expected a section (indented `key: value` lines) here; see config/README.md for this field's form";
    wrong_type: "  ip: 198.18.0.1\n" => "  ip: [198, 18]\n",
        "node-a.yaml:3:7: node.ip: expected a single value here; see config/README.md for this field's form";

    // addresses
    bad_ip: "  ip: 198.18.0.1\n" => "  ip: 198.18.0.256\n",
        "node-a.yaml:3:7: node.ip: `198.18.0.256` is not an IPv4 address: write four dotted numbers, e.g. 198.18.0.1";
    ip_given_as_cidr: "  - ip: 10.0.1.2\n" => "  - ip: 10.0.1.2/24\n",
        "node-a.yaml:13:9: endpoints[0].ip: `10.0.1.2/24` is a CIDR, not an address: write the address alone, e.g. 10.0.1.2";
    bad_cidr: "cluster_cidr: 10.0.0.0/16" => "cluster_cidr: 10.0.0.0/33",
        "node-a.yaml:7:15: cluster_cidr: `10.0.0.0/33` is not an IPv4 CIDR: write address/prefix-length, e.g. 10.0.1.0/24";
    cidr_without_prefix: "  pod_cidr: 10.0.1.0/24\n" => "  pod_cidr: 10.0.1.0\n",
        "node-a.yaml:5:13: node.pod_cidr: `10.0.1.0` has no prefix length: write it as a CIDR, e.g. 10.0.1.0/24";
    cidr_host_bits: "  pod_cidr: 10.0.1.0/24\n" => "  pod_cidr: 10.0.1.1/24\n",
        "node-a.yaml:5:13: node.pod_cidr: 10.0.1.1/24 has host bits set: did you mean 10.0.1.0/24?";
    node_ip_not_unicast: "  ip: 198.18.0.1\n" => "  ip: 0.0.0.0\n",
        "node-a.yaml:3:7: node.ip: 0.0.0.0 cannot be a node's underlay address: use a unicast address";
    bad_mode: "mode: tunnel" => "mode: vxlan",
        "node-a.yaml:6:7: mode: unknown mode `vxlan`: use `tunnel` (VXLAN between nodes), `native` (the underlay routes PodCIDRs) or `hybrid` (native to on-link nodes, VXLAN to nodes behind a router)";

    // PodCIDRs
    pod_cidr_overlaps_own: "    pod_cidr: 10.0.3.0/24" => "    pod_cidr: 10.0.1.0/25",
        "node-a.yaml:23:15: nodes[1].pod_cidr: 10.0.1.0/25 overlaps node.pod_cidr 10.0.1.0/24 (line 5): give every node its own PodCIDR";
    pod_cidrs_overlap_remote: "    pod_cidr: 10.0.3.0/24" => "    pod_cidr: 10.0.2.128/25",
        "node-a.yaml:23:15: nodes[1].pod_cidr: 10.0.2.128/25 overlaps nodes[0].pod_cidr 10.0.2.0/24 (line 20): give every node its own PodCIDR";
    pod_cidr_outside_cluster: "  pod_cidr: 10.0.1.0/24\n" => "  pod_cidr: 10.1.1.0/24\n",
        "node-a.yaml:5:13: node.pod_cidr: 10.1.1.0/24 is outside cluster_cidr 10.0.0.0/16 (line 7): pick a PodCIDR inside the cluster CIDR, or widen cluster_cidr";
    remote_pod_cidr_outside_cluster: "    pod_cidr: 10.0.3.0/24" => "    pod_cidr: 172.16.3.0/24",
        "node-a.yaml:23:15: nodes[1].pod_cidr: 172.16.3.0/24 is outside cluster_cidr 10.0.0.0/16 (line 7): pick a PodCIDR inside the cluster CIDR, or widen cluster_cidr";

    // endpoints
    endpoint_outside_pod_cidr: "  - ip: 10.0.1.3\n" => "  - ip: 10.0.2.3\n",
        "node-a.yaml:15:9: endpoints[1].ip: 10.0.2.3 is outside node.pod_cidr 10.0.1.0/24 (line 5): local pods take their addresses from this node's PodCIDR";
    endpoint_network_address: "  - ip: 10.0.1.3\n" => "  - ip: 10.0.1.0\n",
        "node-a.yaml:15:9: endpoints[1].ip: 10.0.1.0 is the network address of node.pod_cidr 10.0.1.0/24: give the pod a host address, e.g. 10.0.1.1";
    endpoint_broadcast_address: "  - ip: 10.0.1.3\n" => "  - ip: 10.0.1.255\n",
        "node-a.yaml:15:9: endpoints[1].ip: 10.0.1.255 is the broadcast address of node.pod_cidr 10.0.1.0/24: give the pod a host address below it";
    endpoint_duplicate_ip: "  - ip: 10.0.1.3\n" => "  - ip: 10.0.1.2\n",
        "node-a.yaml:15:9: endpoints[1].ip: 10.0.1.2 is already used by endpoints[0].ip (line 13): give every pod its own address";
    endpoint_duplicate_interface: "    interface: lxc1\n" => "    interface: lxc0\n",
        "node-a.yaml:16:16: endpoints[1].interface: lxc0 is already used by endpoints[0].interface (line 14): every pod has its own host-side veth";
    endpoint_on_uplink: "    interface: lxc1\n" => "    interface: eth0\n",
        "node-a.yaml:16:16: endpoints[1].interface: eth0 is the uplink (node.uplink, line 4): give the pod's host-side veth, e.g. lxc0";
    endpoint_interface_empty: "    interface: lxc1\n" => "    interface: \"\"\n",
        "node-a.yaml:16:16: endpoints[1].interface: interface name is empty: give the interface's name as `ip link` shows it";
    endpoint_interface_too_long: "    interface: lxc1\n" => "    interface: lxc0123456789abc\n",
        "node-a.yaml:16:16: endpoints[1].interface: `lxc0123456789abc` is 16 bytes long: Linux interface names are at most 15 bytes";

    // nodes
    uplink_empty: "  uplink: eth0\n" => "  uplink: ''\n",
        "node-a.yaml:4:11: node.uplink: interface name is empty: give the interface's name as `ip link` shows it";
    uplink_too_long: "  uplink: eth0\n" => "  uplink: eth0-uplink-long\n",
        "node-a.yaml:4:11: node.uplink: `eth0-uplink-long` is 16 bytes long: Linux interface names are at most 15 bytes";
    uplink_bad_chars: "  uplink: eth0\n" => "  uplink: eth0:1\n",
        "node-a.yaml:4:11: node.uplink: `eth0:1` is not a valid interface name: it must not be `.` or `..` nor contain '/', ':' or spaces";
    duplicate_node_name: "  - name: node-c\n" => "  - name: node-b\n",
        "node-a.yaml:21:11: nodes[1].name: node-b is already used by nodes[0].name (line 18): node names must be unique";
    remote_node_named_like_this_node: "  - name: node-c\n" => "  - name: node-a\n",
        "node-a.yaml:21:11: nodes[1].name: node-a is already used by node.name (line 2): node names must be unique";
    duplicate_node_ip: "    ip: 198.18.0.3\n" => "    ip: 198.18.0.2\n",
        "node-a.yaml:22:9: nodes[1].ip: 198.18.0.2 is already used by nodes[0].ip (line 19): every node has its own underlay address";
    remote_node_ip_equals_own: "    ip: 198.18.0.3\n" => "    ip: 198.18.0.1\n",
        "node-a.yaml:22:9: nodes[1].ip: 198.18.0.1 is already used by node.ip (line 3): every node has its own underlay address";
    remote_node_ip_in_cluster: "    ip: 198.18.0.3\n" => "    ip: 10.0.9.1\n",
        "node-a.yaml:22:9: nodes[1].ip: 10.0.9.1 is inside cluster_cidr 10.0.0.0/16 (line 7): underlay and pod addresses must not overlap; use the node's underlay address";
    own_ip_in_cluster: "  ip: 198.18.0.1\n" => "  ip: 10.0.200.1\n",
        "node-a.yaml:3:7: node.ip: 10.0.200.1 is inside cluster_cidr 10.0.0.0/16 (line 7): underlay and pod addresses must not overlap; use the node's address on its uplink";
    gateway_in_cluster: "gateway: 169.254.1.1" => "gateway: 10.0.0.1",
        "node-a.yaml:8:10: gateway: 10.0.0.1 is inside cluster_cidr 10.0.0.0/16 (line 7): pick an address no pod can have; the default 169.254.1.1 (link-local) always works";

    // vxlan
    vni_zero: "  vni: 1\n" => "  vni: 0\n",
        "node-a.yaml:11:8: vxlan.vni: VNI 0 is out of range: a VXLAN network identifier is 24 bits, use 1..=16777215";
    vni_too_big: "  vni: 1\n" => "  vni: 16777216\n",
        "node-a.yaml:11:8: vxlan.vni: VNI 16777216 is out of range: a VXLAN network identifier is 24 bits, use 1..=16777215";
    port_zero: "  port: 8472\n" => "  port: 0\n",
        "node-a.yaml:10:9: vxlan.port: UDP port 0 is out of range: use 1..=65535 (8472 is the Linux/flannel/Cilium default, 4789 the IANA one)";
    port_too_big: "  port: 8472\n" => "  port: 65536\n",
        "node-a.yaml:10:9: vxlan.port: UDP port 65536 is out of range: use 1..=65535 (8472 is the Linux/flannel/Cilium default, 4789 the IANA one)";

    // workers
    workers_zero: "  count: 2\n" => "  count: 0\n",
        "node-a.yaml:25:10: workers.count: 0 workers is out of range: use 1..=16, usually one per core given to podfwd (worker N serves queue N of every interface; the XDP program has 16 queues per interface)";
    workers_too_many: "  count: 2\n" => "  count: 17\n",
        "node-a.yaml:25:10: workers.count: 17 workers is out of range: use 1..=16, usually one per core given to podfwd (worker N serves queue N of every interface; the XDP program has 16 queues per interface)";
    cpus_length_mismatch: "  cpus: [0, 1]\n" => "  cpus: [0, 1, 2]\n",
        "node-a.yaml:26:9: workers.cpus: 3 CPUs listed but workers.count is 2 (line 25): give exactly one CPU per worker, or leave cpus out to let the kernel place workers";
    cpu_not_online: "  cpus: [0, 1]\n" => "  cpus: [0, 7]\n",
        "node-a.yaml:26:13: workers.cpus[1]: CPU 7 is not online on this machine (online: 0-3): pick CPUs from that list";
    cpu_duplicate: "  cpus: [0, 1]\n" => "  cpus: [1, 1]\n",
        "node-a.yaml:26:13: workers.cpus[1]: CPU 1 is already given to workers.cpus[0] (line 26): pin each worker to its own CPU";

    // umem, metrics
    frames_not_power_of_two: "  frames: 4096\n" => "  frames: 3000\n",
        "node-a.yaml:28:11: umem.frames: 3000 frames: use a power of two from 512 to 1048576 (nearest: 2048, 4096)";
    frames_near_minimum: "  frames: 4096\n" => "  frames: 600\n",
        "node-a.yaml:28:11: umem.frames: 600 frames: use a power of two from 512 to 1048576 (nearest: 512, 1024)";
    frames_too_few: "  frames: 4096\n" => "  frames: 256\n",
        "node-a.yaml:28:11: umem.frames: 256 frames: use a power of two from 512 to 1048576";
    frame_size_bad: "  frame_size: 4096\n" => "  frame_size: 1500\n",
        "node-a.yaml:29:15: umem.frame_size: frame size 1500 is not supported: use 2048 or 4096 (AF_XDP frames are half or a whole page)";
    metrics_listen_bad: "  listen: 127.0.0.1:9475\n" => "  listen: localhost\n",
        "node-a.yaml:31:11: metrics.listen: `localhost` is not a socket address: write ip:port, e.g. 127.0.0.1:9475";
    control_socket_relative: "  listen: 127.0.0.1:9475\n" => "  listen: 127.0.0.1:9475\ncontrol:\n  socket: run/podfwd.sock\n",
        "node-a.yaml:33:11: control.socket: `run/podfwd.sock` is not an absolute socket path: write e.g. /run/podfwd/podfwd.sock";
    routes_table_main: "  listen: 127.0.0.1:9475\n" => "  listen: 127.0.0.1:9475\nroutes:\n  table: 254\n",
        "node-a.yaml:33:10: routes.table: table 254 cannot hold learned PodCIDRs: use a table of its own, 1-252 or 256 and up (e.g. 201), not main (254), local (255) or default (253)";
    offload_tx_checksum_unknown: "  listen: 127.0.0.1:9475\n" => "  listen: 127.0.0.1:9475\noffload:\n  tx_checksum: yes\n",
        "node-a.yaml:33:16: offload.tx_checksum: `yes` is not a setting: use `auto` (the kernel's checksum offload where it has AF_XDP TX metadata, else software), `on` (offload, or do not start) or `off` (podfwd completes partial checksums itself)";
    offload_multi_buffer_unknown: "  listen: 127.0.0.1:9475\n" => "  listen: 127.0.0.1:9475\noffload:\n  multi_buffer: jumbo\n",
        "node-a.yaml:33:17: offload.multi_buffer: `jumbo` is not a setting: use `auto` (frames larger than one UMEM frame as AF_XDP descriptor chains where the kernel has them, Linux 6.6+), `on` (chains, or do not start) or `off` (such frames are dropped)";
    offload_unknown_field: "  listen: 127.0.0.1:9475\n" => "  listen: 127.0.0.1:9475\noffload:\n  tso: on\n",
        "node-a.yaml:33:3: offload.tso: unknown field `tso`: the fields allowed here are tx_checksum, multi_buffer; check the spelling and the indentation";
}

#[test]
fn offload_tx_checksum_values() {
    use podfwd_config::TxChecksum;
    assert_eq!(parse(BASE).unwrap().offload.tx_checksum, TxChecksum::Auto);
    for (text, want) in [
        ("auto", TxChecksum::Auto),
        ("on", TxChecksum::On),
        ("off", TxChecksum::Off),
        ("\"off\"", TxChecksum::Off),
    ] {
        let c = parse(&format!("{BASE}offload:\n  tx_checksum: {text}\n")).unwrap();
        assert_eq!(c.offload.tx_checksum, want, "{text}");
        assert_eq!(TxChecksum::from_name(want.as_str()), Some(want));
    }
}

#[test]
fn empty_file() {
    for text in ["", "\n  \n", "# nothing yet\n---\n"] {
        let errs = parse(text).unwrap_err();
        assert_eq!(
            errs,
            ["node-a.yaml: the file is empty: write this node's config (examples in config/, e.g. config/node-a.tunnel.yaml)"]
        );
    }
}

#[test]
fn top_level_not_a_mapping() {
    assert_eq!(parse("just words\n").unwrap_err(), ["node-a.yaml:1:1: expected mapping start at the top of the file: a config is a mapping of sections (node:, cluster_cidr:, ...)"]);
}

#[test]
fn semantic_errors_come_in_file_order() {
    // Broken on lines 26 (cpus), 11 (vni) and 5 (pod_cidr host bits): all reported, by line.
    let text = BASE
        .replacen("  cpus: [0, 1]\n", "  cpus: [0, 9]\n", 1)
        .replacen("  vni: 1\n", "  vni: 0\n", 1)
        .replacen("  pod_cidr: 10.0.1.0/24\n", "  pod_cidr: 10.0.1.5/24\n", 1);
    let errs = parse(&text).unwrap_err();
    let lines: Vec<&str> = errs.iter().map(|e| e.split(':').nth(1).unwrap()).collect();
    assert_eq!(lines, ["5", "11", "26"], "{errs:#?}");
    // `parse` returns the first of them.
    let first = Config::parse(&text, "node-a.yaml").unwrap_err();
    assert_eq!(first.to_string(), errs[0]);
    assert_eq!((first.line, first.column), (Some(5), Some(13)));
    assert_eq!(first.field, "node.pod_cidr");
}

#[test]
fn load_names_the_file() {
    let err = Config::load(std::path::Path::new("/nonexistent/podfwd.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/podfwd.yaml: cannot read the config file: No such file or directory (os error 2)"
    );
}

#[test]
fn vtep_mac_is_parsed_and_bad_ones_refused() {
    let ok = parse(&edit(
        "    pod_cidr: 10.0.2.0/24\n",
        "    pod_cidr: 10.0.2.0/24\n    vtep_mac: 02:fe:c6:12:00:02\n",
    ))
    .unwrap();
    assert_eq!(ok.nodes[0].vtep_mac, Some([2, 0xfe, 0xc6, 0x12, 0, 2]));
    assert_eq!(ok.nodes[1].vtep_mac, None);
    assert_eq!(
        first_error(
            "    pod_cidr: 10.0.2.0/24\n",
            "    pod_cidr: 10.0.2.0/24\n    vtep_mac: 01:00:5e:00:00:01\n"
        ),
        "node-a.yaml:21:15: nodes[0].vtep_mac: \"01:00:5e:00:00:01\" is not a unicast MAC address: write it as six hex bytes, e.g. 02:fe:c6:12:00:02 (flannel publishes it as VtepMAC)"
    );
    assert_eq!(
        first_error(
            "    pod_cidr: 10.0.2.0/24\n",
            "    pod_cidr: 10.0.2.0/24\n    vtep_mac: 02:fe:c6:12:00\n"
        ),
        "node-a.yaml:21:15: nodes[0].vtep_mac: \"02:fe:c6:12:00\" is not a unicast MAC address: write it as six hex bytes, e.g. 02:fe:c6:12:00:02 (flannel publishes it as VtepMAC)"
    );
}

#[test]
fn too_many_endpoints_are_refused() {
    // 512 pods need more than a /24: node a gets 10.0.8.0/22 here.
    let mut eps = String::from("endpoints:\n");
    for i in 0..512u32 {
        eps.push_str(&format!(
            "  - ip: 10.0.{}.{}\n    interface: lxc{i}\n",
            8 + (i + 2) / 256,
            (i + 2) % 256
        ));
    }
    let text = edit(
        "endpoints:\n  - ip: 10.0.1.2\n    interface: lxc0\n  - ip: 10.0.1.3\n    interface: lxc1\n",
        &eps,
    )
    .replacen("  pod_cidr: 10.0.1.0/24\n", "  pod_cidr: 10.0.8.0/22\n", 1);
    let errs = parse(&text).unwrap_err();
    assert_eq!(
        errs[0],
        "node-a.yaml:1035:9: endpoints[511]: more than 511 endpoints: one podfwd serves at most 511 pods (the XDP program's interface table holds 512 interfaces, the uplink included)"
    );
}
