//! IPv4 longest-prefix match: a DIR-16-8-8 multibit trie (the layout of VPP's
//! `src/vnet/ip/ip4_mtrie.h`).
//!
//! Contract: [`Lpm::build`] turns a list of `(prefix, value)` into an immutable table;
//! [`Lpm::lookup`] returns the value of the longest prefix containing the address in at
//! most three dependent loads, whatever the number of prefixes. Values are small indices
//! (into an adjacency array), at most 31 bits wide: the top bit tags leaves.
//!
//! Layout: a 65,536-entry root table indexed by the top 16 address bits, and 256-entry
//! plies indexed by the next 8 bits, allocated only where a prefix longer than /16 (then
//! /24) exists. Every entry is one `u32`:
//!
//! * `LEAF | value` — a route, found;
//! * anything else — the index of the ply to descend into. Ply 0 is an all-zero ply, so
//!   "no route" is just index 0: a miss descends through ply 0 and ends on a 0, with no
//!   extra branch on the hot path. Level-3 plies hold only leaves and zeros.
//!
//! Build is controlled prefix expansion: prefixes are inserted shortest first, each one
//! overwriting the range of slots it covers at its level, so a longer prefix always wins
//! over the shorter ones already written. A new ply starts as 256 copies of the slot it
//! replaces, which pushes the shorter covering route down into it. Because every
//! prefix ending at a level is inserted before any prefix that creates a ply below it,
//! a leaf write never lands on a child pointer.

use std::fmt;

use ipnet::Ipv4Net;

/// Tag bit of a leaf entry; the low 31 bits are the value.
const LEAF: u32 = 1 << 31;
/// Largest value a route can carry.
const MAX_VALUE: u32 = LEAF - 1;
/// Entries of one ply (8 address bits).
const PLY_LEN: usize = 256;
/// Entries of the root table (16 address bits).
const ROOT_LEN: usize = 1 << 16;

type Ply = [u32; PLY_LEN];

/// Errors of [`Lpm::build`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum LpmError {
    /// A route value used the top bit, which the table reserves to tag leaves.
    #[error(
        "route value {0} is too large: LPM values must be below 2^31 ({limit}); \
         use a smaller index into the adjacency table",
        limit = LEAF
    )]
    ValueTooLarge(u32),
    /// More intermediate tables than a 31-bit index can address (needs > 2^30 prefixes).
    #[error(
        "LPM needs more than 2^31 - 1 intermediate tables; split the route set or \
         aggregate prefixes longer than /16"
    )]
    TooManyTables,
}

/// An immutable IPv4 longest-prefix-match table. See the [module docs](self).
#[derive(Clone)]
pub struct Lpm {
    /// Indexed by `addr >> 16`; the array type lets the compiler drop the bounds check.
    root: Box<[u32; ROOT_LEN]>,
    /// Level-2 and level-3 plies, indexed by the non-leaf entries. `plies[0]` is all zero.
    plies: Vec<Ply>,
    /// Number of distinct prefixes.
    len: usize,
}

impl Lpm {
    /// Builds a table from `(prefix, value)` pairs.
    ///
    /// Host bits of a prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`). When the same
    /// prefix appears more than once the last entry wins. Every `value` must be below
    /// 2^31; the top bit is reserved by the encoding.
    pub fn build(entries: &[(Ipv4Net, u32)]) -> Result<Lpm, LpmError> {
        let mut routes: Vec<(u8, u32, u32)> = Vec::with_capacity(entries.len());
        for (net, value) in entries {
            if *value > MAX_VALUE {
                return Err(LpmError::ValueTooLarge(*value));
            }
            routes.push((net.prefix_len(), u32::from(net.network()), *value));
        }
        // Stable: among equal prefixes the input order survives, so the last one is the
        // last of its run.
        routes.sort_by_key(|&(len, addr, _)| (len, addr));
        routes.dedup_by(|later, earlier| {
            let same = (later.0, later.1) == (earlier.0, earlier.1);
            if same {
                earlier.2 = later.2;
            }
            same
        });

        let mut lpm = Lpm {
            root: vec![0u32; ROOT_LEN]
                .into_boxed_slice()
                .try_into()
                .expect("vector has ROOT_LEN entries"),
            plies: vec![[0; PLY_LEN]],
            len: routes.len(),
        };
        for &(len, addr, value) in &routes {
            lpm.insert(addr, len, LEAF | value)?;
        }
        // Doubling may leave up to half the ply vector unused; large blocks are mmapped,
        // so giving the tail back is cheap.
        lpm.plies.shrink_to_fit();
        Ok(lpm)
    }

    /// Writes `leaf` over every slot `addr/len` covers, shortest prefixes first.
    fn insert(&mut self, addr: u32, len: u8, leaf: u32) -> Result<(), LpmError> {
        let hi = (addr >> 16) as usize;
        if len <= 16 {
            let span = 1usize << (16 - len);
            self.root[hi..hi + span].fill(leaf);
            return Ok(());
        }
        let l2 = self.child(Slot::Root(hi))?;
        #[allow(clippy::cast_possible_truncation)] // the third octet: the truncation is the point
        let mid = usize::from((addr >> 8) as u8);
        if len <= 24 {
            let span = 1usize << (24 - len);
            self.plies[l2][mid..mid + span].fill(leaf);
            return Ok(());
        }
        let l3 = self.child(Slot::Ply(l2, mid))?;
        #[allow(clippy::cast_possible_truncation)] // the last octet: the truncation is the point
        let lo = usize::from(addr as u8);
        let span = 1usize << (32 - len);
        self.plies[l3][lo..lo + span].fill(leaf);
        Ok(())
    }

    /// The ply below `slot`, created (filled with the slot's current entry, a leaf or
    /// zero) if the slot does not point to one yet.
    fn child(&mut self, slot: Slot) -> Result<usize, LpmError> {
        let entry = match slot {
            Slot::Root(i) => self.root[i],
            Slot::Ply(p, i) => self.plies[p][i],
        };
        if entry & LEAF == 0 && entry != 0 {
            return Ok(entry as usize);
        }
        let index = u32::try_from(self.plies.len())
            .ok()
            .filter(|&i| i < LEAF)
            .ok_or(LpmError::TooManyTables)?;
        self.plies.push([entry; PLY_LEN]);
        match slot {
            Slot::Root(i) => self.root[i] = index,
            Slot::Ply(p, i) => self.plies[p][i] = index,
        }
        Ok(index as usize)
    }

    /// The value of the longest prefix containing `addr` (host byte order).
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // `as u8` takes the third and last octet
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let mut e = self.root[(addr >> 16) as usize];
        if e & LEAF == 0 {
            e = self.plies[e as usize][usize::from((addr >> 8) as u8)];
            if e & LEAF == 0 {
                e = self.plies[e as usize][usize::from(addr as u8)];
            }
        }
        if e & LEAF != 0 {
            Some(e & MAX_VALUE)
        } else {
            None
        }
    }

    /// Number of distinct prefixes in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap and inline bytes the table occupies (root table + plies + header).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of::<[u32; ROOT_LEN]>()
            + self.plies.capacity() * std::mem::size_of::<Ply>()
    }
}

/// Where a child pointer lives during build.
#[derive(Clone, Copy)]
enum Slot {
    Root(usize),
    Ply(usize, usize),
}

impl fmt::Debug for Lpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm")
            .field("len", &self.len)
            .field("plies", &(self.plies.len() - 1))
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    fn build(routes: &[(&str, u32)]) -> Lpm {
        let entries: Vec<_> = routes.iter().map(|&(n, v)| (net(n), v)).collect();
        Lpm::build(&entries).unwrap()
    }

    #[test]
    fn empty_table_misses_everything() {
        let lpm = Lpm::build(&[]).unwrap();
        assert!(lpm.is_empty());
        assert_eq!(lpm.len(), 0);
        for a in [0, 1, 0x0a00_0001, u32::MAX] {
            assert_eq!(lpm.lookup(a), None);
        }
    }

    #[test]
    fn default_route_matches_everything() {
        let lpm = build(&[("0.0.0.0/0", 7)]);
        for a in [0, 1, 0x0a00_0001, 0x8000_0000, u32::MAX] {
            assert_eq!(lpm.lookup(a), Some(7));
        }
    }

    #[test]
    fn nested_prefixes_longest_wins() {
        // Given out of order on purpose: build must sort by length.
        let lpm = build(&[
            ("10.1.1.128/32", 32),
            ("10.1.1.0/24", 24),
            ("10.0.0.0/8", 8),
            ("10.1.1.128/25", 25),
            ("0.0.0.0/0", 0),
            ("10.1.0.0/16", 16),
            ("10.1.0.0/17", 17),
        ]);
        assert_eq!(lpm.len(), 7);
        assert_eq!(lpm.lookup(ip("11.0.0.0")), Some(0));
        assert_eq!(lpm.lookup(ip("10.200.0.1")), Some(8));
        assert_eq!(lpm.lookup(ip("10.1.200.1")), Some(16));
        assert_eq!(lpm.lookup(ip("10.1.2.3")), Some(17));
        assert_eq!(lpm.lookup(ip("10.1.1.1")), Some(24));
        assert_eq!(lpm.lookup(ip("10.1.1.127")), Some(24));
        assert_eq!(lpm.lookup(ip("10.1.1.129")), Some(25));
        assert_eq!(lpm.lookup(ip("10.1.1.255")), Some(25));
        assert_eq!(lpm.lookup(ip("10.1.1.128")), Some(32));
    }

    #[test]
    fn short_prefix_pushed_into_plies() {
        // The /8 is written before the /32 creates plies under 10.0/16 and 10.0.0/24;
        // the rest of those plies must still say /8, the rest of the space nothing.
        let lpm = build(&[("10.0.0.0/8", 1), ("10.0.0.5/32", 2)]);
        assert_eq!(lpm.lookup(ip("10.0.0.4")), Some(1));
        assert_eq!(lpm.lookup(ip("10.0.0.5")), Some(2));
        assert_eq!(lpm.lookup(ip("10.0.0.6")), Some(1));
        assert_eq!(lpm.lookup(ip("10.0.1.5")), Some(1));
        assert_eq!(lpm.lookup(ip("10.1.0.5")), Some(1));
        assert_eq!(lpm.lookup(ip("11.0.0.5")), None);
        assert_eq!(lpm.lookup(ip("9.255.255.255")), None);
    }

    #[test]
    fn host_routes_without_cover() {
        let lpm = build(&[
            ("10.0.0.5/32", 5),
            ("10.0.0.6/32", 6),
            ("192.168.1.1/32", 9),
        ]);
        assert_eq!(lpm.lookup(ip("10.0.0.4")), None);
        assert_eq!(lpm.lookup(ip("10.0.0.5")), Some(5));
        assert_eq!(lpm.lookup(ip("10.0.0.6")), Some(6));
        assert_eq!(lpm.lookup(ip("10.0.0.7")), None);
        assert_eq!(lpm.lookup(ip("192.168.1.1")), Some(9));
        assert_eq!(lpm.lookup(ip("192.168.1.0")), None);
        assert_eq!(lpm.lookup(ip("192.168.0.1")), None);
    }

    #[test]
    fn extreme_host_routes() {
        let lpm = build(&[("0.0.0.0/32", 1), ("255.255.255.255/32", 2)]);
        assert_eq!(lpm.lookup(0), Some(1));
        assert_eq!(lpm.lookup(1), None);
        assert_eq!(lpm.lookup(u32::MAX), Some(2));
        assert_eq!(lpm.lookup(u32::MAX - 1), None);
    }

    #[test]
    fn duplicate_prefix_last_wins() {
        let lpm = build(&[("10.0.0.0/16", 1), ("10.0.0.0/24", 5), ("10.0.0.0/16", 2)]);
        assert_eq!(lpm.len(), 2);
        assert_eq!(lpm.lookup(ip("10.0.1.1")), Some(2));
        assert_eq!(lpm.lookup(ip("10.0.0.1")), Some(5));
        // Host bits are ignored, so these are the same prefix too.
        let lpm = build(&[("10.0.0.0/8", 1), ("10.9.9.9/8", 3)]);
        assert_eq!(lpm.len(), 1);
        assert_eq!(lpm.lookup(ip("10.0.0.0")), Some(3));
    }

    #[test]
    fn prefix_boundaries() {
        for (p, first, last) in [
            ("10.0.0.0/8", "10.0.0.0", "10.255.255.255"),
            ("10.4.0.0/14", "10.4.0.0", "10.7.255.255"),
            ("10.1.0.0/16", "10.1.0.0", "10.1.255.255"),
            ("10.1.128.0/17", "10.1.128.0", "10.1.255.255"),
            ("10.1.2.0/23", "10.1.2.0", "10.1.3.255"),
            ("10.1.2.0/24", "10.1.2.0", "10.1.2.255"),
            ("10.1.2.128/25", "10.1.2.128", "10.1.2.255"),
            ("10.1.2.4/30", "10.1.2.4", "10.1.2.7"),
        ] {
            let lpm = build(&[(p, 42)]);
            let (first, last) = (ip(first), ip(last));
            assert_eq!(lpm.lookup(first), Some(42), "{p} first");
            assert_eq!(lpm.lookup(last), Some(42), "{p} last");
            assert_eq!(lpm.lookup(first - 1), None, "{p} before first");
            assert_eq!(lpm.lookup(last + 1), None, "{p} after last");
        }
    }

    #[test]
    fn value_limit() {
        let lpm = build(&[("10.0.0.0/8", MAX_VALUE), ("10.0.0.0/24", 0)]);
        assert_eq!(lpm.lookup(ip("10.1.0.0")), Some(0x7fff_ffff));
        assert_eq!(lpm.lookup(ip("10.0.0.1")), Some(0));
        let err = Lpm::build(&[(net("10.0.0.0/8"), 1 << 31)]).unwrap_err();
        assert_eq!(err, LpmError::ValueTooLarge(0x8000_0000));
        assert!(err.to_string().contains("2147483648"), "{err}");
        assert!(matches!(
            Lpm::build(&[(net("10.0.0.0/8"), u32::MAX)]),
            Err(LpmError::ValueTooLarge(u32::MAX))
        ));
    }

    #[test]
    fn memory_grows_only_with_long_prefixes() {
        let base = Lpm::build(&[]).unwrap().memory_bytes();
        assert!(base >= 256 * 1024);
        let short = build(&[("10.0.0.0/8", 1), ("10.1.0.0/16", 2)]);
        assert_eq!(short.plies.len(), 1);
        let long = build(&[("10.1.2.3/32", 1)]);
        assert_eq!(long.plies.len(), 3);
        assert!(long.memory_bytes() > base);
        let dbg = format!("{long:?}");
        assert!(dbg.contains("len: 1") && dbg.contains("plies: 2"), "{dbg}");
    }

    #[test]
    fn is_send_sync() {
        fn check<T: Send + Sync + fmt::Debug>() {}
        check::<Lpm>();
    }
}
