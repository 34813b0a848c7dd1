//! Strict base64url decoding without padding (RFC 4648 section 5, RFC 7515 section 2).
//!
//! Only the canonical encoding is accepted: no `=`, no characters outside the URL-safe
//! alphabet, no length of the form `4n + 1`, and the unused low bits of the last character
//! must be zero. So every byte string has exactly one accepted encoding, and a token cannot
//! be altered without changing its signed bytes.
//!
//! This is the hot path of token verification, so it decodes a whole quantum (4 characters
//! to 3 bytes) per step through one lookup table and checks validity once per quantum.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Marks a byte that is not in the alphabet: any bit above the low 24.
const INVALID: u32 = 0xff00_0000;

/// For each position in a 4-character quantum, each byte's 6-bit value already shifted into
/// place, or [`INVALID`]. OR-ing four entries gives the 24 decoded bits, and any invalid
/// character leaves a bit above them set.
// Evaluated at compile time: `index` stays below 64, so the casts and the indexing cannot fail.
#[allow(clippy::cast_possible_truncation, clippy::indexing_slicing)]
const DECODE: [[u32; 256]; 4] = {
    let mut tables = [[INVALID; 256]; 4];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut index = 0;
    while index < alphabet.len() {
        let byte = alphabet[index] as usize;
        let value = index as u32;
        tables[0][byte] = value << 18;
        tables[1][byte] = value << 12;
        tables[2][byte] = value << 6;
        tables[3][byte] = value;
        index += 1;
    }
    tables
};

/// The bits of the quantum position `position` for character `byte`.
#[inline]
fn bits(position: usize, byte: u8) -> u32 {
    DECODE
        .get(position)
        .and_then(|table| table.get(usize::from(byte)))
        .copied()
        .unwrap_or(INVALID)
}

/// The decoded length of `encoded_len` characters, or `None` for an impossible length.
pub(crate) const fn decoded_len(encoded_len: usize) -> Option<usize> {
    let tail = match encoded_len % 4 {
        0 => 0,
        2 => 1,
        3 => 2,
        // One leftover character carries 6 bits, never a whole byte.
        _ => return None,
    };
    Some(encoded_len / 4 * 3 + tail)
}

/// Decodes `encoded` into the start of `out`, returning the number of bytes written.
///
/// `None` if the input is not canonical base64url or `out` is too small. Bytes of `out`
/// beyond the decoded length are never written.
pub(crate) fn decode_into(encoded: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = decoded_len(encoded.len())?;
    let out = out.get_mut(..len)?;
    // Any invalid character sets a bit of `INVALID` in `seen`. Testing once at the end keeps
    // the loops free of data-dependent branches; on failure, whatever was written is junk
    // that the caller never sees as a success.
    let mut seen = 0u32;
    let mut written = 0;
    // Two quanta (8 characters, 6 bytes) per step, stored as one 8-byte write whose last
    // two bytes the next step overwrites; the final step writes only its 6 bytes.
    let mut blocks = encoded.chunks_exact(8);
    for block in &mut blocks {
        let &[a, b, c, d, e, f, g, h] = block else {
            return None;
        };
        let high = bits(0, a) | bits(1, b) | bits(2, c) | bits(3, d);
        let low = bits(0, e) | bits(1, f) | bits(2, g) | bits(3, h);
        seen |= high | low;
        let bytes = (((u64::from(high) << 24) | u64::from(low)) << 16).to_be_bytes();
        match out.get_mut(written..written + 8) {
            Some(target) => target.copy_from_slice(&bytes),
            None => out
                .get_mut(written..written + 6)?
                .copy_from_slice(bytes.get(..6)?),
        }
        written += 6;
    }
    let rest = out.get_mut(written..)?;
    match (blocks.remainder(), rest) {
        ([], []) => {}
        (&[a, b], [first]) => {
            let word = bits(0, a) | bits(1, b);
            seen |= word;
            // 12 bits carry 8: the low 4 bits of the last character must be zero.
            if word & 0x0000_ffff != 0 {
                return None;
            }
            let [_, byte, _, _] = word.to_be_bytes();
            *first = byte;
        }
        (&[a, b, c], [first, second]) => {
            let word = bits(0, a) | bits(1, b) | bits(2, c);
            seen |= word;
            // 18 bits carry 16: the low 2 bits of the last character must be zero.
            if word & 0x0000_00ff != 0 {
                return None;
            }
            let [_, high, low, _] = word.to_be_bytes();
            *first = high;
            *second = low;
        }
        (&[a, b, c, d], [first, second, third]) => {
            let word = bits(0, a) | bits(1, b) | bits(2, c) | bits(3, d);
            seen |= word;
            let [_, high, middle, low] = word.to_be_bytes();
            *first = high;
            *second = middle;
            *third = low;
        }
        (&[a, b, c, d, e, f], [first, second, third, fourth]) => {
            let word = bits(0, a) | bits(1, b) | bits(2, c) | bits(3, d);
            let tail = bits(0, e) | bits(1, f);
            seen |= word | tail;
            if tail & 0x0000_ffff != 0 {
                return None;
            }
            let [_, high, middle, low] = word.to_be_bytes();
            let [_, byte, _, _] = tail.to_be_bytes();
            *first = high;
            *second = middle;
            *third = low;
            *fourth = byte;
        }
        (&[a, b, c, d, e, f, g], [first, second, third, fourth, fifth]) => {
            let word = bits(0, a) | bits(1, b) | bits(2, c) | bits(3, d);
            let tail = bits(0, e) | bits(1, f) | bits(2, g);
            seen |= word | tail;
            if tail & 0x0000_00ff != 0 {
                return None;
            }
            let [_, high, middle, low] = word.to_be_bytes();
            let [_, tail_high, tail_low, _] = tail.to_be_bytes();
            *first = high;
            *second = middle;
            *third = low;
            *fourth = tail_high;
            *fifth = tail_low;
        }
        _ => return None,
    }
    if seen & INVALID != 0 {
        return None;
    }
    Some(len)
}

/// Decodes `encoded` into a new vector.
pub(crate) fn decode_vec(encoded: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; decoded_len(encoded.len())?];
    decode_into(encoded, &mut out)?;
    Some(out)
}

/// The URL-safe alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `bytes` as base64url without padding (used only to precompute expected headers).
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |index: usize| u32::from(chunk.get(index).copied().unwrap_or(0));
        let word = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // 1, 2 or 3 bytes become 2, 3 or 4 characters.
        for position in 0..=chunk.len() {
            let sextet = (word >> (18 - 6 * position)) & 0x3f;
            let symbol = ALPHABET.get(sextet as usize).copied().unwrap_or(b'A');
            out.push(char::from(symbol));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn decode_matches_reference_for_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let encoded = URL_SAFE_NO_PAD.encode(&data[..len]);
            assert_eq!(
                decode_vec(encoded.as_bytes()).as_deref(),
                Some(&data[..len]),
                "{len}"
            );
        }
    }

    #[test]
    fn encode_matches_reference_and_round_trips() {
        let data: Vec<u8> = (0..=255u8).rev().collect();
        for len in 0..data.len() {
            let encoded = encode(&data[..len]);
            assert_eq!(encoded, URL_SAFE_NO_PAD.encode(&data[..len]), "{len}");
            assert_eq!(
                decode_vec(encoded.as_bytes()).as_deref(),
                Some(&data[..len])
            );
        }
    }

    #[test]
    fn decode_refuses_non_canonical_input() {
        for bad in [
            "A", "AB", "AAB", "AA=", "AA==", "AAA=", "+AAA", "/AAA", "AA A", "AA.A", "é",
        ] {
            assert_eq!(decode_vec(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(decode_vec(b"AA"), Some(vec![0]));
        assert_eq!(decode_vec(b"AAA"), Some(vec![0, 0]));
        assert_eq!(decode_vec(b""), Some(vec![]));
    }

    #[test]
    fn decode_into_small_buffer_is_refused() {
        let mut out = [0u8; 2];
        assert_eq!(decode_into(b"AAAA", &mut out), None);
        let mut out = [0u8; 4];
        assert_eq!(decode_into(b"AAAA", &mut out), Some(3));
    }

    #[test]
    fn decode_every_invalid_byte_is_refused() {
        for byte in 0..=255u8 {
            let input = [b'A', b'A', b'A', byte];
            let expected = URL_SAFE_NO_PAD.decode(input).ok();
            assert_eq!(decode_vec(&input), expected, "{byte}");
        }
    }
}
