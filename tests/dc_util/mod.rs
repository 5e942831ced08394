//! Shared scaffolding of the tests of the DC side of the connection type (tests/session_dc.rs,
//! tests/session_dc_host.rs, tests/session_init_replay.rs): the connection type at test capacities, the DC's RSA key,
//! session configurations on a virtual Unix clock, the transports, and a DC connection fresh from
//! `Connection::server_handshake`. Each test keeps its own host (what it stores and how it answers), which is what it
//! tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::OnceLock;

use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use mtproto_sansio::fuzzing::handshake::dc_key;
use mtproto_sansio::handshake::ServerConfig;
use mtproto_sansio::session::{Connection, ConnectionConfig, SessionConfig, TransportConfig};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::transport::Framing;

/// The connection type at the capacities of these tests.
pub type S = Connection<8192, 8192, 16>;
/// Unix time at `Instant` 0: every party's clock reads `UNIX0 + t`.
pub const UNIX0: u64 = 1_700_000_000;
/// A query body (an unknown constructor: the hosts echo it back).
pub const QUERY: [u8; 8] = [0x0d, 0xf0, 0xad, 0x0b, 5, 0, 0, 0];

/// Plain intermediate framing.
pub const INTERMEDIATE: TransportConfig = TransportConfig::INTERMEDIATE;
/// Obfuscated abridged, DC 2.
pub const OBF_ABRIDGED: TransportConfig = TransportConfig {
    framing: Framing::Abridged,
    obfuscated: true,
    dc_id: Some(2),
};
/// Obfuscated intermediate, DC 2.
pub const OBF: TransportConfig = TransportConfig {
    framing: Framing::Intermediate,
    obfuscated: true,
    dc_id: Some(2),
};
/// Obfuscated padded intermediate, DC 2.
pub const OBF_PADDED: TransportConfig = TransportConfig {
    framing: Framing::PaddedIntermediate,
    obfuscated: true,
    dc_id: Some(2),
};

/// The DC's RSA key (the fixed test key of `fuzzing::handshake`).
pub fn rsa() -> &'static RsaPrivateKey {
    static K: OnceLock<RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| dc_key().unwrap())
}

/// The clients' trusted keys: the DC's public key.
pub fn trusted() -> &'static [RsaPublicKey] {
    static T: OnceLock<[RsaPublicKey; 1]> = OnceLock::new();
    T.get_or_init(|| [*rsa().public_key()])
}

/// The engine of both ends: defaults without keep-alive pings (the tests drive every packet).
pub fn engine_cfg() -> SessionConfig {
    SessionConfig {
        ping_interval: None,
        ..SessionConfig::DEFAULT
    }
}

/// A session configuration whose host believes it is Unix time `unix` at construction.
pub fn cfg_at(transport: TransportConfig, unix: u64) -> ConnectionConfig {
    ConnectionConfig {
        engine: engine_cfg(),
        transport,
        unix_time_hint: Some(UnixTime(unix)),
        salt: 0,
    }
}

/// [`cfg_at`] [`UNIX0`].
pub fn cfg(transport: TransportConfig) -> ConnectionConfig {
    cfg_at(transport, UNIX0)
}

/// A fresh DC connection (`server_handshake` with DC id 2, Telegram's DH group) under `cfg`.
pub fn dc_with(cfg: ConnectionConfig, now: Instant) -> Box<S> {
    let mut sc = ServerConfig::new(rsa(), DhGroup::telegram(3).unwrap());
    sc.dc_id = Some(2);
    Box::new(S::server_handshake(cfg, sc, now))
}

/// [`dc_with`] [`cfg`]`(t)`.
pub fn dc(t: TransportConfig, now: Instant) -> Box<S> {
    dc_with(cfg(t), now)
}
