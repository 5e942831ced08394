//! The accounts of the test DCs and the api calls that sign in, serve the DC list and answer what clients call
//! right after sign-in. I/O-free: [`World::execute`] takes one call (after its wrappers), the DC it arrived on and
//! the auth key it came under, and returns the answer and the updates to push (to a DC's live connections); the DCs
//! of one process (`dc::start_cluster`) share one `World` behind a lock.
//!
//! Requests and answers are the generated layer-228 types (`mtproto_sansio::tl::api`): a call is validated against
//! the schema's tables before its view is read, and every answer is built with the typed writers.
//!
//! Conventions of Telegram's own test DCs, so that any client's test scripts work:
//! - a phone number `99966XYYYY` belongs to DC X (one of this process's DCs; any other number is
//!   `PHONE_NUMBER_INVALID`); `auth.sendCode` (and `auth.signIn`) on another DC answers `303 PHONE_MIGRATE_X`;
//! - the login code is X repeated five times (`22222` on DC 2); [`MAX_CODE_ATTEMPTS`] wrong codes expire it, and
//!   it expires after [`World::set_code_lifetime`] (default [`CODE_LIFETIME`] seconds);
//! - a number nobody signed up with gets `auth.authorizationSignUpRequired` after the right code, then
//!   `auth.signUp` creates the account (with [`World::set_auto_register`], as for client scripts that cannot sign
//!   up, the right code creates it);
//! - a number given a password ([`World::set_password`], `test_dc --password PHONE=PASS`) has two-step
//!   verification: after the right code `auth.signIn` answers `401 SESSION_PASSWORD_NEEDED`, `account.getPassword`
//!   offers an SRP run (`mtproto_sansio::client::srp::SrpServer`: a fresh `srp_id` and `srp_B` each call) over the
//!   stored salts and verifier (never the password), and `auth.checkPassword` signs the key in when its proof
//!   checks (`PASSWORD_HASH_INVALID`, `SRP_ID_INVALID` otherwise; [`MAX_PASSWORD_ATTEMPTS`] wrong proofs per run);
//! - any bot token `<id>:<secret>` signs in bot `<id>` (on whichever DC it is used);
//! - QR login: `auth.exportLoginToken` gives a token that another signed-in user accepts (`auth.acceptLoginToken`);
//!   the exporting connection is pushed `updateLoginToken`, and the next `auth.exportLoginToken` (or
//!   `auth.importLoginToken`) answers `auth.loginTokenSuccess`, or `auth.loginTokenMigrateTo` the account's DC.
//!
//! An authorization belongs to an auth key on one DC (a key is made on one DC and unknown on the others);
//! `auth.exportAuthorization` / `auth.importAuthorization` copy it to another DC. Calls that need a signed-in user
//! answer `401 AUTH_KEY_UNREGISTERED` without one. The methods of `api` (the secret-chat relay, `getDhConfig`,
//! `saveFilePart`) still take an auth key as a user when it is not signed in, as before accounts existed.
//!
//! Choices where Telegram's behaviour is not documented: an unknown, expired or other number's
//! `phone_code_hash` is `PHONE_CODE_EXPIRED` (as TDLib treats a stale hash); bots live on every DC (no
//! `USER_MIGRATE`); an account's DC is its phone's DC X, a bot's the DC it signed in on.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;

use mtproto_sansio::client::srp::{CheckedKdf, SRP_BYTES, SrpError, SrpServer, Verifier};
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::tl::api::{Bare, Obj, Seq, enums, functions, types};
use mtproto_sansio::tl::layout::Root;
use mtproto_sansio::tl::tables::api::API;
use mtproto_sansio::tl::typed::Cursor;
use mtproto_sansio::tl::{self, BOOL_TRUE, TlWrite, VECTOR, Writer};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::api::{Push, Reply, user_id_of};

/// Most DCs one process serves: the DC of a test number is one decimal digit.
pub const MAX_DCS: usize = 9;
/// Accounts (users and bots) kept; more sign-ups answer `500 ACCOUNTS_TOO_MUCH`.
pub const MAX_ACCOUNTS: usize = 65_536;
/// Signed-in auth keys, all DCs together; more sign-ins answer `500 AUTHORIZATIONS_TOO_MUCH`.
pub const MAX_AUTHORIZATIONS: usize = 65_536;
/// Codes sent and not yet used or expired; past it `auth.sendCode` answers `420 FLOOD_WAIT_60`.
pub const MAX_PENDING_CODES: usize = 4096;
/// QR login tokens and exported authorizations alive, each; past it the export answers `420 FLOOD_WAIT_60`.
pub const MAX_TOKENS: usize = 4096;
/// Wrong codes before a sent code is dropped (the next try is `PHONE_CODE_EXPIRED`): five guesses of 10^5.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// Seconds a login code stays valid by default (see [`World::set_code_lifetime`]).
pub const CODE_LIFETIME: i32 = 300;
/// Seconds a QR login token stays valid (Telegram's are 30 s).
pub const LOGIN_TOKEN_LIFETIME: i32 = 30;
/// Seconds an exported authorization may be imported.
pub const EXPORT_LIFETIME: i32 = 60;
/// Users one `users.getUsers` may name (Telegram's limit); more answer `400 LIMIT_INVALID`.
pub const MAX_GET_USERS: usize = 200;
/// Wrong `auth.checkPassword` proofs one SRP run takes; then it is dropped (`SRP_ID_INVALID` until the client asks
/// `account.getPassword` again), so each guess costs a new run.
pub const MAX_PASSWORD_ATTEMPTS: u32 = 3;
/// Two-step verification passwords the DC keeps (one per number).
pub const MAX_PASSWORDS: usize = 1024;
/// Length of the login code.
pub const CODE_LEN: usize = 5;
/// Bot ids are below this; user ids are allocated from it upwards, so the two never meet.
pub const FIRST_USER_ID: i64 = 1 << 40;
/// The `updates.state` pts and seq the DC answers (it keeps no message boxes).
pub const PTS: i32 = 1;

/// `PHONE_MIGRATE_X`, `USER_MIGRATE_X` for X in 1..=9 (rpc_error messages are `&'static str`).
const PHONE_MIGRATE: [&str; MAX_DCS] = [
    "PHONE_MIGRATE_1",
    "PHONE_MIGRATE_2",
    "PHONE_MIGRATE_3",
    "PHONE_MIGRATE_4",
    "PHONE_MIGRATE_5",
    "PHONE_MIGRATE_6",
    "PHONE_MIGRATE_7",
    "PHONE_MIGRATE_8",
    "PHONE_MIGRATE_9",
];

/// A DC of the process: its id and where clients reach it (the `dcOption` of `help.getConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DcInfo {
    /// 1..=[`MAX_DCS`].
    pub id: i32,
    /// Its listening address (an unspecified IP is announced as loopback).
    pub addr: SocketAddr,
}

/// Who calls: the DC, the auth key (a temporary key's permanent one) and the DC's Unix time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// The DC the call arrived on.
    pub dc: i32,
    /// The auth key id the authorization belongs to.
    pub key: u64,
    /// Unix time in seconds.
    pub date: i32,
}

/// What a call produced: the answer and updates for the live connections of a user on a DC.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The `rpc_result` or `rpc_error`.
    pub reply: Reply,
    /// (DC id, push) for each update.
    pub pushes: Vec<(i32, Push)>,
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Outcome {
            reply,
            pushes: Vec::new(),
        }
    }
}

/// An account.
#[derive(Clone, Debug)]
struct Account {
    access_hash: i64,
    /// Digits only; none for a bot.
    phone: Option<String>,
    first_name: String,
    last_name: String,
    bot: bool,
    /// The DC it lives on.
    home_dc: i32,
}

/// A code sent by `auth.sendCode`, under its `phone_code_hash`.
struct PendingCode {
    phone: String,
    dc: i32,
    key: u64,
    expires: i32,
    attempts: u32,
    /// The right code was given for an unregistered number: `auth.signUp` may follow.
    verified: bool,
}

/// A QR login token: exported by (dc, key), accepted by a user.
struct LoginToken {
    secret: [u8; 24],
    dc: i32,
    key: u64,
    expires: i32,
    accepted_by: Option<i64>,
}

/// An exported authorization, for one import on DC `to`.
struct Exported {
    bytes: [u8; 32],
    user: i64,
    to: i32,
    expires: i32,
}

/// A number's two-step verification: its salts and verifier (v = g^x), and the SRP run `account.getPassword` last
/// offered.
struct Password {
    salt1: Vec<u8>,
    salt2: Vec<u8>,
    verifier: Zeroizing<[u8; SRP_BYTES]>,
    run: Option<SrpServer>,
    wrong: u32,
}

/// The accounts, authorizations and sign-in state of every DC of the process.
pub struct World {
    dcs: Vec<DcInfo>,
    accounts: HashMap<i64, Account>,
    phones: HashMap<String, i64>,
    next_user: i64,
    /// (DC, auth key id) → user.
    authorized: HashMap<(i32, u64), i64>,
    codes: HashMap<String, PendingCode>,
    /// By the token's first 8 bytes; the other 24 are compared in constant time.
    login_tokens: HashMap<u64, LoginToken>,
    exported: HashMap<i64, Exported>,
    code_lifetime: i32,
    auto_register: bool,
    /// By number.
    passwords: HashMap<String, Password>,
    /// (DC, auth key) that gave the right code of an account with a password, and that account: only
    /// `account.getPassword` and `auth.checkPassword` go on from there.
    password_pending: HashMap<(i32, u64), i64>,
}

/// Digits of a phone number as clients send it (`+`, spaces, dashes and parentheses dropped); `None` unless 5..=15
/// digits remain.
pub fn normalize_phone(phone: &[u8]) -> Option<String> {
    let mut out = String::new();
    for &b in phone {
        match b {
            b'0'..=b'9' => out.push(char::from(b)),
            b'+' | b' ' | b'-' | b'(' | b')' => {}
            _ => return None,
        }
    }
    (5..=15).contains(&out.len()).then_some(out)
}

fn error(code: i32, msg: &'static str) -> Outcome {
    Reply::Error(code, msg).into()
}

fn unregistered() -> Outcome {
    error(401, "AUTH_KEY_UNREGISTERED")
}

/// Serializes a typed value into an answer.
fn result<T: TlWrite + ?Sized>(v: &T) -> Outcome {
    let mut out = vec![0u8; v.tl_len()];
    match tl::encode(v, &mut out) {
        Ok(_) => Reply::Result(out).into(),
        Err(_) => error(500, "INTERNAL"),
    }
}

/// A boxed `Vector` of typed values.
fn vector<T: TlWrite>(items: &[T]) -> Outcome {
    let len = 8 + items.iter().map(TlWrite::tl_len).sum::<usize>();
    let mut out = vec![0u8; len];
    let mut w = Writer::new(&mut out);
    let written = w
        .u32(VECTOR)
        .and(w.u32(u32::try_from(items.len()).unwrap_or(u32::MAX)))
        .and(items.iter().try_for_each(|i| w.put(i)));
    match written {
        Ok(()) => Reply::Result(out).into(),
        Err(_) => error(500, "INTERNAL"),
    }
}

/// Validates `call` (the method's id first) against the schema and reads its arguments as `F`.
fn args<'a, F: Bare<'a>>(call: &'a [u8]) -> Option<F> {
    API.validate_exact(call, Root::Function).ok()?;
    Some(F::read_bare(&mut Cursor::new(call.get(4..)?, &API)))
}

impl World {
    /// The world of the DCs `dcs` (ids 1..=[`MAX_DCS`]): no accounts yet.
    pub fn new(dcs: Vec<DcInfo>) -> Self {
        World {
            dcs,
            accounts: HashMap::new(),
            phones: HashMap::new(),
            next_user: FIRST_USER_ID,
            authorized: HashMap::new(),
            codes: HashMap::new(),
            login_tokens: HashMap::new(),
            exported: HashMap::new(),
            code_lifetime: CODE_LIFETIME,
            auto_register: false,
            passwords: HashMap::new(),
            password_pending: HashMap::new(),
        }
    }

    /// Gives number `phone` (a test number of a DC served) two-step verification with `password`: fresh salts, and
    /// the verifier kept in place of the password (computing it runs the 100,000-iteration PBKDF2 once).
    pub fn set_password<R: CryptoRng + ?Sized>(
        &mut self,
        phone: &str,
        password: &[u8],
        rng: &mut R,
    ) -> Result<(), String> {
        let phone = normalize_phone(phone.as_bytes()).ok_or_else(|| format!("{phone}: not a phone number"))?;
        if self.home_dc(&phone).is_none() {
            return Err(format!("{phone}: not a number of a DC served (99966XYYYY)"));
        }
        if !self.passwords.contains_key(&phone) && self.passwords.len() >= MAX_PASSWORDS {
            return Err(format!("more than {MAX_PASSWORDS} passwords"));
        }
        let (mut salt1, mut salt2) = (vec![0u8; 40], vec![0u8; 16]);
        rng.fill_bytes(&mut salt1);
        rng.fill_bytes(&mut salt2);
        let kdf = kdf(&salt1, &salt2).map_err(|e| format!("{e}"))?;
        let verifier = Zeroizing::new(*kdf.verifier(&kdf.hash_password(password)).as_bytes());
        self.passwords.insert(
            phone,
            Password {
                salt1,
                salt2,
                verifier,
                run: None,
                wrong: 0,
            },
        );
        Ok(())
    }

    /// The DCs served.
    pub fn dcs(&self) -> &[DcInfo] {
        &self.dcs
    }

    /// Seconds a code sent from now on stays valid (0: expired at once, for tests of `PHONE_CODE_EXPIRED`).
    pub fn set_code_lifetime(&mut self, secs: i32) {
        self.code_lifetime = secs;
    }

    /// Whether the right code signs an unknown number up at once (named after its number) instead of answering
    /// `auth.authorizationSignUpRequired`: for client scripts that cannot call `auth.signUp` (Telethon's
    /// `start()` refuses to since 1.25).
    pub fn set_auto_register(&mut self, on: bool) {
        self.auto_register = on;
    }

    /// The user signed in under auth key `key` on DC `dc`.
    pub fn user_of(&self, dc: i32, key: u64) -> Option<i64> {
        self.authorized.get(&(dc, key)).copied()
    }

    /// Who a connection is for the update routing: its signed-in user, or else its auth key as a user.
    pub fn identity(&self, dc: i32, key: u64) -> i64 {
        self.user_of(dc, key).unwrap_or_else(|| user_id_of(key))
    }

    /// Whether `id` is a bot that signed in.
    pub fn is_bot(&self, id: i64) -> bool {
        self.accounts.get(&id).is_some_and(|a| a.bot)
    }

    /// Whether `id` is an account (a user or bot that signed up or in).
    pub fn is_account(&self, id: i64) -> bool {
        self.accounts.contains_key(&id)
    }

    /// The serialized `user` object of `id` as `viewer` sees it (for the `users` of updates and differences); an id
    /// that is not an account (an auth key as a user) gets a nameless user.
    pub fn user_wire(&self, id: i64, viewer: i64) -> Vec<u8> {
        self.with_user(id, id == viewer, |u| encoded(u))
    }

    /// Accounts kept.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// The DC a phone number belongs to: X of `99966XYYYY`, if X is served.
    pub fn home_dc(&self, phone: &str) -> Option<i32> {
        let rest = phone.strip_prefix("99966").filter(|_| phone.len() == 10)?;
        let x = i32::from(rest.bytes().next()?.checked_sub(b'0')?);
        self.dcs.iter().any(|d| d.id == x).then_some(x)
    }

    /// The login code of a number of DC `dc`.
    pub fn code_for(dc: i32) -> String {
        let digit = char::from_digit(u32::try_from(dc).unwrap_or(0), 10).unwrap_or('0');
        std::iter::repeat_n(digit, CODE_LEN).collect()
    }

    /// Executes `call` (after its wrappers: the method id first) if it is one of this module's methods.
    pub fn execute<R: CryptoRng + ?Sized>(&mut self, call: &[u8], ctx: Ctx, rng: &mut R) -> Option<Outcome> {
        let id = u32::from_le_bytes(call.get(..4)?.try_into().ok()?);
        let bad = || error(400, "INPUT_REQUEST_INVALID");
        macro_rules! read {
            ($f:ty) => {
                match args::<$f>(call) {
                    Some(a) => a,
                    None => return Some(bad()),
                }
            };
        }
        let me = self.user_of(ctx.dc, ctx.key);
        Some(match id {
            functions::HelpGetConfig::ID => self.config(ctx),
            functions::HelpGetNearestDc::ID => result(&types::NearestDc {
                country: b"ZZ",
                this_dc: ctx.dc,
                nearest_dc: ctx.dc,
            }),
            functions::HelpGetAppConfig::ID => {
                let a = read!(functions::HelpGetAppConfig);
                if a.hash == 1 {
                    result(&types::HelpAppConfigNotModified {})
                } else {
                    let empty = types::JsonObject { value: Seq::new(&[]) };
                    result(&types::HelpAppConfig {
                        hash: 1,
                        config: Obj::new(&empty),
                    })
                }
            }
            functions::HelpGetAppUpdate::ID => result(&types::HelpNoAppUpdate {}),
            functions::HelpGetTermsOfServiceUpdate::ID => result(&types::HelpTermsOfServiceUpdateEmpty {
                expires: ctx.date.saturating_add(3600),
            }),
            functions::LangpackGetLangPack::ID => {
                let a = read!(functions::LangpackGetLangPack);
                lang_pack(a.lang_code, 0)
            }
            functions::LangpackGetDifference::ID => {
                let a = read!(functions::LangpackGetDifference);
                lang_pack(a.lang_code, a.from_version)
            }
            functions::LangpackGetStrings::ID | functions::LangpackGetLanguages::ID => {
                vector::<types::LangPackString<'_>>(&[])
            }
            functions::AuthSendCode::ID => {
                let a = read!(functions::AuthSendCode);
                self.send_code(a.phone_number, a.api_id, ctx, rng)
            }
            functions::AuthResendCode::ID => {
                let a = read!(functions::AuthResendCode);
                self.resend_code(a.phone_number, a.phone_code_hash, ctx)
            }
            functions::AuthCancelCode::ID => {
                let a = read!(functions::AuthCancelCode);
                match self.pending(a.phone_number, a.phone_code_hash, ctx) {
                    Ok(hash) => {
                        self.codes.remove(&hash);
                        Reply::Result(BOOL_TRUE.to_le_bytes().to_vec()).into()
                    }
                    Err(e) => e,
                }
            }
            functions::AuthSignIn::ID => {
                let a = read!(functions::AuthSignIn);
                self.sign_in(a.phone_number, a.phone_code_hash, a.phone_code, ctx)
            }
            functions::AuthSignUp::ID => {
                let a = read!(functions::AuthSignUp);
                self.sign_up(&a, ctx)
            }
            functions::AuthImportBotAuthorization::ID => {
                let a = read!(functions::AuthImportBotAuthorization);
                self.import_bot(a.bot_auth_token, ctx, rng)
            }
            functions::AuthLogOut::ID => match self.authorized.remove(&(ctx.dc, ctx.key)) {
                Some(_) => result(&types::AuthLoggedOut {
                    future_auth_token: None,
                }),
                None => unregistered(),
            },
            functions::AuthExportAuthorization::ID => {
                let a = read!(functions::AuthExportAuthorization);
                match me {
                    Some(user) => self.export_authorization(user, a.dc_id, ctx, rng),
                    None => unregistered(),
                }
            }
            functions::AuthImportAuthorization::ID => {
                let a = read!(functions::AuthImportAuthorization);
                self.import_authorization(a.id, a.bytes, ctx)
            }
            functions::AuthExportLoginToken::ID => {
                read!(functions::AuthExportLoginToken);
                self.export_login_token(ctx, rng)
            }
            functions::AuthImportLoginToken::ID => {
                let a = read!(functions::AuthImportLoginToken);
                self.import_login_token(a.token, ctx)
            }
            functions::AuthAcceptLoginToken::ID => {
                let a = read!(functions::AuthAcceptLoginToken);
                match me {
                    Some(user) => self.accept_login_token(user, a.token, ctx),
                    None => unregistered(),
                }
            }
            functions::AccountGetPassword::ID => {
                let who = me.or_else(|| self.password_pending.get(&(ctx.dc, ctx.key)).copied());
                match who {
                    Some(user) => self.get_password(user, rng),
                    None => unregistered(),
                }
            }
            functions::AuthCheckPassword::ID => {
                let a = read!(functions::AuthCheckPassword);
                self.check_password(a.password.get(), ctx)
            }
            functions::UsersGetUsers::ID => {
                let a = read!(functions::UsersGetUsers);
                match me {
                    Some(user) => self.get_users(user, &a),
                    None => unregistered(),
                }
            }
            functions::UsersGetFullUser::ID => {
                let a = read!(functions::UsersGetFullUser);
                match me {
                    Some(user) => self.get_full_user(user, a.id.get()),
                    None => unregistered(),
                }
            }
            functions::UpdatesGetState::ID => match me {
                Some(_) => result(&types::UpdatesState {
                    pts: PTS,
                    qts: 0,
                    date: ctx.date,
                    seq: 0,
                    unread_count: 0,
                }),
                None => unregistered(),
            },
            functions::UpdatesGetDifference::ID => {
                read!(functions::UpdatesGetDifference);
                match me {
                    Some(_) => result(&types::UpdatesDifferenceEmpty { date: ctx.date, seq: 0 }),
                    None => unregistered(),
                }
            }
            functions::AccountUpdateStatus::ID => {
                read!(functions::AccountUpdateStatus);
                match me {
                    Some(_) => Reply::Result(BOOL_TRUE.to_le_bytes().to_vec()).into(),
                    None => unregistered(),
                }
            }
            _ => return None,
        })
    }

    /// `config` with a `dcOption` per DC of the process.
    fn config(&self, ctx: Ctx) -> Outcome {
        let ips: Vec<String> = self
            .dcs
            .iter()
            .map(|d| {
                let ip = d.addr.ip();
                if ip.is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    ip.to_string()
                }
            })
            .collect();
        let options: Vec<types::DcOption<'_>> = self
            .dcs
            .iter()
            .zip(&ips)
            .map(|(d, ip)| types::DcOption {
                ipv6: d.addr.is_ipv6(),
                media_only: false,
                tcpo_only: false,
                cdn: false,
                static_: false,
                this_port_only: false,
                id: d.id,
                ip_address: ip.as_bytes(),
                port: i32::from(d.addr.port()),
                secret: None,
            })
            .collect();
        let objs: Vec<Obj<'_, enums::DcOption<'_>>> = options.iter().map(Obj::new).collect();
        result(&types::Config {
            default_p2p_contacts: false,
            preload_featured_stickers: false,
            revoke_pm_inbox: true,
            blocked_mode: false,
            force_try_ipv6: false,
            date: ctx.date,
            expires: ctx.date.saturating_add(3600),
            test_mode: true,
            this_dc: ctx.dc,
            dc_options: Seq::new(&objs),
            dc_txt_domain_name: b"",
            chat_size_max: 200,
            megagroup_size_max: 200_000,
            forwarded_count_max: 100,
            online_update_period_ms: 210_000,
            offline_blur_timeout_ms: 5000,
            offline_idle_timeout_ms: 30_000,
            online_cloud_timeout_ms: 300_000,
            notify_cloud_delay_ms: 30_000,
            notify_default_delay_ms: 1500,
            push_chat_period_ms: 60_000,
            push_chat_limit: 2,
            edit_time_limit: 172_800,
            revoke_time_limit: i32::MAX,
            revoke_pm_time_limit: i32::MAX,
            rating_e_decay: 2_419_200,
            stickers_recent_limit: 200,
            channels_read_media_period: 604_800,
            tmp_sessions: None,
            call_receive_timeout_ms: 20_000,
            call_ring_timeout_ms: 90_000,
            call_connect_timeout_ms: 30_000,
            call_packet_timeout_ms: 10_000,
            me_url_prefix: b"https://t.me/",
            autoupdate_url_prefix: None,
            gif_search_username: None,
            venue_search_username: None,
            img_search_username: None,
            static_maps_provider: None,
            caption_length_max: 1024,
            message_length_max: 4096,
            webfile_dc_id: ctx.dc,
            suggested_lang_code_and_lang_pack_version_and_base_lang_pack_version: None,
            reactions_default: None,
            autologin_token: None,
        })
    }

    /// Drops what has expired from the bounded tables.
    fn expire(&mut self, now: i32) {
        self.codes.retain(|_, c| c.expires > now);
        self.login_tokens.retain(|_, t| t.expires > now);
        self.exported.retain(|_, e| e.expires > now);
    }

    /// The phone's DC, or the error: invalid number, or `303 PHONE_MIGRATE_X` when it is not this DC.
    fn phone_here(&self, phone: &[u8], ctx: Ctx) -> Result<String, Outcome> {
        let phone = normalize_phone(phone).ok_or_else(|| error(400, "PHONE_NUMBER_INVALID"))?;
        let home = self.home_dc(&phone).ok_or_else(|| error(400, "PHONE_NUMBER_INVALID"))?;
        if home != ctx.dc {
            let i = usize::try_from(home - 1).unwrap_or(usize::MAX);
            return Err(error(
                303,
                PHONE_MIGRATE.get(i).copied().unwrap_or("PHONE_NUMBER_INVALID"),
            ));
        }
        Ok(phone)
    }

    fn send_code<R: CryptoRng + ?Sized>(&mut self, phone: &[u8], api_id: i32, ctx: Ctx, rng: &mut R) -> Outcome {
        if api_id <= 0 {
            return error(400, "API_ID_INVALID");
        }
        let phone = match self.phone_here(phone, ctx) {
            Ok(p) => p,
            Err(e) => return e,
        };
        self.expire(ctx.date);
        if self.codes.len() >= MAX_PENDING_CODES {
            return error(420, "FLOOD_WAIT_60");
        }
        let mut raw = [0u8; 9];
        rng.fill_bytes(&mut raw);
        let hash = hex::encode(raw);
        self.codes.insert(
            hash.clone(),
            PendingCode {
                phone: phone.clone(),
                dc: ctx.dc,
                key: ctx.key,
                expires: ctx.date.saturating_add(self.code_lifetime),
                attempts: 0,
                verified: false,
            },
        );
        self.sent_code(&hash, self.phones.contains_key(&phone))
    }

    /// `auth.sentCode`: to the app when the account exists (as Telegram does), else by SMS.
    fn sent_code(&self, hash: &str, registered: bool) -> Outcome {
        let len = i32::try_from(CODE_LEN).unwrap_or(5);
        let app = types::AuthSentCodeTypeApp { length: len };
        let sms = types::AuthSentCodeTypeSms { length: len };
        let type_: Obj<'_, enums::AuthSentCodeType<'_>> = if registered { Obj::new(&app) } else { Obj::new(&sms) };
        result(&types::AuthSentCode {
            type_,
            phone_code_hash: hash.as_bytes(),
            next_type: None,
            timeout: None,
        })
    }

    /// The pending code `hash` names for `phone`, sent under this key on this DC; else the error the client gets.
    fn pending(&mut self, phone: &[u8], hash: &[u8], ctx: Ctx) -> Result<String, Outcome> {
        if hash.is_empty() {
            return Err(error(400, "PHONE_CODE_HASH_EMPTY"));
        }
        let phone = self.phone_here(phone, ctx)?;
        self.expire(ctx.date);
        let hash = String::from_utf8_lossy(hash).into_owned();
        match self.codes.get(&hash) {
            Some(c) if c.phone == phone && c.dc == ctx.dc && c.key == ctx.key => Ok(hash),
            _ => Err(error(400, "PHONE_CODE_EXPIRED")),
        }
    }

    fn resend_code(&mut self, phone: &[u8], hash: &[u8], ctx: Ctx) -> Outcome {
        match self.pending(phone, hash, ctx) {
            Ok(hash) => self.sent_code(&hash, false),
            Err(e) => e,
        }
    }

    fn sign_in(&mut self, phone: &[u8], hash: &[u8], code: Option<&[u8]>, ctx: Ctx) -> Outcome {
        let hash = match self.pending(phone, hash, ctx) {
            Ok(h) => h,
            Err(e) => return e,
        };
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return error(400, "PHONE_CODE_EMPTY");
        };
        let Some(pending) = self.codes.get_mut(&hash) else {
            return error(400, "PHONE_CODE_EXPIRED");
        };
        let want = Self::code_for(pending.dc);
        let right = code.len() == want.len() && bool::from(code.ct_eq(want.as_bytes()));
        if !right {
            pending.attempts += 1;
            if pending.attempts >= MAX_CODE_ATTEMPTS {
                self.codes.remove(&hash);
            }
            return error(400, "PHONE_CODE_INVALID");
        }
        let phone = pending.phone.clone();
        match self.phones.get(&phone).copied() {
            Some(user) if self.passwords.contains_key(&phone) => {
                self.codes.remove(&hash);
                if !self.password_pending.contains_key(&(ctx.dc, ctx.key))
                    && self.password_pending.len() >= MAX_AUTHORIZATIONS
                {
                    return error(500, "AUTHORIZATIONS_TOO_MUCH");
                }
                self.password_pending.insert((ctx.dc, ctx.key), user);
                error(401, "SESSION_PASSWORD_NEEDED")
            }
            Some(user) => {
                self.codes.remove(&hash);
                self.authorize(user, ctx)
            }
            None if self.auto_register => {
                self.codes.remove(&hash);
                let name = format!("Test {}", phone.get(5..).unwrap_or_default());
                match self.register(&phone, &name, "", ctx.dc) {
                    Ok(user) => self.authorize(user, ctx),
                    Err(e) => e,
                }
            }
            None => {
                pending.verified = true;
                result(&types::AuthAuthorizationSignUpRequired { terms_of_service: None })
            }
        }
    }

    fn sign_up(&mut self, a: &functions::AuthSignUp<'_>, ctx: Ctx) -> Outcome {
        let hash = match self.pending(a.phone_number, a.phone_code_hash, ctx) {
            Ok(h) => h,
            Err(e) => return e,
        };
        if !self.codes.get(&hash).is_some_and(|c| c.verified) {
            return error(400, "PHONE_CODE_EXPIRED");
        }
        let (Ok(first), Ok(last)) = (std::str::from_utf8(a.first_name), std::str::from_utf8(a.last_name)) else {
            return error(400, "FIRST_NAME_INVALID");
        };
        let first = first.trim();
        if first.is_empty() || first.len() > 64 {
            return error(400, "FIRST_NAME_INVALID");
        }
        if last.len() > 64 {
            return error(400, "LASTNAME_INVALID");
        }
        let Some(phone) = self.codes.remove(&hash).map(|c| c.phone) else {
            return error(400, "PHONE_CODE_EXPIRED");
        };
        if self.phones.contains_key(&phone) {
            return error(400, "PHONE_NUMBER_OCCUPIED");
        }
        match self.register(&phone, first, last.trim(), ctx.dc) {
            Ok(user) => self.authorize(user, ctx),
            Err(e) => e,
        }
    }

    fn register(&mut self, phone: &str, first: &str, last: &str, dc: i32) -> Result<i64, Outcome> {
        if self.accounts.len() >= MAX_ACCOUNTS {
            return Err(error(500, "ACCOUNTS_TOO_MUCH"));
        }
        let id = self.next_user;
        self.next_user += 1;
        self.accounts.insert(
            id,
            Account {
                access_hash: id.wrapping_mul(0x5851_f42d_4c95_7f2d) ^ 0x1405_7b7e_f767_814f,
                phone: Some(phone.to_owned()),
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                bot: false,
                home_dc: dc,
            },
        );
        self.phones.insert(phone.to_owned(), id);
        Ok(id)
    }

    fn import_bot<R: CryptoRng + ?Sized>(&mut self, token: &[u8], ctx: Ctx, rng: &mut R) -> Outcome {
        let Some(id) = parse_bot_token(token) else {
            return error(400, "ACCESS_TOKEN_INVALID");
        };
        if !self.accounts.contains_key(&id) {
            if self.accounts.len() >= MAX_ACCOUNTS {
                return error(500, "ACCOUNTS_TOO_MUCH");
            }
            self.accounts.insert(
                id,
                Account {
                    access_hash: rng.next_u64() as i64,
                    phone: None,
                    first_name: format!("Bot {id}"),
                    last_name: String::new(),
                    bot: true,
                    home_dc: ctx.dc,
                },
            );
        }
        self.authorize(id, ctx)
    }

    /// Signs `user` in under the caller's key and answers `auth.authorization`.
    fn authorize(&mut self, user: i64, ctx: Ctx) -> Outcome {
        if !self.authorized.contains_key(&(ctx.dc, ctx.key)) && self.authorized.len() >= MAX_AUTHORIZATIONS {
            return error(500, "AUTHORIZATIONS_TOO_MUCH");
        }
        self.authorized.insert((ctx.dc, ctx.key), user);
        self.with_user(user, true, |u| {
            result(&types::AuthAuthorization {
                otherwise_relogin_days: None,
                tmp_sessions: None,
                future_auth_token: None,
                user: Obj::new(u),
            })
        })
    }

    /// Builds the `user` object of account `id` (`self` flag for the caller's own) and hands it to `f`.
    fn with_user<T>(&self, id: i64, is_self: bool, f: impl FnOnce(&types::User<'_>) -> T) -> T {
        let empty = Account {
            access_hash: 0,
            phone: None,
            first_name: String::new(),
            last_name: String::new(),
            bot: false,
            home_dc: 0,
        };
        let a = self.accounts.get(&id).unwrap_or(&empty);
        let username = a.bot.then(|| format!("bot{id}_bot"));
        let user = types::User {
            self_: is_self,
            contact: false,
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
            premium: false,
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
            access_hash: Some(a.access_hash),
            first_name: Some(a.first_name.as_bytes()),
            last_name: (!a.last_name.is_empty()).then_some(a.last_name.as_bytes()),
            username: username.as_deref().map(str::as_bytes),
            phone: a.phone.as_deref().map(str::as_bytes),
            photo: None,
            status: None,
            // The schema puts `bot` on the same flag as `bot_info_version`: this makes it a bot.
            bot_info_version: a.bot.then_some(1),
            restriction_reason: None,
            bot_inline_placeholder: None,
            lang_code: None,
            emoji_status: None,
            usernames: None,
            stories_max_id: None,
            color: None,
            profile_color: None,
            bot_active_users: None,
            bot_verification_icon: None,
            send_paid_messages_stars: None,
            linked_community_id: None,
        };
        f(&user)
    }

    fn get_users(&self, me: i64, a: &functions::UsersGetUsers<'_>) -> Outcome {
        if a.id.len() > MAX_GET_USERS {
            return error(400, "LIMIT_INVALID");
        }
        let mut out = Vec::new();
        for input in a.id.iter() {
            let (id, is_self) = match input.get() {
                Some(enums::InputUser::InputUserSelf(_)) => (me, true),
                Some(enums::InputUser::InputUser(u)) => (u.user_id, u.user_id == me),
                _ => (0, false),
            };
            let bytes = match self.accounts.get(&id) {
                Some(acc) if is_self || acc_hash_ok(acc, input.get()) => self.with_user(id, is_self, |u| encoded(u)),
                _ => encoded(&types::UserEmpty { id }),
            };
            out.push(bytes);
        }
        let raw: Vec<Raw<'_>> = out.iter().map(|b| Raw(b)).collect();
        vector(&raw)
    }

    /// `account.password`: without a password, only what setting one needs; with one, a new SRP run (`srp_id`,
    /// `srp_B`) over the stored salts and verifier, replacing the last.
    fn get_password<R: CryptoRng + ?Sized>(&mut self, user: i64, rng: &mut R) -> Outcome {
        let mut secure_salt = [0u8; 8];
        let mut secure_random = [0u8; 32];
        let mut new_salt1 = [0u8; 8];
        let mut new_salt2 = [0u8; 16];
        for b in [&mut secure_salt[..], &mut secure_random, &mut new_salt1, &mut new_salt2] {
            rng.fill_bytes(b);
        }
        let Ok(group) = DhGroup::telegram(3) else {
            return error(500, "INTERNAL");
        };
        let p = group.prime_bytes();
        let new_algo = types::PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow {
            salt1: &new_salt1,
            salt2: &new_salt2,
            g: 3,
            p: &p,
        };
        let secure = types::SecurePasswordKdfAlgoPBKDF2HMACSHA512iter100000 { salt: &secure_salt };
        let phone = self.accounts.get(&user).and_then(|a| a.phone.clone());
        let Some(pw) = phone.and_then(|p| self.passwords.get_mut(&p)) else {
            return result(&types::AccountPassword {
                has_recovery: false,
                has_secure_values: false,
                current_algo_and_srp_b_and_srp_id: None,
                hint: None,
                email_unconfirmed_pattern: None,
                new_algo: Obj::new(&new_algo),
                new_secure_algo: Obj::new(&secure),
                secure_random: &secure_random,
                pending_reset_date: None,
                login_email_pattern: None,
            });
        };
        let run = kdf(&pw.salt1, &pw.salt2).and_then(|k| {
            let v = Verifier::from_bytes(&k, &pw.verifier[..])?;
            SrpServer::new(&k, &v, rng)
        });
        let Ok(run) = run else {
            return error(500, "INTERNAL");
        };
        let current = types::PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow {
            salt1: &pw.salt1,
            salt2: &pw.salt2,
            g: 3,
            p: &p,
        };
        let answer = result(&types::AccountPassword {
            has_recovery: false,
            has_secure_values: false,
            current_algo_and_srp_b_and_srp_id: Some((Obj::new(&current), run.srp_b(), run.srp_id())),
            hint: None,
            email_unconfirmed_pattern: None,
            new_algo: Obj::new(&new_algo),
            new_secure_algo: Obj::new(&secure),
            secure_random: &secure_random,
            pending_reset_date: None,
            login_email_pattern: None,
        });
        pw.run = Some(run);
        pw.wrong = 0;
        answer
    }

    /// `auth.checkPassword` after `SESSION_PASSWORD_NEEDED`: the proof checked against the run
    /// `account.getPassword` offered (constant-time M1 comparison in `SrpServer::check`).
    fn check_password(&mut self, input: Option<enums::InputCheckPasswordSRP<'_>>, ctx: Ctx) -> Outcome {
        let Some(user) = self.password_pending.get(&(ctx.dc, ctx.key)).copied() else {
            return error(400, "PASSWORD_HASH_INVALID");
        };
        let phone = self.accounts.get(&user).and_then(|a| a.phone.clone());
        let Some(pw) = phone.and_then(|p| self.passwords.get_mut(&p)) else {
            return error(400, "PASSWORD_HASH_INVALID");
        };
        let Some(enums::InputCheckPasswordSRP::InputCheckPasswordSRP(srp)) = input else {
            return error(400, "PASSWORD_HASH_INVALID");
        };
        let Some(run) = &pw.run else {
            return error(400, "SRP_ID_INVALID");
        };
        match run.check(srp.srp_id, srp.a, srp.m1) {
            Ok(()) => {
                pw.run = None;
                self.password_pending.remove(&(ctx.dc, ctx.key));
                self.authorize(user, ctx)
            }
            Err(SrpError::SrpIdMismatch) => error(400, "SRP_ID_INVALID"),
            Err(_) => {
                pw.wrong += 1;
                if pw.wrong >= MAX_PASSWORD_ATTEMPTS {
                    pw.run = None;
                }
                error(400, "PASSWORD_HASH_INVALID")
            }
        }
    }

    /// `users.userFull` of the caller (`inputUserSelf`) or of an account named with its access hash.
    fn get_full_user(&self, me: i64, input: Option<enums::InputUser<'_>>) -> Outcome {
        let id = match input {
            Some(enums::InputUser::InputUserSelf(_)) => me,
            Some(enums::InputUser::InputUser(u)) => u.user_id,
            _ => return error(400, "USER_ID_INVALID"),
        };
        match self.accounts.get(&id) {
            Some(acc) if id == me || acc_hash_ok(acc, input) => {}
            _ => return error(400, "USER_ID_INVALID"),
        }
        let settings = types::PeerSettings {
            report_spam: false,
            add_contact: false,
            block_contact: false,
            share_contact: false,
            need_contacts_exception: false,
            report_geo: false,
            autoarchived: false,
            invite_members: false,
            request_chat_broadcast: false,
            business_bot_paused: false,
            business_bot_can_reply: false,
            geo_distance: None,
            request_chat_title_and_request_chat_date: None,
            business_bot_id_and_business_bot_manage_url: None,
            charge_paid_message_stars: None,
            registration_month: None,
            phone_country: None,
            name_change_date: None,
            photo_change_date: None,
        };
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
        let full = types::UserFull {
            blocked: false,
            phone_calls_available: false,
            phone_calls_private: false,
            can_pin_message: false,
            has_scheduled: false,
            video_calls_available: false,
            voice_messages_forbidden: false,
            translations_disabled: false,
            stories_pinned_available: false,
            blocked_my_stories_from: false,
            wallpaper_overridden: false,
            contact_require_premium: false,
            read_dates_private: false,
            sponsored_enabled: false,
            can_view_revenue: false,
            bot_can_manage_emoji_status: false,
            display_gifts_button: false,
            noforwards_my_enabled: false,
            noforwards_peer_enabled: false,
            unofficial_security_risk: false,
            id,
            about: None,
            settings: Obj::new(&settings),
            personal_photo: None,
            profile_photo: None,
            fallback_photo: None,
            notify_settings: Obj::new(&notify),
            bot_info: None,
            pinned_msg_id: None,
            common_chats_count: 0,
            folder_id: None,
            ttl_period: None,
            theme: None,
            private_forward_name: None,
            bot_group_admin_rights: None,
            bot_broadcast_admin_rights: None,
            wallpaper: None,
            stories: None,
            business_work_hours: None,
            business_location: None,
            business_greeting_message: None,
            business_away_message: None,
            business_intro: None,
            birthday: None,
            personal_channel_id_and_personal_channel_message: None,
            stargifts_count: None,
            starref_program: None,
            bot_verification: None,
            send_paid_messages_stars: None,
            disallowed_gifts: None,
            stars_rating: None,
            stars_my_pending_rating_and_stars_my_pending_rating_date: None,
            main_tab: None,
            saved_music: None,
            note: None,
            bot_manager_id: None,
        };
        self.with_user(id, id == me, |u| {
            let users = [Obj::new(u)];
            result(&types::UsersUserFull {
                full_user: Obj::new(&full),
                chats: Seq::new(&[]),
                users: Seq::new(&users),
            })
        })
    }

    fn export_authorization<R: CryptoRng + ?Sized>(&mut self, user: i64, to: i32, ctx: Ctx, rng: &mut R) -> Outcome {
        if to == ctx.dc || !self.dcs.iter().any(|d| d.id == to) {
            return error(400, "DC_ID_INVALID");
        }
        self.expire(ctx.date);
        if self.exported.len() >= MAX_TOKENS {
            return error(420, "FLOOD_WAIT_60");
        }
        let mut id = 0i64;
        while id == 0 || self.exported.contains_key(&id) {
            id = rng.next_u64() as i64;
        }
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        self.exported.insert(
            id,
            Exported {
                bytes,
                user,
                to,
                expires: ctx.date.saturating_add(EXPORT_LIFETIME),
            },
        );
        result(&types::AuthExportedAuthorization { id, bytes: &bytes })
    }

    fn import_authorization(&mut self, id: i64, bytes: &[u8], ctx: Ctx) -> Outcome {
        self.expire(ctx.date);
        let ok = self
            .exported
            .get(&id)
            .is_some_and(|e| e.to == ctx.dc && bytes.len() == e.bytes.len() && bool::from(bytes.ct_eq(&e.bytes)));
        match self.exported.remove(&id).filter(|_| ok) {
            Some(e) => self.authorize(e.user, ctx),
            None => error(400, "AUTH_BYTES_INVALID"),
        }
    }

    fn export_login_token<R: CryptoRng + ?Sized>(&mut self, ctx: Ctx, rng: &mut R) -> Outcome {
        self.expire(ctx.date);
        // A token of this key that was accepted meanwhile: the sign-in completes (or moves to the account's DC).
        let accepted = self
            .login_tokens
            .iter()
            .find(|(_, t)| t.dc == ctx.dc && t.key == ctx.key && t.accepted_by.is_some())
            .map(|(id, _)| *id);
        if let Some(id) = accepted {
            return self.finish_login_token(id, ctx);
        }
        if self.login_tokens.len() >= MAX_TOKENS {
            return error(420, "FLOOD_WAIT_60");
        }
        let mut id = 0u64;
        while id == 0 || self.login_tokens.contains_key(&id) {
            id = rng.next_u64();
        }
        let mut secret = [0u8; 24];
        rng.fill_bytes(&mut secret);
        let expires = ctx.date.saturating_add(LOGIN_TOKEN_LIFETIME);
        self.login_tokens.insert(
            id,
            LoginToken {
                secret,
                dc: ctx.dc,
                key: ctx.key,
                expires,
                accepted_by: None,
            },
        );
        let token = token_bytes(id, &secret);
        result(&types::AuthLoginToken { expires, token: &token })
    }

    /// The live token `token` names, by its id, with its secret compared in constant time.
    fn find_token(&self, token: &[u8]) -> Option<u64> {
        let id = u64::from_le_bytes(token.get(..8)?.try_into().ok()?);
        let secret = token.get(8..)?;
        let t = self.login_tokens.get(&id)?;
        (secret.len() == t.secret.len() && bool::from(secret.ct_eq(&t.secret))).then_some(id)
    }

    /// `auth.importLoginToken`: on the exporting DC it is the same as asking again; on the account's DC (after
    /// `auth.loginTokenMigrateTo`) it signs the caller's key in there.
    fn import_login_token(&mut self, token: &[u8], ctx: Ctx) -> Outcome {
        self.expire(ctx.date);
        let Some(id) = self.find_token(token) else {
            return error(400, "AUTH_TOKEN_EXPIRED");
        };
        match self.login_tokens.get(&id) {
            Some(t) if t.accepted_by.is_none() => result(&types::AuthLoginToken {
                expires: t.expires,
                token,
            }),
            _ => self.finish_login_token(id, ctx),
        }
    }

    /// An accepted token used on `ctx.dc`: success if the account lives here (the token is spent), else
    /// `auth.loginTokenMigrateTo` its DC.
    fn finish_login_token(&mut self, id: u64, ctx: Ctx) -> Outcome {
        let Some((user, secret)) = self
            .login_tokens
            .get(&id)
            .and_then(|t| Some((t.accepted_by?, t.secret)))
        else {
            return error(400, "AUTH_TOKEN_EXPIRED");
        };
        let home = self.accounts.get(&user).map_or(ctx.dc, |a| a.home_dc);
        if home != ctx.dc {
            let token = token_bytes(id, &secret);
            return result(&types::AuthLoginTokenMigrateTo {
                dc_id: home,
                token: &token,
            });
        }
        self.login_tokens.remove(&id);
        if !self.authorized.contains_key(&(ctx.dc, ctx.key)) && self.authorized.len() >= MAX_AUTHORIZATIONS {
            return error(500, "AUTHORIZATIONS_TOO_MUCH");
        }
        self.authorized.insert((ctx.dc, ctx.key), user);
        self.with_user(user, true, |u| {
            let auth = types::AuthAuthorization {
                otherwise_relogin_days: None,
                tmp_sessions: None,
                future_auth_token: None,
                user: Obj::new(u),
            };
            result(&types::AuthLoginTokenSuccess {
                authorization: Obj::new(&auth),
            })
        })
    }

    fn accept_login_token(&mut self, user: i64, token: &[u8], ctx: Ctx) -> Outcome {
        if self.accounts.get(&user).is_some_and(|a| a.bot) {
            return error(400, "BOT_METHOD_INVALID");
        }
        self.expire(ctx.date);
        let Some(id) = self.find_token(token) else {
            return error(400, "AUTH_TOKEN_INVALID");
        };
        let Some(t) = self.login_tokens.get_mut(&id) else {
            return error(400, "AUTH_TOKEN_INVALID");
        };
        if t.accepted_by.is_some() {
            return error(400, "AUTH_TOKEN_ALREADY_ACCEPTED");
        }
        t.accepted_by = Some(user);
        let (dc, key) = (t.dc, t.key);
        // The exporting connection learns it by `updateShort(updateLoginToken)`.
        let update = types::UpdateLoginToken {};
        let short = types::UpdateShort {
            update: Obj::new(&update),
            date: ctx.date,
        };
        let mut updates = vec![0u8; short.tl_len()];
        let push = tl::encode(&short, &mut updates).ok().map(|_| Push {
            to: self.identity(dc, key),
            updates,
            sequenced: false,
        });
        let answer = result(&types::Authorization {
            current: false,
            official_app: false,
            password_pending: false,
            encrypted_requests_disabled: false,
            call_requests_disabled: false,
            unconfirmed: false,
            hash: i64::try_from(id >> 1).unwrap_or(0),
            device_model: b"test_dc",
            platform: b"",
            system_version: b"",
            api_id: 1,
            app_name: b"test_dc",
            app_version: b"",
            date_created: ctx.date,
            date_active: ctx.date,
            ip: b"127.0.0.1",
            country: b"ZZ",
            region: b"",
        });
        Outcome {
            reply: answer.reply,
            pushes: push.map(|p| (dc, p)).into_iter().collect(),
        }
    }
}

/// The KDF of a stored password: Telegram's group with g = 3 and the salts.
fn kdf<'a>(salt1: &'a [u8], salt2: &'a [u8]) -> Result<CheckedKdf<'a>, SrpError> {
    CheckedKdf::new(DhGroup::telegram(3).map_err(SrpError::Group)?, salt1, salt2)
}

/// `langPackDifference` with no strings (version 1).
fn lang_pack(lang_code: &[u8], from_version: i32) -> Outcome {
    result(&types::LangPackDifference {
        lang_code,
        from_version,
        version: 1,
        strings: Seq::new(&[]),
    })
}

/// The bot id of a token `<id>:<secret>`: id 1..2^40 in decimal, a secret of 1..=64 of `[A-Za-z0-9_-]`.
pub fn parse_bot_token(token: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(token).ok()?;
    let (id, secret) = text.split_once(':')?;
    if id.is_empty() || id.len() > 13 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if secret.is_empty()
        || secret.len() > 64
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let id: i64 = id.parse().ok()?;
    (1..FIRST_USER_ID).contains(&id).then_some(id)
}

/// A QR login token: its id, then its secret.
fn token_bytes(id: u64, secret: &[u8; 24]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let (head, tail) = out.split_at_mut(8);
    head.copy_from_slice(&id.to_le_bytes());
    tail.copy_from_slice(secret);
    out
}

/// Whether an `inputUser` names the account with its access hash (an `inputUserSelf` is always right).
fn acc_hash_ok(acc: &Account, input: Option<enums::InputUser<'_>>) -> bool {
    match input {
        Some(enums::InputUser::InputUser(u)) => u.access_hash == acc.access_hash,
        Some(enums::InputUser::InputUserSelf(_)) => true,
        _ => false,
    }
}

fn encoded<T: TlWrite + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    if tl::encode(v, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Bytes already encoded (a boxed object), written as they are.
struct Raw<'a>(&'a [u8]);

impl TlWrite for Raw<'_> {
    fn tl_len(&self) -> usize {
        self.0.len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), tl::Full> {
        w.raw(self.0)
    }
}
