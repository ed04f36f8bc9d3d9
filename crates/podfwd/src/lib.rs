//! The worker loop and its published counters, as a library: the `podfwd` binary runs
//! them, and `benches/worker.rs` drives the same loop over fake AF_XDP rings.
#![forbid(unsafe_code)]

pub mod chain;
pub mod sndbuf;
pub mod stats;
pub mod worker;
