//! `dbbackup restore NAME|latest [--target PATH] [--if-db-missing]`
//!
//! Order matters: the backup is decompressed beside the target and checked
//! (CRCs, size, SHA-256, `integrity_check`) before anything is touched; an existing
//! target is saved as a pre-restore backup, its WAL checkpointed and its `-wal`,
//! `-shm` and `-journal` removed (an old WAL replayed onto restored pages corrupts
//! them), and only then is the checked copy renamed over it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Ctx, Status};
use crate::archive::decompress;
use crate::backup;
use crate::cli::RestoreArgs;
use crate::error::{Context, Error, Result, show};
use crate::lock;
use crate::snapshot::{self, Check, sibling};
use crate::store::{BackupDir, Entry, TempFile, copy_mode, sync_dir};

/// SQLite's lock bytes in the database file (PENDING, RESERVED, SHARED range).
const SQLITE_LOCK_BYTES: (i64, i64) = (0x4000_0000, 512);
/// The "DMS" byte of `-shm` that every connection to a WAL database holds.
const SHM_DMS_BYTE: (i64, i64) = (128, 1);

pub fn run(ctx: &Ctx, args: &RestoreArgs) -> Result<Status> {
    let out = ctx.output(args.output.format);
    let target = match &args.target {
        Some(target) => target.clone(),
        None => ctx.settings.db_path()?.to_path_buf(),
    };
    let exists = check_target(&target)?;
    if args.if_db_missing && exists {
        out.line(format!(
            "database {} exists; nothing to restore",
            show(&target)
        ));
        out.document(&json!({"status": "skipped", "reason": "database exists", "target": target}));
        return Ok(Status::Success);
    }
    let dir = ctx.backup_dir();
    let entry = if args.name == "latest" {
        dir.newest_good()?.ok_or_else(|| {
            Error::failed(format!("no good backup to restore in {}", show(dir.path())))
        })?
    } else {
        find_backup(&dir, &args.name)?
    };
    if !entry.is_good() {
        return Err(Error::failed(format!(
            "backup {} did not pass its integrity check when it was made (see `dbbackup list`); refusing to restore it",
            entry.file_name
        )));
    }
    let parent = parent_dir(&target);
    fs::create_dir_all(&parent).context(|| format!("cannot create directory {}", show(&parent)))?;
    let lock = ctx.lock(&dir)?;

    crate::store::remove_dead_temps_in(&parent);

    // 1. A checked copy beside the target; nothing touched yet.
    let mode = if exists {
        copy_mode(&target)
    } else {
        copy_mode(&entry.path)
    };
    let mut temp = TempFile::create_in(&parent, mode)?;
    let total = entry.meta.as_ref().map_or(0, |m| m.db_size);
    let progress = crate::progress::Progress::bytes(total, "restore", ctx.settings.progress);
    decompress::extract_to_file(&entry, &mut temp, &progress)?;
    if let Check::Failed(detail) = snapshot::integrity_check_file(temp.path())? {
        return Err(Error::failed(format!(
            "backup {} fails integrity_check ({detail}); {} left untouched",
            entry.file_name,
            show(&target)
        )));
    }

    // 2. Save what is there, and make sure no stale WAL can be replayed onto it.
    let mut saved = None;
    if exists {
        if let Some(user) = in_use(&target) {
            return Err(Error::failed(format!(
                "database {} is in use ({user}); stop the writer before restoring",
                show(&target)
            )));
        }
        let created = backup::save_before_restore(&ctx.settings, &ctx.job, &dir, &lock, &target)?;
        saved = Some(created.entry.file_name.clone());
        checkpoint(&target);
        for suffix in ["-wal", "-shm", "-journal"] {
            let stale = sibling(&target, suffix);
            match fs::remove_file(&stale) {
                Ok(()) => tracing::info!("removed stale {}", show(&stale)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).context(|| format!("cannot remove stale {}", show(&stale)));
                }
            }
        }
    }
    crate::signals::check()?;

    // 3. Atomic replacement.
    fs::rename(temp.path(), &target).context(|| format!("cannot replace {}", show(&target)))?;
    temp.keep();
    sync_dir(&parent)?;

    match &saved {
        Some(saved) => out.line(format!(
            "restored {} into {} (previous content saved as {saved})",
            entry.file_name,
            show(&target)
        )),
        None => out.line(format!(
            "restored {} into {}",
            entry.file_name,
            show(&target)
        )),
    }
    out.document(&json!({
        "status": "ok",
        "name": entry.file_name,
        "target": target,
        "pre_restore_backup": saved,
    }));
    tracing::info!("restored {} into {}", entry.file_name, show(&target));
    Ok(Status::Success)
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

/// `Ok(true)` when a regular file is there; refuse directories and symlinks.
fn check_target(target: &Path) -> Result<bool> {
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
            "restore target {} is not a regular file (a FIFO, socket or device)",
            show(target)
        ))),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).context(|| format!("cannot access restore target {}", show(target))),
    }
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
    for (path, (start, len)) in [
        (target.to_path_buf(), SQLITE_LOCK_BYTES),
        (sibling(target, "-shm"), SHM_DMS_BYTE),
    ] {
        if let Ok(file) = File::open(&path)
            && let Some(pid) = lock::locked_by_other(&file, start, len)
        {
            return Some(format!("process {pid} holds an SQLite lock on it"));
        }
    }
    open_elsewhere(target).map(|pid| format!("process {pid} has it open"))
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
