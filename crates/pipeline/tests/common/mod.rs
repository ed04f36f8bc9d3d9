//! Test fixtures shared by the pipeline's tests, benchmarks and fuzz target (through
//! `#[path]`; podfwd's worker benchmark too): a two-node topology seen from node A, and
//! frame builders.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use route::{LocalNode, Mode, NextHop, PortId, PortRole, Snapshot, SnapshotBuilder};
use wire::ipv4::Ipv4Packet;

pub const NODE_A: [u8; 4] = [198, 18, 0, 1];
pub const NODE_B: [u8; 4] = [198, 18, 0, 2];
pub const NODE_C: [u8; 4] = [198, 18, 0, 3];
pub const GATEWAY: [u8; 4] = [169, 254, 1, 1];

pub const UPLINK: PortId = 0;
pub const LXC1: PortId = 1;
pub const LXC2: PortId = 2;
pub const LXC3: PortId = 3;

pub const UPLINK_MAC: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x01];
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0xfe];
pub const NODE_B_MAC: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x02];
pub const LXC1_MAC: [u8; 6] = [0xfe, 0xee, 0x00, 0x00, 0x01, 0x01];
pub const LXC2_MAC: [u8; 6] = [0xfe, 0xee, 0x00, 0x00, 0x01, 0x02];
pub const LXC3_MAC: [u8; 6] = [0xfe, 0xee, 0x00, 0x00, 0x01, 0x03];
pub const POD1_MAC: [u8; 6] = [0x0e, 0x00, 0x0a, 0x00, 0x01, 0x02];
pub const POD2_MAC: [u8; 6] = [0x0e, 0x00, 0x0a, 0x00, 0x01, 0x03];
pub const POD3_MAC: [u8; 6] = [0x0e, 0x00, 0x0a, 0x00, 0x01, 0x04];

/// Pod 1 (10.0.1.2, MAC known to control) behind lxc1.
pub const POD1: [u8; 4] = [10, 0, 1, 2];
/// Pod 2 (10.0.1.3, MAC known to control) behind lxc2.
pub const POD2: [u8; 4] = [10, 0, 1, 3];
/// Pod 3 (10.0.1.4, MAC only learnable) behind lxc3.
pub const POD3: [u8; 4] = [10, 0, 1, 4];
/// A pod on node B (resolved next hop).
pub const REMOTE_B: [u8; 4] = [10, 0, 2, 5];
/// A pod on node C (next hop unresolved).
pub const REMOTE_C: [u8; 4] = [10, 0, 3, 5];

pub const UPLINK_MTU: u16 = 1500;

/// Pod MTU: uplink − 50 in tunnel mode, the uplink's in native mode.
pub fn pod_mtu(mode: Mode) -> u16 {
    match mode {
        Mode::Tunnel | Mode::Hybrid => UPLINK_MTU - 50,
        Mode::Native => UPLINK_MTU,
    }
}

/// Node A: uplink 0, three pods on lxc1..3, nodes B (resolved) and C (unresolved).
pub fn snapshot(mode: Mode) -> Snapshot {
    snapshot_with(mode, false)
}

/// [`snapshot`] in hybrid mode: node B on-link, node D (resolved, 10.0.4.0/24) behind a
/// router.
pub fn hybrid_snapshot() -> Snapshot {
    snapshot_with(Mode::Hybrid, true)
}

pub const NODE_D: [u8; 4] = [198, 18, 5, 4];
pub const REMOTE_D: [u8; 4] = [10, 0, 4, 5];

fn snapshot_with(mode: Mode, hybrid_nodes: bool) -> Snapshot {
    let local = LocalNode {
        name: "node-a".into(),
        ip: Ipv4Addr::from(NODE_A),
        pod_cidr: "10.0.1.0/24".parse().unwrap(),
        cluster_cidr: "10.0.0.0/16".parse().unwrap(),
        gateway: Ipv4Addr::from(GATEWAY),
        mode,
        vni: 1,
        vxlan_port: 8472,
        uplink: UPLINK,
    };
    let mut b = SnapshotBuilder::new(1, local);
    let mtu = pod_mtu(mode);
    assert_eq!(
        b.port("eth0", PortRole::Uplink, UPLINK_MAC, UPLINK_MTU),
        UPLINK
    );
    assert_eq!(b.port("lxc1", PortRole::Pod, LXC1_MAC, mtu), LXC1);
    assert_eq!(b.port("lxc2", PortRole::Pod, LXC2_MAC, mtu), LXC2);
    assert_eq!(b.port("lxc3", PortRole::Pod, LXC3_MAC, mtu), LXC3);
    b.endpoint(Ipv4Addr::from(POD1), LXC1, Some(POD1_MAC));
    b.endpoint(Ipv4Addr::from(POD2), LXC2, Some(POD2_MAC));
    b.endpoint(Ipv4Addr::from(POD3), LXC3, None);
    b.node(
        "node-b",
        Ipv4Addr::from(NODE_B),
        "10.0.2.0/24".parse().unwrap(),
        Some(NODE_B_MAC),
    )
    .on_link(hybrid_nodes);
    b.node(
        "node-c",
        Ipv4Addr::from(NODE_C),
        "10.0.3.0/24".parse().unwrap(),
        None,
    );
    if hybrid_nodes {
        b.node(
            "node-d",
            Ipv4Addr::from(NODE_D),
            "10.0.4.0/24".parse().unwrap(),
            Some(ROUTER_MAC),
        );
    }
    b.build().unwrap()
}

/// Two gateways toward node B (a multipath route): router 1 and router 2.
pub const GW1: [u8; 4] = [198, 18, 0, 253];
pub const GW2: [u8; 4] = [198, 18, 0, 254];
pub const GW1_MAC: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0xfd];
pub const GW2_MAC: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0xfe];

/// A gateway of a multipath route: address, weight, MAC once resolved.
pub type Gateway = ([u8; 4], u16, Option<[u8; 6]>);

/// [`snapshot`] with node B behind the gateways `hops`: a multipath route.
pub fn multipath_snapshot(mode: Mode, hops: &[Gateway]) -> Snapshot {
    let mut b = SnapshotBuilder::new(1, snapshot(mode).local.clone());
    let mtu = pod_mtu(mode);
    b.port("eth0", PortRole::Uplink, UPLINK_MAC, UPLINK_MTU);
    b.port("lxc1", PortRole::Pod, LXC1_MAC, mtu);
    b.endpoint(Ipv4Addr::from(POD1), LXC1, Some(POD1_MAC));
    let hops: Vec<NextHop> = hops
        .iter()
        .map(|&(via, weight, mac)| NextHop {
            via: Ipv4Addr::from(via),
            weight,
            mac,
        })
        .collect();
    b.node(
        "node-b",
        Ipv4Addr::from(NODE_B),
        "10.0.2.0/24".parse().unwrap(),
        None,
    )
    .next_hops(&hops);
    b.build().unwrap()
}

/// Transport of a test packet.
#[derive(Debug, Clone, Copy)]
pub enum L4 {
    Udp { sport: u16, dport: u16 },
    Tcp { sport: u16, dport: u16 },
    Icmp,
}

/// An Ethernet/IPv4 frame built by etherparse (DF set, valid checksums). `payload_len`
/// bytes of payload after the L4 header.
pub fn frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    l4: L4,
    payload_len: usize,
) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len)
        .map(|i| u8::try_from((i * 7 + 3) % 256).unwrap())
        .collect();
    let b = PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(src, dst, ttl);
    let mut out = Vec::new();
    match l4 {
        L4::Udp { sport, dport } => b.udp(sport, dport).write(&mut out, &payload).unwrap(),
        L4::Tcp { sport, dport } => b
            .tcp(sport, dport, 1000, 64240)
            .write(&mut out, &payload)
            .unwrap(),
        L4::Icmp => b
            .icmpv4_echo_request(0x0b1c, 1)
            .write(&mut out, &payload)
            .unwrap(),
    }
    out
}

/// A UDP frame from pod 1 (to the gateway MAC, as a pod sends).
pub fn from_pod1(dst: [u8; 4], payload_len: usize) -> Vec<u8> {
    frame(
        POD1_MAC,
        LXC1_MAC,
        POD1,
        dst,
        64,
        L4::Udp {
            sport: 40000,
            dport: 5201,
        },
        payload_len,
    )
}

/// Applies `f` to the IPv4 header at offset `ip_at` and refills its checksum.
pub fn patch_ip(frame: &mut [u8], ip_at: usize, f: impl FnOnce(&mut Ipv4Packet<&mut [u8]>)) {
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[ip_at..]);
    f(&mut ip);
    ip.fill_checksum();
}

/// VXLAN header + `inner` as UDP payload from node B to `dst` (etherparse fills a UDP
/// checksum; podfwd ignores it).
pub fn vxlan_frame(dst: [u8; 4], dport: u16, flags: u8, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut payload = vec![flags, 0, 0, 0];
    payload.extend_from_slice(&vni.to_be_bytes()[1..]);
    payload.push(0);
    payload.extend_from_slice(inner);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(NODE_B_MAC, UPLINK_MAC)
        .ipv4(NODE_B, dst, 64)
        .udp(51234, dport)
        .write(&mut out, &payload)
        .unwrap();
    out
}

/// The inner frame node B's podfwd would send: remote pod -> `dst`, L2 from node B's
/// lxc-side MAC to ours (whatever the sender had; the receiver rewrites it).
pub fn inner_frame(dst: [u8; 4], payload_len: usize) -> Vec<u8> {
    frame(
        [0x0e, 0, 0x0a, 0, 2, 5],
        [0xfe, 0xee, 0, 0, 2, 1],
        REMOTE_B,
        dst,
        63,
        L4::Udp {
            sport: 5201,
            dport: 40000,
        },
        payload_len,
    )
}

/// Headroom of the fake UMEM chunks (XDP_PACKET_HEADROOM is 256).
pub const HEADROOM: usize = 256;
/// Size of a fake UMEM chunk.
pub const CHUNK: usize = 4096;

/// A UMEM chunk with `frame` at `HEADROOM`.
pub fn chunk(frame: &[u8]) -> Vec<u8> {
    chunk_at(frame, HEADROOM)
}

/// A UMEM chunk with `frame` at `off`.
pub fn chunk_at(frame: &[u8], off: usize) -> Vec<u8> {
    let mut c = vec![0xa5u8; CHUNK.max(off + frame.len())];
    c[off..off + frame.len()].copy_from_slice(frame);
    c
}

/// The VXLAN frame the Linux kernel (flannel.1) sends from node A (198.18.0.1) to node B
/// (198.18.0.2): VNI 1, port 8472, outer DF clear, UDP checksum 0, inner 10.0.1.2 ->
/// 10.0.2.3 ICMP echo (TTL 63, 56 data bytes). Same bytes as wire's tests/kernel_vxlan.rs.
#[rustfmt::skip]
pub const KERNEL_VXLAN_FRAME: [u8; 148] = [
    0x02, 0x00, 0xc6, 0x12, 0x00, 0x02, 0x02, 0x00, 0xc6, 0x12, 0x00, 0x01, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x86, 0x8f, 0x3a, 0x00, 0x00, 0x40, 0x11, 0x5f, 0x05, 0xc6, 0x12,
    0x00, 0x01, 0xc6, 0x12, 0x00, 0x02,
    0xd6, 0xb5, 0x21, 0x18, 0x00, 0x72, 0x00, 0x00,
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x0e, 0x5c, 0x1a, 0x2b, 0x3c, 0x4d, 0x72, 0x9f, 0x11, 0x22, 0x33, 0x44, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x54, 0x3b, 0x2a, 0x40, 0x00, 0x3f, 0x01, 0xe9, 0x7a, 0x0a, 0x00,
    0x01, 0x02, 0x0a, 0x00, 0x02, 0x03,
    0x08, 0x00, 0x96, 0x0b, 0x0b, 0x1c, 0x00, 0x01,
    0x00, 0xb9, 0x55, 0x69, 0x00, 0x00, 0x00, 0x00, 0x40, 0xe2, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
    0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
];

/// Node B's view for [`KERNEL_VXLAN_FRAME`]: local 198.18.0.2, PodCIDR 10.0.2.0/24, pod
/// 10.0.2.3 behind lxc1, node A as the remote.
pub fn node_b_snapshot() -> Snapshot {
    let local = LocalNode {
        name: "node-b".into(),
        ip: Ipv4Addr::from(NODE_B),
        pod_cidr: "10.0.2.0/24".parse().unwrap(),
        cluster_cidr: "10.0.0.0/16".parse().unwrap(),
        gateway: Ipv4Addr::from(GATEWAY),
        mode: Mode::Tunnel,
        vni: 1,
        vxlan_port: 8472,
        uplink: UPLINK,
    };
    let mut b = SnapshotBuilder::new(1, local);
    b.port("eth0", PortRole::Uplink, NODE_B_MAC, UPLINK_MTU);
    b.port("lxc1", PortRole::Pod, LXC1_MAC, UPLINK_MTU - 50);
    b.endpoint(Ipv4Addr::new(10, 0, 2, 3), LXC1, Some(POD2_MAC));
    b.node(
        "node-a",
        Ipv4Addr::from(NODE_A),
        "10.0.1.0/24".parse().unwrap(),
        Some(UPLINK_MAC),
    );
    b.build().unwrap()
}

/// A descriptor into [`VecMem`]: chunk index, offset and length of the frame in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VecDesc {
    pub chunk: usize,
    pub off: usize,
    pub len: usize,
}

/// Frames in plain vectors, as [`pipeline::FrameMem`]: what the UMEM is to a worker.
#[derive(Debug, Default)]
pub struct VecMem {
    pub chunks: Vec<Vec<u8>>,
    /// Chunks given back, in order.
    pub freed: Vec<usize>,
    /// Checksum offload requests of the transmitted frames: (chunk, request), in order.
    pub csum_requests: Vec<(usize, pipeline::TxCsum)>,
}

impl VecMem {
    /// One chunk per frame, each frame at [`HEADROOM`]; returns the memory and the
    /// descriptors, as an RX ring would hand them over.
    pub fn with_frames(frames: &[Vec<u8>]) -> (VecMem, Vec<VecDesc>) {
        let chunks: Vec<Vec<u8>> = frames.iter().map(|f| chunk(f)).collect();
        let descs = frames
            .iter()
            .enumerate()
            .map(|(i, f)| VecDesc {
                chunk: i,
                off: HEADROOM,
                len: f.len(),
            })
            .collect();
        (
            VecMem {
                chunks,
                ..VecMem::default()
            },
            descs,
        )
    }

    /// The bytes a descriptor describes.
    pub fn bytes(&self, d: &VecDesc) -> &[u8] {
        &self.chunks[d.chunk][d.off..d.off + d.len]
    }
}

impl pipeline::FrameMem for VecMem {
    type Desc = VecDesc;
    fn frame(&mut self, d: VecDesc) -> pipeline::Frame<'_> {
        pipeline::Frame::new(&mut self.chunks[d.chunk], d.off, d.len)
    }
    fn tx_desc(&mut self, d: VecDesc, out: pipeline::TxOut) -> VecDesc {
        if let Some(c) = out.csum {
            self.csum_requests.push((d.chunk, c));
        }
        VecDesc {
            chunk: d.chunk,
            off: out.off,
            len: out.len,
        }
    }
    fn free(&mut self, d: VecDesc) {
        self.freed.push(d.chunk);
    }
    fn len(d: &VecDesc) -> usize {
        d.len
    }
}
