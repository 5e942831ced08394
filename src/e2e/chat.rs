//! The secret-chat state machine: key exchange, message encryption, sequence numbers, gap repair, re-keying and
//! persistence.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod persist;
pub use persist::{PERSIST_VERSION, RestoreError};

use heapless::{Deque, Vec};
use rand_core::{CryptoRng, TryCryptoRng, TryRng};
use zeroize::{Zeroize, Zeroizing};

use super::wire::{Action, DecryptedMessage, MessageLayer};
use super::{
    EVENT_QUEUE, HEADER_LEN, INITIAL_PEER_LAYER, LAYER, MAX_PADDING, MAX_RESEND_COUNT, MIN_PADDING, RANDOM_BYTES_LEN,
    REKEY_AFTER, REKEY_AFTER_MESSAGES, RESEND_RETRY, TX_QUEUE,
};
use crate::crypto::auth_key::{AUTH_KEY_LEN, AuthKey};
use crate::crypto::dh::{DH_BYTES, DhError, DhGroup, DhSecret, PrimeCache, check_group};
use crate::crypto::kdf::Direction;
use crate::crypto::packet::{open_v2, seal_v2};
use crate::time::Instant;

/// Default bound on one stored message (the encoded `decryptedMessageLayer`), in bytes.
pub const DEFAULT_MAX_MESSAGE: usize = 4096;
/// Default number of sent messages kept to answer resend requests.
pub const DEFAULT_HISTORY: usize = 16;
/// Default number of out-of-order messages held while a gap is repaired.
pub const DEFAULT_HELD: usize = 16;

/// Why the chat was aborted. Once aborted a chat stays aborted; the host should call `messages.discardEncryption`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AbortReason {
    /// A seq_no had the wrong parity (a reflected message, item 65) or was negative.
    SeqParity,
    /// in_seq_no decreased or exceeded what we have sent (item 67).
    InSeq,
    /// The peer's layer decreased (item 64).
    LayerDecreased,
    /// A resend request was malformed, too large or for messages we never sent (item 68).
    ResendInvalid,
    /// A resend request asked for messages no longer in the history (item 68).
    ResendUnavailable,
    /// More out-of-order messages arrived than can be held.
    HeldFull,
    /// A protocol queue overflowed.
    QueueFull,
    /// The host aborted the chat.
    Local,
}

/// Errors of the secret-chat operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum E2eError {
    /// An inbound message failed decryption or its format checks. Deliberately one uniform error: which check
    /// failed is not revealed.
    Rejected,
    /// The message is for another chat (`chat_id` mismatch).
    WrongChat,
    /// The chat is aborted.
    Aborted(AbortReason),
    /// The message does not fit the configured message bound.
    TooLarge,
    /// `out` is too small; nothing changed.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// The host tried to send an action the state machine owns (re-key, resend, layer, noop).
    ReservedAction,
    /// A DH parameter or public value was refused.
    Dh(DhError),
    /// `dhConfigNotModified` arrived but nothing is cached for that version.
    NoDhConfig,
    /// The key fingerprint did not match: discard the chat and tell the user (item 61).
    FingerprintMismatch,
}

impl core::fmt::Display for E2eError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            E2eError::Rejected => f.write_str("secret-chat message rejected"),
            E2eError::WrongChat => f.write_str("message for another secret chat"),
            E2eError::Aborted(r) => write!(f, "secret chat aborted: {r:?}"),
            E2eError::TooLarge => f.write_str("message larger than the configured bound"),
            E2eError::BufferTooSmall { required } => write!(f, "output buffer too small: {required} bytes needed"),
            E2eError::ReservedAction => f.write_str("action reserved to the secret-chat state machine"),
            E2eError::Dh(e) => write!(f, "DH check failed: {e}"),
            E2eError::NoDhConfig => f.write_str("no cached DH config for this version"),
            E2eError::FingerprintMismatch => f.write_str("secret-chat key fingerprint mismatch"),
        }
    }
}

impl core::error::Error for E2eError {}

impl From<DhError> for E2eError {
    fn from(e: DhError) -> Self {
        E2eError::Dh(e)
    }
}

/// A `messages.dhConfig` (or `messages.dhConfigNotModified`, with `p = None`) as the host received it.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DhConfig<'a> {
    /// Config version (for `dhConfigNotModified`, the version the host asked with).
    pub version: i32,
    /// Generator.
    pub g: u32,
    /// Prime, big-endian; `None` for `dhConfigNotModified`.
    pub p: Option<&'a [u8]>,
    /// The server's `random`: mixed into local randomness, never used alone (item 59).
    pub random: &'a [u8],
}

/// The checked DH group of the last `messages.dhConfig`, keyed by version (item 58), plus primality verdicts for
/// unknown primes.
pub struct DhConfigCache<const N: usize = 4> {
    current: Option<(i32, DhGroup)>,
    primes: PrimeCache<N>,
}

impl<const N: usize> Default for DhConfigCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Debug for DhConfigCache<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhConfigCache")
            .field("version", &self.version())
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for DhConfigCache<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "DhConfigCache {{ version: {} }}", self.version())
    }
}

impl<const N: usize> DhConfigCache<N> {
    /// An empty cache.
    pub fn new() -> Self {
        DhConfigCache {
            current: None,
            primes: PrimeCache::default(),
        }
    }

    /// The cached version, to pass as `version` in `messages.getDhConfig` (0 when nothing is cached).
    pub fn version(&self) -> i32 {
        self.current.as_ref().map_or(0, |c| c.0)
    }

    /// Checks (p, g) of a new config (item 16 via `crypto::dh::check_group`) or reuses the cached group for an
    /// unchanged version.
    pub fn update<R: CryptoRng + ?Sized>(&mut self, cfg: &DhConfig<'_>, rng: &mut R) -> Result<DhGroup, E2eError> {
        match cfg.p {
            Some(p) => {
                let group = check_group(p, cfg.g, &mut self.primes, rng)?;
                self.current = Some((cfg.version, group.clone()));
                Ok(group)
            }
            None => match &self.current {
                Some((v, g)) if *v == cfg.version => Ok(g.clone()),
                _ => Err(E2eError::NoDhConfig),
            },
        }
    }
}

/// Local CSPRNG output with the server's `random` XORed into its first bytes (item 59): a server that picks
/// `random` cannot make the exponent predictable, and a weak `random` costs nothing.
struct MixRng<'a, R: ?Sized> {
    inner: &'a mut R,
    mix: &'a [u8],
    pos: usize,
}

impl<R: CryptoRng + ?Sized> TryRng for MixRng<'_, R> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.fill_bytes(dst);
        for d in dst.iter_mut() {
            if let Some(m) = self.mix.get(self.pos) {
                *d ^= *m;
            }
            self.pos = self.pos.saturating_add(1);
        }
        Ok(())
    }
}

impl<R: CryptoRng + ?Sized> TryCryptoRng for MixRng<'_, R> {}

/// A secret-chat key with its fingerprint and usage counters.
struct ChatKey {
    key: AuthKey,
    since: Instant,
    used: u32,
    encrypted: u32,
}

impl ChatKey {
    fn new(bytes: &[u8; AUTH_KEY_LEN], now: Instant) -> Self {
        ChatKey {
            key: AuthKey::from_bytes(*bytes),
            since: now,
            used: 0,
            encrypted: 0,
        }
    }
    fn fingerprint(&self) -> i64 {
        self.key.id() as i64
    }
}

/// The re-key automaton (item 71).
enum Rekey {
    Idle,
    /// We sent (or will send) RequestKey and wait for AcceptKey.
    Requested {
        exchange_id: i64,
        secret: DhSecret,
        g_a: Zeroizing<[u8; DH_BYTES]>,
    },
    /// The peer's RequestKey passed the checks; AcceptKey (and b) are produced by `poll_transmit`.
    Incoming {
        exchange_id: i64,
        g_a: Zeroizing<[u8; DH_BYTES]>,
    },
    /// We accepted the peer's request (we are B of this exchange) and wait for CommitKey.
    Accepted {
        exchange_id: i64,
        g_b: [u8; DH_BYTES],
        key: ChatKey,
    },
    /// We are A, the peer's AcceptKey checked out, and CommitKey is queued; the switch happens when it is sent.
    Committing {
        exchange_id: i64,
        key: ChatKey,
    },
}

impl Rekey {
    fn exchange_id(&self) -> Option<i64> {
        match self {
            Rekey::Idle => None,
            Rekey::Requested { exchange_id, .. }
            | Rekey::Incoming { exchange_id, .. }
            | Rekey::Accepted { exchange_id, .. }
            | Rekey::Committing { exchange_id, .. } => Some(*exchange_id),
        }
    }
}

/// When the previous key may be dropped (item 72).
#[derive(Clone, Copy, PartialEq, Eq)]
enum OldDrop {
    /// A: after the first message under the new key.
    AfterFirstNew,
    /// B: once there are no gaps.
    WhenNoGaps,
}

/// Queued protocol messages, encoded lazily by `poll_transmit`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tx {
    NotifyLayer,
    /// Ask for the peer's raw out_seq_nos start..=end.
    ResendRequest {
        start: u32,
        end: u32,
    },
    /// Re-emit our raw seqs next..=end.
    Retransmit {
        next: u32,
        end: u32,
    },
    RequestKey,
    AcceptKey,
    CommitKey,
    AbortKey(i64),
    Noop,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ev {
    PeerLayer(i32),
    RekeyDone(i64),
    RekeyAborted(i64),
    Aborted(AbortReason),
}

/// An event from [`SecretChat::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<'a> {
    /// A message that had been held behind a gap, now delivered in order.
    Message(Delivered<'a>),
    /// The peer announced a higher layer; above [`LAYER`] the user should be asked to update.
    PeerLayer(i32),
    /// A re-key completed; the new key's fingerprint.
    RekeyDone(i64),
    /// A re-key with this exchange_id was abandoned.
    RekeyAborted(i64),
    /// The chat was aborted.
    Aborted(AbortReason),
}

/// A message delivered in seq order. Protocol actions in it have already been handled by the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Delivered<'a> {
    /// Raw out_seq_no (the peer's message counter).
    pub out_seq_no: u32,
    /// Raw in_seq_no: the message comes after our `in_seq_no`-th message.
    pub in_seq_no: u32,
    /// The peer's layer.
    pub layer: i32,
    /// The message.
    pub message: DecryptedMessage<'a>,
}

/// What [`SecretChat::decrypt`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Received<'a> {
    /// The next message in order (then drain `poll_event`: held messages may follow it).
    Message(Delivered<'a>),
    /// A message beyond a gap, held until the gap is repaired.
    Held,
    /// A repeat of a message already received; dropped.
    Duplicate,
    /// A message beyond a gap too large to hold (`MSG`); dropped and asked for again with the hole, so it comes
    /// back in order and is then delivered straight from the host's buffer.
    Deferred,
}

/// One message produced by [`SecretChat::encrypt`] or [`SecretChat::poll_transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sent {
    /// Bytes written at the start of `out` (the `data` of `messages.sendEncrypted*`).
    pub len: usize,
    /// Send with `messages.sendEncryptedService` rather than `messages.sendEncrypted`.
    pub service: bool,
    /// The message's random_id (`random_id` of the send call).
    pub random_id: i64,
}

struct Stored<const MSG: usize> {
    raw: u32,
    service: bool,
    random_id: i64,
    data: Vec<u8, MSG>,
}

struct Held<const MSG: usize> {
    raw: u32,
    /// Already processed and waiting to be handed out by `poll_event`.
    released: bool,
    /// A resend request in it was already acted on (item 68: once).
    handled: bool,
    /// Fingerprint of the key it arrived under (A drops the old key on the first in-order new-key message).
    key_fp: i64,
    data: Vec<u8, MSG>,
}

impl<const MSG: usize> Zeroize for Held<MSG> {
    fn zeroize(&mut self) {
        self.data.zeroize();
    }
}

/// A pending `messages.requestEncryption` of the initiator: holds `a` until `encryptedChat` brings g_b.
pub struct KeyRequest {
    group: DhGroup,
    secret: DhSecret,
}

impl core::fmt::Debug for KeyRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyRequest(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for KeyRequest {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "KeyRequest(..)")
    }
}

/// One side of one secret chat.
///
/// `MSG` bounds one encoded `decryptedMessageLayer`, `HIST` is how many sent messages are kept for resend requests,
/// `HELD` how many out-of-order messages are held behind a gap. Memory is about `MSG · (HIST + HELD)` bytes.
pub struct SecretChat<
    const MSG: usize = DEFAULT_MAX_MESSAGE,
    const HIST: usize = DEFAULT_HISTORY,
    const HELD: usize = DEFAULT_HELD,
> {
    chat_id: i32,
    originator: bool,
    aborted: Option<AbortReason>,
    group: DhGroup,
    key: ChatKey,
    old_key: Option<(ChatKey, OldDrop)>,
    rekey: Rekey,
    visual: [u8; 36],
    peer_layer: i32,
    out_raw: u32,
    in_raw: u32,
    peer_in_raw: u32,
    asked_until: u32,
    last_ask: Instant,
    /// The latest time the host passed in (new keys are dated with it).
    clock: Instant,
    history: [Option<Stored<MSG>>; HIST],
    held: [Option<Held<MSG>>; HELD],
    tx: Deque<Tx, TX_QUEUE>,
    events: Deque<Ev, EVENT_QUEUE>,
    releasing: Option<usize>,
}

impl<const MSG: usize, const HIST: usize, const HELD: usize> Drop for SecretChat<MSG, HIST, HELD> {
    /// Keys wipe themselves (`AuthKey`, `DhSecret`); the stored plaintexts of sent and held messages are wiped here.
    fn drop(&mut self) {
        for s in self.history.iter_mut().flatten() {
            s.data.as_mut_slice().zeroize();
        }
        for h in self.held.iter_mut().flatten() {
            h.data.as_mut_slice().zeroize();
        }
    }
}

impl<const MSG: usize, const HIST: usize, const HELD: usize> core::fmt::Debug for SecretChat<MSG, HIST, HELD> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecretChat")
            .field("chat_id", &self.chat_id)
            .field("originator", &self.originator)
            .field("aborted", &self.aborted)
            .field("key_fingerprint", &self.key.fingerprint())
            .field("out_seq", &self.out_raw)
            .field("in_seq", &self.in_raw)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<const MSG: usize, const HIST: usize, const HELD: usize> defmt::Format for SecretChat<MSG, HIST, HELD> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "SecretChat {{ chat_id: {}, out: {}, in: {} }}",
            self.chat_id,
            self.out_raw,
            self.in_raw
        )
    }
}

impl KeyRequest {
    /// Finishes the initiator's exchange with the `g_b` and `key_fingerprint` of `encryptedChat` (items 60, 61).
    /// [`E2eError::FingerprintMismatch`] means: call `messages.discardEncryption` and tell the user.
    pub fn complete<const MSG: usize, const HIST: usize, const HELD: usize>(
        self,
        now: Instant,
        chat_id: i32,
        g_b: &[u8],
        key_fingerprint: i64,
    ) -> Result<SecretChat<MSG, HIST, HELD>, E2eError> {
        let shared = self.group.shared(&self.secret, g_b)?;
        let key = ChatKey::new(&shared, now);
        if key.fingerprint() != key_fingerprint {
            return Err(E2eError::FingerprintMismatch);
        }
        Ok(SecretChat::new(chat_id, true, self.group, key))
    }
}

impl<const MSG: usize, const HIST: usize, const HELD: usize> SecretChat<MSG, HIST, HELD> {
    fn new(chat_id: i32, originator: bool, group: DhGroup, key: ChatKey) -> Self {
        let visual = super::visual::visualisation(key.key.as_bytes(), key.key.as_bytes());
        let mut tx = Deque::new();
        // Tell the peer our layer right after the exchange; the queue is empty, so this cannot fail.
        let _ = tx.push_back(Tx::NotifyLayer);
        SecretChat {
            chat_id,
            originator,
            aborted: None,
            group,
            last_ask: key.since,
            clock: key.since,
            key,
            old_key: None,
            rekey: Rekey::Idle,
            visual,
            peer_layer: INITIAL_PEER_LAYER,
            out_raw: 0,
            in_raw: 0,
            peer_in_raw: 0,
            asked_until: 0,
            history: [const { None }; HIST],
            held: [const { None }; HELD],
            tx,
            events: Deque::new(),
            releasing: None,
        }
    }

    /// A chat over a fixed key, as the originator, for the fuzz targets (Telegram's group, g = 3).
    #[cfg(feature = "testing")]
    pub(crate) fn for_fuzzing(chat_id: i32, key: &[u8; AUTH_KEY_LEN]) -> Option<Self> {
        let group = DhGroup::telegram(3).ok()?;
        Some(Self::new(chat_id, true, group, ChatKey::new(key, Instant::ZERO)))
    }

    /// Initiator (A): checks the DH config, draws `a` (local randomness with the server's `random` mixed in) and
    /// returns the pending request and `g_a` for `messages.requestEncryption`.
    pub fn request<R: CryptoRng + ?Sized, const N: usize>(
        rng: &mut R,
        cache: &mut DhConfigCache<N>,
        cfg: &DhConfig<'_>,
    ) -> Result<(KeyRequest, [u8; DH_BYTES]), E2eError> {
        let group = cache.update(cfg, rng)?;
        let mut mix = MixRng {
            inner: rng,
            mix: cfg.random,
            pos: 0,
        };
        let (secret, g_a) = group.gen_keypair(&mut mix)?;
        Ok((KeyRequest { group, secret }, g_a))
    }

    /// Acceptor (B): checks the DH config and `g_a`, draws `b`, computes the key and returns the chat with `g_b` and
    /// the key fingerprint for `messages.acceptEncryption`.
    pub fn accept<R: CryptoRng + ?Sized, const N: usize>(
        rng: &mut R,
        now: Instant,
        chat_id: i32,
        cache: &mut DhConfigCache<N>,
        cfg: &DhConfig<'_>,
        g_a: &[u8],
    ) -> Result<(Self, [u8; DH_BYTES], i64), E2eError> {
        let group = cache.update(cfg, rng)?;
        group.check_public(g_a)?;
        let mut mix = MixRng {
            inner: rng,
            mix: cfg.random,
            pos: 0,
        };
        let (secret, g_b) = group.gen_keypair(&mut mix)?;
        let shared = group.shared(&secret, g_a)?;
        let key = ChatKey::new(&shared, now);
        let fp = key.fingerprint();
        Ok((Self::new(chat_id, false, group, key), g_b, fp))
    }

    /// The chat id this state belongs to.
    pub fn chat_id(&self) -> i32 {
        self.chat_id
    }

    /// True on the side that requested the chat.
    pub fn is_originator(&self) -> bool {
        self.originator
    }

    /// Fingerprint of the key in use.
    pub fn key_fingerprint(&self) -> i64 {
        self.key.fingerprint()
    }

    /// The 36-byte (288-bit) key visualisation: SHA1(original key)[0..16] ‖ SHA256(key at layer 46)[0..20]. Both
    /// are the key of the initial exchange (peers start at layer ≥ 46); it does not change across re-keys (item 62).
    pub fn visualisation(&self) -> &[u8; 36] {
        &self.visual
    }

    /// The peer's layer (starts at 46, never decreases).
    pub fn peer_layer(&self) -> i32 {
        self.peer_layer
    }

    /// The layer messages should be built for: the smaller of ours and the peer's.
    pub fn effective_layer(&self) -> i32 {
        self.peer_layer.min(LAYER)
    }

    /// Why the chat was aborted, if it was.
    pub fn aborted(&self) -> Option<AbortReason> {
        self.aborted
    }

    /// Raw counters: (messages sent, messages received in order).
    pub fn seq(&self) -> (u32, u32) {
        (self.out_raw, self.in_raw)
    }

    /// True while a re-key is in progress or the previous key is still kept.
    pub fn rekey_in_progress(&self) -> bool {
        !matches!(self.rekey, Rekey::Idle) || self.old_key.is_some()
    }

    /// True if the old key of the last re-key is still kept (for in-flight messages).
    pub fn has_old_key(&self) -> bool {
        self.old_key.is_some()
    }

    /// Holes not yet filled (held messages waiting for earlier ones).
    pub fn held_count(&self) -> usize {
        self.held.iter().flatten().filter(|h| !h.released).count()
    }

    /// Whether a re-key is due (item 70): more than [`REKEY_AFTER_MESSAGES`] messages or older than
    /// [`REKEY_AFTER`], with at least one message encrypted, and no re-key open.
    pub fn rekey_due(&self, now: Instant) -> bool {
        !self.rekey_in_progress()
            && self.key.encrypted > 0
            && (self.key.used > REKEY_AFTER_MESSAGES || now.saturating_duration_since(self.key.since) > REKEY_AFTER)
    }

    /// Aborts the chat locally; every later call fails with [`E2eError::Aborted`].
    pub fn abort(&mut self) {
        self.do_abort(AbortReason::Local);
    }

    fn do_abort(&mut self, reason: AbortReason) {
        if self.aborted.is_none() {
            self.aborted = Some(reason);
            self.events.clear();
            let _ = self.events.push_back(Ev::Aborted(reason));
            self.tx.clear();
            self.rekey = Rekey::Idle;
            self.old_key = None;
            for h in self.held.iter_mut() {
                if let Some(mut x) = h.take() {
                    x.zeroize();
                }
            }
            for s in self.history.iter_mut() {
                if let Some(mut x) = s.take() {
                    x.data.zeroize();
                }
            }
        }
    }

    fn check_live(&self) -> Result<(), E2eError> {
        match self.aborted {
            Some(r) => Err(E2eError::Aborted(r)),
            None => Ok(()),
        }
    }

    /// x for our outgoing messages' out_seq_no (and the peer's in_seq_no).
    fn x_out(&self) -> u32 {
        u32::from(self.originator)
    }

    /// x for the peer's out_seq_no (and our in_seq_no).
    fn x_in(&self) -> u32 {
        u32::from(!self.originator)
    }

    fn dir_out(&self) -> Direction {
        if self.originator {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        }
    }

    fn push_tx(&mut self, t: Tx) {
        if self.tx.push_back(t).is_err() {
            self.do_abort(AbortReason::QueueFull);
        }
    }

    fn push_ev(&mut self, e: Ev) {
        if self.events.push_back(e).is_err() {
            self.do_abort(AbortReason::QueueFull);
        }
    }

    // ---------------------------------------------------------------- outbound

    /// Encrypts a host message (an ordinary message or a non-protocol service action) for
    /// `messages.sendEncrypted`/`sendEncryptedService`. Its seq_nos are assigned now and never change (item 69); it
    /// is kept in the history to answer resend requests.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        message: &DecryptedMessage<'_>,
        out: &mut [u8],
    ) -> Result<Sent, E2eError> {
        self.check_live()?;
        if message.action().is_some_and(Action::is_protocol) {
            return Err(E2eError::ReservedAction);
        }
        self.send_new(rng, message, out)
    }

    /// Largest `out` an encrypted message of `layer_len` encoded bytes can need.
    pub const fn max_encrypted_len(layer_len: usize) -> usize {
        HEADER_LEN + (4 + layer_len + MIN_PADDING).next_multiple_of(16) + MAX_EXTRA_BLOCKS * 16
    }

    fn send_new<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        message: &DecryptedMessage<'_>,
        out: &mut [u8],
    ) -> Result<Sent, E2eError> {
        let mut random_bytes = [0u8; RANDOM_BYTES_LEN];
        rng.fill_bytes(&mut random_bytes);
        let layer = MessageLayer {
            random_bytes: &random_bytes,
            layer: LAYER,
            in_seq_no: self.wire(self.in_raw, self.x_in())?,
            out_seq_no: self.wire(self.out_raw, self.x_out())?,
            message: *message,
        };
        let len = layer.tl_len();
        if len > MSG {
            return Err(E2eError::TooLarge);
        }
        let required = Self::max_encrypted_len(len);
        if out.len() < required {
            return Err(E2eError::BufferTooSmall { required });
        }
        let raw = self.out_raw;
        let idx = (raw as usize) % HIST.max(1);
        let Some(slot) = self.history.get_mut(idx) else {
            return Err(E2eError::TooLarge);
        };
        // Encode straight into the history slot: the slot buffer is reused, never moved (it is MSG bytes large).
        let st = slot.get_or_insert_with(|| Stored {
            raw,
            service: false,
            random_id: 0,
            data: Vec::new(),
        });
        st.data.as_mut_slice().zeroize();
        st.data.clear();
        st.raw = raw;
        st.service = message.action().is_some();
        st.random_id = message.random_id();
        // len <= MSG was checked above, so neither call can fail; a failure leaves an empty slot behind.
        let ok = st.data.resize(len, 0).is_ok() && layer.encode(&mut st.data).is_ok();
        if !ok {
            *slot = None;
            return Err(E2eError::TooLarge);
        }
        self.out_raw = self.out_raw.wrapping_add(1);
        self.emit(rng, raw, out)
    }

    fn wire(&self, raw: u32, x: u32) -> Result<i32, E2eError> {
        i32::try_from(raw.saturating_mul(2).saturating_add(x)).map_err(|_| E2eError::TooLarge)
    }

    /// Seals stored message `raw` with the current key into `out`.
    fn emit<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, raw: u32, out: &mut [u8]) -> Result<Sent, E2eError> {
        let slot = (raw as usize) % HIST.max(1);
        let stored = match self.history.get(slot) {
            Some(Some(s)) if s.raw == raw => s,
            _ => return Err(E2eError::Aborted(AbortReason::ResendUnavailable)),
        };
        let len = stored.data.len();
        let body = (4 + len + MIN_PADDING).next_multiple_of(16);
        let extra = (rng.next_u32() as usize) % (MAX_EXTRA_BLOCKS + 1);
        let total = body + extra * 16;
        let required = HEADER_LEN + total;
        let (head, rest) = out
            .split_at_mut_checked(HEADER_LEN)
            .ok_or(E2eError::BufferTooSmall { required })?;
        let plain = rest.get_mut(..total).ok_or(E2eError::BufferTooSmall { required })?;
        let (lenf, tail) = plain.split_at_mut(4);
        lenf.copy_from_slice(&(len as u32).to_le_bytes());
        let (payload, pad) = tail.split_at_mut(len);
        payload.copy_from_slice(&stored.data);
        rng.fill_bytes(pad);
        let sealed = seal_v2(&self.key.key, self.dir_out(), plain).map_err(|_| E2eError::TooLarge)?;
        let (fp, mk) = head.split_at_mut(8);
        fp.copy_from_slice(&self.key.fingerprint().to_le_bytes());
        mk.copy_from_slice(&sealed.msg_key);
        let sent = Sent {
            len: required,
            service: stored.service,
            random_id: stored.random_id,
        };
        self.key.used = self.key.used.saturating_add(1);
        self.key.encrypted = self.key.encrypted.saturating_add(1);
        Ok(sent)
    }

    /// Produces the next protocol message (layer notification, resend request or answer, re-key step, noop) into
    /// `out`, or `Ok(None)` when there is nothing to send. Also starts a due re-key and repeats resend requests for
    /// holes older than [`RESEND_RETRY`]. On [`E2eError::BufferTooSmall`] nothing is consumed.
    pub fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Option<Sent>, E2eError> {
        // A step of an abandoned exchange is skipped without output; go on to the next item.
        for _ in 0..=TX_QUEUE {
            if let Some(sent) = self.transmit_one(rng, now, out)? {
                return Ok(Some(sent));
            }
            if self.tx.is_empty() {
                break;
            }
        }
        Ok(None)
    }

    fn transmit_one<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Option<Sent>, E2eError> {
        self.check_live()?;
        self.clock = self.clock.max(now);
        if self.tx.is_empty() {
            if self.held_count() > 0 && now.saturating_duration_since(self.last_ask) >= RESEND_RETRY {
                self.last_ask = now;
                self.asked_until = self.in_raw;
                self.request_holes();
            } else if self.rekey_due(now) {
                self.start_rekey(rng)?;
            }
        }
        let Some(item) = self.tx.front().copied() else {
            return Ok(None);
        };
        let x_in = self.x_in();
        let action = match item {
            Tx::NotifyLayer => Action::NotifyLayer(LAYER),
            Tx::ResendRequest { start, end } => Action::Resend {
                start_seq_no: self.wire(start, x_in)?,
                end_seq_no: self.wire(end, x_in)?,
            },
            Tx::Retransmit { next, end } => {
                let sent = self.emit(rng, next, out);
                match sent {
                    Ok(s) => {
                        let _ = self.tx.pop_front();
                        if next < end {
                            let _ = self.tx.push_front(Tx::Retransmit { next: next + 1, end });
                        }
                        return Ok(Some(s));
                    }
                    Err(E2eError::Aborted(r)) => {
                        self.do_abort(r);
                        return Err(E2eError::Aborted(r));
                    }
                    Err(e) => return Err(e),
                }
            }
            Tx::RequestKey | Tx::AcceptKey | Tx::CommitKey => {
                return self.send_rekey_step(rng, item, out);
            }
            Tx::AbortKey(ex) => Action::AbortKey(ex),
            Tx::Noop => Action::Noop,
        };
        let random_id = rng.next_u64() as i64;
        let sent = self.send_new(rng, &DecryptedMessage::Service { random_id, action }, out)?;
        let _ = self.tx.pop_front();
        Ok(Some(sent))
    }

    fn send_rekey_step<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        item: Tx,
        out: &mut [u8],
    ) -> Result<Option<Sent>, E2eError> {
        if let (Rekey::Incoming { exchange_id, g_a }, Tx::AcceptKey) = (&self.rekey, item) {
            let exchange_id = *exchange_id;
            let computed = self.group.gen_keypair(rng).and_then(|(b, g_b)| {
                let shared = self.group.shared(&b, &g_a[..])?;
                Ok((g_b, ChatKey::new(&shared, self.clock)))
            });
            match computed {
                Ok((g_b, key)) => self.rekey = Rekey::Accepted { exchange_id, g_b, key },
                Err(_) => {
                    self.rekey = Rekey::Idle;
                    let _ = self.tx.pop_front();
                    self.push_tx(Tx::AbortKey(exchange_id));
                    self.push_ev(Ev::RekeyAborted(exchange_id));
                    return Ok(None);
                }
            }
        }
        let random_id = rng.next_u64() as i64;
        let mut g = [0u8; DH_BYTES];
        let action = match (&self.rekey, item) {
            (Rekey::Requested { exchange_id, g_a, .. }, Tx::RequestKey) => {
                g.copy_from_slice(&g_a[..]);
                Action::RequestKey {
                    exchange_id: *exchange_id,
                    g_a: &g,
                }
            }
            (Rekey::Accepted { exchange_id, g_b, key }, Tx::AcceptKey) => {
                g.copy_from_slice(g_b);
                Action::AcceptKey {
                    exchange_id: *exchange_id,
                    g_b: &g,
                    key_fingerprint: key.fingerprint(),
                }
            }
            (Rekey::Committing { exchange_id, key }, Tx::CommitKey) => Action::CommitKey {
                exchange_id: *exchange_id,
                key_fingerprint: key.fingerprint(),
            },
            // The exchange this step belonged to was abandoned (tie-break or abort): drop the step.
            _ => {
                let _ = self.tx.pop_front();
                return Ok(None);
            }
        };
        let sent = self.send_new(rng, &DecryptedMessage::Service { random_id, action }, out)?;
        let _ = self.tx.pop_front();
        if item == Tx::CommitKey {
            // CommitKey went out under the old key; everything after it uses the new one (item 71/72).
            if let Rekey::Committing { key, .. } = core::mem::replace(&mut self.rekey, Rekey::Idle) {
                let old = core::mem::replace(&mut self.key, key);
                self.old_key = Some((old, OldDrop::AfterFirstNew));
                let fp = self.key.fingerprint();
                self.push_ev(Ev::RekeyDone(fp));
            }
        }
        Ok(Some(sent))
    }

    /// Starts a re-key now if none is open (item 70 says when it is due; see [`SecretChat::rekey_due`]).
    pub fn start_rekey<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<(), E2eError> {
        self.check_live()?;
        if self.rekey_in_progress() {
            return Ok(());
        }
        let exchange_id = rng.next_u64() as i64;
        let (secret, g_a) = self.group.gen_keypair(rng)?;
        self.rekey = Rekey::Requested {
            exchange_id,
            secret,
            g_a: Zeroizing::new(g_a),
        };
        self.push_tx(Tx::RequestKey);
        Ok(())
    }

    /// Queues one resend request per hole between `asked_until`/`in_raw` and the held messages (item 66).
    fn request_holes(&mut self) {
        let mut top: Vec<u32, HELD> = Vec::new();
        for h in self.held.iter().flatten().filter(|h| !h.released) {
            let _ = top.push(h.raw);
        }
        top.sort_unstable();
        let mut cursor = self.in_raw.max(self.asked_until);
        for raw in top {
            if raw > cursor
                && self
                    .tx
                    .push_back(Tx::ResendRequest {
                        start: cursor,
                        end: raw - 1,
                    })
                    .is_err()
            {
                // Queue full: the retry timer asks for this hole later.
                break;
            }
            cursor = cursor.max(raw + 1);
        }
        self.asked_until = cursor;
    }

    // ---------------------------------------------------------------- inbound

    /// Decrypts one `encryptedMessage`/`encryptedMessageService` `bytes` of chat `chat_id` in place and runs the
    /// sequence and protocol checks. Failures of the crypto or format checks are all [`E2eError::Rejected`]; seq
    /// violations abort the chat. Drain [`SecretChat::poll_event`] and [`SecretChat::poll_transmit`] afterwards.
    pub fn decrypt<'b>(&mut self, now: Instant, chat_id: i32, buf: &'b mut [u8]) -> Result<Received<'b>, E2eError> {
        self.check_live()?;
        self.clock = self.clock.max(now);
        if chat_id != self.chat_id {
            return Err(E2eError::WrongChat);
        }
        self.free_released();
        let (head, ct) = buf.split_at_mut_checked(HEADER_LEN).ok_or(E2eError::Rejected)?;
        let (fpb, mkb) = head.split_at(8);
        let fp = i64::from_le_bytes(fpb.try_into().map_err(|_| E2eError::Rejected)?);
        let msg_key: [u8; 16] = mkb.try_into().map_err(|_| E2eError::Rejected)?;
        if ct.len() < 32 || ct.len() % 16 != 0 {
            return Err(E2eError::Rejected);
        }
        let dir = self.dir_out().reverse();
        // Which key: the current one, the previous one during a re-key, or the pending one (item 63).
        let which = if fp == self.key.fingerprint() {
            KeySel::Current
        } else if self.old_key.as_ref().is_some_and(|(k, _)| k.fingerprint() == fp) {
            KeySel::Old
        } else if match &self.rekey {
            Rekey::Accepted { key, .. } | Rekey::Committing { key, .. } => key.fingerprint() == fp,
            _ => false,
        } {
            KeySel::Pending
        } else {
            return Err(E2eError::Rejected);
        };
        let key = match (&which, &self.rekey, &self.old_key) {
            (KeySel::Current, _, _) => &self.key.key,
            (KeySel::Old, _, Some((k, _))) => &k.key,
            (KeySel::Pending, Rekey::Accepted { key, .. } | Rekey::Committing { key, .. }, _) => &key.key,
            _ => return Err(E2eError::Rejected),
        };
        open_v2(key, dir, &msg_key, ct).map_err(|_| E2eError::Rejected)?;
        let (lenb, rest) = ct.split_at(4);
        let len = u32::from_le_bytes(lenb.try_into().map_err(|_| E2eError::Rejected)?) as usize;
        if !len.is_multiple_of(4) || len > rest.len() || !(MIN_PADDING..=MAX_PADDING).contains(&(rest.len() - len)) {
            return Err(E2eError::Rejected);
        }
        let payload: &'b [u8] = rest.get(..len).ok_or(E2eError::Rejected)?;
        let layer = MessageLayer::decode(payload).map_err(|_| E2eError::Rejected)?;
        match which {
            KeySel::Current => self.key.used = self.key.used.saturating_add(1),
            KeySel::Old => {
                if let Some((k, _)) = self.old_key.as_mut() {
                    k.used = k.used.saturating_add(1);
                }
            }
            KeySel::Pending => {}
        }
        let new_key = matches!(which, KeySel::Current);

        let (o_raw, i_raw) = self.check_parity(&layer)?;
        if o_raw < self.in_raw {
            return Ok(Received::Duplicate);
        }
        if o_raw > self.in_raw {
            return self.hold(now, o_raw, &layer, payload, fp);
        }
        let delivered = self.process(&layer, i_raw, new_key)?;
        self.release()?;
        self.after_inbound();
        Ok(Received::Message(delivered))
    }

    fn check_parity(&mut self, layer: &MessageLayer<'_>) -> Result<(u32, u32), E2eError> {
        let o = layer.out_seq_no;
        let i = layer.in_seq_no;
        let ok = o >= 0 && i >= 0 && (o as u32) & 1 == self.x_in() && (i as u32) & 1 == self.x_out();
        if !ok {
            self.do_abort(AbortReason::SeqParity);
            return Err(E2eError::Aborted(AbortReason::SeqParity));
        }
        Ok(((o as u32) >> 1, (i as u32) >> 1))
    }

    fn hold(
        &mut self,
        now: Instant,
        o_raw: u32,
        layer: &MessageLayer<'_>,
        payload: &[u8],
        key_fp: i64,
    ) -> Result<Received<'static>, E2eError> {
        if self.held.iter().flatten().any(|h| h.raw == o_raw) {
            return Ok(Received::Duplicate);
        }
        let mut data: Vec<u8, MSG> = Vec::new();
        if data.extend_from_slice(payload).is_err() {
            // Too large to hold: make it part of the hole in front of it, so one resend request covers both.
            let start = self.in_raw.max(self.asked_until);
            if o_raw >= start && self.tx.push_back(Tx::ResendRequest { start, end: o_raw }).is_ok() {
                self.asked_until = o_raw + 1;
                self.last_ask = now;
            }
            return Ok(Received::Deferred);
        }
        let Some(slot) = self.held.iter_mut().find(|h| h.is_none()) else {
            self.do_abort(AbortReason::HeldFull);
            return Err(E2eError::Aborted(AbortReason::HeldFull));
        };
        let mut handled = false;
        // A resend request is acted on at once, even out of order (the seq_no page's exception), and only once.
        if let Some(Action::Resend {
            start_seq_no,
            end_seq_no,
        }) = layer.message.action()
        {
            handled = true;
            *slot = Some(Held {
                raw: o_raw,
                released: false,
                handled,
                key_fp,
                data,
            });
            self.handle_resend(*start_seq_no, *end_seq_no)?;
        } else {
            *slot = Some(Held {
                raw: o_raw,
                released: false,
                handled,
                key_fp,
                data,
            });
        }
        if o_raw >= self.asked_until {
            let had = self.asked_until;
            self.request_holes();
            if self.asked_until != had {
                self.last_ask = now;
            }
        }
        self.check_live()?;
        Ok(Received::Held)
    }

    /// Processes the next in-order message.
    fn process<'m>(&mut self, layer: &MessageLayer<'m>, i_raw: u32, new_key: bool) -> Result<Delivered<'m>, E2eError> {
        self.process_inner(layer, i_raw, new_key, false)
    }

    fn process_inner<'m>(
        &mut self,
        layer: &MessageLayer<'m>,
        i_raw: u32,
        new_key: bool,
        resend_handled: bool,
    ) -> Result<Delivered<'m>, E2eError> {
        if i_raw < self.peer_in_raw || i_raw > self.out_raw {
            self.do_abort(AbortReason::InSeq);
            return Err(E2eError::Aborted(AbortReason::InSeq));
        }
        self.peer_in_raw = i_raw;
        self.update_layer(layer.layer)?;
        let o_raw = self.in_raw;
        self.in_raw = self.in_raw.wrapping_add(1);
        // A: the first in-order message under the new key means the peer switched; the old key can go (item 72).
        if new_key && matches!(&self.old_key, Some((_, OldDrop::AfterFirstNew))) {
            self.drop_old_key();
        }
        if let Some(action) = layer.message.action() {
            match *action {
                Action::Resend {
                    start_seq_no,
                    end_seq_no,
                } if !resend_handled => self.handle_resend(start_seq_no, end_seq_no)?,
                Action::NotifyLayer(l) => self.update_layer(l)?,
                Action::RequestKey { exchange_id, g_a } => self.on_request_key(exchange_id, g_a),
                Action::AcceptKey {
                    exchange_id,
                    g_b,
                    key_fingerprint,
                } => self.on_accept_key(exchange_id, g_b, key_fingerprint),
                Action::CommitKey {
                    exchange_id,
                    key_fingerprint,
                } => self.on_commit_key(exchange_id, key_fingerprint),
                Action::AbortKey(ex) => self.on_abort_key(ex),
                _ => {}
            }
        }
        self.check_live()?;
        Ok(Delivered {
            out_seq_no: o_raw,
            in_seq_no: i_raw,
            layer: layer.layer,
            message: layer.message,
        })
    }

    fn update_layer(&mut self, l: i32) -> Result<(), E2eError> {
        if l < self.peer_layer {
            self.do_abort(AbortReason::LayerDecreased);
            return Err(E2eError::Aborted(AbortReason::LayerDecreased));
        }
        if l > self.peer_layer {
            self.peer_layer = l;
            self.push_ev(Ev::PeerLayer(l));
        }
        Ok(())
    }

    fn handle_resend(&mut self, start: i32, end: i32) -> Result<(), E2eError> {
        let x = self.x_out() as i32;
        let valid = start >= 0 && end >= start && start & 1 == x && end & 1 == x;
        let (s, e) = ((start as u32) >> 1, (end as u32) >> 1);
        if !valid || e - s >= MAX_RESEND_COUNT || e >= self.out_raw {
            self.do_abort(AbortReason::ResendInvalid);
            return Err(E2eError::Aborted(AbortReason::ResendInvalid));
        }
        let slot_ok = |r: u32| matches!(self.history.get((r as usize) % HIST.max(1)), Some(Some(st)) if st.raw == r);
        if !(s..=e).all(slot_ok) {
            self.do_abort(AbortReason::ResendUnavailable);
            return Err(E2eError::Aborted(AbortReason::ResendUnavailable));
        }
        self.push_tx(Tx::Retransmit { next: s, end: e });
        self.check_live()
    }

    /// Delivers held messages that are now in order.
    fn release(&mut self) -> Result<(), E2eError> {
        loop {
            let next = self.in_raw;
            let Some(idx) = self
                .held
                .iter()
                .position(|h| matches!(h, Some(h) if !h.released && h.raw == next))
            else {
                return Ok(());
            };
            let Some(Some(mut h)) = self.held.get_mut(idx).map(Option::take) else {
                return Ok(());
            };
            // It decoded when it was held; should it not now, the slot is dropped and the hole asked for again.
            let result = match MessageLayer::decode(&h.data) {
                Ok(layer) => {
                    let i_raw = (layer.in_seq_no as u32) >> 1;
                    let new_key = h.key_fp == self.key.fingerprint();
                    self.process_inner(&layer, i_raw, new_key, h.handled).map(|_| true)
                }
                Err(_) => Ok(false),
            };
            match result {
                Ok(true) => {
                    if let Some(s) = self.held.get_mut(idx) {
                        *s = Some(Held { released: true, ..h });
                    }
                }
                Ok(false) => h.zeroize(),
                Err(e) => {
                    // A violation aborted the chat: nothing of it is handed out.
                    h.zeroize();
                    return Err(e);
                }
            }
            self.check_live()?;
        }
    }

    fn after_inbound(&mut self) {
        if matches!(&self.old_key, Some((_, OldDrop::WhenNoGaps))) && self.held_count() == 0 {
            self.drop_old_key();
        }
    }

    fn drop_old_key(&mut self) {
        // ChatKey's AuthKey zeroizes itself on drop.
        self.old_key = None;
    }

    fn free_released(&mut self) {
        if let Some(mut h) = self
            .releasing
            .take()
            .and_then(|idx| self.held.get_mut(idx))
            .and_then(Option::take)
        {
            h.zeroize();
        }
    }

    /// The next event. A [`Event::Message`] borrows the chat until the next call.
    ///
    /// Released held messages come first, in seq order, then the other events in the order they happened.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.free_released();
        let next = self
            .held
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().filter(|h| h.released).map(|h| (h.raw, i)))
            .min();
        if let Some((raw, idx)) = next {
            self.releasing = Some(idx);
            let h = self.held.get(idx)?.as_ref()?;
            if let Ok(layer) = MessageLayer::decode(&h.data) {
                return Some(Event::Message(Delivered {
                    out_seq_no: raw,
                    in_seq_no: (layer.in_seq_no as u32) >> 1,
                    layer: layer.layer,
                    message: layer.message,
                }));
            }
        }
        let ev = self.events.pop_front()?;
        Some(match ev {
            Ev::PeerLayer(l) => Event::PeerLayer(l),
            Ev::RekeyDone(fp) => Event::RekeyDone(fp),
            Ev::RekeyAborted(ex) => Event::RekeyAborted(ex),
            Ev::Aborted(r) => Event::Aborted(r),
        })
    }

    // ---------------------------------------------------------------- re-key (items 70-72)

    fn on_request_key(&mut self, exchange_id: i64, g_a: &[u8]) {
        match &self.rekey {
            Rekey::Requested { exchange_id: mine, .. } => {
                let mine = *mine;
                if mine > exchange_id {
                    // Ours wins; the peer drops its request when it sees ours.
                    return;
                }
                // Smaller (or equal) id: ours is dropped silently; equal ids drop both.
                self.rekey = Rekey::Idle;
                self.push_ev(Ev::RekeyAborted(mine));
                if mine == exchange_id {
                    return;
                }
            }
            Rekey::Idle if self.old_key.is_none() => {}
            _ => {
                // Never two re-keys at once (item 70).
                self.push_tx(Tx::AbortKey(exchange_id));
                return;
            }
        }
        if self.group.check_public(g_a).is_err() {
            self.push_tx(Tx::AbortKey(exchange_id));
            return;
        }
        // b needs randomness, which only `poll_transmit` has: the key is computed when AcceptKey is sent.
        let mut g = Zeroizing::new([0u8; DH_BYTES]);
        match crate::crypto::dh::normalize_be(g_a) {
            Ok(v) => g.copy_from_slice(&v),
            Err(_) => {
                self.push_tx(Tx::AbortKey(exchange_id));
                return;
            }
        }
        self.rekey = Rekey::Incoming { exchange_id, g_a: g };
        self.push_tx(Tx::AcceptKey);
    }

    fn on_accept_key(&mut self, exchange_id: i64, g_b: &[u8], fp: i64) {
        let Rekey::Requested {
            exchange_id: mine,
            secret,
            ..
        } = &self.rekey
        else {
            return;
        };
        if *mine != exchange_id {
            return;
        }
        let key = match self.group.shared(secret, g_b) {
            Ok(shared) => ChatKey::new(&shared, self.clock),
            Err(_) => {
                self.rekey = Rekey::Idle;
                self.push_tx(Tx::AbortKey(exchange_id));
                self.push_ev(Ev::RekeyAborted(exchange_id));
                return;
            }
        };
        if key.fingerprint() != fp {
            self.rekey = Rekey::Idle;
            self.push_tx(Tx::AbortKey(exchange_id));
            self.push_ev(Ev::RekeyAborted(exchange_id));
            return;
        }
        self.rekey = Rekey::Committing { exchange_id, key };
        self.push_tx(Tx::CommitKey);
    }

    fn on_commit_key(&mut self, exchange_id: i64, fp: i64) {
        let Rekey::Accepted {
            exchange_id: mine, key, ..
        } = &self.rekey
        else {
            return;
        };
        if *mine != exchange_id {
            return;
        }
        if key.fingerprint() != fp {
            self.rekey = Rekey::Idle;
            self.push_tx(Tx::AbortKey(exchange_id));
            self.push_ev(Ev::RekeyAborted(exchange_id));
            return;
        }
        if let Rekey::Accepted { key, .. } = core::mem::replace(&mut self.rekey, Rekey::Idle) {
            let old = core::mem::replace(&mut self.key, key);
            self.old_key = Some((old, OldDrop::WhenNoGaps));
            let fp = self.key.fingerprint();
            self.push_ev(Ev::RekeyDone(fp));
            // Let A see a message under the new key so it can drop the old one (item 72).
            self.push_tx(Tx::Noop);
        }
    }

    fn on_abort_key(&mut self, exchange_id: i64) {
        if self.rekey.exchange_id() == Some(exchange_id) {
            self.rekey = Rekey::Idle;
            self.push_ev(Ev::RekeyAborted(exchange_id));
        }
    }
}

enum KeySel {
    Current,
    Old,
    Pending,
}

/// Extra random 16-byte padding blocks added on top of the minimum (bounded so padding stays ≤ 1024).
const MAX_EXTRA_BLOCKS: usize = 3;
