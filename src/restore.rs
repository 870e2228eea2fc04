//! The restore engine: choosing the backup, checking it, saving what it replaces,
//! replacing atomically, refusing a database in use.
//!
//! Order matters: the backup is decompressed beside the target and checked
//! (CRCs, size, SHA-256, `integrity_check`) before anything is touched; an
//! existing target is saved as a pre-restore copy recorded under its own path,
//! its WAL checkpointed and its `-wal`, `-shm` and `-journal` removed (an old WAL
//! replayed onto restored pages corrupts them), and only then is the checked copy
//! renamed over it. A signal before that rename leaves the target as it was.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::archive::decompress;
use crate::backup::{self, Saved};
use crate::config::Settings;
use crate::error::{Context, Error, Result, show};
use crate::jobenv::JobContext;
use crate::lock::{self, DirLock, Wait};
use crate::snapshot::{self, Check, SQLITE_MAGIC, sibling};
use crate::store::{
    BackupDir, DbId, Entry, Legacy, Role, TempFile, copy_mode, ownership, sync_dir,
};

/// SQLite's lock bytes in the database file (PENDING, RESERVED, SHARED range).
const SQLITE_LOCK_BYTES: (i64, i64) = (0x4000_0000, 512);
/// The "DMS" byte of `-shm` that every connection to a WAL database holds.
const SHM_DMS_BYTE: (i64, i64) = (128, 1);

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct Request {
    /// A backup file name, or `latest`.
    pub name: String,
    pub target: PathBuf,
    /// The configured database (`db_path`), when there is one: `latest` means its
    /// newest restore point, and another database's backup is not restored over it.
    pub db: Option<PathBuf>,
    /// Replace a target that is not an SQLite database; restore another
    /// database's backup over this one.
    pub force: bool,
    pub if_db_missing: bool,
}

#[derive(Debug)]
pub enum Outcome {
    /// `--if-db-missing` and the target exists.
    Skipped,
    Restored(Restored),
}

#[derive(Debug)]
pub struct Restored {
    pub name: String,
    pub target: PathBuf,
    /// The pre-restore copy holding what was replaced (`None`: nothing was there).
    pub saved: Option<String>,
    /// Newer restore points passed over by `latest`, and why.
    pub passed_over: Vec<(String, String)>,
}

/// Restore per `request`. Reading needs no write access to the backup directory:
/// the lock is taken only when a pre-restore copy must be written.
pub fn restore(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    request: &Request,
) -> Result<Outcome> {
    let target = &request.target;
    let exists = check_target(target, request.force)?;
    if request.if_db_missing && exists {
        return Ok(Outcome::Skipped);
    }
    let untouched = |error: Error| match error {
        Error::Interrupted(signal) => Error::Stopped {
            signal,
            message: format!(
                "restore stopped by signal {signal}; {} left untouched",
                show(target)
            ),
        },
        other => other,
    };
    // The lock keeps retention from deleting the chosen backup meanwhile, and
    // serialises the pre-restore copy; a new target needs neither.
    let lock = if exists {
        Some(lock_for_saving(settings, job, dir, target).map_err(untouched)?)
    } else {
        None
    };
    let target_id = DbId::of(target);
    let db_id = request.db.as_deref().map(DbId::of);
    let into_db = db_id.as_ref().is_some_and(|db| db == &target_id);
    let candidates = choose(dir, request, db_id.as_ref(), &target_id, into_db)?;

    let parent = parent_dir(target);
    crate::store::remove_dead_temps_in(&parent);
    let Checked {
        entry,
        temp,
        passed_over,
    } = extract_first_intact(settings, &candidates, target, exists, &parent).map_err(untouched)?;

    let saved = match &lock {
        Some(lock) => Some(save_existing(settings, job, dir, lock, target).map_err(untouched)?),
        None => None,
    };

    // Atomic replacement; no signal check from here on, so a stop leaves either
    // the old database or the new one, never a mixture.
    fs::rename(temp.path(), target).context(|| format!("cannot replace {}", show(target)))?;
    temp.keep();
    sync_dir(&parent)?;
    tracing::info!("restored {} into {}", entry.file_name, show(target));
    Ok(Outcome::Restored(Restored {
        name: entry.file_name.clone(),
        target: target.clone(),
        saved,
        passed_over,
    }))
}

fn lock_for_saving(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    target: &Path,
) -> Result<DirLock> {
    let cannot_save = |error: Error| match error {
        Error::Interrupted(_) => error,
        other => {
            let read_only = matches!(&other, Error::Io { source, .. }
                if matches!(source.raw_os_error(), Some(nix::libc::EROFS | nix::libc::EACCES | nix::libc::EPERM)));
            let hint = if read_only {
                " (to read from a read-only backup directory, restore into a new file with --target)"
            } else {
                ""
            };
            Error::failed(format!(
                "cannot save {} before replacing it: {other}; nothing was changed{hint}",
                show(target)
            ))
        }
    };
    dir.ensure_exists().map_err(cannot_save)?;
    DirLock::acquire(dir.path(), job, Wait::Upto(settings.lock_timeout))
        .map_err(cannot_save)?
        .ok_or_else(|| Error::failed("lock not acquired"))
}

/// The backups to try, best first: `latest` may pass over damaged ones.
fn choose(
    dir: &BackupDir,
    request: &Request,
    db: Option<&DbId>,
    target: &DbId,
    into_db: bool,
) -> Result<Vec<Entry>> {
    if request.name == "latest" {
        let owner = match db {
            Some(db) => db.clone(),
            None => sole_database(dir, target)?,
        };
        let set = dir.set(&owner)?;
        if set.restore_points.is_empty() {
            return Err(Error::failed(no_restore_point(dir, &owner, &set)));
        }
        return Ok(set.restore_points);
    }
    let entry = find_backup(dir, &request.name)?;
    let owner = db.unwrap_or(target);
    let legacy = if entry.legacy {
        Legacy::judge(&dir.entries()?, owner)
    } else {
        Legacy::Ours
    };
    match ownership::role(&entry, owner, legacy) {
        Role::Failed => {
            return Err(Error::failed(format!(
                "backup {} is a failed snapshot: it did not pass its integrity check when it was made; refusing to restore it (to inspect it: zcat {} > copy.db)",
                entry.file_name,
                show(&entry.path)
            )));
        }
        // An implausible legacy file into a new file: extraction checks it fully.
        Role::Damaged if entry.legacy && !into_db => {}
        Role::Damaged if entry.legacy && !request.force => {
            return Err(Error::failed(format!(
                "backup {} looks damaged ({}); refusing to restore it over {} without --force (restore it elsewhere with --target to look at it)",
                entry.file_name,
                entry.problem().unwrap_or(""),
                show(&request.target)
            )));
        }
        Role::Damaged if !request.force => {
            return Err(Error::failed(format!(
                "backup {} has unreadable metadata ({}); refusing to restore it without --force",
                entry.file_name,
                entry.meta.as_ref().err().map_or("", String::as_str)
            )));
        }
        Role::OwnerUnknown if into_db && !request.force => {
            return Err(Error::failed(format!(
                "backup {} is a legacy backup (plain gzip) that records no database, and {} also holds backups of other databases, so it may not be a backup of {}; refusing to restore it over {} (use --target to restore it elsewhere, or --force if you mean it)",
                entry.file_name,
                show(dir.path()),
                show(owner.canonical()),
                show(&request.target)
            )));
        }
        Role::Other if into_db && !request.force => {
            let source = entry.meta.as_ref().map_or("?", |m| m.source.as_str());
            return Err(Error::failed(format!(
                "backup {} is a backup of {source}, not of {}; refusing to restore it over {} (use --target to restore it elsewhere, --force if you mean it, or `dbbackup adopt {source}` if the database moved)",
                entry.file_name,
                show(owner.canonical()),
                show(&request.target)
            )));
        }
        _ => {}
    }
    if entry.is_failed() && entry.kind_name() != Some("pre-restore") {
        // A failed snapshot of another database: no better than our own.
        return Err(Error::failed(format!(
            "backup {} is a failed snapshot: it did not pass its integrity check when it was made; refusing to restore it",
            entry.file_name
        )));
    }
    Ok(vec![entry])
}

/// Without a configured database, `latest` needs the directory to hold restore
/// points of exactly one database (or of the target itself).
fn sole_database(dir: &BackupDir, target: &DbId) -> Result<DbId> {
    let mut sources: Vec<String> = dir
        .entries()?
        .iter()
        .filter(|e| !e.is_failed())
        .filter_map(|e| e.meta.as_ref().ok())
        .filter(|m| m.kind != crate::store::Kind::PreRestore)
        .map(|m| m.source.clone())
        .collect();
    sources.sort();
    sources.dedup();
    if sources.iter().any(|s| target.owns(s)) {
        return Ok(target.clone());
    }
    match sources.as_slice() {
        [] => Ok(target.clone()),
        [only] => Ok(DbId::of(Path::new(only))),
        many => Err(Error::usage(format!(
            "{} holds backups of {} databases ({}); say which with --db-path",
            show(dir.path()),
            many.len(),
            many.join(", ")
        ))),
    }
}

/// Why `latest` found nothing, with what is there instead.
fn no_restore_point(dir: &BackupDir, db: &DbId, set: &crate::store::BackupSet) -> String {
    let mut text = format!(
        "no restore point of {} in {}",
        show(db.canonical()),
        show(dir.path())
    );
    if !set.pre_restore.is_empty() {
        text.push_str(&format!(
            "; {} pre-restore copies are there (not restore points; restore one by name)",
            set.pre_restore.len()
        ));
    }
    // Newest first, each source once.
    let mut sources: Vec<&str> = Vec::new();
    for entry in &set.others {
        if let Ok(meta) = &entry.meta
            && !sources.contains(&meta.source.as_str())
        {
            sources.push(&meta.source);
        }
    }
    if let Some(first) = sources.first() {
        text.push_str(&format!(
            "; it holds backups of other databases ({first}{}): if this database moved from there, claim them with `dbbackup adopt {first}`",
            if sources.len() > 1 { ", ..." } else { "" }
        ));
    }
    if let Some(newest) = set.owner_unknown.first() {
        text.push_str(&format!(
            "; {n} legacy backup{s} (plain gzip, no recorded database) may be another database's, so {not_points} (look at one with `dbbackup restore {} --target copy.db`)",
            newest.file_name,
            n = set.owner_unknown.len(),
            s = if set.owner_unknown.len() == 1 { "" } else { "s" },
            not_points = if set.owner_unknown.len() == 1 {
                "it is not a restore point"
            } else {
                "they are not restore points"
            },
        ));
    }
    text
}

/// A checked copy beside the target, ready to be renamed over it.
struct Checked {
    entry: Entry,
    temp: TempFile,
    passed_over: Vec<(String, String)>,
}

/// Decompress and check candidates until one is intact; errors if none is.
fn extract_first_intact(
    settings: &Settings,
    candidates: &[Entry],
    target: &Path,
    exists: bool,
    parent: &Path,
) -> Result<Checked> {
    let mut passed_over = Vec::new();
    let mut first_error = None;
    for entry in candidates {
        match extract_checked(settings, entry, target, exists, parent) {
            Ok(temp) => {
                return Ok(Checked {
                    entry: entry.clone(),
                    temp,
                    passed_over,
                });
            }
            Err(error @ (Error::Interrupted(_) | Error::Io { .. })) => return Err(error),
            Err(error) => {
                tracing::warn!("passing over {}: {error}", entry.file_name);
                passed_over.push((entry.file_name.clone(), error.to_string()));
                first_error.get_or_insert(error);
            }
        }
    }
    let error = first_error.unwrap_or_else(|| Error::failed("no backup to restore"));
    Err(match candidates.len() {
        1 => Error::failed(format!("{error}; {} left untouched", show(target))),
        n => Error::failed(format!(
            "none of the {n} restore points is intact (newest: {error}); {} left untouched",
            show(target)
        )),
    })
}

/// A checked copy of `entry` beside the target; nothing else touched.
fn extract_checked(
    settings: &Settings,
    entry: &Entry,
    target: &Path,
    exists: bool,
    parent: &Path,
) -> Result<TempFile> {
    let mode = if exists {
        copy_mode(target)
    } else {
        copy_mode(&entry.path)
    };
    let mut temp = TempFile::create_in(parent, mode)?;
    let total = entry.meta.as_ref().map_or(0, |m| m.db_size);
    let progress = crate::progress::Progress::bytes(total, "restore", settings.progress);
    decompress::extract_to_file(entry, &mut temp, &progress)?;
    if let Check::Failed(detail) = snapshot::integrity_check_file(temp.path())? {
        return Err(Error::failed(format!(
            "backup {} fails integrity_check ({})",
            entry.file_name,
            snapshot::one_line(&detail)
        )));
    }
    Ok(temp)
}

/// Refuse a target in use, save it as a pre-restore copy, and make sure no stale
/// WAL or journal can be replayed onto the restored file.
fn save_existing(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    lock: &DirLock,
    target: &Path,
) -> Result<String> {
    if let Some(user) = in_use(target) {
        return Err(Error::failed(format!(
            "database {} is in use by {user}; nothing was changed",
            show(target)
        )));
    }
    let saved = backup::save_before_restore(settings, job, dir, lock, target)?;
    crate::signals::check()?;
    checkpoint(target);
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = sibling(target, suffix);
        match fs::remove_file(&stale) {
            Ok(()) => tracing::info!("removed stale {}", show(&stale)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).context(|| format!("cannot remove stale {}", show(&stale)));
            }
        }
    }
    Ok(match saved {
        Saved::Created(created) => created.entry.file_name,
        Saved::Existing(name) => name,
    })
}

/// A backup named by its file name. Paths are refused: only names in the
/// backup directory can be restored or verified.
pub fn find_backup(dir: &BackupDir, name: &str) -> Result<Entry> {
    if name.contains('/') || name.contains('\\') || name.contains("..") || name.is_empty() {
        return Err(Error::usage(format!(
            "invalid backup name '{name}': give a file name from `dbbackup list`, not a path"
        )));
    }
    dir.entry(name)?.ok_or_else(|| {
        Error::failed(format!(
            "no backup named '{name}' in {} (see `dbbackup list`)",
            show(dir.path())
        ))
    })
}

/// `Ok(true)` when a file is there to replace. Refuses symlinks, directories, a
/// missing parent directory (a typo should not create directories), and a file
/// that is not an SQLite database unless `force`.
fn check_target(target: &Path, force: bool) -> Result<bool> {
    let parent = parent_dir(target);
    match fs::metadata(&parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::failed(format!(
                "{} (where restore target {} would go) is not a directory",
                show(&parent),
                show(target)
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::failed(format!(
                "directory {} does not exist; create it first to restore into {}",
                show(&parent),
                show(target)
            )));
        }
        Err(e) => return Err(e).context(|| format!("cannot access directory {}", show(&parent))),
    }
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::failed(format!(
            "restore target {} is a symbolic link; give the real path",
            show(target)
        ))),
        Ok(meta) if meta.is_dir() => Err(Error::failed(format!(
            "restore target {} is a directory",
            show(target)
        ))),
        Ok(meta) if !meta.is_file() => Err(Error::failed(format!(
            "restore target {} is not a regular file",
            show(target)
        ))),
        Ok(meta) => {
            if !force && meta.len() > 0 && !is_sqlite(target)? {
                return Err(Error::failed(format!(
                    "restore target {} exists and is not an SQLite database; refusing to replace it without --force",
                    show(target)
                )));
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).context(|| format!("cannot access restore target {}", show(target))),
    }
}

/// The file starts with SQLite's header (a damaged database still does).
fn is_sqlite(path: &Path) -> Result<bool> {
    let mut header = [0u8; 16];
    let mut file = File::open(path).context(|| format!("cannot read {}", show(path)))?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context(|| format!("cannot read {}", show(path))),
        }
    }
    Ok(&header == SQLITE_MAGIC)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Who uses the database: a POSIX lock on its lock bytes or on `-shm` (any host,
/// through the filesystem's lock manager), or an open descriptor (this host).
fn in_use(target: &Path) -> Option<String> {
    for (path, (start, len), reading) in [
        (target.to_path_buf(), SQLITE_LOCK_BYTES, "is reading it"),
        // Every connection to a WAL database holds this byte, reading or not.
        (sibling(target, "-shm"), SHM_DMS_BYTE, "has it open"),
    ] {
        if let Ok(file) = File::open(&path)
            && let Some((pid, writing)) = lock::locked_by_other(&file, start, len)
        {
            let who = if pid > 0 {
                format!("pid {pid}")
            } else {
                "a process on another node".into()
            };
            return Some(if writing {
                format!("{who}, which is writing to it; stop the writer before restoring")
            } else {
                format!("{who}, which {reading}; stop it before restoring")
            });
        }
    }
    open_elsewhere(target)
        .map(|pid| format!("pid {pid}, which has it open; stop it before restoring"))
}

/// A process on this host, other than us, with the file (or its `-wal`) open.
fn open_elsewhere(target: &Path) -> Option<u32> {
    let wanted: Vec<PathBuf> = [target.to_path_buf(), sibling(target, "-wal")]
        .iter()
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    let me = std::process::id();
    for process in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if fs::read_link(fd.path()).is_ok_and(|link| wanted.contains(&link)) {
                return Some(pid);
            }
        }
    }
    None
}

/// Fold a WAL into the database file before it is removed, so an interrupted
/// restore leaves the complete old content. Best effort: the pre-restore backup
/// already holds everything.
fn checkpoint(target: &Path) {
    if !sibling(target, "-wal").exists() {
        return;
    }
    let result =
        rusqlite::Connection::open_with_flags(target, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .and_then(|conn| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())));
    if let Err(e) = result {
        tracing::warn!(
            "could not checkpoint {} before restoring: {e}",
            show(target)
        );
    }
}
