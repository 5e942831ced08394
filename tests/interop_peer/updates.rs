//! The update-stream interop run shared by `tests/interop_telethon.rs` and `tests/interop_kurigram.rs`: a peer's
//! script (`examples/interop/<peer>_updates.py`) signs in to a one-DC test_dc cluster and goes offline; bot 111 of
//! ours sends that account more messages than one `updates.differenceSlice` holds; the peer reconnects and reports
//! what its catch-up delivered; our `UpdateSync`, signed in to the same account from the same starting state,
//! catches up from test_dc too, and the two lists (message id, sender, text, in order) and the final pts must agree
//! with each other and with test_dc's history.

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

/// Messages sent while the peer is away.
const MESSAGES: usize = 10;
/// test_dc's `differenceSlice` size for the run (so the catch-up takes several slices).
const SLICE: usize = 4;

fn enc<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    encode(v, &mut out).unwrap();
    out
}

fn send(c: &mut TgClient<MemoryStore>, to: i64, text: &str, random_id: i64) {
    let user = types::InputPeerUser {
        user_id: to,
        access_hash: 0,
    };
    let body = enc(&functions::MessagesSendMessage::new(
        Obj::new(&user),
        text.as_bytes(),
        random_id,
    ));
    c.invoke(Target::Home, &body).unwrap().unwrap();
}

/// Runs our `UpdateSync` on `client` until it is synced and quiet; the (id, sender, text) of every message it
/// delivered.
fn settle(client: &mut TgClient<MemoryStore>, sync: &mut UpdateSync, out: &mut Messages) {
    let mut sink = |d: Delivered<'_>| {
        let m = match d.item {
            Item::Message { message, .. } => Some(message),
            Item::Update(enums::Update::UpdateNewMessage(u)) => u.message.get(),
            _ => None,
        };
        if let Some(enums::Message::Message(m)) = m {
            let from = match m.from_id.and_then(|f| f.get()) {
                Some(enums::Peer::PeerUser(p)) => p.user_id,
                _ => 0,
            };
            out.push((m.id, from, String::from_utf8_lossy(m.message).into_owned()));
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

/// The `ID`, `MSG` and `STATE` lines of a script's output.
fn parse_lines(stdout: &str) -> (Option<i64>, Messages, Option<(i32, i32)>) {
    let mut id = None;
    let mut msgs = Vec::new();
    let mut state = None;
    for l in stdout.lines() {
        let mut f = l.splitn(4, ' ');
        match f.next() {
            Some("ID") => id = f.next().and_then(|v| v.parse().ok()),
            Some("MSG") => {
                let mid = f.next().unwrap().parse().unwrap();
                let from = f.next().unwrap().parse().unwrap();
                msgs.push((mid, from, f.next().unwrap_or("").to_owned()));
            }
            Some("STATE") => {
                let pts = f.next().and_then(|v| v.parse().ok());
                let seq = f.next().and_then(|v| v.parse().ok());
                state = pts.zip(seq);
            }
            _ => {}
        }
    }
    (id, msgs, state)
}

/// The run: see the module docs. `script` takes (port, modulus hex, exponent, phase, path); `phone` and `code` are
/// the account the script signs in to.
pub fn run(key_pem: &str, script: &str, phone: &str, code: &str, path: &std::path::Path) {
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
    let user = parse_lines(&login).0.expect("the script printed its user id");

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
    settle(&mut ours, &mut sync, &mut ours_got);
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
    }

    let (catchup, _log2) = py("catchup");
    let (_, theirs, their_state) = parse_lines(&catchup);

    let mut ours = TgClient::start(cfg, store).unwrap();
    let mut sync = UpdateSync::restore(now(), false, &saved).unwrap();
    settle(&mut ours, &mut sync, &mut ours_got);

    let history: Vec<(i32, i64, String)> = dc
        .with_updates(|u| u.history(user))
        .into_iter()
        .map(|(_, m)| (m.id, m.from, String::from_utf8_lossy(&m.text).into_owned()))
        .collect();
    assert_eq!(history.len(), MESSAGES);
    assert_eq!(ours_got, history, "our UpdateSync against test_dc's history");
    assert_eq!(theirs, ours_got, "the peer's catch-up against ours");
    let (pts, _seq) = dc.with_updates(|u| u.state(user)).unwrap();
    assert_eq!(sync.state().map(|s| s.0), Some(pts));
    assert_eq!(their_state.map(|s| s.0), Some(pts), "the peer's final pts");
}
