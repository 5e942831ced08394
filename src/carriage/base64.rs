//! Standard base64 (RFC 4648 §4, with `=` padding) for the WebSocket handshake keys. Strict: the decoder refuses
//! whitespace, non-canonical trailing bits and data after padding, so a key has exactly one accepted spelling.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Invalid base64, or an output buffer too small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Base64Error {
    /// A character outside the alphabet, bad padding, a length not a multiple of 4, or non-zero trailing bits.
    Invalid,
    /// `out` is too short.
    BufferTooSmall {
        /// Bytes the buffer must have (for `decode`: at least this many).
        required: usize,
    },
}

impl core::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Base64Error::Invalid => f.write_str("invalid base64"),
            Base64Error::BufferTooSmall { required } => {
                write!(f, "base64 output buffer too small: {required} bytes required")
            }
        }
    }
}

impl core::error::Error for Base64Error {}

/// The encoded length of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

fn sym(v: u32) -> u8 {
    ALPHABET.get((v & 63) as usize).copied().unwrap_or(b'=')
}

/// Encodes `input` into `out`; returns the bytes written.
pub fn encode(input: &[u8], out: &mut [u8]) -> Result<usize, Base64Error> {
    let need = encoded_len(input.len());
    let out = out
        .get_mut(..need)
        .ok_or(Base64Error::BufferTooSmall { required: need })?;
    for (chunk, dst) in input.chunks(3).zip(out.chunks_mut(4)) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        let syms = [
            sym(v >> 18),
            sym(v >> 12),
            if chunk.len() > 1 { sym(v >> 6) } else { b'=' },
            if chunk.len() > 2 { sym(v) } else { b'=' },
        ];
        dst.copy_from_slice(&syms);
    }
    Ok(need)
}

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes `input` into `out`; returns the bytes written.
pub fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, Base64Error> {
    if !input.len().is_multiple_of(4) {
        return Err(Base64Error::Invalid);
    }
    let groups = input.len() / 4;
    let mut written = 0;
    for (gi, g) in input.chunks(4).enumerate() {
        let last = gi + 1 == groups;
        let pad = g.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err(Base64Error::Invalid);
        }
        let mut v = 0u32;
        for (i, &c) in g.iter().enumerate() {
            let d = if i >= 4 - pad {
                0
            } else {
                value(c).ok_or(Base64Error::Invalid)?
            };
            v = (v << 6) | d;
        }
        let n = 3 - pad;
        // Canonical form: the bits under the padding must be zero.
        let dropped = match pad {
            1 => v & 0xff,
            2 => v & 0xffff,
            _ => 0,
        };
        if dropped != 0 {
            return Err(Base64Error::Invalid);
        }
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.get_mut(written..written + n)
            .ok_or(Base64Error::BufferTooSmall { required: written + n })?
            .copy_from_slice(bytes.get(..n).unwrap_or(&[]));
        written += n;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            let mut o = [0u8; 16];
            let n = encode(plain, &mut o).unwrap();
            assert_eq!(&o[..n], enc);
            let mut d = [0u8; 16];
            let n = decode(enc, &mut d).unwrap();
            assert_eq!(&d[..n], plain);
        }
    }

    #[test]
    fn strictness() {
        let mut d = [0u8; 16];
        for bad in [&b"Zg="[..], b"Zh==", b"Z===", b"Zg==Zg==", b"Zm9 ", b"Zm9v\n"] {
            assert_eq!(decode(bad, &mut d), Err(Base64Error::Invalid), "{bad:?}");
        }
        assert_eq!(
            decode(b"Zm9vYmFy", &mut d[..5]),
            Err(Base64Error::BufferTooSmall { required: 6 })
        );
    }
}
