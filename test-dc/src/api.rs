//! The small api.tl subset the test DC serves, both ends: the wrappers real clients put around their first call
//! (`invokeWithLayer`, `initConnection`, `invokeWithoutUpdates`, `invokeAfterMsg`), `messages.getDhConfig`,
//! `upload.saveFilePart`, and the secret-chat relay (`messages.requestEncryption`, `acceptEncryption`,
//! `discardEncryption`, `sendEncrypted`, `sendEncryptedService`, `sendEncryptedFile` (files uploaded with
//! `saveFilePart`, whose part sizes the DC records), with `updateEncryption` and
//! `updateNewEncryptedMessage` pushed to the other party; `messages.receivedQueue` acknowledged). The sign-in, config and account calls are
//! `crate::auth`'s; everything else is answered `rpc_error 400 INPUT_METHOD_INVALID`.
//!
//! Users: a caller is its signed-in account (`crate::auth`), or, for a key that is not signed in, the auth key: its
//! id is then [`user_id_of`] the auth_key_id (so a client knows its own id without asking). A user exists for the
//! DC once it has made a request ([`Directory`]).
//! `inputUser.access_hash` is not checked; `inputEncryptedChat.access_hash` is.
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
//! messages.receivedQueue#55a5bb66 max_qts:int = Vector<long>;
//! messages.dhConfigNotModified#c0e24635 random:bytes = messages.DhConfig;
//! messages.dhConfig#2c221edd g:int p:bytes version:int random:bytes = messages.DhConfig;
//! upload.saveFilePart#b304a621 file_id:long file_part:int bytes:bytes = Bool;
//! messages.requestEncryption#f64daf43 user_id:InputUser random_id:int g_a:bytes = EncryptedChat;
//! messages.acceptEncryption#3dbc0415 peer:InputEncryptedChat g_b:bytes key_fingerprint:long = EncryptedChat;
//! messages.discardEncryption#f393aea0 flags:# delete_history:flags.0?true chat_id:int = Bool;
//! messages.sendEncrypted#44fa7a15 flags:# silent:flags.0?true peer:InputEncryptedChat random_id:long data:bytes
//!     = messages.SentEncryptedMessage;
//! messages.sendEncryptedService#32d439a4 peer:InputEncryptedChat random_id:long data:bytes
//!     = messages.SentEncryptedMessage;
//! messages.sendEncryptedFile#5559481d flags:# silent:flags.0?true peer:InputEncryptedChat random_id:long
//!     data:bytes file:InputEncryptedFile = messages.SentEncryptedMessage;
//! messages.sentEncryptedMessage#560f8935 date:int = messages.SentEncryptedMessage;
//! messages.sentEncryptedFile#9493ff32 date:int file:EncryptedFile = messages.SentEncryptedMessage;
//! inputEncryptedFileEmpty#1837c364 = InputEncryptedFile;
//! inputEncryptedFileUploaded#64bd0306 id:long parts:int md5_checksum:string key_fingerprint:int
//!     = InputEncryptedFile;
//! inputEncryptedFile#5a17b5e5 id:long access_hash:long = InputEncryptedFile;
//! inputEncryptedFileBigUploaded#2dc173c8 id:long parts:int key_fingerprint:int = InputEncryptedFile;
//! encryptedFile#a8008cd8 id:long access_hash:long size:long dc_id:int key_fingerprint:int = EncryptedFile;
//! inputUser#f21158c6 user_id:long access_hash:long = InputUser;
//! inputEncryptedChat#f141b5e1 chat_id:int access_hash:long = InputEncryptedChat;
//! encryptedChatEmpty#ab7ec0a0 id:int = EncryptedChat;
//! encryptedChatWaiting#66b25953 id:int access_hash:long date:int admin_id:long participant_id:long = EncryptedChat;
//! encryptedChatRequested#48f1d94c flags:# folder_id:flags.0?int id:int access_hash:long date:int admin_id:long
//!     participant_id:long g_a:bytes = EncryptedChat;
//! encryptedChat#61f0d4c7 id:int access_hash:long date:int admin_id:long participant_id:long g_a_or_b:bytes
//!     key_fingerprint:long = EncryptedChat;
//! encryptedChatDiscarded#1e1c7c45 flags:# history_deleted:flags.0?true id:int = EncryptedChat;
//! encryptedMessage#ed18c118 random_id:long chat_id:int date:int bytes:bytes file:EncryptedFile = EncryptedMessage;
//! encryptedMessageService#23734b06 random_id:long chat_id:int date:int bytes:bytes = EncryptedMessage;
//! encryptedFileEmpty#c21f497e = EncryptedFile;
//! updateNewEncryptedMessage#12bcbd9a message:EncryptedMessage qts:int = Update;
//! updateEncryption#b4a2e88d chat:EncryptedChat date:int = Update;
//! updateShort#78d4dec1 update:Update date:int = Updates;
//! updates#74ae4240 updates:Vector<Update> users:Vector<User> chats:Vector<Chat> date:int seq:int = Updates;
//! ```
//! (`tests/hosts.rs` checks each id against the CRC32 of its line.)
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};

use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::tl::{self, BOOL_TRUE, DecodeError, Full, Reader, VECTOR, Writer, invoke};

// The wrappers (`invokeWithLayer`, `initConnection`, ...) are the crate's (`tl::invoke`), both ends.
pub use mtproto_sansio::tl::invoke::{
    INIT_CONNECTION, INPUT_CLIENT_PROXY, INVOKE_AFTER_MSG, INVOKE_WITH_LAYER, INVOKE_WITHOUT_UPDATES, MAX_JSON_DEPTH,
    MAX_JSON_VALUES,
};
/// `messages.getDhConfig`.
pub const GET_DH_CONFIG: u32 = 0x26cf_8950;
/// `messages.dhConfig`.
pub const DH_CONFIG: u32 = 0x2c22_1edd;
/// `messages.dhConfigNotModified`.
pub const DH_CONFIG_NOT_MODIFIED: u32 = 0xc0e2_4635;
/// `messages.receivedQueue` (a client acknowledging qts updates; tg-secret sends it after each message).
pub const RECEIVED_QUEUE: u32 = 0x55a5_bb66;
/// `upload.saveFilePart`.
pub const SAVE_FILE_PART: u32 = 0xb304_a621;
/// `messages.requestEncryption`.
pub const REQUEST_ENCRYPTION: u32 = 0xf64d_af43;
/// `messages.acceptEncryption`.
pub const ACCEPT_ENCRYPTION: u32 = 0x3dbc_0415;
/// `messages.discardEncryption`.
pub const DISCARD_ENCRYPTION: u32 = 0xf393_aea0;
/// `messages.sendEncrypted`.
pub const SEND_ENCRYPTED: u32 = 0x44fa_7a15;
/// `messages.sendEncryptedService`.
pub const SEND_ENCRYPTED_SERVICE: u32 = 0x32d4_39a4;
/// `messages.sendEncryptedFile`.
pub const SEND_ENCRYPTED_FILE: u32 = 0x5559_481d;
/// `messages.sentEncryptedMessage`.
pub const SENT_ENCRYPTED_MESSAGE: u32 = 0x560f_8935;
/// `messages.sentEncryptedFile`.
pub const SENT_ENCRYPTED_FILE: u32 = 0x9493_ff32;
/// `inputEncryptedFileEmpty`.
pub const INPUT_ENCRYPTED_FILE_EMPTY: u32 = 0x1837_c364;
/// `inputEncryptedFileUploaded`.
pub const INPUT_ENCRYPTED_FILE_UPLOADED: u32 = 0x64bd_0306;
/// `inputEncryptedFile`.
pub const INPUT_ENCRYPTED_FILE: u32 = 0x5a17_b5e5;
/// `inputEncryptedFileBigUploaded`.
pub const INPUT_ENCRYPTED_FILE_BIG_UPLOADED: u32 = 0x2dc1_73c8;
/// `encryptedFile`.
pub const ENCRYPTED_FILE: u32 = 0xa800_8cd8;
/// `inputUser`.
pub const INPUT_USER: u32 = 0xf211_58c6;
/// `inputEncryptedChat`.
pub const INPUT_ENCRYPTED_CHAT: u32 = 0xf141_b5e1;
/// `encryptedChatEmpty`.
pub const ENCRYPTED_CHAT_EMPTY: u32 = 0xab7e_c0a0;
/// `encryptedChatWaiting`.
pub const ENCRYPTED_CHAT_WAITING: u32 = 0x66b2_5953;
/// `encryptedChatRequested`.
pub const ENCRYPTED_CHAT_REQUESTED: u32 = 0x48f1_d94c;
/// `encryptedChat`.
pub const ENCRYPTED_CHAT: u32 = 0x61f0_d4c7;
/// `encryptedChatDiscarded`.
pub const ENCRYPTED_CHAT_DISCARDED: u32 = 0x1e1c_7c45;
/// `encryptedMessage`.
pub const ENCRYPTED_MESSAGE: u32 = 0xed18_c118;
/// `encryptedMessageService`.
pub const ENCRYPTED_MESSAGE_SERVICE: u32 = 0x2373_4b06;
/// `encryptedFileEmpty`.
pub const ENCRYPTED_FILE_EMPTY: u32 = 0xc21f_497e;
/// `updateNewEncryptedMessage`.
pub const UPDATE_NEW_ENCRYPTED_MESSAGE: u32 = 0x12bc_bd9a;
/// `updateEncryption`.
pub const UPDATE_ENCRYPTION: u32 = 0xb4a2_e88d;
/// `updateShort`.
pub const UPDATE_SHORT: u32 = 0x78d4_dec1;
/// `updates`.
pub const UPDATES: u32 = 0x74ae_4240;

/// Wrappers unwrapped around one call, at most.
pub const MAX_WRAPPERS: usize = 8;
/// Largest `random_length` of `messages.getDhConfig` served.
pub const MAX_RANDOM_LENGTH: usize = 4096;
/// The `version` of our DH config (the client sends it back to learn whether it changed).
pub const DH_VERSION: i32 = 1;
/// Secret chats the DC keeps, all users together; more `requestEncryption` calls get `500 CHATS_TOO_MUCH`.
pub const MAX_SECRET_CHATS: usize = 4096;
/// Users (auth keys) the directory remembers; later ones cannot be named by `requestEncryption`.
pub const MAX_USERS: usize = 65_536;
/// Uploads in progress (files with saved parts not yet sent), all users together; past it an arbitrary unfinished
/// upload is forgotten.
pub const MAX_UPLOADS: usize = 1024;
/// Parts of one file (Telegram's limit for big files).
pub const MAX_FILE_PARTS: i32 = 4000;
/// Encrypted files the DC keeps (to be sent again by `inputEncryptedFile`); more get `500 FILES_TOO_MUCH`.
pub const MAX_FILES: usize = 4096;
/// Updates kept for a user with no live connection; older ones are dropped first (a real DC would answer
/// `updates.getDifference`; this one does not serve it).
pub const MAX_PENDING_UPDATES: usize = 256;

/// A user id of the test DC: an auth key is a user (see the module docs). Positive and below 2^52, like Telegram's.
pub fn user_id_of(auth_key_id: u64) -> i64 {
    i64::try_from(auth_key_id & ((1 << 52) - 1)).unwrap_or(0) | 1
}

/// An `InputEncryptedFile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFile {
    /// `inputEncryptedFileEmpty`.
    Empty,
    /// `inputEncryptedFileUploaded` / `inputEncryptedFileBigUploaded`: parts 0..`parts` saved by `saveFilePart`.
    Uploaded {
        /// The client's file id of the upload.
        id: i64,
        /// Parts saved.
        parts: i32,
        /// `e2e::file::key_fingerprint` of the file's key and iv.
        key_fingerprint: i32,
    },
    /// `inputEncryptedFile`: a file the DC already has.
    Existing {
        /// The DC's file id.
        id: i64,
        /// Its access hash.
        access_hash: i64,
    },
}

/// `inputEncryptedChat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputChat {
    /// The chat.
    pub chat_id: i32,
    /// Its access hash (from the `EncryptedChat` the DC returned).
    pub access_hash: i64,
}

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
    /// `messages.requestEncryption` (only `inputUser` is accepted as `user_id`).
    RequestEncryption {
        /// The peer.
        user_id: i64,
        /// The client's random id of the request.
        random_id: i32,
        /// g^a.
        g_a: &'a [u8],
    },
    /// `messages.acceptEncryption`.
    AcceptEncryption {
        /// The chat.
        peer: InputChat,
        /// g^b.
        g_b: &'a [u8],
        /// The fingerprint of the key the acceptor computed.
        key_fingerprint: i64,
    },
    /// `messages.discardEncryption`.
    DiscardEncryption {
        /// `delete_history` flag.
        delete_history: bool,
        /// The chat.
        chat_id: i32,
    },
    /// `messages.sendEncrypted`, `messages.sendEncryptedService` or `messages.sendEncryptedFile`.
    SendEncrypted {
        /// `sendEncryptedService`.
        service: bool,
        /// `sendEncryptedFile`: the file.
        file: Option<InputFile>,
        /// The chat.
        peer: InputChat,
        /// The message's random id.
        random_id: i64,
        /// The encrypted message.
        data: &'a [u8],
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

impl From<invoke::UnwrapError> for ApiError {
    fn from(e: invoke::UnwrapError) -> Self {
        match e {
            invoke::UnwrapError::Decode(e) => ApiError::Decode(e),
            invoke::UnwrapError::TooManyWrappers | invoke::UnwrapError::JsonTooLarge => ApiError::TooDeep,
        }
    }
}

fn input_chat(r: &mut Reader<'_>) -> Result<InputChat, DecodeError> {
    r.expect_constructor(INPUT_ENCRYPTED_CHAT)?;
    Ok(InputChat {
        chat_id: r.i32()?,
        access_hash: r.i64()?,
    })
}

fn input_file(r: &mut Reader<'_>) -> Result<InputFile, DecodeError> {
    Ok(match r.u32()? {
        INPUT_ENCRYPTED_FILE_EMPTY => InputFile::Empty,
        c @ (INPUT_ENCRYPTED_FILE_UPLOADED | INPUT_ENCRYPTED_FILE_BIG_UPLOADED) => {
            let id = r.i64()?;
            let parts = r.i32()?;
            if c == INPUT_ENCRYPTED_FILE_UPLOADED {
                r.bytes()?; // md5_checksum: not checked
            }
            InputFile::Uploaded {
                id,
                parts,
                key_fingerprint: r.i32()?,
            }
        }
        INPUT_ENCRYPTED_FILE => InputFile::Existing {
            id: r.i64()?,
            access_hash: r.i64()?,
        },
        c => return Err(DecodeError::UnknownConstructor(c)),
    })
}

/// Strips the wrappers (the crate's reader, `tl::invoke::unwrap`, at most [`MAX_WRAPPERS`]) and decodes the call.
pub fn unwrap(body: &[u8]) -> Result<Unwrapped<'_>, ApiError> {
    let w = invoke::unwrap(body, MAX_WRAPPERS)?;
    let mut r = Reader::new(w.args);
    let call = match w.method {
        GET_DH_CONFIG => Call::GetDhConfig {
            version: r.i32()?,
            random_length: r.i32()?,
        },
        SAVE_FILE_PART => Call::SaveFilePart {
            file_id: r.i64()?,
            part: r.i32()?,
            bytes: r.bytes()?,
        },
        REQUEST_ENCRYPTION => {
            r.expect_constructor(INPUT_USER)?;
            let user_id = r.i64()?;
            r.i64()?; // access_hash: not checked (module docs)
            Call::RequestEncryption {
                user_id,
                random_id: r.i32()?,
                g_a: r.bytes()?,
            }
        }
        ACCEPT_ENCRYPTION => Call::AcceptEncryption {
            peer: input_chat(&mut r)?,
            g_b: r.bytes()?,
            key_fingerprint: r.i64()?,
        },
        DISCARD_ENCRYPTION => {
            let flags = r.u32()?;
            Call::DiscardEncryption {
                delete_history: flags & 1 != 0,
                chat_id: r.i32()?,
            }
        }
        c @ (SEND_ENCRYPTED | SEND_ENCRYPTED_SERVICE | SEND_ENCRYPTED_FILE) => {
            if c != SEND_ENCRYPTED_SERVICE {
                r.u32()?; // flags: `silent` means nothing to this DC
            }
            let peer = input_chat(&mut r)?;
            let random_id = r.i64()?;
            let data = r.bytes()?;
            let file = if c == SEND_ENCRYPTED_FILE {
                Some(input_file(&mut r)?)
            } else {
                None
            };
            Call::SendEncrypted {
                service: c == SEND_ENCRYPTED_SERVICE,
                file,
                peer,
                random_id,
                data,
            }
        }
        other => Call::Other(other),
    };
    Ok(Unwrapped {
        call,
        layer: w.layer,
        init_connection: w.init_connection,
    })
}

/// What the DC answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An `rpc_result` with this serialized object.
    Result(Vec<u8>),
    /// An `rpc_error`.
    Error(i32, &'static str),
}

/// One field of a TL object being serialized.
enum F<'a> {
    U32(u32),
    I32(i32),
    I64(i64),
    Bytes(&'a [u8]),
    Raw(&'a [u8]),
}

/// Serializes `fields` into a buffer of exactly their size.
fn build(fields: &[F<'_>]) -> Vec<u8> {
    let len = fields
        .iter()
        .map(|f| match f {
            F::U32(_) | F::I32(_) => 4,
            F::I64(_) => 8,
            F::Bytes(b) => tl::bytes_len(b.len()),
            F::Raw(b) => b.len(),
        })
        .sum();
    let mut out = vec![0u8; len];
    let mut w = Writer::new(&mut out);
    let r: Result<(), Full> = fields.iter().try_for_each(|f| match f {
        F::U32(v) => w.u32(*v),
        F::I32(v) => w.i32(*v),
        F::I64(v) => w.i64(*v),
        F::Bytes(b) => w.bytes(b),
        F::Raw(b) => w.raw(b),
    });
    // The size was computed from the same fields; a failure would leave a short object, so send none.
    if r.is_err() {
        out.clear();
    }
    out
}

/// Where a secret chat stands on the DC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChatState {
    /// Requested by the admin, not yet accepted.
    Requested,
    /// Accepted: messages are relayed.
    Ready,
    /// Discarded by either side.
    Discarded,
}

/// A secret chat as the DC sees it: two users and an opaque key exchange.
struct ChatRec {
    access_hash: i64,
    date: i32,
    admin: i64,
    participant: i64,
    /// g_a, kept until the participant accepts.
    g_a: Vec<u8>,
    state: ChatState,
}

impl ChatRec {
    fn peer_of(&self, user: i64) -> Option<i64> {
        if user == self.admin {
            Some(self.participant)
        } else if user == self.participant {
            Some(self.admin)
        } else {
            None
        }
    }

    fn waiting(&self, id: i32) -> Vec<u8> {
        build(&[
            F::U32(ENCRYPTED_CHAT_WAITING),
            F::I32(id),
            F::I64(self.access_hash),
            F::I32(self.date),
            F::I64(self.admin),
            F::I64(self.participant),
        ])
    }

    fn requested(&self, id: i32) -> Vec<u8> {
        build(&[
            F::U32(ENCRYPTED_CHAT_REQUESTED),
            F::U32(0),
            F::I32(id),
            F::I64(self.access_hash),
            F::I32(self.date),
            F::I64(self.admin),
            F::I64(self.participant),
            F::Bytes(&self.g_a),
        ])
    }

    fn ready(&self, id: i32, g_a_or_b: &[u8], key_fingerprint: i64) -> Vec<u8> {
        build(&[
            F::U32(ENCRYPTED_CHAT),
            F::I32(id),
            F::I64(self.access_hash),
            F::I32(self.date),
            F::I64(self.admin),
            F::I64(self.participant),
            F::Bytes(g_a_or_b),
            F::I64(key_fingerprint),
        ])
    }
}

/// An encrypted file the DC keeps (its bytes are not kept: the test DC does not serve downloads).
#[derive(Clone, Copy)]
struct FileRec {
    access_hash: i64,
    size: i64,
    key_fingerprint: i32,
}

/// The DC's users, secret chats and encrypted files. I/O-free: [`execute`] returns the updates to push, the host
/// routes them.
pub struct Directory {
    dc_id: i32,
    users: HashSet<i64>,
    chats: HashMap<i32, ChatRec>,
    /// Per-user `qts` (the secondary update sequence secret-chat messages travel in).
    qts: HashMap<i64, i32>,
    /// Part sizes saved by `saveFilePart`, per (user, file id).
    uploads: HashMap<(i64, i64), HashMap<i32, i64>>,
    files: HashMap<i64, FileRec>,
}

impl Default for Directory {
    fn default() -> Self {
        Self::new()
    }
}

impl Directory {
    /// An empty directory of DC 2.
    pub fn new() -> Self {
        Self::for_dc(2)
    }

    /// An empty directory; `dc_id` is the DC its encrypted files are on.
    pub fn for_dc(dc_id: i32) -> Self {
        Directory {
            dc_id,
            users: HashSet::new(),
            chats: HashMap::new(),
            qts: HashMap::new(),
            uploads: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// Records a saved part's size.
    fn save_part(&mut self, user: i64, file_id: i64, part: i32, len: usize) -> Result<(), &'static str> {
        if !(0..MAX_FILE_PARTS).contains(&part) {
            return Err("FILE_PART_INVALID");
        }
        let key = (user, file_id);
        if !self.uploads.contains_key(&key) && self.uploads.len() >= MAX_UPLOADS {
            let victim = self.uploads.keys().next().copied();
            if let Some(v) = victim {
                self.uploads.remove(&v);
            }
        }
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        self.uploads.entry(key).or_default().insert(part, len);
        Ok(())
    }

    /// The file a `sendEncryptedFile` names: an upload of the caller's (completed now) or a kept file.
    fn resolve_file<R: CryptoRng + ?Sized>(
        &mut self,
        user: i64,
        file: InputFile,
        rng: &mut R,
    ) -> Result<(i64, FileRec), (i32, &'static str)> {
        match file {
            InputFile::Empty => Err((400, "MEDIA_EMPTY")),
            InputFile::Existing { id, access_hash } => match self.files.get(&id) {
                Some(f) if f.access_hash == access_hash => Ok((id, *f)),
                _ => Err((400, "FILE_ID_INVALID")),
            },
            InputFile::Uploaded {
                id,
                parts,
                key_fingerprint,
            } => {
                let saved = self.uploads.get(&(user, id)).ok_or((400, "FILE_PARTS_INVALID"))?;
                let n = usize::try_from(parts).map_err(|_| (400, "FILE_PARTS_INVALID"))?;
                if n == 0 || saved.len() != n || !(0..parts).all(|p| saved.contains_key(&p)) {
                    return Err((400, "FILE_PARTS_INVALID"));
                }
                if self.files.len() >= MAX_FILES {
                    return Err((500, "FILES_TOO_MUCH"));
                }
                let size = saved.values().fold(0i64, |a, b| a.saturating_add(*b));
                self.uploads.remove(&(user, id));
                let mut id = 0;
                while id == 0 || self.files.contains_key(&id) {
                    id = rng.next_u64() as i64;
                }
                let f = FileRec {
                    access_hash: rng.next_u64() as i64,
                    size,
                    key_fingerprint,
                };
                self.files.insert(id, f);
                Ok((id, f))
            }
        }
    }

    /// Makes `user` known (it can then be named by `requestEncryption`); false if [`MAX_USERS`] is reached.
    pub fn add_user(&mut self, user: i64) -> bool {
        if self.users.contains(&user) {
            return true;
        }
        self.users.len() < MAX_USERS && self.users.insert(user)
    }

    /// Whether `user` is known.
    pub fn knows(&self, user: i64) -> bool {
        self.users.contains(&user)
    }

    /// Secret chats kept (in any state).
    pub fn chat_count(&self) -> usize {
        self.chats.len()
    }

    fn next_qts(&mut self, user: i64) -> i32 {
        let q = self.qts.entry(user).or_insert(0);
        *q = q.saturating_add(1);
        *q
    }
}

/// An `Updates` object for every live connection of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The user.
    pub to: i64,
    /// The serialized `Updates` (sent as a content-related server message).
    pub updates: Vec<u8>,
}

/// Who makes a call, and the DC's Unix time then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The caller's user id ([`user_id_of`] its auth key).
    pub user: i64,
    /// Unix time (the `date` of what the call creates).
    pub date: i32,
}

/// `updateShort(updateEncryption(chat, date), date)`.
fn push_encryption(to: i64, chat: &[u8], date: i32) -> Push {
    let updates = build(&[
        F::U32(UPDATE_SHORT),
        F::U32(UPDATE_ENCRYPTION),
        F::Raw(chat),
        F::I32(date),
        F::I32(date),
    ]);
    Push { to, updates }
}

/// Executes one request body as the test DC does: the answer, and the updates to push to other users.
pub fn execute<R: CryptoRng + ?Sized>(
    body: &[u8],
    rng: &mut R,
    caller: Caller,
    dir: &mut Directory,
) -> (Reply, Vec<Push>) {
    let Ok(u) = unwrap(body) else {
        return (Reply::Error(400, "INPUT_REQUEST_INVALID"), Vec::new());
    };
    dir.add_user(caller.user);
    let mut pushes = Vec::new();
    let reply = match u.call {
        Call::GetDhConfig { version, random_length } => {
            let Ok(len) = usize::try_from(random_length) else {
                return (Reply::Error(400, "RANDOM_LENGTH_INVALID"), pushes);
            };
            if len > MAX_RANDOM_LENGTH {
                return (Reply::Error(400, "RANDOM_LENGTH_INVALID"), pushes);
            }
            let mut random = vec![0u8; len];
            rng.fill_bytes(&mut random);
            match dh_config(version, &random) {
                Some(b) => Reply::Result(b),
                None => Reply::Error(500, "INTERNAL"),
            }
        }
        Call::SaveFilePart { file_id, part, bytes } => match dir.save_part(caller.user, file_id, part, bytes.len()) {
            Ok(()) => Reply::Result(BOOL_TRUE.to_le_bytes().to_vec()),
            Err(e) => Reply::Error(400, e),
        },
        Call::RequestEncryption { user_id, g_a, .. } => {
            if user_id == caller.user || !dir.knows(user_id) {
                return (Reply::Error(400, "USER_ID_INVALID"), pushes);
            }
            if dir.chats.len() >= MAX_SECRET_CHATS {
                return (Reply::Error(500, "CHATS_TOO_MUCH"), pushes);
            }
            // A fresh positive id: collisions are retried (the table is bounded far below 2^31).
            let mut id = 0;
            while id == 0 || dir.chats.contains_key(&id) {
                id = i32::try_from(rng.next_u32() >> 1).unwrap_or(0);
            }
            let rec = ChatRec {
                access_hash: rng.next_u64() as i64,
                date: caller.date,
                admin: caller.user,
                participant: user_id,
                g_a: g_a.to_vec(),
                state: ChatState::Requested,
            };
            pushes.push(push_encryption(user_id, &rec.requested(id), caller.date));
            let reply = Reply::Result(rec.waiting(id));
            dir.chats.insert(id, rec);
            reply
        }
        Call::AcceptEncryption {
            peer,
            g_b,
            key_fingerprint,
        } => match dir.chats.get_mut(&peer.chat_id) {
            Some(c) if c.access_hash == peer.access_hash && c.participant == caller.user => match c.state {
                ChatState::Requested => {
                    c.state = ChatState::Ready;
                    let g_a = core::mem::take(&mut c.g_a);
                    pushes.push(push_encryption(
                        c.admin,
                        &c.ready(peer.chat_id, g_b, key_fingerprint),
                        caller.date,
                    ));
                    Reply::Result(c.ready(peer.chat_id, &g_a, key_fingerprint))
                }
                ChatState::Ready => Reply::Error(400, "ENCRYPTION_ALREADY_ACCEPTED"),
                ChatState::Discarded => Reply::Error(400, "ENCRYPTION_ALREADY_DECLINED"),
            },
            _ => Reply::Error(400, "CHAT_ID_INVALID"),
        },
        Call::DiscardEncryption {
            delete_history,
            chat_id,
        } => match dir.chats.get_mut(&chat_id) {
            Some(c) => match (c.peer_of(caller.user), c.state) {
                (None, _) => Reply::Error(400, "CHAT_ID_INVALID"),
                (Some(_), ChatState::Discarded) => Reply::Error(400, "ENCRYPTION_ALREADY_DECLINED"),
                (Some(other), _) => {
                    c.state = ChatState::Discarded;
                    c.g_a.clear();
                    let chat = build(&[
                        F::U32(ENCRYPTED_CHAT_DISCARDED),
                        F::U32(u32::from(delete_history)),
                        F::I32(chat_id),
                    ]);
                    pushes.push(push_encryption(other, &chat, caller.date));
                    Reply::Result(BOOL_TRUE.to_le_bytes().to_vec())
                }
            },
            None => Reply::Error(400, "CHAT_ID_INVALID"),
        },
        Call::SendEncrypted {
            service,
            file,
            peer,
            random_id,
            data,
        } => {
            let to = match dir.chats.get(&peer.chat_id) {
                Some(c) if c.access_hash == peer.access_hash => match (c.peer_of(caller.user), c.state) {
                    (Some(other), ChatState::Ready) => Ok(other),
                    (Some(_), ChatState::Discarded) => Err("ENCRYPTION_DECLINED"),
                    _ => Err("CHAT_ID_INVALID"),
                },
                _ => Err("CHAT_ID_INVALID"),
            };
            let file = match (to, file) {
                (Ok(_), Some(f)) => match dir.resolve_file(caller.user, f, rng) {
                    Ok((id, f)) => Some(build(&[
                        F::U32(ENCRYPTED_FILE),
                        F::I64(id),
                        F::I64(f.access_hash),
                        F::I64(f.size),
                        F::I32(dir.dc_id),
                        F::I32(f.key_fingerprint),
                    ])),
                    Err((code, e)) => return (Reply::Error(code, e), pushes),
                },
                _ => None,
            };
            let empty = ENCRYPTED_FILE_EMPTY.to_le_bytes();
            let file_tl: &[u8] = file.as_deref().unwrap_or(&empty);
            match to {
                Ok(to) => {
                    let qts = dir.next_qts(to);
                    let head = if service {
                        ENCRYPTED_MESSAGE_SERVICE
                    } else {
                        ENCRYPTED_MESSAGE
                    };
                    let mut fields = vec![
                        F::U32(UPDATES),
                        F::U32(VECTOR),
                        F::I32(1),
                        F::U32(UPDATE_NEW_ENCRYPTED_MESSAGE),
                        F::U32(head),
                        F::I64(random_id),
                        F::I32(peer.chat_id),
                        F::I32(caller.date),
                        F::Bytes(data),
                    ];
                    if !service {
                        fields.push(F::Raw(file_tl));
                    }
                    fields.extend([
                        F::I32(qts),
                        F::U32(VECTOR),
                        F::I32(0), // users
                        F::U32(VECTOR),
                        F::I32(0), // chats
                        F::I32(caller.date),
                        F::I32(0), // seq: qts-sequenced updates carry none
                    ]);
                    pushes.push(Push {
                        to,
                        updates: build(&fields),
                    });
                    Reply::Result(match &file {
                        Some(f) => build(&[F::U32(SENT_ENCRYPTED_FILE), F::I32(caller.date), F::Raw(f)]),
                        None => build(&[F::U32(SENT_ENCRYPTED_MESSAGE), F::I32(caller.date)]),
                    })
                }
                Err(e) => Reply::Error(400, e),
            }
        }
        // Nothing waits for an acknowledgement here (updates go to live connections or a bounded queue): an empty
        // `Vector<long>` of encrypted messages to forget.
        Call::Other(RECEIVED_QUEUE) => Reply::Result(build(&[F::U32(VECTOR), F::I32(0)])),
        Call::Other(_) => Reply::Error(400, "INPUT_METHOD_INVALID"),
    };
    (reply, pushes)
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
    /// The config's version (absent when not modified: the client's own then).
    pub version: Option<i32>,
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
            let version = r.i32()?;
            let random = r.bytes()?;
            Ok(DhConfigView {
                version: Some(version),
                g: Some(g),
                p: Some(p),
                random,
            })
        }
        DH_CONFIG_NOT_MODIFIED => Ok(DhConfigView {
            version: None,
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

/// What this client names itself in `initConnection`.
pub const INIT: invoke::InitConnection<'static> = invoke::InitConnection {
    api_id: 1,
    device_model: b"mtproto-sansio",
    system_version: b"Linux",
    app_version: b"0.1",
    system_lang_code: b"en",
    lang_pack: b"",
    lang_code: b"en",
};

/// `invokeWithLayer(layer, initConnection(…, query))` as a client's first call (client end; the crate's writer,
/// `tl::invoke::write_init_connection`).
pub fn with_init_connection(layer: i32, query: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; INIT.prefix_len() + query.len()];
    let mut w = Writer::new(&mut out);
    if invoke::write_init_connection(&mut w, layer, &INIT)
        .and(w.raw(query))
        .is_err()
    {
        out.clear();
    }
    out
}

/// Whether a result body is `boolTrue`.
pub fn is_bool_true(body: &[u8]) -> bool {
    body == BOOL_TRUE.to_le_bytes()
}

/// `messages.requestEncryption(inputUser(user_id, 0), random_id, g_a)` (client end).
pub fn request_encryption(user_id: i64, random_id: i32, g_a: &[u8]) -> Vec<u8> {
    build(&[
        F::U32(REQUEST_ENCRYPTION),
        F::U32(INPUT_USER),
        F::I64(user_id),
        F::I64(0),
        F::I32(random_id),
        F::Bytes(g_a),
    ])
}

/// `messages.acceptEncryption` (client end).
pub fn accept_encryption(peer: InputChat, g_b: &[u8], key_fingerprint: i64) -> Vec<u8> {
    build(&[
        F::U32(ACCEPT_ENCRYPTION),
        F::U32(INPUT_ENCRYPTED_CHAT),
        F::I32(peer.chat_id),
        F::I64(peer.access_hash),
        F::Bytes(g_b),
        F::I64(key_fingerprint),
    ])
}

/// `messages.discardEncryption` (client end).
pub fn discard_encryption(chat_id: i32, delete_history: bool) -> Vec<u8> {
    build(&[
        F::U32(DISCARD_ENCRYPTION),
        F::U32(u32::from(delete_history)),
        F::I32(chat_id),
    ])
}

/// `messages.sendEncrypted` (flags 0) or, for a service message, `messages.sendEncryptedService` (client end).
pub fn send_encrypted(peer: InputChat, random_id: i64, data: &[u8], service: bool) -> Vec<u8> {
    let chat = [
        F::U32(INPUT_ENCRYPTED_CHAT),
        F::I32(peer.chat_id),
        F::I64(peer.access_hash),
        F::I64(random_id),
        F::Bytes(data),
    ];
    let mut fields = if service {
        vec![F::U32(SEND_ENCRYPTED_SERVICE)]
    } else {
        vec![F::U32(SEND_ENCRYPTED), F::U32(0)]
    };
    fields.extend(chat);
    build(&fields)
}

/// A decoded `EncryptedChat` (client end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatView<'a> {
    /// `encryptedChatEmpty`.
    Empty {
        /// The chat.
        id: i32,
    },
    /// `encryptedChatWaiting`: the request's answer to its admin.
    Waiting {
        /// The chat.
        peer: InputChat,
        /// Who requested it.
        admin_id: i64,
        /// Who is asked.
        participant_id: i64,
    },
    /// `encryptedChatRequested`: pushed to the participant.
    Requested {
        /// The chat.
        peer: InputChat,
        /// Who requested it.
        admin_id: i64,
        /// Who is asked.
        participant_id: i64,
        /// The admin's g^a.
        g_a: &'a [u8],
    },
    /// `encryptedChat`: the accepted chat.
    Ready {
        /// The chat.
        peer: InputChat,
        /// Who requested it.
        admin_id: i64,
        /// Who accepted it.
        participant_id: i64,
        /// The other side's public value (g^b for the admin, g^a for the participant).
        g_a_or_b: &'a [u8],
        /// The key fingerprint the participant computed.
        key_fingerprint: i64,
    },
    /// `encryptedChatDiscarded`.
    Discarded {
        /// The chat.
        id: i32,
        /// `history_deleted` flag.
        history_deleted: bool,
    },
}

impl ChatView<'_> {
    /// The chat id.
    pub fn id(&self) -> i32 {
        match self {
            ChatView::Empty { id } | ChatView::Discarded { id, .. } => *id,
            ChatView::Waiting { peer, .. } | ChatView::Requested { peer, .. } | ChatView::Ready { peer, .. } => {
                peer.chat_id
            }
        }
    }
}

/// Reads one boxed `EncryptedChat`.
pub fn read_encrypted_chat<'a>(r: &mut Reader<'a>) -> Result<ChatView<'a>, DecodeError> {
    let head = |r: &mut Reader<'a>| -> Result<(InputChat, i64, i64), DecodeError> {
        let chat_id = r.i32()?;
        let access_hash = r.i64()?;
        r.i32()?; // date
        Ok((InputChat { chat_id, access_hash }, r.i64()?, r.i64()?))
    };
    Ok(match r.u32()? {
        ENCRYPTED_CHAT_EMPTY => ChatView::Empty { id: r.i32()? },
        ENCRYPTED_CHAT_WAITING => {
            let (peer, admin_id, participant_id) = head(r)?;
            ChatView::Waiting {
                peer,
                admin_id,
                participant_id,
            }
        }
        ENCRYPTED_CHAT_REQUESTED => {
            if r.u32()? & 1 != 0 {
                r.i32()?; // folder_id
            }
            let (peer, admin_id, participant_id) = head(r)?;
            ChatView::Requested {
                peer,
                admin_id,
                participant_id,
                g_a: r.bytes()?,
            }
        }
        ENCRYPTED_CHAT => {
            let (peer, admin_id, participant_id) = head(r)?;
            ChatView::Ready {
                peer,
                admin_id,
                participant_id,
                g_a_or_b: r.bytes()?,
                key_fingerprint: r.i64()?,
            }
        }
        ENCRYPTED_CHAT_DISCARDED => {
            let flags = r.u32()?;
            ChatView::Discarded {
                id: r.i32()?,
                history_deleted: flags & 1 != 0,
            }
        }
        c => return Err(DecodeError::UnknownConstructor(c)),
    })
}

/// Decodes an `EncryptedChat` result.
pub fn parse_encrypted_chat(body: &[u8]) -> Result<ChatView<'_>, DecodeError> {
    let mut r = Reader::new(body);
    let c = read_encrypted_chat(&mut r)?;
    if !r.rest().is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok(c)
}

/// A decoded `encryptedFile` (client end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileView {
    /// The DC's file id.
    pub id: i64,
    /// Its access hash.
    pub access_hash: i64,
    /// Its size in bytes.
    pub size: i64,
    /// The DC it is on.
    pub dc_id: i32,
    /// The sender's `key_fingerprint` of the file key.
    pub key_fingerprint: i32,
}

/// Reads a boxed `EncryptedFile` (`None`: `encryptedFileEmpty`).
fn read_encrypted_file(r: &mut Reader<'_>) -> Result<Option<FileView>, DecodeError> {
    match r.u32()? {
        ENCRYPTED_FILE_EMPTY => Ok(None),
        ENCRYPTED_FILE => Ok(Some(FileView {
            id: r.i64()?,
            access_hash: r.i64()?,
            size: r.i64()?,
            dc_id: r.i32()?,
            key_fingerprint: r.i32()?,
        })),
        c => Err(DecodeError::UnknownConstructor(c)),
    }
}

/// Decodes a `messages.SentEncryptedMessage` result: its date and, for `sentEncryptedFile`, the file.
pub fn parse_sent_encrypted(body: &[u8]) -> Result<(i32, Option<FileView>), DecodeError> {
    let mut r = Reader::new(body);
    let out = match r.u32()? {
        SENT_ENCRYPTED_MESSAGE => (r.i32()?, None),
        SENT_ENCRYPTED_FILE => {
            let date = r.i32()?;
            (date, read_encrypted_file(&mut r)?)
        }
        c => return Err(DecodeError::UnknownConstructor(c)),
    };
    if !r.rest().is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok(out)
}

/// `messages.sendEncryptedFile` (flags 0) with `inputEncryptedFileUploaded` (or `…BigUploaded` when `big`) of
/// `parts` saved parts (client end).
pub fn send_encrypted_file(peer: InputChat, random_id: i64, data: &[u8], file: InputFile, big: bool) -> Vec<u8> {
    let mut fields = vec![
        F::U32(SEND_ENCRYPTED_FILE),
        F::U32(0),
        F::U32(INPUT_ENCRYPTED_CHAT),
        F::I32(peer.chat_id),
        F::I64(peer.access_hash),
        F::I64(random_id),
        F::Bytes(data),
    ];
    match file {
        InputFile::Empty => fields.push(F::U32(INPUT_ENCRYPTED_FILE_EMPTY)),
        InputFile::Existing { id, access_hash } => {
            fields.extend([F::U32(INPUT_ENCRYPTED_FILE), F::I64(id), F::I64(access_hash)]);
        }
        InputFile::Uploaded {
            id,
            parts,
            key_fingerprint,
        } if big => fields.extend([
            F::U32(INPUT_ENCRYPTED_FILE_BIG_UPLOADED),
            F::I64(id),
            F::I32(parts),
            F::I32(key_fingerprint),
        ]),
        InputFile::Uploaded {
            id,
            parts,
            key_fingerprint,
        } => fields.extend([
            F::U32(INPUT_ENCRYPTED_FILE_UPLOADED),
            F::I64(id),
            F::I32(parts),
            F::Bytes(b""),
            F::I32(key_fingerprint),
        ]),
    }
    build(&fields)
}

/// A decoded secret-chat `Update` (client end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateView<'a> {
    /// `updateEncryption`.
    Encryption(ChatView<'a>),
    /// `updateNewEncryptedMessage`.
    NewEncrypted {
        /// The chat.
        chat_id: i32,
        /// The message's random id.
        random_id: i64,
        /// Its `bytes`: what the peer passed to `sendEncrypted*`.
        bytes: &'a [u8],
        /// An `encryptedMessageService`.
        service: bool,
        /// The attached file (`encryptedMessage` with an `encryptedFile`).
        file: Option<FileView>,
        /// The recipient's qts after it.
        qts: i32,
    },
}

fn read_update<'a>(r: &mut Reader<'a>) -> Result<UpdateView<'a>, DecodeError> {
    match r.u32()? {
        UPDATE_ENCRYPTION => {
            let chat = read_encrypted_chat(r)?;
            r.i32()?; // date
            Ok(UpdateView::Encryption(chat))
        }
        UPDATE_NEW_ENCRYPTED_MESSAGE => {
            let service = match r.u32()? {
                ENCRYPTED_MESSAGE => false,
                ENCRYPTED_MESSAGE_SERVICE => true,
                c => return Err(DecodeError::UnknownConstructor(c)),
            };
            let random_id = r.i64()?;
            let chat_id = r.i32()?;
            r.i32()?; // date
            let bytes = r.bytes()?;
            let file = if service { None } else { read_encrypted_file(r)? };
            Ok(UpdateView::NewEncrypted {
                chat_id,
                random_id,
                bytes,
                service,
                file,
                qts: r.i32()?,
            })
        }
        c => Err(DecodeError::UnknownConstructor(c)),
    }
}

/// Decodes the secret-chat updates of an `updates` or `updateShort` (others, and `updates` naming users or chats,
/// which this DC never sends, are refused).
pub fn parse_updates(body: &[u8]) -> Result<Vec<UpdateView<'_>>, DecodeError> {
    let mut r = Reader::new(body);
    let out = match r.u32()? {
        UPDATE_SHORT => {
            let u = read_update(&mut r)?;
            r.i32()?; // date
            vec![u]
        }
        UPDATES => {
            r.expect_constructor(VECTOR)?;
            let n = r.count(8)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_update(&mut r)?);
            }
            for _ in 0..2 {
                r.expect_constructor(VECTOR)?;
                if r.u32()? != 0 {
                    return Err(DecodeError::CountTooLarge);
                }
            }
            r.i32()?; // date
            r.i32()?; // seq
            v
        }
        c => return Err(DecodeError::UnknownConstructor(c)),
    };
    if !r.rest().is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok(out)
}
