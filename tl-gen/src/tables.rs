//! Resolves a parsed schema into indices (types, combinators sorted by id) and writes it as the four tables of
//! `mtproto_sansio::tl::layout::Layout`. The record format is documented there; the constants below must match it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::parse::{Combinator, ParamKind, Schema, Ty};

const INT: u32 = 0;
const LONG: u32 = 1;
const DOUBLE: u32 = 2;
const BYTES: u32 = 3;
const INT128: u32 = 4;
const INT256: u32 = 5;
const FLAGS: u32 = 6;
const BOXED: u32 = 7;
const BARE: u32 = 8;
const OBJECT: u32 = 9;
const QUERY: u32 = 10;
const VEC_SHIFT: u32 = 4;
const VEC_BOXED: u32 = 1;
const VEC_BARE: u32 = 2;
const COND: u32 = 1 << 6;
const BIT_SHIFT: u32 = 7;
const WORD_SHIFT: u32 = 12;
const REF_SHIFT: u32 = 16;
const HEAD_FUNCTION: u16 = 0x8000;

/// A schema with every reference resolved to an index.
#[derive(Debug)]
pub struct Resolved<'s> {
    /// Combinators sorted by id (the table order).
    pub combinators: Vec<&'s Combinator>,
    /// Boxed type names in index order (types of constructors, in order of first appearance).
    pub types: Vec<String>,
    /// Per combinator (table order): its field records, a function's return type last.
    pub records: Vec<Vec<u32>>,
}

impl Resolved<'_> {
    /// Index of a boxed type by name.
    pub fn type_index(&self, name: &str) -> Option<usize> {
        self.types.iter().position(|t| t == name)
    }

    /// Table index of a combinator by name.
    pub fn combinator_index(&self, name: &str) -> Option<usize> {
        self.combinators.iter().position(|c| c.name == name)
    }

    /// Constructors of type `t`, in table order.
    pub fn constructors_of(&self, t: &str) -> Vec<usize> {
        (0..self.combinators.len())
            .filter(|&i| !self.combinators[i].is_function && self.combinators[i].result.name == t)
            .collect()
    }
}

/// Resolves names to indices. Fails on a reference to a type no constructor builds.
pub fn resolve(schema: &Schema) -> Result<Resolved<'_>, String> {
    let mut combinators: Vec<&Combinator> = schema.combinators.iter().collect();
    combinators.sort_by_key(|c| c.id);
    let mut types = Vec::new();
    for c in &schema.combinators {
        if !c.is_function && !types.contains(&c.result.name) {
            types.push(c.result.name.clone());
        }
    }
    if combinators.len() >= usize::from(HEAD_FUNCTION) || types.len() >= usize::from(HEAD_FUNCTION) {
        return Err("schema too large for 15-bit indices".into());
    }
    let mut res = Resolved {
        combinators,
        types,
        records: Vec::new(),
    };
    let mut records = Vec::new();
    for c in &res.combinators {
        let mut recs = Vec::new();
        let words: Vec<&str> = c
            .params
            .iter()
            .filter(|p| p.kind == ParamKind::Flags)
            .map(|p| p.name.as_str())
            .collect();
        if words.len() > 4 {
            return Err(format!("{}: more than 4 flags words", c.name));
        }
        for p in &c.params {
            match &p.kind {
                ParamKind::Flags => recs.push(FLAGS),
                ParamKind::Value { ty, cond } => {
                    if ty.name == "true" && cond.is_some() {
                        continue;
                    }
                    let mut rec = record(&res, c, ty).map_err(|e| format!("{}.{}: {e}", c.name, p.name))?;
                    if let Some((w, bit)) = cond {
                        let word = words.iter().position(|x| x == w).unwrap_or(0) as u32;
                        rec |= COND | u32::from(*bit) << BIT_SHIFT | word << WORD_SHIFT;
                    }
                    recs.push(rec);
                }
            }
        }
        if c.is_function {
            recs.push(record(&res, c, &c.result).map_err(|e| format!("{} result: {e}", c.name))?);
        }
        records.push(recs);
    }
    res.records = records;
    Ok(res)
}

/// The record of a type reference (without condition bits).
fn record(res: &Resolved<'_>, c: &Combinator, ty: &Ty) -> Result<u32, String> {
    if ty.is_vector() {
        let inner = ty.arg.as_deref().ok_or("vector without element type")?;
        if inner.is_vector() {
            return Err("vectors of vectors are not supported".into());
        }
        let wrap = if ty.bare { VEC_BARE } else { VEC_BOXED };
        return Ok(record(res, c, inner)? | wrap << VEC_SHIFT);
    }
    if c.generics.contains(&ty.name) {
        // `!X` is the wrapped query; a plain `X` (a wrapper's result) is whatever that query returns.
        return Ok(if ty.generic_ref { QUERY } else { OBJECT });
    }
    Ok(match ty.name.as_str() {
        "int" => INT,
        "long" => LONG,
        "double" => DOUBLE,
        "string" | "bytes" => BYTES,
        "int128" => INT128,
        "int256" => INT256,
        "Object" => OBJECT,
        name if ty.bare => {
            // `%Type` names the single constructor of Type; a lower-case name is a constructor.
            let target = if name.starts_with(|ch: char| ch.is_ascii_uppercase()) {
                let ctors = res.constructors_of(name);
                match ctors.as_slice() {
                    [one] => *one,
                    _ => return Err(format!("%{name} needs exactly one constructor")),
                }
            } else {
                res.combinator_index(name)
                    .ok_or_else(|| format!("no constructor {name}"))?
            };
            BARE | (target as u32) << REF_SHIFT
        }
        name => {
            let t = res
                .type_index(name)
                .ok_or_else(|| format!("no constructor builds type {name}"))?;
            BOXED | (t as u32) << REF_SHIFT
        }
    })
}

/// Rust constant name for a schema name: `messages.sendMessage` → `MESSAGES_SEND_MESSAGE`.
pub fn const_name(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if ch == '.' || ch == '_' {
            out.push('_');
            prev_lower = false;
        } else if ch.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(ch);
            prev_lower = false;
        } else {
            out.push(ch.to_ascii_uppercase());
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        }
    }
    out
}

fn array<T: std::fmt::Display>(out: &mut String, name: &str, ty: &str, items: &[T], per_line: usize) {
    let _ = writeln!(out, "static {name}: [{ty}; {}] = [", items.len());
    for chunk in items.chunks(per_line) {
        out.push_str("   ");
        for x in chunk {
            let _ = write!(out, " {x},");
        }
        out.push('\n');
    }
    out.push_str("];\n");
}

/// Writes the tables module for `schema` (file `source` named in its header).
pub fn emit(schema: &Schema, source: &str, static_name: &str) -> Result<String, String> {
    let res = resolve(schema)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// @generated by tl-gen from {source}. Do not edit: run `cargo run -p tl-gen` (tests/api_schema.rs checks it).\n\
         //! Layout tables of `{source}`: {} combinators ({} functions), {} types, {} field records.\n",
        res.combinators.len(),
        res.combinators.iter().filter(|c| c.is_function).count(),
        res.types.len(),
        res.records.iter().map(Vec::len).sum::<usize>(),
    );
    if !schema.dropped.is_empty() {
        out.push_str("//!\n//! Dropped because they reuse the id of the combinator named after them:\n");
        for (d, k) in &schema.dropped {
            let _ = writeln!(out, "//! `{d}` (id of `{k}`)");
        }
        out.push('\n');
    }
    out.push_str("use crate::tl::layout::{Layout, fixed_lens, id_index};\n\n");
    let _ = writeln!(
        out,
        "/// The layout of `{source}`, for [`Layout::validate`].\npub static {static_name}: Layout = Layout {{\n    ids: &IDS,\n    index: &INDEX,\n    heads: &HEADS,\n    field_start: &FIELD_START,\n    fields: &FIELDS,\n    fixed: &FIXED,\n}};\n\n/// `IDS` bucketed by their top byte, for [`Layout::find`].\nstatic INDEX: [u16; 257] = id_index(&IDS);\n\n/// Per combinator, its size when fixed, for [`Layout::fixed`].\nstatic FIXED: [u8; {n}] = fixed_lens(&HEADS, &FIELD_START, &FIELDS);\n",
        n = res.combinators.len()
    );
    let ids: Vec<String> = res.combinators.iter().map(|c| format!("0x{:08x}", c.id)).collect();
    array(&mut out, "IDS", "u32", &ids, 8);
    let heads: Vec<String> = res
        .combinators
        .iter()
        .map(|c| {
            if c.is_function {
                format!("0x{HEAD_FUNCTION:04x}")
            } else {
                res.type_index(&c.result.name).unwrap_or(0).to_string()
            }
        })
        .collect();
    array(&mut out, "HEADS", "u16", &heads, 16);
    let mut starts = vec![0usize];
    for r in &res.records {
        starts.push(starts.last().copied().unwrap_or(0) + r.len());
    }
    if starts.last().copied().unwrap_or(0) > usize::from(u16::MAX) {
        return Err("more field records than a u16 index reaches".into());
    }
    array(&mut out, "FIELD_START", "u16", &starts, 16);
    let recs: Vec<String> = res.records.iter().flatten().map(|r| format!("0x{r:08x}")).collect();
    array(&mut out, "FIELDS", "u32", &recs, 8);
    out.push_str("\n/// Combinator names by table index (diagnostics; the linker drops it when unused).\n");
    let names: Vec<String> = res.combinators.iter().map(|c| format!("{:?}", c.name)).collect();
    let _ = writeln!(out, "pub static NAMES: [&str; {}] = [", names.len());
    for n in &names {
        let _ = writeln!(out, "    {n},");
    }
    out.push_str("];\n\n/// Type names by type index.\n");
    let _ = writeln!(out, "pub static TYPE_NAMES: [&str; {}] = [", res.types.len());
    for n in &res.types {
        let _ = writeln!(out, "    {n:?},");
    }
    out.push_str("];\n\n/// Type indices, for [`crate::tl::layout::Root::Type`].\npub mod ty {\n");
    let mut seen = BTreeMap::new();
    for (i, t) in res.types.iter().enumerate() {
        let mut n = const_name(t);
        if seen.insert(n.clone(), ()).is_some() {
            n.push_str("_TYPE");
        }
        let _ = writeln!(out, "    /// `{t}`.\n    pub const {n}: u16 = {i};");
    }
    out.push_str(
        "}\n\n/// Combinator indices, for [`crate::tl::layout::Root::Bare`] and the typed views.\npub mod ctor {\n",
    );
    let mut seen = BTreeMap::new();
    for (i, c) in res.combinators.iter().enumerate() {
        let mut n = const_name(&c.name);
        if seen.insert(n.clone(), ()).is_some() {
            n.push_str("_2");
        }
        let _ = writeln!(out, "    /// `{}#{:08x}`.\n    pub const {n}: u16 = {i};", c.name, c.id);
    }
    out.push_str("}\n");
    Ok(out)
}
