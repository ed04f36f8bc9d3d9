//! UDP datagrams (RFC 768).
//!
//! The checksum covers the IPv4 pseudo-header, the UDP header and the payload; a
//! transmitted checksum of 0 means "none" (allowed over IPv4, and what Linux VXLAN
//! sends by default), so a computed 0 is sent as 0xffff.

use crate::checksum;
use crate::{check_len, read_u16, write_u16, Result, WireError};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum within the header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking the header fits and the length field lies in
    /// `8..=buffer.len()`.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::BadUdpLength`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_with(buffer, 0)
    }

    /// [`UdpPacket::new_checked`] for a datagram that goes on for `beyond` bytes past
    /// `buffer` (the rest of an AF_XDP descriptor chain): the header must lie in
    /// `buffer`, the length field within `buffer.len() + beyond`.
    ///
    /// # Errors
    /// As [`UdpPacket::new_checked`].
    #[inline]
    pub fn new_checked_with(buffer: T, beyond: usize) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let have = p.buffer.as_ref().len();
        check_len(HEADER_LEN, have)?;
        let len = p.len();
        if usize::from(len) < HEADER_LEN || usize::from(len) > have + beyond {
            return Err(WireError::BadUdpLength {
                len,
                buffer_len: have + beyond,
            });
        }
        Ok(p)
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header plus payload.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The datagram as the length field bounds it (clamped to the buffer).
    #[inline]
    fn datagram(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..usize::from(self.len()).min(b.len())]
    }

    /// The payload, up to the length field (clamped to the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.datagram();
        &d[HEADER_LEN.min(d.len())..]
    }

    /// The checksum this datagram should carry between `src` and `dst` (0 sent as 0xffff).
    #[inline]
    pub fn compute_checksum(&self, src: u32, dst: u32) -> u16 {
        let d = self.datagram();
        let ps = checksum::pseudo_header_sum(src, dst, 17, self.len());
        let s = checksum::sum(d, ps);
        let cur = if d.len() >= HEADER_LEN {
            self.checksum()
        } else {
            0
        };
        let c = !checksum::fold(s + u32::from(!cur));
        if c == 0 {
            0xffff
        } else {
            c
        }
    }

    /// Whether the checksum field holds what a CHECKSUM_PARTIAL sender leaves there for
    /// `src` -> `dst` ([`checksum::partial_pseudo_header`] over the length field), so
    /// that [`Self::fill_checksum`] completes it.
    #[inline]
    pub fn checksum_is_partial(&self, src: u32, dst: u32) -> bool {
        self.checksum() == checksum::partial_pseudo_header(src, dst, 17, self.len())
    }

    /// Whether the checksum is right; a zero checksum (none sent) verifies.
    #[inline]
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let ps = checksum::pseudo_header_sum(src, dst, 17, self.len());
        checksum::fold(checksum::sum(self.datagram(), ps)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    #[inline]
    pub fn set_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Computes and writes the checksum for `src` -> `dst`.
    #[inline]
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        let c = self.compute_checksum(src, dst);
        self.set_checksum(c);
    }

    /// The payload, writable (up to the length field, clamped to the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.len());
        let b = self.buffer.as_mut();
        let end = l.min(b.len());
        &mut b[HEADER_LEN.min(end)..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for UdpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: u32 = 0x0a00_0102;
    const DST: u32 = 0x0a00_0203;

    /// 10.0.1.2:40000 -> 10.0.2.3:5201, payload "podfwd!" (odd length).
    const DATAGRAM: [u8; 15] = [
        0x9c, 0x40, 0x14, 0x51, 0x00, 0x0f, 0x00, 0x00, b'p', b'o', b'd', b'f', b'w', b'd', b'!',
    ];

    fn with_checksum() -> [u8; 15] {
        let mut d = DATAGRAM;
        let c = expected_checksum();
        d[6..8].copy_from_slice(&c.to_be_bytes());
        d
    }

    /// Independent word-by-word reference.
    fn expected_checksum() -> u16 {
        let mut words: Vec<u32> = vec![0x0a00, 0x0102, 0x0a00, 0x0203, 17, 15];
        let mut d = DATAGRAM.to_vec();
        d.push(0);
        words.extend(
            d.chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))),
        );
        let mut s: u32 = words.iter().sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        #[allow(clippy::cast_possible_truncation)]
        let c = !(s as u16);
        c
    }

    #[test]
    fn parse() {
        let bytes = with_checksum();
        let p = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 5201);
        assert_eq!(p.len(), 15);
        assert_eq!(p.payload(), b"podfwd!");
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, DST + 1));
        assert_eq!(p.compute_checksum(SRC, DST), p.checksum());
    }

    #[test]
    fn build() {
        let mut buf = [0u8; 15];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(40000);
        p.set_dst_port(5201);
        p.set_len(15);
        p.payload_mut().copy_from_slice(b"podfwd!");
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, with_checksum());
    }

    #[test]
    fn partial_checksum_completed() {
        // Partial: the pseudo-header sum 0a00+0102+0a00+0203+0011+000f = 0x1725.
        let mut d = DATAGRAM;
        d[6..8].copy_from_slice(&[0x17, 0x25]);
        let mut p = UdpPacket::new_unchecked(&mut d[..]);
        assert!(p.checksum_is_partial(SRC, DST));
        assert!(!p.checksum_is_partial(SRC, DST + 1));
        p.fill_checksum(SRC, DST);
        assert_eq!(d, with_checksum());
        assert!(!UdpPacket::new_unchecked(&d[..]).checksum_is_partial(SRC, DST));
    }

    #[test]
    fn zero_checksum_means_none() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn errors() {
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..7]).unwrap_err(),
            WireError::Truncated { need: 8, have: 7 }
        );
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..14]).unwrap_err(),
            WireError::BadUdpLength {
                len: 15,
                buffer_len: 14
            }
        );
        let mut d = DATAGRAM;
        d[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&d[..]).unwrap_err(),
            WireError::BadUdpLength {
                len: 7,
                buffer_len: 15
            }
        );
    }
}
