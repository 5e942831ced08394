//! docs/CHECKLIST.md item 76: every secret type that claims to zeroize itself on drop really does, observed after
//! its destructor has run rather than by calling `zeroize()` by hand (which would pass even if `Drop` forgot to).
//!
//! Each test runs the real destructor on a value in a slot the test owns ([`after_drop`]) and then looks at what is
//! left through the type's public API: the key bytes where an accessor exists, otherwise whether the dropped value
//! still computes what the original did (same RNG, same input). Removing the wipe from any of these destructors (or
//! the `ZeroizeOnDrop` derive that generates it) turns its test red.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use core::mem::ManuallyDrop;

use mtproto_sansio::carriage::faketls::{FakeTlsSecret, client_hello};
use mtproto_sansio::client::srp::{CheckedKdf, SrpError, SrpServer};
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::kdf::{self, AesKeyIv};
use mtproto_sansio::crypto::{pem, rsa};
use mtproto_sansio::e2e::file::FileEncryptor;
use mtproto_sansio::session::SaltSchedule;
use mtproto_sansio::transport::Framing;
use mtproto_sansio::transport::obfuscated::{ProxySecret, client_init};
use rand::SeedableRng;
use rand::rngs::StdRng;

const DC_KEY_PEM: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/keys/dc_test_pkcs1.pem"
));

/// Runs the destructor of `value`, which this function owns, and then hands the dropped value to `inspect`.
///
/// Why `unsafe` in a test: safe Rust cannot look at a value after its destructor ran, and that is exactly what a
/// zeroize-on-drop test must observe. `ManuallyDrop::drop` runs the destructor once, in place, without freeing the
/// slot; its documentation guarantees that the memory then "still holds a bit-pattern which is valid for the type
/// T". The types tested here hold only integers, byte arrays, `bool`s, field-less enums and `Option`s of those (no
/// pointers, handles or references), so every bit pattern their destructors can leave (zeroed or untouched) is a
/// valid value, and the accessors used below only read those fields. The slot is never dropped again.
fn after_drop<T, R>(value: T, inspect: impl FnOnce(&mut T) -> R) -> R {
    let mut slot = ManuallyDrop::new(value);
    // SAFETY: `slot` holds a live `T`; this is the only call that drops it (ManuallyDrop never drops it again).
    unsafe { ManuallyDrop::drop(&mut slot) };
    inspect(&mut slot)
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[test]
fn chk_076_auth_key_zeroized_on_drop() {
    let key = AuthKey::from_bytes([0xab; 256]);
    assert_ne!(key.id(), 0);
    let (bytes, id, aux) = after_drop(key, |k| (*k.as_bytes(), k.id(), k.aux_hash()));
    assert_eq!(bytes, [0; 256], "auth key bytes survive the destructor");
    assert_eq!((id, aux), (0, 0));
}

#[test]
fn chk_076_aes_key_iv_zeroized_on_drop() {
    let kv: AesKeyIv = kdf::tmp_aes_key_iv(&[7; 32], &[9; 16]);
    assert!(kv.key.iter().chain(&kv.iv).any(|&b| b != 0));
    let (key, iv) = after_drop(kv, |kv| (kv.key, kv.iv));
    assert_eq!((key, iv), ([0; 32], [0; 32]), "tmp AES key/iv survive the destructor");
}

#[test]
fn chk_076_salt_schedule_zeroized_on_drop() {
    let mut raw = [0x5a; 48];
    raw[32..40].copy_from_slice(&7u64.to_le_bytes());
    raw[40..].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    let s = SaltSchedule::from_bytes(&raw);
    let before = *s.to_bytes();
    assert_eq!(before, raw);
    assert_ne!(before, [0; 48]);
    let after = after_drop(s, |s| *s.to_bytes());
    assert_eq!(after, [0; 48], "salt schedule secret survives the destructor");
}

#[test]
fn chk_076_dh_exponent_zeroized_on_drop() {
    let group = DhGroup::telegram(3).unwrap();
    let (secret, _) = group.gen_keypair(&mut rng(1)).unwrap();
    let (_, peer) = group.gen_keypair(&mut rng(2)).unwrap();
    let shared = *group.shared(&secret, &peer).unwrap();
    let after = after_drop(secret, |s| group.shared(s, &peer).ok().map(|z| *z));
    assert_ne!(after, Some(shared), "the DH exponent survives the destructor");
}

#[test]
fn chk_076_rsa_private_key_zeroized_on_drop() {
    let key = pem::parse_private_pem(DC_KEY_PEM.as_bytes()).unwrap();
    assert!(key.primes_bytes().is_some());
    let (d, primes) = after_drop(key, |k| (*k.d_bytes(), k.primes_bytes().map(|(p, q)| (*p, *q))));
    assert_eq!(d, [0; 256], "RSA d survives the destructor");
    let (p, q) = primes.unwrap();
    assert_eq!((p, q), ([0; 256], [0; 256]), "RSA p, q survive the destructor");
}

#[test]
fn chk_076_rsa_inner_data_zeroized_on_drop() {
    let key = pem::parse_private_pem(DC_KEY_PEM.as_bytes()).unwrap();
    let inner = [0x42u8; 100];
    let block = rsa::rsa_pad_encrypt(key.public_key(), &inner, &mut rng(3)).unwrap();
    let data = rsa::decrypt_inner_data(&key, &block, &mut rng(4), &[100]).unwrap();
    assert_eq!(&data.data()[..100], &inner[..]);
    let left = after_drop(data, |d| d.data().to_vec());
    assert!(
        left.iter().all(|&b| b == 0),
        "decrypted p_q_inner_data survives the destructor"
    );
}

#[test]
fn chk_076_proxy_secret_zeroized_on_drop() {
    let secret = ProxySecret::from_bytes(&[0x33; 16]).unwrap();
    let stream = |s: &ProxySecret| {
        let (init, mut obf) = client_init(Framing::Intermediate, None, Some(s), &mut rng(5)).unwrap();
        let mut buf = [0u8; 32];
        obf.encrypt(&mut buf);
        (init, buf)
    };
    let before = stream(&secret);
    let after = after_drop(secret, |s| stream(s));
    assert_ne!(after, before, "the MTProxy secret survives the destructor");
}

#[test]
fn chk_076_fake_tls_secret_zeroized_on_drop() {
    let secret = FakeTlsSecret::new(&[0x44; 16], b"example.com").unwrap();
    let hello = |s: &FakeTlsSecret| {
        client_hello(s, 1_700_000_000, &mut rng(6))
            .ok()
            .map(|(h, _)| h.to_vec())
    };
    let before = hello(&secret).unwrap();
    let (after, domain_len) = after_drop(secret, |s| (hello(s), s.domain().len()));
    assert_ne!(after, Some(before), "the fake-TLS key survives the destructor");
    assert_eq!(domain_len, 0);
}

#[test]
fn chk_076_file_key_zeroized_on_drop() {
    let (key, iv) = ([0x66; 32], [0x77; 32]);
    let part = |e: &mut FileEncryptor| {
        let mut p = [0x10u8; 64];
        e.encrypt_part(&mut p).unwrap();
        p
    };
    let before = part(&mut FileEncryptor::new(&key, &iv));
    let zero = part(&mut FileEncryptor::new(&[0; 32], &[0; 32]));
    let after = after_drop(FileEncryptor::new(&key, &iv), |e| part(e));
    assert_ne!(after, before, "the file key/iv survive the destructor");
    assert_eq!(after, zero);
}

#[test]
fn chk_076_srp_password_hash_and_verifier_zeroized_on_drop() {
    let kdf = CheckedKdf::new(DhGroup::telegram(3).unwrap(), &[1; 8], &[2; 16]).unwrap();
    let hash = kdf.hash_password(b"hunter2");
    let mut g_to_0 = [0u8; 256];
    g_to_0[255] = 1;
    let v = kdf.verifier(&hash);
    assert_ne!(v.as_bytes(), &g_to_0);
    // x wiped means the dropped hash proves nothing: its verifier is g^0 = 1.
    let after = after_drop(hash, |h| *kdf.verifier(h).as_bytes());
    assert_eq!(after, g_to_0, "the password hash x survives the destructor");
    let left = after_drop(v, |v| *v.as_bytes());
    assert_eq!(left, [0; 256], "the verifier survives the destructor");
}

#[test]
fn chk_076_srp_server_secrets_zeroized_on_drop() {
    let kdf = CheckedKdf::new(DhGroup::telegram(3).unwrap(), &[1; 8], &[2; 16]).unwrap();
    let hash = kdf.hash_password(b"hunter2");
    let server = SrpServer::new(&kdf, &kdf.verifier(&hash), &mut rng(7)).unwrap();
    let proof = kdf.prove(&hash, server.srp_b(), server.srp_id(), &mut rng(8)).unwrap();
    assert_eq!(server.check(proof.srp_id, &proof.a, &proof.m1), Ok(()));
    // With b and v wiped, S = (A·0^u)^0 = 1 and the same proof no longer verifies.
    let after = after_drop(server, |s| s.check(proof.srp_id, &proof.a, &proof.m1));
    assert_eq!(
        after,
        Err(SrpError::WrongPassword),
        "the DC's b and v survive the destructor"
    );
}
