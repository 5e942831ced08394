//! What the blocking and the tokio echo bot share: the test DC they run against, the machine's configuration, and
//! what the bot keeps of the updates it is delivered. The hosts themselves (sockets, the loop) are each example's.

use std::net::SocketAddr;

use mtproto_sansio::client::DcId;
use mtproto_sansio::client::machine::{Client, Config};
use mtproto_sansio::client::router::{DcOption, RouterConfig};
use mtproto_sansio::client::store::{MemoryStore, Store};
use mtproto_sansio::client::updates::{Delivered, Item};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::api::enums;
use mtproto_sansio::tl::invoke::InitConnection;
use mtproto_sansio::transport::TransportConfig;
use mtproto_test_dc::dc::{self, Cluster, ClusterOptions, DcOptions};

const KEY_PKCS1: &str = include_str!("../../tests/data/keys/dc_test_pkcs1.pem");
/// Test DCs accept any api_id/api_hash; a real deployment uses its own from my.telegram.org.
pub const API_HASH: &[u8] = b"0123456789abcdef0123456789abcdef";
pub const BOT_ID: i64 = 4242;
pub const PHONE: &str = "9996611234";

/// An API answer: the result's bytes, or the `rpc_error`.
pub type Answer = Result<Vec<u8>, (i32, String)>;

/// One test DC on an ephemeral loopback port where new phone numbers sign up; its RSA key and address.
pub fn start_test_dc() -> (Cluster, &'static [RsaPublicKey], SocketAddr) {
    let rsa = parse_private_pem(KEY_PKCS1.as_bytes()).unwrap();
    let cluster = dc::start_cluster(ClusterOptions {
        dcs: vec![DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: parse_private_pem(KEY_PKCS1.as_bytes()).unwrap(),
            secret: None,
            faketls: None,
            dc_id: None,
            max_conns: 64,
            keys_file: None,
            verbose: false,
        }],
        auto_register: true,
        passwords: Vec::new(),
    })
    .unwrap();
    // The connections hold the RSA keys for their lives (a handshake restarts on reconnect).
    let keys: &'static [RsaPublicKey] = Box::leak(Box::new([*rsa.public_key()]));
    let addr = cluster.dc(1).unwrap().addr;
    (cluster, keys, addr)
}

/// A client machine for the test DC at `dc1` (test mode, intermediate framing) and its empty store.
pub fn new_client(rsa: &'static [RsaPublicKey], dc1: SocketAddr, t0: std::time::Instant) -> (Client, MemoryStore) {
    let mut cfg = Config::new(rsa, TransportConfig::INTERMEDIATE);
    cfg.router = RouterConfig {
        test_mode: true,
        ..RouterConfig::DEFAULT
    };
    cfg.init = Some(InitConnection {
        api_id: 1,
        device_model: b"echo bot",
        system_version: b"example",
        app_version: b"1.0",
        system_lang_code: b"en",
        lang_pack: b"",
        lang_code: b"en",
    });
    let boot = DcOption {
        dc: DcId::new(1).unwrap(),
        addr: dc1.ip(),
        port: dc1.port(),
        media_only: false,
        tcpo_only: false,
        cdn: false,
        static_: false,
        this_port_only: false,
        secret: None,
    };
    let mut store = MemoryStore::new();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now = Instant::from_micros(t0.elapsed().as_micros() as u64);
    let machine = Client::new(cfg, store.load().unwrap(), &[boot], now, UnixTime(unix.as_secs())).unwrap();
    (machine, store)
}

/// Keeps the incoming private messages of what the machine delivered: a short message, a new message pushed
/// with its sender, or one a difference brought.
pub fn collect(d: Delivered<'_>, inbox: &mut Vec<(i64, String)>) {
    let message = match d.item {
        Item::Short(enums::Updates::UpdateShortMessage(m)) if !m.out => {
            inbox.push((m.user_id, String::from_utf8_lossy(m.message).into_owned()));
            return;
        }
        Item::Update(enums::Update::UpdateNewMessage(m)) => m.message.get(),
        Item::Message { channel: None, message } => Some(message),
        _ => return,
    };
    if let Some(enums::Message::Message(m)) = message
        && !m.out
        && let Some(enums::Peer::PeerUser(from)) = m.peer_id.get()
    {
        inbox.push((from.user_id, String::from_utf8_lossy(m.message).into_owned()));
    }
}

/// Milliseconds since `t0`, for the transcript.
pub fn ms(t0: std::time::Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}
