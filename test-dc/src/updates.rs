//! The update stream of the test DC: messages between users and in one channel, numbered as Telegram numbers them
//! (<https://core.telegram.org/api/updates>), and the difference endpoints answering from the stored history.
//!
//! Data comes from [`crate::dc`]'s dispatch: a call (method id first, wrappers removed), the caller's user (its
//! signed-in account, or its auth key as a user: `auth::World::identity`) and the DC's Unix time. [`execute`]
//! answers it and returns the updates to push ([`StreamPush`]); the DC hands those to every live connection of their
//! user on every DC of the cluster (the caller's own ones to its other connections: another device of the same
//! account sees what this one did, as on Telegram), and drops them for a user with no live connection (as Telegram
//! does: the client catches up with `updates.getDifference`). The store is the cluster's (one per
//! `dc::start_cluster`).
//!
//! **The common sequence.** Each user has a mailbox with its pts (1 for a new one, as on Telegram), its seq and its
//! history of events. `messages.sendMessage` to `inputPeerUser` (or `inputPeerSelf`, Saved Messages, stored once)
//! stores the message in the sender's and the recipient's mailbox, each with its own message id (private message
//! ids are per user, as on Telegram; each copy knows its twin), and moves each pts by 1. The sender is answered
//! `updateShortSentMessage` (pts, pts_count 1) and its other connections are pushed `updateShortMessage` (`out`);
//! the recipient is pushed `updateShortMessage` once it has been sent the sender's `user`, and before that
//! `updates` (`updateNewMessage` with the sender in `users`), which moves its seq by 1: as Telegram does when the
//! client may not know the sender. `messages.editMessage` (the author only) edits both copies, each pts + 1
//! (`updates` with `updateEditMessage`); `messages.deleteMessages` deletes the caller's messages of those ids (pts
//! plus their count), and with `revoke` their twins in the other party's mailbox (answered `messages.affectedMessages`,
//! `updateDeleteMessages` pushed); `messages.readHistory` moves the reader's inbox mark (pts + 1,
//! `updateReadHistoryInbox`) and the sender's outbox mark up to its copies (pts + 1, `updateReadHistoryOutbox`),
//! answered `messages.affectedMessages` (pts_count 0 when nothing new was read); `messages.deletePhoneCallHistory`
//! (no calls are made here) answers `messages.affectedFoundMessages` with the pts and a count of 0.
//!
//! **The qts sequence.** Each mailbox also has its qts (0 for a new one), the secondary sequence of
//! <https://core.telegram.org/api/updates>: secret-chat messages and some bot updates, each qts + 1, with no
//! `qts_count` (a client applies one when `local + 1 == qts`). A secret-chat message the relay (`crate::api`) passes
//! to a user ([`api::QtsLog`](crate::api::QtsLog), implemented here) is kept for the recipient and pushed as
//! `updateNewEncryptedMessage` with its qts; `contacts.block`/`contacts.unblock` of a bot pushes the bot
//! `updateBotStopped` with its qts (when that changes whether the user blocked it). qts events are kept apart from the
//! pts history, whatever its length, until `messages.receivedQueue(max_qts)` acknowledges them (as Telegram keeps a
//! secret-chat message until then; answered with the forgotten messages' `random_id`s, `400 MAX_QTS_INVALID` past
//! the user's qts), at most [`MAX_QTS_KEPT`] per user (the oldest unacknowledged dropped past it: a client behind it
//! sees the difference's `state.qts` pass it).
//!
//! **Differences.** `updates.getState` answers the mailbox's pts, qts and seq, `date` the DC's time.
//! `updates.getDifference` from (`pts`, `qts`) answers `differenceEmpty` when nothing is newer, `difference` with every
//! newer event of both sequences in the order they happened (new messages in `new_messages` as they were sent;
//! secret-chat messages in `new_encrypted_messages`; edits, deletions, reads and `updateBotStopped` in
//! `other_updates` with their pts or qts) and the final state, `differenceSlice` with the first
//! [`UpdateStore::set_limits`] `slice` events and the state after the last one (the client asks again from there),
//! and `differenceTooLong` (the current pts) when the client is more than `too_long` behind, or behind the history
//! kept (the same `too_long` events per mailbox; `pts_limit` and `pts_total_limit` lower that threshold, as the
//! spec says; `differenceTooLong` names only a pts, so a client continues from there with its qts, and the qts
//! events come in the next difference). `qts_limit` ends a slice before the qts event past it (our reading: Telegram
//! does not document it). A pts or qts ahead of the mailbox is `400 PERSISTENT_TIMESTAMP_INVALID`.
//! When a channel update found none of the user's connections live, the last part of its next difference (a `difference` even when the common pts
//! did not move) carries `updateChannelTooLong` with the channel pts it missed from, as Telegram tells a client
//! that was away to fetch a channel; the hint stays until the user calls `updates.getChannelDifference`.
//!
//! **The channel.** One megagroup, [`CHANNEL_ID`] with [`CHANNEL_ACCESS_HASH`], exists from the start, and every
//! user with a mailbox is a member. Chosen over `channels.createChannel`: creating channels needs membership calls
//! (invite, join) and channel objects in every answer of the dialogs API, none of which the update stream needs;
//! one fixed channel exercises the per-channel pts, the pushes and `updates.getChannelDifference`, which is what the
//! clients' update handling is about. Its pts starts at 1 (its creation, as on Telegram) and moves by 1 per message
//! sent to `inputPeerChannel`; the sender is answered `updates` with the `updateNewChannelMessage` and every other
//! member (and the sender's other connections) is pushed the same (`seq` 0: channel updates are outside the common
//! seq). `messages.editMessage` of a channel message (its author) moves it by 1 (`updateEditChannelMessage`),
//! `channels.deleteMessages` of the caller's own messages by their count (`updateDeleteChannelMessages`, answered
//! `messages.affectedMessages`); `channels.readHistory` moves only the member's read mark (`boolTrue`,
//! `updateReadChannelInbox` with the channel's pts to its other connections). `updates.getChannelDifference`
//! answers `channelDifferenceEmpty`, `channelDifference` (at most `limit` events, edits and deletions in
//! `other_updates`, `final` when they reach the channel's pts) and `channelDifferenceTooLong` (the dialog and the
//! latest `limit` messages as they are now) when the client is more than `too_long` behind. A channel difference
//! carries `timeout` [`CHANNEL_TIMEOUT`].
//!
//! **Checks and bounds.** Each call is validated against the schema before its view is read
//! (`INPUT_REQUEST_INVALID`); an empty or longer-than-[`MAX_TEXT`] message, an unknown user or channel, a reused
//! `random_id` (the last [`RANDOM_IDS`] per user), an edit of someone else's message, more than [`MAX_IDS`] ids
//! to delete get the errors Telegram gives. Mailboxes: [`MAX_MAILBOXES`]
//! (`500 USERS_TOO_MUCH` past it); history per mailbox and channel: `too_long` pts events (oldest forgotten first,
//! which a client behind them sees as `differenceTooLong`); qts events: [`MAX_QTS_KEPT`] unacknowledged per user;
//! one difference: `slice` events (a channel's: `limit`, at most [`MAX_CHANNEL_LIMIT`]).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use mtproto_sansio::tl::api::{Bare, Boxed, Obj, OfType, Seq, enums, functions, types};
use mtproto_sansio::tl::layout::Root;
use mtproto_sansio::tl::tables::api::API;
use mtproto_sansio::tl::typed::Cursor;
use mtproto_sansio::tl::{self, TlWrite, Writer, encode};

use crate::api::{Push, Reply};
use crate::auth::World;

/// The test DC's channel (a megagroup every user is in).
pub const CHANNEL_ID: i64 = 1_777_000_001;
/// Its access hash (checked on `inputPeerChannel` and `inputChannel`).
pub const CHANNEL_ACCESS_HASH: i64 = 0x7e57_dc0c_4a77_0001;
/// Its title.
pub const CHANNEL_TITLE: &str = "test_dc updates";
/// The `timeout` of a channel difference (seconds before the client should ask again when idle).
pub const CHANNEL_TIMEOUT: i32 = 30;
/// Longest message text (Telegram's 4096).
pub const MAX_TEXT: usize = 4096;
/// Mailboxes kept (users that sent, received or asked for updates).
pub const MAX_MAILBOXES: usize = 65_536;
/// Largest `limit` of `updates.getChannelDifference` served (the spec's maximum, for bots).
pub const MAX_CHANNEL_LIMIT: i32 = 100_000;
/// Most message ids in one `messages.deleteMessages` / `channels.deleteMessages` (Telegram's 100).
pub const MAX_IDS: usize = 100;
/// `random_id`s remembered per user, for `RANDOM_ID_DUPLICATE`.
pub const RANDOM_IDS: usize = 64;
/// The qts events (secret-chat messages, bot updates) kept per user until `messages.receivedQueue`
/// acknowledges them; past it the oldest is dropped (see the module docs for what a client sees).
pub const MAX_QTS_KEPT: usize = 1000;
/// Default messages per `differenceSlice`.
pub const DEFAULT_SLICE: usize = 100;
/// Default: a client this far behind gets `differenceTooLong` / `channelDifferenceTooLong`; also the history kept
/// per mailbox and for the channel.
pub const DEFAULT_TOO_LONG: i32 = 1000;

/// Where a stored message is, seen by its mailbox's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A private chat with this user (the other party; the owner for Saved Messages).
    User(i64),
    /// The channel.
    Channel(i64),
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    /// Its id (per mailbox for private chats, per channel for the channel).
    pub id: i32,
    /// Its sender.
    pub from: i64,
    /// Its chat.
    pub peer: Peer,
    /// When it was sent.
    pub date: i32,
    /// Its text.
    pub text: Vec<u8>,
    /// When it was last edited.
    pub edit_date: Option<i32>,
    /// The same message in the other party's mailbox (a private chat between two users): that user and its id
    /// there. Edits and revoking deletions reach it; reading it reaches its sender's outbox.
    pub twin: Option<(i64, i32)>,
}

/// What one event did to its sequence.
#[derive(Clone, Debug)]
enum Change {
    /// A new message.
    New(Msg),
    /// A message edited (as it is after the edit).
    Edit(Msg),
    /// Messages deleted, by id (pts_count: how many).
    Delete(Vec<i32>),
    /// The owner read its private chat with `peer` up to `max_id`.
    ReadInbox { peer: i64, max_id: i32, still_unread: i32 },
    /// `peer` read the owner's messages to it up to `max_id` (the owner's ids).
    ReadOutbox { peer: i64, max_id: i32 },
    /// A secret-chat message for the owner (its `EncryptedMessage`, encoded): the qts sequence.
    Encrypted(Vec<u8>),
    /// `user` blocked (`stopped`) or unblocked the owner, a bot (`updateBotStopped`): the qts sequence.
    BotStopped { user: i64, stopped: bool },
}

impl Change {
    /// Whether it moves the qts (the secondary sequence) rather than the pts.
    fn is_qts(&self) -> bool {
        matches!(self, Change::Encrypted(_) | Change::BotStopped { .. })
    }
}

/// An event and the sequence numbers its mailbox was at after it (a pts event moves `pts` by `count`, a qts event
/// moves `qts` by 1).
#[derive(Clone, Debug)]
struct Event {
    /// Its place among the mailbox's events of both sequences (the order a difference lists them in).
    ord: u64,
    pts: i32,
    count: i32,
    qts: i32,
    seq: i32,
    date: i32,
    change: Change,
}

impl Event {
    /// Whether a client at (`pts`, `qts`) has not seen it.
    fn after(&self, pts: i32, qts: i32) -> bool {
        if self.change.is_qts() {
            self.qts > qts
        } else {
            self.pts > pts
        }
    }
}

/// One sequence with its history: a user's common pts (and seq) or the channel's pts.
#[derive(Clone, Debug, Default)]
struct Mailbox {
    pts: i32,
    seq: i32,
    /// The secondary sequence: secret-chat messages and bot updates (0 for a new mailbox: nothing yet).
    qts: i32,
    last_id: i32,
    /// The pts sequence's events in the order they happened, at most the history kept.
    events: VecDeque<Event>,
    /// The qts sequence's events not yet acknowledged (`messages.receivedQueue`), oldest first, at most
    /// [`UpdateStore::set_qts_kept`]'s bound: kept whatever the length of the pts history, as Telegram keeps a
    /// secret-chat message until the client confirms it.
    qts_events: VecDeque<Event>,
    /// The next event's `ord`.
    next_ord: u64,
    /// The pts after the newest pts event forgotten (the history covers a client from there on).
    forgot_pts: i32,
    /// The qts of the newest qts event dropped unacknowledged past the bound (0: none).
    forgot_qts: i32,
    /// The qts acknowledged by `messages.receivedQueue` (events up to it are gone).
    acked_qts: i32,
    /// The messages not deleted, by id; at most the history kept (the oldest forgotten first).
    messages: BTreeMap<i32, Msg>,
    /// Per private chat (the other user): the highest incoming message id read.
    read_inbox: HashMap<i64, i32>,
    /// Per private chat: the highest outgoing message id the other user read.
    read_outbox: HashMap<i64, i32>,
    /// Users whose `user` object this user was pushed (later messages from them go as `updateShortMessage`).
    known: HashSet<i64>,
    random_ids: VecDeque<i64>,
    /// The channel's pts before its first update that found no live connection of this user: the next
    /// difference carries `updateChannelTooLong` from there (cleared when the user fetches the channel).
    channel_from: Option<i32>,
    /// For a bot: the users that blocked it (`updateBotStopped` goes out when this changes).
    stopped_by: HashSet<i64>,
}

impl Mailbox {
    /// Adds an event moving pts by `count`, keeps at most `keep` events and messages; the new pts.
    fn add(&mut self, change: Change, count: i32, date: i32, keep: usize) -> i32 {
        self.pts += count;
        match &change {
            Change::New(m) | Change::Edit(m) => {
                self.messages.insert(m.id, m.clone());
            }
            Change::Delete(ids) => {
                for id in ids {
                    self.messages.remove(id);
                }
            }
            Change::ReadInbox { .. } | Change::ReadOutbox { .. } | Change::Encrypted(_) | Change::BotStopped { .. } => {
            }
        }
        while self.messages.len() > keep.max(1) {
            self.messages.pop_first();
        }
        self.push_event(count, date, change, keep);
        self.pts
    }

    /// Adds an event of the qts sequence (qts + 1), kept until it is acknowledged or more than `kept` wait (the
    /// oldest dropped then); the new qts.
    fn add_qts(&mut self, change: Change, date: i32, kept: usize) -> i32 {
        self.qts += 1;
        self.push_event(0, date, change, kept);
        self.qts
    }

    /// Keeps an event: a pts one in the history (at most `keep`), a qts one in the unacknowledged queue (at most
    /// `keep`, the caller's qts bound).
    fn push_event(&mut self, count: i32, date: i32, change: Change, keep: usize) {
        let qts_event = change.is_qts();
        let e = Event {
            ord: self.next_ord,
            pts: self.pts,
            count,
            qts: self.qts,
            seq: self.seq,
            date,
            change,
        };
        self.next_ord += 1;
        if qts_event {
            self.qts_events.push_back(e);
            while self.qts_events.len() > keep.max(1) {
                if let Some(e) = self.qts_events.pop_front() {
                    self.forgot_qts = e.qts;
                }
            }
        } else {
            self.events.push_back(e);
            while self.events.len() > keep.max(1) {
                if let Some(e) = self.events.pop_front() {
                    self.forgot_pts = e.pts;
                }
            }
        }
    }

    /// `messages.receivedQueue(max_qts)`: forgets the qts events up to `max_qts`; the `random_id`s of the
    /// secret-chat messages among them.
    fn acknowledge(&mut self, max_qts: i32) -> Vec<i64> {
        let mut ids = Vec::new();
        while let Some(e) = self.qts_events.front().filter(|e| e.qts <= max_qts) {
            if let Change::Encrypted(b) = &e.change {
                match enums::EncryptedMessage::decode(b) {
                    Ok(enums::EncryptedMessage::EncryptedMessage(m)) => ids.push(m.random_id),
                    Ok(enums::EncryptedMessage::EncryptedMessageService(m)) => ids.push(m.random_id),
                    Err(_) => {}
                }
            }
            self.qts_events.pop_front();
        }
        self.acked_qts = self.acked_qts.max(max_qts);
        ids
    }

    /// The events a client at (`pts`, `qts`) has not seen, of both sequences, in the order they happened.
    fn unseen(&self, pts: i32, qts: i32) -> Vec<&Event> {
        let mut v: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| e.after(pts, qts))
            .chain(self.qts_events.iter().filter(|e| e.after(pts, qts)))
            .collect();
        v.sort_by_key(|e| e.ord);
        v
    }

    /// Whether the history still holds every pts event after `pts`.
    fn covers(&self, pts: i32) -> bool {
        pts >= self.forgot_pts
    }

    /// A new sequence at pts 1, as Telegram's accounts and channels start.
    fn new_at_one() -> Self {
        Mailbox {
            pts: 1,
            forgot_pts: 1,
            ..Mailbox::default()
        }
    }
}

/// The cluster's update state: every user's mailbox and the channel.
#[derive(Debug)]
pub struct UpdateStore {
    users: HashMap<i64, Mailbox>,
    channel: Mailbox,
    /// Per member: the highest channel message id read.
    channel_read: HashMap<i64, i32>,
    slice: usize,
    too_long: i32,
    qts_kept: usize,
}

impl Default for UpdateStore {
    fn default() -> Self {
        UpdateStore {
            users: HashMap::new(),
            channel: Mailbox::new_at_one(),
            channel_read: HashMap::new(),
            slice: DEFAULT_SLICE,
            too_long: DEFAULT_TOO_LONG,
            qts_kept: MAX_QTS_KEPT,
        }
    }
}

impl UpdateStore {
    /// Sets the messages per `differenceSlice` and the distance (and history kept) past which a difference is
    /// too long. Test hook: a test sets them small to reach slices and `differenceTooLong` with a few messages.
    pub fn set_limits(&mut self, slice: usize, too_long: i32) {
        self.slice = slice.max(1);
        self.too_long = too_long.max(1);
    }

    /// Sets the unacknowledged qts events kept per user (default [`MAX_QTS_KEPT`]). Test hook.
    pub fn set_qts_kept(&mut self, kept: usize) {
        self.qts_kept = kept.clamp(1, MAX_QTS_KEPT);
    }

    /// A user's qts events still kept (not acknowledged by `messages.receivedQueue`, not dropped past the bound),
    /// and the qts acknowledged.
    pub fn qts_waiting(&self, user: i64) -> Option<(usize, i32)> {
        self.users.get(&user).map(|m| (m.qts_events.len(), m.acked_qts))
    }

    /// A user's (pts, seq), as `updates.getState` would answer; `None` before the user has a mailbox.
    pub fn state(&self, user: i64) -> Option<(i32, i32)> {
        self.users.get(&user).map(|m| (m.pts, m.seq))
    }

    /// A user's qts (its secondary sequence: secret-chat messages, bot updates); `None` before it has a mailbox.
    pub fn qts(&self, user: i64) -> Option<i32> {
        self.users.get(&user).map(|m| m.qts)
    }

    /// The secret-chat messages a user's mailbox keeps (each `EncryptedMessage` as it was relayed, those not yet
    /// acknowledged), oldest first, with the qts each moved it to.
    pub fn encrypted_history(&self, user: i64) -> Vec<(i32, Vec<u8>)> {
        self.users
            .get(&user)
            .map(|m| {
                m.qts_events
                    .iter()
                    .filter_map(|e| match &e.change {
                        Change::Encrypted(b) => Some((e.qts, b.clone())),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The channel's pts.
    pub fn channel_pts(&self) -> i32 {
        self.channel.pts
    }

    /// The messages a user's mailbox received (new messages only, as they were sent), oldest first, with the pts
    /// each moved it to.
    pub fn history(&self, user: i64) -> Vec<(i32, Msg)> {
        self.users.get(&user).map(|m| sent(&m.events)).unwrap_or_default()
    }

    /// The channel's new messages kept, oldest first, with the pts each moved it to.
    pub fn channel_history(&self) -> Vec<(i32, Msg)> {
        sent(&self.channel.events)
    }

    /// A user's messages as they are now (edited, deleted ones left out), by id.
    pub fn messages(&self, user: i64) -> Vec<Msg> {
        self.users
            .get(&user)
            .map(|m| m.messages.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The channel's messages as they are now.
    pub fn channel_messages(&self) -> Vec<Msg> {
        self.channel.messages.values().cloned().collect()
    }

    /// The `updateChannelTooLong` hint pending for `user`: the channel pts its next difference names.
    pub fn channel_hint(&self, user: i64) -> Option<i32> {
        self.users.get(&user).and_then(|m| m.channel_from)
    }

    /// A channel update (`from`: the channel's pts before it) found no live connection of `user`: its next
    /// `updates.getDifference` tells it to fetch the channel (`updateChannelTooLong`), as Telegram does for a
    /// client that was away. Called by the DC after routing a [`StreamPush`] with `channel_from`.
    pub fn missed_channel(&mut self, user: i64, from: i32) {
        if let Some(m) = self.users.get_mut(&user) {
            m.channel_from.get_or_insert(from);
        }
    }

    fn keep(&self) -> usize {
        usize::try_from(self.too_long).unwrap_or(1)
    }

    /// The mailbox of `user`, made if it is new and there is room. A new one starts at pts 1, as Telegram's
    /// accounts do (clients take pts 0 for "no state": Telethon's message box stays empty on it).
    fn mailbox(&mut self, user: i64) -> Result<&mut Mailbox, Reply> {
        if !self.users.contains_key(&user) && self.users.len() >= MAX_MAILBOXES {
            return Err(Reply::Error(500, "USERS_TOO_MUCH"));
        }
        Ok(self.users.entry(user).or_insert_with(Mailbox::new_at_one))
    }
}

/// The new messages of `events`, with their pts.
fn sent(events: &VecDeque<Event>) -> Vec<(i32, Msg)> {
    events
        .iter()
        .filter_map(|e| match &e.change {
            Change::New(m) => Some((e.pts, m.clone())),
            _ => None,
        })
        .collect()
}

/// An `Updates` of the update stream for every live connection of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPush {
    /// The user and the serialized `Updates`.
    pub push: Push,
    /// The caller's own: its other connections get it, not the one that made the call (it has the answer).
    pub own: bool,
    /// A channel update, with the channel's pts before it: when no live connection of the user takes it, the DC
    /// tells [`UpdateStore::missed_channel`].
    pub channel_from: Option<i32>,
}

/// Bytes already encoded (a boxed object), written as they are in place of a typed value.
struct Raw<'a>(&'a [u8]);

impl TlWrite for Raw<'_> {
    fn tl_len(&self) -> usize {
        self.0.len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), tl::Full> {
        w.raw(self.0)
    }
}
impl<'x> OfType<enums::Message<'x>> for Raw<'_> {}
impl<'x> OfType<enums::User<'x>> for Raw<'_> {}
impl<'x> OfType<enums::Chat<'x>> for Raw<'_> {}
impl<'x> OfType<enums::Update<'x>> for Raw<'_> {}
impl<'x> OfType<enums::EncryptedMessage<'x>> for Raw<'_> {}

/// Typed objects over encoded ones, for a `Seq`.
fn objs<'a, T>(raws: &'a [Raw<'a>]) -> Vec<Obj<'a, T>>
where
    Raw<'a>: OfType<T>,
{
    raws.iter().map(Obj::new).collect()
}

fn raws(items: &[Vec<u8>]) -> Vec<Raw<'_>> {
    items.iter().map(|b| Raw(b)).collect()
}

fn encoded<T: TlWrite + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    if encode(v, &mut out).is_err() {
        out.clear();
    }
    out
}

fn answer<T: TlWrite + ?Sized>(v: &T) -> Reply {
    let mut out = vec![0u8; v.tl_len()];
    match encode(v, &mut out) {
        Ok(_) => Reply::Result(out),
        Err(_) => Reply::Error(500, "INTERNAL"),
    }
}

fn view<'a, F: Bare<'a>>(call: &'a [u8]) -> Option<F> {
    let args = call.get(4..)?;
    Some(F::read_bare(&mut Cursor::new(args, &API)))
}

/// The `message` object of `m` as `viewer` sees it.
pub fn message_wire(m: &Msg, viewer: i64) -> Vec<u8> {
    let from = types::PeerUser { user_id: m.from };
    let user_peer;
    let channel_peer;
    let peer_id: Obj<'_, enums::Peer> = match m.peer {
        Peer::User(id) => {
            user_peer = types::PeerUser { user_id: id };
            Obj::new(&user_peer)
        }
        Peer::Channel(id) => {
            channel_peer = types::PeerChannel { channel_id: id };
            Obj::new(&channel_peer)
        }
    };
    encoded(&types::Message {
        out: m.from == viewer,
        mentioned: false,
        media_unread: false,
        silent: false,
        post: false,
        from_scheduled: false,
        legacy: false,
        edit_hide: false,
        pinned: false,
        noforwards: false,
        invert_media: false,
        offline: false,
        video_processing_pending: false,
        paid_suggested_post_stars: false,
        paid_suggested_post_ton: false,
        id: m.id,
        from_id: Some(Obj::new(&from)),
        from_boosts_applied: None,
        from_rank: None,
        peer_id,
        saved_peer_id: None,
        fwd_from: None,
        via_bot_id: None,
        via_business_bot_id: None,
        guestchat_via_from: None,
        reply_to: None,
        date: m.date,
        message: &m.text,
        media: None,
        reply_markup: None,
        entities: None,
        views_and_forwards: None,
        replies: None,
        edit_date: m.edit_date,
        post_author: None,
        grouped_id: None,
        reactions: None,
        restriction_reason: None,
        ttl_period: None,
        quick_reply_shortcut_id: None,
        effect: None,
        factcheck: None,
        report_delivery_until_date: None,
        paid_message_stars: None,
        suggested_post: None,
        schedule_repeat_period: None,
        summary_from_language: None,
        rich_message: None,
    })
}

/// The `channel` object of the test DC's channel.
pub fn channel_wire() -> Vec<u8> {
    let photo = types::ChatPhotoEmpty {};
    encoded(&types::Channel {
        creator: false,
        left: false,
        broadcast: false,
        verified: false,
        megagroup: true,
        signatures: false,
        min: false,
        scam: false,
        has_link: false,
        has_geo: false,
        slowmode_enabled: false,
        call_active: false,
        call_not_empty: false,
        fake: false,
        gigagroup: false,
        noforwards: false,
        join_to_send: false,
        join_request: false,
        forum: false,
        stories_hidden: false,
        stories_hidden_min: false,
        stories_unavailable: false,
        signature_profiles: false,
        autotranslation: false,
        broadcast_messages_allowed: false,
        monoforum: false,
        forum_tabs: false,
        id: CHANNEL_ID,
        access_hash: Some(CHANNEL_ACCESS_HASH),
        title: CHANNEL_TITLE.as_bytes(),
        username: None,
        photo: Obj::new(&photo),
        date: 0,
        restriction_reason: None,
        admin_rights: None,
        banned_rights: None,
        default_banned_rights: None,
        participants_count: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        emoji_status: None,
        level: None,
        subscription_until_date: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_monoforum_id: None,
        linked_community_id: None,
    })
}

/// The users an event names (a message's sender and private peer, a read's peer).
fn event_users(e: &Event) -> [Option<i64>; 2] {
    match &e.change {
        Change::New(m) | Change::Edit(m) => msg_users(m),
        Change::ReadInbox { peer, .. } | Change::ReadOutbox { peer, .. } => [Some(*peer), None],
        Change::BotStopped { user, .. } => [Some(*user), None],
        Change::Delete(_) | Change::Encrypted(_) => [None, None],
    }
}

fn msg_users(m: &Msg) -> [Option<i64>; 2] {
    let peer = match m.peer {
        Peer::User(id) => Some(id),
        Peer::Channel(_) => None,
    };
    [Some(m.from), peer]
}

/// The `user` objects of `ids` (each once), as `viewer` sees them.
fn users_wire(world: &World, viewer: i64, ids: impl Iterator<Item = [Option<i64>; 2]>) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    for id in ids.flatten().flatten() {
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    seen.into_iter().map(|id| world.user_wire(id, viewer)).collect()
}

/// `updates` carrying one update, with `users` and `chats` (already encoded).
fn updates_wire(update: &[u8], users: &[Vec<u8>], chats: &[Vec<u8>], date: i32, seq: i32) -> Vec<u8> {
    let u = [Raw(update)];
    let us = raws(users);
    let cs = raws(chats);
    let (uo, uso, cso) = (objs(&u), objs(&us), objs(&cs));
    encoded(&types::Updates {
        updates: Seq::new(&uo),
        users: Seq::new(&uso),
        chats: Seq::new(&cso),
        date,
        seq,
    })
}

/// `updateEditMessage` (private) or `updateEditChannelMessage` of `m` as `viewer` sees it.
fn edit_update(m: &Msg, viewer: i64, pts: i32, pts_count: i32) -> Vec<u8> {
    let wire = message_wire(m, viewer);
    let raw = Raw(&wire);
    match m.peer {
        Peer::Channel(_) => encoded(&types::UpdateEditChannelMessage {
            message: Obj::new(&raw),
            pts,
            pts_count,
        }),
        Peer::User(_) => encoded(&types::UpdateEditMessage {
            message: Obj::new(&raw),
            pts,
            pts_count,
        }),
    }
}

/// `updateDeleteMessages`, or `updateDeleteChannelMessages` of the channel.
fn delete_update(channel: bool, ids: &[i32], pts: i32, pts_count: i32) -> Vec<u8> {
    if channel {
        encoded(&types::UpdateDeleteChannelMessages {
            channel_id: CHANNEL_ID,
            messages: Seq::new(ids),
            pts,
            pts_count,
        })
    } else {
        encoded(&types::UpdateDeleteMessages {
            messages: Seq::new(ids),
            pts,
            pts_count,
        })
    }
}

fn read_inbox_update(peer: i64, max_id: i32, still_unread: i32, pts: i32, pts_count: i32) -> Vec<u8> {
    let p = types::PeerUser { user_id: peer };
    encoded(&types::UpdateReadHistoryInbox {
        folder_id: None,
        peer: Obj::new(&p),
        top_msg_id: None,
        max_id,
        still_unread_count: still_unread,
        pts,
        pts_count,
    })
}

fn read_outbox_update(peer: i64, max_id: i32, pts: i32, pts_count: i32) -> Vec<u8> {
    let p = types::PeerUser { user_id: peer };
    encoded(&types::UpdateReadHistoryOutbox {
        peer: Obj::new(&p),
        max_id,
        pts,
        pts_count,
    })
}

/// `updateBotStopped` with its qts.
fn bot_stopped_update(user: i64, stopped: bool, date: i32, qts: i32) -> Vec<u8> {
    encoded(&types::UpdateBotStopped {
        user_id: user,
        date,
        stopped,
        qts,
    })
}

/// The `Update` an event is in a difference's `other_updates`; `None` for a new message (`new_messages`) and a
/// secret-chat message (`new_encrypted_messages`).
fn event_update(e: &Event, viewer: i64, channel: bool) -> Option<Vec<u8>> {
    Some(match &e.change {
        Change::New(_) | Change::Encrypted(_) => return None,
        Change::BotStopped { user, stopped } => bot_stopped_update(*user, *stopped, e.date, e.qts),
        Change::Edit(m) => edit_update(m, viewer, e.pts, e.count),
        Change::Delete(ids) => delete_update(channel, ids, e.pts, e.count),
        Change::ReadInbox {
            peer,
            max_id,
            still_unread,
        } => read_inbox_update(*peer, *max_id, *still_unread, e.pts, e.count),
        Change::ReadOutbox { peer, max_id } => read_outbox_update(*peer, *max_id, e.pts, e.count),
    })
}

/// A push to `to`'s live connections.
fn to_user(to: i64, updates: Vec<u8>) -> StreamPush {
    StreamPush {
        push: Push {
            to,
            updates,
            sequenced: false,
        },
        own: false,
        channel_from: None,
    }
}

/// A push to the caller's other live connections (another device of the same user sees what it did).
fn to_own(user: i64, updates: Vec<u8>) -> StreamPush {
    StreamPush {
        push: Push {
            to: user,
            updates,
            sequenced: false,
        },
        own: true,
        channel_from: None,
    }
}

/// A channel update for every member: the caller's other connections and every other member's (`from`: the
/// channel's pts before it, for [`UpdateStore::missed_channel`]).
fn channel_pushes(
    store: &UpdateStore,
    user: i64,
    from: i32,
    for_viewer: &dyn Fn(i64) -> Vec<u8>,
    pushes: &mut Vec<StreamPush>,
) {
    for &member in store.users.keys() {
        let own = member == user;
        pushes.push(StreamPush {
            push: Push {
                to: member,
                updates: for_viewer(member),
                sequenced: false,
            },
            own,
            channel_from: (!own).then_some(from),
        });
    }
}

/// Executes `call` (method id first) for `user` at `date` if it is one of the update-stream calls: the answer and
/// the updates to push (to every live connection of their user; the caller's own ones to its other connections);
/// `None` for other calls.
pub fn execute(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    date: i32,
    call: &[u8],
) -> Option<(Reply, Vec<StreamPush>)> {
    let id = u32::from_le_bytes(call.get(..4)?.try_into().ok()?);
    let known = [
        functions::MessagesSendMessage::ID,
        functions::MessagesEditMessage::ID,
        functions::MessagesDeleteMessages::ID,
        functions::MessagesReadHistory::ID,
        functions::ChannelsDeleteMessages::ID,
        functions::ChannelsReadHistory::ID,
        functions::UpdatesGetState::ID,
        functions::UpdatesGetDifference::ID,
        functions::UpdatesGetChannelDifference::ID,
        functions::ContactsBlock::ID,
        functions::ContactsUnblock::ID,
        functions::MessagesDeletePhoneCallHistory::ID,
    ];
    if !known.contains(&id) {
        return None;
    }
    let normalized;
    let call = match channel_as_input_channel(id, call) {
        Some(c) => {
            normalized = c;
            &normalized[..]
        }
        None => call,
    };
    if API.validate(call, Root::Function) != Ok(call.len()) {
        return Some((Reply::Error(400, "INPUT_REQUEST_INVALID"), Vec::new()));
    }
    let mut pushes = Vec::new();
    let reply = if id == functions::MessagesSendMessage::ID {
        let c: functions::MessagesSendMessage<'_> = view(call)?;
        send_message(store, world, user, date, &c, &mut pushes)
    } else if id == functions::MessagesEditMessage::ID {
        let c: functions::MessagesEditMessage<'_> = view(call)?;
        edit_message(store, world, user, date, &c, &mut pushes)
    } else if id == functions::MessagesDeleteMessages::ID {
        let c: functions::MessagesDeleteMessages<'_> = view(call)?;
        delete_messages(store, user, date, &c, &mut pushes)
    } else if id == functions::MessagesReadHistory::ID {
        let c: functions::MessagesReadHistory<'_> = view(call)?;
        read_history(store, world, user, date, &c, &mut pushes)
    } else if id == functions::ChannelsDeleteMessages::ID {
        let c: functions::ChannelsDeleteMessages<'_> = view(call)?;
        channel_delete(store, user, date, &c, &mut pushes)
    } else if id == functions::ChannelsReadHistory::ID {
        let c: functions::ChannelsReadHistory<'_> = view(call)?;
        channel_read(store, user, date, &c, &mut pushes)
    } else if id == functions::ContactsBlock::ID {
        let c: functions::ContactsBlock<'_> = view(call)?;
        block(store, world, user, date, c.id, true, &mut pushes)
    } else if id == functions::ContactsUnblock::ID {
        let c: functions::ContactsUnblock<'_> = view(call)?;
        block(store, world, user, date, c.id, false, &mut pushes)
    } else if id == functions::MessagesDeletePhoneCallHistory::ID {
        // No calls are made on test_dc: nothing to delete, the mailbox's pts answered with a count of 0.
        match store.mailbox(user) {
            Ok(m) => answer(&types::MessagesAffectedFoundMessages {
                pts: m.pts,
                pts_count: 0,
                offset: 0,
                messages: Seq::new(&[]),
            }),
            Err(e) => e,
        }
    } else if id == functions::UpdatesGetState::ID {
        match store.mailbox(user) {
            Ok(m) => answer(&types::UpdatesState {
                pts: m.pts,
                qts: m.qts,
                date,
                seq: m.seq,
                unread_count: 0,
            }),
            Err(e) => e,
        }
    } else if id == functions::UpdatesGetDifference::ID {
        let c: functions::UpdatesGetDifference = view(call)?;
        get_difference(store, world, user, date, &c)
    } else {
        let c: functions::UpdatesGetChannelDifference<'_> = view(call)?;
        get_channel_difference(store, world, user, &c)
    };
    Some((reply, pushes))
}

/// `updates.getChannelDifference` whose `channel` is an `inputPeerChannel` where the schema has `InputChannel`: the
/// same call with `inputChannel` (the two carry the same `channel_id` and `access_hash`); `None` for anything else.
/// kurigram's `recover_gaps` sends it so (its `resolve_peer` answers an `InputPeer`, which it passes to the `channel`
/// of 15 channel methods), and Telegram takes it, so test_dc does too, for this call only
/// (examples/interop/NOTES.md).
fn channel_as_input_channel(id: u32, call: &[u8]) -> Option<Vec<u8>> {
    const INPUT_PEER_CHANNEL: u32 = types::InputPeerChannel::ID;
    if id != functions::UpdatesGetChannelDifference::ID {
        return None;
    }
    let ctor = u32::from_le_bytes(call.get(8..12)?.try_into().ok()?);
    if ctor != INPUT_PEER_CHANNEL {
        return None;
    }
    let mut fixed = call.to_vec();
    fixed
        .get_mut(8..12)?
        .copy_from_slice(&types::InputChannel::ID.to_le_bytes());
    Some(fixed)
}

/// The chat an `InputPeer` names for `user`: a known user, Saved Messages, or the channel.
fn peer_of(store: &UpdateStore, world: &World, user: i64, peer: Obj<'_, enums::InputPeer<'_>>) -> Result<Peer, Reply> {
    match peer.get() {
        Some(enums::InputPeer::InputPeerSelf(_)) => Ok(Peer::User(user)),
        Some(enums::InputPeer::InputPeerUser(u))
            if u.user_id > 0 && (world.is_account(u.user_id) || store.users.contains_key(&u.user_id)) =>
        {
            Ok(Peer::User(u.user_id))
        }
        Some(enums::InputPeer::InputPeerChannel(ch))
            if ch.channel_id == CHANNEL_ID && ch.access_hash == CHANNEL_ACCESS_HASH =>
        {
            Ok(Peer::Channel(CHANNEL_ID))
        }
        Some(enums::InputPeer::InputPeerChannel(_)) => Err(Reply::Error(400, "CHANNEL_INVALID")),
        _ => Err(Reply::Error(400, "PEER_ID_INVALID")),
    }
}

fn check_channel(channel: Obj<'_, enums::InputChannel<'_>>) -> Result<(), Reply> {
    match channel.get() {
        Some(enums::InputChannel::InputChannel(ic))
            if ic.channel_id == CHANNEL_ID && ic.access_hash == CHANNEL_ACCESS_HASH =>
        {
            Ok(())
        }
        _ => Err(Reply::Error(400, "CHANNEL_INVALID")),
    }
}

fn check_text(text: &[u8]) -> Result<(), Reply> {
    if text.is_empty() {
        return Err(Reply::Error(400, "MESSAGE_EMPTY"));
    }
    if text.len() > MAX_TEXT {
        return Err(Reply::Error(400, "MESSAGE_TOO_LONG"));
    }
    Ok(())
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn send_message(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    date: i32,
    c: &functions::MessagesSendMessage<'_>,
    pushes: &mut Vec<StreamPush>,
) -> Reply {
    if let Err(e) = check_text(c.message) {
        return e;
    }
    let to = match peer_of(store, world, user, c.peer) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if let Peer::User(other) = to
        && other != user
        && !store.users.contains_key(&other)
        && store.users.len() + 1 >= MAX_MAILBOXES
    {
        return Reply::Error(500, "USERS_TOO_MUCH");
    }
    let keep = store.keep();
    let sender = match store.mailbox(user) {
        Ok(m) => m,
        Err(e) => return e,
    };
    if sender.random_ids.contains(&c.random_id) {
        // Telegram names it a 500; a 400 here, so that clients do not retry it as a server error.
        return Reply::Error(400, "RANDOM_ID_DUPLICATE");
    }
    if sender.random_ids.len() >= RANDOM_IDS {
        sender.random_ids.pop_front();
    }
    sender.random_ids.push_back(c.random_id);
    let text = c.message.to_vec();
    match to {
        Peer::User(other) => {
            sender.last_id += 1;
            let id = sender.last_id;
            let mut twin = None;
            if other != user {
                let Ok(rcpt) = store.mailbox(other) else {
                    return Reply::Error(500, "USERS_TOO_MUCH");
                };
                rcpt.last_id += 1;
                let msg = Msg {
                    id: rcpt.last_id,
                    from: user,
                    peer: Peer::User(user),
                    date,
                    text: text.clone(),
                    edit_date: None,
                    twin: Some((user, id)),
                };
                twin = Some((other, msg.id));
                // The first message from a user the recipient was never pushed goes with its `user`, in a
                // seq-numbered `updates`; later ones as `updateShortMessage`.
                let first = rcpt.known.insert(user);
                if first {
                    rcpt.seq += 1;
                }
                let wire = message_wire(&msg, other);
                let (seq, rid) = (rcpt.seq, msg.id);
                let rpts = rcpt.add(Change::New(msg), 1, date, keep);
                let updates = if first {
                    let m = Raw(&wire);
                    let upd = encoded(&types::UpdateNewMessage {
                        message: Obj::new(&m),
                        pts: rpts,
                        pts_count: 1,
                    });
                    updates_wire(&upd, &[world.user_wire(user, other)], &[], date, seq)
                } else {
                    encoded(&types::UpdateShortMessage {
                        out: false,
                        mentioned: false,
                        media_unread: false,
                        silent: c.silent,
                        id: rid,
                        user_id: user,
                        message: c.message,
                        pts: rpts,
                        pts_count: 1,
                        date,
                        fwd_from: None,
                        via_bot_id: None,
                        reply_to: None,
                        entities: None,
                        ttl_period: None,
                    })
                };
                pushes.push(to_user(other, updates));
            }
            let Some(sender) = store.users.get_mut(&user) else {
                return Reply::Error(500, "INTERNAL");
            };
            let msg = Msg {
                id,
                from: user,
                peer: Peer::User(other),
                date,
                text,
                edit_date: None,
                twin,
            };
            let pts = sender.add(Change::New(msg), 1, date, keep);
            // The sender's other devices see the message it sent, in its own mailbox.
            let mine = encoded(&types::UpdateShortMessage {
                out: true,
                mentioned: false,
                media_unread: false,
                silent: c.silent,
                id,
                user_id: other,
                message: c.message,
                pts,
                pts_count: 1,
                date,
                fwd_from: None,
                via_bot_id: None,
                reply_to: None,
                entities: None,
                ttl_period: None,
            });
            pushes.push(to_own(user, mine));
            answer(&types::UpdateShortSentMessage {
                out: true,
                id,
                pts,
                pts_count: 1,
                date,
                media: None,
                entities: None,
                ttl_period: None,
            })
        }
        Peer::Channel(_) => {
            store.channel.last_id += 1;
            let msg = Msg {
                id: store.channel.last_id,
                from: user,
                peer: Peer::Channel(CHANNEL_ID),
                date,
                text,
                edit_date: None,
                twin: None,
            };
            let pts = store.channel.add(Change::New(msg.clone()), 1, date, keep);
            let chats = [channel_wire()];
            let for_viewer = |viewer: i64| {
                let wire = message_wire(&msg, viewer);
                let m = Raw(&wire);
                let upd = encoded(&types::UpdateNewChannelMessage {
                    message: Obj::new(&m),
                    pts,
                    pts_count: 1,
                });
                updates_wire(&upd, &[world.user_wire(user, viewer)], &chats, date, 0)
            };
            channel_pushes(store, user, pts - 1, &for_viewer, pushes);
            Reply::Result(for_viewer(user))
        }
    }
}

/// `messages.editMessage`: the sender edits its text (private: both copies, each party's pts + 1; channel: the
/// channel's pts + 1). Answered `updates` with the edit; pushed to the other party (private), every member
/// (channel) and the sender's other connections.
fn edit_message(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    date: i32,
    c: &functions::MessagesEditMessage<'_>,
    pushes: &mut Vec<StreamPush>,
) -> Reply {
    let Some(text) = c.message else {
        return Reply::Error(400, "MESSAGE_EMPTY");
    };
    if let Err(e) = check_text(text) {
        return e;
    }
    let chat = match peer_of(store, world, user, c.peer) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let keep = store.keep();
    let edited = |m: &Msg| -> Result<Msg, Reply> {
        if m.from != user {
            return Err(Reply::Error(403, "MESSAGE_AUTHOR_REQUIRED"));
        }
        if m.text == text {
            return Err(Reply::Error(400, "MESSAGE_NOT_MODIFIED"));
        }
        Ok(Msg {
            text: text.to_vec(),
            edit_date: Some(date),
            ..m.clone()
        })
    };
    match chat {
        Peer::User(_) => {
            let m = match store.mailbox(user) {
                Ok(m) => m,
                Err(e) => return e,
            };
            let Some(old) = m.messages.get(&c.id).filter(|x| x.peer == chat) else {
                return Reply::Error(400, "MESSAGE_ID_INVALID");
            };
            let msg = match edited(old) {
                Ok(m) => m,
                Err(e) => return e,
            };
            let pts = m.add(Change::Edit(msg.clone()), 1, date, keep);
            let users = users_wire(world, user, [msg_users(&msg)].into_iter());
            let mine = updates_wire(&edit_update(&msg, user, pts, 1), &users, &[], date, 0);
            pushes.push(to_own(user, mine.clone()));
            if let Some((to, id)) = msg.twin
                && to != user
                && let Some(t) = store.users.get_mut(&to)
                && let Some(theirs) = t.messages.get(&id)
            {
                let theirs = Msg {
                    text: text.to_vec(),
                    edit_date: Some(date),
                    ..theirs.clone()
                };
                let tpts = t.add(Change::Edit(theirs.clone()), 1, date, keep);
                let users = users_wire(world, to, [msg_users(&theirs)].into_iter());
                pushes.push(to_user(
                    to,
                    updates_wire(&edit_update(&theirs, to, tpts, 1), &users, &[], date, 0),
                ));
            }
            Reply::Result(mine)
        }
        Peer::Channel(_) => {
            if let Err(e) = store.mailbox(user) {
                return e;
            }
            let Some(old) = store.channel.messages.get(&c.id) else {
                return Reply::Error(400, "MESSAGE_ID_INVALID");
            };
            let msg = match edited(old) {
                Ok(m) => m,
                Err(e) => return e,
            };
            let pts = store.channel.add(Change::Edit(msg.clone()), 1, date, keep);
            let chats = [channel_wire()];
            let for_viewer = |viewer: i64| {
                updates_wire(
                    &edit_update(&msg, viewer, pts, 1),
                    &[world.user_wire(user, viewer)],
                    &chats,
                    date,
                    0,
                )
            };
            channel_pushes(store, user, pts - 1, &for_viewer, pushes);
            Reply::Result(for_viewer(user))
        }
    }
}

/// The distinct ids of a call's `id` vector, at most [`MAX_IDS`].
fn ids_of(ids: Seq<'_, i32>) -> Result<Vec<i32>, Reply> {
    if ids.len() > MAX_IDS {
        return Err(Reply::Error(400, "MESSAGE_IDS_TOO_MUCH"));
    }
    let mut out: Vec<i32> = Vec::new();
    for id in ids.iter() {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// `messages.deleteMessages`: the caller's messages of those ids (others ignored, as Telegram does) leave its
/// mailbox, pts + their count; with `revoke`, their twins leave the other parties' mailboxes too. Answered
/// `messages.affectedMessages`; `updateDeleteMessages` pushed to the other parties and the caller's other
/// connections.
fn delete_messages(
    store: &mut UpdateStore,
    user: i64,
    date: i32,
    c: &functions::MessagesDeleteMessages<'_>,
    pushes: &mut Vec<StreamPush>,
) -> Reply {
    let wanted = match ids_of(c.id) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let keep = store.keep();
    let m = match store.mailbox(user) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let mut ids = Vec::new();
    let mut twins: BTreeMap<i64, Vec<i32>> = BTreeMap::new();
    for id in wanted {
        if let Some(msg) = m.messages.get(&id) {
            ids.push(id);
            if let (true, Some((to, tid))) = (c.revoke, msg.twin)
                && to != user
            {
                twins.entry(to).or_default().push(tid);
            }
        }
    }
    if ids.is_empty() {
        return answer(&types::MessagesAffectedMessages {
            pts: m.pts,
            pts_count: 0,
        });
    }
    let n = count(ids.len());
    let pts = m.add(Change::Delete(ids.clone()), n, date, keep);
    pushes.push(to_own(
        user,
        updates_wire(&delete_update(false, &ids, pts, n), &[], &[], date, 0),
    ));
    for (to, tids) in twins {
        let Some(t) = store.users.get_mut(&to) else { continue };
        let tids: Vec<i32> = tids.into_iter().filter(|i| t.messages.contains_key(i)).collect();
        if tids.is_empty() {
            continue;
        }
        let tn = count(tids.len());
        let tpts = t.add(Change::Delete(tids.clone()), tn, date, keep);
        pushes.push(to_user(
            to,
            updates_wire(&delete_update(false, &tids, tpts, tn), &[], &[], date, 0),
        ));
    }
    answer(&types::MessagesAffectedMessages { pts, pts_count: n })
}

/// `messages.readHistory` of a private chat: the reader's inbox up to `max_id` (0: everything), pts + 1, and the
/// sender's outbox up to its copies of those messages, its pts + 1. Answered `messages.affectedMessages` (pts
/// count 0 when nothing new was read); `updateReadHistoryInbox` pushed to the reader's other connections,
/// `updateReadHistoryOutbox` to the other party.
fn read_history(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    date: i32,
    c: &functions::MessagesReadHistory<'_>,
    pushes: &mut Vec<StreamPush>,
) -> Reply {
    let other = match peer_of(store, world, user, c.peer) {
        Ok(Peer::User(u)) => u,
        Ok(Peer::Channel(_)) => return Reply::Error(400, "PEER_ID_INVALID"),
        Err(e) => return e,
    };
    let keep = store.keep();
    let m = match store.mailbox(user) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let incoming = |x: &&Msg| x.peer == Peer::User(other) && x.from != user;
    let top = m.messages.values().filter(incoming).map(|x| x.id).max().unwrap_or(0);
    let max_id = if c.max_id <= 0 { top } else { c.max_id.min(top) };
    let read = m.read_inbox.get(&other).copied().unwrap_or(0);
    if max_id <= read {
        return answer(&types::MessagesAffectedMessages {
            pts: m.pts,
            pts_count: 0,
        });
    }
    let still_unread = count(m.messages.values().filter(incoming).filter(|x| x.id > max_id).count());
    let twin_max = m
        .messages
        .values()
        .filter(incoming)
        .filter(|x| x.id <= max_id)
        .filter_map(|x| x.twin)
        .map(|(_, id)| id)
        .max();
    m.read_inbox.insert(other, max_id);
    let pts = m.add(
        Change::ReadInbox {
            peer: other,
            max_id,
            still_unread,
        },
        1,
        date,
        keep,
    );
    let users = [world.user_wire(other, user)];
    pushes.push(to_own(
        user,
        updates_wire(
            &read_inbox_update(other, max_id, still_unread, pts, 1),
            &users,
            &[],
            date,
            0,
        ),
    ));
    if let Some(tmax) = twin_max
        && let Some(t) = store.users.get_mut(&other)
        && t.read_outbox.get(&user).is_none_or(|r| *r < tmax)
    {
        t.read_outbox.insert(user, tmax);
        let tpts = t.add(
            Change::ReadOutbox {
                peer: user,
                max_id: tmax,
            },
            1,
            date,
            keep,
        );
        let users = [world.user_wire(user, other)];
        pushes.push(to_user(
            other,
            updates_wire(&read_outbox_update(user, tmax, tpts, 1), &users, &[], date, 0),
        ));
    }
    answer(&types::MessagesAffectedMessages { pts, pts_count: 1 })
}

/// `channels.deleteMessages`: the caller's own channel messages of those ids (someone else's:
/// `MESSAGE_DELETE_FORBIDDEN`, no admins here), the channel's pts + their count. Answered
/// `messages.affectedMessages`; `updateDeleteChannelMessages` pushed to every member.
fn channel_delete(
    store: &mut UpdateStore,
    user: i64,
    date: i32,
    c: &functions::ChannelsDeleteMessages<'_>,
    pushes: &mut Vec<StreamPush>,
) -> Reply {
    if let Err(e) = check_channel(c.channel) {
        return e;
    }
    let wanted = match ids_of(c.id) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if let Err(e) = store.mailbox(user) {
        return e;
    }
    let keep = store.keep();
    let mut ids = Vec::new();
    for id in wanted {
        if let Some(m) = store.channel.messages.get(&id) {
            if m.from != user {
                return Reply::Error(403, "MESSAGE_DELETE_FORBIDDEN");
            }
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return answer(&types::MessagesAffectedMessages {
            pts: store.channel.pts,
            pts_count: 0,
        });
    }
    let n = count(ids.len());
    let pts = store.channel.add(Change::Delete(ids.clone()), n, date, keep);
    let chats = [channel_wire()];
    let upd = delete_update(true, &ids, pts, n);
    let for_viewer = |_: i64| updates_wire(&upd, &[], &chats, date, 0);
    channel_pushes(store, user, pts - n, &for_viewer, pushes);
    answer(&types::MessagesAffectedMessages { pts, pts_count: n })
}

/// `channels.readHistory`: the member's read mark (no channel pts: reads are the member's own), answered
/// `boolTrue`; `updateReadChannelInbox` (with the channel's pts) pushed to the member's other connections.
fn channel_read(
    store: &mut UpdateStore,
    user: i64,
    date: i32,
    c: &functions::ChannelsReadHistory<'_>,
    pushes: &mut Vec<StreamPush>,
) -> Reply {
    if let Err(e) = check_channel(c.channel) {
        return e;
    }
    if let Err(e) = store.mailbox(user) {
        return e;
    }
    let ch = &store.channel;
    let top = ch.messages.keys().next_back().copied().unwrap_or(0);
    let max_id = if c.max_id <= 0 { top } else { c.max_id.min(top) };
    if store.channel_read.get(&user).is_none_or(|r| *r < max_id) {
        let still = count(ch.messages.values().filter(|m| m.id > max_id && m.from != user).count());
        let upd = encoded(&types::UpdateReadChannelInbox {
            folder_id: None,
            channel_id: CHANNEL_ID,
            max_id,
            still_unread_count: still,
            pts: ch.pts,
        });
        pushes.push(to_own(user, updates_wire(&upd, &[], &[channel_wire()], date, 0)));
        store.channel_read.insert(user, max_id);
    }
    answer(&types::BoolTrue {})
}

fn state(pts: i32, qts: i32, date: i32, seq: i32) -> types::UpdatesState {
    types::UpdatesState {
        pts,
        qts,
        date,
        seq,
        unread_count: 0,
    }
}

/// `contacts.block` (`stopped`) / `contacts.unblock` of a bot: the bot's qts + 1 and `updateBotStopped` pushed to
/// it, when that changes whether the caller blocked it (as Telegram tells a bot that a user stopped or restarted
/// it). Answered `boolTrue`; for a peer that is not a bot nothing is kept (block lists are not modelled).
fn block(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    date: i32,
    peer: Obj<'_, enums::InputPeer<'_>>,
    stopped: bool,
    pushes: &mut Vec<StreamPush>,
) -> Reply {
    let bot = match peer_of(store, world, user, peer) {
        Ok(Peer::User(b)) if b != user && world.is_bot(b) => b,
        Ok(_) => return answer(&types::BoolTrue {}),
        Err(e) => return e,
    };
    if let Err(e) = store.mailbox(user) {
        return e;
    }
    let keep = store.qts_kept;
    let m = match store.mailbox(bot) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let changed = if stopped {
        m.stopped_by.insert(user)
    } else {
        m.stopped_by.remove(&user)
    };
    if changed {
        let qts = m.add_qts(Change::BotStopped { user, stopped }, date, keep);
        let upd = bot_stopped_update(user, stopped, date, qts);
        pushes.push(to_user(
            bot,
            updates_wire(&upd, &[world.user_wire(user, bot)], &[], date, 0),
        ));
    }
    answer(&types::BoolTrue {})
}

impl crate::api::QtsLog for UpdateStore {
    /// A relayed secret-chat message, in its recipient's qts sequence (kept for `updates.getDifference`'s
    /// `new_encrypted_messages`).
    fn encrypted(&mut self, to: i64, message: &[u8], date: i32) -> Option<i32> {
        let keep = self.qts_kept;
        let m = self.mailbox(to).ok()?;
        Some(m.add_qts(Change::Encrypted(message.to_vec()), date, keep))
    }

    /// `messages.receivedQueue`: the user's qts events up to `max_qts` are forgotten (no difference serves them
    /// again). A `max_qts` past the user's qts (or negative) is `MAX_QTS_INVALID`.
    fn acknowledge(&mut self, user: i64, max_qts: i32) -> Result<Vec<i64>, &'static str> {
        match self.users.get_mut(&user) {
            Some(m) if (0..=m.qts).contains(&max_qts) => Ok(m.acknowledge(max_qts)),
            None if max_qts == 0 => Ok(Vec::new()),
            _ => Err("MAX_QTS_INVALID"),
        }
    }

    /// The store keeps every qts event (the oldest unacknowledged dropped past [`MAX_QTS_KEPT`]); the queues of
    /// the updates it does not keep are the DC's.
    fn room(&self, _to: i64, _sequenced: bool) -> bool {
        true
    }
}

/// `updates.getDifference` from (`pts`, `qts`): both sequences' events the client has not seen, in the order they
/// happened (new messages in `new_messages`, secret-chat messages in `new_encrypted_messages`, the rest in
/// `other_updates`), sliced after `slice` of them.
fn get_difference(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    date: i32,
    c: &functions::UpdatesGetDifference,
) -> Reply {
    let (slice, too_long) = (store.slice, store.too_long);
    let m = match store.mailbox(user) {
        Ok(m) => m,
        Err(e) => return e,
    };
    if c.pts < 0 || c.pts > m.pts || c.qts < 0 || c.qts > m.qts {
        return Reply::Error(400, "PERSISTENT_TIMESTAMP_INVALID");
    }
    let hint = m.channel_from;
    if c.pts == m.pts && c.qts == m.qts && hint.is_none() {
        return answer(&types::UpdatesDifferenceEmpty { date, seq: m.seq });
    }
    let limit = [c.pts_limit, c.pts_total_limit]
        .into_iter()
        .flatten()
        .filter(|l| *l > 0)
        .fold(too_long, i32::min);
    if m.pts - c.pts > limit || !m.covers(c.pts) {
        return answer(&types::UpdatesDifferenceTooLong { pts: m.pts });
    }
    // Every unacknowledged qts event after the client's qts is kept (those dropped past the bound are not: the
    // state's qts passes them). A slice ends after `slice` events, or before the qts event past `qts_limit`.
    let unseen = m.unseen(c.pts, c.qts);
    let qts_limit = c
        .qts_limit
        .filter(|l| *l > 0)
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(1));
    let mut qts_taken = 0usize;
    let new: Vec<&Event> = unseen
        .iter()
        .take(slice)
        .take_while(|e| {
            qts_taken += usize::from(e.change.is_qts());
            qts_taken <= qts_limit
        })
        .copied()
        .collect();
    let sliced = new.last().filter(|_| unseen.len() > new.len());
    let messages: Vec<Vec<u8>> = new
        .iter()
        .filter_map(|e| match &e.change {
            Change::New(msg) => Some(message_wire(msg, user)),
            _ => None,
        })
        .collect();
    let encrypted: Vec<Vec<u8>> = new
        .iter()
        .filter_map(|e| match &e.change {
            Change::Encrypted(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    let mut others: Vec<Vec<u8>> = new.iter().filter_map(|e| event_update(e, user, false)).collect();
    let mut chats = Vec::new();
    // A channel that moved while none of the user's connections was live: fetch it from there (Telegram's
    // `updateChannelTooLong` in a difference), in the last part of the difference.
    if let (None, Some(from)) = (sliced, hint) {
        others.push(encoded(&types::UpdateChannelTooLong {
            channel_id: CHANNEL_ID,
            pts: Some(from),
        }));
        chats.push(channel_wire());
    }
    let users = users_wire(world, user, new.iter().map(|e| event_users(e)));
    let (mr, er, or, ur, cr) = (
        raws(&messages),
        raws(&encrypted),
        raws(&others),
        raws(&users),
        raws(&chats),
    );
    let (mo, eo, oo, uo, co) = (objs(&mr), objs(&er), objs(&or), objs(&ur), objs(&cr));
    if let Some(last) = sliced {
        // Every event up to `last` is in this slice: the client goes on from the sequences as they were after it.
        let st = state(last.pts.max(c.pts), last.qts.max(c.qts), last.date, last.seq);
        answer(&types::UpdatesDifferenceSlice {
            new_messages: Seq::new(&mo),
            new_encrypted_messages: Seq::new(&eo),
            other_updates: Seq::new(&oo),
            chats: Seq::new(&co),
            users: Seq::new(&uo),
            intermediate_state: Obj::new(&st),
        })
    } else {
        let st = state(m.pts, m.qts, date, m.seq);
        answer(&types::UpdatesDifference {
            new_messages: Seq::new(&mo),
            new_encrypted_messages: Seq::new(&eo),
            other_updates: Seq::new(&oo),
            chats: Seq::new(&co),
            users: Seq::new(&uo),
            state: Obj::new(&st),
        })
    }
}

fn get_channel_difference(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    c: &functions::UpdatesGetChannelDifference<'_>,
) -> Reply {
    if let Err(e) = check_channel(c.channel) {
        return e;
    }
    match store.mailbox(user) {
        // The user fetches the channel: no more hint for it.
        Ok(m) => m.channel_from = None,
        Err(e) => return e,
    }
    let too_long = store.too_long;
    let ch = &store.channel;
    if c.pts <= 0 || c.pts > ch.pts {
        return Reply::Error(400, "PERSISTENT_TIMESTAMP_INVALID");
    }
    let limit = usize::try_from(c.limit.clamp(1, MAX_CHANNEL_LIMIT)).unwrap_or(1);
    if c.pts == ch.pts {
        return answer(&types::UpdatesChannelDifferenceEmpty {
            final_: true,
            pts: ch.pts,
            timeout: Some(CHANNEL_TIMEOUT),
        });
    }
    let chats = [channel_wire()];
    let cr = raws(&chats);
    let co = objs(&cr);
    if ch.pts - c.pts > too_long || !ch.covers(c.pts) {
        // The latest `limit` messages as they are now, newest first (as `messages.getHistory` lists them).
        let latest: Vec<&Msg> = ch.messages.values().rev().take(limit).collect();
        let messages: Vec<Vec<u8>> = latest.iter().map(|m| message_wire(m, user)).collect();
        let users = users_wire(world, user, latest.iter().map(|m| msg_users(m)));
        let (mr, ur) = (raws(&messages), raws(&users));
        let (mo, uo) = (objs(&mr), objs(&ur));
        let top = ch.messages.keys().next_back().copied().unwrap_or(0);
        let peer = types::PeerChannel { channel_id: CHANNEL_ID };
        let notify = types::PeerNotifySettings {
            show_previews: None,
            silent: None,
            mute_until: None,
            ios_sound: None,
            android_sound: None,
            other_sound: None,
            stories_muted: None,
            stories_hide_sender: None,
            stories_ios_sound: None,
            stories_android_sound: None,
            stories_other_sound: None,
        };
        let read = store.channel_read.get(&user).copied().unwrap_or(top);
        let dialog = types::Dialog {
            pinned: false,
            unread_mark: false,
            view_forum_as_messages: false,
            peer: Obj::new(&peer),
            top_message: top,
            read_inbox_max_id: read,
            read_outbox_max_id: top,
            unread_count: 0,
            unread_mentions_count: 0,
            unread_reactions_count: 0,
            unread_poll_votes_count: 0,
            notify_settings: Obj::new(&notify),
            pts: Some(ch.pts),
            draft: None,
            folder_id: None,
            ttl_period: None,
        };
        return answer(&types::UpdatesChannelDifferenceTooLong {
            final_: true,
            timeout: Some(CHANNEL_TIMEOUT),
            dialog: Obj::new(&dialog),
            messages: Seq::new(&mo),
            chats: Seq::new(&co),
            users: Seq::new(&uo),
        });
    }
    let new: Vec<&Event> = ch.events.iter().filter(|e| e.pts > c.pts).take(limit).collect();
    let Some(last) = new.last() else {
        return Reply::Error(500, "INTERNAL");
    };
    let messages: Vec<Vec<u8>> = new
        .iter()
        .filter_map(|e| match &e.change {
            Change::New(msg) => Some(message_wire(msg, user)),
            _ => None,
        })
        .collect();
    let others: Vec<Vec<u8>> = new.iter().filter_map(|e| event_update(e, user, true)).collect();
    let users = users_wire(world, user, new.iter().map(|e| event_users(e)));
    let (mr, or, ur) = (raws(&messages), raws(&others), raws(&users));
    let (mo, oo, uo) = (objs(&mr), objs(&or), objs(&ur));
    answer(&types::UpdatesChannelDifference {
        final_: last.pts == ch.pts,
        pts: last.pts,
        timeout: Some(CHANNEL_TIMEOUT),
        new_messages: Seq::new(&mo),
        other_updates: Seq::new(&oo),
        chats: Seq::new(&co),
        users: Seq::new(&uo),
    })
}
