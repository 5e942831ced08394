//! Routing requests between DCs: the DC list, the home DC, migrations, authorization copies and connections.
//!
//! Data comes from three places. The DC list comes from `help.getConfig`'s `dcOption` vector
//! ([`Router::apply_config`], `api` feature) or from the host's bootstrap list ([`Router::add_option`]). Requests
//! come from the host as [`Ticket`]s (a [`RequestId`] and where it should go); `*_MIGRATE_X` errors, classified by
//! [`RpcError::classify`](super::rpc_error::RpcError::classify), come back through [`Router::on_migrate`]. The
//! host reports what happened to connections ([`Router::link_ready`], [`Router::link_failed`],
//! [`Router::link_closed`]), to requests ([`Router::done`]), to the sign-in ([`Router::signed_in`]) and to
//! authorization copies ([`Router::imported`], [`Router::import_failed`]), and passes time.
//!
//! What goes out are [`Action`]s the host polls ([`Router::poll_action`], like quinn-proto's endpoint): open a
//! connection to a DC with the chosen address, close an idle one, copy the authorization from one DC to another
//! (`auth.exportAuthorization` on the source, then `auth.importAuthorization` on the target), send a held request
//! on a connection now ready, or fail one that cannot be routed. [`Router::poll_timeout`] says when an idle
//! connection is due to be closed or a failed one due to be tried again. Auth keys stay with the host: the router only knows which DCs have one.
//!
//! Where this differs from TDLib (`NetQueryDispatcher`, `DcAuthManager`, `ConnectionCreator`), and why:
//! - Migrations are bounded per request ([`RouterConfig::max_migrations`]) instead of by TDLib's dispatch TTL and
//!   rate-limited main-DC changes: a server (or a forger on an unauthenticated path) bouncing a request between
//!   DCs ends with [`RouteError::MigrationLoop`] after a fixed number of hops, whatever the timing.
//! - A migration to a DC id the list has no address for is refused ([`RouteError::NoOption`]) and the home DC is
//!   left alone, where TDLib accepts any id up to 1000 and finds out later that it cannot connect. The host's fix
//!   is to fetch `help.getConfig` again and retry.
//! - The authorization is copied on demand, when a request needs a DC that does not have it, rather than to every
//!   DC at sign-in (TDLib's `DcAuthManager` copies to each DC it knows): a bot that only ever talks to its home DC
//!   never pays for it.
//! - Idle connections close after a host-set time ([`RouterConfig::idle_close`]); the home DC's main connection
//!   never does, as it carries updates.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;
use core::net::IpAddr;
use core::time::Duration;

use super::rpc_error::MigrateReason;
use super::store::Change;
use super::{DcId, RequestId};
use crate::error::Fault;
use crate::time::Instant;

/// One address of a DC, as `dcOption` describes it. `Debug` (and `defmt`) leave the secret out.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DcOption {
    /// The DC.
    pub dc: DcId,
    /// Its address (IPv4 or IPv6).
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// `media_only`: for file transfers only.
    pub media_only: bool,
    /// `tcpo_only`: only obfuscated TCP connections are accepted (the crate's obfuscated transport).
    pub tcpo_only: bool,
    /// `cdn`: a CDN DC (files only, no authorization, keys from `help.getCdnConfig`).
    pub cdn: bool,
    /// `static`: an address to use when connecting through a proxy.
    pub static_: bool,
    /// `this_port_only`: connect to this port only.
    pub this_port_only: bool,
    /// The obfuscation secret for `tcpo_only` addresses (16 bytes).
    pub secret: Option<[u8; 16]>,
}

impl fmt::Debug for DcOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DcOption")
            .field("dc", &self.dc)
            .field("addr", &self.addr)
            .field("port", &self.port)
            .field("media_only", &self.media_only)
            .field("tcpo_only", &self.tcpo_only)
            .field("cdn", &self.cdn)
            .field("static_", &self.static_)
            .field("this_port_only", &self.this_port_only)
            .field("secret", &self.secret.map(|_| "<16 bytes>"))
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DcOption {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "DcOption {{ dc: {}, addr: {}, port: {}, media_only: {}, tcpo_only: {}, cdn: {}, secret: {} }}",
            self.dc,
            defmt::Display2Format(&self.addr),
            self.port,
            self.media_only,
            self.tcpo_only,
            self.cdn,
            self.secret.is_some()
        );
    }
}

/// Which connection to a DC: each DC has up to one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkKind {
    /// API calls (and, on the home DC, updates).
    Main,
    /// File transfers, to a `media_only` address where the DC has one.
    Media,
    /// A CDN DC's connection (no authorization).
    Cdn,
}

impl LinkKind {
    const ALL: [LinkKind; 3] = [LinkKind::Main, LinkKind::Media, LinkKind::Cdn];

    const fn slot(self) -> usize {
        match self {
            LinkKind::Main => 0,
            LinkKind::Media => 1,
            LinkKind::Cdn => 2,
        }
    }
}

/// One connection the host holds (or is told to open): a DC and a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Link {
    /// The DC.
    pub dc: DcId,
    /// Which of its connections.
    pub kind: LinkKind,
}

/// Where a request should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Target {
    /// The home DC, whichever it is when the request is routed.
    Home,
    /// A given DC (a file's DC, after `FILE_MIGRATE_X`...).
    Dc(DcId),
    /// A CDN DC (after `upload.fileCdnRedirect`).
    Cdn(DcId),
}

/// A request's routing state, which the host keeps with the request (like [`RetryState`](super::flood::RetryState)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ticket {
    /// The host's id for the request.
    pub id: RequestId,
    /// Where it goes (a migration rewrites this).
    pub target: Target,
    /// Whether it is a file transfer (a media connection).
    pub media: bool,
    migrations: u8,
}

impl Ticket {
    /// A new request to `target`.
    #[must_use]
    pub const fn new(id: RequestId, target: Target, media: bool) -> Self {
        Self {
            id,
            target,
            media,
            migrations: 0,
        }
    }

    /// Migrations followed so far.
    #[must_use]
    pub const fn migrations(&self) -> u8 {
        self.migrations
    }
}

/// What [`Router::route`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Route {
    /// Send it now on this connection (and call [`Router::done`] when it finishes).
    Send(Link),
    /// Held until its connection is ready (and authorized): an [`Action::Send`] names it then, or an
    /// [`Action::Fail`].
    Held,
}

/// Why a request cannot be routed. Nothing changed unless noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RouteError {
    /// There is no home DC yet ([`Router::set_home`]).
    NoHome,
    /// The DC list has no address for this DC (for this kind of connection): fetch `help.getConfig` again.
    NoOption(DcId),
    /// The request migrated more than [`RouterConfig::max_migrations`] times.
    MigrationLoop,
    /// A table (DCs or held requests) is full: backpressure.
    Full,
    /// Every address of the DC failed [`RouterConfig::max_connect_attempts`] times in a row.
    Unreachable(DcId),
    /// Copying the authorization to this DC failed ([`Router::import_failed`]), or no DC had one to copy.
    AuthorizationFailed(DcId),
}

impl RouteError {
    /// Whose fault: a loop or a DC the list does not know came from the server ([`Fault::Peer`]); no home DC is
    /// the host's; the rest are the environment's.
    pub const fn fault(&self) -> Fault {
        match self {
            RouteError::NoHome => Fault::Host,
            RouteError::NoOption(_) | RouteError::MigrationLoop => Fault::Peer,
            RouteError::Full | RouteError::Unreachable(_) | RouteError::AuthorizationFailed(_) => Fault::Environment,
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NoHome => f.write_str("no home DC"),
            RouteError::NoOption(dc) => write!(f, "no address known for {dc}"),
            RouteError::MigrationLoop => f.write_str("too many migrations"),
            RouteError::Full => f.write_str("router tables full"),
            RouteError::Unreachable(dc) => write!(f, "{dc} unreachable"),
            RouteError::AuthorizationFailed(dc) => write!(f, "authorization could not be copied to {dc}"),
        }
    }
}

impl core::error::Error for RouteError {}

/// The DC option table is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TableFull;

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DC option table full")
    }
}

impl core::error::Error for TableFull {}

/// Something the host must do; poll with [`Router::poll_action`] after every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// Open a connection for `link` to `option` (with a stored key, or running the key exchange when `has_key` is
    /// false); report [`Router::link_ready`] or [`Router::link_failed`]. At most one connection per DC runs a key
    /// exchange at a time: the DC's other connections open on the key it makes.
    Open {
        /// The connection.
        link: Link,
        /// The address chosen.
        option: DcOption,
        /// Whether the host holds an auth key for the DC.
        has_key: bool,
    },
    /// Close this idle connection, then it is gone (no report needed).
    Close {
        /// The connection.
        link: Link,
    },
    /// Copy the authorization: send `auth.exportAuthorization { dc_id: to }` on `from`'s main connection, then
    /// `auth.importAuthorization` with its result on `to`'s main connection (both are ready); report
    /// [`Router::imported`] or [`Router::import_failed`] for `to`.
    Export {
        /// A DC that has the authorization.
        from: DcId,
        /// The DC that needs it.
        to: DcId,
    },
    /// Send this held request now on `link` (and call [`Router::done`] when it finishes).
    Send {
        /// The request.
        id: RequestId,
        /// The connection.
        link: Link,
    },
    /// This held request cannot be routed.
    Fail {
        /// The request.
        id: RequestId,
        /// Why.
        reason: RouteError,
    },
}

/// The host's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RouterConfig {
    /// Whether this client talks to Telegram's test DCs (a config for the other network is refused).
    pub test_mode: bool,
    /// Whether IPv6 addresses may be used.
    pub allow_ipv6: bool,
    /// Whether IPv6 addresses are tried before IPv4 ones (TDLib's `prefer_ipv6` option).
    pub prefer_ipv6: bool,
    /// A connection with nothing in flight and nothing held for it is closed after this long (not the home DC's
    /// main connection).
    pub idle_close: Duration,
    /// Migrations one request may follow.
    pub max_migrations: u8,
    /// Failed connection attempts in a row (each on the next address) before held requests fail.
    pub max_connect_attempts: u8,
    /// The wait before reopening a connection after its first failure; each further failure doubles it.
    pub connect_backoff: Duration,
    /// The longest wait before reopening a connection.
    pub connect_backoff_max: Duration,
}

impl RouterConfig {
    /// Production DCs, IPv4 first, idle connections closed after 60 s, 3 migrations, 3 connection attempts with a
    /// backoff from 1 s doubling to 60 s.
    pub const DEFAULT: RouterConfig = RouterConfig {
        test_mode: false,
        allow_ipv6: true,
        prefer_ipv6: false,
        idle_close: Duration::from_secs(60),
        max_migrations: 3,
        max_connect_attempts: 3,
        connect_backoff: Duration::from_secs(1),
        connect_backoff_max: Duration::from_secs(60),
    };
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkState {
    Closed,
    WantOpen,
    Opening,
    Ready,
    WantClose,
}

#[derive(Clone, Copy, Debug)]
struct LinkSlot {
    state: LinkState,
    in_flight: u32,
    last_used: Instant,
    option_idx: u8,
    attempts: u8,
    /// Not reopened before this (the backoff after a failure).
    not_before: Instant,
    /// When it was last ready, and how often in a row the peer closed it before it stayed up for
    /// [`RouterConfig::connect_backoff_max`] (see [`Router::link_closed`]).
    up_since: Instant,
    closes: u8,
}

impl LinkSlot {
    const CLOSED: LinkSlot = LinkSlot {
        state: LinkState::Closed,
        in_flight: 0,
        last_used: Instant::ZERO,
        option_idx: 0,
        attempts: 0,
        not_before: Instant::ZERO,
        up_since: Instant::ZERO,
        closes: 0,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// Not authorized, nobody waits for it.
    None,
    /// A request waits for it: export as soon as both ends are ready.
    Needed,
    /// `Action::Export` went out; waiting for `imported`.
    Exporting,
    Authorized,
}

#[derive(Clone, Copy, Debug)]
struct DcEntry {
    dc: DcId,
    has_key: bool,
    auth: Auth,
    links: [LinkSlot; 3],
    /// A key made here is not stored yet: nothing goes out under it ([`Change::Key`]).
    unsaved_key: bool,
    /// The DC forgot its key and the store does not know yet ([`Change::KeyDropped`]).
    unsaved_drop: bool,
    /// An authorization copy the store does not know of yet ([`Change::Authorized`]).
    unsaved_auth: bool,
}

impl DcEntry {
    fn link(&self, kind: LinkKind) -> &LinkSlot {
        // `slot()` is below 3 for every kind.
        self.links.get(kind.slot()).unwrap_or(&LinkSlot::CLOSED)
    }

    fn link_mut(&mut self, kind: LinkKind) -> Option<&mut LinkSlot> {
        self.links.get_mut(kind.slot())
    }

    fn idle(&self) -> bool {
        self.links.iter().all(|l| l.state == LinkState::Closed)
    }

    fn unsaved(&self) -> bool {
        self.unsaved_key || self.unsaved_drop || self.unsaved_auth
    }
}

#[derive(Clone, Copy, Debug)]
struct Held {
    id: RequestId,
    link: Link,
    failed: Option<RouteError>,
}

/// Whether the DC list names `dc` with CDN addresses only (as `Record::is_cdn` decides which keys are not kept).
fn is_cdn(options: &[DcOption], dc: DcId) -> bool {
    let mut of_dc = options.iter().filter(|o| o.dc == dc).peekable();
    of_dc.peek().is_some() && of_dc.all(|o| o.cdn)
}

/// The routing state machine: up to `O` DC addresses, `D` DCs with state, `H` held requests.
#[derive(Clone, Debug)]
pub struct Router<const O: usize = 32, const D: usize = 8, const H: usize = 32> {
    config: RouterConfig,
    options: heapless::Vec<DcOption, O>,
    home: Option<DcId>,
    signed_in: bool,
    dcs: heapless::Vec<DcEntry, D>,
    held: heapless::Vec<Held, H>,
    /// The latest time the host passed in.
    now: Instant,
    /// Changes the store has not confirmed ([`Router::poll_save`]); the per-DC ones are in [`DcEntry`].
    unsaved_signin: bool,
    unsaved_signout: bool,
    unsaved_home: bool,
    unsaved_options: bool,
}

impl<const O: usize, const D: usize, const H: usize> Router<O, D, H> {
    /// A router with no addresses and no home DC.
    #[must_use]
    pub const fn new(config: RouterConfig) -> Self {
        Self {
            config,
            options: heapless::Vec::new(),
            home: None,
            signed_in: false,
            dcs: heapless::Vec::new(),
            held: heapless::Vec::new(),
            now: Instant::ZERO,
            unsaved_signin: false,
            unsaved_signout: false,
            unsaved_home: false,
            unsaved_options: false,
        }
    }

    /// The policy.
    #[must_use]
    pub const fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Adds an address (the host's bootstrap list, or a stored one).
    ///
    /// # Errors
    /// The table is full.
    pub fn add_option(&mut self, option: DcOption) -> Result<(), TableFull> {
        if self.options.contains(&option) {
            return Ok(());
        }
        self.options.push(option).map_err(|_| TableFull)
    }

    /// Every address known.
    pub fn options(&self) -> impl Iterator<Item = &DcOption> {
        self.options.iter()
    }

    /// The home DC: where the account lives and unqualified requests go.
    #[must_use]
    pub const fn home(&self) -> Option<DcId> {
        self.home
    }

    /// Sets the home DC (the stored one at start, or the default DC before the first sign-in): nothing to save.
    pub fn set_home(&mut self, dc: DcId) {
        self.home = Some(dc);
    }

    /// The home DC moved outside a routed request (a sign-in flow's `PHONE_MIGRATE_X`): saved as [`Change::Home`].
    /// [`Router::on_migrate`] does the same for a routed request.
    pub fn move_home(&mut self, dc: DcId) {
        if self.home != Some(dc) {
            self.unsaved_home = true;
        }
        self.home = Some(dc);
    }

    /// Whether the account is signed in (on the home DC).
    #[must_use]
    pub const fn is_signed_in(&self) -> bool {
        self.signed_in
    }

    /// The sign-in on the home DC succeeded (or a stored session says it had): the home DC holds the authorization.
    ///
    /// # Errors
    /// [`RouteError::NoHome`] before [`Router::set_home`]; [`RouteError::Full`] if the DC table has no room for it.
    ///
    /// Until the store confirmed [`Change::SignedIn`] ([`Router::saved`]), no request that needs the authorization
    /// goes out: a crash in between would leave a signed-in session the host cannot resume.
    pub fn signed_in(&mut self, now: Instant) -> Result<(), RouteError> {
        let home = self.home.ok_or(RouteError::NoHome)?;
        let e = self.entry(home, now)?;
        e.auth = Auth::Authorized;
        self.signed_in = true;
        self.unsaved_signin = true;
        Ok(())
    }

    /// The account is signed out (`auth.logOut`, or a 401 on the home DC): no DC holds the authorization any more.
    /// Saved as [`Change::SignedOut`] (nothing waits for it: a lost sign-out costs one 401 after a restart).
    pub fn signed_out(&mut self) {
        self.signed_in = false;
        self.unsaved_signin = false;
        self.unsaved_signout = true;
        for e in &mut self.dcs {
            e.auth = Auth::None;
            e.unsaved_auth = false;
        }
    }

    /// The DC answered −404 on a stored key (it forgot it): the key and whatever authorization it carried are
    /// gone, saved as [`Change::KeyDropped`]. The DC's open connections are to be replaced by new ones that run a
    /// key exchange ([`Action::Open`] with `has_key: false`); the host drops the old ones without reporting them.
    /// On the home DC the account is signed out too (its authorization lived under that key; TDLib treats a lost
    /// main key the same way): returns `true`, sign in again.
    pub fn key_dropped(&mut self, dc: DcId, now: Instant) -> Result<bool, RouteError> {
        let was_home = self.home == Some(dc) && self.signed_in;
        let e = self.entry(dc, now)?;
        e.has_key = false;
        e.auth = Auth::None;
        e.unsaved_key = false;
        e.unsaved_auth = false;
        e.unsaved_drop = true;
        for slot in &mut e.links {
            if matches!(slot.state, LinkState::Ready | LinkState::Opening | LinkState::WantClose) {
                slot.state = LinkState::Closed;
            }
            slot.in_flight = 0;
        }
        if was_home {
            self.signed_out();
        }
        // Reopened (with a key exchange) if anything still wants it.
        for kind in LinkKind::ALL {
            let link = Link { dc, kind };
            if self.wanted(link)
                && let Some(slot) = self.find_mut(dc).and_then(|e| e.link_mut(kind))
            {
                slot.state = LinkState::WantOpen;
                slot.attempts = 0;
            }
        }
        Ok(was_home)
    }

    /// The next change the store must make durable, oldest kind first; it stays the answer until the host reports
    /// it with [`Router::saved`]. The router learns of them from the events it is told (a key made by a handshake
    /// it asked for, a sign-in, a sign-out, a migration of the home DC, an authorization copy, a dropped key, a new
    /// DC list); the host hands the [`Record`](super::store::Record) it keeps to its
    /// [`Store`](super::store::Store) with this change, then calls [`Router::saved`].
    ///
    /// Two of them gate traffic, so that a host that forgets to save is stopped instead of going on with state a
    /// restart would lose: nothing is sent under a new key before its [`Change::Key`] is confirmed, and nothing
    /// that needs the authorization before [`Change::SignedIn`] is. The others are reported only (losing them
    /// costs a round trip after a restart, never an account). Salts and update state are the host's to save when
    /// it likes; they are not reported here.
    ///
    /// Order: a sign-out before a sign-in, a dropped key before the new key on the same DC, so that a store
    /// writing field by field ends with what is true now.
    #[must_use]
    pub fn poll_save(&self) -> Option<Change> {
        if self.unsaved_signout {
            return Some(Change::SignedOut);
        }
        for e in &self.dcs {
            if e.unsaved_drop {
                return Some(Change::KeyDropped(e.dc));
            }
        }
        for e in &self.dcs {
            if e.unsaved_key {
                return Some(Change::Key(e.dc));
            }
        }
        if self.unsaved_home {
            return Some(Change::Home);
        }
        if self.unsaved_signin {
            return Some(Change::SignedIn);
        }
        for e in &self.dcs {
            if e.unsaved_auth {
                return Some(Change::Authorized(e.dc));
            }
        }
        if self.unsaved_options {
            return Some(Change::Options);
        }
        None
    }

    /// The store made `change` durable: what it held back may go out (poll the actions). Returns `false` if it
    /// was not pending (nothing changes).
    pub fn saved(&mut self, change: Change) -> bool {
        let flag = match change {
            Change::SignedOut => Some(&mut self.unsaved_signout),
            Change::SignedIn => Some(&mut self.unsaved_signin),
            Change::Home => Some(&mut self.unsaved_home),
            Change::Options => Some(&mut self.unsaved_options),
            Change::KeyDropped(dc) => self.find_mut(dc).map(|e| &mut e.unsaved_drop),
            Change::Key(dc) => self.find_mut(dc).map(|e| &mut e.unsaved_key),
            Change::Authorized(dc) => self.find_mut(dc).map(|e| &mut e.unsaved_auth),
            Change::Salt(_) | Change::UpdateState => None,
        };
        match flag {
            Some(f) if *f => {
                *f = false;
                true
            }
            _ => false,
        }
    }

    /// The state just came from the store ([`Record::restore_router`](super::store::Record::restore_router)):
    /// nothing of it is to be saved again.
    pub(crate) fn mark_all_saved(&mut self) {
        self.unsaved_signin = false;
        self.unsaved_signout = false;
        self.unsaved_home = false;
        self.unsaved_options = false;
        for e in &mut self.dcs {
            e.unsaved_key = false;
            e.unsaved_drop = false;
            e.unsaved_auth = false;
        }
    }

    /// Whether `e`'s `kind` connection may carry a request now: ready, its key stored, and (if `needs_auth`) the
    /// DC authorized and the sign-in stored.
    fn usable(&self, e: &DcEntry, kind: LinkKind, needs_auth: bool) -> bool {
        e.link(kind).state == LinkState::Ready
            && !e.unsaved_key
            && (!needs_auth || (e.auth == Auth::Authorized && !self.unsaved_signin))
    }

    /// Whether the host holds an auth key for `dc` (set from its store at start; a ready link implies one). Nothing
    /// to save: a key the router learns of here is one the host already has; a key made after
    /// [`Action::Open`] with `has_key: false` is reported by [`Router::link_ready`] and saved as [`Change::Key`].
    ///
    /// # Errors
    /// [`RouteError::Full`] if the DC table has no room for it (entries with a key are never evicted, except an idle
    /// CDN DC's: size `D` for the DCs the host keeps keys for, plus the ones it talks to).
    pub fn set_key(&mut self, dc: DcId, present: bool, now: Instant) -> Result<(), RouteError> {
        let e = self.entry(dc, now)?;
        e.has_key = present;
        if !present {
            // A new key is a new authorization: whatever was imported under the old one is gone.
            e.auth = Auth::None;
        }
        Ok(())
    }

    /// Whether the router knows of an auth key for `dc`.
    #[must_use]
    pub fn has_key(&self, dc: DcId) -> bool {
        self.find(dc).is_some_and(|e| e.has_key)
    }

    /// Whether `dc` holds the authorization.
    #[must_use]
    pub fn is_authorized(&self, dc: DcId) -> bool {
        self.find(dc).is_some_and(|e| e.auth == Auth::Authorized)
    }

    fn find(&self, dc: DcId) -> Option<&DcEntry> {
        self.dcs.iter().find(|e| e.dc == dc)
    }

    fn find_mut(&mut self, dc: DcId) -> Option<&mut DcEntry> {
        self.dcs.iter_mut().find(|e| e.dc == dc)
    }

    /// The DC's entry, made (evicting an unused one if the table is full).
    fn entry(&mut self, dc: DcId, now: Instant) -> Result<&mut DcEntry, RouteError> {
        self.now = self.now.max(now);
        if let Some(i) = self.dcs.iter().position(|e| e.dc == dc) {
            return self.dcs.get_mut(i).ok_or(RouteError::Full);
        }
        if self.dcs.is_full() {
            // An entry with no connection, nothing held, nothing unsaved, no authorization and not the home DC can
            // go: one without a key first (it records nothing the host would have to redo), then an idle CDN DC's
            // (its key is not kept anyway, `Record::set_key`, and costs one handshake to make again), so a client
            // redirected to more CDN DCs than the table holds is not refused `Full` until it restarts.
            let held = &self.held;
            let home = self.home;
            let options = &self.options;
            let free = |e: &DcEntry| {
                e.idle()
                    && !e.unsaved()
                    && e.auth != Auth::Authorized
                    && Some(e.dc) != home
                    && !held.iter().any(|h| h.link.dc == e.dc)
            };
            let victim = self
                .dcs
                .iter()
                .position(|e| free(e) && !e.has_key)
                .or_else(|| self.dcs.iter().position(|e| free(e) && is_cdn(options, e.dc)));
            match victim {
                Some(i) => {
                    self.dcs.swap_remove(i);
                }
                None => return Err(RouteError::Full),
            }
        }
        let fresh = DcEntry {
            dc,
            has_key: false,
            auth: Auth::None,
            links: [LinkSlot::CLOSED; 3],
            unsaved_key: false,
            unsaved_drop: false,
            unsaved_auth: false,
        };
        self.dcs.push(fresh).map_err(|_| RouteError::Full)?;
        self.dcs.last_mut().ok_or(RouteError::Full)
    }

    /// Whether an address fits `link`: the CDN's for a CDN link, a media-only one (or, if the DC has none, any
    /// regular one) for a media link, a regular one for the main link; IPv6 only if allowed.
    fn candidates(&self, link: Link) -> impl Iterator<Item = &DcOption> {
        let has_media = self.options.iter().any(|o| o.dc == link.dc && o.media_only && !o.cdn);
        let allow_v6 = self.config.allow_ipv6;
        self.options.iter().filter(move |o| {
            o.dc == link.dc
                && (allow_v6 || o.addr.is_ipv4())
                && match link.kind {
                    LinkKind::Cdn => o.cdn,
                    LinkKind::Media => !o.cdn && (o.media_only || !has_media),
                    LinkKind::Main => !o.cdn && !o.media_only,
                }
        })
    }

    /// The `n`-th address for `link` (wrapping), preferred family first.
    fn pick(&self, link: Link, n: u8) -> Option<DcOption> {
        let first_v6 = self.config.prefer_ipv6;
        let count = self.candidates(link).count();
        if count == 0 {
            return None;
        }
        let n = usize::from(n) % count;
        self.candidates(link)
            .filter(|o| o.addr.is_ipv6() == first_v6)
            .chain(self.candidates(link).filter(|o| o.addr.is_ipv6() != first_v6))
            .nth(n)
            .copied()
    }

    fn needs_auth(&self, link: Link) -> bool {
        self.signed_in && link.kind != LinkKind::Cdn
    }

    fn link_for(&self, ticket: &Ticket) -> Result<Link, RouteError> {
        let (dc, kind) = match ticket.target {
            Target::Home => (self.home.ok_or(RouteError::NoHome)?, LinkKind::Main),
            Target::Dc(dc) => (dc, LinkKind::Main),
            Target::Cdn(dc) => (dc, LinkKind::Cdn),
        };
        let kind = if ticket.media && kind == LinkKind::Main {
            LinkKind::Media
        } else {
            kind
        };
        Ok(Link { dc, kind })
    }

    /// Routes a request: send it now on a ready connection, or hold it while its connection opens or the
    /// authorization is copied to its DC.
    ///
    /// # Errors
    /// No home DC, no address for the DC, a full table; nothing changed.
    pub fn route(&mut self, ticket: &Ticket, now: Instant) -> Result<Route, RouteError> {
        let link = self.link_for(ticket)?;
        if self.candidates(link).next().is_none() {
            return Err(RouteError::NoOption(link.dc));
        }
        let needs_auth = self.needs_auth(link);
        let own = self.held.iter().any(|h| h.id == ticket.id);
        if self.held.is_full() && !own {
            // Holding may be needed; check before touching any state so that an error changes nothing.
            let ready = self
                .find(link.dc)
                .is_some_and(|e| self.usable(e, link.kind, needs_auth));
            if !ready {
                return Err(RouteError::Full);
            }
        }
        self.entry(link.dc, now)?;
        // A request routed again (after a migration) gives up its earlier place.
        self.held.retain(|h| h.id != ticket.id);
        let usable = self
            .find(link.dc)
            .is_some_and(|e| self.usable(e, link.kind, needs_auth));
        let e = self.find_mut(link.dc).ok_or(RouteError::Full)?;
        let authorized = !needs_auth || e.auth == Auth::Authorized;
        let Some(slot) = e.link_mut(link.kind) else {
            return Err(RouteError::Full);
        };
        if usable {
            slot.in_flight = slot.in_flight.saturating_add(1);
            slot.last_used = now;
            return Ok(Route::Send(link));
        }
        if matches!(slot.state, LinkState::Closed | LinkState::WantClose) {
            slot.state = LinkState::WantOpen;
            slot.attempts = 0;
        }
        if !authorized && e.auth == Auth::None {
            e.auth = Auth::Needed;
        }
        self.held
            .push(Held {
                id: ticket.id,
                link,
                failed: None,
            })
            .map_err(|_| RouteError::Full)?;
        Ok(Route::Held)
    }

    /// A request got `*_MIGRATE_X` (reason and DC from [`RpcError::classify`](super::rpc_error::RpcError::classify)):
    /// PHONE, NETWORK and USER move the home DC, FILE and STATS only this request. The ticket is rewritten and
    /// routed again. The request's previous connection is done with it: call [`Router::done`] for it first.
    ///
    /// # Errors
    /// Too many migrations for this request, or no address known for the DC: the home DC and the ticket are left
    /// unchanged. Or any error of [`Router::route`], after the move.
    pub fn on_migrate(
        &mut self,
        ticket: &mut Ticket,
        reason: MigrateReason,
        dc: DcId,
        now: Instant,
    ) -> Result<Route, RouteError> {
        if ticket.migrations >= self.config.max_migrations {
            return Err(RouteError::MigrationLoop);
        }
        let target = if reason.moves_home() {
            Target::Home
        } else {
            Target::Dc(dc)
        };
        let main = Link {
            dc,
            kind: if ticket.media && !reason.moves_home() {
                LinkKind::Media
            } else {
                LinkKind::Main
            },
        };
        if self.candidates(main).next().is_none() {
            return Err(RouteError::NoOption(dc));
        }
        ticket.migrations = ticket.migrations.saturating_add(1);
        ticket.target = target;
        if reason.moves_home() {
            if self.home != Some(dc) {
                self.unsaved_home = true;
            }
            self.home = Some(dc);
            if ticket.media {
                // Sign-in and account calls move home; they are never file transfers.
                ticket.media = false;
            }
        }
        self.route(ticket, now)
    }

    /// The host gave up on request `id` (its deadline passed) while the router held it: its place in the held
    /// table is freed and it is never sent. Returns whether it was held.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let before = self.held.len();
        self.held.retain(|h| h.id != id);
        self.held.len() != before
    }

    /// A request sent on `link` finished (answered or failed): the connection may become idle.
    pub fn done(&mut self, link: Link, now: Instant) {
        self.now = self.now.max(now);
        if let Some(slot) = self.find_mut(link.dc).and_then(|e| e.link_mut(link.kind)) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            slot.last_used = now;
        }
    }

    /// The connection for `link` is up with an auth key (after the key exchange, if one ran).
    pub fn link_ready(&mut self, link: Link, now: Instant) {
        self.now = self.now.max(now);
        if let Some(e) = self.find_mut(link.dc) {
            if !e.has_key && link.kind != LinkKind::Cdn {
                // The key exchange the router asked for made a key: stored before anything goes out under it. Not a
                // CDN DC's: those are not kept (see `Record::set_key`), so nothing waits for them to be saved.
                e.unsaved_key = true;
            }
            e.has_key = true;
            if let Some(slot) = e.link_mut(link.kind) {
                slot.state = LinkState::Ready;
                slot.attempts = 0;
                slot.last_used = now;
                slot.up_since = now;
            }
        }
    }

    fn wanted(&self, link: Link) -> bool {
        let home_main = self.home == Some(link.dc) && link.kind == LinkKind::Main;
        let in_flight = self.find(link.dc).is_some_and(|e| e.link(link.kind).in_flight > 0);
        // A main connection carries an authorization copy: the target's while it needs one, the source's while any
        // DC does.
        let copying = |e: &DcEntry| matches!(e.auth, Auth::Needed | Auth::Exporting);
        let auth_main = link.kind == LinkKind::Main
            && (self.find(link.dc).is_some_and(copying)
                || (self.export_source() == Some(link.dc) && self.dcs.iter().any(copying)));
        home_main || in_flight || auth_main || self.held.iter().any(|h| h.link == link && h.failed.is_none())
    }

    /// Opening the connection failed, or an open one was lost. If it is still wanted, the next address is tried
    /// after a backoff ([`RouterConfig::connect_backoff`]); after [`RouterConfig::max_connect_attempts`] failures in
    /// a row, the requests held for it fail (and, for a main connection, those waiting for the authorization that
    /// would have been imported over it).
    pub fn link_failed(&mut self, link: Link, now: Instant) {
        self.now = self.now.max(now);
        let wanted = self.wanted(link);
        let source = self.export_source();
        let cfg = self.config;
        let Some(slot) = self.find_mut(link.dc).and_then(|e| e.link_mut(link.kind)) else {
            return;
        };
        slot.last_used = now;
        if !wanted {
            slot.state = LinkState::Closed;
            return;
        }
        slot.attempts = slot.attempts.saturating_add(1);
        slot.option_idx = slot.option_idx.wrapping_add(1);
        let doublings = u32::from(slot.attempts.saturating_sub(1)).min(16);
        let backoff = cfg
            .connect_backoff
            .saturating_mul(1 << doublings)
            .min(cfg.connect_backoff_max);
        slot.not_before = now.saturating_add(backoff);
        if slot.attempts < cfg.max_connect_attempts {
            slot.state = LinkState::WantOpen;
            return;
        }
        slot.state = LinkState::Closed;
        slot.attempts = 0;
        let reason = RouteError::Unreachable(link.dc);
        let main = link.kind == LinkKind::Main;
        let signed_in = self.signed_in;
        let needed: heapless::Vec<DcId, D> = self
            .dcs
            .iter()
            .filter(|e| matches!(e.auth, Auth::Needed | Auth::Exporting))
            .map(|e| e.dc)
            .collect();
        for h in &mut self.held {
            let needs_auth = signed_in && h.link.kind != LinkKind::Cdn;
            let via_main = main
                && needs_auth
                && (h.link.dc == link.dc || (source == Some(link.dc) && needed.contains(&h.link.dc)));
            if h.failed.is_none() && (h.link == link || via_main) {
                h.failed = Some(reason);
            }
        }
        for dc in needed {
            if let Some(e) = self.find_mut(dc)
                && e.auth == Auth::Exporting
                && (dc == link.dc || source == Some(link.dc))
                && main
            {
                e.auth = Auth::None;
            }
        }
    }

    /// The connection was closed (by the host after [`Action::Close`], or by the peer). Requests still held for it,
    /// and the home DC's main connection, reopen it. A close the host was not asked for waits before reopening when
    /// it repeats: the first after the connection stayed up for [`RouterConfig::connect_backoff_max`] reopens at
    /// once (a DC closes idle connections), each further one waits [`RouterConfig::connect_backoff`], doubling up
    /// to the maximum, so a DC that accepts and drops every connection is not hammered.
    pub fn link_closed(&mut self, link: Link, now: Instant) {
        self.now = self.now.max(now);
        let reopen = self.held.iter().any(|h| h.link == link && h.failed.is_none())
            || (self.home == Some(link.dc) && link.kind == LinkKind::Main);
        let cfg = self.config;
        let Some(slot) = self.find_mut(link.dc).and_then(|e| e.link_mut(link.kind)) else {
            return;
        };
        // Closed by the host after `Action::Close` (reported or not): no backoff.
        let asked = matches!(slot.state, LinkState::WantClose | LinkState::Closed);
        if slot.state == LinkState::Ready && now.saturating_duration_since(slot.up_since) >= cfg.connect_backoff_max {
            slot.closes = 0;
        }
        slot.state = if reopen { LinkState::WantOpen } else { LinkState::Closed };
        if !asked {
            slot.closes = slot.closes.saturating_add(1);
            if let Some(doublings) = slot.closes.checked_sub(2) {
                let backoff = cfg
                    .connect_backoff
                    .saturating_mul(1 << u32::from(doublings).min(16))
                    .min(cfg.connect_backoff_max);
                slot.not_before = now.saturating_add(backoff);
            }
        }
    }

    /// `auth.importAuthorization` succeeded on `dc`: its held requests go out. Saved as [`Change::Authorized`].
    pub fn imported(&mut self, dc: DcId) {
        if let Some(e) = self.find_mut(dc) {
            e.auth = Auth::Authorized;
            e.unsaved_auth = true;
        }
    }

    /// Copying the authorization to `dc` failed (the export or the import answered an error): the requests held
    /// for it fail; a later request tries again.
    pub fn import_failed(&mut self, dc: DcId) {
        if let Some(e) = self.find_mut(dc) {
            e.auth = Auth::None;
        }
        self.fail_waiting_auth(dc);
    }

    fn fail_waiting_auth(&mut self, dc: DcId) {
        let signed_in = self.signed_in;
        for h in &mut self.held {
            if h.link.dc == dc && h.failed.is_none() && signed_in && h.link.kind != LinkKind::Cdn {
                h.failed = Some(RouteError::AuthorizationFailed(dc));
            }
        }
    }

    /// A request on `dc` got a 401 (`AUTH_KEY_UNREGISTERED`...): on the home DC the account is signed out
    /// (returns `true`: sign in again); on another DC only its copy of the authorization is gone, and the next
    /// request there copies it again.
    pub fn unauthorized(&mut self, dc: DcId) -> bool {
        if self.home == Some(dc) {
            self.signed_out();
            return true;
        }
        if let Some(e) = self.find_mut(dc) {
            e.auth = Auth::None;
        }
        false
    }

    /// Marks idle connections for closing at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        for i in 0..self.dcs.len() {
            for kind in LinkKind::ALL {
                let Some(e) = self.dcs.get(i) else {
                    continue;
                };
                let link = Link { dc: e.dc, kind };
                let slot = e.link(kind);
                let due = slot.last_used.saturating_add(self.config.idle_close) <= now;
                if slot.state == LinkState::Ready
                    && due
                    && !self.wanted(link)
                    && let Some(s) = self.dcs.get_mut(i).and_then(|e| e.link_mut(kind))
                {
                    s.state = LinkState::WantClose;
                }
            }
        }
    }

    /// The next instant a connection becomes idle enough to close, or a failed one may be opened again (`None`:
    /// nothing happens without new input). Call [`Router::handle_timeout`] then, and poll the actions.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dcs
            .iter()
            .flat_map(|e| LinkKind::ALL.into_iter().map(move |kind| (e, kind)))
            .filter(|(e, kind)| e.link(*kind).state == LinkState::Ready && !self.wanted(Link { dc: e.dc, kind: *kind }))
            .map(|(e, kind)| e.link(kind).last_used.saturating_add(self.config.idle_close))
            .chain(
                self.dcs.iter().flat_map(|e| e.links.iter()).filter_map(|l| {
                    (l.state == LinkState::WantOpen && l.not_before > self.now).then_some(l.not_before)
                }),
            )
            .min()
    }

    /// The next thing the host must do. Call until `None` after every other call. Work is bounded by the table
    /// sizes.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.next_close() {
            return Some(a);
        }
        self.start_exports_prereqs();
        if let Some(a) = self.next_open() {
            return Some(a);
        }
        if let Some(a) = self.next_export() {
            return Some(a);
        }
        if let Some(a) = self.next_send() {
            return Some(a);
        }
        let i = self.held.iter().position(|h| h.failed.is_some())?;
        let h = self.held.remove(i);
        Some(Action::Fail {
            id: h.id,
            reason: h.failed.unwrap_or(RouteError::Full),
        })
    }

    fn next_close(&mut self) -> Option<Action> {
        for e in &mut self.dcs {
            for kind in LinkKind::ALL {
                if let Some(slot) = e.link_mut(kind)
                    && slot.state == LinkState::WantClose
                {
                    slot.state = LinkState::Closed;
                    return Some(Action::Close {
                        link: Link { dc: e.dc, kind },
                    });
                }
            }
        }
        None
    }

    /// The DC that can give its authorization away: the home DC if it has it, else any that has.
    fn export_source(&self) -> Option<DcId> {
        let home = self
            .home
            .and_then(|h| self.find(h))
            .filter(|e| e.auth == Auth::Authorized);
        home.or_else(|| self.dcs.iter().find(|e| e.auth == Auth::Authorized))
            .map(|e| e.dc)
    }

    /// For every DC whose authorization is needed: both main connections must be open.
    fn start_exports_prereqs(&mut self) {
        // A DC needs the authorization while a live held request needs it there (again, after a 401 or a sign-in
        // that came while it waited), and no longer once none does.
        let signed_in = self.signed_in;
        for i in 0..self.dcs.len() {
            let Some(dc) = self.dcs.get(i).map(|e| e.dc) else {
                continue;
            };
            let needy = signed_in
                && self
                    .held
                    .iter()
                    .any(|h| h.link.dc == dc && h.failed.is_none() && h.link.kind != LinkKind::Cdn);
            if let Some(e) = self.dcs.get_mut(i) {
                match (e.auth, needy) {
                    (Auth::None, true) => e.auth = Auth::Needed,
                    (Auth::Needed, false) => e.auth = Auth::None,
                    _ => {}
                }
            }
        }
        if !self.dcs.iter().any(|e| e.auth == Auth::Needed) {
            return;
        }
        let Some(source) = self.export_source() else {
            // Nobody can give it: fail what waits for it.
            let needed: heapless::Vec<DcId, D> = self
                .dcs
                .iter()
                .filter(|e| e.auth == Auth::Needed)
                .map(|e| e.dc)
                .collect();
            for dc in needed {
                if let Some(e) = self.find_mut(dc) {
                    e.auth = Auth::None;
                }
                self.fail_waiting_auth(dc);
            }
            return;
        };
        let needed: heapless::Vec<DcId, D> = self
            .dcs
            .iter()
            .filter(|e| e.auth == Auth::Needed)
            .map(|e| e.dc)
            .collect();
        for dc in needed.into_iter().chain(core::iter::once(source)) {
            if let Some(slot) = self.find_mut(dc).and_then(|e| e.link_mut(LinkKind::Main))
                && slot.state == LinkState::Closed
            {
                slot.state = LinkState::WantOpen;
                slot.attempts = 0;
            }
        }
    }

    fn next_open(&mut self) -> Option<Action> {
        for i in 0..self.dcs.len() {
            for kind in LinkKind::ALL {
                let e = self.dcs.get(i)?;
                let slot = e.link(kind);
                if slot.state != LinkState::WantOpen || slot.not_before > self.now {
                    continue;
                }
                let link = Link { dc: e.dc, kind };
                let has_key = e.has_key;
                if !has_key && e.links.iter().any(|l| l.state == LinkState::Opening) {
                    // Another connection of this DC is making its key: one DC, one key. A second key exchange
                    // would make a second key the router does not count (its `Change::Key` was confirmed for the
                    // first), so requests would go out under a key never stored. It opens on the key once made.
                    continue;
                }
                let option = self.pick(link, slot.option_idx);
                let slot = self.dcs.get_mut(i)?.link_mut(kind)?;
                match option {
                    Some(option) => {
                        slot.state = LinkState::Opening;
                        return Some(Action::Open { link, option, has_key });
                    }
                    None => {
                        // The list changed under it: what waits for it cannot be routed.
                        slot.state = LinkState::Closed;
                        for h in &mut self.held {
                            if h.link == link && h.failed.is_none() {
                                h.failed = Some(RouteError::NoOption(link.dc));
                            }
                        }
                    }
                }
            }
        }
        None
    }

    /// The main connection of `dc` can carry the export or import calls (key stored; for the source, the sign-in
    /// stored too).
    fn main_ready(&self, dc: DcId, needs_auth: bool) -> bool {
        self.find(dc)
            .is_some_and(|e| self.usable(e, LinkKind::Main, needs_auth))
    }

    fn next_export(&mut self) -> Option<Action> {
        let from = self.export_source()?;
        if !self.main_ready(from, true) {
            return None;
        }
        let to = self
            .dcs
            .iter()
            .find(|e| e.auth == Auth::Needed && self.usable(e, LinkKind::Main, false))?
            .dc;
        self.find_mut(to)?.auth = Auth::Exporting;
        Some(Action::Export { from, to })
    }

    fn next_send(&mut self) -> Option<Action> {
        let i = self.held.iter().position(|h| {
            h.failed.is_none()
                && self
                    .find(h.link.dc)
                    .is_some_and(|e| self.usable(e, h.link.kind, self.needs_auth(h.link)))
        })?;
        let h = self.held.remove(i);
        if let Some(slot) = self.find_mut(h.link.dc).and_then(|e| e.link_mut(h.link.kind)) {
            slot.in_flight = slot.in_flight.saturating_add(1);
        }
        Some(Action::Send { id: h.id, link: h.link })
    }
}

/// What [`Router::apply_config`] did with a config's addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConfigReport {
    /// Addresses now in the table.
    pub accepted: usize,
    /// Addresses skipped as malformed (a DC id out of range, an address that does not parse or contradicts the
    /// `ipv6` flag, a port out of range, a secret that is not 16 bytes).
    pub invalid: usize,
    /// Addresses that did not fit the table.
    pub no_room: usize,
}

/// Why a config was refused; the table is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The bytes are not a `Config` (the validator's reason).
    Malformed(crate::tl::layout::Error),
    /// The config is for the other network (test vs production).
    WrongNetwork,
    /// No address in it was usable.
    Empty,
}

impl ConfigError {
    /// [`Fault::Peer`]: the server sent it.
    pub const fn fault(&self) -> Fault {
        Fault::Peer
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Malformed(e) => write!(f, "malformed config: {e:?}"),
            ConfigError::WrongNetwork => f.write_str("config is for the other network"),
            ConfigError::Empty => f.write_str("config has no usable address"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// One `dcOption`'s fields as the wire has them (so the conversion is testable without the `api` feature).
#[derive(Clone, Copy, Debug)]
pub struct RawDcOption<'a> {
    /// `id`.
    pub id: i32,
    /// `ip_address` (ASCII).
    pub ip_address: &'a [u8],
    /// `port`.
    pub port: i32,
    /// The `ipv6` flag.
    pub ipv6: bool,
    /// `media_only`.
    pub media_only: bool,
    /// `tcpo_only`.
    pub tcpo_only: bool,
    /// `cdn`.
    pub cdn: bool,
    /// `static`.
    pub static_: bool,
    /// `this_port_only`.
    pub this_port_only: bool,
    /// `secret`.
    pub secret: Option<&'a [u8]>,
}

impl RawDcOption<'_> {
    /// The option, checked: `None` when a field is out of range or does not parse.
    #[must_use]
    pub fn check(&self) -> Option<DcOption> {
        let dc = DcId::new(i64::from(self.id))?;
        let port = u16::try_from(self.port).ok().filter(|p| *p != 0)?;
        let addr: IpAddr = core::str::from_utf8(self.ip_address).ok()?.parse().ok()?;
        if addr.is_ipv6() != self.ipv6 {
            return None;
        }
        let secret = match self.secret {
            None => None,
            Some(s) => Some(<[u8; 16]>::try_from(s).ok()?),
        };
        Some(DcOption {
            dc,
            addr,
            port,
            media_only: self.media_only,
            tcpo_only: self.tcpo_only,
            cdn: self.cdn,
            static_: self.static_,
            this_port_only: self.this_port_only,
            secret,
        })
    }
}

impl<const O: usize, const D: usize, const H: usize> Router<O, D, H> {
    /// Replaces the address table with `options` (a config's `dc_options`), all or nothing: a config for the other
    /// network, or one with no usable address, leaves the table as it was. Malformed entries are skipped and
    /// counted; entries beyond the capacity are counted in [`ConfigReport::no_room`].
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn replace_options<'a>(
        &mut self,
        test_mode: bool,
        options: impl Iterator<Item = RawDcOption<'a>>,
    ) -> Result<ConfigReport, ConfigError> {
        if test_mode != self.config.test_mode {
            return Err(ConfigError::WrongNetwork);
        }
        let mut table: heapless::Vec<DcOption, O> = heapless::Vec::new();
        let mut report = ConfigReport::default();
        for raw in options {
            match raw.check() {
                None => report.invalid = report.invalid.saturating_add(1),
                Some(o) if table.contains(&o) => {}
                Some(o) => {
                    if table.push(o).is_err() {
                        report.no_room = report.no_room.saturating_add(1);
                    }
                }
            }
        }
        if table.is_empty() {
            return Err(ConfigError::Empty);
        }
        report.accepted = table.len();
        if self.options != table {
            self.unsaved_options = true;
        }
        self.options = table;
        Ok(report)
    }

    /// Replaces the address table from a decoded `help.getConfig` answer (see [`Router::replace_options`]).
    ///
    /// # Errors
    /// See [`ConfigError`].
    #[cfg(feature = "api")]
    pub fn apply_config(&mut self, config: &crate::tl::api::types::Config<'_>) -> Result<ConfigReport, ConfigError> {
        use crate::tl::api::enums;
        let raw = config.dc_options.iter().filter_map(|o| match o.get()? {
            enums::DcOption::DcOption(o) => Some(RawDcOption {
                id: o.id,
                ip_address: o.ip_address,
                port: o.port,
                ipv6: o.ipv6,
                media_only: o.media_only,
                tcpo_only: o.tcpo_only,
                cdn: o.cdn,
                static_: o.static_,
                this_port_only: o.this_port_only,
                secret: o.secret,
            }),
        });
        self.replace_options(config.test_mode, raw)
    }

    /// Validates and decodes the `rpc_result` body of `help.getConfig`, then [`Router::apply_config`].
    ///
    /// # Errors
    /// See [`ConfigError`].
    #[cfg(feature = "api")]
    pub fn apply_config_result(&mut self, body: &[u8]) -> Result<ConfigReport, ConfigError> {
        use crate::tl::api::{RemoteCall, enums, functions};
        let obj = functions::HelpGetConfig::decode_result(body).map_err(ConfigError::Malformed)?;
        match obj.get() {
            Some(enums::Config::Config(c)) => self.apply_config(&c),
            None => Err(ConfigError::Malformed(crate::tl::layout::Error::Truncated)),
        }
    }
}

/// The `auth.importAuthorization` call that carries the result of an `auth.exportAuthorization` (its `rpc_result`
/// body) to the target DC, borrowing the exported bytes.
///
/// # Errors
/// The body is not an `auth.ExportedAuthorization`.
#[cfg(feature = "api")]
pub fn import_call(
    exported: &[u8],
) -> Result<crate::tl::api::functions::AuthImportAuthorization<'_>, crate::tl::layout::Error> {
    use crate::tl::api::{RemoteCall, enums, functions};
    let obj = functions::AuthExportAuthorization::decode_result(exported)?;
    match obj.get() {
        Some(enums::AuthExportedAuthorization::AuthExportedAuthorization(e)) => {
            Ok(functions::AuthImportAuthorization {
                id: e.id,
                bytes: e.bytes,
            })
        }
        None => Err(crate::tl::layout::Error::Truncated),
    }
}
