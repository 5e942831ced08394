//! The blocking client's `--pfs` loop (`blocking_client::run_pfs`) against the in-process test DC over loopback TCP:
//! the permanent key is created (then reused from its file), temporary keys are created, bound (the DC verifies
//! `auth.bindTempAuthKey` against the permanent key) and replaced on their own, and every call is answered; also
//! behind the DC's `dd` MTProxy secret.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

#[allow(clippy::duplicate_mod)]
#[path = "../examples/blocking_client.rs"]
mod blocking_client;

use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use blocking_client::{Options, Pfs};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_test_dc::dc::{self, Dc, DcOptions};
use mtproto_test_dc::link::Transport;

const KEY_PKCS1: &str = include_str!("data/keys/dc_test_pkcs1.pem");
const DD_SECRET: [u8; 17] = [
    0xdd, 0x61, 0x0a, 0x9e, 0x33, 0x51, 0xc2, 0x0b, 0x7d, 0x14, 0xe8, 0x29, 0x46, 0x8f, 0x03, 0xba, 0x5c,
];

fn start_dc(secret: Option<ProxySecret>) -> (Dc, RsaPublicKey) {
    let key = parse_private_pem(KEY_PKCS1.as_bytes()).unwrap();
    let public = *key.public_key();
    let opts = DcOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        rsa_key: key,
        secret,
        faketls: None,
        dc_id: Some(2),
        max_conns: 64,
        keys_file: None,
        verbose: false,
    };
    (dc::start(opts).unwrap(), public)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtproto-sansio-hosts-pfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Temporary keys of 14 s (9 s once the client's 5 s of slack are off) are replaced 2 s in, half their lifetime
/// before expiry; calls 400 ms apart span at least one re-key.
const SHORT: Pfs = Pfs {
    lifetime: 14,
    pause: Duration::from_millis(400),
};

#[test]
fn pfs_loop_binds_rekeys_and_gets_answers() {
    let (dc, public) = start_dc(None);
    let key_file = tmp("perm.key");
    let opts = Options {
        dc: dc.addr,
        rsa_key: public,
        transport: Transport::DEFAULT,
        secret: None,
        key_file: Some(key_file.clone()),
        calls: 8,
        max_attempts: 3,
    };
    let s = blocking_client::run_pfs(&opts, &SHORT).unwrap();
    assert!(s.created_key);
    assert_eq!(s.rtts.len(), 8);
    // The DC verified each binding: one per temporary key, at least two keys (a re-key happened).
    let binds = dc.stats().binds.load(SeqCst);
    assert!(s.temp_keys_bound >= 2, "no re-key: {s:?}");
    assert_eq!(binds, s.temp_keys_bound);
    // The permanent key and each temporary key came from a handshake.
    assert_eq!(dc.stats().keys_created.load(SeqCst), 1 + binds);
    assert!(s.connections >= 3, "a re-key takes a new connection: {s:?}");
    // A second run reuses the permanent key from the file: only temporary keys are created.
    let s = blocking_client::run_pfs(
        &Options { calls: 2, ..opts },
        &Pfs {
            lifetime: 3600,
            pause: Duration::ZERO,
        },
    )
    .unwrap();
    assert!(!s.created_key);
    assert_eq!((s.rtts.len(), s.temp_keys_bound), (2, 1));
    assert_eq!(dc.stats().keys_created.load(SeqCst), 2 + binds);
    assert_eq!(dc.stats().binds.load(SeqCst), binds + 1);
}

#[test]
fn pfs_loop_behind_a_dd_secret() {
    let secret = ProxySecret::from_bytes(&DD_SECRET).unwrap();
    let (dc, public) = start_dc(Some(secret.clone()));
    let opts = Options {
        dc: dc.addr,
        rsa_key: public,
        transport: Transport::DEFAULT,
        secret: Some(secret),
        key_file: None,
        calls: 8,
        max_attempts: 3,
    };
    let s = blocking_client::run_pfs(&opts, &SHORT).unwrap();
    assert_eq!(s.rtts.len(), 8);
    assert!(s.temp_keys_bound >= 2, "no re-key: {s:?}");
    assert_eq!(dc.stats().binds.load(SeqCst), s.temp_keys_bound);
    assert_eq!(dc.stats().bad_connections.load(SeqCst), 0);
    // Without the secret the DC refuses every connection.
    let r = blocking_client::run_pfs(
        &Options {
            secret: None,
            max_attempts: 2,
            ..opts
        },
        &SHORT,
    );
    assert!(r.is_err());
}
