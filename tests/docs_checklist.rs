//! Keeps docs/CHECKLIST.md and docs/THREAT_MODEL.md honest against the code they describe:
//! - the checklist has items 1–77 and the threat model attacks B1–B20, each once and in order;
//! - every `chk_NNN_*` / `atk_bNN_*` test the pages name exists (a `fn`, a `mod`, or a file of that name under
//!   src/, tests/, fuzz/ or nostd-check/), and each item or attack names at least one test of its own number;
//! - every such test in the repository is named under its own item or attack, so a new test is documented;
//! - every `path.rs::name` (or `path.rs::Type::name`) they cite is a file that defines each name.
//!
//! Reading files at test time (not `include_str!`) keeps the failure messages specific: which item, which name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const ITEMS: u32 = 77;
const ATTACKS: u32 = 20;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.map(Result::unwrap) {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target" || n == "corpus") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier starting at byte `at` of `s`.
fn ident_at(s: &str, at: usize) -> &str {
    let rest = &s[at..];
    let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
    &rest[..end]
}

/// Whether `name` is a checklist (`chk_NNN_x`) or attack (`atk_bNN_x`) test name.
fn test_id(name: &str) -> Option<(char, u32)> {
    let b = name.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = name.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    if name.starts_with("chk_") && b.len() > 8 && b[7] == b'_' {
        return Some(('c', digits(4..7)?));
    }
    if name.starts_with("atk_b") && b.len() > 8 && b[7] == b'_' {
        return Some(('a', digits(5..7)?));
    }
    None
}

/// Every identifier that follows one of `keywords` (e.g. `fn `, `mod `) in `src`.
fn defined_after<'a>(src: &'a str, keywords: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for kw in keywords {
        let mut from = 0;
        while let Some(i) = src[from..].find(kw) {
            let at = from + i;
            let boundary = at == 0 || !is_ident(src[..at].chars().next_back().unwrap());
            let name = ident_at(src, at + kw.len());
            if boundary && !name.is_empty() {
                out.push(name);
            }
            from = at + kw.len();
        }
    }
    out
}

/// The `chk_*` / `atk_*` tests defined in the repository, with the file defining each.
fn defined_tests() -> BTreeMap<String, String> {
    let mut files = Vec::new();
    for dir in ["src", "tests", "fuzz", "nostd-check"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        // A whole test file named after its item (tests/default_build/chk_077_...), built by nostd-check.
        if test_id(&stem).is_some() && rel.starts_with("tests/") {
            out.insert(stem, rel.clone());
        }
        let src = fs::read_to_string(&f).unwrap();
        for name in defined_after(&src, &["fn ", "mod "]) {
            if test_id(name).is_some() {
                out.insert(name.to_string(), rel.clone());
            }
        }
    }
    out
}

/// Splits `doc` into sections at lines starting with `marker` (e.g. `### `), returning each heading line and
/// the text up to the next heading.
fn sections<'a>(doc: &'a str, marker: &str) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in doc.lines() {
        if line.starts_with(marker) {
            out.push((line, String::new()));
        } else if line.starts_with("## ") {
            // A new part ends the last item of the previous one.
            out.push(("", String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out.retain(|(h, _)| !h.is_empty());
    out
}

/// The backticked spans of `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The test names a piece of documentation mentions in backticks.
fn named_tests(text: &str) -> Vec<&str> {
    // A span with `*` is a family (`chk_033_*`), not a name.
    code_spans(text)
        .into_iter()
        .filter(|s| !s.contains('*') && test_id(s).is_some())
        .collect()
}

/// Checks one page: numbered sections, the tests they name, and the reverse (every test of `kind` is named in the
/// section of its number). Returns the problems found.
fn check_page(
    page: &str,
    marker: &str,
    kind: char,
    count: u32,
    number: impl Fn(&str) -> Option<u32>,
    defined: &BTreeMap<String, String>,
) -> Vec<String> {
    let doc = read(page);
    let mut problems = Vec::new();
    let secs = sections(&doc, marker);
    let numbers: Vec<u32> = secs.iter().filter_map(|(h, _)| number(h)).collect();
    if numbers != (1..=count).collect::<Vec<_>>() {
        problems.push(format!(
            "{page}: sections are numbered {numbers:?}, want 1..={count} in order"
        ));
    }
    let mut listed: BTreeMap<u32, BTreeSet<&str>> = BTreeMap::new();
    for (h, body) in &secs {
        let Some(n) = number(h) else {
            problems.push(format!("{page}: heading without a number: {h}"));
            continue;
        };
        for t in named_tests(body).into_iter().chain(named_tests(h)) {
            if !defined.contains_key(t) {
                problems.push(format!("{page} {h}: names `{t}`, which no file defines"));
            }
            if test_id(t) == Some((kind, n)) {
                listed.entry(n).or_default().insert(t);
            }
        }
        if listed.get(&n).is_none_or(BTreeSet::is_empty) {
            problems.push(format!("{page} {h}: names no test of its own number"));
        }
    }
    for (t, file) in defined {
        if let Some((k, n)) = test_id(t)
            && k == kind
            && !listed.get(&n).is_some_and(|s| s.contains(t.as_str()))
        {
            problems.push(format!("{page}: `{t}` ({file}) is not listed under its number {n}"));
        }
    }
    // Tests of the other kind named anywhere on the page must exist too.
    for t in named_tests(&doc) {
        if !defined.contains_key(t) {
            problems.push(format!("{page}: names `{t}`, which no file defines"));
        }
    }
    problems
}

/// Checks every backticked `dir/file.rs::a::b` citation of `page`: the file exists and defines `a` and `b`.
fn check_citations(page: &str) -> Vec<String> {
    let doc = read(page);
    let mut problems = Vec::new();
    let kinds = [
        "fn ",
        "struct ",
        "enum ",
        "const ",
        "static ",
        "type ",
        "trait ",
        "mod ",
        "macro_rules! ",
    ];
    let mut cited = 0;
    for span in code_spans(&doc) {
        let Some((file, path)) = span.split_once(".rs::") else {
            continue;
        };
        let file = format!("{file}.rs");
        let Ok(src) = fs::read_to_string(root().join(&file)) else {
            problems.push(format!("{page}: `{span}`: no file {file}"));
            continue;
        };
        let defined: BTreeSet<&str> = defined_after(&src, &kinds).into_iter().collect();
        for name in path.split("::") {
            if !defined.contains(name) {
                problems.push(format!("{page}: `{span}`: {file} defines no `{name}`"));
            }
        }
        cited += 1;
    }
    assert!(cited > 0, "{page} cites no file::function at all");
    problems
}

fn report(problems: Vec<String>) {
    let problems: Vec<String> = problems.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn checklist_items_name_existing_tests_and_every_chk_test_is_listed() {
    let defined = defined_tests();
    let item = |h: &str| h.strip_prefix("### ")?.split_once(". ")?.0.parse().ok();
    report(check_page("docs/CHECKLIST.md", "### ", 'c', ITEMS, item, &defined));
}

#[test]
fn threat_model_attacks_name_existing_tests_and_every_atk_test_is_listed() {
    let defined = defined_tests();
    let attack = |h: &str| h.strip_prefix("### B")?.split_once(". ")?.0.parse().ok();
    report(check_page(
        "docs/THREAT_MODEL.md",
        "### B",
        'a',
        ATTACKS,
        attack,
        &defined,
    ));
}

#[test]
fn cited_functions_exist() {
    let mut problems = check_citations("docs/CHECKLIST.md");
    problems.extend(check_citations("docs/THREAT_MODEL.md"));
    report(problems);
}

/// The repository cites only documents it contains: the security checklist and the style notes it was built
/// against lived outside it; the docs above replace them.
#[test]
fn no_citation_of_documents_outside_the_repository() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "examples", "benches", "fuzz", "docs", "nostd-check"] {
        rust_files(&root().join(dir), &mut files);
    }
    for dir in ["docs", "examples"] {
        for e in fs::read_dir(root().join(dir)).unwrap().map(Result::unwrap) {
            if e.path().extension().is_some_and(|x| x == "md") {
                files.push(e.path());
            }
        }
    }
    files.push(root().join("README.md"));
    // Spelled in pieces so that this file does not match itself.
    let needles = [
        format!("{}.md", "SECURITY"),
        format!("{}.md", "STYLE"),
        format!("{}/", "shared"),
    ];
    let mut problems = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
        let src = fs::read_to_string(&f).unwrap();
        for (i, line) in src.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n.as_str())) {
                problems.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    report(problems);
}
