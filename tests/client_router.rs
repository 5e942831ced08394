//! The client layer's DC routing state machine (src/client/router.rs).

use core::time::Duration;

use mtproto_sansio::client::router::{
    Action, ConfigError, ConfigReport, DcOption, Link, LinkKind, RawDcOption, Route, RouteError, Router, RouterConfig,
    Target, Ticket,
};
use mtproto_sansio::client::rpc_error::{ErrorKind, MigrateReason, RpcError};
use mtproto_sansio::client::store::Change;
use mtproto_sansio::client::{DcId, RequestId};
use mtproto_sansio::time::Instant;

fn dc(n: i64) -> DcId {
    DcId::new(n).unwrap()
}

fn raw(id: i32, ip: &'static str, port: i32) -> RawDcOption<'static> {
    RawDcOption {
        id,
        ip_address: ip.as_bytes(),
        port,
        ipv6: ip.contains(':'),
        media_only: false,
        tcpo_only: false,
        cdn: false,
        static_: false,
        this_port_only: false,
        secret: None,
    }
}

fn opt(id: i32, ip: &'static str) -> DcOption {
    raw(id, ip, 443).check().unwrap()
}

fn media(id: i32, ip: &'static str) -> DcOption {
    RawDcOption {
        media_only: true,
        ..raw(id, ip, 443)
    }
    .check()
    .unwrap()
}

fn cdn(id: i32, ip: &'static str) -> DcOption {
    RawDcOption {
        cdn: true,
        ..raw(id, ip, 443)
    }
    .check()
    .unwrap()
}

const T0: Instant = Instant::from_secs(1000);

fn at(secs: u64) -> Instant {
    Instant::from_micros(T0.as_micros() + secs * 1_000_000)
}

fn main(d: i64) -> Link {
    Link {
        dc: dc(d),
        kind: LinkKind::Main,
    }
}

/// DCs 1 to 5 with one IPv4 address each (DC 2 also IPv6 and media-only, DC 4 media-only), CDN DC 203.
fn router() -> Router {
    let mut r: Router = Router::new(RouterConfig::DEFAULT);
    for (i, ip) in [
        (1, "10.0.0.1"),
        (2, "10.0.0.2"),
        (3, "10.0.0.3"),
        (4, "10.0.0.4"),
        (5, "10.0.0.5"),
    ] {
        r.add_option(opt(i, ip)).unwrap();
    }
    r.add_option(opt(2, "2001:db8::2")).unwrap();
    r.add_option(media(2, "10.0.1.2")).unwrap();
    r.add_option(media(4, "10.0.1.4")).unwrap();
    r.add_option(cdn(203, "10.0.2.3")).unwrap();
    r.set_home(dc(2));
    r
}

/// The actions due, for a host that stores every change the router reports first (as a host must).
fn drain<const O: usize, const D: usize, const H: usize>(r: &mut Router<O, D, H>) -> Vec<Action> {
    save_all(r);
    actions(r)
}

/// The actions due, saving nothing (a host that forgot its store).
fn actions<const O: usize, const D: usize, const H: usize>(r: &mut Router<O, D, H>) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn open(link: Link, ip: &'static str, has_key: bool) -> Action {
    let option = match link.kind {
        LinkKind::Media => media(link.dc.get().into(), ip),
        LinkKind::Cdn => cdn(link.dc.get().into(), ip),
        LinkKind::Main => opt(link.dc.get().into(), ip),
    };
    Action::Open { link, option, has_key }
}

fn migrate(name: &'static [u8]) -> (MigrateReason, DcId) {
    match RpcError::classify(303, name).unwrap().kind {
        ErrorKind::Migrate { reason, dc } => (reason, dc),
        k => panic!("{k:?}"),
    }
}

#[test]
fn a_request_to_home_opens_its_connection_and_goes_out_when_it_is_ready() {
    let mut r = router();
    let t = Ticket::new(RequestId(1), Target::Home, false);
    assert_eq!(r.route(&t, T0), Ok(Route::Held));
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", false)]);
    r.link_ready(main(2), T0);
    assert_eq!(
        drain(&mut r),
        [Action::Send {
            id: RequestId(1),
            link: main(2)
        }]
    );
    // Now ready: the next one goes straight out.
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Home, false), T0),
        Ok(Route::Send(main(2)))
    );
    assert_eq!(drain(&mut r), []);
}

#[test]
fn no_home_and_unknown_dcs_are_errors_that_change_nothing() {
    let mut r: Router = Router::new(RouterConfig::DEFAULT);
    assert_eq!(
        r.route(&Ticket::new(RequestId(1), Target::Home, false), T0),
        Err(RouteError::NoHome)
    );
    let mut r = router();
    assert_eq!(
        r.route(&Ticket::new(RequestId(1), Target::Dc(dc(9)), false), T0),
        Err(RouteError::NoOption(dc(9)))
    );
    // DC 203 is a CDN only: no main connection to it.
    assert_eq!(
        r.route(&Ticket::new(RequestId(1), Target::Dc(dc(203)), false), T0),
        Err(RouteError::NoOption(dc(203)))
    );
    assert_eq!(drain(&mut r), []);
}

#[test]
fn phone_migrate_during_sign_in_moves_home() {
    let mut r = router();
    let mut t = Ticket::new(RequestId(1), Target::Home, false);
    assert_eq!(r.route(&t, T0), Ok(Route::Held));
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", false)]);
    r.link_ready(main(2), T0);
    assert_eq!(
        drain(&mut r),
        [Action::Send {
            id: RequestId(1),
            link: main(2)
        }]
    );
    r.done(main(2), T0);
    let (reason, d) = migrate(b"PHONE_MIGRATE_4");
    assert_eq!(r.on_migrate(&mut t, reason, d, T0), Ok(Route::Held));
    assert_eq!((r.home(), t.target, t.migrations()), (Some(dc(4)), Target::Home, 1));
    assert_eq!(drain(&mut r), [open(main(4), "10.0.0.4", false)]);
    r.link_ready(main(4), T0);
    assert_eq!(
        drain(&mut r),
        [Action::Send {
            id: RequestId(1),
            link: main(4)
        }]
    );
    // Signed in on the new home: its requests need no authorization copy (once the sign-in is stored).
    r.signed_in(T0).unwrap();
    assert!(r.is_authorized(dc(4)) && !r.is_authorized(dc(2)));
    assert_eq!(save_all(&mut r), [Change::SignedIn]);
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Home, false), T0),
        Ok(Route::Send(main(4)))
    );
}

#[test]
fn file_migrate_routes_only_that_request_and_copies_the_authorization_first() {
    let mut r = router();
    r.set_key(dc(2), true, T0).unwrap();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", true)]);
    r.link_ready(main(2), T0);
    drain(&mut r);
    r.signed_in(T0).unwrap();
    let mut t = Ticket::new(RequestId(5), Target::Home, true);
    // A download on home goes to its media-only address.
    assert_eq!(r.route(&t, T0), Ok(Route::Held));
    let media2 = Link {
        dc: dc(2),
        kind: LinkKind::Media,
    };
    assert_eq!(drain(&mut r), [open(media2, "10.0.1.2", true)]);
    r.link_ready(media2, T0);
    assert_eq!(
        drain(&mut r),
        [Action::Send {
            id: RequestId(5),
            link: media2
        }]
    );
    r.done(media2, T0);
    let (reason, d) = migrate(b"FILE_MIGRATE_4");
    assert_eq!(r.on_migrate(&mut t, reason, d, T0), Ok(Route::Held));
    assert_eq!((r.home(), t.target), (Some(dc(2)), Target::Dc(dc(4))));
    let media4 = Link {
        dc: dc(4),
        kind: LinkKind::Media,
    };
    // The file's DC needs the authorization: its main connection opens for the import too, and makes DC 4's key
    // (one key exchange per DC: the media connection opens on that key).
    assert_eq!(drain(&mut r), [open(main(4), "10.0.0.4", false)]);
    r.link_ready(main(4), T0);
    assert_eq!(
        drain(&mut r),
        [
            open(media4, "10.0.1.4", true),
            Action::Export { from: dc(2), to: dc(4) }
        ]
    );
    r.link_ready(media4, T0);
    assert_eq!(
        drain(&mut r),
        [],
        "held until the authorization is there; one export at a time per DC"
    );
    // A second request for DC 4 meanwhile waits too, without a second export.
    assert_eq!(
        r.route(&Ticket::new(RequestId(6), Target::Dc(dc(4)), false), T0),
        Ok(Route::Held)
    );
    assert_eq!(drain(&mut r), []);
    r.imported(dc(4));
    assert_eq!(
        drain(&mut r),
        [
            Action::Send {
                id: RequestId(5),
                link: media4
            },
            Action::Send {
                id: RequestId(6),
                link: main(4)
            }
        ]
    );
    assert!(r.is_authorized(dc(4)));
}

#[test]
fn stats_migrate_keeps_home_and_a_failed_import_fails_the_waiting_requests() {
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    drain(&mut r);
    r.link_ready(main(2), T0);
    drain(&mut r);
    r.signed_in(T0).unwrap();
    let mut t = Ticket::new(RequestId(2), Target::Home, false);
    let (reason, d) = migrate(b"STATS_MIGRATE_3");
    assert_eq!(r.on_migrate(&mut t, reason, d, T0), Ok(Route::Held));
    assert_eq!(r.home(), Some(dc(2)));
    assert_eq!(drain(&mut r), [open(main(3), "10.0.0.3", false)]);
    r.link_ready(main(3), T0);
    assert_eq!(drain(&mut r), [Action::Export { from: dc(2), to: dc(3) }]);
    r.import_failed(dc(3));
    assert_eq!(
        drain(&mut r),
        [Action::Fail {
            id: RequestId(2),
            reason: RouteError::AuthorizationFailed(dc(3))
        }]
    );
    // The next request tries again.
    assert_eq!(
        r.route(&Ticket::new(RequestId(3), Target::Dc(dc(3)), false), T0),
        Ok(Route::Held)
    );
    assert_eq!(drain(&mut r), [Action::Export { from: dc(2), to: dc(3) }]);
}

#[test]
fn migration_loops_are_bounded_per_request() {
    let mut r = router();
    let mut t = Ticket::new(RequestId(1), Target::Home, false);
    for name in [&b"PHONE_MIGRATE_4"[..], b"USER_MIGRATE_2", b"NETWORK_MIGRATE_4"] {
        let (reason, d) = match RpcError::classify(303, name).unwrap().kind {
            ErrorKind::Migrate { reason, dc } => (reason, dc),
            _ => unreachable!(),
        };
        assert_eq!(r.on_migrate(&mut t, reason, d, T0), Ok(Route::Held));
    }
    assert_eq!((r.home(), t.migrations()), (Some(dc(4)), 3));
    let (reason, d) = migrate(b"PHONE_MIGRATE_2");
    assert_eq!(r.on_migrate(&mut t, reason, d, T0), Err(RouteError::MigrationLoop));
    assert_eq!(RouteError::MigrationLoop.fault(), mtproto_sansio::Fault::Peer);
    assert_eq!(r.home(), Some(dc(4)), "a refused migration leaves home alone");
    assert_eq!(t.migrations(), 3);
    // FILE_MIGRATE bouncing between DCs ends the same way.
    let mut f = Ticket::new(RequestId(2), Target::Dc(dc(1)), false);
    for d in [3, 1, 3] {
        r.on_migrate(&mut f, MigrateReason::File, dc(d), T0).unwrap();
    }
    assert_eq!(
        r.on_migrate(&mut f, MigrateReason::File, dc(1), T0),
        Err(RouteError::MigrationLoop)
    );
}

#[test]
fn a_migration_to_a_dc_without_an_address_is_refused() {
    let mut r = router();
    let mut t = Ticket::new(RequestId(1), Target::Home, false);
    let (reason, d) = migrate(b"PHONE_MIGRATE_7");
    assert_eq!(r.on_migrate(&mut t, reason, d, T0), Err(RouteError::NoOption(dc(7))));
    assert_eq!((r.home(), t.target, t.migrations()), (Some(dc(2)), Target::Home, 0));
    // An id out of range never gets this far: the classifier refuses it.
    assert!(RpcError::classify(303, b"PHONE_MIGRATE_70000").is_err());
}

#[test]
fn idle_connections_close_after_the_idle_time_but_never_home_main() {
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    r.route(&Ticket::new(RequestId(2), Target::Dc(dc(3)), false), T0)
        .unwrap();
    drain(&mut r);
    r.link_ready(main(2), T0);
    r.link_ready(main(3), T0);
    assert_eq!(drain(&mut r).len(), 2);
    assert_eq!(r.poll_timeout(), None, "requests in flight");
    r.done(main(2), at(5));
    r.done(main(3), at(10));
    assert_eq!(r.poll_timeout(), Some(at(70)));
    r.handle_timeout(at(69));
    assert_eq!(drain(&mut r), []);
    r.handle_timeout(at(70));
    assert_eq!(drain(&mut r), [Action::Close { link: main(3) }]);
    r.handle_timeout(at(10_000));
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.poll_timeout(), None);
    // A closed connection reopens for the next request.
    assert_eq!(
        r.route(&Ticket::new(RequestId(3), Target::Dc(dc(3)), false), at(10_001)),
        Ok(Route::Held)
    );
    assert_eq!(drain(&mut r), [open(main(3), "10.0.0.3", true)]);
}

/// The peer closing the home connection: the first close after it stayed up reopens at once; closes that keep
/// coming wait 1, 2, 4 ... s (capped), so a DC that drops every connection is not hammered; a connection that then
/// stays up for the cap starts over.
#[test]
fn connections_the_peer_keeps_closing_reopen_after_a_growing_backoff() {
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    assert_eq!(drain(&mut r).len(), 1);
    r.link_ready(main(2), T0);
    assert_eq!(drain(&mut r).len(), 1);
    r.done(main(2), at(1));
    // Up for 100 s, then closed: reopened at once.
    r.link_closed(main(2), at(100));
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", true)]);
    let mut t = 100;
    for wait in [1, 2, 4, 8, 16, 32, 60, 60] {
        r.link_ready(main(2), at(t));
        r.link_closed(main(2), at(t + 1));
        t += 1;
        assert_eq!(drain(&mut r), [], "closed again after 1 s: wait {wait} s");
        assert_eq!(r.poll_timeout(), Some(at(t + wait)));
        r.handle_timeout(at(t + wait - 1));
        assert_eq!(drain(&mut r), []);
        t += wait;
        r.handle_timeout(at(t));
        assert_eq!(drain(&mut r).len(), 1, "reopened after {wait} s");
    }
    // Stable for the cap (60 s): the next close reopens at once again.
    r.link_ready(main(2), at(t));
    r.link_closed(main(2), at(t + 60));
    assert_eq!(drain(&mut r).len(), 1);
    // A close the host made after `Action::Close` (here DC 3's, idle) is no peer close: reported, it adds no wait,
    // even after a peer close.
    let t = t + 60;
    r.route(&Ticket::new(RequestId(2), Target::Dc(dc(3)), false), at(t))
        .unwrap();
    assert_eq!(drain(&mut r), [open(main(3), "10.0.0.3", false)]);
    r.link_ready(main(3), at(t));
    drain(&mut r);
    r.link_closed(main(3), at(t + 1));
    r.done(main(3), at(t + 1));
    r.route(&Ticket::new(RequestId(3), Target::Dc(dc(3)), false), at(t + 1))
        .unwrap();
    assert_eq!(
        drain(&mut r),
        [open(main(3), "10.0.0.3", true)],
        "a first close waits for nothing"
    );
    r.link_ready(main(3), at(t + 1));
    drain(&mut r);
    r.done(main(3), at(t + 1));
    r.link_ready(main(2), at(t + 1));
    r.handle_timeout(at(t + 61));
    assert_eq!(drain(&mut r), [Action::Close { link: main(3) }]);
    r.link_closed(main(3), at(t + 62));
    assert_eq!(
        r.route(&Ticket::new(RequestId(4), Target::Dc(dc(3)), false), at(t + 62)),
        Ok(Route::Held)
    );
    assert_eq!(drain(&mut r), [open(main(3), "10.0.0.3", true)]);
}

#[test]
fn failed_connections_try_the_next_address_then_fail_the_held_requests() {
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", false)]);
    // The next address, after a backoff of 1 s, then 2 s.
    r.link_failed(main(2), at(1));
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.poll_timeout(), Some(at(2)));
    r.handle_timeout(at(2));
    assert_eq!(drain(&mut r), [open(main(2), "2001:db8::2", false)]);
    r.link_failed(main(2), at(3));
    assert_eq!(r.poll_timeout(), Some(at(5)));
    r.handle_timeout(at(4));
    assert_eq!(drain(&mut r), []);
    r.handle_timeout(at(5));
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", false)]);
    r.link_failed(main(2), at(6));
    assert_eq!(
        drain(&mut r),
        [Action::Fail {
            id: RequestId(1),
            reason: RouteError::Unreachable(dc(2))
        }]
    );
    // A connection nobody waits for is just closed.
    r.route(&Ticket::new(RequestId(2), Target::Dc(dc(5)), false), at(4))
        .unwrap();
    drain(&mut r);
    r.link_ready(main(5), at(4));
    drain(&mut r);
    r.done(main(5), at(4));
    r.link_failed(main(5), at(5));
    assert_eq!(drain(&mut r), []);
}

#[test]
fn address_family_preferences() {
    let mut r: Router = Router::new(RouterConfig {
        prefer_ipv6: true,
        ..RouterConfig::DEFAULT
    });
    r.add_option(opt(2, "10.0.0.2")).unwrap();
    r.add_option(opt(2, "2001:db8::2")).unwrap();
    r.set_home(dc(2));
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    assert_eq!(drain(&mut r), [open(main(2), "2001:db8::2", false)]);
    let mut r: Router = Router::new(RouterConfig {
        allow_ipv6: false,
        ..RouterConfig::DEFAULT
    });
    r.add_option(opt(2, "2001:db8::2")).unwrap();
    r.set_home(dc(2));
    assert_eq!(
        r.route(&Ticket::new(RequestId(1), Target::Home, false), T0),
        Err(RouteError::NoOption(dc(2)))
    );
}

#[test]
fn cdn_requests_need_no_authorization() {
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    drain(&mut r);
    r.link_ready(main(2), T0);
    drain(&mut r);
    r.signed_in(T0).unwrap();
    let cdn_link = Link {
        dc: dc(203),
        kind: LinkKind::Cdn,
    };
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Cdn(dc(203)), true), T0),
        Ok(Route::Held)
    );
    assert_eq!(drain(&mut r), [open(cdn_link, "10.0.2.3", false)]);
    r.link_ready(cdn_link, T0);
    assert_eq!(
        drain(&mut r),
        [Action::Send {
            id: RequestId(2),
            link: cdn_link
        }]
    );
}

#[test]
fn a_cdn_key_is_not_saved_and_nothing_waits_for_it() {
    // CDN keys are not kept (`Record::set_key`): the router reported `Change::Key` for each and held the first CDN
    // request until the store confirmed it, so a host saved every CDN DC it was redirected to.
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    drain(&mut r);
    r.link_ready(main(2), T0);
    drain(&mut r);
    let cdn_link = Link {
        dc: dc(203),
        kind: LinkKind::Cdn,
    };
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Cdn(dc(203)), true), T0),
        Ok(Route::Held)
    );
    assert_eq!(actions(&mut r), [open(cdn_link, "10.0.2.3", false)]);
    r.link_ready(cdn_link, T0);
    assert_eq!(r.poll_save(), None);
    assert_eq!(
        actions(&mut r),
        [Action::Send {
            id: RequestId(2),
            link: cdn_link
        }]
    );
}

/// A router with DCs 1 to 5 (home 2) and CDN DCs 211 to 220 (and 203): more CDN DCs than its DC table (8) holds.
fn router_with_ten_cdns() -> (Router, Vec<(Link, &'static str)>) {
    let mut r = router();
    let cdns: Vec<(Link, &'static str)> = (211..=220)
        .map(|n| {
            let ip: &'static str = Box::leak(format!("10.0.3.{}", n - 210).into_boxed_str());
            r.add_option(cdn(n, ip)).unwrap();
            (
                Link {
                    dc: dc(n.into()),
                    kind: LinkKind::Cdn,
                },
                ip,
            )
        })
        .collect();
    (r, cdns)
}

/// One CDN request on `link` at `secs`: opened, keyed, sent, answered, then closed once idle.
fn one_cdn_request(r: &mut Router, id: u64, link: Link, ip: &'static str, has_key: bool, secs: u64) {
    let t = at(secs);
    assert_eq!(
        r.route(&Ticket::new(RequestId(id), Target::Cdn(link.dc), true), t),
        Ok(Route::Held),
        "CDN request {id}"
    );
    assert_eq!(drain(r), [open(link, ip, has_key)]);
    r.link_ready(link, t);
    assert_eq!(
        drain(r),
        [Action::Send {
            id: RequestId(id),
            link
        }]
    );
    r.done(link, t);
    let idle = at(secs + 61);
    r.handle_timeout(idle);
    assert_eq!(drain(r), [Action::Close { link }]);
    r.link_closed(link, idle);
}

/// The DC table (`D` = 8) evicts an idle CDN DC's entry, key and all, when a new DC needs room: a client redirected
/// to ten CDN DCs in turn reaches every one (on main the ninth was refused `RouteError::Full` until a restart, as
/// entries with a key were never evicted), and a CDN DC evicted and used again is opened with no key (one handshake
/// to make it again; CDN keys are not kept, `Record::set_key`).
#[test]
fn an_idle_cdn_dc_makes_room_in_the_dc_table() {
    let (mut r, cdns) = router_with_ten_cdns();
    for (i, &(link, ip)) in cdns.iter().enumerate() {
        one_cdn_request(&mut r, i as u64 + 1, link, ip, false, 100 * i as u64);
    }
    // The first CDN DC was evicted (its key with it): used again, it is opened for a key exchange.
    let (link, ip) = cdns[0];
    assert!(!r.has_key(link.dc));
    one_cdn_request(&mut r, 100, link, ip, false, 2000);
    // The last one is still in the table, its key known.
    let (link, ip) = cdns[9];
    assert!(r.has_key(link.dc));
    one_cdn_request(&mut r, 101, link, ip, true, 2200);
}

/// Only an idle CDN DC's entry is evicted: with eight CDN connections open, a ninth DC is refused `Full`, and
/// nothing changed.
#[test]
fn a_cdn_dc_in_use_is_never_evicted() {
    let (mut r, cdns) = router_with_ten_cdns();
    for (i, &(link, ip)) in cdns.iter().take(8).enumerate() {
        let id = RequestId(i as u64 + 1);
        assert_eq!(
            r.route(&Ticket::new(id, Target::Cdn(link.dc), true), T0),
            Ok(Route::Held)
        );
        assert_eq!(drain(&mut r), [open(link, ip, false)]);
        r.link_ready(link, T0);
        assert_eq!(drain(&mut r), [Action::Send { id, link }]);
    }
    let (link, _) = cdns[8];
    assert_eq!(
        r.route(&Ticket::new(RequestId(9), Target::Cdn(link.dc), true), T0),
        Err(RouteError::Full)
    );
    assert!(cdns.iter().take(8).all(|(l, _)| r.has_key(l.dc)));
}

#[test]
fn a_401_signs_out_on_home_and_drops_only_the_copy_elsewhere() {
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    r.route(&Ticket::new(RequestId(2), Target::Dc(dc(3)), false), T0)
        .unwrap();
    drain(&mut r);
    r.link_ready(main(2), T0);
    r.link_ready(main(3), T0);
    drain(&mut r);
    r.signed_in(T0).unwrap();
    r.imported(dc(3));
    assert!(!r.unauthorized(dc(3)));
    assert!(r.is_signed_in() && !r.is_authorized(dc(3)));
    assert_eq!(
        r.route(&Ticket::new(RequestId(3), Target::Dc(dc(3)), false), T0),
        Ok(Route::Held)
    );
    assert_eq!(drain(&mut r), [Action::Export { from: dc(2), to: dc(3) }]);
    assert!(r.unauthorized(dc(2)));
    assert!(!r.is_signed_in() && !r.is_authorized(dc(2)));
}

#[test]
fn full_tables_are_errors_that_change_nothing() {
    let mut r: Router<16, 2, 1> = Router::new(RouterConfig::DEFAULT);
    for (i, ip) in [(1, "10.0.0.1"), (2, "10.0.0.2"), (3, "10.0.0.3")] {
        r.add_option(opt(i, ip)).unwrap();
    }
    r.set_home(dc(2));
    assert_eq!(
        r.route(&Ticket::new(RequestId(1), Target::Home, false), T0),
        Ok(Route::Held)
    );
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Home, false), T0),
        Err(RouteError::Full)
    );
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", false)]);
    r.link_ready(main(2), T0);
    assert_eq!(
        drain(&mut r),
        [Action::Send {
            id: RequestId(1),
            link: main(2)
        }]
    );
    // Ready connections need no room.
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Home, false), T0),
        Ok(Route::Send(main(2)))
    );
    // Two DCs fit; a third one evicts only an unused entry.
    let mut r: Router<16, 2, 4> = Router::new(RouterConfig::DEFAULT);
    for (i, ip) in [(1, "10.0.0.1"), (2, "10.0.0.2"), (3, "10.0.0.3")] {
        r.add_option(opt(i, ip)).unwrap();
    }
    r.set_home(dc(2));
    r.set_key(dc(3), false, T0).unwrap();
    r.set_key(dc(2), true, T0).unwrap();
    // DC 3's entry (no key, nothing else) made way for DC 1's; an entry with a key is never forgotten.
    assert_eq!(
        r.route(&Ticket::new(RequestId(3), Target::Dc(dc(1)), false), T0),
        Ok(Route::Held)
    );
    assert_eq!(
        r.route(&Ticket::new(RequestId(4), Target::Dc(dc(3)), false), T0),
        Err(RouteError::Full)
    );
    assert_eq!(r.set_key(dc(3), true, T0), Err(RouteError::Full));
    assert_eq!(drain(&mut r), [open(main(1), "10.0.0.1", false)]);
    let mut small: Router<1, 8, 8> = Router::new(RouterConfig::DEFAULT);
    small.add_option(opt(1, "10.0.0.1")).unwrap();
    assert!(
        small.add_option(opt(1, "10.0.0.1")).is_ok(),
        "a duplicate takes no room"
    );
    assert!(small.add_option(opt(2, "10.0.0.2")).is_err());
}

#[test]
fn config_options_are_checked_and_applied_all_or_nothing() {
    let mut r: Router<4, 8, 8> = Router::new(RouterConfig::DEFAULT);
    let good = [raw(1, "10.0.0.1", 443), raw(2, "2001:db8::2", 80)];
    let bad = [
        raw(0, "10.0.0.9", 443),    // id out of range
        raw(1001, "10.0.0.9", 443), // id out of range
        raw(1, "10.0.0.999", 443),  // not an address
        raw(1, "10.0.0.9", 0),      // port
        raw(1, "10.0.0.9", 65536),  // port
        RawDcOption {
            ipv6: true,
            ..raw(1, "10.0.0.9", 443)
        }, // flag contradicts the address
        RawDcOption {
            secret: Some(&[1; 15]),
            ..raw(1, "10.0.0.9", 443)
        }, // secret length
        RawDcOption {
            ip_address: b"\xff",
            ..raw(1, "x", 443)
        }, // not UTF-8
    ];
    let report = r.replace_options(false, good.into_iter().chain(bad)).unwrap();
    assert_eq!(
        report,
        ConfigReport {
            accepted: 2,
            invalid: 8,
            no_room: 0
        }
    );
    let secret = RawDcOption {
        tcpo_only: true,
        secret: Some(&[7; 16]),
        ..raw(3, "10.0.0.3", 443)
    };
    assert_eq!(secret.check().unwrap().secret, Some([7; 16]));
    assert!(
        !format!("{:?}", secret.check().unwrap()).contains('7'),
        "Debug leaves the secret out"
    );
    // Too many for the table: counted.
    let many = (1..=6).map(|i| raw(i, "10.0.0.1", 443));
    assert_eq!(
        r.replace_options(false, many),
        Ok(ConfigReport {
            accepted: 4,
            invalid: 0,
            no_room: 2
        })
    );
    // The wrong network, or nothing usable: refused, the table stays.
    assert_eq!(
        r.replace_options(true, good.into_iter()),
        Err(ConfigError::WrongNetwork)
    );
    assert_eq!(r.replace_options(false, bad.into_iter()), Err(ConfigError::Empty));
    assert_eq!(r.options().count(), 4);
    let _ = Duration::ZERO;
}

#[test]
fn an_unreachable_import_target_fails_what_waits_for_the_authorization() {
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    drain(&mut r);
    r.link_ready(main(2), T0);
    drain(&mut r);
    r.signed_in(T0).unwrap();
    let media4 = Link {
        dc: dc(4),
        kind: LinkKind::Media,
    };
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Dc(dc(4)), true), T0),
        Ok(Route::Held)
    );
    assert_eq!(drain(&mut r), [open(main(4), "10.0.0.4", false)]);
    // Nothing is held on DC 4's main connection, but the import needs it: failures count and back off. It fails
    // before it made a key: the media connection makes DC 4's key instead.
    r.link_failed(main(4), T0);
    assert_eq!(drain(&mut r), [open(media4, "10.0.1.4", false)]);
    r.link_ready(media4, T0);
    assert!(r.has_key(dc(4)) && !r.has_key(dc(5)));
    assert_eq!(drain(&mut r), []);
    r.handle_timeout(at(1));
    assert_eq!(drain(&mut r), [open(main(4), "10.0.0.4", true)]);
    r.link_failed(main(4), at(1));
    r.handle_timeout(at(3));
    assert_eq!(drain(&mut r), [open(main(4), "10.0.0.4", true)]);
    r.link_failed(main(4), at(3));
    assert_eq!(
        drain(&mut r),
        [Action::Fail {
            id: RequestId(2),
            reason: RouteError::Unreachable(dc(4))
        }]
    );
    // Nothing waits for DC 4's authorization any more: its main connection is not reopened.
    r.handle_timeout(at(30));
    assert_eq!(drain(&mut r), []);
}

#[test]
fn a_request_held_when_its_copy_was_revoked_imports_again() {
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    r.route(&Ticket::new(RequestId(2), Target::Dc(dc(3)), false), T0)
        .unwrap();
    drain(&mut r);
    r.link_ready(main(2), T0);
    r.signed_in(T0).unwrap();
    drain(&mut r);
    r.link_ready(main(3), T0);
    assert_eq!(drain(&mut r), [Action::Export { from: dc(2), to: dc(3) }]);
    // The copy is revoked while the export runs: the host's import failed with a 401.
    assert!(!r.unauthorized(dc(3)));
    assert_eq!(drain(&mut r), [Action::Export { from: dc(2), to: dc(3) }]);
    r.imported(dc(3));
    assert_eq!(
        drain(&mut r),
        [Action::Send {
            id: RequestId(2),
            link: main(3)
        }]
    );
}

/// Confirms every save the router asks for, as a host with a working store does.
fn save_all<const O: usize, const D: usize, const H: usize>(r: &mut Router<O, D, H>) -> Vec<Change> {
    let mut out = Vec::new();
    while let Some(c) = r.poll_save() {
        assert!(r.saved(c));
        out.push(c);
    }
    out
}

/// A host that forgets to store a new key is stopped: nothing goes out under the key until the store confirmed
/// `Change::Key` (removing the gate makes the request go out at `link_ready`).
#[test]
fn a_new_key_is_saved_before_anything_goes_out_under_it() {
    let mut r = router();
    let t = Ticket::new(RequestId(1), Target::Home, false);
    assert_eq!(r.route(&t, T0), Ok(Route::Held));
    assert_eq!(actions(&mut r), [open(main(2), "10.0.0.2", false)]);
    r.link_ready(main(2), T0);
    assert_eq!(r.poll_save(), Some(Change::Key(dc(2))));
    // Forgetful host: polls actions, routes more, never saves. Nothing goes out.
    assert_eq!(actions(&mut r), []);
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Home, false), T0),
        Ok(Route::Held)
    );
    assert_eq!(actions(&mut r), []);
    // The change stays pending until confirmed; a wrong confirmation changes nothing.
    assert_eq!(r.poll_save(), Some(Change::Key(dc(2))));
    assert!(!r.saved(Change::Key(dc(3))));
    assert!(!r.saved(Change::SignedIn));
    assert_eq!(actions(&mut r), []);
    assert!(r.saved(Change::Key(dc(2))));
    assert_eq!(r.poll_save(), None);
    assert_eq!(
        actions(&mut r),
        [
            Action::Send {
                id: RequestId(1),
                link: main(2)
            },
            Action::Send {
                id: RequestId(2),
                link: main(2)
            }
        ]
    );
    // A stored key (set from the store) is not saved again.
    let mut r = router();
    r.set_key(dc(2), true, T0).unwrap();
    r.route(&t, T0).unwrap();
    assert_eq!(actions(&mut r), [open(main(2), "10.0.0.2", true)]);
    r.link_ready(main(2), T0);
    assert_eq!(r.poll_save(), None);
    assert_eq!(
        actions(&mut r),
        [Action::Send {
            id: RequestId(1),
            link: main(2)
        }]
    );
}

/// After a sign-in, no call that needs the authorization goes out (and no authorization is exported) before
/// `Change::SignedIn` is stored; a sign-out is reported and supersedes an unsaved sign-in.
#[test]
fn the_sign_in_is_saved_before_any_authorized_call() {
    let mut r = router();
    r.set_key(dc(2), true, T0).unwrap();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    r.link_ready(main(2), T0);
    actions(&mut r);
    r.done(main(2), T0);
    r.signed_in(T0).unwrap();
    assert_eq!(r.poll_save(), Some(Change::SignedIn));
    assert_eq!(
        r.route(&Ticket::new(RequestId(2), Target::Home, false), T0),
        Ok(Route::Held)
    );
    // A request for DC 3 needs a copy; the export waits for the save too.
    r.route(&Ticket::new(RequestId(3), Target::Dc(dc(3)), false), T0)
        .unwrap();
    assert_eq!(actions(&mut r), [open(main(3), "10.0.0.3", false)]);
    r.link_ready(main(3), T0);
    assert_eq!(actions(&mut r), []);
    assert_eq!(save_all(&mut r), [Change::Key(dc(3)), Change::SignedIn]);
    assert_eq!(
        actions(&mut r),
        [
            Action::Export { from: dc(2), to: dc(3) },
            Action::Send {
                id: RequestId(2),
                link: main(2)
            }
        ]
    );
    r.imported(dc(3));
    assert_eq!(save_all(&mut r), [Change::Authorized(dc(3))]);
    r.signed_in(T0).unwrap();
    r.signed_out();
    assert_eq!(save_all(&mut r), [Change::SignedOut]);
}

/// Home moves, new DC lists and dropped keys are reported; −404 on the home DC's key signs out and reopens the
/// connection with a key exchange; a dropped key is saved before the new one.
#[test]
fn a_dropped_key_is_reported_and_replaced() {
    let mut r = router();
    r.set_key(dc(2), true, T0).unwrap();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    r.link_ready(main(2), T0);
    actions(&mut r);
    r.done(main(2), T0);
    r.signed_in(T0).unwrap();
    save_all(&mut r);
    assert_eq!(r.key_dropped(dc(2), T0), Ok(true));
    assert!(!r.is_signed_in() && !r.has_key(dc(2)));
    // The home DC's main connection is always wanted: reopened with a key exchange.
    assert_eq!(actions(&mut r), [open(main(2), "10.0.0.2", false)]);
    r.link_ready(main(2), T0);
    assert_eq!(
        save_all(&mut r),
        [Change::SignedOut, Change::KeyDropped(dc(2)), Change::Key(dc(2))]
    );
    r.move_home(dc(4));
    r.move_home(dc(4));
    assert_eq!(save_all(&mut r), [Change::Home]);
    r.replace_options(false, [raw(1, "10.9.9.9", 443)].into_iter()).unwrap();
    assert_eq!(save_all(&mut r), [Change::Options]);
    r.replace_options(false, [raw(1, "10.9.9.9", 443)].into_iter()).unwrap();
    assert_eq!(save_all(&mut r), []);
}

/// One DC, one auth key: a second connection to a DC without a key waits for the first one's key exchange instead of
/// running its own. Two exchanges made two keys while the router counted one: `Change::Key` was confirmed for the
/// first, and the second connection's requests went out under a key the store never saw.
#[test]
fn one_key_exchange_per_dc_at_a_time() {
    let mut r = router();
    let media2 = Link {
        dc: dc(2),
        kind: LinkKind::Media,
    };
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    r.route(&Ticket::new(RequestId(2), Target::Home, true), T0).unwrap();
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", false)]);
    r.link_ready(main(2), T0);
    assert_eq!(save_all(&mut r), [Change::Key(dc(2))]);
    assert_eq!(
        actions(&mut r),
        [
            open(media2, "10.0.1.2", true),
            Action::Send {
                id: RequestId(1),
                link: main(2)
            }
        ]
    );
    r.link_ready(media2, T0);
    assert_eq!(r.poll_save(), None, "no second key");
    assert_eq!(
        actions(&mut r),
        [Action::Send {
            id: RequestId(2),
            link: media2
        }]
    );

    // The exchange that fails hands over to the connection that waited; it does not wait for itself.
    let mut r = router();
    r.route(&Ticket::new(RequestId(1), Target::Home, false), T0).unwrap();
    r.route(&Ticket::new(RequestId(2), Target::Home, true), T0).unwrap();
    assert_eq!(drain(&mut r), [open(main(2), "10.0.0.2", false)]);
    r.link_failed(main(2), T0);
    assert_eq!(drain(&mut r), [open(media2, "10.0.1.2", false)]);
    r.handle_timeout(at(5));
    assert_eq!(drain(&mut r), [], "main waits for the media connection's key");
    r.link_ready(media2, at(5));
    assert_eq!(save_all(&mut r), [Change::Key(dc(2))]);
    let a = actions(&mut r);
    assert!(
        a.contains(&Action::Open {
            link: main(2),
            option: opt(2, "2001:db8::2"),
            has_key: true
        }) || a.contains(&open(main(2), "10.0.0.2", true)),
        "{a:?}"
    );
    assert!(a.contains(&Action::Send {
        id: RequestId(2),
        link: media2
    }));
}

/// A sign-in lives under the home DC's key. A record whose home key was dropped kept its user (`Record::drop_key`
/// left it), so a restart restored a signed-in router over a DC with no key: its first call went out under a brand
/// new key as if authorized.
#[test]
fn a_record_never_restores_a_sign_in_without_its_key() {
    use mtproto_sansio::client::store::{Record, User};
    use mtproto_sansio::crypto::auth_key::AuthKey;
    let mut rec = Record::new(false);
    rec.set_key(dc(2), AuthKey::from_bytes([3; 256])).unwrap();
    rec.set_key(dc(4), AuthKey::from_bytes([4; 256])).unwrap();
    rec.signed_in(dc(2), User { id: 42, bot: false }).unwrap();
    rec.authorized(dc(4)).unwrap();
    let mut blob = vec![0u8; rec.encoded_len()];
    let n = rec.encode(&mut blob).unwrap();
    let mut r: Router = Router::new(RouterConfig::DEFAULT);
    Record::decode(&blob[..n]).unwrap().restore_router(&mut r, T0).unwrap();
    assert!(r.is_signed_in() && r.is_authorized(dc(4)));

    // The home DC forgot its key: the record drops the sign-in with it, as the router does.
    rec.drop_key(dc(2));
    assert!(rec.user.is_none());
    assert!(rec.dcs().all(|d| !d.authorized));
    let n = rec.encode(&mut blob).unwrap();
    let mut r: Router = Router::new(RouterConfig::DEFAULT);
    Record::decode(&blob[..n]).unwrap().restore_router(&mut r, T0).unwrap();
    assert!(!r.is_signed_in() && !r.is_authorized(dc(4)));

    // A record written that way anyway (user kept, home key gone) restores signed out.
    let mut careless = Record::new(false);
    careless.set_key(dc(4), AuthKey::from_bytes([4; 256])).unwrap();
    careless.signed_in(dc(2), User { id: 42, bot: false }).unwrap();
    let n = careless.encode(&mut blob).unwrap();
    let mut r: Router = Router::new(RouterConfig::DEFAULT);
    Record::decode(&blob[..n]).unwrap().restore_router(&mut r, T0).unwrap();
    assert!(!r.is_signed_in());
    assert_eq!(r.home(), Some(dc(2)));
}
