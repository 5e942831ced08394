//! A bot that answers every private message with the same text, against a test DC in this process.
//!
//! ```text
//! cargo run --release --example echo_bot -- [MESSAGES]      # default 3
//! ```
//!
//! Two clients of the same kind (`test-dc/src/tg_client.rs`: a `Connection` per DC, the `Router`, the
//! `FloodScheduler`, a `Store`) each run an `UpdateSync` (`client::updates`) that turns pushed updates into
//! messages delivered once and in order, fetching a difference when a push shows a gap:
//! - the bot signs in with a bot token (`auth.importBotAuthorization`), reads its updates and sends each incoming
//!   private message back to its sender with `messages.sendMessage`;
//! - a user signs up with a phone number (test DCs' convention: `99966XYYYY` lives on DC X, its code is X five
//!   times) and writes to the bot, then reads the echoes from its own updates.
//!
//! The host loop is [`Side::pump`]: the updates pushed since the last call go to the machine, the requests the
//! machine asks for go out (a difference after a gap, `updates.getState` at the start), and the messages it delivers
//! are collected; everything else is the client's. Requests and answers are the generated API types (`tl::api`):
//! no TL by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use mtproto_sansio::client::DcId;
use mtproto_sansio::client::router::Target;
use mtproto_sansio::client::signin::{SignIn, SignInConfig};
use mtproto_sansio::client::store::MemoryStore;
use mtproto_sansio::client::updates::{Delivered, Item, UpdateSync};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::tl::api::{Obj, enums, functions, types};
use mtproto_sansio::tl::{self, TlWrite};
use mtproto_test_dc::client::now;
use mtproto_test_dc::dc::{self, ClusterOptions, DcOptions};
use mtproto_test_dc::tg_client::{Prompt, Reply, TgClient, TgConfig};

const KEY_PKCS1: &str = include_str!("../tests/data/keys/dc_test_pkcs1.pem");
/// Test DCs accept any api_id/api_hash; a real deployment uses its own from my.telegram.org.
const API_HASH: &[u8] = b"0123456789abcdef0123456789abcdef";
const BOT_ID: i64 = 4242;
const PHONE: &str = "9996611234";

/// One client and its update machine; `inbox` holds the private messages it received: (sender, text).
struct Side {
    client: TgClient<MemoryStore>,
    sync: UpdateSync,
    inbox: Vec<(i64, String)>,
}

impl Side {
    fn new(client: TgClient<MemoryStore>, bot: bool) -> Self {
        Side {
            client,
            sync: UpdateSync::new(now(), bot),
            inbox: Vec::new(),
        }
    }

    /// One turn of the host loop: pushed updates in, the machine's requests out, delivered messages collected.
    fn pump(&mut self) {
        let inbox = &mut self.inbox;
        let mut sink = |d: Delivered<'_>| collect(d, inbox);
        for push in self.client.pump_updates(Duration::from_millis(20)).unwrap() {
            self.sync.handle_updates(now(), &push, &mut sink).unwrap();
        }
        self.sync.handle_timeout(now());
        let mut buf = [0u8; 1024];
        while let Some(req) = self.sync.poll_request(now(), &mut buf).unwrap() {
            match self.client.invoke(Target::Home, &buf[..req.len]).unwrap() {
                Ok(answer) => self.sync.handle_result(now(), req.tag, &answer, &mut sink).unwrap(),
                Err((code, msg)) => self
                    .sync
                    .handle_rpc_error(now(), req.tag, code, msg.as_bytes())
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
        let answer = self.client.invoke(Target::Home, &body).unwrap().unwrap();
        let inbox = &mut self.inbox;
        self.sync
            .handle_updates(now(), &answer, &mut |d| collect(d, inbox))
            .unwrap();
    }
}

/// Keeps the incoming private messages of what the machine delivered: a short message, a new message pushed
/// with its sender, or one a difference brought.
fn collect(d: Delivered<'_>, inbox: &mut Vec<(i64, String)>) {
    let message = match d.item {
        Item::Short(enums::Updates::UpdateShortMessage(m)) if !m.out => {
            inbox.push((m.user_id, String::from_utf8_lossy(m.message).into_owned()));
            return;
        }
        Item::Update(enums::Update::UpdateNewMessage(m)) => m.message.get(),
        Item::Message { channel: None, message } => Some(message),
        _ => return,
    };
    if let Some(enums::Message::Message(m)) = message
        && !m.out
        && let Some(enums::Peer::PeerUser(from)) = m.peer_id.get()
    {
        inbox.push((from.user_id, String::from_utf8_lossy(m.message).into_owned()));
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let t0 = Instant::now();
    // The DC side: one test DC on an ephemeral loopback port, new phone numbers sign up.
    let rsa = parse_private_pem(KEY_PKCS1.as_bytes()).unwrap();
    let cluster = dc::start_cluster(ClusterOptions {
        dcs: vec![DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: parse_private_pem(KEY_PKCS1.as_bytes()).unwrap(),
            secret: None,
            faketls: None,
            dc_id: None,
            max_conns: 64,
            keys_file: None,
            verbose: false,
        }],
        auto_register: true,
        passwords: Vec::new(),
    })
    .unwrap();
    let cfg = TgConfig::new(
        vec![*rsa.public_key()],
        vec![(DcId::new(1).unwrap(), cluster.dc(1).unwrap().addr)],
    );
    let signin = || SignInConfig::new(1, API_HASH);

    // The bot: a token signs it in.
    let mut bot = TgClient::start(cfg.clone(), MemoryStore::new()).unwrap();
    let token = format!("{BOT_ID}:AAE-echo-bot-secret");
    bot.sign_in(SignIn::bot(signin(), token.as_bytes()).unwrap(), &mut |p| {
        panic!("a bot is not asked {p:?}")
    })
    .unwrap();
    let mut bot = Side::new(bot, true);
    bot.sync();
    println!("[{:>5.1} ms] bot {BOT_ID} signed in", ms(t0));

    // The user: a phone number, its code, a name to sign up with.
    let mut user = TgClient::start(cfg, MemoryStore::new()).unwrap();
    user.sign_in(SignIn::phone(signin(), PHONE.as_bytes()).unwrap(), &mut |p| match p {
        Prompt::Code => Reply::Code(PHONE[5..6].repeat(5).into_bytes()),
        Prompt::SignUp => Reply::SignUp(b"Ada".to_vec(), Vec::new()),
        other => panic!("not asked in this flow: {other:?}"),
    })
    .unwrap();
    let mut user = Side::new(user, false);
    user.sync();
    println!("[{:>5.1} ms] user {PHONE} signed up", ms(t0));

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut echoed = 0;
    for i in 0..n {
        let text = format!("hello #{i}");
        user.send(BOT_ID, &text, 1 + i as i64);
        println!("[{:>5.1} ms] user → bot: {text}", ms(t0));
        // The bot's loop: every incoming private message goes back to its sender.
        while user.inbox.len() <= i {
            assert!(Instant::now() < deadline, "no echo for {text:?}");
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
    println!(
        "{n} messages echoed; bot: {} queries, {} handshakes; user: {} queries, {} handshakes",
        bot.client.stats.queries, bot.client.stats.handshakes, user.client.stats.queries, user.client.stats.handshakes
    );
}

fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}
