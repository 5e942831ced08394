//! Fuzz entry points for `client::files`: arbitrary answers (`upload.File`, `upload.CdnFile`, `Vector<FileHash>`,
//! `Bool`), errors, losses, timers and new locations fed to an upload or a download. Without the `api` feature the
//! target does nothing, so `tests/fuzz_corpus.rs` replays the corpus as a no-op and `tests/client_files.rs`
//! replays it for real.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("client_files", client_files)];

/// Input: one byte choosing the machine (bit 7: upload, else download; bit 0: CDN allowed; bit 1: size known;
/// bits 2-3: window 1, 2, 4, 8), then operations, each an op byte and its operands: 0 an answer to the oldest
/// request in flight (u16 length, bytes); 1 an `rpc_error` to it (u8 selecting the message); 2 it was lost;
/// 3 time passes (u8 seconds); 4 a new location; 5 an `upload.file` of (u16) bytes to it; 6 a CDN redirect to it
/// with (u8) hashes of the next bytes. Invariants: requests validate as API calls and fit what they say they
/// wrote; data handed over lies within the part asked and the known size; a failed transfer stays failed.
pub fn client_files(data: &[u8]) {
    #[cfg(feature = "api")]
    api::drive(data);
    #[cfg(not(feature = "api"))]
    let _ = data;
}

#[cfg(feature = "api")]
mod api {
    use super::super::Input;
    use crate::client::files::{
        Download, DownloadConfig, DownloadProgress, FileConfig, FileError, Request, Upload, UploadConfig,
    };
    use crate::time::Instant;
    use crate::tl::api::{Obj, Seq, enums, types};
    use crate::tl::encode;
    use crate::tl::layout::Root;
    use crate::tl::tables::api::API;
    use heapless::Vec as HVec;

    /// Most operations run per input (bounded work).
    const MAX_OPS: usize = 512;
    /// The requests kept in flight by the driver.
    const MAX_PENDING: usize = 64;
    /// Room for an answer: two limits (longer than any valid one) and the TL around them.
    const BODY: usize = 2 * 4096 + 64;
    const ERRORS: [(i32, &[u8]); 10] = [
        (420, b"FLOOD_WAIT_2"),
        (420, b"FLOOD_WAIT_100000"),
        (500, b"INTERNAL"),
        (303, b"FILE_MIGRATE_4"),
        (303, b"FILE_MIGRATE_9999"),
        (400, b"FILE_REFERENCE_EXPIRED"),
        (400, b"FILE_TOKEN_INVALID"),
        (400, b"LIMIT_INVALID"),
        (-503, b"Timeout"),
        (401, b"AUTH_KEY_UNREGISTERED"),
    ];
    /// `inputDocumentFileLocation` id 1, access_hash 2, file_reference "r", thumb_size "".
    const LOCATION: [u8; 28] = [
        0x84, 0x75, 0xd0, 0xba, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, b'r', 0, 0, 0, 0, 0, 0,
    ];

    fn check_request(buf: &[u8], req: &Request) {
        let written = buf.get(..req.len);
        assert!(written.is_some(), "request longer than the buffer");
        assert_eq!(
            API.validate(written.unwrap_or(&[]), Root::Function),
            Ok(req.len),
            "request does not validate"
        );
    }

    pub(super) fn drive(data: &[u8]) {
        let mut input = Input::new(data);
        let Some(mode) = input.u8() else { return };
        let window = 1u8 << ((mode >> 2) & 3);
        let transfer = FileConfig {
            window,
            ..FileConfig::DEFAULT
        };
        if mode & 0x80 != 0 {
            upload(&mut input, transfer, mode);
        } else {
            download(&mut input, transfer, mode);
        }
    }

    fn upload(input: &mut Input<'_>, transfer: FileConfig, mode: u8) {
        let size = if mode & 2 != 0 { 11 * 1024 * 1024 } else { 3000 };
        let cfg = UploadConfig {
            transfer,
            part_size: Some(1024),
            max_parts: 20_000,
        };
        let Ok(mut up) = Upload::new(cfg, 7, size) else { return };
        let mut buf = [0u8; 1100];
        let mut now = Instant::from_secs(1);
        let mut pending: HVec<Request, MAX_PENDING> = HVec::new();
        for _ in 0..MAX_OPS {
            while pending.len() < MAX_PENDING {
                match up.poll_request(now, &mut buf, |_, d| {
                    d.fill(0x5a);
                    true
                }) {
                    Ok(Some(r)) => {
                        check_request(&buf, &r);
                        let _ = pending.push(r);
                    }
                    _ => break,
                }
            }
            let Some(op) = input.u8() else { return };
            let failed = up.error().cloned();
            let r = match (op % 7, pending.first().copied()) {
                (0 | 5 | 6, Some(req)) => {
                    let n = usize::from(input.u16().unwrap_or(0));
                    let body = input.take(n);
                    pending.remove(0);
                    up.handle_result(now, req.tag, body).map(|_| ())
                }
                (1, Some(req)) => {
                    let (code, msg) = ERRORS
                        .get(usize::from(input.u8().unwrap_or(0)) % ERRORS.len())
                        .copied()
                        .unwrap_or((500, b""));
                    pending.remove(0);
                    up.handle_rpc_error(now, req.tag, code, msg).map(|_| ())
                }
                (2, Some(req)) => {
                    pending.remove(0);
                    up.handle_failed(now, req.tag).map(|_| ())
                }
                _ => {
                    now = now.saturating_add(core::time::Duration::from_secs(u64::from(input.u8().unwrap_or(1))));
                    up.handle_timeout(now);
                    Ok(())
                }
            };
            if let (Some(f), Err(e)) = (failed, r) {
                assert_eq!(e, FileError::Finished, "a failed upload stays failed ({f})");
                return;
            }
        }
    }

    fn download(input: &mut Input<'_>, transfer: FileConfig, mode: u8) {
        let limit = 4096;
        let size = (mode & 2 != 0).then_some(5 * 4096 + 100);
        let cfg = DownloadConfig {
            transfer,
            limit,
            cdn: mode & 1 != 0,
            // Small enough that the input can stream past it (a file of unknown size must end within it).
            max_size: 16 * 4096,
        };
        let Ok(mut dl) = Download::new(cfg, &LOCATION, size) else {
            return;
        };
        let mut buf = [0u8; 1024];
        let mut now = Instant::from_secs(1);
        let mut pending: HVec<Request, MAX_PENDING> = HVec::new();
        let mut body = [0u8; BODY];
        for _ in 0..MAX_OPS {
            while pending.len() < MAX_PENDING {
                match dl.poll_request(now, &mut buf) {
                    Ok(Some(r)) => {
                        check_request(&buf, &r);
                        let _ = pending.push(r);
                    }
                    _ => break,
                }
            }
            let Some(op) = input.u8() else { return };
            let failed = dl.error().cloned();
            let r = match (op % 7, pending.first().copied()) {
                (0, Some(req)) => {
                    let n = usize::from(input.u16().unwrap_or(0)).min(BODY);
                    let src = input.take(n);
                    let len = src.len();
                    if let Some(d) = body.get_mut(..len) {
                        d.copy_from_slice(src);
                    }
                    pending.remove(0);
                    dl.handle_result(now, req.tag, body.get_mut(..len).unwrap_or(&mut []))
                        .map(|p| check_data(&p, limit, dl.size()))
                }
                (5, Some(req)) => {
                    let n = usize::from(input.u16().unwrap_or(0)).min(2 * limit as usize);
                    let bytes = [0x11u8; 2 * 4096];
                    let f = types::UploadFile {
                        type_: Obj::new(&enums::StorageFileType::StorageFilePartial(
                            types::StorageFilePartial {},
                        )),
                        mtime: 0,
                        bytes: bytes.get(..n).unwrap_or(&[]),
                    };
                    let len = encode(&f, &mut body).unwrap_or(0);
                    pending.remove(0);
                    dl.handle_result(now, req.tag, body.get_mut(..len).unwrap_or(&mut []))
                        .map(|p| check_data(&p, limit, dl.size()))
                }
                (6, Some(req)) => {
                    let count = usize::from(input.u8().unwrap_or(0) % 4);
                    let h = |i: i64| types::FileHash {
                        offset: i * 131_072,
                        limit: 131_072,
                        hash: &[0u8; 32],
                    };
                    let hashes = [h(0), h(1), h(2)];
                    let objs = [Obj::new(&hashes[0]), Obj::new(&hashes[1]), Obj::new(&hashes[2])];
                    let r = types::UploadFileCdnRedirect {
                        dc_id: 201,
                        file_token: b"t",
                        encryption_key: &[1u8; 32],
                        encryption_iv: &[2u8; 16],
                        file_hashes: Seq::new(objs.get(..count).unwrap_or(&[])),
                    };
                    let len = encode(&r, &mut body).unwrap_or(0);
                    pending.remove(0);
                    dl.handle_result(now, req.tag, body.get_mut(..len).unwrap_or(&mut []))
                        .map(|p| check_data(&p, limit, dl.size()))
                }
                (1, Some(req)) => {
                    let (code, msg) = ERRORS
                        .get(usize::from(input.u8().unwrap_or(0)) % ERRORS.len())
                        .copied()
                        .unwrap_or((500, b""));
                    pending.remove(0);
                    dl.handle_rpc_error(now, req.tag, code, msg).map(|_| ())
                }
                (2, Some(req)) => {
                    pending.remove(0);
                    dl.handle_failed(now, req.tag).map(|_| ())
                }
                (4, _) => dl.refresh_location(&LOCATION),
                _ => {
                    now = now.saturating_add(core::time::Duration::from_secs(u64::from(input.u8().unwrap_or(1))));
                    dl.handle_timeout(now);
                    Ok(())
                }
            };
            if let (Some(f), Err(e)) = (failed, r) {
                assert_eq!(e, FileError::Finished, "a failed download stays failed ({f})");
                return;
            }
        }
    }

    fn check_data(p: &DownloadProgress<'_>, limit: u32, size: Option<u64>) {
        if let DownloadProgress::Data { offset, bytes } = p {
            assert_eq!(offset % u64::from(limit), 0, "data at a part's offset");
            assert!(bytes.len() <= limit as usize, "no more than asked");
            if let Some(s) = size {
                assert!(offset + bytes.len() as u64 <= s, "nothing past the end");
            }
        }
    }
}
