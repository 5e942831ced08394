//! Fuzz entry points for perfect forward secrecy: the PFS policy's query inspection
//! ([`crate::session::pfs::inner_method`]), the parser that decides whether an unbound temporary key may carry a
//! query, and the DC's check of a binding ([`crate::session::bind::verify_bind`]).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding

use crate::fuzzing::SeededRng;
use crate::fuzzing::crypto::fuzz_auth_key;
use crate::session::MsgId;
use crate::session::bind::{BIND_BODY_LEN, BindParams, MAX_BIND_LIFETIME, verify_bind, write_bind_request};
use crate::session::pfs::{
    INIT_CONNECTION, INVOKE_AFTER_MSG, INVOKE_WITH_LAYER, INVOKE_WITHOUT_UPDATES, InnerMethodError, MAX_WRAPPERS,
    UNBOUND_ALLOWED, allowed_unbound, inner_method,
};

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("pfs_inner_method", pfs_inner_method), ("session_bind", session_bind)];

/// Bytes the entry point copies to check its invariants (longer inputs are cut there).
pub const FUZZ_MAX_QUERY: usize = 4096;

/// Names the method under the wrappers and checks: a named method is never a wrapper; `allowed_unbound` agrees with
/// the allow-list; trailing bytes never change the answer; one more `invokeWithoutUpdates` in front gives the same
/// answer or `TooDeep`, and only that.
pub fn pfs_inner_method(data: &[u8]) {
    let data = data.get(..data.len().min(FUZZ_MAX_QUERY)).unwrap_or(&[]);
    let r = inner_method(data);
    if let Ok(m) = r {
        assert!(
            ![
                INVOKE_WITH_LAYER,
                INVOKE_WITHOUT_UPDATES,
                INVOKE_AFTER_MSG,
                INIT_CONNECTION
            ]
            .contains(&m)
        );
        assert_eq!(allowed_unbound(data), UNBOUND_ALLOWED.contains(&m));
        let mut longer = [0u8; FUZZ_MAX_QUERY + 4];
        if let Some(dst) = longer.get_mut(..data.len()) {
            dst.copy_from_slice(data);
        }
        assert_eq!(inner_method(longer.get(..data.len() + 4).unwrap_or(&[])), Ok(m));
    } else {
        assert!(!allowed_unbound(data));
    }
    let mut wrapped = [0u8; FUZZ_MAX_QUERY + 4];
    if let Some((head, tail)) = wrapped.split_first_chunk_mut::<4>() {
        *head = INVOKE_WITHOUT_UPDATES.to_le_bytes();
        if let Some(dst) = tail.get_mut(..data.len()) {
            dst.copy_from_slice(data);
        }
    }
    let w = inner_method(wrapped.get(..data.len() + 4).unwrap_or(&[]));
    assert!(w == r || w == Err(InnerMethodError::TooDeep), "{r:?} became {w:?}");
    let _ = MAX_WRAPPERS;
}

/// The Unix time the `session_bind` request is verified at.
const BIND_NOW: u64 = 1_700_000_000;
/// The bytes of a bind request that carry meaning: constructor, perm_auth_key_id, nonce, expires_at, and
/// encrypted_message with its one-byte length. The 3 bytes after it are TL padding, which the reader skips
/// unread (as Telegram's does): an edit there changes nothing (found by this target).
const BIND_MEANINGFUL: usize = 4 + 8 + 8 + 4 + 1 + crate::session::bind::BIND_ENCRYPTED_LEN;

/// `verify_bind` (item 53). Input byte 0 picks the mode. Mode 0: the rest is any body, verified for the fixed
/// permanent key; whatever it accepts is for this session, expiring in `(now, now + MAX_BIND_LIFETIME]`. Any other
/// mode: a genuine request (written by `write_bind_request`) edited by the rest of the input, read as
/// (offset, xor) pairs, verified for the msg_id, session and time it was made for, or, by the mode's low bits,
/// for another msg_id, temp key, temp session or a time past its expiry: the request for its own session, unedited
/// or edited only in its TL padding, is accepted, and anything else is refused.
pub fn session_bind(data: &[u8]) {
    let perm = fuzz_auth_key();
    let params = BindParams {
        temp_auth_key_id: 0x1122_3344_5566_7788,
        temp_session_id: 0x0102_0304_0506_0708,
        expires_at: (BIND_NOW + 86_400) as i32,
    };
    let msg_id = MsgId((BIND_NOW << 32) | 0x1004);
    let now = crate::time::UnixTime(BIND_NOW);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode == 0 {
        if let Ok(p) = verify_bind(&perm, &params, msg_id, rest, now) {
            assert_eq!(
                (p.temp_auth_key_id, p.temp_session_id),
                (params.temp_auth_key_id, params.temp_session_id)
            );
            let exp = u64::try_from(p.expires_at).unwrap_or(0);
            assert!(exp > BIND_NOW && exp <= BIND_NOW + MAX_BIND_LIFETIME);
        }
        return;
    }
    let mut body = [0u8; BIND_BODY_LEN];
    let mut rng = SeededRng::new(&[mode]);
    if write_bind_request(&perm, &params, msg_id, &mut rng, &mut body).is_err() {
        panic!("a bind request fits its own length");
    }
    let mut edited = false;
    for pair in rest.chunks_exact(2) {
        if let (Some(&off), Some(&x)) = (pair.first(), pair.get(1))
            && let Some(b) = body.get_mut(usize::from(off) % BIND_BODY_LEN)
        {
            *b ^= x;
            edited |= x != 0;
        }
    }
    // Re-applying the same xors cancels them: "edited" means the final body differs.
    edited = edited && {
        let mut fresh = [0u8; BIND_BODY_LEN];
        let mut rng = SeededRng::new(&[mode]);
        let _ = write_bind_request(&perm, &params, msg_id, &mut rng, &mut fresh);
        fresh.get(..BIND_MEANINGFUL) != body.get(..BIND_MEANINGFUL)
    };
    let (sess, id, at) = match mode & 3 {
        0 => (params, msg_id, now),
        1 => (params, MsgId(msg_id.0 + 4), now),
        2 => (
            BindParams {
                temp_session_id: params.temp_session_id ^ 1,
                ..params
            },
            msg_id,
            now,
        ),
        _ => (params, msg_id, crate::time::UnixTime(BIND_NOW + 86_400)),
    };
    let r = verify_bind(&perm, &sess, id, &body, at);
    if !edited && mode & 3 == 0 {
        assert_eq!(r, Ok(params), "the genuine request is refused");
        const { assert!(BIND_MEANINGFUL + 3 == BIND_BODY_LEN) };
    } else {
        assert!(r.is_err(), "an edited or misplaced request is accepted: {r:?}");
    }
}
