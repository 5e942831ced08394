//! Signing in, as state machines the host drives: a bot token (`auth.importBotAuthorization`), a phone code
//! (`auth.sendCode`, `auth.signIn`, `auth.signUp`, `auth.resendCode`, `auth.cancelCode`), the two-step verification
//! password (`account.getPassword`, `auth.checkPassword`), QR login (`auth.exportLoginToken`, `updateLoginToken`,
//! `auth.importLoginToken`) and `auth.logOut`.
//!
//! **Where the data comes from and goes.** A [`SignIn`] is made from the host's choices (api_id/api_hash, the
//! phone number or bot token) and asks, through [`SignIn::poll_request`], for one API call at a time: it writes
//! the call with the generated writers ([`crate::tl::api`]) into the host's buffer, wrapped in
//! `invokeWithLayer(initConnection(…))` when it is the first call on a DC ([`SignInConfig::init`]), and tags it
//! with a [`Tag`]. The host sends those bytes as a query on its connection to the current DC
//! (`Connection::send`) and hands the answer back with the tag: [`SignIn::handle_result`] for an `rpc_result`,
//! [`SignIn::handle_rpc_error`] for an `rpc_error`, [`SignIn::handle_failed`] when the query ended without an
//! answer. Updates go to [`SignIn::handle_update`] (QR login waits for `updateLoginToken`), and the timer
//! ([`SignIn::poll_timeout`], [`SignIn::handle_timeout`]) runs the code's resend delay, flood waits and the QR
//! token's expiry. What the user must do next comes back as a [`Progress`] (a code was sent, the password is
//! needed, show this QR token, move to DC X, signed in) and as the [`Stage`] the flow waits in; the user's answers
//! go in through [`SignIn::submit_code`], [`SignIn::submit_password`] (or [`SignIn::submit_srp`]),
//! [`SignIn::sign_up`], [`SignIn::resend_code`], [`SignIn::cancel_code`] and [`SignIn::migrated`].
//!
//! **Where we follow TDLib** (`td/telegram/AuthManager.cpp`, the reference client): an error the user can fix
//! (a wrong code, a wrong password, an invalid name) leaves the flow waiting for the next try; any other refusal
//! ends it. `SESSION_PASSWORD_NEEDED` after `auth.sendCode`, `auth.signIn` or a login token moves to
//! `account.getPassword`. After a wrong password the SRP parameters are fetched again, since `srp_B`/`srp_id`
//! are single-use. A code can be resent only when the DC named a `next_type`, and not before its `timeout`. A QR
//! token is re-exported when it expires (its lifetime at least one second) and when `updateLoginToken` arrives;
//! an export that fails after the first token was shown is retried after 1, 2, 4 … 60 s. `auth.logOut` ends
//! logged out whatever the DC answers (the key is dropped either way).
//!
//! **Where we chose otherwise.** A flood wait up to [`SignInConfig::max_flood_wait`] is waited out and the call
//! re-sent by the timer (TDLib surfaces every flood wait of an auth query); a longer one is surfaced. Migrations
//! (`PHONE_MIGRATE_X`, `USER_MIGRATE_X`, `NETWORK_MIGRATE_X`, `auth.loginTokenMigrateTo`) are bounded by
//! [`MAX_MIGRATIONS`] per flow, and a query lost without an answer is re-sent at most [`MAX_RESENDS`] times in a
//! row. [`SignIn::submit_password`] computes the SRP proof with [`crate::client::srp`] (the DC's parameters checked
//! first); the 100,000-iteration PBKDF2 is the host's CPU to schedule, so a host that cannot block computes the
//! proof elsewhere from [`SignIn::password_challenge`] and hands it back with [`SignIn::submit_srp`]. Email codes,
//! passkeys and paid sign-up are not supported: they end the flow with [`SignInError::Unsupported`].
//!
//! **Bounds.** Nothing allocates; every string the flow keeps is a `heapless` buffer with a named capacity
//! ([`MAX_PHONE`], [`MAX_CODE`], [`MAX_PHONE_CODE_HASH`], [`MAX_BOT_TOKEN`], [`MAX_NAME`], [`MAX_LOGIN_TOKEN`],
//! [`MAX_SALT`], [`SRP_BYTES`]); a host string over its capacity is refused ([`SignInError::TooLong`], nothing
//! changed) and a DC value over it ends the flow ([`SignInError::PeerTooLong`]). Answers are validated against the
//! schema before a field is read; an answer of the wrong type, an unknown constructor or trailing bytes end the
//! flow with a typed error, never a panic. The code, the bot token and the login token are zeroized on drop.
//!
//! ```no_run
//! use mtproto_sansio::client::signin::{Progress, SignIn, SignInConfig, Stage};
//! use mtproto_sansio::time::Instant;
//!
//! /// What the host's connection reports for a query: stands in for `session::Event`.
//! enum Answer { Result(Vec<u8>), Error(i32, Vec<u8>) }
//!
//! fn sign_in_bot(mut send: impl FnMut(&[u8]) -> Answer, now: impl Fn() -> Instant) {
//!     let cfg = SignInConfig::new(12345, b"0123456789abcdef0123456789abcdef");
//!     let mut flow = SignIn::bot(cfg, b"123456:AAEexampletoken").unwrap();
//!     let mut buf = [0u8; 1024];
//!     loop {
//!         // Send what the flow asks for; each answer comes back with its tag.
//!         while let Some(req) = flow.poll_request(now(), &mut buf).unwrap() {
//!             let progress = match send(&buf[..req.len]) {
//!                 Answer::Result(body) => flow.handle_result(now(), req.tag, &body).map(|p| p.is_final()),
//!                 Answer::Error(code, msg) => flow.handle_rpc_error(now(), req.tag, code, &msg).map(|p| p.is_final()),
//!             };
//!             if progress.is_err() || progress == Ok(true) {
//!                 break;
//!             }
//!         }
//!         match flow.stage() {
//!             Stage::SignedIn { user_id, .. } => return println!("bot {user_id} signed in"),
//!             Stage::Failed(e) => return println!("sign-in failed: {e}"),
//!             // PHONE/USER_MIGRATE: open (or pick) the connection to `dc`, then resume there.
//!             Stage::WaitMigration { dc } => flow.migrated(now(), dc).unwrap(),
//!             // Flood waits: sleep until the flow's timer, then let it re-send.
//!             _ => {
//!                 if let Some(at) = flow.poll_timeout() {
//!                     let _ = at; // sleep until `at`
//!                     let _ = flow.handle_timeout(now());
//!                 }
//!             }
//!         }
//!     }
//! }
//! ```
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;
use core::time::Duration;

use heapless::Vec as HVec;
use zeroize::Zeroize;

use rand_core::CryptoRng;

use crate::client::srp::{self, SrpError};
use crate::crypto::dh::PrimeCache;
use crate::error::Fault;
use crate::session::RpcErrorKind;
use crate::time::{Instant, UnixTime};
use crate::tl::api::{Boxed, Obj, RemoteCall, Seq, enums, functions, types};
use crate::tl::invoke::{InitConnection, write_init_connection};
use crate::tl::layout::Error as LayoutError;
use crate::tl::{TlWrite, Writer};

/// The API layer of the generated types (`tl-gen/schema/api.tl`), named in `invokeWithLayer`.
pub const API_LAYER: i32 = 228;
/// Longest phone number accepted, in bytes (E.164 has at most 15 digits; room for a `+` and separators).
pub const MAX_PHONE: usize = 32;
/// Longest login code accepted, in bytes (Telegram's are 5 or 6 digits; words and phrases are longer).
pub const MAX_CODE: usize = 64;
/// Longest `phone_code_hash` kept, in bytes (Telegram's are 18).
pub const MAX_PHONE_CODE_HASH: usize = 128;
/// Longest bot token accepted, in bytes (`<id>:<35 characters>` on Telegram).
pub const MAX_BOT_TOKEN: usize = 128;
/// Longest first or last name accepted for `auth.signUp`, in bytes (Telegram: 64 characters of UTF-8).
pub const MAX_NAME: usize = 256;
/// Longest QR login token kept, in bytes (Telegram's are 32).
pub const MAX_LOGIN_TOKEN: usize = 256;
/// Longest SRP salt kept, in bytes (the SRP module's bound; Telegram's are 8 to 40).
pub const MAX_SALT: usize = 128;
/// Bytes of SRP's p, `srp_B` and A: 2048 bits.
pub const SRP_BYTES: usize = 256;
/// Bytes of SRP's M1 (a SHA-256).
pub const SRP_M1_BYTES: usize = 32;
/// Migrations one flow follows; one more ends it with [`SignInError::TooManyMigrations`] (a DC pair bouncing a
/// client between them must not keep it busy forever; a real sign-in needs at most two: phone, then QR import).
pub const MAX_MIGRATIONS: u8 = 4;
/// Times in a row a query that ended without an answer is re-sent before the flow gives up ([`SignInError::Lost`]).
pub const MAX_RESENDS: u8 = 3;
/// Longest lifetime believed for a QR token, whatever `expires` says (a wrong clock must not freeze the code).
pub const MAX_QR_LIFETIME: Duration = Duration::from_secs(600);
/// Longest delay between retries of a failed QR re-export (TDLib's).
pub const MAX_QR_RETRY: Duration = Duration::from_secs(60);
/// Largest DC id accepted from a migration (TDLib's bound for an internal DC id).
pub const MAX_DC_ID: i32 = 1000;

/// What a flow is configured with: the application's credentials, how it introduces itself and its flood-wait
/// threshold. Borrowed from the host for the flow's lifetime.
#[derive(Clone, Copy)]
pub struct SignInConfig<'c> {
    /// The application's `api_id` (my.telegram.org).
    pub api_id: i32,
    /// The application's `api_hash`.
    pub api_hash: &'c [u8],
    /// When set, the first call on each DC (the first of the flow and the first after a migration) is wrapped in
    /// `invokeWithLayer(layer, initConnection(…))`. `None` when the host already sent its own first call there.
    pub init: Option<InitConnection<'c>>,
    /// The layer named by `invokeWithLayer` ([`API_LAYER`], the layer of the types used).
    pub layer: i32,
    /// A `FLOOD_WAIT_X` up to this long is waited out and the call re-sent; a longer one is surfaced.
    pub max_flood_wait: Duration,
    /// `codeSettings.logout_tokens`: `future_auth_token`s of earlier sessions of this phone, which let the DC
    /// sign the user in without a code (`auth.sentCodeSuccess`).
    pub logout_tokens: &'c [&'c [u8]],
}

impl<'c> SignInConfig<'c> {
    /// A configuration without `initConnection`, waiting out flood waits up to 10 s.
    #[must_use]
    pub const fn new(api_id: i32, api_hash: &'c [u8]) -> Self {
        Self {
            api_id,
            api_hash,
            init: None,
            layer: API_LAYER,
            max_flood_wait: Duration::from_secs(10),
            logout_tokens: &[],
        }
    }
}

impl fmt::Debug for SignInConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // api_hash is the application's credential: not printed.
        f.debug_struct("SignInConfig")
            .field("api_id", &self.api_id)
            .field("layer", &self.layer)
            .field("init", &self.init.is_some())
            .field("max_flood_wait", &self.max_flood_wait)
            .finish_non_exhaustive()
    }
}

/// A request's tag: the host keeps it beside the query's msg_id and hands it back with the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tag(pub u32);

/// The API call a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// `auth.importBotAuthorization`.
    ImportBotAuthorization,
    /// `auth.sendCode`.
    SendCode,
    /// `auth.resendCode`.
    ResendCode,
    /// `auth.cancelCode`.
    CancelCode,
    /// `auth.signIn`.
    SignIn,
    /// `auth.signUp`.
    SignUp,
    /// `account.getPassword`.
    GetPassword,
    /// `auth.checkPassword`.
    CheckPassword,
    /// `auth.exportLoginToken`.
    ExportLoginToken,
    /// `auth.importLoginToken`.
    ImportLoginToken,
    /// `auth.logOut`.
    LogOut,
}

impl Method {
    /// The function's constructor id.
    #[must_use]
    pub const fn id(self) -> u32 {
        match self {
            Method::ImportBotAuthorization => functions::AuthImportBotAuthorization::ID,
            Method::SendCode => functions::AuthSendCode::ID,
            Method::ResendCode => functions::AuthResendCode::ID,
            Method::CancelCode => functions::AuthCancelCode::ID,
            Method::SignIn => functions::AuthSignIn::ID,
            Method::SignUp => functions::AuthSignUp::ID,
            Method::GetPassword => functions::AccountGetPassword::ID,
            Method::CheckPassword => functions::AuthCheckPassword::ID,
            Method::ExportLoginToken => functions::AuthExportLoginToken::ID,
            Method::ImportLoginToken => functions::AuthImportLoginToken::ID,
            Method::LogOut => functions::AuthLogOut::ID,
        }
    }

    /// Calls the user asked for (a code, a password, a name): a refusal the user can fix sends the flow back to
    /// waiting for them.
    const fn waits_after(self) -> Option<Stage> {
        match self {
            Method::SignIn | Method::ResendCode | Method::CancelCode => Some(Stage::WaitCode),
            Method::SignUp => Some(Stage::WaitSignUp),
            _ => None,
        }
    }
}

/// A request written into the host's buffer by [`SignIn::poll_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request {
    /// Hand it back with the answer.
    pub tag: Tag,
    /// The call inside.
    pub method: Method,
    /// Bytes written at the start of the buffer: send them as one query.
    pub len: usize,
    /// The call is wrapped in `invokeWithLayer(initConnection(…))`.
    pub wrapped: bool,
}

/// Which migration moved the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MigrateReason {
    /// `PHONE_MIGRATE_X`: the phone number belongs to DC X; sign in there.
    Phone,
    /// `USER_MIGRATE_X`: the account (or bot) lives on DC X.
    User,
    /// `NETWORK_MIGRATE_X`: this DC sends the client to DC X.
    Network,
    /// `auth.loginTokenMigrateTo`: the QR token was accepted for an account on DC X; import it there.
    LoginToken,
}

/// How a login code was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CodeKind {
    /// To the user's other Telegram apps.
    App,
    /// By SMS.
    Sms,
    /// By a phone call that speaks it.
    Call,
    /// By a flash call: the code is in the caller's number, matching a pattern.
    FlashCall,
    /// By a missed call: the code is the end of the caller's number.
    MissedCall,
    /// Through fragment.com.
    FragmentSms,
    /// By SMS after a Firebase check.
    FirebaseSms,
    /// By SMS, as a word.
    SmsWord,
    /// By SMS, as a phrase.
    SmsPhrase,
}

/// How `auth.resendCode` would send the next code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NextCodeKind {
    /// By SMS.
    Sms,
    /// By a phone call.
    Call,
    /// By a flash call.
    FlashCall,
    /// By a missed call.
    MissedCall,
    /// Through fragment.com.
    FragmentSms,
}

/// A login code was sent (`auth.sentCode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CodeSent {
    /// How it was sent.
    pub kind: CodeKind,
    /// Its length, where the DC said.
    pub length: Option<i32>,
    /// How a resent code would come; `None`: it cannot be resent.
    pub next: Option<NextCodeKind>,
    /// After how long [`SignIn::resend_code`] is allowed (the DC's `timeout`); `None`: at once.
    pub resend_after: Option<Duration>,
}

/// The account has a two-step verification password (`account.password`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PasswordInfo<'b> {
    /// The hint the user set, if any.
    pub hint: Option<&'b [u8]>,
    /// A recovery email is set.
    pub has_recovery: bool,
}

/// Terms of service the user must accept before `auth.signUp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Terms<'b> {
    /// Their text.
    pub text: &'b [u8],
    /// Show them as a popup.
    pub popup: bool,
    /// The minimum age to confirm, if any.
    pub min_age_confirm: Option<i32>,
}

/// A successful sign-in (`auth.authorization`).
#[derive(Clone, Copy, Debug)]
pub struct Authorized<'b> {
    /// The signed-in user's id.
    pub user_id: i64,
    /// The account is a bot.
    pub bot: bool,
    /// The DC asks the user to set a password (`setup_password_required`) within `otherwise_relogin_days`.
    pub otherwise_relogin_days: Option<i32>,
    /// `tmp_sessions`, where the DC sent it.
    pub tmp_sessions: Option<i32>,
    /// A token to keep for the next sign-in's `logout_tokens`.
    pub future_auth_token: Option<&'b [u8]>,
    /// The whole `User` object (names, username, phone).
    pub user: Obj<'b, enums::User<'b>>,
}

/// What an input changed, for the host to act on. Borrows the answer it came from.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'b> {
    /// Nothing for the user: keep driving (send what [`SignIn::poll_request`] asks for, wait for answers/timer).
    Nothing,
    /// The call was refused with a flood wait short enough to wait out: it is re-sent after this long.
    Delayed(Duration),
    /// A login code was sent: ask the user for it ([`SignIn::submit_code`]).
    CodeSent(CodeSent),
    /// The code's resend delay passed: [`SignIn::resend_code`] is allowed now.
    ResendAvailable,
    /// The DC refused what the user gave (a wrong code, password or name, or a flood wait too long to wait out);
    /// the flow waits for another try in its [`Stage`].
    Refused(Refusal),
    /// The account has a password: compute the SRP answer from [`SignIn::password_challenge`] and hand it to
    /// [`SignIn::submit_srp`].
    PasswordNeeded(PasswordInfo<'b>),
    /// The phone number has no account: show the terms, if any, and call [`SignIn::sign_up`].
    SignUpRequired(Option<Terms<'b>>),
    /// Show this QR login token (`tg://login?token=` and the token in base64url) until it expires.
    QrToken {
        /// The token.
        token: &'b [u8],
        /// When it will be replaced (by the flow's timer).
        expires: Instant,
    },
    /// The flow moves to DC `dc`: open (or pick) a connection there, then call [`SignIn::migrated`]. The pending
    /// call is re-sent there.
    Migrate {
        /// The DC to move to.
        dc: i32,
        /// Why.
        reason: MigrateReason,
    },
    /// Signed in.
    SignedIn(Authorized<'b>),
    /// Logged out (`auth.logOut`).
    LoggedOut {
        /// A token to keep for the next sign-in's `logout_tokens`.
        future_auth_token: Option<&'b [u8]>,
    },
    /// The code was cancelled (`auth.cancelCode`).
    CodeCancelled,
}

impl Progress<'_> {
    /// The flow ended (signed in, logged out or cancelled).
    #[must_use]
    pub const fn is_final(&self) -> bool {
        matches!(
            self,
            Progress::SignedIn(_) | Progress::LoggedOut { .. } | Progress::CodeCancelled
        )
    }
}

/// Where a flow is: what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage {
    /// A request is to be sent or is in flight: drive [`SignIn::poll_request`] and the answers.
    Working,
    /// Waiting for the login code ([`SignIn::submit_code`]) or a resend or cancel.
    WaitCode,
    /// Waiting for the SRP answer ([`SignIn::submit_srp`]).
    WaitPassword,
    /// Waiting for the user's name ([`SignIn::sign_up`]).
    WaitSignUp,
    /// Showing a QR token, waiting for another client to accept it (`updateLoginToken`) or for it to expire.
    WaitQrScan,
    /// Waiting for the host to move to DC `dc` ([`SignIn::migrated`]).
    WaitMigration {
        /// The DC.
        dc: i32,
    },
    /// Signed in as `user_id`.
    SignedIn {
        /// The user's id.
        user_id: i64,
        /// The account is a bot.
        bot: bool,
    },
    /// Logged out.
    LoggedOut,
    /// The code was cancelled.
    CodeCancelled,
    /// The flow ended with this error.
    Failed(SignInError),
}

/// An `rpc_error` a flow acts on, by name; the host has the message itself (it passed it in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Refusal {
    /// `PHONE_NUMBER_INVALID`.
    PhoneNumberInvalid,
    /// `PHONE_NUMBER_BANNED`.
    PhoneNumberBanned,
    /// `PHONE_NUMBER_FLOOD`: too many codes asked for this number.
    PhoneNumberFlood,
    /// `PHONE_NUMBER_OCCUPIED` (sign-up of a number that has an account).
    PhoneNumberOccupied,
    /// `PHONE_CODE_INVALID`: try another code.
    PhoneCodeInvalid,
    /// `PHONE_CODE_EMPTY`.
    PhoneCodeEmpty,
    /// `PHONE_CODE_EXPIRED`: resend the code.
    PhoneCodeExpired,
    /// `PHONE_CODE_HASH_EMPTY`.
    PhoneCodeHashEmpty,
    /// `PHONE_PASSWORD_FLOOD`.
    PhonePasswordFlood,
    /// `SEND_CODE_UNAVAILABLE`: no other way to send the code is left.
    SendCodeUnavailable,
    /// `API_ID_INVALID`.
    ApiIdInvalid,
    /// `API_ID_PUBLISHED_FLOOD`.
    ApiIdPublishedFlood,
    /// `ACCESS_TOKEN_INVALID`: the bot token is wrong.
    AccessTokenInvalid,
    /// `ACCESS_TOKEN_EXPIRED`: the bot token was revoked.
    AccessTokenExpired,
    /// `PASSWORD_HASH_INVALID`: a wrong password.
    PasswordHashInvalid,
    /// `SRP_ID_INVALID`: the SRP parameters were used or timed out.
    SrpIdInvalid,
    /// `SRP_PASSWORD_CHANGED`.
    SrpPasswordChanged,
    /// `FIRSTNAME_INVALID`.
    FirstnameInvalid,
    /// `LASTNAME_INVALID`.
    LastnameInvalid,
    /// `AUTH_TOKEN_EXPIRED` (QR).
    AuthTokenExpired,
    /// `AUTH_TOKEN_INVALID` (QR).
    AuthTokenInvalid,
    /// `AUTH_TOKEN_ALREADY_ACCEPTED` (QR).
    AuthTokenAlreadyAccepted,
    /// `AUTH_RESTART`: start the flow again.
    AuthRestart,
    /// A flood wait of this many seconds, longer than the flow waits out.
    FloodWait(u32),
    /// A migration to DC `dc` that makes no sense for this call (a `FILE_MIGRATE`, `STATS_MIGRATE`...).
    Migrate(i32),
    /// Any other error.
    Other {
        /// Its code.
        code: i32,
    },
}

impl Refusal {
    /// The refusal an error names.
    #[must_use]
    pub fn from_error(code: i32, message: &[u8]) -> Refusal {
        match message {
            b"PHONE_NUMBER_INVALID" => Refusal::PhoneNumberInvalid,
            b"PHONE_NUMBER_BANNED" => Refusal::PhoneNumberBanned,
            b"PHONE_NUMBER_FLOOD" => Refusal::PhoneNumberFlood,
            b"PHONE_NUMBER_OCCUPIED" => Refusal::PhoneNumberOccupied,
            b"PHONE_CODE_INVALID" => Refusal::PhoneCodeInvalid,
            b"PHONE_CODE_EMPTY" => Refusal::PhoneCodeEmpty,
            b"PHONE_CODE_EXPIRED" => Refusal::PhoneCodeExpired,
            b"PHONE_CODE_HASH_EMPTY" => Refusal::PhoneCodeHashEmpty,
            b"PHONE_PASSWORD_FLOOD" => Refusal::PhonePasswordFlood,
            b"SEND_CODE_UNAVAILABLE" => Refusal::SendCodeUnavailable,
            b"API_ID_INVALID" => Refusal::ApiIdInvalid,
            b"API_ID_PUBLISHED_FLOOD" => Refusal::ApiIdPublishedFlood,
            b"ACCESS_TOKEN_INVALID" => Refusal::AccessTokenInvalid,
            b"ACCESS_TOKEN_EXPIRED" => Refusal::AccessTokenExpired,
            b"PASSWORD_HASH_INVALID" => Refusal::PasswordHashInvalid,
            b"SRP_ID_INVALID" => Refusal::SrpIdInvalid,
            b"SRP_PASSWORD_CHANGED" => Refusal::SrpPasswordChanged,
            b"FIRSTNAME_INVALID" => Refusal::FirstnameInvalid,
            b"LASTNAME_INVALID" => Refusal::LastnameInvalid,
            b"AUTH_TOKEN_EXPIRED" => Refusal::AuthTokenExpired,
            b"AUTH_TOKEN_INVALID" => Refusal::AuthTokenInvalid,
            b"AUTH_TOKEN_ALREADY_ACCEPTED" => Refusal::AuthTokenAlreadyAccepted,
            b"AUTH_RESTART" => Refusal::AuthRestart,
            _ => match RpcErrorKind::parse(message) {
                RpcErrorKind::FloodWait(s) => Refusal::FloodWait(s),
                RpcErrorKind::Migrate(dc) => Refusal::Migrate(dc),
                _ => Refusal::Other { code },
            },
        }
    }
}

/// A host or DC string a flow keeps, named in [`SignInError::TooLong`] and [`SignInError::PeerTooLong`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Field {
    /// The phone number ([`MAX_PHONE`]).
    Phone,
    /// The login code ([`MAX_CODE`]).
    Code,
    /// The bot token ([`MAX_BOT_TOKEN`]).
    BotToken,
    /// A first or last name ([`MAX_NAME`]).
    Name,
    /// `phone_code_hash` ([`MAX_PHONE_CODE_HASH`]).
    PhoneCodeHash,
    /// A QR login token ([`MAX_LOGIN_TOKEN`]).
    LoginToken,
    /// An SRP salt ([`MAX_SALT`]).
    Salt,
    /// SRP's p or `srp_B` ([`SRP_BYTES`]).
    SrpNumber,
}

/// Why a call was refused or a flow ended. See [`SignInError::fault`]: a [`Fault::Host`] error changed nothing;
/// every other one ended the flow ([`Stage::Failed`], returned again by every later call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SignInError {
    /// The call is not valid in the flow's stage (a code while none was sent, an answer while a request waits...).
    WrongState,
    /// An answer names a tag no request of this flow is waiting under.
    UnknownTag,
    /// A host string is empty or longer than its capacity.
    TooLong(Field),
    /// A bot token without the `:` between the bot's id and its secret.
    BadBotToken,
    /// The code cannot be resent: the DC named no other way to send it.
    CannotResend,
    /// The code's resend delay has not passed yet.
    ResendNotYet,
    /// The SRP answer names another `srp_id` than the challenge.
    SrpIdMismatch,
    /// The host's buffer is too small for the request.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// The answer is not a value of the call's result type (truncated, wrong type, unknown constructor,
    /// trailing bytes).
    Malformed(LayoutError),
    /// A well-formed answer this flow cannot continue from (`userEmpty`, `auth.authorizationSignUpRequired` for a
    /// bot, an empty `phone_code_hash`, `account.password` without a password after `SESSION_PASSWORD_NEEDED`).
    Unexpected(u32),
    /// A well-formed answer asking for what this crate does not do (email codes, paid sign-up, an unknown
    /// password KDF): the constructor id.
    Unsupported(u32),
    /// A DC string longer than the flow keeps.
    PeerTooLong(Field),
    /// A migration names a DC id outside 1..=[`MAX_DC_ID`].
    BadDc(i32),
    /// More than [`MAX_MIGRATIONS`] migrations.
    TooManyMigrations,
    /// A query ended without an answer more than [`MAX_RESENDS`] times in a row.
    Lost,
    /// The DC refused a call the flow cannot go on without.
    Refused(Refusal),
    /// The SRP proof of [`SignIn::submit_password`] could not be computed: the DC's parameters failed the spec's
    /// checks (items 16, 17, 56: the flow ended) or the host's RNG produced no usable secret (nothing changed).
    Srp(SrpError),
}

impl SignInError {
    /// Whose fault the error is.
    #[must_use]
    pub const fn fault(&self) -> Fault {
        match self {
            SignInError::WrongState
            | SignInError::UnknownTag
            | SignInError::TooLong(_)
            | SignInError::BadBotToken
            | SignInError::CannotResend
            | SignInError::ResendNotYet
            | SignInError::SrpIdMismatch
            | SignInError::BufferTooSmall { .. } => Fault::Host,
            SignInError::Malformed(_)
            | SignInError::Unexpected(_)
            | SignInError::PeerTooLong(_)
            | SignInError::BadDc(_)
            | SignInError::TooManyMigrations => Fault::Peer,
            SignInError::Unsupported(_) | SignInError::Lost | SignInError::Refused(_) => Fault::Environment,
            SignInError::Srp(e) => e.fault(),
        }
    }
}

impl fmt::Display for SignInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignInError::WrongState => f.write_str("not valid in the sign-in's current stage"),
            SignInError::UnknownTag => f.write_str("answer to a request the sign-in did not send"),
            SignInError::TooLong(x) => write!(f, "{x:?} empty or too long"),
            SignInError::BadBotToken => f.write_str("bot token without ':'"),
            SignInError::CannotResend => f.write_str("the code cannot be resent"),
            SignInError::ResendNotYet => f.write_str("the code cannot be resent yet"),
            SignInError::SrpIdMismatch => f.write_str("SRP answer for another srp_id"),
            SignInError::BufferTooSmall { required } => write!(f, "buffer too small: {required} bytes needed"),
            SignInError::Malformed(e) => write!(f, "malformed answer: {e}"),
            SignInError::Unexpected(id) => write!(f, "unexpected answer {id:#010x}"),
            SignInError::Unsupported(id) => write!(f, "unsupported answer {id:#010x}"),
            SignInError::PeerTooLong(x) => write!(f, "DC's {x:?} too long"),
            SignInError::BadDc(dc) => write!(f, "migration to invalid DC {dc}"),
            SignInError::TooManyMigrations => f.write_str("too many migrations"),
            SignInError::Lost => f.write_str("request lost too many times"),
            SignInError::Refused(r) => write!(f, "refused by the DC: {r:?}"),
            SignInError::Srp(e) => write!(f, "password proof: {e}"),
        }
    }
}

impl core::error::Error for SignInError {}

impl From<LayoutError> for SignInError {
    fn from(e: LayoutError) -> Self {
        SignInError::Malformed(e)
    }
}

/// The SRP parameters of `account.password` a proof is computed from (`client::srp::compute_check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PasswordChallenge<'a> {
    /// `current_algo.salt1`.
    pub salt1: &'a [u8],
    /// `current_algo.salt2`.
    pub salt2: &'a [u8],
    /// `current_algo.g`.
    pub g: i32,
    /// `current_algo.p`, big-endian.
    pub p: &'a [u8],
    /// `srp_B`, big-endian.
    pub srp_b: &'a [u8],
    /// `srp_id`.
    pub srp_id: i64,
}

/// The `inputCheckPasswordSRP` fields a host computed for a [`PasswordChallenge`]: public values.
#[derive(Clone, PartialEq, Eq)]
pub struct SrpAnswer {
    /// The challenge's `srp_id`.
    pub srp_id: i64,
    /// A = g^a mod p, 256 big-endian bytes.
    pub a: [u8; SRP_BYTES],
    /// M1.
    pub m1: [u8; SRP_M1_BYTES],
}

impl fmt::Debug for SrpAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrpAnswer")
            .field("srp_id", &self.srp_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Bot,
    Phone,
    Qr,
    LogOut,
}

/// SRP parameters of the last `account.password`; `fresh` until an answer was sent with them.
struct Password {
    salt1: HVec<u8, MAX_SALT>,
    salt2: HVec<u8, MAX_SALT>,
    g: i32,
    p: HVec<u8, SRP_BYTES>,
    srp_b: HVec<u8, SRP_BYTES>,
    srp_id: i64,
    fresh: bool,
}

/// The outcome of an `rpc_error` for the pending call.
enum ErrorAction {
    Password,
    Migrate(MigrateReason, i32),
    Refused(Refusal),
}

/// One sign-in flow (or `auth.logOut`); see the module docs.
pub struct SignIn<'c> {
    cfg: SignInConfig<'c>,
    flow: Flow,
    stage: Stage,
    /// The call to write next, and when it may be (a flood wait, a QR retry).
    next: Option<(Method, Option<Instant>)>,
    in_flight: Option<(Tag, Method, bool)>,
    tags: u32,
    wrap_next: bool,
    migrations: u8,
    resends: u8,
    phone: HVec<u8, MAX_PHONE>,
    code: HVec<u8, MAX_CODE>,
    hash: HVec<u8, MAX_PHONE_CODE_HASH>,
    bot_token: HVec<u8, MAX_BOT_TOKEN>,
    first_name: HVec<u8, MAX_NAME>,
    last_name: HVec<u8, MAX_NAME>,
    can_resend: bool,
    /// When a resend becomes allowed; cleared once announced.
    resend_at: Option<Instant>,
    password: Option<Password>,
    srp: Option<SrpAnswer>,
    except_ids: &'c [i64],
    /// A host instant and the Unix time at it (QR tokens expire at a Unix time).
    clock: Option<(Instant, UnixTime)>,
    login_token: HVec<u8, MAX_LOGIN_TOKEN>,
    qr_expires: Option<Instant>,
    qr_shown: bool,
    qr_retry: Duration,
}

impl fmt::Debug for SignIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("flow", &self.flow)
            .field("stage", &self.stage)
            .field("next", &self.next)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Drop for SignIn<'_> {
    fn drop(&mut self) {
        self.code.zeroize();
        self.bot_token.zeroize();
        self.login_token.zeroize();
    }
}

/// Copies a host string into its buffer: empty or over capacity is refused.
fn host_copy<const N: usize>(dst: &mut HVec<u8, N>, src: &[u8], field: Field) -> Result<(), SignInError> {
    if src.is_empty() || src.len() > N {
        return Err(SignInError::TooLong(field));
    }
    dst.clear();
    dst.extend_from_slice(src).map_err(|_| SignInError::TooLong(field))
}

/// Copies a DC string into its buffer.
fn peer_copy<const N: usize>(dst: &mut HVec<u8, N>, src: &[u8], field: Field) -> Result<(), SignInError> {
    dst.clear();
    dst.extend_from_slice(src).map_err(|_| SignInError::PeerTooLong(field))
}

/// `PHONE_MIGRATE_X`, `USER_MIGRATE_X`, `NETWORK_MIGRATE_X`: the reason and X.
fn parse_migrate(message: &[u8]) -> Option<(MigrateReason, i32)> {
    let RpcErrorKind::Migrate(dc) = RpcErrorKind::parse(message) else {
        return None;
    };
    let reason = if message.starts_with(b"PHONE_MIGRATE_") {
        MigrateReason::Phone
    } else if message.starts_with(b"USER_MIGRATE_") {
        MigrateReason::User
    } else if message.starts_with(b"NETWORK_MIGRATE_") {
        MigrateReason::Network
    } else {
        return None;
    };
    Some((reason, dc))
}

impl<'c> SignIn<'c> {
    fn new(cfg: SignInConfig<'c>, flow: Flow, first: Method) -> Self {
        Self {
            cfg,
            flow,
            stage: Stage::Working,
            next: Some((first, None)),
            in_flight: None,
            tags: 0,
            wrap_next: cfg.init.is_some(),
            migrations: 0,
            resends: 0,
            phone: HVec::new(),
            code: HVec::new(),
            hash: HVec::new(),
            bot_token: HVec::new(),
            first_name: HVec::new(),
            last_name: HVec::new(),
            can_resend: false,
            resend_at: None,
            password: None,
            srp: None,
            except_ids: &[],
            clock: None,
            login_token: HVec::new(),
            qr_expires: None,
            qr_shown: false,
            qr_retry: Duration::ZERO,
        }
    }

    /// A bot signs in with its token (`<id>:<secret>`): `auth.importBotAuthorization`.
    pub fn bot(cfg: SignInConfig<'c>, token: &[u8]) -> Result<Self, SignInError> {
        if !token.contains(&b':') {
            return Err(SignInError::BadBotToken);
        }
        let mut s = Self::new(cfg, Flow::Bot, Method::ImportBotAuthorization);
        host_copy(&mut s.bot_token, token, Field::BotToken)?;
        Ok(s)
    }

    /// A user signs in with a code sent to `phone`: `auth.sendCode` first.
    pub fn phone(cfg: SignInConfig<'c>, phone: &[u8]) -> Result<Self, SignInError> {
        let mut s = Self::new(cfg, Flow::Phone, Method::SendCode);
        host_copy(&mut s.phone, phone, Field::Phone)?;
        Ok(s)
    }

    /// A user signs in by scanning a QR code with a signed-in app: `auth.exportLoginToken` first. `except_ids`
    /// are the users already signed in here; `unix_now` is the Unix time at `now` (the host's or its
    /// connection's estimate of the DC's), to read the token's `expires`.
    #[must_use]
    pub fn qr(cfg: SignInConfig<'c>, except_ids: &'c [i64], now: Instant, unix_now: UnixTime) -> Self {
        let mut s = Self::new(cfg, Flow::Qr, Method::ExportLoginToken);
        s.except_ids = except_ids;
        s.clock = Some((now, unix_now));
        s
    }

    /// Logs the signed-in user out: `auth.logOut`.
    #[must_use]
    pub fn log_out(cfg: SignInConfig<'c>) -> Self {
        Self::new(cfg, Flow::LogOut, Method::LogOut)
    }

    /// Where the flow is.
    #[must_use]
    pub const fn stage(&self) -> Stage {
        self.stage
    }

    /// When [`SignIn::handle_timeout`] has something to do: a delayed call, a resend becoming allowed, a QR
    /// token expiring.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let delayed = self.next.and_then(|(_, at)| at);
        let resend = if self.stage == Stage::WaitCode {
            self.resend_at
        } else {
            None
        };
        let qr = if self.stage == Stage::WaitQrScan {
            self.qr_expires
        } else {
            None
        };
        [delayed, resend, qr].into_iter().flatten().min()
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Progress<'static>, SignInError> {
        self.live()?;
        if let Some((_, at)) = &mut self.next
            && at.is_some_and(|a| a <= now)
        {
            *at = None;
        }
        if self.stage == Stage::WaitCode
            && let Some(at) = self.resend_at
            && at <= now
        {
            self.resend_at = None;
            return Ok(Progress::ResendAvailable);
        }
        if self.stage == Stage::WaitQrScan
            && let Some(at) = self.qr_expires
            && at <= now
        {
            self.qr_expires = None;
            self.export_again(None);
        }
        Ok(Progress::Nothing)
    }

    /// Writes the next request into `out` (from its start), if one is due at `now`; send it as one query and
    /// keep its tag with the query. One request is in flight at a time. Too small a buffer changes nothing.
    pub fn poll_request(&mut self, now: Instant, out: &mut [u8]) -> Result<Option<Request>, SignInError> {
        if matches!(self.stage, Stage::Failed(_) | Stage::WaitMigration { .. }) || self.in_flight.is_some() {
            return Ok(None);
        }
        let Some((method, at)) = self.next else {
            return Ok(None);
        };
        if at.is_some_and(|at| at > now) {
            return Ok(None);
        }
        let init = if self.wrap_next { self.cfg.init } else { None };
        let prefix = init.as_ref().map_or(0, InitConnection::prefix_len);
        let len = prefix + self.with_call(method, |c| c.tl_len());
        if out.len() < len {
            return Err(SignInError::BufferTooSmall { required: len });
        }
        let mut w = Writer::new(out);
        let written = init
            .as_ref()
            .map_or(Ok(()), |i| write_init_connection(&mut w, self.cfg.layer, i))
            .and_then(|()| self.with_call(method, |c| c.write(&mut w)));
        if written.is_err() {
            return Err(SignInError::BufferTooSmall { required: len });
        }
        self.tags = self.tags.wrapping_add(1);
        let tag = Tag(self.tags);
        self.next = None;
        self.in_flight = Some((tag, method, init.is_some()));
        self.wrap_next = false;
        if method == Method::CheckPassword {
            self.srp = None;
        }
        Ok(Some(Request {
            tag,
            method,
            len,
            wrapped: init.is_some(),
        }))
    }

    /// Builds `method`'s call from the flow's state and gives it to `f`.
    fn with_call<R>(&self, method: Method, f: impl FnOnce(&dyn TlWrite) -> R) -> R {
        match method {
            Method::ImportBotAuthorization => f(&functions::AuthImportBotAuthorization {
                flags: 0,
                api_id: self.cfg.api_id,
                api_hash: self.cfg.api_hash,
                bot_auth_token: &self.bot_token,
            }),
            Method::SendCode => {
                let settings = types::CodeSettings {
                    allow_flashcall: false,
                    current_number: false,
                    allow_app_hash: false,
                    allow_missed_call: false,
                    allow_firebase: false,
                    unknown_number: false,
                    logout_tokens: (!self.cfg.logout_tokens.is_empty()).then(|| Seq::new(self.cfg.logout_tokens)),
                    token_and_app_sandbox: None,
                };
                f(&functions::AuthSendCode {
                    phone_number: &self.phone,
                    api_id: self.cfg.api_id,
                    api_hash: self.cfg.api_hash,
                    settings: Obj::new(&settings),
                })
            }
            Method::ResendCode => f(&functions::AuthResendCode {
                phone_number: &self.phone,
                phone_code_hash: &self.hash,
                reason: None,
            }),
            Method::CancelCode => f(&functions::AuthCancelCode {
                phone_number: &self.phone,
                phone_code_hash: &self.hash,
            }),
            Method::SignIn => f(&functions::AuthSignIn {
                phone_number: &self.phone,
                phone_code_hash: &self.hash,
                phone_code: Some(&self.code),
                email_verification: None,
            }),
            Method::SignUp => f(&functions::AuthSignUp {
                no_joined_notifications: false,
                phone_number: &self.phone,
                phone_code_hash: &self.hash,
                first_name: &self.first_name,
                last_name: &self.last_name,
            }),
            Method::GetPassword => f(&functions::AccountGetPassword {}),
            Method::CheckPassword => {
                // Queued only with an answer; an empty one never goes out (submit_srp stores it first).
                let (srp_id, a, m1): (i64, &[u8], &[u8]) = match &self.srp {
                    Some(s) => (s.srp_id, &s.a, &s.m1),
                    None => (0, &[], &[]),
                };
                let input = types::InputCheckPasswordSRP { srp_id, a, m1 };
                f(&functions::AuthCheckPassword {
                    password: Obj::new(&input),
                })
            }
            Method::ExportLoginToken => f(&functions::AuthExportLoginToken {
                api_id: self.cfg.api_id,
                api_hash: self.cfg.api_hash,
                except_ids: Seq::new(self.except_ids),
            }),
            Method::ImportLoginToken => f(&functions::AuthImportLoginToken {
                token: &self.login_token,
            }),
            Method::LogOut => f(&functions::AuthLogOut {}),
        }
    }

    /// The sticky error of a failed flow.
    fn live(&self) -> Result<(), SignInError> {
        match self.stage {
            Stage::Failed(e) => Err(e),
            _ => Ok(()),
        }
    }

    fn fail<T>(&mut self, e: SignInError) -> Result<T, SignInError> {
        self.stage = Stage::Failed(e);
        self.next = None;
        self.in_flight = None;
        Err(e)
    }

    /// Takes the request in flight under `tag`.
    fn answered(&mut self, tag: Tag) -> Result<Method, SignInError> {
        self.live()?;
        match self.in_flight {
            Some((t, method, _)) if t == tag => {
                self.in_flight = None;
                Ok(method)
            }
            _ => Err(SignInError::UnknownTag),
        }
    }

    fn queue(&mut self, method: Method, at: Option<Instant>) {
        self.next = Some((method, at));
        self.stage = Stage::Working;
    }

    /// The answer (`rpc_result.result`) to the request `tag`.
    pub fn handle_result<'b>(&mut self, now: Instant, tag: Tag, body: &'b [u8]) -> Result<Progress<'b>, SignInError> {
        let method = self.answered(tag)?;
        self.resends = 0;
        let r = match method {
            Method::ImportBotAuthorization | Method::SignIn | Method::SignUp | Method::CheckPassword => {
                enums::AuthAuthorization::decode(body)
                    .map_err(SignInError::from)
                    .and_then(|a| self.on_authorization(a))
            }
            Method::SendCode | Method::ResendCode => enums::AuthSentCode::decode(body)
                .map_err(SignInError::from)
                .and_then(|s| self.on_sent_code(now, s)),
            Method::CancelCode => functions::AuthCancelCode::decode_result(body)
                .map_err(SignInError::from)
                .map(|_| {
                    self.stage = Stage::CodeCancelled;
                    Progress::CodeCancelled
                }),
            Method::GetPassword => enums::AccountPassword::decode(body)
                .map_err(SignInError::from)
                .and_then(|p| self.on_password(p)),
            Method::ExportLoginToken | Method::ImportLoginToken => enums::AuthLoginToken::decode(body)
                .map_err(SignInError::from)
                .and_then(|t| self.on_login_token(now, t)),
            Method::LogOut => enums::AuthLoggedOut::decode(body).map_err(SignInError::from).map(|l| {
                let enums::AuthLoggedOut::AuthLoggedOut(l) = l;
                self.stage = Stage::LoggedOut;
                Progress::LoggedOut {
                    future_auth_token: l.future_auth_token,
                }
            }),
        };
        match r {
            Err(e) => self.fail(e),
            ok => ok,
        }
    }

    fn on_authorization<'b>(&mut self, a: enums::AuthAuthorization<'b>) -> Result<Progress<'b>, SignInError> {
        match a {
            enums::AuthAuthorization::AuthAuthorization(a) => match a.user.get() {
                Some(enums::User::User(u)) => {
                    self.stage = Stage::SignedIn {
                        user_id: u.id,
                        bot: u.bot(),
                    };
                    Ok(Progress::SignedIn(Authorized {
                        user_id: u.id,
                        bot: u.bot(),
                        otherwise_relogin_days: a.otherwise_relogin_days,
                        tmp_sessions: a.tmp_sessions,
                        future_auth_token: a.future_auth_token,
                        user: a.user,
                    }))
                }
                Some(enums::User::UserEmpty(_)) => Err(SignInError::Unexpected(types::UserEmpty::ID)),
                None => Err(SignInError::Malformed(LayoutError::Truncated)),
            },
            enums::AuthAuthorization::AuthAuthorizationSignUpRequired(s) => {
                // Only a phone number can be signed up.
                if self.flow != Flow::Phone || self.hash.is_empty() {
                    return Err(SignInError::Unexpected(types::AuthAuthorizationSignUpRequired::ID));
                }
                self.stage = Stage::WaitSignUp;
                let terms = s.terms_of_service.and_then(|t| t.get()).map(|t| {
                    let enums::HelpTermsOfService::HelpTermsOfService(t) = t;
                    Terms {
                        text: t.text,
                        popup: t.popup,
                        min_age_confirm: t.min_age_confirm,
                    }
                });
                Ok(Progress::SignUpRequired(terms))
            }
        }
    }

    fn on_sent_code<'b>(&mut self, now: Instant, s: enums::AuthSentCode<'b>) -> Result<Progress<'b>, SignInError> {
        let s = match s {
            enums::AuthSentCode::AuthSentCode(s) => s,
            enums::AuthSentCode::AuthSentCodeSuccess(s) => {
                return match s.authorization.get() {
                    Some(a) => self.on_authorization(a),
                    None => Err(SignInError::Malformed(LayoutError::Truncated)),
                };
            }
            enums::AuthSentCode::AuthSentCodePaymentRequired(_) => {
                return Err(SignInError::Unsupported(types::AuthSentCodePaymentRequired::ID));
            }
        };
        use enums::AuthSentCodeType as T;
        let (kind, length) = match s.type_.get() {
            Some(T::AuthSentCodeTypeApp(t)) => (CodeKind::App, Some(t.length)),
            Some(T::AuthSentCodeTypeSms(t)) => (CodeKind::Sms, Some(t.length)),
            Some(T::AuthSentCodeTypeCall(t)) => (CodeKind::Call, Some(t.length)),
            Some(T::AuthSentCodeTypeFlashCall(_)) => (CodeKind::FlashCall, None),
            Some(T::AuthSentCodeTypeMissedCall(t)) => (CodeKind::MissedCall, Some(t.length)),
            Some(T::AuthSentCodeTypeFragmentSms(t)) => (CodeKind::FragmentSms, Some(t.length)),
            Some(T::AuthSentCodeTypeFirebaseSms(t)) => (CodeKind::FirebaseSms, Some(t.length)),
            Some(T::AuthSentCodeTypeSmsWord(_)) => (CodeKind::SmsWord, None),
            Some(T::AuthSentCodeTypeSmsPhrase(_)) => (CodeKind::SmsPhrase, None),
            Some(T::AuthSentCodeTypeEmailCode(_)) => {
                return Err(SignInError::Unsupported(types::AuthSentCodeTypeEmailCode::ID));
            }
            Some(T::AuthSentCodeTypeSetUpEmailRequired(_)) => {
                return Err(SignInError::Unsupported(types::AuthSentCodeTypeSetUpEmailRequired::ID));
            }
            None => return Err(SignInError::Malformed(LayoutError::Truncated)),
        };
        if s.phone_code_hash.is_empty() {
            return Err(SignInError::Unexpected(types::AuthSentCode::ID));
        }
        peer_copy(&mut self.hash, s.phone_code_hash, Field::PhoneCodeHash)?;
        use enums::AuthCodeType as N;
        let next = s.next_type.and_then(|n| n.get()).map(|n| match n {
            N::AuthCodeTypeSms(_) => NextCodeKind::Sms,
            N::AuthCodeTypeCall(_) => NextCodeKind::Call,
            N::AuthCodeTypeFlashCall(_) => NextCodeKind::FlashCall,
            N::AuthCodeTypeMissedCall(_) => NextCodeKind::MissedCall,
            N::AuthCodeTypeFragmentSms(_) => NextCodeKind::FragmentSms,
        });
        let resend_after = s.timeout.map(|t| Duration::from_secs(u64::try_from(t).unwrap_or(0)));
        self.can_resend = next.is_some();
        self.resend_at = match (next, resend_after) {
            (Some(_), Some(d)) if !d.is_zero() => Some(now.saturating_add(d)),
            _ => None,
        };
        self.stage = Stage::WaitCode;
        Ok(Progress::CodeSent(CodeSent {
            kind,
            length,
            next,
            resend_after,
        }))
    }

    fn on_password<'b>(&mut self, p: enums::AccountPassword<'b>) -> Result<Progress<'b>, SignInError> {
        let enums::AccountPassword::AccountPassword(p) = p;
        let Some((algo, srp_b, srp_id)) = p.current_algo_and_srp_b_and_srp_id else {
            return Err(SignInError::Unexpected(types::AccountPassword::ID));
        };
        let algo = match algo.get() {
            Some(enums::PasswordKdfAlgo::PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(a)) => a,
            Some(enums::PasswordKdfAlgo::PasswordKdfAlgoUnknown(_)) => {
                return Err(SignInError::Unsupported(types::PasswordKdfAlgoUnknown::ID));
            }
            None => return Err(SignInError::Malformed(LayoutError::Truncated)),
        };
        let mut stored = Password {
            salt1: HVec::new(),
            salt2: HVec::new(),
            g: algo.g,
            p: HVec::new(),
            srp_b: HVec::new(),
            srp_id,
            fresh: true,
        };
        peer_copy(&mut stored.salt1, algo.salt1, Field::Salt)?;
        peer_copy(&mut stored.salt2, algo.salt2, Field::Salt)?;
        peer_copy(&mut stored.p, algo.p, Field::SrpNumber)?;
        peer_copy(&mut stored.srp_b, srp_b, Field::SrpNumber)?;
        self.password = Some(stored);
        self.stage = Stage::WaitPassword;
        Ok(Progress::PasswordNeeded(PasswordInfo {
            hint: p.hint,
            has_recovery: p.has_recovery,
        }))
    }

    fn on_login_token<'b>(&mut self, now: Instant, t: enums::AuthLoginToken<'b>) -> Result<Progress<'b>, SignInError> {
        match t {
            enums::AuthLoginToken::AuthLoginToken(t) => {
                self.qr_retry = Duration::ZERO;
                self.qr_shown = true;
                // TDLib: the token lives max(expires − server time, 1) s; bounded above so a wrong clock cannot
                // keep a dead code on screen.
                let unix_now = self.clock.map_or(0, |(base, unix)| {
                    unix.0.saturating_add(now.saturating_duration_since(base).as_secs())
                });
                let expires = u64::try_from(t.expires).unwrap_or(0);
                let life = Duration::from_secs(expires.saturating_sub(unix_now))
                    .clamp(Duration::from_secs(1), MAX_QR_LIFETIME);
                let at = now.saturating_add(life);
                self.qr_expires = Some(at);
                self.stage = Stage::WaitQrScan;
                Ok(Progress::QrToken {
                    token: t.token,
                    expires: at,
                })
            }
            enums::AuthLoginToken::AuthLoginTokenMigrateTo(t) => {
                peer_copy(&mut self.login_token, t.token, Field::LoginToken)?;
                self.migrate(MigrateReason::LoginToken, t.dc_id, Method::ImportLoginToken)
            }
            enums::AuthLoginToken::AuthLoginTokenSuccess(t) => match t.authorization.get() {
                Some(a) => self.on_authorization(a),
                None => Err(SignInError::Malformed(LayoutError::Truncated)),
            },
        }
    }

    fn migrate<'b>(&mut self, reason: MigrateReason, dc: i32, method: Method) -> Result<Progress<'b>, SignInError> {
        if !(1..=MAX_DC_ID).contains(&dc) {
            return Err(SignInError::BadDc(dc));
        }
        if self.migrations >= MAX_MIGRATIONS {
            return Err(SignInError::TooManyMigrations);
        }
        self.migrations += 1;
        self.next = Some((method, None));
        self.wrap_next = self.cfg.init.is_some();
        self.stage = Stage::WaitMigration { dc };
        Ok(Progress::Migrate { dc, reason })
    }

    /// The DC answered the request `tag` with an `rpc_error`.
    pub fn handle_rpc_error(
        &mut self,
        now: Instant,
        tag: Tag,
        code: i32,
        message: &[u8],
    ) -> Result<Progress<'static>, SignInError> {
        let method = self.answered(tag)?;
        self.resends = 0;
        let action = if message == b"SESSION_PASSWORD_NEEDED" {
            ErrorAction::Password
        } else if let Some((reason, dc)) = parse_migrate(message) {
            ErrorAction::Migrate(reason, dc)
        } else {
            ErrorAction::Refused(Refusal::from_error(code, message))
        };
        let r = match action {
            ErrorAction::Password
                if matches!(
                    method,
                    Method::SendCode | Method::SignIn | Method::ExportLoginToken | Method::ImportLoginToken
                ) =>
            {
                self.queue(Method::GetPassword, None);
                Ok(Progress::Nothing)
            }
            ErrorAction::Password => self.refused(now, method, Refusal::Other { code }),
            ErrorAction::Migrate(reason, dc) => self.migrate(reason, dc, method),
            ErrorAction::Refused(Refusal::FloodWait(s))
                if Duration::from_secs(u64::from(s)) <= self.cfg.max_flood_wait =>
            {
                let d = Duration::from_secs(u64::from(s));
                self.queue(method, Some(now.saturating_add(d)));
                Ok(Progress::Delayed(d))
            }
            ErrorAction::Refused(r) => self.refused(now, method, r),
        };
        match r {
            Err(e) => self.fail(e),
            ok => ok,
        }
    }

    /// A refusal of `method`: back to the user where they can fix it, else the end of the flow.
    fn refused(&mut self, now: Instant, method: Method, r: Refusal) -> Result<Progress<'static>, SignInError> {
        match (method, r) {
            (Method::SignIn, Refusal::PhoneCodeInvalid | Refusal::PhoneCodeEmpty | Refusal::FloodWait(_)) => {}
            (Method::SignIn, Refusal::PhoneCodeExpired) => {
                // A new code is needed: resending is allowed at once (if the DC offers a way at all).
                self.resend_at = None;
            }
            (Method::SignUp, Refusal::FirstnameInvalid | Refusal::LastnameInvalid | Refusal::FloodWait(_)) => {}
            (Method::ResendCode, Refusal::SendCodeUnavailable) => self.can_resend = false,
            (Method::ResendCode | Method::CancelCode, _) => {}
            (
                Method::CheckPassword,
                Refusal::PasswordHashInvalid
                | Refusal::SrpIdInvalid
                | Refusal::SrpPasswordChanged
                | Refusal::FloodWait(_),
            ) => {
                // srp_B and srp_id were used: fetch fresh ones for the next try (TDLib fetches them per try).
                self.queue(Method::GetPassword, None);
                return Ok(Progress::Refused(r));
            }
            (Method::ExportLoginToken | Method::ImportLoginToken, _) if self.qr_shown => {
                // TDLib: a failed re-export is retried, 1, 2, 4 … 60 s apart, while the last code stays shown.
                self.qr_retry = (self.qr_retry * 2).clamp(Duration::from_secs(1), MAX_QR_RETRY);
                self.export_again(Some(now.saturating_add(self.qr_retry)));
                return Ok(Progress::Refused(r));
            }
            (Method::LogOut, _) => {
                // The key is dropped whatever the DC says (TDLib).
                self.stage = Stage::LoggedOut;
                return Ok(Progress::LoggedOut {
                    future_auth_token: None,
                });
            }
            _ => return Err(SignInError::Refused(r)),
        }
        match method.waits_after() {
            Some(stage) => {
                self.stage = stage;
                Ok(Progress::Refused(r))
            }
            None => Err(SignInError::Refused(r)),
        }
    }

    /// Queues a QR re-export (at `at`, or now) unless one is queued or in flight.
    fn export_again(&mut self, at: Option<Instant>) {
        if self.in_flight.is_none() {
            self.next = Some((Method::ExportLoginToken, at));
            if at.is_none() {
                self.stage = Stage::Working;
            } else {
                self.stage = Stage::WaitQrScan;
                self.qr_expires = None;
            }
        }
    }

    /// The request `tag` ended without an answer (`Event::Failed`): it is re-sent, at most [`MAX_RESENDS`]
    /// times in a row.
    pub fn handle_failed(&mut self, _now: Instant, tag: Tag) -> Result<Progress<'static>, SignInError> {
        let wrapped = match self.in_flight {
            Some((t, _, wrapped)) if t == tag => wrapped,
            _ => false,
        };
        let method = self.answered(tag)?;
        if self.resends >= MAX_RESENDS {
            return self.fail(SignInError::Lost);
        }
        self.resends += 1;
        // A lost first call may not have introduced the connection: the resend is wrapped again.
        self.wrap_next |= wrapped;
        self.next = Some((method, None));
        Ok(Progress::Nothing)
    }

    /// An update the connection received (`Event::Update`); QR login waits for `updateLoginToken` in it. Any
    /// other update, or bytes that are no `Updates`, are ignored (`false`).
    pub fn handle_update(&mut self, _now: Instant, body: &[u8]) -> bool {
        if self.flow != Flow::Qr || self.stage != Stage::WaitQrScan {
            return false;
        }
        let is_token = |u: Obj<'_, enums::Update<'_>>| u.constructor() == Some(types::UpdateLoginToken::ID);
        let found = match enums::Updates::decode(body) {
            Ok(enums::Updates::UpdateShort(s)) => is_token(s.update),
            Ok(enums::Updates::Updates(u)) => u.updates.iter().any(is_token),
            Ok(enums::Updates::UpdatesCombined(u)) => u.updates.iter().any(is_token),
            _ => false,
        };
        if found {
            self.qr_expires = None;
            self.export_again(None);
        }
        found
    }

    /// The login code the user typed: `auth.signIn`.
    pub fn submit_code(&mut self, _now: Instant, code: &[u8]) -> Result<(), SignInError> {
        self.expect(Stage::WaitCode)?;
        host_copy(&mut self.code, code, Field::Code)?;
        self.queue(Method::SignIn, None);
        Ok(())
    }

    /// Asks for the code again, the way [`CodeSent::next`] named: `auth.resendCode`.
    pub fn resend_code(&mut self, now: Instant) -> Result<(), SignInError> {
        self.expect(Stage::WaitCode)?;
        if !self.can_resend {
            return Err(SignInError::CannotResend);
        }
        if self.resend_at.is_some_and(|at| at > now) {
            return Err(SignInError::ResendNotYet);
        }
        self.queue(Method::ResendCode, None);
        Ok(())
    }

    /// Cancels the code (`auth.cancelCode`); the flow ends with [`Progress::CodeCancelled`].
    pub fn cancel_code(&mut self, _now: Instant) -> Result<(), SignInError> {
        self.expect(Stage::WaitCode)?;
        self.queue(Method::CancelCode, None);
        Ok(())
    }

    /// Signs the phone number up with the user's names (`auth.signUp`), after [`Progress::SignUpRequired`].
    pub fn sign_up(&mut self, _now: Instant, first_name: &[u8], last_name: &[u8]) -> Result<(), SignInError> {
        self.expect(Stage::WaitSignUp)?;
        if last_name.len() > MAX_NAME {
            return Err(SignInError::TooLong(Field::Name));
        }
        host_copy(&mut self.first_name, first_name, Field::Name)?;
        self.last_name.clear();
        self.last_name
            .extend_from_slice(last_name)
            .map_err(|_| SignInError::TooLong(Field::Name))?;
        self.queue(Method::SignUp, None);
        Ok(())
    }

    /// The parameters to compute the SRP answer from, while the flow waits for one.
    #[must_use]
    pub fn password_challenge(&self) -> Option<PasswordChallenge<'_>> {
        let p = self
            .password
            .as_ref()
            .filter(|p| p.fresh && self.stage == Stage::WaitPassword)?;
        Some(PasswordChallenge {
            salt1: &p.salt1,
            salt2: &p.salt2,
            g: p.g,
            p: &p.p,
            srp_b: &p.srp_b,
            srp_id: p.srp_id,
        })
    }

    /// The password step in one call: computes the SRP proof for [`SignIn::password_challenge`] with
    /// [`srp::compute_check`] and queues `auth.checkPassword`, as [`SignIn::submit_srp`] does with a proof the host
    /// computed. The DC's group, salts and `srp_B` are checked before the password is touched (items 16, 17, 56;
    /// `primes` caches verdicts on primes other than Telegram's); a DC value they refuse ends the flow
    /// ([`SignInError::Srp`], [`Fault::Peer`]), an RNG that yields no usable secret changes nothing
    /// ([`Fault::Host`]). The call runs the KDF's 100,000 PBKDF2-HMAC-SHA512 iterations, about 0.14 s on a desktop
    /// core and 2.5 G instructions on a Cortex-M4 (`cargo bench --bench srp`): a host that cannot block that long
    /// computes the proof elsewhere from the challenge and uses `submit_srp`.
    pub fn submit_password<R: CryptoRng + ?Sized, const N: usize>(
        &mut self,
        now: Instant,
        password: &[u8],
        primes: &mut PrimeCache<N>,
        rng: &mut R,
    ) -> Result<(), SignInError> {
        self.expect(Stage::WaitPassword)?;
        let Some(c) = self.password_challenge() else {
            return Err(SignInError::WrongState);
        };
        let kdf = srp::PasswordKdf {
            salt1: c.salt1,
            salt2: c.salt2,
            // A negative g is no generator: check_group refuses 0 as it refuses anything outside 2..=7.
            g: u32::try_from(c.g).unwrap_or(0),
            p: c.p,
        };
        match srp::compute_check(password, &kdf, c.srp_b, c.srp_id, primes, rng) {
            Ok(check) => self.submit_srp(
                now,
                SrpAnswer {
                    srp_id: check.srp_id,
                    a: check.a,
                    m1: check.m1,
                },
            ),
            Err(e) if e.fault() == Fault::Host => Err(SignInError::Srp(e)),
            Err(e) => self.fail(SignInError::Srp(e)),
        }
    }

    /// The SRP answer for [`SignIn::password_challenge`]: `auth.checkPassword`.
    pub fn submit_srp(&mut self, _now: Instant, answer: SrpAnswer) -> Result<(), SignInError> {
        self.expect(Stage::WaitPassword)?;
        let Some(p) = self.password.as_mut().filter(|p| p.fresh) else {
            return Err(SignInError::WrongState);
        };
        if p.srp_id != answer.srp_id {
            return Err(SignInError::SrpIdMismatch);
        }
        p.fresh = false;
        self.srp = Some(answer);
        self.queue(Method::CheckPassword, None);
        Ok(())
    }

    /// The host moved to the DC of [`Stage::WaitMigration`]: the pending call goes out there (wrapped in
    /// `initConnection` when configured).
    pub fn migrated(&mut self, _now: Instant, dc: i32) -> Result<(), SignInError> {
        self.live()?;
        match self.stage {
            Stage::WaitMigration { dc: want } if want == dc => {
                self.stage = Stage::Working;
                Ok(())
            }
            _ => Err(SignInError::WrongState),
        }
    }

    fn expect(&self, stage: Stage) -> Result<(), SignInError> {
        self.live()?;
        if self.stage == stage && self.in_flight.is_none() {
            Ok(())
        } else {
            Err(SignInError::WrongState)
        }
    }
}
