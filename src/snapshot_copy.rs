//! The snapshot path for builds whose SQLite lacks `sqlite_dbpage` (`cargo install
//! --git`, `cargo install dbbackup`, a workspace that vendors the crate: none of them
//! read `.cargo/config.toml`). SQLite's online backup API copies the snapshot of an
//! open read transaction into a temporary file beside the backups; that copy is
//! checked and streamed like the page stream. Slower (the database is written once
//! more, and needs its size in free space), but every build makes backups.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Context, Error, Result, show};
use crate::signals;
use crate::sqlite_file::{sibling, uri_escape};
use crate::store::{TempFile, copy_mode};

/// Set to `1` to use this path even when `sqlite_dbpage` exists (tests and
/// comparisons); `0` or anything else leaves the choice to the build.
pub(crate) const FORCE_ENV: &str = "DBBACKUP_FORCE_BACKUP_API";

/// Pages per backup step: between steps a signal is noticed.
const STEP_PAGES: i32 = 1024;

/// Whether this build's SQLite has the page-stream virtual table (and it is not
/// switched off by `FORCE_ENV`). Asked once, of an in-memory database.
pub(crate) fn page_stream_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if forced() {
            return false;
        }
        Connection::open_in_memory()
            .and_then(|conn| conn.prepare("SELECT data FROM sqlite_dbpage").map(|_| ()))
            .is_ok()
    })
}

fn forced() -> bool {
    std::env::var_os(FORCE_ENV).is_some_and(|v| v == "1")
}

/// Say once per process which path is used and how to get the faster one.
pub(crate) fn warn_once(dir: &Path) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    let why = if forced() {
        format!("{FORCE_ENV}=1 (as if this build's SQLite lacked sqlite_dbpage)")
    } else {
        "this build's SQLite lacks sqlite_dbpage".to_string()
    };
    tracing::warn!(
        "{why}: copying through SQLite's backup API via a temporary file in {} (slower, needs the database's size in free space); for the direct path build from the repository (cargo install --path .) or set LIBSQLITE3_FLAGS=SQLITE_ENABLE_DBPAGE_VTAB when building",
        show(dir)
    );
}

/// A finished copy of one snapshot, removed when dropped.
pub(crate) struct SnapshotCopy {
    temp: TempFile,
}

impl SnapshotCopy {
    /// Copy the snapshot of `source`'s open read transaction into a new temp file in
    /// `dir`. The transaction stays open throughout, so every step reads the same
    /// snapshot (SQLite restarts a backup only when its source transaction ends).
    pub(crate) fn make(source: &Connection, db: &Path, dir: &Path) -> Result<SnapshotCopy> {
        let temp = TempFile::create_in(dir, copy_mode(db))?;
        let mut dest = Connection::open_with_flags(
            temp.path(),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .context(|| format!("cannot open temporary copy {}", show(temp.path())))?;
        // A scratch file: no journal, no fsync; it is checked before it is used.
        dest.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            .context(|| format!("cannot configure temporary copy {}", show(temp.path())))?;
        {
            let backup = Backup::new(source, &mut dest)
                .context(|| format!("cannot start copying {}", show(db)))?;
            loop {
                signals::stop_if_requested()?;
                match backup
                    .step(STEP_PAGES)
                    .context(|| format!("cannot copy {}", show(db)))?
                {
                    StepResult::Done => break,
                    StepResult::More => {}
                    // Not expected while our read transaction is open; wait and retry.
                    _ => thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        dest.close()
            .map_err(|(_, e)| e)
            .context(|| format!("cannot finish temporary copy {}", show(temp.path())))?;
        Ok(SnapshotCopy { temp })
    }

    /// A read-only connection to the copy, for its check. Immutable: the copy's
    /// header may say WAL (copied from the source), and no -wal or -shm may appear.
    pub(crate) fn open(&self) -> Result<Connection> {
        let uri = format!("file:{}?immutable=1", uri_escape(self.temp.path()));
        Connection::open_with_flags(
            &uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .context(|| format!("cannot open temporary copy {}", show(self.temp.path())))
    }

    /// Feed the copy to `sink` page by page; returns the number of pages.
    pub(crate) fn stream(
        &self,
        page_size: u32,
        sink: &mut impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let path = self.temp.path();
        let what = || format!("cannot read temporary copy {}", show(path));
        let mut file = File::open(path).context(what)?;
        let mut page = vec![0u8; page_size as usize];
        let mut pages = 0u64;
        loop {
            let mut filled = 0;
            while filled < page.len() {
                match file.read(&mut page[filled..]).context(what)? {
                    0 => break,
                    n => filled += n,
                }
            }
            if filled == 0 {
                return Ok(pages);
            }
            if filled < page.len() {
                return Err(Error::failed(format!(
                    "temporary copy {} ends inside a page",
                    show(path)
                )));
            }
            sink(&page)?;
            pages += 1;
            if pages.is_multiple_of(256) {
                signals::stop_if_requested()?;
            }
        }
    }
}

impl Drop for SnapshotCopy {
    fn drop(&mut self) {
        // Nothing should create these (no journal, immutable reads); never leave one.
        for suffix in ["-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(sibling(self.temp.path(), suffix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_copy_holds_the_snapshot_its_transaction_read_not_later_writes() {
        let (data, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let db = data.path().join("r.db");
        let writer = Connection::open(&db).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t(x); \
                 WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 5000) \
                 INSERT INTO t SELECT v FROM n;",
            )
            .unwrap();
        let source = Connection::open(&db).unwrap();
        // The read transaction's first read fixes its snapshot.
        source.execute_batch("BEGIN").unwrap();
        let seen: i64 = source
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 5000);
        // Committed after the snapshot began: not in the copy.
        writer.execute("INSERT INTO t VALUES (-1)", []).unwrap();
        let copy = SnapshotCopy::make(&source, &db, scratch.path()).unwrap();
        let (rows, sum): (i64, i64) = copy
            .open()
            .unwrap()
            .query_row("SELECT count(*), sum(x) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((rows, sum), (5000, 5000 * 5001 / 2));
        let page_size: u32 = source
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let mut streamed = 0u64;
        let pages = copy
            .stream(page_size, &mut |page| {
                streamed += page.len() as u64;
                Ok(())
            })
            .unwrap();
        assert!(pages > 1, "{pages} pages");
        assert_eq!(streamed, pages * u64::from(page_size));
        drop(copy);
        assert!(
            names_in(scratch.path()).is_empty(),
            "{:?}",
            names_in(scratch.path())
        );
    }
}
