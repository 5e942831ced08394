//! The small api.tl subset the test DC serves, both ends: the wrappers real clients put around their first call
//! (`invokeWithLayer`, `initConnection`, `invokeWithoutUpdates`, `invokeAfterMsg`), `messages.getDhConfig`,
//! `upload.saveFilePart`, and the secret-chat relay (`messages.requestEncryption`, `acceptEncryption`,
//! `discardEncryption`, `sendEncrypted`, `sendEncryptedService`, `sendEncryptedFile` (files uploaded with
//! `saveFilePart`, whose part sizes the DC records), with `updateEncryption` and
//! `updateNewEncryptedMessage` pushed to the other party, numbered in its qts by a [`QtsLog`] (test_dc's update
//! stream keeps them for `updates.getDifference`); `messages.receivedQueue` acknowledged). The sign-in, config and
//! account calls are `crate::auth`'s; everything else is answered `rpc_error 400 INPUT_METHOD_INVALID`.
//!
//! Users: a caller is its signed-in account (`crate::auth`), or, for a key that is not signed in, the auth key: its
//! id is then [`user_id_of`] the auth_key_id (so a client knows its own id without asking). A user exists for the
//! DC once it has made a request ([`Directory`]).
//! `inputUser.access_hash` is not checked; `inputEncryptedChat.access_hash` is.
//!
//! Calls and answers are the generated layer-228 types (`mtproto_sansio::tl::api`), both ends: a call (after the
//! wrappers, which the crate's bounded reader `tl::invoke::unwrap` strips) is validated against the schema as its
//! function and read through its generated view; answers and pushes are generated structs written with exact sizes.
//! The ids below are the generated ones (`tests/hosts.rs` checks each against the CRC32 of its layer-229 line).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};

use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::tl::api::{Bare, Boxed, Obj, OfType, Seq, enums, functions, types};
use mtproto_sansio::tl::layout::{self, Root};
use mtproto_sansio::tl::tables::api::API;
use mtproto_sansio::tl::typed::Cursor;
use mtproto_sansio::tl::{self, DecodeError, TlWrite, VECTOR, Writer, invoke};

// The wrappers (`invokeWithLayer`, `initConnection`, ...) are the crate's (`tl::invoke`), both ends.
pub use mtproto_sansio::tl::invoke::{
    INIT_CONNECTION, INPUT_CLIENT_PROXY, INVOKE_AFTER_MSG, INVOKE_WITH_LAYER, INVOKE_WITHOUT_UPDATES, MAX_JSON_DEPTH,
    MAX_JSON_VALUES,
};
/// `messages.getDhConfig`.
pub const GET_DH_CONFIG: u32 = functions::MessagesGetDhConfig::ID;
/// `messages.dhConfig`.
pub const DH_CONFIG: u32 = types::MessagesDhConfig::ID;
/// `messages.dhConfigNotModified`.
pub const DH_CONFIG_NOT_MODIFIED: u32 = types::MessagesDhConfigNotModified::ID;
/// `messages.receivedQueue` (a client acknowledging qts updates; tg-secret sends it after each message).
pub const RECEIVED_QUEUE: u32 = functions::MessagesReceivedQueue::ID;
/// `upload.saveFilePart`.
pub const SAVE_FILE_PART: u32 = functions::UploadSaveFilePart::ID;
/// `messages.requestEncryption`.
pub const REQUEST_ENCRYPTION: u32 = functions::MessagesRequestEncryption::ID;
/// `messages.acceptEncryption`.
pub const ACCEPT_ENCRYPTION: u32 = functions::MessagesAcceptEncryption::ID;
/// `messages.discardEncryption`.
pub const DISCARD_ENCRYPTION: u32 = functions::MessagesDiscardEncryption::ID;
/// `messages.sendEncrypted`.
pub const SEND_ENCRYPTED: u32 = functions::MessagesSendEncrypted::ID;
/// `messages.sendEncryptedService`.
pub const SEND_ENCRYPTED_SERVICE: u32 = functions::MessagesSendEncryptedService::ID;
/// `messages.sendEncryptedFile`.
pub const SEND_ENCRYPTED_FILE: u32 = functions::MessagesSendEncryptedFile::ID;
/// `messages.sentEncryptedMessage`.
pub const SENT_ENCRYPTED_MESSAGE: u32 = types::MessagesSentEncryptedMessage::ID;
/// `messages.sentEncryptedFile`.
pub const SENT_ENCRYPTED_FILE: u32 = types::MessagesSentEncryptedFile::ID;
/// `inputEncryptedFileEmpty`.
pub const INPUT_ENCRYPTED_FILE_EMPTY: u32 = types::InputEncryptedFileEmpty::ID;
/// `inputEncryptedFileUploaded`.
pub const INPUT_ENCRYPTED_FILE_UPLOADED: u32 = types::InputEncryptedFileUploaded::ID;
/// `inputEncryptedFile`.
pub const INPUT_ENCRYPTED_FILE: u32 = types::InputEncryptedFile::ID;
/// `inputEncryptedFileBigUploaded`.
pub const INPUT_ENCRYPTED_FILE_BIG_UPLOADED: u32 = types::InputEncryptedFileBigUploaded::ID;
/// `encryptedFile`.
pub const ENCRYPTED_FILE: u32 = types::EncryptedFile::ID;
/// `inputUser`.
pub const INPUT_USER: u32 = types::InputUser::ID;
/// `inputEncryptedChat`.
pub const INPUT_ENCRYPTED_CHAT: u32 = types::InputEncryptedChat::ID;
/// `encryptedChatEmpty`.
pub const ENCRYPTED_CHAT_EMPTY: u32 = types::EncryptedChatEmpty::ID;
/// `encryptedChatWaiting`.
pub const ENCRYPTED_CHAT_WAITING: u32 = types::EncryptedChatWaiting::ID;
/// `encryptedChatRequested`.
pub const ENCRYPTED_CHAT_REQUESTED: u32 = types::EncryptedChatRequested::ID;
/// `encryptedChat`.
pub const ENCRYPTED_CHAT: u32 = types::EncryptedChat::ID;
/// `encryptedChatDiscarded`.
pub const ENCRYPTED_CHAT_DISCARDED: u32 = types::EncryptedChatDiscarded::ID;
/// `encryptedMessage`.
pub const ENCRYPTED_MESSAGE: u32 = types::EncryptedMessage::ID;
/// `encryptedMessageService`.
pub const ENCRYPTED_MESSAGE_SERVICE: u32 = types::EncryptedMessageService::ID;
/// `encryptedFileEmpty`.
pub const ENCRYPTED_FILE_EMPTY: u32 = types::EncryptedFileEmpty::ID;
/// `updateNewEncryptedMessage`.
pub const UPDATE_NEW_ENCRYPTED_MESSAGE: u32 = types::UpdateNewEncryptedMessage::ID;
/// `updateEncryption`.
pub const UPDATE_ENCRYPTION: u32 = types::UpdateEncryption::ID;
/// `updateShort`.
pub const UPDATE_SHORT: u32 = types::UpdateShort::ID;
/// `updates`.
pub const UPDATES: u32 = types::Updates::ID;

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
/// Updates kept for a user with no live connection (those not in `updates.getDifference`: `updateEncryption`, and
/// everything for a user that is an auth key). Nothing is dropped: a relay call whose push would not fit is refused
/// with [`QUEUE_FULL`] (the sender backs off and sends again once the recipient took its queue).
pub const MAX_PENDING_UPDATES: usize = 256;
/// The error a secret-chat relay call gets when the update it would push does not fit the recipient's queue
/// ([`QtsLog::room`]): `420 FLOOD_WAIT_5`, which every client takes as "wait, then send again". Nothing of the
/// call is done.
pub const QUEUE_FULL: &str = "FLOOD_WAIT_5";

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
    /// `messages.receivedQueue`.
    ReceivedQueue {
        /// The highest qts the client took.
        max_qts: i32,
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
    /// Truncated or malformed TL around the call (the wrappers).
    Decode(DecodeError),
    /// The call is not a value of its function in the schema (truncated, trailing bytes, a bad nested object).
    Schema(layout::Error),
    /// A valid call with an argument this DC does not serve (an `InputUser` other than `inputUser`): its id.
    Unsupported(u32),
    /// More wrappers, JSON nesting or JSON values than the named limits allow.
    TooDeep,
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        ApiError::Decode(e)
    }
}

impl From<layout::Error> for ApiError {
    fn from(e: layout::Error) -> Self {
        ApiError::Schema(e)
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

/// Validates `call` (the method's id first) as exactly one call of the schema and reads its arguments as `F` (the
/// caller matched the id to `F`).
fn args<'a, F: Bare<'a>>(call: &'a [u8]) -> Result<F, ApiError> {
    API.validate_exact(call, Root::Function)?;
    Ok(F::read_bare(&mut Cursor::new(call.get(4..).unwrap_or(&[]), &API)))
}

/// A nested object of a validated call (its decode cannot fail; were it to, the call is refused).
fn nested<'a, T: Boxed<'a>>(o: Obj<'a, T>) -> Result<T, ApiError> {
    o.get().ok_or(ApiError::Schema(layout::Error::Truncated))
}

fn input_chat(o: Obj<'_, enums::InputEncryptedChat>) -> Result<InputChat, ApiError> {
    let enums::InputEncryptedChat::InputEncryptedChat(c) = nested(o)?;
    Ok(InputChat {
        chat_id: c.chat_id,
        access_hash: c.access_hash,
    })
}

fn input_file(o: Obj<'_, enums::InputEncryptedFile<'_>>) -> Result<InputFile, ApiError> {
    use enums::InputEncryptedFile as E;
    Ok(match nested(o)? {
        E::InputEncryptedFileEmpty(_) => InputFile::Empty,
        // md5_checksum: not checked
        E::InputEncryptedFileUploaded(f) => InputFile::Uploaded {
            id: f.id,
            parts: f.parts,
            key_fingerprint: f.key_fingerprint,
        },
        E::InputEncryptedFileBigUploaded(f) => InputFile::Uploaded {
            id: f.id,
            parts: f.parts,
            key_fingerprint: f.key_fingerprint,
        },
        E::InputEncryptedFile(f) => InputFile::Existing {
            id: f.id,
            access_hash: f.access_hash,
        },
    })
}

/// Strips the wrappers (the crate's reader, `tl::invoke::unwrap`, at most [`MAX_WRAPPERS`]) and decodes the call
/// as its generated function type (validated against the schema first: a call cut short, with bytes after it or
/// with a bad nested object is refused).
pub fn unwrap(body: &[u8]) -> Result<Unwrapped<'_>, ApiError> {
    let w = invoke::unwrap(body, MAX_WRAPPERS)?;
    // The call, its id first: `args` is the tail of `body` after that id.
    let call = body
        .get(body.len().saturating_sub(w.args.len().saturating_add(4))..)
        .unwrap_or(&[]);
    let call = match w.method {
        GET_DH_CONFIG => {
            let a: functions::MessagesGetDhConfig = args(call)?;
            Call::GetDhConfig {
                version: a.version,
                random_length: a.random_length,
            }
        }
        SAVE_FILE_PART => {
            let a: functions::UploadSaveFilePart<'_> = args(call)?;
            Call::SaveFilePart {
                file_id: a.file_id,
                part: a.file_part,
                bytes: a.bytes,
            }
        }
        REQUEST_ENCRYPTION => {
            let a: functions::MessagesRequestEncryption<'_> = args(call)?;
            // access_hash: not checked (module docs)
            let user_id = match nested(a.user_id)? {
                enums::InputUser::InputUser(u) => u.user_id,
                _ => return Err(ApiError::Unsupported(a.user_id.constructor().unwrap_or(0))),
            };
            Call::RequestEncryption {
                user_id,
                random_id: a.random_id,
                g_a: a.g_a,
            }
        }
        ACCEPT_ENCRYPTION => {
            let a: functions::MessagesAcceptEncryption<'_> = args(call)?;
            Call::AcceptEncryption {
                peer: input_chat(a.peer)?,
                g_b: a.g_b,
                key_fingerprint: a.key_fingerprint,
            }
        }
        DISCARD_ENCRYPTION => {
            let a: functions::MessagesDiscardEncryption = args(call)?;
            Call::DiscardEncryption {
                delete_history: a.delete_history,
                chat_id: a.chat_id,
            }
        }
        // `silent` means nothing to this DC.
        SEND_ENCRYPTED => {
            let a: functions::MessagesSendEncrypted<'_> = args(call)?;
            Call::SendEncrypted {
                service: false,
                file: None,
                peer: input_chat(a.peer)?,
                random_id: a.random_id,
                data: a.data,
            }
        }
        SEND_ENCRYPTED_SERVICE => {
            let a: functions::MessagesSendEncryptedService<'_> = args(call)?;
            Call::SendEncrypted {
                service: true,
                file: None,
                peer: input_chat(a.peer)?,
                random_id: a.random_id,
                data: a.data,
            }
        }
        SEND_ENCRYPTED_FILE => {
            let a: functions::MessagesSendEncryptedFile<'_> = args(call)?;
            Call::SendEncrypted {
                service: false,
                file: Some(input_file(a.file)?),
                peer: input_chat(a.peer)?,
                random_id: a.random_id,
                data: a.data,
            }
        }
        RECEIVED_QUEUE => {
            let a: functions::MessagesReceivedQueue = args(call)?;
            Call::ReceivedQueue { max_qts: a.max_qts }
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

/// Serializes a generated value into a buffer of exactly its size (empty should the writer fail, which a buffer of
/// `tl_len` bytes rules out: a short object is never sent).
pub fn encode<T: TlWrite + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    if tl::encode(v, &mut out).is_err() {
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

    fn waiting(&self, id: i32) -> types::EncryptedChatWaiting {
        types::EncryptedChatWaiting {
            id,
            access_hash: self.access_hash,
            date: self.date,
            admin_id: self.admin,
            participant_id: self.participant,
        }
    }

    fn requested(&self, id: i32) -> types::EncryptedChatRequested<'_> {
        types::EncryptedChatRequested {
            folder_id: None,
            id,
            access_hash: self.access_hash,
            date: self.date,
            admin_id: self.admin,
            participant_id: self.participant,
            g_a: &self.g_a,
        }
    }

    fn ready<'a>(&self, id: i32, g_a_or_b: &'a [u8], key_fingerprint: i64) -> types::EncryptedChat<'a> {
        types::EncryptedChat {
            id,
            access_hash: self.access_hash,
            date: self.date,
            admin_id: self.admin,
            participant_id: self.participant,
            g_a_or_b,
            key_fingerprint,
        }
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
}

/// Numbers the qts updates the relay makes (secret-chat messages) in their recipient's secondary sequence.
/// test_dc's cluster keeps them in its update stream ([`crate::updates::UpdateStore`]), so that
/// `updates.getDifference` carries them; [`execute`] alone numbers them per [`Directory`] and keeps nothing.
pub trait QtsLog {
    /// Records `message` (an encoded `EncryptedMessage`) for user `to` at `date`: its qts, or `None` when it
    /// cannot be kept (the sender is answered `500`).
    fn encrypted(&mut self, to: i64, message: &[u8], date: i32) -> Option<i32>;

    /// `messages.receivedQueue(max_qts)` from `user`: forgets its qts events up to `max_qts`; the `random_id`s of
    /// the secret-chat messages forgotten, or the error (a `max_qts` the user never reached: `MAX_QTS_INVALID`).
    fn acknowledge(&mut self, user: i64, max_qts: i32) -> Result<Vec<i64>, &'static str>;

    /// Whether an update for `to` can be kept until it is delivered: `sequenced` (in `to`'s qts) or not
    /// (`updateEncryption`). `false` refuses the relay call that would make it ([`QUEUE_FULL`]), before anything
    /// of it is done. [`execute`]'s own log keeps nothing and says `true`; test_dc's hub answers from its queues.
    fn room(&self, to: i64, sequenced: bool) -> bool;
}

/// A qts counter per user, nothing kept: [`execute`]'s.
struct Counter<'a>(&'a mut HashMap<i64, i32>);

impl QtsLog for Counter<'_> {
    fn encrypted(&mut self, to: i64, _message: &[u8], _date: i32) -> Option<i32> {
        let q = self.0.entry(to).or_insert(0);
        *q = q.checked_add(1)?;
        Some(*q)
    }

    fn acknowledge(&mut self, user: i64, max_qts: i32) -> Result<Vec<i64>, &'static str> {
        if max_qts < 0 || max_qts > self.0.get(&user).copied().unwrap_or(0) {
            return Err("MAX_QTS_INVALID");
        }
        Ok(Vec::new())
    }

    fn room(&self, _to: i64, _sequenced: bool) -> bool {
        true
    }
}

/// An `Updates` object for every live connection of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The user.
    pub to: i64,
    /// The serialized `Updates` (sent as a content-related server message).
    pub updates: Vec<u8>,
    /// In the user's qts sequence (`updateNewEncryptedMessage`): a signed-in account fetches it with
    /// `updates.getDifference`, so a host need not keep it for one without a live connection.
    pub sequenced: bool,
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
fn push_encryption<'c, C>(to: i64, chat: &C, date: i32) -> Push
where
    C: TlWrite + OfType<enums::EncryptedChat<'c>>,
{
    let update = types::UpdateEncryption {
        chat: Obj::new(chat),
        date,
    };
    let updates = encode(&types::UpdateShort {
        update: Obj::new(&update),
        date,
    });
    Push {
        to,
        updates,
        sequenced: false,
    }
}

/// Executes one request body as the test DC does: the answer, and the updates to push to other users. Secret-chat
/// messages are numbered per recipient by the directory's own counter; see [`execute_with`].
pub fn execute<R: CryptoRng + ?Sized>(
    body: &[u8],
    rng: &mut R,
    caller: Caller,
    dir: &mut Directory,
) -> (Reply, Vec<Push>) {
    let mut qts = core::mem::take(&mut dir.qts);
    let r = execute_with(body, rng, caller, dir, &mut Counter(&mut qts));
    dir.qts = qts;
    r
}

/// [`execute`] with the relayed secret-chat messages numbered and kept by `log` (test_dc's update stream).
pub fn execute_with<R: CryptoRng + ?Sized>(
    body: &[u8],
    rng: &mut R,
    caller: Caller,
    dir: &mut Directory,
    log: &mut dyn QtsLog,
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
            Ok(()) => Reply::Result(encode(&types::BoolTrue {})),
            Err(e) => Reply::Error(400, e),
        },
        Call::RequestEncryption { user_id, g_a, .. } => {
            if user_id == caller.user || !dir.knows(user_id) {
                return (Reply::Error(400, "USER_ID_INVALID"), pushes);
            }
            if dir.chats.len() >= MAX_SECRET_CHATS {
                return (Reply::Error(500, "CHATS_TOO_MUCH"), pushes);
            }
            if !log.room(user_id, false) {
                return (Reply::Error(420, QUEUE_FULL), pushes);
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
            let reply = Reply::Result(encode(&rec.waiting(id)));
            dir.chats.insert(id, rec);
            reply
        }
        Call::AcceptEncryption {
            peer,
            g_b,
            key_fingerprint,
        } => match dir.chats.get_mut(&peer.chat_id) {
            Some(c) if c.access_hash == peer.access_hash && c.participant == caller.user => match c.state {
                ChatState::Requested if !log.room(c.admin, false) => Reply::Error(420, QUEUE_FULL),
                ChatState::Requested => {
                    c.state = ChatState::Ready;
                    let g_a = core::mem::take(&mut c.g_a);
                    pushes.push(push_encryption(
                        c.admin,
                        &c.ready(peer.chat_id, g_b, key_fingerprint),
                        caller.date,
                    ));
                    Reply::Result(encode(&c.ready(peer.chat_id, &g_a, key_fingerprint)))
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
                (Some(other), _) if !log.room(other, false) => Reply::Error(420, QUEUE_FULL),
                (Some(other), _) => {
                    c.state = ChatState::Discarded;
                    c.g_a.clear();
                    let chat = types::EncryptedChatDiscarded {
                        history_deleted: delete_history,
                        id: chat_id,
                    };
                    pushes.push(push_encryption(other, &chat, caller.date));
                    Reply::Result(encode(&types::BoolTrue {}))
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
            if matches!(to, Ok(to) if !log.room(to, true)) {
                return (Reply::Error(420, QUEUE_FULL), pushes);
            }
            let file = match (to, file) {
                (Ok(_), Some(f)) => match dir.resolve_file(caller.user, f, rng) {
                    Ok((id, f)) => Some(types::EncryptedFile {
                        id,
                        access_hash: f.access_hash,
                        size: f.size,
                        dc_id: dir.dc_id,
                        key_fingerprint: f.key_fingerprint,
                    }),
                    Err((code, e)) => return (Reply::Error(code, e), pushes),
                },
                _ => None,
            };
            match to {
                Ok(to) => {
                    let file_tl = match file {
                        Some(f) => enums::EncryptedFile::EncryptedFile(f),
                        None => enums::EncryptedFile::EncryptedFileEmpty(types::EncryptedFileEmpty {}),
                    };
                    let message = if service {
                        enums::EncryptedMessage::EncryptedMessageService(types::EncryptedMessageService {
                            random_id,
                            chat_id: peer.chat_id,
                            date: caller.date,
                            bytes: data,
                        })
                    } else {
                        enums::EncryptedMessage::EncryptedMessage(types::EncryptedMessage {
                            random_id,
                            chat_id: peer.chat_id,
                            date: caller.date,
                            bytes: data,
                            file: Obj::new(&file_tl),
                        })
                    };
                    let Some(qts) = log.encrypted(to, &encode(&message), caller.date) else {
                        return (Reply::Error(500, "USERS_TOO_MUCH"), pushes);
                    };
                    let update = types::UpdateNewEncryptedMessage {
                        message: Obj::new(&message),
                        qts,
                    };
                    pushes.push(Push {
                        to,
                        updates: encode(&types::Updates {
                            updates: Seq::new(&[Obj::new(&update)]),
                            users: Seq::new(&[]),
                            chats: Seq::new(&[]),
                            date: caller.date,
                            seq: 0, // qts-sequenced updates carry none
                        }),
                        sequenced: true,
                    });
                    Reply::Result(match &file {
                        Some(f) => encode(&types::MessagesSentEncryptedFile {
                            date: caller.date,
                            file: Obj::new(f),
                        }),
                        None => encode(&types::MessagesSentEncryptedMessage { date: caller.date }),
                    })
                }
                Err(e) => Reply::Error(400, e),
            }
        }
        // The qts events up to `max_qts` are forgotten (test_dc's update stream keeps them until then, for
        // `updates.getDifference`): the `Vector<long>` of the secret-chat messages' random ids.
        Call::ReceivedQueue { max_qts } => match log.acknowledge(caller.user, max_qts) {
            Ok(ids) => {
                let mut out = Vec::with_capacity(8 + 8 * ids.len());
                out.extend_from_slice(&VECTOR.to_le_bytes());
                out.extend_from_slice(&u32::try_from(ids.len()).unwrap_or(0).to_le_bytes());
                for id in ids {
                    out.extend_from_slice(&id.to_le_bytes());
                }
                Reply::Result(out)
            }
            Err(e) => Reply::Error(400, e),
        },
        Call::Other(_) => Reply::Error(400, "INPUT_METHOD_INVALID"),
    };
    (reply, pushes)
}

/// `messages.dhConfig` with Telegram's prime and g = 3, or `messages.dhConfigNotModified` if the client has it.
pub fn dh_config(client_version: i32, random: &[u8]) -> Option<Vec<u8>> {
    let group = DhGroup::telegram(3).ok()?;
    if client_version == DH_VERSION {
        return Some(encode(&types::MessagesDhConfigNotModified { random }));
    }
    let p = group.prime_bytes();
    Some(encode(&types::MessagesDhConfig {
        g: i32::try_from(group.g()).ok()?,
        p: &p,
        version: DH_VERSION,
        random,
    }))
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
pub fn parse_dh_config(body: &[u8]) -> Result<DhConfigView<'_>, layout::Error> {
    Ok(match enums::MessagesDhConfig::decode(body)? {
        enums::MessagesDhConfig::MessagesDhConfig(c) => DhConfigView {
            version: Some(c.version),
            g: Some(c.g),
            p: Some(c.p),
            random: c.random,
        },
        enums::MessagesDhConfig::MessagesDhConfigNotModified(c) => DhConfigView {
            version: None,
            g: None,
            p: None,
            random: c.random,
        },
    })
}

/// `messages.getDhConfig` (client end).
pub fn get_dh_config(version: i32, random_length: i32) -> Vec<u8> {
    encode(&functions::MessagesGetDhConfig { version, random_length })
}

/// `upload.saveFilePart` (client end).
pub fn save_file_part(file_id: i64, part: i32, bytes: &[u8]) -> Vec<u8> {
    encode(&functions::UploadSaveFilePart {
        file_id,
        file_part: part,
        bytes,
    })
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
    matches!(enums::Bool::decode(body), Ok(enums::Bool::BoolTrue(_)))
}

/// `messages.requestEncryption(inputUser(user_id, 0), random_id, g_a)` (client end).
pub fn request_encryption(user_id: i64, random_id: i32, g_a: &[u8]) -> Vec<u8> {
    let user = types::InputUser {
        user_id,
        access_hash: 0,
    };
    encode(&functions::MessagesRequestEncryption {
        user_id: Obj::new(&user),
        random_id,
        g_a,
    })
}

fn input_encrypted_chat(peer: InputChat) -> types::InputEncryptedChat {
    types::InputEncryptedChat {
        chat_id: peer.chat_id,
        access_hash: peer.access_hash,
    }
}

/// `messages.acceptEncryption` (client end).
pub fn accept_encryption(peer: InputChat, g_b: &[u8], key_fingerprint: i64) -> Vec<u8> {
    let peer = input_encrypted_chat(peer);
    encode(&functions::MessagesAcceptEncryption {
        peer: Obj::new(&peer),
        g_b,
        key_fingerprint,
    })
}

/// `messages.discardEncryption` (client end).
pub fn discard_encryption(chat_id: i32, delete_history: bool) -> Vec<u8> {
    encode(&functions::MessagesDiscardEncryption {
        delete_history,
        chat_id,
    })
}

/// `messages.sendEncrypted` (flags 0) or, for a service message, `messages.sendEncryptedService` (client end).
pub fn send_encrypted(peer: InputChat, random_id: i64, data: &[u8], service: bool) -> Vec<u8> {
    let peer = input_encrypted_chat(peer);
    if service {
        encode(&functions::MessagesSendEncryptedService {
            peer: Obj::new(&peer),
            random_id,
            data,
        })
    } else {
        encode(&functions::MessagesSendEncrypted {
            silent: false,
            peer: Obj::new(&peer),
            random_id,
            data,
        })
    }
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

impl<'a> From<enums::EncryptedChat<'a>> for ChatView<'a> {
    fn from(c: enums::EncryptedChat<'a>) -> Self {
        use enums::EncryptedChat as E;
        let peer = |chat_id, access_hash| InputChat { chat_id, access_hash };
        match c {
            E::EncryptedChatEmpty(c) => ChatView::Empty { id: c.id },
            E::EncryptedChatWaiting(c) => ChatView::Waiting {
                peer: peer(c.id, c.access_hash),
                admin_id: c.admin_id,
                participant_id: c.participant_id,
            },
            E::EncryptedChatRequested(c) => ChatView::Requested {
                peer: peer(c.id, c.access_hash),
                admin_id: c.admin_id,
                participant_id: c.participant_id,
                g_a: c.g_a,
            },
            E::EncryptedChat(c) => ChatView::Ready {
                peer: peer(c.id, c.access_hash),
                admin_id: c.admin_id,
                participant_id: c.participant_id,
                g_a_or_b: c.g_a_or_b,
                key_fingerprint: c.key_fingerprint,
            },
            E::EncryptedChatDiscarded(c) => ChatView::Discarded {
                id: c.id,
                history_deleted: c.history_deleted,
            },
        }
    }
}

/// Decodes an `EncryptedChat` result.
pub fn parse_encrypted_chat(body: &[u8]) -> Result<ChatView<'_>, layout::Error> {
    Ok(enums::EncryptedChat::decode(body)?.into())
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

/// A received `EncryptedFile` (`None`: `encryptedFileEmpty`).
fn file_view(f: Obj<'_, enums::EncryptedFile>) -> Option<FileView> {
    match f.get()? {
        enums::EncryptedFile::EncryptedFileEmpty(_) => None,
        enums::EncryptedFile::EncryptedFile(f) => Some(FileView {
            id: f.id,
            access_hash: f.access_hash,
            size: f.size,
            dc_id: f.dc_id,
            key_fingerprint: f.key_fingerprint,
        }),
    }
}

/// Decodes a `messages.SentEncryptedMessage` result: its date and, for `sentEncryptedFile`, the file.
pub fn parse_sent_encrypted(body: &[u8]) -> Result<(i32, Option<FileView>), layout::Error> {
    Ok(match enums::MessagesSentEncryptedMessage::decode(body)? {
        enums::MessagesSentEncryptedMessage::MessagesSentEncryptedMessage(m) => (m.date, None),
        enums::MessagesSentEncryptedMessage::MessagesSentEncryptedFile(m) => (m.date, file_view(m.file)),
    })
}

/// `messages.sendEncryptedFile` (flags 0) with `inputEncryptedFileUploaded` (or `…BigUploaded` when `big`) of
/// `parts` saved parts (client end).
pub fn send_encrypted_file(peer: InputChat, random_id: i64, data: &[u8], file: InputFile, big: bool) -> Vec<u8> {
    use enums::InputEncryptedFile as E;
    let file = match file {
        InputFile::Empty => E::InputEncryptedFileEmpty(types::InputEncryptedFileEmpty {}),
        InputFile::Existing { id, access_hash } => E::InputEncryptedFile(types::InputEncryptedFile { id, access_hash }),
        InputFile::Uploaded {
            id,
            parts,
            key_fingerprint,
        } if big => E::InputEncryptedFileBigUploaded(types::InputEncryptedFileBigUploaded {
            id,
            parts,
            key_fingerprint,
        }),
        InputFile::Uploaded {
            id,
            parts,
            key_fingerprint,
        } => E::InputEncryptedFileUploaded(types::InputEncryptedFileUploaded {
            id,
            parts,
            md5_checksum: b"",
            key_fingerprint,
        }),
    };
    let peer = input_encrypted_chat(peer);
    encode(&functions::MessagesSendEncryptedFile {
        silent: false,
        peer: Obj::new(&peer),
        random_id,
        data,
        file: Obj::new(&file),
    })
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

/// A secret-chat update of a validated `Updates` (others are refused with their id).
fn update_view<'a>(u: Obj<'a, enums::Update<'a>>) -> Result<UpdateView<'a>, layout::Error> {
    let other = layout::Error::UnknownConstructor(u.constructor().unwrap_or(0));
    match u.get().ok_or(layout::Error::Truncated)? {
        enums::Update::UpdateEncryption(e) => Ok(UpdateView::Encryption(
            e.chat.get().ok_or(layout::Error::Truncated)?.into(),
        )),
        enums::Update::UpdateNewEncryptedMessage(m) => Ok(match m.message.get().ok_or(layout::Error::Truncated)? {
            enums::EncryptedMessage::EncryptedMessage(e) => UpdateView::NewEncrypted {
                chat_id: e.chat_id,
                random_id: e.random_id,
                bytes: e.bytes,
                service: false,
                file: file_view(e.file),
                qts: m.qts,
            },
            enums::EncryptedMessage::EncryptedMessageService(e) => UpdateView::NewEncrypted {
                chat_id: e.chat_id,
                random_id: e.random_id,
                bytes: e.bytes,
                service: true,
                file: None,
                qts: m.qts,
            },
        }),
        _ => Err(other),
    }
}

/// Decodes the secret-chat updates of an `updates` or `updateShort` (others, and `updates` naming users or chats,
/// which this DC never sends, are refused).
pub fn parse_updates(body: &[u8]) -> Result<Vec<UpdateView<'_>>, layout::Error> {
    match enums::Updates::decode(body)? {
        enums::Updates::UpdateShort(s) => Ok(vec![update_view(s.update)?]),
        enums::Updates::Updates(u) => {
            if !u.users.is_empty() || !u.chats.is_empty() {
                return Err(layout::Error::WrongType(UPDATES)); // users or chats: not this DC's
            }
            u.updates.iter().map(update_view).collect()
        }
        _ => Err(layout::Error::UnknownConstructor(
            body.get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes),
        )),
    }
}
