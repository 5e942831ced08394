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
