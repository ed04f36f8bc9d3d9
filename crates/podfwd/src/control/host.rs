//! The node's kernel as the control thread sees it: interfaces, routes, the neighbour
//! table and the XDP steering program. [`Host`] is what [`super::Control`] talks to;
//! [`Kernel`] is the real one — one rtnetlink view of links, routes and neighbours
//! (`crates/rtnl`: dumps, then the multicast groups, re-dumped on overruns and where the
//! kernel changes routes silently), next hops from its main table (every usable hop
//! of a multipath route), kernel-managed neighbour entries
//! (`NTF_EXT_MANAGED`) so the kernel keeps each next hop resolved although it never
//! sees the frames podfwd forwards, and bpf_links — and the control tests use a fake.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};

use bpf::{Role, Steering, SteeringConfig};
use route::PortRole;

use crate::ifaces::{self, IfaceError, IfaceInfo};
use crate::neigh::{self, NeighTable};

/// One next hop the FIB gives toward an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibHop {
    /// The address whose MAC a frame goes to: the gateway, or the destination itself
    /// when it is on-link.
    pub via: Ipv4Addr,
    /// The interface it leaves by.
    pub dev: String,
    /// Multipath weight (1..=256; 1 for a single-path route).
    pub weight: u16,
}

/// What the control thread asks of the kernel after start-up.
pub trait Host {
    /// Bring the view of the node up to date (pending route, link and neighbour
    /// changes); called once per refresh, before the questions below, and whenever
    /// [`Host::event_fd`] is readable. Returns whether the view changed.
    fn sync(&mut self) -> bool {
        false
    }
    /// A file descriptor that becomes readable when the kernel announces a change
    /// (then [`Host::sync`] drains it); `None`: changes are only seen at refreshes.
    fn event_fd(&self) -> Option<RawFd> {
        None
    }
    /// The next hops toward `dst` per the kernel's FIB: every usable hop of its route
    /// (one for a plain route, each of a multipath one with its weight), in the FIB's
    /// order. Empty when there is no route (or the host cannot tell).
    fn next_hops(&mut self, _dst: Ipv4Addr) -> Vec<FibHop> {
        Vec::new()
    }
    /// The PodCIDR routes in kernel table `table`: `(prefix, gateway)` for each unicast
    /// route with a gateway (the owner node's IP, as a BGP daemon installs them; the
    /// first usable hop of a multipath one).
    fn learned_routes(&mut self, _table: u32) -> Vec<(ipnet::Ipv4Net, Ipv4Addr)> {
        Vec::new()
    }
    /// Interface facts now.
    ///
    /// # Errors
    /// The interface does not exist (any more).
    fn lookup(&self, name: &str) -> Result<IfaceInfo, IfaceError>;
    /// The neighbour table now.
    fn neighbours(&mut self) -> NeighTable;
    /// Make the kernel resolve (or re-validate) `ip`'s MAC.
    fn resolve(&mut self, ip: Ipv4Addr);
    /// Attach the steering program to `name`; returns the XDP mode obtained.
    ///
    /// # Errors
    /// Why it could not be attached.
    fn attach(&mut self, name: &str, role: PortRole) -> Result<String, String>;
    /// Put a socket into the XSKMAP for `name`'s `queue`.
    ///
    /// # Errors
    /// Why it could not be registered.
    fn register_xsk(&mut self, name: &str, queue: u32, fd: RawFd) -> Result<(), String>;
    /// Change what the program steers.
    ///
    /// # Errors
    /// Why the maps could not be updated.
    fn update_steering(&mut self, cfg: &SteeringConfig) -> Result<(), String>;
    /// The program's steering counters.
    fn steering_stats(&self) -> Vec<(String, u64)>;
    /// Detach the program from `name`.
    ///
    /// # Errors
    /// Why it could not be detached.
    fn detach(&mut self, name: &str) -> Result<(), String>;
}

/// The real node: rtnetlink for links, routes and neighbours, the loaded steering
/// program.
#[derive(Debug)]
pub struct Kernel {
    /// The loaded program and its links.
    pub steering: Steering,
    nl: Option<(rtnl::Rtnl, rtnl::NodeState)>,
    /// Managed neighbour entries are refused (kernel < 5.16): fall back to making the
    /// kernel resolve by sending it a datagram.
    unmanaged: bool,
}

impl Kernel {
    /// The node with `steering` loaded; opens the rtnetlink view of the main table and
    /// `learned` (a table PodCIDRs are learned from); without rtnetlink, podfwd falls
    /// back to sysfs and /proc/net/arp (logged).
    #[must_use]
    pub fn new(steering: Steering, learned: Option<u32>) -> Kernel {
        let mut tables = vec![rtnl::TABLE_MAIN];
        tables.extend(learned);
        let nl = rtnl::Rtnl::open().and_then(|mut r| {
            let mut st = rtnl::NodeState::new(&tables);
            r.refresh(&mut st)?;
            Ok((r, st))
        });
        let nl = match nl {
            Ok(v) => Some(v),
            Err(e) => {
                log::warn!("rtnetlink unavailable ({e}): reading sysfs and /proc/net/arp instead, next hops are the nodes themselves");
                None
            }
        };
        Kernel {
            steering,
            nl,
            unmanaged: false,
        }
    }
}

/// The steering program's role for a port role.
#[must_use]
pub fn bpf_role(role: PortRole) -> Role {
    match role {
        PortRole::Uplink => Role::Uplink,
        PortRole::Pod => Role::Pod,
    }
}

/// The usable next hops (not dead, not without carrier) of the main table's route to
/// `dst`: a plain longest-prefix match over the dumped table (no syscall, so it stays
/// cheap for thousands of nodes; `ip rule` policy routing is not consulted). The dump
/// is current: hops the kernel marks dead when their link goes down, without a
/// notification, come with the re-dump `crates/rtnl` does on every link change.
fn main_table_hops(st: &rtnl::NodeState, dst: Ipv4Addr) -> Vec<rtnl::NextHop> {
    match st.lookup(rtnl::TABLE_MAIN, dst) {
        Some(route) if route.kind == rtnl::RouteKind::Unicast => route
            .next_hops
            .iter()
            .filter(|h| h.is_usable())
            .copied()
            .collect(),
        _ => Vec::new(),
    }
}

impl Host for Kernel {
    fn sync(&mut self) -> bool {
        let Some((r, st)) = self.nl.as_mut() else {
            return false;
        };
        match r.poll_events(st) {
            Ok(changes) => changes.any(),
            Err(e) => {
                log::debug!("rtnetlink events: {e}; re-reading the node");
                if let Err(e) = r.refresh(st) {
                    log::warn!("rtnetlink re-dump: {e}");
                }
                true
            }
        }
    }
    fn event_fd(&self) -> Option<RawFd> {
        self.nl.as_ref().map(|(r, _)| r.as_raw_fd())
    }
    fn learned_routes(&mut self, table: u32) -> Vec<(ipnet::Ipv4Net, Ipv4Addr)> {
        let Some((_, st)) = &self.nl else {
            return Vec::new();
        };
        st.routes(table)
            .iter()
            .filter(|r| r.kind == rtnl::RouteKind::Unicast)
            .filter_map(|r| {
                let hop = r.next_hops.iter().find(|h| h.is_usable())?;
                Some((r.dst, hop.gateway?))
            })
            .collect()
    }
    fn next_hops(&mut self, dst: Ipv4Addr) -> Vec<FibHop> {
        let Some((_, st)) = self.nl.as_ref() else {
            return Vec::new();
        };
        main_table_hops(st, dst)
            .iter()
            .filter_map(|h| {
                Some(FibHop {
                    via: h.via(dst),
                    dev: st.link(h.oif)?.name.clone(),
                    weight: h.weight,
                })
            })
            .collect()
    }
    fn lookup(&self, name: &str) -> Result<IfaceInfo, IfaceError> {
        let Some((_, st)) = &self.nl else {
            return ifaces::lookup(name);
        };
        let l = st
            .link_by_name(name)
            .ok_or_else(|| IfaceError::NotFound(name.to_owned()))?;
        Ok(IfaceInfo {
            name: l.name.clone(),
            ifindex: l.ifindex,
            mac: l.mac.unwrap_or([0; 6]),
            mtu: u16::try_from(l.mtu).unwrap_or(u16::MAX),
            up: l.is_up(),
        })
    }
    fn neighbours(&mut self) -> NeighTable {
        let Some((_, st)) = &self.nl else {
            return neigh::read();
        };
        st.neighbours()
            .values()
            .filter_map(|n| {
                let mac = n.usable_mac()?;
                let dev = st.link(n.ifindex)?.name.clone();
                Some(((n.ip, dev), mac))
            })
            .collect()
    }
    /// Every usable next hop toward `ip` becomes a managed neighbour entry (no route
    /// to it: nothing to resolve, and no datagram); where that fails, a datagram to the
    /// hop makes the kernel resolve it.
    fn resolve(&mut self, ip: Ipv4Addr) {
        let Some((r, st)) = self.nl.as_mut() else {
            neigh::trigger(ip);
            return;
        };
        for hop in main_table_hops(st, ip) {
            let via = hop.via(ip);
            if self.unmanaged {
                neigh::trigger(via);
                continue;
            }
            match r.ensure_managed_neighbour(via, hop.oif) {
                Ok(()) => {}
                Err(rtnl::Error::ManagedUnsupported { .. }) => {
                    log::warn!("kernel-managed neighbour entries unsupported (Linux < 5.16): resolving by datagram instead");
                    self.unmanaged = true;
                    neigh::trigger(via);
                }
                Err(e) => {
                    log::debug!("managed neighbour {via} (toward {ip}): {e}");
                    neigh::trigger(via);
                }
            }
        }
    }
    fn attach(&mut self, name: &str, role: PortRole) -> Result<String, String> {
        self.steering
            .attach(name, bpf_role(role))
            .map(|m| format!("{m:?}").to_lowercase())
            .map_err(|e| e.to_string())
    }
    fn register_xsk(&mut self, name: &str, queue: u32, fd: RawFd) -> Result<(), String> {
        self.steering
            .register_xsk(name, queue, fd)
            .map_err(|e| e.to_string())
    }
    fn update_steering(&mut self, cfg: &SteeringConfig) -> Result<(), String> {
        self.steering.update_config(cfg).map_err(|e| e.to_string())
    }
    fn steering_stats(&self) -> Vec<(String, u64)> {
        self.steering.stats().map_or_else(
            |_| Vec::new(),
            |s| s.iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        )
    }
    fn detach(&mut self, name: &str) -> Result<(), String> {
        self.steering.detach(name).map_err(|e| e.to_string())
    }
}
