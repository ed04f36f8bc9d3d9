//! The commands: ADD, DEL, CHECK, STATUS, GC, VERSION (SPEC.md section 2).
//!
//! ADD, in order (each step undone on a later failure, newest first):
//! 1. ask podfwd `ping` (absent: code 11 before anything is touched; learns `pod_mtu`);
//! 2. refuse if the host veth or the container interface exists (code 101, untouched);
//! 3. create the veth pair in one request, the peer straight into CNI_NETNS as
//!    CNI_IFNAME (NLM_F_EXCL, so a racing second ADD fails here, before IPAM);
//! 4. IPAM ADD by delegation (host-local);
//! 5. pod: link up, ip/32, `gw dev IF scope link`, `default via gw dev IF src ip`;
//!    host: link up, gw/32 scope link on the veth, `ip/32 dev lxc… scope link`;
//!    with `"gro"` set, GRO on or off on the container interface (ethtool netlink);
//! 6. `endpoint_add` to podfwd.

use std::io::Read;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use netlink_packet_route::address::AddressScope;
use netlink_packet_route::route::RouteScope;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::Request;
use crate::client::{self, ClientError};
use crate::config::{env, version_at_least, Attachment, Command, NetConf, SUPPORTED_VERSIONS};
use crate::error::{code, CniError, Result};
use crate::ipam;
use crate::netns;
use crate::nl::{self, Link, Netlink, Route};

/// Test-only failure injection: `PODFWD_CNI_FAIL_AT=after-veth|after-ipam|after-gro|after-register`
/// makes ADD fail right after that step (code 199), to prove the rollback. Never set it
/// in a real conflist environment.
pub const FAIL_AT_ENV: &str = "PODFWD_CNI_FAIL_AT";

/// Host-side veth of a container: `lxc` + 11 hex digits of SHA-256(container id): 14
/// bytes, under IFNAMSIZ (16 with the NUL), stable across ADD/DEL/CHECK.
pub fn host_veth_name(container_id: &str) -> String {
    let h = Sha256::digest(container_id.as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("lxc{}", &hex[..11])
}

/// Run one invocation: read stdin and the environment, print the result or the error on
/// stdout. Returns the exit code.
pub fn run() -> i32 {
    let mut stdin = Vec::new();
    let res = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => dispatch(&stdin),
        Err(e) => Err(CniError::new(
            code::IO,
            "failed to read the network configuration",
            format!("reading stdin: {e}"),
        )),
    };
    match res {
        Ok(Some(out)) => {
            println!("{out}");
            0
        }
        Ok(None) => 0,
        Err(mut e) => {
            e.cni_version = requested_version(&stdin);
            eprintln!("podfwd-cni: {e}");
            println!(
                "{}",
                serde_json::to_string(&e).expect("errors always serialize")
            );
            1
        }
    }
}

/// The version for error results: the request's, else the newest.
fn requested_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_owned))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "1.1.0".to_owned())
}

fn dispatch(stdin: &[u8]) -> Result<Option<String>> {
    let raw = env("CNI_COMMAND").unwrap_or_default();
    let cmd = Command::parse(&raw).ok_or_else(|| {
        CniError::new(
            code::INVALID_ENV,
            "invalid environment variables",
            format!("CNI_COMMAND={raw:?} (one of ADD, DEL, CHECK, STATUS, GC, VERSION)"),
        )
    })?;
    if cmd == Command::Version {
        let v = requested_version(stdin);
        return Ok(Some(
            json!({"cniVersion": v, "supportedVersions": SUPPORTED_VERSIONS}).to_string(),
        ));
    }
    let conf = NetConf::parse(stdin)?;
    let need = match cmd {
        Command::Check => Some("0.4.0"),
        Command::Status | Command::Gc => Some("1.1.0"),
        _ => None,
    };
    if let Some(min) = need {
        if !version_at_least(&conf.cni_version, min) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                "incompatible CNI version",
                format!(
                    "{raw} needs cniVersion {min} or newer; the config has {}",
                    conf.cni_version
                ),
            ));
        }
    }
    match cmd {
        Command::Add => add(&conf, stdin, &Attachment::from_env(cmd)?).map(Some),
        Command::Del => del(&conf, stdin, &Attachment::from_env(cmd)?).map(|()| None),
        Command::Check => check(&conf, stdin, &Attachment::from_env(cmd)?).map(|()| None),
        Command::Status => status(&conf, stdin).map(|()| None),
        Command::Gc => gc(&conf, stdin).map(|()| None),
        Command::Version => unreachable!("handled above"),
    }
}

fn nl_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CniError {
    let what = what.into();
    move |e| {
        CniError::new(
            code::NETLINK,
            "netlink request failed",
            format!("{what}: {e}"),
        )
    }
}

fn fail_at(point: &str) -> Result<()> {
    if std::env::var(FAIL_AT_ENV).is_ok_and(|v| v == point) {
        return Err(CniError::new(
            code::INJECTED,
            "injected failure",
            format!("{FAIL_AT_ENV}={point} (test only)"),
        ));
    }
    Ok(())
}

fn open_netns(path: &Path) -> Result<std::fs::File> {
    netns::open(path).map_err(|e| {
        CniError::new(
            code::UNKNOWN_CONTAINER,
            "container network namespace not found",
            format!("CNI_NETNS={}: {e}", path.display()),
        )
    })
}

fn netns_path(att: &Attachment) -> &Path {
    att.netns
        .as_deref()
        .expect("validated: set for ADD and CHECK")
}

/// What ADD has done so far, to undo on failure.
#[derive(Debug, Default)]
struct Undo {
    veth: Option<(u32, String)>,
    ip: Option<Ipv4Addr>,
    ipam: Option<PathBuf>,
}

impl Undo {
    /// Newest first: podfwd, the veth (its peer, addresses and routes go with it), IPAM.
    fn rollback(&self, conf: &NetConf, stdin: &[u8], host: &mut Netlink) {
        if let Some((index, name)) = &self.veth {
            // Also when endpoint_add was never sent: podfwd may have seen the link appear,
            // and deleting an unknown endpoint is a no-op for it.
            let req = Request::EndpointDel {
                interface: Some(name.clone()),
                ip: self.ip,
            };
            match client::call(&conf.socket(), &req) {
                Ok(r) if r.ok => {}
                Ok(r) => eprintln!("podfwd-cni: rollback: podfwd: {:?}", r.error),
                Err(e) => eprintln!("podfwd-cni: rollback: {e}"),
            }
            if let Err(e) = host.del_link(*index) {
                if !nl::is_gone(&e) {
                    eprintln!("podfwd-cni: rollback: deleting {name}: {e}");
                }
            }
        }
        if let Some(bin) = &self.ipam {
            if let Err(e) = ipam::exec_compat(bin, "DEL", stdin, &conf.cni_version) {
                eprintln!("podfwd-cni: rollback: IPAM DEL: {e}");
            }
        }
    }
}

fn add(conf: &NetConf, stdin: &[u8], att: &Attachment) -> Result<String> {
    let ipam_bin = ipam::find(conf.ipam_type()?)?;
    let socket = conf.socket();
    let ping = client::call_ok(&socket, &Request::Ping)?;
    let mtu = conf.mtu.or(ping.pod_mtu);
    let netns_path = netns_path(att);
    let ns = open_netns(netns_path)?;
    let mut host = Netlink::new().map_err(nl_err("opening rtnetlink"))?;
    let mut pod = netns::netlink_in(&ns).map_err(nl_err(format!(
        "opening rtnetlink in {}",
        netns_path.display()
    )))?;
    let host_name = host_veth_name(&att.container_id);
    let exists = |what: String| {
        CniError::new(
            code::ALREADY_EXISTS,
            "attachment already exists",
            format!("{what}; DEL it first (ADD left it untouched)"),
        )
    };
    if host
        .link(&host_name)
        .map_err(nl_err(format!("looking up {host_name}")))?
        .is_some()
    {
        return Err(exists(format!(
            "host veth {host_name} of container {} exists",
            att.container_id
        )));
    }
    if pod
        .link(&att.ifname)
        .map_err(nl_err(format!("looking up {}", att.ifname)))?
        .is_some()
    {
        return Err(exists(format!(
            "interface {} exists in {}",
            att.ifname,
            netns_path.display()
        )));
    }

    let mut undo = Undo::default();
    let r = add_steps(
        conf, stdin, att, &ns, &mut host, &mut pod, &host_name, mtu, &ipam_bin, &mut undo,
    );
    if r.is_err() {
        undo.rollback(conf, stdin, &mut host);
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn add_steps(
    conf: &NetConf,
    stdin: &[u8],
    att: &Attachment,
    ns: &std::fs::File,
    host: &mut Netlink,
    pod: &mut Netlink,
    host_name: &str,
    mtu: Option<u32>,
    ipam_bin: &Path,
    undo: &mut Undo,
) -> Result<String> {
    let gw = conf.gateway();
    host.add_veth(host_name, &att.ifname, ns.as_raw_fd(), mtu)
        .map_err(|e| {
            if nl::is_exists(&e) {
                CniError::new(
                    code::ALREADY_EXISTS,
                    "attachment already exists",
                    format!("veth {host_name} or {} in the container: {e}", att.ifname),
                )
            } else {
                nl_err(format!("creating veth {host_name} <-> {}", att.ifname))(e)
            }
        })?;
    let hl = lookup(host, host_name)?;
    undo.veth = Some((hl.index, host_name.to_owned()));
    fail_at("after-veth")?;

    let out = ipam::exec_compat(ipam_bin, "ADD", stdin, &conf.cni_version)?;
    undo.ipam = Some(ipam_bin.to_owned());
    let ipam = ipam::parse_result(&out)?;
    let ip = ipam.ipv4()?;
    undo.ip = Some(ip);
    fail_at("after-ipam")?;

    address_pod(pod, &att.ifname, ip, gw)?;
    address_host(host, hl.index, host_name, ip, gw)?;

    let hl = lookup(host, host_name)?;
    let pl = lookup(pod, &att.ifname)?;
    if let Some(on) = conf.gro() {
        set_gro(ns, &pl, on, netns_path(att))?;
    }
    fail_at("after-gro")?;

    client::call_ok(
        &conf.socket(),
        &Request::EndpointAdd {
            ip,
            interface: host_name.to_owned(),
            container_id: Some(att.container_id.clone()),
        },
    )?;
    fail_at("after-register")?;

    let ours = result(conf, att, &hl, &pl, ip, ipam.dns);
    Ok(match &conf.prev_result {
        Some(prev) => merge_prev(prev, ours),
        None => ours,
    }
    .to_string())
}

/// GRO on the container interface: frames the host side sends into the pod (podfwd's
/// AF_XDP transmit, or the kernel's forwarding) then go through the veth's NAPI and GRO
/// (drivers/net/veth.c: a peer with GRO on has a NAPI, `veth_xmit` queues to it).
fn set_gro(ns: &std::fs::File, pl: &Link, on: bool, path: &Path) -> Result<()> {
    let what = || {
        format!(
            "GRO {} on {} in {}",
            if on { "on" } else { "off" },
            pl.name,
            path.display()
        )
    };
    let mut e =
        netns::ethtool_in(ns).map_err(nl_err(format!("opening ethtool netlink for {}", what())))?;
    e.set_feature(pl.index, crate::ethtool::GRO, on)
        .map_err(nl_err(format!("setting {}", what())))
}

/// The pod side: up, its /32, a link route to the gateway and the default route via it.
fn address_pod(pod: &mut Netlink, ifn: &str, ip: Ipv4Addr, gw: Ipv4Addr) -> Result<()> {
    let pl = lookup(pod, ifn)?;
    pod.set_up(pl.index)
        .map_err(nl_err(format!("setting {ifn} up")))?;
    pod.add_addr(pl.index, ip, 32, AddressScope::Universe)
        .map_err(nl_err(format!("adding {ip}/32 to {ifn}")))?;
    pod.add_route(&Route {
        dst: gw,
        prefix: 32,
        gateway: None,
        oif: Some(pl.index),
        scope: RouteScope::Link,
        src: None,
    })
    .map_err(nl_err(format!("adding route {gw} dev {ifn} scope link")))?;
    pod.add_route(&Route {
        dst: Ipv4Addr::UNSPECIFIED,
        prefix: 0,
        gateway: Some(gw),
        oif: Some(pl.index),
        scope: RouteScope::Universe,
        src: Some(ip),
    })
    .map_err(nl_err(format!(
        "adding default via {gw} dev {ifn} src {ip}"
    )))?;
    Ok(())
}

/// The host side: the gateway address (so the node answers the pod's ARP for it), up,
/// and the pod's /32 routed to it.
fn address_host(
    host: &mut Netlink,
    index: u32,
    host_name: &str,
    ip: Ipv4Addr,
    gw: Ipv4Addr,
) -> Result<()> {
    // The node answers ARP for the gateway because every host veth holds it (scope link,
    // so it is never picked as a source for other traffic) — as scripts/topology does.
    host.add_addr(index, gw, 32, AddressScope::Link)
        .map_err(nl_err(format!("adding {gw}/32 to {host_name}")))?;
    host.set_up(index)
        .map_err(nl_err(format!("setting {host_name} up")))?;
    host.add_route(&Route {
        dst: ip,
        prefix: 32,
        gateway: None,
        oif: Some(index),
        scope: RouteScope::Link,
        src: None,
    })
    .map_err(nl_err(format!("adding route {ip}/32 dev {host_name}")))?;
    Ok(())
}

fn lookup(h: &mut Netlink, name: &str) -> Result<Link> {
    h.link(name)
        .map_err(nl_err(format!("looking up {name}")))?
        .ok_or_else(|| {
            CniError::new(
                code::NETLINK,
                "interface vanished",
                format!("{name} was created but is gone"),
            )
        })
}

/// The ADD success result (SPEC.md section 5), shaped for the request's version:
/// `ips[].version` before 1.0.0, `interfaces[].mtu` from 1.1.0.
fn result(
    conf: &NetConf,
    att: &Attachment,
    host: &Link,
    pod: &Link,
    ip: Ipv4Addr,
    ipam_dns: Option<Value>,
) -> Value {
    let v = conf.cni_version.as_str();
    let gw = conf.gateway();
    let mut hi = json!({"name": host.name, "mac": host.mac_string()});
    let mut pi = json!({
        "name": pod.name,
        "mac": pod.mac_string(),
        "sandbox": netns_path(att).display().to_string(),
    });
    if version_at_least(v, "1.1.0") {
        hi["mtu"] = host.mtu.into();
        pi["mtu"] = pod.mtu.into();
    }
    let mut ipc = json!({"address": format!("{ip}/32"), "gateway": gw.to_string(), "interface": 1});
    if !version_at_least(v, "1.0.0") {
        ipc["version"] = "4".into();
    }
    let dns = conf.dns.clone().or(ipam_dns).unwrap_or_else(|| json!({}));
    json!({
        "cniVersion": v,
        "interfaces": [hi, pi],
        "ips": [ipc],
        "routes": [{"dst": "0.0.0.0/0", "gw": gw.to_string()}],
        "dns": dns,
    })
}

/// ADD after other plugins in a chain (SPEC.md: a plugin given `prevResult` must pass it
/// on, with its own changes): their interfaces, ips and routes first, ours appended, our
/// `ips[].interface` shifted past theirs; their dns unless we have one.
fn merge_prev(prev: &Value, mut ours: Value) -> Value {
    let list = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut ifs = list(prev, "interfaces");
    let shift = ifs.len() as u64;
    ifs.extend(list(&ours, "interfaces"));
    let mut ips = list(prev, "ips");
    for mut ip in list(&ours, "ips") {
        if let Some(i) = ip["interface"].as_u64() {
            ip["interface"] = (i + shift).into();
        }
        ips.push(ip);
    }
    let mut routes = list(prev, "routes");
    routes.extend(list(&ours, "routes"));
    ours["interfaces"] = ifs.into();
    ours["ips"] = ips.into();
    ours["routes"] = routes.into();
    if ours["dns"].as_object().is_none_or(|d| d.is_empty()) {
        if let Some(d) = prev.get("dns") {
            ours["dns"] = d.clone();
        }
    }
    ours
}

/// The pod's IPv4 address from a prevResult: the /32 on our container interface
/// (`ips[].interface` naming an interface called `ifname` with a sandbox), else, for a
/// result without interface indices, the first IPv4 address.
fn prev_ip(conf: &NetConf, ifname: &str) -> Option<Ipv4Addr> {
    let prev = conf.prev_result.as_ref()?;
    let ifs = prev.get("interfaces").and_then(Value::as_array);
    let ours = |ip: &Value| {
        let Some(i) = ip.get("interface").and_then(Value::as_u64) else {
            return ifs.is_none();
        };
        ifs.and_then(|l| l.get(usize::try_from(i).ok()?))
            .is_some_and(|f| {
                f["name"] == ifname && f["sandbox"].as_str().is_some_and(|s| !s.is_empty())
            })
    };
    prev.get("ips")?
        .as_array()?
        .iter()
        .filter(|ip| ours(ip))
        .find_map(|ip| ip.get("address")?.as_str()?.split('/').next()?.parse().ok())
}

/// DEL: best effort and idempotent. Unknown container, gone netns, gone veth, podfwd not
/// running: all success. Only a failing IPAM DEL or a netlink error other than "gone"
/// is an error (the runtime retries DEL).
fn del(conf: &NetConf, stdin: &[u8], att: &Attachment) -> Result<()> {
    let ipam_bin = ipam::find(conf.ipam_type()?)?;
    let host_name = host_veth_name(&att.container_id);
    let mut host = Netlink::new().map_err(nl_err("opening rtnetlink"))?;
    let link = host
        .link(&host_name)
        .map_err(nl_err(format!("looking up {host_name}")))?;
    let ip = prev_ip(conf, &att.ifname).or_else(|| {
        let l = link.as_ref()?;
        host.routes().ok()?.into_iter().find_map(|r| {
            (r.oif == Some(l.index) && r.prefix == 32 && r.gateway.is_none()).then_some(r.dst)
        })
    });
    // podfwd first, while the veth still exists, so it detaches before the link goes.
    let req = Request::EndpointDel {
        interface: Some(host_name.clone()),
        ip,
    };
    match client::call(&conf.socket(), &req) {
        Ok(r) if r.ok => {}
        // podfwd keeps no state across restarts that a stale endpoint could corrupt,
        // and the veth is about to vanish (which it sees): DEL must not get stuck here.
        Ok(r) => eprintln!("podfwd-cni: DEL: podfwd: {:?} (ignored)", r.error),
        Err(ClientError::NotRunning { .. }) => {}
        Err(e) => eprintln!("podfwd-cni: DEL: {e} (ignored)"),
    }
    let mut first_err = None;
    if let Some(l) = &link {
        if let Err(e) = host.del_link(l.index) {
            if !nl::is_gone(&e) {
                first_err = Some(nl_err(format!("deleting {host_name}"))(e));
            }
        }
    }
    if let Err(e) = ipam::exec_compat(&ipam_bin, "DEL", stdin, &conf.cni_version) {
        first_err.get_or_insert(e);
    }
    first_err.map_or(Ok(()), Err)
}

fn check_failed(details: String) -> CniError {
    CniError::new(
        code::CHECK_FAILED,
        "attachment is not as ADD left it",
        details,
    )
}

/// CHECK: IPAM CHECK, podfwd reachable, and every resource of prevResult present.
fn check(conf: &NetConf, stdin: &[u8], att: &Attachment) -> Result<()> {
    let ipam_bin = ipam::find(conf.ipam_type()?)?;
    if conf.prev_result.is_none() {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            "CHECK without prevResult",
            "the runtime must pass the ADD result as prevResult",
        ));
    }
    let ip = prev_ip(conf, &att.ifname)
        .ok_or_else(|| check_failed("prevResult has no IPv4 address in ips".into()))?;
    ipam::exec_compat(&ipam_bin, "CHECK", stdin, &conf.cni_version)?;
    client::call_ok(&conf.socket(), &Request::Ping)?;
    let gw = conf.gateway();

    let host_name = host_veth_name(&att.container_id);
    let mut host = Netlink::new().map_err(nl_err("opening rtnetlink"))?;
    let hl = host
        .link(&host_name)
        .map_err(nl_err(format!("looking up {host_name}")))?
        .ok_or_else(|| check_failed(format!("host veth {host_name} is missing")))?;
    check_link(&hl, conf.mtu)?;
    let haddrs = host.addrs(hl.index).map_err(nl_err("dumping addresses"))?;
    if !haddrs.contains(&(gw, 32)) {
        return Err(check_failed(format!(
            "{host_name} does not hold the gateway {gw}/32 (has {haddrs:?})"
        )));
    }
    let hroutes = host.routes().map_err(nl_err("dumping routes"))?;
    if !hroutes
        .iter()
        .any(|r| r.dst == ip && r.prefix == 32 && r.oif == Some(hl.index))
    {
        return Err(check_failed(format!(
            "no host route {ip}/32 dev {host_name}"
        )));
    }

    let netns_path = netns_path(att);
    let ns = open_netns(netns_path)?;
    let mut pod = netns::netlink_in(&ns).map_err(nl_err("opening rtnetlink in the pod"))?;
    let ifn = &att.ifname;
    let pl = pod
        .link(ifn)
        .map_err(nl_err(format!("looking up {ifn}")))?
        .ok_or_else(|| check_failed(format!("{ifn} is missing in {}", netns_path.display())))?;
    check_link(&pl, conf.mtu)?;
    let paddrs = pod
        .addrs(pl.index)
        .map_err(nl_err("dumping pod addresses"))?;
    if !paddrs.contains(&(ip, 32)) {
        return Err(check_failed(format!(
            "{ifn} does not have {ip}/32 (has {paddrs:?})"
        )));
    }
    let proutes = pod.routes().map_err(nl_err("dumping pod routes"))?;
    if !proutes
        .iter()
        .any(|r| r.prefix == 0 && r.gateway == Some(gw) && r.oif == Some(pl.index))
    {
        return Err(check_failed(format!("no default route via {gw} dev {ifn}")));
    }
    Ok(())
}

fn check_link(l: &Link, mtu: Option<u32>) -> Result<()> {
    if l.kind.as_deref() != Some("veth") {
        return Err(check_failed(format!(
            "{} is not a veth ({:?})",
            l.name, l.kind
        )));
    }
    if !l.up {
        return Err(check_failed(format!("{} is down", l.name)));
    }
    if let Some(m) = mtu {
        if l.mtu != m {
            return Err(check_failed(format!(
                "{} has MTU {}, the config says {m}",
                l.name, l.mtu
            )));
        }
    }
    Ok(())
}

/// STATUS: podfwd must answer `ping` (else 50); the IPAM plugin is asked too if it
/// speaks 1.1.0 (older ones have no STATUS).
fn status(conf: &NetConf, stdin: &[u8]) -> Result<()> {
    client::call_ok(&conf.socket(), &Request::Ping).map_err(|e| {
        CniError::new(
            code::NOT_AVAILABLE,
            "podfwd is not available",
            format!("{}: {}", e.msg, e.details),
        )
    })?;
    if let Ok(kind) = conf.ipam_type() {
        let bin = ipam::find(kind)?;
        if ipam::supports(&bin, "1.1.0") {
            ipam::exec(&bin, "STATUS", stdin)?;
        }
    }
    Ok(())
}

/// GC: forwarded to the IPAM plugin when it speaks 1.1.0 (host-local then frees the
/// reservations of attachments not in `cni.dev/valid-attachments`). Host veths need no
/// collection: a veth dies with its pod's namespace.
fn gc(conf: &NetConf, stdin: &[u8]) -> Result<()> {
    if let Ok(kind) = conf.ipam_type() {
        let bin = ipam::find(kind)?;
        if ipam::supports(&bin, "1.1.0") {
            ipam::exec(&bin, "GC", stdin)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_in_a_chain_appends_to_prev_result() {
        let prev = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "lo", "sandbox": "/run/netns/x"}],
            "ips": [{"address": "127.0.0.1/8", "interface": 0}],
            "routes": [], "dns": {"nameservers": ["10.0.0.10"]}});
        let ours = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "lxc1"}, {"name": "eth0"}],
            "ips": [{"address": "10.0.1.5/32", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}], "dns": {}});
        let m = merge_prev(&prev, ours);
        assert_eq!(m["interfaces"].as_array().unwrap().len(), 3);
        assert_eq!(m["ips"][1]["interface"], 2);
        assert_eq!(m["interfaces"][2]["name"], "eth0");
        assert_eq!(m["routes"].as_array().unwrap().len(), 1);
        assert_eq!(m["dns"]["nameservers"][0], "10.0.0.10");

        let mut ours_named = m.clone();
        ours_named["interfaces"][2]["sandbox"] = "/run/netns/x".into();
        let conf = NetConf::parse(
            json!({"cniVersion": "1.0.0", "name": "n", "prevResult": ours_named})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(prev_ip(&conf, "eth0"), Some(Ipv4Addr::new(10, 0, 1, 5)));
        assert_eq!(prev_ip(&conf, "eth1"), None);
    }

    #[test]
    fn host_veth_name_is_stable_and_short() {
        let n = host_veth_name("abc");
        assert_eq!(n, "lxcba7816bf8f0");
        assert_eq!(n.len(), 14);
        assert_ne!(host_veth_name("abd"), n);
    }
}
