//! One ethtool request over generic netlink: turn a device feature on or off
//! (`ETHTOOL_MSG_FEATURES_SET`, Documentation/networking/ethtool-netlink.rst), what
//! `ethtool -K DEV gro on` sends.
//!
//! The messages are built here by hand: the `ethtool` crate of rust-netlink (0.2) only
//! implements the GET requests, and on tokio; `netlink-packet-generic` would give the
//! generic netlink header but not the ethtool attributes. Both requests are short: a
//! `CTRL_CMD_GETFAMILY` for the family id of "ethtool", then one FEATURES_SET with the
//! device index and a one-bit bitset in the compact-by-name form (bit name plus a VALUE
//! flag when on; without `ETHTOOL_A_BITSET_NOMASK` the listed bits are the mask, so only
//! this feature changes).

use std::io;

use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

// include/uapi/linux/netlink.h, genetlink.h
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLA_F_NESTED: u16 = 1 << 15;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
// include/uapi/linux/ethtool_netlink_generated.h
const ETHTOOL_GENL_NAME: &str = "ethtool";
const ETHTOOL_GENL_VERSION: u8 = 1;
const ETHTOOL_MSG_FEATURES_SET: u8 = 12;
const ETHTOOL_A_HEADER_DEV_INDEX: u16 = 1;
const ETHTOOL_A_FEATURES_HEADER: u16 = 1;
const ETHTOOL_A_FEATURES_WANTED: u16 = 3;
const ETHTOOL_A_BITSET_BITS: u16 = 3;
const ETHTOOL_A_BITSET_BITS_BIT: u16 = 1;
const ETHTOOL_A_BITSET_BIT_NAME: u16 = 2;
const ETHTOOL_A_BITSET_BIT_VALUE: u16 = 3;

/// The feature name of GRO (net/ethtool/common.c `netdev_features_strings[NETIF_F_GRO_BIT]`).
pub const GRO: &str = "rx-gro";

/// A generic netlink socket and the ethtool family's id.
#[derive(Debug)]
pub struct Ethtool {
    sock: Socket,
    family: u16,
    seq: u32,
}

/// A netlink attribute: header, payload, padding to 4 bytes.
fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).expect("attribute fits 64 KiB");
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn nested(buf: &mut Vec<u8>, kind: u16, inner: impl FnOnce(&mut Vec<u8>)) {
    let mut b = Vec::new();
    inner(&mut b);
    attr(buf, kind | NLA_F_NESTED, &b);
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The attributes after a 4-byte genetlink header: (type without flags, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let kind = u16::from_ne_bytes([b[2], b[3]]) & !(NLA_F_NESTED | (1 << 14));
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, &b[4..len]));
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

impl Ethtool {
    /// A socket in the calling thread's network namespace, with the family resolved.
    ///
    /// # Errors
    /// The socket, or the kernel has no ethtool netlink family (before Linux 5.6).
    pub fn new() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let mut e = Self {
            sock,
            family: GENL_ID_CTRL,
            seq: 0,
        };
        let mut body = Vec::new();
        attr(&mut body, CTRL_ATTR_FAMILY_NAME, &cstr(ETHTOOL_GENL_NAME));
        let replies = e.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, &body)?;
        let id = replies
            .iter()
            .flat_map(|m| attrs(m.get(4..).unwrap_or_default()))
            .find(|(k, v)| *k == CTRL_ATTR_FAMILY_ID && v.len() >= 2)
            .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]));
        e.family = id.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel has no ethtool netlink family (Linux 5.6+)",
            )
        })?;
        Ok(e)
    }

    /// Turns feature `name` (e.g. [`GRO`]) of device `ifindex` on or off.
    ///
    /// # Errors
    /// The kernel's answer (e.g. EOPNOTSUPP for a feature the device cannot change).
    pub fn set_feature(&mut self, ifindex: u32, name: &str, on: bool) -> io::Result<()> {
        let mut body = Vec::new();
        nested(&mut body, ETHTOOL_A_FEATURES_HEADER, |b| {
            attr(b, ETHTOOL_A_HEADER_DEV_INDEX, &ifindex.to_ne_bytes());
        });
        nested(&mut body, ETHTOOL_A_FEATURES_WANTED, |b| {
            nested(b, ETHTOOL_A_BITSET_BITS, |b| {
                nested(b, ETHTOOL_A_BITSET_BITS_BIT, |b| {
                    attr(b, ETHTOOL_A_BITSET_BIT_NAME, &cstr(name));
                    if on {
                        attr(b, ETHTOOL_A_BITSET_BIT_VALUE, &[]);
                    }
                });
            });
        });
        let family = self.family;
        self.request(
            family,
            ETHTOOL_MSG_FEATURES_SET,
            ETHTOOL_GENL_VERSION,
            &body,
        )
        .map(drop)
    }

    /// Sends one request with NLM_F_ACK; returns the payloads (from the genetlink
    /// header on) of the answers before the ACK, or the error the kernel sent.
    fn request(
        &mut self,
        kind: u16,
        cmd: u8,
        version: u8,
        body: &[u8],
    ) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let len = u32::try_from(16 + 4 + body.len()).expect("request fits");
        let mut msg = Vec::with_capacity(len as usize);
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        msg.extend_from_slice(&[cmd, version, 0, 0]);
        msg.extend_from_slice(body);
        self.sock.send(&msg, 0)?;

        let mut out = Vec::new();
        let mut rx = vec![0u8; 65536];
        loop {
            let n = self.sock.recv(&mut &mut rx[..], 0)?;
            let mut b = &rx[..n];
            while b.len() >= 16 {
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let mtype = u16::from_ne_bytes([b[4], b[5]]);
                let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                if len < 16 || len > b.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "generic netlink: truncated message",
                    ));
                }
                let payload = &b[16..len];
                b = &b[len.next_multiple_of(4).min(b.len())..];
                if seq != self.seq {
                    continue;
                }
                if mtype == NLMSG_ERROR {
                    let code = payload
                        .get(..4)
                        .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                    return if code == 0 {
                        Ok(out)
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                out.push(payload.to_vec());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut b = Vec::new();
        nested(&mut b, ETHTOOL_A_FEATURES_WANTED, |b| {
            attr(b, ETHTOOL_A_BITSET_BIT_NAME, &cstr(GRO));
            attr(b, ETHTOOL_A_BITSET_BIT_VALUE, &[]);
        });
        // outer 4 + name (4 + 7 -> 12) + flag 4 = 20
        assert_eq!(b.len(), 20);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 20);
        assert_eq!(
            u16::from_ne_bytes([b[2], b[3]]),
            ETHTOOL_A_FEATURES_WANTED | NLA_F_NESTED
        );
        let inner = attrs(&b[4..]);
        assert_eq!(
            inner,
            vec![
                (ETHTOOL_A_BITSET_BIT_NAME, &b"rx-gro\0"[..]),
                (ETHTOOL_A_BITSET_BIT_VALUE, &[][..])
            ]
        );
    }
}
