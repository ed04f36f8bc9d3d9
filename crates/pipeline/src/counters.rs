//! Per-worker counters: written only by their worker, summed by the scraper.

use crate::verdict::{Action, DropReason, Verdict};

/// One worker's counters. Aligned to a cache line so two workers' counters never share
/// one. Only go up; never reset.
#[repr(C, align(64))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Transmitted frames per [`Action`], indexed by `action as usize`.
    pub actions: [u64; Action::COUNT],
    /// Dropped frames per [`DropReason`], indexed by `reason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Frames that were not podfwd's ([`Verdict::Pass`]).
    pub passed: u64,
    /// Partial (offloaded) TCP/UDP checksums completed in software.
    pub csum_completed: u64,
    /// Partial TCP/UDP checksums left partial, with a request that the kernel complete
    /// them on transmit ([`crate::Frame::csum`]).
    pub csum_offloaded: u64,
    /// Times a pod MAC was learned or changed.
    pub macs_learned: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    /// All zero.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            actions: [0; Action::COUNT],
            drops: [0; DropReason::COUNT],
            passed: 0,
            csum_completed: 0,
            csum_offloaded: 0,
            macs_learned: 0,
        }
    }

    /// Counts one verdict.
    #[inline]
    pub fn record(&mut self, v: &Verdict) {
        match *v {
            Verdict::Tx { action, .. } => self.actions[action as usize] += 1,
            Verdict::Drop(r) => self.drops[r as usize] += 1,
            Verdict::Pass => self.passed += 1,
        }
    }

    /// Frames transmitted with `a`.
    #[must_use]
    pub fn action(&self, a: Action) -> u64 {
        self.actions[a as usize]
    }

    /// Frames dropped for `r`.
    #[must_use]
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// Every frame that got a verdict.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.actions.iter().sum::<u64>() + self.drops.iter().sum::<u64>() + self.passed
    }

    /// Adds `other` into `self` (summing workers at scrape time).
    pub fn add(&mut self, other: &Counters) {
        for (a, b) in self.actions.iter_mut().zip(&other.actions) {
            *a += b;
        }
        for (a, b) in self.drops.iter_mut().zip(&other.drops) {
            *a += b;
        }
        self.passed += other.passed;
        self.csum_completed += other.csum_completed;
        self.csum_offloaded += other.csum_offloaded;
        self.macs_learned += other.macs_learned;
    }
}
