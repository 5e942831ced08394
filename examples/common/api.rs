//! The small api.tl subset the test DC serves, both ends: the wrappers real clients put around their first call
//! (`invokeWithLayer`, `initConnection`, `invokeWithoutUpdates`, `invokeAfterMsg`), `messages.getDhConfig` and
//! `upload.saveFilePart`. Everything else is answered `rpc_error 400 INPUT_METHOD_INVALID`.
//!
//! Constructor ids and layouts are api.tl's (layer 229 as shipped by Telethon 1.45; `initConnection` as in e.g.
//! MTProtoSharp/MTProto.NET `Schema/TL/_generated/Requests/TLInitConnection.cs`):
//! ```text
//! invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;
//! initConnection#c1cd5ea9 {X:Type} flags:# api_id:int device_model:string system_version:string app_version:string
//!     system_lang_code:string lang_pack:string lang_code:string proxy:flags.0?InputClientProxy
//!     params:flags.1?JSONValue query:!X = X;
//! invokeWithoutUpdates#bf9459b7 {X:Type} query:!X = X;
//! invokeAfterMsg#cb9f372d {X:Type} msg_id:long query:!X = X;
//! inputClientProxy#75588b3f address:string port:int = InputClientProxy;
//! jsonNull#3f6d7b68  jsonBool#c7345e6a value:Bool  jsonNumber#2be0dfa4 value:double  jsonString#b71e767a value:string
//! jsonArray#f7444763 value:Vector<JSONValue>  jsonObject#99c1d49d value:Vector<JSONObjectValue>
//! jsonObjectValue#c0de1bd9 key:string value:JSONValue = JSONObjectValue;
//! messages.getDhConfig#26cf8950 version:int random_length:int = messages.DhConfig;
//! messages.dhConfigNotModified#c0e24635 random:bytes = messages.DhConfig;
//! messages.dhConfig#2c221edd g:int p:bytes version:int random:bytes = messages.DhConfig;
//! upload.saveFilePart#b304a621 file_id:long file_part:int bytes:bytes = Bool;
//! ```
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::tl::{self, BOOL_TRUE, DecodeError, Reader, VECTOR, Writer};

/// `invokeWithLayer`.
pub const INVOKE_WITH_LAYER: u32 = 0xda9b_0d0d;
/// `initConnection`.
pub const INIT_CONNECTION: u32 = 0xc1cd_5ea9;
/// `invokeWithoutUpdates`.
pub const INVOKE_WITHOUT_UPDATES: u32 = 0xbf94_59b7;
/// `invokeAfterMsg`.
pub const INVOKE_AFTER_MSG: u32 = 0xcb9f_372d;
/// `inputClientProxy`.
pub const INPUT_CLIENT_PROXY: u32 = 0x7558_8b3f;
/// `messages.getDhConfig`.
pub const GET_DH_CONFIG: u32 = 0x26cf_8950;
/// `messages.dhConfig`.
pub const DH_CONFIG: u32 = 0x2c22_1edd;
/// `messages.dhConfigNotModified`.
pub const DH_CONFIG_NOT_MODIFIED: u32 = 0xc0e2_4635;
/// `upload.saveFilePart`.
pub const SAVE_FILE_PART: u32 = 0xb304_a621;

const JSON_NULL: u32 = 0x3f6d_7b68;
const JSON_BOOL: u32 = 0xc734_5e6a;
const JSON_NUMBER: u32 = 0x2be0_dfa4;
const JSON_STRING: u32 = 0xb71e_767a;
const JSON_ARRAY: u32 = 0xf744_4763;
const JSON_OBJECT: u32 = 0x99c1_d49d;
const JSON_OBJECT_VALUE: u32 = 0xc0de_1bd9;

/// Wrappers unwrapped around one call, at most.
pub const MAX_WRAPPERS: usize = 8;
/// Nesting of `initConnection.params` JSON accepted, at most (skipped iteratively, never recursively).
pub const MAX_JSON_DEPTH: usize = 16;
/// JSON values in `initConnection.params`, at most.
pub const MAX_JSON_VALUES: usize = 4096;
/// Largest `random_length` of `messages.getDhConfig` served.
pub const MAX_RANDOM_LENGTH: usize = 4096;
/// The `version` of our DH config (the client sends it back to learn whether it changed).
pub const DH_VERSION: i32 = 1;

/// A call after its wrappers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call<'a> {
    /// `messages.getDhConfig`.
    GetDhConfig {
        /// The version the client has.
        version: i32,
        /// Random bytes wanted.
        random_length: i32,
    },
    /// `upload.saveFilePart`.
    SaveFilePart {
        /// The file.
        file_id: i64,
        /// The part number.
        part: i32,
        /// The part's bytes.
        bytes: &'a [u8],
    },
    /// Any other method (its constructor id).
    Other(u32),
}

/// The unwrapped call and the layer named by `invokeWithLayer`, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwrapped<'a> {
    /// The call.
    pub call: Call<'a>,
    /// `invokeWithLayer.layer`.
    pub layer: Option<i32>,
    /// An `initConnection` was unwrapped.
    pub init_connection: bool,
}

/// Why a body could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// Truncated or malformed TL.
    Decode(DecodeError),
    /// More wrappers, JSON nesting or JSON values than the named limits allow.
    TooDeep,
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        ApiError::Decode(e)
    }
}

/// Skips one `JSONValue` without recursion: a stack of the element counts still to skip per open array/object.
fn skip_json(r: &mut Reader<'_>) -> Result<(), ApiError> {
    let mut stack: Vec<(usize, bool)> = Vec::new(); // (remaining, in_object)
    let mut values = 0usize;
    loop {
        // Read one value.
        values += 1;
        if values > MAX_JSON_VALUES {
            return Err(ApiError::TooDeep);
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
                let n = r.count(if c == JSON_OBJECT { 12 } else { 4 })?;
                if stack.len() >= MAX_JSON_DEPTH {
                    return Err(ApiError::TooDeep);
                }
                stack.push((n, c == JSON_OBJECT));
            }
            c => return Err(ApiError::Decode(DecodeError::UnknownConstructor(c))),
        }
        // Close finished containers; open the next element.
        loop {
            let Some(top) = stack.last_mut() else { return Ok(()) };
            if top.0 == 0 {
                stack.pop();
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

/// Strips the wrappers and decodes the call.
pub fn unwrap(body: &[u8]) -> Result<Unwrapped<'_>, ApiError> {
    let mut r = Reader::new(body);
    let mut layer = None;
    let mut init_connection = false;
    for _ in 0..MAX_WRAPPERS {
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
            GET_DH_CONFIG => {
                let version = r.i32()?;
                let random_length = r.i32()?;
                let call = Call::GetDhConfig { version, random_length };
                return Ok(Unwrapped {
                    call,
                    layer,
                    init_connection,
                });
            }
            SAVE_FILE_PART => {
                let file_id = r.i64()?;
                let part = r.i32()?;
                let bytes = r.bytes()?;
                let call = Call::SaveFilePart { file_id, part, bytes };
                return Ok(Unwrapped {
                    call,
                    layer,
                    init_connection,
                });
            }
            other => {
                return Ok(Unwrapped {
                    call: Call::Other(other),
                    layer,
                    init_connection,
                });
            }
        }
    }
    Err(ApiError::TooDeep)
}

/// What the DC answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An `rpc_result` with this serialized object.
    Result(Vec<u8>),
    /// An `rpc_error`.
    Error(i32, &'static str),
}

/// Executes one request body as the test DC does.
pub fn execute<R: CryptoRng + ?Sized>(body: &[u8], rng: &mut R) -> Reply {
    let Ok(u) = unwrap(body) else {
        return Reply::Error(400, "INPUT_REQUEST_INVALID");
    };
    match u.call {
        Call::GetDhConfig { version, random_length } => {
            let Ok(len) = usize::try_from(random_length) else {
                return Reply::Error(400, "RANDOM_LENGTH_INVALID");
            };
            if len > MAX_RANDOM_LENGTH {
                return Reply::Error(400, "RANDOM_LENGTH_INVALID");
            }
            let mut random = vec![0u8; len];
            rng.fill_bytes(&mut random);
            match dh_config(version, &random) {
                Some(b) => Reply::Result(b),
                None => Reply::Error(500, "INTERNAL"),
            }
        }
        Call::SaveFilePart { .. } => Reply::Result(BOOL_TRUE.to_le_bytes().to_vec()),
        Call::Other(_) => Reply::Error(400, "INPUT_METHOD_INVALID"),
    }
}

/// `messages.dhConfig` with Telegram's prime and g = 3, or `messages.dhConfigNotModified` if the client has it.
pub fn dh_config(client_version: i32, random: &[u8]) -> Option<Vec<u8>> {
    let group = DhGroup::telegram(3).ok()?;
    if client_version == DH_VERSION {
        let mut out = vec![0u8; 4 + tl::bytes_len(random.len())];
        let mut w = Writer::new(&mut out);
        w.u32(DH_CONFIG_NOT_MODIFIED).ok()?;
        w.bytes(random).ok()?;
        return Some(out);
    }
    let p = group.prime_bytes();
    let mut out = vec![0u8; 4 + 4 + tl::bytes_len(p.len()) + 4 + tl::bytes_len(random.len())];
    let mut w = Writer::new(&mut out);
    w.u32(DH_CONFIG).ok()?;
    w.i32(i32::try_from(group.g()).ok()?).ok()?;
    w.bytes(&p).ok()?;
    w.i32(DH_VERSION).ok()?;
    w.bytes(random).ok()?;
    Some(out)
}

/// A decoded `messages.DhConfig` (client end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhConfigView<'a> {
    /// g (absent when not modified).
    pub g: Option<i32>,
    /// The prime (absent when not modified).
    pub p: Option<&'a [u8]>,
    /// The random bytes.
    pub random: &'a [u8],
}

/// Decodes a `messages.DhConfig`.
pub fn parse_dh_config(body: &[u8]) -> Result<DhConfigView<'_>, DecodeError> {
    let mut r = Reader::new(body);
    match r.u32()? {
        DH_CONFIG => {
            let g = r.i32()?;
            let p = r.bytes()?;
            r.i32()?;
            let random = r.bytes()?;
            Ok(DhConfigView {
                g: Some(g),
                p: Some(p),
                random,
            })
        }
        DH_CONFIG_NOT_MODIFIED => Ok(DhConfigView {
            g: None,
            p: None,
            random: r.bytes()?,
        }),
        c => Err(DecodeError::UnknownConstructor(c)),
    }
}

/// `messages.getDhConfig` (client end).
pub fn get_dh_config(version: i32, random_length: i32) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&GET_DH_CONFIG.to_le_bytes());
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&random_length.to_le_bytes());
    v
}

/// `upload.saveFilePart` (client end).
pub fn save_file_part(file_id: i64, part: i32, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 16 + tl::bytes_len(bytes.len())];
    let mut w = Writer::new(&mut out);
    let ok = w
        .u32(SAVE_FILE_PART)
        .and(w.i64(file_id))
        .and(w.i32(part))
        .and(w.bytes(bytes));
    if ok.is_err() {
        out.clear();
    }
    out
}

/// `invokeWithLayer(layer, initConnection(…, query))` as a client's first call (client end).
pub fn with_init_connection(layer: i32, query: &[u8]) -> Vec<u8> {
    let strings: [&[u8]; 6] = [b"mtproto-sansio", b"Linux", b"0.1", b"en", b"", b"en"];
    let len = 8 + 12 + strings.iter().map(|s| tl::bytes_len(s.len())).sum::<usize>() + query.len();
    let mut out = vec![0u8; len];
    let mut w = Writer::new(&mut out);
    let mut ok = w.u32(INVOKE_WITH_LAYER).and(w.i32(layer)).and(w.u32(INIT_CONNECTION));
    ok = ok.and(w.u32(0)).and(w.i32(1));
    for s in strings {
        ok = ok.and(w.bytes(s));
    }
    if ok.and(w.raw(query)).is_err() {
        out.clear();
    }
    out
}

/// Whether a result body is `boolTrue`.
pub fn is_bool_true(body: &[u8]) -> bool {
    body == BOOL_TRUE.to_le_bytes()
}
