//! The client: the crate's client pieces composed into one Sans-IO machine a host drives with bytes and time.
//!
//! [`Client`] owns one [`Connection`] per DC (its main connection), the media and CDN connections its file
//! transfers need,
//! the [`Router`], the [`FloodScheduler`] and the [`Record`] the host stores. The host owns sockets, clocks, the
//! random generator and the [`Store`](super::store::Store); it gives the machine:
//! - requests ([`Client::invoke`]): the body of an API call and where it goes; the machine gives back a
//!   [`RequestId`] and keeps the body until the call ends. Many requests may be in flight at once, on one DC or on
//!   several;
//! - socket news: [`Client::connected`], [`Client::connect_failed`], [`Client::disconnected`], and the bytes read
//!   ([`Client::handle_input`], like [`Connection::handle_input`]: it returns what it consumed, 0 means drain first);
//! - store confirmations ([`Client::saved`]) and time ([`Client::handle_timeout`]).
//!
//! What goes out, to be drained after every call:
//! - [`Client::poll_action`]: open a socket for connection `c` to an address, or close `c`;
//! - [`Client::poll_transmit`]: bytes to write on connection `c`;
//! - [`Client::poll_save`]: a [`Change`] of [`Client::record`] to make durable, confirmed with [`Client::saved`];
//!   the router holds the first query under a new key, and every authorized call after a sign-in, until then;
//! - [`Client::poll_event`]: answers, failures and updates ([`ClientEvent`]);
//! - [`Client::poll_timeout`]: when to call [`Client::handle_timeout`].
//!
//! A request may have a deadline ([`Config::deadline`] for every [`Client::invoke`], or its own through
//! [`Client::invoke_until`]): past it, [`Client::handle_timeout`] ends it with [`CallError::TimedOut`] wherever it is
//! (the flood scheduler and the router forget it; a query in flight stays in its session, which has no way to take
//! one back, and its answer, when it comes, is dropped and counted in [`ClientStats::late_answers`]).
//!
//! Inside, a request goes: flood scheduler (held while its method is under a wait on its DC) → router (held while
//! its connection opens, its key is saved, or the authorization is copied to its DC) → the DC's connection,
//! wrapped in `invokeWithLayer(initConnection(…))` when it is the first call of that connection's session
//! ([`Config::init`]). An answer is matched by its msg_id; an `rpc_error` is classified
//! ([`RpcError::classify`]): a migration re-routes the request ([`Router::on_migrate`], the home DC saved when
//! it moves), a flood wait or retryable error goes back to the flood scheduler (retried under its budget or
//! surfaced), a 401 on the home DC signs the account out. A DC that forgot its key (transport error −404) has the
//! key dropped (saved), its connections replaced by one that makes a new key, and the requests that were in flight
//! on it sent again once. `auth.exportAuthorization`/`importAuthorization` for the router's authorization copies
//! are the machine's own calls.
//!
//! **File transfers** ([`Client::upload`], [`Client::download`], their `resume_*`): the
//! [`files`](super::files) machines run inside, their requests routed on media connections ([`LinkKind::Media`],
//! [`FileConnection`]: 1 MiB frames, a 16 MiB arena, only there) to the file's DC, with the authorization copied
//! there as for any request; `FILE_MIGRATE` moves the rest of a download. A CDN redirect makes the machine ask the
//! home DC for `help.getCdnConfig` and open a CDN connection ([`LinkKind::Cdn`]) whose key is made with the CDN's
//! RSA key and never saved; a part failing its hash check is refused ([`ClientEvent::CdnRefused`]) and the rest
//! comes from the master DC. The host holds the file: an upload asks for each part
//! ([`ClientEvent::PartWanted`], answered with [`Client::upload_part`]) and sends nothing more until given it; a
//! download hands parts with their offsets ([`ClientEvent::Downloaded`]) and asks for no more while
//! [`Config::max_undrained_parts`] wait undrained. [`Client::transfer_state`] is what to persist to resume.
//!
//! Sign-in flows ([`signin`](super::signin)) stay machines of their own that the host drives: their calls go
//! through [`Client::invoke`] with [`CallKind::Raw`] (no flood scheduler, no migration following: the flow handles
//! both), the host reports [`Client::move_home`] when the flow migrates and [`Client::signed_in`] when it ends.
//!
//! **Memory.** This machine needs `alloc`: a DC's connection is a [`Connection`] whose buffers grow on demand
//! (45–53 KiB each by value, boxed), and request bodies are kept until answered, so a const-capacity version would
//! pin `D` connections plus a body arena in one block the size of the largest. The pieces it composes
//! (router, flood scheduler, record) stay allocation-free, and a no-alloc host composes them itself as before.
//! Tables are still bounded: [`Config::max_requests`] requests, [`Config::max_events`] events not drained (input is
//! refused, returning 0, until the host drains them).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::files::{
    Download, DownloadConfig, DownloadProgress, DownloadState, FileError, MAX_LOCATION, Tag, Upload, UploadConfig,
    UploadProgress, UploadState,
};
use super::flood::{Admit, FloodConfig, FloodScheduler, MethodKey, RetryState, Verdict};
use super::router::{
    Action, ConfigError, ConfigReport, DcOption, Link, LinkKind, Route, RouteError, Router, RouterConfig, Target,
    Ticket, import_call,
};
use super::rpc_error::{ErrorKind, RpcError};
use super::store::{Change, Record, RecordFull, User};
use super::{DcId, RequestId};
use crate::crypto::rsa::RsaPublicKey;
use crate::handshake;
use crate::rand_core::CryptoRng;
use crate::session::{Connection, ConnectionConfig, Event, FailReason, MsgId, MsgKind, SendError, SessionConfig};
use crate::time::{Instant, UnixTime};
use crate::tl::api::{RemoteCall, enums, functions};
use crate::tl::invoke::{InitConnection, write_init_connection};
use crate::tl::{self, TlWrite, Writer};
use crate::transport::TransportConfig;

/// The connection type of a DC's main connection: 64 KiB frames, a 256 KiB resend arena, 64 messages in flight
/// (heap blocks grown on demand, so capacities are limits, not costs).
pub type MainConnection = crate::session::ConnectionLarge;

/// A connection the machine asked the host to open; the host names it in every report about its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnId(pub u32);

/// How the machine treats a call's errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallKind {
    /// An API call: flood waits and retryable errors go through the flood scheduler, migrations are followed, a
    /// 401 on the home DC signs out.
    Api,
    /// A call whose caller handles every `rpc_error` itself (a sign-in flow's): routed, never retried or moved.
    Raw,
}

/// The host's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The DCs' RSA keys (for key exchanges).
    pub rsa_keys: &'static [RsaPublicKey],
    /// The transport of every connection (its `dc_id` is set per DC for an obfuscated init).
    pub transport: TransportConfig,
    /// Each connection's session configuration.
    pub session: SessionConfig,
    /// The router's policy.
    pub router: RouterConfig,
    /// The flood scheduler's policy.
    pub flood: FloodConfig,
    /// When set, the first call of each connection's session is wrapped in `invokeWithLayer(layer,
    /// initConnection(…))` (what Telegram requires before API calls on a new session).
    pub init: Option<InitConnection<'static>>,
    /// The layer `invokeWithLayer` names ([`API_LAYER`](super::signin::API_LAYER)).
    pub layer: i32,
    /// Requests at most (in the flood scheduler, held by the router, or in flight); more are refused.
    pub max_requests: usize,
    /// Events not drained at most; input is refused until the host drains them.
    pub max_events: usize,
    /// How long an [`Client::invoke`] call may take, from the call to its answer (flood waits, routing, migrations
    /// and retries included) before it fails with [`CallError::TimedOut`]; `None`: no deadline (the default).
    /// [`Client::invoke_until`] gives a request a deadline of its own.
    pub deadline: Option<Duration>,
    /// File transfers at once (running, or ended and not yet released with [`Client::finish_transfer`]).
    pub max_transfers: usize,
    /// Downloaded parts ([`ClientEvent::Downloaded`]) a download may have waiting for the host to drain: past it,
    /// the download asks for no more parts until the host drains them (what is in flight still comes).
    pub max_undrained_parts: usize,
}

impl Config {
    /// Defaults around the host's RSA keys and transport: the router's and flood scheduler's defaults, no
    /// `initConnection`, 32 requests (the router's held table), 1,024 events.
    #[must_use]
    pub const fn new(rsa_keys: &'static [RsaPublicKey], transport: TransportConfig) -> Self {
        Self {
            rsa_keys,
            transport,
            session: SessionConfig::DEFAULT,
            router: RouterConfig::DEFAULT,
            flood: FloodConfig::DEFAULT,
            init: None,
            layer: super::signin::API_LAYER,
            max_requests: 32,
            max_events: 1024,
            deadline: None,
            max_transfers: 4,
            max_undrained_parts: 4,
        }
    }
}

/// Something the host must do with a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAction {
    /// Open a socket for `conn` to `option` (its address and port), then report [`Client::connected`] or
    /// [`Client::connect_failed`]. The same `conn` may be opened again after [`Client::disconnected`]: its session
    /// continues on the new socket.
    Open {
        /// The connection.
        conn: ConnId,
        /// Which DC, and the address the router chose.
        option: DcOption,
    },
    /// Close the socket of `conn`; the connection is gone (no report needed).
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Why a request ended without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallError {
    /// The router could not route it.
    Route(RouteError),
    /// Its method is under a flood wait on its DC longer than the flood budget: usable again at `until`.
    FloodWait {
        /// When the method may be called again.
        until: Instant,
    },
    /// The flood scheduler's table is full (backpressure).
    FloodFull,
    /// The session refused the body.
    Send(SendError),
    /// The session ended it without an answer.
    Session(FailReason),
    /// The DC forgot its key twice while it was in flight.
    KeyDropped(DcId),
    /// Its connection could not be opened again.
    Unreachable(DcId),
    /// Its deadline ([`Config::deadline`], [`Client::invoke_until`]) passed first. An answer that still comes is
    /// dropped and counted ([`ClientStats::late_answers`]).
    TimedOut,
}

/// An `rpc_error` as the DC sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcFailure {
    /// The code (400, 401, 420...).
    pub code: i32,
    /// The message (`FLOOD_WAIT_3`...), bytes as sent.
    pub message: Vec<u8>,
}

/// What the host learns: poll with [`Client::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The request was answered: its result's bytes, or the `rpc_error` the machine did not handle itself.
    Answer {
        /// The request.
        id: RequestId,
        /// The result.
        result: Result<Vec<u8>, RpcFailure>,
    },
    /// The request ended without an answer.
    Failed {
        /// The request.
        id: RequestId,
        /// Why.
        error: CallError,
    },
    /// An update pushed by a DC (an `Updates` object).
    Update {
        /// The DC that pushed it.
        dc: DcId,
        /// Its bytes.
        body: Vec<u8>,
    },
    /// A query went out (the request's first attempt or a retry): hosts that count, log or inject faults see it.
    Sent {
        /// The request (the machine's own calls for authorization copies have ids too).
        id: RequestId,
        /// The DC.
        dc: DcId,
        /// The connection.
        conn: ConnId,
    },
    /// The DC started a new server session: updates may have been lost (fetch the difference).
    SessionReset {
        /// The DC.
        dc: DcId,
    },
    /// The account was signed out (a 401 on the home DC, or its key dropped): sign in again.
    SignedOut,
    /// An upload needs `len` bytes of its file at `offset`: give them with [`Client::upload_part`]. It sends
    /// nothing more until then (a host that is slow to read holds the window, nothing is dropped).
    PartWanted {
        /// The upload.
        transfer: TransferId,
        /// Where in the file.
        offset: u64,
        /// How many bytes.
        len: usize,
    },
    /// An upload's parts were saved: `parts_done` of `parts` (a prefix).
    PartSaved {
        /// The upload.
        transfer: TransferId,
        /// Parts saved.
        parts_done: u32,
        /// Parts in all.
        parts: u32,
    },
    /// Downloaded bytes of the file at `offset` (parts come in any order): store them there. A download stops
    /// asking for parts while [`Config::max_undrained_parts`] of these wait to be drained.
    Downloaded {
        /// The download.
        transfer: TransferId,
        /// Where they go.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A CDN part failed its hash check: it was never handed over, and the download goes on from the master DC
    /// without the CDN.
    CdnRefused {
        /// The download.
        transfer: TransferId,
        /// The refused part's offset.
        offset: u64,
    },
    /// A download's file reference expired: give a fresh location with [`Client::refresh_location`].
    ReferenceExpired {
        /// The download.
        transfer: TransferId,
    },
    /// A transfer ended: every part saved (write the upload's `InputFile` with [`Client::upload_input_file`]), or
    /// every byte downloaded. Release it with [`Client::finish_transfer`].
    TransferDone {
        /// The transfer.
        transfer: TransferId,
    },
    /// A transfer failed for good. Release it with [`Client::finish_transfer`].
    TransferFailed {
        /// The transfer.
        transfer: TransferId,
        /// Why.
        error: FileError,
    },
}

/// A file transfer the machine runs ([`Client::upload`], [`Client::download`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransferId(pub u32);

/// Why a transfer call was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// [`Config::max_transfers`] transfers are open: backpressure.
    Full,
    /// No such transfer (never started, or released).
    Unknown,
    /// Not the bytes the upload asked for ([`ClientEvent::PartWanted`]): another offset or length, or none asked.
    NotWanted,
    /// The files machine refused it (a bad configuration, size, location or state).
    File(FileError),
}

/// What to persist to resume a transfer ([`Client::resume_upload`], [`Client::resume_download`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferState {
    /// An upload's.
    Upload(UploadState),
    /// A download's.
    Download(DownloadState),
}

/// Why a request was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InvokeError {
    /// [`Config::max_requests`] requests are open: backpressure.
    Full,
    /// Not a TL body (shorter than a constructor id, or not a multiple of 4 bytes).
    BadBody,
    /// There is no home DC yet.
    NoHome,
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvokeError::Full => "too many requests open",
            InvokeError::BadBody => "not a TL body",
            InvokeError::NoHome => "no home DC",
        })
    }
}

impl core::error::Error for InvokeError {}

/// Why the machine could not start from a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The router's tables are too small for the record.
    Route(RouteError),
    /// The bootstrap list does not fit the record.
    Record(RecordFull),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Route(e) => write!(f, "router: {e}"),
            StartError::Record(e) => write!(f, "record: {e}"),
        }
    }
}

impl core::error::Error for StartError {}

/// What the machine did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientStats {
    /// Queries sent (every attempt of every request, the machine's own included).
    pub queries: u64,
    /// Auth keys made.
    pub handshakes: u64,
    /// Stored keys a DC had forgotten (−404), dropped.
    pub keys_dropped: u64,
    /// Authorizations copied to another DC.
    pub imports: u64,
    /// Requests failed with [`CallError::TimedOut`].
    pub timed_out: u64,
    /// Answers (results, errors, or the session's failure) that came for a request already timed out, dropped.
    pub late_answers: u64,
}

/// Queries timed out while in flight whose late answers the machine still recognizes (to drop and count them); the
/// oldest is forgotten past this, and its answer, if it comes, is dropped as any unknown one, uncounted.
pub const LATE_TRACKED: usize = 64;

/// CDN DCs whose RSA keys (from `help.getCdnConfig`) the machine keeps; the rest of a longer list is ignored.
pub const MAX_CDN_KEYS: usize = 8;

/// `help.getCdnConfig` calls one machine makes (a CDN not listed asks again, up to this): each key is kept for the
/// machine's life, as a connection's key exchange holds its RSA keys for restarts (`'static`: leaked once each, a
/// few hundred bytes).
pub const MAX_CDN_CONFIGS: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Call(CallKind),
    /// `auth.exportAuthorization` for the copy to `to`.
    Export {
        to: DcId,
    },
    /// `auth.importAuthorization` on `to`.
    Import {
        to: DcId,
    },
    /// `help.getCdnConfig`, for the RSA key of a CDN a download was redirected to.
    CdnConfig,
    /// A file transfer's request: routed on a media connection, its answer goes to the transfer.
    File {
        transfer: TransferId,
        tag: Tag,
    },
}

/// An upload and what the host gave it.
struct UploadJob {
    up: Upload,
    /// The part asked of the host: (offset, length).
    wanted: Option<(u64, usize)>,
    /// The bytes the host gave for `wanted`, with their offset.
    given: Option<(u64, Vec<u8>)>,
}

enum Job {
    Upload(Box<UploadJob>),
    Download(Box<Download>),
}

struct Transfer {
    job: Job,
    /// Redirected to this CDN DC, whose RSA key is not known yet: no requests until `help.getCdnConfig` answers.
    cdn_wait: Option<DcId>,
    /// [`ClientEvent::Downloaded`] events not drained.
    undrained: usize,
    /// Done or failed: no more requests.
    ended: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReqState {
    /// Held by the flood scheduler.
    Flood,
    /// Held by the router.
    Routing,
    /// In flight.
    Sent { conn: ConnId, msg: MsgId, link: Link },
}

struct Request {
    ticket: Ticket,
    retry: RetryState,
    body: Vec<u8>,
    mode: Mode,
    state: ReqState,
    /// Sent again once after its DC forgot the key.
    resent: bool,
    /// Fails with [`CallError::TimedOut`] at this instant.
    deadline: Option<Instant>,
}

impl Request {
    fn method(&self) -> u32 {
        self.body.first_chunk::<4>().map_or(0, |b| u32::from_le_bytes(*b))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sock {
    /// The host was asked to open it.
    Opening,
    /// Up.
    Up,
    /// Lost; waiting for the router to want it again.
    Down,
}

/// Largest frame a media connection ([`FileConnection`]) takes: a 1 MiB `upload.getFile` answer with its envelope
/// and padding.
pub const FILE_FRAME: usize = 1_114_112;
/// A media connection's resend arena: 16 MiB holds 31 upload parts of 512 KiB waiting for their acknowledgement.
pub const FILE_TX: usize = 16 << 20;
/// The connection type of a media connection ([`LinkKind::Media`], file transfers only): 1 MiB parts both ways and
/// a window of them in flight. Heap blocks grown on demand, so the capacities are limits, not costs; only media
/// connections have them, and a host with no transfer never opens one.
pub type FileConnection = Connection<FILE_FRAME, FILE_TX, 64>;

/// A slot's connection: a main connection of the machine's type, or a media connection.
enum Conn<const RX: usize, const TX: usize, const M: usize> {
    Main(Box<Connection<RX, TX, M>>),
    File(Box<FileConnection>),
}

/// Runs `$e` on the connection inside, whichever type it is.
macro_rules! each {
    ($c:expr, $x:ident => $e:expr) => {
        match $c {
            Conn::Main($x) => $e,
            Conn::File($x) => $e,
        }
    };
}

/// A connection's events, copied out of its receive buffer; returns whether its key exchange made a key.
fn drain_conn<const A: usize, const B: usize, const C: usize>(
    c: &mut Connection<A, B, C>,
    out: &mut Vec<Owned>,
) -> bool {
    let mut key_ready = false;
    while let Some(ev) = c.poll_event() {
        out.push(match ev {
            Event::RpcResult { req, body } => Owned::Result(req, body.to_vec()),
            Event::RpcError { req, code, message, .. } => Owned::Error(req, code, message.to_vec()),
            Event::Failed { req, reason } => Owned::Failed(req, reason),
            Event::Update(b) => Owned::Update(b.to_vec()),
            Event::SessionReset { .. } => Owned::Reset,
            Event::TransportError(code) => Owned::Transport(code),
            Event::AuthKeyReady => {
                key_ready = true;
                continue;
            }
            _ => continue,
        });
    }
    key_ready
}

impl<const RX: usize, const TX: usize, const M: usize> Conn<RX, TX, M> {
    /// The session's salt, once encrypted.
    fn salt(&self) -> Option<u64> {
        each!(self, c => c.session().map(|s| s.current_salt()))
    }

    /// The key, the salt and the DC's Unix time at `now`, once encrypted.
    fn key_state(&self, now: Instant) -> Option<(crate::crypto::auth_key::AuthKey, u64, UnixTime)> {
        each!(self, c => c.session().map(|s| (s.auth_key().clone(), s.current_salt(), s.clock().unix_time(now))))
    }
}

struct Slot<const RX: usize, const TX: usize, const M: usize> {
    link: Link,
    /// `None` until the socket of a connection on a stored key is up (its session id is drawn then).
    conn: Option<Conn<RX, TX, M>>,
    sock: Sock,
    /// Running the key exchange (no key yet).
    handshake: bool,
    /// The router counts it ready (after a key, the socket is up).
    ready: bool,
    /// `initConnection` went out on this session.
    init_sent: bool,
    /// The option it opens to.
    option: DcOption,
    /// Failed openings in a row.
    failures: u8,
}

/// The client machine: see the module docs. `RX`, `TX`, `M` are each DC connection's capacities.
pub struct Client<const RX: usize = 65_536, const TX: usize = 262_144, const M: usize = 64> {
    cfg: Config,
    record: Record,
    router: Router,
    flood: FloodScheduler,
    /// Unix time at [`Instant::ZERO`], in microseconds.
    unix_at_zero: u64,
    slots: BTreeMap<ConnId, Slot<RX, TX, M>>,
    requests: BTreeMap<RequestId, Request>,
    actions: VecDeque<HostAction>,
    events: VecDeque<ClientEvent>,
    transfers: BTreeMap<TransferId, Transfer>,
    next_transfer: u32,
    /// CDN DCs' RSA keys from `help.getCdnConfig`, at most [`MAX_CDN_KEYS`].
    cdn_keys: BTreeMap<DcId, &'static [RsaPublicKey]>,
    /// `help.getCdnConfig` calls made (at most [`MAX_CDN_CONFIGS`]); one in flight.
    cdn_fetches: u8,
    cdn_pending: bool,
    /// Queries in flight when their deadline passed: (connection, msg_id), at most [`LATE_TRACKED`].
    late: VecDeque<(ConnId, MsgId)>,
    /// Saves the router does not report (salts, the bootstrap list).
    saves: Vec<Change>,
    next_id: u64,
    next_conn: u32,
    stats: ClientStats,
}

impl<const RX: usize, const TX: usize, const M: usize> fmt::Debug for Client<RX, TX, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("record", &self.record)
            .field("connections", &self.slots.len())
            .field("requests", &self.requests.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn encode<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut out = alloc::vec![0u8; v.tl_len()];
    // The buffer has the exact size the writer asks for.
    let _ = tl::encode(v, &mut out);
    out
}

impl<const RX: usize, const TX: usize, const M: usize> Client<RX, TX, M> {
    /// Starts from `record` (what the store loaded), or on a first start from `bootstrap` (the DCs to start from:
    /// their list is saved as [`Change::Options`], and the first is the home DC until a sign-in says otherwise).
    /// `unix_now` is the host's Unix time at `now` (each connection's clock starts from it plus the DC's stored
    /// offset). Nothing is sent until a request asks for it.
    ///
    /// # Errors
    /// The record does not fit the router's tables, or the bootstrap list the record's.
    pub fn new(
        cfg: Config,
        record: Option<Record>,
        bootstrap: &[DcOption],
        now: Instant,
        unix_now: UnixTime,
    ) -> Result<Self, StartError> {
        let mut router = Router::new(cfg.router);
        let mut saves = Vec::new();
        let record = match record {
            Some(r) => r,
            None => {
                let mut r = Record::new(cfg.router.test_mode);
                saves.push(r.set_options(bootstrap).map_err(StartError::Record)?);
                r
            }
        };
        record.restore_router(&mut router, now).map_err(StartError::Route)?;
        if router.home().is_none()
            && let Some(o) = bootstrap.first()
        {
            router.set_home(o.dc);
        }
        Ok(Self {
            cfg,
            record,
            router,
            flood: FloodScheduler::new(cfg.flood),
            unix_at_zero: unix_now.0.saturating_mul(1_000_000).saturating_sub(now.as_micros()),
            slots: BTreeMap::new(),
            requests: BTreeMap::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            late: VecDeque::new(),
            transfers: BTreeMap::new(),
            next_transfer: 0,
            cdn_keys: BTreeMap::new(),
            cdn_fetches: 0,
            cdn_pending: false,
            saves,
            next_id: 0,
            next_conn: 0,
            stats: ClientStats::default(),
        })
    }

    /// What the host keeps: hand it to the store with each [`Client::poll_save`] change.
    #[must_use]
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The home DC.
    #[must_use]
    pub fn home(&self) -> Option<DcId> {
        self.router.home()
    }

    /// Signed in (from a flow or from the record).
    #[must_use]
    pub fn is_signed_in(&self) -> bool {
        self.router.is_signed_in()
    }

    /// What the machine did so far.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Requests open (held or in flight).
    #[must_use]
    pub fn open_requests(&self) -> usize {
        self.requests.len()
    }

    /// The router (read-only: its DC list, which DCs are authorized).
    #[must_use]
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Sends `body` (one TL function, the host's bytes) to `target`. The answer comes as
    /// [`ClientEvent::Answer`] or [`ClientEvent::Failed`] naming the returned id; with [`Config::deadline`] set, a
    /// request not answered by then fails with [`CallError::TimedOut`].
    ///
    /// # Errors
    /// Too many requests open, a body that is not TL, or no home DC for [`Target::Home`]; nothing changed.
    pub fn invoke(
        &mut self,
        now: Instant,
        target: Target,
        body: &[u8],
        kind: CallKind,
    ) -> Result<RequestId, InvokeError> {
        let deadline = self.cfg.deadline.map(|d| now.saturating_add(d));
        self.invoke_until(now, target, body, kind, deadline)
    }

    /// [`Client::invoke`] with a deadline of its own (`None`: none, whatever [`Config::deadline`] says): past it,
    /// [`Client::handle_timeout`] fails the request with [`CallError::TimedOut`] wherever it is (held by the flood
    /// scheduler or the router, or in flight), and [`Client::poll_timeout`] asks for that call.
    ///
    /// # Errors
    /// As [`Client::invoke`]; nothing changed.
    pub fn invoke_until(
        &mut self,
        now: Instant,
        target: Target,
        body: &[u8],
        kind: CallKind,
        deadline: Option<Instant>,
    ) -> Result<RequestId, InvokeError> {
        if body.len() < 4 || !body.len().is_multiple_of(4) {
            return Err(InvokeError::BadBody);
        }
        if target == Target::Home && self.router.home().is_none() {
            return Err(InvokeError::NoHome);
        }
        if self.requests.len() >= self.cfg.max_requests {
            return Err(InvokeError::Full);
        }
        let id = self.new_id();
        self.requests.insert(
            id,
            Request {
                ticket: Ticket::new(id, target, false),
                retry: RetryState::default(),
                body: body.to_vec(),
                mode: Mode::Call(kind),
                state: ReqState::Flood,
                resent: false,
                deadline,
            },
        );
        self.submit(id, now);
        self.step(now);
        Ok(id)
    }

    fn new_id(&mut self) -> RequestId {
        self.next_id = self.next_id.wrapping_add(1);
        RequestId(self.next_id)
    }

    /// The DC a request goes to now.
    fn dc_of(&self, t: &Ticket) -> Option<DcId> {
        match t.target {
            Target::Home => self.router.home(),
            Target::Dc(dc) | Target::Cdn(dc) => Some(dc),
        }
    }

    /// A request (new, or released by the flood scheduler) asks the scheduler, then the router.
    fn submit(&mut self, id: RequestId, now: Instant) {
        let Some(r) = self.requests.get(&id) else {
            return;
        };
        if matches!(r.mode, Mode::Call(CallKind::Raw) | Mode::File { .. } | Mode::CdnConfig) {
            self.route(id, now);
            return;
        }
        let Some(dc) = self.dc_of(&r.ticket) else {
            self.fail(id, CallError::Route(RouteError::NoHome), now);
            return;
        };
        let key = MethodKey { method: r.method(), dc };
        match self.flood.submit(id, key, None, &r.retry, now) {
            Ok(Admit::Send) => self.route(id, now),
            Ok(Admit::Held) => {
                if let Some(r) = self.requests.get_mut(&id) {
                    r.state = ReqState::Flood;
                }
            }
            Ok(Admit::TooLong { until }) => self.fail(id, CallError::FloodWait { until }, now),
            Err(_) => self.fail(id, CallError::FloodFull, now),
        }
    }

    fn route(&mut self, id: RequestId, now: Instant) {
        let Some(r) = self.requests.get(&id) else {
            return;
        };
        match self.router.route(&r.ticket, now) {
            Ok(Route::Send(link)) => self.send_on(id, link, true, now),
            Ok(Route::Held) => {
                if let Some(r) = self.requests.get_mut(&id) {
                    r.state = ReqState::Routing;
                }
            }
            Err(e) => self.fail(id, CallError::Route(e), now),
        }
    }

    /// The slot of `link`, if there is one.
    fn slot_of(&self, link: Link) -> Option<ConnId> {
        self.slots.iter().find(|(_, s)| s.link == link).map(|(c, _)| *c)
    }

    /// Sends request `id` on `link`'s connection. `routed`: the router counts it in flight there.
    fn send_on(&mut self, id: RequestId, link: Link, routed: bool, now: Instant) {
        let Some(conn) = self.slot_of(link) else {
            if routed {
                self.router.done(link, now);
            }
            self.fail(id, CallError::Send(SendError::NotReady), now);
            return;
        };
        let (Some(r), Some(slot)) = (self.requests.get_mut(&id), self.slots.get_mut(&conn)) else {
            return;
        };
        let Some(c) = slot.conn.as_mut() else {
            if routed {
                self.router.done(link, now);
            }
            self.fail(id, CallError::Send(SendError::NotReady), now);
            return;
        };
        let sent = match self.cfg.init.filter(|_| !slot.init_sent) {
            Some(init) => {
                let mut wrapped = alloc::vec![0u8; init.prefix_len() + r.body.len()];
                let mut w = Writer::new(&mut wrapped);
                let _ = write_init_connection(&mut w, self.cfg.layer, &init);
                let _ = w.raw(&r.body);
                each!(c, c => c.send(now, &wrapped, MsgKind::Query))
            }
            None => each!(c, c => c.send(now, &r.body, MsgKind::Query)),
        };
        match sent {
            Ok(msg) => {
                slot.init_sent = true;
                r.state = ReqState::Sent { conn, msg, link };
                self.stats.queries = self.stats.queries.saturating_add(1);
                self.events.push_back(ClientEvent::Sent { id, dc: link.dc, conn });
            }
            Err(e) => {
                if routed {
                    self.router.done(link, now);
                }
                self.fail(id, CallError::Send(e), now);
            }
        }
    }

    /// Ends request `id` with `error`.
    fn fail(&mut self, id: RequestId, error: CallError, now: Instant) {
        let Some(r) = self.requests.remove(&id) else {
            return;
        };
        self.flood.completed(id, now);
        match r.mode {
            Mode::Call(_) => self.events.push_back(ClientEvent::Failed { id, error }),
            Mode::Export { to } | Mode::Import { to } => self.router.import_failed(to),
            Mode::File { transfer, tag } => self.file_failed(transfer, tag, now),
            Mode::CdnConfig => self.cdn_config(None),
        }
    }

    /// Carries out what the router and the flood scheduler decided, until neither has anything.
    fn step(&mut self, now: Instant) {
        loop {
            let mut any = self.pump(now);
            self.flood.handle_timeout(now);
            while let Some(id) = self.flood.poll_release() {
                any = true;
                self.route(id, now);
            }
            while let Some(a) = self.router.poll_action() {
                any = true;
                self.act(a, now);
            }
            if !any {
                return;
            }
        }
    }

    fn act(&mut self, a: Action, now: Instant) {
        match a {
            Action::Open { link, option, .. } => self.open(link, option, now),
            Action::Close { link } => {
                if let Some(conn) = self.slot_of(link) {
                    self.slots.remove(&conn);
                    self.actions.push_back(HostAction::Close { conn });
                }
            }
            Action::Export { from, to } => {
                let id = self.new_id();
                let body = encode(&functions::AuthExportAuthorization {
                    dc_id: i32::from(to.get()),
                });
                self.internal(id, from, body, Mode::Export { to }, now);
            }
            Action::Send { id, link } => {
                if self.requests.contains_key(&id) {
                    self.send_on(id, link, true, now);
                } else {
                    self.router.done(link, now);
                }
            }
            Action::Fail { id, reason } => self.fail(id, CallError::Route(reason), now),
        }
    }

    /// One of the machine's own calls (authorization copies) on `dc`'s main connection, which the router made
    /// ready for it; not counted by the router.
    fn internal(&mut self, id: RequestId, dc: DcId, body: Vec<u8>, mode: Mode, now: Instant) {
        self.requests.insert(
            id,
            Request {
                ticket: Ticket::new(id, Target::Dc(dc), false),
                retry: RetryState::default(),
                body,
                mode,
                state: ReqState::Routing,
                resent: false,
                deadline: None,
            },
        );
        self.send_on(
            id,
            Link {
                dc,
                kind: LinkKind::Main,
            },
            false,
            now,
        );
    }

    /// The router wants `link` open: a lost connection's session continues on a new socket; otherwise a new
    /// connection, on the stored key or with a key exchange.
    fn open(&mut self, link: Link, option: DcOption, now: Instant) {
        if let Some(conn) = self.slot_of(link)
            && let Some(slot) = self.slots.get_mut(&conn)
        {
            if let Some(c) = slot.conn.as_mut() {
                each!(c, c => c.reconnect(now));
            }
            slot.sock = Sock::Opening;
            slot.option = option;
            self.actions.push_back(HostAction::Open { conn, option });
            return;
        }
        self.next_conn = self.next_conn.wrapping_add(1);
        let conn = ConnId(self.next_conn);
        // A CDN DC's key is never kept (the record drops it): each CDN connection makes one, with the CDN's RSA key.
        let cdn = link.kind == LinkKind::Cdn;
        let key = self.record.key(link.dc).is_some();
        let c = if key {
            None
        } else {
            let rsa = if cdn {
                let Some(rsa) = self.cdn_keys.get(&link.dc).copied() else {
                    // Routed to a CDN only once its key is known (`cdn_ready`): nothing to open with.
                    self.router.link_failed(link, now);
                    return;
                };
                rsa
            } else {
                self.cfg.rsa_keys
            };
            let mut hs = handshake::ClientConfig::new(rsa, i32::from(link.dc.get()));
            hs.unix_micros_at_zero = self.unix_at_zero;
            let cfg = self.conn_config(link.dc, 0, 0, now);
            Some(if link.kind == LinkKind::Main {
                Conn::Main(Box::new(Connection::client_handshake(cfg, hs, now)))
            } else {
                let mut cfg = cfg;
                cfg.engine.limits.max_unacked_bytes = cfg.engine.limits.max_unacked_bytes.max(FILE_TX);
                Conn::File(Box::new(Connection::client_handshake(cfg, hs, now)))
            })
        };
        self.slots.insert(
            conn,
            Slot {
                link,
                conn: c,
                sock: Sock::Opening,
                handshake: !key,
                ready: false,
                init_sent: false,
                option,
                failures: 0,
            },
        );
        self.actions.push_back(HostAction::Open { conn, option });
    }

    fn conn_config(&self, dc: DcId, salt: u64, offset: i32, now: Instant) -> ConnectionConfig {
        let unix = self.unix_at_zero.saturating_add(now.as_micros()) / 1_000_000;
        let mut transport = self.cfg.transport;
        if transport.obfuscated {
            transport.dc_id = i16::try_from(dc.get()).ok();
        }
        ConnectionConfig {
            engine: self.cfg.session,
            transport,
            unix_time_hint: Some(UnixTime(unix.saturating_add_signed(i64::from(offset)))),
            salt,
        }
    }

    /// The host's socket for `conn` is up. A connection on a stored key starts its session here (its session id
    /// drawn from `rng`); one running the key exchange starts it. Only a socket the machine asked for
    /// ([`HostAction::Open`]) can come up: a report for any other (a connection already up, or lost and not asked
    /// for again, whose transport was not restarted for a new socket) changes nothing.
    pub fn connected<R: CryptoRng + ?Sized>(&mut self, now: Instant, conn: ConnId, rng: &mut R) {
        let Some(slot) = self.slots.get(&conn) else {
            return;
        };
        if slot.sock != Sock::Opening {
            return;
        }
        let (link, fresh) = (slot.link, slot.conn.is_none());
        if fresh {
            let Some((key, salt, offset)) = self
                .record
                .dc(link.dc)
                .and_then(|d| d.key.clone().map(|k| (k, d.salt, d.time_offset)))
            else {
                return;
            };
            let cfg = self.conn_config(link.dc, salt, offset, now);
            let c = if link.kind == LinkKind::Media {
                let mut cfg = cfg;
                cfg.engine.limits.max_unacked_bytes = cfg.engine.limits.max_unacked_bytes.max(FILE_TX);
                Conn::File(Box::new(Connection::client(cfg, key, now, rng)))
            } else {
                Conn::Main(Box::new(Connection::client(cfg, key, now, rng)))
            };
            if let Some(slot) = self.slots.get_mut(&conn) {
                slot.conn = Some(c);
            }
        }
        let Some(slot) = self.slots.get_mut(&conn) else {
            return;
        };
        slot.sock = Sock::Up;
        slot.failures = 0;
        if !slot.handshake {
            slot.ready = true;
            self.router.link_ready(link, now);
        }
        self.step(now);
    }

    /// The host could not open the socket for `conn`: the router tries again (another address, after a backoff)
    /// or fails what waits for it. Reported again before the machine asked for a new socket, it changes nothing.
    pub fn connect_failed(&mut self, now: Instant, conn: ConnId) {
        self.lost(now, conn, true);
    }

    /// The socket of `conn` was closed or broke. Its session is kept and continues when the router opens it
    /// again (queries in flight are resent there). One loss reported twice (an error, then the close) counts
    /// once: a report for a socket already lost changes nothing.
    pub fn disconnected(&mut self, now: Instant, conn: ConnId) {
        self.lost(now, conn, false);
    }

    fn lost(&mut self, now: Instant, conn: ConnId, failed: bool) {
        let max = self.cfg.router.max_connect_attempts;
        let Some(slot) = self.slots.get_mut(&conn) else {
            return;
        };
        if slot.sock == Sock::Down {
            // Already lost: a second report of the same loss would count as one more failed opening, and enough of
            // them fail every request in flight `Unreachable` while nothing was tried.
            return;
        }
        let link = slot.link;
        let was_ready = slot.ready;
        slot.sock = Sock::Down;
        slot.ready = false;
        if failed || !was_ready {
            slot.failures = slot.failures.saturating_add(1);
            let gave_up = slot.failures >= max;
            self.router.link_failed(link, now);
            if gave_up {
                // The router fails what it holds for the DC; what was in flight on this connection fails here.
                self.slots.remove(&conn);
                let ids = self.sent_on(&[conn]);
                for id in ids {
                    self.finish_link(id, now);
                    self.fail(id, CallError::Unreachable(link.dc), now);
                }
            }
        } else if self.sent_on(&[conn]).is_empty() {
            self.router.link_closed(link, now);
        } else {
            // Lost with queries in flight: the router reopens it (it counts them) after its short backoff, where
            // a close with nothing in flight reopens only a connection something waits for.
            self.router.link_failed(link, now);
        }
        self.step(now);
    }

    /// Requests in flight on these connections.
    fn sent_on(&self, conns: &[ConnId]) -> Vec<RequestId> {
        self.requests
            .iter()
            .filter(|(_, r)| matches!(r.state, ReqState::Sent { conn, .. } if conns.contains(&conn)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Bytes read from `conn`'s socket. Returns how many were consumed (at most one frame per call, as
    /// [`Connection::handle_input`]); 0 means drain [`Client::poll_event`] (or [`Client::poll_transmit`]) first.
    /// A broken connection is closed ([`HostAction::Close`]) and opened again by the router.
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) -> usize {
        if self.events.len() >= self.cfg.max_events {
            return 0;
        }
        let Some(c) = self.slots.get_mut(&conn).and_then(|s| s.conn.as_mut()) else {
            // A connection the machine closed: its bytes are nobody's.
            return bytes.len();
        };
        let n = match each!(c, c => c.handle_input(now, bytes)) {
            Ok(n) => n,
            Err(_) => {
                self.broken(now, conn);
                return bytes.len();
            }
        };
        self.drain(now, conn);
        self.step(now);
        n
    }

    /// `conn` broke (a transport or session error): its socket is closed and the connection dropped; requests in
    /// flight on it are routed again.
    fn broken(&mut self, now: Instant, conn: ConnId) {
        let Some(slot) = self.slots.remove(&conn) else {
            return;
        };
        self.actions.push_back(HostAction::Close { conn });
        if slot.ready {
            self.router.link_closed(slot.link, now);
        } else {
            self.router.link_failed(slot.link, now);
        }
        for id in self.sent_on(&[conn]) {
            if let Some(r) = self.requests.get_mut(&id)
                && let ReqState::Sent { link, .. } = r.state
            {
                if matches!(r.mode, Mode::Call(_) | Mode::File { .. } | Mode::CdnConfig) {
                    self.router.done(link, now);
                    self.route(id, now);
                } else {
                    self.fail(id, CallError::Session(FailReason::Closed), now);
                }
            }
        }
    }

    /// Moves `conn`'s events into the machine.
    fn drain(&mut self, now: Instant, conn: ConnId) {
        let mut out: Vec<Owned> = Vec::new();
        let Some(slot) = self.slots.get_mut(&conn) else {
            return;
        };
        let dc = slot.link.dc;
        let Some(c) = slot.conn.as_mut() else {
            return;
        };
        let key_ready = each!(c, c => drain_conn(c, &mut out));
        if key_ready {
            self.key_made(now, conn);
        }
        for ev in out {
            match ev {
                Owned::Result(msg, body) => self.answered(now, conn, msg, Ok(body)),
                Owned::Error(msg, code, message) => self.answered(now, conn, msg, Err(RpcFailure { code, message })),
                Owned::Failed(msg, reason) => {
                    if let Some(id) = self.find_sent(conn, msg) {
                        self.finish_link(id, now);
                        self.fail(id, CallError::Session(reason), now);
                    } else {
                        self.late_answer(conn, msg);
                    }
                }
                Owned::Update(body) => self.events.push_back(ClientEvent::Update { dc, body }),
                Owned::Reset => self.events.push_back(ClientEvent::SessionReset { dc }),
                Owned::Transport(-404) => {
                    self.key_dropped(now, dc);
                    return;
                }
                Owned::Transport(_) => {
                    self.broken(now, conn);
                    return;
                }
            }
        }
        self.note_salt(conn);
    }

    /// The DC moved the session to a new salt (or clock): kept in the record, saved as [`Change::Salt`].
    fn note_salt(&mut self, conn: ConnId) {
        let Some(slot) = self.slots.get(&conn) else {
            return;
        };
        let dc = slot.link.dc;
        let Some(salt) = slot.conn.as_ref().and_then(Conn::salt).filter(|_| !slot.handshake) else {
            return;
        };
        if self.record.dc(dc).is_some_and(|d| d.key.is_some() && d.salt != salt) {
            let offset = self.record.dc(dc).map_or(0, |d| d.time_offset);
            if let Ok(change) = self.record.set_salt(dc, salt, offset)
                && !self.saves.contains(&change)
            {
                self.saves.push(change);
            }
        }
    }

    /// The key exchange on `conn` made a key: into the record (saved before anything goes out under it).
    fn key_made(&mut self, now: Instant, conn: ConnId) {
        let Some(slot) = self.slots.get_mut(&conn) else {
            return;
        };
        let link = slot.link;
        let Some((key, salt, unix)) = slot.conn.as_ref().and_then(|c| c.key_state(now)) else {
            return;
        };
        let server = i64::try_from(unix.0).unwrap_or(0);
        let ours = i64::try_from(self.unix_at_zero.saturating_add(now.as_micros()) / 1_000_000).unwrap_or(0);
        let offset = i32::try_from(server.saturating_sub(ours)).unwrap_or(0);
        slot.handshake = false;
        self.stats.handshakes = self.stats.handshakes.saturating_add(1);
        // A CDN DC's key is dropped by the record (never saved: it lives as long as this connection).
        if self.record.set_key(link.dc, key).is_err() {
            // No room in the record for another DC: the key cannot be kept, so it is not used.
            self.broken(now, conn);
            return;
        }
        let _ = self.record.set_salt(link.dc, salt, offset);
        if let Some(slot) = self.slots.get_mut(&conn)
            && slot.sock == Sock::Up
        {
            slot.ready = true;
            self.router.link_ready(link, now);
        }
    }

    fn find_sent(&self, conn: ConnId, msg: MsgId) -> Option<RequestId> {
        self.requests
            .iter()
            .find(|(_, r)| matches!(r.state, ReqState::Sent { conn: c, msg: m, .. } if c == conn && m == msg))
            .map(|(id, _)| *id)
    }

    /// The request left its connection: the router's count goes down (its own calls are not counted).
    fn finish_link(&mut self, id: RequestId, now: Instant) {
        if let Some(r) = self.requests.get_mut(&id)
            && let ReqState::Sent { link, .. } = r.state
        {
            r.state = ReqState::Routing;
            if matches!(r.mode, Mode::Call(_) | Mode::File { .. } | Mode::CdnConfig) {
                self.router.done(link, now);
            }
        }
    }

    fn answered(&mut self, now: Instant, conn: ConnId, msg: MsgId, result: Result<Vec<u8>, RpcFailure>) {
        let Some(id) = self.find_sent(conn, msg) else {
            self.late_answer(conn, msg);
            return;
        };
        let dc = self.slots.get(&conn).map(|s| s.link.dc);
        self.finish_link(id, now);
        let Some(mode) = self.requests.get(&id).map(|r| r.mode) else {
            return;
        };
        match (mode, result) {
            (Mode::Export { to }, Ok(body)) => {
                self.requests.remove(&id);
                match import_call(&body) {
                    Ok(call) => {
                        let body = encode(&call);
                        let id = self.new_id();
                        self.internal(id, to, body, Mode::Import { to }, now);
                    }
                    Err(_) => self.router.import_failed(to),
                }
            }
            (Mode::Import { to }, Ok(_)) => {
                self.requests.remove(&id);
                self.stats.imports = self.stats.imports.saturating_add(1);
                self.router.imported(to);
                let _ = self.record.authorized(to);
            }
            (Mode::Export { to } | Mode::Import { to }, Err(_)) => {
                self.requests.remove(&id);
                self.router.import_failed(to);
            }
            (Mode::File { transfer, tag }, result) => {
                self.requests.remove(&id);
                self.file_answer(transfer, tag, result, now);
            }
            (Mode::CdnConfig, result) => {
                self.requests.remove(&id);
                self.cdn_config(result.ok().as_deref());
            }
            (Mode::Call(_), Ok(body)) => self.answer(id, Ok(body), now),
            (Mode::Call(CallKind::Raw), Err(e)) => self.answer(id, Err(e), now),
            (Mode::Call(CallKind::Api), Err(e)) => self.api_error(id, dc, e, now),
        }
    }

    fn answer(&mut self, id: RequestId, result: Result<Vec<u8>, RpcFailure>, now: Instant) {
        self.requests.remove(&id);
        self.flood.completed(id, now);
        self.events.push_back(ClientEvent::Answer { id, result });
    }

    /// An API call's `rpc_error`: migrations, waits and retries handled here; the rest goes to the caller.
    fn api_error(&mut self, id: RequestId, dc: Option<DcId>, e: RpcFailure, now: Instant) {
        let Ok(err) = RpcError::classify(e.code, &e.message) else {
            self.answer(id, Err(e), now);
            return;
        };
        match err.kind {
            ErrorKind::Migrate { reason, dc: to } => {
                self.flood.completed(id, now);
                let Some(mut ticket) = self.requests.get(&id).map(|r| r.ticket) else {
                    return;
                };
                let route = self.router.on_migrate(&mut ticket, reason, to, now);
                if let Some(r) = self.requests.get_mut(&id) {
                    r.ticket = ticket;
                    r.state = ReqState::Routing;
                }
                match route {
                    Ok(route) => {
                        if reason.moves_home() {
                            // Saved when the router reports `Change::Home`.
                            self.record.set_home(to);
                        }
                        if let Route::Send(link) = route {
                            self.send_on(id, link, true, now);
                        }
                    }
                    Err(re) => self.fail(id, CallError::Route(re), now),
                }
            }
            ErrorKind::Wait { .. } | ErrorKind::Retry(_) => {
                let Some(r) = self.requests.get_mut(&id) else {
                    return;
                };
                let Some(dc) = dc else {
                    return;
                };
                let key = MethodKey { method: r.method(), dc };
                match self.flood.on_error(id, key, None, &mut r.retry, &err, now) {
                    Ok(Verdict::Retry { .. }) => r.state = ReqState::Flood,
                    Ok(Verdict::Surface { .. } | Verdict::NotMine) | Err(_) => self.answer(id, Err(e), now),
                }
            }
            ErrorKind::Unauthorized(_) => {
                if dc.is_some_and(|dc| self.router.unauthorized(dc)) {
                    self.record.signed_out();
                    self.events.push_back(ClientEvent::SignedOut);
                }
                self.answer(id, Err(e), now);
            }
            _ => self.answer(id, Err(e), now),
        }
    }

    /// `dc` answered −404: it forgot the key. The key goes from the record and the router (saved), the DC's
    /// connections are closed, and what was in flight there is sent once more (under the new key the router's
    /// next connection makes).
    fn key_dropped(&mut self, now: Instant, dc: DcId) {
        self.stats.keys_dropped = self.stats.keys_dropped.saturating_add(1);
        let conns: Vec<ConnId> = self
            .slots
            .iter()
            .filter(|(_, s)| s.link.dc == dc)
            .map(|(c, _)| *c)
            .collect();
        for conn in &conns {
            self.slots.remove(conn);
            self.actions.push_back(HostAction::Close { conn: *conn });
        }
        self.record.drop_key(dc);
        match self.router.key_dropped(dc, now) {
            Ok(true) => {
                self.record.signed_out();
                self.events.push_back(ClientEvent::SignedOut);
            }
            Ok(false) => {}
            Err(_) => {}
        }
        for id in self.sent_on(&conns) {
            let Some(r) = self.requests.get_mut(&id) else {
                continue;
            };
            // The router forgot what was in flight on the DC: no `done` for them.
            r.state = ReqState::Routing;
            if r.resent || !matches!(r.mode, Mode::Call(_) | Mode::File { .. } | Mode::CdnConfig) {
                self.fail(id, CallError::KeyDropped(dc), now);
            } else {
                r.resent = true;
                self.route(id, now);
            }
        }
    }

    /// Treats request `id` as if its DC had answered it with this `rpc_error` now (the answer that may still come
    /// is ignored): fault injection for tests, or a host that gives up on a call. Returns whether `id` was in
    /// flight.
    pub fn inject_rpc_error(&mut self, now: Instant, id: RequestId, code: i32, message: &[u8]) -> bool {
        let Some(ReqState::Sent { conn, msg, .. }) = self.requests.get(&id).map(|r| r.state) else {
            return false;
        };
        self.answered(
            now,
            conn,
            msg,
            Err(RpcFailure {
                code,
                message: message.to_vec(),
            }),
        );
        self.step(now);
        true
    }

    /// The sign-in flow moved the home DC (`PHONE_MIGRATE_X`, a QR token's migration): saved as [`Change::Home`].
    pub fn move_home(&mut self, now: Instant, dc: DcId) {
        self.router.move_home(dc);
        self.record.set_home(dc);
        self.step(now);
    }

    /// The sign-in flow ended signed in as `user` on the home DC: saved as [`Change::SignedIn`]; authorized calls
    /// wait for that save.
    ///
    /// # Errors
    /// No home DC, or no room for it in the router's or the record's table.
    pub fn signed_in(&mut self, now: Instant, user: User) -> Result<(), RouteError> {
        let home = self.router.home().ok_or(RouteError::NoHome)?;
        self.record.signed_in(home, user).map_err(|_| RouteError::Full)?;
        self.router.signed_in(now)?;
        self.step(now);
        Ok(())
    }

    /// The account signed out (`auth.logOut` answered): saved as [`Change::SignedOut`].
    pub fn signed_out(&mut self, now: Instant) {
        self.router.signed_out();
        self.record.signed_out();
        self.step(now);
    }

    /// A `help.getConfig` result: the DC list replaced (router and record; saved as [`Change::Options`] when it
    /// changed).
    ///
    /// # Errors
    /// The config is malformed, for the other network, or empty; nothing changed.
    pub fn apply_config_result(&mut self, now: Instant, body: &[u8]) -> Result<ConfigReport, ConfigError> {
        let report = self.router.apply_config_result(body)?;
        let opts: Vec<DcOption> = self.router.options().copied().collect();
        if self.record.set_options(&opts).is_err() {
            // More addresses than a record keeps: the router has them for this run, the store the old list.
        }
        self.step(now);
        Ok(report)
    }

    /// The next change of [`Client::record`] to make durable; it stays the answer until [`Client::saved`].
    #[must_use]
    pub fn poll_save(&self) -> Option<Change> {
        self.router.poll_save().or_else(|| self.saves.first().copied())
    }

    /// The store made `change` durable: what waited for it may go out.
    pub fn saved(&mut self, now: Instant, change: Change) {
        if !self.router.saved(change) {
            self.saves.retain(|c| *c != change);
        }
        self.step(now);
    }

    /// The next thing to do with a socket.
    pub fn poll_action(&mut self) -> Option<HostAction> {
        self.actions.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        let ev = self.events.pop_front()?;
        if let ClientEvent::Downloaded { transfer, .. } = &ev
            && let Some(t) = self.transfers.get_mut(transfer)
        {
            // The next call that takes `now` asks for more parts.
            t.undrained = t.undrained.saturating_sub(1);
        }
        Some(ev)
    }

    /// Bytes to write on a connection's socket: `(conn, n)`, the first `n` bytes of `out` (at least
    /// [`Connection::min_transmit_len`]: 64 KiB plus framing for main connections, [`FILE_FRAME`] plus framing
    /// once a transfer opened media or CDN connections). Call until `None`.
    ///
    /// # Errors
    /// `out` is too small for the next frame.
    pub fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<(ConnId, usize)>, crate::error::BufferTooSmall> {
        // Parts the host made room for (events drained, upload bytes given) go out now.
        self.step(now);
        let mut broken = None;
        let mut found = None;
        for (id, slot) in &mut self.slots {
            if slot.sock != Sock::Up {
                continue;
            }
            let Some(c) = slot.conn.as_mut() else {
                continue;
            };
            let need = each!(c, c => c.min_transmit_len());
            if out.len() < need {
                return Err(crate::error::BufferTooSmall { required: need });
            }
            match each!(c, c => c.poll_transmit(now, rng, out)) {
                Ok(Some(n)) => {
                    found = Some((*id, n));
                    break;
                }
                Ok(None) => {}
                Err(_) => {
                    broken = Some(*id);
                    break;
                }
            }
        }
        if let Some(conn) = broken {
            self.broken(now, conn);
            self.step(now);
        }
        Ok(found)
    }

    /// Time passed: requests past their deadline fail ([`CallError::TimedOut`]), then each connection's timers
    /// (resends, acks, pings), the router's (idle connections, reopening after a backoff) and the flood
    /// scheduler's (waits ending).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
        for t in self.transfers.values_mut() {
            match &mut t.job {
                Job::Upload(u) => u.up.handle_timeout(now),
                Job::Download(d) => d.handle_timeout(now),
            }
        }
        let conns: Vec<ConnId> = self.slots.keys().copied().collect();
        for conn in conns {
            let Some(slot) = self.slots.get_mut(&conn) else {
                continue;
            };
            if slot.sock != Sock::Up {
                continue;
            }
            let Some(c) = slot.conn.as_mut() else {
                continue;
            };
            if each!(c, c => c.handle_timeout(now).is_err()) {
                self.broken(now, conn);
                continue;
            }
            self.drain(now, conn);
        }
        self.router.handle_timeout(now);
        self.step(now);
    }

    /// The earliest instant [`Client::handle_timeout`] has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter(|s| s.sock == Sock::Up)
            .filter_map(|s| s.conn.as_ref().and_then(|c| each!(c, c => c.poll_timeout())))
            .chain(self.router.poll_timeout())
            .chain(self.flood.poll_timeout())
            .chain(self.requests.values().filter_map(|r| r.deadline))
            .chain(
                self.transfers
                    .values()
                    .filter(|t| !t.ended)
                    .filter_map(|t| match &t.job {
                        Job::Upload(u) => u.up.poll_timeout(),
                        Job::Download(d) => d.poll_timeout(),
                    }),
            )
            .min()
    }

    /// Fails every request whose deadline is `now` or earlier, wherever it is: the flood scheduler and the router
    /// forget it (their table places freed), a query in flight is noted so its late answer is dropped and counted.
    fn expire(&mut self, now: Instant) {
        let due: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(state) = self.requests.get(&id).map(|r| r.state) else {
                continue;
            };
            match state {
                ReqState::Flood => {}
                ReqState::Routing => {
                    self.router.cancel(id);
                }
                ReqState::Sent { conn, msg, .. } => {
                    // The session keeps the query (it has no way to take one back), so its answer may still come.
                    self.finish_link(id, now);
                    if self.late.len() >= LATE_TRACKED {
                        self.late.pop_front();
                    }
                    self.late.push_back((conn, msg));
                }
            }
            self.stats.timed_out = self.stats.timed_out.saturating_add(1);
            self.fail(id, CallError::TimedOut, now);
        }
    }

    /// An answer no request waits for: if it is a timed-out query's, counted and forgotten.
    fn late_answer(&mut self, conn: ConnId, msg: MsgId) {
        if let Some(i) = self.late.iter().position(|&(c, m)| c == conn && m == msg) {
            self.late.remove(i);
            self.stats.late_answers = self.stats.late_answers.saturating_add(1);
        }
    }
}

/// File transfers: uploads and downloads run by [`client::files`](super::files) machines, their requests routed on
/// media connections ([`LinkKind::Media`], [`FileConnection`]s) to the file's DC, with the authorization copied there
/// as for any request.
impl<const RX: usize, const TX: usize, const M: usize> Client<RX, TX, M> {
    fn add_transfer(&mut self, now: Instant, job: Job) -> Result<TransferId, TransferError> {
        if self.transfers.len() >= self.cfg.max_transfers {
            return Err(TransferError::Full);
        }
        self.next_transfer = self.next_transfer.wrapping_add(1);
        let id = TransferId(self.next_transfer);
        self.transfers.insert(
            id,
            Transfer {
                job,
                cdn_wait: None,
                undrained: 0,
                ended: false,
            },
        );
        self.step(now);
        Ok(id)
    }

    fn upload_job(up: Upload) -> Job {
        Job::Upload(Box::new(UploadJob {
            up,
            wanted: None,
            given: None,
        }))
    }

    /// Uploads a file of `size` bytes under `file_id` (random, from the host's `CryptoRng`): the machine asks
    /// for its bytes part by part ([`ClientEvent::PartWanted`], answered with [`Client::upload_part`]), reports
    /// [`ClientEvent::PartSaved`], then [`ClientEvent::TransferDone`].
    ///
    /// # Errors
    /// Too many transfers, or the files machine refused the configuration or size; nothing changed.
    pub fn upload(
        &mut self,
        now: Instant,
        cfg: UploadConfig,
        file_id: i64,
        size: u64,
    ) -> Result<TransferId, TransferError> {
        if self.transfers.len() >= self.cfg.max_transfers {
            return Err(TransferError::Full);
        }
        let up = Upload::new(cfg, file_id, size).map_err(TransferError::File)?;
        self.add_transfer(now, Self::upload_job(up))
    }

    /// Resumes an upload from its persisted state ([`Client::transfer_state`]).
    ///
    /// # Errors
    /// As [`Client::upload`].
    pub fn resume_upload(
        &mut self,
        now: Instant,
        cfg: UploadConfig,
        state: &UploadState,
    ) -> Result<TransferId, TransferError> {
        if self.transfers.len() >= self.cfg.max_transfers {
            return Err(TransferError::Full);
        }
        let up = Upload::resume(cfg, state).map_err(TransferError::File)?;
        self.add_transfer(now, Self::upload_job(up))
    }

    /// Downloads the file at `location` (an `InputFileLocation`'s TL bytes) of `size` bytes if known: its bytes
    /// come as [`ClientEvent::Downloaded`] with their offsets, then [`ClientEvent::TransferDone`].
    ///
    /// # Errors
    /// Too many transfers, a CDN download (not carried yet), or the files machine refused the configuration,
    /// location or size; nothing changed.
    pub fn download(
        &mut self,
        now: Instant,
        cfg: DownloadConfig,
        location: &[u8],
        size: Option<u64>,
    ) -> Result<TransferId, TransferError> {
        if self.transfers.len() >= self.cfg.max_transfers {
            return Err(TransferError::Full);
        }
        let d = Download::new(cfg, location, size).map_err(TransferError::File)?;
        self.add_transfer(now, Job::Download(Box::new(d)))
    }

    /// Resumes a download from its persisted state ([`Client::transfer_state`], taken after the host stored the
    /// bytes it got).
    ///
    /// # Errors
    /// As [`Client::download`].
    pub fn resume_download(
        &mut self,
        now: Instant,
        cfg: DownloadConfig,
        location: &[u8],
        state: &DownloadState,
    ) -> Result<TransferId, TransferError> {
        if self.transfers.len() >= self.cfg.max_transfers {
            return Err(TransferError::Full);
        }
        let d = Download::resume(cfg, location, state).map_err(TransferError::File)?;
        self.add_transfer(now, Job::Download(Box::new(d)))
    }

    /// The bytes an upload asked for ([`ClientEvent::PartWanted`]): `bytes` must be the `len` bytes at `offset`.
    ///
    /// # Errors
    /// No such upload, or not the part it asked for; nothing changed.
    pub fn upload_part(
        &mut self,
        now: Instant,
        transfer: TransferId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), TransferError> {
        let t = self.transfers.get_mut(&transfer).ok_or(TransferError::Unknown)?;
        let Job::Upload(u) = &mut t.job else {
            return Err(TransferError::NotWanted);
        };
        if u.wanted != Some((offset, bytes.len())) || u.given.is_some() {
            return Err(TransferError::NotWanted);
        }
        u.given = Some((offset, bytes.to_vec()));
        self.step(now);
        Ok(())
    }

    /// A fresh location for a download whose file reference expired ([`ClientEvent::ReferenceExpired`]).
    ///
    /// # Errors
    /// No such download, or a location the files machine refuses; nothing changed.
    pub fn refresh_location(
        &mut self,
        now: Instant,
        transfer: TransferId,
        location: &[u8],
    ) -> Result<(), TransferError> {
        let t = self.transfers.get_mut(&transfer).ok_or(TransferError::Unknown)?;
        let Job::Download(d) = &mut t.job else {
            return Err(TransferError::Unknown);
        };
        d.refresh_location(location).map_err(TransferError::File)?;
        self.step(now);
        Ok(())
    }

    /// What to persist to resume a transfer; `None` for an unknown one.
    #[must_use]
    pub fn transfer_state(&self, transfer: TransferId) -> Option<TransferState> {
        self.transfers.get(&transfer).map(|t| match &t.job {
            Job::Upload(u) => TransferState::Upload(u.up.state()),
            Job::Download(d) => TransferState::Download(d.state()),
        })
    }

    /// A finished upload's `InputFile` written into `buf` (its length returned), to name it in a call.
    ///
    /// # Errors
    /// No such upload, or the files machine's error (not complete, buffer too small).
    pub fn upload_input_file(&self, transfer: TransferId, name: &[u8], buf: &mut [u8]) -> Result<usize, TransferError> {
        match self.transfers.get(&transfer).map(|t| &t.job) {
            Some(Job::Upload(u)) => u.up.input_file(name, buf).map_err(TransferError::File),
            _ => Err(TransferError::Unknown),
        }
    }

    /// Releases a transfer (ended, or given up): its requests still in flight are forgotten (their answers
    /// dropped). Returns whether it existed.
    pub fn finish_transfer(&mut self, now: Instant, transfer: TransferId) -> bool {
        if self.transfers.remove(&transfer).is_none() {
            return false;
        }
        let mine: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| matches!(r.mode, Mode::File { transfer: t, .. } if t == transfer))
            .map(|(id, _)| *id)
            .collect();
        for id in mine {
            match self.requests.get(&id).map(|r| r.state) {
                Some(ReqState::Sent { .. }) => self.finish_link(id, now),
                Some(ReqState::Routing) => {
                    self.router.cancel(id);
                }
                _ => {}
            }
            self.requests.remove(&id);
        }
        self.step(now);
        true
    }

    /// Open transfers (running or ended, not released).
    #[must_use]
    pub fn transfers(&self) -> usize {
        self.transfers.len()
    }

    /// Asks each running transfer for requests while the request table has room and its host keeps up. Returns
    /// whether any went out.
    fn pump(&mut self, now: Instant) -> bool {
        let mut any = false;
        let ids: Vec<TransferId> = self.transfers.keys().copied().collect();
        for transfer in ids {
            while self.requests.len() < self.cfg.max_requests {
                let Some(t) = self.transfers.get_mut(&transfer) else {
                    break;
                };
                if t.ended || t.cdn_wait.is_some() {
                    break;
                }
                let polled = match &mut t.job {
                    Job::Download(d) => {
                        if t.undrained >= self.cfg.max_undrained_parts {
                            break;
                        }
                        let mut buf = alloc::vec![0u8; MAX_LOCATION + 64];
                        d.poll_request(now, &mut buf).map(|r| r.map(|r| (r, buf)))
                    }
                    Job::Upload(u) => {
                        let mut buf = alloc::vec![0u8; u.up.max_request_len()];
                        let given = u.given.take();
                        let mut asked = None;
                        let r = u.up.poll_request(now, &mut buf, |offset, dst| match &given {
                            // A retried part may come before the one asked: only the asked bytes fill it.
                            Some((at, g)) if *at == offset && g.len() == dst.len() => {
                                dst.copy_from_slice(g);
                                true
                            }
                            _ => {
                                asked = Some((offset, dst.len()));
                                false
                            }
                        });
                        match (&r, asked) {
                            (Err(FileError::ReadFailed), Some(want)) => {
                                if u.wanted != Some(want) {
                                    u.wanted = Some(want);
                                    self.events.push_back(ClientEvent::PartWanted {
                                        transfer,
                                        offset: want.0,
                                        len: want.1,
                                    });
                                }
                                break;
                            }
                            (Ok(Some(_)), _) => u.wanted = None,
                            _ => u.given = given,
                        }
                        r.map(|r| r.map(|r| (r, buf)))
                    }
                };
                match polled {
                    Ok(Some((req, mut buf))) => {
                        buf.truncate(req.len);
                        let id = self.new_id();
                        let (target, media) = match req.dc {
                            Some(dc) if req.cdn => (Target::Cdn(dc), false),
                            Some(dc) => (Target::Dc(dc), true),
                            None => (Target::Home, true),
                        };
                        self.requests.insert(
                            id,
                            Request {
                                ticket: Ticket::new(id, target, media),
                                retry: RetryState::default(),
                                body: buf,
                                mode: Mode::File { transfer, tag: req.tag },
                                state: ReqState::Routing,
                                resent: false,
                                deadline: None,
                            },
                        );
                        any = true;
                        self.route(id, now);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.transfer_failed(transfer, e);
                        break;
                    }
                }
            }
        }
        any
    }

    fn transfer_failed(&mut self, transfer: TransferId, error: FileError) {
        if let Some(t) = self.transfers.get_mut(&transfer)
            && !t.ended
        {
            t.ended = true;
            self.events.push_back(ClientEvent::TransferFailed { transfer, error });
        }
    }

    fn transfer_done(&mut self, transfer: TransferId) {
        if let Some(t) = self.transfers.get_mut(&transfer)
            && !t.ended
        {
            t.ended = true;
            self.events.push_back(ClientEvent::TransferDone { transfer });
        }
    }

    /// A transfer's request was answered (a result or an `rpc_error`).
    fn file_answer(&mut self, transfer: TransferId, tag: Tag, result: Result<Vec<u8>, RpcFailure>, now: Instant) {
        let Some(t) = self.transfers.get_mut(&transfer) else {
            return;
        };
        if t.ended {
            return;
        }
        match &mut t.job {
            Job::Upload(u) => {
                let p = match &result {
                    Ok(body) => u.up.handle_result(now, tag, body),
                    Err(e) => u.up.handle_rpc_error(now, tag, e.code, &e.message),
                };
                match p {
                    Ok(UploadProgress::Saved { parts_done, parts }) => self.events.push_back(ClientEvent::PartSaved {
                        transfer,
                        parts_done,
                        parts,
                    }),
                    Ok(UploadProgress::Complete) => self.transfer_done(transfer),
                    Ok(_) => {}
                    Err(e) => self.transfer_failed(transfer, e),
                }
            }
            Job::Download(d) => {
                let mut result = result;
                let p = match &mut result {
                    Ok(body) => d.handle_result(now, tag, body),
                    Err(e) => d.handle_rpc_error(now, tag, e.code, &e.message),
                };
                let complete = d.is_complete();
                match p {
                    Ok(DownloadProgress::Data { offset, bytes }) => {
                        let bytes = bytes.to_vec();
                        t.undrained = t.undrained.saturating_add(1);
                        self.events.push_back(ClientEvent::Downloaded {
                            transfer,
                            offset,
                            bytes,
                        });
                        if complete {
                            self.transfer_done(transfer);
                        }
                    }
                    Ok(DownloadProgress::ReferenceExpired) => {
                        self.events.push_back(ClientEvent::ReferenceExpired { transfer });
                    }
                    Ok(DownloadProgress::CdnRedirect { dc }) => {
                        if !self.cdn_keys.contains_key(&dc) {
                            t.cdn_wait = Some(dc);
                            self.fetch_cdn_config(now);
                        }
                    }
                    Ok(DownloadProgress::CdnRefused { offset }) => {
                        self.events.push_back(ClientEvent::CdnRefused { transfer, offset });
                    }
                    // A migration names the DC in the next requests (routed there, the authorization copied); a
                    // delay or resend is the files machine's own timer.
                    Ok(_) => {}
                    Err(e) => self.transfer_failed(transfer, e),
                }
            }
        }
    }

    /// Asks the home DC for `help.getCdnConfig` (one call at a time, [`MAX_CDN_CONFIGS`] in all); with none left,
    /// the downloads waiting for a CDN's key fail.
    fn fetch_cdn_config(&mut self, now: Instant) {
        if self.cdn_pending {
            return;
        }
        if self.cdn_fetches >= MAX_CDN_CONFIGS || self.requests.len() >= self.cfg.max_requests {
            self.cdn_config(None);
            return;
        }
        self.cdn_fetches = self.cdn_fetches.saturating_add(1);
        self.cdn_pending = true;
        let id = self.new_id();
        self.requests.insert(
            id,
            Request {
                ticket: Ticket::new(id, Target::Home, false),
                retry: RetryState::default(),
                body: encode(&functions::HelpGetCdnConfig {}),
                mode: Mode::CdnConfig,
                state: ReqState::Routing,
                resent: false,
                deadline: None,
            },
        );
        self.route(id, now);
    }

    /// `help.getCdnConfig` answered (`None`: it failed): the keys listed are kept; downloads waiting for a CDN
    /// still not listed fail.
    fn cdn_config(&mut self, body: Option<&[u8]>) {
        self.cdn_pending = false;
        if let Some(Ok(Some(enums::CdnConfig::CdnConfig(cfg)))) =
            body.map(|b| functions::HelpGetCdnConfig::decode_result(b).map(|c| c.get()))
        {
            for k in cfg.public_keys.iter() {
                let Some(enums::CdnPublicKey::CdnPublicKey(k)) = k.get() else {
                    continue;
                };
                let Some(dc) = DcId::new(i64::from(k.dc_id)) else {
                    continue;
                };
                if self.cdn_keys.contains_key(&dc) || self.cdn_keys.len() >= MAX_CDN_KEYS {
                    continue;
                }
                if let Ok(key) = crate::crypto::pem::parse_public_pem(k.public_key) {
                    let leaked: &'static [RsaPublicKey] = Box::leak(Box::new([key]));
                    self.cdn_keys.insert(dc, leaked);
                }
            }
        }
        let waiting: Vec<(TransferId, DcId)> = self
            .transfers
            .iter()
            .filter_map(|(id, t)| t.cdn_wait.map(|dc| (*id, dc)))
            .collect();
        for (transfer, dc) in waiting {
            if self.cdn_keys.contains_key(&dc) {
                if let Some(t) = self.transfers.get_mut(&transfer) {
                    t.cdn_wait = None;
                }
            } else {
                self.transfer_failed(
                    transfer,
                    FileError::Refused {
                        code: 0,
                        name: heapless::Vec::from_slice(b"CDN_KEY_UNKNOWN").unwrap_or_default(),
                    },
                );
            }
        }
    }

    /// A transfer's request ended without an answer: the files machine sends it again (counted as a retry).
    fn file_failed(&mut self, transfer: TransferId, tag: Tag, now: Instant) {
        let Some(t) = self.transfers.get_mut(&transfer) else {
            return;
        };
        if t.ended {
            return;
        }
        let r = match &mut t.job {
            Job::Upload(u) => u.up.handle_failed(now, tag).map(|_| ()),
            Job::Download(d) => d.handle_failed(now, tag).map(|_| ()),
        };
        if let Err(e) = r {
            self.transfer_failed(transfer, e);
        }
    }
}

/// A connection's event, copied out of its receive buffer.
enum Owned {
    Result(MsgId, Vec<u8>),
    Error(MsgId, i32, Vec<u8>),
    Failed(MsgId, FailReason),
    Update(Vec<u8>),
    Reset,
    Transport(i32),
}
