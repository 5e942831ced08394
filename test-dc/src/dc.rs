//! The test DC: an async TCP server (tokio) over the crate's DC [`Connection`] facade, the reference host for it. Each
//! connection is one task on a process-wide runtime ([`runtime`]); it reads its socket only when its session takes
//! input (so a session that holds input pushes back on TCP), and a channel of its own wakes it for updates pushed
//! by other connections. What a connection costs is paid when used: until its first bytes show a transport it
//! holds its socket, its task and the few bytes read so far; its `Connection::server_handshake` is boxed once they
//! arrive; bytes read wait in a buffer only while the session has not taken them, and the packet output buffer is
//! one per worker thread. What outlives a connection is shared and handed to the session when it asks
//! ([`Connection::host_query`]):
//! - the key store (with each key's salt schedule, so a client keeps its salt across connections and DC restarts):
//!   `HostQuery::AuthKey` is answered from it (unknown: −404), `HostQuery::NewAuthKey` checks a new key id against it
//!   (taken: `dh_gen_retry`, docs/CHECKLIST.md item 25) and reserves the id;
//! - the client sessions, by (auth_key_id, session_id): `HostQuery::Session` hands a reconnecting client's session
//!   over from the connection that held it (see [`Sessions`] for the locking);
//! - the secret-chat directory, so two clients can open a secret chat through the DC;
//! - the obfuscated inits seen ([`INIT_REPLAY_ENTRIES`] of them): `HostQuery::ObfuscatedInit` is answered from
//!   them, so a recorded connection replayed by a prober is closed at its init (docs/CHECKLIST.md item 9, attack B19).
//!
//! A connection that sends garbage (an unknown transport, a broken frame) is closed; nothing else is affected.
//!
//! Updates (`updateEncryption`, `updateNewEncryptedMessage`, `updateLoginToken`) go to every live connection of their
//! user as content-related server messages; a connection becomes live for its user (its signed-in account, else
//! `api::user_id_of` its key: `auth::World::identity`) with its first request, as on Telegram, and again when that
//! changes (a sign-in). The DCs of one process ([`start_cluster`]) share the accounts (`auth::World`) and route
//! updates to each other's connections. Updates for a user with no live connection wait, at most
//! `api::MAX_PENDING_UPDATES` (a secret-chat relay call whose update would not fit is refused, `api::QUEUE_FULL`),
//! except those of the update stream (`crate::updates`, and secret-chat messages to a signed-in account, numbered in
//! its qts): its client fetches them with `updates.getDifference`.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fs::OpenOptions;
use std::io::{self, BufRead, ErrorKind, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::rsa::RsaPrivateKey;
use mtproto_sansio::handshake::ServerConfig;
use mtproto_sansio::session::bind::{BindParams, bind_perm_key_id, verify_bind};
use mtproto_sansio::session::{
    Connection, ConnectionConfig, Error, Event, HostQuery, InitCheckError, Limits, MsgId, MsgKind, SALT_SCHEDULE_LEN,
    SaltSchedule, SendError, SessionConfig, StoredKey, TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::{AuthBindTempAuthKey, Reader, invoke};
use mtproto_sansio::transport::Framing;
use mtproto_sansio::transport::detect::{Detected, detect};
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_sansio::transport::replay::ReplayCache;
use rand::RngExt;

use crate::api::{self, Reply};
use crate::auth::{self, DcInfo, World};
use crate::carriage_conn;
use crate::files;
use crate::tl_check;
use crate::updates::{self, UpdateStore};
use mtproto_sansio::carriage::faketls::FakeTlsSecret;
use mtproto_sansio::carriage::http::HttpLimits;
use mtproto_sansio::carriage::layer::{FakeTlsCarriage, HttpCarriage, Layer, WsCarriage};
use mtproto_sansio::carriage::ws::WS_PATH;

/// Largest inbound frame: Telethon sends single messages of up to 1,044,448 bytes (INTEROP.md), plus the packet
/// envelope and padding.
pub const MAX_FRAME: usize = 1_114_112;
/// Outbound resend arena per connection (answers wait here until acknowledged): 16 MiB carries a window of 15
/// `upload.getFile` answers of 1 MiB. A limit, not a cost: the arena is a heap block grown on demand and given back
/// once nothing waits in it (the crate's `alloc` feature), so an idle connection pays nothing for it.
pub const TX_ARENA: usize = 16 << 20;
/// Messages in flight per connection.
pub const MSGS: usize = 64;
/// Client sessions kept after their connection closed, for a client that reconnects, each for the engine's
/// `Limits::session_retention` (60 s) after the close; beyond this count the oldest is dropped early and leaves a
/// tombstone (each session holds its connection's buffers, about 3.5 MiB here).
pub const IDLE_SESSIONS: usize = 16;
/// Sessions dropped before their retention ended, remembered (16 bytes and a time each) so that a copy of one of
/// their messages cannot start them anew with an empty replay window: a connection naming one is refused until
/// the retention has passed. When this many are remembered, new sessions are refused (backpressure), never forgotten.
pub const TOMBSTONES: usize = 65_536;
/// How long a new connection may take to show its transport.
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections are closed after this long without a byte.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Updates pushed to a connection by other connections, queued until its task takes them. A push that finds them
/// full makes the connection not live until its next request, and the update waits for that.
pub const CHANNEL_DEPTH: usize = 64;
/// Stack of a runtime thread: a session (4.5 MiB at these capacities) and its engine are built on it before they
/// are boxed. Paid once per worker thread, not per connection.
const WORKER_STACK: usize = 64 * 1024 * 1024;
/// Bytes one socket read takes (straight into the connection's input buffer).
const READ_CHUNK: usize = 65_536;
/// Most bytes of a transport's opening read at once while detecting it (the detector asks for at most 64).
const DETECT_CHUNK: usize = 64;
/// Capacity a connection's output buffer keeps between writes; a larger one (after a large answer) is given back.
const WIRE_KEEP: usize = 16_384;
/// Obfuscated inits remembered against replay, all connections together (docs/CHECKLIST.md item 9): 256 KiB, scanned
/// once per new obfuscated connection. The oldest is forgotten first, so an init is refused for the next 16,384
/// obfuscated connections: at 10 new connections a second for 27 minutes, at 100 a second for 2.7 minutes. A
/// replay after that gets a fresh connection whose recorded messages the session layer still refuses once they
/// fall out of its time window (300 s). Without `--secret` anyone can make valid inits, so a client that opens
/// 16,384 connections can flush the cache; with a secret only its holders can.
pub const INIT_REPLAY_ENTRIES: usize = 16_384;

/// The DC end of one connection.
/// The carriage is a layer of the connection ([`Layer`]): HTTP and fake-TLS connections are served by the same
/// connection type and run loop as TCP ones.
pub type DcConnection = Connection<MAX_FRAME, TX_ARENA, MSGS, Layer>;

/// What an HTTP connection's requests may hold: the DC's largest frame per body.
const HTTP_LIMITS: HttpLimits = HttpLimits {
    max_head: 4096,
    max_body: MAX_FRAME,
    max_chunk_line: 256,
};

/// How to run a DC.
pub struct DcOptions {
    /// Where to listen (port 0: an ephemeral port).
    pub listen: SocketAddr,
    /// The DC's RSA key.
    pub rsa_key: RsaPrivateKey,
    /// MTProxy secret: if set, only obfuscated connections made with it are accepted.
    pub secret: Option<ProxySecret>,
    /// Fake-TLS (`ee`) secret: serves fake-TLS on the same port; `secret` defaults to its key.
    pub faketls: Option<FakeTlsSecret>,
    /// The DC's id (1..=9; `None`: 2 for [`start`], its position + 1 in [`start_cluster`]). When set, handshakes
    /// naming another DC are refused (−444).
    pub dc_id: Option<i32>,
    /// Concurrent connections; more are closed on accept.
    pub max_conns: usize,
    /// File-backed key store (one line per permanent key: the key, then its salt schedule, in hex); in memory if
    /// `None`.
    pub keys_file: Option<PathBuf>,
    /// Print one line per connection event.
    pub verbose: bool,
}

/// Counters, for the transcript and the tests.
#[derive(Debug, Default)]
pub struct DcStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections open now.
    pub active: AtomicUsize,
    /// Connections closed because of bad input.
    pub bad_connections: AtomicU64,
    /// Auth keys created.
    pub keys_created: AtomicU64,
    /// New keys refused because the store held their id (answered `dh_gen_retry`).
    pub key_collisions: AtomicU64,
    /// RPC requests executed.
    pub requests: AtomicU64,
    /// Requests bytes executed (after gzip inflation).
    pub request_bytes: AtomicU64,
    /// Requests answered with rpc_error.
    pub rpc_errors: AtomicU64,
    /// Sessions created (`new_session_created` sent).
    pub sessions: AtomicU64,
    /// Sessions continued on a new connection.
    pub sessions_resumed: AtomicU64,
    /// Temporary keys bound with `auth.bindTempAuthKey`.
    pub binds: AtomicU64,
    /// `Updates` handed to a live connection of their user.
    pub updates_pushed: AtomicU64,
    /// The round trip of every request through the generated API types (debug builds only: [`tl_check`]).
    pub tl: Mutex<tl_check::Tally>,
}

/// A connection's update channel: each message one serialized `Updates`.
type Updates = mpsc::Sender<Vec<u8>>;

/// Secret-chat routing: the api directory, the live connections of each user, updates waiting for one.
#[derive(Default)]
struct Hub {
    dir: api::Directory,
    /// Each connection's update channel (see [`CHANNEL_DEPTH`]).
    live: HashMap<i64, Vec<(u64, Updates)>>,
    pending: HashMap<i64, VecDeque<Vec<u8>>>,
}

impl Hub {
    /// Hands `push` to every live connection of its user, or queues it. A connection that cannot take it now (gone,
    /// or its inputs full) stops being live. The queue is bounded: the secret-chat relay checks its room first
    /// ([`Relay`]: a call whose push would not fit is refused), so only `auth`'s `updateLoginToken` (a hint: the
    /// client asks `auth.exportLoginToken` again anyway) can meet a full one, and then the oldest is dropped.
    fn route(&mut self, push: api::Push, stats: &DcStats) {
        let conns = self.live.entry(push.to).or_default();
        conns.retain(|(_, tx)| tx.try_send(push.updates.clone()).is_ok());
        if conns.is_empty() {
            self.live.remove(&push.to);
            let q = self.pending.entry(push.to).or_default();
            if q.len() >= api::MAX_PENDING_UPDATES {
                q.pop_front();
            }
            q.push_back(push.updates);
        } else {
            stats.updates_pushed.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Hands `push` to every live connection of its user but `except` (the connection whose call made it), and
    /// nowhere else: an update of the common or a channel sequence is not queued for a user with no live
    /// connection (its client fetches it with a difference). Whether a connection took it.
    fn deliver_live(&mut self, push: &api::Push, except: Option<u64>, stats: &DcStats) -> bool {
        let Some(conns) = self.live.get_mut(&push.to) else {
            return false;
        };
        let mut taken = false;
        conns.retain(|(id, tx)| {
            if Some(*id) == except {
                return true;
            }
            let ok = tx.try_send(push.updates.clone()).is_ok();
            taken |= ok;
            ok
        });
        if conns.is_empty() {
            self.live.remove(&push.to);
        }
        if taken {
            stats.updates_pushed.fetch_add(1, Ordering::SeqCst);
        }
        taken
    }
}

/// The secret-chat relay's view of the DC ([`api::QtsLog`]): qts events go to the update stream, and an update
/// the stream does not keep needs room in its user's queue.
struct Relay<'a> {
    stream: &'a mut UpdateStore,
    pending: &'a HashMap<i64, VecDeque<Vec<u8>>>,
    world: &'a World,
}

impl api::QtsLog for Relay<'_> {
    fn encrypted(&mut self, to: i64, message: &[u8], date: i32) -> Option<i32> {
        self.stream.encrypted(to, message, date)
    }

    fn acknowledge(&mut self, user: i64, max_qts: i32) -> Result<Vec<i64>, &'static str> {
        self.stream.acknowledge(user, max_qts)
    }

    /// A qts update for a signed-in account is kept by the stream (its difference serves it); anything else may
    /// wait in the user's queue, so it needs room there (a live connection takes it at once, but one that cannot
    /// take it now sends it to the queue too).
    fn room(&self, to: i64, sequenced: bool) -> bool {
        (sequenced && self.world.is_account(to))
            || self.pending.get(&to).is_none_or(|q| q.len() < api::MAX_PENDING_UPDATES)
    }
}

/// Auth keys by id, with their salt schedules.
#[derive(Default)]
struct KeyStore {
    keys: HashMap<u64, StoredKey>,
    /// Temporary key id → the permanent key it was bound to (`auth.bindTempAuthKey`): a session under the
    /// temporary key is signed in as the permanent key is. At most one entry per temporary key in `keys`.
    bound: HashMap<u64, u64>,
    /// Test hook ([`Dc::collide_next_keys`]): report this many more new key ids as taken.
    force_collisions: usize,
}

/// One connection's session, shared so that another connection's task can take its client session over.
type SharedConnection = Arc<Mutex<Box<DcConnection>>>;

/// Client sessions by (auth_key_id, session_id) → (connection id, its session), live or closed.
///
/// Locking: a connection task holds its own session's lock while it drives it (never across an `.await`), and takes the map, store and hub
/// locks only briefly, never waiting for a session lock while holding one of them. The one place that holds two
/// session locks, the hand-over ([`Conn::resume`]), takes them in connection-id order, so two connections handing
/// sessions over at once cannot deadlock.
#[derive(Default)]
struct Sessions {
    map: HashMap<(u64, u64), (u64, SharedConnection)>,
    /// Sessions whose connection closed, oldest first, with the time their retention ends (dropped then, or beyond
    /// [`IDLE_SESSIONS`] into `tombstones`).
    idle: VecDeque<((u64, u64), u64, std::time::Instant)>,
    /// Sessions dropped before their retention ended, with the time it ends (see [`TOMBSTONES`]).
    tombstones: HashMap<(u64, u64), std::time::Instant>,
    tombstone_order: VecDeque<((u64, u64), std::time::Instant)>,
}

impl Sessions {
    /// Drops what has outlived its retention.
    fn expire(&mut self, now: std::time::Instant) {
        while let Some(&(at, id, until)) = self.idle.front() {
            if until > now {
                break;
            }
            self.idle.pop_front();
            if self.map.get(&at).is_some_and(|(holder, _)| *holder == id) {
                self.map.remove(&at);
            }
        }
        while let Some(&(at, until)) = self.tombstone_order.front() {
            if until > now {
                break;
            }
            self.tombstone_order.pop_front();
            if self.tombstones.get(&at) == Some(&until) {
                self.tombstones.remove(&at);
            }
        }
    }

    /// Whether a new session `at` may start (answer `resume_session(None)`): not while one of that id may still
    /// have copies of its messages around, and not while the tombstone table is full.
    fn may_start(&mut self, at: (u64, u64), now: std::time::Instant) -> bool {
        self.expire(now);
        !self.tombstones.contains_key(&at) && self.tombstone_order.len() < TOMBSTONES
    }
}

struct Shared {
    /// This DC's id (1..=`auth::MAX_DCS`).
    dc_id: i32,
    /// What the DCs of the process share: accounts and sign-ins, and each other's hubs for updates.
    cluster: Arc<ClusterShared>,
    hs: ServerConfig<'static>,
    keys: Mutex<KeyStore>,
    sessions: Mutex<Sessions>,
    hub: Mutex<Hub>,
    keys_file: Option<PathBuf>,
    secret: Option<ProxySecret>,
    /// Every obfuscated init accepted, for `HostQuery::ObfuscatedInit`.
    init_replay: Mutex<Box<ReplayCache<INIT_REPLAY_ENTRIES>>>,
    /// The fake-TLS (`ee`) secret, if fake-TLS is served.
    faketls: Option<FakeTlsSecret>,
    start: std::time::Instant,
    unix_micros_at_start: u64,
    stats: DcStats,
    stop: AtomicBool,
    verbose: bool,
    max_conns: usize,
}

/// The state the DCs of one process share (see [`start_cluster`]).
struct ClusterShared {
    world: Mutex<World>,
    /// Uploaded files (`crate::files`), cluster-wide so a download on the wrong DC gets `FILE_MIGRATE_X`.
    files: Mutex<files::FileStore>,
    /// The update stream (`crate::updates`): mailboxes, the channel, their histories.
    updates: Mutex<UpdateStore>,
    /// Each DC, for updates one DC's call makes for another's connections (a QR token accepted on DC 2 for a
    /// client waiting on DC 1). Weak: a DC's state lives as long as its connections and its [`Dc`].
    dcs: Mutex<HashMap<i32, Weak<Shared>>>,
}

impl Shared {
    /// Hands a push to the live connections of its user on DC `dc` (this one or another of the cluster).
    fn route(&self, dc: i32, push: api::Push) {
        if dc == self.dc_id {
            lock(&self.hub).route(push, &self.stats);
            return;
        }
        let other = lock(&self.cluster.dcs).get(&dc).and_then(Weak::upgrade);
        if let Some(other) = other {
            lock(&other.hub).route(push, &other.stats);
        }
    }

    /// Hands a push of the update stream to the live connections of its user on every DC of the cluster, but
    /// connection `except` of this DC; whether any took it.
    fn route_live(&self, push: &api::Push, except: Option<u64>) -> bool {
        let dcs: Vec<Arc<Shared>> = lock(&self.cluster.dcs).values().filter_map(Weak::upgrade).collect();
        let mut taken = false;
        for d in dcs {
            let except = except.filter(|_| d.dc_id == self.dc_id);
            taken |= lock(&d.hub).deliver_live(push, except, &d.stats);
        }
        taken
    }

    /// The auth key an authorization belongs to: a bound temporary key's permanent one.
    fn perm_key(&self, key_id: u64) -> u64 {
        lock(&self.keys).bound.get(&key_id).copied().unwrap_or(key_id)
    }

    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn unix(&self, now: Instant) -> UnixTime {
        UnixTime(self.unix_micros_at_start.saturating_add(now.as_micros()) / 1_000_000)
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running DC.
pub struct Dc {
    /// The address it listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

/// The DCs of one process ([`start_cluster`]): ids 1..=N sharing one account store.
pub struct Cluster {
    /// The DCs, in the order of [`ClusterOptions::dcs`].
    pub dcs: Vec<Dc>,
}

impl Cluster {
    /// The DC of id `id`.
    pub fn dc(&self, id: i32) -> Option<&Dc> {
        self.dcs.iter().find(|d| d.id() == id)
    }

    /// Stops every DC.
    pub fn stop(&self) {
        for d in &self.dcs {
            d.stop();
        }
    }
}

/// How to run several DCs in one process.
pub struct ClusterOptions {
    /// One entry per DC; its `dc_id` (default: its position + 1, so 1..=N) must be 1..=`auth::MAX_DCS` and unique.
    pub dcs: Vec<DcOptions>,
    /// The right code signs an unknown number up at once (see `auth::World::set_auto_register`).
    pub auto_register: bool,
    /// (phone, password): two-step verification for these numbers (`auth::World::set_password`).
    pub passwords: Vec<(String, String)>,
}

impl Dc {
    /// The DC's id (as in `help.getConfig`).
    pub fn id(&self) -> i32 {
        self.shared.dc_id
    }

    /// Runs `f` on the accounts and sign-in state this DC shares with the others of its cluster (test hooks such
    /// as `auth::World::set_code_lifetime`).
    pub fn with_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut lock(&self.shared.cluster.world))
    }

    /// Runs `f` on the files uploaded to the cluster (the cap, the stored bytes).
    pub fn with_files<T>(&self, f: impl FnOnce(&mut files::FileStore) -> T) -> T {
        f(&mut lock(&self.shared.cluster.files))
    }

    /// Runs `f` on the cluster's update stream (`updates::UpdateStore`: its limits, the states and histories).
    pub fn with_updates<T>(&self, f: impl FnOnce(&mut UpdateStore) -> T) -> T {
        f(&mut lock(&self.shared.cluster.updates))
    }

    /// Counters.
    pub fn stats(&self) -> &DcStats {
        &self.shared.stats
    }

    /// Connections of `user` on this DC that take its updates now (live, and not closed). Test hook: a test waits
    /// for a client's closed connection to be gone before it counts on its pushes being missed.
    pub fn live_connections(&self, user: i64) -> usize {
        lock(&self.shared.hub)
            .live
            .get(&user)
            .map_or(0, |c| c.iter().filter(|(_, tx)| !tx.is_closed()).count())
    }

    /// Keys in the store.
    pub fn key_count(&self) -> usize {
        lock(&self.shared.keys).keys.len()
    }

    /// Secret chats in the directory (in any state).
    pub fn secret_chats(&self) -> usize {
        lock(&self.shared.hub).dir.chat_count()
    }

    /// Test hook: the store answers the next `n` new-key checks as if it already held the id, as on a key-id
    /// collision (the client gets `dh_gen_retry` and makes another key).
    pub fn collide_next_keys(&self, n: usize) {
        lock(&self.shared.keys).force_collisions = n;
    }

    /// Test hook: forgets every auth key (as a DC that lost its key store does), so a client on a stored key gets
    /// −404 and must make a new one (`tests/client_e2e.rs`). Keys already loaded by live sessions stay with them.
    pub fn forget_keys(&self) {
        let mut store = lock(&self.shared.keys);
        store.keys.clear();
        store.bound.clear();
    }

    /// Stops accepting (open connections end on their own).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Loads a key store file: one key per line, 512 hex digits, then a space and its salt schedule (96 hex digits).
/// A line without a schedule (older files) gets a fresh one: its client is told `bad_server_salt` once.
fn load_keys(path: &PathBuf) -> io::Result<HashMap<u64, StoredKey>> {
    let mut keys = HashMap::new();
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(keys),
        Err(e) => return Err(e),
    };
    let bad = |what: &str| io::Error::new(ErrorKind::InvalidData, format!("key file: {what}"));
    for line in io::BufReader::new(f).lines() {
        let line = line?;
        let mut fields = line.split_whitespace();
        let Some(key_hex) = fields.next() else { continue };
        let key: [u8; 256] = hex::decode(key_hex)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("a key is not 256 bytes of hex"))?;
        let salts = match fields.next() {
            Some(h) => {
                let b: [u8; SALT_SCHEDULE_LEN] = hex::decode(h)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("a salt schedule is not 48 bytes of hex"))?;
                SaltSchedule::from_bytes(&b)
            }
            None => SaltSchedule::from_secret(rand::rng().random()),
        };
        let key = AuthKey::from_bytes(key);
        keys.insert(key.id(), StoredKey { key, salts });
    }
    Ok(keys)
}

fn append_key(path: &PathBuf, key: &StoredKey) -> io::Result<()> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    let (k, s) = (hex::encode(key.key.as_bytes()), hex::encode(key.salts.to_bytes()));
    writeln!(f, "{k} {s}")
}

/// The runtime every DC of the process runs on, started on first use: one worker thread per core (at least
/// two), each with a [`WORKER_STACK`]. It is never shut down, so a DC's connections outlive [`Dc::stop`] as they did
/// when they were threads, and a caller inside another runtime (a `#[tokio::test]`) can start a DC too.
pub fn runtime() -> io::Result<&'static Runtime> {
    static RT: Mutex<Option<&'static Runtime>> = Mutex::new(None);
    let mut rt = lock(&RT);
    if let Some(rt) = *rt {
        return Ok(rt);
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let built: &'static Runtime = Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("dc-worker")
            .thread_stack_size(WORKER_STACK)
            .enable_io()
            .enable_time()
            .build()?,
    ));
    *rt = Some(built);
    Ok(built)
}

/// Binds and starts accepting on [`runtime`]: one DC (id `opts.dc_id`, default 2) with accounts of its own.
pub fn start(mut opts: DcOptions) -> io::Result<Dc> {
    // One DC: its id is what it checks in handshakes (none: any), and 2 for its accounts if unnamed.
    let hs_dc = opts.dc_id;
    opts.dc_id = Some(opts.dc_id.unwrap_or(2));
    let mut cluster = start_dcs(
        ClusterOptions {
            dcs: vec![opts],
            auto_register: false,
            passwords: Vec::new(),
        },
        &[hs_dc],
    )?;
    cluster.dcs.pop().ok_or_else(|| io::Error::other("no DC started"))
}

/// Binds every DC of `opts` and starts them on [`runtime`], sharing one account store: a phone number of DC X
/// signs in on DC X only, an authorization is copied across by `auth.exportAuthorization`, and `help.getConfig`
/// lists them all. A DC's `dc_id` (default: its position + 1) is checked against the DC id a handshake names
/// (−444 for another DC's; X, 10000 + X and their negatives all name DC X).
pub fn start_cluster(mut opts: ClusterOptions) -> io::Result<Cluster> {
    let mut checks = Vec::new();
    for (i, d) in opts.dcs.iter_mut().enumerate() {
        d.dc_id = Some(d.dc_id.unwrap_or(i32::try_from(i + 1).unwrap_or(i32::MAX)));
        checks.push(d.dc_id);
    }
    start_dcs(opts, &checks)
}

fn start_dcs(opts: ClusterOptions, handshake_dc: &[Option<i32>]) -> io::Result<Cluster> {
    let invalid = |m: &str| io::Error::new(ErrorKind::InvalidInput, m.to_owned());
    if opts.dcs.is_empty() || opts.dcs.len() > auth::MAX_DCS {
        return Err(invalid("1 to 9 DCs"));
    }
    // Bind all first: the DC list every `help.getConfig` answers needs every address.
    let mut bound = Vec::new();
    let mut infos = Vec::new();
    for d in opts.dcs {
        let id = d.dc_id.unwrap_or(2);
        if !(1..=9).contains(&id) || infos.iter().any(|i: &DcInfo| i.id == id) {
            return Err(invalid("DC ids must be 1..=9 and distinct"));
        }
        let listener = std::net::TcpListener::bind(d.listen)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        infos.push(DcInfo { id, addr });
        bound.push((d, listener, addr, id));
    }
    let mut world = World::new(infos);
    world.set_auto_register(opts.auto_register);
    for (phone, password) in &opts.passwords {
        world
            .set_password(phone, password.as_bytes(), &mut rand::rng())
            .map_err(|e| invalid(&e))?;
    }
    let cluster = Arc::new(ClusterShared {
        world: Mutex::new(world),
        files: Mutex::new(files::FileStore::default()),
        updates: Mutex::new(UpdateStore::default()),
        dcs: Mutex::new(HashMap::new()),
    });
    let mut dcs = Vec::new();
    for ((d, listener, addr, id), hs_dc) in bound.into_iter().zip(handshake_dc) {
        let shared = start_one(d, listener, id, *hs_dc, Arc::clone(&cluster))?;
        lock(&cluster.dcs).insert(id, Arc::downgrade(&shared));
        dcs.push(Dc { addr, shared });
    }
    Ok(Cluster { dcs })
}

fn start_one(
    opts: DcOptions,
    listener: std::net::TcpListener,
    dc_id: i32,
    handshake_dc: Option<i32>,
    cluster: Arc<ClusterShared>,
) -> io::Result<Arc<Shared>> {
    let keys = match &opts.keys_file {
        Some(p) => load_keys(p)?,
        None => HashMap::new(),
    };
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(io::Error::other)?;
    let unix_micros_at_start = u64::try_from(unix.as_micros()).unwrap_or(u64::MAX);
    // One key for the life of the process: leaking it gives the handshake configuration its 'static borrow.
    let rsa: &'static RsaPrivateKey = Box::leak(Box::new(opts.rsa_key));
    let group = DhGroup::telegram(3).map_err(|e| io::Error::other(format!("{e}")))?;
    let mut hs = ServerConfig::new(rsa, group);
    hs.dc_id = handshake_dc;
    let shared = Arc::new(Shared {
        dc_id,
        cluster,
        hs,
        keys: Mutex::new(KeyStore {
            keys,
            bound: HashMap::new(),
            force_collisions: 0,
        }),
        sessions: Mutex::new(Sessions::default()),
        hub: Mutex::new(Hub {
            dir: api::Directory::for_dc(dc_id),
            ..Hub::default()
        }),
        keys_file: opts.keys_file,
        secret: opts
            .secret
            .or_else(|| opts.faketls.as_ref().map(FakeTlsSecret::proxy_secret)),
        init_replay: Mutex::new(Box::new(ReplayCache::new())),
        faketls: opts.faketls,
        start: std::time::Instant::now(),
        unix_micros_at_start,
        stats: DcStats::default(),
        stop: AtomicBool::new(false),
        verbose: opts.verbose,
        max_conns: opts.max_conns,
    });
    let rt = runtime()?;
    // Registered with the runtime's reactor: inside it, whichever runtime (if any) the caller runs in.
    let listener = {
        let _in_rt = rt.enter();
        TcpListener::from_std(listener)?
    };
    rt.spawn(accept_loop(listener, Arc::clone(&shared)));
    Ok(shared)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    loop {
        let accepted = listener.accept().await;
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let sock = match accepted {
            Ok((sock, _)) => sock,
            // Out of descriptors, or a connection reset before it was accepted: try again shortly.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.stats.active.load(Ordering::SeqCst) >= shared.max_conns {
            if shared.verbose {
                println!("dc: connection refused: {} connections open", shared.max_conns);
            }
            continue; // dropped: closed
        }
        next_id += 1;
        let id = next_id;
        shared.stats.connections.fetch_add(1, Ordering::SeqCst);
        shared.stats.active.fetch_add(1, Ordering::SeqCst);
        let sh = Arc::clone(&shared);
        tokio::spawn(async move {
            let peer = sock.peer_addr().ok();
            let r = Conn::serve(&sh, sock, id).await;
            if let Err(e) = &r {
                sh.stats.bad_connections.fetch_add(1, Ordering::SeqCst);
                if sh.verbose {
                    println!("dc: conn {id} ({peer:?}) closed: {e}");
                }
            }
            sh.stats.active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// `HostQuery::ObfuscatedInit`: checks the init against the DC-wide cache. A replay is refused like an init the
/// secret does not open: closed, nothing sent.
fn check_init(sh: &Shared, s: &mut DcConnection) -> Result<(), ConnError> {
    match s.check_obfuscated_init(&mut **lock(&sh.init_replay)) {
        Ok(()) => Ok(()),
        Err(InitCheckError::Replayed) => Err(ConnError::Rejected("replayed obfuscated init")),
        Err(InitCheckError::NotRequested) => Err(ConnError::Rejected("invalid obfuscated init")),
    }
}

/// Why a connection was closed by the DC.
#[derive(Debug)]
enum ConnError {
    Io(io::Error),
    Rejected(&'static str),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "i/o: {e}"),
            ConnError::Rejected(why) => write!(f, "rejected: {why}"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

struct Conn<'s> {
    sh: &'s Shared,
    id: u64,
    session: SharedConnection,
    /// The (auth_key_id, session_id) this connection is indexed under in `Shared::sessions`.
    registered: Option<(u64, u64)>,
    /// Answers refused with `QueueFull`, retried once the client has acknowledged earlier ones (at most the
    /// session's `MSGS`: it delivers no further request while that many wait for an answer).
    backlog: VecDeque<(MsgId, Reply)>,
    /// Bytes for the socket, written before the task waits again.
    wire: Vec<u8>,
    closing: bool,
    /// The user this connection is live for (after its first request).
    user: Option<i64>,
    /// This connection's own update channel, registered in the hub once it is live.
    tx: Updates,
    /// Updates to send, retried when the session's queue is full.
    pushes: VecDeque<Vec<u8>>,
}

thread_local! {
    /// `poll_transmit`'s buffer (`Connection::min_transmit_len`, 1.1 MiB here): one per runtime thread, borrowed only
    /// while a connection drains its session, never across an `.await`.
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Builds a connection's session straight into its box: out of line, so that only this call's stack frame (on the
/// runtime thread, see [`WORKER_STACK`]) holds the 4.5 MiB value, not every poll of the connection's task.
#[inline(never)]
fn new_session(sh: &Shared, framing: Framing, obfuscated: bool, now: Instant) -> Box<DcConnection> {
    let cfg = ConnectionConfig {
        engine: SessionConfig {
            ping_interval: None,
            // Answers kept for resending until acknowledged may fill the arena: a window of `upload.getFile`
            // answers (the default 1 MiB would hold one 1 MiB part, and stall every other answer for a round trip).
            limits: Limits {
                max_unacked_bytes: TX_ARENA,
                ..Limits::DEFAULT
            },
            ..SessionConfig::DEFAULT
        },
        transport: TransportConfig {
            framing,
            obfuscated,
            dc_id: None,
        },
        unix_time_hint: Some(sh.unix(now)),
        salt: 0,
    };
    let mut session = Box::new(DcConnection::server_handshake(cfg, sh.hs.clone(), now));
    session.set_new_key_check(true);
    session
}

/// The fake-TLS layer of a DC connection: hellos of at most [`carriage_conn::MAX_HELLO`] bytes, the default skew
/// window.
fn faketls_server(ee: FakeTlsSecret, unix: UnixTime, now: Instant) -> FakeTlsCarriage {
    let cfg = mtproto_sansio::carriage::faketls::ServerConfig {
        max_hello: carriage_conn::MAX_HELLO,
        ..mtproto_sansio::carriage::faketls::ServerConfig::default()
    };
    FakeTlsCarriage::server(ee, cfg, unix, now)
}

/// Takes what the socket has into `input`'s spare capacity (at least [`READ_CHUNK`]; the run loop reads only into an
/// empty `input`, so that is its size): `Ok(0)` at the end of the stream, `WouldBlock` if readiness was spurious.
/// The spare capacity is not zeroed first: a zeroed 64 KiB stack buffer per read, then copied, was 6.4 % of the DC's
/// CPU under the ping load of `examples/dc_load.rs` (`perf record`, 1,000 sessions).
fn read_some(sock: &TcpStream, input: &mut Vec<u8>) -> io::Result<usize> {
    input.reserve(READ_CHUNK);
    sock.try_read_buf(input)
}

impl<'s> Conn<'s> {
    async fn serve(sh: &'s Arc<Shared>, mut sock: TcpStream, id: u64) -> Result<(), ConnError> {
        sock.set_nodelay(true)?;
        // 1. Which transport? Read the first bytes; the session reads them again from byte 0.
        let deadline = tokio::time::Instant::now() + DETECT_TIMEOUT;
        let mut prefix = Vec::new();
        let (framing, obfuscated, layer) = loop {
            match detect(&prefix, sh.secret.as_ref()) {
                Detected::NeedMore(n) => {
                    let want = n.saturating_sub(prefix.len()).clamp(1, DETECT_CHUNK);
                    let mut chunk = [0u8; DETECT_CHUNK];
                    let read = sock.read(chunk.get_mut(..want).unwrap_or_default());
                    let got = tokio::time::timeout_at(deadline, read)
                        .await
                        .map_err(|_| io::Error::from(ErrorKind::TimedOut))??;
                    if got == 0 {
                        return Ok(());
                    }
                    prefix.extend_from_slice(chunk.get(..got).unwrap_or_default());
                }
                Detected::Plain(_) if sh.secret.is_some() => {
                    return Err(ConnError::Rejected("plain transport, secret required"));
                }
                Detected::Plain(f) => break (f, false, Layer::Tcp),
                Detected::Obfuscated { framing, .. } => break (framing, true, Layer::Tcp),
                // An init the secret does not open goes the way of a replayed one (below): a session is built and
                // refuses it. Refusing it here would be faster, and a prober could time the difference.
                Detected::Rejected(_) => break (Framing::PaddedIntermediate, true, Layer::Tcp),
                // HTTP: one packet per body, straight into the connection (no obfuscation inside, so not with a
                // secret, as for plain TCP).
                Detected::Http if prefix.starts_with(b"POST") => {
                    if sh.secret.is_some() {
                        return Err(ConnError::Rejected("plain transport, secret required"));
                    }
                    let http = HttpCarriage::server(HTTP_LIMITS);
                    break (Framing::Intermediate, false, Layer::Http(http));
                }
                // Fake-TLS: the connection checks the hello, asks for its random's replay check, answers, then
                // reads the obfuscated init (keyed with the `ee` secret) inside the records.
                Detected::FakeTls => {
                    let ee = sh
                        .faketls
                        .clone()
                        .ok_or(ConnError::Rejected("fake-TLS without an ee secret"))?;
                    let now = sh.now();
                    let tls = faketls_server(ee, sh.unix(now), now);
                    break (Framing::PaddedIntermediate, true, Layer::FakeTls(tls));
                }
                // WebSocket (`GET /apiws`): the connection answers the upgrade, then unwraps the binary frames into
                // its receive buffer as the obfuscated stream; the framing is the one the init inside names (the
                // placeholder here is replaced once the init is checked), under the DC's secret if it has one.
                Detected::Http => {
                    let ws = WsCarriage::server(WS_PATH, carriage_conn::SERVER_WS_MESSAGE);
                    break (Framing::PaddedIntermediate, true, Layer::Ws(ws));
                }
            }
        };
        // 2. The connection's DC session, now that it has sent something: it runs handshakes itself and asks the
        // shared state for the rest.
        let mut session = new_session(sh, framing, obfuscated, sh.now());
        if !matches!(layer, Layer::Tcp) {
            // The carriage's bytes (the request, the hello) are read by the run loop like any others.
            let ws = matches!(layer, Layer::Ws(_));
            session
                .set_carriage(layer)
                .map_err(|_| ConnError::Rejected("carriage"))?;
            if ws {
                session
                    .set_proxy_secret(sh.secret.clone())
                    .map_err(|_| ConnError::Rejected("proxy secret"))?;
            }
        } else if obfuscated {
            session
                .set_proxy_secret(sh.secret.clone())
                .map_err(|_| ConnError::Rejected("proxy secret"))?;
            // The detector read exactly the 64 init bytes: the session takes them and asks for the replay check,
            // answered before anything more is read, so a refused connection closes with its other bytes unread
            // whether the init was replayed or not openable.
            let n = session
                .handle_input(sh.now(), &prefix)
                .map_err(|_| ConnError::Rejected("invalid obfuscated init"))?;
            prefix.drain(..n.min(prefix.len()));
            while session.poll_event().is_some() {}
            check_init(sh, &mut session)?;
        }
        // 3. Updates from other connections come through this connection's own channel.
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let mut c = Conn {
            sh,
            id,
            session: Arc::new(Mutex::new(session)),
            registered: None,
            backlog: VecDeque::new(),
            wire: Vec::new(),
            closing: false,
            user: None,
            tx,
            pushes: VecDeque::new(),
        };
        let r = c.run(&mut sock, rx, prefix).await;
        c.leave();
        c.keep_session();
        r
    }

    async fn run(
        &mut self,
        sock: &mut TcpStream,
        mut rx: mpsc::Receiver<Vec<u8>>,
        prefix: Vec<u8>,
    ) -> Result<(), ConnError> {
        // Bytes read that the session has not taken yet; empty (and unallocated) while it keeps up.
        let mut input = prefix;
        let mut idle = std::time::Instant::now();
        loop {
            let used = self.pump(&input)?;
            input.drain(..used.min(input.len()));
            if input.is_empty() {
                input = Vec::new();
            }
            if !self.wire.is_empty() {
                sock.write_all(&self.wire).await?;
                self.wire.clear();
                self.wire.shrink_to(WIRE_KEEP);
            }
            // An HTTP request with `Connection: close` was the connection's last: its answer is out.
            if self.closing || lock(&self.session).is_finished() {
                return Ok(());
            }
            // 4. Wait for bytes, a push or the session's next timer.
            let now = self.sh.now();
            let wait = lock(&self.session)
                .poll_timeout()
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(1), Duration::from_secs(1));
            if !input.is_empty() {
                // The session takes no more input until it has worked through what it holds, which waits for its
                // own timer (a held HTTP long poll): wait for that, not for more bytes (the socket is not read
                // meanwhile, so TCP pushes back on the client).
                tokio::time::sleep(wait).await;
                let r = lock(&self.session).handle_timeout(self.sh.now());
                if let Err(e) = r {
                    return self.ended(e);
                }
                continue;
            }
            tokio::select! {
                ready = sock.readable() => {
                    ready?;
                    match read_some(sock, &mut input) {
                        Ok(0) => return Ok(()),
                        Ok(_) => idle = std::time::Instant::now(),
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                // A client that does not acknowledge cannot make the DC hold unbounded updates: past
                // `MAX_PENDING_UPDATES` waiting here the channel is not read, so it fills, a push that finds it
                // full makes this connection stop being live (until its next request), and later updates wait in
                // the user's bounded queue (or its difference), none dropped.
                Some(u) = rx.recv(), if self.pushes.len() < api::MAX_PENDING_UPDATES => {
                    self.pushes.push_back(u);
                }
                () = tokio::time::sleep(wait) => {
                    if idle.elapsed() > IDLE_TIMEOUT || self.sh.stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    let r = lock(&self.session).handle_timeout(self.sh.now());
                    if let Err(e) = r {
                        return self.ended(e);
                    }
                }
            }
        }
    }

    /// A session error: the connection ends (cleanly if its client session moved to another connection).
    fn ended(&mut self, e: Error) -> Result<(), ConnError> {
        self.closing = true;
        match e {
            Error::Moved | Error::Closed => {
                if self.sh.verbose {
                    println!("dc: conn {} closed: {e:?}", self.id);
                }
                Ok(())
            }
            _ => Err(ConnError::Rejected("broken transport frame")),
        }
    }

    /// Feeds `input` to the session and runs it until it has nothing more to do: events handled, host queries
    /// answered, requests executed, everything it has to send in `self.wire`. Returns how much of `input` the
    /// session took: it takes nothing while it works through a packet that waits for room (for its answers), and
    /// what it did not take is offered again.
    fn pump(&mut self, input: &[u8]) -> Result<usize, ConnError> {
        let cell = Arc::clone(&self.session);
        let mut off = 0;
        loop {
            let now = self.sh.now();
            let mut s = lock(&cell);
            let n = match input
                .get(off..)
                .filter(|r| !r.is_empty())
                .map(|r| s.handle_input(now, r))
            {
                Some(Ok(n)) => n,
                Some(Err(e)) => return self.ended(e).map(|()| input.len()),
                None => 0,
            };
            off += n;
            // A packet the session dropped before any key exists is garbage (misaligned, oversized): bad input.
            if !s.is_encrypted() && s.frames_dropped() > 0 {
                return Err(ConnError::Rejected("malformed packet"));
            }
            let mut progress = n > 0;
            // Requests borrow the session's buffers: copy them out, then execute and answer.
            let mut requests = Vec::new();
            while let Some(ev) = s.poll_event() {
                progress = true;
                match ev {
                    Event::Request { msg_id, body } => requests.push((msg_id, body.to_vec())),
                    Event::SessionCreated { session_id } => {
                        self.sh.stats.sessions.fetch_add(1, Ordering::SeqCst);
                        if self.sh.verbose {
                            println!("dc: conn {} new session {session_id:#018x}", self.id);
                        }
                    }
                    Event::DisconnectRequested => self.closing = true,
                    _ => {}
                }
            }
            match s.host_query() {
                Some(HostQuery::AuthKey { key_id }) => {
                    // Unknown: −404, the client must create a new key (Telegram answers the same).
                    let stored = lock(&self.sh.keys).keys.get(&key_id).cloned();
                    let _ = s.supply_stored_key(now, stored.as_ref());
                    progress = true;
                }
                Some(HostQuery::NewAuthKey { key_id }) => {
                    self.check_new_key(&mut s, now, key_id)?;
                    progress = true;
                }
                Some(HostQuery::Session { key_id, session_id }) => {
                    drop(s);
                    self.resume(key_id, session_id)?;
                    continue;
                }
                // A plain obfuscated init is answered in `serve` before the first read; a fake-TLS connection asks here,
                // for its ClientHello random and then for the init inside the records.
                Some(HostQuery::ObfuscatedInit) => {
                    check_init(self.sh, &mut s)?;
                    progress = true;
                }
                None => {}
            }
            self.execute(&mut s, now, requests);
            self.register(&s);
            progress |= self.transmit(&mut s, now);
            if !progress {
                return Ok(off);
            }
        }
    }

    /// `HostQuery::NewAuthKey`: checks the id against the store and reserves it in the same critical section, so
    /// two connections cannot both get it (docs/CHECKLIST.md item 25). Temporary keys (PFS) live in memory only.
    fn check_new_key(&mut self, s: &mut DcConnection, now: Instant, key_id: u64) -> Result<(), ConnError> {
        let mut store = lock(&self.sh.keys);
        let taken = store.force_collisions > 0 || store.keys.contains_key(&key_id);
        store.force_collisions = store.force_collisions.saturating_sub(1);
        let _ = s.accept_new_key(now, taken, &mut rand::rng());
        if taken {
            self.sh.stats.key_collisions.fetch_add(1, Ordering::SeqCst);
            if self.sh.verbose {
                println!("dc: conn {} new key id {key_id:#018x} taken: dh_gen_retry", self.id);
            }
            return Ok(());
        }
        let Some(key) = s.stored_key().filter(|k| k.key.id() == key_id) else {
            return Ok(()); // the run expired meanwhile: the client was told −404
        };
        let temporary = s.new_key_expires_in().is_some();
        if let (Some(p), false) = (&self.sh.keys_file, temporary) {
            append_key(p, &key)?;
        }
        store.keys.insert(key_id, key);
        self.sh.stats.keys_created.fetch_add(1, Ordering::SeqCst);
        if self.sh.verbose {
            let kind = if temporary { "temporary" } else { "permanent" };
            println!("dc: conn {} created {kind} auth key {key_id:#018x}", self.id);
        }
        Ok(())
    }

    /// `HostQuery::Session`: continues the client's session if a connection (open or closed) holds it, else
    /// starts a new one, unless a session of that id was dropped before its retention ended (then the connection
    /// is refused: a new session now could execute a copy of one of its messages again).
    fn resume(&mut self, key_id: u64, session_id: u64) -> Result<(), ConnError> {
        let now = self.sh.now();
        let (holder, may_start) = {
            let mut sessions = lock(&self.sh.sessions);
            let holder = sessions
                .map
                .get(&(key_id, session_id))
                .filter(|(id, _)| *id != self.id)
                .map(|(id, s)| (*id, Arc::clone(s)));
            let may_start = holder.is_some() || sessions.may_start((key_id, session_id), std::time::Instant::now());
            (holder, may_start)
        };
        let cell = Arc::clone(&self.session);
        let Some((old_id, old)) = holder else {
            if !may_start {
                return Err(ConnError::Rejected("session dropped before its retention ended"));
            }
            let _ = lock(&cell).resume_session(now, None);
            return Ok(());
        };
        // Two session locks at once: the lower connection id first (see `Sessions`).
        let (mut mine, mut theirs) = if self.id < old_id {
            let mine = lock(&cell);
            (mine, lock(&old))
        } else {
            let theirs = lock(&old);
            (lock(&cell), theirs)
        };
        match mine.resume_session(now, Some(&mut theirs)) {
            Ok(()) => {
                self.sh.stats.sessions_resumed.fetch_add(1, Ordering::SeqCst);
                if self.sh.verbose {
                    println!(
                        "dc: conn {} took session {session_id:#018x} over from conn {old_id}",
                        self.id
                    );
                }
            }
            // That connection no longer holds the session (its client moved to another session inside it): the
            // session's replay state is gone from the index, so it may not start anew before its retention ends.
            Err(mtproto_sansio::session::ResumeError::Mismatch) => {
                drop((mine, theirs));
                let until = std::time::Instant::now() + SessionConfig::DEFAULT.limits.session_retention();
                let mut sessions = lock(&self.sh.sessions);
                if sessions
                    .map
                    .get(&(key_id, session_id))
                    .is_some_and(|(id, _)| *id == old_id)
                {
                    sessions.map.remove(&(key_id, session_id));
                }
                sessions.tombstones.insert((key_id, session_id), until);
                sessions.tombstone_order.push_back(((key_id, session_id), until));
                return Err(ConnError::Rejected("session moved on inside its connection"));
            }
            // A replayed first message was dropped; the session stays where it is.
            Err(_) => {}
        }
        Ok(())
    }

    /// Indexes this connection under its client session once it has one (new or taken over).
    fn register(&mut self, s: &DcConnection) {
        let Some(at) = s
            .session()
            .filter(|e| e.has_session())
            .map(|e| (e.auth_key().id(), e.session_id()))
        else {
            return;
        };
        if self.registered != Some(at) {
            lock(&self.sh.sessions)
                .map
                .insert(at, (self.id, Arc::clone(&self.session)));
            self.registered = Some(at);
        }
    }

    /// The connection closed: its session stays available to a reconnecting client for the retention the engine
    /// names (`Limits::session_retention`), among the last [`IDLE_SESSIONS`]; one dropped earlier leaves a tombstone.
    fn keep_session(&mut self) {
        let Some(at) = self.registered.take() else { return };
        let now = std::time::Instant::now();
        let until = now + SessionConfig::DEFAULT.limits.session_retention();
        let mut sessions = lock(&self.sh.sessions);
        if sessions.map.get(&at).is_none_or(|(id, _)| *id != self.id) {
            return; // it moved to another connection
        }
        sessions.idle.push_back((at, self.id, until));
        sessions.expire(now);
        while sessions.idle.len() > IDLE_SESSIONS {
            let Some((at, id, until)) = sessions.idle.pop_front() else {
                break;
            };
            if sessions.map.get(&at).is_some_and(|(holder, _)| *holder == id) {
                sessions.map.remove(&at);
                sessions.tombstones.insert(at, until);
                sessions.tombstone_order.push_back((at, until));
            }
        }
    }

    /// Executes requests (after a connection's first, it is live for its user) and queues their answers. The
    /// sign-in, config and account calls go to the cluster's [`World`], the rest to [`api::execute`]; a user is
    /// the key's signed-in account, or else the auth key itself (`api::user_id_of`).
    fn execute(&mut self, s: &mut DcConnection, now: Instant, requests: Vec<(MsgId, Vec<u8>)>) {
        let Some(e) = s.session().filter(|_| !requests.is_empty()) else {
            return;
        };
        let session = BindParams {
            temp_auth_key_id: e.auth_key().id(),
            temp_session_id: e.session_id(),
            expires_at: 0,
        };
        let date = i32::try_from(self.sh.unix(now).0).unwrap_or(i32::MAX);
        for (msg_id, body) in requests {
            let key = self.sh.perm_key(session.temp_auth_key_id);
            let user = lock(&self.sh.cluster.world).identity(self.sh.dc_id, key);
            self.go_live(user);
            self.sh.stats.requests.fetch_add(1, Ordering::SeqCst);
            self.sh
                .stats
                .request_bytes
                .fetch_add(body.len() as u64, Ordering::SeqCst);
            if cfg!(debug_assertions) {
                let v = tl_check::roundtrip(&body);
                if let tl_check::Verdict::Mismatch { calls, at } = &v {
                    eprintln!(
                        "test_dc: TL ROUND TRIP MISMATCH {calls:08x?} at byte {at}: {}",
                        hex::encode(&body)
                    );
                }
                lock(&self.sh.stats.tl).record(&v);
            }
            let reply = if Reader::new(&body).peek_constructor().ok() == Some(AuthBindTempAuthKey::CONSTRUCTOR) {
                self.bind(&session, msg_id, &body, now)
            } else {
                let ctx = auth::Ctx {
                    dc: self.sh.dc_id,
                    key,
                    date,
                };
                // The call inside its wrappers, method id first (a body the wrappers do not parse goes to
                // `api::execute`, which refuses it).
                let call = invoke::unwrap(&body, api::MAX_WRAPPERS)
                    .ok()
                    .and_then(|w| body.get(body.len().saturating_sub(w.args.len() + 4)..));
                let stream = call.and_then(|c| {
                    let world = lock(&self.sh.cluster.world);
                    // The update stream is a signed-in account's: a key without one gets `auth`'s
                    // `401 AUTH_KEY_UNREGISTERED`, as on Telegram (tests/dc_auth.rs `unauthorized_calls_get_401`).
                    world.user_of(self.sh.dc_id, key)?;
                    updates::execute(&mut lock(&self.sh.cluster.updates), &world, user, date, c)
                });
                let file = match stream {
                    Some((reply, pushes)) => {
                        for p in &pushes {
                            // The caller's own updates go to its other connections (this one has the answer).
                            let taken = self.sh.route_live(&p.push, p.own.then_some(self.id));
                            if let (false, Some(from)) = (taken, p.channel_from) {
                                lock(&self.sh.cluster.updates).missed_channel(p.push.to, from);
                            }
                        }
                        Some(reply)
                    }
                    None => call.and_then(|c| files::execute(&mut lock(&self.sh.cluster.files), self.sh.dc_id, c)),
                };
                let outcome = match file {
                    Some(reply) => Some(auth::Outcome {
                        reply,
                        pushes: Vec::new(),
                    }),
                    None => call.and_then(|c| lock(&self.sh.cluster.world).execute(c, ctx, &mut rand::rng())),
                };
                match outcome {
                    Some(o) => {
                        for (dc, p) in o.pushes {
                            self.sh.route(dc, p);
                        }
                        o.reply
                    }
                    None => {
                        let caller = api::Caller { user, date };
                        // Relayed secret-chat messages are numbered in the recipient's qts sequence of the update
                        // stream, which keeps them for `updates.getDifference`. Locks: world, then hub, then the
                        // stream (nothing takes them the other way round); the queued pushes are routed under the
                        // same hub lock that checked their room, so a full queue refuses the call, never drops.
                        let (reply, live) = {
                            let world = lock(&self.sh.cluster.world);
                            let mut hub = lock(&self.sh.hub);
                            let mut stream = lock(&self.sh.cluster.updates);
                            let Hub { dir, pending, .. } = &mut *hub;
                            let mut relay = Relay {
                                stream: &mut stream,
                                pending,
                                world: &world,
                            };
                            let (reply, pushes) = api::execute_with(&body, &mut rand::rng(), caller, dir, &mut relay);
                            let mut live = Vec::new();
                            for p in pushes {
                                // A signed-in account fetches a missed qts update with a difference: like the rest
                                // of the update stream it goes to live connections only. Anything else
                                // (`updateEncryption`, or a user that is an auth key and cannot call
                                // `getDifference`) waits in the queue, whose room `Relay::room` checked.
                                if p.sequenced && world.is_account(p.to) {
                                    live.push(p);
                                } else {
                                    hub.route(p, &self.sh.stats);
                                }
                            }
                            (reply, live)
                        };
                        for p in live {
                            self.sh.route_live(&p, None);
                        }
                        reply
                    }
                }
            };
            if matches!(reply, Reply::Error(..)) {
                self.sh.stats.rpc_errors.fetch_add(1, Ordering::SeqCst);
            }
            self.backlog.push_back((msg_id, reply));
        }
    }

    /// Queues backlogged answers and updates, and drains the session's output into `self.wire`; whether anything
    /// moved.
    fn transmit(&mut self, s: &mut DcConnection, now: Instant) -> bool {
        let before = (self.backlog.len(), self.pushes.len(), self.wire.len());
        if s.is_encrypted() {
            while let Some((req, reply)) = self.backlog.front_mut() {
                let r = match reply {
                    Reply::Result(b) => s.answer(now, *req, b),
                    Reply::Error(code, msg) => s.answer_error(now, *req, *code, msg.as_bytes()),
                };
                match r {
                    // The session holds as many unacknowledged answers as it can: retried after the client's
                    // acknowledgements (the next input) or the next transmission.
                    Err(SendError::QueueFull) => break,
                    // A result the session can never carry: the query is still answered, with an error.
                    Err(SendError::TooLarge) if matches!(reply, Reply::Result(_)) => {
                        *reply = Reply::Error(500, "RESULT_TOO_LARGE");
                    }
                    // Answered, or nothing waits for it any more (the session moved or closed).
                    _ => {
                        self.backlog.pop_front();
                    }
                }
            }
            // Updates are content-related messages of their own (the client acknowledges them).
            while let Some(u) = self.pushes.front() {
                if matches!(s.send(now, u, MsgKind::Notice), Err(SendError::QueueFull)) {
                    break;
                }
                self.pushes.pop_front();
            }
        }
        let wire = &mut self.wire;
        OUT.with_borrow_mut(|out| {
            let need = s.min_transmit_len();
            if out.len() < need {
                out.resize(need, 0);
            }
            let mut rng = rand::rng();
            while let Ok(Some(n)) = s.poll_transmit(now, &mut rng, out) {
                wire.extend_from_slice(out.get(..n).unwrap_or_default());
            }
        });
        before != (self.backlog.len(), self.pushes.len(), self.wire.len())
    }

    /// Makes this connection live for `user` on a request (its first, or the next after a push found it too busy):
    /// updates for the user come here from now on, starting with those that waited.
    fn go_live(&mut self, user: i64) {
        if self.user != Some(user) {
            self.leave();
        }
        let mut hub = lock(&self.sh.hub);
        let conns = hub.live.entry(user).or_default();
        if conns.iter().any(|(id, _)| *id == self.id) {
            return;
        }
        conns.push((self.id, self.tx.clone()));
        if let Some(q) = hub.pending.remove(&user) {
            self.sh.stats.updates_pushed.fetch_add(q.len() as u64, Ordering::SeqCst);
            self.pushes.extend(q);
        }
        drop(hub);
        if self.sh.verbose {
            println!("dc: conn {} is live for user {user}", self.id);
        }
        self.user = Some(user);
    }

    /// No longer live for its user.
    fn leave(&mut self) {
        if let Some(user) = self.user.take() {
            let mut hub = lock(&self.sh.hub);
            if let Some(conns) = hub.live.get_mut(&user) {
                conns.retain(|(id, _)| *id != self.id);
                if conns.is_empty() {
                    hub.live.remove(&user);
                }
            }
        }
    }

    /// `auth.bindTempAuthKey` on this (temporary key's) session: verified against the permanent key it names.
    fn bind(&self, session: &BindParams, msg_id: MsgId, body: &[u8], now: Instant) -> Reply {
        let perm = bind_perm_key_id(body).and_then(|id| lock(&self.sh.keys).keys.get(&id).map(|k| k.key.clone()));
        match perm.map(|k| (k.id(), verify_bind(&k, session, msg_id, body, self.sh.unix(now)))) {
            Some((perm_id, Ok(_))) => {
                let mut store = lock(&self.sh.keys);
                if store.keys.contains_key(&session.temp_auth_key_id) {
                    store.bound.insert(session.temp_auth_key_id, perm_id);
                }
                drop(store);
                self.sh.stats.binds.fetch_add(1, Ordering::SeqCst);
                if self.sh.verbose {
                    println!(
                        "dc: conn {} bound temporary key {:#018x}",
                        self.id, session.temp_auth_key_id
                    );
                }
                Reply::Result(mtproto_sansio::tl::BOOL_TRUE.to_le_bytes().to_vec())
            }
            _ => Reply::Error(400, "ENCRYPTED_MESSAGE_INVALID"),
        }
    }
}
