//! What wakes the control thread, and when a change the kernel announced is applied.
//!
//! The thread sleeps in one `mio::Poll` on three sources: the rtnetlink event socket
//! ([`super::Host::event_fd`]: route, neighbour, link and address notifications), the
//! signal self-pipe, and a [`mio::Waker`] that the control-socket thread rings after
//! queueing a request. The sleep is bounded by [`TICK`], so the periodic jobs
//! ([`super::Control::tick`], the workers' liveness) run when nothing happens, as often
//! as before the kernel could wake the thread.
//!
//! Notifications are applied in batches ([`Batch`]): a wake drains the socket into the
//! view, and the refresh that publishes a snapshot follows once the socket has been
//! quiet for [`QUIET`] — at the latest [`BATCH`] after the first change not yet
//! applied, and at most once per [`BATCH`]. An isolated route or neighbour change is so
//! applied within milliseconds, and a burst of thousands of routes (a BGP session coming
//! up) becomes a few snapshots, not one per route.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

/// The longest sleep of the control thread: how late the periodic jobs and a stopped
/// worker are noticed at worst.
pub const TICK: Duration = Duration::from_millis(100);
/// The kernel has announced nothing for this long: the changes so far are one batch.
/// Longer than the gap between the notifications of one `ip -batch` or one BGP update
/// (tens of microseconds), short against the time to build a snapshot of thousands of
/// nodes.
pub const QUIET: Duration = Duration::from_millis(2);
/// A batch waits at most this long for the kernel to fall quiet, and batches are
/// applied at most this often: during a long burst the snapshot follows every
/// `BATCH`, and the control thread's refreshes stay as rare as its ticks.
pub const BATCH: Duration = Duration::from_millis(100);

const KERNEL: Token = Token(0);
const SIGNALS: Token = Token(1);
const WAKER: Token = Token(2);

/// What woke the thread up (all false: the tick's timeout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Woken {
    /// The kernel announced changes (the rtnetlink event socket is readable).
    pub kernel: bool,
    /// A signal, or a request from the control socket.
    pub other: bool,
}

/// The control thread's sleep.
#[derive(Debug)]
pub struct Wakeups {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
}

impl Wakeups {
    /// Sleep on `kernel` (the rtnetlink event socket; `None`: only the tick refreshes),
    /// `signals` (the read end of the signal self-pipe) and a waker for the control
    /// socket. Both fds must stay open as long as this lives, and be drained on every
    /// wake (the registration is edge-triggered).
    ///
    /// # Errors
    /// The epoll instance or eventfd could not be created, or an fd not registered.
    pub fn new(kernel: Option<RawFd>, signals: Option<RawFd>) -> io::Result<Wakeups> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        for (fd, token) in [(kernel, KERNEL), (signals, SIGNALS)] {
            if let Some(fd) = fd {
                poll.registry()
                    .register(&mut SourceFd(&fd), token, Interest::READABLE)?;
            }
        }
        Ok(Wakeups {
            poll,
            events: Events::with_capacity(8),
            waker,
        })
    }

    /// What the control-socket thread rings after queueing a request.
    #[must_use]
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Sleep until something happens, or at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Woken {
        let mut woken = Woken::default();
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => woken.other = true,
            Err(e) => {
                // Never seen; the tick keeps the loop going meanwhile.
                log::warn!("control thread: epoll wait: {e}");
                std::thread::sleep(timeout);
            }
        }
        for ev in &self.events {
            match ev.token() {
                KERNEL => woken.kernel = true,
                _ => woken.other = true,
            }
        }
        woken
    }
}

/// Kernel changes drained into the view but not yet applied to a snapshot, and when
/// they may be (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Batch {
    /// The first and the latest change not yet applied.
    pending: Option<(Instant, Instant)>,
    /// When a batch was last applied.
    applied: Option<Instant>,
}

impl Batch {
    /// The kernel announced a change at `now`.
    pub fn changed(&mut self, now: Instant) {
        let first = self.pending.map_or(now, |(first, _)| first);
        self.pending = Some((first, now));
    }

    /// Everything announced so far is applied (any refresh drains the view first).
    pub fn clear(&mut self) {
        self.pending = None;
    }

    /// When the pending changes are to be applied (`None`: nothing is pending).
    #[must_use]
    pub fn due(&self) -> Option<Instant> {
        let (first, last) = self.pending?;
        let ready = (last + QUIET).min(first + BATCH);
        Some(self.applied.map_or(ready, |a| ready.max(a + BATCH)))
    }

    /// Whether the pending changes are due at `now`; if so they count as applied.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.due().is_some_and(|d| d <= now) {
            self.pending = None;
            self.applied = Some(now);
            true
        } else {
            false
        }
    }
}
