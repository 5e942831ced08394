//! Fuzz entry points for `tl`.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::tl::{
    self, GzipPacked, MAX_CONTAINER_MESSAGES, Message, MsgContainer, Reader, ServiceMessage, TlRead, TlWrite, gzip,
};

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("tl_reader", tl_reader), ("tl_container", tl_container)];

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
