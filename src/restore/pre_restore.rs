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
use crate::store::{BackupDir, DbId, Entry};

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
    dir.remove_stale_temps();
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
    let saved = save(settings, &target, lock, &reader, started);
    // The source is read until the copy is published and copied.
    drop(reader);
    saved
}

/// The stages of a backup, with a look for a backup of the same content between
/// the checked temp file and its publication.
fn save(
    settings: &Settings,
    target: &Target,
    lock: &DirLock,
    reader: &Reader,
    started: Instant,
) -> Result<Saved> {
    let full = diff::Plan::Full {
        hashes: false,
        why: None,
    };
    let encoding = Encoding::of(settings, target.job);
    let checked = match create::write_checked(target, &encoding, reader, &full)? {
        Written::Checked(checked) => *checked,
        Written::Fallback(fallback) => return Err(Error::failed(fallback.why)),
    };
    if checked.check == Integrity::Ok
        && let Some(name) = same_content(
            target.dir,
            target.id,
            &checked.checksum,
            checked.db_size,
            encoding.threads,
        )?
    {
        tracing::info!("content of {} is already held by {name}", show(target.db));
        return Ok(Saved::Existing(name));
    }
    let record = Record::new(settings, Kind::PreRestore, None);
    let mut created = create::finish(checked, target, lock, &record, &Keep::of(settings))?;
    created.duration = started.elapsed();
    Ok(Saved::Created(Box::new(created)))
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
    checksum: &str,
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
            if meta.checksum == checksum && meta.db_size == size && meta.check == CheckResult::Ok)
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
        diff::rebuild::rebuild(entry, &mut sink, &progress, threads)
    } else {
        archive::decompress::extract(entry, &mut sink, &progress, threads)
    };
    match read {
        Ok(_) => Ok(true),
        Err(Error::Damaged { backup, message }) => {
            tracing::warn!("{message}: not relied on as the pre-restore copy");
            crate::store::damage::mark(&backup, &message);
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
