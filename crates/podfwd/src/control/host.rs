//! The node's kernel as the control thread sees it: interfaces, the neighbour table and
//! the XDP steering program. [`Host`] is what [`super::Control`] talks to; [`Kernel`] is
//! the real one (sysfs, /proc/net/arp, bpf_links), and the control tests use a fake.

use std::net::Ipv4Addr;
use std::os::fd::RawFd;

use bpf::{Role, Steering, SteeringConfig};
use route::PortRole;

use crate::ifaces::{self, IfaceError, IfaceInfo};
use crate::neigh::{self, NeighTable};

/// What the control thread asks of the kernel after start-up.
pub trait Host {
    /// Interface facts now.
    ///
    /// # Errors
    /// The interface does not exist (any more).
    fn lookup(&self, name: &str) -> Result<IfaceInfo, IfaceError>;
    /// The neighbour table now.
    fn neighbours(&mut self) -> NeighTable;
    /// Make the kernel resolve (or re-validate) `ip`'s MAC.
    fn resolve(&mut self, ip: Ipv4Addr);
    /// Attach the steering program to `name`; returns the XDP mode obtained.
    ///
    /// # Errors
    /// Why it could not be attached.
    fn attach(&mut self, name: &str, role: PortRole) -> Result<String, String>;
    /// Put a socket into the XSKMAP for `name`'s `queue`.
    ///
    /// # Errors
    /// Why it could not be registered.
    fn register_xsk(&mut self, name: &str, queue: u32, fd: RawFd) -> Result<(), String>;
    /// Change what the program steers.
    ///
    /// # Errors
    /// Why the maps could not be updated.
    fn update_steering(&mut self, cfg: &SteeringConfig) -> Result<(), String>;
    /// The program's steering counters.
    fn steering_stats(&self) -> Vec<(String, u64)>;
    /// Detach the program from `name`.
    ///
    /// # Errors
    /// Why it could not be detached.
    fn detach(&mut self, name: &str) -> Result<(), String>;
}

/// The real node: sysfs, the kernel's neighbour table, the loaded steering program.
#[derive(Debug)]
pub struct Kernel {
    /// The loaded program and its links.
    pub steering: Steering,
}

/// The steering program's role for a port role.
#[must_use]
pub fn bpf_role(role: PortRole) -> Role {
    match role {
        PortRole::Uplink => Role::Uplink,
        PortRole::Pod => Role::Pod,
    }
}

impl Host for Kernel {
    fn lookup(&self, name: &str) -> Result<IfaceInfo, IfaceError> {
        ifaces::lookup(name)
    }
    fn neighbours(&mut self) -> NeighTable {
        neigh::read()
    }
    fn resolve(&mut self, ip: Ipv4Addr) {
        neigh::trigger(ip);
    }
    fn attach(&mut self, name: &str, role: PortRole) -> Result<String, String> {
        self.steering
            .attach(name, bpf_role(role))
            .map(|m| format!("{m:?}").to_lowercase())
            .map_err(|e| e.to_string())
    }
    fn register_xsk(&mut self, name: &str, queue: u32, fd: RawFd) -> Result<(), String> {
        self.steering
            .register_xsk(name, queue, fd)
            .map_err(|e| e.to_string())
    }
    fn update_steering(&mut self, cfg: &SteeringConfig) -> Result<(), String> {
        self.steering.update_config(cfg).map_err(|e| e.to_string())
    }
    fn steering_stats(&self) -> Vec<(String, u64)> {
        self.steering.stats().map_or_else(
            |_| Vec::new(),
            |s| s.iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        )
    }
    fn detach(&mut self, name: &str) -> Result<(), String> {
        self.steering.detach(name).map_err(|e| e.to_string())
    }
}
