//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried as `u32` values that are already folded to 16 bits
//! (`sum <= 0xffff`), so callers can add a handful of them without overflow and pass
//! the result back as `initial`. A checksum field holds `!fold(sum)`; a header verifies
//! when the sum over it, checksum included, folds to `0xffff`.

/// Folds a 32-bit ones'-complement accumulator to 16 bits (end-around carry).
#[inline]
#[must_use]
pub fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    // Two rounds suffice: after the first, sum <= 0x1fffe; after the second, <= 0xffff.
    #[allow(clippy::cast_possible_truncation)]
    {
        sum as u16
    }
}

#[inline]
fn fold64(acc: u64) -> u32 {
    let a = (acc & 0xffff_ffff) + (acc >> 32); // <= 0x1_ffff_fffe
    let b = (a & 0xffff_ffff) + (a >> 32); // <= 0xffff_ffff
    #[allow(clippy::cast_possible_truncation)]
    let b = b as u32;
    u32::from(fold(b))
}

/// Ones'-complement sum of `data` as big-endian 16-bit words (an odd final byte is the
/// high byte of a zero-padded word), added to `initial`. Returns a folded sum (`<= 0xffff`).
#[inline]
#[must_use]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    // The bulk is summed as native-endian 32-bit words into a u64 (no byte swaps, and
    // the compiler vectorises it); the folded result is byte-swapped into network order
    // at the end, which RFC 1071 §2(B) shows is the same sum. A u64 absorbs the carries
    // of 2^32 words, far beyond any packet.
    let mut acc: u64 = 0;
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        for w in b.chunks_exact(4) {
            acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
        }
    }
    let mut words = blocks.remainder().chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let bulk = fold(fold64(acc));
    let bulk = if cfg!(target_endian = "little") {
        bulk.swap_bytes()
    } else {
        bulk
    };
    let mut tail_sum = u32::from(bulk) + (initial & 0xffff) + (initial >> 16);
    let mut tail = words.remainder().chunks_exact(2);
    for w in &mut tail {
        tail_sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = tail.remainder() {
        tail_sum += u32::from(*b) << 8;
    }
    u32::from(fold(tail_sum))
}

/// The folded [`sum`] of `pieces` taken as one sequence of bytes (a frame in several
/// buffers): a piece after an odd number of bytes has its sum's bytes swapped (RFC 1071
/// §2 (B)).
#[must_use]
pub fn sum_pieces<'p>(pieces: impl IntoIterator<Item = &'p [u8]>) -> u16 {
    let mut acc: u32 = 0;
    let mut odd = false;
    for piece in pieces {
        let s = fold(sum(piece, 0));
        let s = if odd { s.swap_bytes() } else { s };
        acc = u32::from(fold(acc + u32::from(s)));
        odd ^= piece.len() % 2 == 1;
    }
    fold(acc)
}

/// The Internet checksum of `data` on top of `initial`: `!fold(sum(data, initial))`.
#[inline]
#[must_use]
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    !fold(sum(data, initial))
}

/// Sum of the IPv4 pseudo-header that TCP and UDP checksums cover (RFC 768, RFC 793):
/// source, destination, zero + protocol, and the L4 length. Folded (`<= 0xffff`).
#[inline]
#[must_use]
pub fn pseudo_header_sum(src: u32, dst: u32, protocol: u8, l4_len: u16) -> u32 {
    let s = (src >> 16)
        + (src & 0xffff)
        + (dst >> 16)
        + (dst & 0xffff)
        + u32::from(protocol)
        + u32::from(l4_len);
    u32::from(fold(s))
}

/// What a CHECKSUM_PARTIAL TCP or UDP packet carries in its checksum field: the folded,
/// *non-inverted* pseudo-header sum (Linux `__tcp_v4_send_check`:
/// `th->check = ~tcp_v4_check(len, s, d, 0)`; `udp4_hwcsum` likewise), which the device
/// is expected to finish over the L4 header and payload.
#[inline]
#[must_use]
pub fn partial_pseudo_header(src: u32, dst: u32, protocol: u8, l4_len: u16) -> u16 {
    fold(pseudo_header_sum(src, dst, protocol, l4_len))
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changes from
/// `old` to `new`: `HC' = ~(~HC + ~m + m')`.
///
/// Matches a full recomputation except when the covered data sums to zero, where the
/// two zero representations (0x0000 / 0xffff) may differ; an IPv4 header never does.
#[inline]
#[must_use]
pub fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!csum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// [`update_u16`] for a 32-bit field (an address): both halves at once.
#[inline]
#[must_use]
pub fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!csum) + (!old >> 16) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's worked example: words 0001 f203 f4f5 f6f7 sum to 0xddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data, 0), !0xddf2);
        // Odd tail is the high byte of a padded word.
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56], 0)), 0x1234 + 0x5600);
    }

    /// A sequence cut into pieces of any lengths, odd ones included, sums as one.
    #[test]
    fn pieces_sum_as_one() {
        #[allow(clippy::cast_possible_truncation)] // masked to a byte
        let data: Vec<u8> = (0..9001u32)
            .map(|i| ((i * 7 + i / 13) & 0xff) as u8)
            .collect();
        let whole = fold(sum(&data, 0));
        for cuts in [
            vec![3841, 7682],
            vec![1, 2, 3],
            vec![4000, 4001],
            vec![8999, 9000],
        ] {
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts {
                pieces.push(&data[at..c]);
                at = c;
            }
            pieces.push(&data[at..]);
            assert_eq!(sum_pieces(pieces), whole);
        }
    }

    /// Ten-byte and longer inputs go through the 8-byte loop and the tails.
    #[test]
    fn chunked_equals_wordwise() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let mut s: u32 = 0;
        for w in data.chunks(2) {
            let word = if w.len() == 2 {
                u16::from_be_bytes([w[0], w[1]])
            } else {
                u16::from(w[0]) << 8
            };
            s = u32::from(fold(s + u32::from(word)));
        }
        assert_eq!(u32::from(fold(sum(&data, 0))), s);
    }

    /// RFC 1624 §4's example: HC 0xdd2f, m 0x5555 -> m' 0x3285 gives HC' 0x0000.
    #[test]
    fn rfc1624_example() {
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn ipv4_header_checksum_known() {
        // Wikipedia's IPv4 header checksum example.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr, 0), 0xb861);
    }

    #[test]
    fn pseudo_header() {
        // 10.0.1.2 -> 10.0.2.3, UDP, length 8.
        let s = pseudo_header_sum(0x0a00_0102, 0x0a00_0203, 17, 8);
        assert_eq!(s, 0x0a00 + 0x0102 + 0x0a00 + 0x0203 + 17 + 8);
        assert_eq!(
            partial_pseudo_header(0x0a00_0102, 0x0a00_0203, 17, 8),
            0x171e
        );
        // A carry folds back in: ffff.ffff -> ffff.ffff, TCP, length 0x20.
        assert_eq!(
            partial_pseudo_header(0xffff_ffff, 0xffff_ffff, 6, 0x20),
            0x0026
        );
    }
}
