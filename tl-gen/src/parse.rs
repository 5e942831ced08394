//! The `.tl` parser: text in, [`Schema`] out. Knows every construct of Telegram's published schemas (api.tl,
//! secret.tl, mtproto.tl); anything else is an [`Error`] naming the line, never a guess.

use std::fmt;

/// A parsed schema: every combinator in file order, after builtins are dropped and redefinitions resolved.
#[derive(Clone, Debug)]
pub struct Schema {
    /// Constructors and functions, in the order they appear (a redefinition replaces the earlier one in place).
    pub combinators: Vec<Combinator>,
    /// Combinators dropped because another one with the same id wins (see [`parse`]), as `(dropped, kept)` names.
    pub dropped: Vec<(String, String)>,
}

/// One line of the schema: a constructor (`---types---`) or a function (`---functions---`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Combinator {
    /// Full name with namespace (`messages.sendMessage`).
    pub name: String,
    /// The id on the wire: the explicit `#id`, or the CRC32 of the normalized line ([`Combinator::inferred_id`]).
    pub id: u32,
    /// Whether the line carried an explicit `#id`.
    pub explicit_id: bool,
    /// The CRC32 of the normalized line, whatever the line says.
    pub inferred_id: u32,
    /// Type variables declared as `{X:Type}`.
    pub generics: Vec<String>,
    /// Parameters in order, `flags:#` words included.
    pub params: Vec<Param>,
    /// Result type (a function's return type).
    pub result: Ty,
    /// Whether this is a function (from a `---functions---` section).
    pub is_function: bool,
    /// 1-based line number in the source, for messages.
    pub line: usize,
}

/// A parameter of a combinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// What it holds.
    pub kind: ParamKind,
}

/// A parameter is a flags word or a (possibly conditional) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// `name:#`: a 32-bit word whose bits say which conditional fields are present.
    Flags,
    /// `name:T` or `name:flags.N?T`.
    Value {
        /// The type.
        ty: Ty,
        /// `(flags word name, bit)` when conditional.
        cond: Option<(String, u8)>,
    },
}

/// A type reference as written in a parameter or result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ty {
    /// Name with namespace (`int`, `InputPeer`, `help.ConfigSimple`, `future_salt`, `X`), without `%`, `!`.
    pub name: String,
    /// Bare: `%T`, a lower-case name (`int`, `vector<..>`, `future_salt`).
    pub bare: bool,
    /// `!X`: a serialized value of the type variable `X` (any function call).
    pub generic_ref: bool,
    /// The element type of `Vector<T>`/`vector<T>`.
    pub arg: Option<Box<Ty>>,
}

impl Ty {
    /// Whether this is `Vector<T>` or `vector<T>`.
    pub fn is_vector(&self) -> bool {
        self.name.eq_ignore_ascii_case("vector")
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.generic_ref {
            f.write_str("!")?;
        }
        f.write_str(&self.name)?;
        if let Some(a) = &self.arg {
            write!(f, "<{a}>")?;
        }
        Ok(())
    }
}

/// A line the parser cannot read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for Error {}

/// Standard CRC-32 (IEEE, reflected), the one TL ids are computed with.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// The line a combinator's id is the CRC32 of: `name X:Type a:int b:flags.0?string c:Vector long = R`, i.e. without
/// the id, with `{}` and `<>` dropped, `bytes` written `string` and `flags.N?true` parameters left out (the rule
/// Telegram's own generators follow).
pub fn normalized(c: &Combinator) -> String {
    fn ty(t: &Ty) -> String {
        let mut s = String::new();
        if t.generic_ref {
            s.push('!');
        }
        if t.bare && !t.is_vector() && !t.name.starts_with(|c: char| c.is_ascii_lowercase()) {
            s.push('%');
        }
        s.push_str(&t.name);
        if let Some(a) = &t.arg {
            s.push(' ');
            s.push_str(&ty(a));
        }
        s
    }
    let mut out = c.name.clone();
    for g in &c.generics {
        out.push_str(&format!(" {g}:Type"));
    }
    for p in &c.params {
        match &p.kind {
            ParamKind::Flags => out.push_str(&format!(" {}:#", p.name)),
            ParamKind::Value { ty: t, cond } => {
                let mut tys = ty(t);
                if tys == "bytes" {
                    tys = "string".into();
                }
                match cond {
                    Some(_) if t.name == "true" => {}
                    Some((f, bit)) => out.push_str(&format!(" {}:{f}.{bit}?{tys}", p.name)),
                    None => out.push_str(&format!(" {}:{tys}", p.name)),
                }
            }
        }
    }
    out.push_str(" = ");
    out.push_str(&ty(&c.result));
    out
}

fn err(line: usize, what: impl Into<String>) -> Error {
    Error {
        line,
        what: what.into(),
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            p.starts_with(|c: char| c.is_ascii_alphabetic()) && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Parses a type reference: `int`, `%Message`, `!X`, `Vector<long>`, `vector<%Message>`, `flags` is not a type.
fn parse_ty(s: &str, line: usize) -> Result<Ty, Error> {
    let (generic_ref, s) = match s.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (pct, s) = match s.strip_prefix('%') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (name, arg) = match s.find('<') {
        Some(i) => {
            let inner = s
                .get(i + 1..)
                .and_then(|r| r.strip_suffix('>'))
                .ok_or_else(|| err(line, format!("unclosed '<' in {s}")))?;
            (&s[..i], Some(Box::new(parse_ty(inner, line)?)))
        }
        None => (s, None),
    };
    if !is_ident(name) {
        return Err(err(line, format!("bad type name {name:?}")));
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let bare = pct || last.starts_with(|c: char| c.is_ascii_lowercase());
    let ty = Ty {
        name: name.to_string(),
        bare,
        generic_ref,
        arg,
    };
    if ty.is_vector() != ty.arg.is_some() {
        return Err(err(line, format!("type arguments only on vector: {s}")));
    }
    Ok(ty)
}

/// Builtin declarations that describe the encoding rather than a constructor (`int ? = Int;`, `bytes = Bytes;`,
/// `int128 4*[ int ] = Int128;`, `vector {t:Type} # [ t ] = Vector t;`).
fn is_builtin(body: &str) -> bool {
    body.contains(" ? =")
        || body.contains('[')
        || matches!(
            body.split_whitespace().next(),
            Some("int" | "long" | "double" | "string" | "bytes" | "int128" | "int256")
        )
}

fn parse_line(body: &str, line: usize, is_function: bool) -> Result<Combinator, Error> {
    let (lhs, rhs) = body
        .split_once(" = ")
        .ok_or_else(|| err(line, "no ' = ' before the result type"))?;
    let result = parse_ty(rhs.trim(), line)?;
    let mut words = lhs.split_whitespace();
    let head = words.next().ok_or_else(|| err(line, "empty combinator"))?;
    let (name, id) = match head.split_once('#') {
        Some((n, h)) => {
            let id = u32::from_str_radix(h, 16).map_err(|_| err(line, format!("bad id #{h}")))?;
            (n, Some(id))
        }
        None => (head, None),
    };
    if !is_ident(name) {
        return Err(err(line, format!("bad combinator name {name:?}")));
    }
    let mut generics = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    for w in words {
        if let Some(g) = w.strip_prefix('{') {
            let g = g
                .strip_suffix(":Type}")
                .ok_or_else(|| err(line, format!("unsupported generic {w}")))?;
            generics.push(g.to_string());
            continue;
        }
        let (pname, pty) = w
            .split_once(':')
            .ok_or_else(|| err(line, format!("parameter without type: {w}")))?;
        if !is_ident(pname) {
            return Err(err(line, format!("bad parameter name {pname:?}")));
        }
        let kind = if pty == "#" {
            ParamKind::Flags
        } else if let Some((c, t)) = pty.split_once('?') {
            let (fname, bit) = c
                .split_once('.')
                .ok_or_else(|| err(line, format!("bad condition {c}")))?;
            let bit: u8 = bit.parse().map_err(|_| err(line, format!("bad flag bit {c}")))?;
            if bit > 31 {
                return Err(err(line, format!("flag bit {bit} past 31")));
            }
            if !params.iter().any(|p| p.name == fname && p.kind == ParamKind::Flags) {
                return Err(err(
                    line,
                    format!("condition on {fname}, which is not an earlier '#' parameter"),
                ));
            }
            ParamKind::Value {
                ty: parse_ty(t, line)?,
                cond: Some((fname.to_string(), bit)),
            }
        } else {
            ParamKind::Value {
                ty: parse_ty(pty, line)?,
                cond: None,
            }
        };
        if let ParamKind::Value { ty, .. } = &kind
            && ty.generic_ref
            && !generics.contains(&ty.name)
        {
            return Err(err(line, format!("!{} without {{{}:Type}}", ty.name, ty.name)));
        }
        params.push(Param {
            name: pname.to_string(),
            kind,
        });
    }
    let mut c = Combinator {
        name: name.to_string(),
        id: 0,
        explicit_id: id.is_some(),
        inferred_id: 0,
        generics,
        params,
        result,
        is_function,
        line,
    };
    c.inferred_id = crc32(normalized(&c).as_bytes());
    c.id = id.unwrap_or(c.inferred_id);
    Ok(c)
}

/// Parses a whole `.tl` file.
///
/// - `//` comments (whole-line and trailing), blank lines, builtin declarations (`int ? = Int;` and the like) are
///   skipped; `---types---` and `---functions---` switch sections; `===N===` layer markers (secret.tl) are accepted.
/// - A combinator whose name was defined before replaces the earlier one (secret.tl lists each constructor once per
///   layer that changed it; the newest wins).
/// - Two combinators with the same id (api.tl's TDLib-internal `invokeWith*Prefix` functions share the ids of the
///   real `invokeWith*` wrappers): the one whose line hashes to that id wins, the other is listed in
///   [`Schema::dropped`]. When neither or both hash to it, that is an error.
pub fn parse(text: &str) -> Result<Schema, Error> {
    let mut out: Vec<Combinator> = Vec::new();
    let mut is_function = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let body = raw.split("//").next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        match body {
            "---functions---" => {
                is_function = true;
                continue;
            }
            "---types---" => {
                is_function = false;
                continue;
            }
            _ => {}
        }
        if body.starts_with("===") && body.ends_with("===") {
            continue;
        }
        let body = body
            .strip_suffix(';')
            .ok_or_else(|| err(line, "combinator does not end with ';'"))?
            .trim();
        if is_builtin(body) {
            continue;
        }
        let c = parse_line(body, line, is_function)?;
        if let Some(old) = out.iter_mut().find(|o| o.name == c.name) {
            *old = c;
        } else {
            out.push(c);
        }
    }
    let mut dropped = Vec::new();
    let mut i = 0;
    while i < out.len() {
        let Some(j) = (0..out.len()).find(|&j| j != i && out[j].id == out[i].id) else {
            i += 1;
            continue;
        };
        let (a, b) = (&out[i], &out[j]);
        let a_ok = a.inferred_id == a.id;
        let b_ok = b.inferred_id == b.id;
        let lose = match (a_ok, b_ok) {
            (true, false) => j,
            (false, true) => i,
            _ => {
                return Err(err(
                    b.line.max(a.line),
                    format!("{} and {} share id {:08x}", a.name, b.name, a.id),
                ));
            }
        };
        let keep = if lose == i { j } else { i };
        dropped.push((out[lose].name.clone(), out[keep].name.clone()));
        out.remove(lose);
        i = 0;
    }
    Ok(Schema {
        combinators: out,
        dropped,
    })
}
