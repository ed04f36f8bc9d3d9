//! LPM micro-benchmarks: lookup cost must stay flat from 10 to 100,000 prefixes, and
//! build must be cheap enough to redo on every config reload.
//!
//! `cargo bench -p route --bench lpm -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ipnet::Ipv4Net;
use route::Lpm;

const SIZES: [usize; 3] = [10, 1_000, 100_000];
const LOOKUPS: usize = 1024;

/// xorshift64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
}

/// `n` prefixes of length /16–/32, half inside 10.0.0.0/8 (the pod range) and half anywhere.
fn prefixes(n: usize, rng: &mut Rng) -> Vec<(Ipv4Net, u32)> {
    (0..n)
        .map(|i| {
            let len = 16 + (rng.next() % 17) as u8;
            let addr = if i % 2 == 0 {
                0x0a00_0000 | (rng.u32() & 0x00ff_ffff)
            } else {
                rng.u32()
            };
            let net = Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc();
            (net, u32::try_from(i).unwrap())
        })
        .collect()
}

/// Addresses to look up: half inside a random table prefix (hits, the longer prefixes
/// reach the deepest ply), a quarter random in 10.0.0.0/8, a quarter random anywhere.
fn addresses(table: &[(Ipv4Net, u32)], rng: &mut Rng) -> Vec<u32> {
    (0..LOOKUPS)
        .map(|i| match i % 4 {
            0 | 1 => {
                let (net, _) = table[usize::try_from(rng.next() % table.len() as u64).unwrap()];
                let host = u32::from(net.hostmask()) & rng.u32();
                u32::from(net.network()) | host
            }
            2 => 0x0a00_0000 | (rng.u32() & 0x00ff_ffff),
            _ => rng.u32(),
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lpm_lookup");
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    for n in SIZES {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let table = prefixes(n, &mut rng);
        let lpm = Lpm::build(&table).unwrap();
        let addrs = addresses(&table, &mut rng);
        let hits = addrs.iter().filter(|&&a| lpm.lookup(a).is_some()).count();
        eprintln!(
            "lpm n={n}: {} distinct prefixes, {:.1} MiB, {hits}/{LOOKUPS} lookups hit",
            lpm.len(),
            lpm.memory_bytes() as f64 / (1024.0 * 1024.0)
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &addrs, |b, addrs| {
            b.iter(|| {
                let lpm = black_box(&lpm);
                let mut acc = 0u32;
                for &a in black_box(addrs.as_slice()) {
                    acc = acc.wrapping_add(lpm.lookup(a).unwrap_or(u32::MAX));
                }
                acc
            });
        });
    }
    group.finish();
}

/// A pod-network shape: 400 node /24s in 10.0.0.0/14 and `pods` /32 pod routes inside
/// them (clustered, unlike `prefixes`, so far fewer plies).
fn pod_routes(pods: usize, rng: &mut Rng) -> Vec<(Ipv4Net, u32)> {
    let mut table: Vec<_> = (0..400u32)
        .map(|n| {
            let net = Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (n << 8)), 24).unwrap();
            (net, n)
        })
        .collect();
    for i in 0..pods {
        let addr = 0x0a00_0000 + (rng.next() % (400 << 8)) as u32;
        table.push((
            Ipv4Net::new(Ipv4Addr::from(addr), 32).unwrap(),
            400 + u32::try_from(i).unwrap(),
        ));
    }
    table
}

fn pods(c: &mut Criterion) {
    let mut group = c.benchmark_group("lpm_pods");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let table = pod_routes(100_000, &mut rng);
    let lpm = Lpm::build(&table).unwrap();
    let addrs = addresses(&table, &mut rng);
    eprintln!(
        "lpm pods: {} distinct prefixes, {:.1} MiB",
        lpm.len(),
        lpm.memory_bytes() as f64 / (1024.0 * 1024.0)
    );
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    group.bench_function("lookup/100000", |b| {
        b.iter(|| {
            let lpm = black_box(&lpm);
            let mut acc = 0u32;
            for &a in black_box(addrs.as_slice()) {
                acc = acc.wrapping_add(lpm.lookup(a).unwrap_or(u32::MAX));
            }
            acc
        });
    });
    group.finish();

    let mut group = c.benchmark_group("lpm_pods_build");
    group.sample_size(10);
    group.bench_function("build/100000", |b| {
        b.iter_batched(
            || (),
            |()| Lpm::build(black_box(&table)).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("lpm_build");
    group.sample_size(10);
    for n in SIZES {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ n as u64);
        let table = prefixes(n, &mut rng);
        group.bench_with_input(BenchmarkId::from_parameter(n), &table, |b, table| {
            // Drop outside the timed part: freeing tens of MiB is not the build's cost.
            b.iter_batched(
                || (),
                |()| Lpm::build(black_box(table)).unwrap(),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, build, pods);
criterion_main!(benches);
