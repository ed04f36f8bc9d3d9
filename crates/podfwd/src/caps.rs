//! The capabilities `podfwd run` needs, checked before anything is touched.
//!
//! Measured on Linux 6.18 by running podfwd with one capability dropped at a time
//! (`crates/podfwd/tests/caps.rs`, docs/running.md "Installing on a node"):
//! - `CAP_BPF`: `bpf(BPF_PROG_LOAD)` and `bpf(BPF_MAP_CREATE)` at all (without it libbpf
//!   cannot load even its probe program: EPERM);
//! - `CAP_PERFMON`: the verifier refuses the steering program's variable-offset packet
//!   pointer arithmetic (`udp = iph + ihl * 4`) without it ("pointer arithmetic with it
//!   prohibited for !root", EACCES): Spectre v1 hardening applies to non-perfmon loaders;
//! - `CAP_NET_ADMIN`: creating the XSKMAP (EPERM), detaching a stale netlink-attached
//!   program (RTM_SETLINK, EPERM), busy-poll socket options;
//! - `CAP_NET_RAW`: `socket(AF_XDP)` (net/xdp/xsk.c `xsk_create`);
//! - `CAP_IPC_LOCK`: `XDP_UMEM_REG` pins the UMEM and charges it to the user's
//!   `RLIMIT_MEMLOCK` unless the caller has it (net/xdp/xdp_umem.c
//!   `xdp_umem_account_pages`, ENOBUFS) — not memcg-accounted, unlike BPF maps since 5.11.
//!   An unlimited (or large enough) `RLIMIT_MEMLOCK` replaces it.
//!
//! `CAP_SYS_ADMIN` passes every check of `CAP_BPF` and `CAP_PERFMON` (the kernel's
//! pre-5.8 fallback) and is accepted in their place, but is not needed. The
//! capabilities are read from `/proc/self/status` (`CapEff`) and the memlock limit from
//! `/proc/self/limits`, so this module needs no `unsafe`.

use podfwd_config::Config;

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Every capability `podfwd run` checks for, with what it is for, in message order.
pub const REQUIRED: [(&str, &str); 5] = [
    ("CAP_BPF", "load the XDP program and its maps"),
    (
        "CAP_PERFMON",
        "let the verifier accept its packet pointer arithmetic",
    ),
    (
        "CAP_NET_ADMIN",
        "create the XSKMAP, detach stale XDP programs",
    ),
    ("CAP_NET_RAW", "AF_XDP sockets"),
    ("CAP_IPC_LOCK", "pin the UMEM"),
];

/// Refuse to start, naming what is missing, unless this process holds every capability
/// in [`REQUIRED`] (or its stand-in: `CAP_SYS_ADMIN` for `CAP_BPF` and `CAP_PERFMON`, a sufficient
/// `RLIMIT_MEMLOCK` for `CAP_IPC_LOCK`). If `/proc/self/status` cannot be read the check
/// is skipped with a warning and the kernel's own errors speak later.
///
/// # Errors
/// The message lists the required set, the missing ones and how to grant them.
pub fn check(cfg: &Config) -> Result<(), String> {
    let eff = match std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| cap_eff(&s))
    {
        Some(eff) => eff,
        None => {
            log::warn!("cannot read CapEff from /proc/self/status: capabilities not checked");
            return Ok(());
        }
    };
    let umem_bytes = u64::from(cfg.umem.frames)
        * u64::from(cfg.umem.frame_size)
        * u64::try_from(cfg.workers.count).unwrap_or(u64::MAX);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let missing = missing(eff, memlock(&limits), umem_bytes);
    if missing.is_empty() {
        return Ok(());
    }
    Err(message(&missing))
}

/// The message for the `missing` (name, why) pairs.
fn message(missing: &[(&str, String)]) -> String {
    let needs: Vec<String> = REQUIRED
        .iter()
        .map(|(cap, why)| format!("{cap} ({why})"))
        .collect();
    let missing: Vec<String> = missing
        .iter()
        .map(|(cap, why)| format!("{cap} ({why})"))
        .collect();
    let names: Vec<&str> = REQUIRED.iter().map(|(cap, _)| *cap).collect();
    let short: Vec<&str> = names.iter().map(|c| &c[4..]).collect();
    format!(
        "podfwd needs {}; missing: {}. Run it as root or grant them (systemd: AmbientCapabilities={}, Kubernetes: securityContext.capabilities.add: [{}]); see docs/running.md",
        needs.join(", "),
        missing.join(", "),
        names.join(" "),
        short.join(", ")
    )
}

/// Which of [`REQUIRED`] `eff` lacks, given the memlock limit `(soft, hard)` (`None`:
/// unlimited) and the bytes of UMEM the workers will pin.
fn missing(
    eff: u64,
    memlock: (Option<u64>, Option<u64>),
    umem_bytes: u64,
) -> Vec<(&'static str, String)> {
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    let why = |i: usize| REQUIRED[i].1.to_owned();
    let mut out = Vec::new();
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        out.push((REQUIRED[0].0, why(0)));
    }
    if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
        out.push((REQUIRED[1].0, why(1)));
    }
    if !has(CAP_NET_ADMIN) {
        out.push((REQUIRED[2].0, why(2)));
    }
    if !has(CAP_NET_RAW) {
        out.push((REQUIRED[3].0, why(3)));
    }
    // The xsk crate raises the soft limit to unlimited, which works when the hard limit
    // is unlimited or with CAP_SYS_RESOURCE; otherwise the soft limit is what counts.
    let (soft, hard) = memlock;
    let enough = has(CAP_SYS_RESOURCE) || hard.is_none() || soft.is_none_or(|s| s >= umem_bytes);
    if !has(CAP_IPC_LOCK) && !enough {
        let limit = soft.map_or_else(|| "unlimited".to_owned(), mib);
        out.push((
            REQUIRED[4].0,
            format!(
                "pin the UMEM: {} for the workers, RLIMIT_MEMLOCK is {limit}; or raise the limit, e.g. LimitMEMLOCK=infinity",
                mib(umem_bytes)
            ),
        ));
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// The `CapEff:` bit mask of a `/proc/PID/status` text.
fn cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// `(soft, hard)` of "Max locked memory" in a `/proc/PID/limits` text, `None` for
/// unlimited; both unlimited if the line is absent (nothing to say then).
fn memlock(limits: &str) -> (Option<u64>, Option<u64>) {
    let Some(rest) = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max locked memory"))
    else {
        return (None, None);
    };
    let mut f = rest.split_whitespace().map(|v| v.parse::<u64>().ok());
    (f.next().flatten(), f.next().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: u64 = 0x0000_01ff_ffff_ffff;
    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn reads_cap_eff_and_memlock() {
        let status = "Name:\tpodfwd\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        assert_eq!(cap_eff(status), Some(0x0000_01ff_feff_ffff));
        assert_eq!(memlock(LIMITS), (Some(8_388_608), Some(8_388_608)));
        let unl = "Max locked memory         unlimited            unlimited            bytes\n";
        assert_eq!(memlock(unl), (None, None));
    }

    #[test]
    fn full_root_and_exact_set_pass() {
        let lim = memlock(LIMITS);
        assert!(missing(FULL, lim, 64 << 20).is_empty());
        let exact = (1 << CAP_BPF)
            | (1 << CAP_PERFMON)
            | (1 << CAP_NET_ADMIN)
            | (1 << CAP_NET_RAW)
            | (1 << CAP_IPC_LOCK);
        assert!(missing(exact, lim, 64 << 20).is_empty());
    }

    #[test]
    fn each_missing_one_is_named() {
        let lim = memlock(LIMITS);
        for (i, cap) in [
            CAP_BPF,
            CAP_PERFMON,
            CAP_NET_ADMIN,
            CAP_NET_RAW,
            CAP_IPC_LOCK,
        ]
        .into_iter()
        .enumerate()
        {
            let eff = FULL & !(1 << cap) & !(1 << CAP_SYS_ADMIN) & !(1 << CAP_SYS_RESOURCE);
            let m = missing(eff, lim, 64 << 20);
            assert_eq!(m.len(), 1, "{m:?}");
            assert_eq!(m[0].0, REQUIRED[i].0);
        }
    }

    #[test]
    fn stand_ins() {
        let base = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW);
        let lim = memlock(LIMITS);
        // CAP_SYS_ADMIN passes the kernel's CAP_BPF and CAP_PERFMON checks.
        let m = missing(base | (1 << CAP_SYS_ADMIN), lim, 1 << 20);
        assert!(m.is_empty(), "{m:?}");
        // A memlock limit that holds the UMEM replaces CAP_IPC_LOCK; one that does not
        // says both sizes.
        let bpf = base | (1 << CAP_BPF) | (1 << CAP_PERFMON);
        let m = missing(bpf, (None, None), 64 << 20);
        assert!(m.is_empty());
        let m = missing(bpf, (Some(8 << 20), None), 64 << 20);
        assert!(m.is_empty(), "an unlimited hard limit is raised to");
        let m = missing(bpf, lim, 64 << 20);
        assert_eq!(m[0].0, "CAP_IPC_LOCK");
        assert!(
            m[0].1.contains("64 MiB") && m[0].1.contains("8 MiB"),
            "{}",
            m[0].1
        );
    }

    #[test]
    fn message_names_all_and_the_missing() {
        let text = message(&[("CAP_NET_RAW", "AF_XDP sockets".to_owned())]);
        assert!(
            text.starts_with(
                "podfwd needs CAP_BPF (load the XDP program and its maps), CAP_PERFMON"
            ),
            "{text}"
        );
        assert!(
            text.contains("; missing: CAP_NET_RAW (AF_XDP sockets). Run it as root"),
            "{text}"
        );
        assert!(text.contains(
            "AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK"
        ));
        assert!(text.contains("capabilities.add: [BPF, PERFMON, NET_ADMIN, NET_RAW, IPC_LOCK]"));
    }
}
