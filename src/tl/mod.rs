//! The TL wire codec and the MTProto service schema.
//!
//! - [`Reader`] is a zero-copy cursor over `&'a [u8]`: `bytes`/`string` fields come back as `&'a [u8]` (TL strings are
//!   not guaranteed UTF-8), vectors as validated views ([`TlVec`]) that iterate without allocating.
//! - [`Writer`] encodes into a caller's `&mut [u8]` (or, with the `alloc` feature, a `Vec<u8>`). Every value knows its
//!   exact size up front ([`TlWrite::tl_len`]), so [`Writer::put`] refuses a value that does not fit before writing
//!   any of it and reports the size that would be needed ([`Full`]).
//! - [`schema`] holds every constructor of the MTProto service schema (`tests/data/mtproto.tl`) and
//!   [`ServiceMessage`], which decodes any of them from a message body by its constructor id.
//! - [`gzip`] inflates `gzip_packed` into a caller-sized buffer.
//! - [`invoke`] reads through and writes the api.tl wrappers (`invokeWithLayer`, `initConnection`...) around a call.
//!
//! Decoding is bounded and iterative: no decoder recurses (objects nested inside `rpc_result`, `msg_container`,
//! `msg_copy` and `gzip_packed` are handed back as opaque `&[u8]` bodies for the caller to decode in a loop), every
//! vector count is checked against the bytes left before any element is looked at (docs/CHECKLIST.md item 55), and
//! unknown constructor ids are reported, never guessed.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

// Generated (tl-gen) typed views of the whole API schema: behind a feature, as it is most of the crate's compile time.
#[cfg(feature = "api")]
#[rustfmt::skip]
pub mod api;
pub mod gzip;
pub mod invoke;
pub mod layout;
pub mod schema;
// Generated (tl-gen) typed views of the secret-chat schema (secret.tl, every layer's constructors): with the API's.
#[cfg(feature = "api")]
#[rustfmt::skip]
pub mod secret_api;
pub mod tables;
pub mod typed;

pub use schema::*;

/// Constructor id of the boxed `Vector t` (`vector#1cb5c415`).
pub const VECTOR: u32 = 0x1cb5_c415;
/// Constructor id of `boolTrue`.
pub const BOOL_TRUE: u32 = 0x9972_75b5;
/// Constructor id of `boolFalse`.
pub const BOOL_FALSE: u32 = 0xbc79_9737;
/// Largest length a TL `bytes`/`string` can declare (3-byte length after the `0xfe` marker).
pub const MAX_BYTES_LEN: usize = 0x00ff_ffff;

/// Encoded size of a TL `bytes`/`string` of `n` bytes: length prefix, data and padding to a multiple of 4.
#[must_use]
pub const fn bytes_len(n: usize) -> usize {
    let header = if n < 254 { 1 } else { 4 };
    (header + n + 3) & !3
}

/// Why a TL decode failed. Every malformed input maps to one of these; the decoder never panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a fixed-size field.
    Eof,
    /// A boxed object started with a constructor id this decoder does not know.
    UnknownConstructor(u32),
    /// A specific constructor was required (a boxed field, `vector`) and another one was found.
    UnexpectedConstructor {
        /// The id that was required.
        expected: u32,
        /// The id that was found.
        got: u32,
    },
    /// A length field is malformed: a `0xff` bytes prefix, or a negative or unaligned container `bytes`.
    BadLength,
    /// A `bytes`/`string` or container body declares more bytes than are left.
    LengthPastEnd,
    /// A vector count exceeds what the bytes left could possibly hold (or a named limit).
    CountTooLarge,
    /// A value ended before the end of its input.
    Trailing,
    /// A `Bool` was neither `boolTrue` nor `boolFalse`.
    BadBool(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eof => f.write_str("TL input ended early"),
            Self::UnknownConstructor(id) => write!(f, "unknown TL constructor {id:#010x}"),
            Self::UnexpectedConstructor { expected, got } => {
                write!(f, "expected TL constructor {expected:#010x}, got {got:#010x}")
            }
            Self::BadLength => f.write_str("malformed TL length"),
            Self::LengthPastEnd => f.write_str("TL length runs past the end of the input"),
            Self::CountTooLarge => f.write_str("TL vector count exceeds the bytes left or a limit"),
            Self::Trailing => f.write_str("trailing bytes after a TL value"),
            Self::BadBool(id) => write!(f, "invalid TL Bool {id:#010x}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// The output buffer is too small. Nothing of the value that did not fit was written by [`Writer::put`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Full {
    /// Total buffer size (from the writer's start) that the write needed. `usize::MAX` means the value can never be
    /// encoded (a `bytes` field longer than [`MAX_BYTES_LEN`]).
    pub required: usize,
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.required == usize::MAX {
            f.write_str("TL value cannot be encoded (bytes field too long)")
        } else {
            write!(f, "TL output buffer too small: {} bytes required", self.required)
        }
    }
}

impl core::error::Error for Full {}

/// A zero-copy TL cursor. Reads are little-endian; every read is bounds-checked and returns [`DecodeError`].
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, positioned at its start.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The unread bytes, without consuming them.
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Consumes and returns all unread bytes (used for `rpc_result`'s opaque `result`).
    pub fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest();
        self.pos = self.buf.len();
        rest
    }

    /// Fails with [`DecodeError::Trailing`] unless every byte was consumed.
    pub const fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }

    /// Consumes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Eof)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Eof)?;
        self.pos = end;
        Ok(out)
    }

    /// Consumes exactly `N` bytes into an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// TL `int` as unsigned (constructor ids, counts).
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    /// TL `int`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_le_bytes)
    }

    /// TL `long` as unsigned.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    /// TL `long`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    /// TL `double`.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        self.array().map(f64::from_le_bytes)
    }

    /// TL `int128` (kept as wire bytes: nonces are byte strings, not numbers).
    pub fn int128(&mut self) -> Result<[u8; 16], DecodeError> {
        self.array()
    }

    /// TL `int256` (kept as wire bytes).
    pub fn int256(&mut self) -> Result<[u8; 32], DecodeError> {
        self.array()
    }

    /// TL `bytes`/`string`: the payload, borrowed. Padding bytes are skipped without being checked, as other
    /// implementations do, so a peer's non-zero padding is tolerated.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let first = *self.rest().first().ok_or(DecodeError::Eof)?;
        let (header, len) = match first {
            0..=253 => (1usize, usize::from(first)),
            254 => {
                let h = self.rest().get(..4).ok_or(DecodeError::Eof)?;
                let mut le = [0u8; 4];
                le.get_mut(..3)
                    .ok_or(DecodeError::Eof)?
                    .copy_from_slice(h.get(1..4).ok_or(DecodeError::Eof)?);
                (4, u32::from_le_bytes(le) as usize)
            }
            255 => return Err(DecodeError::BadLength),
        };
        // len <= 2^24, so this cannot overflow; the whole padded field must be present.
        let total = (header + len + 3) & !3;
        if total > self.remaining() {
            return Err(DecodeError::LengthPastEnd);
        }
        let field = self.take(total)?;
        field.get(header..header + len).ok_or(DecodeError::LengthPastEnd)
    }

    /// TL `Bool` (boxed `boolTrue`/`boolFalse`).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u32()? {
            BOOL_TRUE => Ok(true),
            BOOL_FALSE => Ok(false),
            other => Err(DecodeError::BadBool(other)),
        }
    }

    /// The next constructor id, without consuming it.
    pub fn peek_constructor(&self) -> Result<u32, DecodeError> {
        let b = self.rest().get(..4).ok_or(DecodeError::Eof)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    /// Consumes the constructor id `expected` or fails with [`DecodeError::UnexpectedConstructor`] (consuming nothing).
    pub fn expect_constructor(&mut self, expected: u32) -> Result<(), DecodeError> {
        let got = self.peek_constructor()?;
        if got != expected {
            return Err(DecodeError::UnexpectedConstructor { expected, got });
        }
        self.pos += 4;
        Ok(())
    }

    /// Reads a vector count and checks it against the bytes left divided by `min_elem` (docs/CHECKLIST.md item 55),
    /// so no element is looked at (and nothing is sized) before the count is known to be possible.
    pub fn count(&mut self, min_elem: usize) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count > self.remaining() / min_elem.max(1) {
            return Err(DecodeError::CountTooLarge);
        }
        Ok(count)
    }

    /// Reads any [`TlRead`] value.
    pub fn read<T: TlRead<'a>>(&mut self) -> Result<T, DecodeError> {
        T::read(self)
    }
}

/// A TL-decodable value. For schema types this is the boxed form (constructor id first).
pub trait TlRead<'a>: Sized {
    /// The fewest bytes any encoding of this value takes; vector counts are checked against it.
    const MIN_LEN: usize;

    /// Decodes one value from the reader.
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;

    /// Decodes a value that must span all of `buf` ([`DecodeError::Trailing`] otherwise).
    fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// A TL-encodable value with an exact size known before encoding.
pub trait TlWrite {
    /// Exact number of bytes [`TlWrite::write`] produces.
    fn tl_len(&self) -> usize;

    /// Encodes the value. Prefer [`Writer::put`], which checks the whole size first.
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full>;
}

/// Bare encoding of a type used as a vector element or inside another constructor (no constructor id).
pub trait TlBare<'a>: Sized {
    /// The fewest bytes of a bare encoding; vector counts are checked against it (a zero, for an empty
    /// constructor, is treated as 1 so the count is still bounded by the bytes left).
    const MIN_LEN: usize;
    /// Decodes the bare form.
    fn read_bare(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
    /// Exact size of the bare form.
    fn bare_len(&self) -> usize;
    /// Encodes the bare form.
    fn write_bare(&self, w: &mut Writer<'_>) -> Result<(), Full>;
}

macro_rules! prim {
    ($t:ty, $n:expr, $rd:ident, $wr:ident) => {
        impl<'a> TlRead<'a> for $t {
            const MIN_LEN: usize = $n;
            fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                r.$rd()
            }
        }
        impl TlWrite for $t {
            fn tl_len(&self) -> usize {
                $n
            }
            fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
                w.$wr(*self)
            }
        }
        impl<'a> TlBare<'a> for $t {
            const MIN_LEN: usize = $n;
            fn read_bare(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                r.$rd()
            }
            fn bare_len(&self) -> usize {
                $n
            }
            fn write_bare(&self, w: &mut Writer<'_>) -> Result<(), Full> {
                w.$wr(*self)
            }
        }
    };
}

prim!(i32, 4, i32, i32);
prim!(u32, 4, u32, u32);
prim!(i64, 8, i64, i64);
prim!(u64, 8, u64, u64);
prim!(f64, 8, f64, f64);

impl<'a> TlRead<'a> for [u8; 16] {
    const MIN_LEN: usize = 16;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.int128()
    }
}
impl TlWrite for [u8; 16] {
    fn tl_len(&self) -> usize {
        16
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.raw(self)
    }
}
impl<'a> TlRead<'a> for [u8; 32] {
    const MIN_LEN: usize = 32;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.int256()
    }
}
impl TlWrite for [u8; 32] {
    fn tl_len(&self) -> usize {
        32
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.raw(self)
    }
}

/// `&[u8]` is a TL `bytes`/`string`.
impl<'a> TlRead<'a> for &'a [u8] {
    const MIN_LEN: usize = 4;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.bytes()
    }
}
impl TlWrite for &[u8] {
    fn tl_len(&self) -> usize {
        bytes_len(self.len())
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.bytes(self)
    }
}
impl<'a> TlBare<'a> for &'a [u8] {
    const MIN_LEN: usize = 4;
    fn read_bare(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.bytes()
    }
    fn bare_len(&self) -> usize {
        bytes_len(self.len())
    }
    fn write_bare(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.bytes(self)
    }
}

/// `bool` is the boxed TL `Bool`.
impl<'a> TlRead<'a> for bool {
    const MIN_LEN: usize = 4;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.bool()
    }
}
impl TlWrite for bool {
    fn tl_len(&self) -> usize {
        4
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.bool(*self)
    }
}

#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum VecRepr<'a, T> {
    /// Validated wire bytes of the elements (after the count).
    Wire { count: usize, data: &'a [u8] },
    /// Caller-provided elements to encode.
    Slice(&'a [T]),
}

/// A TL vector without allocation: either a view of validated wire bytes (from [`TlVec::read_boxed`] /
/// [`TlVec::read_bare`]; every element was decoded once at read time, so iteration cannot fail) or a caller slice
/// to encode ([`TlVec::from_slice`]).
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TlVec<'a, T> {
    repr: VecRepr<'a, T>,
}

/// `Vector<long>` (message ids, key fingerprints).
pub type LongVec<'a> = TlVec<'a, i64>;

impl<T> Clone for TlVec<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TlVec<'_, T> {}
impl<T> Clone for VecRepr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for VecRepr<'_, T> {}

impl<'a, T: TlBare<'a> + Clone> TlVec<'a, T> {
    /// A vector to encode from the caller's elements.
    #[must_use]
    pub const fn from_slice(items: &'a [T]) -> Self {
        Self {
            repr: VecRepr::Slice(items),
        }
    }

    /// Number of elements.
    #[must_use]
    pub const fn len(&self) -> usize {
        match self.repr {
            VecRepr::Wire { count, .. } => count,
            VecRepr::Slice(s) => s.len(),
        }
    }

    /// Whether the vector is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the elements.
    #[must_use]
    pub fn iter(&self) -> TlVecIter<'a, T> {
        match self.repr {
            VecRepr::Wire { count, data } => TlVecIter {
                inner: IterRepr::Wire {
                    left: count,
                    r: Reader::new(data),
                },
            },
            VecRepr::Slice(s) => TlVecIter {
                inner: IterRepr::Slice(s.iter()),
            },
        }
    }

    /// Decodes a bare vector (`count` then elements), validating every element.
    pub fn read_bare(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::read_bare_limited(r, usize::MAX)
    }

    /// Like [`TlVec::read_bare`] with an extra cap on the count ([`DecodeError::CountTooLarge`] above it).
    pub fn read_bare_limited(r: &mut Reader<'a>, max: usize) -> Result<Self, DecodeError> {
        let count = r.count(<T as TlBare>::MIN_LEN)?;
        if count > max {
            return Err(DecodeError::CountTooLarge);
        }
        let start = r.rest();
        let before = r.position();
        for _ in 0..count {
            T::read_bare(r)?;
        }
        let data = start.get(..r.position() - before).ok_or(DecodeError::Eof)?;
        Ok(Self {
            repr: VecRepr::Wire { count, data },
        })
    }

    /// Decodes a boxed `Vector` (`vector#1cb5c415`, count, elements).
    pub fn read_boxed(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.expect_constructor(VECTOR)?;
        Self::read_bare(r)
    }

    /// Like [`TlVec::read_boxed`] with an extra cap on the count.
    pub fn read_boxed_limited(r: &mut Reader<'a>, max: usize) -> Result<Self, DecodeError> {
        r.expect_constructor(VECTOR)?;
        Self::read_bare_limited(r, max)
    }

    /// Exact size of the bare encoding.
    #[must_use]
    pub fn bare_len(&self) -> usize {
        match self.repr {
            VecRepr::Wire { data, .. } => 4 + data.len(),
            VecRepr::Slice(s) => 4 + s.iter().map(TlBare::bare_len).sum::<usize>(),
        }
    }

    /// Encodes the bare form.
    pub fn write_bare(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.u32(u32::try_from(self.len()).map_err(|_| Full { required: usize::MAX })?)?;
        match self.repr {
            VecRepr::Wire { data, .. } => w.raw(data),
            VecRepr::Slice(s) => s.iter().try_for_each(|x| x.write_bare(w)),
        }
    }
}

impl<'a, T: TlBare<'a> + Clone> TlRead<'a> for TlVec<'a, T> {
    const MIN_LEN: usize = 8;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::read_boxed(r)
    }
}

impl<'a, T: TlBare<'a> + Clone> TlWrite for TlVec<'a, T> {
    fn tl_len(&self) -> usize {
        4 + self.bare_len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.u32(VECTOR)?;
        self.write_bare(w)
    }
}

impl<'a, T: TlBare<'a> + Clone + PartialEq> PartialEq for TlVec<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl<'a, T: TlBare<'a> + Clone + Eq> Eq for TlVec<'a, T> {}

impl<'a, T: TlBare<'a> + Clone> IntoIterator for TlVec<'a, T> {
    type Item = T;
    type IntoIter = TlVecIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

enum IterRepr<'a, T> {
    Wire { left: usize, r: Reader<'a> },
    Slice(core::slice::Iter<'a, T>),
}

/// Iterator over a [`TlVec`].
pub struct TlVecIter<'a, T> {
    inner: IterRepr<'a, T>,
}

impl<'a, T: TlBare<'a> + Clone> Iterator for TlVecIter<'a, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match &mut self.inner {
            IterRepr::Wire { left, r } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // Every element decoded successfully at read time, so this cannot fail; stop cleanly if it does.
                T::read_bare(r).ok()
            }
            IterRepr::Slice(it) => it.next().cloned(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.inner {
            IterRepr::Wire { left, .. } => *left,
            IterRepr::Slice(it) => it.len(),
        };
        (0, Some(n))
    }
}

impl<T> fmt::Debug for TlVecIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlVecIter")
    }
}

#[cfg(feature = "defmt")]
impl<T> defmt::Format for TlVecIter<'_, T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "TlVecIter")
    }
}

enum Sink<'a> {
    Slice {
        buf: &'a mut [u8],
        pos: usize,
    },
    #[cfg(feature = "alloc")]
    Vec(&'a mut Vec<u8>),
}

/// A TL encoder into a caller's buffer (or a `Vec` with the `alloc` feature).
pub struct Writer<'a> {
    sink: Sink<'a>,
    /// Received objects (`typed::Obj`, `typed::Seq`, `typed::Query` over wire bytes) are written from their decoded
    /// fields instead of copied: see [`Writer::deep`].
    deep: bool,
}

impl fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").field("written", &self.written()).finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Writer<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Writer {{ written: {} }}", self.written())
    }
}

impl<'a> Writer<'a> {
    /// A writer that fills `buf` from its start.
    #[must_use]
    pub const fn new(buf: &'a mut [u8]) -> Self {
        Self {
            sink: Sink::Slice { buf, pos: 0 },
            deep: false,
        }
    }

    /// This writer, re-encoding received nested objects of the typed API (`api` feature) from their decoded fields,
    /// recursively, where a plain writer copies their validated bytes. For round-trip checks (the test DC decodes
    /// every request a peer sends and compares its deep re-encoding with the bytes received); slower than copying.
    #[must_use]
    pub const fn deep(mut self) -> Self {
        self.deep = true;
        self
    }

    /// Whether this writer re-encodes received objects ([`Writer::deep`]).
    #[must_use]
    pub const fn is_deep(&self) -> bool {
        self.deep
    }

    /// A writer that appends to `vec`; it never reports [`Full`] (except for unencodable values).
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn from_vec(vec: &'a mut Vec<u8>) -> Self {
        Self {
            sink: Sink::Vec(vec),
            deep: false,
        }
    }

    /// Bytes written so far (for a `Vec` writer: the vector's length).
    #[must_use]
    pub fn written(&self) -> usize {
        match &self.sink {
            Sink::Slice { pos, .. } => *pos,
            #[cfg(feature = "alloc")]
            Sink::Vec(v) => v.len(),
        }
    }

    /// Space left, or `None` for a growable writer.
    #[must_use]
    pub fn remaining(&self) -> Option<usize> {
        match &self.sink {
            Sink::Slice { buf, pos } => Some(buf.len().saturating_sub(*pos)),
            #[cfg(feature = "alloc")]
            Sink::Vec(_) => None,
        }
    }

    /// Encodes `value` after checking that all [`TlWrite::tl_len`] bytes fit; on [`Full`] nothing was written.
    pub fn put<T: TlWrite + ?Sized>(&mut self, value: &T) -> Result<(), Full> {
        let need = value.tl_len();
        self.reserve(need)?;
        value.write(self)
    }

    fn reserve(&mut self, need: usize) -> Result<(), Full> {
        let written = self.written();
        match self.remaining() {
            Some(left) if left < need => Err(Full {
                required: written.saturating_add(need),
            }),
            _ => Ok(()),
        }
    }

    /// Raw bytes, no length prefix.
    pub fn raw(&mut self, data: &[u8]) -> Result<(), Full> {
        match &mut self.sink {
            Sink::Slice { buf, pos } => {
                let end = pos.checked_add(data.len()).ok_or(Full { required: usize::MAX })?;
                let dst = buf.get_mut(*pos..end).ok_or(Full { required: end })?;
                dst.copy_from_slice(data);
                *pos = end;
                Ok(())
            }
            #[cfg(feature = "alloc")]
            Sink::Vec(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// TL `int` (unsigned view).
    pub fn u32(&mut self, v: u32) -> Result<(), Full> {
        self.raw(&v.to_le_bytes())
    }
    /// TL `int`.
    pub fn i32(&mut self, v: i32) -> Result<(), Full> {
        self.raw(&v.to_le_bytes())
    }
    /// TL `long` (unsigned view).
    pub fn u64(&mut self, v: u64) -> Result<(), Full> {
        self.raw(&v.to_le_bytes())
    }
    /// TL `long`.
    pub fn i64(&mut self, v: i64) -> Result<(), Full> {
        self.raw(&v.to_le_bytes())
    }
    /// TL `double`.
    pub fn f64(&mut self, v: f64) -> Result<(), Full> {
        self.raw(&v.to_le_bytes())
    }
    /// TL `int128`.
    pub fn int128(&mut self, v: &[u8; 16]) -> Result<(), Full> {
        self.raw(v)
    }
    /// TL `int256`.
    pub fn int256(&mut self, v: &[u8; 32]) -> Result<(), Full> {
        self.raw(v)
    }
    /// TL `Bool`.
    pub fn bool(&mut self, v: bool) -> Result<(), Full> {
        self.u32(if v { BOOL_TRUE } else { BOOL_FALSE })
    }

    /// TL `bytes`/`string`: canonical length prefix, data, zero padding. The whole field is checked to fit first.
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), Full> {
        let n = data.len();
        if n > MAX_BYTES_LEN {
            return Err(Full { required: usize::MAX });
        }
        let total = bytes_len(n);
        self.reserve(total)?;
        let header: usize = if n < 254 {
            self.raw(&[n as u8])?;
            1
        } else {
            let le = (n as u32).to_le_bytes();
            self.raw(&[254, le[0], le[1], le[2]])?;
            4
        };
        self.raw(data)?;
        let pad = total - header - n;
        self.raw([0u8; 3].get(..pad).unwrap_or(&[]))
    }
}

/// Encodes `value` into the start of `out`; returns the length written. On [`Full`], `out` is untouched.
pub fn encode<T: TlWrite + ?Sized>(value: &T, out: &mut [u8]) -> Result<usize, Full> {
    let mut w = Writer::new(out);
    w.put(value)?;
    Ok(w.written())
}

/// Encodes `value` into a new `Vec` of exactly [`TlWrite::tl_len`] bytes.
#[cfg(feature = "alloc")]
pub fn to_vec<T: TlWrite + ?Sized>(value: &T) -> Result<Vec<u8>, Full> {
    let mut v = Vec::with_capacity(value.tl_len());
    Writer::from_vec(&mut v).put(value)?;
    Ok(v)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bytes_len_matches_encoding() {
        for n in [0usize, 1, 2, 3, 4, 253, 254, 255, 256, 1000] {
            let data = [7u8; 1000];
            let mut buf = [0u8; 1100];
            let used = encode(&&data[..n], &mut buf).unwrap();
            assert_eq!(used, bytes_len(n), "n={n}");
            assert_eq!(used % 4, 0);
            let mut r = Reader::new(&buf[..used]);
            assert_eq!(r.bytes().unwrap(), &data[..n]);
            r.finish().unwrap();
        }
    }

    #[test]
    fn full_leaves_buffer_untouched() {
        let mut buf = [0xaau8; 7];
        let err = encode(&&[1u8; 6][..], &mut buf).unwrap_err();
        assert_eq!(err, Full { required: 8 });
        assert_eq!(buf, [0xaa; 7]);
    }

    #[test]
    fn ff_length_prefix_is_bad() {
        assert_eq!(Reader::new(&[255, 0, 0, 0]).bytes(), Err(DecodeError::BadLength));
    }
}
