//! systemd readiness (`Type=notify`, sd_notify(3)): one `READY=1` datagram on the unix
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket), sent once
//! start-up is complete. Without the variable (not under systemd) nothing is sent.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Tell the service manager that podfwd is up; `status` shows in `systemctl status`.
/// Failures are logged, never fatal: the dataplane runs either way.
pub fn ready(status: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let send = || -> std::io::Result<()> {
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(&path)?,
        };
        let sock = UnixDatagram::unbound()?;
        sock.send_to_addr(format!("READY=1\nSTATUS={status}\n").as_bytes(), &addr)?;
        Ok(())
    };
    if let Err(e) = send() {
        log::warn!("cannot notify the service manager on NOTIFY_SOCKET={path}: {e}");
    }
}
