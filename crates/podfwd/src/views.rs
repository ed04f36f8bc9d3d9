//! What the control thread shows the read side (HTTP, /metrics, `podfwd status`).
//!
//! The control thread owns a [`StatusView`] behind a mutex and refreshes it; the HTTP
//! thread reads it. [`Totals`] is the one place where the per-worker counters are summed,
//! at read time, for both /metrics and /status. This module depends on nothing but the
//! counters (`stats`), so control → views ← http/metrics/status has no cycle.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};

use pipeline::{Action, DropReason};
use route::Snapshot;
use serde::Serialize;
use wire::ethernet::fmt_mac;

use crate::stats::{now_ms, PortShared, WorkerShared};

/// A request from the control socket to the control thread.
#[derive(Debug)]
pub enum ControlRequest {
    /// An API request; the answer goes back on the sender.
    Api(podfwd_api::Request, mpsc::Sender<podfwd_api::Response>),
}

/// One remote node as shown by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// Underlay IP.
    pub ip: Ipv4Addr,
    /// PodCIDR.
    pub pod_cidr: String,
    /// The MAC of its first resolved next hop; `None` while no next hop is resolved
    /// (then the node is not ready).
    pub mac: Option<String>,
    /// Every next hop toward it on the uplink (several for a multipath route).
    pub next_hops: Vec<NextHopView>,
    /// How frames to it travel: `vxlan` (tunnel mode; hybrid mode toward a node behind
    /// a router) or `native`.
    pub path: &'static str,
}

/// One next hop of a remote node as shown by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextHopView {
    /// The gateway, or the node's own IP when it is on-link.
    pub via: Ipv4Addr,
    /// Multipath weight (1 for a single-path route).
    pub weight: u16,
    /// Its MAC; `None` while unresolved (it takes no flows then).
    pub mac: Option<String>,
    /// Of the 64 slots that spread flows over the resolved next hops, how many it holds.
    pub slots: usize,
}

impl NodeView {
    /// The remote nodes of a snapshot.
    #[must_use]
    pub fn of(snap: &Snapshot) -> Vec<NodeView> {
        snap.nodes
            .iter()
            .map(|n| NodeView {
                name: n.name.clone(),
                ip: n.ip,
                pod_cidr: n.pod_cidr.to_string(),
                mac: n.hops.resolved().first().map(|h| fmt_mac(&h.mac)),
                next_hops: n
                    .hops
                    .all()
                    .iter()
                    .enumerate()
                    .map(|(i, h)| NextHopView {
                        via: h.via,
                        weight: h.weight,
                        mac: h.mac.as_ref().map(fmt_mac),
                        slots: n.hops.slots_of(i),
                    })
                    .collect(),
                path: if n.encap { "vxlan" } else { "native" },
            })
            .collect()
    }

    /// The next hops in words, for logs: `MAC via ADDR` each (`missing` for an
    /// unresolved one), `none` without any.
    #[must_use]
    pub fn hops_text(&self) -> String {
        if self.next_hops.is_empty() {
            return "none".into();
        }
        self.next_hops
            .iter()
            .map(|h| {
                let mac = h.mac.as_deref().unwrap_or("missing");
                match self.next_hops.len() {
                    1 => format!("{mac} via {}", h.via),
                    _ => format!("{mac} via {} (weight {})", h.via, h.weight),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One interface as shown by `status`.
#[derive(Debug, Clone, Serialize)]
pub struct PortView {
    /// Name.
    pub name: String,
    /// "uplink" or "pod".
    pub role: &'static str,
    /// Its MAC.
    pub mac: String,
    /// MTU.
    pub mtu: u16,
    /// XDP attach mode obtained ("native" or "generic").
    pub xdp_mode: String,
    /// Pod IP behind it (pod ports).
    pub endpoint: Option<Ipv4Addr>,
    /// Times it was re-created and attached again (new XDP link, new sockets).
    pub recoveries: u64,
    /// A port slot with no interface (its endpoint was removed); not shown.
    #[serde(skip)]
    pub vacant: bool,
}

impl PortView {
    /// The row of a vacant port slot.
    #[must_use]
    pub fn vacant() -> PortView {
        PortView {
            name: String::new(),
            role: "vacant",
            mac: String::new(),
            mtu: 0,
            xdp_mode: String::new(),
            endpoint: None,
            recoveries: 0,
            vacant: true,
        }
    }
}

/// Everything the HTTP side shows; refreshed by the control thread.
#[derive(Debug, Default)]
pub struct StatusView {
    /// This node's name.
    pub node: String,
    /// Mode.
    pub mode: String,
    /// Config file.
    pub config: String,
    /// Ports in port-id order.
    pub ports: Vec<PortView>,
    /// Worker counters.
    pub workers: Vec<Arc<WorkerShared>>,
    /// Published snapshot generation.
    pub generation: u64,
    /// Prefixes in the LPM.
    pub prefixes: usize,
    /// Local endpoints.
    pub endpoints: usize,
    /// Local endpoints whose MAC the kernel's neighbour table has.
    pub endpoints_resolved: usize,
    /// Remote nodes.
    pub nodes: Vec<NodeView>,
    /// Successful reloads.
    pub reloads_ok: u64,
    /// Refused reloads.
    pub reloads_failed: u64,
    /// Last reload error.
    pub last_reload_error: Option<String>,
    /// XDP steering counters.
    pub steering: Vec<(String, u64)>,
    /// Programs attached and sockets bound.
    pub attached: bool,
    /// Start time (ms since epoch).
    pub started_ms: u64,
    /// Interfaces that disappeared, were re-created or are down (checked every second).
    pub iface_problems: Vec<String>,
    /// Remote nodes learned from `routes.table`.
    pub learned_routes: usize,
    /// Routes in `routes.table` ignored (outside the cluster CIDR, or our PodCIDR).
    pub learned_ignored: usize,
}

impl StatusView {
    /// Show the route snapshot `snap` (about to be published).
    pub fn show_routes(&mut self, snap: &Snapshot) {
        self.generation = snap.generation;
        self.prefixes = snap.prefix_count();
        self.endpoints = snap.endpoints.len();
        self.endpoints_resolved = snap.endpoints.iter().filter(|e| e.mac.is_some()).count();
        self.nodes = NodeView::of(snap);
    }

    /// Alive: every worker ran its loop within the last two seconds.
    ///
    /// # Errors
    /// The first stalled (or stopped) worker, in words.
    pub fn healthy(&self) -> Result<(), String> {
        let now = now_ms();
        for w in &self.workers {
            if let Some(why) = w.failed() {
                return Err(format!("worker {} stopped: {why}", w.id));
            }
            let age = now.saturating_sub(w.heartbeat_ms.load(Relaxed));
            if age > 2000 {
                return Err(format!(
                    "worker {} stalled: no heartbeat for {age} ms",
                    w.id
                ));
            }
        }
        Ok(())
    }

    /// Ready: healthy, attached, and every remote node's next hop resolved.
    ///
    /// # Errors
    /// What is not ready, in words.
    pub fn ready(&self) -> Result<(), String> {
        self.healthy()?;
        if !self.attached {
            return Err("XDP programs not attached or sockets not bound".into());
        }
        if !self.iface_problems.is_empty() {
            return Err(self.iface_problems.join("; "));
        }
        let missing: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.mac.is_none())
            .map(|n| n.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "next hop not resolved for node(s) {}",
                missing.join(", ")
            ));
        }
        Ok(())
    }

    /// The workers' counters, read now and summed.
    #[must_use]
    pub fn totals(&self) -> Totals {
        Totals::read(&self.workers, self.ports.len())
    }
}

/// One port's counters (summed over workers, or of one worker).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortTotals {
    /// Frames taken from the RX ring.
    pub rx_packets: u64,
    /// Bytes taken from the RX ring.
    pub rx_bytes: u64,
    /// Frames placed on the TX ring.
    pub tx_packets: u64,
    /// Bytes placed on the TX ring.
    pub tx_bytes: u64,
    /// XDP_STATISTICS `rx_dropped`.
    pub xsk_rx_dropped: u64,
    /// XDP_STATISTICS `rx_invalid_descs`.
    pub xsk_rx_invalid_descs: u64,
    /// XDP_STATISTICS `tx_invalid_descs`.
    pub xsk_tx_invalid_descs: u64,
    /// XDP_STATISTICS `rx_ring_full`.
    pub xsk_rx_ring_full: u64,
    /// XDP_STATISTICS `rx_fill_ring_empty_descs`.
    pub xsk_fill_ring_empty: u64,
    /// XDP_STATISTICS `tx_ring_empty_descs`.
    pub xsk_tx_ring_empty: u64,
}

impl PortTotals {
    fn read(s: &PortShared) -> PortTotals {
        PortTotals {
            rx_packets: s.rx_packets.load(Relaxed),
            rx_bytes: s.rx_bytes.load(Relaxed),
            tx_packets: s.tx_packets.load(Relaxed),
            tx_bytes: s.tx_bytes.load(Relaxed),
            xsk_rx_dropped: s.xdp_rx_dropped.load(Relaxed),
            xsk_rx_invalid_descs: s.xdp_rx_invalid_descs.load(Relaxed),
            xsk_tx_invalid_descs: s.xdp_tx_invalid_descs.load(Relaxed),
            xsk_rx_ring_full: s.xdp_rx_ring_full.load(Relaxed),
            xsk_fill_ring_empty: s.xdp_rx_fill_ring_empty_descs.load(Relaxed),
            xsk_tx_ring_empty: s.xdp_tx_ring_empty_descs.load(Relaxed),
        }
    }

    fn add(&mut self, o: &PortTotals) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.xsk_rx_dropped += o.xsk_rx_dropped;
        self.xsk_rx_invalid_descs += o.xsk_rx_invalid_descs;
        self.xsk_tx_invalid_descs += o.xsk_tx_invalid_descs;
        self.xsk_rx_ring_full += o.xsk_rx_ring_full;
        self.xsk_fill_ring_empty += o.xsk_fill_ring_empty;
        self.xsk_tx_ring_empty += o.xsk_tx_ring_empty;
    }
}

/// One worker's own counters, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerTotals {
    /// Worker number.
    pub id: usize,
    /// The CPU it is pinned to.
    pub cpu: Option<usize>,
    /// Milliseconds since its last loop iteration.
    pub heartbeat_age_ms: u64,
    /// Non-empty RX batches.
    pub batches: u64,
    /// Loop iterations that moved a frame.
    pub busy_polls: u64,
    /// Loop iterations that found nothing.
    pub idle_polls: u64,
    /// Sleeps in epoll.
    pub sleeps: u64,
    /// TX wakeup syscalls.
    pub tx_wakeups: u64,
    /// Fill-ring wakeup syscalls.
    pub rx_wakeups: u64,
    /// UMEM frames not on the free list.
    pub umem_in_use: u64,
    /// UMEM size in frames.
    pub umem_frames: u64,
    /// Route snapshot generation it last used.
    pub generation: u64,
    /// Its transmits ask for checksum offload (partial checksums left to the kernel).
    pub tx_csum_offload: bool,
    pub multi_buffer: bool,
}

/// The workers' counters, read at one moment and summed: what /metrics and /status show.
/// Each worker's values only grow, so these sums never go backwards between two reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Frames forwarded per [`Action`], indexed by `action as usize`.
    pub actions: [u64; Action::COUNT],
    /// Frames dropped per [`DropReason`], indexed by `reason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Frames handed back to the kernel as not podfwd's.
    pub passed: u64,
    /// Partial TCP/UDP checksums completed in software.
    pub csum_completed: u64,
    /// Partial TCP/UDP checksums left to the kernel's checksum offload.
    pub csum_offloaded: u64,
    /// Frames received on ports removed since (their interfaces' counters are gone).
    pub closed_rx_packets: u64,
    /// Per port (port-id order), summed over workers.
    pub ports: Vec<PortTotals>,
    /// Per worker.
    pub workers: Vec<WorkerTotals>,
}

impl Totals {
    /// Read and sum `workers`' counters for `nports` ports.
    #[must_use]
    pub fn read(workers: &[Arc<WorkerShared>], nports: usize) -> Totals {
        let now = now_ms();
        let mut t = Totals {
            actions: [0; Action::COUNT],
            drops: [0; DropReason::COUNT],
            passed: 0,
            csum_completed: 0,
            csum_offloaded: 0,
            closed_rx_packets: 0,
            ports: vec![PortTotals::default(); nports],
            workers: Vec::with_capacity(workers.len()),
        };
        for w in workers {
            for (dst, src) in t.actions.iter_mut().zip(&w.actions) {
                *dst += src.load(Relaxed);
            }
            for (dst, src) in t.drops.iter_mut().zip(&w.drops) {
                *dst += src.load(Relaxed);
            }
            t.passed += w.passed.load(Relaxed);
            t.csum_completed += w.csum_completed.load(Relaxed);
            t.csum_offloaded += w.csum_offloaded.load(Relaxed);
            t.closed_rx_packets += w.closed_rx_packets.load(Relaxed);
            for (dst, src) in t.ports.iter_mut().zip(&w.ports) {
                dst.add(&PortTotals::read(src));
            }
            t.workers.push(WorkerTotals {
                id: w.id,
                cpu: w.cpu,
                heartbeat_age_ms: now.saturating_sub(w.heartbeat_ms.load(Relaxed)),
                batches: w.batches.load(Relaxed),
                busy_polls: w.busy_polls.load(Relaxed),
                idle_polls: w.idle_polls.load(Relaxed),
                sleeps: w.sleeps.load(Relaxed),
                tx_wakeups: w.tx_wakeups.load(Relaxed),
                rx_wakeups: w.rx_wakeups.load(Relaxed),
                umem_in_use: w.umem_in_use.load(Relaxed),
                umem_frames: w.umem_frames.load(Relaxed),
                generation: w.generation.load(Relaxed),
                tx_csum_offload: w.tx_csum_offload.load(Relaxed),
                multi_buffer: w.multi_buffer.load(Relaxed),
            });
        }
        t
    }

    /// Frames forwarded with `a`.
    #[must_use]
    pub fn action(&self, a: Action) -> u64 {
        self.actions[a as usize]
    }

    /// Frames dropped for `r`.
    #[must_use]
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_workers_and_ports() {
        let a = Arc::new(WorkerShared::new(0, None, 2));
        let b = Arc::new(WorkerShared::new(1, Some(1), 2));
        a.actions[Action::Encapsulated as usize].store(3, Relaxed);
        b.actions[Action::Encapsulated as usize].store(4, Relaxed);
        b.drops[DropReason::NoRoute as usize].store(5, Relaxed);
        a.ports[1].rx_packets.store(10, Relaxed);
        b.ports[1].rx_packets.store(11, Relaxed);
        b.ports[0].xdp_rx_dropped.store(2, Relaxed);
        let t = Totals::read(&[a, b], 2);
        assert_eq!(t.action(Action::Encapsulated), 7);
        assert_eq!(t.dropped(DropReason::NoRoute), 5);
        assert_eq!(t.ports[1].rx_packets, 21);
        assert_eq!(t.ports[0].xsk_rx_dropped, 2);
        assert_eq!(t.workers.len(), 2);
        assert_eq!(t.workers[1].cpu, Some(1));
    }

    #[test]
    fn a_failed_worker_is_not_healthy() {
        let w = Arc::new(WorkerShared::new(0, None, 1));
        let v = StatusView {
            workers: vec![w.clone()],
            attached: true,
            ..StatusView::default()
        };
        assert_eq!(v.healthy(), Ok(()));
        w.fail("panicked: boom");
        assert_eq!(
            v.healthy(),
            Err("worker 0 stopped: panicked: boom".to_owned())
        );
        assert!(v.ready().is_err());
    }
}
