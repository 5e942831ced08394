//! A Telegram client host for the end-to-end tests against test_dc (`tests/client_e2e.rs`), the sign-in timings
//! (`examples/client_signin_times.rs`) and the echo bot (`examples/echo_bot.rs`): a thin blocking host of the
//! crate's client machine, [`client::Client`](mtproto_sansio::client::Client).
//!
//! The machine owns the composition (a [`Connection`](mtproto_sansio::session::Connection) per DC, the router,
//! the flood scheduler, the record, `initConnection`, authorization copies, −404 key drops); this host owns what a
//! host owns: the sockets ([`Conn`], one per connection the machine asks for), the wall clock, the random
//! generator and the [`Store`]. One turn of its loop ([`TgClient::turn`]) saves what the machine asks to save
//! (before anything that waited for it goes out), opens and closes sockets, drains the machine's events, writes
//! what it transmits, reads the sockets until the machine's next timer, and passes time.
//!
//! [`TgClient::invoke`] and the sign-in flows wait for their own answer, but the machine keeps many requests in
//! flight: updates, answers to other requests and the machine's own calls move in the same turns.
//!
//! Faults ([`Faults`]): a seeded schedule, decided per query from the seed and the query's index (the machine's
//! [`ClientEvent::Sent`]), so the same seed injects the same faults at the same queries: the connection is dropped
//! after the query is written and before its answer is read (the session resends on a new socket), an API call is
//! answered `420 FLOOD_WAIT_1` in place of the DC ([`Client::inject_rpc_error`]; the DC's own answer is ignored), or
//! the whole client is killed ([`TgError::Killed`]), which the test answers by dropping everything and starting
//! again from the store.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use mtproto_sansio::client::files::{DownloadConfig, UploadConfig};
use mtproto_sansio::client::machine::{
    CallError, CallKind, Client, ClientEvent, Config, ConnId, HostAction, TransferId,
};
use mtproto_sansio::client::router::{DcOption, RouteError, RouterConfig, Target};
use mtproto_sansio::client::rpc_error::{ErrorKind, RpcError};
use mtproto_sansio::client::signin::{Progress, SignIn, SignInError, SrpAnswer, Stage};
use mtproto_sansio::client::srp::{PasswordKdf, compute_check};
use mtproto_sansio::client::store::{Record, Store, User};
use mtproto_sansio::client::{DcId, RequestId};
use mtproto_sansio::crypto::dh::PrimeCache;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::api::{Obj, RemoteCall, Seq, enums, functions, types};
use mtproto_sansio::tl::invoke::InitConnection;
use mtproto_sansio::tl::{self, TlWrite};
use mtproto_sansio::transport::TransportConfig;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::client::{ClientError, Conn, DC_ID, intern_keys, now, unix_micros_at_zero};
use crate::link::Transport;

/// How long one request may take before the client gives up on it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Failed openings of one connection in a row before what waits for it fails (the router's
/// `max_connect_attempts`).
pub const MAX_RECONNECTS: u32 = 8;

/// How the client introduces itself in `initConnection` (the first call of every session).
pub const INIT: InitConnection<'static> = InitConnection {
    api_id: 1,
    device_model: b"mtproto-sansio test client",
    system_version: b"test",
    app_version: b"1.0",
    system_lang_code: b"en",
    lang_pack: b"",
    lang_code: b"en",
};

/// An answer: the result's bytes, or the `rpc_error`'s code and message.
pub type Answer = Result<Vec<u8>, (i32, String)>;

/// Why the client stopped.
#[derive(Debug)]
pub enum TgError {
    /// The connection failed for good.
    Client(ClientError),
    /// The store refused.
    Store(String),
    /// The router could not route a request.
    Route(RouteError),
    /// The sign-in flow ended with an error.
    SignIn(SignInError),
    /// The flood scheduler surfaced a wait or a retry that ran out.
    Flood(i32, String),
    /// The fault schedule killed the client: start again from the store.
    Killed,
    /// The DC forgot the key of this DC's connection (−404): dropped, the request may be sent again.
    KeyDropped(DcId),
    /// An answer that makes no sense here.
    Protocol(String),
}

impl fmt::Display for TgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for TgError {}

impl From<ClientError> for TgError {
    fn from(e: ClientError) -> Self {
        TgError::Client(e)
    }
}

impl From<RouteError> for TgError {
    fn from(e: RouteError) -> Self {
        TgError::Route(e)
    }
}

impl From<SignInError> for TgError {
    fn from(e: SignInError) -> Self {
        TgError::SignIn(e)
    }
}

/// A seeded fault schedule. Each probability is per request (per query sent).
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Seed of the schedule.
    pub seed: u64,
    /// Probability that the connection is dropped after the query is written and before its answer is read.
    pub drop_connection: f64,
    /// Probability that an API call (not a sign-in call) is answered `420 FLOOD_WAIT_1` by the fault layer.
    pub flood_wait: f64,
    /// Probability that the client is killed after a query is written (its answer is never read).
    pub kill: f64,
}

impl Faults {
    /// The faults of request `n`: (drop, flood, kill).
    fn at(&self, n: u64) -> (bool, bool, bool) {
        let mut r = StdRng::seed_from_u64(self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let drop = r.random_bool(self.drop_connection.clamp(0.0, 1.0));
        let flood = r.random_bool(self.flood_wait.clamp(0.0, 1.0));
        let kill = r.random_bool(self.kill.clamp(0.0, 1.0));
        (drop, flood, kill)
    }
}

/// What one client did: each query is one round trip (requests go one at a time); each handshake three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Queries sent (each awaited before the next).
    pub queries: u64,
    /// Auth keys made.
    pub handshakes: u64,
    /// Stored keys the DC had forgotten (−404), dropped and replaced.
    pub keys_dropped: u64,
    /// Connections dropped by the fault schedule.
    pub drops: u64,
    /// Flood waits injected and waited out.
    pub floods: u64,
    /// Authorizations copied to another DC.
    pub imports: u64,
}

/// The user's part of a sign-in, asked by [`TgClient::sign_in`].
#[derive(Debug)]
pub enum Prompt<'a> {
    /// A login code was sent: answer [`Reply::Code`].
    Code,
    /// The account has a password: answer [`Reply::Password`].
    Password,
    /// The number has no account: answer [`Reply::SignUp`].
    SignUp,
    /// Show this QR token (another client accepts it): answer [`Reply::Wait`].
    QrToken(&'a [u8]),
}

/// The user's answer to a [`Prompt`].
#[derive(Debug)]
pub enum Reply {
    /// The login code.
    Code(Vec<u8>),
    /// The two-step verification password.
    Password(Vec<u8>),
    /// First and last name for sign-up.
    SignUp(Vec<u8>, Vec<u8>),
    /// Nothing to give: wait.
    Wait,
}

/// The client's configuration.
#[derive(Clone, Debug)]
pub struct TgConfig {
    /// The DC's RSA keys.
    pub rsa_keys: Vec<RsaPublicKey>,
    /// The DCs to start from on a first start (the bootstrap list); the first is the home DC until a sign-in says
    /// otherwise.
    pub bootstrap: Vec<(DcId, SocketAddr)>,
    /// CDN DCs' addresses (options marked `cdn`, saved with the bootstrap list): where the machine opens CDN
    /// connections when a download is redirected. Empty by default.
    pub cdn: Vec<(DcId, SocketAddr)>,
    /// The transport.
    pub transport: Transport,
    /// The fault schedule.
    pub faults: Faults,
    /// `api_id`.
    pub api_id: i32,
    /// `api_hash`.
    pub api_hash: Vec<u8>,
}

impl TgConfig {
    /// Test DCs, no faults, a test api_id.
    pub fn new(rsa_keys: Vec<RsaPublicKey>, bootstrap: Vec<(DcId, SocketAddr)>) -> Self {
        Self {
            rsa_keys,
            bootstrap,
            cdn: Vec::new(),
            transport: Transport::DEFAULT,
            faults: Faults::default(),
            api_id: 1,
            api_hash: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }
}

/// The client: see the module docs.
pub struct TgClient<S: Store> {
    cfg: TgConfig,
    store: S,
    machine: Box<Client>,
    socks: HashMap<ConnId, Conn>,
    /// The DC of every connection the machine asked for.
    dcs: HashMap<ConnId, DcId>,
    /// Answers not taken yet.
    answers: HashMap<RequestId, Result<Answer, TgError>>,
    /// The host's API calls (faults inject flood waits into these only).
    api: HashSet<RequestId>,
    /// Connections to drop once what was written is out (the fault schedule).
    to_drop: Vec<ConnId>,
    killed: bool,
    /// Updates pushed by any DC, oldest first.
    pub updates: Vec<Vec<u8>>,
    rng: StdRng,
    /// What the client did so far.
    pub stats: Stats,
    /// Host faults so far (the rest of [`Stats`] is the machine's).
    drops: u64,
    floods: u64,
    out: Vec<u8>,
    /// Files being uploaded through the machine, read when it asks for a part.
    upload_src: HashMap<TransferId, Vec<u8>>,
    /// Files being downloaded through the machine, written where each part's offset says.
    download_dst: HashMap<TransferId, Vec<u8>>,
    /// Transfers that ended: `Ok` done, `Err` why not.
    transfers_ended: HashMap<TransferId, Result<(), String>>,
    /// CDN parts refused (a hash mismatch) over all downloads.
    pub cdn_refused: u64,
}

impl<S: Store> fmt::Debug for TgClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TgClient")
            .field("machine", &self.machine)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn encode<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    // The buffer has the exact size the writer asked for.
    let _ = tl::encode(v, &mut out);
    out
}

fn unix_now(t: Instant) -> UnixTime {
    UnixTime(unix_micros_at_zero().saturating_add(t.as_micros()) / 1_000_000)
}

impl<S: Store> TgClient<S>
where
    S::Error: fmt::Debug,
{
    /// Starts from what `store` holds (a first start when it holds nothing: the bootstrap list is saved); nothing is
    /// sent yet.
    ///
    /// # Errors
    /// The store cannot be read, or the record does not fit the machine.
    pub fn start(cfg: TgConfig, mut store: S) -> Result<Self, TgError> {
        let loaded: Option<Record> = store.load().map_err(|e| TgError::Store(format!("{e:?}")))?;
        let bootstrap: Vec<DcOption> = cfg
            .bootstrap
            .iter()
            .map(|(dc, addr)| option(*dc, *addr))
            .chain(cfg.cdn.iter().map(|(dc, addr)| DcOption {
                cdn: true,
                ..option(*dc, *addr)
            }))
            .collect();
        let mut mc = Config::new(
            intern_keys(&cfg.rsa_keys),
            TransportConfig {
                framing: cfg.transport.framing,
                obfuscated: cfg.transport.obfuscated,
                dc_id: Some(DC_ID),
            },
        );
        mc.router = RouterConfig {
            test_mode: true,
            // Loopback DCs: a lost connection is opened again at once, a failing one retried soon.
            connect_backoff: Duration::from_millis(50),
            connect_backoff_max: Duration::from_secs(1),
            max_connect_attempts: u8::try_from(MAX_RECONNECTS).unwrap_or(u8::MAX),
            ..RouterConfig::DEFAULT
        };
        mc.init = Some(INIT);
        let t = now();
        let machine = Client::new(mc, loaded, &bootstrap, t, unix_now(t))
            .map_err(|e| TgError::Protocol(format!("start: {e}")))?;
        // Keys, nonces and obfuscated inits come from the OS: the fault seed decides only the faults (a seeded
        // generator here would repeat obfuscated inits across clients, which the DC refuses as replays).
        let mut seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
        let mut c = Self {
            cfg,
            store,
            machine: Box::new(machine),
            socks: HashMap::new(),
            dcs: HashMap::new(),
            answers: HashMap::new(),
            api: HashSet::new(),
            to_drop: Vec::new(),
            killed: false,
            updates: Vec::new(),
            rng: StdRng::from_seed(seed),
            stats: Stats::default(),
            drops: 0,
            floods: 0,
            out: Vec::new(),
            upload_src: HashMap::new(),
            download_dst: HashMap::new(),
            transfers_ended: HashMap::new(),
            cdn_refused: 0,
        };
        c.persist()?;
        Ok(c)
    }

    /// The record as the machine keeps it (saved at every change it reported).
    pub fn record(&self) -> &Record {
        self.machine.record()
    }

    /// The store (tests look at what was saved).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back (a test reopens it to restart).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The home DC.
    pub fn home(&self) -> Option<DcId> {
        self.machine.home()
    }

    /// Signed in (from a flow or from the store).
    pub fn is_signed_in(&self) -> bool {
        self.machine.is_signed_in()
    }

    /// Saves every change the machine reports and confirms it, so that what waited for it may go out.
    fn persist(&mut self) -> Result<(), TgError> {
        while let Some(change) = self.machine.poll_save() {
            self.store
                .save(self.machine.record(), change)
                .map_err(|e| TgError::Store(format!("{e:?}")))?;
            self.machine.saved(now(), change);
        }
        Ok(())
    }

    fn sync_stats(&mut self) {
        let m = self.machine.stats();
        self.stats = Stats {
            queries: m.queries,
            handshakes: m.handshakes,
            keys_dropped: m.keys_dropped,
            drops: self.drops,
            floods: self.floods,
            imports: m.imports,
        };
    }

    /// One turn of the host loop: saves, socket actions, events, transmits, then reads until `deadline` or the
    /// machine's next timer, whichever comes first.
    ///
    /// # Errors
    /// The store refused, or the fault schedule killed the client.
    fn turn(&mut self, deadline: Instant) -> Result<(), TgError> {
        if self.killed {
            return Err(TgError::Killed);
        }
        self.persist()?;
        while let Some(a) = self.machine.poll_action() {
            match a {
                HostAction::Open { conn, option } => {
                    self.socks.remove(&conn);
                    self.dcs.insert(conn, option.dc);
                    let addr = SocketAddr::new(option.addr, option.port);
                    match Conn::connect(addr, self.cfg.transport, None, &mut self.rng) {
                        Ok(c) => {
                            self.socks.insert(conn, c);
                            self.machine.connected(now(), conn, &mut self.rng);
                        }
                        Err(_) => self.machine.connect_failed(now(), conn),
                    }
                }
                HostAction::Close { conn } => {
                    self.socks.remove(&conn);
                }
            }
            self.persist()?;
        }
        self.events();
        self.transmit()?;
        for conn in std::mem::take(&mut self.to_drop) {
            if self.socks.remove(&conn).is_some() {
                self.drops += 1;
                self.machine.disconnected(now(), conn);
            }
        }
        if self.killed {
            self.sync_stats();
            return Err(TgError::Killed);
        }
        // An action that came up since (a part the host gave let a transfer route a request) waits for the next
        // turn: it is not polled here, where it would be lost.
        self.persist()?;
        self.read(deadline)?;
        let t = now();
        if self.machine.poll_timeout().is_some_and(|at| at <= t) {
            self.machine.handle_timeout(t);
        }
        self.events();
        self.sync_stats();
        Ok(())
    }

    /// Takes the machine's events: answers kept for their callers, updates collected, faults decided per query.
    fn events(&mut self) {
        while let Some(ev) = self.machine.poll_event() {
            match ev {
                ClientEvent::Answer { id, result } => {
                    self.api.remove(&id);
                    let a = result.map_err(|e| (e.code, String::from_utf8_lossy(&e.message).into_owned()));
                    self.answers.insert(id, Ok(a));
                }
                ClientEvent::Failed { id, error } => {
                    self.api.remove(&id);
                    self.answers.insert(id, Err(call_error(error)));
                }
                ClientEvent::Update { body, .. } => self.updates.push(body),
                ClientEvent::Sent { id, conn, .. } => {
                    let n = self.machine.stats().queries.saturating_sub(1);
                    let (drop, flood, kill) = self.cfg.faults.at(n);
                    if flood && self.api.contains(&id) {
                        self.floods += 1;
                        self.machine.inject_rpc_error(now(), id, 420, b"FLOOD_WAIT_1");
                        continue;
                    }
                    if kill {
                        self.killed = true;
                    }
                    if drop {
                        self.to_drop.push(conn);
                    }
                }
                ClientEvent::SessionReset { .. } | ClientEvent::SignedOut => {}
                ClientEvent::PartWanted { transfer, offset, len } => {
                    let part = usize::try_from(offset).ok().and_then(|at| {
                        self.upload_src
                            .get(&transfer)
                            .and_then(|d| d.get(at..at.saturating_add(len)))
                    });
                    let r = match part {
                        Some(part) => self.machine.upload_part(now(), transfer, offset, part),
                        None => Err(mtproto_sansio::client::machine::TransferError::NotWanted),
                    };
                    if let Err(e) = r {
                        self.transfers_ended
                            .insert(transfer, Err(format!("part at {offset}: {e:?}")));
                    }
                }
                ClientEvent::Downloaded {
                    transfer,
                    offset,
                    bytes,
                } => {
                    if let (Some(out), Ok(at)) = (self.download_dst.get_mut(&transfer), usize::try_from(offset)) {
                        let end = at.saturating_add(bytes.len());
                        if out.len() < end {
                            out.resize(end, 0);
                        }
                        if let Some(dst) = out.get_mut(at..end) {
                            dst.copy_from_slice(&bytes);
                        }
                    }
                }
                ClientEvent::CdnRefused { .. } => self.cdn_refused += 1,
                ClientEvent::TransferDone { transfer } => {
                    self.transfers_ended.insert(transfer, Ok(()));
                }
                ClientEvent::TransferFailed { transfer, error } => {
                    self.transfers_ended.insert(transfer, Err(format!("{error:?}")));
                }
                // Nothing here refreshes a file reference, and saved parts need no action.
                ClientEvent::PartSaved { .. } => {}
                ClientEvent::ReferenceExpired { transfer } => {
                    self.transfers_ended
                        .insert(transfer, Err("FILE_REFERENCE_EXPIRED".to_owned()));
                }
            }
        }
    }

    /// Writes what the machine transmits; a socket that fails is reported lost.
    fn transmit(&mut self) -> Result<(), TgError> {
        // Large enough for a media connection's frames (1 MiB parts) once the machine runs a transfer.
        let need = if self.upload_src.is_empty() && self.download_dst.is_empty() {
            70_000
        } else {
            2 << 20
        };
        if self.out.len() < need {
            self.out.resize(need, 0);
        }
        loop {
            let sent = self
                .machine
                .poll_transmit(now(), &mut self.rng, &mut self.out)
                .map_err(|e| TgError::Protocol(format!("transmit buffer: {e}")))?;
            let Some((conn, n)) = sent else {
                return Ok(());
            };
            let wire = self.out.get(..n).unwrap_or_default();
            let ok = match self.socks.get_mut(&conn) {
                Some(s) => s.write_raw(wire, &mut self.rng).is_ok(),
                None => true,
            };
            if !ok {
                self.socks.remove(&conn);
                self.machine.disconnected(now(), conn);
            }
            self.events();
        }
    }

    /// Reads every socket once, sharing the wait until `deadline` (or the machine's timer) between them, and feeds
    /// the machine; a socket at its end is reported lost.
    fn read(&mut self, deadline: Instant) -> Result<(), TgError> {
        let t = now();
        let due = self.machine.poll_timeout().map_or(deadline, |at| at.min(deadline));
        let conns: Vec<ConnId> = self.socks.keys().copied().collect();
        if conns.is_empty() {
            std::thread::sleep(due.saturating_duration_since(t).min(Duration::from_millis(50)));
            return Ok(());
        }
        // One socket: wait on it until the timer. Several: a blocking read on one must not hold back another
        // that has data, so each gets a short slice and the loop turns again.
        let wait = due.saturating_duration_since(t);
        let slice = if conns.len() > 1 {
            wait.min(Duration::from_millis(2))
        } else {
            wait
        }
        .max(Duration::from_millis(1));
        for conn in conns {
            let Some(s) = self.socks.get_mut(&conn) else {
                continue;
            };
            let until = now().saturating_add(slice);
            match s.read_raw(until, &mut self.rng) {
                Ok(true) => self.feed(conn),
                Ok(false) => {}
                Err(_) => {
                    self.socks.remove(&conn);
                    self.machine.disconnected(now(), conn);
                }
            }
            if self.killed {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Hands what `conn` read to the machine, draining its events when it asks.
    fn feed(&mut self, conn: ConnId) {
        loop {
            let Some(s) = self.socks.get_mut(&conn) else {
                return;
            };
            if s.input().is_empty() {
                return;
            }
            let n = self.machine.handle_input(now(), conn, s.input());
            if let Some(s) = self.socks.get_mut(&conn) {
                s.consume(n);
            }
            // 0: the machine wants its events drained (and its answers sent) first.
            self.events();
            if n == 0 && self.machine.poll_event().is_none() {
                let _ = self.transmit();
            }
        }
    }

    /// Pumps for up to `wait` (opening the home DC's connection if needed) and hands over every update pushed so
    /// far (also those that came in with answers), oldest first.
    ///
    /// # Errors
    /// The store refused, or the fault schedule killed the client.
    pub fn pump_updates(&mut self, wait: Duration) -> Result<Vec<Vec<u8>>, TgError> {
        let deadline = now().saturating_add(wait);
        loop {
            self.turn(deadline)?;
            if now() >= deadline {
                return Ok(std::mem::take(&mut self.updates));
            }
        }
    }

    /// Drops the home DC's connection (the session stays; the machine opens a new socket for it): what the DC pushes
    /// meanwhile is lost, as on a real network.
    pub fn drop_home_connection(&mut self) {
        let Some(home) = self.machine.home() else {
            return;
        };
        let conns: Vec<ConnId> = self
            .dcs
            .iter()
            .filter(|(c, dc)| **dc == home && self.socks.contains_key(c))
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            self.socks.remove(&conn);
            self.machine.disconnected(now(), conn);
        }
    }

    /// Turns the loop until `transfer` ends, then releases it.
    fn wait_transfer(&mut self, transfer: TransferId) -> Result<(), TgError> {
        let deadline = now().saturating_add(CALL_TIMEOUT);
        loop {
            if let Some(r) = self.transfers_ended.remove(&transfer) {
                self.machine.finish_transfer(now(), transfer);
                return r.map_err(TgError::Protocol);
            }
            if now() >= deadline {
                self.machine.finish_transfer(now(), transfer);
                return Err(TgError::Client(ClientError::Timeout));
            }
            self.turn(deadline)?;
        }
    }

    /// Uploads `data` as file `file_id` through the machine (parts on a media connection, each read from `data`
    /// when the machine asks). Returns the `InputFile` naming it.
    ///
    /// # Errors
    /// The machine refused the transfer, it failed, or it took longer than [`CALL_TIMEOUT`].
    pub fn upload(&mut self, cfg: UploadConfig, file_id: i64, data: &[u8]) -> Result<Vec<u8>, TgError> {
        self.persist()?;
        let t = self
            .machine
            .upload(now(), cfg, file_id, data.len() as u64)
            .map_err(|e| TgError::Protocol(format!("upload: {e:?}")))?;
        self.upload_src.insert(t, data.to_vec());
        let mut input = vec![0u8; 256];
        let r = (|| {
            // Done: the `InputFile` is written before the transfer is released.
            let deadline = now().saturating_add(CALL_TIMEOUT);
            loop {
                match self.transfers_ended.get(&t) {
                    Some(Ok(())) => {
                        let n = self
                            .machine
                            .upload_input_file(t, b"file", &mut input)
                            .map_err(|e| TgError::Protocol(format!("input file: {e:?}")))?;
                        input.truncate(n);
                        return self.wait_transfer(t);
                    }
                    Some(Err(_)) => return self.wait_transfer(t),
                    None if now() >= deadline => return self.wait_transfer(t),
                    None => self.turn(deadline)?,
                }
            }
        })();
        self.upload_src.remove(&t);
        r.map(|()| input)
    }

    /// Downloads the file at `location` through the machine (media connections; through a CDN when `cfg.cdn`
    /// and the DC redirects). Returns its bytes.
    ///
    /// # Errors
    /// The machine refused the transfer, it failed, or it took longer than [`CALL_TIMEOUT`].
    pub fn download(&mut self, cfg: DownloadConfig, location: &[u8], size: Option<u64>) -> Result<Vec<u8>, TgError> {
        self.persist()?;
        let t = self
            .machine
            .download(now(), cfg, location, size)
            .map_err(|e| TgError::Protocol(format!("download: {e:?}")))?;
        self.download_dst.insert(t, Vec::new());
        let r = self.wait_transfer(t);
        let out = self.download_dst.remove(&t).unwrap_or_default();
        r.map(|()| out)
    }

    /// Turns the loop until request `id` has its answer.
    fn wait(&mut self, id: RequestId) -> Result<Answer, TgError> {
        let deadline = now().saturating_add(CALL_TIMEOUT);
        loop {
            if let Some(a) = self.answers.remove(&id) {
                return a;
            }
            if now() >= deadline {
                return Err(TgError::Client(ClientError::Timeout));
            }
            self.turn(deadline)?;
        }
    }

    fn submit(&mut self, target: Target, body: &[u8], kind: CallKind) -> Result<RequestId, TgError> {
        self.persist()?;
        self.machine
            .invoke(now(), target, body, kind)
            .map_err(|e| TgError::Protocol(format!("invoke: {e}")))
    }

    /// An API call to `target`; the machine routes it (migrations, authorization copies, connections) and holds it
    /// through flood waits and retries under its budget. The answer, or the error the DC gave.
    ///
    /// # Errors
    /// Routing, connections, a surfaced flood wait, the fault schedule's kill.
    pub fn invoke(&mut self, target: Target, body: &[u8]) -> Result<Answer, TgError> {
        let id = self.submit(target, body, CallKind::Api)?;
        self.api.insert(id);
        match self.wait(id)? {
            Ok(b) => Ok(Ok(b)),
            Err((code, msg)) => match RpcError::classify(code, msg.as_bytes()).map(|e| e.kind) {
                // What the flood scheduler surfaced: over the budget, or out of retries.
                Ok(ErrorKind::Wait { .. } | ErrorKind::Retry(_)) => Err(TgError::Flood(code, msg)),
                _ => Ok(Err((code, msg))),
            },
        }
    }
    /// `users.getUsers([inputUserSelf])` on `target`: who this client is signed in as there.
    ///
    /// # Errors
    /// As [`TgClient::invoke`].
    pub fn me(&mut self, target: Target) -> Result<Result<i64, (i32, String)>, TgError> {
        let me = types::InputUserSelf {};
        let ids = [Obj::new(&me)];
        let body = encode(&functions::UsersGetUsers { id: Seq::new(&ids) });
        let b = match self.invoke(target, &body)? {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let v = functions::UsersGetUsers::decode_result(&b).map_err(|e| TgError::Protocol(format!("{e:?}")))?;
        match v.iter().next().and_then(|u| u.get()) {
            Some(enums::User::User(u)) => Ok(Ok(u.id)),
            other => Err(TgError::Protocol(format!("users.getUsers: {other:?}"))),
        }
    }

    /// `help.getConfig` on the home DC, applied to the machine (router and record) and saved when the DC list changed.
    ///
    /// # Errors
    /// As [`TgClient::invoke`], or a config the router refuses.
    pub fn refresh_config(&mut self) -> Result<(), TgError> {
        let body = encode(&functions::HelpGetConfig {});
        let b = self
            .invoke(Target::Home, &body)?
            .map_err(|(c, m)| TgError::Protocol(format!("help.getConfig: {c} {m}")))?;
        self.machine
            .apply_config_result(now(), &b)
            .map_err(|e| TgError::Protocol(format!("{e:?}")))?;
        self.persist()
    }

    /// `auth.acceptLoginToken` on the home DC: this (signed-in) client approves another's QR login.
    ///
    /// # Errors
    /// As [`TgClient::invoke`].
    pub fn accept_login_token(&mut self, token: &[u8]) -> Result<Answer, TgError> {
        let body = encode(&functions::AuthAcceptLoginToken { token });
        self.invoke(Target::Home, &body)
    }

    /// Drives `flow` to the end: its requests go to the home DC (moved by its migrations, saved), the user's part
    /// is asked of `user`, and the sign-in is saved the moment it succeeds.
    ///
    /// # Errors
    /// The flow failed, a connection failed for good, or the fault schedule killed the client.
    pub fn sign_in(
        &mut self,
        mut flow: SignIn<'_>,
        user: &mut dyn FnMut(Prompt<'_>) -> Reply,
    ) -> Result<User, TgError> {
        let mut buf = vec![0u8; 4096];
        let deadline = now().saturating_add(Duration::from_secs(120));
        loop {
            if now() >= deadline {
                return Err(TgError::Client(ClientError::Timeout));
            }
            match flow.stage() {
                Stage::SignedIn { user_id, bot } => return Ok(User { id: user_id, bot }),
                Stage::Failed(e) => return Err(TgError::SignIn(e)),
                Stage::WaitMigration { dc } => {
                    let to =
                        DcId::new(i64::from(dc)).ok_or_else(|| TgError::Protocol(format!("migration to DC {dc}")))?;
                    self.machine.move_home(now(), to);
                    self.persist()?;
                    flow.migrated(now(), dc)?;
                    continue;
                }
                _ => {}
            }
            // Updates first (QR login waits for `updateLoginToken`): they may make a request due.
            for u in std::mem::take(&mut self.updates) {
                flow.handle_update(now(), &u);
            }
            let Some(req) = flow.poll_request(now(), &mut buf)? else {
                // Nothing to send: the flow waits for its timer or an update.
                let wait = flow.poll_timeout().map_or(Duration::from_millis(200), |t| {
                    t.saturating_duration_since(now()).min(Duration::from_millis(200))
                });
                let until = now().saturating_add(wait);
                self.turn(until)?;
                if flow.poll_timeout().is_some_and(|t| t <= now()) {
                    let p = flow.handle_timeout(now())?;
                    self.progress(&mut flow, p, user)?;
                }
                continue;
            };
            let body = buf.get(..req.len).unwrap_or_default().to_vec();
            // The flow handles its own errors (migrations, short flood waits): a raw call.
            let id = self.submit(Target::Home, &body, CallKind::Raw)?;
            let answer = self.wait(id)?;
            let p = match &answer {
                Ok(b) => flow.handle_result(now(), req.tag, b)?,
                Err((code, msg)) => flow.handle_rpc_error(now(), req.tag, *code, msg.as_bytes())?,
            };
            self.progress(&mut flow, p, user)?;
        }
    }

    /// Acts on what the flow said: asks the user, saves the sign-in.
    fn progress(
        &mut self,
        flow: &mut SignIn<'_>,
        p: Progress<'_>,
        user: &mut dyn FnMut(Prompt<'_>) -> Reply,
    ) -> Result<(), TgError> {
        match p {
            Progress::CodeSent(_) => match user(Prompt::Code) {
                Reply::Code(c) => flow.submit_code(now(), &c)?,
                other => return Err(TgError::Protocol(format!("code prompt answered {other:?}"))),
            },
            Progress::PasswordNeeded(_) => match user(Prompt::Password) {
                Reply::Password(pw) => {
                    let answer = self.srp_answer(flow, &pw)?;
                    flow.submit_srp(now(), answer)?;
                }
                other => return Err(TgError::Protocol(format!("password prompt answered {other:?}"))),
            },
            Progress::SignUpRequired(_) => match user(Prompt::SignUp) {
                Reply::SignUp(first, last) => flow.sign_up(now(), &first, &last)?,
                other => return Err(TgError::Protocol(format!("sign-up prompt answered {other:?}"))),
            },
            Progress::QrToken { token, .. } => {
                let _ = user(Prompt::QrToken(token));
            }
            Progress::SignedIn(a) => {
                let u = User {
                    id: a.user_id,
                    bot: a.bot,
                };
                // The machine holds every call that needs the authorization until this is stored.
                self.machine.signed_in(now(), u)?;
                self.persist()?;
            }
            Progress::Refused(r) => return Err(TgError::Protocol(format!("refused: {r:?}"))),
            Progress::Nothing
            | Progress::Delayed(_)
            | Progress::ResendAvailable
            | Progress::Migrate { .. }
            | Progress::LoggedOut { .. }
            | Progress::CodeCancelled => {}
        }
        Ok(())
    }

    /// The SRP proof for the flow's current `account.password` (`client::srp::compute_check`).
    fn srp_answer(&mut self, flow: &SignIn<'_>, password: &[u8]) -> Result<SrpAnswer, TgError> {
        let ch = flow
            .password_challenge()
            .ok_or_else(|| TgError::Protocol("no password challenge".to_owned()))?;
        let kdf = PasswordKdf {
            salt1: ch.salt1,
            salt2: ch.salt2,
            g: u32::try_from(ch.g).map_err(|_| TgError::Protocol("negative g".to_owned()))?,
            p: ch.p,
        };
        let mut primes = PrimeCache::<4>::default();
        let proof = compute_check(password, &kdf, ch.srp_b, ch.srp_id, &mut primes, &mut self.rng)
            .map_err(|e| TgError::Protocol(format!("SRP: {e:?}")))?;
        Ok(SrpAnswer {
            srp_id: proof.srp_id,
            a: proof.a,
            m1: proof.m1,
        })
    }
}

/// The router's address for a bootstrap DC.
fn option(dc: DcId, addr: SocketAddr) -> DcOption {
    DcOption {
        dc,
        addr: addr.ip(),
        port: addr.port(),
        media_only: false,
        tcpo_only: false,
        cdn: false,
        static_: false,
        this_port_only: false,
        secret: None,
    }
}

/// The host's error for a request the machine ended without an answer.
fn call_error(e: CallError) -> TgError {
    match e {
        CallError::Route(r) => TgError::Route(r),
        CallError::FloodWait { .. } => TgError::Flood(420, "FLOOD_WAIT".to_owned()),
        CallError::KeyDropped(dc) => TgError::KeyDropped(dc),
        CallError::Unreachable(_) | CallError::TimedOut => TgError::Client(ClientError::Timeout),
        other => TgError::Protocol(format!("request failed: {other:?}")),
    }
}
