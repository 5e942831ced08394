//! Persisted state: a versioned, fixed-layout byte encoding of a [`SecretChat`] that a host stores so the chat
//! survives a restart (keys, counters, history, held messages, queues).
//!
//! Layout (all integers little-endian): magic `MTPE2E`, format version, the three capacities, then every field at a
//! fixed offset, so [`SecretChat::persisted_len`] is a constant of the type. The bytes contain the chat keys: the host
//! must store them encrypted (or in a secure element) and wipe its copies.
//!
//! One thing is not persisted: the DH exponent of a re-key this side requested and that is still waiting for
//! AcceptKey (`crypto::dh::DhSecret` does not export its bytes). On restore that exchange is aborted with
//! `decryptedMessageActionAbortKey` and a later re-key starts afresh.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heapless::{Deque, Vec};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{AbortReason, ChatKey, E2eError, Ev, Held, OldDrop, Rekey, SecretChat, Stored, Tx};
use crate::crypto::auth_key::AUTH_KEY_LEN;
use crate::crypto::dh::{DH_BYTES, PrimeCache, check_group};
use crate::e2e::{EVENT_QUEUE, TX_QUEUE};
use crate::time::Instant;

const MAGIC: &[u8; 6] = b"MTPE2E";
/// Format version written by [`SecretChat::persist`].
pub const PERSIST_VERSION: u8 = 1;

const KEY_LEN: usize = AUTH_KEY_LEN + 8 + 4 + 4;
const HEADER: usize = 6 + 1 + 12;
const FIXED: usize = 4 + 1 + 1 // chat_id, originator, aborted
    + 4 + DH_BYTES // g, p
    + KEY_LEN // key
    + 1 + KEY_LEN + 1 // old key
    + 1 + 8 + DH_BYTES + KEY_LEN // rekey
    + 36 // visual
    + 4 * 5 + 8 + 8 // peer_layer, out, in, peer_in, asked_until, last_ask, clock
    + 1 + TX_QUEUE * 17
    + 1 + EVENT_QUEUE * 9;

/// Why persisted bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RestoreError {
    /// Wrong magic, version or capacities, or a truncated buffer.
    Format,
    /// A field is out of range.
    Corrupt,
    /// The stored DH group no longer passes the checks.
    Group,
}

impl core::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RestoreError::Format => "persisted secret chat: wrong format or capacities",
            RestoreError::Corrupt => "persisted secret chat: corrupt field",
            RestoreError::Group => "persisted secret chat: DH group rejected",
        })
    }
}

impl core::error::Error for RestoreError {}

struct W<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl W<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(d) = self.buf.get_mut(self.pos..self.pos + b.len()) {
            d.copy_from_slice(b);
        }
        self.pos += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    fn zeros(&mut self, n: usize) {
        if let Some(d) = self.buf.get_mut(self.pos..self.pos + n) {
            d.fill(0);
        }
        self.pos += n;
    }
    fn key(&mut self, k: Option<&ChatKey>) {
        match k {
            Some(k) => {
                self.put(k.key.as_bytes());
                self.u64(k.since.as_micros());
                self.u32(k.used);
                self.u32(k.encrypted);
            }
            None => self.zeros(KEY_LEN),
        }
    }
}

struct R<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RestoreError> {
        let s = self.buf.get(self.pos..self.pos + n).ok_or(RestoreError::Format)?;
        self.pos += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], RestoreError> {
        self.take(N)?.try_into().map_err(|_| RestoreError::Format)
    }
    fn u8(&mut self) -> Result<u8, RestoreError> {
        Ok(u8::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, RestoreError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, RestoreError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn key(&mut self) -> Result<ChatKey, RestoreError> {
        let mut bytes = Zeroizing::new([0u8; AUTH_KEY_LEN]);
        bytes.copy_from_slice(self.take(AUTH_KEY_LEN)?);
        let mut k = ChatKey::new(&bytes, Instant::from_micros(self.u64()?));
        k.used = self.u32()?;
        k.encrypted = self.u32()?;
        Ok(k)
    }
}

fn reason_code(r: AbortReason) -> u8 {
    match r {
        AbortReason::SeqParity => 1,
        AbortReason::InSeq => 2,
        AbortReason::LayerDecreased => 3,
        AbortReason::ResendInvalid => 4,
        AbortReason::ResendUnavailable => 5,
        AbortReason::HeldFull => 6,
        AbortReason::QueueFull => 7,
        AbortReason::Local => 8,
    }
}

fn reason_from(c: u8) -> Result<Option<AbortReason>, RestoreError> {
    Ok(Some(match c {
        0 => return Ok(None),
        1 => AbortReason::SeqParity,
        2 => AbortReason::InSeq,
        3 => AbortReason::LayerDecreased,
        4 => AbortReason::ResendInvalid,
        5 => AbortReason::ResendUnavailable,
        6 => AbortReason::HeldFull,
        7 => AbortReason::QueueFull,
        8 => AbortReason::Local,
        _ => return Err(RestoreError::Corrupt),
    }))
}

impl<const MSG: usize, const HIST: usize, const HELD: usize> SecretChat<MSG, HIST, HELD> {
    /// Exact size of [`SecretChat::persist`]'s output for this type.
    pub const fn persisted_len() -> usize {
        HEADER + FIXED + HIST * (1 + 4 + 1 + 8 + 4 + MSG) + HELD * (1 + 4 + 1 + 1 + 8 + 4 + MSG)
    }

    /// Writes the whole state into `out` (see the module docs); returns the length. The output contains the keys.
    pub fn persist(&self, out: &mut [u8]) -> Result<usize, E2eError> {
        let required = Self::persisted_len();
        if out.len() < required {
            return Err(E2eError::BufferTooSmall { required });
        }
        let mut w = W { buf: out, pos: 0 };
        w.put(MAGIC);
        w.u8(PERSIST_VERSION);
        w.u32(MSG as u32);
        w.u32(HIST as u32);
        w.u32(HELD as u32);
        w.put(&self.chat_id.to_le_bytes());
        w.u8(u8::from(self.originator));
        w.u8(self.aborted.map_or(0, reason_code));
        w.u32(self.group.g());
        w.put(&self.group.prime_bytes());
        w.key(Some(&self.key));
        match &self.old_key {
            Some((k, d)) => {
                w.u8(1);
                w.key(Some(k));
                w.u8(u8::from(*d == OldDrop::WhenNoGaps));
            }
            None => {
                w.u8(0);
                w.key(None);
                w.u8(0);
            }
        }
        match &self.rekey {
            Rekey::Idle => {
                w.u8(0);
                w.zeros(8 + DH_BYTES);
                w.key(None);
            }
            Rekey::Requested { exchange_id, .. } => {
                w.u8(1);
                w.put(&exchange_id.to_le_bytes());
                w.zeros(DH_BYTES);
                w.key(None);
            }
            Rekey::Incoming { exchange_id, g_a } => {
                w.u8(2);
                w.put(&exchange_id.to_le_bytes());
                w.put(&g_a[..]);
                w.key(None);
            }
            Rekey::Accepted { exchange_id, g_b, key } => {
                w.u8(3);
                w.put(&exchange_id.to_le_bytes());
                w.put(g_b);
                w.key(Some(key));
            }
            Rekey::Committing { exchange_id, key } => {
                w.u8(4);
                w.put(&exchange_id.to_le_bytes());
                w.zeros(DH_BYTES);
                w.key(Some(key));
            }
        }
        w.put(&self.visual);
        w.put(&self.peer_layer.to_le_bytes());
        w.u32(self.out_raw);
        w.u32(self.in_raw);
        w.u32(self.peer_in_raw);
        w.u32(self.asked_until);
        w.u64(self.last_ask.as_micros());
        w.u64(self.clock.as_micros());
        w.u8(self.tx.len() as u8);
        for i in 0..TX_QUEUE {
            let (tag, a, b, ex) = match self.tx.iter().nth(i) {
                None => (0u8, 0, 0, 0i64),
                Some(Tx::NotifyLayer) => (1, 0, 0, 0),
                Some(Tx::ResendRequest { start, end }) => (2, *start, *end, 0),
                Some(Tx::Retransmit { next, end }) => (3, *next, *end, 0),
                Some(Tx::RequestKey) => (4, 0, 0, 0),
                Some(Tx::AcceptKey) => (5, 0, 0, 0),
                Some(Tx::CommitKey) => (6, 0, 0, 0),
                Some(Tx::AbortKey(ex)) => (7, 0, 0, *ex),
                Some(Tx::Noop) => (8, 0, 0, 0),
            };
            w.u8(tag);
            w.u32(a);
            w.u32(b);
            w.put(&ex.to_le_bytes());
        }
        w.u8(self.events.len() as u8);
        for i in 0..EVENT_QUEUE {
            let (tag, v) = match self.events.iter().nth(i) {
                None => (0u8, 0i64),
                Some(Ev::PeerLayer(l)) => (1, i64::from(*l)),
                Some(Ev::RekeyDone(f)) => (2, *f),
                Some(Ev::RekeyAborted(e)) => (3, *e),
                Some(Ev::Aborted(r)) => (4, i64::from(reason_code(*r))),
            };
            w.u8(tag);
            w.put(&v.to_le_bytes());
        }
        for s in self.history.iter() {
            match s {
                Some(s) => {
                    w.u8(1);
                    w.u32(s.raw);
                    w.u8(u8::from(s.service));
                    w.put(&s.random_id.to_le_bytes());
                    w.u32(s.data.len() as u32);
                    w.put(&s.data);
                    w.zeros(MSG - s.data.len());
                }
                None => w.zeros(1 + 4 + 1 + 8 + 4 + MSG),
            }
        }
        for h in self.held.iter() {
            match h {
                Some(h) => {
                    w.u8(1);
                    w.u32(h.raw);
                    w.u8(u8::from(h.released));
                    w.u8(u8::from(h.handled));
                    w.put(&h.key_fp.to_le_bytes());
                    w.u32(h.data.len() as u32);
                    w.put(&h.data);
                    w.zeros(MSG - h.data.len());
                }
                None => w.zeros(1 + 4 + 1 + 1 + 8 + 4 + MSG),
            }
        }
        Ok(w.pos)
    }

    /// Rebuilds a chat from [`SecretChat::persist`] output. The DH group is re-checked (instant for Telegram's
    /// prime; Miller–Rabin with bases from `rng` otherwise).
    pub fn restore<Rn: CryptoRng + ?Sized>(bytes: &[u8], rng: &mut Rn) -> Result<Self, RestoreError> {
        if bytes.len() != Self::persisted_len() {
            return Err(RestoreError::Format);
        }
        let mut r = R { buf: bytes, pos: 0 };
        if r.take(6)? != MAGIC
            || r.u8()? != PERSIST_VERSION
            || r.u32()? != MSG as u32
            || r.u32()? != HIST as u32
            || r.u32()? != HELD as u32
        {
            return Err(RestoreError::Format);
        }
        let chat_id = i32::from_le_bytes(r.arr()?);
        let originator = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(RestoreError::Corrupt),
        };
        let aborted = reason_from(r.u8()?)?;
        let g = r.u32()?;
        let p: [u8; DH_BYTES] = r.arr()?;
        let mut cache: PrimeCache<1> = PrimeCache::default();
        let group = check_group(&p, g, &mut cache, rng).map_err(|_| RestoreError::Group)?;
        let key = r.key()?;
        let old_flag = r.u8()?;
        let old = r.key()?;
        let drop = if r.u8()? == 1 {
            OldDrop::WhenNoGaps
        } else {
            OldDrop::AfterFirstNew
        };
        let old_key = if old_flag == 1 { Some((old, drop)) } else { None };
        let tag = r.u8()?;
        let exchange_id = i64::from_le_bytes(r.arr()?);
        let mut g_x = Zeroizing::new([0u8; DH_BYTES]);
        g_x.copy_from_slice(r.take(DH_BYTES)?);
        let pending = r.key()?;
        let mut abort_requested = None;
        let rekey = match tag {
            0 => Rekey::Idle,
            1 => {
                abort_requested = Some(exchange_id);
                Rekey::Idle
            }
            2 => Rekey::Incoming {
                exchange_id,
                g_a: Zeroizing::new(*g_x),
            },
            3 => Rekey::Accepted {
                exchange_id,
                g_b: *g_x,
                key: pending,
            },
            4 => Rekey::Committing {
                exchange_id,
                key: pending,
            },
            _ => return Err(RestoreError::Corrupt),
        };
        let visual: [u8; 36] = r.arr()?;
        let peer_layer = i32::from_le_bytes(r.arr()?);
        let out_raw = r.u32()?;
        let in_raw = r.u32()?;
        let peer_in_raw = r.u32()?;
        let asked_until = r.u32()?;
        let last_ask = Instant::from_micros(r.u64()?);
        let clock = Instant::from_micros(r.u64()?);
        let ntx = usize::from(r.u8()?);
        let mut tx: Deque<Tx, TX_QUEUE> = Deque::new();
        for i in 0..TX_QUEUE {
            let tag = r.u8()?;
            let a = r.u32()?;
            let b = r.u32()?;
            let ex = i64::from_le_bytes(r.arr()?);
            if i >= ntx {
                continue;
            }
            let t = match tag {
                1 => Tx::NotifyLayer,
                2 => Tx::ResendRequest { start: a, end: b },
                3 => Tx::Retransmit { next: a, end: b },
                4 => Tx::RequestKey,
                5 => Tx::AcceptKey,
                6 => Tx::CommitKey,
                7 => Tx::AbortKey(ex),
                8 => Tx::Noop,
                _ => return Err(RestoreError::Corrupt),
            };
            tx.push_back(t).map_err(|_| RestoreError::Corrupt)?;
        }
        if let Some(ex) = abort_requested {
            tx.push_back(Tx::AbortKey(ex)).map_err(|_| RestoreError::Corrupt)?;
        }
        let nev = usize::from(r.u8()?);
        let mut events: Deque<Ev, EVENT_QUEUE> = Deque::new();
        for i in 0..EVENT_QUEUE {
            let tag = r.u8()?;
            let v = i64::from_le_bytes(r.arr()?);
            if i >= nev {
                continue;
            }
            let e = match tag {
                1 => Ev::PeerLayer(i32::try_from(v).map_err(|_| RestoreError::Corrupt)?),
                2 => Ev::RekeyDone(v),
                3 => Ev::RekeyAborted(v),
                4 => Ev::Aborted(
                    reason_from(u8::try_from(v).map_err(|_| RestoreError::Corrupt)?)?.ok_or(RestoreError::Corrupt)?,
                ),
                _ => return Err(RestoreError::Corrupt),
            };
            events.push_back(e).map_err(|_| RestoreError::Corrupt)?;
        }
        let mut history: [Option<Stored<MSG>>; HIST] = [const { None }; HIST];
        for slot in history.iter_mut() {
            let flag = r.u8()?;
            let raw = r.u32()?;
            let service = r.u8()? == 1;
            let random_id = i64::from_le_bytes(r.arr()?);
            let len = r.u32()? as usize;
            let data = r.take(MSG)?;
            if flag == 1 {
                let mut v: Vec<u8, MSG> = Vec::new();
                v.extend_from_slice(data.get(..len).ok_or(RestoreError::Corrupt)?)
                    .map_err(|_| RestoreError::Corrupt)?;
                *slot = Some(Stored {
                    raw,
                    service,
                    random_id,
                    data: v,
                });
            }
        }
        let mut held: [Option<Held<MSG>>; HELD] = [const { None }; HELD];
        for slot in held.iter_mut() {
            let flag = r.u8()?;
            let raw = r.u32()?;
            let released = r.u8()? == 1;
            let handled = r.u8()? == 1;
            let key_fp = i64::from_le_bytes(r.arr()?);
            let len = r.u32()? as usize;
            let data = r.take(MSG)?;
            if flag == 1 {
                let mut v: Vec<u8, MSG> = Vec::new();
                v.extend_from_slice(data.get(..len).ok_or(RestoreError::Corrupt)?)
                    .map_err(|_| RestoreError::Corrupt)?;
                *slot = Some(Held {
                    raw,
                    released,
                    handled,
                    key_fp,
                    data: v,
                });
            }
        }
        let mut chat = SecretChat {
            chat_id,
            originator,
            aborted,
            group,
            key,
            old_key,
            rekey,
            visual,
            peer_layer,
            out_raw,
            in_raw,
            peer_in_raw,
            asked_until,
            last_ask,
            clock,
            history,
            held,
            tx,
            events,
            releasing: None,
        };
        if chat.aborted.is_some() {
            chat.tx.clear();
        }
        Ok(chat)
    }
}
