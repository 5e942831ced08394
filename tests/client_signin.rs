//! The sign-in flows (`client::signin`) end to end against a scripted DC in memory: each request the flow writes
//! is validated against the schema, unwrapped and read back through the typed views, and answered with values
//! built by the typed writers (right answers, the errors each flow handles, migrations, timers), plus negative
//! tests: answers of the wrong type, answers to requests the flow did not send, oversized strings, typed errors
//! everywhere and no panics.

use std::time::Duration;

use mtproto_sansio::Fault;
use mtproto_sansio::client::signin::{
    CodeKind, Field, MAX_CODE, MAX_MIGRATIONS, MAX_NAME, MAX_PHONE, MAX_PHONE_CODE_HASH, MAX_RESENDS, Method,
    MigrateReason, NextCodeKind, Progress, Refusal, Request, SRP_BYTES, SignIn, SignInConfig, SignInError, SrpAnswer,
    Stage, Tag,
};
use mtproto_sansio::client::srp::{CheckedKdf, SrpError, SrpServer};
use mtproto_sansio::crypto::dh::{DhError, DhGroup, PrimeCache};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::api::{Bare, Boxed, Obj, Seq, enums, functions, types};
use mtproto_sansio::tl::invoke::{self, InitConnection};
use mtproto_sansio::tl::layout::{Error as LayoutError, Root};
use mtproto_sansio::tl::tables::api as tables;
use mtproto_sansio::tl::typed::Cursor;
use mtproto_sansio::tl::{self as tl, TlWrite};
use rand::SeedableRng;
use rand::rngs::StdRng;

const API_HASH: &[u8] = b"0123456789abcdef0123456789abcdef";
const INIT: InitConnection<'static> = InitConnection {
    api_id: 12345,
    device_model: b"test",
    system_version: b"1",
    app_version: b"1",
    system_lang_code: b"en",
    lang_pack: b"",
    lang_code: b"en",
};

fn cfg() -> SignInConfig<'static> {
    SignInConfig::new(12345, API_HASH)
}

fn cfg_init() -> SignInConfig<'static> {
    SignInConfig {
        init: Some(INIT),
        ..cfg()
    }
}

fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn enc<T: TlWrite + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    assert_eq!(tl::encode(v, &mut out), Ok(out.len()));
    out
}

/// A request as the scripted DC sees it.
struct Sent {
    req: Request,
    /// The call's constructor id (after any wrappers).
    method: u32,
    /// The call's bytes, id first.
    call: Vec<u8>,
    init: bool,
}

impl Sent {
    /// The call read through its typed view.
    fn view<'a, F: Bare<'a>>(&'a self) -> F {
        assert_eq!(self.method, F::ID);
        let mut c = Cursor::new(&self.call[4..], &tables::API);
        F::read_bare(&mut c)
    }
}

/// The flow's next request: written, validated as an API call, unwrapped.
fn take(flow: &mut SignIn<'_>, now: Instant) -> Sent {
    let mut buf = vec![0u8; 4096];
    let req = flow.poll_request(now, &mut buf).unwrap().expect("a request");
    let bytes = &buf[..req.len];
    assert_eq!(
        tables::API.validate(bytes, Root::Function),
        Ok(req.len),
        "{:?}",
        req.method
    );
    let u = invoke::unwrap(bytes, 4).unwrap();
    assert_eq!(u.method, req.method.id());
    assert_eq!(u.init_connection, req.wrapped);
    if req.wrapped {
        assert_eq!(u.layer, Some(228));
    }
    let mut call = u.method.to_le_bytes().to_vec();
    call.extend_from_slice(u.args);
    Sent {
        req,
        method: u.method,
        init: u.init_connection,
        call,
    }
}

fn no_request(flow: &mut SignIn<'_>, now: Instant) {
    let mut buf = [0u8; 4096];
    assert_eq!(flow.poll_request(now, &mut buf), Ok(None));
}

// --- answers, built with the typed writers ---------------------------------------------------------------

/// `user#b1b8cc83` with only the id (and `bot` with its `bot_info_version`).
fn user(id: i64, bot: bool) -> Vec<u8> {
    let mut b = types::User::ID.to_le_bytes().to_vec();
    let flags: u32 = (1 << 10) | if bot { 1 << 14 } else { 0 };
    b.extend(flags.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(id.to_le_bytes());
    if bot {
        b.extend(1i32.to_le_bytes());
    }
    assert!(enums::User::decode(&b).is_ok());
    b
}

fn authorization(user_bytes: &[u8], future: Option<&[u8]>) -> Vec<u8> {
    let u = enums::User::decode(user_bytes).unwrap();
    enc(&types::AuthAuthorization {
        otherwise_relogin_days: None,
        tmp_sessions: Some(3),
        future_auth_token: future,
        user: Obj::new(&u),
    })
}

fn sent_code(hash: &[u8], next_sms: bool, timeout: Option<i32>) -> Vec<u8> {
    let ty = types::AuthSentCodeTypeApp { length: 5 };
    let next = types::AuthCodeTypeSms {};
    enc(&types::AuthSentCode {
        type_: Obj::new(&ty),
        phone_code_hash: hash,
        next_type: next_sms.then(|| Obj::new(&next)),
        timeout,
    })
}

fn sign_up_required(text: &[u8]) -> Vec<u8> {
    let id = types::DataJSON { data: b"{}" };
    let terms = types::HelpTermsOfService {
        popup: true,
        id: Obj::new(&id),
        text,
        entities: Seq::new(&[]),
        min_age_confirm: Some(16),
    };
    enc(&types::AuthAuthorizationSignUpRequired {
        terms_of_service: Some(Obj::new(&terms)),
    })
}

const P: [u8; 256] = [0xc7; 256];

fn password(srp_id: i64, srp_b: &[u8], hint: Option<&[u8]>) -> Vec<u8> {
    let algo = types::PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow {
        salt1: b"salt-one",
        salt2: b"salt-two-sixteen",
        g: 3,
        p: &P,
    };
    let unknown = types::PasswordKdfAlgoUnknown {};
    let secure = types::SecurePasswordKdfAlgoUnknown {};
    enc(&types::AccountPassword {
        has_recovery: true,
        has_secure_values: false,
        current_algo_and_srp_b_and_srp_id: Some((Obj::new(&algo), srp_b, srp_id)),
        hint,
        email_unconfirmed_pattern: None,
        new_algo: Obj::new(&unknown),
        new_secure_algo: Obj::new(&secure),
        secure_random: b"random",
        pending_reset_date: None,
        login_email_pattern: None,
    })
}

fn login_token(expires: i32, token: &[u8]) -> Vec<u8> {
    enc(&types::AuthLoginToken { expires, token })
}

fn bool_true() -> Vec<u8> {
    enc(&types::BoolTrue {})
}

fn update_login_token() -> Vec<u8> {
    let u = types::UpdateLoginToken {};
    enc(&types::UpdateShort {
        update: Obj::new(&u),
        date: 1,
    })
}

fn srp_answer(srp_id: i64) -> SrpAnswer {
    SrpAnswer {
        srp_id,
        a: [0xaa; SRP_BYTES],
        m1: [0x11; 32],
    }
}

fn signed_in(p: Result<Progress<'_>, SignInError>) -> (i64, bool) {
    match p {
        Ok(Progress::SignedIn(a)) => (a.user_id, a.bot),
        other => panic!("not signed in: {other:?}"),
    }
}

// --- bot token ------------------------------------------------------------------------------------------

#[test]
fn bot_token_signs_in_wrapped_in_init_connection() {
    let mut flow = SignIn::bot(cfg_init(), b"4242:AAEsecret").unwrap();
    assert_eq!(flow.stage(), Stage::Working);
    let s = take(&mut flow, t(1));
    assert!(s.init, "the first call on a DC introduces the connection");
    let call: functions::AuthImportBotAuthorization = s.view();
    assert_eq!(
        (call.api_id, call.api_hash, call.bot_auth_token),
        (12345, API_HASH, &b"4242:AAEsecret"[..])
    );
    // One request at a time.
    no_request(&mut flow, t(1));
    let body = authorization(&user(4242, true), None);
    assert_eq!(signed_in(flow.handle_result(t(2), s.req.tag, &body)), (4242, true));
    assert_eq!(
        flow.stage(),
        Stage::SignedIn {
            user_id: 4242,
            bot: true
        }
    );
    no_request(&mut flow, t(2));
}

#[test]
fn bot_user_migrate_moves_to_the_dc_and_wraps_again() {
    let mut flow = SignIn::bot(cfg_init(), b"7:tok").unwrap();
    let s = take(&mut flow, t(1));
    let p = flow.handle_rpc_error(t(1), s.req.tag, 303, b"USER_MIGRATE_2").unwrap();
    assert!(matches!(
        p,
        Progress::Migrate {
            dc: 2,
            reason: MigrateReason::User
        }
    ));
    assert_eq!(flow.stage(), Stage::WaitMigration { dc: 2 });
    // Nothing goes out until the host moved.
    no_request(&mut flow, t(1));
    assert_eq!(flow.migrated(t(1), 3), Err(SignInError::WrongState));
    flow.migrated(t(2), 2).unwrap();
    let s = take(&mut flow, t(2));
    assert_eq!(s.method, functions::AuthImportBotAuthorization::ID);
    assert!(s.init, "the first call on the new DC is wrapped again");
    assert_eq!(
        signed_in(flow.handle_result(t(3), s.req.tag, &authorization(&user(7, true), None))),
        (7, true)
    );
}

#[test]
fn bot_token_refused_ends_the_flow_with_a_typed_error() {
    let mut flow = SignIn::bot(cfg(), b"1:bad").unwrap();
    let s = take(&mut flow, t(1));
    assert!(!s.init, "no initConnection configured");
    let e = flow
        .handle_rpc_error(t(1), s.req.tag, 401, b"ACCESS_TOKEN_INVALID")
        .unwrap_err();
    assert_eq!(e, SignInError::Refused(Refusal::AccessTokenInvalid));
    assert_eq!(e.fault(), Fault::Environment);
    assert_eq!(flow.stage(), Stage::Failed(e));
    // Sticky: every later call returns it.
    assert_eq!(flow.handle_timeout(t(2)).unwrap_err(), e);
    assert_eq!(flow.handle_result(t(2), s.req.tag, &[]).unwrap_err(), e);
    no_request(&mut flow, t(2));
}

#[test]
fn flood_wait_below_the_threshold_is_waited_out_above_it_surfaced() {
    let mut flow = SignIn::bot(cfg(), b"1:x").unwrap();
    let s = take(&mut flow, t(10));
    let p = flow.handle_rpc_error(t(10), s.req.tag, 420, b"FLOOD_WAIT_3").unwrap();
    assert!(matches!(p, Progress::Delayed(d) if d == Duration::from_secs(3)));
    assert_eq!(flow.poll_timeout(), Some(t(13)));
    no_request(&mut flow, t(12));
    flow.handle_timeout(t(13)).unwrap();
    assert_eq!(flow.poll_timeout(), None);
    let s = take(&mut flow, t(13));
    assert_eq!(s.method, functions::AuthImportBotAuthorization::ID);
    let e = flow
        .handle_rpc_error(t(13), s.req.tag, 420, b"FLOOD_WAIT_3600")
        .unwrap_err();
    assert_eq!(e, SignInError::Refused(Refusal::FloodWait(3600)));
}

// --- phone code -----------------------------------------------------------------------------------------

#[test]
fn phone_code_wrong_code_resend_timer_then_signed_in() {
    let mut flow = SignIn::phone(cfg(), b"+99966 1 2345").unwrap();
    let s = take(&mut flow, t(100));
    let call: functions::AuthSendCode = s.view();
    assert_eq!(
        (call.phone_number, call.api_id, call.api_hash),
        (&b"+99966 1 2345"[..], 12345, API_HASH)
    );
    let body = sent_code(b"hash1", true, Some(30));
    let p = flow.handle_result(t(100), s.req.tag, &body).unwrap();
    let Progress::CodeSent(info) = p else { panic!("{p:?}") };
    assert_eq!(info.kind, CodeKind::App);
    assert_eq!(info.length, Some(5));
    assert_eq!(info.next, Some(NextCodeKind::Sms));
    assert_eq!(info.resend_after, Some(Duration::from_secs(30)));
    assert_eq!(flow.stage(), Stage::WaitCode);

    // A wrong code: refused, the flow waits for another.
    flow.submit_code(t(101), b"00000").unwrap();
    let s = take(&mut flow, t(101));
    let call: functions::AuthSignIn = s.view();
    assert_eq!(
        (call.phone_code_hash, call.phone_code),
        (&b"hash1"[..], Some(&b"00000"[..]))
    );
    let p = flow
        .handle_rpc_error(t(101), s.req.tag, 400, b"PHONE_CODE_INVALID")
        .unwrap();
    assert!(matches!(p, Progress::Refused(Refusal::PhoneCodeInvalid)));
    assert_eq!(flow.stage(), Stage::WaitCode);

    // Resend: not before the DC's timeout.
    assert_eq!(flow.resend_code(t(110)), Err(SignInError::ResendNotYet));
    assert_eq!(flow.poll_timeout(), Some(t(130)));
    assert!(matches!(flow.handle_timeout(t(130)), Ok(Progress::ResendAvailable)));
    flow.resend_code(t(130)).unwrap();
    let s = take(&mut flow, t(130));
    let call: functions::AuthResendCode = s.view();
    assert_eq!(call.phone_code_hash, b"hash1");
    // The resent code has a new hash and no further way to resend.
    let body = sent_code(b"hash2", false, None);
    let p = flow.handle_result(t(131), s.req.tag, &body).unwrap();
    assert!(matches!(p, Progress::CodeSent(c) if c.next.is_none()));
    assert_eq!(flow.resend_code(t(131)), Err(SignInError::CannotResend));

    flow.submit_code(t(140), b"22222").unwrap();
    let s = take(&mut flow, t(140));
    let call: functions::AuthSignIn = s.view();
    assert_eq!(
        (call.phone_code_hash, call.phone_code),
        (&b"hash2"[..], Some(&b"22222"[..]))
    );
    let body = authorization(&user(77, false), Some(b"future"));
    let p = flow.handle_result(t(141), s.req.tag, &body);
    let Ok(Progress::SignedIn(a)) = p else { panic!("{p:?}") };
    assert_eq!(
        (a.user_id, a.bot, a.tmp_sessions, a.future_auth_token),
        (77, false, Some(3), Some(&b"future"[..]))
    );
    assert!(matches!(a.user.get(), Some(enums::User::User(u)) if u.id == 77));
}

#[test]
fn phone_migrate_resends_send_code_on_the_phones_dc() {
    let mut flow = SignIn::phone(cfg_init(), b"9996621234").unwrap();
    let s = take(&mut flow, t(1));
    assert!(s.init);
    let p = flow.handle_rpc_error(t(1), s.req.tag, 303, b"PHONE_MIGRATE_2").unwrap();
    assert!(matches!(
        p,
        Progress::Migrate {
            dc: 2,
            reason: MigrateReason::Phone
        }
    ));
    flow.migrated(t(1), 2).unwrap();
    let s = take(&mut flow, t(1));
    assert!(s.init);
    let call: functions::AuthSendCode = s.view();
    assert_eq!(call.phone_number, b"9996621234");
    assert!(matches!(
        flow.handle_result(t(2), s.req.tag, &sent_code(b"h", false, None)),
        Ok(Progress::CodeSent(_))
    ));
    // The code's step also follows a NETWORK_MIGRATE.
    flow.submit_code(t(3), b"22222").unwrap();
    let s = take(&mut flow, t(3));
    assert!(!s.init);
    let p = flow
        .handle_rpc_error(t(3), s.req.tag, 303, b"NETWORK_MIGRATE_3")
        .unwrap();
    assert!(matches!(
        p,
        Progress::Migrate {
            dc: 3,
            reason: MigrateReason::Network
        }
    ));
    flow.migrated(t(3), 3).unwrap();
    let s = take(&mut flow, t(3));
    assert_eq!(s.method, functions::AuthSignIn::ID);
    assert_eq!(
        signed_in(flow.handle_result(t(4), s.req.tag, &authorization(&user(5, false), None))),
        (5, false)
    );
}

#[test]
fn sign_up_required_shows_terms_then_signs_up() {
    let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
    let s = take(&mut flow, t(1));
    flow.handle_result(t(1), s.req.tag, &sent_code(b"h", false, None))
        .unwrap();
    flow.submit_code(t(2), b"11111").unwrap();
    let s = take(&mut flow, t(2));
    let body = sign_up_required(b"Be nice.");
    let p = flow.handle_result(t(2), s.req.tag, &body).unwrap();
    let Progress::SignUpRequired(Some(terms)) = p else {
        panic!("{p:?}")
    };
    assert_eq!(
        (terms.text, terms.popup, terms.min_age_confirm),
        (&b"Be nice."[..], true, Some(16))
    );
    assert_eq!(flow.stage(), Stage::WaitSignUp);
    // An invalid name: refused, another try.
    flow.sign_up(t(3), b"", b"").unwrap_err();
    flow.sign_up(t(3), b"X", b"").unwrap();
    let s = take(&mut flow, t(3));
    let p = flow
        .handle_rpc_error(t(3), s.req.tag, 400, b"FIRSTNAME_INVALID")
        .unwrap();
    assert!(matches!(p, Progress::Refused(Refusal::FirstnameInvalid)));
    assert_eq!(flow.stage(), Stage::WaitSignUp);
    flow.sign_up(t(4), "Zoë".as_bytes(), b"Doe").unwrap();
    let s = take(&mut flow, t(4));
    let call: functions::AuthSignUp = s.view();
    assert_eq!(
        (call.phone_number, call.phone_code_hash, call.first_name, call.last_name),
        (&b"9996612345"[..], &b"h"[..], "Zoë".as_bytes(), &b"Doe"[..])
    );
    assert_eq!(
        signed_in(flow.handle_result(t(5), s.req.tag, &authorization(&user(9, false), None))),
        (9, false)
    );
}

#[test]
fn expired_code_allows_a_resend_at_once_and_cancel_ends_the_flow() {
    let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
    let s = take(&mut flow, t(1));
    flow.handle_result(t(1), s.req.tag, &sent_code(b"h", true, Some(60)))
        .unwrap();
    flow.submit_code(t(2), b"11111").unwrap();
    let s = take(&mut flow, t(2));
    let p = flow
        .handle_rpc_error(t(2), s.req.tag, 400, b"PHONE_CODE_EXPIRED")
        .unwrap();
    assert!(matches!(p, Progress::Refused(Refusal::PhoneCodeExpired)));
    flow.resend_code(t(3)).unwrap();
    let s = take(&mut flow, t(3));
    assert_eq!(s.method, functions::AuthResendCode::ID);
    // The DC has no other way left: the flow still waits for the last code.
    let p = flow
        .handle_rpc_error(t(3), s.req.tag, 400, b"SEND_CODE_UNAVAILABLE")
        .unwrap();
    assert!(matches!(p, Progress::Refused(Refusal::SendCodeUnavailable)));
    assert_eq!(flow.resend_code(t(4)), Err(SignInError::CannotResend));
    flow.cancel_code(t(4)).unwrap();
    let s = take(&mut flow, t(4));
    let call: functions::AuthCancelCode = s.view();
    assert_eq!(call.phone_code_hash, b"h");
    assert!(matches!(
        flow.handle_result(t(4), s.req.tag, &bool_true()),
        Ok(Progress::CodeCancelled)
    ));
    assert_eq!(flow.stage(), Stage::CodeCancelled);
}

#[test]
fn logout_tokens_can_sign_in_without_a_code() {
    let tokens: &[&[u8]] = &[b"old-token"];
    let c = SignInConfig {
        logout_tokens: tokens,
        ..cfg()
    };
    let mut flow = SignIn::phone(c, b"9996612345").unwrap();
    let s = take(&mut flow, t(1));
    let call: functions::AuthSendCode = s.view();
    let enums::CodeSettings::CodeSettings(settings) = call.settings.get().unwrap();
    let sent: Vec<&[u8]> = settings.logout_tokens.unwrap().iter().collect();
    assert_eq!(sent, vec![&b"old-token"[..]]);
    let auth = authorization(&user(3, false), None);
    let a = enums::AuthAuthorization::decode(&auth).unwrap();
    let body = enc(&types::AuthSentCodeSuccess {
        authorization: Obj::new(&a),
    });
    assert_eq!(signed_in(flow.handle_result(t(2), s.req.tag, &body)), (3, false));
}

// --- password -------------------------------------------------------------------------------------------

#[test]
fn password_step_after_sign_in_wrong_password_fetches_fresh_parameters() {
    let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
    let s = take(&mut flow, t(1));
    flow.handle_result(t(1), s.req.tag, &sent_code(b"h", false, None))
        .unwrap();
    flow.submit_code(t(2), b"11111").unwrap();
    let s = take(&mut flow, t(2));
    assert!(matches!(
        flow.handle_rpc_error(t(2), s.req.tag, 401, b"SESSION_PASSWORD_NEEDED"),
        Ok(Progress::Nothing)
    ));
    let s = take(&mut flow, t(2));
    assert_eq!(s.method, functions::AccountGetPassword::ID);
    let b1 = [0x42u8; 256];
    let body = password(111, &b1, Some(b"pet"));
    let p = flow.handle_result(t(3), s.req.tag, &body).unwrap();
    assert!(matches!(p, Progress::PasswordNeeded(i) if i.hint == Some(&b"pet"[..]) && i.has_recovery));
    assert_eq!(flow.stage(), Stage::WaitPassword);
    let ch = flow.password_challenge().unwrap();
    assert_eq!(
        (ch.salt1, ch.salt2, ch.g, ch.p, ch.srp_b, ch.srp_id),
        (&b"salt-one"[..], &b"salt-two-sixteen"[..], 3, &P[..], &b1[..], 111)
    );
    // An answer for other parameters is the host's mistake.
    assert_eq!(flow.submit_srp(t(4), srp_answer(5)), Err(SignInError::SrpIdMismatch));
    flow.submit_srp(t(4), srp_answer(111)).unwrap();
    assert!(flow.password_challenge().is_none(), "srp_B is single-use");
    let s = take(&mut flow, t(4));
    let call: functions::AuthCheckPassword = s.view();
    match call.password.get().unwrap() {
        enums::InputCheckPasswordSRP::InputCheckPasswordSRP(i) => {
            assert_eq!((i.srp_id, i.a, i.m1), (111, &[0xaa; 256][..], &[0x11; 32][..]));
        }
        other => panic!("{other:?}"),
    }
    let p = flow
        .handle_rpc_error(t(4), s.req.tag, 400, b"PASSWORD_HASH_INVALID")
        .unwrap();
    assert!(matches!(p, Progress::Refused(Refusal::PasswordHashInvalid)));
    // Fresh parameters first.
    let s = take(&mut flow, t(4));
    assert_eq!(s.method, functions::AccountGetPassword::ID);
    flow.handle_result(t(5), s.req.tag, &password(112, &[0x43; 256], None))
        .unwrap();
    flow.submit_srp(t(6), srp_answer(112)).unwrap();
    let s = take(&mut flow, t(6));
    assert_eq!(
        signed_in(flow.handle_result(t(7), s.req.tag, &authorization(&user(8, false), None))),
        (8, false)
    );
}

#[test]
fn password_answers_the_flow_cannot_use_end_it() {
    // An unknown KDF.
    let unknown = types::PasswordKdfAlgoUnknown {};
    let secure = types::SecurePasswordKdfAlgoUnknown {};
    let body = enc(&types::AccountPassword {
        has_recovery: false,
        has_secure_values: false,
        current_algo_and_srp_b_and_srp_id: Some((Obj::new(&unknown), &[1; 256], 1)),
        hint: None,
        email_unconfirmed_pattern: None,
        new_algo: Obj::new(&unknown),
        new_secure_algo: Obj::new(&secure),
        secure_random: b"",
        pending_reset_date: None,
        login_email_pattern: None,
    });
    let mut flow = password_flow();
    let s = take(&mut flow, t(3));
    assert_eq!(
        flow.handle_result(t(3), s.req.tag, &body).unwrap_err(),
        SignInError::Unsupported(types::PasswordKdfAlgoUnknown::ID)
    );
    // No password at all after SESSION_PASSWORD_NEEDED.
    let body = enc(&types::AccountPassword {
        current_algo_and_srp_b_and_srp_id: None,
        ..enums_password(&body)
    });
    let mut flow = password_flow();
    let s = take(&mut flow, t(3));
    let e = flow.handle_result(t(3), s.req.tag, &body).unwrap_err();
    assert_eq!(e, SignInError::Unexpected(types::AccountPassword::ID));
    assert_eq!(e.fault(), Fault::Peer);
    // srp_B longer than 2048 bits.
    let mut flow = password_flow();
    let s = take(&mut flow, t(3));
    assert_eq!(
        flow.handle_result(t(3), s.req.tag, &password(1, &[1; 257], None))
            .unwrap_err(),
        SignInError::PeerTooLong(Field::SrpNumber)
    );
}

/// `account.password` for a real SRP exchange: Telegram's prime, g, the KDF's salts and the DC's B and srp_id.
fn real_password(kdf: &CheckedKdf<'_>, srp_b: &[u8], srp_id: i64) -> Vec<u8> {
    real_password_g(kdf, kdf.group().g() as i32, srp_b, srp_id)
}

/// [`real_password`] naming another generator than the KDF's.
fn real_password_g(kdf: &CheckedKdf<'_>, g: i32, srp_b: &[u8], srp_id: i64) -> Vec<u8> {
    let p = kdf.group().prime_bytes();
    let (salt1, salt2) = kdf.salts();
    let algo = types::PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow { salt1, salt2, g, p: &p };
    let unknown = types::PasswordKdfAlgoUnknown {};
    let secure = types::SecurePasswordKdfAlgoUnknown {};
    enc(&types::AccountPassword {
        has_recovery: false,
        has_secure_values: false,
        current_algo_and_srp_b_and_srp_id: Some((Obj::new(&algo), srp_b, srp_id)),
        hint: None,
        email_unconfirmed_pattern: None,
        new_algo: Obj::new(&unknown),
        new_secure_algo: Obj::new(&secure),
        secure_random: b"random",
        pending_reset_date: None,
        login_email_pattern: None,
    })
}

/// `inputCheckPasswordSRP` of an `auth.checkPassword` the flow wrote.
fn srp_fields(s: &Sent) -> (i64, Vec<u8>, Vec<u8>) {
    let call: functions::AuthCheckPassword = s.view();
    match call.password.get().unwrap() {
        enums::InputCheckPasswordSRP::InputCheckPasswordSRP(i) => (i.srp_id, i.a.to_vec(), i.m1.to_vec()),
        other => panic!("{other:?}"),
    }
}

/// `submit_password` computes the proof itself (`client::srp`) and the DC's side (`SrpServer`, holding only the
/// verifier) accepts it for the right password and refuses it for a wrong one.
#[test]
fn submitted_password_is_proven_to_a_real_srp_dc() {
    let kdf = CheckedKdf::new(DhGroup::telegram(3).unwrap(), b"salt-one-of-dc", b"salt-two-sixteen").unwrap();
    let verifier = kdf.verifier(&kdf.hash_password(b"hunter2"));
    let mut rng = StdRng::seed_from_u64(41);
    let mut primes = PrimeCache::<2>::default();
    let mut flow = password_flow();
    // A wrong password: the DC refuses the proof.
    let dc = SrpServer::new(&kdf, &verifier, &mut rng).unwrap();
    let s = take(&mut flow, t(3));
    flow.handle_result(t(3), s.req.tag, &real_password(&kdf, dc.srp_b(), dc.srp_id()))
        .unwrap();
    flow.submit_password(t(4), b"hunter3", &mut primes, &mut rng).unwrap();
    let s = take(&mut flow, t(4));
    let (id, a, m1) = srp_fields(&s);
    assert_eq!(dc.check(id, &a, &m1), Err(SrpError::WrongPassword));
    flow.handle_rpc_error(t(4), s.req.tag, 400, b"PASSWORD_HASH_INVALID")
        .unwrap();
    // The right one, with fresh parameters.
    let dc = SrpServer::new(&kdf, &verifier, &mut rng).unwrap();
    let s = take(&mut flow, t(5));
    assert_eq!(s.method, functions::AccountGetPassword::ID);
    flow.handle_result(t(5), s.req.tag, &real_password(&kdf, dc.srp_b(), dc.srp_id()))
        .unwrap();
    flow.submit_password(t(6), b"hunter2", &mut primes, &mut rng).unwrap();
    assert_eq!(
        flow.submit_password(t(6), b"hunter2", &mut primes, &mut rng),
        Err(SignInError::WrongState),
        "one proof per srp_B"
    );
    let s = take(&mut flow, t(6));
    let (id, a, m1) = srp_fields(&s);
    assert_eq!(dc.check(id, &a, &m1), Ok(()));
    assert_eq!(
        signed_in(flow.handle_result(t(7), s.req.tag, &authorization(&user(8, false), None))),
        (8, false)
    );
}

/// DC parameters that fail the spec's checks end the flow before the password is hashed, with the SRP error and
/// the peer's fault (items 16 and 17 as the sign-in flow applies them).
#[test]
fn chk_016_chk_017_password_parameters_failing_the_checks_end_the_flow() {
    let kdf = CheckedKdf::new(DhGroup::telegram(3).unwrap(), b"salt-one-of-dc", b"salt-two-sixteen").unwrap();
    let mut rng = StdRng::seed_from_u64(42);
    let mut primes = PrimeCache::<2>::default();
    let zero_b = [0u8; SRP_BYTES];
    let p_bytes = kdf.group().prime_bytes();
    // B = 0, B = p (not below p), and a group whose g is not a generator of the right subgroup (5 mod Telegram's p).
    let cases: [(Vec<u8>, SrpError); 3] = [
        (real_password(&kdf, &zero_b, 1), SrpError::BRange),
        (real_password(&kdf, &p_bytes, 1), SrpError::BRange),
        (
            real_password_g(&kdf, 5, &[0x42; SRP_BYTES], 1),
            SrpError::Group(DhError::GeneratorResidue),
        ),
    ];
    for (body, want) in cases {
        let mut flow = password_flow();
        let s = take(&mut flow, t(3));
        flow.handle_result(t(3), s.req.tag, &body).unwrap();
        let e = flow
            .submit_password(t(4), b"hunter2", &mut primes, &mut rng)
            .unwrap_err();
        assert_eq!(e, SignInError::Srp(want));
        assert_eq!(e.fault(), Fault::Peer);
        assert_eq!(flow.stage(), Stage::Failed(e));
        no_request(&mut flow, t(4));
    }
}

fn enums_password(b: &[u8]) -> types::AccountPassword<'_> {
    let enums::AccountPassword::AccountPassword(p) = enums::AccountPassword::decode(b).unwrap();
    p
}

/// A phone flow that was told SESSION_PASSWORD_NEEDED on its code: getPassword is next.
fn password_flow() -> SignIn<'static> {
    let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
    let s = take(&mut flow, t(1));
    flow.handle_result(t(1), s.req.tag, &sent_code(b"h", false, None))
        .unwrap();
    flow.submit_code(t(2), b"11111").unwrap();
    let s = take(&mut flow, t(2));
    flow.handle_rpc_error(t(2), s.req.tag, 401, b"SESSION_PASSWORD_NEEDED")
        .unwrap();
    flow
}

// --- QR login -------------------------------------------------------------------------------------------

#[test]
fn qr_login_reexports_on_expiry_and_update_then_migrates_and_imports() {
    let except = [1i64, 2];
    let unix = 1_700_000_000u64;
    let mut flow = SignIn::qr(cfg_init(), &except, t(1000), UnixTime(unix));
    let s = take(&mut flow, t(1000));
    assert!(s.init);
    let call: functions::AuthExportLoginToken = s.view();
    assert_eq!(call.except_ids.iter().collect::<Vec<_>>(), vec![1, 2]);
    let body = login_token(unix as i32 + 30, b"tok-1");
    let p = flow.handle_result(t(1000), s.req.tag, &body).unwrap();
    assert!(matches!(p, Progress::QrToken { token: b"tok-1", expires } if expires == t(1030)));
    assert_eq!(flow.stage(), Stage::WaitQrScan);
    assert_eq!(flow.poll_timeout(), Some(t(1030)));
    no_request(&mut flow, t(1029));
    // Expiry: a new token.
    flow.handle_timeout(t(1030)).unwrap();
    let s = take(&mut flow, t(1030));
    assert_eq!(s.method, functions::AuthExportLoginToken::ID);
    assert!(!s.init);
    // A token already past its time still lives a second (TDLib).
    let body = login_token(unix as i32, b"tok-2");
    let p = flow.handle_result(t(1031), s.req.tag, &body).unwrap();
    assert!(matches!(p, Progress::QrToken { token: b"tok-2", expires } if expires == t(1032)));
    // Unrelated updates are ignored; updateLoginToken exports again.
    assert!(!flow.handle_update(t(1031), &bool_true()));
    assert!(!flow.handle_update(t(1031), &[1, 2, 3]));
    assert!(flow.handle_update(t(1031), &update_login_token()));
    let s = take(&mut flow, t(1031));
    assert_eq!(s.method, functions::AuthExportLoginToken::ID);
    let body = enc(&types::AuthLoginTokenMigrateTo {
        dc_id: 4,
        token: b"tok-3",
    });
    let p = flow.handle_result(t(1032), s.req.tag, &body).unwrap();
    assert!(matches!(
        p,
        Progress::Migrate {
            dc: 4,
            reason: MigrateReason::LoginToken
        }
    ));
    no_request(&mut flow, t(1032));
    flow.migrated(t(1033), 4).unwrap();
    let s = take(&mut flow, t(1033));
    assert!(s.init);
    let call: functions::AuthImportLoginToken = s.view();
    assert_eq!(call.token, b"tok-3");
    let auth = authorization(&user(11, false), None);
    let a = enums::AuthAuthorization::decode(&auth).unwrap();
    let body = enc(&types::AuthLoginTokenSuccess {
        authorization: Obj::new(&a),
    });
    assert_eq!(signed_in(flow.handle_result(t(1034), s.req.tag, &body)), (11, false));
}

#[test]
fn qr_login_password_needed_after_import_and_reexport_backoff() {
    let mut flow = SignIn::qr(cfg(), &[], t(0), UnixTime(100));
    let s = take(&mut flow, t(0));
    flow.handle_result(t(0), s.req.tag, &login_token(130, b"a")).unwrap();
    flow.handle_timeout(t(30)).unwrap();
    // Re-exports that fail are retried 1, 2, 4 s apart while the last token stays shown.
    for (i, wait) in [1u64, 2, 4].into_iter().enumerate() {
        let now = t(30 + [0, 1, 3][i]);
        let s = take(&mut flow, now);
        let p = flow.handle_rpc_error(now, s.req.tag, 500, b"INTERNAL").unwrap();
        assert!(matches!(p, Progress::Refused(Refusal::Other { code: 500 })));
        assert_eq!(flow.stage(), Stage::WaitQrScan);
        assert_eq!(flow.poll_timeout(), Some(Instant::from_secs(now.as_secs() + wait)));
        no_request(&mut flow, now);
        flow.handle_timeout(Instant::from_secs(now.as_secs() + wait)).unwrap();
    }
    let s = take(&mut flow, t(37));
    assert!(matches!(
        flow.handle_rpc_error(t(37), s.req.tag, 401, b"SESSION_PASSWORD_NEEDED"),
        Ok(Progress::Nothing)
    ));
    let s = take(&mut flow, t(37));
    assert_eq!(s.method, functions::AccountGetPassword::ID);
    assert!(matches!(
        flow.handle_result(t(37), s.req.tag, &password(9, &[7; 256], None)),
        Ok(Progress::PasswordNeeded(_))
    ));
    flow.submit_srp(t(38), srp_answer(9)).unwrap();
    let s = take(&mut flow, t(38));
    assert_eq!(s.method, functions::AuthCheckPassword::ID);
    assert_eq!(
        signed_in(flow.handle_result(t(39), s.req.tag, &authorization(&user(12, false), None))),
        (12, false)
    );
}

#[test]
fn qr_first_export_refused_ends_the_flow() {
    let mut flow = SignIn::qr(cfg(), &[], t(0), UnixTime(100));
    let s = take(&mut flow, t(0));
    assert_eq!(
        flow.handle_rpc_error(t(0), s.req.tag, 400, b"API_ID_INVALID")
            .unwrap_err(),
        SignInError::Refused(Refusal::ApiIdInvalid)
    );
}

// --- log out --------------------------------------------------------------------------------------------

#[test]
fn log_out_keeps_the_future_token_and_ends_logged_out_on_errors_too() {
    let mut flow = SignIn::log_out(cfg());
    let s = take(&mut flow, t(0));
    assert_eq!(s.method, functions::AuthLogOut::ID);
    let body = enc(&types::AuthLoggedOut {
        future_auth_token: Some(b"next"),
    });
    let p = flow.handle_result(t(0), s.req.tag, &body).unwrap();
    assert!(matches!(
        p,
        Progress::LoggedOut {
            future_auth_token: Some(b"next")
        }
    ));
    assert!(p.is_final());
    assert_eq!(flow.stage(), Stage::LoggedOut);
    let mut flow = SignIn::log_out(cfg());
    let s = take(&mut flow, t(0));
    let p = flow
        .handle_rpc_error(t(0), s.req.tag, 401, b"AUTH_KEY_UNREGISTERED")
        .unwrap();
    assert!(matches!(
        p,
        Progress::LoggedOut {
            future_auth_token: None
        }
    ));
}

// --- negative -------------------------------------------------------------------------------------------

#[test]
fn answers_of_the_wrong_type_or_malformed_end_the_flow_with_typed_errors() {
    let cases: Vec<(Vec<u8>, SignInError)> = vec![
        // A Bool where auth.SentCode is due.
        (
            bool_true(),
            SignInError::Malformed(LayoutError::WrongType(types::BoolTrue::ID)),
        ),
        (
            0xdead_beefu32.to_le_bytes().to_vec(),
            SignInError::Malformed(LayoutError::UnknownConstructor(0xdead_beef)),
        ),
        (vec![], SignInError::Malformed(LayoutError::Truncated)),
        (
            {
                let mut b = sent_code(b"h", false, None);
                b.truncate(b.len() - 1);
                b
            },
            SignInError::Malformed(LayoutError::Truncated),
        ),
        (
            {
                let mut b = sent_code(b"h", false, None);
                b.extend([0; 4]);
                b
            },
            SignInError::Malformed(LayoutError::Trailing),
        ),
        // Well-formed but useless.
        (
            sent_code(b"", false, None),
            SignInError::Unexpected(types::AuthSentCode::ID),
        ),
        (
            sent_code(&[b'h'; MAX_PHONE_CODE_HASH + 1], false, None),
            SignInError::PeerTooLong(Field::PhoneCodeHash),
        ),
        (
            {
                let ty = types::AuthSentCodeTypeEmailCode {
                    apple_signin_allowed: false,
                    google_signin_allowed: false,
                    email_pattern: b"a***@b",
                    length: 6,
                    reset_available_period: None,
                    reset_pending_date: None,
                };
                enc(&types::AuthSentCode {
                    type_: Obj::new(&ty),
                    phone_code_hash: b"h",
                    next_type: None,
                    timeout: None,
                })
            },
            SignInError::Unsupported(types::AuthSentCodeTypeEmailCode::ID),
        ),
        // An authorization answering sendCode (only through auth.sentCodeSuccess).
        (
            authorization(&user(1, false), None),
            SignInError::Malformed(LayoutError::WrongType(types::AuthAuthorization::ID)),
        ),
    ];
    for (body, want) in cases {
        let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
        let s = take(&mut flow, t(1));
        let e = flow.handle_result(t(1), s.req.tag, &body).unwrap_err();
        assert_eq!(e, want, "{body:02x?}");
        assert_ne!(e.fault(), Fault::Host);
        assert_eq!(flow.stage(), Stage::Failed(want));
        no_request(&mut flow, t(1));
    }
    // userEmpty in an authorization; sign-up required for a bot.
    let mut flow = SignIn::bot(cfg(), b"1:x").unwrap();
    let s = take(&mut flow, t(1));
    let empty = enc(&types::UserEmpty { id: 1 });
    assert_eq!(
        flow.handle_result(t(1), s.req.tag, &authorization(&empty, None))
            .unwrap_err(),
        SignInError::Unexpected(types::UserEmpty::ID)
    );
    let mut flow = SignIn::bot(cfg(), b"1:x").unwrap();
    let s = take(&mut flow, t(1));
    assert_eq!(
        flow.handle_result(t(1), s.req.tag, &sign_up_required(b"")).unwrap_err(),
        SignInError::Unexpected(types::AuthAuthorizationSignUpRequired::ID)
    );
}

#[test]
fn answers_to_requests_the_flow_did_not_send_change_nothing() {
    let mut flow = SignIn::bot(cfg(), b"1:x").unwrap();
    // Nothing in flight yet.
    assert_eq!(
        flow.handle_result(t(1), Tag(1), &bool_true()).unwrap_err(),
        SignInError::UnknownTag
    );
    let s = take(&mut flow, t(1));
    let other = Tag(s.req.tag.0.wrapping_add(1));
    let body = authorization(&user(1, true), None);
    let e = flow.handle_result(t(1), other, &body).unwrap_err();
    assert_eq!(e, SignInError::UnknownTag);
    assert_eq!(e.fault(), Fault::Host);
    assert_eq!(
        flow.handle_rpc_error(t(1), other, 400, b"X").unwrap_err(),
        SignInError::UnknownTag
    );
    assert_eq!(flow.handle_failed(t(1), other).unwrap_err(), SignInError::UnknownTag);
    assert_eq!(flow.stage(), Stage::Working);
    // The real answer still lands; a second copy of it does not.
    signed_in(flow.handle_result(t(2), s.req.tag, &body));
    assert_eq!(
        flow.handle_result(t(2), s.req.tag, &body).unwrap_err(),
        SignInError::UnknownTag
    );
}

#[test]
fn oversized_or_empty_host_strings_are_refused_before_anything_changes() {
    let long = vec![b'1'; 1000];
    assert_eq!(
        SignIn::phone(cfg(), &long[..MAX_PHONE + 1]).unwrap_err(),
        SignInError::TooLong(Field::Phone)
    );
    assert_eq!(
        SignIn::phone(cfg(), b"").unwrap_err(),
        SignInError::TooLong(Field::Phone)
    );
    assert!(SignIn::phone(cfg(), &long[..MAX_PHONE]).is_ok());
    assert_eq!(SignIn::bot(cfg(), b"no-colon").unwrap_err(), SignInError::BadBotToken);
    let mut token = vec![b'7'; 200];
    token[1] = b':';
    assert_eq!(
        SignIn::bot(cfg(), &token).unwrap_err(),
        SignInError::TooLong(Field::BotToken)
    );

    let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
    // A code before one was sent.
    assert_eq!(flow.submit_code(t(1), b"1"), Err(SignInError::WrongState));
    let s = take(&mut flow, t(1));
    flow.handle_result(t(1), s.req.tag, &sent_code(b"h", false, None))
        .unwrap();
    assert_eq!(
        flow.submit_code(t(2), &long[..MAX_CODE + 1]),
        Err(SignInError::TooLong(Field::Code))
    );
    assert_eq!(flow.submit_code(t(2), b""), Err(SignInError::TooLong(Field::Code)));
    assert_eq!(flow.stage(), Stage::WaitCode);
    assert_eq!(flow.sign_up(t(2), b"a", b"b"), Err(SignInError::WrongState));
    assert_eq!(flow.submit_srp(t(2), srp_answer(1)), Err(SignInError::WrongState));
    assert_eq!(flow.migrated(t(2), 2), Err(SignInError::WrongState));
    no_request(&mut flow, t(2));
    flow.submit_code(t(2), b"1").unwrap();
    // While the code is in flight, no second one.
    let s = take(&mut flow, t(2));
    assert_eq!(flow.submit_code(t(2), b"2"), Err(SignInError::WrongState));
    flow.handle_result(t(3), s.req.tag, &sign_up_required(b"")).unwrap();
    assert_eq!(
        flow.sign_up(t(3), &long[..MAX_NAME + 1], b""),
        Err(SignInError::TooLong(Field::Name))
    );
    assert_eq!(
        flow.sign_up(t(3), b"a", &long[..MAX_NAME + 1]),
        Err(SignInError::TooLong(Field::Name))
    );
    assert_eq!(flow.stage(), Stage::WaitSignUp);
}

#[test]
fn migrations_to_bad_dcs_or_too_many_end_the_flow() {
    for msg in [&b"PHONE_MIGRATE_0"[..], b"PHONE_MIGRATE_1001"] {
        let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
        let s = take(&mut flow, t(1));
        let e = flow.handle_rpc_error(t(1), s.req.tag, 303, msg).unwrap_err();
        assert!(matches!(e, SignInError::BadDc(_)), "{e:?}");
        assert_eq!(e.fault(), Fault::Peer);
    }
    // A FILE_MIGRATE makes no sense for a sign-in.
    let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
    let s = take(&mut flow, t(1));
    assert_eq!(
        flow.handle_rpc_error(t(1), s.req.tag, 303, b"FILE_MIGRATE_2")
            .unwrap_err(),
        SignInError::Refused(Refusal::Migrate(2))
    );
    // DCs bouncing the client between them.
    let mut flow = SignIn::phone(cfg(), b"9996612345").unwrap();
    for i in 0..MAX_MIGRATIONS {
        let s = take(&mut flow, t(1));
        let dc = 1 + i32::from(i % 2);
        flow.handle_rpc_error(t(1), s.req.tag, 303, format!("PHONE_MIGRATE_{dc}").as_bytes())
            .unwrap();
        flow.migrated(t(1), dc).unwrap();
    }
    let s = take(&mut flow, t(1));
    assert_eq!(
        flow.handle_rpc_error(t(1), s.req.tag, 303, b"PHONE_MIGRATE_2")
            .unwrap_err(),
        SignInError::TooManyMigrations
    );
}

#[test]
fn lost_requests_are_resent_a_bounded_number_of_times() {
    let mut flow = SignIn::bot(cfg_init(), b"1:x").unwrap();
    for _ in 0..MAX_RESENDS {
        let s = take(&mut flow, t(1));
        assert!(s.init, "a lost first call is wrapped again");
        assert!(matches!(flow.handle_failed(t(1), s.req.tag), Ok(Progress::Nothing)));
    }
    let s = take(&mut flow, t(1));
    assert_eq!(flow.handle_failed(t(1), s.req.tag).unwrap_err(), SignInError::Lost);
    assert_eq!(flow.stage(), Stage::Failed(SignInError::Lost));
}

#[test]
fn too_small_a_buffer_writes_nothing_and_says_how_much() {
    let mut flow = SignIn::phone(cfg_init(), b"9996612345").unwrap();
    let mut small = [0u8; 16];
    let Err(SignInError::BufferTooSmall { required }) = flow.poll_request(t(1), &mut small) else {
        panic!()
    };
    assert_eq!(small, [0; 16]);
    let mut buf = vec![0u8; required];
    let req = flow.poll_request(t(1), &mut buf).unwrap().unwrap();
    assert_eq!(req.len, required);
    assert_eq!(req.method, Method::SendCode);
}

/// The checked-in fuzz seeds of `client_signin` replay through its entry point with the flows compiled in.
#[test]
fn fuzz_seeds_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/client_signin");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        mtproto_sansio::fuzzing::signin::client_signin(&data);
        n += 1;
    }
    assert!(n > 0);
}

/// One operation of the `client_signin` fuzz input (see `fuzzing::signin::client_signin`).
enum Op {
    Result(Vec<u8>),
    Error(u8, &'static [u8]),
    Time(u8),
    Update(Vec<u8>),
    Input(u8),
}

fn seed(sel: u8, ops: Vec<Op>) -> Vec<u8> {
    let mut out = vec![sel];
    for op in ops {
        match op {
            Op::Result(b) => {
                out.push(0);
                out.extend((b.len() as u16).to_le_bytes());
                out.extend(b);
            }
            Op::Error(code, msg) => {
                out.extend([1, code, msg.len() as u8]);
                out.extend(msg);
            }
            Op::Time(s) => out.extend([3, s]),
            Op::Update(b) => {
                out.push(4);
                out.extend((b.len() as u16).to_le_bytes());
                out.extend(b);
            }
            Op::Input(i) => out.extend([5, i]),
        }
    }
    out
}

/// The seeds: each flow's scripted run in the fuzz input format. Written by `write_fuzz_seeds`.
fn fuzz_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use Op::*;
    let auth = |id, bot| authorization(&user(id, bot), None);
    let success = {
        let a = auth(11, false);
        let a = enums::AuthAuthorization::decode(&a).unwrap();
        enc(&types::AuthLoginTokenSuccess {
            authorization: Obj::new(&a),
        })
    };
    vec![
        ("bot", seed(0, vec![Result(auth(1, true))])),
        (
            "bot_migrate",
            seed(4, vec![Error(0, b"USER_MIGRATE_2"), Input(5), Result(auth(1, true))]),
        ),
        (
            "phone_password",
            seed(
                1,
                vec![
                    Result(sent_code(b"h", true, Some(60))),
                    Input(0),
                    Error(1, b"PHONE_CODE_INVALID"),
                    Time(60),
                    Input(1),
                    Result(sent_code(b"h2", false, None)),
                    Input(0),
                    Error(2, b"SESSION_PASSWORD_NEEDED"),
                    Result(password(1, &[7; 256], Some(b"hint"))),
                    Input(4),
                    Error(1, b"PASSWORD_HASH_INVALID"),
                    Result(password(2, &[8; 256], None)),
                    Input(4),
                    Result(auth(2, false)),
                ],
            ),
        ),
        (
            "phone_sign_up",
            seed(
                5,
                vec![
                    Result(sent_code(b"h", false, None)),
                    Input(0),
                    Result(sign_up_required(b"terms")),
                    Input(3),
                    Result(auth(3, false)),
                ],
            ),
        ),
        (
            "phone_flood_cancel",
            seed(
                1,
                vec![
                    Error(3, b"FLOOD_WAIT_3"),
                    Time(3),
                    Result(sent_code(b"h", false, None)),
                    Input(2),
                    Result(bool_true()),
                ],
            ),
        ),
        (
            "qr",
            seed(
                6,
                vec![
                    Result(login_token(1_700_000_030, b"a")),
                    Time(255),
                    Result(login_token(1_700_000_999, b"b")),
                    Update(update_login_token()),
                    Result(enc(&types::AuthLoginTokenMigrateTo { dc_id: 2, token: b"c" })),
                    Input(5),
                    Result(success),
                ],
            ),
        ),
        (
            "log_out",
            seed(
                3,
                vec![Result(enc(&types::AuthLoggedOut {
                    future_auth_token: Some(b"f"),
                }))],
            ),
        ),
    ]
}

/// Regenerates `fuzz/corpus/client_signin/` from the scripted runs: `cargo test --features std,api --test
/// client_signin -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/client_signin");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in fuzz_seeds() {
        std::fs::write(dir.join(format!("seed_{name}")), data).unwrap();
    }
}

/// The checked-in seeds are the scripted runs above, in the fuzz input format (so the fuzzer starts from whole
/// flows, not from noise).
#[test]
fn fuzz_seeds_are_the_scripted_runs() {
    for (name, data) in fuzz_seeds() {
        let on_disk = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz/corpus/client_signin/seed_{name}")),
        )
        .unwrap();
        assert_eq!(on_disk, data, "seed {name} is stale: run write_fuzz_seeds");
    }
}
