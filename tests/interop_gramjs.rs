//! GramJS (npm `telegram`: its own `MTProtoSender`, `Authenticator` and connection classes) against the test DC of
//! `examples/test_dc.rs`, over every TCP connection class it has: full, abridged, obfuscated (abridged) and MTProxy
//! (obfuscated abridged with a secret; GramJS has no intermediate framing). Each run: a handshake (GramJS's RSA_PAD
//! encoding), `invokeWithLayer(initConnection(messages.getDhConfig))`, a wrapped `help.getPremiumPromo` (not served) as an
//! rpc_error round trip, a ping, a 512 KiB `upload.saveFilePart`, a `gzip_packed` one, eight requests in one container,
//! GramJS's own reconnect (new connection, new session id) and a new sender under the stored key.
//! Without `node` and `examples/interop/node_modules/telegram` the tests are reported ignored, or fail when
//! `MTPROTO_REQUIRE_INTEROP` asks for GramJS (`.ci/run` does): see `tests/interop_peer/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod interop_peer;

use std::process::Command;
use std::sync::atomic::Ordering::SeqCst;

use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_test_dc::dc::{self, Dc, DcOptions};

const KEY: &str = include_str!("data/keys/dc_test_pkcs8.pem");
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop/gramjs_check.js");

/// The MTProxy secret of the `mtproxy*` runs.
const SECRET: [u8; 16] = [
    0x2f, 0x91, 0x0c, 0x6d, 0xe4, 0x38, 0x57, 0xaa, 0x03, 0xb9, 0x7e, 0x15, 0xc2, 0x48, 0xf6, 0x60,
];

fn gramjs_missing() -> Option<String> {
    let out = Command::new("node")
        .current_dir(DIR)
        .args(["-e", "require('telegram/network/MTProtoSender')"])
        .output();
    match out {
        Err(e) => Some(format!("node not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "GramJS not installed in {DIR}/node_modules: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find(|l| l.contains("Error"))
                .unwrap_or("")
        )),
        Ok(_) => None,
    }
}

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

/// `client_secret`: the secret GramJS is given, when it differs from the DC's.
fn run(transport: &str, client_secret: Option<Vec<u8>>) {
    let secret = (transport == "mtproxy").then(|| ProxySecret::from_bytes(&SECRET).unwrap());
    let (dc, n_hex) = start_dc(secret);
    let out = Command::new("node")
        .current_dir(DIR)
        .args([
            SCRIPT,
            &dc.addr.port().to_string(),
            transport,
            &n_hex,
            "65537",
            &hex::encode(client_secret.unwrap_or(SECRET.to_vec())),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _log = interop_peer::PrintOnPanic(format!(
        "{transport}:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    ));
    assert!(out.status.success(), "GramJS over {transport} failed");
    let mut checks = vec!["handshake".to_string(), "large_gzip_container".to_string()];
    for prefix in ["", "restart_", "reconnect_"] {
        for check in ["init_connection_get_dh_config", "unknown_method_rpc_error", "ping_pong"] {
            checks.push(format!("{prefix}{check}"));
        }
    }
    checks.push("reconnect_same_key".to_string());
    for check in &checks {
        assert!(
            stdout.lines().any(|l| l == format!("OK {check}")),
            "{transport}: {check} missing"
        );
    }
    // GramJS drops leading zero bytes of g^ab (about 1 handshake in 256) and then makes a new key on the same
    // connection; the script allows that only when it saw the short key (examples/interop/NOTES.md).
    let retries: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HANDSHAKE_RETRIES "))
        .expect("HANDSHAKE_RETRIES line")
        .parse()
        .unwrap();
    assert!(retries <= 3, "{transport}: {retries} handshake retries");
    let s = dc.stats();
    // One key in use, made on the first connection (GramJS makes it there) and reused by the reconnect and the new
    // sender; each connection announced with new_session_created.
    assert_eq!(
        s.keys_created.load(SeqCst),
        1 + retries,
        "{transport}: a reconnect made a new key"
    );
    assert_eq!(dc.key_count() as u64, 1 + retries);
    assert_eq!(s.connections.load(SeqCst), 3);
    assert_eq!(s.sessions.load(SeqCst), 3);
    assert!(s.rpc_errors.load(SeqCst) >= 3);
    // 512 KiB of random bytes and 256 KiB of zeros (counted after gzip inflation).
    assert!(s.request_bytes.load(SeqCst) > 768 * 1024);
    assert_eq!(
        s.bad_connections.load(SeqCst),
        0,
        "{transport}: the DC closed a connection on bad input"
    );
    interop_peer::check_tl(&format!("gramjs {transport}"), s);
    dc.stop();
}

fn main() {
    interop_peer::main(
        interop_peer::Peer {
            name: "gramjs",
            install: "npm install --prefix examples/interop --no-save telegram@2.26.22",
            missing: gramjs_missing,
        },
        &[
            ("gramjs_tcp_full", || run("full", None)),
            ("gramjs_tcp_abridged", || run("abridged", None)),
            ("gramjs_tcp_obfuscated", || run("obfuscated", None)),
            // GramJS's WebSocket transport (`PromisedWebSockets`: `ws://127.0.0.1:PORT/apiws`, subprotocol
            // `binary`) carrying its obfuscated stream, served by test_dc on its TCP port.
            ("gramjs_websocket", || run("websocket", None)),
            // GramJS's MTProxy connection (obfuscated abridged with the secret, the DC id in the header).
            ("gramjs_mtproxy_secret", || run("mtproxy", None)),
            // GramJS given a `dd` secret strips the marker but keeps abridged framing (it has no padded
            // intermediate), so it is served by a DC whose secret is plain; a `dd`-only DC refuses it
            // (examples/interop/NOTES.md).
            ("gramjs_mtproxy_dd_marked_secret", || {
                run("mtproxy", Some([&[0xdd][..], &SECRET[..]].concat()))
            }),
        ],
    )
}
