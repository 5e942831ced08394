//! Fuzz entry points for `client::updates`: arbitrary saved states for `UpdateSync::restore`, and arbitrary pushes,
//! answers, errors, losses, timers, restarts and host inputs fed to one machine. Without the `api` feature (the
//! machine needs the generated types) the targets do nothing, so `tests/fuzz_corpus.rs` replays the corpora as a
//! no-op and `tests/client_updates.rs` replays them for real.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[
    ("client_updates_restore", client_updates_restore),
    ("client_updates", client_updates),
];

/// Input: bytes for `UpdateSync::restore`. A state that restores saves to bytes that restore again and save the
/// same.
pub fn client_updates_restore(data: &[u8]) {
    #[cfg(feature = "api")]
    api::restore(data);
    #[cfg(not(feature = "api"))]
    let _ = data;
}

/// Input: operations, each an op byte and its operands: 0 a push (u16 length, bytes); 1 an answer to the oldest
/// request in flight (u16 length, bytes); 2 an `rpc_error` for it (u8 code selector, u8 length, message); 3 it was
/// lost; 4 time passes (u8 × 100 ms) and the timer runs; 5 a restart from the saved state; 6 the host tracks a
/// channel (u8 id, u8 pts). Every request written must validate as an API call and fit its length; the state must
/// save and restore at every step.
pub fn client_updates(data: &[u8]) {
    #[cfg(feature = "api")]
    api::drive(data);
    #[cfg(not(feature = "api"))]
    let _ = data;
}

#[cfg(feature = "api")]
mod api {
    use super::super::Input;
    use crate::client::updates::{Delivered, Tag, UpdateSync};
    use crate::time::Instant;
    use crate::tl::layout::Root;
    use crate::tl::tables::api::API;

    type M = UpdateSync<4, 512>;
    const CODES: [i32; 5] = [400, 403, 420, 500, -503];
    const SAVE: usize = M::MAX_SAVED_LEN;

    fn roundtrip(m: &M, now: Instant) -> Option<M> {
        let mut buf = [0u8; SAVE];
        let n = m.save(&mut buf).ok()?;
        assert_eq!(n, m.saved_len(), "save wrote what saved_len said");
        let saved = buf.get(..n)?;
        let r = M::restore(now, false, saved);
        assert!(r.is_ok(), "a saved state restores: {r:?}");
        r.ok()
    }

    pub(super) fn restore(data: &[u8]) {
        let now = Instant::from_secs(1);
        let Ok(m) = M::restore(now, false, data) else { return };
        let mut a = [0u8; SAVE];
        let mut b = [0u8; SAVE];
        let Ok(n) = m.save(&mut a) else { return };
        let r = roundtrip(&m, now);
        let Some(r) = r else { return };
        let n2 = r.save(&mut b).unwrap_or(0);
        assert_eq!(a.get(..n), b.get(..n2), "save, restore, save gives the same bytes");
    }

    pub(super) fn drive(data: &[u8]) {
        let mut input = Input::new(data);
        let mut now = Instant::from_secs(1000);
        let mut m = M::new(now, input.u8().unwrap_or(0) & 1 == 1);
        let mut inflight: heapless::Vec<Tag, 16> = heapless::Vec::new();
        let mut sink = |d: Delivered<'_>| {
            let _ = d.wire.len();
        };
        while let Some(op) = input.u8() {
            match op % 8 {
                0 => {
                    let n = input.len16();
                    let body = input.take(n);
                    let _ = m.handle_updates(now, body, &mut sink);
                }
                1 => {
                    let n = input.len16();
                    let body = input.take(n);
                    if let Some(tag) = inflight.first().copied() {
                        inflight.remove(0);
                        let _ = m.handle_result(now, tag, body, &mut sink);
                    } else {
                        let _ = m.handle_result(now, Tag(u32::from(op)), body, &mut sink);
                    }
                }
                2 => {
                    let code = CODES
                        .get(usize::from(input.u8().unwrap_or(0)) % CODES.len())
                        .copied()
                        .unwrap_or(400);
                    let n = usize::from(input.u8().unwrap_or(0));
                    let msg = input.take(n);
                    if let Some(tag) = inflight.first().copied() {
                        inflight.remove(0);
                        let _ = m.handle_rpc_error(now, tag, code, msg);
                    }
                }
                3 => {
                    if let Some(tag) = inflight.first().copied() {
                        inflight.remove(0);
                        let _ = m.handle_failed(now, tag);
                    }
                }
                4 => {
                    let ms = u64::from(input.u8().unwrap_or(0)) * 100;
                    now = Instant::from_millis(now.as_micros() / 1000 + ms);
                    m.handle_timeout(now);
                }
                5 => {
                    if let Some(r) = roundtrip(&m, now) {
                        m = r;
                        inflight.clear();
                    }
                }
                6 => {
                    let id = i64::from(input.u8().unwrap_or(0));
                    let pts = i32::from(input.u8().unwrap_or(0));
                    let _ = m.track_channel(now, id, Some(id), pts);
                }
                _ => {
                    // A result that moves a pts without being `Updates` (affectedMessages / affectedHistory /
                    // affectedFoundMessages).
                    let channel = input.u8().unwrap_or(0);
                    let n = input.len16();
                    let body = input.take(n);
                    let channel = (channel != 0).then_some(i64::from(channel));
                    let _ = m.handle_affected_result(now, channel, body, &mut sink);
                }
            }
            let mut buf = [0u8; 256];
            while let Ok(Some(r)) = m.poll_request(now, &mut buf) {
                let call = buf.get(..r.len).unwrap_or(&[]);
                assert_eq!(r.len, call.len());
                assert!(
                    API.validate_exact(call, Root::Function).is_ok(),
                    "requests are valid calls"
                );
                if inflight.push(r.tag).is_err() {
                    break;
                }
            }
            let _ = m.poll_evicted();
            let _ = m.poll_timeout();
        }
        let _ = roundtrip(&m, now);
    }
}
