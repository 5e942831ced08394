//! Measures what a connection costs the test DC, and what the connection type costs anywhere:
//!
//! ```text
//! scripts/dc_memory.sh [--idle 500] [--active 100,1000] [--budget-mib 6144]
//! # which is:
//! cargo build --release --features std --example test_dc --example dc_memory
//! target/release/examples/dc_memory [--dc target/release/examples/test_dc] [--idle N,..] [--active N,..]
//!                                   [--budget-mib M]
//! ```
//! Each scenario starts a fresh `test_dc` as a child process (the binary next to this one unless `--dc` names
//! another) and reads its resident memory from `/proc/PID/status` (`VmRSS`; `VmHWM` is the peak) before and after:
//! - **idle**: N TCP connections that never send a byte (sampled once the DC has accepted all of them, well within
//!   its 10 s transport-detection timeout);
//! - **active**: N clients, each a `mtproto_test_dc::client::Conn` on the default transport (obfuscated padded intermediate)
//!   that runs the auth-key handshake, creates a session with a `ping` query and waits for its `pong`, then stays
//!   connected and quiet (its engine is dropped here; the DC keeps its side of the session).
//!
//! An active scenario whose projection from the previous one's per-client figure exceeds `--budget-mib` is printed
//! as skipped, and one whose DC passes the budget while it runs is stopped there and printed as aborted (the machine
//! is shared). Then `size_of` of the connection type, `session::Connection`, at its default capacities and at every
//! capacity the repository uses (plus, with `alloc`, the heap its buffers hold after a 64-byte RPC: `Connection::heap_bytes`).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error;
use std::ffi::OsStr;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::{Connection, ConnectionLarge, ConnectionSmall, SessionConfig};
use mtproto_sansio::tl;
use mtproto_test_dc::child::{DcProcess, ProcStatus as Status};
use mtproto_test_dc::client::{Conn, Owned};
use mtproto_test_dc::link::Transport;

/// The repository's test DC key (also what `tests/hosts.rs` uses).
const KEY_PEM: &str = include_str!("../tests/data/keys/dc_test_pkcs1.pem");
/// How long the DC may take to accept the idle connections: it closes each 10 s after accepting it if no transport
/// showed by then, so the sample must come before.
const ACCEPT_WAIT: Duration = Duration::from_secs(8);
/// Let the DC settle before a sample.
const SETTLE: Duration = Duration::from_millis(500);

const USAGE: &str = "usage: dc_memory [--dc PATH] [--idle N,..] [--active N,..] [--budget-mib M]";

/// A fresh test DC child process serving one DC (as measured before test_dc served three by default), settled.
fn start_dc(bin: &Path, key: &Path) -> Result<DcProcess, Box<dyn Error>> {
    let args = ["--dcs", "1", "--max-conns", "20000", "--rsa-key"].map(OsStr::new);
    let dc = DcProcess::start(bin, &[&args[..], &[key.as_os_str()]].concat())?;
    std::thread::sleep(SETTLE);
    Ok(dc)
}

/// One printed row.
struct Row {
    scenario: &'static str,
    n: usize,
    outcome: Result<(Status, Status), String>,
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn per(kib: u64, n: usize) -> String {
    size(kib as f64 / n.max(1) as f64)
}

fn size(k: f64) -> String {
    if k >= 1024.0 {
        format!("{:.2} MiB", k / 1024.0)
    } else {
        format!("{k:.1} KiB")
    }
}

fn print_row(r: &Row) {
    match &r.outcome {
        Ok((before, after)) => {
            let delta = after.rss_kib.saturating_sub(before.rss_kib);
            println!(
                "| {:<7} | {:>6} | {:>11} | {:>11} | {:>11} | {:>10} | {:>11} | {:>7} |",
                r.scenario,
                r.n,
                mib(before.rss_kib),
                mib(after.rss_kib),
                mib(delta),
                per(delta, r.n),
                mib(after.hwm_kib),
                after.threads
            );
        }
        Err(why) => println!("| {:<7} | {:>6} | {why} |", r.scenario, r.n),
    }
}

/// N connections that never send a byte. Sampled as soon as the DC holds all of them: it closes each 10 s after
/// accepting it, so a DC too slow to accept N within [`ACCEPT_WAIT`] is reported with the count it reached.
fn idle(bin: &Path, key: &Path, n: usize) -> Result<(Status, Status), Box<dyn Error>> {
    let dc = start_dc(bin, key)?;
    let (before, fds) = (dc.status()?, dc.fds());
    let t0 = Instant::now();
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        socks.push(TcpStream::connect(dc.addr)?);
    }
    let connected = t0.elapsed();
    loop {
        let held = dc.fds().saturating_sub(fds);
        if held >= n {
            break;
        }
        if t0.elapsed() > ACCEPT_WAIT {
            let now = dc.status()?;
            return Err(format!(
                "the DC held {held} of {n} after {ACCEPT_WAIT:?} (all connected after {connected:.1?}): {} more RSS \
                 then, {} per connection held",
                mib(now.rss_kib.saturating_sub(before.rss_kib)),
                per(now.rss_kib.saturating_sub(before.rss_kib), held)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(SETTLE.min(ACCEPT_WAIT.saturating_sub(t0.elapsed())));
    let after = dc.status()?;
    drop(socks);
    Ok((before, after))
}

/// N clients that handshake, ping and stay connected; stops early (`Err`) past `budget_kib`.
fn active(bin: &Path, key: &Path, n: usize, budget_kib: u64) -> Result<(Status, Status), Box<dyn Error>> {
    let dc = start_dc(bin, key)?;
    let before = dc.status()?;
    let public = *parse_private_pem(KEY_PEM.as_bytes())
        .map_err(|e| format!("{e}"))?
        .public_key();
    let keys = [public];
    let mut rng = rand::rng();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut conn = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).map_err(|e| format!("{e}"))?;
        let (mut engine, _) = conn
            // `--dcs 1` serves DC 1, and a cluster DC refuses a handshake naming another DC (-444).
            .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 1), &mut rng)
            .map_err(|e| format!("client {i}: handshake: {e}"))?;
        // ping#7abe77ec ping_id:long, sent as a query: its pong ends it like an answer.
        let mut ping = tl::Ping::CONSTRUCTOR.to_le_bytes().to_vec();
        ping.extend_from_slice(&(i as i64).to_le_bytes());
        match conn.call(&mut engine, &mut rng, &ping, Duration::from_secs(30), &mut |_| {}) {
            Ok(Owned::Result(..)) => {}
            other => return Err(format!("client {i}: ping: {other:?}").into()),
        }
        conn.flush(&mut engine, &mut rng).map_err(|e| format!("{e}"))?;
        conns.push(conn);
        if i % 10 == 9 {
            let now = dc.status()?;
            if now.rss_kib > budget_kib {
                return Err(format!("aborted after {} clients: the DC reached {}", i + 1, mib(now.rss_kib)).into());
            }
        }
    }
    std::thread::sleep(SETTLE);
    let after = dc.status()?;
    drop(conns);
    Ok((before, after))
}

fn list(v: &str) -> Result<Vec<usize>, Box<dyn Error>> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(Into::into))
        .collect()
}

/// A client and a DC connection of these capacities under one stored key exchange one 64-byte query and its
/// answer in memory (no socket); returns the heap each holds afterwards (`Connection::heap_bytes`: with `alloc` the
/// buffers grow to the frames carried, 0 without it).
fn rpc_heap<const RX: usize, const TX: usize, const MSGS: usize>() -> (usize, usize) {
    use mtproto_sansio::crypto::auth_key::AuthKey;
    use mtproto_sansio::session::{ConnectionConfig, Event, HostQuery, MsgKind};
    use mtproto_sansio::time::{Instant as At, UnixTime};
    let mut rng = rand::rng();
    let cfg = ConnectionConfig {
        unix_time_hint: Some(UnixTime(1_700_000_000)),
        ..ConnectionConfig::DEFAULT
    };
    let key = AuthKey::from_bytes([7; 256]);
    let now = At::from_secs(1);
    let mut client: Box<Connection<RX, TX, MSGS>> = Box::new(Connection::client(cfg, key.clone(), now, &mut rng));
    let mut dc: Box<Connection<RX, TX, MSGS>> = Box::new(Connection::server(cfg, key, now, &mut rng));
    let _ = client.send(now, &[0x5a; 64], MsgKind::Query);
    let mut out = vec![0u8; client.min_transmit_len()];
    for _ in 0..4 {
        while let Ok(Some(n)) = client.poll_transmit(now, &mut rng, &mut out) {
            let mut off = 0;
            while off < n {
                let Ok(k) = dc.handle_input(now, out.get(off..n).unwrap_or(&[])) else {
                    break;
                };
                off += k.max(1);
                if let Some(HostQuery::Session { .. }) = dc.host_query() {
                    let _ = dc.resume_session(now, None);
                }
                let mut requests = Vec::new();
                while let Some(ev) = dc.poll_event() {
                    if let Event::Request { msg_id, body } = ev {
                        requests.push((msg_id, body.to_vec()));
                    }
                }
                for (id, body) in requests {
                    let _ = dc.answer(now, id, &body);
                }
            }
        }
        while let Ok(Some(n)) = dc.poll_transmit(now, &mut rng, &mut out) {
            let mut off = 0;
            while off < n {
                let Ok(k) = client.handle_input(now, out.get(off..n).unwrap_or(&[])) else {
                    break;
                };
                off += k.max(1);
                while client.poll_event().is_some() {}
            }
        }
    }
    (client.heap_bytes(), dc.heap_bytes())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut bin = std::env::current_exe()?.with_file_name("test_dc");
    let mut idles = vec![500];
    let mut actives = vec![100, 1000];
    let mut budget_mib: u64 = 6144;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--dc" => bin = PathBuf::from(val()?),
            "--idle" => idles = list(&val()?)?,
            "--active" => actives = list(&val()?)?,
            "--budget-mib" => budget_mib = val()?.parse()?,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    let budget_kib = budget_mib.saturating_mul(1024);
    let key = std::env::temp_dir().join(format!("dc_memory-{}.pem", std::process::id()));
    std::fs::write(&key, KEY_PEM)?;

    println!("test_dc: {}", bin.display());
    println!("budget: {budget_mib} MiB of DC RSS");
    println!();
    println!("| scenario |      N |  RSS before |   RSS after |   RSS delta | per conn.  | peak (HWM)  | threads |");
    println!("|---------|-------:|------------:|------------:|------------:|-----------:|------------:|--------:|");
    for &n in &idles {
        let outcome = idle(&bin, &key, n).map_err(|e| format!("failed: {e}"));
        print_row(&Row {
            scenario: "idle",
            n,
            outcome,
        });
    }
    // KiB per client of the last active scenario measured, for the projection.
    let mut per_client: Option<f64> = None;
    for &n in &actives {
        let projected = per_client.map(|p| p * n as f64);
        let outcome = match projected {
            Some(p) if p > budget_kib as f64 => Err(format!(
                "skipped: {} × {} per client = {} projected, over the {budget_mib} MiB budget",
                n,
                size(per_client.unwrap_or(0.0)),
                mib(p as u64)
            )),
            _ => active(&bin, &key, n, budget_kib).map_err(|e| format!("{e}")),
        };
        if let Ok((b, a)) = &outcome {
            per_client = Some(a.rss_kib.saturating_sub(b.rss_kib) as f64 / n.max(1) as f64);
        }
        print_row(&Row {
            scenario: "active",
            n,
            outcome,
        });
    }
    let _ = std::fs::remove_file(&key);

    println!();
    println!(
        "| connection type `session::Connection<RX, TX, MSGS>` | where | size_of | heap after a 64-byte RPC: client / DC |"
    );
    println!("|---|---|---:|---:|");
    let sizes = [
        (
            "Connection (defaults: 16 KiB, 16 KiB, 32)",
            "the default",
            std::mem::size_of::<Connection>(),
            rpc_heap::<16_384, 16_384, 32>(),
        ),
        (
            "ConnectionSmall (4 KiB, 4 KiB, 8)",
            "microcontrollers",
            std::mem::size_of::<ConnectionSmall>(),
            rpc_heap::<4096, 4096, 8>(),
        ),
        (
            "Connection<8192, 8192, 16>",
            "tests",
            std::mem::size_of::<Connection<8192, 8192, 16>>(),
            rpc_heap::<8192, 8192, 16>(),
        ),
        (
            "Connection<65_536, 65_536, 32>",
            "examples/tokio_client.rs",
            std::mem::size_of::<Connection<65_536, 65_536, 32>>(),
            rpc_heap::<65_536, 65_536, 32>(),
        ),
        (
            "ConnectionLarge (64 KiB, 256 KiB, 64)",
            "hosts",
            std::mem::size_of::<ConnectionLarge>(),
            rpc_heap::<65_536, 262_144, 64>(),
        ),
        (
            "Connection<1_114_112, 16 MiB, 64> (largest)",
            "test_dc (`mtproto_test_dc::dc::DcConnection`); file transfers (`client::FileConnection`)",
            std::mem::size_of::<mtproto_test_dc::dc::DcConnection>(),
            rpc_heap::<{ mtproto_test_dc::dc::MAX_FRAME }, { mtproto_test_dc::dc::TX_ARENA }, 64>(),
        ),
    ];
    for (what, used, bytes, (client, dc)) in sizes {
        println!(
            "| {what} | {used} | {} ({bytes} B) | {client} B / {dc} B |",
            size(bytes as f64 / 1024.0)
        );
    }
    Ok(())
}
