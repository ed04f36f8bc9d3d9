//! `podfwd`: the per-node dataplane binary.
//!
//! `podfwd check --config FILE` validates a config and prints the route snapshot the
//! dataplane builds from it;
//! `podfwd run --config FILE` runs the dataplane; `podfwd status` reads a running one
//! over its (read-only) metrics listener; `podfwd reload` and `podfwd endpoint
//! add|del|list` change it over its root-only control socket.
#![forbid(unsafe_code)]

mod caps;
mod control;
mod ctl;
mod http;
mod ifaces;
mod metrics;
mod neigh;
mod notify;
mod status;
mod views;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use podfwd::{stats, worker};
use podfwd_api as api;
use podfwd_config::Config;

use crate::ifaces::IfaceInfo;
use crate::neigh::NeighTable;

/// A per-node userspace packet-forwarding dataplane for pod networks, on AF_XDP.
#[derive(Debug, Parser)]
#[command(name = "podfwd", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Validate a node config and print the route snapshot `run` would build from it.
    ///
    /// Touches nothing and reads no interface or neighbour table: ports show the
    /// placeholder MAC 00:00:00:00:00:00 and MTU 1500, and neighbour MACs "unresolved".
    Check {
        /// The node's YAML config.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the dataplane in this network namespace until SIGTERM/SIGINT.
    Run {
        /// The node's YAML config.
        #[arg(long, short)]
        config: PathBuf,
        /// Log level or env_logger filter (error, warn, info, debug, trace, or e.g.
        /// `podfwd=debug,bpf=info`); overrides PODFWD_LOG. Default: info.
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
    },
    /// Show what a running podfwd is doing.
    Status {
        /// Address of its metrics listener.
        #[arg(long, default_value = "127.0.0.1:9475")]
        addr: String,
        /// Print JSON instead of the human summary.
        #[arg(long)]
        json: bool,
        /// Sample twice this many seconds apart and show rates (pps, bit/s). Default 1
        /// for the human summary, 0 (one sample, no rates) with --json.
        #[arg(long, value_name = "SECONDS")]
        interval: Option<f64>,
    },
    /// Ask a running podfwd to re-read its config (the same as SIGHUP, but says the result).
    Reload {
        #[command(flatten)]
        target: Target,
    },
    /// Add, remove or list the pods (endpoints) a running podfwd serves, live.
    Endpoint {
        #[command(subcommand)]
        op: EndpointCmd,
        #[command(flatten)]
        target: Target,
    },
}

/// Which running podfwd a control command talks to.
#[derive(Debug, clap::Args)]
struct Target {
    /// Its control socket (default: control.socket of --config, else
    /// /run/podfwd/podfwd.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Its config file, to find the control socket in.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum EndpointCmd {
    /// Serve the pod IP behind a host-side interface (the XDP program is attached to
    /// it and every worker gets a socket for it, without a restart).
    Add {
        /// The pod's IP, inside this node's PodCIDR.
        ip: std::net::Ipv4Addr,
        /// The host side of the pod's veth.
        interface: String,
        /// The container it belongs to, shown by `list`.
        #[arg(long)]
        container_id: Option<String>,
    },
    /// Stop serving a pod, named by its interface or IP.
    Del {
        /// Interface name or pod IP.
        name: String,
    },
    /// The endpoints served, from the config and added live.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().filter_or("PODFWD_LOG", "info"));
    if let Cmd::Run {
        log_level: Some(level),
        ..
    } = &cli.cmd
    {
        logger.parse_filters(level);
    }
    logger.format_timestamp_millis().init();
    match cli.cmd {
        Cmd::Check { config } => check_cmd(&config),
        Cmd::Run { config, .. } => match control::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(match e {
                    control::RunError::Config(_) => 2,
                    _ => 1,
                })
            }
        },
        Cmd::Status {
            addr,
            json,
            interval,
        } => status_cmd(
            &addr,
            json,
            interval.unwrap_or(if json { 0.0 } else { 1.0 }),
        ),
        Cmd::Reload { target } => control_cmd(&target, &api::Request::Reload, false),
        Cmd::Endpoint { op, target } => {
            let (req, json) = match op {
                EndpointCmd::Add {
                    ip,
                    interface,
                    container_id,
                } => (
                    api::Request::EndpointAdd {
                        ip,
                        interface,
                        container_id,
                    },
                    false,
                ),
                EndpointCmd::Del { name } => (
                    match name.parse() {
                        Ok(ip) => api::Request::EndpointDel {
                            ip: Some(ip),
                            interface: None,
                        },
                        Err(_) => api::Request::EndpointDel {
                            ip: None,
                            interface: Some(name),
                        },
                    },
                    false,
                ),
                EndpointCmd::List { json } => (api::Request::EndpointList, json),
            };
            control_cmd(&target, &req, json)
        }
    }
}

/// MTU `check` gives every port, since it reads no interface.
const CHECK_MTU: u16 = 1500;

/// The snapshot [`control::build_snapshot`] makes of `cfg` when no interface or
/// neighbour has been read: ports with MAC 00:00:00:00:00:00 and MTU 1500, no neighbours.
fn check_snapshot(cfg: &Config) -> Result<route::Snapshot, route::RouteError> {
    let ports: Vec<Option<control::Port>> = control::port_names(cfg)
        .into_iter()
        .map(|(name, role)| {
            let info = IfaceInfo {
                name,
                ifindex: 0,
                mac: [0; 6],
                mtu: CHECK_MTU,
                up: false,
            };
            Some(control::Port::new(role, info))
        })
        .collect();
    let endpoints = control::config_endpoints(cfg);
    // Next hops come from the FIB at run time (and hybrid mode decides per node from
    // them); `check` shows every node as on-link (native), its own next hop.
    control::build_snapshot(
        0,
        cfg,
        &endpoints,
        &ports,
        &NeighTable::new(),
        &control::NodeRoutes::default(),
    )
}

/// `podfwd check`'s report: [`check_snapshot`] described, then the config's
/// per-process settings, which no table holds.
fn check_report(cfg: &Config) -> Result<String, route::RouteError> {
    let snap = check_snapshot(cfg)?;
    let mut s = format!("config {}: OK\n{}", cfg.source, snap.describe());
    let workers = match &cfg.workers.cpus {
        Some(cpus) => format!(
            "{} pinned to CPUs {}",
            cfg.workers.count,
            cpus.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => format!("{} (not pinned)", cfg.workers.count),
    };
    let umem_bytes = u64::from(cfg.umem.frames) * u64::from(cfg.umem.frame_size);
    s += &format!(
        "workers: {workers}\numem: {} frames x {} B = {} MiB per worker\nmetrics: http://{}/metrics\n",
        cfg.umem.frames,
        cfg.umem.frame_size,
        umem_bytes >> 20,
        cfg.metrics.listen
    );
    s +=
        "(check reads no interface: MACs and MTUs above are placeholders, neighbours unresolved)\n";
    Ok(s)
}

/// `podfwd check`: the snapshot the dataplane would build, or every config error.
fn check_cmd(config: &std::path::Path) -> ExitCode {
    match podfwd_config::Config::load_all(config) {
        Ok(cfg) => match check_report(&cfg) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            ExitCode::from(2)
        }
    }
}

/// One request on the control socket; prints what was done, or the endpoint list.
fn control_cmd(target: &Target, req: &api::Request, json: bool) -> ExitCode {
    let answer = ctl::socket_path(target.socket.clone(), target.config.as_deref())
        .and_then(|path| ctl::request(&path, req));
    match answer {
        Ok(r) if r.ok => {
            if let Some(eps) = &r.endpoints {
                if json {
                    println!("{}", serde_json::to_string(eps).unwrap_or_default());
                } else {
                    print!("{}", endpoint_table(eps));
                }
            } else if let Some(m) = &r.message {
                println!("{m}");
            }
            ExitCode::SUCCESS
        }
        Ok(r) => {
            let what = if matches!(req, api::Request::Reload) {
                "reload refused: "
            } else {
                ""
            };
            eprintln!(
                "error: {what}{}",
                r.error.unwrap_or_else(|| "refused".into())
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `podfwd endpoint list`'s table.
fn endpoint_table(eps: &[api::EndpointInfo]) -> String {
    let mut s = format!(
        "{:<16} {:<16} {:<7} {}\n",
        "IP", "INTERFACE", "ORIGIN", "CONTAINER"
    );
    for e in eps {
        let origin = match e.origin {
            api::Origin::Config => "config",
            api::Origin::Api => "api",
        };
        s.push_str(&format!(
            "{:<16} {:<16} {:<7} {}\n",
            e.ip.to_string(),
            e.interface,
            origin,
            e.container_id.as_deref().unwrap_or("-")
        ));
    }
    s
}

/// `podfwd status`: one /status sample, or two `interval` seconds apart with rates.
fn status_cmd(addr: &str, json: bool, interval: f64) -> ExitCode {
    let fetch = || -> Result<serde_json::Value, String> {
        match http::request(addr, "GET", "/status") {
            Ok((200, body)) => serde_json::from_str(&body)
                .map_err(|e| format!("bad status document from {addr}: {e}")),
            Ok((code, body)) => Err(format!("{addr} answered {code}: {body}")),
            Err(e) => Err(e),
        }
    };
    let result = fetch().and_then(|first| {
        if !(interval > 0.0 && interval.is_finite()) {
            return Ok(first);
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(interval.min(3600.0)));
        let mut second = fetch()?;
        if let Some(r) = status::rates(&first, &second) {
            second["rates"] = r;
        }
        Ok(second)
    });
    match result {
        Ok(doc) => {
            if json {
                println!("{doc}");
            } else {
                print!("{}", status::human(&doc));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use podfwd_config::Config;
    use route::Target;

    use super::{check_report, check_snapshot};

    fn example(name: &str) -> Config {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../config")
            .join(name);
        let mut c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        c.source = name.to_owned();
        c
    }

    #[test]
    fn check_tunnel_example() {
        assert_eq!(
            check_report(&example("node-a.tunnel.yaml")).unwrap(),
            "\
config node-a.tunnel.yaml: OK
mode: tunnel (VXLAN, VNI 1, UDP port 8472)
node node-a: underlay 198.18.0.1 on eth0, PodCIDR 10.0.1.0/24
cluster 10.0.0.0/16, pods' gateway 169.254.1.1
ports:
  0 eth0: uplink, MAC 00:00:00:00:00:00, MTU 1500
  1 lxc0: pod, MAC 00:00:00:00:00:00, MTU 1500
  2 lxc1: pod, MAC 00:00:00:00:00:00, MTU 1500
endpoints:
  10.0.1.2 on lxc0: MAC unresolved
  10.0.1.3 on lxc1: MAC unresolved
nodes:
  node-b 198.18.0.2, PodCIDR 10.0.2.0/24: next hop MAC unresolved
routes (longest prefix first):
  10.0.1.2/32 -> local pod on lxc0
  10.0.1.3/32 -> local pod on lxc1
  10.0.2.0/24 -> node node-b (VXLAN to 198.18.0.2)
  10.0.1.0/24 -> this node, no such pod: drop
workers: 1 (not pinned)
umem: 16384 frames x 4096 B = 64 MiB per worker
metrics: http://127.0.0.1:9475/metrics
(check reads no interface: MACs and MTUs above are placeholders, neighbours unresolved)
"
        );
    }

    #[test]
    fn check_native_pinned() {
        let text = "\
node: {name: node-b, ip: 198.18.0.2, uplink: eth0, pod_cidr: 10.0.2.0/24}
mode: native
cluster_cidr: 10.0.0.0/16
nodes:
  - {name: node-a, ip: 198.18.0.1, pod_cidr: 10.0.1.0/24}
workers: {count: 2, cpus: [0, 1]}
umem: {frames: 1024, frame_size: 2048}
";
        let c = Config::parse_with_cpus(text, "b.yaml", Some(&[0, 1])).unwrap();
        assert_eq!(
            check_report(&c).unwrap(),
            "\
config b.yaml: OK
mode: native (the underlay routes the PodCIDRs)
node node-b: underlay 198.18.0.2 on eth0, PodCIDR 10.0.2.0/24
cluster 10.0.0.0/16, pods' gateway 169.254.1.1
ports:
  0 eth0: uplink, MAC 00:00:00:00:00:00, MTU 1500
endpoints: none
nodes:
  node-a 198.18.0.1, PodCIDR 10.0.1.0/24: next hop MAC unresolved
routes (longest prefix first):
  10.0.1.0/24 -> node node-a (via uplink to 198.18.0.1)
  10.0.2.0/24 -> this node, no such pod: drop
workers: 2 pinned to CPUs 0,1
umem: 1024 frames x 2048 B = 2 MiB per worker
metrics: http://127.0.0.1:9475/metrics
(check reads no interface: MACs and MTUs above are placeholders, neighbours unresolved)
"
        );
    }

    /// Was config's `routes_longest_prefix_first`: now read off the dataplane's snapshot.
    #[test]
    fn example_routes_longest_prefix_first() {
        let snap = check_snapshot(&example("node-a.tunnel.yaml")).unwrap();
        let routes: Vec<(String, Target)> = snap
            .routes()
            .iter()
            .map(|(p, t)| (p.to_string(), *t))
            .collect();
        assert_eq!(
            routes,
            [
                ("10.0.1.2/32".to_owned(), Target::Local(0)),
                ("10.0.1.3/32".to_owned(), Target::Local(1)),
                ("10.0.2.0/24".to_owned(), Target::Remote(0)),
            ]
        );
    }
}
