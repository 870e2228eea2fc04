//! The pre-job protocol: a restore point from before this job's work. In an
//! array job the first task to get the lock makes it (tagged with the array id),
//! or reuses the newest restore point when the database is unchanged since; the
//! others find it recorded and return. It also decides, once, whether this job
//! is an array task (`identity`), reads the cluster's KillWait for the later
//! steps, and submits the array's final job.
//!
//! The common path (the restore point is recorded and exists) takes no lock: it
//! reads one state file and stats one backup, so a thousand tasks starting at
//! once cost the lock manager nothing. A failed attempt is recorded too, so the
//! other tasks report it instead of each retrying the snapshot; so is a database
//! locked past the busy timeout, which is waited for without holding the
//! directory lock (tasks wait side by side, not one after another).

use std::path::Path;
use std::time::Duration;

use rusqlite::ErrorCode;

use super::array::{FinalJob, JobState, PreJob};
use super::job::JobContext;
use super::scheduler;
use crate::config::Settings;
use crate::create::{self, Outcome};
use crate::error::{Error, Result, show};
use crate::store::{BackupDir, DbId, Kind};

/// What pre-job found or did.
pub(crate) enum Found {
    /// Recorded by another task (or an earlier run of this one) and present.
    Exists(String),
    /// Made now, and the mirror copies that failed ("DIR: why; ...").
    Created(String, Option<String>),
    /// The newest restore point already holds this database's state; the
    /// mirror copies of it that failed.
    Reused(String, Option<String>),
    /// The database does not exist yet and has no backups (a new project's
    /// first job creates it): nothing to protect, so nothing failed.
    NothingYet,
}

impl create::Attempted for Found {
    fn verdict(&self) -> Option<crate::attempts::Verdict> {
        match self {
            // Another task's attempt, recorded by that task; or none made.
            Found::Exists(_) | Found::NothingYet => None,
            Found::Created(name, None) | Found::Reused(name, None) => {
                Some(crate::attempts::Verdict::made(name))
            }
            // As for any backup: a restore point not in its mirrors is a
            // failed attempt (one copy where two were asked for).
            Found::Created(name, Some(failed)) | Found::Reused(name, Some(failed)) => {
                Some(crate::attempts::Verdict::NotCopied {
                    backup: name.clone(),
                    detail: format!("{name} not copied to {failed}"),
                })
            }
        }
    }
}

/// Pre-job's whole answer: the restore point (or why there is none), and the
/// final job when this task is the one that submitted it.
pub(crate) struct PreJobRun {
    pub job: JobContext,
    pub result: Result<Found>,
    pub submitted: Option<FinalJob>,
}

/// A database that is gone while restore points of it are kept (here, or in
/// a mirror after a scratch purge took the backup directory too) was lost:
/// the work would start a new, empty one, so the error says how to put it
/// back first, and is [`Error::Lost`] (T27 F-J, T27b F3, F16).
fn lost_database(settings: &Settings, dir: &BackupDir, error: Error) -> Error {
    let Ok(db) = settings.db_path() else {
        return error;
    };
    // Followed: a `db_path` that is a symlink left dangling is gone too.
    if !matches!(std::fs::metadata(db), Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
        return error;
    }
    let id = DbId::of(db);
    let here = dir
        .newest_restore_point(&id, |e| crate::diff::restore_problem(e).is_none())
        .ok()
        .flatten();
    let put_back = match here {
        Some(newest) => format!(
            "its restore points are here (newest {}): if it was lost, put it back with `dbbackup restore latest` before the work runs (a job script can start with `dbbackup restore latest --if-db-missing`)",
            newest.file_name
        ),
        None => match crate::store::latest::mirror_hint(&settings.mirror_dirs, &id, None) {
            Some(mirror) => format!("{mirror}, before the work runs"),
            None => return error,
        },
    };
    // Starting over on purpose is a choice the error must leave open.
    Error::Lost(format!(
        "{error}, but {put_back}; to start a new database on purpose instead, move the old restore points aside (or give a new backup_dir)"
    ))
}

/// Run pre-job for `job` (as the environment says; SLURM's word is asked here).
pub(crate) fn run(settings: &Settings, job: &JobContext, final_job: Option<&Path>) -> PreJobRun {
    let dir = BackupDir::new(&settings.backup_dir);
    if let Ok(db) = settings.db_path()
        && nothing_to_protect(&dir, db, &settings.mirror_dirs)
    {
        return PreJobRun {
            job: job.clone(),
            result: Ok(Found::NothingYet),
            submitted: None,
        };
    }
    // The decision (and a busy database's failure, for the other tasks) is kept
    // in the backup directory, made for a database file but without waiting on
    // SQLite: a busy database must be recorded at once for the whole array.
    let ready = settings
        .db_path()
        .and_then(|db| prepare_state_dir(&dir, db));
    let job = if ready.is_ok() {
        super::identity::decide(job, &dir)
    } else {
        job.clone()
    };
    let mut submitted = None;
    let result = find_or_make(settings, &job, &dir, final_job, &mut submitted)
        .map_err(|error| lost_database(settings, &dir, error));
    if job.restarts > 0
        && job.own_id.is_some()
        && let Ok(db) = settings.db_path()
    {
        let key = super::array::key(&job.state_key(), &DbId::of(db));
        JobState::reader(&dir).reopen(&key);
    }
    let result = create::recorded(settings, &job, Kind::PreJob, result);
    if let (Ok(Found::Exists(_)), Ok(db)) = (&result, settings.db_path()) {
        crate::attempts::owe(&settings.backup_dir, &DbId::of(db), &job);
    }
    if let (Err(error), Some(_), Ok(db)) = (&result, &job.own_id, settings.db_path()) {
        let key = super::array::key(&job.state_key(), &DbId::of(db));
        JobState::note_no_point(&dir, &key, &error.to_string());
    }
    PreJobRun {
        job,
        result,
        submitted,
    }
}

/// A database that does not exist (not a dangling link: a path that names
/// nothing) with no backup of it anywhere in the backup directory: a new
/// project's first job, which creates it. A lost database has backups, and
/// its pre-job fails (the work would start from nothing).
fn nothing_to_protect(dir: &BackupDir, db: &Path, mirrors: &[std::path::PathBuf]) -> bool {
    let missing =
        matches!(db.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    let no_backups = match dir.set(&DbId::of(db)) {
        Ok(set) => set.restore_points.is_empty() && set.damaged.is_empty() && set.failed.is_empty(),
        Err(_) => !dir.path().exists(),
    };
    // A scratch purge took the backup directory too: a mirror's points are
    // the database's, lost, not new (T27b F16).
    let in_mirror = || crate::store::latest::mirror_hint(mirrors, &DbId::of(db), None).is_some();
    missing && no_backups && !in_mirror()
}

/// The backup directory, made only for a file that is an SQLite database (a
/// first attempt on a missing or foreign file leaves no directory); unlike
/// `create::prepare_dir`, it does not wait for a busy database.
fn prepare_state_dir(dir: &BackupDir, db: &Path) -> Result<()> {
    crate::sqlite_file::validate_database(db)?;
    dir.ensure_exists()
}

/// KillWait as this process read it (pre-job, before its snapshot): known at
/// TERM even when the state file could not be written.
static KILL_WAIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// What bounds the work after a termination signal, as far as SLURM goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KillWait {
    /// Not a SLURM job (no `SLURM_JOB_ID`): nobody KILLs it; nothing asked.
    NotSlurm,
    /// The cluster's KillWait in seconds.
    Known(u64),
    /// A SLURM job whose KillWait is unknown, and why.
    Unknown(String),
}

/// KillWait for this job: as this process or pre-job recorded it, else (only
/// when `ask`: the `post-job --after-term` command, whose pre-job may not have
/// run) asked now in 2.5 s. `run` does not ask: SLURM's TERM reaches every
/// process of the job, so a question asked then is interrupted.
pub(crate) fn kill_wait_for_job(
    dir: &BackupDir,
    job: &JobContext,
    db: &DbId,
    ask: bool,
) -> KillWait {
    if job.own_id.is_none() {
        return KillWait::NotSlurm;
    }
    if let Some(&kill_wait) = KILL_WAIT.get() {
        return KillWait::Known(kill_wait);
    }
    let key = super::array::key(&job.state_key(), db);
    if let Some(kill_wait) = JobState::reader(dir)
        .pre_job(&key)
        .and_then(|r| r.kill_wait)
    {
        return KillWait::Known(kill_wait);
    }
    if !ask {
        return KillWait::Unknown("not yet read by pre-job".to_string());
    }
    match scheduler::show_config_after_term() {
        Ok(config) => config.kill_wait.map_or_else(
            || KillWait::Unknown("no KillWait in scontrol show config".to_string()),
            KillWait::Known,
        ),
        Err(failure) => KillWait::Unknown(failure.to_string()),
    }
}

/// Read KillWait once per job, before the snapshot (a TERM may come during
/// it), by the task that holds the lock: the others find it in the record.
fn read_kill_wait(job: &JobContext, state: &JobState, key: &str, record: &mut PreJob) {
    if let Some(kill_wait) = record.kill_wait {
        let _ = KILL_WAIT.set(kill_wait);
        return;
    }
    if job.own_id.is_none() {
        return;
    }
    match scheduler::show_config() {
        Ok(config) => match config.kill_wait {
            Some(kill_wait) => {
                let _ = KILL_WAIT.set(kill_wait);
                record.kill_wait = Some(kill_wait);
                if let Err(error) = state.record_pre_job(key, record) {
                    tracing::warn!("KillWait not recorded for the other tasks: {error}");
                }
            }
            None => tracing::debug!("no KillWait in scontrol show config"),
        },
        Err(failure) => tracing::warn!(
            "KillWait not read ({failure}); after TERM the conservative bound applies"
        ),
    }
}

/// Whether the recorded state already answers this task, needing no lock.
fn answered(dir: &BackupDir, record: &PreJob, want_final: bool) -> Option<Result<Found>> {
    if let Some(failed) = &record.failed {
        return Some(Err(Error::failed(format!(
            "this job's pre-job snapshot failed its integrity check (kept as {failed}); \
             other tasks do not retry it: check the database (`dbbackup verify {failed}`)"
        ))));
    }
    if let Some(busy) = &record.busy {
        return Some(Err(Error::failed(format!(
            "no restore point from before this job: {busy}; the other tasks do not wait for it again"
        ))));
    }
    let name = record.backup.as_ref()?;
    // Only reported when it exists: a file removed by hand (or by an older
    // version's retention) is made again under the lock.
    let exists = dir
        .path()
        .join(name)
        .symlink_metadata()
        .is_ok_and(|m| m.is_file());
    (exists && (!want_final || record.final_job.is_some())).then(|| Ok(Found::Exists(name.clone())))
}

/// Wait (up to the busy timeout, holding no lock of ours) until SQLite lets a
/// reader in. `Some(why)` when it did not: a writer holds the database.
fn locked_by_writer(db: &Path, busy_timeout: Duration) -> Option<String> {
    let conn = crate::snapshot::connect(db, busy_timeout).ok()?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) =>
        {
            Some(format!(
                "database {} was locked by another process at {} (waited {} s, busy_timeout_seconds)",
                show(db),
                jiff::Timestamp::now()
                    // Truncated: never a moment after the line that shows it.
                    .round(
                        jiff::TimestampRound::new()
                            .smallest(jiff::Unit::Second)
                            .mode(jiff::RoundMode::Trunc),
                    )
                    .unwrap_or_else(|_| jiff::Timestamp::now()),
                busy_timeout.as_secs()
            ))
        }
        // Anything else is the snapshot's to report, under the lock.
        _ => None,
    }
}

/// `submitted` receives the final job (or why it was not submitted) when this
/// task submitted it.
fn find_or_make(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    final_job: Option<&Path>,
    submitted: &mut Option<FinalJob>,
) -> Result<Found> {
    let db = settings.db_path()?;
    let key = super::array::key(&job.state_key(), &DbId::of(db));
    let want_final = final_job.is_some() && job.array.is_some();
    // Outside SLURM (no SLURM_JOB_ID) every run is its own job: nothing to
    // share with another, so no state is read or kept (all would be `local`).
    let shared = job.own_id.is_some();
    let recorded_now = || {
        if shared {
            JobState::reader(dir)
                .pre_job(&key)
                .filter(|record| of_an_earlier_job(job, record).is_none())
        } else {
            None
        }
    };
    if let Some(record) = recorded_now()
        && let Some(found) = answered(dir, &record, want_final)
    {
        return found;
    }
    let busy = locked_by_writer(db, settings.busy_timeout);
    // Waiting for the lock ends early when another task records the restore
    // point (or its failure) meanwhile: reading that needs no lock.
    let recorded = || {
        recorded_now()
            .and_then(|record| answered(dir, &record, want_final))
            .is_some()
    };
    let acquired = prepare_state_dir(dir, db).and_then(|()| {
        crate::lock::DirLock::acquire_unless(dir.path(), job, settings.lock_timeout, recorded)
    });
    let acquired = match acquired {
        Ok(acquired) => acquired,
        // No lock (a full disk cannot take the holder line, a holder that never
        // lets go): the array's work must still end in a backup.
        Err(error) => {
            if want_final {
                submit_once(job, dir, &key, final_job, submitted);
            }
            return Err(error);
        }
    };
    let Some(lock) = acquired else {
        let record = recorded_now().unwrap_or_default();
        return answered(dir, &record, want_final).unwrap_or_else(|| {
            Err(Error::failed(
                "restore point record vanished; run pre-job again",
            ))
        });
    };
    let state = JobState::open(dir, &lock)?;
    let mut record = if shared {
        own_record(&state, &key, job)?
    } else {
        PreJob::default()
    };
    if record.made.is_none() {
        record.made = Some(jiff::Timestamp::now());
        record.submitted = submitted_first_run(job);
    }
    let save = |record: &PreJob| {
        if shared {
            state.record_pre_job(&key, record)
        } else {
            Ok(())
        }
    };
    // The final job first, recorded under the lock (so exactly one task submits):
    // the array's work must end in a backup even when no restore point can be
    // made (database locked, disk full). It depends on the whole array, so it
    // cannot run before this snapshot anyway.
    if want_final
        && record.final_job.is_none()
        && let Some(answer) = submit_once(job, dir, &key, final_job, submitted)
    {
        record.final_job = Some(answer);
        save(&record)?;
    }
    if let Some(found) = answered(dir, &record, false) {
        return found;
    }
    read_kill_wait(job, &state, &key, &mut record);
    if let Some(why) = busy {
        // Only an array has other tasks to spare the wait.
        if job.array.is_none() {
            return Err(Error::failed(format!(
                "no restore point from before this job: {why}"
            )));
        }
        record.busy = Some(why.clone());
        save(&record)?;
        return Err(Error::failed(format!(
            "no restore point from before this job: {why}; recorded, so the other tasks do not wait for it"
        )));
    }
    let mut tagged = job.clone();
    tagged.tag = job.job_id().to_string();
    // An error records nothing: the next task tries again (a full disk may clear).
    let outcome = create::if_changed(settings, &tagged, dir, &lock, db, Kind::PreJob, false)?;
    let found = found_in(outcome, &mut record);
    if let Some(task) = &job.array
        && let (Some(count), Some((min, max, step))) = (task.task_count, task.range)
        && (max - min) / step + 1 == count
    {
        record.task_ids = Some(format!("{min}-{max}:{step}"));
    }
    save(&record)?;
    found
}

/// This job's pre-job record under `key` (read under the lock), or none: an
/// earlier job's with the same id is set aside.
fn own_record(state: &JobState, key: &str, job: &JobContext) -> Result<PreJob> {
    let Some(record) = state.pre_job(key) else {
        return Ok(PreJob::default());
    };
    let Some((made, submitted)) = of_an_earlier_job(job, &record) else {
        return Ok(record);
    };
    tracing::warn!(
        "the state kept for job {} is an earlier job's that had the same id (its pre-job ran at {made}, before SLURM's record of this job begins at {submitted}): set aside, this job gets its own restore point",
        job.job_id()
    );
    state.set_aside(key)?;
    Ok(PreJob::default())
}

/// `(made, submitted)` when `record` was made before SLURM says this job was
/// submitted: an earlier job's that had the same id (a controller whose state
/// was reset gives ids again). A requeue resets the submit time, so a requeued
/// job's record (made by its first run) is never judged so; nor is a record
/// without its time (an older version's) or one SLURM cannot date.
fn of_an_earlier_job(
    job: &JobContext,
    record: &PreJob,
) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    // The tasks of one step (`srun -n 64 dbbackup run`) share the job's
    // submission: the first one's record is theirs, nothing to ask.
    if super::job::step_task().is_some() {
        return None;
    }
    made_before_job(job.own_id.as_deref()?, record)
}

/// SLURM's `SubmitTime` of this job when it was never requeued (a requeue
/// resets it, and the array's other tasks keep the first): kept in the record.
fn submitted_first_run(job: &JobContext) -> Option<jiff::Timestamp> {
    super::scheduler::first_run_submitted(job.own_id.as_deref()?)
}

/// Node and controller clocks differ by seconds; an id is not given again
/// within minutes: what made before a job's submission is an earlier job's.
pub(crate) const CLOCKS_APART: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

/// `(made, submitted)` when `record` was made before SLURM says job `id` was
/// submitted (and it was never requeued): an earlier job's with the same id.
pub(crate) fn made_before_job(
    id: &str,
    record: &PreJob,
) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let made = record.made?;
    let submitted = super::scheduler::first_run_submitted(id)?;
    match record.submitted {
        // Both the controller's clock: another submission is another job.
        Some(then) => (then != submitted).then_some((made, submitted)),
        // An older record, or one SLURM could not date then: by the node's
        // clock, with room for skew.
        None => (made < submitted - CLOCKS_APART).then_some((made, submitted)),
    }
}

/// What the backup under the lock came to, noted in `record`: the restore
/// point made or reused, or the failed snapshot.
fn found_in(outcome: Outcome, record: &mut PreJob) -> Result<Found> {
    match outcome {
        Outcome::Created(created) if created.is_good() => {
            record.backup = Some(created.entry.file_name.clone());
            let failed = create::mirror_failures(&created.mirrors);
            Ok(Found::Created(created.entry.file_name, failed))
        }
        Outcome::Created(created) => {
            record.failed = Some(created.entry.file_name.clone());
            Err(Error::failed(format!(
                "pre-job snapshot failed its integrity check ({}: {}); kept as {}",
                created.meta.check_kind,
                crate::sqlite_file::one_line(
                    created.meta.check_detail.as_deref().unwrap_or_default()
                ),
                created.entry.file_name
            )))
        }
        // Reused also when a mirror could not be filled in (as a backup made
        // whose mirror copy failed is used): the restore point is here.
        Outcome::Unchanged {
            newest: name,
            filled,
        } => {
            record.backup = Some(name.clone());
            let failed = filled.and_then(|f| create::mirror_failures(&f.mirrors));
            Ok(Found::Reused(name, failed))
        }
    }
}

/// Submit the final job if this task is the one to (the create-once marker);
/// returns the answer to record, also left in `submitted` for the summary line.
fn submit_once(
    job: &JobContext,
    dir: &BackupDir,
    key: &str,
    script: Option<&Path>,
    submitted: &mut Option<FinalJob>,
) -> Option<FinalJob> {
    let answer = match JobState::claim_final(dir, key) {
        Ok(true) => submit_final(job, script.unwrap_or(Path::new(""))),
        Ok(false) => return None,
        Err(error) => {
            tracing::error!("final job not submitted: {error}");
            FinalJob::NotSubmitted(error.to_string())
        }
    };
    *submitted = Some(answer.clone());
    Some(answer)
}

/// Submit the array's final job once: `sbatch --dependency=afterany:<array>
/// SCRIPT <array>`. Returns its id, or what went wrong (recorded either way, so
/// that a broken submission is not retried by every task).
fn submit_final(job: &JobContext, script: &Path) -> FinalJob {
    let array = job.job_id();
    let mut args = vec!["--parsable".to_string()];
    // The array's own account, partition and QOS: sites that enforce accounts
    // reject a job without one, and the cluster is the submitting one anyway.
    for (option, value) in [
        ("--account", &job.account),
        ("--partition", &job.partition),
        ("--qos", &job.qos),
    ] {
        if let Some(value) = value {
            args.push(format!("{option}={value}"));
        }
    }
    args.push(format!("--dependency=afterany:{array}"));
    args.push(script.to_string_lossy().into_owned());
    args.push(array.to_string());
    match scheduler::submit(&args) {
        Ok(id) => {
            tracing::info!(
                "submitted final job {} ({}) to run after array {array}",
                id.0,
                show(script)
            );
            FinalJob::Submitted(id)
        }
        Err(failure) => {
            tracing::error!(
                "could not submit the final job {} for array {array}: {failure}",
                show(script)
            );
            FinalJob::NotSubmitted(failure.to_string())
        }
    }
}
