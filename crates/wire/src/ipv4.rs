//! IPv4 headers (RFC 791 §3.1).
//!
//! `new_checked` accepts any header the pipeline might need to judge: version 4, IHL ≥ 5
//! (options are recognised, `header_len() > 20`), total length between the header
//! length and the buffer length (a buffer longer than the total length is Ethernet
//! padding; [`Ipv4Packet::payload`] stops at the total length). It does not verify the
//! header checksum: call [`Ipv4Packet::verify_checksum`].

use std::net::Ipv4Addr;

use crate::checksum;
use crate::{check_len, read_u16, read_u32, write_u16, write_u32, Result, WireError};

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"); unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    pub const ICMP: Self = Self(1);
    pub const TCP: Self = Self(6);
    pub const UDP: Self = Self(17);
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        Self(v)
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> Self {
        v.0
    }
}

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Offset of the header checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking version, IHL and total length against it.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when the buffer is shorter than 20 bytes or the IHL,
    /// [`WireError::BadVersion`], [`WireError::BadIhl`], [`WireError::BadTotalLength`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_with(buffer, 0)
    }

    /// [`Ipv4Packet::new_checked`] for a packet that goes on for `beyond` bytes past
    /// `buffer` (the rest of an AF_XDP descriptor chain): the header must lie in
    /// `buffer`, the total length within `buffer.len() + beyond`.
    ///
    /// # Errors
    /// As [`Ipv4Packet::new_checked`].
    #[inline]
    pub fn new_checked_with(buffer: T, beyond: usize) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let have = p.buffer.as_ref().len();
        check_len(HEADER_LEN, have)?;
        if p.version() != 4 {
            return Err(WireError::BadVersion(p.version()));
        }
        if p.ihl() < 5 {
            return Err(WireError::BadIhl(p.ihl()));
        }
        let header_len = p.header_len();
        check_len(header_len, have)?;
        let total_len = p.total_len();
        if usize::from(total_len) < header_len || usize::from(total_len) > have + beyond {
            return Err(WireError::BadTotalLength {
                total_len,
                header_len,
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
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in 32-bit words.
    #[inline]
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// Whether the header carries options (IHL > 5).
    #[inline]
    pub fn has_options(&self) -> bool {
        self.ihl() > 5
    }

    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF)
    }

    /// Don't Fragment.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More Fragments.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment of a larger datagram (MF set or offset non-zero).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address in host order.
    #[inline]
    pub fn src_addr(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address in host order.
    #[inline]
    pub fn dst_addr(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::DST)
    }

    #[inline]
    pub fn src_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src_addr())
    }

    #[inline]
    pub fn dst_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst_addr())
    }

    /// The header bytes, options included (clamped to the buffer).
    #[inline]
    pub fn header(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..self.header_len().min(b.len())]
    }

    /// The options, empty without them.
    #[inline]
    pub fn options(&self) -> &[u8] {
        let h = self.header();
        &h[HEADER_LEN.min(h.len())..]
    }

    /// Whether the header checksum is right (the sum over the header folds to 0xffff).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.header(), 0)) == 0xffff
    }

    /// The header checksum the header should carry (computed with the field as zero).
    #[inline]
    pub fn compute_checksum(&self) -> u16 {
        let h = self.header();
        let s = checksum::sum(h, 0);
        // Take the current field out of the sum instead of copying the header.
        let cur = if h.len() >= HEADER_LEN {
            self.checksum()
        } else {
            0
        };
        !checksum::fold(s + u32::from(!cur))
    }

    /// The payload: from the end of the header to the total length (not to the end of
    /// the buffer, which may hold Ethernet padding). Clamped to the buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        let start = self.header_len().min(end);
        &b[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        debug_assert!(header_len % 4 == 0 && (20..=60).contains(&header_len));
        #[allow(clippy::cast_possible_truncation)]
        let ihl = (header_len / 4) as u8 & 0x0f;
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ihl;
    }

    #[inline]
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets DF, MF and the fragment offset (in bytes, a multiple of 8) at once.
    #[inline]
    pub fn set_flags_and_frag_offset(
        &mut self,
        dont_frag: bool,
        more_frags: bool,
        offset_bytes: u16,
    ) {
        let mut v = (offset_bytes >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        write_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    #[inline]
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.0;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_src_addr(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::SRC, v);
    }

    #[inline]
    pub fn set_dst_addr(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::DST, v);
    }

    /// Computes and writes the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header(), 0);
        self.set_checksum(c);
    }

    /// Sets the total length and patches the header checksum incrementally (RFC 1624
    /// eqn. 3) from the old length: how a precomputed header template (the VXLAN outer
    /// header) is finished per packet without summing the header again.
    #[inline]
    pub fn set_total_len_incremental(&mut self, v: u16) {
        let c = checksum::update_u16(self.checksum(), self.total_len(), v);
        self.set_total_len(v);
        self.set_checksum(c);
    }

    /// TTL − 1 with the RFC 1624 incremental checksum update, as a router forwards.
    /// Returns the new TTL. The caller checks `ttl() > 1` first; a TTL of 0 wraps to 255.
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl();
        let new = ttl.wrapping_sub(1);
        let proto = self.buffer.as_ref()[field::PROTOCOL];
        let old_word = u16::from_be_bytes([ttl, proto]);
        let new_word = u16::from_be_bytes([new, proto]);
        let c = checksum::update_u16(self.checksum(), old_word, new_word);
        self.set_ttl(new);
        self.set_checksum(c);
        new
    }

    /// The header bytes, writable (clamped to the buffer).
    #[inline]
    pub fn header_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        let b = self.buffer.as_mut();
        let h = h.min(b.len());
        &mut b[..h]
    }

    /// The payload up to the total length, writable (clamped to the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        let t = usize::from(self.total_len());
        let b = self.buffer.as_mut();
        let end = t.min(b.len());
        let start = h.min(end);
        &mut b[start..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.1.2 -> 10.0.2.3, ICMP, TTL 64, DF, id 0x1c46, total 28, 2 bytes of padding.
    const PACKET: [u8; 30] = [
        0x45, 0x00, 0x00, 0x1c, // v4, IHL 5, total 28
        0x1c, 0x46, 0x40, 0x00, // id, DF
        0x40, 0x01, 0x07, 0x97, // TTL 64, ICMP, checksum
        0x0a, 0x00, 0x01, 0x02, //
        0x0a, 0x00, 0x02, 0x03, //
        0x08, 0x00, 0xf7, 0xfe, 0x00, 0x01, 0x00, 0x00, // 8 bytes of ICMP
        0x00, 0x00, // padding beyond total length
    ];

    #[test]
    fn parse() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert!(!p.has_options());
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::ICMP);
        assert_eq!(p.src_ip(), Ipv4Addr::new(10, 0, 1, 2));
        assert_eq!(p.dst_addr(), 0x0a00_0203);
        assert!(p.verify_checksum());
        assert_eq!(p.compute_checksum(), 0x0797);
        assert_eq!(p.payload(), &PACKET[20..28]);
        assert!(p.options().is_empty());
    }

    #[test]
    fn build() {
        let mut buf = [0u8; 30];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version_and_header_len(20);
        p.set_dscp_ecn(0, 0);
        p.set_total_len(28);
        p.set_ident(0x1c46);
        p.set_flags_and_frag_offset(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(IpProtocol::ICMP);
        p.set_src_addr(0x0a00_0102);
        p.set_dst_addr(0x0a00_0203);
        p.payload_mut().copy_from_slice(&PACKET[20..28]);
        p.fill_checksum();
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn options_and_fragments() {
        // IHL 6 with a 4-byte option (NOP NOP NOP EOL), MF set, offset 185*8.
        let mut b = [
            0x46, 0x00, 0x00, 0x18, 0x00, 0x01, 0x20, 0xb9, 0x40, 0x11, 0x00, 0x00, 0xc6, 0x12,
            0x00, 0x01, 0xc6, 0x12, 0x00, 0x02, 0x01, 0x01, 0x01, 0x00,
        ];
        Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.has_options());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 185 * 8);
        assert!(p.is_fragment());
        assert!(p.verify_checksum());
        assert!(p.payload().is_empty());
    }

    #[test]
    fn errors() {
        assert_eq!(
            Ipv4Packet::new_checked(&PACKET[..19]).unwrap_err(),
            WireError::Truncated { need: 20, have: 19 }
        );
        let mut b = PACKET;
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadVersion(6)
        );
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadIhl(4)
        );
        b[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated { need: 60, have: 30 }
        );
        b[0] = 0x45;
        b[3] = 31;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadTotalLength {
                total_len: 31,
                header_len: 20,
                buffer_len: 30
            }
        );
        b[3] = 19;
        assert!(matches!(
            Ipv4Packet::new_checked(&b[..]),
            Err(WireError::BadTotalLength { .. })
        ));
        let mut c = PACKET;
        c[10] ^= 1;
        assert!(!Ipv4Packet::new_checked(&c[..]).unwrap().verify_checksum());
    }

    #[test]
    fn set_total_len_incremental() {
        let mut b = PACKET;
        Ipv4Packet::new_unchecked(&mut b[..]).set_total_len_incremental(1500);
        // Total 0x05dc, checksum 0x01d7 (summed word by word over the new header).
        let expect: [u8; 20] = [
            0x45, 0x00, 0x05, 0xdc, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x01, 0xd7, 0x0a, 0x00,
            0x01, 0x02, 0x0a, 0x00, 0x02, 0x03,
        ];
        assert_eq!(b[..20], expect);
        assert_eq!(b[20..], PACKET[20..]);
        let p = Ipv4Packet::new_unchecked(&b[..20]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut b = PACKET;
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        for expect in (1..64).rev() {
            assert_eq!(p.decrement_ttl(), expect);
            assert!(p.verify_checksum());
            assert_eq!(p.checksum(), p.compute_checksum());
        }
    }
}
