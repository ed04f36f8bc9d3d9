//! VXLAN headers (RFC 7348 §5).
//!
//! ```text
//!  0                   1                   2                   3
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```
//! The I flag (0x08) MUST be set for a valid VNI; the other flag bits and the reserved
//! fields are sent as zero and ignored on receipt. The header is followed by the inner
//! Ethernet frame (no FCS). Linux, flannel and Cilium use UDP port 8472; IANA's is 4789.

use crate::{check_len, Result};

mod field {
    pub const FLAGS: usize = 0;
    pub const VNI: core::ops::Range<usize> = 4..7;
    pub const RESERVED2: usize = 7;
}

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = 8;
/// The I flag: "VNI is valid".
pub const FLAG_I: u8 = 0x08;
/// UDP port of the Linux kernel's VXLAN driver (and flannel, Cilium).
pub const PORT_LINUX: u16 = 8472;
/// IANA-assigned VXLAN UDP port.
pub const PORT_IANA: u16 = 4789;
/// Largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// A view of a VXLAN header and the inner frame after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Wraps `buffer` without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking the 8-byte header fits. Flags are not judged here:
    /// see [`Self::has_vni`].
    ///
    /// # Errors
    /// [`crate::WireError::Truncated`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        check_len(HEADER_LEN, p.buffer.as_ref().len())?;
        Ok(p)
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether the I flag is set (the only receive-side check RFC 7348 asks for).
    #[inline]
    pub fn has_vni(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The 24-bit VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[HEADER_LEN.min(b.len())..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Writes the flags byte and zeroes the first reserved field.
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        let b = self.buffer.as_mut();
        b[field::FLAGS] = flags;
        b[1..4].fill(0);
    }

    /// Writes the VNI (masked to 24 bits) and zeroes the trailing reserved byte.
    #[inline]
    pub fn set_vni(&mut self, vni: u32) {
        let b = self.buffer.as_mut();
        b[field::VNI].copy_from_slice(&(vni & VNI_MAX).to_be_bytes()[1..]);
        b[field::RESERVED2] = 0;
    }

    /// The inner frame, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let h = HEADER_LEN.min(b.len());
        &mut b[h..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for VxlanPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: [u8; 10] = [0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x00, 0xaa, 0xbb];

    #[test]
    fn parse() {
        let p = VxlanPacket::new_checked(&HEADER[..]).unwrap();
        assert_eq!(p.flags(), 0x08);
        assert!(p.has_vni());
        assert_eq!(p.vni(), 0x12_3456);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn build() {
        let mut b = [0xffu8; 10];
        let mut p = VxlanPacket::new_unchecked(&mut b[..]);
        p.set_flags(FLAG_I);
        p.set_vni(0xff12_3456); // masked to 24 bits
        p.payload_mut().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!(b, HEADER);
    }

    #[test]
    fn flags_and_errors() {
        let mut b = HEADER;
        b[0] = 0x00;
        assert!(!VxlanPacket::new_checked(&b[..]).unwrap().has_vni());
        b[0] = 0x88; // a reserved bit set too: ignored on receipt
        assert!(VxlanPacket::new_checked(&b[..]).unwrap().has_vni());
        assert!(VxlanPacket::new_checked(&HEADER[..7]).is_err());
    }
}
