//! The batch loop the workers run: a vector of received descriptors through the
//! decision, into per-port TX queues, each frame counted exactly once.
//!
//! [`Pipeline::process_batch`] resolves the rx port and its role once per batch, decides
//! every frame in place, frees dropped and passed frames (counting them at once) and
//! queues the rest for their egress port. A queued frame is not counted yet: the worker
//! pushes the queue onto the TX ring and [`TxQueues::settle`] counts each frame that went
//! on the ring under its [`Action`] and each that did not under `tx_ring_full`, freeing
//! those. So a frame is counted once whatever happens to it, and a frame is never freed
//! without a count (a verdict for a port the worker has no socket for is `no_tx_socket`).
//!
//! Where the frames live is the caller's business, behind [`FrameMem`]: the worker's
//! UMEM in production, plain vectors in tests and benchmarks.

use route::{Mode, PortId, PortInfo, PortRole, Snapshot};

use crate::{Action, Decision, DropReason, Frame, Pipeline, TxOut, Verdict};

/// The memory frames live in, as the pipeline sees it: descriptors in, frames to rewrite
/// in place, descriptors out.
pub trait FrameMem {
    /// A frame descriptor of the caller's rings (address and length).
    type Desc: Copy;
    /// The frame `d` points to, inside its whole chunk (so it can grow at the front). A
    /// descriptor chain (a frame in several buffers) is its first buffer, with
    /// [`Frame::more`] the bytes in the others.
    fn frame(&mut self, d: Self::Desc) -> Frame<'_>;
    /// The descriptor that transmits `out`: bytes `off..off + len` of `d`'s first chunk,
    /// then the rest of its chain if `keep_chain` (else those buffers are freed); asking
    /// the kernel to complete the checksum `csum` describes if it is set (the pipeline
    /// only sets it with [`Pipeline::offload_checksums`], which the caller enables only
    /// where it can: AF_XDP TX metadata), and completing `csum_chain` over the whole
    /// chain if that is set.
    fn tx_desc(&mut self, d: Self::Desc, out: TxOut) -> Self::Desc;
    /// Gives `d`'s frame (all the buffers of a chain) back to the free pool.
    fn free(&mut self, d: Self::Desc);
    /// Length in bytes of the frame `d` describes (all of a chain).
    fn len(d: &Self::Desc) -> usize;
}

/// Frames decided for transmission, per egress port, waiting for their TX ring.
#[derive(Debug)]
pub struct TxQueues<D> {
    descs: Vec<Vec<D>>,
    actions: Vec<Vec<Action>>,
    /// Per port: whether the worker has a socket for it (a vacant slot has none).
    open: Vec<bool>,
    capacity: usize,
}

/// What [`TxQueues::settle`] counted for one port.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Frames that went onto the TX ring.
    pub sent: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Frames that did not fit (counted as `tx_ring_full` and freed).
    pub dropped: usize,
}

impl<D: Copy> TxQueues<D> {
    /// Empty queues for `nports` ports, each with room for `capacity` frames before it
    /// reallocates.
    #[must_use]
    pub fn new(nports: usize, capacity: usize) -> Self {
        let mut q = TxQueues {
            descs: Vec::new(),
            actions: Vec::new(),
            open: Vec::new(),
            capacity,
        };
        q.set_ports(nports);
        q
    }

    /// Number of port slots (egress ports at or past it are `no_tx_socket`).
    #[must_use]
    pub fn nports(&self) -> usize {
        self.descs.len()
    }

    /// Whether frames can be queued for `port` (it has a socket).
    #[must_use]
    pub fn is_open(&self, port: usize) -> bool {
        self.open.get(port).copied().unwrap_or(false)
    }

    /// Opens or closes `port` (growing to it); frames for a closed port are
    /// `no_tx_socket`.
    ///
    /// # Panics
    /// If a port is closed with frames still queued (they would leak).
    pub fn set_open(&mut self, port: usize, open: bool) {
        if port >= self.nports() {
            self.set_ports(port + 1);
        }
        assert!(
            open || self.descs[port].is_empty(),
            "TxQueues::set_open: port {port} closed with frames queued"
        );
        self.open[port] = open;
    }

    /// Grows or shrinks to `nports` ports; new ones are open. Queues must be settled
    /// before shrinking.
    ///
    /// # Panics
    /// If a removed port still has frames queued (they would leak).
    pub fn set_ports(&mut self, nports: usize) {
        assert!(
            self.descs.iter().skip(nports).all(Vec::is_empty),
            "TxQueues::set_ports: a removed port still has frames queued"
        );
        self.descs
            .resize_with(nports, || Vec::with_capacity(self.capacity));
        self.actions
            .resize_with(nports, || Vec::with_capacity(self.capacity));
        self.open.resize(nports, true);
    }

    /// The frames queued for `port`, in arrival order (what to push onto its TX ring).
    #[must_use]
    pub fn pending(&self, port: usize) -> &[D] {
        self.descs.get(port).map_or(&[], Vec::as_slice)
    }

    /// Whether nothing is queued on any port.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.descs.iter().all(Vec::is_empty)
    }

    fn push(&mut self, port: usize, d: D, action: Action) {
        self.descs[port].push(d);
        self.actions[port].push(action);
    }

    /// The first `sent` frames queued for `port` went onto its TX ring: count each under
    /// its action. The rest did not fit: count them as `tx_ring_full` and free them.
    /// The queue is empty afterwards.
    pub fn settle<M: FrameMem<Desc = D>>(
        &mut self,
        port: usize,
        sent: usize,
        pipeline: &mut Pipeline,
        mem: &mut M,
    ) -> Settled {
        let (Some(descs), Some(actions)) = (self.descs.get_mut(port), self.actions.get_mut(port))
        else {
            return Settled::default();
        };
        let sent = sent.min(descs.len());
        let mut out = Settled {
            sent,
            ..Settled::default()
        };
        for (d, a) in descs[..sent].iter().zip(&actions[..sent]) {
            pipeline.counters.actions[*a as usize] += 1;
            out.bytes += M::len(d) as u64;
        }
        for d in &descs[sent..] {
            pipeline.record_drop(DropReason::TxRingFull);
            mem.free(*d);
        }
        out.dropped = descs.len() - sent;
        descs.clear();
        actions.clear();
        out
    }
}

impl Pipeline {
    /// Decides every frame of `rx` (received on `rx_port`), rewriting it in place.
    /// Dropped and passed frames are counted and freed through `mem`; frames to transmit
    /// go onto `tx`'s queue for their egress port, to be counted by
    /// [`TxQueues::settle`]. Returns the bytes received (for the port's counters).
    pub fn process_batch<M: FrameMem>(
        &mut self,
        snap: &Snapshot,
        rx_port: PortId,
        rx: &[M::Desc],
        mem: &mut M,
        tx: &mut TxQueues<M::Desc>,
    ) -> u64 {
        let bytes = rx.iter().map(|d| M::len(d) as u64).sum();
        let Some(port) = snap.ports.get(usize::from(rx_port)) else {
            self.run_batch(rx, mem, tx, |_, _| Ok(Verdict::Pass));
            return bytes;
        };
        match (port.role, snap.local.mode) {
            (PortRole::Pod, _) => {
                self.run_batch(rx, mem, tx, |pl, f| pl.rx_from_pod(snap, rx_port, port, f))
            }
            (PortRole::Uplink, Mode::Tunnel) => {
                self.run_batch(rx, mem, tx, |pl, f| pl.rx_uplink_tunnel(snap, f));
            }
            (PortRole::Uplink, Mode::Native) => self.run_batch(rx, mem, tx, |pl, f| {
                pl.rx_uplink_native(snap, rx_port, port, f)
            }),
            (PortRole::Uplink, Mode::Hybrid) => self.run_batch(rx, mem, tx, |pl, f| {
                pl.rx_uplink_hybrid(snap, rx_port, port, f)
            }),
        }
        bytes
    }

    /// The loop of [`Self::process_batch`] with the rx port's decision function.
    #[inline]
    fn run_batch<M, F>(
        &mut self,
        rx: &[M::Desc],
        mem: &mut M,
        tx: &mut TxQueues<M::Desc>,
        mut decide: F,
    ) where
        M: FrameMem,
        F: FnMut(&mut Self, &mut Frame) -> Decision,
    {
        for &d in rx {
            let mut frame = mem.frame(d);
            frame.clamp();
            let verdict = decide(self, &mut frame).unwrap_or_else(Verdict::Drop);
            let out = frame.tx_out();
            match verdict {
                Verdict::Tx { port, action } if tx.is_open(usize::from(port)) => {
                    let out = mem.tx_desc(d, out);
                    tx.push(usize::from(port), out, action);
                }
                Verdict::Tx { .. } => {
                    self.record_drop(DropReason::NoTxSocket);
                    mem.free(d);
                }
                other => {
                    self.counters.record(&other);
                    mem.free(d);
                }
            }
        }
    }

    /// Hybrid mode on the uplink: VXLAN for us is decapsulated (from nodes behind a
    /// router), anything else is taken as native (from on-link nodes). The tunnel
    /// checks write nothing before they pass, so a frame they hand back is untouched.
    #[inline]
    fn rx_uplink_hybrid(
        &mut self,
        snap: &Snapshot,
        rx_port: PortId,
        port: &PortInfo,
        frame: &mut Frame,
    ) -> Decision {
        match self.rx_uplink_tunnel(snap, frame)? {
            Verdict::Pass => self.rx_uplink_native(snap, rx_port, port, frame),
            v => Ok(v),
        }
    }

    /// The port-role dispatch of [`Self::process`], without counting.
    pub(crate) fn decide(
        &mut self,
        snap: &Snapshot,
        rx_port: PortId,
        frame: &mut Frame,
    ) -> Verdict {
        frame.clamp();
        let decision = match snap.ports.get(usize::from(rx_port)) {
            None => Ok(Verdict::Pass),
            Some(port) => self.decide_on(snap, rx_port, port, frame),
        };
        decision.unwrap_or_else(Verdict::Drop)
    }

    #[inline]
    fn decide_on(
        &mut self,
        snap: &Snapshot,
        rx_port: PortId,
        port: &PortInfo,
        frame: &mut Frame,
    ) -> Decision {
        match (port.role, snap.local.mode) {
            (PortRole::Pod, _) => self.rx_from_pod(snap, rx_port, port, frame),
            (PortRole::Uplink, Mode::Tunnel) => self.rx_uplink_tunnel(snap, frame),
            (PortRole::Uplink, Mode::Native) => self.rx_uplink_native(snap, rx_port, port, frame),
            (PortRole::Uplink, Mode::Hybrid) => self.rx_uplink_hybrid(snap, rx_port, port, frame),
        }
    }
}
