//! Builds an `Lpm` from fuzzer-chosen prefixes and compares every lookup with a linear
//! scan. Input: a count byte, then 9 bytes per prefix (addr u32 BE, len byte, value u32
//! LE), the rest is probe addresses (u32 BE). Prefix edges are always probed too.
#![no_main]

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use libfuzzer_sys::fuzz_target;
use route::{Lpm, LpmError};

fn reference(entries: &[(Ipv4Net, u32)], addr: u32) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for (net, value) in entries {
        let mask = u32::from(net.netmask());
        if addr & mask == u32::from(net.network())
            && best.is_none_or(|(l, _)| net.prefix_len() >= l)
        {
            best = Some((net.prefix_len(), *value));
        }
    }
    best.map(|(_, v)| v)
}

fuzz_target!(|data: &[u8]| {
    let Some((&count, mut rest)) = data.split_first() else {
        return;
    };
    let mut entries = Vec::new();
    for _ in 0..count {
        let Some((chunk, tail)) = rest.split_first_chunk::<9>() else {
            break;
        };
        rest = tail;
        let addr = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let len = chunk[4] % 33;
        let value = u32::from_le_bytes([chunk[5], chunk[6], chunk[7], chunk[8]]);
        entries.push((Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap(), value));
    }

    let lpm = match Lpm::build(&entries) {
        Ok(lpm) => lpm,
        Err(LpmError::ValueTooLarge(v)) => {
            assert!(v >= 1 << 31);
            assert!(entries.iter().any(|&(_, value)| value == v));
            // Clear the top bits and check the table that must then build.
            for e in &mut entries {
                e.1 &= (1 << 31) - 1;
            }
            Lpm::build(&entries).expect("all values below 2^31")
        }
        Err(e) => panic!("unexpected build error: {e}"),
    };

    let mut probes: Vec<u32> = rest
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for (net, _) in &entries {
        let (first, last) = (u32::from(net.network()), u32::from(net.broadcast()));
        probes.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1)]);
    }
    for addr in probes {
        assert_eq!(
            lpm.lookup(addr),
            reference(&entries, addr),
            "addr {}",
            Ipv4Addr::from(addr)
        );
    }
});
