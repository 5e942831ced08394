//! Two-step verification (the crate's `client::srp`), full build only: one client proof split into its two halves
//! (the group and salt checks with the 100,000-iteration PBKDF2-HMAC-SHA512 password hash, then the SRP arithmetic:
//! g^x, g^a and (B − k·v)^(a + u·x)) and the DC's side (drawing b and B, checking the proof), with the DC accepting
//! the proof as the check. The client's B check (0 < B < p) runs inside the proof half here, since the DC draws B
//! after the client has hashed the password.

use cortex_m_semihosting::hprintln;

use mtproto_sansio::client::srp::{CheckedKdf, PasswordKdf, SrpServer};
use mtproto_sansio::crypto::dh::{DhGroup, PrimeCache};

use crate::meter::measure;
use crate::rng::DemoRng;
use crate::{Report, fail};

const SALT1: [u8; 40] = [0x11; 40];
const SALT2: [u8; 16] = [0x22; 16];
const PASSWORD: &[u8] = b"correct horse battery staple";

#[inline(never)]
pub fn run(r: &mut Report, rng: &mut DemoRng) {
    let group = DhGroup::telegram(3).unwrap_or_else(|_| fail("SRP group"));
    let p = group.prime_bytes();
    let kdf = PasswordKdf {
        salt1: &SALT1,
        salt2: &SALT2,
        g: 3,
        p: &p,
    };
    let m = measure(|| {
        let checked = kdf.check(&mut PrimeCache::<1>::default(), rng).ok()?;
        let hash = checked.hash_password(PASSWORD);
        Some((checked, hash))
    });
    let hashing = r.line("SRP client: checks + PBKDF2 x100000 (x)", &m);
    let (checked, hash) = m.out.unwrap_or_else(|| fail("SRP client checks"));

    // The DC's stored verifier, from the same x (setting a password costs the client this PBKDF2 once more).
    let dc = CheckedKdf::new(group, &SALT1, &SALT2).unwrap_or_else(|_| fail("SRP DC KDF"));
    let verifier = dc.verifier(&hash);
    let m = measure(|| SrpServer::new(&dc, &verifier, rng));
    let dc_new = r.line("SRP DC: draw b, B = k*v + g^b", &m);
    let server = m.out.unwrap_or_else(|_| fail("SRP server"));

    let m = measure(|| checked.prove(&hash, server.srp_b(), server.srp_id(), rng));
    let proving = r.line("SRP client: g^x, g^a, S, M1", &m);
    let proof = m.out.unwrap_or_else(|_| fail("SRP proof"));
    let m = measure(|| server.check(proof.srp_id, &proof.a, &proof.m1));
    let dc_check = r.line("SRP DC: check A and M1", &m);
    r.check(m.out.is_ok(), "SRP proof accepted by the DC");
    hprintln!(
        "SRP client proof: {} instructions; DC: {} instructions (new + check)",
        hashing + proving,
        dc_new + dc_check
    );
}
