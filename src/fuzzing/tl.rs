//! Fuzz entry points for `tl`.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::tl::{
    self, GzipPacked, MAX_CONTAINER_MESSAGES, Message, MsgContainer, Reader, ServiceMessage, TlRead, TlWrite, gzip,
};

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[
    ("tl_reader", tl_reader),
    ("tl_container", tl_container),
    ("tl_api", tl_api),
];

/// Largest re-encoding checked on the stack (fuzz inputs are smaller by default).
const SCRATCH: usize = 8192;

/// Decodes `data` as a service message; on success re-encodes it and checks the round trip.
///
/// The reader accepts non-canonical padding and long-form short lengths (as peers do), so the re-encoding may be
/// shorter than the input but never longer, decodes to the same value, and re-encodes to itself.
pub fn tl_reader(data: &[u8]) {
    let Ok(msg) = ServiceMessage::decode_body(data) else {
        return;
    };
    assert!(Reader::new(data).peek_constructor() == Ok(msg.constructor()));
    let len = msg.tl_len();
    assert!(len <= data.len());
    let mut buf = [0u8; SCRATCH];
    let Ok(n) = tl::encode(&msg, &mut buf) else {
        assert!(len > SCRATCH);
        return;
    };
    assert!(n == len);
    let re = buf.get(..n).unwrap_or(&[]);
    let again = ServiceMessage::decode_body(re);
    assert!(again == Ok(msg));
    let mut buf2 = [0u8; SCRATCH];
    assert!(tl::encode(&msg, &mut buf2) == Ok(n) && buf2.get(..n) == Some(re));
    // One level down, as a session would: opaque bodies decode on their own or fail with a typed error.
    match msg {
        ServiceMessage::MsgContainer(c) => {
            for m in c.iter() {
                let _ = ServiceMessage::decode_body(m.body);
            }
        }
        ServiceMessage::RpcResult(r) => {
            let _ = ServiceMessage::decode_body(r.result);
        }
        ServiceMessage::GzipPacked(g) => {
            let mut out = [0u8; SCRATCH];
            if let Ok(k) = g.inflate(&mut out) {
                assert!(k <= SCRATCH);
            }
        }
        _ => {}
    }
}

/// Decodes `data` as a `msg_container`, or as a `gzip_packed` whose inflated payload is a container, checks every
/// container invariant, rebuilds the container from its messages and requires a byte-identical encoding.
pub fn tl_container(data: &[u8]) {
    let mut inflated = [0u8; SCRATCH];
    let body: &[u8] = match Reader::new(data).peek_constructor() {
        Ok(GzipPacked::CONSTRUCTOR) => {
            let Ok(g) = GzipPacked::decode(data) else { return };
            // Same member, fresh state supplied by us: both entry points must agree.
            let mut state = gzip::DecompressorOxide::new();
            let mut other = [0u8; SCRATCH];
            let a = gzip::inflate_with(&mut state, g.packed_data, &mut other);
            let Ok(n) = g.inflate(&mut inflated) else {
                assert!(a.is_err());
                return;
            };
            assert!(a == Ok(n) && other.get(..n) == inflated.get(..n));
            inflated.get(..n).unwrap_or(&[])
        }
        _ => data,
    };
    let Ok(c) = MsgContainer::decode(body) else {
        return;
    };
    assert!(c.messages.len() <= MAX_CONTAINER_MESSAGES);
    let mut msgs: heapless::Vec<Message<'_>, MAX_CONTAINER_MESSAGES> = heapless::Vec::new();
    let mut total = 8usize;
    for m in c.iter() {
        assert!(m.bytes >= 0 && m.bytes % 4 == 0 && m.body.len() == m.bytes as usize);
        total += 16 + m.body.len();
        assert!(msgs.push(m).is_ok());
        let _ = ServiceMessage::decode_body(m.body);
    }
    assert!(msgs.len() == c.messages.len() && total == body.len() && c.tl_len() == body.len());
    let rebuilt = MsgContainer::new(&msgs);
    assert!(rebuilt == c && rebuilt.tl_len() == body.len());
    let mut buf = [0u8; SCRATCH];
    if let Ok(n) = tl::encode(&rebuilt, &mut buf) {
        assert!(buf.get(..n) == Some(body));
    }
}

/// Validates `data` as every boxed type, as any function call and as any object of the three generated schemas
/// (`tl::tables`); with the `api` feature, re-encodes every value that validates through its typed view.
///
/// A validated length never exceeds the input and validates again on its own. A re-encoding validates, re-encodes
/// to itself, and is never longer than its input (the views accept long-form short lengths and non-zero padding,
/// and drop flag bits the schema does not define, as peers do).
pub fn tl_api(data: &[u8]) {
    use crate::tl::layout::Root;
    use crate::tl::tables::{api, mtproto, secret};
    let roots = (0..api::TYPE_NAMES.len())
        .filter_map(|t| u16::try_from(t).ok())
        .map(Root::Type)
        .chain([Root::Function, Root::Object]);
    for root in roots {
        // The views' trusting walk is total on any bytes, and finds the end the validator finds on the bytes it
        // accepts.
        let skipped = api::API.skip(data, 0, root.record());
        assert!(skipped <= data.len());
        // The marking validation that `Boxed::decode` uses answers as the plain one, and marks ends inside the input.
        if let Root::Type(t) = root {
            let mut marks = crate::tl::layout::Marks::EMPTY;
            let marked = api::API.validate_marked(data, t, &mut marks);
            assert_eq!(marked, api::API.validate_exact(data, root));
            if marked.is_ok() {
                assert!((0..=data.len()).all(|p| marks.end_of(p).is_none_or(|e| p <= e && e <= data.len())));
            }
            // The deep marking of `Boxed::decode_in` too, into a scratch small enough to fill up: ends recorded in
            // the order values start, each inside the input, and every one found again by the views' search.
            let mut ends = [crate::tl::layout::Mark::default(); 64];
            let deep = api::API.validate_ends(data, t, &mut ends);
            assert_eq!(deep.map(drop), api::API.validate_exact(data, root));
            if let Ok(n) = deep {
                let ends = ends.get(..n).unwrap_or(&[]);
                assert!(
                    ends.windows(2)
                        .all(|w| w.first().map(|m| m.start) < w.get(1).map(|m| m.start))
                );
                assert!(ends.iter().all(|m| m.start < m.end && m.end as usize <= data.len()));
                let mut hint = 0;
                for m in ends {
                    assert_eq!(
                        crate::tl::layout::end_in(ends, &mut hint, m.start as usize),
                        Some(m.end as usize)
                    );
                }
            }
        }
        let Ok(n) = api::API.validate(data, root) else {
            continue;
        };
        assert!(n <= data.len());
        assert_eq!(skipped, n);
        let value = data.get(..n).unwrap_or(&[]);
        assert!(api::API.validate_exact(value, root).is_ok());
        #[cfg(feature = "api")]
        api_round_trip(value, root);
    }
    for layout in [&secret::SECRET, &mtproto::MTPROTO] {
        if let Ok(n) = layout.validate(data, Root::Object) {
            assert!(n <= data.len());
            assert!(
                layout
                    .validate_exact(data.get(..n).unwrap_or(&[]), Root::Object)
                    .is_ok()
            );
        }
    }
}

#[cfg(feature = "api")]
fn api_round_trip(value: &[u8], root: crate::tl::layout::Root) {
    use crate::tl::api::{reencode_call, reencode_type};
    use crate::tl::layout::Root;
    use crate::tl::tables::api;
    let encode = |input: &[u8], out: &mut [u8]| match root {
        Root::Type(t) => reencode_type(t, input, out),
        Root::Function => reencode_call(input, out),
        _ => Ok(Ok(0)),
    };
    if matches!(root, Root::Object | Root::Bare(_)) {
        return;
    }
    let mut first = [0u8; SCRATCH];
    let r = encode(value, &mut first);
    // Bytes the validator accepted always decode into their view.
    assert!(r.is_ok());
    let Ok(Ok(n)) = r else {
        // Full: the re-encoding is never longer than its input, so only an input past the scratch size.
        assert!(value.len() > SCRATCH);
        return;
    };
    assert!(n <= value.len());
    let re = first.get(..n).unwrap_or(&[]);
    assert!(api::API.validate_exact(re, root).is_ok());
    let mut second = [0u8; SCRATCH];
    assert!(encode(re, &mut second) == Ok(Ok(n)) && second.get(..n) == Some(re));
}
