//! Nothing but a home for the comparison benches (see Cargo.toml): cargo needs a library or binary target in every
//! package, and the benches themselves live in the main crate's `benches/`.
