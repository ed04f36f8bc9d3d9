//! The control jobs against a fake node: no root, no kernel, no packets.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use super::host::FibHop;
use super::*;
use crate::ifaces::IfaceError;
use podfwd_api::{Request, Response};

const MAC_ETH0: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 1];
const MAC_LXC0: [u8; 6] = [0xfe, 0xee, 0, 0, 1, 1];
const MAC_NODE_B: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 2];
const MAC_POD: [u8; 6] = [0x0e, 0, 10, 0, 1, 2];
const NODE_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const POD: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);

/// What the fake kernel holds and what it was asked.
#[derive(Debug, Default)]
struct State {
    ifaces: HashMap<String, IfaceInfo>,
    neigh: NeighTable,
    resolved: Vec<Ipv4Addr>,
    attached: Vec<(String, PortRole)>,
    registered: Vec<(String, u32, RawFd)>,
    detached: Vec<String>,
    steering_updates: usize,
    refuse_steering: bool,
    /// FIB answers: destination -> its route's usable next hops.
    hops: HashMap<Ipv4Addr, Vec<FibHop>>,
    /// Routes of the learned table.
    learned: Vec<(ipnet::Ipv4Net, Ipv4Addr)>,
    /// The read end of the fake kernel's notifications: a byte is a change.
    events: Option<std::os::unix::net::UnixStream>,
}

#[derive(Debug, Clone, Default)]
struct Fake(Rc<RefCell<State>>);

impl Fake {
    /// The FIB's route to `dst` now: these `(via, interface, weight)` hops.
    fn route(&self, dst: Ipv4Addr, hops: &[(Ipv4Addr, &str, u16)]) {
        let hops = hops
            .iter()
            .map(|&(via, dev, weight)| FibHop {
                via,
                dev: dev.to_owned(),
                weight,
            })
            .collect();
        self.0.borrow_mut().hops.insert(dst, hops);
    }
}

/// The next hop MACs of the published snapshot's first node, resolved or not.
fn hop_macs(c: &Control<Fake>) -> Vec<Option<[u8; 6]>> {
    c.snapshot().load().nodes[0]
        .hops
        .all()
        .iter()
        .map(|h| h.mac)
        .collect()
}

impl Host for Fake {
    fn sync(&mut self) -> bool {
        use std::io::Read;
        let mut s = self.0.borrow_mut();
        let Some(events) = s.events.as_mut() else {
            return false;
        };
        let mut buf = [0u8; 64];
        let mut changed = false;
        while events.read(&mut buf).is_ok_and(|n| n > 0) {
            changed = true;
        }
        changed
    }
    fn event_fd(&self) -> Option<RawFd> {
        use std::os::fd::AsRawFd;
        self.0.borrow().events.as_ref().map(AsRawFd::as_raw_fd)
    }
    fn learned_routes(&mut self, table: u32) -> Vec<(ipnet::Ipv4Net, Ipv4Addr)> {
        assert_eq!(table, 201);
        self.0.borrow().learned.clone()
    }
    fn next_hops(&mut self, dst: Ipv4Addr) -> Vec<FibHop> {
        self.0.borrow().hops.get(&dst).cloned().unwrap_or_default()
    }
    fn lookup(&self, name: &str) -> Result<IfaceInfo, IfaceError> {
        self.0
            .borrow()
            .ifaces
            .get(name)
            .cloned()
            .ok_or_else(|| IfaceError::NotFound(name.to_owned()))
    }
    fn neighbours(&mut self) -> NeighTable {
        self.0.borrow().neigh.clone()
    }
    fn resolve(&mut self, ip: Ipv4Addr) {
        self.0.borrow_mut().resolved.push(ip);
    }
    fn attach(&mut self, name: &str, role: PortRole) -> Result<String, String> {
        self.0.borrow_mut().attached.push((name.to_owned(), role));
        Ok("native".into())
    }
    fn register_xsk(&mut self, name: &str, queue: u32, fd: RawFd) -> Result<(), String> {
        self.0
            .borrow_mut()
            .registered
            .push((name.to_owned(), queue, fd));
        Ok(())
    }
    fn update_steering(&mut self, _: &SteeringConfig) -> Result<(), String> {
        let mut s = self.0.borrow_mut();
        if s.refuse_steering {
            return Err("map update refused".into());
        }
        s.steering_updates += 1;
        Ok(())
    }
    fn steering_stats(&self) -> Vec<(String, u64)> {
        vec![("pod_to_xsk".into(), 7)]
    }
    fn detach(&mut self, name: &str) -> Result<(), String> {
        self.0.borrow_mut().detached.push(name.to_owned());
        Ok(())
    }
}

fn iface(name: &str, ifindex: u32, mac: [u8; 6], mtu: u16) -> IfaceInfo {
    IfaceInfo {
        name: name.into(),
        ifindex,
        mac,
        mtu,
        up: true,
    }
}

fn yaml_for(extra_node: bool, sock: &std::path::Path) -> String {
    let mut y = format!(
        "node: {{name: node-a, ip: 198.18.0.1, uplink: eth0, pod_cidr: 10.0.1.0/24}}\n\
         mode: tunnel\ncluster_cidr: 10.0.0.0/16\ngateway: 169.254.1.1\n\
         control: {{socket: {}}}\n\
         endpoints:\n  - {{ip: 10.0.1.2, interface: lxc0}}\n\
         nodes:\n  - {{name: node-b, ip: 198.18.0.2, pod_cidr: 10.0.2.0/24}}\n",
        sock.display()
    );
    if extra_node {
        y.push_str("  - {name: node-c, ip: 198.18.0.3, pod_cidr: 10.0.3.0/24}\n");
    }
    y
}

/// A temporary config file, removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    /// Its control socket path (never bound here): the state file goes beside it.
    fn sock(&self) -> PathBuf {
        self.0.with_extension("sock")
    }

    fn state(&self) -> PathBuf {
        self.0.with_extension("endpoints.json")
    }

    fn new(text: &str) -> TempConfig {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "podfwd-control-test-{}-{}.yaml",
            std::process::id(),
            N.fetch_add(1, Relaxed)
        ));
        std::fs::write(&p, text).unwrap();
        TempConfig(p)
    }
    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.state());
    }
}

/// The test config (with node-c when `extra_node`) for `file`, whose control socket is
/// beside it.
fn yaml(file: &TempConfig, extra_node: bool) -> String {
    yaml_for(extra_node, &file.sock())
}

/// A control over eth0 + lxc0 with `workers` fake workers (no threads).
fn control(neigh: bool, workers: Vec<WorkerHandle>) -> (Control<Fake>, Fake, TempConfig) {
    let file = TempConfig::new("");
    file.write(&yaml(&file, false));
    let cfg = Config::load(&file.0).unwrap();
    let fake = Fake::default();
    {
        let mut s = fake.0.borrow_mut();
        s.ifaces
            .insert("eth0".into(), iface("eth0", 2, MAC_ETH0, 1500));
        s.ifaces
            .insert("lxc0".into(), iface("lxc0", 5, MAC_LXC0, 1450));
        if neigh {
            s.neigh.insert((NODE_B, "eth0".into()), MAC_NODE_B);
            s.neigh.insert((POD, "lxc0".into()), MAC_POD);
        }
    }
    let ports = vec![
        Port::new(PortRole::Uplink, fake.lookup("eth0").unwrap()),
        Port::new(PortRole::Pod, fake.lookup("lxc0").unwrap()),
    ];
    let modes = vec!["native".into(), "native".into()];
    let eps = config_endpoints(&cfg);
    let c = Control::new(fake.clone(), &file.0, cfg, eps, ports, modes, workers, 64).unwrap();
    (c, fake, file)
}

/// A worker handle whose requests a thread answers with `fd`; returns the handle.
fn answering_worker(id: usize, fd: RawFd) -> WorkerHandle {
    let (tx, rx) = mpsc::channel::<WorkerRequest>();
    let t = std::thread::spawn(move || {
        for req in rx {
            match req {
                WorkerRequest::Replace(r) | WorkerRequest::Open(r) => {
                    let _ = r.reply.send(Ok(fd));
                }
                WorkerRequest::Close { reply, .. } => {
                    let _ = reply.send(());
                }
            }
        }
    });
    WorkerHandle {
        shared: Arc::new(WorkerShared::new(id, None, 2)),
        requests: tx,
        thread: Some(t),
    }
}

#[test]
fn first_snapshot_has_roles_endpoints_and_next_hops() {
    let (c, _, _f) = control(true, Vec::new());
    let snap = c.snapshot().load_full();
    assert_eq!(snap.generation, 1);
    assert_eq!(snap.ports[0].role, PortRole::Uplink);
    assert_eq!(snap.ports[1].role, PortRole::Pod);
    assert_eq!(snap.endpoints[0].port, 1);
    assert_eq!(snap.endpoints[0].mac, Some(MAC_POD));
    assert_eq!(snap.nodes[0].hops.resolved()[0].mac, MAC_NODE_B);
    let st = c.status();
    let st = st.lock().unwrap();
    assert_eq!(st.ports[1].endpoint, Some(POD));
    assert_eq!(st.ports[0].role, "uplink");
    assert_eq!(st.ready(), Ok(()));
}

#[test]
fn missing_neighbours_are_resolved_and_published_once_known() {
    let (mut c, fake, _f) = control(false, Vec::new());
    assert_eq!(fake.0.borrow().resolved, [NODE_B, POD]);
    assert_eq!(
        c.status().lock().unwrap().ready(),
        Err("next hop not resolved for node(s) node-b".to_owned())
    );
    // Nothing new: no new snapshot.
    c.refresh();
    assert_eq!(c.snapshot().load().generation, 1);
    fake.0
        .borrow_mut()
        .neigh
        .insert((NODE_B, "eth0".into()), MAC_NODE_B);
    c.refresh();
    let snap = c.snapshot().load_full();
    assert_eq!(snap.generation, 2);
    assert_eq!(snap.nodes[0].hops.resolved()[0].mac, MAC_NODE_B);
    let st = c.status();
    let st = st.lock().unwrap();
    assert_eq!(st.generation, 2);
    assert_eq!(st.nodes[0].mac.as_deref(), Some("02:00:c6:12:00:02"));
    assert_eq!(st.steering, [("pod_to_xsk".to_owned(), 7)]);
}

#[test]
fn mac_and_mtu_changes_are_followed() {
    let (mut c, fake, _f) = control(true, Vec::new());
    fake.0.borrow_mut().ifaces.get_mut("eth0").unwrap().mtu = 9000;
    fake.0.borrow_mut().ifaces.get_mut("lxc0").unwrap().mac = [0xfe, 0xee, 0, 0, 9, 9];
    c.refresh();
    let snap = c.snapshot().load_full();
    assert_eq!(snap.generation, 2);
    assert_eq!(snap.ports[0].mtu, 9000);
    assert_eq!(snap.ports[1].mac, [0xfe, 0xee, 0, 0, 9, 9]);
    let st = c.status();
    let st = st.lock().unwrap();
    assert_eq!(st.ports[0].mtu, 9000);
    assert_eq!(st.ports[1].mac, "fe:ee:00:00:09:09");
    assert!(
        fake.0.borrow().attached.is_empty(),
        "same ifindex: no re-attach"
    );
}

#[test]
fn recreated_interface_is_attached_again_with_new_sockets() {
    let (mut c, fake, _f) = control(true, vec![answering_worker(0, 41), answering_worker(1, 42)]);
    // Re-created, still down: a problem, not yet attached.
    let mut new = iface("lxc0", 9, MAC_LXC0, 1450);
    new.up = false;
    fake.0
        .borrow_mut()
        .ifaces
        .insert("lxc0".into(), new.clone());
    c.refresh();
    assert!(fake.0.borrow().attached.is_empty());
    assert_eq!(
        c.status().lock().unwrap().ready(),
        Err("interface lxc0 was re-created (ifindex 5 -> 9) and is down: podfwd attaches it again once it is up".to_owned())
    );
    new.up = true;
    fake.0.borrow_mut().ifaces.insert("lxc0".into(), new);
    c.refresh();
    {
        let s = fake.0.borrow();
        assert_eq!(s.attached, [("lxc0".to_owned(), PortRole::Pod)]);
        assert_eq!(
            s.registered,
            [("lxc0".to_owned(), 0, 41), ("lxc0".to_owned(), 1, 42)]
        );
    }
    let st = c.status();
    let st = st.lock().unwrap();
    assert_eq!(st.ports[1].recoveries, 1);
    assert_eq!(st.ready(), Ok(()));
    assert_eq!(c.snapshot().load().generation, 2);
}

#[test]
fn recovery_without_a_running_worker_is_retried_and_reported() {
    let (tx, rx) = mpsc::channel::<WorkerRequest>();
    drop(rx);
    let dead = WorkerHandle {
        shared: Arc::new(WorkerShared::new(0, None, 2)),
        requests: tx,
        thread: None,
    };
    let (mut c, fake, _f) = control(true, vec![dead]);
    fake.0
        .borrow_mut()
        .ifaces
        .insert("lxc0".into(), iface("lxc0", 9, MAC_LXC0, 1450));
    c.refresh();
    c.refresh();
    assert_eq!(
        fake.0.borrow().attached.len(),
        2,
        "retried on every refresh"
    );
    assert_eq!(
        c.status().lock().unwrap().iface_problems,
        ["interface lxc0 was re-created (ifindex 5 -> 9): attaching it again failed (retried every second; see the log)"]
    );
}

#[test]
fn a_gone_interface_is_a_problem_until_it_is_back() {
    let (mut c, fake, _f) = control(true, Vec::new());
    let lxc = fake.0.borrow_mut().ifaces.remove("lxc0").unwrap();
    c.refresh();
    assert_eq!(
        c.status().lock().unwrap().ready(),
        Err("interface lxc0 is gone (deleted?): its pod is not served until it is back (podfwd attaches it again by itself)".to_owned())
    );
    fake.0.borrow_mut().ifaces.insert("lxc0".into(), lxc);
    c.refresh();
    assert_eq!(c.status().lock().unwrap().ready(), Ok(()));
}

#[test]
fn reload_applies_all_or_nothing() {
    let (mut c, fake, file) = control(true, Vec::new());
    file.write(&yaml(&file, true));
    let path = file.0.display().to_string();
    assert_eq!(c.reload(), Ok(format!("reloaded {path}")));
    assert_eq!(c.snapshot().load().nodes.len(), 2);
    assert_eq!(c.snapshot().load().generation, 2);
    assert_eq!(fake.0.borrow().steering_updates, 1);
    // A broken file: refused with its line, nothing changes.
    file.write("node: [\n");
    let err = c.reload().unwrap_err();
    assert!(err.starts_with(&format!("{path}:")), "{err}");
    assert_eq!(c.snapshot().load().generation, 2);
    // The steering refuses: the snapshot is not switched either.
    file.write(&yaml(&file, false));
    fake.0.borrow_mut().refuse_steering = true;
    assert_eq!(
        c.reload(),
        Err(format!("{path}: XDP steering update: map update refused"))
    );
    assert_eq!(c.snapshot().load().nodes.len(), 2);
    let st = c.status();
    let st = st.lock().unwrap();
    assert_eq!((st.reloads_ok, st.reloads_failed), (1, 2));
    assert_eq!(
        st.last_reload_error.as_deref(),
        Some(format!("{path}: XDP steering update: map update refused").as_str())
    );
}

#[test]
fn reload_refuses_a_changed_interface_set() {
    let (mut c, _, file) = control(true, Vec::new());
    file.write(&yaml(&file, false).replace("lxc0", "lxc7"));
    assert_eq!(
        c.reload(),
        Err(format!(
            "{}: the interface set changed (was eth0,lxc0, now eth0,lxc7); adding or removing interfaces needs a restart, or `podfwd endpoint add|del`",
            file.0.display()
        ))
    );
}

#[test]
fn a_failed_or_finished_worker_is_reported() {
    let (c, _, _f) = control(true, vec![answering_worker(0, 1)]);
    assert_eq!(c.check_workers(), Ok(()));
    c.workers[0].shared.fail("panicked: boom");
    assert_eq!(
        c.check_workers(),
        Err("worker 0 stopped: panicked: boom".to_owned())
    );

    let (tx, _rx) = mpsc::channel::<WorkerRequest>();
    let t = std::thread::spawn(|| {});
    while !t.is_finished() {
        std::thread::yield_now();
    }
    let done = WorkerHandle {
        shared: Arc::new(WorkerShared::new(3, None, 2)),
        requests: tx,
        thread: Some(t),
    };
    let (c, _, _f) = control(true, vec![done]);
    assert_eq!(
        c.check_workers(),
        Err("worker 3 stopped unexpectedly".to_owned())
    );
}

#[test]
fn shutdown_detaches_every_port_then_stops_the_workers() {
    let (c, fake, _f) = control(true, vec![answering_worker(0, 1)]);
    let stop = c.stop_flag();
    c.shutdown();
    assert!(stop.load(Relaxed));
    assert_eq!(fake.0.borrow().detached, ["eth0", "lxc0"]);
}

const POD9: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 9);

/// Add interface `name` (ifindex `ifindex`) to the fake node.
fn plug(fake: &Fake, name: &str, ifindex: u32) {
    fake.0.borrow_mut().ifaces.insert(
        name.into(),
        iface(name, ifindex, [0xfe, 0xee, 0, 0, 9, 9], 1450),
    );
}

fn add(c: &mut Control<Fake>, ip: Ipv4Addr, iface: &str) -> Response {
    c.handle(Request::EndpointAdd {
        ip,
        interface: iface.into(),
        container_id: Some("c-1".into()),
    })
}

fn del(c: &mut Control<Fake>, iface: &str) -> Response {
    c.handle(Request::EndpointDel {
        ip: None,
        interface: Some(iface.into()),
    })
}

#[test]
fn an_endpoint_is_added_live_and_persisted() {
    let (mut c, fake, file) = control(true, vec![answering_worker(0, 41)]);
    plug(&fake, "lxc9", 20);
    assert_eq!(
        add(&mut c, POD9, "lxc9"),
        Response::done("endpoint 10.0.1.9 on lxc9 added")
    );
    {
        let s = fake.0.borrow();
        assert_eq!(s.attached, [("lxc9".to_owned(), PortRole::Pod)]);
        assert_eq!(s.registered, [("lxc9".to_owned(), 0, 41)]);
        assert!(s.resolved.contains(&POD9));
    }
    let snap = c.snapshot().load_full();
    assert_eq!(snap.ports.len(), 3);
    assert_eq!(snap.ports[2].name, "lxc9");
    let ep = snap.endpoints.iter().find(|e| e.ip == POD9).unwrap();
    assert_eq!(ep.port, 2);
    assert_eq!(c.status().lock().unwrap().ports[2].endpoint, Some(POD9));
    // Listed with its origin, and written to the state file.
    let list = c.handle(Request::EndpointList).endpoints.unwrap();
    assert_eq!(
        list.iter().map(|e| (e.ip, e.origin)).collect::<Vec<_>>(),
        [(POD, Origin::Config), (POD9, Origin::Api)]
    );
    let state = endpoints::load_state(&file.state());
    assert_eq!(state, list[1..]);
    assert_eq!(state[0].container_id.as_deref(), Some("c-1"));
    // The same add again is not an error; a clash is.
    assert_eq!(
        add(&mut c, POD9, "lxc9"),
        Response::done("endpoint 10.0.1.9 on lxc9 is already served")
    );
    assert_eq!(
        add(&mut c, POD9, "lxc0"),
        Response::refused(
            "endpoint 10.0.1.9 on lxc0: 10.0.1.2 on lxc0 is served already; remove it first"
        )
    );
}

#[test]
fn ping_tells_the_pod_mtu() {
    let (mut c, _, _f) = control(true, Vec::new());
    let r = c.handle(Request::Ping);
    assert!(r.ok);
    assert_eq!(r.pod_mtu, Some(1450), "tunnel mode: uplink 1500 - 50");
}

#[test]
fn bad_endpoints_are_refused_and_leave_nothing_behind() {
    let (mut c, fake, _f) = control(true, vec![answering_worker(0, 41)]);
    assert_eq!(
        add(&mut c, Ipv4Addr::new(10, 0, 2, 9), "lxc9"),
        Response::refused(
            "endpoint 10.0.2.9: not a pod address of this node's PodCIDR 10.0.1.0/24"
        )
    );
    assert_eq!(
        add(&mut c, POD9, "lxc9"),
        Response::refused("endpoint 10.0.1.9: interface lxc9 not found in this network namespace (check the name with `ip link`, and that podfwd runs in the node's namespace)")
    );
    assert_eq!(
        add(&mut c, POD9, "eth0"),
        Response::refused("endpoint 10.0.1.9: eth0 is the uplink")
    );
    assert!(fake.0.borrow().attached.is_empty());
    assert_eq!(c.snapshot().load().generation, 1);
}

#[test]
fn a_worker_that_cannot_open_a_socket_rolls_the_add_back() {
    let (tx, rx) = mpsc::channel::<WorkerRequest>();
    let t = std::thread::spawn(move || {
        for req in rx {
            match req {
                WorkerRequest::Replace(r) | WorkerRequest::Open(r) => {
                    let _ = r
                        .reply
                        .send(Err("worker 0: new AF_XDP socket: EBUSY".into()));
                }
                WorkerRequest::Close { reply, .. } => {
                    let _ = reply.send(());
                }
            }
        }
    });
    let w = WorkerHandle {
        shared: Arc::new(WorkerShared::new(0, None, 8)),
        requests: tx,
        thread: Some(t),
    };
    let (mut c, fake, _f) = control(true, vec![w]);
    plug(&fake, "lxc9", 20);
    assert_eq!(
        add(&mut c, POD9, "lxc9"),
        Response::refused("endpoint 10.0.1.9 on lxc9: worker 0: new AF_XDP socket: EBUSY")
    );
    assert_eq!(fake.0.borrow().detached, ["lxc9"]);
    assert_eq!(c.snapshot().load().ports.len(), 2);
    assert_eq!(c.handle(Request::EndpointList).endpoints.unwrap().len(), 1);
}

#[test]
fn an_endpoint_is_removed_live_and_its_slot_reused() {
    let (mut c, fake, file) = control(true, vec![answering_worker(0, 41)]);
    plug(&fake, "lxc9", 20);
    plug(&fake, "lxc8", 21);
    assert!(add(&mut c, POD9, "lxc9").ok);
    assert!(add(&mut c, Ipv4Addr::new(10, 0, 1, 8), "lxc8").ok);
    assert_eq!(
        del(&mut c, "lxc9"),
        Response::done("endpoint 10.0.1.9 on lxc9 removed")
    );
    assert_eq!(fake.0.borrow().detached, ["lxc9"]);
    let snap = c.snapshot().load_full();
    assert!(snap.endpoints.iter().all(|e| e.ip != POD9));
    assert_eq!(
        snap.ports[2].name, "",
        "slot 2 is vacant, lxc8 keeps port 3"
    );
    assert_eq!(snap.ports[3].name, "lxc8");
    assert!(c.status().lock().unwrap().ports[2].vacant);
    assert_eq!(endpoints::load_state(&file.state()).len(), 1);
    // Deleting again is not an error; the config's endpoint cannot be deleted here.
    assert_eq!(
        del(&mut c, "lxc9"),
        Response::done("endpoint lxc9 was not served")
    );
    let e = del(&mut c, "lxc0").error.unwrap();
    assert!(e.starts_with("endpoint lxc0 comes from "), "{e}");
    // The vacant slot is taken by the next pod.
    plug(&fake, "lxc7", 22);
    assert!(add(&mut c, Ipv4Addr::new(10, 0, 1, 7), "lxc7").ok);
    assert_eq!(c.snapshot().load().ports[2].name, "lxc7");
    assert!(!c.status().lock().unwrap().ports[2].vacant);
    // The last slot removed: the tables shrink back.
    assert!(del(&mut c, "lxc8").ok);
    assert_eq!(c.snapshot().load().ports.len(), 3);
}

#[test]
fn a_reload_keeps_the_api_endpoints() {
    let (mut c, fake, file) = control(true, vec![answering_worker(0, 41)]);
    plug(&fake, "lxc9", 20);
    assert!(add(&mut c, POD9, "lxc9").ok);
    file.write(&yaml(&file, true));
    assert!(c.reload().is_ok());
    let snap = c.snapshot().load_full();
    assert!(snap.endpoints.iter().any(|e| e.ip == POD9));
    assert_eq!(snap.nodes.len(), 2);
    // A config that claims the API's pod is refused.
    file.write(&yaml(&file, false).replace(
        "  - {ip: 10.0.1.2, interface: lxc0}\n",
        "  - {ip: 10.0.1.2, interface: lxc0}\n  - {ip: 10.0.1.9, interface: lxc5}\n",
    ));
    let e = c.reload().unwrap_err();
    assert!(
        e.contains("the interface set changed") || e.contains("also served as added over the API"),
        "{e}"
    );
}

#[test]
fn a_node_behind_a_router_gets_the_routers_mac() {
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
    const ROUTER_MAC: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 0xfe];
    let (mut c, fake, _f) = control(true, Vec::new());
    assert_eq!(hop_macs(&c), [Some(MAC_NODE_B)]);
    // The FIB now says node b is behind the router, whose MAC is not known yet: the
    // kernel is asked to resolve it, and node b is unresolved meanwhile (not the stale
    // direct MAC).
    fake.route(NODE_B, &[(ROUTER, "eth0", 1)]);
    c.refresh();
    assert_eq!(hop_macs(&c), [None]);
    assert!(fake.0.borrow().resolved.contains(&NODE_B));
    fake.0
        .borrow_mut()
        .neigh
        .insert((ROUTER, "eth0".into()), ROUTER_MAC);
    c.refresh();
    let snap = c.snapshot().load_full();
    assert_eq!(snap.nodes[0].hops.resolved()[0].mac, ROUTER_MAC);
    assert_eq!(
        snap.nodes[0].hops.resolved()[0].outer.bytes[..6],
        ROUTER_MAC,
        "the VXLAN outer header goes to the router"
    );
    // A route out of another interface: podfwd sends only on the uplink.
    fake.route(NODE_B, &[(ROUTER, "eth1", 1)]);
    c.refresh();
    assert!(hop_macs(&c).is_empty());
    assert_eq!(
        c.status().lock().unwrap().ready(),
        Err("next hop not resolved for node(s) node-b".to_owned())
    );
}

#[test]
fn pod_cidrs_are_learned_from_the_routing_table_live() {
    let (mut c, fake, file) = control(true, Vec::new());
    file.write(&(yaml(&file, false) + "routes: {table: 201}\n"));
    let node_c = Ipv4Addr::new(198, 18, 0, 3);
    let net = |s: &str| s.parse::<ipnet::Ipv4Net>().unwrap();
    fake.0.borrow_mut().learned = vec![
        (net("10.0.3.0/24"), node_c),                       // node c: learned
        (net("10.0.2.0/24"), Ipv4Addr::new(198, 18, 0, 9)), // node b's: the file wins
        (net("192.168.7.0/24"), node_c),                    // outside the cluster: ignored
        (net("10.0.1.0/25"), node_c),                       // inside our own PodCIDR: ignored
    ];
    assert!(c.reload().is_ok());
    let snap = c.snapshot().load_full();
    let nodes: Vec<_> = snap
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.ip, n.pod_cidr.to_string()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("node-b", NODE_B, "10.0.2.0/24".to_owned()),
            ("198.18.0.3", node_c, "10.0.3.0/24".to_owned())
        ]
    );
    {
        let st = c.status();
        let st = st.lock().unwrap();
        assert_eq!((st.learned_routes, st.learned_ignored), (1, 2));
    }
    c.refresh();
    assert!(
        fake.0.borrow().resolved.contains(&node_c),
        "its next hop is resolved"
    );
    // Withdrawn (the node's BGP daemon stopped): gone at the next refresh.
    fake.0
        .borrow_mut()
        .learned
        .retain(|(p, _)| *p != net("10.0.3.0/24"));
    let g = c.snapshot().load().generation;
    c.refresh();
    let snap = c.snapshot().load_full();
    assert!(snap.generation > g);
    assert_eq!(snap.nodes.len(), 1);
    assert!(
        snap.lookup(u32::from(Ipv4Addr::new(10, 0, 3, 5))).is_none(),
        "no_route from now on"
    );
}

#[test]
fn hybrid_mode_decides_per_node_from_the_fib() {
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
    let (mut c, fake, file) = control(true, Vec::new());
    file.write(&yaml(&file, true).replace("mode: tunnel", "mode: hybrid"));
    let e = c.reload().unwrap_err();
    assert!(
        e.contains("node, mode, workers, umem or metrics changed"),
        "{e}"
    );
    // Started in hybrid mode: node b on-link (native), node c behind the router (VXLAN).
    let file2 = TempConfig::new("");
    file2.write(&yaml(&file2, true).replace("mode: tunnel", "mode: hybrid"));
    let cfg = Config::load(&file2.0).unwrap();
    let node_c = Ipv4Addr::new(198, 18, 0, 3);
    fake.route(node_c, &[(ROUTER, "eth0", 1)]);
    fake.route(NODE_B, &[(NODE_B, "eth0", 1)]);
    let eps = config_endpoints(&cfg);
    let ports = vec![
        Port::new(PortRole::Uplink, fake.lookup("eth0").unwrap()),
        Port::new(PortRole::Pod, fake.lookup("lxc0").unwrap()),
    ];
    let modes = vec!["native".into(), "native".into()];
    let mut h = Control::new(
        fake.clone(),
        &file2.0,
        cfg,
        eps,
        ports,
        modes,
        Vec::new(),
        64,
    )
    .unwrap();
    let snap = h.snapshot().load_full();
    let encap: Vec<(Ipv4Addr, bool)> = snap.nodes.iter().map(|n| (n.ip, n.encap)).collect();
    assert_eq!(encap, [(NODE_B, false), (node_c, true)]);
    // The route to node b changes to go through the router: re-decided.
    fake.route(NODE_B, &[(ROUTER, "eth0", 1)]);
    h.refresh();
    assert!(h.snapshot().load().nodes[0].encap);
    assert_eq!(h.handle(Request::Ping).pod_mtu, Some(1450));
}

/// A multipath route to node b: every gateway on the uplink goes into the snapshot with
/// its weight (a hop through another interface does not), each resolved on its own;
/// flows use the resolved ones. A weight change republishes, and a hop that leaves the
/// route (removed, or dead with its link: the FIB no longer lists it as usable) leaves
/// the snapshot at the next refresh.
#[test]
fn a_multipath_route_gives_the_node_every_gateway() {
    const R1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 253);
    const R2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
    const R3: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 1);
    const MAC_R1: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 0xfd];
    const MAC_R2: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 0xfe];
    let (mut c, fake, _f) = control(true, Vec::new());
    fake.route(NODE_B, &[(R1, "eth0", 1), (R3, "eth1", 1), (R2, "eth0", 3)]);
    fake.0
        .borrow_mut()
        .neigh
        .insert((R1, "eth0".into()), MAC_R1);
    fake.0.borrow_mut().resolved.clear();
    c.refresh();
    let snap = c.snapshot().load_full();
    let hops = &snap.nodes[0].hops;
    let all: Vec<(Ipv4Addr, u16)> = hops.all().iter().map(|h| (h.via, h.weight)).collect();
    assert_eq!(all, [(R1, 1), (R2, 3)], "eth1's hop is not podfwd's");
    assert_eq!(hop_macs(&c), [Some(MAC_R1), None]);
    assert_eq!((hops.slots_of(0), hops.slots_of(1)), (64, 0));
    assert!(
        fake.0.borrow().resolved.contains(&NODE_B),
        "the kernel is asked to resolve node b's hops"
    );
    {
        let st = c.status();
        let st = st.lock().unwrap();
        assert_eq!(st.ready(), Ok(()), "one resolved hop is enough");
        let n = &st.nodes[0];
        assert_eq!(n.mac.as_deref(), Some("02:00:c6:12:00:fd"));
        let v: Vec<(Ipv4Addr, u16, Option<&str>, usize)> = n
            .next_hops
            .iter()
            .map(|h| (h.via, h.weight, h.mac.as_deref(), h.slots))
            .collect();
        assert_eq!(
            v,
            [(R1, 1, Some("02:00:c6:12:00:fd"), 64), (R2, 3, None, 0)]
        );
    }

    // The second gateway resolves: flows spread 1:3.
    fake.0
        .borrow_mut()
        .neigh
        .insert((R2, "eth0".into()), MAC_R2);
    let g = c.snapshot().load().generation;
    c.refresh();
    let snap = c.snapshot().load_full();
    assert_eq!(snap.generation, g + 1);
    let hops = &snap.nodes[0].hops;
    assert_eq!(hops.resolved().len(), 2);
    assert_eq!((hops.slots_of(0), hops.slots_of(1)), (16, 48));
    assert_eq!(hops.resolved()[1].outer.bytes[..6], MAC_R2);

    // Only the weights change: republished.
    fake.route(NODE_B, &[(R1, "eth0", 1), (R2, "eth0", 1)]);
    c.refresh();
    let snap = c.snapshot().load_full();
    assert_eq!(snap.generation, g + 2);
    assert_eq!(snap.nodes[0].hops.slots_of(1), 32);

    // R2 leaves the route: its flows go to R1.
    fake.route(NODE_B, &[(R1, "eth0", 1)]);
    c.refresh();
    assert_eq!(hop_macs(&c), [Some(MAC_R1)]);
    assert_eq!(c.snapshot().load().generation, g + 3);
}

/// `c` following table 201 (nothing learned yet) with a fake kernel that announces
/// changes; returns the end to announce them on.
fn announcing(
    c: &mut Control<Fake>,
    fake: &Fake,
    file: &TempConfig,
) -> std::os::unix::net::UnixStream {
    file.write(&(yaml(file, false) + "routes: {table: 201}\n"));
    assert!(c.reload().is_ok());
    let (kernel, ours) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    fake.0.borrow_mut().events = Some(ours);
    c.refresh(); // the one a reload asks for
                 // The periodic refresh is an hour away: only an announcement can refresh.
    c.last_refresh = Instant::now() + Duration::from_secs(3600);
    kernel
}

#[test]
fn a_kernel_announcement_wakes_a_refresh() {
    use std::io::Write;
    let (mut c, fake, file) = control(true, Vec::new());
    let mut kernel = announcing(&mut c, &fake, &file);
    let mut wake = wake::Wakeups::new(c.event_fd(), None).unwrap();
    let g = c.snapshot().load().generation;
    let net = "10.0.3.0/24".parse().unwrap();
    fake.0.borrow_mut().learned = vec![(net, Ipv4Addr::new(198, 18, 0, 3))];
    kernel.write_all(&[1]).unwrap();
    assert_eq!(
        c.wait(&mut wake),
        wake::Woken {
            kernel: true,
            other: false
        }
    );
    // The batch is complete once the kernel has been quiet for a moment.
    let mut waits = 1;
    while c.snapshot().load().generation == g && waits < 5 {
        c.wait(&mut wake);
        waits += 1;
    }
    let snap = c.snapshot().load_full();
    assert_eq!(snap.generation, g + 1, "one snapshot for the announcement");
    assert_eq!(snap.nodes.len(), 2, "node c learned");
    assert!(waits <= 2, "applied after {waits} waits");

    // Withdrawn: frames to its pods are no_route from the next snapshot on.
    fake.0.borrow_mut().learned.clear();
    kernel.write_all(&[1]).unwrap();
    let mut waits = 0;
    while c.snapshot().load().generation == g + 1 && waits < 5 {
        c.wait(&mut wake);
        waits += 1;
    }
    let snap = c.snapshot().load_full();
    assert!(waits <= 2, "withdrawn after {waits} waits");
    assert!(snap.lookup(u32::from(Ipv4Addr::new(10, 0, 3, 5))).is_none());
}

#[test]
fn without_the_kernel_fd_a_change_waits_for_the_periodic_refresh() {
    use std::io::Write;
    let (mut c, fake, file) = control(true, Vec::new());
    let mut kernel = announcing(&mut c, &fake, &file);
    let mut wake = wake::Wakeups::new(None, None).unwrap();
    let g = c.snapshot().load().generation;
    let net = "10.0.3.0/24".parse().unwrap();
    fake.0.borrow_mut().learned = vec![(net, Ipv4Addr::new(198, 18, 0, 3))];
    kernel.write_all(&[1]).unwrap();
    assert_eq!(
        c.wait(&mut wake),
        wake::Woken::default(),
        "the tick's timeout"
    );
    c.wait(&mut wake);
    assert_eq!(
        c.snapshot().load().generation,
        g,
        "not applied before the refresh"
    );
    c.refresh();
    assert_eq!(c.snapshot().load().nodes.len(), 2);
}

#[test]
fn kernel_changes_are_batched() {
    use wake::{Batch, BATCH, QUIET};
    let ms = Duration::from_millis;
    let t0 = Instant::now();
    let mut b = Batch::default();
    assert_eq!(b.due(), None);
    assert!(!b.take(t0 + ms(500)), "nothing pending");
    // An isolated change: applied once the kernel is quiet.
    b.changed(t0);
    assert_eq!(b.due(), Some(t0 + QUIET));
    assert!(!b.take(t0 + QUIET - ms(1)));
    assert!(b.take(t0 + QUIET));
    assert!(!b.take(t0 + ms(50)), "applied once");
    // A change right after: at most one batch per BATCH.
    let t1 = t0 + QUIET + ms(10);
    b.changed(t1);
    assert_eq!(b.due(), Some(t0 + QUIET + BATCH));
    // While the kernel keeps announcing: BATCH after the first change.
    for i in 1..300 {
        b.changed(t1 + ms(i));
    }
    assert_eq!(b.due(), Some(t1 + BATCH));
    let t2 = t1 + BATCH;
    assert!(b.take(t2));
    b.changed(t2 + ms(1));
    b.changed(t2 + ms(150));
    assert_eq!(
        b.due(),
        Some(t2 + ms(1) + BATCH),
        "no longer than BATCH after the first"
    );
    // A refresh for another reason applies what is pending.
    b.clear();
    assert_eq!(b.due(), None);
}
