//! Updates that are never lost: the common sequence (pts, qts, seq, date) and every channel's pts, as a Sans-IO
//! state machine after <https://core.telegram.org/api/updates>.
//!
//! **Where the data comes from and goes.** Every `Updates` the connection delivers (a push, or the result of a call
//! such as `messages.sendMessage`) goes in through [`UpdateSync::handle_updates`] as the bytes the host received.
//! The machine checks each update's place in its sequence and hands the ones to show, in order, to the host's sink
//! as [`Delivered`] views borrowed from those bytes (no copy). It asks, through [`UpdateSync::poll_request`], for
//! `updates.getState` (first run), `updates.getDifference` and `updates.getChannelDifference`, written with the
//! generated writers ([`crate::tl::api`]) into the host's buffer and tagged with a [`Tag`]; the answers come back
//! through [`UpdateSync::handle_result`] (their updates go to the same sink), [`UpdateSync::handle_rpc_error`] or
//! [`UpdateSync::handle_failed`]. Time comes in through [`UpdateSync::handle_timeout`] at
//! [`UpdateSync::poll_timeout`]. The state to persist is [`UpdateSync::save`] (a compact byte string the client
//! store keeps as an opaque blob), read back with [`UpdateSync::restore`]. The `users` and `chats` of every
//! container and difference are the host's to read from the bytes it passed in: they are not sequenced (TDLib
//! applies them before the updates, whatever happens to the updates), so the machine does not hold them back; it
//! only learns channels' access hashes from them.
//!
//! **What it does, after TDLib's `UpdatesManager` and grammers' `message_box`.**
//! - An update with a pts (or qts) is applied when `local + pts_count == pts`; one with `pts <= local + pts_count`
//!   beyond that is a duplicate and dropped; one further on is a gap: it is held back ([`GAP_GRACE`], 0.5 s, as
//!   both do) waiting for the missing ones, and when they do not come the sequence is fetched with
//!   `updates.getDifference` (common pts, qts, seq) or `updates.getChannelDifference` (a channel). Held updates that
//!   become applicable are delivered, in pts order, as soon as the gap fills.
//! - `updates`/`updatesCombined` are checked on seq: a container already seen is dropped whole (deduplication of
//!   its updates without pts too); one past a gap is processed (its pts updates check themselves) and starts the
//!   grace timer of the common sequence, which a container filling the seq clears.
//! - `updatesTooLong`, `updateChannelTooLong`, a difference slice (fetched on at once), `differenceTooLong`
//!   (its pts taken, a [`Item::Reset`] delivered, the difference fetched on from there) and
//!   `channelDifferenceTooLong` (a [`Item::Reset`] of the channel and its latest messages) are handled as the spec
//!   says.
//! - Results that move a pts without being `Updates` (`messages.affectedMessages` of the client's own deletions
//!   and reads, `messages.affectedHistory`, `messages.affectedFoundMessages`) go in through
//!   [`UpdateSync::handle_affected`] (or [`UpdateSync::handle_affected_result`] with the bytes): applied in order like an update with nothing to show
//!   (TDLib's dummy pending update), so the client's own change is no gap, and one past a gap waits like an update.
//! - An `updateChannelTooLong` in a difference (Telegram's hint that a channel moved while the client was away)
//!   fetches that channel's difference, from the local pts of a tracked channel or the pts it names.
//! - A sequence without updates for [`NO_UPDATES_TIMEOUT`] (15 min, the spec's advice and grammers') is fetched;
//!   a channel difference's `timeout` sets that channel's next fetch.
//! - On a fresh account the first request is `updates.getState`; after [`UpdateSync::restore`] it is
//!   `updates.getDifference`, so what happened while the client was away comes first.
//!
//! **Where we chose otherwise, and why.**
//! - The qts (the spec's secondary sequence: secret-chat messages and some bot updates, each counting 1, no
//!   `qts_count`) shares the common pts's grace timer and fetch: a qts gap fetches `updates.getDifference` with
//!   both, whose `new_encrypted_messages` and qts updates in `other_updates` are covered by its `state.qts`. TDLib
//!   keeps pending qts updates apart from pts ones, with a gap timer of their own, and ends in the same
//!   `getDifference`; one timer is enough here because either gap is filled by the same call.
//! - Secret-chat messages delivered (pushed `updateNewEncryptedMessage`, or a difference's
//!   `new_encrypted_messages`) are acknowledged with `messages.receivedQueue(qts)` through
//!   [`UpdateSync::poll_request`] ([`Method::ReceivedQueue`]), as TDLib confirms them after applying them: the DC
//!   keeps them until then. One acknowledgement is in flight at a time and covers everything up to the qts then
//!   (those delivered meanwhile go in the next); a failed one is sent again after [`RETRY_INITIAL`]. It is sent
//!   after the sink took the messages: a host that must store them first does so in its sink. Not persisted: after
//!   a restore the next delivered message's acknowledgement covers those acknowledged before only by the old
//!   machine.
//! - Updates of a sequence whose difference is being fetched are held (as TDLib postpones them), not dropped (as
//!   grammers does): one generated after the server computed the difference would otherwise be lost.
//! - Held updates are copies (the host's receive buffer is reused), in a bounded arena ([`UpdateSync`]'s `HOLD`
//!   bytes, [`MAX_HELD`] updates). When it is full the update is not kept, and its sequence is marked so that the
//!   gap is fetched with a difference even if the missing updates arrive: the difference brings the dropped update
//!   back, so nothing is lost (this costs one request, never an update).
//! - Channels are tracked in a fixed table of `CH` entries (the named default [`DEFAULT_CHANNELS`]). A new channel
//!   arriving at a full table evicts the least recently active idle channel; its state (id, access hash, pts) goes
//!   to the host through [`UpdateSync::poll_evicted`] (a queue of [`MAX_EVICTED`]), so the host keeps it and can
//!   [`track_channel`](UpdateSync::track_channel) it again later, which fetches its difference from that pts. When
//!   neither a free nor an evictable entry nor room in that queue exists, the whole container is refused before
//!   anything of it is applied ([`UpdatesError::ChannelsFull`]): backpressure, the host feeds it again after
//!   draining [`UpdateSync::poll_evicted`] or when the busy channels' differences end. TDLib keeps every channel
//!   (unbounded).
//! - A channel whose access hash is not known cannot be fetched: it waits ([`UpdateSync::needs_access_hash`]) until
//!   a container's `chats` or the host ([`UpdateSync::track_channel`]) names the hash.
//!
//! **Bounds and hostile input.** Nothing allocates. Each container is validated against the schema before a field is
//! read; one with a negative pts, a negative `pts_count` or a `pts_count` past its pts is refused whole
//! ([`UpdatesError::BadPts`], nothing applied). A difference that goes backwards or a slice (or non-final channel
//! difference) that makes no progress is refused and fetched again after a backoff, so a hostile DC cannot make the
//! client loop without waiting. Work per input is linear in its size plus [`MAX_HELD`]² for the held updates.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;
use core::time::Duration;

use heapless::{Deque, Vec as HVec};

use crate::error::Fault;
use crate::time::Instant;
use crate::tl::api::{Boxed, Obj, Seq, enums, functions, types};
use crate::tl::layout::Error as LayoutError;

/// How long a gap may stay open, waiting for the missing updates, before the sequence is fetched (the spec's
/// "up to 0.5 seconds"; TDLib and grammers use 0.5 s).
pub const GAP_GRACE: Duration = Duration::from_millis(500);
/// A sequence without updates for this long is fetched (the spec's 15 minutes, grammers' `NO_UPDATES_TIMEOUT`).
pub const NO_UPDATES_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The default number of channels tracked (`CH`); about [`UpdateSync::BYTES_PER_CHANNEL`] bytes each.
pub const DEFAULT_CHANNELS: usize = 64;
/// The default bytes kept for held-back updates (`HOLD`).
pub const DEFAULT_HOLD: usize = 16 * 1024;
/// Updates held back at most, whatever their size.
pub const MAX_HELD: usize = 64;
/// Evicted channels waiting for the host ([`UpdateSync::poll_evicted`]).
pub const MAX_EVICTED: usize = 8;
/// `limit` of `updates.getChannelDifference` for a user account (the spec's maximum for users).
pub const USER_CHANNEL_DIFF_LIMIT: i32 = 100;
/// `limit` of `updates.getChannelDifference` for a bot (the spec's maximum for bots).
pub const BOT_CHANNEL_DIFF_LIMIT: i32 = 100_000;
/// First retry delay after a failed difference; doubles up to [`RETRY_MAX`].
pub const RETRY_INITIAL: Duration = Duration::from_secs(1);
/// Longest retry delay after failed differences.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

const MAGIC: [u8; 4] = *b"UPS1";
const HEADER_LEN: usize = 4 + 1 + 16 + 8 + 2;
const CHANNEL_LEN: usize = 8 + 8 + 4 + 1;

/// A sequence updates are numbered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Sequence {
    /// The account's pts: private chats and small groups.
    Common,
    /// The account's qts: secret chats and some bot updates.
    Secondary,
    /// A channel's (or supergroup's) own pts.
    Channel(i64),
}

/// A request's tag: the host keeps it beside the query's msg_id and hands it back with the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tag(pub u32);

/// The API call a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// `updates.getState`.
    GetState,
    /// `updates.getDifference`.
    GetDifference,
    /// `updates.getChannelDifference` for this channel.
    GetChannelDifference(i64),
    /// `messages.receivedQueue`: the secret-chat messages delivered up to this qts are acknowledged.
    ReceivedQueue(i32),
}

/// A request written into the host's buffer by [`UpdateSync::poll_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request {
    /// Hand it back with the answer.
    pub tag: Tag,
    /// The call inside.
    pub method: Method,
    /// Bytes written at the start of the buffer: send them as one query.
    pub len: usize,
}

/// What one delivered update is.
// Views are as large as the constructors they decode; boxing is not possible without an allocator.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Item<'a> {
    /// An `Update` of a push or of a difference's `other_updates`.
    Update(enums::Update<'a>),
    /// `updateShortMessage`, `updateShortChatMessage` or `updateShortSentMessage`: the container is the update.
    Short(enums::Updates<'a>),
    /// A new message of a difference (`new_messages`); `channel` names the channel of a channel difference.
    Message {
        /// The channel, for a channel difference or `channelDifferenceTooLong`.
        channel: Option<i64>,
        /// The message.
        message: enums::Message<'a>,
    },
    /// A new secret-chat message of a difference (`new_encrypted_messages`).
    Encrypted(enums::EncryptedMessage<'a>),
    /// The sequence was too far behind to be caught up update by update (`differenceTooLong`,
    /// `channelDifferenceTooLong`): what the host caches of it must be fetched again (the spec: drop the local
    /// history and reload it). Updates that follow continue from the new state.
    Reset(Sequence),
}

/// One update handed to the host, in order.
#[derive(Clone, Copy, Debug)]
pub struct Delivered<'a> {
    /// The update.
    pub item: Item<'a>,
    /// Its wire bytes (constructor id first; the whole container for [`Item::Short`]; empty for [`Item::Reset`]):
    /// what a host copies to keep it.
    pub wire: &'a [u8],
    /// The sequence and the pts it moved that sequence to, for an update with one.
    pub pts: Option<(Sequence, i32)>,
}

/// A channel the table gave up ([`UpdateSync::poll_evicted`]): keep it to track it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EvictedChannel {
    /// The channel id.
    pub id: i64,
    /// Its access hash, if known.
    pub access_hash: Option<i64>,
    /// The pts everything up to which was delivered.
    pub pts: i32,
}

/// Counters for tests and the host's diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Updates delivered.
    pub delivered: u64,
    /// Updates dropped as already applied.
    pub duplicates: u64,
    /// Gaps seen (an update past the next expected one, or a seq past the next).
    pub gaps: u64,
    /// Gaps that filled within the grace period.
    pub gaps_filled: u64,
    /// Difference requests sent (common and channel).
    pub differences: u64,
    /// Updates not held because the hold arena was full (each later fetched by a difference).
    pub hold_overflows: u64,
    /// Channels evicted from a full table.
    pub evictions: u64,
    /// Containers ignored before the first state was known (followed by a `getDifference`).
    pub ignored_before_state: u64,
}

/// A refusal or a protocol error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UpdatesError {
    /// The bytes are not a value of the expected type (schema validation failed).
    Malformed(LayoutError),
    /// A pts, qts or pts_count that cannot be (negative, or a count past its pts); nothing of the input applied.
    BadPts {
        /// The sequence it claimed.
        sequence: Sequence,
        /// The pts.
        pts: i32,
        /// The count.
        count: i32,
    },
    /// A difference whose state is behind what was already applied; it is fetched again after a backoff.
    Backwards {
        /// Which sequence.
        sequence: Sequence,
        /// Ours.
        local: i32,
        /// The DC's.
        remote: i32,
    },
    /// A slice or a non-final channel difference that did not advance: fetched again after a backoff.
    NoProgress(Sequence),
    /// The channel table is full and nothing can be evicted now (all busy, or [`MAX_EVICTED`] evictions not yet
    /// taken by [`UpdateSync::poll_evicted`]): nothing of the input was applied; feed it again later.
    ChannelsFull,
    /// An answer's tag names no request in flight.
    UnknownTag(Tag),
    /// The output buffer is too small for the request (`needed` bytes); nothing changed.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// [`UpdateSync::save`]'s buffer is too small (`needed` bytes).
    SaveTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// [`UpdateSync::restore`]: the bytes end early.
    RestoreTruncated,
    /// [`UpdateSync::restore`]: not a saved state of this format.
    RestoreMagic,
    /// [`UpdateSync::restore`]: more channels than this machine's table holds.
    RestoreTooManyChannels {
        /// Channels in the saved state.
        count: usize,
    },
    /// [`UpdateSync::restore`]: a value that cannot be (a negative pts, an unknown flag, a repeated channel,
    /// bytes after the end).
    RestoreInvalid,
}

impl UpdatesError {
    /// Who broke a rule.
    #[must_use]
    pub const fn fault(&self) -> Fault {
        match self {
            UpdatesError::Malformed(_)
            | UpdatesError::BadPts { .. }
            | UpdatesError::Backwards { .. }
            | UpdatesError::NoProgress(_) => Fault::Peer,
            UpdatesError::ChannelsFull => Fault::Environment,
            UpdatesError::UnknownTag(_)
            | UpdatesError::BufferTooSmall { .. }
            | UpdatesError::SaveTooSmall { .. }
            | UpdatesError::RestoreTruncated
            | UpdatesError::RestoreMagic
            | UpdatesError::RestoreTooManyChannels { .. }
            | UpdatesError::RestoreInvalid => Fault::Host,
        }
    }
}

impl From<LayoutError> for UpdatesError {
    fn from(e: LayoutError) -> Self {
        UpdatesError::Malformed(e)
    }
}

impl fmt::Display for UpdatesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdatesError::Malformed(e) => write!(f, "malformed updates: {e:?}"),
            UpdatesError::BadPts { sequence, pts, count } => {
                write!(f, "impossible pts {pts} (count {count}) in {sequence:?}")
            }
            UpdatesError::Backwards {
                sequence,
                local,
                remote,
            } => {
                write!(f, "difference behind: {sequence:?} at {local}, DC says {remote}")
            }
            UpdatesError::NoProgress(s) => write!(f, "difference of {s:?} made no progress"),
            UpdatesError::ChannelsFull => f.write_str("channel table full"),
            UpdatesError::UnknownTag(t) => write!(f, "no request with tag {}", t.0),
            UpdatesError::BufferTooSmall { needed } => write!(f, "request buffer too small ({needed} needed)"),
            UpdatesError::SaveTooSmall { needed } => write!(f, "save buffer too small ({needed} needed)"),
            UpdatesError::RestoreTruncated => f.write_str("saved update state truncated"),
            UpdatesError::RestoreMagic => f.write_str("not a saved update state"),
            UpdatesError::RestoreTooManyChannels { count } => write!(f, "saved update state has {count} channels"),
            UpdatesError::RestoreInvalid => f.write_str("saved update state invalid"),
        }
    }
}

impl core::error::Error for UpdatesError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Diff {
    /// Not fetching.
    Idle,
    /// To be fetched: [`UpdateSync::poll_request`] sends it (not before `at`).
    Wanted { at: Instant },
    /// Sent with this tag.
    InFlight(Tag),
}

/// One sequence's pts and timers.
#[derive(Clone, Copy, Debug)]
struct Entry {
    pts: i32,
    /// Fetch if nothing arrives by then.
    idle_deadline: Instant,
    /// A gap is open: fetch at this instant unless it fills.
    gap: Option<Instant>,
    /// An update of this sequence could not be held: the gap must be fetched even if it fills.
    lost: bool,
    diff: Diff,
    /// Consecutive failed fetches (for the backoff).
    failures: u8,
}

impl Entry {
    fn new(pts: i32, now: Instant) -> Self {
        Self {
            pts,
            idle_deadline: now.saturating_add(NO_UPDATES_TIMEOUT),
            gap: None,
            lost: false,
            diff: Diff::Idle,
            failures: 0,
        }
    }

    fn busy(&self) -> bool {
        self.gap.is_some() || self.diff != Diff::Idle
    }

    fn want(&mut self, at: Instant) {
        if !matches!(self.diff, Diff::InFlight(_)) {
            self.diff = Diff::Wanted { at };
        }
        self.gap = None;
    }
}

#[derive(Clone, Copy, Debug)]
struct Channel {
    id: i64,
    access_hash: Option<i64>,
    entry: Entry,
    /// Recency for eviction (a counter, not time: deterministic and monotonic).
    touched: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeldKind {
    Update,
    Short,
    /// A pts move with nothing to show ([`UpdateSync::handle_affected`]): applied in order, never delivered.
    Bump,
}

#[derive(Clone, Copy, Debug)]
struct Held {
    seq: Sequence,
    pts: i32,
    count: i32,
    kind: HeldKind,
    start: usize,
    len: usize,
}

/// Where an update's place in its sequence is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PtsInfo {
    seq: Sequence,
    pts: i32,
    count: i32,
}

/// What an `Update` means for the sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No sequence: deliver as it comes.
    Free,
    /// Sequenced.
    Pts(PtsInfo),
    /// `updateChannelTooLong`: fetch that channel.
    ChannelTooLong(i64, Option<i32>),
}

fn peer_channel(p: Obj<'_, enums::Peer>) -> Option<i64> {
    match p.get()? {
        enums::Peer::PeerChannel(c) => Some(c.channel_id),
        _ => None,
    }
}

fn message_channel(m: Obj<'_, enums::Message<'_>>) -> Option<i64> {
    match m.get()? {
        enums::Message::Message(m) => peer_channel(m.peer_id),
        enums::Message::MessageService(m) => peer_channel(m.peer_id),
        enums::Message::MessageEmpty(m) => m.peer_id.and_then(peer_channel),
    }
}

/// The sequence rules per update type (TDLib's `UpdatesManager::process_updates`, grammers' `PtsInfo`).
fn classify(u: &enums::Update<'_>) -> Kind {
    use enums::Update as U;
    let common = |pts, count| PtsInfo {
        seq: Sequence::Common,
        pts,
        count,
    };
    let qts = |qts| PtsInfo {
        seq: Sequence::Secondary,
        pts: qts,
        count: 1,
    };
    let chan = |id, pts, count| PtsInfo {
        seq: Sequence::Channel(id),
        pts,
        count,
    };
    let info = match u {
        U::UpdateNewMessage(u) => common(u.pts, u.pts_count),
        U::UpdateDeleteMessages(u) => common(u.pts, u.pts_count),
        U::UpdateReadHistoryInbox(u) => common(u.pts, u.pts_count),
        U::UpdateReadHistoryOutbox(u) => common(u.pts, u.pts_count),
        U::UpdateWebPage(u) => common(u.pts, u.pts_count),
        U::UpdateReadMessagesContents(u) => common(u.pts, u.pts_count),
        U::UpdateEditMessage(u) => common(u.pts, u.pts_count),
        U::UpdateFolderPeers(u) => common(u.pts, u.pts_count),
        U::UpdatePinnedMessages(u) => common(u.pts, u.pts_count),
        U::UpdateNewEncryptedMessage(u) => qts(u.qts),
        U::UpdateMessagePollVote(u) => qts(u.qts),
        U::UpdateChatParticipant(u) => qts(u.qts),
        U::UpdateChannelParticipant(u) => qts(u.qts),
        U::UpdateBotStopped(u) => qts(u.qts),
        U::UpdateBotChatInviteRequester(u) => qts(u.qts),
        U::UpdateBotChatBoost(u) => qts(u.qts),
        U::UpdateBotMessageReaction(u) => qts(u.qts),
        U::UpdateBotMessageReactions(u) => qts(u.qts),
        U::UpdateBotBusinessConnect(u) => qts(u.qts),
        U::UpdateBotNewBusinessMessage(u) => qts(u.qts),
        U::UpdateBotEditBusinessMessage(u) => qts(u.qts),
        U::UpdateBotDeleteBusinessMessage(u) => qts(u.qts),
        U::UpdateBotPurchasedPaidMedia(u) => qts(u.qts),
        U::UpdateManagedBot(u) => qts(u.qts),
        U::UpdateBotGuestChatQuery(u) => qts(u.qts),
        U::UpdateBotStarsSubscription(u) => qts(u.qts),
        // A channel message without a channel peer (Telegram sends `messageEmpty` so) cannot be placed: it is
        // delivered unsequenced, and the next update of its channel shows the gap (grammers does the same).
        U::UpdateNewChannelMessage(u) => match message_channel(u.message) {
            Some(id) => chan(id, u.pts, u.pts_count),
            None => return Kind::Free,
        },
        U::UpdateEditChannelMessage(u) => match message_channel(u.message) {
            Some(id) => chan(id, u.pts, u.pts_count),
            None => return Kind::Free,
        },
        U::UpdateDeleteChannelMessages(u) => chan(u.channel_id, u.pts, u.pts_count),
        U::UpdateChannelWebPage(u) => chan(u.channel_id, u.pts, u.pts_count),
        U::UpdatePinnedChannelMessages(u) => chan(u.channel_id, u.pts, u.pts_count),
        // Reading a channel's inbox carries the channel's current pts with no count of its own.
        U::UpdateReadChannelInbox(u) => chan(u.channel_id, u.pts, 0),
        U::UpdateChannelTooLong(u) => return Kind::ChannelTooLong(u.channel_id, u.pts),
        _ => return Kind::Free,
    };
    // Telegram sends qts 0 (and pts 0) where order does not matter (grammers' NO_PTS): unsequenced.
    if info.pts == 0 && (info.count == 0 || info.seq == Sequence::Secondary) {
        return Kind::Free;
    }
    Kind::Pts(info)
}

fn check_pts(info: PtsInfo) -> Result<(), UpdatesError> {
    if info.pts < 0 || info.count < 0 || info.count > info.pts {
        return Err(UpdatesError::BadPts {
            sequence: info.seq,
            pts: info.pts,
            count: info.count,
        });
    }
    Ok(())
}

/// The short containers' place in the common sequence.
fn short_info(u: &enums::Updates<'_>) -> Option<PtsInfo> {
    let (pts, count) = match u {
        enums::Updates::UpdateShortMessage(s) => (s.pts, s.pts_count),
        enums::Updates::UpdateShortChatMessage(s) => (s.pts, s.pts_count),
        enums::Updates::UpdateShortSentMessage(s) => (s.pts, s.pts_count),
        _ => return None,
    };
    Some(PtsInfo {
        seq: Sequence::Common,
        pts,
        count,
    })
}

/// Bytes of the held-back arena and its index.
struct Hold<const B: usize> {
    bytes: [u8; B],
    used: usize,
    items: HVec<Held, MAX_HELD>,
}

impl<const B: usize> Hold<B> {
    fn push(&mut self, h: PtsInfo, kind: HeldKind, wire: &[u8]) -> bool {
        let end = self.used.saturating_add(wire.len());
        let Some(dst) = self.bytes.get_mut(self.used..end) else {
            return false;
        };
        if self.items.is_full() {
            return false;
        }
        dst.copy_from_slice(wire);
        let held = Held {
            seq: h.seq,
            pts: h.pts,
            count: h.count,
            kind,
            start: self.used,
            len: wire.len(),
        };
        if self.items.push(held).is_err() {
            return false;
        }
        self.used = end;
        true
    }

    fn remove(&mut self, i: usize) {
        if i >= self.items.len() {
            return;
        }
        let h = self.items.remove(i);
        let end = h.start.saturating_add(h.len);
        self.bytes.copy_within(end..self.used, h.start);
        self.used = self.used.saturating_sub(h.len);
        for it in &mut self.items {
            if it.start > h.start {
                it.start = it.start.saturating_sub(h.len);
            }
        }
    }

    fn remove_seq(&mut self, seq: Sequence) {
        let mut i = 0;
        while let Some(h) = self.items.get(i) {
            if h.seq == seq {
                self.remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn has(&self, seq: Sequence) -> bool {
        self.items.iter().any(|h| h.seq == seq)
    }
}

/// The update state machine: the common sequence and up to `CH` channels, `HOLD` bytes of held-back updates.
pub struct UpdateSync<const CH: usize = DEFAULT_CHANNELS, const HOLD: usize = DEFAULT_HOLD> {
    /// The account state is known (from getState, a restore or a difference).
    known: bool,
    /// `updates.getState` in flight.
    get_state: Option<Tag>,
    /// A container arrived before the state was known: fetch the difference once it is.
    missed_before_state: bool,
    common: Entry,
    qts: i32,
    date: i32,
    seq: i32,
    /// Highest seq seen in a container past a gap; the gap is closed when `seq` reaches it.
    seq_seen: i32,
    /// Bit i: seq `seq + 1 + i` was processed (a container past a gap).
    seq_ahead: u64,
    channels: HVec<Channel, CH>,
    hold: Hold<HOLD>,
    evicted: Deque<EvictedChannel, MAX_EVICTED>,
    next_tag: u32,
    touch: u64,
    bot: bool,
    /// A secret-chat message was delivered since the last `messages.receivedQueue` was sent.
    ack_due: bool,
    /// `messages.receivedQueue` in flight, with the qts it acknowledges.
    ack_in_flight: Option<(Tag, i32)>,
    /// After a failed acknowledgement: not sent again before this.
    ack_retry_at: Option<Instant>,
    /// The qts the DC confirmed acknowledged.
    acked: i32,
    stats: Stats,
}

impl<const CH: usize, const HOLD: usize> fmt::Debug for UpdateSync<CH, HOLD> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateSync")
            .field("pts", &self.common.pts)
            .field("qts", &self.qts)
            .field("date", &self.date)
            .field("seq", &self.seq)
            .field("channels", &self.channels.len())
            .field("held", &self.hold.items.len())
            .finish_non_exhaustive()
    }
}

/// Where the updates of one input come from.
#[derive(Clone, Copy)]
enum Origin {
    Push,
    /// A common difference: its common and qts updates are covered by its state.
    Difference,
    /// A channel difference: its updates are covered by its pts.
    ChannelDifference,
}

impl<const CH: usize, const HOLD: usize> UpdateSync<CH, HOLD> {
    /// Bytes of state per tracked channel.
    pub const BYTES_PER_CHANNEL: usize = core::mem::size_of::<Channel>();

    /// A machine for an account whose state is not known yet: the first request is `updates.getState`. `bot`
    /// picks the channel difference limit ([`BOT_CHANNEL_DIFF_LIMIT`] or [`USER_CHANNEL_DIFF_LIMIT`]).
    #[must_use]
    pub fn new(now: Instant, bot: bool) -> Self {
        Self {
            known: false,
            get_state: None,
            missed_before_state: false,
            common: Entry::new(0, now),
            qts: 0,
            date: 0,
            seq: 0,
            seq_seen: 0,
            seq_ahead: 0,
            channels: HVec::new(),
            hold: Hold {
                bytes: [0; HOLD],
                used: 0,
                items: HVec::new(),
            },
            evicted: Deque::new(),
            next_tag: 0,
            touch: 0,
            bot,
            ack_due: false,
            ack_in_flight: None,
            ack_retry_at: None,
            acked: 0,
            stats: Stats::default(),
        }
    }

    /// Counters.
    #[must_use]
    pub const fn stats(&self) -> Stats {
        self.stats
    }

    /// The common state: (pts, qts, date, seq), once known.
    #[must_use]
    pub fn state(&self) -> Option<(i32, i32, i32, i32)> {
        self.known.then_some((self.common.pts, self.qts, self.date, self.seq))
    }

    /// A channel's pts, if tracked.
    #[must_use]
    pub fn channel_pts(&self, id: i64) -> Option<i32> {
        self.channels.iter().find(|c| c.id == id).map(|c| c.entry.pts)
    }

    /// Channels tracked now.
    #[must_use]
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Updates held back now.
    #[must_use]
    pub fn held(&self) -> usize {
        self.hold.items.len()
    }

    /// True while nothing is to be fetched and no gap is open: everything the DC sent is delivered.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.known
            && self.get_state.is_none()
            && !self.common.busy()
            && self.channels.iter().all(|c| !c.entry.busy())
            && self.hold.items.is_empty()
    }

    /// A channel to fetch whose access hash is not known: give it with [`UpdateSync::track_channel`].
    #[must_use]
    pub fn needs_access_hash(&self) -> Option<i64> {
        self.channels
            .iter()
            .find(|c| c.access_hash.is_none() && matches!(c.entry.diff, Diff::Wanted { .. }))
            .map(|c| c.id)
    }

    /// The next channel the table gave up, for the host to keep.
    pub fn poll_evicted(&mut self) -> Option<EvictedChannel> {
        self.evicted.pop_front()
    }

    fn tag(&mut self) -> Tag {
        self.next_tag = self.next_tag.wrapping_add(1);
        Tag(self.next_tag)
    }

    fn channel_index(&self, id: i64) -> Option<usize> {
        self.channels.iter().position(|c| c.id == id)
    }

    /// Starts tracking channel `id` at `pts` (from `messages.getDialogs`, or a channel this machine evicted), or sets
    /// the access hash of one already tracked (its pts is then left alone). A channel given with `pts` > 0 is
    /// fetched from there at once, so what happened since is delivered; with `pts` 0 its first update is the base. Refused with
    /// [`UpdatesError::ChannelsFull`] when the table is full and nothing can be evicted.
    pub fn track_channel(
        &mut self,
        now: Instant,
        id: i64,
        access_hash: Option<i64>,
        pts: i32,
    ) -> Result<(), UpdatesError> {
        if pts < 0 {
            return Err(UpdatesError::BadPts {
                sequence: Sequence::Channel(id),
                pts,
                count: 0,
            });
        }
        if let Some(i) = self.channel_index(id) {
            if let (Some(c), Some(h)) = (self.channels.get_mut(i), access_hash) {
                c.access_hash = Some(h);
            }
            return Ok(());
        }
        let i = self.add_channel(now, id, pts)?;
        if let Some(c) = self.channels.get_mut(i) {
            c.access_hash = access_hash;
            if pts > 0 {
                c.entry.want(now);
            }
        }
        Ok(())
    }

    /// Room for `n` new channels now (free entries plus evictable ones while the eviction queue has room).
    fn room_for(&self, n: usize) -> bool {
        let free = CH.saturating_sub(self.channels.len());
        if n <= free {
            return true;
        }
        let idle = self
            .channels
            .iter()
            .filter(|c| !c.entry.busy() && !self.hold.has(Sequence::Channel(c.id)))
            .count();
        let evictable = idle.min(MAX_EVICTED.saturating_sub(self.evicted.len()));
        n <= free.saturating_add(evictable)
    }

    fn add_channel(&mut self, now: Instant, id: i64, pts: i32) -> Result<usize, UpdatesError> {
        if self.channels.is_full() {
            if self.evicted.is_full() {
                return Err(UpdatesError::ChannelsFull);
            }
            let victim = self
                .channels
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.entry.busy() && !self.hold.has(Sequence::Channel(c.id)))
                .min_by_key(|(_, c)| c.touched)
                .map(|(i, _)| i)
                .ok_or(UpdatesError::ChannelsFull)?;
            let c = self.channels.swap_remove(victim);
            let _ = self.evicted.push_back(EvictedChannel {
                id: c.id,
                access_hash: c.access_hash,
                pts: c.entry.pts,
            });
            self.stats.evictions += 1;
        }
        self.touch += 1;
        let ch = Channel {
            id,
            access_hash: None,
            entry: Entry::new(pts, now),
            touched: self.touch,
        };
        self.channels.push(ch).map_err(|_| UpdatesError::ChannelsFull)?;
        Ok(self.channels.len().saturating_sub(1))
    }

    fn entry_mut(&mut self, seq: Sequence) -> Option<&mut Entry> {
        match seq {
            Sequence::Common | Sequence::Secondary => Some(&mut self.common),
            Sequence::Channel(id) => self.channels.iter_mut().find(|c| c.id == id).map(|c| &mut c.entry),
        }
    }

    fn local(&self, seq: Sequence) -> Option<i32> {
        match seq {
            Sequence::Common => Some(self.common.pts),
            Sequence::Secondary => Some(self.qts),
            Sequence::Channel(id) => self.channel_pts(id),
        }
    }

    fn set_local(&mut self, seq: Sequence, pts: i32) {
        match seq {
            Sequence::Common => self.common.pts = pts,
            Sequence::Secondary => self.qts = pts,
            Sequence::Channel(id) => {
                self.touch += 1;
                let t = self.touch;
                if let Some(c) = self.channels.iter_mut().find(|c| c.id == id) {
                    c.entry.pts = pts;
                    c.touched = t;
                }
            }
        }
    }

    fn fetching(&self, seq: Sequence) -> bool {
        match seq {
            Sequence::Common | Sequence::Secondary => self.common.diff != Diff::Idle,
            Sequence::Channel(id) => self.channels.iter().any(|c| c.id == id && c.entry.diff != Diff::Idle),
        }
    }

    /// Learns access hashes of tracked channels from a `chats` vector.
    fn learn_chats(&mut self, chats: Seq<'_, Obj<'_, enums::Chat<'_>>>) {
        for chat in chats.iter() {
            if let Some(enums::Chat::Channel(c)) = chat.get()
                && let (false, Some(h)) = (c.min, c.access_hash)
                && let Some(t) = self.channels.iter_mut().find(|t| t.id == c.id)
            {
                t.access_hash = Some(h);
            }
        }
    }

    /// Distinct channels `kinds` would add to the table; `BadPts` for an impossible one. Counting stops past
    /// `CH + 1` (enough to know the answer).
    fn prescan(&self, updates: impl Iterator<Item = Kind>) -> Result<usize, UpdatesError> {
        let mut new: HVec<i64, 16> = HVec::new();
        let mut more = 0usize;
        for k in updates {
            if let Kind::Pts(info) = k {
                check_pts(info)?;
                if let Sequence::Channel(id) = info.seq
                    && self.channel_index(id).is_none()
                    && !new.contains(&id)
                    && new.push(id).is_err()
                {
                    more = more.saturating_add(1);
                }
            }
        }
        Ok(new.len().saturating_add(more))
    }

    /// Hands a received `Updates` (a push, or the result of a call that returns `Updates`) to the machine; the
    /// updates to show go to `sink`, in order. On an error nothing was applied or delivered.
    pub fn handle_updates<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        body: &[u8],
        sink: &mut F,
    ) -> Result<(), UpdatesError> {
        let upd = enums::Updates::decode(body)?;
        if !self.known {
            // Whatever it holds is fetched by the difference that follows getState.
            self.missed_before_state = true;
            self.stats.ignored_before_state += 1;
            return Ok(());
        }
        // Validate every pts and make room for new channels before anything is applied.
        let (seq_start, seq, date) = match &upd {
            enums::Updates::UpdatesTooLong(_) => {
                self.common.want(now);
                return Ok(());
            }
            enums::Updates::Updates(u) => (u.seq, u.seq, u.date),
            enums::Updates::UpdatesCombined(u) => (u.seq_start, u.seq, u.date),
            _ => (0, 0, 0),
        };
        let need = match &upd {
            enums::Updates::Updates(u) => {
                self.prescan(u.updates.iter().filter_map(|o| o.get()).map(|u| classify(&u)))?
            }
            enums::Updates::UpdatesCombined(u) => {
                self.prescan(u.updates.iter().filter_map(|o| o.get()).map(|u| classify(&u)))?
            }
            enums::Updates::UpdateShort(s) => self.prescan(s.update.get().map(|u| classify(&u)).into_iter())?,
            other => {
                if let Some(info) = short_info(other) {
                    check_pts(info)?;
                }
                0
            }
        };
        if !self.room_for(need) {
            return Err(UpdatesError::ChannelsFull);
        }
        self.common.idle_deadline = now.saturating_add(NO_UPDATES_TIMEOUT);

        if !self.check_seq(now, seq_start, seq, date) {
            return Ok(());
        }

        match upd {
            enums::Updates::Updates(u) => {
                self.learn_chats(u.chats);
                for o in u.updates.iter() {
                    self.one_update(now, o, Origin::Push, sink);
                }
            }
            enums::Updates::UpdatesCombined(u) => {
                self.learn_chats(u.chats);
                for o in u.updates.iter() {
                    self.one_update(now, o, Origin::Push, sink);
                }
            }
            enums::Updates::UpdateShort(s) => self.one_update(now, s.update, Origin::Push, sink),
            other => {
                if let Some(info) = short_info(&other) {
                    let d = Delivered {
                        item: Item::Short(other),
                        wire: body,
                        pts: Some((info.seq, info.pts)),
                    };
                    self.sequenced(now, info, HeldKind::Short, body, Some(d), sink);
                }
            }
        }
        self.resolve_all(now, sink);
        Ok(())
    }

    /// The seq rule of `updates`/`updatesCombined`: false for a container seen before (dropped whole).
    fn check_seq(&mut self, now: Instant, seq_start: i32, seq: i32, date: i32) -> bool {
        if seq_start == 0 {
            return true;
        }
        let next = self.seq.saturating_add(1);
        if seq <= self.seq || seq_start > seq {
            self.stats.duplicates += 1;
            return false;
        }
        if seq_start <= next {
            self.date = self.date.max(date);
            self.advance_seq(seq);
            return true;
        }
        // Past a gap: remember which seqs it covers, so a second copy is dropped and the seq moves over it once the
        // gap fills. Its own updates are processed (the pts ones check themselves).
        let lo = seq_start.abs_diff(next);
        let hi = seq.abs_diff(next);
        if hi < 64 {
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            if self.seq_ahead & mask == mask {
                self.stats.duplicates += 1;
                return false;
            }
            self.seq_ahead |= mask;
        }
        self.seq_seen = self.seq_seen.max(seq);
        if !self.fetching(Sequence::Common) {
            self.stats.gaps += 1;
            if self.common.gap.is_none() {
                self.common.gap = Some(now.saturating_add(GAP_GRACE));
            }
        }
        true
    }

    /// Moves seq forward to `seq` (never back: containers processed since a difference was computed stay
    /// processed), then over the containers processed ahead of it.
    fn advance_seq(&mut self, seq: i32) {
        if seq > self.seq {
            let shift = seq.abs_diff(self.seq);
            self.seq = seq;
            self.seq_ahead = if shift < 64 { self.seq_ahead >> shift } else { 0 };
        }
        while self.seq_ahead & 1 == 1 {
            self.seq = self.seq.saturating_add(1);
            self.seq_ahead >>= 1;
        }
    }

    /// One `Update` of a push or a difference.
    fn one_update<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        o: Obj<'_, enums::Update<'_>>,
        origin: Origin,
        sink: &mut F,
    ) {
        let (Some(u), Some(wire)) = (o.get(), o.wire()) else {
            return;
        };
        match classify(&u) {
            Kind::Free => self.deliver(
                sink,
                Delivered {
                    item: Item::Update(u),
                    wire,
                    pts: None,
                },
            ),
            Kind::ChannelTooLong(id, pts) => {
                match self.channel_index(id) {
                    Some(i) => {
                        if let Some(c) = self.channels.get_mut(i) {
                            c.entry.want(now);
                        }
                    }
                    // An untracked channel: track it from the pts the update names, if any; otherwise the host
                    // decides (it sees the update).
                    None => {
                        if let Some(p) = pts.filter(|p| *p >= 0)
                            && let Ok(i) = self.add_channel(now, id, p)
                            && let Some(c) = self.channels.get_mut(i)
                        {
                            c.entry.want(now);
                        }
                    }
                }
                self.deliver(
                    sink,
                    Delivered {
                        item: Item::Update(u),
                        wire,
                        pts: None,
                    },
                );
            }
            Kind::Pts(info) => {
                let covered = matches!(
                    (origin, info.seq),
                    (Origin::Difference, Sequence::Common | Sequence::Secondary) | (Origin::ChannelDifference, _)
                );
                let d = Delivered {
                    item: Item::Update(u),
                    wire,
                    pts: Some((info.seq, info.pts)),
                };
                if covered {
                    self.deliver(sink, d);
                } else {
                    self.sequenced(now, info, HeldKind::Update, wire, Some(d), sink);
                }
            }
        }
    }

    fn deliver<F: FnMut(Delivered<'_>)>(&mut self, sink: &mut F, d: Delivered<'_>) {
        self.stats.delivered += 1;
        if matches!(
            d.item,
            Item::Encrypted(_) | Item::Update(enums::Update::UpdateNewEncryptedMessage(_))
        ) {
            // The host has it: the DC may forget it (`messages.receivedQueue`, sent by `poll_request`).
            self.ack_due = true;
        }
        sink(d);
    }

    /// An update with a place in a sequence: apply, drop as a duplicate, or hold. `d` is what to deliver when it
    /// applies (`None` for a [`HeldKind::Bump`]).
    fn sequenced<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        info: PtsInfo,
        kind: HeldKind,
        wire: &[u8],
        d: Option<Delivered<'_>>,
        sink: &mut F,
    ) {
        let base = info.pts.saturating_sub(info.count);
        let local = match self.local(info.seq) {
            // A channel tracked without a pts (`track_channel` with 0): its first update is the base.
            Some(0) if matches!(info.seq, Sequence::Channel(_)) && !self.fetching(info.seq) => {
                self.set_local(info.seq, base);
                base
            }
            Some(l) => l,
            None => {
                // A channel seen for the first time: its update is the base (TDLib and grammers do the same).
                let Sequence::Channel(id) = info.seq else { return };
                if self.add_channel(now, id, info.pts.saturating_sub(info.count)).is_err() {
                    // Cannot happen after the prescan made room; were it to, the update is fetched later.
                    return;
                }
                info.pts.saturating_sub(info.count)
            }
        };
        if let Some(e) = self.entry_mut(info.seq) {
            e.idle_deadline = now.saturating_add(NO_UPDATES_TIMEOUT);
        }
        let fetching = self.fetching(info.seq);
        let expected = i64::from(local) + i64::from(info.count);
        let pts = i64::from(info.pts);
        if pts < expected {
            self.stats.duplicates += 1;
            return;
        }
        if pts == expected && !fetching {
            self.set_local(info.seq, info.pts);
            if let Some(d) = d {
                self.deliver(sink, d);
            }
            return;
        }
        // A gap, or its sequence is being fetched: hold it.
        if !fetching {
            self.stats.gaps += 1;
        }
        let held = self.hold.push(info, kind, wire);
        if let Some(e) = self.entry_mut(info.seq) {
            if !held {
                e.lost = true;
            }
            if !fetching && e.gap.is_none() {
                e.gap = Some(now.saturating_add(GAP_GRACE));
            }
        }
        if !held {
            self.stats.hold_overflows += 1;
        }
    }

    /// Delivers every held update that became applicable, drops the ones now covered, and closes gaps that filled.
    fn resolve_all<F: FnMut(Delivered<'_>)>(&mut self, now: Instant, sink: &mut F) {
        // Each pass delivers or drops at least one update, so at most MAX_HELD passes.
        for _ in 0..=MAX_HELD {
            let mut progressed = false;
            let mut i = 0;
            while let Some(h) = self.hold.items.get(i).copied() {
                if self.fetching(h.seq) {
                    i += 1;
                    continue;
                }
                let Some(local) = self.local(h.seq) else {
                    self.hold.remove(i);
                    continue;
                };
                let expected = i64::from(local) + i64::from(h.count);
                if i64::from(h.pts) < expected {
                    self.stats.duplicates += 1;
                    self.hold.remove(i);
                    progressed = true;
                } else if i64::from(h.pts) == expected {
                    self.deliver_held(i, sink);
                    self.set_local(h.seq, h.pts);
                    self.hold.remove(i);
                    progressed = true;
                } else {
                    i += 1;
                }
            }
            if !progressed {
                break;
            }
        }
        // Gaps with nothing held any more are filled, unless an update of theirs could not be held.
        let hold = &self.hold;
        let mut filled = 0;
        if self.common.gap.is_some()
            && !hold.has(Sequence::Common)
            && !hold.has(Sequence::Secondary)
            && !self.common.lost
            && self.seq >= self.seq_seen
        {
            self.common.gap = None;
            filled += 1;
        }
        for c in &mut self.channels {
            if c.entry.gap.is_some() && !hold.has(Sequence::Channel(c.id)) && !c.entry.lost {
                c.entry.gap = None;
                filled += 1;
            }
        }
        self.stats.gaps_filled += filled;
        let _ = now;
    }

    fn deliver_held<F: FnMut(Delivered<'_>)>(&mut self, i: usize, sink: &mut F) {
        let Some(h) = self.hold.items.get(i).copied() else {
            return;
        };
        let Some(wire) = self.hold.bytes.get(h.start..h.start.saturating_add(h.len)) else {
            return;
        };
        let item = match h.kind {
            HeldKind::Update => enums::Update::decode(wire).ok().map(Item::Update),
            HeldKind::Short => enums::Updates::decode(wire).ok().map(Item::Short),
            HeldKind::Bump => None,
        };
        if let Some(item) = item {
            self.stats.delivered += 1;
            sink(Delivered {
                item,
                wire,
                pts: Some((h.seq, h.pts)),
            });
        }
    }

    /// The pts a call's result that is not `Updates` moved (`messages.affectedMessages` of `messages.deleteMessages`,
    /// `messages.readHistory`, `channels.deleteMessages`; `messages.affectedHistory` of `messages.deleteHistory`;
    /// `messages.affectedFoundMessages` of `messages.deletePhoneCallHistory`):
    /// the account's own action, numbered in `sequence` (the channel's for `channels.*`). It is applied as an update
    /// with nothing to show, as TDLib does (a dummy update in its pending pts queue): in order (`local + pts_count
    /// == pts`) it moves the sequence on, so the client's own deletions and reads need no difference; at or behind
    /// the local pts it is a duplicate (the DC pushed the same change first); past a gap it is held like an update
    /// and the gap is fetched after [`GAP_GRACE`] unless it fills. Held updates it makes applicable go to `sink`.
    /// Ignored before the state is known (`updates.getState` counts it) and for a channel not tracked (its next
    /// update is the base). A pts or count that cannot be is refused ([`UpdatesError::BadPts`]), nothing changed.
    pub fn handle_affected<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        sequence: Sequence,
        pts: i32,
        pts_count: i32,
        sink: &mut F,
    ) -> Result<(), UpdatesError> {
        let info = PtsInfo {
            seq: sequence,
            pts,
            count: pts_count,
        };
        check_pts(info)?;
        if !self.known || (pts == 0 && pts_count == 0) {
            return Ok(());
        }
        if let Sequence::Channel(id) = sequence
            && self.channel_index(id).is_none()
        {
            return Ok(());
        }
        self.sequenced(now, info, HeldKind::Bump, &[], None, sink);
        self.resolve_all(now, sink);
        Ok(())
    }

    /// [`UpdateSync::handle_affected`] of a result's bytes: a `messages.affectedMessages`,
    /// `messages.affectedHistory` or `messages.affectedFoundMessages` (`messages.deletePhoneCallHistory`; validated
    /// against the schema first), in the common sequence, or `channel`'s for a `channels.*` call. The `offset` of
    /// `affectedHistory` and `affectedFoundMessages` (more to delete: call again) and the latter's `messages` (the
    /// ids deleted) are the host's.
    pub fn handle_affected_result<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        channel: Option<i64>,
        body: &[u8],
        sink: &mut F,
    ) -> Result<(), UpdatesError> {
        let (pts, count) = if let Ok(enums::MessagesAffectedMessages::MessagesAffectedMessages(a)) =
            enums::MessagesAffectedMessages::decode(body)
        {
            (a.pts, a.pts_count)
        } else if let Ok(enums::MessagesAffectedHistory::MessagesAffectedHistory(a)) =
            enums::MessagesAffectedHistory::decode(body)
        {
            (a.pts, a.pts_count)
        } else {
            let enums::MessagesAffectedFoundMessages::MessagesAffectedFoundMessages(a) =
                enums::MessagesAffectedFoundMessages::decode(body)?;
            (a.pts, a.pts_count)
        };
        let sequence = channel.map_or(Sequence::Common, Sequence::Channel);
        self.handle_affected(now, sequence, pts, count, sink)
    }

    /// The next instant something is due: a gap's grace period, a no-updates timeout, a retry.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.known {
            return match self.common.diff {
                Diff::Wanted { at } if self.get_state.is_none() => Some(at),
                _ => None,
            };
        }
        let mut t: Option<Instant> = None;
        let mut at = |i: Instant| t = Some(t.map_or(i, |t| t.min(i)));
        let mut entry = |e: &Entry| {
            match e.diff {
                Diff::Idle => {
                    at(e.idle_deadline);
                    if let Some(g) = e.gap {
                        at(g);
                    }
                }
                Diff::Wanted { at: w } => at(w),
                Diff::InFlight(_) => {}
            };
        };
        entry(&self.common);
        for c in &self.channels {
            entry(&c.entry);
        }
        if let Some(r) = self
            .ack_retry_at
            .filter(|_| self.ack_due && self.ack_in_flight.is_none())
        {
            at(r);
        }
        t
    }

    /// Moves the sequences whose gap or idle time ran out to fetching.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.known {
            return;
        }
        let due = |e: &mut Entry| {
            if e.diff == Diff::Idle && (e.gap.is_some_and(|g| g <= now) || e.idle_deadline <= now) {
                e.want(now);
            }
        };
        due(&mut self.common);
        for c in &mut self.channels {
            due(&mut c.entry);
        }
    }

    /// The next request to send, written into `out` (256 bytes are always enough), or `None`.
    pub fn poll_request(&mut self, now: Instant, out: &mut [u8]) -> Result<Option<Request>, UpdatesError> {
        if !self.known {
            // Before the state is known, the common entry's fetch timer is getState's retry timer.
            if self.get_state.is_some() || matches!(self.common.diff, Diff::Wanted { at } if at > now) {
                return Ok(None);
            }
            let len = write(&functions::UpdatesGetState {}, out)?;
            let tag = self.tag();
            self.get_state = Some(tag);
            return Ok(Some(Request {
                tag,
                method: Method::GetState,
                len,
            }));
        }
        if matches!(self.common.diff, Diff::Wanted { at } if at <= now) {
            let call = functions::UpdatesGetDifference {
                pts: self.common.pts,
                pts_limit: None,
                pts_total_limit: None,
                date: self.date,
                qts: self.qts,
                qts_limit: None,
            };
            let len = write(&call, out)?;
            let tag = self.tag();
            self.common.diff = Diff::InFlight(tag);
            self.common.gap = None;
            // This difference brings back whatever could not be held until now.
            self.common.lost = false;
            self.stats.differences += 1;
            return Ok(Some(Request {
                tag,
                method: Method::GetDifference,
                len,
            }));
        }
        let limit = if self.bot {
            BOT_CHANNEL_DIFF_LIMIT
        } else {
            USER_CHANNEL_DIFF_LIMIT
        };
        let pick = self
            .channels
            .iter()
            .position(|c| c.access_hash.is_some() && matches!(c.entry.diff, Diff::Wanted { at } if at <= now));
        let Some(i) = pick else { return self.poll_ack(now, out) };
        let Some(c) = self.channels.get(i).copied() else {
            return Ok(None);
        };
        let input = types::InputChannel {
            channel_id: c.id,
            access_hash: c.access_hash.unwrap_or(0),
        };
        let filter = types::ChannelMessagesFilterEmpty {};
        let call = functions::UpdatesGetChannelDifference {
            force: false,
            channel: Obj::new(&input),
            filter: Obj::new(&filter),
            pts: c.entry.pts.max(1),
            limit,
        };
        let len = write(&call, out)?;
        let tag = self.tag();
        if let Some(c) = self.channels.get_mut(i) {
            c.entry.diff = Diff::InFlight(tag);
            c.entry.gap = None;
            c.entry.lost = false;
        }
        self.stats.differences += 1;
        Ok(Some(Request {
            tag,
            method: Method::GetChannelDifference(c.id),
            len,
        }))
    }

    /// `messages.receivedQueue(qts)` once secret-chat messages were delivered (as TDLib confirms them after
    /// applying them): the DC keeps each until it is acknowledged. One in flight at a time; those delivered
    /// meanwhile go in the next.
    fn poll_ack(&mut self, now: Instant, out: &mut [u8]) -> Result<Option<Request>, UpdatesError> {
        if !self.ack_due
            || self.ack_in_flight.is_some()
            || self.ack_retry_at.is_some_and(|t| t > now)
            || self.qts <= self.acked
        {
            return Ok(None);
        }
        let qts = self.qts;
        let len = write(&functions::MessagesReceivedQueue { max_qts: qts }, out)?;
        let tag = self.tag();
        self.ack_due = false;
        self.ack_in_flight = Some((tag, qts));
        Ok(Some(Request {
            tag,
            method: Method::ReceivedQueue(qts),
            len,
        }))
    }

    /// The answer to `messages.receivedQueue`: a `Vector<long>` (the random ids the DC forgot).
    fn on_ack(&mut self, body: &[u8], qts: i32) -> Result<(), UpdatesError> {
        let count = body
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .and_then(|n| usize::try_from(n).ok());
        let well_formed = body.get(..4) == Some(&crate::tl::VECTOR.to_le_bytes()[..])
            && count.and_then(|n| n.checked_mul(8)).and_then(|n| n.checked_add(8)) == Some(body.len());
        if !well_formed {
            return Err(UpdatesError::Malformed(LayoutError::Truncated));
        }
        self.acked = self.acked.max(qts);
        self.ack_retry_at = None;
        Ok(())
    }

    fn which(&self, tag: Tag) -> Option<Method> {
        if self.get_state == Some(tag) {
            return Some(Method::GetState);
        }
        if let Some((t, qts)) = self.ack_in_flight
            && t == tag
        {
            return Some(Method::ReceivedQueue(qts));
        }
        if self.common.diff == Diff::InFlight(tag) {
            return Some(Method::GetDifference);
        }
        self.channels
            .iter()
            .find(|c| c.entry.diff == Diff::InFlight(tag))
            .map(|c| Method::GetChannelDifference(c.id))
    }

    /// The `rpc_result` of a request this machine asked for; updates it brings go to `sink`, in order. On an error
    /// the request is fetched again after a backoff (a malformed or hostile answer), or nothing changed (an unknown
    /// tag).
    pub fn handle_result<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        tag: Tag,
        body: &[u8],
        sink: &mut F,
    ) -> Result<(), UpdatesError> {
        let method = self.which(tag).ok_or(UpdatesError::UnknownTag(tag))?;
        let r = match method {
            Method::GetState => self.on_state(now, body),
            Method::GetDifference => self.on_difference(now, body, sink),
            Method::GetChannelDifference(id) => self.on_channel_difference(now, id, body, sink),
            Method::ReceivedQueue(qts) => {
                self.ack_in_flight = None;
                self.on_ack(body, qts)
            }
        };
        if r.is_err() {
            self.retry_later(now, method);
        }
        r
    }

    /// The `rpc_error` of a request this machine asked for. A channel the account cannot read any more (400
    /// `CHANNEL_PRIVATE`, `CHANNEL_INVALID`...; 403; 406) is dropped from the table, as grammers does, and a 400 to
    /// `messages.receivedQueue` is not sent again until the next secret-chat message; anything
    /// else is retried after a backoff (1 s doubling to [`RETRY_MAX`], or the flood wait it names).
    pub fn handle_rpc_error(&mut self, now: Instant, tag: Tag, code: i32, message: &[u8]) -> Result<(), UpdatesError> {
        let method = self.which(tag).ok_or(UpdatesError::UnknownTag(tag))?;
        if let Method::GetChannelDifference(id) = method
            && matches!(code, 400 | 403 | 406)
            && message.starts_with(b"CHANNEL")
        {
            if let Some(i) = self.channel_index(id) {
                self.channels.swap_remove(i);
            }
            self.hold.remove_seq(Sequence::Channel(id));
            return Ok(());
        }
        if let Method::ReceivedQueue(_) = method
            && code == 400
        {
            // The DC will not take it (`MAX_QTS_INVALID`): asking again would not change that. The next delivered
            // secret-chat message is acknowledged with the qts then.
            self.ack_in_flight = None;
            self.ack_due = false;
            return Ok(());
        }
        let wait = super::rpc_error::RpcError::classify(code, message)
            .ok()
            .and_then(|e| match e.kind {
                super::rpc_error::ErrorKind::Wait { seconds, .. } => {
                    Some(Duration::from_secs(u64::from(seconds.max(1))))
                }
                _ => None,
            });
        self.retry_later(now, method);
        if let Some(w) = wait {
            let at = now.saturating_add(w.min(super::flood::MAX_WAIT));
            self.set_wanted(method, at);
        }
        Ok(())
    }

    /// A request that ended without an answer (the connection was lost): it is sent again at once.
    pub fn handle_failed(&mut self, now: Instant, tag: Tag) -> Result<(), UpdatesError> {
        let method = self.which(tag).ok_or(UpdatesError::UnknownTag(tag))?;
        self.set_wanted(method, now);
        Ok(())
    }

    fn set_wanted(&mut self, method: Method, at: Instant) {
        match method {
            Method::GetState => {
                self.get_state = None;
                self.common.diff = Diff::Wanted { at };
            }
            Method::GetDifference => self.common.diff = Diff::Wanted { at },
            Method::GetChannelDifference(id) => {
                if let Some(c) = self.channels.iter_mut().find(|c| c.id == id) {
                    c.entry.diff = Diff::Wanted { at };
                }
            }
            Method::ReceivedQueue(_) => {
                self.ack_in_flight = None;
                self.ack_due = true;
                self.ack_retry_at = Some(at);
            }
        }
    }

    fn retry_later(&mut self, now: Instant, method: Method) {
        let backoff = |f: u8| {
            let d = RETRY_INITIAL.saturating_mul(1u32 << f.min(6));
            d.min(RETRY_MAX)
        };
        match method {
            Method::GetState | Method::GetDifference => {
                if method == Method::GetState {
                    self.get_state = None;
                }
                let d = backoff(self.common.failures);
                self.common.failures = self.common.failures.saturating_add(1);
                self.common.diff = Diff::Wanted {
                    at: now.saturating_add(d),
                };
            }
            Method::GetChannelDifference(id) => {
                if let Some(c) = self.channels.iter_mut().find(|c| c.id == id) {
                    let d = backoff(c.entry.failures);
                    c.entry.failures = c.entry.failures.saturating_add(1);
                    c.entry.diff = Diff::Wanted {
                        at: now.saturating_add(d),
                    };
                }
            }
            // Sent again after [`RETRY_INITIAL`] (with whatever was delivered meanwhile).
            Method::ReceivedQueue(_) => self.set_wanted(method, now.saturating_add(RETRY_INITIAL)),
        }
    }

    fn on_state(&mut self, now: Instant, body: &[u8]) -> Result<(), UpdatesError> {
        let enums::UpdatesState::UpdatesState(s) = enums::UpdatesState::decode(body)?;
        for (seq, v) in [(Sequence::Common, s.pts), (Sequence::Secondary, s.qts)] {
            check_pts(PtsInfo { seq, pts: v, count: 0 })?;
        }
        self.get_state = None;
        self.known = true;
        self.common = Entry::new(s.pts, now);
        self.qts = s.qts;
        self.date = s.date;
        self.seq = s.seq;
        self.seq_seen = s.seq;
        self.seq_ahead = 0;
        if self.missed_before_state {
            self.missed_before_state = false;
            self.common.want(now);
        }
        Ok(())
    }

    fn end_common_diff(&mut self, now: Instant) {
        self.common.diff = Diff::Idle;
        self.common.failures = 0;
        self.common.gap = None;
        self.common.idle_deadline = now.saturating_add(NO_UPDATES_TIMEOUT);
        let lost = core::mem::take(&mut self.common.lost);
        if lost {
            // An update could not be held while fetching: fetch once more so it comes back.
            self.common.want(now);
        } else if self.hold.has(Sequence::Common) || self.hold.has(Sequence::Secondary) || self.seq < self.seq_seen {
            self.common.gap = Some(now.saturating_add(GAP_GRACE));
        }
    }

    fn on_difference<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        body: &[u8],
        sink: &mut F,
    ) -> Result<(), UpdatesError> {
        let diff = enums::UpdatesDifference::decode(body)?;
        match diff {
            enums::UpdatesDifference::UpdatesDifferenceEmpty(d) => {
                self.date = self.date.max(d.date);
                self.advance_seq(d.seq);
                self.end_common_diff(now);
            }
            enums::UpdatesDifference::UpdatesDifferenceTooLong(d) => {
                check_pts(PtsInfo {
                    seq: Sequence::Common,
                    pts: d.pts,
                    count: 0,
                })?;
                if d.pts < self.common.pts {
                    return Err(UpdatesError::Backwards {
                        sequence: Sequence::Common,
                        local: self.common.pts,
                        remote: d.pts,
                    });
                }
                self.common.pts = d.pts;
                self.hold.remove_seq(Sequence::Common);
                self.deliver(
                    sink,
                    Delivered {
                        item: Item::Reset(Sequence::Common),
                        wire: &[],
                        pts: None,
                    },
                );
                // Fetch on from the new pts (TDLib continues getDifference after differenceTooLong).
                self.common.diff = Diff::Wanted { at: now };
                self.common.failures = 0;
            }
            enums::UpdatesDifference::UpdatesDifference(d) => {
                self.apply_difference(
                    now,
                    d.new_messages,
                    d.new_encrypted_messages,
                    d.other_updates,
                    d.chats,
                    d.state,
                    true,
                    sink,
                )?;
            }
            enums::UpdatesDifference::UpdatesDifferenceSlice(d) => {
                self.apply_difference(
                    now,
                    d.new_messages,
                    d.new_encrypted_messages,
                    d.other_updates,
                    d.chats,
                    d.intermediate_state,
                    false,
                    sink,
                )?;
            }
        }
        self.resolve_all(now, sink);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_difference<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        messages: Seq<'_, Obj<'_, enums::Message<'_>>>,
        encrypted: Seq<'_, Obj<'_, enums::EncryptedMessage<'_>>>,
        others: Seq<'_, Obj<'_, enums::Update<'_>>>,
        chats: Seq<'_, Obj<'_, enums::Chat<'_>>>,
        state: Obj<'_, enums::UpdatesState>,
        last: bool,
        sink: &mut F,
    ) -> Result<(), UpdatesError> {
        let Some(enums::UpdatesState::UpdatesState(s)) = state.get() else {
            return Err(UpdatesError::Malformed(LayoutError::Truncated));
        };
        check_pts(PtsInfo {
            seq: Sequence::Common,
            pts: s.pts,
            count: 0,
        })?;
        check_pts(PtsInfo {
            seq: Sequence::Secondary,
            pts: s.qts,
            count: 0,
        })?;
        if s.pts < self.common.pts {
            return Err(UpdatesError::Backwards {
                sequence: Sequence::Common,
                local: self.common.pts,
                remote: s.pts,
            });
        }
        if s.qts < self.qts {
            return Err(UpdatesError::Backwards {
                sequence: Sequence::Secondary,
                local: self.qts,
                remote: s.qts,
            });
        }
        if !last && s.pts == self.common.pts && s.qts == self.qts && s.date <= self.date {
            return Err(UpdatesError::NoProgress(Sequence::Common));
        }
        let need = self.prescan(others.iter().filter_map(|o| o.get()).map(|u| classify(&u)))?;
        if !self.room_for(need) {
            return Err(UpdatesError::ChannelsFull);
        }
        self.learn_chats(chats);
        for m in messages.iter() {
            if let (Some(message), Some(wire)) = (m.get(), m.wire()) {
                self.deliver(
                    sink,
                    Delivered {
                        item: Item::Message { channel: None, message },
                        wire,
                        pts: None,
                    },
                );
            }
        }
        for m in encrypted.iter() {
            if let (Some(e), Some(wire)) = (m.get(), m.wire()) {
                self.deliver(
                    sink,
                    Delivered {
                        item: Item::Encrypted(e),
                        wire,
                        pts: None,
                    },
                );
            }
        }
        // Channel updates among them go through their channel's sequence.
        for o in others.iter() {
            self.one_update(now, o, Origin::Difference, sink);
        }
        self.common.pts = s.pts;
        self.qts = s.qts;
        self.date = self.date.max(s.date);
        self.advance_seq(s.seq);
        if last {
            self.end_common_diff(now);
        } else {
            self.common.diff = Diff::Wanted { at: now };
        }
        Ok(())
    }

    fn end_channel_diff(&mut self, now: Instant, id: i64, timeout: Option<i32>) {
        let held = self.hold.has(Sequence::Channel(id));
        if let Some(c) = self.channels.iter_mut().find(|c| c.id == id) {
            c.entry.diff = Diff::Idle;
            c.entry.failures = 0;
            c.entry.gap = None;
            let t = timeout.map_or(NO_UPDATES_TIMEOUT, |t| {
                Duration::from_secs(u64::from(t.max(1).unsigned_abs()))
            });
            c.entry.idle_deadline = now.saturating_add(t.min(NO_UPDATES_TIMEOUT));
            if core::mem::take(&mut c.entry.lost) {
                c.entry.want(now);
            } else if held {
                c.entry.gap = Some(now.saturating_add(GAP_GRACE));
            }
        }
    }

    fn on_channel_difference<F: FnMut(Delivered<'_>)>(
        &mut self,
        now: Instant,
        id: i64,
        body: &[u8],
        sink: &mut F,
    ) -> Result<(), UpdatesError> {
        let seq = Sequence::Channel(id);
        let local = self.channel_pts(id).unwrap_or(0);
        let diff = enums::UpdatesChannelDifference::decode(body)?;
        match diff {
            enums::UpdatesChannelDifference::UpdatesChannelDifferenceEmpty(d) => {
                check_pts(PtsInfo {
                    seq,
                    pts: d.pts,
                    count: 0,
                })?;
                if d.pts < local {
                    return Err(UpdatesError::Backwards {
                        sequence: seq,
                        local,
                        remote: d.pts,
                    });
                }
                self.set_local(seq, d.pts);
                self.end_channel_diff(now, id, d.timeout);
            }
            enums::UpdatesChannelDifference::UpdatesChannelDifferenceTooLong(d) => {
                let pts = match d.dialog.get() {
                    Some(enums::Dialog::Dialog(dl)) => dl.pts,
                    _ => None,
                };
                let pts = pts.ok_or(UpdatesError::BadPts {
                    sequence: seq,
                    pts: -1,
                    count: 0,
                })?;
                check_pts(PtsInfo { seq, pts, count: 0 })?;
                self.learn_chats(d.chats);
                self.hold.remove_seq(seq);
                self.deliver(
                    sink,
                    Delivered {
                        item: Item::Reset(seq),
                        wire: &[],
                        pts: None,
                    },
                );
                for m in d.messages.iter() {
                    if let (Some(message), Some(wire)) = (m.get(), m.wire()) {
                        self.deliver(
                            sink,
                            Delivered {
                                item: Item::Message {
                                    channel: Some(id),
                                    message,
                                },
                                wire,
                                pts: None,
                            },
                        );
                    }
                }
                self.set_local(seq, pts);
                self.end_channel_diff(now, id, d.timeout);
            }
            enums::UpdatesChannelDifference::UpdatesChannelDifference(d) => {
                check_pts(PtsInfo {
                    seq,
                    pts: d.pts,
                    count: 0,
                })?;
                if d.pts < local {
                    return Err(UpdatesError::Backwards {
                        sequence: seq,
                        local,
                        remote: d.pts,
                    });
                }
                if !d.final_ && d.pts == local {
                    return Err(UpdatesError::NoProgress(seq));
                }
                self.learn_chats(d.chats);
                for m in d.new_messages.iter() {
                    if let (Some(message), Some(wire)) = (m.get(), m.wire()) {
                        self.deliver(
                            sink,
                            Delivered {
                                item: Item::Message {
                                    channel: Some(id),
                                    message,
                                },
                                wire,
                                pts: None,
                            },
                        );
                    }
                }
                for o in d.other_updates.iter() {
                    self.one_update(now, o, Origin::ChannelDifference, sink);
                }
                self.set_local(seq, d.pts);
                if d.final_ {
                    self.end_channel_diff(now, id, d.timeout);
                } else if let Some(c) = self.channels.iter_mut().find(|c| c.id == id) {
                    c.entry.diff = Diff::Wanted { at: now };
                }
            }
        }
        self.resolve_all(now, sink);
        Ok(())
    }

    /// Bytes [`UpdateSync::save`] writes now.
    #[must_use]
    pub fn saved_len(&self) -> usize {
        HEADER_LEN + self.channels.len() * CHANNEL_LEN
    }

    /// Bytes [`UpdateSync::save`] may need at most (a full table).
    pub const MAX_SAVED_LEN: usize = HEADER_LEN + CH * CHANNEL_LEN;

    /// Writes the state to persist (pts, qts, date, seq and every tracked channel's id, access hash and pts) into
    /// `out`; returns the length. What is held back or being fetched is not saved: it is fetched again after
    /// [`UpdateSync::restore`], which starts with a `getDifference`, so saving at any moment loses nothing. Save
    /// after every call that delivered updates the host has handled, so a restart does not deliver them again.
    pub fn save(&self, out: &mut [u8]) -> Result<usize, UpdatesError> {
        let needed = self.saved_len();
        let out = out.get_mut(..needed).ok_or(UpdatesError::SaveTooSmall { needed })?;
        let mut w = Cur { buf: out, pos: 0 };
        w.put(&MAGIC);
        w.put(&[u8::from(self.known)]);
        for v in [self.common.pts, self.qts, self.date, self.seq] {
            w.put(&v.to_le_bytes());
        }
        w.put(&self.seq_ahead.to_le_bytes());
        w.put(&u16::try_from(self.channels.len()).unwrap_or(u16::MAX).to_le_bytes());
        for c in &self.channels {
            w.put(&c.id.to_le_bytes());
            w.put(&c.access_hash.unwrap_or(0).to_le_bytes());
            w.put(&c.entry.pts.to_le_bytes());
            // Bit 1: the channel had a gap, held updates or a fetch under way: fetch it after a restore.
            let pending = c.entry.busy() || self.hold.has(Sequence::Channel(c.id));
            w.put(&[u8::from(c.access_hash.is_some()) | (u8::from(pending) << 1)]);
        }
        Ok(w.pos)
    }

    /// A machine from a saved state (see [`UpdateSync::save`]). Its first request is `updates.getDifference` (or
    /// `updates.getState` if the saved state was never known), so what happened while the client was away is
    /// delivered before anything new.
    pub fn restore(now: Instant, bot: bool, bytes: &[u8]) -> Result<Self, UpdatesError> {
        let mut r = Rd { buf: bytes, pos: 0 };
        if r.take::<4>()? != MAGIC {
            return Err(UpdatesError::RestoreMagic);
        }
        let known = match r.take::<1>()? {
            [0] => false,
            [1] => true,
            _ => return Err(UpdatesError::RestoreInvalid),
        };
        let pts = i32::from_le_bytes(r.take()?);
        let qts = i32::from_le_bytes(r.take()?);
        let date = i32::from_le_bytes(r.take()?);
        let seq = i32::from_le_bytes(r.take()?);
        let seq_ahead = u64::from_le_bytes(r.take()?);
        let n = usize::from(u16::from_le_bytes(r.take()?));
        if n > CH {
            return Err(UpdatesError::RestoreTooManyChannels { count: n });
        }
        if pts < 0 || qts < 0 {
            return Err(UpdatesError::RestoreInvalid);
        }
        let mut m = Self::new(now, bot);
        for _ in 0..n {
            let id = i64::from_le_bytes(r.take()?);
            let hash = i64::from_le_bytes(r.take()?);
            let cpts = i32::from_le_bytes(r.take()?);
            let [flags] = r.take::<1>()?;
            if flags > 3 {
                return Err(UpdatesError::RestoreInvalid);
            }
            let has = flags & 1 == 1;
            if cpts < 0 || m.channel_index(id).is_some() {
                return Err(UpdatesError::RestoreInvalid);
            }
            m.touch += 1;
            let mut entry = Entry::new(cpts, now);
            if flags & 2 == 2 {
                entry.want(now);
            }
            let ch = Channel {
                id,
                access_hash: has.then_some(hash),
                entry,
                touched: m.touch,
            };
            m.channels
                .push(ch)
                .map_err(|_| UpdatesError::RestoreTooManyChannels { count: n })?;
        }
        if r.pos != bytes.len() {
            return Err(UpdatesError::RestoreInvalid);
        }
        if known {
            m.known = true;
            m.common = Entry::new(pts, now);
            m.common.want(now);
            m.qts = qts;
            m.date = date;
            m.seq = seq;
            m.seq_seen = seq;
            m.seq_ahead = seq_ahead;
        }
        Ok(m)
    }
}

fn write<T: crate::tl::TlWrite>(call: &T, out: &mut [u8]) -> Result<usize, UpdatesError> {
    let needed = call.tl_len();
    if out.len() < needed {
        return Err(UpdatesError::BufferTooSmall { needed });
    }
    crate::tl::encode(call, out).map_err(|_| UpdatesError::BufferTooSmall { needed })
}

struct Cur<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Cur<'_> {
    fn put(&mut self, b: &[u8]) {
        let end = self.pos.saturating_add(b.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(b);
        }
        self.pos = end;
    }
}

struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Rd<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], UpdatesError> {
        let end = self.pos.saturating_add(N);
        let s = self.buf.get(self.pos..end).ok_or(UpdatesError::RestoreTruncated)?;
        self.pos = end;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}
