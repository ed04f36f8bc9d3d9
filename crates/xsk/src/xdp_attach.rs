//! Attaching XDP programs: the libbpf / libc calls that libbpf-rs 0.27 does not
//! wrap in the shape podfwd needs. They live here, not in the `bpf` crate, so that
//! all of the project's `unsafe` stays in this one crate.
//!
//! - `bpf_link_create` with XDP mode flags: `Program::attach_xdp` creates a
//!   link without flags, so the kernel picks the mode and a generic (SKB)
//!   fallback link is impossible through it.
//! - `bpf_xdp_query`: `Xdp::query` needs a program fd only to exist; the free
//!   function `xdp_prog_id` has none.
//! - `bpf_xdp_detach`: `Xdp::detach` works, but libbpf-rs's error kinds have
//!   no EBUSY, which is how the kernel says "that program is held by a link".
//! - `if_nametoindex`: resolves names in the caller's network namespace (an
//!   ioctl on a socket), unlike /sys, which `ip netns exec` remounts.
use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;

/// Which program ids the kernel reports on an interface, per XDP mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpState {
    /// Program id attached in native (driver) mode, 0 if none.
    pub drv: u32,
    /// Program id attached in generic (SKB) mode, 0 if none.
    pub skb: u32,
    /// Program id offloaded to hardware, 0 if none.
    pub hw: u32,
}

impl XdpState {
    /// Any attached program, native first.
    #[must_use]
    pub fn any(&self) -> Option<u32> {
        [self.drv, self.skb, self.hw]
            .into_iter()
            .find(|&id| id != 0)
    }
}

fn ifindex_c(ifindex: u32) -> io::Result<c_int> {
    c_int::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))
}

/// The index of interface `name` in the caller's network namespace.
#[must_use]
pub fn if_nametoindex(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call;
    // if_nametoindex(3) only reads it.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// Which programs are attached to `ifindex`, per mode.
///
/// # Errors
/// The kernel's error (e.g. `ENODEV`).
pub fn xdp_query(ifindex: u32) -> io::Result<XdpState> {
    let ifindex = ifindex_c(ifindex)?;
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_query_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    // SAFETY: `opts` is an initialised bpf_xdp_query_opts whose `sz` is its
    // own size, exclusively borrowed for the call; libbpf writes only inside it.
    let ret = unsafe { libbpf_sys::bpf_xdp_query(ifindex, 0, &mut opts) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret));
    }
    Ok(XdpState {
        drv: opts.drv_prog_id,
        skb: opts.skb_prog_id,
        hw: opts.hw_prog_id,
    })
}

/// Attach `prog` to `ifindex` through a bpf_link with XDP mode `flags`
/// (`XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`). Closing the returned fd
/// detaches the program (the link is never pinned).
///
/// # Errors
/// The kernel's error (`EBUSY`: another program is attached; `EOPNOTSUPP`: mode unsupported).
pub fn xdp_link_create(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let ifindex = ifindex_c(ifindex)?;
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: size_of::<libbpf_sys::bpf_link_create_opts>() as libbpf_sys::size_t,
        flags,
        ..Default::default()
    };
    // SAFETY: `prog` is a live program fd for the duration of the call and
    // `opts` is an initialised, correctly sized options struct that libbpf
    // only reads.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(prog.as_raw_fd(), ifindex, libbpf_sys::BPF_XDP, &opts)
    };
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a non-negative return is a new link fd (O_CLOEXEC, set by the
    // kernel) that nothing else in the process owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Detach whatever program is attached to `ifindex` through netlink in the
/// mode selected by `flags`. The kernel refuses (EBUSY) when that program is
/// held by a bpf_link.
///
/// # Errors
/// The kernel's error (`EBUSY` when the program is held by a link).
pub fn xdp_detach(ifindex: u32, flags: u32) -> io::Result<()> {
    let ifindex = ifindex_c(ifindex)?;
    // SAFETY: libbpf accepts NULL options (OPTS_VALID(NULL) holds) and takes
    // no pointers otherwise.
    let ret = unsafe { libbpf_sys::bpf_xdp_detach(ifindex, flags, std::ptr::null()) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret));
    }
    Ok(())
}
