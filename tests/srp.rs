//! Two-step verification (src/client/srp.rs): the KDF's primitives against published vectors, the whole client
//! against Telethon's `telethon.password.compute_check` (a recorded vector), our client against our DC side, and
//! the checks of the spec (docs/CHECKLIST.md items 16, 17, 18, 56, 74, 75) each with an input that only that check
//! refuses.
//!
//! Each full proof runs the 100,000-iteration PBKDF2 (tens of milliseconds at the test profile's opt-level 3), so
//! the tests share hashes where they can.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use core::convert::Infallible;
use core::num::NonZeroU32;

use hex_literal::hex;
use hmac::{Hmac, KeyInit, Mac};
use mtproto_sansio::client::srp::{
    self, CheckPasswordSrp, CheckedKdf, MAX_SALT_BYTES, MIN_SALT_BYTES, NEW_SALT1_RANDOM_BYTES, PasswordKdf, SrpError,
    SrpServer, Verifier,
};
use mtproto_sansio::crypto::dh::{DhError, DhGroup, PrimeCache};
use mtproto_sansio::rand_core::{TryCryptoRng, TryRng};
use mtproto_sansio::{Fault, client::srp::compute_check};
use num_bigint::BigUint;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sha2::{Digest, Sha256, Sha512};

const SALT1: [u8; 40] = {
    let mut s = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        s[i] = i as u8 + 1;
        i += 1;
    }
    s
};
const SALT2: [u8; 16] = hex!("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
const PASSWORD: &[u8] = b"correct horse battery staple";

// Recorded with `python3 tests/data/srp_telethon.py` (Telethon 1.45.0's telethon.password.compute_check and
// compute_digest; the script says how B was made). p is Telegram's prime, g = 3, the salts and password above.
const TELETHON_SRP_ID: i64 = 0x1122_3344_5566_7788;
const TELETHON_V: [u8; 256] = hex!(
    "554bb90953717b3f92355fc1a662169f838e749c1c45e510d7ae4fc23eb3237a458c4b58cf6c704f1389f47e2de9a9736044bb4230997ede"
    "68aa59ba2e7add3f36f7717e8dc00b73d6f569b424bf230cc266bfdbc50e32532740a78bea04681cb77ce9852914baeda980a6a977624c3d"
    "b20dbb88400f16b515517517f2646fa9bcfcb33a20c283b4725b7680856827384674bf21b0dd72f75147f079ae16150e98610705063cb777"
    "59ae0edd7878f33c80e60de26592f0dd52b60ec8140fb308bb123b9e0097bdf545dee6678370474ff6e41a073eefec32cced0007a369b08c"
    "5b2be6dc368d00a7adc35b947deed0b562abe776ec457f674ce94e00fdcf458e"
);
const TELETHON_SRP_B: [u8; 256] = hex!(
    "1edc4d5cb2f1528a24b68146de308bacc82d507b11a313ca41218ea1eb13fb4998a10604fafb3d7d24be3e8ebb5975a05b003416415d0038"
    "606d18bdf18a02ee5e0eb77f68912f1b93a8e78bd0e7c1c03f2904399ba09fdf7fd7eadbb36909e24d97eed0fab99813c49d27d885808442"
    "de25d3ea6085c6a07d1be62d1615209672788d0cf7d787a494e369369862f990c1c790a2b987af91d6435c181c3ed13f5928cd2b30543a8e"
    "9c7b572e34e61c01012d7e96038b5588aca1ffc4c6550714d840a3b3c06a81b78b8956657af0d4c02ad3cd2e18aee286502c0d6ba37f2088"
    "20c5fa8348aa54a98bde038e23e02a2dac2fed41c2077480f9472d1204e453ec"
);
const TELETHON_A: [u8; 256] = hex!(
    "61ba2c3580b2a6b2e9938628919338223bee385ca19edcf17f617947f5a13cd8f526570a3272e7a05c86e59c64e3c924d7ffdcef71b16ac7"
    "8c99bbb9aa48ab50cc8b8899474dbb74f84c6dbd704ddde3965a3cd84455212f0079bd144b74924bc3bf8167c3c9404aff53e1c9fe753abb"
    "bd6541363b5a139a80b239debedb82081ddb7701bb0b67d8cac031ebb8d6a703d6d3a2b2c7e89b21b6068a50dd22691ed0113df6338dfe21"
    "1d532376583a4867f9f65eedd5985302c98f579cc4d033d5b5518ddd01c8aa8f095fbfe87a44288fb65b736955e7364e995ffd7a46caaf98"
    "0ad953b79813fa42cecd37c1f36e304b314ba22dbf96ce3919f70b9d20f182d2"
);
const TELETHON_M1: [u8; 32] = hex!("24c5bcc0dc904f3e0f4ece0b158df60aed1f99d941383a709f2a6fbe427ae858");

/// The script's secrets: SHA-512 of a label, repeated to 256 bytes.
fn script_secret(label: &[u8]) -> [u8; 256] {
    let d = Sha512::digest(label);
    core::array::from_fn(|i| d[i % 64])
}

/// An RNG that hands out `script` first (to `fill_bytes`), then falls back to a seeded generator: how a test puts a
/// recorded a or b into the code path that draws it.
struct Scripted {
    script: Vec<u8>,
    rest: StdRng,
}

impl Scripted {
    fn new(script: &[u8]) -> Self {
        Scripted {
            script: script.to_vec(),
            rest: StdRng::seed_from_u64(99),
        }
    }
}

impl TryRng for Scripted {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.rest.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.rest.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let n = dst.len().min(self.script.len());
        dst[..n].copy_from_slice(&self.script[..n]);
        self.script.drain(..n);
        self.rest.fill_bytes(&mut dst[n..]);
        Ok(())
    }
}

impl TryCryptoRng for Scripted {}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn p_bytes() -> [u8; 256] {
    DhGroup::telegram(3).unwrap().prime_bytes()
}

fn kdf(p: &[u8]) -> PasswordKdf<'_> {
    PasswordKdf {
        salt1: &SALT1,
        salt2: &SALT2,
        g: 3,
        p,
    }
}

fn checked(p: &[u8]) -> CheckedKdf<'_> {
    kdf(p).check(&mut PrimeCache::<2>::default(), &mut rng(1)).unwrap()
}

fn big(bytes: &[u8]) -> BigUint {
    BigUint::from_bytes_be(bytes)
}

fn be256(n: &BigUint) -> [u8; 256] {
    let b = n.to_bytes_be();
    let mut out = [0u8; 256];
    out[256 - b.len()..].copy_from_slice(&b);
    out
}

/// k = H(p | g), computed here with num-bigint and sha2 independently of the crate.
fn k_of(p: &[u8; 256], g: u32) -> BigUint {
    let mut gb = [0u8; 256];
    gb[252..].copy_from_slice(&g.to_be_bytes());
    big(&Sha256::new().chain_update(p).chain_update(gb).finalize())
}

#[test]
fn hmac_sha512_rfc4231() {
    let mac = |key: &[u8], data: &[u8]| -> [u8; 64] {
        let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().into()
    };
    // RFC 4231 test cases 1, 2 and 6 (a key longer than the block).
    assert_eq!(
        mac(&[0x0b; 20], b"Hi There"),
        hex!(
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
        )
    );
    assert_eq!(
        mac(b"Jefe", b"what do ya want for nothing?"),
        hex!(
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        )
    );
    assert_eq!(
        mac(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
        hex!(
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"
        )
    );
}

/// PBKDF2-HMAC-SHA512 against the widely published vectors (the RFC 6070 inputs with SHA-512), checked with
/// Python's `hashlib.pbkdf2_hmac`, plus an output of one and a half blocks (block index and truncation).
#[test]
fn pbkdf2_hmac_sha512_vectors() {
    let run =
        |p: &[u8], s: &[u8], c: u32, out: &mut [u8]| srp::pbkdf2_hmac_sha512(p, s, NonZeroU32::new(c).unwrap(), out);
    let mut out = [0u8; 64];
    run(b"password", b"salt", 1, &mut out);
    assert_eq!(
        out,
        hex!(
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"
        )
    );
    run(b"password", b"salt", 2, &mut out);
    assert_eq!(
        out,
        hex!(
            "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e"
        )
    );
    run(b"password", b"salt", 4096, &mut out);
    assert_eq!(
        out,
        hex!(
            "d197b1b33db0143e018b12f3d1d1479e6cdebdcc97c5c0f87f6902e072f457b5143f30602641b3d55cd335988cb36b84376060ecd532e039b742a239434af2d5"
        )
    );
    run(
        b"passwordPASSWORDpassword",
        b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
        4096,
        &mut out,
    );
    assert_eq!(
        out,
        hex!(
            "8c0511f4c6e597c6ac6315d8f0362e225f3c501495ba23b868c005174dc4ee71115b59f9e60cd9532fa33e0f75aefe30225c583a186cd82bd4daea9724a3d3b8"
        )
    );
    let mut long = [0u8; 100];
    run(b"password", b"salt", 3, &mut long);
    assert_eq!(
        long,
        hex!(
            "b6b07cb2cebf4ad84468391a543824fccffe0e0769dbe6bddf10a65673c4b648e612d44918f9ce9a19a1294cf5140628084ba994c3b21a4ef4741220b811c633cfc0641fccbcc4164f1bbfcb1f33f595ae9aa4a33ddcce570157775980362c0ee28aa340"
        )
    );
    // The KDF's own shape: a 32-byte key, a 40-byte salt, 100,000 iterations.
    run(&[b'x'; 32], &[b'y'; 40], srp::PBKDF2_ITERATIONS, &mut out);
    assert_eq!(
        out,
        hex!(
            "788cf603afaf68f8519ce4cfa6ae12f8c584ff45ad19244486ebd0a143b0d5877804cc3421a4e100f57dcf23a333a6a306eb29c6845ed729141c9be8aab6f4fe"
        )
    );
}

/// Our client and our DC against Telethon's recorded run: the verifier (Telethon's `compute_digest`), the DC's B
/// from the same b, and the client's A and M1 from the same a all match byte for byte, and our DC accepts
/// Telethon's proof.
#[test]
fn srp_matches_telethon_compute_check() {
    let p = p_bytes();
    let kdf = checked(&p);
    let hash = kdf.hash_password(PASSWORD);
    let verifier = kdf.verifier(&hash);
    assert_eq!(
        verifier.as_bytes(),
        &TELETHON_V,
        "v = g^x differs from Telethon's compute_digest"
    );

    let mut dc_rng = Scripted::new(&script_secret(b"srp b"));
    let server = SrpServer::new(&kdf, &verifier, &mut dc_rng).unwrap();
    assert_eq!(
        server.srp_b(),
        &TELETHON_SRP_B,
        "B = k*v + g^b differs from the script's"
    );

    let a = script_secret(b"srp a");
    let ours = kdf
        .prove_with_secret(&hash, &TELETHON_SRP_B, TELETHON_SRP_ID, &a)
        .unwrap();
    assert_eq!(
        ours,
        CheckPasswordSrp {
            srp_id: TELETHON_SRP_ID,
            a: TELETHON_A,
            m1: TELETHON_M1
        }
    );
    // The same a drawn from an RNG goes through the same path.
    let drawn = kdf
        .prove(&hash, &TELETHON_SRP_B, TELETHON_SRP_ID, &mut Scripted::new(&a))
        .unwrap();
    assert_eq!(drawn, ours);

    let server_id = server.srp_id();
    assert_eq!(server.check(server_id, &TELETHON_A, &TELETHON_M1), Ok(()));
}

/// Our client against our DC: the right password is accepted, a wrong one refused as `WrongPassword` (the
/// peer's fault), and a proof made for one run does not pass another run's check.
#[test]
fn srp_client_and_dc_right_password_accepted_wrong_refused() {
    let p = p_bytes();
    let dc_kdf = CheckedKdf::new(DhGroup::telegram(3).unwrap(), &SALT1, &SALT2).unwrap();
    let verifier = dc_kdf.verifier(&dc_kdf.hash_password(PASSWORD));
    let mut dc_rng = rng(7);
    let server = SrpServer::new(&dc_kdf, &verifier, &mut dc_rng).unwrap();

    let mut primes = PrimeCache::<2>::default();
    let mut client_rng = rng(8);
    let good = compute_check(
        PASSWORD,
        &kdf(&p),
        server.srp_b(),
        server.srp_id(),
        &mut primes,
        &mut client_rng,
    )
    .unwrap();
    assert_eq!(server.check(good.srp_id, &good.a, &good.m1), Ok(()));

    let bad = compute_check(
        b"correct horse battery stapler",
        &kdf(&p),
        server.srp_b(),
        server.srp_id(),
        &mut primes,
        &mut client_rng,
    )
    .unwrap();
    let err = server.check(bad.srp_id, &bad.a, &bad.m1).unwrap_err();
    assert_eq!(err, SrpError::WrongPassword);
    assert_eq!(err.fault(), Fault::Peer);

    // Same password, another run: the old proof is bound to the old B and does not verify.
    let other = SrpServer::new(&dc_kdf, &verifier, &mut dc_rng).unwrap();
    assert_eq!(
        other.check(other.srp_id(), &good.a, &good.m1),
        Err(SrpError::WrongPassword)
    );
    assert_eq!(
        server.check(other.srp_id(), &good.a, &good.m1),
        Err(SrpError::SrpIdMismatch)
    );
    // A truncated or extended M1 is a wrong proof, not a panic.
    assert_eq!(
        server.check(good.srp_id, &good.a, &good.m1[..31]),
        Err(SrpError::WrongPassword)
    );
    let mut long = good.m1.to_vec();
    long.push(0);
    assert_eq!(server.check(good.srp_id, &good.a, &long), Err(SrpError::WrongPassword));
}

/// Setting a password: salt1 is the DC's plus 32 random bytes, `new_password_hash` is v under the new salts, and a
/// DC that stores it (checked by `Verifier::from_bytes`) accepts the new password.
#[test]
fn srp_new_password_then_sign_in() {
    let p = p_bytes();
    let server_salt1 = [0x55u8; 8];
    let mut client_rng = rng(21);
    let salt1 = srp::new_salt1(&server_salt1, &mut client_rng).unwrap();
    assert_eq!(salt1.len(), 8 + NEW_SALT1_RANDOM_BYTES);
    assert_eq!(&salt1[..8], &server_salt1);
    assert_ne!(&salt1[8..], &[0u8; 32]);
    let new_algo = PasswordKdf {
        salt1: &salt1,
        salt2: &SALT2,
        g: 3,
        p: &p,
    };
    let client_kdf = new_algo
        .check(&mut PrimeCache::<1>::default(), &mut client_rng)
        .unwrap();
    let new_password_hash = client_kdf.verifier(&client_kdf.hash_password(b"new secret"));

    let dc_kdf = CheckedKdf::new(DhGroup::telegram(3).unwrap(), &salt1, &SALT2).unwrap();
    let stored = Verifier::from_bytes(&dc_kdf, new_password_hash.as_bytes()).unwrap();
    let server = SrpServer::new(&dc_kdf, &stored, &mut rng(22)).unwrap();
    let check = compute_check(
        b"new secret",
        &new_algo,
        server.srp_b(),
        server.srp_id(),
        &mut PrimeCache::<1>::default(),
        &mut client_rng,
    )
    .unwrap();
    assert_eq!(server.check(check.srp_id, &check.a, &check.m1), Ok(()));

    assert_eq!(
        srp::new_salt1(&[0; MAX_SALT_BYTES - 31], &mut client_rng),
        Err(SrpError::SaltTooLong)
    );
}

/// A verifier from a client is a number 1 < v < p − 1 of at most 256 bytes.
#[test]
fn srp_verifier_from_client_is_range_checked() {
    let p = p_bytes();
    let kdf = checked(&p);
    let pb = big(&p);
    for v in [BigUint::from(0u8), BigUint::from(1u8), &pb - 1u8, pb.clone(), &pb + 1u8] {
        assert_eq!(
            Verifier::from_bytes(&kdf, &be256(&v)).unwrap_err(),
            SrpError::VerifierRange,
            "{v:x}"
        );
    }
    assert_eq!(
        Verifier::from_bytes(&kdf, &[1; 257]).unwrap_err(),
        SrpError::VerifierRange
    );
    assert!(Verifier::from_bytes(&kdf, &[2]).is_ok());
    assert!(Verifier::from_bytes(&kdf, &be256(&(&pb - 2u8))).is_ok());
}

/// Salts shorter than 8 bytes (an unsalted password) or longer than the bound are the DC's error.
#[test]
fn srp_salt_lengths_are_bounded() {
    let p = p_bytes();
    let short = [1u8; MIN_SALT_BYTES - 1];
    let long = [1u8; MAX_SALT_BYTES + 1];
    for (s1, s2) in [
        (&short[..], &SALT2[..]),
        (&SALT1[..], &short[..]),
        (&long[..], &SALT2[..]),
        (&SALT1[..], &long[..]),
        (&[][..], &SALT2[..]),
    ] {
        let k = PasswordKdf {
            salt1: s1,
            salt2: s2,
            g: 3,
            p: &p,
        };
        let err = k.check(&mut PrimeCache::<1>::default(), &mut rng(1)).unwrap_err();
        assert_eq!(err, SrpError::SaltLength);
        assert_eq!(err.fault(), Fault::Peer);
        assert_eq!(
            CheckedKdf::new(DhGroup::telegram(3).unwrap(), s1, s2).unwrap_err(),
            SrpError::SaltLength
        );
    }
    assert!(
        CheckedKdf::new(
            DhGroup::telegram(3).unwrap(),
            &[1; MIN_SALT_BYTES],
            &[1; MAX_SALT_BYTES]
        )
        .is_ok()
    );
}

/// Item 16 for the KDF's p and g: the same rules as the handshake's `dh_prime`, through the same check, before any
/// hashing.
#[test]
fn chk_016_srp_group_is_checked() {
    let p = p_bytes();
    let pb = big(&p);
    let mut primes = PrimeCache::<4>::default();
    let mut r = rng(3);
    let try_group = |p: &[u8], g: u32, primes: &mut PrimeCache<4>, r: &mut StdRng| {
        PasswordKdf {
            salt1: &SALT1,
            salt2: &SALT2,
            g,
            p,
        }
        .check(primes, r)
        .map(|_| ())
    };
    let p_minus_2 = be256(&(&pb - 2u8));
    // g = 4 has no residue condition, so p − 2 reaches the primality test.
    assert_eq!(
        try_group(&p_minus_2, 4, &mut primes, &mut r),
        Err(SrpError::Group(DhError::NotSafePrime))
    );
    assert_eq!(
        try_group(&p[1..], 3, &mut primes, &mut r),
        Err(SrpError::Group(DhError::PrimeSize))
    );
    assert_eq!(
        try_group(&[1; 257], 3, &mut primes, &mut r),
        Err(SrpError::Group(DhError::TooLong))
    );
    assert_eq!(
        try_group(&p, 8, &mut primes, &mut r),
        Err(SrpError::Group(DhError::Generator))
    );
    // Telegram's prime is 3 mod 8, 3 mod 5 and 11 mod 24, so g = 2, 5 and 6 fail the residue rule: they do not
    // generate the subgroup of order (p − 1)/2 (Euler's criterion agrees). Telethon's fast path for this prime
    // accepts g = 5 as well; TDLib's check_config, like this crate, refuses it.
    for g in [2, 5, 6] {
        assert_eq!(
            try_group(&p, g, &mut primes, &mut r),
            Err(SrpError::Group(DhError::GeneratorResidue)),
            "g = {g}"
        );
    }
    for g in [3, 4, 7] {
        assert_eq!(try_group(&p, g, &mut primes, &mut r), Ok(()), "g = {g}");
    }
    // The client refuses before hashing the password: a whole compute_check with a bad group is as quick as the
    // group check (no PBKDF2), and says why.
    assert_eq!(
        compute_check(
            PASSWORD,
            &PasswordKdf {
                g: 4,
                ..kdf(&p_minus_2)
            },
            &TELETHON_SRP_B,
            1,
            &mut primes,
            &mut r
        ),
        Err(SrpError::Group(DhError::NotSafePrime))
    );
    assert_eq!(SrpError::Group(DhError::NotSafePrime).fault(), Fault::Peer);
}

/// 0 < B < p: B = 0, p, p + 1 and 2^2048 − 1 are refused (the spec's rule; B ≡ 0 would make g^b = −k·v).
#[test]
fn chk_017_srp_b_outside_0_p_rejected() {
    let p = p_bytes();
    let pb = big(&p);
    let ck = checked(&p);
    let all_ones = [0xff; 256];
    for b in [be256(&BigUint::from(0u8)), p, be256(&(&pb + 1u8)), all_ones] {
        assert_eq!(ck.check_srp_b(&b), Err(SrpError::BRange));
        assert_eq!(
            compute_check(PASSWORD, &kdf(&p), &b, 1, &mut PrimeCache::<1>::default(), &mut rng(1)),
            Err(SrpError::BRange)
        );
    }
    assert_eq!(ck.check_srp_b(&[0]), Err(SrpError::BRange));
    assert_eq!(ck.check_srp_b(&[1]), Ok(()));
}

/// Item 17 on the server's real DH value g^b = B − k·v: B's that pass 0 < B < p but put g^b on 0, 1, p − 1 or just
/// outside [2^1984, p − 2^1984] are refused; the edges themselves are accepted.
#[test]
fn chk_017_srp_g_b_out_of_range_rejected() {
    let p = p_bytes();
    let pb = big(&p);
    let kdf = checked(&p);
    let hash = kdf.hash_password(PASSWORD);
    let v = big(kdf.verifier(&hash).as_bytes());
    let kv = (k_of(&p, 3) * v) % &pb;
    let margin: BigUint = BigUint::from(1u8) << 1984u32;
    let b_for = |gb: &BigUint| be256(&((&kv + gb) % &pb));
    for gb in [
        BigUint::from(0u8),
        BigUint::from(1u8),
        &margin - 1u8,
        &pb - &margin + 1u8,
        &pb - 1u8,
    ] {
        let b = b_for(&gb);
        assert_eq!(kdf.check_srp_b(&b), Ok(()), "B itself is in range");
        assert_eq!(
            kdf.prove(&hash, &b, 1, &mut rng(5)),
            Err(SrpError::GbRange),
            "g^b = {gb:x}"
        );
    }
    for gb in [margin.clone(), &pb - &margin] {
        assert!(kdf.prove(&hash, &b_for(&gb), 1, &mut rng(5)).is_ok());
    }
}

/// Item 17 on our own A: an a whose A = g^a is out of range is drawn again (a = 0, A = 1, first), and a
/// caller-given one is refused.
#[test]
fn chk_017_srp_own_a_out_of_range_is_redrawn() {
    let p = p_bytes();
    let kdf = checked(&p);
    let hash = kdf.hash_password(PASSWORD);
    assert_eq!(
        kdf.prove_with_secret(&hash, &TELETHON_SRP_B, 1, &[0; 256]),
        Err(SrpError::WeakSecret)
    );
    let mut one = [0u8; 256];
    one[255] = 1; // A = g = 3
    assert_eq!(
        kdf.prove_with_secret(&hash, &TELETHON_SRP_B, 1, &one),
        Err(SrpError::WeakSecret)
    );
    assert_eq!(SrpError::WeakSecret.fault(), Fault::Host);
    let drawn = kdf
        .prove(&hash, &TELETHON_SRP_B, 1, &mut Scripted::new(&[0; 256]))
        .unwrap();
    let a = big(&drawn.a);
    assert!(a >= BigUint::from(1u8) << 1984 && a <= big(&p) - (BigUint::from(1u8) << 1984u32));
}

/// Item 18: a generator that only produces zeros never yields a usable a (every A = 1), and the proof is refused
/// after a bounded number of draws rather than sent with a predictable a; the same for the DC's b.
#[test]
fn chk_018_srp_zero_rng_is_refused() {
    struct Zeros;
    impl TryRng for Zeros {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(0);
            Ok(())
        }
    }
    impl TryCryptoRng for Zeros {}
    let p = p_bytes();
    let kdf = checked(&p);
    let hash = kdf.hash_password(PASSWORD);
    assert_eq!(
        kdf.prove(&hash, &TELETHON_SRP_B, 1, &mut Zeros),
        Err(SrpError::KeygenFailed)
    );
    assert_eq!(
        SrpServer::new(&kdf, &kdf.verifier(&hash), &mut Zeros).unwrap_err(),
        SrpError::KeygenFailed
    );
    assert_eq!(SrpError::KeygenFailed.fault(), Fault::Host);
}

/// The DC refuses A ≡ 0 mod p and every A outside [2^1984, p − 2^1984]. A = 0 or p is the classic SRP bypass:
/// S = (A·v^u)^b = 0 whatever the password, so a client that knows nothing can compute M1 from K = H(0); the
/// test builds exactly that forged proof, which would pass without the range check.
#[test]
fn chk_017_srp_dc_refuses_a_zero_mod_p_and_out_of_range() {
    let p = p_bytes();
    let pb = big(&p);
    let kdf = checked(&p);
    let verifier = kdf.verifier(&kdf.hash_password(PASSWORD));
    let server = SrpServer::new(&kdf, &verifier, &mut rng(11)).unwrap();
    let id = server.srp_id();

    let h = |parts: &[&[u8]]| -> [u8; 32] {
        let mut d = Sha256::new();
        for p in parts {
            d.update(p);
        }
        d.finalize().into()
    };
    let mut g = [0u8; 256];
    g[255] = 3;
    let hp = h(&[&p]);
    let hg = h(&[&g]);
    let xor: Vec<u8> = hp.iter().zip(hg.iter()).map(|(a, b)| a ^ b).collect();
    let k_zero = h(&[&[0u8; 256]]);
    for a in [be256(&BigUint::from(0u8)), p] {
        let forged = h(&[&xor, &h(&[&SALT1]), &h(&[&SALT2]), &a, server.srp_b(), &k_zero]);
        assert_eq!(
            server.check(id, &a, &forged),
            Err(SrpError::ARange),
            "A = {:x}",
            big(&a)
        );
    }
    let margin: BigUint = BigUint::from(1u8) << 1984u32;
    for a in [
        BigUint::from(1u8),
        BigUint::from(2u8),
        &margin - 1u8,
        &pb - &margin + 1u8,
        &pb - 1u8,
        &pb + 1u8,
    ] {
        assert_eq!(
            server.check(id, &be256(&a), &[0; 32]),
            Err(SrpError::ARange),
            "A = {a:x}"
        );
    }
    // The edges are in range (the proof is wrong, so the check gets as far as M1).
    for a in [margin.clone(), &pb - &margin] {
        assert_eq!(server.check(id, &be256(&a), &[0; 32]), Err(SrpError::WrongPassword));
    }
    assert_eq!(SrpError::ARange.fault(), Fault::Peer);
}

/// Item 56: a B or an A of 257 significant bytes is refused before any arithmetic; leading zeros are not counted.
#[test]
fn chk_056_srp_257_byte_values_rejected() {
    let p = p_bytes();
    let kdf = checked(&p);
    let mut b257 = [0x11u8; 257];
    b257[0] = 1;
    assert_eq!(kdf.check_srp_b(&b257), Err(SrpError::BRange));
    let mut padded = vec![0u8; 300];
    padded[300 - 256..].copy_from_slice(&TELETHON_SRP_B);
    assert_eq!(kdf.check_srp_b(&padded), Ok(()));
    let verifier = kdf.verifier(&kdf.hash_password(PASSWORD));
    let server = SrpServer::new(&kdf, &verifier, &mut rng(12)).unwrap();
    assert_eq!(server.check(server.srp_id(), &b257, &[0; 32]), Err(SrpError::ARange));
}

/// Item 74: the DC compares M1 with `subtle`, never `==`.
#[test]
fn chk_074_srp_m1_compared_in_constant_time() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/client/srp.rs")).unwrap();
    assert!(
        src.contains("expected.as_slice().ct_eq(m1)"),
        "M1 must be compared with ct_eq"
    );
    for forbidden in [
        "expected == ",
        "== expected",
        "m1 ==",
        "== m1",
        "expected != ",
        "!= expected",
    ] {
        assert!(!src.contains(forbidden), "found `{forbidden}` in src/client/srp.rs");
    }
}

/// Item 75: every exponentiation in the SRP module runs in constant time: no `pow_vartime` anywhere, the secret
/// exponents go through `pow_amm`/`pow_bounded_exp` or the group's fixed ladder.
#[test]
fn chk_075_srp_secret_exponents_use_constant_time_pow() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/client/srp.rs")).unwrap();
    assert!(
        !src.contains("vartime"),
        "src/client/srp.rs must not use variable-time arithmetic"
    );
    for needle in [
        ".pow_amm(&e_red)",
        ".pow_amm(&self.secrets.b)",
        ".pow_bounded_exp(&u, 256)",
        "pow_g(&a, DH_BITS)",
        "pow_g(&b, DH_BITS)",
        "pow_g(&x, 256)",
    ] {
        assert!(src.contains(needle), "src/client/srp.rs no longer computes `{needle}`");
    }
}

/// Item 76: `Debug` shows no secret: the password hash, the verifier and the DC's state print no bytes.
#[test]
fn chk_076_srp_debug_hides_secrets() {
    let p = p_bytes();
    let kdf = checked(&p);
    let hash = kdf.hash_password(PASSWORD);
    let verifier = kdf.verifier(&hash);
    let server = SrpServer::new(&kdf, &verifier, &mut rng(13)).unwrap();
    assert_eq!(format!("{hash:?}"), "PasswordHash(..)");
    assert_eq!(format!("{verifier:?}"), "Verifier(..)");
    let s = format!("{server:?} {kdf:?}");
    assert!(!s.contains("secrets") && !s.contains('['), "{s}");
}
