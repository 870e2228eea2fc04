//! Consistent snapshots of a live database through SQLite itself.
//!
//! One read transaction on the source: `sqlite_dbpage` yields every page of the
//! snapshot in order (through the pager, so WAL frames are included and rollback
//! writers wait), and `PRAGMA quick_check` then runs inside the *same* transaction,
//! so it checks exactly the pages that were streamed. No temporary copy of the
//! database is written. Nothing is written to the source either: the connection
//! never writes, and does not checkpoint on close.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Context, Error, Result, show};
use crate::signals;
use crate::snapshot_copy::{self, SnapshotCopy};
use crate::store::metadata::Fingerprint;

pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How long to try for the write lock that lets the check overlap the copy. The
/// overlap saves about the check's time; under writers that hold the lock almost
/// continuously, waiting longer would cost more than it saves.
const GATE_WAIT: Duration = Duration::from_millis(250);

/// Integrity-check output kept in metadata (which has about 8 KiB in all); the
/// problem count is kept even when the text is cut.
const MAX_CHECK_TEXT: usize = 4000;
const CUT_MARKER: &str = "... problems in all: ";

/// The result of `quick_check` / `integrity_check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Ok,
    Failed(String),
}

impl Check {
    pub fn is_ok(&self) -> bool {
        matches!(self, Check::Ok)
    }
}

/// What a finished snapshot saw.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub page_size: u32,
    pub pages: u64,
    pub check: Check,
}

/// Refuse a path that exists but is not a regular file once symlinks are followed:
/// opening a FIFO blocks until a writer appears, and a device or socket is not a
/// database. Only `stat`s, so it never blocks; a missing path passes (the caller
/// decides what that means). `what` names the role: "database", "config file".
pub fn refuse_special_file(path: &Path, what: &str) -> Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() || meta.is_dir() => Ok(()),
        Ok(meta) => Err(Error::failed(format!(
            "{what} {} is not a regular file but {}; give the path of a file",
            show(path),
            file_kind(&meta)
        ))),
        Err(_) => Ok(()),
    }
}

fn file_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// Refuse what is not an SQLite database, with the message a user needs.
pub fn validate_database(path: &Path) -> Result<PathBuf> {
    refuse_special_file(path, "database")?;
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::failed(format!(
                "database {} does not exist",
                show(path)
            )));
        }
        Err(e) => return Err(e).context(|| format!("cannot access database {}", show(path))),
    };
    if meta.is_dir() {
        return Err(Error::failed(format!(
            "database path {} is a directory",
            show(path)
        )));
    }
    let mut header = [0u8; 16];
    let read = File::open(path)
        .and_then(|mut f| read_prefix(&mut f, &mut header))
        .context(|| format!("cannot read database {}", show(path)))?;
    if read == 0 {
        return Err(Error::failed(format!(
            "database {} is empty (0 bytes): nothing to back up",
            show(path)
        )));
    }
    if read < header.len() || &header != SQLITE_MAGIC {
        return Err(Error::failed(format!(
            "{} is not an SQLite database",
            show(path)
        )));
    }
    std::path::absolute(path).context(|| format!("cannot resolve {}", show(path)))
}

fn read_prefix(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// A cheap summary of the database's on-disk state: identity, size, times and
/// the header fields SQLite bumps on commit, for the file and its `-wal`.
/// Taken *before* a snapshot starts, so a commit racing the snapshot can only
/// cause one extra backup later, never a missed one.
pub fn fingerprint(path: &Path) -> Result<Fingerprint> {
    let mut text = String::new();
    let wal_has_frames = fs::metadata(sibling(path, "-wal")).is_ok_and(|m| m.len() > 0);
    // An absent or empty -wal adds nothing to the database file's content, and our
    // own open creates one: both must read as "no WAL", or every first open after a
    // writer's last close would look like a change.
    let parts: &[(&str, usize)] = if wal_has_frames {
        &[("", 100), ("-wal", 32), ("-shm", 48)]
    } else {
        &[("", 100)]
    };
    for &(suffix, header_len) in parts {
        let file_path = sibling(path, suffix);
        let mut file = match File::open(&file_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !suffix.is_empty() => {
                text.push_str(&format!("{suffix}:none;"));
                continue;
            }
            Err(e) => return Err(e).context(|| format!("cannot read {}", show(&file_path))),
        };
        let meta = file
            .metadata()
            .context(|| format!("cannot stat {}", show(&file_path)))?;
        let mut header = vec![0u8; header_len];
        let read = read_prefix(&mut file, &mut header)
            .context(|| format!("cannot read {}", show(&file_path)))?;
        header.truncate(read);
        // In -shm only the wal-index header (mxFrame, change counter) counts:
        // readers touch the rest, and its times.
        let stat = if suffix == "-shm" {
            String::new()
        } else {
            // Not ctime: SQLite fchowns -wal on every open when run as root.
            format!(
                "{}.{}.{}.{}.{}",
                meta.dev(),
                meta.ino(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec()
            )
        };
        text.push_str(&format!("{suffix}:{stat}.{};", hex(&header)));
    }
    Ok(Fingerprint(text))
}

/// `db-wal`, `db-shm`, `db-journal` beside `db`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An open source database, ready to snapshot.
pub struct Source {
    path: PathBuf,
    conn: Connection,
    busy_timeout: Duration,
}

impl Source {
    /// Open for reading through SQLite. Read-write mode (without ever writing) lets
    /// SQLite recover a hot journal left by a crashed writer; a read-only file falls
    /// back to a read-only connection.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Source> {
        let conn = connect(path, busy_timeout)?;
        Ok(Source {
            path: path.to_path_buf(),
            conn,
            busy_timeout,
        })
    }

    /// Stream every page of one consistent snapshot to `sink` and check that same
    /// snapshot with `PRAGMA quick_check`, concurrently when possible. Builds
    /// without `sqlite_dbpage` copy the snapshot into a temp file in `spill_dir`
    /// first (see `snapshot_copy`).
    pub fn stream(
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
        signals::check()?;
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
            let check = run_check(&self.conn, "quick_check")?;
            return Ok(SnapshotInfo {
                page_size,
                pages,
                check,
            });
        };
        let stop_checker = checker.get_interrupt_handle();
        thread::scope(|scope| {
            let checking = scope.spawn(move || {
                let _watch = InterruptOnSignal::new(&checker);
                let check = run_check(&checker, "quick_check");
                let _ = checker.execute_batch("ROLLBACK");
                check
            });
            let streamed = self.stream_pages(sink);
            if streamed.is_err() {
                stop_checker.interrupt();
            }
            let check = checking
                .join()
                .unwrap_or_else(|_| Err(Error::failed("integrity check thread panicked")));
            let pages = streamed?;
            Ok(SnapshotInfo {
                page_size,
                pages,
                check: check?,
            })
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
            run_check(&checker, "quick_check")?
        };
        drop(checker);
        let pages = copy.stream(page_size, sink)?;
        Ok(SnapshotInfo {
            page_size,
            pages,
            check,
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
                signals::check()?;
            }
        }
        Ok(pages)
    }

    /// Busy and locked become the message a user can act on.
    fn sqlite_error(&self, error: rusqlite::Error, context: &str) -> Error {
        if let Err(stopped) = signals::check() {
            return stopped;
        }
        match error.sqlite_error_code() {
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen)
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

/// Run `PRAGMA quick_check` or `integrity_check`; corruption is a result, not an error.
pub fn run_check(conn: &Connection, pragma: &str) -> Result<Check> {
    let lines: rusqlite::Result<Vec<String>> = conn
        .prepare(&format!("PRAGMA {pragma}"))
        .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(0))?.collect());
    match lines {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(Check::Ok),
        Ok(lines) => Ok(Check::Failed(summarize(&lines))),
        Err(e) => {
            signals::check()?;
            match e.sqlite_error_code() {
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) | None => {
                    Ok(Check::Failed(e.to_string()))
                }
                _ => Err(Error::Sqlite {
                    context: format!("{pragma} failed"),
                    source: e,
                }),
            }
        }
    }
}

/// The check's whole output, one problem per line (SQLite puts several lines in
/// one row), cut to fit the metadata.
fn summarize(rows: &[String]) -> String {
    let problems: Vec<&str> = rows
        .iter()
        .flat_map(|row| row.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("*** in database"))
        .collect();
    if problems.is_empty() {
        return "no output".into();
    }
    let mut text = String::new();
    for (i, line) in problems.iter().enumerate() {
        if text.len() + line.len() + 1 > MAX_CHECK_TEXT {
            text.push_str(&format!("{CUT_MARKER}{}", problems.len()));
            break;
        }
        if i > 0 {
            text.push('\n');
        }
        text.push_str(line);
    }
    text
}

/// One line for messages and logs: "66 problems, first: ..." (the whole text
/// goes into JSON output and `-v` logs).
pub fn one_line(detail: &str) -> String {
    let first = |line: &str| -> String {
        let mut cut: String = line.chars().take(200).collect();
        if cut.len() < line.len() {
            cut.push('…');
        }
        cut
    };
    let lines: Vec<&str> = detail.lines().collect();
    let count = lines
        .last()
        .and_then(|l| l.rsplit_once(CUT_MARKER))
        .and_then(|(_, n)| n.parse::<usize>().ok())
        .unwrap_or(lines.len());
    match lines.first() {
        None => "no output".into(),
        Some(line) if count <= 1 => first(line),
        Some(line) => format!("{count} problems, first: {}", first(line)),
    }
}

/// `PRAGMA integrity_check` on a finished database file (a restored or verified
/// copy), opened immutable so no `-wal`/`-shm` is created beside it.
pub fn integrity_check_file(path: &Path) -> Result<Check> {
    let uri = format!("file:{}?immutable=1", uri_escape(path));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&uri, flags)
        .context(|| format!("cannot open {}", show(path)))?;
    let _watch = InterruptOnSignal::new(&conn);
    let check = run_check(&conn, "integrity_check");
    signals::check()?;
    check
}

pub(crate) fn uri_escape(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|&b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Interrupts a long SQLite statement (integrity check of a large database) when
/// a termination signal arrives, so shutdown takes seconds, not minutes.
struct InterruptOnSignal {
    done: Arc<AtomicBool>,
    watcher: Option<thread::JoinHandle<()>>,
}

impl InterruptOnSignal {
    fn new(conn: &Connection) -> Self {
        let handle = conn.get_interrupt_handle();
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        let watcher = thread::spawn(move || {
            while !finished.load(Ordering::Relaxed) {
                if signals::pending().is_some() {
                    handle.interrupt();
                    return;
                }
                thread::park_timeout(Duration::from_millis(50));
            }
        });
        InterruptOnSignal {
            done,
            watcher: Some(watcher),
        }
    }
}

impl Drop for InterruptOnSignal {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            watcher.thread().unpark();
            let _ = watcher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_output_is_one_line_in_messages_and_whole_in_the_detail() {
        let rows = vec![
            "*** in database main ***\nPage 5: btreeInitPage() returns error code 11\nPage 6: bad"
                .to_string(),
            "row 3 missing from index i".to_string(),
        ];
        let detail = summarize(&rows);
        assert_eq!(detail.lines().count(), 3);
        assert_eq!(
            one_line(&detail),
            "3 problems, first: Page 5: btreeInitPage() returns error code 11"
        );
        let many: Vec<String> = (0..500)
            .map(|i| format!("problem {i} {}", "x".repeat(40)))
            .collect();
        let detail = summarize(&many);
        assert!(detail.len() <= MAX_CHECK_TEXT + 40);
        assert!(one_line(&detail).starts_with("500 problems, first: problem 0"));
        assert_eq!(
            one_line("database disk image is malformed"),
            "database disk image is malformed"
        );
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
