//! The MTProto service schema (`tests/data/mtproto.tl`, plus the legacy and out-of-page constructors listed at its
//! end) as typed structs.
//!
//! Each constructor is a struct named after it, with `CONSTRUCTOR` (its id) and `TL` (its schema line, from which
//! the id is re-derived by CRC32 in the tests). [`TlRead`]/[`TlWrite`] give the boxed form (id first), [`TlBare`]
//! the bare form. Types with several constructors are enums over those structs. `bytes` fields borrow from the
//! input; vectors are [`TlVec`] views; objects typed `Object` (`rpc_result.result`, `message.body`) are opaque
//! `&[u8]` bodies, decoded by the caller one level at a time (no recursion here).
//!
//! Two constructor names collide with their type names, so their structs are renamed: `bad_msg_notification` is
//! [`BadMsg`] (type [`BadMsgNotification`]) and `msg_detailed_info` is [`MsgDetailed`] (type [`MsgDetailedInfo`]).
//! The `RpcDropAnswer` type is the enum [`RpcAnswer`]; [`RpcDropAnswer`] is the function `rpc_drop_answer`.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::gzip::{self, GzipError};
use super::{DecodeError, Full, LongVec, Reader, TlBare, TlRead, TlVec, TlWrite, Writer};

/// Most messages a `msg_container` may hold (docs/CHECKLIST.md item 48); more is rejected at decode time.
pub const MAX_CONTAINER_MESSAGES: usize = 1024;

/// Most message ids a `msgs_ack`, `msg_resend_req`, `msg_resend_ans_req`, `msgs_state_req` or `msgs_all_info`
/// may carry (docs/CHECKLIST.md item 49); more is rejected at decode time with [`DecodeError::CountTooLarge`].
pub const MAX_MSG_IDS: usize = 8192;

/// Minimum size of a bare `message` (msg_id, seqno, bytes, empty body).
const MESSAGE_MIN_LEN: usize = 16;

/// A field type as it appears in a constructor: how it is read, sized and written.
trait Field<'a>: Sized {
    fn get(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
    fn size(&self) -> usize;
    fn put(&self, w: &mut Writer<'_>) -> Result<(), Full>;
}

impl<'a, T: TlRead<'a> + TlWrite> Field<'a> for T {
    fn get(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        T::read(r)
    }
    fn size(&self) -> usize {
        self.tl_len()
    }
    fn put(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        self.write(w)
    }
}

/// Reads a `Vector<long>` of message ids, capped at [`MAX_MSG_IDS`].
fn read_msg_ids<'a>(r: &mut Reader<'a>) -> Result<LongVec<'a>, DecodeError> {
    TlVec::read_boxed_limited(r, MAX_MSG_IDS)
}

macro_rules! tl_struct {
    (
        $(#[$m:meta])*
        $name:ident $(<$lt:lifetime>)? = $id:literal, $tl:literal
        { $( $(#[$fm:meta])* $field:ident : $ty:ty $(=> $reader:path)? ),* $(,)? }
    ) => {
        $(#[$m])*
        #[doc = ""]
        #[doc = concat!("`", $tl, "`")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name $(<$lt>)? { $( $(#[$fm])* pub $field: $ty, )* }

        impl $(<$lt>)? $name $(<$lt>)? {
            /// The constructor id.
            pub const CONSTRUCTOR: u32 = $id;
            /// The schema line this type implements.
            pub const TL: &'static str = $tl;
        }

        impl<'a> TlBare<'a> for $name $(<$lt>)? {
            const MIN_LEN: usize = 0 $( + <$ty as TlRead<'a>>::MIN_LEN )*;
            #[allow(unused_variables)]
            fn read_bare(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                Ok(Self { $( $field: tl_struct!(@read r, $ty $(, $reader)?), )* })
            }
            fn bare_len(&self) -> usize {
                0 $( + Field::size(&self.$field) )*
            }
            #[allow(unused_variables)]
            fn write_bare(&self, w: &mut Writer<'_>) -> Result<(), Full> {
                $( Field::put(&self.$field, w)?; )*
                Ok(())
            }
        }

        impl<'a> TlRead<'a> for $name $(<$lt>)? {
            const MIN_LEN: usize = 4 + <Self as TlBare>::MIN_LEN;
            fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                r.expect_constructor(Self::CONSTRUCTOR)?;
                Self::read_bare(r)
            }
        }

        impl $(<$lt>)? TlWrite for $name $(<$lt>)? {
            fn tl_len(&self) -> usize {
                4 + self.bare_len()
            }
            fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
                w.u32(Self::CONSTRUCTOR)?;
                self.write_bare(w)
            }
        }
    };
    (@read $r:ident, $ty:ty) => { <$ty as Field<'_>>::get($r)? };
    (@read $r:ident, $ty:ty, $reader:path) => { $reader($r)? };
}

macro_rules! tl_enum {
    (
        $(#[$m:meta])*
        $name:ident $(<$lt:lifetime>)? { $( $(#[$vm:meta])* $var:ident($ty:ty) ),+ $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum $name $(<$lt>)? { $( $(#[$vm])* $var($ty), )+ }

        impl $(<$lt>)? $name $(<$lt>)? {
            /// Every constructor id this type accepts.
            pub const CONSTRUCTORS: &'static [u32] = &[$( <$ty>::CONSTRUCTOR ),+];

            /// The constructor id of this value.
            #[must_use]
            pub const fn constructor(&self) -> u32 {
                match self { $( Self::$var(_) => <$ty>::CONSTRUCTOR, )+ }
            }
        }

        impl<'a> TlRead<'a> for $name $(<$lt>)? {
            const MIN_LEN: usize = 4;
            fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                let id = r.peek_constructor()?;
                $( if id == <$ty>::CONSTRUCTOR { return Ok(Self::$var(<$ty as TlRead<'a>>::read(r)?)); } )+
                Err(DecodeError::UnknownConstructor(id))
            }
        }

        impl $(<$lt>)? TlWrite for $name $(<$lt>)? {
            fn tl_len(&self) -> usize {
                match self { $( Self::$var(v) => v.tl_len(), )+ }
            }
            fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
                match self { $( Self::$var(v) => v.write(w), )+ }
            }
        }
    };
}

// ---- auth key exchange -------------------------------------------------------------------------------------------

tl_struct! {
    /// Deprecated first handshake query (legacy servers only; use [`ReqPqMulti`]).
    ReqPq = 0x6046_9778, "req_pq#60469778 nonce:int128 = ResPQ;"
    { /** Client nonce. */ nonce: [u8; 16] }
}
tl_struct! {
    /// First handshake query.
    ReqPqMulti = 0xbe7e_8ef1, "req_pq_multi#be7e8ef1 nonce:int128 = ResPQ;"
    { /** Client nonce. */ nonce: [u8; 16] }
}
tl_struct! {
    /// The server's answer to `req_pq_multi`.
    ResPq<'a> = 0x0516_2463,
    "resPQ#05162463 nonce:int128 server_nonce:int128 pq:bytes server_public_key_fingerprints:Vector<long> = ResPQ;"
    {
        /** Echoed client nonce. */ nonce: [u8; 16],
        /** Server nonce. */ server_nonce: [u8; 16],
        /** pq as a big-endian byte string. */ pq: &'a [u8],
        /** Fingerprints of the RSA keys the server accepts. */ server_public_key_fingerprints: LongVec<'a>,
    }
}
tl_struct! {
    /// Deprecated `p_q_inner_data` (no `dc`).
    PQInnerDataLegacy<'a> = 0x83c9_5aec,
    "p_q_inner_data#83c95aec pq:string p:string q:string nonce:int128 server_nonce:int128 new_nonce:int256 = P_Q_inner_data;"
    {
        /** pq, big-endian. */ pq: &'a [u8], /** p, big-endian. */ p: &'a [u8], /** q, big-endian. */ q: &'a [u8],
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** New client nonce. */ new_nonce: [u8; 32],
    }
}
tl_struct! {
    /// Deprecated `p_q_inner_data_temp` (no `dc`).
    PQInnerDataTemp<'a> = 0x3c6a_84d4,
    "p_q_inner_data_temp#3c6a84d4 pq:string p:string q:string nonce:int128 server_nonce:int128 new_nonce:int256 expires_in:int = P_Q_inner_data;"
    {
        /** pq, big-endian. */ pq: &'a [u8], /** p, big-endian. */ p: &'a [u8], /** q, big-endian. */ q: &'a [u8],
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** New client nonce. */ new_nonce: [u8; 32], /** Temp key lifetime in seconds. */ expires_in: i32,
    }
}
tl_struct! {
    /// Inner data of `req_DH_params` for a permanent key.
    PQInnerDataDc<'a> = 0xa9f5_5f95,
    "p_q_inner_data_dc#a9f55f95 pq:bytes p:bytes q:bytes nonce:int128 server_nonce:int128 new_nonce:int256 dc:int = P_Q_inner_data;"
    {
        /** pq, big-endian. */ pq: &'a [u8], /** p, big-endian. */ p: &'a [u8], /** q, big-endian. */ q: &'a [u8],
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** New client nonce. */ new_nonce: [u8; 32], /** DC id (+10000 test, negative media). */ dc: i32,
    }
}
tl_struct! {
    /// Inner data of `req_DH_params` for a temporary (PFS) key.
    PQInnerDataTempDc<'a> = 0x56fd_df88,
    "p_q_inner_data_temp_dc#56fddf88 pq:bytes p:bytes q:bytes nonce:int128 server_nonce:int128 new_nonce:int256 dc:int expires_in:int = P_Q_inner_data;"
    {
        /** pq, big-endian. */ pq: &'a [u8], /** p, big-endian. */ p: &'a [u8], /** q, big-endian. */ q: &'a [u8],
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** New client nonce. */ new_nonce: [u8; 32], /** DC id. */ dc: i32,
        /** Temp key lifetime in seconds. */ expires_in: i32,
    }
}
tl_enum! {
    /// `P_Q_inner_data`: the RSA-encrypted payload of `req_DH_params`.
    PQInnerData<'a> {
        /** `p_q_inner_data_dc` */ Dc(PQInnerDataDc<'a>),
        /** `p_q_inner_data_temp_dc` */ TempDc(PQInnerDataTempDc<'a>),
        /** `p_q_inner_data` (legacy) */ Legacy(PQInnerDataLegacy<'a>),
        /** `p_q_inner_data_temp` (legacy) */ Temp(PQInnerDataTemp<'a>),
    }
}
tl_struct! {
    /// Second handshake query.
    ReqDhParams<'a> = 0xd712_e4be,
    "req_DH_params#d712e4be nonce:int128 server_nonce:int128 p:bytes q:bytes public_key_fingerprint:long encrypted_data:bytes = Server_DH_Params;"
    {
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** p, big-endian. */ p: &'a [u8], /** q, big-endian. */ q: &'a [u8],
        /** Fingerprint of the RSA key used. */ public_key_fingerprint: i64,
        /** RSA_PAD(p_q_inner_data). */ encrypted_data: &'a [u8],
    }
}
tl_struct! {
    /// Successful answer to `req_DH_params`.
    ServerDhParamsOk<'a> = 0xd0e8_075c,
    "server_DH_params_ok#d0e8075c nonce:int128 server_nonce:int128 encrypted_answer:bytes = Server_DH_Params;"
    {
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** AES-IGE encrypted `server_DH_inner_data` with hash and padding. */ encrypted_answer: &'a [u8],
    }
}
tl_struct! {
    /// Failed answer to `req_DH_params` (still sent by servers, absent from the current page).
    ServerDhParamsFail = 0x79cb_045d,
    "server_DH_params_fail#79cb045d nonce:int128 server_nonce:int128 new_nonce_hash:int128 = Server_DH_Params;"
    {
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** SHA1(new_nonce)[4..20]. */ new_nonce_hash: [u8; 16],
    }
}
tl_enum! {
    /// `Server_DH_Params`.
    ServerDhParams<'a> {
        /** `server_DH_params_ok` */ Ok(ServerDhParamsOk<'a>),
        /** `server_DH_params_fail` */ Fail(ServerDhParamsFail),
    }
}
tl_struct! {
    /// Decrypted `encrypted_answer` of `server_DH_params_ok`.
    ServerDhInnerData<'a> = 0xb589_0dba,
    "server_DH_inner_data#b5890dba nonce:int128 server_nonce:int128 g:int dh_prime:bytes g_a:bytes server_time:int = Server_DH_inner_data;"
    {
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** Generator. */ g: i32, /** Safe prime, big-endian. */ dh_prime: &'a [u8],
        /** g^a mod p, big-endian. */ g_a: &'a [u8], /** Server Unix time. */ server_time: i32,
    }
}
tl_struct! {
    /// Client's DH half, encrypted into `set_client_DH_params`.
    ClientDhInnerData<'a> = 0x6643_b654,
    "client_DH_inner_data#6643b654 nonce:int128 server_nonce:int128 retry_id:long g_b:bytes = Client_DH_Inner_Data;"
    {
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** 0, or auth_key_aux_hash of the previous attempt. */ retry_id: i64,
        /** g^b mod p, big-endian. */ g_b: &'a [u8],
    }
}
tl_struct! {
    /// Third handshake query.
    SetClientDhParams<'a> = 0xf504_5f1f,
    "set_client_DH_params#f5045f1f nonce:int128 server_nonce:int128 encrypted_data:bytes = Set_client_DH_params_answer;"
    {
        /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16],
        /** AES-IGE encrypted `client_DH_inner_data`. */ encrypted_data: &'a [u8],
    }
}
tl_struct! {
    /// The key was created.
    DhGenOk = 0x3bcb_f734,
    "dh_gen_ok#3bcbf734 nonce:int128 server_nonce:int128 new_nonce_hash1:int128 = Set_client_DH_params_answer;"
    { /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16], /** Key confirmation. */ new_nonce_hash1: [u8; 16] }
}
tl_struct! {
    /// Retry with a new `g_b`.
    DhGenRetry = 0x46dc_1fb9,
    "dh_gen_retry#46dc1fb9 nonce:int128 server_nonce:int128 new_nonce_hash2:int128 = Set_client_DH_params_answer;"
    { /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16], /** Retry confirmation. */ new_nonce_hash2: [u8; 16] }
}
tl_struct! {
    /// Key creation failed; start over.
    DhGenFail = 0xa69d_ae02,
    "dh_gen_fail#a69dae02 nonce:int128 server_nonce:int128 new_nonce_hash3:int128 = Set_client_DH_params_answer;"
    { /** Client nonce. */ nonce: [u8; 16], /** Server nonce. */ server_nonce: [u8; 16], /** Failure confirmation. */ new_nonce_hash3: [u8; 16] }
}
tl_enum! {
    /// `Set_client_DH_params_answer`.
    SetClientDhParamsAnswer {
        /** `dh_gen_ok` */ Ok(DhGenOk),
        /** `dh_gen_retry` */ Retry(DhGenRetry),
        /** `dh_gen_fail` */ Fail(DhGenFail),
    }
}
tl_struct! {
    /// Binds a temporary key to a permanent one (carried, encrypted, by `auth.bindTempAuthKey`).
    BindAuthKeyInner = 0x75a3_f765,
    "bind_auth_key_inner#75a3f765 nonce:long temp_auth_key_id:long perm_auth_key_id:long temp_session_id:long expires_at:int = BindAuthKeyInner;"
    {
        /** Random nonce. */ nonce: i64, /** Temp key id. */ temp_auth_key_id: i64,
        /** Permanent key id. */ perm_auth_key_id: i64, /** Connection id under the temp key. */ temp_session_id: i64,
        /** Unix time the binding expires. */ expires_at: i32,
    }
}
tl_struct! {
    /// The API method that carries `bind_auth_key_inner` (outside the service schema, used by the PFS flow).
    AuthBindTempAuthKey<'a> = 0xcdd4_2a05,
    "auth.bindTempAuthKey#cdd42a05 perm_auth_key_id:long nonce:long expires_at:int encrypted_message:bytes = Bool;"
    {
        /** Permanent key id. */ perm_auth_key_id: i64, /** Same nonce as the inner data. */ nonce: i64,
        /** Unix expiry. */ expires_at: i32, /** MTProto 1.0 message with `bind_auth_key_inner`. */ encrypted_message: &'a [u8],
    }
}

/// `rsa_public_key n:string e:string = RSAPublicKey;`: a bare type used only to compute RSA key fingerprints
/// (the lower 64 bits of SHA1 of its bare serialization).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RsaPublicKey<'a> {
    /// Modulus, big-endian.
    pub n: &'a [u8],
    /// Exponent, big-endian.
    pub e: &'a [u8],
}

impl RsaPublicKey<'_> {
    /// The schema line (bare; no constructor id is ever written).
    pub const TL: &'static str = "rsa_public_key n:string e:string = RSAPublicKey;";
}

impl<'a> TlBare<'a> for RsaPublicKey<'a> {
    const MIN_LEN: usize = 8;
    fn read_bare(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            n: r.bytes()?,
            e: r.bytes()?,
        })
    }
    fn bare_len(&self) -> usize {
        super::bytes_len(self.n.len()) + super::bytes_len(self.e.len())
    }
    fn write_bare(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.bytes(self.n)?;
        w.bytes(self.e)
    }
}

/// Bare everywhere, so the [`TlWrite`] form is the bare one.
impl TlWrite for RsaPublicKey<'_> {
    fn tl_len(&self) -> usize {
        self.bare_len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        self.write_bare(w)
    }
}

// ---- RPC results and errors ----------------------------------------------------------------------------------------

/// `rpc_result#f35c6d01 req_msg_id:long result:Object = RpcResult;`
///
/// `result` is the rest of the body, opaque at this layer (it may itself be `rpc_error` or `gzip_packed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RpcResult<'a> {
    /// The query this answers.
    pub req_msg_id: i64,
    /// The serialized result object.
    pub result: &'a [u8],
}

impl RpcResult<'_> {
    /// The constructor id.
    pub const CONSTRUCTOR: u32 = 0xf35c_6d01;
    /// The schema line.
    pub const TL: &'static str = "rpc_result#f35c6d01 req_msg_id:long result:Object = RpcResult;";
}

impl<'a> TlRead<'a> for RpcResult<'a> {
    const MIN_LEN: usize = 12;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.expect_constructor(Self::CONSTRUCTOR)?;
        Ok(Self {
            req_msg_id: r.i64()?,
            result: r.take_rest(),
        })
    }
}

impl TlWrite for RpcResult<'_> {
    fn tl_len(&self) -> usize {
        12 + self.result.len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.u32(Self::CONSTRUCTOR)?;
        w.i64(self.req_msg_id)?;
        w.raw(self.result)
    }
}

tl_struct! {
    /// An RPC failed.
    RpcError<'a> = 0x2144_ca19, "rpc_error#2144ca19 error_code:int error_message:string = RpcError;"
    { /** HTTP-like code. */ error_code: i32, /** e.g. `FLOOD_WAIT_3` (not guaranteed UTF-8). */ error_message: &'a [u8] }
}
tl_struct! {
    /// The dropped query was never received.
    RpcAnswerUnknown = 0x5e2a_d36e, "rpc_answer_unknown#5e2ad36e = RpcDropAnswer;" {}
}
tl_struct! {
    /// The query is running and cannot be dropped.
    RpcAnswerDroppedRunning = 0xcd78_e586, "rpc_answer_dropped_running#cd78e586 = RpcDropAnswer;" {}
}
tl_struct! {
    /// The query's answer was dropped.
    RpcAnswerDropped = 0xa43a_d8b7, "rpc_answer_dropped#a43ad8b7 msg_id:long seq_no:int bytes:int = RpcDropAnswer;"
    { /** Id of the dropped answer. */ msg_id: i64, /** Its seqno. */ seq_no: i32, /** Its length. */ bytes: i32 }
}
tl_enum! {
    /// `RpcDropAnswer` (the result type of `rpc_drop_answer`).
    RpcAnswer {
        /** `rpc_answer_unknown` */ Unknown(RpcAnswerUnknown),
        /** `rpc_answer_dropped_running` */ DroppedRunning(RpcAnswerDroppedRunning),
        /** `rpc_answer_dropped` */ Dropped(RpcAnswerDropped),
    }
}
tl_struct! {
    /// Cancels an answer to a query.
    RpcDropAnswer = 0x58e4_a740, "rpc_drop_answer#58e4a740 req_msg_id:long = RpcDropAnswer;"
    { /** The query whose answer to drop. */ req_msg_id: i64 }
}

// ---- salts, pings, sessions ----------------------------------------------------------------------------------------

tl_struct! {
    /// One server salt and its validity window (bare inside `future_salts`).
    FutureSalt = 0x0949_d9dc, "future_salt#0949d9dc valid_since:int valid_until:int salt:long = FutureSalt;"
    { /** Unix time from. */ valid_since: i32, /** Unix time until. */ valid_until: i32, /** The salt. */ salt: i64 }
}

/// `future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt> = FutureSalts;`
/// (`salts` is a bare vector of bare `future_salt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FutureSalts<'a> {
    /// The `get_future_salts` query this answers.
    pub req_msg_id: i64,
    /// Server Unix time.
    pub now: i32,
    /// The salts.
    pub salts: TlVec<'a, FutureSalt>,
}

impl FutureSalts<'_> {
    /// The constructor id.
    pub const CONSTRUCTOR: u32 = 0xae50_0895;
    /// The schema line.
    pub const TL: &'static str =
        "future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt> = FutureSalts;";
}

impl<'a> TlRead<'a> for FutureSalts<'a> {
    const MIN_LEN: usize = 20;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.expect_constructor(Self::CONSTRUCTOR)?;
        Ok(Self {
            req_msg_id: r.i64()?,
            now: r.i32()?,
            salts: TlVec::read_bare(r)?,
        })
    }
}

impl TlWrite for FutureSalts<'_> {
    fn tl_len(&self) -> usize {
        16 + self.salts.bare_len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.u32(Self::CONSTRUCTOR)?;
        w.i64(self.req_msg_id)?;
        w.i32(self.now)?;
        self.salts.write_bare(w)
    }
}

tl_struct! {
    /// Asks for `num` future salts.
    GetFutureSalts = 0xb921_bd04, "get_future_salts#b921bd04 num:int = FutureSalts;"
    { /** How many salts (1..=64 on the server). */ num: i32 }
}
tl_struct! {
    /// Answer to `ping`.
    Pong = 0x3477_73c5, "pong#347773c5 msg_id:long ping_id:long = Pong;"
    { /** The ping message's id. */ msg_id: i64, /** The ping's id. */ ping_id: i64 }
}
tl_struct! {
    /// Liveness check.
    Ping = 0x7abe_77ec, "ping#7abe77ec ping_id:long = Pong;"
    { /** Caller-chosen id. */ ping_id: i64 }
}
tl_struct! {
    /// Ping that also arms a server-side disconnect timer.
    PingDelayDisconnect = 0xf342_7b8c, "ping_delay_disconnect#f3427b8c ping_id:long disconnect_delay:int = Pong;"
    { /** Caller-chosen id. */ ping_id: i64, /** Seconds until the server closes the connection. */ disconnect_delay: i32 }
}
tl_struct! {
    /// Asks the server to forget a session.
    DestroySession = 0xe751_2126, "destroy_session#e7512126 session_id:long = DestroySessionRes;"
    { /** The session to destroy. */ session_id: i64 }
}
tl_struct! {
    /// The session was destroyed.
    DestroySessionOk = 0xe220_45fc, "destroy_session_ok#e22045fc session_id:long = DestroySessionRes;"
    { /** The session. */ session_id: i64 }
}
tl_struct! {
    /// There was no such session.
    DestroySessionNone = 0x62d3_50c9, "destroy_session_none#62d350c9 session_id:long = DestroySessionRes;"
    { /** The session. */ session_id: i64 }
}
tl_enum! {
    /// `DestroySessionRes`.
    DestroySessionRes {
        /** `destroy_session_ok` */ Ok(DestroySessionOk),
        /** `destroy_session_none` */ None(DestroySessionNone),
    }
}
tl_struct! {
    /// Asks the server to delete the current auth key.
    DestroyAuthKey = 0xd143_5160, "destroy_auth_key#d1435160 = DestroyAuthKeyRes;" {}
}
tl_struct! {
    /// The key was deleted.
    DestroyAuthKeyOk = 0xf660_e1d4, "destroy_auth_key_ok#f660e1d4 = DestroyAuthKeyRes;" {}
}
tl_struct! {
    /// There was no such key.
    DestroyAuthKeyNone = 0x0a9f_2259, "destroy_auth_key_none#0a9f2259 = DestroyAuthKeyRes;" {}
}
tl_struct! {
    /// The key could not be deleted.
    DestroyAuthKeyFail = 0xea10_9b13, "destroy_auth_key_fail#ea109b13 = DestroyAuthKeyRes;" {}
}
tl_enum! {
    /// `DestroyAuthKeyRes`.
    DestroyAuthKeyRes {
        /** `destroy_auth_key_ok` */ Ok(DestroyAuthKeyOk),
        /** `destroy_auth_key_none` */ None(DestroyAuthKeyNone),
        /** `destroy_auth_key_fail` */ Fail(DestroyAuthKeyFail),
    }
}
tl_struct! {
    /// The server created a new session for us.
    NewSessionCreated = 0x9ec2_0908,
    "new_session_created#9ec20908 first_msg_id:long unique_id:long server_salt:long = NewSession;"
    { /** First message id the session knows. */ first_msg_id: i64, /** Random id of the session. */ unique_id: i64, /** Current salt. */ server_salt: i64 }
}
tl_struct! {
    /// HTTP long-poll parameters.
    HttpWait = 0x9299_359f, "http_wait#9299359f max_delay:int wait_after:int max_wait:int = HttpWait;"
    { /** ms. */ max_delay: i32, /** ms. */ wait_after: i32, /** ms. */ max_wait: i32 }
}

// ---- containers, copies, compression -------------------------------------------------------------------------------

/// `message msg_id:long seqno:int bytes:int body:Object = Message;` (always bare).
///
/// `bytes` is the body length as it was on the wire; when encoding, `body.len()` is written instead, so build
/// messages with [`Message::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Message<'a> {
    /// Inner message id.
    pub msg_id: i64,
    /// Inner seqno.
    pub seqno: i32,
    /// Declared body length (≥ 0, a multiple of 4).
    pub bytes: i32,
    /// The serialized object, opaque here.
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// The schema line (no constructor id: `message` is only ever bare).
    pub const TL: &'static str = "message msg_id:long seqno:int bytes:int body:Object = Message;";

    /// A message for encoding; `bytes` is taken from `body`.
    #[must_use]
    pub const fn new(msg_id: i64, seqno: i32, body: &'a [u8]) -> Self {
        Self {
            msg_id,
            seqno,
            bytes: body.len() as i32,
            body,
        }
    }
}

impl<'a> TlBare<'a> for Message<'a> {
    const MIN_LEN: usize = MESSAGE_MIN_LEN;
    /// Checks `bytes` ≥ 0, a multiple of 4 and ≤ the bytes left (docs/CHECKLIST.md item 48).
    fn read_bare(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let msg_id = r.i64()?;
        let seqno = r.i32()?;
        let bytes = r.i32()?;
        let len = usize::try_from(bytes).map_err(|_| DecodeError::BadLength)?;
        if len % 4 != 0 {
            return Err(DecodeError::BadLength);
        }
        if len > r.remaining() {
            return Err(DecodeError::LengthPastEnd);
        }
        Ok(Self {
            msg_id,
            seqno,
            bytes,
            body: r.take(len)?,
        })
    }
    fn bare_len(&self) -> usize {
        MESSAGE_MIN_LEN + self.body.len()
    }
    fn write_bare(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.i64(self.msg_id)?;
        w.i32(self.seqno)?;
        w.i32(i32::try_from(self.body.len()).map_err(|_| Full { required: usize::MAX })?)?;
        w.raw(self.body)
    }
}

/// `msg_container#73f1f8dc messages:vector<%Message> = MessageContainer;`
///
/// Decoding checks the count against [`MAX_CONTAINER_MESSAGES`] and the bytes left, and every inner message's
/// length, before returning; the messages are then iterated from the wire bytes. Connection-level rules (no nested
/// containers, inner ids below the container's, unique ids, seqno order) are the caller's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MsgContainer<'a> {
    /// The messages.
    pub messages: TlVec<'a, Message<'a>>,
}

impl<'a> MsgContainer<'a> {
    /// The constructor id.
    pub const CONSTRUCTOR: u32 = 0x73f1_f8dc;
    /// The schema line.
    pub const TL: &'static str = "msg_container#73f1f8dc messages:vector<%Message> = MessageContainer;";

    /// A container to encode.
    #[must_use]
    pub const fn new(messages: &'a [Message<'a>]) -> Self {
        Self {
            messages: TlVec::from_slice(messages),
        }
    }

    /// Iterates the messages.
    #[must_use]
    pub fn iter(&self) -> super::TlVecIter<'a, Message<'a>> {
        self.messages.iter()
    }
}

impl<'a> TlRead<'a> for MsgContainer<'a> {
    const MIN_LEN: usize = 8;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.expect_constructor(Self::CONSTRUCTOR)?;
        Ok(Self {
            messages: TlVec::read_bare_limited(r, MAX_CONTAINER_MESSAGES)?,
        })
    }
}

impl TlWrite for MsgContainer<'_> {
    fn tl_len(&self) -> usize {
        4 + self.messages.bare_len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.u32(Self::CONSTRUCTOR)?;
        self.messages.write_bare(w)
    }
}

/// `msg_copy#e06046b2 orig_message:Message = MessageCopy;` (not used by Telegram; decoded so it can be rejected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MsgCopy<'a> {
    /// The copied message.
    pub orig_message: Message<'a>,
}

impl MsgCopy<'_> {
    /// The constructor id.
    pub const CONSTRUCTOR: u32 = 0xe060_46b2;
    /// The schema line.
    pub const TL: &'static str = "msg_copy#e06046b2 orig_message:Message = MessageCopy;";
}

impl<'a> TlRead<'a> for MsgCopy<'a> {
    const MIN_LEN: usize = 4 + MESSAGE_MIN_LEN;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.expect_constructor(Self::CONSTRUCTOR)?;
        Ok(Self {
            orig_message: Message::read_bare(r)?,
        })
    }
}

impl TlWrite for MsgCopy<'_> {
    fn tl_len(&self) -> usize {
        4 + self.orig_message.bare_len()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Full> {
        w.u32(Self::CONSTRUCTOR)?;
        self.orig_message.write_bare(w)
    }
}

tl_struct! {
    /// A gzip-compressed object. Inflate with [`GzipPacked::inflate`] into a buffer whose length is the output cap.
    GzipPacked<'a> = 0x3072_cfa1, "gzip_packed#3072cfa1 packed_data:bytes = Object;"
    { /** An RFC 1952 gzip member. */ packed_data: &'a [u8] }
}

impl GzipPacked<'_> {
    /// Inflates `packed_data` into `out` (see [`gzip::inflate`]); returns the object's length.
    pub fn inflate(&self, out: &mut [u8]) -> Result<usize, GzipError> {
        gzip::inflate(self.packed_data, out)
    }
}

// ---- messages about messages ---------------------------------------------------------------------------------------

tl_struct! {
    /// Acknowledges receipt of messages.
    MsgsAck<'a> = 0x62d6_b459, "msgs_ack#62d6b459 msg_ids:Vector<long> = MsgsAck;"
    { /** At most [`MAX_MSG_IDS`]. */ msg_ids: LongVec<'a> => read_msg_ids }
}
tl_struct! {
    /// A message was rejected (`bad_msg_notification`).
    BadMsg = 0xa7ef_f811,
    "bad_msg_notification#a7eff811 bad_msg_id:long bad_msg_seqno:int error_code:int = BadMsgNotification;"
    { /** The rejected message. */ bad_msg_id: i64, /** Its seqno. */ bad_msg_seqno: i32, /** 16..=64, see the spec. */ error_code: i32 }
}
tl_struct! {
    /// A message was rejected for a bad salt; resend with `new_server_salt`.
    BadServerSalt = 0xedab_447b,
    "bad_server_salt#edab447b bad_msg_id:long bad_msg_seqno:int error_code:int new_server_salt:long = BadMsgNotification;"
    {
        /** The rejected message. */ bad_msg_id: i64, /** Its seqno. */ bad_msg_seqno: i32,
        /** 48. */ error_code: i32, /** The salt to use. */ new_server_salt: i64,
    }
}
tl_enum! {
    /// `BadMsgNotification`.
    BadMsgNotification {
        /** `bad_msg_notification` */ BadMsg(BadMsg),
        /** `bad_server_salt` */ BadServerSalt(BadServerSalt),
    }
}
tl_struct! {
    /// Asks the peer to resend messages.
    MsgResendReq<'a> = 0x7d86_1a08, "msg_resend_req#7d861a08 msg_ids:Vector<long> = MsgResendReq;"
    { /** At most [`MAX_MSG_IDS`]. */ msg_ids: LongVec<'a> => read_msg_ids }
}
tl_struct! {
    /// Older variant of `msg_resend_req` that asks for answers (gone from the current page).
    MsgResendAnsReq<'a> = 0x8610_baeb, "msg_resend_ans_req#8610baeb msg_ids:Vector<long> = MsgResendReq;"
    { /** At most [`MAX_MSG_IDS`]. */ msg_ids: LongVec<'a> => read_msg_ids }
}
tl_struct! {
    /// Asks for the state of messages.
    MsgsStateReq<'a> = 0xda69_fb52, "msgs_state_req#da69fb52 msg_ids:Vector<long> = MsgsStateReq;"
    { /** At most [`MAX_MSG_IDS`]. */ msg_ids: LongVec<'a> => read_msg_ids }
}
tl_struct! {
    /// Answer to `msgs_state_req`: one status byte per id.
    MsgsStateInfo<'a> = 0x04de_b57d, "msgs_state_info#04deb57d req_msg_id:long info:bytes = MsgsStateInfo;"
    { /** The `msgs_state_req`. */ req_msg_id: i64, /** One byte per queried id. */ info: &'a [u8] }
}
tl_struct! {
    /// Unsolicited state of messages.
    MsgsAllInfo<'a> = 0x8cc0_d131, "msgs_all_info#8cc0d131 msg_ids:Vector<long> info:bytes = MsgsAllInfo;"
    { /** At most [`MAX_MSG_IDS`]. */ msg_ids: LongVec<'a> => read_msg_ids, /** One byte per id. */ info: &'a [u8] }
}
tl_struct! {
    /// An answer exists for a message (`msg_detailed_info`).
    MsgDetailed = 0x276d_3ec6,
    "msg_detailed_info#276d3ec6 msg_id:long answer_msg_id:long bytes:int status:int = MsgDetailedInfo;"
    { /** The query. */ msg_id: i64, /** Its answer. */ answer_msg_id: i64, /** Answer size. */ bytes: i32, /** 0. */ status: i32 }
}
tl_struct! {
    /// An answer exists for an unknown query.
    MsgNewDetailedInfo = 0x809d_b6df,
    "msg_new_detailed_info#809db6df answer_msg_id:long bytes:int status:int = MsgDetailedInfo;"
    { /** The answer. */ answer_msg_id: i64, /** Answer size. */ bytes: i32, /** 0. */ status: i32 }
}
tl_enum! {
    /// `MsgDetailedInfo`.
    MsgDetailedInfo {
        /** `msg_detailed_info` */ Detailed(MsgDetailed),
        /** `msg_new_detailed_info` */ NewDetailed(MsgNewDetailedInfo),
    }
}

tl_enum! {
    /// Any boxed object of the service schema, decoded from a message body by its constructor id.
    ///
    /// Objects nested inside (`rpc_result.result`, container messages, `gzip_packed` data) stay opaque, so a caller
    /// decodes layer by layer in a loop with its own depth cap. An id that is not in the schema is
    /// [`DecodeError::UnknownConstructor`]: API-layer objects (updates, results) are not service messages.
    ServiceMessage<'a> {
        /** `req_pq` */ ReqPq(ReqPq),
        /** `req_pq_multi` */ ReqPqMulti(ReqPqMulti),
        /** `resPQ` */ ResPq(ResPq<'a>),
        /** `p_q_inner_data` */ PQInnerDataLegacy(PQInnerDataLegacy<'a>),
        /** `p_q_inner_data_temp` */ PQInnerDataTemp(PQInnerDataTemp<'a>),
        /** `p_q_inner_data_dc` */ PQInnerDataDc(PQInnerDataDc<'a>),
        /** `p_q_inner_data_temp_dc` */ PQInnerDataTempDc(PQInnerDataTempDc<'a>),
        /** `req_DH_params` */ ReqDhParams(ReqDhParams<'a>),
        /** `server_DH_params_ok` */ ServerDhParamsOk(ServerDhParamsOk<'a>),
        /** `server_DH_params_fail` */ ServerDhParamsFail(ServerDhParamsFail),
        /** `server_DH_inner_data` */ ServerDhInnerData(ServerDhInnerData<'a>),
        /** `client_DH_inner_data` */ ClientDhInnerData(ClientDhInnerData<'a>),
        /** `set_client_DH_params` */ SetClientDhParams(SetClientDhParams<'a>),
        /** `dh_gen_ok` */ DhGenOk(DhGenOk),
        /** `dh_gen_retry` */ DhGenRetry(DhGenRetry),
        /** `dh_gen_fail` */ DhGenFail(DhGenFail),
        /** `bind_auth_key_inner` */ BindAuthKeyInner(BindAuthKeyInner),
        /** `auth.bindTempAuthKey` */ AuthBindTempAuthKey(AuthBindTempAuthKey<'a>),
        /** `rpc_result` */ RpcResult(RpcResult<'a>),
        /** `rpc_error` */ RpcError(RpcError<'a>),
        /** `rpc_answer_unknown` */ RpcAnswerUnknown(RpcAnswerUnknown),
        /** `rpc_answer_dropped_running` */ RpcAnswerDroppedRunning(RpcAnswerDroppedRunning),
        /** `rpc_answer_dropped` */ RpcAnswerDropped(RpcAnswerDropped),
        /** `rpc_drop_answer` */ RpcDropAnswer(RpcDropAnswer),
        /** `future_salt` */ FutureSalt(FutureSalt),
        /** `future_salts` */ FutureSalts(FutureSalts<'a>),
        /** `get_future_salts` */ GetFutureSalts(GetFutureSalts),
        /** `pong` */ Pong(Pong),
        /** `ping` */ Ping(Ping),
        /** `ping_delay_disconnect` */ PingDelayDisconnect(PingDelayDisconnect),
        /** `destroy_session` */ DestroySession(DestroySession),
        /** `destroy_session_ok` */ DestroySessionOk(DestroySessionOk),
        /** `destroy_session_none` */ DestroySessionNone(DestroySessionNone),
        /** `destroy_auth_key` */ DestroyAuthKey(DestroyAuthKey),
        /** `destroy_auth_key_ok` */ DestroyAuthKeyOk(DestroyAuthKeyOk),
        /** `destroy_auth_key_none` */ DestroyAuthKeyNone(DestroyAuthKeyNone),
        /** `destroy_auth_key_fail` */ DestroyAuthKeyFail(DestroyAuthKeyFail),
        /** `new_session_created` */ NewSessionCreated(NewSessionCreated),
        /** `msg_container` */ MsgContainer(MsgContainer<'a>),
        /** `msg_copy` */ MsgCopy(MsgCopy<'a>),
        /** `gzip_packed` */ GzipPacked(GzipPacked<'a>),
        /** `msgs_ack` */ MsgsAck(MsgsAck<'a>),
        /** `bad_msg_notification` */ BadMsg(BadMsg),
        /** `bad_server_salt` */ BadServerSalt(BadServerSalt),
        /** `msg_resend_req` */ MsgResendReq(MsgResendReq<'a>),
        /** `msg_resend_ans_req` */ MsgResendAnsReq(MsgResendAnsReq<'a>),
        /** `msgs_state_req` */ MsgsStateReq(MsgsStateReq<'a>),
        /** `msgs_state_info` */ MsgsStateInfo(MsgsStateInfo<'a>),
        /** `msgs_all_info` */ MsgsAllInfo(MsgsAllInfo<'a>),
        /** `msg_detailed_info` */ MsgDetailed(MsgDetailed),
        /** `msg_new_detailed_info` */ MsgNewDetailedInfo(MsgNewDetailedInfo),
        /** `http_wait` */ HttpWait(HttpWait),
    }
}

impl<'a> ServiceMessage<'a> {
    /// Decodes a whole message body ([`DecodeError::Trailing`] if bytes are left after the object).
    pub fn decode_body(body: &'a [u8]) -> Result<Self, DecodeError> {
        <Self as TlRead>::decode(body)
    }
}

/// The schema line of every constructor in [`ServiceMessage`] with its id (for checks and tooling).
pub const SCHEMA: &[(&str, u32)] = &[
    (ReqPq::TL, ReqPq::CONSTRUCTOR),
    (ReqPqMulti::TL, ReqPqMulti::CONSTRUCTOR),
    (ResPq::TL, ResPq::CONSTRUCTOR),
    (PQInnerDataLegacy::TL, PQInnerDataLegacy::CONSTRUCTOR),
    (PQInnerDataTemp::TL, PQInnerDataTemp::CONSTRUCTOR),
    (PQInnerDataDc::TL, PQInnerDataDc::CONSTRUCTOR),
    (PQInnerDataTempDc::TL, PQInnerDataTempDc::CONSTRUCTOR),
    (ReqDhParams::TL, ReqDhParams::CONSTRUCTOR),
    (ServerDhParamsOk::TL, ServerDhParamsOk::CONSTRUCTOR),
    (ServerDhParamsFail::TL, ServerDhParamsFail::CONSTRUCTOR),
    (ServerDhInnerData::TL, ServerDhInnerData::CONSTRUCTOR),
    (ClientDhInnerData::TL, ClientDhInnerData::CONSTRUCTOR),
    (SetClientDhParams::TL, SetClientDhParams::CONSTRUCTOR),
    (DhGenOk::TL, DhGenOk::CONSTRUCTOR),
    (DhGenRetry::TL, DhGenRetry::CONSTRUCTOR),
    (DhGenFail::TL, DhGenFail::CONSTRUCTOR),
    (BindAuthKeyInner::TL, BindAuthKeyInner::CONSTRUCTOR),
    (AuthBindTempAuthKey::TL, AuthBindTempAuthKey::CONSTRUCTOR),
    (RpcResult::TL, RpcResult::CONSTRUCTOR),
    (RpcError::TL, RpcError::CONSTRUCTOR),
    (RpcAnswerUnknown::TL, RpcAnswerUnknown::CONSTRUCTOR),
    (RpcAnswerDroppedRunning::TL, RpcAnswerDroppedRunning::CONSTRUCTOR),
    (RpcAnswerDropped::TL, RpcAnswerDropped::CONSTRUCTOR),
    (RpcDropAnswer::TL, RpcDropAnswer::CONSTRUCTOR),
    (FutureSalt::TL, FutureSalt::CONSTRUCTOR),
    (FutureSalts::TL, FutureSalts::CONSTRUCTOR),
    (GetFutureSalts::TL, GetFutureSalts::CONSTRUCTOR),
    (Pong::TL, Pong::CONSTRUCTOR),
    (Ping::TL, Ping::CONSTRUCTOR),
    (PingDelayDisconnect::TL, PingDelayDisconnect::CONSTRUCTOR),
    (DestroySession::TL, DestroySession::CONSTRUCTOR),
    (DestroySessionOk::TL, DestroySessionOk::CONSTRUCTOR),
    (DestroySessionNone::TL, DestroySessionNone::CONSTRUCTOR),
    (DestroyAuthKey::TL, DestroyAuthKey::CONSTRUCTOR),
    (DestroyAuthKeyOk::TL, DestroyAuthKeyOk::CONSTRUCTOR),
    (DestroyAuthKeyNone::TL, DestroyAuthKeyNone::CONSTRUCTOR),
    (DestroyAuthKeyFail::TL, DestroyAuthKeyFail::CONSTRUCTOR),
    (NewSessionCreated::TL, NewSessionCreated::CONSTRUCTOR),
    (MsgContainer::TL, MsgContainer::CONSTRUCTOR),
    (MsgCopy::TL, MsgCopy::CONSTRUCTOR),
    (GzipPacked::TL, GzipPacked::CONSTRUCTOR),
    (MsgsAck::TL, MsgsAck::CONSTRUCTOR),
    (BadMsg::TL, BadMsg::CONSTRUCTOR),
    (BadServerSalt::TL, BadServerSalt::CONSTRUCTOR),
    (MsgResendReq::TL, MsgResendReq::CONSTRUCTOR),
    (MsgResendAnsReq::TL, MsgResendAnsReq::CONSTRUCTOR),
    (MsgsStateReq::TL, MsgsStateReq::CONSTRUCTOR),
    (MsgsStateInfo::TL, MsgsStateInfo::CONSTRUCTOR),
    (MsgsAllInfo::TL, MsgsAllInfo::CONSTRUCTOR),
    (MsgDetailed::TL, MsgDetailed::CONSTRUCTOR),
    (MsgNewDetailedInfo::TL, MsgNewDetailedInfo::CONSTRUCTOR),
    (HttpWait::TL, HttpWait::CONSTRUCTOR),
];
