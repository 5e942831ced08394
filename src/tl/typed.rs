//! The runtime of the generated typed API ([`crate::tl::api`], `api` feature): borrowed views over bytes that
//! [`Layout::validate`] accepted, and writers with exact sizes.
//!
//! Data comes from a received buffer (a decrypted `rpc_result.result`, an `Updates` push): a top-level decode
//! validates it once against the schema's tables, then reads fields through a [`Cursor`] whose reads cannot fail
//! (the bytes are known to be well formed). Nested objects stay as [`Obj`] views over their bytes and vectors as
//! [`Seq`] views that decode lazily; nothing allocates. A view finds where a nested value ends without validating
//! it again: [`Boxed::decode_in`] keeps the ends of the nested values at every level from its validation in a
//! caller's scratch ([`Layout::validate_ends`]), which the views and the vectors read from them search;
//! [`Boxed::decode`] (no scratch) remembers those of the decoded object's own nested values
//! ([`crate::tl::layout::Marks`]); any other is stepped over by [`Layout::skip`], a walk that trusts the bytes
//! (it checks no type and reports no error; fixed-size constructors are one move, [`Layout::fixed`]). Trusting is
//! sound because every cursor of a view is over bytes the validator accepted (views are built by `decode`,
//! [`RemoteCall::decode_result`] and from other views, never from raw bytes), and harmless otherwise: the walk is
//! total on any bytes ([`Layout::skip`]), so a [`Cursor`] made by hand over bad bytes reads garbage, not a panic. Going out, the same structs are filled by the caller (nested
//! values borrowed as [`Obj::new`], vectors as [`Seq::new`]) and written with [`crate::tl::encode`], whose size is
//! [`TlWrite::tl_len`], known before a byte is written.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;
use core::marker::PhantomData;

use super::layout::{Error, Layout, Mark, Marks, end_in, field, kind};
use super::{BOOL_TRUE, Full, TlWrite, VECTOR, Writer};

/// A reader over bytes the validator accepted. Its reads cannot fail: were the bytes shorter than the schema says
/// (they are not), a read would yield zeros and empty slices instead of panicking.
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    layout: &'static Layout,
    /// Ends of the decoded object's own nested values its validation remembered ([`Boxed::decode`]); none
    /// otherwise.
    marks: Marks,
    /// Ends of nested values at every level ([`Boxed::decode_in`]), as offsets into the buffer the validation
    /// saw, of which `buf` starts at offset `base`; empty otherwise.
    ends: &'a [Mark],
    base: usize,
    /// Where in `ends` the next search starts ([`end_in`]).
    hint: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`, which `layout` validated.
    #[must_use]
    pub const fn new(buf: &'a [u8], layout: &'static Layout) -> Self {
        Self {
            buf,
            pos: 0,
            layout,
            marks: Marks::EMPTY,
            ends: &[],
            base: 0,
            hint: 0,
        }
    }

    /// A cursor over `buf`, which starts at offset `base` of the buffer `ends` describes.
    const fn with_ends(buf: &'a [u8], layout: &'static Layout, ends: &'a [Mark], base: usize) -> Self {
        Self {
            buf,
            pos: 0,
            layout,
            marks: Marks::EMPTY,
            ends,
            base,
            hint: 0,
        }
    }

    /// Where the value at `start` ends: remembered by the validation, or found by a trusting walk of record `rec`.
    /// Out of line: every nested field of every generated reader calls it, and inlined it cost the API firmware
    /// 28 KiB of flash at opt-level 3.
    #[inline(never)]
    fn end_of(&mut self, start: usize, rec: u32) -> usize {
        if !self.ends.is_empty()
            && let Some(end) = end_in(self.ends, &mut self.hint, self.base.saturating_add(start))
        {
            // Validated ends lie inside `buf`; the bound keeps a hand-made cursor's reads in it all the same.
            return end.saturating_sub(self.base).max(start).min(self.buf.len());
        }
        match self.marks.end_of(start) {
            Some(end) => end,
            None => self.layout.skip(self.buf, start, rec),
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let end = self.pos.saturating_add(n).min(self.buf.len());
        let out = self.buf.get(self.pos..end).unwrap_or(&[]);
        self.pos = end;
        out
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        // The whole array in one load when it is there (always, for validated bytes): a copy of a length the
        // compiler cannot see was a `memcpy` call per id, int and long read (12 % of a decode's instructions).
        let end = self.pos.saturating_add(N);
        if let Some(a) = self.buf.get(self.pos..end).and_then(|s| <[u8; N]>::try_from(s).ok()) {
            self.pos = end;
            return a;
        }
        self.array_short()
    }

    /// [`Cursor::array`] at the end of bytes that were not validated: what is left, then zeros.
    #[cold]
    #[inline(never)]
    fn array_short<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let src = self.take(N);
        if let Some(dst) = out.get_mut(..src.len()) {
            dst.copy_from_slice(src);
        }
        out
    }

    /// A 32-bit word (constructor ids, flags).
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// A `bytes`/`string` payload.
    pub fn bytes(&mut self) -> &'a [u8] {
        let mut r = super::Reader::new(self.buf.get(self.pos..).unwrap_or(&[]));
        let out = r.bytes().unwrap_or(&[]);
        self.pos = self.pos.saturating_add(r.position());
        out
    }

    /// The value of record `rec` at the cursor, and the cursor moved past it: [`Layout::skip`], a walk that trusts
    /// the bytes (they were validated before any cursor over them was made), total on any bytes all the same.
    fn skip(&mut self, rec: u32) -> &'a [u8] {
        let end = self.end_of(self.pos, rec);
        let out = self.buf.get(self.pos..end).unwrap_or(&[]);
        self.pos = end;
        out
    }
}

/// A type the generated structs hold as a field (or a vector element, or a function's result): read from validated
/// bytes, sized and written.
pub trait Field<'a>: Sized {
    /// The field record ([`crate::tl::layout::field`]) that [`Layout::skip`] steps over a value of this type with:
    /// its kind, and the vector wrapping for a [`Seq`] (whose elements are not vectors themselves).
    const REC: u32;
    /// Reads the value at the cursor.
    fn fget(c: &mut Cursor<'a>) -> Self;
    /// Exact encoded size.
    fn flen(&self) -> usize;
    /// Encodes the value.
    fn fput(&self, w: &mut Writer<'_>) -> Result<(), Full>;
}

macro_rules! fixed_field {
    ($t:ty, $rec:expr, $n:expr, $get:expr, $put:ident) => {
        impl<'a> Field<'a> for $t {
            const REC: u32 = $rec;
            fn fget(c: &mut Cursor<'a>) -> Self {
                $get(c)
            }
            fn flen(&self) -> usize {
                $n
            }
            fn fput(&self, w: &mut Writer<'_>) -> Result<(), Full> {
                w.$put(*self)
            }
        }
    };
}

fixed_field!(
    i32,
    kind::INT,
    4,
    |c: &mut Cursor<'a>| i32::from_le_bytes(c.array()),
    i32
);
fixed_field!(
    i64,
    kind::LONG,
    8,
    |c: &mut Cursor<'a>| i64::from_le_bytes(c.array()),
    i64
);
fixed_field!(
    f64,
    kind::DOUBLE,
    8,
    |c: &mut Cursor<'a>| f64::from_le_bytes(c.array()),
    f64
);
// A `Bool` is a boxed constructor of no fields; any object record steps over it.
fixed_field!(bool, kind::OBJECT, 4, |c: &mut Cursor<'a>| c.u32() == BOOL_TRUE, bool);

impl<'a> Field<'a> for [u8; 16] {
    const REC: u32 = kind::INT128;
    fn fget(c: &mut Cursor<'a>) -> Self {
        c.array()
    }
    fn flen(&self) -> usize {
        16
    }
    fn fput(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.int128(self)
    }
}

impl<'a> Field<'a> for [u8; 32] {
    const REC: u32 = kind::INT256;
    fn fget(c: &mut Cursor<'a>) -> Self {
        c.array()
    }
    fn flen(&self) -> usize {
        32
    }
    fn fput(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.int256(self)
    }
}

/// `bytes` and `string` (TL strings are not guaranteed UTF-8).
impl<'a> Field<'a> for &'a [u8] {
    const REC: u32 = kind::BYTES;
    fn fget(c: &mut Cursor<'a>) -> Self {
        c.bytes()
    }
    fn flen(&self) -> usize {
        super::bytes_len(self.len())
    }
    fn fput(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.bytes(self)
    }
}

/// A boxed type of a schema: the generated enum over its constructors.
pub trait Boxed<'a>: Sized {
    /// The type's index in its schema's tables.
    const TYPE: u16;
    /// The schema's tables.
    const LAYOUT: &'static Layout;
    /// Reads a value whose bytes were validated as this type; `None` only for bytes that were not.
    fn read_boxed(c: &mut Cursor<'a>) -> Option<Self>;

    /// Validates `buf` (it must hold exactly one value of this type) and decodes it. The validation remembers
    /// where the object's own nested objects and vectors end ([`Layout::validate_marked`]), so reading it does
    /// not walk them again (a `messages.messages`' vectors are most of its bytes).
    fn decode(buf: &'a [u8]) -> Result<Self, Error> {
        let mut marks = Marks::EMPTY;
        Self::LAYOUT.validate_marked(buf, Self::TYPE, &mut marks)?;
        let mut c = Cursor::new(buf, Self::LAYOUT);
        c.marks = marks;
        Self::read_boxed(&mut c).ok_or(Error::Truncated)
    }

    /// [`Boxed::decode`] that records in the caller's `ends` where the nested objects and vectors end at every
    /// level ([`Layout::validate_ends`]), and reads with them: the views never walk a value to find its end, as
    /// long as `ends` has room (a `messages.messages` of 100 messages fills about 900 entries; values past a full
    /// `ends` are walked, as [`Boxed::decode`] walks them). The views returned, their vectors and what
    /// [`Seq::decoded`] and [`Seq::iter`] read from them keep using `ends`; an object read by [`Obj::get`] walks.
    fn decode_in(buf: &'a [u8], ends: &'a mut [Mark]) -> Result<Self, Error> {
        let n = Self::LAYOUT.validate_ends(buf, Self::TYPE, ends)?;
        let ends: &'a [Mark] = ends;
        let mut c = Cursor::with_ends(buf, Self::LAYOUT, ends.get(..n).unwrap_or(&[]), 0);
        Self::read_boxed(&mut c).ok_or(Error::Truncated)
    }
}

/// Marks a constructor struct (and the enum itself) as a value of boxed type `T`, so [`Obj::new`] accepts it.
pub trait OfType<T> {}

/// A generated constructor or function struct: its id and bare form.
pub trait Bare<'a>: Sized {
    /// Constructor id.
    const ID: u32;
    /// Reads the fields (the id already consumed) from validated bytes.
    fn read_bare(c: &mut Cursor<'a>) -> Self;
}

/// A function: its result type (as grammers' `RemoteCall`), decoded from an `rpc_result.result`.
pub trait RemoteCall: TlWrite {
    /// What the server answers.
    type Return<'r>;
    /// Validates and decodes an answer to this call.
    fn decode_result(buf: &[u8]) -> Result<Self::Return<'_>, Error>;
}

/// Validates `buf` as exactly one value of record `rec` and reads it as `T`.
pub fn decode_record<'a, T: Field<'a>>(layout: &'static Layout, rec: u32, buf: &'a [u8]) -> Result<T, Error> {
    if layout.validate_record(buf, rec)? != buf.len() {
        return Err(Error::Trailing);
    }
    Ok(T::fget(&mut Cursor::new(buf, layout)))
}

/// A received object is its bytes alone: the schema's tables are the type's ([`Boxed::LAYOUT`]), so a view need
/// not carry a pointer to them (a `message` view holds 13 of these; every byte here is copied with each view).
#[derive(Clone, Copy)]
enum ObjRepr<'a> {
    Wire(&'a [u8]),
    Value(&'a dyn TlWrite),
}

/// A nested boxed object of type `T`: validated bytes of a received object, or a caller's value to encode.
pub struct Obj<'a, T> {
    repr: ObjRepr<'a>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Obj<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Obj<'_, T> {}

impl<T> fmt::Debug for Obj<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            ObjRepr::Wire(b) => write!(f, "Obj({} bytes)", b.len()),
            ObjRepr::Value(v) => write!(f, "Obj(value, {} bytes)", v.tl_len()),
        }
    }
}

impl<'a, T> Obj<'a, T> {
    /// A caller's value (a constructor struct of type `T`, or the enum `T`) to encode in place of this object.
    pub fn new<V: TlWrite + OfType<T> + 'a>(value: &'a V) -> Self {
        Self {
            repr: ObjRepr::Value(value),
            _t: PhantomData,
        }
    }

    /// The object's validated wire bytes (constructor id first), for a received object.
    #[must_use]
    pub const fn wire(&self) -> Option<&'a [u8]> {
        match self.repr {
            ObjRepr::Wire(b) => Some(b),
            ObjRepr::Value(_) => None,
        }
    }

    /// The constructor id of a received object.
    #[must_use]
    pub fn constructor(&self) -> Option<u32> {
        let b = self.wire()?;
        Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
    }
}

impl<'a, T: Boxed<'a>> Obj<'a, T> {
    /// Decodes a received object (validated with its parent: this cannot fail). `None` for a caller's value.
    #[must_use]
    pub fn get(&self) -> Option<T> {
        match self.repr {
            ObjRepr::Wire(b) => T::read_boxed(&mut Cursor::new(b, T::LAYOUT)),
            ObjRepr::Value(_) => None,
        }
    }
}

impl<'a, T: Boxed<'a> + TlWrite> Field<'a> for Obj<'a, T> {
    const REC: u32 = kind::OBJECT;
    fn fget(c: &mut Cursor<'a>) -> Self {
        Self {
            repr: ObjRepr::Wire(c.skip(kind::OBJECT)),
            _t: PhantomData,
        }
    }
    fn flen(&self) -> usize {
        match self.repr {
            ObjRepr::Wire(b) => b.len(),
            ObjRepr::Value(v) => v.tl_len(),
        }
    }
    fn fput(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        match self.repr {
            // A deep writer re-encodes the decoded object (its nested objects in turn); bytes the type does not
            // read (never the case for validated bytes) are copied.
            ObjRepr::Wire(b) if w.is_deep() => match T::read_boxed(&mut Cursor::new(b, T::LAYOUT)) {
                Some(v) => v.write(w),
                None => w.raw(b),
            },
            ObjRepr::Wire(b) => w.raw(b),
            ObjRepr::Value(v) => v.write(w),
        }
    }
}

impl<T> TlWrite for Obj<'_, T> {
    fn tl_len(&self) -> usize {
        match self.repr {
            ObjRepr::Wire(b) => b.len(),
            ObjRepr::Value(v) => v.tl_len(),
        }
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        match self.repr {
            ObjRepr::Wire(b) => w.raw(b),
            ObjRepr::Value(v) => v.write(w),
        }
    }
}

/// Any object of a schema, untyped: the result of a wrapped query whose type is only known to the caller.
#[derive(Clone, Copy, Debug)]
pub struct Any;

/// A function call carried by a generic wrapper (`invokeWithLayer`'s `query:!X`): validated bytes of any function
/// of the schema, or a caller's call to encode. Unlike an [`Obj`], whose type names its schema, a query keeps the
/// tables it was validated against (a deep writer re-encodes it only through the API schema's structs).
#[derive(Clone, Copy)]
pub struct Query<'a> {
    obj: Obj<'a, Any>,
    // Read only by the API schema's deep writer.
    #[cfg_attr(not(feature = "api"), allow(dead_code))]
    layout: Option<&'static Layout>,
}

impl fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query").field("obj", &self.obj).finish_non_exhaustive()
    }
}

impl<'a> Query<'a> {
    /// A caller's call to wrap.
    pub fn new<F: RemoteCall + 'a>(call: &'a F) -> Self {
        Self {
            obj: Obj {
                repr: ObjRepr::Value(call),
                _t: PhantomData,
            },
            layout: None,
        }
    }

    /// The call's validated wire bytes (function id first), for a received query.
    #[must_use]
    pub const fn wire(&self) -> Option<&'a [u8]> {
        self.obj.wire()
    }

    /// The function id of a received query.
    #[must_use]
    pub fn constructor(&self) -> Option<u32> {
        self.obj.constructor()
    }
}

impl<'a> Field<'a> for Query<'a> {
    const REC: u32 = kind::QUERY;
    fn fget(c: &mut Cursor<'a>) -> Self {
        let layout = c.layout;
        Self {
            obj: Obj {
                repr: ObjRepr::Wire(c.skip(kind::QUERY)),
                _t: PhantomData,
            },
            layout: Some(layout),
        }
    }
    fn flen(&self) -> usize {
        self.obj.tl_len()
    }
    fn fput(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        self.write(w)
    }
}

/// The generated wrappers (`invokeWithLayer<X>`) write their `query:!X` through this.
impl TlWrite for Query<'_> {
    fn tl_len(&self) -> usize {
        self.obj.tl_len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        // A deep writer re-encodes a received call of the API schema through its generated struct.
        #[cfg(feature = "api")]
        if let (ObjRepr::Wire(b), Some(layout)) = (self.obj.repr, self.layout)
            && w.is_deep()
            && core::ptr::eq(layout, &crate::tl::tables::api::API)
        {
            return crate::tl::api::write_call(b, w);
        }
        self.obj.write(w)
    }
}

/// A received query's answer is whatever the query returns: the caller, who knows the query, decodes these bytes.
impl RemoteCall for Query<'_> {
    type Return<'r> = &'r [u8];
    fn decode_result(buf: &[u8]) -> Result<Self::Return<'_>, Error> {
        Ok(buf)
    }
}

enum SeqRepr<'a, E> {
    Wire {
        count: u32,
        /// Offset of `data` in the buffer `ends` describes.
        base: u32,
        data: &'a [u8],
        layout: &'static Layout,
        ends: &'a [Mark],
    },
    Items(&'a [E]),
}

/// A TL vector of `E`: validated wire bytes decoded lazily by [`Seq::iter`], or a caller's slice to encode.
/// `BARE` is `true` for the bare `vector<T>` (no `vector` id on the wire).
pub struct Seq<'a, E, const BARE: bool = false> {
    repr: SeqRepr<'a, E>,
}

impl<E, const BARE: bool> Clone for Seq<'_, E, BARE> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E, const BARE: bool> Copy for Seq<'_, E, BARE> {}
impl<E> Clone for SeqRepr<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for SeqRepr<'_, E> {}

impl<E, const BARE: bool> fmt::Debug for Seq<'_, E, BARE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq(len {})", self.len())
    }
}

impl<'a, E, const BARE: bool> Seq<'a, E, BARE> {
    /// A vector to encode from the caller's elements.
    #[must_use]
    pub const fn new(items: &'a [E]) -> Self {
        Self {
            repr: SeqRepr::Items(items),
        }
    }

    /// Number of elements.
    #[must_use]
    pub const fn len(&self) -> usize {
        match self.repr {
            SeqRepr::Wire { count, .. } => count as usize,
            SeqRepr::Items(s) => s.len(),
        }
    }

    /// Whether the vector is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a, E: Field<'a> + Copy, const BARE: bool> Seq<'a, E, BARE> {
    /// The elements, decoded one at a time from the wire (or copied from the caller's slice).
    #[must_use]
    pub fn iter(&self) -> SeqIter<'a, E> {
        match self.repr {
            SeqRepr::Wire {
                count,
                base,
                data,
                layout,
                ends,
            } => SeqIter {
                left: count as usize,
                wire: Some(Cursor::with_ends(data, layout, ends, base as usize)),
                items: &[],
            },
            SeqRepr::Items(items) => SeqIter {
                left: items.len(),
                wire: None,
                items,
            },
        }
    }
}

impl<'a, T: Boxed<'a>, const BARE: bool> Seq<'a, Obj<'a, T>, BARE> {
    /// The elements decoded, each read once. [`Seq::iter`] yields [`Obj`] views, which must find where each
    /// element ends (a walk of its bytes) before [`Obj::get`] reads it (a second walk); this reads every element
    /// straight from the wire, its end being where its last field ends. Elements of a caller's slice
    /// ([`Seq::new`]) that are values, not received views, have nothing to decode and are left out.
    #[must_use]
    pub fn decoded(&self) -> Decoded<'a, T> {
        match self.repr {
            SeqRepr::Wire {
                count,
                base,
                data,
                layout,
                ends,
            } => Decoded {
                left: count as usize,
                wire: Some(Cursor::with_ends(data, layout, ends, base as usize)),
                items: &[],
            },
            SeqRepr::Items(items) => Decoded {
                left: items.len(),
                wire: None,
                items,
            },
        }
    }
}

/// Iterator over the decoded elements of a [`Seq`] of objects ([`Seq::decoded`]).
#[derive(Debug)]
pub struct Decoded<'a, T> {
    left: usize,
    wire: Option<Cursor<'a>>,
    items: &'a [Obj<'a, T>],
}

impl<'a, T: Boxed<'a>> Iterator for Decoded<'a, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        while self.left > 0 {
            self.left -= 1;
            match &mut self.wire {
                Some(c) => {
                    let v = T::read_boxed(c);
                    if v.is_none() {
                        // Only bytes the validator did not accept get here: stop rather than read out of step.
                        self.left = 0;
                    }
                    return v;
                }
                None => {
                    let (first, rest) = self.items.split_first()?;
                    self.items = rest;
                    if let Some(v) = first.get() {
                        return Some(v);
                    }
                }
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

impl<'a, E: Field<'a> + Copy, const BARE: bool> Field<'a> for Seq<'a, E, BARE> {
    const REC: u32 = E::REC | (if BARE { field::VEC_BARE } else { field::VEC_BOXED }) << field::VEC_SHIFT;
    fn fget(c: &mut Cursor<'a>) -> Self {
        let head = c.pos;
        if !BARE {
            c.u32();
        }
        // Validated bytes hold at most one element per byte left (the validator's rule: an element takes at least
        // one byte); bytes that were not validated (a caller's `Cursor::new` over raw input) may announce 2^32 - 1
        // elements in four bytes. Capped, reading such a view costs at most one step per byte of the buffer.
        let count = c
            .u32()
            .min(u32::try_from(c.buf.len().saturating_sub(c.pos)).unwrap_or(u32::MAX));
        let start = c.pos;
        if (E::REC >> field::VEC_SHIFT) & 3 == 0 {
            // One trusting walk over the whole vector: a vector of scalars in one move, of objects without a
            // call per element.
            c.pos = c.end_of(head, Self::REC).max(start);
        } else {
            // A vector of vectors, which one record cannot describe.
            for _ in 0..count {
                E::fget(c);
            }
        }
        // Offsets into what the validation saw fit in a u32 (it records none past that); a cursor whose do not
        // reads its vector's elements without `ends`.
        let (ends, base) = match u32::try_from(c.base.saturating_add(start)) {
            Ok(base) => (c.ends, base),
            Err(_) => (&[][..], 0),
        };
        Self {
            repr: SeqRepr::Wire {
                count,
                base,
                data: c.buf.get(start..c.pos).unwrap_or(&[]),
                layout: c.layout,
                ends,
            },
        }
    }
    fn flen(&self) -> usize {
        let head = if BARE { 4 } else { 8 };
        head + match self.repr {
            SeqRepr::Wire { data, .. } => data.len(),
            SeqRepr::Items(s) => s.iter().map(Field::flen).sum(),
        }
    }
    fn fput(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        if !BARE {
            w.u32(VECTOR)?;
        }
        w.u32(u32::try_from(self.len()).map_err(|_| Full { required: usize::MAX })?)?;
        match self.repr {
            // A deep writer re-encodes each decoded element.
            SeqRepr::Wire { .. } if w.is_deep() => self.iter().try_for_each(|x| x.fput(w)),
            SeqRepr::Wire { data, .. } => w.raw(data),
            SeqRepr::Items(s) => s.iter().try_for_each(|x| x.fput(w)),
        }
    }
}

/// Iterator over a [`Seq`].
#[derive(Debug)]
pub struct SeqIter<'a, E> {
    left: usize,
    wire: Option<Cursor<'a>>,
    items: &'a [E],
}

impl<'a, E: Field<'a> + Copy> Iterator for SeqIter<'a, E> {
    type Item = E;
    fn next(&mut self) -> Option<E> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match &mut self.wire {
            Some(c) => Some(E::fget(c)),
            None => {
                let (first, rest) = self.items.split_first()?;
                self.items = rest;
                Some(*first)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// The flags word of a record, for generated code: bit `bit` set when `present`.
#[must_use]
pub const fn flag(present: bool, bit: u32) -> u32 {
    if present { 1 << bit } else { 0 }
}

/// The field record that [`Layout::validate_record`] takes for a boxed type.
#[must_use]
pub const fn boxed_record(ty: u16) -> u32 {
    kind::BOXED | (ty as u32) << field::REF_SHIFT
}
