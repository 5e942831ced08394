//! A whole TL schema as data, and one validator that walks it.
//!
//! TL is not self-delimiting: to find where an `Updates` ends, a reader must know the layout of every constructor
//! that can appear inside it, even when it cares about three of them. Generated typed code per constructor would cost
//! flash in proportion to the schema; instead `tl-gen` writes each schema as four small tables (a [`Layout`]) and
//! [`Layout::validate`] walks any boxed or bare type of it, returning the encoded length or a typed [`Error`].
//!
//! Data comes from the peer (a decrypted message body, an `rpc_result.result`); it goes to the typed views of
//! [`crate::tl::api`] (behind the `api` feature), which read fields out of bytes this validator accepted, or to the
//! caller as a length to split the buffer at.
//!
//! Bounds: nesting is limited to [`MAX_DEPTH`] (the schema is recursive: `Message` in `Message`, `RichText`,
//! `PageBlock`); the validator recurses, and its stack per level is small and fixed (no buffer in any frame).
//! Work is bounded by the input: every vector count is checked against the bytes left before the first element
//! (an element takes at least one byte, or four for anything boxed), and every other step consumes input or
//! descends a level.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use super::{DecodeError, Reader, VECTOR};

/// Deepest nesting of objects (and bare constructors and vectors) [`Layout::validate`] accepts; deeper input fails
/// with [`Error::TooDeep`]. Real `Updates` nest about a dozen levels (updates → update → message → media → web page →
/// page blocks → rich text); 32 leaves room for long rich texts while bounding the stack.
pub const MAX_DEPTH: u8 = 32;

/// Why bytes are not a value of the requested type. Every malformed input maps to one of these; nothing panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside a value.
    Truncated,
    /// A flags word announced a field (bit `bit` of flags word `word`) and the input ended where it should be.
    FlagFieldMissing {
        /// Which flags word of the constructor (0 for `flags`, 1 for `flags2`).
        word: u8,
        /// The bit that was set.
        bit: u8,
    },
    /// A constructor id that no constructor (or, where a query is expected, no function) of the schema has.
    UnknownConstructor(u32),
    /// A known constructor of another type than the field requires.
    WrongType(u32),
    /// A `bytes`/`string` length prefix is malformed (`0xff`).
    BadLength,
    /// A vector count exceeds what the bytes left could hold.
    CountPastInput,
    /// Objects nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A value ended before the end of its input (only from whole-buffer decodes).
    Trailing,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("TL value truncated"),
            Self::FlagFieldMissing { word, bit } => {
                write!(f, "flags word {word} bit {bit} is set but its field is missing")
            }
            Self::UnknownConstructor(id) => write!(f, "unknown TL constructor {id:#010x}"),
            Self::WrongType(id) => write!(f, "TL constructor {id:#010x} is of another type than required"),
            Self::BadLength => f.write_str("malformed TL bytes length"),
            Self::CountPastInput => f.write_str("TL vector count exceeds the bytes left"),
            Self::TooDeep => f.write_str("TL objects nest deeper than MAX_DEPTH"),
            Self::Trailing => f.write_str("trailing bytes after a TL value"),
        }
    }
}

impl core::error::Error for Error {}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::UnknownConstructor(id) => Self::UnknownConstructor(id),
            DecodeError::UnexpectedConstructor { got, .. } => Self::WrongType(got),
            DecodeError::BadLength => Self::BadLength,
            DecodeError::CountTooLarge => Self::CountPastInput,
            DecodeError::Trailing => Self::Trailing,
            DecodeError::BadBool(id) => Self::WrongType(id),
            _ => Self::Truncated,
        }
    }
}

/// Field kinds (bits 0..4 of a field record).
pub mod kind {
    /// `int`.
    pub const INT: u32 = 0;
    /// `long`.
    pub const LONG: u32 = 1;
    /// `double`.
    pub const DOUBLE: u32 = 2;
    /// `bytes` or `string`.
    pub const BYTES: u32 = 3;
    /// `int128`.
    pub const INT128: u32 = 4;
    /// `int256`.
    pub const INT256: u32 = 5;
    /// A `#` flags word.
    pub const FLAGS: u32 = 6;
    /// A boxed object of the type whose index is the record's reference.
    pub const BOXED: u32 = 7;
    /// The bare form of the combinator whose index is the record's reference.
    pub const BARE: u32 = 8;
    /// `Object`: any constructor of the schema.
    pub const OBJECT: u32 = 9;
    /// `!X`: any function of the schema (the query a wrapper such as `invokeWithLayer` carries).
    pub const QUERY: u32 = 10;
}

/// Bit layout of a field record (`u32`): `kind | vec << 4 | cond << 6 | bit << 7 | word << 12 | ref << 16`.
pub mod field {
    /// Mask of the kind ([`super::kind`]).
    pub const KIND: u32 = 0xf;
    /// Shift of the vector wrapping: 0 none, [`VEC_BOXED`] `Vector<T>`, [`VEC_BARE`] `vector<T>`.
    pub const VEC_SHIFT: u32 = 4;
    /// `Vector<T>`: `vector` id, count, elements.
    pub const VEC_BOXED: u32 = 1;
    /// `vector<T>`: count, elements.
    pub const VEC_BARE: u32 = 2;
    /// Set when the field is present only if a flags bit is.
    pub const COND: u32 = 1 << 6;
    /// Shift of the flags bit number (5 bits).
    pub const BIT_SHIFT: u32 = 7;
    /// Shift of the flags word index (2 bits: which `#` field of the combinator, in order).
    pub const WORD_SHIFT: u32 = 12;
    /// Shift of the reference (type index for [`super::kind::BOXED`], combinator index for [`super::kind::BARE`]).
    pub const REF_SHIFT: u32 = 16;
}

/// Marks a function in [`Layout::heads`]; the low bits of a constructor's head are its type index.
pub const HEAD_FUNCTION: u16 = 0x8000;

/// Marks a combinator in [`Layout::fixed`] whose size depends on its bytes (or is 255 bytes or more).
pub const VARIABLE: u8 = u8::MAX;

/// A schema as data. Combinator `i` has id `ids[i]` (sorted), head `heads[i]` (its type index, or
/// [`HEAD_FUNCTION`]) and fields `fields[field_start[i]..field_start[i + 1]]`; a function's last record is its
/// return type. `flags.N?true` parameters take no bytes and have no record. An id is found by its top byte in
/// `index` (the bucket of ids sharing it), then by a binary search of that bucket: about 10 ids of api.tl's 2,457.
/// `fixed[i]` is combinator `i`'s size when every value of it has the same one ([`fixed_lens`]).
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Combinator ids, ascending.
    pub ids: &'static [u32],
    /// `index[b]..index[b + 1]` are the positions in `ids` of the ids whose top byte is `b` ([`id_index`]).
    pub index: &'static [u16; 257],
    /// Per combinator: type index, or [`HEAD_FUNCTION`].
    pub heads: &'static [u16],
    /// Per combinator, where its records start in `fields`; one more entry than combinators.
    pub field_start: &'static [u16],
    /// Field records (see [`field`]).
    pub fields: &'static [u32],
    /// Per combinator: its encoded size (id excluded) if it is the same for every value, else [`VARIABLE`].
    pub fixed: &'static [u8],
}

/// What [`Layout::validate`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Root {
    /// A boxed object of this type index (constructor id first).
    Type(u16),
    /// The bare form of this combinator index (no id).
    Bare(u16),
    /// Any constructor of the schema, boxed.
    Object,
    /// Any function call of the schema, boxed.
    Function,
}

impl Root {
    /// The field record that reads this root ([`Layout::validate_record`], [`Layout::skip`]).
    #[must_use]
    pub const fn record(self) -> u32 {
        match self {
            Self::Type(t) => kind::BOXED | (t as u32) << field::REF_SHIFT,
            Self::Bare(c) => kind::BARE | (c as u32) << field::REF_SHIFT,
            Self::Object => kind::OBJECT,
            Self::Function => kind::QUERY,
        }
    }
}

/// The bucket index of sorted `ids` for [`Layout::index`]: entry `b` is how many ids have a top byte below `b`.
/// Computed at compile time by the generated tables (`static INDEX: [u16; 257] = id_index(&IDS);`); `ids` must be
/// ascending and fewer than 65,536 (a schema's combinators are), which the tables' test checks.
#[must_use]
// Const evaluation of the tables: both indices are bounded by their loops (`b < 257`, `i < ids.len()`), and an
// out-of-bounds index here would be a compile error of the tables, never a panic at run time.
#[allow(clippy::indexing_slicing)]
pub const fn id_index(ids: &[u32]) -> [u16; 257] {
    let mut index = [0u16; 257];
    let mut b = 0;
    let mut i = 0;
    while b < 257 {
        while i < ids.len() && ((ids[i] >> 24) as usize) < b {
            i += 1;
        }
        index[b] = i as u16;
        b += 1;
    }
    index
}

/// The fixed sizes of a schema's combinators for [`Layout::fixed`], computed at compile time by the generated
/// tables (`static FIXED: [u8; N] = fixed_lens(&HEADS, &FIELD_START, &FIELDS);`). A combinator is fixed when its
/// fields (a function's return record excluded) are only `int`, `long`, `double`, `int128` and `int256`, unwrapped
/// and unconditional, plus flags words that condition nothing but `true` flags (which have no record): then a value
/// of it is its size in bytes whatever they hold, and [`Layout::validate`] and the views step over it in one move
/// instead of a walk of its records. Many of the constructors a client reads most are (`peerUser`, `peerChannel`,
/// most `messageEntity*`, `userStatusOnline`, `chatPhotoEmpty`).
#[must_use]
// Const evaluation of the tables: every index is bounded by its loop or by `field_start`'s own entries (a table of
// the same generated module); an out-of-bounds index would be a compile error of the tables, never a run-time panic.
#[allow(clippy::indexing_slicing)]
pub const fn fixed_lens<const N: usize>(heads: &[u16; N], field_start: &[u16], fields: &[u32]) -> [u8; N] {
    let mut out = [VARIABLE; N];
    let mut i = 0;
    while i < N {
        let mut end = field_start[i + 1] as usize;
        if heads[i] & HEAD_FUNCTION != 0 {
            end -= 1;
        }
        let mut j = field_start[i] as usize;
        let mut len = 0u32;
        let mut fixed = true;
        while j < end {
            let rec = fields[j];
            if rec & field::COND != 0 || (rec >> field::VEC_SHIFT) & 3 != 0 {
                fixed = false;
            }
            len += match rec & field::KIND {
                kind::INT | kind::FLAGS => 4,
                kind::LONG | kind::DOUBLE => 8,
                kind::INT128 => 16,
                kind::INT256 => 32,
                _ => {
                    fixed = false;
                    0
                }
            };
            j += 1;
        }
        if fixed && len < VARIABLE as u32 {
            out[i] = len as u8;
        }
        i += 1;
    }
    out
}

impl Layout {
    /// Index of the combinator with this id.
    #[must_use]
    pub fn find(&self, id: u32) -> Option<u16> {
        // Every constructor read is looked up, several times when the views walk an element again: a bucket of
        // about ten ids instead of a search over the whole schema (the decode benchmark's hottest path).
        let top = (id >> 24) as usize;
        let (Some(&lo), Some(&hi)) = (self.index.get(top), self.index.get(top + 1)) else {
            return None;
        };
        let bucket = self.ids.get(usize::from(lo)..usize::from(hi))?;
        let i = bucket.binary_search(&id).ok()?;
        u16::try_from(usize::from(lo) + i).ok()
    }

    /// Whether combinator `idx` is a function.
    #[must_use]
    pub fn is_function(&self, idx: u16) -> bool {
        self.heads.get(usize::from(idx)).is_some_and(|h| h & HEAD_FUNCTION != 0)
    }

    /// The field records of combinator `idx` (a function's return type excluded).
    #[must_use]
    pub fn fields_of(&self, idx: u16) -> &'static [u32] {
        let i = usize::from(idx);
        let (Some(&a), Some(&b)) = (self.field_start.get(i), self.field_start.get(i + 1)) else {
            return &[];
        };
        let all = self.fields.get(usize::from(a)..usize::from(b)).unwrap_or(&[]);
        if self.is_function(idx) {
            all.split_last().map_or(&[], |(_, f)| f)
        } else {
            all
        }
    }

    /// A function's return type as a field record.
    #[must_use]
    pub fn returns(&self, idx: u16) -> Option<u32> {
        let i = usize::from(idx);
        if !self.is_function(idx) {
            return None;
        }
        let b = *self.field_start.get(i + 1)?;
        self.fields.get(usize::from(b).checked_sub(1)?).copied()
    }

    /// Validates one value of `root` at the start of `input` and returns its encoded length; bytes after it are
    /// left for the caller.
    pub fn validate(&self, input: &[u8], root: Root) -> Result<usize, Error> {
        let mut r = Reader::new(input);
        self.value(&mut r, root.record(), MAX_DEPTH, &mut NoMarks)?;
        Ok(r.position())
    }

    /// Validates one value described by a field record (see [`field`]; a vector, a scalar, a boxed type) at the
    /// start of `input` and returns its encoded length. A function's return record ([`Layout::returns`]) is one.
    pub fn validate_record(&self, input: &[u8], rec: u32) -> Result<usize, Error> {
        let mut r = Reader::new(input);
        self.value(&mut r, rec & !field::COND, MAX_DEPTH, &mut NoMarks)?;
        Ok(r.position())
    }

    /// Like [`Layout::validate`], but the value must span all of `input` ([`Error::Trailing`] otherwise).
    pub fn validate_exact(&self, input: &[u8], root: Root) -> Result<(), Error> {
        if self.validate(input, root)? == input.len() {
            Ok(())
        } else {
            Err(Error::Trailing)
        }
    }

    /// Where the value of record `rec` (as [`Layout::validate_record`] takes it) that starts at `pos` of `buf`
    /// ends, for bytes this layout accepted: the views' step over a nested object or vector they do not read.
    ///
    /// A walk that trusts the bytes: no type checks, no errors, so each step costs a fraction of a validation. It
    /// stays total on any bytes all the same (the views' cursor can be built over bytes nobody validated): reads
    /// past the end read zeros and stop at the end, an unknown id or a malformed length ends the walk at the end of
    /// `buf`, nesting is bounded by [`MAX_DEPTH`] and vector counts by the bytes left, so it never panics, never
    /// recurses deeper than a validation and never loops longer than `buf` is long. Only on bytes that
    /// [`Layout::validate`] accepted is the answer the value's end (the views are built from nothing else).
    #[must_use]
    pub fn skip(&self, buf: &[u8], pos: usize, rec: u32) -> usize {
        let mut t = Trusted { buf, pos };
        self.skip_value(&mut t, rec & !field::COND, MAX_DEPTH);
        t.pos.min(buf.len())
    }

    fn skip_value(&self, t: &mut Trusted<'_>, rec: u32, depth: u8) {
        let wrap = (rec >> field::VEC_SHIFT) & 3;
        if wrap == 0 {
            return self.skip_scalar(t, rec, depth);
        }
        if wrap == field::VEC_BOXED {
            t.advance(4);
        }
        let count = t.u32() as usize;
        let Some(depth) = depth.checked_sub(1) else {
            return t.end();
        };
        let size = match rec & field::KIND {
            kind::INT | kind::FLAGS => 4,
            kind::LONG | kind::DOUBLE => 8,
            kind::INT128 => 16,
            kind::INT256 => 32,
            _ => 0,
        };
        if size != 0 {
            return t.advance(count.saturating_mul(size));
        }
        // Every element takes a byte at least in accepted bytes; the bound keeps the walk as long as `buf` on others.
        for _ in 0..count.min(t.left()) {
            if t.left() == 0 {
                return;
            }
            self.skip_scalar(t, rec, depth);
        }
    }

    fn skip_scalar(&self, t: &mut Trusted<'_>, rec: u32, depth: u8) {
        match rec & field::KIND {
            kind::INT | kind::FLAGS => t.advance(4),
            kind::LONG | kind::DOUBLE => t.advance(8),
            kind::INT128 => t.advance(16),
            kind::INT256 => t.advance(32),
            kind::BYTES => t.bytes(),
            kind::BARE => self.skip_combinator(t, (rec >> field::REF_SHIFT) as u16, depth),
            _ => match self.find(t.u32()) {
                Some(idx) => self.skip_combinator(t, idx, depth),
                None => t.end(),
            },
        }
    }

    fn skip_combinator(&self, t: &mut Trusted<'_>, idx: u16, depth: u8) {
        let Some(depth) = depth.checked_sub(1) else {
            return t.end();
        };
        if let Some(&n) = self.fixed.get(usize::from(idx))
            && n != VARIABLE
        {
            return t.advance(usize::from(n));
        }
        let mut flags = [0u32; 4];
        let mut words = 0usize;
        for &rec in self.fields_of(idx) {
            if rec & field::COND != 0 {
                let word = (rec >> field::WORD_SHIFT) & 3;
                let bit = (rec >> field::BIT_SHIFT) & 31;
                if flags.get(word as usize).copied().unwrap_or(0) & (1 << bit) != 0 {
                    self.skip_value(t, rec, depth);
                }
            } else if rec & field::KIND == kind::FLAGS {
                let w = t.u32();
                if let Some(slot) = flags.get_mut(words) {
                    *slot = w;
                }
                words += 1;
            } else {
                self.skip_value(t, rec, depth);
            }
        }
    }

    /// One field value (a vector of them when the record says so). `depth` is the levels left. A deep marker
    /// ([`Marker::DEEP`]) also marks each boxed element of a vector.
    fn value<M: Marker>(&self, r: &mut Reader<'_>, rec: u32, depth: u8, marks: &mut M) -> Result<(), Error> {
        match (rec >> field::VEC_SHIFT) & 3 {
            0 => self.scalar(r, rec, depth, marks),
            wrap => {
                if wrap == field::VEC_BOXED {
                    let id = r.u32()?;
                    if id != VECTOR {
                        return Err(if self.find(id).is_some() {
                            Error::WrongType(id)
                        } else {
                            Error::UnknownConstructor(id)
                        });
                    }
                }
                let depth = depth.checked_sub(1).ok_or(Error::TooDeep)?;
                let min = match rec & field::KIND {
                    kind::LONG | kind::DOUBLE => 8,
                    kind::INT128 => 16,
                    kind::INT256 => 32,
                    kind::BARE => 1,
                    _ => 4,
                };
                let count = r.u32()? as usize;
                if count > r.remaining() / min {
                    return Err(Error::CountPastInput);
                }
                let elem = rec & !(3 << field::VEC_SHIFT);
                if M::DEEP && is_boxed(elem) {
                    return (0..count).try_for_each(|_| {
                        let slot = marks.open(elem, r.position());
                        self.scalar(r, elem, depth, marks)?;
                        marks.close(slot, r.position());
                        Ok(())
                    });
                }
                // An element of a zero-size bare constructor consumes nothing; the count is at most the bytes left.
                (0..count).try_for_each(|_| self.scalar(r, rec, depth, marks))
            }
        }
    }

    fn scalar<M: Marker>(&self, r: &mut Reader<'_>, rec: u32, depth: u8, marks: &mut M) -> Result<(), Error> {
        let reference = (rec >> field::REF_SHIFT) as u16;
        match rec & field::KIND {
            kind::INT | kind::FLAGS => r.take(4).map(drop)?,
            kind::LONG | kind::DOUBLE => r.take(8).map(drop)?,
            kind::INT128 => r.take(16).map(drop)?,
            kind::INT256 => r.take(32).map(drop)?,
            kind::BYTES => r.bytes().map(drop)?,
            kind::BARE => self.combinator(r, reference, depth, marks)?,
            k => {
                let idx = self.boxed(r, k, reference)?;
                self.combinator(r, idx, depth, marks)?;
            }
        }
        Ok(())
    }

    /// The constructor id of a boxed value of kind `k` (reference `reference`) read, and its combinator index.
    fn boxed(&self, r: &mut Reader<'_>, k: u32, reference: u16) -> Result<u16, Error> {
        let id = r.u32()?;
        let idx = self.find(id).ok_or(Error::UnknownConstructor(id))?;
        let head = self.heads.get(usize::from(idx)).copied().unwrap_or(0);
        let ok = match k {
            kind::BOXED => head == reference,
            kind::OBJECT => head & HEAD_FUNCTION == 0,
            kind::QUERY => head & HEAD_FUNCTION != 0,
            _ => false,
        };
        if ok { Ok(idx) } else { Err(Error::WrongType(id)) }
    }

    /// [`Layout::validate_exact`] of a boxed object of type `ty` that also remembers in `marks` where the object's
    /// nested objects and vectors (its own fields, not theirs) end, so the views read the object without walking
    /// them again ([`crate::tl::typed::Boxed::decode`]). Same answers and errors as `validate_exact`.
    pub fn validate_marked(&self, input: &[u8], ty: u16, marks: &mut Marks) -> Result<(), Error> {
        let mut r = Reader::new(input);
        let idx = self.boxed(&mut r, kind::BOXED, ty)?;
        self.combinator(&mut r, idx, MAX_DEPTH, marks)?;
        if r.position() == input.len() {
            Ok(())
        } else {
            Err(Error::Trailing)
        }
    }

    /// [`Layout::validate_exact`] of a boxed object of type `ty` that also records in `ends` where its nested
    /// objects and vectors end, at every level (not only its own fields, as [`Layout::validate_marked`] does), so
    /// views read with them ([`crate::tl::typed::Boxed::decode_in`]) never walk a value to find its end: the
    /// `message` of each `updateNewMessage` in an `updates` is read once, not walked and then read. Returns how
    /// many entries of `ends` it filled: they are in the order the values start (ascending `start`); when `ends`
    /// fills up, later values go unrecorded and the views walk them. Same answers and errors as `validate_exact`.
    pub fn validate_ends(&self, input: &[u8], ty: u16, ends: &mut [Mark]) -> Result<usize, Error> {
        let mut r = Reader::new(input);
        let mut rec = Recorder { ends, len: 0 };
        let idx = self.boxed(&mut r, kind::BOXED, ty)?;
        self.combinator(&mut r, idx, MAX_DEPTH, &mut rec)?;
        if r.position() == input.len() {
            Ok(rec.len)
        } else {
            Err(Error::Trailing)
        }
    }

    /// The fields of combinator `idx` (its id already consumed, or bare).
    fn combinator<M: Marker>(&self, r: &mut Reader<'_>, idx: u16, depth: u8, marks: &mut M) -> Result<(), Error> {
        let depth = depth.checked_sub(1).ok_or(Error::TooDeep)?;
        // A fixed-size combinator is its size in bytes, whatever they hold. Short input takes the walk below, so
        // the error is the one the walk names (a flag's missing field, or a truncation past its first fields).
        if let Some(&n) = self.fixed.get(usize::from(idx))
            && n != VARIABLE
            && r.take(usize::from(n)).is_ok()
        {
            return Ok(());
        }
        let mut flags = [0u32; 4];
        let mut words = 0usize;
        for &rec in self.fields_of(idx) {
            if rec & field::COND != 0 {
                let word = (rec >> field::WORD_SHIFT) & 3;
                let bit = (rec >> field::BIT_SHIFT) & 31;
                if flags.get(word as usize).copied().unwrap_or(0) & (1 << bit) == 0 {
                    continue;
                }
                // Most present fields are one fixed-size scalar: stepped over here, without the dispatch of
                // `value`. Only once the field is known present: most of a `message`'s 38 records are absent.
                let size = scalar_size(rec);
                if size != 0 {
                    // A scalar is all there or not at all: a short read is the announced field missing.
                    if r.remaining() < size {
                        return Err(Error::FlagFieldMissing {
                            word: word as u8,
                            bit: bit as u8,
                        });
                    }
                    r.pos += size;
                    continue;
                }
                let start = r.position();
                let slot = marks.open(rec, start);
                let res = if M::DEEP {
                    self.value(r, rec, depth, marks)
                } else {
                    self.value(r, rec, depth, &mut NoMarks)
                };
                match res {
                    // Nothing of the announced field is there: name the flag rather than a bare truncation.
                    Err(Error::Truncated) if r.position() == start => {
                        return Err(Error::FlagFieldMissing {
                            word: word as u8,
                            bit: bit as u8,
                        });
                    }
                    other => other?,
                }
                marks.close(slot, r.position());
            } else if scalar_size(rec) != 0 {
                let size = scalar_size(rec);
                if r.remaining() < size {
                    return Err(Error::Truncated);
                }
                r.pos += size;
            } else if rec & field::KIND == kind::FLAGS {
                let w = r.u32()?;
                if let Some(slot) = flags.get_mut(words) {
                    *slot = w;
                }
                words += 1;
            } else {
                let slot = marks.open(rec, r.position());
                if M::DEEP {
                    self.value(r, rec, depth, marks)?;
                } else {
                    self.value(r, rec, depth, &mut NoMarks)?;
                }
                marks.close(slot, r.position());
            }
        }
        Ok(())
    }
}

/// The encoded size of a record that is one unwrapped fixed-size scalar (`int`, `long`, `double`, `int128`,
/// `int256`; condition bits ignored), else 0: the validator's one-step case.
#[inline(always)]
const fn scalar_size(rec: u32) -> usize {
    if (rec >> field::VEC_SHIFT) & 3 != 0 {
        return 0;
    }
    match rec & field::KIND {
        kind::INT => 4,
        kind::LONG | kind::DOUBLE => 8,
        kind::INT128 => 16,
        kind::INT256 => 32,
        _ => 0,
    }
}

/// How many nested values of a decoded object [`Marks`] remembers (a `messages.messages` has 4 vectors, an
/// `updates` 3, an `updates.difference` 5 and a state); the views walk past any others.
pub const MARKS: usize = 8;

/// Where the nested objects and vectors of one validated object end, by where they start: what the validation
/// found, kept for the views' first read of the object so they need not walk them again
/// ([`Layout::validate_marked`]). Only the object's own fields: theirs are walked when read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Marks {
    starts: [u32; MARKS],
    ends: [u32; MARKS],
    len: usize,
}

impl Marks {
    /// No marks.
    pub const EMPTY: Self = Self {
        starts: [0; MARKS],
        ends: [0; MARKS],
        len: 0,
    };

    /// The end of the value that starts at `start`, if it was marked.
    #[must_use]
    pub fn end_of(&self, start: usize) -> Option<usize> {
        let n = self.len.min(MARKS);
        let i = self.starts.get(..n)?.iter().position(|&s| s as usize == start)?;
        self.ends.get(i).map(|&e| e as usize)
    }
}

/// Whether a record (no vector wrapping) is a boxed value, one the views step over by its end: `Type`, `Object` or
/// `!X`. Bare combinators are not (the views read none of the API schema; their ends would share a start with their
/// first field's).
const fn is_boxed(rec: u32) -> bool {
    matches!(rec & field::KIND, kind::BOXED | kind::OBJECT | kind::QUERY)
}

/// Whether the views would walk a value of this field record to find its end: a vector, or a boxed value.
const fn walked(rec: u32) -> bool {
    (rec >> field::VEC_SHIFT) & 3 != 0 || is_boxed(rec)
}

/// What [`Layout::combinator`] does with the extent of each field it validated: `open` before the value (its
/// start), `close` after it (its end), with the slot `open` gave (`usize::MAX`: not marked).
trait Marker {
    /// Whether the values below the combinator's own fields are marked too (else they get [`NoMarks`]).
    const DEEP: bool;
    fn open(&mut self, rec: u32, start: usize) -> usize;
    fn close(&mut self, slot: usize, end: usize);
}

/// Nested levels remember nothing.
struct NoMarks;

impl Marker for NoMarks {
    const DEEP: bool = false;
    #[inline(always)]
    fn open(&mut self, _: u32, _: usize) -> usize {
        usize::MAX
    }
    #[inline(always)]
    fn close(&mut self, _: usize, _: usize) {}
}

impl Marker for Marks {
    const DEEP: bool = false;
    fn open(&mut self, rec: u32, start: usize) -> usize {
        // Scalars and strings are read in one step anyway; only what the views would walk is worth a mark.
        if !walked(rec) {
            return usize::MAX;
        }
        match (self.starts.get_mut(self.len), u32::try_from(start)) {
            (Some(s), Ok(a)) => {
                *s = a;
                self.len += 1;
                self.len - 1
            }
            _ => usize::MAX,
        }
    }
    fn close(&mut self, slot: usize, end: usize) {
        if let (Some(e), Ok(b)) = (self.ends.get_mut(slot), u32::try_from(end)) {
            *e = b;
        }
    }
}

/// Where one nested value of a buffer validated by [`Layout::validate_ends`] starts and ends (offsets into it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mark {
    /// Offset of the value's first byte (a boxed value's constructor id, a vector's `vector` id or count).
    pub start: u32,
    /// Offset just past its last byte.
    pub end: u32,
}

/// [`Layout::validate_ends`]' marker: every walked value at every level, in the order they start, into the
/// caller's slice until it is full.
struct Recorder<'s> {
    ends: &'s mut [Mark],
    len: usize,
}

impl Marker for Recorder<'_> {
    const DEEP: bool = true;
    #[inline(always)]
    fn open(&mut self, rec: u32, start: usize) -> usize {
        if !walked(rec) {
            return usize::MAX;
        }
        // A slot taken before the value's own nested values keeps the starts ascending (a value starts before
        // anything inside it); once full, nothing later is recorded, so the recorded ones stay a sorted prefix.
        match (self.ends.get_mut(self.len), u32::try_from(start)) {
            (Some(m), Ok(a)) => {
                m.start = a;
                self.len += 1;
                self.len - 1
            }
            _ => usize::MAX,
        }
    }
    #[inline(always)]
    fn close(&mut self, slot: usize, end: usize) {
        if let (Some(m), Ok(b)) = (self.ends.get_mut(slot), u32::try_from(end)) {
            m.end = b;
        }
    }
}

/// The end of the value that starts at `start` in `ends` (as [`Layout::validate_ends`] filled it), searched from
/// `*hint` onwards (the index after the last answer: views read in the order values start, so the answer is
/// usually a few entries on) by a short scan, then bisection. `*hint` moves past the answer.
#[must_use]
#[inline]
pub fn end_in(ends: &[Mark], hint: &mut usize, start: usize) -> Option<usize> {
    let start = u32::try_from(start).ok()?;
    let from = (*hint).min(ends.len());
    let (before, tail) = ends.split_at(from);
    let at = match tail.first() {
        Some(m) if m.start <= start => {
            // The next few entries first: between two values a reader looks up lie only those nested in the first
            // (a message's peers and entities); past them, bisection.
            from + match tail.iter().take(8).position(|m| m.start >= start) {
                Some(i) => i,
                None => tail.partition_point(|m| m.start < start),
            }
        }
        _ => before.partition_point(|m| m.start < start),
    };
    let m = ends.get(at)?;
    if m.start == start {
        *hint = at + 1;
        Some(m.end as usize)
    } else {
        None
    }
}

/// The position of [`Layout::skip`]'s walk: reads that cannot fail (zeros past the end) and moves that stop at it.
struct Trusted<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Trusted<'_> {
    fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn end(&mut self) {
        self.pos = self.buf.len();
    }

    fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.buf.len());
    }

    fn u32(&mut self) -> u32 {
        let w = self
            .buf
            .get(self.pos..self.pos.saturating_add(4))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes);
        self.advance(4);
        w
    }

    /// Steps over a `bytes`/`string`: a length byte below 254 and the payload, or 254, a 24-bit length and the
    /// payload, padded to 4 bytes; 255 is malformed and ends the walk.
    fn bytes(&mut self) {
        let Some(&first) = self.buf.get(self.pos) else {
            return self.end();
        };
        let total = match first {
            0..=253 => 1 + usize::from(first),
            254 => {
                let w = self
                    .buf
                    .get(self.pos..self.pos.saturating_add(4))
                    .and_then(|b| <[u8; 4]>::try_from(b).ok());
                match w {
                    Some(w) => 4 + (u32::from_le_bytes(w) >> 8) as usize,
                    None => return self.end(),
                }
            }
            255 => return self.end(),
        };
        self.advance(total.saturating_add(3) & !3);
    }
}
