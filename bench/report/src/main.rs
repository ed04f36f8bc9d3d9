//! `podfwd-report RUNS.jsonl --out DIR [--machine TEXT] [--command TEXT] [--pods TEXT]`
//! `podfwd-report --check-nonzero RUNS.jsonl`
//!
//! Reads the runs `bench/compare` recorded (one JSON object per test and repetition),
//! takes the median of every measure per row, notes the spread (min–max), prints a
//! markdown table per bed (the two-node bed, the routed bed: rows `routed-*`) and the
//! ratios that matter, each against a baseline row of the same bed and run, and writes
//! `results.md` and `chart.svg`. `--pods` says how each row's pods were made (static
//! namespaces or the CNI plugin).
//!
//! With `--check-nonzero` it writes nothing and only checks that every podfwd row
//! (`podfwd-*`, `routed-podfwd-*`) measured something: TCP throughput (1 and 4 streams) and 64-byte pps above zero in
//! every repetition. A podfwd that forwards nothing still yields a complete report, so
//! the demo smoke run in scripts/test uses this to fail.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::Value;

/// Rows in display order, with their labels.
const ROWS: &[(&str, &str)] = &[
    ("underlay", "node-to-node underlay"),
    ("kernel-native", "kernel native routing, default offloads"),
    (
        "kernel-native-tso-off",
        "kernel native routing, pod TSO off",
    ),
    (
        "kernel-vxlan",
        "kernel VXLAN (flannel style), default offloads",
    ),
    ("kernel-vxlan-tso-off", "kernel VXLAN, pod TSO off"),
    (
        "xdp-fwd",
        "reference: kernel XDP forwarding (fib lookup + redirect), pod TSO off",
    ),
    ("podfwd-native", "podfwd native"),
    ("podfwd-tunnel", "podfwd tunnel (VXLAN)"),
    (
        "podfwd-native-csum-offload",
        "podfwd native, checksum offload (TX metadata)",
    ),
    (
        "podfwd-native-csum-sw",
        "podfwd native, checksums in software",
    ),
    (
        "podfwd-tunnel-csum-offload",
        "podfwd tunnel, checksum offload (TX metadata)",
    ),
    (
        "podfwd-tunnel-csum-sw",
        "podfwd tunnel, checksums in software",
    ),
    (
        "kernel-native-jumbo",
        "kernel native routing, MTU 9000, default offloads",
    ),
    (
        "kernel-vxlan-jumbo",
        "kernel VXLAN, MTU 9000, default offloads",
    ),
    (
        "podfwd-native-jumbo",
        "podfwd native, MTU 9000 (multi-buffer)",
    ),
    (
        "podfwd-tunnel-jumbo",
        "podfwd tunnel, MTU 9000 (multi-buffer)",
    ),
    (
        "routed-kernel",
        "routed: kernel, static routes via the router",
    ),
    (
        "routed-podfwd-native",
        "routed: podfwd native (router routes PodCIDRs)",
    ),
    ("routed-podfwd-tunnel", "routed: podfwd tunnel (VXLAN)"),
    (
        "routed-podfwd-hybrid",
        "routed: podfwd hybrid a0→b0 (VXLAN)",
    ),
    (
        "routed-podfwd-hybrid-onlink",
        "routed: podfwd hybrid a0→d0 on-link (native)",
    ),
];

/// The beds, in display order: a title and whether it is the routed bed ([`is_routed`]).
const BEDS: &[(&str, bool)] = &[
    ("Two-node bed (one L2 segment)", false),
    (
        "Routed bed (nodes a, b on two subnets behind a router; d on a's subnet)",
        true,
    ),
];

/// A row of the routed bed (`bench/routed.sh`).
fn is_routed(row: &str) -> bool {
    row.starts_with("routed-")
}

/// One measure: which test, which field.
#[derive(Debug, Clone, Copy)]
struct Measure {
    test: &'static str,
    field: &'static str,
}

const TCP1: Measure = Measure {
    test: "tcp1",
    field: "gbps",
};
const TCP1_RETR: Measure = Measure {
    test: "tcp1",
    field: "retransmits",
};
const TCP4: Measure = Measure {
    test: "tcp4",
    field: "gbps",
};
const TCP4_RETR: Measure = Measure {
    test: "tcp4",
    field: "retransmits",
};
const TCP1_CPU: Measure = Measure {
    test: "tcp1",
    field: "cpu_s_per_gbit",
};
const PPS: Measure = Measure {
    test: "udp64",
    field: "kpps",
};
const PPS_CPU: Measure = Measure {
    test: "udp64",
    field: "cpu_ns_per_pkt",
};
const P50: Measure = Measure {
    test: "latency",
    field: "p50_us",
};
const P99: Measure = Measure {
    test: "latency",
    field: "p99_us",
};
const PING: Measure = Measure {
    test: "ping",
    field: "avg_us",
};

/// The ratios the report prints: (label, row, baseline row, measure, what). Every
/// baseline is a row of the same bed and run: the routed rows against `routed-kernel`,
/// never against the two-node bed's kernel rows.
const PAIRS: &[(&str, &str, &str, Measure, &str)] = &[
    (
        "podfwd tunnel / podfwd native",
        "podfwd-tunnel",
        "podfwd-native",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "podfwd tunnel / podfwd native",
        "podfwd-tunnel",
        "podfwd-native",
        PPS,
        "64 B pps",
    ),
    (
        "kernel VXLAN / kernel native",
        "kernel-vxlan",
        "kernel-native",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "kernel VXLAN / kernel native",
        "kernel-vxlan",
        "kernel-native",
        PPS,
        "64 B pps",
    ),
    (
        "podfwd native / kernel native (pod TSO off, equal offloads)",
        "podfwd-native",
        "kernel-native-tso-off",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "podfwd native / kernel native (default offloads)",
        "podfwd-native",
        "kernel-native",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "podfwd tunnel / kernel VXLAN (pod TSO off, equal offloads)",
        "podfwd-tunnel",
        "kernel-vxlan-tso-off",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "podfwd tunnel / kernel VXLAN (default offloads)",
        "podfwd-tunnel",
        "kernel-vxlan",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "podfwd native / kernel native",
        "podfwd-native",
        "kernel-native",
        PPS,
        "64 B pps",
    ),
    (
        "podfwd tunnel / kernel VXLAN",
        "podfwd-tunnel",
        "kernel-vxlan",
        PPS,
        "64 B pps",
    ),
    (
        "podfwd native / kernel native",
        "podfwd-native",
        "kernel-native",
        P50,
        "latency p50",
    ),
    (
        "podfwd tunnel / kernel VXLAN",
        "podfwd-tunnel",
        "kernel-vxlan",
        P50,
        "latency p50",
    ),
    (
        "XDP forwarding / kernel native (pod TSO off, equal offloads)",
        "xdp-fwd",
        "kernel-native-tso-off",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "XDP forwarding / kernel native (pod TSO off)",
        "xdp-fwd",
        "kernel-native-tso-off",
        PPS,
        "64 B pps",
    ),
    (
        "podfwd native / XDP forwarding (the XDP bound)",
        "podfwd-native",
        "xdp-fwd",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "podfwd native / XDP forwarding (the XDP bound)",
        "podfwd-native",
        "xdp-fwd",
        PPS,
        "64 B pps",
    ),
    (
        "jumbo: podfwd native / kernel native, both MTU 9000 (kernel with pod TSO)",
        "podfwd-native-jumbo",
        "kernel-native-jumbo",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "jumbo: podfwd native MTU 9000 / kernel native MTU 1500 (default offloads)",
        "podfwd-native-jumbo",
        "kernel-native",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "jumbo: podfwd native MTU 9000 / podfwd native MTU 1500",
        "podfwd-native-jumbo",
        "podfwd-native",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "jumbo: podfwd tunnel / kernel VXLAN, both MTU 9000 (kernel with pod TSO)",
        "podfwd-tunnel-jumbo",
        "kernel-vxlan-jumbo",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "routed: podfwd native / kernel",
        "routed-podfwd-native",
        "routed-kernel",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "routed: podfwd tunnel / kernel",
        "routed-podfwd-tunnel",
        "routed-kernel",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "routed: podfwd hybrid a0→b0 / kernel",
        "routed-podfwd-hybrid",
        "routed-kernel",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "routed: podfwd hybrid a0→d0 (one subnet, no router) / kernel (through the router)",
        "routed-podfwd-hybrid-onlink",
        "routed-kernel",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "routed: podfwd native / kernel",
        "routed-podfwd-native",
        "routed-kernel",
        PPS,
        "64 B pps",
    ),
    (
        "routed: podfwd tunnel / kernel",
        "routed-podfwd-tunnel",
        "routed-kernel",
        PPS,
        "64 B pps",
    ),
    (
        "routed: podfwd hybrid a0→b0 / kernel",
        "routed-podfwd-hybrid",
        "routed-kernel",
        PPS,
        "64 B pps",
    ),
    (
        "routed: podfwd native / kernel",
        "routed-podfwd-native",
        "routed-kernel",
        P50,
        "latency p50",
    ),
    (
        "routed: podfwd tunnel / kernel",
        "routed-podfwd-tunnel",
        "routed-kernel",
        P50,
        "latency p50",
    ),
    (
        "routed: podfwd tunnel / podfwd native",
        "routed-podfwd-tunnel",
        "routed-podfwd-native",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "routed: podfwd hybrid a0→d0 (native) / a0→b0 (VXLAN)",
        "routed-podfwd-hybrid-onlink",
        "routed-podfwd-hybrid",
        TCP1,
        "TCP 1 stream",
    ),
    (
        "checksum offload / checksums in software",
        "podfwd-native-csum-offload",
        "podfwd-native-csum-sw",
        TCP1,
        "podfwd native, TCP 1 stream",
    ),
    (
        "checksum offload / checksums in software",
        "podfwd-native-csum-offload",
        "podfwd-native-csum-sw",
        TCP4,
        "podfwd native, TCP 4 streams",
    ),
    (
        "checksum offload / checksums in software",
        "podfwd-native-csum-offload",
        "podfwd-native-csum-sw",
        TCP1_CPU,
        "podfwd native, CPU s per Gbit (TCP 1 stream)",
    ),
    (
        "checksum offload / checksums in software",
        "podfwd-tunnel-csum-offload",
        "podfwd-tunnel-csum-sw",
        TCP1,
        "podfwd tunnel, TCP 1 stream",
    ),
    (
        "checksum offload / checksums in software",
        "podfwd-tunnel-csum-offload",
        "podfwd-tunnel-csum-sw",
        TCP4,
        "podfwd tunnel, TCP 4 streams",
    ),
    (
        "checksum offload / checksums in software",
        "podfwd-tunnel-csum-offload",
        "podfwd-tunnel-csum-sw",
        TCP1_CPU,
        "podfwd tunnel, CPU s per Gbit (TCP 1 stream)",
    ),
];

/// Median and spread of the repetitions.
#[derive(Debug, Clone, Copy)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stat(mut v: Vec<f64>) -> Option<Stat> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

#[derive(Debug, Default)]
struct Runs {
    /// (row, test, field) → values over repetitions.
    values: BTreeMap<(String, String, String), Vec<f64>>,
}

impl Runs {
    fn parse(text: &str) -> Result<Runs, String> {
        let mut r = Runs::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            let row = v["row"].as_str().ok_or(format!("line {}: no row", i + 1))?;
            let test = v["test"]
                .as_str()
                .ok_or(format!("line {}: no test", i + 1))?;
            for (k, x) in v.as_object().into_iter().flatten() {
                if let Some(x) = x.as_f64() {
                    if k != "rep" {
                        r.values
                            .entry((row.to_owned(), test.to_owned(), k.clone()))
                            .or_default()
                            .push(x);
                    }
                }
            }
        }
        Ok(r)
    }

    fn get(&self, row: &str, m: Measure) -> Option<Stat> {
        self.values
            .get(&(row.to_owned(), m.test.to_owned(), m.field.to_owned()))
            .and_then(|v| stat(v.clone()))
    }

    fn has_row(&self, row: &str) -> bool {
        self.values.keys().any(|(r, _, _)| r == row)
    }
}

fn cell(s: Option<Stat>, prec: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n > 1 && (s.max - s.min) > 0.0 => {
            format!("{:.prec$} ({:.prec$}–{:.prec$})", s.median, s.min, s.max)
        }
        Some(s) => format!("{:.prec$}", s.median),
    }
}

fn ratio(runs: &Runs, a: &str, b: &str, m: Measure) -> Option<f64> {
    let x = runs.get(a, m)?.median;
    let y = runs.get(b, m)?.median;
    (y > 0.0).then(|| x / y)
}

fn report(runs: &Runs, machine: &str, command: &str, pods: Option<&str>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Machine: {machine}  ");
    let _ = writeln!(o, "Command: `{command}`  ");
    if let Some(pods) = pods {
        let _ = writeln!(o, "Pods: {pods}  ");
    }
    let _ = writeln!(
        o,
        "Cells: median of the repetitions (min–max in brackets).\n"
    );
    for (title, routed) in BEDS {
        let rows: Vec<_> = ROWS
            .iter()
            .filter(|(r, _)| is_routed(r) == *routed && runs.has_row(r))
            .collect();
        if !rows.is_empty() {
            let _ = writeln!(o, "{title}:\n");
            table(&mut o, runs, &rows);
            let _ = writeln!(o);
        }
    }
    let _ = writeln!(o, "Ratios (medians; each against a row of its own bed):\n");
    for (label, a, b, m, what) in PAIRS {
        if let Some(r) = ratio(runs, a, b, *m) {
            let _ = writeln!(o, "- {what}: {label} = **{r:.2}×**");
        }
    }
    o
}

/// The markdown table of `rows`.
fn table(o: &mut String, runs: &Runs, rows: &[&(&str, &str)]) {
    let _ = writeln!(
        o,
        "| path | TCP 1 stream Gbit/s | retr | TCP 4 streams Gbit/s | retr | 64 B UDP kpps delivered | CPU ns/pkt | latency p50 µs | p99 µs | ping µs | CPU s per Gbit |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|");
    for (row, label) in rows {
        let _ = writeln!(
            o,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(runs.get(row, TCP1), 2),
            cell(runs.get(row, TCP1_RETR), 0),
            cell(runs.get(row, TCP4), 2),
            cell(runs.get(row, TCP4_RETR), 0),
            cell(runs.get(row, PPS), 0),
            cell(runs.get(row, PPS_CPU), 0),
            cell(runs.get(row, P50), 0),
            cell(runs.get(row, P99), 0),
            cell(runs.get(row, PING), 0),
            cell(runs.get(row, TCP1_CPU), 2),
        );
    }
}

/// Grouped horizontal bars, one panel per measure.
fn chart(runs: &Runs) -> String {
    let panels: &[(&str, Measure)] = &[
        ("TCP pod→pod, 1 stream (Gbit/s)", TCP1),
        ("TCP pod→pod, 4 streams (Gbit/s)", TCP4),
        ("64-byte UDP delivered (kpps)", PPS),
        ("latency p50 (µs, lower is better)", P50),
    ];
    let rows: Vec<(&str, &str)> = ROWS
        .iter()
        .copied()
        .filter(|(r, _)| runs.has_row(r))
        .collect();
    let bar_h = 18.0;
    let label_w = 330.0;
    let plot_w = 360.0;
    let panel_h = 40.0 + bar_h * rows.len() as f64 + 10.0;
    let width = label_w + plot_w + 90.0;
    let height = 50.0 + panel_h * panels.len() as f64;
    let colors = [
        "#7f7f7f", "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#8c564b", "#2ca02c", "#d62728",
        "#17becf", "#98df8a", "#ff9896", "#9467bd", "#c5b0d5",
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="24" font-size="16" font-weight="bold">podfwd vs the kernel, namespace test beds (medians)</text>"#
    );
    for (pi, (title, m)) in panels.iter().enumerate() {
        let y0 = 50.0 + panel_h * pi as f64;
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-weight="bold">{title}</text>"#,
            y0 + 14.0
        );
        let max = rows
            .iter()
            .filter_map(|(r, _)| runs.get(r, *m).map(|x| x.max))
            .fold(0.0_f64, f64::max);
        for (ri, (row, label)) in rows.iter().enumerate() {
            let y = y0 + 24.0 + bar_h * ri as f64;
            let _ = writeln!(s, r#"<text x="10" y="{}">{label}</text>"#, y + 13.0);
            if let Some(st) = runs.get(row, *m) {
                let w = if max > 0.0 {
                    st.median / max * plot_w
                } else {
                    0.0
                };
                let color =
                    colors[ROWS.iter().position(|(r, _)| r == row).unwrap_or(0) % colors.len()];
                let _ = writeln!(
                    s,
                    r#"<rect x="{label_w}" y="{}" width="{w:.1}" height="{}" fill="{color}"/>"#,
                    y + 2.0,
                    bar_h - 4.0
                );
                if st.n > 1 && max > 0.0 {
                    let (x1, x2) = (
                        label_w + st.min / max * plot_w,
                        label_w + st.max / max * plot_w,
                    );
                    let _ = writeln!(
                        s,
                        r#"<line x1="{x1:.1}" x2="{x2:.1}" y1="{}" y2="{}" stroke="black"/>"#,
                        y + bar_h / 2.0,
                        y + bar_h / 2.0
                    );
                }
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{}">{:.prec$}</text>"#,
                    label_w + w + 6.0,
                    y + 13.0,
                    st.median,
                    prec = if m.field == "gbps" { 2 } else { 0 }
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// What `--check-nonzero` requires of every podfwd row, with the unit to name.
const MUST_MOVE: &[(Measure, &str)] = &[(TCP1, "Gbit/s"), (TCP4, "Gbit/s"), (PPS, "kpps")];

/// A row measured through podfwd (in either bed).
fn is_podfwd(row: &str) -> bool {
    row.starts_with("podfwd") || row.starts_with("routed-podfwd")
}

/// `--check-nonzero`: every podfwd row ([`is_podfwd`]) has, in every
/// repetition, a [`MUST_MOVE`] value above zero, and has each of those tests at all.
/// Returns how many values were checked, or one line per problem (row, rep, test).
fn check_nonzero(text: &str) -> Result<usize, Vec<String>> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut checked = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| vec![format!("line {}: {e}", i + 1)])?;
        let (Some(row), Some(test)) = (v["row"].as_str(), v["test"].as_str()) else {
            return Err(vec![format!("line {}: no row or test", i + 1)]);
        };
        if !is_podfwd(row) {
            continue;
        }
        let tests = seen.entry(row.to_owned()).or_default();
        let Some((m, unit)) = MUST_MOVE.iter().find(|(m, _)| m.test == test) else {
            continue;
        };
        tests.insert(m.test);
        checked += 1;
        let rep = &v["rep"];
        match v[m.field].as_f64() {
            Some(x) if x > 0.0 => {}
            Some(x) => problems.push(format!(
                "row {row} rep {rep}: test {test} measured {x} {unit} ({} = {x}, line {})",
                m.field,
                i + 1
            )),
            None => problems.push(format!(
                "row {row} rep {rep}: test {test} has no {} value (line {})",
                m.field,
                i + 1
            )),
        }
    }
    if seen.is_empty() {
        problems.push("no podfwd row in the runs: nothing was measured through podfwd".into());
    }
    for (row, tests) in &seen {
        for (m, _) in MUST_MOVE {
            if !tests.contains(m.test) {
                problems.push(format!("row {row}: no {} result at all", m.test));
            }
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(problems)
    }
}

/// The command line.
#[derive(Debug)]
struct Args {
    input: Option<String>,
    out: Option<String>,
    machine: String,
    command: String,
    pods: Option<String>,
    check: bool,
}

impl Args {
    fn parse(args: &[String]) -> Self {
        let mut a = Args {
            input: None,
            out: None,
            machine: String::from("(not given)"),
            command: String::from("bench/compare"),
            pods: None,
            check: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--check-nonzero" => a.check = true,
                "--out" => a.out = it.next().cloned(),
                "--machine" => a.machine = it.next().cloned().unwrap_or_default(),
                "--command" => a.command = it.next().cloned().unwrap_or_default(),
                "--pods" => a.pods = it.next().cloned(),
                other => a.input = Some(other.to_owned()),
            }
        }
        a
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Args {
        input,
        out,
        machine,
        command,
        pods,
        check,
    } = Args::parse(&args);
    let Some(input) = input else {
        eprintln!(
            "usage: podfwd-report RUNS.jsonl --out DIR [--machine TEXT] [--command TEXT] [--pods TEXT]\n       \
             podfwd-report --check-nonzero RUNS.jsonl"
        );
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check {
        return match check_nonzero(&text) {
            Ok(n) => {
                println!("{input}: all {n} podfwd TCP and pps measurements are above zero");
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for p in &problems {
                    eprintln!("error: {input}: {p}");
                }
                ExitCode::FAILURE
            }
        };
    }
    let runs = match Runs::parse(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let md = report(&runs, &machine, &command, pods.as_deref());
    print!("{md}");
    if let Some(dir) = out {
        let svg = chart(&runs);
        for (name, body) in [("results.md", &md), ("chart.svg", &svg)] {
            let path = std::path::Path::new(&dir).join(name);
            if let Err(e) = std::fs::write(&path, body) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNS: &str = r#"{"row":"kernel-native","rep":1,"test":"tcp1","gbps":2.0,"retransmits":0}
{"row":"kernel-native","rep":2,"test":"tcp1","gbps":4.0,"retransmits":2}
{"row":"kernel-native","rep":3,"test":"tcp1","gbps":3.0,"retransmits":1}
{"row":"podfwd-native","rep":1,"test":"tcp1","gbps":1.5,"retransmits":0}
{"row":"kernel-native","rep":1,"test":"udp64","kpps":100.0}
{"row":"podfwd-native","rep":1,"test":"udp64","kpps":250.0}
"#;

    #[test]
    fn medians_spreads_and_ratios() {
        let r = Runs::parse(RUNS).unwrap();
        let s = r.get("kernel-native", TCP1).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 2.0, 4.0, 3));
        let md = report(&r, "m", "c", None);
        assert!(!md.contains("Pods:"), "no --pods, no line: {md}");
        assert!(
            md.contains("| kernel native routing, default offloads | 3.00 (2.00–4.00) | 1 (0–2) |"),
            "{md}"
        );
        assert!(
            md.contains(
                "- TCP 1 stream: podfwd native / kernel native (default offloads) = **0.50×**"
            ),
            "{md}"
        );
        assert!(
            md.contains("- 64 B pps: podfwd native / kernel native = **2.50×**"),
            "{md}"
        );
        assert!(
            !md.contains("podfwd tunnel"),
            "no tunnel rows were given: {md}"
        );
    }

    #[test]
    fn checksum_rows_are_compared_with_each_other() {
        let runs = r#"{"row":"podfwd-native-csum-offload","rep":1,"test":"tcp1","gbps":1.2}
{"row":"podfwd-native-csum-offload","rep":1,"test":"tcp1","gbps":1.0}
{"row":"podfwd-native-csum-sw","rep":1,"test":"tcp1","gbps":1.0}
{"row":"podfwd-native-csum-sw","rep":1,"test":"tcp1","gbps":0.8}
"#;
        let md = report(&Runs::parse(runs).unwrap(), "m", "c", None);
        assert!(
            md.contains("| podfwd native, checksum offload (TX metadata) | 1.10 (1.00–1.20) |"),
            "{md}"
        );
        assert!(
            md.contains("- podfwd native, TCP 1 stream: checksum offload / checksums in software = **1.22×**"),
            "{md}"
        );
        assert!(!md.contains("podfwd tunnel"), "{md}");
    }

    const MIXED: &str = r#"{"row":"kernel-native","rep":1,"test":"tcp1","gbps":4.0}
{"row":"podfwd-native","rep":1,"test":"tcp1","gbps":2.0}
{"row":"routed-kernel","rep":1,"test":"tcp1","gbps":2.0}
{"row":"routed-podfwd-native","rep":1,"test":"tcp1","gbps":1.0}
{"row":"routed-podfwd-hybrid","rep":1,"test":"tcp1","gbps":0.5}
{"row":"routed-podfwd-hybrid-onlink","rep":1,"test":"tcp1","gbps":1.5}
"#;

    #[test]
    fn routed_rows_get_their_own_table_and_the_routed_kernel_as_baseline() {
        let md = report(&Runs::parse(MIXED).unwrap(), "m", "c", None);
        // Against routed-kernel (2.0), not kernel-native (4.0).
        for want in [
            "- TCP 1 stream: routed: podfwd native / kernel = **0.50×**",
            "- TCP 1 stream: routed: podfwd hybrid a0→b0 / kernel = **0.25×**",
            "- TCP 1 stream: routed: podfwd hybrid a0→d0 (one subnet, no router) / kernel (through the router) = **0.75×**",
            "- TCP 1 stream: routed: podfwd hybrid a0→d0 (native) / a0→b0 (VXLAN) = **3.00×**",
            // The two-node bed's ratio still against its own kernel row.
            "- TCP 1 stream: podfwd native / kernel native (default offloads) = **0.50×**",
        ] {
            assert!(md.contains(want), "{want}\n{md}");
        }
        assert!(!md.contains("tunnel"), "no tunnel rows were given: {md}");
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s}\n{md}"));
        let (l2, routed) = (at("\n\nTwo-node bed"), at("\n\nRouted bed"));
        assert!(l2 < at("| podfwd native |") && at("| podfwd native |") < routed);
        assert!(routed < at("| routed: kernel, static routes via the router | 2.00 |"));
        assert!(at("| routed: podfwd hybrid a0→d0 on-link (native) | 1.50 |") < at("Ratios"));
        // Only the routed bed: no two-node table.
        let only = report(
            &Runs::parse(&MIXED[MIXED.find("{\"row\":\"routed").unwrap()..]).unwrap(),
            "m",
            "c",
            None,
        );
        assert!(
            !only.contains("Two-node bed") && only.contains("Routed bed"),
            "{only}"
        );
    }

    #[test]
    fn check_nonzero_judges_the_routed_podfwd_rows_too() {
        let runs = "{\"row\":\"routed-kernel\",\"rep\":1,\"test\":\"udp64\",\"kpps\":0}\n\
                    {\"row\":\"routed-podfwd-hybrid\",\"rep\":1,\"test\":\"tcp1\",\"gbps\":1.0}\n\
                    {\"row\":\"routed-podfwd-hybrid\",\"rep\":1,\"test\":\"tcp4\",\"gbps\":1.0}\n\
                    {\"row\":\"routed-podfwd-hybrid\",\"rep\":1,\"test\":\"udp64\",\"kpps\":0}\n";
        assert_eq!(
            check_nonzero(runs).unwrap_err(),
            ["row routed-podfwd-hybrid rep 1: test udp64 measured 0 kpps (kpps = 0, line 4)"],
            "the routed kernel row's 0 is not podfwd's to judge"
        );
    }

    #[test]
    fn says_how_the_pods_were_made() {
        let r = Runs::parse(RUNS).unwrap();
        let md = report(&r, "m", "c", Some("podfwd rows: CNI plugin"));
        assert!(
            md.starts_with("Machine: m  \nCommand: `c`  \nPods: podfwd rows: CNI plugin  \n"),
            "{md}"
        );
    }

    #[test]
    fn options_in_any_order() {
        let a = Args::parse(&["--pods", "cni", "runs.jsonl", "--out", "d"].map(String::from));
        assert_eq!(
            (
                a.input.as_deref(),
                a.out.as_deref(),
                a.pods.as_deref(),
                a.check
            ),
            (Some("runs.jsonl"), Some("d"), Some("cni"), false)
        );
        assert_eq!(a.command, "bench/compare");
    }

    #[test]
    fn xdp_reference_row_is_shown_and_compared_with_its_baselines() {
        let runs = r#"{"row":"kernel-native-tso-off","rep":1,"test":"tcp1","gbps":4.0}
{"row":"kernel-native-tso-off","rep":1,"test":"udp64","kpps":400.0}
{"row":"xdp-fwd","rep":1,"test":"tcp1","gbps":2.0}
{"row":"xdp-fwd","rep":1,"test":"udp64","kpps":800.0}
{"row":"podfwd-native","rep":1,"test":"tcp1","gbps":1.0}
{"row":"podfwd-native","rep":1,"test":"udp64","kpps":200.0}
"#;
        let r = Runs::parse(runs).unwrap();
        let md = report(&r, "m", "c", None);
        let lines: Vec<&str> = md.lines().collect();
        let at = |label: &str| lines.iter().position(|l| l.starts_with(label));
        let (tso_off, xdp, podfwd) = (
            at("| kernel native routing, pod TSO off |").expect("kernel row"),
            at("| reference: kernel XDP forwarding (fib lookup + redirect), pod TSO off | 2.00 |")
                .expect("xdp row"),
            at("| podfwd native |").expect("podfwd row"),
        );
        assert!(
            tso_off < xdp && xdp < podfwd,
            "kernel rows, then the reference, then podfwd: {md}"
        );
        for want in [
            "- TCP 1 stream: XDP forwarding / kernel native (pod TSO off, equal offloads) = **0.50×**",
            "- 64 B pps: XDP forwarding / kernel native (pod TSO off) = **2.00×**",
            "- TCP 1 stream: podfwd native / XDP forwarding (the XDP bound) = **0.50×**",
            "- 64 B pps: podfwd native / XDP forwarding (the XDP bound) = **0.25×**",
        ] {
            assert!(md.contains(want), "{want} missing: {md}");
        }
        // The reference row is not podfwd's: --check-nonzero ignores its zeros.
        let zero_xdp = runs.replace(r#""gbps":2.0"#, r#""gbps":0.0"#);
        assert!(check_nonzero(&zero_xdp)
            .unwrap_err()
            .iter()
            .all(|p| !p.contains("xdp-fwd")));
    }

    #[test]
    fn chart_has_a_bar_per_row_and_panel() {
        let r = Runs::parse(RUNS).unwrap();
        let svg = chart(&r);
        assert!(svg.starts_with("<svg"));
        // Two rows have tcp1, two have udp64: four bars.
        assert_eq!(svg.matches("<rect x=").count(), 4);
    }

    #[test]
    fn check_nonzero_passes_a_run_where_podfwd_moved_traffic() {
        let good = include_str!("../fixtures/smoke-good.jsonl");
        // Two podfwd rows, three measures each.
        assert_eq!(check_nonzero(good), Ok(6));
    }

    #[test]
    fn check_nonzero_names_the_podfwd_row_and_test_that_measured_zero() {
        let zero = include_str!("../fixtures/smoke-zero.jsonl");
        let problems = check_nonzero(zero).unwrap_err();
        assert_eq!(
            problems,
            [
                "row podfwd-native rep 1: test tcp4 measured 0 Gbit/s (gbps = 0, line 7)",
                "row podfwd-tunnel rep 1: test udp64 measured 0 kpps (kpps = 0, line 13)",
            ],
            "the kernel row's 0 is not podfwd's to judge"
        );
    }

    #[test]
    fn check_nonzero_wants_podfwd_rows_with_every_measure() {
        let only_kernel = r#"{"row":"kernel-native","rep":1,"test":"tcp1","gbps":2.0}"#;
        assert_eq!(
            check_nonzero(only_kernel).unwrap_err(),
            ["no podfwd row in the runs: nothing was measured through podfwd"]
        );
        let no_udp = "{\"row\":\"podfwd-native\",\"rep\":1,\"test\":\"tcp1\",\"gbps\":2.0}\n\
                      {\"row\":\"podfwd-native\",\"rep\":1,\"test\":\"tcp4\",\"gbps\":null}\n";
        assert_eq!(
            check_nonzero(no_udp).unwrap_err(),
            [
                "row podfwd-native rep 1: test tcp4 has no gbps value (line 2)",
                "row podfwd-native: no udp64 result at all",
            ]
        );
    }

    #[test]
    fn bad_line_is_reported_with_its_number() {
        let err = Runs::parse("{\"row\":\"a\",\"test\":\"tcp1\"}\nnot json\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }
}
