//! From netlink datagrams to this crate's types.
//!
//! A datagram holds one or more netlink messages, each `NLMSG_ALIGN`ed (netlink(7)).
//! [`frames`] walks them by their headers alone, so one message the library cannot
//! decode (a newer kernel's attribute layout) does not hide the `NLMSG_DONE` or
//! `NLMSG_ERROR` after it; [`decode`] turns one message into a [`Msg`].

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS, NLM_F_CAPPED,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourFlags, NeighbourMessage,
    NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHopFlags, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::types::{Address, Link, Neighbour, NextHop, NudState, Route, RouteKind};

/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDRLEN: usize = 16;
/// `NLMSGERR_ATTR_MSG` (include/uapi/linux/netlink.h): the extended-ack text.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// One netlink message of a datagram, by its header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

/// The messages of a datagram. Stops at the first malformed length (the rest of the
/// datagram cannot be framed), yielding `Err` with what was wrong.
pub(crate) fn frames(mut buf: &[u8]) -> impl Iterator<Item = Result<Frame<'_>, String>> {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            let e = format!(
                "message length {len} with {} bytes left in the datagram",
                buf.len()
            );
            buf = &[];
            return Some(Err(e));
        }
        let frame = Frame {
            ty: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]),
            bytes: &buf[..len],
        };
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or(&[]);
        Some(Ok(frame))
    })
}

/// One decoded message, reduced to what this crate keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Msg {
    /// `NLMSG_DONE`, with its code (negative: the dump failed).
    Done(i32),
    /// `NLMSG_ERROR`: 0 is an ACK, negative an errno; with the extended-ack text.
    Error(i32, Option<String>),
    NewLink(Link),
    DelLink(u32),
    NewAddress(Address),
    DelAddress(Address),
    NewRoute(Route),
    DelRoute(Route),
    /// A route with `RTM_F_CLONED`: a cache entry, or the answer to `RTM_GETROUTE`.
    ClonedRoute(Route),
    NewNeighbour(Neighbour),
    DelNeighbour(Neighbour),
    /// Anything else (IPv6, other families, cloned routes, proxy entries, NOOP, ...).
    Ignored,
}

/// Decode one message.
pub(crate) fn decode(frame: &Frame<'_>) -> Result<Msg, String> {
    match frame.ty {
        NLMSG_DONE => {
            // The payload is an int; some kernels send an empty NLMSG_DONE payload.
            let p = &frame.bytes[NLMSG_HDRLEN..];
            let code = p
                .get(..4)
                .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            return Ok(Msg::Done(code));
        }
        NLMSG_ERROR => return decode_error(frame),
        _ => {}
    }
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame.bytes)
        .map_err(|e| format!("message type {}: {e}", frame.ty))?;
    let NetlinkPayload::InnerMessage(inner) = msg.payload else {
        return Ok(Msg::Ignored);
    };
    Ok(match inner {
        RouteNetlinkMessage::NewLink(m) => link(&m).map_or(Msg::Ignored, Msg::NewLink),
        RouteNetlinkMessage::DelLink(m) => Msg::DelLink(m.header.index),
        RouteNetlinkMessage::NewAddress(m) => address(&m).map_or(Msg::Ignored, Msg::NewAddress),
        RouteNetlinkMessage::DelAddress(m) => address(&m).map_or(Msg::Ignored, Msg::DelAddress),
        RouteNetlinkMessage::NewRoute(m) => match route(&m) {
            Some(r) if m.header.flags.contains(RouteFlags::Cloned) => Msg::ClonedRoute(r),
            Some(r) => Msg::NewRoute(r),
            None => Msg::Ignored,
        },
        RouteNetlinkMessage::DelRoute(m) if !m.header.flags.contains(RouteFlags::Cloned) => {
            route(&m).map_or(Msg::Ignored, Msg::DelRoute)
        }
        RouteNetlinkMessage::NewNeighbour(m) => {
            neighbour(&m).map_or(Msg::Ignored, Msg::NewNeighbour)
        }
        RouteNetlinkMessage::DelNeighbour(m) => {
            neighbour(&m).map_or(Msg::Ignored, Msg::DelNeighbour)
        }
        _ => Msg::Ignored,
    })
}

/// `struct nlmsgerr` (include/uapi/linux/netlink.h): `int error`, the request's
/// `nlmsghdr` (plus its payload unless `NLM_F_CAPPED`), then, with `NLM_F_ACK_TLVS`,
/// the extended-ack attributes.
fn decode_error(frame: &Frame<'_>) -> Result<Msg, String> {
    let p = &frame.bytes[NLMSG_HDRLEN..];
    let code = p
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or("NLMSG_ERROR shorter than its error code")?;
    let mut text = None;
    if frame.flags & NLM_F_ACK_TLVS != 0 {
        let req = &p[4..];
        let req_len = if frame.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            req.get(..4).map_or(NLMSG_HDRLEN, |b| {
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize
            })
        };
        let mut tlvs = req.get((req_len + 3) & !3..).unwrap_or(&[]);
        while tlvs.len() >= 4 {
            let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
            let ty = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
            if len < 4 || len > tlvs.len() {
                break;
            }
            if ty == NLMSGERR_ATTR_MSG {
                let s = &tlvs[4..len];
                let s = s.split(|&b| b == 0).next().unwrap_or(s);
                text = Some(String::from_utf8_lossy(s).into_owned());
            }
            tlvs = tlvs.get((len + 3) & !3..).unwrap_or(&[]);
        }
    }
    Ok(Msg::Error(code, text))
}

fn mac6(bytes: &[u8]) -> Option<[u8; 6]> {
    <[u8; 6]>::try_from(bytes).ok()
}

pub(crate) fn link(m: &LinkMessage) -> Option<Link> {
    let mut l = Link {
        ifindex: m.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        admin_up: m.header.flags.contains(LinkFlags::Up),
        oper_up: m.header.flags.contains(LinkFlags::Running),
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name.clone_from(n),
            LinkAttribute::Address(b) => l.mac = mac6(b),
            LinkAttribute::Mtu(mtu) => l.mtu = *mtu,
            _ => {}
        }
    }
    Some(l)
}

pub(crate) fn address(m: &AddressMessage) -> Option<Address> {
    if m.header.family != AddressFamily::Inet {
        return None;
    }
    let (mut local, mut addr) = (None, None);
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(IpAddr::V4(ip)) => local = Some(*ip),
            AddressAttribute::Address(IpAddr::V4(ip)) => addr = Some(*ip),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and equal to IFA_LOCAL otherwise (rtnetlink(7)).
    let ip = local.or(addr)?;
    Some(Address {
        ifindex: m.header.index,
        net: Ipv4Net::new(ip, m.header.prefix_len).ok()?,
    })
}

fn route_kind(t: RouteType) -> RouteKind {
    match t {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::Local => RouteKind::Local,
        RouteType::Broadcast => RouteKind::Broadcast,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
        other => RouteKind::Other(other.into()),
    }
}

fn gateway(attrs: &[RouteAttribute]) -> Option<Ipv4Addr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

/// An IPv4 route; `None` for other families. [`decode`] tells cached clones
/// (`RTM_F_CLONED`: PMTU exceptions, `RTM_GETROUTE` answers) apart: not FIB entries.
pub(crate) fn route(m: &RouteMessage) -> Option<Route> {
    let h = &m.header;
    if h.address_family != AddressFamily::Inet {
        return None;
    }
    let mut table = u32::from(h.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let (mut priority, mut prefsrc, mut oif, mut multipath) = (0, None, None, None);
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
            RouteAttribute::Priority(p) => priority = *p,
            RouteAttribute::PrefSource(RouteAddress::Inet(ip)) => prefsrc = Some(*ip),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            _ => {}
        }
    }
    let kind = route_kind(h.kind);
    // The route's own flags carry RTNH_F_* for single-path routes (fib_dump_info).
    let rflags = h.flags.bits();
    let bit = |f: RouteNextHopFlags| rflags & u32::from(f.bits()) != 0;
    let next_hops = match multipath {
        Some(hops) => hops
            .iter()
            .map(|nh| NextHop {
                oif: nh.interface_index,
                gateway: gateway(&nh.attributes),
                weight: u16::from(nh.hops) + 1,
                onlink: nh.flags.contains(RouteNextHopFlags::Onlink),
                dead: nh.flags.contains(RouteNextHopFlags::Dead),
                linkdown: nh.flags.contains(RouteNextHopFlags::Linkdown),
            })
            .collect(),
        None => match oif {
            Some(oif) if kind == RouteKind::Unicast || kind == RouteKind::Local => {
                vec![NextHop {
                    oif,
                    gateway: gateway(&m.attributes),
                    weight: 1,
                    onlink: bit(RouteNextHopFlags::Onlink),
                    dead: bit(RouteNextHopFlags::Dead),
                    linkdown: bit(RouteNextHopFlags::Linkdown),
                }]
            }
            _ => Vec::new(),
        },
    };
    Some(Route {
        table,
        dst: Ipv4Net::new(dst, h.destination_prefix_length).ok()?,
        tos: h.tos,
        priority,
        protocol: h.protocol.into(),
        scope: h.scope.into(),
        kind,
        prefsrc,
        next_hops,
    })
}

fn nud(s: NeighbourState) -> NudState {
    match s {
        NeighbourState::None => NudState::None,
        NeighbourState::Incomplete => NudState::Incomplete,
        NeighbourState::Reachable => NudState::Reachable,
        NeighbourState::Stale => NudState::Stale,
        NeighbourState::Delay => NudState::Delay,
        NeighbourState::Probe => NudState::Probe,
        NeighbourState::Failed => NudState::Failed,
        NeighbourState::Noarp => NudState::Noarp,
        NeighbourState::Permanent => NudState::Permanent,
        other => NudState::Other(other.into()),
    }
}

/// An IPv4 neighbour; `None` for other families and proxy-ARP entries.
pub(crate) fn neighbour(m: &NeighbourMessage) -> Option<Neighbour> {
    let h = &m.header;
    if h.family != AddressFamily::Inet || h.flags.contains(NeighbourFlags::Proxy) {
        return None;
    }
    let (mut ip, mut mac, mut managed) = (None, None, false);
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(*a),
            NeighbourAttribute::LinkLayerAddress(b) => mac = mac6(b),
            NeighbourAttribute::ExtFlags(f) => managed = f.contains(NeighbourExtFlags::Managed),
            _ => {}
        }
    }
    Some(Neighbour {
        ip: ip?,
        ifindex: h.ifindex,
        mac,
        state: nud(h.state),
        flags: h.flags.bits(),
        managed,
    })
}
