//! The crate against a real kernel, in throwaway network namespaces.
//!
//! Each test makes its own namespaces (`rtnl-<pid>-<n>`, and `rtnl-<pid>-<n>-peer` for
//! a second one), builds links, addresses, routes and neighbours in them with `ip -n`,
//! and runs its body on a thread that entered the namespace with `setns(2)` (nix's
//! safe wrapper; the thread's netlink sockets then live in that namespace, nothing
//! else does). A guard deletes the namespaces on drop, also on panic; deleting a
//! namespace deletes the veths in it. Addresses: 198.18.0.0/15 and 10.0.0.0/16 only,
//! and no traffic is sent by the tests.
//!
//! Skipped (printing why) unless root with `ip`; when `PODFWD_REQUIRE_NETNS` is set
//! (scripts/test and CI set it) a skip fails the test instead.

use std::fs::File;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use rtnl::{Changes, Error, NodeState, NudState, Rtnl, TABLE_MAIN};

const REQUIRE_ENV: &str = "PODFWD_REQUIRE_NETNS";
const V0_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x01];
const V1_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x02];
const V2_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x02, 0x01];

// ---------------------------------------------------------------- helpers

fn can_run() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1));
    let why = if euid != Some("0") {
        Some("not running as root")
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("`ip` (iproute2) is not installed")
    } else {
        None
    };
    match why {
        None => true,
        Some(why) => {
            assert!(
                std::env::var_os(REQUIRE_ENV).is_none(),
                "{why}, and {REQUIRE_ENV} is set: namespace tests must run, not skip"
            );
            println!("skipped: {why}");
            false
        }
    }
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn mac_str(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

/// A network namespace, deleted on drop.
struct Netns(Ns);

/// A namespace by name, to run `ip -n` in; does not own it.
#[derive(Clone)]
struct Ns(String);

impl std::ops::Deref for Netns {
    type Target = Ns;
    fn deref(&self) -> &Ns {
        &self.0
    }
}

impl Netns {
    fn new(name: String) -> Netns {
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns(Ns(name));
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }
}

impl Ns {
    /// `ip -n <ns> <args>`.
    fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.0];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// `ip -n <ns> -batch -` with `lines` on stdin.
    fn batch(&self, lines: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["-n", &self.0, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("ip -batch");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "ip -batch failed");
    }

    fn ifindex(&self, name: &str) -> u32 {
        let out = self.ip(&["-o", "link", "show", name]);
        out.split(':').next().unwrap().trim().parse().unwrap()
    }

    /// Run `f` on a thread inside this namespace; its panics become ours.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(format!("/run/netns/{}", self.0)).expect("open /run/netns");
        thread::scope(|s| {
            let h = s.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            });
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0 .0])
            .stderr(Stdio::null())
            .status();
    }
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "rtnl-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One namespace: `v0` (198.18.1.1/24) – `v1` (peer, same namespace, no address) and
/// `v2` (198.18.2.1/24) – `v3`, all up, with fixed MACs.
fn node() -> Netns {
    let ns = Netns::new(unique());
    for (a, b, amac, bmac) in [
        ("v0", "v1", V0_MAC, V1_MAC),
        ("v2", "v3", V2_MAC, [0x02, 0x00, 0x5e, 0x00, 0x02, 0x02]),
    ] {
        ns.ip(&[
            "link",
            "add",
            a,
            "address",
            &mac_str(amac),
            "type",
            "veth",
            "peer",
            "name",
            b,
            "address",
            &mac_str(bmac),
        ]);
    }
    ns.ip(&["addr", "add", "198.18.1.1/24", "dev", "v0"]);
    ns.ip(&["addr", "add", "198.18.2.1/24", "dev", "v2"]);
    for l in ["v0", "v1", "v2", "v3"] {
        ns.ip(&["link", "set", l, "up"]);
    }
    ns
}

/// `ip monitor route` in a namespace: what the kernel announces, seen independently of
/// this crate.
struct RouteMonitor(std::process::Child);

impl RouteMonitor {
    /// Start it (`ipv4_only`: `-4`) and give it time to subscribe.
    fn start(ns: &str, ipv4_only: bool) -> RouteMonitor {
        let mut args = vec!["-n", ns];
        if ipv4_only {
            args.push("-4");
        }
        args.extend(["monitor", "route"]);
        let child = Command::new("ip")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor");
        thread::sleep(Duration::from_millis(300));
        RouteMonitor(child)
    }

    /// Stop it after the last announcements had time to arrive; what it printed.
    fn stop(mut self) -> String {
        thread::sleep(Duration::from_millis(300));
        let _ = self.0.kill();
        let out = self.0.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Poll `nl` until `done(state, changes so far)` or 3 s.
fn poll_until(
    nl: &mut Rtnl,
    state: &mut NodeState,
    what: &str,
    done: impl Fn(&NodeState, &Changes) -> bool,
) -> Changes {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut all = Changes::default();
    loop {
        let c = nl.poll_events(state).expect("poll_events");
        all.links |= c.links;
        all.addresses |= c.addresses;
        all.routes |= c.routes;
        all.neighbours |= c.neighbours;
        all.resynced |= c.resynced;
        if done(state, &all) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {state:#?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn dumps_links_addresses_routes_and_neighbours() {
    if !can_run() {
        return;
    }
    let ns = node();
    ns.ip(&[
        "route",
        "add",
        "10.0.1.0/24",
        "via",
        "198.18.1.254",
        "metric",
        "7",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.0.2.0/24",
        "via",
        "198.18.1.254",
        "table",
        "201",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.0.3.0/24",
        "nexthop",
        "via",
        "198.18.1.254",
        "weight",
        "1",
        "nexthop",
        "via",
        "198.18.2.254",
        "weight",
        "3",
    ]);
    ns.ip(&[
        "neigh",
        "add",
        "198.18.1.254",
        "lladdr",
        &mac_str(V1_MAC),
        "dev",
        "v0",
        "nud",
        "permanent",
    ]);
    let (v0, v2) = (ns.ifindex("v0"), ns.ifindex("v2"));
    ns.run(|| {
        let mut nl = Rtnl::open().expect("open");
        let links = nl.dump_links().expect("links");
        let l0 = links.iter().find(|l| l.name == "v0").expect("v0 dumped");
        assert_eq!((l0.ifindex, l0.mac, l0.mtu), (v0, Some(V0_MAC), 1500));
        assert!(l0.is_up(), "{l0:?}");
        assert!(links.iter().any(|l| l.name == "lo" && l.is_up()));

        let addrs = nl.dump_addresses().expect("addresses");
        assert!(addrs
            .iter()
            .any(|a| a.ifindex == v0 && a.net == "198.18.1.1/24".parse().unwrap()));
        assert!(addrs
            .iter()
            .any(|a| a.net == "127.0.0.1/8".parse().unwrap()));

        let main = nl.dump_routes(TABLE_MAIN).expect("main");
        let r = main
            .iter()
            .find(|r| r.dst == "10.0.1.0/24".parse().unwrap())
            .expect("10.0.1.0/24 in main");
        assert_eq!((r.priority, r.protocol, r.table), (7, 3, TABLE_MAIN)); // boot: `ip` default
        assert_eq!(r.next_hops.len(), 1);
        assert_eq!(
            (r.next_hops[0].oif, r.next_hops[0].gateway),
            (v0, Some(ip("198.18.1.254")))
        );
        let connected = main
            .iter()
            .find(|r| r.dst == "198.18.1.0/24".parse().unwrap())
            .expect("connected route");
        assert_eq!(
            (connected.protocol, connected.next_hops[0].gateway),
            (2, None)
        );
        let mp = main
            .iter()
            .find(|r| r.dst == "10.0.3.0/24".parse().unwrap())
            .expect("multipath");
        let hops: Vec<_> = mp
            .next_hops
            .iter()
            .map(|h| (h.oif, h.gateway.unwrap(), h.weight))
            .collect();
        assert_eq!(
            hops,
            vec![(v0, ip("198.18.1.254"), 1), (v2, ip("198.18.2.254"), 3)]
        );
        assert!(main.iter().all(|r| r.table == TABLE_MAIN));
        assert!(!main.iter().any(|r| r.dst == "10.0.2.0/24".parse().unwrap()));

        let t201 = nl.dump_routes(201).expect("201");
        assert_eq!(t201.len(), 1, "{t201:#?}");
        assert_eq!(t201[0].dst, "10.0.2.0/24".parse().unwrap());
        assert_eq!(t201[0].next_hops[0].gateway, Some(ip("198.18.1.254")));
        assert!(
            nl.dump_routes(202).expect("202").is_empty(),
            "a table that does not exist"
        );

        let neigh = nl.dump_neighbours().expect("neighbours");
        let n = neigh
            .iter()
            .find(|n| n.ip == ip("198.18.1.254"))
            .expect("neighbour dumped");
        assert_eq!(
            (n.ifindex, n.mac, n.state),
            (v0, Some(V1_MAC), NudState::Permanent)
        );

        // The same through NodeState, with the in-memory LPM returning every hop.
        let mut state = NodeState::new(&[TABLE_MAIN, 201]);
        let c = nl.refresh(&mut state).expect("refresh");
        assert!(c.links && c.addresses && c.routes && c.neighbours && c.resynced);
        assert_eq!(state.link_by_name("v2").unwrap().ifindex, v2);
        assert_eq!(
            state
                .lookup(TABLE_MAIN, ip("10.0.3.77"))
                .unwrap()
                .next_hops
                .len(),
            2
        );
        assert_eq!(state.routes(201).len(), 1);
        assert!(state.neighbour(ip("198.18.1.254"), v0).is_some());
        let again = nl.refresh(&mut state).expect("refresh");
        assert!(!again.any(), "nothing changed: {again:?}");
        assert_eq!(state.stats.full_dumps, 2);
    });
}

#[test]
fn fib_lookup_on_link_via_gateway_policy_and_multipath() {
    if !can_run() {
        return;
    }
    let ns = node();
    ns.ip(&["route", "add", "10.0.1.0/24", "via", "198.18.1.254"]);
    ns.ip(&[
        "route",
        "add",
        "10.0.2.0/24",
        "via",
        "198.18.2.254",
        "table",
        "201",
    ]);
    ns.ip(&[
        "rule",
        "add",
        "to",
        "10.0.2.0/24",
        "lookup",
        "201",
        "priority",
        "100",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.0.3.0/24",
        "nexthop",
        "via",
        "198.18.1.254",
        "weight",
        "1",
        "nexthop",
        "via",
        "198.18.2.254",
        "weight",
        "3",
    ]);
    ns.ip(&["route", "add", "blackhole", "10.0.4.0/24"]);
    let (v0, v2) = (ns.ifindex("v0"), ns.ifindex("v2"));
    ns.run(|| {
        let mut nl = Rtnl::open().expect("open");
        let on_link = nl.fib_lookup(ip("198.18.1.9")).expect("on-link");
        assert_eq!((on_link.oif, on_link.gateway), (v0, None));
        assert_eq!(on_link.via(ip("198.18.1.9")), ip("198.18.1.9"));

        let routed = nl.fib_lookup(ip("10.0.1.5")).expect("via gateway");
        assert_eq!((routed.oif, routed.gateway), (v0, Some(ip("198.18.1.254"))));
        assert_eq!(routed.via(ip("10.0.1.5")), ip("198.18.1.254"));

        // Policy routing: only the rule leads to table 201.
        let policy = nl.fib_lookup(ip("10.0.2.5")).expect("via table 201");
        assert_eq!((policy.oif, policy.gateway), (v2, Some(ip("198.18.2.254"))));

        // Multipath: the kernel picks one hop; fibmatch returns the entry with all.
        let one = nl.fib_lookup(ip("10.0.3.5")).expect("multipath");
        assert!([v0, v2].contains(&one.oif));
        let entry = nl.fib_match(ip("10.0.3.5")).expect("fibmatch");
        assert_eq!(entry.dst, "10.0.3.0/24".parse().unwrap());
        let w: Vec<_> = entry.next_hops.iter().map(|h| (h.oif, h.weight)).collect();
        assert_eq!(w, vec![(v0, 1), (v2, 3)]);
        let entry = nl.fib_match(ip("10.0.2.5")).expect("fibmatch policy");
        assert_eq!(entry.table, 201);

        match nl.fib_lookup(ip("10.0.9.9")) {
            Err(e @ Error::NoRoute { .. }) => {
                assert!(e.to_string().contains("no route to 10.0.9.9"), "{e}");
            }
            other => panic!("expected NoRoute, got {other:?}"),
        }
        match nl.fib_lookup(ip("10.0.4.1")) {
            Err(Error::NotForwarded { .. } | Error::NoRoute { .. }) => {}
            other => panic!("blackhole: expected an error, got {other:?}"),
        }
        match nl.fib_lookup(ip("198.18.1.1")) {
            Err(Error::NotForwarded { kind, .. }) => assert_eq!(kind, "local"),
            other => panic!("own address: expected NotForwarded, got {other:?}"),
        }
    });
}

#[test]
fn poll_events_sees_mtu_route_and_neighbour_changes() {
    if !can_run() {
        return;
    }
    let ns = node();
    let v0 = ns.ifindex("v0");
    let handle: Ns = (*ns).clone();
    ns.run(|| {
        let ns = handle;
        let mut nl = Rtnl::open().expect("open");
        let mut state = NodeState::new(&[TABLE_MAIN, 201]);
        nl.refresh(&mut state).expect("refresh");
        assert!(!nl.poll_events(&mut state).unwrap().any(), "quiet at first");

        ns.ip(&["link", "set", "v0", "mtu", "1400"]);
        let c = poll_until(&mut nl, &mut state, "MTU 1400", |s, _| {
            s.link(v0).is_some_and(|l| l.mtu == 1400)
        });
        assert!(c.links);

        ns.ip(&[
            "route",
            "add",
            "10.0.2.0/24",
            "via",
            "198.18.1.254",
            "table",
            "201",
        ]);
        let c = poll_until(&mut nl, &mut state, "route add", |s, _| {
            s.routes(201).len() == 1
        });
        assert!(c.routes);
        assert_eq!(
            state.routes(201)[0].next_hops[0].gateway,
            Some(ip("198.18.1.254"))
        );
        ns.ip(&[
            "route",
            "add",
            "10.0.7.0/24",
            "via",
            "198.18.1.254",
            "table",
            "202",
        ]);
        ns.ip(&["route", "del", "10.0.2.0/24", "table", "201"]);
        let c = poll_until(&mut nl, &mut state, "route del", |s, _| {
            s.routes(201).is_empty()
        });
        assert!(c.routes);
        assert!(state.routes(202).is_empty(), "table 202 is not tracked");

        ns.ip(&[
            "neigh",
            "add",
            "198.18.1.77",
            "lladdr",
            &mac_str(V1_MAC),
            "dev",
            "v0",
            "nud",
            "stale",
        ]);
        let c = poll_until(&mut nl, &mut state, "neighbour add", |s, _| {
            s.neighbour(ip("198.18.1.77"), v0).is_some()
        });
        assert!(c.neighbours);
        let n = state.neighbour(ip("198.18.1.77"), v0).unwrap();
        assert_eq!((n.mac, n.state), (Some(V1_MAC), NudState::Stale));
        ns.ip(&["neigh", "del", "198.18.1.77", "dev", "v0"]);
        poll_until(&mut nl, &mut state, "neighbour del", |s, _| {
            s.neighbour(ip("198.18.1.77"), v0).is_none()
        });
        assert_eq!(state.stats.overruns, 0);
        assert_eq!(state.stats.full_dumps, 1);
    });
}

/// The kernel removes routes through a link that goes down without sending
/// RTM_DELROUTE; poll_events re-dumps and the route disappears from the state.
#[test]
fn link_down_redumps_routes() {
    if !can_run() {
        return;
    }
    let ns = node();
    ns.ip(&["route", "add", "10.0.1.0/24", "via", "198.18.1.254"]);
    ns.ip(&[
        "route",
        "add",
        "10.0.2.0/24",
        "via",
        "198.18.1.254",
        "table",
        "201",
    ]);
    ns.ip(&["route", "add", "10.0.5.0/24", "via", "198.18.2.254"]);
    let handle: Ns = (*ns).clone();
    // Watch what the kernel announces, independently of this crate.
    let monitor = RouteMonitor::start(&ns.0 .0, false);
    ns.run(|| {
        let ns = handle;
        let mut nl = Rtnl::open().expect("open");
        let mut state = NodeState::new(&[TABLE_MAIN, 201]);
        nl.refresh(&mut state).expect("refresh");
        let has = |s: &NodeState, t: u32, d: &str| {
            s.routes(t).iter().any(|r| r.dst == d.parse().unwrap())
        };
        assert!(has(&state, TABLE_MAIN, "10.0.1.0/24") && has(&state, 201, "10.0.2.0/24"));

        // A positive control for the monitor: this addition is announced.
        ns.ip(&["route", "add", "10.0.6.0/24", "via", "198.18.2.254"]);
        ns.ip(&["link", "set", "v0", "down"]);
        let c = poll_until(&mut nl, &mut state, "routes via v0 gone", |s, _| {
            !has(s, TABLE_MAIN, "10.0.1.0/24") && !has(s, 201, "10.0.2.0/24")
        });
        assert!(c.links && c.routes, "{c:?}");
        assert!(state.stats.route_dumps >= 1, "{:?}", state.stats);
        assert!(has(&state, TABLE_MAIN, "10.0.5.0/24"), "routes via v2 stay");
        assert!(!state.link(ns.ifindex("v0")).unwrap().admin_up);
    });
    let seen = monitor.stop();
    assert!(
        seen.contains("10.0.6.0/24"),
        "ip monitor saw nothing: {seen}"
    );
    assert!(
        !seen.contains("10.0.1.0/24") && !seen.contains("10.0.2.0/24"),
        "the kernel did announce the deletion after all (then the re-dump is only a \
         safety net): {seen}"
    );
}

/// The address whose subnet holds a route's gateway goes away: the kernel deletes the
/// route without RTM_DELROUTE (`fib_del_ifaddr` -> `fib_sync_down_addr`, seen on 6.18
/// for a route without `src`); poll_events re-dumps on the address event.
#[test]
fn address_removal_redumps_routes() {
    if !can_run() {
        return;
    }
    let ns = node();
    ns.ip(&["route", "add", "10.0.3.0/24", "via", "198.18.1.254"]);
    let handle: Ns = (*ns).clone();
    let monitor = RouteMonitor::start(&ns.0 .0, true);
    ns.run(|| {
        let ns = handle;
        let mut nl = Rtnl::open().expect("open");
        let mut state = NodeState::new(&[TABLE_MAIN]);
        nl.refresh(&mut state).expect("refresh");
        let has = |s: &NodeState| s.lookup(TABLE_MAIN, ip("10.0.3.9")).is_some();
        assert!(has(&state));
        let dumps = state.stats.route_dumps;
        ns.ip(&["addr", "del", "198.18.1.1/24", "dev", "v0"]);
        let c = poll_until(&mut nl, &mut state, "10.0.3.0/24 gone", |s, _| !has(s));
        assert!(c.addresses && c.routes, "{c:?}");
        assert!(state.stats.route_dumps > dumps, "{:?}", state.stats);
    });
    let seen = monitor.stop();
    assert!(
        seen.contains("Deleted 198.18.1.0/24"),
        "ip monitor missed the prefix route's deletion: {seen}"
    );
    assert!(
        !seen.contains("10.0.3.0/24"),
        "the kernel announced the deletion after all (then the re-dump is only a \
         safety net): {seen}"
    );
}

/// One hop of a multipath route loses its link: the kernel flags that hop `dead`
/// (admin down) or `linkdown` (no carrier) and keeps the route, announcing nothing for
/// it; the re-dump after the link event shows the flags, so the hop is no longer
/// usable, and the other hop still is.
#[test]
fn multipath_hop_on_a_downed_link_is_seen_dead() {
    if !can_run() {
        return;
    }
    let ns = node();
    ns.ip(&[
        "route",
        "add",
        "10.0.3.0/24",
        "nexthop",
        "via",
        "198.18.1.254",
        "nexthop",
        "via",
        "198.18.2.254",
    ]);
    let (v0, v2) = (ns.ifindex("v0"), ns.ifindex("v2"));
    let handle: Ns = (*ns).clone();
    let monitor = RouteMonitor::start(&ns.0 .0, true);
    ns.run(|| {
        let ns = handle;
        let mut nl = Rtnl::open().expect("open");
        let mut state = NodeState::new(&[TABLE_MAIN]);
        nl.refresh(&mut state).expect("refresh");
        let hops = |s: &NodeState| -> Vec<(u32, bool, bool, bool)> {
            s.lookup(TABLE_MAIN, ip("10.0.3.9"))
                .map(|r| {
                    r.next_hops
                        .iter()
                        .map(|h| (h.oif, h.is_usable(), h.dead, h.linkdown))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(
            hops(&state),
            [(v0, true, false, false), (v2, true, false, false)]
        );

        ns.ip(&["link", "set", "v2", "down"]);
        poll_until(&mut nl, &mut state, "v2's hop dead", |s, _| {
            hops(s).get(1).is_some_and(|h| !h.1)
        });
        assert_eq!(
            hops(&state),
            [(v0, true, false, false), (v2, false, true, true)]
        );
        assert!(state.stats.route_dumps >= 1, "{:?}", state.stats);

        // Up again, but its peer down: no carrier, the hop stays unusable (linkdown).
        ns.ip(&["link", "set", "v3", "down"]);
        ns.ip(&["link", "set", "v2", "up"]);
        poll_until(
            &mut nl,
            &mut state,
            "v2's hop alive but without carrier",
            |s, _| hops(s).get(1).is_some_and(|h| !h.2 && h.3),
        );
        ns.ip(&["link", "set", "v3", "up"]);
        poll_until(&mut nl, &mut state, "v2's hop usable again", |s, _| {
            hops(s).get(1).is_some_and(|h| h.1)
        });
        assert_eq!(state.stats.overruns, 0);
    });
    let seen = monitor.stop();
    assert!(
        seen.contains("198.18.2.0/24"),
        "ip monitor missed v2's own prefix route coming back: {seen}"
    );
    assert!(
        !seen.contains("10.0.3.0/24"),
        "the kernel announced the multipath route's change after all (then the re-dump \
         is only a safety net): {seen}"
    );
}

/// `ENOBUFS`: more notifications than the event socket's buffer holds; the next
/// poll_events counts the overrun and re-dumps everything.
#[test]
fn overrun_resyncs_by_full_redump() {
    if !can_run() {
        return;
    }
    let ns = node();
    let handle: Ns = (*ns).clone();
    const N: usize = 6000;
    ns.run(|| {
        let ns = handle;
        let mut nl = Rtnl::open().expect("open");
        // A small buffer (the kernel's minimum is about 2 KiB, doubled) overflows for sure.
        nl.set_event_buffer(4096).expect("SO_RCVBUF");
        let mut state = NodeState::new(&[201]);
        nl.refresh(&mut state).expect("refresh");
        let lines: String = (0..N)
            .map(|i| {
                format!(
                    "route add 10.0.{}.{}/32 via 198.18.1.254 table 201\n",
                    i / 250,
                    i % 250
                )
            })
            .collect();
        ns.batch(&lines);
        let c = nl.poll_events(&mut state).expect("poll_events");
        assert_eq!(state.routes(201).len(), N, "{:?}", state.stats);
        assert!(state.stats.overruns >= 1, "{:?}", state.stats);
        assert!(c.resynced && c.routes, "{c:?}");
        assert_eq!(state.stats.full_dumps, 2);
        println!("{N} route additions: {:?}", state.stats);
        // Quiet again afterwards, and following single changes.
        assert!(!nl.poll_events(&mut state).unwrap().any());
        ns.ip(&["route", "del", "10.0.0.0/32", "table", "201"]);
        poll_until(&mut nl, &mut state, "one route less", |s, _| {
            s.routes(201).len() == N - 1
        });
    });
}

/// A managed neighbour gets resolved by the kernel itself: no traffic from us.
#[test]
fn managed_neighbour_becomes_reachable_by_itself() {
    if !can_run() {
        return;
    }
    let node_ns = Netns::new(unique());
    let peer = Netns::new(format!("{}-peer", node_ns.0 .0));
    node_ns.ip(&[
        "link",
        "add",
        "v0",
        "address",
        &mac_str(V0_MAC),
        "type",
        "veth",
        "peer",
        "name",
        "v1",
        "address",
        &mac_str(V1_MAC),
        "netns",
        &peer.0 .0,
    ]);
    node_ns.ip(&["addr", "add", "198.18.1.1/24", "dev", "v0"]);
    peer.ip(&["addr", "add", "198.18.1.2/24", "dev", "v1"]);
    node_ns.ip(&["link", "set", "v0", "up"]);
    peer.ip(&["link", "set", "v1", "up"]);
    let v0 = node_ns.ifindex("v0");
    let gw = ip("198.18.1.2");
    node_ns.run(|| {
        let mut nl = Rtnl::open().expect("open");
        let mut state = NodeState::default();
        nl.refresh(&mut state).expect("refresh");
        assert!(state.neighbour(gw, v0).is_none());

        let start = Instant::now();
        nl.ensure_managed_neighbour(gw, v0)
            .expect("managed neighbour");
        nl.ensure_managed_neighbour(gw, v0).expect("idempotent");
        let c = poll_until(
            &mut nl,
            &mut state,
            "REACHABLE with the peer's MAC",
            |s, _| {
                s.neighbour(gw, v0)
                    .is_some_and(|n| n.state == NudState::Reachable && n.mac == Some(V1_MAC))
            },
        );
        assert!(c.neighbours);
        let took = start.elapsed();
        println!("managed neighbour REACHABLE after {took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(state.neighbour(gw, v0).unwrap().managed);
        let n = nl.neighbour(gw, v0).expect("get").expect("entry");
        assert!(n.managed && n.usable_mac() == Some(V1_MAC), "{n:?}");

        // A neighbour nobody answers for stays unresolved, but stays managed.
        nl.ensure_managed_neighbour(ip("198.18.1.99"), v0)
            .expect("managed neighbour without a host");

        assert!(nl.del_managed_neighbour(gw, v0).expect("del"));
        assert!(!nl.del_managed_neighbour(gw, v0).expect("del again"));
        poll_until(&mut nl, &mut state, "entry gone", |s, _| {
            s.neighbour(gw, v0).is_none()
        });

        match nl.ensure_managed_neighbour(gw, 9999) {
            Err(e @ Error::Kernel { .. }) => {
                let text = e.to_string();
                assert!(text.contains("RTM_NEWNEIGH 198.18.1.2 dev 9999"), "{text}");
                assert_eq!(e.errno(), Some(nix::errno::Errno::ENODEV as i32), "{text}");
            }
            other => panic!("no such interface: expected a kernel error, got {other:?}"),
        }
    });
    drop(peer);
}
