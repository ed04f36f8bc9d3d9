//! [`NodeState`]: the node's links, addresses, routes and neighbours, kept current by
//! [`crate::Rtnl::refresh`] and [`crate::Rtnl::poll_events`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::parse::Msg;
use crate::types::{Address, Link, Neighbour, Route, TABLE_MAIN};

/// What a [`crate::Rtnl::poll_events`] or [`crate::Rtnl::refresh`] call changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// A link appeared, went away or changed (MTU, MAC, up/down, name).
    pub links: bool,
    /// An IPv4 address appeared or went away.
    pub addresses: bool,
    /// A route of a watched table appeared, went away or changed.
    pub routes: bool,
    /// A neighbour entry appeared, went away or changed (state, MAC).
    pub neighbours: bool,
    /// Everything was re-dumped (after an overrun, `ENOBUFS`).
    pub resynced: bool,
}

impl Changes {
    /// Whether anything changed.
    #[must_use]
    pub fn any(&self) -> bool {
        self.links || self.addresses || self.routes || self.neighbours
    }

    pub(crate) fn merge(&mut self, o: Changes) {
        self.links |= o.links;
        self.addresses |= o.addresses;
        self.routes |= o.routes;
        self.neighbours |= o.neighbours;
        self.resynced |= o.resynced;
    }
}

/// Counters of the view's upkeep; never reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Full re-dumps ([`crate::Rtnl::refresh`], including the ones after overruns).
    pub full_dumps: u64,
    /// Route-only re-dumps after a link went down/up or an address went away (the
    /// kernel drops routes then without telling anyone).
    pub route_dumps: u64,
    /// Times the event socket overflowed (`ENOBUFS`): events were lost, a full re-dump
    /// followed.
    pub overruns: u64,
    /// Dumps restarted because the kernel flagged them `NLM_F_DUMP_INTR`.
    pub interrupted_dumps: u64,
    /// Multicast messages applied.
    pub events: u64,
    /// Messages skipped because they could not be decoded.
    pub undecodable: u64,
}

/// The node as rtnetlink shows it: links, IPv4 addresses, IPv4 routes of the watched
/// tables, IPv4 neighbours.
#[derive(Debug, Clone)]
pub struct NodeState {
    tables: Vec<u32>,
    links: BTreeMap<u32, Link>,
    addresses: Vec<Address>,
    routes: BTreeMap<u32, Vec<Route>>,
    neighbours: BTreeMap<(u32, Ipv4Addr), Neighbour>,
    /// Upkeep counters.
    pub stats: Stats,
}

impl Default for NodeState {
    fn default() -> Self {
        NodeState::new(&[TABLE_MAIN])
    }
}

/// What applying one message needs done afterwards.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    pub changes: Changes,
    /// Routes may have gone without notifications: re-dump the watched tables.
    pub redump_routes: bool,
}

impl NodeState {
    /// An empty view that will track the routes of `tables` (e.g. `[TABLE_MAIN, 201]`).
    #[must_use]
    pub fn new(tables: &[u32]) -> NodeState {
        let mut tables = tables.to_vec();
        tables.sort_unstable();
        tables.dedup();
        NodeState {
            routes: tables.iter().map(|t| (*t, Vec::new())).collect(),
            tables,
            links: BTreeMap::new(),
            addresses: Vec::new(),
            neighbours: BTreeMap::new(),
            stats: Stats::default(),
        }
    }

    /// The route tables tracked.
    #[must_use]
    pub fn tables(&self) -> &[u32] {
        &self.tables
    }

    /// All links, by ifindex.
    #[must_use]
    pub fn links(&self) -> &BTreeMap<u32, Link> {
        &self.links
    }

    /// The link with this index.
    #[must_use]
    pub fn link(&self, ifindex: u32) -> Option<&Link> {
        self.links.get(&ifindex)
    }

    /// The link with this name.
    #[must_use]
    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.values().find(|l| l.name == name)
    }

    /// All IPv4 addresses.
    #[must_use]
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// The routes of a tracked table (empty for an untracked one).
    #[must_use]
    pub fn routes(&self, table: u32) -> &[Route] {
        self.routes.get(&table).map_or(&[], Vec::as_slice)
    }

    /// All IPv4 neighbour entries, by (ifindex, ip).
    #[must_use]
    pub fn neighbours(&self) -> &BTreeMap<(u32, Ipv4Addr), Neighbour> {
        &self.neighbours
    }

    /// The neighbour entry for `ip` on `ifindex`.
    #[must_use]
    pub fn neighbour(&self, ip: Ipv4Addr, ifindex: u32) -> Option<&Neighbour> {
        self.neighbours.get(&(ifindex, ip))
    }

    /// Longest-prefix match of `dst` over the dumped routes of `table` (ties: lowest
    /// metric, then tos 0). Returns the whole route, so every multipath next hop.
    /// This is a plain lookup in one table: it knows nothing of `ip rule`; use
    /// [`crate::Rtnl::fib_lookup`] / [`crate::Rtnl::fib_match`] for the kernel's answer.
    /// O(routes in the table).
    #[must_use]
    pub fn lookup(&self, table: u32, dst: Ipv4Addr) -> Option<&Route> {
        self.routes(table)
            .iter()
            .filter(|r| r.dst.contains(&dst))
            .min_by_key(|r| (u8::MAX - r.dst.prefix_len(), r.priority, r.tos))
    }

    /// Replace the links.
    pub(crate) fn set_links(&mut self, links: Vec<Link>) -> bool {
        let new: BTreeMap<u32, Link> = links.into_iter().map(|l| (l.ifindex, l)).collect();
        let changed = new != self.links;
        self.links = new;
        changed
    }

    pub(crate) fn set_addresses(&mut self, mut addrs: Vec<Address>) -> bool {
        addrs.sort_unstable();
        addrs.dedup();
        let changed = addrs != self.addresses;
        self.addresses = addrs;
        changed
    }

    /// Replace one table's routes (ignored for untracked tables).
    pub(crate) fn set_routes(&mut self, table: u32, mut routes: Vec<Route>) -> bool {
        let Some(cur) = self.routes.get_mut(&table) else {
            return false;
        };
        routes.retain(|r| r.table == table);
        routes.sort_by_key(Route::key);
        let changed = routes != *cur;
        *cur = routes;
        changed
    }

    pub(crate) fn set_neighbours(&mut self, ns: Vec<Neighbour>) -> bool {
        let new: BTreeMap<_, _> = ns.into_iter().map(|n| ((n.ifindex, n.ip), n)).collect();
        let changed = new != self.neighbours;
        self.neighbours = new;
        changed
    }

    /// Apply one multicast message.
    pub(crate) fn apply(&mut self, msg: Msg) -> Applied {
        let mut a = Applied::default();
        match msg {
            Msg::NewLink(l) => {
                let old = self.links.get(&l.ifindex);
                // Up/down and carrier changes make the kernel flush or flag routes through
                // the link without RTM_DELROUTE (fib_sync_down_dev, fib_sync_up): re-dump.
                a.redump_routes =
                    old.is_some_and(|o| o.admin_up != l.admin_up || o.oper_up != l.oper_up);
                a.changes.links = old != Some(&l);
                self.links.insert(l.ifindex, l);
            }
            Msg::DelLink(ifindex) => {
                a.changes.links = self.links.remove(&ifindex).is_some();
                let before = self.addresses.len();
                self.addresses.retain(|x| x.ifindex != ifindex);
                a.changes.addresses = self.addresses.len() != before;
                let before = self.neighbours.len();
                self.neighbours.retain(|k, _| k.0 != ifindex);
                a.changes.neighbours = self.neighbours.len() != before;
                a.redump_routes = true;
            }
            Msg::NewAddress(x) => {
                if let Err(at) = self.addresses.binary_search(&x) {
                    self.addresses.insert(at, x);
                    a.changes.addresses = true;
                }
            }
            Msg::DelAddress(x) => {
                if let Ok(at) = self.addresses.binary_search(&x) {
                    self.addresses.remove(at);
                    a.changes.addresses = true;
                }
                // Routes whose gateway or prefsrc needed that address go silently
                // (fib_del_ifaddr -> fib_sync_down_addr): re-dump.
                a.redump_routes = true;
            }
            Msg::NewRoute(r) => {
                if let Some(t) = self.routes.get_mut(&r.table) {
                    match t.binary_search_by_key(&r.key(), Route::key) {
                        Ok(at) if t[at] == r => {}
                        Ok(at) => {
                            t[at] = r;
                            a.changes.routes = true;
                        }
                        Err(at) => {
                            t.insert(at, r);
                            a.changes.routes = true;
                        }
                    }
                }
            }
            Msg::DelRoute(r) => {
                if let Some(t) = self.routes.get_mut(&r.table) {
                    if let Ok(at) = t.binary_search_by_key(&r.key(), Route::key) {
                        t.remove(at);
                        a.changes.routes = true;
                    }
                }
            }
            Msg::NewNeighbour(n) => {
                let old = self.neighbours.insert((n.ifindex, n.ip), n);
                a.changes.neighbours = old != Some(n);
            }
            Msg::DelNeighbour(n) => {
                a.changes.neighbours = self.neighbours.remove(&(n.ifindex, n.ip)).is_some();
            }
            Msg::Done(_) | Msg::Error(..) | Msg::ClonedRoute(_) | Msg::Ignored => {}
        }
        a
    }
}
