//! The generated schema tables: they match a fresh run of the generator, every explicit id matches the CRC32 of
//! its normalized line, and the generic validator turns each kind of malformed input into its typed error.

use std::path::Path;

use mtproto_sansio::tl::layout::{Error, Layout, MAX_DEPTH, Mark, Marks, Root, VARIABLE, end_in};
use mtproto_sansio::tl::tables::{api, mtproto, secret};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The checked-in output is exactly what the generator writes now (schemas or generator changed without a rerun
/// of `cargo run -p tl-gen` fails here).
#[test]
fn generated_files_are_up_to_date() {
    for (path, text) in tl_gen::generate_all(root()).unwrap() {
        let on_disk = std::fs::read_to_string(root().join(&path)).unwrap();
        assert!(on_disk == text, "{path} is stale: run `cargo run -p tl-gen`");
    }
}

/// Explicit ids equal the CRC32 of the normalized line, except the lines known to have been hashed otherwise.
#[test]
fn explicit_ids_match_their_crc() {
    // api.tl's TDLib-internal lines before the first `---functions---` (ids hashed from other text), secret.tl's
    // document media (hashed without the bytes->string rewrite, as the schema's header says) and mtproto.tl's
    // container (hashed with the bare constructor name `message` for `%Message`).
    let known: &[&str] = &[
        "ipPortSecret",
        "accessPointRule",
        "help.configSimple",
        "inputPeerPhotoFileLocationLegacy",
        "inputStickerSetThumbLegacy",
        "decryptedMessageMediaDocument",
        "msg_container",
    ];
    let mut checked = 0;
    for f in ["api", "secret", "mtproto"] {
        let text = std::fs::read_to_string(root().join(format!("tl-gen/schema/{f}.tl"))).unwrap();
        let s = tl_gen::parse(&text).unwrap();
        for c in &s.combinators {
            if c.explicit_id && !known.contains(&c.name.as_str()) {
                assert_eq!(
                    c.id,
                    c.inferred_id,
                    "{f}.tl line {}: {} normalizes to {:?}",
                    c.line,
                    c.name,
                    tl_gen::normalized(c)
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 2400, "only {checked} ids checked");
    // A line without an id gets the CRC: the same line with its id removed hashes to the published one.
    let api_text = std::fs::read_to_string(root().join("tl-gen/schema/api.tl")).unwrap();
    let line = api_text
        .lines()
        .find(|l| l.starts_with("messages.sendMessage#"))
        .unwrap();
    let (name, rest) = line.split_once('#').unwrap();
    let without_id = format!("---functions---\n{name}{}\n", &rest[8..]);
    let s = tl_gen::parse(&without_id).unwrap();
    let full = tl_gen::parse(&api_text).unwrap();
    let published = full
        .combinators
        .iter()
        .find(|c| c.name == "messages.sendMessage")
        .unwrap();
    assert_eq!(s.combinators[0].id, published.id);
    assert!(!s.combinators[0].explicit_id);
}

/// The tables hold every combinator the parser found, sorted by id, and the counts of api.tl layer 228.
#[test]
fn tables_cover_the_schemas() {
    for (layout, names) in [
        (&api::API, &api::NAMES[..]),
        (&secret::SECRET, &secret::NAMES[..]),
        (&mtproto::MTPROTO, &mtproto::NAMES[..]),
    ] {
        assert_eq!(layout.ids.len(), names.len());
        assert_eq!(layout.heads.len(), names.len());
        assert_eq!(layout.field_start.len(), names.len() + 1);
        assert!(layout.ids.windows(2).all(|w| w[0] < w[1]));
    }
    assert_eq!(api::API.ids.len(), 2457);
    let fns = (0..2457u16).filter(|&i| api::API.is_function(i)).count();
    assert_eq!(fns, 809);
}

/// `Layout::find` goes through the top-byte index: every id of every table is found at its position, and the ids
/// next to them, the extremes and every bucket's edges (empty buckets included) are not found unless they exist.
#[test]
fn every_id_is_found_through_the_index_and_no_other() {
    for layout in [&api::API, &secret::SECRET, &mtproto::MTPROTO] {
        assert_eq!(layout.index.first(), Some(&0));
        assert_eq!(layout.index.last().map(|&n| usize::from(n)), Some(layout.ids.len()));
        assert!(layout.index.windows(2).all(|w| w[0] <= w[1]));
        for (i, &id) in layout.ids.iter().enumerate() {
            assert_eq!(layout.find(id), Some(u16::try_from(i).unwrap()), "{id:#010x}");
        }
        let mut probes: Vec<u32> = vec![0, 1, u32::MAX, u32::MAX - 1];
        for &id in layout.ids {
            probes.extend([id.wrapping_sub(1), id.wrapping_add(1)]);
        }
        for b in 0..=255u32 {
            probes.extend([b << 24, (b << 24) | 0x00ff_ffff]);
        }
        for id in probes {
            let expected = layout.ids.binary_search(&id).ok().map(|i| u16::try_from(i).unwrap());
            assert_eq!(layout.find(id), expected, "{id:#010x}");
        }
    }
}

fn le(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

const PEER_USER: u32 = 0x59511722; // peerUser#59511722 user_id:long = Peer
const INPUT_PEER_SELF: u32 = 0x7da07ec9;

fn id(name: &str) -> u32 {
    let i = api::NAMES.iter().position(|n| *n == name).unwrap();
    api::API.ids[i]
}

#[test]
fn validates_simple_objects() {
    assert_eq!(id("peerUser"), PEER_USER);
    let mut b = le(&[PEER_USER]);
    b.extend(7u64.to_le_bytes());
    assert_eq!(api::API.validate(&b, Root::Type(api::ty::PEER)), Ok(12));
    assert_eq!(api::API.validate(&b, Root::Object), Ok(12));
    // Same bytes, wrong type.
    assert_eq!(
        api::API.validate(&b, Root::Type(api::ty::INPUT_PEER)),
        Err(Error::WrongType(PEER_USER))
    );
    // Trailing bytes are left to the caller, or refused by the exact form.
    b.push(0);
    assert_eq!(api::API.validate(&b, Root::Type(api::ty::PEER)), Ok(12));
    assert_eq!(
        api::API.validate_exact(&b, Root::Type(api::ty::PEER)),
        Err(Error::Trailing)
    );
}

#[test]
fn truncated_input_is_a_typed_error() {
    let mut b = le(&[PEER_USER]);
    b.extend(7u64.to_le_bytes());
    for n in 0..b.len() {
        assert_eq!(
            api::API.validate(&b[..n], Root::Type(api::ty::PEER)),
            Err(Error::Truncated),
            "n={n}"
        );
    }
}

#[test]
fn unknown_nested_id_is_a_typed_error() {
    // inputPeerUserFromMessage#a87b0a1c peer:InputPeer msg_id:int user_id:long
    let mut b = le(&[id("inputPeerUserFromMessage"), 0xdead_beef, 1]);
    b.extend(5u64.to_le_bytes());
    assert_eq!(
        api::API.validate(&b, Root::Type(api::ty::INPUT_PEER)),
        Err(Error::UnknownConstructor(0xdead_beef))
    );
    let mut ok = le(&[id("inputPeerUserFromMessage"), INPUT_PEER_SELF, 1]);
    ok.extend(5u64.to_le_bytes());
    assert_eq!(api::API.validate(&ok, Root::Type(api::ty::INPUT_PEER)), Ok(ok.len()));
}

#[test]
fn flag_bit_without_its_field_is_a_typed_error() {
    // messages.sendMessage with flags bit 0 (reply_to) set, the input ending where reply_to should start.
    let b = le(&[id("messages.sendMessage"), 1, INPUT_PEER_SELF]);
    assert_eq!(
        api::API.validate(&b, Root::Function),
        Err(Error::FlagFieldMissing { word: 0, bit: 0 })
    );
    // updateShortMessage#313bc7f8 flags:# ... fwd_from:flags.2?MessageFwdHeader ...: user_id present, fields
    // after flags missing only where a bit asks for them.
    let mut m = le(&[id("updateShortMessage"), 1 << 2, 9]); // flags, id
    m.extend(1u64.to_le_bytes()); // user_id
    m.extend([0u8; 4]); // message "" (len 0 + 3 padding)
    m.extend(le(&[1, 2, 3])); // pts pts_count date
    assert_eq!(
        api::API.validate(&m, Root::Type(api::ty::UPDATES)),
        Err(Error::FlagFieldMissing { word: 0, bit: 2 })
    );
}

#[test]
fn vector_count_past_input_is_a_typed_error() {
    // messages.getMessages#63c66506 id:Vector<InputMessage>: a count of 2^30 with 8 bytes behind it.
    let b = le(&[id("messages.getMessages"), 0x1cb5_c415, 1 << 30, 0, 0]);
    assert_eq!(api::API.validate(&b, Root::Function), Err(Error::CountPastInput));
    // msgs_ack#62d6b459 msg_ids:Vector<long> = MsgsAck: 3 longs announced, 2 present.
    let mut m = le(&[0x62d6_b459, 0x1cb5_c415, 3]);
    m.extend([0u8; 16]);
    assert_eq!(mtproto::MTPROTO.validate(&m, Root::Object), Err(Error::CountPastInput));
    m.extend([0u8; 8]);
    assert_eq!(mtproto::MTPROTO.validate(&m, Root::Object), Ok(m.len()));
}

/// `textBold#6724abc4 text:RichText = RichText` nests without end; the validator stops at MAX_DEPTH.
#[test]
fn over_deep_nesting_is_a_typed_error() {
    let bold = id("textBold");
    let nest = |n: usize| {
        let mut b = le(&vec![bold; n]);
        b.extend(le(&[id("textEmpty")]));
        b
    };
    let ok = nest(usize::from(MAX_DEPTH) - 1);
    assert_eq!(api::API.validate(&ok, Root::Type(api::ty::RICH_TEXT)), Ok(ok.len()));
    let deep = nest(usize::from(MAX_DEPTH));
    assert_eq!(
        api::API.validate(&deep, Root::Type(api::ty::RICH_TEXT)),
        Err(Error::TooDeep)
    );
    // A million levels: refused at the limit, no stack overflow.
    let huge = nest(1_000_000);
    assert_eq!(
        api::API.validate(&huge, Root::Type(api::ty::RICH_TEXT)),
        Err(Error::TooDeep)
    );
}

#[test]
fn generic_query_is_any_function() {
    // invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X; around help.getConfig#c4f9186b.
    let b = le(&[id("invokeWithLayer"), 228, id("help.getConfig")]);
    assert_eq!(api::API.validate(&b, Root::Function), Ok(12));
    // A constructor where a function is required.
    let c = le(&[id("invokeWithLayer"), 228, INPUT_PEER_SELF]);
    assert_eq!(
        api::API.validate(&c, Root::Function),
        Err(Error::WrongType(INPUT_PEER_SELF))
    );
    let layout: &Layout = &api::API;
    let i = layout.find(id("messages.sendMessage")).unwrap();
    assert!(layout.returns(i).is_some());
}

/// `Layout::fixed` lets the validator and the views step over a combinator in one move: it must name exactly the
/// size the record walk finds (checked against the same layout without the table, which walks every record), and
/// short input must fail as the walk fails.
#[test]
fn fixed_sizes_are_what_the_walk_finds() {
    for layout in [&api::API, &secret::SECRET, &mtproto::MTPROTO] {
        assert_eq!(layout.fixed.len(), layout.ids.len());
        let walk = Layout { fixed: &[], ..*layout };
        let mut fixed = 0;
        for (i, &n) in layout.fixed.iter().enumerate() {
            let root = Root::Bare(u16::try_from(i).unwrap());
            let bytes: Vec<u8> = (0..=usize::from(n.min(80))).map(|b| b as u8 ^ 0x5a).collect();
            for len in 0..bytes.len() {
                let input = &bytes[..len];
                assert_eq!(
                    layout.validate(input, root),
                    walk.validate(input, root),
                    "{} at {len}",
                    layout.ids[i]
                );
            }
            if n != VARIABLE {
                fixed += 1;
                assert_eq!(walk.validate(&bytes, root), Ok(usize::from(n)));
            }
        }
        assert!(fixed > 0);
    }
    let size = |name: &str| api::API.fixed[usize::from(api::API.find(id(name)).unwrap())];
    assert_eq!(size("peerUser"), 8);
    assert_eq!(size("userStatusOnline"), 4);
    assert_eq!(size("chatPhotoEmpty"), 0);
    assert_eq!(size("messageEntityBold"), 8);
    // flags:# collapsed:flags.0?true offset:int length:int: a flags word that guards only a `true` flag.
    assert_eq!(size("messageEntityBlockquote"), 12);
    assert_eq!(size("help.getConfig"), 0);
    assert_eq!(size("messageEntityTextUrl"), VARIABLE);
    assert_eq!(size("message"), VARIABLE);
    assert_eq!(size("updateShortMessage"), VARIABLE);
}

/// `Layout::skip`, the views' trusting walk, ends where the validator ends on bytes it accepted, and stays total
/// (no panic, an end inside the input) on bytes it did not: every prefix and byte flip of accepted values.
#[test]
fn skip_finds_the_validated_end_and_is_total_on_any_bytes() {
    let m = forwarded_short_message();
    let mut ok = le(&[
        id("messages.getMessages"),
        0x1cb5_c415,
        2,
        id("inputMessageID"),
        1,
        id("inputMessageID"),
        2,
    ]);
    ok.extend([9; 3]);
    let cases = [
        (m, Root::Type(api::ty::UPDATES)),
        (ok, Root::Function),
        (
            le(&[id("textBold"), id("textBold"), id("textEmpty")]),
            Root::Type(api::ty::RICH_TEXT),
        ),
    ];
    for (bytes, root) in cases {
        let n = api::API.validate(&bytes, root).unwrap();
        assert_eq!(api::API.skip(&bytes, 0, root.record()), n);
        for len in 0..bytes.len() {
            assert!(api::API.skip(&bytes[..len], 0, root.record()) <= len);
        }
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                let end = api::API.skip(&b, 0, root.record());
                assert!(end <= b.len());
                if let Ok(n) = api::API.validate(&b, root) {
                    assert_eq!(end, n, "flip {flip:#x} at {i}");
                }
            }
        }
    }
    // A million nested levels and a vector count of 2^32 - 1 end the walk at the input's end without recursing
    // or looping past it.
    let mut deep = le(&vec![id("textBold"); 1_000_000]);
    deep.extend(le(&[id("textEmpty")]));
    assert!(api::API.skip(&deep, 0, Root::Type(api::ty::RICH_TEXT).record()) <= deep.len());
    let count = le(&[
        id("messages.getMessages"),
        0x1cb5_c415,
        u32::MAX,
        id("inputMessageID"),
        1,
    ]);
    assert_eq!(api::API.skip(&count, 0, Root::Function.record()), count.len());
}

/// An `updateShortMessage` whose `fwd_from` (at byte 40) is a `messageFwdHeader` from a `peerUser` (at byte 48).
fn forwarded_short_message() -> Vec<u8> {
    let mut m = le(&[id("updateShortMessage"), 1 << 2, 9]);
    m.extend(1u64.to_le_bytes());
    m.extend([5, b'h', b'e', b'l', b'l', b'o', 0, 0]);
    m.extend(le(&[1, 2, 3]));
    // fwd_from: messageFwdHeader#4e4df4bb flags:# ... date:int ...: from_id (bit 0) a peerUser.
    m.extend(le(&[id("messageFwdHeader"), 1, PEER_USER]));
    m.extend(4u64.to_le_bytes());
    m.extend(le(&[1_700_000_000]));
    m
}

/// `Boxed::decode` validates with `validate_marked`: the same answers as `validate_exact`, and the ends of the
/// object's own nested values remembered (not those nested deeper).
#[test]
fn validate_marked_remembers_the_ends_of_the_objects_own_values() {
    let m = forwarded_short_message();
    let root = Root::Type(api::ty::UPDATES);
    let mut marks = Marks::EMPTY;
    assert_eq!(api::API.validate_marked(&m, api::ty::UPDATES, &mut marks), Ok(()));
    assert_eq!(marks.end_of(40), Some(m.len()));
    assert_eq!(marks.end_of(48), None);
    assert_eq!(marks.end_of(0), None);
    let mut longer = m.clone();
    longer.push(0);
    for input in (0..m.len()).map(|n| &m[..n]).chain([&longer[..]]) {
        let mut marks = Marks::EMPTY;
        assert_eq!(
            api::API.validate_marked(input, api::ty::UPDATES, &mut marks),
            api::API.validate_exact(input, root)
        );
    }
}

/// `Boxed::decode_in` validates with `validate_ends`: the same answers as `validate_exact`, and the ends of nested
/// values at every level, in the order they start (the `fwd_from` header at 40 and, inside it, its `peerUser` at
/// 48), up to the scratch's length.
#[test]
fn validate_ends_records_every_level_in_start_order() {
    let m = forwarded_short_message();
    let root = Root::Type(api::ty::UPDATES);
    let mut ends = [Mark::default(); 8];
    let n = api::API.validate_ends(&m, api::ty::UPDATES, &mut ends).unwrap();
    assert_eq!(
        &ends[..n],
        &[
            Mark {
                start: 40,
                end: m.len() as u32
            },
            Mark { start: 48, end: 60 }
        ]
    );
    // A full scratch keeps the values that start first; the rest go unrecorded (the views walk them).
    let mut one = [Mark::default(); 1];
    assert_eq!(api::API.validate_ends(&m, api::ty::UPDATES, &mut one), Ok(1));
    assert_eq!(
        one[0],
        Mark {
            start: 40,
            end: m.len() as u32
        }
    );
    let mut none: [Mark; 0] = [];
    assert_eq!(api::API.validate_ends(&m, api::ty::UPDATES, &mut none), Ok(0));
    let mut longer = m.clone();
    longer.push(0);
    for input in (0..m.len()).map(|n| &m[..n]).chain([&longer[..]]) {
        let mut ends = [Mark::default(); 8];
        assert_eq!(
            api::API.validate_ends(input, api::ty::UPDATES, &mut ends).map(drop),
            api::API.validate_exact(input, root)
        );
    }
    // The typed errors of the plain validation (docs/CHECKLIST.md item 55): a flag bit without its field.
    let mut short = le(&[id("updateShortMessage"), 1 << 2, 9]);
    short.extend(1u64.to_le_bytes());
    short.extend([0u8; 4]);
    short.extend(le(&[1, 2, 3]));
    assert_eq!(
        api::API.validate_ends(&short, api::ty::UPDATES, &mut ends),
        Err(Error::FlagFieldMissing { word: 0, bit: 2 })
    );
}

/// The views' search of the recorded ends (`end_in`) finds every start and nothing else, from any hint: a short scan
/// forward from it, then bisection.
#[test]
fn end_in_finds_every_recorded_start_from_any_hint() {
    let ends: Vec<Mark> = (0..300u32)
        .map(|i| Mark {
            start: i * 7 + (i % 3),
            end: i * 7 + 5,
        })
        .collect();
    for hint0 in [0, 1, 2, 5, 64, 150, 299, 300, 1000] {
        for (i, m) in ends.iter().enumerate() {
            let mut hint = hint0;
            assert_eq!(
                end_in(&ends, &mut hint, m.start as usize),
                Some(m.end as usize),
                "hint {hint0}, i {i}"
            );
            assert_eq!(hint, i + 1);
            let mut hint = hint0;
            assert_eq!(end_in(&ends, &mut hint, m.start as usize + 1), None);
            assert_eq!(hint, hint0);
        }
        let mut hint = hint0;
        assert_eq!(end_in(&ends, &mut hint, 1 << 40), None);
        assert_eq!(end_in(&[], &mut hint, 0), None);
    }
}
