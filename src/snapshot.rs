//! Consistent snapshots of a live database through SQLite itself.
//!
//! One read transaction on the source: `sqlite_dbpage` yields every page of the
//! snapshot in order (through the pager, so WAL frames are included and rollback
//! writers wait), and `PRAGMA quick_check` runs on a second connection whose read
//! transaction sees the same snapshot (or, failing that, after the stream in the
//! *same* transaction), so it checks exactly the pages that were streamed. No
//! temporary copy of the database is written. Nothing is written to the source either: the connection
//! never writes, and does not checkpoint on close.

use std::cell::Cell;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Context, Error, Result, show};
use crate::signals;
use crate::snapshot_copy::{self, SnapshotCopy};
use crate::sqlite_file::{
    CheckKind, Integrity, InterruptOnSignal, read_prefix, run_checks, sibling,
};

/// How long to try for the write lock that lets the check overlap the copy. The
/// overlap saves about the check's time; under writers that hold the lock almost
/// continuously, waiting longer would cost more than it saves.
const GATE_WAIT: Duration = Duration::from_millis(250);

/// What a finished snapshot saw.
pub(crate) struct SnapshotInfo {
    pub page_size: u32,
    pub pages: u64,
    pub check: Check,
}

/// A snapshot's `quick_check`: its verdict, or still running on its own
/// connection, so that what the caller does with the streamed pages (the last
/// block's compression, the write) overlaps it. Dropped unfinished, it is
/// interrupted and waited for.
pub(crate) enum Check {
    Done(Verdict),
    Running(RunningCheck),
}

/// A check's verdict, and which check it is of.
pub(crate) type Verdict = (Integrity, CheckKind);

pub(crate) struct RunningCheck {
    thread: Option<thread::JoinHandle<Result<Verdict>>>,
    stop: rusqlite::InterruptHandle,
}

impl Check {
    /// The verdict, waiting for the check to end.
    pub(crate) fn wait(self) -> Result<Verdict> {
        match self {
            Check::Done(check) => Ok(check),
            Check::Running(mut running) => {
                match running.thread.take().map(thread::JoinHandle::join) {
                    Some(Ok(check)) => check,
                    _ => Err(Error::failed("integrity check thread panicked")),
                }
            }
        }
    }
}

impl Drop for RunningCheck {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.interrupt();
            let _ = thread.join();
        }
    }
}

/// An open source database, ready to snapshot.
pub(crate) struct Source {
    path: PathBuf,
    conn: Connection,
    busy_timeout: Duration,
    check: CheckKind,
}

impl Source {
    /// Open for reading through SQLite. Read-write mode (without ever writing) lets
    /// SQLite recover a hot journal left by a crashed writer; a read-only file falls
    /// back to a read-only connection.
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Source> {
        let conn = connect(path, busy_timeout)?;
        Ok(Source {
            path: path.to_path_buf(),
            conn,
            busy_timeout,
            check: CheckKind::QuickCheck,
        })
    }

    /// Check the snapshot with `kind` too once `quick_check` passed
    /// (`sqlite_file::run_checks`; `quick_check` alone unless told).
    pub(crate) fn checked_by(mut self, kind: CheckKind) -> Source {
        self.check = kind;
        self
    }

    /// Start a read transaction and end it: the errors a snapshot meets first
    /// (busy past the busy timeout, not a database, a directory SQLite cannot
    /// write) before anything is created for it.
    pub(crate) fn probe(&self) -> Result<()> {
        let result = self.begin(&self.conn).map(|_| ());
        let _ = self.conn.execute_batch("ROLLBACK");
        result
    }

    /// Stream every page of one consistent snapshot to `sink` and check that same
    /// snapshot with `PRAGMA quick_check`, concurrently when possible: the check
    /// may still be running when this returns (`Check::wait`). Builds
    /// without `sqlite_dbpage` copy the snapshot into a temp file in `spill_dir`
    /// first (see `snapshot_copy`).
    pub(crate) fn stream(
        &self,
        spill_dir: &Path,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<SnapshotInfo> {
        let _watch = InterruptOnSignal::new(&self.conn);
        let result = if snapshot_copy::page_stream_available() {
            self.stream_and_check(&mut sink)
        } else {
            self.copy_and_check(spill_dir, &mut sink)
        };
        // Ends the read transaction; harmless if BEGIN never happened.
        let _ = self.conn.execute_batch("ROLLBACK");
        signals::stop_if_requested()?;
        result
    }

    fn stream_and_check(&self, sink: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<SnapshotInfo> {
        // While the gate holds the write lock no commit can happen, so the two
        // read transactions started under it see the same snapshot (WAL and
        // rollback mode alike). Writers wait only for these two BEGINs.
        let gate = self.gate();
        let page_size = self.begin(&self.conn)?;
        let checker = gate.and_then(|gate| {
            let checker = connect(&self.path, self.busy_timeout)
                .ok()
                .filter(|checker| self.begin(checker).is_ok());
            let _ = gate.execute_batch("ROLLBACK");
            checker
        });
        let Some(checker) = checker else {
            tracing::debug!("checking after the copy (no concurrent snapshot)");
            let pages = self.stream_pages(sink)?;
            let check = run_checks(&self.conn, self.check)?;
            return Ok(SnapshotInfo {
                page_size,
                pages,
                check: Check::Done(check),
            });
        };
        let stop = checker.get_interrupt_handle();
        let kind = self.check;
        let check = RunningCheck {
            thread: Some(thread::spawn(move || {
                let _watch = InterruptOnSignal::new(&checker);
                let check = run_checks(&checker, kind);
                let _ = checker.execute_batch("ROLLBACK");
                check
            })),
            stop,
        };
        // An error drops `check`: interrupted and waited for.
        let pages = self.stream_pages(sink)?;
        Ok(SnapshotInfo {
            page_size,
            pages,
            check: Check::Running(check),
        })
    }

    /// The path without `sqlite_dbpage`: copy the snapshot through the backup API,
    /// end the read transaction (writers need not wait for the rest), check the
    /// copy, stream it.
    fn copy_and_check(
        &self,
        spill_dir: &Path,
        sink: &mut impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<SnapshotInfo> {
        snapshot_copy::warn_once(spill_dir);
        let page_size = self.begin(&self.conn)?;
        let copy = SnapshotCopy::make(&self.conn, &self.path, spill_dir).map_err(|e| match e {
            Error::Sqlite { context, source } => self.sqlite_error(source, &context),
            other => other,
        })?;
        let _ = self.conn.execute_batch("ROLLBACK");
        let checker = copy.open()?;
        let check = {
            let _watch = InterruptOnSignal::new(&checker);
            run_checks(&checker, self.check)?
        };
        drop(checker);
        let pages = copy.stream(page_size, sink)?;
        Ok(SnapshotInfo {
            page_size,
            pages,
            check: Check::Done(check),
        })
    }

    /// Take the database's write lock briefly, if it can be had within `GATE_WAIT`;
    /// `None` (check after the copy instead) on a read-only file or a busy writer.
    fn gate(&self) -> Option<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let gate = Connection::open_with_flags(&self.path, flags).ok()?;
        gate.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .ok()?;
        gate.busy_timeout(self.busy_timeout.min(GATE_WAIT)).ok()?;
        gate.execute_batch("BEGIN IMMEDIATE").ok()?;
        Some(gate)
    }

    /// Start a read transaction on `conn` and fix its snapshot by reading.
    fn begin(&self, conn: &Connection) -> Result<u32> {
        let what = || format!("cannot read database {}", show(&self.path));
        conn.execute_batch("BEGIN")
            .map_err(|e| self.sqlite_error(e, &what()))?;
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(|e| self.sqlite_error(e, &what()))?;
        conn.query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(|e| self.sqlite_error(e, &what()))
    }

    fn stream_pages(&self, sink: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        let what = || format!("cannot read database {}", show(&self.path));
        let mut statement = self
            .conn
            .prepare("SELECT data FROM sqlite_dbpage ORDER BY pgno")
            .map_err(|e| self.sqlite_error(e, &what()))?;
        let mut rows = statement
            .query([])
            .map_err(|e| self.sqlite_error(e, &what()))?;
        let mut pages = 0u64;
        while let Some(row) = rows.next().map_err(|e| self.sqlite_error(e, &what()))? {
            let page = row
                .get_ref(0)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(|e| self.sqlite_error(e, &what()))?;
            sink(page)?;
            pages += 1;
            if pages.is_multiple_of(256) {
                signals::stop_if_requested()?;
            }
        }
        Ok(pages)
    }

    /// Busy and locked become the message a user can act on.
    fn sqlite_error(&self, error: rusqlite::Error, context: &str) -> Error {
        if let Err(stopped) = signals::stop_if_requested() {
            return stopped;
        }
        match error.sqlite_error_code() {
            // Without root, a hot journal in a directory of mode 555 fails as
            // "disk I/O error" (T28 F9), not as read-only.
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure)
                if let Some(why) = needs_directory_write(&self.path) =>
            {
                Error::failed(why)
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::failed(format!(
                "database {} is locked by another process (waited {} s, busy_timeout_seconds)",
                show(&self.path),
                self.busy_timeout.as_secs()
            )),
            Some(ErrorCode::NotADatabase) => {
                Error::failed(format!("{} is not an SQLite database", show(&self.path)))
            }
            _ => Error::Sqlite {
                context: context.to_string(),
                source: error,
            },
        }
    }
}

/// SQLite writes beside a database even to read it in two cases: to roll back the
/// hot journal a crashed writer left (`-journal`), and to create a WAL database's
/// `-shm`. When the directory is not writable, its "attempt to write a readonly
/// database" or "unable to open database file" hides that; say what is needed.
fn needs_directory_write(path: &Path) -> Option<String> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok() {
        return None;
    }
    let journal = fs::metadata(sibling(path, "-journal")).is_ok_and(|m| m.len() > 0);
    let mut header = [0u8; 20];
    let wal = File::open(path)
        .and_then(|mut f| read_prefix(&mut f, &mut header))
        .is_ok_and(|n| n == header.len() && header[18] == 2 && header[19] == 2);
    let why = match (journal, wal) {
        (true, _) => "to roll back the hot journal (-journal) a crashed writer left",
        (false, true) => "for the -shm file of a WAL database",
        (false, false) => return None,
    };
    Some(format!(
        "cannot read database {}: SQLite needs write access to the database's directory {} {why}; \
         run where that directory is writable, or copy the database with its -journal/-wal files somewhere writable",
        show(path),
        show(dir)
    ))
}

/// A connection that never writes and never checkpoints on close, waiting for
/// writers up to `busy_timeout` but giving up at once on a signal.
pub(crate) fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = match Connection::open_with_flags(path, flags) {
        Ok(conn) => conn,
        Err(e)
            if e.sqlite_error_code() == Some(ErrorCode::ReadOnly)
                || e.sqlite_error_code() == Some(ErrorCode::CannotOpen) =>
        {
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .context(|| format!("cannot open database {}", show(path)))?
        }
        Err(e) => return Err(e).context(|| format!("cannot open database {}", show(path))),
    };
    // Closing the last connection of a WAL database would otherwise checkpoint it.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .context(|| format!("cannot configure connection to {}", show(path)))?;
    let started = Cell::new(Instant::now());
    conn.busy_handler(Some(move |attempt: i32| {
        if attempt == 0 {
            started.set(Instant::now());
        }
        if signals::pending().is_some() || started.get().elapsed() >= busy_timeout {
            return false;
        }
        thread::sleep(Duration::from_millis(if attempt < 10 { 2 } else { 20 }));
        true
    }))
    .context(|| "cannot install busy handler")?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(rows: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch(&format!(
                "CREATE TABLE t(x NOT NULL); WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL \
                 SELECT v + 1 FROM n WHERE v < {rows}) INSERT INTO t SELECT randomblob(200) FROM n;"
            ))
            .unwrap();
        (dir, db)
    }

    /// The check outlives `stream` (it overlaps the caller's work) and gives
    /// its verdict when waited for; one dropped unwaited is stopped and its read
    /// transaction ended, so a writer is not held up by it.
    #[test]
    fn the_check_runs_past_the_stream_and_a_dropped_one_holds_no_lock() {
        let (dir, db) = ledger(20_000);
        let source = Source::open(&db, Duration::from_secs(5)).unwrap();
        let mut bytes = 0;
        let info = source
            .stream(dir.path(), |page| {
                bytes += page.len();
                Ok(())
            })
            .unwrap();
        assert_eq!(bytes as u64, info.pages * u64::from(info.page_size));
        assert!(matches!(info.check, Check::Running(_)));
        assert_eq!(
            info.check.wait().unwrap(),
            (Integrity::Ok, CheckKind::QuickCheck)
        );

        let info = source.stream(dir.path(), |_| Ok(())).unwrap();
        drop(info);
        // Rollback-journal mode: a commit needs every reader's lock gone.
        let writer = Connection::open(&db).unwrap();
        writer.busy_timeout(Duration::ZERO).unwrap();
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
    }
    /// The build must include the page-stream virtual table (.cargo/config.toml).
    #[test]
    fn the_bundled_sqlite_has_sqlite_dbpage() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let pages: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_dbpage", [], |r| r.get(0))
            .unwrap();
        assert!(pages >= 2);
    }
}
