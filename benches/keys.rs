//! Timing of the public-key side of the handshake: pq factoring, RSA_PAD encryption, the blinded constant-time RSA
//! decryption of the DC role, and DH modular exponentiation.

use criterion::{Criterion, criterion_group, criterion_main};
use mtproto_sansio::crypto::{dh::DhGroup, factor, pem, rsa};
use rand::{SeedableRng, rngs::StdRng};
use std::hint::black_box;

const DC_KEY: &str = include_str!("../tests/data/keys/dc_test_pkcs1.pem");

fn keys(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    c.bench_function("factor_pq 0x130B7475669FEB8B", |b| {
        b.iter(|| factor::factor_pq(black_box(0x130B_7475_669F_EB8B)))
    });
    c.bench_function("factor_pq 0x17ED48941A08F981", |b| {
        b.iter(|| factor::factor_pq(black_box(0x17ED_4894_1A08_F981)))
    });
    // The two samples are one draw each of a random process (ECM's curve count), so the mean over many products of
    // two 31-bit primes, as the DC's random_pq makes them, is the figure that counts.
    let pqs: Vec<u64> = {
        let mut r = StdRng::seed_from_u64(7);
        (0..64).map(|_| factor::random_pq(&mut r).0).collect()
    };
    let mut g = c.benchmark_group("factor_pq random");
    g.throughput(criterion::Throughput::Elements(pqs.len() as u64));
    g.bench_function("64 products of two 31-bit primes", |b| {
        b.iter(|| {
            for &pq in &pqs {
                black_box(factor::factor_pq(black_box(pq))).unwrap();
            }
        })
    });
    g.finish();
    let data = [0x42u8; 100];
    c.bench_function("rsa_pad_encrypt", |b| {
        b.iter(|| rsa::rsa_pad_encrypt(&rsa::TELEGRAM_KEYS[0], black_box(&data), &mut rng))
    });
    let key = pem::parse_private_pem(DC_KEY.as_bytes()).unwrap();
    let block = rsa::rsa_pad_encrypt(key.public_key(), &data, &mut rng).unwrap();
    c.bench_function("rsa_pad_decrypt (blinded, constant-time)", |b| {
        b.iter(|| rsa::rsa_pad_decrypt(&key, black_box(&block), &mut rng))
    });
    for bits in [2048u32, 256] {
        let group = DhGroup::telegram(3).unwrap().with_exponent_bits(bits);
        let (secret, public) = group.gen_keypair(&mut rng).unwrap();
        c.bench_function(&format!("dh shared, {bits}-bit exponent"), |b| {
            b.iter(|| group.shared(&secret, black_box(&public)))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = keys
}
criterion_main!(benches);
