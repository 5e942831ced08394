//! Fuzz entry points for `transport`.

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[];
