//! Fuzz entry point for the stored session record (`client::store`): a blob read back from the host's storage.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding

use crate::client::store::{MAX_ENCODED, Record};

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("client_store", client_store)];

/// Input: a blob. It decodes or fails with a typed error; a decoded record encodes back to the same bytes (one
/// encoding per record, so nothing in a blob is ignored) within [`MAX_ENCODED`].
pub fn client_store(data: &[u8]) {
    let Ok(rec) = Record::decode(data) else {
        return;
    };
    let mut out = [0u8; MAX_ENCODED];
    let n = match rec.encode(&mut out) {
        Ok(n) => n,
        Err(e) => panic!("a decoded record does not encode: {e:?}"),
    };
    if out.get(..n) != Some(data) {
        panic!("re-encoding differs from the blob");
    }
}
