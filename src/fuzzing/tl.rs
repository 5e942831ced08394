//! Fuzz entry points for `tl`.

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[];
