//! The control protocol between the CNI plugin and the running podfwd.
//!
//! Transport: podfwd listens on a unix stream socket ([`DEFAULT_SOCKET`], root-only). The
//! plugin connects, writes one [`Request`] as a single line of JSON terminated by `\n`,
//! reads one [`Response`] line, and closes. One request per connection is what the plugin
//! does; a server may accept several lines on one connection, answering each in order.
//!
//! ```text
//! → {"op":"endpoint_add","ip":"10.0.1.5","interface":"lxc1a2b3c4d5e6","container_id":"abc"}
//! ← {"ok":true}
//! → {"op":"endpoint_del","interface":"lxc1a2b3c4d5e6","ip":"10.0.1.5"}
//! ← {"ok":true}
//! → {"op":"ping"}
//! ← {"ok":true}
//! ← {"ok":false,"error":"interface lxc1a2b3c4d5e6 not found"}
//! ```
//!
//! No OS dependencies here (serde only), so podfwd can depend on this module for the
//! server side.
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Where podfwd listens unless the network config's `socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/podfwd/podfwd.sock";

/// One request line. The `op` field names the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A pod's host-side veth is up and addressed: attach to `interface` and deliver
    /// `ip` (the pod's /32) to it. Sent by ADD as its last step; ADD fails (and is rolled
    /// back) unless podfwd answers `ok`.
    EndpointAdd {
        ip: Ipv4Addr,
        interface: String,
        container_id: String,
    },
    /// Forget the endpoint on `interface` (the veth is about to be deleted, or already
    /// is). Sent by DEL and by ADD's rollback. `ip` is absent when DEL could not learn it
    /// (no prevResult and the veth already gone). Deleting an unknown endpoint should
    /// answer `ok`: DEL is idempotent.
    EndpointDel {
        interface: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<Ipv4Addr>,
    },
    /// Liveness: is podfwd able to serve `endpoint_add`? Sent by STATUS and CHECK, and by
    /// ADD when the network config has no `mtu` (to learn `pod_mtu`).
    Ping,
}

/// One response line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// Why not, when `ok` is false: shown to the runtime in the CNI error's `details`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Optional answer to `ping`: the MTU pods should get (uplink MTU − 50 in tunnel
    /// mode). The plugin uses it only when the network config sets no `mtu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_mtu: Option<u32>,
}

impl Response {
    pub fn ok() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }

    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(msg.into()),
            pod_mtu: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_the_documented_lines() {
        let add = Request::EndpointAdd {
            ip: Ipv4Addr::new(10, 0, 1, 5),
            interface: "lxcabc".into(),
            container_id: "c1".into(),
        };
        assert_eq!(
            serde_json::to_string(&add).unwrap(),
            r#"{"op":"endpoint_add","ip":"10.0.1.5","interface":"lxcabc","container_id":"c1"}"#
        );
        let del = Request::EndpointDel {
            interface: "lxcabc".into(),
            ip: Some(Ipv4Addr::new(10, 0, 1, 5)),
        };
        assert_eq!(
            serde_json::to_string(&del).unwrap(),
            r#"{"op":"endpoint_del","interface":"lxcabc","ip":"10.0.1.5"}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Ping).unwrap(),
            r#"{"op":"ping"}"#
        );
        let back: Request =
            serde_json::from_str(r#"{"op":"endpoint_del","interface":"lxcabc"}"#).unwrap();
        assert_eq!(
            back,
            Request::EndpointDel {
                interface: "lxcabc".into(),
                ip: None
            }
        );
    }

    #[test]
    fn responses_round_trip() {
        assert_eq!(
            serde_json::to_string(&Response::ok()).unwrap(),
            r#"{"ok":true}"#
        );
        let r: Response = serde_json::from_str(r#"{"ok":false,"error":"no"}"#).unwrap();
        assert_eq!(r, Response::error("no"));
        let r: Response = serde_json::from_str(r#"{"ok":true,"pod_mtu":1450}"#).unwrap();
        assert_eq!(r.pod_mtu, Some(1450));
    }
}
