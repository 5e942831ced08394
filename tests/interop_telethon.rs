//! Telethon (PyPI `telethon`, its own `MTProtoSender`) against the test DC of `examples/test_dc.rs`, over TCP full,
//! abridged, intermediate, obfuscated, MTProxy (`dd` secret) and HTTP (`ConnectionHttp`, `POST /api` on the DC's
//! TCP port): handshake, `invokeWithLayer(initConnection(...))`, an rpc_error, a
//! `gzip_packed` request, containers carrying ~1 MiB of request data, a container of 100 pings and 200 queries at
//! once (more than the DC's 64-message tables: every one answered, issue 11 defect 7), a 512 KiB message, and a
//! reconnect with the same key. And Telethon's `TelegramClient` signs in against three DCs in one process
//! (`telethon_sign_in`, examples/interop/telethon_signin.py): as a bot, with a phone code after following
//! `PHONE_MIGRATE_2` from DC 1, by QR login accepted by another client with its `loginTokenMigrateTo`, and with a
//! two-step verification password (Telethon's SRP against the DC's). Without `python3` and `telethon` the tests are reported ignored, or fail when
//! `MTPROTO_REQUIRE_INTEROP` asks for Telethon (`.ci/run` does): see `tests/interop_peer/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod interop_peer;
#[path = "interop_peer/updates.rs"]
mod peer_updates;

use std::process::Command;
use std::sync::atomic::Ordering::SeqCst;

use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_test_dc::dc::{self, Dc, DcOptions};

const KEY: &str = include_str!("data/keys/dc_test_pkcs8.pem");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop/telethon_check.py");
const SIGN_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop/telethon_signin.py");
const UPDATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop/telethon_updates.py");

fn telethon_missing() -> Option<String> {
    match Command::new("python3").args(["-c", "import telethon, rsa"]).output() {
        Err(e) => Some(format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "telethon not importable: {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        )),
        Ok(_) => None,
    }
}

/// The MTProxy secret of the `mtproxy` run (Telethon's `dd` prefix selects padded intermediate).
const SECRET: [u8; 16] = [
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01,
];

fn start_dc(secret: Option<ProxySecret>) -> (Dc, String) {
    let key = parse_private_pem(KEY.as_bytes()).unwrap();
    let n_hex = hex::encode(key.public_key().n_bytes());
    let dc = dc::start(DcOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        rsa_key: key,
        secret,
        faketls: None,
        dc_id: Some(2),
        max_conns: 64,
        keys_file: None,
        verbose: false,
    })
    .unwrap();
    (dc, n_hex)
}

fn run(transport: &str) {
    let secret =
        (transport == "mtproxy").then(|| ProxySecret::from_bytes(&[&[0xdd][..], &SECRET[..]].concat()).unwrap());
    let (dc, n_hex) = start_dc(secret);
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
    assert!(out.status.success(), "telethon over {transport} failed");
    for check in [
        "init_connection_get_dh_config",
        "unknown_method_rpc_error",
        "gzip_packed_save_file_part",
        "container_1mib",
        "container_100_pings",
        "queries_200_at_once",
        "large_512kib_part",
        "reconnect_init_connection_get_dh_config",
        "reconnect_unknown_method_rpc_error",
        "reconnect_same_key",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("OK {check}")),
            "{transport}: {check} missing"
        );
    }
    let s = dc.stats();
    // The reconnect reuses the key: `reconnect_same_key` and the reconnect's answers above prove it (Telethon passed
    // the old key and the DC answered under it). A second key can only come from the first connection: under heavy
    // load Telethon's handshake may time out and be retried, so up to two are allowed.
    // A second key also comes from Telethon's own retry: it turns g_ab into bytes without its leading zero bytes
    // (`rsa.get_byte_array`, `int.to_bytes` of the bit length), so for 1 in 256 keys it holds 255 bytes, its
    // new_nonce_hash1 check fails ("Step 3 invalid new nonce hash") and it starts over. The DC, which keeps the
    // 256 bytes as the spec says, has then stored the abandoned key too.
    let keys = s.keys_created.load(SeqCst);
    assert!((1..=2).contains(&keys), "{transport}: {keys} keys created");
    assert!(
        (1..=keys as usize).contains(&dc.key_count()),
        "{transport}: {} keys stored",
        dc.key_count()
    );
    assert!(s.connections.load(SeqCst) >= 2);
    assert!(
        s.request_bytes.load(SeqCst) > 1_800_000,
        "{}",
        s.request_bytes.load(SeqCst)
    );
    assert_eq!(
        s.bad_connections.load(SeqCst),
        0,
        "{transport}: the DC closed a connection on bad input"
    );
    interop_peer::check_tl(&format!("telethon {transport}"), s);
    dc.stop();
}

/// Telethon's `TelegramClient` against DCs 1..=3: every check of telethon_signin.py must pass.
fn sign_in() {
    interop_peer::sign_in_run(
        KEY,
        SIGN_IN,
        &[
            "bot_sign_in",
            "get_config_lists_dcs",
            "bot_log_out",
            "phone_migrate_followed",
            "wrong_code_refused",
            "sign_up_required",
            "sign_up",
            "phone_code_sign_in",
            "qr_login_migrated",
            "wrong_password_refused",
            "password_sign_in",
        ],
    );
}

/// Telethon's update handling on test_dc's update stream (examples/interop/telethon_updates.py): it signs in, goes
/// offline, is sent messages (several `updates.differenceSlice`s), reconnects and catches up; the messages its
/// catch-up delivered, in order, and its final pts equal our `UpdateSync`'s from the same state and test_dc's
/// history (`tests/interop_peer/updates.rs`). The same for the megagroup: its login wrote there, so it tracks the
/// channel; the messages written there while it was away come through the `updateChannelTooLong` of its difference
/// and its `updates.getChannelDifference`, and agree with ours, as does the channel's final pts.
fn updates_catch_up() {
    let dir = std::env::temp_dir().join(format!("telethon-updates-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("session");
    peer_updates::run(KEY, UPDATES, "9996611111", "11111", &path, true);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    interop_peer::main(
        interop_peer::Peer {
            name: "telethon",
            install: "pip install telethon==1.45.0",
            missing: telethon_missing,
        },
        &[
            ("telethon_tcp_full", || run("full")),
            ("telethon_tcp_abridged", || run("abridged")),
            ("telethon_tcp_intermediate", || run("intermediate")),
            ("telethon_tcp_obfuscated", || run("obfuscated")),
            // Telethon through its MTProxy connection (`dd` secret: randomized padded intermediate), against a DC
            // that accepts only obfuscated connections made with that secret.
            ("telethon_mtproxy_secret", || run("mtproxy")),
            // Telethon's `ConnectionHttp` (`POST /api`, one packet per request and response body) on the DC's TCP
            // port, which detects HTTP from the first bytes.
            ("telethon_http", || run("http")),
            ("telethon_sign_in", sign_in),
            ("telethon_updates_catch_up", updates_catch_up),
        ],
    )
}
