//! The layer-144 secret-chat TL objects this crate speaks: `decryptedMessageLayer`, `decryptedMessage`,
//! `decryptedMessageService` and the actions the state machine needs, decoded zero-copy with [`crate::tl::Reader`]
//! and encoded with [`crate::tl::Writer`].
//!
//! Media is kept as borrowed opaque bytes: the media schema is large and evolves, and this layer never needs to
//! look inside it. Because TL has no length prefixes for objects, an opaque media object also swallows the optional
//! fields that follow it (entities, via_bot_name, reply_to_random_id, grouped_id); with `decryptedMessageMediaEmpty`
//! (or no media) those fields are decoded.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::tl::{DecodeError, Full, LongVec, Reader, TlVec, VECTOR, Writer, bytes_len};

/// `decryptedMessageLayer#1be31789`.
pub const ID_LAYER: u32 = 0x1be3_1789;
/// `decryptedMessage#91cc4674` (layer 73+).
pub const ID_MESSAGE: u32 = 0x91cc_4674;
/// `decryptedMessageService#73164160` (layer 17+).
pub const ID_SERVICE: u32 = 0x7316_4160;
/// `decryptedMessageMediaEmpty#89f5c4a`.
pub const ID_MEDIA_EMPTY: u32 = 0x089f_5c4a;
/// `decryptedMessageActionSetMessageTTL#a1733aec`.
pub const ID_SET_TTL: u32 = 0xa173_3aec;
/// `decryptedMessageActionReadMessages#c4f40be`.
pub const ID_READ: u32 = 0x0c4f_40be;
/// `decryptedMessageActionDeleteMessages#65614304`.
pub const ID_DELETE: u32 = 0x6561_4304;
/// `decryptedMessageActionScreenshotMessages#8ac1f475`.
pub const ID_SCREENSHOT: u32 = 0x8ac1_f475;
/// `decryptedMessageActionFlushHistory#6719e45c`.
pub const ID_FLUSH: u32 = 0x6719_e45c;
/// `decryptedMessageActionResend#511110b0`.
pub const ID_RESEND: u32 = 0x5111_10b0;
/// `decryptedMessageActionNotifyLayer#f3048883`.
pub const ID_NOTIFY_LAYER: u32 = 0xf304_8883;
/// `decryptedMessageActionTyping#ccb27641`.
pub const ID_TYPING: u32 = 0xccb2_7641;
/// `decryptedMessageActionRequestKey#f3c9611b`.
pub const ID_REQUEST_KEY: u32 = 0xf3c9_611b;
/// `decryptedMessageActionAcceptKey#6fe1735b`.
pub const ID_ACCEPT_KEY: u32 = 0x6fe1_735b;
/// `decryptedMessageActionAbortKey#dd05ec6b`.
pub const ID_ABORT_KEY: u32 = 0xdd05_ec6b;
/// `decryptedMessageActionCommitKey#ec2e0b9b`.
pub const ID_COMMIT_KEY: u32 = 0xec2e_0b9b;
/// `decryptedMessageActionNoop#a82fdd63`.
pub const ID_NOOP: u32 = 0xa82f_dd63;

/// Most message ids one read/delete/screenshot action may carry.
pub const MAX_RANDOM_IDS: usize = 1024;
/// Most entities one message may carry.
pub const MAX_ENTITIES: usize = 1024;
/// Longest DH value accepted in a re-key action (item 56).
pub const MAX_DH_VALUE: usize = 256;

/// `decryptedMessageLayer`: the envelope of every secret-chat message since layer 17.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MessageLayer<'a> {
    /// Sender's random bytes (at least 15 when we send).
    pub random_bytes: &'a [u8],
    /// The sender's layer.
    pub layer: i32,
    /// Wire `in_seq_no` (2·raw + x).
    pub in_seq_no: i32,
    /// Wire `out_seq_no` (2·raw + x).
    pub out_seq_no: i32,
    /// The message itself.
    pub message: DecryptedMessage<'a>,
}

/// `DecryptedMessage`: an ordinary message or a service message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecryptedMessage<'a> {
    /// `decryptedMessage#91cc4674`.
    Message(PlainMessage<'a>),
    /// `decryptedMessageService#73164160`.
    Service {
        /// The message's random id.
        random_id: i64,
        /// What it does.
        action: Action<'a>,
    },
}

/// Media of a [`PlainMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Media<'a> {
    /// `decryptedMessageMediaEmpty`.
    Empty,
    /// Any other media object, undecoded, together with every field after it (see the module docs).
    Opaque(&'a [u8]),
}

/// `decryptedMessage#91cc4674` (layer 73+ form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PlainMessage<'a> {
    /// The raw flags word (bit 1 no_webpage, 5 silent, 9 media, 7 entities, 11 via_bot_name, 3 reply_to,
    /// 17 grouped_id); kept as sent so a message re-encodes bit for bit.
    pub flags: u32,
    /// The message's random id.
    pub random_id: i64,
    /// Self-destruct timer in seconds.
    pub ttl: i32,
    /// Text (TL `string`: UTF-8 is not guaranteed, so bytes).
    pub message: &'a [u8],
    /// Media (flag 9).
    pub media: Option<Media<'a>>,
    /// The boxed `Vector<MessageEntity>` as it is on the wire (flag 7), each entity checked for shape.
    pub entities: Option<&'a [u8]>,
    /// Inline bot name (flag 11).
    pub via_bot_name: Option<&'a [u8]>,
    /// Reply target (flag 3).
    pub reply_to_random_id: Option<i64>,
    /// Album id (flag 17).
    pub grouped_id: Option<i64>,
}

impl<'a> PlainMessage<'a> {
    /// A plain text message with no media or other optional fields.
    pub fn text(random_id: i64, ttl: i32, message: &'a [u8]) -> Self {
        PlainMessage {
            flags: 0,
            random_id,
            ttl,
            message,
            media: None,
            entities: None,
            via_bot_name: None,
            reply_to_random_id: None,
            grouped_id: None,
        }
    }
}

/// The `DecryptedMessageAction`s this crate handles; others are kept opaque.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action<'a> {
    /// `decryptedMessageActionSetMessageTTL`.
    SetMessageTtl(i32),
    /// `decryptedMessageActionReadMessages`.
    ReadMessages(LongVec<'a>),
    /// `decryptedMessageActionDeleteMessages`.
    DeleteMessages(LongVec<'a>),
    /// `decryptedMessageActionScreenshotMessages`.
    ScreenshotMessages(LongVec<'a>),
    /// `decryptedMessageActionFlushHistory`.
    FlushHistory,
    /// `decryptedMessageActionResend` (wire seq_nos).
    Resend {
        /// First wire out_seq_no to resend.
        start_seq_no: i32,
        /// Last wire out_seq_no to resend (inclusive).
        end_seq_no: i32,
    },
    /// `decryptedMessageActionNotifyLayer`.
    NotifyLayer(i32),
    /// `decryptedMessageActionTyping` with the constructor id of its `SendMessageAction` (all field-less).
    Typing(u32),
    /// `decryptedMessageActionRequestKey`.
    RequestKey {
        /// Exchange id.
        exchange_id: i64,
        /// g_a, big-endian.
        g_a: &'a [u8],
    },
    /// `decryptedMessageActionAcceptKey`.
    AcceptKey {
        /// Exchange id.
        exchange_id: i64,
        /// g_b, big-endian.
        g_b: &'a [u8],
        /// Fingerprint of the new key.
        key_fingerprint: i64,
    },
    /// `decryptedMessageActionAbortKey`.
    AbortKey(i64),
    /// `decryptedMessageActionCommitKey`.
    CommitKey {
        /// Exchange id.
        exchange_id: i64,
        /// Fingerprint of the new key.
        key_fingerprint: i64,
    },
    /// `decryptedMessageActionNoop`.
    Noop,
    /// Another action: its constructor id and the undecoded rest of the message.
    Other {
        /// Constructor id.
        constructor: u32,
        /// Its fields, undecoded.
        body: &'a [u8],
    },
}

fn read_ids<'a>(r: &mut Reader<'a>) -> Result<LongVec<'a>, DecodeError> {
    TlVec::read_boxed_limited(r, MAX_RANDOM_IDS)
}

fn read_dh<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let v = r.bytes()?;
    if v.len() > MAX_DH_VALUE {
        return Err(DecodeError::BadLength);
    }
    Ok(v)
}

impl<'a> Action<'a> {
    /// Decodes a boxed action; it must be the last thing in `r` (an unknown one takes the rest).
    pub fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let id = r.u32()?;
        Ok(match id {
            ID_SET_TTL => Action::SetMessageTtl(r.i32()?),
            ID_READ => Action::ReadMessages(read_ids(r)?),
            ID_DELETE => Action::DeleteMessages(read_ids(r)?),
            ID_SCREENSHOT => Action::ScreenshotMessages(read_ids(r)?),
            ID_FLUSH => Action::FlushHistory,
            ID_RESEND => Action::Resend {
                start_seq_no: r.i32()?,
                end_seq_no: r.i32()?,
            },
            ID_NOTIFY_LAYER => Action::NotifyLayer(r.i32()?),
            ID_TYPING => Action::Typing(r.u32()?),
            ID_REQUEST_KEY => Action::RequestKey {
                exchange_id: r.i64()?,
                g_a: read_dh(r)?,
            },
            ID_ACCEPT_KEY => Action::AcceptKey {
                exchange_id: r.i64()?,
                g_b: read_dh(r)?,
                key_fingerprint: r.i64()?,
            },
            ID_ABORT_KEY => Action::AbortKey(r.i64()?),
            ID_COMMIT_KEY => Action::CommitKey {
                exchange_id: r.i64()?,
                key_fingerprint: r.i64()?,
            },
            ID_NOOP => Action::Noop,
            other => Action::Other {
                constructor: other,
                body: r.take_rest(),
            },
        })
    }

    /// Exact encoded size.
    pub fn tl_len(&self) -> usize {
        4 + match self {
            Action::SetMessageTtl(_) | Action::NotifyLayer(_) | Action::Typing(_) => 4,
            Action::ReadMessages(v) | Action::DeleteMessages(v) | Action::ScreenshotMessages(v) => 4 + v.bare_len(),
            Action::FlushHistory | Action::Noop => 0,
            Action::Resend { .. } => 8,
            Action::RequestKey { g_a, .. } => 8 + bytes_len(g_a.len()),
            Action::AcceptKey { g_b, .. } => 16 + bytes_len(g_b.len()),
            Action::AbortKey(_) => 8,
            Action::CommitKey { .. } => 16,
            Action::Other { body, .. } => body.len(),
        }
    }

    /// Encodes the boxed action.
    pub fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        match *self {
            Action::SetMessageTtl(t) => {
                w.u32(ID_SET_TTL)?;
                w.i32(t)
            }
            Action::ReadMessages(v) => write_ids(w, ID_READ, &v),
            Action::DeleteMessages(v) => write_ids(w, ID_DELETE, &v),
            Action::ScreenshotMessages(v) => write_ids(w, ID_SCREENSHOT, &v),
            Action::FlushHistory => w.u32(ID_FLUSH),
            Action::Resend {
                start_seq_no,
                end_seq_no,
            } => {
                w.u32(ID_RESEND)?;
                w.i32(start_seq_no)?;
                w.i32(end_seq_no)
            }
            Action::NotifyLayer(l) => {
                w.u32(ID_NOTIFY_LAYER)?;
                w.i32(l)
            }
            Action::Typing(a) => {
                w.u32(ID_TYPING)?;
                w.u32(a)
            }
            Action::RequestKey { exchange_id, g_a } => {
                w.u32(ID_REQUEST_KEY)?;
                w.i64(exchange_id)?;
                w.bytes(g_a)
            }
            Action::AcceptKey {
                exchange_id,
                g_b,
                key_fingerprint,
            } => {
                w.u32(ID_ACCEPT_KEY)?;
                w.i64(exchange_id)?;
                w.bytes(g_b)?;
                w.i64(key_fingerprint)
            }
            Action::AbortKey(e) => {
                w.u32(ID_ABORT_KEY)?;
                w.i64(e)
            }
            Action::CommitKey {
                exchange_id,
                key_fingerprint,
            } => {
                w.u32(ID_COMMIT_KEY)?;
                w.i64(exchange_id)?;
                w.i64(key_fingerprint)
            }
            Action::Noop => w.u32(ID_NOOP),
            Action::Other { constructor, body } => {
                w.u32(constructor)?;
                w.raw(body)
            }
        }
    }

    /// True for the actions the state machine itself produces and consumes (re-key, resend, layer, noop); a host
    /// may not send these through [`super::SecretChat::encrypt`].
    pub fn is_protocol(&self) -> bool {
        matches!(
            self,
            Action::Resend { .. }
                | Action::NotifyLayer(_)
                | Action::RequestKey { .. }
                | Action::AcceptKey { .. }
                | Action::AbortKey(_)
                | Action::CommitKey { .. }
                | Action::Noop
        )
    }
}

fn write_ids(w: &mut Writer<'_>, id: u32, v: &LongVec<'_>) -> Result<(), Full> {
    w.u32(id)?;
    w.u32(VECTOR)?;
    v.write_bare(w)
}

const FLAG_REPLY: u32 = 1 << 3;
const FLAG_ENTITIES: u32 = 1 << 7;
const FLAG_MEDIA: u32 = 1 << 9;
const FLAG_VIA_BOT: u32 = 1 << 11;
const FLAG_GROUPED: u32 = 1 << 17;

/// Checks the shape of a boxed `Vector<MessageEntity>` and returns its bytes.
fn read_entities<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let start = r.rest();
    let before = r.remaining();
    r.expect_constructor(VECTOR)?;
    let n = r.count(12)?;
    if n > MAX_ENTITIES {
        return Err(DecodeError::CountTooLarge);
    }
    for _ in 0..n {
        let id = r.u32()?;
        r.i32()?;
        r.i32()?;
        match id {
            // pre (language), textUrl (url)
            0x7392_4be0 | 0x76a6_d327 => {
                r.bytes()?;
            }
            // customEmoji (document_id)
            0xc8cf_05f8 => {
                r.i64()?;
            }
            0xbb92_ba95 | 0xfa04_579d | 0x6f63_5b0d | 0x6cef_8ac7 | 0x6ed0_2538 | 0x64e4_75c2 | 0xbd61_0bc9
            | 0x826f_8b60 | 0x28a2_0571 | 0x9c4e_7e8b | 0xbf06_93d4 | 0x020d_f5d0 | 0x32ca_960f => {}
            other => return Err(DecodeError::UnknownConstructor(other)),
        }
    }
    let used = before - r.remaining();
    start.get(..used).ok_or(DecodeError::Eof)
}

impl<'a> PlainMessage<'a> {
    fn read_body(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flags = r.u32()?;
        let random_id = r.i64()?;
        let ttl = r.i32()?;
        let message = r.bytes()?;
        let mut m = PlainMessage::text(random_id, ttl, message);
        m.flags = flags;
        if flags & FLAG_MEDIA != 0 {
            if r.peek_constructor()? == ID_MEDIA_EMPTY {
                r.u32()?;
                m.media = Some(Media::Empty);
            } else {
                m.media = Some(Media::Opaque(r.take_rest()));
                return Ok(m);
            }
        }
        if flags & FLAG_ENTITIES != 0 {
            m.entities = Some(read_entities(r)?);
        }
        if flags & FLAG_VIA_BOT != 0 {
            m.via_bot_name = Some(r.bytes()?);
        }
        if flags & FLAG_REPLY != 0 {
            m.reply_to_random_id = Some(r.i64()?);
        }
        if flags & FLAG_GROUPED != 0 {
            m.grouped_id = Some(r.i64()?);
        }
        Ok(m)
    }

    /// The flags word with the presence bits derived from the fields (other bits as given).
    fn effective_flags(&self) -> u32 {
        let mut f = self.flags & !(FLAG_MEDIA | FLAG_ENTITIES | FLAG_VIA_BOT | FLAG_REPLY | FLAG_GROUPED);
        let opaque = matches!(self.media, Some(Media::Opaque(_)));
        if self.media.is_some() {
            f |= FLAG_MEDIA;
        }
        if opaque {
            // The opaque tail carries the later fields: keep their bits exactly as received.
            f |= self.flags & (FLAG_ENTITIES | FLAG_VIA_BOT | FLAG_REPLY | FLAG_GROUPED);
            return f;
        }
        if self.entities.is_some() {
            f |= FLAG_ENTITIES;
        }
        if self.via_bot_name.is_some() {
            f |= FLAG_VIA_BOT;
        }
        if self.reply_to_random_id.is_some() {
            f |= FLAG_REPLY;
        }
        if self.grouped_id.is_some() {
            f |= FLAG_GROUPED;
        }
        f
    }

    fn tl_len(&self) -> usize {
        let mut n = 4 + 4 + 8 + 4 + bytes_len(self.message.len());
        match self.media {
            Some(Media::Opaque(b)) => return n + b.len(),
            Some(Media::Empty) => n += 4,
            None => {}
        }
        n += self.entities.map_or(0, <[u8]>::len);
        n += self.via_bot_name.map_or(0, |v| bytes_len(v.len()));
        n += self.reply_to_random_id.map_or(0, |_| 8);
        n += self.grouped_id.map_or(0, |_| 8);
        n
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.u32(ID_MESSAGE)?;
        w.u32(self.effective_flags())?;
        w.i64(self.random_id)?;
        w.i32(self.ttl)?;
        w.bytes(self.message)?;
        match self.media {
            Some(Media::Opaque(b)) => return w.raw(b),
            Some(Media::Empty) => w.u32(ID_MEDIA_EMPTY)?,
            None => {}
        }
        if let Some(e) = self.entities {
            w.raw(e)?;
        }
        if let Some(v) = self.via_bot_name {
            w.bytes(v)?;
        }
        if let Some(v) = self.reply_to_random_id {
            w.i64(v)?;
        }
        if let Some(v) = self.grouped_id {
            w.i64(v)?;
        }
        Ok(())
    }
}

impl<'a> DecryptedMessage<'a> {
    /// Decodes a boxed `DecryptedMessage` that runs to the end of `r`.
    pub fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        match r.u32()? {
            ID_MESSAGE => Ok(DecryptedMessage::Message(PlainMessage::read_body(r)?)),
            ID_SERVICE => {
                let random_id = r.i64()?;
                Ok(DecryptedMessage::Service {
                    random_id,
                    action: Action::read(r)?,
                })
            }
            other => Err(DecodeError::UnknownConstructor(other)),
        }
    }

    /// Exact encoded size.
    pub fn tl_len(&self) -> usize {
        match self {
            DecryptedMessage::Message(m) => m.tl_len(),
            DecryptedMessage::Service { action, .. } => 4 + 8 + action.tl_len(),
        }
    }

    /// Encodes the boxed message.
    pub fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        match self {
            DecryptedMessage::Message(m) => m.write(w),
            DecryptedMessage::Service { random_id, action } => {
                w.u32(ID_SERVICE)?;
                w.i64(*random_id)?;
                action.write(w)
            }
        }
    }

    /// The message's random id.
    pub fn random_id(&self) -> i64 {
        match self {
            DecryptedMessage::Message(m) => m.random_id,
            DecryptedMessage::Service { random_id, .. } => *random_id,
        }
    }

    /// The action, for a service message.
    pub fn action(&self) -> Option<&Action<'a>> {
        match self {
            DecryptedMessage::Service { action, .. } => Some(action),
            DecryptedMessage::Message(_) => None,
        }
    }
}

impl<'a> MessageLayer<'a> {
    /// Decodes a boxed `decryptedMessageLayer` spanning all of `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        r.expect_constructor(ID_LAYER)?;
        let random_bytes = r.bytes()?;
        let layer = r.i32()?;
        let in_seq_no = r.i32()?;
        let out_seq_no = r.i32()?;
        let message = DecryptedMessage::read(&mut r)?;
        r.finish()?;
        Ok(MessageLayer {
            random_bytes,
            layer,
            in_seq_no,
            out_seq_no,
            message,
        })
    }

    /// Exact encoded size.
    pub fn tl_len(&self) -> usize {
        4 + bytes_len(self.random_bytes.len()) + 12 + self.message.tl_len()
    }

    /// Encodes into the start of `out`; returns the length. On [`Full`] nothing useful was written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, Full> {
        if out.len() < self.tl_len() {
            return Err(Full {
                required: self.tl_len(),
            });
        }
        let mut w = Writer::new(out);
        w.u32(ID_LAYER)?;
        w.bytes(self.random_bytes)?;
        w.i32(self.layer)?;
        w.i32(self.in_seq_no)?;
        w.i32(self.out_seq_no)?;
        self.message.write(&mut w)?;
        Ok(w.written())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn enc(l: &MessageLayer<'_>) -> Vec<u8> {
        let mut v = vec![0u8; l.tl_len()];
        assert_eq!(l.encode(&mut v).unwrap(), v.len());
        v
    }

    fn entities() -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&VECTOR.to_le_bytes());
        e.extend_from_slice(&3u32.to_le_bytes());
        // bold(0, 4)
        e.extend_from_slice(&0xbd61_0bc9u32.to_le_bytes());
        e.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
        // textUrl(1, 2, "ab")
        e.extend_from_slice(&0x76a6_d327u32.to_le_bytes());
        e.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0, 2, b'a', b'b', 0]);
        // customEmoji(0, 1, 99)
        e.extend_from_slice(&0xc8cf_05f8u32.to_le_bytes());
        e.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0]);
        e
    }

    #[test]
    fn full_message_round_trips_bit_for_bit() {
        let ents = entities();
        let m = PlainMessage {
            flags: (1 << 1) | (1 << 5) | FLAG_MEDIA | FLAG_ENTITIES | FLAG_VIA_BOT | FLAG_REPLY | FLAG_GROUPED,
            random_id: -5,
            ttl: 10,
            message: b"hello",
            media: Some(Media::Empty),
            entities: Some(&ents),
            via_bot_name: Some(b"bot"),
            reply_to_random_id: Some(7),
            grouped_id: Some(8),
        };
        let l = MessageLayer {
            random_bytes: &[1; 16],
            layer: 144,
            in_seq_no: 1,
            out_seq_no: 2,
            message: DecryptedMessage::Message(m),
        };
        let bytes = enc(&l);
        let back = MessageLayer::decode(&bytes).unwrap();
        assert_eq!(back, l);
        assert_eq!(enc(&back), bytes);
        // Presence bits follow the fields, whatever the caller put in `flags`.
        let DecryptedMessage::Message(mut pm) = back.message else {
            panic!()
        };
        pm.flags = 0;
        pm.grouped_id = None;
        let again = MessageLayer {
            message: DecryptedMessage::Message(pm),
            ..l
        };
        let again_bytes = enc(&again);
        let DecryptedMessage::Message(d) = MessageLayer::decode(&again_bytes).unwrap().message else {
            panic!()
        };
        assert_eq!(d.flags, FLAG_MEDIA | FLAG_ENTITIES | FLAG_VIA_BOT | FLAG_REPLY);
        assert_eq!(d.grouped_id, None);
    }

    #[test]
    fn opaque_media_keeps_the_tail() {
        let mut body = Vec::new();
        body.extend_from_slice(&ID_MESSAGE.to_le_bytes());
        body.extend_from_slice(&((1u32 << 9) | (1 << 3)).to_le_bytes());
        body.extend_from_slice(&1i64.to_le_bytes());
        body.extend_from_slice(&0i32.to_le_bytes());
        body.extend_from_slice(&[1, b'x', 0, 0]);
        let tail = [0x8a, 0x8c, 0x79, 0x32, 1, 2, 3, 4, 5, 6, 7, 8];
        body.extend_from_slice(&tail);
        let mut r = Reader::new(&body);
        let m = DecryptedMessage::read(&mut r).unwrap();
        let DecryptedMessage::Message(pm) = m else { panic!() };
        assert_eq!(pm.media, Some(Media::Opaque(&tail)));
        assert_eq!(pm.reply_to_random_id, None);
        let mut out = vec![0u8; m.tl_len()];
        m.write(&mut Writer::new(&mut out)).unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn bad_entities_and_limits_rejected() {
        let mut ents = entities();
        ents[8..12].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        let mut r = Reader::new(&ents);
        assert_eq!(read_entities(&mut r), Err(DecodeError::UnknownConstructor(0x1234_5678)));
        let mut huge = Vec::new();
        huge.extend_from_slice(&VECTOR.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_entities(&mut Reader::new(&huge)), Err(DecodeError::CountTooLarge));
        // A 257-byte g_a in RequestKey.
        let mut a = Vec::new();
        a.extend_from_slice(&ID_REQUEST_KEY.to_le_bytes());
        a.extend_from_slice(&1i64.to_le_bytes());
        a.extend_from_slice(&[254, 1, 1, 0]);
        a.extend_from_slice(&[7u8; 260]);
        assert_eq!(Action::read(&mut Reader::new(&a)), Err(DecodeError::BadLength));
        // An unknown action is kept with its body.
        let o = [1u8, 2, 3, 4, 9, 9];
        assert_eq!(
            Action::read(&mut Reader::new(&o)).unwrap(),
            Action::Other {
                constructor: 0x0403_0201,
                body: &[9, 9]
            }
        );
        // Every protocol action is reserved.
        assert!(Action::Noop.is_protocol() && !Action::FlushHistory.is_protocol());
    }
}
