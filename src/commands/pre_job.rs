//! `dbbackup pre-job`: glue over [`crate::slurm::prejob`]: prints what it found
//! or made and appends the summary line.

use serde_json::json;

use super::Ctx;
use crate::cli::PreJobArgs;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::slurm::array::FinalJob;
use crate::slurm::job::JobContext;
use crate::slurm::prejob::{self, Found};
use crate::summary_log::{self, Line};

pub(crate) fn run(ctx: &Ctx, args: &PreJobArgs) -> Result<ExitCode> {
    Ok(match run_ended(ctx, args)? {
        Ended::Ready => ExitCode::Success,
        Ended::FinalNotSubmitted | Ended::MirrorsFailed => ExitCode::Failure,
    })
}

/// How a pre-job with its restore point ended (without one: `Err`).
pub(crate) enum Ended {
    Ready,
    /// The restore point is there; the array's final job is not (said in
    /// prejob's ERROR line and the summary line).
    FinalNotSubmitted,
    /// The restore point is there, but not in every mirror: a failed backup,
    /// as for post-job (said in the mirror's ERROR line and the summary line).
    MirrorsFailed,
}

/// Pre-job, saying apart a missing restore point (`Err`) and a final job not
/// submitted, for `run`'s messages.
pub(crate) fn run_ended(ctx: &Ctx, args: &PreJobArgs) -> Result<Ended> {
    crate::units::strict_env()?;
    let out = ctx.output(args.output.format);
    let done = prejob::run(&ctx.settings, &ctx.job, args.final_job.as_deref());
    let job = &done.job;
    let job_id = job.job_id().to_string();
    let submitted = done.submitted.as_ref();
    // A final job that could not be submitted leaves the array unprotected: say
    // so in the line of the task that tried, and count that pre-job as failed.
    let final_failed = matches!(submitted, Some(FinalJob::NotSubmitted(_)));
    let (status, reason, name) = match &done.result {
        Ok(Found::Exists(name)) => (
            summary_log::EventStatus::Skipped,
            // A requeued single job finds its own first run's restore point.
            match (&job.array, job.restarts) {
                (None, 0) if crate::slurm::job::step_task().is_none() => {
                    // A plain job's script with a second `dbbackup run` (or
                    // pre-job): its first made it.
                    "made by an earlier pre-job of this job"
                }
                (None, restarts) if restarts > 0 => "made by an earlier run of this job (requeued)",
                // Made, or reused, by the task that got there first.
                _ => "chosen by another task of this job",
            },
            name,
        ),
        Ok(Found::Reused(name, _)) => (
            summary_log::EventStatus::Ok,
            "database unchanged since this restore point",
            name,
        ),
        Ok(Found::Created(name, _)) => (summary_log::EventStatus::Ok, "", name),
        Ok(Found::NothingYet) => {
            let db = ctx.settings.db_path()?;
            let why = "the database does not exist yet and has no backups: nothing to protect";
            let mut line = Line::new(job, "pre-job", summary_log::EventStatus::Skipped);
            line.field("reason", why);
            summary_log::append_or_warn(&ctx.settings.summary_log, &line);
            out.line(format!(
                "no restore point for job {job_id}: {} does not exist yet and has no backups (nothing to protect)",
                crate::error::show(db)
            ));
            out.document(&json!({"status": "skipped", "job": job_id, "reason": why}));
            return Ok(Ended::Ready);
        }
        Err(error) => {
            let mut line = Line::new(job, "pre-job", summary_log::EventStatus::Failed);
            line.field("error", &error.to_string());
            add_final(&mut line, submitted);
            add_restarts(job, &mut line);
            summary_log::append_or_warn(&ctx.settings.summary_log, &line);
            return done.result.map(|_| Ended::Ready);
        }
    };
    let mirrors_failed = match &done.result {
        Ok(Found::Created(_, failed) | Found::Reused(_, failed)) => failed.clone(),
        Ok(Found::Exists(name)) => not_in_every_mirror(ctx, name),
        _ => None,
    };
    let status = if final_failed || mirrors_failed.is_some() {
        summary_log::EventStatus::Failed
    } else {
        status
    };
    let mut line = Line::new(job, "pre-job", status);
    line.backup(name);
    if !reason.is_empty() {
        line.field("reason", reason);
    }
    if let Some(failed) = &mirrors_failed {
        line.field("mirror", failed);
    }
    add_final(&mut line, submitted);
    add_restarts(job, &mut line);
    let verb = match &done.result {
        Ok(Found::Created(..)) => "created",
        Ok(Found::Reused(..)) => "reused",
        _ => "exists:",
    };
    let said = format!("restore point for job {job_id} {verb} {name}");
    if let Ok(Found::Created(..)) = &done.result {
        out.line(said);
    } else {
        out.not_made(said);
    }
    if let Ok(Found::Created(..)) = &done.result
        && let Some(note) = crate::remote::not_uploaded_by_hooks(&ctx.settings)
    {
        out.line(note);
    }
    out.document(&json!({"status": status.as_str(), "job": job_id, "backup": name}));
    summary_log::append_or_warn(&ctx.settings.summary_log, &line);
    Ok(match submitted {
        Some(FinalJob::NotSubmitted(_)) => Ended::FinalNotSubmitted,
        _ if mirrors_failed.is_some() => Ended::MirrorsFailed,
        _ => Ended::Ready,
    })
}

/// The mirrors that lack `name`, the restore point another task of this job
/// made (its copy failed there): "DIR: why; ...". The task that made it says
/// so; so must the others, each of whose work it protects (`--strict`).
fn not_in_every_mirror(ctx: &Ctx, name: &str) -> Option<String> {
    let entry = ctx.backup_dir().by_name(name).ok()?;
    let lacking: Vec<String> = ctx
        .settings
        .mirror_dirs
        .iter()
        .filter_map(|m| {
            crate::mirror::lacks(m, &entry).map(|why| format!("{}: {why}", crate::error::show(m)))
        })
        .collect();
    if lacking.is_empty() {
        return None;
    }
    let failed = lacking.join("; ");
    tracing::error!("restore point {name} is not in every mirror: {failed}");
    Some(failed)
}

fn add_final(line: &mut Line, submitted: Option<&FinalJob>) {
    if let Some(answer) = submitted {
        line.field("final", &answer.to_string());
    }
}

fn add_restarts(job: &JobContext, line: &mut Line) {
    if job.restarts > 0 {
        line.field("restarts", &job.restarts.to_string());
    }
}
