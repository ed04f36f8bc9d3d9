#!/usr/bin/env python3
"""bench/levers' report: runs.jsonl -> markdown (medians over reps with their range,
each podfwd row against the baseline of its mode, and against each kernel row of the run).

usage: bench/levers_report.py RUNS.jsonl OUT.md KERNEL_ROWS REPS SECS LOAD MACHINE LEVERS
"""
import json
import statistics
import sys

runs, out, krows, reps, secs, load, machine, levers = sys.argv[1:9]
krows = krows.split()
recs = [json.loads(line) for line in open(runs) if line.strip()]


def med(row, test, key):
    v = [r[key] for r in recs if r["row"] == row and r["test"] == test and r.get(key) is not None]
    return (statistics.median(v), min(v), max(v)) if v else None


rows = list(dict.fromkeys(r["row"] for r in recs))
cols = [("TCP 1 (Gbit/s)", "tcp1", "gbps", 2), ("TCP 4 (Gbit/s)", "tcp4", "gbps", 2),
        ("64 B (kpps)", "udp64", "kpps", 0), ("sockperf p50 (µs)", "latency", "p50_us", 1),
        ("sockperf p99 (µs)", "latency", "p99_us", 1), ("ping (µs)", "ping", "avg_us", 0),
        ("CPU/pkt 64 B (ns)", "udp64", "cpu_ns_per_pkt", 0), ("CPU/Gbit TCP 1 (s)", "tcp1", "cpu_s_per_gbit", 2),
        ("idle podfwd (% core)", "idle", "cpu_pct", 2)]
# The columns a ratio makes sense for (idle CPU is podfwd's own, the kernel rows have none).
rcols = cols[:8]


def fmt(x, d):
    return "–" if x is None else f"{x:.{d}f}"


def ratio_table(title, pairs):
    lines = ["", title, "", "| row | " + " | ".join(c[0].split(" (")[0] for c in rcols) + " |",
             "|---" * (len(rcols) + 1) + "|"]
    for row, ref in pairs:
        cells = []
        for _, t, key, _d in rcols:
            a, b = med(row, t, key), med(ref, t, key)
            cells.append("–" if not a or not b or not b[0] else f"{a[0] / b[0]:.2f}×")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


L = [f"Medians of {reps} interleaved reps, {secs} s per test (range in brackets); {machine}; "
     f"load average at the end: {load}; levers: {levers}.", ""]
L.append("| row | " + " | ".join(c[0] for c in cols) + " |")
L.append("|---" * (len(cols) + 1) + "|")
for row in rows:
    cells = []
    for _, t, k, d in cols:
        m = med(row, t, k)
        cells.append("–" if m is None else (fmt(m[0], d) if m[1] == m[2] else f"{fmt(m[0], d)} ({fmt(m[1], d)}–{fmt(m[2], d)})"))
    L.append(f"| {row} | " + " | ".join(cells) + " |")
pod = [r for r in rows if r.startswith("podfwd-")]
base = [(r, r.split("@")[0] + "@base") for r in pod if "@" in r and not r.endswith("@base")]
if base:
    L += ratio_table("Each lever against the baseline of its mode (this run; throughput: > 1 is a gain; "
                     "latency and CPU: < 1 is a gain):", [p for p in base if p[1] in rows])
for k in krows:
    if k in rows:
        L += ratio_table(f"Against {k} (this run; same reading):", [(r, k) for r in pod])
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
