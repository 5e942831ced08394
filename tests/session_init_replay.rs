//! Attack B19 / docs/CHECKLIST.md item 9 on the DC's own server path: a prober that replays a client's recorded
//! obfuscated connection (its 64-byte init, then its frames) into a new DC `Connection` must get nothing back. Every
//! server `Connection` on an obfuscated transport parks after the init until the host checked it against a cache it
//! shares between connections (`HostQuery::ObfuscatedInit`, answered with `Connection::check_obfuscated_init`); a
//! repeat fails the connection before any frame is read, like an init the secret does not open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dc_util;
use dc_util::*;

use std::collections::HashMap;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::session::{Error, Event, HostQuery, MsgId, MsgKind, SaltSchedule, StoredKey, TransportConfig};
use mtproto_sansio::time::Instant;
use mtproto_sansio::transport::TransportError;
use mtproto_sansio::transport::obfuscated::{INIT_LEN, ProxySecret};
use mtproto_sansio::transport::replay::ReplayCache;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the DC host keeps across connections: the key store and the init replay cache.
struct Host {
    keys: HashMap<u64, StoredKey>,
    replay: ReplayCache<64>,
    /// Whether to answer `HostQuery::ObfuscatedInit` (a careless host would not).
    check_inits: bool,
    requests: Vec<(MsgId, Vec<u8>)>,
    init_events: usize,
}

impl Host {
    fn new(key: &StoredKey) -> Self {
        Host {
            keys: HashMap::from([(key.key.id(), key.clone())]),
            replay: ReplayCache::new(),
            check_inits: true,
            requests: Vec::new(),
            init_events: 0,
        }
    }
}

/// The DC of one connection: a fresh connection's session (`server_handshake`, as test_dc builds it) or one whose
/// key the host already knows (`server_stored`).
fn dc(t: TransportConfig, stored: Option<&StoredKey>, secret: Option<&[u8]>, now: Instant) -> Box<S> {
    let mut d = match stored {
        Some(k) => Box::new(S::server_stored(cfg(t), k, now)),
        None => dc_util::dc(t, now),
    };
    d.set_proxy_secret(secret.map(|s| ProxySecret::from_bytes(s).unwrap()))
        .unwrap();
    d
}

fn client(t: TransportConfig, key: &AuthKey, secret: Option<&[u8]>, now: Instant, rng: &mut StdRng) -> Box<S> {
    let mut c = Box::new(S::client(cfg(t), key.clone(), now, rng));
    c.set_proxy_secret(secret.map(|s| ProxySecret::from_bytes(s).unwrap()))
        .unwrap();
    c
}

/// Feeds `input` to the DC connection `d` with the host answering every event and query; returns what `d` sends,
/// or the error that ends the connection.
fn dc_feed(d: &mut S, host: &mut Host, input: &[u8], now: Instant, rng: &mut StdRng) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; d.min_transmit_len()];
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        let n = if off < input.len() {
            d.handle_input(now, &input[off..])?
        } else {
            0
        };
        off += n;
        let mut progress = n > 0;
        let mut reqs = Vec::new();
        while let Some(ev) = d.poll_event() {
            progress = true;
            match ev {
                Event::Request { msg_id, body } => reqs.push((msg_id, body.to_vec())),
                Event::ObfuscatedInit => host.init_events += 1,
                _ => {}
            }
        }
        match d.host_query() {
            Some(HostQuery::AuthKey { key_id }) => {
                d.supply_stored_key(now, host.keys.get(&key_id)).unwrap();
                progress = true;
            }
            Some(HostQuery::NewAuthKey { key_id }) => {
                d.accept_new_key(now, host.keys.contains_key(&key_id), rng).unwrap();
                progress = true;
            }
            Some(HostQuery::ObfuscatedInit) if host.check_inits => {
                if d.check_obfuscated_init(&mut host.replay).is_err() {
                    // Replayed: the connection is over (the error is sticky); the host closes it, sending nothing.
                    return Err(d.handle_input(now, &[0]).unwrap_err());
                }
                progress = true;
            }
            // Each recorded connection is its client's only one: its session is new (a replay stops at the init).
            Some(HostQuery::Session { .. }) => {
                d.resume_session(now, None).unwrap();
                progress = true;
            }
            _ => {}
        }
        for (id, b) in reqs {
            d.answer(now, id, &b).unwrap();
            host.requests.push((id, b));
        }
        while let Some(m) = d.poll_transmit(now, rng, &mut buf).unwrap() {
            out.extend_from_slice(&buf[..m]);
            progress = true;
        }
        if !progress {
            return Ok(out);
        }
    }
}

/// Client events, owned.
#[derive(Default)]
struct Seen {
    results: Vec<(MsgId, Vec<u8>)>,
}

fn client_feed(c: &mut S, seen: &mut Seen, input: &[u8], now: Instant) {
    let mut off = 0;
    while off < input.len() {
        off += c.handle_input(now, &input[off..]).unwrap();
        while let Some(ev) = c.poll_event() {
            if let Event::RpcResult { req, body } = ev {
                seen.results.push((req, body.to_vec()));
            }
        }
    }
}

fn client_out(c: &mut S, now: Instant, rng: &mut StdRng) -> Vec<u8> {
    let mut buf = vec![0u8; c.min_transmit_len()];
    let mut v = Vec::new();
    while let Some(n) = c.poll_transmit(now, rng, &mut buf).unwrap() {
        v.extend_from_slice(&buf[..n]);
    }
    v
}

/// A client's whole connection to a DC: it sends a query (first under salt 0: the DC corrects it) and gets its
/// answer. Returns everything the client sent, in order.
fn recorded_connection(
    t: TransportConfig,
    key: &StoredKey,
    secret: Option<&[u8]>,
    fresh_dc: bool,
    host: &mut Host,
    now: Instant,
    rng: &mut StdRng,
) -> Vec<u8> {
    let mut c = client(t, &key.key, secret, now, rng);
    let mut d = dc(t, (!fresh_dc).then_some(key), secret, now);
    let mut seen = Seen::default();
    let q = c.send(now, &QUERY, MsgKind::Query).unwrap();
    let mut wire = Vec::new();
    for _ in 0..6 {
        let c2s = client_out(&mut c, now, rng);
        wire.extend_from_slice(&c2s);
        let s2c = dc_feed(&mut d, host, &c2s, now, rng).unwrap();
        client_feed(&mut c, &mut seen, &s2c, now);
    }
    assert_eq!(seen.results, vec![(q, QUERY.to_vec())], "the recorded connection works");
    wire
}

fn stored_key(rng: &mut StdRng) -> StoredKey {
    let mut k = [0u8; 256];
    rng.fill_bytes(&mut k);
    let mut s = [0u8; 32];
    rng.fill_bytes(&mut s);
    StoredKey {
        key: AuthKey::from_bytes(k),
        salts: SaltSchedule::from_secret(s),
    }
}

/// A recorded connection replayed into a new DC session sharing the host's cache: refused at the init, no frame
/// processed, nothing sent back; a fresh client on the same cache still works. Plain obfuscated (abridged, no
/// secret) and a `dd` secret (padded intermediate), on a fresh connection's session and on a stored key's.
#[test]
fn atk_b19_replayed_obfuscated_connection_refused_by_the_dc_session() {
    let dd: &[u8] = &[0xdd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    for (i, (t, secret)) in [(OBF_ABRIDGED, None), (OBF_PADDED, Some(dd))].into_iter().enumerate() {
        for fresh_dc in [true, false] {
            let mut rng = StdRng::seed_from_u64(900 + i as u64);
            let now = Instant::from_secs(50);
            let key = stored_key(&mut rng);
            let mut host = Host::new(&key);
            let wire = recorded_connection(t, &key, secret, fresh_dc, &mut host, now, &mut rng);
            assert_eq!(host.requests.len(), 1);
            assert_eq!(host.replay.len(), 1, "the recorded connection's init was checked");

            // The prober replays the whole connection into a new DC connection of the same host.
            let mut d = dc(t, (!fresh_dc).then_some(&key), secret, now);
            let r = dc_feed(&mut d, &mut host, &wire, now, &mut rng);
            assert_eq!(r, Err(Error::ReplayedInit), "{t:?} {fresh_dc}");
            assert_eq!(host.requests.len(), 1, "the replayed query was not executed again");
            assert_eq!(d.frames_dropped(), 0, "no frame was even looked at");
            assert!(d.session().is_none_or(|e| !e.has_session()));
            // The connection stays refused: no input, nothing to send.
            assert_eq!(d.handle_input(now, &wire[INIT_LEN..]), Err(Error::ReplayedInit));
            let mut buf = vec![0u8; d.min_transmit_len()];
            assert_eq!(d.poll_transmit(now, &mut rng, &mut buf), Ok(None));

            // Changing bytes 0..8 of the init (which carry no key) does not make it new.
            let mut tweaked = wire.clone();
            tweaked[0] ^= 0x55;
            let mut d = dc(t, (!fresh_dc).then_some(&key), secret, now);
            assert_eq!(
                dc_feed(&mut d, &mut host, &tweaked, now, &mut rng),
                Err(Error::ReplayedInit)
            );

            // A fresh client on the same cache is served.
            recorded_connection(t, &key, secret, fresh_dc, &mut host, now, &mut rng);
            assert_eq!(host.requests.len(), 2);
            assert_eq!(host.replay.len(), 2);
        }
    }
}

/// A host that never answers `HostQuery::ObfuscatedInit` gets a connection that reads nothing past the init: the
/// check cannot be skipped by forgetting it. The event is reported once; `host_query` keeps telling.
#[test]
fn chk_009_dc_session_reads_nothing_past_an_unchecked_init() {
    let mut rng = StdRng::seed_from_u64(910);
    let now = Instant::from_secs(50);
    let key = stored_key(&mut rng);
    let mut host = Host::new(&key);
    let wire = recorded_connection(OBF_PADDED, &key, None, true, &mut host, now, &mut rng);
    let requests = host.requests.len();
    for fresh_dc in [true, false] {
        let mut careless = Host::new(&key);
        careless.check_inits = false;
        let mut d = dc(OBF_PADDED, (!fresh_dc).then_some(&key), None, now);
        // Fed in pieces: the init is taken, then nothing.
        assert_eq!(d.handle_input(now, &wire[..10]), Ok(10));
        assert_eq!(d.host_query(), None);
        assert_eq!(d.handle_input(now, &wire[10..]), Ok(INIT_LEN - 10));
        assert_eq!(d.host_query(), Some(HostQuery::ObfuscatedInit));
        // Not even what the host queues itself (an update pushed early) goes out before the check.
        let pushed = d.send(now, &QUERY, MsgKind::Notice);
        let out = dc_feed(&mut d, &mut careless, &wire[INIT_LEN..], now, &mut rng).unwrap();
        assert!(out.is_empty(), "nothing sent before the init is checked ({pushed:?})");
        assert_eq!(careless.init_events, 1, "reported once");
        assert!(careless.requests.is_empty());
        assert_eq!(d.handle_input(now, &wire[INIT_LEN..]), Ok(0));
        assert_eq!(d.host_query(), Some(HostQuery::ObfuscatedInit));
        // Answering later releases the connection; a second answer is refused.
        let mut cache = ReplayCache::<4>::new();
        assert_eq!(d.check_obfuscated_init(&mut cache), Ok(()));
        assert!(d.check_obfuscated_init(&mut cache).is_err());
        assert_eq!(d.host_query(), None);
        dc_feed(&mut d, &mut careless, &wire[INIT_LEN..], now, &mut rng).unwrap();
        assert_eq!(careless.requests.len(), 1);
    }
    assert_eq!(host.requests.len(), requests);
}

/// What a prober sees: a replayed init and an init made with another secret both end the connection after the
/// 64 init bytes, with nothing sent back; a plain (non-obfuscated) server session and a client never ask.
#[test]
fn chk_009_replay_refused_like_a_wrong_secret() {
    let mut rng = StdRng::seed_from_u64(920);
    let now = Instant::from_secs(50);
    let key = stored_key(&mut rng);
    let secret: &[u8] = &[7; 16];
    let mut host = Host::new(&key);
    let wire = recorded_connection(OBF_ABRIDGED, &key, Some(secret), true, &mut host, now, &mut rng);

    let mut wrong = dc(OBF_ABRIDGED, None, Some(&[8; 16]), now);
    assert_eq!(
        dc_feed(&mut wrong, &mut host, &wire, now, &mut rng),
        Err(Error::Transport(TransportError::BadTag))
    );
    let mut replayed = dc(OBF_ABRIDGED, None, Some(secret), now);
    assert_eq!(
        dc_feed(&mut replayed, &mut host, &wire, now, &mut rng),
        Err(Error::ReplayedInit)
    );
    assert_eq!(host.replay.len(), 1, "an init the secret does not open is not recorded");

    // Unobfuscated and client sessions have no init to check.
    let mut plain = dc(TransportConfig::INTERMEDIATE, None, None, now);
    let mut c = client(TransportConfig::INTERMEDIATE, &key.key, None, now, &mut rng);
    c.send(now, &QUERY, MsgKind::Query).unwrap();
    let c2s = client_out(&mut c, now, &mut rng);
    let _ = dc_feed(&mut plain, &mut host, &c2s, now, &mut rng).unwrap();
    assert_eq!(
        host.init_events, 2,
        "only the recorded and the replayed connection asked"
    );
    let mut cache = ReplayCache::<4>::new();
    assert!(plain.check_obfuscated_init(&mut cache).is_err());
    assert!(c.check_obfuscated_init(&mut cache).is_err());
    assert!(cache.is_empty());
}
