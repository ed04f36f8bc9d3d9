//! Owned memory mappings: the UMEM area (anonymous) and the four rings of a socket
//! (mapped from the socket fd at the `XDP_*_PGOFF_*` offsets). Unmapped on drop.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// One `mmap`ed region, unmapped when dropped.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Mmap` is a plain owned address range; nothing about it is tied to the thread
// that created it, and all access to its contents goes through `&`/`&mut` borrows of
// the owners (`Umem`, rings), which enforce their own synchronisation.
unsafe impl Send for Mmap {}
// SAFETY: sharing `&Mmap` only exposes the pointer and length; see `Send` above.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// A private anonymous read/write mapping of `len` bytes, zero-filled, advised for
    /// transparent huge pages (`MADV_HUGEPAGE`). With `populate` it is then pre-faulted
    /// (`MADV_POPULATE_WRITE`). Both are best effort: without THP (or with it set to
    /// `never`) the area has 4 KiB pages, and a kernel before 5.14 faults it in when the
    /// UMEM is registered. The advice comes before the first fault: a 64 MiB UMEM of
    /// 4 KiB pages puts nearly every frame on a page of its own, so the worker's first
    /// read of each frame's header missed the TLB as well.
    pub(crate) fn anonymous(len: usize, populate: bool) -> io::Result<Mmap> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks cannot alias
        // any existing Rust object; the result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let m = Self::from_raw(ptr, len)?;
        // SAFETY: advice on the range this object has just mapped and owns, which no
        // Rust reference points into yet; neither call changes its contents (zero-filled
        // either way) or whether it is mapped. Failures are ignored: both are hints.
        unsafe {
            libc::madvise(m.as_ptr().cast(), len, libc::MADV_HUGEPAGE);
            if populate {
                libc::madvise(m.as_ptr().cast(), len, libc::MADV_POPULATE_WRITE);
            }
        }
        Ok(m)
    }

    /// A shared read/write mapping of `len` bytes of `fd` at byte offset `offset`
    /// (the AF_XDP ring page offsets).
    pub(crate) fn socket_ring(fd: RawFd, len: usize, offset: libc::off_t) -> io::Result<Mmap> {
        // SAFETY: maps kernel-owned ring memory at a kernel-chosen address, so it aliases
        // no Rust object; the result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                offset,
            )
        };
        Self::from_raw(ptr, len)
    }

    fn from_raw(ptr: *mut libc::c_void, len: usize) -> io::Result<Mmap> {
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Mmap { ptr, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this object created and still owns;
        // every borrow of its contents is tied to the owner's lifetime, so none outlives it.
        let rc = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        if rc != 0 {
            log::warn!(
                "munmap of {} bytes failed: {}",
                self.len,
                io::Error::last_os_error()
            );
        }
    }
}
