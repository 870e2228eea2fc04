//! `dbbackup run [OPTIONS] [--] COMMAND [ARGS...]`: a job's work between its
//! pre-job and post-job, supervised ([`crate::slurm::supervise`]); USR1 makes
//! the time-limit backup ([`crate::slurm::time_limit`]). Exits with the work's
//! status; a backup failure only warns unless `--strict`.
//!
//! It calls the pre-job command and `post_job::after_work` (so the lines are the
//! commands' own); after pre-job the job is the one SLURM says it is
//! (`identity::recalled`), for post-job, USR1 and the TERM budget.

use std::ffi::OsString;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{Ctx, post_job, pre_job};
use crate::cli::{Format, FormatArgs, PreJobArgs, RunArgs};
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::slurm::job::JobContext;
use crate::slurm::supervise::{self, LeftRunning, Supervisor};
use crate::slurm::time_limit::{self, TimeLimit};
use crate::summary_log::{self, EventStatus, Line};

pub(crate) fn run(ctx: &Ctx, args: &RunArgs) -> Result<ExitCode> {
    let Some((program, program_args)) = args.command.split_first() else {
        return Err(Error::usage(
            "run: no COMMAND given (usage: dbbackup run [OPTIONS] [--] COMMAND [ARGS...])",
        ));
    };
    // A typo costs no backup, and fails as a shell would.
    if let Err(cannot) = supervise::check_executable(Path::new(program)) {
        tracing::error!("{}; the job's work cannot start", cannot.message);
        return Ok(ExitCode::Work(cannot.status as u8));
    }
    crate::signals::supervise();
    let (supervisor, decided) = start_supervisor(ctx)?;
    // The job's stdout is the work's: pre-job and post-job speak in the log.
    let ctx = Ctx {
        settings: crate::config::Settings {
            quiet: true,
            ..ctx.settings.clone()
        },
        job: ctx.job.clone(),
    };
    let pre = match pre_job(&ctx, args) {
        Ok(pre) => pre,
        Err(stop) => return Ok(stop),
    };
    let pre_ok = matches!(pre, PreJob::Ready);
    // Whether this is an array task, as pre-job asked SLURM.
    let ctx = Ctx {
        job: crate::slurm::identity::recalled(&ctx.job, &ctx.backup_dir()),
        ..ctx
    };
    if let Ok(mut job) = decided.lock() {
        job.clone_from(&ctx.job);
    }
    if !pre_ok && args.strict && supervisor.termination().is_none() {
        match pre {
            PreJob::FinalNotSubmitted => tracing::error!(
                "--strict: the work does not start: the array's final job was not submitted"
            ),
            PreJob::MirrorsFailed => tracing::error!(
                "--strict: the work does not start: its restore point was not copied to every mirror"
            ),
            _ => tracing::error!("--strict: the work does not start without its restore point"),
        }
        return Ok(ExitCode::Failure);
    }
    if let Some(need) = post_job_need(&ctx) {
        supervisor.expect_post_job_to_need(need);
    }
    let (status, left_running) = work(&ctx, &supervisor, (program, program_args), &pre);
    let post_ok = post_job(&ctx, &supervisor, status, left_running.as_ref());
    let work = ExitCode::Work(status.clamp(0, 255) as u8);
    Ok(if args.strict && status == 0 && !(post_ok && pre_ok) {
        tracing::error!("--strict: a backup failed, so the job fails");
        ExitCode::Failure
    } else {
        work
    })
}

/// The supervisor, its TERM budget computed for the job pre-job decides on: the
/// caller puts that job in the returned cell.
fn start_supervisor(ctx: &Ctx) -> Result<(Supervisor, Arc<Mutex<JobContext>>)> {
    let settings = ctx.settings.clone();
    // Read at TERM: by then pre-job has decided who this job is.
    let decided = Arc::new(Mutex::new(ctx.job.clone()));
    let job_at_term = Arc::clone(&decided);
    let supervisor = Supervisor::start(move || {
        let job = job_at_term
            .lock()
            .map_or_else(|e| e.into_inner().clone(), |j| j.clone());
        post_job::budget_after_term(&settings, &job, false)
    })
    .map_err(|e| Error::failed(format!("cannot receive signals: {e}")))?;
    if let Some(signal) = crate::signals::received() {
        supervisor.catch_up(signal);
    }
    Ok((supervisor, decided))
}

/// What post-job is expected to need after a TERM: twice the longest of this
/// database's last three backups, plus a second (the database may grow while
/// the work runs). `None` when no backup says how long it took.
fn post_job_need(ctx: &Ctx) -> Option<std::time::Duration> {
    let set = ctx.backup_set(&ctx.backup_dir()).ok()?;
    let longest = set
        .restore_points
        .iter()
        .rev()
        .take(3)
        .filter_map(|e| e.meta.as_ref().ok()?.duration_seconds)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .fold(None, |most: Option<f64>, s| {
            Some(most.map_or(s, |m| m.max(s)))
        })?;
    std::time::Duration::try_from_secs_f64(2.0 * longest + 1.0).ok()
}

/// What pre-job left for the work.
enum PreJob {
    Ready,
    /// The restore point is there; the array's final job is not.
    FinalNotSubmitted,
    /// The restore point is there, not in every mirror.
    MirrorsFailed,
    NoRestorePoint,
}

/// Pre-job: whether it made (or found) the restore point and submitted the
/// final job; `Err(code)`: the job stops here with `code`, before its work (a
/// usage error).
fn pre_job(ctx: &Ctx, args: &RunArgs) -> std::result::Result<PreJob, ExitCode> {
    let pre_args = PreJobArgs {
        final_job: args.final_job.clone(),
        output: FormatArgs {
            format: Format::Text,
        },
    };
    match pre_job::run_ended(ctx, &pre_args) {
        Ok(pre_job::Ended::Ready) => Ok(PreJob::Ready),
        // Why is in the mirror's ERROR line above and the summary line.
        Ok(pre_job::Ended::MirrorsFailed) => Ok(PreJob::MirrorsFailed),
        Ok(pre_job::Ended::FinalNotSubmitted) => {
            // Why is in pre-job's own line above and its summary line.
            tracing::error!(
                "pre-job failed: the array's final job was not submitted (the restore point is there)"
            );
            Ok(PreJob::FinalNotSubmitted)
        }
        Err(error) if error.exit_code() == ExitCode::Usage => {
            tracing::error!(
                "pre-job: {error}; the job stops here, before its work: it would run without a restore point"
            );
            Err(ExitCode::Usage)
        }
        // A lost database: the work would start a new, empty one, which its
        // post-job would then publish as the newest state (T27b F3).
        Err(error @ crate::error::Error::Lost(_)) => {
            tracing::error!(
                "pre-job failed: {error}; the job stops here, before its work: it would start a new, empty database in its place"
            );
            Err(ExitCode::Failure)
        }
        Err(error) => {
            tracing::error!("pre-job failed: {error}");
            Ok(PreJob::NoRestorePoint)
        }
    }
}

/// Run the work unless a TERM came first; its exit status (128 + the signal
/// when it never started), and the processes it left running (stopped).
fn work(
    ctx: &Ctx,
    supervisor: &Supervisor,
    (program, program_args): (&OsString, &[OsString]),
    pre: &PreJob,
) -> (i32, Option<LeftRunning>) {
    match supervisor.termination() {
        Some(term) => {
            tracing::warn!(
                "{} came before the work started: not starting it",
                supervise::signal_name(term.signal)
            );
            // Bounded from the TERM, as after the work.
            (128 + term.signal, None)
        }
        None => {
            if matches!(pre, PreJob::NoRestorePoint) {
                tracing::warn!("the work starts without a new restore point");
            }
            let end = supervisor.run(program, program_args, || time_limit_backup(ctx));
            tracing::info!("the work {}", end.how);
            (end.status, end.left_running)
        }
    }
}

/// Post-job after the work (within the TERM budget when a TERM came): whether
/// it succeeded.
fn post_job(
    ctx: &Ctx,
    supervisor: &Supervisor,
    status: i32,
    left_running: Option<&LeftRunning>,
) -> bool {
    let term = supervisor.termination().map(|term| {
        let (budget, why) = supervisor.budget();
        // The work's share left (it ended early) goes to the job's steps.
        let steps_running =
            crate::slurm::steps::still_running(&ctx.job, supervisor.work_time_left());
        post_job::AfterTerm {
            steps_running,
            at: term.at,
            budget,
            why,
            cause: supervise::signal_name(term.signal),
            signal: nix::sys::signal::Signal::try_from(term.signal)
                .unwrap_or(nix::sys::signal::Signal::SIGTERM),
        }
    });
    match post_job::after_work(ctx, Some(status), term, left_running, Format::Text) {
        Ok(ExitCode::Success) => true,
        Ok(_) => false,
        Err(error) => {
            tracing::error!("post-job failed: {error}");
            false
        }
    }
}

/// USR1: the time-limit backup, with its summary line whatever came of it.
fn time_limit_backup(ctx: &Ctx) {
    tracing::info!("USR1: the time limit is near; backing up");
    let mut line = match time_limit::back_up(&ctx.settings, &ctx.job) {
        Ok(TimeLimit::Skipped(reason)) => {
            tracing::info!("time-limit backup skipped: {reason}");
            let mut line = Line::new(&ctx.job, "time-limit", EventStatus::Skipped);
            line.field("reason", &reason);
            line
        }
        Ok(TimeLimit::Made(outcome)) => {
            if let crate::create::Outcome::Unchanged { newest, .. } = &outcome {
                tracing::info!("time-limit backup skipped: database unchanged since {newest}");
            }
            let mut line = super::report::outcome_line(&ctx.job, "time-limit", &outcome);
            if let crate::create::Outcome::Created(created) = &outcome {
                // Its kind in `list` is `auto` (older versions read no other):
                // the job's log says what it was for.
                tracing::info!(
                    "time-limit backup made: {} (listed as kind auto, job {})",
                    created.entry.file_name,
                    ctx.job.job_id()
                );
                line.field("size", &created.entry.size.to_string())
                    .field("seconds", &format!("{:.2}", created.duration.as_secs_f64()));
            }
            line
        }
        Err(error) => {
            tracing::error!("time-limit backup failed: {error}");
            let mut line = Line::new(&ctx.job, "time-limit", EventStatus::Failed);
            line.field("error", &error.to_string());
            line
        }
    };
    line.field("trigger", "USR1");
    summary_log::append_or_warn(&ctx.settings.summary_log, &line);
}
