//! The plugin's side of the control protocol (`api`): one request line, one answer line.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::api::{Request, Response};
use crate::error::{code, CniError, Result};

/// How long podfwd may take to answer: attaching XDP to a new veth and handing every
/// worker a socket is milliseconds; far more means it is wedged.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket file, or nobody listening on it: podfwd is not running (yet).
    #[error("podfwd is not running: cannot connect to {path}: {source}")]
    NotRunning { path: String, source: io::Error },
    #[error("podfwd control socket {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("podfwd sent an answer that is not a response line ({line:?}): {source}")]
    Decode {
        line: String,
        source: serde_json::Error,
    },
}

impl ClientError {
    /// As a CNI error: code 11 when podfwd is merely not there (the runtime retries).
    pub fn to_cni(&self) -> CniError {
        let c = match self {
            Self::NotRunning { .. } => code::TRY_AGAIN_LATER,
            Self::Io { .. } => code::IO,
            Self::Decode { .. } => code::DECODE,
        };
        CniError::new(c, "podfwd unavailable", self.to_string())
    }
}

pub fn call(socket: &Path, req: &Request) -> Result<Response, ClientError> {
    let path = socket.display().to_string();
    let io_err = |source| ClientError::Io {
        path: path.clone(),
        source,
    };
    let stream = UnixStream::connect(socket).map_err(|source| {
        if matches!(
            source.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
        ) {
            ClientError::NotRunning {
                path: path.clone(),
                source,
            }
        } else {
            ClientError::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io_err)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io_err)?;
    let mut line = serde_json::to_string(req).expect("requests always serialize");
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(io_err)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(io_err)?;
    serde_json::from_str(answer.trim_end()).map_err(|source| ClientError::Decode {
        line: answer,
        source,
    })
}

/// `call`, and an `{"ok":false}` answer as an error too (code 102).
pub fn call_ok(socket: &Path, req: &Request) -> Result<Response> {
    let r = call(socket, req).map_err(|e| e.to_cni())?;
    if r.ok {
        Ok(r)
    } else {
        Err(CniError::new(
            code::PODFWD_REFUSED,
            "podfwd refused the request",
            r.error.unwrap_or_else(|| "no reason given".into()),
        ))
    }
}
