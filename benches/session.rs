//! One full RPC round trip through both engines per message size: client `send` + `poll_packet` (encrypt), DC
//! `handle_packet` (decrypt, checks) + `poll_event` + `answer` + `poll_packet`, client `handle_packet` +
//! `poll_event`; beside raw SHA-256 + AES-256-IGE over the same bytes. Prints a summary line per size. The figure to
//! beat is grammers-mtproto's full send + receive of a 64-byte message, 1.89 us on this machine class.

use std::hint::black_box;
use std::time::Instant as StdInstant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mtproto_sansio::crypto::aes::ige_encrypt;
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::PaddingPolicy;
use mtproto_sansio::session::{Clock, Engine, EngineConfig, Event, MsgKind};
use mtproto_sansio::time::{Instant, UnixTime};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

const RX: usize = 65_536;
type E = Engine<RX, RX, 32>;
const SIZES: [usize; 3] = [64, 1024, 16 * 1024];

struct RoundTrip {
    c: Box<E>,
    s: Box<E>,
    rng: StdRng,
    body: Vec<u8>,
    out: Vec<u8>,
    now: Instant,
}

impl RoundTrip {
    fn new(size: usize, padding: PaddingPolicy) -> Self {
        let now = Instant::from_secs(1000);
        let mut rng = StdRng::seed_from_u64(1);
        let key = AuthKey::from_bytes(core::array::from_fn(|i| i as u8));
        let cfg = EngineConfig {
            ping_interval: None,
            future_salts: false,
            ..EngineConfig::DEFAULT
        };
        let clock = Clock::from_unix_hint(now, UnixTime(1_700_000_000));
        let mut s = Box::new(E::server(
            EngineConfig {
                padding,
                ..EngineConfig::DEFAULT
            },
            key.clone(),
            clock,
            now,
            &mut rng,
        ));
        s.approve_first_session(); // the only engine under this key
        let c = Box::new(E::client(cfg, key, s.current_salt(), clock, now, &mut rng));
        let mut body = vec![0u8; size];
        body[..4].copy_from_slice(&0x0bad_f00du32.to_le_bytes());
        let mut rt = RoundTrip {
            c,
            s,
            rng,
            body,
            out: vec![0u8; RX + 64],
            now,
        };
        for _ in 0..64 {
            rt.once();
        }
        rt
    }

    /// One query and its answer; returns the answer's length.
    fn once(&mut self) -> usize {
        let now = self.now;
        self.c.send(now, &self.body, MsgKind::Query).unwrap();
        while let Some(p) = self.c.poll_packet(now, &mut self.rng, &mut self.out).unwrap() {
            let _ = self.s.handle_packet(now, &self.out[..p.len]);
        }
        let mut req = None;
        while let Some(ev) = self.s.poll_event() {
            if let Event::Request { msg_id, .. } = ev {
                req = Some(msg_id);
            }
        }
        self.s.answer(now, req.unwrap(), &self.body).unwrap();
        while let Some(p) = self.s.poll_packet(now, &mut self.rng, &mut self.out).unwrap() {
            let _ = self.c.handle_packet(now, &self.out[..p.len]);
        }
        let mut n = 0;
        while let Some(ev) = self.c.poll_event() {
            if let Event::RpcResult { body, .. } = ev {
                n = body.len();
            }
        }
        assert_eq!(n, self.body.len());
        n
    }
}

fn raw(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) -> u8 {
    let h = Sha256::digest(&*buf);
    ige_encrypt(key, iv, buf).unwrap();
    h[0] ^ buf[0]
}

fn summary(size: usize, padding: PaddingPolicy, label: &str) {
    let mut rt = RoundTrip::new(size, padding);
    let iters = (2_000_000 / (size + 512)).max(200);
    let t = StdInstant::now();
    for _ in 0..iters {
        black_box(rt.once());
    }
    let rtt = t.elapsed().as_nanos() as f64 / iters as f64;
    let mut buf = vec![0u8; (size + 32 + 12).next_multiple_of(16)];
    let (k, iv) = ([1u8; 32], [2u8; 32]);
    let t = StdInstant::now();
    for _ in 0..iters * 4 {
        black_box(raw(&mut buf, &k, &iv));
    }
    let r = t.elapsed().as_nanos() as f64 / (iters * 4) as f64;
    println!(
        "session round trip {size:>6} B ({label} padding): {:>9.0} ns (4 packet crypto ops, {:.0} ns per send+receive); raw SHA-256+IGE of the message {:>8.0} ns, x4 = {:>9.0} ns; ratio {:.2}",
        rtt,
        rtt / 2.0,
        r,
        4.0 * r,
        rtt / (4.0 * r)
    );
}

fn bench(c: &mut Criterion) {
    for size in SIZES {
        summary(size, PaddingPolicy::MINIMAL, "minimal");
        summary(size, PaddingPolicy::DEFAULT, "default");
        let mut g = c.benchmark_group(format!("session_{size}"));
        g.throughput(Throughput::Bytes(size as u64));
        let mut rt = RoundTrip::new(size, PaddingPolicy::MINIMAL);
        g.bench_function("round_trip", |b| b.iter(|| black_box(rt.once())));
        let mut buf = vec![0u8; (size + 32 + 12).next_multiple_of(16)];
        g.bench_function("raw_sha256_ige", |b| {
            b.iter(|| black_box(raw(&mut buf, &[1; 32], &[2; 32])))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
