//! The control thread: one [`Control`] value that owns the running dataplane's state
//! and does one job per method.
//!
//! [`start::run`] loads the config, attaches everything and builds a `Control`; then the
//! loop sleeps in [`Control::wait`] until the kernel announces a change, a request or
//! signal arrives, or 100 ms pass ([`wake`]), and calls [`Control::reload`] on SIGHUP or
//! `podfwd reload` and [`Control::check_workers`]. [`Control::refresh`] (neighbours,
//! learned routes, re-created interfaces, MAC/MTU changes, a new snapshot when anything
//! changed, interface problems, health) runs as soon as a batch of kernel changes is
//! complete, and at least once a second (every 100 ms while a neighbour is missing); on
//! SIGTERM [`Control::shutdown`] detaches first and then stops the workers.
//!
//! Everything the control thread asks of the kernel goes through [`Host`], so every job
//! here runs in unit tests against a fake node, without root.

mod endpoints;
mod host;
pub mod start;
#[cfg(test)]
mod tests;
pub mod wake;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bpf::SteeringConfig;
use podfwd_config::Config;
use route::{LocalNode, NextHop, PortRole, Snapshot, SnapshotBuilder};
use xsk::{BindMode, SocketConfig};

pub use host::{Host, Kernel};
pub use start::{run, RunError};

use crate::ifaces::{IfaceError, IfaceInfo};
use crate::neigh::NeighTable;
use crate::stats::WorkerShared;
use crate::views::{NodeView, PortView, StatusView};
use crate::worker::{OpenSocket, WorkerRequest};
use podfwd_api::{EndpointInfo, Origin};
use wire::ethernet::fmt_mac;

/// How often the control thread makes the kernel re-validate remote nodes' neighbour
/// entries (see [`Control::refresh_neighbours`]).
const NEIGH_REPROBE: Duration = Duration::from_secs(10);

/// Frames one copy-mode TX wakeup may send (`XDP_MAX_TX_SKB_BUDGET`).
pub const TX_BUDGET: u32 = 512;

/// One interface podfwd serves: what it is for, and what the kernel last said of it.
#[derive(Debug, Clone)]
pub struct Port {
    /// Uplink or pod: stored, never inferred from the port's position.
    pub role: PortRole,
    /// Index, MAC, MTU as attached (or re-attached).
    pub info: IfaceInfo,
    /// The last error re-attaching it, to log each new one once.
    recovery_error: Option<String>,
}

impl Port {
    /// A port of `role` on the interface `info`.
    #[must_use]
    pub fn new(role: PortRole, info: IfaceInfo) -> Port {
        Port {
            role,
            info,
            recovery_error: None,
        }
    }
}

/// A running worker as the control thread sees it.
#[derive(Debug)]
pub struct WorkerHandle {
    /// Its published counters.
    pub shared: Arc<WorkerShared>,
    /// Where socket changes are asked for.
    pub requests: mpsc::Sender<WorkerRequest>,
    /// Its thread, once started.
    pub thread: Option<JoinHandle<()>>,
}

/// The running dataplane's control state.
#[derive(Debug)]
pub struct Control<H: Host> {
    host: H,
    config_path: PathBuf,
    cfg: Config,
    /// Port slots in port-id order: the uplink, the config's endpoints, then endpoints
    /// added over the API (`None`: a removed one's vacant slot).
    ports: Vec<Option<Port>>,
    /// Every endpoint served: the config's, then the API's.
    endpoints: Vec<EndpointInfo>,
    /// Where the API's endpoints are kept across restarts.
    state_file: PathBuf,
    /// The remote nodes of the config file; `cfg.nodes` is these plus the ones learned
    /// from `routes.table`.
    file_nodes: Vec<podfwd_config::RemoteNodeConfig>,
    /// Learned routes ignored (outside the cluster CIDR, our own PodCIDR, or a PodCIDR
    /// the config file gives another node), as last seen.
    learned_ignored: Vec<(ipnet::Ipv4Net, Ipv4Addr)>,
    workers: Vec<WorkerHandle>,
    /// Frames put on the fill ring of each socket podfwd started with.
    fill: usize,
    /// How many interfaces podfwd started with (each holds `fill` frames parked).
    start_ports: usize,
    neigh: NeighTable,
    /// What the published snapshot was built with (see [`route_key`]); `None`: rebuild.
    last_key: Option<RouteKey>,
    /// The remote nodes' next hops from the FIB (see [`node_routes`]).
    routes: NodeRoutes,
    /// When the kernel was last asked to resolve each address.
    asked: std::collections::HashMap<Ipv4Addr, Instant>,
    generation: u64,
    snap: Arc<ArcSwap<Snapshot>>,
    status: Arc<Mutex<StatusView>>,
    stop: Arc<AtomicBool>,
    last_refresh: Instant,
    /// Kernel changes drained but not yet applied (see [`wake`]).
    batch: wake::Batch,
    last_reprobe: Instant,
    last_problems: Vec<String>,
    was_healthy: bool,
}

/// What the steering program needs to know of a config.
#[must_use]
pub fn steering_config(cfg: &Config) -> SteeringConfig {
    SteeringConfig {
        cluster_cidr: (cfg.cluster_cidr.network(), cfg.cluster_cidr.prefix_len()),
        pod_cidr: (cfg.node.pod_cidr.network(), cfg.node.pod_cidr.prefix_len()),
        node_ip: cfg.node.ip,
        vxlan_port: cfg.vxlan.port,
        mode: cfg.mode,
        frags: cfg.offload.multi_buffer != podfwd_config::Switch::Off,
    }
}

/// The interface set a config needs, with roles: the uplink, then each endpoint's
/// interface.
#[must_use]
pub fn port_names(cfg: &Config) -> Vec<(String, PortRole)> {
    let mut v = vec![(cfg.node.uplink.clone(), PortRole::Uplink)];
    v.extend(
        cfg.endpoints
            .iter()
            .map(|e| (e.interface.clone(), PortRole::Pod)),
    );
    v
}

/// The config's endpoints, as the API lists them.
#[must_use]
pub fn config_endpoints(cfg: &Config) -> Vec<EndpointInfo> {
    cfg.endpoints
        .iter()
        .map(|e| EndpointInfo {
            ip: e.ip,
            interface: e.interface.clone(),
            container_id: None,
            origin: Origin::Config,
        })
        .collect()
}

/// What the FIB says of the remote nodes' IPs (see [`node_routes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeRoutes {
    /// Per node IP the FIB has a route for: its usable next hops on the uplink (at most
    /// [`route::MAX_NEXT_HOPS`], several for a multipath route), with their MACs from
    /// the neighbour table. Empty when the route leaves by another interface.
    pub hops: std::collections::BTreeMap<Ipv4Addr, Vec<NextHop>>,
    /// Remote nodes the FIB reaches through a gateway (hybrid mode tunnels to them).
    pub behind_router: BTreeSet<Ipv4Addr>,
}

impl NodeRoutes {
    /// The next hops of node `n`: the FIB's, or without a FIB answer (no rtnetlink
    /// view, no route) the node itself with its own neighbour entry.
    fn of(
        &self,
        cfg: &Config,
        neigh: &NeighTable,
        n: &podfwd_config::RemoteNodeConfig,
    ) -> Vec<NextHop> {
        self.hops.get(&n.ip).cloned().unwrap_or_else(|| {
            vec![NextHop {
                via: n.ip,
                weight: 1,
                mac: neigh.get(&(n.ip, cfg.node.uplink.clone())).copied(),
            }]
        })
    }
}

/// What a published snapshot depends on besides config and ports, to notice changes:
/// each node's next hops (addresses, weights, MACs) and each endpoint's MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RouteKey {
    nodes: Vec<Vec<NextHop>>,
    endpoints: Vec<Option<[u8; 6]>>,
}

impl RouteKey {
    /// Something is unresolved: a node without a next hop, a next hop or an endpoint
    /// without a MAC.
    fn missing(&self) -> bool {
        self.nodes
            .iter()
            .any(|h| h.is_empty() || h.iter().any(|h| h.mac.is_none()))
            || self.endpoints.iter().any(Option::is_none)
    }
}

/// Build a route snapshot from the config, the endpoints, the port slots, the
/// neighbour table and the nodes' next hops (`routes`). A vacant slot keeps its port id
/// with an interface nothing routes to.
///
/// # Errors
/// When the route table refuses the entries (should not happen after validation).
pub fn build_snapshot(
    generation: u64,
    cfg: &Config,
    endpoints: &[EndpointInfo],
    ports: &[Option<Port>],
    neigh: &NeighTable,
    routes: &NodeRoutes,
) -> Result<Snapshot, route::RouteError> {
    let uplink = ports
        .iter()
        .position(|p| p.as_ref().is_some_and(|p| p.role == PortRole::Uplink))
        .ok_or_else(|| route::RouteError::NoSuchPort {
            what: "the uplink".into(),
            port: 0,
            count: ports.len(),
        })?;
    let id = |i: usize| u16::try_from(i).map_err(|_| route::RouteError::TooMany("ports"));
    let local = LocalNode {
        name: cfg.node.name.clone(),
        ip: cfg.node.ip,
        pod_cidr: cfg.node.pod_cidr,
        cluster_cidr: cfg.cluster_cidr,
        gateway: cfg.gateway,
        mode: cfg.mode,
        vni: cfg.vxlan.vni,
        vxlan_port: cfg.vxlan.port,
        uplink: id(uplink)?,
    };
    let mut b = SnapshotBuilder::new(generation, local);
    for p in ports {
        match p {
            Some(p) => b.port(&p.info.name, p.role, p.info.mac, p.info.mtu),
            None => b.port("", PortRole::Pod, [0; 6], 0),
        };
    }
    for ep in endpoints {
        let Some(port) = port_of(ports, &ep.interface) else {
            continue;
        };
        b.endpoint(
            ep.ip,
            id(port)?,
            neigh.get(&(ep.ip, ep.interface.clone())).copied(),
        );
    }
    for n in &cfg.nodes {
        b.node(&n.name, n.ip, n.pod_cidr, None)
            .next_hops(&routes.of(cfg, neigh, n))
            .on_link(!routes.behind_router.contains(&n.ip));
        if let Some(v) = n.vtep_mac {
            b.vtep_mac(v);
        }
    }
    b.build()
}

/// The slot of the pod port on `interface`.
fn port_of(ports: &[Option<Port>], interface: &str) -> Option<usize> {
    ports.iter().position(|p| {
        p.as_ref()
            .is_some_and(|p| p.role == PortRole::Pod && p.info.name == interface)
    })
}

/// What a snapshot built now would depend on (see [`RouteKey`]).
fn route_key(
    cfg: &Config,
    endpoints: &[EndpointInfo],
    neigh: &NeighTable,
    routes: &NodeRoutes,
) -> RouteKey {
    RouteKey {
        nodes: cfg.nodes.iter().map(|n| routes.of(cfg, neigh, n)).collect(),
        endpoints: endpoints
            .iter()
            .map(|e| neigh.get(&(e.ip, e.interface.clone())).copied())
            .collect(),
    }
}

/// Each remote node's next hops per the kernel's FIB, with their MACs from `neigh`:
/// the node itself when it is on-link, else the gateway (a router between subnets), or
/// every usable gateway of a multipath route with its weight. podfwd transmits only on
/// the uplink: hops through other interfaces are left out, and a node with none is
/// unresolved (`no_neighbour`; logged by the caller's readiness). A node the FIB has no
/// answer for keeps its own neighbour entry ([`NodeRoutes::of`]).
fn node_routes<H: Host>(host: &mut H, cfg: &Config, neigh: &NeighTable) -> NodeRoutes {
    let uplink = &cfg.node.uplink;
    let mut routes = NodeRoutes::default();
    for n in &cfg.nodes {
        let fib = host.next_hops(n.ip);
        if fib.is_empty() {
            continue;
        }
        if fib.iter().any(|h| h.via != n.ip) {
            routes.behind_router.insert(n.ip);
        }
        let hops = fib
            .iter()
            .filter(|h| h.dev == *uplink)
            .take(route::MAX_NEXT_HOPS)
            .map(|h| NextHop {
                via: h.via,
                weight: h.weight,
                mac: neigh.get(&(h.via, h.dev.clone())).copied(),
            })
            .collect();
        routes.hops.insert(n.ip, hops);
    }
    routes
}

/// The remote nodes: `file_nodes` plus one per route of `learned` (`PodCIDR via
/// NODE-IP`) that the file does not cover; and the learned routes ignored (outside the
/// cluster CIDR, or overlapping this node's PodCIDR). See
/// [`Control::follow_learned_routes`].
fn merge_learned(
    cfg: &Config,
    file_nodes: &[podfwd_config::RemoteNodeConfig],
    learned: Vec<(ipnet::Ipv4Net, Ipv4Addr)>,
) -> (
    Vec<podfwd_config::RemoteNodeConfig>,
    Vec<(ipnet::Ipv4Net, Ipv4Addr)>,
) {
    let overlaps = |a: &ipnet::Ipv4Net, b: &ipnet::Ipv4Net| {
        a.contains(&b.network()) || b.contains(&a.network())
    };
    let mut nodes = file_nodes.to_vec();
    let mut ignored = Vec::new();
    // The learned PodCIDRs taken so far, by network address and by (network, length), and
    // their gateways: a routing table of thousands of nodes is merged in O(n log n).
    let mut taken: BTreeMap<u32, u8> = BTreeMap::new();
    let mut exact: HashSet<(u32, u8)> = HashSet::new();
    let mut gateways: HashSet<Ipv4Addr> = file_nodes.iter().map(|n| n.ip).collect();
    for (prefix, gw) in learned {
        let prefix = prefix.trunc();
        if !cfg.cluster_cidr.contains(&prefix) || overlaps(&prefix, &cfg.node.pod_cidr) {
            ignored.push((prefix, gw));
            continue;
        }
        let (net, len) = (u32::from(prefix.network()), prefix.prefix_len());
        let inside_taken = (0..=len).any(|l| {
            let mask = u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0);
            exact.contains(&(net & mask, l))
        });
        let holds_taken = taken
            .range(net..=u32::from(prefix.broadcast()))
            .next()
            .is_some();
        if gateways.contains(&gw)
            || inside_taken
            || holds_taken
            || file_nodes.iter().any(|n| overlaps(&n.pod_cidr, &prefix))
        {
            continue; // the config file's entry (or an earlier route) wins
        }
        taken.insert(net, len);
        exact.insert((net, len));
        gateways.insert(gw);
        nodes.push(podfwd_config::RemoteNodeConfig {
            name: gw.to_string(),
            ip: gw,
            pod_cidr: prefix,
            vtep_mac: None,
        });
    }
    (nodes, ignored)
}

/// The addresses to make the kernel resolve: remote nodes with a next hop whose MAC the
/// neighbour table lacks (or with no next hop on the uplink), and endpoints without a
/// MAC.
fn missing_neighbours(
    cfg: &Config,
    endpoints: &[EndpointInfo],
    neigh: &NeighTable,
    routes: &NodeRoutes,
) -> Vec<Ipv4Addr> {
    let nodes = cfg
        .nodes
        .iter()
        .filter(|n| {
            let hops = routes.of(cfg, neigh, n);
            hops.is_empty() || hops.iter().any(|h| h.mac.is_none())
        })
        .map(|n| n.ip);
    let pods = endpoints
        .iter()
        .filter(|e| !neigh.contains_key(&(e.ip, e.interface.clone())))
        .map(|e| e.ip);
    nodes.chain(pods).collect()
}

/// The socket every worker binds on queue `queue` of `ifindex`, at start-up and when an
/// interface is re-created.
#[must_use]
pub fn socket_config(ifindex: u32, queue: u32) -> SocketConfig {
    SocketConfig {
        ifindex,
        queue_id: queue,
        bind: BindMode::Auto,
        need_wakeup: true,
        busy_poll: None,
    }
}

/// Validate a new config for a running process that serves `old`, plus the API's
/// endpoints `api`.
///
/// # Errors
/// The config is refused (file and line in the message), or it changes what only a
/// restart can.
pub fn validate_reload(path: &Path, old: &Config, api: &[EndpointInfo]) -> Result<Config, String> {
    let new = Config::load(path).map_err(|e| e.to_string())?;
    let (was, now) = (port_names(old), port_names(&new));
    if was != now {
        let join = |v: &[(String, PortRole)]| {
            v.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        return Err(format!(
            "{}: the interface set changed (was {}, now {}); adding or removing interfaces needs a restart, or `podfwd endpoint add|del`",
            path.display(),
            join(&was),
            join(&now)
        ));
    }
    if let Some(e) = new.endpoints.iter().find(|e| {
        api.iter()
            .any(|a| a.ip == e.ip || a.interface == e.interface)
    }) {
        return Err(format!(
            "{}: endpoint {} on {} is also served as added over the API; remove one of them",
            path.display(),
            e.ip,
            e.interface
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

/// What the kernel says of a port slot's interface now (`None`: a vacant slot).
pub type Observed = Option<Result<IfaceInfo, IfaceError>>;

/// What is wrong with `port` given what the kernel says of it now.
fn iface_problem(port: &Port, now: &Result<IfaceInfo, IfaceError>) -> Option<String> {
    let p = &port.info;
    match now {
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
    }
}

impl<H: Host> Control<H> {
    /// Control over attached `ports` (the uplink, then one per endpoint of `endpoints`)
    /// and bound (not yet running) `workers`: reads the neighbour table and builds the
    /// first snapshot and status view.
    ///
    /// # Errors
    /// When the first route snapshot cannot be built.
    #[allow(clippy::too_many_arguments)] // the start-up state, handed over once
    pub fn new(
        mut host: H,
        config_path: &Path,
        mut cfg: Config,
        endpoints: Vec<EndpointInfo>,
        ports: Vec<Port>,
        xdp_modes: Vec<String>,
        workers: Vec<WorkerHandle>,
        fill: usize,
    ) -> Result<Control<H>, route::RouteError> {
        host.sync();
        let file_nodes = cfg.nodes.clone();
        if let Some(t) = cfg.routes.table {
            cfg.nodes = merge_learned(&cfg, &file_nodes, host.learned_routes(t)).0;
        }
        let neigh = host.neighbours();
        let routes = node_routes(&mut host, &cfg, &neigh);
        for ip in missing_neighbours(&cfg, &endpoints, &neigh, &routes) {
            host.resolve(ip);
        }
        let ports: Vec<Option<Port>> = ports.into_iter().map(Some).collect();
        let snap = build_snapshot(1, &cfg, &endpoints, &ports, &neigh, &routes)?;
        let mut view = StatusView {
            node: cfg.node.name.clone(),
            mode: cfg.mode.to_string(),
            config: cfg.source.clone(),
            ports: port_views(&endpoints, &ports, xdp_modes),
            workers: workers.iter().map(|w| w.shared.clone()).collect(),
            attached: true,
            started_ms: crate::stats::now_ms(),
            ..StatusView::default()
        };
        view.show_routes(&snap);
        let now = Instant::now();
        Ok(Control {
            host,
            config_path: config_path.to_owned(),
            last_key: Some(route_key(&cfg, &endpoints, &neigh, &routes)),
            routes,
            asked: std::collections::HashMap::new(),
            state_file: state_file(&cfg),
            file_nodes,
            learned_ignored: Vec::new(),
            cfg,
            start_ports: ports.len(),
            ports,
            endpoints,
            workers,
            fill,
            neigh,
            generation: 1,
            snap: Arc::new(ArcSwap::from_pointee(snap)),
            status: Arc::new(Mutex::new(view)),
            stop: Arc::new(AtomicBool::new(false)),
            last_refresh: now,
            batch: wake::Batch::default(),
            last_reprobe: now,
            last_problems: Vec::new(),
            was_healthy: true,
        })
    }

    /// The published snapshot, for the workers.
    #[must_use]
    pub fn snapshot(&self) -> Arc<ArcSwap<Snapshot>> {
        self.snap.clone()
    }

    /// What becomes readable when the kernel announces a change ([`Host::event_fd`]).
    #[must_use]
    pub fn event_fd(&self) -> Option<RawFd> {
        self.host.event_fd()
    }

    /// The status view, for the HTTP side.
    #[must_use]
    pub fn status(&self) -> Arc<Mutex<StatusView>> {
        self.status.clone()
    }

    /// The control socket's path.
    #[must_use]
    pub fn socket_path(&self) -> PathBuf {
        self.cfg.control.socket.clone()
    }

    /// The flag that stops the workers.
    #[must_use]
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The workers, to start their threads.
    pub fn workers_mut(&mut self) -> &mut [WorkerHandle] {
        &mut self.workers
    }

    fn view(&self) -> MutexGuard<'_, StatusView> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Re-read the config and apply it all or nothing: validate, build the new
    /// snapshot, update the XDP steering, and only then switch; any failure keeps the
    /// running config. The result is also counted in the status view.
    ///
    /// # Errors
    /// Why the new config was refused.
    pub fn reload(&mut self) -> Result<String, String> {
        let path = self.config_path.clone();
        let result = self.apply_reload(&path);
        let mut st = self.view();
        match &result {
            Ok(_) => {
                st.reloads_ok += 1;
                st.last_reload_error = None;
                log::info!("reload of {} applied", path.display());
            }
            Err(e) => {
                st.reloads_failed += 1;
                st.last_reload_error = Some(e.clone());
                log::error!("reload refused, running config kept: {e}");
            }
        }
        result
    }

    fn apply_reload(&mut self, path: &Path) -> Result<String, String> {
        let api: Vec<EndpointInfo> = self
            .endpoints
            .iter()
            .filter(|e| e.origin == Origin::Api)
            .cloned()
            .collect();
        let mut new_cfg = validate_reload(path, &self.cfg, &api)?;
        let file_nodes = new_cfg.nodes.clone();
        if let Some(table) = new_cfg.routes.table {
            let learned = self.host.learned_routes(table);
            new_cfg.nodes = merge_learned(&new_cfg, &file_nodes, learned).0;
        }
        let mut endpoints = config_endpoints(&new_cfg);
        endpoints.extend(api);
        let snap = build_snapshot(
            self.generation + 1,
            &new_cfg,
            &endpoints,
            &self.ports,
            &self.neigh,
            &self.routes,
        )
        .map_err(|e| format!("{}: route table: {e}", path.display()))?;
        self.host
            .update_steering(&steering_config(&new_cfg))
            .map_err(|e| format!("{}: XDP steering update: {e}", path.display()))?;
        self.generation += 1;
        self.publish(snap);
        self.file_nodes = file_nodes;
        self.cfg = new_cfg;
        self.endpoints = endpoints;
        self.follow_learned_routes(); // the same nodes: shows the counts, logs what is ignored
        self.last_key = None; // refresh neighbours for the new tables right away
        Ok(format!("reloaded {}", path.display()))
    }

    /// Sleep in `wake` until the kernel announces a change, a request or signal
    /// arrives, or the next job is due (at most [`wake::TICK`]); then drain the kernel's
    /// notifications, refresh when a batch of them is due ([`wake::Batch`]) and run the
    /// [`Control::tick`]. Returns what woke the thread.
    pub fn wait(&mut self, wake: &mut wake::Wakeups) -> wake::Woken {
        let timeout = self.batch.due().map_or(wake::TICK, |due| {
            due.saturating_duration_since(Instant::now())
                .min(wake::TICK)
        });
        let woken = wake.wait(timeout);
        if woken.kernel && self.host.sync() {
            self.batch.changed(Instant::now());
        }
        if self.batch.take(Instant::now()) {
            self.refresh();
        }
        self.tick();
        woken
    }

    /// The periodic job, called at least every 100 ms: a [`Control::refresh`] once a
    /// second, every 100 ms while a neighbour is still missing.
    pub fn tick(&mut self) {
        let missing = self.last_key.as_ref().is_none_or(RouteKey::missing);
        let every = if missing {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if self.last_refresh.elapsed() >= every || self.last_key.is_none() {
            self.refresh();
        }
    }

    /// Look at the node once and follow it: neighbours, re-created interfaces, MAC/MTU
    /// changes, a new snapshot if anything changed, interface problems, steering
    /// counters, health. Each interface is looked up once.
    pub fn refresh(&mut self) {
        self.last_refresh = Instant::now();
        self.host.sync();
        self.batch.clear();
        let observed: Vec<Option<Result<IfaceInfo, IfaceError>>> = self
            .ports
            .iter()
            .map(|p| p.as_ref().map(|p| self.host.lookup(&p.info.name)))
            .collect();
        let learned = self.follow_learned_routes();
        let key = self.refresh_neighbours();
        let recovered = self.recover_interfaces(&observed);
        let changed = self.follow_port_changes(&observed);
        if self.last_key.as_ref() != Some(&key) || recovered || changed || learned {
            self.publish_routes(Some(key));
        }
        self.report_problems(&observed);
        let steering = self.host.steering_stats();
        if !steering.is_empty() {
            self.view().steering = steering;
        }
        self.report_health();
    }

    /// With `routes.table` set: make the remote nodes the config file's plus one per
    /// learned PodCIDR route (`PodCIDR via NODE-IP`), named by its IP. The config file
    /// wins for a PodCIDR or node IP it lists (a static entry, as a router prefers its
    /// static routes to a protocol's); learned prefixes outside the cluster CIDR, or
    /// overlapping this node's PodCIDR, are ignored, shown and logged once. Returns
    /// whether the nodes changed.
    pub fn follow_learned_routes(&mut self) -> bool {
        let Some(table) = self.cfg.routes.table else {
            return false;
        };
        let (nodes, ignored) =
            merge_learned(&self.cfg, &self.file_nodes, self.host.learned_routes(table));
        for (p, gw) in ignored.iter().filter(|i| !self.learned_ignored.contains(i)) {
            log::warn!(
                "learned route {p} via {gw} in table {table} ignored: outside the cluster CIDR {} or overlapping this node's PodCIDR {}",
                self.cfg.cluster_cidr, self.cfg.node.pod_cidr
            );
        }
        {
            let mut st = self.view();
            st.learned_routes = nodes.len() - self.file_nodes.len();
            st.learned_ignored = ignored.len();
        }
        self.learned_ignored = ignored;
        if nodes == self.cfg.nodes {
            return false;
        }
        let key = |n: &podfwd_config::RemoteNodeConfig| (n.pod_cidr, n.ip);
        let before: HashSet<_> = self.cfg.nodes.iter().map(key).collect();
        let after: HashSet<_> = nodes.iter().map(key).collect();
        for n in nodes.iter().filter(|n| !before.contains(&key(n))) {
            log::info!(
                "learned: PodCIDR {} on node {} (table {table})",
                n.pod_cidr,
                n.ip
            );
        }
        for n in self.cfg.nodes.iter().filter(|n| !after.contains(&key(n))) {
            log::info!(
                "withdrawn: PodCIDR {} of node {} (table {table})",
                n.pod_cidr,
                n.name
            );
        }
        self.cfg.nodes = nodes;
        true
    }

    /// Re-read the neighbour table and the nodes' next hops and ask the kernel to
    /// resolve what is missing; returns what the snapshot depends on.
    ///
    /// podfwd's own traffic bypasses the kernel, so the kernel never re-validates the
    /// neighbour entries podfwd relies on: a next hop whose MAC changed without a
    /// gratuitous ARP would stay stale forever. Using each node's entry every
    /// [`NEIGH_REPROBE`] makes the kernel confirm it (unicast probe, then broadcast).
    fn refresh_neighbours(&mut self) -> RouteKey {
        self.neigh = self.host.neighbours();
        let routes = node_routes(&mut self.host, &self.cfg, &self.neigh);
        if routes.behind_router != self.routes.behind_router {
            log::info!("nodes behind a router now: {:?}", routes.behind_router);
            self.last_key = None; // republish: hybrid mode re-decides per node
        }
        self.routes = routes;
        // At most once a second per address: with thousands of nodes some may stay
        // unresolved for long, and the refresh runs every 100 ms meanwhile.
        let now = Instant::now();
        self.asked
            .retain(|_, t| now.duration_since(*t) < Duration::from_secs(1));
        for ip in missing_neighbours(&self.cfg, &self.endpoints, &self.neigh, &self.routes) {
            if let std::collections::hash_map::Entry::Vacant(e) = self.asked.entry(ip) {
                e.insert(now);
                self.host.resolve(ip);
            }
        }
        if self.last_reprobe.elapsed() >= NEIGH_REPROBE {
            self.last_reprobe = Instant::now();
            // Once per next hop: thousands of nodes behind one router share it.
            let mut hops = BTreeSet::new();
            for n in &self.cfg.nodes {
                for h in self.routes.of(&self.cfg, &self.neigh, n) {
                    if hops.insert(h.via) {
                        self.host.resolve(h.via);
                    }
                }
            }
        }
        route_key(&self.cfg, &self.endpoints, &self.neigh, &self.routes)
    }

    /// Attach every re-created (new ifindex) interface that is up again: the XDP
    /// program on the new device, a new socket in every worker. Its new MAC and MTU go
    /// into the next snapshot; a pod MAC learned on the old interface is forgotten by the
    /// workers (the kernel's neighbour entry went away with the old interface). Returns
    /// whether any port was recovered.
    pub fn recover_interfaces(&mut self, observed: &[Observed]) -> bool {
        let mut any = false;
        for (i, now) in observed.iter().enumerate() {
            let (Some(Ok(now)), Some(port)) = (now, &self.ports[i]) else {
                continue;
            };
            if now.ifindex == port.info.ifindex || !now.up {
                continue;
            }
            let old = port.info.ifindex;
            match self.reattach(i, now) {
                Ok(mode) => {
                    let mut st = self.view();
                    let v = &mut st.ports[i];
                    v.recoveries += 1;
                    v.xdp_mode = mode;
                    log::info!(
                        "interface {} re-created (ifindex {old} -> {}): XDP steering attached again ({} mode), {} worker socket(s) replaced; forwarding resumed (recovery {} of this interface)",
                        now.name, now.ifindex, v.xdp_mode, self.workers.len(), v.recoveries
                    );
                    drop(st);
                    if let Some(p) = self.ports[i].as_mut() {
                        p.info = now.clone();
                        p.recovery_error = None;
                    }
                    any = true;
                }
                Err(e) => {
                    let Some(p) = self.ports[i].as_mut() else {
                        continue;
                    };
                    if p.recovery_error.as_deref() != Some(e.as_str()) {
                        log::error!(
                            "interface {} re-created (ifindex {old} -> {}): attaching it again failed (retried every second): {e}",
                            now.name, now.ifindex
                        );
                    }
                    p.recovery_error = Some(e);
                }
            }
        }
        any
    }

    /// Attach re-created interface `now` again as port `port`: the XDP program, then
    /// each worker replaces its socket for the port (on its own UMEM, filled as at
    /// start-up) and the new socket goes into the XSKMAP. Returns the XDP mode. On
    /// error the caller retries a second later; workers that already replaced their
    /// socket answer the retry with the same fd.
    fn reattach(&mut self, port: usize, now: &IfaceInfo) -> Result<String, String> {
        let role = self.ports[port].as_ref().map_or(PortRole::Pod, |p| p.role);
        let mode = self
            .host
            .attach(&now.name, role)
            .map_err(|e| format!("re-attaching XDP: {e}"))?;
        self.open_sockets(port, now, WorkerRequest::Replace)?;
        Ok(mode)
    }

    /// Ask every worker for a socket on `now` in slot `port` (`kind`: replace or open)
    /// and put each into the XSKMAP.
    fn open_sockets(
        &mut self,
        port: usize,
        now: &IfaceInfo,
        kind: fn(OpenSocket) -> WorkerRequest,
    ) -> Result<(), String> {
        // A re-created interface gets what it had; a pod added later starts with few
        // frames parked and gets more once it receives.
        let fill = if port < self.start_ports {
            self.fill
        } else {
            crate::worker::MIN_FILL
        };
        for (w, worker) in self.workers.iter().enumerate() {
            let queue = u32::try_from(w).map_err(|_| format!("worker {w}: too many workers"))?;
            let (reply, answer) = mpsc::channel::<Result<RawFd, String>>();
            worker
                .requests
                .send(kind(OpenSocket {
                    port,
                    config: socket_config(now.ifindex, queue),
                    tx_budget: TX_BUDGET,
                    fill,
                    reply,
                }))
                .map_err(|_| format!("worker {w} is not running"))?;
            let fd = answer
                .recv_timeout(Duration::from_secs(2))
                .map_err(|_| format!("worker {w} did not answer within 2 s"))??;
            self.host
                .register_xsk(&now.name, queue, fd)
                .map_err(|e| format!("worker {w}: {e}"))?;
        }
        Ok(())
    }

    /// Ask every worker to close its socket in slot `port` and wait until its frames
    /// are back.
    fn close_sockets(&mut self, port: usize) {
        for (w, worker) in self.workers.iter().enumerate() {
            let (reply, answer) = mpsc::channel::<()>();
            if worker
                .requests
                .send(WorkerRequest::Close { port, reply })
                .is_err()
                || answer.recv_timeout(Duration::from_secs(2)).is_err()
            {
                log::error!("worker {w} did not close its socket for port {port} within 2 s");
            }
        }
    }

    /// Same interface (ifindex), new MAC or MTU: the snapshot follows. Returns whether
    /// anything changed.
    pub fn follow_port_changes(&mut self, observed: &[Observed]) -> bool {
        let mut changed = false;
        for (p, now) in self.ports.iter_mut().zip(observed) {
            let (Some(p), Some(Ok(now))) = (p, now) else {
                continue;
            };
            if now.ifindex == p.info.ifindex && (now.mac != p.info.mac || now.mtu != p.info.mtu) {
                log::info!(
                    "interface {}: MAC {} -> {}, MTU {} -> {}",
                    p.info.name,
                    fmt_mac(&p.info.mac),
                    fmt_mac(&now.mac),
                    p.info.mtu,
                    now.mtu
                );
                p.info.mac = now.mac;
                p.info.mtu = now.mtu;
                changed = true;
            }
        }
        if changed {
            let ports = self.ports.clone();
            let mut st = self.view();
            for (v, p) in st.ports.iter_mut().zip(&ports) {
                if let Some(p) = p {
                    v.mac = fmt_mac(&p.info.mac);
                    v.mtu = p.info.mtu;
                }
            }
        }
        changed
    }

    /// Build and publish a snapshot of the current config, ports and neighbours, made
    /// with neighbour `key`. On failure the old snapshot stays and the next refresh
    /// tries again.
    fn publish_routes(&mut self, key: Option<RouteKey>) {
        let generation = self.generation + 1;
        match build_snapshot(
            generation,
            &self.cfg,
            &self.endpoints,
            &self.ports,
            &self.neigh,
            &self.routes,
        ) {
            Ok(s) => {
                for (old, new) in self.view().nodes.iter().zip(NodeView::of(&s)) {
                    if old.next_hops != new.next_hops {
                        log::info!(
                            "neighbour: node {} ({}) next hop {}",
                            new.name,
                            new.ip,
                            new.hops_text()
                        );
                    }
                }
                self.generation = generation;
                self.publish(s);
                self.last_key = key;
            }
            Err(e) => log::error!("route snapshot rebuild failed (retried): {e}"),
        }
    }

    /// Show `snap` in the status view and hand it to the workers.
    fn publish(&mut self, snap: Snapshot) {
        self.view().show_routes(&snap);
        self.snap.store(Arc::new(snap));
    }

    /// Log each interface problem when it appears and when it is resolved, and show the
    /// current ones (they make /readyz fail).
    pub fn report_problems(&mut self, observed: &[Observed]) {
        let problems: Vec<String> = self
            .ports
            .iter()
            .zip(observed)
            .filter_map(|(p, now)| match (p, now) {
                (Some(p), Some(now)) => iface_problem(p, now),
                _ => None,
            })
            .collect();
        if problems == self.last_problems {
            return;
        }
        for p in problems.iter().filter(|p| !self.last_problems.contains(p)) {
            log::error!("{p}");
        }
        for p in self.last_problems.iter().filter(|p| !problems.contains(p)) {
            log::info!("resolved: {p}");
        }
        self.view().iface_problems.clone_from(&problems);
        self.last_problems = problems;
    }

    /// One log line per change of health, not one per second.
    pub fn report_health(&mut self) {
        let health = self.view().healthy();
        match (&health, self.was_healthy) {
            (Err(e), true) => log::warn!("{e}"),
            (Ok(()), false) => log::info!("all workers heartbeating again"),
            _ => {}
        }
        self.was_healthy = health.is_ok();
    }

    /// Whether every worker is still running.
    ///
    /// # Errors
    /// The first worker that stopped on its own (it panicked), with why.
    pub fn check_workers(&self) -> Result<(), String> {
        for w in &self.workers {
            if let Some(why) = w.shared.failed() {
                return Err(format!("worker {} stopped: {why}", w.shared.id));
            }
            if w.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                return Err(format!("worker {} stopped unexpectedly", w.shared.id));
            }
        }
        Ok(())
    }

    /// Detach first, so that frames go back to the kernel path instead of to sockets
    /// nobody reads any more; then stop and drain the workers.
    pub fn shutdown(mut self) {
        for p in self.ports.iter().flatten() {
            match self.host.detach(&p.info.name) {
                Ok(()) => log::info!("detached XDP steering from {}", p.info.name),
                Err(e) => log::warn!("detach {}: {e}", p.info.name),
            }
        }
        drop(self.host);
        self.stop.store(true, Relaxed);
        for w in std::mem::take(&mut self.workers) {
            let WorkerHandle {
                shared,
                requests,
                thread,
            } = w;
            drop(requests); // no more socket replacements
            if thread.is_some_and(|t| t.join().is_err()) {
                log::error!("worker {} had panicked", shared.id);
            }
        }
    }
}

/// The status row of `p` (`endpoints` tell its pod IP).
fn port_view(endpoints: &[EndpointInfo], p: &Port, xdp_mode: String) -> PortView {
    PortView {
        name: p.info.name.clone(),
        role: match p.role {
            PortRole::Uplink => "uplink",
            PortRole::Pod => "pod",
        },
        mac: fmt_mac(&p.info.mac),
        mtu: p.info.mtu,
        xdp_mode,
        endpoint: endpoints
            .iter()
            .find(|e| p.role == PortRole::Pod && e.interface == p.info.name)
            .map(|e| e.ip),
        recoveries: 0,
        vacant: false,
    }
}

/// The status rows of the ports at start-up.
fn port_views(
    endpoints: &[EndpointInfo],
    ports: &[Option<Port>],
    xdp_modes: Vec<String>,
) -> Vec<PortView> {
    ports
        .iter()
        .zip(xdp_modes)
        .map(|(p, xdp_mode)| match p {
            Some(p) => port_view(endpoints, p, xdp_mode),
            None => PortView::vacant(),
        })
        .collect()
}

/// Where the endpoints added over the API are kept: beside the control socket
/// (`/run/podfwd/podfwd.sock` → `/run/podfwd/podfwd.endpoints.json`). Under /run it
/// survives a restart of podfwd, not of the node, whose pods are gone then too.
#[must_use]
pub fn state_file(cfg: &Config) -> PathBuf {
    cfg.control.socket.with_extension("endpoints.json")
}
