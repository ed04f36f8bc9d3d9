//! IPAM by delegation (SPEC.md section 4): run `$CNI_PATH/<ipam.type>` with our own
//! environment and stdin, only CNI_COMMAND changed where needed, its stderr passed through
//! to ours; parse its result from stdout.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::config::env;
use crate::error::{code, CniError, Result};

/// The abbreviated success result of an IPAM plugin (no `interfaces`).
#[derive(Debug, Clone, Deserialize)]
pub struct IpamResult {
    #[serde(default)]
    pub ips: Vec<IpamIp>,
    #[serde(default)]
    pub dns: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IpamIp {
    /// CIDR, e.g. "10.0.1.5/24" (host-local gives the range's prefix length).
    pub address: String,
}

impl IpamResult {
    /// The first IPv4 address: podfwd pods are IPv4 (one /32 each).
    pub fn ipv4(&self) -> Result<Ipv4Addr> {
        self.ips
            .iter()
            .find_map(|ip| ip.address.split('/').next()?.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| {
                CniError::new(
                    code::IPAM_RESULT,
                    "IPAM gave no IPv4 address",
                    format!(
                        "the IPAM plugin returned {:?}; podfwd needs one IPv4 address per pod (configure an IPv4 range)",
                        self.ips.iter().map(|i| &i.address).collect::<Vec<_>>()
                    ),
                )
            })
    }
}

/// The IPAM plugin binary: the first `CNI_PATH` entry that has it.
pub fn find(plugin: &str) -> Result<PathBuf> {
    let path = env("CNI_PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::new(
                code::INVALID_CONFIG,
                "IPAM plugin not found",
                format!("ipam.type {plugin:?} is not in CNI_PATH={path:?}"),
            )
        })
}

/// Run the IPAM plugin for `command` with `stdin`. Success: its stdout (possibly empty,
/// as for DEL). Failure: its error result, passed on as ours.
pub fn exec(plugin: &Path, command: &str, stdin: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new(plugin)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            CniError::new(
                code::IO,
                "cannot run the IPAM plugin",
                format!("{}: {e}", plugin.display()),
            )
        })?;
    // A plugin that exits without reading stdin makes this write fail (EPIPE); its exit
    // status and stdout then say why, so the write error itself is not reported.
    if let Some(mut si) = child.stdin.take() {
        let _ = si.write_all(stdin);
    }
    let out = child.wait_with_output().map_err(|e| {
        CniError::new(
            code::IO,
            "IPAM plugin I/O failure",
            format!("{}: {e}", plugin.display()),
        )
    })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    match serde_json::from_slice::<CniError>(&out.stdout) {
        Ok(mut e) => {
            e.details = format!(
                "{} {command}: {}{}",
                plugin.display(),
                e.msg,
                if e.details.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.details)
                }
            );
            Err(e)
        }
        Err(_) => Err(CniError::new(
            code::IO,
            "IPAM plugin failed",
            format!(
                "{} {command} exited with {} and printed {:?}",
                plugin.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout)
            ),
        )),
    }
}

/// Run `command`; if the IPAM plugin does not speak 1.1.0 (an older host-local, like
/// Debian 12's 1.1.1 whose newest is 1.0.0), run it again with the config downgraded to
/// 1.0.0: the abbreviated IPAM result did not change between 1.0.0 and 1.1.0.
pub fn exec_compat(plugin: &Path, command: &str, stdin: &[u8], version: &str) -> Result<Vec<u8>> {
    match exec(plugin, command, stdin) {
        Err(e) if e.code == code::INCOMPATIBLE_VERSION && version == "1.1.0" => {
            let downgraded = with_version(stdin, "1.0.0")?;
            exec(plugin, command, &downgraded)
        }
        r => r,
    }
}

fn with_version(stdin: &[u8], version: &str) -> Result<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            code::DECODE,
            "failed to decode the network configuration",
            e.to_string(),
        )
    })?;
    v["cniVersion"] = version.into();
    // prevResult is versioned with the config; 1.0.0 and 1.1.0 results have one shape.
    serde_json::to_vec(&v).map_err(|e| CniError::new(code::IO, "cannot encode", e.to_string()))
}

/// Does the plugin speak `version`? (Its VERSION answer.) STATUS and GC exist only from
/// 1.1.0 on, so they are forwarded only to plugins that say they speak it.
pub fn supports(plugin: &Path, version: &str) -> bool {
    #[derive(Deserialize)]
    struct V {
        #[serde(rename = "supportedVersions", default)]
        supported: Vec<String>,
    }
    let stdin = format!("{{\"cniVersion\":\"{version}\"}}");
    exec(plugin, "VERSION", stdin.as_bytes())
        .ok()
        .and_then(|out| serde_json::from_slice::<V>(&out).ok())
        .is_some_and(|v| v.supported.iter().any(|s| s == version))
}

pub fn parse_result(out: &[u8]) -> Result<IpamResult> {
    serde_json::from_slice(out).map_err(|e| {
        CniError::new(
            code::DECODE,
            "cannot decode the IPAM result",
            format!("{e}: {:?}", String::from_utf8_lossy(out)),
        )
    })
}
