//! Messages built with netlink-packet-route's types, serialized as the kernel would
//! send them, fed to the parser and the state. No sockets, no root.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use netlink_packet_core::{
    DoneMessage, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLMSG_ERROR, NLM_F_ACK_TLVS,
    NLM_F_CAPPED, NLM_F_DUMP_INTR, NLM_F_MULTIPART,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteNextHopFlags,
    RouteProtocol, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::parse::{self, Msg};
use crate::socket;
use crate::state::NodeState;
use crate::types::{NextHop, NudState, RouteKind, TABLE_MAIN};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

/// Serialize messages back to back into one datagram, each `NLMSG_ALIGN`ed.
fn datagram(msgs: Vec<NetlinkPayload<RouteNetlinkMessage>>, seq: u32) -> Vec<u8> {
    datagram_flagged(msgs, seq, NLM_F_MULTIPART)
}

/// [`datagram`] with these `nlmsg_flags` on every message.
fn datagram_flagged(
    msgs: Vec<NetlinkPayload<RouteNetlinkMessage>>,
    seq: u32,
    flags: u16,
) -> Vec<u8> {
    let mut out = Vec::new();
    for payload in msgs {
        let mut h = NetlinkHeader::default();
        h.sequence_number = seq;
        h.flags = flags;
        let mut m = NetlinkMessage::new(h, payload);
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        out.extend_from_slice(&buf);
        out.resize((out.len() + 3) & !3, 0);
    }
    out
}

fn decode_all(buf: &[u8]) -> Vec<Msg> {
    parse::frames(buf)
        .map(|f| parse::decode(&f.unwrap()).unwrap())
        .collect()
}

fn one(msg: RouteNetlinkMessage) -> Msg {
    let mut v = decode_all(&datagram(vec![msg.into()], 1));
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn link_msg(ifindex: u32, name: &str, mtu: u32, flags: LinkFlags) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = ifindex;
    m.header.flags = flags;
    m.attributes = vec![
        LinkAttribute::IfName(name.into()),
        LinkAttribute::Address(MAC_A.to_vec()),
        LinkAttribute::Mtu(mtu),
    ];
    m
}

fn route_msg(table: u32, dst: &str, gw: Option<&str>, oif: u32) -> RouteMessage {
    let dst = net(dst);
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.destination_prefix_length = dst.prefix_len();
    m.header.table = u8::try_from(table).unwrap_or(252);
    m.header.protocol = RouteProtocol::Static;
    m.header.kind = RouteType::Unicast;
    m.attributes = vec![
        RouteAttribute::Table(table),
        RouteAttribute::Destination(RouteAddress::Inet(dst.addr())),
        RouteAttribute::Oif(oif),
    ];
    if let Some(gw) = gw {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(ip(gw))));
    }
    m
}

fn neigh_msg(addr: &str, ifindex: u32, state: NeighbourState, managed: bool) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.ifindex = ifindex;
    m.header.state = state;
    m.attributes = vec![
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip(addr))),
        NeighbourAttribute::LinkLayerAddress(MAC_B.to_vec()),
    ];
    if managed {
        m.attributes
            .push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
    }
    m
}

#[test]
fn link_fields() {
    let m = link_msg(3, "lxc0", 1450, LinkFlags::Up | LinkFlags::Running);
    let Msg::NewLink(l) = one(RouteNetlinkMessage::NewLink(m)) else {
        panic!("not a link")
    };
    assert_eq!(
        (l.ifindex, l.name.as_str(), l.mac, l.mtu),
        (3, "lxc0", Some(MAC_A), 1450)
    );
    assert!(l.admin_up && l.oper_up && l.is_up());

    let m = link_msg(3, "lxc0", 1450, LinkFlags::Up);
    let Msg::NewLink(l) = one(RouteNetlinkMessage::NewLink(m)) else {
        panic!("not a link")
    };
    assert!(l.admin_up && !l.oper_up && !l.is_up(), "up but no carrier");
}

#[test]
fn address_prefers_local() {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = 24;
    m.header.index = 7;
    m.attributes = vec![
        AddressAttribute::Address(IpAddr::V4(ip("198.18.1.2"))), // the peer on ptp links
        AddressAttribute::Local(IpAddr::V4(ip("198.18.1.1"))),
    ];
    let Msg::NewAddress(a) = one(RouteNetlinkMessage::NewAddress(m.clone())) else {
        panic!("not an address")
    };
    assert_eq!((a.ifindex, a.net), (7, net("198.18.1.1/24")));

    m.header.family = AddressFamily::Inet6;
    assert_eq!(one(RouteNetlinkMessage::NewAddress(m)), Msg::Ignored);
}

#[test]
fn route_via_gateway_in_table_201() {
    let mut m = route_msg(201, "10.0.2.0/24", Some("198.18.1.254"), 4);
    m.attributes.push(RouteAttribute::Priority(20));
    let Msg::NewRoute(r) = one(RouteNetlinkMessage::NewRoute(m)) else {
        panic!("not a route")
    };
    assert_eq!(r.table, 201);
    assert_eq!(r.dst, net("10.0.2.0/24"));
    assert_eq!(
        (r.priority, r.protocol, r.kind),
        (20, 4, RouteKind::Unicast)
    );
    assert_eq!(r.next_hops.len(), 1);
    let nh = r.next_hops[0];
    assert_eq!(
        (nh.oif, nh.gateway, nh.weight),
        (4, Some(ip("198.18.1.254")), 1)
    );
    assert_eq!(nh.via(ip("10.0.2.9")), ip("198.18.1.254"));
}

#[test]
fn on_link_route_and_via() {
    let m = route_msg(TABLE_MAIN, "198.18.1.0/24", None, 4);
    let Msg::NewRoute(r) = one(RouteNetlinkMessage::NewRoute(m)) else {
        panic!("not a route")
    };
    let nh = r.next_hops[0];
    assert_eq!(nh.gateway, None);
    assert_eq!(
        nh.via(ip("198.18.1.9")),
        ip("198.18.1.9"),
        "on-link: dst itself"
    );
}

#[test]
fn table_ids_above_255_come_from_rta_table() {
    let m = route_msg(1000, "10.0.9.0/24", Some("198.18.1.254"), 4);
    assert_eq!(m.header.table, 252);
    let Msg::NewRoute(r) = one(RouteNetlinkMessage::NewRoute(m)) else {
        panic!("not a route")
    };
    assert_eq!(r.table, 1000);
}

#[test]
fn multipath_next_hops_with_weights() {
    let mut m = route_msg(TABLE_MAIN, "10.0.3.0/24", None, 0);
    m.attributes
        .retain(|a| !matches!(a, RouteAttribute::Oif(_)));
    let mut a = RouteNextHop::default();
    a.interface_index = 4;
    a.hops = 0; // weight 1
    a.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(ip(
        "198.18.1.254",
    )))];
    let mut b = RouteNextHop::default();
    b.interface_index = 5;
    b.hops = 2; // weight 3
    b.flags = RouteNextHopFlags::Linkdown | RouteNextHopFlags::Dead;
    b.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(ip(
        "198.18.2.254",
    )))];
    m.attributes.push(RouteAttribute::MultiPath(vec![a, b]));
    let Msg::NewRoute(r) = one(RouteNetlinkMessage::NewRoute(m)) else {
        panic!("not a route")
    };
    assert_eq!(
        r.next_hops,
        vec![
            NextHop {
                oif: 4,
                gateway: Some(ip("198.18.1.254")),
                weight: 1,
                onlink: false,
                dead: false,
                linkdown: false,
            },
            NextHop {
                oif: 5,
                gateway: Some(ip("198.18.2.254")),
                weight: 3,
                onlink: false,
                dead: true,
                linkdown: true,
            },
        ]
    );
    assert!(r.next_hops[0].is_usable() && !r.next_hops[1].is_usable());
}

#[test]
fn blackhole_has_no_next_hop_and_clones_are_ignored() {
    let mut m = route_msg(TABLE_MAIN, "10.0.4.0/24", None, 0);
    m.attributes
        .retain(|a| !matches!(a, RouteAttribute::Oif(_)));
    m.header.kind = RouteType::BlackHole;
    let Msg::NewRoute(r) = one(RouteNetlinkMessage::NewRoute(m)) else {
        panic!("not a route")
    };
    assert_eq!((r.kind, r.next_hops.len()), (RouteKind::Blackhole, 0));

    let mut m = route_msg(TABLE_MAIN, "10.0.4.7/32", Some("198.18.1.254"), 4);
    m.header.flags = RouteFlags::Cloned;
    let mut s = NodeState::default();
    let msg = one(RouteNetlinkMessage::NewRoute(m));
    assert!(matches!(msg, Msg::ClonedRoute(_)), "{msg:?}");
    assert!(!s.apply(msg).changes.routes, "a clone is not a FIB entry");
    assert!(s.routes(TABLE_MAIN).is_empty());
}

#[test]
fn single_path_flags_come_from_rtm_flags() {
    let mut m = route_msg(TABLE_MAIN, "10.0.5.0/24", Some("198.18.1.254"), 4);
    m.header.flags = RouteFlags::Linkdown | RouteFlags::Onlink;
    let Msg::NewRoute(r) = one(RouteNetlinkMessage::NewRoute(m)) else {
        panic!("not a route")
    };
    assert!(r.next_hops[0].linkdown && r.next_hops[0].onlink && !r.next_hops[0].dead);
}

#[test]
fn neighbour_fields() {
    let m = neigh_msg("198.18.1.254", 4, NeighbourState::Reachable, true);
    let Msg::NewNeighbour(n) = one(RouteNetlinkMessage::NewNeighbour(m)) else {
        panic!("not a neighbour")
    };
    assert_eq!(
        (n.ip, n.ifindex, n.mac, n.state, n.managed),
        (
            ip("198.18.1.254"),
            4,
            Some(MAC_B),
            NudState::Reachable,
            true
        )
    );
    assert_eq!(n.usable_mac(), Some(MAC_B));

    let m = neigh_msg("198.18.1.254", 4, NeighbourState::Failed, false);
    let Msg::NewNeighbour(n) = one(RouteNetlinkMessage::NewNeighbour(m)) else {
        panic!("not a neighbour")
    };
    assert_eq!(
        (n.state, n.managed, n.usable_mac()),
        (NudState::Failed, false, None)
    );
}

#[test]
fn a_multi_part_dump_datagram_ends_in_done() {
    let buf = datagram(
        vec![
            RouteNetlinkMessage::NewLink(link_msg(1, "lo", 65536, LinkFlags::Up)).into(),
            RouteNetlinkMessage::NewLink(link_msg(2, "eth0", 1500, LinkFlags::Up)).into(),
            NetlinkPayload::Done(DoneMessage::default()),
        ],
        42,
    );
    let frames: Vec<_> = parse::frames(&buf).map(Result::unwrap).collect();
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| f.seq == 42));
    let msgs = decode_all(&buf);
    assert!(matches!(&msgs[1], Msg::NewLink(l) if l.name == "eth0"));
    assert_eq!(msgs[2], Msg::Done(0));
}

/// A dump whose replies carry `NLM_F_DUMP_INTR` (the table changed while the kernel
/// dumped it) is collected to its end and reported interrupted; replies to another
/// request are skipped.
#[test]
fn an_interrupted_dump_is_reported() {
    let links = |seq, flags| {
        datagram_flagged(
            vec![
                RouteNetlinkMessage::NewLink(link_msg(1, "lo", 65536, LinkFlags::Up)).into(),
                RouteNetlinkMessage::NewLink(link_msg(2, "eth0", 1500, LinkFlags::Up)).into(),
            ],
            seq,
            flags,
        )
    };
    let done = |seq| datagram(vec![NetlinkPayload::Done(DoneMessage::default())], seq);
    let (mut replies, mut intr) = (Vec::new(), false);
    let take = |buf: &[u8], replies: &mut Vec<Msg>, intr: &mut bool| {
        socket::take_replies(buf, "link dump", 7, true, replies, intr).unwrap()
    };
    assert!(!take(
        &links(6, NLM_F_MULTIPART | NLM_F_DUMP_INTR),
        &mut replies,
        &mut intr
    ));
    assert!(
        replies.is_empty() && !intr,
        "an older request's tail is skipped"
    );
    assert!(!take(&links(7, NLM_F_MULTIPART), &mut replies, &mut intr));
    assert!(!intr);
    assert!(!take(
        &links(7, NLM_F_MULTIPART | NLM_F_DUMP_INTR),
        &mut replies,
        &mut intr
    ));
    assert!(
        take(&done(7), &mut replies, &mut intr),
        "NLMSG_DONE ends the dump"
    );
    assert_eq!(replies.len(), 4);
    assert!(intr, "one interrupted part marks the whole dump");
}

/// An interrupted dump is thrown away and redone, counted each time; one that stays
/// interrupted gives up after 8 tries with an error that says why.
#[test]
fn interrupted_dumps_are_retried_then_refused() {
    let mut tries = 0;
    let mut counted = 0;
    let got = socket::retry_interrupted(
        "route dump",
        || {
            tries += 1;
            Ok((tries, tries < 3))
        },
        || counted += 1,
    );
    assert_eq!((got.unwrap(), counted), (3, 2));

    let mut counted = 0;
    let e =
        socket::retry_interrupted("route dump", || Ok(((), true)), || counted += 1).unwrap_err();
    assert_eq!(counted, 8);
    assert!(
        matches!(e, crate::Error::DumpInterrupted { tries: 8, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "rtnetlink: route dump was interrupted by concurrent changes 8 times in a row; \
         the table is changing too fast to read, try again later"
    );
}

#[test]
fn a_bad_length_stops_framing_with_an_error() {
    let mut buf = datagram(
        vec![RouteNetlinkMessage::NewLink(link_msg(1, "lo", 65536, LinkFlags::Up)).into()],
        1,
    );
    buf.extend_from_slice(&[200, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    let v: Vec<_> = parse::frames(&buf).collect();
    assert_eq!(v.len(), 2);
    assert!(v[0].is_ok());
    assert!(v[1].as_ref().unwrap_err().contains("length 200"));
}

/// An `NLMSG_ERROR` as a kernel with `NETLINK_CAP_ACK` + `NETLINK_EXT_ACK` sends it:
/// error code, the request's header only, then `NLMSGERR_ATTR_MSG`.
#[test]
fn error_with_extended_ack_text() {
    let text = b"Nexthop has invalid gateway\0";
    let mut payload = Vec::new();
    payload.extend_from_slice(&(-libc::EINVAL).to_ne_bytes());
    payload.extend_from_slice(&[0; 16]); // the request's nlmsghdr
    let tlv_len = 4 + text.len();
    payload.extend_from_slice(&u16::try_from(tlv_len).unwrap().to_ne_bytes());
    payload.extend_from_slice(&1u16.to_ne_bytes());
    payload.extend_from_slice(text);
    payload.resize((payload.len() + 3) & !3, 0);
    let mut msg = Vec::new();
    msg.extend_from_slice(&u32::try_from(16 + payload.len()).unwrap().to_ne_bytes());
    msg.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
    msg.extend_from_slice(&7u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&payload);
    assert_eq!(
        decode_all(&msg),
        vec![Msg::Error(
            -libc::EINVAL,
            Some("Nexthop has invalid gateway".into())
        )]
    );
    let e = crate::socket::kernel_error("RTM_NEWROUTE", -libc::EINVAL, Some("x".into()));
    assert!(e.to_string().contains("refused RTM_NEWROUTE"), "{e}");
    assert!(e.to_string().contains("(x)"), "{e}");
    let e = crate::socket::kernel_error("RTM_NEWNEIGH", -libc::EPERM, None);
    assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
}

fn apply(state: &mut NodeState, m: RouteNetlinkMessage) -> crate::state::Applied {
    state.apply(one(m))
}

#[test]
fn state_follows_route_events_of_tracked_tables_only() {
    let mut s = NodeState::new(&[TABLE_MAIN, 201]);
    let r = route_msg(201, "10.0.2.0/24", Some("198.18.1.254"), 4);
    assert!(
        apply(&mut s, RouteNetlinkMessage::NewRoute(r.clone()))
            .changes
            .routes
    );
    assert!(
        !apply(&mut s, RouteNetlinkMessage::NewRoute(r.clone()))
            .changes
            .routes,
        "same again"
    );
    assert_eq!(s.routes(201).len(), 1);

    let other = route_msg(202, "10.0.2.0/24", Some("198.18.1.254"), 4);
    assert!(
        !apply(&mut s, RouteNetlinkMessage::NewRoute(other))
            .changes
            .routes
    );
    assert!(s.routes(202).is_empty());

    // Replacing the gateway keeps one entry under the same key.
    let r2 = route_msg(201, "10.0.2.0/24", Some("198.18.1.253"), 4);
    assert!(
        apply(&mut s, RouteNetlinkMessage::NewRoute(r2))
            .changes
            .routes
    );
    assert_eq!(s.routes(201).len(), 1);
    assert_eq!(
        s.routes(201)[0].next_hops[0].gateway,
        Some(ip("198.18.1.253"))
    );

    assert!(
        apply(&mut s, RouteNetlinkMessage::DelRoute(r))
            .changes
            .routes
    );
    assert!(s.routes(201).is_empty());
}

#[test]
fn link_down_asks_for_a_route_redump_mtu_change_does_not() {
    let mut s = NodeState::default();
    let up = LinkFlags::Up | LinkFlags::Running;
    let a = apply(
        &mut s,
        RouteNetlinkMessage::NewLink(link_msg(4, "eth1", 1500, up)),
    );
    assert!(a.changes.links && !a.redump_routes, "a new link");
    let a = apply(
        &mut s,
        RouteNetlinkMessage::NewLink(link_msg(4, "eth1", 9000, up)),
    );
    assert!(a.changes.links && !a.redump_routes, "MTU change");
    assert_eq!(s.link(4).unwrap().mtu, 9000);
    assert_eq!(s.link_by_name("eth1").unwrap().ifindex, 4);
    let a = apply(
        &mut s,
        RouteNetlinkMessage::NewLink(link_msg(4, "eth1", 9000, LinkFlags::empty())),
    );
    assert!(a.changes.links && a.redump_routes, "down");
    let a = apply(
        &mut s,
        RouteNetlinkMessage::NewLink(link_msg(4, "eth1", 9000, up)),
    );
    assert!(a.redump_routes, "up again");
}

#[test]
fn link_deletion_drops_its_addresses_and_neighbours() {
    let mut s = NodeState::default();
    let up = LinkFlags::Up | LinkFlags::Running;
    apply(
        &mut s,
        RouteNetlinkMessage::NewLink(link_msg(4, "eth1", 1500, up)),
    );
    let mut am = AddressMessage::default();
    am.header.family = AddressFamily::Inet;
    am.header.prefix_len = 24;
    am.header.index = 4;
    am.attributes = vec![AddressAttribute::Local(IpAddr::V4(ip("198.18.1.1")))];
    assert!(
        apply(&mut s, RouteNetlinkMessage::NewAddress(am.clone()))
            .changes
            .addresses
    );
    let n = neigh_msg("198.18.1.254", 4, NeighbourState::Reachable, false);
    assert!(
        apply(&mut s, RouteNetlinkMessage::NewNeighbour(n))
            .changes
            .neighbours
    );
    assert!(s.neighbour(ip("198.18.1.254"), 4).is_some());

    let a = apply(
        &mut s,
        RouteNetlinkMessage::DelLink(link_msg(4, "eth1", 1500, up)),
    );
    assert!(a.changes.links && a.changes.addresses && a.changes.neighbours && a.redump_routes);
    assert!(s.links().is_empty() && s.addresses().is_empty() && s.neighbours().is_empty());

    // Address removal also asks for a route re-dump (fib_sync_down_addr is silent).
    let a = apply(&mut s, RouteNetlinkMessage::DelAddress(am));
    assert!(a.redump_routes && !a.changes.addresses);
}

#[test]
fn neighbour_state_changes_are_changes() {
    let mut s = NodeState::default();
    let m = |st| RouteNetlinkMessage::NewNeighbour(neigh_msg("198.18.1.254", 4, st, true));
    assert!(
        apply(&mut s, m(NeighbourState::Incomplete))
            .changes
            .neighbours
    );
    assert!(
        apply(&mut s, m(NeighbourState::Reachable))
            .changes
            .neighbours
    );
    assert!(
        !apply(&mut s, m(NeighbourState::Reachable))
            .changes
            .neighbours
    );
    let del = RouteNetlinkMessage::DelNeighbour(neigh_msg(
        "198.18.1.254",
        4,
        NeighbourState::None,
        false,
    ));
    assert!(apply(&mut s, del).changes.neighbours);
    assert!(s.neighbours().is_empty());
}

#[test]
fn lookup_is_longest_prefix_then_lowest_metric() {
    let mut s = NodeState::default();
    for (dst, gw, metric) in [
        ("0.0.0.0/0", "198.18.1.1", 0),
        ("10.0.0.0/16", "198.18.1.2", 0),
        ("10.0.2.0/24", "198.18.1.3", 100),
        ("10.0.2.0/24", "198.18.1.4", 50),
    ] {
        let mut r = route_msg(TABLE_MAIN, dst, Some(gw), 4);
        r.attributes.push(RouteAttribute::Priority(metric));
        apply(&mut s, RouteNetlinkMessage::NewRoute(r));
    }
    assert_eq!(s.routes(TABLE_MAIN).len(), 4);
    let gw = |d: &str| {
        s.lookup(TABLE_MAIN, ip(d)).unwrap().next_hops[0]
            .gateway
            .unwrap()
    };
    assert_eq!(gw("10.0.2.9"), ip("198.18.1.4"));
    assert_eq!(gw("10.0.3.9"), ip("198.18.1.2"));
    assert_eq!(gw("8.8.8.8"), ip("198.18.1.1"));
    assert!(s.lookup(201, ip("10.0.2.9")).is_none(), "untracked table");
}

#[test]
fn undecodable_payload_is_an_error_not_a_panic() {
    // An RTM_NEWROUTE whose payload is shorter than struct rtmsg.
    let mut msg = Vec::new();
    msg.extend_from_slice(&20u32.to_ne_bytes());
    msg.extend_from_slice(&24u16.to_ne_bytes()); // RTM_NEWROUTE
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&[0; 8]);
    msg.extend_from_slice(&[2, 0, 0, 0]);
    let f = parse::frames(&msg).next().unwrap().unwrap();
    assert!(parse::decode(&f).is_err());
}
