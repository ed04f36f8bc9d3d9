//! The worker loop: one pinned thread, one UMEM, one AF_XDP socket per port.
//!
//! Every iteration: recycle completions into the free list, top up each fill ring,
//! receive a batch from each RX ring, decide every frame with the pipeline (rewriting
//! it in place), move each descriptor to its egress TX ring (or back to the free list),
//! and kick TX only when the ring asks for it. After traffic the worker keeps polling the
//! rings for a short spin window, yielding the CPU between polls, then sleeps in epoll on
//! its sockets' fds.
//!
//! The control thread can ask a running worker to replace one port's socket
//! ([`ReplaceSocket`], when an interface was re-created): the worker owns the UMEM, so it
//! creates the new socket itself, swaps it in, takes back the frames left on the old
//! one's rings ([`XskSocket::reclaim_dead`]) and answers with the new fd for the XSKMAP.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use pipeline::{DropReason, Frame, Pipeline, Verdict};
use route::{PortId, Snapshot};
use xsk::{SocketConfig, StillBound, Umem, XdpDesc, XdpStatistics, XskSocket};

use crate::stats::{now_ms, LocalStats, WorkerShared};

/// Frames taken from one RX ring per iteration.
pub const RX_BATCH: usize = 256;
/// Frames moved into a fill ring per iteration at most.
const FILL_BATCH: usize = 512;
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

/// A request from the control thread: replace the socket of `port` (its interface was
/// re-created) with one bound by `config`, with the same TX budget and initial fill as
/// at start-up. The reply carries the new socket's fd (to register in the XSKMAP) or
/// why it could not be created; the old socket stays in place then.
#[derive(Debug)]
pub struct ReplaceSocket {
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

/// One worker: its UMEM and its sockets, one per port, in [`PortId`] order.
#[derive(Debug)]
pub struct Worker {
    /// Sockets first: they must be dropped before the UMEM they use.
    sockets: Vec<XskSocket>,
    /// Replaced sockets whose device still exists (renamed away rather than deleted):
    /// their frames stay the kernel's until it is gone (retried every second).
    retired: Vec<XskSocket>,
    umem: Umem,
    shared: Arc<WorkerShared>,
    requests: Option<mpsc::Receiver<ReplaceSocket>>,
    /// Per port: kernel statistics of the sockets replaced so far, and the last read of
    /// the current one, so that the published counters never go backwards.
    xsk_base: Vec<XdpStatistics>,
    xsk_last: Vec<XdpStatistics>,
}

impl Worker {
    /// A worker over already-bound sockets.
    #[must_use]
    pub fn new(umem: Umem, sockets: Vec<XskSocket>, shared: Arc<WorkerShared>) -> Worker {
        shared
            .umem_frames
            .store(u64::from(umem.frame_count()), Relaxed);
        let n = sockets.len();
        Worker {
            sockets,
            retired: Vec::new(),
            umem,
            shared,
            requests: None,
            xsk_base: vec![XdpStatistics::default(); n],
            xsk_last: vec![XdpStatistics::default(); n],
        }
    }

    /// Take [`ReplaceSocket`] requests from `rx` while running.
    #[must_use]
    pub fn with_requests(mut self, rx: mpsc::Receiver<ReplaceSocket>) -> Worker {
        self.requests = Some(rx);
        self
    }

    /// Run until `stop` is set.
    pub fn run(mut self, snap: &ArcSwap<Snapshot>, stop: &AtomicBool) {
        if let Some(cpu) = self.shared.cpu {
            if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                log::info!("worker {} pinned to cpu {cpu}", self.shared.id);
            } else {
                log::warn!("worker {}: could not pin to cpu {cpu}", self.shared.id);
            }
        }
        let mut poll = match Poll::new() {
            Ok(p) => p,
            Err(e) => {
                log::error!("worker {}: epoll: {e}", self.shared.id);
                return;
            }
        };
        for (i, s) in self.sockets.iter().enumerate() {
            let fd = s.fd();
            if let Err(e) =
                poll.registry()
                    .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)
            {
                log::error!("worker {}: epoll register: {e}", self.shared.id);
                return;
            }
        }
        let mut events = Events::with_capacity(64);
        let nports = self.sockets.len();
        let mut pipeline = Pipeline::new();
        let mut local = LocalStats {
            ports: vec![[0; 4]; nports],
            ..LocalStats::default()
        };
        let mut rx: Vec<XdpDesc> = Vec::with_capacity(RX_BATCH);
        let mut txq: Vec<Vec<XdpDesc>> = (0..nports)
            .map(|_| Vec::with_capacity(RX_BATCH * 4))
            .collect();
        let spin = spin_window();
        let mut idle_since: Option<Instant> = None;
        // Per socket: the last TX kick moved nothing (see the TX loop).
        let mut tx_stalled: Vec<bool> = vec![false; self.sockets.len()];
        let mut iterations: u64 = 0;
        let mut last_publish = Instant::now();
        let mut last_xdp_stats = last_publish;

        while !stop.load(Relaxed) {
            let guard = snap.load();
            let snapshot: &Snapshot = &guard;
            let mut work = 0usize;
            for s in &mut self.sockets {
                s.complete(&mut self.umem, 1024);
            }
            for p in 0..nports {
                let sock = &mut self.sockets[p];
                if sock.fill(&mut self.umem, FILL_BATCH) > 0 && sock.fill_needs_wakeup() {
                    local.rx_wakeups += 1;
                    let _ = sock.wakeup_rx();
                }
                rx.clear();
                let got = sock.rx_batch(&mut self.umem, &mut rx, RX_BATCH);
                if got == 0 {
                    continue;
                }
                work += got;
                local.batches += 1;
                #[allow(clippy::cast_possible_truncation)] // ports are u16 by construction
                let rx_port = p as PortId;
                for d in &rx {
                    local.ports[p][0] += 1;
                    local.ports[p][1] += u64::from(d.len);
                    let (chunk, off) = self.umem.chunk_mut(d.addr);
                    let base = d.addr - off as u64;
                    let mut frame = Frame {
                        buf: chunk,
                        off,
                        len: d.len as usize,
                    };
                    match pipeline.process(snapshot, rx_port, &mut frame) {
                        Verdict::Tx { port, .. } if usize::from(port) < nports => {
                            #[allow(clippy::cast_possible_truncation)] // within one frame
                            txq[usize::from(port)].push(XdpDesc {
                                addr: base + frame.off as u64,
                                len: frame.len as u32,
                                options: 0,
                            });
                        }
                        _ => self.umem.free_frame(d.addr),
                    }
                }
            }
            for (p, q) in txq.iter_mut().enumerate() {
                let sock = &mut self.sockets[p];
                let mut pushed = 0;
                if !q.is_empty() {
                    pushed = sock.tx_push(&mut self.umem, q);
                    for d in &q[..pushed] {
                        local.ports[p][2] += 1;
                        local.ports[p][3] += u64::from(d.len);
                    }
                    for d in &q[pushed..] {
                        pipeline.record_drop(DropReason::TxRingFull);
                        self.umem.free_frame(d.addr);
                    }
                    q.clear();
                }
                // A ring whose last kick moved nothing (its device is gone or refuses to
                // send) is kicked again only when new frames go onto it or after a sleep,
                // not on every loop iteration.
                if tx_stalled[p] && pushed == 0 {
                    continue;
                }
                let before = sock.tx_queued();
                let mut kicks = 0;
                while sock.tx_queued() > 0 && sock.tx_needs_wakeup() && kicks < MAX_KICKS {
                    local.tx_wakeups += 1;
                    kicks += 1;
                    if sock.kick_tx().is_err() {
                        break;
                    }
                    sock.complete(&mut self.umem, 1024);
                }
                tx_stalled[p] = before > 0 && sock.tx_queued() >= before;
            }

            // Reading the clock costs more than a counter: look at it every 64 iterations,
            // and on every idle one (which is about to spin or sleep anyway).
            iterations = iterations.wrapping_add(1);
            let now = if work == 0 || iterations % 64 == 0 {
                Some(Instant::now())
            } else {
                None
            };
            if let Some(now) = now {
                if now.duration_since(last_publish) >= PUBLISH_EVERY {
                    self.publish(&pipeline, &local, snapshot.generation);
                    last_publish = now;
                }
                if now.duration_since(last_xdp_stats) >= Duration::from_secs(1) {
                    self.publish_xdp_stats();
                    self.reclaim_retired();
                    last_xdp_stats = now;
                }
                while let Some(req) = self.requests.as_ref().and_then(|r| r.try_recv().ok()) {
                    let res = self.replace_socket(&poll, &mut pipeline, &req);
                    let _ = req.reply.send(res);
                }
            }
            if work > 0 {
                local.busy_polls += 1;
                idle_since = None;
            } else if let Some(now) = now {
                local.idle_polls += 1;
                let since = *idle_since.get_or_insert(now);
                // Frames still on a TX ring need another kick, not a sleep; but a stalled
                // ring (a device that is gone or refuses to send) must not keep the
                // worker awake: its frames stay accounted on that ring (reclaimed if the
                // interface comes back).
                let tx_pending = self
                    .sockets
                    .iter()
                    .zip(&tx_stalled)
                    .any(|(s, &stalled)| s.tx_queued() > 0 && !stalled);
                let waited = now.duration_since(since);
                if waited >= spin && (!tx_pending || waited >= SLEEP) {
                    self.publish(&pipeline, &local, snapshot.generation);
                    last_publish = now;
                    local.sleeps += 1;
                    drop(guard);
                    let any_queued = self.sockets.iter().any(|s| s.tx_queued() > 0);
                    let timeout = if tx_pending {
                        Duration::from_millis(1)
                    } else if any_queued {
                        // Retry a ring that did not move now and then, cheaply.
                        Duration::from_millis(10)
                    } else {
                        SLEEP
                    };
                    let _ = poll.poll(&mut events, Some(timeout));
                    // After a sleep every ring gets one more kick.
                    tx_stalled.fill(false);
                    idle_since = None;
                } else {
                    std::thread::yield_now();
                }
            }
        }
        self.publish(&pipeline, &local, snap.load().generation);
        self.publish_xdp_stats();
        self.drain_and_account();
    }

    /// Replace the socket of `req.port` by a new one bound by `req.config` (see
    /// [`ReplaceSocket`]); returns the new fd. A repeated request for the ifindex the
    /// port already has (the control thread retrying after a timeout) returns the
    /// current fd.
    fn replace_socket(
        &mut self,
        poll: &Poll,
        pipeline: &mut Pipeline,
        req: &ReplaceSocket,
    ) -> Result<RawFd, String> {
        let id = self.shared.id;
        let p = req.port;
        let Some(old) = self.sockets.get(p) else {
            return Err(format!("worker {id}: no port {p}"));
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
        let new_fd = s.fd();
        let reg = poll.registry();
        let _ = reg.deregister(&mut SourceFd(&old_fd));
        if let Err(e) = reg.register(&mut SourceFd(&new_fd), Token(p), Interest::READABLE) {
            // The worker still polls the rings at least every 100 ms.
            log::warn!("worker {id}: epoll register of the new socket for port {p}: {e}");
        }
        // Keep the published kernel counters monotonic across the swap.
        let st = self.sockets[p].statistics().unwrap_or(self.xsk_last[p]);
        add_stats(&mut self.xsk_base[p], &st);
        self.xsk_last[p] = XdpStatistics::default();
        let old = std::mem::replace(&mut self.sockets[p], s);
        #[allow(clippy::cast_possible_truncation)] // ports are u16 by construction
        pipeline.forget_learned(p as PortId);
        match old.reclaim_dead(&mut self.umem) {
            Ok(n) => log::info!(
                "worker {id}: port {p} socket replaced (ifindex {old_ifindex} -> {}, fd {new_fd}); {n} frames taken back from the old socket's rings",
                req.config.ifindex
            ),
            Err(StillBound(s)) => {
                log::warn!(
                    "worker {id}: port {p} socket replaced (ifindex {old_ifindex} -> {}, fd {new_fd}), but the old one is still bound (its device still exists): its frames are kept until the device is gone",
                    req.config.ifindex
                );
                self.retired.push(*s);
            }
        }
        // RX frames for the kernel before the control thread registers the socket in
        // the XSKMAP (as at start-up); after the reclaim, so a small UMEM is not short.
        self.sockets[p].fill(&mut self.umem, req.fill);
        Ok(new_fd)
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
            for s in &mut self.sockets {
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
        let sockets: Vec<&XskSocket> = self.sockets.iter().chain(&self.retired).collect();
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

    fn publish(&self, pipeline: &Pipeline, local: &LocalStats, generation: u64) {
        self.shared.publish(pipeline.counters(), local);
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
