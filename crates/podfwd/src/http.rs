//! The small HTTP/1.0 listener: /metrics, /healthz, /readyz, /status (JSON), POST /reload.
//!
//! One request per connection, a few per scrape interval: a blocking std listener in its
//! own thread is all this needs.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use crate::views::{ControlRequest, StatusView};

/// Serve until `stop` is set.
pub fn serve(
    listener: &TcpListener,
    status: &Mutex<StatusView>,
    requests: &mpsc::Sender<ControlRequest>,
    stop: &AtomicBool,
) {
    if let Err(e) = listener.set_nonblocking(true) {
        log::error!("metrics listener: {e}");
        return;
    }
    while !stop.load(Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = handle(stream, status, requests) {
                    log::debug!("http: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                log::warn!("metrics listener accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn respond(mut s: &TcpStream, code: u16, ctype: &str, body: &str) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Service Unavailable",
    };
    write!(
        s,
        "HTTP/1.0 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

fn handle(
    stream: TcpStream,
    status: &Mutex<StatusView>,
    requests: &mpsc::Sender<ControlRequest>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Drain the headers.
    let mut h = String::new();
    while reader.read_line(&mut h)? > 2 {
        h.clear();
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    // Ignore a query string (`/metrics?x=y` is still /metrics).
    let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
    let lock = || {
        status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    match (method, path) {
        ("GET", "/metrics") => {
            let body = crate::metrics::render(&lock());
            respond(
                &stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
            )
        }
        ("GET", "/healthz") => match lock().healthy() {
            Ok(()) => respond(&stream, 200, "text/plain", "ok\n"),
            Err(e) => respond(&stream, 503, "text/plain", &format!("{e}\n")),
        },
        ("GET", "/readyz") => match lock().ready() {
            Ok(()) => respond(&stream, 200, "text/plain", "ready\n"),
            Err(e) => respond(&stream, 503, "text/plain", &format!("{e}\n")),
        },
        ("GET", "/status") => {
            let body = crate::status::to_json(&lock()).to_string();
            respond(&stream, 200, "application/json", &body)
        }
        ("POST", "/reload") => {
            let (tx, rx) = mpsc::channel();
            if requests.send(ControlRequest::Reload(tx)).is_err() {
                return respond(&stream, 503, "text/plain", "podfwd is stopping\n");
            }
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(msg)) => respond(&stream, 200, "text/plain", &format!("{msg}\n")),
                Ok(Err(e)) => respond(&stream, 409, "text/plain", &format!("{e}\n")),
                Err(_) => respond(
                    &stream,
                    503,
                    "text/plain",
                    "no answer from the control thread\n",
                ),
            }
        }
        (_, "/metrics" | "/healthz" | "/readyz" | "/status" | "/reload") => {
            respond(&stream, 405, "text/plain", "method not allowed\n")
        }
        _ => respond(
            &stream,
            404,
            "text/plain",
            "not found: try /metrics, /healthz, /readyz, /status\n",
        ),
    }
}

/// A minimal HTTP/1.0 client for `podfwd status` and `podfwd reload`.
///
/// # Errors
/// Connection or protocol failures, with the address in the message.
pub fn request(addr: &str, method: &str, path: &str) -> Result<(u16, String), String> {
    use std::io::Read;
    let mut s = TcpStream::connect(addr).map_err(|e| {
        format!("cannot reach podfwd at {addr}: {e} (is `podfwd run` up in this network namespace, and is this its metrics.listen?)")
    })?;
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad HTTP answer from {addr}"))?;
    Ok((code, body.to_owned()))
}
