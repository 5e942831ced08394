//! CPU cost of the auth-key handshake: the client's side alone and the DC's side alone per full handshake (each
//! replays a recorded transcript against the same seeded RNG, so the other side's work is not counted), and pq
//! factoring of the worked example's pq. Goals: client ≤ 10 ms per handshake, factoring ≤ 50 µs.

use std::hint::black_box;
use std::time::{Duration, Instant as StdInstant};

use criterion::{Criterion, criterion_group, criterion_main};
use mtproto_sansio::crypto::factor::factor_pq;
use mtproto_sansio::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use mtproto_sansio::fuzzing::handshake::{Pair, dc_key};
use mtproto_sansio::handshake::{KeyKind, MAX_CLIENT_MESSAGE, MAX_SERVER_MESSAGE, ServerReply, Status};

/// The messages of one full handshake: what the client sent and what the DC answered.
fn transcript(key: &RsaPrivateKey, trusted: &[RsaPublicKey]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut p = Pair::new(key, trusted, KeyKind::Permanent, b"bench").unwrap();
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    while p.client.status() == Status::Running && p.client_send() {
        c2s.push(p.c2s[..p.c2s_len].to_vec());
        p.server_receive().unwrap();
        s2c.push(p.s2c[..p.s2c_len].to_vec());
        p.client_receive().unwrap();
    }
    assert_eq!(p.client.status(), Status::Done);
    (c2s, s2c)
}

/// The client's whole handshake against recorded DC answers.
fn client_side(key: &RsaPrivateKey, trusted: &[RsaPublicKey], s2c: &[Vec<u8>]) {
    let mut p = Pair::new(key, trusted, KeyKind::Permanent, b"bench").unwrap();
    let mut out = [0u8; MAX_CLIENT_MESSAGE];
    for answer in s2c {
        p.client
            .poll_transmit(p.now, &mut p.client_rng, &mut out)
            .unwrap()
            .unwrap();
        p.client.handle_packet(p.now, answer).unwrap();
    }
    assert!(black_box(p.client.take_outcome()).is_some());
}

/// The DC's whole handshake against recorded client messages.
fn dc_side(key: &RsaPrivateKey, trusted: &[RsaPublicKey], c2s: &[Vec<u8>]) {
    let mut p = Pair::new(key, trusted, KeyKind::Permanent, b"bench").unwrap();
    let mut out = [0u8; MAX_SERVER_MESSAGE];
    let mut done = false;
    for msg in c2s {
        let r = p
            .server
            .handle(p.now, &mut p.server_rng, 1, msg, &mut out, &|_| false)
            .unwrap();
        done |= matches!(black_box(r), ServerReply::Complete { .. });
    }
    assert!(done);
}

/// This thread's CPU time (user + system) from /proc, in clock ticks of 10 ms; `None` off Linux.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// (wall, CPU) time per call, over `iters` calls after one warm-up. CPU time is what the goals are about: on a
/// shared, loaded machine wall time also counts time spent waiting for a core.
fn per_op(mut f: impl FnMut(), iters: u32) -> (Duration, Option<Duration>) {
    f();
    let c0 = thread_cpu();
    let t = StdInstant::now();
    for _ in 0..iters {
        f();
    }
    let wall = t.elapsed() / iters;
    let cpu = thread_cpu().zip(c0).map(|(b, a)| b.saturating_sub(a) / iters);
    (wall, cpu)
}

fn show(name: &str, (wall, cpu): (Duration, Option<Duration>), goal: &str) {
    let cpu = cpu.map_or("n/a".to_string(), |c| format!("{:.1} µs", c.as_secs_f64() * 1e6));
    println!(
        "handshake: {name}: wall {:.1} µs, CPU {cpu} (goal {goal})",
        wall.as_secs_f64() * 1e6
    );
}

/// Wall time of each client step, averaged over `iters` handshakes (the order of [`STEPS`]).
fn client_steps(key: &RsaPrivateKey, trusted: &[RsaPublicKey], s2c: &[Vec<u8>], iters: u32) -> [Duration; 6] {
    let mut acc = [Duration::ZERO; 6];
    for _ in 0..iters {
        let mut p = Pair::new(key, trusted, KeyKind::Permanent, b"bench").unwrap();
        let mut out = [0u8; MAX_CLIENT_MESSAGE];
        for (i, answer) in s2c.iter().enumerate() {
            let t = StdInstant::now();
            p.client
                .poll_transmit(p.now, &mut p.client_rng, &mut out)
                .unwrap()
                .unwrap();
            acc[2 * i] += t.elapsed();
            let t = StdInstant::now();
            p.client.handle_packet(p.now, answer).unwrap();
            acc[2 * i + 1] += t.elapsed();
        }
    }
    acc.map(|d| d / iters)
}

const STEPS: [&str; 6] = [
    "poll_transmit req_pq_multi",
    "handle_packet resPQ",
    "poll_transmit req_DH_params (factor + RSA_PAD)",
    "handle_packet server_DH_params_ok",
    "poll_transmit set_client_DH_params (2 modexps)",
    "handle_packet dh_gen_ok",
];

fn bench(c: &mut Criterion) {
    let key = dc_key().unwrap();
    let trusted = [*key.public_key()];
    let (c2s, s2c) = transcript(&key, &trusted);
    let sample_pq = 0x130B_7475_669F_EB8Bu64;

    show(
        "client per handshake",
        per_op(|| client_side(&key, &trusted, &s2c), 200),
        "≤ 10 ms",
    );
    show(
        "DC per handshake",
        per_op(|| dc_side(&key, &trusted, &c2s), 200),
        "none",
    );
    for (name, d) in STEPS.iter().zip(client_steps(&key, &trusted, &s2c, 100)) {
        println!("handshake: client step {name}: wall {:.1} µs", d.as_secs_f64() * 1e6);
    }
    show(
        "factor sample pq",
        per_op(|| assert!(black_box(factor_pq(black_box(sample_pq))).is_ok()), 3000),
        "≤ 50 µs",
    );

    let mut g = c.benchmark_group("handshake");
    g.sample_size(20);
    g.bench_function("client_cpu_per_handshake", |b| {
        b.iter(|| client_side(&key, &trusted, &s2c))
    });
    g.bench_function("dc_cpu_per_handshake", |b| b.iter(|| dc_side(&key, &trusted, &c2s)));
    g.bench_function("factor_sample_pq", |b| b.iter(|| factor_pq(black_box(sample_pq))));
    g.bench_function("pair_fixture_setup", |b| {
        b.iter(|| Pair::new(&key, &trusted, KeyKind::Permanent, b"bench").map(|p| black_box(p.now)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
