//! The metrics listener: /metrics, /healthz, /readyz, /status (JSON), GETs only; and
//! the client `podfwd status` uses to talk to it. It can listen on the node IP for a
//! central Prometheus: nothing here changes the node (reload and endpoints are on the
//! root-only control socket, `ctl.rs`).
//!
//! Served by `tiny_http`: synchronous, no async runtime, and it takes the listener
//! control.rs already bound (so bind errors stay there). Its accept thread parses
//! requests; this thread answers them one at a time, a few per scrape interval. The
//! client is `minreq`, which has no dependencies without its TLS features.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::views::StatusView;

/// How often [`serve`] looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);

/// Serve on `listener` until `stop` is set (returns within [`POLL`] of it).
///
/// If the listener fails (tiny_http's accept thread stops on an accept error, e.g. out
/// of file descriptors), it is served again from the same socket after 100 ms.
pub fn serve(listener: &TcpListener, status: &Mutex<StatusView>, stop: &AtomicBool) {
    let mut server: Option<Server> = None;
    while !stop.load(Relaxed) {
        if server.is_none() {
            match start(listener) {
                Ok(s) => server = Some(s),
                Err(e) => {
                    log::error!("metrics listener: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let Some(srv) = &server else { continue };
        match srv.recv_timeout(POLL) {
            Ok(Some(rq)) => answer(rq, status),
            Ok(None) => {}
            Err(e) => {
                log::warn!("metrics listener accept: {e}");
                server = None;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A tiny_http server on a clone of `listener` (blocking: its accept thread waits).
fn start(listener: &TcpListener) -> Result<Server, String> {
    let own = listener.try_clone().map_err(|e| e.to_string())?;
    own.set_nonblocking(false).map_err(|e| e.to_string())?;
    Server::from_listener(own, None).map_err(|e| e.to_string())
}

/// What to answer: status code, content type, body.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    code: u16,
    ctype: &'static str,
    body: String,
}

fn text(code: u16, body: String) -> Reply {
    Reply {
        code,
        ctype: "text/plain",
        body,
    }
}

fn answer(rq: Request, status: &Mutex<StatusView>) {
    let r = route(rq.method(), rq.url(), status);
    let response = Response::from_string(r.body)
        .with_status_code(r.code)
        // Always a Content-Length, never chunked (tiny_http chunks above 32 KiB).
        .with_chunked_threshold(usize::MAX)
        .with_header(Header::from_bytes("Content-Type", r.ctype).expect("content types are ASCII"));
    if let Err(e) = rq.respond(response) {
        log::debug!("http: {e}");
    }
}

/// The answer to `method url`. A query string is ignored (`/metrics?x=y` is /metrics).
fn route(method: &Method, url: &str, status: &Mutex<StatusView>) -> Reply {
    let path = url.split('?').next().unwrap_or("");
    let lock = || {
        status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    match (method, path) {
        (Method::Get, "/metrics") => Reply {
            code: 200,
            ctype: crate::metrics::CONTENT_TYPE,
            body: crate::metrics::render(&lock()),
        },
        (Method::Get, "/healthz") => match lock().healthy() {
            Ok(()) => text(200, "ok\n".into()),
            Err(e) => text(503, format!("{e}\n")),
        },
        (Method::Get, "/readyz") => match lock().ready() {
            Ok(()) => text(200, "ready\n".into()),
            Err(e) => text(503, format!("{e}\n")),
        },
        (Method::Get, "/status") => Reply {
            code: 200,
            ctype: "application/json",
            body: crate::status::to_json(&lock()).to_string(),
        },
        (_, "/metrics" | "/healthz" | "/readyz" | "/status") => text(
            405,
            "method not allowed: this listener is read-only\n".into(),
        ),
        (_, "/reload") => text(
            404,
            "not found: reload is on the root-only control socket (`podfwd reload`)\n".into(),
        ),
        _ => text(
            404,
            "not found: try /metrics, /healthz, /readyz, /status\n".into(),
        ),
    }
}

/// `method path` on the podfwd listening at `addr` (`host:port`): status code and body.
///
/// # Errors
/// Connection or protocol failures, with the address in the message.
pub fn request(addr: &str, method: &str, path: &str) -> Result<(u16, String), String> {
    let url = format!("http://{addr}{path}");
    let rq = match method {
        "POST" => minreq::post(url),
        _ => minreq::get(url),
    };
    let resp = rq.with_timeout(15).send().map_err(|e| match e {
        minreq::Error::IoError(e) if unreachable(&e) => format!(
            "cannot reach podfwd at {addr}: {e} (is `podfwd run` up in this network namespace, and is this its metrics.listen?)"
        ),
        minreq::Error::AddressNotFound => format!(
            "cannot reach podfwd at {addr}: no such address (is this its metrics.listen?)"
        ),
        e => format!("podfwd at {addr}: {e}"),
    })?;
    let body = resp
        .as_str()
        .map_err(|e| format!("bad HTTP answer from {addr}: {e}"))?;
    Ok((resp.status_code, body.to_owned()))
}

/// Whether a connect error means nothing listens there (rather than a broken answer).
fn unreachable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::AddrNotAvailable
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;
    use std::time::Instant;

    use super::*;
    use crate::stats::WorkerShared;
    use crate::views::PortView;

    /// A listener on 127.0.0.1:0 served by [`serve`] in a thread, as control.rs does.
    struct Running {
        addr: String,
        status: Arc<Mutex<StatusView>>,
        stop: Arc<AtomicBool>,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl Running {
        fn start(view: StatusView) -> Running {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let status = Arc::new(Mutex::new(view));
            let stop = Arc::new(AtomicBool::new(false));
            let (s, st) = (status.clone(), stop.clone());
            let thread = thread::spawn(move || serve(&listener, &s, &st));
            Running {
                addr,
                status,
                stop,
                thread: Some(thread),
            }
        }

        fn get(&self, method: &str, path: &str) -> (u16, String) {
            request(&self.addr, method, path).unwrap()
        }

        /// Stop and wait; how long `serve` took to return.
        fn stop(&mut self) -> Duration {
            let t = Instant::now();
            self.stop.store(true, Relaxed);
            self.thread.take().unwrap().join().unwrap();
            t.elapsed()
        }
    }

    fn view() -> StatusView {
        StatusView {
            node: "node-a".into(),
            mode: "tunnel".into(),
            ports: vec![PortView {
                name: "lxc0".into(),
                role: "pod",
                mac: "02:00:00:00:00:01".into(),
                mtu: 1500,
                xdp_mode: "native".into(),
                endpoint: None,
                recoveries: 0,
                vacant: false,
            }],
            workers: (0..2)
                .map(|i| Arc::new(WorkerShared::new(i, None, 1)))
                .collect(),
            attached: true,
            ..StatusView::default()
        }
    }

    #[test]
    fn serves_every_route_through_the_client() {
        let mut srv = Running::start(view());
        srv.status.lock().unwrap().workers[1].ports[0]
            .rx_packets
            .store(42, Relaxed);

        let (code, body) = srv.get("GET", "/metrics");
        assert_eq!(code, 200);
        assert!(body.contains("# TYPE podfwd_interface_packets_total counter\n"));
        assert!(body
            .contains("podfwd_interface_packets_total{interface=\"lxc0\",direction=\"rx\"} 42\n"));
        assert_eq!(srv.get("GET", "/metrics?debug=1").0, 200);
        assert_eq!(srv.get("GET", "/healthz"), (200, "ok\n".into()));
        assert_eq!(srv.get("GET", "/readyz"), (200, "ready\n".into()));
        let (code, body) = srv.get("GET", "/status");
        assert_eq!(code, 200);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["node"], "node-a");
        assert_eq!(doc["interfaces"][0]["rx_packets"], 42);
        assert_eq!(
            srv.get("GET", "/nope"),
            (
                404,
                "not found: try /metrics, /healthz, /readyz, /status\n".into()
            )
        );
        assert_eq!(
            srv.get("POST", "/metrics"),
            (
                405,
                "method not allowed: this listener is read-only\n".into()
            )
        );
        assert_eq!(
            srv.get("GET", "/reload"),
            (
                404,
                "not found: reload is on the root-only control socket (`podfwd reload`)\n".into()
            )
        );

        // A worker that stopped on its own fails /healthz (and so /readyz), with why.
        srv.status.lock().unwrap().workers[1].fail("panicked: boom");
        let stopped = "worker 1 stopped: panicked: boom\n".to_owned();
        assert_eq!(srv.get("GET", "/healthz"), (503, stopped.clone()));
        assert_eq!(srv.get("GET", "/readyz"), (503, stopped));
        assert!(srv
            .get("GET", "/metrics")
            .1
            .contains("\npodfwd_healthy 0\n"));

        let took = srv.stop();
        assert!(
            took < Duration::from_millis(150),
            "serve took {took:?} to stop"
        );
    }

    #[test]
    fn metrics_and_status_have_their_content_types() {
        use std::io::{Read, Write};
        let mut srv = Running::start(view());
        let head = |path: &str| {
            let mut s = std::net::TcpStream::connect(&srv.addr).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out.split("\r\n\r\n").next().unwrap().to_ascii_lowercase()
        };
        let m = head("/metrics");
        assert!(
            m.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
            "{m}"
        );
        assert!(m.contains("content-length: "), "{m}");
        assert!(head("/status").contains("content-type: application/json"));
        assert!(head("/healthz").contains("content-type: text/plain\r\n"));
        srv.stop();
    }

    #[test]
    fn the_listener_changes_nothing() {
        let mut srv = Running::start(view());
        assert_eq!(
            srv.get("POST", "/reload"),
            (
                404,
                "not found: reload is on the root-only control socket (`podfwd reload`)\n".into()
            )
        );
        assert_eq!(
            srv.get("POST", "/metrics"),
            (
                405,
                "method not allowed: this listener is read-only\n".into()
            )
        );
        srv.stop();
    }

    #[test]
    fn nothing_listening_says_where_to_look() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let e = request(&addr, "GET", "/status").unwrap_err();
        assert!(
            e.starts_with(&format!("cannot reach podfwd at {addr}: ")),
            "{e}"
        );
        assert!(
            e.ends_with(
                "(is `podfwd run` up in this network namespace, and is this its metrics.listen?)"
            ),
            "{e}"
        );
    }
}
