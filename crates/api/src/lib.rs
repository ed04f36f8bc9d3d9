//! The control API: one JSON request per line on the root-only unix socket, one JSON
//! answer per line back. The CNI plugin and `podfwd reload|endpoint` speak it.
//!
//! ```text
//! {"op":"ping"}                                              -> {"ok":true,"message":"..."}
//! {"op":"reload"}                                            -> {"ok":true,"message":"reloaded ..."}
//! {"op":"endpoint_add","ip":"10.0.1.5","interface":"lxc1a2b3c4d5e6","container_id":"..."}
//! {"op":"endpoint_del","interface":"lxc1a2b3c4d5e6"}         (or "ip", or both)
//! {"op":"endpoint_list"}                                     -> {"ok":true,"endpoints":[...]}
//! any failure                                                -> {"ok":false,"error":"..."}
//! ```
//!
//! `ping` also answers `pod_mtu`: the MTU pods should get (the uplink's, less 50 bytes
//! in tunnel mode), which the CNI plugin uses when its network config sets none. Deleting
//! an endpoint that is not served answers `ok` (a runtime repeats DEL).
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Where podfwd listens unless its config's `control.socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/podfwd/podfwd.sock";

/// A request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Is podfwd there?
    Ping,
    /// Re-read the config file (as SIGHUP).
    Reload,
    /// Serve a pod: its IP (inside this node's PodCIDR) behind the host-side interface.
    EndpointAdd {
        /// The pod's address.
        ip: Ipv4Addr,
        /// The host side of its veth.
        interface: String,
        /// The container it belongs to (shown by `endpoint list`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container_id: Option<String>,
    },
    /// Stop serving a pod, named by interface, IP or both (both must then match).
    EndpointDel {
        /// The pod's address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<Ipv4Addr>,
        /// The host side of its veth.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interface: Option<String>,
    },
    /// Every endpoint served.
    EndpointList,
}

/// Where an endpoint comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The config file's `endpoints:` (changed by editing it and reloading).
    Config,
    /// Added over this API (kept across restarts in the state file).
    Api,
}

/// One endpoint as `endpoint_list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// The pod's address.
    pub ip: Ipv4Addr,
    /// The host side of its veth.
    pub interface: String,
    /// Its container, when the API was told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Config or API.
    pub origin: Origin,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Response {
    /// Whether it was done.
    pub ok: bool,
    /// What was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why it was not done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `endpoint_list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<EndpointInfo>>,
    /// For `ping`: the MTU pods should get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_mtu: Option<u32>,
}

impl Response {
    /// Done, with what was done.
    #[must_use]
    pub fn done(message: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: Some(message.into()),
            ..Response::default()
        }
    }

    /// Done, nothing to say.
    #[must_use]
    pub fn ok() -> Response {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    /// Not done, with why.
    #[must_use]
    pub fn error(error: impl Into<String>) -> Response {
        Response::refused(error)
    }

    /// Not done, with why.
    #[must_use]
    pub fn refused(error: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(error.into()),
            ..Response::default()
        }
    }

    /// `Ok(message)` as done, `Err(why)` as refused.
    #[must_use]
    pub fn from_result(r: Result<String, String>) -> Response {
        match r {
            Ok(m) => Response::done(m),
            Err(e) => Response::refused(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_the_documented_lines() {
        let add: Request = serde_json::from_str(
            r#"{"op":"endpoint_add","ip":"10.0.1.5","interface":"lxc1a2b3c4d5e6","container_id":"c1"}"#,
        )
        .unwrap();
        assert_eq!(
            add,
            Request::EndpointAdd {
                ip: Ipv4Addr::new(10, 0, 1, 5),
                interface: "lxc1a2b3c4d5e6".into(),
                container_id: Some("c1".into())
            }
        );
        let del: Request =
            serde_json::from_str(r#"{"op":"endpoint_del","interface":"lxc0"}"#).unwrap();
        assert_eq!(
            del,
            Request::EndpointDel {
                ip: None,
                interface: Some("lxc0".into())
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Ping).unwrap(),
            r#"{"op":"ping"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Response::refused("no")).unwrap(),
            r#"{"ok":false,"error":"no"}"#
        );
    }
}
