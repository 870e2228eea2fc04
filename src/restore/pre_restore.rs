//! The pre-restore copy: whatever a restore replaces, saved first as a backup
//! recorded under the target's own path (the restore's undo), through the
//! same stages as any backup, unless a backup already holds its content.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::archive;
use crate::config::Settings;
use crate::create::{self, Created, Encoding, Keep, Reader, Record, Target, Written};
use crate::diff;
use crate::error::{Context, Error, Result, show};
use crate::lock::DirLock;
use crate::progress::Progress;
use crate::slurm::job::JobContext;
use crate::snapshot::Source;
use crate::sqlite_file::Integrity;
use crate::store::metadata::{CheckResult, Kind};
use crate::store::{BackupDir, Checksum, DbId, Entry};

/// What `save_before_restore` did.
#[derive(Debug)]
pub(crate) enum Saved {
    /// A new pre-restore copy.
    Created(Box<Created>),
    /// The target is unchanged since this pre-restore copy: reused, not copied
    /// again (repeated restores must not pile up identical copies).
    Existing(String),
}

impl Saved {
    pub(crate) fn name(&self) -> &str {
        match self {
            Saved::Created(created) => &created.entry.file_name,
            Saved::Existing(name) => name,
        }
    }
}

/// Save whatever is at `target` before a restore replaces it, as a pre-restore
/// copy recorded under the target's own path: through SQLite when it is a
/// database (`database`, from `sqlite_file::validate_database`), else its raw bytes,
/// marked failed.
///
/// The restore engine calls this while it holds a write transaction on the
/// target, so nothing here may open and close the target with a plain file
/// descriptor: closing any descriptor of a file drops all of this process's
/// POSIX locks on it, the guard's included. That is why validation happens in the
/// caller, and why no fingerprint is taken: duplicates are found by content
/// instead (see `same_content`).
pub(crate) fn save_before_restore(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    lock: &DirLock,
    target: &Path,
    database: Result<PathBuf>,
) -> Result<Saved> {
    let started = Instant::now();
    lock.remove_stale_temps();
    let absolute =
        std::path::absolute(target).context(|| format!("cannot resolve {}", show(target)))?;
    let id = DbId::of(&absolute);
    let reader = match database.and_then(|db| Source::open(&db, settings.busy_timeout)) {
        Ok(source) => Reader::Sqlite(source),
        Err(Error::Failed(why)) => {
            let file = File::open(target).context(|| format!("cannot read {}", show(target)))?;
            Reader::RawFile(file, why)
        }
        Err(other) => return Err(other),
    };
    let target = Target {
        dir,
        db: &absolute,
        id: &id,
        job,
    };
    let stages = Stages {
        encoding: Encoding::of(settings, job),
        record: Record::new(settings, Kind::PreRestore, None),
    };
    let saved = save(&target, lock, &reader, &stages, started);
    // The source is read until the copy is published and copied.
    drop(reader);
    saved
}

/// What the stages of a backup use, from the settings.
struct Stages<'a> {
    encoding: Encoding<'a>,
    record: Record<'a>,
}

/// The stages of a backup, with a look for a backup of the same content between
/// the checked temp file and its publication.
fn save(
    target: &Target,
    lock: &DirLock,
    reader: &Reader,
    stages: &Stages,
    started: Instant,
) -> Result<Saved> {
    let full = diff::Plan::Full {
        hashes: false,
        why: None,
    };
    let checked = match create::write_checked(target, &stages.encoding, reader, &full)? {
        Written::Checked(checked) => *checked,
        Written::Fallback(fallback) => return Err(Error::failed(fallback.why)),
    };
    if checked.check == Integrity::Ok
        && let Some(name) = same_content(
            target.dir,
            target.id,
            &checked.checksum,
            checked.db_size,
            stages.encoding.threads,
        )?
    {
        tracing::info!("content of {} is already held by {name}", show(target.db));
        return Ok(Saved::Existing(name));
    }
    // Retention waits for `settle`: see there.
    let mut created = create::publish_only(checked, target, lock, &stages.record)?;
    created.duration = started.elapsed();
    Ok(Saved::Created(Box::new(created)))
}

/// Retention (and the mirrors' copies) for a new pre-restore copy, once its
/// restore has replaced the database. Not before: a restore refused after the
/// copy was made (the database came into use) replaced nothing, and its copy
/// must not push the undo copy of an earlier restore out of `keep_pre_restore`
/// (README: repeated restores never push a unique copy out).
pub(crate) fn settle(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    lock: &DirLock,
    target: &Path,
    saved: &mut Saved,
) -> Result<()> {
    let Saved::Created(created) = saved else {
        return Ok(());
    };
    let absolute =
        std::path::absolute(target).context(|| format!("cannot resolve {}", show(target)))?;
    let id = DbId::of(&absolute);
    let target = Target {
        dir,
        db: &absolute,
        id: &id,
        job,
    };
    create::retain(created, &target, lock, &Keep::of(settings))?;
    copy_to_configured(settings, job, created);
    Ok(())
}

/// Restored through another directory (`--backup-dir MIRROR`): the undo goes
/// to the configured backup directory too, where `dbbackup restore NAME`
/// without `--backup-dir` looks for it (T23 #11). Only placed: that
/// directory's retention (and its jobs' pins) is its own backups' business.
fn copy_to_configured(settings: &Settings, job: &JobContext, created: &Created) {
    let Some(configured) = settings.other_configured_dir() else {
        return;
    };
    if settings
        .mirror_dirs
        .iter()
        .any(|m| m.as_path() == configured)
    {
        return;
    }
    let to = BackupDir::new(configured);
    match crate::mirror::place(&to, &created.entry, job, settings.lock_timeout) {
        Ok(_lock) => tracing::info!(
            "undo copy {} placed in the backup directory {} too",
            created.entry.file_name,
            show(configured)
        ),
        Err(error) => tracing::warn!(
            "undo copy {} is in {} only: not placed in the backup directory {} ({error})",
            created.entry.file_name,
            show(created.entry.path.parent().unwrap_or(Path::new("."))),
            show(configured)
        ),
    }
}

/// Remove the new pre-restore copy of a restore that replaced nothing. Only
/// for a copy taken under the guard's write transaction, still held: no commit
/// can have landed since, so the database left in place holds exactly what the
/// copy holds, and removing the copy loses no state. (Without the guard another
/// process may have changed the file since it was copied; that copy may be the
/// only one of what was there, so the caller keeps it.)
pub(crate) fn discard(dir: &BackupDir, _lock: &DirLock, saved: &Saved) -> bool {
    let Saved::Created(created) = saved else {
        return false;
    };
    match std::fs::remove_file(&created.entry.path) {
        Ok(()) => {
            crate::diff::pagehash::remove(dir.path(), &created.entry.file_name);
            if let Err(e) = crate::store::sync_dir(dir.path()) {
                tracing::warn!("cannot sync {}: {e}", show(dir.path()));
            }
            tracing::info!(
                "removed {} again: the restore replaced nothing, and the database still holds that content",
                created.entry.file_name
            );
            true
        }
        Err(e) => {
            tracing::warn!(
                "cannot remove {}, the copy of a restore that replaced nothing: {e}",
                created.entry.file_name
            );
            false
        }
    }
}

/// A backup of `id` kept in `dir` (restore point or pre-restore copy) whose
/// content has this checksum: a pre-restore copy of the same content would be a
/// duplicate that pushes a unique older copy out of pre-restore retention.
///
/// It stands in for the pre-restore copy, the restore's undo, only when it can
/// be restored: it passes the cheap tests (size, damage record, a diff's base)
/// and a whole read of its content (a bit flipped since it was written is
/// seen by nothing cheaper). The read costs about one decompression, and only
/// when the content matches; a failed read is recorded as damage.
fn same_content(
    dir: &BackupDir,
    id: &DbId,
    checksum: &Checksum,
    size: u64,
    threads: usize,
) -> Result<Option<String>> {
    let set = dir.set(id)?;
    let candidates = set
        .restore_points
        .iter()
        .chain(&set.pre_restore)
        .filter(|entry| {
            matches!(&entry.meta, Ok(meta)
            if meta.checksum == *checksum && meta.db_size == size && meta.check == CheckResult::Ok)
        });
    for entry in candidates {
        if let Some(problem) = diff::restore_problem(entry) {
            tracing::info!(
                "{} holds the same content but cannot be restored ({problem})",
                entry.file_name
            );
            continue;
        }
        if reads_whole(entry, threads)? {
            return Ok(Some(entry.file_name.clone()));
        }
    }
    Ok(None)
}

/// Whether `entry` decompresses (a diff: rebuilds) to the size and checksum it
/// records. Damage found is remembered; a signal stops the run.
fn reads_whole(entry: &Entry, threads: usize) -> Result<bool> {
    let progress = Progress::hidden();
    let mut sink = std::io::sink();
    let read = if entry.name.diff {
        diff::rebuild::rebuild(
            entry,
            &mut sink,
            &progress,
            threads,
            diff::rebuild::Bases::Sound,
        )
    } else {
        archive::decompress::extract(entry, &mut sink, &progress, threads)
    };
    match read {
        Ok(_) => Ok(true),
        Err(error @ Error::Damaged { .. }) => {
            tracing::warn!("{error}: not relied on as the pre-restore copy");
            if let Error::Damaged { backup, why, .. } = &error {
                crate::store::damage::mark(backup, why);
            }
            Ok(false)
        }
        Err(stop @ (Error::Interrupted(_) | Error::Stopped { .. } | Error::OutOfTime(_))) => {
            Err(stop)
        }
        Err(other) => {
            tracing::warn!(
                "cannot read {} whole ({other}): not relied on as the pre-restore copy",
                entry.file_name
            );
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A pre-restore copy of `db` into `dir`, as the restore engine makes it.
    fn save_copy(dir: &BackupDir, db: &Path, job: &JobContext) -> Saved {
        let id = DbId::of(db);
        let target = Target {
            dir,
            db,
            id: &id,
            job,
        };
        let stages = Stages {
            encoding: Encoding {
                level: 6,
                threads: 1,
                progress: false,
                job,
            },
            record: Record {
                kind: Kind::PreRestore,
                fingerprint: None,
                mirrors: &[],
            },
        };
        let lock = DirLock::try_acquire(dir.path(), job).unwrap().unwrap();
        let reader = Reader::Sqlite(Source::open(db, Duration::from_secs(5)).unwrap());
        save(&target, &lock, &reader, &stages, Instant::now()).unwrap()
    }

    #[test]
    fn the_same_content_is_saved_once_unless_its_copy_cannot_be_read() {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("target.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(50000));")
            .unwrap();
        drop(conn);
        let dir = BackupDir::new(root.path().join("backups"));
        dir.ensure_exists().unwrap();
        let job = JobContext::from_lookup(|_| None, "n1".into());

        let Saved::Created(first) = save_copy(&dir, &db, &job) else {
            panic!("nothing held this content before");
        };
        assert_eq!(first.meta.kind, Kind::PreRestore);
        let again = save_copy(&dir, &db, &job);
        assert!(
            matches!(&again, Saved::Existing(name) if *name == first.entry.file_name),
            "{again:?}"
        );

        // A bit flipped in the only copy: it no longer stands in for the undo.
        let mut bytes = std::fs::read(&first.entry.path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&first.entry.path, bytes).unwrap();
        let Saved::Created(second) = save_copy(&dir, &db, &job) else {
            panic!("a damaged copy is not relied on");
        };
        assert_ne!(second.entry.file_name, first.entry.file_name);
        assert_eq!(second.meta.checksum, first.meta.checksum);
    }
}
