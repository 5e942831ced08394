//! Seeds of the `connection_dc` fuzz target: what real clients send on a new connection, on every transport the
//! target knows (regenerate with `MTPROTO_WRITE_CORPUS=1 cargo test --features std --test connection_fuzz_corpus`),
//! and a check that the checked-in seeds reach the DC's host as requests (stored-key modes) or run the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use mtproto_sansio::fuzzing::SeededRng;
use mtproto_sansio::fuzzing::connection::{
    FUZZ_DC_SEED, FUZZ_PROXY_SECRET, connection_dc, fuzz_connection, fuzz_connection_config,
};
use mtproto_sansio::fuzzing::crypto::fuzz_auth_key;
use mtproto_sansio::fuzzing::handshake::dc_key;
use mtproto_sansio::fuzzing::session::FUZZ_START;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::{Connection, Event, HostQuery, MsgKind};
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_sansio::transport::replay::ReplayCache;

type S = Connection<4096, 4096, 8>;

/// What a client sends first at `mode`: a query under the fuzzing key, or the handshake's first message.
fn client_bytes(mode: u8) -> Vec<u8> {
    let mut rng = SeededRng::new(&[mode]);
    let mut cfg = fuzz_connection_config(mode);
    cfg.transport.dc_id = Some(2);
    // The client starts on the fuzzed DC's current salt (as one that kept it from an earlier connection would), so
    // its query passes the salt check.
    let dc = fuzz_connection(mode, &mut SeededRng::new(FUZZ_DC_SEED)).unwrap();
    cfg.salt = dc.session().map_or(0, |e| e.current_salt());
    let mut c = if mode & 8 != 0 {
        let key = dc_key().unwrap();
        let trusted: &'static [_] = Box::leak(Box::new([*key.public_key()]));
        S::client_handshake(cfg, ClientConfig::new(trusted, 2), FUZZ_START)
    } else {
        let mut c = S::client(cfg, fuzz_auth_key(), FUZZ_START, &mut rng);
        c.send(FUZZ_START, &[0x0d, 0xf0, 0xad, 0x0b, mode, 0, 0, 0], MsgKind::Query)
            .unwrap();
        c
    };
    if mode & 7 == 7 {
        c.set_proxy_secret(Some(ProxySecret::from_bytes(&FUZZ_PROXY_SECRET).unwrap()))
            .unwrap();
    }
    let mut out = vec![0u8; c.min_transmit_len()];
    let mut wire = Vec::new();
    while let Some(n) = c.poll_transmit(FUZZ_START, &mut rng, &mut out).unwrap() {
        wire.extend_from_slice(&out[..n]);
    }
    wire
}

/// The target's input for `mode`: the mode byte, then the client's bytes in reads of at most 255.
fn seed(mode: u8) -> Vec<u8> {
    let mut v = vec![mode];
    for chunk in client_bytes(mode).chunks(255) {
        v.push(chunk.len() as u8);
        v.extend_from_slice(chunk);
    }
    v
}

const MODES: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 13];

#[test]
fn seeds_are_checked_in_and_reach_the_host() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/connection_dc");
    for mode in MODES {
        let s = seed(mode);
        let path = dir.join(format!("seed-mode-{mode:02}"));
        if std::env::var_os("MTPROTO_WRITE_CORPUS").is_some() {
            std::fs::write(&path, &s).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), s, "{} is stale", path.display());
        connection_dc(&s);
        // Replayed by hand: the DC's host sees the query (stored key) or answers the handshake (no key yet).
        let mut rng = SeededRng::new(FUZZ_DC_SEED);
        let mut d = fuzz_connection(mode, &mut rng).unwrap();
        let mut cache: ReplayCache<4> = ReplayCache::new();
        let (mut requests, mut sent) = (0, 0);
        let bytes = client_bytes(mode);
        let mut off = 0;
        let mut out = vec![0u8; d.min_transmit_len()];
        for _ in 0..64 {
            off += d.handle_input(FUZZ_START, &bytes[off..]).unwrap();
            while let Some(ev) = d.poll_event() {
                requests += usize::from(matches!(ev, Event::Request { .. }));
            }
            match d.host_query() {
                Some(HostQuery::ObfuscatedInit) => d.check_obfuscated_init(&mut cache).unwrap(),
                Some(HostQuery::Session { .. }) => d.resume_session(FUZZ_START, None).unwrap(),
                Some(q) => panic!("mode {mode}: {q:?}"),
                None => {}
            }
            while let Some(n) = d.poll_transmit(FUZZ_START, &mut rng, &mut out).unwrap() {
                sent += n;
            }
        }
        assert_eq!(off, bytes.len(), "mode {mode}: all of the client's bytes taken");
        if mode & 8 == 0 {
            assert_eq!(requests, 1, "mode {mode}");
        } else {
            assert!(sent > 0, "mode {mode}: the DC answered the handshake");
        }
    }
}
