//! The canonical async host loop: tokio, one task per connection.
//!
//! ```text
//! cargo run --release --example tokio_client -- --dc 127.0.0.1:4430 --rsa-key dc.pem \
//!     [--transport obf-padded] [--key-file auth.key] [--calls 5]
//! ```
//! The crate never awaits: the task feeds it bytes from the socket and the time when a timer fires, and writes what
//! it produces. Connect, create or reuse the auth key (persisted in `--key-file`), make calls, reconnect with
//! backoff; the session survives reconnects.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)] // also compiled into tests/hosts.rs, which does not call `main`

#[path = "common/mod.rs"]
pub mod common;

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::api;
use common::client::{self, ClientEngine, Owned, drain, load_key, parse_rsa_key, save_key};
use common::link::{Incoming, Link, Transport};
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::{ClientConfig, ClientHandshake, MAX_CLIENT_MESSAGE, Status};
use mtproto_sansio::session::{EngineConfig, MsgKind};
use mtproto_sansio::transport::{Framing, strip_padding};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Res<T> = Result<T, Box<dyn Error>>;

/// Bytes read from the socket, decoded one frame at a time.
struct Io {
    sock: TcpStream,
    link: Link<{ client::CLIENT_FRAME }>,
    buf: Vec<u8>,
    packet: Vec<u8>,
    wire: Vec<u8>,
}

impl Io {
    async fn connect(addr: SocketAddr, t: Transport) -> Res<Io> {
        let mut sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let (link, first) = Link::client(t, 2, None, &mut rand::rng()).map_err(|e| format!("{e}"))?;
        sock.write_all(&first).await?;
        Ok(Io {
            sock,
            link,
            buf: Vec::new(),
            packet: Vec::new(),
            wire: Vec::new(),
        })
    }

    async fn send(&mut self, payload: &[u8], quick_ack: bool) -> Res<()> {
        self.link
            .encode(payload, quick_ack, &mut rand::rng(), &mut self.wire)
            .map_err(|e| format!("{e}"))?;
        self.sock.write_all(&self.wire).await?;
        self.wire.clear();
        Ok(())
    }

    /// The next frame, waiting until `deadline`; `None` when the deadline passes first.
    async fn next(&mut self, deadline: tokio::time::Instant) -> Res<Option<Incoming>> {
        loop {
            while !self.buf.is_empty() {
                let (n, inc) = self
                    .link
                    .decode(&self.buf, &mut self.packet)
                    .map_err(|e| format!("{e}"))?;
                self.buf.drain(..n);
                if inc.is_some() {
                    return Ok(inc);
                }
                if n == 0 {
                    break;
                }
            }
            let mut chunk = [0u8; 16_384];
            match tokio::time::timeout_at(deadline, self.sock.read(&mut chunk)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => return Err("connection closed".into()),
                Ok(Ok(n)) => self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }
}

fn deadline(at: Option<mtproto_sansio::time::Instant>) -> tokio::time::Instant {
    let now = client::now();
    let wait = at.map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now));
    tokio::time::Instant::now() + wait.min(Duration::from_secs(1))
}

/// The handshake, driven by the task.
async fn handshake(io: &mut Io, rsa: RsaPublicKey, t: Transport) -> Res<mtproto_sansio::handshake::Outcome> {
    let keys = [rsa];
    let mut cfg = ClientConfig::new(&keys, 2);
    cfg.unix_micros_at_zero = client::unix_micros_at_zero();
    cfg.transport_padding = t.framing == Framing::PaddedIntermediate;
    let mut hs = ClientHandshake::new(cfg, client::now());
    let mut out = [0u8; MAX_CLIENT_MESSAGE];
    loop {
        while let Some(n) = hs
            .poll_transmit(client::now(), &mut rand::rng(), &mut out)
            .map_err(|e| format!("{e}"))?
        {
            io.send(out.get(..n).unwrap_or_default(), false).await?;
        }
        match hs.status() {
            Status::Done => return hs.take_outcome().ok_or_else(|| "no outcome".into()),
            Status::Failed(e) => return Err(format!("handshake: {e}").into()),
            Status::Running => {}
        }
        match io.next(deadline(hs.poll_timeout())).await? {
            Some(Incoming::Packet { .. }) => {
                let _ = hs.handle_packet(client::now(), &io.packet);
            }
            Some(Incoming::Error(code)) => hs.handle_transport_error(client::now(), code),
            Some(Incoming::QuickAck(_)) => {}
            None => hs.handle_timeout(client::now()),
        }
    }
}

/// Sends one query and runs the session until it ends.
async fn call(io: &mut Io, engine: &mut ClientEngine, body: &[u8]) -> Res<Owned> {
    let req = engine.send(client::now(), body, MsgKind::Query)?;
    let mut out = vec![0u8; engine.min_out_len()];
    let mut events = Vec::new();
    loop {
        while let Some(p) = engine.poll_packet(client::now(), &mut rand::rng(), &mut out)? {
            io.send(out.get(..p.len).unwrap_or_default(), p.quick_ack).await?;
        }
        drain(engine, &mut events);
        if let Some(i) = events.iter().position(|e| e.req() == Some(req)) {
            return Ok(events.swap_remove(i));
        }
        match io.next(deadline(engine.poll_timeout())).await? {
            Some(Incoming::Packet { .. }) => {
                if let Ok(code) = <[u8; 4]>::try_from(io.packet.as_slice()) {
                    return Err(format!("transport error {}", i32::from_le_bytes(code)).into());
                }
                let data = strip_padding(io.link.framing().unwrap_or(Framing::Intermediate), &io.packet)?;
                let _ = engine.handle_packet(client::now(), data);
            }
            Some(Incoming::QuickAck(t)) => engine.handle_quick_ack(t),
            Some(Incoming::Error(code)) => return Err(format!("transport error {code}").into()),
            None => engine.handle_timeout(client::now()),
        }
    }
}

/// Connect, handshake if needed, make `calls` calls; reconnect with backoff. Returns (key created, connections).
pub async fn run(
    dc: SocketAddr,
    rsa: RsaPublicKey,
    t: Transport,
    key_file: Option<PathBuf>,
    calls: usize,
) -> Res<(bool, u32)> {
    let mut key: Option<AuthKey> = match &key_file {
        Some(p) => load_key(p)?,
        None => None,
    };
    let (mut engine, mut created, mut conns, mut done) = (None::<Box<ClientEngine>>, false, 0u32, 0usize);
    let mut backoff = Duration::from_millis(100);
    while done < calls {
        conns += 1;
        let attempt: Res<()> = async {
            let mut io = Io::connect(dc, t).await?;
            if let Some(e) = engine.as_mut() {
                e.reconnect(client::now());
            } else if let Some(k) = &key {
                engine = Some(client::session(
                    EngineConfig::DEFAULT,
                    k.clone(),
                    0,
                    0,
                    &mut rand::rng(),
                ));
            } else {
                let out = handshake(&mut io, rsa, t).await?;
                if let Some(p) = &key_file {
                    save_key(p, &out.auth_key)?;
                }
                created = true;
                key = Some(out.auth_key.clone());
                let (salt, off) = (out.server_salt, out.server_time_offset);
                engine = Some(client::session(
                    EngineConfig::DEFAULT,
                    out.auth_key,
                    salt,
                    off,
                    &mut rand::rng(),
                ));
            }
            let eng = engine.as_mut().ok_or("no session")?;
            while done < calls {
                let t0 = std::time::Instant::now();
                match call(&mut io, eng, &api::get_dh_config(0, 16)).await? {
                    Owned::Result(_, b) if api::parse_dh_config(&b).is_ok() => done += 1,
                    other => return Err(format!("unexpected {other:?}").into()),
                }
                println!(
                    "call {done}: messages.getDhConfig answered in {} µs",
                    t0.elapsed().as_micros()
                );
            }
            Ok(())
        }
        .await;
        if let Err(e) = attempt {
            if conns >= 8 {
                return Err(e);
            }
            eprintln!("connection {conns} failed: {e}; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
    Ok((created, conns))
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
