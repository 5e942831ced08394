//! The generator behind `mtproto_sansio::tl::tables` (and the typed API views): reads any Telegram `.tl` schema
//! ([`parse`]) and writes the layout tables the crate's one generic validator walks ([`tables`]).
//!
//! `cargo run -p tl-gen` from the repository root regenerates every checked-in file listed in [`OUTPUTS`]; the
//! main crate's `tests/api_schema.rs` regenerates them in memory and fails when a checked-in file differs, so the
//! output cannot drift from the schemas or from this generator.

pub mod parse;
pub mod tables;
pub mod typed;

pub use parse::{Combinator, Param, ParamKind, Schema, Ty, crc32, normalized, parse};

/// Every generated file: `(schema file, output file, name of the layout static)`, paths relative to the repository
/// root.
pub const OUTPUTS: &[(&str, &str, &str)] = &[
    ("tl-gen/schema/api.tl", "src/tl/tables/api.rs", "API"),
    ("tl-gen/schema/secret.tl", "src/tl/tables/secret.rs", "SECRET"),
    ("tl-gen/schema/mtproto.tl", "src/tl/tables/mtproto.rs", "MTPROTO"),
];

/// Schemas that also get typed views: `(schema file, output file)`.
pub const TYPED: &[(&str, &str)] = &[
    ("tl-gen/schema/api.tl", "src/tl/api.rs"),
    ("tl-gen/schema/secret.tl", "src/tl/secret_api.rs"),
];

/// Generates every output from the schemas under `root` (the repository root): `(output path, contents)`.
pub fn generate_all(root: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    OUTPUTS
        .iter()
        .map(|(src, dst, name)| {
            let text = std::fs::read_to_string(root.join(src)).map_err(|e| format!("{src}: {e}"))?;
            let schema = parse(&text).map_err(|e| format!("{src}: {e}"))?;
            let file = src.rsplit('/').next().unwrap_or(src);
            let out = tables::emit(&schema, file, name).map_err(|e| format!("{src}: {e}"))?;
            let mut files = vec![((*dst).to_string(), out)];
            if let Some((_, typed_dst)) = TYPED.iter().find(|(s, _)| s == src) {
                let module = dst
                    .trim_start_matches("src/")
                    .trim_end_matches(".rs")
                    .replace('/', "::");
                let layout = format!("crate::{module}::{name}");
                let tables = format!("crate::{module}");
                let typed = typed::emit(&schema, file, &layout, &tables).map_err(|e| format!("{src}: {e}"))?;
                files.push(((*typed_dst).to_string(), typed));
            }
            Ok(files)
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|v| v.into_iter().flatten().collect())
}
