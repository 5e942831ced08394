//! The canonical blocking host loop: one thread, `std::net`, no runtime.
//!
//! ```text
//! cargo run --release --example blocking_client -- --dc 127.0.0.1:4430 --rsa-key dc.pem \
//!     [--transport obf-padded] [--secret HEX] [--key-file auth.key] [--calls 5] [--pfs]
//! ```
//! `--secret`: an MTProxy secret (16 bytes; 17 with a leading `dd` for padded intermediate), for an obfuscated
//! transport to a proxy or to a DC started with `--secret` (examples/interop/MTPROXY.md).
//! Connects, creates an auth key (or reuses the one in `--key-file`, written after the first handshake), makes
//! `messages.getDhConfig` calls, and reconnects with exponential backoff when the connection breaks. The session
//! (the crate's connection type, `session::Connection`, driven by `mtproto_test_dc::client::Conn`) survives reconnects: unacknowledged queries are resent on the new connection.
//! `--pfs`: the stored (or a new) key becomes the permanent key and only signs bindings; the calls travel under a
//! temporary key ([`PfsClient`], <https://core.telegram.org/api/pfs>) created on each connection, bound with
//! `auth.bindTempAuthKey` and replaced, on a new connection, before it expires.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)] // also compiled into tests/hosts.rs, which does not call `main`

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::pfs::DEFAULT_TEMP_KEY_LIFETIME;
use mtproto_sansio::session::{ConnectionConfig, TransportConfig};
use mtproto_sansio::session::{FailReason, KeyEvent, PfsClient, PfsConfig, PfsEvent, QueryId, SessionConfig};
use mtproto_sansio::time::UnixTime;
use mtproto_sansio::transport::Framing;
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_test_dc::api;
use mtproto_test_dc::client::{self, ClientConnection, ClientError, Conn, Owned, load_key, parse_rsa_key, save_key};
use mtproto_test_dc::link::{Carriage, Transport};

/// What to connect to and what to do.
pub struct Options {
    /// The DC.
    pub dc: SocketAddr,
    /// The DC's RSA public key.
    pub rsa_key: RsaPublicKey,
    /// The transport.
    pub transport: Transport,
    /// MTProxy secret, for an obfuscated transport.
    pub secret: Option<ProxySecret>,
    /// Where the auth key lives between runs.
    pub key_file: Option<PathBuf>,
    /// `messages.getDhConfig` calls to make.
    pub calls: usize,
    /// Connection attempts before giving up.
    pub max_attempts: u32,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// A new auth key was created (none was stored).
    pub created_key: bool,
    /// TCP connections made.
    pub connections: u32,
    /// Round-trip time of each call.
    pub rtts: Vec<Duration>,
    /// `--pfs`: temporary keys bound.
    pub temp_keys_bound: u64,
}

/// `--pfs` settings.
pub struct Pfs {
    /// Temporary key lifetime, seconds.
    pub lifetime: u32,
    /// Pause between calls (to watch re-keys with a short lifetime).
    pub pause: Duration,
}

/// Connect, handshake if needed, call, reconnect with backoff on failure.
pub fn run(opts: &Options) -> Result<Summary, ClientError> {
    let mut rng = rand::rng();
    let mut summary = Summary::default();
    let mut key = match &opts.key_file {
        Some(p) => load_key(p)?,
        None => None,
    };
    let mut engine = None;
    let mut backoff = Duration::from_millis(100);
    while summary.rtts.len() < opts.calls {
        if summary.connections >= opts.max_attempts {
            return Err(ClientError::Timeout);
        }
        summary.connections += 1;
        let r = attempt(opts, &mut key, &mut engine, &mut summary, &mut rng);
        match r {
            Ok(()) => break,
            // The DC does not know the key: forget it and make a new one on the next connection.
            Err(ClientError::Code(-404)) => {
                eprintln!("DC does not know our key (-404): creating a new one");
                key = None;
                engine = None;
            }
            Err(e) => {
                eprintln!(
                    "connection {} failed: {e}; retrying in {backoff:?}",
                    summary.connections
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    Ok(summary)
}

/// One connection: handshake if there is no key, then the calls still to make.
fn attempt(
    opts: &Options,
    key: &mut Option<AuthKey>,
    engine: &mut Option<Box<ClientConnection>>,
    summary: &mut Summary,
    rng: &mut rand::rngs::ThreadRng,
) -> Result<(), ClientError> {
    let mut conn = Conn::connect(opts.dc, opts.transport, opts.secret.clone(), rng)?;
    if let Some(e) = engine.as_mut() {
        // Same session, new connection: unacknowledged messages are resent.
        e.reconnect(client::now());
    } else if let Some(k) = key.as_ref() {
        *engine = Some(conn.session(SessionConfig::DEFAULT, k.clone(), 0, 0, rng)?);
    } else {
        let keys = [opts.rsa_key];
        let (session, out) = conn.handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), rng)?;
        if let Some(p) = &opts.key_file {
            save_key(p, &out.auth_key)?;
        }
        summary.created_key = true;
        *key = Some(out.auth_key);
        *engine = Some(session);
    }
    let eng = engine.as_mut().ok_or(ClientError::Timeout)?;
    while summary.rtts.len() < opts.calls {
        let t = std::time::Instant::now();
        match conn.call(
            eng,
            rng,
            &api::get_dh_config(0, 16),
            Duration::from_secs(10),
            &mut |_| {},
        )? {
            Owned::Result(_, body) if api::parse_dh_config(&body).is_ok() => summary.rtts.push(t.elapsed()),
            other => return Err(ClientError::Io(std::io::Error::other(format!("unexpected {other:?}")))),
        }
    }
    Ok(())
}

/// `--pfs`: the calls under temporary keys bound to the stored (or a new) permanent key.
pub fn run_pfs(opts: &Options, pfs: &Pfs) -> Result<Summary, ClientError> {
    let mut rng = rand::rng();
    let mut summary = Summary::default();
    let perm = match opts.key_file.as_deref().map(load_key).transpose()?.flatten() {
        Some(k) => k,
        None => {
            summary.connections += 1;
            let mut conn = Conn::connect(opts.dc, opts.transport, opts.secret.clone(), &mut rng)?;
            let (_, out) = conn.handshake(SessionConfig::DEFAULT, ClientConfig::new(&[opts.rsa_key], 2), &mut rng)?;
            if let Some(p) = &opts.key_file {
                save_key(p, &out.auth_key)?;
            }
            summary.created_key = true;
            out.auth_key
        }
    };
    // Every re-key runs a handshake with the trusted keys: the policy keeps them (one small leak per run).
    let keys: &'static [RsaPublicKey] = Box::leak(Box::new([opts.rsa_key]));
    let (t, now) = (opts.transport, client::now());
    let transport = TransportConfig {
        framing: t.framing,
        obfuscated: t.obfuscated,
        dc_id: Some(2),
    };
    let unix = UnixTime((client::unix_micros_at_zero() + now.as_micros()) / 1_000_000);
    let session = ConnectionConfig {
        transport,
        unix_time_hint: Some(unix),
        ..ConnectionConfig::DEFAULT
    };
    let mut cfg = PfsConfig::new(session, ClientConfig::new(keys, 2));
    cfg.temp_key_lifetime = pfs.lifetime;
    // A new permanent key may take a while to reach every DC (item 53).
    cfg.perm_key_created = summary.created_key.then_some(now);
    let mut client: Box<PfsClient> = Box::new(PfsClient::new(cfg, perm, now));
    client.set_proxy_secret(opts.secret.clone()).map_err(broken)?;
    let (mut failures, mut backoff, mut call) = (0, Duration::from_millis(100), None);
    while summary.rtts.len() < opts.calls {
        if failures >= opts.max_attempts {
            return Err(ClientError::Timeout);
        }
        summary.connections += 1;
        // `Ok`: done, or the policy asked for a new connection (a re-key).
        if let Err(e) = pfs_connection(opts, pfs, &mut client, &mut call, &mut summary, &mut rng) {
            eprintln!(
                "connection {} failed: {e}; retrying in {backoff:?}",
                summary.connections
            );
            failures += 1;
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        client.reconnect(client::now());
    }
    summary.temp_keys_bound = client.binds();
    Ok(summary)
}

/// The session broke the stream (a transport error, a buffer too small): drop the connection.
fn broken<E>(_: E) -> ClientError {
    ClientError::Transport
}

/// One TCP connection of the PFS client: calls one at a time until done or a re-key needs a new connection.
fn pfs_connection(
    opts: &Options,
    pfs: &Pfs,
    client: &mut PfsClient,
    call: &mut Option<(QueryId, std::time::Instant)>,
    summary: &mut Summary,
    rng: &mut rand::rngs::ThreadRng,
) -> Result<(), ClientError> {
    let mut sock = TcpStream::connect_timeout(&opts.dc, Duration::from_secs(10))?;
    let (mut out, mut input) = (vec![0u8; client.min_transmit_len()], vec![0u8; 16_384]);
    let mut next_call = std::time::Instant::now();
    loop {
        if call.is_none() && summary.rtts.len() >= opts.calls {
            return Ok(());
        }
        if call.is_none() && std::time::Instant::now() >= next_call {
            let q = client
                .send(client::now(), &api::get_dh_config(0, 16))
                .map_err(ClientError::Send)?;
            *call = Some((q, std::time::Instant::now()));
        }
        while let Some(n) = client.poll_transmit(client::now(), rng, &mut out).map_err(broken)? {
            sock.write_all(out.get(..n).unwrap_or_default())?;
        }
        // Sleep on the socket until the policy's timer (or the next call) is due.
        let due = client
            .poll_timeout()
            .map_or(Duration::MAX, |t| t.saturating_duration_since(client::now()));
        let next = next_call.saturating_duration_since(std::time::Instant::now());
        let wait = if call.is_none() { due.min(next) } else { due };
        sock.set_read_timeout(Some(wait.clamp(Duration::from_millis(1), Duration::from_secs(1))))?;
        let n = match sock.read(&mut input) {
            Ok(0) => return Err(ClientError::Io(ErrorKind::UnexpectedEof.into())),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
            Err(e) => return Err(e.into()),
        };
        client.handle_timeout(client::now()).map_err(broken)?;
        // Drain the events after every call: `handle_input` consumes nothing while one is pending.
        let mut off = 0;
        loop {
            while let Some(ev) = client.poll_event() {
                match ev {
                    PfsEvent::Result { query, body } if call.is_some_and(|(q, _)| q == query) => {
                        api::parse_dh_config(body).map_err(|e| ClientError::Io(std::io::Error::other(e)))?;
                        summary.rtts.extend(call.take().map(|(_, t)| t.elapsed()));
                        next_call = std::time::Instant::now() + pfs.pause;
                    }
                    // Lost with its key, maybe executed: only a call that is safe to repeat (this one) is resent.
                    PfsEvent::Failed {
                        query,
                        reason: FailReason::KeyLost,
                    } if call.is_some_and(|(q, _)| q == query) => *call = None,
                    PfsEvent::Error { .. } | PfsEvent::Failed { .. } => {
                        return Err(ClientError::Io(std::io::Error::other(format!("call ended: {ev:?}"))));
                    }
                    PfsEvent::Key(KeyEvent::Bound { expires_at }) => {
                        eprintln!("temporary key bound until {expires_at}")
                    }
                    // The old socket's remaining bytes belong to the abandoned key: not fed.
                    PfsEvent::NewConnection(why) => {
                        eprintln!("new temporary key ({why:?}): reconnecting");
                        return Ok(());
                    }
                    PfsEvent::TransportError(code) if code != -404 => return Err(ClientError::Code(code)),
                    _ => {}
                }
            }
            if off >= n {
                break;
            }
            off += client
                .handle_input(client::now(), input.get(off..n).unwrap_or_default())
                .map_err(broken)?;
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (mut dc, mut rsa, mut transport, mut key_file, mut calls) = (None, None, Transport::DEFAULT, None, 5);
    let (mut secret, mut pfs) = (None, false);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dc" => dc = Some(val()?.parse()?),
            "--rsa-key" => rsa = Some(parse_rsa_key(&std::fs::read(val()?)?)?),
            "--transport" => transport = val()?.parse()?,
            "--secret" => {
                secret = Some(ProxySecret::from_bytes(&hex::decode(val()?)?).map_err(|e| format!("--secret: {e}"))?);
            }
            "--key-file" => key_file = Some(PathBuf::from(val()?)),
            "--calls" => calls = val()?.parse()?,
            "--pfs" => pfs = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (Some(dc), Some(rsa_key)) = (dc, rsa) else {
        return Err(
            "usage: blocking_client --dc ADDR --rsa-key PEM [--transport T] [--secret HEX] [--key-file F] [--calls N] \
             [--pfs]"
                .into(),
        );
    };
    // A configuration error, not a connection failure: refuse it before connecting instead of retrying it.
    if secret.is_some() && !transport.obfuscated {
        return Err("--secret needs an obfuscated transport (obf-abridged, obf-intermediate, obf-padded)".into());
    }
    if secret.as_ref().is_some_and(ProxySecret::requires_padding) && transport.framing != Framing::PaddedIntermediate {
        return Err("a dd secret needs --transport obf-padded".into());
    }
    let opts = Options {
        dc,
        rsa_key,
        transport,
        secret,
        key_file,
        calls,
        max_attempts: 8,
    };
    if pfs && transport.carriage != Carriage::Tcp {
        return Err("--pfs runs over TCP transports only".into());
    }
    let s = if pfs {
        run_pfs(
            &opts,
            &Pfs {
                lifetime: DEFAULT_TEMP_KEY_LIFETIME,
                pause: Duration::ZERO,
            },
        )?
    } else {
        run(&opts)?
    };
    println!(
        "key {} after {} connection(s)",
        if s.created_key { "created" } else { "reused" },
        s.connections
    );
    if pfs {
        println!("{} temporary key(s) bound", s.temp_keys_bound);
    }
    for (i, rtt) in s.rtts.iter().enumerate() {
        println!("call {i}: messages.getDhConfig answered in {} µs", rtt.as_micros());
    }
    Ok(())
}
