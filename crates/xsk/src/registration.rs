//! The kernel's registration of a UMEM (`XDP_UMEM_REG`) and the sockets that share it
//! (`XDP_SHARED_UMEM`): the bind mode and need_wakeup setting the registering socket got,
//! which the kernel forces on every socket of the UMEM, and the fds of the live sockets
//! a new one can share through.
//!
//! Neither [`crate::umem`] nor [`crate::socket`] is needed here: a `Umem` owns its
//! `Registry`, a socket reads and updates it when it binds and when it is dropped.

use std::os::fd::RawFd;

/// How to bind, and (from [`XskSocket::bound_mode`](crate::XskSocket::bound_mode)) how
/// the socket was bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// `XDP_COPY`: works on every driver (the kernel copies frames in and out of the UMEM).
    Copy,
    /// `XDP_ZEROCOPY`: the driver DMAs into the UMEM; fails with EOPNOTSUPP if unsupported.
    ZeroCopy,
    /// No flag: the kernel tries zero-copy and falls back to copy.
    Auto,
}

impl std::fmt::Display for BindMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BindMode::Copy => "copy mode",
            BindMode::ZeroCopy => "zero-copy mode",
            BindMode::Auto => "zero-copy with fallback to copy",
        })
    }
}

/// Which live sockets share this UMEM's kernel registration, and the settings they
/// inherit from the socket that registered it.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Fds of live bound sockets on this UMEM; any of them can be the
    /// `sxdp_shared_umem_fd` of the next one.
    pub(crate) fds: Vec<RawFd>,
    /// Mode and need_wakeup of the registering socket; the kernel forces them on every
    /// socket that shares the UMEM.
    pub(crate) mode: Option<BindMode>,
    pub(crate) need_wakeup: bool,
    /// The registering socket bound with `XDP_USE_SG` (multi-buffer): the kernel gives
    /// it to every socket sharing the UMEM.
    pub(crate) multi_buffer: bool,
    /// A real socket was created on this UMEM (the kernel may access the area).
    pub(crate) real: bool,
    /// A fake socket (`xsk::testing`) was created on this UMEM. Never both: the fake
    /// kernel writes frames without ownership checks, which is only sound when no real
    /// kernel can be accessing the area.
    pub(crate) fake: bool,
}
