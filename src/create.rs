//! Making one backup, in stages with typed results: a checked temp file
//! (`checked`: snapshot, check, compress; full or diff, or why a diff was given
//! up), published under the lock (`publish`), then retention and mirrors
//! (`retain`). Shared by every command that creates backups; the caller holds
//! the lock (except for `if_due`, which takes it without waiting).

mod checked;
mod publish;
mod retain;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) use checked::{Checked, Encoding, Fallback, Reader, Written, write as write_checked};
pub(crate) use publish::{Published, Record};
pub(crate) use retain::{Keep, Kept};

use crate::attempts::{self, Verdict};
use crate::config::Settings;
use crate::diff;
use crate::due::{self, Changed, Decision, Due};
use crate::error::{Error, Result, show};
use crate::lock::DirLock;
use crate::mirror::{self, MirrorResult};
use crate::retention;
use crate::slurm::job::JobContext;
use crate::snapshot::Source;
use crate::sqlite_file;
use crate::store::metadata::{CheckResult, Kind, Metadata};
use crate::store::{BackupDir, DbId, Entry};

/// What a backup run did.
#[derive(Debug)]
pub(crate) enum Outcome {
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
    pub(crate) fn is_complete(&self) -> bool {
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
pub(crate) struct Filled {
    pub name: String,
    pub mirrors: Vec<MirrorResult>,
}

impl Filled {
    pub(crate) fn is_complete(&self) -> bool {
        self.mirrors.iter().all(|m| m.result.is_ok())
    }

    /// The attempt's verdict, given what it was without the mirrors
    /// (`skipped`: nothing was due).
    fn verdict(&self, otherwise: String, skipped: bool) -> Verdict {
        if self.is_complete() {
            let backup = self.name.clone();
            let detail = format!(
                "{otherwise}; {} copied to {}",
                self.name,
                self.mirrors
                    .iter()
                    .map(|m| show(&m.dir))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return if skipped {
                Verdict::Filled { backup, detail }
            } else {
                Verdict::Succeeded { backup, detail }
            };
        }
        Verdict::NotCopied {
            backup: self.name.clone(),
            detail: format!(
                "{} not copied to {}",
                self.name,
                failed_mirrors(&self.mirrors)
            ),
        }
    }
}

/// "DIR: why" of each mirror a copy failed in, if one did.
pub(crate) fn mirror_failures(mirrors: &[MirrorResult]) -> Option<String> {
    let failed = failed_mirrors(mirrors);
    (!failed.is_empty()).then_some(failed)
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
        settings.lock_timeout,
        retention::policy(settings),
        &protected,
    );
    Some(Filled {
        name: newest.file_name,
        mirrors,
    })
}

#[derive(Debug)]
pub(crate) struct Created {
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
    pub(crate) fn is_good(&self) -> bool {
        self.meta.check == CheckResult::Ok
    }

    /// Good, and copied to every mirror.
    pub(crate) fn is_complete(&self) -> bool {
        self.is_good() && self.mirrors.iter().all(|m| m.result.is_ok())
    }
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
            lock.remove_stale_temps();
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
        reason: Skip,
        filled: Option<Filled>,
    },
    Made(Outcome),
}

/// Why `if_due` made no backup.
#[derive(Debug)]
pub(crate) enum Skip {
    NotDue(due::NotDue),
    /// Another dbbackup process holds the backup directory's lock (what it
    /// recorded there, when readable): a backup, a restore, a prune, perhaps
    /// of another database.
    Busy(Option<String>),
}

impl Skip {
    /// The JSON `reason`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Skip::NotDue(not_due) => not_due.code(),
            Skip::Busy(_) => "busy",
        }
    }

    /// The newest restore point that holds the state, when that is why.
    pub(crate) fn newest(&self) -> Option<&str> {
        match self {
            Skip::NotDue(not_due) => not_due.newest(),
            Skip::Busy(_) => None,
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NotDue(not_due) => not_due.fmt(f),
            // Said as what is known: the holder may be no backup of this
            // database at all (T36 N8).
            Skip::Busy(holder) => write!(
                f,
                "the backup directory is busy: another dbbackup process holds its lock{} (a backup, restore or prune, perhaps of another database); not backed up this time",
                holder
                    .as_deref()
                    .map_or(String::new(), |h| format!(" ({h})"))
            ),
        }
    }
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
    // A killed restore's copy beside the database goes also when nothing
    // is due (one directory read; `prepare_dir` does it when one is, T32 G13).
    crate::store::remove_dead_temps_in(crate::store::atomic::parent_or_dot(db));
    let interval = settings.min_interval;
    let not_due = |why| Attempt::Skipped {
        reason: Skip::NotDue(why),
        filled: fill_mirrors(settings, job, dir, db),
    };
    let due = match due::by_interval(dir, db, interval)? {
        Decision::Due(due) => due,
        Decision::NotDue(why) => return Ok(not_due(why)),
    };
    prepare_dir(settings, dir, db)?;
    let Some(lock) = DirLock::try_acquire(dir.path(), job)? else {
        let holder = crate::lock::holder(dir.path(), &crate::store::atomic::this_host())
            .ok()
            .and_then(|holder| holder.recorded);
        return Ok(Attempt::Skipped {
            reason: Skip::Busy(holder),
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
    // A restore killed outright (SIGKILL, the OOM killer) leaves its checked
    // copy, the database's size, beside it: gone with the next command that
    // takes the lock for it, not only the next restore there (T30 F5).
    crate::store::remove_dead_temps_in(crate::store::atomic::parent_or_dot(db));
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
            Outcome::Created(created) => Verdict::NotCopied {
                backup: created.entry.file_name.clone(),
                detail: format!(
                    "{} made, but not copied to {}",
                    created.entry.file_name,
                    failed_mirrors(&created.mirrors)
                ),
            },
            Outcome::Unchanged { newest, filled } => {
                Outcome::unchanged_verdict(newest, filled.as_ref())
            }
        })
    }
}

impl Outcome {
    /// The database found unchanged since `newest`, mirrors `filled` in.
    fn unchanged_verdict(newest: &str, filled: Option<&Filled>) -> Verdict {
        match filled {
            Some(filled) => filled.verdict(format!("unchanged since {newest}"), false),
            None => Verdict::unchanged(newest),
        }
    }
}

impl Attempted for Attempt {
    fn verdict(&self) -> Option<Verdict> {
        match self {
            // The database found unchanged since its newest restore point
            // (the interval passed): a success, as for `backup`, or `auto`
            // under cron never ends an earlier failure (T34 N7).
            Attempt::Skipped { reason, filled } if let Some(newest) = reason.newest() => {
                Some(Outcome::unchanged_verdict(newest, filled.as_ref()))
            }
            // Nothing attempted, unless a mirror was filled in.
            Attempt::Skipped { reason, filled } => filled
                .as_ref()
                .map(|f| f.verdict(format!("skipped: {reason}"), true)),
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

/// One backup of one database: what every stage reads.
pub(crate) struct Target<'a> {
    pub dir: &'a BackupDir,
    /// The database (a pre-restore copy's: its absolute path) and its identity.
    pub db: &'a Path,
    pub id: &'a DbId,
    pub job: &'a JobContext,
}

/// How a failed write into the backup directory is said (a full disk names the
/// directory).
fn write_error(dir: &BackupDir) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        context: format!("cannot write backup in {}", show(dir.path())),
        source,
    }
}

/// Make the backup `due` describes; the caller holds the lock.
pub(crate) fn run(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    lock: &DirLock,
    due: &Due,
    kind: Kind,
) -> Result<Outcome> {
    let started = Instant::now();
    lock.remove_stale_temps();
    let check = crate::due::check_for(dir, due.id());
    let reader = Reader::Sqlite(Source::open(due.db(), settings.busy_timeout)?.checked_by(check));
    let mut plan = diff::plan(settings.diff_backups, dir, due.id(), kind);
    // Planning may read a base whole: a signal meanwhile ends the run here.
    crate::signals::stop_if_requested()?;
    let target = Target {
        dir,
        db: due.db(),
        id: due.id(),
        job,
    };
    let encoding = Encoding::of(settings, job);
    let checked = loop {
        match write_checked(&target, &encoding, &reader, &plan)? {
            Written::Checked(checked) => break *checked,
            Written::Fallback(fallback) => plan = full_instead(&plan, fallback)?,
        }
    };
    if !due.forced()
        && let Some(newest) = same_content(dir, due, &checked)
    {
        // Its files changed (a writer killed mid-transaction, SQLite's own
        // recovery on open), its content did not: a copy would only take a
        // retention slot from an older, different restore point.
        drop(checked);
        tracing::info!(
            "the database's files changed since {newest} but its content did not: no new backup"
        );
        // The next backup of this state need not read the database again.
        crate::store::also_held::record(&dir.path().join(&newest), due.fingerprint());
        let filled = fill_mirrors(settings, job, dir, due.db());
        return Ok(Outcome::Unchanged { newest, filled });
    }
    let record = Record::new(settings, kind, Some(due.fingerprint().clone()));
    let mut created = finish(checked, &target, lock, &record, &Keep::of(settings))?;
    created.duration = started.elapsed();
    created.full_because = match plan {
        diff::Plan::Full { why, .. } => why,
        diff::Plan::Diff(_) => None,
    };
    Ok(Outcome::Created(Box::new(created)))
}

/// The newest restore point of the database when the snapshot `checked`
/// holds exactly its content (same size and database checksum).
fn same_content(dir: &BackupDir, due: &Due, checked: &Checked) -> Option<String> {
    let points = dir
        .restore_points(due.id(), |e| crate::diff::restore_problem(e).is_none())
        .ok()?;
    let newest = points.first()?;
    let meta = newest.meta.as_ref().ok()?;
    (meta.checksum == checked.checksum
        && meta.db_size == checked.db_size
        && !due::unsound_above(dir, due.id(), newest))
    .then(|| newest.file_name.clone())
}

/// The plan after `plan` was given up: a full backup that says why. Only a
/// diff is given up.
fn full_instead(plan: &diff::Plan, fallback: Fallback) -> Result<diff::Plan> {
    let Fallback { why, base_damaged } = fallback;
    if !matches!(plan, diff::Plan::Diff(_)) {
        return Err(Error::failed(why));
    }
    // A signal can interrupt the base's read: stop, not start again.
    crate::signals::stop_if_requested()?;
    if base_damaged {
        tracing::warn!("making a full backup instead of a diff: {why}");
    } else {
        tracing::info!("making a full backup instead of a diff: {why}");
    }
    Ok(diff::Plan::Full {
        hashes: true,
        why: Some(why),
    })
}

/// The stages after the temp file: publish it, then retention and mirrors. The
/// caller fills in `duration` and `full_because`, which only it knows.
pub(crate) fn finish(
    mut checked: Checked,
    target: &Target,
    lock: &DirLock,
    record: &Record,
    keep: &Keep,
) -> Result<Created> {
    known_unsound(&mut checked, target.dir);
    let mut created = publish_only(checked, target, lock, record)?;
    retain(&mut created, target, lock, keep)?;
    Ok(created)
}

/// A database whose very content (its SHA-256) a whole read found failing
/// `integrity_check` in another backup passes its `quick_check` again: that
/// finding holds for it too, so it is a failed snapshot, never a restore
/// point listed `ok` that `restore latest` would take (T34 N11).
fn known_unsound(checked: &mut Checked, dir: &BackupDir) {
    use crate::sqlite_file::Integrity;
    if !matches!(checked.check, Integrity::Ok) {
        return;
    }
    let unsound = crate::store::damage::unsound_by_checksum(dir.path());
    if let Some((name, why)) = unsound.get(&checked.checksum) {
        // Said after "quick_check: " where a failed check is reported (an
        // integrity_check that passed would have found what the other did).
        checked.check = Integrity::Failed(format!(
            "ok, but it is the same database as {name}, which failed {why}"
        ));
    }
}

/// Publish only, no retention nor mirror copies yet: for a pre-restore copy,
/// which counts against `keep_pre_restore` only once its restore replaced the
/// database (`retain` then).
pub(crate) fn publish_only(
    checked: Checked,
    target: &Target,
    lock: &DirLock,
    record: &Record,
) -> Result<Created> {
    let Published { entry, meta } = publish::publish(checked, target, lock, record)?;
    Ok(Created {
        entry,
        meta,
        duration: Duration::ZERO,
        pruned: Vec::new(),
        mirrors: Vec::new(),
        full_because: None,
    })
}

/// Retention over the database's backups, then copies to the mirrors, for a
/// backup `publish_only` published.
pub(crate) fn retain(
    created: &mut Created,
    target: &Target,
    lock: &DirLock,
    keep: &Keep,
) -> Result<()> {
    let Kept { pruned, mirrors } =
        retain::retain_and_copy(&created.entry, &created.meta, target, lock, keep)?;
    created.pruned = pruned;
    created.mirrors = mirrors;
    Ok(())
}
