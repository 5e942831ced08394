//! CPU cost of two-step verification (src/client/srp.rs): the client's whole proof (`compute_check`: group and B
//! checks, the 100,000-iteration PBKDF2-HMAC-SHA512, three constant-time modexps), the DC's side (drawing b and B,
//! then checking a proof), and beside them the floor the KDF cannot go under: 100,000 HMAC-SHA512 of a 64-byte
//! message on a prepared (keyed) state, what each PBKDF2 iteration is. The proof minus the floor is the SRP
//! arithmetic.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use mtproto_sansio::client::srp::{CheckedKdf, PBKDF2_ITERATIONS, PasswordKdf, SrpServer, compute_check};
use mtproto_sansio::crypto::dh::{DhGroup, PrimeCache};
use rand::{SeedableRng, rngs::StdRng};
use sha2::Sha512;

const SALT1: [u8; 40] = [0x11; 40];
const SALT2: [u8; 16] = [0x22; 16];
const PASSWORD: &[u8] = b"correct horse battery staple";

fn bench(c: &mut Criterion) {
    let group = DhGroup::telegram(3).unwrap();
    let p = group.prime_bytes();
    let dc = CheckedKdf::new(group, &SALT1, &SALT2).unwrap();
    let verifier = dc.verifier(&dc.hash_password(PASSWORD));
    let mut rng = StdRng::seed_from_u64(1);
    let server = SrpServer::new(&dc, &verifier, &mut rng).unwrap();
    let kdf = PasswordKdf {
        salt1: &SALT1,
        salt2: &SALT2,
        g: 3,
        p: &p,
    };
    let mut primes = PrimeCache::<1>::default();
    let proof = compute_check(PASSWORD, &kdf, server.srp_b(), server.srp_id(), &mut primes, &mut rng).unwrap();
    server.check(proof.srp_id, &proof.a, &proof.m1).unwrap();

    let mut g = c.benchmark_group("srp");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("client_proof", |b| {
        b.iter(|| compute_check(PASSWORD, &kdf, server.srp_b(), server.srp_id(), &mut primes, &mut rng).unwrap())
    });
    g.bench_function("hmac_sha512_x100000", |b| {
        let keyed = <Hmac<Sha512> as KeyInit>::new_from_slice(&[0x33; 32]).unwrap();
        b.iter(|| {
            let mut u = [0x44u8; 64];
            for _ in 0..PBKDF2_ITERATIONS {
                let mut mac = keyed.clone();
                mac.update(&u);
                u = mac.finalize().into_bytes().into();
            }
            black_box(u)
        })
    });
    g.bench_function("dc_new", |b| {
        b.iter(|| SrpServer::new(&dc, &verifier, &mut rng).unwrap())
    });
    g.bench_function("dc_check", |b| {
        b.iter(|| server.check(proof.srp_id, &proof.a, &proof.m1).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
