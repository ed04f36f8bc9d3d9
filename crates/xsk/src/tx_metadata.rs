//! TX metadata: checksum offload requests in front of TX frames
//! (`Documentation/networking/xsk-tx-metadata.rst`).
//!
//! A UMEM registered with `XDP_UMEM_TX_METADATA_LEN` and `tx_metadata_len` =
//! [`TX_METADATA_LEN`] (Linux 6.11+) has room for a `struct xsk_tx_metadata` right in
//! front of every TX frame's data, inside the same chunk. A TX descriptor with
//! `XDP_TX_METADATA` in its options makes the kernel read it. In copy mode
//! (`xsk_build_skb` → `xsk_skb_metadata`) a checksum request
//! (`XDP_TXMD_FLAGS_CHECKSUM`) makes the skb `CHECKSUM_PARTIAL` with `csum_start` and
//! `csum_offset` from the request: the device completes the checksum (or, for a device
//! without checksum offload, the kernel does in `validate_xmit_skb`), and a veth passes
//! the skb to its peer still partial, which the receiving stack takes as verified
//! (`skb_csum_unnecessary`). With [`TxMetadata::SoftwareChecksum`]
//! (`XDP_UMEM_TX_SW_CSUM`) copy mode computes the checksum itself at once.
//! Zero-copy drivers honour a checksum request only if they implement it
//! (`xsk-features: tx-checksum` in the netdev netlink family); others ignore it.
//!
//! Once a UMEM has TX metadata, the kernel's checks apply to every TX descriptor:
//! data that starts less than `tx_metadata_len` bytes into its chunk is an invalid
//! descriptor (counted in `tx_invalid_descs`, and its frame never completes), and a
//! request it refuses (unknown flags, a checksum field past the frame's end) fails the
//! whole `sendto` with EINVAL and leaves the descriptor at the head of the TX ring, to
//! fail again on every kick. [`Umem::request_tx_checksum`](crate::Umem::request_tx_checksum)
//! and [`XskSocket::tx_push`](crate::XskSocket::tx_push) check both before a
//! descriptor reaches the ring.

use std::io;
use std::mem::size_of;

use crate::if_xdp::{self, xdp_umem_reg, xsk_tx_metadata, xsk_tx_metadata_request};

/// Bytes reserved for TX metadata in front of each TX frame: `sizeof(struct
/// xsk_tx_metadata)` (24 since 6.15; older kernels' 16-byte struct is a prefix of it).
#[allow(clippy::cast_possible_truncation)] // 24; `u32::try_from` is not const
pub const TX_METADATA_LEN: u32 = size_of::<xsk_tx_metadata>() as u32;

/// Whether a UMEM asks the kernel for TX metadata when it is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxMetadata {
    /// No metadata: every checksum a frame carries is final.
    #[default]
    Off,
    /// TX metadata for checksum offload, if the kernel accepts it (6.11+); without, the
    /// UMEM is registered as with `Off` ([`crate::Umem::tx_metadata_len`] stays 0).
    Offload,
    /// As `Offload`, with `XDP_UMEM_TX_SW_CSUM`: copy mode computes each requested
    /// checksum in software before the skb leaves (for testing the requests, or a device
    /// whose checksum offload is broken).
    SoftwareChecksum,
}

/// The 24 bytes of a checksum request: checksum from `csum_start` (counted from the
/// frame's first byte) to the frame's end, stored at `csum_start + csum_offset`.
#[must_use]
pub fn checksum_request(csum_start: u16, csum_offset: u16) -> [u8; TX_METADATA_LEN as usize] {
    let md = xsk_tx_metadata {
        flags: if_xdp::XDP_TXMD_FLAGS_CHECKSUM,
        request: xsk_tx_metadata_request {
            csum_start,
            csum_offset,
            ..Default::default()
        },
    };
    let mut b = [0u8; TX_METADATA_LEN as usize];
    b[..8].copy_from_slice(&md.flags.to_ne_bytes());
    b[8..10].copy_from_slice(&md.request.csum_start.to_ne_bytes());
    b[10..12].copy_from_slice(&md.request.csum_offset.to_ne_bytes());
    b[12..16].copy_from_slice(&md.request._pad.to_ne_bytes());
    b[16..24].copy_from_slice(&md.request.launch_time.to_ne_bytes());
    b
}

/// Whether the kernel accepts a checksum request for a frame of `len` bytes: the
/// checksum field lies inside the frame (`xsk_skb_metadata`).
#[must_use]
pub fn checksum_request_fits(len: u32, csum_start: u16, csum_offset: u16) -> bool {
    u32::from(csum_start) + u32::from(csum_offset) + 2 <= len
}

/// Registers a UMEM (`XDP_UMEM_REG` through `set`) with the TX metadata `want` asks
/// for, falling back to none when the kernel refuses it with EINVAL (no
/// `XDP_UMEM_TX_METADATA_LEN` before 6.11). Returns the `tx_metadata_len` in effect:
/// [`TX_METADATA_LEN`] or 0. Any other error, or EINVAL without metadata, is returned.
pub(crate) fn register(
    base: xdp_umem_reg,
    want: TxMetadata,
    mut set: impl FnMut(&xdp_umem_reg) -> io::Result<()>,
) -> io::Result<u32> {
    let flags = match want {
        TxMetadata::Off => return set(&base).map(|()| 0),
        TxMetadata::Offload => if_xdp::XDP_UMEM_TX_METADATA_LEN,
        TxMetadata::SoftwareChecksum => {
            if_xdp::XDP_UMEM_TX_METADATA_LEN | if_xdp::XDP_UMEM_TX_SW_CSUM
        }
    };
    let with = xdp_umem_reg {
        flags: base.flags | flags,
        tx_metadata_len: TX_METADATA_LEN,
        ..base
    };
    match set(&with) {
        Ok(()) => Ok(TX_METADATA_LEN),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            set(&base)?;
            log::info!(
                "the kernel refused TX metadata on the UMEM ({e}; XDP_UMEM_TX_METADATA_LEN needs Linux 6.11+): \
                 checksums are completed in software"
            );
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> xdp_umem_reg {
        xdp_umem_reg {
            addr: 0x1000,
            len: 1 << 20,
            chunk_size: 4096,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        }
    }

    #[test]
    fn request_bytes_follow_the_kernel_struct() {
        let b = checksum_request(34, 16);
        // flags (u64) = XDP_TXMD_FLAGS_CHECKSUM, then request.csum_start,
        // request.csum_offset (u16 each), 4 bytes of padding, request.launch_time (u64).
        assert_eq!(u64::from_ne_bytes(b[0..8].try_into().unwrap()), 1 << 1);
        assert_eq!(u16::from_ne_bytes([b[8], b[9]]), 34);
        assert_eq!(u16::from_ne_bytes([b[10], b[11]]), 16);
        assert_eq!(&b[12..], &[0; 12]);
        assert_eq!(TX_METADATA_LEN, 24);
        // XDP_UMEM_REG wants a multiple of 8 below 256.
        assert_eq!(TX_METADATA_LEN % 8, 0);
    }

    #[test]
    fn the_checksum_field_must_lie_inside_the_frame() {
        // A TCP checksum (offset 16) of a segment starting at 34: bytes 50..52.
        assert!(checksum_request_fits(52, 34, 16));
        assert!(!checksum_request_fits(51, 34, 16));
        assert!(!checksum_request_fits(0, 0, 0));
        assert!(checksum_request_fits(u32::MAX, u16::MAX, u16::MAX));
    }

    #[test]
    fn registration_asks_for_metadata_and_falls_back_on_einval() {
        // A kernel that knows XDP_UMEM_TX_METADATA_LEN.
        let mut seen = Vec::new();
        let len = register(base(), TxMetadata::Offload, |r| {
            seen.push(*r);
            Ok(())
        })
        .unwrap();
        assert_eq!(len, 24);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].flags, if_xdp::XDP_UMEM_TX_METADATA_LEN);
        assert_eq!(seen[0].tx_metadata_len, 24);

        // One that does not (before 6.11): EINVAL, then the plain registration.
        let mut seen = Vec::new();
        let len = register(base(), TxMetadata::SoftwareChecksum, |r| {
            seen.push(*r);
            if r.flags & !if_xdp::XDP_UMEM_UNALIGNED_CHUNK_FLAG != 0 {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(len, 0);
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0].flags,
            if_xdp::XDP_UMEM_TX_METADATA_LEN | if_xdp::XDP_UMEM_TX_SW_CSUM
        );
        assert_eq!(seen[1], base());

        // Off never asks; other errors are not masked.
        let mut calls = 0;
        assert_eq!(
            register(base(), TxMetadata::Off, |r| {
                calls += 1;
                assert_eq!(*r, base());
                Ok(())
            })
            .unwrap(),
            0
        );
        assert_eq!(calls, 1);
        let e = register(base(), TxMetadata::Offload, |_| {
            Err(io::Error::from_raw_os_error(libc::EPERM))
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        let e = register(base(), TxMetadata::Offload, |_| {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        })
        .unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::EINVAL),
            "EINVAL without metadata too"
        );
    }
}
