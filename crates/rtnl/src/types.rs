//! What the node's kernel holds, in plain types (no netlink-packet-route types leak out).

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// `RT_TABLE_MAIN`, the table `ip route` shows and changes by default.
pub const TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`, the kernel's table of local and broadcast addresses.
pub const TABLE_LOCAL: u32 = 255;

/// An interface (`RTM_NEWLINK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Kernel interface index.
    pub ifindex: u32,
    /// Interface name (`IFLA_IFNAME`).
    pub name: String,
    /// Hardware address, when the link has a 6-byte one (`IFLA_ADDRESS`).
    pub mac: Option<[u8; 6]>,
    /// MTU (`IFLA_MTU`).
    pub mtu: u32,
    /// `IFF_UP`: administratively up (`ip link set X up`).
    pub admin_up: bool,
    /// `IFF_RUNNING`: operationally up (RFC 2863 operstate up or unknown, e.g. the veth
    /// peer is up too).
    pub oper_up: bool,
}

impl Link {
    /// Administratively and operationally up: the link can carry frames.
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.admin_up && self.oper_up
    }
}

/// An IPv4 address on an interface (`RTM_NEWADDR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    /// The interface it is on.
    pub ifindex: u32,
    /// The address and its prefix (`IFA_LOCAL`, else `IFA_ADDRESS`; `ifa_prefixlen`).
    pub net: Ipv4Net,
}

/// What a route does with matching packets (`rtm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `RTN_UNICAST`: forward through the next hops.
    Unicast,
    /// `RTN_LOCAL`: an address of this node.
    Local,
    /// `RTN_BROADCAST`.
    Broadcast,
    /// `RTN_BLACKHOLE`: silently dropped.
    Blackhole,
    /// `RTN_UNREACHABLE`: dropped with ICMP host unreachable.
    Unreachable,
    /// `RTN_PROHIBIT`: dropped with ICMP administratively prohibited.
    Prohibit,
    /// Anything else, raw `rtm_type`.
    Other(u8),
}

impl fmt::Display for RouteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKind::Unicast => f.write_str("unicast"),
            RouteKind::Local => f.write_str("local"),
            RouteKind::Broadcast => f.write_str("broadcast"),
            RouteKind::Blackhole => f.write_str("blackhole"),
            RouteKind::Unreachable => f.write_str("unreachable"),
            RouteKind::Prohibit => f.write_str("prohibit"),
            RouteKind::Other(t) => write!(f, "type {t}"),
        }
    }
}

/// One way out for a route: an interface and, unless on-link, a gateway on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// Output interface (`RTA_OIF` / `rtnh_ifindex`).
    pub oif: u32,
    /// Gateway (`RTA_GATEWAY`); `None` when the destination is on-link.
    pub gateway: Option<Ipv4Addr>,
    /// Multipath weight, 1..=256 (`rtnh_hops + 1`); 1 for single-path routes.
    pub weight: u16,
    /// `RTNH_F_ONLINK`: the gateway is taken as on-link even outside the link's prefixes.
    pub onlink: bool,
    /// `RTNH_F_DEAD`: the kernel does not use this hop (its link is down).
    pub dead: bool,
    /// `RTNH_F_LINKDOWN`: the hop's link has no carrier.
    pub linkdown: bool,
}

impl NextHop {
    /// The address whose MAC the frame must be sent to: the gateway, or `dst` itself
    /// when on-link.
    #[must_use]
    pub fn via(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(dst)
    }

    /// Usable by the kernel: neither dead nor without carrier.
    #[must_use]
    pub fn is_usable(&self) -> bool {
        !self.dead && !self.linkdown
    }
}

/// An IPv4 route of some table (`RTM_NEWROUTE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Table id (`RTA_TABLE`, else `rtm_table`).
    pub table: u32,
    /// Destination prefix (`RTA_DST`/`rtm_dst_len`; 0.0.0.0/0 for the default route).
    pub dst: Ipv4Net,
    /// `rtm_tos`.
    pub tos: u8,
    /// Metric (`RTA_PRIORITY`, 0 when absent).
    pub priority: u32,
    /// Who installed it (`rtm_protocol`: 2 kernel, 3 boot, 4 static, 12 bird, 186 bgp, ...).
    pub protocol: u8,
    /// `rtm_scope` (0 universe, 253 link, 254 host).
    pub scope: u8,
    /// What it does.
    pub kind: RouteKind,
    /// Preferred source (`RTA_PREFSRC`).
    pub prefsrc: Option<Ipv4Addr>,
    /// Every next hop: one for a plain route, several for multipath (`RTA_MULTIPATH`),
    /// none for blackhole/unreachable/prohibit.
    pub next_hops: Vec<NextHop>,
}

impl Route {
    /// The identity of an IPv4 FIB entry: `(table, dst, tos, priority)`. A later
    /// `RTM_NEWROUTE` with the same key replaces this one; `RTM_DELROUTE` removes it.
    /// (Routes added with `ip route append` share a key; only the last one is kept.)
    #[must_use]
    pub fn key(&self) -> (u32, Ipv4Net, u8, u32) {
        (self.table, self.dst, self.tos, self.priority)
    }
}

/// Neighbour Unreachability Detection state (`ndm_state`, include/uapi/linux/neighbour.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NudState {
    /// `NUD_NONE` (0): created, resolution not started.
    None,
    /// `NUD_INCOMPLETE`: resolution in progress.
    Incomplete,
    /// `NUD_REACHABLE`: confirmed recently.
    Reachable,
    /// `NUD_STALE`: valid but unconfirmed.
    Stale,
    /// `NUD_DELAY`: waiting before probing.
    Delay,
    /// `NUD_PROBE`: probing.
    Probe,
    /// `NUD_FAILED`: resolution failed.
    Failed,
    /// `NUD_NOARP`: no resolution needed.
    Noarp,
    /// `NUD_PERMANENT`: static.
    Permanent,
    /// Several bits or an unknown value.
    Other(u16),
}

impl NudState {
    /// `NUD_VALID`: the entry's MAC may be used (reachable, stale, delay, probe,
    /// permanent, noarp).
    #[must_use]
    pub fn is_valid(self) -> bool {
        matches!(
            self,
            NudState::Reachable
                | NudState::Stale
                | NudState::Delay
                | NudState::Probe
                | NudState::Permanent
                | NudState::Noarp
        )
    }
}

/// An IPv4 neighbour entry (`RTM_NEWNEIGH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Neighbour {
    /// The neighbour's address (`NDA_DST`).
    pub ip: Ipv4Addr,
    /// The interface it is on.
    pub ifindex: u32,
    /// Its MAC (`NDA_LLADDR`), when resolved.
    pub mac: Option<[u8; 6]>,
    /// NUD state.
    pub state: NudState,
    /// `ndm_flags` (NTF_ROUTER 0x80, NTF_EXT_LEARNED 0x10, ...).
    pub flags: u8,
    /// `NTF_EXT_MANAGED` in `NDA_FLAGS_EXT`: the kernel keeps this entry resolved itself.
    pub managed: bool,
}

impl Neighbour {
    /// The MAC, if the kernel considers the entry usable.
    #[must_use]
    pub fn usable_mac(&self) -> Option<[u8; 6]> {
        self.mac.filter(|_| self.state.is_valid())
    }
}
