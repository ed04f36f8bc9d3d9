//! Ethernet II frames (IEEE 802.3 §3.1.1) with one optional IEEE 802.1Q tag.
//!
//! A tagged frame carries TPID 0x8100 (or 0x88a8, 802.1ad S-tag) where the EtherType
//! would be, then the 16-bit TCI, then the real EtherType; the payload starts at 18
//! instead of 14. [`EthernetFrame::ethertype`] returns the EtherType after the tag,
//! [`EthernetFrame::vlan`] the VLAN ID of the tag. Stacked tags are not unwrapped: the
//! EtherType after the first tag of a Q-in-Q frame reads 0x8100.

use core::fmt;

use crate::{check_len, read_u16, write_u16, Result};

/// A MAC address, as it sits on the wire.
pub type Mac = [u8; 6];

/// ff:ff:ff:ff:ff:ff.
pub const BROADCAST: Mac = [0xff; 6];

/// Whether `mac` is the broadcast address.
#[inline]
#[must_use]
pub fn mac_is_broadcast(mac: &Mac) -> bool {
    *mac == BROADCAST
}

/// Whether `mac` is a group address (I/G bit set): multicast or broadcast.
#[inline]
#[must_use]
pub fn mac_is_multicast(mac: &Mac) -> bool {
    mac[0] & 0x01 != 0
}

/// Whether `mac` is a unicast address other than all-zeroes.
#[inline]
#[must_use]
pub fn mac_is_unicast(mac: &Mac) -> bool {
    !mac_is_multicast(mac) && *mac != [0; 6]
}

/// Parses `aa:bb:cc:dd:ee:ff`: six two-digit hex bytes (either case) separated by `:`,
/// as `ip link`, sysfs `address` and `/proc/net/arp` print them and the config takes them.
#[must_use]
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff` (what [`parse_mac`] reads back).
#[must_use]
pub fn fmt_mac(mac: &Mac) -> String {
    MacDisplay(mac).to_string()
}

/// Displays a MAC as `aa:bb:cc:dd:ee:ff`, without allocating.
#[derive(Debug, Clone, Copy)]
pub struct MacDisplay<'a>(pub &'a Mac);

impl fmt::Display for MacDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An EtherType value; unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: Self = Self(0x0800);
    pub const ARP: Self = Self(0x0806);
    /// IEEE 802.1Q customer tag TPID.
    pub const VLAN: Self = Self(0x8100);
    /// IEEE 802.1ad service tag TPID (Q-in-Q outer tag).
    pub const QINQ: Self = Self(0x88a8);
    pub const IPV6: Self = Self(0x86dd);

    /// Whether this value is a VLAN tag protocol identifier.
    #[inline]
    #[must_use]
    pub fn is_vlan_tpid(self) -> bool {
        self == Self::VLAN || self == Self::QINQ
    }
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        Self(v)
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> Self {
        v.0
    }
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of an Ethernet header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking its length.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking it holds the whole header (18 bytes when tagged).
    ///
    /// # Errors
    /// [`WireError::Truncated`](crate::WireError::Truncated) when the buffer is shorter
    /// than the header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        let have = f.buffer.as_ref().len();
        check_len(HEADER_LEN, have)?;
        check_len(f.header_len(), have)?;
        Ok(f)
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst_addr(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        m
    }

    #[inline]
    pub fn src_addr(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        m
    }

    /// The EtherType (or TPID) right after the addresses, at offset 12.
    #[inline]
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Whether the frame carries an 802.1Q/802.1ad tag.
    #[inline]
    pub fn is_tagged(&self) -> bool {
        self.outer_ethertype().is_vlan_tpid()
    }

    /// The VLAN ID (12 bits) of the tag, if the frame is tagged.
    #[inline]
    pub fn vlan(&self) -> Option<u16> {
        self.tci().map(|t| t & 0x0fff)
    }

    /// The whole tag control information (PCP, DEI, VID), if the frame is tagged.
    #[inline]
    pub fn tci(&self) -> Option<u16> {
        self.is_tagged()
            .then(|| read_u16(self.buffer.as_ref(), field::TCI))
    }

    /// The EtherType of the payload: after the tag when tagged.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        if self.is_tagged() {
            EtherType(read_u16(self.buffer.as_ref(), field::INNER_ETHERTYPE))
        } else {
            self.outer_ethertype()
        }
    }

    /// 14, or 18 when tagged.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len().min(b.len())..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, mac: Mac) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_src_addr(&mut self, mac: Mac) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }

    /// Sets the EtherType that [`Self::ethertype`] reads (after the tag when tagged).
    ///
    /// On a frame created with `new_checked` this cannot make the frame tagged: writing a
    /// TPID into an untagged frame would move the payload, so build tagged frames with
    /// [`Self::set_outer_ethertype`] + [`Self::set_tci`] on a long enough buffer.
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        let at = if self.is_tagged() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        write_u16(self.buffer.as_mut(), at, t.0);
    }

    /// Writes offset 12 directly (a TPID to build a tagged frame).
    #[inline]
    pub fn set_outer_ethertype(&mut self, t: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, t.0);
    }

    /// Writes the TCI at offset 14 (only meaningful on a tagged frame).
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        write_u16(self.buffer.as_mut(), field::TCI, tci);
    }

    /// Everything after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        let b = self.buffer.as_mut();
        let h = h.min(b.len());
        &mut b[h..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for EthernetFrame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 18] = [
        0x02, 0x00, 0x0a, 0x00, 0x01, 0x02, // dst
        0x02, 0x00, 0xc6, 0x12, 0x00, 0x01, // src
        0x08, 0x00, // IPv4
        0xde, 0xad, 0xbe, 0xef,
    ];

    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, //
        0x02, 0x00, 0xc6, 0x12, 0x00, 0x01, //
        0x81, 0x00, 0x20, 0x64, // PCP 1, VID 100
        0x08, 0x06, // ARP
        0xaa, 0xbb,
    ];

    #[test]
    fn parse_untagged() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), [0x02, 0x00, 0x0a, 0x00, 0x01, 0x02]);
        assert_eq!(f.src_addr(), [0x02, 0x00, 0xc6, 0x12, 0x00, 0x01]);
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert!(!f.is_tagged());
        assert_eq!(f.vlan(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn parse_tagged() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert!(mac_is_broadcast(&f.dst_addr()));
        assert!(f.is_tagged());
        assert_eq!(f.outer_ethertype(), EtherType::VLAN);
        assert_eq!(f.vlan(), Some(100));
        assert_eq!(f.tci(), Some(0x2064));
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn build_untagged() {
        let mut buf = [0u8; 18];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr([0x02, 0x00, 0x0a, 0x00, 0x01, 0x02]);
        f.set_src_addr([0x02, 0x00, 0xc6, 0x12, 0x00, 0x01]);
        f.set_ethertype(EtherType::IPV4);
        f.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(buf, UNTAGGED);
    }

    #[test]
    fn build_tagged() {
        let mut buf = [0u8; 20];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(BROADCAST);
        f.set_src_addr([0x02, 0x00, 0xc6, 0x12, 0x00, 0x01]);
        f.set_outer_ethertype(EtherType::VLAN);
        f.set_tci(0x2064);
        f.set_ethertype(EtherType::ARP);
        f.payload_mut().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!(buf, TAGGED);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            crate::WireError::Truncated { need: 14, have: 13 }
        );
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED[..17]).unwrap_err(),
            crate::WireError::Truncated { need: 18, have: 17 }
        );
        assert!(EthernetFrame::new_checked(&UNTAGGED[..14])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn mac_helpers() {
        assert!(mac_is_multicast(&[0x01, 0x00, 0x5e, 0, 0, 1]));
        assert!(mac_is_multicast(&BROADCAST));
        assert!(mac_is_unicast(&[0x02, 0, 0, 0, 0, 1]));
        assert!(!mac_is_unicast(&[0; 6]));
        assert_eq!(
            parse_mac("02:00:0a:00:01:02"),
            Some([0x02, 0x00, 0x0a, 0x00, 0x01, 0x02])
        );
        assert_eq!(
            parse_mac("02:FE:C6:12:00:0A"),
            Some([0x02, 0xfe, 0xc6, 0x12, 0x00, 0x0a])
        );
        // Only `:`-separated two-digit bytes: what the config has always accepted.
        for bad in [
            "02-00-0a-00-01-02",
            "2:0:a:0:1:2",
            "02:00:0a:00:01",
            "02:00:0a:00:01:02:03",
            "02:00:0a:00:01:02:",
            "02:00:0a:00:01:+2",
            "zz:00:0a:00:01:02",
            " 02:00:0a:00:01:02",
            "",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
        let mac = [0x02, 0x00, 0x0a, 0x00, 0x01, 0xff];
        assert_eq!(MacDisplay(&mac).to_string(), "02:00:0a:00:01:ff");
        assert_eq!(fmt_mac(&mac), "02:00:0a:00:01:ff");
        assert_eq!(parse_mac(&fmt_mac(&mac)), Some(mac));
    }
}
