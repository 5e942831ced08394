//! The generated typed API (`api` feature): every constructor and function round-trips byte-identically from
//! random values (random encodings built from the schema: writer → validator → view → writer), the writers build
//! requests the validator accepts, and results decode by the function's return type.

use mtproto_sansio::tl::api::{self, Boxed, Obj, Query, RemoteCall, Seq, enums, functions, types};
use mtproto_sansio::tl::layout::{Error, HEAD_FUNCTION, Layout, Root, field, kind};
use mtproto_sansio::tl::tables::api as tables;
use mtproto_sansio::tl::{self as tl, Full, VECTOR};
use proptest::prelude::*;

/// Random canonical encodings of any combinator of a layout.
#[derive(Clone)]
struct Gen {
    layout: &'static Layout,
    /// Per combinator: the bits of its `flags.N?true` parameters, per flags word (they have no table record).
    true_bits: Vec<[u32; 4]>,
    /// Per type: its constructors; the first is the one with the fewest unconditional nested objects.
    ctors: Vec<Vec<u16>>,
    functions: Vec<u16>,
    state: u64,
}

fn nested(layout: &Layout, c: u16) -> usize {
    layout
        .fields_of(c)
        .iter()
        .filter(|&&r| r & field::COND == 0 && matches!(r & field::KIND, kind::BOXED | kind::QUERY | kind::OBJECT))
        .count()
}

impl Gen {
    fn new(layout: &'static Layout, names: &[&str], schema: &str) -> Self {
        let text = std::fs::read_to_string(format!("{}/tl-gen/schema/{schema}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let parsed = tl_gen::parse(&text).unwrap();
        let true_bits = names
            .iter()
            .map(|n| {
                let c = parsed.combinators.iter().find(|c| c.name == *n).unwrap();
                let words: Vec<&str> = c
                    .params
                    .iter()
                    .filter(|p| p.kind == tl_gen::ParamKind::Flags)
                    .map(|p| p.name.as_str())
                    .collect();
                let mut bits = [0u32; 4];
                for p in &c.params {
                    if let tl_gen::ParamKind::Value { ty, cond: Some((w, b)) } = &p.kind
                        && ty.name == "true"
                    {
                        bits[words.iter().position(|x| x == w).unwrap()] |= 1 << b;
                    }
                }
                bits
            })
            .collect();
        let n = layout.ids.len();
        let types = layout
            .heads
            .iter()
            .filter(|h| **h & HEAD_FUNCTION == 0)
            .map(|h| *h as usize + 1)
            .max()
            .unwrap();
        let mut ctors = vec![Vec::new(); types];
        let mut functions = Vec::new();
        for i in 0..n as u16 {
            let h = layout.heads[i as usize];
            if h & HEAD_FUNCTION != 0 {
                functions.push(i);
            } else {
                ctors[h as usize].push(i);
            }
        }
        for v in &mut ctors {
            v.sort_by_key(|&c| nested(layout, c));
        }
        Self {
            layout,
            true_bits,
            ctors,
            functions,
            state: 0,
        }
    }

    fn rand(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, out: &mut Vec<u8>) {
        let n = match self.rand() % 8 {
            0 => 254 + (self.rand() % 300) as usize,
            _ => (self.rand() % 40) as usize,
        };
        let data: Vec<u8> = (0..n).map(|_| self.rand() as u8).collect();
        let mut buf = vec![0u8; tl::bytes_len(n)];
        tl::encode(&&data[..], &mut buf).unwrap();
        out.extend(buf);
    }

    /// The bare fields of combinator `c`. `depth` counts nested objects; deep down, optional parts stay empty.
    fn comb(&mut self, c: u16, out: &mut Vec<u8>, depth: u32) {
        assert!(
            depth < 24,
            "schema recursion without a way out at {}",
            tables::NAMES[c as usize]
        );
        let recs = self.layout.fields_of(c);
        let mut words = [0u32; 4];
        for (k, w) in words.iter_mut().enumerate() {
            let mut cond = 0u32;
            for &r in recs {
                if r & field::COND != 0 && (r >> field::WORD_SHIFT) & 3 == k as u32 {
                    cond |= 1 << ((r >> field::BIT_SHIFT) & 31);
                }
            }
            let mask = if depth > 4 { 0 } else { cond } | self.true_bits[c as usize][k];
            *w = self.rand() as u32 & mask;
        }
        let mut k = 0;
        for &r in recs {
            if r & field::KIND == kind::FLAGS {
                out.extend(words[k].to_le_bytes());
                k += 1;
                continue;
            }
            if r & field::COND != 0 {
                let word = words[((r >> field::WORD_SHIFT) & 3) as usize];
                if word & 1 << ((r >> field::BIT_SHIFT) & 31) == 0 {
                    continue;
                }
            }
            self.value(r, out, depth);
        }
    }

    fn value(&mut self, r: u32, out: &mut Vec<u8>, depth: u32) {
        match (r >> field::VEC_SHIFT) & 3 {
            0 => self.scalar(r, out, depth),
            wrap => {
                if wrap == field::VEC_BOXED {
                    out.extend(VECTOR.to_le_bytes());
                }
                let n = if depth > 3 { 0 } else { self.rand() % 4 };
                out.extend((n as u32).to_le_bytes());
                for _ in 0..n {
                    self.scalar(r, out, depth + 1);
                }
            }
        }
    }

    fn scalar(&mut self, r: u32, out: &mut Vec<u8>, depth: u32) {
        let reference = (r >> field::REF_SHIFT) as u16;
        let len = match r & field::KIND {
            kind::INT => 4,
            kind::LONG | kind::DOUBLE => 8,
            kind::INT128 => 16,
            kind::INT256 => 32,
            kind::BYTES => return self.bytes(out),
            kind::BARE => return self.comb(reference, out, depth + 1),
            kind::BOXED => {
                let r = self.rand();
                let list = &self.ctors[reference as usize];
                let pick = if depth > 5 { 0 } else { (r % list.len() as u64) as usize };
                let c = list[pick];
                out.extend(self.layout.ids[c as usize].to_le_bytes());
                return self.comb(c, out, depth + 1);
            }
            kind::QUERY => {
                let c = if depth > 2 {
                    // help.getConfig takes no parameters.
                    self.layout.find(0xc4f9_186b).unwrap()
                } else {
                    let r = self.rand();
                    self.functions[(r % self.functions.len() as u64) as usize]
                };
                out.extend(self.layout.ids[c as usize].to_le_bytes());
                return self.comb(c, out, depth + 1);
            }
            k => panic!("kind {k} not generated"),
        };
        out.extend((0..len).map(|_| self.rand() as u8));
    }

    /// A random boxed encoding of combinator `c`.
    fn encode(&mut self, c: u16, seed: u64) -> Vec<u8> {
        self.state = seed ^ u64::from(c) << 40;
        let mut out = self.layout.ids[c as usize].to_le_bytes().to_vec();
        self.comb(c, &mut out, 0);
        out
    }
}

fn api_gen() -> Gen {
    static TEMPLATE: std::sync::LazyLock<Gen> =
        std::sync::LazyLock::new(|| Gen::new(&tables::API, &tables::NAMES, "api.tl"));
    TEMPLATE.clone()
}

/// Validates `bytes` as combinator `c` and re-encodes it through the typed view; must give the same bytes.
fn round_trip(c: u16, bytes: &[u8]) {
    let name = tables::NAMES[c as usize];
    let mut out = vec![0u8; bytes.len() + 64];
    let head = tables::API.heads[c as usize];
    let n = if head & HEAD_FUNCTION != 0 {
        assert_eq!(tables::API.validate(bytes, Root::Function), Ok(bytes.len()), "{name}");
        api::reencode_call(bytes, &mut out).unwrap().unwrap()
    } else {
        assert_eq!(tables::API.validate(bytes, Root::Type(head)), Ok(bytes.len()), "{name}");
        api::reencode_type(head, bytes, &mut out).unwrap().unwrap()
    };
    assert!(
        out[..n] == *bytes,
        "{name}: re-encoding differs\n in  {bytes:02x?}\n out {:02x?}",
        &out[..n]
    );
    // Too small a buffer: a typed error, nothing written past it.
    if n > 0 {
        let mut small = vec![0u8; n - 1];
        let r = if head & HEAD_FUNCTION != 0 {
            api::reencode_call(bytes, &mut small)
        } else {
            api::reencode_type(head, bytes, &mut small)
        };
        assert_eq!(r, Ok(Err(Full { required: n })), "{name}");
    }
}

#[test]
fn every_combinator_round_trips() {
    let mut g = api_gen();
    for c in 0..tables::API.ids.len() as u16 {
        for seed in 0..6 {
            let bytes = g.encode(c, seed);
            round_trip(c, &bytes);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
    #[test]
    fn random_combinator_round_trips(c in 0..tables::API.ids.len() as u16, seed in any::<u64>()) {
        let mut g = api_gen();
        let bytes = g.encode(c, seed);
        round_trip(c, &bytes);
        // Every strict prefix is refused with a typed error, never a panic.
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            let r = if tables::API.is_function(c) {
                api::reencode_call(&bytes[..cut], &mut [0u8; 16])
            } else {
                api::reencode_type(tables::API.heads[c as usize], &bytes[..cut], &mut [0u8; 16])
            };
            prop_assert!(r.is_err());
        }
    }
}

#[test]
fn send_message_is_built_validated_and_read_back() {
    let peer = types::InputPeerSelf {};
    let entity = types::MessageEntityBold { offset: 0, length: 5 };
    let entities = [Obj::new(&entity)];
    let call = functions::MessagesSendMessage {
        no_webpage: true,
        entities: Some(Seq::new(&entities)),
        ..functions::MessagesSendMessage::new(Obj::new(&peer), b"hello", 42)
    };
    let mut buf = [0u8; 128];
    let n = tl::encode(&call, &mut buf).unwrap();
    assert_eq!(n, tl::TlWrite::tl_len(&call));
    assert_eq!(tables::API.validate(&buf[..n], Root::Function), Ok(n));
    // The first word after the id is flags: no_webpage (bit 1) and entities (bit 3).
    assert_eq!(u32::from_le_bytes(buf[4..8].try_into().unwrap()), 1 << 1 | 1 << 3);
    // Too small: a typed error with the size needed.
    assert_eq!(tl::encode(&call, &mut buf[..n - 1]), Err(Full { required: n }));
    let mut again = [0u8; 128];
    assert_eq!(api::reencode_call(&buf[..n], &mut again), Ok(Ok(n)));
    assert_eq!(again[..n], buf[..n]);
    // Read back through the view.
    let mut c = mtproto_sansio::tl::typed::Cursor::new(&buf[4..n], &tables::API);
    let view = <functions::MessagesSendMessage as api::Bare>::read_bare(&mut c);
    assert!(view.no_webpage && !view.silent);
    assert_eq!(view.message, b"hello");
    assert_eq!(view.random_id, 42);
    let ents: Vec<_> = view.entities.unwrap().iter().collect();
    assert_eq!(ents.len(), 1);
    match ents[0].get().unwrap() {
        enums::MessageEntity::MessageEntityBold(b) => assert_eq!((b.offset, b.length), (0, 5)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(view.peer.get(), Some(enums::InputPeer::InputPeerSelf(_))));
}

/// The generated `new` takes the required fields only: every optional one is absent and every `true` flag off,
/// so the call is its id, a zero flags word and the required fields.
#[test]
fn new_takes_the_required_fields_and_defaults_the_rest() {
    let peer = types::InputPeerSelf {};
    let call = functions::MessagesSendMessage::new(Obj::new(&peer), b"hi", 7);
    let mut buf = [0u8; 64];
    let n = tl::encode(&call, &mut buf).unwrap();
    let mut want = Vec::new();
    for w in [functions::MessagesSendMessage::ID, 0, types::InputPeerSelf::ID] {
        want.extend(w.to_le_bytes());
    }
    want.extend([2, b'h', b'i', 0]);
    want.extend(7i64.to_le_bytes());
    assert_eq!(&buf[..n], &want[..]);
    // A constructor with nothing optional is its struct literal.
    let bold = types::MessageEntityBold::new(3, 4);
    assert_eq!((bold.offset, bold.length), (3, 4));
}

#[test]
fn results_decode_by_the_return_type() {
    // messages.sendMessage returns Updates: updatesTooLong#e317af7e.
    let too_long = 0xe317_af7eu32.to_le_bytes();
    let r = functions::MessagesSendMessage::<'static>::decode_result(&too_long).unwrap();
    assert!(matches!(r.get(), Some(enums::Updates::UpdatesTooLong(_))));
    // auth.logOut returns auth.LoggedOut, not Bool; account.resetNotifySettings returns Bool.
    assert_eq!(
        functions::AuthLogOut::decode_result(&0x9972_75b5u32.to_le_bytes()).map(|_| ()),
        Err(Error::WrongType(0x9972_75b5))
    );
    assert_eq!(
        functions::AccountResetNotifySettings::decode_result(&0x9972_75b5u32.to_le_bytes()),
        Ok(true)
    );
    // A vector result: messages.receivedMessages returns Vector<ReceivedNotifyMessage>.
    let mut v = VECTOR.to_le_bytes().to_vec();
    v.extend(0u32.to_le_bytes());
    let s = functions::MessagesReceivedMessages::decode_result(&v).unwrap();
    assert!(s.is_empty());
    // invokeWithLayer's result is its query's.
    let wrapped = functions::InvokeWithLayer {
        layer: 228,
        query: functions::HelpGetNearestDc {},
    };
    let mut buf = [0u8; 16];
    let n = tl::encode(&wrapped, &mut buf).unwrap();
    assert_eq!(n, 12);
    assert_eq!(tables::API.validate(&buf[..n], Root::Function), Ok(12));
    let mut nd = 0x8e1a_1775u32.to_le_bytes().to_vec();
    nd.extend(tl_bytes(b"DE"));
    nd.extend(2i32.to_le_bytes());
    nd.extend(2i32.to_le_bytes());
    let got = <functions::InvokeWithLayer<functions::HelpGetNearestDc> as RemoteCall>::decode_result(&nd).unwrap();
    assert!(got.get().is_some());
    // A received wrapper keeps its query as validated bytes.
    let q: Query<'_> = {
        let mut c = mtproto_sansio::tl::typed::Cursor::new(&buf[4..n], &tables::API);
        <functions::InvokeWithLayer<Query<'_>> as api::Bare>::read_bare(&mut c).query
    };
    assert_eq!(q.constructor(), Some(functions::HelpGetNearestDc::ID));
}

fn tl_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; tl::bytes_len(b.len())];
    tl::encode(&b, &mut out).unwrap();
    out
}

#[test]
fn enum_decode_rejects_other_types_and_garbage() {
    assert_eq!(
        enums::Peer::decode(&0xdead_beefu32.to_le_bytes()).map(|_| ()),
        Err(Error::UnknownConstructor(0xdead_beef))
    );
    let mut b = 0x5951_1722u32.to_le_bytes().to_vec();
    b.extend(7i64.to_le_bytes());
    assert!(matches!(
        enums::Peer::decode(&b),
        Ok(enums::Peer::PeerUser(types::PeerUser { user_id: 7 }))
    ));
    assert_eq!(
        enums::InputPeer::decode(&b).map(|_| ()),
        Err(Error::WrongType(0x5951_1722))
    );
    b.push(0);
    assert_eq!(enums::Peer::decode(&b).map(|_| ()), Err(Error::Trailing));
}

/// The `tl_api` fuzz seeds are real values (each validates as some type or call) and replay through the fuzz entry
/// point with the typed round trip on (`tests/fuzz_corpus.rs` replays them without the `api` feature).
#[test]
fn fuzz_seeds_decode_and_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/tl_api");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let api_ok = (0..tables::TYPE_NAMES.len() as u16)
            .map(Root::Type)
            .chain([Root::Function])
            .any(|r| tables::API.validate_exact(&data, r).is_ok());
        let service_ok = mtproto_sansio::tl::tables::mtproto::MTPROTO
            .validate_exact(&data, Root::Object)
            .is_ok();
        assert!(api_ok || service_ok, "seed {data:02x?} is no value");
        mtproto_sansio::fuzzing::tl::tl_api(&data);
        n += 1;
    }
    assert!(n >= 5);
}

/// The client router reads `help.getConfig`'s answer through these views (src/client/router.rs, `api` feature), and
/// turns an `auth.exportAuthorization` answer into the `auth.importAuthorization` call.
#[test]
fn router_reads_get_config_and_builds_the_import() {
    use mtproto_sansio::client::router::{self as router, ConfigError, ConfigReport, Router, RouterConfig};
    use mtproto_sansio::client::{DcId, router::DcOption};

    let opt = |id, ip: &'static [u8], ipv6, media_only| types::DcOption {
        ipv6,
        media_only,
        tcpo_only: false,
        cdn: false,
        static_: false,
        this_port_only: false,
        id,
        ip_address: ip,
        port: 443,
        secret: None,
    };
    let options = [
        opt(1, b"149.154.175.50", false, false),
        opt(2, b"2001:67c:4e8:f002::a", true, false),
        opt(2, b"149.154.167.222", false, true),
        opt(4, b"not an address", false, false),
    ];
    let objs: Vec<Obj<'_, enums::DcOption<'_>>> = options.iter().map(Obj::new).collect();
    let config = |test_mode| types::Config {
        default_p2p_contacts: false,
        preload_featured_stickers: false,
        revoke_pm_inbox: false,
        blocked_mode: false,
        force_try_ipv6: false,
        date: 1_700_000_000,
        expires: 1_700_003_600,
        test_mode,
        this_dc: 2,
        dc_options: Seq::new(&objs),
        dc_txt_domain_name: b"",
        chat_size_max: 0,
        megagroup_size_max: 0,
        forwarded_count_max: 0,
        online_update_period_ms: 0,
        offline_blur_timeout_ms: 0,
        offline_idle_timeout_ms: 0,
        online_cloud_timeout_ms: 0,
        notify_cloud_delay_ms: 0,
        notify_default_delay_ms: 0,
        push_chat_period_ms: 0,
        push_chat_limit: 0,
        edit_time_limit: 0,
        revoke_time_limit: 0,
        revoke_pm_time_limit: 0,
        rating_e_decay: 0,
        stickers_recent_limit: 0,
        channels_read_media_period: 0,
        tmp_sessions: None,
        call_receive_timeout_ms: 0,
        call_ring_timeout_ms: 0,
        call_connect_timeout_ms: 0,
        call_packet_timeout_ms: 0,
        me_url_prefix: b"https://t.me/",
        autoupdate_url_prefix: None,
        gif_search_username: None,
        venue_search_username: None,
        img_search_username: None,
        static_maps_provider: None,
        caption_length_max: 0,
        message_length_max: 0,
        webfile_dc_id: 4,
        suggested_lang_code_and_lang_pack_version_and_base_lang_pack_version: None,
        reactions_default: None,
        autologin_token: None,
    };
    let mut buf = vec![0u8; 4096];
    let n = tl::encode(&config(false), &mut buf).unwrap();
    let mut r: Router = Router::new(RouterConfig::DEFAULT);
    assert_eq!(
        r.apply_config_result(&buf[..n]),
        Ok(ConfigReport {
            accepted: 3,
            invalid: 1,
            no_room: 0
        })
    );
    let got: Vec<DcOption> = r.options().copied().collect();
    assert_eq!(got[0].dc, DcId::new(1).unwrap());
    assert_eq!(got[1].addr, "2001:67c:4e8:f002::a".parse::<std::net::IpAddr>().unwrap());
    assert!(got[2].media_only);
    assert!(matches!(
        r.apply_config_result(&buf[..n - 1]),
        Err(ConfigError::Malformed(_))
    ));
    let n = tl::encode(&config(true), &mut buf).unwrap();
    assert_eq!(r.apply_config_result(&buf[..n]), Err(ConfigError::WrongNetwork));
    assert_eq!(r.options().count(), 3);

    let exported = types::AuthExportedAuthorization {
        id: 77,
        bytes: b"opaque token bytes",
    };
    let n = tl::encode(&exported, &mut buf).unwrap();
    let import = router::import_call(&buf[..n]).unwrap();
    assert_eq!((import.id, import.bytes), (77, &b"opaque token bytes"[..]));
    let mut out = vec![0u8; 64];
    let m = tl::encode(&import, &mut out).unwrap();
    assert_eq!(&out[..4], &functions::AuthImportAuthorization::ID.to_le_bytes());
    assert!(m > 4);
    assert!(router::import_call(&buf[..n - 2]).is_err());
}

/// `Seq::decoded` reads each element once and yields what `iter` + `Obj::get` yield, for messages of different
/// shapes (flags, nested vectors) one after another; a caller's values in a `Seq::new` have nothing to decode.
#[test]
fn decoded_sequences_agree_with_views() {
    let enc = |v: &dyn tl::TlWrite| {
        let mut out = vec![0u8; v.tl_len()];
        tl::encode(v, &mut out).unwrap();
        out
    };
    let bold = types::MessageEntityBold { offset: 1, length: 2 };
    let url = types::MessageEntityUrl { offset: 3, length: 4 };
    let entities = [Obj::new(&bold), Obj::new(&url)];
    let short = types::UpdateShortMessage {
        out: true,
        mentioned: false,
        media_unread: false,
        silent: false,
        id: 1,
        user_id: 7,
        message: b"one",
        pts: 2,
        pts_count: 1,
        date: 3,
        fwd_from: None,
        via_bot_id: Some(9),
        reply_to: None,
        entities: Some(Seq::new(&entities)),
        ttl_period: None,
    };
    let too_long = types::UpdatesTooLong {};
    let wires = [enc(&short), enc(&too_long), enc(&short)];
    let mut body = VECTOR.to_le_bytes().to_vec();
    body.extend((wires.len() as u32).to_le_bytes());
    wires.iter().for_each(|w| body.extend(w));
    let rec = mtproto_sansio::tl::typed::boxed_record(enums::Updates::TYPE) | field::VEC_BOXED << field::VEC_SHIFT;
    let seq: Seq<'_, Obj<'_, enums::Updates<'_>>> =
        mtproto_sansio::tl::typed::decode_record(&tables::API, rec, &body).unwrap();
    let viewed: Vec<Vec<u8>> = seq.iter().map(|o| enc(&o.get().unwrap())).collect();
    let decoded: Vec<Vec<u8>> = seq.decoded().map(|u| enc(&u)).collect();
    assert_eq!(viewed, wires);
    assert_eq!(decoded, wires);
    match seq.decoded().next() {
        Some(enums::Updates::UpdateShortMessage(m)) => {
            assert_eq!((m.message, m.via_bot_id), (&b"one"[..], Some(9)));
            assert_eq!(m.entities.map(|e| e.decoded().count()), Some(2));
        }
        other => panic!("{other:?}"),
    }
    // A caller's values are not views: nothing to decode. Received objects in a caller's slice are.
    let mine = [Obj::new(&too_long)];
    assert_eq!(Seq::<'_, Obj<'_, enums::Updates<'_>>>::new(&mine).decoded().count(), 0);
    let received: Vec<Obj<'_, enums::Updates<'_>>> = seq.iter().collect();
    assert_eq!(Seq::<'_, _>::new(&received).decoded().count(), 3);
}

#[test]
fn chk_055_unvalidated_view_vector_count_capped_by_bytes_left() {
    // The views' reads cannot fail, by design: over bytes the validator did not accept they read zeros. A vector
    // count was taken as it came, so four bytes announcing 2^32 - 1 elements made a view (and every walk of it)
    // step 2^32 - 1 times. The count is now capped by the bytes left, which never changes a validated vector.
    use mtproto_sansio::tl::typed::{Cursor, Field};
    for count in [0x00ff_ffffu32, u32::MAX] {
        let mut raw = VECTOR.to_le_bytes().to_vec();
        raw.extend_from_slice(&count.to_le_bytes());
        raw.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        let v = <Seq<'_, i64>>::fget(&mut Cursor::new(&raw, &tables::API));
        assert!(v.len() <= 8, "count {count:#x}: {}", v.len());
        assert!(v.iter().count() <= 8);
        let v = <Seq<'_, Obj<'_, enums::FileHash<'_>>>>::fget(&mut Cursor::new(&raw, &tables::API));
        assert!(v.len() <= 8 && v.decoded().count() <= 8);
    }
    // A validated vector reads whole.
    let mut ok = VECTOR.to_le_bytes().to_vec();
    ok.extend_from_slice(&2u32.to_le_bytes());
    ok.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    let v: Seq<'_, i64> =
        tl::typed::decode_record(&tables::API, (field::VEC_BOXED << field::VEC_SHIFT) | kind::LONG, &ok).unwrap();
    assert_eq!(v.iter().collect::<Vec<_>>(), [1, 2]);
}

/// `Boxed::decode_in` reads with the ends its validation kept at every level (`layout::validate_ends`): for random
/// `Updates` and `messages.Messages` of every constructor, its views re-encode (deep, and element by element
/// through `Seq::decoded`) to what `Boxed::decode`'s do, with a roomy scratch and with scratches that fill up.
#[test]
fn decode_in_reads_what_decode_reads() {
    use mtproto_sansio::tl::layout::Mark;
    fn deep(v: &dyn tl::TlWrite) -> Vec<u8> {
        let mut out = vec![0u8; v.tl_len()];
        let mut w = tl::Writer::new(&mut out).deep();
        w.put(v).unwrap();
        let n = w.written();
        out.truncate(n);
        out
    }
    let mut g = api_gen();
    let mut checked = 0;
    for c in 0..tables::API.ids.len() as u16 {
        let head = tables::API.heads[c as usize];
        if head != enums::Updates::TYPE && head != enums::MessagesMessages::TYPE {
            continue;
        }
        for seed in 0..12 {
            let bytes = g.encode(c, seed);
            for room in [0, 1, 3, 4096] {
                let mut ends = vec![Mark::default(); room];
                if head == enums::Updates::TYPE {
                    let plain = enums::Updates::decode(&bytes).unwrap();
                    let kept = enums::Updates::decode_in(&bytes, &mut ends).unwrap();
                    assert_eq!(deep(&kept), bytes);
                    assert_eq!(deep(&kept), deep(&plain));
                    if let (enums::Updates::Updates(a), enums::Updates::Updates(b)) = (&plain, &kept) {
                        let a: Vec<Vec<u8>> = a.updates.decoded().map(|u| deep(&u)).collect();
                        let b: Vec<Vec<u8>> = b.updates.decoded().map(|u| deep(&u)).collect();
                        assert_eq!(a, b);
                    }
                } else {
                    let plain = enums::MessagesMessages::decode(&bytes).unwrap();
                    let kept = enums::MessagesMessages::decode_in(&bytes, &mut ends).unwrap();
                    assert_eq!(deep(&kept), bytes);
                    assert_eq!(deep(&kept), deep(&plain));
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
    // The `updateNewMessage` case the ends are for: each message read straight from the element, no walk.
    let peer = types::PeerUser { user_id: 7 };
    let msg = types::Message::new(5, Obj::new(&peer), 1_700_000_000, b"hi");
    let m = enums::Message::Message(msg);
    let update = types::UpdateNewMessage {
        message: Obj::new(&m),
        pts: 10,
        pts_count: 1,
    };
    let ups = [Obj::new(&update), Obj::new(&update)];
    let u = types::Updates {
        updates: Seq::new(&ups),
        users: Seq::new(&[]),
        chats: Seq::new(&[]),
        date: 1,
        seq: 2,
    };
    let bytes = deep(&u);
    let mut ends = [Mark::default(); 16];
    let Ok(enums::Updates::Updates(v)) = enums::Updates::decode_in(&bytes, &mut ends) else {
        panic!("not updates");
    };
    let texts: Vec<&[u8]> = v
        .updates
        .decoded()
        .filter_map(|x| match x {
            enums::Update::UpdateNewMessage(n) => match n.message.get() {
                Some(enums::Message::Message(m)) => Some(m.message),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(texts, [&b"hi"[..], &b"hi"[..]]);
}
