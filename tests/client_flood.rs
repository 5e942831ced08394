//! The client layer's `rpc_error` classifier and flood-wait scheduler (src/client/rpc_error.rs, src/client/flood.rs).

use core::time::Duration;

use mtproto_sansio::client::flood::{
    Admit, ChainId, FloodConfig, FloodError, FloodScheduler, MAX_WAIT, MethodKey, RetryState, Verdict,
};
use mtproto_sansio::client::rpc_error::{
    AuthProblem, ClassifyError, ErrorKind, MigrateReason, RetryReason, RpcError, WaitReason,
};
use mtproto_sansio::client::{DcId, RequestId};
use mtproto_sansio::session::RpcErrorKind;
use mtproto_sansio::time::Instant;

fn dc(n: i64) -> DcId {
    DcId::new(n).unwrap()
}

fn kind(code: i32, name: &[u8]) -> Result<ErrorKind, ClassifyError> {
    RpcError::classify(code, name).map(|e| e.kind)
}

fn err(code: i32, name: &'static [u8]) -> RpcError<'static> {
    RpcError::classify(code, name).unwrap()
}

const SEND: u32 = 0x983f_9745; // messages.sendMessage
const GET: u32 = 0x4063_9e74;
const T0: Instant = Instant::from_secs(100);

fn key(method: u32, d: i64) -> MethodKey {
    MethodKey { method, dc: dc(d) }
}

fn at(secs: u64) -> Instant {
    Instant::from_micros(T0.as_micros() + secs * 1_000_000)
}

#[test]
fn classifies_every_family_the_client_handles() {
    let wait = |reason, seconds| Ok(ErrorKind::Wait { reason, seconds });
    assert_eq!(kind(420, b"FLOOD_WAIT_31"), wait(WaitReason::Flood, 31));
    assert_eq!(kind(420, b"FLOOD_PREMIUM_WAIT_5"), wait(WaitReason::FloodPremium, 5));
    assert_eq!(kind(420, b"SLOWMODE_WAIT_300"), wait(WaitReason::Slowmode, 300));
    assert_eq!(
        kind(420, b"FLOOD_TEST_PHONE_WAIT_7"),
        wait(WaitReason::FloodTestPhone, 7)
    );
    assert_eq!(
        kind(420, b"TAKEOUT_INIT_DELAY_86400"),
        wait(WaitReason::TakeoutInitDelay, 86400)
    );
    assert_eq!(
        kind(420, b"2FA_CONFIRM_WAIT_604800"),
        wait(WaitReason::TwoFaConfirm, 604800)
    );
    let mig = |reason, d| Ok(ErrorKind::Migrate { reason, dc: dc(d) });
    assert_eq!(kind(303, b"PHONE_MIGRATE_4"), mig(MigrateReason::Phone, 4));
    assert_eq!(kind(303, b"NETWORK_MIGRATE_2"), mig(MigrateReason::Network, 2));
    assert_eq!(kind(303, b"USER_MIGRATE_1"), mig(MigrateReason::User, 1));
    assert_eq!(kind(303, b"FILE_MIGRATE_5"), mig(MigrateReason::File, 5));
    assert_eq!(kind(303, b"STATS_MIGRATE_3"), mig(MigrateReason::Stats, 3));
    assert!(MigrateReason::Phone.moves_home() && MigrateReason::Network.moves_home());
    assert!(MigrateReason::User.moves_home() && !MigrateReason::File.moves_home());
    assert!(!MigrateReason::Stats.moves_home());
    assert_eq!(kind(420, b"FLOOD"), Ok(ErrorKind::Retry(RetryReason::Flood)));
    assert_eq!(kind(500, b"INTERNAL"), Ok(ErrorKind::Retry(RetryReason::Internal)));
    assert_eq!(
        kind(500, b"WORKER_BUSY_TOO_LONG_RETRY"),
        Ok(ErrorKind::Retry(RetryReason::WorkerBusy))
    );
    assert_eq!(kind(-503, b"Timeout"), Ok(ErrorKind::Retry(RetryReason::Timeout)));
    assert_eq!(
        kind(401, b"AUTH_KEY_UNREGISTERED"),
        Ok(ErrorKind::Unauthorized(AuthProblem::KeyUnregistered))
    );
    assert_eq!(
        kind(401, b"SESSION_REVOKED"),
        Ok(ErrorKind::Unauthorized(AuthProblem::SessionRevoked))
    );
    assert_eq!(
        kind(401, b"USER_DEACTIVATED_BAN"),
        Ok(ErrorKind::Unauthorized(AuthProblem::UserDeactivatedBan))
    );
    assert_eq!(
        kind(401, b"SOMETHING_NEW"),
        Ok(ErrorKind::Unauthorized(AuthProblem::Other))
    );
    assert_eq!(kind(401, b"SESSION_PASSWORD_NEEDED"), Ok(ErrorKind::PasswordNeeded));
    // Everything else is kept as (code, name).
    let e = err(400, b"PHONE_CODE_INVALID");
    assert_eq!(
        (e.code, e.name, e.kind),
        (400, &b"PHONE_CODE_INVALID"[..], ErrorKind::Other)
    );
    assert_eq!(err(420, b"FLOOD_WAIT_9").wait_seconds(), Some(9));
}

#[test]
fn a_number_that_is_missing_junk_or_too_large_is_a_typed_error() {
    assert_eq!(kind(420, b"FLOOD_WAIT_"), Err(ClassifyError::MissingNumber));
    assert_eq!(kind(420, b"FLOOD_WAIT"), Err(ClassifyError::MissingNumber));
    assert_eq!(kind(420, b"FLOOD_WAIT_X"), Err(ClassifyError::Junk));
    assert_eq!(kind(420, b"FLOOD_WAIT_-5"), Err(ClassifyError::Junk));
    assert_eq!(kind(420, b"FLOOD_WAIT_5\xff"), Err(ClassifyError::Junk));
    assert_eq!(kind(420, b"FLOOD_WAIT_4294967296"), Err(ClassifyError::Overflow));
    assert_eq!(
        kind(420, b"FLOOD_WAIT_4294967295"),
        Ok(ErrorKind::Wait {
            reason: WaitReason::Flood,
            seconds: u32::MAX
        })
    );
    assert_eq!(kind(303, b"PHONE_MIGRATE_"), Err(ClassifyError::MissingNumber));
    assert_eq!(kind(303, b"PHONE_MIGRATE_0"), Err(ClassifyError::DcOutOfRange));
    assert_eq!(kind(303, b"FILE_MIGRATE_1001"), Err(ClassifyError::DcOutOfRange));
    assert_eq!(kind(303, b"FILE_MIGRATE_99999999999999"), Err(ClassifyError::Overflow));
    assert_eq!(kind(303, b"USER_MIGRATE_2a"), Err(ClassifyError::Junk));
    // The session layer reads the same names (without the code) and maps what it cannot read to Other.
    assert_eq!(RpcErrorKind::parse(b"FLOOD_WAIT_X"), RpcErrorKind::Other);
    assert_eq!(RpcErrorKind::parse(b"SLOWMODE_WAIT_3"), RpcErrorKind::FloodWait(3));
    assert_eq!(RpcErrorKind::parse(b"STATS_MIGRATE_3"), RpcErrorKind::Migrate(3));
}

#[test]
fn a_short_wait_is_retried_when_due_and_not_before() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig::DEFAULT);
    let mut r = RetryState::default();
    let v = s
        .on_error(RequestId(1), key(SEND, 2), None, &mut r, &err(420, b"FLOOD_WAIT_5"), T0)
        .unwrap();
    assert_eq!(v, Verdict::Retry { until: at(5) });
    assert_eq!(r.waited(), Duration::from_secs(5));
    assert_eq!(s.poll_timeout(), Some(at(5)));
    assert_eq!(s.poll_release(), None);
    s.handle_timeout(Instant::from_micros(at(5).as_micros() - 1));
    assert_eq!(s.poll_release(), None);
    s.handle_timeout(at(5));
    assert_eq!(s.poll_release(), Some(RequestId(1)));
    assert_eq!((s.poll_release(), s.poll_timeout(), s.len()), (None, None, 0));
}

#[test]
fn a_wait_beyond_the_threshold_is_surfaced_and_later_calls_of_that_method_on_that_dc_are_refused_without_sending() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig::DEFAULT);
    let mut r = RetryState::default();
    let v = s
        .on_error(
            RequestId(1),
            key(SEND, 2),
            None,
            &mut r,
            &err(420, b"FLOOD_WAIT_61"),
            T0,
        )
        .unwrap();
    assert_eq!(v, Verdict::Surface { until: Some(at(61)) });
    assert!(s.is_empty() && s.poll_timeout().is_none());
    let fresh = RetryState::default();
    assert_eq!(
        s.submit(RequestId(2), key(SEND, 2), None, &fresh, T0),
        Ok(Admit::TooLong { until: at(61) })
    );
    // Another DC, another method: not affected.
    assert_eq!(
        s.submit(RequestId(3), key(SEND, 4), None, &fresh, at(1)),
        Ok(Admit::Send)
    );
    assert_eq!(
        s.submit(RequestId(4), key(GET, 2), None, &fresh, at(1)),
        Ok(Admit::Send)
    );
    // Once the rest of the wait is within the threshold, the call is held instead; once it expired, sent.
    assert_eq!(
        s.submit(RequestId(5), key(SEND, 2), None, &fresh, at(1)),
        Ok(Admit::Held)
    );
    assert_eq!(s.poll_timeout(), Some(at(61)));
    assert_eq!(
        s.submit(RequestId(6), key(SEND, 2), None, &fresh, at(61)),
        Ok(Admit::Send)
    );
    assert_eq!(s.delayed_until(key(SEND, 2), at(61)), None);
}

#[test]
fn a_zero_threshold_surfaces_every_wait() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig {
        auto_wait_limit: Duration::ZERO,
        ..FloodConfig::DEFAULT
    });
    let mut r = RetryState::default();
    let v = s
        .on_error(RequestId(1), key(SEND, 2), None, &mut r, &err(420, b"FLOOD_WAIT_0"), T0)
        .unwrap();
    // FLOOD_WAIT_0 still waits a second (TDLib's clamp).
    assert_eq!(v, Verdict::Surface { until: Some(at(1)) });
}

#[test]
fn waits_are_clamped_to_one_second_and_fourteen_days() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig::DEFAULT);
    let mut r = RetryState::default();
    let v = s
        .on_error(RequestId(1), key(SEND, 2), None, &mut r, &err(420, b"FLOOD_WAIT_0"), T0)
        .unwrap();
    assert_eq!(v, Verdict::Retry { until: at(1) });
    let mut r2 = RetryState::default();
    let v = s
        .on_error(
            RequestId(2),
            key(GET, 2),
            None,
            &mut r2,
            &err(420, b"FLOOD_WAIT_4294967295"),
            T0,
        )
        .unwrap();
    assert_eq!(
        v,
        Verdict::Surface {
            until: Some(T0.saturating_add(MAX_WAIT))
        }
    );
}

#[test]
fn the_budget_is_per_request_across_waits() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig::DEFAULT);
    let mut r = RetryState::default();
    let id = RequestId(7);
    assert_eq!(
        s.on_error(id, key(SEND, 2), None, &mut r, &err(420, b"FLOOD_WAIT_30"), T0),
        Ok(Verdict::Retry { until: at(30) })
    );
    s.handle_timeout(at(30));
    assert_eq!(s.poll_release(), Some(id));
    assert_eq!(
        s.on_error(id, key(SEND, 2), None, &mut r, &err(420, b"SLOWMODE_WAIT_30"), at(31)),
        Ok(Verdict::Retry { until: at(61) })
    );
    s.handle_timeout(at(61));
    assert_eq!(s.poll_release(), Some(id));
    assert_eq!(r.waited(), Duration::from_secs(60));
    assert_eq!(
        s.on_error(id, key(SEND, 2), None, &mut r, &err(420, b"FLOOD_WAIT_1"), at(62)),
        Ok(Verdict::Surface { until: Some(at(63)) })
    );
}

#[test]
fn server_errors_back_off_exponentially_a_bounded_number_of_times() {
    let cfg = FloodConfig {
        auto_wait_limit: Duration::from_secs(3600),
        ..FloodConfig::DEFAULT
    };
    let mut s: FloodScheduler = FloodScheduler::new(cfg);
    let mut r = RetryState::default();
    let id = RequestId(1);
    let mut now = T0;
    let mut waits = Vec::new();
    for e in [
        err(500, b"INTERNAL"),
        err(-503, b"Timeout"),
        err(420, b"FLOOD"),
        err(500, b"X"),
        err(500, b"X"),
    ] {
        let Verdict::Retry { until } = s.on_error(id, key(GET, 1), None, &mut r, &e, now).unwrap() else {
            panic!("not retried");
        };
        waits.push(until.saturating_duration_since(now).as_secs());
        s.handle_timeout(until);
        assert_eq!(s.poll_release(), Some(id));
        now = until;
    }
    assert_eq!(waits, [1, 2, 4, 8, 16]);
    assert_eq!(r.retries(), 5);
    assert_eq!(
        s.on_error(id, key(GET, 1), None, &mut r, &err(500, b"X"), now),
        Ok(Verdict::Surface { until: None })
    );
    // The worker-busy error waits one second whatever the attempt; backoffs stop at backoff_max.
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig { max_retries: 20, ..cfg });
    let mut r = RetryState::default();
    let mut last = 0;
    for i in 0..8 {
        let e = if i == 3 {
            err(500, b"WORKER_BUSY_TOO_LONG_RETRY")
        } else {
            err(500, b"X")
        };
        let Verdict::Retry { until } = s.on_error(id, key(GET, 1), None, &mut r, &e, T0).unwrap() else {
            panic!("not retried");
        };
        last = until.saturating_duration_since(T0).as_secs();
        if i == 3 {
            assert_eq!(last, 1);
        }
        s.handle_timeout(until);
        s.poll_release();
    }
    assert_eq!(last, 60);
}

#[test]
fn not_a_wait_is_not_the_schedulers() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig::DEFAULT);
    let mut r = RetryState::default();
    for e in [
        err(303, b"FILE_MIGRATE_2"),
        err(400, b"PEER_ID_INVALID"),
        err(401, b"AUTH_KEY_UNREGISTERED"),
    ] {
        assert_eq!(
            s.on_error(RequestId(1), key(GET, 1), None, &mut r, &e, T0),
            Ok(Verdict::NotMine)
        );
    }
    assert_eq!(r, RetryState::default());
    assert!(s.is_empty());
}

#[test]
fn a_method_under_a_wait_holds_later_calls_and_releases_them_in_order() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig::DEFAULT);
    let mut r = RetryState::default();
    s.on_error(
        RequestId(1),
        key(SEND, 2),
        None,
        &mut r,
        &err(420, b"FLOOD_WAIT_10"),
        T0,
    )
    .unwrap();
    let fresh = RetryState::default();
    for id in 2..5 {
        assert_eq!(
            s.submit(RequestId(id), key(SEND, 2), None, &fresh, at(id)),
            Ok(Admit::Held)
        );
    }
    assert_eq!(
        s.submit(RequestId(1), key(SEND, 2), None, &fresh, at(5)),
        Err(FloodError::Duplicate)
    );
    s.handle_timeout(at(10));
    let out: Vec<_> = std::iter::from_fn(|| s.poll_release()).collect();
    assert_eq!(out, [RequestId(1), RequestId(2), RequestId(3), RequestId(4)]);
}

#[test]
fn a_chain_waits_behind_its_delayed_request_until_it_finished() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig::DEFAULT);
    let c = Some(ChainId(1));
    let fresh = RetryState::default();
    let mut ra = RetryState::default();
    let a = RequestId(1);
    s.on_error(a, key(SEND, 2), c, &mut ra, &err(420, b"FLOOD_WAIT_3"), T0)
        .unwrap();
    // Other methods in the same chain wait behind it; another chain does not.
    assert_eq!(s.submit(RequestId(2), key(GET, 2), c, &fresh, at(1)), Ok(Admit::Held));
    assert_eq!(s.submit(RequestId(3), key(GET, 2), c, &fresh, at(1)), Ok(Admit::Held));
    assert_eq!(
        s.submit(RequestId(4), key(GET, 2), Some(ChainId(2)), &fresh, at(1)),
        Ok(Admit::Send)
    );
    assert_eq!(
        s.submit(RequestId(5), key(GET, 2), None, &fresh, at(1)),
        Ok(Admit::Send)
    );
    assert_eq!(s.poll_timeout(), Some(at(3)));
    s.handle_timeout(at(3));
    assert_eq!(s.poll_release(), Some(a));
    assert_eq!(s.poll_release(), None, "the chain waits for A to finish");
    assert_eq!(s.poll_timeout(), None, "nothing waits on time");
    // A hits a second wait: it keeps its place at the head.
    assert_eq!(
        s.on_error(a, key(SEND, 2), c, &mut ra, &err(420, b"FLOOD_WAIT_2"), at(4)),
        Ok(Verdict::Retry { until: at(6) })
    );
    s.handle_timeout(at(6));
    assert_eq!(s.poll_release(), Some(a));
    assert!(s.completed(a, at(7)));
    assert_eq!(s.poll_release(), Some(RequestId(2)));
    assert_eq!(s.poll_release(), None);
    assert!(s.completed(RequestId(2), at(8)));
    assert_eq!(s.poll_release(), Some(RequestId(3)));
    assert!(s.completed(RequestId(3), at(8)));
    assert!(!s.completed(RequestId(3), at(8)));
    assert!(s.is_empty());
    // With the chain empty, a new member goes straight out.
    assert_eq!(s.submit(RequestId(6), key(GET, 2), c, &fresh, at(9)), Ok(Admit::Send));
}

#[test]
fn a_surfaced_chain_head_lets_the_chain_move_on() {
    let mut s: FloodScheduler = FloodScheduler::new(FloodConfig::DEFAULT);
    let c = Some(ChainId(9));
    let mut ra = RetryState::default();
    s.on_error(RequestId(1), key(SEND, 2), c, &mut ra, &err(420, b"FLOOD_WAIT_3"), T0)
        .unwrap();
    assert_eq!(
        s.submit(RequestId(2), key(GET, 2), c, &RetryState::default(), T0),
        Ok(Admit::Held)
    );
    s.handle_timeout(at(3));
    assert_eq!(s.poll_release(), Some(RequestId(1)));
    assert_eq!(
        s.on_error(
            RequestId(1),
            key(SEND, 2),
            c,
            &mut ra,
            &err(420, b"FLOOD_WAIT_600"),
            at(4)
        ),
        Ok(Verdict::Surface { until: Some(at(604)) })
    );
    assert_eq!(s.poll_release(), Some(RequestId(2)));
}

#[test]
fn a_full_scheduler_refuses_and_drops_nothing() {
    let mut s: FloodScheduler<2, 4> = FloodScheduler::new(FloodConfig::DEFAULT);
    let c = Some(ChainId(1));
    let mut r = RetryState::default();
    s.on_error(RequestId(1), key(SEND, 2), c, &mut r, &err(420, b"FLOOD_WAIT_5"), T0)
        .unwrap();
    let mut r2 = RetryState::default();
    s.on_error(RequestId(2), key(GET, 2), None, &mut r2, &err(500, b"X"), T0)
        .unwrap();
    let mut r3 = RetryState::default();
    assert_eq!(
        s.on_error(RequestId(3), key(GET, 3), None, &mut r3, &err(420, b"FLOOD_WAIT_5"), T0),
        Err(FloodError::Full)
    );
    assert_eq!(r3, RetryState::default(), "a refused request's state is unchanged");
    assert_eq!(FloodError::Full.fault(), mtproto_sansio::Fault::Environment);
    // The wait it carried is still known: the method is delayed.
    assert_eq!(s.delayed_until(key(GET, 3), T0), Some(at(5)));
    assert_eq!(
        s.submit(RequestId(4), key(GET, 2), c, &RetryState::default(), T0),
        Err(FloodError::Full)
    );
    // Not held: no need for room.
    assert_eq!(
        s.submit(RequestId(5), key(GET, 7), None, &RetryState::default(), T0),
        Ok(Admit::Send)
    );
    s.handle_timeout(at(5));
    let out: Vec<_> = std::iter::from_fn(|| s.poll_release()).collect();
    assert_eq!(out, [RequestId(1), RequestId(2)]);
}

#[test]
fn a_full_delay_table_forgets_the_soonest_delay_and_counts_it() {
    let mut s: FloodScheduler<8, 2> = FloodScheduler::new(FloodConfig::DEFAULT);
    for (i, w) in [
        (1u64, &b"FLOOD_WAIT_30"[..]),
        (2, b"FLOOD_WAIT_10"),
        (3, b"FLOOD_WAIT_20"),
    ] {
        let mut r = RetryState::default();
        let e = RpcError::classify(420, w).unwrap();
        s.on_error(RequestId(i), key(i as u32, 2), None, &mut r, &e, T0)
            .unwrap();
    }
    assert_eq!(s.delays_evicted(), 1);
    assert_eq!(s.delayed_until(key(2, 2), T0), None);
    assert_eq!(s.delayed_until(key(1, 2), T0), Some(at(30)));
    assert_eq!(s.delayed_until(key(3, 2), T0), Some(at(20)));
    // Expired delays are purged before anything is forgotten.
    let mut r = RetryState::default();
    s.on_error(
        RequestId(4),
        key(4, 2),
        None,
        &mut r,
        &err(420, b"FLOOD_WAIT_5"),
        at(25),
    )
    .unwrap();
    assert_eq!(s.delays_evicted(), 1);
}
