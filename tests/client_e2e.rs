//! Our client (`test-dc/src/tg_client.rs`: `client::signin`, `client::router`, `client::flood`, `client::store`
//! over the crate's client connection) against a real test_dc cluster of three DCs on loopback: bot sign-in,
//! phone code with `PHONE_MIGRATE`, two-step password (our SRP against the DC's), QR login approved by a second
//! client of ours, a restart from the SQLite store (signed in, on the right home DC, no new key or sign-in), and an
//! authorization copied to another DC. Then the same flows under a seeded fault schedule (connections dropped
//! mid-request, injected flood waits, the client killed and restarted from its store; QR login under dropped
//! connections only): every seed ends signed in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;

use mtproto_sansio::client::DcId;
use mtproto_sansio::client::router::Target;
use mtproto_sansio::client::signin::{SignIn, SignInConfig};
use mtproto_sansio::client::store::{Change, MemoryStore, Store, User};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::time::UnixTime;
use mtproto_sansio_sqlite::SqliteStore;
use mtproto_test_dc::dc::{self, Cluster, ClusterOptions, DcOptions};
use mtproto_test_dc::tg_client::{Faults, Prompt, Reply, TgClient, TgConfig, TgError};

const KEY_PKCS1: &str = include_str!("data/keys/dc_test_pkcs1.pem");
const API_HASH: &[u8] = b"0123456789abcdef0123456789abcdef";
const PASSWORD_PHONE: &str = "9996629999";
const PASSWORD: &str = "correct horse";

fn cluster() -> (Cluster, RsaPublicKey) {
    let public = *parse_private_pem(KEY_PKCS1.as_bytes()).unwrap().public_key();
    let dcs = (0..3)
        .map(|_| DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: parse_private_pem(KEY_PKCS1.as_bytes()).unwrap(),
            secret: None,
            faketls: None,
            dc_id: None,
            // Closed connections count until their sessions' retention ends; a test that restarts clients opens many.
            max_conns: 1024,
            keys_file: None,
            verbose: std::env::var("DC_VERBOSE").is_ok(),
        })
        .collect();
    let c = dc::start_cluster(ClusterOptions {
        dcs,
        auto_register: false,
        passwords: vec![(PASSWORD_PHONE.to_owned(), PASSWORD.to_owned())],
    })
    .unwrap();
    (c, public)
}

fn dc(n: i64) -> DcId {
    DcId::new(n).unwrap()
}

fn addr(c: &Cluster, n: i32) -> SocketAddr {
    c.dc(n).unwrap().addr
}

/// A client configuration that knows only DC `first` (the rest comes from `help.getConfig` or the store).
fn config(c: &Cluster, public: RsaPublicKey, first: i32) -> TgConfig {
    TgConfig::new(vec![public], vec![(dc(i64::from(first)), addr(c, first))])
}

/// A client configuration that knows every DC.
fn config_all(c: &Cluster, public: RsaPublicKey) -> TgConfig {
    TgConfig::new(vec![public], (1..=3).map(|n| (dc(i64::from(n)), addr(c, n))).collect())
}

fn tmp_db(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("client-e2e-{}-{name}.db", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// The user of a test: the phone's code (X five times), a name for sign-up, the password where asked.
fn user_of(phone: &str) -> impl FnMut(Prompt<'_>) -> Reply + '_ {
    move |p| match p {
        Prompt::Code => Reply::Code(phone.as_bytes()[5..6].repeat(5)),
        Prompt::SignUp => Reply::SignUp(b"Ada".to_vec(), Vec::new()),
        Prompt::Password => Reply::Password(PASSWORD.as_bytes().to_vec()),
        Prompt::QrToken(_) => Reply::Wait,
    }
}

fn sign_in_bot<S: Store>(c: &mut TgClient<S>, token: &str) -> Result<User, TgError>
where
    S::Error: std::fmt::Debug,
{
    let flow = SignIn::bot(SignInConfig::new(1, API_HASH), token.as_bytes()).unwrap();
    c.sign_in(flow, &mut |p| panic!("a bot is asked {p:?}"))
}

fn sign_in_phone<S: Store>(c: &mut TgClient<S>, phone: &str) -> Result<User, TgError>
where
    S::Error: std::fmt::Debug,
{
    let flow = SignIn::phone(SignInConfig::new(1, API_HASH), phone.as_bytes()).unwrap();
    c.sign_in(flow, &mut user_of(phone))
}

/// Bot sign-in, then a restart from the SQLite file: signed in on the same home DC, `users.getUsers(self)` answered
/// as the bot, with no new key and no sign-in call (one query in all).
#[test]
fn bot_sign_in_and_restart_from_sqlite() {
    let (c, public) = cluster();
    let path = tmp_db("bot");
    {
        let mut cl = TgClient::start(config(&c, public, 2), SqliteStore::open(&path).unwrap()).unwrap();
        let u = sign_in_bot(&mut cl, "123456:secret").unwrap();
        assert_eq!(u, User { id: 123_456, bot: true });
        assert_eq!(cl.me(Target::Home).unwrap(), Ok(123_456));
        assert_eq!(cl.stats.handshakes, 1);
    }
    let mut cl = TgClient::start(config(&c, public, 2), SqliteStore::open(&path).unwrap()).unwrap();
    assert!(cl.is_signed_in());
    assert_eq!(cl.home(), Some(dc(2)));
    assert_eq!(cl.record().user, Some(User { id: 123_456, bot: true }));
    assert_eq!(cl.me(Target::Home).unwrap(), Ok(123_456));
    assert_eq!((cl.stats.queries, cl.stats.handshakes), (1, 0));
    std::fs::remove_file(&path).unwrap();
}

/// A phone of DC 2 asked on DC 1 (the only DC the client was given): `help.getConfig` brings the list,
/// `PHONE_MIGRATE_2` moves the home DC (saved), a new key on DC 2 (saved before use), sign-up, signed in (saved).
/// A restart that again knows only DC 1 comes back on DC 2 from the stored list.
#[test]
fn phone_code_with_phone_migrate_then_restart() {
    let (c, public) = cluster();
    let path = tmp_db("phone");
    let id = {
        let mut cl = TgClient::start(config(&c, public, 1), SqliteStore::open(&path).unwrap()).unwrap();
        cl.refresh_config().unwrap();
        let u = sign_in_phone(&mut cl, "9996621234").unwrap();
        assert!(!u.bot);
        assert_eq!(cl.home(), Some(dc(2)));
        assert_eq!(cl.stats.handshakes, 2, "DC 1, then DC 2 after the migration");
        assert_eq!(cl.me(Target::Home).unwrap(), Ok(u.id));
        u.id
    };
    let mut cl = TgClient::start(config(&c, public, 1), SqliteStore::open(&path).unwrap()).unwrap();
    assert_eq!(cl.home(), Some(dc(2)));
    assert_eq!(cl.me(Target::Home).unwrap(), Ok(id));
    assert_eq!(cl.stats.handshakes, 0);
    std::fs::remove_file(&path).unwrap();
}

/// The saves happen when the store contract says: the key before the first query under it, the home DC at the
/// migration, the sign-in at once; nothing of a sign-in before it succeeded.
#[test]
fn saves_follow_the_store_contract() {
    let (c, public) = cluster();
    let mut cl = TgClient::start(config_all(&c, public), MemoryStore::new()).unwrap();
    sign_in_phone(&mut cl, "9996621235").unwrap();
    let changes = cl.store().changes.clone();
    assert_eq!(
        changes,
        [
            Change::Options,
            Change::Key(dc(1)),
            Change::Home,
            Change::Key(dc(2)),
            Change::SignedIn
        ],
        "{changes:?}"
    );
}

/// A DC that forgot the client's stored key (test_dc's key store cleared) answers −404: the client drops the key
/// (saved as `Change::KeyDropped` before the new key's `Change::Key`), makes a new one on a new connection and
/// sends the request again; the sign-in lived under the old key, so the bot is signed out and signs in again.
#[test]
fn a_forgotten_key_is_dropped_and_replaced() {
    let (c, public) = cluster();
    let mut cl = TgClient::start(config(&c, public, 2), MemoryStore::new()).unwrap();
    sign_in_bot(&mut cl, "4040:secret").unwrap();
    let store = cl.into_store();
    c.dc(2).unwrap().forget_keys();
    let mut cl = TgClient::start(config(&c, public, 2), store).unwrap();
    assert!(cl.is_signed_in());
    let old = cl.record().key(dc(2)).unwrap().clone();
    // Sent under the forgotten key (−404), then again under a new one: the new key is not signed in.
    assert!(matches!(cl.me(Target::Home).unwrap(), Err((401, _))));
    assert_eq!((cl.stats.keys_dropped, cl.stats.handshakes), (1, 1));
    assert!(!cl.is_signed_in());
    assert!(cl.record().key(dc(2)).is_some_and(|k| *k != old));
    let changes = &cl.store().changes;
    let at = changes
        .iter()
        .position(|c| *c == Change::KeyDropped(dc(2)))
        .expect("KeyDropped saved");
    assert_eq!(changes[at + 1], Change::Key(dc(2)), "{changes:?}");
    assert!(changes[..at].contains(&Change::SignedOut), "{changes:?}");
    sign_in_bot(&mut cl, "4040:secret").unwrap();
    assert_eq!(cl.me(Target::Home).unwrap(), Ok(4040));
    // The store holds the new key and the new sign-in.
    let mut cl = TgClient::start(config(&c, public, 2), cl.into_store()).unwrap();
    assert_eq!(cl.me(Target::Home).unwrap(), Ok(4040));
    assert_eq!(cl.stats.handshakes, 0);
}

/// Clock faults: the client restarts believing the DC's clock is off from its own by a wrong amount (its stored
/// offset skewed by up to ±600 s, as after the host clock jumped while it was down), so its first msg_ids are far
/// outside the DC's window. The DC answers `bad_msg_notification` 16/17, the session takes the DC's time from it
/// and resends: the bot signs in under the skewed clock and its query is answered. A few skews, cheap.
#[test]
fn skewed_client_clock_still_signs_in_and_gets_answers() {
    let (c, public) = cluster();
    for (i, skew) in [-600i32, -301, 31, 599].into_iter().enumerate() {
        // A key on DC 2, not signed in.
        let mut cl = TgClient::start(config(&c, public, 2), MemoryStore::new()).unwrap();
        cl.refresh_config().unwrap();
        let mut store = cl.into_store();
        let mut rec = store.load().unwrap().unwrap();
        let d = rec.dc(dc(2)).unwrap();
        let (salt, offset) = (d.salt, d.time_offset);
        let change = rec.set_salt(dc(2), salt, offset + skew).unwrap();
        store.save(&rec, change).unwrap();
        let mut cl = TgClient::start(config(&c, public, 2), store).unwrap();
        let id = 1700 + i as i64;
        let u = sign_in_bot(&mut cl, &format!("{id}:secret")).unwrap();
        assert_eq!(u.id, id, "skew {skew}");
        assert_eq!(cl.me(Target::Home).unwrap(), Ok(id), "skew {skew}");
        assert_eq!(cl.stats.handshakes, 0, "skew {skew}: the stored key was used");
    }
}

/// Two-step verification: the account signs up on one client; another client of ours (a new store) signs in with
/// the code, gets `SESSION_PASSWORD_NEEDED`, and proves the password with `client::srp::compute_check` against
/// test_dc's `SrpServer`.
#[test]
fn two_step_password() {
    let (c, public) = cluster();
    let mut first = TgClient::start(config_all(&c, public), MemoryStore::new()).unwrap();
    let id = sign_in_phone(&mut first, PASSWORD_PHONE).unwrap().id;
    let mut second = TgClient::start(config_all(&c, public), MemoryStore::new()).unwrap();
    let mut asked = Vec::new();
    let flow = SignIn::phone(SignInConfig::new(1, API_HASH), PASSWORD_PHONE.as_bytes()).unwrap();
    let mut user = user_of(PASSWORD_PHONE);
    let u = second
        .sign_in(flow, &mut |p| {
            asked.push(format!("{p:?}"));
            user(p)
        })
        .unwrap();
    assert_eq!(u.id, id);
    assert_eq!(asked, ["Code", "Password"]);
    assert_eq!(second.me(Target::Home).unwrap(), Ok(id));
}

/// QR login: client A (on DC 1) shows a token; client B, signed in on DC 3, accepts it; A is pushed
/// `updateLoginToken`, re-exports, is sent to DC 3 (`loginTokenMigrateTo`), imports the token there and is B's
/// user, home DC 3.
#[test]
fn qr_login_approved_by_second_client() {
    let (c, public) = cluster();
    let mut b = TgClient::start(config_all(&c, public), MemoryStore::new()).unwrap();
    let id = sign_in_phone(&mut b, "9996631111").unwrap().id;
    assert_eq!(b.home(), Some(dc(3)));
    let mut a = TgClient::start(config_all(&c, public), MemoryStore::new()).unwrap();
    let flow = SignIn::qr(
        SignInConfig::new(1, API_HASH),
        &[],
        mtproto_test_dc::client::now(),
        UnixTime(mtproto_test_dc::client::unix_micros_at_zero() / 1_000_000),
    );
    let mut shown = 0;
    let u = a
        .sign_in(flow, &mut |p| match p {
            Prompt::QrToken(token) => {
                shown += 1;
                if shown == 1 {
                    assert!(b.accept_login_token(token).unwrap().is_ok());
                }
                Reply::Wait
            }
            other => panic!("QR login asked {other:?}"),
        })
        .unwrap();
    assert_eq!(u.id, id);
    assert_eq!(a.home(), Some(dc(3)));
    assert_eq!(a.me(Target::Home).unwrap(), Ok(id));
}

/// QR login with the connections of both clients dropped under a seeded schedule (the sessions resend on new
/// connections; an `updateLoginToken` lost with a connection is made up for by the token's re-export on expiry).
#[test]
fn qr_login_under_dropped_connections() {
    let (c, public) = cluster();
    let mut drops = 0;
    for seed in 0..2u64 {
        let mut cfg = config_all(&c, public);
        cfg.faults = Faults {
            seed,
            drop_connection: 0.4,
            flood_wait: 0.0,
            kill: 0.0,
        };
        let mut b = TgClient::start(cfg.clone(), MemoryStore::new()).unwrap();
        let id = sign_in_phone(&mut b, &format!("99966{}{:04}", 3, 2000 + seed))
            .unwrap()
            .id;
        cfg.faults.seed = seed + 100;
        let mut a = TgClient::start(cfg, MemoryStore::new()).unwrap();
        let flow = SignIn::qr(
            SignInConfig::new(1, API_HASH),
            &[],
            mtproto_test_dc::client::now(),
            UnixTime(mtproto_test_dc::client::unix_micros_at_zero() / 1_000_000),
        );
        let mut accepted = false;
        let u = a
            .sign_in(flow, &mut |p| {
                if let Prompt::QrToken(token) = p
                    && !accepted
                {
                    accepted = b.accept_login_token(token).unwrap().is_ok();
                }
                Reply::Wait
            })
            .unwrap();
        assert_eq!(u.id, id);
        assert_eq!(a.me(Target::Home).unwrap(), Ok(id));
        drops += a.stats.drops + b.stats.drops;
    }
    assert!(drops > 0, "no connection dropped");
}

/// A call to another DC copies the authorization (`auth.exportAuthorization` on the home DC,
/// `auth.importAuthorization` there), saved; after a restart the copy is still there (no second import).
#[test]
fn export_import_authorization_survives_restart() {
    let (c, public) = cluster();
    let mut cl = TgClient::start(config_all(&c, public), MemoryStore::new()).unwrap();
    sign_in_bot(&mut cl, "777:abc").unwrap();
    assert_eq!(cl.home(), Some(dc(1)));
    assert_eq!(cl.me(Target::Dc(dc(3))).unwrap(), Ok(777));
    assert_eq!(cl.stats.imports, 1);
    assert!(cl.record().dc(dc(3)).unwrap().authorized);
    assert!(cl.store().changes.contains(&Change::Authorized(dc(3))));
    let store = cl.into_store();
    let mut cl = TgClient::start(config_all(&c, public), store).unwrap();
    assert_eq!(cl.me(Target::Dc(dc(3))).unwrap(), Ok(777));
    assert_eq!((cl.stats.imports, cl.stats.handshakes, cl.stats.queries), (0, 0, 1));
}

/// Runs `flow` on a client started from `store` until it ends signed in, restarting from the store after every
/// kill; returns the store and the number of starts.
fn until_signed_in(
    cfg: &TgConfig,
    mut store: MemoryStore,
    flow: &dyn Fn(&mut TgClient<MemoryStore>) -> Result<User, TgError>,
) -> (MemoryStore, u32, u64) {
    let mut starts = 0;
    let mut drops = 0;
    loop {
        starts += 1;
        assert!(starts <= 30, "no sign-in after 30 starts");
        let mut cfg = cfg.clone();
        // Each start draws its faults from its own part of the schedule.
        cfg.faults.seed = cfg.faults.seed.wrapping_mul(31).wrapping_add(u64::from(starts));
        let mut cl = TgClient::start(cfg, store).unwrap();
        let r = if cl.is_signed_in() {
            cl.me(Target::Home).map(|_| ())
        } else {
            flow(&mut cl).map(|_| ())
        };
        drops += cl.stats.drops;
        match r {
            Ok(()) => match cl.me(Target::Home) {
                Ok(Ok(_)) => return (cl.into_store(), starts, drops),
                Ok(Err(e)) => panic!("signed in but {e:?}"),
                Err(TgError::Killed) => store = cl.into_store(),
                Err(e) => panic!("{e:?}"),
            },
            Err(TgError::Killed) => store = cl.into_store(),
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// Every flow ends signed in under a seeded fault schedule: connections dropped after a query was written (the
/// session resends on a new connection and the DC answers once), `420 FLOOD_WAIT_1` injected into API calls (the
/// flood scheduler waits it out), and the client killed mid-flow and restarted from its store. Seeds:
/// `CLIENT_E2E_SEEDS` (default 3; each seed runs a bot and a phone sign-in with `PHONE_MIGRATE`, seed 0 also the
/// sign-up and the password sign-in of a 2FA account).
#[test]
fn flows_end_signed_in_under_faults() {
    let seeds: u64 = std::env::var("CLIENT_E2E_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let (c, public) = cluster();
    let mut total_starts = 0;
    let mut total_drops = 0;
    for seed in 0..seeds {
        let mut cfg = config(&c, public, 1);
        cfg.faults = Faults {
            seed,
            drop_connection: 0.3,
            flood_wait: 0.1,
            kill: 0.15,
        };
        // Bot on DC 1.
        let bot = format!("{}:s", 5000 + seed);
        let (mut store, starts, drops) = until_signed_in(&cfg, MemoryStore::new(), &|cl| sign_in_bot(cl, &bot));
        let rec = store.load().unwrap().unwrap();
        assert_eq!(rec.user.map(|u| u.id), Some(5000 + seed as i64));
        total_starts += starts;
        total_drops += drops;
        // Phone of DC 2 from DC 1: config, PHONE_MIGRATE, sign-up (or sign-in, when a killed start had signed up).
        let phone = format!("99966{}{:04}", 2, 100 + seed);
        let (mut store, starts, drops) = until_signed_in(&cfg, MemoryStore::new(), &|cl| {
            if cl.record().options().count() < 3 {
                cl.refresh_config()?;
            }
            sign_in_phone(cl, &phone)
        });
        let rec = store.load().unwrap().unwrap();
        assert_eq!(rec.home, Some(dc(2)));
        total_starts += starts;
        total_drops += drops;
        // Two-step password on another client of the same account (the SRP proof under the same faults).
        if seed == 0 {
            let (mut store, starts, drops) = until_signed_in(&cfg, MemoryStore::new(), &|cl| {
                if cl.record().options().count() < 3 {
                    cl.refresh_config()?;
                }
                sign_in_phone(cl, PASSWORD_PHONE)
            });
            let first = store.load().unwrap().unwrap().user.unwrap().id;
            let (mut store, starts2, drops2) = until_signed_in(&cfg, MemoryStore::new(), &|cl| {
                if cl.record().options().count() < 3 {
                    cl.refresh_config()?;
                }
                sign_in_phone(cl, PASSWORD_PHONE)
            });
            assert_eq!(store.load().unwrap().unwrap().user.unwrap().id, first);
            total_starts += starts + starts2;
            total_drops += drops + drops2;
        }
    }
    // The schedule did inject: with these rates over this many requests, some kills and drops happen.
    assert!(total_starts > 2 * seeds as u32, "no kill injected");
    assert!(total_drops > 0, "no connection dropped");
    println!("{seeds} seeds: {total_starts} starts, {total_drops} connections dropped");
}

fn file_pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect()
}

fn file_location(id: i64) -> Vec<u8> {
    use mtproto_sansio::tl::api::{enums, types};
    let loc = enums::InputFileLocation::InputDocumentFileLocation(types::InputDocumentFileLocation {
        id,
        access_hash: 0,
        file_reference: b"",
        thumb_size: b"",
    });
    let mut out = vec![0u8; mtproto_sansio::tl::TlWrite::tl_len(&loc)];
    mtproto_sansio::tl::encode(&loc, &mut out).unwrap();
    out
}

/// A file goes up and comes back down through the client machine against test_dc: 512 KiB parts on the media
/// connections the machine opens (the main connection's frames are 64 KiB), read from the host when asked and
/// handed back with their offsets. A second client whose home is another DC downloads it too: test_dc answers
/// `FILE_MIGRATE_2` and the machine follows it to DC 2 (a key made there for its media connection).
#[test]
fn a_file_goes_up_and_down_through_the_machine() {
    use mtproto_sansio::client::files::{DownloadConfig, KIB, UploadConfig};
    let (c, public) = cluster();
    let data = file_pattern(1_300_000);
    let mut cl = TgClient::start(config(&c, public, 2), MemoryStore::new()).unwrap();
    let up = UploadConfig {
        part_size: Some(512 * KIB),
        ..UploadConfig::DEFAULT
    };
    let input = cl.upload(up, 4242, &data).unwrap();
    assert!(!input.is_empty());
    let back = cl
        .download(DownloadConfig::DEFAULT, &file_location(4242), None)
        .unwrap();
    assert!(back == data, "the same bytes back ({} of {})", back.len(), data.len());

    let mut other = TgClient::start(config_all(&c, public), MemoryStore::new()).unwrap();
    assert_eq!(other.home(), Some(dc(1)));
    let back = other
        .download(DownloadConfig::DEFAULT, &file_location(4242), Some(data.len() as u64))
        .unwrap();
    assert!(back == data, "the same bytes from DC 2 after FILE_MIGRATE");
}

/// A download through test_dc's CDN, by the client machine: DC 1 redirects `upload.getFile` to CDN DC 2, the
/// machine asks DC 1 for `help.getCdnConfig` (the client trusts only DC 1's RSA key; the CDN's comes from there),
/// makes a key on the CDN with it, and fetches the parts there, decrypted and checked. The CDN flips a byte of one
/// part: that part is refused (never handed over) and the rest comes from DC 1; the file arrives whole and right.
#[test]
fn a_cdn_download_through_the_machine_refuses_a_tampered_part() {
    use mtproto_sansio::client::files::{DownloadConfig, KIB, UploadConfig};
    const CDN_KEY_PKCS1: &str = include_str!("data/keys/cdn_test_pkcs1.pem");
    let dcs = [KEY_PKCS1, CDN_KEY_PKCS1]
        .iter()
        .map(|k| DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: parse_private_pem(k.as_bytes()).unwrap(),
            secret: None,
            faketls: None,
            dc_id: None,
            max_conns: 64,
            keys_file: None,
            verbose: false,
        })
        .collect();
    let c = dc::start_cluster(ClusterOptions {
        dcs,
        auto_register: false,
        passwords: Vec::new(),
    })
    .unwrap();
    let master = *parse_private_pem(KEY_PKCS1.as_bytes()).unwrap().public_key();
    let cdn = *parse_private_pem(CDN_KEY_PKCS1.as_bytes()).unwrap().public_key();
    c.dc(1)
        .unwrap()
        .with_files(|f| f.set_cdn(mtproto_test_dc::cdn::CdnState::new(2, &cdn)));
    let mut cfg = config(&c, master, 1);
    cfg.cdn = vec![(dc(2), addr(&c, 2))];
    let mut cl = TgClient::start(cfg, MemoryStore::new()).unwrap();
    let data = file_pattern(700 * 1024);
    let up = UploadConfig {
        part_size: Some(512 * KIB),
        ..UploadConfig::DEFAULT
    };
    cl.upload(up, 0xCD05, &data).unwrap();
    assert!(c.dc(1).unwrap().with_files(|f| f.cdn_mut().unwrap().mark(0xCD05)));
    assert!(c.dc(1).unwrap().with_files(|f| f.cdn_mut().unwrap().tamper(256 * 1024)));
    let down = DownloadConfig {
        limit: 128 * KIB,
        cdn: true,
        ..DownloadConfig::DEFAULT
    };
    let back = cl
        .download(down, &file_location(0xCD05), Some(data.len() as u64))
        .unwrap();
    assert!(back == data, "whole and right ({} of {})", back.len(), data.len());
    assert_eq!(cl.cdn_refused, 1);
    let (served, _) = c.dc(1).unwrap().with_files(|f| f.cdn_mut().unwrap().counts());
    assert!(served >= 2, "parts came from the CDN: {served}");
    assert!(cl.record().key(dc(2)).is_none(), "the CDN's key is never kept");
}
