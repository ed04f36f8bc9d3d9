//! Entering the container's network namespace, only as far as netlink needs: a thread
//! joins the namespace (setns(2) with CLONE_NEWNET acts on the calling thread only),
//! opens a netlink socket there and hands it back. The socket keeps the namespace; the
//! thread ends, and no other thread of the plugin ever leaves the runtime's namespace.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::sched::{setns, CloneFlags};

use crate::ethtool::Ethtool;
use crate::nl::Netlink;

/// Open `CNI_NETNS` (a bind-mounted nsfs file such as /run/netns/NAME or
/// /proc/PID/ns/net).
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// A netlink socket inside the namespace `ns`.
pub fn netlink_in(ns: &File) -> io::Result<Netlink> {
    made_in(ns, Netlink::new)
}

/// An ethtool (generic netlink) socket inside the namespace `ns`.
pub fn ethtool_in(ns: &File) -> io::Result<Ethtool> {
    made_in(ns, Ethtool::new)
}

/// `make` run on a thread that joined `ns`.
fn made_in<T: Send>(ns: &File, make: fn() -> io::Result<T>) -> io::Result<T> {
    let ns = ns.try_clone()?;
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            make()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")))
    })
}
