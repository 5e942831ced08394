//! Telegram secret chats (end-to-end encryption) as a Sans-IO state machine.
//!
//! [`SecretChat`] is one side of one chat, either the initiator (A, who called `messages.requestEncryption`) or
//! the acceptor (B). It never performs I/O: the host feeds it `messages.getDhConfig` results, the peer's `g_a`/`g_b`,
//! the bytes of every `encryptedMessage`/`encryptedMessageService` for the chat, time and randomness; it returns the
//! bytes to pass to `messages.sendEncrypted`/`sendEncryptedService` and a stream of events.
//!
//! Run loop contract: after every [`SecretChat::decrypt`] (and after [`SecretChat::encrypt`]), drain
//! [`SecretChat::poll_event`] until it returns `None` and [`SecretChat::poll_transmit`] until it returns
//! `Ok(None)`; call `poll_transmit` also from time to time (it starts due re-keys and repeats resend requests for
//! holes that were not filled).
//!
//! What is enforced (docs/CHECKLIST.md items 58–73): DH parameters checked and cached by version ([`DhConfigCache`]),
//! the server's `random` only mixed into local randomness, g_a/g_b range checks, the key fingerprint, MTProto 2.0 with
//! x = 0 for the originator's messages and a constant-time msg_key check, strict length and padding rules, monotonic
//! peer layer, seq_no parity, gap detection with exactly one `decryptedMessageActionResend` per hole, bounded resend
//! handling, the PFS re-key automaton with the concurrent-request tie-break, the 288-bit key visualisation, and
//! encrypted-file fingerprints ([`file`](mod@file)).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chat;
pub mod file;
pub mod visual;
pub mod wire;

pub use chat::{
    AbortReason, DEFAULT_HELD, DEFAULT_HISTORY, DEFAULT_MAX_MESSAGE, Delivered, DhConfig, DhConfigCache, E2eError,
    Event, KeyRequest, PERSIST_VERSION, Received, RestoreError, SecretChat, Sent,
};

use core::time::Duration;

/// The secret-chat layer this crate speaks (the newest block of the schema in tests/data/secret.tl).
pub const LAYER: i32 = 144;
/// The layer assumed for a peer until it tells us otherwise.
pub const INITIAL_PEER_LAYER: i32 = 46;
/// From this layer on MTProto 2.0 is mandatory (this crate speaks only 2.0).
pub const MTPROTO2_LAYER: i32 = 73;
/// A key that has encrypted and decrypted more than this many messages is replaced (item 70).
pub const REKEY_AFTER_MESSAGES: u32 = 100;
/// A key older than this is replaced (item 70).
pub const REKEY_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// Largest range a `decryptedMessageActionResend` may ask for (tdlib's `MAX_RESEND_COUNT`, item 68).
pub const MAX_RESEND_COUNT: u32 = 1000;
/// How long a hole may stay open before its resend request is repeated.
pub const RESEND_RETRY: Duration = Duration::from_secs(5);
/// Random bytes put into every `decryptedMessageLayer` (the spec asks for at least 15).
pub const RANDOM_BYTES_LEN: usize = 16;
/// Fewest padding bytes after the payload (item 63).
pub const MIN_PADDING: usize = 12;
/// Most padding bytes after the payload (item 63).
pub const MAX_PADDING: usize = 1024;
/// Bytes in front of the ciphertext: key_fingerprint (8) and msg_key (16).
pub const HEADER_LEN: usize = 24;
/// Capacity of the queue of protocol messages waiting for [`SecretChat::poll_transmit`].
pub const TX_QUEUE: usize = 32;
/// Capacity of the event queue drained by [`SecretChat::poll_event`] (released held messages are
/// handed out from their slots and do not count).
pub const EVENT_QUEUE: usize = 16;
