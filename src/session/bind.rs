//! Perfect forward secrecy: binding a temporary auth key to the permanent one with `auth.bindTempAuthKey`
//! (<https://core.telegram.org/api/pfs>, docs/CHECKLIST.md items 40 and 53).
//!
//! The client sends, **on the temporary key's session**, `auth.bindTempAuthKey { perm_auth_key_id, nonce,
//! expires_at, encrypted_message }`, where `encrypted_message` is an MTProto **1.0** message under the permanent
//! key: `random:int128 ‖ msg_id ‖ seq_no = 0 ‖ msg_len = 40 ‖ bind_auth_key_inner`, its msg_id equal to the outer
//! request's. This is the only place MTProto 1.0 is used. The DC checks every inner field against the outer
//! request and the session it arrived on ([`verify_bind`]).
//!
//! Host policy left to the host (it owns the key store): a DC keeps one temp key per permanent key; a client drops
//! both keys on `ENCRYPTED_MESSAGE_INVALID` with a permanent key older than 60 s, and recreates and rebinds the
//! temporary key on −404 ([`Event::TransportError`](super::Event::TransportError)).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use rand_core::CryptoRng;

use super::MsgId;
use crate::crypto::auth_key::AuthKey;
use crate::crypto::packet::{self, INNER_HEADER_LEN};
use crate::time::UnixTime;
use crate::tl::{AuthBindTempAuthKey, BindAuthKeyInner, TlRead, TlWrite, Writer};

/// Length of a serialized `bind_auth_key_inner` (constructor, four longs, one int).
pub const BIND_INNER_LEN: usize = 40;
/// Length of the MTProto 1.0 plaintext carrying it (random, msg_id, seq_no, msg_len, inner).
pub const BIND_PLAINTEXT_LEN: usize = INNER_HEADER_LEN + BIND_INNER_LEN;
/// Length of `encrypted_message`: auth_key_id, msg_key, the plaintext padded to 16.
pub const BIND_ENCRYPTED_LEN: usize = packet::OUTER_HEADER_LEN + BIND_PLAINTEXT_LEN.next_multiple_of(16);
/// Length of the whole `auth.bindTempAuthKey` body.
pub const BIND_BODY_LEN: usize = 4 + 8 + 8 + 4 + 4 + BIND_ENCRYPTED_LEN;
/// Longest binding a DC accepts, in seconds from now (derived: a temp key is meant to live hours or days).
pub const MAX_BIND_LIFETIME: u64 = 366 * 24 * 3600;

/// What a binding asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BindParams {
    /// The temporary key's id (the session's key).
    pub temp_auth_key_id: u64,
    /// The temporary key's session id.
    pub temp_session_id: u64,
    /// Unix time the binding expires (the temp key's expiry).
    pub expires_at: i32,
}

/// Why a binding was refused. The DC answers every cause alike (`ENCRYPTED_MESSAGE_INVALID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BindError {
    /// The body is not a well-formed `auth.bindTempAuthKey`.
    Malformed,
    /// `perm_auth_key_id` does not name the permanent key supplied.
    WrongPermKey,
    /// The MTProto 1.0 message failed decryption or its msg_key check.
    Rejected,
    /// An inner field disagrees with the outer request or the session (msg_id, seq_no, length, nonce, key ids,
    /// session id, expiry).
    Mismatch,
    /// `expires_at` is in the past or too far ahead.
    BadExpiry,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindError::Malformed => "malformed auth.bindTempAuthKey",
            BindError::WrongPermKey => "binding names another permanent key",
            BindError::Rejected => "binding message failed decryption",
            BindError::Mismatch => "binding message disagrees with its request",
            BindError::BadExpiry => "binding expiry out of range",
        })
    }
}

impl core::error::Error for BindError {}

/// Client: writes the `auth.bindTempAuthKey` body for the request whose msg_id will be `msg_id` into `out`
/// (exactly [`BIND_BODY_LEN`] bytes); `nonce` and the 1.0 message's random prefix and padding come from `rng`.
pub fn write_bind_request<R: CryptoRng + ?Sized>(
    perm_key: &AuthKey,
    params: &BindParams,
    msg_id: MsgId,
    rng: &mut R,
    out: &mut [u8],
) -> Result<(), BindError> {
    let nonce = rng.next_u64() as i64;
    let inner = BindAuthKeyInner {
        nonce,
        temp_auth_key_id: params.temp_auth_key_id as i64,
        perm_auth_key_id: perm_key.id() as i64,
        temp_session_id: params.temp_session_id as i64,
        expires_at: params.expires_at,
    };
    let mut plain = [0u8; BIND_PLAINTEXT_LEN];
    {
        let (head, body) = plain.split_at_mut(INNER_HEADER_LEN);
        let (random, rest) = head.split_at_mut(16);
        rng.fill_bytes(random);
        let mut w = Writer::new(rest);
        w.u64(msg_id.0).map_err(|_| BindError::Malformed)?;
        w.u32(0).map_err(|_| BindError::Malformed)?;
        w.u32(BIND_INNER_LEN as u32).map_err(|_| BindError::Malformed)?;
        inner.write(&mut Writer::new(body)).map_err(|_| BindError::Malformed)?;
    }
    let mut enc = [0u8; BIND_ENCRYPTED_LEN];
    let n = packet::encrypt_v1_bind(perm_key, &plain, rng, &mut enc).map_err(|_| BindError::Malformed)?;
    let req = AuthBindTempAuthKey {
        perm_auth_key_id: perm_key.id() as i64,
        nonce,
        expires_at: params.expires_at,
        encrypted_message: enc.get(..n).ok_or(BindError::Malformed)?,
    };
    let dst = out.get_mut(..req.tl_len()).ok_or(BindError::Malformed)?;
    req.write(&mut Writer::new(dst)).map_err(|_| BindError::Malformed)
}

/// The `perm_auth_key_id` a bind request names, so a DC host can look the permanent key up before
/// [`verify_bind`].
pub fn bind_perm_key_id(body: &[u8]) -> Option<u64> {
    AuthBindTempAuthKey::decode(body)
        .ok()
        .map(|r| r.perm_auth_key_id as u64)
}

/// DC: verifies a bind request `body` received as the query `req_msg_id` on the session `session` (key id and
/// session id) at Unix time `now`, against the permanent key `perm_key` the host found (item 53). Every inner field
/// must equal its outer or session counterpart: the 1.0 message's msg_id equals the request's, seq_no is 0, msg_len
/// is 40, nonce, both key ids, the temp session id and expires_at agree, and expires_at lies in
/// `(now, now + MAX_BIND_LIFETIME]`.
pub fn verify_bind(
    perm_key: &AuthKey,
    session: &BindParams,
    req_msg_id: MsgId,
    body: &[u8],
    now: UnixTime,
) -> Result<BindParams, BindError> {
    let req = AuthBindTempAuthKey::decode(body).map_err(|_| BindError::Malformed)?;
    if req.perm_auth_key_id as u64 != perm_key.id() {
        return Err(BindError::WrongPermKey);
    }
    let mut enc = [0u8; BIND_ENCRYPTED_LEN];
    let dst = enc.get_mut(..req.encrypted_message.len()).ok_or(BindError::Malformed)?;
    dst.copy_from_slice(req.encrypted_message);
    let m = packet::decrypt_v1_bind(perm_key, dst).map_err(|_| BindError::Rejected)?;
    if m.msg_id() != req_msg_id.0 || m.seq_no() != 0 || m.body().len() != BIND_INNER_LEN {
        return Err(BindError::Mismatch);
    }
    let inner = BindAuthKeyInner::decode(m.body()).map_err(|_| BindError::Mismatch)?;
    if inner.nonce != req.nonce
        || inner.perm_auth_key_id != req.perm_auth_key_id
        || inner.temp_auth_key_id as u64 != session.temp_auth_key_id
        || inner.temp_session_id as u64 != session.temp_session_id
        || inner.expires_at != req.expires_at
    {
        return Err(BindError::Mismatch);
    }
    let exp = u64::try_from(req.expires_at).map_err(|_| BindError::BadExpiry)?;
    if exp <= now.0 || exp > now.0.saturating_add(MAX_BIND_LIFETIME) {
        return Err(BindError::BadExpiry);
    }
    Ok(BindParams {
        expires_at: req.expires_at,
        ..*session
    })
}
