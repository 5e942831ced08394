//! What a client keeps across restarts, and the one boundary through which the host stores it.
//!
//! **Where the data comes from and goes.** A [`Record`] is filled by the host's client loop from what the other
//! machines report: an auth key when a handshake on a DC finishes (`Event::AuthKeyReady`), the current salt and the
//! clock offset of that DC's session, the home DC from the [`Router`](super::router::Router) after a migration, the
//! signed-in user from [`SignIn`](super::signin) (`Stage::SignedIn`), which DCs hold a copy of the authorization
//! (`Router::imported`), the DC list of `help.getConfig`, and an opaque update-state blob that `client::updates`
//! saves and restores itself. The host hands the record to its [`Store`] when the router reports a [`Change`]
//! ([`Router::poll_save`](super::router::Router::poll_save)); at start it loads it back and seeds the router ([`Record::restore_router`]) and one connection per stored key.
//!
//! Two ways to store it: a [`Store`] that keeps fields apart (a database: one row per DC, like grammers'
//! `SqliteSession` and TDLib's binlog entries per DC auth key), or the whole record as one blob ([`Record::encode`],
//! [`Record::decode`]) for a device that has a flash page and nothing else. The blob is versioned and ends in a
//! CRC-32 of everything before it, so a torn or worn-out write is a typed error at start ([`DecodeError`]), never a
//! half-read key. The checksum finds accidents, not tampering: whoever can write the store can replace the keys
//! anyway, so keeping it private (and encrypted at rest where the platform can) is the host's part.
//!
//! **What is kept and why** (TDLib's `AuthDataShared` and `DcAuthManager` persist the same per DC; grammers'
//! session keeps the home DC, the DC options with their keys, and update state):
//! - the permanent auth key per DC (the expensive part: a new one costs a 2048-bit DH exchange and a new login
//!   on that DC) and whether that DC holds the authorization (copied there with `auth.importAuthorization`), so a
//!   restart neither signs in again nor copies the authorization again;
//! - the salt and the server-time offset of each key's last session: one `bad_server_salt` round trip saved at
//!   start, and a msg_id in the DC's window from the first message;
//! - the home DC and the signed-in user (id and whether a bot): a bot restarts straight to its updates;
//! - the DC list: a restart after a migration reaches the new home DC without the bootstrap address;
//! - up to [`MAX_UPDATE_STATE`] bytes of update state, opaque here.
//!
//! Not kept: temporary keys and their binding. Under PFS a temporary key is made and bound again after a restart
//! (`session::pfs` does it on its own); storing one would keep the very secret PFS wants short-lived on disk for
//! longer. Nor sessions (a restart is a new session, as in TDLib), nor in-flight queries: the host re-issues what
//! it still wants.
//!
//! **Bounds.** No allocation: at most [`MAX_DCS`] DCs and [`MAX_OPTIONS`] addresses; the blob is at most
//! [`MAX_ENCODED`] bytes. Auth keys are [`AuthKey`]s (zeroized on drop, `Debug` prints only the key id); the
//! decoder wipes its copy of each key's bytes. A blob written by [`Record::encode`] holds key material: the caller
//! wipes its buffer when done with it.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zeroize::Zeroize;

use super::DcId;
use super::router::{DcOption, RouteError, Router, TableFull};
use crate::crypto::auth_key::AuthKey;
use crate::error::{BufferTooSmall, Fault};
use crate::time::Instant;

/// DCs a record holds state for (keys, salts, authorization copies). Telegram has five production DCs; room for
/// their media DCs' and a test network's keys would not be needed at once.
pub const MAX_DCS: usize = 8;
/// DC addresses kept (`help.getConfig` lists about twenty, IPv4 and IPv6, media and not; the ones a client may
/// connect to are fewer).
pub const MAX_OPTIONS: usize = 24;
/// Bytes of update state kept for `client::updates`: what its `UpdateSync` saves with the default table of 64
/// channels (1,375 bytes: the common state and 21 bytes per channel), with room for a few more fields. A 512-byte
/// slot refused the state of an account tracking 23 channels or more, and a restart delivered updates again.
pub const MAX_UPDATE_STATE: usize = 1536;

// The slot must hold what the default `UpdateSync` saves (checked at compile time with the `api` feature).
#[cfg(feature = "api")]
const _: () = assert!(
    super::updates::UpdateSync::<{ super::updates::DEFAULT_CHANNELS }, { super::updates::DEFAULT_HOLD }>::MAX_SAVED_LEN
        <= MAX_UPDATE_STATE
);

/// The blob's first four bytes.
pub const MAGIC: [u8; 4] = *b"MTPS";
/// The encoding [`Record::encode`] writes; [`Record::decode`] reads this one only.
pub const VERSION: u8 = 1;
/// Bytes of one encoded DC entry with a key: id, flags, key, salt, time offset.
const DC_ENTRY_MAX: usize = 2 + 1 + 256 + 8 + 4;
/// Bytes of one encoded address at most: id, flags, IPv6, port, secret.
const OPTION_MAX: usize = 2 + 1 + 16 + 2 + 16;
/// Header: magic, version, flags, home, user id, three counts.
const HEADER: usize = 4 + 1 + 1 + 2 + 8;
/// Largest blob [`Record::encode`] writes.
pub const MAX_ENCODED: usize =
    HEADER + 1 + MAX_DCS * DC_ENTRY_MAX + 1 + MAX_OPTIONS * OPTION_MAX + 2 + MAX_UPDATE_STATE + 4;

/// The signed-in account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct User {
    /// Its user id.
    pub id: i64,
    /// It is a bot.
    pub bot: bool,
}

/// What a client keeps about one DC.
#[derive(Clone, PartialEq, Eq)]
pub struct DcState {
    /// The DC.
    pub dc: DcId,
    /// Its permanent auth key, if one was made.
    pub key: Option<AuthKey>,
    /// The DC holds the account's authorization under that key (the home DC after sign-in, others after
    /// `auth.importAuthorization`). Never set without a key: the record's methods keep it so, and
    /// [`Record::decode`] refuses a blob that says otherwise ([`DecodeError::Inconsistent`]).
    pub authorized: bool,
    /// The salt the last session under the key used (0: none known; the DC corrects it at the cost of one round
    /// trip).
    pub salt: u64,
    /// The DC's clock minus ours, in seconds, as the last session found it.
    pub time_offset: i32,
}

impl fmt::Debug for DcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key prints as its id only (AuthKey's Debug); the salt is not a secret but is not needed either.
        f.debug_struct("DcState")
            .field("dc", &self.dc)
            .field("key", &self.key)
            .field("authorized", &self.authorized)
            .field("time_offset", &self.time_offset)
            .finish_non_exhaustive()
    }
}

/// What changed, handed to [`Store::save`] with the whole record: a field-wise store writes only that, a blob
/// store writes everything.
///
/// **Who says when.** The [`Router`](super::router::Router) reports every change but the salt and the update
/// state through [`Router::poll_save`](super::router::Router::poll_save) and keeps it pending until the host
/// confirms it ([`Router::saved`](super::router::Router::saved)); until then it holds the first query under a new
/// key and every authorized call after a sign-in, so a host that forgets to save is stopped instead of running on
/// state a restart would lose.
///
/// **When the client saves**, so that a crash never loses what cost a round trip to get and never keeps what is
/// no longer true (TDLib writes its binlog at the same points):
/// - [`Change::Key`] right after a handshake made a key on a DC, before the first query is sent under it (a key
///   the DC has and the client lost is a key it can never use again; a query under it would be a login the client
///   cannot resume);
/// - [`Change::SignedIn`] as soon as a sign-in flow ends signed in, before any other call;
/// - [`Change::Home`] when a migration moved the home DC (with or without a sign-in in the same step);
/// - [`Change::Authorized`] when a DC accepted `auth.importAuthorization`;
/// - [`Change::SignedOut`] after `auth.logOut` or a 401 on the home DC (the keys stay; the authorization is gone);
/// - [`Change::KeyDropped`] when a DC forgot a key (−404 on a stored key): that DC's state is cleared;
/// - [`Change::Options`] after `help.getConfig` changed the DC list;
/// - [`Change::Salt`] and [`Change::UpdateState`] as often as the host likes: losing them costs one round trip
///   or a `getDifference`, so a flash device may save them only with the next save of another kind, or at exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Change {
    /// A new permanent key on this DC.
    Key(DcId),
    /// The DC forgot its key: its state is gone.
    KeyDropped(DcId),
    /// Signed in (user and home DC).
    SignedIn,
    /// Signed out: no DC holds the authorization.
    SignedOut,
    /// The home DC moved.
    Home,
    /// The authorization was copied to this DC.
    Authorized(DcId),
    /// The salt or clock offset of this DC's session.
    Salt(DcId),
    /// The DC list.
    Options,
    /// The update-state blob.
    UpdateState,
}

/// The storage boundary the host implements.
///
/// `save` is called with the whole record and what changed (see [`Change`] for when); it must not return before
/// the change is durable (a database commits its transaction, a flash device writes and verifies its page), since
/// the client goes on to use what it saved (a key, a sign-in). A `save` must be atomic: after a crash, `load` gives
/// the record before or after it, never a mix. `load` is called once, at start; `Ok(None)` is a first start.
pub trait Store {
    /// The host's error (I/O, a corrupt file, a schema it does not know).
    type Error;
    /// The record stored last, if any.
    ///
    /// # Errors
    /// The host's: storage unreadable, corrupt or of an unknown version.
    fn load(&mut self) -> Result<Option<Record>, Self::Error>;
    /// Stores `record`, of which `change` is what is new since the last save.
    ///
    /// # Errors
    /// The host's: the change could not be made durable (the client should not go on as if it were).
    fn save(&mut self, record: &Record, change: Change) -> Result<(), Self::Error>;
}

/// A record's table is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordFull {
    /// [`MAX_DCS`] DCs already have state.
    Dcs,
    /// [`MAX_OPTIONS`] addresses already.
    Options,
    /// The update state is longer than [`MAX_UPDATE_STATE`].
    UpdateState,
}

impl fmt::Display for RecordFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordFull::Dcs => "too many DCs for the session record",
            RecordFull::Options => "too many DC addresses for the session record",
            RecordFull::UpdateState => "update state too long for the session record",
        })
    }
}

impl core::error::Error for RecordFull {}

/// Why a blob is not a record. The blob comes from the host's own storage: any of these means it is damaged, from
/// a newer version, or not a record at all; the host decides between starting afresh and refusing to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// It ends before a field does.
    Truncated,
    /// It does not start with [`MAGIC`].
    BadMagic,
    /// A version this build does not read.
    Version(u8),
    /// The CRC-32 does not match: a torn or corrupted write.
    Checksum,
    /// A flags byte has bits this version does not define.
    Flags,
    /// A DC id out of 1..=[`DcId::MAX`].
    BadDc,
    /// Two entries for one DC.
    DuplicateDc,
    /// More DCs, addresses or update-state bytes than this build keeps.
    TooMany,
    /// Bytes after the checksum.
    Trailing,
    /// Fields that contradict each other: a DC said to hold the authorization without a key to hold it under.
    Inconsistent,
}

impl DecodeError {
    /// Whose fault: the storage's (the environment).
    pub const fn fault(&self) -> Fault {
        Fault::Environment
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Truncated => "session record truncated",
            DecodeError::BadMagic => "not a session record",
            DecodeError::Version(_) => "session record of an unknown version",
            DecodeError::Checksum => "session record checksum mismatch",
            DecodeError::Flags => "session record has unknown flags",
            DecodeError::BadDc => "session record names an invalid DC",
            DecodeError::DuplicateDc => "session record names a DC twice",
            DecodeError::TooMany => "session record larger than this build keeps",
            DecodeError::Trailing => "bytes after the session record",
            DecodeError::Inconsistent => "session record authorizes a DC that has no key",
        })
    }
}

impl core::error::Error for DecodeError {}

/// Everything a client keeps. See the module docs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The client talks to Telegram's test DCs.
    pub test_mode: bool,
    /// The home DC, once known.
    pub home: Option<DcId>,
    /// The signed-in account, if any.
    pub user: Option<User>,
    dcs: heapless::Vec<DcState, MAX_DCS>,
    options: heapless::Vec<DcOption, MAX_OPTIONS>,
    update_state: heapless::Vec<u8, MAX_UPDATE_STATE>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("test_mode", &self.test_mode)
            .field("home", &self.home)
            .field("user", &self.user)
            .field("dcs", &self.dcs)
            .field("options", &self.options.len())
            .field("update_state", &self.update_state.len())
            .finish()
    }
}

impl Record {
    /// An empty record (a first start).
    #[must_use]
    pub const fn new(test_mode: bool) -> Self {
        Self {
            test_mode,
            home: None,
            user: None,
            dcs: heapless::Vec::new(),
            options: heapless::Vec::new(),
            update_state: heapless::Vec::new(),
        }
    }

    /// The state kept for each DC.
    pub fn dcs(&self) -> impl Iterator<Item = &DcState> {
        self.dcs.iter()
    }

    /// The state kept for `dc`.
    #[must_use]
    pub fn dc(&self, dc: DcId) -> Option<&DcState> {
        self.dcs.iter().find(|d| d.dc == dc)
    }

    /// The auth key kept for `dc`.
    #[must_use]
    pub fn key(&self, dc: DcId) -> Option<&AuthKey> {
        self.dc(dc).and_then(|d| d.key.as_ref())
    }

    fn dc_mut(&mut self, dc: DcId) -> Result<&mut DcState, RecordFull> {
        if let Some(i) = self.dcs.iter().position(|d| d.dc == dc) {
            return self.dcs.get_mut(i).ok_or(RecordFull::Dcs);
        }
        if self.dcs.is_full()
            && let Some(i) = self.evictable()
        {
            self.dcs.swap_remove(i);
        }
        self.dcs
            .push(DcState {
                dc,
                key: None,
                authorized: false,
                salt: 0,
                time_offset: 0,
            })
            .map_err(|_| RecordFull::Dcs)?;
        self.dcs.last_mut().ok_or(RecordFull::Dcs)
    }

    /// Which entry makes room in a full table: one with nothing worth keeping (no key) first, then a CDN DC's
    /// (the DC list names it with CDN addresses only), then a key that carries no authorization and is not the
    /// home DC's: losing any of these costs one handshake after a restart, never a sign-in or an import. `None`
    /// when every entry is the home DC or holds the authorization.
    fn evictable(&self) -> Option<usize> {
        let home = self.home;
        self.dcs
            .iter()
            .position(|d| d.key.is_none())
            .or_else(|| self.dcs.iter().position(|d| self.is_cdn(d.dc)))
            .or_else(|| self.dcs.iter().position(|d| !d.authorized && Some(d.dc) != home))
    }

    /// The DC list names `dc`, with CDN addresses only.
    fn is_cdn(&self, dc: DcId) -> bool {
        let mut of_dc = self.options.iter().filter(|o| o.dc == dc).peekable();
        of_dc.peek().is_some() && of_dc.all(|o| o.cdn)
    }

    /// A new permanent key on `dc` (a new key is a new authorization: whatever was imported under the old one is
    /// gone). Save with [`Change::Key`].
    ///
    /// **CDN DCs' keys are not kept** (nor by TDLib): a `dc` the DC list names with CDN addresses only keeps
    /// nothing here (the change is returned all the same; saving it writes nothing new). A CDN key carries no
    /// authorization and is made again with one handshake when a redirect names that CDN again; kept, the CDN DCs
    /// a client is redirected to would fill the [`MAX_DCS`] entries, and a real DC's new key could no longer be
    /// saved. (The router does not ask for them to be saved either: no [`Change::Key`] for a CDN connection.) A
    /// full table makes room by dropping, in turn, a DC without a key, a CDN DC, a key that carries no
    /// authorization and is not the home DC's.
    ///
    /// # Errors
    /// [`MAX_DCS`] DCs already hold keys that carry the authorization (or the home DC's).
    pub fn set_key(&mut self, dc: DcId, key: AuthKey) -> Result<Change, RecordFull> {
        if self.is_cdn(dc) {
            // Its key is dropped here (zeroized); an entry from before the DC list said it was a CDN goes too.
            self.dcs.retain(|d| d.dc != dc);
            return Ok(Change::Key(dc));
        }
        let d = self.dc_mut(dc)?;
        d.key = Some(key);
        d.authorized = false;
        d.salt = 0;
        Ok(Change::Key(dc))
    }

    /// `dc` forgot its key (−404 on a stored key): its state goes. On the home DC the sign-in goes with it (it
    /// lived under that key, as [`Router::key_dropped`] says), so the record never holds a sign-in without its key.
    /// Save with [`Change::KeyDropped`].
    pub fn drop_key(&mut self, dc: DcId) -> Change {
        self.dcs.retain(|d| d.dc != dc);
        if self.home == Some(dc) {
            self.signed_out();
        }
        Change::KeyDropped(dc)
    }

    /// The salt and clock offset of `dc`'s session. Save with [`Change::Salt`].
    ///
    /// # Errors
    /// No room for the DC.
    pub fn set_salt(&mut self, dc: DcId, salt: u64, time_offset: i32) -> Result<Change, RecordFull> {
        if self.is_cdn(dc) {
            // Its key is not kept (see `set_key`): neither is the session state that goes with it.
            return Ok(Change::Salt(dc));
        }
        let d = self.dc_mut(dc)?;
        d.salt = salt;
        d.time_offset = time_offset;
        Ok(Change::Salt(dc))
    }

    /// Signed in as `user` on `home` (which then holds the authorization). Save with [`Change::SignedIn`].
    ///
    /// # Errors
    /// No room for the DC.
    pub fn signed_in(&mut self, home: DcId, user: User) -> Result<Change, RecordFull> {
        let d = self.dc_mut(home)?;
        // Held under the DC's key: without one (a host that reports the sign-in before the key) nothing is marked,
        // and a restore starts signed out, as it would anyway.
        d.authorized = d.key.is_some();
        self.home = Some(home);
        self.user = Some(user);
        Ok(Change::SignedIn)
    }

    /// Signed out: no DC holds the authorization; the keys stay. Save with [`Change::SignedOut`].
    pub fn signed_out(&mut self) -> Change {
        self.user = None;
        for d in &mut self.dcs {
            d.authorized = false;
        }
        Change::SignedOut
    }

    /// The home DC moved. Save with [`Change::Home`].
    pub fn set_home(&mut self, home: DcId) -> Change {
        self.home = Some(home);
        Change::Home
    }

    /// `dc` accepted the authorization. Save with [`Change::Authorized`].
    ///
    /// # Errors
    /// No room for the DC.
    pub fn authorized(&mut self, dc: DcId) -> Result<Change, RecordFull> {
        let d = self.dc_mut(dc)?;
        // Held under the DC's key: without one there is nothing it could be restored under.
        d.authorized = d.key.is_some();
        Ok(Change::Authorized(dc))
    }

    /// The DC addresses kept.
    pub fn options(&self) -> impl Iterator<Item = &DcOption> {
        self.options.iter()
    }

    /// Replaces the DC list with `options` (the router's, after `help.getConfig`). Save with [`Change::Options`].
    ///
    /// # Errors
    /// More than [`MAX_OPTIONS`] addresses: the list is left as it was.
    pub fn set_options<'a>(&mut self, options: impl IntoIterator<Item = &'a DcOption>) -> Result<Change, RecordFull> {
        let mut next = heapless::Vec::new();
        for o in options {
            if !next.contains(o) {
                next.push(*o).map_err(|_| RecordFull::Options)?;
            }
        }
        self.options = next;
        Ok(Change::Options)
    }

    /// The update-state blob (`client::updates`' own encoding).
    #[must_use]
    pub fn update_state(&self) -> &[u8] {
        &self.update_state
    }

    /// Replaces the update-state blob. Save with [`Change::UpdateState`].
    ///
    /// # Errors
    /// Longer than [`MAX_UPDATE_STATE`]: left as it was.
    pub fn set_update_state(&mut self, state: &[u8]) -> Result<Change, RecordFull> {
        self.update_state = heapless::Vec::from_slice(state).map_err(|_| RecordFull::UpdateState)?;
        Ok(Change::UpdateState)
    }

    /// Seeds a router at start: the DC list, the home DC, which DCs have keys, the sign-in and the authorization
    /// copies, so that the first request goes to the right DC on the stored key without a new sign-in or import.
    ///
    /// # Errors
    /// The router's tables are too small for the record.
    pub fn restore_router<const O: usize, const D: usize, const H: usize>(
        &self,
        router: &mut Router<O, D, H>,
        now: Instant,
    ) -> Result<(), RouteError> {
        for o in &self.options {
            router.add_option(*o).map_err(|TableFull| RouteError::Full)?;
        }
        if let Some(home) = self.home {
            router.set_home(home);
        }
        for d in &self.dcs {
            router.set_key(d.dc, d.key.is_some(), now)?;
        }
        // A sign-in lives under the home DC's key: a record that has one without the other (written by a host that
        // dropped the key and not the sign-in) restores signed out, not as an authorization no key carries.
        if self.user.is_some() && self.home.is_some_and(|h| self.key(h).is_some()) {
            router.signed_in(now)?;
            for d in &self.dcs {
                if d.authorized && d.key.is_some() && Some(d.dc) != self.home {
                    router.imported(d.dc);
                }
            }
        }
        router.mark_all_saved();
        Ok(())
    }

    /// Bytes [`Record::encode`] writes for this record.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let dcs: usize = self
            .dcs
            .iter()
            .map(|d| DC_ENTRY_MAX - if d.key.is_some() { 0 } else { 256 })
            .sum();
        let opts: usize = self
            .options
            .iter()
            .map(|o| 2 + 1 + if o.addr.is_ipv4() { 4 } else { 16 } + 2 + if o.secret.is_some() { 16 } else { 0 })
            .sum();
        HEADER + 1 + dcs + 1 + opts + 2 + self.update_state.len() + 4
    }

    /// Writes the record as one blob into `out` (see the module docs for the layout); returns its length. The
    /// blob holds the auth keys: wipe `out` when done with it.
    ///
    /// # Errors
    /// `out` is shorter than [`Record::encoded_len`]; nothing useful was written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let need = self.encoded_len();
        let Some(out) = out.get_mut(..need) else {
            return Err(BufferTooSmall { required: need });
        };
        let mut w = Put { out, at: 0 };
        w.bytes(&MAGIC);
        w.u8(VERSION);
        let flags = u8::from(self.test_mode)
            | u8::from(self.home.is_some()) << 1
            | u8::from(self.user.is_some()) << 2
            | u8::from(self.user.is_some_and(|u| u.bot)) << 3;
        w.u8(flags);
        w.u16(self.home.map_or(0, DcId::get));
        w.bytes(&self.user.map_or(0, |u| u.id).to_le_bytes());
        // The tables are bounded by MAX_DCS and MAX_OPTIONS, both below 256.
        w.u8(u8::try_from(self.dcs.len()).unwrap_or(u8::MAX));
        for d in &self.dcs {
            w.u16(d.dc.get());
            w.u8(u8::from(d.key.is_some()) | u8::from(d.authorized) << 1);
            if let Some(k) = &d.key {
                w.bytes(k.as_bytes());
            }
            w.bytes(&d.salt.to_le_bytes());
            w.bytes(&d.time_offset.to_le_bytes());
        }
        w.u8(u8::try_from(self.options.len()).unwrap_or(u8::MAX));
        for o in &self.options {
            w.u16(o.dc.get());
            let flags = u8::from(o.media_only)
                | u8::from(o.tcpo_only) << 1
                | u8::from(o.cdn) << 2
                | u8::from(o.static_) << 3
                | u8::from(o.this_port_only) << 4
                | u8::from(o.addr.is_ipv6()) << 5
                | u8::from(o.secret.is_some()) << 6;
            w.u8(flags);
            match o.addr {
                IpAddr::V4(a) => w.bytes(&a.octets()),
                IpAddr::V6(a) => w.bytes(&a.octets()),
            }
            w.u16(o.port);
            if let Some(s) = &o.secret {
                w.bytes(s);
            }
        }
        w.u16(u16::try_from(self.update_state.len()).unwrap_or(u16::MAX));
        w.bytes(&self.update_state);
        let crc = crc32fast::hash(w.out.get(..w.at).unwrap_or_default());
        w.bytes(&crc.to_le_bytes());
        Ok(w.at)
    }

    /// Reads a blob [`Record::encode`] wrote: the whole of `blob`, checksum first, then every field checked.
    ///
    /// # Errors
    /// A [`DecodeError`]; nothing is returned from a blob that fails any check.
    pub fn decode(blob: &[u8]) -> Result<Record, DecodeError> {
        let (head, _) = blob.split_first_chunk::<5>().ok_or(DecodeError::Truncated)?;
        if !head.starts_with(&MAGIC) {
            return Err(DecodeError::BadMagic);
        }
        if head.get(4) != Some(&VERSION) {
            return Err(DecodeError::Version(head.get(4).copied().unwrap_or(0)));
        }
        let (body, crc) = blob
            .split_last_chunk::<4>()
            .filter(|(body, _)| body.len() >= head.len())
            .ok_or(DecodeError::Truncated)?;
        if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
            return Err(DecodeError::Checksum);
        }
        let mut r = Take {
            data: body.get(5..).unwrap_or_default(),
        };
        let flags = r.u8()?;
        if flags & !0b1111 != 0 {
            return Err(DecodeError::Flags);
        }
        let home_raw = r.u16()?;
        let user_id = i64::from_le_bytes(r.array::<8>()?);
        let mut rec = Record::new(flags & 1 != 0);
        if flags & 0b10 != 0 {
            rec.home = Some(dc_id(home_raw)?);
        } else if home_raw != 0 {
            return Err(DecodeError::Flags);
        }
        if flags & 0b100 != 0 {
            rec.user = Some(User {
                id: user_id,
                bot: flags & 0b1000 != 0,
            });
        } else if user_id != 0 || flags & 0b1000 != 0 {
            return Err(DecodeError::Flags);
        }
        let n = r.u8()?;
        if usize::from(n) > MAX_DCS {
            return Err(DecodeError::TooMany);
        }
        for _ in 0..n {
            let dc = dc_id(r.u16()?)?;
            let f = r.u8()?;
            if f & !0b11 != 0 {
                return Err(DecodeError::Flags);
            }
            let key = if f & 1 != 0 {
                let mut bytes = r.array::<256>()?;
                let k = AuthKey::from_bytes(bytes);
                bytes.zeroize();
                Some(k)
            } else {
                None
            };
            let salt = u64::from_le_bytes(r.array::<8>()?);
            let time_offset = i32::from_le_bytes(r.array::<4>()?);
            if rec.dcs.iter().any(|d| d.dc == dc) {
                return Err(DecodeError::DuplicateDc);
            }
            if f & 0b10 != 0 && key.is_none() {
                // Restored, it would copy the authorization to a DC on whichever key a handshake makes next. The
                // encoder never writes it (the record's methods keep `authorized` to DCs with a key).
                return Err(DecodeError::Inconsistent);
            }
            rec.dcs
                .push(DcState {
                    dc,
                    key,
                    authorized: f & 0b10 != 0,
                    salt,
                    time_offset,
                })
                .map_err(|_| DecodeError::TooMany)?;
        }
        let n = r.u8()?;
        if usize::from(n) > MAX_OPTIONS {
            return Err(DecodeError::TooMany);
        }
        for _ in 0..n {
            let dc = dc_id(r.u16()?)?;
            let f = r.u8()?;
            if f & 0b1000_0000 != 0 {
                return Err(DecodeError::Flags);
            }
            let addr = if f & 0b10_0000 != 0 {
                IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))
            } else {
                IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))
            };
            let port = r.u16()?;
            let secret = if f & 0b100_0000 != 0 {
                Some(r.array::<16>()?)
            } else {
                None
            };
            rec.options
                .push(DcOption {
                    dc,
                    addr,
                    port,
                    media_only: f & 1 != 0,
                    tcpo_only: f & 0b10 != 0,
                    cdn: f & 0b100 != 0,
                    static_: f & 0b1000 != 0,
                    this_port_only: f & 0b1_0000 != 0,
                    secret,
                })
                .map_err(|_| DecodeError::TooMany)?;
        }
        let len = usize::from(r.u16()?);
        if len > MAX_UPDATE_STATE {
            return Err(DecodeError::TooMany);
        }
        let state = r.take(len)?;
        rec.update_state = heapless::Vec::from_slice(state).map_err(|_| DecodeError::TooMany)?;
        if !r.data.is_empty() {
            return Err(DecodeError::Trailing);
        }
        Ok(rec)
    }
}

fn dc_id(raw: u16) -> Result<DcId, DecodeError> {
    DcId::new(i64::from(raw)).ok_or(DecodeError::BadDc)
}

/// A writer into a slice already checked to be long enough ([`Record::encoded_len`]).
struct Put<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Put<'_> {
    fn bytes(&mut self, b: &[u8]) {
        let end = self.at.saturating_add(b.len());
        if let Some(dst) = self.out.get_mut(self.at..end) {
            dst.copy_from_slice(b);
        }
        self.at = end;
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
}

/// A reader that fails with [`DecodeError::Truncated`] instead of reading past the end.
struct Take<'a> {
    data: &'a [u8],
}

impl<'a> Take<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (a, b) = self.data.split_at(n);
        self.data = b;
        Ok(a)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (a, b) = self.data.split_first_chunk::<N>().ok_or(DecodeError::Truncated)?;
        self.data = b;
        Ok(*a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array::<2>()?))
    }
}

/// A [`Store`] in memory: the record as [`Record::encode`]'s blob (so a test exercises the encoding the way a flash
/// device would) and the list of changes saved, for tests that check when the client saves.
#[cfg(feature = "alloc")]
#[derive(Default)]
pub struct MemoryStore {
    blob: Option<alloc::vec::Vec<u8>>,
    /// Every change saved, in order.
    pub changes: alloc::vec::Vec<Change>,
}

#[cfg(feature = "alloc")]
impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("blob_len", &self.blob.as_ref().map(alloc::vec::Vec::len))
            .field("changes", &self.changes)
            .finish()
    }
}

#[cfg(feature = "alloc")]
impl MemoryStore {
    /// An empty store (a first start).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The blob as stored (tests damage it to see `load` fail).
    pub fn blob_mut(&mut self) -> Option<&mut alloc::vec::Vec<u8>> {
        self.blob.as_mut()
    }
}

#[cfg(feature = "alloc")]
impl Drop for MemoryStore {
    fn drop(&mut self) {
        if let Some(b) = self.blob.as_mut() {
            b.zeroize();
        }
    }
}

#[cfg(feature = "alloc")]
impl Store for MemoryStore {
    type Error = DecodeError;

    fn load(&mut self) -> Result<Option<Record>, DecodeError> {
        self.blob.as_deref().map(Record::decode).transpose()
    }

    fn save(&mut self, record: &Record, change: Change) -> Result<(), DecodeError> {
        let mut blob = alloc::vec![0u8; record.encoded_len()];
        // The length was just computed from the same record.
        record.encode(&mut blob).map_err(|_| DecodeError::Truncated)?;
        if let Some(old) = self.blob.as_mut() {
            old.zeroize();
        }
        self.blob = Some(blob);
        self.changes.push(change);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::vec;
    use std::vec::Vec;

    fn dc(n: i64) -> DcId {
        DcId::new(n).unwrap()
    }

    fn option(n: i64, v6: bool, secret: bool) -> DcOption {
        DcOption {
            dc: dc(n),
            addr: if v6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))
            },
            port: 4430 + n as u16,
            media_only: v6,
            tcpo_only: secret,
            cdn: false,
            static_: false,
            this_port_only: true,
            secret: secret.then_some([9; 16]),
        }
    }

    /// A record with every field used (the fuzz corpus seeds are made from it too).
    pub(crate) fn full() -> Record {
        let mut r = Record::new(true);
        r.set_key(dc(2), AuthKey::from_bytes([2; 256])).unwrap();
        r.set_key(dc(1), AuthKey::from_bytes([1; 256])).unwrap();
        r.set_salt(dc(2), 0x1122_3344_5566_7788, -3).unwrap();
        r.signed_in(dc(2), User { id: 4242, bot: true }).unwrap();
        r.authorized(dc(1)).unwrap();
        r.set_salt(dc(3), 5, 0).unwrap();
        r.set_options(&[option(1, false, false), option(2, true, false), option(3, false, true)])
            .unwrap();
        r.set_update_state(b"pts=1;qts=2;date=3;seq=4").unwrap();
        r
    }

    fn encode(r: &Record) -> Vec<u8> {
        let mut out = vec![0u8; MAX_ENCODED];
        let n = r.encode(&mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn round_trip_every_field() {
        let r = full();
        let blob = encode(&r);
        assert_eq!(blob.len(), r.encoded_len());
        let back = Record::decode(&blob).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.key(dc(2)).unwrap().as_bytes(), &[2; 256]);
        assert_eq!(back.dc(dc(2)).unwrap().time_offset, -3);
        assert!(back.dc(dc(1)).unwrap().authorized);
        assert_eq!(
            Record::decode(&encode(&Record::new(false))).unwrap(),
            Record::new(false)
        );
    }

    #[test]
    fn largest_record_fits_max_encoded() {
        let mut r = Record::new(false);
        for i in 1..=MAX_DCS as i64 {
            r.set_key(dc(i), AuthKey::from_bytes([i as u8; 256])).unwrap();
        }
        let opts: Vec<DcOption> = (1..=MAX_OPTIONS as i64).map(|i| option(i, true, true)).collect();
        r.set_options(&opts).unwrap();
        r.set_update_state(&[7; MAX_UPDATE_STATE]).unwrap();
        r.signed_in(dc(1), User { id: -1, bot: false }).unwrap();
        assert_eq!(r.encoded_len(), MAX_ENCODED);
        assert_eq!(Record::decode(&encode(&r)).unwrap(), r);
        // Full only when every entry carries the authorization: otherwise one makes room.
        for i in 2..=MAX_DCS as i64 {
            r.authorized(dc(i)).unwrap();
        }
        assert_eq!(
            r.set_key(dc(MAX_DCS as i64 + 1), AuthKey::from_bytes([0; 256])),
            Err(RecordFull::Dcs)
        );
        assert_eq!(
            r.set_update_state(&[0; MAX_UPDATE_STATE + 1]),
            Err(RecordFull::UpdateState)
        );
    }

    #[test]
    fn short_buffer_is_an_error() {
        let r = full();
        let mut out = vec![0u8; r.encoded_len() - 1];
        assert!(r.encode(&mut out).is_err());
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_refused() {
        let blob = encode(&full());
        for n in 0..blob.len() {
            assert!(Record::decode(&blob[..n]).is_err(), "prefix {n} decoded");
        }
        for i in 0..blob.len() {
            for bit in 0..8 {
                let mut b = blob.clone();
                b[i] ^= 1 << bit;
                assert!(Record::decode(&b).is_err(), "flip {i}.{bit} decoded");
            }
        }
    }

    /// Re-seals a body (magic..fields) with a correct CRC, to reach the checks behind the checksum.
    fn seal(mut body: Vec<u8>) -> Vec<u8> {
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    fn body(r: &Record) -> Vec<u8> {
        let mut b = encode(r);
        b.truncate(b.len() - 4);
        b
    }

    #[test]
    fn typed_errors() {
        let blob = encode(&full());
        let mut b = blob.clone();
        b[0] = b'X';
        assert_eq!(Record::decode(&b), Err(DecodeError::BadMagic));
        let mut b = blob.clone();
        b[4] = 2;
        assert_eq!(Record::decode(&b), Err(DecodeError::Version(2)));
        let mut b = blob.clone();
        let last = b.len() - 1;
        b[last] ^= 1;
        assert_eq!(Record::decode(&b), Err(DecodeError::Checksum));
        let mut b = blob.clone();
        b.push(0);
        assert_eq!(Record::decode(&b), Err(DecodeError::Checksum));
        // Behind a valid checksum: trailing bytes, unknown flags, a bad DC id, a duplicate DC, too many DCs.
        let mut b = body(&full());
        b.push(0);
        assert_eq!(Record::decode(&seal(b)), Err(DecodeError::Trailing));
        let mut b = body(&full());
        b[5] |= 0x80;
        assert_eq!(Record::decode(&seal(b)), Err(DecodeError::Flags));
        let mut b = body(&full());
        b[6] = 0xff;
        b[7] = 0xff;
        assert_eq!(Record::decode(&seal(b)), Err(DecodeError::BadDc));
        // First DC entry's id starts after the header and the count.
        let mut r = Record::new(false);
        r.set_salt(dc(1), 0, 0).unwrap();
        r.set_salt(dc(2), 0, 0).unwrap();
        let mut b = body(&r);
        let second = HEADER + 1 + (2 + 1 + 8 + 4);
        b[second] = 1;
        assert_eq!(Record::decode(&seal(b)), Err(DecodeError::DuplicateDc));
        let mut b = body(&Record::new(false));
        b[HEADER] = MAX_DCS as u8 + 1;
        assert_eq!(Record::decode(&seal(b)), Err(DecodeError::TooMany));
        let mut b = body(&Record::new(false));
        b[HEADER + 1] = MAX_OPTIONS as u8 + 1;
        assert_eq!(Record::decode(&seal(b)), Err(DecodeError::TooMany));
        let mut b = body(&Record::new(false));
        let n = b.len();
        b[n - 2..].copy_from_slice(&(MAX_UPDATE_STATE as u16 + 1).to_le_bytes());
        b.extend(std::iter::repeat_n(0, MAX_UPDATE_STATE + 1));
        assert_eq!(Record::decode(&seal(b)), Err(DecodeError::TooMany));
    }

    #[test]
    fn debug_prints_no_key_bytes() {
        let s = format!("{:?}", full());
        assert!(!s.contains("[2, 2"), "{s}");
        assert!(s.contains("AuthKey { id:"), "{s}");
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn memory_store_saves_whole_records_and_changes() {
        let mut s = MemoryStore::new();
        assert_eq!(s.load(), Ok(None));
        let r = full();
        s.save(&r, Change::SignedIn).unwrap();
        assert_eq!(s.load().unwrap().unwrap(), r);
        assert_eq!(s.changes, [Change::SignedIn]);
        s.blob_mut().unwrap()[10] ^= 1;
        assert_eq!(s.load(), Err(DecodeError::Checksum));
    }

    #[test]
    fn restore_router_signs_in_on_the_stored_home() {
        let r = full();
        let mut router: Router = Router::new(crate::client::router::RouterConfig::DEFAULT);
        r.restore_router(&mut router, Instant::ZERO).unwrap();
        assert_eq!(router.home(), Some(dc(2)));
        assert!(router.is_signed_in());
        assert!(router.has_key(dc(1)) && router.has_key(dc(2)) && !router.has_key(dc(3)));
        assert!(router.is_authorized(dc(1)) && router.is_authorized(dc(2)));
        assert_eq!(router.options().count(), 3);
    }

    #[test]
    fn a_new_key_drops_the_authorization_and_a_full_table_evicts_keyless_dcs() {
        let mut r = full();
        r.set_key(dc(1), AuthKey::from_bytes([5; 256])).unwrap();
        assert!(!r.dc(dc(1)).unwrap().authorized);
        r.signed_out();
        assert!(r.user.is_none() && r.dcs().all(|d| !d.authorized));
        // dc 3 has no key: it makes room.
        for i in 4..=MAX_DCS as i64 + 1 {
            r.set_key(dc(i), AuthKey::from_bytes([0; 256])).unwrap();
        }
        assert!(r.dc(dc(3)).is_none());
        assert_eq!(r.drop_key(dc(4)), Change::KeyDropped(dc(4)));
        assert!(r.key(dc(4)).is_none());
    }

    fn cdn_option(n: i64) -> DcOption {
        DcOption {
            cdn: true,
            ..option(n, false, false)
        }
    }

    #[test]
    fn cdn_keys_are_not_kept_and_never_crowd_out_a_real_dc() {
        // CDN DCs' keys took the record's entries like any other: after eight CDN redirects the table was full of
        // them and a real DC's new key could not be saved (RecordFull::Dcs). They are not kept now (TDLib keeps
        // none either); and a full table makes room with whatever costs only a handshake to make again.
        let mut r = full();
        let mut opts: Vec<DcOption> = r.options().copied().collect();
        opts.extend((201..=201 + MAX_DCS as i64).map(cdn_option));
        r.set_options(&opts).unwrap();
        for i in 201..=201 + MAX_DCS as i64 {
            assert_eq!(r.set_key(dc(i), AuthKey::from_bytes([9; 256])), Ok(Change::Key(dc(i))));
            r.set_salt(dc(i), 1, 0).unwrap();
            assert!(r.dc(dc(i)).is_none(), "DC{i}: nothing kept for a CDN DC");
        }
        assert_eq!(r.dcs().count(), 3);
        r.set_key(dc(4), AuthKey::from_bytes([4; 256])).unwrap();
        assert!(r.key(dc(4)).is_some());
        assert_eq!(Record::decode(&encode(&r)).unwrap(), r);

        // A DC list that does not say which DCs are CDNs (a host that never saved it): the CDN keys fill the
        // table, and a real DC's key takes the place of one of them, never of the home DC's or an authorized one.
        let mut r = full();
        r.set_options(&[]).unwrap();
        for i in 201..201 + MAX_DCS as i64 - 2 {
            r.set_key(dc(i), AuthKey::from_bytes([9; 256])).unwrap();
        }
        assert_eq!(r.dcs().count(), MAX_DCS);
        for i in 4..=6 {
            r.set_key(dc(i), AuthKey::from_bytes([i as u8; 256])).unwrap();
            assert!(r.key(dc(i)).is_some());
        }
        assert_eq!(r.dcs().count(), MAX_DCS);
        assert!(r.dc(dc(2)).unwrap().authorized && r.dc(dc(1)).unwrap().authorized);
    }

    #[test]
    fn an_authorization_without_a_key_is_refused_and_never_written() {
        // The decoder took `authorized` on a DC without a key; `Record::authorized` and `signed_in` wrote it for a
        // DC without a key. Neither now.
        let mut b = body(&Record::new(false));
        // One DC: id 3, flags "authorized" only, salt, time offset; then no options and no update state.
        b.truncate(HEADER);
        b.push(1);
        b.extend_from_slice(&3u16.to_le_bytes());
        b.push(0b10);
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&[0; 3]);
        assert_eq!(Record::decode(&seal(b.clone())), Err(DecodeError::Inconsistent));
        // The same DC with the flag clear is a record.
        b[HEADER + 3] = 0;
        assert!(Record::decode(&seal(b)).is_ok());

        let mut r = Record::new(false);
        r.authorized(dc(3)).unwrap();
        r.signed_in(dc(4), User { id: 1, bot: false }).unwrap();
        assert!(r.dcs().all(|d| !d.authorized));
        assert_eq!(Record::decode(&encode(&r)).unwrap(), r);
    }

    /// Writes the fuzz seeds: `STORE_SEEDS=fuzz/corpus/client_store cargo test --features std --lib store`.
    #[test]
    fn write_fuzz_seeds() {
        let Ok(dir) = std::env::var("STORE_SEEDS") else {
            return;
        };
        let mut small = Record::new(false);
        small.set_key(dc(2), AuthKey::from_bytes([3; 256])).unwrap();
        let seeds = [
            ("full", encode(&full())),
            ("empty", encode(&Record::new(true))),
            ("one_key", encode(&small)),
            ("bad_crc", {
                let mut b = encode(&full());
                b[20] ^= 4;
                b
            }),
        ];
        for (name, bytes) in seeds {
            std::fs::write(std::path::Path::new(&dir).join(name), bytes).unwrap();
        }
    }
}
