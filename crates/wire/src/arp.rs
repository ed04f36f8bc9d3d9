//! ARP packets (RFC 826) for Ethernet hardware and IPv4 protocol addresses only: a
//! fixed 28-byte layout. podfwd never answers ARP itself (the kernel does, XDP passes it
//! on), but the view lets the XDP steering tests and tools build and check ARP frames.

use std::net::Ipv4Addr;

use crate::ethernet::Mac;
use crate::{check_len, read_u16, read_u32, write_u16, write_u32, Result, WireError};

mod field {
    use core::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: usize = 14;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: usize = 24;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

/// ARP operation codes; unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpOperation(pub u16);

impl ArpOperation {
    pub const REQUEST: Self = Self(1);
    pub const REPLY: Self = Self(2);
}

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking it holds 28 bytes of Ethernet/IPv4 ARP.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::UnsupportedArp`] for other address types.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        check_len(PACKET_LEN, p.buffer.as_ref().len())?;
        let (htype, ptype, hlen, plen) = (
            p.hardware_type(),
            p.protocol_type(),
            p.hardware_len(),
            p.protocol_len(),
        );
        if htype != HTYPE_ETHERNET || ptype != PTYPE_IPV4 || hlen != 6 || plen != 4 {
            return Err(WireError::UnsupportedArp {
                htype,
                ptype,
                hlen,
                plen,
            });
        }
        Ok(p)
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    #[inline]
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    #[inline]
    pub fn operation(&self) -> ArpOperation {
        ArpOperation(read_u16(self.buffer.as_ref(), field::OPER))
    }

    #[inline]
    pub fn sender_hw_addr(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SHA]);
        m
    }

    #[inline]
    pub fn sender_proto_addr(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SPA)
    }

    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.sender_proto_addr())
    }

    #[inline]
    pub fn target_hw_addr(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::THA]);
        m
    }

    #[inline]
    pub fn target_proto_addr(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::TPA)
    }

    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.target_proto_addr())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes hardware type 1 (Ethernet), protocol 0x0800, lengths 6 and 4.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE, HTYPE_ETHERNET);
        write_u16(b, field::PTYPE, PTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    #[inline]
    pub fn set_operation(&mut self, op: ArpOperation) {
        write_u16(self.buffer.as_mut(), field::OPER, op.0);
    }

    #[inline]
    pub fn set_sender_hw_addr(&mut self, mac: Mac) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_sender_proto_addr(&mut self, ip: u32) {
        write_u32(self.buffer.as_mut(), field::SPA, ip);
    }

    #[inline]
    pub fn set_target_hw_addr(&mut self, mac: Mac) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_target_proto_addr(&mut self, ip: u32) {
        write_u32(self.buffer.as_mut(), field::TPA, ip);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for ArpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 169.254.1.1? Tell 10.0.1.2 (a pod asking for its gateway).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
        0x02, 0x00, 0x0a, 0x00, 0x01, 0x02, 0x0a, 0x00, 0x01, 0x02, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa9, 0xfe, 0x01, 0x01, // target
    ];

    #[test]
    fn parse() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.operation(), ArpOperation::REQUEST);
        assert_eq!(p.sender_hw_addr(), [0x02, 0x00, 0x0a, 0x00, 0x01, 0x02]);
        assert_eq!(p.sender_ip(), Ipv4Addr::new(10, 0, 1, 2));
        assert_eq!(p.target_hw_addr(), [0; 6]);
        assert_eq!(p.target_ip(), Ipv4Addr::new(169, 254, 1, 1));
    }

    #[test]
    fn build() {
        let mut b = [0xffu8; 28];
        let mut p = ArpPacket::new_unchecked(&mut b[..]);
        p.set_ethernet_ipv4();
        p.set_operation(ArpOperation::REQUEST);
        p.set_sender_hw_addr([0x02, 0x00, 0x0a, 0x00, 0x01, 0x02]);
        p.set_sender_proto_addr(0x0a00_0102);
        p.set_target_hw_addr([0; 6]);
        p.set_target_proto_addr(u32::from(Ipv4Addr::new(169, 254, 1, 1)));
        assert_eq!(b, REQUEST);
    }

    #[test]
    fn errors() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            WireError::Truncated { need: 28, have: 27 }
        );
        let mut b = REQUEST;
        b[3] = 0xdd; // IPv6 protocol type
        assert_eq!(
            ArpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::UnsupportedArp {
                htype: 1,
                ptype: 0x08dd,
                hlen: 6,
                plen: 4
            }
        );
    }
}
