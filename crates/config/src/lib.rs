//! Per-node configuration of podfwd: the YAML file (see `config/README.md`), its
//! checks, and the resolved [`Config`] the agent runs from.
//!
//! Every problem is reported as a [`ConfigError`] with file, line, column, the
//! field's path and how to fix it. Values are read with `serde-saphyr`, whose
//! `Spanned<T>` keeps each value's place in the file, so checks that involve several
//! fields (overlapping PodCIDRs, duplicate addresses) point at the right line too.
#![forbid(unsafe_code)]

mod error;
mod raw;
mod validate;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use ipnet::Ipv4Net;
use serde::Serialize;

pub use error::ConfigError;

/// Pods' default gateway when `gateway` is not given (link-local, as Calico does).
pub const DEFAULT_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// VXLAN UDP port when not given: the Linux kernel / flannel / Cilium default.
pub const DEFAULT_VXLAN_PORT: u16 = 8472;
/// VXLAN network identifier when not given.
pub const DEFAULT_VNI: u32 = 1;
/// Largest VNI: the field is 24 bits (RFC 7348 section 5).
pub const MAX_VNI: u32 = (1 << 24) - 1;
/// Most workers a node may run.
pub const MAX_WORKERS: usize = 16;
/// Most local endpoints: the XDP program's interface table holds 64 interfaces, the
/// uplink and one veth per pod.
pub const MAX_ENDPOINTS: usize = 511;
/// UMEM frames per worker when not given.
pub const DEFAULT_FRAMES: u32 = 16384;
/// Fewest UMEM frames per worker: enough to fill the rings of a few sockets.
pub const MIN_UMEM_FRAMES: u32 = 512;
/// Most UMEM frames per worker (4 GiB of 4096-byte frames).
pub const MAX_UMEM_FRAMES: u32 = 1 << 20;
/// UMEM frame size when not given.
pub const DEFAULT_FRAME_SIZE: u32 = 4096;
/// Metrics listen address when not given.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9475";
/// The root-only control socket (reload, endpoints) when not given.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/podfwd/podfwd.sock";
/// Kernel interface-name buffer size, NUL included: names have at most 15 bytes.
pub const IFNAMSIZ: usize = 16;
/// Where the kernel lists online CPUs; `workers.cpus` must be among them.
pub const ONLINE_CPUS_PATH: &str = "/sys/devices/system/cpu/online";

/// The dataplane's own mode type: `mode: tunnel|native` in the file.
pub use route::Mode;

/// Writes a [`Mode`] as its config name (route has no serde).
fn serialize_mode<S: serde::Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.as_str())
}

/// A node's resolved configuration. Built only by [`Config::parse`] / [`Config::load`],
/// so every invariant listed in `config/README.md` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub node: NodeConfig,
    #[serde(serialize_with = "serialize_mode")]
    pub mode: Mode,
    pub cluster_cidr: Ipv4Net,
    /// Pods' default gateway; outside `cluster_cidr`.
    pub gateway: Ipv4Addr,
    /// Used in tunnel mode; checked in both.
    pub vxlan: VxlanConfig,
    /// Local pods, in file order.
    pub endpoints: Vec<EndpointConfig>,
    /// Remote nodes, in file order.
    pub nodes: Vec<RemoteNodeConfig>,
    pub workers: WorkersConfig,
    pub umem: UmemConfig,
    pub metrics: MetricsConfig,
    /// The local control API.
    pub control: ControlConfig,
    /// PodCIDRs learned from a routing engine.
    pub routes: RoutesConfig,
    /// Kernel offloads podfwd's transmits use.
    pub offload: OffloadConfig,
    /// The file path (or source name) used in messages.
    pub source: String,
}

/// This node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeConfig {
    pub name: String,
    /// Underlay address (outside `cluster_cidr`).
    pub ip: Ipv4Addr,
    /// Underlay interface in the node's network namespace.
    pub uplink: String,
    /// This node's PodCIDR (inside `cluster_cidr`, host bits clear).
    pub pod_cidr: Ipv4Net,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VxlanConfig {
    /// UDP destination port, 1..=65535.
    pub port: u16,
    /// VXLAN network identifier, 1..=2^24-1.
    pub vni: u32,
}

impl Default for VxlanConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_VXLAN_PORT,
            vni: DEFAULT_VNI,
        }
    }
}

/// A local pod: its IP and the host side of its veth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointConfig {
    pub ip: Ipv4Addr,
    pub interface: String,
}

/// Another node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteNodeConfig {
    pub name: String,
    /// Underlay address (outside `cluster_cidr`).
    pub ip: Ipv4Addr,
    pub pod_cidr: Ipv4Net,
    /// The node's VTEP MAC: the inner destination MAC of frames tunnelled to it. Needed
    /// only when that node decapsulates with the kernel's VXLAN device (flannel's
    /// `VtepMAC`); podfwd on the far side rewrites the inner L2 itself.
    pub vtep_mac: Option<[u8; 6]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkersConfig {
    /// 1..=[`MAX_WORKERS`].
    pub count: usize,
    /// One distinct online CPU per worker, or `None` to let the kernel place them.
    pub cpus: Option<Vec<usize>>,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            count: 1,
            cpus: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UmemConfig {
    /// Frames per worker: a power of two in [`MIN_UMEM_FRAMES`]..=[`MAX_UMEM_FRAMES`].
    pub frames: u32,
    /// 2048 or 4096.
    pub frame_size: u32,
}

impl Default for UmemConfig {
    fn default() -> Self {
        Self {
            frames: DEFAULT_FRAMES,
            frame_size: DEFAULT_FRAME_SIZE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

/// PodCIDR routes a routing engine (BIRD, FRR) installs into a kernel table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RoutesConfig {
    /// The kernel routing table to follow: each route `PodCIDR via NODE-IP` in it makes
    /// NODE-IP the owner of PodCIDR (a remote node), live. `None`: only `nodes:`.
    pub table: Option<u32>,
}

/// Kernel offloads podfwd's transmits use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OffloadConfig {
    /// Partial TCP/UDP checksums: left to the kernel's checksum offload (AF_XDP TX
    /// metadata) or completed in software.
    pub tx_checksum: TxChecksum,
    /// Frames larger than one UMEM frame (pods or underlay with a jumbo MTU) as AF_XDP
    /// descriptor chains (`XDP_USE_SG`, Linux 6.6+) and an `xdp.frags` steering
    /// program.
    pub multi_buffer: Switch,
}

/// A kernel feature setting under `offload:`: `auto`, `on` or `off`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// Use it where the kernel has it; go without elsewhere.
    #[default]
    Auto,
    /// Use it, or podfwd does not start.
    On,
    /// Do not use it.
    Off,
}

/// `offload.tx_checksum`: `auto` is the kernel's offload where it has AF_XDP TX metadata
/// (Linux 6.11+) and the sockets are in copy mode, software elsewhere; `off` completes
/// every partial checksum in podfwd.
pub type TxChecksum = Switch;

impl Switch {
    /// The config name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            TxChecksum::Auto => "auto",
            TxChecksum::On => "on",
            TxChecksum::Off => "off",
        }
    }

    /// From its config name (`auto`, `on`, `off`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<TxChecksum> {
        match name {
            "auto" => Some(TxChecksum::Auto),
            "on" => Some(TxChecksum::On),
            "off" => Some(TxChecksum::Off),
            _ => None,
        }
    }
}

/// The local control API: a unix socket only root can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlConfig {
    /// Its path (an absolute path; the directory is created 0700).
    pub socket: std::path::PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            socket: DEFAULT_CONTROL_SOCKET.into(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9475)),
        }
    }
}

impl Config {
    /// Reads and checks the file at `path`; the first problem (in file order) is returned.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_all(path).map_err(first)
    }

    /// Checks `text`; `source` names it in messages. The first problem (in file order)
    /// is returned. `workers.cpus` is checked against this machine's online CPUs.
    pub fn parse(text: &str, source: &str) -> Result<Config, ConfigError> {
        Self::parse_all(text, source).map_err(first)
    }

    /// Like [`Config::load`], but returns every semantic problem, in file order.
    /// (A syntax or structure error stops reading, so it comes alone.)
    pub fn load_all(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                source: source.clone(),
                line: None,
                column: None,
                field: String::new(),
                message: format!("cannot read the config file: {e}"),
            }]
        })?;
        Self::parse_all(&text, &source)
    }

    /// Like [`Config::parse`], but returns every semantic problem, in file order.
    pub fn parse_all(text: &str, source: &str) -> Result<Config, Vec<ConfigError>> {
        Self::parse_with_cpus(text, source, online_cpus().as_deref())
    }

    /// Like [`Config::parse_all`], with the set of online CPUs given
    /// (`None`: do not check `workers.cpus` against the machine).
    pub fn parse_with_cpus(
        text: &str,
        source: &str,
        online_cpus: Option<&[usize]>,
    ) -> Result<Config, Vec<ConfigError>> {
        if is_blank(text) {
            return Err(vec![ConfigError {
                source: source.to_owned(),
                line: None,
                column: None,
                field: String::new(),
                message: "the file is empty: write this node's config (examples in config/, e.g. config/node-a.tunnel.yaml)".to_owned(),
            }]);
        }
        let mut path = None;
        let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize::<_, raw::RawConfig>(de).map_err(|e| {
                path = Some(e.path().clone());
                e.into_inner()
            })
        });
        let raw = parsed.map_err(|e| vec![error::from_yaml(source, path.as_ref(), &e)])?;
        validate::validate(&raw, source, online_cpus)
    }
}

/// This machine's online CPUs (from [`ONLINE_CPUS_PATH`]), or `None` if unreadable.
pub fn online_cpus() -> Option<Vec<usize>> {
    validate::parse_cpu_list(&std::fs::read_to_string(ONLINE_CPUS_PATH).ok()?)
}

fn first(mut errors: Vec<ConfigError>) -> ConfigError {
    // Never empty: every Err carries at least one error.
    errors.swap_remove(0)
}

/// Only whitespace, comments and document markers: nothing to read.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}
