//! Fuzz entry points for the auth-key handshake, and the fixtures they share with the handshake tests and bench:
//! a fixed test DC RSA key, a deterministic RNG and an in-memory client/DC driver.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::crypto::dh::DhGroup;
use crate::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use crate::handshake::{
    ClientConfig, ClientHandshake, HandshakeError, KeyKind, MAX_CLIENT_MESSAGE, MAX_SERVER_MESSAGE, PLAIN_HEADER_LEN,
    ServerConfig, ServerHandshakes, ServerReply, ServerStep, Status,
};
use crate::time::Instant;

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[
    ("handshake_client", handshake_client),
    ("handshake_server", handshake_server),
];

/// Unix time (µs) at `Instant::ZERO` in the fixtures: the sample's `server_time`.
pub const FIXTURE_UNIX_MICROS: u64 = 1_735_910_891_000_000;

const DC_N: &str = concat!(
    "991052015e3da2e9672599e4a727e58c7f61ed5b51e9077a8e0bea19c52882b6e942569d24641bcecae3cc7806bf5ef5",
    "c042ddcf58a6198cbf99926b94cabe92827e47fb0363c43b814f587d8e8d6c6c6dfa6572e2faae3db3ccd8f036a461b7",
    "aac76ef485b384b3c16efdcc9acccacae4056496c5c15e70bacb3422ed4a245bc0d152eb1a881c9e39f781603894f287",
    "4029ff079045d0c5ad2e3e494239fbbcf7767601bfe53bb89806b211d1552083f819bd7c1ed4e7eb80c4a73cf1c6161b",
    "828fb48e7cb6281c8664cf9b810d17030e463fbd24220edbc221a26931e3cb30c5626243466c8fd2e7b3031382d84370",
    "64d00bd6409aeea33ab1d9d7decb661d",
);
const DC_D: &str = concat!(
    "1395a8807f4ff0a3dfac4a7c1cbd389c59022d2e259564fd13e6c75de3c1b2b3f7b5a2c279910b93d29702270b69fa1b",
    "04ae299669b7db060ccff811a6d8a838b3d4b79e11097766cbbd5ccbb7ed3585cc2ea14369727ccfed4d1526eb3eee37",
    "e374a0284e61316614a68077e908b21bf2c013e64cc858aea0dff63c4fd35042705e139be9634706bea34f0d4996a6cb",
    "ac9e8400e4aaf8cdb360b30b9abf40d41ed87a04a9d41377fba6092e903906067b77cc47037171ba0e1ff2b9e4039cb0",
    "51c9f4157beea5e36bb6b9ea05dda779f76417b7f5f2a60e50c7c73d636c38d539c599b0acd7dabef12c792d18b0e73a",
    "4917a896edbcd35bcd831f6a394b34f1",
);
const DC_P: &str = concat!(
    "d6e863e3067800a4021439ad7c53c984f2c9c0425ffaab104dc04b96a404796beb313fe5f2dfafb9bb4587db55adf775",
    "55e3cacdb8a872dfd97a43c52e1f816d57c6d1b20996db0e397b83635639be18cd74ce26860dc4ef6964153a934a9788",
    "afb1adaa3231d1a95479f24ff2467ff40ce2c3dcd55acb15614914243f095fb5",
);
const DC_Q: &str = concat!(
    "b654b38fc7856f36b8b7d4e818780a16aae9220b9d1274be154ef2c3c8156fa6eb9de2fd4abb798616220db220c02405",
    "0c3aa06d4a1e707370e353db72f28f9d58ad334a98f18b2e17d8fdcc6062131f51030cbff2d2f8dad7e3f0e266316550",
    "3c120477e88aae147398fa00a44e6b5bba952b51fd10638601dcc0f58790ddc9",
);

fn hex_into<'b>(hex: &str, out: &'b mut [u8; 256]) -> Option<&'b [u8]> {
    let digits = hex.as_bytes();
    let n = digits.len() / 2;
    let dst = out.get_mut(..n)?;
    for (o, pair) in dst.iter_mut().zip(digits.chunks(2)) {
        let s = core::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(&*dst)
}

/// A fixed 2048-bit RSA key for a test DC (public: a fixture, never a real secret), generated with OpenSSL.
pub fn dc_key() -> Option<RsaPrivateKey> {
    let (mut n, mut d, mut p, mut q) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let n = hex_into(DC_N, &mut n)?;
    let d = hex_into(DC_D, &mut d)?;
    let p = hex_into(DC_P, &mut p)?;
    let q = hex_into(DC_Q, &mut q)?;
    RsaPrivateKey::from_be_parts(n, 65537, d, Some((p, q))).ok()
}

pub use super::SeededRng;

/// A client and a DC wired back to back in memory (no transport), for tests, fuzzing and benchmarks.
pub struct Pair<'k> {
    /// The client.
    pub client: ClientHandshake<'k>,
    /// The DC.
    pub server: ServerHandshakes<'k, 4>,
    /// The client's RNG.
    pub client_rng: SeededRng,
    /// The DC's RNG.
    pub server_rng: SeededRng,
    /// The simulated clock.
    pub now: Instant,
    /// The last message the client sent.
    pub c2s: [u8; MAX_CLIENT_MESSAGE],
    /// Its length.
    pub c2s_len: usize,
    /// The last message the DC sent.
    pub s2c: [u8; MAX_SERVER_MESSAGE],
    /// Its length.
    pub s2c_len: usize,
}

impl core::fmt::Debug for Pair<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pair")
            .field("client", &self.client)
            .field("server", &self.server)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Pair<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Pair {{ client: {}, server: {} }}", self.client, self.server)
    }
}

impl<'k> Pair<'k> {
    /// A fresh pair around `key`; the client trusts exactly `trusted` (normally `[*key.public_key()]`). Both sides
    /// use DC 2 and [`FIXTURE_UNIX_MICROS`]; the RNGs derive from `seed`.
    pub fn new(key: &'k RsaPrivateKey, trusted: &'k [RsaPublicKey], kind: KeyKind, seed: &[u8]) -> Option<Self> {
        let mut cfg = ClientConfig::new(trusted, 2);
        cfg.kind = kind;
        cfg.unix_micros_at_zero = FIXTURE_UNIX_MICROS;
        let mut scfg = ServerConfig::new(key, DhGroup::telegram(3).ok()?);
        scfg.dc_id = Some(2);
        scfg.unix_micros_at_zero = FIXTURE_UNIX_MICROS;
        let mut cseed = [0u8; 64];
        let mut sseed = [0u8; 64];
        let n = seed.len().min(63);
        cseed.get_mut(1..=n)?.copy_from_slice(seed.get(..n)?);
        sseed.get_mut(1..=n)?.copy_from_slice(seed.get(..n)?);
        *sseed.first_mut()? = 1;
        Some(Pair {
            client: ClientHandshake::new(cfg, Instant::ZERO),
            server: ServerHandshakes::new(scfg),
            client_rng: SeededRng::new(cseed.get(..=n)?),
            server_rng: SeededRng::new(sseed.get(..=n)?),
            now: Instant::ZERO,
            c2s: [0; MAX_CLIENT_MESSAGE],
            c2s_len: 0,
            s2c: [0; MAX_SERVER_MESSAGE],
            s2c_len: 0,
        })
    }

    /// Polls the client for its next message into `c2s`; false if it had none.
    pub fn client_send(&mut self) -> bool {
        match self.client.poll_transmit(self.now, &mut self.client_rng, &mut self.c2s) {
            Ok(Some(n)) => {
                self.c2s_len = n;
                true
            }
            _ => false,
        }
    }

    /// Hands `c2s` to the DC; returns its reply (the message lands in `s2c`).
    pub fn server_receive(&mut self) -> Option<ServerReply> {
        let msg = self.c2s.get(..self.c2s_len)?;
        let reply = self
            .server
            .handle(self.now, &mut self.server_rng, 1, msg, &mut self.s2c, &|_| false)
            .ok()?;
        match &reply {
            ServerReply::Send(n) | ServerReply::Complete { len: n, .. } => self.s2c_len = *n,
            ServerReply::Error(_) => self.s2c_len = 0,
        }
        Some(reply)
    }

    /// Hands `s2c` to the client.
    pub fn client_receive(&mut self) -> Result<(), HandshakeError> {
        let msg = self.s2c.get(..self.s2c_len).unwrap_or_default();
        self.client.handle_packet(self.now, msg)
    }

    /// One round trip: client sends, DC answers, client reads the answer. False if anything stopped.
    pub fn round(&mut self) -> bool {
        self.client_send()
            && matches!(
                self.server_receive(),
                Some(ServerReply::Send(_) | ServerReply::Complete { .. })
            )
            && self.client_receive().is_ok()
    }

    /// Runs up to 16 round trips until the client is no longer running.
    pub fn run(&mut self) -> Status {
        for _ in 0..16 {
            if self.client.status() != Status::Running || !self.round() {
                break;
            }
        }
        self.client.status()
    }
}

/// Builds the fuzz payload from `data`: raw, or (bit 0 of `mode`) wrapped in a valid plaintext header with
/// `parity`, and (bit 1) with bytes 4..36 of the body overwritten by `nonces`, so the input reaches deep checks.
fn shape<'b>(mode: u8, data: &[u8], parity: u64, nonces: &[u8; 32], buf: &'b mut [u8; 2048]) -> &'b [u8] {
    let body_max = buf.len() - PLAIN_HEADER_LEN;
    let body = data.get(..data.len().min(body_max)).unwrap_or_default();
    if mode & 1 == 0 {
        let n = body.len();
        if let Some(dst) = buf.get_mut(..n) {
            dst.copy_from_slice(body);
        }
        return buf.get(..n).unwrap_or_default();
    }
    let msg_id: u64 = (1_735_910_900u64 << 32) | 0x1000 | parity;
    let len = u32::try_from(body.len()).unwrap_or(0);
    if let Some(h) = buf.get_mut(..PLAIN_HEADER_LEN) {
        h.fill(0);
        if let Some(m) = h.get_mut(8..16) {
            m.copy_from_slice(&msg_id.to_le_bytes());
        }
        if let Some(l) = h.get_mut(16..20) {
            l.copy_from_slice(&len.to_le_bytes());
        }
    }
    let total = PLAIN_HEADER_LEN + body.len();
    if let Some(dst) = buf.get_mut(PLAIN_HEADER_LEN..total) {
        dst.copy_from_slice(body);
    }
    if mode & 2 != 0
        && body.len() >= 36
        && let Some(dst) = buf.get_mut(PLAIN_HEADER_LEN + 4..PLAIN_HEADER_LEN + 36)
    {
        dst.copy_from_slice(nonces);
    }
    buf.get(..total).unwrap_or_default()
}

fn nonces_of(msg: &[u8]) -> [u8; 32] {
    let mut n = [0u8; 32];
    if let Some(src) = msg.get(PLAIN_HEADER_LEN + 4..PLAIN_HEADER_LEN + 36) {
        n.copy_from_slice(src);
    }
    n
}

/// The client fed arbitrary server messages: `data[0] % 4` = how many genuine DC answers it got first, `data[1]`
/// = shaping mode (bit 2: temporary key), the rest = the message. Invariants: a non-fatal error changes nothing
/// observable, a fatal one ends the run, and whatever the client sends next fits its buffer bound.
#[allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding
pub fn handshake_client(data: &[u8]) {
    let Some(key) = dc_key() else { return };
    let trusted = [*key.public_key()];
    let (k, mode) = (
        data.first().copied().unwrap_or(0) % 4,
        data.get(1).copied().unwrap_or(0),
    );
    let kind = if mode & 4 != 0 {
        KeyKind::Temporary { expires_in: 3600 }
    } else {
        KeyKind::Permanent
    };
    let Some(mut pair) = Pair::new(&key, &trusted, kind, b"fuzz-client") else {
        return;
    };
    for _ in 0..k {
        if !pair.round() {
            return;
        }
    }
    if k < 3 && !pair.client_send() {
        return;
    }
    let nonces = nonces_of(pair.c2s.get(..pair.c2s_len).unwrap_or_default());
    let mut buf = [0u8; 2048];
    let input = shape(mode, data.get(2..).unwrap_or_default(), 1, &nonces, &mut buf);
    let before = (pair.client.status(), pair.client.poll_timeout(), pair.client.restarts());
    match pair.client.handle_packet(pair.now, input) {
        Ok(()) => {}
        Err(e) if e.is_fatal() => assert_eq!(pair.client.status(), Status::Failed(e)),
        Err(_) => {
            let after = (pair.client.status(), pair.client.poll_timeout(), pair.client.restarts());
            assert_eq!(before, after, "a dropped packet changed the state");
        }
    }
    let mut out = [0u8; MAX_CLIENT_MESSAGE];
    if let Ok(Some(n)) = pair.client.poll_transmit(pair.now, &mut pair.client_rng, &mut out) {
        assert!(n <= MAX_CLIENT_MESSAGE);
        assert!(out.get(..8) == Some(&[0u8; 8][..]));
    }
}

/// The DC fed arbitrary client messages: `data[0] % 4` = how many genuine client messages it got first, `data[1]`
/// = shaping mode (bit 3: the key check is deferred to the host, answered "taken" if bit 4 is set), the rest = the
/// message. Invariants: the reply is a message within bounds or one of the three transport codes, and a DC-side key
/// is only ever reported with a `dh_gen_ok`.
#[allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding
pub fn handshake_server(data: &[u8]) {
    let Some(key) = dc_key() else { return };
    let trusted = [*key.public_key()];
    let (k, mode) = (
        data.first().copied().unwrap_or(0) % 4,
        data.get(1).copied().unwrap_or(0),
    );
    let Some(mut pair) = Pair::new(&key, &trusted, KeyKind::Permanent, b"fuzz-server") else {
        return;
    };
    for i in 0..k {
        if !pair.client_send() || pair.server_receive().is_none() {
            return;
        }
        if i + 1 < k && pair.client_receive().is_err() {
            return;
        }
    }
    let nonces = if k == 0 {
        [0u8; 32]
    } else {
        nonces_of(pair.s2c.get(..pair.s2c_len).unwrap_or_default())
    };
    let mut buf = [0u8; 2048];
    let input = shape(mode, data.get(2..).unwrap_or_default(), 0, &nonces, &mut buf);
    let mut out = [0u8; MAX_SERVER_MESSAGE];
    let reply = if mode & 8 != 0 {
        match pair
            .server
            .handle_deferred(pair.now, &mut pair.server_rng, 1, input, &mut out)
        {
            Ok(ServerStep::Reply(r)) => Ok(r),
            Ok(ServerStep::CheckKeyId { key_id }) => {
                // The same request again while the host decides: the same question, nothing sent.
                match pair
                    .server
                    .handle_deferred(pair.now, &mut pair.server_rng, 1, input, &mut out)
                {
                    Ok(ServerStep::CheckKeyId { key_id: again }) => assert_eq!(again, key_id),
                    other => panic!("a retransmission while parked got {other:?}"),
                }
                let taken = mode & 16 != 0;
                let r = pair.server.finish_key_check(pair.now, 1, key_id, taken, &mut out);
                assert!(r.is_ok(), "a parked key vanished");
                if let Ok(ServerReply::Complete { outcome, .. }) = &r {
                    assert!(!taken && outcome.auth_key.id() == key_id);
                }
                assert!(
                    pair.server
                        .finish_key_check(pair.now, 1, key_id, taken, &mut out)
                        .is_err()
                );
                r.map_err(|_| crate::handshake::BufferTooSmall { required: 0 })
            }
            Err(e) => Err(e),
        }
    } else {
        pair.server
            .handle(pair.now, &mut pair.server_rng, 1, input, &mut out, &|_| false)
    };
    match reply {
        Ok(ServerReply::Send(n)) => assert!(n <= MAX_SERVER_MESSAGE && out.get(..8) == Some(&[0u8; 8][..])),
        Ok(ServerReply::Complete { len, outcome }) => {
            assert!(len == 72);
            assert_eq!(out.get(20..24), Some(&0x3bcb_f734u32.to_le_bytes()[..]));
            drop(outcome);
        }
        Ok(ServerReply::Error(c)) => assert!(c == -404 || c == -429 || c == -444),
        Err(_) => panic!("a MAX_SERVER_MESSAGE buffer was refused"),
    }
    assert!(pair.server.len() <= 4);
}
