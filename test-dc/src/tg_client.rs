//! A Telegram client host built from the crate's client layer, for the end-to-end tests against test_dc
//! (`tests/client_e2e.rs`) and the sign-in timings (`examples/client_signin_times.rs`).
//!
//! It composes, on blocking sockets ([`client::Conn`](crate::client::Conn)), one client
//! [`Connection`](mtproto_sansio::session::Connection) per DC, the [`Router`] (which DC, which connection to open,
//! which authorization to copy), the [`FloodScheduler`] (flood waits and retries of API calls), a
//! [`SignIn`] flow, and a [`Store`] that keeps the [`Record`] across restarts. The client updates the record as
//! things happen (a key from a handshake, the signed-in user, the home DC, an authorization copy, a dropped key)
//! and saves it when the router asks ([`Router::poll_save`], drained by `TgClient::persist` before every routing
//! step): the router holds the first query under a new key, and every authorized call after a sign-in, until the
//! store confirmed the save. Salts are saved by the client itself whenever the DC moved it to a new one.
//!
//! A stored key the DC answers −404 to (it forgot it) is dropped ([`Record::drop_key`], [`Router::key_dropped`],
//! saved as [`Change::KeyDropped`]), a new key is made on a new connection and the request sent again once.
//!
//! Data flow: the test calls [`TgClient::sign_in`] (a flow and a callback that plays the user) or
//! [`TgClient::invoke`] (an API call to the home DC or another); requests go through the router's actions (open a
//! connection, run a handshake, copy the authorization) and the flood scheduler, then over the DC's connection;
//! answers come back as [`Answer`]s. Requests are sent one at a time: each is a round trip, counted in
//! [`Stats`].
//!
//! Faults ([`Faults`]): a seeded schedule, decided per request from the seed and the request's index (so the same
//! seed injects the same faults at the same requests): the connection is dropped before the answer arrives (the
//! session resends on a new one), an API call is answered `420 FLOOD_WAIT_1` in place of the DC, or the whole
//! client is killed ([`TgError::Killed`]), which the test answers by dropping everything and starting again from
//! the store.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use mtproto_sansio::client::flood::{Admit, FloodConfig, FloodScheduler, MethodKey, RetryState, Verdict};
use mtproto_sansio::client::router::{Action, DcOption, Link, Route, RouteError, Router, RouterConfig, Target, Ticket};
use mtproto_sansio::client::rpc_error::{ErrorKind, RpcError};
use mtproto_sansio::client::signin::{Progress, SignIn, SignInError, SrpAnswer, Stage};
use mtproto_sansio::client::srp::{PasswordKdf, compute_check};
use mtproto_sansio::client::store::{Change, Record, Store, User};
use mtproto_sansio::client::{DcId, RequestId};
use mtproto_sansio::crypto::dh::PrimeCache;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::{MsgKind, SessionConfig};
use mtproto_sansio::tl::api::{Obj, RemoteCall, Seq, enums, functions, types};
use mtproto_sansio::tl::{self, TlWrite};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::client::{ClientConnection, ClientError, Conn, Owned, now};
use crate::link::Transport;

/// How long one request may take before the client gives up on it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Reconnections of one DC connection in a row before a request fails.
pub const MAX_RECONNECTS: u32 = 8;

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
            transport: Transport::DEFAULT,
            faults: Faults::default(),
            api_id: 1,
            api_hash: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }
}

/// One DC's main connection.
struct DcLink {
    addr: SocketAddr,
    conn: Option<Conn>,
    s: Box<ClientConnection>,
}

/// The client: see the module docs.
pub struct TgClient<S: Store> {
    cfg: TgConfig,
    store: S,
    record: Record,
    router: Router,
    flood: FloodScheduler,
    links: HashMap<DcId, DcLink>,
    /// Updates pushed by any DC, oldest first.
    pub updates: Vec<Vec<u8>>,
    rng: StdRng,
    next_id: u64,
    /// What the client did so far.
    pub stats: Stats,
}

impl<S: Store> fmt::Debug for TgClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TgClient")
            .field("record", &self.record)
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

/// The constructor id a query body starts with (the method, for the flood scheduler's per-method delays).
fn method_of(body: &[u8]) -> u32 {
    body.first_chunk::<4>().map_or(0, |b| u32::from_le_bytes(*b))
}

impl<S: Store> TgClient<S>
where
    S::Error: fmt::Debug,
{
    /// Starts from what `store` holds (a first start when it holds nothing): the router learns the DC list, the
    /// home DC, the keys and the sign-in; nothing is sent yet.
    ///
    /// # Errors
    /// The store cannot be read, or the record does not fit the router.
    pub fn start(cfg: TgConfig, mut store: S) -> Result<Self, TgError> {
        let loaded = store.load().map_err(|e| TgError::Store(format!("{e:?}")))?;
        let mut router = Router::new(RouterConfig {
            test_mode: true,
            ..RouterConfig::DEFAULT
        });
        let record = match loaded {
            Some(r) => r,
            None => {
                let mut r = Record::new(true);
                let opts: Vec<DcOption> = cfg.bootstrap.iter().map(|(dc, addr)| option(*dc, *addr)).collect();
                let change = r.set_options(&opts).map_err(|e| TgError::Store(e.to_string()))?;
                store.save(&r, change).map_err(|e| TgError::Store(format!("{e:?}")))?;
                r
            }
        };
        record.restore_router(&mut router, now())?;
        if router.home().is_none()
            && let Some((dc, _)) = cfg.bootstrap.first()
        {
            router.set_home(*dc);
        }
        // Keys, nonces and obfuscated inits come from the OS: the fault seed decides only the faults (a seeded
        // generator here would repeat obfuscated inits across clients, which the DC refuses as replays).
        let mut seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
        Ok(Self {
            cfg,
            store,
            record,
            router,
            flood: FloodScheduler::new(FloodConfig::DEFAULT),
            links: HashMap::new(),
            updates: Vec::new(),
            rng: StdRng::from_seed(seed),
            next_id: 0,
            stats: Stats::default(),
        })
    }

    /// The record as saved last.
    pub fn record(&self) -> &Record {
        &self.record
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
        self.router.home()
    }

    /// Signed in (from a flow or from the store).
    pub fn is_signed_in(&self) -> bool {
        self.router.is_signed_in()
    }

    fn save(&mut self, change: Change) -> Result<(), TgError> {
        self.store
            .save(&self.record, change)
            .map_err(|e| TgError::Store(format!("{e:?}")))
    }

    /// Saves every change the router reports ([`Router::poll_save`]) and confirms it, so that what it held back
    /// (a query under a new key, calls after a sign-in) may go out.
    fn persist(&mut self) -> Result<(), TgError> {
        while let Some(change) = self.router.poll_save() {
            self.save(change)?;
            self.router.saved(change);
        }
        Ok(())
    }

    /// `dc` answered −404 on its key: the key goes from the record and the router (saved), the connection is
    /// dropped; the router opens a new one with a key exchange when a request wants it.
    fn drop_key(&mut self, dc: DcId) -> Result<(), TgError> {
        self.stats.keys_dropped += 1;
        self.links.remove(&dc);
        self.record.drop_key(dc);
        if self.router.key_dropped(dc, now())? {
            // The home DC's key carried the sign-in.
            self.record.signed_out();
        }
        self.persist()
    }

    /// Opens the main connection to `dc` at `option`: on the stored key, or after a handshake whose key is saved
    /// before anything is sent under it.
    fn open(&mut self, dc: DcId, option: &DcOption) -> Result<(), TgError> {
        let addr = SocketAddr::new(option.addr, option.port);
        let mut conn = Conn::connect(addr, self.cfg.transport, None, &mut self.rng)?;
        let s = match self
            .record
            .dc(dc)
            .and_then(|d| d.key.clone().map(|k| (k, d.salt, d.time_offset)))
        {
            Some((key, salt, offset)) => {
                conn.session(SessionConfig::DEFAULT, key, salt, i64::from(offset), &mut self.rng)?
            }
            None => {
                let keys = self.cfg.rsa_keys.clone();
                let (s, out) = conn.handshake(
                    SessionConfig::DEFAULT,
                    ClientConfig::new(&keys, i32::from(dc.get())),
                    &mut self.rng,
                )?;
                self.stats.handshakes += 1;
                // Saved when the router reports the key (after `link_ready`), before anything goes out under it.
                self.record
                    .set_key(dc, out.auth_key.clone())
                    .map_err(|e| TgError::Store(e.to_string()))?;
                let offset = i32::try_from(out.server_time_offset).unwrap_or(0);
                self.record
                    .set_salt(dc, out.server_salt, offset)
                    .map_err(|e| TgError::Store(e.to_string()))?;
                s
            }
        };
        self.links.insert(
            dc,
            DcLink {
                addr,
                conn: Some(conn),
                s,
            },
        );
        Ok(())
    }

    /// Carries out the router's actions until request `want` may be sent (its connection), or fails.
    fn drive_router(&mut self, want: RequestId) -> Result<Link, TgError> {
        let deadline = now().saturating_add(CALL_TIMEOUT);
        loop {
            while let Some(a) = {
                self.persist()?;
                self.router.poll_action()
            } {
                match a {
                    Action::Open { link, option, .. } => match self.open(link.dc, &option) {
                        Ok(()) => self.router.link_ready(link, now()),
                        Err(TgError::Client(_)) => self.router.link_failed(link, now()),
                        Err(e) => return Err(e),
                    },
                    Action::Close { link } => {
                        self.links.remove(&link.dc);
                    }
                    Action::Export { from, to } => self.copy_authorization(from, to)?,
                    Action::Send { id, link } if id == want => return Ok(link),
                    Action::Fail { id, reason } if id == want => return Err(TgError::Route(reason)),
                    Action::Send { .. } | Action::Fail { .. } => {}
                }
            }
            let t = now();
            if t >= deadline {
                return Err(TgError::Client(ClientError::Timeout));
            }
            match self.router.poll_timeout() {
                Some(at) => {
                    std::thread::sleep(at.saturating_duration_since(t).min(Duration::from_secs(1)));
                    self.router.handle_timeout(now());
                }
                None => return Err(TgError::Protocol(format!("request {want:?} held with nothing to do"))),
            }
        }
    }

    /// `auth.exportAuthorization` on `from`, `auth.importAuthorization` on `to`; saved when `to` accepted it.
    fn copy_authorization(&mut self, from: DcId, to: DcId) -> Result<(), TgError> {
        let export = encode(&functions::AuthExportAuthorization {
            dc_id: i32::from(to.get()),
        });
        let exported = match self.exchange(from, &export, false)? {
            Ok(b) => b,
            Err(_) => {
                self.router.import_failed(to);
                return Ok(());
            }
        };
        let import = match mtproto_sansio::client::router::import_call(&exported) {
            Ok(call) => encode(&call),
            Err(_) => {
                self.router.import_failed(to);
                return Ok(());
            }
        };
        match self.exchange(to, &import, false)? {
            Ok(_) => {
                self.stats.imports += 1;
                self.router.imported(to);
                self.record.authorized(to).map_err(|e| TgError::Store(e.to_string()))?;
                self.persist()
            }
            Err(_) => {
                self.router.import_failed(to);
                Ok(())
            }
        }
    }

    /// Sends `body` on `dc`'s connection and waits for its answer, through the fault schedule: a dropped
    /// connection is replaced and the session resends; updates are kept in [`TgClient::updates`].
    fn exchange(&mut self, dc: DcId, body: &[u8], api: bool) -> Result<Answer, TgError> {
        let n = self.stats.queries;
        self.stats.queries += 1;
        let (drop, flood, kill) = self.cfg.faults.at(n);
        if api && flood {
            self.stats.floods += 1;
            return Ok(Err((420, "FLOOD_WAIT_1".to_owned())));
        }
        let link = self
            .links
            .get_mut(&dc)
            .ok_or_else(|| TgError::Protocol(format!("no connection to {dc}")))?;
        let req = link
            .s
            .send(now(), body, MsgKind::Query)
            .map_err(|e| TgError::Client(ClientError::Send(e)))?;
        if let Some(conn) = link.conn.as_mut() {
            conn.flush(&mut link.s, &mut self.rng)?;
        }
        if kill {
            return Err(TgError::Killed);
        }
        if drop {
            self.stats.drops += 1;
            link.conn = None;
        }
        let deadline = now().saturating_add(CALL_TIMEOUT);
        let mut reconnects = 0u32;
        loop {
            if now() >= deadline {
                return Err(TgError::Client(ClientError::Timeout));
            }
            if link.conn.is_none() {
                reconnects += 1;
                if reconnects > MAX_RECONNECTS {
                    return Err(TgError::Client(ClientError::Timeout));
                }
                match Conn::connect(link.addr, self.cfg.transport, None, &mut self.rng) {
                    Ok(c) => {
                        link.s.reconnect(now());
                        link.conn = Some(c);
                    }
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                }
            }
            let Some(conn) = link.conn.as_mut() else {
                continue;
            };
            let events = match conn.pump(&mut link.s, &mut self.rng, deadline) {
                Ok(ev) => ev,
                Err(ClientError::Io(_) | ClientError::Transport) => {
                    link.conn = None;
                    continue;
                }
                Err(ClientError::Code(-404)) => {
                    self.drop_key(dc)?;
                    return Err(TgError::KeyDropped(dc));
                }
                Err(e) => return Err(e.into()),
            };
            let mut answer = None;
            for ev in events {
                match ev {
                    Owned::Result(r, b) if r == req => answer = Some(Ok(b)),
                    Owned::Error(r, code, msg) if r == req => answer = Some(Err((code, msg))),
                    Owned::Failed(r, why) if r == req => {
                        return Err(TgError::Protocol(format!("query failed: {why:?}")));
                    }
                    Owned::Update(u) => self.updates.push(u),
                    _ => {}
                }
            }
            if let Some(a) = answer {
                // The salt the DC had us move to: saved so that a restart starts on it.
                if let Some(salt) = link.s.session().map(|e| e.current_salt())
                    && self.record.dc(dc).is_some_and(|d| d.salt != salt)
                {
                    let offset = self.record.dc(dc).map_or(0, |d| d.time_offset);
                    let change = self
                        .record
                        .set_salt(dc, salt, offset)
                        .map_err(|e| TgError::Store(e.to_string()))?;
                    self.save(change)?;
                }
                return Ok(a);
            }
        }
    }

    /// Pumps the home DC's connection for up to `wait`, collecting updates.
    fn pump_home(&mut self, wait: Duration) -> Result<(), TgError> {
        let Some(home) = self.router.home() else {
            return Ok(());
        };
        let Some(link) = self.links.get_mut(&home) else {
            std::thread::sleep(wait);
            return Ok(());
        };
        let deadline = now().saturating_add(wait);
        if link.conn.is_none() {
            link.conn = Some(Conn::connect(link.addr, self.cfg.transport, None, &mut self.rng)?);
            link.s.reconnect(now());
        }
        if let Some(conn) = link.conn.as_mut() {
            match conn.pump(&mut link.s, &mut self.rng, deadline) {
                Ok(events) => {
                    for ev in events {
                        if let Owned::Update(u) = ev {
                            self.updates.push(u);
                        }
                    }
                }
                Err(ClientError::Io(_) | ClientError::Transport) => link.conn = None,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Pumps the home DC's connection for up to `wait` and hands over every update pushed so far (also those that
    /// came in with answers), oldest first.
    ///
    /// # Errors
    /// The connection cannot be opened again.
    pub fn pump_updates(&mut self, wait: Duration) -> Result<Vec<Vec<u8>>, TgError> {
        self.pump_home(wait)?;
        Ok(std::mem::take(&mut self.updates))
    }

    /// Drops the home DC's connection (the session stays; the next call or pump opens a new one): what the DC
    /// pushes meanwhile is lost, as on a real network.
    pub fn drop_home_connection(&mut self) {
        if let Some(link) = self.router.home().and_then(|h| self.links.get_mut(&h)) {
            link.conn = None;
        }
    }

    fn new_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// Routes one request to `target` and sends it; migrations are the caller's. A request whose DC forgot the
    /// key is sent once more, under the new key.
    fn send_routed(&mut self, ticket: &Ticket, body: &[u8], api: bool) -> Result<(Link, Answer), TgError> {
        let mut dropped = false;
        loop {
            self.persist()?;
            let link = match self.router.route(ticket, now())? {
                Route::Send(link) => link,
                Route::Held => self.drive_router(ticket.id)?,
            };
            let answer = self.exchange(link.dc, body, api);
            self.router.done(link, now());
            match answer {
                Err(TgError::KeyDropped(_)) if !dropped => dropped = true,
                answer => return Ok((link, answer?)),
            }
        }
    }

    /// An API call to `target`, with the router (migrations, authorization copies, connections) and the flood
    /// scheduler (waits and retries under its budget) in the way; the answer, or the error the DC gave.
    ///
    /// # Errors
    /// Routing, connections, a surfaced flood wait, the fault schedule's kill.
    pub fn invoke(&mut self, target: Target, body: &[u8]) -> Result<Answer, TgError> {
        let id = self.new_id();
        let mut ticket = Ticket::new(id, target, false);
        let mut retry = RetryState::default();
        loop {
            let dc = match ticket.target {
                Target::Home => self.router.home().ok_or(TgError::Route(RouteError::NoHome))?,
                Target::Dc(dc) | Target::Cdn(dc) => dc,
            };
            let key = MethodKey {
                method: method_of(body),
                dc,
            };
            match self.flood.submit(id, key, None, &retry, now()) {
                Ok(Admit::Send) => {}
                Ok(Admit::Held) => self.wait_release(id)?,
                Ok(Admit::TooLong { .. }) => return Err(TgError::Flood(420, "FLOOD_WAIT".to_owned())),
                Err(e) => return Err(TgError::Protocol(format!("flood scheduler: {e:?}"))),
            }
            let (link, answer) = self.send_routed(&ticket, body, true)?;
            let (code, msg) = match answer {
                Ok(b) => {
                    self.flood.completed(id, now());
                    return Ok(Ok(b));
                }
                Err(e) => e,
            };
            let Ok(err) = RpcError::classify(code, msg.as_bytes()) else {
                self.flood.completed(id, now());
                return Ok(Err((code, msg)));
            };
            match err.kind {
                ErrorKind::Migrate { reason, dc } => {
                    self.flood.completed(id, now());
                    let moves = reason.moves_home();
                    // The router routes it again on the new DC (a new connection, an authorization copy if needed).
                    self.router.on_migrate(&mut ticket, reason, dc, now())?;
                    if moves {
                        // Saved when the router reports it (next routing step).
                        self.record.set_home(dc);
                    }
                    let _ = link;
                }
                ErrorKind::Wait { .. } | ErrorKind::Retry(_) => {
                    match self.flood.on_error(id, key, None, &mut retry, &err, now()) {
                        Ok(Verdict::Retry { .. }) => self.wait_release(id)?,
                        Ok(Verdict::Surface { .. }) | Ok(Verdict::NotMine) | Err(_) => {
                            return Err(TgError::Flood(code, msg));
                        }
                    }
                }
                ErrorKind::Unauthorized(_) => {
                    self.flood.completed(id, now());
                    if self.router.unauthorized(link.dc) {
                        self.record.signed_out();
                        self.persist()?;
                    }
                    return Ok(Err((code, msg)));
                }
                _ => {
                    self.flood.completed(id, now());
                    return Ok(Err((code, msg)));
                }
            }
        }
    }

    /// Sleeps on the flood scheduler's timer until it releases `id`.
    fn wait_release(&mut self, id: RequestId) -> Result<(), TgError> {
        let deadline = now().saturating_add(CALL_TIMEOUT);
        loop {
            self.flood.handle_timeout(now());
            while let Some(r) = self.flood.poll_release() {
                if r == id {
                    return Ok(());
                }
            }
            let t = now();
            if t >= deadline {
                return Err(TgError::Client(ClientError::Timeout));
            }
            let at = self
                .flood
                .poll_timeout()
                .ok_or_else(|| TgError::Protocol("held with no timer".to_owned()))?;
            std::thread::sleep(at.saturating_duration_since(t).min(Duration::from_secs(1)));
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

    /// `help.getConfig` on the home DC, applied to the router and saved when the DC list changed.
    ///
    /// # Errors
    /// As [`TgClient::invoke`], or a config the router refuses.
    pub fn refresh_config(&mut self) -> Result<(), TgError> {
        let body = encode(&functions::HelpGetConfig {});
        let b = self
            .invoke(Target::Home, &body)?
            .map_err(|(c, m)| TgError::Protocol(format!("help.getConfig: {c} {m}")))?;
        self.router
            .apply_config_result(&b)
            .map_err(|e| TgError::Protocol(format!("{e:?}")))?;
        // The router reports `Change::Options` when the list changed.
        let opts: Vec<DcOption> = self.router.options().copied().collect();
        self.record
            .set_options(&opts)
            .map_err(|e| TgError::Store(e.to_string()))?;
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
                    self.router.move_home(to);
                    self.record.set_home(to);
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
                self.pump_home(wait)?;
                if flow.poll_timeout().is_some_and(|t| t <= now()) {
                    let p = flow.handle_timeout(now())?;
                    self.progress(&mut flow, p, user)?;
                }
                continue;
            };
            let body = buf.get(..req.len).unwrap_or_default().to_vec();
            let id = self.new_id();
            let ticket = Ticket::new(id, Target::Home, false);
            let (_, answer) = self.send_routed(&ticket, &body, false)?;
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
                let home = self.router.home().ok_or(TgError::Route(RouteError::NoHome))?;
                self.record
                    .signed_in(
                        home,
                        User {
                            id: a.user_id,
                            bot: a.bot,
                        },
                    )
                    .map_err(|e| TgError::Store(e.to_string()))?;
                // The router holds every call that needs the authorization until this is stored.
                self.router.signed_in(now())?;
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
