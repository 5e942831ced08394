//! Role-channel and failure-hygiene checks that cut across modules: docs/CHECKLIST.md items 41, 74, 75 and attack B18.
//!
//! Timing itself is not asserted here (timing assertions are flaky on shared machines); instead these tests pin
//! the properties that make the code constant-time or leak-free: what a rejected packet leaves behind, that RSA
//! blinding really draws fresh randomness, that secret comparisons go through `subtle`, and that no variable-time
//! RSA implementation can enter the dependency graph.

use std::path::Path;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::rand_core::{TryCryptoRng, TryRng};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A CSPRNG wrapper that counts the bytes drawn from it.
struct Counting<R> {
    inner: R,
    drawn: usize,
}

impl<R: TryRng> TryRng for Counting<R> {
    type Error = R::Error;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.drawn += 4;
        self.inner.try_next_u32()
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.drawn += 8;
        self.inner.try_next_u64()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.drawn += dst.len();
        self.inner.try_fill_bytes(dst)
    }
}

impl<R: TryCryptoRng> TryCryptoRng for Counting<R> {}

fn valid_packet(key: &AuthKey, body_len: usize) -> Vec<u8> {
    let header = MessageHeader {
        salt: 0x1122_3344_5566_7788,
        session_id: 0x0102_0304_0506_0708,
        msg_id: 0x6777_e5ed_0001_a2b4,
        seq_no: 7,
    };
    let body: Vec<u8> = (0..body_len).map(|i| (i * 7 + 3) as u8).collect();
    let mut out = vec![0u8; body_len + 2048];
    let mut rng = StdRng::seed_from_u64(41);
    let n = packet::encrypt(key, Direction::ServerToClient, &header, &body, &mut rng, &mut out)
        .unwrap()
        .len;
    out.truncate(n);
    out
}

/// Item 41: a rejected packet is dropped whole; nothing of its (partial) plaintext survives in the caller's buffer,
/// whichever check failed.
#[test]
fn chk_041_rejected_packet_leaves_no_plaintext_behind() {
    let key = AuthKey::from_bytes(core::array::from_fn(|i| (i * 13 + 5) as u8));
    let good = valid_packet(&key, 256);
    let mut tampered_cases: Vec<Vec<u8>> = Vec::new();
    for pos in [24, 40, 64, 100, good.len() - 1] {
        let mut p = good.clone();
        p[pos] ^= 0x01;
        tampered_cases.push(p);
    }
    // Wrong direction (reflection) and a truncated tail.
    tampered_cases.push(good.clone());
    let mut short = good.clone();
    short.truncate(good.len() - 16);
    tampered_cases.push(short);

    for (i, mut p) in tampered_cases.into_iter().enumerate() {
        let dir = if i == 5 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        assert!(packet::decrypt(&key, dir, &mut p).is_err(), "case {i} accepted");
        // The auth_key_id and msg_key are public; everything after them must not hold decrypted bytes.
        assert!(
            p[24..].iter().all(|&b| b == 0),
            "case {i}: plaintext left in the buffer"
        );
    }

    // Control: the untampered packet decrypts, so the zeroing above is the rejection path, not a broken packet.
    let mut p = good.clone();
    let v = packet::decrypt(&key, Direction::ServerToClient, &mut p).unwrap();
    assert_eq!(v.body().len(), 256);
}

/// Item 74: every comparison of a secret-derived value (msg_key in both layers, the handshake's SHA-1 and
/// new_nonce_hash checks, the RSA_PAD hash) goes through `subtle::ConstantTimeEq`, and none of them is written
/// with `==`. This is a source audit: it fails if a constant-time comparison is replaced by a plain one.
#[test]
fn chk_074_secret_comparisons_use_constant_time_eq() {
    let required: &[(&str, &str)] = &[
        ("src/crypto/packet.rs", "msg_key_from_large(&large).ct_eq(msg_key)"),
        ("src/crypto/packet.rs", "sha1_msg_key(covered).ct_eq(&msg_key)"),
        ("src/crypto/rsa.rs", "want.ct_eq(hash)"),
        ("src/crypto/rsa.rs", "digest.ct_eq(hash)"),
        ("src/handshake/mod.rs", "digest.ct_eq(hash)"),
        ("src/handshake/client.rs", "want.ct_eq(&f.new_nonce_hash)"),
    ];
    for (file, needle) in required {
        assert!(read(file).contains(needle), "{file} no longer compares with `{needle}`");
    }
    let forbidden = [
        "msg_key ==",
        "== msg_key",
        "msg_key !=",
        "!= msg_key",
        "new_nonce_hash ==",
        "== f.new_nonce_hash",
        "digest == ",
        "== digest",
        "fingerprint == key_fp",
    ];
    let mut files: Vec<String> = [
        "src/crypto/packet.rs",
        "src/crypto/rsa.rs",
        "src/crypto/kdf.rs",
        "src/handshake/client.rs",
        "src/handshake/server.rs",
        "src/handshake/mod.rs",
        "src/e2e/chat.rs",
    ]
    .map(String::from)
    .to_vec();
    for entry in std::fs::read_dir(root().join("src/e2e/chat")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        files.push(format!("src/e2e/chat/{name}"));
    }
    for file in &files {
        let text = read(file);
        for pat in forbidden {
            assert!(!text.contains(pat), "{file} compares a secret with `{pat}`");
        }
    }
}

/// Item 75: the DC's RSA private operation is blinded: every decryption draws fresh randomness (a blinding factor
/// the size of the modulus) and still yields the same plaintext, and the exponentiation by d is crypto-bigint's
/// constant-time `pow`, never `pow_vartime`.
#[test]
fn chk_075_rsa_private_operation_is_blinded_and_constant_time() {
    let pem = read("tests/data/keys/dc_test_pkcs1.pem");
    let key = parse_private_pem(pem.as_bytes()).unwrap();
    let block: [u8; 256] = core::array::from_fn(|i| if i == 0 { 0x01 } else { (i * 31) as u8 });
    let mut r1 = Counting {
        inner: StdRng::seed_from_u64(1),
        drawn: 0,
    };
    let mut r2 = Counting {
        inner: StdRng::seed_from_u64(2),
        drawn: 0,
    };
    let m1 = key.decrypt_raw(&block, &mut r1).unwrap();
    let m2 = key.decrypt_raw(&block, &mut r2).unwrap();
    assert_eq!(*m1, *m2, "blinding must not change the result");
    assert!(
        r1.drawn >= 256 && r2.drawn >= 256,
        "no blinding factor drawn ({} / {} bytes)",
        r1.drawn,
        r2.drawn
    );

    let src = read("src/crypto/rsa.rs");
    let body = src.split("fn private_op").nth(1).expect("private_op exists");
    let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
    assert!(
        body.contains(".pow(&self.d)"),
        "d must be used with the constant-time pow"
    );
    assert!(!body.contains("pow_vartime(&self.d)"), "d must never meet pow_vartime");
}

/// B18 (Marvin, RUSTSEC-2023-0071): no variable-time RSA implementation can be in the build. The `rsa` crate and
/// `num-bigint-dig` (its bignum) are absent from the lock file, and `num-bigint` is only a dev-dependency oracle.
#[test]
fn atk_b18_no_variable_time_rsa_in_the_dependency_graph() {
    let lock = read("Cargo.lock");
    for banned in ["rsa", "num-bigint-dig"] {
        assert!(
            !lock.contains(&format!("name = \"{banned}\"\n")),
            "Cargo.lock contains the `{banned}` crate"
        );
    }
    let manifest = read("Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("a [dependencies] table");
    for banned in ["num-bigint", "rsa ", "rsa=", "num-bigint-dig"] {
        assert!(!deps.contains(banned), "`{banned}` is a normal dependency");
    }
    assert!(
        deps.contains("crypto-bigint"),
        "bignums come from constant-time crypto-bigint"
    );
}
