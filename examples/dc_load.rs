//! Throughput of the test DC end to end, per core of the DC's CPU (issue 16):
//!
//! ```text
//! scripts/dc_load.sh [--sessions 100,1000] [--depth 4] [--secs 10] [--rpc ping] [--handshakes 8] [--hs-secs 10]
//! # which is:
//! cargo build --release --features std --example test_dc --example dc_load
//! target/release/examples/dc_load [--dc target/release/examples/test_dc] [--sessions N,..] [--depth D] [--secs S]
//!                                 [--rpc ping|nearest] [--transport obf-padded] [--threads T]
//!                                 [--handshakes C,..] [--hs-secs S] [--hs-threads T] [--floor-iters K]
//! ```
//! Each scenario starts a fresh `test_dc` child process (one DC; the binary next to this one unless `--dc` names
//! another) and reads its CPU time (user + system, all threads) from `/proc/PID/stat` at the start and the end of
//! the measured window, so every rate is also given per second of the DC's CPU: **RPCs per core-second**. The
//! generator's own CPU time over the same window is printed beside it (it shares the machine with the DC, so it
//! must cost less than the DC per RPC to not be what limits the rate), with the load average before and after.
//!
//! - **RPC load** (`--sessions`): N sessions, each on its own TCP connection under an auth key the DC loaded from
//!   its `--keys` file at start (so no handshake), each keeping `--depth` queries in flight: a new one is sent, in
//!   its own packet, as each answer arrives. `--rpc ping` (default) sends `ping` as a query, which the DC's session
//!   engine answers itself with `pong`; `--rpc nearest` sends `help.getNearestDc`, which test_dc's host executes
//!   (the request path: event, host call, answer, the client's acknowledgements). The clients are the crate's own
//!   client `Connection`s on a tokio runtime of `--threads` workers (default 1) in this process. Every session first
//!   gets one answer (the DC's `bad_server_salt` and `new_session_created` come then); the window starts after.
//! - **Handshake load** (`--handshakes C`): C clients each creating auth keys back to back (connect, handshake,
//!   close) on a runtime of `--hs-threads` workers (default 2: a client's side of a handshake costs about as much as
//!   the DC's). Printed beside it: the DC's modpow floor measured in this process, after the scenario, with the
//!   crate's own primitives: one blinded RSA decryption (`RsaPrivateKey::decrypt_raw`, the repository's 2048-bit
//!   test key), one g^b (`DhGroup::gen_keypair`) and one g_a^b (`DhGroup::shared`), each the median over
//!   `--floor-iters` of this thread's CPU time.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::{
    Connection, ConnectionConfig, Event, MsgKind, SALT_SCHEDULE_LEN, SaltSchedule, SessionConfig, TransportConfig,
};
use mtproto_sansio::time::UnixTime;
use mtproto_sansio::tl;
use mtproto_sansio::tl::api::functions::HelpGetNearestDc;
use mtproto_test_dc::child::{DcProcess, cpu_time, load_average, thread_cpu};
use mtproto_test_dc::client::{now, unix_micros_at_zero};
use mtproto_test_dc::link::{Carriage, Transport};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The repository's test DC key (also what `tests/hosts.rs` and `dc_memory` use).
const KEY_PEM: &str = include_str!("../tests/data/keys/dc_test_pkcs1.pem");
/// The DC id the child serves (`--dc-id 1`) and the clients name.
const DC_ID: i16 = 1;
/// How long every session may take to get its first answer.
const WARM_UP: Duration = Duration::from_secs(60);
/// How long sessions may take to drain their queries in flight after the window.
const DRAIN: Duration = Duration::from_secs(10);
/// Bytes one socket read takes.
const READ_CHUNK: usize = 65_536;

const USAGE: &str = "usage: dc_load [--dc PATH] [--sessions N,..] [--depth D] [--secs S] [--rpc ping|nearest] \
                     [--transport T] [--threads T] [--handshakes C,..] [--hs-secs S] [--hs-threads T] \
                     [--floor-iters K]";

/// The client connection type of the load: the crate's default capacities (16 KiB frames; pings and
/// `nearestDc` are tiny).
type LoadConnection = Connection;

/// What the clients of one scenario share with the measuring thread.
#[derive(Default)]
struct Counters {
    /// Stop sending: the window is over.
    stop: AtomicBool,
    /// Answers (results) received.
    answered: AtomicU64,
    /// `rpc_error` answers and queries that failed without one.
    errors: AtomicU64,
    /// Sessions that got their first answer (RPC load), or clients running (handshake load).
    ready: AtomicUsize,
    /// Sessions or clients that ended (done or failed).
    ended: AtomicUsize,
    /// The first few failures, for the report.
    failures: Mutex<Vec<String>>,
}

impl Counters {
    fn fail(&self, what: String) {
        let mut f = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if f.len() < 8 {
            f.push(what);
        }
    }
}

/// The options of a run.
struct Options {
    bin: PathBuf,
    sessions: Vec<usize>,
    depth: usize,
    secs: u64,
    rpc: Rpc,
    transport: Transport,
    threads: usize,
    handshakes: Vec<usize>,
    hs_secs: u64,
    hs_threads: usize,
    floor_iters: usize,
}

/// The query the RPC load sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rpc {
    /// `ping` as a query: answered by the DC's session engine.
    Ping,
    /// `help.getNearestDc`: executed by test_dc's host.
    Nearest,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::Ping => "ping",
            Rpc::Nearest => "help.getNearestDc",
        }
    }

    fn body(self, i: u64) -> Vec<u8> {
        match self {
            Rpc::Ping => {
                // ping#7abe77ec ping_id:long
                let mut b = tl::Ping::CONSTRUCTOR.to_le_bytes().to_vec();
                b.extend_from_slice(&i.to_le_bytes());
                b
            }
            Rpc::Nearest => HelpGetNearestDc::ID.to_le_bytes().to_vec(),
        }
    }
}

/// Figures of one measured window.
struct Window {
    wall: Duration,
    count: u64,
    errors: u64,
    dc_cpu: Duration,
    gen_cpu: Duration,
    load: ([f64; 3], [f64; 3]),
}

/// Measures `secs` seconds of what `c` counts, with the DC's and this process's CPU time over the same window.
fn measure(dc: &DcProcess, c: &Counters, secs: u64) -> Result<Window, Box<dyn Error>> {
    let load0 = load_average().unwrap_or_default();
    let (n0, e0, dc0, gen0) = (
        c.answered.load(Ordering::SeqCst),
        c.errors.load(Ordering::SeqCst),
        dc.cpu()?,
        cpu_time(None)?,
    );
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (n1, e1, dc1, gen1) = (
        c.answered.load(Ordering::SeqCst),
        c.errors.load(Ordering::SeqCst),
        dc.cpu()?,
        cpu_time(None)?,
    );
    let wall = t0.elapsed();
    c.stop.store(true, Ordering::SeqCst);
    Ok(Window {
        wall,
        count: n1.saturating_sub(n0),
        errors: e1.saturating_sub(e0),
        dc_cpu: dc1.saturating_sub(dc0),
        gen_cpu: gen1.saturating_sub(gen0),
        load: (load0, load_average().unwrap_or_default()),
    })
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("load")
        // A handshake's DH step and a connection built by value want more than the default 2 MiB.
        .thread_stack_size(16 << 20)
        .enable_io()
        .enable_time()
        .build()
}

/// The connection configuration of every client: the transport, our clock as the time hint.
fn client_config(transport: Transport) -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig {
            ping_interval: None,
            ..SessionConfig::DEFAULT
        },
        transport: TransportConfig {
            framing: transport.framing,
            obfuscated: transport.obfuscated,
            dc_id: Some(DC_ID),
        },
        unix_time_hint: Some(UnixTime(
            unix_micros_at_zero().saturating_add(now().as_micros()) / 1_000_000,
        )),
        salt: 0,
    }
}

/// Drains `conn`'s output into `wire`.
fn drain_output(conn: &mut LoadConnection, rng: &mut StdRng, out: &mut [u8], wire: &mut Vec<u8>) -> Result<(), String> {
    let t = now();
    while let Some(n) = conn.poll_transmit(t, rng, out).map_err(|e| format!("{e:?}"))? {
        wire.extend_from_slice(out.get(..n).unwrap_or_default());
    }
    Ok(())
}

/// Feeds `bytes` to `conn`, handing each event to `on_event`; fails if the connection stops taking input.
fn feed(
    conn: &mut LoadConnection,
    bytes: &[u8],
    rng: &mut StdRng,
    out: &mut [u8],
    wire: &mut Vec<u8>,
    on_event: &mut dyn FnMut(&Event<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut off = 0;
    while off < bytes.len() {
        let k = conn
            .handle_input(now(), bytes.get(off..).unwrap_or_default())
            .map_err(|e| format!("session: {e:?}"))?;
        while let Some(ev) = conn.poll_event() {
            on_event(&ev)?;
        }
        if k == 0 {
            // Input paused until owed answers are written: write them, then try once more.
            drain_output(conn, rng, out, wire)?;
            let k = conn
                .handle_input(now(), bytes.get(off..).unwrap_or_default())
                .map_err(|e| format!("session: {e:?}"))?;
            if k == 0 {
                return Err("the session takes no input".into());
            }
            off += k;
        } else {
            off += k;
        }
    }
    Ok(())
}

/// One session of the RPC load: keeps `depth` queries in flight, each in its own packet, until told to stop, then
/// waits for the answers in flight.
async fn rpc_session(
    addr: SocketAddr,
    mut conn: Box<LoadConnection>,
    rpc: Rpc,
    depth: usize,
    c: Arc<Counters>,
    seed: [u8; 32],
) -> Result<(), String> {
    let mut rng = StdRng::from_seed(seed);
    let mut sock = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut out = vec![0u8; conn.min_transmit_len()];
    let mut wire = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut in_flight, mut sent, mut first) = (0usize, 0u64, true);
    let mut drain_until = None;
    loop {
        let stop = c.stop.load(Ordering::Relaxed);
        // Top up, one packet per query. Until the first answer, one query at a time (the DC's `bad_server_salt`
        // and `new_session_created` come with it).
        let want = if first { 1 } else { depth };
        while !stop && in_flight < want {
            let body = rpc.body(sent);
            conn.send(now(), &body, MsgKind::Query)
                .map_err(|e| format!("send: {e:?}"))?;
            drain_output(&mut conn, &mut rng, &mut out, &mut wire)?;
            in_flight += 1;
            sent += 1;
        }
        drain_output(&mut conn, &mut rng, &mut out, &mut wire)?;
        if !wire.is_empty() {
            sock.write_all(&wire).await.map_err(|e| format!("write: {e}"))?;
            wire.clear();
        }
        if stop {
            let until = *drain_until.get_or_insert_with(|| std::time::Instant::now() + DRAIN);
            if in_flight == 0 || std::time::Instant::now() > until {
                return Ok(());
            }
        }
        let t = now();
        let wait = conn
            .poll_timeout()
            .map_or(Duration::from_millis(100), |at| at.saturating_duration_since(t))
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        tokio::select! {
            r = sock.read(&mut buf) => {
                let n = r.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("the DC closed the connection".into());
                }
                let mut on_event = |ev: &Event<'_>| -> Result<(), String> {
                    match ev {
                        Event::RpcResult { .. } => {
                            in_flight = in_flight.saturating_sub(1);
                            c.answered.fetch_add(1, Ordering::Relaxed);
                            if std::mem::take(&mut first) {
                                c.ready.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Event::RpcError { .. } | Event::Failed { .. } => {
                            in_flight = in_flight.saturating_sub(1);
                            c.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::TransportError(code) => return Err(format!("transport error {code}")),
                        _ => {}
                    }
                    Ok(())
                };
                feed(&mut conn, buf.get(..n).unwrap_or_default(), &mut rng, &mut out, &mut wire, &mut on_event)?;
            }
            () = tokio::time::sleep(wait) => {
                conn.handle_timeout(now()).map_err(|e| format!("session: {e:?}"))?;
            }
        }
    }
}

/// One client of the handshake load: creates keys back to back (a connection each) until told to stop.
async fn handshake_client(
    addr: SocketAddr,
    transport: Transport,
    keys: &'static [RsaPublicKey],
    c: Arc<Counters>,
    seed: [u8; 32],
) -> Result<(), String> {
    let mut rng = StdRng::from_seed(seed);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut wire = Vec::new();
    c.ready.fetch_add(1, Ordering::SeqCst);
    while !c.stop.load(Ordering::Relaxed) {
        let mut sock = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        sock.set_nodelay(true).map_err(|e| e.to_string())?;
        let hs = ClientConfig::new(keys, i32::from(DC_ID));
        let mut conn: Box<LoadConnection> = Box::new(Connection::client_handshake(client_config(transport), hs, now()));
        let mut out = vec![0u8; conn.min_transmit_len()];
        let mut done = false;
        while !done {
            drain_output(&mut conn, &mut rng, &mut out, &mut wire)?;
            if !wire.is_empty() {
                sock.write_all(&wire).await.map_err(|e| format!("write: {e}"))?;
                wire.clear();
            }
            if c.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let t = now();
            let wait = conn
                .poll_timeout()
                .map_or(Duration::from_millis(100), |at| at.saturating_duration_since(t))
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            tokio::select! {
                r = sock.read(&mut buf) => {
                    let n = r.map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err("the DC closed the connection".into());
                    }
                    let mut on_event = |ev: &Event<'_>| -> Result<(), String> {
                        match ev {
                            Event::AuthKeyReady => done = true,
                            Event::TransportError(code) => return Err(format!("transport error {code}")),
                            _ => {}
                        }
                        Ok(())
                    };
                    feed(&mut conn, buf.get(..n).unwrap_or_default(), &mut rng, &mut out, &mut wire, &mut on_event)?;
                }
                () = tokio::time::sleep(wait) => {
                    conn.handle_timeout(now()).map_err(|e| format!("handshake: {e:?}"))?;
                }
            }
        }
        c.answered.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Writes `n` fresh auth keys with salt schedules in test_dc's `--keys` format and returns them.
fn write_keys(path: &Path, n: usize) -> Result<Vec<AuthKey>, Box<dyn Error>> {
    let mut rng = rand::rng();
    let mut text = String::with_capacity(n * (512 + 2 * SALT_SCHEDULE_LEN + 2));
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let key = AuthKey::from_bytes(rng.random());
        let salts = SaltSchedule::from_secret(rng.random());
        text.push_str(&hex::encode(key.as_bytes()));
        text.push(' ');
        text.push_str(&hex::encode(salts.to_bytes()));
        text.push('\n');
        keys.push(key);
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    std::io::Write::write_all(&mut o.open(path)?, text.as_bytes())?;
    Ok(keys)
}

/// A fresh DC for a scenario: one DC (id 1), room for every connection, the test key, and `extra` arguments.
fn start_dc(bin: &Path, key: &Path, extra: &[&std::ffi::OsStr]) -> Result<DcProcess, Box<dyn Error>> {
    let mut args: Vec<&std::ffi::OsStr> = ["--dc-id", "1", "--max-conns", "20000", "--rsa-key"]
        .map(std::ffi::OsStr::new)
        .to_vec();
    args.push(key.as_os_str());
    args.extend_from_slice(extra);
    Ok(DcProcess::start(bin, &args)?)
}

fn failures(c: &Counters) -> String {
    let f = c.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if f.is_empty() {
        String::new()
    } else {
        format!(" (failures: {})", f.join("; "))
    }
}

fn cores(cpu: Duration, wall: Duration) -> f64 {
    cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)
}

fn load(l: ([f64; 3], [f64; 3])) -> String {
    format!("{:.1} → {:.1}", l.0[0], l.1[0])
}

/// The RPC load with `n` sessions; prints its row.
fn rpc_load(o: &Options, key: &Path, dir: &Path, n: usize) -> Result<(), Box<dyn Error>> {
    let keys_file = dir.join(format!("dc_load-{}-{n}.keys", std::process::id()));
    let keys = write_keys(&keys_file, n)?;
    let dc = start_dc(&o.bin, key, &[std::ffi::OsStr::new("--keys"), keys_file.as_os_str()]);
    let _ = std::fs::remove_file(&keys_file);
    let dc = dc?;
    let rt = runtime(o.threads)?;
    let c = Arc::new(Counters::default());
    let mut rng = rand::rng();
    for key in keys {
        let conn: Box<LoadConnection> = Box::new(Connection::client(client_config(o.transport), key, now(), &mut rng));
        let c2 = Arc::clone(&c);
        let (rpc, depth, addr, seed) = (o.rpc, o.depth, dc.addr, rng.random());
        rt.spawn(async move {
            if let Err(e) = rpc_session(addr, conn, rpc, depth, Arc::clone(&c2), seed).await {
                c2.fail(e);
            }
            c2.ended.fetch_add(1, Ordering::SeqCst);
        });
    }
    let t0 = std::time::Instant::now();
    while c.ready.load(Ordering::SeqCst) < n {
        if t0.elapsed() > WARM_UP || c.ended.load(Ordering::SeqCst) > 0 {
            c.stop.store(true, Ordering::SeqCst);
            return Err(format!(
                "{} of {n} sessions answered after {:.1?}{}",
                c.ready.load(Ordering::SeqCst),
                t0.elapsed(),
                failures(&c)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let warm = t0.elapsed();
    let w = measure(&dc, &c, o.secs)?;
    let t1 = std::time::Instant::now();
    while c.ended.load(Ordering::SeqCst) < n && t1.elapsed() < DRAIN + Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    let rate = w.count as f64 / w.wall.as_secs_f64();
    println!(
        "| {} | {n} | {} | {:.1} s | {} | **{:.0}/s** | {:.2} s ({:.2} cores) | **{:.0}** | {:.1} µs | {:.2} s ({:.2} cores) | \
         {:.1} µs | {} | {} | {:.1?} |{}",
        o.rpc.name(),
        o.depth,
        w.wall.as_secs_f64(),
        w.count,
        rate,
        w.dc_cpu.as_secs_f64(),
        cores(w.dc_cpu, w.wall),
        w.count as f64 / w.dc_cpu.as_secs_f64().max(1e-9),
        w.dc_cpu.as_secs_f64() * 1e6 / w.count.max(1) as f64,
        w.gen_cpu.as_secs_f64(),
        cores(w.gen_cpu, w.wall),
        w.gen_cpu.as_secs_f64() * 1e6 / w.count.max(1) as f64,
        w.errors,
        load(w.load),
        warm,
        failures(&c)
    );
    Ok(())
}

/// Median of `iters` timings of `f` in this thread's CPU time (wall time where the kernel keeps none).
fn median_cpu(iters: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..iters.max(1))
        .map(|_| {
            let (c0, t0) = (thread_cpu(), std::time::Instant::now());
            f();
            match (c0, thread_cpu()) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => t0.elapsed(),
            }
        })
        .collect();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The DC's modpow floor per handshake: (blinded RSA decryption, g^b, g_a^b).
fn floor(iters: usize) -> Result<(Duration, Duration, Duration), Box<dyn Error>> {
    let key = parse_private_pem(KEY_PEM.as_bytes()).map_err(|e| format!("{e}"))?;
    let group = DhGroup::telegram(3).map_err(|e| format!("{e}"))?;
    let mut rng = rand::rng();
    // Below n: the modulus's top byte is not zero.
    let mut block: [u8; 256] = rng.random();
    block[0] = 0;
    let rsa = median_cpu(iters, || {
        let r = key.decrypt_raw(std::hint::black_box(&block), &mut rng);
        std::hint::black_box(r.is_ok());
    });
    let (_, peer) = group.gen_keypair(&mut rng).map_err(|e| format!("{e}"))?;
    let mut secret = None;
    let g_b = median_cpu(iters, || {
        secret = group.gen_keypair(&mut rng).ok();
    });
    let (secret, _) = secret.ok_or("gen_keypair failed")?;
    let g_ab = median_cpu(iters, || {
        std::hint::black_box(group.shared(&secret, std::hint::black_box(&peer)).is_ok());
    });
    Ok((rsa, g_b, g_ab))
}

/// The handshake load with `n` concurrent clients; prints its row and returns the DC's CPU per handshake.
fn handshake_load(o: &Options, key: &Path, n: usize) -> Result<Option<Duration>, Box<dyn Error>> {
    let dc = start_dc(&o.bin, key, &[])?;
    let public = *parse_private_pem(KEY_PEM.as_bytes())
        .map_err(|e| format!("{e}"))?
        .public_key();
    let keys: &'static [RsaPublicKey] = Box::leak(Box::new([public]));
    let rt = runtime(o.hs_threads)?;
    let c = Arc::new(Counters::default());
    let mut rng = rand::rng();
    for _ in 0..n {
        let c2 = Arc::clone(&c);
        let (addr, transport, seed) = (dc.addr, o.transport, rng.random());
        rt.spawn(async move {
            if let Err(e) = handshake_client(addr, transport, keys, Arc::clone(&c2), seed).await {
                c2.fail(e);
            }
            c2.ended.fetch_add(1, Ordering::SeqCst);
        });
    }
    // Settle: every client connected and past its first handshake or two.
    std::thread::sleep(Duration::from_secs(1));
    let w = measure(&dc, &c, o.hs_secs)?;
    rt.shutdown_timeout(Duration::from_secs(2));
    let per = (w.count > 0).then(|| w.dc_cpu / u32::try_from(w.count).unwrap_or(u32::MAX));
    println!(
        "| {n} | {:.1} s | {} | **{:.1}/s** | {:.2} s ({:.2} cores) | **{:.1}** | {} | {:.2} s ({:.2} cores) | {} |{}",
        w.wall.as_secs_f64(),
        w.count,
        w.count as f64 / w.wall.as_secs_f64(),
        w.dc_cpu.as_secs_f64(),
        cores(w.dc_cpu, w.wall),
        w.count as f64 / w.dc_cpu.as_secs_f64().max(1e-9),
        per.map_or("–".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3)),
        w.gen_cpu.as_secs_f64(),
        cores(w.gen_cpu, w.wall),
        load(w.load),
        failures(&c)
    );
    Ok(per)
}

fn list(v: &str) -> Result<Vec<usize>, Box<dyn Error>> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(Into::into))
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut o = Options {
        bin: std::env::current_exe()?.with_file_name("test_dc"),
        sessions: vec![100, 1000],
        depth: 4,
        secs: 10,
        rpc: Rpc::Ping,
        transport: Transport::DEFAULT,
        threads: 1,
        handshakes: vec![8],
        hs_secs: 10,
        hs_threads: 2,
        floor_iters: 30,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--dc" => o.bin = PathBuf::from(val()?),
            "--sessions" => o.sessions = list(&val()?)?,
            "--depth" => o.depth = val()?.parse::<usize>()?.max(1),
            "--secs" => o.secs = val()?.parse()?,
            "--rpc" => {
                o.rpc = match val()?.as_str() {
                    "ping" => Rpc::Ping,
                    "nearest" => Rpc::Nearest,
                    other => return Err(format!("--rpc {other}: ping or nearest").into()),
                }
            }
            "--transport" => {
                o.transport = val()?.parse().map_err(|e| format!("--transport: {e}"))?;
                if o.transport.carriage != Carriage::Tcp {
                    return Err("--transport: plain TCP transports only (no carriage)".into());
                }
            }
            "--threads" => o.threads = val()?.parse()?,
            "--handshakes" => o.handshakes = list(&val()?)?,
            "--hs-secs" => o.hs_secs = val()?.parse()?,
            "--hs-threads" => o.hs_threads = val()?.parse()?,
            "--floor-iters" => o.floor_iters = val()?.parse()?,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    let dir = std::env::temp_dir();
    let key = dir.join(format!("dc_load-{}.pem", std::process::id()));
    std::fs::write(&key, KEY_PEM)?;
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("test_dc: {}", o.bin.display());
    println!(
        "transport {}, {cpus} CPUs, load average {:?}",
        o.transport,
        load_average().unwrap_or_default()
    );

    if !o.sessions.is_empty() {
        println!();
        println!(
            "RPC load: sessions on stored keys, each with `depth` queries in flight (one per packet), {} s; generator on {} \
             runtime thread(s)",
            o.secs, o.threads
        );
        println!();
        println!(
            "| query | sessions | depth | window | answers | answers/s | DC CPU | **per DC core-second** | DC CPU per answer | \
             generator CPU | generator CPU per answer | errors | load avg (1 min) | warm-up |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
        for &n in &o.sessions {
            if let Err(e) = rpc_load(&o, &key, &dir, n) {
                println!("| {} | {n} | {} | failed: {e} |", o.rpc.name(), o.depth);
            }
        }
    }

    if !o.handshakes.is_empty() {
        println!();
        println!(
            "Handshake load: clients creating permanent keys back to back (a connection each), {} s; generator on {} \
             runtime thread(s)",
            o.hs_secs, o.hs_threads
        );
        println!();
        println!(
            "| clients | window | handshakes | handshakes/s | DC CPU | **per DC core-second** | DC CPU per handshake | \
             generator CPU | load avg (1 min) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        let mut per = Vec::new();
        for &n in &o.handshakes {
            match handshake_load(&o, &key, n) {
                Ok(p) => per.extend(p),
                Err(e) => println!("| {n} | failed: {e} |"),
            }
        }
        let (rsa, g_b, g_ab) = floor(o.floor_iters)?;
        let sum = rsa + g_b + g_ab;
        println!();
        println!(
            "DC modpow floor (this process, thread CPU, median of {}): blinded RSA decryption {:.2} ms + g^b {:.2} ms + \
             g_a^b {:.2} ms = **{:.2} ms** per handshake, i.e. {:.1} handshakes per core-second",
            o.floor_iters,
            rsa.as_secs_f64() * 1e3,
            g_b.as_secs_f64() * 1e3,
            g_ab.as_secs_f64() * 1e3,
            sum.as_secs_f64() * 1e3,
            1.0 / sum.as_secs_f64().max(1e-9)
        );
        for p in per {
            println!(
                "DC CPU per handshake {:.2} ms = {:.2}× the floor",
                p.as_secs_f64() * 1e3,
                p.as_secs_f64() / sum.as_secs_f64().max(1e-9)
            );
        }
    }
    let _ = std::fs::remove_file(&key);
    Ok(())
}
