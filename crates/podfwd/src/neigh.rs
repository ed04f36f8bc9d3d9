//! Next-hop and pod MACs from the kernel's neighbour table.
//!
//! podfwd never runs ARP itself: it reads the kernel's IPv4 neighbour table
//! (`/proc/net/arp`, the same entries `ip neigh` shows) and, for an address that is
//! missing, makes the kernel resolve it by sending one UDP datagram to the discard port;
//! the control thread retries every second until the entry appears. Frames that need a
//! MAC meanwhile are dropped and counted as `no_neighbour`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use wire::ethernet::parse_mac;

/// ATF_COM: the entry is complete (linux/if_arp.h).
const ATF_COM: u32 = 0x02;

/// Complete IPv4 neighbour entries: (address, device) → MAC.
pub type NeighTable = HashMap<(Ipv4Addr, String), [u8; 6]>;

/// Parse the text of `/proc/net/arp`, keeping complete entries only.
#[must_use]
pub fn parse_proc_arp(text: &str) -> NeighTable {
    let mut out = NeighTable::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let (Ok(ip), Some(flags), Some(mac)) = (
            f[0].parse::<Ipv4Addr>(),
            u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok(),
            parse_mac(f[3]),
        ) else {
            continue;
        };
        if flags & ATF_COM == 0 || mac == [0; 6] {
            continue;
        }
        out.insert((ip, f[5].to_owned()), mac);
    }
    out
}

/// Read the kernel's neighbour table for this network namespace.
#[must_use]
pub fn read() -> NeighTable {
    std::fs::read_to_string("/proc/net/arp")
        .map(|t| parse_proc_arp(&t))
        .unwrap_or_default()
}

/// Ask the kernel to resolve `ip` by sending it one empty UDP datagram (port 9, discard).
pub fn trigger(ip: Ipv4Addr) {
    if let Ok(sock) = UdpSocket::bind("0.0.0.0:0") {
        let _ = sock.send_to(&[], SocketAddrV4::new(ip, 9));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_complete_entries_only() {
        let text =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
                    198.18.0.2       0x1         0x2         02:aa:bb:cc:dd:ee     *        eth0\n\
                    198.18.0.3       0x1         0x0         00:00:00:00:00:00     *        eth0\n\
                    10.0.1.2         0x1         0x2         02:00:0a:00:01:02     *        lxc0\n\
                    garbage line\n";
        let t = parse_proc_arp(text);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[&(Ipv4Addr::new(198, 18, 0, 2), "eth0".to_owned())],
            [2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]
        );
        assert_eq!(
            t[&(Ipv4Addr::new(10, 0, 1, 2), "lxc0".to_owned())],
            [2, 0, 10, 0, 1, 2]
        );
    }
}
