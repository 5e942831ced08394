//! The update stream of the test DC: messages between users and in one channel, numbered as Telegram numbers them
//! (<https://core.telegram.org/api/updates>), and the difference endpoints answering from the stored history.
//!
//! Data comes from [`crate::dc`]'s dispatch: a call (method id first, wrappers removed), the caller's user (its
//! signed-in account, or its auth key as a user: `auth::World::identity`) and the DC's Unix time. [`execute`]
//! answers it and returns the updates to push; the DC hands those to every live connection of their user on every
//! DC of the cluster, and drops them for a user with no live connection (as Telegram does: the client catches up
//! with `updates.getDifference`). The store is the cluster's (one per `dc::start_cluster`).
//!
//! **The common sequence.** Each user has a mailbox with its pts (private messages; 1 for a new one, as on Telegram), its seq and its history.
//! `messages.sendMessage` to `inputPeerUser` (or `inputPeerSelf`, Saved Messages, stored once) stores the message in
//! the sender's and the recipient's mailbox, each with its own message id (private message ids are per user, as
//! on Telegram), and moves each pts by 1. The sender is answered `updateShortSentMessage` (pts, pts_count 1); the
//! recipient is pushed `updateShortMessage` once it has been sent the sender's `user`, and before that `updates`
//! (`updateNewMessage` with the sender in `users`), which moves its seq by 1: as Telegram does when the client may
//! not know the sender. `updates.getState` answers the mailbox's pts and seq (qts 0: no secret-chat qts here; the
//! secret-chat relay of `crate::api` keeps its own), `date` the DC's time. `updates.getDifference` from `pts`
//! answers `differenceEmpty` when nothing is newer, `difference` with every newer message and the final state,
//! `differenceSlice` with the first [`UpdateStore::set_limits`] `slice` of them and the state after the last one
//! (the client asks again from there), and `differenceTooLong` (the current pts) when the client is more than
//! `too_long` behind, or behind the history kept (the same `too_long` messages per mailbox; `pts_limit` and
//! `pts_total_limit` lower that threshold, as the spec says). A pts ahead of the mailbox is
//! `400 PERSISTENT_TIMESTAMP_INVALID`.
//!
//! **The channel.** One megagroup, [`CHANNEL_ID`] with [`CHANNEL_ACCESS_HASH`], exists from the start, and every
//! user with a mailbox is a member. Chosen over `channels.createChannel`: creating channels needs membership calls
//! (invite, join) and channel objects in every answer of the dialogs API, none of which the update stream needs;
//! one fixed channel exercises the per-channel pts, the pushes and `updates.getChannelDifference`, which is what the
//! clients' update handling is about. Its pts starts at 1 (its creation, as on Telegram) and moves by 1 per message
//! sent to `inputPeerChannel`; the sender is answered `updates` with the `updateNewChannelMessage` and every other
//! member is pushed the same (`seq` 0: channel updates are outside the common seq). `updates.getChannelDifference`
//! answers `channelDifferenceEmpty`, `channelDifference` (at most `limit` messages, `final` when they reach the
//! channel's pts) and `channelDifferenceTooLong` (the dialog and the latest `limit` messages) when the client is
//! more than `too_long` behind. A channel difference carries `timeout` [`CHANNEL_TIMEOUT`].
//!
//! **Checks and bounds.** Each call is validated against the schema before its view is read
//! (`INPUT_REQUEST_INVALID`); an empty or longer-than-[`MAX_TEXT`] message, an unknown user or channel, a reused
//! `random_id` (the last [`RANDOM_IDS`] per user) get the errors Telegram gives. Mailboxes: [`MAX_MAILBOXES`]
//! (`500 USERS_TOO_MUCH` past it); history per mailbox and channel: `too_long` messages (oldest forgotten first,
//! which a client behind them sees as `differenceTooLong`); one difference: `slice` messages (a channel's: `limit`,
//! at most [`MAX_CHANNEL_LIMIT`]).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet, VecDeque};

use mtproto_sansio::tl::api::{Bare, Obj, OfType, Seq, enums, functions, types};
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
/// `random_id`s remembered per user, for `RANDOM_ID_DUPLICATE`.
pub const RANDOM_IDS: usize = 64;
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
}

/// A message and the sequence numbers it moved its mailbox to.
#[derive(Clone, Debug)]
struct Event {
    pts: i32,
    seq: i32,
    msg: Msg,
}

/// One sequence with its history: a user's common pts (and seq) or the channel's pts.
#[derive(Clone, Debug, Default)]
struct Mailbox {
    pts: i32,
    seq: i32,
    last_id: i32,
    events: VecDeque<Event>,
    /// Users whose `user` object this user was pushed (later messages from them go as `updateShortMessage`).
    known: HashSet<i64>,
    random_ids: VecDeque<i64>,
}

impl Mailbox {
    /// Adds a message (pts + 1) and keeps at most `keep` of them.
    fn add(&mut self, msg: Msg, keep: usize) -> i32 {
        self.pts += 1;
        self.events.push_back(Event {
            pts: self.pts,
            seq: self.seq,
            msg,
        });
        while self.events.len() > keep.max(1) {
            self.events.pop_front();
        }
        self.pts
    }

    /// Whether the history still holds everything after `pts`.
    fn covers(&self, pts: i32) -> bool {
        self.events.front().map_or(pts == self.pts, |e| pts >= e.pts - 1)
    }
}

/// The cluster's update state: every user's mailbox and the channel.
#[derive(Debug)]
pub struct UpdateStore {
    users: HashMap<i64, Mailbox>,
    channel: Mailbox,
    slice: usize,
    too_long: i32,
}

impl Default for UpdateStore {
    fn default() -> Self {
        UpdateStore {
            users: HashMap::new(),
            channel: Mailbox {
                pts: 1,
                ..Mailbox::default()
            },
            slice: DEFAULT_SLICE,
            too_long: DEFAULT_TOO_LONG,
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

    /// A user's (pts, seq), as `updates.getState` would answer; `None` before the user has a mailbox.
    pub fn state(&self, user: i64) -> Option<(i32, i32)> {
        self.users.get(&user).map(|m| (m.pts, m.seq))
    }

    /// The channel's pts.
    pub fn channel_pts(&self) -> i32 {
        self.channel.pts
    }

    /// The messages a user's mailbox keeps, oldest first, with the pts each moved it to.
    pub fn history(&self, user: i64) -> Vec<(i32, Msg)> {
        self.users
            .get(&user)
            .map(|m| m.events.iter().map(|e| (e.pts, e.msg.clone())).collect())
            .unwrap_or_default()
    }

    /// The channel's messages kept, oldest first, with the pts each moved it to.
    pub fn channel_history(&self) -> Vec<(i32, Msg)> {
        self.channel.events.iter().map(|e| (e.pts, e.msg.clone())).collect()
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
        Ok(self.users.entry(user).or_insert_with(|| Mailbox {
            pts: 1,
            ..Mailbox::default()
        }))
    }
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
        edit_date: None,
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

/// The `user` objects of the senders and peers of `events`, as `viewer` sees them.
fn users_of<'e>(world: &World, viewer: i64, events: impl Iterator<Item = &'e Event>) -> Vec<Vec<u8>> {
    let mut ids = Vec::new();
    for e in events {
        let peer = match e.msg.peer {
            Peer::User(id) => Some(id),
            Peer::Channel(_) => None,
        };
        for id in [Some(e.msg.from), peer].into_iter().flatten() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids.into_iter().map(|id| world.user_wire(id, viewer)).collect()
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

/// Executes `call` (method id first) for `user` at `date` if it is one of the update-stream calls: the answer and
/// the updates to push (to every live connection of their user); `None` for other calls.
pub fn execute(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    date: i32,
    call: &[u8],
) -> Option<(Reply, Vec<Push>)> {
    let id = u32::from_le_bytes(call.get(..4)?.try_into().ok()?);
    let known = [
        functions::MessagesSendMessage::ID,
        functions::UpdatesGetState::ID,
        functions::UpdatesGetDifference::ID,
        functions::UpdatesGetChannelDifference::ID,
    ];
    if !known.contains(&id) {
        return None;
    }
    if API.validate(call, Root::Function) != Ok(call.len()) {
        return Some((Reply::Error(400, "INPUT_REQUEST_INVALID"), Vec::new()));
    }
    let mut pushes = Vec::new();
    let reply = if id == functions::MessagesSendMessage::ID {
        let c: functions::MessagesSendMessage<'_> = view(call)?;
        send_message(store, world, user, date, &c, &mut pushes)
    } else if id == functions::UpdatesGetState::ID {
        match store.mailbox(user) {
            Ok(m) => answer(&types::UpdatesState {
                pts: m.pts,
                qts: 0,
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

fn send_message(
    store: &mut UpdateStore,
    world: &World,
    user: i64,
    date: i32,
    c: &functions::MessagesSendMessage<'_>,
    pushes: &mut Vec<Push>,
) -> Reply {
    if c.message.is_empty() {
        return Reply::Error(400, "MESSAGE_EMPTY");
    }
    if c.message.len() > MAX_TEXT {
        return Reply::Error(400, "MESSAGE_TOO_LONG");
    }
    let to = match c.peer.get() {
        Some(enums::InputPeer::InputPeerSelf(_)) => Peer::User(user),
        Some(enums::InputPeer::InputPeerUser(u))
            if u.user_id > 0 && (world.is_account(u.user_id) || store.users.contains_key(&u.user_id)) =>
        {
            Peer::User(u.user_id)
        }
        Some(enums::InputPeer::InputPeerChannel(ch))
            if ch.channel_id == CHANNEL_ID && ch.access_hash == CHANNEL_ACCESS_HASH =>
        {
            Peer::Channel(CHANNEL_ID)
        }
        Some(enums::InputPeer::InputPeerChannel(_)) => return Reply::Error(400, "CHANNEL_INVALID"),
        _ => return Reply::Error(400, "PEER_ID_INVALID"),
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
            let msg = Msg {
                id,
                from: user,
                peer: Peer::User(other),
                date,
                text: text.clone(),
            };
            let pts = sender.add(msg, keep);
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
                    text,
                };
                // The first message from a user the recipient was never pushed goes with its `user`, in a
                // seq-numbered `updates`; later ones as `updateShortMessage`.
                let first = rcpt.known.insert(user);
                if first {
                    rcpt.seq += 1;
                }
                let wire = message_wire(&msg, other);
                let (seq, rid) = (rcpt.seq, msg.id);
                let rpts = rcpt.add(msg, keep);
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
                pushes.push(Push { to: other, updates });
            }
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
            };
            let pts = store.channel.add(msg.clone(), keep);
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
            for &member in store.users.keys() {
                if member != user {
                    pushes.push(Push {
                        to: member,
                        updates: for_viewer(member),
                    });
                }
            }
            Reply::Result(for_viewer(user))
        }
    }
}

fn state(pts: i32, date: i32, seq: i32) -> types::UpdatesState {
    types::UpdatesState {
        pts,
        qts: 0,
        date,
        seq,
        unread_count: 0,
    }
}

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
    if c.pts < 0 || c.pts > m.pts {
        return Reply::Error(400, "PERSISTENT_TIMESTAMP_INVALID");
    }
    if c.pts == m.pts {
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
    let new: Vec<&Event> = m.events.iter().filter(|e| e.pts > c.pts).take(slice).collect();
    let Some(last) = new.last() else {
        return Reply::Error(500, "INTERNAL");
    };
    let messages: Vec<Vec<u8>> = new.iter().map(|e| message_wire(&e.msg, user)).collect();
    let users = users_of(world, user, new.iter().copied());
    let (mr, ur) = (raws(&messages), raws(&users));
    let (mo, uo) = (objs(&mr), objs(&ur));
    let none_enc: [Obj<'_, enums::EncryptedMessage<'_>>; 0] = [];
    let none_upd: [Obj<'_, enums::Update<'_>>; 0] = [];
    let none_chat: [Obj<'_, enums::Chat<'_>>; 0] = [];
    if last.pts < m.pts {
        let st = state(last.pts, last.msg.date, last.seq);
        answer(&types::UpdatesDifferenceSlice {
            new_messages: Seq::new(&mo),
            new_encrypted_messages: Seq::new(&none_enc),
            other_updates: Seq::new(&none_upd),
            chats: Seq::new(&none_chat),
            users: Seq::new(&uo),
            intermediate_state: Obj::new(&st),
        })
    } else {
        let st = state(m.pts, date, m.seq);
        answer(&types::UpdatesDifference {
            new_messages: Seq::new(&mo),
            new_encrypted_messages: Seq::new(&none_enc),
            other_updates: Seq::new(&none_upd),
            chats: Seq::new(&none_chat),
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
    match c.channel.get() {
        Some(enums::InputChannel::InputChannel(ic))
            if ic.channel_id == CHANNEL_ID && ic.access_hash == CHANNEL_ACCESS_HASH => {}
        _ => return Reply::Error(400, "CHANNEL_INVALID"),
    }
    if let Err(e) = store.mailbox(user) {
        return e;
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
    let none_upd: [Obj<'_, enums::Update<'_>>; 0] = [];
    if ch.pts - c.pts > too_long || !ch.covers(c.pts) {
        // The latest `limit` messages, newest first (as `messages.getHistory` lists them).
        let latest: Vec<&Event> = ch.events.iter().rev().take(limit).collect();
        let messages: Vec<Vec<u8>> = latest.iter().map(|e| message_wire(&e.msg, user)).collect();
        let users = users_of(world, user, latest.iter().copied());
        let (mr, ur) = (raws(&messages), raws(&users));
        let (mo, uo) = (objs(&mr), objs(&ur));
        let top = ch.events.back().map_or(0, |e| e.msg.id);
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
        let dialog = types::Dialog {
            pinned: false,
            unread_mark: false,
            view_forum_as_messages: false,
            peer: Obj::new(&peer),
            top_message: top,
            read_inbox_max_id: top,
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
    let messages: Vec<Vec<u8>> = new.iter().map(|e| message_wire(&e.msg, user)).collect();
    let users = users_of(world, user, new.iter().copied());
    let (mr, ur) = (raws(&messages), raws(&users));
    let (mo, uo) = (objs(&mr), objs(&ur));
    answer(&types::UpdatesChannelDifference {
        final_: last.pts == ch.pts,
        pts: last.pts,
        timeout: Some(CHANNEL_TIMEOUT),
        new_messages: Seq::new(&mo),
        other_updates: Seq::new(&none_upd),
        chats: Seq::new(&co),
        users: Seq::new(&uo),
    })
}
