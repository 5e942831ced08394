//! The README's first command: `cargo run --release --example demo`.
//!
//! Starts a test DC on 127.0.0.1 (an ephemeral port), connects a client over TCP (obfuscated padded intermediate),
//! creates an auth key, makes RPCs, and prints what crosses the wire — decrypted by a wiretap that knows the key —
//! so acks, containers, the salt correction and a resend after an injected loss are visible. Then two more clients
//! open a secret chat through the DC, exchange messages across a re-key (crossing requests resolved by the
//! tie-break), compare key visualisations and discard the chat. Ends with the measured figures. Needs nothing but
//! loopback.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::error::Error;
use std::rc::Rc;
use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::{self, Direction};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::handshake::{ClientConfig, KeyKind};
use mtproto_sansio::session::{MsgKind, ResendPolicy, SessionConfig};
use mtproto_sansio::tl::Reader;
use mtproto_sansio::tl::api::functions;
use mtproto_sansio::transport::{Framing, strip_padding};
use mtproto_test_dc::api;
use mtproto_test_dc::client::{self, Conn, Owned, Tap};
use mtproto_test_dc::dc::{self, DcOptions};
use mtproto_test_dc::link::Transport;
use mtproto_test_dc::secret::{Got, Party};

/// The DC's RSA key: the crate's test key, so the demo needs no setup (`test_dc --gen-key` makes new ones).
const DC_KEY_PEM: &str = include_str!("../tests/data/keys/dc_test_pkcs1.pem");
/// The api layer the client claims in `invokeWithLayer`.
const LAYER: i32 = 229;

fn name(ctor: u32) -> &'static str {
    match ctor {
        0xbe7e_8ef1 => "req_pq_multi",
        0x0516_2463 => "resPQ",
        0xd712_e4be => "req_DH_params",
        0xd0e8_075c => "server_DH_params_ok",
        0xf504_5f1f => "set_client_DH_params",
        0x3bcb_f734 => "dh_gen_ok",
        0x73f1_f8dc => "msg_container",
        0x62d6_b459 => "msgs_ack",
        0xf35c_6d01 => "rpc_result",
        0x2144_ca19 => "rpc_error",
        0xedab_447b => "bad_server_salt",
        0xa7ef_f811 => "bad_msg_notification",
        0x9ec2_0908 => "new_session_created",
        0x7abe_77ec => "ping",
        0x347_773c5 => "pong",
        0xf342_7b8c => "ping_delay_disconnect",
        0x3072_cfa1 => "gzip_packed",
        0xb921_bd04 => "get_future_salts",
        0xae50_0895 => "future_salts",
        0xda69_fb52 => "msgs_state_req",
        0x7d86_1a08 => "msg_resend_req",
        0x9972_75b5 => "boolTrue",
        functions::HelpGetPremiumPromo::ID => "help.getPremiumPromo",
        0xcdd4_2a05 => "auth.bindTempAuthKey",
        api::INVOKE_WITH_LAYER => "invokeWithLayer",
        api::INIT_CONNECTION => "initConnection",
        api::GET_DH_CONFIG => "messages.getDhConfig",
        api::DH_CONFIG => "messages.dhConfig",
        api::DH_CONFIG_NOT_MODIFIED => "messages.dhConfigNotModified",
        api::SAVE_FILE_PART => "upload.saveFilePart",
        api::REQUEST_ENCRYPTION => "messages.requestEncryption",
        api::ACCEPT_ENCRYPTION => "messages.acceptEncryption",
        api::DISCARD_ENCRYPTION => "messages.discardEncryption",
        api::SEND_ENCRYPTED => "messages.sendEncrypted",
        api::SEND_ENCRYPTED_SERVICE => "messages.sendEncryptedService",
        api::UPDATE_SHORT => "updateShort",
        api::UPDATES => "updates",
        _ => "?",
    }
}

/// One message body in words: the constructor, what it wraps, and the contents of containers and acks.
fn describe(body: &[u8]) -> String {
    let mut r = Reader::new(body);
    let Ok(ctor) = r.u32() else { return "(empty)".into() };
    match ctor {
        0x73f1_f8dc => {
            let n = r.u32().unwrap_or(0).min(64);
            let mut parts = Vec::new();
            for _ in 0..n {
                let (Ok(_id), Ok(_seq), Ok(len)) = (r.u64(), r.u32(), r.u32()) else {
                    break;
                };
                let Ok(inner) = r.take(len as usize) else { break };
                parts.push(describe(inner));
            }
            format!("msg_container[{}]", parts.join(", "))
        }
        0x62d6_b459 => {
            let n = r.u32().and_then(|_| r.u32()).unwrap_or(0);
            format!("msgs_ack({n} id{})", if n == 1 { "" } else { "s" })
        }
        0xf35c_6d01 => {
            let inner = r.u64().map(|_| r.rest()).unwrap_or_default();
            format!("rpc_result({})", describe(inner))
        }
        0x2144_ca19 => {
            let code = r.i32().unwrap_or(0);
            let msg = r.bytes().map(String::from_utf8_lossy).unwrap_or_default();
            format!("rpc_error {code} {msg}")
        }
        api::INVOKE_WITH_LAYER => {
            let inner = r.i32().map(|_| r.rest()).unwrap_or_default();
            format!("invokeWithLayer({})", describe(inner))
        }
        api::INIT_CONNECTION => match api::unwrap(body) {
            Ok(u) => format!("initConnection({})", call_name(u.call)),
            Err(_) => "initConnection(?)".into(),
        },
        api::SAVE_FILE_PART => match api::unwrap(body) {
            Ok(api::Unwrapped {
                call: api::Call::SaveFilePart { part, bytes, .. },
                ..
            }) => format!("upload.saveFilePart(part {part}, {} B)", bytes.len()),
            _ => "upload.saveFilePart(?)".into(),
        },
        c => name(c).into(),
    }
}

fn call_name(c: api::Call<'_>) -> String {
    match c {
        api::Call::GetDhConfig { .. } => "messages.getDhConfig".into(),
        api::Call::SaveFilePart { .. } => "upload.saveFilePart".into(),
        api::Call::RequestEncryption { .. } => "messages.requestEncryption".into(),
        api::Call::AcceptEncryption { .. } => "messages.acceptEncryption".into(),
        api::Call::DiscardEncryption { .. } => "messages.discardEncryption".into(),
        api::Call::SendEncrypted { service, .. } => if service {
            "messages.sendEncryptedService"
        } else {
            "messages.sendEncrypted"
        }
        .into(),
        api::Call::ReceivedQueue { .. } => "messages.receivedQueue".into(),
        api::Call::Other(id) => name(id).into(),
    }
}

/// The wiretap: prints every packet, decrypting encrypted ones with the key once it exists.
fn wiretap(key: Rc<RefCell<Option<AuthKey>>>) -> Box<dyn FnMut(Tap<'_>)> {
    Box::new(move |t| {
        let (arrow, dir, bytes) = match t {
            Tap::Out(b) => ("→", Direction::ClientToServer, b),
            Tap::Lost(b) => ("✗", Direction::ClientToServer, b),
            Tap::In(b) => ("←", Direction::ServerToClient, b),
        };
        let lost = if matches!(t, Tap::Lost(_)) {
            "   <- dropped by the host (injected loss)"
        } else {
            ""
        };
        let key_id = bytes.first_chunk::<8>().map(|b| u64::from_le_bytes(*b)).unwrap_or(0);
        if key_id == 0 {
            let body = bytes.get(20..).unwrap_or_default();
            let ctor = Reader::new(body).u32().unwrap_or(0);
            println!("  {arrow} {:>5} B  plaintext  {}{lost}", bytes.len(), name(ctor));
            return;
        }
        let Some(k) = key.borrow().clone() else { return };
        let bytes = strip_padding(Framing::PaddedIntermediate, bytes).unwrap_or(bytes);
        let mut copy = bytes.to_vec();
        match packet::decrypt(&k, dir, &mut copy) {
            Ok(v) => println!(
                "  {arrow} {:>5} B  msg {:#018x} seq {:>2}  {}{lost}",
                bytes.len(),
                v.msg_id(),
                v.seq_no(),
                describe(v.body())
            ),
            Err(_) => println!("  {arrow} {:>5} B  (undecryptable){lost}", bytes.len()),
        }
    })
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

/// What the secret-chat part measured.
struct SecretFigures {
    exchange: Duration,
    one_way: Duration,
    rekey: Duration,
    service: usize,
}

fn show(who: &str, got: &[Got]) {
    for g in got {
        match g {
            Got::Text(t) => println!("  {who} reads      {t:?}"),
            Got::Service(a) => println!("  {who} handles    [{a}]"),
            Got::RekeyDone(fp) => println!("  {who} switches to the new key {:#018x}", *fp as u64),
            Got::Discarded => println!("  {who} sees       the chat discarded"),
            Got::File(f) => println!(
                "  {who} gets       with it encryptedFile {:#018x}: {} bytes, key fingerprint {:#010x}",
                f.id as u64, f.size, f.key_fingerprint as u32
            ),
        }
    }
}

/// Lets both parties answer each other until neither receives anything for a short while.
fn settle(a: &mut Party, b: &mut Party, rng: &mut rand::rngs::ThreadRng) -> Result<(), Box<dyn Error>> {
    let quiet = Duration::from_millis(40);
    for _ in 0..50 {
        let ga = a.receive(rng, None, quiet)?;
        show(a.name, &ga);
        let gb = b.receive(rng, None, quiet)?;
        show(b.name, &gb);
        if ga.is_empty() && gb.is_empty() {
            return Ok(());
        }
    }
    Err("the secret chat did not settle".into())
}

fn fp(p: &Party) -> i64 {
    p.chat.as_ref().map_or(0, |c| c.key_fingerprint())
}

/// Says `text` from `from` and waits until `to` has read it; returns the time that took.
fn relay(
    from: &mut Party,
    to: &mut Party,
    text: &str,
    rng: &mut rand::rngs::ThreadRng,
) -> Result<Duration, Box<dyn Error>> {
    println!("  {} writes     {text:?}", from.name);
    let t = std::time::Instant::now();
    from.say(rng, text)?;
    let want = Got::Text(text.to_owned());
    let got = to.receive(rng, Some(&|g: &[Got]| g.contains(&want)), Duration::ZERO)?;
    let took = t.elapsed();
    show(to.name, &got);
    Ok(took)
}

/// Two more users open a secret chat through the DC, talk across a re-key and discard it.
fn secret_chat(
    addr: std::net::SocketAddr,
    public: mtproto_sansio::crypto::rsa::RsaPublicKey,
    rng: &mut rand::rngs::ThreadRng,
) -> Result<SecretFigures, Box<dyn Error>> {
    println!("secret chat: Alice and Bob connect (own auth keys, so own users: the DC's user id is derived from");
    println!("the auth_key_id) and talk end to end; the DC only relays requestEncryption, acceptEncryption,");
    println!("sendEncrypted(Service|File) and pushes updateEncryption / updateNewEncryptedMessage to the other side:");
    let mut a = Party::connect("Alice", addr, public, rng)?;
    let mut b = Party::connect("Bob  ", addr, public, rng)?;
    println!("  Alice is user {}, Bob is user {}", a.user_id, b.user_id);
    let t = std::time::Instant::now();
    let peer = a.request(rng, b.user_id)?;
    println!(
        "  Alice → messages.getDhConfig, messages.requestEncryption(Bob, g_a) → encryptedChatWaiting #{}",
        peer.chat_id
    );
    let (_, admin) = b.accept(rng)?;
    if admin != a.user_id {
        return Err("the request came from someone else".into());
    }
    println!(
        "  Bob   ← updateEncryption(encryptedChatRequested); getDhConfig, acceptEncryption(g_b, {:#018x})",
        fp(&b) as u64
    );
    a.complete(rng)?;
    let exchange = t.elapsed();
    println!(
        "  Alice ← updateEncryption(encryptedChat): g_b, key fingerprint {:#018x} checked",
        fp(&a) as u64
    );
    let first_fp = fp(&a);
    if first_fp != fp(&b) {
        return Err("the two sides derived different keys".into());
    }
    let mut times = vec![relay(&mut a, &mut b, "Hello Bob, this is a secret chat.", rng)?];
    times.push(relay(&mut b, &mut a, "Hi Alice! Only we can read this.", rng)?);
    settle(&mut a, &mut b, rng)?;

    println!("re-key (PFS): both start one at once, so two requestKeys cross; the tie-break keeps one exchange:");
    let t = std::time::Instant::now();
    a.rekey(rng)?;
    b.rekey(rng)?;
    // Timed until both sides use the new key (short idle polls, so waiting adds little), then left to settle.
    let mut rekey = None;
    for _ in 0..500 {
        show(a.name, &a.receive(rng, None, Duration::from_millis(1))?);
        show(b.name, &b.receive(rng, None, Duration::from_millis(1))?);
        if fp(&a) != first_fp && fp(&b) != first_fp {
            rekey = Some(t.elapsed());
            break;
        }
    }
    let rekey = rekey.ok_or("the re-key did not finish")?;
    settle(&mut a, &mut b, rng)?;
    let (fa, fb) = (fp(&a), fp(&b));
    if fa != fb || fa == first_fp {
        return Err(format!("re-key failed: {fa:#x} / {fb:#x} (was {first_fp:#x})").into());
    }
    times.push(relay(
        &mut a,
        &mut b,
        "Still there? This one is under the new key.",
        rng,
    )?);
    times.push(relay(
        &mut b,
        &mut a,
        "Yes, and the key visualisation still matches.",
        rng,
    )?);
    settle(&mut a, &mut b, rng)?;
    let (va, vb) = match (a.chat.as_ref(), b.chat.as_ref()) {
        (Some(x), Some(y)) => (*x.visualisation(), *y.visualisation()),
        _ => return Err("no chat".into()),
    };
    println!("  key fingerprint: Alice {:#018x}, Bob {:#018x}", fa as u64, fb as u64);
    println!("  key visualisation (288 bits), Alice: {}", hex::encode(va));
    println!("                                Bob:   {}", hex::encode(vb));
    if va != vb {
        return Err("the key visualisations differ".into());
    }
    // A file travels apart from the message: parts encrypted under a fresh file key, saved, then announced.
    let (mut enc, key, iv, file_fp) = mtproto_sansio::e2e::file::FileEncryptor::generate(rng);
    let mut parts = [vec![0x5a; 4096], vec![0xa5; 1024]];
    for (i, p) in parts.iter_mut().enumerate() {
        enc.encrypt_part(p).map_err(|_| "file part not block aligned")?;
        if !api::is_bool_true(&a.call(rng, &api::save_file_part(0x600d, i32::try_from(i)?, p))?) {
            return Err("saveFilePart refused".into());
        }
    }
    println!("  Alice → upload.saveFilePart × 2 (encrypted with a fresh file key), sendEncryptedFile");
    let upload = api::InputFile::Uploaded {
        id: 0x600d,
        parts: 2,
        key_fingerprint: file_fp,
    };
    let stored = a.say_with_file(rng, "Here is the file.", upload)?;
    let got = b.receive(rng, Some(&|g: &[Got]| g.contains(&Got::File(stored))), Duration::ZERO)?;
    show(b.name, &got);
    mtproto_sansio::e2e::file::check_fingerprint(&key, &iv, stored.key_fingerprint)
        .map_err(|_| "the file's key fingerprint does not match")?;
    settle(&mut a, &mut b, rng)?;
    let service = a.service_sent + b.service_sent;
    a.discard(rng)?;
    println!("  Alice → messages.discardEncryption → boolTrue");
    let got = b.receive(rng, Some(&|g: &[Got]| g.contains(&Got::Discarded)), Duration::ZERO)?;
    show(b.name, &got);
    match b.call(rng, &api::send_encrypted(peer, 1, &[0; 64], false)) {
        Err(e) if e.to_string().contains("ENCRYPTION_DECLINED") => {
            println!("  Bob's late sendEncrypted → {e}\n");
        }
        other => return Err(format!("a discarded chat still relays: {other:?}").into()),
    }
    times.sort();
    Ok(SecretFigures {
        exchange,
        one_way: times.get(times.len() / 2).copied().unwrap_or_default(),
        rekey,
        service,
    })
}

/// Runs the demo (also called by tests/hosts.rs); any deviation from the expected transcript is an error.
pub fn main() -> Result<(), Box<dyn Error>> {
    let mut rng = rand::rng();
    println!("mtproto-sansio demo: a test DC and a client over loopback TCP\n");

    // 1. The DC, in background threads.
    let rsa = parse_private_pem(DC_KEY_PEM.as_bytes()).map_err(|e| format!("DC key: {e}"))?;
    let public = *rsa.public_key();
    let dc = dc::start(DcOptions {
        listen: "127.0.0.1:0".parse()?,
        rsa_key: rsa,
        secret: None,
        faketls: None,
        dc_id: Some(2),
        max_conns: 16,
        keys_file: None,
        verbose: false,
    })?;
    println!(
        "DC listening on {} (RSA fingerprint {:#018x})",
        dc.addr,
        public.fingerprint()
    );

    // 2. Connect and create an auth key. The wiretap reads the frames beside the session, which it can only on a
    // plain framing (the secret chat below runs over the obfuscated default).
    let transport = Transport::plain(Framing::PaddedIntermediate);
    println!("client connects over {transport} TCP and runs the auth-key handshake:");
    let key_slot = Rc::new(RefCell::new(None));
    // Short resend timer, so the injected loss recovers quickly.
    let cfg = SessionConfig {
        resend: ResendPolicy {
            initial: Duration::from_millis(300),
            max: Duration::from_secs(2),
            max_attempts: 5,
        },
        ping_interval: None,
        ..SessionConfig::DEFAULT
    };
    let t = std::time::Instant::now();
    let mut hconn = Conn::connect(dc.addr, transport, None, &mut rng)?;
    hconn.tap = Some(wiretap(Rc::clone(&key_slot)));
    let keys = [public];
    let (_, outcome) = hconn.handshake(cfg, ClientConfig::new(&keys, 2), &mut rng)?;
    let handshake_time = t.elapsed();
    println!(
        "handshake done in {}: auth key id {:#018x}, first salt {:#018x}, server time offset {} s\n",
        ms(handshake_time),
        outcome.auth_key.id(),
        outcome.server_salt,
        outcome.server_time_offset
    );
    *key_slot.borrow_mut() = Some(outcome.auth_key.clone());
    // 3. The encrypted session, as a client that stored only the key starts it: a new connection, salt 0.
    let mut conn = Conn::connect(dc.addr, transport, None, &mut rng)?;
    conn.tap = hconn.tap.take();
    drop(hconn);
    let mut engine = conn.session(cfg, outcome.auth_key.clone(), 0, outcome.server_time_offset, &mut rng)?;
    let mut note = |ev: Owned| println!("  event: {ev:?}");

    println!("first RPC on a new connection, wrapped as real clients do");
    println!("(invokeWithLayer(initConnection(messages.getDhConfig))), sent with salt 0 as by a client that stored");
    println!("only the key, so the DC corrects the salt and the session resends:");
    let first = api::with_init_connection(LAYER, &api::get_dh_config(0, 32));
    let t = std::time::Instant::now();
    let ev = conn.call(&mut engine, &mut rng, &first, Duration::from_secs(10), &mut note)?;
    let first_rtt = t.elapsed();
    match &ev {
        Owned::Result(_, body) => {
            let cfg = api::parse_dh_config(body).map_err(|e| format!("dhConfig: {e}"))?;
            println!(
                "  result: messages.dhConfig g = {:?}, p = {} bytes, {} random bytes ({})\n",
                cfg.g,
                cfg.p.map_or(0, <[u8]>::len),
                cfg.random.len(),
                ms(first_rtt)
            );
        }
        other => return Err(format!("unexpected answer {other:?}").into()),
    }

    println!("three queries queued at once travel in one container; the unknown method gets an rpc_error:");
    let now = client::now();
    let reqs = [
        engine.send(now, &api::save_file_part(7, 0, &[0x5a; 1024]), MsgKind::Query)?,
        engine.send(now, &api::save_file_part(7, 1, &[0xa5; 1024]), MsgKind::Query)?,
        engine.send(now, &api::encode(&functions::HelpGetPremiumPromo {}), MsgKind::Query)?,
    ];
    let answers = conn.wait_for(&mut engine, &mut rng, &reqs, Duration::from_secs(10), &mut note)?;
    for a in &answers {
        match a {
            Owned::Result(_, b) if api::is_bool_true(b) => println!("  result: boolTrue"),
            Owned::Error(_, code, msg) => println!("  result: rpc_error {code} {msg}"),
            other => return Err(format!("unexpected answer {other:?}").into()),
        }
    }
    if !answers
        .iter()
        .any(|a| matches!(a, Owned::Error(_, 400, m) if m == "INPUT_METHOD_INVALID"))
    {
        return Err("the unknown method was not refused".into());
    }

    println!("\nround trips: 20 × messages.getDhConfig (version 1: dhConfigNotModified), wiretap off:");
    let tap = conn.tap.take();
    let mut rtts = Vec::new();
    for _ in 0..20 {
        let t = std::time::Instant::now();
        match conn.call(
            &mut engine,
            &mut rng,
            &api::get_dh_config(1, 16),
            Duration::from_secs(10),
            &mut note,
        )? {
            Owned::Result(..) => rtts.push(t.elapsed()),
            other => return Err(format!("unexpected answer {other:?}").into()),
        }
    }
    rtts.sort();
    let median = rtts.get(rtts.len() / 2).copied().unwrap_or_default();
    let min = rtts.first().copied().unwrap_or_default();
    println!("  median {}, min {}\n", ms(median), ms(min));
    conn.tap = tap;

    println!("injected loss: the host drops the next packet instead of sending it; the engine resends it");
    println!("(same body, fresh msg_id, inside a new container) when its timer fires:");
    conn.lose_next = true;
    let resent_before = engine.stats().resent;
    let t = std::time::Instant::now();
    let ev = conn.call(
        &mut engine,
        &mut rng,
        &api::save_file_part(8, 0, &[1; 256]),
        Duration::from_secs(10),
        &mut note,
    )?;
    let recovery = t.elapsed();
    if !matches!(&ev, Owned::Result(_, b) if api::is_bool_true(b)) {
        return Err(format!("unexpected answer {ev:?}").into());
    }
    let resent = engine.stats().resent - resent_before;
    println!(
        "  result: boolTrue after {} ({resent} message(s) resent)\n",
        ms(recovery)
    );
    if resent == 0 {
        return Err("the lost message was not resent".into());
    }

    println!("reconnect: a new TCP connection, the same key and session:");
    let mut conn2 = Conn::connect(dc.addr, transport, None, &mut rng)?;
    conn2.tap = conn.tap.take();
    drop(conn);
    engine.reconnect(client::now());
    let t = std::time::Instant::now();
    let ev = conn2.call(
        &mut engine,
        &mut rng,
        &api::get_dh_config(1, 8),
        Duration::from_secs(10),
        &mut note,
    )?;
    if !matches!(ev, Owned::Result(..)) {
        return Err(format!("unexpected answer {ev:?}").into());
    }
    println!("  result after reconnect in {}\n", ms(t.elapsed()));

    println!("perfect forward secrecy: a temporary key (24 h) on a new connection, bound to the permanent one");
    println!("with auth.bindTempAuthKey (an MTProto 1.0 message under the permanent key inside the request):");
    let mut tconn = Conn::connect(dc.addr, transport, None, &mut rng)?;
    tconn.tap = conn2.tap.take();
    let mut hcfg = ClientConfig::new(&keys, 2);
    hcfg.kind = KeyKind::Temporary { expires_in: 86_400 };
    let t = std::time::Instant::now();
    // The wiretap learns the temporary key when the handshake hands it out; until then it shows plaintext only.
    let (mut tengine, temp) = tconn.handshake(cfg, hcfg, &mut rng)?;
    let temp_handshake = t.elapsed();
    *key_slot.borrow_mut() = Some(temp.auth_key.clone());
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let expires_at = i32::try_from(unix_now + 86_400)?;
    let bind = tengine.bind_temp_key(client::now(), &outcome.auth_key, expires_at, &mut rng)?;
    match tconn
        .wait_for(&mut tengine, &mut rng, &[bind], Duration::from_secs(10), &mut note)?
        .pop()
    {
        Some(Owned::Result(_, b)) if api::is_bool_true(&b) => println!(
            "  result: boolTrue: temporary key {:#018x} bound to {:#018x} (temp handshake {})\n",
            temp.auth_key.id(),
            outcome.auth_key.id(),
            ms(temp_handshake)
        ),
        other => return Err(format!("binding failed: {other:?}").into()),
    }

    let sc = secret_chat(dc.addr, public, &mut rng)?;

    let s = engine.stats();
    let d = dc.stats();
    use std::sync::atomic::Ordering::SeqCst;
    println!("figures (loopback, this machine):");
    println!(
        "  handshake wall time            {} (temporary key: {})",
        ms(handshake_time),
        ms(temp_handshake)
    );
    println!("  first RPC (incl. salt fix-up)  {}", ms(first_rtt));
    println!(
        "  RPC round trip                 median {}, min {}",
        ms(median),
        ms(min)
    );
    println!("  recovery after one lost packet {}", ms(recovery));
    println!(
        "  secret chat: key exchange      {} (request → key on both sides: 4 RPCs, 2 pushed updates)",
        ms(sc.exchange)
    );
    println!(
        "  secret chat: message A → B     median {} (sendEncrypted → updateNewEncryptedMessage decrypted)",
        ms(sc.one_way)
    );
    println!(
        "  secret chat: re-key            {} (both on the new key; {} sendEncryptedService calls in the chat)",
        ms(sc.rekey),
        sc.service
    );
    println!(
        "  client: {} packets out, {} in, {} resent; DC: {} connections, {} keys, {} requests ({} rpc_errors), \
         {} updates pushed",
        s.packets_out,
        s.packets_in,
        s.resent,
        d.connections.load(SeqCst),
        d.keys_created.load(SeqCst),
        d.requests.load(SeqCst),
        d.rpc_errors.load(SeqCst),
        d.updates_pushed.load(SeqCst)
    );
    dc.stop();
    Ok(())
}
