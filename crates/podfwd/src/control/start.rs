//! Start-up and the control loop of `podfwd run`.
//!
//! Order: install signal handlers, load and validate the config (nothing touched yet),
//! take the node lock, look up every interface, bind the metrics listener, load the
//! steering program and attach it through bpf_links, create each worker's UMEM and
//! sockets and register them in the XSKMAP, build the first route snapshot, start the
//! workers and the HTTP listener. Anything that fails before the loop detaches what was
//! attached (the bpf_links go with the `Steering` value) and nothing stays behind.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread;

use bpf::Steering;
use podfwd_config::{Config, Switch, TxChecksum};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::SignalOnly;
use xsk::{MultiBuffer, TxMetadata, Umem, UmemConfig, XskSocket};

use super::host::bpf_role;
use super::wake::Wakeups;
use super::{
    port_names, socket_config, steering_config, Control, Kernel, Port, WorkerHandle, TX_BUDGET,
};
use crate::ifaces;
use crate::stats::WorkerShared;
use crate::views::ControlRequest;
use crate::worker::{Worker, WorkerRequest};

/// Errors that stop `podfwd run` before or while starting, or a worker that died.
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
    /// A worker stopped on its own while running (podfwd detached and exited).
    #[error("{0}; podfwd detached its XDP programs and stopped")]
    Worker(String),
    /// Anything else, with its explanation.
    #[error("{0}")]
    Other(String),
}

/// `podfwd run`.
///
/// # Errors
/// Anything that prevents start-up (nothing stays attached then), or a worker that
/// stopped on its own (after a clean detach).
pub fn run(config_path: &Path) -> Result<(), RunError> {
    // Handlers first: a signal during start-up is acted on once the main loop runs,
    // instead of killing the process half-way (bpf_links would still detach).
    let mut signals = signal_pipe()?;
    let cfg = Config::load(config_path)?;
    crate::caps::check(&cfg).map_err(RunError::Other)?;
    let _node_lock = node_lock()?;
    let mut ports: Vec<Port> = port_names(&cfg)
        .into_iter()
        .map(|(name, role)| Ok(Port::new(role, ifaces::lookup(&name)?)))
        .collect::<Result<_, RunError>>()?;
    let endpoints = restore_endpoints(&cfg, &mut ports);
    check_umem(&cfg, ports.len())?;
    let tx_csum = tx_checksum_setting(&cfg)?;
    podfwd::sndbuf::init().map_err(RunError::Other)?;
    let mut ucfg = umem_config(&cfg, ports.len(), tx_csum);
    let multi_buffer = multi_buffer_setting(&cfg)?;
    let ctl_listener = crate::ctl::bind(&cfg.control.socket).map_err(RunError::Other)?;
    let listener = std::net::TcpListener::bind(cfg.metrics.listen).map_err(|e| {
        RunError::Other(format!(
            "cannot listen on metrics.listen {}: {e} (is another podfwd running in this network namespace? pick another address in {})",
            cfg.metrics.listen, cfg.source
        ))
    })?;
    let mut steering = load_steering(&cfg, multi_buffer)?;
    ucfg.multi_buffer = match (multi_buffer, steering.frags()) {
        (_, false) => MultiBuffer::Off,
        (Switch::On, true) => MultiBuffer::On,
        (_, true) => MultiBuffer::Auto,
    };
    let xdp_modes = attach_all(&mut steering, &ports)?;
    let fill = ucfg.fill_size as usize;
    let (workers, handles) = bind_workers(&cfg, &ucfg, &ports, &mut steering)?;
    check_tx_checksum(tx_csum, &workers)?;
    check_multi_buffer(multi_buffer, &workers);
    let mut control = Control::new(
        Kernel::new(steering, cfg.routes.table),
        config_path,
        cfg,
        endpoints,
        ports,
        xdp_modes,
        handles,
        fill,
    )?;
    start_workers(&mut control, workers)?;
    let mut wake = wakeups(&control, &signals)?;
    let (req_tx, req_rx) = crate::ctl::channel(wake.waker());
    let side_stop = Arc::new(AtomicBool::new(false));
    let http = {
        let status = control.status();
        let stop = side_stop.clone();
        thread::Builder::new()
            .name("podfwd-http".into())
            .spawn(move || crate::http::serve(&listener, &status, &stop))
            .map_err(|e| RunError::Other(format!("cannot start the HTTP thread: {e}")))?
    };
    let ctl = {
        let stop = side_stop.clone();
        let path = control.socket_path();
        thread::Builder::new()
            .name("podfwd-ctl".into())
            .spawn(move || crate::ctl::serve(&ctl_listener, &path, &req_tx, &stop))
            .map_err(|e| RunError::Other(format!("cannot start the control socket thread: {e}")))?
    };
    control.log_started();
    crate::notify::ready("forwarding");
    let result = control_loop(&mut control, &mut wake, &mut signals, &req_rx);
    side_stop.store(true, Relaxed);
    let _ = ctl.join();
    control.shutdown();
    let _ = http.join();
    match &result {
        Ok(()) => log::info!("podfwd stopped"),
        Err(e) => log::error!("{e}"),
    }
    result
}

/// The signals podfwd acts on, delivered through a self-pipe the control thread sleeps
/// on.
type SignalPipe = SignalDelivery<UnixStream, SignalOnly>;

fn signal_pipe() -> Result<SignalPipe, RunError> {
    let err = |e: std::io::Error| RunError::Other(format!("cannot install signal handlers: {e}"));
    let (read, write) = UnixStream::pair().map_err(err)?;
    SignalDelivery::with_pipe(read, write, SignalOnly, [SIGTERM, SIGINT, SIGHUP]).map_err(err)
}

/// Set to `1`, the control thread does not wake for kernel notifications and applies
/// them at its periodic refresh only (once a second), for measurements.
const TICK_ONLY_ENV: &str = "PODFWD_TICK_ONLY";

/// What the control thread sleeps on: the kernel's notifications (unless
/// [`TICK_ONLY_ENV`] says not to), the signal pipe, the control socket's waker.
fn wakeups(control: &Control<Kernel>, signals: &SignalPipe) -> Result<Wakeups, RunError> {
    let tick_only = std::env::var(TICK_ONLY_ENV).is_ok_and(|v| v == "1");
    if tick_only {
        log::info!("{TICK_ONLY_ENV}=1: kernel changes are applied at the periodic refresh only");
    }
    let kernel = control.event_fd().filter(|_| !tick_only);
    Wakeups::new(kernel, Some(signals.get_read().as_raw_fd())).map_err(|e| {
        RunError::Other(format!(
            "cannot create the control thread's epoll instance: {e}"
        ))
    })
}

/// Until SIGTERM/SIGINT: reloads on SIGHUP and on requests, kernel changes and the
/// periodic refresh ([`Control::wait`]), and the workers' liveness (a worker that
/// stopped ends the loop with an error).
fn control_loop(
    control: &mut Control<Kernel>,
    wake: &mut Wakeups,
    signals: &mut SignalPipe,
    requests: &mpsc::Receiver<ControlRequest>,
) -> Result<(), RunError> {
    loop {
        for sig in signals.pending() {
            if sig == SIGHUP {
                let _ = control.reload();
            } else {
                log::info!("signal {sig}: stopping");
                return Ok(());
            }
        }
        while let Ok(ControlRequest::Api(req, reply)) = requests.try_recv() {
            let _ = reply.send(control.handle(req));
        }
        control.check_workers().map_err(RunError::Worker)?;
        control.wait(wake);
    }
}

/// Attach the steering program to every port; returns the XDP mode obtained for each.
fn attach_all(steering: &mut Steering, ports: &[Port]) -> Result<Vec<String>, RunError> {
    let mut modes = Vec::with_capacity(ports.len());
    for p in ports {
        let mode = steering.attach(&p.info.name, bpf_role(p.role))?;
        // The bpf crate logs the attach at info.
        log::debug!(
            "attached XDP steering to {} ({mode:?} mode) as {:?}",
            p.info.name,
            p.role
        );
        modes.push(format!("{mode:?}").to_lowercase());
    }
    Ok(modes)
}

/// Environment variable that overrides `offload.tx_checksum` (`auto`, `on`, `off`), for
/// experiments and benchmarks.
pub const TX_CSUM_ENV: &str = "PODFWD_TX_CSUM";

/// `offload.tx_checksum`, or [`TX_CSUM_ENV`] where set.
fn tx_checksum_setting(cfg: &Config) -> Result<TxChecksum, RunError> {
    switch_setting(
        cfg,
        cfg.offload.tx_checksum,
        TX_CSUM_ENV,
        "offload.tx_checksum",
    )
}

/// Environment variable that overrides `offload.multi_buffer` (`auto`, `on`, `off`), for
/// experiments and benchmarks.
pub const MULTI_BUFFER_ENV: &str = "PODFWD_MULTI_BUFFER";

/// `offload.multi_buffer`, or [`MULTI_BUFFER_ENV`] where set.
fn multi_buffer_setting(cfg: &Config) -> Result<Switch, RunError> {
    switch_setting(
        cfg,
        cfg.offload.multi_buffer,
        MULTI_BUFFER_ENV,
        "offload.multi_buffer",
    )
}

/// The config's `field` (`configured`), or the environment variable `env` where set.
fn switch_setting(
    cfg: &Config,
    configured: Switch,
    env: &str,
    field: &str,
) -> Result<Switch, RunError> {
    let Ok(v) = std::env::var(env) else {
        return Ok(configured);
    };
    let s = Switch::from_name(v.trim()).ok_or_else(|| {
        RunError::Other(format!(
            "{env}=`{v}` is not a setting: use auto, on or off (it overrides {field} of {})",
            cfg.source
        ))
    })?;
    log::info!("{env}={}: overrides {field}", s.as_str());
    Ok(s)
}

/// The steering program: its `xdp.frags` entry point unless multi-buffer is off; with
/// `auto` a kernel that refuses it (before 5.18) gets the plain one.
fn load_steering(cfg: &Config, multi_buffer: Switch) -> Result<Steering, RunError> {
    let mut scfg = steering_config(cfg);
    scfg.frags = multi_buffer != Switch::Off;
    match Steering::load(&scfg) {
        Err(e) if multi_buffer == Switch::Auto => {
            log::info!(
                "offload.multi_buffer auto: the xdp.frags steering program did not load ({e});                  frames larger than one UMEM frame will be dropped"
            );
            scfg.frags = false;
            Ok(Steering::load(&scfg)?)
        }
        r => Ok(r?),
    }
}

/// `offload.multi_buffer: on` needs every socket to have it (a kernel that refuses
/// `XDP_USE_SG` already failed the bind); the others say what they got.
fn check_multi_buffer(setting: Switch, workers: &[Worker]) {
    let on = workers.iter().all(Worker::multi_buffer);
    match (setting, on) {
        (Switch::Off, _) => log::info!(
            "offload.multi_buffer off: frames larger than one UMEM frame are dropped"
        ),
        (_, true) => log::info!(
            "multi-buffer AF_XDP on: frames larger than one UMEM frame travel as descriptor chains"
        ),
        (_, false) => log::info!(
            "offload.multi_buffer {}: not available (the kernel refused XDP_USE_SG); frames              larger than one UMEM frame are dropped",
            setting.as_str()
        ),
    }
}

/// `offload.tx_checksum: on` refuses to start without the kernel's checksum offload; the
/// other settings say what they got.
fn check_tx_checksum(setting: TxChecksum, workers: &[Worker]) -> Result<(), RunError> {
    let offload = workers.iter().all(Worker::tx_checksum_offload);
    match (setting, offload) {
        (TxChecksum::On, false) => Err(RunError::Other(
            "offload.tx_checksum is on, but this kernel has no AF_XDP TX metadata checksum offload              (XDP_UMEM_TX_METADATA_LEN, Linux 6.11+) or a socket is bound in zero-copy mode:              use auto or off to complete partial checksums in software"
                .into(),
        )),
        (TxChecksum::Off, _) => {
            log::info!("offload.tx_checksum off: partial checksums are completed in software");
            Ok(())
        }
        (_, true) => Ok(()),
        (TxChecksum::Auto, false) => {
            log::info!(
                "offload.tx_checksum auto: partial checksums are completed in software (no AF_XDP TX                  metadata in this kernel, or a socket in zero-copy mode)"
            );
            Ok(())
        }
    }
}

/// Ring sizes for the `nports` interfaces podfwd starts with: their fill rings get at
/// most half the UMEM between them (at most 2048 frames each); the rest is for frames
/// on RX and TX rings, in flight, and for pods added later, which start with
/// [`crate::worker::MIN_FILL`] frames and get more as they receive. TX metadata for
/// checksum offload unless `tx_csum` is off.
///
/// For experiments, `PODFWD_RX_RING` sets the RX ring size and `PODFWD_FILL_RING` the
/// largest fill ring (powers of two; default 2048 each, the fill ring still within half
/// the UMEM).
fn umem_config(cfg: &Config, nports: usize, tx_csum: TxChecksum) -> UmemConfig {
    let ring_env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| n.is_power_of_two() && *n >= 64)
            .unwrap_or(2048)
    };
    let nports = u32::try_from(nports).unwrap_or(u32::MAX).max(1);
    let per_port = (cfg.umem.frames / (2 * nports)).clamp(64, ring_env("PODFWD_FILL_RING"));
    UmemConfig {
        frame_count: cfg.umem.frames,
        frame_size: cfg.umem.frame_size,
        headroom: 0,
        fill_size: 1u32 << (31 - per_port.leading_zeros()),
        comp_size: 2048,
        rx_size: ring_env("PODFWD_RX_RING"),
        tx_size: 2048,
        tx_metadata: match tx_csum {
            TxChecksum::Off => TxMetadata::Off,
            TxChecksum::Auto | TxChecksum::On => TxMetadata::Offload,
        },
        // Decided once the steering program is loaded (run).
        multi_buffer: MultiBuffer::Off,
    }
}

/// Each worker's UMEM and one socket per port on its queue, filled and registered in
/// the XSKMAP; the workers are not running yet.
fn bind_workers(
    cfg: &Config,
    ucfg: &UmemConfig,
    ports: &[Port],
    steering: &mut Steering,
) -> Result<(Vec<Worker>, Vec<WorkerHandle>), RunError> {
    let mut workers = Vec::new();
    let mut handles = Vec::new();
    for w in 0..cfg.workers.count {
        let xsk_err = |iface: &str| {
            let iface = iface.to_owned();
            move |source| RunError::Xsk {
                worker: w,
                iface,
                source,
            }
        };
        let queue = u32::try_from(w)
            .map_err(|_| RunError::Other(format!("worker {w}: too many workers")))?;
        let mut umem = Umem::new(ucfg).map_err(xsk_err("-"))?;
        let mut sockets = Vec::new();
        for p in ports {
            let mut s = XskSocket::new(&mut umem, &socket_config(p.info.ifindex, queue))
                .map_err(xsk_err(&p.info.name))?;
            if let Err(e) = s.set_tx_budget(TX_BUDGET) {
                log::info!("{e}: copy-mode TX keeps the kernel's default of 32 frames per wakeup");
            }
            podfwd::sndbuf::apply(
                &s,
                &format!("worker {w}: AF_XDP socket on {} queue {queue}", p.info.name),
            );
            // Give the kernel RX frames before steering traffic to the socket, so the
            // first frames do not meet an empty fill ring.
            s.fill(&mut umem, ucfg.fill_size as usize);
            steering.register_xsk(&p.info.name, queue, s.fd())?;
            log::info!(
                "worker {w}: AF_XDP socket on {} queue {queue} ({:?})",
                p.info.name,
                s.bound_mode()
            );
            sockets.push(s);
        }
        let cpu = cfg.workers.cpus.as_ref().and_then(|c| c.get(w).copied());
        // Counters for every port slot the XDP program can hold: endpoints come and go.
        let shared = Arc::new(WorkerShared::new(w, cpu, bpf::MAX_SLOTS as usize));
        let (req_tx, req_rx) = mpsc::channel::<WorkerRequest>();
        let worker = Worker::new(umem, sockets, shared.clone()).map_err(|e| {
            RunError::Other(format!("worker {w}: cannot create its epoll instance: {e}"))
        })?;
        workers.push(worker.with_requests(req_rx));
        handles.push(WorkerHandle {
            shared,
            requests: req_tx,
            thread: None,
        });
    }
    Ok((workers, handles))
}

/// Start each worker's thread on the published snapshot.
fn start_workers(control: &mut Control<Kernel>, workers: Vec<Worker>) -> Result<(), RunError> {
    let snap = control.snapshot();
    let stop = control.stop_flag();
    for (h, wk) in control.workers_mut().iter_mut().zip(workers) {
        let (snap, stop) = (snap.clone(), stop.clone());
        let name = format!("podfwd-w{}", h.shared.id);
        let t = thread::Builder::new()
            .name(name)
            .spawn(move || wk.run(&snap, &stop))
            .map_err(|e| RunError::Other(format!("cannot start a worker thread: {e}")))?;
        h.thread = Some(t);
    }
    Ok(())
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

/// The endpoints to serve at start: the config's, then those a previous podfwd added
/// over the API (the state file) whose interface still exists — their ports are added to
/// `ports`; the others are dropped (the pod went while podfwd was down) and logged.
fn restore_endpoints(cfg: &Config, ports: &mut Vec<Port>) -> Vec<podfwd_api::EndpointInfo> {
    let mut endpoints = super::config_endpoints(cfg);
    for e in super::endpoints::load_state(&super::state_file(cfg)) {
        let clash = endpoints
            .iter()
            .any(|c| c.ip == e.ip || c.interface == e.interface);
        match ifaces::lookup(&e.interface) {
            Ok(info) if !clash && cfg.node.pod_cidr.contains(&e.ip) => {
                log::info!("endpoint {} on {} restored from the state file", e.ip, e.interface);
                ports.push(Port::new(route::PortRole::Pod, info));
                endpoints.push(e);
            }
            Ok(_) => log::warn!(
                "endpoint {} on {} from the state file clashes with the config or is outside the PodCIDR: dropped",
                e.ip, e.interface
            ),
            Err(_) => log::info!(
                "endpoint {} on {} from the state file: interface gone, dropped",
                e.ip, e.interface
            ),
        }
    }
    endpoints
}

impl Control<Kernel> {
    fn log_started(&self) {
        let (node, mode, listen) = (&self.cfg.node.name, self.cfg.mode, self.cfg.metrics.listen);
        log::info!(
            "podfwd running: node {node} mode {mode} with {} worker(s) on {} interface(s); metrics on http://{listen}/metrics",
            self.workers.len(),
            self.ports.len(),
        );
    }
}
