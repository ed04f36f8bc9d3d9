//! One AF_XDP socket bound to an interface queue, with its four rings:
//! RX and TX (descriptors) and, because every podfwd socket sits on its own
//! interface+queue, its own fill and completion rings (frame addresses) on the shared
//! UMEM (`XDP_SHARED_UMEM`, Linux 5.10+ for a different interface or queue).
//!
//! Setup order follows `Documentation/networking/af_xdp.rst` and libxdp: socket →
//! `XDP_UMEM_REG` (first socket only) → ring sizes → `XDP_MMAP_OFFSETS` → mmap the rings
//! → bind → read back `XDP_OPTIONS`.
//!
//! Settings inherited through the shared UMEM: the kernel binds every socket that
//! shares a UMEM in the mode of the socket that registered it (copy or zero-copy) and
//! with its need_wakeup setting; it rejects explicit flags on a shared bind. So with a
//! UMEM shared between a zero-copy NIC queue and veths (copy only), register the UMEM
//! on a socket bound in [`BindMode::Copy`], or give the NIC its own UMEM.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use crate::error::XskError;
use crate::if_xdp::{self, sockaddr_xdp, xdp_mmap_offsets, XdpDesc};
use crate::mmap::Mmap;
pub use crate::registration::BindMode;
use crate::registration::Registry;
use crate::ring::{ConsumerRing, LayoutError, ProducerRing};
use crate::stats::{WakeupCounters, XdpStatistics};
use crate::syscall;
use crate::tx_metadata;
use crate::umem::{MultiBuffer, Umem, UmemConfig};

/// Most descriptors of one frame on a multi-buffer socket: copy-mode TX builds an skb
/// of the first in its linear part and one page fragment per further one, up to the
/// kernel's `MAX_SKB_FRAGS` (17 by default): 18 in all.
pub const MAX_CHAIN: usize = 18;

/// Busy-poll settings (`SO_BUSY_POLL`, `SO_BUSY_POLL_BUDGET`, `SO_PREFER_BUSY_POLL`).
/// Failures to set them are logged, not fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    pub usecs: u32,
    pub budget: u32,
    pub prefer: bool,
}

/// Where and how to bind one socket. Ring sizes come from the [`Umem`]'s config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketConfig {
    pub ifindex: u32,
    pub queue_id: u32,
    pub bind: BindMode,
    /// `XDP_USE_NEED_WAKEUP`: the kernel flags the fill/TX ring when it needs a syscall;
    /// without it every batch needs one.
    pub need_wakeup: bool,
    pub busy_poll: Option<BusyPoll>,
}

impl SocketConfig {
    /// Queue `queue_id` of `ifindex`, [`BindMode::Auto`], need_wakeup on, no busy poll.
    pub fn new(ifindex: u32, queue_id: u32) -> Self {
        SocketConfig {
            ifindex,
            queue_id,
            bind: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
        }
    }
}

/// Published occupancy of a socket's four rings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingOccupancy {
    pub fill: usize,
    pub rx: usize,
    pub tx: usize,
    pub completion: usize,
}

/// An AF_XDP socket and its mapped rings. Not `Sync`: one worker thread drives it.
/// Dropping it unmaps the rings and closes the fd; frames still in its rings are not
/// returned to the [`Umem`] (see [`XskSocket::reclaim_dead`] for a socket whose device
/// is gone).
#[derive(Debug)]
pub struct XskSocket {
    // Rings first: they are unmapped before the fd is closed.
    rx: Option<ConsumerRing<XdpDesc>>,
    tx: Option<ProducerRing<XdpDesc>>,
    fill: ProducerRing<u64>,
    comp: ConsumerRing<u64>,
    mode: BindMode,
    need_wakeup: bool,
    /// Bound with multi-buffer (its own `XDP_USE_SG`, or the shared UMEM's).
    multi_buffer: bool,
    ifindex: u32,
    queue_id: u32,
    umem_id: usize,
    pushed: u64,
    completed: u64,
    counters: Cell<WakeupCounters>,
    registry: Option<Arc<Mutex<Registry>>>,
    /// `None` for fake sockets (tests).
    fd: Option<OwnedFd>,
}

impl XskSocket {
    /// Creates a socket on `umem` bound to `cfg.ifindex`/`cfg.queue_id`.
    ///
    /// The first socket on a `Umem` registers it (`XDP_UMEM_REG`) and binds normally;
    /// later sockets bind with `XDP_SHARED_UMEM` and the fd of a live socket on the same
    /// `Umem`, each with its own fill and completion ring. Each socket must be on a
    /// different interface+queue (the kernel rejects a second socket on the same one
    /// with its own fill ring). A shared socket inherits mode and need_wakeup from the
    /// registering socket (see module docs): an explicit `bind` that contradicts it is
    /// an error, a different `need_wakeup` is logged and overridden.
    pub fn new(umem: &mut Umem, cfg: &SocketConfig) -> Result<XskSocket, XskError> {
        if cfg.ifindex == 0 {
            return Err(XskError::Config("ifindex 0 is not an interface".into()));
        }
        let (ifindex, queue_id) = (cfg.ifindex, cfg.queue_id);
        let registry = Arc::clone(&umem.registry);
        // Held across bind so the shared fd cannot be closed underneath us.
        let mut reg = registry.lock().unwrap_or_else(|p| p.into_inner());
        if reg.fake {
            return Err(XskError::Config(
                "this Umem has fake (xsk::testing) sockets; a real socket needs its own Umem"
                    .into(),
            ));
        }
        // Share the kernel's registration through a socket that is still bound: the
        // kernel refuses (EBADF) to share through one whose device is gone. If none is
        // (every socket's device went away), this socket registers the area again.
        let shared_fd = reg.fds.iter().copied().find(|&f| !is_unbound(f));

        let fd = syscall::xdp_socket().map_err(|source| XskError::Socket { source })?;
        let plan = match shared_fd {
            None => {
                let (plan, md_len) = register_umem(&fd, umem, cfg)?;
                umem.set_tx_metadata_len(md_len);
                plan
            }
            Some(sfd) => share_umem(&reg, sfd, cfg)?,
        };
        set_ring_sizes(&fd, umem.config(), cfg)?;
        let rings = map_rings(&fd, umem.config(), cfg)?;
        let multi_buffer = match bind(&fd, cfg, plan.flags, shared_fd, plan.mode_desc.clone()) {
            Ok(()) => plan.multi_buffer,
            // A kernel before 6.6 does not know the flag (EINVAL), a zero-copy driver
            // may not do multi-buffer (EOPNOTSUPP): bind without it where it was only
            // wanted if possible.
            Err(XskError::Bind { source, .. })
                if plan.flags & if_xdp::XDP_USE_SG != 0
                    && umem.config().multi_buffer == MultiBuffer::Auto
                    && matches!(source.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) =>
            {
                log::info!(
                    "AF_XDP socket for ifindex {ifindex} queue {queue_id}: multi-buffer                      (XDP_USE_SG) refused ({source}); frames larger than one UMEM frame                      will be dropped"
                );
                bind(
                    &fd,
                    cfg,
                    plan.flags & !if_xdp::XDP_USE_SG,
                    shared_fd,
                    plan.mode_desc,
                )?;
                false
            }
            Err(e) => return Err(e),
        };
        let mode = bound_mode(&fd);

        let raw = fd.as_raw_fd();
        if shared_fd.is_none() {
            reg.mode = Some(mode);
            reg.need_wakeup = plan.need_wakeup;
            reg.multi_buffer = multi_buffer;
        }
        reg.fds.push(raw);
        reg.real = true;
        drop(reg);

        if let Some(bp) = cfg.busy_poll {
            set_busy_poll(&fd, ifindex, queue_id, &bp);
        }
        log::debug!("AF_XDP socket fd {raw} bound to ifindex {ifindex} queue {queue_id} in {mode}");

        Ok(XskSocket {
            rx: rings.rx,
            tx: rings.tx,
            fill: rings.fill,
            comp: rings.comp,
            mode,
            need_wakeup: plan.need_wakeup,
            multi_buffer,
            ifindex,
            queue_id,
            umem_id: umem.id(),
            pushed: 0,
            completed: 0,
            counters: Cell::new(WakeupCounters::default()),
            registry: Some(registry),
            fd: Some(fd),
        })
    }

    /// A socket over fake rings (no fd), for tests. Panics if a real socket was ever
    /// created on `umem` (the fake kernel accesses frames without ownership checks).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn fake(
        umem: &Umem,
        need_wakeup: bool,
        rx: Option<ConsumerRing<XdpDesc>>,
        tx: Option<ProducerRing<XdpDesc>>,
        fill: ProducerRing<u64>,
        comp: ConsumerRing<u64>,
    ) -> XskSocket {
        {
            let mut reg = umem.registry.lock().unwrap_or_else(|p| p.into_inner());
            assert!(
                !reg.real,
                "fake sockets need a Umem no real socket was created on"
            );
            reg.fake = true;
        }
        XskSocket {
            rx,
            tx,
            fill,
            comp,
            mode: BindMode::Copy,
            need_wakeup,
            multi_buffer: umem.config().multi_buffer != MultiBuffer::Off,
            ifindex: 0,
            queue_id: 0,
            umem_id: umem.id(),
            pushed: 0,
            completed: 0,
            counters: Cell::new(WakeupCounters::default()),
            registry: None,
            fd: None,
        }
    }

    /// The socket fd (for poll/epoll and XSKMAP insertion); -1 for a fake socket.
    pub fn fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// The mode actually obtained: [`BindMode::Copy`] or [`BindMode::ZeroCopy`].
    pub fn bound_mode(&self) -> BindMode {
        self.mode
    }

    /// Whether the socket receives and sends descriptor chains (multi-buffer,
    /// `XDP_USE_SG`, possibly inherited from the shared UMEM's first socket). A fake
    /// socket has it when its UMEM's config asks for it.
    pub fn multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// Whether the socket was bound with `XDP_USE_NEED_WAKEUP` (possibly inherited).
    pub fn need_wakeup_enabled(&self) -> bool {
        self.need_wakeup
    }

    pub(crate) fn umem_id(&self) -> usize {
        self.umem_id
    }

    fn check_umem(&self, umem: &Umem) {
        debug_assert_eq!(
            self.umem_id,
            umem.id(),
            "socket on ifindex {} queue {} used with a Umem it is not bound to",
            self.ifindex,
            self.queue_id
        );
    }

    // ---- fill ring ----

    /// Moves up to `max` frames from the free list into the fill ring; returns how many.
    pub fn fill(&mut self, umem: &mut Umem, max: usize) -> usize {
        self.check_umem(umem);
        let room = self.fill.free(u32::try_from(max).unwrap_or(u32::MAX)) as usize;
        let fill = &mut self.fill;
        umem.give_frames(max.min(room), |addrs| fill.push_slice(addrs))
    }

    /// Frames on the fill ring the kernel has not taken yet (parked for RX).
    pub fn fill_parked(&self) -> usize {
        self.fill.occupancy() as usize
    }

    /// True if the kernel asked for a syscall ([`XskSocket::wakeup_rx`]) to process the
    /// fill ring; always true when need_wakeup is off.
    pub fn fill_needs_wakeup(&self) -> bool {
        !self.need_wakeup || self.fill.needs_wakeup()
    }

    // ---- RX ring ----

    /// Consumes up to `max` received descriptors, appending them to `out` (it is not
    /// cleared), and releases their ring slots; returns how many were appended. The
    /// frames are now caller-owned (see [`crate::umem`]): rewrite them with
    /// [`Umem::chunk_mut`], then push them to a TX ring or give them back with
    /// [`Umem::free_frame`]. `umem` must be the one the socket is bound to.
    ///
    /// A descriptor whose address is outside the UMEM (the kernel never produces one)
    /// is dropped; debug builds panic on it.
    ///
    /// On a multi-buffer socket a frame may be a chain of descriptors, all but the last
    /// with [`if_xdp::XDP_PKT_CONTD`]: the batch ends with a whole chain (a chain cut by
    /// `max` stays on the ring for the next call; `max` must exceed the longest chain,
    /// [`MAX_CHAIN`]).
    pub fn rx_batch(&mut self, umem: &mut Umem, out: &mut Vec<XdpDesc>, max: usize) -> usize {
        self.check_umem(umem);
        let Some(rx) = &mut self.rx else { return 0 };
        let before = out.len();
        out.reserve(max.min(rx.size() as usize));
        let max = if self.multi_buffer {
            rx.whole_chains(max, |d| d.options & if_xdp::XDP_PKT_CONTD != 0)
        } else {
            max
        };
        rx.consume_with(max, |d| {
            if umem.claim_received(d.addr) {
                out.push(d);
            }
        });
        out.len() - before
    }

    /// Descriptors waiting in the RX ring.
    pub fn rx_pending(&self) -> usize {
        self.rx.as_ref().map_or(0, |r| r.pending() as usize)
    }

    // ---- TX ring ----

    /// Free TX ring slots.
    pub fn tx_free(&self) -> usize {
        self.tx.as_ref().map_or(0, |r| r.free_now() as usize)
    }

    /// Produces a prefix of `descs` into the TX ring, in order, and returns its length
    /// `n`; the frames of `descs[..n]` now belong to the kernel (no longer caller-owned),
    /// those of `descs[n..]` stay the caller's. The prefix ends where the ring is full or
    /// at the first descriptor whose frame is not caller-owned (see [`crate::umem`]:
    /// not from [`XskSocket::rx_batch`]/[`Umem::alloc_frame`], already pushed or freed,
    /// outside the UMEM, or a second descriptor for a frame earlier in `descs`) or that
    /// the kernel would refuse for its TX metadata (see [`crate::tx_metadata`]: data
    /// inside the metadata room, or `XDP_TX_METADATA` on a UMEM without metadata), which
    /// is never pushed. `umem` must be the one the socket is bound to. Call
    /// [`XskSocket::kick_tx`] when [`XskSocket::tx_needs_wakeup`] says so.
    ///
    /// Descriptor chains (all but the last descriptor of a frame with
    /// [`if_xdp::XDP_PKT_CONTD`], on a multi-buffer socket) go whole or not at all: the
    /// prefix ends with a chain's last descriptor, so the kernel never holds half a
    /// frame. On a socket without multi-buffer a chained descriptor ends the prefix (the
    /// kernel would refuse it).
    pub fn tx_push(&mut self, umem: &mut Umem, descs: &[XdpDesc]) -> usize {
        self.check_umem(umem);
        let Some(tx) = &mut self.tx else { return 0 };
        let room = tx.free(u32::try_from(descs.len()).unwrap_or(u32::MAX)) as usize;
        let want = &descs[..descs.len().min(room)];
        let contd = |d: &XdpDesc| d.options & if_xdp::XDP_PKT_CONTD != 0;
        let mb = self.multi_buffer;
        // Whole chains only: cut after the last descriptor that ends a frame.
        let whole = match want.last() {
            Some(d) if contd(d) => want.iter().rposition(|d| !contd(d)).map_or(0, |i| i + 1),
            _ => want.len(),
        };
        let want = &want[..whole];
        // Give up ownership as we go, so a frame appearing twice stops the batch.
        let ok = want
            .iter()
            .position(|d| {
                (!mb && contd(d)) || !umem.tx_metadata_ok(d) || !umem.release_owned(d.addr)
            })
            .unwrap_or(want.len());
        // A frame refused halfway through its chain: none of it goes.
        let ok = if ok < want.len() && ok > 0 && contd(&want[ok - 1]) {
            let start = want[..ok]
                .iter()
                .rposition(|d| !contd(d))
                .map_or(0, |i| i + 1);
            for d in &want[start..ok] {
                umem.reclaim_owned(d.addr);
            }
            start
        } else {
            ok
        };
        let n = tx.push_slice(&want[..ok]);
        for d in &want[n..ok] {
            umem.reclaim_owned(d.addr);
        }
        self.pushed += n as u64;
        n
    }

    /// Descriptors in the TX ring not yet taken by the kernel.
    pub fn tx_queued(&self) -> usize {
        self.tx.as_ref().map_or(0, |r| r.occupancy() as usize)
    }

    /// Frames pushed to TX and not yet returned by [`XskSocket::complete`]
    /// (TX ring + in flight in the kernel + completion ring).
    pub fn tx_outstanding(&self) -> usize {
        // At most the frames of the UMEM (a u32 count); saturate rather than wrap.
        usize::try_from(self.pushed.wrapping_sub(self.completed)).unwrap_or(usize::MAX)
    }

    /// True if the kernel needs a `sendto` to process the TX ring; always true when
    /// need_wakeup is off. In copy mode the kernel always sets it.
    pub fn tx_needs_wakeup(&self) -> bool {
        match &self.tx {
            Some(tx) => !self.need_wakeup || tx.needs_wakeup(),
            None => false,
        }
    }

    /// `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`. EAGAIN, EBUSY, ENOBUFS and ENETDOWN
    /// are counted ([`XskSocket::wakeup_counters`]) and return `Ok`. In copy mode one
    /// call sends at most 32 frames (the kernel's `TX_BATCH_SIZE`), returning EAGAIN if
    /// more remain: kick again while [`XskSocket::tx_queued`] is non-zero.
    pub fn kick_tx(&self) -> Result<(), XskError> {
        self.bump(|c| c.tx_kicks += 1);
        let Some(fd) = &self.fd else { return Ok(()) };
        match syscall::sendto_kick(fd.as_raw_fd()) {
            Ok(()) => Ok(()),
            Err(e) => self.transient_or(e, "sendto (TX kick)"),
        }
    }

    /// `recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)`: wakes the kernel to process
    /// the fill ring (and runs a busy-poll round if busy polling is on). Transient
    /// errnos as in [`XskSocket::kick_tx`].
    pub fn wakeup_rx(&self) -> Result<(), XskError> {
        self.bump(|c| c.rx_wakeups += 1);
        let Some(fd) = &self.fd else { return Ok(()) };
        match syscall::recvfrom_wakeup(fd.as_raw_fd()) {
            Ok(()) => Ok(()),
            Err(e) => self.transient_or(e, "recvfrom (RX wakeup)"),
        }
    }

    fn bump(&self, f: impl FnOnce(&mut WakeupCounters)) {
        let mut c = self.counters.get();
        f(&mut c);
        self.counters.set(c);
    }

    fn transient_or(&self, e: io::Error, op: &'static str) -> Result<(), XskError> {
        match e.raw_os_error() {
            Some(libc::EAGAIN) => self.bump(|c| c.eagain += 1),
            Some(libc::EBUSY) => self.bump(|c| c.ebusy += 1),
            Some(libc::ENOBUFS) => self.bump(|c| c.enobufs += 1),
            Some(libc::ENETDOWN) => self.bump(|c| c.enetdown += 1),
            _ => {
                return Err(XskError::Wakeup {
                    op,
                    fd: self.fd(),
                    source: e,
                })
            }
        }
        Ok(())
    }

    /// Counts of wake-up syscalls and their transient failures.
    pub fn wakeup_counters(&self) -> WakeupCounters {
        self.counters.get()
    }

    // ---- completion ring ----

    /// Moves up to `max` completed TX frames back to the free list; returns how many.
    pub fn complete(&mut self, umem: &mut Umem, max: usize) -> usize {
        self.check_umem(umem);
        let n = self
            .comp
            .consume_with(max, |addr| umem.free_completed(addr));
        self.completed += n as u64;
        n
    }

    /// Let one TX wakeup send up to `frames` frames in copy mode
    /// (`XDP_MAX_TX_SKB_BUDGET`, Linux 6.17+; the kernel default is 32 and the maximum is
    /// the TX ring size). Fewer `sendto` calls per frame is most of what copy mode costs.
    ///
    /// # Errors
    /// `XskError::SockOpt` when the kernel does not have the option (older than 6.17) or
    /// refuses the value; the socket keeps working with the default budget.
    pub fn set_tx_budget(&self, frames: u32) -> Result<(), XskError> {
        let Some(fd) = &self.fd else { return Ok(()) };
        let v = libc::c_int::try_from(frames).unwrap_or(libc::c_int::MAX);
        syscall::setsockopt(fd, if_xdp::SOL_XDP, if_xdp::XDP_MAX_TX_SKB_BUDGET, &v).map_err(
            |source| XskError::SockOpt {
                opt: "XDP_MAX_TX_SKB_BUDGET",
                ifindex: self.ifindex,
                queue_id: self.queue_id,
                source,
            },
        )
    }

    /// Sets the socket's send buffer to `bytes` and returns what the kernel reports back
    /// (`getsockopt(SO_SNDBUF)`: twice the request, net/core/sock.c `__sock_set_sndbuf`).
    /// In copy mode every TX frame becomes an skb charged to this buffer
    /// (net/xdp/xsk.c `xsk_build_skb` → `sock_alloc_send_skb`), so it bounds how many are
    /// in flight to the device. `SO_SNDBUFFORCE` (CAP_NET_ADMIN) is tried first so the
    /// request is not clamped to `net.core.wmem_max`; `SO_SNDBUF` (clamped) otherwise.
    /// A fake socket keeps nothing and returns `bytes * 2`.
    ///
    /// # Errors
    /// `XskError::SockOpt` when the kernel refuses both options or the read-back.
    pub fn set_sndbuf(&self, bytes: u32) -> Result<u32, XskError> {
        let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let Some(fd) = &self.fd else {
            return Ok(bytes.saturating_mul(2));
        };
        let err = |opt| sock_opt_err(self.ifindex, self.queue_id, opt);
        if syscall::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &v).is_err() {
            syscall::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &v)
                .map_err(err("SO_SNDBUF"))?;
        }
        self.sndbuf().map_err(err("getsockopt SO_SNDBUF"))
    }

    /// The socket's send buffer in bytes as the kernel accounts it (`SO_SNDBUF`).
    /// A fake socket reports 0.
    ///
    /// # Errors
    /// The `getsockopt` error.
    pub fn sndbuf(&self) -> std::io::Result<u32> {
        let Some(fd) = &self.fd else { return Ok(0) };
        let (v, _len) = syscall::getsockopt::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)?;
        Ok(u32::try_from(v).unwrap_or(0))
    }

    // ---- statistics ----

    /// `getsockopt(XDP_STATISTICS)`. A fake socket reports zeros.
    pub fn statistics(&self) -> Result<XdpStatistics, XskError> {
        let Some(fd) = &self.fd else {
            return Ok(XdpStatistics::default());
        };
        let (s, _len) = syscall::getsockopt::<if_xdp::xdp_statistics>(
            fd,
            if_xdp::SOL_XDP,
            if_xdp::XDP_STATISTICS,
        )
        .map_err(|source| XskError::SockOpt {
            opt: "getsockopt XDP_STATISTICS",
            ifindex: self.ifindex,
            queue_id: self.queue_id,
            source,
        })?;
        Ok(s.into())
    }

    /// Tears down a socket whose device is gone and puts the frames still on its four
    /// rings back on `umem`'s free list; returns how many.
    ///
    /// When a device is unregistered, the kernel unbinds every AF_XDP socket bound to
    /// it and waits for in-flight receives to finish (`synchronize_net`) before the
    /// device leaves the namespace; from then on it never touches that socket's rings
    /// or the frames on them (a TX wakeup or `recvfrom` fails with `ENXIO`). Those
    /// frames are then userspace's again, but dropping the socket would lose them: this
    /// reads the four rings instead: fill-ring frames the kernel never consumed
    /// (between its consumer index and our producer index), received descriptors not
    /// yet taken from the RX ring, TX descriptors the kernel never took, and
    /// completions not yet consumed. None of these frames is caller-owned, so they go
    /// to the free list through a crate-private path, not [`Umem::free_frame`]. Then
    /// the socket is dropped (rings unmapped, fd closed).
    ///
    /// # Precondition
    /// Call it only once the socket's device is gone (its name no longer exists, or
    /// names an interface with another ifindex). It is checked as far as userspace can:
    /// a real socket is probed with a zero-length `recvfrom`, which the kernel refuses
    /// with `ENXIO` only for an unbound socket. If it is still bound (its device still
    /// exists, e.g. renamed, or merely down), nothing is read and the socket comes back
    /// unchanged in [`StillBound`]: keep it, and count it in accounting, as a live one.
    /// A fake socket ([`crate::testing`]) counts as unbound: the test plays the kernel
    /// and must not use the kernel side of its rings afterwards.
    ///
    /// Not visible, so not returned: frames the kernel took from the fill ring without
    /// publishing them on RX (copy mode keeps one when the RX ring was full; zero-copy
    /// drivers keep the ones posted to the NIC), and TX frames it had taken whose
    /// completion it had not published when the device went away.
    /// [`Umem::accounting`] shows those as held by the kernel. `umem` must be the one
    /// the socket is bound to.
    pub fn reclaim_dead(mut self, umem: &mut Umem) -> Result<usize, StillBound> {
        self.check_umem(umem);
        if let Some(fd) = &self.fd {
            if !is_unbound(fd.as_raw_fd()) {
                return Err(StillBound(Box::new(self)));
            }
        }
        let back = self.take_back_rings(umem);
        log::debug!(
            "AF_XDP socket fd {} (ifindex {} queue {}, device gone): {back} frames back to the free list",
            self.fd(),
            self.ifindex,
            self.queue_id
        );
        Ok(back)
    }

    /// Closes the socket and puts the frames still on its four rings back on `umem`'s
    /// free list; returns how many. For a socket whose device still exists (a pod's
    /// endpoint removed while its veth stays).
    ///
    /// Closing the last reference to an AF_XDP socket releases it before `close`
    /// returns (`xsk_release`: it leaves the XSKMAPs, unbinds from the device and waits
    /// for in-flight receives, `synchronize_net`), so from then on the kernel never
    /// touches the rings; they stay mapped until this value is dropped, and are read as
    /// in [`XskSocket::reclaim_dead`]. `umem` must be the one the socket is bound to.
    pub fn close_and_reclaim(mut self, umem: &mut Umem) -> usize {
        self.check_umem(umem);
        if let (Some(reg), Some(fd)) = (&self.registry, &self.fd) {
            let raw = fd.as_raw_fd();
            let mut reg = reg.lock().unwrap_or_else(|p| p.into_inner());
            reg.fds.retain(|&f| f != raw);
        }
        let fd = self.fd.take().map(|f| f.as_raw_fd());
        let back = self.take_back_rings(umem);
        log::debug!(
            "AF_XDP socket fd {} (ifindex {} queue {}) closed: {back} frames back to the free list",
            fd.unwrap_or(-1),
            self.ifindex,
            self.queue_id
        );
        back
    }

    /// Every frame on the four rings back to the free list. Only once the kernel no
    /// longer consumes the fill and TX rings nor produces on the RX and completion rings
    /// (the socket is unbound or closed), so that every index read here is final.
    fn take_back_rings(&mut self, umem: &mut Umem) -> usize {
        let mut back = 0usize;
        let mut put = |addr: u64| {
            if umem.reclaim_from_ring(addr) {
                back += 1;
            }
        };
        self.fill.take_unconsumed(&mut put);
        if let Some(tx) = &mut self.tx {
            tx.take_unconsumed(|d| put(d.addr));
        }
        if let Some(rx) = &mut self.rx {
            rx.consume_with(usize::MAX, |d| put(d.addr));
        }
        self.comp.consume_with(usize::MAX, &mut put);
        back
    }

    /// Published occupancy of the four rings (`producer - consumer` from the mappings).
    pub fn ring_occupancy(&self) -> RingOccupancy {
        RingOccupancy {
            fill: self.fill.occupancy() as usize,
            rx: self.rx.as_ref().map_or(0, |r| r.occupancy() as usize),
            tx: self.tx.as_ref().map_or(0, |r| r.occupancy() as usize),
            completion: self.comp.occupancy() as usize,
        }
    }
}

impl Drop for XskSocket {
    fn drop(&mut self) {
        if let (Some(reg), Some(fd)) = (&self.registry, &self.fd) {
            let raw = fd.as_raw_fd();
            let mut reg = reg.lock().unwrap_or_else(|p| p.into_inner());
            reg.fds.retain(|&f| f != raw);
        }
        // Fields drop next: rings are unmapped, then the fd is closed.
    }
}

/// [`XskSocket::reclaim_dead`] refused: the socket is still bound to its device, so the
/// kernel may still use the frames on its rings. The socket is handed back unchanged.
#[derive(Debug)]
pub struct StillBound(pub Box<XskSocket>);

impl fmt::Display for StillBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AF_XDP socket fd {} on ifindex {} queue {} is still bound to its device; its frames stay the kernel's",
            self.0.fd(),
            self.0.ifindex,
            self.0.queue_id
        )
    }
}

impl std::error::Error for StillBound {}

// ---- setup steps of `XskSocket::new`, in the order the kernel wants them ----

/// What the bind will ask for, decided before the rings exist.
struct BindPlan {
    /// `sxdp_flags`.
    flags: u16,
    /// need_wakeup in effect (asked for, or inherited from the shared UMEM).
    need_wakeup: bool,
    /// Multi-buffer asked for (`XDP_USE_SG` in `flags`), or inherited.
    multi_buffer: bool,
    /// The mode for the bind error message.
    mode_desc: String,
}

/// The four mapped rings of a socket not yet bound.
struct Rings {
    fill: ProducerRing<u64>,
    comp: ConsumerRing<u64>,
    rx: Option<ConsumerRing<XdpDesc>>,
    tx: Option<ProducerRing<XdpDesc>>,
}

/// Maps an `io::Error` of setting or reading socket option `opt` to [`XskError::SockOpt`].
fn opt_err(cfg: &SocketConfig, opt: &'static str) -> impl FnOnce(io::Error) -> XskError {
    sock_opt_err(cfg.ifindex, cfg.queue_id, opt)
}

/// [`opt_err`] for the socket on `ifindex`/`queue_id`.
fn sock_opt_err(
    ifindex: u32,
    queue_id: u32,
    opt: &'static str,
) -> impl FnOnce(io::Error) -> XskError {
    move |source| XskError::SockOpt {
        opt,
        ifindex,
        queue_id,
        source,
    }
}

/// First socket on `umem`: registers the area with the kernel (`XDP_UMEM_REG`, with the
/// TX metadata the UMEM's config asks for if the kernel has it) and will bind in the
/// mode and with the need_wakeup setting `cfg` asks for. Also returns the
/// `tx_metadata_len` registered.
fn register_umem(
    fd: &OwnedFd,
    umem: &Umem,
    cfg: &SocketConfig,
) -> Result<(BindPlan, u32), XskError> {
    let (area, ucfg) = (umem.area(), umem.config());
    let ureg = if_xdp::xdp_umem_reg {
        addr: area.as_ptr() as u64,
        len: area.len() as u64,
        chunk_size: ucfg.frame_size,
        headroom: ucfg.headroom,
        flags: 0,
        tx_metadata_len: 0,
    };
    let md_len = tx_metadata::register(ureg, ucfg.tx_metadata, |r| {
        syscall::setsockopt(fd, if_xdp::SOL_XDP, if_xdp::XDP_UMEM_REG, r)
    })
    .map_err(opt_err(cfg, "XDP_UMEM_REG"))?;
    let mut flags = match cfg.bind {
        BindMode::Copy => if_xdp::XDP_COPY,
        BindMode::ZeroCopy => if_xdp::XDP_ZEROCOPY,
        BindMode::Auto => 0,
    };
    if cfg.need_wakeup {
        flags |= if_xdp::XDP_USE_NEED_WAKEUP;
    }
    let multi_buffer = ucfg.multi_buffer != MultiBuffer::Off;
    if multi_buffer {
        flags |= if_xdp::XDP_USE_SG;
    }
    let plan = BindPlan {
        flags,
        need_wakeup: cfg.need_wakeup,
        multi_buffer,
        mode_desc: cfg.bind.to_string(),
    };
    Ok((plan, md_len))
}

/// A later socket: binds with `XDP_SHARED_UMEM` through `shared_fd` and inherits the
/// registering socket's mode and need_wakeup (see the module docs).
fn share_umem(reg: &Registry, shared_fd: RawFd, cfg: &SocketConfig) -> Result<BindPlan, XskError> {
    let (ifindex, queue_id) = (cfg.ifindex, cfg.queue_id);
    let umem_mode = reg.mode.unwrap_or(BindMode::Auto);
    if matches!(
        (cfg.bind, umem_mode),
        (BindMode::Copy, BindMode::ZeroCopy) | (BindMode::ZeroCopy, BindMode::Copy)
    ) {
        return Err(XskError::Config(format!(
            "socket for ifindex {ifindex} queue {queue_id} asks for {} but its UMEM is shared with a socket \
             bound in {umem_mode}, which the kernel forces on every socket of the UMEM: use BindMode::Auto, \
             or give this interface its own Umem",
            cfg.bind
        )));
    }
    if cfg.need_wakeup != reg.need_wakeup {
        log::warn!(
            "AF_XDP socket for ifindex {ifindex} queue {queue_id}: need_wakeup={} ignored, \
             the shared UMEM's first socket set need_wakeup={}",
            cfg.need_wakeup,
            reg.need_wakeup
        );
    }
    Ok(BindPlan {
        flags: if_xdp::XDP_SHARED_UMEM,
        need_wakeup: reg.need_wakeup,
        multi_buffer: reg.multi_buffer,
        mode_desc: format!("shared UMEM with fd {shared_fd}, inheriting {umem_mode}"),
    })
}

/// Sets the ring sizes from the UMEM's config; RX or TX of size 0 is not created.
fn set_ring_sizes(fd: &OwnedFd, ucfg: &UmemConfig, cfg: &SocketConfig) -> Result<(), XskError> {
    let rings = [
        (
            "XDP_UMEM_FILL_RING",
            if_xdp::XDP_UMEM_FILL_RING,
            ucfg.fill_size,
            false,
        ),
        (
            "XDP_UMEM_COMPLETION_RING",
            if_xdp::XDP_UMEM_COMPLETION_RING,
            ucfg.comp_size,
            false,
        ),
        ("XDP_RX_RING", if_xdp::XDP_RX_RING, ucfg.rx_size, true),
        ("XDP_TX_RING", if_xdp::XDP_TX_RING, ucfg.tx_size, true),
    ];
    for (name, opt, size, optional) in rings {
        if optional && size == 0 {
            continue;
        }
        let v = libc::c_int::try_from(size).map_err(|_| {
            XskError::Config(format!(
                "{name} size {size} is larger than the kernel accepts"
            ))
        })?;
        syscall::setsockopt(fd, if_xdp::SOL_XDP, opt, &v).map_err(opt_err(cfg, name))?;
    }
    Ok(())
}

/// Reads the ring layout (`XDP_MMAP_OFFSETS`) and maps the rings whose sizes were set.
fn map_rings(fd: &OwnedFd, ucfg: &UmemConfig, cfg: &SocketConfig) -> Result<Rings, XskError> {
    let (off, _) =
        syscall::getsockopt::<xdp_mmap_offsets>(fd, if_xdp::SOL_XDP, if_xdp::XDP_MMAP_OFFSETS)
            .map_err(opt_err(cfg, "getsockopt XDP_MMAP_OFFSETS"))?;
    let raw = fd.as_raw_fd();
    let (addr, desc) = (size_of::<u64>(), size_of::<XdpDesc>());
    let fill = ProducerRing::new(
        map_ring(
            raw,
            "fill ring",
            &off.fr,
            ucfg.fill_size,
            addr,
            if_xdp::XDP_UMEM_PGOFF_FILL_RING,
        )?,
        &off.fr,
        ucfg.fill_size,
    )
    .map_err(layout_err)?;
    let comp = ConsumerRing::new(
        map_ring(
            raw,
            "completion ring",
            &off.cr,
            ucfg.comp_size,
            addr,
            if_xdp::XDP_UMEM_PGOFF_COMPLETION_RING,
        )?,
        &off.cr,
        ucfg.comp_size,
    )
    .map_err(layout_err)?;
    let rx = if ucfg.rx_size > 0 {
        let mem = map_ring(
            raw,
            "RX ring",
            &off.rx,
            ucfg.rx_size,
            desc,
            if_xdp::XDP_PGOFF_RX_RING,
        )?;
        Some(ConsumerRing::new(mem, &off.rx, ucfg.rx_size).map_err(layout_err)?)
    } else {
        None
    };
    let tx = if ucfg.tx_size > 0 {
        let mem = map_ring(
            raw,
            "TX ring",
            &off.tx,
            ucfg.tx_size,
            desc,
            if_xdp::XDP_PGOFF_TX_RING,
        )?;
        Some(ProducerRing::new(mem, &off.tx, ucfg.tx_size).map_err(layout_err)?)
    } else {
        None
    };
    Ok(Rings { fill, comp, rx, tx })
}

/// Maps one ring of `fd` at page offset `pgoff`: the kernel's header (producer,
/// consumer, flags) up to `off.desc`, then `entries` entries of `entry` bytes.
fn map_ring(
    fd: RawFd,
    what: &'static str,
    off: &if_xdp::xdp_ring_offset,
    entries: u32,
    entry: usize,
    pgoff: libc::off_t,
) -> Result<Arc<Mmap>, XskError> {
    let len = usize::try_from(off.desc)
        .ok()
        .zip(usize::try_from(entries).ok())
        .and_then(|(desc_off, n)| n.checked_mul(entry)?.checked_add(desc_off))
        .ok_or_else(|| {
            layout_err(LayoutError(format!(
                "{what} of {entries} entries after descriptor offset {} does not fit in memory",
                off.desc
            )))
        })?;
    Mmap::socket_ring(fd, len, pgoff)
        .map(Arc::new)
        .map_err(|source| XskError::Mmap { what, len, source })
}

fn layout_err(e: LayoutError) -> XskError {
    XskError::Config(format!("kernel ring layout not understood: {}", e.0))
}

/// Binds `fd` to `cfg`'s interface queue, sharing the UMEM of `shared_fd` if given.
fn bind(
    fd: &OwnedFd,
    cfg: &SocketConfig,
    flags: u16,
    shared_fd: Option<RawFd>,
    mode_desc: String,
) -> Result<(), XskError> {
    let (ifindex, queue_id) = (cfg.ifindex, cfg.queue_id);
    // A live fd is never negative; refuse rather than pass the kernel a wrapped one.
    let shared = match shared_fd {
        None => 0,
        Some(f) => u32::try_from(f).map_err(|_| {
            XskError::Config(format!(
                "socket for ifindex {ifindex} queue {queue_id}: shared UMEM fd {f} is negative"
            ))
        })?,
    };
    let addr = sockaddr_xdp {
        sxdp_family: if_xdp::AF_XDP_FAMILY,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue_id,
        sxdp_shared_umem_fd: shared,
    };
    syscall::bind_xdp(fd, &addr).map_err(|source| XskError::Bind {
        ifindex,
        queue_id,
        mode: mode_desc,
        source,
    })
}

/// The mode the kernel bound `fd` in (`XDP_OPTIONS`); copy if it cannot say.
fn bound_mode(fd: &OwnedFd) -> BindMode {
    match syscall::getsockopt::<if_xdp::xdp_options>(fd, if_xdp::SOL_XDP, if_xdp::XDP_OPTIONS) {
        Ok((o, _)) if o.flags & if_xdp::XDP_OPTIONS_ZEROCOPY != 0 => BindMode::ZeroCopy,
        Ok(_) => BindMode::Copy,
        Err(e) => {
            log::warn!("getsockopt XDP_OPTIONS failed ({e}); assuming the socket is in copy mode");
            BindMode::Copy
        }
    }
}

/// True if the kernel says the AF_XDP socket `fd` is not bound (never bound, closed
/// down by its device's unregistration): a zero-length non-blocking `recvfrom` fails
/// with `ENXIO` for exactly those. On a bound socket it is the ordinary RX wakeup, which
/// has no effect beyond a wakeup of the driver.
fn is_unbound(fd: RawFd) -> bool {
    matches!(syscall::recvfrom_wakeup(fd), Err(e) if e.raw_os_error() == Some(libc::ENXIO))
}

fn set_busy_poll(fd: &OwnedFd, ifindex: u32, queue_id: u32, bp: &BusyPoll) {
    let opts = [
        (
            "SO_PREFER_BUSY_POLL",
            if_xdp::SO_PREFER_BUSY_POLL,
            libc::c_int::from(bp.prefer),
        ),
        (
            "SO_BUSY_POLL",
            if_xdp::SO_BUSY_POLL,
            bp.usecs as libc::c_int,
        ),
        (
            "SO_BUSY_POLL_BUDGET",
            if_xdp::SO_BUSY_POLL_BUDGET,
            bp.budget as libc::c_int,
        ),
    ];
    for (name, opt, val) in opts {
        if let Err(e) = syscall::setsockopt(fd, libc::SOL_SOCKET, opt, &val) {
            log::warn!(
                "AF_XDP socket for ifindex {ifindex} queue {queue_id}: setting {name}={val} failed ({e}); \
                 continuing without it (SO_BUSY_POLL_BUDGET above the default needs CAP_NET_ADMIN)"
            );
        }
    }
}
