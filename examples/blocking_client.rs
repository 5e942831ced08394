//! The canonical blocking host loop: one thread, `std::net`, no runtime.
//!
//! ```text
//! cargo run --release --example blocking_client -- --dc 127.0.0.1:4430 --rsa-key dc.pem \
//!     [--transport obf-padded] [--secret HEX] [--key-file auth.key] [--calls 5]
//! ```
//! `--secret`: an MTProxy secret (16 bytes; 17 with a leading `dd` for padded intermediate), for an obfuscated
//! transport to a proxy or to a DC started with `--secret` (examples/interop/MTPROXY.md).
//! Connects, creates an auth key (or reuses the one in `--key-file`, written after the first handshake), makes
//! `messages.getDhConfig` calls, and reconnects with exponential backoff when the connection breaks. The engine
//! (the session) survives reconnects: unacknowledged queries are resent on the new connection.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)] // also compiled into tests/hosts.rs, which does not call `main`

#[path = "common/mod.rs"]
pub mod common;

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::api;
use common::client::{self, ClientEngine, ClientError, Conn, Owned, load_key, parse_rsa_key, save_key};
use common::link::Transport;
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::EngineConfig;
use mtproto_sansio::transport::Framing;
use mtproto_sansio::transport::obfuscated::ProxySecret;

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
    engine: &mut Option<Box<ClientEngine>>,
    summary: &mut Summary,
    rng: &mut rand::rngs::ThreadRng,
) -> Result<(), ClientError> {
    let mut conn = Conn::connect(opts.dc, opts.transport, opts.secret.clone(), rng)?;
    if let Some(e) = engine.as_mut() {
        // Same session, new connection: unacknowledged messages are resent.
        e.reconnect(client::now());
    } else if let Some(k) = key.as_ref() {
        *engine = Some(client::session(EngineConfig::DEFAULT, k.clone(), 0, 0, rng));
    } else {
        let keys = [opts.rsa_key];
        let out = conn.handshake(ClientConfig::new(&keys, 2), rng)?;
        if let Some(p) = &opts.key_file {
            save_key(p, &out.auth_key)?;
        }
        summary.created_key = true;
        *key = Some(out.auth_key.clone());
        let (salt, offset) = (out.server_salt, out.server_time_offset);
        *engine = Some(client::session(EngineConfig::DEFAULT, out.auth_key, salt, offset, rng));
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

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (mut dc, mut rsa, mut transport, mut key_file, mut calls) = (None, None, Transport::DEFAULT, None, 5);
    let mut secret = None;
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
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (Some(dc), Some(rsa_key)) = (dc, rsa) else {
        return Err(
            "usage: blocking_client --dc ADDR --rsa-key PEM [--transport T] [--secret HEX] [--key-file F] [--calls N]"
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
    let s = run(&opts)?;
    println!(
        "key {} after {} connection(s)",
        if s.created_key { "created" } else { "reused" },
        s.connections
    );
    for (i, rtt) in s.rtts.iter().enumerate() {
        println!("call {i}: messages.getDhConfig answered in {} µs", rtt.as_micros());
    }
    Ok(())
}
