//! The client layer: what a Telegram client needs above one encrypted connection.
//!
//! - [`signin`] (`api` feature): the sign-in flows (bot token, phone code, two-step password, QR login) and
//!   `auth.logOut` as state machines the host drives with the answers to the requests they ask it to send.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "api")]
pub mod signin;
