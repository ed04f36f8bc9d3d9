//! Per-worker counters, published for the scrape side.
//!
//! A worker counts into plain integers it alone owns (the pipeline's `Counters` and its
//! own [`LocalStats`]) and copies them into its [`WorkerShared`] with relaxed stores at
//! most once a millisecond (it looks at the clock every 64 loop iterations and on every
//! idle one) and before it sleeps: no atomic read-modify-write per packet, and each
//! worker writes only its own, cache-line-aligned, counters. The scrape side sums workers.
//! Every value only ever grows, so a scrape never sees a counter go backwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use pipeline::{Action, DropReason};

/// Counters of one port (interface) on one worker.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct PortShared {
    /// Frames received from the AF_XDP socket.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Frames handed to the TX ring.
    pub tx_packets: AtomicU64,
    /// Bytes handed to the TX ring.
    pub tx_bytes: AtomicU64,
    /// Kernel socket statistics (XDP_STATISTICS), refreshed about once a second.
    pub xdp_rx_dropped: AtomicU64,
    /// See [`xsk::XdpStatistics`].
    pub xdp_rx_invalid_descs: AtomicU64,
    /// See [`xsk::XdpStatistics`].
    pub xdp_tx_invalid_descs: AtomicU64,
    /// See [`xsk::XdpStatistics`].
    pub xdp_rx_ring_full: AtomicU64,
    /// See [`xsk::XdpStatistics`].
    pub xdp_rx_fill_ring_empty_descs: AtomicU64,
    /// See [`xsk::XdpStatistics`].
    pub xdp_tx_ring_empty_descs: AtomicU64,
}

impl PortShared {
    /// Zero every counter: a port slot given to a new interface (its series is new).
    pub fn reset(&self) {
        for c in [
            &self.rx_packets,
            &self.rx_bytes,
            &self.tx_packets,
            &self.tx_bytes,
            &self.xdp_rx_dropped,
            &self.xdp_rx_invalid_descs,
            &self.xdp_tx_invalid_descs,
            &self.xdp_rx_ring_full,
            &self.xdp_rx_fill_ring_empty_descs,
            &self.xdp_tx_ring_empty_descs,
        ] {
            c.store(0, Relaxed);
        }
    }
}

/// Plain (non-atomic) counters a worker keeps for itself.
#[derive(Debug, Default, Clone)]
pub struct LocalStats {
    /// Per port: rx packets, rx bytes, tx packets, tx bytes.
    pub ports: Vec<[u64; 4]>,
    /// Loop iterations that moved at least one frame.
    pub busy_polls: u64,
    /// Loop iterations that found nothing to do.
    pub idle_polls: u64,
    /// Times the worker went to sleep in epoll.
    pub sleeps: u64,
    /// TX wakeup syscalls (`sendto`).
    pub tx_wakeups: u64,
    /// RX / fill-ring wakeup syscalls.
    pub rx_wakeups: u64,
    /// RX batches processed.
    pub batches: u64,
    /// Frames received on ports whose socket was closed since (removed endpoints).
    pub closed_rx_packets: u64,
}

/// What one worker publishes (aligned so two workers' counters never share a line).
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerShared {
    /// Worker number.
    pub id: usize,
    /// The CPU it is pinned to.
    pub cpu: Option<usize>,
    /// Milliseconds since the epoch at the worker's last loop iteration.
    pub heartbeat_ms: AtomicU64,
    /// Pipeline actions, indexed by `Action as usize`.
    pub actions: Vec<AtomicU64>,
    /// Drops, indexed by `DropReason as usize`.
    pub drops: Vec<AtomicU64>,
    /// Frames handed back as not podfwd's (see docs/metrics.md).
    pub passed: AtomicU64,
    /// Partial TCP/UDP checksums completed in software.
    pub csum_completed: AtomicU64,
    /// Partial TCP/UDP checksums left to the kernel's checksum offload (TX metadata).
    pub csum_offloaded: AtomicU64,
    /// Whether the worker's transmits ask for checksum offload (set by the worker when
    /// its sockets change).
    pub tx_csum_offload: AtomicBool,
    /// Its sockets are multi-buffer (frames larger than one UMEM frame as descriptor
    /// chains).
    pub multi_buffer: AtomicBool,
    /// See [`LocalStats`].
    pub busy_polls: AtomicU64,
    /// See [`LocalStats`].
    pub idle_polls: AtomicU64,
    /// See [`LocalStats`].
    pub sleeps: AtomicU64,
    /// See [`LocalStats`].
    pub tx_wakeups: AtomicU64,
    /// See [`LocalStats`].
    pub rx_wakeups: AtomicU64,
    /// See [`LocalStats`].
    pub batches: AtomicU64,
    /// See [`LocalStats`].
    pub closed_rx_packets: AtomicU64,
    /// UMEM frames not on the free list (in rings, in the kernel, in flight).
    pub umem_in_use: AtomicU64,
    /// UMEM size in frames.
    pub umem_frames: AtomicU64,
    /// Route snapshot generation the worker last used.
    pub generation: AtomicU64,
    /// Per port.
    pub ports: Vec<PortShared>,
    /// Why the worker stopped on its own (it panicked), if it did.
    failure: Mutex<Option<String>>,
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl WorkerShared {
    /// Zeroed counters for a worker with `ports` ports.
    #[must_use]
    pub fn new(id: usize, cpu: Option<usize>, ports: usize) -> WorkerShared {
        WorkerShared {
            id,
            cpu,
            heartbeat_ms: AtomicU64::new(now_ms()),
            actions: (0..Action::ALL.len()).map(|_| AtomicU64::new(0)).collect(),
            drops: (0..DropReason::ALL.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            passed: AtomicU64::new(0),
            csum_completed: AtomicU64::new(0),
            csum_offloaded: AtomicU64::new(0),
            tx_csum_offload: AtomicBool::new(false),
            multi_buffer: AtomicBool::new(false),
            busy_polls: AtomicU64::new(0),
            idle_polls: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            tx_wakeups: AtomicU64::new(0),
            rx_wakeups: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            closed_rx_packets: AtomicU64::new(0),
            umem_in_use: AtomicU64::new(0),
            umem_frames: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            ports: (0..ports).map(|_| PortShared::default()).collect(),
            failure: Mutex::new(None),
        }
    }

    /// Mark the worker as stopped on its own (a panic), with why; /healthz fails from now.
    pub fn fail(&self, why: &str) {
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.to_owned());
    }

    /// Why the worker stopped on its own, if it did.
    #[must_use]
    pub fn failed(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Publish the worker's own counters (called by the owning worker only).
    pub fn publish(&self, pc: &pipeline::Counters, local: &LocalStats) {
        for (dst, src) in self.actions.iter().zip(pc.actions.iter()) {
            dst.store(*src, Relaxed);
        }
        for (dst, src) in self.drops.iter().zip(pc.drops.iter()) {
            dst.store(*src, Relaxed);
        }
        self.passed.store(pc.passed, Relaxed);
        self.csum_completed.store(pc.csum_completed, Relaxed);
        self.csum_offloaded.store(pc.csum_offloaded, Relaxed);
        self.busy_polls.store(local.busy_polls, Relaxed);
        self.idle_polls.store(local.idle_polls, Relaxed);
        self.sleeps.store(local.sleeps, Relaxed);
        self.tx_wakeups.store(local.tx_wakeups, Relaxed);
        self.rx_wakeups.store(local.rx_wakeups, Relaxed);
        self.batches.store(local.batches, Relaxed);
        self.closed_rx_packets
            .store(local.closed_rx_packets, Relaxed);
        for (dst, src) in self.ports.iter().zip(local.ports.iter()) {
            dst.rx_packets.store(src[0], Relaxed);
            dst.rx_bytes.store(src[1], Relaxed);
            dst.tx_packets.store(src[2], Relaxed);
            dst.tx_bytes.store(src[3], Relaxed);
        }
    }
}
