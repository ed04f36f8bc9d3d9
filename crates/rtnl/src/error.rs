//! The one error type of this crate: what failed, and what to do about it.

use std::io;
use std::net::Ipv4Addr;

/// Everything an rtnetlink call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket call failed (socket, bind, setsockopt, send, recv, poll).
    #[error("rtnetlink socket: {what} failed: {source} (is this a Linux network namespace with NETLINK_ROUTE, and are file descriptors left?)")]
    Socket {
        /// The call that failed.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel answered a request with an error (`NLMSG_ERROR` with a negative code).
    #[error("rtnetlink: the kernel refused {op}: {source}{}{}", ext_ack.as_ref().map(|m| format!(" ({m})")).unwrap_or_default(), hint(source))]
    Kernel {
        /// The request, e.g. "RTM_NEWNEIGH 198.18.1.254 dev 3".
        op: String,
        /// The errno the kernel returned.
        #[source]
        source: io::Error,
        /// The kernel's extended-ack message (`NLMSGERR_ATTR_MSG`), when it gave one.
        ext_ack: Option<String>,
    },
    /// The kernel did not answer a request in time (it answers rtnetlink requests
    /// synchronously, so this means something is badly wrong).
    #[error("rtnetlink: no answer from the kernel to {op} within {timeout_ms} ms")]
    Timeout {
        /// The request.
        op: String,
        /// How long we waited.
        timeout_ms: u64,
    },
    /// A dump kept being interrupted by concurrent changes (`NLM_F_DUMP_INTR`).
    #[error("rtnetlink: {op} was interrupted by concurrent changes {tries} times in a row; the table is changing too fast to read, try again later")]
    DumpInterrupted {
        /// The dump.
        op: String,
        /// How many times it was tried.
        tries: u32,
    },
    /// A reply could not be decoded.
    #[error("rtnetlink: cannot decode the kernel's reply to {op}: {detail} (netlink-packet-route too old for this kernel?)")]
    Decode {
        /// The request.
        op: String,
        /// What was wrong.
        detail: String,
    },
    /// `fib_lookup`/`fib_match`: the kernel has no route for the address.
    #[error("no route to {dst} in this network namespace ({reason}); add one (ip route add ...) or check ip rule")]
    NoRoute {
        /// The destination asked about.
        dst: Ipv4Addr,
        /// The kernel's reason.
        reason: String,
    },
    /// `fib_lookup`: the route found does not forward (local, blackhole, unreachable, ...).
    #[error(
        "{dst} does not leave this node through a next hop: the kernel's route is of type {kind}"
    )]
    NotForwarded {
        /// The destination asked about.
        dst: Ipv4Addr,
        /// The route type found, e.g. "local" or "blackhole".
        kind: String,
    },
    /// The kernel accepted the neighbour but did not keep `NTF_EXT_MANAGED` (Linux < 5.16
    /// ignores the `NDA_FLAGS_EXT` attribute).
    #[error("this kernel does not support kernel-managed neighbour entries (NTF_EXT_MANAGED needs Linux 5.16 or newer): {ip} on ifindex {ifindex} was not marked managed; resolve next hops by sending ARP instead")]
    ManagedUnsupported {
        /// The neighbour address.
        ip: Ipv4Addr,
        /// Its interface.
        ifindex: u32,
    },
}

/// A how-to-fix hint for the errnos a caller can do something about.
fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "; changing kernel state needs CAP_NET_ADMIN in this network namespace"
        }
        Some(libc::ENODEV) => "; the interface does not exist (any more) in this namespace",
        _ => "",
    }
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn socket(what: &'static str, source: io::Error) -> Error {
        Error::Socket { what, source }
    }

    /// The errno the kernel answered with, for [`Error::Kernel`].
    #[must_use]
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
