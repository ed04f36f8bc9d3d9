//! Endpoints added and removed at runtime, and the control API's requests.
//!
//! Adding one: check it (inside this node's PodCIDR, not served yet, interface there,
//! room in the UMEM and the XDP program's interface table), attach the steering program
//! to its interface, give every worker a socket for it in the lowest vacant port slot
//! and put the sockets into the XSKMAP, then publish the snapshot that routes to it.
//! Removing one: publish the snapshot without it first (its frames are `no_route` from
//! then on, none goes to the port), detach the program (which also takes the sockets
//! out of the XSKMAP), then every worker closes its socket and takes back its frames;
//! the slot becomes vacant. Each change is written to the state file, so that a podfwd
//! restarted on the node serves the same pods.

use std::net::Ipv4Addr;

use route::PortRole;

use super::{port_of, port_view, Control, Host, Port};
use crate::views::PortView;
use podfwd_api::{EndpointInfo, Origin, Request, Response};

impl<H: Host> Control<H> {
    /// Answer one control API request.
    pub fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Ping => Response {
                pod_mtu: self.pod_mtu(),
                ..Response::done(format!(
                    "podfwd on node {} is running ({} mode)",
                    self.cfg.node.name, self.cfg.mode
                ))
            },
            Request::Reload => Response::from_result(self.reload()),
            Request::EndpointAdd {
                ip,
                interface,
                container_id,
            } => Response::from_result(self.add_endpoint(ip, &interface, container_id)),
            Request::EndpointDel { ip, interface } => {
                Response::from_result(self.del_endpoint(ip, interface.as_deref()))
            }
            Request::EndpointList => Response {
                ok: true,
                endpoints: Some(self.endpoints.clone()),
                ..Response::default()
            },
        }
    }

    /// The MTU pods should get: the uplink's, less the 50-byte VXLAN overhead in tunnel
    /// mode.
    fn pod_mtu(&self) -> Option<u32> {
        let up = self
            .ports
            .iter()
            .flatten()
            .find(|p| p.role == PortRole::Uplink)?;
        let overhead = match self.cfg.mode {
            // Hybrid: pods may talk to nodes behind a router, through VXLAN.
            route::Mode::Tunnel | route::Mode::Hybrid => {
                u32::try_from(route::OUTER_LEN).unwrap_or(u32::MAX)
            }
            route::Mode::Native => 0,
        };
        Some(u32::from(up.info.mtu).saturating_sub(overhead))
    }

    /// Serve the pod `ip` behind `interface`, live.
    ///
    /// # Errors
    /// Why not, in words; nothing is left attached or open then.
    pub fn add_endpoint(
        &mut self,
        ip: Ipv4Addr,
        interface: &str,
        container_id: Option<String>,
    ) -> Result<String, String> {
        if let Some(done) = self.check_new_endpoint(ip, interface)? {
            return Ok(done);
        }
        // The interface may be seconds old; other changes drained here are applied by
        // the next batch.
        if self.host.sync() {
            self.batch.changed(std::time::Instant::now());
        }
        let info = self
            .host
            .lookup(interface)
            .map_err(|e| format!("endpoint {ip}: {e}"))?;
        let slot = self
            .ports
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.ports.len());
        let mode = self
            .host
            .attach(interface, PortRole::Pod)
            .map_err(|e| format!("endpoint {ip} on {interface}: attaching XDP: {e}"))?;
        if let Err(e) = self.open_sockets(slot, &info, crate::worker::WorkerRequest::Open) {
            self.close_sockets(slot);
            let _ = self.host.detach(interface);
            return Err(format!("endpoint {ip} on {interface}: {e}"));
        }
        let port = Port::new(PortRole::Pod, info);
        let ep = EndpointInfo {
            ip,
            interface: interface.to_owned(),
            container_id,
            origin: Origin::Api,
        };
        self.endpoints.push(ep);
        let view = port_view(&self.endpoints, &port, mode);
        if slot == self.ports.len() {
            self.ports.push(Some(port));
            self.view().ports.push(view);
        } else {
            self.ports[slot] = Some(port);
            self.view().ports[slot] = view;
        }
        self.persist();
        self.host.resolve(ip);
        self.publish_routes(None);
        log::info!("endpoint {ip} on {interface} added (port {slot})");
        Ok(format!("endpoint {ip} on {interface} added"))
    }

    /// Refuse what cannot be added; `Some` when exactly this endpoint is served already
    /// (an add repeated by a runtime is not an error).
    fn check_new_endpoint(&self, ip: Ipv4Addr, interface: &str) -> Result<Option<String>, String> {
        let pod_cidr = self.cfg.node.pod_cidr;
        if !pod_cidr.contains(&ip) || ip == pod_cidr.network() || ip == pod_cidr.broadcast() {
            return Err(format!(
                "endpoint {ip}: not a pod address of this node's PodCIDR {pod_cidr}"
            ));
        }
        if interface.is_empty() || interface.len() > 15 || interface.contains('/') {
            return Err(format!(
                "endpoint {ip}: `{interface}` is not an interface name"
            ));
        }
        if let Some(e) = self
            .endpoints
            .iter()
            .find(|e| e.ip == ip || e.interface == interface)
        {
            if e.ip == ip && e.interface == interface {
                return Ok(Some(format!(
                    "endpoint {ip} on {interface} is already served"
                )));
            }
            return Err(format!(
                "endpoint {ip} on {interface}: {} on {} is served already; remove it first",
                e.ip, e.interface
            ));
        }
        if interface == self.cfg.node.uplink {
            return Err(format!("endpoint {ip}: {interface} is the uplink"));
        }
        let live = self
            .endpoints
            .iter()
            .filter(|e| e.origin == Origin::Api)
            .count();
        let frames = self.cfg.umem.frames as usize;
        let need = crate::worker::umem_frames_needed(self.fill * self.start_ports, live + 1);
        if need > frames {
            return Err(format!(
                "endpoint {ip}: umem.frames {frames} is too few for {} more pods ({} frames each, besides {} for the {} interfaces podfwd started with); raise umem.frames in {} and restart podfwd",
                live + 1,
                crate::worker::FRAMES_PER_POD,
                self.fill * self.start_ports,
                self.start_ports,
                self.cfg.source
            ));
        }
        if self.ports.iter().all(Option::is_some) && self.ports.len() >= bpf::MAX_SLOTS as usize {
            return Err(format!(
                "endpoint {ip}: the XDP program's interface table is full ({} interfaces)",
                bpf::MAX_SLOTS
            ));
        }
        Ok(None)
    }

    /// Stop serving the endpoint named by `ip` and/or `interface`, live. One that is
    /// not served is not an error (a runtime repeats deletes).
    ///
    /// # Errors
    /// It comes from the config file, or the two names do not match.
    pub fn del_endpoint(
        &mut self,
        ip: Option<Ipv4Addr>,
        interface: Option<&str>,
    ) -> Result<String, String> {
        let what = match (ip, interface) {
            (Some(ip), Some(i)) => format!("{ip} on {i}"),
            (Some(ip), None) => ip.to_string(),
            (None, Some(i)) => i.to_owned(),
            (None, None) => return Err("endpoint_del: give the pod's ip, interface or both".into()),
        };
        let found = self.endpoints.iter().position(|e| {
            ip.is_none_or(|ip| e.ip == ip) && interface.is_none_or(|i| e.interface == i)
        });
        let Some(i) = found else {
            if self
                .endpoints
                .iter()
                .any(|e| Some(e.ip) == ip || Some(e.interface.as_str()) == interface)
            {
                return Err(format!(
                    "endpoint {what}: the IP and the interface belong to different endpoints"
                ));
            }
            return Ok(format!("endpoint {what} was not served"));
        };
        if self.endpoints[i].origin == Origin::Config {
            return Err(format!(
                "endpoint {what} comes from {}: remove it there and restart podfwd",
                self.cfg.source
            ));
        }
        let ep = self.endpoints.remove(i);
        // Routes first: from the next frame on nothing is sent to the port.
        self.publish_routes(None);
        if let Some(slot) = port_of(&self.ports, &ep.interface) {
            if let Err(e) = self.host.detach(&ep.interface) {
                log::warn!("endpoint {} on {}: detach: {e}", ep.ip, ep.interface);
            }
            self.close_sockets(slot);
            self.ports[slot] = None;
            self.view().ports[slot] = PortView::vacant();
            while self.ports.last().is_some_and(Option::is_none) {
                self.ports.pop();
                self.view().ports.pop();
            }
        }
        self.neigh.retain(|(_, dev), _| *dev != ep.interface);
        self.persist();
        self.publish_routes(None);
        log::info!("endpoint {} on {} removed", ep.ip, ep.interface);
        Ok(format!("endpoint {} on {} removed", ep.ip, ep.interface))
    }

    /// Write the API's endpoints to the state file (logged, not fatal, on failure).
    fn persist(&self) {
        let api: Vec<&EndpointInfo> = self
            .endpoints
            .iter()
            .filter(|e| e.origin == Origin::Api)
            .collect();
        let text = serde_json::to_string_pretty(&api).unwrap_or_else(|_| "[]".into());
        let tmp = self.state_file.with_extension("json.tmp");
        let res = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.state_file));
        if let Err(e) = res {
            log::error!(
                "cannot write the endpoint state file {}: {e} (endpoints added over the API will not survive a restart)",
                self.state_file.display()
            );
        }
    }
}

/// The endpoints a previous podfwd added over the API, from the state file (none if it
/// does not exist; a broken file is logged and ignored).
#[must_use]
pub fn load_state(path: &std::path::Path) -> Vec<EndpointInfo> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    match serde_json::from_str::<Vec<EndpointInfo>>(&text) {
        Ok(v) => v
            .into_iter()
            .map(|mut e| {
                e.origin = Origin::Api;
                e
            })
            .collect(),
        Err(e) => {
            log::error!("endpoint state file {}: {e}; ignored", path.display());
            Vec::new()
        }
    }
}
