//! A remote node's next hops: every usable hop of the FIB route to its IP, and the
//! small table that spreads flows over the resolved ones by weight.
//!
//! The pipeline picks a hop per frame from its flow hash (the hash whose bits 32..45
//! also make the VXLAN source port): the hash's top six bits index [`HOP_SLOTS`] slots,
//! each holding a resolved hop. So one flow always takes one hop, flows spread in
//! proportion to the weights, and the choice costs one load from a 64-byte table.
//! A node with one resolved hop skips the table (and the hash, in native mode).

use std::net::Ipv4Addr;

use wire::ethernet::Mac;

use crate::snapshot::OuterHeader;

/// Most next hops a node keeps: the first `MAX_NEXT_HOPS` usable hops of its FIB route,
/// in the FIB's order (Linux allows more in one multipath route; further ones are not
/// used). Eight hops keep the slot table's shares within 1/64 of the weights.
pub const MAX_NEXT_HOPS: usize = 8;

/// Slots of a node's hop table: a flow takes slot [`hop_slot`] of its flow hash.
pub const HOP_SLOTS: usize = 64;

/// The slot of a flow hash: its top six bits (independent of the bits 32..45 that make
/// the VXLAN source port, so the hop taken and the source port do not correlate).
#[inline]
#[must_use]
pub fn hop_slot(flow_hash: u64) -> usize {
    #[allow(clippy::cast_possible_truncation)] // 6 bits
    let slot = (flow_hash >> 58) as usize;
    slot
}

/// One next hop toward a remote node, as the control side found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// The address whose MAC frames go to: a gateway, or the node itself on-link.
    pub via: Ipv4Addr,
    /// Multipath weight (Linux: 1..=256); 1 for a single-path route. 0 is taken as 1.
    pub weight: u16,
    /// Its MAC, from the kernel's neighbour table; `None` while unresolved.
    pub mac: Option<Mac>,
}

/// A resolved next hop as frames use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedHop {
    /// Its index in [`NextHops::all`].
    pub index: u8,
    /// Destination MAC of a natively routed frame through it.
    pub mac: Mac,
    /// The VXLAN outer header toward the node through it.
    pub outer: OuterHeader,
}

/// A node's next hops: all of them (for status), the resolved ones (for frames) and the
/// slot table over the resolved ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHops {
    all: Vec<NextHop>,
    resolved: Vec<ResolvedHop>,
    /// Per slot, an index into `resolved` (all 0 unless two or more are resolved).
    slots: [u8; HOP_SLOTS],
}

impl NextHops {
    /// The first [`MAX_NEXT_HOPS`] of `hops`; `outer` makes the outer header through a
    /// resolved hop's MAC. Slots go to the resolved hops only, in proportion to their
    /// weights, at least one each, as contiguous runs in the hops' order.
    pub(crate) fn new(hops: &[NextHop], outer: impl Fn(Mac) -> OuterHeader) -> NextHops {
        let all: Vec<NextHop> = hops.iter().take(MAX_NEXT_HOPS).copied().collect();
        let resolved: Vec<ResolvedHop> = all
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let mac = h.mac?;
                Some(ResolvedHop {
                    index: u8::try_from(i).unwrap_or(u8::MAX),
                    mac,
                    outer: outer(mac),
                })
            })
            .collect();
        let weights: Vec<u16> = resolved
            .iter()
            .map(|r| all[usize::from(r.index)].weight.max(1))
            .collect();
        NextHops {
            slots: fill_slots(&weights),
            all,
            resolved,
        }
    }

    /// Every next hop kept, in the FIB's order.
    #[must_use]
    pub fn all(&self) -> &[NextHop] {
        &self.all
    }

    /// The resolved next hops, in the FIB's order.
    #[must_use]
    pub fn resolved(&self) -> &[ResolvedHop] {
        &self.resolved
    }

    /// How many of the [`HOP_SLOTS`] slots hop `index` (of [`NextHops::all`]) holds: 0
    /// while it is unresolved.
    #[must_use]
    pub fn slots_of(&self, index: usize) -> usize {
        let Some(r) = self
            .resolved
            .iter()
            .position(|r| usize::from(r.index) == index)
        else {
            return 0;
        };
        match self.resolved.len() {
            1 => HOP_SLOTS,
            _ => self.slots.iter().filter(|&&s| usize::from(s) == r).count(),
        }
    }

    /// The hop a frame takes: `None` while no hop is resolved, the only resolved one
    /// without calling `flow_hash`, else the one in slot [`hop_slot`] of the flow hash.
    #[inline]
    pub fn pick(&self, flow_hash: impl FnOnce() -> u64) -> Option<&ResolvedHop> {
        match self.resolved.as_slice() {
            [] => None,
            [one] => Some(one),
            many => {
                let slot = self.slots[hop_slot(flow_hash()) % HOP_SLOTS];
                many.get(usize::from(slot))
            }
        }
    }
}

/// The slot table for hops of `weights` (at most [`MAX_NEXT_HOPS`]): hop `i` gets about
/// `weights[i] / sum × 64` slots (largest remainder, at least one), as contiguous runs
/// in order, so a hop that goes away moves only its own flows and its neighbours' runs
/// grow over them.
fn fill_slots(weights: &[u16]) -> [u8; HOP_SLOTS] {
    let mut table = [0u8; HOP_SLOTS];
    let n = weights.len().min(MAX_NEXT_HOPS);
    if n < 2 {
        return table;
    }
    let w: Vec<i64> = weights[..n].iter().map(|&w| i64::from(w.max(1))).collect();
    let total: i64 = w.iter().sum();
    let slots = HOP_SLOTS as i64;
    // Shares scaled by `total`: hop i is owed w[i] * 64, holds count[i] * total.
    let mut count: Vec<i64> = w.iter().map(|&wi| (wi * slots / total).max(1)).collect();
    let owed = |i: usize, c: i64| w[i] * slots - c * total;
    while count.iter().sum::<i64>() > slots {
        // Over-full (minimums pushed it): take from the hop holding most beyond its share.
        let i = (0..n)
            .filter(|&i| count[i] > 1)
            .min_by_key(|&i| owed(i, count[i]))
            .unwrap_or(0);
        count[i] -= 1;
    }
    while count.iter().sum::<i64>() < slots {
        // Under-full: give to the hop owed most (the first of equals).
        let i = (0..n).rev().max_by_key(|&i| owed(i, count[i])).unwrap_or(0);
        count[i] += 1;
    }
    let mut at = 0;
    for (i, &c) in count.iter().enumerate() {
        for s in &mut table[at..at + usize::try_from(c).unwrap_or(0)] {
            *s = u8::try_from(i).unwrap_or(0);
        }
        at += usize::try_from(c).unwrap_or(0);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(table: &[u8; HOP_SLOTS], n: usize) -> Vec<usize> {
        (0..n)
            .map(|i| table.iter().filter(|&&s| usize::from(s) == i).count())
            .collect()
    }

    #[test]
    fn slots_follow_the_weights() {
        assert_eq!(counts(&fill_slots(&[1, 1]), 2), [32, 32]);
        assert_eq!(counts(&fill_slots(&[1, 3]), 2), [16, 48]);
        assert_eq!(counts(&fill_slots(&[1, 1, 1]), 3), [22, 21, 21]);
        assert_eq!(counts(&fill_slots(&[2, 1, 1]), 3), [32, 16, 16]);
        // Linux's extremes: weight 256 against seven of weight 1 still uses every hop.
        let c = counts(&fill_slots(&[256, 1, 1, 1, 1, 1, 1, 1]), 8);
        assert_eq!(c, [57, 1, 1, 1, 1, 1, 1, 1]);
        // 0 is taken as 1.
        assert_eq!(counts(&fill_slots(&[0, 1]), 2), [32, 32]);
    }

    #[test]
    fn slots_are_contiguous_runs_in_order() {
        let t = fill_slots(&[1, 3]);
        assert!(t[..16].iter().all(|&s| s == 0) && t[16..].iter().all(|&s| s == 1));
    }

    #[test]
    fn slot_is_the_top_six_bits() {
        assert_eq!(hop_slot(0), 0);
        assert_eq!(hop_slot(u64::MAX), 63);
        assert_eq!(hop_slot(1 << 58), 1);
        assert_eq!(hop_slot((1 << 58) - 1), 0, "bits below 58 do not matter");
    }
}
