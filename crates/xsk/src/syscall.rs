//! Thin wrappers over the system calls AF_XDP needs, returning `io::Result`.
//! Error-to-advice mapping lives in [`crate::error`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Once;

use crate::if_xdp::{self, sockaddr_xdp};

/// Plain-old-data that the kernel may read or write byte for byte as a socket option.
///
/// # Safety
/// Implementors must be `#[repr(C)]` (or primitive) with every bit pattern valid.
pub(crate) unsafe trait Pod: Copy + Default {}
// SAFETY: primitive integer, every bit pattern is valid.
unsafe impl Pod for libc::c_int {}
// SAFETY: repr(C) struct of u32 fields.
unsafe impl Pod for if_xdp::xdp_options {}
// SAFETY: repr(C) struct of u64 fields.
unsafe impl Pod for if_xdp::xdp_mmap_offsets {}
// SAFETY: repr(C) struct of u64/u32 fields.
unsafe impl Pod for if_xdp::xdp_umem_reg {}
// SAFETY: repr(C) struct of u64 fields.
unsafe impl Pod for if_xdp::xdp_statistics {}

/// `socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0)`.
pub(crate) fn xdp_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(if_xdp::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn setsockopt<T: Pod>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of exactly the length passed; the kernel only
    // reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            socklen_of::<T>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Returns the option and the length the kernel actually wrote (older kernels write
/// shorter versions of some structs).
pub(crate) fn getsockopt<T: Pod>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<(T, usize)> {
    let mut val = T::default();
    let mut len = socklen_of::<T>();
    // SAFETY: the kernel writes at most `len` bytes into `val`, a live `T`; `T: Pod`
    // makes any bytes it writes a valid `T`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut val as *mut T).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((val, len as usize))
}

pub(crate) fn bind_xdp(fd: &impl AsRawFd, addr: &sockaddr_xdp) -> io::Result<()> {
    // SAFETY: `addr` is a live sockaddr_xdp and its exact size is passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const sockaddr_xdp).cast(),
            socklen_of::<sockaddr_xdp>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`: asks the kernel to process the TX ring.
pub(crate) fn sendto_kick(fd: RawFd) -> io::Result<()> {
    // SAFETY: zero-length send with null buffer and address, which the kernel accepts
    // for AF_XDP; no memory is read or written through the pointers.
    let rc = unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)`: wakes the driver to refill RX.
pub(crate) fn recvfrom_wakeup(fd: RawFd) -> io::Result<()> {
    // SAFETY: zero-length receive with null buffer and address; nothing is written.
    let rc = unsafe {
        libc::recvfrom(
            fd,
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raises RLIMIT_MEMLOCK to infinity once per process, best effort. `XDP_UMEM_REG`
/// charges the UMEM to the user's RLIMIT_MEMLOCK unless the caller has CAP_IPC_LOCK
/// (net/xdp/xdp_umem.c `xdp_umem_account_pages`, still so in 6.18: unlike BPF maps it is
/// not memcg-accounted), so failure is only logged: with CAP_IPC_LOCK it does not matter.
pub(crate) fn raise_memlock_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let lim = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: `lim` is a valid rlimit that the kernel only reads.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) };
        if rc != 0 {
            log::debug!(
                "raising RLIMIT_MEMLOCK failed ({}); fine with CAP_IPC_LOCK, else the UMEM must fit the limit",
                io::Error::last_os_error()
            );
        }
    });
}

/// `size_of::<T>()` as the `socklen_t` of a socket call. The types passed are kernel ABI
/// structs of a few dozen bytes; the size is checked against `socklen_t` at compile time.
// The cast cannot truncate: the const assertion bounds it.
#[allow(clippy::cast_possible_truncation)]
fn socklen_of<T>() -> libc::socklen_t {
    const { assert!(std::mem::size_of::<T>() <= libc::socklen_t::MAX as usize) };
    std::mem::size_of::<T>() as libc::socklen_t
}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // sysconf returns -1 on failure; fall back to the usual 4 KiB.
    usize::try_from(v).ok().filter(|&v| v > 0).unwrap_or(4096)
}
