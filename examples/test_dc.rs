//! A standalone MTProto test DC for other clients (Telethon, kurigram, GramJS, our own):
//!
//! ```text
//! cargo run --release --example test_dc -- --gen-key dc.pem
//! cargo run --release --example test_dc -- --listen 127.0.0.1:4430 --rsa-key dc.pem [--dcs N | --dc-id N]
//!                                          [--auto-register] [--password PHONE=PASS]... [--secret HEX]
//!                                          [--max-conns N] [--keys keys.txt] [--quiet]
//! ```
//! Serves DCs 1..=N (`--dcs`, default 3) on consecutive ports from the `--listen` port (port 0: any free ports),
//! one process, one account store, each DC with its own auth keys (`--keys FILE` becomes `FILE.dcX`); or, with
//! `--dc-id N` alone, the one DC N as before (handshakes naming another DC refused). Accounts follow Telegram's
//! test DCs (`test-dc/src/auth.rs`): phone `99966XYYYY` lives on DC X, its code is X five times (`22222`),
//! `PHONE_MIGRATE_X` elsewhere; a new number signs up with `auth.signUp` (`--auto-register`: the code alone
//! creates it); `--password PHONE=PASS` gives a number two-step verification (SRP: `SESSION_PASSWORD_NEEDED`,
//! `account.getPassword`, `auth.checkPassword`; the DC keeps the verifier, not the password); any bot token `<id>:<secret>` signs in bot `<id>`; QR login, `auth.exportAuthorization` /
//! `auth.importAuthorization`, `help.getConfig` listing every DC, and what clients call after sign-in.
//! Detects abridged, intermediate, padded intermediate, full and obfuscated connections (`--secret`: only
//! obfuscated ones made with that MTProxy secret) and, on the same port, the carriages: HTTP (`POST /api`),
//! WebSocket (`GET /apiws`, subprotocol `binary`, the obfuscated transport in binary messages) and, with an `ee`
//! secret (`--secret ee<32 hex key><hex domain>`), fake-TLS whose ClientHello names that domain. Creates auth keys with the given RSA key (PKCS#1 or PKCS#8
//! PEM), serves the whole service layer and the api subset of `test-dc/src/api.rs` (`messages.getDhConfig`,
//! `upload.saveFilePart`, wrappers unwrapped, and the secret-chat relay: `messages.requestEncryption`,
//! `acceptEncryption`, `discardEncryption`, `sendEncrypted`, `sendEncryptedService`, `sendEncryptedFile`, with
//! `updateEncryption` and `updateNewEncryptedMessage` pushed to the other user's live connections; anything else
//! gets `rpc_error 400 INPUT_METHOD_INVALID`), and keeps auth keys with their salt schedules across connections (in
//! `--keys FILE`, or in memory) and client sessions across reconnects. It is the reference host of the DC
//! `Connection` facade (`test-dc/src/dc.rs`, crate `mtproto-test-dc`).
//! A user is an auth key (`mtproto_test_dc::api::user_id_of`); the output (unless `--quiet`) names each connection's user.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error;
use std::path::PathBuf;

use mtproto_sansio::carriage::faketls::FakeTlsSecret;
use mtproto_sansio::crypto::pem::{parse_private_pem, write_private_pem, write_public_pem};
use mtproto_sansio::crypto::rsa::RsaPrivateKey;
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_test_dc::dc::{self, ClusterOptions, DcOptions};
use zeroize::Zeroize;

const USAGE: &str = "usage: test_dc --gen-key FILE | --listen ADDR --rsa-key FILE [--dcs N | --dc-id N] \
                     [--auto-register] [--password PHONE=PASS]... [--secret HEX] [--max-conns N] [--keys FILE] \
                     [--quiet]";

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut listen = None;
    let mut rsa_key = None;
    let mut gen_key = None;
    let mut secret = None;
    let mut faketls = None;
    let mut dc_id = None;
    let mut dcs: Option<u16> = None;
    let mut auto_register = false;
    let mut passwords = Vec::new();
    let mut max_conns = 1024usize;
    let mut keys = None;
    let mut verbose = true;
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--listen" => listen = Some(val()?.parse()?),
            "--rsa-key" => rsa_key = Some(PathBuf::from(val()?)),
            "--gen-key" => gen_key = Some(PathBuf::from(val()?)),
            "--secret" => {
                let raw = hex::decode(val()?)?;
                // `ee` + 16-byte key + domain: fake-TLS, with the key also required of obfuscated connections.
                if raw.first() == Some(&0xee) {
                    faketls = Some(FakeTlsSecret::from_bytes(&raw).map_err(|e| format!("--secret: {e}"))?);
                } else {
                    secret = Some(ProxySecret::from_bytes(&raw).map_err(|e| format!("--secret: {e}"))?);
                }
            }
            "--dc-id" => dc_id = Some(val()?.parse()?),
            "--dcs" => dcs = Some(val()?.parse()?),
            "--auto-register" => auto_register = true,
            "--password" => {
                let v = val()?;
                let (phone, pass) = v.split_once('=').ok_or(format!("--password PHONE=PASS\n{USAGE}"))?;
                passwords.push((phone.to_owned(), pass.to_owned()));
            }
            "--max-conns" => max_conns = val()?.parse()?,
            "--keys" => keys = Some(PathBuf::from(val()?)),
            "--quiet" => verbose = false,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }

    if let Some(path) = gen_key {
        let key = RsaPrivateKey::generate(&mut rand::rng()).map_err(|e| format!("key generation: {e}"))?;
        let mut pem = vec![0u8; 4096];
        let n = write_private_pem(&key, &mut pem).map_err(|e| format!("PEM: {e}"))?;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        std::io::Write::write_all(&mut o.open(&path)?, pem.get(..n).unwrap_or_default())?;
        pem.zeroize();
        let mut public = vec![0u8; 2048];
        let n = write_public_pem(key.public_key(), &mut public).map_err(|e| format!("PEM: {e}"))?;
        println!("wrote {}", path.display());
        print!("{}", String::from_utf8_lossy(public.get(..n).unwrap_or_default()));
        println!("fingerprint {:#018x}", key.public_key().fingerprint());
        if listen.is_none() {
            return Ok(());
        }
        rsa_key = Some(path);
    }

    let (Some(listen), Some(path)) = (listen, rsa_key) else {
        return Err(USAGE.into());
    };
    let mut pem = std::fs::read(&path)?;
    let key = parse_private_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    let fingerprint = key.public_key().fingerprint();
    let obfuscation_only = secret.is_some() || faketls.is_some();
    let tls_domain = faketls
        .as_ref()
        .map(|s: &FakeTlsSecret| String::from_utf8_lossy(s.domain()).into_owned());
    // `--dc-id` alone: that one DC, as before; else DCs 1..=N on consecutive ports.
    let (count, single) = match (dcs, dc_id) {
        (Some(n), None) => (n, false),
        (None, Some(_)) => (1, true),
        (None, None) => (3, false),
        (Some(_), Some(_)) => return Err(format!("--dcs and --dc-id exclude each other\n{USAGE}").into()),
    };
    if !(1..=9).contains(&count) {
        return Err(format!("--dcs: 1 to 9 DCs\n{USAGE}").into());
    }
    let mut members = Vec::new();
    for i in 0..count {
        let mut addr: std::net::SocketAddr = listen;
        if addr.port() != 0 {
            addr.set_port(listen.port().checked_add(i).ok_or("--listen: port range overflows")?);
        }
        let keys_file = match (&keys, single) {
            (Some(k), true) => Some(k.clone()),
            (Some(k), false) => Some(PathBuf::from(format!("{}.dc{}", k.display(), i + 1))),
            (None, _) => None,
        };
        members.push(DcOptions {
            listen: addr,
            // Every DC of the process has the same RSA key, as Telegram's DCs do.
            rsa_key: parse_private_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?,
            secret: secret.clone(),
            faketls: faketls.clone(),
            dc_id: if single { dc_id } else { None },
            max_conns,
            keys_file,
            verbose,
        });
    }
    pem.zeroize();
    drop(key);
    let cluster = dc::start_cluster(ClusterOptions {
        dcs: members,
        auto_register,
        passwords,
    })?;
    for d in &cluster.dcs {
        println!("listening on {}", d.addr);
        println!("dc {} at {}, keys loaded {}", d.id(), d.addr, d.key_count());
    }
    println!("rsa fingerprint {fingerprint:#018x}");
    if obfuscation_only {
        println!("MTProxy secret set: obfuscated connections only (also inside WebSocket)");
    }
    if let Some(d) = tls_domain {
        println!("fake-TLS served for SNI {d}");
    }
    // Serve until killed; the runtime's threads run the DC.
    loop {
        std::thread::park();
    }
}
