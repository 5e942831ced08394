//! Fuzz entry point for the PFS policy's query inspection ([`crate::session::pfs::inner_method`]): the parser that
//! decides whether an unbound temporary key may carry a query.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding

use crate::session::pfs::{
    INIT_CONNECTION, INVOKE_AFTER_MSG, INVOKE_WITH_LAYER, INVOKE_WITHOUT_UPDATES, InnerMethodError, MAX_WRAPPERS,
    UNBOUND_ALLOWED, allowed_unbound, inner_method,
};

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("pfs_inner_method", pfs_inner_method)];

/// Bytes the entry point copies to check its invariants (longer inputs are cut there).
pub const FUZZ_MAX_QUERY: usize = 4096;

/// Names the method under the wrappers and checks: a named method is never a wrapper; `allowed_unbound` agrees with
/// the allow-list; trailing bytes never change the answer; one more `invokeWithoutUpdates` in front gives the same
/// answer or `TooDeep`, and only that.
pub fn pfs_inner_method(data: &[u8]) {
    let data = data.get(..data.len().min(FUZZ_MAX_QUERY)).unwrap_or(&[]);
    let r = inner_method(data);
    if let Ok(m) = r {
        assert!(
            ![
                INVOKE_WITH_LAYER,
                INVOKE_WITHOUT_UPDATES,
                INVOKE_AFTER_MSG,
                INIT_CONNECTION
            ]
            .contains(&m)
        );
        assert_eq!(allowed_unbound(data), UNBOUND_ALLOWED.contains(&m));
        let mut longer = [0u8; FUZZ_MAX_QUERY + 4];
        if let Some(dst) = longer.get_mut(..data.len()) {
            dst.copy_from_slice(data);
        }
        assert_eq!(inner_method(longer.get(..data.len() + 4).unwrap_or(&[])), Ok(m));
    } else {
        assert!(!allowed_unbound(data));
    }
    let mut wrapped = [0u8; FUZZ_MAX_QUERY + 4];
    if let Some((head, tail)) = wrapped.split_first_chunk_mut::<4>() {
        *head = INVOKE_WITHOUT_UPDATES.to_le_bytes();
        if let Some(dst) = tail.get_mut(..data.len()) {
            dst.copy_from_slice(data);
        }
    }
    let w = inner_method(wrapped.get(..data.len() + 4).unwrap_or(&[]));
    assert!(w == r || w == Err(InnerMethodError::TooDeep), "{r:?} became {w:?}");
    let _ = MAX_WRAPPERS;
}
