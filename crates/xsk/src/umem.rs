//! The UMEM: one anonymous mapping cut into equal power-of-two frames ("chunks"), plus
//! the free list of frame addresses that userspace owns.
//!
//! Frame addresses are byte offsets into the area. Addresses the kernel hands back (RX
//! descriptors) point at packet data inside a chunk (chunk base + headroom +
//! `XDP_PACKET_HEADROOM` in copy mode); [`Umem::free_frame`] and [`Umem::chunk_mut`]
//! accept any address inside a chunk.
//!
//! Frame ownership is tracked, always on, one bit per frame. A frame is *caller-owned*
//! from the moment it leaves [`Umem::alloc_frame`] or [`XskSocket::rx_batch`] until it
//! goes to a TX ring ([`XskSocket::tx_push`]) or back to the free list
//! ([`Umem::free_frame`]). Every other frame is on the free list, on a fill, RX, TX or
//! completion ring, or inside the kernel, which may be writing it (DMA or copy) at any
//! moment. [`Umem::chunk_mut`] and [`Umem::chunk`] panic unless the frame is
//! caller-owned, so safe code never holds a Rust reference to memory the kernel may
//! write; [`XskSocket::tx_push`] stops at a frame that is not caller-owned and
//! [`Umem::free_frame`] panics on one, so a frame cannot be in two places through this
//! API. The cost is a bit test and set/clear per frame.
//!
//! Ownership: the kernel pins the area when the first socket registers it. Keep the
//! `Umem` alive as long as any socket on it (declare sockets before the `Umem` in a
//! struct so they drop first). Frames still in a socket's rings when it is dropped do
//! not come back to the free list, except through [`XskSocket::reclaim_dead`] for a
//! socket whose device is gone.
//!
//! This module knows nothing of sockets (they depend on it, not the other way round);
//! the frame accounting that reads their rings is in [`crate::accounting`].
//!
//! [`XskSocket::rx_batch`]: crate::XskSocket::rx_batch
//! [`XskSocket::tx_push`]: crate::XskSocket::tx_push
//! [`XskSocket::reclaim_dead`]: crate::XskSocket::reclaim_dead

use std::sync::{Arc, Mutex};

use crate::error::XskError;
use crate::if_xdp::{self, XdpDesc};
use crate::mmap::Mmap;
use crate::registration::Registry;
use crate::syscall;
use crate::tx_metadata::{self, TxMetadata};

/// Geometry of a UMEM and default ring sizes of the sockets bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemConfig {
    /// Number of frames.
    pub frame_count: u32,
    /// Bytes per frame: 2048 or 4096 (a power of two, at most the page size).
    pub frame_size: u32,
    /// `XDP_UMEM_REG` headroom: bytes the kernel leaves free in front of received data,
    /// on top of its own 256-byte `XDP_PACKET_HEADROOM`.
    pub headroom: u32,
    /// Fill ring entries per socket (power of two).
    pub fill_size: u32,
    /// Completion ring entries per socket (power of two).
    pub comp_size: u32,
    /// RX ring entries per socket (power of two; 0 = no RX ring).
    pub rx_size: u32,
    /// TX ring entries per socket (power of two; 0 = no TX ring).
    pub tx_size: u32,
    /// TX metadata (checksum offload requests) to ask for when the first socket
    /// registers the UMEM; see [`crate::tx_metadata`].
    pub tx_metadata: TxMetadata,
    /// Multi-buffer (`XDP_USE_SG`) to ask for when the first socket binds.
    pub multi_buffer: MultiBuffer,
}

/// Whether a UMEM's sockets receive and send frames larger than one UMEM frame as
/// descriptor chains (`XDP_USE_SG`, Linux 6.6+; [`crate::XskSocket::multi_buffer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiBuffer {
    /// No chains: a larger frame is dropped by the kernel (`rx_dropped`).
    #[default]
    Off,
    /// Chains if the kernel accepts `XDP_USE_SG`; otherwise as `Off`.
    Auto,
    /// Chains, or the first socket's bind fails.
    On,
}

impl Default for UmemConfig {
    fn default() -> Self {
        UmemConfig {
            frame_count: 4096,
            frame_size: 4096,
            headroom: 0,
            fill_size: 2048,
            comp_size: 2048,
            rx_size: 2048,
            tx_size: 2048,
            tx_metadata: TxMetadata::Off,
            multi_buffer: MultiBuffer::Off,
        }
    }
}

impl UmemConfig {
    fn validate(&self) -> Result<(), XskError> {
        // A page larger than u32::MAX bytes would not limit a u32 frame_size.
        let page = u32::try_from(syscall::page_size()).unwrap_or(u32::MAX);
        let bad = |m: String| Err(XskError::Config(m));
        if !self.frame_size.is_power_of_two() || self.frame_size < 2048 || self.frame_size > page {
            return bad(format!(
                "frame_size {} must be a power of two from 2048 to the page size ({page})",
                self.frame_size
            ));
        }
        if self.frame_count == 0 {
            return bad("frame_count must be at least 1".into());
        }
        if u64::from(self.headroom) + u64::from(crate::if_xdp::XDP_PACKET_HEADROOM)
            >= u64::from(self.frame_size)
        {
            return bad(format!(
                "headroom {} plus the kernel's {}-byte XDP_PACKET_HEADROOM leaves no room for data in a {}-byte frame",
                self.headroom,
                crate::if_xdp::XDP_PACKET_HEADROOM,
                self.frame_size
            ));
        }
        for (name, v, zero_ok) in [
            ("fill_size", self.fill_size, false),
            ("comp_size", self.comp_size, false),
            ("rx_size", self.rx_size, true),
            ("tx_size", self.tx_size, true),
        ] {
            if !(v.is_power_of_two() || (zero_ok && v == 0)) {
                return bad(format!("{name} {v} must be a power of two"));
            }
        }
        if self.rx_size == 0 && self.tx_size == 0 {
            return bad("a socket needs an RX or a TX ring: rx_size and tx_size are both 0".into());
        }
        Ok(())
    }
}

/// A UMEM area and its free list. See the module docs for ownership rules.
#[derive(Debug)]
pub struct Umem {
    area: Mmap,
    cfg: UmemConfig,
    free: Vec<u64>,
    /// One bit per frame (frame index = addr >> `frame_shift`): set = caller-owned
    /// (see the module docs).
    owned: Vec<u64>,
    frame_shift: u32,
    /// `tx_metadata_len` the kernel registered the area with (0: none).
    tx_metadata_len: u32,
    /// Debug builds: which frames are on the free list, to catch double frees.
    #[cfg(debug_assertions)]
    on_free_list: Vec<bool>,
    pub(crate) registry: Arc<Mutex<Registry>>,
}

impl Umem {
    /// Maps `frame_count * frame_size` bytes (anonymous, advised for transparent huge
    /// pages and pre-faulted, best effort: see `Mmap::anonymous`) and
    /// puts every frame on the free list. Registration with the kernel happens when the
    /// first socket is created on it. Raises RLIMIT_MEMLOCK best effort.
    pub fn new(cfg: &UmemConfig) -> Result<Umem, XskError> {
        cfg.validate()?;
        syscall::raise_memlock_once();
        let len = u64::from(cfg.frame_count) * u64::from(cfg.frame_size);
        let len = usize::try_from(len)
            .map_err(|_| XskError::Config(format!("UMEM of {len} bytes does not fit in memory")))?;
        let area = Mmap::anonymous(len, true).map_err(|source| XskError::Mmap {
            what: "UMEM area",
            len,
            source,
        })?;
        // Hand out low addresses first (pop from the end).
        let free = (0..u64::from(cfg.frame_count))
            .rev()
            .map(|i| i * u64::from(cfg.frame_size))
            .collect();
        Ok(Umem {
            area,
            cfg: *cfg,
            free,
            owned: vec![0; (cfg.frame_count as usize).div_ceil(64)],
            frame_shift: cfg.frame_size.trailing_zeros(),
            tx_metadata_len: 0,
            #[cfg(debug_assertions)]
            on_free_list: vec![true; cfg.frame_count as usize],
            registry: Arc::new(Mutex::new(Registry::default())),
        })
    }

    /// The configuration this UMEM was created with.
    pub fn config(&self) -> &UmemConfig {
        &self.cfg
    }

    pub fn frame_size(&self) -> u32 {
        self.cfg.frame_size
    }

    pub fn frame_count(&self) -> u32 {
        self.cfg.frame_count
    }

    /// `XDP_UMEM_REG` headroom.
    pub fn headroom(&self) -> u32 {
        self.cfg.headroom
    }

    /// Bytes of TX metadata the kernel reserved in front of every TX frame: 0 until a
    /// socket registered the UMEM with the kernel, and 0 if [`UmemConfig::tx_metadata`]
    /// is off or the kernel refused it; then [`Umem::request_tx_checksum`] refuses.
    pub fn tx_metadata_len(&self) -> u32 {
        self.tx_metadata_len
    }

    /// Records what the kernel's registration granted (by the socket that registered).
    pub(crate) fn set_tx_metadata_len(&mut self, len: u32) {
        self.tx_metadata_len = len;
    }

    /// Asks the kernel to complete the checksum of the caller-owned frame `desc` on
    /// transmit (see [`crate::tx_metadata`]): the sum from `csum_start` (counted from
    /// `desc.addr`) to the frame's end, stored at `csum_start + csum_offset`, where the
    /// frame must already hold the sum to start from (for TCP/UDP, the pseudo-header's:
    /// the kernel's `CHECKSUM_PARTIAL`). Writes the request in front of the frame's data
    /// and sets `XDP_TX_METADATA` in `desc.options`.
    ///
    /// Returns false, changing nothing, when the UMEM has no TX metadata, the data
    /// starts too close to its chunk's start for the metadata, or the checksum field
    /// does not lie inside the frame's `desc.len` bytes (the kernel would refuse it and
    /// stall the TX ring): the caller must then complete the checksum itself.
    ///
    /// # Panics
    /// If the frame is outside the UMEM or not caller-owned, as [`Umem::chunk_mut`].
    pub fn request_tx_checksum(
        &mut self,
        desc: &mut XdpDesc,
        csum_start: u16,
        csum_offset: u16,
    ) -> bool {
        let md = self.tx_metadata_len as usize;
        if md < tx_metadata::TX_METADATA_LEN as usize
            || !tx_metadata::checksum_request_fits(desc.len, csum_start, csum_offset)
        {
            return false;
        }
        let (chunk, off) = self.chunk_mut(desc.addr);
        if off < md {
            return false;
        }
        let req = tx_metadata::checksum_request(csum_start, csum_offset);
        chunk[off - md..off - md + req.len()].copy_from_slice(&req);
        desc.options |= if_xdp::XDP_TX_METADATA;
        true
    }

    /// Whether the kernel takes `d` as a valid TX descriptor as far as TX metadata goes:
    /// with metadata, the data starts at least `tx_metadata_len` bytes into its chunk;
    /// without, it carries no `XDP_TX_METADATA` (the kernel would fail every `sendto`
    /// on it, see [`crate::tx_metadata`]).
    #[inline]
    pub(crate) fn tx_metadata_ok(&self, d: &XdpDesc) -> bool {
        if self.tx_metadata_len == 0 {
            return d.options & if_xdp::XDP_TX_METADATA == 0;
        }
        Self::offset_in_chunk(d.addr, self.cfg.frame_size) >= self.tx_metadata_len as usize
    }

    /// Base address of the chunk that contains `addr`.
    pub fn chunk_base(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.cfg.frame_size) - 1)
    }

    /// Index of the frame containing `addr`, or `None` if `addr` is outside the UMEM.
    #[inline]
    fn frame_index(&self, addr: u64) -> Option<usize> {
        // An index that does not fit a usize is past frame_count anyway.
        let i = usize::try_from(addr >> self.frame_shift).ok()?;
        (i < self.cfg.frame_count as usize).then_some(i)
    }

    /// Byte offset of frame `i` (from [`Umem::frame_index`]) in the area and `addr`'s
    /// offset within that frame's chunk.
    #[inline]
    fn chunk_range(&self, i: usize, addr: u64) -> (usize, usize) {
        // `i < frame_count` and the area is `frame_count << frame_shift` bytes, a usize,
        // so the shift does not overflow.
        let base = i << self.frame_shift;
        (base, Self::offset_in_chunk(addr, self.cfg.frame_size))
    }

    /// `addr`'s offset within its chunk of `frame_size` bytes.
    #[inline]
    // The mask leaves a value below frame_size, a u32, which fits every usize.
    #[allow(clippy::cast_possible_truncation)]
    fn offset_in_chunk(addr: u64, frame_size: u32) -> usize {
        (addr & (u64::from(frame_size) - 1)) as usize
    }

    #[inline]
    fn owned_bit(&self, i: usize) -> bool {
        self.owned[i / 64] & (1 << (i % 64)) != 0
    }

    #[inline]
    fn set_owned(&mut self, i: usize, on: bool) {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if on {
            self.owned[w] |= b;
        } else {
            self.owned[w] &= !b;
        }
    }

    /// True if the frame containing `addr` is caller-owned (see the module docs):
    /// taken from [`Umem::alloc_frame`] or [`XskSocket::rx_batch`] and not yet pushed
    /// to TX or freed. False for an address outside the UMEM.
    ///
    /// [`XskSocket::rx_batch`]: crate::XskSocket::rx_batch
    pub fn is_caller_owned(&self, addr: u64) -> bool {
        self.frame_index(addr).is_some_and(|i| self.owned_bit(i))
    }

    /// Number of caller-owned frames (a popcount over the bitset; not for the fast
    /// path). Equals the `held_by_caller` that [`Umem::check_accounting`] expects.
    pub fn caller_owned(&self) -> usize {
        self.owned.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Byte offset of the chunk containing `addr` and `addr`'s offset within it, after
    /// checking that the frame is inside the UMEM and caller-owned. Panics otherwise.
    /// Inlined (it runs for every frame the pipeline rewrites); the panics are not.
    #[inline]
    fn owned_chunk(&self, addr: u64, what: &str) -> (usize, usize) {
        match self.frame_index(addr) {
            Some(i) if self.owned_bit(i) => self.chunk_range(i, addr),
            Some(_) => self.not_owned(addr, what),
            None => self.outside(addr, what),
        }
    }

    #[cold]
    #[inline(never)]
    fn not_owned(&self, addr: u64, what: &str) -> ! {
        panic!(
            "{what}: UMEM frame {:#x} (address {addr:#x}) is not owned by the caller: it is on the \
             free list, on a fill/RX/TX/completion ring or in the kernel. Only frames from \
             XskSocket::rx_batch or Umem::alloc_frame, not yet pushed to TX or freed, can be accessed",
            self.chunk_base(addr)
        )
    }

    #[cold]
    #[inline(never)]
    fn outside(&self, addr: u64, what: &str) -> ! {
        panic!(
            "{what}: frame address {addr:#x} is outside the {}-byte UMEM",
            self.area.len()
        )
    }

    /// The whole chunk that contains `addr`, for in-place rewrite, and the offset of
    /// `addr` within it.
    ///
    /// # Panics
    /// If `addr` is outside the UMEM or its frame is not caller-owned (a logic error in
    /// the caller; see the module docs).
    #[inline]
    pub fn chunk_mut(&mut self, addr: u64) -> (&mut [u8], usize) {
        let (base, off) = self.owned_chunk(addr, "Umem::chunk_mut");
        let fs = self.cfg.frame_size as usize;
        // SAFETY: the frame index is < frame_count, so `base + fs <= area.len()` and the
        // range is inside our live mapping. The frame is caller-owned: it is on no ring
        // and the kernel holds no reference to it (it came back on RX or never left the
        // free list, and has not been put on a fill or TX ring since), so the kernel
        // neither reads nor writes it. `&mut self` makes this the only Rust borrow of
        // the area while the slice lives.
        let chunk = unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(base), fs) };
        (chunk, off)
    }

    /// Read-only view of the chunk that contains `addr` and the offset of `addr` in it.
    ///
    /// # Panics
    /// As [`Umem::chunk_mut`].
    #[inline]
    pub fn chunk(&self, addr: u64) -> (&[u8], usize) {
        let (base, off) = self.owned_chunk(addr, "Umem::chunk");
        let fs = self.cfg.frame_size as usize;
        // SAFETY: in bounds and caller-owned (the kernel does not write it) as in
        // `chunk_mut`; `&self` excludes Rust writers while the slice lives.
        let chunk = unsafe { std::slice::from_raw_parts(self.area.as_ptr().add(base), fs) };
        (chunk, off)
    }

    /// The chunk containing `addr` for the fake kernel of `xsk::testing`, without the
    /// ownership check (the fake kernel writes frames it took from a fake fill ring).
    /// Panics if `addr` is outside the UMEM or a real socket was ever created on it.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn fake_kernel_chunk_mut(&mut self, addr: u64) -> (&mut [u8], usize) {
        let (base, off) = self.fake_kernel_range(addr);
        let fs = self.cfg.frame_size as usize;
        // SAFETY: in bounds (checked in `fake_kernel_range`). No real kernel has this
        // area: the registry shows no real socket was created on this UMEM (and none
        // can be while a fake socket exists), so only Rust code touches it, and
        // `&mut self` makes this the only borrow.
        let chunk = unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(base), fs) };
        (chunk, off)
    }

    /// Read-only counterpart of [`Umem::fake_kernel_chunk_mut`].
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn fake_kernel_chunk(&self, addr: u64) -> (&[u8], usize) {
        let (base, off) = self.fake_kernel_range(addr);
        let fs = self.cfg.frame_size as usize;
        // SAFETY: as in `fake_kernel_chunk_mut`; `&self` excludes Rust writers.
        let chunk = unsafe { std::slice::from_raw_parts(self.area.as_ptr().add(base), fs) };
        (chunk, off)
    }

    /// Copies `payload` to each of `addrs` for the fake kernel (as
    /// [`Umem::fake_kernel_chunk_mut`], with one registry check for the whole batch).
    /// Panics if an address is outside the UMEM, the payload does not fit its chunk, or
    /// a real socket was ever created on this UMEM.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn fake_kernel_write(&mut self, addrs: &[u64], payload: &[u8]) {
        self.assert_fake_only();
        let fs = self.cfg.frame_size as usize;
        for &addr in addrs {
            let (base, off) = self.fake_kernel_range_of(addr);
            // SAFETY: as in `fake_kernel_chunk_mut` (the registry was checked above, and
            // `&mut self` is held for the whole batch).
            let chunk = unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(base), fs) };
            chunk[off..off + payload.len()].copy_from_slice(payload);
        }
    }

    #[cfg(any(test, feature = "testing"))]
    fn assert_fake_only(&self) {
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            !reg.real && reg.fds.is_empty(),
            "fake kernel access to a UMEM that a real socket uses"
        );
    }

    #[cfg(any(test, feature = "testing"))]
    fn fake_kernel_range(&self, addr: u64) -> (usize, usize) {
        self.assert_fake_only();
        self.fake_kernel_range_of(addr)
    }

    #[cfg(any(test, feature = "testing"))]
    fn fake_kernel_range_of(&self, addr: u64) -> (usize, usize) {
        let Some(i) = self.frame_index(addr) else {
            panic!(
                "frame address {addr:#x} is outside the {}-byte UMEM",
                self.area.len()
            );
        };
        self.chunk_range(i, addr)
    }

    /// Takes a frame (chunk base address) off the free list; it is caller-owned until
    /// pushed to TX or freed.
    pub fn alloc_frame(&mut self) -> Option<u64> {
        let addr = self.free.pop()?;
        let i = self
            .frame_index(addr)
            .expect("the free list holds only frames of this UMEM");
        #[cfg(debug_assertions)]
        {
            self.on_free_list[i] = false;
        }
        self.set_owned(i, true);
        Some(addr)
    }

    /// Returns the caller-owned frame containing `addr` to the free list (normalised to
    /// its chunk base).
    ///
    /// # Panics
    /// If `addr` is outside the UMEM or its frame is not caller-owned (already freed,
    /// pushed to TX, or on a ring): freeing it would put one frame in two places.
    pub fn free_frame(&mut self, addr: u64) {
        let Some(i) = self.frame_index(addr) else {
            panic!(
                "Umem::free_frame: frame address {addr:#x} is outside the {}-byte UMEM",
                self.area.len()
            );
        };
        assert!(
            self.owned_bit(i),
            "Umem::free_frame: UMEM frame {:#x} (address {addr:#x}) is not owned by the caller \
             (double free, or a frame already pushed to TX or on a ring)",
            self.chunk_base(addr)
        );
        self.set_owned(i, false);
        self.push_free(i);
    }

    /// Puts frame `i` (not caller-owned) on the free list.
    fn push_free(&mut self, i: usize) {
        #[cfg(debug_assertions)]
        {
            assert!(
                !self.on_free_list[i],
                "double free of UMEM frame {:#x}",
                (i as u64) << self.frame_shift
            );
            self.on_free_list[i] = true;
        }
        self.free.push((i as u64) << self.frame_shift);
    }

    /// A frame the kernel gave back on a completion ring: to the free list, without the
    /// ownership requirement of [`Umem::free_frame`] (it was the kernel's). An address
    /// outside the UMEM (a kernel bug) is dropped.
    pub(crate) fn free_completed(&mut self, addr: u64) {
        let Some(i) = self.frame_index(addr) else {
            debug_assert!(
                false,
                "completion of frame address {addr:#x} outside the UMEM"
            );
            return;
        };
        debug_assert!(
            !self.owned_bit(i),
            "completion of UMEM frame {addr:#x}, which the caller owns"
        );
        self.push_free(i);
    }

    /// A frame still on a ring of a socket being torn down by
    /// [`XskSocket::reclaim_dead`] (fill, RX, TX or completion ring): to the free list.
    /// Such a frame is not caller-owned (it was the kernel's, or on its way to or from
    /// the kernel). Returns false, changing nothing, for an address outside the UMEM or
    /// a frame the caller owns (neither can be on a ring; debug builds panic).
    ///
    /// [`XskSocket::reclaim_dead`]: crate::XskSocket::reclaim_dead
    pub(crate) fn reclaim_from_ring(&mut self, addr: u64) -> bool {
        let Some(i) = self.frame_index(addr) else {
            debug_assert!(false, "ring entry {addr:#x} outside the UMEM");
            return false;
        };
        if self.owned_bit(i) {
            debug_assert!(
                false,
                "ring entry for UMEM frame {addr:#x}, which the caller owns"
            );
            return false;
        }
        self.push_free(i);
        true
    }

    /// A frame the kernel handed over on an RX ring becomes caller-owned. False (drop
    /// the descriptor) for an address outside the UMEM, which the kernel never produces.
    #[inline]
    pub(crate) fn claim_received(&mut self, addr: u64) -> bool {
        let Some(i) = self.frame_index(addr) else {
            debug_assert!(false, "RX descriptor address {addr:#x} outside the UMEM");
            return false;
        };
        debug_assert!(
            !self.owned_bit(i),
            "RX descriptor for UMEM frame {addr:#x}, which the caller already owns"
        );
        self.set_owned(i, true);
        true
    }

    /// Gives up ownership of the frame containing `addr` (it goes to the kernel); false,
    /// changing nothing, if it is outside the UMEM or not caller-owned.
    #[inline]
    pub(crate) fn release_owned(&mut self, addr: u64) -> bool {
        match self.frame_index(addr) {
            Some(i) if self.owned_bit(i) => {
                self.set_owned(i, false);
                true
            }
            _ => false,
        }
    }

    /// Undoes [`Umem::release_owned`] for a frame that did not go to the kernel after all.
    #[inline]
    pub(crate) fn reclaim_owned(&mut self, addr: u64) {
        if let Some(i) = self.frame_index(addr) {
            self.set_owned(i, true);
        }
    }

    /// Frames on the free list.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Frames not on the free list (in rings, in the kernel, or held by the caller).
    pub fn in_use(&self) -> usize {
        self.cfg.frame_count as usize - self.free.len()
    }

    /// Moves up to `n` frames from the free list into `f`, which takes a slice of
    /// addresses and returns how many it accepted (from the end of the slice's front).
    pub(crate) fn give_frames(&mut self, n: usize, f: impl FnOnce(&[u64]) -> usize) -> usize {
        let n = n.min(self.free.len());
        let start = self.free.len() - n;
        let taken = f(&self.free[start..]);
        debug_assert!(taken <= n);
        #[cfg(debug_assertions)]
        for &a in &self.free[start..start + taken] {
            let i = self
                .frame_index(a)
                .expect("the free list holds only frames of this UMEM");
            self.on_free_list[i] = false;
        }
        // Keep the frames that were not accepted: they are the tail after `taken`.
        self.free.drain(start..start + taken);
        taken
    }

    /// Identity of the mapping, to check that a socket belongs to this UMEM.
    pub(crate) fn id(&self) -> usize {
        self.area.as_ptr() as usize
    }

    pub(crate) fn area(&self) -> &Mmap {
        &self.area
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> UmemConfig {
        UmemConfig {
            frame_count: 16,
            frame_size: 2048,
            headroom: 0,
            fill_size: 8,
            comp_size: 8,
            rx_size: 8,
            tx_size: 8,
            tx_metadata: TxMetadata::Off,
            multi_buffer: crate::MultiBuffer::Off,
        }
    }

    #[test]
    fn default_config_is_valid() {
        UmemConfig::default().validate().unwrap();
    }

    /// The VmFlags line of the mapping in /proc/self/smaps that contains `addr`.
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = (a..b).contains(&addr);
                    continue;
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return flags.trim().to_owned();
                }
            }
        }
        panic!("no mapping holds {addr:#x} in /proc/self/smaps");
    }

    #[test]
    fn the_area_is_advised_for_huge_pages() {
        let u = Umem::new(&UmemConfig {
            frame_count: 1024,
            frame_size: 4096,
            ..small()
        })
        .unwrap();
        let flags = vm_flags(u.area.as_ptr() as usize);
        // "hg": MADV_HUGEPAGE was applied to the area (whether THP then backs it depends
        // on /sys/kernel/mm/transparent_hugepage).
        assert!(flags.split(' ').any(|f| f == "hg"), "VmFlags: {flags}");
    }

    #[test]
    fn rejects_bad_geometry() {
        let e = Umem::new(&UmemConfig {
            frame_size: 3000,
            ..small()
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("frame_size 3000 must be a power of two"),
            "{e}"
        );
        let e = Umem::new(&UmemConfig {
            headroom: 1800,
            ..small()
        })
        .unwrap_err();
        assert!(e.to_string().contains("XDP_PACKET_HEADROOM"), "{e}");
        let e = Umem::new(&UmemConfig {
            fill_size: 100,
            ..small()
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("fill_size 100 must be a power of two"),
            "{e}"
        );
    }

    #[test]
    fn alloc_free_and_chunks() {
        let mut u = Umem::new(&small()).unwrap();
        assert_eq!(u.free_frames(), 16);
        let a = u.alloc_frame().unwrap();
        let b = u.alloc_frame().unwrap();
        assert_eq!((a, b), (0, 2048));
        assert_eq!(u.in_use(), 2);
        assert!(u.is_caller_owned(b + 300) && !u.is_caller_owned(2 * 2048));
        assert!(!u.is_caller_owned(16 * 2048));
        assert_eq!(u.caller_owned(), 2);
        let (chunk, off) = u.chunk_mut(b + 300);
        assert_eq!((chunk.len(), off), (2048, 300));
        chunk[off] = 0xab;
        assert_eq!(u.chunk(b).0[300], 0xab);
        // Freeing an address inside the chunk returns the chunk base.
        u.free_frame(b + 300);
        assert_eq!(u.alloc_frame(), Some(b));
        u.free_frame(a);
        u.free_frame(b);
        assert_eq!(u.free_frames(), 16);
        while u.alloc_frame().is_some() {}
        assert_eq!(u.in_use(), 16);
    }

    #[test]
    fn a_checksum_request_goes_right_before_the_frame_data() {
        let mut u = Umem::new(&small()).unwrap();
        let a = u.alloc_frame().unwrap();
        let mut d = XdpDesc {
            addr: a + 256,
            len: 100,
            options: 0,
        };
        // Not registered with TX metadata (yet, or refused by the kernel): refused.
        assert!(!u.request_tx_checksum(&mut d, 34, 16));
        assert_eq!(d.options, 0);
        u.set_tx_metadata_len(24);
        u.chunk_mut(a).0.fill(0xee);
        assert!(u.request_tx_checksum(&mut d, 34, 16));
        assert_eq!(d.options, if_xdp::XDP_TX_METADATA);
        let chunk = u.chunk(a).0;
        assert_eq!(chunk[232..256], tx_metadata::checksum_request(34, 16));
        assert!(chunk[..232].iter().chain(&chunk[256..]).all(|&b| b == 0xee));
        // The checksum field past the frame's end, or no room for the metadata in the
        // chunk: refused, nothing written.
        let mut d2 = XdpDesc { len: 51, ..d };
        d2.options = 0;
        assert!(!u.request_tx_checksum(&mut d2, 34, 16));
        let mut d3 = XdpDesc {
            addr: a + 23,
            len: 100,
            options: 0,
        };
        assert!(!u.request_tx_checksum(&mut d3, 34, 16));
        assert_eq!((d2.options, d3.options), (0, 0));
        assert!(u.chunk(a).0[..23].iter().all(|&b| b == 0xee));
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn chunk_outside_panics() {
        let mut u = Umem::new(&small()).unwrap();
        let _ = u.chunk_mut(16 * 2048);
    }

    #[test]
    #[should_panic(
        expected = "Umem::free_frame: UMEM frame 0x0 (address 0xa) is not owned by the caller"
    )]
    fn double_free_panics() {
        let mut u = Umem::new(&small()).unwrap();
        let a = u.alloc_frame().unwrap();
        u.free_frame(a);
        u.free_frame(a + 10);
    }
}
