//! Round trip of every API request a peer sends to the test DC through the generated types
//! (`mtproto_sansio::tl::api`): the request body (decrypted, gzip inflated, one message of a container) is validated
//! as a function of the layer-228 schema, decoded through its generated struct, re-encoded with a deep
//! [`Writer`](mtproto_sansio::tl::Writer) (every nested object, vector and wrapped query written from its decoded
//! fields, not copied), and compared with the bytes received. `crate::dc` runs it on every request in debug builds
//! (the test profile: the interop tests), records the result in its `DcStats`, and prints a mismatch to stderr;
//! the interop tests fail on any mismatch ([`Tally::mismatches`]).
//!
//! A request whose id the schema lacks (GramJS 2.26 speaks layer 198, Telethon and kurigram 229) is counted as
//! [`Verdict::NotInSchema`], not as a mismatch: the schema cannot say what its bytes mean.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use mtproto_sansio::tl::Writer;
use mtproto_sansio::tl::api::{Bare, Query, functions, write_call};
use mtproto_sansio::tl::layout::{self, Root};
use mtproto_sansio::tl::tables::api::API;
use mtproto_sansio::tl::typed::Cursor;

/// Wrapped queries followed to name the calls of one request, at most (the validator bounds the nesting anyway).
pub const MAX_CALLS: usize = 16;

/// What one request's round trip found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Validated, decoded and re-encoded byte-identically: the function ids from the outermost wrapper in.
    Identical(Vec<u32>),
    /// The outermost (or a wrapped) function id is not in the schema, or the bytes are not a value of it.
    NotInSchema {
        /// The request's first 4 bytes.
        id: u32,
        /// Why the validator refused it.
        error: layout::Error,
    },
    /// The schema accepted the bytes but their deep re-encoding differs: a generator or runtime defect.
    Mismatch {
        /// The function ids, outermost first.
        calls: Vec<u32>,
        /// The first differing offset (or the shorter length).
        at: usize,
    },
}

const INVOKE_WITH_LAYER: u32 = functions::InvokeWithLayer::<()>::ID;
const INIT_CONNECTION: u32 = functions::InitConnection::<'static, ()>::ID;
const INVOKE_WITHOUT_UPDATES: u32 = functions::InvokeWithoutUpdates::<()>::ID;
const INVOKE_AFTER_MSG: u32 = functions::InvokeAfterMsg::<()>::ID;

fn first_id(b: &[u8]) -> u32 {
    b.get(..4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes)
}

/// The function ids of a validated call, outermost first, through the generic wrappers (`query:!X`).
fn calls(mut call: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    for _ in 0..MAX_CALLS {
        let id = first_id(call);
        out.push(id);
        let args = call.get(4..).unwrap_or(&[]);
        let mut c = Cursor::new(args, &API);
        let inner: Query<'_> = match id {
            INVOKE_WITH_LAYER => <functions::InvokeWithLayer<_> as Bare>::read_bare(&mut c).query,
            INIT_CONNECTION => <functions::InitConnection<'_, _> as Bare>::read_bare(&mut c).query,
            INVOKE_WITHOUT_UPDATES => <functions::InvokeWithoutUpdates<_> as Bare>::read_bare(&mut c).query,
            INVOKE_AFTER_MSG => <functions::InvokeAfterMsg<_> as Bare>::read_bare(&mut c).query,
            _ => break,
        };
        match inner.wire() {
            Some(w) => call = w,
            None => break,
        }
    }
    out
}

/// Validates, decodes and deep re-encodes one request body.
pub fn roundtrip(body: &[u8]) -> Verdict {
    if let Err(error) = API.validate_exact(body, Root::Function) {
        return Verdict::NotInSchema {
            id: first_id(body),
            error,
        };
    }
    // One byte more than received: a re-encoding that runs longer shows as a length difference, not `Full`.
    let mut out = vec![0u8; body.len().saturating_add(1)];
    let mut w = Writer::new(&mut out).deep();
    let written = match write_call(body, &mut w) {
        Ok(()) => w.written(),
        Err(_) => out.len(),
    };
    let same = out.get(..written).is_some_and(|o| o == body);
    if same {
        Verdict::Identical(calls(body))
    } else {
        let at = out
            .iter()
            .zip(body)
            .position(|(a, b)| a != b)
            .unwrap_or(written.min(body.len()));
        Verdict::Mismatch { calls: calls(body), at }
    }
}

/// What a DC's requests did, all connections together.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Requests checked.
    pub checked: u64,
    /// Requests that round-tripped byte-identically.
    pub identical: u64,
    /// Requests the schema did not accept, by their first id.
    pub not_in_schema: BTreeMap<u32, u64>,
    /// Requests whose re-encoding differed, by their innermost function id.
    pub mismatches: BTreeMap<u32, u64>,
    /// Function ids seen in identical requests (wrappers and calls), with counts.
    pub functions: BTreeMap<u32, u64>,
}

impl Tally {
    /// Records one verdict; returns it for the caller to report.
    pub fn record(&mut self, v: &Verdict) {
        self.checked += 1;
        match v {
            Verdict::Identical(calls) => {
                self.identical += 1;
                for id in calls {
                    *self.functions.entry(*id).or_default() += 1;
                }
            }
            Verdict::NotInSchema { id, .. } => *self.not_in_schema.entry(*id).or_default() += 1,
            Verdict::Mismatch { calls, .. } => {
                *self.mismatches.entry(calls.last().copied().unwrap_or(0)).or_default() += 1;
            }
        }
    }

    /// One line for a test's log: counts and the distinct function ids seen.
    pub fn summary(&self) -> String {
        let ids = |m: &BTreeMap<u32, u64>| m.keys().map(|k| format!("{k:08x}")).collect::<Vec<_>>().join(",");
        format!(
            "tl round trip: {} requests, {} identical, {} distinct functions [{}]; not in schema: {} [{}]; mismatches: {} [{}]",
            self.checked,
            self.identical,
            self.functions.len(),
            ids(&self.functions),
            self.not_in_schema.values().sum::<u64>(),
            ids(&self.not_in_schema),
            self.mismatches.values().sum::<u64>(),
            ids(&self.mismatches),
        )
    }
}
