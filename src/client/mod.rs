//! The client layer: what a Telegram client needs above one encrypted connection.
//!
//! Data comes from the session layer's events (an `rpc_error` as [`Event::RpcError`](crate::session::Event), the
//! results of `help.getConfig` and `auth.exportAuthorization`) and from the host (time, which connections opened or
//! failed, which DCs it holds a key for). What goes out are decisions the host carries out: which requests to send
//! now and on which DC connection, which to hold and until when, which connections to open or close, which
//! authorization to copy to which DC. The host still owns sockets, clocks, storage and the request bodies: the
//! machines here hold host-chosen request handles ([`RequestId`]), never bytes, so they allocate nothing and every
//! table is a const-generic capacity.
//!
//! - [`rpc_error`] classifies an `rpc_error` (flood waits, migrations, retryable server errors, the 401 family).
//! - [`flood`] holds requests back while a flood wait or a retry backoff runs, per (method, DC), in order.
//! - [`router`] knows the DCs (the `help.getConfig` option list), the home DC, follows `*_MIGRATE_X`, copies the
//!   authorization to other DCs and tells the host which connections to open and close.
//! - [`srp`]: two-step verification (the SRP-6a variant of <https://core.telegram.org/api/srp>): the client's
//!   `inputCheckPasswordSRP` and `new_password_hash` from the password the user typed and a `CryptoRng`, and the DC
//!   side test_dc needs to check them.
//! - [`store`]: what a client keeps across restarts (auth keys per DC, home DC, user, salts, DC list, update
//!   state), the [`store::Store`] trait the host implements and a checksummed one-blob encoding.
//! - [`files`] (`api` feature): uploads and downloads of large files (a window of parts in flight, resumable,
//!   `FILE_MIGRATE`, file references, CDN parts decrypted and hash-checked before they are handed over).
//! - [`signin`] (`api` feature): the sign-in flows (bot token, phone code, two-step password, QR login) and
//!   `auth.logOut` as state machines the host drives with the answers to the requests they ask it to send.
//! - [`machine`] (`alloc` and `api` features): [`Client`], the pieces above composed into one Sans-IO client
//!   machine (a connection per DC, the router, the flood scheduler, the record, `initConnection`, authorization
//!   copies) that a host drives with socket bytes, store confirmations and time.
//! - [`updates`] (`api` feature): updates delivered in order and exactly once: pts, qts, seq and every channel's
//!   pts, gaps waited for and fetched with `updates.getDifference`/`getChannelDifference`, state saved and restored.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

#[cfg(all(feature = "alloc", feature = "api"))]
pub use machine::{CallKind, Client, ClientEvent, ConnId, HostAction};

#[cfg(feature = "api")]
pub mod files;
pub mod flood;
#[cfg(all(feature = "alloc", feature = "api"))]
pub mod machine;
pub mod router;
pub mod rpc_error;
#[cfg(feature = "api")]
pub mod signin;
pub mod srp;
pub mod store;
#[cfg(feature = "api")]
pub mod updates;

/// A host-chosen id for one request (an API call the host keeps the body of until it is answered). The client
/// machines store and hand back only this id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestId(pub u64);

/// A Telegram DC id: 1 to [`DcId::MAX`] (TDLib's bound for an internal DC id; production DCs are 1 to 5, test DCs
/// 1 to 3, CDN DCs have ids above 100). Test and production DCs share ids: which network a client talks to is a
/// property of the whole [`router::Router`], not of an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DcId(u16);

impl DcId {
    /// The largest id accepted.
    pub const MAX: u16 = 1000;

    /// The id `id`, if it is in 1..=[`DcId::MAX`].
    #[must_use]
    pub const fn new(id: i64) -> Option<DcId> {
        if id >= 1 && id <= Self::MAX as i64 {
            Some(DcId(id as u16))
        } else {
            None
        }
    }

    /// The id as a number (what `auth.exportAuthorization`'s `dc_id` carries).
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for DcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DC{}", self.0)
    }
}
