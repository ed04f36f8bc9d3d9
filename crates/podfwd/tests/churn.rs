//! Pods come and go through the CNI plugin while podfwd forwards: 200 pods added and
//! deleted on node a in batches during a TCP flow between two other pods (the flow must
//! not lose a segment), and 256 pods attached to node a at once.
//!
//! The plugin `podfwd-cni` is invoked exactly as a runtime does (see `runtime`): one
//! netns per pod made with `ip netns add`, host-local with its dataDir in a temp dir,
//! node a's control socket under this prefix. Set `PODFWD_TEST_PF` to run beside another
//! bed (e.g. `PODFWD_TEST_PF=pfz cargo test -p podfwd --test churn`).

mod common;
mod runtime;

use std::time::{Duration, Instant};

use common::*;
use runtime::*;
use serde_json::{json, Value};

/// ADD (or DEL) pods `ids` at once, each in its namespace `<pf>-a<i>`; returns each
/// pod's result in order, or panics naming every failure.
fn plugin_batch(
    plugin: &std::path::Path,
    command: &str,
    ids: &[usize],
    pods: &mut PodNamespaces,
    conf: &Value,
) -> Vec<Value> {
    let children: Vec<_> = ids
        .iter()
        .map(|&i| {
            let netns = if command == "ADD" {
                pods.add(i)
            } else {
                format!("/run/netns/{}", ns(&format!("a{i}")))
            };
            spawn_plugin(plugin, command, &format!("churn-{i}"), &netns, conf)
        })
        .collect();
    let results: Vec<_> = children.into_iter().map(plugin_result).collect();
    let failed: Vec<String> = ids
        .iter()
        .zip(&results)
        .filter_map(|(i, r)| r.as_ref().err().map(|e| format!("pod {i}: {e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "{command} failed for {} of {} pods:\n{}",
        failed.len(),
        ids.len(),
        failed.join("\n")
    );
    if command == "DEL" {
        for &i in ids {
            pods.del(i);
        }
    }
    results.into_iter().map(Result::unwrap).collect()
}

/// rx_packets of the interfaces `names` in a `podfwd status --json` document.
fn rx_of(status: &Value, names: &[&str]) -> u64 {
    status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| names.contains(&i["name"].as_str().unwrap_or("")))
        .filter_map(|i| i["rx_packets"].as_u64())
        .sum()
}

/// One ping (1 s timeout) from each pod `<pf>-a<i>` to `dst`, all at once; the pods
/// (index, address) that got no reply.
fn unreachable(ids: &[usize], added: &[Value], dst: &str) -> Vec<(usize, String)> {
    let pings: Vec<_> = ids
        .iter()
        .map(|&i| {
            std::process::Command::new("ip")
                .args(["netns", "exec", &ns(&format!("a{i}"))])
                .args(["ping", "-c", "1", "-W", "1", "-q", dst])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    pings
        .into_iter()
        .zip(ids.iter().zip(added))
        .filter_map(|(mut p, (&i, r))| (!p.wait().unwrap().success()).then(|| (i, pod_ip(r))))
        .collect()
}

/// The pod address of an ADD result (`10.0.1.10/32` → `10.0.1.10`).
fn pod_ip(result: &Value) -> String {
    let a = result["ips"][0]["address"].as_str().unwrap();
    a.split('/').next().unwrap().to_owned()
}

/// Ready to run: root, host-local, the plugin binary.
fn setup() -> Option<std::path::PathBuf> {
    if !is_root() {
        unavailable("namespace tests need root");
        return None;
    }
    if !std::path::Path::new(CNI_LIB).join("host-local").is_file() {
        unavailable("host-local not in /usr/lib/cni (apt-get install containernetworking-plugins)");
        return None;
    }
    match plugin_bin() {
        Ok(p) => Some(p),
        Err(e) => {
            unavailable(&e);
            None
        }
    }
}

#[test]
fn churn_of_200_pods_does_not_disturb_a_flow() {
    let Some(plugin) = setup() else { return };
    let _g = lock();
    let _bed = Bed::up(1450);
    let dir = TempDir::new("churn");
    let a = Podfwd::start("a", &tunnel_config(&dir, "a", |t| t));
    let b = Podfwd::start("b", &tunnel_config(&dir, "b", |t| t));
    let name = format!("{}-churn", pf());
    let ipam = dir.path("ipam");
    let conf = net_conf(
        &name,
        json!([[{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.10", "rangeEnd": "10.0.1.254"}]]),
        &ipam,
    );
    let mut pods = PodNamespaces::default();

    // Long enough for the churn on a loaded 2-core machine (45-55 s measured there).
    const FLOW_SECS: u32 = 75;
    const PODS: usize = 200;
    const BATCH: usize = 20;
    let flow = Flow::start("a0", "b0", "10.0.2.2", FLOW_SECS);
    std::thread::sleep(Duration::from_secs(1));
    let start = Instant::now();
    let (mut add_time, mut del_time) = (Duration::ZERO, Duration::ZERO);
    let mut removed_rx = 0;
    let mut unreached = Vec::new();
    for batch in 0..PODS / BATCH {
        let ids: Vec<usize> = (0..BATCH).map(|k| 10 + batch * BATCH + k).collect();
        let t = Instant::now();
        let added = plugin_batch(&plugin, "ADD", &ids, &mut pods, &conf);
        add_time += t.elapsed();
        // Served as soon as ADD returned: listed, and every one reaches node b.
        assert_eq!(endpoints("a").len(), 2 + BATCH);
        let missed = unreachable(&ids, &added, "10.0.2.2");
        let st = a.status();
        for (i, ip) in missed {
            let veth = &added[i - ids[0]]["interfaces"][0]["name"];
            let port = st["interfaces"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == *veth)
                .cloned()
                .unwrap_or_default();
            unreached.push(format!(
                "batch {batch}: pod {i} ({ip}, {veth}): rx_packets {}, xsk_fill_ring_empty {}, xsk_rx_dropped {}; worker 0 UMEM frames in use {} of {}",
                port["rx_packets"],
                port["xsk_fill_ring_empty"],
                port["xsk_rx_dropped"],
                st["workers"][0]["umem_in_use"],
                st["workers"][0]["umem_frames"]
            ));
        }
        // A deleted pod's interface leaves `podfwd status` with its counters: keep what
        // it received (the pings above) for the frame balance at the end.
        let veths: Vec<&str> = added
            .iter()
            .map(|r| r["interfaces"][0]["name"].as_str().unwrap())
            .collect();
        removed_rx += rx_of(&st, &veths);
        let t = Instant::now();
        plugin_batch(&plugin, "DEL", &ids, &mut pods, &conf);
        del_time += t.elapsed();
    }
    let churn = start.elapsed();
    eprintln!(
        "churn: {PODS} pods added and deleted in {churn:?} (ADD batches {add_time:?}, DEL batches {del_time:?}, {BATCH} at a time)"
    );
    assert!(
        churn < Duration::from_secs(u64::from(FLOW_SECS) - 2),
        "the churn ({churn:?}) outlasted the {FLOW_SECS} s flow: it did not all happen under traffic"
    );

    let (bytes, retransmits) = flow.finish();
    eprintln!("flow a0 -> b0: {bytes} bytes, {retransmits} retransmits");
    assert!(bytes > 10_000_000, "{bytes} bytes");
    // Where frames of the flow could have been lost: the ring counters of the ports it
    // crosses, and every non-zero drop reason, on both nodes.
    let losses = |st: &Value| -> String {
        let ports: Vec<String> = st["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "eth0" || p["name"] == "lxc0")
            .map(|p| {
                format!(
                    "{} fill_ring_empty {} rx_dropped {} rx_ring_full {}",
                    p["name"], p["xsk_fill_ring_empty"], p["xsk_rx_dropped"], p["xsk_rx_ring_full"]
                )
            })
            .collect();
        let drops: Vec<String> = st["drops"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.as_u64() != Some(0))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!("{}; drops: {}", ports.join(", "), drops.join(", "))
    };
    assert_eq!(
        retransmits,
        0,
        "retransmits of the a0 -> b0 flow during the churn; node a: {}; node b: {}",
        losses(&a.status()),
        losses(&b.status())
    );

    // Back to the bed's two pods: nothing listed, attached, or allocated.
    let l = endpoints("a");
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(plugin_veths("a"), Vec::<String>::new());
    assert_eq!(allocations(&ipam, &name), Vec::<String>::new());
    assert_eq!(xdp_attached("a").len(), 3, "eth0, lxc0, lxc1");

    // Every frame podfwd took in was forwarded, passed or dropped for a reason.
    std::thread::sleep(Duration::from_millis(500));
    let st = a.status();
    let (rx, accounted) = frame_balance(&st);
    // What the deleted pods' ports received, as podfwd counted it when it closed them
    // (sampling status before each DEL misses the frames in between).
    let sampled = removed_rx;
    let removed_rx = st["rx_packets_removed_ports"].as_u64().unwrap();
    assert!(
        removed_rx >= sampled,
        "{removed_rx} < {sampled} sampled before the DELs"
    );
    eprintln!(
        "node a: {rx} frames received on the interfaces it serves now + {removed_rx} on the deleted pods' = {}, {accounted} accounted for",
        rx + removed_rx
    );
    assert_eq!(
        rx + removed_rx,
        accounted,
        "frames received vs actions + passed + drops"
    );
    let (code, log) = a.stop_with_log();
    assert_eq!(code.code(), Some(0), "{log}");
    assert!(
        log.contains("frame accounting ok") && !log.contains("MISMATCH"),
        "{log}"
    );
    assert_eq!(b.stop().code(), Some(0));
    assert!(
        unreached.is_empty(),
        "{} of {PODS} pods could not ping 10.0.2.2 right after their ADD:\n{}",
        unreached.len(),
        unreached.join("\n")
    );
}

#[test]
fn two_hundred_fifty_six_pods_on_one_node() {
    let Some(plugin) = setup() else { return };
    let _g = lock();
    let _bed = Bed::up(1450);
    let dir = TempDir::new("pods256");
    // 256 pods do not fit a /24: node a's PodCIDR becomes 10.0.0.0/23 (the bed's pods
    // 10.0.1.2 and .3 are in it), on both nodes. 257 interfaces × 128 frames need more
    // than the default 16384 UMEM frames.
    let cidr = |t: String| t.replace("pod_cidr: 10.0.1.0/24", "pod_cidr: 10.0.0.0/23");
    let a = Podfwd::start(
        "a",
        &tunnel_config(&dir, "a", |t| {
            cidr(t).replace("frames: 16384", "frames: 65536")
        }),
    );
    let b = Podfwd::start("b", &tunnel_config(&dir, "b", cidr));
    let name = format!("{}-pods256", pf());
    let ipam = dir.path("ipam");
    // 10.0.0.2 ..= 10.0.1.1: 256 addresses, clear of 10.0.1.2 and .3.
    let conf = net_conf(
        &name,
        json!([[{"subnet": "10.0.0.0/23", "rangeStart": "10.0.0.2", "rangeEnd": "10.0.1.1"}]]),
        &ipam,
    );
    let mut pods = PodNamespaces::default();

    const MORE: usize = 254;
    let ids: Vec<usize> = (10..10 + MORE).collect();
    let start = Instant::now();
    let mut results = Vec::new();
    for chunk in ids.chunks(32) {
        results.extend(plugin_batch(&plugin, "ADD", chunk, &mut pods, &conf));
    }
    eprintln!("{MORE} pods added in {:?}", start.elapsed());
    let l = endpoints("a");
    assert_eq!(l.len(), 2 + MORE, "endpoints listed");
    assert_eq!(
        a.status()["interfaces"].as_array().unwrap().len(),
        3 + MORE,
        "uplink + 256 pod interfaces"
    );

    // Every one reaches node b; a few of them each other (first, middle, last).
    let unreached: Vec<String> = ids
        .chunks(32)
        .zip(results.chunks(32))
        .flat_map(|(i, r)| unreachable(i, r, "10.0.2.2"))
        .map(|(i, ip)| format!("pod {i} ({ip})"))
        .collect();
    assert!(
        unreached.is_empty(),
        "{} of {MORE} pods cannot ping 10.0.2.2:\n{}",
        unreached.len(),
        unreached.join("\n")
    );
    let pick = [0, MORE / 2, MORE - 1];
    for (j, &k) in pick.iter().enumerate() {
        let from = format!("a{}", ids[k]);
        let to = pod_ip(&results[pick[(j + 1) % pick.len()]]);
        assert_eq!(ping(&from, &to, 2), 2, "pod {k} → {to}");
    }
    assert_eq!(
        ping("b0", &pod_ip(&results[MORE - 1]), 2),
        2,
        "b0 → the last pod"
    );

    for chunk in ids.chunks(32) {
        plugin_batch(&plugin, "DEL", chunk, &mut pods, &conf);
    }
    assert_eq!(endpoints("a").len(), 2);
    assert_eq!(plugin_veths("a"), Vec::<String>::new());
    assert_eq!(allocations(&ipam, &name), Vec::<String>::new());
    let (code, log) = a.stop_with_log();
    assert_eq!(code.code(), Some(0), "{log}");
    assert!(log.contains("frame accounting ok") && !log.contains("MISMATCH"));
    assert_eq!(b.stop().code(), Some(0));
}
