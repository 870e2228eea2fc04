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

use std::time::{Duration, Instant};

use serde_json::json;

use super::Ctx;
use super::report::report;
use crate::cli::PostJobArgs;
use crate::create::{self, Outcome};
use crate::due;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::slurm::array::{FinalJob, JobState};
use crate::slurm::prejob::KillWait;
use crate::slurm::scheduler::JobId;
use crate::slurm::supervise::LeftRunning;
use crate::store::{DbId, Kind};
use crate::summary_log::{self, Line};

pub(crate) fn run(ctx: &Ctx, args: &PostJobArgs) -> Result<ExitCode> {
    crate::units::strict_env()?;
    // Whether this is an array task, as pre-job asked SLURM; asked now when
    // no pre-job ran for this job (a job submitted from an array task that
    // calls only post-job inherits the task's variables, and must not count
    // as that task). Never after TERM: the time left is the backup's.
    let job = if args.after_term {
        crate::slurm::identity::recalled(&ctx.job, &ctx.backup_dir())
    } else {
        crate::slurm::identity::recalled_or_decided(&ctx.job, &ctx.backup_dir())
    };
    let ctx = &Ctx {
        settings: ctx.settings.clone(),
        job,
    };
    let term = args.after_term.then(|| {
        let at = Instant::now();
        let (budget, why) = budget_after_term(&ctx.settings, &ctx.job, true);
        let cause = "SLURM's TERM".to_string();
        AfterTerm {
            at,
            budget,
            why,
            cause,
            signal: nix::sys::signal::Signal::SIGTERM,
            // The script's trap runs this at once: nothing to wait with.
            steps_running: crate::slurm::steps::still_running(&ctx.job, Duration::ZERO),
        }
    });
    after_work(ctx, args.status, term, None, args.output.format)
}

/// SLURM's TERM has come: when, the time allowed from then on, and which bound
/// that is (for the summary line).
pub(crate) struct AfterTerm {
    pub at: Instant,
    pub budget: Duration,
    pub why: String,
    /// What came: "SLURM's TERM", "signal INT"...
    pub cause: String,
    /// The signal, for the summary line (`after_signal=INT`).
    pub signal: nix::sys::signal::Signal,
    /// The job's steps still running on this node when post-job began (`run`
    /// of a batch script whose work is `srun …`): SLURM lets their tasks run
    /// to KillWait, so what they write after the backup is in no backup.
    pub steps_running: Vec<String>,
}

/// Post-job proper, for the command and for `dbbackup run`: `job_status` is the
/// work's; after TERM the run is bounded from the TERM on; `left_running`: what
/// `run` stopped after the work exited (on the line: the backup came after).
/// `ctx.job` is the job as pre-job decided it (`identity::recalled`).
pub(crate) fn after_work(
    ctx: &Ctx,
    job_status: Option<i32>,
    term: Option<AfterTerm>,
    left_running: Option<&LeftRunning>,
    format: crate::cli::Format,
) -> Result<ExitCode> {
    let out = ctx.output(format);
    let grace = term.as_ref().map(|term| {
        tracing::info!("after {}: finishing within {}", term.cause, term.why);
        crate::signals::bound_since(term.at, term.budget);
        (term.why.clone(), term.signal)
    });
    let result = decide_and_back_up(ctx, term.is_some())
        .map(|(reason, outcome)| Decided { reason, outcome });
    let result = create::recorded(&ctx.settings, &ctx.job, Kind::PostJob, result)
        .map(|decided| (decided.reason, decided.outcome));
    let (status, mut line) = match &result {
        Ok((reason, None)) => {
            out.not_made(format!("skipped: {reason}"));
            out.document(&json!({"status": "skipped", "reason": reason}));
            let mut line = Line::new(&ctx.job, "post-job", summary_log::EventStatus::Skipped);
            line.field("reason", reason);
            (ExitCode::Success, line)
        }
        Ok((reason, Some(outcome))) => {
            let status = report(&out, outcome);
            if let Outcome::Created(_) = outcome
                && let Some(note) = crate::remote::not_uploaded_by_hooks(&ctx.settings)
            {
                out.line(note);
            }
            let mut line = super::report::outcome_line(&ctx.job, "post-job", outcome);
            match outcome {
                Outcome::Unchanged { .. } => {
                    line.field("reason", "database unchanged");
                }
                Outcome::Created(created) => {
                    line.field("db_size", &created.meta.db_size.to_string())
                        .field("size", &created.entry.size.to_string())
                        .field("seconds", &format!("{:.2}", created.duration.as_secs_f64()))
                        .field("check", if created.is_good() { "ok" } else { "failed" });
                }
            }
            line.field("trigger", reason);
            (status, line)
        }
        Err(error) => {
            let mut line = Line::new(&ctx.job, "post-job", summary_log::EventStatus::Failed);
            line.field("error", &error.to_string());
            (ExitCode::Failure, line)
        }
    };
    // Every post-job line carries `exit_status` (README); never a guessed 0.
    match job_status {
        Some(job_status) => line.field("exit_status", &job_status.to_string()),
        None => {
            tracing::warn!(
                "no --status given: the summary line records exit_status=unknown (pass the job's $?)"
            );
            line.field("exit_status", "unknown")
        }
    };
    if let Some(left) = left_running {
        let pids: Vec<String> = left.pids.iter().map(i32::to_string).collect();
        line.field("left_running", &pids.join(","))
            .field("left_running_stopped", left.stopped.as_str());
    }
    if let Some((why, signal)) = &grace {
        // `after_term=true` as before, and only for TERM: INT (Ctrl-C) and HUP
        // bound post-job the same way, but are not SLURM's TERM.
        if *signal == nix::sys::signal::Signal::SIGTERM {
            line.field("after_term", "true");
        }
        let name = signal.as_str();
        line.field("after_signal", name.strip_prefix("SIG").unwrap_or(name));
        line.field("term_grace", why);
    }
    if ctx.job.restarts > 0 {
        line.field("restarts", &ctx.job.restarts.to_string());
    }
    if let Some(term) = term.as_ref().filter(|t| !t.steps_running.is_empty()) {
        let steps = term.steps_running.join(",");
        // `unknown` was warned of where it was asked.
        if steps != "unknown" {
            tracing::warn!(
                "step {steps} of this job still runs on this node (SLURM lets its tasks run until KillWait): what it writes after this backup is in no backup"
            );
        }
        line.field("steps_running", &steps);
    }
    summary_log::append_or_warn(&ctx.settings.summary_log, &line);
    result.map(|_| status)
}

/// Why a backup is (or is not) made, and its outcome when it was attempted.
struct Decided {
    reason: String,
    outcome: Option<Outcome>,
}

impl create::Attempted for Decided {
    fn verdict(&self) -> Option<crate::attempts::Verdict> {
        self.outcome.verdict()
    }
}

/// What SLURM says of a requeued array's other tasks.
#[derive(Debug, PartialEq, Eq)]
enum Rerun {
    /// None runs (or this task was never requeued: its count is its run's).
    NoneRunning,
    /// These still run (`1,2`).
    Running(String),
    /// SLURM could not be asked (why).
    Unknown(String),
}

/// A requeued task's count of finished tasks may be its array's first run's
/// (every task requeued after the array ended): SLURM says which other tasks
/// still run (T22 F7).
fn rerunning_tasks(restarts: u64, task: &crate::slurm::job::ArrayTask) -> Rerun {
    if restarts == 0 {
        return Rerun::NoneRunning;
    }
    let (_, ends, failure) = crate::slurm::scheduler::task_ends(&task.array_job_id);
    // Not told: the array is not declared ended on a guess.
    if let Some(failure) = failure {
        return Rerun::Unknown(failure.to_string());
    }
    let others: Vec<String> = ends
        .iter()
        .filter(|(id, end)| **id != task.task_id && end.not_ended())
        .map(|(id, _)| id.to_string())
        .collect();
    if others.is_empty() {
        Rerun::NoneRunning
    } else {
        Rerun::Running(others.join(","))
    }
}

/// A task ended by TERM is not counted as finished (it may be requeued): the
/// array's final job backs up its work, or, without one, nothing does; the
/// line says which is known.
fn not_counted(state: &JobState, key: &str) -> String {
    // Without DBBACKUP_FINAL=0 pre-job records the final job; with it, one
    // may still come (slurm/submit_array_with_final.sh) or none.
    let then = match state.pre_job(key).and_then(|record| record.final_job) {
        // Not asked of SLURM after TERM (docs/slurm.md): said as the plan it
        // is, with who tells if the final job is cancelled too (T28 F19).
        Some(FinalJob::Submitted(JobId(id))) => format!(
            "the array's final job {id} is to back up (cancelled too, it does not: `dbbackup check` then says this work is in no backup)"
        ),
        Some(FinalJob::NotSubmitted(why)) => format!(
            "no final job was submitted ({why}): nothing backs up this task's work unless it is requeued or a later backup is made"
        ),
        None => "no final job is recorded for this array (DBBACKUP_FINAL=0): unless one was submitted with it (slurm/submit_array_with_final.sh), nothing backs up this task's work until it is requeued or a later backup is made".to_string(),
    };
    format!("ended by SLURM's TERM: not counted as finished (it may be requeued); {then}")
}

/// Without a final job submitted for the array (`DBBACKUP_FINAL=0`, sbatch
/// refused), the task whose post-job is the last of the array's to run (the
/// others finished or ended by TERM) backs up: nothing else would (T22 F2).
/// It does not mark the array ended: a task ended by TERM may be requeued.
fn last_without_final(
    state: &JobState,
    key: &str,
    task: &crate::slurm::job::ArrayTask,
) -> Result<Option<String>> {
    let Some(count) = task.task_count else {
        return Ok(None);
    };
    let record = state.pre_job(key).and_then(|record| record.final_job);
    if matches!(record, Some(FinalJob::Submitted(_))) {
        return Ok(None);
    }
    let reached = state.reached_post_job(key)?.len() as u64;
    let finished = state.finished_tasks(key)?.len() as u64;
    Ok((reached >= count).then(|| {
        format!(
            "the last of the array's {count} tasks to end ({finished} finished, {} ended by SLURM's TERM) and no final job backs up this array",
            reached - finished
        )
    }))
}

/// Why a backup is (or is not) made, and its outcome when it was attempted.
fn decide_and_back_up(ctx: &Ctx, after_term: bool) -> Result<(String, Option<Outcome>)> {
    let db = ctx.settings.db_path()?;
    let dir = ctx.backup_dir();
    // Asked before the lock: a whole array requeued would otherwise wait on
    // SLURM one task after another.
    let rerun = match &ctx.job.array {
        Some(task) if !after_term => rerunning_tasks(ctx.job.restarts, task),
        _ => Rerun::NoneRunning,
    };
    let lock = ctx.lock(&dir)?;
    let key = crate::slurm::array::key(&ctx.job.state_key(), &DbId::of(db));
    // Marked only after the backup: its retention must still keep this job's
    // restore point (a requeued job's second run ends here too).
    let mut ends = false;
    let reason = match &ctx.job.array {
        None => {
            // Outside SLURM no state was kept for the run.
            ends = !after_term && ctx.job.own_id.is_some();
            match crate::slurm::job::step_task() {
                // One task of several (`srun -n 8 dbbackup run`): the job has
                // not ended while the others run, nor when the step ends (the
                // script may run more steps): its restore point stays kept
                // until the job's pin expires (a job step cannot see the end
                // of the job).
                Some(step) => {
                    ends = false;
                    format!(
                        "task {} of {} of step {} finished (the job's restore point stays kept: the script may run more steps)",
                        step.task, step.tasks, step.step
                    )
                }
                None => "job finished".to_string(),
            }
        }
        Some(task) if after_term => {
            // Not finished (it may be requeued), but it reached post-job: the
            // final job's line says so.
            let state = JobState::open(&dir, &lock)?;
            state.term_task(&key, task.task_id)?;
            if due::interval_passed(&dir, &DbId::of(db), ctx.settings.min_interval)? {
                "ended by SLURM's TERM; newest backup older than the interval".to_string()
            } else if let Some(why) = last_without_final(&state, &key, task)? {
                format!("ended by SLURM's TERM, {why}")
            } else {
                return Ok((not_counted(&state, &key), None));
            }
        }
        Some(task) => {
            let state = JobState::open(&dir, &lock)?;
            let finished = state.finish_task(&key, task.task_id)?;
            let counted = task.task_count.is_some_and(|count| finished >= count);
            let of = task.task_count.map_or("?".to_string(), |c| c.to_string());
            let rerun = if counted { rerun } else { Rerun::NoneRunning };
            let last = counted && rerun == Rerun::NoneRunning;
            if let Rerun::Running(others) = rerun {
                return Ok((
                    format!(
                        "the array was requeued and its tasks {others} still run (SLURM says so): the last of them backs up"
                    ),
                    None,
                ));
            } else if let Rerun::Unknown(why) = rerun {
                // Backed up, the array left pinned: nothing is lost either way.
                format!(
                    "the array was requeued and SLURM cannot tell whether its other tasks still run ({why}): backing up, the array not ended"
                )
            } else if last {
                ends = true;
                format!("last task ({finished} of {of} finished)")
            } else if let Some(why) = last_without_final(&state, &key, task)? {
                why
            } else if due::interval_passed(&dir, &DbId::of(db), ctx.settings.min_interval)? {
                format!("newest backup older than the interval ({finished} of {of} finished)")
            } else if let Some(others) = other_databases(&dir, &ctx.job.state_key(), &key) {
                // The tasks back up different databases (one per task): no
                // count of this one reaches the array's, so none would wait
                // for "the last one" in vain.
                format!(
                    "the array's tasks back up {} databases: each task's post-job backs up its own ({finished} of {of} finished)",
                    others + 1
                )
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
    let outcome = create::if_changed(&ctx.settings, &job, &dir, &lock, db, Kind::PostJob, false);
    if ends {
        JobState::open(&dir, &lock)?.mark_ended(&key)?;
    }
    Ok((reason, Some(outcome?)))
}

/// How many other databases the tasks of this array (`job_key`) ran pre-job
/// for, besides the one of `key` (state files `prejob-<job key>-<db key>`).
fn other_databases(dir: &crate::store::BackupDir, job_key: &str, key: &str) -> Option<usize> {
    let prefix = format!("{job_key}-");
    let others = crate::slurm::array::JobState::reader(dir)
        .keys("prejob")
        .iter()
        .filter(|k| k.starts_with(&prefix) && *k != key)
        .count();
    (others > 0).then_some(others)
}

/// Seconds kept between giving up and SLURM's KILL: the hooks still have to log
/// and exit, and SLURM's TERM reached us a moment before post-job started.
const KILL_WAIT_MARGIN: u64 = 2;

/// The bound inside SLURM when KillWait is unknown (a TERM during pre-job,
/// before it was read; no `scontrol`): what KillWait 5 s allows. A backup cut
/// short is retried later; a job KILLed mid-backup loses its summary line.
pub(crate) const UNKNOWN_KILL_WAIT_BOUND: Duration = Duration::from_secs(3);

/// The time allowed after a termination signal, and which bound applied:
/// KillWait as pre-job recorded it for this job (`prejob::kill_wait_for_job`;
/// asked now only when `ask`).
pub(crate) fn budget_after_term(
    settings: &crate::config::Settings,
    job: &crate::slurm::job::JobContext,
    ask: bool,
) -> (Duration, String) {
    let kill_wait = match settings.db_path() {
        Ok(db) => crate::slurm::prejob::kill_wait_for_job(
            &crate::store::BackupDir::new(&settings.backup_dir),
            job,
            &DbId::of(db),
            ask,
        ),
        Err(_) if job.own_id.is_none() => KillWait::NotSlurm,
        Err(error) => KillWait::Unknown(error.to_string()),
    };
    grace_after_term(settings.term_grace, kill_wait)
}

/// The time post-job may take after a termination signal: `term_grace_seconds`,
/// but never past the cluster's KillWait (SLURM KILLs the job that long after
/// TERM, leaving a temp file and no summary line), nor past a conservative
/// bound in a SLURM job whose KillWait is unknown. Also says which bound applied.
fn grace_after_term(configured: Duration, kill_wait: KillWait) -> (Duration, String) {
    let configured_s = configured.as_secs();
    match kill_wait {
        KillWait::Known(kill_wait) => {
            let cap = kill_wait.saturating_sub(KILL_WAIT_MARGIN).max(1);
            if cap < configured_s {
                (
                    Duration::from_secs(cap),
                    format!("{cap} s: KillWait {kill_wait} s minus {KILL_WAIT_MARGIN} s"),
                )
            } else {
                (
                    configured,
                    format!("{configured_s} s: term_grace_seconds (KillWait {kill_wait} s)"),
                )
            }
        }
        KillWait::Unknown(why) if configured > UNKNOWN_KILL_WAIT_BOUND => {
            let bound = UNKNOWN_KILL_WAIT_BOUND.as_secs();
            (
                UNKNOWN_KILL_WAIT_BOUND,
                format!("{bound} s: KillWait unknown ({why}), so the conservative bound"),
            )
        }
        KillWait::Unknown(why) => (
            configured,
            format!("{configured_s} s: term_grace_seconds (KillWait unknown: {why})"),
        ),
        KillWait::NotSlurm => (
            configured,
            format!("{configured_s} s: term_grace_seconds (not a SLURM job)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_stays_inside_kill_wait() {
        let twenty = Duration::from_secs(20);
        let (grace, why) = grace_after_term(twenty, KillWait::Known(5));
        assert_eq!(grace, Duration::from_secs(3));
        assert_eq!(why, "3 s: KillWait 5 s minus 2 s");
        assert_eq!(grace_after_term(twenty, KillWait::Known(30)).0, twenty);
        assert_eq!(
            grace_after_term(twenty, KillWait::Known(2)).0,
            Duration::from_secs(1)
        );
        // Inside SLURM, unknown: the conservative bound, never the 20 s default.
        let (grace, why) =
            grace_after_term(twenty, KillWait::Unknown("cannot run scontrol".into()));
        assert_eq!(grace, UNKNOWN_KILL_WAIT_BOUND);
        assert_eq!(
            why,
            "3 s: KillWait unknown (cannot run scontrol), so the conservative bound"
        );
        let two = Duration::from_secs(2);
        assert_eq!(grace_after_term(two, KillWait::Unknown("x".into())).0, two);
        let (grace, why) = grace_after_term(twenty, KillWait::NotSlurm);
        assert_eq!(grace, twenty);
        assert_eq!(why, "20 s: term_grace_seconds (not a SLURM job)");
    }
}
