//! Engine-level tests of the encrypted session: round trips, service messages, and the negative tests of
//! SECURITY.md items 26-57 and attacks B1-B3, B5-B8, B14-B17, B20 that live in the engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod session_util;

use session_util::*;

#[test]
fn rpc_round_trip_echo() {
    let mut p = Pair::new(1);
    let body = api_body(7, 10);
    let id = p.query(&body);
    assert_eq!(p.results_for(id), vec![&Ev::Result(id, body.clone())]);
    // The DC saw the request once and created the session.
    let reqs: Vec<_> = p.server_events.iter().filter(|e| matches!(e, Ev::Request(..))).collect();
    assert_eq!(reqs.len(), 1);
    assert!(p.server_events.iter().any(|e| matches!(e, Ev::Created(_))));
}

#[test]
fn debug_trace() {
    let mut p = Pair::new(1);
    let _id = p.c.send(p.now, &api_body(7, 10), mtproto_sansio::session::MsgKind::Query).unwrap();
    for round in 0..5 {
        let a = p.c2s();
        let ra: Vec<_> = a.iter().map(|x| p.to_server(x)).collect();
        let b = p.s2c();
        let rb: Vec<_> = b.iter().map(|x| p.to_client(x)).collect();
        eprintln!("round {round}: c2s {:?} -> {:?}; s2c {:?} -> {:?}", a.iter().map(|x| x.len()).collect::<Vec<_>>(), ra, b.iter().map(|x| x.len()).collect::<Vec<_>>(), rb);
        eprintln!("  cev {:?}\n  sev {:?}\n  cstats {:?}\n  sstats {:?}", p.client_events, p.server_events, p.c.stats(), p.s.stats());
    }
}
