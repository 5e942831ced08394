//! `gzip_packed` support: an RFC 1952 member parser and a bounded, allocation-free inflater.
//!
//! miniz_oxide inflates raw DEFLATE only, so the gzip header and trailer are handled here. Inflation writes straight
//! into the caller's slice with `TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF`: **the slice length is the output cap**
//! (docs/CHECKLIST.md item 50, attack B14), so a bomb stops at the cap with [`GzipError::OutputTooLarge`] and nothing
//! is written past the slice. Memory use is the caller's slice plus the ~10.5 KB [`DecompressorOxide`] state:
//! [`inflate`] keeps that on the stack; on a microcontroller keep one in a `static` and call [`inflate_with`] instead.
//!
//! A member whose trailer announces (ISIZE) more than the slice holds is refused before any inflating, so a result
//! too large for its buffer costs nothing. [`inflate_metered`] reports
//! the work each attempt did (compressed bytes read plus bytes written, failed attempts included), so a caller can
//! bound the total per received packet (the session does, see `session::limits::INFLATE_WORK_PER_RX`).
//!
//! This layer inflates one level only; whether gzip may appear at a given place (and the "no gzip inside gzip" rule)
//! is the session's decision.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use miniz_oxide::inflate::TINFLStatus;
pub use miniz_oxide::inflate::core::DecompressorOxide;
use miniz_oxide::inflate::core::{decompress, inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF};

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

const ID1: u8 = 0x1f;
const ID2: u8 = 0x8b;
const CM_DEFLATE: u8 = 8;
const FTEXT: u8 = 1 << 0;
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = 0xe0;
const TRAILER_LEN: usize = 8;

/// Longest zero-terminated `FNAME` or `FCOMMENT` field accepted, terminator included. Telegram sends neither; the
/// cap only keeps header parsing work small and predictable.
pub const MAX_HEADER_STRING: usize = 1024;

/// Why a gzip member could not be inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GzipError {
    /// The input ended inside the header, the DEFLATE stream or the trailer.
    Truncated,
    /// Not a gzip member (`1f 8b` missing).
    BadMagic,
    /// Compression method other than DEFLATE (8).
    UnsupportedMethod(u8),
    /// Reserved FLG bits are set.
    ReservedFlags,
    /// An `FNAME`/`FCOMMENT` field is longer than [`MAX_HEADER_STRING`].
    HeaderFieldTooLong,
    /// The `FHCRC` header checksum does not match.
    HeaderCrcMismatch,
    /// The DEFLATE stream is invalid.
    BadDeflate,
    /// The inflated data does not fit in the output slice (the output cap).
    OutputTooLarge,
    /// The CRC32 of the inflated data does not match the trailer.
    CrcMismatch,
    /// The inflated length does not match the trailer's ISIZE.
    SizeMismatch,
    /// Bytes follow the member's trailer.
    TrailingData,
}

impl fmt::Display for GzipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("gzip data truncated"),
            Self::BadMagic => f.write_str("not a gzip member"),
            Self::UnsupportedMethod(m) => write!(f, "unsupported gzip compression method {m}"),
            Self::ReservedFlags => f.write_str("reserved gzip flags set"),
            Self::HeaderFieldTooLong => f.write_str("gzip header name/comment too long"),
            Self::HeaderCrcMismatch => f.write_str("gzip header CRC mismatch"),
            Self::BadDeflate => f.write_str("invalid DEFLATE stream"),
            Self::OutputTooLarge => f.write_str("inflated gzip data exceeds the output buffer"),
            Self::CrcMismatch => f.write_str("gzip CRC32 mismatch"),
            Self::SizeMismatch => f.write_str("gzip ISIZE mismatch"),
            Self::TrailingData => f.write_str("data after the gzip member"),
        }
    }
}

impl core::error::Error for GzipError {}

fn skip_zero_terminated(data: &[u8], pos: usize) -> Result<usize, GzipError> {
    let rest = data.get(pos..).ok_or(GzipError::Truncated)?;
    let window = rest.get(..MAX_HEADER_STRING).unwrap_or(rest);
    match window.iter().position(|&b| b == 0) {
        Some(i) => Ok(pos + i + 1),
        None if rest.len() > MAX_HEADER_STRING => Err(GzipError::HeaderFieldTooLong),
        None => Err(GzipError::Truncated),
    }
}

/// Parses the RFC 1952 member header; returns the offset of the DEFLATE stream.
fn parse_header(gz: &[u8]) -> Result<usize, GzipError> {
    let fixed = gz.get(..10).ok_or(GzipError::Truncated)?;
    let &[id1, id2, cm, flg, ..] = fixed else {
        return Err(GzipError::Truncated);
    };
    if id1 != ID1 || id2 != ID2 {
        return Err(GzipError::BadMagic);
    }
    if cm != CM_DEFLATE {
        return Err(GzipError::UnsupportedMethod(cm));
    }
    if flg & FRESERVED != 0 {
        return Err(GzipError::ReservedFlags);
    }
    // FTEXT is only a hint about the content; it changes nothing here.
    let _ = flg & FTEXT;
    let mut pos = 10usize;
    if flg & FEXTRA != 0 {
        let xlen = gz.get(pos..pos + 2).ok_or(GzipError::Truncated)?;
        let xlen = usize::from(u16::from_le_bytes([
            *xlen.first().unwrap_or(&0),
            *xlen.get(1).unwrap_or(&0),
        ]));
        pos += 2;
        if xlen > gz.len().saturating_sub(pos) {
            return Err(GzipError::Truncated);
        }
        pos += xlen;
    }
    if flg & FNAME != 0 {
        pos = skip_zero_terminated(gz, pos)?;
    }
    if flg & FCOMMENT != 0 {
        pos = skip_zero_terminated(gz, pos)?;
    }
    if flg & FHCRC != 0 {
        let covered = gz.get(..pos).ok_or(GzipError::Truncated)?;
        let stored = gz.get(pos..pos + 2).ok_or(GzipError::Truncated)?;
        let stored = u16::from_le_bytes([*stored.first().unwrap_or(&0), *stored.get(1).unwrap_or(&0)]);
        if (crc32fast::hash(covered) & 0xffff) as u16 != stored {
            return Err(GzipError::HeaderCrcMismatch);
        }
        pos += 2;
    }
    Ok(pos)
}

/// What one inflation attempt cost, counted whether it succeeded or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InflateWork {
    /// Compressed bytes read: the header, the DEFLATE stream as far as it was decoded, the trailer if reached (all
    /// of `gz` when the header is refused, as parsing it may have scanned that far).
    pub read: usize,
    /// Bytes of output written (and, on success, read again for the CRC).
    pub written: usize,
}

impl InflateWork {
    /// `read + written`: the measure a caller budgets.
    pub const fn total(&self) -> usize {
        self.read.saturating_add(self.written)
    }
}

/// Inflates the gzip member `gz` into `out` and returns the inflated length.
///
/// `out.len()` is the output cap: larger output fails with [`GzipError::OutputTooLarge`] (bytes up to the cap may
/// have been written; nothing beyond), before any inflating when the trailer's ISIZE already says so. CRC32 and
/// ISIZE are checked, and the member must span all of `gz`. Uses about 10.5 KB of stack for the decompressor
/// state; see [`inflate_with`] to supply it.
pub fn inflate(gz: &[u8], out: &mut [u8]) -> Result<usize, GzipError> {
    inflate_metered(gz, out).0
}

/// [`inflate`], also reporting the work done, failed attempts included.
pub fn inflate_metered(gz: &[u8], out: &mut [u8]) -> (Result<usize, GzipError>, InflateWork) {
    let mut work = InflateWork::default();
    let r = match precheck(gz, out.len(), &mut work) {
        // The ~10.5 KB state is set up only for a member that passed the cheap checks.
        Ok(body) => run_body(&mut DecompressorOxide::new(), body, out, &mut work),
        Err(e) => Err(e),
    };
    (r, work)
}

/// [`inflate`] with caller-owned decompressor state (re-initialised here), e.g. one kept in a `static` on an MCU
/// so the ~10.5 KB does not land on a small stack.
pub fn inflate_with(state: &mut DecompressorOxide, gz: &[u8], out: &mut [u8]) -> Result<usize, GzipError> {
    let mut work = InflateWork::default();
    let body = precheck(gz, out.len(), &mut work)?;
    run_body(state, body, out, &mut work)
}

/// The header, and the trailer's ISIZE against `out_len`; returns the DEFLATE stream and trailer.
fn precheck<'a>(gz: &'a [u8], out_len: usize, work: &mut InflateWork) -> Result<&'a [u8], GzipError> {
    // A refused header may have been scanned to the end.
    work.read = gz.len();
    let start = parse_header(gz)?;
    work.read = start;
    let body = gz.get(start..).ok_or(GzipError::Truncated)?;
    let Some((_, trailer)) = body.split_last_chunk::<TRAILER_LEN>() else {
        return Err(GzipError::Truncated);
    };
    // A valid member spans all of `gz`, so its ISIZE is the last four bytes: one announcing more than `out` holds is
    // refused before inflating. ISIZE is the length mod 2^32, so this holds only for an `out` below 4 GiB. A member
    // announcing less than it holds is found out after inflating (SizeMismatch), its output still capped by `out`.
    let announced = trailer.last_chunk::<4>().map_or(0, |b| u32::from_le_bytes(*b));
    if u32::try_from(out_len).is_ok() && usize::try_from(announced).is_ok_and(|n| n > out_len) {
        return Err(GzipError::OutputTooLarge);
    }
    Ok(body)
}

fn run_body(
    state: &mut DecompressorOxide,
    body: &[u8],
    out: &mut [u8],
    work: &mut InflateWork,
) -> Result<usize, GzipError> {
    state.init();
    // No TINFL_FLAG_HAS_MORE_INPUT: the whole member is here, so running out of input means truncation.
    let (status, consumed, written) = decompress(state, body, out, 0, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF);
    work.read = work.read.saturating_add(consumed);
    work.written = written;
    match status {
        TINFLStatus::Done => {}
        TINFLStatus::HasMoreOutput => return Err(GzipError::OutputTooLarge),
        TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => return Err(GzipError::Truncated),
        _ => return Err(GzipError::BadDeflate),
    }
    let trailer = body.get(consumed..).ok_or(GzipError::Truncated)?;
    let (crc, rest) = trailer.split_first_chunk::<4>().ok_or(GzipError::Truncated)?;
    let (isize, rest) = rest.split_first_chunk::<4>().ok_or(GzipError::Truncated)?;
    work.read = work.read.saturating_add(TRAILER_LEN);
    if !rest.is_empty() {
        return Err(GzipError::TrailingData);
    }
    let data = out.get(..written).ok_or(GzipError::OutputTooLarge)?;
    if crc32fast::hash(data) != u32::from_le_bytes(*crc) {
        return Err(GzipError::CrcMismatch);
    }
    if written as u32 != u32::from_le_bytes(*isize) {
        return Err(GzipError::SizeMismatch);
    }
    Ok(written)
}

/// Compresses `data` into one gzip member (10-byte header, raw DEFLATE at `level` 0..=10, CRC32, ISIZE), suitable
/// for `gzip_packed` on send. miniz_oxide's compressor state is boxed, hence `alloc`.
#[cfg(feature = "alloc")]
#[must_use]
pub fn deflate_gzip(data: &[u8], level: u8) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(data, level);
    let mut out = Vec::with_capacity(10 + deflated.len() + TRAILER_LEN);
    // MTIME 0 (unknown) keeps the output deterministic; XFL 0, OS 255 (unknown).
    out.extend_from_slice(&[ID1, ID2, CM_DEFLATE, 0, 0, 0, 0, 0, 0, 0xff]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A stored (uncompressed) DEFLATE block, built by hand, so these tests need no compressor.
    fn stored_member(data: &[u8], flg: u8, extra: &[u8]) -> [u8; 128] {
        assert!(data.len() <= 32);
        let mut out = [0u8; 128];
        let mut n = 0;
        let mut push = |b: &[u8]| {
            out[n..n + b.len()].copy_from_slice(b);
            n += b.len();
        };
        push(&[ID1, ID2, CM_DEFLATE, flg, 0, 0, 0, 0, 0, 3]);
        push(extra);
        let len = data.len() as u16;
        push(&[1]);
        push(&len.to_le_bytes());
        push(&(!len).to_le_bytes());
        push(data);
        push(&crc32fast::hash(data).to_le_bytes());
        push(&(data.len() as u32).to_le_bytes());
        out
    }

    fn member_len(data: &[u8], extra: &[u8]) -> usize {
        10 + extra.len() + 5 + data.len() + 8
    }

    #[test]
    fn stored_block_inflates() {
        let m = stored_member(b"hello tl", 0, &[]);
        let mut out = [0u8; 8];
        assert_eq!(inflate(&m[..member_len(b"hello tl", &[])], &mut out), Ok(8));
        assert_eq!(&out, b"hello tl");
    }

    #[test]
    fn optional_header_fields_are_skipped() {
        let extra = [4, 0, b'a', b'b', b'c', b'd', b'n', b'm', 0, b'c', 0];
        let m = stored_member(b"xy", FEXTRA | FNAME | FCOMMENT | FTEXT, &extra);
        let mut out = [0u8; 2];
        assert_eq!(inflate(&m[..member_len(b"xy", &extra)], &mut out), Ok(2));
    }

    #[test]
    fn header_crc_checked() {
        let mut hdr = [ID1, ID2, CM_DEFLATE, FHCRC, 0, 0, 0, 0, 0, 3];
        let crc = (crc32fast::hash(&hdr) & 0xffff) as u16;
        let m = stored_member(b"ok", FHCRC, &crc.to_le_bytes());
        let mut out = [0u8; 2];
        assert_eq!(inflate(&m[..member_len(b"ok", &[0, 0])], &mut out), Ok(2));
        hdr[9] = 4;
        let _ = hdr;
        let bad = stored_member(b"ok", FHCRC, &(crc ^ 1).to_le_bytes());
        assert_eq!(
            inflate(&bad[..member_len(b"ok", &[0, 0])], &mut out),
            Err(GzipError::HeaderCrcMismatch)
        );
    }

    #[test]
    fn trailer_checked() {
        let n = member_len(b"abcd", &[]);
        let good = stored_member(b"abcd", 0, &[]);
        let mut out = [0u8; 4];
        let mut bad = good;
        bad[n - 8] ^= 1;
        assert_eq!(inflate(&bad[..n], &mut out), Err(GzipError::CrcMismatch));
        let mut bad = good;
        bad[n - 4] ^= 1;
        assert_eq!(inflate(&bad[..n], &mut [0u8; 8]), Err(GzipError::SizeMismatch));
        // ISIZE 5 does not fit 4 bytes: refused before inflating anything.
        let (r, work) = inflate_metered(&bad[..n], &mut out);
        assert_eq!((r, work.written, work.read), (Err(GzipError::OutputTooLarge), 0, 10));
        assert_eq!(inflate(&good[..n + 1], &mut out), Err(GzipError::TrailingData));
        // (Cut short, the last four bytes read as an ISIZE above 1024: only a buffer that large sees the cut.)
        assert_eq!(inflate(&good[..n - 1], &mut [0u8; 2048]), Err(GzipError::Truncated));
        let mut bad = good;
        bad[3] = 0x20;
        assert_eq!(inflate(&bad[..n], &mut out), Err(GzipError::ReservedFlags));
        let mut small = [0u8; 3];
        assert_eq!(inflate(&good[..n], &mut small), Err(GzipError::OutputTooLarge));
    }

    #[test]
    fn work_is_metered_failures_included() {
        let n = member_len(b"abcd", &[]);
        let good = stored_member(b"abcd", 0, &[]);
        let mut out = [0u8; 4];
        let (r, work) = inflate_metered(&good[..n], &mut out);
        assert_eq!(r, Ok(4));
        assert_eq!(work, InflateWork { read: n, written: 4 });
        assert_eq!(work.total(), n + 4);
        // A CRC failure after inflating costs what it inflated.
        let mut bad = good;
        bad[n - 8] ^= 1;
        let (r, work) = inflate_metered(&bad[..n], &mut out);
        assert_eq!((r, work.written, work.read), (Err(GzipError::CrcMismatch), 4, n));
        // A refused header costs the bytes it may have scanned.
        let (r, work) = inflate_metered(&[0x1f, 0x8c, 8, 0, 0, 0, 0, 0, 0, 3, 9, 9], &mut out);
        assert_eq!((r, work.total()), (Err(GzipError::BadMagic), 12));
    }
}
