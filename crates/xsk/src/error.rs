//! [`XskError`]: what failed, the kernel's errno, and what to do about it.

use std::io;

/// Errors of the AF_XDP layer. Each message names the operation and object and, where
/// the errno has a usual cause, says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The configuration cannot work; nothing was asked of the kernel.
    #[error("invalid AF_XDP configuration: {0}")]
    Config(String),

    /// Mapping the UMEM or a ring failed.
    #[error("mapping the {what} ({len} bytes) failed: {source}{hint}", hint = hint_suffix(Op::Mmap, source))]
    Mmap {
        what: &'static str,
        len: usize,
        #[source]
        source: io::Error,
    },

    /// `socket(AF_XDP)` failed.
    #[error("creating an AF_XDP socket failed: {source}{hint}", hint = hint_suffix(Op::Socket, source))]
    Socket {
        #[source]
        source: io::Error,
    },

    /// A `setsockopt`/`getsockopt` on the XSK failed.
    #[error("{opt} on AF_XDP socket for ifindex {ifindex} queue {queue_id} failed: {source}{hint}",
        hint = hint_suffix(Op::SockOpt(opt), source))]
    SockOpt {
        opt: &'static str,
        ifindex: u32,
        queue_id: u32,
        #[source]
        source: io::Error,
    },

    /// `bind` failed.
    #[error("AF_XDP socket bind to ifindex {ifindex} queue {queue_id} ({mode}) failed: {source}{hint}",
        hint = hint_suffix(Op::Bind, source))]
    Bind {
        ifindex: u32,
        queue_id: u32,
        /// How it was asked to bind, e.g. "copy mode" or "shared UMEM with fd 5".
        mode: String,
        #[source]
        source: io::Error,
    },

    /// A wake-up syscall (`sendto` for TX, `recvfrom` for the fill ring) failed with an
    /// errno that is not a transient condition.
    #[error("{op} on AF_XDP socket fd {fd} failed: {source}{hint}", hint = hint_suffix(Op::Wakeup, source))]
    Wakeup {
        op: &'static str,
        fd: i32,
        #[source]
        source: io::Error,
    },
}

#[derive(Clone, Copy)]
enum Op {
    Mmap,
    Socket,
    SockOpt(&'static str),
    Bind,
    Wakeup,
}

fn hint_suffix(op: Op, err: &io::Error) -> String {
    match hint(op, err.raw_os_error().unwrap_or(0)) {
        Some(h) => format!(" — {h}"),
        None => String::new(),
    }
}

const MEMLOCK: &str = "the UMEM cannot be pinned: raise the locked-memory limit \
    (`ulimit -l unlimited`, systemd LimitMEMLOCK=infinity) or the cgroup memory limit, \
    or configure fewer/smaller frames";

fn hint(op: Op, errno: i32) -> Option<&'static str> {
    use libc::*;
    Some(match (op, errno) {
        (_, EPERM) | (_, EACCES) => {
            "AF_XDP needs CAP_NET_RAW (and CAP_NET_ADMIN for busy-poll budgets): run as root or grant the capabilities"
        }
        (Op::Socket, EAFNOSUPPORT) => "this kernel has no AF_XDP support (needs CONFIG_XDP_SOCKETS=y)",
        (Op::Socket, EMFILE) | (Op::Socket, ENFILE) => "out of file descriptors: raise RLIMIT_NOFILE",
        (Op::Mmap, ENOMEM) => "out of memory or address space for the mapping",
        (Op::SockOpt("XDP_UMEM_REG"), ENOBUFS) | (Op::SockOpt("XDP_UMEM_REG"), ENOMEM) => MEMLOCK,
        (Op::SockOpt("XDP_UMEM_REG"), EINVAL) => {
            "the kernel rejected the UMEM geometry: frame size must be a power of two from 2048 to the page size, \
             headroom must leave room for the kernel's 256-byte XDP_PACKET_HEADROOM and a frame, and the area must be page aligned"
        }
        (Op::SockOpt("XDP_UMEM_REG"), EBUSY) => "a UMEM is already registered on this socket",
        (Op::SockOpt(_), EINVAL) => "ring sizes must be non-zero powers of two",
        (Op::SockOpt(_), EBUSY) => "the socket is already bound or the ring is already set up",
        (Op::SockOpt(_), ENOMEM) => "out of kernel memory for the ring",
        (Op::SockOpt(_), EOPNOTSUPP) | (Op::SockOpt(_), ENOPROTOOPT) => {
            "this kernel does not know that socket option (too old?)"
        }
        (Op::Bind, ENODEV) => "no interface with that ifindex in this network namespace",
        (Op::Bind, EBUSY) => {
            "another AF_XDP socket is already bound to that interface queue (a stale podfwd? check `ss -A xdp`), \
             or one was closed moments ago (the kernel frees the queue asynchronously: retry after a few milliseconds), \
             or the interface is being reconfigured"
        }
        (Op::Bind, EOPNOTSUPP) => {
            "the driver has no zero-copy AF_XDP support for this interface (veth never has): bind with BindMode::Copy or BindMode::Auto"
        }
        (Op::Bind, EINVAL) => {
            "the queue id is out of range for the interface (see `ethtool -l`), or no RX/TX ring was configured, \
             or a shared-UMEM socket was bound to the same interface and queue as the socket owning the UMEM \
             (each interface+queue needs its own socket with its own fill/completion rings)"
        }
        (Op::Bind, EBADF) | (Op::Bind, ENOTSOCK) => {
            "the shared-UMEM fd is not a bound AF_XDP socket (was the first socket on this UMEM closed?)"
        }
        (Op::Bind, ENOMEM) | (Op::Bind, ENOBUFS) => MEMLOCK,
        (Op::Bind, ENETDOWN) => "the interface is down: set it up first",
        (Op::Wakeup, ENXIO) => "the socket is not bound to an interface",
        (Op::Wakeup, EOVERFLOW) => "a TX descriptor is longer than the interface MTU allows",
        (Op::Wakeup, EFAULT) => "a TX descriptor points outside the UMEM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_messages_say_what_to_do() {
        let e = XskError::Bind {
            ifindex: 7,
            queue_id: 0,
            mode: "copy mode".into(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        };
        let s = e.to_string();
        assert!(
            s.starts_with("AF_XDP socket bind to ifindex 7 queue 0 (copy mode) failed:"),
            "{s}"
        );
        assert!(s.contains("another AF_XDP socket is already bound"), "{s}");

        let e = XskError::SockOpt {
            opt: "XDP_UMEM_REG",
            ifindex: 3,
            queue_id: 1,
            source: io::Error::from_raw_os_error(libc::ENOBUFS),
        };
        assert!(e.to_string().contains("ulimit -l unlimited"), "{e}");

        let e = XskError::Bind {
            ifindex: 3,
            queue_id: 0,
            mode: "zero-copy mode".into(),
            source: io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        };
        assert!(e.to_string().contains("BindMode::Copy"), "{e}");
    }
}
