//! Kernel and userspace counters of one socket.

/// `getsockopt(XDP_STATISTICS)`: the kernel's per-socket drop counters. Fields a kernel
/// does not report (before 5.9 only the first three exist) read as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpStatistics {
    /// Dropped for other reasons (e.g. frame too big for the chunk).
    pub rx_dropped: u64,
    /// RX descriptors the kernel found invalid.
    pub rx_invalid_descs: u64,
    /// TX descriptors the kernel found invalid (address outside the UMEM, length
    /// beyond the chunk): the kernel skips them and they never appear on the completion
    /// ring, so such a frame is lost to the free list (see `FrameAccounting`).
    pub tx_invalid_descs: u64,
    /// Dropped because the RX ring was full (userspace too slow).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (userspace did not refill).
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty when woken.
    pub tx_ring_empty_descs: u64,
}

impl From<crate::if_xdp::xdp_statistics> for XdpStatistics {
    fn from(s: crate::if_xdp::xdp_statistics) -> Self {
        XdpStatistics {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        }
    }
}

/// Outcomes of wake-up syscalls on one socket, counted by the socket (never reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WakeupCounters {
    /// `sendto` calls made by [`crate::XskSocket::kick_tx`].
    pub tx_kicks: u64,
    /// `recvfrom` calls made by [`crate::XskSocket::wakeup_rx`].
    pub rx_wakeups: u64,
    /// Returned EAGAIN: the kernel stopped early (copy mode sends at most 32 frames per
    /// call, or the TX path was busy) — call again while frames remain in the TX ring.
    pub eagain: u64,
    /// Returned EBUSY: another thread was in the TX path.
    pub ebusy: u64,
    /// Returned ENOBUFS: the completion ring or the device queue was full — drain
    /// completions.
    pub enobufs: u64,
    /// Returned ENETDOWN: the interface is down.
    pub enetdown: u64,
}
