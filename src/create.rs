//! Making one backup: snapshot, check, compress, publish, then retention.
//! Shared by every command that creates backups; the caller holds the lock
//! (except for `if_due`, which takes it without waiting).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::archive::{self, compress};
use crate::attempts::{self, Verdict};
use crate::config::Settings;
use crate::diff::{self, pagehash::HashWriter, write::Limited};
use crate::due::{self, Changed, Decision, Due};
use crate::error::{Context, Error, Result, show};
use crate::lock::{DirLock, Wait};
use crate::mirror::{self, MirrorResult};
use crate::progress::Progress;
use crate::retention;
use crate::slurm::job::JobContext;
use crate::snapshot::Source;
use crate::sqlite_file::{self, Integrity};
use crate::store::metadata::{
    self, CheckResult, DiffInfo, DiffType, FORMAT_VERSION, Fingerprint, Kind, Metadata,
};
use crate::store::{BackupDir, DbId, Entry, copy_mode};

/// What a backup run did.
#[derive(Debug)]
pub enum Outcome {
    Created(Box<Created>),
    /// The database is unchanged since this backup; no backup was written, but
    /// mirrors that lacked it were filled in.
    Unchanged {
        newest: String,
        filled: Option<Filled>,
    },
}

impl Outcome {
    /// Made, passed its check and copied to every mirror; or unchanged, and
    /// every mirror holds the newest restore point.
    pub fn is_complete(&self) -> bool {
        match self {
            Outcome::Created(created) => created.is_complete(),
            Outcome::Unchanged { filled, .. } => filled.as_ref().is_none_or(Filled::is_complete),
        }
    }
}

/// A run that made no backup copied the newest restore point `name` (a diff
/// with its base) to the mirrors that lacked it: after a failed copy, the next
/// run fills the mirror in. `mirrors` holds only those it tried.
#[derive(Debug)]
pub struct Filled {
    pub name: String,
    pub mirrors: Vec<MirrorResult>,
}

impl Filled {
    pub fn is_complete(&self) -> bool {
        self.mirrors.iter().all(|m| m.result.is_ok())
    }

    /// The attempt's verdict, given what it was without the mirrors.
    fn verdict(&self, otherwise: String) -> Verdict {
        if self.is_complete() {
            return Verdict::Succeeded {
                backup: self.name.clone(),
                detail: format!(
                    "{otherwise}; {} copied to {}",
                    self.name,
                    self.mirrors
                        .iter()
                        .map(|m| show(&m.dir))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
        }
        Verdict::Failed(format!(
            "{} not copied to {}",
            self.name,
            failed_mirrors(&self.mirrors)
        ))
    }
}

/// "DIR: why" of each mirror a copy failed in.
fn failed_mirrors(mirrors: &[MirrorResult]) -> String {
    mirrors
        .iter()
        .filter_map(|m| {
            m.result
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", show(&m.dir)))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Copy `db`'s newest restore point (and a diff's base) to every mirror that
/// lacks it, by the cheapest test (`mirror::lacks`: a name and a size, one
/// `stat` per mirror, nothing when no mirror is configured). `None` when none
/// lacks it.
pub(crate) fn fill_mirrors(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    db: &Path,
) -> Option<Filled> {
    if settings.mirror_dirs.is_empty() {
        return None;
    }
    let id = DbId::of(db);
    let newest = match dir.newest_restore_point(&id, |e| diff::restore_problem(e).is_none()) {
        Ok(newest) => newest?,
        Err(error) => {
            tracing::warn!("cannot tell whether the mirrors hold the newest backup: {error}");
            return None;
        }
    };
    let lacking: Vec<_> = settings
        .mirror_dirs
        .iter()
        .filter(|m| {
            mirror::lacks(m, &newest)
                .inspect(|why| {
                    tracing::info!("mirror {} lacks the newest backup: {why}", show(m));
                })
                .is_some()
        })
        .cloned()
        .collect();
    if lacking.is_empty() {
        return None;
    }
    let protected = crate::slurm::array::JobState::protected(dir);
    let mirrors = mirror::copy_to_all(
        &lacking,
        &newest,
        &id,
        job,
        Wait::Upto(settings.lock_timeout),
        policy(settings),
        &protected,
    );
    Some(Filled {
        name: newest.file_name,
        mirrors,
    })
}

#[derive(Debug)]
pub struct Created {
    pub entry: Entry,
    pub meta: Metadata,
    pub duration: Duration,
    pub pruned: Vec<String>,
    pub mirrors: Vec<MirrorResult>,
    /// Why this is a full backup although a diff was due (its base failed a
    /// check, the diff grew too large, ...).
    pub full_because: Option<String>,
}

impl Created {
    pub fn is_good(&self) -> bool {
        self.meta.check == CheckResult::Ok
    }

    /// Good, and copied to every mirror.
    pub fn is_complete(&self) -> bool {
        self.is_good() && self.mirrors.iter().all(|m| m.result.is_ok())
    }
}

/// How the source is read.
enum Reader {
    /// A live SQLite database, through one read transaction.
    Sqlite(Source),
    /// Raw bytes of a file SQLite cannot open (only for pre-restore copies of a
    /// damaged target, so that restoring never destroys the only copy of anything).
    RawFile(File, String),
}

/// Back up `db` into `dir` unless its newest restore point already holds the
/// database's current state (with `force`, regardless).
pub(crate) fn if_changed(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    lock: &DirLock,
    db: &Path,
    kind: Kind,
    force: bool,
) -> Result<Outcome> {
    match due::unless_unchanged(dir, db, force)? {
        Changed::Due(due) => run(settings, job, dir, lock, &due, kind),
        Changed::Unchanged(newest) => {
            dir.remove_stale_temps();
            let filled = fill_mirrors(settings, job, dir, db);
            Ok(Outcome::Unchanged { newest, filled })
        }
    }
}

/// What `if_due` did.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// No backup: why; mirrors that lacked the newest restore point were
    /// filled in (not when another process is making a backup: it copies).
    Skipped {
        reason: String,
        filled: Option<Filled>,
    },
    Made(Outcome),
}

/// `auto`'s rule: back up `db` when the interval has passed since its newest
/// restore point and it changed since, never waiting for another process's
/// backup. Decided before taking the lock, so that "not due" costs no lock, and
/// again under it.
pub(crate) fn if_due(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    db: &Path,
    kind: Kind,
) -> Result<Attempt> {
    let interval = settings.min_interval;
    let not_due = |reason| Attempt::Skipped {
        reason,
        filled: fill_mirrors(settings, job, dir, db),
    };
    let due = match due::by_interval(dir, db, interval)? {
        Decision::Due(due) => due,
        Decision::NotDue(why) => return Ok(not_due(why)),
    };
    prepare_dir(settings, dir, db)?;
    let Some(lock) = DirLock::acquire(dir.path(), job, Wait::No)? else {
        return Ok(Attempt::Skipped {
            reason: "another process is making a backup right now".to_string(),
            filled: None,
        });
    };
    match due::recheck(dir, due, interval)? {
        Decision::Due(due) => run(settings, job, dir, &lock, &due, kind).map(Attempt::Made),
        Decision::NotDue(why) => {
            drop(lock);
            Ok(not_due(why))
        }
    }
}

/// Create the backup directory for an attempt at backing up `db`, but only
/// once the database has been read: a failed attempt (not a database, busy past
/// the busy timeout) must not leave an empty backup directory behind. An
/// existing directory costs one `stat`.
pub(crate) fn prepare_dir(settings: &Settings, dir: &BackupDir, db: &Path) -> Result<()> {
    if !dir.path().exists() {
        sqlite_file::validate_database(db)?;
        Source::open(db, settings.busy_timeout)?.probe()?;
    }
    dir.ensure_exists()
}

/// What a command's backup attempt came to, for its attempt record; `None`
/// when it attempted nothing (not due, another task made the backup).
pub(crate) trait Attempted {
    fn verdict(&self) -> Option<Verdict>;
}

impl Attempted for Outcome {
    fn verdict(&self) -> Option<Verdict> {
        Some(match self {
            Outcome::Created(created) if created.is_complete() => {
                Verdict::made(&created.entry.file_name)
            }
            Outcome::Created(created) if !created.is_good() => Verdict::Failed(format!(
                "snapshot failed its integrity check; kept as {}",
                created.entry.file_name
            )),
            Outcome::Created(created) => Verdict::Failed(format!(
                "{} made, but not copied to {}",
                created.entry.file_name,
                failed_mirrors(&created.mirrors)
            )),
            Outcome::Unchanged { newest, filled } => match filled {
                Some(filled) => filled.verdict(format!("unchanged since {newest}")),
                None => Verdict::unchanged(newest),
            },
        })
    }
}

impl Attempted for Attempt {
    fn verdict(&self) -> Option<Verdict> {
        match self {
            // Nothing attempted, unless a mirror was filled in.
            Attempt::Skipped { reason, filled } => filled
                .as_ref()
                .map(|f| f.verdict(format!("skipped: {reason}"))),
            Attempt::Made(outcome) => outcome.verdict(),
        }
    }
}

impl<T: Attempted> Attempted for Option<T> {
    fn verdict(&self) -> Option<Verdict> {
        self.as_ref().and_then(Attempted::verdict)
    }
}

/// The one place every command's backup attempt (backup, auto, periodic,
/// pre-job, post-job, final) passes through with its result, from taking the
/// lock to the last mirror: its outcome is recorded for `check` (`attempts`).
/// A usage or configuration error attempted nothing and is not recorded.
pub(crate) fn recorded<T: Attempted>(
    settings: &Settings,
    job: &JobContext,
    kind: Kind,
    result: Result<T>,
) -> Result<T> {
    if let (Some(verdict), Some(db)) = (verdict_of(&result), settings.db_path.as_deref()) {
        attempts::record(&settings.backup_dir, &DbId::of(db), job, kind, verdict);
    }
    result
}

/// How an attempt's result is recorded; `None` for no attempt.
pub(crate) fn verdict_of<T: Attempted>(result: &Result<T>) -> Option<Verdict> {
    match result {
        Ok(done) => done.verdict(),
        Err(Error::Usage(_) | Error::Config { .. }) => None,
        Err(error) => Some(Verdict::Failed(error.to_string())),
    }
}

/// Make the backup `due` describes; the caller holds the lock.
pub(crate) fn run(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    _lock: &DirLock,
    due: &Due,
    kind: Kind,
) -> Result<Outcome> {
    let started = Instant::now();
    dir.remove_stale_temps();
    let reader = Reader::Sqlite(Source::open(due.db(), settings.busy_timeout)?);
    let mut plan = diff::plan(settings.diff_backups, dir, due.id(), kind);
    // Planning may read a base whole: a signal meanwhile ends the run here.
    crate::signals::check()?;
    loop {
        let fingerprint = Some(due.fingerprint().clone());
        let target = (due.db(), due.id());
        match create(
            settings,
            job,
            dir,
            target,
            &reader,
            kind,
            fingerprint,
            started,
            &plan,
        )? {
            Try::Done(outcome) => return Ok(outcome),
            Try::Fallback(Fallback { why, base_damaged })
                if matches!(plan, diff::Plan::Diff(_)) =>
            {
                // A signal can interrupt the base's read: stop, not start again.
                crate::signals::check()?;
                if base_damaged {
                    tracing::warn!("making a full backup instead of a diff: {why}");
                } else {
                    tracing::info!("making a full backup instead of a diff: {why}");
                }
                plan = diff::Plan::Full {
                    hashes: true,
                    why: Some(why),
                };
            }
            Try::Fallback(Fallback { why, .. }) => return Err(Error::failed(why)),
        }
    }
}

/// What one try at a backup came to.
enum Try {
    Done(Outcome),
    /// A diff was given up (too large, failed check, not describable): make a
    /// full backup instead. Nothing was published.
    Fallback(Fallback),
}

/// Why a diff was given up for a full backup.
struct Fallback {
    why: String,
    /// Its base failed the check beside the snapshot: news (a warning), where a
    /// diff grown too large or a snapshot it cannot describe is routine.
    base_damaged: bool,
}

impl Fallback {
    fn routine(why: String) -> Try {
        Try::Fallback(Fallback {
            why,
            base_damaged: false,
        })
    }
}

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
/// instead (see `create`).
pub(crate) fn save_before_restore(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    _lock: &DirLock,
    target: &Path,
    database: Result<std::path::PathBuf>,
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
    let full = diff::Plan::Full {
        hashes: false,
        why: None,
    };
    let attempt = create(
        settings,
        job,
        dir,
        (&absolute, &id),
        &reader,
        Kind::PreRestore,
        None,
        started,
        &full,
    );
    drop(reader);
    match attempt? {
        Try::Done(Outcome::Created(created)) => Ok(Saved::Created(created)),
        Try::Done(Outcome::Unchanged { newest, .. }) => Ok(Saved::Existing(newest)),
        Try::Fallback(Fallback { why, .. }) => Err(Error::failed(why)),
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

#[allow(clippy::too_many_arguments)]
fn create(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    (db, id): (&Path, &DbId),
    reader: &Reader,
    kind: Kind,
    fingerprint: Option<Fingerprint>,
    started: Instant,
    plan: &diff::Plan,
) -> Result<Try> {
    let created = Timestamp::now();
    let base = match plan {
        diff::Plan::Diff(base) => Some(&**base),
        diff::Plan::Full { .. } => None,
    };
    let mut stream = match base.map(|base| diff::hashes_of(dir, base)).transpose() {
        Ok(hashes) => hashes.map(diff::write::DiffStream::new),
        Err(why) => return Ok(Fallback::routine(why)),
    };
    // A full backup that may become a base writes its page hashes to disk as
    // it streams (16 bytes a page: never a table in memory).
    let keep_hashes = matches!(plan, diff::Plan::Full { hashes: true, .. });
    let mut hashes = keep_hashes
        .then(|| HashWriter::create(dir.path()))
        .and_then(|made| {
            made.inspect_err(|e| tracing::warn!("cannot keep page hashes: {e}"))
                .ok()
        });
    let confirmation = base.and_then(diff::Confirmation::start);
    let too_large = Arc::new(AtomicBool::new(false));
    let output_failed = Arc::new(AtomicBool::new(false));
    let mut temp = dir.create_temp(copy_mode(db))?;
    let write_error = |e| Error::Io {
        context: format!("cannot write backup in {}", show(dir.path())),
        source: e,
    };
    let (check, compressed, members) = {
        let file = temp.file();
        // Placeholder for the metadata member, rewritten once sizes are known.
        file.write_all(&[0u8; metadata::HEADER_LEN])
            .map_err(write_error)?;
        // A diff larger than half its base is given up for a full backup.
        let limit = base.map_or(u64::MAX, |b| {
            (b.entry.size / 2).saturating_sub(metadata::HEADER_LEN as u64)
        });
        let mut out = Limited {
            inner: BufWriter::with_capacity(1 << 20, &*file),
            written: 0,
            limit,
            exceeded: Arc::clone(&too_large),
            failed: Arc::clone(&output_failed),
        };
        let threads = archive::worker_threads(settings.threads, job.cpus_per_task);
        let total = std::fs::metadata(db).map_or(0, |m| m.len());
        let progress = Progress::bytes(total, "backup", settings.progress(), job);
        let produced =
            compress::compress_parallel(&mut out, settings.compression_level, threads, |sink| {
                match reader {
                    Reader::Sqlite(source) => {
                        let counted = |page: &[u8]| {
                            progress.advance(page.len() as u64);
                            if let Some(stream) = stream.as_mut() {
                                return stream.page(page, sink);
                            }
                            if let Some(hashes) = hashes.as_mut() {
                                hashes.push(page);
                            }
                            sink(page)
                        };
                        source.stream(dir.path(), counted).map(|info| {
                            tracing::debug!(
                                "snapshot: {} pages of {} bytes",
                                info.pages,
                                info.page_size
                            );
                            info.check
                        })
                    }
                    Reader::RawFile(file, why) => {
                        copy_raw(file, sink)?;
                        Ok(Integrity::Failed(why.clone()))
                    }
                }
            });
        let (check, compressed) = match produced {
            Err(_) if too_large.load(Ordering::SeqCst) => {
                let (name, size) = base.map_or((String::new(), 0), |b| {
                    (b.entry.file_name.clone(), b.entry.size)
                });
                return Ok(Fallback::routine(format!(
                    "{} {name} ({size} bytes)",
                    diff::write::TOO_LARGE
                )));
            }
            Err(_) if let Some(why) = stream.as_ref().and_then(|s| s.abandoned.clone()) => {
                return Ok(Fallback::routine(why));
            }
            // Say where the write failed (a full disk names its directory).
            Err(Error::Io { source, .. }) if output_failed.load(Ordering::SeqCst) => {
                return Err(write_error(source));
            }
            other => other?,
        };
        // Past the diff's size limit: the index is a few bytes a member.
        let members = compressed
            .write_index(&mut out.inner, metadata::HEADER_LEN as u64)
            .map_err(write_error)?;
        out.flush().map_err(write_error)?;
        progress.finish();
        (check, compressed, members)
    };
    let mut diff_info = None;
    if let (Some(confirmation), Some(base)) = (confirmation, base)
        && let Err(why) = confirmation.finish(dir, base)
    {
        return Ok(Try::Fallback(Fallback {
            why,
            base_damaged: true,
        }));
    }
    let (db_size, checksum) = match (stream.as_mut(), base) {
        (Some(stream), Some(base)) => {
            if check != Integrity::Ok {
                // Failed snapshots are kept as full backups: evidence anyone can read.
                return Ok(Fallback::routine("the snapshot failed its check".into()));
            }
            let summary = match stream.finish() {
                Ok(summary) => summary,
                Err(e) => return Ok(Fallback::routine(e.to_string())),
            };
            let base_meta = base
                .entry
                .meta
                .as_ref()
                .map_err(|e| Error::failed(e.clone()))?;
            diff_info = Some(DiffInfo {
                kind: DiffType::Diff,
                base: base.entry.file_name.clone(),
                base_checksum: base_meta.checksum.clone(),
                base_size: base.entry.size,
                page_size: summary.page_size,
                page_count: summary.page_count,
                changed_pages: summary.changed_pages,
                diff_checksum: compressed.checksum.clone(),
                diff_index: base.index,
            });
            (summary.db_size, summary.checksum)
        }
        _ => (compressed.raw_bytes, compressed.checksum.clone()),
    };
    if kind == Kind::PreRestore
        && check == Integrity::Ok
        && let Some(name) = same_content(
            dir,
            id,
            &compressed.checksum,
            compressed.raw_bytes,
            archive::worker_threads(settings.threads, job.cpus_per_task),
        )?
    {
        tracing::info!("content of {} is already held by {name}", show(db));
        return Ok(Try::Done(Outcome::Unchanged {
            newest: name,
            filled: None,
        }));
    }
    let (check_result, check_detail) = match check {
        Integrity::Ok => (CheckResult::Ok, None),
        Integrity::Failed(detail) => (CheckResult::Failed, Some(detail)),
    };
    let meta = Metadata {
        format: FORMAT_VERSION,
        created,
        source: id.canonical().to_string_lossy().into_owned(),
        db_size,
        checksum,
        host: job.host.clone(),
        job: job.tag.clone(),
        kind,
        check: check_result,
        check_detail,
        fingerprint,
        tool: format!("dbbackup {}", env!("CARGO_PKG_VERSION")),
        adopted_from: None,
        // The header keeps its length when rewritten: this is the final size.
        file_size: Some(temp.file().metadata().map_err(write_error)?.len()),
        // The caller holds the lock from here to `publish_as`: no other backup
        // can take the same number or be published in between. (A mirror is
        // written under its own lock; its numbers only need to be passed.)
        seq: Some(dir.next_seq(&settings.mirror_dirs)?),
        members: Some(members),
        diff: diff_info,
    };
    let header =
        metadata::encode(&meta).context(|| format!("cannot record metadata of {}", show(db)))?;
    temp.file().write_all_at(&header, 0).map_err(write_error)?;
    temp.sync()?;
    crate::signals::check()?;
    let failed = meta.check != CheckResult::Ok;
    let mut entry = dir.publish_as(
        temp,
        created,
        failed,
        meta.diff.is_some(),
        &settings.mirror_dirs,
    )?;
    if let Some(table) = hashes.filter(|_| !failed) {
        // A cache: a missing table is rebuilt from the backup when needed.
        if let Err(e) = table.save(dir, &entry.file_name, &meta.checksum) {
            tracing::warn!("cannot save the page hashes of {}: {e}", entry.file_name);
        }
    }
    tracing::info!(
        "published {} ({} -> {}, {} of {}{})",
        entry.file_name,
        meta.db_size,
        entry.size,
        meta.kind.as_str(),
        show(db),
        meta.diff.as_ref().map_or(String::new(), |d| format!(
            ", diff of {}: {} of {} pages",
            d.base, d.changed_pages, d.page_count
        ))
    );
    entry.meta = Ok(meta.clone());
    // Published first, then retention: also after a failed snapshot, which is
    // what bounds the evidence a corrupt database leaves behind.
    // Restore points of jobs still running are kept (pre-job's promise).
    let protected = crate::slurm::array::JobState::protected(dir);
    let pruned = prune(dir, id, settings, &protected)?;
    let mut mirrors = Vec::new();
    if meta.check == CheckResult::Ok {
        mirrors = mirror::copy_to_all(
            &settings.mirror_dirs,
            &entry,
            id,
            job,
            Wait::Upto(settings.lock_timeout),
            policy(settings),
            &protected,
        );
    } else {
        let detail = meta.check_detail.as_deref().unwrap_or("");
        tracing::error!(
            "snapshot of {} failed its integrity check (quick_check: {}); kept as {}",
            show(db),
            sqlite_file::one_line(detail),
            entry.file_name
        );
        tracing::debug!("quick_check output:\n{detail}");
    }
    Ok(Try::Done(Outcome::Created(Box::new(Created {
        entry,
        meta,
        duration: started.elapsed(),
        pruned,
        mirrors,
        full_because: match plan {
            diff::Plan::Full { why, .. } => why.clone(),
            diff::Plan::Diff(_) => None,
        },
    }))))
}

pub(crate) fn policy(settings: &Settings) -> retention::Policy {
    retention::Policy {
        keep_last: settings.max_backups,
        keep_daily: settings.keep_daily,
        keep_weekly: settings.keep_weekly,
        keep_pre_restore: settings.keep_pre_restore,
    }
}

/// Apply retention to `db`'s backups in `dir` (never another database's), keeping
/// `protected` names; returns what was deleted. The caller holds the lock.
pub(crate) fn prune(
    dir: &BackupDir,
    db: &DbId,
    settings: &Settings,
    protected: &HashSet<String>,
) -> Result<Vec<String>> {
    let plan = retention::plan(&dir.set(db)?, policy(settings), protected);
    retention::apply(dir, &plan)?;
    Ok(plan.delete)
}

fn copy_raw(file: &File, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let mut reader = BufReader::new(file);
    reader
        .seek(SeekFrom::Start(0))
        .context(|| "cannot read file")?;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer).context(|| "cannot read file")?;
        if n == 0 {
            return Ok(());
        }
        sink(&buffer[..n])?;
        crate::signals::check()?;
    }
}
