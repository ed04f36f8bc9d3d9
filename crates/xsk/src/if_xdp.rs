//! Constants and structs of the AF_XDP user ABI, transcribed from
//! `include/uapi/linux/if_xdp.h` (Linux 6.8+ layout; older kernels accept the same
//! structs because every extension lives in what used to be trailing padding or is
//! negotiated through `optlen`).
//!
//! Names follow the kernel header so they can be grepped against it (rustc's
//! `non_camel_case_types` does not apply to `#[repr(C)]` structs).

/// `AF_XDP` address family (`include/linux/socket.h`).
pub const AF_XDP: libc::c_int = 44;
/// `AF_XDP` as the `sa_family_t` of `sockaddr_xdp::sxdp_family`.
pub const AF_XDP_FAMILY: libc::sa_family_t = 44;
const _: () = assert!(AF_XDP_FAMILY as libc::c_int == AF_XDP);
/// `SOL_XDP` socket option level (`include/linux/socket.h`).
pub const SOL_XDP: libc::c_int = 283;

// Options for the `sxdp_flags` field of `struct sockaddr_xdp`.
/// Bind to the UMEM of another socket (`sxdp_shared_umem_fd`).
pub const XDP_SHARED_UMEM: u16 = 1 << 0;
/// Force copy mode.
pub const XDP_COPY: u16 = 1 << 1;
/// Force zero-copy mode.
pub const XDP_ZEROCOPY: u16 = 1 << 2;
/// The kernel may sleep; it sets `XDP_RING_NEED_WAKEUP` on the fill/TX rings when it
/// needs a syscall to make progress.
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
/// Multi-buffer (Linux 6.6+): a frame larger than one UMEM frame is received and sent
/// as a chain of descriptors, each but the last with [`XDP_PKT_CONTD`]. Set by the
/// socket that registers the UMEM; the kernel gives it to every socket sharing it.
pub const XDP_USE_SG: u16 = 1 << 4;
/// Descriptor option: the packet continues in the next descriptor of the ring.
pub const XDP_PKT_CONTD: u32 = 1 << 0;

// Flags for `xdp_umem_reg.flags`.
/// Unaligned chunk mode (not used by podfwd: frames are power-of-two aligned chunks).
pub const XDP_UMEM_UNALIGNED_CHUNK_FLAG: u32 = 1 << 0;
/// Copy mode computes a requested TX checksum in software (`skb_checksum_help`) instead of
/// handing the device a `CHECKSUM_PARTIAL` skb; zero-copy drivers ignore it (6.8+). For
/// testing the request fields, and for devices whose checksum offload is broken.
pub const XDP_UMEM_TX_SW_CSUM: u32 = 1 << 1;
/// Reserve `tx_metadata_len` bytes of TX metadata in front of every TX frame. Added in
/// 6.11 (and its stable backports) to fix 6.8's reading of `tx_metadata_len` without a
/// flag; kernels without it reject the unknown flag with EINVAL.
pub const XDP_UMEM_TX_METADATA_LEN: u32 = 1 << 2;

/// `struct sockaddr_xdp`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sockaddr_xdp {
    pub sxdp_family: u16,
    pub sxdp_flags: u16,
    pub sxdp_ifindex: u32,
    pub sxdp_queue_id: u32,
    pub sxdp_shared_umem_fd: u32,
}

/// Flag in a ring's `flags` word: userspace must make a syscall for the kernel to
/// process this ring (sendto for TX, recvfrom/poll for the fill ring).
pub const XDP_RING_NEED_WAKEUP: u32 = 1 << 0;

/// `struct xdp_ring_offset`: byte offsets inside one ring mapping.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct xdp_ring_offset {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

/// `struct xdp_mmap_offsets`, read with `getsockopt(XDP_MMAP_OFFSETS)`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct xdp_mmap_offsets {
    pub rx: xdp_ring_offset,
    pub tx: xdp_ring_offset,
    /// Fill ring.
    pub fr: xdp_ring_offset,
    /// Completion ring.
    pub cr: xdp_ring_offset,
}

// XDP socket options (level SOL_XDP).
pub const XDP_MMAP_OFFSETS: libc::c_int = 1;
pub const XDP_RX_RING: libc::c_int = 2;
pub const XDP_TX_RING: libc::c_int = 3;
pub const XDP_UMEM_REG: libc::c_int = 4;
pub const XDP_UMEM_FILL_RING: libc::c_int = 5;
pub const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
pub const XDP_STATISTICS: libc::c_int = 7;
pub const XDP_OPTIONS: libc::c_int = 8;
/// Frames the kernel sends per TX wakeup in copy mode (Linux 6.17+; default 32).
pub const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// `struct xdp_umem_reg` (v3 with `tx_metadata_len`, 6.8+; older kernels read the
/// first 28 bytes and the rest is zero).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct xdp_umem_reg {
    /// Start of the packet data area.
    pub addr: u64,
    /// Length of the packet data area.
    pub len: u64,
    pub chunk_size: u32,
    pub headroom: u32,
    pub flags: u32,
    pub tx_metadata_len: u32,
}

/// `struct xdp_statistics` as the kernel fills it (`getsockopt(XDP_STATISTICS)`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct xdp_statistics {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// `struct xdp_options` (`getsockopt(XDP_OPTIONS)`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct xdp_options {
    pub flags: u32,
}

/// Flag in `xdp_options.flags`: the socket is bound in zero-copy mode.
pub const XDP_OPTIONS_ZEROCOPY: u32 = 1 << 0;

// Page offsets for mmap'ing the rings.
pub const XDP_PGOFF_RX_RING: libc::off_t = 0;
pub const XDP_PGOFF_TX_RING: libc::off_t = 0x8000_0000;
pub const XDP_UMEM_PGOFF_FILL_RING: libc::off_t = 0x1_0000_0000;
pub const XDP_UMEM_PGOFF_COMPLETION_RING: libc::off_t = 0x1_8000_0000;

/// Headroom the kernel itself reserves in front of every received frame
/// (`XDP_PACKET_HEADROOM`, `include/uapi/linux/bpf.h`), on top of the UMEM headroom.
pub const XDP_PACKET_HEADROOM: u32 = 256;

// Busy-poll socket options (SOL_SOCKET, `include/uapi/asm-generic/socket.h`; the values
// differ only on alpha, mips, parisc and sparc, which podfwd does not target).
pub const SO_BUSY_POLL: libc::c_int = 46;
pub const SO_PREFER_BUSY_POLL: libc::c_int = 69;
pub const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

/// `xdp_desc.options` bit: the TX frame carries a valid [`xsk_tx_metadata`] right in front
/// of its data (the UMEM must be registered with `tx_metadata_len`, 6.8+).
pub const XDP_TX_METADATA: u32 = 1 << 1;

/// `xsk_tx_metadata.flags` bit: transmit with checksum offload, from `request.csum_start`
/// (counted from the descriptor's address) over the rest of the frame, the folded sum
/// stored at `csum_start + csum_offset` (the kernel's `CHECKSUM_PARTIAL` contract: the
/// field holds the pseudo-header sum to start from).
pub const XDP_TXMD_FLAGS_CHECKSUM: u64 = 1 << 1;

/// `request` of `struct xsk_tx_metadata` (the member the kernel reads at TX time;
/// `launch_time` came in 6.15, in what was padding before, so the layout holds for
/// every kernel with TX metadata).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct xsk_tx_metadata_request {
    /// Where checksumming starts, from the descriptor's address.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
    pub _pad: u32,
    /// `XDP_TXMD_FLAGS_LAUNCH_TIME` (6.15+); podfwd leaves it 0.
    pub launch_time: u64,
}

/// `struct xsk_tx_metadata`, laid out right before a TX frame's data when the
/// descriptor has [`XDP_TX_METADATA`]. The kernel's union of `request` and `completion`
/// (`tx_timestamp`, overlaying `csum_start`..) is written here as its `request` member:
/// podfwd asks for no TX timestamps.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct xsk_tx_metadata {
    /// `XDP_TXMD_FLAGS_*`.
    pub flags: u64,
    pub request: xsk_tx_metadata_request,
}

/// `struct xdp_desc`: one RX or TX descriptor. `addr` is an offset into the UMEM
/// (chunk base + data offset), `len` the frame length.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct XdpDesc {
    pub addr: u64,
    pub len: u32,
    pub options: u32,
}

// Layout checks against the kernel header.
const _: () = {
    assert!(core::mem::size_of::<sockaddr_xdp>() == 16);
    assert!(core::mem::size_of::<xdp_ring_offset>() == 32);
    assert!(core::mem::size_of::<xdp_mmap_offsets>() == 128);
    assert!(core::mem::size_of::<xdp_umem_reg>() == 32);
    assert!(core::mem::size_of::<xdp_statistics>() == 48);
    assert!(core::mem::size_of::<XdpDesc>() == 16);
    assert!(core::mem::align_of::<XdpDesc>() == 8);
    // struct xsk_tx_metadata: flags at 0, request.csum_start at 8, csum_offset at 10,
    // launch_time at 16; 24 bytes (a multiple of 8, as XDP_UMEM_REG requires).
    assert!(core::mem::size_of::<xsk_tx_metadata>() == 24);
    assert!(core::mem::offset_of!(xsk_tx_metadata, flags) == 0);
    assert!(core::mem::offset_of!(xsk_tx_metadata, request) == 8);
    assert!(core::mem::offset_of!(xsk_tx_metadata_request, csum_start) == 0);
    assert!(core::mem::offset_of!(xsk_tx_metadata_request, csum_offset) == 2);
    assert!(core::mem::offset_of!(xsk_tx_metadata_request, launch_time) == 8);
};
