//! The client side of the auth-key handshake.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::{
    BufferTooSmall, ERR_FLOOD, ERR_NOT_FOUND, ERR_WRONG_DC, HandshakeError, MAX_CLIENT_MESSAGE, MAX_ENCRYPTED_ANSWER,
    MAX_FINGERPRINTS, MAX_TRANSPORT_PADDING, MsgIds, be_trimmed, be_u64, check_sha1_padding, first_salt,
    new_nonce_hash, parse_plain, plain_new_nonce_hash, seal_with_sha1, unix_micros, write_plain,
};
use crate::crypto::aes::ige_decrypt;
use crate::crypto::auth_key::AuthKey;
use crate::crypto::dh::{DH_BYTES, DhError, DhGroup, DhSecret, PrimeCache, check_group, normalize_be};
use crate::crypto::factor::{DEFAULT_FACTOR_BUDGET, FactorError, MAX_PQ, factor_pq_with_budget};
use crate::crypto::kdf::tmp_aes_key_iv;
use crate::crypto::rsa::{RSA_PAD_MAX_DATA, RsaPublicKey, TELEGRAM_KEYS, rsa_pad_encrypt};
use crate::time::Instant;
use crate::tl::{
    ClientDhInnerData, PQInnerDataDc, PQInnerDataTempDc, ReqDhParams, ReqPqMulti, ResPq, ServerDhInnerData,
    ServerDhParams, SetClientDhParams, SetClientDhParamsAnswer, TlRead, TlWrite, Writer,
};

/// Length of `req_pq_multi` as a plaintext message.
const REQ_PQ_LEN: usize = 40;
/// Length of `req_DH_params` (p and q of at most 4 bytes each, a 256-byte RSA block).
const REQ_DH_LEN: usize = 340;
/// Attempts at drawing an exponent b whose g_b passes the range check (item 17) before giving up.
const MAX_B_ATTEMPTS: u32 = 16;

/// Which key to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeyKind {
    /// A permanent key (`p_q_inner_data_dc`).
    Permanent,
    /// A temporary key for PFS (`p_q_inner_data_temp_dc`), valid for `expires_in` seconds (<https://core.telegram.org/api/pfs>).
    Temporary {
        /// Lifetime in seconds.
        expires_in: u32,
    },
}

/// Client handshake settings. Construct with [`ClientConfig::new`] or [`ClientConfig::telegram`] and adjust fields.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientConfig<'k> {
    /// The RSA keys we trust. Only a key from this list is ever used (item 12): keys never come from the wire.
    pub rsa_keys: &'k [RsaPublicKey],
    /// The DC id put in `p_q_inner_data_dc` (+10000 for test DCs, negative for media DCs).
    pub dc_id: i32,
    /// Permanent or temporary key.
    pub kind: KeyKind,
    /// Unix time in microseconds at the host's [`Instant::ZERO`]; msg_ids and the time offset derive from it.
    pub unix_micros_at_zero: u64,
    /// How long to wait for each answer before retransmitting the last message.
    pub response_timeout: Duration,
    /// Identical retransmissions of one message before failing with [`HandshakeError::Timeout`].
    pub max_retransmits: u8,
    /// Restarts from step 1 (−404, −429, `dh_gen_fail`, `server_DH_params_fail`) before failing (item 22).
    pub max_restarts: u8,
    /// `dh_gen_retry` rounds accepted before failing (item 20).
    pub max_dh_retries: u8,
    /// Montgomery multiplications allowed for factoring pq, ECM and the Pollard–Brent fallback together (item 13).
    pub factor_budget: u32,
    /// Largest `encrypted_answer` accepted (clamped to [`MAX_ENCRYPTED_ANSWER`]).
    pub max_encrypted_answer: usize,
    /// Pause before restarting after a −429.
    pub flood_backoff: Duration,
    /// Tolerate up to 15 trailing bytes after a plaintext message (padded intermediate transport).
    pub transport_padding: bool,
}

impl<'k> ClientConfig<'k> {
    /// Defaults: permanent key, 10 s answer timeout, 2 retransmissions, 5 restarts, 5 DH retries.
    pub const fn new(rsa_keys: &'k [RsaPublicKey], dc_id: i32) -> Self {
        ClientConfig {
            rsa_keys,
            dc_id,
            kind: KeyKind::Permanent,
            unix_micros_at_zero: 0,
            response_timeout: Duration::from_secs(10),
            max_retransmits: 2,
            max_restarts: 5,
            max_dh_retries: 5,
            factor_budget: DEFAULT_FACTOR_BUDGET,
            max_encrypted_answer: MAX_ENCRYPTED_ANSWER,
            flood_backoff: Duration::from_secs(2),
            transport_padding: false,
        }
    }
}

impl ClientConfig<'static> {
    /// Defaults with Telegram's built-in server keys.
    pub const fn telegram(dc_id: i32) -> Self {
        Self::new(TELEGRAM_KEYS, dc_id)
    }
}

/// The result of a successful handshake. The key is zeroized on drop.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outcome {
    /// The new authorization key.
    pub auth_key: AuthKey,
    /// The first server salt: new_nonce[0..8] XOR server_nonce[0..8] (as the little-endian `long`).
    pub server_salt: u64,
    /// `server_time` minus our Unix time when the server's DH parameters arrived, in seconds.
    pub server_time_offset: i64,
    /// For a temporary key: its lifetime in seconds, as requested.
    pub expires_in: Option<u32>,
}

/// Where the client handshake stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// Still running: drain [`ClientHandshake::poll_transmit`], feed answers, honour [`ClientHandshake::poll_timeout`].
    Running,
    /// The key is ready: [`ClientHandshake::take_outcome`].
    Done,
    /// The run failed for good.
    Failed(HandshakeError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    SendReqPq,
    AwaitResPq,
    SendReqDh { pq: u64, key: usize },
    AwaitServerDh,
    SendClientDh,
    AwaitDhGen,
    Backoff { until: Instant },
    Done,
    Failed(HandshakeError),
}

/// The server's DH parameters as decrypted from `server_DH_params_ok`, kept until the next `poll_transmit`
/// validates them (the group check may need the RNG) and across `dh_gen_retry`.
struct ServerDh {
    g: u32,
    dh_prime: [u8; DH_BYTES],
    g_a: [u8; DH_BYTES],
    group: Option<DhGroup>,
}

/// The client's auth-key handshake: one run on one connection (item 22).
///
/// Run loop: after [`new`](Self::new) and after every `handle_*` call, drain [`poll_transmit`](Self::poll_transmit)
/// until it returns `Ok(None)`, send what it wrote, then wait for a packet or [`poll_timeout`](Self::poll_timeout).
/// Stop when [`status`](Self::status) is not [`Status::Running`].
///
/// Cost per step (the big numbers are 2048-bit). Figures from `benches/handshake.rs` on a shared, heavily loaded
/// 2-core x86-64 host, where wall time ran about 3× CPU time; CPU time is quoted:
/// - `poll_transmit` #1 (`req_pq_multi`): 16 random bytes; under 1 µs.
/// - `handle_packet(resPQ)`: TL decode, one SHA-1 per configured key per offered fingerprint; about 1 µs.
/// - `poll_transmit` #2 (`req_DH_params`): pq factoring, bounded by [`ClientConfig::factor_budget`] (ECM; about
///   40 µs for the worked example's pq), and RSA_PAD (SHA-256, AES-IGE, one public-exponent modexp); about 0.4 ms.
/// - `handle_packet(server_DH_params_ok)`: AES-IGE over ≤ 1 KiB and one SHA-1; a few µs.
/// - `poll_transmit` #3 (`set_client_DH_params`): the group check (a table lookup for Telegram's prime, Miller–Rabin
///   otherwise) and two full 2048-bit constant-time modexps (g^b, g_a^b): about 7.5 ms, nearly all of the total.
/// - `handle_packet(dh_gen_*)`: one SHA-1; a few µs.
///
/// A whole client handshake measured about 8 ms of CPU. Each `dh_gen_retry` repeats step #3.
///
/// Randomness is drawn only in `poll_transmit`, so every `handle_*` call is deterministic. Secrets (new_nonce, b,
/// the tmp AES key, scratch buffers) are zeroized when no longer needed and on drop.
pub struct ClientHandshake<'k> {
    config: ClientConfig<'k>,
    step: Step,
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: Zeroizing<[u8; 32]>,
    server: Option<ServerDh>,
    server_time_offset: i64,
    auth_key: Option<AuthKey>,
    retry_id: u64,
    dh_retries: u8,
    restarts: u8,
    retransmits: u8,
    resend: bool,
    deadline: Option<Instant>,
    msg_ids: MsgIds,
    tx: [u8; MAX_CLIENT_MESSAGE],
    tx_len: usize,
    prime_cache: PrimeCache<2>,
    outcome: Option<Outcome>,
}

impl core::fmt::Debug for ClientHandshake<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("step", &self.step)
            .field("restarts", &self.restarts)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ClientHandshake<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ClientHandshake {{ restarts: {} }}", self.restarts)
    }
}

impl<'k> ClientHandshake<'k> {
    /// A handshake ready to send `req_pq_multi` on the next [`poll_transmit`](Self::poll_transmit).
    pub fn new(config: ClientConfig<'k>, _now: Instant) -> Self {
        ClientHandshake {
            config,
            step: Step::SendReqPq,
            nonce: [0; 16],
            server_nonce: [0; 16],
            new_nonce: Zeroizing::new([0; 32]),
            server: None,
            server_time_offset: 0,
            auth_key: None,
            retry_id: 0,
            dh_retries: 0,
            restarts: 0,
            retransmits: 0,
            resend: false,
            deadline: None,
            msg_ids: MsgIds::default(),
            tx: [0; MAX_CLIENT_MESSAGE],
            tx_len: 0,
            prime_cache: PrimeCache::default(),
            outcome: None,
        }
    }

    /// Where the run stands.
    pub fn status(&self) -> Status {
        match self.step {
            Step::Done => Status::Done,
            Step::Failed(e) => Status::Failed(e),
            _ => Status::Running,
        }
    }

    /// The outcome, once [`Status::Done`].
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Moves the outcome out (the machine keeps no copy of the key).
    pub fn take_outcome(&mut self) -> Option<Outcome> {
        self.outcome.take()
    }

    /// How many times the run went back to step 1.
    pub fn restarts(&self) -> u8 {
        self.restarts
    }

    /// The largest msg_id used so far, so a session on the new key can continue above it.
    pub fn last_msg_id(&self) -> u64 {
        self.msg_ids.last
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called, if at all.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.step {
            Step::Backoff { until } => Some(until),
            Step::Done | Step::Failed(_) => None,
            _ => self.deadline,
        }
    }

    /// Advances timers: ends a −429 back-off, or schedules a retransmission (failing with
    /// [`HandshakeError::Timeout`] once [`ClientConfig::max_retransmits`] are used). Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.step {
            Step::Backoff { until } if now >= until => self.step = Step::SendReqPq,
            Step::AwaitResPq | Step::AwaitServerDh | Step::AwaitDhGen => {
                if let Some(d) = self.deadline
                    && now >= d
                {
                    self.deadline = None;
                    if self.retransmits >= self.config.max_retransmits {
                        self.fail(HandshakeError::Timeout);
                    } else {
                        self.retransmits += 1;
                        self.resend = true;
                    }
                }
            }
            _ => {}
        }
    }

    /// A 4-byte transport error from the server: −404 restarts from step 1, −429 restarts after
    /// [`ClientConfig::flood_backoff`], −444 aborts (item 22); other codes abort too. Ignored once finished.
    pub fn handle_transport_error(&mut self, now: Instant, code: i32) {
        if matches!(self.step, Step::Done | Step::Failed(_)) {
            return;
        }
        match code {
            ERR_NOT_FOUND => self.restart(None),
            ERR_FLOOD => self.restart(Some(now.saturating_add(self.config.flood_backoff))),
            ERR_WRONG_DC => self.fail(HandshakeError::WrongDc),
            c => self.fail(HandshakeError::Transport(c)),
        }
    }

    /// Feeds one packet from the transport decoder: a plaintext handshake message, or a 4-byte negative transport
    /// error (routed to [`handle_transport_error`](Self::handle_transport_error)). A non-fatal error means the
    /// packet was dropped without any state change; a fatal one ends the run (see [`HandshakeError::is_fatal`]).
    pub fn handle_packet(&mut self, now: Instant, payload: &[u8]) -> Result<(), HandshakeError> {
        if let Ok(word) = <[u8; 4]>::try_from(payload) {
            let code = i32::from_le_bytes(word);
            if code < 0 {
                self.handle_transport_error(now, code);
                return Ok(());
            }
        }
        let max_trailing = if self.config.transport_padding {
            MAX_TRANSPORT_PADDING
        } else {
            0
        };
        let (msg_id, body) = parse_plain(payload, max_trailing)?;
        // Server msg_ids are odd (DESC; item 32).
        if msg_id.is_multiple_of(2) {
            return Err(HandshakeError::Malformed);
        }
        let result = match self.step {
            Step::AwaitResPq => self.on_res_pq(body),
            Step::AwaitServerDh => self.on_server_dh(now, body),
            Step::AwaitDhGen => self.on_dh_gen(body),
            _ => Err(HandshakeError::Unexpected),
        };
        if let Err(e) = result
            && e.is_fatal()
        {
            self.fail(e);
        }
        result
    }

    /// Writes the next message (a complete plaintext MTProto message) into `out` and returns its length, or
    /// `Ok(None)` if there is nothing to send now. `out` must hold [`MAX_CLIENT_MESSAGE`] bytes; if it is smaller
    /// than the message, nothing changes. All the handshake's randomness and heavy crypto happen here; a failure
    /// found here (a bad pq or DH group, a weak RNG) ends the run and shows in [`status`](Self::status).
    pub fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, BufferTooSmall> {
        if self.resend {
            let msg = self.tx.get(..self.tx_len).unwrap_or_default();
            let dst = out.get_mut(..msg.len()).ok_or(BufferTooSmall { required: msg.len() })?;
            dst.copy_from_slice(msg);
            self.resend = false;
            self.deadline = Some(now.saturating_add(self.config.response_timeout));
            return Ok(Some(msg.len()));
        }
        let required = match self.step {
            Step::SendReqPq => REQ_PQ_LEN,
            Step::SendReqDh { .. } => REQ_DH_LEN,
            Step::SendClientDh => MAX_CLIENT_MESSAGE,
            _ => return Ok(None),
        };
        if out.len() < required {
            return Err(BufferTooSmall { required });
        }
        let result = match self.step {
            Step::SendReqPq => self.send_req_pq(now, rng, out),
            Step::SendReqDh { pq, key } => self.send_req_dh(now, rng, out, pq, key),
            Step::SendClientDh => self.send_client_dh(now, rng, out),
            _ => return Ok(None),
        };
        match result {
            Ok(n) => {
                if let (Some(dst), Some(src)) = (self.tx.get_mut(..n), out.get(..n)) {
                    dst.copy_from_slice(src);
                    self.tx_len = n;
                }
                self.retransmits = 0;
                self.deadline = Some(now.saturating_add(self.config.response_timeout));
                Ok(Some(n))
            }
            Err(e) => {
                self.fail(e);
                Ok(None)
            }
        }
    }

    fn unix_micros(&self, now: Instant) -> u64 {
        unix_micros(self.config.unix_micros_at_zero, now)
    }

    fn fail(&mut self, e: HandshakeError) {
        warn!("handshake failed");
        self.wipe();
        self.step = Step::Failed(e);
    }

    /// Clears every secret of the current attempt.
    fn wipe(&mut self) {
        self.new_nonce.zeroize();
        self.server = None;
        self.auth_key = None;
        self.retry_id = 0;
        self.deadline = None;
        self.resend = false;
    }

    fn restart(&mut self, backoff: Option<Instant>) {
        if self.restarts >= self.config.max_restarts {
            self.fail(HandshakeError::TooManyRestarts);
            return;
        }
        debug!("handshake restarts from step 1");
        self.restarts += 1;
        self.wipe();
        self.dh_retries = 0;
        self.step = match backoff {
            Some(until) => Step::Backoff { until },
            None => Step::SendReqPq,
        };
    }

    // Kept out of line: inlined, the three steps' scratch buffers merge into one frame that every step pays
    // for (measured on the Cortex-M4: an 11 KiB poll_transmit frame even for req_pq_multi).
    #[inline(never)]
    fn send_req_pq<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, HandshakeError> {
        rng.fill_bytes(&mut self.nonce);
        if self.nonce == [0; 16] {
            return Err(HandshakeError::WeakRandomness);
        }
        let msg_id = self.msg_ids.next(self.unix_micros(now), 0);
        let n = write_plain(out, msg_id, &ReqPqMulti { nonce: self.nonce }).map_err(|_| HandshakeError::Malformed)?;
        self.step = Step::AwaitResPq;
        Ok(n)
    }

    fn on_res_pq(&mut self, body: &[u8]) -> Result<(), HandshakeError> {
        let res = ResPq::decode(body).map_err(|_| HandshakeError::Malformed)?;
        if res.nonce != self.nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        // Only keys we were configured with, in the server's order of preference (item 12).
        let key = res
            .server_public_key_fingerprints
            .iter()
            .take(MAX_FINGERPRINTS)
            .find_map(|fp| self.config.rsa_keys.iter().position(|k| k.fingerprint() == fp as u64))
            .ok_or(HandshakeError::NoMatchingKey)?;
        let pq = be_u64(res.pq).ok_or(HandshakeError::Pq(FactorError::TooLong))?;
        if pq > MAX_PQ {
            return Err(HandshakeError::Pq(FactorError::TooLarge));
        }
        self.server_nonce = res.server_nonce;
        self.step = Step::SendReqDh { pq, key };
        self.deadline = None;
        Ok(())
    }

    // Kept out of line: inlined, the three steps' scratch buffers merge into one frame that every step pays
    // for (measured on the Cortex-M4: an 11 KiB poll_transmit frame even for req_pq_multi).
    #[inline(never)]
    fn send_req_dh<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
        pq: u64,
        key: usize,
    ) -> Result<usize, HandshakeError> {
        let rsa_key = self.config.rsa_keys.get(key).ok_or(HandshakeError::NoMatchingKey)?;
        let (p, q) = factor_pq_with_budget(pq, self.config.factor_budget).map_err(HandshakeError::Pq)?;
        rng.fill_bytes(&mut self.new_nonce[..]);
        if *self.new_nonce == [0; 32] {
            return Err(HandshakeError::WeakRandomness);
        }
        let (pq_b, pq_n) = be_trimmed(pq);
        let (p_b, p_n) = be_trimmed(p);
        let (q_b, q_n) = be_trimmed(q);
        let pq_s = pq_b.get(..pq_n).unwrap_or_default();
        let p_s = p_b.get(..p_n).unwrap_or_default();
        let q_s = q_b.get(..q_n).unwrap_or_default();
        let mut inner = Zeroizing::new([0u8; RSA_PAD_MAX_DATA]);
        let mut w = Writer::new(&mut inner[..]);
        let written = match self.config.kind {
            KeyKind::Permanent => w.put(&PQInnerDataDc {
                pq: pq_s,
                p: p_s,
                q: q_s,
                nonce: self.nonce,
                server_nonce: self.server_nonce,
                new_nonce: *self.new_nonce,
                dc: self.config.dc_id,
            }),
            KeyKind::Temporary { expires_in } => w.put(&PQInnerDataTempDc {
                pq: pq_s,
                p: p_s,
                q: q_s,
                nonce: self.nonce,
                server_nonce: self.server_nonce,
                new_nonce: *self.new_nonce,
                dc: self.config.dc_id,
                expires_in: i32::try_from(expires_in).unwrap_or(i32::MAX),
            }),
        };
        written.map_err(|_| HandshakeError::Rsa(crate::crypto::rsa::RsaError::DataTooLong))?;
        let len = w.written();
        let data = inner.get(..len).unwrap_or_default();
        let encrypted = rsa_pad_encrypt(rsa_key, data, rng).map_err(HandshakeError::Rsa)?;
        let msg = ReqDhParams {
            nonce: self.nonce,
            server_nonce: self.server_nonce,
            p: p_s,
            q: q_s,
            public_key_fingerprint: rsa_key.fingerprint() as i64,
            encrypted_data: &encrypted,
        };
        let msg_id = self.msg_ids.next(self.unix_micros(now), 0);
        let n = write_plain(out, msg_id, &msg).map_err(|_| HandshakeError::Malformed)?;
        self.step = Step::AwaitServerDh;
        Ok(n)
    }

    fn on_server_dh(&mut self, now: Instant, body: &[u8]) -> Result<(), HandshakeError> {
        let params = ServerDhParams::decode(body).map_err(|_| HandshakeError::Malformed)?;
        let (nonce, server_nonce) = match &params {
            ServerDhParams::Ok(ok) => (ok.nonce, ok.server_nonce),
            ServerDhParams::Fail(f) => (f.nonce, f.server_nonce),
        };
        if nonce != self.nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        if server_nonce != self.server_nonce {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        let ok = match params {
            ServerDhParams::Fail(f) => {
                let want = plain_new_nonce_hash(&self.new_nonce);
                if !bool::from(want.ct_eq(&f.new_nonce_hash)) {
                    return Err(HandshakeError::NewNonceHash);
                }
                self.restart(None);
                return Ok(());
            }
            ServerDhParams::Ok(ok) => ok,
        };
        let enc = ok.encrypted_answer;
        let max = self.config.max_encrypted_answer.min(MAX_ENCRYPTED_ANSWER);
        if enc.is_empty() || !enc.len().is_multiple_of(16) || enc.len() > max {
            return Err(HandshakeError::AnswerLength);
        }
        let mut buf = Zeroizing::new([0u8; MAX_ENCRYPTED_ANSWER]);
        let plain = buf.get_mut(..enc.len()).ok_or(HandshakeError::AnswerLength)?;
        plain.copy_from_slice(enc);
        let tmp = tmp_aes_key_iv(&self.new_nonce, &self.server_nonce);
        ige_decrypt(&tmp.key, &tmp.iv, plain).map_err(|_| HandshakeError::AnswerLength)?;
        let after_hash = plain.get(20..).ok_or(HandshakeError::AnswerMalformed)?;
        let mut r = crate::tl::Reader::new(after_hash);
        let inner = ServerDhInnerData::read(&mut r).map_err(|_| HandshakeError::AnswerMalformed)?;
        check_sha1_padding(plain, r.position())?;
        if inner.nonce != self.nonce || inner.server_nonce != self.server_nonce {
            return Err(HandshakeError::InnerNonceMismatch);
        }
        let g = u32::try_from(inner.g).map_err(|_| HandshakeError::Dh(DhError::Generator))?;
        let dh_prime = normalize_be(inner.dh_prime).map_err(HandshakeError::Dh)?;
        let g_a = normalize_be(inner.g_a).map_err(HandshakeError::Dh)?;
        let our_secs = i64::try_from(self.unix_micros(now) / 1_000_000).unwrap_or(i64::MAX);
        self.server_time_offset = i64::from(inner.server_time).saturating_sub(our_secs);
        self.server = Some(ServerDh {
            g,
            dh_prime,
            g_a,
            group: None,
        });
        self.retry_id = 0;
        self.dh_retries = 0;
        self.step = Step::SendClientDh;
        self.deadline = None;
        Ok(())
    }

    // Kept out of line: inlined, the three steps' scratch buffers merge into one frame that every step pays
    // for (measured on the Cortex-M4: an 11 KiB poll_transmit frame even for req_pq_multi).
    #[inline(never)]
    fn send_client_dh<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, HandshakeError> {
        let server = self.server.as_mut().ok_or(HandshakeError::Unexpected)?;
        if server.group.is_none() {
            // Items 16 and 17 (the group and g_a), once per run; kept across dh_gen_retry.
            let group =
                check_group(&server.dh_prime, server.g, &mut self.prime_cache, rng).map_err(HandshakeError::Dh)?;
            group.check_public(&server.g_a).map_err(HandshakeError::Dh)?;
            server.group = Some(group);
        }
        let group = server.group.as_ref().ok_or(HandshakeError::Unexpected)?;
        // Item 18: b is 2048 bits from our CSPRNG; item 17: our own g_b is range-checked, b redrawn if needed.
        let mut b = Zeroizing::new([0u8; DH_BYTES]);
        let mut g_b = [0u8; DH_BYTES];
        let mut found = false;
        for _ in 0..MAX_B_ATTEMPTS {
            rng.fill_bytes(&mut b[..]);
            if *b == [0; DH_BYTES] {
                return Err(HandshakeError::WeakRandomness);
            }
            g_b = group.pow_g_be(&b);
            if group.check_public(&g_b).is_ok() {
                found = true;
                break;
            }
        }
        if !found {
            return Err(HandshakeError::Dh(DhError::KeygenFailed));
        }
        let secret = DhSecret::from_be_bytes(&b[..]).map_err(HandshakeError::Dh)?;
        let shared = group.shared(&secret, &server.g_a).map_err(HandshakeError::Dh)?;
        drop(secret);
        let auth_key = AuthKey::from_bytes(*shared);
        drop(shared);

        let inner = ClientDhInnerData {
            nonce: self.nonce,
            server_nonce: self.server_nonce,
            retry_id: self.retry_id as i64,
            g_b: &g_b,
        };
        let mut buf = Zeroizing::new([0u8; 20 + 304 + 16]);
        let data_len = inner.tl_len();
        let dst = buf.get_mut(20..20 + data_len).ok_or(HandshakeError::Malformed)?;
        Writer::new(dst).put(&inner).map_err(|_| HandshakeError::Malformed)?;
        let tmp = tmp_aes_key_iv(&self.new_nonce, &self.server_nonce);
        let total = seal_with_sha1(&tmp, &mut buf[..], data_len, rng).ok_or(HandshakeError::Malformed)?;
        let msg = SetClientDhParams {
            nonce: self.nonce,
            server_nonce: self.server_nonce,
            encrypted_data: buf.get(..total).unwrap_or_default(),
        };
        let msg_id = self.msg_ids.next(self.unix_micros(now), 0);
        let n = write_plain(out, msg_id, &msg).map_err(|_| HandshakeError::Malformed)?;
        self.auth_key = Some(auth_key);
        self.step = Step::AwaitDhGen;
        Ok(n)
    }

    fn on_dh_gen(&mut self, body: &[u8]) -> Result<(), HandshakeError> {
        let answer = SetClientDhParamsAnswer::decode(body).map_err(|_| HandshakeError::Malformed)?;
        let (nonce, server_nonce, n, hash) = match answer {
            SetClientDhParamsAnswer::Ok(a) => (a.nonce, a.server_nonce, 1u8, a.new_nonce_hash1),
            SetClientDhParamsAnswer::Retry(a) => (a.nonce, a.server_nonce, 2u8, a.new_nonce_hash2),
            SetClientDhParamsAnswer::Fail(a) => (a.nonce, a.server_nonce, 3u8, a.new_nonce_hash3),
        };
        if nonce != self.nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        if server_nonce != self.server_nonce {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        let aux = self
            .auth_key
            .as_ref()
            .map(AuthKey::aux_hash)
            .ok_or(HandshakeError::Unexpected)?;
        // The hash is checked against the constructor actually received (item 20).
        let want = new_nonce_hash(&self.new_nonce, n, aux);
        if !bool::from(want.ct_eq(&hash)) {
            return Err(HandshakeError::NewNonceHash);
        }
        match n {
            1 => {
                let auth_key = self.auth_key.take().ok_or(HandshakeError::Unexpected)?;
                let expires_in = match self.config.kind {
                    KeyKind::Permanent => None,
                    KeyKind::Temporary { expires_in } => Some(expires_in),
                };
                self.outcome = Some(Outcome {
                    auth_key,
                    server_salt: first_salt(&self.new_nonce, &self.server_nonce),
                    server_time_offset: self.server_time_offset,
                    expires_in,
                });
                self.wipe();
                self.step = Step::Done;
            }
            2 => {
                if self.dh_retries >= self.config.max_dh_retries {
                    return Err(HandshakeError::TooManyDhRetries);
                }
                self.dh_retries += 1;
                self.retry_id = aux;
                self.auth_key = None;
                self.deadline = None;
                self.step = Step::SendClientDh;
            }
            _ => self.restart(None),
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn chk_021_wipe_clears_attempt_secrets() {
        let mut c = ClientHandshake::new(ClientConfig::telegram(2), Instant::ZERO);
        *c.new_nonce = [0xAA; 32];
        c.auth_key = Some(AuthKey::from_bytes([5; 256]));
        c.server = Some(ServerDh {
            g: 3,
            dh_prime: [1; 256],
            g_a: [2; 256],
            group: None,
        });
        c.retry_id = 9;
        c.wipe();
        assert_eq!(*c.new_nonce, [0; 32]);
        assert!(c.auth_key.is_none() && c.server.is_none());
        assert_eq!(c.retry_id, 0);
    }
}
