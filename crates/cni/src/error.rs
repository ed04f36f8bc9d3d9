//! The CNI error result (SPEC.md section 5, "Error") and its well-known codes.

use serde::{Deserialize, Serialize};

/// Error codes 0–99 are the spec's; 100+ are this plugin's.
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration (message names key and value).
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist (the runtime need not clean up).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables (message names them).
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure, e.g. reading stdin.
    pub const IO: u32 = 5;
    /// Failed to decode content, e.g. the network config JSON.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later: a transient condition, e.g. podfwd not (yet) running.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot service ADD requests.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing containers may have limited connectivity.
    pub const NOT_AVAILABLE_LIMITED: u32 = 51;

    /// A netlink request failed (details carry the request and the errno).
    pub const NETLINK: u32 = 100;
    /// The attachment already exists: its host veth (or the container interface) is there.
    pub const ALREADY_EXISTS: u32 = 101;
    /// podfwd answered `{"ok":false}`.
    pub const PODFWD_REFUSED: u32 = 102;
    /// CHECK found the attachment not as ADD left it.
    pub const CHECK_FAILED: u32 = 103;
    /// The IPAM plugin gave a result this plugin cannot use (e.g. no IPv4 address).
    pub const IPAM_RESULT: u32 = 104;
    /// A failure injected with `PODFWD_CNI_FAIL_AT` (tests only).
    pub const INJECTED: u32 = 199;
}

/// What the plugin prints on stdout (and exits non-zero) when a command fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("CNI error {code}: {msg}: {details}")]
pub struct CniError {
    /// Filled in by the caller just before printing (the version of the request).
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    pub code: u32,
    pub msg: String,
    #[serde(default)]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            cni_version: String::new(),
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;
