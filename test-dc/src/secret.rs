//! One user of a secret chat relayed by the test DC: a blocking client connection (its own auth key, so its own
//! user id) driving a [`SecretChat`] through `messages.getDhConfig`, `requestEncryption`/`acceptEncryption`,
//! `sendEncrypted`/`sendEncryptedService`, `discardEncryption` and the updates the DC pushes.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::e2e::wire::{Action, DecryptedMessage, PlainMessage};
use mtproto_sansio::e2e::{self, DhConfig, DhConfigCache, KeyRequest, Received, SecretChat};
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::session::SessionConfig;
use mtproto_sansio::time::Instant;

use crate::api::{self, ChatView, InputChat, InputFile, UpdateView};
use crate::client::{self, ClientConnection, Conn, Owned};
use crate::link::Transport;

/// The api layer claimed in `invokeWithLayer`.
pub const LAYER: i32 = 229;
/// Random bytes asked of `messages.getDhConfig` (mixed into the DH exponent).
pub const DH_RANDOM_LEN: i32 = 256;
/// Largest `sendEncrypted` payload built here.
pub const MAX_DATA: usize = e2e::DEFAULT_MAX_MESSAGE + 2 * e2e::HEADER_LEN + e2e::MAX_PADDING;
/// How long one call or wait may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The chat state, with the crate's default bounds.
pub type Chat = SecretChat;

/// Why a step failed.
pub type Error = Box<dyn std::error::Error>;

/// What a party received, in delivery order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// A text message.
    Text(String),
    /// A service message, named (`notifyLayer 144`, `requestKey`...).
    Service(String),
    /// A re-key finished; the new key's fingerprint.
    RekeyDone(i64),
    /// The peer discarded the chat.
    Discarded,
    /// The message before this one came with an encrypted file (`sendEncryptedFile`).
    File(api::FileView),
}

/// When [`Party::receive`] may stop, given what it received so far.
pub type Until<'a> = dyn Fn(&[Got]) -> bool + 'a;

/// One user: a connection, its session, and at most one secret chat.
pub struct Party {
    /// A name for transcripts.
    pub name: &'static str,
    /// The DC's user id of this party's auth key.
    pub user_id: i64,
    conn: Conn,
    engine: Box<ClientConnection>,
    cache: DhConfigCache,
    updates: VecDeque<Vec<u8>>,
    pending: Option<KeyRequest>,
    /// The chat, once the key exchange is done.
    pub chat: Option<Box<Chat>>,
    /// The chat as `inputEncryptedChat`.
    pub peer: Option<InputChat>,
    /// `sendEncryptedService` calls made (protocol messages: layer, re-key steps, resend requests).
    pub service_sent: usize,
    /// When this party started its part of the key exchange (for the transcript's timing).
    pub started: Option<std::time::Instant>,
}

fn rpc(ev: Owned) -> Result<Vec<u8>, Error> {
    match ev {
        Owned::Result(_, b) => Ok(b),
        Owned::Error(_, code, msg) => Err(format!("rpc_error {code} {msg}").into()),
        other => Err(format!("unexpected answer {other:?}").into()),
    }
}

/// Protocol messages get readable names in transcripts.
fn action_name(a: &Action<'_>) -> String {
    match a {
        Action::NotifyLayer(l) => format!("notifyLayer {l}"),
        Action::RequestKey { exchange_id, .. } => format!("requestKey {:04x}…", (*exchange_id as u64) >> 48),
        Action::AcceptKey { exchange_id, .. } => format!("acceptKey {:04x}…", (*exchange_id as u64) >> 48),
        Action::CommitKey { exchange_id, .. } => format!("commitKey {:04x}…", (*exchange_id as u64) >> 48),
        Action::AbortKey(x) => format!("abortKey {:04x}…", (*x as u64) >> 48),
        Action::Noop => "noop".into(),
        Action::Resend {
            start_seq_no,
            end_seq_no,
        } => format!("resend {start_seq_no}..={end_seq_no}"),
        other => format!("{other:?}"),
    }
}

fn got_of(m: &DecryptedMessage<'_>) -> Got {
    match m {
        DecryptedMessage::Message(p) => Got::Text(String::from_utf8_lossy(p.message).into_owned()),
        DecryptedMessage::Service { action, .. } => Got::Service(action_name(action)),
    }
}

impl Party {
    /// Connects, creates an auth key, and makes a first call (`invokeWithLayer(initConnection(getDhConfig))`),
    /// which makes the user known to the DC and this connection the one its updates go to.
    pub fn connect<R: CryptoRng + ?Sized>(
        name: &'static str,
        dc: SocketAddr,
        public: RsaPublicKey,
        rng: &mut R,
    ) -> Result<Self, Error> {
        let mut conn = Conn::connect(dc, Transport::DEFAULT, None, rng)?;
        let keys = [public];
        let cfg = SessionConfig {
            ping_interval: None,
            ..SessionConfig::DEFAULT
        };
        let (engine, out) = conn.handshake(cfg, ClientConfig::new(&keys, 2), rng)?;
        let user_id = api::user_id_of(out.auth_key.id());
        let mut p = Party {
            name,
            user_id,
            conn,
            engine,
            cache: DhConfigCache::new(),
            updates: VecDeque::new(),
            pending: None,
            chat: None,
            peer: None,
            service_sent: 0,
            started: None,
        };
        let first = api::with_init_connection(LAYER, &api::get_dh_config(0, 0));
        let body = p.call(rng, &first)?;
        api::parse_dh_config(&body).map_err(|e| format!("dhConfig: {e}"))?;
        Ok(p)
    }

    /// One RPC; updates that arrive meanwhile are kept for [`Party::receive`].
    pub fn call<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, body: &[u8]) -> Result<Vec<u8>, Error> {
        let updates = &mut self.updates;
        let ev = self.conn.call(&mut self.engine, rng, body, TIMEOUT, &mut |ev| {
            if let Owned::Update(u) = ev {
                updates.push_back(u);
            }
        })?;
        rpc(ev)
    }

    /// Pumps the connection until an update is queued.
    fn next_update<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, deadline: Instant) -> Result<Vec<u8>, Error> {
        loop {
            if let Some(u) = self.updates.pop_front() {
                return Ok(u);
            }
            if client::now() >= deadline {
                return Err(format!("{}: no update in time", self.name).into());
            }
            for ev in self.conn.pump(&mut self.engine, rng, deadline)? {
                if let Owned::Update(u) = ev {
                    self.updates.push_back(u);
                }
            }
        }
    }

    /// Waits for the next `updateEncryption` and hands its chat to `f`.
    fn next_chat_update<R: CryptoRng + ?Sized, T>(
        &mut self,
        rng: &mut R,
        f: impl FnOnce(&mut Self, ChatView<'_>, &mut R) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let deadline = client::now().saturating_add(TIMEOUT);
        loop {
            let raw = self.next_update(rng, deadline)?;
            let ups = api::parse_updates(&raw).map_err(|e| format!("updates: {e}"))?;
            if let Some(UpdateView::Encryption(chat)) = ups.into_iter().next() {
                return f(self, chat, rng);
            }
        }
    }

    /// `messages.getDhConfig` with our cached version, checked into the cache; `f` gets the config.
    fn with_dh_config<R: CryptoRng + ?Sized, T>(
        &mut self,
        rng: &mut R,
        f: impl FnOnce(&mut DhConfigCache, &DhConfig<'_>, &mut R) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let version = self.cache.version();
        let body = self.call(rng, &api::get_dh_config(version, DH_RANDOM_LEN))?;
        let v = api::parse_dh_config(&body).map_err(|e| format!("dhConfig: {e}"))?;
        let cfg = DhConfig {
            version: v.version.unwrap_or(version),
            g: v.g.and_then(|g| u32::try_from(g).ok()).unwrap_or(0),
            p: v.p,
            random: v.random,
        };
        f(&mut self.cache, &cfg, rng)
    }

    /// Initiator: `getDhConfig`, then `requestEncryption` to `user_id`; the chat waits for the peer.
    pub fn request<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, user_id: i64) -> Result<InputChat, Error> {
        self.started = Some(std::time::Instant::now());
        let (kr, g_a) = self.with_dh_config(rng, |cache, cfg, rng| Ok(Chat::request(rng, cache, cfg)?))?;
        let random_id = i32::try_from(rng.next_u32() >> 1).unwrap_or(1);
        let body = self.call(rng, &api::request_encryption(user_id, random_id, &g_a))?;
        match api::parse_encrypted_chat(&body).map_err(|e| format!("EncryptedChat: {e}"))? {
            ChatView::Waiting { peer, .. } => {
                self.pending = Some(kr);
                self.peer = Some(peer);
                Ok(peer)
            }
            other => Err(format!("requestEncryption answered {other:?}").into()),
        }
    }

    /// Acceptor: waits for `updateEncryption(encryptedChatRequested)`, `getDhConfig`, computes the key and calls
    /// `acceptEncryption`. Returns the chat id and the admin's user id.
    pub fn accept<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<(InputChat, i64), Error> {
        let (peer, admin, g_a) = self.next_chat_update(rng, |_, chat, _| match chat {
            ChatView::Requested {
                peer, admin_id, g_a, ..
            } => Ok((peer, admin_id, g_a.to_vec())),
            other => Err(format!("expected encryptedChatRequested, got {other:?}").into()),
        })?;
        self.started = Some(std::time::Instant::now());
        let now = client::now();
        let (chat, g_b, fp) = self.with_dh_config(rng, |cache, cfg, rng| {
            Ok(Chat::accept(rng, now, peer.chat_id, cache, cfg, &g_a)?)
        })?;
        let body = self.call(rng, &api::accept_encryption(peer, &g_b, fp))?;
        match api::parse_encrypted_chat(&body).map_err(|e| format!("EncryptedChat: {e}"))? {
            ChatView::Ready { key_fingerprint, .. } if key_fingerprint == fp => {}
            other => return Err(format!("acceptEncryption answered {other:?}").into()),
        }
        self.chat = Some(Box::new(chat));
        self.peer = Some(peer);
        self.flush(rng)?;
        Ok((peer, admin))
    }

    /// Initiator: waits for `updateEncryption(encryptedChat)` and completes the key (fingerprint checked).
    pub fn complete<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<(), Error> {
        let (chat_id, g_b, fp) = self.next_chat_update(rng, |_, chat, _| match chat {
            ChatView::Ready {
                peer,
                g_a_or_b,
                key_fingerprint,
                ..
            } => Ok((peer.chat_id, g_a_or_b.to_vec(), key_fingerprint)),
            other => Err(format!("expected encryptedChat, got {other:?}").into()),
        })?;
        let kr = self.pending.take().ok_or("no pending request")?;
        self.chat = Some(Box::new(kr.complete(client::now(), chat_id, &g_b, fp)?));
        self.flush(rng)?;
        Ok(())
    }

    fn send_data<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        random_id: i64,
        data: &[u8],
        service: bool,
    ) -> Result<(), Error> {
        let peer = self.peer.ok_or("no chat")?;
        let body = self.call(rng, &api::send_encrypted(peer, random_id, data, service))?;
        api::parse_sent_encrypted(&body).map_err(|e| format!("SentEncryptedMessage: {e}"))?;
        self.service_sent += usize::from(service);
        Ok(())
    }

    /// Sends what the chat's state machine has to say (layer, re-key steps, resend answers) with
    /// `sendEncryptedService`/`sendEncrypted`.
    pub fn flush<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<(), Error> {
        let mut buf = vec![0u8; MAX_DATA];
        loop {
            let chat = self.chat.as_mut().ok_or("no chat")?;
            let Some(s) = chat.poll_transmit(rng, client::now(), &mut buf)? else {
                return Ok(());
            };
            let data = buf.get(..s.len).ok_or("short buffer")?.to_vec();
            self.send_data(rng, s.random_id, &data, s.service)?;
        }
    }

    /// Encrypts a text message and sends it with `sendEncryptedFile` and `file` (parts saved before with
    /// `upload.saveFilePart`); returns the file as the DC stored it.
    pub fn say_with_file<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        text: &str,
        file: InputFile,
    ) -> Result<api::FileView, Error> {
        let mut buf = vec![0u8; MAX_DATA];
        let random_id = rng.next_u64() as i64;
        let msg = DecryptedMessage::Message(PlainMessage::text(random_id, 0, text.as_bytes()));
        let s = self.chat.as_mut().ok_or("no chat")?.encrypt(rng, &msg, &mut buf)?;
        let data = buf.get(..s.len).ok_or("short buffer")?.to_vec();
        let peer = self.peer.ok_or("no chat")?;
        let body = self.call(rng, &api::send_encrypted_file(peer, s.random_id, &data, file, false))?;
        let (_, f) = api::parse_sent_encrypted(&body).map_err(|e| format!("SentEncryptedMessage: {e}"))?;
        let f = f.ok_or("sendEncryptedFile answered without a file")?;
        self.flush(rng)?;
        Ok(f)
    }

    /// Encrypts and sends a text message.
    pub fn say<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, text: &str) -> Result<(), Error> {
        let mut buf = vec![0u8; MAX_DATA];
        let random_id = rng.next_u64() as i64;
        let msg = DecryptedMessage::Message(PlainMessage::text(random_id, 0, text.as_bytes()));
        let s = self.chat.as_mut().ok_or("no chat")?.encrypt(rng, &msg, &mut buf)?;
        let data = buf.get(..s.len).ok_or("short buffer")?.to_vec();
        self.send_data(rng, s.random_id, &data, s.service)?;
        self.flush(rng)
    }

    /// Starts a re-key (the chat sends `requestKey` through `sendEncryptedService`).
    pub fn rekey<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<(), Error> {
        self.chat.as_mut().ok_or("no chat")?.start_rekey(rng)?;
        self.flush(rng)
    }

    fn drain_events(&mut self, got: &mut Vec<Got>) -> Result<(), Error> {
        let Some(chat) = self.chat.as_mut() else { return Ok(()) };
        while let Some(ev) = chat.poll_event() {
            match ev {
                e2e::Event::Message(d) => got.push(got_of(&d.message)),
                e2e::Event::RekeyDone(fp) => got.push(Got::RekeyDone(fp)),
                e2e::Event::Aborted(r) => return Err(format!("chat aborted: {r:?}").into()),
                e2e::Event::PeerLayer(_) | e2e::Event::RekeyAborted(_) => {}
            }
        }
        Ok(())
    }

    /// Decrypts one pushed `Updates`, answering what the state machine wants answered.
    fn handle<R: CryptoRng + ?Sized>(&mut self, raw: &[u8], rng: &mut R, got: &mut Vec<Got>) -> Result<(), Error> {
        for u in api::parse_updates(raw).map_err(|e| format!("updates: {e}"))? {
            match u {
                UpdateView::NewEncrypted {
                    chat_id, bytes, file, ..
                } => {
                    let chat = self.chat.as_mut().ok_or("message for no chat")?;
                    let mut buf = bytes.to_vec();
                    match chat.decrypt(client::now(), chat_id, &mut buf)? {
                        Received::Message(d) => got.push(got_of(&d.message)),
                        Received::Held | Received::Duplicate | Received::Deferred => {}
                    }
                    if let Some(f) = file {
                        got.push(Got::File(f));
                    }
                    self.drain_events(got)?;
                    self.flush(rng)?;
                    // Sending can finish a re-key (commitKey switches keys as it goes out).
                    self.drain_events(got)?;
                }
                UpdateView::Encryption(ChatView::Discarded { .. }) => {
                    if let Some(c) = self.chat.as_mut() {
                        c.abort();
                    }
                    got.push(Got::Discarded);
                }
                UpdateView::Encryption(_) => {}
            }
        }
        Ok(())
    }

    /// Handles pushed updates until `done` holds for what was received so far (or nothing more arrives within
    /// `quiet`, when `done` is `None`).
    pub fn receive<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        done: Option<&Until<'_>>,
        quiet: Duration,
    ) -> Result<Vec<Got>, Error> {
        let mut got = Vec::new();
        let deadline = client::now().saturating_add(TIMEOUT);
        loop {
            if done.is_some_and(|f| f(&got)) {
                return Ok(got);
            }
            let wait = match done {
                Some(_) => deadline,
                None => client::now().saturating_add(quiet),
            };
            match self.next_update(rng, wait) {
                Ok(raw) => self.handle(&raw, rng, &mut got)?,
                Err(_) if done.is_none() => return Ok(got),
                Err(e) => return Err(format!("{e}; got so far {got:?}").into()),
            }
        }
    }

    /// Waits for the peer's next text message (`encryptedMessage`, not a service one) and throws it away undecrypted,
    /// as a relay that lost it: the peer's next message then opens a seq_no gap. Updates before it are handled as in
    /// [`Party::receive`]; what they delivered is returned.
    pub fn drop_next_message<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<Vec<Got>, Error> {
        let mut got = Vec::new();
        let deadline = client::now().saturating_add(TIMEOUT);
        loop {
            let raw = self.next_update(rng, deadline)?;
            let ups = api::parse_updates(&raw).map_err(|e| format!("updates: {e}"))?;
            if ups
                .iter()
                .any(|u| matches!(u, UpdateView::NewEncrypted { service: false, .. }))
            {
                return Ok(got);
            }
            self.handle(&raw, rng, &mut got)?;
        }
    }

    /// Encrypts a text message and never sends it (a message the relay lost on the way out): the chat's seq_no moves
    /// on, so the peer sees a gap at our next message and must ask for this one again.
    pub fn lose_one<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, text: &str) -> Result<(), Error> {
        let mut buf = vec![0u8; MAX_DATA];
        let random_id = rng.next_u64() as i64;
        let msg = DecryptedMessage::Message(PlainMessage::text(random_id, 0, text.as_bytes()));
        self.chat.as_mut().ok_or("no chat")?.encrypt(rng, &msg, &mut buf)?;
        Ok(())
    }

    /// `messages.discardEncryption` for the chat.
    pub fn discard<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<(), Error> {
        let peer = self.peer.ok_or("no chat")?;
        let body = self.call(rng, &api::discard_encryption(peer.chat_id, false))?;
        if !api::is_bool_true(&body) {
            return Err("discardEncryption did not answer boolTrue".into());
        }
        if let Some(c) = self.chat.as_mut() {
            c.abort();
        }
        Ok(())
    }
}
