//! podfwd's route tables.
//!
//! Everything a worker needs to decide where a frame goes lives in one immutable
//! [`Snapshot`]: the PodCIDR longest-prefix-match table ([`Lpm`]), the local endpoints,
//! the remote nodes with their precomputed adjacencies (per next hop — several for a
//! multipath route — the 50-byte VXLAN outer header for tunnel mode and the MAC for
//! native mode) and the ports of the worker.
//! The control thread builds a new snapshot on every change and publishes it whole;
//! workers only ever read one.
#![forbid(unsafe_code)]

pub mod hops;
pub mod lpm;
pub mod snapshot;

pub use hops::{hop_slot, NextHop, NextHops, ResolvedHop, HOP_SLOTS, MAX_NEXT_HOPS};
pub use lpm::{Lpm, LpmError};
pub use snapshot::{
    Endpoint, LocalNode, Mode, Node, OuterHeader, PortId, PortInfo, PortRole, RouteError, Snapshot,
    SnapshotBuilder, Target, OUTER_LEN,
};
