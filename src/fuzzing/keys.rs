//! Fuzz entry points for the public-key side of the handshake: DH group and value checks, pq factoring, PEM/DER
//! key parsing and RSA decryption in the DC role.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::crypto::{dh, factor, pem, rsa};
use crate::handshake::PQ_INNER_DATA_LENGTHS;

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[
    ("keys_dh_validate", keys_dh_validate),
    ("keys_pem", keys_pem),
    ("keys_rsa_decode", keys_rsa_decode),
];

/// A throwaway 2048-bit test DC key (also `tests/data/keys/dc_test_pkcs1.pem`); never used outside tests and fuzzing.
pub const FUZZ_DC_KEY_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA5dD3mNX7WLaaCW1KSz1z0IrL9q2PGQWkx0saHlB2d4EPI61e
LYfFIxpFF6TLZpCnkQ98T06rjPak1EHARSXEqGt+J8HGhpXo3z9z1APEFgd8zZDD
nwm/oOXNj/DiufT/nKsq/Yol78Lb0+Vic3hUmSXPvg1RbL90Jtd9PCmu3S0R62ja
MKBHtLOwhdBfF4DGa6T2c2vvrvF+OUclwCVLpzVIwcUOGucjUMJbskRaSIuq0nca
M/WVPQ24j2/RObEiMvOIHp8LNCYWmnk75EG9lD46YIL3iJBYUT/bhgQ2BeB3xHkq
W6xJivngzLO9LXNkE7GQ3kE/Eu8N7SKm7c9qBwIDAQABAoIBACdoa+yzVMRjm4pe
SU0ZnpB2HH+SR2V9CEJ8aGAmYAoiAVyWz/1yuKVKTeq+AXr29yTyyNg4n0YuzRjw
pW22CkDvHdTnb4mIj0Qo9021z5wPcKE3X7QX0dpfTZ6PKfHFR0ewOlD7rYGtolB1
lypByg/w4eyvD/Vb5yj57qmwZCHc03O+hxUt+AApgfNnMVrvNWOhcSVG3pemT+BP
BWb8rNdq71uOHv9zxW6w1bnpZyMxQJiuNw8DYBl8WlyVnRtjQZbz1FoKIBnvDbT2
hIpXwBqraLwHlO92faS5adL8bwHL5laEbe03/J0v/lSbwDJ4VM8vT0rqKCw8Saov
Xj4u7mECgYEA9DXw8NEZOPXgN95D8EgJ9mRQ0naasfBnHMUAJ8Ui1Y0ibNxoF+Fn
F5RJathIMCf8pqBx2qzx1+gc6tlZQVwpZ2jiKMe0unZa+FlHljLGuUYAEsZHage1
OfSMqcPC3fQJidjV29OqyPaIHfZAssN/KfvejFfihTD7rxKeQgI8A/kCgYEA8Oki
MekvX7O4f1S9kxKyiLVktOWJNtpbX7Vz66pSVNdVcxjy1zVKieFqToFYfXzmOPR/
FKxdGjVbggPnmNFbg7PwZy3DliChtmx4dVW3duD0xYZz17JBd1ACo1R+/Ij1IeUD
p8pvE8Gr3FZhEmG9wQGiTbBMKJVyB15Al3TGXf8CgYEAqMOmMCWwUobIXpOBS8nc
6KNGn0tLeHB0MZOKmfFIM2AHTEe8v9QLFGZrniS9LlpT5Sq3w7EEqHpFkZ6Gaf6w
tj/rGtd38+vazgmUyR1p65uObWsM6x9MhDKWCrO4NP5yoQpyMCpEugB07I/DAkbL
2E2w7DfH2NeS9tfc+izlILECgYA479COHT9+Ddq/9UYsuVGKr9xSSKGKXkcUMq1n
+EQnGxFt92qFZGnudmEKltVUKy26LkbOmwISDKRI8SVOX8SSNvfNWuqL08CEfdRm
XtDSfs461NESHGYOjdFhyrmMc84Dqb2YbWadM7urgprEnmcbc4hpdg451UAy75qy
cP3k/wKBgQDgO7gbkJk3rNG+ZcxGHSdinUa5+/REJo1sy3Mtniis2AiRziWkG/Pp
sFJbBPKI77GaLOuziwJHQlGreBFqEd4UtgPNn+VsaOc5D9xbHpSpUKsxUyl8h1Lx
rIf4k7xA6U/fyIn10qEq/Gvf2P2t0/MlUeJ+0Rsfz0yZ22jRAfQFxQ==
-----END RSA PRIVATE KEY-----
";

#[cfg_attr(feature = "defmt", derive(defmt::Format))]
/// A deterministic RNG for fuzzing (a fuzz run must be reproducible from its input alone). Not a real CSPRNG.
pub struct FuzzRng(u64);

impl FuzzRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        FuzzRng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
}

impl rand_core::TryRng for FuzzRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.try_next_u64().map(|v| (v >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            for (d, s) in chunk.iter_mut().zip(v.iter()) {
                *d = *s;
            }
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FuzzRng {}

/// First byte selects the check; the rest is the value. Accepted values must satisfy the invariants the checks
/// promise.
pub fn keys_dh_validate(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut rng = FuzzRng::new(u64::from(sel));
    match sel % 4 {
        0 => {
            // A group with g from the selector byte; whatever is accepted must echo back the normalised prime.
            let g = u32::from(sel >> 2) % 9;
            let mut cache = dh::PrimeCache::<1>::new(dh::MIN_MR_ROUNDS);
            if let Ok(group) = dh::check_group(rest, g, &mut cache, &mut rng) {
                assert!((2..=7).contains(&group.g()));
                assert_eq!(dh::normalize_be(rest).ok(), Some(group.prime_bytes()));
            }
        }
        1 => {
            let Ok(group) = dh::DhGroup::telegram(3) else {
                return;
            };
            if group.check_public(rest).is_ok() {
                let v = dh::normalize_be(rest).unwrap_or([0; 256]);
                let p = group.prime_bytes();
                let mut low = [0u8; 256];
                if let Some(b) = low.get_mut(256 - 249) {
                    *b = 1; // 2^1984
                }
                assert!(v >= low && v < p);
            }
        }
        2 => {
            if let Ok((p, q)) = factor::factor_pq_bytes(rest) {
                assert!(p < q && factor::is_prime_u64(p) && factor::is_prime_u64(q));
                assert!(p.checked_mul(q).is_some_and(|pq| pq <= factor::MAX_PQ));
            }
        }
        _ => {
            let _ = dh::normalize_be(rest);
        }
    }
}

/// Parses arbitrary bytes as public and private PEM; every accepted key must re-encode to PKCS#1 and parse back
/// to the same key.
pub fn keys_pem(data: &[u8]) {
    let mut out = [0u8; 2048];
    if let Ok(key) = pem::parse_public_pem(data) {
        // Any accepted key is a 2048-bit key, whose PKCS#1 PEM always fits the buffer.
        let written = pem::write_public_pem(&key, &mut out);
        assert!(written.is_ok());
        let again = pem::parse_public_pem(out.get(..written.unwrap_or(0)).unwrap_or_default());
        assert_eq!(again, Ok(key));
    }
    if let Ok(key) = pem::parse_private_pem(data) {
        // Parsed private keys always carry p and q, so PKCS#1 export cannot lack them.
        let written = pem::write_private_pem(&key, &mut out);
        assert!(written.is_ok());
        let again = pem::parse_private_pem(out.get(..written.unwrap_or(0)).unwrap_or_default());
        assert!(again.is_ok_and(|k| k.public_key() == key.public_key() && k.d_bytes() == key.d_bytes()));
    }
    let _ = pem::parse_pkcs1_public_der(data);
    let _ = pem::parse_spki_der(data);
    let _ = pem::parse_pkcs8_der(data);
    let _ = pem::parse_pkcs1_private_der(data);
}

/// Decrypts an arbitrary 256-byte block with the embedded test key, in both the RSA_PAD and the combined decoder.
/// A valid-looking block must round-trip: accepted data re-encrypted and decrypted again gives the same bytes.
pub fn keys_rsa_decode(data: &[u8]) {
    let Ok(key) = pem::parse_private_pem(FUZZ_DC_KEY_PEM.as_bytes()) else {
        return;
    };
    let mut block = [0u8; rsa::RSA_BYTES];
    for (b, d) in block.iter_mut().zip(data.iter()) {
        *b = *d;
    }
    let mut rng = FuzzRng::new(data.len() as u64);
    let pad = rsa::rsa_pad_decrypt(&key, &block, &mut rng);
    // The DC's candidate lengths, plus 40 for the checked-in legacy seed block.
    let mut lengths = [40usize; 1 + PQ_INNER_DATA_LENGTHS.len()];
    for (l, c) in lengths.iter_mut().skip(1).zip(PQ_INNER_DATA_LENGTHS) {
        *l = c;
    }
    let combined = rsa::decrypt_inner_data(&key, &block, &mut rng, &lengths);
    // The fuzz input as a raw plaintext: the decoder's work must not depend on it (item 24, B4).
    let mut work = rsa::DecodeWork::default();
    let (direct, direct_ok) = rsa::decode_inner_plain_metered(&block, &lengths, &mut work);
    let mut reference = rsa::DecodeWork::default();
    let _ = rsa::decode_inner_plain_metered(&[0u8; rsa::RSA_BYTES], &lengths, &mut reference);
    assert_eq!(work, reference);
    if !bool::from(direct_ok) {
        assert!(direct.data().is_empty());
    }
    if let Ok(inner) = &pad {
        assert!(combined.as_ref().is_ok_and(|c| c.data() == &inner[..]));
    }
    if let Ok(inner) = combined {
        assert!(inner.data().len() <= rsa::LEGACY_MAX_DATA);
        if inner.encoding() == rsa::InnerEncoding::LegacySha1 {
            assert!(pad.is_err());
        }
    }
}
