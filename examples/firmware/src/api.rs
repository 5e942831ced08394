//! The Telegram API schema on the device (feature `api`; `API=1 examples/firmware/run.sh`): a stream of `Updates`
//! that test_dc pushed to a signed-in bot is validated against the layer-228 tables ([`Layout::validate`]), read
//! through the generated borrowed views (`tl::api`), and answered with a `messages.sendMessage` written by the
//! generated writer into a caller's buffer; then the failures a hostile peer can cause (truncation, an unknown nested
//! constructor, nesting past [`MAX_DEPTH`]) and the deepest nesting the validator accepts, which bounds its stack.
//!
//! The stream (`data/updates.bin`) is recorded over loopback from test_dc by `record_firmware_stream` in
//! tests/client_updates.rs: bot 111 sends bot 222 five messages (the first arrives as an `updates` with
//! `updateNewMessage` and its sender's `user`, the others as `updateShortMessage`) and posts one in test_dc's
//! megagroup (`updates` with `updateNewChannelMessage`, the sender and the `channel`). `data/send_message.bin` is the
//! reply the host test built from the first push with the same typed writer, and test_dc accepted; this firmware
//! builds it from what it read and must produce the same bytes.
//!
//! Nothing here allocates (the firmware has no heap): strings are slices of the stream, vectors are read lazily.

use cortex_m_semihosting::hprintln;

use mtproto_sansio::tl;
use mtproto_sansio::tl::api::{Boxed, Obj, Seq, enums, functions, types};
use mtproto_sansio::tl::layout::{Error, Layout, MAX_DEPTH, Root};
use mtproto_sansio::tl::tables::api::API;

use crate::Report;
use crate::meter::measure;

/// Bot 222's pushes, as recorded: per push `len: u32` (little-endian), then the `Updates` bytes.
static STREAM: &[u8] = include_bytes!("../data/updates.bin");
/// `messages.sendMessage` as the host built it from the first push (`firmware_reply` in tests/client_updates.rs).
static REPLY: &[u8] = include_bytes!("../data/send_message.bin");

/// What bot 111 sent, in order (`FIRMWARE_TEXTS` in tests/client_updates.rs).
const TEXTS: [&str; 5] = [
    "Hello from test_dc: the first message carries its sender in `updates`",
    "m2",
    "Привет, мир! \u{1f44b} (UTF-8 is bytes to TL)",
    "a fourth message, with a longer text so that the stream is not all short strings: 0123456789abcdef",
    "m5",
];
/// The megagroup message (`FIRMWARE_CHANNEL_TEXT`).
const CHANNEL_TEXT: &str = "to the megagroup";
/// The sender (test_dc's bot `111:secret`).
const SENDER: i64 = 111;
/// test_dc's megagroup (`mtproto_test_dc::updates::CHANNEL_ID`).
const CHANNEL_ID: i64 = 1_777_000_001;
/// The reply's random_id (`FIRMWARE_RANDOM_ID`).
const RANDOM_ID: i64 = 0x0123_4567_89ab_cdef;
/// Pushes in the stream.
const PUSHES: usize = TEXTS.len() + 1;
/// The reply's buffer: `messages.sendMessage` with the longest text above fits with room to spare.
const OUT: usize = 512;
/// `textBold#6724abc4 text:RichText = RichText`, the recursive constructor the depth checks nest.
const TEXT_BOLD: u32 = 0x6724_abc4;
/// `textEmpty#dc3d824f = RichText`, which ends the nesting.
const TEXT_EMPTY: u32 = 0xdc3d_824f;
/// Bytes of the deepest nesting tried (one combinator more than [`MAX_DEPTH`]).
const DEEP: usize = 4 * (MAX_DEPTH as usize + 1);

/// The pushes of a recorded stream.
struct Pushes<'a>(&'a [u8]);

impl<'a> Iterator for Pushes<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let (push, rest) = rest.split_at_checked(u32::from_le_bytes(*len) as usize)?;
        self.0 = rest;
        Some(push)
    }
}

/// What a client takes from one push.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Seen<'a> {
    /// `updateNewMessage`, `updateShortMessage`, `updateNewChannelMessage`, or anything else.
    kind: Kind,
    pts: i32,
    msg_id: i32,
    from: i64,
    text: &'a [u8],
    /// The sender's `user` object, where the push carries it: id, access_hash, first name.
    user: i64,
    access_hash: i64,
    first_name: &'a [u8],
    /// The `channel` object, where the push carries it: id and title.
    channel: i64,
    title: &'a [u8],
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
enum Kind {
    #[default]
    Other,
    NewMessage,
    ShortMessage,
    NewChannelMessage,
}

/// The sender and text of a `message`.
fn message<'a>(s: &mut Seen<'a>, m: Obj<'a, enums::Message<'a>>) {
    if let Some(enums::Message::Message(m)) = m.get() {
        s.msg_id = m.id;
        s.text = m.message;
        if let Some(enums::Peer::PeerUser(p)) = m.from_id.and_then(|f| f.get()) {
            s.from = p.user_id;
        }
    }
}

/// Validates and reads one push through the typed views.
fn read(push: &[u8]) -> Result<Seen<'_>, Error> {
    let mut s = Seen::default();
    match enums::Updates::decode(push)? {
        enums::Updates::Updates(u) => {
            // `decoded`: each element read once, straight from the wire.
            for x in u.updates.decoded() {
                match x {
                    enums::Update::UpdateNewMessage(n) => {
                        s.kind = Kind::NewMessage;
                        s.pts = n.pts;
                        message(&mut s, n.message);
                    }
                    enums::Update::UpdateNewChannelMessage(n) => {
                        s.kind = Kind::NewChannelMessage;
                        s.pts = n.pts;
                        message(&mut s, n.message);
                    }
                    _ => s.kind = Kind::Other,
                }
            }
            for x in u.users.decoded() {
                if let enums::User::User(u) = x {
                    s.user = u.id;
                    s.access_hash = u.access_hash.unwrap_or(0);
                    s.first_name = u.first_name.unwrap_or_default();
                }
            }
            for x in u.chats.decoded() {
                if let enums::Chat::Channel(c) = x {
                    s.channel = c.id;
                    s.title = c.title;
                }
            }
        }
        enums::Updates::UpdateShortMessage(m) => {
            s.kind = Kind::ShortMessage;
            s.pts = m.pts;
            s.msg_id = m.id;
            s.from = m.user_id;
            s.text = m.message;
        }
        _ => {}
    }
    Ok(s)
}

/// The reply to the first message: `messages.sendMessage` to its sender (the access_hash from its `user`), silent,
/// replying to it, echoing its text in bold, written into `out`; the length written.
fn reply(first: &Seen<'_>, out: &mut [u8]) -> Result<usize, tl::Full> {
    let peer = types::InputPeerUser {
        user_id: first.from,
        access_hash: first.access_hash,
    };
    let reply_to = types::InputReplyToMessage {
        reply_to_msg_id: first.msg_id,
        top_msg_id: None,
        reply_to_peer_id: None,
        quote_text: None,
        quote_entities: None,
        quote_offset: None,
        monoforum_peer_id: None,
        todo_item_id: None,
        poll_option: None,
    };
    let bold = types::MessageEntityBold {
        offset: 0,
        length: i32::try_from(first.text.len()).unwrap_or(i32::MAX),
    };
    let entities = [Obj::new(&bold)];
    tl::encode(
        &functions::MessagesSendMessage {
            no_webpage: true,
            silent: true,
            reply_to: Some(Obj::new(&reply_to)),
            entities: Some(Seq::new(&entities)),
            ..functions::MessagesSendMessage::new(Obj::new(&peer), first.text, RANDOM_ID)
        },
        out,
    )
}

/// `levels` nested combinators of `RichText`: `textBold` around `textBold` ... around `textEmpty`. The length used.
fn nest(buf: &mut [u8; DEEP], levels: usize) -> usize {
    let mut n = 0;
    for (i, word) in buf.chunks_exact_mut(4).take(levels).enumerate() {
        let id = if i + 1 == levels { TEXT_EMPTY } else { TEXT_BOLD };
        word.copy_from_slice(&id.to_le_bytes());
        n += 4;
    }
    n
}

/// Prints a verdict line and counts a failure.
fn verdict(r: &mut Report, ok: bool, what: &str) {
    if ok {
        hprintln!("PASS: {}", what);
    }
    r.check(ok, what);
}

/// Runs the API demo; returns the deepest stack any of its calls reached.
pub fn run(r: &mut Report) -> usize {
    let layout: &Layout = &API;
    hprintln!(
        "api: layer-228 tables: {} combinators, {} field records; stream: {} B in {} pushes",
        layout.ids.len(),
        layout.fields.len(),
        STREAM.len(),
        Pushes(STREAM).count()
    );
    let root = Root::Type(enums::Updates::TYPE);
    let mut peak = 0usize;

    // 1. The schema check alone: every push is one whole `Updates`.
    let m = measure(|| {
        Pushes(STREAM)
            .map(|p| layout.validate_exact(p, root))
            .filter(Result::is_ok)
            .count()
    });
    r.line("api: validate the stream (Layout::validate)", &m);
    peak = peak.max(m.stack);
    verdict(r, m.out == PUSHES, "every push of the stream is a valid Updates");

    // 2. Decode (validation included) and read what a client reads, through the views.
    let m = measure(|| {
        let mut seen = [Seen::default(); PUSHES];
        let mut n = 0;
        for (slot, p) in seen.iter_mut().zip(Pushes(STREAM)) {
            if let Ok(s) = read(p) {
                *slot = s;
                n += 1;
            }
        }
        (n, seen)
    });
    r.line("api: decode + read the stream (typed views)", &m);
    peak = peak.max(m.stack);
    let (n, seen) = m.out;
    verdict(r, n == PUSHES, "every push decodes");
    let first = seen[0];
    hprintln!(
        "api: push 1 from user {} (access_hash {:#x}, first name {:?})",
        first.user,
        first.access_hash,
        core::str::from_utf8(first.first_name).unwrap_or("?")
    );
    verdict(
        r,
        first.kind == Kind::NewMessage && first.user == SENDER && first.from == SENDER,
        "push 1: updates with updateNewMessage and its sender's user",
    );
    let mut texts_ok = true;
    for (i, (s, text)) in seen.iter().zip(TEXTS).enumerate() {
        let kind = if i == 0 { Kind::NewMessage } else { Kind::ShortMessage };
        texts_ok &= s.kind == kind && s.from == SENDER && s.text == text.as_bytes() && s.pts == i as i32 + 2;
    }
    verdict(r, texts_ok, "pushes 1-5: the five texts in order, from 111, pts 2..6");
    let ch = seen[PUSHES - 1];
    verdict(
        r,
        ch.kind == Kind::NewChannelMessage
            && ch.text == CHANNEL_TEXT.as_bytes()
            && ch.from == SENDER
            && ch.channel == CHANNEL_ID
            && ch.title == b"test_dc updates"
            && ch.pts == 2,
        "push 6: updateNewChannelMessage in the megagroup, with the channel",
    );

    // 3. The reply, written by the typed writer into a buffer of ours.
    let m = measure(|| {
        let mut out = [0u8; OUT];
        let n = reply(&first, &mut out);
        (n, out)
    });
    r.line("api: build messages.sendMessage (typed writer)", &m);
    peak = peak.max(m.stack);
    let (written, out) = m.out;
    let built = written.ok().and_then(|n| out.get(..n)).unwrap_or_default();
    verdict(
        r,
        built == REPLY,
        "messages.sendMessage is byte-identical to the host's (test_dc took it)",
    );
    verdict(
        r,
        layout.validate_exact(built, Root::Function).is_ok(),
        "messages.sendMessage validates as a function call",
    );

    // 4. Hostile input gets a typed error.
    let first_push = Pushes(STREAM).next().unwrap_or_default();
    let cut = first_push.get(..first_push.len().saturating_sub(4)).unwrap_or_default();
    verdict(
        r,
        layout.validate(cut, root) == Err(Error::Truncated),
        "a truncated push: Error::Truncated",
    );
    let mut bad = [0u8; OUT];
    let unknown = match bad.get_mut(..first_push.len()) {
        Some(b) => {
            b.copy_from_slice(first_push);
            // updates#74ae4240, vector#1cb5c415, count, then the first update's constructor id.
            if let Some(id) = b.get_mut(12..16) {
                id.copy_from_slice(&0xdead_beefu32.to_le_bytes());
            }
            layout.validate(b, root)
        }
        None => Ok(0),
    };
    verdict(
        r,
        unknown == Err(Error::UnknownConstructor(0xdead_beef)),
        "an unknown nested constructor: Error::UnknownConstructor",
    );

    // 5. Nesting: MAX_DEPTH combinators are accepted, one more is Error::TooDeep; the stack of the deepest.
    let rich = Root::Type(enums::RichText::TYPE);
    let mut deep = [0u8; DEEP];
    let len = nest(&mut deep, MAX_DEPTH as usize + 1);
    verdict(
        r,
        layout.validate(deep.get(..len).unwrap_or_default(), rich) == Err(Error::TooDeep),
        "MAX_DEPTH + 1 nested RichText: Error::TooDeep",
    );
    let len = nest(&mut deep, MAX_DEPTH as usize);
    let deepest = deep.get(..len).unwrap_or_default();
    let m = measure(|| layout.validate(deepest, rich));
    r.line("api: validate MAX_DEPTH nested RichText", &m);
    peak = peak.max(m.stack);
    verdict(r, m.out == Ok(len), "MAX_DEPTH nested RichText: accepted");
    let m = measure(|| {
        let mut levels = 0u32;
        let mut cur = enums::RichText::decode(deepest).ok();
        while let Some(v) = cur {
            levels += 1;
            cur = match v {
                enums::RichText::TextBold(b) => b.text.get(),
                _ => None,
            };
        }
        levels
    });
    r.line("api: decode + walk it (typed views)", &m);
    peak = peak.max(m.stack);
    verdict(r, m.out == u32::from(MAX_DEPTH), "the views walk all MAX_DEPTH levels");
    peak
}
