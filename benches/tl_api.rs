//! The generated Telegram API (`tl::api`, borrowed views) beside grammers-tl-types 0.11 (owned decode), in the
//! same run. Built by the `comparison/` workspace crate (grammers-tl-types is one ~80 s rustc):
//! `cargo bench -p mtproto-sansio-comparison --bench tl_api` (append `-- summary` for the summary lines alone).
//!
//! Workloads (both crates speak the same constructors: `message#7600b9d3`, `user#b1b8cc83`, `channel#d49f34c6`):
//! - `messages.messages` of 100 messages (from a user in a channel, ~90 bytes of text, two entities, views), 50
//!   users (names, username, online status) and 20 channels;
//! - an `updates` of 50 `updateNewMessage`, 10 users and 5 channels;
//! - encoding `messages.sendMessage` (a user peer, ~90 bytes of text, two entities).
//!
//! A decode here is the whole read a client does: ours validates the buffer against the schema, then walks every
//! message, user and chat through the views (ids, text, entities), so both sides touch the same fields; grammers
//! deserializes into owned enums and the same fields are read from them. Ours reads its vectors with
//! `Seq::decoded` (each element read once); the "(Obj views)" rows read them through `Seq::iter` and `Obj::get`
//! (each element's end found, then the element read). Allocations are counted by this binary's
//! global allocator over one operation of each kind (ours must be zero). Timings are ns/op, best of interleaved
//! rounds (`TL_ROUNDS`, default 20, of 200 ops each).
//!
//! `-- profile N` runs op N of the summary (0: our `messages.messages`, 3: our `updates`, 8 and 9 the same with
//! `Boxed::decode_in`) 1,000 times and nothing
//! else, for a profiler: `valgrind --tool=callgrind target/release/deps/tl_api-* profile 0`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::Criterion;
use grammers_tl_types::{self as gt, Deserializable, Serializable};
use mtproto_sansio::tl::api::{Boxed, Obj, Seq, enums, functions, types};
use mtproto_sansio::tl::layout::Mark;
use mtproto_sansio::tl::{self, TlWrite};

/// Counts every allocation of this process (the figures count those made between two reads).
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs_of<R>(f: impl FnOnce() -> R) -> usize {
    let before = ALLOCS.load(Ordering::SeqCst);
    black_box(f());
    ALLOCS.load(Ordering::SeqCst) - before
}

const TEXT: &[u8] = b"Hello from the benchmark: a message of about ninety bytes, with **bold** and a link https://t.me";

fn user(id: i64, first: &'static [u8], status: &'static enums::UserStatus) -> types::User<'static> {
    types::User {
        self_: false,
        contact: id % 3 == 0,
        mutual_contact: false,
        deleted: false,
        bot_chat_history: false,
        bot_nochats: false,
        verified: false,
        min: false,
        bot_inline_geo: false,
        support: false,
        scam: false,
        apply_min_photo: false,
        fake: false,
        bot_attach_menu: false,
        premium: id % 2 == 0,
        attach_menu_enabled: false,
        bot_can_edit: false,
        close_friend: false,
        stories_hidden: false,
        stories_unavailable: false,
        contact_require_premium: false,
        bot_business: false,
        bot_has_main_app: false,
        bot_forum_view: false,
        bot_forum_can_manage_topics: false,
        bot_can_manage_bots: false,
        bot_guestchat: false,
        bot_guard: false,
        id,
        access_hash: Some(id.wrapping_mul(0x9e37_79b9)),
        first_name: Some(first),
        last_name: Some(b"Benchmark"),
        username: Some(b"bench_user"),
        phone: None,
        photo: None,
        status: Some(Obj::new(status)),
        bot_info_version: None,
        restriction_reason: None,
        bot_inline_placeholder: None,
        lang_code: Some(b"en"),
        emoji_status: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        bot_active_users: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_community_id: None,
    }
}

fn channel(id: i64, photo: &'static enums::ChatPhoto<'static>) -> types::Channel<'static> {
    types::Channel {
        creator: false,
        left: false,
        broadcast: id % 2 == 0,
        verified: false,
        megagroup: id % 2 == 1,
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
        id,
        access_hash: Some(id ^ 0x5555),
        title: b"Benchmark channel",
        username: Some(b"bench_channel"),
        photo: Obj::new(photo),
        date: 1_700_000_000,
        restriction_reason: None,
        admin_rights: None,
        banned_rights: None,
        default_banned_rights: None,
        participants_count: Some(1234),
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
    }
}

fn message<'a>(
    id: i32,
    from: &'a enums::Peer,
    peer: &'a enums::Peer,
    entities: &'a [Obj<'a, enums::MessageEntity<'a>>],
) -> types::Message<'a> {
    types::Message {
        out: false,
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
        id,
        from_id: Some(Obj::new(from)),
        from_boosts_applied: None,
        from_rank: None,
        peer_id: Obj::new(peer),
        saved_peer_id: None,
        fwd_from: None,
        via_bot_id: None,
        via_business_bot_id: None,
        guestchat_via_from: None,
        reply_to: None,
        date: 1_700_000_000 + id,
        message: TEXT,
        media: None,
        reply_markup: None,
        entities: Some(Seq::new(entities)),
        views_and_forwards: Some((100 + id, 2)),
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
    }
}

static STATUS: enums::UserStatus =
    enums::UserStatus::UserStatusOnline(types::UserStatusOnline { expires: 1_700_000_600 });
static PHOTO: enums::ChatPhoto<'static> = enums::ChatPhoto::ChatPhotoEmpty(types::ChatPhotoEmpty {});
const BOLD: enums::MessageEntity<'static> =
    enums::MessageEntity::MessageEntityBold(types::MessageEntityBold { offset: 40, length: 8 });
const URL: enums::MessageEntity<'static> =
    enums::MessageEntity::MessageEntityUrl(types::MessageEntityUrl { offset: 75, length: 14 });

fn encode<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    tl::encode(v, &mut out).unwrap();
    out
}

/// `messages.messages` (100 messages, 50 users, 20 chats) and `updates` (50 updates, 10 users, 5 chats).
fn fixtures() -> (Vec<u8>, Vec<u8>) {
    let entities = [Obj::new(&BOLD), Obj::new(&URL)];
    let froms: Vec<enums::Peer> = (0..100)
        .map(|i| enums::Peer::PeerUser(types::PeerUser { user_id: 1000 + i % 50 }))
        .collect();
    let peers: Vec<enums::Peer> = (0..100)
        .map(|i| {
            enums::Peer::PeerChannel(types::PeerChannel {
                channel_id: 5000 + i % 20,
            })
        })
        .collect();
    let msgs: Vec<enums::Message<'_>> = (0..100)
        .map(|i| enums::Message::Message(message(i as i32 + 1, &froms[i], &peers[i], &entities)))
        .collect();
    let names: Vec<&'static [u8]> = vec![b"Alice", b"Bob", b"Carol", b"Dave", b"Eve"];
    let users: Vec<enums::User<'_>> = (0..50)
        .map(|i| enums::User::User(user(1000 + i, names[i as usize % names.len()], &STATUS)))
        .collect();
    let chats: Vec<enums::Chat<'_>> = (0..20)
        .map(|i| enums::Chat::Channel(channel(5000 + i, &PHOTO)))
        .collect();
    let m: Vec<Obj<'_, enums::Message<'_>>> = msgs.iter().map(Obj::new).collect();
    let u: Vec<Obj<'_, enums::User<'_>>> = users.iter().map(Obj::new).collect();
    let c: Vec<Obj<'_, enums::Chat<'_>>> = chats.iter().map(Obj::new).collect();
    let messages = encode(&types::MessagesMessages {
        messages: Seq::new(&m),
        topics: Seq::new(&[]),
        chats: Seq::new(&c),
        users: Seq::new(&u),
    });
    let ups: Vec<enums::Update<'_>> = m[..50]
        .iter()
        .enumerate()
        .map(|(i, msg)| {
            enums::Update::UpdateNewMessage(types::UpdateNewMessage {
                message: *msg,
                pts: 10 + i as i32,
                pts_count: 1,
            })
        })
        .collect();
    let up: Vec<Obj<'_, enums::Update<'_>>> = ups.iter().map(Obj::new).collect();
    let updates = encode(&types::Updates {
        updates: Seq::new(&up),
        users: Seq::new(&u[..10]),
        chats: Seq::new(&c[..5]),
        date: 1_700_000_000,
        seq: 0,
    });
    (messages, updates)
}

/// Reads what a client reads of a message: id, text, entities, sender.
fn ours_message(m: enums::Message<'_>) -> u64 {
    match m {
        enums::Message::Message(m) => {
            let ents = m.entities.map_or(0, |e| e.decoded().count());
            let from = match m.from_id.and_then(|f| f.get()) {
                Some(enums::Peer::PeerUser(p)) => p.user_id as u64,
                _ => 0,
            };
            m.id as u64 + m.message.len() as u64 + ents as u64 + from
        }
        _ => 0,
    }
}

fn ours_user(u: enums::User<'_>) -> u64 {
    match u {
        enums::User::User(u) => u.id as u64 + u.first_name.map_or(0, |n| n.len() as u64),
        _ => 0,
    }
}

fn ours_chat(c: enums::Chat<'_>) -> u64 {
    match c {
        enums::Chat::Channel(c) => c.id as u64 + c.title.len() as u64,
        _ => 0,
    }
}

/// Ours as a client reads a result: validated once, every vector read with `Seq::decoded` (each element read
/// once, straight from the wire).
fn ours_messages(buf: &[u8]) -> u64 {
    match enums::MessagesMessages::decode(buf).unwrap() {
        enums::MessagesMessages::MessagesMessages(m) => {
            m.messages.decoded().map(ours_message).sum::<u64>()
                + m.users.decoded().map(ours_user).sum::<u64>()
                + m.chats.decoded().map(ours_chat).sum::<u64>()
        }
        _ => 0,
    }
}

fn ours_updates(buf: &[u8]) -> u64 {
    match enums::Updates::decode(buf).unwrap() {
        enums::Updates::Updates(u) => {
            u.updates
                .decoded()
                .map(|x| match x {
                    enums::Update::UpdateNewMessage(n) => n.message.get().map_or(0, ours_message) + n.pts as u64,
                    _ => 0,
                })
                .sum::<u64>()
                + u.users.decoded().map(ours_user).sum::<u64>()
                + u.chats.decoded().map(ours_chat).sum::<u64>()
        }
        _ => 0,
    }
}

/// Ours with the ends of every nested value kept by the validation (`Boxed::decode_in`, a caller's scratch):
/// nothing is walked to find where it ends (an `updateNewMessage`'s message included).
fn ours_messages_in(buf: &[u8], ends: &mut [Mark]) -> u64 {
    match enums::MessagesMessages::decode_in(buf, ends).unwrap() {
        enums::MessagesMessages::MessagesMessages(m) => {
            m.messages.decoded().map(ours_message).sum::<u64>()
                + m.users.decoded().map(ours_user).sum::<u64>()
                + m.chats.decoded().map(ours_chat).sum::<u64>()
        }
        _ => 0,
    }
}

fn ours_updates_in(buf: &[u8], ends: &mut [Mark]) -> u64 {
    match enums::Updates::decode_in(buf, ends).unwrap() {
        enums::Updates::Updates(u) => {
            u.updates
                .decoded()
                .map(|x| match x {
                    enums::Update::UpdateNewMessage(n) => n.message.get().map_or(0, ours_message) + n.pts as u64,
                    _ => 0,
                })
                .sum::<u64>()
                + u.users.decoded().map(ours_user).sum::<u64>()
                + u.chats.decoded().map(ours_chat).sum::<u64>()
        }
        _ => 0,
    }
}

/// The same reads through the `Obj` views of `Seq::iter` (each element found, then read: two walks of it).
fn ours_message_obj(m: Obj<'_, enums::Message<'_>>) -> u64 {
    match m.get() {
        Some(enums::Message::Message(m)) => {
            let ents = m.entities.map_or(0, |e| e.iter().filter_map(|e| e.get()).count());
            let from = match m.from_id.and_then(|f| f.get()) {
                Some(enums::Peer::PeerUser(p)) => p.user_id as u64,
                _ => 0,
            };
            m.id as u64 + m.message.len() as u64 + ents as u64 + from
        }
        _ => 0,
    }
}

fn ours_messages_obj(buf: &[u8]) -> u64 {
    match enums::MessagesMessages::decode(buf).unwrap() {
        enums::MessagesMessages::MessagesMessages(m) => {
            m.messages.iter().map(ours_message_obj).sum::<u64>()
                + m.users.iter().filter_map(|u| u.get()).map(ours_user).sum::<u64>()
                + m.chats.iter().filter_map(|c| c.get()).map(ours_chat).sum::<u64>()
        }
        _ => 0,
    }
}

fn ours_updates_obj(buf: &[u8]) -> u64 {
    match enums::Updates::decode(buf).unwrap() {
        enums::Updates::Updates(u) => {
            u.updates
                .iter()
                .map(|x| match x.get() {
                    Some(enums::Update::UpdateNewMessage(n)) => ours_message_obj(n.message) + n.pts as u64,
                    _ => 0,
                })
                .sum::<u64>()
                + u.users.iter().filter_map(|u| u.get()).map(ours_user).sum::<u64>()
                + u.chats.iter().filter_map(|c| c.get()).map(ours_chat).sum::<u64>()
        }
        _ => 0,
    }
}

fn gt_message(m: &gt::enums::Message) -> u64 {
    match m {
        gt::enums::Message::Message(m) => {
            let ents = m.entities.as_ref().map_or(0, Vec::len);
            let from = match &m.from_id {
                Some(gt::enums::Peer::User(p)) => p.user_id as u64,
                _ => 0,
            };
            m.id as u64 + m.message.len() as u64 + ents as u64 + from
        }
        _ => 0,
    }
}

fn gt_user(u: &gt::enums::User) -> u64 {
    match u {
        gt::enums::User::User(u) => u.id as u64 + u.first_name.as_ref().map_or(0, |n| n.len() as u64),
        _ => 0,
    }
}

fn gt_chat(c: &gt::enums::Chat) -> u64 {
    match c {
        gt::enums::Chat::Channel(c) => c.id as u64 + c.title.len() as u64,
        _ => 0,
    }
}

fn grammers_messages(buf: &[u8]) -> u64 {
    match gt::enums::messages::Messages::from_bytes(buf).unwrap() {
        gt::enums::messages::Messages::Messages(m) => {
            m.messages.iter().map(gt_message).sum::<u64>()
                + m.users.iter().map(gt_user).sum::<u64>()
                + m.chats.iter().map(gt_chat).sum::<u64>()
        }
        _ => 0,
    }
}

fn grammers_updates(buf: &[u8]) -> u64 {
    match gt::enums::Updates::from_bytes(buf).unwrap() {
        gt::enums::Updates::Updates(u) => {
            u.updates
                .iter()
                .map(|x| match x {
                    gt::enums::Update::NewMessage(n) => gt_message(&n.message) + n.pts as u64,
                    _ => 0,
                })
                .sum::<u64>()
                + u.users.iter().map(gt_user).sum::<u64>()
                + u.chats.iter().map(gt_chat).sum::<u64>()
        }
        _ => 0,
    }
}

/// `messages.sendMessage` into a caller's stack buffer: its length.
fn ours_send(random_id: i64) -> usize {
    let peer = types::InputPeerUser {
        user_id: 1000,
        access_hash: 0x1234_5678,
    };
    let entities = [Obj::new(&BOLD), Obj::new(&URL)];
    let call = functions::MessagesSendMessage {
        no_webpage: true,
        clear_draft: true,
        entities: Some(Seq::new(&entities)),
        ..functions::MessagesSendMessage::new(Obj::new(&peer), TEXT, random_id)
    };
    let mut buf = [0u8; 256];
    let n = tl::encode(&call, &mut buf).unwrap();
    black_box(&buf[..n]);
    n
}

/// The same call as grammers builds it (`to_bytes`, an owned `Vec`, as its client does).
fn grammers_send(random_id: i64) -> usize {
    let call = gt::functions::messages::SendMessage {
        no_webpage: true,
        silent: false,
        background: false,
        clear_draft: true,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer: gt::enums::InputPeer::User(gt::types::InputPeerUser {
            user_id: 1000,
            access_hash: 0x1234_5678,
        }),
        reply_to: None,
        message: String::from_utf8(TEXT.to_vec()).unwrap(),
        random_id,
        reply_markup: None,
        entities: Some(vec![
            gt::enums::MessageEntity::Bold(gt::types::MessageEntityBold { offset: 40, length: 8 }),
            gt::enums::MessageEntity::Url(gt::types::MessageEntityUrl { offset: 75, length: 14 }),
        ]),
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
        rich_message: None,
    };
    let v = call.to_bytes();
    black_box(&v);
    v.len()
}

type Op<'a> = (&'static str, Box<dyn Fn() -> u64 + 'a>);

fn ops<'a>(messages: &'a [u8], updates: &'a [u8]) -> Vec<Op<'a>> {
    // The decode_in scratch, one for the whole run (a client keeps one beside its receive buffer): 4,096 ends, of
    // which `messages.messages` fills about 900. Made here, so no op allocates.
    let scratch: &'a RefCell<Vec<Mark>> = Box::leak(Box::new(RefCell::new(vec![Mark::default(); 4096])));
    vec![
        (
            "messages.messages decode ours",
            Box::new(move || ours_messages(messages)),
        ),
        (
            "messages.messages decode ours (Obj views)",
            Box::new(move || ours_messages_obj(messages)),
        ),
        (
            "messages.messages decode grammers",
            Box::new(move || grammers_messages(messages)),
        ),
        ("updates decode ours", Box::new(move || ours_updates(updates))),
        (
            "updates decode ours (Obj views)",
            Box::new(move || ours_updates_obj(updates)),
        ),
        ("updates decode grammers", Box::new(move || grammers_updates(updates))),
        ("sendMessage encode ours", Box::new(|| ours_send(7) as u64)),
        ("sendMessage encode grammers", Box::new(|| grammers_send(7) as u64)),
        (
            "messages.messages decode_in ours",
            Box::new(move || ours_messages_in(messages, &mut scratch.borrow_mut())),
        ),
        (
            "updates decode_in ours",
            Box::new(move || ours_updates_in(updates, &mut scratch.borrow_mut())),
        ),
    ]
}

/// Which ops are compared (ours, grammers); every op of a group reads the same values.
const PAIRS: [(usize, usize); 7] = [(0, 2), (1, 2), (3, 5), (4, 5), (6, 7), (8, 2), (9, 5)];

/// Best ns/op of interleaved rounds, allocations per op, and the ours/grammers ratios.
fn summary(messages: &[u8], updates: &[u8]) {
    let ops = ops(messages, updates);
    // Both sides read the same values.
    for &(a, b) in &PAIRS {
        assert_eq!(ops[a].1(), ops[b].1(), "{} and {} disagree", ops[a].0, ops[b].0);
    }
    let rounds: usize = std::env::var("TL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    const PER_ROUND: u32 = 200;
    let mut best = vec![f64::INFINITY; ops.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in ops.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..PER_ROUND {
                black_box(f());
            }
            best[i] = best[i].min(t.elapsed().as_nanos() as f64 / f64::from(PER_ROUND));
        }
    }
    println!(
        "tl_api: messages.messages {} bytes, updates {} bytes",
        messages.len(),
        updates.len()
    );
    for (i, (name, f)) in ops.iter().enumerate() {
        let allocs = allocs_of(f);
        println!("tl_api: {name:<42} {:>10.0} ns/op {allocs:>5} allocations/op", best[i]);
    }
    for &(a, b) in &PAIRS {
        println!("tl_api: {}: {:.1}x faster than grammers", ops[a].0, best[b] / best[a]);
    }
    for (name, f) in ops.iter().filter(|(n, _)| n.contains("ours")) {
        assert_eq!(allocs_of(f), 0, "{name} allocated");
    }
}

fn main() {
    let (messages, updates) = fixtures();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "profile") {
        let n: usize = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let ops = ops(&messages, &updates);
        for _ in 0..1000 {
            black_box(ops[n].1());
        }
        return;
    }
    summary(&messages, &updates);
    if std::env::args().any(|a| a == "summary") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("tl_api");
    for (name, f) in ops(&messages, &updates) {
        g.bench_function(name, |b| b.iter(&f));
    }
    g.finish();
    c.final_summary();
}
