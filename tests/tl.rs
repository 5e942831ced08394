//! TL codec and service schema: constructor ids re-derived from the schema text, byte-exact spec encodings,
//! property round trips, and the negative suite (docs/CHECKLIST.md items 48, 49, 50, 55; attacks B14, B15).

use mtproto_sansio::tl::gzip::{self, GzipError};
use mtproto_sansio::tl::*;
use proptest::prelude::*;

const MTPROTO_TL: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mtproto.tl"));
const SAMPLE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/auth_key_sample.json"));

fn enc<T: TlWrite + ?Sized>(v: &T) -> Vec<u8> {
    let mut buf = vec![0u8; v.tl_len()];
    assert_eq!(encode(v, &mut buf), Ok(v.tl_len()));
    buf
}

/// Encodes with the size and overflow contract checked: exact `tl_len`, and a one-byte-short buffer gets
/// `Full { required }` with nothing written.
fn encoded<T: TlWrite + ?Sized>(v: &T) -> Vec<u8> {
    let len = v.tl_len();
    if len > 0 {
        let mut short = vec![0xa5u8; len - 1];
        assert_eq!(encode(v, &mut short), Err(Full { required: len }));
        assert!(short.iter().all(|&b| b == 0xa5), "a failed put wrote into the buffer");
    }
    let mut buf = vec![0x5a; len + 3];
    assert_eq!(encode(v, &mut buf[..]), Ok(len));
    assert!(buf[len..].iter().all(|&b| b == 0x5a));
    buf.truncate(len);
    buf
}

fn decode_as<'a, T: TlRead<'a>>(_like: &T, b: &'a [u8]) -> T {
    T::decode(b).unwrap()
}

/// Encode, decode, compare; evaluates to the encoding.
macro_rules! roundtrip {
    ($v:expr) => {{
        let v = &$v;
        let b = encoded(v);
        let back = decode_as(v, &b);
        assert_eq!(&back, v);
        b
    }};
}

/// [`roundtrip!`], and the bytes also decode as the [`ServiceMessage`] variant that re-encodes identically.
macro_rules! rt_service {
    ($v:expr) => {{
        let b = roundtrip!($v);
        let m = ServiceMessage::decode_body(&b).unwrap();
        assert_eq!(enc(&m), b);
        b
    }};
}

// ---- allocation accounting ---------------------------------------------------------------------------------------

/// Counts heap bytes requested by the current thread, so tests can assert a decode or inflate allocates nothing.
struct Counting;

thread_local! {
    static ALLOCATED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; the counter is a const-initialised thread local,
// so touching it never allocates or re-enters the allocator.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|c| c.set(c.get() + layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes `f` allocated on this thread.
fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATED.with(std::cell::Cell::get);
    let r = f();
    (r, ALLOCATED.with(std::cell::Cell::get) - before)
}

// ---- ids -----------------------------------------------------------------------------------------------------------

/// CRC32 of the combinator as TL defines it: no `#id`, no `;`, `bytes` spelled `string`, `<`→space, `>` dropped.
fn tl_crc(line: &str) -> u32 {
    let line = line.trim().trim_end_matches(';');
    let mut parts = line.split_whitespace();
    let head = parts.next().unwrap();
    let name = head.split('#').next().unwrap();
    let mut text = String::from(name);
    for p in parts {
        text.push(' ');
        text.push_str(p);
    }
    let text = text
        .replace(":bytes", ":string")
        .replace("%Message", "message")
        .replace('<', " ")
        .replace('>', "")
        .replace(['{', '}'], "");
    crc32fast::hash(text.as_bytes())
}

fn schema_id(line: &str) -> Option<u32> {
    let head = line.split_whitespace().next()?;
    let (_, hex) = head.split_once('#')?;
    u32::from_str_radix(hex, 16).ok()
}

#[test]
fn every_constructor_id_is_the_crc32_of_its_tl_line() {
    for (tl, id) in SCHEMA {
        assert_eq!(tl_crc(tl), *id, "{tl}");
        assert_eq!(schema_id(tl), Some(*id), "{tl}");
    }
    // Bare types have no id on the wire but the same derivation applies.
    assert_eq!(tl_crc(Message::TL), 0x5bb8_e511);
    assert_eq!(tl_crc("vector#1cb5c415 {t:Type} # [ t ] = Vector t;"), VECTOR);
    assert_eq!(tl_crc("boolTrue#997275b5 = Bool;"), BOOL_TRUE);
    assert_eq!(tl_crc("boolFalse#bc799737 = Bool;"), BOOL_FALSE);
}

#[test]
fn every_line_of_the_schema_file_is_implemented_verbatim() {
    let mut seen = 0;
    for raw in MTPROTO_TL.lines() {
        // Commented lines at the end of the file hold the legacy and out-of-page constructors.
        let line = raw.trim().trim_start_matches("//").trim();
        let Some(id) = schema_id(line) else { continue };
        if !line.ends_with(';') || matches!(id, VECTOR | BOOL_TRUE | BOOL_FALSE) || line.starts_with("true#") {
            continue;
        }
        let found = SCHEMA.iter().find(|(_, i)| *i == id);
        let (tl, _) = found.unwrap_or_else(|| panic!("not implemented: {line}"));
        assert_eq!(*tl, line);
        seen += 1;
    }
    assert_eq!(
        seen,
        SCHEMA.len(),
        "SCHEMA lists a constructor that is not in mtproto.tl"
    );
    assert!(MTPROTO_TL.contains(Message::TL));
    assert!(MTPROTO_TL.contains(RsaPublicKey::TL));
}

#[test]
fn every_schema_id_dispatches_to_its_own_variant() {
    for (tl, id) in SCHEMA {
        let b = id.to_le_bytes();
        let r = ServiceMessage::decode_body(&b);
        match r {
            Ok(m) => assert_eq!(m.constructor(), *id),
            Err(DecodeError::Eof) => {}
            Err(e) => panic!("{tl}: {e:?}"),
        }
    }
}

// ---- spec vectors --------------------------------------------------------------------------------------------------

fn sample() -> serde_json::Value {
    serde_json::from_str(SAMPLE).unwrap()
}

fn hexv(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn auth_key_sample_messages_decode_and_reencode_byte_exact() {
    let s = sample();
    let steps = s["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    for step in steps {
        let body = hexv(&step["body_hex"]);
        let msg = hexv(&step["message_hex"]);
        assert_eq!(&msg[20..], &body[..], "body follows the 20-byte plaintext header");
        let m = ServiceMessage::decode_body(&body).unwrap();
        assert_eq!(enc(&m), body, "{}", step["name"]);
        let name = step["name"].as_str().unwrap();
        let tl = step["tl"].as_str().unwrap();
        let (line, id) = SCHEMA.iter().find(|(_, id)| *id == m.constructor()).unwrap();
        assert_eq!(*line, tl);
        assert_eq!(schema_id(tl), Some(*id), "{name}");
    }
}

#[test]
fn auth_key_sample_fields() {
    let s = sample();
    let v = &s["values"];
    let nonce: [u8; 16] = hexv(&v["nonce"]["hex"]).try_into().unwrap();
    let server_nonce: [u8; 16] = hexv(&v["server_nonce"]["hex"]).try_into().unwrap();
    let new_nonce: [u8; 32] = hexv(&v["new_nonce"]["hex"]).try_into().unwrap();

    let req = hexv(&s["steps"][0]["body_hex"]);
    assert_eq!(ReqPqMulti::decode(&req).unwrap(), ReqPqMulti { nonce });
    assert_eq!(enc(&ReqPqMulti { nonce }), req);

    let res = hexv(&s["steps"][1]["body_hex"]);
    let r = ResPq::decode(&res).unwrap();
    assert_eq!((r.nonce, r.server_nonce), (nonce, server_nonce));
    assert_eq!(r.pq, &hexv(&v["pq"]["hex"])[..]);
    let fps: Vec<i64> = r.server_public_key_fingerprints.iter().collect();
    let want: Vec<i64> = v["server_public_key_fingerprints"]["as_int64_signed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(fps, want);
    // Rebuilt from owned fields (slice-backed vector) it must encode to the identical bytes.
    let rebuilt = ResPq {
        server_public_key_fingerprints: LongVec::from_slice(&want),
        ..r
    };
    assert_eq!(enc(&rebuilt), res);

    let inner = hexv(&v["p_q_inner_data_dc"]["hex"]);
    let p = PQInnerDataDc::decode(&inner).unwrap();
    assert_eq!(
        (p.dc, p.new_nonce, p.p, p.q),
        (2, new_nonce, &hexv(&v["p"]["hex"])[..], &hexv(&v["q"]["hex"])[..])
    );
    assert_eq!(enc(&PQInnerData::Dc(p)), inner);

    let step2 = hexv(&s["steps"][2]["body_hex"]);
    let req_dh = ReqDhParams::decode(&step2).unwrap();
    assert_eq!(
        req_dh.public_key_fingerprint,
        v["chosen_public_key_fingerprint"]["as_int64_signed"].as_i64().unwrap()
    );
    assert_eq!(req_dh.encrypted_data, &hexv(&v["rsa_encrypted_data"]["hex"])[..]);

    let step3 = hexv(&s["steps"][3]["body_hex"]);
    let ok = ServerDhParams::decode(&step3).unwrap();
    let ServerDhParams::Ok(ok) = ok else {
        panic!("not server_DH_params_ok")
    };
    assert_eq!(ok.encrypted_answer, &hexv(&v["encrypted_answer"]["hex"])[..]);

    let answer = hexv(&v["answer"]["hex"]);
    let a = ServerDhInnerData::decode(&answer).unwrap();
    assert_eq!((a.g, a.server_time), (3, 1_735_910_891));
    assert_eq!(a.dh_prime, &hexv(&v["dh_prime"]["hex"])[..]);
    assert_eq!(a.g_a, &hexv(&v["g_a"]["hex"])[..]);
    assert_eq!(enc(&a), answer);

    let cdh = hexv(&v["client_DH_inner_data"]["hex"]);
    let c = ClientDhInnerData::decode(&cdh).unwrap();
    assert_eq!((c.retry_id, c.g_b), (0, &hexv(&v["g_b"]["hex"])[..]));
    assert_eq!(enc(&c), cdh);

    let step4 = hexv(&s["steps"][4]["body_hex"]);
    let set = SetClientDhParams::decode(&step4).unwrap();
    assert_eq!(set.encrypted_data, &hexv(&v["client_encrypted_data"]["hex"])[..]);

    let gen_ok = SetClientDhParamsAnswer::decode(&hexv(&s["steps"][5]["body_hex"])).unwrap();
    let hash1: [u8; 16] = hexv(&v["new_nonce_hash1"]["hex"]).try_into().unwrap();
    assert_eq!(
        gen_ok,
        SetClientDhParamsAnswer::Ok(DhGenOk {
            nonce,
            server_nonce,
            new_nonce_hash1: hash1
        })
    );
}

#[test]
fn known_small_encodings() {
    assert_eq!(
        enc(&Ping {
            ping_id: 0x0102_0304_0506_0708
        }),
        hex::decode("ec77be7a0807060504030201").unwrap()
    );
    assert_eq!(enc(&true), BOOL_TRUE.to_le_bytes());
    assert_eq!(enc(&DestroyAuthKey {}), hex::decode("605143d1").unwrap());
    assert_eq!(enc(&&b"abc"[..]), b"\x03abc");
    assert_eq!(
        enc(&MsgsAck {
            msg_ids: LongVec::from_slice(&[1])
        }),
        hex::decode("59b4d66215c4b51c010000000100000000000000").unwrap()
    );
    let long = [9u8; 300];
    let e = enc(&&long[..]);
    assert_eq!(&e[..4], &[0xfe, 0x2c, 0x01, 0x00]);
    assert_eq!(e.len(), bytes_len(300));
    assert_eq!(bytes_len(300), 304);
}

// ---- property round trips ------------------------------------------------------------------------------------------

fn a16() -> impl Strategy<Value = [u8; 16]> {
    any::<[u8; 16]>()
}
fn a32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..260),
        prop::collection::vec(any::<u8>(), 250..600)
    ]
}
fn words() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<[u8; 4]>(), 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn primitives_roundtrip(a in any::<i32>(), b in any::<u32>(), c in any::<i64>(), d in any::<u64>(),
                            e in any::<f64>(), f in a16(), g in a32(), h in bytes(), t in any::<bool>()) {
        roundtrip!(a);
        roundtrip!(b);
        roundtrip!(c);
        roundtrip!(d);
        let mut buf = Vec::new();
        let mut r = Reader::new({ buf.extend_from_slice(&enc(&e)); &buf });
        prop_assert_eq!(r.f64().unwrap().to_bits(), e.to_bits());
        roundtrip!(f);
        roundtrip!(g);
        let hs: &[u8] = &h;
        let b2 = roundtrip!(hs);
        prop_assert_eq!(b2.len(), bytes_len(h.len()));
        prop_assert_eq!(b2.len() % 4, 0);
        roundtrip!(t);
    }

    #[test]
    fn vectors_roundtrip(ids in prop::collection::vec(any::<i64>(), 0..50),
                         ints in prop::collection::vec(any::<i32>(), 0..50),
                         salts in prop::collection::vec((any::<i32>(), any::<i32>(), any::<i64>()), 0..20)) {
        let v = LongVec::from_slice(&ids);
        let buf = roundtrip!(v);
        let back = LongVec::decode(&buf).unwrap();
        prop_assert_eq!(back.iter().collect::<Vec<_>>(), ids.clone());
        prop_assert_eq!(back.len(), ids.len());
        roundtrip!(TlVec::from_slice(&ints));
        let fs: Vec<FutureSalt> = salts.iter().map(|&(a, b, c)| FutureSalt { valid_since: a, valid_until: b, salt: c }).collect();
        let m = FutureSalts { req_msg_id: 5, now: 6, salts: TlVec::from_slice(&fs) };
        rt_service!(m);
        for s in &fs { rt_service!(*s); }
    }

    #[test]
    fn handshake_roundtrip(n in a16(), sn in a16(), nn in a32(), pq in bytes(), p in bytes(), q in bytes(),
                           x in any::<i32>(), y in any::<i32>(), l in any::<i64>(), h in a16(),
                           fps in prop::collection::vec(any::<i64>(), 0..8)) {
        rt_service!(ReqPq { nonce: n });
        rt_service!(ReqPqMulti { nonce: n });
        rt_service!(ResPq { nonce: n, server_nonce: sn, pq: &pq, server_public_key_fingerprints: LongVec::from_slice(&fps) });
        let dc = PQInnerDataDc { pq: &pq, p: &p, q: &q, nonce: n, server_nonce: sn, new_nonce: nn, dc: x };
        rt_service!(dc);
        roundtrip!(PQInnerData::Dc(dc));
        let tdc = PQInnerDataTempDc { pq: &pq, p: &p, q: &q, nonce: n, server_nonce: sn, new_nonce: nn, dc: x, expires_in: y };
        rt_service!(tdc);
        roundtrip!(PQInnerData::TempDc(tdc));
        let leg = PQInnerDataLegacy { pq: &pq, p: &p, q: &q, nonce: n, server_nonce: sn, new_nonce: nn };
        rt_service!(leg);
        roundtrip!(PQInnerData::Legacy(leg));
        let tmp = PQInnerDataTemp { pq: &pq, p: &p, q: &q, nonce: n, server_nonce: sn, new_nonce: nn, expires_in: y };
        rt_service!(tmp);
        roundtrip!(PQInnerData::Temp(tmp));
        rt_service!(ReqDhParams { nonce: n, server_nonce: sn, p: &p, q: &q, public_key_fingerprint: l, encrypted_data: &pq });
    let ok = ServerDhParamsOk { nonce: n, server_nonce: sn, encrypted_answer: &p };
        rt_service!(ok);
        roundtrip!(ServerDhParams::Ok(ok));
        let fail = ServerDhParamsFail { nonce: n, server_nonce: sn, new_nonce_hash: h };
        rt_service!(fail);
        roundtrip!(ServerDhParams::Fail(fail));
        rt_service!(ServerDhInnerData { nonce: n, server_nonce: sn, g: x, dh_prime: &p, g_a: &q, server_time: y });
        rt_service!(ClientDhInnerData { nonce: n, server_nonce: sn, retry_id: l, g_b: &q });
        rt_service!(SetClientDhParams { nonce: n, server_nonce: sn, encrypted_data: &pq });
        for a in [SetClientDhParamsAnswer::Ok(DhGenOk { nonce: n, server_nonce: sn, new_nonce_hash1: h }),
                  SetClientDhParamsAnswer::Retry(DhGenRetry { nonce: n, server_nonce: sn, new_nonce_hash2: h }),
                  SetClientDhParamsAnswer::Fail(DhGenFail { nonce: n, server_nonce: sn, new_nonce_hash3: h })] {
            roundtrip!(a);
            prop_assert_eq!(ServiceMessage::decode_body(&enc(&a)).unwrap().constructor(), a.constructor());
        }
        rt_service!(BindAuthKeyInner { nonce: l, temp_auth_key_id: l ^ 1, perm_auth_key_id: l ^ 2, temp_session_id: l ^ 3, expires_at: x });
        rt_service!(AuthBindTempAuthKey { perm_auth_key_id: l, nonce: l, expires_at: x, encrypted_message: &p });
        let rsa = RsaPublicKey { n: &p, e: &q };
        let mut b = vec![0; rsa.tl_len()];
        encode(&rsa, &mut b).unwrap();
        let mut r = Reader::new(&b);
        prop_assert_eq!(RsaPublicKey::read_bare(&mut r).unwrap(), rsa);
        prop_assert!(r.finish().is_ok());
    }

    #[test]
    fn service_roundtrip(a in any::<i64>(), b in any::<i64>(), c in any::<i64>(), x in any::<i32>(), y in any::<i32>(),
                         z in any::<i32>(), s in bytes(), body in words(),
                         ids in prop::collection::vec(any::<i64>(), 0..30)) {
        rt_service!(RpcResult { req_msg_id: a, result: &body });
        rt_service!(RpcError { error_code: x, error_message: &s });
        for v in [RpcAnswer::Unknown(RpcAnswerUnknown {}), RpcAnswer::DroppedRunning(RpcAnswerDroppedRunning {}),
                  RpcAnswer::Dropped(RpcAnswerDropped { msg_id: a, seq_no: x, bytes: y })] {
            roundtrip!(v);
            prop_assert_eq!(ServiceMessage::decode_body(&enc(&v)).unwrap().constructor(), v.constructor());
        }
        rt_service!(RpcDropAnswer { req_msg_id: a });
        rt_service!(GetFutureSalts { num: x });
        rt_service!(Pong { msg_id: a, ping_id: b });
        rt_service!(Ping { ping_id: a });
        rt_service!(PingDelayDisconnect { ping_id: a, disconnect_delay: x });
        rt_service!(DestroySession { session_id: a });
        for v in [DestroySessionRes::Ok(DestroySessionOk { session_id: a }), DestroySessionRes::None(DestroySessionNone { session_id: b })] {
            roundtrip!(v);
            let e = enc(&v);
            rt_service!(ServiceMessage::decode_body(&e).unwrap());
        }
        rt_service!(DestroyAuthKey {});
        for v in [DestroyAuthKeyRes::Ok(DestroyAuthKeyOk {}), DestroyAuthKeyRes::None(DestroyAuthKeyNone {}),
                  DestroyAuthKeyRes::Fail(DestroyAuthKeyFail {})] {
            roundtrip!(v);
            let e = enc(&v);
            rt_service!(ServiceMessage::decode_body(&e).unwrap());
        }
        rt_service!(NewSessionCreated { first_msg_id: a, unique_id: b, server_salt: c });
        rt_service!(HttpWait { max_delay: x, wait_after: y, max_wait: z });
        let l = LongVec::from_slice(&ids);
        rt_service!(MsgsAck { msg_ids: l });
        rt_service!(MsgResendReq { msg_ids: l });
        rt_service!(MsgResendAnsReq { msg_ids: l });
        rt_service!(MsgsStateReq { msg_ids: l });
        rt_service!(MsgsStateInfo { req_msg_id: a, info: &s });
        rt_service!(MsgsAllInfo { msg_ids: l, info: &s });
        for v in [BadMsgNotification::BadMsg(BadMsg { bad_msg_id: a, bad_msg_seqno: x, error_code: y }),
                  BadMsgNotification::BadServerSalt(BadServerSalt { bad_msg_id: a, bad_msg_seqno: x, error_code: y, new_server_salt: b })] {
            roundtrip!(v);
            let e = enc(&v);
            rt_service!(ServiceMessage::decode_body(&e).unwrap());
        }
        for v in [MsgDetailedInfo::Detailed(MsgDetailed { msg_id: a, answer_msg_id: b, bytes: x, status: y }),
                  MsgDetailedInfo::NewDetailed(MsgNewDetailedInfo { answer_msg_id: b, bytes: x, status: y })] {
            roundtrip!(v);
            let e = enc(&v);
            rt_service!(ServiceMessage::decode_body(&e).unwrap());
        }
        rt_service!(GzipPacked { packed_data: &s });
        rt_service!(MsgCopy { orig_message: Message::new(a, x, &body) });
    }

    #[test]
    fn container_roundtrip(msgs in prop::collection::vec((any::<i64>(), any::<i32>(), words()), 0..20)) {
        let ms: Vec<Message> = msgs.iter().map(|(id, seq, body)| Message::new(*id, *seq, body)).collect();
        let c = MsgContainer::new(&ms);
        let buf = rt_service!(c);
        let back = MsgContainer::decode(&buf).unwrap();
        let got: Vec<Message> = back.iter().collect();
        prop_assert_eq!(got, ms);
    }

    /// Arbitrary bytes never panic the decoder, and whatever decodes re-encodes to something that decodes the same.
    #[test]
    fn arbitrary_input_never_panics(data in prop::collection::vec(any::<u8>(), 0..200), id in prop::sample::select(SCHEMA)) {
        let mut input = id.1.to_le_bytes().to_vec();
        input.extend_from_slice(&data);
        mtproto_sansio::fuzzing::tl::tl_reader(&input);
        mtproto_sansio::fuzzing::tl::tl_reader(&data);
        mtproto_sansio::fuzzing::tl::tl_container(&input);
    }
}

// ---- negative suite ------------------------------------------------------------------------------------------------

#[test]
fn chk_055_vector_count_past_end_rejected() {
    // Vector<long> with a count of 2^31-1 and 8 bytes left: rejected from the count alone.
    let mut b = VECTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    b.extend_from_slice(&[0u8; 8]);
    let (r, heap) = allocated_by(|| LongVec::decode(&b));
    assert_eq!((r, heap), (Err(DecodeError::CountTooLarge), 0));
    // One more element than the bytes hold.
    let mut b = VECTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 8]);
    assert_eq!(LongVec::decode(&b), Err(DecodeError::CountTooLarge));
    // A count that would fit 4-byte elements but not 16-byte future_salt elements.
    let mut b = FutureSalts::CONSTRUCTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&[0u8; 12]);
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 24]);
    assert_eq!(FutureSalts::decode(&b), Err(DecodeError::CountTooLarge));
}

#[test]
fn chk_055_bytes_length_past_end_rejected() {
    assert_eq!(Reader::new(&[5, 1, 2, 3]).bytes(), Err(DecodeError::LengthPastEnd));
    assert_eq!(
        Reader::new(&[0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0]).bytes(),
        Err(DecodeError::LengthPastEnd)
    );
    // Data present but its padding is not.
    assert_eq!(Reader::new(&[3, 1, 2, 3, 9][..4]).bytes(), Ok(&[1u8, 2, 3][..]));
    assert_eq!(Reader::new(&[4, 1, 2, 3, 4]).bytes(), Err(DecodeError::LengthPastEnd));
    assert_eq!(Reader::new(&[0xfe, 1, 0]).bytes(), Err(DecodeError::Eof));
    assert_eq!(Reader::new(&[]).bytes(), Err(DecodeError::Eof));
    assert_eq!(Reader::new(&[0xff, 0, 0, 0]).bytes(), Err(DecodeError::BadLength));
    // Inside a schema object.
    let mut b = RpcError::CONSTRUCTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&[1, 0, 0, 0, 200, b'x', b'y', b'z']);
    assert_eq!(RpcError::decode(&b), Err(DecodeError::LengthPastEnd));
}

#[test]
fn atk_b15_tl_count_bomb_rejected() {
    for count in [0x8000_0000u32, u32::MAX, 0x7fff_ffff, 1 << 24] {
        let mut b = MsgContainer::CONSTRUCTOR.to_le_bytes().to_vec();
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        let (r, heap) = allocated_by(|| MsgContainer::decode(&b));
        assert_eq!((r, heap), (Err(DecodeError::CountTooLarge), 0), "{count:#x}");
        let mut b = MsgsAck::CONSTRUCTOR.to_le_bytes().to_vec();
        b.extend_from_slice(&VECTOR.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        assert_eq!(
            ServiceMessage::decode_body(&b),
            Err(DecodeError::CountTooLarge),
            "{count:#x}"
        );
    }
}

#[test]
fn chk_055_deep_nesting_decodes_one_level_only() {
    // 100 000 nested rpc_results: the decoder looks at one level and hands the rest back opaque, so neither the
    // stack nor the time depends on the depth.
    let depth = 100_000usize;
    let mut b = Vec::with_capacity(depth * 12 + 12);
    for i in 0..depth {
        b.extend_from_slice(&RpcResult::CONSTRUCTOR.to_le_bytes());
        b.extend_from_slice(&(i as i64).to_le_bytes());
    }
    b.extend_from_slice(&enc(&Pong { msg_id: 1, ping_id: 2 }));
    let ServiceMessage::RpcResult(r) = ServiceMessage::decode_body(&b).unwrap() else {
        panic!()
    };
    assert_eq!((r.req_msg_id, r.result.len()), (0, b.len() - 12));
    // A container inside a container is just an opaque body at this layer.
    let inner = enc(&MsgContainer::new(&[]));
    let outer = enc(&MsgContainer::new(&[Message::new(4, 1, &inner)]));
    let c = MsgContainer::decode(&outer).unwrap();
    let m = c.iter().next().unwrap();
    assert_eq!(Reader::new(m.body).peek_constructor(), Ok(MsgContainer::CONSTRUCTOR));
}

fn container(count: u32, msgs: &[(i64, i32, i32, &[u8])]) -> Vec<u8> {
    let mut b = MsgContainer::CONSTRUCTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&count.to_le_bytes());
    for (id, seq, bytes, body) in msgs {
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&bytes.to_le_bytes());
        b.extend_from_slice(body);
    }
    b
}

#[test]
fn chk_048_container_over_1024_rejected() {
    let ping = enc(&Ping { ping_id: 1 });
    let many: Vec<(i64, i32, i32, &[u8])> = (0..1025).map(|i| (i, 1, 12, &ping[..])).collect();
    assert_eq!(
        MsgContainer::decode(&container(1025, &many)),
        Err(DecodeError::CountTooLarge)
    );
    let c1024 = container(1024, &many[..1024]);
    let (ok, heap) = allocated_by(|| MsgContainer::decode(&c1024).unwrap());
    assert_eq!(heap, 0, "a container decode allocated");
    assert_eq!(ok.messages.len(), MAX_CONTAINER_MESSAGES);
    assert!(ok.iter().all(|m| m.body == &ping[..]));
    // Empty containers are allowed.
    assert_eq!(MsgContainer::decode(&container(0, &[])).unwrap().messages.len(), 0);
}

#[test]
fn chk_048_container_inner_length_not_multiple_of_4_rejected() {
    let body = [0u8; 8];
    for bad in [1, 2, 3, 5, 7] {
        let b = container(1, &[(1, 1, bad, &body)]);
        assert_eq!(MsgContainer::decode(&b), Err(DecodeError::BadLength), "bytes={bad}");
    }
    assert_eq!(
        MsgContainer::decode(&container(1, &[(1, 1, -4, &body)])),
        Err(DecodeError::BadLength)
    );
    assert_eq!(
        MsgContainer::decode(&container(1, &[(1, 1, 12, &body)])),
        Err(DecodeError::LengthPastEnd)
    );
    assert_eq!(
        MsgContainer::decode(&container(1, &[(1, 1, i32::MAX & !3, &body)])),
        Err(DecodeError::LengthPastEnd)
    );
    // The container is accepted or rejected as a whole: one bad message after a good one fails everything.
    let b = container(2, &[(1, 1, 8, &body), (2, 3, 6, &body)]);
    assert_eq!(MsgContainer::decode(&b), Err(DecodeError::BadLength));
    assert_eq!(
        MsgContainer::decode(&container(1, &[(1, 1, 8, &body)]))
            .unwrap()
            .iter()
            .count(),
        1
    );
    // Trailing bytes after the declared messages.
    let mut b = container(1, &[(1, 1, 4, &body[..4])]);
    b.extend_from_slice(&[0; 4]);
    assert_eq!(MsgContainer::decode(&b), Err(DecodeError::Trailing));
}

#[test]
fn chk_049_msg_id_vectors_over_8192_rejected() {
    let ids: Vec<i64> = (0..=MAX_MSG_IDS as i64).collect();
    let b = enc(&MsgsAck {
        msg_ids: LongVec::from_slice(&ids),
    });
    assert_eq!(MsgsAck::decode(&b), Err(DecodeError::CountTooLarge));
    let b = enc(&MsgResendReq {
        msg_ids: LongVec::from_slice(&ids[..MAX_MSG_IDS]),
    });
    assert_eq!(MsgResendReq::decode(&b).unwrap().msg_ids.len(), MAX_MSG_IDS);
    let b = enc(&MsgsStateReq {
        msg_ids: LongVec::from_slice(&ids),
    });
    assert_eq!(ServiceMessage::decode_body(&b), Err(DecodeError::CountTooLarge));
}

#[test]
fn unknown_constructor_reported() {
    // An API-layer object (updatesTooLong) is not a service message.
    assert_eq!(
        ServiceMessage::decode_body(&0xe317_af7eu32.to_le_bytes()),
        Err(DecodeError::UnknownConstructor(0xe317_af7e))
    );
    assert_eq!(
        ServerDhParams::decode(&DhGenOk::CONSTRUCTOR.to_le_bytes()),
        Err(DecodeError::UnknownConstructor(DhGenOk::CONSTRUCTOR))
    );
    assert_eq!(
        Ping::decode(&Pong::CONSTRUCTOR.to_le_bytes()),
        Err(DecodeError::UnexpectedConstructor {
            expected: Ping::CONSTRUCTOR,
            got: Pong::CONSTRUCTOR
        })
    );
    // A Vector<long> field that is not a vector.
    let mut b = MsgsAck::CONSTRUCTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&BOOL_TRUE.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        MsgsAck::decode(&b),
        Err(DecodeError::UnexpectedConstructor {
            expected: VECTOR,
            got: BOOL_TRUE
        })
    );
    assert_eq!(Reader::new(&[1, 2, 3]).peek_constructor(), Err(DecodeError::Eof));
    assert_eq!(bool::decode(&0u32.to_le_bytes()), Err(DecodeError::BadBool(0)));
}

#[test]
fn truncations_and_trailing_rejected() {
    let full = enc(&BadServerSalt {
        bad_msg_id: 1,
        bad_msg_seqno: 2,
        error_code: 48,
        new_server_salt: 3,
    });
    for n in 0..full.len() {
        assert!(ServiceMessage::decode_body(&full[..n]).is_err(), "prefix {n}");
    }
    let mut long = full.clone();
    long.push(0);
    assert_eq!(ServiceMessage::decode_body(&long), Err(DecodeError::Trailing));
    // rpc_result owns the rest of the body, so it has no trailing bytes by construction.
    let r = RpcResult::decode(&[1, 0x6d, 0x5c, 0xf3, 1, 0, 0, 0, 0, 0, 0, 0, 9, 9]).unwrap();
    assert_eq!(r.result, &[9, 9]);
}

#[test]
fn writer_reports_required_size_and_leaves_output_untouched() {
    let ids = [1i64, 2, 3];
    let v = MsgsAck {
        msg_ids: LongVec::from_slice(&ids),
    };
    let mut buf = [0xeeu8; 64];
    let mut w = Writer::new(&mut buf[..40]);
    w.put(&Ping { ping_id: 7 }).unwrap();
    assert_eq!(
        w.put(&v),
        Err(Full {
            required: 12 + v.tl_len()
        })
    );
    assert_eq!(w.written(), 12);
    assert_eq!(w.remaining(), Some(28));
    assert!(buf[12..].iter().all(|&b| b == 0xee));
    let too_long = vec![0u8; MAX_BYTES_LEN + 1];
    let mut big = vec![0u8; 16];
    assert_eq!(
        Writer::new(&mut big).bytes(&too_long),
        Err(Full { required: usize::MAX })
    );
}

#[cfg(feature = "alloc")]
#[test]
fn vec_writer_matches_slice_writer() {
    let ids = [5i64; 9];
    let v = ServiceMessage::MsgsAck(MsgsAck {
        msg_ids: LongVec::from_slice(&ids),
    });
    assert_eq!(to_vec(&v).unwrap(), enc(&v));
    let mut out = Vec::new();
    let mut w = Writer::from_vec(&mut out);
    w.put(&v).unwrap();
    w.put(&true).unwrap();
    assert_eq!(w.remaining(), None);
    assert_eq!(out.len(), v.tl_len() + 4);
}

// ---- gzip ----------------------------------------------------------------------------------------------------------

/// A gzip member of `n` zero bytes built by hand: one fixed-Huffman block of a literal 0 followed by
/// length-258/distance-1 matches, so it needs no compressor (the alloc one is tested separately).
fn zero_bomb(n: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, v: u32, len: u32) {
            self.acc |= u64::from(v) << self.n;
            self.n += len;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// Huffman codes go MSB first.
        fn code(&mut self, code: u32, len: u32) {
            let rev = code.reverse_bits() >> (32 - len);
            self.put(rev, len);
        }
    }
    let mut b = Bits {
        out: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff],
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // BFINAL
    b.put(1, 2); // fixed Huffman
    b.code(0x30, 8); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        b.code(0xc5, 8); // length symbol 285 = 258
        b.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block
    if b.n > 0 {
        b.put(0, 8 - b.n);
    }
    let mut out = b.out;
    out.extend_from_slice(&crc32fast::hash(&vec![0u8; n]).to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out
}

#[test]
fn gzip_hand_built_member_inflates() {
    let gz = zero_bomb(100_000);
    let mut out = vec![1u8; 100_000];
    assert_eq!(gzip::inflate(&gz, &mut out), Ok(100_000));
    assert!(out.iter().all(|&b| b == 0));
    let packed = GzipPacked { packed_data: &gz };
    let body = enc(&packed);
    let ServiceMessage::GzipPacked(p) = ServiceMessage::decode_body(&body).unwrap() else {
        panic!()
    };
    assert_eq!(p.inflate(&mut out), Ok(100_000));
}

#[test]
fn chk_050_gzip_output_capped_at_slice_length() {
    let gz = zero_bomb(16 << 20);
    assert!(gz.len() < (16 << 20) / 100, "compressed size {}", gz.len());
    const CAP: usize = 64 << 10;
    let mut buf = vec![0xabu8; CAP + 4096];
    // The counter works (so the zero below means something).
    assert!(allocated_by(|| std::hint::black_box(vec![1u8; 64])).1 >= 64);
    // Peak memory is the caller's slice plus the stack state: the inflater itself allocates nothing.
    let (r, heap) = allocated_by(|| gzip::inflate(&gz, &mut buf[..CAP]));
    assert_eq!((r, heap), (Err(GzipError::OutputTooLarge), 0));
    assert!(buf[CAP..].iter().all(|&b| b == 0xab), "wrote past the output slice");
    // Exactly at the cap it fits; one byte short it does not.
    let gz = zero_bomb(CAP);
    assert_eq!(gzip::inflate(&gz, &mut buf[..CAP]), Ok(CAP));
    assert_eq!(gzip::inflate(&gz, &mut buf[..CAP - 1]), Err(GzipError::OutputTooLarge));
}

#[test]
fn atk_b14_gzip_bomb_rejected_with_caller_state() {
    // 16 MiB of zeros, inflated with a caller-owned (static-able) decompressor state into a 1 MiB cap.
    let gz = zero_bomb(16 << 20);
    let mut state = Box::new(gzip::DecompressorOxide::new());
    let mut out = vec![0u8; 1 << 20];
    assert_eq!(
        gzip::inflate_with(&mut state, &gz, &mut out),
        Err(GzipError::OutputTooLarge)
    );
    // The state is reusable afterwards.
    let small = zero_bomb(1000);
    assert_eq!(gzip::inflate_with(&mut state, &small, &mut out), Ok(1000));
}

#[test]
fn gzip_rejects_malformed_members() {
    let gz = zero_bomb(1000);
    let mut out = vec![0u8; 1000];
    let mut bad = gz.clone();
    bad[0] = 0;
    assert_eq!(gzip::inflate(&bad, &mut out), Err(GzipError::BadMagic));
    let mut bad = gz.clone();
    bad[2] = 7;
    assert_eq!(gzip::inflate(&bad, &mut out), Err(GzipError::UnsupportedMethod(7)));
    for n in [0, 5, 10, 12] {
        assert_eq!(
            gzip::inflate(&gz[..n], &mut out),
            Err(GzipError::Truncated),
            "prefix {n}"
        );
    }
    // Cut inside the stream or trailer: the four bytes that end up where ISIZE goes are read as the member's size, so
    // it is refused as truncated, or, when they announce more than the buffer holds, before inflating as too large.
    for n in [gz.len() - 9, gz.len() - 1] {
        let announced = u32::from_le_bytes(*gz[..n].last_chunk::<4>().unwrap()) as usize;
        let want = if announced > out.len() {
            GzipError::OutputTooLarge
        } else {
            GzipError::Truncated
        };
        assert_eq!(gzip::inflate(&gz[..n], &mut out), Err(want), "prefix {n}");
    }
    let mut bad = gz.clone();
    bad[10] |= 0x06; // BTYPE 11: reserved
    assert_eq!(gzip::inflate(&bad, &mut out), Err(GzipError::BadDeflate));
    // An endless FNAME is bounded.
    let mut named = gz[..10].to_vec();
    named[3] = 0x08;
    named.extend(std::iter::repeat_n(b'a', gzip::MAX_HEADER_STRING + 10));
    assert_eq!(gzip::inflate(&named, &mut out), Err(GzipError::HeaderFieldTooLong));
}

#[cfg(feature = "alloc")]
#[test]
fn gzip_deflate_roundtrip_and_alloc_bomb() {
    let data: Vec<u8> = (0..50_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
    for level in [0, 1, 6, 10] {
        let gz = gzip::deflate_gzip(&data, level);
        let mut out = vec![0u8; data.len()];
        assert_eq!(gzip::inflate(&gz, &mut out), Ok(data.len()));
        assert_eq!(out, data);
    }
    assert_eq!(gzip::deflate_gzip(b"", 6).len(), 20);
    let bomb = gzip::deflate_gzip(&vec![0u8; 16 << 20], 10);
    assert!(bomb.len() < 40 << 10, "{}", bomb.len());
    let mut out = vec![0u8; (16 << 20) - 1];
    assert_eq!(gzip::inflate(&bomb, &mut out), Err(GzipError::OutputTooLarge));
}

// ---- fuzz corpus ---------------------------------------------------------------------------------------------------

fn corpus_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let s = sample();
    let mut v = Vec::new();
    for step in s["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap().to_lowercase();
        v.push(("tl_reader", format!("sample_{name}"), hexv(&step["body_hex"])));
    }
    let ids = [0x6777_e5eb_0005_9760i64, 0x6777_e5eb_0008_e568];
    let salts = [FutureSalt {
        valid_since: 1,
        valid_until: 2,
        salt: 3,
    }];
    let ping = enc(&Ping { ping_id: 42 });
    let ack = enc(&MsgsAck {
        msg_ids: LongVec::from_slice(&ids),
    });
    let msgs = [Message::new(ids[0] + 4, 1, &ping), Message::new(ids[0] + 8, 2, &ack)];
    let cont = enc(&MsgContainer::new(&msgs));
    let gz = zero_bomb(64);
    let reader: Vec<(&str, Vec<u8>)> = vec![
        ("ping", ping.clone()),
        ("msgs_ack", ack.clone()),
        ("container", cont.clone()),
        (
            "rpc_result_error",
            enc(&RpcResult {
                req_msg_id: 7,
                result: &enc(&RpcError {
                    error_code: 420,
                    error_message: b"FLOOD_WAIT_3",
                }),
            }),
        ),
        (
            "future_salts",
            enc(&FutureSalts {
                req_msg_id: 1,
                now: 2,
                salts: TlVec::from_slice(&salts),
            }),
        ),
        (
            "bad_server_salt",
            enc(&BadServerSalt {
                bad_msg_id: 1,
                bad_msg_seqno: 2,
                error_code: 48,
                new_server_salt: 9,
            }),
        ),
        (
            "new_session_created",
            enc(&NewSessionCreated {
                first_msg_id: 1,
                unique_id: 2,
                server_salt: 3,
            }),
        ),
        ("gzip_packed", enc(&GzipPacked { packed_data: &gz })),
        ("msg_copy", enc(&MsgCopy { orig_message: msgs[0] })),
        (
            "msgs_state_info",
            enc(&MsgsStateInfo {
                req_msg_id: 5,
                info: &[1, 2, 3],
            }),
        ),
        ("destroy_auth_key_ok", enc(&DestroyAuthKeyOk {})),
        (
            "count_bomb",
            [
                MsgsAck::CONSTRUCTOR.to_le_bytes(),
                VECTOR.to_le_bytes(),
                0x7fff_ffffu32.to_le_bytes(),
            ]
            .concat(),
        ),
        (
            "long_bytes_past_end",
            [RpcError::CONSTRUCTOR.to_le_bytes(), [0; 4], [0xfe, 0xff, 0xff, 0x00]].concat(),
        ),
        ("unknown", 0xdead_beefu32.to_le_bytes().to_vec()),
    ];
    v.extend(reader.into_iter().map(|(n, b)| ("tl_reader", n.to_string(), b)));
    // A gzip_packed whose payload is the container.
    let gz_cont = {
        // Stored block: BFINAL=1, BTYPE=00, LEN, NLEN, data.
        let mut m = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1];
        m.extend_from_slice(&(cont.len() as u16).to_le_bytes());
        m.extend_from_slice(&(!(cont.len() as u16)).to_le_bytes());
        m.extend_from_slice(&cont);
        m.extend_from_slice(&crc32fast::hash(&cont).to_le_bytes());
        m.extend_from_slice(&(cont.len() as u32).to_le_bytes());
        enc(&GzipPacked { packed_data: &m })
    };
    let container: Vec<(&str, Vec<u8>)> = vec![
        ("container", cont.clone()),
        ("empty", container(0, &[])),
        ("gzip_container", gz_cont),
        ("over_1024", container(1025, &[])),
        ("inner_len_6", container(1, &[(1, 1, 6, &[0; 8])])),
        ("inner_len_past_end", container(1, &[(1, 1, 64, &[0; 8])])),
        (
            "gzip_bomb",
            enc(&GzipPacked {
                packed_data: &zero_bomb(1 << 20),
            }),
        ),
    ];
    v.extend(container.into_iter().map(|(n, b)| ("tl_container", n.to_string(), b)));
    v
}

/// Every seed is checked in; `MTPROTO_WRITE_CORPUS=1 cargo test --test tl corpus` regenerates them.
#[test]
fn fuzz_corpus_seeds_are_checked_in() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = std::env::var_os("MTPROTO_WRITE_CORPUS").is_some();
    for (target, name, bytes) in corpus_seeds() {
        let dir = root.join(target);
        let path = dir.join(&name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap_or_default(),
            bytes,
            "{} is stale",
            path.display()
        );
        let f = if target == "tl_reader" {
            mtproto_sansio::fuzzing::tl::tl_reader
        } else {
            mtproto_sansio::fuzzing::tl::tl_container
        };
        f(&bytes);
    }
}

/// The sizes the docs promise: the inflater state an MCU may keep in a `static`, and the decoded views.
#[test]
fn documented_sizes_hold() {
    let state = std::mem::size_of::<gzip::DecompressorOxide>();
    println!(
        "DecompressorOxide {state} B, ServiceMessage {} B, Reader {} B",
        size_of::<ServiceMessage>(),
        size_of::<Reader>()
    );
    assert!((9 * 1024..=12 * 1024).contains(&state), "{state}");
    assert!(size_of::<ServiceMessage>() <= 128);
}

#[test]
fn non_canonical_bytes_accepted_and_reencoded_canonically() {
    // Long-form prefix for a 3-byte string, and non-zero padding: peers do not send these, but rejecting them buys
    // nothing, so the reader tolerates them and the writer always emits the canonical form.
    let mut b = RpcError::CONSTRUCTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&400i32.to_le_bytes());
    b.extend_from_slice(&[0xfe, 3, 0, 0, b'B', b'A', b'D', 0xff]);
    let e = RpcError::decode(&b).unwrap();
    assert_eq!(e.error_message, b"BAD");
    let re = enc(&e);
    assert!(re.len() < b.len());
    assert_eq!(&re[8..], b"\x03BAD");
    assert_eq!(RpcError::decode(&re).unwrap(), e);
}

#[test]
fn reader_primitives_are_bounds_checked() {
    let data = [1u8, 2, 3, 4, 5, 6, 7];
    let mut r = Reader::new(&data);
    assert_eq!(r.i64(), Err(DecodeError::Eof));
    assert_eq!(r.position(), 0, "a failed read consumes nothing");
    assert_eq!(r.u32(), Ok(0x0403_0201));
    assert_eq!(r.take(4), Err(DecodeError::Eof));
    assert_eq!(r.take(usize::MAX), Err(DecodeError::Eof));
    assert_eq!(r.rest(), &[5, 6, 7]);
    assert_eq!(r.finish(), Err(DecodeError::Trailing));
    assert_eq!(r.take_rest(), &[5, 6, 7]);
    assert_eq!(r.finish(), Ok(()));
    assert_eq!(r.int128(), Err(DecodeError::Eof));
    // A count of zero-size elements is still bounded by the bytes left.
    let mut r = Reader::new(&[5, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r.count(0), Err(DecodeError::CountTooLarge));
}
