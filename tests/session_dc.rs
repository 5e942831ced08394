//! The DC side of the `Connection` facade on a fresh connection (`Connection::server_handshake`): the auth-key handshake
//! answered by the session's own table, a stored key asked of the host (`Event::AuthKeyRequired` /
//! `supply_auth_key`), −404 for an unknown key, and the parked frame's backpressure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dc_util;
use dc_util::*;

use std::collections::HashMap;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::handshake::{self};
use mtproto_sansio::session::{Event, HostQuery, MsgId, MsgKind, SupplyKeyError, TransportConfig};
use mtproto_sansio::time::Instant;
use mtproto_sansio::transport::replay::ReplayCache;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The DC host: its key store and how it answers `AuthKeyRequired`.
struct Host {
    keys: HashMap<u64, AuthKey>,
    /// Answer `AuthKeyRequired` from the store (`None` if absent); if false, leave the frame parked.
    answer: bool,
    required: Vec<u64>,
    ready: usize,
    requests: usize,
    /// The obfuscated inits seen, shared by all connections.
    replay: ReplayCache<64>,
}

/// Client-side events, owned.
#[derive(Debug, Default)]
struct Client {
    ready: usize,
    results: Vec<(MsgId, Vec<u8>)>,
    transport_errors: Vec<i32>,
}

/// One round: client -> DC (the DC host reacting to every event), DC -> client.
fn round(c: &mut S, d: &mut S, host: &mut Host, ce: &mut Client, now: Instant, rng: &mut StdRng) {
    let mut buf = vec![0u8; c.min_transmit_len().max(d.min_transmit_len())];
    let mut c2s = Vec::new();
    while let Some(n) = c.poll_transmit(now, rng, &mut buf).unwrap() {
        c2s.extend_from_slice(&buf[..n]);
    }
    let mut s2c = Vec::new();
    loop {
        let n = d.handle_input(now, &c2s).unwrap();
        c2s.drain(..n);
        let mut reqs = Vec::new();
        let mut supply = None;
        let mut init = false;
        let mut new_key = None;
        let mut evs = 0;
        while let Some(ev) = d.poll_event() {
            evs += 1;
            match ev {
                Event::Request { msg_id, body } => reqs.push((msg_id, body.to_vec())),
                Event::AuthKeyReady => host.ready += 1,
                Event::AuthKeyRequired { key_id } => {
                    host.required.push(key_id);
                    supply = Some(key_id);
                }
                Event::ObfuscatedInit => init = true,
                Event::NewAuthKey { key_id } => new_key = Some(key_id),
                _ => {}
            }
        }
        if init {
            d.check_obfuscated_init(&mut host.replay).unwrap();
        }
        // Item 25: the new key's id is checked against the store before dh_gen_ok goes out.
        if let Some(id) = new_key {
            d.accept_new_key(now, host.keys.contains_key(&id), rng).unwrap();
            evs += 1;
        }
        if d.is_encrypted() && host.ready > 0 {
            let k = d.auth_key().unwrap().clone();
            host.keys.insert(k.id(), k);
        }
        if let Some(id) = supply.filter(|_| host.answer) {
            d.supply_auth_key(now, host.keys.get(&id).cloned(), rng).unwrap();
            while let Some(ev) = d.poll_event() {
                if let Event::Request { msg_id, body } = ev {
                    reqs.push((msg_id, body.to_vec()));
                }
            }
        }
        // One connection per session here: every session the DC asks about starts on it.
        if let Some(HostQuery::Session { .. }) = d.host_query() {
            d.resume_session(now, None).unwrap();
            evs += 1;
            while let Some(ev) = d.poll_event() {
                if let Event::Request { msg_id, body } = ev {
                    reqs.push((msg_id, body.to_vec()));
                }
            }
        }
        host.requests += reqs.len();
        for (id, b) in reqs {
            d.answer(now, id, &b).unwrap();
        }
        let mut sent = false;
        while let Some(m) = d.poll_transmit(now, rng, &mut buf).unwrap() {
            s2c.extend_from_slice(&buf[..m]);
            sent = true;
        }
        if c2s.is_empty() || (n == 0 && !sent && evs == 0) {
            break;
        }
    }
    let mut off = 0;
    while off < s2c.len() {
        let n = c.handle_input(now, &s2c[off..]).unwrap();
        off += n;
        while let Some(ev) = c.poll_event() {
            match ev {
                Event::AuthKeyReady => ce.ready += 1,
                Event::RpcResult { req, body } => ce.results.push((req, body.to_vec())),
                Event::TransportError(code) => ce.transport_errors.push(code),
                _ => {}
            }
        }
        assert!(n > 0 || off == s2c.len(), "client stalled");
    }
}

fn host(answer: bool) -> Host {
    Host {
        keys: HashMap::new(),
        answer,
        required: Vec::new(),
        ready: 0,
        requests: 0,
        replay: ReplayCache::new(),
    }
}

/// Handshake through the DC facade, then one RPC; returns the stored key.
fn handshake_then_rpc(t: TransportConfig, seed: u64) -> AuthKey {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut now = Instant::from_secs(50);
    let mut c = Box::new(S::client_handshake(
        cfg(t),
        handshake::ClientConfig::new(trusted(), 2),
        now,
    ));
    let mut d = dc(t, now);
    let mut h = host(true);
    let mut ce = Client::default();
    let mut qid = None;
    for _ in 0..20 {
        now = now.saturating_add(core::time::Duration::from_millis(30));
        round(&mut c, &mut d, &mut h, &mut ce, now, &mut rng);
        if ce.ready == 1 && qid.is_none() {
            qid = Some(c.send(now, &QUERY, MsgKind::Query).unwrap());
        }
        if !ce.results.is_empty() {
            break;
        }
    }
    assert_eq!((ce.ready, h.ready), (1, 1), "{t:?}");
    assert!(h.required.is_empty(), "the DC made this key itself");
    assert_eq!(ce.results, vec![(qid.unwrap(), QUERY.to_vec())], "{t:?}");
    let key = c.auth_key().unwrap().clone();
    assert_eq!(d.auth_key().unwrap().id(), key.id());
    assert_eq!(h.keys.keys().copied().collect::<Vec<_>>(), vec![key.id()]);
    // The DC started on the handshake's salt: the client's first message was not refused.
    assert_eq!(c.stats().bad_msgs, 0);
    key
}

/// A second connection under a stored key: the DC asks the host, gets the key, and the RPC is answered.
fn stored_key_connection(t: TransportConfig, key: AuthKey, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Instant::from_secs(900);
    let mut c = Box::new(S::client(cfg(t), key.clone(), now, &mut rng));
    let mut d = dc(t, now);
    let mut h = host(true);
    h.keys.insert(key.id(), key.clone());
    let mut ce = Client::default();
    let qid = c.send(now, &QUERY, MsgKind::Query).unwrap();
    for _ in 0..10 {
        round(&mut c, &mut d, &mut h, &mut ce, now, &mut rng);
        if !ce.results.is_empty() {
            break;
        }
    }
    assert_eq!(h.required, vec![key.id()], "{t:?}");
    assert_eq!(h.ready, 0);
    assert_eq!(ce.results, vec![(qid, QUERY.to_vec())], "{t:?}");
    assert!(ce.transport_errors.is_empty());
}

#[test]
fn dc_handshake_rpc_and_stored_key_over_intermediate() {
    let key = handshake_then_rpc(INTERMEDIATE, 1);
    stored_key_connection(INTERMEDIATE, key, 2);
}

#[test]
fn dc_handshake_rpc_and_stored_key_over_obfuscated_padded_intermediate() {
    let key = handshake_then_rpc(OBF_PADDED, 3);
    stored_key_connection(OBF_PADDED, key, 4);
}

fn random_key(rng: &mut StdRng) -> AuthKey {
    let mut k = [0u8; 256];
    rng.fill_bytes(&mut k);
    AuthKey::from_bytes(k)
}

#[test]
fn chk_027_dc_unknown_key_answers_404() {
    for t in [INTERMEDIATE, OBF_PADDED] {
        let mut rng = StdRng::seed_from_u64(27);
        let now = Instant::from_secs(50);
        let key = random_key(&mut rng);
        let mut c = Box::new(S::client(cfg(t), key.clone(), now, &mut rng));
        let mut d = dc(t, now);
        let mut h = host(true); // an empty store: the host answers `None`
        let mut ce = Client::default();
        c.send(now, &QUERY, MsgKind::Query).unwrap();
        round(&mut c, &mut d, &mut h, &mut ce, now, &mut rng);
        assert_eq!(h.required, vec![key.id()], "{t:?}");
        assert_eq!(ce.transport_errors, vec![-404], "{t:?}");
        assert_eq!(h.requests, 0);
        assert!(!d.is_encrypted() && d.auth_key().is_none());
        assert_eq!(
            d.supply_auth_key(now, None, &mut rng),
            Err(SupplyKeyError::NotRequested),
            "the frame was dropped"
        );
    }
}

/// Client bytes carrying two encrypted frames under `key`.
fn two_frames(t: TransportConfig, key: &AuthKey, now: Instant, rng: &mut StdRng) -> (Box<S>, Vec<u8>) {
    let mut c = Box::new(S::client(cfg(t), key.clone(), now, rng));
    let mut buf = vec![0u8; c.min_transmit_len()];
    let mut bytes = Vec::new();
    c.send(now, &QUERY, MsgKind::Query).unwrap();
    while let Some(n) = c.poll_transmit(now, rng, &mut buf).unwrap() {
        bytes.extend_from_slice(&buf[..n]);
    }
    c.send(now, &QUERY, MsgKind::Query).unwrap();
    while let Some(n) = c.poll_transmit(now, rng, &mut buf).unwrap() {
        bytes.extend_from_slice(&buf[..n]);
    }
    (c, bytes)
}

#[test]
fn chk_027_dc_parked_frame_waits_for_its_key_with_backpressure() {
    for t in [INTERMEDIATE, OBF_PADDED] {
        let mut rng = StdRng::seed_from_u64(5);
        let now = Instant::from_secs(50);
        let key = random_key(&mut rng);
        let (_c, bytes) = two_frames(t, &key, now, &mut rng);
        let mut d = dc(t, now);
        assert_eq!(
            d.supply_auth_key(now, Some(key.clone()), &mut rng),
            Err(SupplyKeyError::NotRequested)
        );
        // Feed everything: only up to the first encrypted frame is consumed, then nothing.
        let mut off = 0;
        loop {
            let n = d.handle_input(now, &bytes[off..]).unwrap();
            if n == 0 && d.host_query() == Some(HostQuery::ObfuscatedInit) {
                assert_eq!(d.poll_event(), Some(Event::ObfuscatedInit));
                d.check_obfuscated_init(&mut ReplayCache::<4>::new()).unwrap();
                continue;
            }
            if n == 0 {
                break;
            }
            off += n;
        }
        assert!(off > 0 && off < bytes.len(), "{t:?}: consumed {off} of {}", bytes.len());
        let mut evs = Vec::new();
        while let Some(ev) = d.poll_event() {
            evs.push(format!("{ev:?}"));
        }
        assert_eq!(evs, vec![format!("{:?}", Event::AuthKeyRequired { key_id: key.id() })]);
        // Still parked: more input is refused, nothing is processed or sent, no second event.
        for _ in 0..3 {
            assert_eq!(d.handle_input(now, &bytes[off..]).unwrap(), 0);
        }
        assert!(d.poll_event().is_none());
        let mut out = vec![0u8; d.min_transmit_len()];
        assert_eq!(d.poll_transmit(now, &mut rng, &mut out).unwrap(), None);
        assert!(!d.is_encrypted());
        // A key under another id does not release the frame.
        let other = random_key(&mut rng);
        assert_eq!(
            d.supply_auth_key(now, Some(other), &mut rng),
            Err(SupplyKeyError::WrongKey)
        );
        assert_eq!(d.handle_input(now, &bytes[off..]).unwrap(), 0);
        // The right key: the parked frame is processed on it and input flows again.
        d.supply_auth_key(now, Some(key.clone()), &mut rng).unwrap();
        assert!(d.is_encrypted());
        assert_eq!(d.auth_key().unwrap().id(), key.id());
        // Then the DC asks for the client session it names (none elsewhere: it starts here).
        assert!(matches!(d.host_query(), Some(HostQuery::Session { .. })));
        d.resume_session(now, None).unwrap();
        // It was processed: the DC now has something to say (`bad_server_salt` or an acknowledgement).
        assert!(d.poll_transmit(now, &mut rng, &mut out).unwrap().is_some());
        let mut rest = off;
        while rest < bytes.len() {
            let n = d.handle_input(now, &bytes[rest..]).unwrap();
            while d.poll_event().is_some() {}
            assert!(n > 0);
            rest += n;
        }
    }
}
