//! The test DC: a threaded TCP server over the crate's DC-role machines. Each connection gets its own thread (plus
//! a reader thread feeding it through a channel, so updates pushed by other connections wake it too); the
//! handshake tables, the auth-key store and the secret-chat directory are shared, so keys survive reconnects and
//! two clients can open a secret chat through the DC. A connection that sends garbage (an unknown transport, a
//! broken frame, a misaligned packet) is closed; nothing else is affected.
//!
//! Updates (`updateEncryption`, `updateNewEncryptedMessage`) go to every live connection of their user as
//! content-related server messages; a connection becomes live for its user (see `api::user_id_of`) with its first
//! request, as on Telegram. Updates for a user with no live connection wait, at most `api::MAX_PENDING_UPDATES`.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::fs::OpenOptions;
use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::rsa::RsaPrivateKey;
use mtproto_sansio::handshake::{MAX_SERVER_MESSAGE, ServerConfig, ServerHandshakes, ServerReply};
use mtproto_sansio::session::bind::{BindParams, bind_perm_key_id, verify_bind};
use mtproto_sansio::session::{Clock, Engine, EngineConfig, Event, MsgId, MsgKind, SendError};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::{AuthBindTempAuthKey, Reader};
use mtproto_sansio::transport::detect::{Detected, detect};
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_sansio::transport::{Framing, strip_padding};

use super::api::{self, Reply};
use super::carriage_conn::{self, Carriages};
use super::link::{Incoming, Link};
use mtproto_sansio::carriage::faketls::FakeTlsSecret;

/// Largest inbound frame: Telethon sends single messages of up to 1,044,448 bytes (INTEROP.md), plus the packet
/// envelope and padding.
pub const MAX_FRAME: usize = 1_114_112;
/// Outbound resend arena per connection (answers wait here until acknowledged).
pub const TX_ARENA: usize = 262_144;
/// Messages in flight per connection.
pub const MSGS: usize = 64;
/// Concurrent handshake runs, all connections together.
pub const HANDSHAKE_RUNS: usize = 256;
/// How long a new connection may take to show its transport.
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections are closed after this long without a byte.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Inputs queued for a connection thread. Its reader waits when they are full (so TCP pushes back on the client);
/// a push that finds them full makes the connection not live until its next request, and the update waits for that.
pub const CHANNEL_DEPTH: usize = 64;
/// Stack of a connection thread: the engine is built on it before it is boxed.
const CONN_STACK: usize = 64 * 1024 * 1024;

/// The DC-role session of one connection.
pub type DcEngine = Engine<MAX_FRAME, TX_ARENA, MSGS>;

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
    /// Refuse handshakes naming another DC (−444).
    pub dc_id: Option<i32>,
    /// Concurrent connections; more are closed on accept.
    pub max_conns: usize,
    /// File-backed key store (one hex key per line); in memory if `None`.
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
    /// RPC requests executed.
    pub requests: AtomicU64,
    /// Requests bytes executed (after gzip inflation).
    pub request_bytes: AtomicU64,
    /// Requests answered with rpc_error.
    pub rpc_errors: AtomicU64,
    /// Sessions created (`new_session_created` sent).
    pub sessions: AtomicU64,
    /// Temporary keys bound with `auth.bindTempAuthKey`.
    pub binds: AtomicU64,
    /// `Updates` handed to a live connection of their user.
    pub updates_pushed: AtomicU64,
}

/// What wakes a connection thread.
enum Input {
    /// Bytes its reader thread read.
    Bytes(Vec<u8>),
    /// The peer closed the socket.
    Closed,
    /// Reading failed.
    Failed(io::Error),
    /// An `Updates` for this connection's user, from another connection.
    Push(Vec<u8>),
}

/// Secret-chat routing: the api directory, the live connections of each user, updates waiting for one.
#[derive(Default)]
struct Hub {
    dir: api::Directory,
    live: HashMap<i64, Vec<(u64, SyncSender<Input>)>>,
    pending: HashMap<i64, VecDeque<Vec<u8>>>,
}

impl Hub {
    /// Hands `push` to every live connection of its user, or queues it (bounded, oldest dropped). A connection that
    /// cannot take it now (gone, or its inputs full) stops being live.
    fn route(&mut self, push: api::Push, stats: &DcStats) {
        let conns = self.live.entry(push.to).or_default();
        conns.retain(|(_, tx)| tx.try_send(Input::Push(push.updates.clone())).is_ok());
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
}

struct Shared {
    hs: Mutex<ServerHandshakes<'static, HANDSHAKE_RUNS>>,
    hs_padded: Mutex<ServerHandshakes<'static, HANDSHAKE_RUNS>>,
    /// Auth keys by id, with the first salt of those this process created (0 for keys loaded from the file).
    keys: Mutex<HashMap<u64, (AuthKey, u64)>>,
    hub: Mutex<Hub>,
    keys_file: Option<PathBuf>,
    secret: Option<ProxySecret>,
    carriages: Carriages,
    start: std::time::Instant,
    unix_micros_at_start: u64,
    stats: DcStats,
    stop: AtomicBool,
    verbose: bool,
    max_conns: usize,
}

impl Shared {
    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running DC.
pub struct Dc {
    /// The address it listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Dc {
    /// Counters.
    pub fn stats(&self) -> &DcStats {
        &self.shared.stats
    }

    /// Keys in the store.
    pub fn key_count(&self) -> usize {
        lock(&self.shared.keys).len()
    }

    /// Secret chats in the directory (in any state).
    pub fn secret_chats(&self) -> usize {
        lock(&self.shared.hub).dir.chat_count()
    }

    /// Stops accepting (open connections end on their own).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Loads a key store file: one 512-hex-digit key per line.
fn load_keys(path: &PathBuf) -> io::Result<HashMap<u64, (AuthKey, u64)>> {
    let mut keys = HashMap::new();
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(keys),
        Err(e) => return Err(e),
    };
    for line in io::BufReader::new(f).lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let raw = hex::decode(line).map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        let bytes: [u8; 256] = raw
            .try_into()
            .map_err(|_| io::Error::new(ErrorKind::InvalidData, "key line is not 256 bytes"))?;
        let k = AuthKey::from_bytes(bytes);
        keys.insert(k.id(), (k, 0));
    }
    Ok(keys)
}

fn append_key(path: &PathBuf, key: &AuthKey) -> io::Result<()> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    writeln!(f, "{}", hex::encode(key.as_bytes()))
}

/// Binds and starts accepting in a background thread.
pub fn start(opts: DcOptions) -> io::Result<Dc> {
    let listener = TcpListener::bind(opts.listen)?;
    let addr = listener.local_addr()?;
    let keys = match &opts.keys_file {
        Some(p) => load_keys(p)?,
        None => HashMap::new(),
    };
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(io::Error::other)?;
    let unix_micros_at_start = u64::try_from(unix.as_micros()).unwrap_or(u64::MAX);
    // One key for the life of the process: leaking it gives the handshake tables their 'static borrow.
    let rsa: &'static RsaPrivateKey = Box::leak(Box::new(opts.rsa_key));
    let group = DhGroup::telegram(3).map_err(|e| io::Error::other(format!("{e}")))?;
    let mut cfg = ServerConfig::new(rsa, group);
    cfg.dc_id = opts.dc_id;
    cfg.unix_micros_at_zero = unix_micros_at_start;
    let mut padded = cfg.clone();
    padded.transport_padding = true;
    let shared = Arc::new(Shared {
        hs: Mutex::new(ServerHandshakes::new(cfg)),
        hs_padded: Mutex::new(ServerHandshakes::new(padded)),
        keys: Mutex::new(keys),
        hub: Mutex::new(Hub {
            dir: api::Directory::for_dc(opts.dc_id.unwrap_or(2)),
            ..Hub::default()
        }),
        keys_file: opts.keys_file,
        secret: opts
            .secret
            .or_else(|| opts.faketls.as_ref().map(FakeTlsSecret::proxy_secret)),
        carriages: Carriages::new(opts.faketls),
        start: std::time::Instant::now(),
        unix_micros_at_start,
        stats: DcStats::default(),
        stop: AtomicBool::new(false),
        verbose: opts.verbose,
        max_conns: opts.max_conns,
    });
    let acc = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("dc-accept".into())
        .spawn(move || accept_loop(&listener, &acc))?;
    Ok(Dc { addr, shared })
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut next_id = 0u64;
    for sock in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(sock) = sock else { continue };
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
        let sh = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("dc-conn-{id}"))
            .stack_size(CONN_STACK)
            .spawn(move || {
                let peer = sock.peer_addr().ok();
                let r = Conn::serve(&sh, sock, id);
                if let Err(e) = &r {
                    sh.stats.bad_connections.fetch_add(1, Ordering::SeqCst);
                    if sh.verbose {
                        println!("dc: conn {id} ({peer:?}) closed: {e}");
                    }
                }
                sh.stats.active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.stats.active.fetch_sub(1, Ordering::SeqCst);
        }
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
    link: Link<MAX_FRAME>,
    engine: Option<Box<DcEngine>>,
    /// Answers refused with `QueueFull`, retried once the client has acknowledged earlier ones.
    backlog: VecDeque<(MsgId, Reply)>,
    wire: Vec<u8>,
    scratch: Vec<u8>,
    quick_acks: Vec<u32>,
    disconnect: bool,
    rng: rand::rngs::ThreadRng,
    /// The user this connection is live for (after its first request).
    user: Option<i64>,
    /// This connection's own wake-up channel, registered in the hub once it is live.
    tx: SyncSender<Input>,
    /// Updates to send, retried when the engine's queue is full.
    pushes: VecDeque<Vec<u8>>,
}

impl<'s> Conn<'s> {
    fn serve(sh: &'s Shared, mut sock: TcpStream, id: u64) -> Result<(), ConnError> {
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(DETECT_TIMEOUT))?;
        // 1. Which transport? Peek at the first bytes without consuming them.
        let mut prefix = Vec::with_capacity(64);
        let mut buf = vec![0u8; 65_536];
        let link = loop {
            match detect(&prefix, sh.secret.as_ref()) {
                Detected::NeedMore(n) => {
                    let want = n.saturating_sub(prefix.len()).max(1);
                    let got = sock.read(buf.get_mut(..want).unwrap_or_default())?;
                    if got == 0 {
                        return Ok(());
                    }
                    prefix.extend_from_slice(buf.get(..got).unwrap_or_default());
                }
                Detected::Plain(_) if sh.secret.is_some() => {
                    return Err(ConnError::Rejected("plain transport, secret required"));
                }
                Detected::Plain(f) => break Link::server_plain(f),
                Detected::Obfuscated { .. } => break Link::server_obfuscated(sh.secret.clone()),
                Detected::Http | Detected::FakeTls => {
                    // HTTP, WebSocket, fake-TLS: unwrapped into a plain connection the DC serves like any other.
                    let inner = carriage_conn::accept(&sh.carriages, sh.secret.as_ref(), sock, &prefix)
                        .map_err(|e| ConnError::Rejected(e.reason()))?;
                    return Conn::serve(sh, inner, id);
                }
                Detected::Rejected(_) => return Err(ConnError::Rejected("invalid obfuscated init")),
            }
        };
        // 2. A reader thread turns socket reads into channel messages, so pushes from other connections wake us.
        let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
        sock.set_read_timeout(None)?;
        let mut reader = sock.try_clone()?;
        let rtx = tx.clone();
        std::thread::Builder::new()
            .name(format!("dc-read-{id}"))
            .spawn(move || {
                let mut buf = vec![0u8; 65_536];
                loop {
                    let msg = match reader.read(&mut buf) {
                        Ok(0) => Input::Closed,
                        Ok(n) => Input::Bytes(buf.get(..n).unwrap_or_default().to_vec()),
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => Input::Failed(e),
                    };
                    let last = !matches!(msg, Input::Bytes(_));
                    if rtx.send(msg).is_err() || last {
                        return;
                    }
                }
            })?;
        let mut c = Conn {
            sh,
            id,
            link,
            engine: None,
            backlog: VecDeque::new(),
            wire: Vec::new(),
            scratch: Vec::new(),
            quick_acks: Vec::new(),
            disconnect: false,
            rng: rand::rng(),
            user: None,
            tx,
            pushes: VecDeque::new(),
        };
        let r = c.run(&mut sock, &rx, prefix);
        c.leave();
        // Unblocks the reader thread.
        let _ = sock.shutdown(Shutdown::Both);
        r
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

    fn run(&mut self, sock: &mut TcpStream, rx: &mpsc::Receiver<Input>, prefix: Vec<u8>) -> Result<(), ConnError> {
        let sh = self.sh;
        let c = self;
        let mut packet = Vec::new();
        let mut input = prefix;
        let mut idle = std::time::Instant::now();
        loop {
            let mut off = 0;
            while let Some(rest) = input.get(off..).filter(|r| !r.is_empty()) {
                let (n, inc) = c
                    .link
                    .decode(rest, &mut packet)
                    .map_err(|_| ConnError::Rejected("broken transport frame"))?;
                off += n;
                if let Some(Incoming::Packet { quick_ack }) = inc {
                    c.on_packet(&packet, quick_ack)?;
                    c.flush(sock)?;
                }
                if n == 0 && inc.is_none() {
                    break;
                }
            }
            c.flush(sock)?;
            if c.disconnect {
                return Ok(());
            }
            // 3. Wait for bytes, a push or the engine's next timer.
            let now = sh.now();
            let wait = c
                .engine
                .as_ref()
                .and_then(|e| e.poll_timeout())
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(1), Duration::from_secs(1));
            input.clear();
            match rx.recv_timeout(wait) {
                Ok(Input::Bytes(b)) => {
                    input = b;
                    idle = std::time::Instant::now();
                }
                Ok(Input::Push(u)) => {
                    // A client that never acknowledges cannot make the DC hold unbounded updates.
                    if c.pushes.len() >= api::MAX_PENDING_UPDATES {
                        c.pushes.pop_front();
                    }
                    c.pushes.push_back(u);
                }
                Ok(Input::Closed) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Ok(Input::Failed(e)) => return Err(e.into()),
                Err(RecvTimeoutError::Timeout) => {
                    if idle.elapsed() > IDLE_TIMEOUT || sh.stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    if let Some(e) = c.engine.as_mut() {
                        e.handle_timeout(sh.now());
                    }
                }
            }
        }
    }

    fn on_packet(&mut self, packet: &[u8], quick_ack: bool) -> Result<(), ConnError> {
        let now = self.sh.now();
        let key_id = packet
            .first_chunk::<8>()
            .map(|b| u64::from_le_bytes(*b))
            .ok_or(ConnError::Rejected("packet shorter than an auth_key_id"))?;
        if key_id == 0 {
            return self.on_handshake(packet);
        }
        let framing = self.link.framing().unwrap_or(Framing::Intermediate);
        let data = strip_padding(framing, packet).map_err(|_| ConnError::Rejected("misaligned packet"))?;
        if self.engine.as_ref().is_none_or(|e| e.auth_key().id() != key_id) {
            let key = lock(&self.sh.keys).get(&key_id).cloned();
            let Some((key, salt)) = key else {
                // Unknown key: the client must create a new one (Telegram answers −404 too).
                self.link
                    .encode_error(-404, &mut self.wire)
                    .map_err(|_| ConnError::Rejected("encode"))?;
                return Ok(());
            };
            let cfg = EngineConfig {
                ping_interval: None,
                ..EngineConfig::DEFAULT
            };
            let clock = Clock::new(i64::try_from(self.sh.unix_micros_at_start).unwrap_or(i64::MAX));
            // A key made by this process: its handshake's salt is valid, so the client's first message is accepted.
            let engine = if salt != 0 {
                DcEngine::server_with_salt(cfg, key, clock, now, &mut self.rng, salt)
            } else {
                DcEngine::server(cfg, key, clock, now, &mut self.rng)
            };
            self.engine = Some(Box::new(engine));
            self.scratch = vec![0u8; self.engine.as_ref().map_or(0, |e| e.min_out_len())];
        }
        let Some(engine) = self.engine.as_mut() else {
            return Ok(());
        };
        if let Ok(token) = engine.handle_packet(now, data)
            && quick_ack
        {
            self.quick_acks.push(token);
        }
        // Requests borrow the engine's buffers: copy them out, then execute and answer.
        let mut requests = Vec::new();
        while let Some(ev) = engine.poll_event() {
            match ev {
                Event::Request { msg_id, body } => requests.push((msg_id, body.to_vec())),
                Event::SessionCreated { session_id } => {
                    self.sh.stats.sessions.fetch_add(1, Ordering::SeqCst);
                    if self.sh.verbose {
                        println!("dc: conn {} new session {session_id:#018x}", self.id);
                    }
                }
                Event::DisconnectRequested => self.disconnect = true,
                _ => {}
            }
        }
        let session = BindParams {
            temp_auth_key_id: engine.auth_key().id(),
            temp_session_id: engine.session_id(),
            expires_at: 0,
        };
        let user = api::user_id_of(session.temp_auth_key_id);
        if !requests.is_empty() {
            self.go_live(user);
        }
        for (msg_id, body) in requests {
            self.sh.stats.requests.fetch_add(1, Ordering::SeqCst);
            self.sh
                .stats
                .request_bytes
                .fetch_add(body.len() as u64, Ordering::SeqCst);
            let reply = if Reader::new(&body).peek_constructor().ok() == Some(AuthBindTempAuthKey::CONSTRUCTOR) {
                self.bind(&session, msg_id, &body)
            } else {
                let unix = self.sh.unix_micros_at_start.saturating_add(now.as_micros()) / 1_000_000;
                let caller = api::Caller {
                    user,
                    date: i32::try_from(unix).unwrap_or(i32::MAX),
                };
                let mut hub = lock(&self.sh.hub);
                let (reply, pushes) = api::execute(&body, &mut self.rng, caller, &mut hub.dir);
                for p in pushes {
                    hub.route(p, &self.sh.stats);
                }
                reply
            };
            if matches!(reply, Reply::Error(..)) {
                self.sh.stats.rpc_errors.fetch_add(1, Ordering::SeqCst);
            }
            self.backlog.push_back((msg_id, reply));
        }
        Ok(())
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

    /// `auth.bindTempAuthKey` on this (temporary key's) session: verified against the permanent key it names.
    fn bind(&self, session: &BindParams, msg_id: MsgId, body: &[u8]) -> Reply {
        let perm = bind_perm_key_id(body).and_then(|id| lock(&self.sh.keys).get(&id).map(|(k, _)| k.clone()));
        let unix = UnixTime(self.sh.unix_micros_at_start.saturating_add(self.sh.now().as_micros()) / 1_000_000);
        match perm.map(|k| verify_bind(&k, session, msg_id, body, unix)) {
            Some(Ok(_)) => {
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

    fn on_handshake(&mut self, packet: &[u8]) -> Result<(), ConnError> {
        let now = self.sh.now();
        let padded = self.link.framing() == Some(Framing::PaddedIntermediate);
        let table = if padded { &self.sh.hs_padded } else { &self.sh.hs };
        let mut out = [0u8; MAX_SERVER_MESSAGE];
        let reply = {
            let keys = lock(&self.sh.keys);
            let taken = |id: u64| keys.contains_key(&id);
            lock(table)
                .handle(now, &mut self.rng, self.id, packet, &mut out, &taken)
                .map_err(|_| ConnError::Rejected("handshake buffer"))?
        };
        let r = match reply {
            ServerReply::Send(n) => {
                self.link
                    .encode(out.get(..n).unwrap_or_default(), false, &mut self.rng, &mut self.wire)
            }
            ServerReply::Error(code) => self.link.encode_error(code, &mut self.wire),
            ServerReply::Complete { len, outcome } => {
                let key = outcome.auth_key;
                let temporary = outcome.expires_in.is_some();
                // Temporary keys (PFS) live in memory only.
                if let (Some(p), false) = (&self.sh.keys_file, temporary) {
                    append_key(p, &key)?;
                }
                if self.sh.verbose {
                    let kind = if temporary { "temporary" } else { "permanent" };
                    println!("dc: conn {} created {kind} auth key {:#018x}", self.id, key.id());
                }
                lock(&self.sh.keys).insert(key.id(), (key, outcome.server_salt));
                self.sh.stats.keys_created.fetch_add(1, Ordering::SeqCst);
                self.link
                    .encode(out.get(..len).unwrap_or_default(), false, &mut self.rng, &mut self.wire)
            }
        };
        r.map_err(|_| ConnError::Rejected("encode"))
    }

    /// Queues backlogged answers, drains the engine and writes everything out.
    fn flush(&mut self, sock: &mut TcpStream) -> Result<(), ConnError> {
        let now = self.sh.now();
        for token in self.quick_acks.drain(..) {
            self.link
                .encode_quick_ack(token, &mut self.wire)
                .map_err(|_| ConnError::Rejected("encode"))?;
        }
        if let Some(engine) = self.engine.as_mut() {
            while let Some((req, reply)) = self.backlog.front() {
                let r = match reply {
                    Reply::Result(b) => engine.answer(now, *req, b),
                    Reply::Error(code, msg) => engine.answer_error(now, *req, *code, msg.as_bytes()),
                };
                match r {
                    Err(SendError::QueueFull) => break,
                    _ => {
                        self.backlog.pop_front();
                    }
                }
            }
            // Updates are content-related messages of their own (the client acknowledges them).
            while let Some(u) = self.pushes.front() {
                match engine.send(now, u, MsgKind::Notice) {
                    Err(SendError::QueueFull) => break,
                    _ => {
                        self.pushes.pop_front();
                    }
                }
            }
            while let Ok(Some(pkt)) = engine.poll_packet(now, &mut self.rng, &mut self.scratch) {
                let payload = self.scratch.get(..pkt.len).unwrap_or_default();
                self.link
                    .encode(payload, false, &mut self.rng, &mut self.wire)
                    .map_err(|_| ConnError::Rejected("encode"))?;
            }
        }
        if !self.wire.is_empty() {
            sock.write_all(&self.wire)?;
            self.wire.clear();
        }
        Ok(())
    }
}
