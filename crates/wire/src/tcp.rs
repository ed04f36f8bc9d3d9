//! TCP segments (RFC 793 §3.1), only as far as podfwd needs them: the ports (flow hash)
//! and the checksum at offset 16 (completing offloaded checksums). Options and flags
//! are not interpreted.
//!
//! TCP has no length field: the segment is the IPv4 payload, so hand the view exactly
//! that slice ([`crate::Ipv4Packet::payload`]).

use crate::checksum;
use crate::{check_len, read_u16, read_u32, write_u16, Result, WireError};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Offset of the checksum within the header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking the fixed header fits and the data offset lies in
    /// `20..=buffer.len()`.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::BadTcpOffset`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let have = p.buffer.as_ref().len();
        check_len(HEADER_LEN, have)?;
        let header_len = p.header_len();
        if header_len < HEADER_LEN || header_len > have {
            return Err(WireError::BadTcpOffset {
                header_len,
                buffer_len: have,
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

    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flag bits of byte 13 (CWR ECE URG ACK PSH RST SYN FIN), uninterpreted.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    #[inline]
    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload after the header (clamped to the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len().min(b.len())..]
    }

    /// Segment length for the pseudo-header. Saturates: a TCP segment in an IPv4 packet is
    /// at most 65515 bytes.
    #[inline]
    fn seg_len(&self) -> u16 {
        u16::try_from(self.buffer.as_ref().len()).unwrap_or(u16::MAX)
    }

    /// The checksum this segment should carry between `src` and `dst`.
    #[inline]
    pub fn compute_checksum(&self, src: u32, dst: u32) -> u16 {
        let b = self.buffer.as_ref();
        let ps = checksum::pseudo_header_sum(src, dst, 6, self.seg_len());
        let s = checksum::sum(b, ps);
        !checksum::fold(s + u32::from(!self.checksum()))
    }

    /// Whether the checksum field holds what a CHECKSUM_PARTIAL sender leaves there for
    /// `src` -> `dst` ([`checksum::partial_pseudo_header`] over the segment length), so
    /// that [`Self::fill_checksum`] completes it.
    #[inline]
    pub fn checksum_is_partial(&self, src: u32, dst: u32) -> bool {
        self.checksum() == checksum::partial_pseudo_header(src, dst, 6, self.seg_len())
    }

    /// Whether the checksum is right.
    #[inline]
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let ps = checksum::pseudo_header_sum(src, dst, 6, self.seg_len());
        checksum::fold(checksum::sum(self.buffer.as_ref(), ps)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, v);
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
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for TcpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: u32 = 0x0a00_0102;
    const DST: u32 = 0x0a00_0203;

    /// SYN 10.0.1.2:40000 -> 10.0.2.3:5201, seq 1, window 64240, data offset 5, "hi".
    const SEGMENT: [u8; 22] = [
        0x9c, 0x40, 0x14, 0x51, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, b'h', b'i',
    ];

    #[test]
    fn parse_and_build() {
        let mut b = SEGMENT;
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 5201);
        assert_eq!(p.seq_number(), 1);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.flags(), 0x02);
        assert_eq!(p.window(), 64240);
        assert_eq!(p.payload(), b"hi");
        assert!(!p.verify_checksum(SRC, DST));
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        // Reference: word-by-word sum over pseudo-header + segment.
        let mut s: u32 = 0x0a00 + 0x0102 + 0x0a00 + 0x0203 + 6 + 22;
        for w in SEGMENT.chunks(2) {
            s += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        #[allow(clippy::cast_possible_truncation)]
        let expect = !(s as u16);
        assert_eq!(p.checksum(), expect);
        assert_eq!(&b[16..18], &expect.to_be_bytes());
    }

    #[test]
    fn partial_checksum_completed() {
        // Partial: the pseudo-header sum 0a00+0102+0a00+0203+0006+0016 = 0x1721.
        let mut b = SEGMENT;
        b[16..18].copy_from_slice(&[0x17, 0x21]);
        let mut p = TcpPacket::new_unchecked(&mut b[..]);
        assert!(p.checksum_is_partial(SRC, DST));
        assert!(!p.checksum_is_partial(DST, DST));
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.checksum_is_partial(SRC, DST));
        let mut full = SEGMENT;
        TcpPacket::new_unchecked(&mut full[..]).fill_checksum(SRC, DST);
        assert_eq!(b, full);
    }

    #[test]
    fn errors() {
        assert_eq!(
            TcpPacket::new_checked(&SEGMENT[..19]).unwrap_err(),
            WireError::Truncated { need: 20, have: 19 }
        );
        let mut b = SEGMENT;
        b[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::BadTcpOffset {
                header_len: 16,
                buffer_len: 22
            }
        );
        b[12] = 0x60;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::BadTcpOffset {
                header_len: 24,
                buffer_len: 22
            }
        );
    }
}
