//! Per-frame and per-batch cost of the pipeline's hot paths.
//!
//! `process` rewrites the frame, so every iteration first restores the frame's first
//! 128 bytes (all the pipeline writes: headers, TTL, checksums) from a template; the
//! `restore_only` benchmark measures that copy alone so it can be subtracted. Frame
//! sizes are the pod frame's (the decap input is 50 bytes longer). `native`/`encap` go to
//! a node with one next hop, `native_ecmp2`/`encap_ecmp2` to one behind two gateways.
//!
//! `cargo bench -p pipeline --bench pipeline -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pipeline::{Action, Frame, Pipeline, TxQueues, Verdict};
use route::{Mode, PortId, Snapshot};
use wire::checksum;

const RESTORE: usize = 128;

/// Node B behind two resolved gateways of equal weight (`*_ecmp2`: a multipath route,
/// the hop chosen per frame by the flow hash).
const TWO_GATEWAYS: [Gateway; 2] = [(GW1, 1, Some(GW1_MAC)), (GW2, 1, Some(GW2_MAC))];

/// A pod frame of exactly `size` bytes: UDP, or TCP when `tcp`.
fn pod_frame(dst: [u8; 4], size: usize, tcp: bool) -> Vec<u8> {
    let (sport, dport) = (40000, 5201);
    let (l4, headers) = if tcp {
        (L4::Tcp { sport, dport }, 54)
    } else {
        (L4::Udp { sport, dport }, 42)
    };
    frame(POD1_MAC, LXC1_MAC, POD1, dst, 64, l4, size - headers)
}

struct Case {
    name: &'static str,
    snap: Snapshot,
    port: PortId,
    frame: Vec<u8>,
    expect: Verdict,
}

fn cases(size: usize) -> Vec<Case> {
    let inner = {
        let mut f = inner_frame(POD1, size - 42);
        f.truncate(size);
        f
    };
    vec![
        Case {
            name: "native",
            snap: snapshot(Mode::Native),
            port: LXC1,
            frame: pod_frame(REMOTE_B, size, false),
            expect: Verdict::Tx {
                port: UPLINK,
                action: Action::RoutedNative,
            },
        },
        Case {
            name: "encap",
            snap: snapshot(Mode::Tunnel),
            port: LXC1,
            frame: pod_frame(REMOTE_B, size, false),
            expect: Verdict::Tx {
                port: UPLINK,
                action: Action::Encapsulated,
            },
        },
        Case {
            name: "native_ecmp2",
            snap: multipath_snapshot(Mode::Native, &TWO_GATEWAYS),
            port: LXC1,
            frame: pod_frame(REMOTE_B, size, false),
            expect: Verdict::Tx {
                port: UPLINK,
                action: Action::RoutedNative,
            },
        },
        Case {
            name: "encap_ecmp2",
            snap: multipath_snapshot(Mode::Tunnel, &TWO_GATEWAYS),
            port: LXC1,
            frame: pod_frame(REMOTE_B, size, false),
            expect: Verdict::Tx {
                port: UPLINK,
                action: Action::Encapsulated,
            },
        },
        Case {
            name: "decap",
            snap: snapshot(Mode::Tunnel),
            port: UPLINK,
            frame: vxlan_frame(NODE_A, 8472, 0x08, 1, &inner),
            expect: Verdict::Tx {
                port: LXC1,
                action: Action::Decapsulated,
            },
        },
    ]
}

fn per_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("per_frame");
    g.throughput(Throughput::Elements(1));
    for size in [64usize, 1400] {
        for case in cases(size) {
            let mut pl = Pipeline::new();
            let mut buf = chunk(&case.frame);
            let tpl = buf.clone();
            let len = case.frame.len();
            {
                let mut f = Frame::new(&mut buf, HEADROOM, len);
                assert_eq!(
                    pl.process(&case.snap, case.port, &mut f),
                    case.expect,
                    "{}",
                    case.name
                );
            }
            g.bench_with_input(BenchmarkId::new(case.name, size), &size, |b, _| {
                b.iter(|| {
                    buf[HEADROOM..HEADROOM + RESTORE]
                        .copy_from_slice(&tpl[HEADROOM..HEADROOM + RESTORE]);
                    let mut f = Frame::new(&mut buf, HEADROOM, len);
                    black_box(pl.process(&case.snap, case.port, black_box(&mut f)))
                });
            });
        }
        let mut buf = chunk(&pod_frame(REMOTE_B, size, false));
        let tpl = buf.clone();
        g.bench_with_input(BenchmarkId::new("restore_only", size), &size, |b, _| {
            b.iter(|| {
                buf[HEADROOM..HEADROOM + RESTORE]
                    .copy_from_slice(&tpl[HEADROOM..HEADROOM + RESTORE]);
                black_box(&mut buf);
            });
        });
    }
    g.finish();
}

/// The batch loop production runs: 64 descriptors through `process_batch` into the TX
/// queues, then settled (counted) as if the ring took them all.
fn batch64(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch64");
    g.throughput(Throughput::Elements(64));
    for size in [64usize, 1400] {
        for case in cases(size) {
            let mut pl = Pipeline::new();
            let frames: Vec<Vec<u8>> = (0..64).map(|_| case.frame.clone()).collect();
            let (mut mem, rx) = VecMem::with_frames(&frames);
            let tpl = chunk(&case.frame);
            let mut tx = TxQueues::new(case.snap.ports.len(), 64);
            let Verdict::Tx { port, .. } = case.expect else {
                unreachable!("every case transmits")
            };
            let port = usize::from(port);
            g.bench_with_input(BenchmarkId::new(case.name, size), &size, |b, _| {
                b.iter(|| {
                    for c in &mut mem.chunks {
                        c[HEADROOM..HEADROOM + RESTORE]
                            .copy_from_slice(&tpl[HEADROOM..HEADROOM + RESTORE]);
                    }
                    pl.process_batch(&case.snap, case.port, &rx, &mut mem, &mut tx);
                    let n = tx.pending(port).len();
                    black_box(tx.settle(port, n, &mut pl, &mut mem));
                });
            });
            assert!(
                mem.freed.is_empty(),
                "{}: a frame was not transmitted",
                case.name
            );
        }
    }
    g.finish();
}

/// Native routing of a 1400-byte TCP frame whose checksum is partial (completed on the
/// way, or left to the kernel's offload) vs complete (detected as not partial, left
/// alone).
fn csum(c: &mut Criterion) {
    let mut g = c.benchmark_group("csum_1400_tcp");
    g.throughput(Throughput::Elements(1));
    let snap = snapshot(Mode::Native);
    let complete = pod_frame(REMOTE_B, 1400, true);
    let mut partial = complete.clone();
    let ps = checksum::pseudo_header_sum(
        u32::from_be_bytes(POD1),
        u32::from_be_bytes(REMOTE_B),
        6,
        1400 - 34,
    );
    partial[50..52].copy_from_slice(&checksum::fold(ps).to_be_bytes());
    for (name, f) in [
        ("partial_completed", &partial),
        ("partial_offloaded", &partial),
        ("complete_untouched", &complete),
    ] {
        let mut pl = Pipeline::new();
        if name == "partial_offloaded" {
            pl.offload_checksums(Some(24));
        }
        let mut buf = chunk(f);
        let tpl = buf.clone();
        g.bench_function(name, |b| {
            b.iter(|| {
                buf[HEADROOM..HEADROOM + RESTORE]
                    .copy_from_slice(&tpl[HEADROOM..HEADROOM + RESTORE]);
                let mut fr = Frame::new(&mut buf, HEADROOM, f.len());
                black_box(pl.process(&snap, LXC1, black_box(&mut fr)))
            });
        });
        let c = pl.counters();
        match name {
            "partial_completed" => assert!(c.csum_completed >= 1 && c.csum_offloaded == 0),
            "partial_offloaded" => assert!(c.csum_offloaded >= 1 && c.csum_completed == 0),
            _ => assert_eq!((c.csum_completed, c.csum_offloaded), (0, 0)),
        }
    }
    g.finish();
}

criterion_group!(benches, per_frame, batch64, csum);
criterion_main!(benches);
