//! `dbbackup pre-job`: a restore point from before this job's work. In an array job
//! the first task to get the lock makes it (tagged with the array id), or reuses
//! the newest restore point when the database is unchanged since; the others find
//! it recorded and return. Returns only once it exists.
//!
//! The common path (the restore point is recorded and exists) takes no lock: it
//! reads one state file and stats one backup, so a thousand tasks starting at once
//! cost the lock manager nothing. A failed attempt is recorded too, so the other
//! tasks report it instead of each retrying the snapshot.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::Ctx;
use crate::cli::PreJobArgs;
use crate::create::{self, Outcome};
use crate::error::{Error, Result, show};
use crate::exit_code::ExitCode;
use crate::slurm::array::{JobState, PreJob};
use crate::store::{BackupDir, DbId, Kind};
use crate::summary_log::{self, Line};

/// What pre-job found or did.
enum Found {
    /// Recorded by another task (or an earlier run of this one) and present.
    Exists(String),
    /// Made now.
    Created(String),
    /// The newest restore point already holds this database's state.
    Reused(String),
}

pub(crate) fn run(ctx: &Ctx, args: &PreJobArgs) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    let job_id = ctx.job.job_id().to_string();
    let mut submitted = None;
    let result = find_or_make(ctx, args.final_job.as_deref(), &mut submitted);
    let result = create::recorded(&ctx.settings, &ctx.job, Kind::PreJob, result);
    // A final job that could not be submitted leaves the array unprotected: say
    // so in the line of the task that tried, and count that pre-job as failed.
    let final_failed = submitted.as_deref().is_some_and(not_submitted);
    let (status, reason, name) = match &result {
        Ok(Found::Exists(name)) => (
            summary_log::EventStatus::Skipped,
            // A requeued single job finds its own first run's restore point.
            if ctx.job.array.is_none() && ctx.job.restarts > 0 {
                "made by an earlier run of this job (requeued)"
            } else {
                "made by another task of this job"
            },
            name,
        ),
        Ok(Found::Reused(name)) => (
            summary_log::EventStatus::Ok,
            "database unchanged since this restore point",
            name,
        ),
        Ok(Found::Created(name)) => (summary_log::EventStatus::Ok, "", name),
        Err(error) => {
            let mut line = Line::new(&ctx.job, "pre-job", summary_log::EventStatus::Failed);
            line.field("error", &error.to_string());
            add_final(&mut line, submitted.as_deref());
            add_restarts(ctx, &mut line);
            summary_log::append_or_warn(&ctx.settings.summary_log, &line);
            return result.map(|_| ExitCode::Failure);
        }
    };
    let status = if final_failed {
        summary_log::EventStatus::Failed
    } else {
        status
    };
    let mut line = Line::new(&ctx.job, "pre-job", status);
    line.field("backup", name);
    if !reason.is_empty() {
        line.field("reason", reason);
    }
    add_final(&mut line, submitted.as_deref());
    add_restarts(ctx, &mut line);
    let verb = match &result {
        Ok(Found::Created(_)) => "created",
        Ok(Found::Reused(_)) => "reused",
        _ => "exists:",
    };
    out.line(format!("restore point for job {job_id} {verb} {name}"));
    out.document(&json!({"status": status.as_str(), "job": job_id, "backup": name}));
    summary_log::append_or_warn(&ctx.settings.summary_log, &line);
    Ok(if final_failed {
        ExitCode::Failure
    } else {
        ExitCode::Success
    })
}

impl create::Attempted for Found {
    fn verdict(&self) -> Option<crate::attempts::Verdict> {
        match self {
            // Another task's attempt, recorded by that task.
            Found::Exists(_) => None,
            Found::Created(name) | Found::Reused(name) => {
                Some(crate::attempts::Verdict::Succeeded(name.clone()))
            }
        }
    }
}

/// `submit_final`'s answer when sbatch refused or could not run.
fn not_submitted(answer: &str) -> bool {
    answer.starts_with("not submitted")
}

fn add_final(line: &mut Line, submitted: Option<&str>) {
    if let Some(answer) = submitted {
        line.field("final", answer);
    }
}

fn add_restarts(ctx: &Ctx, line: &mut Line) {
    if ctx.job.restarts > 0 {
        line.field("restarts", &ctx.job.restarts.to_string());
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

/// `submitted` receives the final job's id (or why it was not submitted) when
/// this task submitted it.
fn find_or_make(
    ctx: &Ctx,
    final_job: Option<&Path>,
    submitted: &mut Option<String>,
) -> Result<Found> {
    let db = ctx.settings.db_path()?;
    let dir = ctx.backup_dir();
    let key = crate::slurm::array::key(&ctx.job.state_key(), &DbId::of(db));
    let want_final = final_job.is_some() && ctx.job.array.is_some();
    if let Some(record) = JobState::reader(&dir).pre_job(&key)
        && let Some(found) = answered(&dir, &record, want_final)
    {
        return found;
    }
    // Waiting for the lock ends early when another task records the restore
    // point meanwhile: reading that needs no lock.
    let recorded = || {
        JobState::reader(&dir)
            .pre_job(&key)
            .and_then(|record| answered(&dir, &record, want_final))
            .is_some()
    };
    let acquired = create::prepare_dir(&ctx.settings, &dir, db).and_then(|()| {
        crate::lock::DirLock::acquire_unless(
            dir.path(),
            &ctx.job,
            crate::lock::Wait::Upto(ctx.settings.lock_timeout),
            recorded,
        )
    });
    let acquired = match acquired {
        Ok(acquired) => acquired,
        // No lock (a full disk cannot take the holder line, a holder that never
        // lets go): the array's work must still end in a backup.
        Err(error) => {
            if want_final {
                submit_once(ctx, &dir, &key, final_job, submitted);
            }
            return Err(error);
        }
    };
    let Some(lock) = acquired else {
        let record = JobState::reader(&dir).pre_job(&key).unwrap_or_default();
        return answered(&dir, &record, want_final).unwrap_or_else(|| {
            Err(Error::failed(
                "restore point record vanished; run pre-job again",
            ))
        });
    };
    let state = JobState::open(&dir)?;
    let mut record = state.pre_job(&key).unwrap_or_default();
    // The final job first, recorded under the lock (so exactly one task submits):
    // the array's work must end in a backup even when no restore point can be
    // made (database locked, disk full). It depends on the whole array, so it
    // cannot run before this snapshot anyway.
    if want_final
        && record.final_job.is_none()
        && let Some(answer) = submit_once(ctx, &dir, &key, final_job, submitted)
    {
        record.final_job = Some(answer);
        state.record_pre_job(&key, &record)?;
    }
    if let Some(found) = answered(&dir, &record, false) {
        return found;
    }
    let mut job = ctx.job.clone();
    job.tag = ctx.job.job_id().to_string();
    let outcome = create::if_changed(&ctx.settings, &job, &dir, &lock, db, Kind::PreJob, false);
    let found = match outcome {
        Ok(Outcome::Created(created)) if created.is_good() => {
            record.backup = Some(created.entry.file_name.clone());
            Ok(Found::Created(created.entry.file_name))
        }
        Ok(Outcome::Created(created)) => {
            record.failed = Some(created.entry.file_name.clone());
            Err(Error::failed(format!(
                "pre-job snapshot failed its integrity check (quick_check: {}); kept as {}",
                crate::sqlite_file::one_line(
                    created.meta.check_detail.as_deref().unwrap_or_default()
                ),
                created.entry.file_name
            )))
        }
        Ok(Outcome::Unchanged(name)) => {
            record.backup = Some(name.clone());
            Ok(Found::Reused(name))
        }
        // Nothing recorded: the next task tries again (a full disk may clear).
        Err(error) => return Err(error),
    };
    if let Some(task) = &ctx.job.array
        && let (Some(count), Some((min, max, step))) = (task.task_count, task.range)
        && (max - min) / step + 1 == count
    {
        record.task_ids = Some(format!("{min}-{max}:{step}"));
    }
    state.record_pre_job(&key, &record)?;
    found
}

/// Submit the final job if this task is the one to (the create-once marker);
/// returns the answer to record, also left in `submitted` for the summary line.
fn submit_once(
    ctx: &Ctx,
    dir: &BackupDir,
    key: &str,
    script: Option<&Path>,
    submitted: &mut Option<String>,
) -> Option<String> {
    let answer = match JobState::claim_final(dir, key) {
        Ok(true) => submit_final(ctx, script.unwrap_or(Path::new(""))),
        Ok(false) => return None,
        Err(error) => {
            tracing::error!("final job not submitted: {error}");
            format!("not submitted: {error}")
        }
    };
    *submitted = Some(answer.clone());
    Some(answer)
}

/// Submit the array's final job once: `sbatch --dependency=afterany:<array>
/// SCRIPT <array>`. Returns its id, or what went wrong (recorded either way, so
/// that a broken submission is not retried by every task).
fn submit_final(ctx: &Ctx, script: &Path) -> String {
    let array = ctx.job.job_id();
    let mut command = Command::new("sbatch");
    // The task's own SLURM variables would make the final job look like a task
    // of the array; sbatch itself needs none of them (SLURM_CONF aside).
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("SLURM_") && key != "SLURM_CONF" {
            command.env_remove(&key);
        }
    }
    command.arg("--parsable");
    // The array's own account, partition and QOS: sites that enforce accounts
    // reject a job without one, and the cluster is the submitting one anyway.
    for (option, value) in [
        ("--account", &ctx.job.account),
        ("--partition", &ctx.job.partition),
        ("--qos", &ctx.job.qos),
    ] {
        if let Some(value) = value {
            command.arg(format!("{option}={value}"));
        }
    }
    command
        .arg(format!("--dependency=afterany:{array}"))
        .arg(script)
        .arg(array);
    match command.output() {
        Ok(output) if output.status.success() => {
            let id = String::from_utf8_lossy(&output.stdout)
                .trim()
                .split(';')
                .next()
                .unwrap_or("")
                .to_string();
            tracing::info!(
                "submitted final job {id} ({}) to run after array {array}",
                show(script)
            );
            id
        }
        Ok(output) => {
            let why = String::from_utf8_lossy(&output.stderr).trim().to_string();
            tracing::error!(
                "could not submit the final job {} for array {array}: {why}",
                show(script)
            );
            format!("not submitted: {why}")
        }
        Err(error) => {
            tracing::error!("could not run sbatch for the final job of array {array}: {error}");
            format!("not submitted: {error}")
        }
    }
}
