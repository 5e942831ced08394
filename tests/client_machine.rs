//! The client machine (`client::Client`, src/client/machine.rs) driven by hand against scripted DCs: real DC-role
//! `Connection`s on stored keys, bytes in and bytes out, with a script that decides each answer. Many requests in
//! flight matched to their answers, migrations (the home DC moved and saved; a file migration with an
//! authorization copy), a flood wait held and retried on the machine's timer, and a key the DC forgot (−404)
//! dropped, saved, and replaced by a key exchange with the request kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mtproto_sansio::client::machine::{
    CallError, CallKind, Client, ClientEvent, Config, ConnId, FILE_TX, FileConnection, HostAction, RpcFailure,
    TransferId,
};
use mtproto_sansio::client::router::{DcOption, RouterConfig, Target};
use mtproto_sansio::client::store::{Change, Record, User};
use mtproto_sansio::client::{DcId, RequestId};
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::session::{Connection, ConnectionConfig, Event, HostQuery, MsgId};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::api::types;
use mtproto_sansio::tl::invoke::{InitConnection, unwrap};
use mtproto_sansio::tl::{self, TlWrite};
use mtproto_sansio::transport::TransportConfig;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The DC side takes and sends media connections' large frames too.
type DcConn = FileConnection;

const INIT: InitConnection<'static> = InitConnection {
    api_id: 1,
    device_model: b"test",
    system_version: b"test",
    app_version: b"1",
    system_lang_code: b"en",
    lang_pack: b"",
    lang_code: b"en",
};

/// A method of our own: `[METHOD, n]` is answered `[n * 10]` (the DC's script decides).
const METHOD: u32 = 0x1234_5678;
const OTHER: u32 = 0x1234_5679;

fn dc(n: i64) -> DcId {
    DcId::new(n).unwrap()
}

fn option(n: i64) -> DcOption {
    DcOption {
        dc: dc(n),
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n as u8)),
        port: 443,
        media_only: false,
        tcpo_only: false,
        cdn: false,
        static_: false,
        this_port_only: false,
        secret: None,
    }
}

/// CDN DC 201, which makes a key with each connection (its RSA key from `help.getCdnConfig`).
const CDN: i64 = 201;

fn cdn_option() -> DcOption {
    DcOption {
        cdn: true,
        ..option(CDN)
    }
}

fn cdn_rsa() -> &'static mtproto_sansio::crypto::rsa::RsaPrivateKey {
    static K: std::sync::OnceLock<mtproto_sansio::crypto::rsa::RsaPrivateKey> = std::sync::OnceLock::new();
    K.get_or_init(|| mtproto_sansio::fuzzing::handshake::dc_key().unwrap())
}

fn key(n: i64) -> AuthKey {
    AuthKey::from_bytes([n as u8 + 1; 256])
}

fn call(method: u32, n: i32) -> Vec<u8> {
    [method.to_le_bytes(), n.to_le_bytes()].concat()
}

/// What a scripted DC does with a call: (dc, method, its arguments) → an answer now, or none yet.
enum Reply {
    Result(Vec<u8>),
    Error(i32, &'static str),
    Hold,
}

/// One DC-side connection.
struct DcSide {
    dc: DcId,
    conn: Option<Box<DcConn>>,
    /// Queries received, not answered yet: (msg_id, method, args).
    held: Vec<(MsgId, u32, Vec<u8>)>,
}

struct Net {
    client: Client,
    rng: StdRng,
    now: Instant,
    /// The keys each DC knows (a DC without an entry forgot every key: it answers −404).
    dc_keys: HashMap<DcId, AuthKey>,
    sides: HashMap<ConnId, DcSide>,
    /// Every call each DC received: (dc, method, wrapped in initConnection).
    received: Vec<(DcId, u32, bool)>,
    events: Vec<ClientEvent>,
    saved: Vec<Change>,
    opened: Vec<(ConnId, DcId)>,
    /// The first bytes every connection sent (at least 64, from its transport marker on).
    first_frames: HashMap<ConnId, Vec<u8>>,
    /// A DC that lost its sessions (a restart, a session expired): a new socket for a connection it served gets a
    /// new server session on the same key (`new_session_created`), and what the old one held is gone with it.
    new_sessions: bool,
    /// The connection each received call came on (beside `received`).
    received_on: Vec<ConnId>,
    /// The file an upload reads: `PartWanted` is answered from it as events are drained.
    upload_src: Option<(TransferId, Vec<u8>)>,
    /// The host does not drain events (backpressure tests).
    hold_events: bool,
}

fn config() -> Config {
    let mut c = Config::new(&[], TransportConfig::INTERMEDIATE);
    c.router = RouterConfig {
        test_mode: true,
        ..RouterConfig::DEFAULT
    };
    c.init = Some(INIT);
    c
}

/// A DC-side connection's configuration: its clock is the DC's one wall clock (Unix time = the test's `Instant`,
/// behind the client's, which the client corrects through `bad_msg_notification`), so a server session started later
/// goes on from where the earlier ones were, as a real DC's does. (A clock started at 0 by each new connection
/// would have a new session send the very msg_ids its predecessor sent, which the client refuses as replays.)
fn dc_config(now: Instant) -> ConnectionConfig {
    let mut c = ConnectionConfig {
        unix_time_hint: Some(UnixTime(now.as_secs())),
        ..ConnectionConfig::DEFAULT
    };
    // Room for a window of large file parts not acknowledged yet.
    c.engine.limits.max_unacked_bytes = FILE_TX;
    c
}

impl Net {
    /// A client whose record holds keys for `keys` (the DCs know them too), home DC 1.
    fn new(keys: &[i64], signed_in: bool) -> Net {
        Net::with_config(keys, signed_in, config())
    }

    fn with_config(keys: &[i64], signed_in: bool, cfg: Config) -> Net {
        let mut rec = Record::new(true);
        rec.set_options(&[option(1), option(2), option(3), cdn_option()])
            .unwrap();
        for &k in keys {
            rec.set_key(dc(k), key(k)).unwrap();
        }
        rec.set_home(dc(1));
        if signed_in {
            rec.signed_in(dc(1), User { id: 7, bot: true }).unwrap();
        }
        let now = Instant::from_secs(10);
        let client = Client::new(cfg, Some(rec), &[], now, UnixTime(1_700_000_000)).unwrap();
        Net {
            client,
            rng: StdRng::seed_from_u64(1),
            now,
            dc_keys: keys.iter().map(|&k| (dc(k), key(k))).collect(),
            sides: HashMap::new(),
            received: Vec::new(),
            events: Vec::new(),
            saved: Vec::new(),
            opened: Vec::new(),
            first_frames: HashMap::new(),
            new_sessions: false,
            received_on: Vec::new(),
            upload_src: None,
            hold_events: false,
        }
    }

    fn invoke(&mut self, target: Target, body: &[u8]) -> RequestId {
        self.client.invoke(self.now, target, body, CallKind::Api).unwrap()
    }

    /// Moves bytes both ways, saves what the machine asks, opens what it asks, until nothing moves.
    fn run(&mut self, script: &mut dyn FnMut(DcId, u32, &[u8]) -> Reply) {
        for _ in 0..200 {
            let mut moved = false;
            while let Some(change) = self.client.poll_save() {
                moved = true;
                self.saved.push(change);
                self.client.saved(self.now, change);
            }
            while let Some(a) = self.client.poll_action() {
                moved = true;
                match a {
                    HostAction::Open { conn, option } => {
                        self.opened.push((conn, option.dc));
                        let side = self.sides.entry(conn).or_insert(DcSide {
                            dc: option.dc,
                            conn: None,
                            held: Vec::new(),
                        });
                        // A new socket for a connection the DC served keeps its session there (as test_dc
                        // hands sessions over), unless the DC lost its sessions; a new one starts a session on
                        // the key.
                        match side.conn.as_mut() {
                            Some(c) if !self.new_sessions => c.reconnect(self.now),
                            _ if option.cdn => {
                                side.held.clear();
                                let mut scfg = mtproto_sansio::handshake::ServerConfig::new(
                                    cdn_rsa(),
                                    mtproto_sansio::crypto::dh::DhGroup::telegram(3).unwrap(),
                                );
                                scfg.dc_id = None;
                                let mut c = Box::new(Connection::server_handshake(dc_config(self.now), scfg, self.now));
                                c.set_new_key_check(false);
                                side.conn = Some(c);
                            }
                            _ => {
                                side.held.clear();
                                side.conn = self.dc_keys.get(&option.dc).map(|k| {
                                    Box::new(Connection::server(
                                        dc_config(self.now),
                                        k.clone(),
                                        self.now,
                                        &mut self.rng,
                                    ))
                                });
                            }
                        }
                        self.client.connected(self.now, conn, &mut self.rng);
                    }
                    HostAction::Close { conn } => {
                        self.sides.remove(&conn);
                    }
                }
            }
            let mut out = vec![0u8; 2 << 20];
            while let Some((conn, n)) = self.client.poll_transmit(self.now, &mut self.rng, &mut out).unwrap() {
                moved = true;
                let bytes = out[..n].to_vec();
                let first = self.first_frames.entry(conn).or_default();
                if first.len() < 64 {
                    first.extend_from_slice(&bytes);
                }
                self.deliver(conn, &bytes);
            }
            let conns: Vec<ConnId> = self.sides.keys().copied().collect();
            for conn in conns {
                moved |= self.answer_and_return(conn, script);
            }
            while !self.hold_events
                && let Some(ev) = self.client.poll_event()
            {
                moved = true;
                if let (ClientEvent::PartWanted { transfer, offset, len }, Some((t, data))) = (&ev, &self.upload_src)
                    && transfer == t
                {
                    let at = *offset as usize;
                    self.client
                        .upload_part(self.now, *transfer, *offset, &data[at..at + len])
                        .unwrap();
                }
                self.events.push(ev);
            }
            if !moved {
                return;
            }
        }
        panic!("the exchange did not settle");
    }

    fn deliver(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(side) = self.sides.get_mut(&conn) else {
            return;
        };
        let Some(c) = side.conn.as_mut() else {
            // A DC that forgot the key: the transport error −404, in intermediate framing. The marker alone gets
            // nothing.
            if bytes != [0xee; 4] {
                let mut frame = 4u32.to_le_bytes().to_vec();
                frame.extend_from_slice(&(-404i32).to_le_bytes());
                side.held.push((MsgId(0), 0, frame));
            }
            return;
        };
        let mut off = 0;
        while off < bytes.len() {
            off += c.handle_input(self.now, &bytes[off..]).unwrap();
            if let Some(HostQuery::Session { .. }) = c.host_query() {
                c.resume_session(self.now, None).unwrap();
            }
            while let Some(ev) = c.poll_event() {
                if let Event::Request { msg_id, body } = ev {
                    let u = unwrap(body, 4).unwrap();
                    self.received.push((side.dc, u.method, u.init_connection));
                    self.received_on.push(conn);
                    side.held.push((msg_id, u.method, u.args.to_vec()));
                }
            }
        }
    }

    /// Answers what the script allows and moves the DC's bytes to the client; true if anything moved.
    fn answer_and_return(&mut self, conn: ConnId, script: &mut dyn FnMut(DcId, u32, &[u8]) -> Reply) -> bool {
        let Some(side) = self.sides.get_mut(&conn) else {
            return false;
        };
        let Some(c) = side.conn.as_mut() else {
            let frames: Vec<Vec<u8>> = side.held.drain(..).map(|(_, _, f)| f).collect();
            let moved = !frames.is_empty();
            for f in frames {
                self.client.handle_input(self.now, conn, &f);
            }
            return moved;
        };
        let mut keep = Vec::new();
        for (msg, method, args) in side.held.drain(..) {
            match script(side.dc, method, &args) {
                Reply::Result(b) => {
                    c.answer(self.now, msg, &b).unwrap();
                }
                Reply::Error(code, m) => {
                    c.answer_error(self.now, msg, code, m.as_bytes()).unwrap();
                }
                Reply::Hold => keep.push((msg, method, args)),
            }
        }
        side.held = keep;
        let mut out = vec![0u8; 2 << 20];
        let mut wire = Vec::new();
        while let Some(n) = c.poll_transmit(self.now, &mut self.rng, &mut out).unwrap() {
            wire.extend_from_slice(&out[..n]);
        }
        let moved = !wire.is_empty();
        let mut off = 0;
        while off < wire.len() {
            let n = self.client.handle_input(self.now, conn, &wire[off..]);
            off += n;
            if n == 0 {
                while let Some(ev) = self.client.poll_event() {
                    self.events.push(ev);
                }
            }
        }
        moved
    }

    fn answers(&self) -> HashMap<RequestId, Result<Vec<u8>, RpcFailure>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Answer { id, result } => Some((*id, result.clone())),
                _ => None,
            })
            .collect()
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
        self.client.handle_timeout(self.now);
    }
}

/// `[METHOD, n]` → `[n * 10]`.
fn times_ten(args: &[u8]) -> Vec<u8> {
    let n = i32::from_le_bytes(args[..4].try_into().unwrap());
    (n * 10).to_le_bytes().to_vec()
}

/// Sixteen requests go out together on one connection (the DC holds every answer until it has all of them),
/// come back in reverse order, and each answer reaches the request that asked it; only the first call of the
/// session carries `initConnection`.
#[test]
fn many_requests_in_flight_are_matched_to_their_answers() {
    let mut net = Net::new(&[1], false);
    let ids: Vec<RequestId> = (0..16).map(|n| net.invoke(Target::Home, &call(METHOD, n))).collect();
    let mut all_in = false;
    net.run(&mut |_, _, _| Reply::Hold);
    assert_eq!(net.received.len(), 16, "every request in flight at once");
    assert_eq!(net.client.open_requests(), 16);
    assert_eq!(
        net.received.iter().filter(|r| r.2).count(),
        1,
        "initConnection once per session"
    );
    assert!(net.received[0].2);
    // Reverse order: the DC answers the last first.
    let mut order: Vec<i32> = (0..16).rev().collect();
    net.run(&mut |_, _, args| {
        all_in = true;
        let n = i32::from_le_bytes(args[..4].try_into().unwrap());
        if order.first() == Some(&n) {
            order.remove(0);
            Reply::Result(times_ten(args))
        } else {
            Reply::Hold
        }
    });
    assert!(all_in);
    let answers = net.answers();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(answers[id], Ok(((n as i32) * 10).to_le_bytes().to_vec()), "request {n}");
    }
    assert_eq!(net.client.open_requests(), 0);
    assert_eq!(net.client.stats().queries, 16);
    assert_eq!(net.opened.len(), 1, "one connection for all of them");
}

/// `NETWORK_MIGRATE_3` moves the home DC (saved as `Change::Home`) and the request goes again on DC 3 (a new
/// connection, its own `initConnection`), answered there; the caller sees only the answer.
#[test]
fn a_migration_moves_the_home_dc_and_the_request() {
    let mut net = Net::new(&[1, 3], false);
    let id = net.invoke(Target::Home, &call(METHOD, 4));
    net.run(&mut |dc_, _, args| {
        if dc_ == dc(1) {
            Reply::Error(303, "NETWORK_MIGRATE_3")
        } else {
            Reply::Result(times_ten(args))
        }
    });
    assert_eq!(net.answers()[&id], Ok(40i32.to_le_bytes().to_vec()));
    assert_eq!(net.client.home(), Some(dc(3)));
    assert_eq!(net.client.record().home, Some(dc(3)));
    assert!(net.saved.contains(&Change::Home));
    assert_eq!(
        net.received,
        [(dc(1), METHOD, true), (dc(3), METHOD, true)],
        "once on each DC, each a new session"
    );
}

/// Signed in on DC 1, a request gets `FILE_MIGRATE_2`: the machine copies the authorization
/// (`auth.exportAuthorization` on DC 1, `auth.importAuthorization` with its result on DC 2, saved), then sends the
/// request on DC 2; the home DC stays.
#[test]
fn a_file_migration_copies_the_authorization_first() {
    use mtproto_sansio::tl::api::functions::{AuthExportAuthorization, AuthImportAuthorization};
    let mut net = Net::new(&[1, 2], true);
    let id = net.invoke(Target::Home, &call(METHOD, 5));
    net.run(&mut |dc_, method, args| match (dc_.get(), method) {
        (1, METHOD) => Reply::Error(303, "FILE_MIGRATE_2"),
        (1, AuthExportAuthorization::ID) => {
            assert_eq!(args, 2i32.to_le_bytes());
            let e = types::AuthExportedAuthorization { id: 7, bytes: b"token" };
            let mut b = vec![0u8; e.tl_len()];
            tl::encode(&e, &mut b).unwrap();
            Reply::Result(b)
        }
        (2, AuthImportAuthorization::ID) => Reply::Result(vec![0; 4]),
        (2, METHOD) => Reply::Result(times_ten(args)),
        other => panic!("unexpected call {other:?}"),
    });
    assert_eq!(net.answers()[&id], Ok(50i32.to_le_bytes().to_vec()));
    assert_eq!(net.client.home(), Some(dc(1)));
    assert_eq!(net.client.stats().imports, 1);
    assert!(net.saved.contains(&Change::Authorized(dc(2))));
    assert!(net.client.record().dc(dc(2)).unwrap().authorized);
    let calls: Vec<(u16, u32)> = net.received.iter().map(|r| (r.0.get(), r.1)).collect();
    assert_eq!(
        calls,
        [
            (1, METHOD),
            (1, AuthExportAuthorization::ID),
            (2, AuthImportAuthorization::ID),
            (2, METHOD)
        ]
    );
}

/// `FLOOD_WAIT_3`: the request is held (no answer, nothing sent) and `poll_timeout` says when; a second request
/// of the same method to the same DC waits with it instead of collecting the same error, another method goes at
/// once. Three seconds later both are sent and answered.
#[test]
fn a_flood_wait_holds_the_method_and_retries_on_the_timer() {
    let mut net = Net::new(&[1], false);
    let first = net.invoke(Target::Home, &call(METHOD, 1));
    let mut flooded = false;
    let mut script = |_: DcId, method: u32, args: &[u8]| {
        if method == METHOD && !flooded {
            flooded = true;
            Reply::Error(420, "FLOOD_WAIT_3")
        } else {
            Reply::Result(times_ten(args))
        }
    };
    net.run(&mut script);
    assert!(net.answers().is_empty());
    let due = net.client.poll_timeout().unwrap();
    assert!(due >= net.now.saturating_add(Duration::from_secs(3)), "{due:?}");
    let second = net.invoke(Target::Home, &call(METHOD, 2));
    let other = net.invoke(Target::Home, &call(OTHER, 3));
    net.run(&mut script);
    assert_eq!(
        net.received.len(),
        2,
        "the same method is held, another goes: {:?}",
        net.received
    );
    assert_eq!(net.answers()[&other], Ok(30i32.to_le_bytes().to_vec()));
    net.advance(Duration::from_secs(1));
    net.run(&mut script);
    assert_eq!(net.received.len(), 2, "still waiting");
    net.advance(Duration::from_secs(2));
    net.run(&mut script);
    let answers = net.answers();
    assert_eq!(answers[&first], Ok(10i32.to_le_bytes().to_vec()));
    assert_eq!(answers[&second], Ok(20i32.to_le_bytes().to_vec()));
    assert_eq!(net.received.len(), 4);
}

/// A flood wait longer than the budget (60 s) reaches the caller as the DC's error.
#[test]
fn a_long_flood_wait_is_surfaced() {
    let mut net = Net::new(&[1], false);
    let id = net.invoke(Target::Home, &call(METHOD, 1));
    net.run(&mut |_, _, _| Reply::Error(420, "FLOOD_WAIT_120"));
    assert_eq!(
        net.answers()[&id],
        Err(RpcFailure {
            code: 420,
            message: b"FLOOD_WAIT_120".to_vec()
        })
    );
}

/// The home DC forgot the stored key (−404): the key is dropped from the record (saved as `KeyDropped`, after the
/// sign-out its authorization goes with), the connection closed, and the request kept: a new connection opens
/// that starts a key exchange (its first frame is a plain `req_pq_multi`).
#[test]
fn a_forgotten_key_is_dropped_and_the_request_kept_for_a_new_key() {
    let mut net = Net::new(&[1], true);
    net.dc_keys.clear();
    let id = net.invoke(Target::Home, &call(METHOD, 1));
    net.run(&mut |_, _, _| Reply::Hold);
    assert_eq!(net.client.stats().keys_dropped, 1);
    assert!(net.client.record().key(dc(1)).is_none());
    assert!(!net.client.is_signed_in());
    assert!(net.events.contains(&ClientEvent::SignedOut));
    let at = net.saved.iter().position(|c| *c == Change::KeyDropped(dc(1))).unwrap();
    assert!(net.saved[..at].contains(&Change::SignedOut), "{:?}", net.saved);
    assert_eq!(net.opened.len(), 2, "a second connection: {:?}", net.opened);
    assert!(!net.answers().contains_key(&id), "kept, not failed");
    assert_eq!(net.client.open_requests(), 1);
    let (conn, _) = net.opened[1];
    let frame = &net.first_frames[&conn];
    // Intermediate marker, length, then auth_key_id 0 (an unencrypted message), msg_id, length, req_pq_multi.
    assert_eq!(frame[..4], [0xee; 4]);
    assert_eq!(frame[8..16], [0; 8], "a plain message: the key exchange");
    assert_eq!(frame[28..32], 0xbe7e_8ef1u32.to_le_bytes(), "req_pq_multi");
}

/// A refused body and backpressure: a body that is not TL is refused; past `max_requests` too, with nothing sent.
#[test]
fn bad_bodies_and_too_many_requests_are_refused() {
    use mtproto_sansio::client::machine::InvokeError;
    let mut net = Net::new(&[1], false);
    let now = net.now;
    assert_eq!(
        net.client.invoke(now, Target::Home, &[1, 2, 3], CallKind::Api),
        Err(InvokeError::BadBody)
    );
    for n in 0..32 {
        net.invoke(Target::Home, &call(METHOD, n));
    }
    assert_eq!(
        net.client.invoke(now, Target::Home, &call(METHOD, 99), CallKind::Api),
        Err(InvokeError::Full)
    );
}

/// A socket lost with a query in flight: the machine asks for the same connection again (after the router's
/// backoff), its session continues on the new socket, and the answer reaches the request; a socket lost with nothing in flight on a DC that
/// is not home is not reopened.
#[test]
fn a_lost_connection_with_a_query_in_flight_is_opened_again() {
    let mut net = Net::new(&[1, 2], false);
    let id = net.invoke(Target::Home, &call(METHOD, 6));
    net.run(&mut |_, _, _| Reply::Hold);
    assert_eq!(net.opened.len(), 1);
    let (conn, _) = net.opened[0];
    net.client.disconnected(net.now, conn);
    // The router's backoff before reopening (1 s by default).
    net.run(&mut |_, _, _| Reply::Hold);
    net.advance(Duration::from_secs(2));
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    assert_eq!(net.answers()[&id], Ok(60i32.to_le_bytes().to_vec()));
    assert_eq!(
        net.opened,
        [(conn, dc(1)), (conn, dc(1))],
        "the same connection, a new socket"
    );
    // The session resent it on the new socket; the DC's session, handed over, had it already and answers once.
    assert_eq!(net.received.len(), 1);

    // DC 2, answered, then idle and lost: nothing asks for it.
    let other = net.invoke(Target::Dc(dc(2)), &call(METHOD, 7));
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    assert_eq!(net.answers()[&other], Ok(70i32.to_le_bytes().to_vec()));
    let (conn2, _) = *net.opened.last().unwrap();
    net.client.disconnected(net.now, conn2);
    net.advance(Duration::from_secs(5));
    net.run(&mut |_, _, _| Reply::Hold);
    assert_eq!(
        net.opened.iter().filter(|o| o.0 == conn2).count(),
        1,
        "{:?}",
        net.opened
    );
}

/// A socket lost with a query in flight, and the DC lost its sessions meanwhile (a restart, an expired session):
/// the new socket gets a new server session on the same key, which announces itself (`new_session_created`,
/// `ClientEvent::SessionReset`); the query the old session held died with it, the client's session resent it on
/// the new socket, and its answer reaches the request.
#[test]
fn a_new_server_session_after_a_reconnect_answers_the_resent_query() {
    let mut net = Net::new(&[1], false);
    net.new_sessions = true;
    let id = net.invoke(Target::Home, &call(METHOD, 6));
    net.run(&mut |_, _, _| Reply::Hold);
    assert_eq!(net.received.len(), 1);
    let (conn, _) = net.opened[0];
    net.client.disconnected(net.now, conn);
    net.run(&mut |_, _, _| Reply::Hold);
    net.advance(Duration::from_secs(2));
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    assert_eq!(
        net.opened,
        [(conn, dc(1)), (conn, dc(1))],
        "the same connection, a new socket"
    );
    assert_eq!(
        net.events
            .iter()
            .filter(|e| **e == ClientEvent::SessionReset { dc: dc(1) })
            .count(),
        2,
        "one new_session_created from each server session: {:?}",
        net.events
    );
    assert_eq!(net.received.len(), 2, "once in each server session: {:?}", net.received);
    assert_eq!(net.answers()[&id], Ok(60i32.to_le_bytes().to_vec()));
    assert_eq!(net.client.open_requests(), 0);
}

/// Events the host has not drained are bounded: past `max_events`, input is refused (0 consumed) until the host
/// drains them, and nothing is lost.
#[test]
fn undrained_events_stop_input_until_drained() {
    let mut cfg = config();
    cfg.max_events = 3;
    let mut net = Net::with_config(&[1], false, cfg);
    let ids: Vec<RequestId> = (0..8).map(|n| net.invoke(Target::Home, &call(METHOD, n))).collect();
    net.run(&mut |_, _, _| Reply::Hold);
    assert_eq!(net.received.len(), 8);
    let (conn, _) = net.opened[0];
    let now = net.now;
    let side = net.sides.get_mut(&conn).unwrap();
    let c = side.conn.as_mut().unwrap();
    // Two packets of four answers each.
    let mut out = vec![0u8; 2 << 20];
    let mut packets = Vec::new();
    for half in side.held.chunks(4) {
        for (msg, _, args) in half {
            c.answer(now, *msg, &times_ten(args)).unwrap();
        }
        let mut wire = Vec::new();
        while let Some(n) = c.poll_transmit(now, &mut net.rng, &mut out).unwrap() {
            wire.extend_from_slice(&out[..n]);
        }
        packets.push(wire);
    }
    side.held.clear();
    assert_eq!(net.client.handle_input(now, conn, &packets[0]), packets[0].len());
    // Four answers wait undrained, more than `max_events`: the next packet is refused, not dropped.
    assert_eq!(net.client.handle_input(now, conn, &packets[1]), 0);
    let mut drained = Vec::new();
    while let Some(ev) = net.client.poll_event() {
        drained.push(ev);
    }
    assert_eq!(drained.len(), 4);
    assert_eq!(net.client.handle_input(now, conn, &packets[1]), packets[1].len());
    while let Some(ev) = net.client.poll_event() {
        drained.push(ev);
    }
    net.events.extend(drained);
    let answers = net.answers();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(answers[id], Ok(((n as i32) * 10).to_le_bytes().to_vec()), "request {n}");
    }
}

/// A careless host reports one socket loss several times (an error, then the close, then again): it counts once.
/// On main each report after the first counted as one more failed opening, and the third failed the query in
/// flight `Unreachable` although no new socket had been tried; now the connection is opened again once, its
/// session goes on, and the query is answered.
#[test]
fn a_loss_reported_again_counts_once() {
    let mut net = Net::new(&[1], false);
    let id = net.invoke(Target::Home, &call(METHOD, 6));
    net.run(&mut |_, _, _| Reply::Hold);
    let (conn, _) = net.opened[0];
    for _ in 0..4 {
        net.client.disconnected(net.now, conn);
        net.client.connect_failed(net.now, conn);
    }
    net.run(&mut |_, _, _| Reply::Hold);
    assert!(
        !net.events.iter().any(|e| matches!(e, ClientEvent::Failed { .. })),
        "{:?}",
        net.events
    );
    net.advance(Duration::from_secs(2));
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    assert_eq!(net.answers()[&id], Ok(60i32.to_le_bytes().to_vec()));
    assert_eq!(net.opened, [(conn, dc(1)), (conn, dc(1))]);
}

/// `connected` for a socket the machine did not ask for (a connection already up, or lost and not opened again)
/// changes nothing. On main a lost connection reported connected before the machine asked for a new socket was
/// taken as up on a transport never restarted for it, and marked ready in the router, which then never asked for
/// the socket again; now the router's reopening goes ahead and the query is answered on the new socket.
#[test]
fn connected_for_a_socket_not_asked_for_changes_nothing() {
    let mut net = Net::new(&[1], false);
    let id = net.invoke(Target::Home, &call(METHOD, 6));
    net.run(&mut |_, _, _| Reply::Hold);
    let (conn, _) = net.opened[0];
    // Up already: a second report changes nothing (no second session start, nothing sent).
    net.client.connected(net.now, conn, &mut net.rng);
    let mut out = vec![0u8; 70_000];
    assert_eq!(net.client.poll_transmit(net.now, &mut net.rng, &mut out).unwrap(), None);
    net.client.disconnected(net.now, conn);
    net.client.connected(net.now, conn, &mut net.rng);
    // A connection the machine never opened.
    net.client.connected(net.now, ConnId(999), &mut net.rng);
    net.run(&mut |_, _, _| Reply::Hold);
    net.advance(Duration::from_secs(2));
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    assert_eq!(
        net.opened,
        [(conn, dc(1)), (conn, dc(1))],
        "the socket is asked for again"
    );
    assert_eq!(net.answers()[&id], Ok(60i32.to_le_bytes().to_vec()));
}

fn timed_out(net: &Net, id: RequestId) -> bool {
    net.events
        .iter()
        .any(|e| matches!(e, ClientEvent::Failed { id: i, error: CallError::TimedOut } if *i == id))
}

/// A request in flight past its own deadline fails with `CallError::TimedOut` on the machine's timer (which
/// `poll_timeout` asks for), never silently; the DC's answer that comes after is dropped (no `Answer`) and counted.
/// A request without a deadline on the same connection is untouched.
#[test]
fn a_request_past_its_deadline_times_out_and_its_late_answer_is_dropped() {
    let mut net = Net::new(&[1], false);
    let now = net.now;
    let deadline = now.saturating_add(Duration::from_secs(5));
    let id = net
        .client
        .invoke_until(now, Target::Home, &call(METHOD, 1), CallKind::Api, Some(deadline))
        .unwrap();
    let other = net.invoke(Target::Home, &call(METHOD, 2));
    net.run(&mut |_, _, _| Reply::Hold);
    assert_eq!(net.received.len(), 2);
    assert!(net.client.poll_timeout().unwrap() <= deadline);
    net.advance(Duration::from_secs(4));
    net.run(&mut |_, _, _| Reply::Hold);
    assert!(!timed_out(&net, id), "not before its deadline");
    net.advance(Duration::from_secs(1));
    net.run(&mut |_, _, _| Reply::Hold);
    assert!(timed_out(&net, id), "{:?}", net.events);
    assert_eq!(net.client.open_requests(), 1);
    assert_eq!(net.client.stats().timed_out, 1);
    // Now the DC answers both.
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    let answers = net.answers();
    assert!(!answers.contains_key(&id), "a late answer is dropped");
    assert_eq!(answers[&other], Ok(20i32.to_le_bytes().to_vec()));
    assert_eq!(net.client.stats().late_answers, 1);
    assert_eq!(net.client.open_requests(), 0);
}

/// `Config::deadline` gives every request one: a request under a flood wait (`FLOOD_WAIT_30`, within the budget)
/// fails at its 10 s deadline instead of being retried at 30 s; the scheduler forgets it (nothing sent again).
#[test]
fn the_config_deadline_ends_a_request_held_by_a_flood_wait() {
    let mut cfg = config();
    cfg.deadline = Some(Duration::from_secs(10));
    let mut net = Net::with_config(&[1], false, cfg);
    let id = net.invoke(Target::Home, &call(METHOD, 1));
    net.run(&mut |_, _, _| Reply::Error(420, "FLOOD_WAIT_30"));
    assert!(net.answers().is_empty());
    assert!(!timed_out(&net, id));
    net.advance(Duration::from_secs(10));
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    assert!(timed_out(&net, id), "{:?}", net.events);
    net.advance(Duration::from_secs(30));
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    assert_eq!(net.received.len(), 1, "not retried after its deadline");
    assert_eq!(net.client.open_requests(), 0);
    assert_eq!(net.client.stats().late_answers, 0);
}

/// Requests the router holds (their connection not open yet: the host has not acted) time out there; the router
/// forgets them, freeing its held table (32 places: a full table of dead requests would refuse the next ones with
/// `RouteError::Full`), so 32 new requests are held and answered, and the timed-out ones are never sent.
#[test]
fn requests_held_by_the_router_time_out_and_are_never_sent() {
    let mut net = Net::new(&[1], false);
    let now = net.now;
    let dead: Vec<RequestId> = (0..32)
        .map(|n| {
            net.client
                .invoke_until(
                    now,
                    Target::Home,
                    &call(METHOD, n),
                    CallKind::Api,
                    Some(now.saturating_add(Duration::from_secs(3))),
                )
                .unwrap()
        })
        .collect();
    net.advance(Duration::from_secs(3));
    while let Some(ev) = net.client.poll_event() {
        net.events.push(ev);
    }
    for id in &dead {
        assert!(timed_out(&net, *id), "{:?}", net.events);
    }
    assert_eq!(net.client.open_requests(), 0);
    let live: Vec<RequestId> = (100..132).map(|n| net.invoke(Target::Home, &call(METHOD, n))).collect();
    net.run(&mut |_, _, args| Reply::Result(times_ten(args)));
    assert_eq!(net.received.len(), 32, "only the live ones are sent");
    let answers = net.answers();
    for (n, id) in (100..132).zip(&live) {
        assert_eq!(answers[id], Ok((n * 10i32).to_le_bytes().to_vec()), "request {n}");
    }
    assert_eq!(net.client.open_requests(), 0);
}

// ---- File transfers through the machine: uploads and downloads on media connections. ----

use mtproto_sansio::client::files::{DownloadConfig, FileConfig, KIB, UploadConfig};
use mtproto_sansio::client::machine::{TransferError, TransferState};
use mtproto_sansio::tl::api::{Bare, Obj, RemoteCall, enums, functions};
use mtproto_sansio::tl::tables::api as tables;
use mtproto_sansio::tl::typed::Cursor;

fn enc<T: TlWrite + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    tl::encode(v, &mut out).unwrap();
    out
}

fn args_view<'a, F: Bare<'a>>(args: &'a [u8]) -> F {
    F::read_bare(&mut Cursor::new(args, &tables::API))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn doc_location(id: i64, reference: &[u8]) -> Vec<u8> {
    enc(&enums::InputFileLocation::InputDocumentFileLocation(
        types::InputDocumentFileLocation {
            id,
            access_hash: 1,
            file_reference: reference,
            thumb_size: b"",
        },
    ))
}

/// A DC's file store: parts saved by `upload.saveFilePart`/`saveBigFilePart`, files served by `upload.getFile`
/// (with the spec's offset and limit checks) from `files`, on `home` only (others answer `FILE_MIGRATE`), with the
/// file reference `reference`.
struct FileDc {
    parts: std::collections::BTreeMap<i32, Vec<u8>>,
    files: HashMap<i64, Vec<u8>>,
    home: i64,
    reference: Vec<u8>,
    /// `getFile` calls served: (dc, offset).
    served: Vec<(DcId, i64)>,
    /// Redirect `getFile` calls with `cdn_supported` to CDN DC 201.
    cdn: bool,
    /// CDN parts (by offset) the CDN tampers with.
    tamper: Vec<i64>,
    /// `getCdnFile` calls served: (dc, offset).
    cdn_served: Vec<(DcId, i64)>,
}

const CDN_KEY: [u8; 32] = [7; 32];
const CDN_IV: [u8; 16] = [9; 16];

/// The SHA-256 of each 128 KiB range of `data` from `from`, at most `count`, as a `Vector<FileHash>`.
fn cdn_hashes(data: &[u8], from: i64, count: usize) -> Vec<u8> {
    use mtproto_sansio::client::files::CDN_HASH_RANGE;
    use sha2::Digest;
    let mut items = Vec::new();
    let mut off = from as usize;
    while off < data.len() && items.len() < count {
        let end = (off + CDN_HASH_RANGE as usize).min(data.len());
        let h: [u8; 32] = sha2::Sha256::digest(&data[off..end]).into();
        items.push((off as i64, (end - off) as i32, h));
        off = end;
    }
    let mut out = 0x1cb5_c415u32.to_le_bytes().to_vec();
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for (o, l, h) in &items {
        out.extend(enc(&types::FileHash {
            offset: *o,
            limit: *l,
            hash: h,
        }));
    }
    out
}

impl FileDc {
    fn new(home: i64) -> FileDc {
        FileDc {
            parts: Default::default(),
            files: HashMap::new(),
            home,
            reference: b"ref1".to_vec(),
            served: Vec::new(),
            cdn: false,
            tamper: Vec::new(),
            cdn_served: Vec::new(),
        }
    }

    fn uploaded(&self) -> Vec<u8> {
        self.parts.values().flatten().copied().collect()
    }

    fn reply(&mut self, dc_: DcId, method: u32, args: &[u8]) -> Option<Reply> {
        Some(match method {
            functions::UploadSaveFilePart::ID => {
                let c: functions::UploadSaveFilePart<'_> = args_view(args);
                self.parts.insert(c.file_part, c.bytes.to_vec());
                Reply::Result(enc(&enums::Bool::BoolTrue(types::BoolTrue {})))
            }
            functions::UploadSaveBigFilePart::ID => {
                let c: functions::UploadSaveBigFilePart<'_> = args_view(args);
                self.parts.insert(c.file_part, c.bytes.to_vec());
                Reply::Result(enc(&enums::Bool::BoolTrue(types::BoolTrue {})))
            }
            functions::UploadGetFile::ID => {
                let c: functions::UploadGetFile<'_> = args_view(args);
                if dc_.get() as i64 != self.home {
                    return Some(Reply::Error(
                        303,
                        ["FILE_MIGRATE_", &self.home.to_string()].concat().leak(),
                    ));
                }
                let Some(enums::InputFileLocation::InputDocumentFileLocation(l)) = c.location.get() else {
                    return Some(Reply::Error(400, "LOCATION_INVALID"));
                };
                if l.file_reference != self.reference.as_slice() {
                    return Some(Reply::Error(400, "FILE_REFERENCE_EXPIRED"));
                }
                let (off, lim) = (c.offset, c.limit);
                assert!(lim > 0 && lim % 4096 == 0 && (1 << 20) % lim == 0, "limit {lim}");
                assert!(off >= 0 && off % i64::from(lim) == 0, "offset {off}");
                let data = &self.files[&l.id];
                if self.cdn && c.cdn_supported {
                    let hashes = cdn_hashes(data, 0, 2);
                    let v = functions::UploadGetCdnFileHashes::decode_result(&hashes).unwrap();
                    return Some(Reply::Result(enc(&types::UploadFileCdnRedirect {
                        dc_id: CDN as i32,
                        file_token: b"cdn-token",
                        encryption_key: &CDN_KEY,
                        encryption_iv: &CDN_IV,
                        file_hashes: v,
                    })));
                }
                self.served.push((dc_, off));
                let s = (off as usize).min(data.len());
                let e = (s + lim as usize).min(data.len());
                Reply::Result(enc(&types::UploadFile {
                    type_: Obj::new(&enums::StorageFileType::StorageFilePartial(
                        types::StorageFilePartial {},
                    )),
                    mtime: 0,
                    bytes: &data[s..e],
                }))
            }
            functions::HelpGetCdnConfig::ID => {
                let mut pem = vec![0u8; 2048];
                let n = mtproto_sansio::crypto::pem::write_public_pem(cdn_rsa().public_key(), &mut pem).unwrap();
                let key = enc(&types::CdnPublicKey {
                    dc_id: CDN as i32,
                    public_key: &pem[..n],
                });
                let mut out = types::CdnConfig::ID.to_le_bytes().to_vec();
                out.extend_from_slice(&0x1cb5_c415u32.to_le_bytes());
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend(key);
                Reply::Result(out)
            }
            functions::UploadGetCdnFileHashes::ID => {
                let c: functions::UploadGetCdnFileHashes<'_> = args_view(args);
                assert_eq!(c.file_token, b"cdn-token");
                let data = self.files.values().next().unwrap();
                Reply::Result(cdn_hashes(data, c.offset, 8))
            }
            functions::UploadGetCdnFile::ID => {
                assert_eq!(dc_, dc(CDN), "a CDN part from the CDN");
                let c: functions::UploadGetCdnFile<'_> = args_view(args);
                assert_eq!(c.file_token, b"cdn-token");
                self.cdn_served.push((dc_, c.offset));
                let data = self.files.values().next().unwrap();
                let s = (c.offset as usize).min(data.len());
                let e = (s + c.limit as usize).min(data.len());
                let mut bytes = data[s..e].to_vec();
                let mut iv = CDN_IV;
                iv[12..].copy_from_slice(&((c.offset / 16) as u32).to_be_bytes());
                mtproto_sansio::crypto::aes::AesCtr::new(&CDN_KEY, &iv).apply(&mut bytes);
                if self.tamper.contains(&c.offset) && !bytes.is_empty() {
                    bytes[0] ^= 1;
                }
                Reply::Result(enc(&types::UploadCdnFile { bytes: &bytes }))
            }
            _ => return None,
        })
    }
}

/// The downloaded bytes, put where their offsets say, and whether the transfer said it was done.
fn downloaded(events: &[ClientEvent], t: TransferId) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut done = false;
    for e in events {
        match e {
            ClientEvent::Downloaded {
                transfer,
                offset,
                bytes,
            } if *transfer == t => {
                let end = *offset as usize + bytes.len();
                if out.len() < end {
                    out.resize(end, 0);
                }
                out[*offset as usize..end].copy_from_slice(bytes);
            }
            ClientEvent::TransferDone { transfer } if *transfer == t => done = true,
            _ => {}
        }
    }
    (out, done)
}

fn upload_cfg(part: u32) -> UploadConfig {
    UploadConfig {
        part_size: Some(part),
        ..UploadConfig::DEFAULT
    }
}

fn download_cfg(limit: u32, window: u8) -> DownloadConfig {
    DownloadConfig {
        limit,
        transfer: FileConfig {
            window,
            ..FileConfig::DEFAULT
        },
        ..DownloadConfig::DEFAULT
    }
}

/// A 600 KiB file goes up in 512 KiB parts (more than a main connection's 64 KiB frames and 256 KiB arena can
/// carry) on a media connection the machine opens beside the main one, the host giving each part's bytes when asked;
/// then comes back down in 512 KiB parts with their offsets, byte for byte. The main connection carries only the API
/// call.
#[test]
fn a_file_goes_up_and_comes_down_on_a_media_connection() {
    let mut net = Net::new(&[1], true);
    let file = pattern(600 * KIB as usize, 3);
    let mut fdc = FileDc::new(1);
    let api = net.invoke(Target::Home, &call(METHOD, 1));
    let now = net.now;
    let up = net
        .client
        .upload(now, upload_cfg(512 * KIB), 77, file.len() as u64)
        .unwrap();
    net.upload_src = Some((up, file.clone()));
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap_or_else(|| Reply::Result(times_ten(a))));
    assert_eq!(net.answers()[&api], Ok(10i32.to_le_bytes().to_vec()));
    assert!(
        net.events.contains(&ClientEvent::TransferDone { transfer: up }),
        "{:?}",
        net.events
    );
    assert_eq!(fdc.uploaded(), file);
    let wanted = net
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::PartWanted { .. }))
        .count();
    assert_eq!(wanted, 2);
    let mut input = [0u8; 256];
    let n = net.client.upload_input_file(up, b"f.bin", &mut input).unwrap();
    assert!(n > 0);
    assert!(net.client.finish_transfer(net.now, up));
    assert_eq!(net.client.transfers(), 0);
    // Two connections: the main one for METHOD, a media one for the parts.
    assert_eq!(net.opened.len(), 2, "{:?}", net.opened);
    let main = net.received_on[net.received.iter().position(|r| r.1 == METHOD).unwrap()];
    for (r, conn) in net.received.iter().zip(&net.received_on) {
        assert_eq!(*conn == main, r.1 == METHOD, "{r:?} on {conn:?}");
    }

    fdc.files.insert(5, file.clone());
    let now = net.now;
    let down = net
        .client
        .download(now, download_cfg(512 * KIB, 4), &doc_location(5, b"ref1"), None)
        .unwrap();
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap());
    let (bytes, done) = downloaded(&net.events, down);
    assert!(done, "{:?}", net.events.last());
    assert_eq!(bytes, file);
    assert_eq!(net.opened.len(), 2, "the media connection again");
    assert_eq!(net.client.open_requests(), 0);
}

/// `FILE_MIGRATE_2` on a download: the machine copies the authorization to DC 2 (export on 1, import on 2) and
/// the rest of the download goes to DC 2's media connection; the file arrives whole.
#[test]
fn a_download_follows_file_migrate_with_an_authorization_copy() {
    use mtproto_sansio::tl::api::functions::{AuthExportAuthorization, AuthImportAuthorization};
    let mut net = Net::new(&[1, 2], true);
    let file = pattern(40 * KIB as usize + 100, 9);
    let mut fdc = FileDc::new(2);
    fdc.files.insert(5, file.clone());
    let now = net.now;
    let down = net
        .client
        .download(now, download_cfg(16 * KIB, 2), &doc_location(5, b"ref1"), None)
        .unwrap();
    net.run(&mut |d, m, a| match m {
        AuthExportAuthorization::ID => {
            assert_eq!(d, dc(1));
            Reply::Result(enc(&types::AuthExportedAuthorization { id: 7, bytes: b"token" }))
        }
        AuthImportAuthorization::ID => {
            assert_eq!(d, dc(2));
            Reply::Result(vec![0; 4])
        }
        _ => fdc.reply(d, m, a).unwrap(),
    });
    let (bytes, done) = downloaded(&net.events, down);
    assert!(done, "{:?}", net.events);
    assert_eq!(bytes, file);
    assert_eq!(net.client.stats().imports, 1);
    assert!(fdc.served.iter().all(|(d, _)| *d == dc(2)));
    // Three parts with data; with the size unknown, the window may also ask the empty one after the end.
    let offsets: Vec<i64> = fdc.served.iter().map(|s| s.1).collect();
    for p in 0..3 {
        assert!(offsets.contains(&i64::from(p * 16 * KIB)), "{offsets:?}");
    }
}

/// A host that does not drain events holds the download: the window's parts arrive and wait (nothing dropped),
/// no further part is asked for; once the host drains, the rest comes. A file reference that expires stops the
/// download until the host gives a fresh location.
#[test]
fn an_undrained_download_stops_asking_and_an_expired_reference_waits_for_a_new_location() {
    let mut net = Net::new(&[1], true);
    let file = pattern(10 * 16 * KIB as usize, 5);
    let mut fdc = FileDc::new(1);
    fdc.files.insert(5, file.clone());
    let now = net.now;
    let down = net
        .client
        .download(
            now,
            download_cfg(16 * KIB, 4),
            &doc_location(5, b"ref1"),
            Some(file.len() as u64),
        )
        .unwrap();
    net.hold_events = true;
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap());
    assert_eq!(
        fdc.served.len(),
        4,
        "the window, then nothing while the host does not drain"
    );
    net.advance(Duration::from_secs(5));
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap());
    assert_eq!(fdc.served.len(), 4);
    net.hold_events = false;
    fdc.reference = b"ref2".to_vec();
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap());
    assert!(net.events.contains(&ClientEvent::ReferenceExpired { transfer: down }));
    assert_eq!(fdc.served.len(), 4);
    let now = net.now;
    net.client
        .refresh_location(now, down, &doc_location(5, b"ref2"))
        .unwrap();
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap());
    let (bytes, done) = downloaded(&net.events, down);
    assert!(done);
    assert_eq!(bytes, file);
    assert_eq!(fdc.served.len(), 10, "every part once");
}

/// A download resumed from its persisted state asks only for the parts it did not have; an upload resumed from
/// its state sends only the parts not saved. Transfers past `max_transfers` are refused.
#[test]
fn transfers_resume_from_their_state_and_are_bounded() {
    let mut net = Net::new(&[1], true);
    let file = pattern(6 * 16 * KIB as usize, 7);
    let mut fdc = FileDc::new(1);
    fdc.files.insert(5, file.clone());
    let now = net.now;
    let loc = doc_location(5, b"ref1");
    let down = net
        .client
        .download(now, download_cfg(16 * KIB, 1), &loc, Some(file.len() as u64))
        .unwrap();
    // Three parts, then the host stops (and keeps what it stored).
    let mut budget = 3;
    net.run(&mut |d, m, a| {
        if budget == 0 {
            return Reply::Hold;
        }
        budget -= 1;
        fdc.reply(d, m, a).unwrap()
    });
    let Some(TransferState::Download(state)) = net.client.transfer_state(down) else {
        panic!()
    };
    let (first, _) = downloaded(&net.events, down);
    assert_eq!(first, file[..3 * 16 * KIB as usize]);
    assert!(net.client.finish_transfer(net.now, down));
    fdc.served.clear();
    let now = net.now;
    let again = net
        .client
        .resume_download(now, download_cfg(16 * KIB, 1), &loc, &state)
        .unwrap();
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap());
    let (rest, done) = downloaded(&net.events, again);
    assert!(done);
    assert_eq!(rest[3 * 16 * KIB as usize..], file[3 * 16 * KIB as usize..]);
    // The DC still answers the query the released transfer had in flight (part 3): that answer is dropped.
    let mut offsets: Vec<i64> = fdc.served.iter().map(|s| s.1).collect();
    offsets.dedup();
    let old = net
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Downloaded { transfer, .. } if *transfer == down))
        .count();
    assert_eq!(old, 3, "nothing for the released transfer");
    assert_eq!(
        offsets,
        [3, 4, 5].map(|p| i64::from(p * 16 * KIB)),
        "only the missing parts"
    );

    // Upload: two of four parts saved, then resumed.
    let ufile = pattern(4 * 32 * KIB as usize, 1);
    let now = net.now;
    let up = net
        .client
        .upload(now, upload_cfg(32 * KIB), 99, ufile.len() as u64)
        .unwrap();
    net.upload_src = Some((up, ufile.clone()));
    let mut budget = 2;
    net.run(&mut |d, m, a| {
        if m == functions::UploadSaveFilePart::ID && budget == 0 {
            return Reply::Hold;
        }
        budget -= 1;
        fdc.reply(d, m, a).unwrap()
    });
    let Some(TransferState::Upload(ustate)) = net.client.transfer_state(up) else {
        panic!()
    };
    assert_eq!(fdc.parts.len(), 2);
    assert!(net.client.finish_transfer(net.now, up));
    let now = net.now;
    let up2 = net.client.resume_upload(now, upload_cfg(32 * KIB), &ustate).unwrap();
    net.upload_src = Some((up2, ufile.clone()));
    let before = net.received.len();
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap());
    assert!(net.events.contains(&ClientEvent::TransferDone { transfer: up2 }));
    assert_eq!(fdc.uploaded(), ufile);
    assert_eq!(net.received.len() - before, 2, "only the two parts not saved");

    // Bounds: ended transfers hold their places until released.
    let now = net.now;
    assert_eq!(net.client.transfers(), 2);
    assert!(net.client.finish_transfer(now, again));
    assert!(net.client.finish_transfer(now, up2));
    let ids: Vec<TransferId> = (0..4)
        .map(|_| net.client.download(now, download_cfg(16 * KIB, 1), &loc, None).unwrap())
        .collect();
    assert_eq!(
        net.client.download(now, download_cfg(16 * KIB, 1), &loc, None),
        Err(TransferError::Full)
    );
    assert!(net.client.finish_transfer(now, ids[0]));
    assert_eq!(
        net.client.open_requests(),
        3,
        "the released transfer's request forgotten"
    );
}

/// A download redirected to CDN DC 201: the machine asks the home DC for `help.getCdnConfig`, opens a connection to
/// the CDN that makes its own key with the CDN's RSA key (never saved in the record), fetches parts there,
/// decrypted and checked against the master DC's hashes. The CDN tampers with one part: it is refused, never handed
/// over (`CdnRefused`), and the rest comes from the master DC; the file arrives whole and right.
#[test]
fn a_cdn_download_refuses_a_tampered_part_and_finishes_from_the_master() {
    let mut net = Net::new(&[1], true);
    let file = pattern(3 * 128 * KIB as usize + 1000, 11);
    let mut fdc = FileDc::new(1);
    fdc.files.insert(5, file.clone());
    fdc.cdn = true;
    fdc.tamper = vec![i64::from(128 * KIB)];
    let mut cfg = download_cfg(128 * KIB, 1);
    cfg.cdn = true;
    let now = net.now;
    let down = net
        .client
        .download(now, cfg, &doc_location(5, b"ref1"), Some(file.len() as u64))
        .unwrap();
    net.run(&mut |d, m, a| fdc.reply(d, m, a).unwrap());
    let (bytes, done) = downloaded(&net.events, down);
    assert!(done, "{:?}", net.events);
    assert!(bytes == file, "whole and right");
    assert!(
        net.events.contains(&ClientEvent::CdnRefused {
            transfer: down,
            offset: u64::from(128 * KIB)
        }),
        "{:?}",
        net.events
    );
    // Part 0 from the CDN, part 1 refused there, parts 1.. from the master.
    assert_eq!(fdc.cdn_served, [(dc(CDN), 0), (dc(CDN), i64::from(128 * KIB))]);
    assert!(fdc.served.iter().any(|s| s.1 == i64::from(128 * KIB)));
    assert!(!fdc.served.iter().any(|s| s.1 == 0), "part 0 came from the CDN");
    assert_eq!(net.client.stats().handshakes, 1, "the CDN's key exchange");
    assert!(net.client.record().key(dc(CDN)).is_none(), "a CDN key is never kept");
    assert!(!net.saved.iter().any(|c| matches!(c, Change::Key(d) if *d == dc(CDN))));
    assert!(net.opened.iter().any(|o| o.1 == dc(CDN)));
}
