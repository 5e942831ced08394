//! kurigram (PyPI `kurigram`, the maintained Pyrogram fork: its own `Auth`, `Connection`, `Connection` and TCP
//! transport classes) against the test DC of `examples/test_dc.rs`, over every TCP transport it has: full, abridged,
//! intermediate, padded intermediate, obfuscated abridged and intermediate, and MTProxy with a plain and a `dd`
//! secret. Each run: a handshake (kurigram's legacy RSA encoding and `p_q_inner_data` without dc, its dh_prime
//! check), `invokeWithLayer(initConnection(messages.getDhConfig))`, a wrapped `help.getPremiumPromo` (not served) as an
//! rpc_error round trip, a ping with an even seq_no (kurigram does not count it as content-related), a 512 KiB
//! `upload.saveFilePart`, eight concurrent calls, kurigram's `Connection.restart` (new connection, same session: the DC
//! hands the session over) and a new `Connection` under the same key. And kurigram's `Client` signs in against three
//! DCs in one process (`kurigram_sign_in`, examples/interop/kurigram_signin.py): as a bot, with a phone code after
//! following `PHONE_MIGRATE_2` from DC 1 (sign-up, then a stock `Client.start()`), and with a two-step verification
//! password (kurigram's SRP against the DC's). Without `python3` and `kurigram` the tests are
//! reported ignored, or fail when `MTPROTO_REQUIRE_INTEROP` asks for kurigram (`.ci/run` does): see
//! `tests/interop_peer/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod interop_peer;
#[path = "interop_peer/updates.rs"]
mod peer_updates;

use std::process::Command;
use std::sync::atomic::Ordering::SeqCst;

use mtproto_sansio::carriage::faketls::FakeTlsSecret;
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_test_dc::dc::{self, Dc, DcOptions};

const KEY: &str = include_str!("data/keys/dc_test_pkcs8.pem");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop/kurigram_check.py");
const SIGN_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop/kurigram_signin.py");
const UPDATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop/kurigram_updates.py");

/// The MTProxy secret of the `mtproxy*` runs.
const SECRET: [u8; 16] = [
    0x5e, 0xc8, 0xe7, 0x01, 0x2a, 0x44, 0x90, 0x3b, 0x77, 0x12, 0xc0, 0xde, 0x9a, 0x61, 0x0f, 0x33,
];

fn kurigram_missing() -> Option<String> {
    // MTProxy is kurigram's (the original Pyrogram has no such class): what the script needs, not just the name.
    let probe = "import pyrogram.session; from pyrogram.connection.proxy import MTProxy";
    match Command::new("python3").args(["-c", probe]).output() {
        Err(e) => Some(format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "kurigram not importable: {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        )),
        Ok(_) => None,
    }
}

fn start_dc(secret: Option<ProxySecret>, faketls: Option<FakeTlsSecret>) -> (Dc, String) {
    let key = parse_private_pem(KEY.as_bytes()).unwrap();
    let n_hex = hex::encode(key.public_key().n_bytes());
    let dc = dc::start(DcOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        rsa_key: key,
        secret,
        faketls,
        dc_id: Some(2),
        max_conns: 64,
        keys_file: None,
        verbose: false,
    })
    .unwrap();
    (dc, n_hex)
}

fn run(transport: &str) {
    // The DC accepts only obfuscated connections made with the secret; `dd`: only padded intermediate ones.
    let secret = match transport {
        "mtproxy" => Some(ProxySecret::from_bytes(&SECRET).unwrap()),
        "mtproxy_dd" => Some(ProxySecret::from_bytes(&[&[0xdd][..], &SECRET[..]].concat()).unwrap()),
        _ => None,
    };
    // `ee`: fake-TLS for the domain the script names (`EE_DOMAIN`), the same 16-byte key inside.
    let faketls = (transport == "mtproxy_ee").then(|| FakeTlsSecret::new(&SECRET, b"www.example.org").unwrap());
    let (dc, n_hex) = start_dc(secret, faketls);
    let out = Command::new("python3")
        .args([
            SCRIPT,
            &dc.addr.port().to_string(),
            transport,
            &n_hex,
            "65537",
            &hex::encode(SECRET),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _log = interop_peer::PrintOnPanic(format!(
        "{transport}:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    ));
    assert!(out.status.success(), "kurigram over {transport} failed");
    let mut checks = vec!["handshake".to_string(), "reconnect_same_key".to_string()];
    for prefix in ["", "restart_", "reconnect_"] {
        for check in ["init_connection_get_dh_config", "unknown_method_rpc_error", "ping_pong"] {
            checks.push(format!("{prefix}{check}"));
        }
    }
    checks.push("large_and_concurrent".to_string());
    for check in &checks {
        assert!(
            stdout.lines().any(|l| l == format!("OK {check}")),
            "{transport}: {check} missing"
        );
    }
    // kurigram starts its handshake over on any failure; a DC that needed that has rejected a valid client.
    assert!(
        stdout.lines().any(|l| l == "AUTH_RETRIES 0"),
        "{transport}: kurigram had to retry its handshake"
    );
    let s = dc.stats();
    // One key, reused by the restart and the new session; a connection each for Auth, the session, its restart
    // and the new session. The restart keeps kurigram's session id, so the DC hands the session over to the new
    // connection (no second new_session_created) and the new `Connection` starts the second one. Exactly four
    // connections: a restart whose first request went unanswered would make kurigram reconnect again.
    assert_eq!(
        s.keys_created.load(SeqCst),
        1,
        "{transport}: a reconnect made a new key"
    );
    assert_eq!(dc.key_count(), 1);
    assert_eq!(s.connections.load(SeqCst), 4, "{transport}: kurigram had to reconnect");
    assert_eq!(s.sessions.load(SeqCst), 2);
    assert_eq!(
        s.sessions_resumed.load(SeqCst),
        1,
        "{transport}: the restart did not continue the session"
    );
    assert!(s.rpc_errors.load(SeqCst) >= 3);
    assert!(s.request_bytes.load(SeqCst) > 512 * 1024);
    assert_eq!(
        s.bad_connections.load(SeqCst),
        0,
        "{transport}: the DC closed a connection on bad input"
    );
    interop_peer::check_tl(&format!("kurigram {transport}"), s);
    dc.stop();
}

/// kurigram's `Client` against DCs 1..=3: every check of kurigram_signin.py must pass.
fn sign_in() {
    interop_peer::sign_in_run(
        KEY,
        SIGN_IN,
        &[
            "bot_sign_in",
            "phone_migrate_followed",
            "wrong_code_refused",
            "sign_up_required",
            "sign_up",
            "phone_code_sign_in",
            "password_sign_in",
        ],
    );
}

/// kurigram's update handling on test_dc's update stream (examples/interop/kurigram_updates.py): it signs in, writes
/// to the megagroup (its login hands the answer to kurigram's `handle_updates`, which stores the channel's pts),
/// goes offline, is sent private messages (several `updates.differenceSlice`s) and megagroup messages, reconnects
/// and catches up (`recover_gaps`: `getDifference`, and `getChannelDifference` for the channel it stored); the
/// messages its catch-up delivered, in order, and its final pts and channel pts equal our `UpdateSync`'s from the
/// same state and test_dc's history (`tests/interop_peer/updates.rs`).
fn updates_catch_up() {
    let dir = std::env::temp_dir().join(format!("kurigram-updates-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.clone();
    peer_updates::run(KEY, UPDATES, "9996612222", "11111", &path, true);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    interop_peer::main(
        interop_peer::Peer {
            name: "kurigram",
            install: "pip install kurigram==2.2.26 tgcrypto==1.2.5",
            missing: kurigram_missing,
        },
        &[
            ("kurigram_tcp_full", || run("full")),
            ("kurigram_tcp_abridged", || run("abridged")),
            ("kurigram_tcp_intermediate", || run("intermediate")),
            ("kurigram_tcp_padded_intermediate", || run("padded")),
            ("kurigram_tcp_obfuscated_abridged", || run("abridged_o")),
            ("kurigram_tcp_obfuscated_intermediate", || run("intermediate_o")),
            // kurigram's MTProxy connection with a plain 16-byte secret (obfuscated abridged, the DC id in the
            // header).
            ("kurigram_mtproxy_plain_secret", || run("mtproxy")),
            // kurigram's MTProxy connection with a `dd` secret (obfuscated padded intermediate), against a DC that
            // admits only that framing.
            ("kurigram_mtproxy_dd_secret", || run("mtproxy_dd")),
            ("kurigram_mtproxy_ee_faketls", || run("mtproxy_ee")),
            ("kurigram_sign_in", sign_in),
            ("kurigram_updates_catch_up", updates_catch_up),
        ],
    )
}
