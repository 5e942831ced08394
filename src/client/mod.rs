//! The client layer: what a Telegram client computes on top of a session, above MTProto itself (sign-in and the
//! like). Like the layers below it, nothing here does I/O: the host passes in what the DC sent (as plain values it
//! decoded from the API's types), the password the user typed and a `CryptoRng`, and gets back the values to put in
//! its next request.
//!
//! - [`srp`]: two-step verification (the SRP-6a variant of <https://core.telegram.org/api/srp>): the client's
//!   `inputCheckPasswordSRP` and `new_password_hash`, and the DC side test_dc needs to check them.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod srp;
