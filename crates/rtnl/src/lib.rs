//! A synchronous rtnetlink view of the node: links, IPv4 addresses, IPv4 routes of
//! chosen tables, IPv4 neighbours; the kernel's FIB lookups; kernel-managed neighbours.
//!
//! podfwd's next hops come from the kernel's FIB: the node itself when on-link, else a
//! gateway, whose MAC is the neighbour entry for it. rtnetlink is also the only view
//! that is right when podfwd runs under `nsenter` (sysfs then shows another namespace).
//! No async runtime: [`Rtnl`] owns two non-blocking `NETLINK_ROUTE` sockets and the
//! caller polls [`Rtnl`]'s fd (the event socket) with mio or epoll.
//!
//! # Use
//! ```no_run
//! # fn main() -> rtnl::Result<()> {
//! let mut nl = rtnl::Rtnl::open()?;                       // subscribe first...
//! let mut node = rtnl::NodeState::new(&[rtnl::TABLE_MAIN, 201]);
//! nl.refresh(&mut node)?;                                 // ...then dump
//! // whenever nl's fd is readable:
//! let changed = nl.poll_events(&mut node)?;
//! if changed.routes { /* rebuild the route snapshot from node.routes(201) */ }
//! let nh = nl.fib_lookup("198.18.1.7".parse().unwrap())?;
//! nl.ensure_managed_neighbour(nh.via("198.18.1.7".parse().unwrap()), nh.oif)?;
//! # Ok(()) }
//! ```
//!
//! # What each call costs
//! - [`Rtnl::refresh`]: one dump each of links, addresses, neighbours and every tracked
//!   route table — O(size of those tables), several syscalls per 32 KiB of replies.
//!   Call it once at start; [`Rtnl::poll_events`] calls it again after an overrun.
//! - [`Rtnl::poll_events`]: O(pending notifications), never blocks. It re-dumps the
//!   tracked route tables (not everything) when a link changes up/down state or goes
//!   away, or an address goes away: the kernel then deletes routes through the link
//!   (`fib_sync_down_dev`, `fib_sync_down_addr`) or flags them (or one hop of a
//!   multipath route) `dead`/`linkdown` without a route notification. On `ENOBUFS` (the socket overflowed; notifications were
//!   lost) it re-dumps everything. Both are counted in [`NodeState::stats`].
//! - [`Rtnl::fib_lookup`], [`Rtnl::fib_match`], [`Rtnl::neighbour`]: one request each,
//!   O(1), authoritative (policy routing included).
//! - [`Rtnl::ensure_managed_neighbour`]: two requests. [`NodeState::lookup`]: O(routes
//!   of the table), in memory.
//!
//! # When to re-dump by hand
//! Never in steady state. Dumps flagged `NLM_F_DUMP_INTR` (the table changed while it
//! was read) are restarted here. Routes in tables not tracked by the [`NodeState`] are
//! not followed; make a new state with the tables wanted and [`Rtnl::refresh`] it.
#![forbid(unsafe_code)]

mod error;
mod parse;
mod socket;
mod state;
mod types;

pub use error::{Error, Result};
pub use socket::Rtnl;
pub use state::{Changes, NodeState, Stats};
pub use types::{
    Address, Link, Neighbour, NextHop, NudState, Route, RouteKind, TABLE_LOCAL, TABLE_MAIN,
};

#[cfg(test)]
mod tests;
