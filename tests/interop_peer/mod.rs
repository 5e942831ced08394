//! The harness of the tests that drive a third-party client (`tests/interop_telethon.rs`,
//! `tests/interop_kurigram.rs`, `tests/interop_gramjs.rs`, `tests/handshake_interop.rs`; each is `harness = false`
//! in Cargo.toml and calls [`main`]).
//!
//! libtest can only ignore a test at compile time, so a test whose peer is not installed used to return early and
//! be reported `ok`. Here the peer is probed once when the binary starts, and then each test:
//! - runs, when the peer is there;
//! - is reported **ignored**, with the reason and the install command (`test x ... ignored, telethon not
//!   importable: ...`, counted under "ignored" in the summary), when it is missing and not required;
//! - **fails**, saying the peer is missing, when it is missing and required: `MTPROTO_REQUIRE_INTEROP` is `1` (or
//!   `all`), or a comma-separated list of peer names that includes it. `.ci/run` sets it, so a failed install
//!   fails CI instead of turning the interop suite into passes.
//!
//! The command line is libtest's (filters, `--exact`, `--skip`, `--list`, `--test-threads`, ...) through
//! `libtest-mimic`. That harness captures no output, so a test prints its peer's output only when it fails.
#![allow(clippy::panic)]

use libtest_mimic::{Arguments, Completion, Trial};

/// The environment variable that makes a missing peer a failure.
pub const REQUIRE_VAR: &str = "MTPROTO_REQUIRE_INTEROP";

/// Every peer name `MTPROTO_REQUIRE_INTEROP` may list; anything else there is refused (a typo must not silently
/// turn a requirement off).
pub const PEERS: [&str; 3] = ["telethon", "kurigram", "gramjs"];

/// A third-party client that some tests drive.
pub struct Peer {
    /// Its name in [`PEERS`] and in messages.
    pub name: &'static str,
    /// The command that installs it, printed with every skip or failure.
    pub install: &'static str,
    /// Why it cannot run on this machine, or `None` when it can.
    pub missing: fn() -> Option<String>,
}

/// Whether `peer` must be present, from `MTPROTO_REQUIRE_INTEROP`: unset, empty or `0`: no; `1` or `all`: yes;
/// otherwise a comma-separated list of names from [`PEERS`].
fn required(peer: &str) -> bool {
    let value = std::env::var(REQUIRE_VAR).unwrap_or_default();
    match value.trim() {
        "" | "0" => false,
        "1" | "all" => true,
        list => {
            let names: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if let Some(bad) = names.iter().find(|n| !PEERS.contains(n)) {
                panic!("{REQUIRE_VAR}={value}: unknown peer {bad:?} (known: {PEERS:?}, or 1 / all)");
            }
            names.contains(&peer)
        }
    }
}

/// Runs `tests` (name, body; a body fails by panicking) for `peer` with libtest's command line and output, and
/// exits with libtest's status (101 if any test failed).
pub fn main(peer: Peer, tests: &[(&'static str, fn())]) -> ! {
    let args = Arguments::from_args();
    let required = required(peer.name);
    let missing = (peer.missing)().map(|why| format!("{why} (install: {})", peer.install));
    if let Some(why) = &missing {
        if required {
            eprintln!("{REQUIRE_VAR} requires {}, which is missing: {why}", peer.name);
        } else {
            eprintln!(
                "SKIPPED: the {} tests of {} are reported as ignored: {why}. Set {REQUIRE_VAR}=1 to fail instead.",
                tests.len(),
                peer.name
            );
        }
    }
    let trials = tests
        .iter()
        .map(|&(name, body)| {
            let missing = missing.clone();
            Trial::ignorable_test(name, move || match missing {
                None => {
                    body();
                    Ok(Completion::Completed)
                }
                Some(why) if required => Err(format!("required by {REQUIRE_VAR} but missing: {why}").into()),
                Some(why) => Ok(Completion::ignored_with(why)),
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// A peer's output, printed if the test panics while this is alive: the harness captures nothing, so passing tests
/// stay quiet and a failing one still shows what the peer said.
pub struct PrintOnPanic(pub String);

impl Drop for PrintOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.0);
        }
    }
}

/// The test DC's round trip of every request the peer sent through the generated API types (`tl_check`, on in
/// debug builds): fails on any request the schema accepted whose deep re-encoding differs from the bytes received.
/// With `TL_ROUNDTRIP_REPORT` set, prints the tally (requests, distinct function ids, ids the schema lacks).
#[allow(dead_code, clippy::unwrap_used)]
pub fn check_tl(what: &str, stats: &mtproto_test_dc::dc::DcStats) {
    let t = stats.tl.lock().unwrap().clone();
    if std::env::var_os("TL_ROUNDTRIP_REPORT").is_some() {
        eprintln!("{what}: {}", t.summary());
    }
    assert!(t.mismatches.is_empty(), "{what}: {}", t.summary());
}

/// Runs a sign-in script (`examples/interop/*_signin.py`) against DCs 1..=3 started in this process with the RSA
/// key of `key_pem` (argv: the three ports, the modulus in hex, the exponent) and requires each of `checks` as an
/// `OK <check>` line, and no connection closed on bad input. Number 9996625678 has the password `hunter2`.
#[allow(dead_code, clippy::unwrap_used)]
pub fn sign_in_run(key_pem: &str, script: &str, checks: &[&str]) {
    use mtproto_sansio::crypto::pem::parse_private_pem;
    use mtproto_test_dc::dc::{self, ClusterOptions, DcOptions};
    let key = parse_private_pem(key_pem.as_bytes()).unwrap();
    let n_hex = hex::encode(key.public_key().n_bytes());
    let dcs = (0..3)
        .map(|_| DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: parse_private_pem(key_pem.as_bytes()).unwrap(),
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
        passwords: vec![("9996625678".to_owned(), "hunter2".to_owned())],
    })
    .unwrap();
    let mut args: Vec<String> = c.dcs.iter().map(|d| d.addr.port().to_string()).collect();
    args.extend([n_hex, "65537".to_owned()]);
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(&args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _log = PrintOnPanic(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{script} failed");
    for check in checks {
        assert!(stdout.lines().any(|l| l == format!("OK {check}")), "{check} missing");
    }
    for d in &c.dcs {
        let bad = d.stats().bad_connections.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(bad, 0, "DC {} closed a connection on bad input", d.id());
        check_tl(&format!("{script} DC {}", d.id()), d.stats());
    }
    c.stop();
}
