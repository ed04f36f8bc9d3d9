//! The request: network configuration on stdin and the `CNI_*` environment
//! (SPEC.md sections 1 and 2).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{code, CniError, Result};

/// The versions this plugin speaks, oldest first. 0.1.0/0.2.0 are left out: their result
/// format (`ip4`/`ip6` objects) is a different shape.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The link-local gateway every pod routes through (the test bed's, and Calico's).
pub const DEFAULT_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// A spec version as (major, minor, patch), for "at least" comparisons.
pub fn version_tuple(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let t = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(t)
}

pub fn version_at_least(v: &str, min: &str) -> bool {
    matches!((version_tuple(v), version_tuple(min)), (Some(a), Some(b)) if a >= b)
}

/// The plugin configuration object as the runtime derived it for this plugin.
#[derive(Debug, Clone, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub ipam: Option<Ipam>,
    #[serde(default)]
    pub dns: Option<serde_json::Value>,
    /// Pod MTU on both veth ends. Absent: ask podfwd (`pod_mtu` in its ping answer),
    /// else leave the kernel's default.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// GRO on the container interface (`true`/`false`); absent: the kernel's default
    /// (off on a veth). Checked by [`NetConf::parse`], read with [`NetConf::gro`].
    #[serde(default)]
    pub gro: Option<serde_json::Value>,
    /// podfwd's control socket.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// The pods' gateway address; held by every host-side veth.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// The result of the ADD this DEL/CHECK follows (always present for CHECK).
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<serde_json::Value>,
    /// GC: the attachments that are still valid.
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Ipam {
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl NetConf {
    /// Decode stdin: code 6 if it is not the JSON object we expect, code 1 if its
    /// version is not one we speak, code 7 if a required field is missing or a value is
    /// out of range.
    pub fn parse(stdin: &[u8]) -> Result<Self> {
        let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                code::DECODE,
                "failed to decode the network configuration",
                format!("stdin is not a valid plugin configuration object: {e}"),
            )
        })?;
        if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                "incompatible CNI version",
                format!(
                    "cniVersion {:?} is not supported; podfwd supports {}",
                    conf.cni_version,
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        if conf.name.is_empty() {
            return Err(invalid(
                "missing network name: set \"name\" in the network configuration",
            ));
        }
        if let Some(mtu) = conf.mtu {
            if !(68..=65535).contains(&mtu) {
                return Err(invalid(format!(
                    "mtu {mtu} out of range: an IPv4 link needs 68..=65535 (tunnel mode: uplink MTU − 50)"
                )));
            }
        }
        if let Some(g) = &conf.gro {
            if !g.is_boolean() {
                return Err(invalid(format!(
                    "gro {g} is not a setting: use true (GRO on the container interface) or false"
                )));
            }
        }
        Ok(conf)
    }

    /// `gro`, validated by [`NetConf::parse`].
    pub fn gro(&self) -> Option<bool> {
        self.gro.as_ref().and_then(serde_json::Value::as_bool)
    }

    /// The IPAM plugin's name, required for ADD/DEL/CHECK.
    pub fn ipam_type(&self) -> Result<&str> {
        match &self.ipam {
            Some(i) if !i.kind.is_empty() => {
                if i.kind.contains('/') {
                    return Err(invalid(format!(
                        "ipam.type {:?} must be a plugin name, not a path",
                        i.kind
                    )));
                }
                Ok(&i.kind)
            }
            _ => Err(invalid(
                "missing ipam.type: podfwd delegates addressing, e.g. \"ipam\": {\"type\": \"host-local\", ...}",
            )),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::api::DEFAULT_SOCKET))
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway.unwrap_or(DEFAULT_GATEWAY)
    }
}

fn invalid(details: impl Into<String>) -> CniError {
    CniError::new(
        code::INVALID_CONFIG,
        "invalid network configuration",
        details,
    )
}

/// The commands of SPEC.md section 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "STATUS" => Self::Status,
            "GC" => Self::Gc,
            "VERSION" => Self::Version,
            _ => return None,
        })
    }
}

/// The attachment parameters of ADD/DEL/CHECK.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    /// Empty only for DEL (optional there).
    pub netns: Option<PathBuf>,
    pub ifname: String,
}

/// Read a variable; an empty one counts as unset (runtimes set empty ones).
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Attachment {
    /// Validate the environment for `cmd` (code 4 naming each bad variable).
    pub fn from_env(cmd: Command) -> Result<Self> {
        let mut bad = Vec::new();
        let container_id = env("CNI_CONTAINERID").unwrap_or_default();
        if !valid_container_id(&container_id) {
            bad.push(format!(
                "CNI_CONTAINERID={container_id:?} (must start with an alphanumeric, then alphanumerics, '_', '.' or '-')"
            ));
        }
        let netns = env("CNI_NETNS").map(PathBuf::from);
        if netns.is_none() && cmd != Command::Del {
            bad.push("CNI_NETNS is not set (the path of the container's network namespace)".into());
        }
        let ifname = env("CNI_IFNAME").unwrap_or_default();
        if !valid_ifname(&ifname) {
            bad.push(format!(
                "CNI_IFNAME={ifname:?} (an interface name: 1-15 bytes, no '/', ':' or whitespace)"
            ));
        }
        if !bad.is_empty() {
            return Err(CniError::new(
                code::INVALID_ENV,
                "invalid environment variables",
                bad.join("; "),
            ));
        }
        Ok(Self {
            container_id,
            netns,
            ifname,
        })
    }
}

fn valid_container_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The kernel's dev_valid_name (net/core/dev.c), minus the '%' templates.
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == b'%' || b.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare() {
        assert!(version_at_least("1.1.0", "1.1.0"));
        assert!(version_at_least("1.0.0", "0.4.0"));
        assert!(!version_at_least("0.3.1", "0.4.0"));
        assert!(!version_at_least("junk", "0.4.0"));
    }

    #[test]
    fn parse_checks_version_name_and_mtu() {
        let ok = br#"{"cniVersion":"1.0.0","name":"n","type":"podfwd","ipam":{"type":"host-local"},"mtu":1450}"#;
        let c = NetConf::parse(ok).unwrap();
        assert_eq!(c.mtu, Some(1450));
        assert_eq!(c.gateway(), DEFAULT_GATEWAY);
        assert_eq!(c.ipam_type().unwrap(), "host-local");
        assert_eq!(NetConf::parse(b"{").unwrap_err().code, code::DECODE);
        let e = NetConf::parse(br#"{"cniVersion":"9.9.9","name":"n"}"#).unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","mtu":20}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert_eq!(c.gro(), None);
        let g = br#"{"cniVersion":"1.0.0","name":"n","gro":true}"#;
        assert_eq!(NetConf::parse(g).unwrap().gro(), Some(true));
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","gro":"on"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert_eq!(
            e.details,
            r#"gro "on" is not a setting: use true (GRO on the container interface) or false"#
        );
    }

    #[test]
    fn names() {
        assert!(valid_container_id("abc-1.2_3"));
        assert!(!valid_container_id("-abc"));
        assert!(!valid_container_id(""));
        assert!(valid_ifname("eth0"));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("0123456789abcdef"));
    }
}
