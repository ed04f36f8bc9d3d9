//! The CNI plugin `podfwd` (binary `podfwd-cni`): see docs/cni.md.
#![forbid(unsafe_code)]

pub use podfwd_api as api;
pub mod client;
pub mod config;
pub mod error;
pub mod ethtool;
pub mod ipam;
pub mod netns;
pub mod nl;
pub mod plugin;
