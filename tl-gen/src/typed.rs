//! Writes the typed borrowed API of a schema: a struct per constructor and function (`types`, `functions`), an
//! enum per boxed type (`enums`), over the runtime in `mtproto_sansio::tl::typed`.
//!
//! Field types: `int`/`long`/`double` → `i32`/`i64`/`f64`, `string`/`bytes` → `&'a [u8]`, `int128`/`int256` →
//! byte arrays, `Bool` → `bool`, a boxed type `T` → `Obj<'a, enums::T>`, `Vector<T>` → `Seq<'a, T>` (`vector<T>`
//! → `Seq<'a, T, true>`), `!X` → a type parameter `X` (a `Query` when decoded). A flags bit that guards one value
//! is an `Option`; several values on one bit are one `Option` of a tuple (named `a_and_b`), so a writer can never
//! set a bit without all of its fields; `true` flags are `bool`s, or, on a bit that also guards values, methods
//! derived from them. Flags words are computed when writing, never stored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::parse::{Combinator, ParamKind, Schema, Ty};
use crate::tables::{Resolved, resolve};

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in",
    "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super",
    "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box",
    "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// `messages.sendMessage` → `MessagesSendMessage`, `p_q_inner_data` → `PQInnerData`.
pub fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for ch in name.chars() {
        if ch == '.' || ch == '_' {
            up = true;
        } else if up {
            out.push(ch.to_ascii_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
    }
    out
}

fn field_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if KEYWORDS.contains(&lower.as_str()) {
        format!("{lower}_")
    } else {
        lower
    }
}

struct Ctx<'r, 's> {
    res: &'r Resolved<'s>,
    /// Rust name per combinator id ([`rust_names`]).
    names: BTreeMap<u32, String>,
    layout: String,
    /// Types whose enum (and constructors) borrow, by type name.
    borrows: BTreeSet<String>,
}

impl Ctx<'_, '_> {
    /// Whether a field of this type borrows from the input.
    fn ty_borrows(&self, t: &Ty) -> bool {
        if t.is_vector() || t.generic_ref {
            return t.is_vector();
        }
        !matches!(
            t.name.as_str(),
            "int" | "long" | "double" | "int128" | "int256" | "Bool" | "true"
        )
    }

    fn enum_ref(&self, name: &str, lt: &str) -> String {
        if self.borrows.contains(name) {
            format!("super::enums::{}<{lt}>", camel(name))
        } else {
            format!("super::enums::{}", camel(name))
        }
    }

    /// The Rust type of a field (`lt` is the lifetime to use).
    fn rust_ty(&self, c: &Combinator, t: &Ty, lt: &str) -> Result<String, String> {
        if t.is_vector() {
            let inner = t.arg.as_deref().ok_or("vector without element")?;
            let e = self.rust_ty(c, inner, lt)?;
            return Ok(if t.bare {
                format!("Seq<{lt}, {e}, true>")
            } else {
                format!("Seq<{lt}, {e}>")
            });
        }
        if c.generics.contains(&t.name) {
            return Ok(t.name.clone());
        }
        Ok(match t.name.as_str() {
            "int" => "i32".into(),
            "long" => "i64".into(),
            "double" => "f64".into(),
            "string" | "bytes" => format!("&{lt} [u8]"),
            "int128" => "[u8; 16]".into(),
            "int256" => "[u8; 32]".into(),
            "Bool" => "bool".into(),
            "Object" => format!("Obj<{lt}, Any>"),
            n if t.bare => return Err(format!("{}: bare constructor {n} has no typed form", c.name)),
            n => format!("Obj<{lt}, {}>", self.enum_ref(n, lt)),
        })
    }
}

/// One struct field: a plain value, an `Option`, an `Option` of a tuple, or a `true` flag.
enum Member {
    Plain {
        name: String,
        ty: String,
    },
    Opt {
        name: String,
        ty: String,
        word: usize,
        bit: u8,
    },
    Group {
        name: String,
        tys: Vec<String>,
        word: usize,
        bit: u8,
    },
    Flag {
        name: String,
        word: usize,
        bit: u8,
    },
    /// A `true` flag on a bit that also guards values: a method.
    Derived {
        name: String,
        of: String,
    },
}

/// Where each wire field's value lives: `(param index, expression reading it from a local)`.
struct Plan {
    members: Vec<Member>,
    /// Per wire parameter (flags words included): how it is read and written.
    wire: Vec<Wire>,
    words: usize,
    borrows: bool,
    generic: Option<String>,
}

enum Wire {
    Flags(usize),
    Plain(String, bool),
    Opt {
        member: String,
        word: usize,
        bit: u8,
    },
    GroupPart {
        member: String,
        index: usize,
        word: usize,
        bit: u8,
    },
}

fn plan(ctx: &Ctx<'_, '_>, c: &Combinator) -> Result<Plan, String> {
    let words: Vec<&str> = c
        .params
        .iter()
        .filter(|p| p.kind == ParamKind::Flags)
        .map(|p| p.name.as_str())
        .collect();
    // Values per (word, bit).
    let mut values: BTreeMap<(usize, u8), Vec<usize>> = BTreeMap::new();
    for (i, p) in c.params.iter().enumerate() {
        if let ParamKind::Value {
            ty,
            cond: Some((w, bit)),
        } = &p.kind
            && ty.name != "true"
        {
            let word = words.iter().position(|x| x == w).unwrap_or(0);
            values.entry((word, *bit)).or_default().push(i);
        }
    }
    let group_name = |ids: &[usize]| {
        ids.iter()
            .map(|&i| field_name(&c.params[i].name))
            .collect::<Vec<_>>()
            .join("_and_")
    };
    let mut members = Vec::new();
    let mut wire = Vec::new();
    let mut borrows = false;
    let mut generic = None;
    let mut done_groups = BTreeSet::new();
    for (i, p) in c.params.iter().enumerate() {
        match &p.kind {
            ParamKind::Flags => {
                let w = words.iter().position(|x| *x == p.name).unwrap_or(0);
                wire.push(Wire::Flags(w));
            }
            ParamKind::Value { ty, cond: None } => {
                let is_generic = c.generics.contains(&ty.name);
                if is_generic {
                    generic = Some(ty.name.clone());
                }
                borrows |= !is_generic && ctx.ty_borrows(ty);
                let name = field_name(&p.name);
                members.push(Member::Plain {
                    name: name.clone(),
                    ty: ctx.rust_ty(c, ty, "'a")?,
                });
                wire.push(Wire::Plain(name, is_generic));
            }
            ParamKind::Value {
                ty,
                cond: Some((w, bit)),
            } => {
                let word = words.iter().position(|x| x == w).unwrap_or(0);
                let vals = values.get(&(word, *bit)).cloned().unwrap_or_default();
                if ty.name == "true" {
                    let name = field_name(&p.name);
                    if vals.is_empty() {
                        members.push(Member::Flag { name, word, bit: *bit });
                    } else {
                        members.push(Member::Derived {
                            name,
                            of: group_name(&vals),
                        });
                    }
                    continue;
                }
                borrows |= ctx.ty_borrows(ty);
                if vals.len() == 1 {
                    let name = field_name(&p.name);
                    members.push(Member::Opt {
                        name: name.clone(),
                        ty: ctx.rust_ty(c, ty, "'a")?,
                        word,
                        bit: *bit,
                    });
                    wire.push(Wire::Opt {
                        member: name,
                        word,
                        bit: *bit,
                    });
                } else {
                    let name = group_name(&vals);
                    let index = vals.iter().position(|&x| x == i).unwrap_or(0);
                    if done_groups.insert((word, *bit)) {
                        let tys = vals
                            .iter()
                            .map(|&j| match &c.params[j].kind {
                                ParamKind::Value { ty, .. } => ctx.rust_ty(c, ty, "'a"),
                                ParamKind::Flags => Err("flags in a group".into()),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        members.push(Member::Group {
                            name: name.clone(),
                            tys,
                            word,
                            bit: *bit,
                        });
                    }
                    wire.push(Wire::GroupPart {
                        member: name,
                        index,
                        word,
                        bit: *bit,
                    });
                }
            }
        }
    }
    Ok(Plan {
        members,
        wire,
        words: words.len(),
        borrows,
        generic,
    })
}

fn doc_line(c: &Combinator) -> String {
    let mut s = format!("`{}#{:08x}", c.name, c.id);
    for p in &c.params {
        match &p.kind {
            ParamKind::Flags => {
                let _ = write!(s, " {}:#", p.name);
            }
            ParamKind::Value { ty, cond: None } => {
                let _ = write!(s, " {}:{ty}", p.name);
            }
            ParamKind::Value { ty, cond: Some((w, b)) } => {
                let _ = write!(s, " {}:{w}.{b}?{ty}", p.name);
            }
        }
    }
    let _ = write!(s, " = {}`", c.result);
    s
}

/// The Rust name of every combinator, by id: its camel-cased name, except that a schema defining a name more than
/// once (secret.tl keeps each layer's `decryptedMessage`, all of which can still arrive from older peers) gives the
/// last definition in the file (the newest layer) the plain name and each earlier one its id as a suffix
/// (`DecryptedMessage204d3878`).
fn rust_names(schema: &Schema) -> BTreeMap<u32, String> {
    let all = &schema.combinators;
    all.iter()
        .enumerate()
        .map(|(i, c)| {
            let later = all
                .iter()
                .skip(i + 1)
                .any(|x| x.name == c.name && x.is_function == c.is_function);
            let name = if later {
                format!("{}{:08x}", camel(&c.name), c.id)
            } else {
                camel(&c.name)
            };
            (c.id, name)
        })
        .collect()
}

impl Ctx<'_, '_> {
    fn name(&self, c: &Combinator) -> String {
        self.names.get(&c.id).cloned().unwrap_or_else(|| camel(&c.name))
    }
}

/// Emits the struct and impls of one combinator.
fn emit_struct(out: &mut String, ctx: &Ctx<'_, '_>, c: &Combinator) -> Result<(), String> {
    let p = plan(ctx, c)?;
    let name = ctx.name(c);
    let mut params = Vec::new();
    if p.borrows {
        params.push("'a".to_string());
    }
    if let Some(g) = &p.generic {
        params.push(g.clone());
    }
    let decl = if params.is_empty() {
        String::new()
    } else {
        format!("<{}>", params.join(", "))
    };
    let _ = writeln!(out, "/// {}", doc_line(c));
    let _ = writeln!(out, "#[derive(Clone, Copy, Debug)]\npub struct {name}{decl} {{");
    for m in &p.members {
        match m {
            Member::Plain { name, ty, .. } => {
                let _ = writeln!(out, "    pub {name}: {ty},");
            }
            Member::Opt { name, ty, .. } => {
                let _ = writeln!(out, "    pub {name}: Option<{ty}>,");
            }
            Member::Group { name, tys, .. } => {
                let _ = writeln!(out, "    pub {name}: Option<({})>,", tys.join(", "));
            }
            Member::Flag { name, .. } => {
                let _ = writeln!(out, "    pub {name}: bool,");
            }
            Member::Derived { .. } => {}
        }
    }
    out.push_str("}\n");
    // Inherent: id and derived flags.
    let impl_params = if params.is_empty() {
        String::new()
    } else {
        format!("<{}>", params.join(", "))
    };
    let _ = writeln!(
        out,
        "impl{impl_params} {name}{decl} {{\n    /// Constructor id.\n    pub const ID: u32 = 0x{:08x};",
        c.id
    );
    // The required fields as arguments, the optional ones absent and the `true` flags off: the call most users
    // make (`SendMessage::new(peer, message, random_id)`), beside the struct literal that names every field.
    let required: Vec<(&str, &str)> = p
        .members
        .iter()
        .filter_map(|m| match m {
            Member::Plain { name, ty } => Some((name.as_str(), ty.as_str())),
            _ => None,
        })
        .collect();
    let args: Vec<String> = required.iter().map(|(n, t)| format!("{n}: {t}")).collect();
    let _ = writeln!(
        out,
        "    /// The required fields; every optional one `None`, every `true` flag `false`.\n    #[must_use]\n    pub const fn new({}) -> Self {{\n        Self {{",
        args.join(", ")
    );
    for m in &p.members {
        match m {
            Member::Plain { name, .. } => {
                let _ = writeln!(out, "            {name},");
            }
            Member::Opt { name, .. } | Member::Group { name, .. } => {
                let _ = writeln!(out, "            {name}: None,");
            }
            Member::Flag { name, .. } => {
                let _ = writeln!(out, "            {name}: false,");
            }
            Member::Derived { .. } => {}
        }
    }
    out.push_str("        }\n    }\n");
    for m in &p.members {
        if let Member::Derived { name, of } = m {
            let _ = writeln!(
                out,
                "    /// The `true` flag on the bit of `{of}`.\n    #[must_use]\n    pub const fn {name}(&self) -> bool {{\n        self.{of}.is_some()\n    }}"
            );
        }
    }
    out.push_str("}\n");
    // Reading (for a generic wrapper: with the query as a validated `Query`).
    let read_ty = match (&p.generic, p.borrows) {
        (Some(_), true) => format!("{name}<'a, Query<'a>>"),
        (Some(_), false) => format!("{name}<Query<'a>>"),
        (None, true) => format!("{name}<'a>"),
        (None, false) => name.clone(),
    };
    let _ = writeln!(
        out,
        "impl<'a> Bare<'a> for {read_ty} {{\n    const ID: u32 = 0x{:08x};\n    #[allow(unused_variables)]\n    fn read_bare(c: &mut Cursor<'a>) -> Self {{",
        c.id
    );
    let mut group_locals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, w) in p.wire.iter().enumerate() {
        match w {
            Wire::Flags(k) => {
                let _ = writeln!(out, "        let f{k} = c.u32();");
            }
            Wire::Plain(..) => {
                let _ = writeln!(out, "        let v{i} = Field::fget(c);");
            }
            Wire::Opt { word, bit, .. } => {
                let _ = writeln!(
                    out,
                    "        let v{i} = if f{word} & (1 << {bit}) != 0 {{ Some(Field::fget(c)) }} else {{ None }};"
                );
            }
            Wire::GroupPart { member, word, bit, .. } => {
                let _ = writeln!(
                    out,
                    "        let v{i} = if f{word} & (1 << {bit}) != 0 {{ Some(Field::fget(c)) }} else {{ None }};"
                );
                group_locals.entry(member.clone()).or_default().push(format!("v{i}"));
            }
        }
    }
    out.push_str("        Self {\n");
    for m in &p.members {
        match m {
            Member::Plain { name, .. } | Member::Opt { name, .. } => {
                let i = p
                    .wire
                    .iter()
                    .position(|w| matches!(w, Wire::Plain(n, _) | Wire::Opt { member: n, .. } if n == name))
                    .unwrap_or(0);
                let _ = writeln!(out, "            {name}: v{i},");
            }
            Member::Group { name, .. } => {
                let locals = group_locals.get(name).cloned().unwrap_or_default();
                let pats: Vec<String> = locals.iter().map(|l| format!("Some({l})")).collect();
                let _ = writeln!(
                    out,
                    "            {name}: match ({}) {{ ({}) => Some(({})), _ => None }},",
                    locals.join(", "),
                    pats.join(", "),
                    locals.join(", ")
                );
            }
            Member::Flag { name, word, bit } => {
                let _ = writeln!(out, "            {name}: f{word} & (1 << {bit}) != 0,");
            }
            Member::Derived { .. } => {}
        }
    }
    out.push_str("        }\n    }\n}\n");
    // Writing.
    let (wparams, wdecl) = match (&p.generic, p.borrows) {
        (Some(g), true) => (format!("<'a, {g}: TlWrite>"), format!("{name}<'a, {g}>")),
        (Some(g), false) => (format!("<{g}: TlWrite>"), format!("{name}<{g}>")),
        (None, true) => ("<'a>".to_string(), format!("{name}<'a>")),
        (None, false) => (String::new(), name.clone()),
    };
    let _ = writeln!(out, "impl{wparams} {wdecl} {{");
    for k in 0..p.words {
        let mut bits = Vec::new();
        for m in &p.members {
            match m {
                Member::Opt { name, word, bit, .. } | Member::Group { name, word, bit, .. } if *word == k => {
                    bits.push(format!("flag(self.{name}.is_some(), {bit})"));
                }
                Member::Flag { name, word, bit } if *word == k => bits.push(format!("flag(self.{name}, {bit})")),
                _ => {}
            }
        }
        if bits.is_empty() {
            bits.push("0".into());
        }
        let _ = writeln!(
            out,
            "    const fn flags{k}(&self) -> u32 {{\n        {}\n    }}",
            bits.join(" | ")
        );
    }
    out.push_str("    fn bare_len(&self) -> usize {\n        0");
    for w in &p.wire {
        match w {
            Wire::Flags(_) => out.push_str(" + 4"),
            Wire::Plain(n, false) => {
                let _ = write!(out, " + Field::flen(&self.{n})");
            }
            Wire::Plain(n, true) => {
                let _ = write!(out, " + self.{n}.tl_len()");
            }
            Wire::Opt { member, .. } => {
                let _ = write!(out, " + self.{member}.as_ref().map_or(0, Field::flen)");
            }
            Wire::GroupPart { member, index, .. } => {
                let _ = write!(out, " + self.{member}.as_ref().map_or(0, |g| Field::flen(&g.{index}))");
            }
        }
    }
    out.push_str("\n    }\n    fn write_bare(&self, w: &mut Writer<'_>) -> Result<(), Full> {\n");
    for wf in &p.wire {
        match wf {
            Wire::Flags(k) => {
                let _ = writeln!(out, "        w.u32(self.flags{k}())?;");
            }
            Wire::Plain(n, false) => {
                let _ = writeln!(out, "        Field::fput(&self.{n}, w)?;");
            }
            Wire::Plain(n, true) => {
                let _ = writeln!(out, "        self.{n}.write(w)?;");
            }
            Wire::Opt { member, .. } => {
                let _ = writeln!(
                    out,
                    "        if let Some(v) = &self.{member} {{\n            Field::fput(v, w)?;\n        }}"
                );
            }
            Wire::GroupPart { member, index, .. } => {
                let _ = writeln!(
                    out,
                    "        if let Some(g) = &self.{member} {{\n            Field::fput(&g.{index}, w)?;\n        }}"
                );
            }
        }
    }
    out.push_str("        Ok(())\n    }\n}\n");
    let _ = writeln!(
        out,
        "impl{wparams} TlWrite for {wdecl} {{\n    fn tl_len(&self) -> usize {{\n        4 + self.bare_len()\n    }}\n    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {{\n        w.u32(Self::ID)?;\n        self.write_bare(w)\n    }}\n}}"
    );
    if c.is_function {
        if let Some(g) = &p.generic {
            let _ = writeln!(
                out,
                "impl{} RemoteCall for {wdecl} {{\n    type Return<'r> = {g}::Return<'r>;\n    fn decode_result(buf: &[u8]) -> Result<Self::Return<'_>, LayoutError> {{\n        {g}::decode_result(buf)\n    }}\n}}",
                wparams.replace(": TlWrite", ": RemoteCall")
            );
        } else {
            let ci = ctx.res.combinator_index(&c.name).ok_or("unindexed")?;
            let rec = ctx.res.records[ci].last().copied().ok_or("no return record")?;
            let ret = ctx.rust_ty(c, &c.result, "'r")?;
            let _ = writeln!(
                out,
                "impl{wparams} RemoteCall for {wdecl} {{\n    type Return<'r> = {ret};\n    fn decode_result(buf: &[u8]) -> Result<Self::Return<'_>, LayoutError> {{\n        decode_record(&{}, 0x{rec:08x}, buf)\n    }}\n}}",
                ctx.layout
            );
        }
    } else {
        let target = ctx.enum_ref(&c.result.name, "'a");
        let _ = writeln!(out, "impl<'a> OfType<{target}> for {read_ty} {{}}");
    }
    Ok(())
}

/// Writes the typed module for `schema`; `layout` is the path of its `Layout` static, `tables` of its tables module.
pub fn emit(schema: &Schema, source: &str, layout: &str, tables: &str) -> Result<String, String> {
    let res = resolve(schema)?;
    let mut borrows = BTreeSet::new();
    // A type borrows when any of its constructors has a borrowing field.
    let names = rust_names(schema);
    let probe = Ctx {
        res: &res,
        names: names.clone(),
        layout: layout.into(),
        borrows: BTreeSet::new(),
    };
    for c in &schema.combinators {
        if !c.is_function && plan(&probe, c)?.borrows {
            borrows.insert(c.result.name.clone());
        }
    }
    let ctx = Ctx {
        res: &res,
        names,
        layout: layout.into(),
        borrows,
    };
    let mut names = BTreeSet::new();
    for c in &schema.combinators {
        if !names.insert((c.is_function, ctx.name(c))) {
            return Err(format!("two combinators named {}", ctx.name(c)));
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// @generated by tl-gen from {source}. Do not edit: run `cargo run -p tl-gen` (tests/api_schema.rs checks it).\n\
         //! Typed borrowed views and writers for every constructor, type and function of `{source}`.\n\
         //!\n\
         //! [`types`] has a struct per constructor, [`enums`] an enum per boxed type, [`functions`] a struct per\n\
         //! function with its result type ([`RemoteCall`]). Decode with [`Boxed::decode`] (an enum) or\n\
         //! [`RemoteCall::decode_result`]; encode with [`crate::tl::encode`]. Field mapping: see `tl-gen/src/typed.rs`.\n\
         #![allow(clippy::all, clippy::pedantic, missing_docs, unused_imports, unused_parens, unused_variables, non_camel_case_types)]\n\n\
         pub use crate::tl::typed::{{Any, Bare, Boxed, Obj, OfType, Query, RemoteCall, Seq}};\n"
    );
    let prelude = "    use crate::tl::layout::Error as LayoutError;\n    use crate::tl::typed::{flag, decode_record, Any, Bare, Cursor, Field, Obj, OfType, Query, RemoteCall, Seq};\n    use crate::tl::{Full, TlWrite, Writer};\n";
    let mut types = String::new();
    let mut functions = String::new();
    for c in &schema.combinators {
        let buf = if c.is_function { &mut functions } else { &mut types };
        emit_struct(buf, &ctx, c)?;
    }
    out.push_str("/// A struct per constructor.\npub mod types {\n");
    out.push_str(prelude);
    out.push_str(&types);
    out.push_str("}\n\n/// A struct per function, each with its result type.\npub mod functions {\n");
    out.push_str(prelude);
    out.push_str(&functions);
    out.push_str("}\n\n/// An enum per boxed type, over its constructors.\npub mod enums {\n");
    let _ = writeln!(
        out,
        "    use crate::tl::layout::Layout;\n    use crate::tl::typed::{{Bare, Boxed, Cursor, OfType}};\n    use crate::tl::{{Full, TlWrite, Writer}};\n"
    );
    for (ti, t) in res.types.iter().enumerate() {
        let ctors = res.constructors_of(t);
        let e = camel(t);
        let lt = ctx.borrows.contains(t);
        let decl = if lt { format!("{e}<'a>") } else { e.clone() };
        let _ = writeln!(out, "/// `{t}`.\n#[derive(Clone, Copy, Debug)]\npub enum {decl} {{");
        let mut arms = Vec::new();
        for &ci in &ctors {
            let c = res.combinators[ci];
            let v = ctx.name(c);
            let vp = plan(&ctx, c)?;
            let vty = if vp.borrows {
                format!("super::types::{v}<'a>")
            } else {
                format!("super::types::{v}")
            };
            let _ = writeln!(out, "    {v}({vty}),");
            arms.push((v, c.id));
        }
        out.push_str("}\n");
        let _ = writeln!(
            out,
            "impl<'a> Boxed<'a> for {decl} {{\n    const TYPE: u16 = {ti};\n    const LAYOUT: &'static Layout = &{layout};\n    fn read_boxed(c: &mut Cursor<'a>) -> Option<Self> {{\n        Some(match c.u32() {{"
        );
        for (v, id) in &arms {
            let _ = writeln!(out, "            0x{id:08x} => Self::{v}(Bare::read_bare(c)),");
        }
        out.push_str("            _ => return None,\n        })\n    }\n}\n");
        let tl_impl = if lt {
            format!("impl TlWrite for {e}<'_>")
        } else {
            format!("impl TlWrite for {e}")
        };
        let _ = writeln!(
            out,
            "{tl_impl} {{\n    fn tl_len(&self) -> usize {{\n        match self {{"
        );
        for (v, _) in &arms {
            let _ = writeln!(out, "            Self::{v}(x) => x.tl_len(),");
        }
        out.push_str(
            "        }\n    }\n    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {\n        match self {\n",
        );
        for (v, _) in &arms {
            let _ = writeln!(out, "            Self::{v}(x) => x.write(w),");
        }
        out.push_str("        }\n    }\n}\n");
        let _ = writeln!(out, "impl<'a> OfType<{decl}> for {decl} {{}}");
    }
    out.push_str("}\n\nuse crate::tl::{Full, TlWrite, Writer};\nuse crate::tl::layout::{Error, Root};\nuse crate::tl::typed::Cursor;\n\n");
    // Uniform entry points for tests and fuzzing: decode as a type or a call, re-encode.
    let _ = writeln!(
        out,
        "/// Decodes `buf` as exactly one value of the type with index `ty` of `{tables}::ty` and re-encodes it into\n/// `out`: the encoded length, or why it did not decode (`Ok(Err(_))` when `out` is too small).\npub fn reencode_type(ty: u16, buf: &[u8], out: &mut [u8]) -> Result<Result<usize, Full>, Error> {{\n    match ty {{"
    );
    for (ti, t) in res.types.iter().enumerate() {
        let _ = writeln!(
            out,
            "        {ti} => Ok(crate::tl::encode(&enums::{}::decode(buf)?, out)),",
            camel(t)
        );
    }
    let _ = writeln!(
        out,
        "        _ => Err(Error::UnknownConstructor(u32::from(ty))),\n    }}\n}}\n"
    );
    let _ = writeln!(
        out,
        "/// Decodes `buf` as exactly one function call of the schema and re-encodes it into `out` (nested objects\n/// copied; a [`Writer::deep`] writer through [`write_call`] re-encodes them too).\npub fn reencode_call(buf: &[u8], out: &mut [u8]) -> Result<Result<usize, Full>, Error> {{\n    {layout}.validate_exact(buf, Root::Function)?;\n    let mut w = Writer::new(out);\n    Ok(write_call(buf, &mut w).map(|()| w.written()))\n}}\n\n/// Writes a call whose bytes `buf` were validated as a function of the schema through its generated struct\n/// (an id the schema lacks, impossible for validated bytes, is copied). Like [`Writer::put`]: on [`Full`] (whose\n/// `required` counts the whole call) nothing of the call was written.\npub fn write_call(buf: &[u8], w: &mut Writer<'_>) -> Result<(), Full> {{\n    let mut c = Cursor::new(buf, &{layout});\n    match c.u32() {{"
    );
    for c in schema.combinators.iter().filter(|c| c.is_function) {
        let n = ctx.name(c);
        let p = plan(&ctx, c)?;
        let ty = match (&p.generic, p.borrows) {
            (Some(_), true) => format!("functions::{n}<'_, Query<'_>>"),
            (Some(_), false) => format!("functions::{n}<Query<'_>>"),
            _ => format!("functions::{n}"),
        };
        let _ = writeln!(
            out,
            "        0x{:08x} => w.put(&<{ty} as Bare>::read_bare(&mut c)),",
            c.id
        );
    }
    let _ = writeln!(out, "        _ => w.raw(buf),\n    }}\n}}");
    Ok(out)
}
