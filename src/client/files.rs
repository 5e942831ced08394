//! Large files: uploading (`upload.saveFilePart`, `upload.saveBigFilePart`) and downloading (`upload.getFile`,
//! and through a CDN `upload.getCdnFile`, `upload.getCdnFileHashes`, `upload.reuploadCdnFile`) as state machines
//! with a window of parts in flight.
//!
//! **Where the data comes from and goes.** An [`Upload`] is made from the file's size and a random file id (the
//! host's `CryptoRng`); [`Upload::poll_request`] writes the next part's call into the host's buffer, reading the
//! part's bytes straight into it through the host's `read(offset, dst)` callback (the file is never held here). A
//! [`Download`] is made from the file's `InputFileLocation` (TL bytes the host took from a message, a photo...) and,
//! when known, its size; [`Download::poll_request`] writes `upload.getFile` (or a CDN call) into the host's buffer.
//! Both machines tag each request; the host sends it on the connection the request names ([`Request::dc`],
//! [`Request::cdn`], [`Request::connection`]) and hands the answer back with the tag: `handle_result` for an
//! `rpc_result`, `handle_rpc_error` for an `rpc_error`, `handle_failed` when the query ended without an answer.
//! The timer (`poll_timeout`, `handle_timeout`) runs flood waits and backoffs. A download hands each part to the
//! host **with its offset** ([`DownloadProgress::Data`], borrowing the host's receive buffer), in whatever order
//! the parts arrive: the host writes it at that offset. Handing parts in order would mean holding up to a window of
//! parts here, which this allocation-free layer does not do. What to persist for a resume is the small
//! [`UploadState`] / [`DownloadState`] (`to_bytes`/`from_bytes`), taken after the host stored the data it got.
//!
//! **Spec rules** (<https://core.telegram.org/api/files>, `/cdn`). Upload parts are a multiple of 1 KiB dividing
//! 512 KiB, all but the last of the same size, at most [`MAX_UPLOAD_PARTS`] of them; a file larger than
//! [`BIG_FILE`] goes with `saveBigFilePart` (which names the part count), a smaller one with `saveFilePart` and
//! an md5 of the whole file in its `inputFile`. A download's `limit` is a multiple of 4 KiB dividing 1 MiB and every
//! offset a multiple of it, so no request crosses a 1 MiB boundary. The end of a file is its known size, or the
//! first part shorter than the limit. A CDN part is decrypted with AES-256-CTR (the redirect's key; its IV with the
//! last four bytes replaced by the big-endian `offset / 16`) and checked against the SHA-256 of every 128 KiB range
//! it covers (`fileHash`) before it is handed over; hashes come with the redirect, from `upload.getCdnFileHashes`
//! (asked before the part is requested, so a part never waits here for its hashes) and from
//! `upload.reuploadCdnFile`.
//!
//! **Where we follow TDLib** (`FileUploader`, `FileDownloader`, `PartsManager`): parts are a bitmap over a window
//! above the first part not yet done; a flood wait pauses the whole transfer (Telegram counts it per method and
//! account), a server error backs off 1, 2, 4... s; `FILE_MIGRATE_X` moves the rest of the download to DC X; a
//! `FILE_REFERENCE_*` error stops the download until the host gives a fresh location; `FILE_TOKEN_INVALID` falls
//! back to the master DC.
//!
//! **Where we chose otherwise.** A CDN part whose hash does not match is never handed over, and the download
//! leaves the CDN for good and fetches that part and the rest from the master DC (`cdn_supported` no longer set);
//! TDLib fails the part. A CDN redirect answering a request sent without `cdn_supported` (the CDN given up, or never
//! asked for) fails the download ([`FileError::Inconsistent`]): asking again would bring the same redirect, one
//! round trip per try without end. The same goes for a CDN part shorter than the hashes say the file is there (cut at a range
//! boundary, or empty): with the size unknown it would otherwise end the file early. A download in which a part
//! comes back longer than asked, or shorter than the known size says, or with data after the end of file, fails
//! ([`FileError::Inconsistent`]) instead of trusting either answer. The md5 of a small upload is computed as the
//! parts are first read in order; after a resume from a persisted state it is left empty (the API checks it only
//! when given). Retry counters are per transfer, not per part: a DC that keeps failing stops the transfer after
//! [`FileConfig::max_retries`] failures in a row.
//!
//! **Bounds.** Nothing allocates. At most [`MAX_WINDOW`] parts in flight; the location, the CDN file token and
//! request token, and the CDN hash table have named capacities ([`MAX_LOCATION`], [`MAX_FILE_TOKEN`],
//! [`MAX_CDN_HASHES`]); CDN redirects, migrations and reuploads are counted ([`MAX_REDIRECTS`]). Answers are
//! validated against the schema before a field is read. The CDN key and IV are zeroized on drop.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;
use core::time::Duration;

use heapless::Vec as HVec;
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::DcId;
use super::rpc_error::{ErrorKind, MigrateReason, RpcError};
use crate::crypto::aes::AesCtr;
use crate::error::Fault;
use crate::time::Instant;
use crate::tl::api::{Boxed, Obj, RemoteCall, enums, functions, types};
use crate::tl::layout::Error as LayoutError;
use crate::tl::{TlWrite, encode};

/// One KiB.
pub const KIB: u32 = 1024;
/// The largest upload part (and the number every part size divides).
pub const MAX_UPLOAD_PART: u32 = 512 * KIB;
/// Files larger than this are uploaded with `upload.saveBigFilePart`.
pub const BIG_FILE: u64 = 10 * 1024 * 1024;
/// Most parts of an upload (Telegram's limit for a non-Premium account: 4000 parts of 512 KiB, 2000 MiB).
pub const MAX_UPLOAD_PARTS: u32 = 4000;
/// The largest download `limit`, and the boundary no request may cross.
pub const MAX_DOWNLOAD_LIMIT: u32 = 1024 * KIB;
/// The default [`DownloadConfig::max_size`]: Telegram's largest file, a Premium account's upload limit
/// (`upload_max_fileparts_premium`, 8000 parts of 512 KiB: 4000 MiB).
pub const MAX_DOWNLOAD_SIZE: u64 = 8000 * 512 * 1024;
/// Download limits and offsets are multiples of this.
pub const DOWNLOAD_ALIGN: u32 = 4 * KIB;
/// Most parts in flight (the width of the part bitmap).
pub const MAX_WINDOW: u8 = 64;
/// Longest `InputFileLocation` kept, in bytes (a document location with a file reference is under 100).
pub const MAX_LOCATION: usize = 512;
/// Longest CDN `file_token` or `request_token` kept, in bytes.
pub const MAX_FILE_TOKEN: usize = 256;
/// CDN hash ranges kept at once (128 KiB each: 16 MiB ahead of the first part not done).
pub const MAX_CDN_HASHES: usize = 128;
/// The size of the range one CDN `fileHash` covers.
pub const CDN_HASH_RANGE: u32 = 128 * KIB;
/// CDN redirects, `FILE_MIGRATE`s and CDN reuploads one download follows, each; one more fails it.
pub const MAX_REDIRECTS: u8 = 16;
/// Longest error name kept in a [`FileError::Refused`].
pub const MAX_ERROR_NAME: usize = 64;

/// The host's policy for a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FileConfig {
    /// Parts in flight at once, 1..=[`MAX_WINDOW`]. Throughput is at most `window * part / RTT`.
    pub window: u8,
    /// Connections the parts are spread over ([`Request::connection`] is `part % connections`), at least 1.
    pub connections: u8,
    /// A flood wait up to this long is waited out; a longer one fails the transfer.
    pub max_flood_wait: Duration,
    /// Server errors (500, -503, a 420 without a wait, a lost answer) in a row before the transfer fails.
    pub max_retries: u8,
    /// The first backoff after a server error; each further one doubles.
    pub backoff_initial: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
}

impl FileConfig {
    /// 8 parts in flight on one connection, flood waits up to 60 s, 5 retries backing off 1 s to 32 s.
    pub const DEFAULT: FileConfig = FileConfig {
        window: 8,
        connections: 1,
        max_flood_wait: Duration::from_secs(60),
        max_retries: 5,
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(32),
    };

    fn check(&self) -> Result<(), FileError> {
        if self.window == 0 || self.window > MAX_WINDOW || self.connections == 0 {
            return Err(FileError::BadConfig);
        }
        Ok(())
    }
}

impl Default for FileConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A request's tag: the host keeps it beside the query and hands it back with the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tag(pub u64);

impl Tag {
    const fn new(kind: Method, part: u32) -> Tag {
        Tag(((kind as u64) << 32) | part as u64)
    }

    /// With the location's generation in bits 40..56 (an answer to a request sent with an older location).
    const fn with_gen(self, generation: u16) -> Tag {
        Tag(self.0 | ((generation as u64) << 40))
    }

    const fn generation(self) -> u16 {
        (self.0 >> 40) as u16
    }

    /// Bit 56: the request was an `upload.getFile` with `cdn_supported` set, so a CDN redirect may answer it.
    const fn with_cdn_supported(self, set: bool) -> Tag {
        Tag(self.0 | ((set as u64) << 56))
    }

    const fn cdn_supported(self) -> bool {
        (self.0 >> 56) & 1 == 1
    }

    const fn part(self) -> u32 {
        self.0 as u32
    }

    fn method(self) -> Option<Method> {
        Some(match (self.0 >> 32) & 0xff {
            0 => Method::SaveFilePart,
            1 => Method::SaveBigFilePart,
            2 => Method::GetFile,
            3 => Method::GetCdnFile,
            4 => Method::GetCdnFileHashes,
            5 => Method::ReuploadCdnFile,
            _ => return None,
        })
    }
}

/// The API call a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Method {
    /// `upload.saveFilePart`.
    SaveFilePart = 0,
    /// `upload.saveBigFilePart`.
    SaveBigFilePart = 1,
    /// `upload.getFile`.
    GetFile = 2,
    /// `upload.getCdnFile` (to the CDN DC).
    GetCdnFile = 3,
    /// `upload.getCdnFileHashes` (to the master DC).
    GetCdnFileHashes = 4,
    /// `upload.reuploadCdnFile` (to the master DC).
    ReuploadCdnFile = 5,
}

impl Method {
    /// The function's constructor id (what a flood wait applies to).
    #[must_use]
    pub const fn id(self) -> u32 {
        match self {
            Method::SaveFilePart => functions::UploadSaveFilePart::ID,
            Method::SaveBigFilePart => functions::UploadSaveBigFilePart::ID,
            Method::GetFile => functions::UploadGetFile::ID,
            Method::GetCdnFile => functions::UploadGetCdnFile::ID,
            Method::GetCdnFileHashes => functions::UploadGetCdnFileHashes::ID,
            Method::ReuploadCdnFile => functions::UploadReuploadCdnFile::ID,
        }
    }
}

/// A request written into the host's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request {
    /// Hand it back with the answer.
    pub tag: Tag,
    /// The call inside.
    pub method: Method,
    /// Bytes written at the start of the buffer: send them as one query.
    pub len: usize,
    /// Where to send it: `None` the home DC (the account's), `Some` that DC (after `FILE_MIGRATE_X`, or a CDN DC
    /// when [`Request::cdn`]).
    pub dc: Option<DcId>,
    /// The DC is a CDN DC: a connection with a key made with the CDN's RSA key (`help.getCdnConfig`), not
    /// authorized.
    pub cdn: bool,
    /// Which of the host's [`FileConfig::connections`] to that DC carries it (`part % connections`).
    pub connection: u8,
}

/// Why a transfer stopped or a call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileError {
    /// The configuration is out of range (window 0 or above [`MAX_WINDOW`], no connection, a part size or limit
    /// the spec forbids). Nothing changed.
    BadConfig,
    /// Uploads need at least one byte (Telegram refuses an empty file).
    Empty,
    /// The file needs more than [`MAX_UPLOAD_PARTS`] parts (or than `max_parts`); a download's file is larger than
    /// its [`DownloadConfig::max_size`].
    TooBig,
    /// A location longer than [`MAX_LOCATION`] or not an `InputFileLocation`. Nothing changed.
    BadLocation,
    /// The host's buffer cannot hold the request. Nothing changed.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The host's `read` callback failed; the part stays queued.
    ReadFailed,
    /// A persisted state that does not decode. Nothing changed.
    BadState,
    /// A tag this transfer did not hand out, or whose request is not in flight. Nothing changed.
    UnknownTag,
    /// An answer that is not what the call returns (wrong type, trailing bytes, a value out of range).
    Malformed(LayoutError),
    /// The answers disagree about the file: a part longer than asked, shorter than the known size says, data
    /// after the end of file, a hash range that does not line up.
    Inconsistent,
    /// The DC refused with an error this layer does not handle (or a flood wait longer than allowed, or the
    /// retries ran out).
    Refused {
        /// The error code.
        code: i32,
        /// Its name, up to [`MAX_ERROR_NAME`] bytes.
        name: HVec<u8, MAX_ERROR_NAME>,
    },
    /// More redirects, migrations or reuploads than [`MAX_REDIRECTS`].
    TooManyRedirects,
    /// The transfer failed earlier (its error was returned then) or is complete.
    Finished,
}

impl FileError {
    /// Who broke a rule.
    #[must_use]
    pub const fn fault(&self) -> Fault {
        match self {
            FileError::BadConfig
            | FileError::BadLocation
            | FileError::BufferTooSmall { .. }
            | FileError::BadState
            | FileError::UnknownTag
            | FileError::Finished
            | FileError::Empty => Fault::Host,
            FileError::Malformed(_) | FileError::Inconsistent | FileError::TooManyRedirects => Fault::Peer,
            FileError::TooBig | FileError::ReadFailed | FileError::Refused { .. } => Fault::Environment,
        }
    }

    fn refused(code: i32, name: &[u8]) -> FileError {
        let mut n = HVec::new();
        for &b in name.iter().take(MAX_ERROR_NAME) {
            let _ = n.push(b);
        }
        FileError::Refused { code, name: n }
    }

    /// Whether nothing changed (the call can be repeated after fixing the input).
    const fn is_host_refusal(&self) -> bool {
        matches!(
            self,
            FileError::BadConfig
                | FileError::BadLocation
                | FileError::BufferTooSmall { .. }
                | FileError::BadState
                | FileError::UnknownTag
                | FileError::ReadFailed
                | FileError::Finished
        )
    }
}

impl From<LayoutError> for FileError {
    fn from(e: LayoutError) -> Self {
        FileError::Malformed(e)
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::BadConfig => f.write_str("file transfer configuration out of range"),
            FileError::Empty => f.write_str("cannot upload an empty file"),
            FileError::TooBig => f.write_str("file needs too many parts"),
            FileError::BadLocation => f.write_str("not an InputFileLocation (or too long)"),
            FileError::BufferTooSmall { needed } => write!(f, "request needs a {needed}-byte buffer"),
            FileError::ReadFailed => f.write_str("reading the file failed"),
            FileError::BadState => f.write_str("persisted transfer state does not decode"),
            FileError::UnknownTag => f.write_str("answer to a request not in flight"),
            FileError::Malformed(e) => write!(f, "malformed answer: {e:?}"),
            FileError::Inconsistent => f.write_str("answers disagree about the file"),
            FileError::Refused { code, name } => {
                write!(f, "refused: {code} {}", core::str::from_utf8(name).unwrap_or("?"))
            }
            FileError::TooManyRedirects => f.write_str("too many redirects, migrations or reuploads"),
            FileError::Finished => f.write_str("transfer already finished"),
        }
    }
}

impl core::error::Error for FileError {}

/// The parts of a transfer as bitmaps over a window starting at `base`, the first part not done. A part is sent
/// only while it lies within [`MAX_WINDOW`] of `base`, so three `u64`s say everything about the parts in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Parts {
    /// First part not done; every part below it is done.
    base: u32,
    /// Parts `base + i` done (bit i).
    done: u64,
    /// Parts `base + i` in flight.
    flight: u64,
    /// Parts `base + i` to send again (failed, lost, or refused before being sent).
    again: u64,
    /// First part never sent (parts below it and above `base` are done, in flight or in `again`).
    next: u32,
    /// The number of parts, once known.
    total: Option<u32>,
}

impl Parts {
    fn bit(&self, part: u32) -> Option<u64> {
        let i = part.checked_sub(self.base)?;
        if i < u32::from(MAX_WINDOW) {
            Some(1u64 << i)
        } else {
            None
        }
    }

    fn in_flight(&self, part: u32) -> bool {
        self.bit(part).is_some_and(|b| self.flight & b != 0)
    }

    fn inflight_count(&self) -> u32 {
        self.flight.count_ones()
    }

    /// The next part to send under `window`, without marking it.
    fn peek(&self, window: u8) -> Option<u32> {
        if self.inflight_count() >= u32::from(window) {
            return None;
        }
        if self.again != 0 {
            return Some(self.base.saturating_add(self.again.trailing_zeros()));
        }
        let limit = self.base.saturating_add(u32::from(MAX_WINDOW));
        let end = self.total.map_or(limit, |t| t.min(limit));
        (self.next < end).then_some(self.next)
    }

    fn sent(&mut self, part: u32) {
        if let Some(b) = self.bit(part) {
            self.flight |= b;
            self.again &= !b;
        }
        if part >= self.next {
            self.next = part.saturating_add(1);
        }
    }

    fn retry(&mut self, part: u32) {
        if let Some(b) = self.bit(part)
            && self.flight & b != 0
        {
            self.flight &= !b;
            self.again |= b;
        }
    }

    fn finish(&mut self, part: u32) {
        if let Some(b) = self.bit(part) {
            self.flight &= !b;
            self.again &= !b;
            self.done |= b;
        }
        self.advance();
    }

    /// Moves `base` past the parts done.
    fn advance(&mut self) {
        let shift = self.done.trailing_ones();
        if shift == 64 {
            self.done = 0;
            self.flight = 0;
            self.again = 0;
        } else if shift > 0 {
            self.done >>= shift;
            self.flight >>= shift;
            self.again >>= shift;
        }
        self.base = self.base.saturating_add(shift);
        if self.next < self.base {
            self.next = self.base;
        }
    }

    /// A part that needs nothing more (an empty answer past the end of file): neither in flight nor queued.
    fn forget(&mut self, part: u32) {
        if let Some(b) = self.bit(part) {
            self.flight &= !b;
            self.again &= !b;
        }
    }

    /// The parts of a persisted state: those below `base` and in `done` are not asked again; the others below
    /// the highest done one are queued.
    fn restore(&mut self, base: u32, done: u64) -> Result<(), FileError> {
        let hi = 64 - done.leading_zeros();
        let top = base.checked_add(hi).ok_or(FileError::BadState)?;
        if self.total.is_some_and(|t| base > t || top > t) {
            return Err(FileError::BadState);
        }
        let below = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
        self.base = base;
        self.done = done;
        self.flight = 0;
        self.again = !done & below;
        self.next = top;
        self.advance();
        Ok(())
    }

    fn complete(&self) -> bool {
        self.total.is_some_and(|t| self.base >= t)
    }

    /// Sets the part count; parts at or above it queued to be sent again are forgotten (those in flight stay, to
    /// take their empty answers).
    fn set_total(&mut self, total: u32) {
        self.total = Some(total);
        if let Some(i) = total.checked_sub(self.base) {
            if i < 64 {
                self.again &= (1u64 << i).wrapping_sub(1);
            }
        } else {
            self.again = 0;
        }
    }
}

/// Pacing: flood waits, backoffs and the retry count shared by a transfer's parts.
#[derive(Clone, Copy, Debug, Default)]
struct Pace {
    until: Option<Instant>,
    retries: u8,
}

impl Pace {
    fn paused(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }

    /// Handles a wait or a retryable error: `Ok(delay)` to retry after it, `Err` to fail.
    fn on_error(&mut self, cfg: &FileConfig, now: Instant, err: &RpcError<'_>) -> Option<Result<Duration, ()>> {
        match err.kind {
            ErrorKind::Wait { seconds, .. } => {
                let d = Duration::from_secs(u64::from(seconds.max(1)));
                if d > cfg.max_flood_wait {
                    return Some(Err(()));
                }
                self.pause(now, d);
                Some(Ok(d))
            }
            ErrorKind::Retry(_) => Some(self.backoff(cfg, now)),
            _ => None,
        }
    }

    fn backoff(&mut self, cfg: &FileConfig, now: Instant) -> Result<Duration, ()> {
        if self.retries >= cfg.max_retries {
            return Err(());
        }
        let factor = 1u32 << self.retries.min(20);
        self.retries = self.retries.saturating_add(1);
        let d = cfg.backoff_initial.saturating_mul(factor).min(cfg.backoff_max);
        self.pause(now, d);
        Ok(d)
    }

    fn pause(&mut self, now: Instant, d: Duration) {
        let at = now.saturating_add(d);
        self.until = Some(self.until.map_or(at, |u| u.max(at)));
    }

    fn timeout(&mut self, now: Instant) {
        if self.until.is_some_and(|u| now >= u) {
            self.until = None;
        }
    }
}

/// TL `bytes` header length for a payload of `n` bytes, and the padding after it.
const fn tl_bytes_layout(n: usize) -> (usize, usize) {
    let head = if n < 254 { 1 } else { 4 };
    let pad = (4 - (head + n) % 4) % 4;
    (head, pad)
}

fn put_tl_bytes_header(dst: &mut [u8], n: usize) -> Option<usize> {
    if n < 254 {
        *dst.first_mut()? = n as u8;
        Some(1)
    } else {
        let h = dst.get_mut(..4)?;
        let le = (n as u32).to_le_bytes();
        h.copy_from_slice(&[254, le[0], le[1], le[2]]);
        Some(4)
    }
}

// ------------------------------------------------------------------------------------------------------------------
// Upload
// ------------------------------------------------------------------------------------------------------------------

/// What an upload is configured with besides [`FileConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UploadConfig {
    /// The transfer policy.
    pub transfer: FileConfig,
    /// Part size: `None` picks the smallest of 32, 64 ... 512 KiB giving at most 1000 parts (fewer, larger calls
    /// for large files; small parts keep small files from waiting on one large part); `Some` must be a multiple
    /// of 1 KiB dividing 512 KiB.
    pub part_size: Option<u32>,
    /// Most parts allowed ([`MAX_UPLOAD_PARTS`]; Telegram allows Premium accounts 8000).
    pub max_parts: u32,
}

impl UploadConfig {
    /// [`FileConfig::DEFAULT`], automatic part size, [`MAX_UPLOAD_PARTS`].
    pub const DEFAULT: UploadConfig = UploadConfig {
        transfer: FileConfig::DEFAULT,
        part_size: None,
        max_parts: MAX_UPLOAD_PARTS,
    };
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

const fn valid_part_size(p: u32) -> bool {
    p > 0 && p.is_multiple_of(KIB) && MAX_UPLOAD_PART.is_multiple_of(p)
}

/// What to persist to resume an upload: 32 bytes ([`UploadState::to_bytes`]). Telegram keeps saved parts for a
/// while (hours), so an upload resumed within that time re-sends only the parts not done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UploadState {
    /// The upload's random file id.
    pub file_id: i64,
    /// The file's size.
    pub size: u64,
    /// The part size.
    pub part_size: u32,
    /// First part not done.
    pub base: u32,
    /// Parts `base + i` done (bit i).
    pub done: u64,
}

impl UploadState {
    /// Encoded length.
    pub const LEN: usize = 32;

    /// Little-endian encoding.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let fields: [&[u8]; 5] = [
            &self.file_id.to_le_bytes(),
            &self.size.to_le_bytes(),
            &self.part_size.to_le_bytes(),
            &self.base.to_le_bytes(),
            &self.done.to_le_bytes(),
        ];
        let mut at = 0;
        for f in fields {
            if let Some(d) = out.get_mut(at..at + f.len()) {
                d.copy_from_slice(f);
            }
            at += f.len();
        }
        out
    }

    /// Decodes [`UploadState::to_bytes`]; checks nothing but the length (the upload checks the values).
    pub fn from_bytes(b: &[u8]) -> Result<UploadState, FileError> {
        let b: &[u8; Self::LEN] = b.try_into().map_err(|_| FileError::BadState)?;
        let (a, r) = b.split_at(8);
        let (s, r) = r.split_at(8);
        let (p, r) = r.split_at(4);
        let (base, d) = r.split_at(4);
        let arr8 = |x: &[u8]| <[u8; 8]>::try_from(x).map_err(|_| FileError::BadState);
        let arr4 = |x: &[u8]| <[u8; 4]>::try_from(x).map_err(|_| FileError::BadState);
        Ok(UploadState {
            file_id: i64::from_le_bytes(arr8(a)?),
            size: u64::from_le_bytes(arr8(s)?),
            part_size: u32::from_le_bytes(arr4(p)?),
            base: u32::from_le_bytes(arr4(base)?),
            done: u64::from_le_bytes(arr8(d)?),
        })
    }
}

/// What an upload input changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UploadProgress {
    /// Keep driving.
    Nothing,
    /// A part was saved; `parts_done` of `parts` are.
    Saved {
        /// Parts saved (a prefix; parts saved above the first missing one are not counted yet).
        parts_done: u32,
        /// Parts in all.
        parts: u32,
    },
    /// The part will be re-sent after this delay (a flood wait, a backoff).
    Delayed(Duration),
    /// The part will be re-sent (its answer was lost).
    Resend,
    /// Every part is saved: write the `InputFile` with [`Upload::input_file`].
    Complete,
}

/// An upload of one file.
#[derive(Clone, Debug)]
pub struct Upload {
    cfg: UploadConfig,
    file_id: i64,
    size: u64,
    part_size: u32,
    parts: Parts,
    pace: Pace,
    md5: Md5,
    /// The part the md5 needs next; `None` once it cannot be computed (a resume).
    md5_next: Option<u32>,
    failed: Option<FileError>,
}

impl Upload {
    /// An upload of `size` bytes with the random `file_id` (from the host's `CryptoRng`; it names the upload on
    /// the DC until the file is sent).
    pub fn new(cfg: UploadConfig, file_id: i64, size: u64) -> Result<Upload, FileError> {
        cfg.transfer.check()?;
        if size == 0 {
            return Err(FileError::Empty);
        }
        let part_size = match cfg.part_size {
            Some(p) if valid_part_size(p) => p,
            Some(_) => return Err(FileError::BadConfig),
            None => {
                let mut p = 32 * KIB;
                while p < MAX_UPLOAD_PART && size.div_ceil(u64::from(p)) > 1000 {
                    p *= 2;
                }
                p
            }
        };
        let total = size.div_ceil(u64::from(part_size));
        if total > u64::from(cfg.max_parts.min(i32::MAX as u32)) {
            return Err(FileError::TooBig);
        }
        let total = total as u32;
        Ok(Upload {
            cfg,
            file_id,
            size,
            part_size,
            parts: Parts {
                total: Some(total),
                ..Parts::default()
            },
            pace: Pace::default(),
            md5: Md5::new(),
            md5_next: Some(0),
            failed: None,
        })
    }

    /// An upload resumed from a persisted state (the same file): the parts it says are done are not sent again.
    pub fn resume(cfg: UploadConfig, state: &UploadState) -> Result<Upload, FileError> {
        let mut up = Upload::new(
            UploadConfig {
                part_size: Some(state.part_size),
                ..cfg
            },
            state.file_id,
            state.size,
        )
        .map_err(|e| {
            if e.fault() == Fault::Host {
                FileError::BadState
            } else {
                e
            }
        })?;
        up.parts.restore(state.base, state.done)?;
        if state.base > 0 || state.done != 0 {
            up.md5_next = None;
        }
        Ok(up)
    }

    /// What to persist now (after a [`UploadProgress::Saved`]).
    #[must_use]
    pub fn state(&self) -> UploadState {
        UploadState {
            file_id: self.file_id,
            size: self.size,
            part_size: self.part_size,
            base: self.parts.base,
            done: self.parts.done,
        }
    }

    /// The part size chosen.
    #[must_use]
    pub const fn part_size(&self) -> u32 {
        self.part_size
    }

    /// The number of parts.
    #[must_use]
    pub fn total_parts(&self) -> u32 {
        self.parts.total.unwrap_or(0)
    }

    /// `upload.saveBigFilePart` is used (the file is larger than [`BIG_FILE`]).
    #[must_use]
    pub const fn is_big(&self) -> bool {
        self.size > BIG_FILE
    }

    /// The file id.
    #[must_use]
    pub const fn file_id(&self) -> i64 {
        self.file_id
    }

    /// Parts in flight now.
    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.parts.inflight_count()
    }

    /// Every part is saved.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.parts.complete()
    }

    /// The error that stopped the upload, if any.
    #[must_use]
    pub fn error(&self) -> Option<&FileError> {
        self.failed.as_ref()
    }

    /// The largest request this upload writes: size the host's buffer at least this.
    #[must_use]
    pub fn max_request_len(&self) -> usize {
        let (h, p) = tl_bytes_layout(self.part_size as usize);
        20 + h + self.part_size as usize + p
    }

    fn live(&self) -> Result<(), FileError> {
        match &self.failed {
            Some(_) => Err(FileError::Finished),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: FileError) -> FileError {
        self.failed = Some(e.clone());
        e
    }

    /// The next part to send, if the window has room and no wait runs: writes `upload.saveFilePart` or
    /// `upload.saveBigFilePart` into `buf`, with the part's bytes read by `read(offset, dst)` straight into their
    /// place (`dst` is exactly the part's length; return `false` if the read failed: the part stays queued and
    /// [`FileError::ReadFailed`] is returned).
    pub fn poll_request(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        read: impl FnOnce(u64, &mut [u8]) -> bool,
    ) -> Result<Option<Request>, FileError> {
        self.live()?;
        self.pace.timeout(now);
        if self.pace.paused(now) {
            return Ok(None);
        }
        let Some(part) = self.parts.peek(self.cfg.transfer.window) else {
            return Ok(None);
        };
        let offset = u64::from(part) * u64::from(self.part_size);
        let len = (self.size - offset).min(u64::from(self.part_size)) as usize;
        let (head, pad) = tl_bytes_layout(len);
        let big = self.is_big();
        let fixed = if big { 20 } else { 16 };
        let needed = fixed + head + len + pad;
        if buf.len() < needed {
            return Err(FileError::BufferTooSmall { needed });
        }
        let method = if big {
            Method::SaveBigFilePart
        } else {
            Method::SaveFilePart
        };
        let mut at = 0usize;
        let mut put = |b: &[u8], buf: &mut [u8]| {
            if let Some(d) = buf.get_mut(at..at + b.len()) {
                d.copy_from_slice(b);
            }
            at += b.len();
        };
        put(&method.id().to_le_bytes(), buf);
        put(&self.file_id.to_le_bytes(), buf);
        put(&(part as i32).to_le_bytes(), buf);
        if big {
            put(&(self.total_parts() as i32).to_le_bytes(), buf);
        }
        let h = buf
            .get_mut(at..)
            .and_then(|d| put_tl_bytes_header(d, len))
            .ok_or(FileError::BufferTooSmall { needed })?;
        at += h;
        let data = buf.get_mut(at..at + len).ok_or(FileError::BufferTooSmall { needed })?;
        if !read(offset, data) {
            return Err(FileError::ReadFailed);
        }
        if !big && self.md5_next == Some(part) {
            self.md5.update(&*data);
            self.md5_next = Some(part + 1);
        }
        at += len;
        if let Some(p) = buf.get_mut(at..at + pad) {
            p.fill(0);
        }
        at += pad;
        self.parts.sent(part);
        let connection = (part % u32::from(self.cfg.transfer.connections)) as u8;
        Ok(Some(Request {
            tag: Tag::new(method, part),
            method,
            len: at,
            dc: None,
            cdn: false,
            connection,
        }))
    }

    fn take_tag(&self, tag: Tag) -> Result<u32, FileError> {
        match tag.method() {
            Some(Method::SaveFilePart | Method::SaveBigFilePart) if self.parts.in_flight(tag.part()) => Ok(tag.part()),
            _ => Err(FileError::UnknownTag),
        }
    }

    /// The answer (`Bool`) to a part.
    pub fn handle_result(&mut self, now: Instant, tag: Tag, body: &[u8]) -> Result<UploadProgress, FileError> {
        self.live()?;
        let part = self.take_tag(tag)?;
        let ok = match functions::UploadSaveFilePart::decode_result(body) {
            Ok(ok) => ok,
            Err(e) => return Err(self.fail(FileError::Malformed(e))),
        };
        if !ok {
            // boolFalse: the DC did not store the part. Treat as a server error (bounded retries).
            self.parts.retry(part);
            return match self.pace.backoff(&self.cfg.transfer, now) {
                Ok(d) => Ok(UploadProgress::Delayed(d)),
                Err(()) => Err(self.fail(FileError::refused(0, b"BOOL_FALSE"))),
            };
        }
        self.pace.retries = 0;
        self.parts.finish(part);
        if self.parts.complete() {
            return Ok(UploadProgress::Complete);
        }
        Ok(UploadProgress::Saved {
            parts_done: self.parts.base,
            parts: self.total_parts(),
        })
    }

    /// An `rpc_error` for a part: waits and server errors are retried; anything else fails the upload.
    pub fn handle_rpc_error(
        &mut self,
        now: Instant,
        tag: Tag,
        code: i32,
        message: &[u8],
    ) -> Result<UploadProgress, FileError> {
        self.live()?;
        let part = self.take_tag(tag)?;
        let err = match RpcError::classify(code, message) {
            Ok(e) => e,
            Err(_) => return Err(self.fail(FileError::refused(code, message))),
        };
        match self.pace.on_error(&self.cfg.transfer, now, &err) {
            Some(Ok(d)) => {
                self.parts.retry(part);
                Ok(UploadProgress::Delayed(d))
            }
            _ => Err(self.fail(FileError::refused(code, message))),
        }
    }

    /// The query of a part ended without an answer (the connection went away): the part is sent again, counted
    /// as a retry.
    pub fn handle_failed(&mut self, now: Instant, tag: Tag) -> Result<UploadProgress, FileError> {
        self.live()?;
        let part = self.take_tag(tag)?;
        self.parts.retry(part);
        if self.pace.retries >= self.cfg.transfer.max_retries {
            return Err(self.fail(FileError::refused(0, b"LOST")));
        }
        self.pace.retries = self.pace.retries.saturating_add(1);
        let _ = now;
        Ok(UploadProgress::Resend)
    }

    /// When the timer is due next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed.is_some() { None } else { self.pace.until }
    }

    /// Runs the timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.pace.timeout(now);
    }

    /// The md5 of the file as lowercase hex, when it could be computed (every part read in order in this run).
    #[must_use]
    pub fn md5_hex(&self) -> Option<[u8; 32]> {
        if self.md5_next != Some(self.total_parts()) {
            return None;
        }
        let digest = self.md5.clone().finalize();
        let mut out = [0u8; 32];
        for (pair, b) in out.chunks_exact_mut(2).zip(digest.iter()) {
            let hex = b"0123456789abcdef";
            if let (Some(h), Some(l), [a, c]) = (hex.get(usize::from(b >> 4)), hex.get(usize::from(b & 15)), pair) {
                *a = *h;
                *c = *l;
            }
        }
        Some(out)
    }

    /// Writes the `InputFile` naming the upload (`inputFile` with the md5, or `inputFileBig`) into `buf`, once
    /// [`Upload::is_complete`]; returns its length. `name` is the file name the DC records.
    pub fn input_file(&self, name: &[u8], buf: &mut [u8]) -> Result<usize, FileError> {
        if !self.is_complete() {
            return Err(FileError::Finished);
        }
        let parts = self.total_parts() as i32;
        let md5 = self.md5_hex();
        let res = if self.is_big() {
            encode(
                &types::InputFileBig {
                    id: self.file_id,
                    parts,
                    name,
                },
                buf,
            )
        } else {
            let md5_checksum: &[u8] = match &md5 {
                Some(m) => m,
                None => b"",
            };
            encode(
                &types::InputFile {
                    id: self.file_id,
                    parts,
                    name,
                    md5_checksum,
                },
                buf,
            )
        };
        res.map_err(|_| FileError::BufferTooSmall {
            needed: 32 + name.len() + 40,
        })
    }
}

// ------------------------------------------------------------------------------------------------------------------
// Download
// ------------------------------------------------------------------------------------------------------------------

/// What a download is configured with besides [`FileConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DownloadConfig {
    /// The transfer policy.
    pub transfer: FileConfig,
    /// Bytes per request: a multiple of [`DOWNLOAD_ALIGN`] dividing [`MAX_DOWNLOAD_LIMIT`].
    pub limit: u32,
    /// Set `cdn_supported`: the DC may answer with a CDN redirect. The host then needs connections to CDN DCs.
    /// Needs a `limit` of at least [`CDN_HASH_RANGE`] (a CDN part is checked against whole hash ranges).
    pub cdn: bool,
    /// The largest file this download takes: a known size above it is refused at once, and when the size is
    /// unknown a DC that keeps answering full parts past it fails the download ([`FileError::TooBig`]) instead of
    /// streaming without end. Default [`MAX_DOWNLOAD_SIZE`].
    pub max_size: u64,
}

impl DownloadConfig {
    /// [`FileConfig::DEFAULT`], 512 KiB per request, no CDN.
    pub const DEFAULT: DownloadConfig = DownloadConfig {
        transfer: FileConfig::DEFAULT,
        limit: 512 * KIB,
        cdn: false,
        max_size: MAX_DOWNLOAD_SIZE,
    };

    fn check(&self) -> Result<(), FileError> {
        self.transfer.check()?;
        if self.limit == 0
            || !self.limit.is_multiple_of(DOWNLOAD_ALIGN)
            || !MAX_DOWNLOAD_LIMIT.is_multiple_of(self.limit)
        {
            return Err(FileError::BadConfig);
        }
        // A CDN part is checked against whole 128 KiB hash ranges: a smaller part can never be verified, so every
        // CDN part would be refused and the download would leave the CDN after one wasted round trip.
        if self.cdn && self.limit < CDN_HASH_RANGE {
            return Err(FileError::BadConfig);
        }
        Ok(())
    }
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What to persist to resume a download: 24 bytes ([`DownloadState::to_bytes`]). The location is the host's (it
/// may have to refresh it anyway); a CDN redirect is not kept (its token expires; the master DC redirects again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DownloadState {
    /// The file's size, if known.
    pub size: Option<u64>,
    /// The limit parts were asked with (offsets are multiples of it).
    pub limit: u32,
    /// First part not done.
    pub base: u32,
    /// Parts `base + i` done (bit i).
    pub done: u64,
}

impl DownloadState {
    /// Encoded length.
    pub const LEN: usize = 24;

    /// Little-endian encoding (an unknown size as `u64::MAX`).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let size = self.size.unwrap_or(u64::MAX);
        let fields: [&[u8]; 4] = [
            &size.to_le_bytes(),
            &self.limit.to_le_bytes(),
            &self.base.to_le_bytes(),
            &self.done.to_le_bytes(),
        ];
        let mut at = 0;
        for f in fields {
            if let Some(d) = out.get_mut(at..at + f.len()) {
                d.copy_from_slice(f);
            }
            at += f.len();
        }
        out
    }

    /// Decodes [`DownloadState::to_bytes`]; checks nothing but the length (the download checks the values).
    pub fn from_bytes(b: &[u8]) -> Result<DownloadState, FileError> {
        let b: &[u8; Self::LEN] = b.try_into().map_err(|_| FileError::BadState)?;
        let (s, r) = b.split_at(8);
        let (l, r) = r.split_at(4);
        let (base, d) = r.split_at(4);
        let arr8 = |x: &[u8]| <[u8; 8]>::try_from(x).map_err(|_| FileError::BadState);
        let arr4 = |x: &[u8]| <[u8; 4]>::try_from(x).map_err(|_| FileError::BadState);
        let size = u64::from_le_bytes(arr8(s)?);
        Ok(DownloadState {
            size: (size != u64::MAX).then_some(size),
            limit: u32::from_le_bytes(arr4(l)?),
            base: u32::from_le_bytes(arr4(base)?),
            done: u64::from_le_bytes(arr8(d)?),
        })
    }
}

/// What a download input changed. Borrows the answer it came from.
#[derive(Debug, PartialEq, Eq)]
pub enum DownloadProgress<'b> {
    /// Keep driving.
    Nothing,
    /// Bytes of the file at `offset`: store them there. [`Download::is_complete`] says whether it was the last.
    Data {
        /// Where they go.
        offset: u64,
        /// The bytes (decrypted and checked, for a CDN part).
        bytes: &'b [u8],
    },
    /// The request will be re-sent after this delay (a flood wait, a backoff).
    Delayed(Duration),
    /// The request will be re-sent (its answer was lost, or the CDN must be refilled first).
    Resend,
    /// `FILE_MIGRATE_X`: the file is on DC `dc`; the next requests name it. Open (or pick) an authorized
    /// connection there (the router copies the authorization).
    Migrate {
        /// The DC the file lives on.
        dc: DcId,
    },
    /// `FILE_REFERENCE_*`: the location's file reference expired. Fetch the object again and hand the new
    /// location to [`Download::refresh_location`]; nothing is sent until then.
    ReferenceExpired,
    /// The DC redirected the download to CDN DC `dc`: open a connection there (a key made with the CDN's RSA key
    /// from `help.getCdnConfig`); the next part requests name it.
    CdnRedirect {
        /// The CDN DC.
        dc: DcId,
    },
    /// A CDN part failed its hash check (or the CDN answered inconsistently): it was refused, never handed over,
    /// and the download continues from the master DC without the CDN.
    CdnRefused {
        /// The offset of the refused part.
        offset: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CdnHash {
    offset: u64,
    limit: u32,
    hash: [u8; 32],
}

/// A CDN redirect in force.
struct Cdn {
    dc: DcId,
    token: HVec<u8, MAX_FILE_TOKEN>,
    key: [u8; 32],
    iv: [u8; 16],
    hashes: HVec<CdnHash, MAX_CDN_HASHES>,
    /// A `getCdnFileHashes` is in flight (its offset).
    hashes_pending: Option<u64>,
    /// The hashes asked at this offset came back without it: the file ends there.
    hash_end: Option<u64>,
    /// Parts waiting for `reuploadCdnFile`, with the request token of the first (one reupload at a time).
    reupload: Option<(u32, HVec<u8, MAX_FILE_TOKEN>, bool)>,
}

impl Drop for Cdn {
    fn drop(&mut self) {
        self.key.zeroize();
        self.iv.zeroize();
    }
}

impl fmt::Debug for Cdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key and IV decrypt the file: not printed.
        f.debug_struct("Cdn")
            .field("dc", &self.dc)
            .field("hashes", &self.hashes.len())
            .finish_non_exhaustive()
    }
}

impl Cdn {
    /// Adds hashes within `[lo, hi)`; others are ignored (the table is bounded: those are asked again when
    /// needed).
    fn add_hashes<'a>(
        &mut self,
        hashes: impl Iterator<Item = Obj<'a, enums::FileHash<'a>>>,
        lo: u64,
        hi: u64,
    ) -> Result<(), FileError> {
        for h in hashes {
            let Some(enums::FileHash::FileHash(h)) = h.get() else {
                return Err(FileError::Malformed(LayoutError::Truncated));
            };
            let Ok(offset) = u64::try_from(h.offset) else {
                return Err(FileError::Inconsistent);
            };
            let Ok(limit) = u32::try_from(h.limit) else {
                return Err(FileError::Inconsistent);
            };
            let hash: [u8; 32] = h.hash.try_into().map_err(|_| FileError::Inconsistent)?;
            if limit == 0 || limit > CDN_HASH_RANGE || offset % u64::from(CDN_HASH_RANGE) != 0 {
                return Err(FileError::Inconsistent);
            }
            if offset < lo || offset >= hi {
                continue;
            }
            if let Some(old) = self.hashes.iter().find(|e| e.offset == offset) {
                // Two different hashes for one range: one of the answers lies.
                if old.limit != limit || !bool::from(old.hash.ct_eq(&hash)) {
                    return Err(FileError::Inconsistent);
                }
                continue;
            }
            if self.hashes.is_full() {
                continue;
            }
            let _ = self.hashes.push(CdnHash { offset, limit, hash });
        }
        Ok(())
    }

    fn forget_below(&mut self, offset: u64) {
        self.hashes
            .retain(|h| h.offset.saturating_add(u64::from(h.limit)) > offset);
    }

    /// The first offset in `[from, to)` not covered by a hash, if any (the end of file counts as covered).
    fn first_uncovered(&self, from: u64, to: u64) -> Option<u64> {
        let mut pos = from;
        while pos < to {
            if self.hash_end.is_some_and(|e| pos >= e) {
                return None;
            }
            match self.hashes.iter().find(|h| h.offset == pos) {
                None => return Some(pos),
                Some(h) if h.limit < CDN_HASH_RANGE => return None,
                Some(h) => pos = pos.saturating_add(u64::from(h.limit)),
            }
        }
        None
    }

    /// How many bytes of `[from, to)` the master DC's hashes vouch for: all of it, or up to the end of file a
    /// short range or `hash_end` marks. `None` when a range on the way has no hash. A CDN part must be
    /// exactly this long: the hashes check the bytes it brings, this checks that it brings all of them (a CDN that
    /// cuts a part at a range boundary, or answers empty, would otherwise end a file of unknown size there).
    fn vouched_len(&self, from: u64, to: u64) -> Option<u64> {
        let mut pos = from;
        while pos < to {
            if self.hash_end.is_some_and(|e| pos >= e) {
                break;
            }
            let h = self.hashes.iter().find(|h| h.offset == pos)?;
            pos = pos.saturating_add(u64::from(h.limit));
            if h.limit < CDN_HASH_RANGE {
                break;
            }
        }
        Some(pos.min(to).saturating_sub(from))
    }

    /// Checks decrypted bytes at `offset` against the hashes: every range they cover must be known, fully inside
    /// them, and match.
    fn verify(&self, offset: u64, bytes: &[u8]) -> bool {
        let mut pos = 0usize;
        let mut ok = true;
        while pos < bytes.len() {
            let at = offset.saturating_add(pos as u64);
            let Some(h) = self.hashes.iter().find(|h| h.offset == at) else {
                return false;
            };
            let end = pos.saturating_add(h.limit as usize);
            let Some(range) = bytes.get(pos..end) else { return false };
            let digest = Sha256::digest(range);
            ok &= bool::from(digest.as_slice().ct_eq(&h.hash));
            pos = end;
        }
        ok
    }
}

/// A download of one file.
#[derive(Debug)]
pub struct Download {
    cfg: DownloadConfig,
    location: HVec<u8, MAX_LOCATION>,
    size: Option<u64>,
    parts: Parts,
    pace: Pace,
    dc: Option<DcId>,
    cdn: Option<Cdn>,
    /// A CDN part failed its check: no more CDN for this download.
    cdn_off: bool,
    wait_reference: bool,
    /// Bumped by each new location: a `FILE_REFERENCE_*` for a request sent with an older one is not news.
    loc_gen: u16,
    /// Bumped by each CDN redirect put in force: an answer to a CDN call of an earlier one is stale.
    cdn_gen: u16,
    /// Unknown size: the end of the last full part seen (the file is at least this long) ...
    min_size: u64,
    /// ... and the offset of the first empty part seen (at most this long).
    max_size: Option<u64>,
    redirects: u8,
    failed: Option<FileError>,
}

impl Download {
    /// A download of the file at `location` (an `InputFileLocation`, boxed, as TL bytes), of `size` bytes when
    /// known (a document's `size`; photos' sizes are not exact, pass `None`).
    pub fn new(cfg: DownloadConfig, location: &[u8], size: Option<u64>) -> Result<Download, FileError> {
        cfg.check()?;
        let mut d = Download {
            cfg,
            location: HVec::new(),
            size,
            parts: Parts::default(),
            pace: Pace::default(),
            dc: None,
            cdn: None,
            cdn_off: false,
            wait_reference: false,
            loc_gen: 0,
            cdn_gen: 0,
            min_size: 0,
            max_size: None,
            redirects: 0,
            failed: None,
        };
        d.set_location(location)?;
        if let Some(s) = size {
            if s > cfg.max_size {
                return Err(FileError::TooBig);
            }
            let total = s.div_ceil(u64::from(cfg.limit));
            d.parts.set_total(u32::try_from(total).map_err(|_| FileError::TooBig)?);
        }
        Ok(d)
    }

    /// A download resumed from a persisted state: the parts it says are done are not asked again. `cfg.limit` is
    /// replaced by the state's.
    pub fn resume(cfg: DownloadConfig, location: &[u8], state: &DownloadState) -> Result<Download, FileError> {
        let mut d = Download::new(
            DownloadConfig {
                limit: state.limit,
                ..cfg
            },
            location,
            state.size,
        )
        .map_err(|e| {
            if e == FileError::BadConfig {
                FileError::BadState
            } else {
                e
            }
        })?;
        d.parts.restore(state.base, state.done)?;
        // Parts below base came back full.
        d.min_size = u64::from(d.parts.base) * u64::from(d.cfg.limit);
        Ok(d)
    }

    fn set_location(&mut self, location: &[u8]) -> Result<(), FileError> {
        if location.len() > MAX_LOCATION || enums::InputFileLocation::decode(location).is_err() {
            return Err(FileError::BadLocation);
        }
        self.location.clear();
        self.location
            .extend_from_slice(location)
            .map_err(|_| FileError::BadLocation)
    }

    /// A fresh location after [`DownloadProgress::ReferenceExpired`] (or any time): the download continues with
    /// it, re-sending the parts that failed.
    pub fn refresh_location(&mut self, location: &[u8]) -> Result<(), FileError> {
        self.live()?;
        self.set_location(location)?;
        self.wait_reference = false;
        self.loc_gen = self.loc_gen.wrapping_add(1);
        Ok(())
    }

    /// What to persist now (after storing a [`DownloadProgress::Data`]).
    #[must_use]
    pub fn state(&self) -> DownloadState {
        DownloadState {
            size: self.size,
            limit: self.cfg.limit,
            base: self.parts.base,
            done: self.parts.done,
        }
    }

    /// The file's size: the one given, or the one found at its end.
    #[must_use]
    pub const fn size(&self) -> Option<u64> {
        self.size
    }

    /// Every byte was handed over.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.parts.complete()
    }

    /// Parts in flight now (CDN hash and reupload calls not counted).
    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.parts.inflight_count()
    }

    /// The DC requests go to (`None`: home).
    #[must_use]
    pub const fn dc(&self) -> Option<DcId> {
        self.dc
    }

    /// The error that stopped the download, if any.
    #[must_use]
    pub fn error(&self) -> Option<&FileError> {
        self.failed.as_ref()
    }

    /// Waiting for [`Download::refresh_location`].
    #[must_use]
    pub const fn waits_for_reference(&self) -> bool {
        self.wait_reference
    }

    /// The largest answer a part may bring: size the host's receive buffer for it plus the session's overhead.
    #[must_use]
    pub fn max_answer_len(&self) -> usize {
        let (h, p) = tl_bytes_layout(self.cfg.limit as usize);
        12 + h + self.cfg.limit as usize + p
    }

    fn live(&self) -> Result<(), FileError> {
        if self.failed.is_some() {
            Err(FileError::Finished)
        } else {
            Ok(())
        }
    }

    fn fail(&mut self, e: FileError) -> FileError {
        self.failed = Some(e.clone());
        self.cdn = None;
        e
    }

    fn redirect(&mut self) -> Result<(), FileError> {
        self.redirects = self.redirects.saturating_add(1);
        if self.redirects > MAX_REDIRECTS {
            Err(self.fail(FileError::TooManyRedirects))
        } else {
            Ok(())
        }
    }

    fn part_range(&self, part: u32) -> (u64, u64) {
        let offset = u64::from(part) * u64::from(self.cfg.limit);
        let end = offset.saturating_add(u64::from(self.cfg.limit));
        (offset, self.size.map_or(end, |s| end.min(s)))
    }

    fn connection(&self, part: u32) -> u8 {
        (part % u32::from(self.cfg.transfer.connections)) as u8
    }

    /// The next request, if the window has room and nothing holds the download: writes it into `buf`. A buffer of
    /// [`MAX_LOCATION`] + 64 bytes always suffices.
    pub fn poll_request(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<Request>, FileError> {
        self.live()?;
        self.pace.timeout(now);
        if self.pace.paused(now) || self.wait_reference || self.is_complete() {
            return Ok(None);
        }
        // A reupload first: the CDN parts behind it wait for it.
        if let Some(cdn) = &mut self.cdn
            && let Some((part, token, sent)) = &mut cdn.reupload
        {
            if *sent {
                return Ok(None);
            }
            let call = functions::UploadReuploadCdnFile {
                file_token: &cdn.token,
                request_token: token,
            };
            let len = encode(&call, buf).map_err(|_| FileError::BufferTooSmall { needed: call.tl_len() })?;
            *sent = true;
            let part = *part;
            return Ok(Some(Request {
                tag: Tag::new(Method::ReuploadCdnFile, part).with_gen(self.cdn_gen),
                method: Method::ReuploadCdnFile,
                len,
                dc: self.dc,
                cdn: false,
                connection: 0,
            }));
        }
        let Some(part) = self.parts.peek(self.cfg.transfer.window) else {
            return Ok(None);
        };
        let (offset, end) = self.part_range(part);
        let connection = self.connection(part);
        let horizon = self.hash_horizon(u64::from(self.parts.base) * u64::from(self.cfg.limit));
        if let Some(cdn) = &mut self.cdn {
            if end > horizon {
                // Beyond the hashes the table can hold: wait for the first parts to be done.
                return Ok(None);
            }
            if let Some(missing) = cdn.first_uncovered(offset, end) {
                if cdn.hashes_pending.is_some() {
                    return Ok(None);
                }
                let call = functions::UploadGetCdnFileHashes {
                    file_token: &cdn.token,
                    offset: missing as i64,
                };
                let len = encode(&call, buf).map_err(|_| FileError::BufferTooSmall { needed: call.tl_len() })?;
                cdn.hashes_pending = Some(missing);
                return Ok(Some(Request {
                    tag: Tag::new(Method::GetCdnFileHashes, part).with_gen(self.cdn_gen),
                    method: Method::GetCdnFileHashes,
                    len,
                    dc: self.dc,
                    cdn: false,
                    connection: 0,
                }));
            }
            let call = functions::UploadGetCdnFile {
                file_token: &cdn.token,
                offset: offset as i64,
                limit: self.cfg.limit as i32,
            };
            let len = encode(&call, buf).map_err(|_| FileError::BufferTooSmall { needed: call.tl_len() })?;
            self.parts.sent(part);
            return Ok(Some(Request {
                tag: Tag::new(Method::GetCdnFile, part).with_gen(self.cdn_gen),
                method: Method::GetCdnFile,
                len,
                dc: Some(cdn.dc),
                cdn: true,
                connection,
            }));
        }
        let location = enums::InputFileLocation::decode(&self.location).map_err(|_| FileError::BadLocation)?;
        let cdn_supported = self.cfg.cdn && !self.cdn_off;
        let call = functions::UploadGetFile {
            precise: false,
            cdn_supported,
            location: Obj::new(&location),
            offset: offset as i64,
            limit: self.cfg.limit as i32,
        };
        let len = encode(&call, buf).map_err(|_| FileError::BufferTooSmall { needed: call.tl_len() })?;
        self.parts.sent(part);
        Ok(Some(Request {
            tag: Tag::new(Method::GetFile, part)
                .with_gen(self.loc_gen)
                .with_cdn_supported(cdn_supported),
            method: Method::GetFile,
            len,
            dc: self.dc,
            cdn: false,
            connection,
        }))
    }

    /// A CDN call sent under a redirect no longer in force (dropped, or replaced by a new one): its answer speaks
    /// of another token, key and hash request than the ones now pending.
    fn cdn_stale(&self, tag: Tag) -> bool {
        matches!(
            tag.method(),
            Some(Method::GetCdnFile | Method::GetCdnFileHashes | Method::ReuploadCdnFile)
        ) && (self.cdn.is_none() || tag.generation() != self.cdn_gen)
    }

    fn part_tag(&self, tag: Tag) -> Result<(Method, u32), FileError> {
        let m = tag.method().ok_or(FileError::UnknownTag)?;
        match m {
            Method::GetFile | Method::GetCdnFile if self.parts.in_flight(tag.part()) => Ok((m, tag.part())),
            // Answers to the bookkeeping calls of a redirect dropped or replaced meanwhile are taken and ignored.
            Method::GetCdnFileHashes | Method::ReuploadCdnFile if self.cdn_stale(tag) => Ok((m, tag.part())),
            Method::GetCdnFileHashes if self.cdn.as_ref().is_some_and(|c| c.hashes_pending.is_some()) => {
                Ok((m, tag.part()))
            }
            Method::ReuploadCdnFile
                if self
                    .cdn
                    .as_ref()
                    .is_some_and(|c| matches!(&c.reupload, Some((p, _, true)) if *p == tag.part())) =>
            {
                Ok((m, tag.part()))
            }
            _ => Err(FileError::UnknownTag),
        }
    }

    /// The answer to a request. `body` is mutable because a CDN part is decrypted in place; the bytes handed over
    /// borrow it.
    pub fn handle_result<'b>(
        &mut self,
        now: Instant,
        tag: Tag,
        body: &'b mut [u8],
    ) -> Result<DownloadProgress<'b>, FileError> {
        self.live()?;
        let (method, part) = self.part_tag(tag)?;
        if self.cdn_stale(tag) {
            // Not decrypted with the key now in force, not taken as the answer the new redirect waits for (a stale
            // `getCdnFileHashes` answer for another offset looked like a lying master DC and failed the download).
            if method == Method::GetCdnFile {
                self.parts.retry(part);
                return Ok(DownloadProgress::Resend);
            }
            return Ok(DownloadProgress::Nothing);
        }
        let out = match method {
            Method::GetFile => self.on_file(part, tag.cdn_supported(), body),
            Method::GetCdnFile => self.on_cdn_file(part, body),
            Method::GetCdnFileHashes => self.on_hashes(body).map(|()| DownloadProgress::Nothing),
            _ => self.on_reupload(body).map(|()| DownloadProgress::Nothing),
        };
        let _ = now;
        match out {
            Ok(p) => {
                if matches!(p, DownloadProgress::Data { .. }) {
                    self.pace.retries = 0;
                }
                Ok(p)
            }
            Err(e) if e.is_host_refusal() => Err(e),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Accepts `n` bytes for `part` from whichever source: checks them against the size, finds the end of file,
    /// marks the part done. Returns whether there are bytes to hand over.
    fn accept(&mut self, part: u32, n: usize) -> Result<bool, FileError> {
        let (offset, end) = self.part_range(part);
        let limit = self.cfg.limit as usize;
        if n > limit {
            return Err(FileError::Inconsistent);
        }
        let n64 = n as u64;
        if let Some(size) = self.size {
            if offset >= size {
                // Asked before the end was found: must be empty.
                if n != 0 {
                    return Err(FileError::Inconsistent);
                }
                self.parts.forget(part);
                return Ok(false);
            }
            if offset + n64 != end {
                return Err(FileError::Inconsistent);
            }
        } else if n == limit {
            if self.max_size.is_some_and(|m| end > m) {
                return Err(FileError::Inconsistent);
            }
            // The file is at least `end` long: past the bound, a DC (or a CDN) streaming full parts without end.
            if end > self.cfg.max_size {
                return Err(FileError::TooBig);
            }
            self.min_size = self.min_size.max(end);
        } else if n == 0 {
            // The file ends at or before this offset; which parts below it are short is yet to be seen.
            if offset < self.min_size {
                return Err(FileError::Inconsistent);
            }
            self.max_size = Some(self.max_size.map_or(offset, |m| m.min(offset)));
            let total = self.parts.total.map_or(part, |t| t.min(part));
            self.parts.set_total(total);
            self.parts.forget(part);
            if self.parts.complete() {
                self.size = Some(u64::from(total) * u64::from(self.cfg.limit));
            }
            return Ok(false);
        } else {
            // A short part: the exact end of the file.
            let size = offset + n64;
            if size < self.min_size || self.max_size.is_some_and(|m| size > m) {
                return Err(FileError::Inconsistent);
            }
            if size > self.cfg.max_size {
                return Err(FileError::TooBig);
            }
            self.size = Some(size);
            self.parts.set_total(part.saturating_add(1));
        }
        self.finish_part(part);
        if self.size.is_none() && self.parts.complete() {
            // Every part below the first empty one came back full.
            self.size = self.parts.total.map(|t| u64::from(t) * u64::from(self.cfg.limit));
        }
        Ok(true)
    }

    fn finish_part(&mut self, part: u32) {
        self.parts.finish(part);
        let base_offset = u64::from(self.parts.base) * u64::from(self.cfg.limit);
        if let Some(cdn) = &mut self.cdn {
            cdn.forget_below(base_offset);
        }
    }

    /// The answer to `upload.getFile` for `part`, sent with `cdn_supported` set or not.
    fn on_file<'b>(
        &mut self,
        part: u32,
        cdn_supported: bool,
        body: &'b mut [u8],
    ) -> Result<DownloadProgress<'b>, FileError> {
        let file = enums::UploadFile::decode(body)?;
        match file {
            enums::UploadFile::UploadFile(f) => {
                let n = f.bytes.len();
                let (offset, _) = self.part_range(part);
                if !self.accept(part, n)? {
                    return Ok(DownloadProgress::Nothing);
                }
                let start = body.len().saturating_sub(n + tl_bytes_layout(n).1);
                let bytes = body
                    .get(start..start + n)
                    .ok_or(FileError::Malformed(LayoutError::Truncated))?;
                Ok(DownloadProgress::Data { offset, bytes })
            }
            enums::UploadFile::UploadFileCdnRedirect(r) => {
                if !cdn_supported {
                    // Not asked for: a DC must not redirect a request without cdn_supported (never set without
                    // `DownloadConfig::cdn`, nor after the CDN was given up). Asking the part again would bring the
                    // same redirect: one round trip per try, without end.
                    return Err(FileError::Inconsistent);
                }
                if self.cdn_off || self.cdn.is_some() {
                    // Asked (with cdn_supported) before the CDN was given up, or another part already brought the
                    // redirect in force: the part is asked again, from the master DC without cdn_supported (each
                    // part at most once this way), or from the CDN.
                    self.parts.retry(part);
                    return Ok(DownloadProgress::Resend);
                }
                let dc = DcId::new(i64::from(r.dc_id)).ok_or(FileError::Inconsistent)?;
                let token = HVec::from_slice(r.file_token).map_err(|_| FileError::Inconsistent)?;
                let key: [u8; 32] = r.encryption_key.try_into().map_err(|_| FileError::Inconsistent)?;
                let iv: [u8; 16] = r.encryption_iv.try_into().map_err(|_| FileError::Inconsistent)?;
                self.redirect()?;
                let base = u64::from(self.parts.base) * u64::from(self.cfg.limit);
                let mut cdn = Cdn {
                    dc,
                    token,
                    key,
                    iv,
                    hashes: HVec::new(),
                    hashes_pending: None,
                    hash_end: None,
                    reupload: None,
                };
                cdn.add_hashes(r.file_hashes.iter(), base, self.hash_horizon(base))?;
                self.cdn = Some(cdn);
                self.cdn_gen = self.cdn_gen.wrapping_add(1);
                self.parts.retry(part);
                Ok(DownloadProgress::CdnRedirect { dc })
            }
        }
    }

    fn hash_horizon(&self, base: u64) -> u64 {
        base.saturating_add(u64::from(CDN_HASH_RANGE) * MAX_CDN_HASHES as u64)
    }

    fn on_cdn_file<'b>(&mut self, part: u32, body: &'b mut [u8]) -> Result<DownloadProgress<'b>, FileError> {
        let (offset, _) = self.part_range(part);
        let n = match enums::UploadCdnFile::decode(body)? {
            enums::UploadCdnFile::UploadCdnFileReuploadNeeded(r) => {
                let Some(cdn) = &mut self.cdn else {
                    // The redirect was dropped meanwhile: ask the master DC again.
                    self.parts.retry(part);
                    return Ok(DownloadProgress::Resend);
                };
                let token = HVec::from_slice(r.request_token).map_err(|_| FileError::Inconsistent)?;
                self.parts.retry(part);
                if cdn.reupload.is_none() {
                    cdn.reupload = Some((part, token, false));
                    self.redirect()?;
                }
                return Ok(DownloadProgress::Resend);
            }
            enums::UploadCdnFile::UploadCdnFile(f) => f.bytes.len(),
        };
        let Some(cdn) = &self.cdn else {
            self.parts.retry(part);
            return Ok(DownloadProgress::Resend);
        };
        let start = body.len().saturating_sub(n + tl_bytes_layout(n).1);
        let bytes = body
            .get_mut(start..start + n)
            .ok_or(FileError::Malformed(LayoutError::Truncated))?;
        let mut iv = cdn.iv;
        let ctr = u32::try_from(offset / 16).map_err(|_| FileError::TooBig)?;
        if let Some(tail) = iv.get_mut(12..16) {
            tail.copy_from_slice(&ctr.to_be_bytes());
        }
        AesCtr::new(&cdn.key, &iv).apply(bytes);
        iv.zeroize();
        let (_, end) = self.part_range(part);
        let expect_full = self.size.is_some_and(|s| offset < s);
        let sane = n <= self.cfg.limit as usize
            && (!expect_full || offset + n as u64 == end)
            && cdn.vouched_len(offset, end) == Some(n as u64);
        if !sane || !cdn.verify(offset, bytes) {
            // Never handed over. The CDN (or whoever sits in front of it) sent bytes the master DC did not vouch
            // for: leave the CDN and take this part and the rest from the master DC.
            bytes.zeroize();
            self.cdn = None;
            self.cdn_off = true;
            self.parts.retry(part);
            return Ok(DownloadProgress::CdnRefused { offset });
        }
        if !self.accept(part, n)? {
            return Ok(DownloadProgress::Nothing);
        }
        Ok(DownloadProgress::Data { offset, bytes: &*bytes })
    }

    fn on_hashes(&mut self, body: &[u8]) -> Result<(), FileError> {
        let hashes = functions::UploadGetCdnFileHashes::decode_result(body)?;
        let base = u64::from(self.parts.base) * u64::from(self.cfg.limit);
        let horizon = self.hash_horizon(base);
        let Some(cdn) = &mut self.cdn else { return Ok(()) };
        let asked = cdn.hashes_pending.take();
        cdn.add_hashes(hashes.iter(), base, horizon)?;
        if let Some(at) = asked.filter(|a| *a < horizon)
            && !cdn.hashes.iter().any(|h| h.offset == at)
        {
            if hashes.iter().next().is_none() {
                // No hash at that offset: the file ends there.
                cdn.hash_end = Some(cdn.hash_end.map_or(at, |e| e.min(at)));
            } else {
                return Err(FileError::Inconsistent);
            }
        }
        Ok(())
    }

    fn on_reupload(&mut self, body: &[u8]) -> Result<(), FileError> {
        let hashes = functions::UploadReuploadCdnFile::decode_result(body)?;
        let base = u64::from(self.parts.base) * u64::from(self.cfg.limit);
        let horizon = self.hash_horizon(base);
        if let Some(cdn) = &mut self.cdn {
            cdn.reupload = None;
            cdn.add_hashes(hashes.iter(), base, horizon)?;
        }
        Ok(())
    }

    /// An `rpc_error` for a request: waits and server errors are retried, `FILE_MIGRATE_X` moves the download,
    /// `FILE_REFERENCE_*` waits for a new location, `FILE_TOKEN_INVALID` leaves the CDN; anything else fails it.
    pub fn handle_rpc_error<'b>(
        &mut self,
        now: Instant,
        tag: Tag,
        code: i32,
        message: &[u8],
    ) -> Result<DownloadProgress<'b>, FileError> {
        self.live()?;
        let (method, part) = self.part_tag(tag)?;
        if self.cdn_stale(tag) {
            // A CDN call of a redirect dropped or replaced meanwhile: whatever it says, the part is asked again under
            // the one in force; what the new redirect has pending is left alone.
            if method == Method::GetCdnFile {
                self.parts.retry(part);
            }
            return Ok(DownloadProgress::Resend);
        }
        self.unsend(method, part);
        let Ok(err) = RpcError::classify(code, message) else {
            return Err(self.fail(FileError::refused(code, message)));
        };
        if let ErrorKind::Migrate {
            reason: MigrateReason::File,
            dc,
        } = err.kind
            && method == Method::GetFile
        {
            if self.dc == Some(dc) {
                // Another request sent before the move brought the same news: it is sent again there.
                return Ok(DownloadProgress::Resend);
            }
            self.redirect()?;
            self.dc = Some(dc);
            return Ok(DownloadProgress::Migrate { dc });
        }
        match self.pace.on_error(&self.cfg.transfer, now, &err) {
            Some(Ok(d)) => return Ok(DownloadProgress::Delayed(d)),
            Some(Err(())) => return Err(self.fail(FileError::refused(code, message))),
            None => {}
        }
        if code == 400 && message.starts_with(b"FILE_REFERENCE_") && method == Method::GetFile {
            if tag.generation() != self.loc_gen {
                // Sent with a location already replaced: sent again with the new one.
                return Ok(DownloadProgress::Resend);
            }
            let first = !self.wait_reference;
            self.wait_reference = true;
            return Ok(if first {
                DownloadProgress::ReferenceExpired
            } else {
                DownloadProgress::Nothing
            });
        }
        if code == 400 && message == b"FILE_TOKEN_INVALID" && self.cdn.is_some() {
            // The master DC no longer honours the token: continue from it (it may redirect again).
            self.cdn = None;
            self.redirect()?;
            return Ok(DownloadProgress::Resend);
        }
        Err(self.fail(FileError::refused(code, message)))
    }

    /// Returns a request to the queue (its answer did not deliver data).
    fn unsend(&mut self, method: Method, part: u32) {
        match method {
            Method::GetFile | Method::GetCdnFile => self.parts.retry(part),
            Method::GetCdnFileHashes => {
                if let Some(c) = &mut self.cdn {
                    c.hashes_pending = None;
                }
            }
            _ => {
                if let Some(c) = &mut self.cdn
                    && let Some((_, _, sent)) = &mut c.reupload
                {
                    *sent = false;
                }
            }
        }
    }

    /// The query ended without an answer (the connection went away): it is sent again, counted as a retry.
    pub fn handle_failed<'b>(&mut self, now: Instant, tag: Tag) -> Result<DownloadProgress<'b>, FileError> {
        self.live()?;
        let (method, part) = self.part_tag(tag)?;
        if method == Method::GetCdnFile || !self.cdn_stale(tag) {
            self.unsend(method, part);
        }
        if self.pace.retries >= self.cfg.transfer.max_retries {
            return Err(self.fail(FileError::refused(0, b"LOST")));
        }
        self.pace.retries = self.pace.retries.saturating_add(1);
        let _ = now;
        Ok(DownloadProgress::Resend)
    }

    /// When the timer is due next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed.is_some() { None } else { self.pace.until }
    }

    /// Runs the timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.pace.timeout(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_window_advances_and_bounds() {
        let mut p = Parts {
            total: Some(100),
            ..Parts::default()
        };
        for i in 0..64 {
            assert_eq!(p.peek(64), Some(i));
            p.sent(i);
        }
        assert_eq!(p.peek(64), None, "window full");
        p.finish(1);
        assert_eq!(p.base, 0);
        assert_eq!(p.peek(64), None, "part 64 is beyond base + 64");
        p.finish(0);
        assert_eq!(p.base, 2);
        assert_eq!(p.peek(64), Some(64));
        p.retry(5);
        assert_eq!(p.peek(64), Some(5));
    }

    #[test]
    fn tl_bytes_header_matches_writer() {
        for n in [0usize, 1, 253, 254, 255, 4096] {
            let data = [7u8; 4096];
            let mut a = [0u8; 5000];
            let la = encode(
                &types::UploadCdnFile {
                    bytes: data.get(..n).unwrap_or(&[]),
                },
                &mut a,
            )
            .unwrap_or(0);
            let (h, p) = tl_bytes_layout(n);
            assert_eq!(la, 4 + h + n + p);
        }
    }
}
