//! A bot that answers every private message with the same text, against a test DC in this process.
//!
//! ```text
//! cargo run --profile test --features std,api --example echo_bot -- [MESSAGES]      # default 3
//! ```
//!
//! Everything client-side is the crate: [`Client`] (`client::machine`: a connection per DC, the router, the flood
//! scheduler, the record, `initConnection`) under a blocking host of about a hundred lines ([`Host`]: TCP sockets,
//! the clock, the store, one loop), a sign-in flow (`client::signin`) and an update machine per client
//! (`client::updates`: messages delivered once and in order, a difference fetched after a gap). Only the DC comes
//! from test_dc:
//! - the bot signs in with a bot token, reads its updates and sends each incoming private message back to its
//!   sender with `messages.sendMessage`;
//! - a user signs up with a phone number (test DCs' convention: `99966XYYYY` lives on DC X, its code is X five
//!   times) and writes to the bot, then reads the echoes from its own updates.
//!
//! Requests and answers are the generated API types (`tl::api`): no TL by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod echo_common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use echo_common::{API_HASH, Answer, BOT_ID, PHONE, collect, ms};
use mtproto_sansio::client::machine::{CallKind, Client, ClientEvent, ConnId, HostAction};
use mtproto_sansio::client::router::Target;
use mtproto_sansio::client::signin::{Progress, SignIn, SignInConfig, Stage};
use mtproto_sansio::client::store::{MemoryStore, Store, User};
use mtproto_sansio::client::updates::{Delivered, UpdateSync};
use mtproto_sansio::client::{DcId, RequestId};
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::time::Instant;
use mtproto_sansio::tl::api::{Obj, functions, types};
use mtproto_sansio::tl::{self, TlWrite};

/// The host: sockets, clock, store and the loop around the machine.
struct Host {
    machine: Box<Client>,
    store: MemoryStore,
    socks: HashMap<ConnId, TcpStream>,
    t0: std::time::Instant,
    answers: HashMap<RequestId, Answer>,
    updates: Vec<Vec<u8>>,
    buf: Vec<u8>,
}

impl Host {
    fn new(rsa: &'static [RsaPublicKey], dc1: SocketAddr, t0: std::time::Instant) -> Host {
        let (machine, store) = echo_common::new_client(rsa, dc1, t0);
        let buf = vec![0u8; 70_000];
        Host {
            machine: Box::new(machine),
            store,
            socks: HashMap::new(),
            t0,
            answers: HashMap::new(),
            updates: Vec::new(),
            buf,
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.t0.elapsed().as_micros() as u64)
    }

    /// One turn: saves, sockets, events, bytes out, then bytes in (each socket read for up to `wait` in all).
    fn turn(&mut self, wait: Duration) {
        let mut rng = rand::rng();
        while let Some(change) = self.machine.poll_save() {
            self.store.save(self.machine.record(), change).unwrap();
            self.machine.saved(self.now(), change);
        }
        while let Some(a) = self.machine.poll_action() {
            match a {
                HostAction::Open { conn, option } => match TcpStream::connect((option.addr, option.port)) {
                    Ok(s) => {
                        s.set_nodelay(true).unwrap();
                        self.socks.insert(conn, s);
                        self.machine.connected(self.now(), conn, &mut rng);
                    }
                    Err(_) => self.machine.connect_failed(self.now(), conn),
                },
                HostAction::Close { conn } => drop(self.socks.remove(&conn)),
            }
        }
        while let Some((conn, n)) = self.machine.poll_transmit(self.now(), &mut rng, &mut self.buf).unwrap() {
            if self
                .socks
                .get_mut(&conn)
                .is_some_and(|s| s.write_all(&self.buf[..n]).is_err())
            {
                self.socks.remove(&conn);
                self.machine.disconnected(self.now(), conn);
            }
        }
        self.events();
        let due = self
            .machine
            .poll_timeout()
            .map(|t| t.saturating_duration_since(self.now()));
        let slice = due.unwrap_or(wait).min(wait) / self.socks.len().max(1) as u32;
        for conn in self.socks.keys().copied().collect::<Vec<_>>() {
            let s = &mut self.socks.get_mut(&conn).unwrap();
            s.set_read_timeout(Some(slice.max(Duration::from_millis(1)))).unwrap();
            let mut input = vec![0u8; 65_536];
            match s.read(&mut input) {
                Ok(n) if n > 0 => {
                    let mut off = 0;
                    while off < n {
                        off += self.machine.handle_input(self.now(), conn, &input[off..n]);
                        self.events();
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                _ => {
                    self.socks.remove(&conn);
                    self.machine.disconnected(self.now(), conn);
                }
            }
        }
        if self.machine.poll_timeout().is_some_and(|t| t <= self.now()) {
            self.machine.handle_timeout(self.now());
        }
        self.events();
    }

    fn events(&mut self) {
        while let Some(ev) = self.machine.poll_event() {
            match ev {
                ClientEvent::Answer { id, result } => {
                    let a = result.map_err(|e| (e.code, String::from_utf8_lossy(&e.message).into_owned()));
                    self.answers.insert(id, a);
                }
                ClientEvent::Failed { id, error } => panic!("request {id:?} failed: {error:?}"),
                ClientEvent::Update { body, .. } => self.updates.push(body),
                _ => {}
            }
        }
    }

    /// Sends `body` and turns the loop until it is answered.
    fn call(&mut self, body: &[u8], kind: CallKind) -> Answer {
        let id = self.machine.invoke(self.now(), Target::Home, body, kind).unwrap();
        loop {
            if let Some(a) = self.answers.remove(&id) {
                return a;
            }
            self.turn(Duration::from_millis(50));
        }
    }

    /// Drives a sign-in flow to the end; `code` answers a login code prompt (and signs up as "Ada").
    fn sign_in(&mut self, mut flow: SignIn<'_>, code: &[u8]) -> User {
        let mut buf = [0u8; 1024];
        loop {
            match flow.stage() {
                Stage::SignedIn { user_id, bot } => return User { id: user_id, bot },
                Stage::WaitMigration { dc } => {
                    self.machine.move_home(self.now(), DcId::new(i64::from(dc)).unwrap());
                    flow.migrated(self.now(), dc).unwrap();
                }
                Stage::Failed(e) => panic!("sign-in failed: {e:?}"),
                _ => {}
            }
            let Some(req) = flow.poll_request(self.now(), &mut buf).unwrap() else {
                self.turn(Duration::from_millis(20));
                continue;
            };
            let answer = self.call(&buf[..req.len], CallKind::Raw);
            let p = match &answer {
                Ok(b) => flow.handle_result(self.now(), req.tag, b).unwrap(),
                Err((c, m)) => flow.handle_rpc_error(self.now(), req.tag, *c, m.as_bytes()).unwrap(),
            };
            match p {
                Progress::CodeSent(_) => flow.submit_code(self.now(), code).unwrap(),
                Progress::SignUpRequired(_) => flow.sign_up(self.now(), b"Ada", b"").unwrap(),
                Progress::SignedIn(a) => {
                    let u = User {
                        id: a.user_id,
                        bot: a.bot,
                    };
                    self.machine.signed_in(self.now(), u).unwrap();
                }
                _ => {}
            }
        }
    }
}

/// One client and its update machine; `inbox` holds the private messages it received: (sender, text).
struct Side {
    host: Host,
    sync: UpdateSync,
    inbox: Vec<(i64, String)>,
}

impl Side {
    fn new(host: Host, bot: bool) -> Self {
        let now = host.now();
        Side {
            host,
            sync: UpdateSync::new(now, bot),
            inbox: Vec::new(),
        }
    }

    /// One turn of the bot's loop: pushed updates in, the update machine's requests out, messages collected.
    fn pump(&mut self) {
        self.host.turn(Duration::from_millis(20));
        let inbox = &mut self.inbox;
        let mut sink = |d: Delivered<'_>| collect(d, inbox);
        let now = self.host.now();
        for push in std::mem::take(&mut self.host.updates) {
            self.sync.handle_updates(now, &push, &mut sink).unwrap();
        }
        self.sync.handle_timeout(now);
        let mut buf = [0u8; 1024];
        while let Some(req) = self.sync.poll_request(self.host.now(), &mut buf).unwrap() {
            match self.host.call(&buf[..req.len], CallKind::Api) {
                Ok(a) => self
                    .sync
                    .handle_result(self.host.now(), req.tag, &a, &mut sink)
                    .unwrap(),
                Err((c, m)) => self
                    .sync
                    .handle_rpc_error(self.host.now(), req.tag, c, m.as_bytes())
                    .unwrap(),
            }
        }
    }

    /// Pumps until the machine knows its state (its first `updates.getState` answered).
    fn sync(&mut self) {
        while !self.sync.is_synced() {
            self.pump();
        }
    }

    /// `messages.sendMessage` of `text` to user `to`.
    fn send(&mut self, to: i64, text: &str, random_id: i64) {
        let peer = types::InputPeerUser {
            user_id: to,
            access_hash: 0,
        };
        let call = functions::MessagesSendMessage {
            no_webpage: true,
            ..functions::MessagesSendMessage::new(Obj::new(&peer), text.as_bytes(), random_id)
        };
        let mut body = vec![0u8; call.tl_len()];
        tl::encode(&call, &mut body).unwrap();
        // The answer (`updateShortSentMessage`) carries the sender's own pts: our own messages come back as updates
        // too, and the machine keeps the sequence whole either way.
        let answer = self.host.call(&body, CallKind::Api).unwrap();
        let inbox = &mut self.inbox;
        self.sync
            .handle_updates(self.host.now(), &answer, &mut |d| collect(d, inbox))
            .unwrap();
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let t0 = std::time::Instant::now();
    // The DC side: one test DC on an ephemeral loopback port, new phone numbers sign up.
    let (_cluster, keys, addr) = echo_common::start_test_dc();
    let signin = || SignInConfig::new(1, API_HASH);

    // The bot: a token signs it in.
    let mut bot = Host::new(keys, addr, t0);
    let token = format!("{BOT_ID}:AAE-echo-bot-secret");
    bot.sign_in(SignIn::bot(signin(), token.as_bytes()).unwrap(), b"");
    let mut bot = Side::new(bot, true);
    bot.sync();
    println!("[{:>5.1} ms] bot {BOT_ID} signed in", ms(t0));

    // The user: a phone number, its code, a name to sign up with.
    let mut user = Host::new(keys, addr, t0);
    user.sign_in(
        SignIn::phone(signin(), PHONE.as_bytes()).unwrap(),
        PHONE[5..6].repeat(5).as_bytes(),
    );
    let mut user = Side::new(user, false);
    user.sync();
    println!("[{:>5.1} ms] user {PHONE} signed up", ms(t0));

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut echoed = 0;
    for i in 0..n {
        let text = format!("hello #{i}");
        user.send(BOT_ID, &text, 1 + i as i64);
        println!("[{:>5.1} ms] user → bot: {text}", ms(t0));
        // The bot's loop: every incoming private message goes back to its sender.
        while user.inbox.len() <= i {
            assert!(std::time::Instant::now() < deadline, "no echo for {text:?}");
            bot.pump();
            for (from, text) in std::mem::take(&mut bot.inbox) {
                echoed += 1;
                bot.send(from, &text, 1_000 + echoed);
            }
            user.pump();
        }
        let (from, echo) = &user.inbox[i];
        assert_eq!((*from, echo.as_str()), (BOT_ID, text.as_str()));
        println!("[{:>5.1} ms] bot → user: {echo}", ms(t0));
    }
    let (b, u) = (bot.host.machine.stats(), user.host.machine.stats());
    println!(
        "{n} messages echoed; bot: {} queries, {} handshakes; user: {} queries, {} handshakes",
        b.queries, b.handshakes, u.queries, u.handshakes
    );
}
