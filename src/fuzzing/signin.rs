//! Fuzz entry points for `client`: arbitrary answers, errors, updates, losses, timers and host inputs fed to each
//! sign-in flow. Without the `api` feature (the flows need the generated types) the target does nothing, so
//! `tests/fuzz_corpus.rs` replays the corpus as a no-op and `tests/client_signin.rs` replays it for real.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("client_signin", client_signin)];

/// Input: one byte choosing the flow (bits 0-1: bot, phone, QR, log out; bit 2: wrap in `initConnection`), then
/// operations, each an op byte and its operands: 0 an answer to the request in flight (u16 length, bytes); 1 an
/// `rpc_error` (u8 code selector, u8 length, message); 2 the request lost; 3 time passes (u8 seconds) and the
/// timer runs; 4 an update (u16 length, bytes); 5 a host input (u8: code, resend, cancel, sign-up, SRP answer,
/// migrated); 6 an answer under a tag the flow did not hand out (u16 length, bytes). Every request written must
/// validate as an API call and fit what it says it wrote; a host error must change nothing; a failed flow stays
/// failed with the same error.
pub fn client_signin(data: &[u8]) {
    #[cfg(feature = "api")]
    api::drive(data);
    #[cfg(not(feature = "api"))]
    let _ = data;
}

#[cfg(feature = "api")]
mod api {
    use super::super::Input;
    use crate::Fault;
    use crate::client::signin::{SignIn, SignInConfig, SignInError, SrpAnswer, Stage, Tag};
    use crate::time::{Instant, UnixTime};
    use crate::tl::invoke::InitConnection;
    use crate::tl::layout::Root;
    use crate::tl::tables::api::API;

    const INIT: InitConnection<'static> = InitConnection {
        api_id: 1,
        device_model: b"fuzz",
        system_version: b"1",
        app_version: b"1",
        system_lang_code: b"en",
        lang_pack: b"",
        lang_code: b"en",
    };
    const CODES: [i32; 6] = [303, 400, 401, 420, 500, -503];
    const TOKENS: &[&[u8]] = &[b"t"];

    pub(super) fn drive(data: &[u8]) {
        let mut input = Input::new(data);
        let Some(sel) = input.u8() else { return };
        let mut cfg = SignInConfig::new(1, b"hash");
        if sel & 4 != 0 {
            cfg.init = Some(INIT);
        }
        cfg.logout_tokens = TOKENS;
        let mut now = Instant::from_secs(1000);
        let except = [5i64];
        let flow = match sel & 3 {
            0 => SignIn::bot(cfg, b"1:secret"),
            1 => SignIn::phone(cfg, b"9996612345"),
            2 => Ok(SignIn::qr(cfg, &except, now, UnixTime(1_700_000_000))),
            _ => Ok(SignIn::log_out(cfg)),
        };
        let Ok(mut flow) = flow else { return };
        let mut buf = [0u8; 2048];
        let mut tag = None;
        // Each op consumes at least its op byte, so the loop is bounded by the input.
        while let Some(op) = input.u8() {
            if let Ok(Some(req)) = flow.poll_request(now, &mut buf) {
                let written = buf.get(..req.len).unwrap_or(&[]);
                assert!(req.len <= buf.len());
                assert!(API.validate(written, Root::Function) == Ok(req.len));
                tag = Some(req.tag);
            }
            let before = flow.stage();
            let failed = match before {
                Stage::Failed(e) => Some(e),
                _ => None,
            };
            let current = tag.unwrap_or(Tag(0));
            let r: Result<(), SignInError> = match op % 7 {
                0 => {
                    let n = input.len16();
                    flow.handle_result(now, current, input.take(n)).map(|_| ())
                }
                1 => {
                    let code = CODES
                        .get(usize::from(input.u8().unwrap_or(0)) % CODES.len())
                        .copied()
                        .unwrap_or(400);
                    let n = usize::from(input.u8().unwrap_or(0));
                    flow.handle_rpc_error(now, current, code, input.take(n)).map(|_| ())
                }
                2 => flow.handle_failed(now, current).map(|_| ()),
                3 => {
                    now = now.saturating_add(core::time::Duration::from_secs(u64::from(input.u8().unwrap_or(0))));
                    flow.handle_timeout(now).map(|_| ())
                }
                4 => {
                    let n = input.len16();
                    let _ = flow.handle_update(now, input.take(n));
                    Ok(())
                }
                5 => match input.u8().unwrap_or(0) % 6 {
                    0 => flow.submit_code(now, b"12345"),
                    1 => flow.resend_code(now),
                    2 => flow.cancel_code(now),
                    3 => flow.sign_up(now, b"A", b"B"),
                    4 => {
                        let srp_id = flow.password_challenge().map_or(0, |c| c.srp_id);
                        flow.submit_srp(
                            now,
                            SrpAnswer {
                                srp_id,
                                a: [2; 256],
                                m1: [3; 32],
                            },
                        )
                    }
                    _ => match flow.stage() {
                        Stage::WaitMigration { dc } => flow.migrated(now, dc),
                        _ => flow.migrated(now, 2),
                    },
                },
                _ => {
                    let n = input.len16();
                    let wrong = Tag(current.0.wrapping_add(1));
                    flow.handle_result(now, wrong, input.take(n)).map(|_| ())
                }
            };
            if let Err(e) = r {
                if let Some(f) = failed {
                    assert!(e == f && flow.stage() == before);
                } else if e.fault() == Fault::Host {
                    assert!(flow.stage() == before);
                } else {
                    assert!(flow.stage() == Stage::Failed(e));
                }
            }
        }
    }
}
