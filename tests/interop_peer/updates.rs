//! The update-stream interop run shared by `tests/interop_telethon.rs` and `tests/interop_kurigram.rs`: a peer's
//! script (`examples/interop/<peer>_updates.py`) signs in to a one-DC test_dc cluster and goes offline; bot 111 of
//! ours sends that account more messages than one `updates.differenceSlice` holds; the peer reconnects and reports
//! what its catch-up delivered; our `UpdateSync`, signed in to the same account from the same starting state,
//! catches up from test_dc too, and the two lists (message id, sender, text, in order) and the final pts must agree
//! with each other and with test_dc's history.
//!
//! With `channel` (Telethon and kurigram), the peer's login also writes one message to test_dc's megagroup, so that
//! it tracks the channel's pts, and bot 111 writes [`CHANNEL_MESSAGES`] there while the peer is away: test_dc's difference then
//! carries `updateChannelTooLong` (the channel moved while none of the account's connections was live), on which
//! each client fetches `updates.getChannelDifference` from the pts it kept. The channel messages delivered and the
//! channel's final pts must agree too. The hint is the account's until it fetches the channel, so it is put back
//! (with the same pts) before our client catches up after the peer.

use std::process::Command;
use std::time::Duration;

use mtproto_sansio::client::DcId;
use mtproto_sansio::client::router::Target;
use mtproto_sansio::client::signin::{SignIn, SignInConfig};
use mtproto_sansio::client::store::MemoryStore;
use mtproto_sansio::client::updates::{Delivered, Item, UpdateSync};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::tl::api::{Obj, enums, functions, types};
use mtproto_sansio::tl::{TlWrite, encode};
use mtproto_test_dc::client::now;
use mtproto_test_dc::dc::{self, ClusterOptions, DcOptions};
use mtproto_test_dc::tg_client::{Prompt, Reply, TgClient, TgConfig};
use mtproto_test_dc::updates::{CHANNEL_ACCESS_HASH, CHANNEL_ID};

/// Messages sent while the peer is away.
const MESSAGES: usize = 10;
/// Megagroup messages sent while the peer is away (with `channel`).
const CHANNEL_MESSAGES: usize = 7;
/// test_dc's `differenceSlice` size for the run (so the catch-up takes several slices).
const SLICE: usize = 4;

fn enc<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    encode(v, &mut out).unwrap();
    out
}

/// `messages.sendMessage` to user `to`, or to the megagroup for [`CHANNEL_ID`].
fn send(c: &mut TgClient<MemoryStore>, to: i64, text: &str, random_id: i64) {
    let user = types::InputPeerUser {
        user_id: to,
        access_hash: 0,
    };
    let channel = types::InputPeerChannel {
        channel_id: CHANNEL_ID,
        access_hash: CHANNEL_ACCESS_HASH,
    };
    let peer: Obj<'_, enums::InputPeer<'_>> = if to == CHANNEL_ID {
        Obj::new(&channel)
    } else {
        Obj::new(&user)
    };
    let body = enc(&functions::MessagesSendMessage::new(peer, text.as_bytes(), random_id));
    c.invoke(Target::Home, &body).unwrap().unwrap();
}

/// Runs our `UpdateSync` on `client` until it is synced and quiet; the (id, sender, text) of every private message
/// it delivered go to `out`, of every megagroup message to `chan`.
fn settle(client: &mut TgClient<MemoryStore>, sync: &mut UpdateSync, out: &mut Messages, chan: &mut Messages) {
    let mut sink = |d: Delivered<'_>| {
        let (in_channel, m) = match d.item {
            Item::Message { channel, message } => (channel.is_some(), Some(message)),
            Item::Update(enums::Update::UpdateNewMessage(u)) => (false, u.message.get()),
            Item::Update(enums::Update::UpdateNewChannelMessage(u)) => (true, u.message.get()),
            _ => (false, None),
        };
        if let Some(enums::Message::Message(m)) = m {
            let from = match m.from_id.and_then(|f| f.get()) {
                Some(enums::Peer::PeerUser(p)) => p.user_id,
                _ => 0,
            };
            let list = if in_channel { &mut *chan } else { &mut *out };
            list.push((m.id, from, String::from_utf8_lossy(m.message).into_owned()));
        }
        if let Item::Short(enums::Updates::UpdateShortMessage(m)) = d.item {
            out.push((m.id, m.user_id, String::from_utf8_lossy(m.message).into_owned()));
        }
    };
    let mut buf = vec![0u8; 1024];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut quiet = 0;
    while quiet < 5 {
        assert!(std::time::Instant::now() < deadline, "our client did not settle");
        quiet += 1;
        for p in client.pump_updates(Duration::from_millis(20)).unwrap() {
            sync.handle_updates(now(), &p, &mut sink).unwrap();
            quiet = 0;
        }
        sync.handle_timeout(now());
        while let Some(req) = sync.poll_request(now(), &mut buf).unwrap() {
            quiet = 0;
            match client.invoke(Target::Home, &buf[..req.len]).unwrap() {
                Ok(b) => sync.handle_result(now(), req.tag, &b, &mut sink).unwrap(),
                Err((code, msg)) => sync.handle_rpc_error(now(), req.tag, code, msg.as_bytes()).unwrap(),
            }
        }
        if !sync.is_synced() {
            quiet = 0;
        }
    }
}

/// (message id, sender, text) of each message delivered, in order.
type Messages = Vec<(i32, i64, String)>;

/// What a script printed.
#[derive(Default)]
struct Report {
    /// `ID`: the account.
    id: Option<i64>,
    /// `MSG`: private messages delivered, in order.
    msgs: Messages,
    /// `CMSG`: megagroup messages delivered, in order.
    channel_msgs: Messages,
    /// `STATE`: pts and seq.
    state: Option<(i32, i32)>,
    /// `CSTATE`: the megagroup's pts.
    channel_pts: Option<i32>,
}

/// The `ID`, `MSG`, `CMSG`, `STATE` and `CSTATE` lines of a script's output.
fn parse_lines(stdout: &str) -> Report {
    let mut r = Report::default();
    for l in stdout.lines() {
        let mut f = l.splitn(4, ' ');
        match f.next() {
            Some("ID") => r.id = f.next().and_then(|v| v.parse().ok()),
            Some(kind @ ("MSG" | "CMSG")) => {
                let mid = f.next().unwrap().parse().unwrap();
                let from = f.next().unwrap().parse().unwrap();
                let m = (mid, from, f.next().unwrap_or("").to_owned());
                if kind == "MSG" {
                    r.msgs.push(m);
                } else {
                    r.channel_msgs.push(m);
                }
            }
            Some("STATE") => {
                let pts = f.next().and_then(|v| v.parse().ok());
                let seq = f.next().and_then(|v| v.parse().ok());
                r.state = pts.zip(seq);
            }
            Some("CSTATE") => r.channel_pts = f.next().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    r
}

/// The run: see the module docs. `script` takes (port, modulus hex, exponent, phase, path); `phone` and `code` are
/// the account the script signs in to; `channel`: the script's login writes to the megagroup and its catch-up
/// reports the megagroup too.
pub fn run(key_pem: &str, script: &str, phone: &str, code: &str, path: &std::path::Path, channel: bool) {
    let key = parse_private_pem(key_pem.as_bytes()).unwrap();
    let n_hex = hex::encode(key.public_key().n_bytes());
    let public = *key.public_key();
    let c = dc::start_cluster(ClusterOptions {
        dcs: vec![DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: key,
            secret: None,
            faketls: None,
            dc_id: None,
            max_conns: 256,
            keys_file: None,
            verbose: false,
        }],
        auto_register: true,
        passwords: Vec::new(),
    })
    .unwrap();
    let dc = c.dc(1).unwrap();
    dc.with_updates(|u| u.set_limits(SLICE, 1000));
    let port = dc.addr.port().to_string();
    let path_s = path.to_string_lossy().into_owned();
    let py = |phase: &str| {
        let out = Command::new("python3")
            .args([script, &port, &n_hex, "65537", phase, &path_s])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let log =
            crate::interop_peer::PrintOnPanic(format!("{phase}:\n{stdout}{}", String::from_utf8_lossy(&out.stderr)));
        assert!(out.status.success(), "{phase} failed");
        (stdout, log)
    };
    let (login, _log1) = py("login");
    let user = parse_lines(&login).id.expect("the script printed its user id");
    let channel_at_login = dc.with_updates(|u| u.channel_pts());
    if channel {
        assert_eq!(channel_at_login, 2, "the script's login wrote to the megagroup");
    }

    // Our client signs in to the same account and takes the same starting state, then goes offline.
    let cfg = TgConfig::new(vec![public], vec![(DcId::new(1).unwrap(), dc.addr)]);
    let mut ours = TgClient::start(cfg.clone(), MemoryStore::new()).unwrap();
    let flow = SignIn::phone(
        SignInConfig::new(1, b"0123456789abcdef0123456789abcdef"),
        phone.as_bytes(),
    )
    .unwrap();
    let signed = ours
        .sign_in(flow, &mut |p| match p {
            Prompt::Code => Reply::Code(code.as_bytes().to_vec()),
            Prompt::SignUp => Reply::SignUp(b"Our".to_vec(), Vec::new()),
            other => panic!("asked {other:?}"),
        })
        .unwrap();
    assert_eq!(signed.id, user);
    let mut sync = UpdateSync::new(now(), false);
    let mut ours_got = Vec::new();
    let mut ours_channel = Vec::new();
    if channel {
        // The same starting point as the peer's: the megagroup known at its pts after the login's message.
        sync.track_channel(now(), CHANNEL_ID, Some(CHANNEL_ACCESS_HASH), channel_at_login)
            .unwrap();
    }
    settle(&mut ours, &mut sync, &mut ours_got, &mut ours_channel);
    assert_eq!(sync.channel_pts(CHANNEL_ID), channel.then_some(channel_at_login));
    let mut saved = vec![0u8; sync.saved_len()];
    let n = sync.save(&mut saved).unwrap();
    saved.truncate(n);
    let store = ours.into_store();

    // Bot 111 writes while both are away.
    let mut bot = TgClient::start(cfg.clone(), MemoryStore::new()).unwrap();
    let flow = SignIn::bot(SignInConfig::new(1, b"0123456789abcdef0123456789abcdef"), b"111:secret").unwrap();
    bot.sign_in(flow, &mut |p| panic!("a bot is asked {p:?}")).unwrap();
    for i in 0..MESSAGES {
        send(&mut bot, user, &format!("offline {i}"), i as i64 + 1);
        if channel && i < CHANNEL_MESSAGES {
            send(&mut bot, CHANNEL_ID, &format!("channel {i}"), 1000 + i as i64);
        }
    }
    let hint = dc.with_updates(|u| u.channel_hint(user));
    assert_eq!(
        hint,
        channel.then_some(channel_at_login),
        "test_dc's updateChannelTooLong hint"
    );

    let (catchup, _log2) = py("catchup");
    let theirs = parse_lines(&catchup);

    // The peer's getChannelDifference took the hint; our client was away as long, so it gets the same one.
    if let Some(from) = hint {
        assert_eq!(
            dc.with_updates(|u| u.channel_hint(user)),
            None,
            "the peer fetched the channel"
        );
        dc.with_updates(|u| u.missed_channel(user, from));
    }
    let mut ours = TgClient::start(cfg, store).unwrap();
    let mut sync = UpdateSync::restore(now(), false, &saved).unwrap();
    settle(&mut ours, &mut sync, &mut ours_got, &mut ours_channel);

    let history: Vec<(i32, i64, String)> = dc
        .with_updates(|u| u.history(user))
        .into_iter()
        .map(|(_, m)| (m.id, m.from, String::from_utf8_lossy(&m.text).into_owned()))
        .collect();
    assert_eq!(history.len(), MESSAGES);
    assert_eq!(ours_got, history, "our UpdateSync against test_dc's history");
    assert_eq!(theirs.msgs, ours_got, "the peer's catch-up against ours");
    let (pts, _seq) = dc.with_updates(|u| u.state(user)).unwrap();
    assert_eq!(sync.state().map(|s| s.0), Some(pts));
    assert_eq!(theirs.state.map(|s| s.0), Some(pts), "the peer's final pts");
    if channel {
        let channel_history: Vec<(i32, i64, String)> = dc
            .with_updates(|u| u.channel_history())
            .into_iter()
            .filter(|(p, _)| *p > channel_at_login)
            .map(|(_, m)| (m.id, m.from, String::from_utf8_lossy(&m.text).into_owned()))
            .collect();
        assert_eq!(channel_history.len(), CHANNEL_MESSAGES);
        assert_eq!(
            ours_channel, channel_history,
            "our megagroup catch-up against test_dc's"
        );
        assert_eq!(
            theirs.channel_msgs, ours_channel,
            "the peer's megagroup catch-up against ours"
        );
        let cpts = dc.with_updates(|u| u.channel_pts());
        assert_eq!(sync.channel_pts(CHANNEL_ID), Some(cpts));
        assert_eq!(theirs.channel_pts, Some(cpts), "the peer's final channel pts");
    }
}
