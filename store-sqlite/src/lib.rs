//! A SQLite-backed [`Store`] for std hosts of mtproto-sansio: what a client keeps across restarts
//! ([`Record`]: auth keys per DC, the home DC, the signed-in user, salts, the DC list, update state) in one database
//! file, as Telethon's and grammers' sessions are.
//!
//! **Where the data comes from and goes.** The host's client loop calls [`Store::save`] with the whole record and
//! the [`Change`] that caused the save; this store writes only the tables that change touches, inside one
//! transaction, so a crash (or a full disk) leaves the file as it was before the save or after it, never between.
//! [`Store::load`] at start reads the tables back into a [`Record`].
//!
//! **Schema** (version [`SCHEMA_VERSION`], kept in SQLite's `user_version`; a file of another version is refused
//! with [`Error::Version`] rather than read into a wrong shape):
//! - `session`: one row: `test_mode`, `home_dc`, `user_id`, `user_bot`, `update_state`;
//! - `dc`: one row per DC: `dc_id`, `pos` (the record's order), `auth_key` (256 bytes or NULL), `authorized`, `salt`, `time_offset`;
//! - `dc_option`: the DC list: `dc_id`, `addr` (4 or 16 bytes), `port`, `flags`, `secret` (16 bytes or NULL).
//!
//! Every value read is checked (DC ids, key and address lengths, flags, table sizes against the crate's bounds)
//! and a bad one is [`Error::Corrupt`]; a file that is not a database is [`Error::Sqlite`]. Keys read from the file
//! are wiped from the buffers SQLite handed out; the file itself holds them in the clear, so it is created readable
//! by its owner only (on Unix), like the key files of `test-dc`.
//!
//! It lives in a workspace crate of its own so that the crate (no_std, no allocator) and its default test build
//! never compile SQLite; only the hosts that use it, and the end-to-end client tests, do.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use mtproto_sansio::client::DcId;
use mtproto_sansio::client::router::DcOption;
use mtproto_sansio::client::store::{Change, MAX_DCS, MAX_OPTIONS, MAX_UPDATE_STATE, Record, RecordFull, Store, User};
use mtproto_sansio::crypto::auth_key::AuthKey;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use zeroize::{Zeroize, Zeroizing};

/// The schema this build writes and reads (SQLite `user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Why the store failed.
#[derive(Debug)]
pub enum Error {
    /// SQLite refused (I/O, a locked or full disk, a file that is not a database).
    Sqlite(rusqlite::Error),
    /// The file's permissions could not be set.
    Io(std::io::Error),
    /// The file has a schema version this build does not read (newer, or an old layout).
    Version(i64),
    /// A value in the file is not one this store wrote (a DC id out of range, a key of the wrong length...).
    Corrupt(&'static str),
    /// The record does not fit the crate's bounds ([`MAX_DCS`], [`MAX_OPTIONS`], [`MAX_UPDATE_STATE`]).
    Full(RecordFull),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite(e) => write!(f, "session store: {e}"),
            Error::Io(e) => write!(f, "session store: {e}"),
            Error::Version(v) => write!(
                f,
                "session store has schema version {v}, this build reads {SCHEMA_VERSION}"
            ),
            Error::Corrupt(what) => write!(f, "session store corrupt: {what}"),
            Error::Full(e) => write!(f, "session store: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

impl From<RecordFull> for Error {
    fn from(e: RecordFull) -> Self {
        Error::Full(e)
    }
}

/// A session store in one SQLite file.
pub struct SqliteStore {
    db: Connection,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.db.path()).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE session (
    id           INTEGER PRIMARY KEY CHECK (id = 0),
    test_mode    INTEGER NOT NULL,
    home_dc      INTEGER,
    user_id      INTEGER,
    user_bot     INTEGER NOT NULL,
    update_state BLOB NOT NULL
);
CREATE TABLE dc (
    dc_id       INTEGER PRIMARY KEY,
    pos         INTEGER NOT NULL,
    auth_key    BLOB,
    authorized  INTEGER NOT NULL,
    salt        INTEGER NOT NULL,
    time_offset INTEGER NOT NULL
);
CREATE TABLE dc_option (
    pos    INTEGER PRIMARY KEY,
    dc_id  INTEGER NOT NULL,
    addr   BLOB NOT NULL,
    port   INTEGER NOT NULL,
    flags  INTEGER NOT NULL,
    secret BLOB
);
";

impl SqliteStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// The file cannot be opened, is not a database, or has another schema version.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let new = !path.exists();
        let db = Connection::open(path)?;
        #[cfg(unix)]
        if new {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(Error::Io)?;
        }
        #[cfg(not(unix))]
        let _ = new;
        Self::init(db)
    }

    /// A store in memory (tests).
    ///
    /// # Errors
    /// SQLite could not make one.
    pub fn in_memory() -> Result<Self, Error> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(db: Connection) -> Result<Self, Error> {
        // Full durability: a save returns once the change is on disk (the Store contract).
        db.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
        match version {
            0 => {
                let mut db = db;
                let tx = db.transaction()?;
                tx.execute_batch(SCHEMA)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                tx.commit()?;
                Ok(Self { db })
            }
            SCHEMA_VERSION => Ok(Self { db }),
            v => Err(Error::Version(v)),
        }
    }

    fn write_session(tx: &Transaction<'_>, r: &Record) -> Result<(), Error> {
        tx.execute(
            "INSERT OR REPLACE INTO session (id, test_mode, home_dc, user_id, user_bot, update_state)
             VALUES (0, ?1, ?2, ?3, ?4, ?5)",
            params![
                r.test_mode,
                r.home.map(DcId::get),
                r.user.map(|u| u.id),
                r.user.is_some_and(|u| u.bot),
                r.update_state()
            ],
        )?;
        Ok(())
    }

    fn write_dcs(tx: &Transaction<'_>, r: &Record) -> Result<(), Error> {
        // At most MAX_DCS rows: the table is rewritten whole, so it never holds a DC the record dropped.
        tx.execute("DELETE FROM dc", [])?;
        let mut ins = tx.prepare(
            "INSERT INTO dc (dc_id, pos, auth_key, authorized, salt, time_offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (pos, d) in r.dcs().enumerate() {
            ins.execute(params![
                d.dc.get(),
                i64::try_from(pos).unwrap_or(i64::MAX),
                d.key.as_ref().map(|k| &k.as_bytes()[..]),
                d.authorized,
                i64::from_le_bytes(d.salt.to_le_bytes()),
                d.time_offset
            ])?;
        }
        Ok(())
    }

    fn write_options(tx: &Transaction<'_>, r: &Record) -> Result<(), Error> {
        tx.execute("DELETE FROM dc_option", [])?;
        let mut ins = tx
            .prepare("INSERT INTO dc_option (pos, dc_id, addr, port, flags, secret) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for (pos, o) in r.options().enumerate() {
            let addr: Vec<u8> = match o.addr {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            let flags = u8::from(o.media_only)
                | u8::from(o.tcpo_only) << 1
                | u8::from(o.cdn) << 2
                | u8::from(o.static_) << 3
                | u8::from(o.this_port_only) << 4;
            ins.execute(params![
                i64::try_from(pos).unwrap_or(i64::MAX),
                o.dc.get(),
                addr,
                o.port,
                flags,
                o.secret.as_ref().map(|s| &s[..])
            ])?;
        }
        Ok(())
    }

    fn read(&self) -> Result<Option<Record>, Error> {
        let row = self
            .db
            .query_row(
                "SELECT test_mode, home_dc, user_id, user_bot, update_state FROM session WHERE id = 0",
                [],
                |r| {
                    Ok((
                        r.get::<_, bool>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((test_mode, home, user_id, bot, state)) = row else {
            return Ok(None);
        };
        let mut rec = Record::new(test_mode);
        rec.home = home.map(dc_id).transpose()?;
        rec.user = user_id.map(|id| User { id, bot });
        if state.len() > MAX_UPDATE_STATE {
            return Err(Error::Corrupt("update state too long"));
        }
        rec.set_update_state(&state)?;

        let mut q = self
            .db
            .prepare("SELECT dc_id, auth_key, authorized, salt, time_offset FROM dc ORDER BY pos")?;
        let mut rows = q.query([])?;
        let mut n = 0usize;
        while let Some(r) = rows.next()? {
            n += 1;
            if n > MAX_DCS {
                return Err(Error::Corrupt("more DCs than a record keeps"));
            }
            let dc = dc_id(r.get(0)?)?;
            let key: Option<Zeroizing<Vec<u8>>> = r.get::<_, Option<Vec<u8>>>(1)?.map(Zeroizing::new);
            if let Some(k) = key {
                let mut bytes: [u8; 256] = k
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::Corrupt("auth key not 256 bytes"))?;
                rec.set_key(dc, AuthKey::from_bytes(bytes))?;
                bytes.zeroize();
            }
            let salt = u64::from_le_bytes(r.get::<_, i64>(3)?.to_le_bytes());
            let offset = i32::try_from(r.get::<_, i64>(4)?).map_err(|_| Error::Corrupt("time offset"))?;
            rec.set_salt(dc, salt, offset)?;
            if r.get::<_, bool>(2)? {
                rec.authorized(dc)?;
            }
        }

        let mut q = self
            .db
            .prepare("SELECT dc_id, addr, port, flags, secret FROM dc_option ORDER BY pos")?;
        let mut rows = q.query([])?;
        let mut opts = Vec::new();
        while let Some(r) = rows.next()? {
            if opts.len() >= MAX_OPTIONS {
                return Err(Error::Corrupt("more DC addresses than a record keeps"));
            }
            let dc = dc_id(r.get(0)?)?;
            let addr: Vec<u8> = r.get(1)?;
            let addr = match addr.len() {
                4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(addr.as_slice()).unwrap_or_default())),
                16 => IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(addr.as_slice()).unwrap_or_default(),
                )),
                _ => return Err(Error::Corrupt("address neither 4 nor 16 bytes")),
            };
            let port = u16::try_from(r.get::<_, i64>(2)?).map_err(|_| Error::Corrupt("port"))?;
            let flags = r.get::<_, i64>(3)?;
            if !(0..32).contains(&flags) {
                return Err(Error::Corrupt("address flags"));
            }
            let secret = match r.get::<_, Option<Vec<u8>>>(4)? {
                None => None,
                Some(s) => Some(<[u8; 16]>::try_from(s.as_slice()).map_err(|_| Error::Corrupt("secret not 16 bytes"))?),
            };
            opts.push(DcOption {
                dc,
                addr,
                port,
                media_only: flags & 1 != 0,
                tcpo_only: flags & 2 != 0,
                cdn: flags & 4 != 0,
                static_: flags & 8 != 0,
                this_port_only: flags & 16 != 0,
                secret,
            });
        }
        rec.set_options(&opts)?;
        Ok(Some(rec))
    }
}

fn dc_id(raw: i64) -> Result<DcId, Error> {
    DcId::new(raw).ok_or(Error::Corrupt("DC id out of range"))
}

impl Store for SqliteStore {
    type Error = Error;

    fn load(&mut self) -> Result<Option<Record>, Error> {
        self.read()
    }

    fn save(&mut self, record: &Record, change: Change) -> Result<(), Error> {
        let tx = self.db.transaction()?;
        // The session row is one small row: always written, so home, user and test mode never lag.
        Self::write_session(&tx, record)?;
        match change {
            Change::Key(_)
            | Change::KeyDropped(_)
            | Change::SignedIn
            | Change::SignedOut
            | Change::Authorized(_)
            | Change::Salt(_) => Self::write_dcs(&tx, record)?,
            Change::Options => Self::write_options(&tx, record)?,
            Change::Home | Change::UpdateState => {}
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn dc(n: i64) -> DcId {
        DcId::new(n).unwrap()
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("mtproto-sqlite-{}-{name}.db", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    fn record() -> Record {
        let mut r = Record::new(true);
        r.set_key(dc(2), AuthKey::from_bytes([2; 256])).unwrap();
        r.set_key(dc(1), AuthKey::from_bytes([1; 256])).unwrap();
        r.set_salt(dc(2), u64::MAX - 5, -7).unwrap();
        r.signed_in(dc(2), User { id: 77, bot: true }).unwrap();
        r.authorized(dc(1)).unwrap();
        let o = DcOption {
            dc: dc(2),
            addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
            port: 443,
            media_only: true,
            tcpo_only: true,
            cdn: false,
            static_: false,
            this_port_only: true,
            secret: Some([5; 16]),
        };
        let o4 = DcOption {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            secret: None,
            media_only: false,
            ..o
        };
        r.set_options(&[o, o4]).unwrap();
        r.set_update_state(b"state").unwrap();
        r
    }

    fn save_all(s: &mut SqliteStore, r: &Record) {
        for c in [
            Change::Key(dc(1)),
            Change::SignedIn,
            Change::Options,
            Change::UpdateState,
        ] {
            s.save(r, c).unwrap();
        }
    }

    #[test]
    fn write_reopen_read_back() {
        let p = tmp("reopen");
        let r = record();
        {
            let mut s = SqliteStore::open(&p).unwrap();
            assert!(s.load().unwrap().is_none());
            save_all(&mut s, &r);
        }
        let mut s = SqliteStore::open(&p).unwrap();
        let back = s.load().unwrap().unwrap();
        assert_eq!(back, r);
        assert_eq!(back.dc(dc(2)).unwrap().salt, u64::MAX - 5);
        // A dropped key leaves the table.
        let mut r2 = r.clone();
        let c = r2.drop_key(dc(1));
        s.save(&r2, c).unwrap();
        drop(s);
        assert_eq!(SqliteStore::open(&p).unwrap().load().unwrap().unwrap(), r2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_failed_save_changes_nothing() {
        let p = tmp("atomic");
        let r = record();
        let mut s = SqliteStore::open(&p).unwrap();
        save_all(&mut s, &r);
        // A trigger makes the second insert of the DC table fail half way through the rewrite.
        s.db.execute_batch(
            "CREATE TRIGGER fail AFTER INSERT ON dc WHEN (SELECT count(*) FROM dc) > 1
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
        let mut r2 = r.clone();
        r2.set_salt(dc(1), 99, 0).unwrap();
        r2.home = Some(dc(1));
        assert!(matches!(s.save(&r2, Change::Salt(dc(1))), Err(Error::Sqlite(_))));
        drop(s);
        assert_eq!(SqliteStore::open(&p).unwrap().load().unwrap().unwrap(), r);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn other_version_and_garbage_are_typed_errors() {
        let p = tmp("version");
        {
            let s = SqliteStore::open(&p).unwrap();
            s.db.pragma_update(None, "user_version", 7).unwrap();
        }
        assert!(matches!(SqliteStore::open(&p), Err(Error::Version(7))));
        std::fs::write(&p, vec![0x5a; 8192]).unwrap();
        assert!(matches!(SqliteStore::open(&p), Err(Error::Sqlite(_))));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn corrupt_values_are_typed_errors() {
        let cases = [
            "UPDATE dc SET auth_key = x'00' WHERE dc_id = 2",
            "UPDATE dc SET dc_id = 5000 WHERE dc_id = 2",
            "UPDATE dc_option SET addr = x'0102'",
            "UPDATE dc_option SET port = 70000",
            "UPDATE dc_option SET flags = 64",
            "UPDATE dc_option SET secret = x'01'",
            "UPDATE session SET home_dc = 0",
            "UPDATE dc SET time_offset = 9999999999 WHERE dc_id = 2",
        ];
        for sql in cases {
            let mut s = SqliteStore::in_memory().unwrap();
            save_all(&mut s, &record());
            s.db.execute_batch(sql).unwrap();
            assert!(matches!(s.load(), Err(Error::Corrupt(_))), "{sql}");
        }
        let mut s = SqliteStore::in_memory().unwrap();
        save_all(&mut s, &record());
        for i in 10..10 + MAX_DCS as i64 {
            s.db.execute("INSERT INTO dc VALUES (?1, ?1, NULL, 0, 0, 0)", [i])
                .unwrap();
        }
        assert!(matches!(s.load(), Err(Error::Corrupt(_))));
    }
}
