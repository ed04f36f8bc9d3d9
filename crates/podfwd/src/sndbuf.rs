//! `PODFWD_XSK_SNDBUF`: the send buffer of every AF_XDP socket, in bytes.
//!
//! In copy mode each TX descriptor becomes an skb charged to the socket's send buffer
//! (net/xdp/xsk.c `xsk_build_skb` → `sock_alloc_send_skb`); once the skbs in flight to the
//! device fill it, `sendto` stops early and the rest waits for the next wakeup. A larger
//! buffer lets more frames be in flight per wakeup. Unset, sockets keep the kernel's
//! default (`net.core.wmem_default`). The value is read once at start-up and applies to
//! every socket opened afterwards too (pods added over the control socket).

use std::sync::OnceLock;

use xsk::XskSocket;

/// The environment variable.
pub const ENV: &str = "PODFWD_XSK_SNDBUF";
/// Smallest request accepted: below it the kernel raises it to its own minimum anyway.
pub const MIN: u32 = 4096;
/// Largest request accepted (the kernel doubles it, and the result must fit an `int`).
pub const MAX: u32 = 1 << 30;

static SETTING: OnceLock<Option<u32>> = OnceLock::new();

/// Parses a value of [`ENV`]: a number of bytes in `MIN..=MAX`.
///
/// # Errors
/// The message names the variable, the value and the accepted range.
pub fn parse(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if (u64::from(MIN)..=u64::from(MAX)).contains(&n) => {
            Ok(u32::try_from(n).unwrap_or(MAX))
        }
        _ => Err(format!(
            "{ENV}=`{v}` is not a send buffer size: give bytes, {MIN}..={MAX} (e.g. 4194304), or unset it for the kernel's default"
        )),
    }
}

/// Reads [`ENV`] once for the process; later calls return the first answer.
///
/// # Errors
/// The value does not parse (see [`parse`]).
pub fn init() -> Result<Option<u32>, String> {
    let v = match std::env::var(ENV) {
        Ok(v) => Some(parse(&v)?),
        Err(_) => None,
    };
    Ok(*SETTING.get_or_init(|| v))
}

/// The setting [`init`] read (`None` before it, or when unset).
pub fn get() -> Option<u32> {
    SETTING.get().copied().flatten()
}

/// Applies the setting to a new socket and logs what the kernel reports back.
pub fn apply(s: &XskSocket, what: &str) {
    let Some(bytes) = get() else { return };
    match s.set_sndbuf(bytes) {
        Ok(got) => log::info!(
            "{what}: SO_SNDBUF {got} bytes ({ENV}={bytes}; the kernel reports twice the request)"
        ),
        Err(e) => log::warn!("{what}: {e}; the socket keeps the kernel's default send buffer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bytes_in_range_only() {
        assert_eq!(parse("4194304"), Ok(4_194_304));
        assert_eq!(parse(" 4096 "), Ok(4096));
        assert_eq!(parse("1073741824"), Ok(1 << 30));
        for bad in ["", "4095", "1073741825", "4M", "-1", "0x1000"] {
            assert_eq!(
                parse(bad),
                Err(format!("PODFWD_XSK_SNDBUF=`{bad}` is not a send buffer size: give bytes, 4096..=1073741824 (e.g. 4194304), or unset it for the kernel's default")),
                "{bad}"
            );
        }
    }
}
