//! The DC (server) side of the auth-key handshake: a bounded table of concurrent runs.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

use core::time::Duration;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    BufferTooSmall, ERR_FLOOD, ERR_NOT_FOUND, ERR_WRONG_DC, MAX_CLIENT_DH_ENCRYPTED, MAX_PQ_STRING, MAX_SERVER_MESSAGE,
    MAX_TRANSPORT_PADDING, MsgIds, PQ_INNER_DATA_LENGTHS, be_u64, check_sha1_padding, first_salt, new_nonce_hash,
    parse_plain, seal_with_sha1, unix_micros, write_plain,
};
use crate::crypto::aes::ige_decrypt;
use crate::crypto::auth_key::AuthKey;
use crate::crypto::dh::{DhGroup, DhSecret};
use crate::crypto::factor::random_pq;
use crate::crypto::kdf::tmp_aes_key_iv;
use crate::crypto::rsa::{InnerEncoding, RSA_BYTES, RsaPrivateKey, decrypt_inner_data};
use crate::time::Instant;
use crate::tl::{
    ClientDhInnerData, DhGenFail, DhGenOk, DhGenRetry, LongVec, PQInnerData, ReqDhParams, ReqPq, ReqPqMulti, ResPq,
    ServerDhInnerData, ServerDhParamsOk, SetClientDhParams, TlRead, TlWrite, Writer,
};

/// How long a run may live, per the spec ("the server remembers … up to 10 minutes"; item 23).
pub const RUN_LIFETIME: Duration = Duration::from_secs(600);

/// DC handshake settings.
#[derive(Clone)]
pub struct ServerConfig<'k> {
    /// Our RSA private key (its fingerprint is the only one offered in `resPQ`).
    pub rsa_key: &'k RsaPrivateKey,
    /// Our DH group (default: Telegram's prime with g = 3, which real clients expect).
    pub group: DhGroup,
    /// If set, a `p_q_inner_data_dc`/`_temp_dc` naming another DC gets −444. The id, the id + 10000 (a test DC, as
    /// TDLib and Telegram's test DCs name it) and either negated (a media-only endpoint) all name this DC.
    pub dc_id: Option<i32>,
    /// Largest accepted `expires_in` of a temporary key, in seconds (item 24).
    pub max_temp_expires_in: u32,
    /// How long a run may stay pending (at most [`RUN_LIFETIME`] is sensible).
    pub run_lifetime: Duration,
    /// Unix time in microseconds at the host's [`Instant::ZERO`] (for msg_ids and `server_time`).
    pub unix_micros_at_zero: u64,
    /// `dh_gen_retry` rounds per run on key-id collisions before answering `dh_gen_fail`.
    pub max_dh_retries: u8,
    /// Pending runs one peer may hold at once (item 23); more get −429.
    pub max_runs_per_peer: usize,
    /// Tolerate up to 15 trailing bytes after a plaintext message (padded intermediate transport).
    pub transport_padding: bool,
}

impl core::fmt::Debug for ServerConfig<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("rsa_key", self.rsa_key)
            .field("dc_id", &self.dc_id)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ServerConfig<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ServerConfig {{ dc_id: {} }}", self.dc_id)
    }
}

impl<'k> ServerConfig<'k> {
    /// Defaults around our RSA key and DH group (real clients expect Telegram's prime: pass
    /// `DhGroup::telegram(3)`): no DC check, temp keys up to one day, 10-minute runs, 5 DH retries.
    pub fn new(rsa_key: &'k RsaPrivateKey, group: DhGroup) -> Self {
        ServerConfig {
            rsa_key,
            group,
            dc_id: None,
            max_temp_expires_in: 86_400,
            run_lifetime: RUN_LIFETIME,
            unix_micros_at_zero: 0,
            max_dh_retries: 5,
            max_runs_per_peer: 4,
            transport_padding: false,
        }
    }
}

/// A key the DC created.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerOutcome {
    /// The new authorization key.
    pub auth_key: AuthKey,
    /// The first server salt.
    pub server_salt: u64,
    /// For a temporary key: its lifetime in seconds.
    pub expires_in: Option<u32>,
    /// The DC id the client named (absent for the legacy `p_q_inner_data`).
    pub dc: Option<i32>,
}

/// What to send back for one incoming packet.
///
/// `Complete` carries the key by value (no allocator to box it); the enum is returned, never stored.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServerReply {
    /// Send the plaintext message in `out[..n]`.
    Send(usize),
    /// Send this 4-byte transport error (−404, −429 or −444).
    Error(i32),
    /// Send `out[..len]` (`dh_gen_ok`) and store the new key.
    Complete {
        /// Length of the message in `out`.
        len: usize,
        /// The key.
        outcome: ServerOutcome,
    },
}

// Runs live in a fixed array, so boxing the large phase would not save memory (and needs an allocator).
#[allow(clippy::large_enum_variant)]
enum Phase {
    AwaitReqDh {
        pq: u64,
        p: u32,
        q: u32,
    },
    AwaitClientDh {
        new_nonce: Zeroizing<[u8; 32]>,
        a: DhSecret,
        expires_in: Option<u32>,
        dc: Option<i32>,
        retries: u8,
        retry_id: u64,
    },
    /// A new key waits for the host's collision check; its 256 bytes sit in the run's `answer` buffer (nothing is
    /// cached for replay meanwhile) and `last_request` is the digest of the `set_client_DH_params` that made it.
    AwaitKeyCheck {
        new_nonce: Zeroizing<[u8; 32]>,
        a: DhSecret,
        expires_in: Option<u32>,
        dc: Option<i32>,
        retries: u8,
        key_id: u64,
    },
    Done,
}

struct Run {
    peer: u64,
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    created: Instant,
    phase: Phase,
    /// SHA-256 of the last request, so an identical retransmission gets the identical answer (item 23).
    last_request: [u8; 32],
    /// The cached answer; while a key check is pending, the new key (so it is zeroized on drop).
    answer: Zeroizing<[u8; MAX_SERVER_MESSAGE]>,
    answer_len: usize,
}

/// What [`ServerHandshakes::handle_deferred`] asks of the host.
///
/// `Reply` carries the key by value inside `ServerReply::Complete`; the enum is returned, never stored.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServerStep {
    /// Send (or store) this reply, as [`ServerHandshakes::handle`] would.
    Reply(ServerReply),
    /// A run computed a new auth key and nothing was sent yet: look `key_id` up in the key store and answer with
    /// [`ServerHandshakes::finish_key_check`] (item 25). The run holds the key until then (at most its lifetime).
    CheckKeyId {
        /// The new key's auth_key_id.
        key_id: u64,
    },
}

/// Why [`ServerHandshakes::finish_key_check`] wrote nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeyCheckError {
    /// `out` is shorter than [`MAX_SERVER_MESSAGE`].
    BufferTooSmall {
        /// Bytes `out` must have: [`MAX_SERVER_MESSAGE`].
        required: usize,
    },
    /// No run of this peer waits for a check of this key id (it expired, or was never reported).
    NotPending,
}

impl KeyCheckError {
    /// The host's ([`Fault::Host`]): a buffer too small, or an answer to a question not asked.
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl core::fmt::Display for KeyCheckError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KeyCheckError::BufferTooSmall { required } => {
                write!(f, "output buffer too small: {required} bytes required")
            }
            KeyCheckError::NotPending => f.write_str("no handshake waits for this key id"),
        }
    }
}

impl core::error::Error for KeyCheckError {}

/// How a new key's id is checked against the key store.
#[derive(Clone, Copy)]
enum KeyCheck<'a> {
    /// Synchronously, by the host's predicate.
    Now(&'a dyn Fn(u64) -> bool),
    /// By the host later: the run parks the key ([`ServerStep::CheckKeyId`]).
    Later,
}

/// What one request led to, before it is told to the host (returned, never stored).
#[allow(clippy::large_enum_variant)]
enum Handled {
    Reply(ServerReply),
    Check(u64),
}

/// Why a request is refused: everything but a DC mismatch is the one −404 (item 24).
enum Refuse {
    NotFound,
    WrongDc,
}

/// The DC's pending handshake runs, at most `N`, each at most [`ServerConfig::run_lifetime`] old (items 23, 57;
/// attack B17), at most [`ServerConfig::max_runs_per_peer`] pending per peer. Runs are keyed by (peer, nonce,
/// server_nonce), so any number of connections can share one table, and a connection whose handshake failed can
/// start another (INTEROP.md).
///
/// Every failure inside a run answers the same −404 and deletes the run, so every later request naming it gets
/// −404 too (item 24, attack B4). A full table answers −429 after evicting expired and finished runs.
///
/// Cost per request: `req_pq_multi` draws a random pq (two 31-bit primes, ~20 µs); `req_DH_params` does one
/// blinded constant-time RSA private operation (~2–4 ms) and one 2048-bit modexp for g_a; `set_client_DH_params`
/// does one 2048-bit modexp; a whole DC handshake measured about 12 ms of CPU on a shared x86-64 host. Memory is
/// fixed at compile time: about 1.1 KiB per run slot (checked by the B17 test).
pub struct ServerHandshakes<'k, const N: usize> {
    config: ServerConfig<'k>,
    fingerprint: u64,
    runs: [Option<Run>; N],
    msg_ids: MsgIds,
}

impl<const N: usize> core::fmt::Debug for ServerHandshakes<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHandshakes")
            .field("pending", &self.len())
            .field("capacity", &N)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for ServerHandshakes<'_, N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ServerHandshakes {{ pending: {}, capacity: {} }}", self.len(), N)
    }
}

impl<'k, const N: usize> ServerHandshakes<'k, N> {
    /// An empty table.
    pub fn new(config: ServerConfig<'k>) -> Self {
        let fingerprint = config.rsa_key.public_key().fingerprint();
        ServerHandshakes {
            config,
            fingerprint,
            runs: [const { None }; N],
            msg_ids: MsgIds::default(),
        }
    }

    /// Runs currently held (pending or finished but kept for retransmissions).
    pub fn len(&self) -> usize {
        self.runs.iter().filter(|r| r.is_some()).count()
    }

    /// Whether no run is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the oldest run expires.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.runs
            .iter()
            .flatten()
            .map(|r| r.created.saturating_add(self.config.run_lifetime))
            .min()
    }

    /// Drops runs older than [`ServerConfig::run_lifetime`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let life = self.config.run_lifetime;
        for slot in self.runs.iter_mut() {
            if slot
                .as_ref()
                .is_some_and(|r| now.saturating_duration_since(r.created) >= life)
            {
                *slot = None;
            }
        }
    }

    /// Handles one packet from a client and writes the answer into `out` (which must hold
    /// [`MAX_SERVER_MESSAGE`] bytes; if it does not, nothing changes). `peer` is the host's name for the sender
    /// (a connection id or an address): runs are bound to it and capped per peer ([`ServerConfig::max_runs_per_peer`]).
    /// `key_id_taken` tells whether an auth_key_id is already in use; a collision is answered with `dh_gen_retry`
    /// (item 25).
    pub fn handle<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        peer: u64,
        payload: &[u8],
        out: &mut [u8],
        key_id_taken: &dyn Fn(u64) -> bool,
    ) -> Result<ServerReply, BufferTooSmall> {
        Ok(
            match self.step(now, rng, peer, payload, out, KeyCheck::Now(key_id_taken))? {
                Handled::Reply(r) => r,
                // `KeyCheck::Now` never defers.
                Handled::Check(_) => ServerReply::Error(ERR_NOT_FOUND),
            },
        )
    }

    /// [`handle`](Self::handle) for a host whose key store cannot be asked synchronously (a database, another
    /// task, a Sans-IO facade): a new key is not checked inline; instead the run parks it and the call returns
    /// [`ServerStep::CheckKeyId`], and the host answers with [`finish_key_check`](Self::finish_key_check). An
    /// identical retransmission of the request meanwhile reports the same key id again; any other request naming
    /// the run poisons it (−404).
    pub fn handle_deferred<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        peer: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<ServerStep, BufferTooSmall> {
        Ok(match self.step(now, rng, peer, payload, out, KeyCheck::Later)? {
            Handled::Reply(r) => ServerStep::Reply(r),
            Handled::Check(key_id) => ServerStep::CheckKeyId { key_id },
        })
    }

    /// Answers a [`ServerStep::CheckKeyId`] of `peer`'s run: `taken` = the key store already holds `key_id`.
    /// Not taken: `dh_gen_ok` and [`ServerReply::Complete`] (the host should reserve the id at once). Taken:
    /// `dh_gen_retry` (the client repeats its last step with `retry_id` = the key's aux hash), or `dh_gen_fail`
    /// after [`ServerConfig::max_dh_retries`] rounds, both as [`ServerReply::Send`]. The answer is cached for
    /// retransmissions like any other.
    pub fn finish_key_check(
        &mut self,
        now: Instant,
        peer: u64,
        key_id: u64,
        taken: bool,
        out: &mut [u8],
    ) -> Result<ServerReply, KeyCheckError> {
        if out.len() < MAX_SERVER_MESSAGE {
            return Err(KeyCheckError::BufferTooSmall {
                required: MAX_SERVER_MESSAGE,
            });
        }
        self.handle_timeout(now);
        let i = self
            .runs
            .iter()
            .position(|r| {
                r.as_ref().is_some_and(|r| {
                    r.peer == peer && matches!(r.phase, Phase::AwaitKeyCheck { key_id: k, .. } if k == key_id)
                })
            })
            .ok_or(KeyCheckError::NotPending)?;
        let msg_id = self.server_msg_id(now);
        let max_retries = self.config.max_dh_retries;
        let run = self
            .runs
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(KeyCheckError::NotPending)?;
        let Phase::AwaitKeyCheck {
            new_nonce,
            a,
            expires_in,
            dc,
            retries,
            ..
        } = core::mem::replace(&mut run.phase, Phase::Done)
        else {
            return Err(KeyCheckError::NotPending);
        };
        let mut bytes = Zeroizing::new([0u8; crate::crypto::auth_key::AUTH_KEY_LEN]);
        if let Some(src) = run.answer.get(..bytes.len()) {
            bytes.copy_from_slice(src);
        }
        run.answer.fill(0);
        let auth_key = AuthKey::from_bytes(*bytes);
        drop(bytes);
        let digest = run.last_request;
        let (nonce, server_nonce) = (run.nonce, run.server_nonce);
        let mut state = ClientDhState {
            new_nonce,
            a,
            expires_in,
            dc,
            retries,
            retry_id: 0,
        };
        let r = conclude(
            &mut state,
            nonce,
            server_nonce,
            auth_key,
            taken,
            max_retries,
            msg_id,
            out,
        );
        match r {
            Ok((n, outcome, finished)) => {
                if !finished && let Some(Some(run)) = self.runs.get_mut(i) {
                    run.phase = Phase::AwaitClientDh {
                        new_nonce: state.new_nonce,
                        a: state.a,
                        expires_in: state.expires_in,
                        dc: state.dc,
                        retries: state.retries,
                        retry_id: state.retry_id,
                    };
                }
                self.cache(i, &digest, out, n);
                Ok(match outcome {
                    Some(outcome) => ServerReply::Complete { len: n, outcome },
                    None => ServerReply::Send(n),
                })
            }
            Err(_) => {
                self.remove(i);
                Ok(ServerReply::Error(ERR_NOT_FOUND))
            }
        }
    }

    fn step<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        peer: u64,
        payload: &[u8],
        out: &mut [u8],
        check: KeyCheck<'_>,
    ) -> Result<Handled, BufferTooSmall> {
        if out.len() < MAX_SERVER_MESSAGE {
            return Err(BufferTooSmall {
                required: MAX_SERVER_MESSAGE,
            });
        }
        self.handle_timeout(now);
        let max_trailing = if self.config.transport_padding {
            MAX_TRANSPORT_PADDING
        } else {
            0
        };
        let Ok((msg_id, body)) = parse_plain(payload, max_trailing) else {
            return Ok(Handled::Reply(ServerReply::Error(ERR_NOT_FOUND)));
        };
        // Client msg_ids are divisible by 4 (DESC).
        if !msg_id.is_multiple_of(4) {
            return Ok(Handled::Reply(ServerReply::Error(ERR_NOT_FOUND)));
        }
        let d: [u8; 32] = Sha256::new()
            .chain_update(msg_id.to_le_bytes())
            .chain_update(body)
            .finalize()
            .into();
        let ctor = crate::tl::Reader::new(body).u32().unwrap_or(0);
        let result = match ctor {
            ReqPqMulti::CONSTRUCTOR | ReqPq::CONSTRUCTOR => {
                self.on_req_pq(now, rng, peer, body, &d, out).map(Handled::Reply)
            }
            ReqDhParams::CONSTRUCTOR => self.on_req_dh(now, rng, peer, body, &d, out).map(Handled::Reply),
            SetClientDhParams::CONSTRUCTOR => self.on_set_client_dh(now, peer, body, &d, out, check),
            _ => Err(Refuse::NotFound),
        };
        Ok(match result {
            Ok(reply) => reply,
            Err(Refuse::NotFound) => Handled::Reply(ServerReply::Error(ERR_NOT_FOUND)),
            Err(Refuse::WrongDc) => Handled::Reply(ServerReply::Error(ERR_WRONG_DC)),
        })
    }

    fn find(&self, peer: u64, nonce: &[u8; 16], server_nonce: Option<&[u8; 16]>) -> Option<usize> {
        self.runs.iter().position(|r| {
            r.as_ref().is_some_and(|r| {
                r.peer == peer && &r.nonce == nonce && server_nonce.is_none_or(|s| &r.server_nonce == s)
            })
        })
    }

    fn pending_of(&self, peer: u64) -> usize {
        self.runs
            .iter()
            .flatten()
            .filter(|r| r.peer == peer && !matches!(r.phase, Phase::Done))
            .count()
    }

    fn remove(&mut self, i: usize) {
        if let Some(slot) = self.runs.get_mut(i) {
            *slot = None;
        }
    }

    /// Replays the cached answer if `digest` names the run's last request.
    fn replay(&self, i: usize, digest: &[u8; 32], out: &mut [u8]) -> Option<ServerReply> {
        let run = self.runs.get(i)?.as_ref()?;
        if &run.last_request != digest {
            return None;
        }
        if matches!(run.phase, Phase::AwaitKeyCheck { .. }) {
            // The buffer holds the parked key, not an answer.
            return None;
        }
        let src = run.answer.get(..run.answer_len)?;
        out.get_mut(..src.len())?.copy_from_slice(src);
        Some(ServerReply::Send(src.len()))
    }

    /// The key id run `i` waits to have checked, if `digest` names the request that made the key (a retransmission
    /// while the host decides).
    fn pending_check(&self, i: usize, digest: &[u8; 32]) -> Option<u64> {
        let run = self.runs.get(i)?.as_ref()?;
        match run.phase {
            Phase::AwaitKeyCheck { key_id, .. } if bool::from(run.last_request.ct_eq(digest)) => Some(key_id),
            _ => None,
        }
    }

    /// Stores `out[..n]` as the answer to `digest`.
    fn cache(&mut self, i: usize, digest: &[u8; 32], out: &[u8], n: usize) {
        if let Some(Some(run)) = self.runs.get_mut(i)
            && let (Some(dst), Some(src)) = (run.answer.get_mut(..n), out.get(..n))
        {
            dst.copy_from_slice(src);
            run.answer_len = n;
            run.last_request = *digest;
        }
    }

    fn free_slot(&mut self) -> Option<usize> {
        if let Some(i) = self.runs.iter().position(Option::is_none) {
            return Some(i);
        }
        // Finished runs are only kept for retransmissions: evict the oldest.
        let i = self
            .runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.as_ref()
                    .filter(|r| matches!(r.phase, Phase::Done))
                    .map(|r| (i, r.created))
            })
            .min_by_key(|&(_, t)| t)
            .map(|(i, _)| i)?;
        self.remove(i);
        Some(i)
    }

    fn server_msg_id(&mut self, now: Instant) -> u64 {
        self.msg_ids.next(unix_micros(self.config.unix_micros_at_zero, now), 1)
    }

    fn on_req_pq<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        peer: u64,
        body: &[u8],
        digest: &[u8; 32],
        out: &mut [u8],
    ) -> Result<ServerReply, Refuse> {
        let nonce = match ReqPqMulti::decode(body) {
            Ok(m) => m.nonce,
            Err(_) => ReqPq::decode(body).map_err(|_| Refuse::NotFound)?.nonce,
        };
        if let Some(i) = self.find(peer, &nonce, None) {
            if let Some(reply) = self.replay(i, digest, out) {
                return Ok(reply);
            }
            // The same nonce in a different request: a splice attempt or a confused client.
            self.remove(i);
            return Err(Refuse::NotFound);
        }
        if self.pending_of(peer) >= self.config.max_runs_per_peer {
            return Ok(ServerReply::Error(ERR_FLOOD));
        }
        let Some(slot) = self.free_slot() else {
            return Ok(ServerReply::Error(ERR_FLOOD));
        };
        let mut server_nonce = [0u8; 16];
        rng.fill_bytes(&mut server_nonce);
        let (pq, p, q) = random_pq(rng);
        let (pq_b, pq_n) = super::be_trimmed(pq);
        let fps = [self.fingerprint as i64];
        let msg = ResPq {
            nonce,
            server_nonce,
            pq: pq_b.get(..pq_n).unwrap_or_default(),
            server_public_key_fingerprints: LongVec::from_slice(&fps),
        };
        let msg_id = self.server_msg_id(now);
        let n = write_plain(out, msg_id, &msg).map_err(|_| Refuse::NotFound)?;
        if let Some(s) = self.runs.get_mut(slot) {
            *s = Some(Run {
                peer,
                nonce,
                server_nonce,
                created: now,
                phase: Phase::AwaitReqDh { pq, p, q },
                last_request: [0; 32],
                answer: Zeroizing::new([0; MAX_SERVER_MESSAGE]),
                answer_len: 0,
            });
        }
        self.cache(slot, digest, out, n);
        Ok(ServerReply::Send(n))
    }

    /// Finds the run named by the request, replays a retransmission, or poisons the run and refuses.
    fn lookup(
        &mut self,
        peer: u64,
        nonce: &[u8; 16],
        server_nonce: &[u8; 16],
        digest: &[u8; 32],
        out: &mut [u8],
    ) -> Result<Result<usize, ServerReply>, Refuse> {
        let i = self.find(peer, nonce, Some(server_nonce)).ok_or(Refuse::NotFound)?;
        if let Some(reply) = self.replay(i, digest, out) {
            return Ok(Err(reply));
        }
        Ok(Ok(i))
    }

    fn on_req_dh<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        peer: u64,
        body: &[u8],
        digest: &[u8; 32],
        out: &mut [u8],
    ) -> Result<ServerReply, Refuse> {
        let req = ReqDhParams::decode(body).map_err(|_| Refuse::NotFound)?;
        let i = match self.lookup(peer, &req.nonce, &req.server_nonce, digest, out)? {
            Ok(i) => i,
            Err(reply) => return Ok(reply),
        };
        match self.req_dh_checked(now, rng, &req, i, out) {
            Ok(n) => {
                self.cache(i, digest, out, n);
                Ok(ServerReply::Send(n))
            }
            Err(e) => {
                // Item 24: one answer for every failure, and the run is gone (poisoned).
                self.remove(i);
                Err(e)
            }
        }
    }

    fn req_dh_checked<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        req: &ReqDhParams<'_>,
        i: usize,
        out: &mut [u8],
    ) -> Result<usize, Refuse> {
        let run = self.runs.get(i).and_then(Option::as_ref).ok_or(Refuse::NotFound)?;
        let Phase::AwaitReqDh { pq, p, q } = run.phase else {
            return Err(Refuse::NotFound);
        };
        let (nonce, server_nonce) = (run.nonce, run.server_nonce);
        let mut ok = be_u64(req.p) == Some(u64::from(p)) && be_u64(req.q) == Some(u64::from(q));
        ok &= req.public_key_fingerprint as u64 == self.fingerprint;
        let block: &[u8; RSA_BYTES] = req.encrypted_data.try_into().map_err(|_| Refuse::NotFound)?;
        if !ok {
            return Err(Refuse::NotFound);
        }
        // Constant-time decoding over a fixed set of candidate lengths (B4); nothing parses the plaintext before
        // a decoding is accepted.
        let inner = decrypt_inner_data(self.config.rsa_key, block, rng, &PQ_INNER_DATA_LENGTHS)
            .map_err(|_| Refuse::NotFound)?;
        let mut reader = crate::tl::Reader::new(inner.data());
        let parsed = PQInnerData::read(&mut reader).map_err(|_| Refuse::NotFound)?;
        // The legacy hash covers exactly the TL object: the candidate that matched must be its length.
        if inner.encoding() == InnerEncoding::LegacySha1 && reader.position() != inner.data().len() {
            return Err(Refuse::NotFound);
        }
        let (ipq, ip, iq, inonce, isn, new_nonce, dc, expires_in) = match parsed {
            PQInnerData::Dc(d) => (d.pq, d.p, d.q, d.nonce, d.server_nonce, d.new_nonce, Some(d.dc), None),
            PQInnerData::TempDc(d) => (
                d.pq,
                d.p,
                d.q,
                d.nonce,
                d.server_nonce,
                d.new_nonce,
                Some(d.dc),
                Some(d.expires_in),
            ),
            PQInnerData::Legacy(d) => (d.pq, d.p, d.q, d.nonce, d.server_nonce, d.new_nonce, None, None),
            PQInnerData::Temp(d) => (
                d.pq,
                d.p,
                d.q,
                d.nonce,
                d.server_nonce,
                d.new_nonce,
                None,
                Some(d.expires_in),
            ),
        };
        let new_nonce = Zeroizing::new(new_nonce);
        // Inner fields must equal the outer ones and the run's (item 24), in strings of at most MAX_PQ_STRING bytes
        // (what PQ_INNER_DATA_LENGTHS is derived from, so both encodings accept the same objects).
        let inner_ok = [ipq, ip, iq].iter().all(|s| s.len() <= MAX_PQ_STRING)
            && be_u64(ipq) == Some(pq)
            && be_u64(ip) == Some(u64::from(p))
            && be_u64(iq) == Some(u64::from(q))
            && inonce == nonce
            && isn == server_nonce;
        if !inner_ok {
            return Err(Refuse::NotFound);
        }
        let expires_in = match expires_in {
            None => None,
            Some(e) => match u32::try_from(e) {
                Ok(e) if e >= 1 && e <= self.config.max_temp_expires_in => Some(e),
                _ => return Err(Refuse::NotFound),
            },
        };
        if let (Some(want), Some(got)) = (self.config.dc_id, dc)
            && !names_dc(want, got)
        {
            return Err(Refuse::WrongDc);
        }
        let (a, g_a) = self.config.group.gen_keypair(rng).map_err(|_| Refuse::NotFound)?;
        let server_time = unix_micros(self.config.unix_micros_at_zero, now) / 1_000_000;
        let dh_prime = self.config.group.prime_bytes();
        let inner_answer = ServerDhInnerData {
            nonce,
            server_nonce,
            g: i32::try_from(self.config.group.g()).unwrap_or(3),
            dh_prime: &dh_prime,
            g_a: &g_a,
            server_time: u32::try_from(server_time).unwrap_or(u32::MAX) as i32,
        };
        let mut buf = Zeroizing::new([0u8; 20 + 564 + 16]);
        let data_len = inner_answer.tl_len();
        let dst = buf.get_mut(20..20 + data_len).ok_or(Refuse::NotFound)?;
        Writer::new(dst).put(&inner_answer).map_err(|_| Refuse::NotFound)?;
        let tmp = tmp_aes_key_iv(&new_nonce, &server_nonce);
        let total = seal_with_sha1(&tmp, &mut buf[..], data_len, rng).ok_or(Refuse::NotFound)?;
        let msg = ServerDhParamsOk {
            nonce,
            server_nonce,
            encrypted_answer: buf.get(..total).unwrap_or_default(),
        };
        let msg_id = self.server_msg_id(now);
        let n = write_plain(out, msg_id, &msg).map_err(|_| Refuse::NotFound)?;
        if let Some(Some(run)) = self.runs.get_mut(i) {
            run.phase = Phase::AwaitClientDh {
                new_nonce,
                a,
                expires_in,
                dc,
                retries: 0,
                retry_id: 0,
            };
        }
        Ok(n)
    }

    fn on_set_client_dh(
        &mut self,
        now: Instant,
        peer: u64,
        body: &[u8],
        digest: &[u8; 32],
        out: &mut [u8],
        check: KeyCheck<'_>,
    ) -> Result<Handled, Refuse> {
        let req = SetClientDhParams::decode(body).map_err(|_| Refuse::NotFound)?;
        if let Some(i) = self.find(peer, &req.nonce, Some(&req.server_nonce))
            && let Some(key_id) = self.pending_check(i, digest)
        {
            return Ok(Handled::Check(key_id));
        }
        let i = match self.lookup(peer, &req.nonce, &req.server_nonce, digest, out)? {
            Ok(i) => i,
            Err(reply) => return Ok(Handled::Reply(reply)),
        };
        match self.client_dh_checked(now, &req, i, digest, out, check) {
            Ok(Stepped::Answered(n, outcome, finished)) => {
                self.cache(i, digest, out, n);
                if finished && let Some(Some(run)) = self.runs.get_mut(i) {
                    run.phase = Phase::Done;
                }
                Ok(Handled::Reply(match outcome {
                    Some(outcome) => ServerReply::Complete { len: n, outcome },
                    None => ServerReply::Send(n),
                }))
            }
            Ok(Stepped::Parked(key_id)) => Ok(Handled::Check(key_id)),
            Err(e) => {
                self.remove(i);
                Err(e)
            }
        }
    }

    fn client_dh_checked(
        &mut self,
        now: Instant,
        req: &SetClientDhParams<'_>,
        i: usize,
        digest: &[u8; 32],
        out: &mut [u8],
        check: KeyCheck<'_>,
    ) -> Result<Stepped, Refuse> {
        let msg_id = self.server_msg_id(now);
        let max_retries = self.config.max_dh_retries;
        let group = &self.config.group;
        let run = self.runs.get_mut(i).and_then(Option::as_mut).ok_or(Refuse::NotFound)?;
        let (nonce, server_nonce) = (run.nonce, run.server_nonce);
        let Phase::AwaitClientDh {
            new_nonce, a, retry_id, ..
        } = &run.phase
        else {
            return Err(Refuse::NotFound);
        };
        let enc = req.encrypted_data;
        if enc.is_empty() || !enc.len().is_multiple_of(16) || enc.len() > MAX_CLIENT_DH_ENCRYPTED {
            return Err(Refuse::NotFound);
        }
        let mut buf = Zeroizing::new([0u8; MAX_CLIENT_DH_ENCRYPTED]);
        let plain = buf.get_mut(..enc.len()).ok_or(Refuse::NotFound)?;
        plain.copy_from_slice(enc);
        let tmp = tmp_aes_key_iv(new_nonce, &server_nonce);
        ige_decrypt(&tmp.key, &tmp.iv, plain).map_err(|_| Refuse::NotFound)?;
        let mut r = crate::tl::Reader::new(plain.get(20..).ok_or(Refuse::NotFound)?);
        let inner = ClientDhInnerData::read(&mut r).map_err(|_| Refuse::NotFound)?;
        check_sha1_padding(plain, r.position()).map_err(|_| Refuse::NotFound)?;
        if inner.nonce != nonce || inner.server_nonce != server_nonce || inner.retry_id as u64 != *retry_id {
            return Err(Refuse::NotFound);
        }
        // Checks g_b's range (item 17) before the modexp.
        let shared = group.shared(a, inner.g_b).map_err(|_| Refuse::NotFound)?;
        let auth_key = AuthKey::from_bytes(*shared);
        drop(shared);
        let taken = match check {
            KeyCheck::Now(f) => f(auth_key.id()),
            KeyCheck::Later => {
                let key_id = auth_key.id();
                let Phase::AwaitClientDh {
                    new_nonce,
                    a,
                    expires_in,
                    dc,
                    retries,
                    ..
                } = core::mem::replace(&mut run.phase, Phase::Done)
                else {
                    return Err(Refuse::NotFound);
                };
                run.phase = Phase::AwaitKeyCheck {
                    new_nonce,
                    a,
                    expires_in,
                    dc,
                    retries,
                    key_id,
                };
                run.answer.fill(0);
                if let Some(dst) = run.answer.get_mut(..auth_key.as_bytes().len()) {
                    dst.copy_from_slice(auth_key.as_bytes());
                }
                run.answer_len = 0;
                run.last_request = *digest;
                return Ok(Stepped::Parked(key_id));
            }
        };
        let Phase::AwaitClientDh {
            new_nonce,
            a,
            expires_in,
            dc,
            retries,
            retry_id,
        } = core::mem::replace(&mut run.phase, Phase::Done)
        else {
            return Err(Refuse::NotFound);
        };
        let mut state = ClientDhState {
            new_nonce,
            a,
            expires_in,
            dc,
            retries,
            retry_id,
        };
        let r = conclude(
            &mut state,
            nonce,
            server_nonce,
            auth_key,
            taken,
            max_retries,
            msg_id,
            out,
        );
        // Back to waiting for set_client_DH_params (the caller marks a finished run Done).
        run.phase = Phase::AwaitClientDh {
            new_nonce: state.new_nonce,
            a: state.a,
            expires_in: state.expires_in,
            dc: state.dc,
            retries: state.retries,
            retry_id: state.retry_id,
        };
        let (n, outcome, finished) = r?;
        Ok(Stepped::Answered(n, outcome, finished))
    }
}

/// What a `set_client_DH_params` led to inside its run.
#[allow(clippy::large_enum_variant)]
enum Stepped {
    /// `out[..n]` holds the answer; the key if it is `dh_gen_ok`; whether the run is finished.
    Answered(usize, Option<ServerOutcome>, bool),
    /// The key waits for the host's check.
    Parked(u64),
}

/// A run's state between `server_DH_params_ok` and the final answer.
struct ClientDhState {
    new_nonce: Zeroizing<[u8; 32]>,
    a: DhSecret,
    expires_in: Option<u32>,
    dc: Option<i32>,
    retries: u8,
    retry_id: u64,
}

/// Whether `named`, the `dc` of a `p_q_inner_data_*dc`, names DC `want`. The spec's encodings of one DC are its
/// id, the id + 10000 on a test DC, and either negated for the DC's media-only endpoints.
fn names_dc(want: i32, named: i32) -> bool {
    let raw = |id: i32| {
        let a = id.unsigned_abs();
        if a > 10_000 { a - 10_000 } else { a }
    };
    raw(named) == raw(want)
}

/// Writes the answer to a computed key: `dh_gen_ok` with the key if its id is free, otherwise `dh_gen_retry`
/// (item 25), or `dh_gen_fail` once the retries are used up. Returns (length, key, run finished).
#[allow(clippy::too_many_arguments)]
fn conclude(
    st: &mut ClientDhState,
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    auth_key: AuthKey,
    taken: bool,
    max_retries: u8,
    msg_id: u64,
    out: &mut [u8],
) -> Result<(usize, Option<ServerOutcome>, bool), Refuse> {
    let aux = auth_key.aux_hash();
    if taken {
        if st.retries >= max_retries {
            let msg = DhGenFail {
                nonce,
                server_nonce,
                new_nonce_hash3: new_nonce_hash(&st.new_nonce, 3, aux),
            };
            let n = write_plain(out, msg_id, &msg).map_err(|_| Refuse::NotFound)?;
            return Ok((n, None, true));
        }
        st.retries += 1;
        st.retry_id = aux;
        let msg = DhGenRetry {
            nonce,
            server_nonce,
            new_nonce_hash2: new_nonce_hash(&st.new_nonce, 2, aux),
        };
        let n = write_plain(out, msg_id, &msg).map_err(|_| Refuse::NotFound)?;
        return Ok((n, None, false));
    }
    let msg = DhGenOk {
        nonce,
        server_nonce,
        new_nonce_hash1: new_nonce_hash(&st.new_nonce, 1, aux),
    };
    let n = write_plain(out, msg_id, &msg).map_err(|_| Refuse::NotFound)?;
    let outcome = ServerOutcome {
        auth_key,
        server_salt: first_salt(&st.new_nonce, &server_nonce),
        expires_in: st.expires_in,
        dc: st.dc,
    };
    Ok((n, Some(outcome), true))
}
