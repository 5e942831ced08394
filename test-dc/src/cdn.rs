//! A CDN DC for test_dc's files: one DC of a cluster serves, with its own RSA key, the files the cluster marked
//! for the CDN; the master DC (the one a file was uploaded to) redirects `upload.getFile` there.
//!
//! Data comes from [`crate::files::execute`] (the cluster's file store holds this state): a call, the DC it reached,
//! and the file's bytes from the store. What goes out is the answer. The calls (<https://core.telegram.org/cdn>):
//! - `help.getCdnConfig` (any DC): the CDN DC's id and its RSA public key (PKCS#1 PEM), which a client makes its
//!   CDN auth key with;
//! - `upload.getFile` with `cdn_supported` for a file marked CDN, on its master DC: `upload.fileCdnRedirect` with a
//!   file token, an AES-256-CTR key and IV of the file's own, and the SHA-256 of the first 128 KiB ranges from the
//!   offset asked;
//! - `upload.getCdnFile` on the CDN DC: the range encrypted with AES-256-CTR (the IV's last four bytes replaced by
//!   the big-endian `offset / 16`), or `upload.cdnFileReuploadNeeded` when the CDN lacks the 1 MiB block
//!   ([`CdnState::evict`]);
//! - `upload.getCdnFileHashes` and `upload.reuploadCdnFile` on the master DC: SHA-256 per 128 KiB range (the latter
//!   after putting the block back on the CDN).
//!
//! A test hook makes the CDN hostile ([`CdnState::tamper`]: one byte of the ciphertext at an offset flipped), so a
//! client's hash check is tested end to end. Not modelled: the CDN DC refusing non-CDN methods, token expiry
//! (`FILE_TOKEN_INVALID` is answered only for a token never issued), CDN DCs with ids above 9 (test_dc's DC ids are
//! 1..=9).
//!
//! The PEM writer is proven by `tests/client_files.rs`, which reads the key back from `help.getCdnConfig` with the
//! crate's `parse_public_pem` and makes the CDN auth key with it.
//!
//! **Bounds.** Files marked at most [`MAX_CDN_FILES`]; hashes per answer at most [`HASHES_PER_ANSWER`]; tampered
//! offsets at most [`MAX_TAMPERED`].

use std::collections::{BTreeSet, HashMap};

use mtproto_sansio::crypto::aes::AesCtr;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::tl::api::{RemoteCall, functions, types};
use mtproto_sansio::tl::{TlWrite, encode};
use rand::RngExt;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::api::Reply;
use crate::files::FileBytes;

/// The range one `fileHash` covers.
pub const HASH_RANGE: usize = 128 * 1024;
/// Hashes in one answer (Telegram's answers carry a few; a client asks again from where they end).
pub const HASHES_PER_ANSWER: usize = 8;
/// The unit the CDN holds or lacks (what one reupload puts back).
pub const BLOCK: i64 = 1 << 20;
/// Files served through the CDN at once.
pub const MAX_CDN_FILES: usize = 1024;
/// Offsets the CDN corrupts at once.
pub const MAX_TAMPERED: usize = 64;
/// `vector` constructor.
const VECTOR: u32 = 0x1cb5_c415;

struct CdnFile {
    token: [u8; 16],
    key: [u8; 32],
    iv: [u8; 16],
    /// 1 MiB blocks (by index) the CDN does not hold: their first request gets `cdnFileReuploadNeeded`.
    missing: BTreeSet<i64>,
}

impl Drop for CdnFile {
    fn drop(&mut self) {
        self.key.zeroize();
        self.iv.zeroize();
    }
}

/// The cluster's CDN: which DC it is, its key, the files it serves.
pub struct CdnState {
    dc: i32,
    public_pem: String,
    files: HashMap<i64, CdnFile>,
    /// Plaintext offsets whose ciphertext the CDN sends with its first byte flipped.
    tampered: BTreeSet<i64>,
    /// `getCdnFile` answers with data, and `reuploadCdnFile` calls that put a block back, so far.
    served: u64,
    reuploads: u64,
}

impl CdnState {
    /// DC `dc` of the cluster is the CDN; `public` is its RSA key (the one its `DcOptions::rsa_key` holds).
    pub fn new(dc: i32, public: &RsaPublicKey) -> CdnState {
        CdnState {
            dc,
            public_pem: public_pem(public),
            files: HashMap::new(),
            tampered: BTreeSet::new(),
            served: 0,
            reuploads: 0,
        }
    }

    /// `getCdnFile` answers that carried data, and blocks put back by `reuploadCdnFile`, so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.served, self.reuploads)
    }

    /// The CDN DC's id.
    pub fn dc(&self) -> i32 {
        self.dc
    }

    /// Serves `file_id` through the CDN from now on (a fresh token, key and IV); false when [`MAX_CDN_FILES`] are.
    pub fn mark(&mut self, file_id: i64) -> bool {
        if !self.files.contains_key(&file_id) && self.files.len() >= MAX_CDN_FILES {
            return false;
        }
        let mut rng = rand::rng();
        let mut f = CdnFile {
            token: [0; 16],
            key: [0; 32],
            iv: [0; 16],
            missing: BTreeSet::new(),
        };
        rng.fill(&mut f.token[..]);
        rng.fill(&mut f.key[..]);
        rng.fill(&mut f.iv[..]);
        self.files.insert(file_id, f);
        true
    }

    /// The CDN loses the 1 MiB block holding `offset` of `file_id` (it asks for a reupload when the block is asked).
    pub fn evict(&mut self, file_id: i64, offset: i64) {
        if let Some(f) = self.files.get_mut(&file_id) {
            f.missing.insert(offset.div_euclid(BLOCK));
        }
    }

    /// The CDN corrupts what it sends for the request at `offset` (any file); false when [`MAX_TAMPERED`] are.
    pub fn tamper(&mut self, offset: i64) -> bool {
        if self.tampered.len() >= MAX_TAMPERED {
            return false;
        }
        self.tampered.insert(offset);
        true
    }

    /// Whether `file_id` is served through the CDN.
    pub fn serves(&self, file_id: i64) -> bool {
        self.files.contains_key(&file_id)
    }

    /// The file a token names.
    pub fn file_of(&self, token: &[u8]) -> Option<i64> {
        self.files
            .iter()
            .find(|(_, f)| f.token.as_slice() == token)
            .map(|(id, _)| *id)
    }

    /// `help.getCdnConfig`.
    pub fn config(&self) -> Reply {
        let key = types::CdnPublicKey {
            dc_id: self.dc,
            public_key: self.public_pem.as_bytes(),
        };
        let mut out = types::CdnConfig::ID.to_le_bytes().to_vec();
        out.extend_from_slice(&VECTOR.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend(to_vec(&key));
        Reply::Result(out)
    }

    /// `upload.fileCdnRedirect` for `file_id` (marked), with the hashes from `offset`.
    pub fn redirect(&self, file_id: i64, data: &FileBytes<'_>, offset: i64) -> Reply {
        let Some(f) = self.files.get(&file_id) else {
            return Reply::Error(500, "INTERNAL");
        };
        let hashes = hashes(data, offset);
        let Ok(seq) = functions::UploadGetCdnFileHashes::decode_result(&hashes) else {
            return Reply::Error(500, "INTERNAL");
        };
        Reply::Result(to_vec(&types::UploadFileCdnRedirect {
            dc_id: self.dc,
            file_token: &f.token,
            encryption_key: &f.key,
            encryption_iv: &f.iv,
            file_hashes: seq,
        }))
    }

    /// `upload.getCdnFile` on the CDN DC (offset and limit already checked by the caller).
    pub fn get_cdn_file(&mut self, file_id: i64, data: &FileBytes<'_>, offset: i64, limit: i32) -> Reply {
        let Some(f) = self.files.get(&file_id) else {
            return Reply::Error(400, "FILE_TOKEN_INVALID");
        };
        if f.missing.contains(&offset.div_euclid(BLOCK)) {
            let mut request_token = f.token.to_vec();
            request_token.extend_from_slice(&offset.to_le_bytes());
            return Reply::Result(to_vec(&types::UploadCdnFileReuploadNeeded {
                request_token: &request_token,
            }));
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut bytes = data.range(start, start.saturating_add(usize::try_from(limit).unwrap_or(0)));
        let mut iv = f.iv;
        let ctr = u32::try_from(offset / 16).unwrap_or(u32::MAX);
        if let Some(tail) = iv.get_mut(12..16) {
            tail.copy_from_slice(&ctr.to_be_bytes());
        }
        AesCtr::new(&f.key, &iv).apply(&mut bytes);
        iv.zeroize();
        if self.tampered.contains(&offset)
            && let Some(b) = bytes.first_mut()
        {
            *b ^= 1;
        }
        self.served += 1;
        Reply::Result(to_vec(&types::UploadCdnFile { bytes: &bytes }))
    }

    /// `upload.reuploadCdnFile` on the master DC: the block named by the request token is put back on the CDN;
    /// its hashes.
    pub fn reupload(&mut self, file_id: i64, data: &FileBytes<'_>, request_token: &[u8]) -> Reply {
        let Some(f) = self.files.get_mut(&file_id) else {
            return Reply::Error(400, "FILE_TOKEN_INVALID");
        };
        let offset = request_token
            .strip_prefix(f.token.as_slice())
            .and_then(|o| <[u8; 8]>::try_from(o).ok())
            .map(i64::from_le_bytes);
        let Some(offset) = offset else {
            return Reply::Error(400, "REQUEST_TOKEN_INVALID");
        };
        let block = offset.div_euclid(BLOCK);
        if f.missing.remove(&block) {
            self.reuploads += 1;
        }
        Reply::Result(hashes(data, block * BLOCK))
    }
}

/// `Vector<FileHash>`: SHA-256 of the 128 KiB ranges of `data` from `offset` (rounded down to a range), at most
/// [`HASHES_PER_ANSWER`] of them; none at or past the end.
pub fn hashes(data: &FileBytes<'_>, offset: i64) -> Vec<u8> {
    let range = HASH_RANGE as i64;
    let mut at = usize::try_from(offset.max(0) / range * range).unwrap_or(usize::MAX);
    let mut items = Vec::new();
    while at < data.len() && items.len() < HASHES_PER_ANSWER {
        let end = at.saturating_add(HASH_RANGE).min(data.len());
        let mut h = Sha256::new();
        data.read_with(at, end, |b| h.update(b));
        let hash: [u8; 32] = h.finalize().into();
        items.push(to_vec(&types::FileHash {
            offset: i64::try_from(at).unwrap_or(i64::MAX),
            limit: i32::try_from(end - at).unwrap_or(i32::MAX),
            hash: &hash,
        }));
        at = end;
    }
    let mut out = VECTOR.to_le_bytes().to_vec();
    out.extend_from_slice(&u32::try_from(items.len()).unwrap_or(0).to_le_bytes());
    for i in items {
        out.extend(i);
    }
    out
}

fn to_vec<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; v.tl_len()];
    match encode(v, &mut out) {
        Ok(n) => out.truncate(n),
        Err(_) => out.clear(),
    }
    out
}

/// `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1: `SEQUENCE { INTEGER n, INTEGER e }`), as Telegram lists CDN keys.
pub fn public_pem(key: &RsaPublicKey) -> String {
    fn der_len(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let rest = bytes.get(skip..).unwrap_or_default();
            out.push(0x80 | rest.len() as u8);
            out.extend_from_slice(rest);
        }
    }
    fn der_uint(out: &mut Vec<u8>, be: &[u8]) {
        let skip = be.iter().take_while(|b| **b == 0).count();
        let v = be.get(skip..).unwrap_or_default();
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        der_len(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::new();
    der_uint(&mut body, &key.n_bytes());
    der_uint(&mut body, &key.e().to_be_bytes());
    let mut der = vec![0x30];
    der_len(&mut der, body.len());
    der.extend(body);
    let b64 = base64(&der);
    let mut pem = String::from("-----BEGIN RSA PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END RSA PUBLIC KEY-----\n");
    pem
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}
