//! `PfsClient` behind an MTProxy `dd` secret (`PfsClient::set_proxy_secret`): the first key and every re-key's new
//! connection speak the obfuscated transport under the secret; a DC host with the same secret accepts each one, a DC
//! host without it (or with another) refuses the connection's first bytes (tests/pfs_dc, with the secret set on each
//! of its connections).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dc_util;
mod pfs_dc;

use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::handshake;
use mtproto_sansio::session::{
    ConnectionConfig, Error, PfsClient, PfsConfig, PfsEvent, ProxySecretError, QueryId, SessionConfig, TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::transport::Framing;
use mtproto_sansio::transport::obfuscated::ProxySecret;
use pfs_dc::{Dc, DcNote, trusted};
use rand::SeedableRng;
use rand::rngs::StdRng;

const UNIX0: u64 = 1_700_000_000;
/// A `dd` secret: padded intermediate framing under the proxy's key.
const DD_SECRET: [u8; 17] = [
    0xdd, 0x3c, 0x91, 0x0f, 0x55, 0x0a, 0xe4, 0x21, 0x7b, 0x98, 0x12, 0xc6, 0x44, 0x30, 0x8e, 0xf1, 0x07,
];
const OTHER_SECRET: [u8; 17] = [
    0xdd, 0x3c, 0x91, 0x0f, 0x55, 0x0a, 0xe4, 0x21, 0x7b, 0x98, 0x12, 0xc6, 0x44, 0x30, 0x8e, 0xf1, 0x08,
];
const OBF_PADDED: TransportConfig = TransportConfig {
    framing: Framing::PaddedIntermediate,
    obfuscated: true,
    dc_id: Some(2),
};

fn session_cfg(transport: TransportConfig) -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig {
            ping_interval: Some(Duration::from_secs(30)),
            ..SessionConfig::DEFAULT
        },
        transport,
        unix_time_hint: Some(UnixTime(UNIX0)),
        salt: 0,
    }
}

fn secret(raw: &[u8]) -> Option<ProxySecret> {
    Some(ProxySecret::from_bytes(raw).unwrap())
}

/// A client whose temporary keys live 200 s and are replaced 60 s before expiry.
fn client(now: Instant) -> Box<PfsClient<8192, 8192, 16, 8>> {
    let mut c = PfsConfig::new(session_cfg(OBF_PADDED), handshake::ClientConfig::new(trusted(), 2));
    c.temp_key_lifetime = 200;
    c.rekey_margin = Duration::from_secs(60);
    c.drain_timeout = Duration::from_secs(30);
    Box::new(PfsClient::new(c, AuthKey::from_bytes([0x42; 256]), now))
}

struct World {
    c: Box<PfsClient<8192, 8192, 16, 8>>,
    dc: Dc<8192, 8192, 16>,
    /// The secret the DC host sets on each new connection.
    dc_secret: Option<ProxySecret>,
    now: Instant,
    rng: StdRng,
    answers: Vec<(QueryId, Vec<u8>)>,
    new_connections: usize,
}

impl World {
    fn new(client_secret: Option<&[u8]>, dc_secret: Option<&[u8]>) -> World {
        let now = Instant::from_secs(100);
        let mut c = client(now);
        c.set_proxy_secret(client_secret.and_then(secret)).unwrap();
        let mut w = World {
            c,
            dc: Dc::new(
                session_cfg(OBF_PADDED),
                AuthKey::from_bytes([0x42; 256]),
                UNIX0 - 100,
                now,
            ),
            dc_secret: dc_secret.and_then(secret),
            now,
            rng: StdRng::seed_from_u64(7),
            answers: Vec::new(),
            new_connections: 0,
        };
        w.dc_connect();
        w
    }

    fn dc_connect(&mut self) {
        self.dc.connect(self.now);
        self.dc.sess.set_proxy_secret(self.dc_secret.clone()).unwrap();
    }

    fn new_connection(&mut self) {
        self.new_connections += 1;
        self.dc_connect();
        self.c.reconnect(self.now);
    }

    fn drain(&mut self) -> bool {
        let mut nc = false;
        while let Some(ev) = self.c.poll_event() {
            match ev {
                PfsEvent::Result { query, body } => self.answers.push((query, body.to_vec())),
                PfsEvent::NewConnection(_) => nc = true,
                _ => {}
            }
        }
        nc
    }

    /// One exchange each way; the DC's first error (a refused connection) is returned.
    fn round(&mut self) -> Result<(), Error> {
        let mut out = vec![0u8; self.c.min_transmit_len()];
        while let Some(n) = self.c.poll_transmit(self.now, &mut self.rng, &mut out).unwrap() {
            let mut off = 0;
            while off < n {
                off += self.dc.sess.handle_input(self.now, &out[off..n])?;
                self.dc.process(self.now, &mut self.rng);
                self.execute();
            }
        }
        self.dc.process(self.now, &mut self.rng);
        self.execute();
        let mut new_conn = false;
        let mut sout = vec![0u8; self.dc.sess.min_transmit_len()];
        'feed: while let Some(n) = self.dc.sess.poll_transmit(self.now, &mut self.rng, &mut sout).unwrap() {
            let mut off = 0;
            while off < n {
                off += self.c.handle_input(self.now, &sout[off..n]).unwrap();
                if self.drain() {
                    new_conn = true;
                    break 'feed;
                }
            }
        }
        if new_conn | self.drain() {
            self.new_connection();
        }
        Ok(())
    }

    /// The DC host executes every request by echo.
    fn execute(&mut self) {
        let reqs = std::mem::take(&mut self.dc.requests);
        let _ = self.dc.answer_all(self.now, reqs);
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
        self.c.handle_timeout(self.now).unwrap();
        self.dc.sess.handle_timeout(self.now).unwrap();
        if self.drain() {
            self.new_connection();
        }
    }

    /// Rounds 100 ms apart until `q` is answered; the DC's refusal ends it early.
    fn until_answered(&mut self, q: QueryId, limit: Duration) -> Result<bool, Error> {
        let end = self.now.saturating_add(limit);
        while self.now < end {
            self.round()?;
            if self.answers.iter().any(|a| a.0 == q) {
                return Ok(true);
            }
            self.advance(Duration::from_millis(100));
        }
        Ok(false)
    }

    fn bound_keys(&self) -> Vec<u64> {
        self.dc
            .notes
            .iter()
            .filter_map(|n| match n {
                DcNote::Bound(k) => Some(*k),
                _ => None,
            })
            .collect()
    }
}

const Q1: &[u8] = &[0x0d, 0xf0, 0xad, 0x0b, 1, 0, 0, 0];
const Q2: &[u8] = &[0x0d, 0xf0, 0xad, 0x0b, 2, 0, 0, 0];

/// Binds the first key through the proxy, then runs to the planned re-key; its new connection reaches a DC host
/// with `rekey_dc_secret`. Returns the DC's refusal, if any, or the answer of a query on the new key.
fn first_key_then_rekey(w: &mut World, rekey_dc_secret: Option<&[u8]>) -> Result<bool, Error> {
    let q = w.c.send(w.now, Q1).unwrap();
    assert!(
        w.until_answered(q, Duration::from_secs(10)).unwrap(),
        "first key: no answer"
    );
    assert!(w.answers.contains(&(q, Q1.to_vec())));
    assert_eq!(w.bound_keys().len(), 1);
    assert_eq!(w.new_connections, 0);
    w.dc_secret = rekey_dc_secret.and_then(secret);
    // Past expiry minus the margin: the policy asks for a new connection for a new key.
    while w.new_connections == 0 && w.now < Instant::from_secs(400) {
        w.advance(Duration::from_secs(5));
        w.round()?;
    }
    assert_eq!(w.new_connections, 1, "no re-key");
    let q = w.c.send(w.now, Q2).unwrap();
    let answered = w.until_answered(q, Duration::from_secs(10))?;
    assert!(!answered || w.answers.contains(&(q, Q2.to_vec())));
    Ok(answered)
}

#[test]
fn dd_secret_survives_the_rekeys_new_connection() {
    let mut w = World::new(Some(&DD_SECRET), Some(&DD_SECRET));
    assert!(
        first_key_then_rekey(&mut w, Some(&DD_SECRET)).unwrap(),
        "second key: no answer"
    );
    let bound = w.bound_keys();
    assert_eq!(bound.len(), 2, "the new key was not bound");
    assert_ne!(bound[0], bound[1], "re-key kept the old key");
    assert_eq!(w.c.keys_created(), 2);
    assert_eq!(w.c.session().auth_key().map(AuthKey::id), Some(bound[1]));
}

#[test]
fn rekeyed_connection_refused_by_a_dc_without_the_secret() {
    // The re-key's connection reaches a DC host that has no secret: had the client dropped the secret, its plain
    // obfuscated init would be accepted there.
    for dc in [None, Some(&OTHER_SECRET[..])] {
        let mut w = World::new(Some(&DD_SECRET), Some(&DD_SECRET));
        let r = first_key_then_rekey(&mut w, dc);
        assert!(matches!(r, Err(Error::Transport(_))), "{r:?}");
        assert_eq!(w.bound_keys().len(), 1);
        assert_eq!(w.c.keys_created(), 1);
    }
}

#[test]
fn without_the_secret_the_proxy_refuses_the_first_connection() {
    let mut w = World::new(None, Some(&DD_SECRET));
    let q = w.c.send(w.now, Q1).unwrap();
    assert!(matches!(
        w.until_answered(q, Duration::from_secs(10)),
        Err(Error::Transport(_))
    ));
    assert!(w.bound_keys().is_empty());
}

#[test]
fn secret_checks_pass_through() {
    let now = Instant::from_secs(1);
    // A `dd` secret needs padded intermediate framing.
    let mut c = PfsConfig::new(
        session_cfg(TransportConfig {
            framing: Framing::Intermediate,
            obfuscated: true,
            dc_id: Some(2),
        }),
        handshake::ClientConfig::new(trusted(), 2),
    );
    let mut p: Box<PfsClient<8192, 8192, 16, 8>> = Box::new(PfsClient::new(c, AuthKey::from_bytes([1; 256]), now));
    assert_eq!(
        p.set_proxy_secret(secret(&DD_SECRET)),
        Err(ProxySecretError::RequiresPadding)
    );
    c = PfsConfig::new(
        session_cfg(TransportConfig::INTERMEDIATE),
        handshake::ClientConfig::new(trusted(), 2),
    );
    let mut p: Box<PfsClient<8192, 8192, 16, 8>> = Box::new(PfsClient::new(c, AuthKey::from_bytes([1; 256]), now));
    assert_eq!(
        p.set_proxy_secret(secret(&DD_SECRET)),
        Err(ProxySecretError::NotObfuscated)
    );
    // Not once bytes went out on the connection.
    let mut p = client(now);
    let mut out = vec![0u8; p.min_transmit_len()];
    let mut rng = StdRng::seed_from_u64(1);
    assert!(p.poll_transmit(now, &mut rng, &mut out).unwrap().is_some());
    assert_eq!(p.set_proxy_secret(secret(&DD_SECRET)), Err(ProxySecretError::Started));
}
