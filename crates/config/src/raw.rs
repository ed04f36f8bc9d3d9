//! The file as written: every value still a string or plain number, each with its
//! line/column (`Spanned`), so the semantic checks in `validate` can point at it.
//! Nothing here is interpreted; `validate` turns it into [`crate::Config`].

use serde::Deserialize;
use serde_saphyr::Spanned;

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub node: S<RawNode>,
    #[serde(default)]
    pub mode: Option<S<String>>,
    pub cluster_cidr: S<String>,
    #[serde(default)]
    pub gateway: Option<S<String>>,
    #[serde(default)]
    pub vxlan: Option<S<RawVxlan>>,
    #[serde(default)]
    pub endpoints: Option<Vec<S<RawEndpoint>>>,
    #[serde(default)]
    pub nodes: Option<Vec<S<RawRemoteNode>>>,
    #[serde(default)]
    pub workers: Option<S<RawWorkers>>,
    #[serde(default)]
    pub umem: Option<S<RawUmem>>,
    #[serde(default)]
    pub metrics: Option<S<RawMetrics>>,
    #[serde(default)]
    pub control: Option<S<RawControl>>,
    #[serde(default)]
    pub routes: Option<S<RawRoutes>>,
    #[serde(default)]
    pub offload: Option<S<RawOffload>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub name: S<String>,
    pub ip: S<String>,
    pub uplink: S<String>,
    pub pod_cidr: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVxlan {
    #[serde(default)]
    pub port: Option<S<u64>>,
    #[serde(default)]
    pub vni: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEndpoint {
    pub ip: S<String>,
    pub interface: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemoteNode {
    pub name: S<String>,
    pub ip: S<String>,
    pub pod_cidr: S<String>,
    #[serde(default)]
    pub vtep_mac: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkers {
    #[serde(default)]
    pub count: Option<S<u64>>,
    #[serde(default)]
    pub cpus: Option<S<Vec<S<u64>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUmem {
    #[serde(default)]
    pub frames: Option<S<u64>>,
    #[serde(default)]
    pub frame_size: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    #[serde(default)]
    pub listen: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoutes {
    #[serde(default)]
    pub table: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOffload {
    #[serde(default)]
    pub tx_checksum: Option<S<String>>,
    #[serde(default)]
    pub multi_buffer: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawControl {
    #[serde(default)]
    pub socket: Option<S<String>>,
}
