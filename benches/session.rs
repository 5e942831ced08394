//! One full RPC round trip through both engines per message size: client `send` + `poll_packet` (encrypt), DC
//! `handle_packet` (decrypt, checks) + `poll_event` + `answer` + `poll_packet`, client `handle_packet` +
//! `poll_event`; beside raw SHA-256 + AES-256-IGE over the same bytes. Prints a summary line per size. The figure to
//! beat is grammers-mtproto's full send + receive of a 64-byte message, 1.89 us on this machine class.
//!
//! `inflate_flood` (item 50, attack B14): the DC's time to take a 64 KiB packet of `gzip_packed` members that each
//! inflate a whole buffer and then fail, next to a 64 KiB packet of acks; the printed ratio is what a hostile client
//! gains per byte it sends (`cargo bench --bench session -- inflate_flood`).

use std::hint::black_box;
use std::time::Instant as StdInstant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mtproto_sansio::crypto::aes::ige_encrypt;
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader, PaddingPolicy};
use mtproto_sansio::session::{Clock, Event, MsgKind, Session, SessionConfig};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::{self, TlWrite};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

const RX: usize = 65_536;
type E = Session<RX, RX, 32>;
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
        let cfg = SessionConfig {
            ping_interval: None,
            future_salts: false,
            ..SessionConfig::DEFAULT
        };
        let clock = Clock::from_unix_hint(now, UnixTime(1_700_000_000));
        let mut s = Box::new(E::server(
            SessionConfig {
                padding,
                ..SessionConfig::DEFAULT
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

/// What the packets of a [`Flood`] pool carry, each filling a 64 KiB packet.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `gzip_packed` members that each inflate a whole buffer (64 KiB) and then fail (item 50's attack).
    Inflating,
    /// The same members with a DEFLATE stream refused at its first byte (each still sets up an inflater).
    BadDeflate,
    /// The same members with their gzip magic broken (refused before anything is set up).
    BadMagic,
    /// One `msgs_ack`.
    Acks,
}

/// A DC engine and a pool of distinct client packets of one kind (each under fresh msg_ids, so none is a replay).
struct Flood {
    s: Box<E>,
    packets: Vec<Vec<u8>>,
    next: usize,
    members: usize,
}

const FLOOD_POOL: usize = 64;
const UNIX0: u64 = 1_700_000_000;

fn enc<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; v.tl_len()];
    tl::encode(v, &mut b).unwrap();
    b
}

/// A gzip member inflating `RX` (64 KiB) zero bytes whose CRC is broken: all of it is inflated before it fails. Its
/// DEFLATE stream is zlib's at level 9 (78 bytes), written out so the bench needs no compressor (`alloc`).
fn failing_gzip() -> Vec<u8> {
    let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    g.extend_from_slice(&[
        0xed, 0xc1, 0x01, 0x01, 0, 0, 0, 0x80, 0x90, 0xfe, 0xaf, 0xee, 0x08, 0x0a,
    ]);
    g.extend_from_slice(&[0; 63]);
    g.push(0x6a);
    g.extend_from_slice(&(crc32fast::hash(&[0u8; RX]) ^ 1).to_le_bytes());
    g.extend_from_slice(&(RX as u32).to_le_bytes());
    g
}

impl Flood {
    fn new(kind: Kind) -> Self {
        let now = Instant::from_secs(1000);
        let mut rng = StdRng::seed_from_u64(7);
        let key = AuthKey::from_bytes(core::array::from_fn(|i| (i * 7) as u8));
        let clock = Clock::from_unix_hint(now, UnixTime(UNIX0));
        let mut s = Box::new(E::server(SessionConfig::DEFAULT, key.clone(), clock, now, &mut rng));
        s.approve_first_session(); // the only engine under this key
        let salt = s.current_salt();
        let mut next_id = 1u64;
        let mut id = || {
            next_id += 1;
            (UNIX0 << 32) | (next_id * 4)
        };
        let seal = |msg_id: u64, seq_no: u32, body: &[u8]| {
            let h = MessageHeader {
                salt,
                session_id: 0x0b0b,
                msg_id,
                seq_no,
            };
            let mut out = vec![0u8; body.len() + 2048];
            let mut r = StdRng::seed_from_u64(msg_id);
            let e = packet::encrypt(&key, Direction::ClientToServer, &h, body, &mut r, &mut out).unwrap();
            out.truncate(e.len);
            out
        };
        // The session's first packet (new_session_created), outside the pool.
        let first = seal(id(), 1, &enc(&tl::Ping { ping_id: 1 }));
        s.handle_packet(now, &first).unwrap();
        while s.poll_event().is_some() {}
        let mut gz = failing_gzip();
        match kind {
            Kind::BadDeflate => gz[10] = 0xff,
            Kind::BadMagic => gz[0] = 0x1e,
            Kind::Inflating | Kind::Acks => {}
        }
        let member = enc(&tl::GzipPacked { packed_data: &gz });
        let mut members = if kind == Kind::Acks {
            (RX - 64) / 8
        } else {
            RX / (member.len() + 16)
        };
        let mut seq = 2u32;
        let mut packets = Vec::new();
        while packets.len() < FLOOD_POOL {
            let body = if kind == Kind::Acks {
                let acked: Vec<i64> = (0..members as i64)
                    .map(|i| ((UNIX0 as i64) << 32) | (i * 4 + 1))
                    .collect();
                enc(&tl::MsgsAck {
                    msg_ids: tl::TlVec::from_slice(&acked),
                })
            } else {
                let ids: Vec<u64> = (0..members).map(|_| id()).collect();
                let msgs: Vec<tl::Message<'_>> = ids
                    .iter()
                    .map(|&i| {
                        seq += 2;
                        tl::Message::new(i as i64, seq as i32 - 1, &member)
                    })
                    .collect();
                enc(&tl::MsgContainer::new(&msgs))
            };
            let pk = seal(id(), seq, &body);
            if pk.len() > RX {
                members -= 1;
                continue;
            }
            packets.push(pk);
        }
        Flood {
            s,
            packets,
            next: 0,
            members,
        }
    }

    /// Processes the next packet of the pool; `None` when the pool is used up.
    fn once(&mut self) -> Option<()> {
        let pk = self.packets.get(self.next)?;
        self.next += 1;
        let now = Instant::from_secs(1000);
        black_box(self.s.handle_packet(now, pk)).unwrap();
        while self.s.poll_event().is_some() {}
        Some(())
    }

    /// Mean µs per packet over `rounds` fresh pools (each built outside the timing), members per packet, and the
    /// inflate work per packet.
    fn mean_us(kind: Kind, rounds: usize) -> (f64, usize, u64) {
        let (mut ns, mut n, mut work, mut members) = (0u128, 0usize, 0u64, 0);
        for _ in 0..rounds {
            let mut f = Flood::new(kind);
            members = f.members;
            let before = f.s.stats().inflate_work;
            let t = StdInstant::now();
            while f.once().is_some() {
                n += 1;
            }
            ns += t.elapsed().as_nanos();
            work = work.max((f.s.stats().inflate_work - before) / FLOOD_POOL as u64);
        }
        (ns as f64 / n as f64 / 1000.0, members, work)
    }
}

fn bench_inflate(c: &mut Criterion) {
    let (inflating, members, work) = Flood::mean_us(Kind::Inflating, 4);
    let (bad_deflate, ..) = Flood::mean_us(Kind::BadDeflate, 4);
    let (bad_magic, ..) = Flood::mean_us(Kind::BadMagic, 4);
    let (acks, ids, _) = Flood::mean_us(Kind::Acks, 4);
    println!(
        "DC, one 64 KiB packet: {members} gzip_packed members inflating 64 KiB each then failing {inflating:.0} us \
         ({work} bytes of inflate work); the same refused at the first DEFLATE byte {bad_deflate:.0} us, at the gzip \
         magic {bad_magic:.0} us; one msgs_ack of {ids} ids {acks:.0} us. Ratio failing gzip / acks {:.2}, failing \
         gzip / same members refused at the magic {:.2}",
        inflating / acks,
        inflating / bad_magic
    );
    let mut g = c.benchmark_group("inflate_flood");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(2));
    g.throughput(Throughput::Bytes(RX as u64));
    for (name, kind) in [("failing_gzip_64k", Kind::Inflating), ("acks_64k", Kind::Acks)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut f = Flood::new(kind);
                for _ in 0..iters {
                    if f.next == f.packets.len() {
                        f = Flood::new(kind);
                    }
                    let t = StdInstant::now();
                    f.once();
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_inflate);
criterion_main!(benches);
