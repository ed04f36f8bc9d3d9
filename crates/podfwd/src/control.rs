//! The control thread: config, XDP attach, sockets, neighbours, snapshots, signals.
//!
//! Start-up order: load and validate the config (nothing touched yet), look up every
//! interface, load the steering program and attach it through bpf_links, create each
//! worker's UMEM and sockets and register them in the XSKMAP, build the first route
//! snapshot, start the workers and the HTTP listener. Then, once a second, refresh
//! next-hop and pod MACs from the kernel's neighbour table and publish a new snapshot when
//! anything changed. An interface re-created under the same name (new ifindex) is
//! attached again and every worker replaces its socket for it, without a restart.
//! SIGTERM/SIGINT stop the workers and detach everything (exit 0); SIGHUP (or
//! `podfwd reload`) re-reads the config.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bpf::{Role, Steering, SteeringConfig};
use podfwd_config::Config;
use route::{LocalNode, PortRole, Snapshot, SnapshotBuilder};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use wire::ethernet::fmt_mac;
use xsk::{BindMode, SocketConfig, Umem, UmemConfig, XskSocket};

use crate::ifaces::{self, IfaceInfo};
use crate::neigh::{self, NeighTable};
use crate::stats::{now_ms, WorkerShared};
use crate::views::{ControlRequest, NodeView, PortView, StatusView};
use crate::worker::{ReplaceSocket, Worker};

/// How often the control thread makes the kernel re-validate remote nodes' neighbour
/// entries (see the control loop).
const NEIGH_REPROBE: Duration = Duration::from_secs(10);

/// Frames one copy-mode TX wakeup may send (`XDP_MAX_TX_SKB_BUDGET`).
const TX_BUDGET: u32 = 512;

/// Errors that stop `podfwd run` before or while starting.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config was refused.
    #[error("{0}")]
    Config(#[from] podfwd_config::ConfigError),
    /// An interface is missing or unreadable.
    #[error("{0}")]
    Iface(#[from] ifaces::IfaceError),
    /// Loading or attaching the XDP program failed.
    #[error("{0}")]
    Bpf(#[from] bpf::BpfError),
    /// Creating or binding an AF_XDP socket failed.
    #[error("worker {worker}, interface {iface}: {source}")]
    Xsk {
        /// Worker number.
        worker: usize,
        /// Interface name.
        iface: String,
        /// The socket error.
        source: xsk::XskError,
    },
    /// The route table could not be built.
    #[error("{0}")]
    Route(#[from] route::RouteError),
    /// Anything else, with its explanation.
    #[error("{0}")]
    Other(String),
}

/// The interface set a config needs: uplink first, then each endpoint's interface.
pub(crate) fn port_names(cfg: &Config) -> Vec<String> {
    let mut v = vec![cfg.node.uplink.clone()];
    v.extend(cfg.endpoints.iter().map(|e| e.interface.clone()));
    v
}

fn steering_config(cfg: &Config) -> SteeringConfig {
    SteeringConfig {
        cluster_cidr: (cfg.cluster_cidr.network(), cfg.cluster_cidr.prefix_len()),
        pod_cidr: (cfg.node.pod_cidr.network(), cfg.node.pod_cidr.prefix_len()),
        node_ip: cfg.node.ip,
        vxlan_port: cfg.vxlan.port,
        mode: cfg.mode,
    }
}

/// Build a route snapshot from the config, the interfaces and the neighbour table.
///
/// # Errors
/// When the route table refuses the entries (should not happen after validation).
pub fn build_snapshot(
    generation: u64,
    cfg: &Config,
    ports: &[IfaceInfo],
    neigh: &NeighTable,
) -> Result<Snapshot, route::RouteError> {
    let local = LocalNode {
        name: cfg.node.name.clone(),
        ip: cfg.node.ip,
        pod_cidr: cfg.node.pod_cidr,
        cluster_cidr: cfg.cluster_cidr,
        gateway: cfg.gateway,
        mode: cfg.mode,
        vni: cfg.vxlan.vni,
        vxlan_port: cfg.vxlan.port,
        uplink: 0,
    };
    let mut b = SnapshotBuilder::new(generation, local);
    for (i, p) in ports.iter().enumerate() {
        let role = if i == 0 {
            PortRole::Uplink
        } else {
            PortRole::Pod
        };
        b.port(&p.name, role, p.mac, p.mtu);
    }
    for (i, ep) in cfg.endpoints.iter().enumerate() {
        let port = u16::try_from(i + 1).map_err(|_| route::RouteError::TooMany("endpoints"))?;
        b.endpoint(
            ep.ip,
            port,
            neigh.get(&(ep.ip, ep.interface.clone())).copied(),
        );
    }
    for n in &cfg.nodes {
        let mac = neigh.get(&(n.ip, cfg.node.uplink.clone())).copied();
        b.node(&n.name, n.ip, n.pod_cidr, mac);
        if let Some(v) = n.vtep_mac {
            b.vtep_mac(v);
        }
    }
    b.build()
}

/// The MACs a snapshot depends on, to notice neighbour changes.
fn neigh_key(cfg: &Config, neigh: &NeighTable) -> Vec<Option<[u8; 6]>> {
    cfg.nodes
        .iter()
        .map(|n| neigh.get(&(n.ip, cfg.node.uplink.clone())).copied())
        .chain(
            cfg.endpoints
                .iter()
                .map(|e| neigh.get(&(e.ip, e.interface.clone())).copied()),
        )
        .collect()
}

fn trigger_missing(cfg: &Config, neigh: &NeighTable) {
    for n in &cfg.nodes {
        if !neigh.contains_key(&(n.ip, cfg.node.uplink.clone())) {
            neigh::trigger(n.ip);
        }
    }
    for e in &cfg.endpoints {
        if !neigh.contains_key(&(e.ip, e.interface.clone())) {
            neigh::trigger(e.ip);
        }
    }
}

/// The name of the abstract unix socket that marks "a podfwd runs here". Abstract
/// sockets belong to a network namespace and vanish with their process, so this is a
/// per-node lock that a crash (even `kill -9`) never leaves behind.
const NODE_LOCK: &str = "podfwd";

/// Take the node lock, or say which process holds it.
fn node_lock() -> Result<std::os::unix::net::UnixDatagram, RunError> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let addr = SocketAddr::from_abstract_name(NODE_LOCK.as_bytes())
        .map_err(|e| RunError::Other(format!("node lock: {e}")))?;
    UnixDatagram::bind_addr(&addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            let who = lock_holder().map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
            RunError::Other(format!(
                "another podfwd is running on this node ({who}, holding the abstract socket @{NODE_LOCK} in this network namespace); stop it first, or use `podfwd reload` to change its config"
            ))
        } else {
            RunError::Other(format!("cannot take the node lock @{NODE_LOCK}: {e}"))
        }
    })
}

/// The pid holding the node lock, best effort: its inode in /proc/net/unix (this
/// namespace's sockets), then the process with that socket open.
fn lock_holder() -> Option<u32> {
    let unix = std::fs::read_to_string("/proc/net/unix").ok()?;
    let inode = unix.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 8 && f[7] == format!("@{NODE_LOCK}")).then(|| f[6].to_owned())
    })?;
    let target = format!("socket:[{inode}]");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: u32 = p.file_name().to_str()?.parse().ok()?;
        let fds = std::fs::read_dir(p.path().join("fd")).ok()?;
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()))
            .then_some(pid)
    })
}

/// Fill rings take at least 64 frames per interface and as many again must stay free
/// for frames in flight (RX -> TX -> completion): refuse a UMEM that cannot hold that
/// for every interface, rather than start a worker that starves.
fn check_umem(cfg: &Config, nports: usize) -> Result<(), RunError> {
    let need = u32::try_from(nports.saturating_mul(128)).unwrap_or(u32::MAX);
    if cfg.umem.frames < need {
        return Err(RunError::Other(format!(
            "{}: umem.frames {} is too few for {nports} interfaces: each needs a 64-frame fill ring and as many frames in flight; set umem.frames to {} or more",
            cfg.source,
            cfg.umem.frames,
            need.next_power_of_two()
        )));
    }
    Ok(())
}

/// What is wrong with the interfaces podfwd attached at start (ifindex as attached).
fn iface_problems(ports: &[IfaceInfo]) -> Vec<String> {
    ports
        .iter()
        .filter_map(|p| match ifaces::lookup(&p.name) {
            Err(_) => Some(format!(
                "interface {} is gone (deleted?): its pod is not served until it is back (podfwd attaches it again by itself)",
                p.name
            )),
            Ok(now) if now.ifindex != p.ifindex && !now.up => Some(format!(
                "interface {} was re-created (ifindex {} -> {}) and is down: podfwd attaches it again once it is up",
                p.name, p.ifindex, now.ifindex
            )),
            Ok(now) if now.ifindex != p.ifindex => Some(format!(
                "interface {} was re-created (ifindex {} -> {}): attaching it again failed (retried every second; see the log)",
                p.name, p.ifindex, now.ifindex
            )),
            Ok(now) if !now.up => Some(format!("interface {} is down", p.name)),
            Ok(_) => None,
        })
        .collect()
}

/// The socket every worker binds on queue `queue` of `ifindex`, at start-up and when an
/// interface is re-created.
fn socket_config(ifindex: u32, queue: u32) -> SocketConfig {
    SocketConfig {
        ifindex,
        queue_id: queue,
        bind: BindMode::Auto,
        need_wakeup: true,
        busy_poll: None,
    }
}

/// Attach an interface that was re-created (`now`, up, new ifindex) again as port
/// `port`: the XDP program on the new device, then each worker replaces its socket for
/// the port (on its own UMEM, filled as at start-up) and the new socket goes into the
/// XSKMAP. Returns the XDP mode obtained. On error, the caller retries a second later;
/// workers that already replaced their socket answer the retry with the same fd.
fn recover_iface(
    steering: &mut Steering,
    workers: &[mpsc::Sender<ReplaceSocket>],
    port: usize,
    now: &IfaceInfo,
    fill: usize,
) -> Result<String, String> {
    let role = if port == 0 { Role::Uplink } else { Role::Pod };
    let mode = steering
        .attach(&now.name, role)
        .map_err(|e| format!("re-attaching XDP: {e}"))?;
    for (w, tx) in workers.iter().enumerate() {
        let queue = u32::try_from(w).unwrap_or(u32::MAX);
        let (reply, answer) = mpsc::channel::<Result<RawFd, String>>();
        tx.send(ReplaceSocket {
            port,
            config: socket_config(now.ifindex, queue),
            tx_budget: TX_BUDGET,
            fill,
            reply,
        })
        .map_err(|_| format!("worker {w} is not running"))?;
        let fd = answer
            .recv_timeout(Duration::from_secs(2))
            .map_err(|_| format!("worker {w} did not answer within 2 s"))??;
        steering
            .register_xsk(&now.name, queue, fd)
            .map_err(|e| format!("worker {w}: {e}"))?;
    }
    Ok(format!("{mode:?}").to_lowercase())
}

/// `podfwd run`.
///
/// # Errors
/// Anything that prevents start-up; nothing stays attached when this returns an error.
#[allow(clippy::too_many_lines)] // the start-up sequence reads best in one place
pub fn run(config_path: &Path) -> Result<(), RunError> {
    // Handlers first: a signal during start-up is acted on once the main loop runs,
    // instead of killing the process half-way (bpf_links would still detach).
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| RunError::Other(format!("cannot install signal handlers: {e}")))?;
    let cfg = Config::load(config_path)?;
    let _node_lock = node_lock()?;
    let names = port_names(&cfg);
    let mut ports: Vec<IfaceInfo> = names
        .iter()
        .map(|n| ifaces::lookup(n))
        .collect::<Result<_, _>>()?;
    check_umem(&cfg, ports.len())?;
    let listener = std::net::TcpListener::bind(cfg.metrics.listen).map_err(|e| {
        RunError::Other(format!(
            "cannot listen on metrics.listen {}: {e} (is another podfwd running in this network namespace? pick another address in {})",
            cfg.metrics.listen, cfg.source
        ))
    })?;

    let mut steering = Steering::load(&steering_config(&cfg))?;
    let mut xdp_modes = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let role = if i == 0 { Role::Uplink } else { Role::Pod };
        let mode = steering.attach(&p.name, role)?;
        // The bpf crate logs the attach at info.
        log::debug!(
            "attached XDP steering to {} ({:?} mode) as {:?}",
            p.name,
            mode,
            role
        );
        xdp_modes.push(format!("{mode:?}").to_lowercase());
    }

    // Rings: leave at least half the UMEM for frames in flight between rings.
    let nports = u32::try_from(ports.len()).unwrap_or(u32::MAX);
    // Fill rings get at most half the UMEM between them; the rest is for frames on RX
    // and TX rings and in flight.
    let per_port = (cfg.umem.frames / (2 * nports)).clamp(64, 4096);
    let ring = 1u32 << (31 - per_port.leading_zeros());
    let ucfg = UmemConfig {
        frame_count: cfg.umem.frames,
        frame_size: cfg.umem.frame_size,
        headroom: 0,
        fill_size: ring,
        comp_size: 2048,
        rx_size: 2048,
        tx_size: 2048,
    };
    let mut workers = Vec::new();
    let mut shared_workers = Vec::new();
    let mut worker_reqs = Vec::new();
    for w in 0..cfg.workers.count {
        let mut umem = Umem::new(&ucfg).map_err(|e| RunError::Xsk {
            worker: w,
            iface: "-".into(),
            source: e,
        })?;
        let mut sockets = Vec::new();
        for p in &ports {
            let queue = u32::try_from(w).unwrap_or(u32::MAX);
            let s = XskSocket::new(&mut umem, &socket_config(p.ifindex, queue)).map_err(|e| {
                RunError::Xsk {
                    worker: w,
                    iface: p.name.clone(),
                    source: e,
                }
            })?;
            if let Err(e) = s.set_tx_budget(TX_BUDGET) {
                log::info!("{e}: copy-mode TX keeps the kernel's default of 32 frames per wakeup");
            }
            // Give the kernel RX frames before steering traffic to the socket, so the
            // first frames do not meet an empty fill ring.
            let mut s = s;
            s.fill(&mut umem, ring as usize);
            steering.register_xsk(&p.name, queue, s.fd())?;
            log::info!(
                "worker {w}: AF_XDP socket on {} queue {queue} ({:?})",
                p.name,
                s.bound_mode()
            );
            sockets.push(s);
        }
        let cpu = cfg.workers.cpus.as_ref().and_then(|c| c.get(w).copied());
        let shared = Arc::new(WorkerShared::new(w, cpu, ports.len()));
        shared_workers.push(shared.clone());
        let (req_tx, req_rx) = mpsc::channel::<ReplaceSocket>();
        worker_reqs.push(req_tx);
        workers.push(Worker::new(umem, sockets, shared).with_requests(req_rx));
    }

    let mut neigh = neigh::read();
    trigger_missing(&cfg, &neigh);
    let mut generation = 1;
    let snap = build_snapshot(generation, &cfg, &ports, &neigh)?;
    let status = Arc::new(Mutex::new(StatusView {
        node: cfg.node.name.clone(),
        mode: cfg.mode.to_string(),
        config: cfg.source.clone(),
        ports: ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortView {
                name: p.name.clone(),
                role: if i == 0 { "uplink" } else { "pod" },
                mac: fmt_mac(&p.mac),
                mtu: p.mtu,
                xdp_mode: xdp_modes[i].clone(),
                endpoint: i.checked_sub(1).map(|e| cfg.endpoints[e].ip),
                recoveries: 0,
            })
            .collect(),
        workers: shared_workers.clone(),
        attached: true,
        started_ms: now_ms(),
        ..StatusView::default()
    }));
    status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .show_routes(&snap);
    let shared_snap = Arc::new(ArcSwap::from_pointee(snap));
    let stop = Arc::new(AtomicBool::new(false));

    let mut handles = Vec::new();
    for wk in workers {
        let snap = shared_snap.clone();
        let stop = stop.clone();
        let name = format!("podfwd-w{}", handles.len());
        let h = thread::Builder::new()
            .name(name)
            .spawn(move || wk.run(&snap, &stop))
            .map_err(|e| RunError::Other(format!("cannot start a worker thread: {e}")))?;
        handles.push(h);
    }
    let (req_tx, req_rx) = mpsc::channel::<ControlRequest>();
    let http_stop = Arc::new(AtomicBool::new(false));
    let http = {
        let status = status.clone();
        let http_stop = http_stop.clone();
        thread::Builder::new()
            .name("podfwd-http".into())
            .spawn(move || crate::http::serve(&listener, &status, &req_tx, &http_stop))
            .map_err(|e| RunError::Other(format!("cannot start the HTTP thread: {e}")))?
    };
    log::info!(
        "podfwd running: node {} mode {} with {} worker(s) on {} interface(s); metrics on http://{}/metrics",
        cfg.node.name,
        cfg.mode,
        handles.len(),
        ports.len(),
        cfg.metrics.listen
    );

    let mut cfg = cfg;
    let mut last_key = neigh_key(&cfg, &neigh);
    let mut last_refresh = Instant::now();
    let mut last_reprobe = Instant::now();
    let mut last_problems: Vec<String> = Vec::new();
    let mut was_healthy = true;
    let mut recovery_errors: Vec<Option<String>> = vec![None; ports.len()];
    let config_path: PathBuf = config_path.to_owned();
    'main: loop {
        let mut reload_reply = None;
        for sig in signals.pending() {
            match sig {
                SIGHUP => reload_reply = Some(None),
                _ => {
                    log::info!("signal {sig}: stopping");
                    break 'main;
                }
            }
        }
        if let Ok(ControlRequest::Reload(reply)) = req_rx.recv_timeout(Duration::from_millis(100)) {
            reload_reply = Some(Some(reply));
        }
        if let Some(reply) = reload_reply {
            // Apply all or nothing: validate, build the new snapshot, update the XDP
            // steering, and only then switch; any failure keeps the running config.
            let result = reload(&config_path, &cfg, &names).and_then(|new_cfg| {
                let snap = build_snapshot(generation + 1, &new_cfg, &ports, &neigh)
                    .map_err(|e| format!("{}: route table: {e}", config_path.display()))?;
                steering
                    .update_config(&steering_config(&new_cfg))
                    .map_err(|e| format!("{}: XDP steering update: {e}", config_path.display()))?;
                generation += 1;
                status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .show_routes(&snap);
                shared_snap.store(Arc::new(snap));
                cfg = new_cfg;
                last_key.clear(); // refresh neighbours for the new tables right away
                Ok(format!("reloaded {}", config_path.display()))
            });
            {
                let mut st = status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match &result {
                    Ok(_) => {
                        st.reloads_ok += 1;
                        st.last_reload_error = None;
                        log::info!("reload of {} applied", config_path.display());
                    }
                    Err(e) => {
                        st.reloads_failed += 1;
                        st.last_reload_error = Some(e.clone());
                        log::error!("reload refused, running config kept: {e}");
                    }
                }
            }
            if let Some(tx) = reply {
                let _ = tx.send(result);
            }
        }
        // Refresh every second, every 100 ms while a neighbour is still missing.
        let missing = last_key.iter().any(Option::is_none);
        let every = if missing {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if last_refresh.elapsed() >= every || last_key.is_empty() {
            last_refresh = Instant::now();
            neigh = neigh::read();
            trigger_missing(&cfg, &neigh);
            // podfwd's own traffic bypasses the kernel, so the kernel never re-validates
            // the neighbour entries podfwd relies on: a next hop whose MAC changed without
            // a gratuitous ARP would stay stale forever. Using each entry now and then
            // makes the kernel confirm it (unicast probe, then broadcast if that fails).
            if last_reprobe.elapsed() >= NEIGH_REPROBE {
                last_reprobe = Instant::now();
                for n in &cfg.nodes {
                    neigh::trigger(n.ip);
                }
            }
            let key = neigh_key(&cfg, &neigh);
            // Re-created (new ifindex) and up: attach it again, new sockets in every
            // worker; its new MAC and MTU go into the next snapshot. A pod MAC learned on
            // the old interface is forgotten by the workers; the kernel's neighbour entry
            // went away with the old interface and is resolved again on the new one.
            let mut ports_changed = false;
            for (i, p) in ports.iter_mut().enumerate() {
                let Ok(now) = ifaces::lookup(&p.name) else {
                    continue;
                };
                if now.ifindex == p.ifindex || !now.up {
                    continue;
                }
                match recover_iface(&mut steering, &worker_reqs, i, &now, ring as usize) {
                    Ok(mode) => {
                        let mut st = status
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let v = &mut st.ports[i];
                        v.recoveries += 1;
                        v.xdp_mode = mode;
                        log::info!(
                            "interface {} re-created (ifindex {} -> {}): XDP steering attached again ({} mode), {} worker socket(s) replaced; forwarding resumed (recovery {} of this interface)",
                            p.name,
                            p.ifindex,
                            now.ifindex,
                            v.xdp_mode,
                            worker_reqs.len(),
                            v.recoveries
                        );
                        *p = now;
                        ports_changed = true;
                        recovery_errors[i] = None;
                    }
                    Err(e) => {
                        if recovery_errors[i].as_deref() != Some(e.as_str()) {
                            log::error!(
                                "interface {} re-created (ifindex {} -> {}): attaching it again failed (retried every second): {e}",
                                p.name,
                                p.ifindex,
                                now.ifindex
                            );
                        }
                        recovery_errors[i] = Some(e);
                    }
                }
            }
            // Same interface (ifindex), new MAC or MTU: the snapshot follows.
            for p in &mut ports {
                if let Ok(now) = ifaces::lookup(&p.name) {
                    if now.ifindex == p.ifindex && (now.mac != p.mac || now.mtu != p.mtu) {
                        log::info!(
                            "interface {}: MAC {} -> {}, MTU {} -> {}",
                            p.name,
                            fmt_mac(&p.mac),
                            fmt_mac(&now.mac),
                            p.mtu,
                            now.mtu
                        );
                        p.mac = now.mac;
                        p.mtu = now.mtu;
                        ports_changed = true;
                    }
                }
            }
            if ports_changed {
                let mut st = status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (v, p) in st.ports.iter_mut().zip(&ports) {
                    v.mac = fmt_mac(&p.mac);
                    v.mtu = p.mtu;
                }
            }
            if key != last_key || ports_changed {
                generation += 1;
                match build_snapshot(generation, &cfg, &ports, &neigh) {
                    Ok(s) => {
                        let mut st = status
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        for (old, new) in st.nodes.iter().zip(NodeView::of(&s)) {
                            if old.mac != new.mac {
                                log::info!(
                                    "neighbour: node {} ({}) next hop {}",
                                    new.name,
                                    new.ip,
                                    new.mac.as_deref().unwrap_or("missing")
                                );
                            }
                        }
                        st.show_routes(&s);
                        shared_snap.store(Arc::new(s));
                    }
                    Err(e) => log::error!("route snapshot rebuild failed (retried): {e}"),
                }
                if shared_snap.load().generation == generation {
                    last_key = key;
                }
            }
            let problems = iface_problems(&ports);
            if problems != last_problems {
                for p in problems.iter().filter(|p| !last_problems.contains(p)) {
                    log::error!("{p}");
                }
                for p in last_problems.iter().filter(|p| !problems.contains(p)) {
                    log::info!("resolved: {p}");
                }
                let mut st = status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                st.iface_problems.clone_from(&problems);
                last_problems = problems;
            }
            if let Ok(s) = steering.stats() {
                let mut st = status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                st.steering = s.iter().map(|(k, v)| (k.to_string(), v)).collect();
            }
            // One log line per change of health, not one per second.
            let health = status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .healthy();
            match (&health, was_healthy) {
                (Err(e), true) => log::warn!("{e}"),
                (Ok(()), false) => log::info!("all workers heartbeating again"),
                _ => {}
            }
            was_healthy = health.is_ok();
        }
    }

    // Detach first, so that frames go back to the kernel path instead of to sockets
    // nobody reads any more; then stop and drain the workers.
    for p in &ports {
        if let Err(e) = steering.detach(&p.name) {
            log::warn!("detach {}: {e}", p.name);
        } else {
            log::info!("detached XDP steering from {}", p.name);
        }
    }
    drop(steering);
    stop.store(true, Relaxed);
    for h in handles {
        let _ = h.join();
    }
    http_stop.store(true, Relaxed);
    let _ = http.join();
    log::info!("podfwd stopped");
    Ok(())
}

/// Validate a new config for a running process.
fn reload(path: &Path, old: &Config, names: &[String]) -> Result<Config, String> {
    let new = Config::load(path).map_err(|e| e.to_string())?;
    let new_names = port_names(&new);
    if new_names != names {
        return Err(format!(
            "{}: the interface set changed (was {}, now {}); adding or removing interfaces needs a restart",
            path.display(),
            names.join(","),
            new_names.join(",")
        ));
    }
    if new.mode != old.mode
        || new.node != old.node
        || new.workers != old.workers
        || new.umem != old.umem
        || new.metrics != old.metrics
    {
        return Err(format!(
            "{}: node, mode, workers, umem or metrics changed; nodes, endpoints, cluster_cidr, gateway and vxlan apply on reload; restart podfwd for the rest",
            path.display()
        ));
    }
    Ok(new)
}
