//! The guard: a write transaction held on a database from before its
//! pre-restore copy is taken until after the restored copy is renamed over it,
//! so that no commit can land between the two and be lost.
//!
//! `BEGIN IMMEDIATE` takes the RESERVED lock (rollback journal) or the WAL write
//! lock: other writers wait or fail with SQLITE_BUSY, while readers, the
//! pre-restore snapshot's own connection among them, still read in both modes.
//! The connection never checkpoints on close (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`):
//! closed after the rename, a checkpoint would write into, and delete by name the
//! `-wal` and `-shm` of, the restored database.
//!
//! Just before the rename the guard takes a WAL database out of WAL mode
//! ([`Guard::leave_wal`]). A process that opens the old file in the instant
//! between the last check for users and the rename is then a rollback-mode
//! writer, which SQLite itself refuses to commit to a replaced file
//! (SQLITE_READONLY_DBMOVED). In WAL mode nothing refuses it: waiting on the
//! guard's write lock, it would commit into the replaced file's unlinked `-wal`
//! once the guard is gone (reported "ok", lost), or, opening after the old
//! `-wal` was removed, into a new `-wal` that is then replayed onto the
//! restored pages.
//!
//! POSIX locks belong to the process, and closing *any* descriptor of a file
//! drops them all: while a guard is held nothing may open and close the target or
//! its `-shm` with a plain descriptor. The guard keeps its own descriptors for the
//! lock probes, closed only after the connection (field order).

use std::fs::{self, File};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use crate::error::{Context, Error, Result, show};
use crate::snapshot;
use crate::sqlite_file::sibling;

pub(super) struct Guard {
    conn: Connection,
    db_file: File,
    shm_file: Option<File>,
}

/// What became of the database while the guard took it out of WAL mode.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Left {
    /// In rollback-journal mode now (or already), unchanged since the copy.
    Unchanged,
    /// Still in WAL mode and unchanged: another process has it open.
    InUse,
    /// Another process committed, or is committing, in the instant the write
    /// lock was let go: the pre-restore copy may no longer hold everything.
    Written,
}

impl Guard {
    /// `Ok(None)` when SQLite cannot write the file at all (read-only, damaged):
    /// no writer can commit to it either.
    pub(super) fn take(target: &Path, busy_timeout: Duration) -> Result<Option<Guard>> {
        let db_file = File::open(target).context(|| format!("cannot read {}", show(target)))?;
        let conn = snapshot::connect(target, busy_timeout)?;
        // Best effort: folds the WAL into the file left behind if we are killed
        // after removing the -wal; the pre-restore copy holds it anyway.
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            if is_busy(&e) {
                crate::signals::stop_if_requested()?;
                return Err(in_use_by_writer(target, busy_timeout));
            }
            tracing::warn!("cannot lock {} against writers: {e}", show(target));
            return Ok(None);
        }
        let shm_file = File::open(sibling(target, "-shm")).ok();
        Ok(Some(Guard {
            conn,
            db_file,
            shm_file,
        }))
    }

    /// Take a WAL database out of WAL mode, keeping writers out again after:
    /// see the module's documentation. SQLite checkpoints and deletes the
    /// `-wal` and `-shm` on the way, and switches only when no other process
    /// has the database open. The write lock must be let go for the switch;
    /// `PRAGMA data_version` tells whether anyone committed meanwhile.
    pub(super) fn leave_wal(&self, target: &Path) -> Result<Left> {
        let sqlite = |e: rusqlite::Error| Error::Sqlite {
            context: format!("cannot take {} out of WAL mode", show(target)),
            source: e,
        };
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(Left::Unchanged);
        }
        let before = self.data_version().map_err(sqlite)?;
        self.conn.execute_batch("ROLLBACK").map_err(sqlite)?;
        let left = self
            .conn
            .query_row("PRAGMA journal_mode=DELETE", [], |row| {
                row.get::<_, String>(0)
            })
            .is_ok_and(|mode| mode.eq_ignore_ascii_case("delete"));
        let relocked = self.conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = &relocked
            && !is_busy(e)
        {
            if left {
                self.back_to_wal(target);
            }
            return Err(sqlite(relocked.unwrap_err()));
        }
        // Busy: a writer took the lock in that instant.
        if relocked.is_err() || self.data_version().map_err(sqlite)? != before {
            if left {
                self.back_to_wal(target);
            }
            return Ok(Left::Written);
        }
        Ok(if left { Left::Unchanged } else { Left::InUse })
    }

    /// Undo [`Guard::leave_wal`] when the database stays in place after all;
    /// best effort, said when it fails. Leaves the write lock let go.
    pub(super) fn back_to_wal(&self, target: &Path) {
        let _ = self.conn.execute_batch("ROLLBACK");
        let back = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0));
        if !matches!(&back, Ok(mode) if mode.eq_ignore_ascii_case("wal")) {
            tracing::warn!(
                "{} is left in rollback-journal mode (it was in WAL mode; its content is unchanged): once nothing uses it, run: sqlite3 {} 'PRAGMA journal_mode=WAL'",
                show(target),
                show(target)
            );
        }
    }

    fn data_version(&self) -> rusqlite::Result<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
    }

    /// A process on this host, other than us, with the file the guard locks
    /// (replaced by now) still open.
    pub(super) fn replaced_file_user(&self) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        let replaced = self.db_file.metadata().ok()?;
        // Follows each descriptor to its inode, even an unlinked one.
        super::process_with_open(|fd| {
            fs::metadata(fd).is_ok_and(|m| m.dev() == replaced.dev() && m.ino() == replaced.ino())
        })
    }

    /// `in_use` through the guard's own descriptors.
    pub(super) fn in_use(&self, target: &Path) -> Option<String> {
        super::lock_user(Some(&self.db_file), self.shm_file.as_ref())
            .or_else(|| super::open_user(target))
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn in_use_by_writer(target: &Path, busy_timeout: Duration) -> Error {
    Error::failed(format!(
        "database {} is in use by a writer (still locked after the busy timeout of {} s); stop the writer before restoring; nothing was changed",
        show(target),
        busy_timeout.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(2);

    fn wal_db(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE w (id INTEGER PRIMARY KEY); INSERT INTO w VALUES (1);")
            .unwrap();
    }

    fn journal_mode(path: &Path) -> String {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap()
    }

    /// The race the guard closes: a writer that opens the database after the
    /// last check for users and before the rename. Its commit must fail, not
    /// land in the replaced file (in WAL mode it would, and say so).
    #[test]
    fn a_writer_that_opened_the_replaced_file_cannot_commit_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let (target, restored) = (dir.path().join("r.db"), dir.path().join("restored.db"));
        wal_db(&target);
        wal_db(&restored);
        let guard = Guard::take(&target, WAIT).unwrap().unwrap();
        assert_eq!(guard.leave_wal(&target).unwrap(), Left::Unchanged);
        assert!(!sibling(&target, "-wal").exists() && !sibling(&target, "-shm").exists());
        // The late writer reads the old file...
        let late = Connection::open(&target).unwrap();
        late.busy_timeout(WAIT).unwrap();
        let seen: i64 = late
            .query_row("SELECT count(*) FROM w", [], |row| row.get(0))
            .unwrap();
        assert_eq!(seen, 1);
        // ...which is replaced, and then the guard lets go.
        fs::rename(&restored, &target).unwrap();
        drop(guard);
        let commit = late.execute("INSERT INTO w VALUES (2)", []);
        assert_eq!(
            commit.unwrap_err().sqlite_error_code(),
            Some(ErrorCode::ReadOnly),
            "a commit to the replaced file is refused"
        );
        assert_eq!(
            journal_mode(&target),
            "wal",
            "the restored file keeps its mode"
        );
    }

    #[test]
    fn a_database_another_process_has_open_stays_in_wal_mode_and_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.db");
        wal_db(&target);
        let guard = Guard::take(&target, WAIT).unwrap().unwrap();
        // Another connection holding the database open (in WAL mode, a lock
        // on the database file for as long as it is open).
        let reader = Connection::open(&target).unwrap();
        reader
            .query_row("SELECT count(*) FROM w", [], |row| row.get::<_, i64>(0))
            .unwrap();
        assert_eq!(guard.leave_wal(&target).unwrap(), Left::InUse);
        drop(guard);
        drop(reader);
        assert_eq!(journal_mode(&target), "wal");
    }

    #[test]
    fn going_back_to_wal_mode_keeps_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.db");
        wal_db(&target);
        let guard = Guard::take(&target, WAIT).unwrap().unwrap();
        assert_eq!(guard.leave_wal(&target).unwrap(), Left::Unchanged);
        assert_eq!(journal_mode(&target), "delete");
        guard.back_to_wal(&target);
        drop(guard);
        assert_eq!(journal_mode(&target), "wal");
        let rows: i64 = Connection::open(&target)
            .unwrap()
            .query_row("SELECT count(*) FROM w", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }
}
