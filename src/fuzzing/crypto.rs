//! Fuzz entry points for `crypto`.

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[];
