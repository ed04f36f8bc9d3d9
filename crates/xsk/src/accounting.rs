//! Frame accounting: where the frames of one UMEM are, as far as userspace can see (the
//! free list, the four rings of each socket on it, the caller's hands), and the check
//! that every frame is in exactly one place.
//!
//! It reads both a [`Umem`] and its [`XskSocket`]s, so it sits above both modules
//! (`umem` knows nothing of sockets); the methods stay on `Umem`.

use crate::socket::XskSocket;
use crate::umem::Umem;

impl Umem {
    /// Where every frame is, as far as userspace can see: the free list, the four rings
    /// of each socket (published `producer - consumer` read from the shared mappings),
    /// and `held_by_caller` (frames taken from RX or `alloc_frame` and not yet pushed to
    /// TX or freed). The remainder is held inside the kernel. Sockets must be on this
    /// UMEM.
    pub fn accounting(&self, sockets: &[&XskSocket], held_by_caller: usize) -> FrameAccounting {
        let mut a = FrameAccounting {
            frame_count: self.frame_count() as usize,
            free: self.free_frames(),
            held_by_caller,
            foreign_sockets: 0,
            ..FrameAccounting::default()
        };
        for s in sockets {
            if s.umem_id() != self.id() {
                a.foreign_sockets += 1;
                continue;
            }
            let o = s.ring_occupancy();
            a.fill += o.fill;
            a.rx += o.rx;
            a.tx += o.tx;
            a.completion += o.completion;
        }
        a
    }

    /// Checks that every frame is in exactly one place:
    /// free list + fill + RX + TX + completion rings + `held_by_caller` == frame_count.
    ///
    /// Exact only when the kernel holds no frame: no TX in flight between the TX and
    /// completion rings, and (zero-copy) no frames posted to the NIC. In copy mode this
    /// holds once traffic has stopped and completions have been drained of in-flight
    /// sends. While traffic runs, use [`Umem::accounting`] and its `kernel_held()`.
    pub fn check_accounting(
        &self,
        sockets: &[&XskSocket],
        held_by_caller: usize,
    ) -> Result<(), String> {
        let a = self.accounting(sockets, held_by_caller);
        if a.foreign_sockets > 0 {
            return Err(format!(
                "{} socket(s) passed are not on this UMEM; {a}",
                a.foreign_sockets
            ));
        }
        if a.visible() != a.frame_count {
            return Err(format!(
                "frame accounting mismatch: {} frames seen, {} exist ({}); {a}",
                a.visible(),
                a.frame_count,
                if a.visible() > a.frame_count {
                    "some frame is in two places"
                } else {
                    "frames leaked or held by the kernel"
                }
            ));
        }
        Ok(())
    }
}

/// Where the frames of one UMEM are (see [`Umem::accounting`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameAccounting {
    pub frame_count: usize,
    pub free: usize,
    pub fill: usize,
    pub rx: usize,
    pub tx: usize,
    pub completion: usize,
    pub held_by_caller: usize,
    /// Sockets passed in that are not on this UMEM (not counted).
    pub foreign_sockets: usize,
}

impl FrameAccounting {
    /// Frames userspace can see.
    pub fn visible(&self) -> usize {
        self.free + self.fill + self.rx + self.tx + self.completion + self.held_by_caller
    }

    /// `frame_count - visible`: frames inside the kernel (or leaked). Negative means a
    /// frame was counted twice, which is a bug (or a race with the kernel publishing a
    /// ring index).
    pub fn kernel_held(&self) -> isize {
        self.frame_count as isize - self.visible() as isize
    }
}

impl std::fmt::Display for FrameAccounting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "frames={} free={} fill={} rx={} tx={} completion={} caller={} kernel/unaccounted={}",
            self.frame_count,
            self.free,
            self.fill,
            self.rx,
            self.tx,
            self.completion,
            self.held_by_caller,
            self.kernel_held()
        )
    }
}
