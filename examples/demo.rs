//! The README's first command: `cargo run --release --example demo`.
//!
//! Starts a test DC on 127.0.0.1 (an ephemeral port), connects a client over TCP (obfuscated padded intermediate),
//! creates an auth key, makes RPCs, and prints what crosses the wire — decrypted by a wiretap that knows the key —
//! so acks, containers, the salt correction and a resend after an injected loss are visible. Ends with the
//! measured figures. Needs nothing but loopback.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
pub mod common;

use std::cell::RefCell;
use std::error::Error;
use std::rc::Rc;
use std::time::Duration;

use common::api;
use common::client::{self, Conn, Owned, Tap};
use common::dc::{self, DcOptions};
use common::link::Transport;
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::{self, Direction};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::handshake::{ClientConfig, KeyKind};
use mtproto_sansio::session::{EngineConfig, MsgKind, ResendPolicy};
use mtproto_sansio::tl::Reader;
use mtproto_sansio::transport::{Framing, strip_padding};

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
        0x1fb3_3026 => "help.getNearestDc",
        0xcdd4_2a05 => "auth.bindTempAuthKey",
        api::INVOKE_WITH_LAYER => "invokeWithLayer",
        api::INIT_CONNECTION => "initConnection",
        api::GET_DH_CONFIG => "messages.getDhConfig",
        api::DH_CONFIG => "messages.dhConfig",
        api::DH_CONFIG_NOT_MODIFIED => "messages.dhConfigNotModified",
        api::SAVE_FILE_PART => "upload.saveFilePart",
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

    // 2. Connect and create an auth key.
    let transport = Transport::DEFAULT;
    println!("client connects over {transport} TCP and runs the auth-key handshake:");
    let key_slot = Rc::new(RefCell::new(None));
    let t = std::time::Instant::now();
    let mut conn = Conn::connect(dc.addr, transport, None, &mut rng)?;
    conn.tap = Some(wiretap(Rc::clone(&key_slot)));
    let keys = [public];
    let outcome = conn.handshake(ClientConfig::new(&keys, 2), &mut rng)?;
    let handshake_time = t.elapsed();
    println!(
        "handshake done in {}: auth key id {:#018x}, first salt {:#018x}, server time offset {} s\n",
        ms(handshake_time),
        outcome.auth_key.id(),
        outcome.server_salt,
        outcome.server_time_offset
    );
    *key_slot.borrow_mut() = Some(outcome.auth_key.clone());
    // 3. The encrypted session. Short resend timer, so the injected loss recovers quickly.
    let cfg = EngineConfig {
        resend: ResendPolicy {
            initial: Duration::from_millis(300),
            max: Duration::from_secs(2),
            max_attempts: 5,
        },
        ping_interval: None,
        ..EngineConfig::DEFAULT
    };
    let mut engine = client::session(cfg, outcome.auth_key.clone(), 0, outcome.server_time_offset, &mut rng);
    let mut note = |ev: Owned| println!("  event: {ev:?}");

    println!("first RPC, wrapped as real clients do (invokeWithLayer(initConnection(messages.getDhConfig))),");
    println!("sent with salt 0, so the DC corrects the salt and the engine resends:");
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
        engine.send(now, &0x1fb3_3026u32.to_le_bytes(), MsgKind::Query)?,
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
    let temp = tconn.handshake(hcfg, &mut rng)?;
    let temp_handshake = t.elapsed();
    *key_slot.borrow_mut() = Some(temp.auth_key.clone());
    let mut tengine = client::session(
        cfg,
        temp.auth_key.clone(),
        temp.server_salt,
        temp.server_time_offset,
        &mut rng,
    );
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

    println!("secret chats: src/e2e is on main, but the test DC does not relay messages.requestEncryption & co.");
    println!("yet, so this demo leaves them out.\n");

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
        "  client: {} packets out, {} in, {} resent; DC: {} connections, {} keys, {} requests ({} rpc_errors)",
        s.packets_out,
        s.packets_in,
        s.resent,
        d.connections.load(SeqCst),
        d.keys_created.load(SeqCst),
        d.requests.load(SeqCst),
        d.rpc_errors.load(SeqCst)
    );
    dc.stop();
    Ok(())
}
