//! Files on the test DC: `upload.saveFilePart` and `upload.saveBigFilePart` store the bytes, `upload.getFile`
//! serves them back.
//!
//! Data comes from [`crate::dc`]'s dispatch: a call (method id first, wrappers removed) and the DC it reached.
//! The store is the cluster's (one per [`crate::dc::start_cluster`]), so a file uploaded on one DC and asked on
//! another gets `303 FILE_MIGRATE_X` naming the DC it was uploaded to. `saveFilePart` also goes on to
//! [`crate::api::execute`] (which records part sizes for secret-chat files), so [`execute`] stores its bytes and
//! returns `None` for it.
//!
//! **Naming an uploaded file.** There is no `messages.sendMedia` here: a client downloads an upload by naming it
//! `inputDocumentFileLocation { id: <the upload's file_id>, access_hash: any, file_reference: any, thumb_size: "" }`
//! (any other location is `400 LOCATION_INVALID`). The file is parts 0..n in order; a big file is served once all
//! its announced parts are there, a small one serves its contiguous parts from 0.
//!
//! **Checks** (the spec's, <https://core.telegram.org/api/files>): part numbers 0..[`MAX_FILE_PARTS`] and parts up
//! to 512 KiB (`FILE_PART_INVALID`, `FILE_PART_TOO_BIG`), a big file's part count fixed by its first part
//! (`FILE_PART_COUNT_INVALID`... reported as `FILE_PARTS_INVALID`); downloads with `limit` a positive multiple of
//! 4 KiB dividing 1 MiB (`LIMIT_INVALID`), `offset` a non-negative multiple of 4 KiB whose request does not cross
//! a 1 MiB boundary (`OFFSET_INVALID`). `precise` is ignored. With a CDN ([`FileStore::set_cdn`], [`crate::cdn`]),
//! `cdn_supported` on a file marked for it gets `upload.fileCdnRedirect`, and the CDN calls are answered here too.
//!
//! **Bounds.** The bytes stored, all files together, are capped ([`FileStore::set_cap`], [`DEFAULT_CAP`]); a part
//! that would pass the cap is refused with `500 FILE_STORE_FULL` (nothing is evicted: a test that fills it says
//! so), and [`MAX_FILES`] files at most.

use std::collections::{BTreeMap, HashMap};

use mtproto_sansio::tl::api::{Bare, Obj, enums, functions, types};
use mtproto_sansio::tl::layout::Root;
use mtproto_sansio::tl::tables::api::API;
use mtproto_sansio::tl::typed::Cursor;
use mtproto_sansio::tl::{TlWrite, encode};

use crate::api::Reply;
use crate::cdn::CdnState;

/// Bytes stored by default, all files together.
pub const DEFAULT_CAP: usize = 64 << 20;
/// Files kept at most.
pub const MAX_FILES: usize = 4096;
/// Parts of one file (Telegram's limit for big files).
pub const MAX_FILE_PARTS: i32 = 4000;
/// The largest part.
pub const MAX_PART: usize = 512 * 1024;

struct Stored {
    /// The DC it was uploaded to.
    dc: i32,
    parts: BTreeMap<i32, Vec<u8>>,
    /// A big file's announced part count.
    total: Option<i32>,
}

impl Stored {
    /// The file's bytes: the parts 0..n in order (all announced ones for a big file).
    fn assemble(&self) -> Option<Vec<u8>> {
        let n = match self.total {
            Some(t) => usize::try_from(t).ok()?,
            None => self
                .parts
                .keys()
                .enumerate()
                .take_while(|(i, k)| usize::try_from(**k).ok() == Some(*i))
                .count(),
        };
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(self.parts.get(&i32::try_from(i).ok()?)?);
        }
        Some(out)
    }
}

/// The cluster's uploaded files.
pub struct FileStore {
    cap: usize,
    used: usize,
    files: HashMap<i64, Stored>,
    /// Assembled files, by file id (rebuilt when a part changes).
    cache: HashMap<i64, Vec<u8>>,
    /// The cluster's CDN DC, if it has one.
    cdn: Option<CdnState>,
}

impl Default for FileStore {
    fn default() -> Self {
        FileStore {
            cap: DEFAULT_CAP,
            used: 0,
            files: HashMap::new(),
            cache: HashMap::new(),
            cdn: None,
        }
    }
}

impl FileStore {
    /// Sets the cap on bytes stored (parts already stored stay).
    pub fn set_cap(&mut self, bytes: usize) {
        self.cap = bytes;
    }

    /// Bytes stored now.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Gives the cluster a CDN DC (`help.getCdnConfig` lists it from now on; files marked with
    /// [`CdnState::mark`] are redirected to it).
    pub fn set_cdn(&mut self, cdn: CdnState) {
        self.cdn = Some(cdn);
    }

    /// The CDN, to mark files for it and to make it lose or corrupt parts.
    pub fn cdn_mut(&mut self) -> Option<&mut CdnState> {
        self.cdn.as_mut()
    }

    /// An uploaded file's bytes beside the CDN (disjoint borrows of the store).
    fn with_cdn(&mut self, file_id: i64) -> Option<(&[u8], &mut CdnState)> {
        self.file(file_id)?;
        let data = self.cache.get(&file_id)?;
        Some((data.as_slice(), self.cdn.as_mut()?))
    }

    /// Forgets every uploaded file and gives the bytes back to the cap (a harness that uploads several large files
    /// in turn: the throughput measurement of `tests/client_files.rs`).
    pub fn clear(&mut self) {
        self.files.clear();
        self.cache.clear();
        self.used = 0;
    }

    /// The bytes of an uploaded file, as `upload.getFile` serves them.
    pub fn file(&mut self, file_id: i64) -> Option<&[u8]> {
        if !self.cache.contains_key(&file_id) {
            let f = self.files.get(&file_id)?.assemble()?;
            self.cache.insert(file_id, f);
        }
        self.cache.get(&file_id).map(Vec::as_slice)
    }

    fn save(
        &mut self,
        dc: i32,
        file_id: i64,
        part: i32,
        total: Option<i32>,
        bytes: &[u8],
    ) -> Result<(), (i32, &'static str)> {
        if !(0..MAX_FILE_PARTS).contains(&part) {
            return Err((400, "FILE_PART_INVALID"));
        }
        if bytes.len() > MAX_PART {
            return Err((400, "FILE_PART_TOO_BIG"));
        }
        if total.is_some_and(|t| !(1..=MAX_FILE_PARTS).contains(&t) || part >= t) {
            return Err((400, "FILE_PARTS_INVALID"));
        }
        if !self.files.contains_key(&file_id) && self.files.len() >= MAX_FILES {
            return Err((500, "FILE_STORE_FULL"));
        }
        let f = self.files.entry(file_id).or_insert(Stored {
            dc,
            parts: BTreeMap::new(),
            total,
        });
        if f.total != total {
            return Err((400, "FILE_PARTS_INVALID"));
        }
        let old = f.parts.get(&part).map_or(0, Vec::len);
        let used = self.used - old + bytes.len();
        if used > self.cap {
            return Err((500, "FILE_STORE_FULL"));
        }
        f.parts.insert(part, bytes.to_vec());
        self.used = used;
        self.cache.remove(&file_id);
        Ok(())
    }
}

fn file_migrate(dc: i32) -> &'static str {
    const NAMES: [&str; 10] = [
        "FILE_MIGRATE_0",
        "FILE_MIGRATE_1",
        "FILE_MIGRATE_2",
        "FILE_MIGRATE_3",
        "FILE_MIGRATE_4",
        "FILE_MIGRATE_5",
        "FILE_MIGRATE_6",
        "FILE_MIGRATE_7",
        "FILE_MIGRATE_8",
        "FILE_MIGRATE_9",
    ];
    usize::try_from(dc)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("FILE_MIGRATE_0")
}

fn view<'a, F: Bare<'a>>(call: &'a [u8]) -> Option<F> {
    let args = call.get(4..)?;
    Some(F::read_bare(&mut Cursor::new(args, &API)))
}

/// Executes `call` (method id first) if it is one of the file calls: the answer; `None` for other calls, and for
/// `saveFilePart` after storing its bytes (it goes on to [`crate::api::execute`]) unless it was refused.
pub fn execute(store: &mut FileStore, dc: i32, call: &[u8]) -> Option<Reply> {
    let id = u32::from_le_bytes(call.get(..4)?.try_into().ok()?);
    let known = [
        functions::UploadSaveFilePart::ID,
        functions::UploadSaveBigFilePart::ID,
        functions::UploadGetFile::ID,
        functions::UploadGetCdnFile::ID,
        functions::UploadGetCdnFileHashes::ID,
        functions::UploadReuploadCdnFile::ID,
        functions::HelpGetCdnConfig::ID,
    ];
    if !known.contains(&id) {
        return None;
    }
    if API.validate(call, Root::Function) != Ok(call.len()) {
        return Some(Reply::Error(400, "INPUT_REQUEST_INVALID"));
    }
    if id == functions::UploadSaveFilePart::ID {
        let c: functions::UploadSaveFilePart<'_> = view(call)?;
        return store
            .save(dc, c.file_id, c.file_part, None, c.bytes)
            .err()
            .map(|(code, m)| Reply::Error(code, m));
    }
    if id == functions::UploadSaveBigFilePart::ID {
        let c: functions::UploadSaveBigFilePart<'_> = view(call)?;
        return Some(
            match store.save(dc, c.file_id, c.file_part, Some(c.file_total_parts), c.bytes) {
                Ok(()) => Reply::Result(mtproto_sansio::tl::BOOL_TRUE.to_le_bytes().to_vec()),
                Err((code, m)) => Reply::Error(code, m),
            },
        );
    }
    if id == functions::HelpGetCdnConfig::ID {
        return Some(match &store.cdn {
            Some(cdn) => cdn.config(),
            // No CDN: an empty list.
            None => Reply::Result(
                [types::CdnConfig::ID, 0x1cb5_c415, 0]
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect(),
            ),
        });
    }
    if id == functions::UploadGetCdnFile::ID {
        let c: functions::UploadGetCdnFile<'_> = view(call)?;
        return Some(get_cdn_file(store, dc, &c));
    }
    if id == functions::UploadGetCdnFileHashes::ID {
        let c: functions::UploadGetCdnFileHashes<'_> = view(call)?;
        return Some(match master(store, dc, c.file_token) {
            Ok(file_id) => match store.file(file_id) {
                Some(data) => Reply::Result(crate::cdn::hashes(data, c.offset)),
                None => Reply::Error(400, "FILE_TOKEN_INVALID"),
            },
            Err(e) => e,
        });
    }
    if id == functions::UploadReuploadCdnFile::ID {
        let c: functions::UploadReuploadCdnFile<'_> = view(call)?;
        return Some(match master(store, dc, c.file_token) {
            Ok(file_id) => match store.with_cdn(file_id) {
                Some((data, cdn)) => cdn.reupload(file_id, data, c.request_token),
                None => Reply::Error(400, "FILE_TOKEN_INVALID"),
            },
            Err(e) => e,
        });
    }
    let c: functions::UploadGetFile<'_> = view(call)?;
    Some(get_file(store, dc, &c))
}

/// The file a CDN token names, for a call its master DC answers (`getCdnFileHashes`, `reuploadCdnFile`).
fn master(store: &FileStore, dc: i32, token: &[u8]) -> Result<i64, Reply> {
    let Some(file_id) = store.cdn.as_ref().and_then(|c| c.file_of(token)) else {
        return Err(Reply::Error(400, "FILE_TOKEN_INVALID"));
    };
    match store.files.get(&file_id) {
        Some(f) if f.dc != dc => Err(Reply::Error(303, file_migrate(f.dc))),
        Some(_) => Ok(file_id),
        None => Err(Reply::Error(400, "FILE_TOKEN_INVALID")),
    }
}

/// The spec's `limit` and `offset` rules, for `getFile` and `getCdnFile` alike.
fn check_range(off: i64, lim: i32) -> Result<(), Reply> {
    if lim <= 0 || lim % 4096 != 0 || (1 << 20) % lim != 0 {
        return Err(Reply::Error(400, "LIMIT_INVALID"));
    }
    // The last byte asked, checked: the client picks `off`, and near i64::MAX the sum overflows (a panic in debug).
    let last = off.checked_add(i64::from(lim) - 1);
    if off < 0 || off % 4096 != 0 || last.is_none_or(|l| off / (1 << 20) != l / (1 << 20)) {
        return Err(Reply::Error(400, "OFFSET_INVALID"));
    }
    Ok(())
}

fn get_cdn_file(store: &mut FileStore, dc: i32, c: &functions::UploadGetCdnFile<'_>) -> Reply {
    let Some(cdn) = store.cdn.as_ref() else {
        return Reply::Error(400, "CDN_METHOD_INVALID");
    };
    if cdn.dc() != dc {
        return Reply::Error(400, "CDN_METHOD_INVALID");
    }
    if let Err(e) = check_range(c.offset, c.limit) {
        return e;
    }
    let Some(file_id) = cdn.file_of(c.file_token) else {
        return Reply::Error(400, "FILE_TOKEN_INVALID");
    };
    match store.with_cdn(file_id) {
        Some((data, cdn)) => cdn.get_cdn_file(file_id, data, c.offset, c.limit),
        None => Reply::Error(400, "FILE_TOKEN_INVALID"),
    }
}

fn get_file(store: &mut FileStore, dc: i32, c: &functions::UploadGetFile<'_>) -> Reply {
    let (off, lim) = (c.offset, c.limit);
    if let Err(e) = check_range(off, lim) {
        return e;
    }
    let Some(enums::InputFileLocation::InputDocumentFileLocation(l)) = c.location.get() else {
        return Reply::Error(400, "LOCATION_INVALID");
    };
    match store.files.get(&l.id) {
        None => return Reply::Error(400, "FILE_ID_INVALID"),
        Some(f) if f.dc != dc => return Reply::Error(303, file_migrate(f.dc)),
        Some(_) => {}
    }
    if c.cdn_supported && store.cdn.as_ref().is_some_and(|cdn| cdn.serves(l.id)) {
        return match store.with_cdn(l.id) {
            Some((data, cdn)) => cdn.redirect(l.id, data, off),
            None => Reply::Error(400, "FILE_PARTS_INVALID"),
        };
    }
    let Some(data) = store.file(l.id) else {
        return Reply::Error(400, "FILE_PARTS_INVALID");
    };
    let start = usize::try_from(off).unwrap_or(usize::MAX).min(data.len());
    let end = start.saturating_add(usize::try_from(lim).unwrap_or(0)).min(data.len());
    let bytes = data.get(start..end).unwrap_or(&[]);
    let answer = types::UploadFile {
        type_: Obj::new(&enums::StorageFileType::StorageFilePartial(
            types::StorageFilePartial {},
        )),
        mtime: 0,
        bytes,
    };
    let mut out = vec![0u8; answer.tl_len()];
    match encode(&answer, &mut out) {
        Ok(_) => Reply::Result(out),
        Err(_) => Reply::Error(500, "INTERNAL"),
    }
}
