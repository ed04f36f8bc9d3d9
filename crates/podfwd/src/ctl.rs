//! The root-only control socket: a unix stream socket (mode 0600 in a 0700 directory)
//! whose peers must also be root by their credentials (`SO_PEERCRED`). One request line,
//! one answer line per connection ([`podfwd_api`]); the answers come from the control
//! thread, through [`ControlRequest::Api`] on a [`ToControl`].

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::views::ControlRequest;
use podfwd_api::{Request, Response};

/// The longest request line accepted.
const MAX_LINE: u64 = 64 * 1024;

/// The way to the control thread: a request is queued, then the thread woken (it sleeps
/// in [`crate::control::wake::Wakeups`]).
#[derive(Debug, Clone)]
pub struct ToControl {
    tx: mpsc::Sender<ControlRequest>,
    waker: Arc<mio::Waker>,
}

/// A [`ToControl`] that rings `waker`, and the control thread's end.
#[must_use]
pub fn channel(waker: Arc<mio::Waker>) -> (ToControl, mpsc::Receiver<ControlRequest>) {
    let (tx, rx) = mpsc::channel();
    (ToControl { tx, waker }, rx)
}

impl ToControl {
    /// Queue `req` and wake the control thread.
    ///
    /// # Errors
    /// The control thread is gone.
    pub fn send(&self, req: ControlRequest) -> Result<(), mpsc::SendError<ControlRequest>> {
        self.tx.send(req)?;
        if let Err(e) = self.waker.wake() {
            // Never seen; the control thread still looks within its tick.
            log::warn!("control socket: waking the control thread: {e}");
        }
        Ok(())
    }
}

/// Bind the control socket at `path`: its directory is created 0700 if missing; a stale
/// socket file (nobody answers on it) is replaced; the socket is made 0600.
///
/// # Errors
/// Another process serves it, or the path cannot be used, in words.
pub fn bind(path: &Path) -> Result<UnixListener, String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                format!(
                    "cannot create the control socket's directory {}: {e}",
                    dir.display()
                )
            })?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "control socket {} is in use by another process (another podfwd with the same control.socket?); stop it or give this node its own control.socket",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| {
            format!(
                "cannot remove the stale control socket {}: {e}",
                path.display()
            )
        })?;
    }
    let l = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on control socket {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot make {} root-only: {e}", path.display()))?;
    Ok(l)
}

/// How long [`serve`] waits for a connection before it looks at its stop flag again.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Serve `listener` until `stop` is set (returns within [`STOP_POLL`] of it), then
/// remove the socket file at `path`. Between connections the thread sleeps in epoll on
/// the listener, so an idle podfwd does not wake up for it.
pub fn serve(listener: &UnixListener, path: &Path, requests: &ToControl, stop: &AtomicBool) {
    let poll = listener.set_nonblocking(true).and_then(|()| {
        let poll = Poll::new()?;
        let fd = listener.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(0), Interest::READABLE)?;
        Ok(poll)
    });
    let mut poll = match poll {
        Ok(p) => p,
        Err(e) => {
            log::error!("control socket: {e}");
            return;
        }
    };
    let mut events = Events::with_capacity(4);
    while !stop.load(Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = handle(stream, requests) {
                    log::debug!("control socket: {e}");
                }
            }
            // Edge-triggered: every connection queued so far has been taken, so the next
            // one raises a new event.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Err(e) = poll.poll(&mut events, Some(STOP_POLL)) {
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        log::warn!("control socket poll: {e}");
                        std::thread::sleep(STOP_POLL);
                    }
                }
            }
            Err(e) => {
                log::warn!("control socket accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let _ = std::fs::remove_file(path);
}

/// The peer's uid, from the kernel (`SO_PEERCRED`).
fn peer_uid(s: &UnixStream) -> Option<u32> {
    nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials)
        .ok()
        .map(|c| c.uid())
}

fn handle(stream: UnixStream, requests: &ToControl) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    // The request line is read from every peer, also one that is refused: closing the
    // connection before the peer has written would give it EPIPE instead of the answer.
    let mut line = String::new();
    BufReader::new((&stream).take_limited()).read_line(&mut line)?;
    let answer = match peer_uid(&stream) {
        Some(0) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => ask(requests, req),
            Err(e) => Response::refused(format!("bad request: {e}")),
        },
        Some(uid) => Response::refused(format!(
            "permission denied: the control socket is root-only (peer uid {uid})"
        )),
        None => Response::refused("permission denied: peer credentials unavailable"),
    };
    let mut out = serde_json::to_string(&answer).unwrap_or_else(|_| r#"{"ok":false}"#.into());
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}

/// Hand `req` to the control thread and wait for its answer.
fn ask(requests: &ToControl, req: Request) -> Response {
    let (tx, rx) = mpsc::channel();
    if requests.send(ControlRequest::Api(req, tx)).is_err() {
        return Response::refused("podfwd is stopping");
    }
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| Response::refused("no answer from the control thread within 30 s"))
}

/// A reader that stops after [`MAX_LINE`] bytes.
trait TakeLimited: std::io::Read + Sized {
    fn take_limited(self) -> std::io::Take<Self> {
        self.take(MAX_LINE)
    }
}

impl<R: std::io::Read> TakeLimited for R {}

/// Send `req` to the podfwd serving `path` and return its answer.
///
/// # Errors
/// Nothing listens there, or the answer is not one, in words.
pub fn request(path: &Path, req: &Request) -> Result<Response, String> {
    let s = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach podfwd's control socket {}: {e} (is `podfwd run` up, and is this its control.socket? give it with --socket or --config)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(40)))
        .map_err(|e| e.to_string())?;
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    (&s).write_all(line.as_bytes())
        .map_err(|e| format!("control socket {}: {e}", path.display()))?;
    let mut answer = String::new();
    BufReader::new(&s)
        .read_line(&mut answer)
        .map_err(|e| format!("control socket {}: {e}", path.display()))?;
    serde_json::from_str(answer.trim())
        .map_err(|e| format!("bad answer from control socket {}: {e}", path.display()))
}

/// The socket a client command talks to: `--socket`, else `control.socket` of
/// `--config`, else the default.
///
/// # Errors
/// The config cannot be read.
pub fn socket_path(socket: Option<PathBuf>, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(s) = socket {
        return Ok(s);
    }
    match config {
        Some(c) => podfwd_config::Config::load(c)
            .map(|c| c.control.socket)
            .map_err(|e| e.to_string()),
        None => Ok(podfwd_config::DEFAULT_CONTROL_SOCKET.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reach_the_control_thread_and_answers_come_back() {
        let dir = std::env::temp_dir().join(format!("podfwd-ctl-test-{}", std::process::id()));
        let path = dir.join("sub/podfwd.sock");
        let l = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        // A second bind while it is served is refused.
        let err = bind(&path).unwrap_err();
        assert!(err.contains("is in use by another process"), "{err}");

        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, rx) = channel(waker);
        let stop = Arc::new(AtomicBool::new(false));
        let (p2, st) = (path.clone(), stop.clone());
        let server = std::thread::spawn(move || serve(&l, &p2, &tx, &st));
        let control = std::thread::spawn(move || {
            let ControlRequest::Api(req, reply) = rx.recv().unwrap();
            assert_eq!(req, Request::Reload);
            reply.send(Response::done("reloaded x")).unwrap();
        });
        assert_eq!(
            request(&path, &Request::Reload).unwrap(),
            Response::done("reloaded x")
        );
        control.join().unwrap();
        // The control side is gone: said so.
        assert_eq!(
            request(&path, &Request::Ping).unwrap(),
            Response::refused("podfwd is stopping")
        );
        stop.store(true, Relaxed);
        server.join().unwrap();
        assert!(!path.exists(), "socket file removed at stop");
        let e = request(&path, &Request::Ping).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "cannot reach podfwd's control socket {}",
                path.display()
            )),
            "{e}"
        );
        // A stale file is replaced.
        std::fs::write(&path, b"").unwrap();
        drop(bind(&path).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
