//! [`Rtnl`]: two `NETLINK_ROUTE` sockets, one for requests, one for multicast events.
//!
//! Requests get their own socket so that a dump's replies never interleave with
//! notifications; replies are matched by sequence number, and anything with an older
//! sequence number (the tail of a request that timed out) is dropped. The kernel
//! answers rtnetlink requests synchronously (in the sender's `sendmsg`, continuing a
//! dump in each `recvmsg`), so waiting for a reply only guards against the impossible;
//! it is bounded by [`Rtnl::set_timeout`] anyway.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::error::{Error, Result};
use crate::parse::{self, Msg};
use crate::state::{Changes, NodeState};
use crate::types::{Address, Link, Neighbour, NextHop, Route, RouteKind};

/// Receive buffer for one datagram. The kernel caps dump datagrams at 32 KiB
/// (`netlink_dump`, `max_recvmsg_len`); notifications are far smaller.
const RECV_BUF: usize = 64 * 1024;
/// Asked-for `SO_RCVBUF` of the event socket (the kernel caps it at `net.core.rmem_max`).
const EVENT_RCVBUF: usize = 4 << 20;
/// How often a dump is retried when the kernel flags it `NLM_F_DUMP_INTR`.
const DUMP_TRIES: u32 = 8;

/// The node's rtnetlink: dumps, FIB lookups, neighbour changes, and the multicast
/// events that keep a [`NodeState`] current. Synchronous; never blocks in
/// [`Rtnl::poll_events`]. Register [`AsRawFd::as_raw_fd`] (the event socket) with
/// mio/epoll for readability and call `poll_events` when it fires (it drains the
/// socket, as edge-triggered polling needs).
#[derive(Debug)]
pub struct Rtnl {
    requests: Socket,
    events: Socket,
    seq: u32,
    buf: Vec<u8>,
    timeout: Duration,
}

fn rtnl_socket(what: &'static str) -> Result<Socket> {
    let mut s = Socket::new(NETLINK_ROUTE).map_err(|e| Error::socket(what, e))?;
    s.bind_auto().map_err(|e| Error::socket("bind", e))?;
    // Best effort: extended acks give the kernel's reason for a refusal; capped acks
    // keep the request out of error replies. Both exist since 4.12.
    let _ = s.set_ext_ack(true);
    let _ = s.set_cap_ack(true);
    Ok(s)
}

impl Rtnl {
    /// Open the request socket and the event socket, the latter subscribed to
    /// `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV4_ROUTE` and `RTNLGRP_NEIGH`
    /// and non-blocking. Subscribe before the first [`Rtnl::refresh`] so that no change
    /// falls between the dump and the events.
    ///
    /// # Errors
    /// A socket call failed.
    pub fn open() -> Result<Rtnl> {
        let requests = rtnl_socket("socket(NETLINK_ROUTE) for requests")?;
        requests
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::socket("connect", e))?;
        requests
            .set_non_blocking(true)
            .map_err(|e| Error::socket("O_NONBLOCK", e))?;
        // Strict checking makes the kernel filter route dumps by table (4.20+).
        let _ = requests.set_netlink_get_strict_chk(true);

        let events = rtnl_socket("socket(NETLINK_ROUTE) for events")?;
        for group in [
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_IPV4_IFADDR,
            libc::RTNLGRP_IPV4_ROUTE,
            libc::RTNLGRP_NEIGH,
        ] {
            events
                .add_membership(group)
                .map_err(|e| Error::socket("NETLINK_ADD_MEMBERSHIP", e))?;
        }
        let _ = events.set_rx_buf_sz(EVENT_RCVBUF);
        events
            .set_non_blocking(true)
            .map_err(|e| Error::socket("O_NONBLOCK", e))?;
        Ok(Rtnl {
            requests,
            events,
            seq: 0,
            buf: vec![0; RECV_BUF],
            timeout: Duration::from_secs(2),
        })
    }

    /// Ask for an event-socket receive buffer of `bytes` (`SO_RCVBUF`; default 4 MiB;
    /// the kernel caps it at `net.core.rmem_max` and doubles it for bookkeeping).
    /// Smaller means overruns, hence full re-dumps, under bursts of changes.
    ///
    /// # Errors
    /// The setsockopt failed.
    pub fn set_event_buffer(&mut self, bytes: usize) -> Result<()> {
        self.events
            .set_rx_buf_sz(bytes)
            .map_err(|e| Error::socket("SO_RCVBUF", e))
    }

    /// How long a request waits for the kernel's answer (default 2 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    // ------------------------------------------------------------------ requests

    /// Send `msg` and collect the replies with its sequence number: up to `NLMSG_DONE`
    /// for a dump, up to the ACK otherwise. Returns the replies and whether the kernel
    /// flagged the dump interrupted.
    fn transact(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(Vec<Msg>, bool)> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.requests
            .send(&out, 0)
            .map_err(|e| Error::socket("send", e))?;

        let deadline = Instant::now() + self.timeout;
        let (mut replies, mut interrupted) = (Vec::new(), false);
        loop {
            let n = match self.requests.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_readable(self.requests.as_fd(), deadline, op, self.timeout)?;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::socket("recv", e)),
            };
            if n > self.buf.len() {
                return Err(Error::Decode {
                    op: op.to_owned(),
                    detail: format!("a {n}-byte datagram does not fit {RECV_BUF} bytes"),
                });
            }
            if take_replies(
                &self.buf[..n],
                op,
                seq,
                dump,
                &mut replies,
                &mut interrupted,
            )? {
                return Ok((replies, interrupted));
            }
        }
    }

    /// A dump, restarted while the kernel flags it interrupted.
    fn dump(
        &mut self,
        op: &str,
        msg: &RouteNetlinkMessage,
        interrupted_count: impl FnMut(),
    ) -> Result<Vec<Msg>> {
        retry_interrupted(
            op,
            || self.transact(op, msg.clone(), NLM_F_DUMP),
            interrupted_count,
        )
    }

    /// All links (`RTM_GETLINK` dump). O(links).
    ///
    /// # Errors
    /// The dump failed.
    pub fn dump_links(&mut self) -> Result<Vec<Link>> {
        self.dump_links_counted(&mut 0)
    }

    fn dump_links_counted(&mut self, intr: &mut u64) -> Result<Vec<Link>> {
        let msg = RouteNetlinkMessage::GetLink(LinkMessage::default());
        let replies = self.dump("RTM_GETLINK dump", &msg, || *intr += 1)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                Msg::NewLink(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    /// All IPv4 addresses (`RTM_GETADDR` dump, `AF_INET`). O(addresses).
    ///
    /// # Errors
    /// The dump failed.
    pub fn dump_addresses(&mut self) -> Result<Vec<Address>> {
        self.dump_addresses_counted(&mut 0)
    }

    fn dump_addresses_counted(&mut self, intr: &mut u64) -> Result<Vec<Address>> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        let msg = RouteNetlinkMessage::GetAddress(m);
        let replies = self.dump("RTM_GETADDR dump", &msg, || *intr += 1)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                Msg::NewAddress(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    /// The IPv4 routes of `table` (`RTM_GETROUTE` dump, `AF_INET`, filtered by the kernel
    /// under strict checking and here in any case). O(routes in all tables) on kernels
    /// without strict dump filtering, O(routes in the table) otherwise. A table that
    /// does not exist (yet) is empty.
    ///
    /// # Errors
    /// The dump failed.
    pub fn dump_routes(&mut self, table: u32) -> Result<Vec<Route>> {
        self.dump_routes_counted(table, &mut 0)
    }

    fn dump_routes_counted(&mut self, table: u32, intr: &mut u64) -> Result<Vec<Route>> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        // rtm_table is 8 bits; larger ids go in RTA_TABLE (RT_TABLE_COMPAT in rtm_table).
        m.header.table = u8::try_from(table).unwrap_or(252);
        m.attributes.push(RouteAttribute::Table(table));
        let msg = RouteNetlinkMessage::GetRoute(m);
        let replies = match self.dump(&format!("RTM_GETROUTE dump table {table}"), &msg, || {
            *intr += 1;
        }) {
            // A filtered dump of a table that does not exist (yet): ENOENT.
            Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(Vec::new()),
            r => r?,
        };
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                Msg::NewRoute(r) if r.table == table => Some(r),
                _ => None,
            })
            .collect())
    }

    /// All IPv4 neighbour entries (`RTM_GETNEIGH` dump, `AF_INET`). O(neighbours).
    ///
    /// # Errors
    /// The dump failed.
    pub fn dump_neighbours(&mut self) -> Result<Vec<Neighbour>> {
        self.dump_neighbours_counted(&mut 0)
    }

    fn dump_neighbours_counted(&mut self, intr: &mut u64) -> Result<Vec<Neighbour>> {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        let msg = RouteNetlinkMessage::GetNeighbour(m);
        let replies = self.dump("RTM_GETNEIGH dump", &msg, || *intr += 1)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                Msg::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .collect())
    }

    // ------------------------------------------------------------------ the view

    /// Re-dump links, addresses, the tracked route tables and neighbours into `state`.
    /// Costs four (plus one per extra table) dumps, O(size of the tables); needed once
    /// at start and after an overrun, which [`Rtnl::poll_events`] does by itself.
    ///
    /// # Errors
    /// A dump failed; `state` then holds what was dumped before it.
    pub fn refresh(&mut self, state: &mut NodeState) -> Result<Changes> {
        let mut intr = 0;
        let mut c = Changes {
            resynced: true,
            ..Changes::default()
        };
        let links = self.dump_links_counted(&mut intr);
        let r = links.map(|l| c.links = state.set_links(l));
        let r = r.and_then(|()| {
            let a = self.dump_addresses_counted(&mut intr)?;
            c.addresses = state.set_addresses(a);
            c.routes = self.redump_routes(state, &mut intr)?;
            let n = self.dump_neighbours_counted(&mut intr)?;
            c.neighbours = state.set_neighbours(n);
            Ok(())
        });
        state.stats.full_dumps += 1;
        state.stats.interrupted_dumps += intr;
        r.map(|()| c)
    }

    fn redump_routes(&mut self, state: &mut NodeState, intr: &mut u64) -> Result<bool> {
        let mut changed = false;
        for table in state.tables().to_vec() {
            let routes = self.dump_routes_counted(table, intr)?;
            changed |= state.set_routes(table, routes);
        }
        Ok(changed)
    }

    /// Read every pending multicast message without blocking and apply it to `state`.
    /// Re-dumps the tracked route tables when a link went up/down or away or an
    /// address went away (the kernel removes or flags routes then without
    /// notifications), and everything after an overrun (`ENOBUFS`: notifications were
    /// lost), counted in [`NodeState::stats`]. O(pending messages), plus the dumps.
    ///
    /// # Errors
    /// A socket call or a re-dump failed.
    pub fn poll_events(&mut self, state: &mut NodeState) -> Result<Changes> {
        let mut changes = Changes::default();
        let (mut overrun, mut redump_routes) = (false, false);
        loop {
            let n = match self.events.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // The kernel dropped notifications for us; keep draining, then
                    // re-dump (the socket's error is cleared by this read).
                    state.stats.overruns += 1;
                    overrun = true;
                    continue;
                }
                Err(e) => return Err(Error::socket("recv (events)", e)),
            };
            if n > self.buf.len() {
                // A truncated notification is a lost one.
                overrun = true;
                continue;
            }
            if overrun {
                continue; // a full re-dump follows anyway
            }
            for frame in parse::frames(&self.buf[..n]) {
                match frame.and_then(|f| parse::decode(&f)) {
                    Ok(msg) => {
                        state.stats.events += 1;
                        let a = state.apply(msg);
                        changes.merge(a.changes);
                        redump_routes |= a.redump_routes;
                    }
                    Err(_) => state.stats.undecodable += 1,
                }
            }
        }
        if overrun {
            changes.merge(self.refresh(state)?);
        } else if redump_routes {
            let mut intr = 0;
            let r = self.redump_routes(state, &mut intr);
            state.stats.route_dumps += 1;
            state.stats.interrupted_dumps += intr;
            changes.routes |= r?;
        }
        Ok(changes)
    }

    // ------------------------------------------------------------------ FIB

    fn get_route(&mut self, dst: Ipv4Addr, fib_match: bool) -> Result<Route> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 32;
        // RTM_F_LOOKUP_TABLE: report the table the match came from (else "main").
        m.header.flags = RouteFlags::LookupTable;
        if fib_match {
            m.header.flags |= RouteFlags::FibMatch;
        }
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
        let op = format!(
            "RTM_GETROUTE {dst}{}",
            if fib_match { " fibmatch" } else { "" }
        );
        let (replies, _) = match self.transact(&op, RouteNetlinkMessage::GetRoute(m), 0) {
            Err(Error::Kernel {
                source, ext_ack, ..
            }) if matches!(
                source.raw_os_error(),
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENOENT | libc::EINVAL)
            ) =>
            {
                return Err(Error::NoRoute {
                    dst,
                    reason: ext_ack.unwrap_or_else(|| source.to_string()),
                });
            }
            r => r?,
        };
        replies
            .into_iter()
            .find_map(|m| match m {
                Msg::NewRoute(r) | Msg::ClonedRoute(r) => Some(r),
                _ => None,
            })
            .ok_or_else(|| Error::Decode {
                op,
                detail: "the kernel acknowledged without a route".into(),
            })
    }

    /// The kernel's next hop for `dst` — what `ip route get DST` prints: the output
    /// interface and the gateway (`None` when on-link), after `ip rule` policy routing
    /// and, for multipath routes, the kernel's choice of one hop. One request, O(1).
    ///
    /// # Errors
    /// [`Error::NoRoute`] when nothing matches, [`Error::NotForwarded`] when the match
    /// is local, blackhole, unreachable or prohibit.
    pub fn fib_lookup(&mut self, dst: Ipv4Addr) -> Result<NextHop> {
        let r = self.get_route(dst, false)?;
        match (r.kind, r.next_hops.first()) {
            (RouteKind::Unicast, Some(nh)) => Ok(*nh),
            (kind, _) => Err(Error::NotForwarded {
                dst,
                kind: kind.to_string(),
            }),
        }
    }

    /// The FIB entry the kernel matches for `dst` (`ip route get fibmatch DST`,
    /// `RTM_F_FIB_MATCH`, Linux 4.14+): the route as installed, with every multipath
    /// next hop and its weight, after policy routing. One request, O(1).
    ///
    /// # Errors
    /// [`Error::NoRoute`] when nothing matches.
    pub fn fib_match(&mut self, dst: Ipv4Addr) -> Result<Route> {
        self.get_route(dst, true)
    }

    // ------------------------------------------------------------------ neighbours

    /// The neighbour entry for `ip` on `ifindex` (`RTM_GETNEIGH` for one entry, 5.0+).
    ///
    /// # Errors
    /// The request failed (other than the entry not existing).
    pub fn neighbour(&mut self, ip: Ipv4Addr, ifindex: u32) -> Result<Option<Neighbour>> {
        let msg = RouteNetlinkMessage::GetNeighbour(neigh_msg(ip, ifindex));
        match self.transact(&format!("RTM_GETNEIGH {ip} dev {ifindex}"), msg, 0) {
            Ok((replies, _)) => Ok(replies.into_iter().find_map(|m| match m {
                Msg::NewNeighbour(n) => Some(n),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Make `ip` on `ifindex` a kernel-managed neighbour (`ip neigh replace IP dev X
    /// managed`): `RTM_NEWNEIGH` with `NLM_F_CREATE | NLM_F_REPLACE`, state `NUD_NONE`
    /// and `NTF_EXT_MANAGED` in `NDA_FLAGS_EXT` (Linux 5.16+). The kernel then resolves
    /// it at once and keeps re-resolving it, with no traffic from us — the kernel never
    /// sees the frames podfwd forwards, so it would never resolve a gateway by itself.
    /// Idempotent. Two requests (the change and a read-back that proves the kernel kept
    /// the flag).
    ///
    /// # Errors
    /// [`Error::ManagedUnsupported`] on kernels that ignore the flag (the entry just
    /// created is removed again); [`Error::Kernel`] when the kernel refuses (no such
    /// interface, no permission, a permanent entry for that address exists).
    pub fn ensure_managed_neighbour(&mut self, ip: Ipv4Addr, ifindex: u32) -> Result<()> {
        let mut m = neigh_msg(ip, ifindex);
        m.header.state = NeighbourState::None;
        m.attributes
            .push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
        let op = format!("RTM_NEWNEIGH {ip} dev {ifindex} managed");
        self.transact(
            &op,
            RouteNetlinkMessage::NewNeighbour(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        match self.neighbour(ip, ifindex)? {
            Some(n) if n.managed => Ok(()),
            _ => {
                let _ = self.del_managed_neighbour(ip, ifindex);
                Err(Error::ManagedUnsupported { ip, ifindex })
            }
        }
    }

    /// Delete the neighbour entry for `ip` on `ifindex` (`RTM_DELNEIGH`), managed or
    /// not. Returns whether it existed.
    ///
    /// # Errors
    /// The kernel refused (other than the entry not existing).
    pub fn del_managed_neighbour(&mut self, ip: Ipv4Addr, ifindex: u32) -> Result<bool> {
        let msg = RouteNetlinkMessage::DelNeighbour(neigh_msg(ip, ifindex));
        match self.transact(&format!("RTM_DELNEIGH {ip} dev {ifindex}"), msg, 0) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn neigh_msg(ip: Ipv4Addr, ifindex: u32) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.ifindex = ifindex;
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    m
}

/// Takes the replies to request `seq` out of one received datagram `buf` into
/// `replies`; `interrupted` is set when any of them carries `NLM_F_DUMP_INTR` (the
/// kernel's table changed while it dumped, `nl_dump_check_consistent`). Returns whether
/// the request is answered: `NLMSG_DONE` for a dump, the ACK otherwise. Messages with
/// another sequence number (the tail of an earlier request that timed out) are skipped.
///
/// # Errors
/// The kernel's error for the request, or a datagram that cannot be framed.
pub(crate) fn take_replies(
    buf: &[u8],
    op: &str,
    seq: u32,
    dump: bool,
    replies: &mut Vec<Msg>,
    interrupted: &mut bool,
) -> Result<bool> {
    for frame in parse::frames(buf) {
        let frame = frame.map_err(|detail| Error::Decode {
            op: op.to_owned(),
            detail,
        })?;
        if frame.seq != seq {
            continue;
        }
        *interrupted |= frame.flags & NLM_F_DUMP_INTR != 0;
        match parse::decode(&frame) {
            Ok(Msg::Done(code)) if dump => {
                return if code < 0 {
                    Err(kernel_error(op, code, None))
                } else {
                    Ok(true)
                };
            }
            Ok(Msg::Error(0, _)) if !dump => return Ok(true),
            Ok(Msg::Error(code, text)) => return Err(kernel_error(op, code, text)),
            Ok(m) => replies.push(m),
            // One message we cannot read must not lose the rest of the dump.
            Err(_) => replies.push(Msg::Ignored),
        }
    }
    Ok(false)
}

/// Runs the dump `attempt` (its replies and whether it was interrupted) again while it
/// is interrupted, at most [`DUMP_TRIES`] times, calling `interrupted_count` for each
/// interrupted one; a dump that was interrupted is thrown away whole.
///
/// # Errors
/// `attempt`'s error, or [`Error::DumpInterrupted`] when every try was interrupted.
pub(crate) fn retry_interrupted<T>(
    op: &str,
    mut attempt: impl FnMut() -> Result<(T, bool)>,
    mut interrupted_count: impl FnMut(),
) -> Result<T> {
    for _ in 0..DUMP_TRIES {
        let (replies, interrupted) = attempt()?;
        if !interrupted {
            return Ok(replies);
        }
        interrupted_count();
    }
    Err(Error::DumpInterrupted {
        op: op.to_owned(),
        tries: DUMP_TRIES,
    })
}

pub(crate) fn kernel_error(op: &str, code: i32, ext_ack: Option<String>) -> Error {
    Error::Kernel {
        op: op.to_owned(),
        source: io::Error::from_raw_os_error(code.saturating_neg()),
        ext_ack,
    }
}

fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant, op: &str, timeout: Duration) -> Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    let timed_out = || Error::Timeout {
        op: op.to_owned(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    if left.is_zero() {
        return Err(timed_out());
    }
    let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match nix::poll::poll(&mut fds, ms) {
        Ok(0) => Err(timed_out()),
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(Error::socket("poll", e.into())),
    }
}

/// The event socket: poll it for readability, then call [`Rtnl::poll_events`].
impl AsRawFd for Rtnl {
    fn as_raw_fd(&self) -> RawFd {
        self.events.as_raw_fd()
    }
}

/// The event socket, as for [`AsRawFd`].
impl AsFd for Rtnl {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }
}
