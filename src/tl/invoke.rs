//! The api.tl wrappers a client puts around a call: `invokeWithLayer`, `invokeWithoutUpdates`, `invokeAfterMsg` and
//! `initConnection`. Both ends in one place:
//! - reading through them ([`unwrap`]): a DC finds the call it must execute (and the layer the client speaks); the
//!   PFS policy (`session::pfs::inner_method`) names the method an unbound temporary key would carry. The input is
//!   a decrypted message body (an `Event::Request`, or a query the host is about to send); the answer borrows it.
//!   Iterative and bounded: at most `max_wrappers` wrappers, `initConnection.params` JSON skipped without recursion
//!   on a fixed stack of [`MAX_JSON_DEPTH`] levels and at most [`MAX_JSON_VALUES`] values;
//! - writing them ([`write_init_connection`]): the `invokeWithLayer(initConnection(…))` prefix a client puts before
//!   its first call on a connection, into the caller's [`Writer`].
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use super::{DecodeError, Full, Reader, VECTOR, Writer, bytes_len};

/// `invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;`
pub const INVOKE_WITH_LAYER: u32 = 0xda9b_0d0d;
/// `invokeWithoutUpdates#bf9459b7 {X:Type} query:!X = X;`
pub const INVOKE_WITHOUT_UPDATES: u32 = 0xbf94_59b7;
/// `invokeAfterMsg#cb9f372d {X:Type} msg_id:long query:!X = X;`
pub const INVOKE_AFTER_MSG: u32 = 0xcb9f_372d;
/// `initConnection#c1cd5ea9 {X:Type} flags:# api_id:int device_model:string system_version:string
/// app_version:string system_lang_code:string lang_pack:string lang_code:string proxy:flags.0?InputClientProxy
/// params:flags.1?JSONValue query:!X = X;`
pub const INIT_CONNECTION: u32 = 0xc1cd_5ea9;
/// `inputClientProxy#75588b3f address:string port:int = InputClientProxy;`
pub const INPUT_CLIENT_PROXY: u32 = 0x7558_8b3f;

/// `jsonNull#3f6d7b68 = JSONValue;`
pub const JSON_NULL: u32 = 0x3f6d_7b68;
/// `jsonBool#c7345e6a value:Bool = JSONValue;`
pub const JSON_BOOL: u32 = 0xc734_5e6a;
/// `jsonNumber#2be0dfa4 value:double = JSONValue;`
pub const JSON_NUMBER: u32 = 0x2be0_dfa4;
/// `jsonString#b71e767a value:string = JSONValue;`
pub const JSON_STRING: u32 = 0xb71e_767a;
/// `jsonArray#f7444763 value:Vector<JSONValue> = JSONValue;`
pub const JSON_ARRAY: u32 = 0xf744_4763;
/// `jsonObject#99c1d49d value:Vector<JSONObjectValue> = JSONValue;`
pub const JSON_OBJECT: u32 = 0x99c1_d49d;
/// `jsonObjectValue#c0de1bd9 key:string value:JSONValue = JSONObjectValue;`
pub const JSON_OBJECT_VALUE: u32 = 0xc0de_1bd9;

/// Nesting of `initConnection.params` JSON accepted, at most (the skip's stack is this deep, on the stack).
pub const MAX_JSON_DEPTH: usize = 16;
/// JSON values in `initConnection.params`, at most.
pub const MAX_JSON_VALUES: usize = 4096;

/// A call after its wrappers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwrapped<'a> {
    /// The call's constructor id (never a wrapper's).
    pub method: u32,
    /// The call's arguments: the bytes after its constructor id, to the end of the body.
    pub args: &'a [u8],
    /// `invokeWithLayer.layer`, the innermost one if there are several.
    pub layer: Option<i32>,
    /// An `initConnection` was unwrapped.
    pub init_connection: bool,
}

/// Why [`unwrap`] could not reach the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnwrapError {
    /// Truncated or malformed TL (an unknown proxy or JSON constructor, a bad length).
    Decode(DecodeError),
    /// More wrappers than the caller's budget.
    TooManyWrappers,
    /// `initConnection.params` nested deeper than [`MAX_JSON_DEPTH`] or holding more than [`MAX_JSON_VALUES`] values.
    JsonTooLarge,
}

impl From<DecodeError> for UnwrapError {
    fn from(e: DecodeError) -> Self {
        UnwrapError::Decode(e)
    }
}

impl fmt::Display for UnwrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnwrapError::Decode(e) => write!(f, "malformed wrapper: {e}"),
            UnwrapError::TooManyWrappers => f.write_str("too many wrappers"),
            UnwrapError::JsonTooLarge => f.write_str("initConnection params too deep or too large"),
        }
    }
}

impl core::error::Error for UnwrapError {}

/// Reads through at most `max_wrappers` wrappers to the call inside. A body that is only wrappers (or more of them
/// than `max_wrappers`) is [`UnwrapError::TooManyWrappers`]; the call's own arguments are not looked at.
pub fn unwrap(body: &[u8], max_wrappers: usize) -> Result<Unwrapped<'_>, UnwrapError> {
    let mut r = Reader::new(body);
    let mut layer = None;
    let mut init_connection = false;
    for _ in 0..=max_wrappers {
        match r.u32()? {
            INVOKE_WITH_LAYER => layer = Some(r.i32()?),
            INVOKE_WITHOUT_UPDATES => {}
            INVOKE_AFTER_MSG => {
                r.i64()?;
            }
            INIT_CONNECTION => {
                init_connection = true;
                let flags = r.u32()?;
                r.i32()?; // api_id
                for _ in 0..6 {
                    r.bytes()?; // device_model .. lang_code
                }
                if flags & 1 != 0 {
                    r.expect_constructor(INPUT_CLIENT_PROXY)?;
                    r.bytes()?;
                    r.i32()?;
                }
                if flags & 2 != 0 {
                    skip_json(&mut r)?;
                }
            }
            method => {
                return Ok(Unwrapped {
                    method,
                    args: r.rest(),
                    layer,
                    init_connection,
                });
            }
        }
    }
    Err(UnwrapError::TooManyWrappers)
}

/// Skips one `JSONValue`. Containers push (elements left, is an object) on a fixed stack; no recursion, no heap.
fn skip_json(r: &mut Reader<'_>) -> Result<(), UnwrapError> {
    let mut stack = [(0usize, false); MAX_JSON_DEPTH];
    let mut depth = 0usize;
    let mut values = 0usize;
    loop {
        values += 1;
        if values > MAX_JSON_VALUES {
            return Err(UnwrapError::JsonTooLarge);
        }
        match r.u32()? {
            JSON_NULL => {}
            JSON_BOOL => {
                r.bool()?;
            }
            JSON_NUMBER => {
                r.f64()?;
            }
            JSON_STRING => {
                r.bytes()?;
            }
            c @ (JSON_ARRAY | JSON_OBJECT) => {
                r.expect_constructor(VECTOR)?;
                // An object's element is at least a constructor, an empty key and a value's constructor.
                let n = r.count(if c == JSON_OBJECT { 12 } else { 4 })?;
                let slot = stack.get_mut(depth).ok_or(UnwrapError::JsonTooLarge)?;
                *slot = (n, c == JSON_OBJECT);
                depth += 1;
            }
            c => return Err(DecodeError::UnknownConstructor(c).into()),
        }
        // Close finished containers; open the next element.
        loop {
            let Some(top) = depth.checked_sub(1).and_then(|d| stack.get_mut(d)) else {
                return Ok(());
            };
            if top.0 == 0 {
                depth -= 1;
                continue;
            }
            top.0 -= 1;
            if top.1 {
                r.expect_constructor(JSON_OBJECT_VALUE)?;
                r.bytes()?;
            }
            break;
        }
    }
}

/// The `initConnection` fields a client names itself with (no proxy, no params).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitConnection<'a> {
    /// `api_id`.
    pub api_id: i32,
    /// `device_model`.
    pub device_model: &'a [u8],
    /// `system_version`.
    pub system_version: &'a [u8],
    /// `app_version`.
    pub app_version: &'a [u8],
    /// `system_lang_code`.
    pub system_lang_code: &'a [u8],
    /// `lang_pack`.
    pub lang_pack: &'a [u8],
    /// `lang_code`.
    pub lang_code: &'a [u8],
}

impl InitConnection<'_> {
    fn strings(&self) -> [&[u8]; 6] {
        [
            self.device_model,
            self.system_version,
            self.app_version,
            self.system_lang_code,
            self.lang_pack,
            self.lang_code,
        ]
    }

    /// Bytes [`write_init_connection`] writes (the call itself not counted).
    pub fn prefix_len(&self) -> usize {
        // invokeWithLayer + layer + initConnection + flags + api_id, then the six strings.
        20 + self.strings().iter().map(|s| bytes_len(s.len())).sum::<usize>()
    }
}

/// Writes `invokeWithLayer(layer, initConnection(init, …))` without the call: the caller writes the call right
/// after it. Nothing is written when it does not fit ([`Full`] tells the size).
pub fn write_init_connection(w: &mut Writer<'_>, layer: i32, init: &InitConnection<'_>) -> Result<(), Full> {
    let need = init.prefix_len();
    match w.remaining() {
        Some(left) if left < need => {
            return Err(Full {
                required: w.written().saturating_add(need),
            });
        }
        _ => {}
    }
    w.u32(INVOKE_WITH_LAYER)?;
    w.i32(layer)?;
    w.u32(INIT_CONNECTION)?;
    w.u32(0)?;
    w.i32(init.api_id)?;
    for s in init.strings() {
        w.bytes(s)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const INIT: InitConnection<'static> = InitConnection {
        api_id: 7,
        device_model: b"dev",
        system_version: b"os",
        app_version: b"1.0",
        system_lang_code: b"en",
        lang_pack: b"",
        lang_code: b"en",
    };

    #[test]
    fn written_prefix_unwraps_to_the_call() {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        write_init_connection(&mut w, 214, &INIT).unwrap();
        w.u32(0x1234_5678).unwrap();
        w.i32(-1).unwrap();
        let n = w.written();
        assert_eq!(n, INIT.prefix_len() + 8);
        let u = unwrap(&buf[..n], 2).unwrap();
        assert_eq!(u.method, 0x1234_5678);
        assert_eq!(u.args, (-1i32).to_le_bytes());
        assert_eq!(u.layer, Some(214));
        assert!(u.init_connection);
        // Two wrappers need a budget of two.
        assert_eq!(unwrap(&buf[..n], 1), Err(UnwrapError::TooManyWrappers));
        // Too small a buffer: refused before anything is written.
        let mut small = [0u8; 16];
        let mut w = Writer::new(&mut small);
        assert_eq!(
            write_init_connection(&mut w, 214, &INIT),
            Err(Full {
                required: INIT.prefix_len()
            })
        );
        assert_eq!(w.written(), 0);
    }
}
