//! Time from "start" to "signed in" for each sign-in flow of our client (`test-dc/src/tg_client.rs`) against a
//! three-DC test_dc on loopback, beside the round trips the flow needed: queries (one round trip each: the client
//! sends one at a time) and handshakes (three round trips each: `req_pq_multi`, `req_DH_params`,
//! `set_client_DH_params`). Every run starts from an empty store (a new key), except "restart", which starts from
//! the store of a signed-in bot and makes one call.
//!
//! `cargo run --release --example client_signin_times -- [RUNS]` (default 9).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use mtproto_sansio::client::DcId;
use mtproto_sansio::client::router::Target;
use mtproto_sansio::client::signin::{SignIn, SignInConfig};
use mtproto_sansio::client::store::MemoryStore;
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::time::UnixTime;
use mtproto_test_dc::dc::{self, ClusterOptions, DcOptions};
use mtproto_test_dc::tg_client::{Prompt, Reply, Stats, TgClient, TgConfig};

const KEY_PKCS1: &str = include_str!("../tests/data/keys/dc_test_pkcs1.pem");
const API_HASH: &[u8] = b"0123456789abcdef0123456789abcdef";

fn user(phone: &str) -> impl FnMut(Prompt<'_>) -> Reply + '_ {
    move |p| match p {
        Prompt::Code => Reply::Code(phone.as_bytes()[5..6].repeat(5)),
        Prompt::SignUp => Reply::SignUp(b"Ada".to_vec(), Vec::new()),
        Prompt::Password => Reply::Password(b"pw".to_vec()),
        Prompt::QrToken(_) => Reply::Wait,
    }
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(9);
    let public = *parse_private_pem(KEY_PKCS1.as_bytes()).unwrap().public_key();
    let dcs = (0..3)
        .map(|_| DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: parse_private_pem(KEY_PKCS1.as_bytes()).unwrap(),
            secret: None,
            faketls: None,
            dc_id: None,
            max_conns: 256,
            keys_file: None,
            verbose: false,
        })
        .collect();
    let passwords = (0..runs)
        .map(|i| (format!("99966{}{:04}", 2, 5000 + i), "pw".to_owned()))
        .collect();
    let c = dc::start_cluster(ClusterOptions {
        dcs,
        auto_register: false,
        passwords,
    })
    .unwrap();
    let cfg = || {
        TgConfig::new(
            vec![public],
            (1..=3)
                .map(|n| (DcId::new(n).unwrap(), c.dc(n as i32).unwrap().addr))
                .collect(),
        )
    };
    let signin = || SignInConfig::new(1, API_HASH);
    type Flow<'a> = Box<dyn FnMut(usize) -> (Duration, Stats) + 'a>;
    let mut flows: Vec<(&str, Flow<'_>)> = Vec::new();
    flows.push((
        "bot (home DC)",
        Box::new(|i| {
            let t = Instant::now();
            let mut cl = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            let token = format!("{}:x", 1000 + i);
            cl.sign_in(SignIn::bot(signin(), token.as_bytes()).unwrap(), &mut |_| Reply::Wait)
                .unwrap();
            (t.elapsed(), cl.stats)
        }),
    ));
    flows.push((
        "phone code, sign-up after PHONE_MIGRATE_2",
        Box::new(|i| {
            let phone = format!("99966{}{:04}", 2, 1000 + i);
            let t = Instant::now();
            let mut cl = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            cl.sign_in(SignIn::phone(signin(), phone.as_bytes()).unwrap(), &mut user(&phone))
                .unwrap();
            (t.elapsed(), cl.stats)
        }),
    ));
    flows.push((
        "phone code, existing account, on its DC",
        Box::new(|i| {
            let phone = format!("99966{}{:04}", 1, 1000 + i);
            let mut cl = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            cl.sign_in(SignIn::phone(signin(), phone.as_bytes()).unwrap(), &mut user(&phone))
                .unwrap();
            let t = Instant::now();
            let mut cl = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            cl.sign_in(SignIn::phone(signin(), phone.as_bytes()).unwrap(), &mut user(&phone))
                .unwrap();
            (t.elapsed(), cl.stats)
        }),
    ));
    flows.push((
        "two-step password (SRP), after PHONE_MIGRATE_2",
        Box::new(|i| {
            let phone = format!("99966{}{:04}", 2, 5000 + i);
            let mut cl = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            cl.sign_in(SignIn::phone(signin(), phone.as_bytes()).unwrap(), &mut user(&phone))
                .unwrap();
            let t = Instant::now();
            let mut cl = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            cl.sign_in(SignIn::phone(signin(), phone.as_bytes()).unwrap(), &mut user(&phone))
                .unwrap();
            (t.elapsed(), cl.stats)
        }),
    ));
    flows.push((
        "QR login accepted on DC 3 (loginTokenMigrateTo)",
        Box::new(|i| {
            let phone = format!("99966{}{:04}", 3, 1000 + i);
            let mut b = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            b.sign_in(SignIn::phone(signin(), phone.as_bytes()).unwrap(), &mut user(&phone))
                .unwrap();
            let t = Instant::now();
            let mut a = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            let flow = SignIn::qr(
                signin(),
                &[],
                mtproto_test_dc::client::now(),
                UnixTime(mtproto_test_dc::client::unix_micros_at_zero() / 1_000_000),
            );
            let mut accepted = false;
            a.sign_in(flow, &mut |p| {
                if let Prompt::QrToken(token) = p
                    && !accepted
                {
                    accepted = true;
                    b.accept_login_token(token).unwrap().unwrap();
                }
                Reply::Wait
            })
            .unwrap();
            (t.elapsed(), a.stats)
        }),
    ));
    flows.push((
        "restart signed in (bot, from the store): first call answered",
        Box::new(|i| {
            let mut cl = TgClient::start(cfg(), MemoryStore::new()).unwrap();
            let token = format!("{}:y", 3000 + i);
            cl.sign_in(SignIn::bot(signin(), token.as_bytes()).unwrap(), &mut |_| Reply::Wait)
                .unwrap();
            let store = cl.into_store();
            let t = Instant::now();
            let mut cl = TgClient::start(cfg(), store).unwrap();
            cl.me(Target::Home).unwrap().unwrap();
            (t.elapsed(), cl.stats)
        }),
    ));
    println!("| flow | median | min–max | queries | handshakes | round trips |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, f) in &mut flows {
        let mut times = Vec::new();
        let mut stats = Stats::default();
        for i in 0..runs {
            let (t, s) = f(i);
            times.push(t);
            stats = s;
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {name} | {:.1} ms | {:.1}–{:.1} ms | {} | {} | {} |",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1]),
            stats.queries,
            stats.handshakes,
            stats.queries + 3 * stats.handshakes
        );
    }
}
