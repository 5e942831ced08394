//! Framing overhead per message of each carriage (encode on one end + decode on the other, in memory), beside raw
//! SHA-256 + AES-256-IGE of the same bytes, at 64 B and 16 KiB.
//!
//! Besides criterion's groups, prints one summary line per size (timed with `Instant`): ns per message.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mtproto_sansio::carriage::faketls::{RecordDecoder, RecordEncoder};
use mtproto_sansio::carriage::http::{HttpDecoder, HttpLimits, encode_request};
use mtproto_sansio::carriage::ws::{WsCodec, WsEvent};
use mtproto_sansio::crypto::aes::ige_encrypt;
use mtproto_sansio::transport::Role;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

const SIZES: [usize; 2] = [64, 16 * 1024];
const CAP: usize = 20 * 1024;

struct Fixture {
    body: Vec<u8>,
    wire: Vec<u8>,
    plain: Vec<u8>,
    rng: StdRng,
    http: Box<HttpDecoder<2048, CAP>>,
    ws_client: Box<WsCodec<0>>,
    ws_server: Box<WsCodec<CAP>>,
    tls_enc: RecordEncoder,
    tls_dec: RecordDecoder,
}

impl Fixture {
    fn new(size: usize) -> Self {
        Fixture {
            body: (0..size).map(|i| i as u8).collect(),
            wire: vec![0; size + 1024],
            plain: vec![0; size + 1024],
            rng: StdRng::seed_from_u64(1),
            http: Box::new(HttpDecoder::server(
                "/api",
                HttpLimits {
                    max_body: CAP,
                    ..HttpLimits::default()
                },
            )),
            ws_client: Box::new(WsCodec::new(Role::Client, 0)),
            ws_server: Box::new(WsCodec::new(Role::Server, CAP)),
            tls_enc: RecordEncoder::server(),
            tls_dec: RecordDecoder::new(16 * 1024 + 256),
        }
    }

    fn http(&mut self) -> usize {
        let n = encode_request("149.154.167.51", "/api", &self.body, &mut self.wire).unwrap_or(0);
        let k = self.http.feed(&self.wire[..n]).unwrap_or(0);
        assert_eq!(k, n);
        self.http.next_body().map_or(0, <[u8]>::len)
    }

    fn ws(&mut self) -> usize {
        let n = self
            .ws_client
            .encode_message(&self.body, &mut self.rng, &mut self.wire)
            .unwrap_or(0);
        match self.ws_server.decode(&self.wire[..n]) {
            Ok((_, Some(WsEvent::Message(m)))) => m.len(),
            _ => 0,
        }
    }

    fn tls(&mut self) -> usize {
        let n = self.tls_enc.encode(&self.body, &mut self.wire).unwrap_or(0);
        self.tls_dec
            .decode(&self.wire[..n], &mut self.plain)
            .map_or(0, |(_, p)| p)
    }

    fn raw(&mut self) -> usize {
        let digest: [u8; 32] = Sha256::digest(&self.body).into();
        self.plain[..self.body.len()].copy_from_slice(&self.body);
        let n = self.body.len() / 16 * 16;
        let _ = ige_encrypt(&digest, &[7; 32], &mut self.plain[..n]);
        n + usize::from(digest[0])
    }
}

fn time(f: &mut Fixture, op: fn(&mut Fixture) -> usize) -> f64 {
    let iters = if f.body.len() > 1024 { 20_000 } else { 500_000 };
    let start = Instant::now();
    for _ in 0..iters {
        black_box(op(f));
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn bench(c: &mut Criterion) {
    for size in SIZES {
        let mut g = c.benchmark_group(format!("carriage_{size}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.measurement_time(std::time::Duration::from_secs(2));
        g.warm_up_time(std::time::Duration::from_millis(500));
        let mut f = Fixture::new(size);
        g.bench_function("http_request_encode_decode", |b| b.iter(|| black_box(f.http())));
        g.bench_function("ws_masked_encode_decode", |b| b.iter(|| black_box(f.ws())));
        g.bench_function("faketls_records_encode_decode", |b| b.iter(|| black_box(f.tls())));
        g.bench_function("raw_sha256_plus_aes_ige", |b| b.iter(|| black_box(f.raw())));
        g.finish();
        let mut f = Fixture::new(size);
        let (h, w, t, r) = (
            time(&mut f, Fixture::http),
            time(&mut f, Fixture::ws),
            time(&mut f, Fixture::tls),
            time(&mut f, Fixture::raw),
        );
        println!(
            "summary {size:>6} B: http {h:.0} ns/msg, ws {w:.0} ns/msg, fake-TLS {t:.0} ns/msg; raw SHA-256+IGE {r:.0} ns"
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
