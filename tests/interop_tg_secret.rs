//! Our secret chats against an implementation nobody here wrote: kurigram (PyPI `kurigram`) with `tg-secret` (PyPI,
//! a third-party secret-chat library, through its Pyrogram adapter; examples/interop/kurigram_secret.py) is user A,
//! signed in to a test DC by phone code; our [`SecretChat`](mtproto_sansio::e2e::SecretChat) over the test DC's
//! blocking client (`mtproto_test_dc::secret::Party`) is user B. Both talk only through the DC's secret-chat relay.
//!
//! Each direction (tg-secret requests and we accept, and the other way round):
//! 1. the chat opens, and both sides hold the same key: tg-secret's fingerprint and 288-bit visualisation equal
//!    ours;
//! 2. four text messages each way, content and order checked;
//! 3. a re-key started by us, then one started by tg-secret, each followed by messages both ways under the new
//!    fingerprint (both sides agree on it, and it is not the old one);
//! 4. a gap each way: one of tg-secret's messages is dropped before our chat sees it, so our chat asks for it
//!    (`decryptedMessageActionResend`) and delivers all three in order; one of ours is lost on the way out, so
//!    tg-secret asks for it and delivers both in order.
//!
//! tg-secret 0.1.3 asks for resends with its local counters instead of the wire seq_nos; the script converts them
//! (see its docs), and `tg_secret_resend_unfixed_is_refused` shows our chat refusing the unconverted request.
//!
//! Without `python3`, `kurigram` or `tg-secret` the tests are reported ignored, or fail under
//! `MTPROTO_REQUIRE_INTEROP` (see `tests/interop_peer/mod.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod interop_peer;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::e2e::AbortReason;
use mtproto_test_dc::dc::{self, ClusterOptions, DcOptions};
use mtproto_test_dc::secret::{Got, Party};

const KEY: &str = include_str!("data/keys/dc_test_pkcs8.pem");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/interop/kurigram_secret.py");
/// How long one answer of the script may take (its first, the sign-in with kurigram's handshake, takes longest).
const WAIT: Duration = Duration::from_secs(30);

fn peer_missing() -> Option<String> {
    let probe =
        "import pyrogram, tg_secret; from tg_secret.client_adapters.pyrogram_adapter import PyrogramClientAdapter";
    match Command::new("python3").args(["-c", probe]).output() {
        Err(e) => Some(format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "kurigram or tg-secret not importable: {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        )),
        Ok(_) => None,
    }
}

/// The script: commands on its stdin, its stdout lines through a channel, everything it said kept for the log.
struct Script {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Script {
    fn start(port: u16, n_hex: &str, extra: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .args([&port.to_string(), n_hex, "65537"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        let l = log.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                l.lock().unwrap().push_str(&format!("py> {line}\n"));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = BufReader::new(child.stderr.take().unwrap());
        let l = log.clone();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                l.lock().unwrap().push_str(&format!("py! {line}\n"));
            }
        });
        let stdin = child.stdin.take().unwrap();
        Script {
            child,
            stdin,
            lines,
            log,
        }
    }

    fn send(&mut self, cmd: &str) {
        self.log.lock().unwrap().push_str(&format!("rs> {cmd}\n"));
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The fields after `word` of the next line that starts with it; other lines in between are ignored (kept in
    /// the log). Panics after [`WAIT`].
    fn expect(&mut self, word: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let mut f = line.split(' ').map(str::to_owned);
                    if f.next().as_deref() == Some(word) {
                        return f.collect();
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no {word} from the script in {WAIT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the script ended before {word}"),
            }
        }
    }

    /// The next `GOT` of chat `chat`: its text.
    fn got(&mut self, chat: i32) -> String {
        let f = self.expect("GOT");
        assert_eq!(f[0], chat.to_string(), "a message of another chat");
        f[1..].join(" ")
    }

    /// tg-secret's (key fingerprint, in_seq_no, out_seq_no, peer layer, exchange id) of `chat`.
    fn state(&mut self, chat: i32) -> (i64, u32, u32, i32, i64) {
        self.send(&format!("STATE {chat}"));
        let f = self.expect("STATE");
        (
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
        )
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints the script's transcript if the test panics.
struct LogOnPanic(Arc<Mutex<String>>);

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.0.lock().unwrap());
        }
    }
}

fn texts(got: &[Got]) -> Vec<String> {
    got.iter()
        .filter_map(|g| match g {
            Got::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn has_texts(n: usize) -> impl Fn(&[Got]) -> bool {
    move |g: &[Got]| texts(g).len() >= n
}

fn rekey_done(g: &[Got]) -> bool {
    g.iter().any(|g| matches!(g, Got::RekeyDone(_)))
}

/// A one-DC cluster (DC 2) that signs the script's number up on the right code, and the script signed in to it.
fn setup(extra: &[&str]) -> (dc::Cluster, Script, i64, mtproto_sansio::crypto::rsa::RsaPublicKey) {
    let key = parse_private_pem(KEY.as_bytes()).unwrap();
    let public = *key.public_key();
    let n_hex = hex::encode(public.n_bytes());
    let c = dc::start_cluster(ClusterOptions {
        dcs: vec![DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: key,
            secret: None,
            faketls: None,
            // DC 2: the id `Party::connect` checks in the handshake.
            dc_id: Some(2),
            max_conns: 64,
            keys_file: None,
            verbose: false,
        }],
        auto_register: true,
        passwords: Vec::new(),
    })
    .unwrap();
    let mut script = Script::start(c.dcs[0].addr.port(), &n_hex, extra);
    let their_id: i64 = script.expect("USER")[0].parse().unwrap();
    (c, script, their_id, public)
}

/// Opens the chat (`they_request`: tg-secret requests, our side accepts; else the other way) and checks that both
/// hold the same key. Returns the chat id.
fn open(script: &mut Script, b: &mut Party, their_id: i64, they_request: bool, rng: &mut rand::rngs::ThreadRng) -> i32 {
    let chat_id = if they_request {
        script.send(&format!("REQUEST {}", b.user_id));
        let waiting: i32 = script.expect("WAITING")[0].parse().unwrap();
        let (peer, admin) = b.accept(rng).unwrap();
        assert_eq!((peer.chat_id, admin), (waiting, their_id));
        waiting
    } else {
        let peer = b.request(rng, their_id).unwrap();
        let f = script.expect("REQUESTED");
        assert_eq!(f[0], peer.chat_id.to_string());
        assert_eq!(f[1], b.user_id.to_string(), "tg-secret saw another requester");
        b.complete(rng).unwrap();
        peer.chat_id
    };
    let ready = script.expect("READY");
    let chat = b.chat.as_ref().unwrap();
    assert_eq!(ready[0], chat_id.to_string());
    assert_eq!(ready[1], chat.key_fingerprint().to_string(), "key fingerprints differ");
    assert_eq!(ready[2], hex::encode(chat.visualisation()), "key visualisations differ");
    assert_eq!(chat.is_originator(), !they_request);
    chat_id
}

/// Our `tag`-numbered messages `from..to` to tg-secret, and tg-secret's to us; both arrive complete and in order.
fn both_ways(script: &mut Script, b: &mut Party, chat_id: i32, tag: &str, n: usize, rng: &mut rand::rngs::ThreadRng) {
    let ours: Vec<String> = (1..=n).map(|i| format!("from Rust {tag}.{i}")).collect();
    for m in &ours {
        b.say(rng, m).unwrap();
    }
    for m in &ours {
        assert_eq!(&script.got(chat_id), m, "tg-secret delivered another message or order");
    }
    let theirs: Vec<String> = (1..=n).map(|i| format!("from tg-secret {tag}.{i}")).collect();
    for m in &theirs {
        script.send(&format!("SEND {chat_id} {m}"));
        script.expect("SENT");
    }
    let got = b.receive(rng, Some(&has_texts(n)), Duration::ZERO).unwrap();
    assert_eq!(texts(&got), theirs, "our chat delivered another message or order");
}

fn run(they_request: bool) {
    let (c, mut script, their_id, public) = setup(&[]);
    let _log = LogOnPanic(script.log.clone());
    let mut rng = rand::rng();
    let mut b = Party::connect("B", c.dcs[0].addr, public, &mut rng).unwrap();

    // 1. The chat, one key.
    let chat_id = open(&mut script, &mut b, their_id, they_request, &mut rng);
    let first_fp = b.chat.as_ref().unwrap().key_fingerprint();

    // 2. Messages both ways. tg-secret learns our layer from our notifyLayer and we learn its.
    both_ways(&mut script, &mut b, chat_id, "m", 4, &mut rng);
    assert_eq!(b.chat.as_ref().unwrap().peer_layer(), mtproto_sansio::e2e::LAYER);
    let (fp, in_seq, out_seq, their_layer, _) = script.state(chat_id);
    assert_eq!(fp, first_fp);
    assert_eq!(
        their_layer,
        mtproto_sansio::e2e::LAYER,
        "tg-secret did not take our notifyLayer"
    );
    // Both sides count the same messages: theirs in = ours out, and the other way.
    let (our_out, our_in) = b.chat.as_ref().unwrap().seq();
    assert_eq!(
        (in_seq, out_seq),
        (our_out, our_in),
        "tg-secret's and our seq_nos disagree"
    );

    // 3a. Our re-key: requestKey, their acceptKey, our commitKey; then messages under the new key.
    b.rekey(&mut rng).unwrap();
    let got = b.receive(&mut rng, Some(&rekey_done), Duration::ZERO).unwrap();
    let Some(Got::RekeyDone(our_fp)) = got.iter().find(|g| matches!(g, Got::RekeyDone(_))).cloned() else {
        unreachable!()
    };
    assert_ne!(our_fp, first_fp);
    both_ways(&mut script, &mut b, chat_id, "after our re-key", 2, &mut rng);
    let (fp, _, _, _, exchange) = script.state(chat_id);
    assert_eq!((fp, exchange), (our_fp, 0), "tg-secret is not on our new key");
    assert_eq!(b.chat.as_ref().unwrap().key_fingerprint(), our_fp);

    // 3b. tg-secret's re-key: we accept, it commits.
    script.send(&format!("REKEY {chat_id}"));
    script.expect("REKEYING");
    let got = b.receive(&mut rng, Some(&rekey_done), Duration::ZERO).unwrap();
    let Some(Got::RekeyDone(their_new)) = got.iter().find(|g| matches!(g, Got::RekeyDone(_))).cloned() else {
        unreachable!()
    };
    assert!(their_new != our_fp && their_new != first_fp);
    both_ways(&mut script, &mut b, chat_id, "after their re-key", 2, &mut rng);
    let (fp, _, _, _, exchange) = script.state(chat_id);
    assert_eq!((fp, exchange), (their_new, 0), "tg-secret is not on its new key");
    assert_eq!(b.chat.as_ref().unwrap().key_fingerprint(), their_new);
    // The visualisation is the first key's, whatever the re-keys did.
    let ready_vis = hex::encode(b.chat.as_ref().unwrap().visualisation());
    assert!(script.log().contains(&ready_vis));

    // 4a. One of tg-secret's messages lost before our chat: we ask for it, it comes again, all three in order.
    let asked_before = b.service_sent;
    let theirs: Vec<String> = (1..=3).map(|i| format!("gap from tg-secret {i}")).collect();
    for m in &theirs {
        script.send(&format!("SEND {chat_id} {m}"));
        script.expect("SENT");
    }
    let mut got = b.drop_next_message(&mut rng).unwrap();
    got.extend(b.receive(&mut rng, Some(&has_texts(3)), Duration::ZERO).unwrap());
    assert_eq!(texts(&got), theirs, "the dropped message was not repaired in order");
    assert!(
        b.service_sent > asked_before,
        "our chat did not ask for the missing message"
    );

    // 4b. One of ours lost on the way out: tg-secret asks (wire seq_nos, converted by the script), we resend.
    b.lose_one(&mut rng, "lost from Rust").unwrap();
    b.say(&mut rng, "after the loss from Rust").unwrap();
    let asked = script.expect("RESEND_ASKED");
    assert_eq!(asked[0], chat_id.to_string());
    // Our answer goes out when our chat reads the request.
    b.receive(&mut rng, None, Duration::from_millis(500)).unwrap();
    assert_eq!(script.got(chat_id), "lost from Rust");
    assert_eq!(script.got(chat_id), "after the loss from Rust");
    both_ways(&mut script, &mut b, chat_id, "end", 1, &mut rng);
    assert_eq!(b.chat.as_ref().unwrap().aborted(), None);

    script.send("QUIT");
    script.expect("BYE");
    let bad = c.dcs[0]
        .stats()
        .bad_connections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(bad, 0, "the DC closed a connection on bad input");
    interop_peer::check_tl("tg-secret", c.dcs[0].stats());
    drop(script);
    c.stop();
}

/// tg-secret's own resend request (local counters, wrong parity for the wire form) is refused by our chat, which
/// aborts instead of resending messages it was not asked for.
fn resend_unfixed() {
    let (c, mut script, their_id, public) = setup(&["--no-resend-fix"]);
    let _log = LogOnPanic(script.log.clone());
    let mut rng = rand::rng();
    let mut b = Party::connect("B", c.dcs[0].addr, public, &mut rng).unwrap();
    let chat_id = open(&mut script, &mut b, their_id, true, &mut rng);
    both_ways(&mut script, &mut b, chat_id, "m", 2, &mut rng);
    b.lose_one(&mut rng, "lost").unwrap();
    b.say(&mut rng, "next").unwrap();
    script.expect("RESEND_ASKED");
    let e = b.receive(&mut rng, None, Duration::from_secs(2)).unwrap_err();
    assert!(e.to_string().contains("ResendInvalid"), "{e}");
    assert_eq!(b.chat.as_ref().unwrap().aborted(), Some(AbortReason::ResendInvalid));
    script.send("QUIT");
    drop(script);
    c.stop();
}

fn main() {
    interop_peer::main(
        interop_peer::Peer {
            name: "kurigram",
            install: "pip install kurigram==2.2.26 tgcrypto==1.2.5 tg-secret==0.1.3",
            missing: peer_missing,
        },
        &[
            ("tg_secret_they_request", || run(true)),
            ("tg_secret_we_request", || run(false)),
            ("tg_secret_resend_unfixed_is_refused", resend_unfixed),
        ],
    )
}
