//! The reference host of mtproto-sansio's DC [`Connection`](mtproto_sansio::session::Connection) and the blocking client
//! the tests, examples and interop runs drive it with. NOT FOR PRODUCTION: a test DC for local interop and the
//! crate's host tests (its keys live in memory or in a plain file).
//!
//! - [`dc`]: the test DC, an async TCP server (tokio) over the DC `Connection`; `examples/test_dc.rs` is its command
//!   line. It serves the api subset of [`api`] and every carriage (HTTP, WebSocket, fake-TLS) on the same port, each a
//!   layer of the connection type (`mtproto_sansio::carriage::layer`); [`carriage_conn`] is their client end.
//! - [`files`]: uploaded files (`upload.saveFilePart`, `saveBigFilePart`) served back by `upload.getFile`.
//! - [`updates`]: the update stream: messages with pts (users and one channel), pushes, `updates.getState`,
//!   `getDifference` and `getChannelDifference` from the stored history.
//! - [`auth`]: the accounts of the DCs of one process and the sign-in, config and account calls (generated types).
//! - [`client`]: a blocking client connection: a socket (optionally a carriage, [`link`] names the transports)
//!   carrying the crate's client connection type (`Connection::client_handshake` / `Connection::client`), which does the
//!   framing, the handshake and the session; [`secret`] is a secret-chat user over it.
//! - [`tl_check`]: every request's round trip through the generated API types (decode, deep re-encode, compare),
//!   run by [`dc`] in debug builds for the interop tests.
//! - [`tg_client`]: a Telegram client over [`client`] connections built from the crate's client layer (sign-in,
//!   router, flood scheduler, session store), for the end-to-end client tests and the sign-in timings.
//! - [`child`]: a `test_dc` child process and its `/proc` figures (memory, CPU time), for the measurement examples.
//!
//! Data flow at the DC: bytes from a socket go through the carriage (HTTP, WebSocket, fake-TLS) into the crate's
//! connection type, whose events and host queries [`dc`] answers (calls through [`api::execute`]).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod auth;
pub mod carriage_conn;
pub mod cdn;
pub mod child;
pub mod client;
pub mod dc;
pub mod files;
pub mod link;
pub mod secret;
pub mod tg_client;
pub mod tl_check;
pub mod updates;
