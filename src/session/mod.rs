//! Pure-logic building blocks of the encrypted session: msg_id generation and the clock model, the inbound
//! replay/time/parity checks, seq_no generation and validation, server salts (both roles), the sent-message
//! tracker, the to-ack queue, the resend byte budget and the table of session-layer limits.
//!
//! Nothing here touches bytes on the wire, a clock or an RNG: the session engine composes these pieces, feeding
//! them `now` ([`Instant`](crate::time::Instant) / [`UnixTime`](crate::time::UnixTime)) and already-decoded
//! integers. Every structure is fixed-capacity; a full structure answers with a typed error, never silent loss.
//!
//! State changes that a peer's notification may trigger (time offset, salt, future salts) require a
//! [`pending::SentRef`]: a proof, only the [`pending::SentTracker`] can create, that the notification names a message
//! we sent and still track (docs/CHECKLIST.md items 35, 43; attack B20).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod acks;
pub mod bad_msg;
pub mod budget;
pub mod limits;
pub mod msg_id;
pub mod pending;
pub mod replay;
mod ring;
pub mod salts;
pub mod seqno;

pub use acks::{AckQueue, AckQueueFull};
pub use bad_msg::{BadMsgCode, UnknownBadMsgCode};
pub use budget::{BudgetExhausted, ResendBudget};
pub use limits::Limits;
pub use msg_id::{Clock, MsgId, MsgIdExhausted, MsgIdGen, Role};
pub use pending::{BodyHandle, ResendPolicy, SentKind, SentRef, SentTracker, TrackError};
pub use replay::{InboundMsgIds, MsgIdReject, ReplayWindow, TimeWindow};
pub use salts::{BadServerSalt, ClientSalts, FutureSalt, SaltError, ServerSaltPolicy, ServerSalts};
pub use seqno::{SeqNoChecker, SeqNoError, SeqNoExhausted, SeqNoGen};

pub mod bind;
pub mod dc_host;
pub mod engine;
pub mod event;

#[cfg(feature = "alloc")]
pub use engine::GzipPolicy;
pub use engine::{LongPoll, MsgKind, Packet, Session, SessionConfig, Stats};
pub use event::{BufferTooSmall, DropCounts, Dropped, Event, FailReason, RpcErrorKind, SendError};
pub mod connection;
pub mod pfs;

pub use dc_host::{
    AcceptKeyError, HostQuery, InitCheckError, ProxySecretError, ResumeError, SALT_SCHEDULE_LEN, SaltSchedule,
    StoredKey,
};

pub use connection::{
    Connection, ConnectionConfig, ConnectionLarge, ConnectionSmall, DC_HANDSHAKE_RUNS, Error, MAX_PARKED_FRAMES,
    SupplyKeyError, TransportConfig,
};
pub use pfs::{BindRefusal, KeyEvent, PfsClient, PfsConfig, PfsEvent, QueryId, RekeyReason};
