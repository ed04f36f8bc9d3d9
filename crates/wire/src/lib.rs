//! Zero-copy views over the headers podfwd reads and rewrites.
//!
//! Each module wraps a byte buffer in a `Packet<T: AsRef<[u8]>>`-style view, the way
//! smoltcp's `src/wire/` does: a private `field` module names the byte ranges, getters
//! need `AsRef<[u8]>`, setters need `AsMut<[u8]>`, fields are read by offset (never by
//! casting bytes to structs). `new_checked` validates every length once; after it
//! succeeds no getter panics, whatever the bytes say. `new_unchecked` skips the checks
//! for the hot path, where the caller already knows the lengths; on a buffer that is too
//! short its accessors may panic.
//!
//! Byte order on the wire is big-endian; addresses are returned both as `u32` (host
//! order, cheap to compare and hash) and as [`std::net::Ipv4Addr`].
#![forbid(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod tcp;
pub mod udp;
pub mod vxlan;

pub use arp::{ArpOperation, ArpPacket};
pub use ethernet::{EtherType, EthernetFrame, Mac};
pub use icmpv4::Icmpv4Packet;
pub use ipv4::{IpProtocol, Ipv4Packet};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;
pub use vxlan::VxlanPacket;

/// Why a buffer could not be viewed as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before the header (or the part of it that a field points to) does.
    #[error("truncated: the header needs {need} bytes but the buffer holds {have}")]
    Truncated { need: usize, have: usize },
    /// The IPv4 version nibble is not 4.
    #[error("IPv4 version field is {0}, expected 4")]
    BadVersion(u8),
    /// The IPv4 IHL is below 5 words (20 bytes).
    #[error("IPv4 IHL is {0} words, the minimum is 5 (20 bytes)")]
    BadIhl(u8),
    /// The IPv4 total length is shorter than the header or longer than the buffer.
    #[error("IPv4 total length {total_len} is outside [header length {header_len}, buffer length {buffer_len}]")]
    BadTotalLength {
        total_len: u16,
        header_len: usize,
        buffer_len: usize,
    },
    /// The UDP length field is shorter than 8 or longer than the buffer.
    #[error("UDP length {len} is outside [8, buffer length {buffer_len}]")]
    BadUdpLength { len: u16, buffer_len: usize },
    /// The TCP data offset is below 5 words or points past the buffer.
    #[error("TCP data offset {header_len} bytes is outside [20, buffer length {buffer_len}]")]
    BadTcpOffset {
        header_len: usize,
        buffer_len: usize,
    },
    /// ARP for something other than Ethernet hardware and IPv4 protocol addresses.
    #[error("ARP for hardware type {htype}/len {hlen}, protocol {ptype:#06x}/len {plen}; only Ethernet/IPv4 (1/6, 0x0800/4) is supported")]
    UnsupportedArp {
        htype: u16,
        ptype: u16,
        hlen: u8,
        plen: u8,
    },
}

/// Shorthand for results of checked constructors.
pub type Result<T> = core::result::Result<T, WireError>;

/// Fails with [`WireError::Truncated`] unless `have >= need`.
#[inline]
pub(crate) fn check_len(need: usize, have: usize) -> Result<()> {
    if have < need {
        Err(WireError::Truncated { need, have })
    } else {
        Ok(())
    }
}

#[inline]
pub(crate) fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn write_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn write_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Bytes VXLAN encapsulation adds in front of an inner Ethernet frame: outer Ethernet
/// (14), outer IPv4 without options (20), UDP (8), VXLAN (8). The outer IPv4 packet is
/// 20 + 8 + 8 + 14 (inner Ethernet) + the inner IPv4 packet, so an inner packet fits the
/// uplink when its total length + 50 <= the uplink MTU: pod MTU = uplink MTU - 50.
pub const VXLAN_OVERHEAD: usize =
    ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
