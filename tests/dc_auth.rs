//! The DC side of sign-in (`test-dc/src/auth.rs`) driven by the crate's client over TCP against three DCs in one
//! process (`dc::start_cluster`), with requests built and answers read by the generated types (`tl::api`):
//! `PHONE_MIGRATE`, sign-up then sign-in, wrong, expired and foreign codes and hashes, bot token forms, QR login
//! accepted by another user with its migration, export/import of an authorization across DCs, keys per DC, and
//! `401 AUTH_KEY_UNREGISTERED` for calls that need a user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::{ClientConfig, HandshakeError};
use mtproto_sansio::session::SessionConfig;
use mtproto_sansio::tl::api::{Boxed, Obj, RemoteCall, Seq, enums, functions, types};
use mtproto_sansio::tl::{self, TlWrite};
use mtproto_test_dc::client::{ClientConnection, ClientError, Conn, Owned};
use mtproto_test_dc::dc::{self, Cluster, ClusterOptions, DcOptions};
use mtproto_test_dc::link::Transport;

const KEY_PKCS1: &str = include_str!("data/keys/dc_test_pkcs1.pem");

fn cluster(n: usize) -> (Cluster, RsaPublicKey) {
    cluster_with(n, false)
}

fn cluster_with(n: usize, auto_register: bool) -> (Cluster, RsaPublicKey) {
    let public = *parse_private_pem(KEY_PKCS1.as_bytes()).unwrap().public_key();
    let dcs = (0..n)
        .map(|_| DcOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rsa_key: parse_private_pem(KEY_PKCS1.as_bytes()).unwrap(),
            secret: None,
            faketls: None,
            dc_id: None,
            max_conns: 64,
            keys_file: None,
            verbose: false,
        })
        .collect();
    let c = dc::start_cluster(ClusterOptions {
        dcs,
        auto_register,
        passwords: vec![("9996629999".to_owned(), "correct horse".to_owned())],
    })
    .unwrap();
    (c, public)
}

/// One client: a new auth key on one DC and a session under it.
struct Client {
    conn: Conn,
    s: Box<ClientConnection>,
    updates: Vec<Vec<u8>>,
}

/// An answer: the result's bytes, or the rpc_error's code and message.
type Answer = Result<Vec<u8>, (i32, String)>;

impl Client {
    fn new(c: &Cluster, dc_id: i32, public: RsaPublicKey) -> Client {
        let mut rng = rand::rng();
        let keys = [public];
        let addr = c.dc(dc_id).unwrap().addr;
        let mut conn = Conn::connect(addr, Transport::DEFAULT, None, &mut rng).unwrap();
        let (s, _) = conn
            .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, dc_id), &mut rng)
            .unwrap();
        Client {
            conn,
            s,
            updates: Vec::new(),
        }
    }

    fn raw(&mut self, body: &[u8]) -> Answer {
        let mut updates = Vec::new();
        let r = self
            .conn
            .call(
                &mut self.s,
                &mut rand::rng(),
                body,
                Duration::from_secs(10),
                &mut |ev| {
                    if let Owned::Update(b) = ev {
                        updates.push(b);
                    }
                },
            )
            .unwrap();
        self.updates.extend(updates);
        match r {
            Owned::Result(_, b) => Ok(b),
            Owned::Error(_, code, msg) => Err((code, msg)),
            other => panic!("{other:?}"),
        }
    }

    fn call<F: RemoteCall>(&mut self, f: &F) -> Answer {
        self.raw(&encode(f))
    }

    /// Pumps for a while, collecting pushed updates.
    fn wait_update(&mut self) -> Vec<u8> {
        for _ in 0..50 {
            if let Some(u) = self.updates.pop() {
                return u;
            }
            let deadline = mtproto_test_dc::client::now().saturating_add(Duration::from_millis(100));
            for ev in self.conn.pump(&mut self.s, &mut rand::rng(), deadline).unwrap() {
                if let Owned::Update(b) = ev {
                    self.updates.push(b);
                }
            }
        }
        panic!("no update");
    }
}

fn encode<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    tl::encode(v, &mut out).unwrap();
    out
}

fn err<T: std::fmt::Debug>(a: Result<T, (i32, String)>) -> (i32, String) {
    match a {
        Ok(b) => panic!("answered {b:02x?}"),
        Err(e) => e,
    }
}

fn e(code: i32, msg: &str) -> (i32, String) {
    (code, msg.to_owned())
}

fn send_code(phone: &str) -> functions::AuthSendCode<'_> {
    static SETTINGS: types::CodeSettings<'static> = types::CodeSettings {
        allow_flashcall: false,
        current_number: false,
        allow_app_hash: false,
        allow_missed_call: false,
        allow_firebase: false,
        unknown_number: false,
        logout_tokens: None,
        token_and_app_sandbox: None,
    };
    functions::AuthSendCode {
        phone_number: phone.as_bytes(),
        api_id: 1,
        api_hash: b"0123456789abcdef0123456789abcdef",
        settings: Obj::new(&SETTINGS),
    }
}

/// `auth.sendCode` on `c`: the phone_code_hash, and whether the code went to the app (the account exists).
fn code_hash(c: &mut Client, phone: &str) -> (String, bool) {
    let b = c.call(&send_code(phone)).unwrap();
    let sent = functions::AuthSendCode::decode_result(&b).unwrap().get().unwrap();
    let enums::AuthSentCode::AuthSentCode(s) = sent else {
        panic!("{sent:?}")
    };
    let app = matches!(s.type_.get(), Some(enums::AuthSentCodeType::AuthSentCodeTypeApp(t)) if t.length == 5);
    (String::from_utf8(s.phone_code_hash.to_vec()).unwrap(), app)
}

fn sign_in<'a>(phone: &'a str, hash: &'a str, code: &'a str) -> functions::AuthSignIn<'a> {
    functions::AuthSignIn {
        phone_number: phone.as_bytes(),
        phone_code_hash: hash.as_bytes(),
        phone_code: Some(code.as_bytes()),
        email_verification: None,
    }
}

/// The user of an `auth.Authorization` answer: (id, bot, first name).
fn authorized(b: &[u8]) -> (i64, bool, String) {
    let a = functions::AuthSignIn::decode_result(b).unwrap().get().unwrap();
    let enums::AuthAuthorization::AuthAuthorization(a) = a else {
        panic!("{a:?}")
    };
    user(a.user.get().unwrap())
}

fn user(u: enums::User<'_>) -> (i64, bool, String) {
    let enums::User::User(u) = u else { panic!("{u:?}") };
    assert!(u.self_);
    (
        u.id,
        u.bot_info_version.is_some(),
        String::from_utf8(u.first_name.unwrap().to_vec()).unwrap(),
    )
}

/// `users.getUsers([inputUserSelf])`: who the key is signed in as.
fn me(c: &mut Client) -> Result<i64, (i32, String)> {
    let me = types::InputUserSelf {};
    let ids = [Obj::new(&me)];
    let b = c.call(&functions::UsersGetUsers { id: Seq::new(&ids) })?;
    let v = functions::UsersGetUsers::decode_result(&b).unwrap();
    let users: Vec<_> = v.iter().collect();
    assert_eq!(users.len(), 1);
    Ok(user(users[0].get().unwrap()).0)
}

fn bot(token: &str) -> functions::AuthImportBotAuthorization<'_> {
    functions::AuthImportBotAuthorization {
        flags: 0,
        api_id: 1,
        api_hash: b"0123456789abcdef0123456789abcdef",
        bot_auth_token: token.as_bytes(),
    }
}

/// Signs a new phone user of DC 2 up; returns the client (signed in) and the user id.
fn signed_up(c: &Cluster, public: RsaPublicKey, phone: &'static str) -> (Client, i64) {
    let mut a = Client::new(c, 2, public);
    let (hash, _) = code_hash(&mut a, phone);
    let b = a.call(&sign_in(phone, &hash, "22222")).unwrap();
    assert!(matches!(
        functions::AuthSignIn::decode_result(&b).unwrap().get().unwrap(),
        enums::AuthAuthorization::AuthAuthorizationSignUpRequired(_)
    ));
    let b = a
        .call(&functions::AuthSignUp {
            no_joined_notifications: false,
            phone_number: phone.as_bytes(),
            phone_code_hash: hash.as_bytes(),
            first_name: b"Ada",
            last_name: b"",
        })
        .unwrap();
    let id = authorized(&b).0;
    (a, id)
}

/// `help.getConfig` names every DC (loopback, its port), this DC and test mode; `help.getNearestDc` this DC.
#[test]
fn config_lists_every_dc() {
    let (c, public) = cluster(3);
    let mut a = Client::new(&c, 3, public);
    let b = a.call(&functions::HelpGetConfig {}).unwrap();
    let enums::Config::Config(cfg) = functions::HelpGetConfig::decode_result(&b).unwrap().get().unwrap();
    assert!(cfg.test_mode);
    assert_eq!(cfg.this_dc, 3);
    let opts: Vec<(i32, Vec<u8>, i32)> = cfg
        .dc_options
        .iter()
        .map(|o| {
            let enums::DcOption::DcOption(o) = o.get().unwrap();
            (o.id, o.ip_address.to_vec(), o.port)
        })
        .collect();
    let want: Vec<(i32, Vec<u8>, i32)> = c
        .dcs
        .iter()
        .map(|d| (d.id(), b"127.0.0.1".to_vec(), i32::from(d.addr.port())))
        .collect();
    assert_eq!(opts, want);
    let b = a.call(&functions::HelpGetNearestDc {}).unwrap();
    let enums::NearestDc::NearestDc(n) = functions::HelpGetNearestDc::decode_result(&b).unwrap().get().unwrap();
    assert_eq!((n.this_dc, n.nearest_dc), (3, 3));
}

/// A DC 2 number asked on DC 1 is `303 PHONE_MIGRATE_2`; on DC 2 a wrong code is refused, the right one asks for a
/// sign-up, and the account then signs in again (its code now sent to the app) on another key.
#[test]
fn phone_migrate_sign_up_then_sign_in() {
    let (c, public) = cluster(3);
    let mut one = Client::new(&c, 1, public);
    assert_eq!(err(one.call(&send_code("+999 66 2 1234"))), e(303, "PHONE_MIGRATE_2"));
    assert_eq!(err(one.call(&send_code("9996631234"))), e(303, "PHONE_MIGRATE_3"));
    assert_eq!(err(one.call(&send_code("12345678"))), e(400, "PHONE_NUMBER_INVALID"));
    // DC 4 is not served: not a number of this test DC.
    assert_eq!(err(one.call(&send_code("9996641234"))), e(400, "PHONE_NUMBER_INVALID"));
    // signIn on the wrong DC migrates too.
    assert_eq!(
        err(one.call(&sign_in("9996621234", "00", "22222"))),
        e(303, "PHONE_MIGRATE_2")
    );

    let mut two = Client::new(&c, 2, public);
    let (hash, app) = code_hash(&mut two, "+9996621234");
    assert!(!app, "a new number's code goes by SMS");
    assert_eq!(
        err(two.call(&sign_in("9996621234", &hash, "11111"))),
        e(400, "PHONE_CODE_INVALID")
    );
    assert_eq!(err(me(&mut two)), e(401, "AUTH_KEY_UNREGISTERED"));
    let b = two.call(&sign_in("9996621234", &hash, "22222")).unwrap();
    assert!(matches!(
        functions::AuthSignIn::decode_result(&b).unwrap().get().unwrap(),
        enums::AuthAuthorization::AuthAuthorizationSignUpRequired(_)
    ));
    // Sign-up needs a name.
    let up = |first: &'static [u8]| functions::AuthSignUp {
        no_joined_notifications: false,
        phone_number: b"9996621234",
        phone_code_hash: hash.as_bytes(),
        first_name: first,
        last_name: b"Lovelace",
    };
    assert_eq!(err(two.call(&up(b" "))), e(400, "FIRST_NAME_INVALID"));
    let b = two.call(&up(b"Ada")).unwrap();
    let (id, is_bot, name) = authorized(&b);
    assert!(!is_bot);
    assert_eq!(name, "Ada");
    assert_eq!(me(&mut two), Ok(id));
    // Another user by id and access hash; a wrong hash or an unknown id is userEmpty; at most 200 at once.
    let hash_of = |c: &mut Client| -> i64 {
        let selfu = types::InputUserSelf {};
        let ids = [Obj::new(&selfu)];
        let b = c.call(&functions::UsersGetUsers { id: Seq::new(&ids) }).unwrap();
        let v = functions::UsersGetUsers::decode_result(&b).unwrap();
        let first = v.iter().next().unwrap();
        let Some(enums::User::User(u)) = first.get() else {
            panic!()
        };
        u.access_hash.unwrap()
    };
    let access_hash = hash_of(&mut two);
    let mut other = Client::new(&c, 2, public);
    other.call(&bot("5:x")).unwrap();
    let named = |user_id, access_hash| types::InputUser { user_id, access_hash };
    let (good, forged, unknown) = (named(id, access_hash), named(id, access_hash ^ 1), named(id + 1, 0));
    let ids = [Obj::new(&good), Obj::new(&forged), Obj::new(&unknown)];
    let b = other.call(&functions::UsersGetUsers { id: Seq::new(&ids) }).unwrap();
    let v = functions::UsersGetUsers::decode_result(&b).unwrap();
    let got: Vec<_> = v.iter().map(|u| u.get().unwrap()).collect();
    assert!(matches!(&got[0], enums::User::User(u) if u.id == id && !u.self_));
    assert!(matches!(&got[1], enums::User::UserEmpty(u) if u.id == id));
    assert!(matches!(&got[2], enums::User::UserEmpty(_)));
    let many = vec![Obj::new(&good); 201];
    assert_eq!(
        err(other.call(&functions::UsersGetUsers { id: Seq::new(&many) })),
        e(400, "LIMIT_INVALID")
    );
    // The hash is spent.
    assert_eq!(err(two.call(&up(b"Ada"))), e(400, "PHONE_CODE_EXPIRED"));

    // Another key signs in to the same account, without a sign-up.
    let mut again = Client::new(&c, 2, public);
    let (hash, app) = code_hash(&mut again, "9996621234");
    assert!(app, "an existing account's code goes to the app");
    let b = again.call(&sign_in("9996621234", &hash, "22222")).unwrap();
    assert_eq!(authorized(&b).0, id);
    assert_eq!(me(&mut again), Ok(id));
    // The key made on DC 2 is signed in on DC 2 only: DC 1 never saw it (a fresh DC 1 key is not signed in).
    assert_eq!(err(me(&mut one)), e(401, "AUTH_KEY_UNREGISTERED"));
    // updates.getState answers once signed in.
    let b = again.call(&functions::UpdatesGetState {}).unwrap();
    assert!(functions::UpdatesGetState::decode_result(&b).is_ok());
    // auth.logOut ends it.
    again.call(&functions::AuthLogOut {}).unwrap();
    assert_eq!(err(me(&mut again)), e(401, "AUTH_KEY_UNREGISTERED"));
    assert_eq!(
        err(again.call(&functions::AuthLogOut {})),
        e(401, "AUTH_KEY_UNREGISTERED")
    );
}

/// A code expires (lifetime 0 here), five wrong codes spend it, and a hash is good only for its number, under the
/// key it was sent to; an empty hash or code has its own error.
#[test]
fn codes_expire_and_hashes_belong_to_their_number_and_key() {
    let (c, public) = cluster(2);
    let mut a = Client::new(&c, 2, public);
    let mut b = Client::new(&c, 2, public);
    let (hash, _) = code_hash(&mut a, "9996625555");
    assert_eq!(
        err(a.call(&sign_in("9996625555", "", "22222"))),
        e(400, "PHONE_CODE_HASH_EMPTY")
    );
    assert_eq!(
        err(a.call(&sign_in("9996625555", &hash, ""))),
        e(400, "PHONE_CODE_EMPTY")
    );
    // Another number's hash, and this number's hash under another key.
    assert_eq!(
        err(a.call(&sign_in("9996625556", &hash, "22222"))),
        e(400, "PHONE_CODE_EXPIRED")
    );
    assert_eq!(
        err(b.call(&sign_in("9996625555", &hash, "22222"))),
        e(400, "PHONE_CODE_EXPIRED")
    );
    assert_eq!(
        err(a.call(&sign_in("9996625555", "ffffffffffffffffff", "22222"))),
        e(400, "PHONE_CODE_EXPIRED")
    );
    // Five wrong guesses spend the code: the right one is then too late.
    for _ in 0..5 {
        assert_eq!(
            err(a.call(&sign_in("9996625555", &hash, "12345"))),
            e(400, "PHONE_CODE_INVALID")
        );
    }
    assert_eq!(
        err(a.call(&sign_in("9996625555", &hash, "22222"))),
        e(400, "PHONE_CODE_EXPIRED")
    );
    // A code sent with a lifetime of 0 has expired when it is used.
    c.dc(2).unwrap().with_world(|w| w.set_code_lifetime(0));
    let (hash, _) = code_hash(&mut a, "9996625555");
    assert_eq!(
        err(a.call(&sign_in("9996625555", &hash, "22222"))),
        e(400, "PHONE_CODE_EXPIRED")
    );
    // resendCode and cancelCode see the same.
    c.dc(2).unwrap().with_world(|w| w.set_code_lifetime(300));
    let (hash, _) = code_hash(&mut a, "9996625555");
    let resend = functions::AuthResendCode {
        phone_number: b"9996625555",
        phone_code_hash: hash.as_bytes(),
        reason: None,
    };
    assert!(a.call(&resend).is_ok());
    let cancel = functions::AuthCancelCode {
        phone_number: b"9996625555",
        phone_code_hash: hash.as_bytes(),
    };
    assert!(a.call(&cancel).is_ok());
    assert_eq!(err(a.call(&resend)), e(400, "PHONE_CODE_EXPIRED"));
}

/// Any `<id>:<secret>` signs in bot `<id>` (the same bot again on another key); other forms are refused.
#[test]
fn bot_token_forms() {
    let (c, public) = cluster(2);
    let mut a = Client::new(&c, 1, public);
    for bad in [
        "",
        "123",
        "123:",
        ":abc",
        "0:abc",
        "-5:abc",
        "12a:abc",
        "1:a b",
        "1:a:b",
        "99999999999999:x",
    ] {
        assert_eq!(err(a.call(&bot(bad))), e(400, "ACCESS_TOKEN_INVALID"), "{bad:?}");
    }
    let b = a.call(&bot("123456:AAE-x_9")).unwrap();
    let (id, is_bot, _) = authorized(&b);
    assert_eq!((id, is_bot), (123_456, true));
    assert_eq!(me(&mut a), Ok(123_456));
    // The same bot on DC 2, another secret: bots live on every DC.
    let mut b2 = Client::new(&c, 2, public);
    let b = b2.call(&bot("123456:other")).unwrap();
    assert_eq!(authorized(&b).0, 123_456);
}

/// Calls that need a user answer `401 AUTH_KEY_UNREGISTERED` before sign-in.
#[test]
fn unauthorized_calls_get_401() {
    let (c, public) = cluster(2);
    let mut a = Client::new(&c, 1, public);
    let unreg = e(401, "AUTH_KEY_UNREGISTERED");
    assert_eq!(err(me(&mut a)), unreg);
    assert_eq!(err(a.call(&functions::UpdatesGetState {})), unreg);
    assert_eq!(err(a.call(&functions::AuthLogOut {})), unreg);
    assert_eq!(err(a.call(&functions::AuthExportAuthorization { dc_id: 2 })), unreg);
    assert_eq!(err(a.call(&functions::AuthAcceptLoginToken { token: &[0; 32] })), unreg);
    assert_eq!(err(a.call(&functions::AccountUpdateStatus { offline: false })), unreg);
    // What any client calls first needs none.
    assert!(a.call(&functions::HelpGetConfig {}).is_ok());
    assert!(a.call(&functions::HelpGetAppConfig { hash: 0 }).is_ok());
}

/// A bot signed in on DC 1 exports its authorization for DC 2; a new key there imports it once; the bytes must
/// match, and the export names the DC that may import it.
#[test]
fn export_import_authorization_across_dcs() {
    let (c, public) = cluster(3);
    let mut a = Client::new(&c, 1, public);
    a.call(&bot("777:token")).unwrap();
    assert_eq!(
        err(a.call(&functions::AuthExportAuthorization { dc_id: 1 })),
        e(400, "DC_ID_INVALID")
    );
    assert_eq!(
        err(a.call(&functions::AuthExportAuthorization { dc_id: 4 })),
        e(400, "DC_ID_INVALID")
    );
    let export = |a: &mut Client, dc_id| {
        let b = a.call(&functions::AuthExportAuthorization { dc_id }).unwrap();
        let enums::AuthExportedAuthorization::AuthExportedAuthorization(x) =
            functions::AuthExportAuthorization::decode_result(&b)
                .unwrap()
                .get()
                .unwrap();
        (x.id, x.bytes.to_vec())
    };
    let (id, bytes) = export(&mut a, 2);
    let mut two = Client::new(&c, 2, public);
    assert_eq!(err(me(&mut two)), e(401, "AUTH_KEY_UNREGISTERED"));
    let mut forged = bytes.clone();
    forged[0] ^= 1;
    // Wrong bytes spend the export too: a guess gets one try.
    assert_eq!(
        err(two.call(&functions::AuthImportAuthorization { id, bytes: &forged })),
        e(400, "AUTH_BYTES_INVALID")
    );
    assert_eq!(
        err(two.call(&functions::AuthImportAuthorization { id, bytes: &bytes })),
        e(400, "AUTH_BYTES_INVALID")
    );
    let (id, bytes) = export(&mut a, 2);
    // Made for DC 2: not importable on DC 3.
    let mut three = Client::new(&c, 3, public);
    assert_eq!(
        err(three.call(&functions::AuthImportAuthorization { id, bytes: &bytes })),
        e(400, "AUTH_BYTES_INVALID")
    );
    let (id, bytes) = export(&mut a, 2);
    let b = two
        .call(&functions::AuthImportAuthorization { id, bytes: &bytes })
        .unwrap();
    assert_eq!(authorized(&b).0, 777);
    assert_eq!(me(&mut two), Ok(777));
    // Once only.
    let mut other = Client::new(&c, 2, public);
    assert_eq!(
        err(other.call(&functions::AuthImportAuthorization { id, bytes: &bytes })),
        e(400, "AUTH_BYTES_INVALID")
    );
}

/// An auth key belongs to the DC that made it: the DC 1 key is unknown on DC 2 (−404).
#[test]
fn auth_keys_are_per_dc() {
    let (c, public) = cluster(2);
    let mut rng = rand::rng();
    let keys = [public];
    let mut conn = Conn::connect(c.dc(1).unwrap().addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let (_, out) = conn
        .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 1), &mut rng)
        .unwrap();
    let mut on_two = Conn::connect(c.dc(2).unwrap().addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let mut s = on_two
        .session(SessionConfig::DEFAULT, out.auth_key.clone(), 0, 0, &mut rng)
        .unwrap();
    let r = on_two.call(
        &mut s,
        &mut rng,
        &encode(&functions::HelpGetConfig {}),
        Duration::from_secs(5),
        &mut |_| {},
    );
    assert!(matches!(r, Err(ClientError::Code(-404))), "{r:?}");
    assert_eq!((c.dc(1).unwrap().key_count(), c.dc(2).unwrap().key_count()), (1, 0));
}

/// Each DC of a cluster checks the DC id a handshake names: DC 2 refuses a key meant for DC 1 (−444) and takes one
/// named as DC 2 in any of the spec's encodings (here a test DC's, 10000 + 2).
#[test]
fn cluster_dcs_refuse_handshakes_naming_another_dc() {
    let (c, public) = cluster(2);
    let mut rng = rand::rng();
    let keys = [public];
    let mut conn = Conn::connect(c.dc(2).unwrap().addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let r = conn.handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 1), &mut rng);
    assert!(
        matches!(
            r,
            Err(ClientError::Code(-444)) | Err(ClientError::Handshake(HandshakeError::WrongDc))
        ),
        "{:?}",
        r.err()
    );
    let mut conn = Conn::connect(c.dc(2).unwrap().addr, Transport::DEFAULT, None, &mut rng).unwrap();
    conn.handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 10_002), &mut rng)
        .unwrap();
    assert_eq!(c.dc(2).unwrap().key_count(), 1);
}

/// QR login: a token exported on DC 1, accepted by a signed-in user of DC 2; the exporting connection is pushed
/// `updateLoginToken`, its next export is told to migrate to DC 2, and the import there signs it in. A token is
/// accepted once; bots cannot accept; a forged token is refused.
#[test]
fn qr_login_accepted_by_another_user_migrates() {
    let (c, public) = cluster(3);
    let (mut ada, ada_id) = signed_up(&c, public, "9996620001");
    let mut q = Client::new(&c, 1, public);
    let export = functions::AuthExportLoginToken {
        api_id: 1,
        api_hash: b"0123456789abcdef0123456789abcdef",
        except_ids: Seq::new(&[]),
    };
    let b = q.call(&export).unwrap();
    let token = match functions::AuthExportLoginToken::decode_result(&b)
        .unwrap()
        .get()
        .unwrap()
    {
        enums::AuthLoginToken::AuthLoginToken(t) => t.token.to_vec(),
        other => panic!("{other:?}"),
    };
    // Not accepted yet: asking again gives a token.
    let b = q.call(&export).unwrap();
    assert!(matches!(
        functions::AuthExportLoginToken::decode_result(&b)
            .unwrap()
            .get()
            .unwrap(),
        enums::AuthLoginToken::AuthLoginToken(_)
    ));
    let mut forged = token.clone();
    forged[20] ^= 1;
    assert_eq!(
        err(ada.call(&functions::AuthAcceptLoginToken { token: &forged })),
        e(400, "AUTH_TOKEN_INVALID")
    );
    let mut botc = Client::new(&c, 2, public);
    botc.call(&bot("42:x")).unwrap();
    assert_eq!(
        err(botc.call(&functions::AuthAcceptLoginToken { token: &token })),
        e(400, "BOT_METHOD_INVALID")
    );
    let b = ada.call(&functions::AuthAcceptLoginToken { token: &token }).unwrap();
    assert!(matches!(
        functions::AuthAcceptLoginToken::decode_result(&b)
            .unwrap()
            .get()
            .unwrap(),
        enums::Authorization::Authorization(_)
    ));
    assert_eq!(
        err(ada.call(&functions::AuthAcceptLoginToken { token: &token })),
        e(400, "AUTH_TOKEN_ALREADY_ACCEPTED")
    );
    // The exporting connection (DC 1) is told.
    let u = q.wait_update();
    let upd = enums::Updates::decode(&u).unwrap();
    let enums::Updates::UpdateShort(short) = upd else {
        panic!("{upd:?}")
    };
    assert!(matches!(short.update.get(), Some(enums::Update::UpdateLoginToken(_))));
    // Ada lives on DC 2: migrate there.
    let b = q.call(&export).unwrap();
    let token = match functions::AuthExportLoginToken::decode_result(&b)
        .unwrap()
        .get()
        .unwrap()
    {
        enums::AuthLoginToken::AuthLoginTokenMigrateTo(m) => {
            assert_eq!(m.dc_id, 2);
            m.token.to_vec()
        }
        other => panic!("{other:?}"),
    };
    let mut q2 = Client::new(&c, 2, public);
    let b = q2.call(&functions::AuthImportLoginToken { token: &token }).unwrap();
    let enums::AuthLoginToken::AuthLoginTokenSuccess(s) = functions::AuthImportLoginToken::decode_result(&b)
        .unwrap()
        .get()
        .unwrap()
    else {
        panic!()
    };
    let enums::AuthAuthorization::AuthAuthorization(a) = s.authorization.get().unwrap() else {
        panic!()
    };
    assert_eq!(user(a.user.get().unwrap()).0, ada_id);
    assert_eq!(me(&mut q2), Ok(ada_id));
    // Spent.
    assert_eq!(
        err(q2.call(&functions::AuthImportLoginToken { token: &token })),
        e(400, "AUTH_TOKEN_EXPIRED")
    );
}

/// With `auto_register` (for client scripts that cannot sign up), the right code of an unknown number signs it in at
/// once, named after its number; the wrong code is still refused.
#[test]
fn auto_register_signs_new_numbers_in_with_the_code() {
    let (c, public) = cluster_with(3, true);
    let mut a = Client::new(&c, 3, public);
    let (hash, app) = code_hash(&mut a, "9996634321");
    assert!(!app);
    assert_eq!(
        err(a.call(&sign_in("9996634321", &hash, "22222"))),
        e(400, "PHONE_CODE_INVALID")
    );
    let b = a.call(&sign_in("9996634321", &hash, "33333")).unwrap();
    let (id, is_bot, name) = authorized(&b);
    assert!(!is_bot);
    assert_eq!(name, "Test 34321");
    assert_eq!(me(&mut a), Ok(id));
}

/// A temporary key bound to a signed-in permanent key (PFS) is signed in as that key: its session is the user.
#[test]
fn a_bound_temporary_key_is_signed_in_as_its_permanent_key() {
    use mtproto_sansio::handshake::KeyKind;
    let (c, public) = cluster(2);
    let mut rng = rand::rng();
    let keys = [public];
    let addr = c.dc(2).unwrap().addr;
    let mut p = Conn::connect(addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let (mut ps, perm) = p
        .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), &mut rng)
        .unwrap();
    let r = p
        .call(
            &mut ps,
            &mut rng,
            &encode(&bot("31337:pfs")),
            Duration::from_secs(10),
            &mut |_| {},
        )
        .unwrap();
    assert!(matches!(r, Owned::Result(..)), "{r:?}");
    let mut t = Conn::connect(addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let mut hcfg = ClientConfig::new(&keys, 2);
    hcfg.kind = KeyKind::Temporary { expires_in: 3600 };
    let (ts, _) = t.handshake(SessionConfig::DEFAULT, hcfg, &mut rng).unwrap();
    let mut tc = Client {
        conn: t,
        s: ts,
        updates: Vec::new(),
    };
    // Not bound yet: the temporary key is nobody.
    assert_eq!(err(me(&mut tc)), e(401, "AUTH_KEY_UNREGISTERED"));
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = i32::try_from(unix + 3600).unwrap();
    let req =
        tc.s.bind_temp_key(mtproto_test_dc::client::now(), &perm.auth_key, expires_at, &mut rng)
            .unwrap();
    let r = tc
        .conn
        .wait_for(&mut tc.s, &mut rng, &[req], Duration::from_secs(10), &mut |_| {})
        .unwrap();
    assert!(matches!(r.first(), Some(Owned::Result(..))), "{r:?}");
    assert_eq!(me(&mut tc), Ok(31337));
}

/// (salt1, salt2, g, p, srp_B, srp_id) of an `account.password`.
type PasswordParams = (Vec<u8>, Vec<u8>, i32, Vec<u8>, Vec<u8>, i64);

/// `account.getPassword` on a key: the parameters of the current password.
fn password_params(c: &mut Client) -> Result<PasswordParams, (i32, String)> {
    let b = c.call(&functions::AccountGetPassword {})?;
    let enums::AccountPassword::AccountPassword(p) =
        functions::AccountGetPassword::decode_result(&b).unwrap().get().unwrap();
    let (algo, srp_b, srp_id) = p.current_algo_and_srp_b_and_srp_id.expect("a password is set");
    let Some(enums::PasswordKdfAlgo::PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(k)) = algo.get()
    else {
        panic!()
    };
    Ok((
        k.salt1.to_vec(),
        k.salt2.to_vec(),
        k.g,
        k.p.to_vec(),
        srp_b.to_vec(),
        srp_id,
    ))
}

/// `auth.checkPassword` with our client's SRP proof (`client::srp::compute_check`) of `password`.
fn check_password(c: &mut Client, password: &[u8]) -> Answer {
    use mtproto_sansio::client::srp::{PasswordKdf, compute_check};
    use mtproto_sansio::crypto::dh::PrimeCache;
    let (salt1, salt2, g, p, srp_b, srp_id) = password_params(c)?;
    let kdf = PasswordKdf {
        salt1: &salt1,
        salt2: &salt2,
        g: u32::try_from(g).unwrap(),
        p: &p,
    };
    let mut primes = PrimeCache::<4>::default();
    let proof = compute_check(password, &kdf, &srp_b, srp_id, &mut primes, &mut rand::rng()).unwrap();
    let input = types::InputCheckPasswordSRP {
        srp_id: proof.srp_id,
        a: &proof.a,
        m1: &proof.m1,
    };
    c.call(&functions::AuthCheckPassword {
        password: Obj::new(&input),
    })
}

/// Two-step verification against our client's SRP: the right code of a number with a password is
/// `SESSION_PASSWORD_NEEDED`; `account.getPassword` offers a fresh run each time; a wrong password is
/// `PASSWORD_HASH_INVALID`, an old run's `srp_id` `SRP_ID_INVALID`; the right one signs the key in. Without the
/// code step nothing of this is open.
#[test]
fn two_step_verification_with_srp() {
    let (c, public) = cluster(2);
    // The account exists first (the password applies to sign-ins after the sign-up).
    let (_, id) = signed_up(&c, public, "9996629999");
    let mut a = Client::new(&c, 2, public);
    assert_eq!(err(password_params(&mut a)), e(401, "AUTH_KEY_UNREGISTERED"));
    assert_eq!(err(check_password(&mut a, b"x")), e(401, "AUTH_KEY_UNREGISTERED"));
    let (hash, _) = code_hash(&mut a, "9996629999");
    assert_eq!(
        err(a.call(&sign_in("9996629999", &hash, "22222"))),
        e(401, "SESSION_PASSWORD_NEEDED")
    );
    assert_eq!(err(me(&mut a)), e(401, "AUTH_KEY_UNREGISTERED"));
    let first = password_params(&mut a).unwrap();
    let second = password_params(&mut a).unwrap();
    assert_eq!((&first.0, &first.1, first.2), (&second.0, &second.1, 3));
    assert_ne!((&first.4, first.5), (&second.4, second.5), "each run is fresh");
    assert_eq!(
        err(check_password(&mut a, b"wrong horse")),
        e(400, "PASSWORD_HASH_INVALID")
    );
    // A proof for a run that was replaced.
    let stale = {
        use mtproto_sansio::client::srp::{PasswordKdf, compute_check};
        let (s1, s2, g, p, srp_b, srp_id) = password_params(&mut a).unwrap();
        let kdf = PasswordKdf {
            salt1: &s1,
            salt2: &s2,
            g: u32::try_from(g).unwrap(),
            p: &p,
        };
        let mut primes = mtproto_sansio::crypto::dh::PrimeCache::<4>::default();
        compute_check(b"correct horse", &kdf, &srp_b, srp_id, &mut primes, &mut rand::rng()).unwrap()
    };
    password_params(&mut a).unwrap();
    let input = types::InputCheckPasswordSRP {
        srp_id: stale.srp_id,
        a: &stale.a,
        m1: &stale.m1,
    };
    assert_eq!(
        err(a.call(&functions::AuthCheckPassword {
            password: Obj::new(&input)
        })),
        e(400, "SRP_ID_INVALID")
    );
    let b = check_password(&mut a, b"correct horse").unwrap();
    assert_eq!(authorized(&b).0, id);
    assert_eq!(me(&mut a), Ok(id));
}
