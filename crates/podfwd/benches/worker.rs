//! podfwd's own ceiling: the worker loop on fake AF_XDP rings (`xsk::testing`), no
//! kernel involved. What podfwd would do behind a zero-copy NIC, whose frames cost the
//! CPU nothing to receive or send.
//!
//! Each iteration is one trip of a whole batch around the rings, as with a kernel:
//! the fake NIC takes `batch` frames from the receiving port's fill ring, writes a
//! realistic frame into each (the NIC's DMA; here a copy of 64 or 114 bytes, which this
//! benchmark counts against podfwd) and publishes them on its RX ring; then one
//! [`Worker::step`] (the body of the worker's loop: completions back to the free list,
//! RX batch, fill ring topped up, `process_batch`, TX ring, counters, housekeeping); then
//! the fake NIC transmits the egress port's TX ring and posts the completions, which the
//! next step takes back. The production ring and UMEM sizes: 16,384 frames of 4 KiB,
//! fill rings of 2,048 frames on each of the four ports (uplink + three pods),
//! need_wakeup on and never raised (a busy zero-copy driver does not ask).
//!
//! - native: 64-byte UDP from a pod to a pod on node B, routed natively out the uplink;
//! - encap: the same frame in tunnel mode, 114 bytes out (the 50-byte outer header);
//! - decap: that 114-byte VXLAN frame arriving on the uplink, 64 bytes to the pod.
//!
//! Time is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! on cores shared with other work, time the thread spends descheduled is not counted
//! (what the other work does to the caches still is). So throughput is frames per
//! second per core. Beside each case, `pipeline_only` runs the same frames through
//! `process_batch` and `settle` over plain vectors (the pipeline benchmark's loop, plus
//! the same frame copy the fake NIC makes): the baseline for what the rings and the
//! worker loop add, measured in the same run.
//!
//! `cargo bench -p podfwd --bench worker -- --warm-up-time 1 --measurement-time 3`

#[path = "../../pipeline/tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use common::*;
use criterion::{criterion_group, criterion_main, Bencher, BenchmarkId, Criterion, Throughput};
use nix::time::{clock_gettime, ClockId};
use pipeline::{Action, Pipeline, TxQueues};
use podfwd::stats::WorkerShared;
use podfwd::worker::Worker;
use route::{Mode, PortId, Snapshot};
use xsk::testing::{fake_socket, FakeKernel};
use xsk::{Umem, UmemConfig};

/// Pod frames are this long on the wire (without FCS), as in the pipeline benchmark.
const FRAME: usize = 64;

/// The rings and UMEM `podfwd run` makes for four ports with the default config.
fn umem_config() -> UmemConfig {
    // No TX metadata (the default): the fake kernel completes descriptors without
    // reading it.
    UmemConfig {
        frame_count: 16384,
        ..UmemConfig::default()
    }
}

/// One forwarding case: which port receives what, where it goes, counted as what.
struct Case {
    name: &'static str,
    mode: Mode,
    rx: PortId,
    tx: PortId,
    frame: Vec<u8>,
    action: Action,
    /// Length of the frame on the egress TX ring.
    out_len: usize,
}

fn cases() -> Vec<Case> {
    let pod_frame = from_pod1(REMOTE_B, FRAME - 42);
    let vxlan = vxlan_frame(NODE_A, 8472, 0x08, 1, &inner_frame(POD1, FRAME - 42));
    vec![
        Case {
            name: "native",
            mode: Mode::Native,
            rx: LXC1,
            tx: UPLINK,
            frame: pod_frame.clone(),
            action: Action::RoutedNative,
            out_len: FRAME,
        },
        Case {
            name: "encap",
            mode: Mode::Tunnel,
            rx: LXC1,
            tx: UPLINK,
            frame: pod_frame,
            action: Action::Encapsulated,
            out_len: FRAME + 50,
        },
        Case {
            name: "decap",
            mode: Mode::Tunnel,
            rx: UPLINK,
            tx: LXC1,
            frame: vxlan,
            action: Action::Decapsulated,
            out_len: FRAME,
        },
    ]
}

/// A worker over fake sockets, one per port of the case's snapshot, their fill rings
/// filled as at start-up, and the fake NIC behind each.
struct WorkerBed<'c> {
    case: &'c Case,
    batch: usize,
    worker: Worker,
    nic: Vec<FakeKernel>,
    snap: ArcSwap<Snapshot>,
    received: u64,
}

impl<'c> WorkerBed<'c> {
    /// The bed, after one checked trip: the frames go where they should, as they should.
    fn new(case: &'c Case, batch: usize) -> Self {
        let snap = snapshot(case.mode);
        let cfg = umem_config();
        let mut umem = Umem::new(&cfg).expect("UMEM in anonymous memory");
        let ports = snap.ports.len();
        let (mut sockets, nic): (Vec<_>, Vec<_>) =
            (0..ports).map(|_| fake_socket(&umem, true, 0)).unzip();
        for s in &mut sockets {
            s.fill(&mut umem, cfg.fill_size as usize);
        }
        let shared = Arc::new(WorkerShared::new(0, None, ports));
        let worker = Worker::new(umem, sockets, shared).expect("epoll instance");
        let mut bed = WorkerBed {
            case,
            batch,
            worker,
            nic,
            snap: ArcSwap::from_pointee(snap),
            received: 0,
        };
        let (rx, tx) = (usize::from(case.rx), usize::from(case.tx));
        bed.nic[rx].receive_batch(bed.worker.umem_mut(), &case.frame, batch);
        bed.received += bed.worker.step(&bed.snap) as u64;
        let sent = bed.nic[tx].transmit_with_data(bed.worker.umem_mut(), batch);
        assert_eq!(sent.len(), batch, "{}", case.name);
        assert!(
            sent.iter().all(|(d, _)| d.len as usize == case.out_len),
            "{}: {} bytes out, expected {}",
            case.name,
            sent[0].0.len,
            case.out_len
        );
        bed
    }

    /// One trip of a batch around the rings; returns the frames the worker received.
    #[inline]
    fn trip(&mut self) -> usize {
        let (rx, tx) = (usize::from(self.case.rx), usize::from(self.case.tx));
        let frame = black_box(&self.case.frame);
        self.nic[rx].receive_batch(self.worker.umem_mut(), frame, self.batch);
        let got = self.worker.step(&self.snap);
        self.nic[tx].transmit_batch(self.batch);
        self.received += got as u64;
        got
    }

    /// Every frame received went out under the case's action, none elsewhere.
    fn check(&self) {
        let c = self.worker.counters();
        let name = self.case.name;
        assert_eq!(c.action(self.case.action), self.received, "{name}");
        assert_eq!(c.frames() - c.action(self.case.action), 0, "{name}");
    }
}

/// The baseline: the same frames copied into plain vectors and through
/// `process_batch` + `settle`, without rings, UMEM or worker.
struct PipelineBed<'c> {
    case: &'c Case,
    snap: Snapshot,
    mem: VecMem,
    rx: Vec<VecDesc>,
    pipeline: Pipeline,
    tx: TxQueues<VecDesc>,
}

impl<'c> PipelineBed<'c> {
    fn new(case: &'c Case, batch: usize) -> Self {
        let snap = snapshot(case.mode);
        let frames: Vec<Vec<u8>> = (0..batch).map(|_| case.frame.clone()).collect();
        let (mem, rx) = VecMem::with_frames(&frames);
        let tx = TxQueues::new(snap.ports.len(), batch);
        PipelineBed {
            case,
            snap,
            mem,
            rx,
            pipeline: Pipeline::new(),
            tx,
        }
    }

    #[inline]
    fn run(&mut self) -> usize {
        let frame = black_box(&self.case.frame);
        for c in &mut self.mem.chunks {
            c[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        }
        let (pl, mem, tx) = (&mut self.pipeline, &mut self.mem, &mut self.tx);
        pl.process_batch(&self.snap, self.case.rx, &self.rx, mem, tx);
        let port = usize::from(self.case.tx);
        let n = tx.pending(port).len();
        tx.settle(port, n, pl, mem).sent
    }

    fn check(&self) {
        let c = self.pipeline.counters();
        let name = self.case.name;
        assert!(self.mem.freed.is_empty(), "{name}: a frame was dropped");
        assert_eq!(c.frames() - c.action(self.case.action), 0, "{name}");
    }
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::from(t)
}

/// Runs `f` as often as criterion asks, timed in thread CPU time.
fn iter_cpu(b: &mut Bencher, mut f: impl FnMut() -> usize) {
    b.iter_custom(|iters| {
        let start = thread_cpu();
        for _ in 0..iters {
            black_box(f());
        }
        thread_cpu() - start
    });
}

fn forward(c: &mut Criterion) {
    let cases = cases();
    for batch in [1usize, 64, 256] {
        let mut g = c.benchmark_group(format!("batch{batch}"));
        g.throughput(Throughput::Elements(batch as u64));
        for case in &cases {
            let mut bed = WorkerBed::new(case, batch);
            g.bench_function(BenchmarkId::new("worker", case.name), |b| {
                iter_cpu(b, || bed.trip());
            });
            bed.check();
            let mut base = PipelineBed::new(case, batch);
            g.bench_function(BenchmarkId::new("pipeline_only", case.name), |b| {
                iter_cpu(b, || base.run());
            });
            base.check();
        }
        g.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
