//! Fuzz entry points for the client layer: the `rpc_error` classifier, and the flood scheduler and DC router driven
//! by a sequence of host calls.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding

use core::time::Duration;

use crate::client::flood::{Admit, ChainId, FloodConfig, FloodScheduler, MAX_WAIT, MethodKey, RetryState, Verdict};
use crate::client::router::{Action, Link, LinkKind, RawDcOption, Route, Router, RouterConfig, Target, Ticket};
use crate::client::rpc_error::{ErrorKind, RpcError};
use crate::client::{DcId, RequestId};
use crate::session::RpcErrorKind;
use crate::time::Instant;

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] =
    &[("client_rpc_error", client_rpc_error), ("client_router", client_router)];

/// Input: `code:i32le name`. Classifies the error, checks it against the session layer's reading of the same name,
/// and hands it to a scheduler (which must hold it within the 14-day clamp or surface it).
pub fn client_rpc_error(data: &[u8]) {
    let (code, name) = match data.split_first_chunk::<4>() {
        Some((c, rest)) => (i32::from_le_bytes(*c), rest),
        None => (420, data),
    };
    let Ok(err) = RpcError::classify(code, name) else {
        return;
    };
    assert!(err.code == code && err.name == name);
    match err.kind {
        ErrorKind::Wait { seconds, .. } => {
            assert!(code == 420 && RpcErrorKind::parse(name) == RpcErrorKind::FloodWait(seconds));
        }
        ErrorKind::Migrate { dc, .. } => {
            assert!(code == 303 && RpcErrorKind::parse(name) == RpcErrorKind::Migrate(i32::from(dc.get())));
        }
        _ => {}
    }
    let mut s: FloodScheduler<4, 4> = FloodScheduler::new(FloodConfig::DEFAULT);
    let mut retry = RetryState::default();
    let now = Instant::from_secs(1);
    let key = MethodKey {
        method: 1,
        dc: DcId::new(2).unwrap_or_else(|| panic!("DC 2")),
    };
    match s.on_error(RequestId(1), key, None, &mut retry, &err, now) {
        Ok(Verdict::Retry { until }) => {
            assert!(until > now && until <= now.saturating_add(MAX_WAIT));
            assert!(s.poll_timeout() == Some(until));
            s.handle_timeout(until);
            assert!(s.poll_release() == Some(RequestId(1)) && s.is_empty());
        }
        Ok(Verdict::Surface { .. } | Verdict::NotMine) => assert!(s.is_empty()),
        Err(e) => panic!("an empty scheduler refused: {e}"),
    }
}

struct Ops<'a> {
    data: &'a [u8],
}

impl Ops<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(*b)
    }
}

const NAMES: [&[u8]; 10] = [
    b"FLOOD_WAIT_3",
    b"FLOOD_WAIT_100",
    b"SLOWMODE_WAIT_1",
    b"FLOOD_PREMIUM_WAIT_30",
    b"FLOOD",
    b"WORKER_BUSY_TOO_LONG_RETRY",
    b"Timeout",
    b"FILE_MIGRATE_3",
    b"PHONE_MIGRATE_4",
    b"USER_MIGRATE_9",
];
const CODES: [i32; 10] = [420, 420, 420, 420, 420, 500, -503, 303, 303, 303];

/// Input: a sequence of `op:u8 arg:u8` host calls on a small router and scheduler (DCs 1 to 5 and a CDN DC, a
/// virtual clock). After each call both are drained; the checks: every action is bounded in number, every request
/// sent or failed was routed and held before (at most once), timers never point at the past after
/// `handle_timeout`, and nothing panics.
pub fn client_router(data: &[u8]) {
    const H: usize = 6;
    const D: usize = 4;
    let mut ops = Ops { data };
    let mut router: Router<12, D, H> = Router::new(RouterConfig {
        idle_close: Duration::from_secs(5),
        ..RouterConfig::DEFAULT
    });
    let mut flood: FloodScheduler<H, 3> = FloodScheduler::new(FloodConfig::DEFAULT);
    let ips: [&[u8]; 6] = [
        b"10.0.0.1",
        b"10.0.0.2",
        b"10.0.0.3",
        b"10.0.0.4",
        b"2001:db8::5",
        b"10.0.2.3",
    ];
    let raw = |i: usize, flags: u8| RawDcOption {
        id: if i == 5 { 203 } else { i as i32 + 1 },
        ip_address: ips.get(i).copied().unwrap_or(b"10.0.0.1"),
        port: 443,
        ipv6: i == 4,
        media_only: flags & 1 != 0,
        tcpo_only: false,
        cdn: i == 5,
        static_: false,
        this_port_only: false,
        secret: None,
    };
    for i in 0..6 {
        if let Some(o) = raw(i, 0).check() {
            let _ = router.add_option(o);
        }
    }
    let dc = |n: u8| DcId::new(i64::from(n % 6) + 1).unwrap_or_else(|| panic!("DC"));
    let mut now = Instant::from_secs(1000);
    let mut tickets: heapless::Vec<Ticket, 8> = heapless::Vec::new();
    let mut held: heapless::Vec<RequestId, 8> = heapless::Vec::new();
    let mut flood_held: heapless::Vec<RequestId, 8> = heapless::Vec::new();
    let mut retry = [RetryState::default(); 8];
    while let (Some(op), Some(arg)) = (ops.byte(), ops.byte()) {
        let link = Link {
            dc: if arg & 0x80 != 0 {
                DcId::new(203).unwrap_or_else(|| panic!("DC"))
            } else {
                dc(arg)
            },
            kind: match (arg >> 3) % 3 {
                0 => LinkKind::Main,
                1 => LinkKind::Media,
                _ => LinkKind::Cdn,
            },
        };
        let slot = usize::from(arg % 8);
        match op % 16 {
            0 => {
                let target = match (arg >> 4) % 3 {
                    0 => Target::Home,
                    1 => Target::Dc(dc(arg)),
                    _ => Target::Cdn(DcId::new(203).unwrap_or_else(|| panic!("DC"))),
                };
                let id = RequestId(u64::from(arg % 8));
                let t = Ticket::new(id, target, arg & 8 != 0);
                if let Ok(Route::Held) = router.route(&t, now)
                    && !held.contains(&id)
                {
                    let _ = held.push(id);
                }
                if let Some(old) = tickets.iter_mut().find(|x| x.id == id) {
                    *old = t;
                } else {
                    let _ = tickets.push(t);
                }
            }
            1 => {
                if let Some(t) = tickets.get_mut(slot % 8) {
                    let e = RpcError::classify(303, NAMES.get(7 + usize::from(arg % 3)).copied().unwrap_or(b""));
                    if let Ok(RpcError {
                        kind: ErrorKind::Migrate { reason, dc },
                        ..
                    }) = e
                    {
                        let before = t.migrations();
                        let r = router.on_migrate(t, reason, dc, now);
                        assert!(t.migrations() <= router.config().max_migrations);
                        if r.is_err() {
                            assert!(t.migrations() <= before.saturating_add(1));
                        }
                        if let Ok(Route::Held) = r
                            && !held.contains(&t.id)
                        {
                            let _ = held.push(t.id);
                        }
                    }
                }
            }
            2 => router.link_ready(link, now),
            3 => router.link_failed(link, now),
            4 => router.link_closed(link, now),
            5 => router.done(link, now),
            6 => router.imported(link.dc),
            7 => router.import_failed(link.dc),
            8 => {
                router.unauthorized(link.dc);
            }
            9 => {
                if arg & 1 == 0 {
                    let _ = router.signed_in(now);
                } else {
                    router.signed_out();
                }
            }
            10 => {
                now = now.saturating_add(Duration::from_secs(u64::from(arg)));
                router.handle_timeout(now);
                assert!(
                    router.poll_timeout().is_none_or(|t| t > now),
                    "router timer in the past"
                );
                flood.handle_timeout(now);
                assert!(flood.poll_timeout().is_none_or(|t| t > now), "flood timer in the past");
            }
            11 => {
                if arg & 2 != 0 {
                    let _ = router.key_dropped(link.dc, now);
                } else {
                    let _ = router.set_key(link.dc, arg & 1 != 0, now);
                }
            }
            12 => router.set_home(dc(arg)),
            13 => {
                let opts = (0..6).filter(|i| arg & (1 << i) != 0).map(|i| raw(i, arg >> 6));
                let _ = router.replace_options(false, opts);
            }
            14 => {
                let id = RequestId(u64::from(arg % 8));
                let key = MethodKey {
                    method: u32::from(arg >> 6),
                    dc: dc(arg >> 3),
                };
                let chain = (arg & 4 != 0).then_some(ChainId(1));
                let name = NAMES.get(usize::from(arg >> 4) % 10).copied().unwrap_or(b"");
                let code = CODES.get(usize::from(arg >> 4) % 10).copied().unwrap_or(400);
                let Some(r) = retry.get_mut(slot) else { continue };
                let res = if arg & 2 != 0 {
                    flood.submit(id, key, chain, r, now).map(|a| a == Admit::Held)
                } else if let Ok(e) = RpcError::classify(code, name) {
                    flood
                        .on_error(id, key, chain, r, &e, now)
                        .map(|v| matches!(v, Verdict::Retry { .. }))
                } else {
                    Ok(false)
                };
                assert!(r.waited() <= flood.config().auto_wait_limit);
                if res == Ok(true) && !flood_held.contains(&id) {
                    let _ = flood_held.push(id);
                }
            }
            _ => {
                let id = RequestId(u64::from(arg % 8));
                flood.completed(id, now);
                flood_held.retain(|x| *x != id);
            }
        }
        // A host that stores what the router reports (half the steps; the other half it forgets): each confirmed
        // change leaves the queue, so saving settles.
        if op & 0x10 != 0 {
            let mut n = 0;
            while let Some(c) = router.poll_save() {
                n += 1;
                assert!(n <= 3 * D + 4 && router.saved(c), "poll_save does not settle");
            }
        }
        // Draining is bounded: each held request leaves once, each link closes and opens at most once per drain, each
        // DC exports once.
        let mut n = 0;
        while let Some(a) = router.poll_action() {
            n += 1;
            assert!(n <= H + 7 * D, "poll_action does not settle");
            if let Action::Send { id, .. } | Action::Fail { id, .. } = a {
                assert!(held.contains(&id), "released a request that was not held");
                held.retain(|x| *x != id);
            }
        }
        let mut n = 0;
        while let Some(id) = flood.poll_release() {
            n += 1;
            assert!(
                n <= H && flood_held.contains(&id),
                "released a request that was not held"
            );
        }
        assert!(flood.len() <= H);
    }
}
