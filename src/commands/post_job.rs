//! `dbbackup post-job [--status N]`: after the work. A plain job backs up; in an
//! array only the last task to finish (counted under the lock, requeues counted
//! once) or a task that finds the newest backup older than the interval does.
//! Every task appends its summary line with the job's exit status; the command's
//! own exit code reports the backup, not the job.
//!
//! After SLURM's TERM (`--after-term`, passed by the hooks) the run is bounded by
//! `term_grace_seconds` so that it ends before SLURM's KILL, further TERMs do not
//! stop it, and an array task is not counted as finished: it may be requeued,
//! and the array's final job makes the backup that covers it.

use std::time::Duration;

use serde_json::json;

use super::{Ctx, Status};
use crate::backup::{self, Outcome};
use crate::cli::PostJobArgs;
use crate::error::Result;
use crate::jobstate::JobState;
use crate::store::{BackupDir, DbId, Kind};
use crate::summary::{self, Line};

pub fn run(ctx: &Ctx, args: &PostJobArgs) -> Result<Status> {
    let out = ctx.output(args.output.format);
    if args.after_term {
        crate::signals::bound(ctx.settings.term_grace);
    }
    let result = decide_and_back_up(ctx, args.after_term);
    let (status, mut line) = match &result {
        Ok((reason, None)) => {
            out.line(format!("skipped: {reason}"));
            out.document(&json!({"status": "skipped", "reason": reason}));
            let mut line = Line::new(&ctx.job, "post-job", summary::Status::Skipped);
            line.field("reason", reason);
            (Status::Success, line)
        }
        Ok((reason, Some(outcome))) => {
            let status = super::backup::report(&out, outcome);
            let mut line = match (outcome, status) {
                (Outcome::Unchanged(name), _) => {
                    let mut line = Line::new(&ctx.job, "post-job", summary::Status::Skipped);
                    line.field("backup", name)
                        .field("reason", "database unchanged");
                    line
                }
                (Outcome::Created(created), status) => {
                    let result = if status == Status::Success {
                        summary::Status::Ok
                    } else {
                        summary::Status::Failed
                    };
                    let mut line = Line::new(&ctx.job, "post-job", result);
                    line.field("backup", &created.entry.file_name)
                        .field("db_size", &created.meta.db_size.to_string())
                        .field("size", &created.entry.size.to_string())
                        .field("seconds", &format!("{:.2}", created.duration.as_secs_f64()))
                        .field("check", if created.is_good() { "ok" } else { "failed" });
                    line
                }
            };
            line.field("trigger", reason);
            (status, line)
        }
        Err(error) => {
            let mut line = Line::new(&ctx.job, "post-job", summary::Status::Failed);
            line.field("error", &error.to_string());
            (Status::Failure, line)
        }
    };
    if let Some(job_status) = args.status {
        line.field("exit_status", &job_status.to_string());
    }
    if args.after_term {
        line.field("after_term", "true");
    }
    if ctx.job.restarts > 0 {
        line.field("restarts", &ctx.job.restarts.to_string());
    }
    summary::append_or_warn(&ctx.settings.summary_log, &line);
    result.map(|_| status)
}

/// Why a backup is (or is not) made, and its outcome when it was attempted.
fn decide_and_back_up(ctx: &Ctx, after_term: bool) -> Result<(String, Option<Outcome>)> {
    let db = ctx.settings.db_path()?;
    let dir = ctx.backup_dir();
    let lock = ctx.lock(&dir)?;
    let key = crate::jobstate::key(&ctx.job.state_key(), &DbId::of(db));
    let reason = match &ctx.job.array {
        None => {
            if !after_term {
                JobState::open(&dir)?.mark_ended(&key)?;
            }
            "job finished".to_string()
        }
        Some(_) if after_term => {
            if older_than(&dir, &DbId::of(db), ctx.settings.min_interval)? {
                "ended by SLURM's TERM; newest backup older than the interval".to_string()
            } else {
                return Ok((
                    "ended by SLURM's TERM: not counted as finished (it may be requeued); the array's final job backs up".to_string(),
                    None,
                ));
            }
        }
        Some(task) => {
            let state = JobState::open(&dir)?;
            let finished = state.finish_task(&key, task.task_id)?;
            let last = task.task_count.is_some_and(|count| finished >= count);
            let of = task.task_count.map_or("?".to_string(), |c| c.to_string());
            if last {
                state.mark_ended(&key)?;
                format!("last task ({finished} of {of} finished)")
            } else if older_than(&dir, &DbId::of(db), ctx.settings.min_interval)? {
                format!("newest backup older than the interval ({finished} of {of} finished)")
            } else {
                return Ok((
                    format!("{finished} of {of} array tasks finished; the last one backs up"),
                    None,
                ));
            }
        }
    };
    let mut job = ctx.job.clone();
    job.tag = ctx.job.job_id().to_string();
    let outcome = backup::run(&ctx.settings, &job, &dir, &lock, db, Kind::PostJob, false)?;
    Ok((reason, Some(outcome)))
}

/// No restore point of `db`, or its newest is older than `interval`.
fn older_than(dir: &BackupDir, db: &DbId, interval: Duration) -> Result<bool> {
    Ok(dir
        .newest_restore_point(db)?
        .is_none_or(|newest| newest.age() >= interval))
}
