//! Interface facts the control side needs: index, MAC, MTU.
//!
//! Read from sysfs, which `ip netns exec` remounts for the namespace it enters, so the
//! values are the ones of podfwd's own network namespace.

use std::fs;
use std::path::PathBuf;

use wire::ethernet::parse_mac;

/// What podfwd needs to know about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    /// Interface name.
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Hardware address.
    pub mac: [u8; 6],
    /// MTU.
    pub mtu: u16,
    /// Whether the interface is administratively and operationally up.
    pub up: bool,
}

/// Errors reading an interface.
#[derive(Debug, thiserror::Error)]
pub enum IfaceError {
    /// No such interface here.
    #[error("interface {0} not found in this network namespace (check the name with `ip link`, and that podfwd runs in the node's namespace)")]
    NotFound(String),
    /// A sysfs attribute could not be parsed.
    #[error("interface {name}: cannot read {attr}: {detail}")]
    Attr {
        /// Interface.
        name: String,
        /// Attribute.
        attr: &'static str,
        /// What went wrong.
        detail: String,
    },
}

fn attr(name: &str, attr: &'static str) -> Result<String, IfaceError> {
    let path: PathBuf = ["/sys/class/net", name, attr].iter().collect();
    fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| IfaceError::Attr {
            name: name.to_owned(),
            attr,
            detail: e.to_string(),
        })
}

/// Look an interface up by name.
///
/// # Errors
/// [`IfaceError::NotFound`] when the interface does not exist in this namespace.
pub fn lookup(name: &str) -> Result<IfaceInfo, IfaceError> {
    if name.is_empty() || name.contains('/') || name.contains("..") {
        return Err(IfaceError::NotFound(name.to_owned()));
    }
    let dir: PathBuf = ["/sys/class/net", name].iter().collect();
    if !dir.exists() {
        return Err(IfaceError::NotFound(name.to_owned()));
    }
    let bad = |attr: &'static str, v: &str| IfaceError::Attr {
        name: name.to_owned(),
        attr,
        detail: format!("unexpected value {v:?}"),
    };
    let ifindex_s = attr(name, "ifindex")?;
    let ifindex = ifindex_s.parse().map_err(|_| bad("ifindex", &ifindex_s))?;
    let mac_s = attr(name, "address")?;
    let mac = parse_mac(&mac_s).ok_or_else(|| bad("address", &mac_s))?;
    let mtu_s = attr(name, "mtu")?;
    let mtu: u32 = mtu_s.parse().map_err(|_| bad("mtu", &mtu_s))?;
    let oper = attr(name, "operstate").unwrap_or_default();
    Ok(IfaceInfo {
        name: name.to_owned(),
        ifindex,
        mac,
        mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
        up: oper == "up" || oper == "unknown",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_exists_and_missing_is_named() {
        let lo = lookup("lo").unwrap();
        assert_eq!(lo.mac, [0; 6]);
        let err = lookup("eth9-missing").unwrap_err();
        assert_eq!(
            err.to_string(),
            "interface eth9-missing not found in this network namespace (check the name with `ip link`, and that podfwd runs in the node's namespace)"
        );
    }
}
