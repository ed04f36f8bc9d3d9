//! ICMPv4 messages (RFC 792), as far as podfwd reads or writes them: echo (for tests and
//! flow hashing) and destination unreachable / fragmentation needed with the next-hop
//! MTU of RFC 1191 §4 (type 3, code 4, MTU in the low 16 bits of the second word).

use crate::checksum;
use crate::{check_len, read_u16, write_u16, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const UNUSED: usize = 4;
    pub const NEXT_HOP_MTU: usize = 6;
}

/// Length of the ICMP header (type, code, checksum, and the 4-byte rest of header).
pub const HEADER_LEN: usize = 8;

pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const TYPE_ECHO_REQUEST: u8 = 8;
pub const TYPE_TIME_EXCEEDED: u8 = 11;
/// Destination unreachable: fragmentation needed and DF set.
pub const CODE_FRAG_NEEDED: u8 = 4;

/// A view of an ICMPv4 message (header and data; the checksum covers both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer` without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking the 8-byte header fits.
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
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo request/reply identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo request/reply sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// Whether this is destination unreachable / fragmentation needed (type 3 code 4).
    #[inline]
    pub fn is_frag_needed(&self) -> bool {
        self.msg_type() == TYPE_DEST_UNREACHABLE && self.code() == CODE_FRAG_NEEDED
    }

    /// Whether this is an ICMP error message (destination unreachable, source quench,
    /// redirect, time exceeded, parameter problem: types 3, 4, 5, 11, 12 of RFC 792), about
    /// which no ICMP error may be sent (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7).
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(self.msg_type(), 3 | 4 | 5 | 11 | 12)
    }

    /// The next-hop MTU of a fragmentation-needed message (RFC 1191 §4).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// The data after the 8-byte header (echo data; for errors, the offending IP header
    /// and the first 8 bytes of its payload).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[HEADER_LEN.min(b.len())..]
    }

    /// Whether the checksum over the whole message is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref(), 0)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ, v);
    }

    /// Makes the header a fragmentation-needed message: type 3, code 4, unused 0,
    /// next-hop MTU. Fill the checksum after writing the data.
    #[inline]
    pub fn set_frag_needed(&mut self, next_hop_mtu: u16) {
        self.set_msg_type(TYPE_DEST_UNREACHABLE);
        self.set_code(CODE_FRAG_NEEDED);
        write_u16(self.buffer.as_mut(), field::UNUSED, 0);
        write_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU, next_hop_mtu);
    }

    /// Computes and writes the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref(), 0);
        self.set_checksum(c);
    }

    /// The data after the header, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let h = HEADER_LEN.min(b.len());
        &mut b[h..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echo request id 0x1234 seq 1, 4 data bytes.
    const ECHO: [u8; 12] = [
        0x08, 0x00, 0x48, 0x2d, 0x12, 0x34, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef,
    ];

    /// Frag needed, next-hop MTU 1450, data = a 20-byte IPv4 header + 8 bytes.
    const FRAG_NEEDED: [u8; 36] = [
        0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x05, 0xaa, // header (checksum filled in test)
        0x45, 0x00, 0x05, 0xdc, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0x0a, 0x00, 0x01,
        0x02, 0x0a, 0x00, 0x02, 0x03, // original IPv4 header
        0x9c, 0x40, 0x14, 0x51, 0x00, 0x00, 0x00, 0x01, // first 8 bytes of TCP
    ];

    #[test]
    fn parse_echo() {
        let p = Icmpv4Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.msg_type(), TYPE_ECHO_REQUEST);
        assert_eq!(p.code(), 0);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum());
        assert!(!p.is_frag_needed());
        assert!(!p.is_error());
    }

    #[test]
    fn error_types() {
        for (t, err) in [
            (0, false),
            (3, true),
            (4, true),
            (5, true),
            (8, false),
            (11, true),
        ] {
            let mut b = ECHO;
            b[0] = t;
            assert_eq!(
                Icmpv4Packet::new_unchecked(&b[..1]).is_error(),
                err,
                "type {t}"
            );
        }
        assert!(Icmpv4Packet::new_unchecked(&FRAG_NEEDED[..]).is_error());
        assert!(Icmpv4Packet::new_unchecked(&[12u8][..]).is_error());
        assert!(!Icmpv4Packet::new_unchecked(&[13u8][..]).is_error());
    }

    #[test]
    fn build_echo() {
        let mut b = [0u8; 12];
        let mut p = Icmpv4Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(TYPE_ECHO_REQUEST);
        p.set_code(0);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        p.fill_checksum();
        assert_eq!(b, ECHO);
    }

    #[test]
    fn frag_needed() {
        let mut b = [0u8; 36];
        b[8..].copy_from_slice(&FRAG_NEEDED[8..]);
        let mut p = Icmpv4Packet::new_unchecked(&mut b[..]);
        p.set_frag_needed(1450);
        p.fill_checksum();
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_frag_needed());
        assert_eq!(p.next_hop_mtu(), 1450);
        assert!(p.verify_checksum());
        assert_eq!(&b[..2], &FRAG_NEEDED[..2]);
        assert_eq!(&b[4..], &FRAG_NEEDED[4..]);
        assert!(Icmpv4Packet::new_checked(&b[..7]).is_err());
    }
}
