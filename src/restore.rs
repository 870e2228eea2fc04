//! The restore engine: choosing the backup, checking it, saving what it replaces,
//! replacing atomically, refusing a database in use.
//!
//! Order matters: the backup is decompressed beside the target and checked
//! (CRCs, size, SHA-256, `integrity_check`) before anything is touched. An
//! existing target not in use is then locked against writers (a "guard" write
//! transaction, see `Guard`), saved as a pre-restore copy recorded under its
//! own path, checked again for users, taken out of WAL mode (so that a writer
//! that opens it in the last instant cannot commit to the replaced file, see
//! `guard`), its `-wal`, `-shm` and `-journal` removed (an old WAL replayed
//! onto restored pages corrupts them), and only then is the
//! checked copy renamed over it, still under the guard: a commit either made it
//! into the pre-restore copy or was never allowed. A signal before that rename
//! leaves the target as it was.
//!
//! Whether the target is there is decided under the backup-directory lock, so
//! two restores into a missing database restore it once. A missing (or empty)
//! target gets its stale `-wal`, `-shm` and `-journal` removed too, and is
//! published by `link(2)`, which never replaces a file that appeared meanwhile.

mod guard;
pub(crate) mod newer_copy;
mod other_host;
mod pre_restore;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::diff::rebuild::Bases;
use crate::error::{Context, Error, Result, show};
use crate::lock::{self, DirLock};
use crate::slurm::job::JobContext;
use crate::snapshot;
use crate::sqlite_file::{self, CheckKind, Header, Integrity, sibling};
use crate::store::unlike::Tables;
use crate::store::{
    BackupDir, DbId, Entry, LOCK_FILE, Legacy, Role, TEMP_PREFIX, TempFile, copy_mode, ownership,
    sync_dir,
};
use guard::{Guard, Left};
use pre_restore::Saved;

/// SQLite's lock bytes in the database file (PENDING, RESERVED, SHARED range).
const SQLITE_LOCK_BYTES: (i64, i64) = (0x4000_0000, 512);
/// PENDING and RESERVED, the first two of them: held by a rollback-journal writer.
const SQLITE_PENDING_RESERVED: (i64, i64) = (0x4000_0000, 2);
/// The "DMS" byte of `-shm` that every connection to a WAL database holds.
const SHM_DMS_BYTE: (i64, i64) = (128, 1);
/// WAL's write lock in `-shm`: held by the one writer of a WAL database.
const SHM_WRITE_BYTE: (i64, i64) = (120, 1);
/// WAL's read marks in `-shm`: one held by each read transaction.
const SHM_READ_MARKS: (i64, i64) = (123, 5);

/// What to restore, and where.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// A backup file name, or `latest`.
    pub name: String,
    pub target: PathBuf,
    /// The configured database (`db_path`), when there is one: `latest` means its
    /// newest restore point, and another database's backup is not restored over it.
    pub db: Option<PathBuf>,
    /// Replace a target that is not an SQLite database; restore another
    /// database's backup over this one; with `named`, restore a backup whose
    /// database fails its check.
    pub force: bool,
    /// The user named the backup (not `latest`, not `--before-job`; `name`
    /// may be a staged remote copy's either way).
    pub named: bool,
    pub if_db_missing: bool,
    /// Run `integrity_check` even on a backup whose recorded checksum proves it
    /// holds the snapshot that passed its check (`needs_integrity_check`).
    pub full_check: bool,
    /// Take the backup from this directory instead (a remote's restore point
    /// downloaded beside the target, `remote::fetch`); the lock and a
    /// pre-restore copy stay in the backup directory.
    pub from: Option<PathBuf>,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    /// `--if-db-missing` and the target exists.
    Skipped,
    /// `latest --if-db-missing` on a new project's first run: no database and
    /// no backup of it yet.
    NothingYet,
    Restored(Restored),
}

#[derive(Debug)]
pub(crate) struct Restored {
    pub name: String,
    pub target: PathBuf,
    /// The backup holding what was replaced (`None`: nothing was there).
    pub saved: Option<String>,
    /// `saved` was already there with that same content (a restore point or an
    /// earlier pre-restore copy), so no new copy was made.
    pub saved_before: bool,
    /// Newer restore points passed over by `latest`, and why.
    pub passed_over: Vec<(String, String)>,
}

/// `restore latest --if-db-missing` on a first run: nothing to restore. A
/// mirror holding restore points means the backup directory was lost, not
/// that this is a first run: `latest` fails as without `--if-db-missing`,
/// naming the mirror, so a job script stops instead of starting from nothing.
fn no_backup_yet(
    settings: &Settings,
    dir: &BackupDir,
    request: &Request,
    owner: &DbId,
) -> Result<bool> {
    Ok(request.if_db_missing
        && request.name == "latest"
        && request.from.is_none()
        && crate::store::latest::first_run(dir, owner)?
        && crate::store::latest::mirror_instead(dir, &settings.mirror_dirs, owner, None, |_| true)
            .is_none())
}

/// `request`, with `integrity_check` for every candidate when the database
/// `latest` replaces fails its check ([`replaced_unsound`]).
fn escalated<'a>(
    settings: &Settings,
    dir: &BackupDir,
    request: &'a Request,
    present: Present,
) -> std::borrow::Cow<'a, Request> {
    let Some(why) = replaced_unsound(dir, request, present, settings.busy_timeout) else {
        return std::borrow::Cow::Borrowed(request);
    };
    tracing::warn!(
        "{} fails its check ({why}): the restore points are checked with integrity_check (as --full-check), since the newest may hold damage quick_check cannot see",
        show(&request.target)
    );
    std::borrow::Cow::Owned(Request {
        full_check: true,
        ..request.clone()
    })
}

/// Why the database `latest` replaces fails `quick_check` (or is no
/// database), when it does: the reason to restore, and damage that the
/// newest points, which passed only `quick_check`, may hold from before it
/// showed (T27 F-M). When the newest restore point holds it as it is, the
/// restore would give that very content back: it is asked for as a repair,
/// so the whole `integrity_check` judges it (T36 N1: an index out of step
/// with its table, which `quick_check` does not see).
fn replaced_unsound(
    dir: &BackupDir,
    request: &Request,
    present: Present,
    busy_timeout: std::time::Duration,
) -> Option<String> {
    if request.name != "latest" || request.full_check || present != Present::Database {
        return None;
    }
    let target = &request.target;
    let kind = match crate::due::unless_unchanged(dir, target, false) {
        Ok(crate::due::Changed::Unchanged(_)) => CheckKind::IntegrityCheck,
        _ => CheckKind::QuickCheck,
    };
    // In use: the restore is refused further on, naming the user; a read of
    // the file alone (`immutable`) would see a live WAL database torn (T28 F4).
    if in_use(target).is_some() {
        return None;
    }
    let with_sidecar = ["-wal", "-journal"]
        .iter()
        .any(|suffix| fs::metadata(sibling(target, suffix)).is_ok_and(|m| m.len() > 0));
    if with_sidecar {
        // Read through SQLite, which replays the WAL or rolls back the hot
        // journal left by a crashed writer; a failure to read says nothing.
        let conn = snapshot::connect(target, busy_timeout).ok()?;
        return match sqlite_file::check_on(&conn, kind) {
            Ok(Integrity::Failed(detail)) => Some(sqlite_file::one_line(&detail)),
            _ => None,
        };
    }
    match sqlite_file::check_file(target, kind) {
        Ok(Integrity::Failed(detail)) => Some(sqlite_file::one_line(&detail)),
        Ok(_) => None,
        // A signal stopped the check: nothing found (the restore stops at
        // its next step), not "fails its check" of a sound database (T36 N2).
        Err(Error::Interrupted(_) | Error::Stopped { .. }) => None,
        // Not a database SQLite can read (a damaged header).
        Err(error) => Some(error.to_string()),
    }
}

/// Restore per `request`. Reading needs no write access to the backup directory:
/// a restore into a new file proceeds without the lock when the directory cannot
/// hold one (read-only), still never replacing a file that appears meanwhile.
pub(crate) fn restore(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    request: &Request,
) -> Result<Outcome> {
    let target = &request.target;
    refuse_backup_file(settings, dir, target).and_then(|()| refuse_sidecar_name(target))?;
    let untouched = untouched(target);
    let Some((lock, present)) = lock_target(settings, job, dir, request)? else {
        return Ok(Outcome::Skipped);
    };
    let target_id = DbId::of(target);
    let db_id = request.db.as_deref().map(DbId::of);
    let owner = db_id.as_ref().unwrap_or(&target_id);
    if no_backup_yet(settings, dir, request, owner)? {
        return Ok(Outcome::NothingYet);
    }
    // Under any name of it (`b/../a/results.db`, a linked directory, a bind mount).
    let into_db = db_id.as_ref().is_some_and(|db| db.is_file(target));
    let from = request.from.as_ref().map(BackupDir::new);
    let candidates = choose(
        from.as_ref().unwrap_or(dir),
        request,
        db_id.as_ref(),
        &target_id,
        into_db,
    )?;
    let parent = parent_dir(target);
    crate::store::remove_dead_temps_in(&parent);
    let request = &*escalated(settings, dir, request, present);
    let copy = extract_first_intact(settings, job, &candidates, request, present, &parent)
        .map_err(&untouched)?;
    let (entry, temp) = (copy.entry, copy.temp);
    other_host::warn(&entry, target, &parent);

    let (mut saved, guard) = match (&lock, present) {
        (Some(lock), Present::Database) => {
            let (saved, guard) =
                save_existing(settings, job, dir, lock, target).map_err(&untouched)?;
            (Some(saved), guard)
        }
        _ => {
            // Nothing to save: no signal check after this one.
            crate::signals::stop_if_requested().map_err(&untouched)?;
            (None, None)
        }
    };

    // Atomic publication; no signal check from here on, so a stop leaves either
    // the old database or the new one, never a mixture.
    match present {
        Present::Database => replace(target, temp, guard.as_ref(), saved.as_ref())?,
        Present::Missing | Present::Empty => {
            if !publish_new(target, temp, present, &parent)? {
                // Another process created the database while we extracted.
                if request.if_db_missing {
                    return Ok(Outcome::Skipped);
                }
                return Err(Error::failed(format!(
                    "{} appeared while the backup was being restored; it was left as it is (run the restore again to replace it)",
                    show(target)
                )));
            }
        }
    }
    let synced = sync_dir(&parent);
    if let Some(why) = copy.ownership {
        tracing::warn!("{why}");
    }
    if let Some(guard) = &guard
        && let Some(pid) = guard.replaced_file_user()
    {
        // Opened in the instant between the last check and the rename: the
        // replaced file is in rollback-journal mode (`Guard::leave_wal`), so
        // SQLite refuses its commits (SQLITE_READONLY_DBMOVED).
        tracing::warn!(
            "pid {pid} opened {} while it was being replaced and still has the replaced file open: it reads the replaced content and its writes to it fail; restart it (the replaced content is saved as {})",
            show(target),
            saved.as_ref().map_or("?", |s| s.name())
        );
    }
    if lock.is_some() {
        let undo = match &saved {
            Some(crate::restore::pre_restore::Saved::Existing(name)) => Some(name.as_str()),
            _ => None,
        };
        record_restore(
            settings,
            dir,
            &target_id,
            (&entry.file_name, request.force),
            undo,
        );
    }
    // Only now may writers go on: they open the restored file by name. The guard
    // never checkpoints on close, so the restored file's new -wal is never touched.
    drop(guard);
    held(&entry, target, &target_id, copy.written);
    if let (Some(lock), Some(saved)) = (&lock, &mut saved) {
        settle(settings, job, dir, lock, target, saved);
    }
    drop(lock);
    synced?;
    tracing::info!(target: crate::logging::REPORTED, "restored {} into {}", entry.file_name, show(target));
    Ok(Outcome::Restored(Restored {
        name: entry.file_name.clone(),
        target: target.clone(),
        saved_before: matches!(saved, Some(Saved::Existing(_))),
        saved: saved.map(|s| s.name().to_string()),
        passed_over: copy.passed_over,
    }))
}

/// The checked copy renamed over the database; a failed rename leaves it as
/// it was, back in WAL mode if the guard took it out.
fn replace(
    target: &Path,
    temp: TempFile,
    guard: Option<&Guard>,
    saved: Option<&Saved>,
) -> Result<()> {
    let renamed = fs::rename(temp.path(), target);
    if let (Err(_), Some(guard)) = (&renamed, guard) {
        guard.back_to_wal(target);
    }
    renamed.context(|| {
        format!(
            "cannot replace {}{}",
            show(target),
            saved.map_or(String::new(), |s| format!(
                " (its content is saved as {})",
                s.name()
            ))
        )
    })?;
    temp.keep();
    Ok(())
}

/// What only a write to the restored copy would change, for [`held`]; a
/// backup downloaded from the remote keeps no records.
fn written_before_rename(request: &Request, temp: &TempFile) -> Option<sqlite_file::Written> {
    request
        .from
        .is_none()
        .then(|| sqlite_file::written(temp.path()))
        .flatten()
}

/// The restored database holds exactly `entry`'s content: remembered with its
/// fingerprint (`also_held`), so that "unchanged" and `check`'s `age` know it
/// without reading it whole (T26 #5). Only when nothing was written since the
/// copy was checked (`restored`, taken before the rename, equals what is there
/// after the fingerprint; writers are not held off the new file), and only for
/// the database the backup is of.
fn held(entry: &Entry, target: &Path, target_id: &DbId, restored: Option<sqlite_file::Written>) {
    let Ok(meta) = &entry.meta else { return };
    if restored.is_none() || !target_id.owns(&meta.source) {
        return;
    }
    let Ok(fingerprint) = sqlite_file::fingerprint(target) else {
        return;
    };
    if sqlite_file::written(target) == restored {
        crate::store::also_held::record(&entry.path, &fingerprint);
    }
}

/// Record the restore (`restored`), so that the size drop it made is not taken
/// for a shrink: in the backup directory and each mirror (their `check` judges
/// their copies alike). The restore is done: a record that cannot be written
/// is said, and `check` then warns of the shrink as before.
///
/// Restored through another directory (`--backup-dir MIRROR`), the configured
/// backup directory records it too: its `latest` after a rollback must be the
/// point rolled back to, whichever copy was read (T22 F4).
fn record_restore(
    settings: &Settings,
    dir: &BackupDir,
    db: &DbId,
    (name, forced): (&str, bool),
    undo: Option<&str>,
) {
    let mut others = settings.mirror_dirs.clone();
    others.extend(settings.other_configured_dir().map(Path::to_path_buf));
    let seq = match dir.next_number(&others) {
        Ok(next) => next.seq - 1,
        Err(e) => {
            tracing::warn!("the restore is not recorded for check's shrink criterion: {e}");
            return;
        }
    };
    let dirs = std::iter::once(dir.path()).chain(others.iter().map(PathBuf::as_path));
    for place in dirs.filter(|d| d.is_dir()) {
        if let Err(e) = crate::restored::record(place, db, (name, forced), seq, undo) {
            tracing::warn!("the restore is not recorded for check's shrink criterion: {e}");
        }
    }
}

/// A signal's error says the target was left untouched.
fn untouched(target: &Path) -> impl Fn(Error) -> Error + '_ {
    move |error| match error {
        Error::Interrupted(signal) => Error::Stopped {
            signal,
            message: format!(
                "restore stopped by signal {signal}; {} left untouched",
                show(target)
            ),
        },
        other => other,
    }
}

/// The lock, when the directory can hold one (always when there is a database
/// to save), and what is at the target under it; `None`: `--if-db-missing`,
/// and the database is there.
fn lock_target(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    request: &Request,
) -> Result<Option<(Option<DirLock>, Present)>> {
    let target = &request.target;
    let untouched = untouched(target);
    // A first look, unlocked: a database already there needs no wait for the lock.
    let seen = check_target(target, request.force)?;
    if request.if_db_missing && seen == Present::Database {
        return Ok(None);
    }
    // The lock keeps retention from deleting the chosen backup meanwhile,
    // serialises the pre-restore copy, and makes "is the target there?" one
    // answer for concurrent restores: two `--if-db-missing` at the start of two
    // array tasks restore once, and the second finds the database there.
    let mut lock = match seen {
        Present::Database => Some(lock_for_saving(settings, job, dir, target).map_err(&untouched)?),
        Present::Missing | Present::Empty => {
            // `--if-db-missing` stops waiting once another restore has put it back.
            let restored_meanwhile =
                || request.if_db_missing && fs::metadata(target).is_ok_and(|m| m.len() > 0);
            lock_if_possible(settings, job, dir, restored_meanwhile).map_err(&untouched)?
        }
    };
    let present = check_target(target, request.force)?;
    if request.if_db_missing && present == Present::Database {
        return Ok(None);
    }
    if present == Present::Database && lock.is_none() {
        lock = Some(lock_for_saving(settings, job, dir, target).map_err(&untouched)?);
    }
    Ok(Some((lock, present)))
}

/// What is at the restore target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Present {
    Missing,
    /// A 0-byte file (a `touch`, a job that opened the path before the restore):
    /// nothing to save, and replaced only while still empty.
    Empty,
    /// A file with content (an SQLite database, or anything under `--force`).
    Database,
}

/// Publish the checked copy where there was no database (or an empty file),
/// never replacing one that appeared meanwhile: `Ok(false)` if one did. The
/// stale `-wal`, `-shm` and `-journal` of a deleted database go first: SQLite
/// would replay that WAL onto the restored pages.
fn publish_new(target: &Path, temp: TempFile, present: Present, parent: &Path) -> Result<bool> {
    if let Some(user) = in_use(target) {
        return Err(Error::failed(format!(
            "database {} is in use by {user}; nothing was changed",
            show(target)
        )));
    }
    remove_stale_sidecars(target, "nothing was changed", false)?;
    let aside = match present {
        Present::Empty => match move_empty_aside(target, parent)? {
            Some(aside) => Some(aside),
            None => return Ok(false),
        },
        _ => None,
    };
    match crate::store::link_no_replace(temp.path(), target) {
        // `temp` (dropped) removes its own name; `aside` the empty file.
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if let Some(aside) = aside {
                // Back where it was, unless something took its place too.
                if crate::store::link_no_replace(aside.path(), target).is_err() {
                    tracing::warn!(
                        "the empty file that was at {} is kept as {}",
                        show(target),
                        show(aside.path())
                    );
                    aside.keep();
                }
            }
            Ok(false)
        }
        Err(e) => Err(e).context(|| format!("cannot create {}", show(target))),
    }
}

/// Move an empty target out of the way atomically, and make sure it was still
/// empty when it went (a writer may have filled it since it was looked at);
/// `Ok(None)`, put back, if it was not.
fn move_empty_aside(target: &Path, parent: &Path) -> Result<Option<TempFile>> {
    // A fresh name of ours, then the empty file renamed onto it.
    let mut aside = TempFile::create_in(parent, 0o600)?;
    fs::rename(target, aside.path())
        .context(|| format!("cannot move empty {} aside", show(target)))?;
    if fs::metadata(aside.path()).is_ok_and(|m| m.len() == 0) {
        return Ok(Some(aside));
    }
    crate::store::link_no_replace(aside.path(), target)
        .context(|| format!("cannot put {} back", show(target)))?;
    aside.remove();
    Ok(None)
}

/// Remove `-wal`, `-shm` and `-journal` beside `target`: replayed onto restored
/// pages, a stale WAL or journal corrupts them. `replaced`: a database was
/// there (they were its); else they had none beside them, which is news.
fn remove_stale_sidecars(target: &Path, outcome: &str, replaced: bool) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = sibling(target, suffix);
        // A lost database's WAL may hold its last commits: kept aside, not
        // deleted (T27b F11); its -shm is only an index of it.
        if !replaced && suffix == "-wal" && fs::metadata(&stale).is_ok_and(|m| m.len() > 0) {
            let aside = sibling(
                target,
                &format!(
                    "-wal.orphaned-{}-{}",
                    jiff::Timestamp::now().as_second(),
                    std::process::id()
                ),
            );
            if fs::rename(&stale, &aside).is_ok() {
                tracing::warn!(
                    "moved {} aside as {}: it had no database beside it (left by a deleted or moved one), and replayed onto the restored pages it would corrupt them; it may hold that database's last commits (docs/reliability.md, \"A WAL left by a lost database\")",
                    show(&stale),
                    show(&aside)
                );
                continue;
            }
        }
        match fs::remove_file(&stale) {
            Ok(()) if replaced => tracing::info!(
                "removed {}: it belonged to the database that was replaced, and replayed onto the restored pages it would corrupt them",
                show(&stale)
            ),
            Ok(()) => tracing::warn!(
                "removed {}: it had no database beside it (left by a deleted or moved one), and replayed onto the restored pages it would corrupt them",
                show(&stale)
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).context(|| {
                    format!(
                        "cannot remove stale {}; {} left untouched, {outcome}",
                        show(&stale),
                        show(target)
                    )
                });
            }
        }
    }
    Ok(())
}

/// The lock for a restore into a new file, or `None` when the backup directory
/// cannot hold one (missing, read-only, full): reading needs no write access.
/// `None` also when `done()` says, while waiting, that it is no longer needed.
fn lock_if_possible(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    done: impl Fn() -> bool,
) -> Result<Option<DirLock>> {
    if !dir.path().is_dir() {
        return Ok(None);
    }
    match DirLock::acquire_unless(dir.path(), job, settings.lock_timeout, done) {
        Ok(lock) => Ok(lock),
        Err(Error::Io { context, source })
            if matches!(
                source.raw_os_error(),
                Some(
                    nix::libc::EROFS
                        | nix::libc::EACCES
                        | nix::libc::EPERM
                        | nix::libc::ENOSPC
                        | nix::libc::EDQUOT
                )
            ) =>
        {
            // Normal for a read-only archive: not worth a line at the default level.
            tracing::debug!(
                "restoring without the backup-directory lock ({context}: {source}); a file that appears at the target meanwhile is still never replaced"
            );
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// Why the target could not be saved, naming the backup directory and saying
/// that the target was not touched.
fn cannot_save(dir: &BackupDir, target: &Path, error: Error) -> Error {
    match error {
        Error::Interrupted(_) => error,
        other => {
            let read_only = matches!(&other, Error::Io { source, .. }
                if matches!(source.raw_os_error(), Some(nix::libc::EROFS | nix::libc::EACCES | nix::libc::EPERM)));
            // Damaged past what SQLite reads (T29c C2): the way through, said.
            let corrupt = matches!(&other, Error::Sqlite { source, .. }
                if matches!(source.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)));
            let hint = if read_only {
                " (to read from a read-only backup directory, restore into a new file with --target)".to_string()
            } else if corrupt {
                format!(
                    " (SQLite cannot read it to save it: move it aside, `mv {0} {0}.damaged`, then restore again into the missing database)",
                    show(target)
                )
            } else {
                String::new()
            };
            Error::failed(format!(
                "cannot save {} in {} before replacing it: {other}; nothing was changed{hint}",
                show(target),
                show(dir.path())
            ))
        }
    }
}

fn lock_for_saving(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    target: &Path,
) -> Result<DirLock> {
    let cannot_save = |error: Error| cannot_save(dir, target, error);
    dir.ensure_exists().map_err(cannot_save)?;
    DirLock::acquire(dir.path(), job, settings.lock_timeout).map_err(cannot_save)
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
        return crate::restored::latest_points(dir, db, Some(target));
    }
    let entry = dir.by_name(&request.name)?;
    if !request.force {
        dir.refuse_copy(&entry)?;
    }
    let owner = db.unwrap_or(target);
    let legacy = if entry.legacy {
        Legacy::judge(&dir.entries()?, owner)
    } else {
        Legacy::Ours(Default::default())
    };
    // Named with --force, a failed snapshot (the undo copy of a restore over
    // a corrupt database among them) is given back as saved (T28 F16).
    let forced = request.force && request.named;
    match ownership::role(&entry, owner, &legacy) {
        Role::Failed if !forced => {
            return Err(Error::failed(format!(
                "backup {} is a failed snapshot: it did not pass its integrity check when it was made; refusing to restore it (to inspect it: zcat {} > copy.db, or `dbbackup restore {} --target FILE --force` to have it back as saved)",
                entry.file_name,
                show(&entry.path),
                entry.file_name
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
            if let Some(why) = legacy.unlike(&entry.file_name) {
                return Err(Error::failed(format!(
                    "backup {} is a legacy backup (plain gzip, no recorded database) that {why}; refusing to restore it over {} (use --target to restore it elsewhere, or --force if you mean it)",
                    entry.file_name,
                    show(&request.target)
                )));
            }
            return Err(Error::failed(format!(
                "backup {} is a legacy backup (plain gzip) that records no database, and {} also holds backups of other databases, so it may not be a backup of {}; refusing to restore it over {} (use --target to restore it elsewhere, or --force if you mean it)",
                entry.file_name,
                show(dir.path()),
                show(owner.canonical()),
                show(&request.target)
            )));
        }
        // Said: it is not known to be this database's (T29b N4).
        Role::OwnerUnknown if into_db => tracing::warn!(
            "backup {} is a legacy backup whose owner is unknown{}: restoring it over {} because of --force",
            entry.file_name,
            legacy
                .unlike(&entry.file_name)
                .map_or(String::new(), |why| format!(" (it {why})")),
            show(&request.target)
        ),
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
    if entry.is_failed() && entry.kind_name() != Some("pre-restore") && !forced {
        // A failed snapshot of another database: no better than our own.
        return Err(Error::failed(format!(
            "backup {} is a failed snapshot: it did not pass its integrity check when it was made; refusing to restore it",
            entry.file_name
        )));
    }
    Ok(vec![entry])
}

/// The backup the database's last successful attempt made, newer than every
/// restore point of `candidates`, gone from the backup directory (deleted by
/// hand, purged) or its file holding another backup now (`cp A B`): said,
/// or `restore latest` would give older data without a word, though `check`
/// names it (T34 N14, T35 R1).
fn gone_newest(settings: &Settings, candidates: &[Entry]) -> Option<(String, String)> {
    let (made, why) = last_made_missing(settings, candidates)?;
    let why = format!("{why}: restoring the newest restore point left");
    tracing::warn!("passing over {made}: {why}");
    Some((made, why))
}

/// [`gone_newest`]'s finding: the name, and what became of it.
pub(crate) fn last_made_missing(
    settings: &Settings,
    candidates: &[Entry],
) -> Option<(String, String)> {
    let db = crate::store::DbId::of(settings.db_path.as_deref()?);
    let record = crate::attempts::newest(&settings.backup_dir, &db).filter(|r| r.ok)?;
    let made = record.backup?;
    let order = |name: &str| crate::store::BackupName::parse(name).map(|n| n.order_key());
    // Its file holds another backup now: its header names another file, or
    // it has none (a plain gzip: dbbackup made it with one, T36 N10).
    let copy = |c: &Entry| {
        c.file_name == made
            && (c.legacy
                || c.meta
                    .as_ref()
                    .is_ok_and(|m| m.name.as_ref().is_some_and(|own| *own != made)))
    };
    let exists = settings.backup_dir.join(&made).exists();
    // Or no restore point of this database is under its name: another
    // database's backup of the same name copied over it (T36 N9).
    let foreign = exists && !candidates.iter().any(|c| c.file_name == made);
    // Newer than every restore point but its own file's copy, or than all
    // when that file is gone. A file of its own, damaged, says so itself.
    let newer = candidates
        .iter()
        .filter(|c| !copy(c))
        .all(|c| order(&made) > order(&c.file_name));
    let replaced = foreign || candidates.iter().any(copy);
    (newer && order(&made).is_some() && (!exists || replaced)).then(|| {
        let how = match exists {
            true => "its file there no longer holds it (`dbbackup list` says what it holds)",
            false => "gone from there since (deleted?)",
        };
        let why = format!(
            "the last backup made (at {}) in {}, {how}",
            record.time,
            show(&settings.backup_dir)
        );
        (made, why)
    })
}

/// A checked copy beside the target, ready to be renamed over it.
struct IntactCopy {
    entry: Entry,
    temp: TempFile,
    passed_over: Vec<(String, String)>,
    /// Why the copy could not take the replaced file's owner or group: said
    /// once it replaced it, not for a restore refused after (T25 #7).
    ownership: Option<String>,
    /// What only a write to it would change, taken before the rename ([`held`]).
    written: Option<sqlite_file::Written>,
}

/// Decompress and check candidates until one is intact; errors if none is.
fn extract_first_intact(
    settings: &Settings,
    job: &JobContext,
    candidates: &[Entry],
    request: &Request,
    present: Present,
    parent: &Path,
) -> Result<IntactCopy> {
    let target = &request.target;
    let mut passed_over = Vec::new();
    if request.name == "latest" {
        passed_over.extend(gone_newest(settings, candidates));
    }
    let mut first_error = None;
    let schemas = Schemas::new(target, present);
    for entry in candidates {
        // A diff's base found damaged, then put back from a copy: read again
        // first, as `verify` does, not refused on the old finding (T32 G12).
        crate::verify::reread_changed_base(entry, job, 1);
        // `latest`: one known not to restore (cheap tests, or a failed whole read
        // remembered) is passed over without reading it, also the only one.
        if (request.name == "latest" || candidates.len() > 1)
            && let Some(why) = crate::diff::restore_problem(entry)
        {
            let error = Error::failed(format!("backup {} is damaged: {why}", entry.file_name));
            // Said already as the last backup made (`gone_newest`).
            if passed_over.iter().any(|(name, _)| *name == entry.file_name) {
                first_error.get_or_insert(error);
                continue;
            }
            tracing::warn!("passing over {}: {error}", entry.file_name);
            passed_over.push((entry.file_name.clone(), error.to_string()));
            first_error.get_or_insert(error);
            continue;
        }
        let checked = extract_checked(settings, job, entry, request, present, parent);
        match checked.and_then(|copy| refuse_unrelated_legacy(entry, copy, request, &schemas)) {
            Ok((temp, ownership)) => {
                return Ok(IntactCopy {
                    entry: entry.clone(),
                    written: written_before_rename(request, &temp),
                    temp,
                    passed_over,
                    ownership,
                });
            }
            Err(error @ Error::Interrupted(_)) => return Err(error),
            Err(Error::Io { source, .. })
                if let Some(context) = crate::error::not_writable("directory", parent, &source) =>
            {
                // The temp file beside the target could not be created.
                let outcome = if present != Present::Missing {
                    "it was left untouched"
                } else {
                    "nothing was written"
                };
                return Err(Error::failed(format!(
                    "cannot restore into {}: {context}: {source}; {outcome}",
                    show(target)
                )));
            }
            Err(error @ Error::Io { .. }) => {
                return Err(Error::failed(format!(
                    "{error}; {} left untouched",
                    show(target)
                )));
            }
            Err(error) => {
                // Restoring by name has one candidate: the error below refuses it.
                if candidates.len() > 1 {
                    tracing::warn!("passing over {}: {error}", entry.file_name);
                }
                passed_over.push((entry.file_name.clone(), error.to_string()));
                first_error.get_or_insert(error);
            }
        }
    }
    let error = first_error.unwrap_or_else(|| Error::failed("no backup to restore"));
    Err(match candidates.len() {
        1 => Error::failed(format!(
            "{error}; refusing to restore it; {} left untouched",
            show(target)
        )),
        n => Error::failed(format!(
            "none of the {n} restore points is intact (newest: {error}); {} left untouched",
            show(target)
        )),
    })
}

/// A checked copy of `entry` beside the target, and why it could not take the
/// replaced file's owner or group; nothing else touched.
fn extract_checked(
    settings: &Settings,
    job: &JobContext,
    entry: &Entry,
    request: &Request,
    present: Present,
    parent: &Path,
) -> Result<(TempFile, Option<String>)> {
    let target = &request.target;
    // An empty file's mode too: whoever made it chose it.
    let exists = present != Present::Missing;
    let mode = if exists {
        copy_mode(target)
    } else {
        copy_mode(&entry.path)
    };
    let mut temp = TempFile::create_in(parent, mode)?;
    let total = entry.meta.as_ref().map_or(0, |m| m.db_size);
    let progress = crate::progress::Progress::bytes(total, "restore", settings.progress(), job);
    // Name the directory that is full.
    // Reading a backup never fails with ENOSPC or EDQUOT: writing the copy did.
    let writing = |error: Error| match error {
        error @ Error::Io { .. } if !error.is_disk_full() => error,
        Error::Io { source, .. } => Error::Io {
            context: format!("cannot write the restored copy in {}", show(parent)),
            source,
        },
        other => other,
    };
    let threads = crate::archive::worker_threads(settings.threads, job.cpus_per_task);
    // Named with --force: also a diff on a base known to fail its check, whose
    // result then gets that check (and is given back only as such, below).
    let bases = match request.force && request.named {
        true => Bases::AlsoUnsound,
        false => Bases::Sound,
    };
    crate::diff::extract_to_file(entry, &mut temp, &progress, threads, bases).map_err(writing)?;
    // The one fsync of the restored data, before anyone can see it.
    temp.sync().map_err(writing)?;
    if entry.is_failed() && request.force && request.named {
        let found = match sqlite_file::check_file(temp.path(), CheckKind::QuickCheck) {
            Ok(Integrity::Ok) => None,
            Ok(Integrity::Failed(detail)) => Some(sqlite_file::one_line(&detail)),
            Err(error) => Some(error.to_string()),
        };
        tracing::warn!(
            "backup {} is a failed snapshot{}: restored as saved because of --force; repair it (`sqlite3 {} '.recover'`) before using it",
            entry.file_name,
            found.map_or(String::new(), |why| format!(" ({why})")),
            show(target)
        );
        return keep_ownership(temp, target, exists);
    }
    let full = needs_integrity_check(entry, request.full_check)
        || (bases == Bases::AlsoUnsound && crate::diff::rebuild::on_unsound_base(entry));
    let kind = if full {
        CheckKind::IntegrityCheck
    } else {
        CheckKind::QuickCheck
    };
    if let Integrity::Failed(detail) = sqlite_file::check_file(temp.path(), kind)? {
        let detail = sqlite_file::one_line(&detail);
        // Its SHA-256 was found equal to the one recorded: the database was
        // like this when it was backed up (an index out of step with its
        // table, say). Asked for by name with --force, it is given back: the
        // rows may be all there, and no other copy may hold them (T26 #1).
        if !entry.records_checksum() {
            return Err(Error::failed(format!(
                "backup {} fails {kind} ({detail})",
                entry.file_name
            )));
        }
        // Remembered, as `verify` does: `list`, `check` and `latest` then know
        // (a copy staged from the remote keeps no records).
        if request.from.is_none() {
            crate::store::damage::mark_unsound(&entry.path, &format!("{kind}: {detail}"), true);
        }
        if !(request.force && request.named) {
            return Err(Error::failed(format!(
                "backup {} fails {kind} ({detail}), as the database did when it was backed up (its content is exactly what was backed up): `dbbackup restore {} --target FILE --force` gives it back to be repaired",
                entry.file_name, entry.file_name
            )));
        }
        tracing::warn!(
            "backup {} fails {kind} ({detail}), as the database did when it was backed up: restored because of --force; repair it (`sqlite3 {} 'REINDEX'` for an index, else `.recover`) before using it",
            entry.file_name,
            show(target)
        );
        return keep_ownership(temp, target, exists);
    }
    if full {
        crate::store::damage::clear_checked(&entry.path);
    }
    keep_ownership(temp, target, exists)
}

/// The tables of the database a restore replaces, read once per restore, for
/// telling a legacy backup of another database ([`refuse_unrelated_legacy`]).
struct Schemas<'a> {
    target: &'a Path,
    present: Present,
    of_target: std::cell::OnceCell<Option<Tables>>,
}

impl<'a> Schemas<'a> {
    fn new(target: &'a Path, present: Present) -> Self {
        Schemas {
            target,
            present,
            of_target: std::cell::OnceCell::new(),
        }
    }

    /// The replaced database's tables, when it has any.
    fn of_target(&self) -> Option<&Tables> {
        self.of_target
            .get_or_init(|| {
                (self.present == Present::Database)
                    .then(|| sqlite_file::table_names(self.target))
                    .flatten()
                    .filter(|tables| !tables.is_empty())
            })
            .as_ref()
    }
}

/// A legacy backup (plain gzip) records no database; in a directory the seed
/// shared between databases, the newest may be another's. Its tables unlike
/// the database's it would replace ([`crate::store::unlike::alike`]), it is
/// taken for another's (T28 F13:
/// `restore latest` put a 24 times smaller database with none of the tables
/// over the results, exit 0); `latest` passes over it. Such files are left
/// out of the restore points already ([`crate::store::unlike`]); this is
/// for a file whose schema could not be read there. `copy` is its checked copy,
/// given back when it may replace the database.
fn refuse_unrelated_legacy(
    entry: &Entry,
    copy: (TempFile, Option<String>),
    request: &Request,
    schemas: &Schemas,
) -> Result<(TempFile, Option<String>)> {
    if !entry.legacy || request.force {
        return Ok(copy);
    }
    let (Some(ours), Some(theirs)) = (schemas.of_target(), sqlite_file::table_names(copy.0.path()))
    else {
        return Ok(copy);
    };
    if crate::store::unlike::alike(&theirs, ours) {
        return Ok(copy);
    }
    let list = crate::store::unlike::listed;
    Err(Error::failed(format!(
        "backup {} is a legacy backup (plain gzip, no recorded database) whose tables ({}) are mostly not {}'s ({}): most likely another database's; not restored over it without --force",
        entry.file_name,
        list(&theirs),
        show(&request.target),
        list(ours)
    )))
}

/// The copy, with the replaced file's owner and mode when there is one.
fn keep_ownership(
    mut temp: TempFile,
    target: &Path,
    exists: bool,
) -> Result<(TempFile, Option<String>)> {
    let ownership = if exists {
        keep_owner_and_mode(&mut temp, target)?
    } else {
        None
    };
    Ok((temp, ownership))
}

/// The check a restored copy gets before it is visible (docs/reliability.md).
/// The copy's SHA-256 was just found equal to the one recorded when the snapshot
/// passed its `quick_check`: the bytes are those that were checked, and
/// `quick_check` again (page structure, as SQLite will read it) is enough.
/// `integrity_check` (also index content) for backups that record no checksum
/// or no passed check (legacy, a failed snapshot or a pre-restore copy of a
/// damaged file), and with `--full-check`; `verify` always runs it.
/// A backup marked damaged gets it too: the mark may be `integrity_check`'s
/// own finding, which `quick_check` cannot see, and only a passing
/// `integrity_check` clears it (`store::damage`).
fn needs_integrity_check(entry: &Entry, full_check: bool) -> bool {
    let proven = !entry.legacy
        && entry.damage.is_none()
        && matches!(&entry.meta, Ok(meta) if meta.check == crate::store::CheckResult::Ok);
    !proven || full_check
}

/// Give the restored copy the replaced file's exact mode and group (and owner,
/// as root): a shared results database must stay writable by its group, and
/// `create_in` applied the umask and our own group. Not a member of that
/// group: why, to be said once the copy replaced the file.
fn keep_owner_and_mode(temp: &mut TempFile, target: &Path) -> Result<Option<String>> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let old = fs::metadata(target).context(|| format!("cannot access {}", show(target)))?;
    let ours = temp
        .file()
        .metadata()
        .context(|| format!("cannot access {}", show(temp.path())))?;
    let root = nix::unistd::geteuid().is_root();
    let owner = (root && ours.uid() != old.uid()).then(|| nix::unistd::Uid::from_raw(old.uid()));
    let group = (ours.gid() != old.gid()).then(|| nix::unistd::Gid::from_raw(old.gid()));
    let mut ownership = None;
    if (owner.is_some() || group.is_some())
        && let Err(e) = nix::unistd::fchown(&*temp.file(), owner, group)
    {
        // Not a member of that group: the restore still puts the data back.
        ownership = Some(format!(
            "the restored {} could not be given the group {} of the file it replaced: {e}",
            show(target),
            old.gid()
        ));
    }
    // After chown, which clears set-id bits.
    let mode = old.mode() & 0o7777;
    temp.file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .context(|| format!("cannot set the mode of {}", show(temp.path())))?;
    Ok(ownership)
}

/// Retention and mirror copies for the pre-restore copy of a restore that
/// replaced the database. The restore is done by now: a failure here is said,
/// not made the restore's.
fn settle(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    lock: &DirLock,
    target: &Path,
    saved: &mut Saved,
) {
    if let Err(error) = pre_restore::settle(settings, job, dir, lock, target, saved) {
        tracing::warn!(
            "retention after saving {} as {} failed: {error}",
            show(target),
            saved.name()
        );
    }
}

/// Refuse a target in use, save it as a pre-restore copy under a guard that
/// keeps other writers out until the caller has renamed the restored copy over
/// it, and make sure no stale WAL or journal can be replayed onto the restored
/// file. The caller drops the guard after the rename.
fn save_existing(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    lock: &DirLock,
    target: &Path,
) -> Result<(Saved, Option<Guard>)> {
    if let Some(user) = in_use(target) {
        return Err(Error::failed(format!(
            "database {} is in use by {user}; nothing was changed",
            show(target)
        )));
    }
    // Before the guard: validating opens and closes the file (see `Guard`).
    let database = sqlite_file::validate_database(target);
    let guard = match &database {
        Ok(db) => Guard::take(db, settings.busy_timeout)?,
        // Not a database SQLite can open: no SQLite writer can use it either.
        Err(_) => None,
    };
    let saved = pre_restore::save_before_restore(settings, job, dir, lock, target, database)
        .map_err(|error| cannot_save(dir, target, error))?;
    let kept = |saved: &Saved| match saved {
        Saved::Created(created) => format!("a copy of it was saved as {}", created.entry.file_name),
        Saved::Existing(name) => format!("its content is also held by backup {name}"),
    };
    // Refused before anything touched the target: a new copy taken under the
    // guard (still held) holds exactly what stays in place, and is removed
    // rather than left to count against `keep_pre_restore` (see
    // `pre_restore::discard`); without the guard it is kept, and named.
    let refused = |saved: &Saved| {
        if guard.is_some() && pre_restore::discard(dir, lock, saved) {
            "nothing was replaced".to_string()
        } else {
            format!("nothing was replaced ({})", kept(saved))
        }
    };
    if let Err(error) = crate::signals::stop_if_requested() {
        tracing::info!("{} left untouched; {}", show(target), refused(&saved));
        return Err(error);
    }
    // A process that opened the database meanwhile (a writer waiting for the
    // guard's lock has it open) would write to the replaced file, or replay its
    // WAL onto the restored one, once the guard is gone.
    let user = match &guard {
        Some(guard) => guard.in_use(target),
        None => in_use(target),
    };
    if let Some(user) = user {
        return Err(Error::failed(format!(
            "database {} came into use by {user}; {}",
            show(target),
            refused(&saved)
        )));
    }
    match guard
        .as_ref()
        .map(|guard| guard.leave_wal(target))
        .transpose()?
    {
        None | Some(Left::Unchanged) => {}
        Some(Left::InUse) => {
            let user = guard.as_ref().and_then(|guard| guard.in_use(target));
            return Err(Error::failed(format!(
                "database {} came into use by {}; {}",
                show(target),
                user.as_deref().unwrap_or("another process"),
                refused(&saved)
            )));
        }
        // The database now holds more than the copy: the copy is kept, named.
        Some(Left::Written) => {
            return Err(Error::failed(format!(
                "database {} came into use by another process, which wrote to it; nothing was replaced ({})",
                show(target),
                kept(&saved)
            )));
        }
    }
    remove_stale_sidecars(target, &kept(&saved), true)?;
    Ok((saved, guard))
}

/// What is there to replace. Refuses symlinks, directories, a missing parent
/// directory (a typo should not create directories), and a file that is not an
/// SQLite database unless `force`.
fn check_target(target: &Path, force: bool) -> Result<Present> {
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
            if meta.len() == 0 {
                return Ok(Present::Empty);
            }
            let header =
                sqlite_file::header(target).context(|| format!("cannot read {}", show(target)))?;
            if !force && header != Header::Sqlite {
                return Err(Error::failed(format!(
                    "restore target {} exists and is not an SQLite database; refusing to replace it without --force",
                    show(target)
                )));
            }
            // Its `-wal` may hold committed changes no backup has, and what
            // cannot be opened is saved as bytes, the main file alone: the
            // restore would delete the `-wal` for good (T32 G14).
            if header != Header::Sqlite {
                refuse_unreadable_with_wal(target)?;
            }
            Ok(Present::Database)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Present::Missing),
        Err(e) => Err(e).context(|| format!("cannot access restore target {}", show(target))),
    }
}

/// A target SQLite cannot open whose `-wal` is not empty: refused even with
/// `--force`, saying how to keep both.
fn refuse_unreadable_with_wal(target: &Path) -> Result<()> {
    let mut wal = target.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    match fs::metadata(&wal) {
        Ok(meta) if meta.len() > 0 => Err(Error::failed(format!(
            "restore target {} is not an SQLite database and its {} ({} bytes) may hold committed changes no backup has; refusing to replace them, even with --force: move both aside (`mv {t} {t}.damaged && mv {w} {t}.damaged-wal`), then restore into the missing database",
            show(target),
            show(&wal),
            meta.len(),
            t = show(target),
            w = show(&wal),
        ))),
        _ => Ok(()),
    }
}

/// A target in the backup directory or a mirror named like a backup, a temp file
/// or the lock file would replace (or pose as) a backup: refused even with
/// `--force`.
fn refuse_backup_file(settings: &Settings, dir: &BackupDir, target: &Path) -> Result<()> {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    // What the file there is (or would pose as), for the message.
    let what = if name == LOCK_FILE {
        "is its lock file"
    } else if name.starts_with(TEMP_PREFIX) {
        "is named like its temp files"
    } else if name.starts_with("backup_") && name.ends_with(".gz") {
        "is named like a backup file"
    } else {
        return Ok(());
    };
    let Ok(parent) = fs::canonicalize(parent_dir(target)) else {
        return Ok(());
    };
    let dirs = std::iter::once(dir.path()).chain(settings.mirror_dirs.iter().map(PathBuf::as_path));
    for backups in dirs {
        // Under any name of it (a bind mount too).
        if crate::store::same_existing_dir(backups, &parent) {
            return Err(Error::failed(format!(
                "restore target {} is in backup directory {} and {what}; refusing to write a database there, even with --force (restore into another path)",
                show(target),
                show(backups)
            )));
        }
    }
    Ok(())
}

/// A target named like SQLite's own `-wal`, `-shm` or `-journal` file would be
/// taken by SQLite for that file of the database beside it (a restored image in
/// its WAL; with --force, a WAL of committed rows replaced): never written.
fn refuse_sidecar_name(target: &Path) -> Result<()> {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    for suffix in ["-wal", "-shm", "-journal"] {
        if let Some(db) = name.strip_suffix(suffix)
            && !db.is_empty()
        {
            return Err(Error::usage(format!(
                "restore target {} is named like the {suffix} file SQLite keeps beside database {db}; refusing to restore a database there, even with --force (choose a name without {suffix})",
                show(target)
            )));
        }
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    crate::store::atomic::parent_or_dot(path).to_path_buf()
}

/// Who uses the database: a POSIX lock on its lock bytes or on `-shm` (any host,
/// through the filesystem's lock manager), or an open descriptor (this host).
fn in_use(target: &Path) -> Option<String> {
    let db = File::open(target).ok();
    let shm = File::open(sibling(target, "-shm")).ok();
    lock_user(db.as_ref(), shm.as_ref()).or_else(|| open_user(target))
}

/// A POSIX lock of another process on the database's lock bytes or on `-shm`,
/// said by what the locked bytes mean to SQLite: a writer holds WAL's write
/// byte or the rollback journal's PENDING/RESERVED bytes (or the SHARED range
/// for writing); a reader a WAL read mark or the SHARED range for reading.
/// Every connection to a WAL database keeps a read lock on the SHARED range and
/// the DMS byte, reading or not: that says only that it has the database open.
fn lock_user(db: Option<&File>, shm: Option<&File>) -> Option<String> {
    let wal = shm.is_some();
    let probes = [
        (shm, SHM_WRITE_BYTE, Use::Writing),
        (shm, SHM_READ_MARKS, Use::Reading),
        (db, SQLITE_PENDING_RESERVED, Use::Writing),
        (
            db,
            SQLITE_LOCK_BYTES,
            if wal { Use::Open } else { Use::Reading },
        ),
        (shm, SHM_DMS_BYTE, Use::Open),
    ];
    for (file, (start, len), meaning) in probes {
        if let Some(file) = file
            && let Some((pid, write_lock)) = lock::locked_by_other(file, start, len)
        {
            let who = holder(pid);
            return Some(match (meaning, write_lock) {
                (Use::Writing, _) | (_, true) => format!(
                    "{who}, which is writing to it; {}",
                    advice(pid, "stop the writer before restoring")
                ),
                (Use::Reading, false) => {
                    format!("{who}, which is reading it; {}", advice(pid, STOP_IT))
                }
                (Use::Open, false) => {
                    format!("{who}, which has it open; {}", advice(pid, STOP_IT))
                }
            });
        }
    }
    None
}

/// What a lock on some of SQLite's lock bytes says its holder is doing.
#[derive(Clone, Copy)]
enum Use {
    Writing,
    Reading,
    Open,
}

fn open_user(target: &Path) -> Option<String> {
    open_elsewhere(target).map(|pid| {
        let pid = pid as i32;
        format!(
            "{}, which has it open; {}",
            holder(pid),
            advice(pid, STOP_IT)
        )
    })
}

const STOP_IT: &str = "stop it before restoring";

/// Who holds the database: the process that ran this dbbackup (a Python
/// script or notebook with its own connection open) is said as such (T27 F-K).
fn holder(pid: i32) -> String {
    match pid {
        ..=0 => "a process on another node".into(),
        _ if ran_us(pid) => format!("pid {pid}, the process that ran this dbbackup"),
        _ => format!("pid {pid}"),
    }
}

fn advice(pid: i32, otherwise: &str) -> String {
    match ran_us(pid) {
        true => "close its own connections to the database before restoring".into(),
        false => otherwise.into(),
    }
}

fn ran_us(pid: i32) -> bool {
    pid > 0 && pid == nix::unistd::getppid().as_raw()
}

/// A process on this host, other than us, with the file (or its `-wal`) open,
/// under any name: by device and inode, so a process that opened it through a
/// bind mount or a hard link is seen too.
fn open_elsewhere(target: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let wanted: Vec<(u64, u64)> = [target.to_path_buf(), sibling(target, "-wal")]
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .filter(fs::Metadata::is_file)
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    process_with_open(|fd| fs::metadata(fd).is_ok_and(|m| wanted.contains(&(m.dev(), m.ino()))))
}

/// The first process on this host, other than us, with a descriptor (a
/// `/proc/PID/fd/N` path) that `matches`.
fn process_with_open(matches: impl Fn(&Path) -> bool) -> Option<u32> {
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
        if fds.flatten().any(|fd| matches(&fd.path())) {
            return Some(pid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_db(path: &Path) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }

    /// A checked copy ready to publish, holding `bytes`.
    fn temp_holding(dir: &Path, bytes: &[u8]) -> TempFile {
        let mut temp = TempFile::create_in(dir, 0o600).unwrap();
        io::Write::write_all(temp.file(), bytes).unwrap();
        temp
    }

    #[test]
    fn the_target_is_missing_empty_or_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.db");
        assert_eq!(check_target(&target, false).unwrap(), Present::Missing);
        fs::write(&target, b"").unwrap();
        assert_eq!(check_target(&target, false).unwrap(), Present::Empty);
        fs::remove_file(&target).unwrap();
        sqlite_db(&target);
        assert_eq!(check_target(&target, false).unwrap(), Present::Database);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_replaced_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let notes = dir.path().join("notes.txt");
        fs::write(&notes, "my notes\n").unwrap();
        let refused = check_target(&notes, false).unwrap_err().to_string();
        assert!(refused.contains("is not an SQLite database"), "{refused}");
        assert_eq!(check_target(&notes, true).unwrap(), Present::Database);
        assert_eq!(fs::read_to_string(&notes).unwrap(), "my notes\n");
    }

    #[test]
    fn symlinks_directories_and_missing_parents_are_refused_even_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.db");
        sqlite_db(&real);
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        for (target, says) in [
            (link, "is a symbolic link"),
            (sub, "is a directory"),
            (
                dir.path().join("typo/r.db"),
                "does not exist; create it first",
            ),
        ] {
            let refused = check_target(&target, true).unwrap_err().to_string();
            assert!(refused.contains(says), "{}: {refused}", target.display());
        }
    }

    #[test]
    fn a_new_database_is_published_where_there_was_none() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.db");
        let temp = temp_holding(dir.path(), b"restored");
        let temp_path = temp.path().to_path_buf();
        assert!(publish_new(&target, temp, Present::Missing, dir.path()).unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"restored");
        assert!(!temp_path.exists(), "the temp name is gone");
    }

    #[test]
    fn a_file_that_appeared_meanwhile_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.db");
        // Looked missing (or empty) when checked; a writer filled it since.
        for looked in [Present::Missing, Present::Empty] {
            fs::write(&target, "a job's work").unwrap();
            let temp = temp_holding(dir.path(), b"restored");
            assert!(!publish_new(&target, temp, looked, dir.path()).unwrap());
            assert_eq!(fs::read_to_string(&target).unwrap(), "a job's work");
        }
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "no temp file left: {left:?}");
    }

    #[test]
    fn an_empty_target_is_replaced_and_stale_sidecars_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.db");
        fs::write(&target, b"").unwrap();
        let wal = dir.path().join("r.db-wal");
        fs::write(&wal, "a deleted database's WAL").unwrap();
        let temp = temp_holding(dir.path(), b"restored");
        assert!(publish_new(&target, temp, Present::Empty, dir.path()).unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"restored");
        assert!(!wal.exists(), "the stale WAL would be replayed onto it");
    }
}
