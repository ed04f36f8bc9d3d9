//! podfwd's AF_XDP layer: the kernel ABI through `libc`, one module per kernel concept
//! (as s2n-quic-xdp does). All of the project's `unsafe` lives here.
//!
//! - [`if_xdp`]: constants and structs of `linux/if_xdp.h`.
//! - [`umem`]: the UMEM area, its free list and frame ownership.
//! - [`registration`]: the UMEM's kernel registration shared by its sockets
//!   (`XDP_UMEM_REG`, `XDP_SHARED_UMEM`): bind mode, need_wakeup, live fds.
//! - [`ring`]: producer/consumer rings shared with the kernel.
//! - [`socket`]: an XSK bound to an interface queue, with its rings.
//! - [`accounting`]: where a UMEM's frames are, across its sockets' rings.
//! - [`stats`]: kernel and userspace counters.
//! - [`tx_metadata`]: checksum offload requests in front of TX frames (Linux 6.11+).
//! - [`xdp_attach`]: attaching XDP programs through bpf_links, querying and detaching
//!   them (used by the `bpf` crate, so that its code needs no `unsafe`).
//! - `syscall`, `mmap`: the raw calls, private.
//!
//! Dependencies run one way: `if_xdp`, `syscall`, `mmap` at the bottom; `registration`;
//! `umem` and `ring`; `socket` (on `umem`); `accounting` (on both). `umem` knows nothing
//! of sockets.
//!
//! Usage of one worker: create a [`Umem`], then one [`XskSocket`] per interface queue
//! (the first registers the UMEM, the rest share it); loop: [`XskSocket::fill`],
//! [`XskSocket::rx_batch`], rewrite frames with [`Umem::chunk_mut`],
//! [`XskSocket::tx_push`] + [`XskSocket::kick_tx`], [`XskSocket::complete`].
//! Keep the `Umem` alive longer than its sockets. When a socket's device goes away
//! (an interface deleted or re-created), [`XskSocket::reclaim_dead`] takes the frames
//! left on its rings back to the free list before it is dropped.
//!
//! Frame ownership is checked (see [`umem`]): only frames the caller holds (from
//! `rx_batch` or [`Umem::alloc_frame`], not yet pushed to TX or freed) can be accessed
//! with `chunk_mut`/`chunk`, pushed to TX or freed; anything else panics or is refused,
//! so safe code never touches memory the kernel may be writing.

pub mod accounting;
pub mod error;
pub mod if_xdp;
mod mmap;
pub mod registration;
pub mod ring;
pub mod socket;
pub mod stats;
mod syscall;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tx_metadata;
pub mod umem;
pub mod xdp_attach;

pub use accounting::FrameAccounting;
pub use error::XskError;
pub use if_xdp::XdpDesc;
pub use registration::BindMode;
pub use socket::{BusyPoll, RingOccupancy, SocketConfig, StillBound, XskSocket, MAX_CHAIN};
pub use stats::{WakeupCounters, XdpStatistics};
pub use tx_metadata::TxMetadata;
pub use umem::{MultiBuffer, Umem, UmemConfig};

// Workers are spawned with their UMEM and sockets moved in.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Umem>();
    assert_send::<XskSocket>();
};
