//! The canonical async host loop: tokio, the crate's `Connection` facade, one task.
//!
//! ```text
//! cargo run --release --example tokio_client -- --dc 127.0.0.1:4430 --rsa-key dc.pem \
//!     [--transport obf-padded] [--key-file auth.key] [--calls 5]
//! ```
//! The crate never awaits: the task feeds it bytes from the socket and the time when its timer fires, and writes
//! what it produces. Without a stored key the session runs the handshake first and reports `AuthKeyReady` (the
//! key is then written to `--key-file`); calls `messages.getDhConfig`; reconnects with backoff, keeping the session
//! (unacknowledged queries are resent on the new connection).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)] // also compiled into tests/hosts.rs, which does not call `main`

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::{Connection, ConnectionConfig, Event, MsgId, MsgKind, TransportConfig};
use mtproto_sansio::time::UnixTime;
use mtproto_test_dc::api;
use mtproto_test_dc::client::{load_key, now, parse_rsa_key, save_key};
use mtproto_test_dc::link::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Res<T> = Result<T, Box<dyn Error>>;
/// 64 KiB frames, 64 KiB of resend arena, 32 messages in flight.
type S = Connection<65_536, 65_536, 32>;

/// The session: on the stored key, or a handshake with `rsa` (the one key we trust for this DC).
/// Also tells whether it starts with a handshake.
fn new_session(t: Transport, rsa: RsaPublicKey, key_file: Option<&PathBuf>) -> Res<(Box<S>, bool)> {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let transport = TransportConfig {
        framing: t.framing,
        obfuscated: t.obfuscated,
        dc_id: Some(2),
    };
    let cfg = ConnectionConfig {
        transport,
        unix_time_hint: Some(UnixTime(unix)),
        ..ConnectionConfig::DEFAULT
    };
    let stored = match key_file {
        Some(p) => load_key(p)?,
        None => None,
    };
    Ok(match stored {
        Some(key) => (Box::new(S::client(cfg, key, now(), &mut rand::rng())), false),
        // `client_handshake` keeps the trusted keys for reconnects: they must live as long as the session.
        None => (
            Box::new(S::client_handshake(
                cfg,
                ClientConfig::new(Box::leak(Box::new([rsa])), 2),
                now(),
            )),
            true,
        ),
    })
}

/// One connection: run the session until `calls` calls are answered, or the connection fails.
async fn connection(
    s: &mut S,
    sock: &mut TcpStream,
    key_file: Option<&PathBuf>,
    calls: usize,
    done: &mut usize,
) -> Res<()> {
    let (mut out, mut input, mut buf) = (vec![0u8; s.min_transmit_len()], Vec::new(), vec![0u8; 65_536]);
    let (mut pending, mut t0): (Option<MsgId>, _) = (None, std::time::Instant::now());
    loop {
        // In: feed buffered bytes (at most one frame per call), draining events after each call.
        loop {
            let used = if input.is_empty() {
                0
            } else {
                s.handle_input(now(), &input)?
            };
            input.drain(..used);
            let (mut key_ready, mut answer) = (false, None);
            while let Some(ev) = s.poll_event() {
                match ev {
                    Event::AuthKeyReady => key_ready = true,
                    Event::RpcResult { req, body } if Some(req) == pending => answer = Some(body.to_vec()),
                    Event::RpcError { code, message, .. } => {
                        return Err(format!("rpc_error {code} {}", String::from_utf8_lossy(message)).into());
                    }
                    Event::Failed { reason, .. } => return Err(format!("query failed: {reason}").into()),
                    Event::TransportError(code) => return Err(format!("transport error {code}").into()),
                    _ => {}
                }
            }
            // Persist the new key: the next run skips the handshake.
            if let (true, Some(key), Some(p)) = (key_ready, s.auth_key(), key_file) {
                save_key(p, key)?;
            }
            if let Some(body) = answer {
                api::parse_dh_config(&body).map_err(|e| format!("dhConfig: {e}"))?;
                *done += 1;
                pending = None;
                println!(
                    "call {done}: messages.getDhConfig answered in {} µs",
                    t0.elapsed().as_micros()
                );
            }
            if used == 0 {
                break;
            }
        }
        if *done >= calls {
            return Ok(());
        }
        // The application: one query at a time, once the session is encrypted.
        if pending.is_none() && s.is_encrypted() {
            pending = Some(s.send(now(), &api::get_dh_config(0, 16), MsgKind::Query)?);
            t0 = std::time::Instant::now();
        }
        // Out: everything the session has.
        while let Some(n) = s.poll_transmit(now(), &mut rand::rng(), &mut out)? {
            sock.write_all(out.get(..n).unwrap_or_default()).await?;
        }
        // Wait for the socket or the session's timer.
        let wait = s
            .poll_timeout()
            .map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now()));
        tokio::select! {
            r = sock.read(&mut buf) => match r? {
                0 => return Err("connection closed".into()),
                n => input.extend_from_slice(buf.get(..n).unwrap_or_default()),
            },
            () = tokio::time::sleep(wait.min(Duration::from_secs(1))) => s.handle_timeout(now())?,
        }
    }
}

/// Connect, make `calls` calls, reconnect with backoff. Returns (key created, connections).
pub async fn run(
    dc: SocketAddr,
    rsa: RsaPublicKey,
    t: Transport,
    key_file: Option<PathBuf>,
    calls: usize,
) -> Res<(bool, u32)> {
    let (mut session, mut created) = new_session(t, rsa, key_file.as_ref())?;
    let (mut conns, mut done, mut backoff) = (0u32, 0usize, Duration::from_millis(100));
    loop {
        conns += 1;
        let r = async {
            let mut sock = TcpStream::connect(dc).await?;
            sock.set_nodelay(true)?;
            connection(&mut session, &mut sock, key_file.as_ref(), calls, &mut done).await
        }
        .await;
        match r {
            Ok(()) => return Ok((created, conns)),
            Err(e) if conns < 8 => {
                eprintln!("connection {conns} failed: {e}; retrying in {backoff:?}");
                if e.to_string() == "transport error -404" {
                    // The DC does not know our key: forget it and run a new handshake.
                    if let Some(p) = &key_file {
                        let _ = std::fs::remove_file(p);
                    }
                    (session, created) = new_session(t, rsa, None)?;
                } else {
                    session.reconnect(now());
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let (mut dc, mut rsa, mut t, mut key_file, mut calls) = (None, None, Transport::DEFAULT, None, 5);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dc" => dc = Some(val()?.parse()?),
            "--rsa-key" => rsa = Some(parse_rsa_key(&std::fs::read(val()?)?)?),
            "--transport" => t = val()?.parse()?,
            "--key-file" => key_file = Some(PathBuf::from(val()?)),
            "--calls" => calls = val()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (Some(dc), Some(rsa)) = (dc, rsa) else {
        return Err("usage: tokio_client --dc ADDR --rsa-key PEM [--transport T] [--key-file F] [--calls N]".into());
    };
    let (created, conns) = run(dc, rsa, t, key_file, calls).await?;
    println!(
        "key {} after {conns} connection(s)",
        if created { "created" } else { "reused" }
    );
    Ok(())
}
