//! `Lpm` against a linear-scan reference, over random prefix sets built to nest and
//! collide (few bases, random spread), probed at every prefix's edges and at random.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use proptest::prelude::*;
use route::{Lpm, LpmError};

/// The obvious answer: the longest matching prefix, the last one among duplicates.
fn reference(entries: &[(Ipv4Net, u32)], addr: u32) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for (net, value) in entries {
        let len = net.prefix_len();
        let mask = u32::from(net.netmask());
        if addr & mask == u32::from(net.network()) && best.is_none_or(|(l, _)| len >= l) {
            best = Some((len, *value));
        }
    }
    best.map(|(_, v)| v)
}

const BASES: [u32; 6] = [
    0x0a00_0000, // 10.0.0.0
    0x0a01_0200, // 10.1.2.0
    0x0a01_02ff, // 10.1.2.255
    0x0000_0000,
    0xffff_ffff,
    0xc0a8_0101, // 192.168.1.1
];

fn prefix() -> impl Strategy<Value = (Ipv4Net, u32)> {
    (
        0..BASES.len(),
        any::<u32>(),
        0u32..=32,
        0u8..=32,
        0u32..(1 << 31),
    )
        .prop_map(|(base, bits, spread, len, value)| {
            let addr = BASES[base] ^ bits.checked_shr(spread).unwrap_or(0);
            (Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap(), value)
        })
}

fn probes(entries: &[(Ipv4Net, u32)], random: &[u32]) -> Vec<u32> {
    let mut out = vec![0, 1, u32::MAX, u32::MAX - 1];
    out.extend_from_slice(random);
    for (net, _) in entries {
        let first = u32::from(net.network());
        let last = u32::from(net.broadcast());
        out.extend([
            first,
            last,
            first.wrapping_sub(1),
            last.wrapping_add(1),
            first | (u32::from(net.hostmask()) >> 1),
        ]);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_linear_scan(
        entries in prop::collection::vec(prefix(), 0..80),
        random in prop::collection::vec(any::<u32>(), 0..64),
    ) {
        let lpm = Lpm::build(&entries).unwrap();
        let distinct: std::collections::HashSet<_> =
            entries.iter().map(|(n, _)| n.trunc()).collect();
        prop_assert_eq!(lpm.len(), distinct.len());
        prop_assert_eq!(lpm.is_empty(), entries.is_empty());
        for addr in probes(&entries, &random) {
            prop_assert_eq!(
                lpm.lookup(addr),
                reference(&entries, addr),
                "addr {} in {:?}", Ipv4Addr::from(addr), entries
            );
        }
    }

    #[test]
    fn rejects_any_value_with_top_bit(
        entries in prop::collection::vec(prefix(), 0..8),
        bad in (1u32 << 31)..=u32::MAX,
        at in any::<prop::sample::Index>(),
    ) {
        let mut entries = entries;
        let net: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        entries.insert(at.index(entries.len() + 1), (net, bad));
        prop_assert!(matches!(Lpm::build(&entries), Err(LpmError::ValueTooLarge(v)) if v == bad));
    }
}
