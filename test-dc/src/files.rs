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

use std::cell::Cell;
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
    /// The end offset of each part served (parts 0..n in order), or `None` while a big file lacks a part: remade
    /// from the part sizes on each save (at most [`MAX_FILE_PARTS`] additions), so a re-saved part never costs a
    /// copy of the file.
    ends: Option<Vec<usize>>,
}

impl Stored {
    /// The parts served: all announced ones for a big file (once all are there), the contiguous ones from 0 for a
    /// small one.
    fn reindex(&mut self) {
        let n = match self.total {
            Some(t) => {
                let t = usize::try_from(t).unwrap_or(0);
                if self.parts.len() != t {
                    self.ends = None;
                    return;
                }
                t
            }
            None => self
                .parts
                .keys()
                .enumerate()
                .take_while(|(i, k)| usize::try_from(**k).ok() == Some(*i))
                .count(),
        };
        let mut ends = Vec::with_capacity(n);
        let mut at = 0usize;
        // Keys are 0..MAX_FILE_PARTS and, for a big file, below its total: n keys in order are exactly 0..n.
        for p in self.parts.values().take(n) {
            at += p.len();
            ends.push(at);
        }
        self.ends = Some(ends);
    }

    fn bytes<'a>(&'a self, read: &'a Cell<u64>) -> Option<FileBytes<'a>> {
        Some(FileBytes {
            parts: &self.parts,
            ends: self.ends.as_deref()?,
            read,
        })
    }
}

/// An uploaded file's bytes as `upload.getFile` serves them: a view over its stored parts, read by range (the file
/// is never assembled to answer a request).
pub struct FileBytes<'a> {
    parts: &'a BTreeMap<i32, Vec<u8>>,
    ends: &'a [usize],
    /// The store's count of bytes read out of parts.
    read: &'a Cell<u64>,
}

impl FileBytes<'_> {
    /// The file's length.
    pub fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands the bytes of `start..end` (clamped to the file) to `f`, one part's slice at a time; returns how many.
    pub fn read_with(&self, start: usize, end: usize, mut f: impl FnMut(&[u8])) -> usize {
        let end = end.min(self.len());
        let mut at = start;
        // The first part that ends past `start`.
        let first = self.ends.partition_point(|e| *e <= start);
        let mut part_start = first
            .checked_sub(1)
            .and_then(|i| self.ends.get(i))
            .copied()
            .unwrap_or(0);
        for (i, part_end) in self.ends.iter().enumerate().skip(first) {
            if at >= end {
                break;
            }
            let data = i32::try_from(i).ok().and_then(|k| self.parts.get(&k));
            let from = at - part_start;
            let to = end.min(*part_end) - part_start;
            if let Some(slice) = data.and_then(|d| d.get(from..to)) {
                self.read.set(self.read.get() + slice.len() as u64);
                f(slice);
            }
            at = end.min(*part_end);
            part_start = *part_end;
        }
        at.saturating_sub(start)
    }

    /// The bytes of `start..end`, clamped to the file.
    pub fn range(&self, start: usize, end: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(end.min(self.len()).saturating_sub(start));
        self.read_with(start, end, |b| out.extend_from_slice(b));
        out
    }
}

/// The cluster's uploaded files.
pub struct FileStore {
    cap: usize,
    used: usize,
    files: HashMap<i64, Stored>,
    /// Bytes read out of stored parts so far: the work of serving (a test checks that it follows the requests, not
    /// the files' sizes).
    read: Cell<u64>,
    /// The cluster's CDN DC, if it has one.
    cdn: Option<CdnState>,
}

impl Default for FileStore {
    fn default() -> Self {
        FileStore {
            cap: DEFAULT_CAP,
            used: 0,
            files: HashMap::new(),
            read: Cell::new(0),
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
    fn with_cdn(&mut self, file_id: i64) -> Option<(FileBytes<'_>, &mut CdnState)> {
        let data = self.files.get(&file_id)?.bytes(&self.read)?;
        Some((data, self.cdn.as_mut()?))
    }

    /// Forgets every uploaded file and gives the bytes back to the cap (a harness that uploads several large files
    /// in turn: the throughput measurement of `tests/client_files.rs`).
    pub fn clear(&mut self) {
        self.files.clear();
        self.used = 0;
    }

    /// The bytes of an uploaded file, as `upload.getFile` serves them (a copy of the whole file: for tests).
    pub fn file(&self, file_id: i64) -> Option<Vec<u8>> {
        let b = self.bytes(file_id)?;
        Some(b.range(0, b.len()))
    }

    /// A view of an uploaded file's bytes, read by range.
    pub fn bytes(&self, file_id: i64) -> Option<FileBytes<'_>> {
        self.files.get(&file_id)?.bytes(&self.read)
    }

    /// Bytes read out of stored parts so far, by requests and by [`FileStore::file`].
    pub fn bytes_read(&self) -> u64 {
        self.read.get()
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
            ends: None,
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
        f.reindex();
        self.used = used;
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
            Ok(file_id) => match store.bytes(file_id) {
                Some(data) => Reply::Result(crate::cdn::hashes(&data, c.offset)),
                None => Reply::Error(400, "FILE_TOKEN_INVALID"),
            },
            Err(e) => e,
        });
    }
    if id == functions::UploadReuploadCdnFile::ID {
        let c: functions::UploadReuploadCdnFile<'_> = view(call)?;
        return Some(match master(store, dc, c.file_token) {
            Ok(file_id) => match store.with_cdn(file_id) {
                Some((data, cdn)) => cdn.reupload(file_id, &data, c.request_token),
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
        Some((data, cdn)) => cdn.get_cdn_file(file_id, &data, c.offset, c.limit),
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
            Some((data, cdn)) => cdn.redirect(l.id, &data, off),
            None => Reply::Error(400, "FILE_PARTS_INVALID"),
        };
    }
    let Some(data) = store.bytes(l.id) else {
        return Reply::Error(400, "FILE_PARTS_INVALID");
    };
    let start = usize::try_from(off).unwrap_or(usize::MAX);
    let bytes = data.range(start, start.saturating_add(usize::try_from(lim).unwrap_or(0)));
    let answer = types::UploadFile {
        type_: Obj::new(&enums::StorageFileType::StorageFilePartial(
            types::StorageFilePartial {},
        )),
        mtime: 0,
        bytes: &bytes,
    };
    let mut out = vec![0u8; answer.tl_len()];
    match encode(&answer, &mut out) {
        Ok(_) => Reply::Result(out),
        Err(_) => Reply::Error(500, "INTERNAL"),
    }
}
