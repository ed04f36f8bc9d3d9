//! The worker loop: one pinned thread, one UMEM, one AF_XDP socket per port.
//!
//! Every iteration: recycle completions into the free list, top up each fill ring,
//! receive a batch from each RX ring, decide every frame with the pipeline (rewriting
//! it in place), move each descriptor to its egress TX ring (or back to the free list),
//! and kick TX only when the ring asks for it. After traffic the worker keeps polling the
//! rings for a short spin window, yielding the CPU between polls, then sleeps in epoll on
//! its sockets' fds.
//!
//! Ports are slots: a pod's endpoint added at runtime gets the lowest vacant slot (or a
//! new one), a removed one leaves its slot vacant, so port ids never shift under the
//! route snapshot. The control thread asks a running worker ([`WorkerRequest`]) to open
//! a socket for a slot, to replace one (its interface was re-created) or to close one:
//! the worker owns the UMEM, so it creates sockets itself and takes back the frames
//! left on a closed one's rings ([`XskSocket::reclaim_dead`],
//! [`XskSocket::close_and_reclaim`]), and answers with the new fd for the XSKMAP.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use pipeline::{Pipeline, TxQueues};
use route::{PortId, Snapshot};
use xsk::{BindMode, SocketConfig, StillBound, Umem, XdpDesc, XdpStatistics, XskSocket};

use crate::chain::{self, Chains, Pkt, UmemFrames};
use crate::stats::{now_ms, LocalStats, WorkerShared};

/// Frames taken from one RX ring per iteration.
pub const RX_BATCH: usize = 256;
/// Frames moved into a fill ring per iteration at most.
const FILL_BATCH: usize = 512;
/// Fewest frames a port keeps parked on its fill ring (what a new pod's socket starts
/// with). A port whose RX batch takes half of its target or more gets its target
/// quadrupled (up to its ring size, within half the UMEM for all ports together); one that
/// received nothing for a second gets it halved. Frames parked on a fill ring belong to
/// the kernel until it uses them, so an idle pod holds only this many, and 256 idle pods
/// do not starve a busy one.
pub const MIN_FILL: usize = 64;
/// Frames each pod port needs in a worker's UMEM: [`MIN_FILL`] parked, half as many in
/// flight.
pub const FRAMES_PER_POD: usize = MIN_FILL * 3 / 2;
/// Frames that stay free in a UMEM for frames in flight between rings.
pub const FRAMES_IN_FLIGHT: usize = 1024;

/// Frames a worker's UMEM needs for the uplink's fill ring of `uplink_fill` frames and
/// `pods` pod ports.
#[must_use]
pub fn umem_frames_needed(uplink_fill: usize, pods: usize) -> usize {
    uplink_fill + pods * FRAMES_PER_POD + FRAMES_IN_FLIGHT
}

/// A port that received nothing for this many iterations is cold: it is looked at only
/// every [`COLD_EVERY`]th iteration (and after every sleep), so the cost of an
/// iteration follows the busy ports, not the number of pods.
const HOT_ITERS: u64 = 1024;
/// See [`HOT_ITERS`].
const COLD_EVERY: u64 = 16;
/// How long a worker keeps polling its rings after the last frame before it sleeps
/// (`PODFWD_SPIN_US` overrides it, for experiments). While it spins it yields the CPU
/// on every empty poll: on a machine where the traffic's own processes share the cores,
/// a worker that spins without yielding delays the very packets it waits for (measured
/// here: sockperf p50 60 µs spinning 50 µs without yielding, 9 µs with).
const SPIN: Duration = Duration::from_micros(200);

fn spin_window() -> Duration {
    std::env::var("PODFWD_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(SPIN, Duration::from_micros)
}
/// Longest sleep: bounds how late a worker notices stop requests and refreshes stats.
const SLEEP: Duration = Duration::from_millis(100);
/// Publish counters at least this often while busy.
const PUBLISH_EVERY: Duration = Duration::from_millis(1);
/// Kick TX at most this many times per port and iteration (copy mode sends 32 frames per
/// kick).
const MAX_KICKS: usize = 8;

/// What the control thread asks of a running worker.
#[derive(Debug)]
pub enum WorkerRequest {
    /// Replace the socket of a port whose interface was re-created.
    Replace(OpenSocket),
    /// Open a socket for a vacant (or new) port slot.
    Open(OpenSocket),
    /// Close the socket of `port`, take back its frames and leave the slot vacant.
    Close {
        /// The port slot.
        port: usize,
        /// Answered once the frames are back.
        reply: mpsc::Sender<()>,
    },
}

/// A socket for `port` bound by `config`, with the same TX budget and initial fill as at
/// start-up. The reply carries the new socket's fd (to register in the XSKMAP) or why it
/// could not be created; the port keeps what it had then.
#[derive(Debug)]
pub struct OpenSocket {
    /// Port id (index into the worker's sockets).
    pub port: usize,
    /// Where to bind: the new ifindex, this worker's queue.
    pub config: SocketConfig,
    /// `XDP_MAX_TX_SKB_BUDGET` to ask for.
    pub tx_budget: u32,
    /// Frames to put on the new fill ring before the socket is registered.
    pub fill: usize,
    /// Where the answer goes.
    pub reply: mpsc::Sender<Result<RawFd, String>>,
}

/// Per-iteration state of the worker loop (what [`Worker::poll_once`] and
/// [`Worker::idle`] carry from one iteration to the next).
#[derive(Debug)]
struct LoopState {
    /// The RX batch being processed: its descriptors, and the frames they make.
    rx: Vec<XdpDesc>,
    pkts: Vec<Pkt>,
    /// The further buffers of this iteration's chained frames (multi-buffer).
    chains: Chains,
    /// Frames decided for TX, per egress port.
    tx: TxQueues<Pkt>,
    /// One port's TX queue laid out as ring descriptors.
    tx_descs: Vec<XdpDesc>,
    /// Per port: the last TX kick moved nothing (see [`Worker::flush_tx`]).
    tx_stalled: Vec<bool>,
    /// When the worker last found nothing to do (start of the spin window).
    idle_since: Option<Instant>,
    /// Spin before sleeping: frames moved since the last sleep, or an event ended it.
    /// A sleep that timed out with no traffic goes straight back to sleep.
    spin_armed: bool,
    /// Loop iterations, to read the clock only every 64th busy one.
    iterations: u64,
    /// Per port: frames to keep parked on its fill ring (see [`MIN_FILL`]).
    fill_target: Vec<usize>,
    /// Per port: received since the last decay of `fill_target`.
    rx_recent: Vec<bool>,
    /// Per port: the iteration it last received in (see [`HOT_ITERS`]).
    last_rx: Vec<u64>,
    /// Look at every port in the next iteration (after a sleep).
    scan_all: bool,
    last_publish: Instant,
    last_xdp_stats: Instant,
    spin: Duration,
}

/// One worker: its UMEM and its sockets, one per port, in [`PortId`] order.
#[derive(Debug)]
pub struct Worker {
    /// One slot per port, `None` when vacant. Sockets first: they must be dropped before
    /// the UMEM they use.
    sockets: Vec<Option<XskSocket>>,
    /// Replaced sockets whose device still exists (renamed away rather than deleted):
    /// their frames stay the kernel's until it is gone (retried every second).
    retired: Vec<XskSocket>,
    umem: Umem,
    shared: Arc<WorkerShared>,
    requests: Option<mpsc::Receiver<WorkerRequest>>,
    /// Per port: kernel statistics of the sockets replaced so far, and the last read of
    /// the current one, so that the published counters never go backwards.
    xsk_base: Vec<XdpStatistics>,
    xsk_last: Vec<XdpStatistics>,
    pipeline: Pipeline,
    local: LocalStats,
    state: LoopState,
    poll: Poll,
    events: Events,
}

impl Worker {
    /// A worker over already-bound sockets.
    ///
    /// # Errors
    /// When the epoll instance it sleeps in cannot be created.
    pub fn new(
        umem: Umem,
        sockets: Vec<XskSocket>,
        shared: Arc<WorkerShared>,
    ) -> std::io::Result<Worker> {
        shared
            .umem_frames
            .store(u64::from(umem.frame_count()), Relaxed);
        let n = sockets.len();
        let now = Instant::now();
        // What start-up parked on each fill ring is where each port's target starts.
        let fill_target = sockets
            .iter()
            .map(|s| s.fill_parked().max(MIN_FILL))
            .collect();
        let mut w = Worker {
            sockets: sockets.into_iter().map(Some).collect(),
            retired: Vec::new(),
            umem,
            shared,
            requests: None,
            xsk_base: vec![XdpStatistics::default(); n],
            xsk_last: vec![XdpStatistics::default(); n],
            pipeline: Pipeline::new(),
            local: LocalStats {
                ports: vec![[0; 4]; n],
                ..LocalStats::default()
            },
            state: LoopState {
                rx: Vec::with_capacity(RX_BATCH),
                pkts: Vec::with_capacity(RX_BATCH),
                chains: Chains::default(),
                tx: TxQueues::new(n, RX_BATCH * 4),
                tx_descs: Vec::with_capacity(RX_BATCH * 4),
                tx_stalled: vec![false; n],
                idle_since: None,
                spin_armed: false,
                iterations: 0,
                fill_target,
                rx_recent: vec![false; n],
                last_rx: vec![0; n],
                scan_all: true,
                last_publish: now,
                last_xdp_stats: now,
                spin: spin_window(),
            },
            poll: Poll::new()?,
            events: Events::with_capacity(64),
        };
        w.update_csum_offload();
        let mb = w.multi_buffer();
        w.shared.multi_buffer.store(mb, Relaxed);
        Ok(w)
    }

    /// Whether frames larger than one UMEM frame travel as descriptor chains: every
    /// socket is multi-buffer (they share the UMEM, so they all are or none is).
    #[must_use]
    pub fn multi_buffer(&self) -> bool {
        self.sockets.iter().flatten().all(XskSocket::multi_buffer)
    }

    /// Whether partial checksums are left to the kernel's checksum offload.
    #[must_use]
    pub fn tx_checksum_offload(&self) -> bool {
        self.pipeline.checksum_offload().is_some()
    }

    /// Partial checksums go to the kernel's checksum offload where the UMEM has TX
    /// metadata (asked for by `offload.tx_checksum`, granted by the kernel) and every
    /// socket is in copy mode, where the kernel builds an skb that carries the request
    /// (zero-copy drivers may ignore it); elsewhere the pipeline completes them.
    fn update_csum_offload(&mut self) {
        let md = self.umem.tx_metadata_len() as usize;
        let copy = self
            .sockets
            .iter()
            .flatten()
            .all(|s| s.bound_mode() == BindMode::Copy);
        let room = (md > 0 && copy).then_some(md);
        if room != self.pipeline.checksum_offload() {
            log::info!(
                "worker {}: partial checksums {}",
                self.shared.id,
                if room.is_some() {
                    "left to the kernel's checksum offload (AF_XDP TX metadata)"
                } else {
                    "completed in software"
                }
            );
        }
        self.pipeline.offload_checksums(room);
        self.shared.tx_csum_offload.store(room.is_some(), Relaxed);
    }

    /// Take [`WorkerRequest`]s from `rx` while running.
    #[must_use]
    pub fn with_requests(mut self, rx: mpsc::Receiver<WorkerRequest>) -> Worker {
        self.requests = Some(rx);
        self
    }

    /// Run until `stop` is set. A panic inside marks the worker failed (see
    /// [`WorkerShared::fail`]) before it unwinds, so /healthz says so at once.
    pub fn run(mut self, snap: &ArcSwap<Snapshot>, stop: &AtomicBool) {
        let shared = self.shared.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.pin();
            if let Err(e) = self.register_all() {
                shared.fail(&format!("epoll register: {e}"));
                log::error!("worker {}: epoll register: {e}", shared.id);
                return;
            }
            while !stop.load(Relaxed) {
                self.step(snap);
            }
            self.publish(snap.load().generation);
            self.publish_xdp_stats();
            self.drain_and_account();
        }));
        if let Err(panic) = result {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            shared.fail(&format!("panicked: {what}"));
            std::panic::resume_unwind(panic);
        }
    }

    /// One iteration of [`Worker::run`]'s loop: [`Worker::poll_once`] on the current
    /// snapshot, housekeeping when the clock is read, and [`Worker::idle`] (spin or
    /// sleep) when nothing moved. Returns the frames received.
    pub fn step(&mut self, snap: &ArcSwap<Snapshot>) -> usize {
        let guard = snap.load();
        let work = self.poll_once(&guard);
        let now = self.clock(work);
        if let Some(now) = now {
            self.housekeeping(now, guard.generation);
        }
        if work > 0 {
            self.local.busy_polls += 1;
            self.state.idle_since = None;
            self.state.spin_armed = true;
        } else if let Some(now) = now {
            drop(guard);
            self.idle(now, snap);
        }
        work
    }

    /// The UMEM, for code playing the kernel side of fake sockets (`xsk::testing`).
    pub fn umem_mut(&mut self) -> &mut Umem {
        &mut self.umem
    }

    /// The pipeline's counters (what the next publish copies out).
    #[must_use]
    pub fn counters(&self) -> &pipeline::Counters {
        self.pipeline.counters()
    }

    fn pin(&self) {
        if let Some(cpu) = self.shared.cpu {
            if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                log::info!("worker {} pinned to cpu {cpu}", self.shared.id);
            } else {
                log::warn!("worker {}: could not pin to cpu {cpu}", self.shared.id);
            }
        }
    }

    fn register_all(&self) -> std::io::Result<()> {
        for (i, s) in self.sockets.iter().enumerate() {
            let Some(s) = s else { continue };
            let fd = s.fd();
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)?;
        }
        Ok(())
    }

    /// One pass over every port: completions back to the free list, fill rings topped
    /// up, one RX batch per port through the pipeline, TX queues flushed. Returns the
    /// frames received.
    pub fn poll_once(&mut self, snap: &Snapshot) -> usize {
        // Every frame of the last iteration went onto a TX ring or back to the free list.
        debug_assert!(self.state.tx.is_empty());
        self.state.chains.clear();
        for s in self.sockets.iter_mut().flatten() {
            if s.tx_outstanding() > 0 {
                s.complete(&mut self.umem, 1024);
            }
        }
        let it = self.state.iterations;
        let scan_all = self.state.scan_all || it % COLD_EVERY == 0;
        self.state.scan_all = false;
        let mut work = 0;
        for p in 0..self.sockets.len() {
            if scan_all || it.wrapping_sub(self.state.last_rx[p]) < HOT_ITERS {
                work += self.receive_port(p, snap);
            }
        }
        self.flush_tx();
        self.state.iterations = self.state.iterations.wrapping_add(1);
        work
    }

    /// Run one RX batch of port `p` through the pipeline and top its fill ring up.
    fn receive_port(&mut self, p: usize, snap: &Snapshot) -> usize {
        let mut rx = std::mem::take(&mut self.state.rx);
        rx.clear();
        let Some(sock) = self.sockets[p].as_mut() else {
            self.state.rx = rx;
            return 0;
        };
        let got = sock.rx_batch(&mut self.umem, &mut rx, RX_BATCH);
        if got * 2 >= self.state.fill_target[p] {
            self.grow_fill(p);
        }
        self.refill(p);
        if got > 0 {
            let Ok(rx_port) = PortId::try_from(p) else {
                unreachable!("ports are counted in u16 by construction");
            };
            let mut pkts = std::mem::take(&mut self.state.pkts);
            pkts.clear();
            let (umem, pipeline) = (&mut self.umem, &mut self.pipeline);
            self.state.chains.group(&rx, &mut pkts, |bad| {
                pipeline.drop_bad_chain();
                for d in bad {
                    umem.free_frame(d.addr);
                }
            });
            let bytes = self.pipeline.process_batch(
                snap,
                rx_port,
                &pkts,
                &mut UmemFrames {
                    umem: &mut self.umem,
                    chains: &self.state.chains,
                },
                &mut self.state.tx,
            );
            self.local.batches += 1;
            // Frames, not descriptors: a chain is one frame.
            self.local.ports[p][0] += pkts.len() as u64;
            self.state.pkts = pkts;
            self.local.ports[p][1] += bytes;
            self.state.rx_recent[p] = true;
            self.state.last_rx[p] = self.state.iterations;
        }
        self.state.rx = rx;
        got
    }

    /// Park frames on port `p`'s fill ring up to its target, right after an RX batch
    /// took some, so that a burst finds the ring full again soon.
    fn refill(&mut self, p: usize) {
        let Some(sock) = self.sockets[p].as_mut() else {
            return;
        };
        let target = self.state.fill_target[p];
        let parked = sock.fill_parked();
        if parked < target
            && sock.fill(&mut self.umem, (target - parked).min(FILL_BATCH)) > 0
            && sock.fill_needs_wakeup()
        {
            self.local.rx_wakeups += 1;
            let _ = sock.wakeup_rx();
        }
    }

    /// Quadruple port `p`'s fill target, within its ring and half the UMEM for all ports.
    fn grow_fill(&mut self, p: usize) {
        let ring = self.umem.config().fill_size as usize;
        let budget = self.umem.frame_count() as usize / 2;
        let total: usize = self.state.fill_target.iter().sum();
        let cur = self.state.fill_target[p];
        let room = budget.saturating_sub(total);
        self.state.fill_target[p] = (cur * 4).min(ring).min(cur + room).max(cur);
    }

    /// Halve the fill target of every port that received nothing since the last call
    /// (once a second).
    fn decay_fill(&mut self) {
        for (t, seen) in self
            .state
            .fill_target
            .iter_mut()
            .zip(self.state.rx_recent.iter_mut())
        {
            if !*seen {
                *t = (*t / 2).max(MIN_FILL);
            }
            *seen = false;
        }
    }

    /// Push every port's TX queue onto its ring (what does not fit is `tx_ring_full`),
    /// and kick the rings that ask for it.
    fn flush_tx(&mut self) {
        for p in 0..self.sockets.len() {
            let Some(sock) = self.sockets[p].as_mut() else {
                continue;
            };
            let queued = self.state.tx.pending(p);
            let pushed = if queued.is_empty() {
                0
            } else {
                chain::expand(&self.state.chains, queued, &mut self.state.tx_descs);
                let descs = sock.tx_push(&mut self.umem, &self.state.tx_descs);
                let pushed = chain::whole_frames(&self.state.chains, queued, descs);
                let s = self.state.tx.settle(
                    p,
                    pushed,
                    &mut self.pipeline,
                    &mut UmemFrames {
                        umem: &mut self.umem,
                        chains: &self.state.chains,
                    },
                );
                self.local.ports[p][2] += s.sent as u64;
                self.local.ports[p][3] += s.bytes;
                pushed
            };
            // A ring whose last kick moved nothing (its device is gone or refuses to
            // send) is kicked again only when new frames go onto it or after a sleep,
            // not on every loop iteration.
            if self.state.tx_stalled[p] && pushed == 0 {
                continue;
            }
            let Some(sock) = self.sockets[p].as_mut() else {
                continue;
            };
            let before = sock.tx_queued();
            let mut kicks = 0;
            while sock.tx_queued() > 0 && sock.tx_needs_wakeup() && kicks < MAX_KICKS {
                self.local.tx_wakeups += 1;
                kicks += 1;
                if sock.kick_tx().is_err() {
                    break;
                }
                sock.complete(&mut self.umem, 1024);
            }
            self.state.tx_stalled[p] = before > 0 && sock.tx_queued() >= before;
        }
    }

    /// The time, when this iteration should look at it: reading the clock costs more
    /// than a counter, so every 64th busy iteration, and every idle one (which is about
    /// to spin or sleep anyway).
    fn clock(&self, work: usize) -> Option<Instant> {
        (work == 0 || self.state.iterations % 64 == 0).then(Instant::now)
    }

    /// Publish counters (at most every millisecond), kernel statistics and retired
    /// sockets (every second), and answer the control thread's requests.
    fn housekeeping(&mut self, now: Instant, generation: u64) {
        if now.duration_since(self.state.last_publish) >= PUBLISH_EVERY {
            self.publish(generation);
            self.state.last_publish = now;
        }
        if now.duration_since(self.state.last_xdp_stats) >= Duration::from_secs(1) {
            self.publish_xdp_stats();
            self.reclaim_retired();
            self.decay_fill();
            self.state.last_xdp_stats = now;
        }
        while let Some(req) = self.requests.as_ref().and_then(|r| r.try_recv().ok()) {
            match req {
                WorkerRequest::Replace(req) => {
                    let res = self.replace_socket(&req);
                    let _ = req.reply.send(res);
                }
                WorkerRequest::Open(req) => {
                    let res = self.open_socket(&req);
                    let _ = req.reply.send(res);
                }
                WorkerRequest::Close { port, reply } => {
                    self.close_socket(port);
                    let _ = reply.send(());
                }
            }
        }
    }

    /// Nothing moved this iteration: yield while inside the spin window, then sleep in
    /// epoll (at once after a sleep that timed out with nothing to do: no traffic, no
    /// spin, so an idle worker wakes only every [`SLEEP`]). Frames still on a TX ring
    /// need another kick, not a sleep; but a stalled
    /// ring (a device that is gone or refuses to send) must not keep the worker awake:
    /// its frames stay accounted on that ring (reclaimed if the interface comes back).
    fn idle(&mut self, now: Instant, snap: &ArcSwap<Snapshot>) {
        self.local.idle_polls += 1;
        let since = *self.state.idle_since.get_or_insert(now);
        let tx_pending = self
            .sockets
            .iter()
            .zip(&self.state.tx_stalled)
            .any(|(s, &stalled)| s.as_ref().is_some_and(|s| s.tx_queued() > 0) && !stalled);
        let waited = now.duration_since(since);
        if (self.state.spin_armed && waited < self.state.spin) || (tx_pending && waited < SLEEP) {
            std::thread::yield_now();
            return;
        }
        self.publish(snap.load().generation);
        self.state.last_publish = now;
        self.local.sleeps += 1;
        let any_queued = self.sockets.iter().flatten().any(|s| s.tx_queued() > 0);
        let timeout = if tx_pending {
            Duration::from_millis(1)
        } else if any_queued {
            // Retry a ring that did not move now and then, cheaply.
            Duration::from_millis(10)
        } else {
            SLEEP
        };
        let _ = self.poll.poll(&mut self.events, Some(timeout));
        self.state.spin_armed = !self.events.is_empty();
        // After a sleep every ring gets one more kick, and every port is looked at.
        self.state.tx_stalled.fill(false);
        self.state.scan_all = true;
        self.state.idle_since = None;
    }

    /// Replace the socket of `req.port` by a new one bound by `req.config` (see
    /// [`WorkerRequest::Replace`]); returns the new fd. A repeated request for the
    /// ifindex the port already has (the control thread retrying after a timeout)
    /// returns the current fd.
    fn replace_socket(&mut self, req: &OpenSocket) -> Result<RawFd, String> {
        let id = self.shared.id;
        let p = req.port;
        let Some(Some(old)) = self.sockets.get(p) else {
            return Err(format!("worker {id}: no socket on port {p}"));
        };
        let (old_ifindex, old_fd) = (old.ifindex(), old.fd());
        if old_ifindex == req.config.ifindex {
            return Ok(old_fd);
        }
        let s = XskSocket::new(&mut self.umem, &req.config).map_err(|e| {
            format!(
                "worker {id}: new AF_XDP socket on ifindex {} queue {}: {e}",
                req.config.ifindex, req.config.queue_id
            )
        })?;
        if let Err(e) = s.set_tx_budget(req.tx_budget) {
            log::debug!("{e}: copy-mode TX keeps the kernel's default of 32 frames per wakeup");
        }
        crate::sndbuf::apply(
            &s,
            &format!(
                "worker {id}: AF_XDP socket on ifindex {} queue {}",
                req.config.ifindex, req.config.queue_id
            ),
        );
        Ok(self.swap_socket(p, s, req.fill))
    }

    /// Put `s` in place of port `p`'s socket: epoll follows, the kernel counters stay
    /// monotonic, the pod MAC learned on the port is forgotten, the old socket's frames
    /// are taken back (or kept with it while its device still exists), and the new fill
    /// ring gets `fill` frames. Returns the new socket's fd.
    fn swap_socket(&mut self, p: usize, s: XskSocket, fill: usize) -> RawFd {
        let id = self.shared.id;
        let new_fd = s.fd();
        let new_ifindex = s.ifindex();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&new_fd), Token(p), Interest::READABLE)
        {
            // The worker still polls the rings at least every 100 ms.
            log::warn!("worker {id}: epoll register of the new socket for port {p}: {e}");
        }
        self.state.tx_stalled[p] = false;
        if let Ok(port) = PortId::try_from(p) {
            self.pipeline.forget_learned(port);
        }
        if let Some(old) = self.sockets[p].replace(s) {
            let (old_ifindex, old_fd) = (old.ifindex(), old.fd());
            let _ = self.poll.registry().deregister(&mut SourceFd(&old_fd));
            // Keep the published kernel counters monotonic across the swap.
            let st = old.statistics().unwrap_or(self.xsk_last[p]);
            add_stats(&mut self.xsk_base[p], &st);
            self.xsk_last[p] = XdpStatistics::default();
            match old.reclaim_dead(&mut self.umem) {
                Ok(n) => log::info!(
                    "worker {id}: port {p} socket replaced (ifindex {old_ifindex} -> {new_ifindex}, fd {new_fd}); {n} frames taken back from the old socket's rings"
                ),
                Err(StillBound(s)) => {
                    log::warn!(
                        "worker {id}: port {p} socket replaced (ifindex {old_ifindex} -> {new_ifindex}, fd {new_fd}), but the old one is still bound (its device still exists): its frames are kept until the device is gone"
                    );
                    self.retired.push(*s);
                }
            }
        }
        // RX frames for the kernel before the control thread registers the socket in
        // the XSKMAP (as at start-up); after the reclaim, so a small UMEM is not short.
        if let Some(sock) = self.sockets[p].as_mut() {
            sock.fill(&mut self.umem, fill);
        }
        self.state.fill_target[p] = fill.max(MIN_FILL);
        self.state.last_rx[p] = self.state.iterations;
        // A new socket may have registered the UMEM anew (when every other socket's
        // device was gone).
        self.update_csum_offload();
        new_fd
    }

    /// Open a socket for the vacant (or new) slot `req.port` (see
    /// [`WorkerRequest::Open`]); returns its fd. The slot starts with zero counters.
    fn open_socket(&mut self, req: &OpenSocket) -> Result<RawFd, String> {
        let id = self.shared.id;
        let p = req.port;
        if p >= self.shared.ports.len() {
            return Err(format!(
                "worker {id}: port {p} is past the {} ports a worker holds",
                self.shared.ports.len()
            ));
        }
        if let Some(Some(cur)) = self.sockets.get(p) {
            if cur.ifindex() == req.config.ifindex {
                return Ok(cur.fd()); // a retry of a request already done
            }
            return Err(format!("worker {id}: port {p} already has a socket"));
        }
        let s = XskSocket::new(&mut self.umem, &req.config).map_err(|e| {
            format!(
                "worker {id}: new AF_XDP socket on ifindex {} queue {}: {e}",
                req.config.ifindex, req.config.queue_id
            )
        })?;
        if let Err(e) = s.set_tx_budget(req.tx_budget) {
            log::debug!("{e}: copy-mode TX keeps the kernel's default of 32 frames per wakeup");
        }
        crate::sndbuf::apply(
            &s,
            &format!(
                "worker {id}: AF_XDP socket on ifindex {} queue {}",
                req.config.ifindex, req.config.queue_id
            ),
        );
        self.grow(p + 1);
        self.local.ports[p] = [0; 4];
        self.xsk_base[p] = XdpStatistics::default();
        self.xsk_last[p] = XdpStatistics::default();
        self.shared.ports[p].reset();
        self.state.tx.set_open(p, true);
        let fd = self.swap_socket(p, s, req.fill);
        log::info!(
            "worker {id}: port {p} opened (ifindex {}, fd {fd})",
            req.config.ifindex
        );
        Ok(fd)
    }

    /// Close port `p`'s socket (the slot becomes vacant) and take back every frame on
    /// its rings. Its TX queue is empty: queues are settled in the iteration that fills
    /// them.
    fn close_socket(&mut self, p: usize) {
        let id = self.shared.id;
        let Some(old) = self.sockets.get_mut(p).and_then(Option::take) else {
            return;
        };
        self.state.tx.set_open(p, false);
        self.state.tx_stalled[p] = false;
        let _ = self.poll.registry().deregister(&mut SourceFd(&old.fd()));
        if let Ok(port) = PortId::try_from(p) {
            self.pipeline.forget_learned(port);
        }
        // The port's counters start again for the next interface in the slot; what it
        // received stays counted, so received = actions + passed + drops holds.
        self.local.closed_rx_packets += self.local.ports[p][0];
        self.local.ports[p] = [0; 4];
        let n = old.close_and_reclaim(&mut self.umem);
        log::info!("worker {id}: port {p} closed; {n} frames taken back from its rings");
    }

    /// Room for `n` port slots.
    fn grow(&mut self, n: usize) {
        if n <= self.sockets.len() {
            return;
        }
        self.sockets.resize_with(n, || None);
        self.local.ports.resize(n, [0; 4]);
        self.xsk_base.resize(n, XdpStatistics::default());
        self.xsk_last.resize(n, XdpStatistics::default());
        self.state.tx_stalled.resize(n, false);
        self.state.fill_target.resize(n, MIN_FILL);
        self.state.rx_recent.resize(n, false);
        self.state.last_rx.resize(n, 0);
        self.state.tx.set_ports(n);
    }

    /// Take back the frames of retired sockets whose device has gone since.
    fn reclaim_retired(&mut self) {
        for s in std::mem::take(&mut self.retired) {
            match s.reclaim_dead(&mut self.umem) {
                Ok(n) => log::info!(
                    "worker {}: {n} frames taken back from a replaced socket whose device is now gone",
                    self.shared.id
                ),
                Err(StillBound(s)) => self.retired.push(*s),
            }
        }
    }

    /// On stop: let the kernel finish what is on the TX rings, take back completions, and
    /// prove that every UMEM frame is in exactly one place (free list, fill, RX, TX or
    /// completion ring). A mismatch means a frame leaked and is logged as an error.
    fn drain_and_account(&mut self) {
        self.reclaim_retired();
        // A frame can leave the TX ring before its completion is posted: wait for
        // completions, not just for an empty ring (bounded: a dead device keeps frames).
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let mut outstanding = 0;
            let mut progressed = 0;
            for s in self.sockets.iter_mut().flatten() {
                if s.tx_queued() > 0 {
                    let _ = s.kick_tx();
                }
                progressed += s.complete(&mut self.umem, usize::MAX);
                outstanding += s.tx_outstanding();
            }
            if outstanding == 0 || Instant::now() >= deadline {
                break;
            }
            if progressed == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let sockets: Vec<&XskSocket> = self.sockets.iter().flatten().chain(&self.retired).collect();
        match self.umem.check_accounting(&sockets, 0) {
            Ok(()) => log::info!(
                "worker {} stopped; frame accounting ok: {}",
                self.shared.id,
                self.umem.accounting(&sockets, 0)
            ),
            Err(e) => log::error!(
                "worker {} stopped; frame accounting MISMATCH (leaked frames): {e}",
                self.shared.id
            ),
        }
    }

    fn publish(&self, generation: u64) {
        self.shared.publish(self.pipeline.counters(), &self.local);
        let in_use = u64::from(self.umem.frame_count()) - self.umem.free_frames() as u64;
        self.shared.umem_in_use.store(in_use, Relaxed);
        self.shared.generation.store(generation, Relaxed);
        self.shared.heartbeat_ms.store(now_ms(), Relaxed);
    }

    fn publish_xdp_stats(&mut self) {
        for (p, (s, ps)) in self
            .sockets
            .iter()
            .zip(self.shared.ports.iter())
            .enumerate()
        {
            let Some(s) = s else { continue };
            if let Ok(now) = s.statistics() {
                self.xsk_last[p] = now;
                let mut st = self.xsk_base[p];
                add_stats(&mut st, &now);
                ps.xdp_rx_dropped.store(st.rx_dropped, Relaxed);
                ps.xdp_rx_invalid_descs.store(st.rx_invalid_descs, Relaxed);
                ps.xdp_tx_invalid_descs.store(st.tx_invalid_descs, Relaxed);
                ps.xdp_rx_ring_full.store(st.rx_ring_full, Relaxed);
                ps.xdp_rx_fill_ring_empty_descs
                    .store(st.rx_fill_ring_empty_descs, Relaxed);
                ps.xdp_tx_ring_empty_descs
                    .store(st.tx_ring_empty_descs, Relaxed);
            }
        }
    }
}

fn add_stats(to: &mut XdpStatistics, s: &XdpStatistics) {
    to.rx_dropped += s.rx_dropped;
    to.rx_invalid_descs += s.rx_invalid_descs;
    to.tx_invalid_descs += s.tx_invalid_descs;
    to.rx_ring_full += s.rx_ring_full;
    to.rx_fill_ring_empty_descs += s.rx_fill_ring_empty_descs;
    to.tx_ring_empty_descs += s.tx_ring_empty_descs;
}

#[cfg(test)]
mod tests {
    //! One worker step at a time on fake sockets (`xsk::testing`): the test plays the
    //! kernel side of every ring.

    use std::net::Ipv4Addr;

    use etherparse::PacketBuilder;
    use pipeline::{Action, DropReason};
    use route::{LocalNode, Mode, PortRole, SnapshotBuilder};
    use xsk::if_xdp::XDP_PKT_CONTD;
    use xsk::testing::{fake_socket, FakeKernel};
    use xsk::UmemConfig;

    use super::*;

    const ETH0: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 1];
    const LXC0: [u8; 6] = [0xfe, 0xee, 0, 0, 1, 1];
    const LXC1: [u8; 6] = [0xfe, 0xee, 0, 0, 1, 2];
    const POD1_MAC: [u8; 6] = [0x0e, 0, 10, 0, 1, 2];
    const POD2_MAC: [u8; 6] = [0x0e, 0, 10, 0, 1, 3];
    const POD1: [u8; 4] = [10, 0, 1, 2];
    const POD2: [u8; 4] = [10, 0, 1, 3];

    fn snapshot() -> Snapshot {
        snapshot_with_mtu(1450, 1450)
    }

    /// [`snapshot`] with these MTUs on lxc0 and lxc1.
    fn snapshot_with_mtu(lxc0: u16, lxc1: u16) -> Snapshot {
        let local = LocalNode {
            name: "node-a".into(),
            ip: Ipv4Addr::new(198, 18, 0, 1),
            pod_cidr: "10.0.1.0/24".parse().unwrap(),
            cluster_cidr: "10.0.0.0/16".parse().unwrap(),
            gateway: Ipv4Addr::new(169, 254, 1, 1),
            mode: Mode::Tunnel,
            vni: 1,
            vxlan_port: 8472,
            uplink: 0,
        };
        let mut b = SnapshotBuilder::new(1, local);
        b.port("eth0", PortRole::Uplink, ETH0, 1500);
        b.port("lxc0", PortRole::Pod, LXC0, lxc0);
        b.port("lxc1", PortRole::Pod, LXC1, lxc1);
        b.endpoint(Ipv4Addr::from(POD1), 1, Some(POD1_MAC));
        b.endpoint(Ipv4Addr::from(POD2), 2, Some(POD2_MAC));
        b.build().unwrap()
    }

    /// A UDP frame from pod 1 to pod 2 carrying `tag`.
    fn pod1_to_pod2(tag: u8) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(POD1_MAC, LXC0)
            .ipv4(POD1, POD2, 64)
            .udp(40000, 5201)
            .write(&mut out, &[tag; 32])
            .unwrap();
        out
    }

    /// A worker with three fake ports (eth0, lxc0, lxc1) on a 64-frame UMEM whose TX
    /// rings hold `tx_size` frames; returns it and the kernel side of each port.
    fn worker(tx_size: u32) -> (Worker, Vec<FakeKernel>) {
        worker_with(tx_size, xsk::MultiBuffer::Off)
    }

    /// [`worker`] whose sockets are multi-buffer or not.
    fn worker_with(tx_size: u32, multi_buffer: xsk::MultiBuffer) -> (Worker, Vec<FakeKernel>) {
        let cfg = UmemConfig {
            frame_count: 64,
            frame_size: 2048,
            headroom: 0,
            fill_size: 16,
            comp_size: 16,
            rx_size: 16,
            tx_size,
            tx_metadata: xsk::TxMetadata::Off,
            multi_buffer,
        };
        let umem = Umem::new(&cfg).unwrap();
        let (sockets, kernels): (Vec<_>, Vec<_>) =
            (0..3).map(|_| fake_socket(&umem, true, 0)).unzip();
        let shared = Arc::new(WorkerShared::new(0, None, 3));
        (Worker::new(umem, sockets, shared).unwrap(), kernels)
    }

    fn accounting_ok(w: &Worker) {
        let socks: Vec<&XskSocket> = w.sockets.iter().flatten().chain(&w.retired).collect();
        w.umem.check_accounting(&socks, 0).unwrap();
    }

    #[test]
    fn a_frame_is_forwarded_rewritten_and_counted_once() {
        let (mut w, mut k) = worker(8);
        let snap = snapshot();
        w.poll_once(&snap); // fills the fill rings
        k[1].receive(&mut w.umem, &pod1_to_pod2(7)).unwrap();
        assert_eq!(w.poll_once(&snap), 1);
        let sent = k[2].transmit_with_data(&w.umem, 16);
        assert_eq!(sent.len(), 1);
        let f = &sent[0].1;
        assert_eq!((&f[..6], &f[6..12]), (&POD2_MAC[..], &LXC1[..]));
        assert_eq!(f[22], 63, "TTL - 1");
        let c = w.pipeline.counters();
        assert_eq!(c.action(Action::DeliveredLocal), 1);
        assert_eq!(c.frames(), 1);
        assert_eq!(w.local.ports[1][0], 1, "rx on lxc0");
        assert_eq!(w.local.ports[2][2], 1, "tx on lxc1");
        assert_eq!(w.local.ports[2][3], sent[0].0.len as u64);
        w.poll_once(&snap); // takes the completion back
        accounting_ok(&w);
    }

    /// A UDP frame from pod 1 to pod 2 with `len` bytes of payload, DF set or not, its
    /// checksum left partial as a pod with checksum offload sends it.
    fn big_partial_udp(len: usize, df: bool) -> Vec<u8> {
        let payload: Vec<u8> = (0..len)
            .map(|i| u8::try_from((i * 31 + i / 7) % 256).unwrap())
            .collect();
        let mut ip =
            etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::UDP, POD1, POD2).unwrap();
        ip.dont_fragment = df;
        let mut out = Vec::new();
        PacketBuilder::ethernet2(POD1_MAC, LXC0)
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .udp(40000, 5201)
            .write(&mut out, &payload)
            .unwrap();
        let udp_len = u16::try_from(len + 8).unwrap();
        let partial = wire::checksum::partial_pseudo_header(
            u32::from_be_bytes(POD1),
            u32::from_be_bytes(POD2),
            17,
            udp_len,
        );
        out[40..42].copy_from_slice(&partial.to_be_bytes());
        out
    }

    /// Payload bytes in each buffer of a received chain (a 2048-byte frame less the
    /// 256 bytes of XDP headroom).
    const PIECE: usize = 2048 - 256;

    #[test]
    fn a_chained_frame_leaves_whole_with_its_checksum_completed() {
        let (mut w, mut k) = worker_with(8, xsk::MultiBuffer::Auto);
        assert!(w.multi_buffer());
        let snap = snapshot_with_mtu(9000, 9000);
        w.poll_once(&snap);
        let frame = big_partial_udp(5000, true);
        let rx = k[1].receive_chain(&mut w.umem, &frame, PIECE).unwrap();
        assert_eq!(rx.len(), 3);
        assert_eq!(w.poll_once(&snap), 3, "three descriptors");
        let sent = k[2].transmit_frames(&w.umem, 16);
        assert_eq!(sent.len(), 1, "one frame");
        let (descs, f) = &sent[0];
        let opts: Vec<u32> = descs.iter().map(|d| d.options).collect();
        assert_eq!(opts, [XDP_PKT_CONTD, XDP_PKT_CONTD, 0]);
        assert_eq!(f.len(), frame.len());
        assert_eq!((&f[..6], &f[6..12]), (&POD2_MAC[..], &LXC1[..]));
        assert_eq!(f[22], 63, "TTL - 1");
        assert_eq!(&f[42..], &frame[42..], "payload untouched");
        let udp = wire::udp::UdpPacket::new_checked(&f[34..]).unwrap();
        assert!(
            udp.verify_checksum(u32::from_be_bytes(POD1), u32::from_be_bytes(POD2)),
            "the checksum is complete over all three buffers"
        );
        let c = w.pipeline.counters();
        assert_eq!(c.action(Action::DeliveredLocal), 1);
        assert_eq!(c.frames(), 1);
        assert_eq!(c.csum_completed, 1);
        assert_eq!(w.local.ports[1][0], 1, "rx frames: one chain is one");
        assert_eq!(
            w.local.ports[1][1],
            frame.len() as u64,
            "rx bytes: all of it"
        );
        assert_eq!(
            w.local.ports[2][3],
            frame.len() as u64,
            "tx bytes: all of it"
        );
        w.poll_once(&snap);
        accounting_ok(&w);
    }

    #[test]
    fn a_chained_frame_too_big_for_its_port_becomes_an_icmp_error_alone() {
        let (mut w, mut k) = worker_with(8, xsk::MultiBuffer::Auto);
        let snap = snapshot_with_mtu(9000, 1500);
        w.poll_once(&snap);
        let frame = big_partial_udp(5000, true);
        k[1].receive_chain(&mut w.umem, &frame, PIECE).unwrap();
        w.poll_once(&snap);
        let back = k[1].transmit_frames(&w.umem, 16);
        assert_eq!(back.len(), 1);
        let (descs, f) = &back[0];
        assert_eq!(descs.len(), 1, "the error is one buffer");
        assert_eq!((f[34], f[35]), (3, 4), "ICMP fragmentation needed");
        assert_eq!(u16::from_be_bytes([f[40], f[41]]), 1500, "next-hop MTU");
        assert_eq!(w.pipeline.counters().action(Action::IcmpFragNeeded), 1);
        assert!(k[2].transmit(16).is_empty());
        // No buffer of the chain is left with the worker (the other two were freed).
        w.poll_once(&snap);
        accounting_ok(&w);
    }

    #[test]
    fn a_full_tx_ring_drops_the_rest_as_tx_ring_full_only() {
        let (mut w, mut k) = worker(8);
        let snap = snapshot();
        w.poll_once(&snap);
        for i in 0..12 {
            k[1].receive(&mut w.umem, &pod1_to_pod2(i)).unwrap();
        }
        assert_eq!(w.poll_once(&snap), 12);
        let c = w.pipeline.counters();
        assert_eq!(c.action(Action::DeliveredLocal), 8);
        assert_eq!(c.dropped(DropReason::TxRingFull), 4);
        assert_eq!(c.frames(), 12, "every received frame counted exactly once");
        assert_eq!(w.local.ports[2][2], 8);
        accounting_ok(&w);
        // The frames that fit are the first eight, in order.
        let sent = k[2].transmit_with_data(&w.umem, 16);
        let tags: Vec<u8> = sent.iter().map(|(_, f)| f[42]).collect();
        assert_eq!(tags, (0..8).collect::<Vec<u8>>());
        w.poll_once(&snap);
        accounting_ok(&w);
    }

    #[test]
    fn a_stalled_tx_ring_is_not_kicked_on_every_iteration() {
        let (mut w, mut k) = worker(8);
        let snap = snapshot();
        w.poll_once(&snap);
        k[2].tx.set_need_wakeup(true);
        k[1].receive(&mut w.umem, &pod1_to_pod2(1)).unwrap();
        w.poll_once(&snap);
        let kicks = w.sockets[2].as_ref().unwrap().wakeup_counters().tx_kicks;
        assert!(kicks >= 1, "a ring that asks is kicked");
        assert!(w.state.tx_stalled[2], "the kick moved nothing");
        for _ in 0..10 {
            w.poll_once(&snap);
        }
        assert_eq!(
            w.sockets[2].as_ref().unwrap().wakeup_counters().tx_kicks,
            kicks,
            "no kick per iteration"
        );
        // New frames for it: kicked again.
        k[1].receive(&mut w.umem, &pod1_to_pod2(2)).unwrap();
        w.poll_once(&snap);
        assert!(w.sockets[2].as_ref().unwrap().wakeup_counters().tx_kicks > kicks);
        // The kernel sends: not stalled any more, and every frame accounted.
        assert_eq!(k[2].transmit(16).len(), 2);
        w.poll_once(&snap);
        accounting_ok(&w);
    }

    #[test]
    fn a_replaced_socket_gives_its_frames_back() {
        let (mut w, mut k) = worker(8);
        let snap = snapshot();
        w.poll_once(&snap);
        // Two frames left on lxc1's TX ring that its (now gone) device never sent.
        k[1].receive(&mut w.umem, &pod1_to_pod2(1)).unwrap();
        k[1].receive(&mut w.umem, &pod1_to_pod2(2)).unwrap();
        w.poll_once(&snap);
        assert_eq!(w.sockets[2].as_ref().unwrap().tx_queued(), 2);
        let free_before = w.umem.free_frames();
        let (fresh, mut kfresh) = fake_socket(&w.umem, true, 0);
        w.swap_socket(2, fresh, 16);
        // The old socket's 16 fill-ring frames and 2 TX frames are back; 16 went onto
        // the new socket's fill ring.
        assert_eq!(w.umem.free_frames(), free_before + 2);
        assert!(w.retired.is_empty());
        accounting_ok(&w);
        // Forwarding goes on through the new socket.
        k[1].receive(&mut w.umem, &pod1_to_pod2(3)).unwrap();
        w.poll_once(&snap);
        let sent = kfresh.transmit_with_data(&w.umem, 16);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1[42], 3);
        assert_eq!(w.pipeline.counters().frames(), 3);
        w.poll_once(&snap);
        accounting_ok(&w);
    }
}
