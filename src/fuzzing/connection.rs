//! Fuzz entry point for the connection type ([`Connection`]) in the DC role: bytes as they come off a socket, on every
//! transport, into a connection whose host answers every question the way test_dc does. The session and handshake
//! targets drive the engine and the handshake table directly; this one covers what lies between them and the socket
//! (the framing, the obfuscated init and its replay check, parked frames, host queries, the hand-over of a session,
//! the handshake restarted on a connection, the sticky error).
//!
//! Input: `mode:u8`, then reads `len:u8 bytes[len]` (the last one may be short). `mode & 7` picks the transport: 0
//! abridged, 1 intermediate, 2 padded intermediate, 3 full, 4-6 the same three obfuscated, 7 obfuscated
//! intermediate under an MTProxy secret. With `mode & 8` (and `std`, which leaks the RSA key once for the run's
//! `'static` handshake configuration) the connection starts without a key (`server_handshake`); otherwise it holds
//! the fuzzing key (`server`), so frames sealed with it reach the engine. `mode >> 4` seconds pass before each read.
//!
//! The host: a stored-key query gets the fuzzing key when it names it and `None` otherwise; the init is checked
//! against a 4-entry replay cache; a new key's id is never taken; a session the connection does not serve starts
//! here; every request is echoed. Invariants: a read never consumes more than offered, an error is sticky,
//! `poll_transmit` writes within its buffer and quiesces, and host queries are answered in a bounded number of steps.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding

use super::SeededRng;
use super::crypto::fuzz_auth_key;
use crate::carriage::faketls::{FakeTlsSecret, ServerConfig as TlsConfig};
use crate::carriage::http::HttpLimits;
use crate::carriage::layer::{Carriage, FakeTlsCarriage, HttpCarriage, Layer, WsCarriage};
use crate::session::{Connection, ConnectionConfig, Event, HostQuery, MsgId, SessionConfig, TransportConfig};
use crate::time::{Instant, UnixTime};
use crate::transport::Framing;
use crate::transport::obfuscated::ProxySecret;
use crate::transport::replay::ReplayCache;

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[
    ("connection_dc", connection_dc),
    ("connection_dc_carriage", connection_dc_carriage),
];

/// A DC connection with a carriage under its framing ([`crate::carriage::layer`]).
pub type FuzzCarriageConnection = Connection<4096, 4096, 8, Layer>;

/// The fuzzed connection: small buffers, so frames past them exercise the refusal paths too.
pub type FuzzConnection = Connection<4096, 4096, 8>;

/// The seed of the fuzzed DC's RNG (see [`fuzz_connection`]).
pub const FUZZ_DC_SEED: &[u8] = b"connection_dc";

/// The MTProxy secret of mode 7.
pub const FUZZ_PROXY_SECRET: [u8; 16] = *b"fuzz-proxy-16-by";

/// The transport of `mode & 7`.
pub fn fuzz_transport(mode: u8) -> TransportConfig {
    let framing = match mode & 3 {
        0 => Framing::Abridged,
        1 => Framing::Intermediate,
        2 => Framing::PaddedIntermediate,
        _ => Framing::Full,
    };
    let obfuscated = mode & 4 != 0;
    TransportConfig {
        // Full has no obfuscated form: mode 7 is obfuscated intermediate under a secret.
        framing: if obfuscated && framing == Framing::Full {
            Framing::Intermediate
        } else {
            framing
        },
        obfuscated,
        dc_id: None,
    }
}

/// The configuration of the fuzzed connection at `mode`.
pub fn fuzz_connection_config(mode: u8) -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig {
            ping_interval: None,
            ..SessionConfig::DEFAULT
        },
        transport: fuzz_transport(mode),
        unix_time_hint: Some(UnixTime(super::session::FUZZ_UNIX)),
        salt: 0,
    }
}

/// The connection the target starts from at `mode`, drawing from `rng` (the target seeds it with [`FUZZ_DC_SEED`]);
/// `None` when the mode needs what this build lacks.
pub fn fuzz_connection(mode: u8, rng: &mut SeededRng) -> Option<FuzzConnection> {
    let cfg = fuzz_connection_config(mode);
    let now = super::session::FUZZ_START;
    let mut c = if mode & 8 != 0 {
        FuzzConnection::server_handshake(cfg, handshake_config()?, now)
    } else {
        FuzzConnection::server(cfg, fuzz_auth_key(), now, rng)
    };
    if mode & 7 == 7 {
        let secret = ProxySecret::from_bytes(&FUZZ_PROXY_SECRET).ok()?;
        c.set_proxy_secret(Some(secret)).ok()?;
    }
    Some(c)
}

#[cfg(feature = "std")]
fn handshake_config() -> Option<crate::handshake::ServerConfig<'static>> {
    use crate::crypto::dh::DhGroup;
    use crate::crypto::rsa::RsaPrivateKey;
    static KEY: std::sync::OnceLock<Option<RsaPrivateKey>> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(super::handshake::dc_key).as_ref()?;
    let mut hs = crate::handshake::ServerConfig::new(key, DhGroup::telegram(3).ok()?);
    hs.dc_id = Some(2);
    Some(hs)
}

#[cfg(not(feature = "std"))]
fn handshake_config() -> Option<crate::handshake::ServerConfig<'static>> {
    None
}

/// Arbitrary socket reads into a DC connection (see the module docs).
pub fn connection_dc(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // A fixed seed: the DC's salt schedule comes from it, and a seed input must be able to carry the current salt.
    let mut rng = SeededRng::new(FUZZ_DC_SEED);
    let Some(mut c) = fuzz_connection(mode, &mut rng) else {
        return;
    };
    let now = super::session::FUZZ_START;
    let mut cache: ReplayCache<4> = ReplayCache::new();
    let mut out = [0u8; 8192];
    assert!(
        c.min_transmit_len() <= out.len(),
        "the connection's smallest output buffer grew"
    );
    feed_reads(&mut c, mode, rest, now, &mut rng, &mut cache, &mut out, |_| usize::MAX);
}

/// The SNI domain of the fuzzed fake-TLS secret (its key is [`FUZZ_PROXY_SECRET`]).
pub const FUZZ_TLS_DOMAIN: &[u8] = b"www.google.com";

/// Arbitrary socket reads into a DC connection with a carriage: the same input format and host as
/// [`connection_dc`], except `mode & 3`: 0 HTTP (plain intermediate inside), 1 fake-TLS (the fuzzed `ee` secret,
/// obfuscated padded intermediate inside), 2 or 3 WebSocket (`/apiws`, obfuscated inside under any framing its init
/// names, the DC built for abridged); `mode & 8` starts without a key as there. Invariants as there, and the
/// carriage never makes the connection write past its buffer or answer without a request.
pub fn connection_dc_carriage(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut rng = SeededRng::new(FUZZ_DC_SEED);
    let now0 = super::session::FUZZ_START;
    let ws = mode & 2 != 0;
    let tls = mode & 1 != 0 && !ws;
    let mut cfg = fuzz_connection_config(if ws {
        4
    } else if tls {
        6
    } else {
        1
    });
    cfg.transport.obfuscated = tls || ws;
    let mut c = if mode & 8 != 0 {
        let Some(hs) = handshake_config() else { return };
        FuzzCarriageConnection::server_handshake(cfg, hs, now0)
    } else {
        FuzzCarriageConnection::server(cfg, fuzz_auth_key(), now0, &mut rng)
    };
    let layer = if ws {
        Layer::Ws(WsCarriage::server(crate::carriage::ws::WS_PATH, 4096))
    } else if tls {
        let Ok(secret) = FakeTlsSecret::new(&FUZZ_PROXY_SECRET, FUZZ_TLS_DOMAIN) else {
            return;
        };
        let unix = UnixTime(super::session::FUZZ_UNIX);
        Layer::FakeTls(FakeTlsCarriage::server(secret, TlsConfig::default(), unix, now0))
    } else {
        let limits = HttpLimits {
            max_head: 1024,
            max_body: 4096,
            max_chunk_line: 64,
        };
        Layer::Http(HttpCarriage::server(limits).with_hold(core::time::Duration::from_secs(5)))
    };
    assert!(c.set_carriage(layer).is_ok(), "the carriage fits its transport");
    let now = now0;
    let mut cache: ReplayCache<4> = ReplayCache::new();
    let mut out = [0u8; 16384];
    assert!(
        c.min_transmit_len() <= out.len(),
        "the connection's smallest output buffer grew"
    );
    feed_reads(&mut c, mode, rest, now, &mut rng, &mut cache, &mut out, |c| {
        match c.carriage() {
            Layer::Http(h) => h.open_exchanges(),
            _ => usize::MAX,
        }
    });
}

/// Feeds `rest` to `c` as a host's socket reads (each a length byte and that many bytes, at most 64 reads; time moves
/// `mode >> 4` seconds a read), serving the host queries and draining the output after every step. Invariants: an
/// error is sticky, nothing is consumed beyond what was offered, and no more answers go out than `open` allows
/// (an HTTP DC: its open exchanges).
#[allow(clippy::too_many_arguments)]
fn feed_reads<C: Carriage + Default>(
    c: &mut Connection<4096, 4096, 8, C>,
    mode: u8,
    mut rest: &[u8],
    mut now: Instant,
    rng: &mut SeededRng,
    cache: &mut ReplayCache<4>,
    out: &mut [u8],
    open: impl Fn(&Connection<4096, 4096, 8, C>) -> usize,
) {
    let mut reads = 0;
    while let Some((&len, tail)) = rest.split_first() {
        reads += 1;
        if reads > 64 {
            break;
        }
        let (read, next) = tail.split_at(usize::from(len).min(tail.len()));
        rest = next;
        now = now.saturating_add(core::time::Duration::from_secs(u64::from(mode >> 4)));
        let _ = c.handle_timeout(now);
        let mut off = 0;
        // Each step consumes input or answers a host query; a read is over when neither happens.
        for _ in 0..(2 * read.len() + 16) {
            let offered = read.get(off..).unwrap_or_default();
            let n = match c.handle_input(now, offered) {
                Ok(n) => n,
                Err(e) => {
                    assert_eq!(c.handle_input(now, offered), Err(e), "an error is sticky");
                    return;
                }
            };
            assert!(n <= offered.len(), "consumed more than offered");
            off += n;
            let answered = serve(c, now, rng, cache);
            let open = open(c);
            let sent = drain_transmit(c, now, rng, out);
            assert!(sent <= open, "an HTTP answer without a request");
            if n == 0 && !answered && !serve(c, now, rng, cache) {
                break;
            }
        }
    }
}

/// Answers what the connection asks of its host and echoes its requests; whether anything was answered.
fn serve<C: Carriage + Default>(
    c: &mut Connection<4096, 4096, 8, C>,
    now: Instant,
    rng: &mut SeededRng,
    cache: &mut ReplayCache<4>,
) -> bool {
    let mut requests: heapless::Vec<MsgId, 16> = heapless::Vec::new();
    let mut events = 0;
    while let Some(ev) = c.poll_event() {
        events += 1;
        assert!(events < 256, "poll_event does not quiesce");
        if let Event::Request { msg_id, .. } = ev {
            let _ = requests.push(msg_id);
        }
    }
    for id in requests {
        let _ = c.answer(now, id, &[0x0d, 0xf0, 0xad, 0x0b]);
    }
    let Some(q) = c.host_query() else { return false };
    match q {
        HostQuery::AuthKey { key_id } => {
            let key = fuzz_auth_key();
            let key = (key.id() == key_id).then_some(key);
            let _ = c.supply_auth_key(now, key, rng);
        }
        HostQuery::NewAuthKey { .. } => {
            let _ = c.accept_new_key(now, false, rng);
        }
        HostQuery::ObfuscatedInit => {
            // A replay is an error the next read reports.
            let _ = c.check_obfuscated_init(cache);
        }
        HostQuery::Session { .. } => {
            let _ = c.resume_session(now, None);
        }
    }
    // An answered query is gone (or the connection failed for good).
    c.host_query() != Some(q)
}

/// Drains `poll_transmit`; returns how many writes it made.
fn drain_transmit<C: Carriage + Default>(
    c: &mut Connection<4096, 4096, 8, C>,
    now: Instant,
    rng: &mut SeededRng,
    out: &mut [u8],
) -> usize {
    for i in 0..64 {
        match c.poll_transmit(now, rng, out) {
            Ok(Some(n)) => assert!(n <= out.len(), "wrote past the buffer"),
            Ok(None) | Err(_) => return i,
        }
    }
    panic!("poll_transmit does not quiesce");
}
