//! Durable error-budget state: a redb database at `<data_dir>/budgets.redb` holding the last
//! [`Snapshot`] of [`ErrorBudgets`], so a restart does not reset anyone's budget.
//!
//! # Use
//!
//! At start the daemon calls [`Store::open_in`] then [`Store::load`] and
//! [`ErrorBudgets::restore`]; it then calls [`Store::save`] every `flush_interval_seconds`
//! (default 10) and once on shutdown. Each save is one redb write transaction committed with
//! the default (immediate, fsync'd) durability, so a crash or `kill -9` loses at most the
//! events since the last flush, and a crash in the middle of a save leaves the previous one.
//! To keep the budgets' mutex short, take the snapshot under the lock
//! ([`ErrorBudgets::snapshot`]) and write it outside with [`Store::save_snapshot`].
//!
//! # Corruption
//!
//! The database is opened with redb's integrity check (page checksums verified, allocator state
//! rebuilt), and every record is decoded once at open. If the file is not a redb database, is
//! truncated, fails the check, holds a record this version cannot decode, or makes redb panic,
//! it is renamed to `budgets.redb.corrupt-<unix seconds>` (with `.1`, `.2`, ... appended if
//! that name exists), a `warn!` names both paths, and a fresh database is created in its place:
//! budgets start full rather than sonde refusing to run. [`OpenOutcome::Reset`] tells the
//! caller, and [`Store::encode`] exposes `sonde_budget_store_resets_total`. Errors that a
//! fresh file would not fix (permission denied, the file locked by another sonde) are returned
//! as [`StoreError`] instead; nothing is moved then.
//!
//! # Layout
//!
//! * table `budget_meta` (`&str` → `u64`): `format` (currently 1), `saved_at_unix_seconds`.
//! * table `budget_services` (`&str` service → `&[u8]`): one record per service, compact
//!   binary: a version byte (1), then unsigned LEB128 varints: `errors_total`, the number of
//!   minute buckets, each as (minute delta from the previous one — the first from 0 —,
//!   errors, total, bad), then the hour buckets the same way. Deltas keep a busy service's
//!   4320 minute buckets at a few bytes each.

use std::fs;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
    TableError,
};

use crate::collect::Sink;
use crate::services::error_budget::{Counts, ErrorBudgets, ServiceSnapshot, Snapshot};

/// File name of the store inside the data directory.
pub const FILE_NAME: &str = "budgets.redb";

/// The layout version written to `budget_meta.format`.
pub const FORMAT: u64 = 1;

const RECORD_VERSION: u8 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("budget_meta");
const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("budget_services");

/// redb caches pages up to this size (its default is 1 GiB); the whole state is a few MiB.
const CACHE_BYTES: usize = 4 << 20;

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The database could not be opened for a reason a fresh file would not fix (permissions,
    /// locked by another process).
    #[error("cannot open the error budget store {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: redb::Error,
    },
    /// A corrupt database could not be renamed out of the way.
    #[error("cannot move the corrupt error budget store {path} aside to {to}")]
    MoveAside {
        /// The database file.
        path: PathBuf,
        /// Where it was to go.
        to: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing a snapshot failed.
    #[error("cannot write the error budget store {path}")]
    Write {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: redb::Error,
    },
    /// Reading the snapshot failed.
    #[error("cannot read the error budget store {path}")]
    Read {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: redb::Error,
    },
    /// A record could not be decoded.
    #[error("the error budget store {path} holds an unreadable record: {reason}")]
    Decode {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What [`Store::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// No database existed; an empty one was created.
    Created,
    /// An existing database was opened and its records are readable.
    Opened,
    /// The existing file was unreadable; it was moved to `moved_to` and an empty database was
    /// created.
    Reset {
        /// Where the old file is now.
        moved_to: PathBuf,
        /// Why it was unreadable.
        reason: String,
    },
}

/// The durable budget store.
pub struct Store {
    db: Database,
    path: PathBuf,
    resets: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("resets", &self.resets)
            .finish()
    }
}

/// Why opening failed: a file problem a fresh database fixes, or another one.
enum OpenFail {
    Corrupt(String),
    Other(redb::Error),
}

fn is_corrupt_io(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    )
}

fn classify(e: DatabaseError) -> OpenFail {
    match e {
        DatabaseError::Storage(StorageError::Corrupted(m)) => OpenFail::Corrupt(m),
        DatabaseError::Storage(StorageError::Io(io)) if is_corrupt_io(&io) => {
            OpenFail::Corrupt(io.to_string())
        }
        DatabaseError::UpgradeRequired(v) => {
            OpenFail::Corrupt(format!("file format {v} needs an upgrade"))
        }
        DatabaseError::RepairAborted => OpenFail::Corrupt("repair aborted".into()),
        other => OpenFail::Other(other.into()),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn open_db(path: &Path) -> Result<Database, OpenFail> {
    let mut builder = Database::builder();
    builder
        .set_check_integrity_on_open(true)
        .set_cache_size(CACHE_BYTES);
    // redb documents that a file corrupted outside redb may make it panic; a damaged state
    // file must not take the daemon down, so a panic counts as corruption.
    match catch_unwind(AssertUnwindSafe(|| builder.create(path))) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(classify(e)),
        Err(p) => Err(OpenFail::Corrupt(format!(
            "redb panicked: {}",
            panic_text(p.as_ref())
        ))),
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `<path>.corrupt-<ts>`, or `<path>.corrupt-<ts>.<n>` when taken.
fn aside_path(path: &Path, now: SystemTime) -> PathBuf {
    let base = format!(
        "{}.corrupt-{}",
        path.file_name()
            .map_or_else(|| FILE_NAME.into(), |n| n.to_string_lossy()),
        unix_secs(now)
    );
    let mut to = path.with_file_name(&base);
    let mut n = 1;
    while to.exists() {
        to = path.with_file_name(format!("{base}.{n}"));
        n += 1;
    }
    to
}

impl Store {
    /// Opens (or creates) `<data_dir>/budgets.redb`, creating `data_dir` if needed.
    pub fn open_in(data_dir: &Path, now: SystemTime) -> Result<(Self, OpenOutcome), StoreError> {
        Self::open(&data_dir.join(FILE_NAME), now)
    }

    /// Opens (or creates) the store at `path`, creating its directory if needed. A corrupt or
    /// unreadable file is moved aside (named with `now`) and replaced by an empty store.
    pub fn open(path: &Path, now: SystemTime) -> Result<(Self, OpenOutcome), StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let existed = fs::metadata(path).is_ok_and(|m| m.len() > 0);
        let reason = match open_db(path) {
            Ok(db) => {
                let store = Self {
                    db,
                    path: path.to_path_buf(),
                    resets: 0,
                };
                match store.load() {
                    Ok(_) => {
                        let outcome = if existed {
                            OpenOutcome::Opened
                        } else {
                            OpenOutcome::Created
                        };
                        return Ok((store, outcome));
                    }
                    Err(StoreError::Decode { reason, .. }) => reason,
                    Err(StoreError::Read { source, .. }) => match source {
                        redb::Error::Corrupted(m) => m,
                        redb::Error::TableTypeMismatch { table, .. } => {
                            format!("table {table} has unexpected types")
                        }
                        redb::Error::Io(io) if is_corrupt_io(&io) => io.to_string(),
                        source => {
                            return Err(StoreError::Read {
                                path: path.to_path_buf(),
                                source,
                            });
                        }
                    },
                    Err(e) => return Err(e),
                }
            }
            Err(OpenFail::Corrupt(reason)) => reason,
            Err(OpenFail::Other(source)) => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::reset(path, now, reason)
    }

    fn reset(
        path: &Path,
        now: SystemTime,
        reason: String,
    ) -> Result<(Self, OpenOutcome), StoreError> {
        let to = aside_path(path, now);
        fs::rename(path, &to).map_err(|source| StoreError::MoveAside {
            path: path.to_path_buf(),
            to: to.clone(),
            source,
        })?;
        tracing::warn!(
            path = %path.display(),
            moved_to = %to.display(),
            %reason,
            "error budget store {} is unreadable ({reason}); moved it to {} and starting with full budgets",
            path.display(),
            to.display(),
        );
        let db = open_db(path).map_err(|f| StoreError::Open {
            path: path.to_path_buf(),
            source: match f {
                OpenFail::Other(e) => e,
                OpenFail::Corrupt(m) => redb::Error::Corrupted(m),
            },
        })?;
        let store = Self {
            db,
            path: path.to_path_buf(),
            resets: 1,
        };
        Ok((
            store,
            OpenOutcome::Reset {
                moved_to: to,
                reason,
            },
        ))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many times the store was reset since this process opened it (0 or 1).
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Writes the state of `budgets` at `now` (see [`Store::save_snapshot`]).
    pub fn save(&self, budgets: &ErrorBudgets, now: SystemTime) -> Result<(), StoreError> {
        self.save_snapshot(&budgets.snapshot(now), now)
    }

    /// Replaces the stored state by `snap` in one write transaction.
    pub fn save_snapshot(&self, snap: &Snapshot, now: SystemTime) -> Result<(), StoreError> {
        let w = |source: redb::Error| StoreError::Write {
            path: self.path.clone(),
            source,
        };
        let txn = self.db.begin_write().map_err(|e| w(e.into()))?;
        {
            // services that left the budgets (evicted) must leave the store too
            txn.delete_table(SERVICES).map_err(|e| w(e.into()))?;
            let mut table = txn.open_table(SERVICES).map_err(|e| w(e.into()))?;
            let mut buf = Vec::with_capacity(1024);
            for s in &snap.services {
                buf.clear();
                encode_service(s, &mut buf);
                table
                    .insert(s.service.as_str(), buf.as_slice())
                    .map_err(|e| w(e.into()))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| w(e.into()))?;
            meta.insert("format", FORMAT).map_err(|e| w(e.into()))?;
            meta.insert("saved_at_unix_seconds", unix_secs(now))
                .map_err(|e| w(e.into()))?;
        }
        txn.commit().map_err(|e| w(e.into()))
    }

    /// The stored state (empty for a new store).
    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let r = |source: redb::Error| StoreError::Read {
            path: self.path.clone(),
            source,
        };
        let decode = |reason: String| StoreError::Decode {
            path: self.path.clone(),
            reason,
        };
        let txn = self.db.begin_read().map_err(|e| r(e.into()))?;
        match txn.open_table(META) {
            Ok(meta) => match meta.get("format").map_err(|e| r(e.into()))? {
                Some(v) if v.value() != FORMAT => {
                    return Err(decode(format!(
                        "layout format {} is not {FORMAT}",
                        v.value()
                    )));
                }
                _ => {}
            },
            Err(TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(r(e.into())),
        }
        let table = match txn.open_table(SERVICES) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Snapshot::default()),
            Err(e) => return Err(r(e.into())),
        };
        let mut services = Vec::new();
        for entry in table.iter().map_err(|e| r(e.into()))? {
            let (k, v) = entry.map_err(|e| r(e.into()))?;
            let service = k.value().to_string();
            let s = decode_service(service, v.value())
                .map_err(|(svc, why)| decode(format!("service {svc:?}: {why}")))?;
            services.push(s);
        }
        Ok(Snapshot { services })
    }

    /// When the stored state was saved, None for a new store.
    pub fn saved_at(&self) -> Result<Option<SystemTime>, StoreError> {
        let r = |source: redb::Error| StoreError::Read {
            path: self.path.clone(),
            source,
        };
        let txn = self.db.begin_read().map_err(|e| r(e.into()))?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(r(e.into())),
        };
        let v = meta.get("saved_at_unix_seconds").map_err(|e| r(e.into()))?;
        Ok(v.map(|v| UNIX_EPOCH + Duration::from_secs(v.value())))
    }

    /// Writes `sonde_budget_store_resets_total`.
    pub fn encode(&self, sink: &mut Sink) {
        sink.counter(
            "sonde_budget_store_resets_total",
            "Times the error budget store was found corrupt, moved aside and started fresh.",
            self.resets as f64,
        );
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_buckets(out: &mut Vec<u8>, buckets: &[(u32, Counts)]) {
    put_varint(out, buckets.len() as u64);
    let mut prev = 0u32;
    for &(t, c) in buckets {
        put_varint(out, u64::from(t.wrapping_sub(prev)));
        prev = t;
        put_varint(out, c.errors);
        put_varint(out, c.total);
        put_varint(out, c.bad);
    }
}

/// Encodes one service's record (buckets must be ascending, as [`ErrorBudgets::snapshot`]
/// makes them).
pub fn encode_service(s: &ServiceSnapshot, out: &mut Vec<u8>) {
    out.push(RECORD_VERSION);
    put_varint(out, s.errors_total);
    put_buckets(out, &s.minutes);
    put_buckets(out, &s.hours);
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.b.split_first().ok_or("truncated")?;
            self.b = rest;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint overflows 64 bits")
    }

    fn buckets(&mut self) -> Result<Vec<(u32, Counts)>, &'static str> {
        let n = self.varint()?;
        // every bucket takes at least 4 bytes: refuse counts the record cannot hold
        if n > (self.b.len() / 4) as u64 {
            return Err("bucket count exceeds the record");
        }
        let mut out = Vec::with_capacity(n as usize);
        let mut t = 0u32;
        for i in 0..n {
            let d = self.varint()?;
            if i > 0 && d == 0 {
                return Err("buckets are not ascending");
            }
            t = u32::try_from(u64::from(t) + d).map_err(|_| "bucket time overflows")?;
            let c = Counts {
                errors: self.varint()?,
                total: self.varint()?,
                bad: self.varint()?,
            };
            out.push((t, c));
        }
        Ok(out)
    }
}

/// Decodes one service's record; the error carries the service and the reason.
pub fn decode_service(
    mut service: String,
    bytes: &[u8],
) -> Result<ServiceSnapshot, (String, &'static str)> {
    let mut parse = || -> Result<ServiceSnapshot, &'static str> {
        let (&version, rest) = bytes.split_first().ok_or("empty record")?;
        if version != RECORD_VERSION {
            return Err("unknown record version");
        }
        let mut r = Reader { b: rest };
        let errors_total = r.varint()?;
        let minutes = r.buckets()?;
        let hours = r.buckets()?;
        if !r.b.is_empty() {
            return Err("trailing bytes");
        }
        Ok(ServiceSnapshot {
            service: std::mem::take(&mut service),
            errors_total,
            minutes,
            hours,
        })
    };
    parse().map_err(|why| (service, why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::error_budget::{Config, parse_error_budgets_env};
    use crate::services::event::{ErrorEvent, LabelLimits, LabelValue};

    const T0: u64 = 1_700_000_000 - 1_700_000_000 % 3600;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn budgets() -> ErrorBudgets {
        let env = parse_error_budgets_env("api=100,worker=50").expect("parses");
        ErrorBudgets::new(&Config::default(), &env).expect("builds")
    }

    fn errors(b: &mut ErrorBudgets, service: &str, ts: u64, now: u64, n: usize) {
        let e = ErrorEvent {
            service: LabelValue::new(service, LabelLimits::default()).expect("valid"),
            kind: None,
            timestamp: Some(at(ts)),
        };
        for _ in 0..n {
            b.record_error(&e, at(now));
        }
    }

    /// Collects what a `tracing` subscriber writes.
    #[derive(Clone, Default)]
    struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl LogCapture {
        fn text(&self) -> String {
            let buf = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&buf).into_owned()
        }
    }

    impl io::Write for LogCapture {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
        type Writer = LogCapture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// A state with minute and hour buckets in three services.
    fn populated(now: u64) -> ErrorBudgets {
        let mut b = budgets();
        errors(&mut b, "api", now - 10 * 86_400, now, 30); // hourly ring only
        errors(&mut b, "api", now - 7200, now, 5);
        errors(&mut b, "api", now - 30, now, 2);
        errors(&mut b, "worker", now - 600, now, 60);
        errors(&mut b, "batch", now - 60, now, 1);
        b
    }

    fn remaining(b: &ErrorBudgets, s: &str, now: u64) -> Option<f64> {
        b.status(s, at(now)).map(|st| st.remaining)
    }

    #[test]
    fn save_reopen_restores_identical_budgets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = 20 * 86_400;
        let b = populated(now);
        {
            let (store, outcome) = Store::open_in(dir.path(), at(now)).expect("opens");
            assert_eq!(outcome, OpenOutcome::Created);
            assert_eq!(store.load().expect("loads"), Snapshot::default());
            assert_eq!(store.saved_at().expect("reads"), None);
            store.save(&b, at(now)).expect("saves");
        }
        let (store, outcome) = Store::open_in(dir.path(), at(now + 5)).expect("reopens");
        assert_eq!(outcome, OpenOutcome::Opened);
        assert_eq!(store.saved_at().expect("reads"), Some(at(now)));
        let snap = store.load().expect("loads");
        assert_eq!(snap, b.snapshot(at(now)));
        let mut c = budgets();
        assert_eq!(c.restore(&snap, at(now)), 3);
        assert_eq!(remaining(&c, "api", now), Some(63.0));
        assert_eq!(remaining(&c, "worker", now), Some(-10.0));
        assert_eq!(remaining(&c, "batch", now), Some(999.0));
        for s in ["api", "worker", "batch"] {
            assert_eq!(c.status(s, at(now)), b.status(s, at(now)), "{s}");
        }
        // a second save replaces the first: an evicted service disappears
        let mut fewer = budgets();
        errors(&mut fewer, "api", now, now, 1);
        store.save(&fewer, at(now + 10)).expect("saves");
        let snap = store.load().expect("loads");
        let names: Vec<&str> = snap.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["api", "worker"]);
        assert_eq!(snap.services[0].errors_total, 1);
    }

    #[test]
    fn garbage_file_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        fs::write(
            &path,
            b"this is not a redb database, just some garbage bytes\n".repeat(100),
        )
        .expect("writes");
        let now = at(0);
        let log = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .finish();
        let (store, outcome) = tracing::subscriber::with_default(subscriber, || {
            Store::open(&path, now).expect("recovers")
        });
        let aside = dir.path().join(format!("budgets.redb.corrupt-{T0}"));
        let logged = log.text();
        assert!(logged.contains(" WARN "), "{logged}");
        assert!(
            logged.contains(&format!(
                "error budget store {} is unreadable (Not a redb database: magic number mismatch); moved it to {} and starting with full budgets",
                path.display(),
                aside.display()
            )),
            "{logged}"
        );
        match &outcome {
            OpenOutcome::Reset { moved_to, reason } => {
                assert_eq!(moved_to, &aside);
                assert!(reason.contains("magic number"), "{reason}");
            }
            other => panic!("expected a reset, got {other:?}"),
        }
        assert_eq!(store.resets(), 1);
        assert!(
            fs::read(&aside)
                .expect("kept")
                .starts_with(b"this is not a redb")
        );
        assert_eq!(store.load().expect("fresh"), Snapshot::default());
        let mut sink = Sink::new();
        store.encode(&mut sink);
        let fam = sink.families().next().expect("one family");
        assert_eq!(fam.name(), "sonde_budget_store_resets_total");
        assert_eq!(fam.samples().next().map(|s| s.value), Some(1.0));
        // the fresh store works
        store
            .save(&populated(20 * 86_400), at(20 * 86_400))
            .expect("saves");
        drop(store);
        // a second corruption in the same second does not overwrite the first copy
        fs::write(&path, b"garbage again").expect("writes");
        let (_, outcome) = Store::open(&path, now).expect("recovers");
        assert_eq!(
            outcome,
            OpenOutcome::Reset {
                moved_to: dir.path().join(format!("budgets.redb.corrupt-{T0}.1")),
                reason: "Not a redb database: magic number mismatch".into()
            }
        );
        assert!(
            fs::read(&aside)
                .expect("kept")
                .starts_with(b"this is not a redb")
        );
    }

    #[test]
    fn truncated_file_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let now = 20 * 86_400;
        {
            let (store, _) = Store::open(&path, at(now)).expect("opens");
            store.save(&populated(now), at(now)).expect("saves");
        }
        let len = fs::metadata(&path).expect("exists").len();
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("opens");
        f.set_len(len / 2).expect("truncates");
        drop(f);
        let (store, outcome) = Store::open(&path, at(now)).expect("recovers");
        assert!(
            matches!(&outcome, OpenOutcome::Reset { moved_to, .. }
                if *moved_to == dir.path().join(format!("budgets.redb.corrupt-{}", T0 + now))),
            "{outcome:?}"
        );
        assert_eq!(store.load().expect("fresh"), Snapshot::default());
    }

    /// A file written by this version (`populated(20 days)` saved at that time; see
    /// tests/fixtures/budget/README.md) must stay readable by later versions.
    #[test]
    fn recorded_format_1_file_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        fs::write(
            &path,
            include_bytes!("../../tests/fixtures/budget/budgets-format1.redb"),
        )
        .expect("copies");
        let now = 20 * 86_400;
        let (store, outcome) = Store::open(&path, at(now + 60)).expect("opens");
        assert_eq!(outcome, OpenOutcome::Opened);
        assert_eq!(store.saved_at().expect("reads"), Some(at(now)));
        let snap = store.load().expect("loads");
        assert_eq!(snap, populated(now).snapshot(at(now)));
        let mut b = budgets();
        assert_eq!(b.restore(&snap, at(now + 60)), 3);
        assert_eq!(remaining(&b, "api", now + 60), Some(63.0));
        assert_eq!(remaining(&b, "worker", now + 60), Some(-10.0));
        assert_eq!(remaining(&b, "batch", now + 60), Some(999.0));
        assert_eq!(
            b.status("api", at(now + 60)).map(|s| s.errors_total),
            Some(37)
        );
    }

    #[test]
    fn missing_directory_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("var/lib/sonde");
        let (store, outcome) = Store::open_in(&data_dir, at(0)).expect("opens");
        assert_eq!(outcome, OpenOutcome::Created);
        assert_eq!(store.path(), data_dir.join("budgets.redb"));
        assert!(data_dir.join("budgets.redb").is_file());
    }

    #[test]
    fn a_locked_store_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_held, _) = Store::open_in(dir.path(), at(0)).expect("opens");
        let err = Store::open_in(dir.path(), at(0)).expect_err("locked");
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn undecodable_record_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        {
            let (store, _) = Store::open(&path, at(0)).expect("opens");
            let txn = store.db.begin_write().expect("txn");
            {
                let mut t = txn.open_table(SERVICES).expect("table");
                t.insert("api", &[1u8, 5, 3][..]).expect("insert");
            }
            txn.commit().expect("commit");
        }
        let (_, outcome) = Store::open(&path, at(7)).expect("recovers");
        assert_eq!(
            outcome,
            OpenOutcome::Reset {
                moved_to: dir.path().join(format!("budgets.redb.corrupt-{}", T0 + 7)),
                reason: "service \"api\": bucket count exceeds the record".into()
            }
        );
    }

    #[test]
    fn records_round_trip_and_reject_damage() {
        let s = ServiceSnapshot {
            service: "api".into(),
            errors_total: 300,
            minutes: vec![
                (
                    28_333_000,
                    Counts {
                        errors: 1,
                        total: 2,
                        bad: 0,
                    },
                ),
                (
                    28_333_001,
                    Counts {
                        errors: 200,
                        total: 70_000,
                        bad: 3,
                    },
                ),
            ],
            hours: vec![(
                472_216,
                Counts {
                    errors: 201,
                    total: 70_002,
                    bad: 3,
                },
            )],
        };
        let mut buf = Vec::new();
        encode_service(&s, &mut buf);
        assert_eq!(
            buf,
            [
                1, 172, 2, // version, errors_total 300
                2, 200, 167, 193, 13, 1, 2, 0, // 2 minutes, first at 28333000
                1, 200, 1, 240, 162, 4, 3, // +1 minute
                1, 152, 233, 28, 201, 1, 242, 162, 4, 3, // 1 hour
            ]
        );
        assert_eq!(decode_service("api".into(), &buf), Ok(s));
        let err = |b: &[u8]| decode_service("x".into(), b).map(|_| ()).map_err(|e| e.1);
        assert_eq!(err(&buf[..buf.len() - 1]), Err("truncated"));
        assert_eq!(err(&[]), Err("empty record"));
        assert_eq!(err(&[2, 0, 0, 0]), Err("unknown record version"));
        assert_eq!(err(&[1, 0, 0, 0, 9]), Err("trailing bytes"));
        assert_eq!(
            err(&[1, 0, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err("buckets are not ascending")
        );
        assert_eq!(
            err(&[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ]),
            Err("varint overflows 64 bits")
        );
    }
}

#[cfg(test)]
mod damage_tests {
    use super::*;
    use crate::services::error_budget::{Config, parse_error_budgets_env};
    use crate::services::event::{ErrorEvent, LabelLimits, LabelValue};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_699_999_200 + secs)
    }

    /// Damage anywhere in the file either goes unnoticed with the data intact (a free page) or
    /// resets the store; it never fails the open and never returns altered budgets.
    #[test]
    fn damaged_pages_reset_or_read_back_intact() {
        let env = parse_error_budgets_env("api=100").expect("parses");
        let mut b = ErrorBudgets::new(&Config::default(), &env).expect("builds");
        let now = 20 * 86_400;
        for i in 0..300u64 {
            let e = ErrorEvent {
                service: LabelValue::new(&format!("svc{}", i % 7), LabelLimits::default())
                    .expect("valid"),
                kind: None,
                timestamp: Some(at(now - i * 600)),
            };
            b.record_error(&e, at(now));
        }
        let want = b.snapshot(at(now));
        let dir = tempfile::tempdir().expect("tempdir");
        let pristine = dir.path().join("pristine.redb");
        {
            let (store, _) = Store::open(&pristine, at(now)).expect("opens");
            store.save_snapshot(&want, at(now)).expect("saves");
        }
        let bytes = fs::read(&pristine).expect("reads");
        let (mut resets, mut intact) = (0, 0);
        let mut offsets: Vec<usize> = (0..bytes.len()).step_by(2048).collect();
        offsets.extend([8, 40, 100, 300, 600]);
        for off in offsets {
            let mut damaged = bytes.clone();
            for b in damaged.iter_mut().skip(off).take(48) {
                *b ^= 0xa5;
            }
            let path = dir.path().join(format!("d{off}")).join(FILE_NAME);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, &damaged).expect("writes");
            let (store, outcome) = Store::open(&path, at(now)).expect("never fails");
            match outcome {
                OpenOutcome::Opened => {
                    assert_eq!(store.load().expect("loads"), want, "offset {off}");
                    intact += 1;
                }
                OpenOutcome::Reset { .. } => {
                    assert_eq!(store.load().expect("loads"), Snapshot::default());
                    resets += 1;
                }
                OpenOutcome::Created => panic!("offset {off}: file vanished"),
            }
        }
        assert!(resets > 0 && intact > 0, "resets {resets}, intact {intact}");
    }
}
