//! Facts about an SQLite file on disk: is it a database, what is its state
//! (fingerprint), is it intact (`integrity_check`). No snapshotting here.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Context, Error, Result, show};
use crate::signals;
use serde::{Deserialize, Serialize};

pub(crate) mod schema;

pub(crate) const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Integrity-check output kept in metadata (which has about 8 KiB in all); the
/// problem count is kept even when the text is cut.
const MAX_CHECK_TEXT: usize = 4000;
const CUT_MARKER: &str = "... problems in all: ";

/// The result of `quick_check` / `integrity_check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Integrity {
    Ok,
    Failed(String),
}

/// Which of SQLite's checks ran: `quick_check` (every page and row, not whether
/// each index agrees with its table) or the whole `integrity_check`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    #[default]
    QuickCheck,
    IntegrityCheck,
}

impl CheckKind {
    /// The PRAGMA's name, as messages say it.
    pub fn pragma(self) -> &'static str {
        match self {
            CheckKind::QuickCheck => "quick_check",
            CheckKind::IntegrityCheck => "integrity_check",
        }
    }

    /// `quick_check`, which metadata leaves unsaid (as all backups before
    /// the kind was recorded ran it).
    pub fn is_quick(&self) -> bool {
        *self == CheckKind::QuickCheck
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.pragma())
    }
}

/// Refuse a path that exists but is not a regular file once symlinks are followed:
/// opening a FIFO blocks until a writer appears, and a device or socket is not a
/// database. Only `stat`s, so it never blocks; a missing path passes (the caller
/// decides what that means). `what` names the role: "database", "config file".
pub(crate) fn refuse_special_file(path: &Path, what: &str) -> Result<()> {
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
pub(crate) fn validate_database(path: &Path) -> Result<PathBuf> {
    #[cfg(test)]
    calls::VALIDATIONS.with(|n| n.set(n.get() + 1));
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
    match header(path).context(|| format!("cannot read database {}", show(path)))? {
        Header::Empty => {
            return Err(Error::failed(format!(
                "database {} is empty (0 bytes): nothing to back up",
                show(path)
            )));
        }
        Header::Other => {
            return Err(Error::failed(format!(
                "{} is not an SQLite database",
                show(path)
            )));
        }
        Header::Sqlite => {}
    }
    std::path::absolute(path).context(|| format!("cannot resolve {}", show(path)))
}

/// What a file starts with, from its first 16 bytes (a damaged database still
/// starts with SQLite's header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    Empty,
    Sqlite,
    Other,
}

/// The file's [`Header`]; a cheap read. Opens and closes a descriptor, so never
/// while this process holds SQLite locks on the file (POSIX drops them).
pub(crate) fn header(path: &Path) -> io::Result<Header> {
    let mut header = [0u8; 16];
    let read = read_prefix(&mut File::open(path)?, &mut header)?;
    Ok(match read {
        0 => Header::Empty,
        _ if &header == SQLITE_MAGIC => Header::Sqlite,
        _ => Header::Other,
    })
}

/// Bytes of a database's free pages from its header (the first 100 bytes):
/// the freelist's page count (offset 36) times the page size (offset 16; 1
/// means 65536).
pub(crate) fn free_bytes(header: &[u8; 100]) -> u64 {
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        size => u64::from(size),
    };
    let free_pages = u32::from_be_bytes([header[36], header[37], header[38], header[39]]);
    u64::from(free_pages) * page_size
}

pub(crate) fn read_prefix(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// What the source looked like when the snapshot began: if it looks the same
/// later, the database is unchanged and a new backup would be a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(pub String);

/// A cheap summary of the database's on-disk state: identity, size, times and
/// the header fields SQLite bumps on commit, for the file and its `-wal`.
/// Taken *before* a snapshot starts, so a commit racing the snapshot can only
/// cause one extra backup later, never a missed one.
///
/// A database file changed within its filesystem's timestamp granularity of
/// now could change again with every field the same (a WAL checkpoint leaves
/// the header as it is; Lustre keeps whole seconds): it is waited for, up to
/// [`MAX_SETTLE`], and a fingerprint still taken too soon matches no other.
pub(crate) fn fingerprint(path: &Path) -> Result<Fingerprint> {
    #[cfg(test)]
    calls::FINGERPRINTS.with(|n| n.set(n.get() + 1));
    settle(path);
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
        let Stamp { meta, header } = match Stamp::read(&file_path, header_len) {
            Ok(stamp) => stamp,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !suffix.is_empty() => {
                text.push_str(&format!("{suffix}:none;"));
                continue;
            }
            Err(e) => return Err(e).context(|| format!("cannot read {}", show(&file_path))),
        };
        // In -shm only the wal-index header (mxFrame, change counter) counts:
        // readers touch the rest, and its times.
        let stat = match suffix {
            "-shm" => String::new(),
            // Its ctime too: `touch -d` and `cp -p` set the mtime back, never
            // the ctime (a WAL database's header does not change on commit).
            "" => format!(
                "{}.{}.{}.{}.{}.{}.{}{}",
                meta.dev(),
                meta.ino(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
                match unsettled_for(&meta) {
                    Some(_) => format!(".unsettled-{}", unique_now()),
                    None => String::new(),
                }
            ),
            // Not the -wal's ctime: SQLite fchowns it on every open as root.
            _ => format!(
                "{}.{}.{}.{}.{}",
                meta.dev(),
                meta.ino(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec()
            ),
        };
        text.push_str(&format!("{suffix}:{stat}.{};", hex(&header)));
    }
    Ok(Fingerprint(text))
}

/// What stat and the first bytes of one file say: what [`fingerprint`] and
/// [`written`] are made of.
struct Stamp {
    meta: fs::Metadata,
    header: Vec<u8>,
}

impl Stamp {
    fn read(path: &Path, header_len: usize) -> io::Result<Stamp> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let mut header = vec![0u8; header_len];
        let read = read_prefix(&mut file, &mut header)?;
        header.truncate(read);
        Ok(Stamp { meta, header })
    }
}

/// What of a database file only a write changes (a rename changes its ctime):
/// identity, size, mtime and header, once settled, with no WAL frames beside
/// it. Equal before and after a rename, nothing was written in between.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Written {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    header: Vec<u8>,
}

/// [`Written`] of `path`; `None` while its last change is unsettled (after
/// waiting up to [`MAX_SETTLE`]), with WAL frames beside it, or unreadable.
pub(crate) fn written(path: &Path) -> Option<Written> {
    settle(path);
    if fs::metadata(sibling(path, "-wal")).is_ok_and(|m| m.len() > 0) {
        return None;
    }
    let Stamp { meta, header } = Stamp::read(path, 100).ok()?;
    if unsettled_for(&meta).is_some() {
        return None;
    }
    Some(Written {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        header,
    })
}

/// The longest a fingerprint waits for a database file's last change to
/// settle: a file changed this recently is being written (it is changed).
const MAX_SETTLE: Duration = Duration::from_secs(2);

/// Wait until `path`'s last change is settled, when that is at most
/// [`MAX_SETTLE`] away: times further ahead are another clock's (a node or a
/// file server running fast), for which waiting does not help, only costs.
fn settle(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && let Some(wait) = unsettled_for(&meta).filter(|wait| *wait <= MAX_SETTLE)
    {
        thread::sleep(wait);
    }
}

/// How long until a change to the file made now would show in its times:
/// `None` once its last change is older than the filesystem's granularity.
/// Times with no fraction of a second are taken for a filesystem that keeps
/// whole seconds (Lustre, many NFS exports; FAT two), others for a clock
/// tick's.
fn unsettled_for(meta: &fs::Metadata) -> Option<Duration> {
    let granularity = if meta.mtime_nsec() == 0 && meta.ctime_nsec() == 0 {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(20)
    };
    let last = std::cmp::max(
        (meta.mtime(), meta.mtime_nsec()),
        (meta.ctime(), meta.ctime_nsec()),
    );
    let last = std::time::UNIX_EPOCH
        + Duration::new(
            u64::try_from(last.0).unwrap_or(0),
            u32::try_from(last.1).unwrap_or(0),
        );
    let settled = last + granularity;
    settled
        .duration_since(std::time::SystemTime::now())
        .ok()
        .filter(|wait| !wait.is_zero())
}

/// Nanoseconds since the epoch: what makes an unsettled fingerprint its own.
fn unique_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `db-wal`, `db-shm`, `db-journal` beside `db`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run `PRAGMA quick_check` or `integrity_check`; corruption is a result, not an error.
pub(crate) fn run_check(conn: &Connection, kind: CheckKind) -> Result<Integrity> {
    let pragma = kind.pragma();
    let lines: rusqlite::Result<Vec<String>> = conn
        .prepare(&format!("PRAGMA {pragma}"))
        .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(0))?.collect());
    match lines {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(Integrity::Ok),
        Ok(lines) => Ok(Integrity::Failed(summarize(&lines))),
        Err(e) => {
            signals::stop_if_requested()?;
            match e.sqlite_error_code() {
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) | None => {
                    Ok(Integrity::Failed(e.to_string()))
                }
                _ => Err(Error::Sqlite {
                    context: format!("{pragma} failed"),
                    source: e,
                }),
            }
        }
    }
}

/// `quick_check`, and when `wanted` is the whole `integrity_check` and
/// `quick_check` passed, that too (on the same connection, so the same
/// snapshot): the verdict and the check it is of. `quick_check` first, as
/// its report of a damaged file lists problems where `integrity_check` may
/// stop at the first corrupt page.
pub(crate) fn run_checks(conn: &Connection, wanted: CheckKind) -> Result<(Integrity, CheckKind)> {
    let quick = run_check(conn, CheckKind::QuickCheck)?;
    if quick != Integrity::Ok || wanted == CheckKind::QuickCheck {
        return Ok((quick, CheckKind::QuickCheck));
    }
    Ok((run_check(conn, wanted)?, wanted))
}

/// The check's whole output, one problem per line (SQLite puts several lines in
/// one row), cut to fit the metadata.
fn summarize(rows: &[String]) -> String {
    let problems: Vec<&str> = rows
        .iter()
        .flat_map(|row| row.lines())
        .map(str::trim)
        // integrity_check's report rows, not an error: its section headers are no problem.
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
pub(crate) fn one_line(detail: &str) -> String {
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
pub(crate) fn integrity_check_file(path: &Path) -> Result<Integrity> {
    check_file(path, CheckKind::IntegrityCheck)
}

/// `PRAGMA quick_check` or `integrity_check` (`kind`) on a finished database
/// file, as [`integrity_check_file`].
pub(crate) fn check_file(path: &Path, kind: CheckKind) -> Result<Integrity> {
    let uri = format!("file:{}?immutable=1", uri_escape(path));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&uri, flags)
        .context(|| format!("cannot open {}", show(path)))?;
    check_on(&conn, kind)
}

/// `PRAGMA quick_check` or `integrity_check` (`kind`) on an open connection,
/// interrupted by a termination signal, which stops the run.
pub(crate) fn check_on(conn: &Connection, kind: CheckKind) -> Result<Integrity> {
    let _watch = InterruptOnSignal::new(conn);
    let check = run_check(conn, kind);
    signals::stop_if_requested()?;
    check
}

/// The names of the tables the user made in the database at `path` (as its
/// main file holds them, without touching it: a schema change still in the
/// `-wal` is not seen), or `None` when it cannot be read.
pub(crate) fn table_names(path: &Path) -> Option<std::collections::BTreeSet<String>> {
    let read = |uri: String| -> Option<Vec<(String, Option<String>)>> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&uri, flags).ok()?;
        let mut statement = conn
            .prepare(
                "SELECT name, CASE WHEN rootpage = 0 THEN coalesce(sql, '') END FROM sqlite_schema WHERE type = 'table'",
            )
            .ok()?;
        statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
            })
            .ok()?
            .collect::<rusqlite::Result<_>>()
            .ok()
    };
    // Immutable: no lock a writer would wait on, no `-shm` made beside it.
    let tables = read(format!("file:{}?immutable=1", uri_escape(path)))?;
    Some(user_tables(tables))
}

/// The tables a schema's user made, from (name, a virtual table's `CREATE
/// VIRTUAL TABLE` statement) pairs: not SQLite's own (`sqlite_*`) nor the
/// shadow tables a virtual table's module keeps (`docs_content`,
/// `docs_segdir` of an fts4 `docs`; `geo_node` of an rtree), which two
/// databases with one full-text index in common would otherwise share by the
/// half dozen (T29b N1). Only its module's names: a user's `docs_meta`, or
/// `docs_data` beside an fts4 `docs`, stays (T29c C1, T29d C1-b).
pub(crate) fn user_tables(
    tables: Vec<(String, Option<String>)>,
) -> std::collections::BTreeSet<String> {
    let shadows: std::collections::BTreeSet<String> = tables
        .iter()
        .filter_map(|(name, sql)| sql.as_deref().map(|sql| (name, sql)))
        .flat_map(|(name, sql)| {
            let name = name.to_ascii_lowercase();
            shadow_suffixes(sql)
                .into_iter()
                .map(move |suffix| format!("{name}_{suffix}"))
        })
        .collect();
    tables
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| {
            let lower = name.to_ascii_lowercase();
            !lower.starts_with("sqlite_") && !shadows.contains(&lower)
        })
        .collect()
}

/// The shadow tables' suffixes of the virtual table `sql` creates, by its
/// module (an external-content FTS table keeps no `_content`).
fn shadow_suffixes(sql: &str) -> Vec<&'static str> {
    let lower = sql.to_ascii_lowercase();
    let module = lower
        .split_once(" using ")
        .map(|(_, rest)| {
            rest.trim_start()
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let external = lower.replace(' ', "").contains("content=");
    let mut suffixes = match module.as_str() {
        "fts3" | "fts4" => vec!["content", "segments", "segdir", "docsize", "stat"],
        "fts5" => vec!["data", "idx", "content", "docsize", "config"],
        "rtree" | "rtree_i32" | "geopoly" => vec!["node", "rowid", "parent"],
        _ => Vec::new(),
    };
    if external {
        suffixes.retain(|s| *s != "content");
    }
    suffixes
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
pub(crate) struct InterruptOnSignal {
    /// A true cross-thread stop flag, not a result: the watcher thread polls it
    /// and ends once the statement is over.
    done: Arc<AtomicBool>,
    watcher: Option<thread::JoinHandle<()>>,
}

impl InterruptOnSignal {
    pub(crate) fn new(conn: &Connection) -> Self {
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

/// How often this thread validated and fingerprinted: lets tests prove a
/// decision is not recomputed.
#[cfg(test)]
pub(crate) mod calls {
    use std::cell::Cell;

    thread_local! {
        pub(crate) static VALIDATIONS: Cell<usize> = const { Cell::new(0) };
        pub(crate) static FINGERPRINTS: Cell<usize> = const { Cell::new(0) };
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_file_changed_too_recently_or_dated_ahead_matches_no_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t(x)")
            .unwrap();
        let settled = std::time::SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&db)
            .unwrap()
            .set_modified(settled)
            .unwrap();
        // ctime is now: waited for (20 ms), then it matches itself.
        assert_eq!(fingerprint(&db).unwrap(), fingerprint(&db).unwrap());
        // Dated an hour ahead (another clock): not waited for, never equal.
        let ahead = std::time::SystemTime::now() + Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&db)
            .unwrap()
            .set_modified(ahead)
            .unwrap();
        assert_ne!(fingerprint(&db).unwrap(), fingerprint(&db).unwrap());
        assert_eq!(written(&db), None);
    }

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
}
