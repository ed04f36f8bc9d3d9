//! Loads podfwd's XDP steering program (`xdp-prog/podfwd.bpf.c`), attaches it
//! to interfaces through bpf_links and fills its maps.
//!
//! Contract:
//! - [`Steering::load`] loads the program and writes the config; nothing is
//!   attached yet.
//! - [`Steering::attach`] attaches through a bpf_link: holding the link is
//!   being attached; dropping it (or the process dying) detaches. Native
//!   (driver) mode first, generic (SKB) mode as a logged fallback. A stale
//!   netlink-attached program on the interface is detached first.
//! - AF_XDP sockets are registered per (interface, queue) into the XSKMAP at
//!   key `slot * 16 + queue`; the slot is assigned here, per interface.
//! - Frames with no socket on their queue fall back to XDP_PASS (counted as
//!   `redirect_failed`), so an agent that has not registered a socket yet, or
//!   has died, never blackholes traffic.
//!
//! Map values are written as bytes at fixed offsets (never by casting structs);
//! [`Steering::load`] checks the value sizes the loaded object declares (from its
//! BTF) against those layouts, so a C struct change that the loader does not follow
//! is refused at start-up instead of silently misread.
//!
//! No `unsafe` here: the FFI this crate needs (`bpf_link_create` with mode flags,
//! `bpf_xdp_query`, `bpf_xdp_detach`, `if_nametoindex`) lives in `xsk::xdp_attach`,
//! and build.rs compiles the object without generating a skeleton (a generated
//! skeleton is `unsafe` code).
#![forbid(unsafe_code)]

use xsk::xdp_attach as sys;

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use libbpf_rs::{libbpf_sys, ErrorKind, MapCore, MapFlags, Object, ObjectBuilder};
use log::{debug, info, warn};
use route::Mode;

/// The compiled BPF object (`podfwd.bpf.o`), as built by build.rs. Exposed so
/// tests and tools can attach the very same program by other means
/// (`ip link set dev X xdp obj ...`).
pub const PROGRAM_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/podfwd.bpf.o"));

/// The program's function name (and the ELF section is `xdp`).
pub const PROGRAM_NAME: &str = "podfwd_steer";
/// The same program with frags support (`xdp.frags`), for multi-buffer AF_XDP.
pub const PROGRAM_NAME_FRAGS: &str = "podfwd_steer_mb";

/// Queues per interface in the XSKMAP key (`slot * MAX_QUEUES + queue`).
pub const MAX_QUEUES: u32 = 16;
/// Interfaces (slots) the maps hold.
pub const MAX_SLOTS: u32 = 512;

const MAP_XSKS: &str = "xsks";
const MAP_IFACES: &str = "ifaces";
const MAP_CFG: &str = "cfg";
const MAP_STATS: &str = "stats";

const ROLE_UPLINK: u32 = 1;
const ROLE_POD: u32 = 2;
const MODE_TUNNEL: u8 = 1;
const MODE_NATIVE: u8 = 2;
const MODE_HYBRID: u8 = 3;

/// `struct cfg` in podfwd.bpf.c: five be32 fields, be16 port, u8 mode, u8 pad.
const CFG_LEN: usize = 24;
/// `struct iface` in podfwd.bpf.c: u32 slot, u32 role (host order).
const IFACE_LEN: usize = 8;

/// Counter names, in the order of `enum stat` in podfwd.bpf.c.
pub const STAT_NAMES: [&str; 7] = [
    "redirected",
    "redirect_failed",
    "passed_unknown_iface",
    "passed_not_ipv4",
    "passed_malformed",
    "passed_not_cluster",
    "passed_not_ours",
];

/// What an interface is to podfwd; decides which steering rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The node's underlay interface (VXLAN or natively routed pod traffic).
    Uplink,
    /// A host-side pod veth (`lxcN`).
    Pod,
}

impl Role {
    fn code(self) -> u32 {
        match self {
            Role::Uplink => ROLE_UPLINK,
            Role::Pod => ROLE_POD,
        }
    }
}

/// The XDP mode an attachment actually got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// Driver (native) XDP.
    Native,
    /// Generic (SKB) XDP: works everywhere, slower (an skb is built first).
    Generic,
}

impl AttachMode {
    fn flags(self) -> u32 {
        match self {
            AttachMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            AttachMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

/// What the steering program needs to know about the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteeringConfig {
    /// All pods of the cluster; pod-facing frames to it are steered.
    pub cluster_cidr: (Ipv4Addr, u8),
    /// This node's PodCIDR; in native mode uplink frames to it are steered.
    pub pod_cidr: (Ipv4Addr, u8),
    /// The node's underlay address: VXLAN destination; never steered from pods.
    pub node_ip: Ipv4Addr,
    /// VXLAN UDP destination port (host order), e.g. 8472.
    pub vxlan_port: u16,
    /// Tunnel: VXLAN on the uplink is steered; native: IPv4 to the PodCIDR is.
    pub mode: Mode,
    /// Load the `xdp.frags` entry point ([`PROGRAM_NAME_FRAGS`]): frames larger than a
    /// page reach the AF_XDP sockets (as descriptor chains, on multi-buffer sockets),
    /// and a veth accepts the program with an MTU above about 3.5 KB.
    pub frags: bool,
}

/// Program counters, summed over CPUs. They only go up while the program is loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SteeringStats {
    /// Frames handed to an AF_XDP socket.
    pub redirected: u64,
    /// Frames that should have been steered but no socket was registered on
    /// their queue (or the queue was >= 16): passed to the kernel instead.
    pub redirect_failed: u64,
    /// Frames on an interface missing from the `ifaces` map (or before config).
    pub passed_unknown_iface: u64,
    /// ARP, IPv6 and other non-IPv4 frames.
    pub passed_not_ipv4: u64,
    /// IPv4 ethertype but truncated headers.
    pub passed_malformed: u64,
    /// Destination outside the cluster CIDR (pod side) or PodCIDR (native uplink).
    pub passed_not_cluster: u64,
    /// Node-IP traffic from pods; non-VXLAN or fragmented traffic on a tunnel uplink.
    pub passed_not_ours: u64,
}

impl SteeringStats {
    /// `(name, value)` pairs in [`STAT_NAMES`] order, for metrics export.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        STAT_NAMES.into_iter().zip(self.values())
    }

    /// A counter by its name in [`STAT_NAMES`].
    pub fn get(&self, name: &str) -> Option<u64> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn values(&self) -> [u64; 7] {
        [
            self.redirected,
            self.redirect_failed,
            self.passed_unknown_iface,
            self.passed_not_ipv4,
            self.passed_malformed,
            self.passed_not_cluster,
            self.passed_not_ours,
        ]
    }

    fn from_values(v: [u64; 7]) -> Self {
        SteeringStats {
            redirected: v[0],
            redirect_failed: v[1],
            passed_unknown_iface: v[2],
            passed_not_ipv4: v[3],
            passed_malformed: v[4],
            passed_not_cluster: v[5],
            passed_not_ours: v[6],
        }
    }
}

/// Errors from loading, attaching and map updates. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error(
        "the XDP program's map {map} holds {declared}-byte values but this podfwd writes {expected}: \
         xdp-prog/podfwd.bpf.c and crates/bpf disagree; rebuild both from one source tree"
    )]
    Layout {
        map: &'static str,
        declared: usize,
        expected: usize,
    },
    #[error(
        "interface {ifname} not found in this network namespace \
         (check `ip link show {ifname}`, and that podfwd runs in the node's network namespace)"
    )]
    InterfaceNotFound { ifname: String },
    #[error(
        "{what}: permission denied; podfwd must run as root or with CAP_BPF and \
         CAP_NET_ADMIN (plus CAP_PERFMON on some kernels): {source}"
    )]
    Permission {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "loading the XDP steering program failed (run with RUST_LOG=debug to see the \
         verifier log; the kernel needs XDP and XSKMAP support): {source}"
    )]
    Load {
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(
        "attaching XDP to {ifname} failed in native mode ({native}) and in generic (SKB) \
         mode ({generic}); check `ip -d link show {ifname}` for another XDP program"
    )]
    Attach {
        ifname: String,
        native: io::Error,
        generic: io::Error,
    },
    #[error(
        "interface {ifname} already has XDP program id {prog_id} attached through a bpf_link \
         held by another live process (another podfwd?); stop that process, or find it with \
         `bpftool link show`"
    )]
    Busy { ifname: String, prog_id: u32 },
    #[error(
        "detaching the stale XDP program id {prog_id} from {ifname} failed; remove it with \
         `ip link set dev {ifname} xdp off`: {source}"
    )]
    StaleDetach {
        ifname: String,
        prog_id: u32,
        #[source]
        source: io::Error,
    },
    #[error("querying the XDP programs of {ifname} failed: {source}")]
    Query {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("updating BPF map `{map}` ({detail}) failed: {source}")]
    MapUpdate {
        map: &'static str,
        detail: String,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("reading the steering program's id from the kernel failed: {source}")]
    ProgInfo {
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("reading BPF map `{map}` failed: {source}")]
    MapRead {
        map: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(
        "BPF map or program `{0}` missing from the loaded object (xdp-prog and crates/bpf disagree)"
    )]
    Missing(&'static str),
    #[error("interface {ifname} is not attached by this podfwd; attach it first")]
    NotAttached { ifname: String },
    #[error(
        "queue {queue} on {ifname} is out of range: the XSKMAP holds queues 0..{max} per \
         interface (reduce the channels with `ethtool -L {ifname} combined {max}`)",
        max = MAX_QUEUES
    )]
    QueueOutOfRange { ifname: String, queue: u32 },
    #[error(
        "no free interface slot for {ifname}: the steering maps hold {max} interfaces",
        max = MAX_SLOTS
    )]
    NoFreeSlot { ifname: String },
    #[error("invalid steering config: {0}")]
    InvalidConfig(String),
}

/// EPERM (what the bpf syscall returns without CAP_BPF / CAP_NET_ADMIN) and
/// EACCES both map to `PermissionDenied` in std.
fn is_permission(kind: io::ErrorKind) -> bool {
    kind == io::ErrorKind::PermissionDenied
}

/// The kernel's ifindex for `ifname` in this network namespace.
pub fn ifindex(ifname: &str) -> Result<u32, BpfError> {
    sys::if_nametoindex(ifname).ok_or_else(|| BpfError::InterfaceNotFound {
        ifname: ifname.to_string(),
    })
}

/// The id of the XDP program attached to `ifname` (any program, any mode,
/// netlink- or link-attached), or None.
pub fn xdp_prog_id(ifname: &str) -> Result<Option<u32>, BpfError> {
    let idx = ifindex(ifname)?;
    let state = sys::xdp_query(idx).map_err(|source| BpfError::Query {
        ifname: ifname.to_string(),
        source,
    })?;
    Ok(state.any())
}

/// One attached interface.
#[derive(Debug)]
struct Attachment {
    role: Role,
    mode: AttachMode,
    /// The bpf_link fd: closing it detaches the program.
    _link: OwnedFd,
}

/// Per-interface state: its slot in the XSKMAP key space, its link (if
/// attached) and the queues with a registered socket.
#[derive(Debug)]
struct Iface {
    ifindex: u32,
    slot: u32,
    attachment: Option<Attachment>,
    queues: Vec<u32>,
}

/// The loaded steering program, its maps and the links that attach it.
/// Dropping it detaches every interface it attached.
#[derive(Debug)]
pub struct Steering {
    // Field order matters for Drop: links (in `ifaces`) go before the object.
    ifaces: BTreeMap<String, Iface>,
    obj: Object,
    /// The entry point loaded ([`PROGRAM_NAME`] or [`PROGRAM_NAME_FRAGS`]).
    prog_name: &'static str,
}

fn forward_libbpf_log(level: libbpf_rs::PrintLevel, msg: String) {
    let msg = msg.trim_end();
    match level {
        libbpf_rs::PrintLevel::Warn => warn!(target: "libbpf", "{msg}"),
        libbpf_rs::PrintLevel::Info => info!(target: "libbpf", "{msg}"),
        libbpf_rs::PrintLevel::Debug => debug!(target: "libbpf", "{msg}"),
    }
}

fn prefix_mask(prefix: u8, what: &str) -> Result<u32, BpfError> {
    match prefix {
        0 => Ok(0),
        1..=32 => Ok(u32::MAX << (32 - u32::from(prefix))),
        _ => Err(BpfError::InvalidConfig(format!(
            "{what} prefix length /{prefix} is longer than 32"
        ))),
    }
}

/// `struct cfg` bytes: addresses and masks in network order.
fn encode_cfg(cfg: &SteeringConfig) -> Result<[u8; CFG_LEN], BpfError> {
    let (cnet, clen) = cfg.cluster_cidr;
    let (pnet, plen) = cfg.pod_cidr;
    let cmask = prefix_mask(clen, "cluster CIDR")?;
    let pmask = prefix_mask(plen, "pod CIDR")?;
    let mut out = [0u8; CFG_LEN];
    out[0..4].copy_from_slice(&(u32::from(cnet) & cmask).to_be_bytes());
    out[4..8].copy_from_slice(&cmask.to_be_bytes());
    out[8..12].copy_from_slice(&(u32::from(pnet) & pmask).to_be_bytes());
    out[12..16].copy_from_slice(&pmask.to_be_bytes());
    out[16..20].copy_from_slice(&cfg.node_ip.octets());
    out[20..22].copy_from_slice(&cfg.vxlan_port.to_be_bytes());
    out[22] = match cfg.mode {
        Mode::Tunnel => MODE_TUNNEL,
        Mode::Native => MODE_NATIVE,
        Mode::Hybrid => MODE_HYBRID,
    };
    Ok(out)
}

fn encode_iface(slot: u32, role: Role) -> [u8; IFACE_LEN] {
    let mut out = [0u8; IFACE_LEN];
    out[0..4].copy_from_slice(&slot.to_ne_bytes());
    out[4..8].copy_from_slice(&role.code().to_ne_bytes());
    out
}

fn xsk_key(slot: u32, queue: u32) -> u32 {
    slot * MAX_QUEUES + queue
}

impl Steering {
    /// Load the program and fill `cfg`. Nothing is attached yet.
    pub fn load(cfg: &SteeringConfig) -> Result<Steering, BpfError> {
        // Route libbpf's own messages (verifier log included) into `log`.
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, forward_libbpf_log)));
        let cfg_bytes = encode_cfg(cfg)?;
        let mut open = ObjectBuilder::default()
            .open_memory(PROGRAM_OBJECT)
            .map_err(|source| BpfError::Load { source })?;
        let prog_name = if cfg.frags {
            PROGRAM_NAME_FRAGS
        } else {
            PROGRAM_NAME
        };
        // Load only the entry point asked for: a kernel before 5.18 refuses the other.
        for mut p in open.progs_mut() {
            let wanted = p.name() == prog_name;
            p.set_autoload(wanted);
        }
        let obj = open.load().map_err(|source| {
            if source.kind() == ErrorKind::PermissionDenied {
                BpfError::Permission {
                    what: "loading the XDP steering program".into(),
                    source: io::Error::from(io::ErrorKind::PermissionDenied),
                }
            } else {
                BpfError::Load { source }
            }
        })?;
        let steering = Steering {
            ifaces: BTreeMap::new(),
            obj,
            prog_name,
        };
        // The C structs and the byte layouts written here must agree.
        for (name, len) in [(MAP_CFG, CFG_LEN), (MAP_IFACES, IFACE_LEN)] {
            let declared = steering.map(name)?.value_size() as usize;
            if declared != len {
                return Err(BpfError::Layout {
                    map: name,
                    declared,
                    expected: len,
                });
            }
        }
        steering.write_cfg(&cfg_bytes)?;
        Ok(steering)
    }

    fn map(&self, name: &'static str) -> Result<libbpf_rs::Map<'_>, BpfError> {
        self.obj
            .maps()
            .find(|m| m.name() == name)
            .ok_or(BpfError::Missing(name))
    }

    fn program(&self) -> Result<libbpf_rs::Program<'_>, BpfError> {
        self.obj
            .progs()
            .find(|p| p.name() == self.prog_name)
            .ok_or(BpfError::Missing(self.prog_name))
    }

    /// Whether the `xdp.frags` entry point is the one loaded.
    #[must_use]
    pub fn frags(&self) -> bool {
        self.prog_name == PROGRAM_NAME_FRAGS
    }

    fn write_cfg(&self, bytes: &[u8; CFG_LEN]) -> Result<(), BpfError> {
        self.map(MAP_CFG)?
            .update(&0u32.to_ne_bytes(), bytes, MapFlags::ANY)
            .map_err(|source| BpfError::MapUpdate {
                map: MAP_CFG,
                detail: "key 0".into(),
                source,
            })
    }

    /// Rewrite the node config (e.g. on SIGHUP). Takes effect on the next frame.
    pub fn update_config(&mut self, cfg: &SteeringConfig) -> Result<(), BpfError> {
        self.write_cfg(&encode_cfg(cfg)?)
    }

    /// The slot of `ifname`, assigning the lowest free one if it has none.
    /// An interface recreated under the same name (new ifindex) is forgotten
    /// first: its old link and socket entries refer to a device that is gone.
    fn slot_for(&mut self, ifname: &str, ifindex: u32) -> Result<u32, BpfError> {
        if let Some(st) = self.ifaces.get(ifname) {
            if st.ifindex == ifindex {
                return Ok(st.slot);
            }
            info!(
                "{ifname} changed ifindex {} -> {ifindex}; forgetting the old one",
                st.ifindex
            );
            self.forget(ifname)?;
        }
        let slot = (0..MAX_SLOTS)
            .find(|s| self.ifaces.values().all(|st| st.slot != *s))
            .ok_or_else(|| BpfError::NoFreeSlot {
                ifname: ifname.to_string(),
            })?;
        self.ifaces.insert(
            ifname.to_string(),
            Iface {
                ifindex,
                slot,
                attachment: None,
                queues: Vec::new(),
            },
        );
        Ok(slot)
    }

    /// Drop the link, remove the `ifaces` entry and the interface's sockets
    /// from `xsks`, free the slot.
    fn forget(&mut self, ifname: &str) -> Result<(), BpfError> {
        let Some(st) = self.ifaces.remove(ifname) else {
            return Ok(());
        };
        drop(st.attachment); // closes the link fd: detached
        let ifaces = self.map(MAP_IFACES)?;
        delete_ignoring_missing(&ifaces, MAP_IFACES, st.ifindex, ifname)?;
        let xsks = self.map(MAP_XSKS)?;
        for q in st.queues {
            delete_ignoring_missing(&xsks, MAP_XSKS, xsk_key(st.slot, q), ifname)?;
        }
        Ok(())
    }

    /// Detach any program attached to `ifname` through netlink (a stale one
    /// from `ip link set ... xdp obj`, or an old podfwd that used netlink).
    /// Link-attached programs cannot be removed this way: they belong to a
    /// live process (a dead one's links are already gone), so say so.
    fn remove_stale(&self, ifname: &str, ifindex: u32) -> Result<(), BpfError> {
        let state = sys::xdp_query(ifindex).map_err(|source| BpfError::Query {
            ifname: ifname.to_string(),
            source,
        })?;
        for (id, flags, mode) in [
            (state.drv, libbpf_sys::XDP_FLAGS_DRV_MODE, "native"),
            (state.skb, libbpf_sys::XDP_FLAGS_SKB_MODE, "generic"),
            (state.hw, libbpf_sys::XDP_FLAGS_HW_MODE, "offloaded"),
        ] {
            if id == 0 {
                continue;
            }
            match sys::xdp_detach(ifindex, flags) {
                Ok(()) => warn!(
                    "{ifname}: detached stale XDP program id {id} ({mode} mode, attached through \
                     netlink) so podfwd's can attach"
                ),
                // "Can't replace active BPF XDP link" (net/core/dev.c, dev_xdp_attach).
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(BpfError::Busy {
                        ifname: ifname.to_string(),
                        prog_id: id,
                    })
                }
                Err(source) if is_permission(source.kind()) => {
                    return Err(BpfError::Permission {
                        what: format!("detaching stale XDP program {id} from {ifname}"),
                        source,
                    })
                }
                Err(source) => {
                    return Err(BpfError::StaleDetach {
                        ifname: ifname.to_string(),
                        prog_id: id,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Attach to `ifname` with `role`; the slot is assigned internally.
    ///
    /// Native (driver) mode first; if the driver refuses, generic (SKB) mode
    /// with a warning. A stale netlink-attached program is detached first
    /// (logged with its id). Attaching an interface that is already attached
    /// only updates its role and returns the mode it has.
    pub fn attach(&mut self, ifname: &str, role: Role) -> Result<AttachMode, BpfError> {
        let ifindex = ifindex(ifname)?;
        let slot = self.slot_for(ifname, ifindex)?;
        // Fill `ifaces` before attaching, so the first frame is classified.
        self.write_iface(ifname, ifindex, slot, role)?;
        if let Some(att) = self
            .ifaces
            .get_mut(ifname)
            .and_then(|st| st.attachment.as_mut())
        {
            att.role = role;
            return Ok(att.mode);
        }
        match self.attach_link(ifname, ifindex) {
            Ok((link, mode)) => {
                info!("attached XDP steering to {ifname} (ifindex {ifindex}, slot {slot}, {role:?}, {mode:?} mode)");
                if let Some(st) = self.ifaces.get_mut(ifname) {
                    st.attachment = Some(Attachment {
                        role,
                        mode,
                        _link: link,
                    });
                }
                Ok(mode)
            }
            Err(e) => {
                // Leave no half state behind: no `ifaces` entry, slot freed
                // unless sockets were registered for it.
                let keep = self
                    .ifaces
                    .get(ifname)
                    .is_some_and(|st| !st.queues.is_empty());
                if let Ok(m) = self.map(MAP_IFACES) {
                    let _ = delete_ignoring_missing(&m, MAP_IFACES, ifindex, ifname);
                }
                if !keep {
                    self.ifaces.remove(ifname);
                }
                Err(e)
            }
        }
    }

    fn attach_link(&self, ifname: &str, ifindex: u32) -> Result<(OwnedFd, AttachMode), BpfError> {
        self.remove_stale(ifname, ifindex)?;
        let prog = self.program()?;
        let perm = |mode: AttachMode, source: io::Error| BpfError::Permission {
            what: format!("attaching XDP ({mode:?} mode) to {ifname}"),
            source,
        };
        let native = match sys::xdp_link_create(prog.as_fd(), ifindex, AttachMode::Native.flags()) {
            Ok(link) => return Ok((link, AttachMode::Native)),
            Err(e) if is_permission(e.kind()) => return Err(perm(AttachMode::Native, e)),
            Err(e) => e,
        };
        let hint = match native.raw_os_error() {
            Some(libc::EOPNOTSUPP) => " (the driver has no native XDP)",
            Some(libc::ERANGE) => " (on veth: the peer's MTU is too large for XDP without frags)",
            _ => "",
        };
        warn!(
            "native XDP not supported on {ifname}: {native}{hint}; falling back to generic (SKB) \
             mode, which is slower (the kernel builds an skb before the program runs)"
        );
        match sys::xdp_link_create(prog.as_fd(), ifindex, AttachMode::Generic.flags()) {
            Ok(link) => Ok((link, AttachMode::Generic)),
            Err(e) if is_permission(e.kind()) => Err(perm(AttachMode::Generic, e)),
            Err(generic) => Err(BpfError::Attach {
                ifname: ifname.to_string(),
                native,
                generic,
            }),
        }
    }

    fn write_iface(
        &self,
        ifname: &str,
        ifindex: u32,
        slot: u32,
        role: Role,
    ) -> Result<(), BpfError> {
        self.map(MAP_IFACES)?
            .update(
                &ifindex.to_ne_bytes(),
                &encode_iface(slot, role),
                MapFlags::ANY,
            )
            .map_err(|source| BpfError::MapUpdate {
                map: MAP_IFACES,
                detail: format!("{ifname} ifindex {ifindex} -> slot {slot}, {role:?}"),
                source,
            })
    }

    /// Detach from `ifname`: drop its link, remove it from `ifaces`, remove
    /// its sockets from `xsks` and free its slot. Works also when the
    /// interface has already disappeared (the kernel dropped the program
    /// with it).
    pub fn detach(&mut self, ifname: &str) -> Result<(), BpfError> {
        if self
            .ifaces
            .get(ifname)
            .is_none_or(|st| st.attachment.is_none())
        {
            return Err(BpfError::NotAttached {
                ifname: ifname.to_string(),
            });
        }
        info!("detaching XDP steering from {ifname}");
        self.forget(ifname)
    }

    /// Register the AF_XDP socket `fd` (already bound to `ifname`/`queue`) so
    /// the program steers that queue's frames to it. The socket must be bound
    /// first: the kernel refuses unbound sockets in an XSKMAP.
    pub fn register_xsk(&mut self, ifname: &str, queue: u32, fd: RawFd) -> Result<(), BpfError> {
        if queue >= MAX_QUEUES {
            return Err(BpfError::QueueOutOfRange {
                ifname: ifname.to_string(),
                queue,
            });
        }
        let ifindex = ifindex(ifname)?;
        let slot = self.slot_for(ifname, ifindex)?;
        let key = xsk_key(slot, queue);
        let fd_u32 = u32::try_from(fd).map_err(|_| {
            BpfError::InvalidConfig(format!("AF_XDP socket fd {fd} for {ifname} is negative"))
        })?;
        self.map(MAP_XSKS)?
            .update(&key.to_ne_bytes(), &fd_u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| BpfError::MapUpdate {
                map: MAP_XSKS,
                detail: format!(
                    "{ifname} queue {queue} (key {key}) -> fd {fd}; is the socket bound to \
                     this interface and queue?"
                ),
                source,
            })?;
        if let Some(st) = self.ifaces.get_mut(ifname) {
            if !st.queues.contains(&queue) {
                st.queues.push(queue);
            }
        }
        Ok(())
    }

    /// Remove the socket of (`ifname`, `queue`); its frames are passed to the
    /// kernel from then on.
    pub fn unregister_xsk(&mut self, ifname: &str, queue: u32) -> Result<(), BpfError> {
        let Some(st) = self.ifaces.get(ifname) else {
            return Err(BpfError::NotAttached {
                ifname: ifname.to_string(),
            });
        };
        let (slot, ifindex) = (st.slot, st.ifindex);
        if queue >= MAX_QUEUES {
            return Err(BpfError::QueueOutOfRange {
                ifname: ifname.to_string(),
                queue,
            });
        }
        let xsks = self.map(MAP_XSKS)?;
        delete_ignoring_missing(&xsks, MAP_XSKS, xsk_key(slot, queue), ifname)?;
        let Some(st) = self.ifaces.get_mut(ifname) else {
            return Ok(());
        };
        st.queues.retain(|&q| q != queue);
        if st.attachment.is_none() && st.queues.is_empty() {
            debug!("{ifname} (ifindex {ifindex}) has no link and no sockets: slot {slot} freed");
            self.ifaces.remove(ifname);
        }
        Ok(())
    }

    /// The program's counters, summed over CPUs.
    pub fn stats(&self) -> Result<SteeringStats, BpfError> {
        let map = self.map(MAP_STATS)?;
        let mut values = [0u64; 7];
        for (idx, slot) in (0u32..).zip(values.iter_mut()) {
            let per_cpu = map
                .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| BpfError::MapRead {
                    map: MAP_STATS,
                    source,
                })?
                .unwrap_or_default();
            *slot = per_cpu
                .iter()
                .filter_map(|b| b.get(..8)?.try_into().ok())
                .map(u64::from_ne_bytes)
                .fold(0u64, u64::wrapping_add);
        }
        Ok(SteeringStats::from_values(values))
    }

    /// Attached interfaces: name, ifindex and the mode obtained.
    pub fn attached(&self) -> Vec<(String, u32, AttachMode)> {
        self.ifaces
            .iter()
            .filter_map(|(name, st)| {
                st.attachment
                    .as_ref()
                    .map(|a| (name.clone(), st.ifindex, a.mode))
            })
            .collect()
    }

    /// The role `ifname` is attached with, if attached.
    pub fn role(&self, ifname: &str) -> Option<Role> {
        self.ifaces.get(ifname)?.attachment.as_ref().map(|a| a.role)
    }

    /// The kernel id of the loaded steering program (as `bpftool prog` shows it).
    pub fn prog_id(&self) -> Result<u32, BpfError> {
        let prog = self.program()?;
        libbpf_rs::Program::id_from_fd(prog.as_fd()).map_err(|source| BpfError::ProgInfo { source })
    }
}

fn delete_ignoring_missing(
    map: &libbpf_rs::Map<'_>,
    name: &'static str,
    key: u32,
    ifname: &str,
) -> Result<(), BpfError> {
    match map.delete(&key.to_ne_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BpfError::MapUpdate {
            map: name,
            detail: format!("delete key {key} of {ifname}"),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SteeringConfig {
        SteeringConfig {
            cluster_cidr: (Ipv4Addr::new(10, 0, 7, 9), 16),
            pod_cidr: (Ipv4Addr::new(10, 0, 1, 0), 24),
            node_ip: Ipv4Addr::new(198, 18, 0, 1),
            vxlan_port: 8472,
            mode: Mode::Tunnel,
            frags: false,
        }
    }

    #[test]
    fn cfg_bytes_are_network_order_and_masked() {
        let b = encode_cfg(&cfg()).unwrap();
        assert_eq!(
            &b[0..4],
            &[10, 0, 0, 0],
            "host bits of the cluster net are cleared"
        );
        assert_eq!(&b[4..8], &[255, 255, 0, 0]);
        assert_eq!(&b[8..12], &[10, 0, 1, 0]);
        assert_eq!(&b[12..16], &[255, 255, 255, 0]);
        assert_eq!(&b[16..20], &[198, 18, 0, 1]);
        assert_eq!(&b[20..22], &[0x21, 0x18], "8472 big-endian");
        assert_eq!(b[22], MODE_TUNNEL);
        assert_eq!(b[23], 0);
    }

    #[test]
    fn native_mode_and_edge_prefixes() {
        let mut c = cfg();
        c.mode = Mode::Native;
        c.cluster_cidr = (Ipv4Addr::new(1, 2, 3, 4), 0);
        c.pod_cidr = (Ipv4Addr::new(10, 0, 1, 5), 32);
        let b = encode_cfg(&c).unwrap();
        assert_eq!(&b[0..8], &[0; 8]);
        assert_eq!(&b[8..16], &[10, 0, 1, 5, 255, 255, 255, 255]);
        assert_eq!(b[22], MODE_NATIVE);
        c.mode = Mode::Hybrid;
        assert_eq!(encode_cfg(&c).unwrap()[22], MODE_HYBRID);
    }

    #[test]
    fn prefix_longer_than_32_is_rejected_with_the_field_named() {
        let mut c = cfg();
        c.pod_cidr.1 = 33;
        let e = encode_cfg(&c).unwrap_err().to_string();
        assert!(e.contains("pod CIDR") && e.contains("/33"), "{e}");
    }

    #[test]
    fn iface_bytes_and_keys() {
        let b = encode_iface(3, Role::Pod);
        assert_eq!(&b[0..4], &3u32.to_ne_bytes());
        assert_eq!(&b[4..8], &ROLE_POD.to_ne_bytes());
        assert_eq!(xsk_key(0, 0), 0);
        assert_eq!(xsk_key(2, 5), 37);
        assert_eq!(
            xsk_key(MAX_SLOTS - 1, MAX_QUEUES - 1),
            8191,
            "fits max_entries 512 * 16"
        );
    }

    #[test]
    fn stat_names_match_the_c_enum() {
        let src = include_str!("../../../xdp-prog/podfwd.bpf.c");
        let start = src.find("enum stat {").unwrap();
        let body = &src[start..start + src[start..].find("};").unwrap()];
        let names: Vec<String> = body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("STAT_"))
            .map(|l| l.split([',', ' ']).next().unwrap().to_ascii_lowercase())
            .filter(|n| n != "max")
            .collect();
        assert_eq!(names, STAT_NAMES);
    }

    #[test]
    fn stats_by_name() {
        let s = SteeringStats {
            redirect_failed: 4,
            passed_not_ipv4: 2,
            ..Default::default()
        };
        assert_eq!(s.get("redirect_failed"), Some(4));
        assert_eq!(s.get("passed_not_ipv4"), Some(2));
        assert_eq!(s.get("nope"), None);
        assert_eq!(s.iter().count(), STAT_NAMES.len());
    }

    #[test]
    fn object_is_embedded_and_is_bpf_elf() {
        assert_eq!(&PROGRAM_OBJECT[..4], b"\x7fELF");
        // e_machine at offset 18, little endian: EM_BPF = 247.
        assert_eq!(
            u16::from_le_bytes([PROGRAM_OBJECT[18], PROGRAM_OBJECT[19]]),
            247
        );
    }

    #[test]
    fn steering_can_move_to_the_control_thread() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Steering>();
    }

    #[test]
    fn missing_interface_error_says_namespace() {
        let e = xdp_prog_id("podfwd-nonexistent0").unwrap_err().to_string();
        assert!(e.contains("not found in this network namespace"), "{e}");
    }
}
