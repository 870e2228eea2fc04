//! `dbbackup final ARRAY_JOB_ID`: the array's last word, run by a job that starts
//! after every task has ended (`sbatch --dependency=afterany:<array>`), however the
//! tasks ended: cancelled while pending, node failure, out of memory, time limit.
//! It records each task's final state (from `sacct`, else `scontrol`, else only
//! which tasks reached post-job) in one summary line, and makes the `final` backup
//! (tagged with the array id), or reuses the newest restore point when the
//! database is unchanged since. Its exit code reports the backup.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::json;

use super::Ctx;
use crate::cli::FinalArgs;
use crate::create::{self, Outcome};
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::slurm::array::JobState;
use crate::slurm::job::{sanitize, state_key};
use crate::store::{DbId, Kind};
use crate::summary_log::{self, Line};

/// The tasks that reached post-job, and the final backup's outcome.
struct Reached((BTreeSet<u64>, Outcome));

impl create::Attempted for Reached {
    fn verdict(&self) -> Option<crate::attempts::Verdict> {
        self.0.1.verdict()
    }
}

/// A task's end as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskEnd {
    pub state: String,
    pub exit_code: String,
}

pub(crate) fn run(ctx: &Ctx, args: &FinalArgs) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    let array = sanitize(&args.array_job_id);
    if array.is_empty() || !array.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::usage(format!(
            "'{}' is not an array job id (digits, as sbatch --parsable prints)",
            args.array_job_id
        )));
    }
    let db = DbId::of(ctx.settings.db_path()?);
    let key = crate::slurm::array::key(&state_key(ctx.job.cluster.as_deref(), &array), &db);
    let (source, mut ends) = task_ends(&array);
    let dir = ctx.backup_dir();
    // A mistyped id would otherwise pass for "nothing to do": say so (the backup
    // is still made or kept; it costs little and may be what was wanted).
    let unknown = (ends.is_empty()
        && JobState::reader(&dir).pre_job(&key).is_none()
        && JobState::reader(&dir)
            .finished_tasks(&key)
            .is_ok_and(|t| t.is_empty()))
    .then(|| {
        format!(
            "the scheduler knows nothing of array {array} and no pre-job state exists for it: \
             is the id right?"
        )
    });
    if let Some(warning) = &unknown {
        tracing::warn!("{warning}");
        out.line(format!("warning: {warning}"));
    }
    // Tasks the scheduler no longer reports (a task cancelled while pending may
    // be purged at once) are still named, when pre-job recorded every task id.
    if let Some(all) = JobState::reader(&dir)
        .pre_job(&key)
        .and_then(|r| r.all_tasks())
    {
        for task in all {
            ends.entry(task).or_insert_with(|| TaskEnd {
                state: "UNREPORTED".into(),
                exit_code: "?".into(),
            });
        }
    }
    let result = (|| -> Result<(BTreeSet<u64>, Outcome)> {
        let db = ctx.settings.db_path()?;
        let lock = ctx.lock(&dir)?;
        let state = JobState::open(&dir)?;
        let reached = state.finished_tasks(&key)?;
        let mut job = ctx.job.clone();
        job.tag = array.clone();
        let outcome = create::if_changed(&ctx.settings, &job, &dir, &lock, db, Kind::Final, false)?;
        state.mark_ended(&key)?;
        Ok((reached, outcome))
    })();
    let result = create::recorded(&ctx.settings, &ctx.job, Kind::Final, result.map(Reached))
        .map(|Reached(done)| done);
    let mut line = match &result {
        Ok((_, outcome)) => {
            // The same status as post-job's and periodic's lines: a failed check or
            // a failed mirror copy is `failed` (and final exits 1).
            let mut line = Line::of_outcome(&ctx.job, "final", outcome);
            match outcome {
                Outcome::Created(created) if !created.is_good() => {
                    line.field("check", "failed");
                }
                Outcome::Created(created) if !created.is_complete() => {
                    line.field("mirror", "failed");
                }
                Outcome::Created(_) => {}
                Outcome::Unchanged(_) => {
                    line.field("reason", "database unchanged since this backup");
                }
            }
            line
        }
        Err(error) => {
            let mut line = Line::new(&ctx.job, "final", summary_log::EventStatus::Failed);
            line.field("error", &error.to_string());
            line
        }
    };
    line.field("array", &array).field("states_from", source);
    if let Some(warning) = &unknown {
        line.field("warning", warning);
    }
    if !ends.is_empty() {
        line.field("tasks", &ends.len().to_string());
        let mut by_state: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
        for (task, end) in &ends {
            by_state.entry(&end.state).or_default().insert(*task);
        }
        for (state, tasks) in &by_state {
            line.field(&state_field(state), &ranges(tasks));
        }
        // Only known codes: a task the scheduler no longer reports ("?") never
        // ran, or nobody can say how it ended; its state field says which.
        let failed: BTreeSet<u64> = ends
            .iter()
            .filter(|(_, end)| end.exit_code != "0:0" && end.exit_code != "?")
            .map(|(task, _)| *task)
            .collect();
        if !failed.is_empty() {
            line.field("nonzero_exit", &ranges(&failed));
        }
    }
    if let Ok((reached, _)) = &result {
        line.field("post_job", &ranges(reached));
        if !ends.is_empty() {
            let missed: BTreeSet<u64> = ends
                .keys()
                .filter(|t| !reached.contains(t))
                .copied()
                .collect();
            line.field("no_post_job", &ranges(&missed));
        }
    }
    summary_log::append_or_warn(&ctx.settings.summary_log, &line);
    let (_, outcome) = result?;
    let status = super::report::report(&out, &outcome);
    out.document(&json!({
        "array": array,
        "states_from": source,
        "warning": unknown,
        "tasks": ends.iter().map(|(t, e)| json!({"task": t, "state": e.state, "exit_code": e.exit_code})).collect::<Vec<_>>(),
    }));
    Ok(status)
}

/// `CANCELLED by 0` → `state_cancelled`: a logfmt key.
fn state_field(state: &str) -> String {
    let word = state.split_whitespace().next().unwrap_or("unknown");
    format!("state_{}", sanitize(word).to_ascii_lowercase())
}

/// The tasks' final states, and where they came from.
fn task_ends(array: &str) -> (&'static str, BTreeMap<u64, TaskEnd>) {
    if let Some(text) = run_tool(
        "sacct",
        &["-j", array, "-n", "-P", "-X", "-o", "JobID,State,ExitCode"],
    ) {
        let ends = parse_sacct(&text, array);
        if !ends.is_empty() {
            return ("sacct", ends);
        }
    }
    if let Some(text) = run_tool("scontrol", &["show", "job", array, "-o"]) {
        let ends = parse_scontrol(&text, array);
        if !ends.is_empty() {
            return ("scontrol", ends);
        }
    }
    ("post-job-records", BTreeMap::new())
}

fn run_tool(tool: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(tool).args(args).output().ok()?;
    if !output.status.success() {
        tracing::debug!("{tool}: {}", String::from_utf8_lossy(&output.stderr).trim());
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `123_4|CANCELLED by 0|0:0` lines (`sacct -n -P -X -o JobID,State,ExitCode`).
pub(crate) fn parse_sacct(text: &str, array: &str) -> BTreeMap<u64, TaskEnd> {
    let mut ends = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split('|');
        let (Some(id), Some(state), Some(exit)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(task) = id
            .strip_prefix(array)
            .and_then(|rest| rest.strip_prefix('_'))
            .and_then(|t| t.parse().ok())
        else {
            continue;
        };
        ends.insert(
            task,
            TaskEnd {
                state: state.trim().to_string(),
                exit_code: exit.trim().to_string(),
            },
        );
    }
    ends
}

/// `scontrol show job <array> -o`: one line per task, `ArrayJobId=… ArrayTaskId=…
/// JobState=… ExitCode=…`.
pub(crate) fn parse_scontrol(text: &str, array: &str) -> BTreeMap<u64, TaskEnd> {
    let mut ends = BTreeMap::new();
    for line in text.lines() {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        if field("ArrayJobId") != Some(array) {
            continue;
        }
        // A still-pending remainder reads `ArrayTaskId=4-7%2`: not one task.
        let Some(task) = field("ArrayTaskId").and_then(|t| t.parse().ok()) else {
            continue;
        };
        ends.insert(
            task,
            TaskEnd {
                state: field("JobState").unwrap_or("UNKNOWN").to_string(),
                exit_code: field("ExitCode").unwrap_or("?").to_string(),
            },
        );
    }
    ends
}

/// `0-2,4,7-9`; `-` for none.
pub(crate) fn ranges(tasks: &BTreeSet<u64>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = tasks.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lists_are_compressed_to_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 4, 7, 8, 9].into()), "0-2,4,7-9");
        assert_eq!(ranges(&BTreeSet::new()), "-");
    }

    #[test]
    fn scheduler_reports_are_parsed() {
        let sacct = "55_0|COMPLETED|0:0\n55_3|CANCELLED by 0|0:0\n55_4|OUT_OF_MEMORY|0:125\n56_1|COMPLETED|0:0\n";
        let ends = parse_sacct(sacct, "55");
        assert_eq!(ends.len(), 3);
        assert_eq!(ends[&3].state, "CANCELLED by 0");
        assert_eq!(state_field(&ends[&3].state), "state_cancelled");
        let scontrol = "JobId=57 ArrayJobId=55 ArrayTaskId=2 JobName=x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15\n\
                        JobId=55 ArrayJobId=55 ArrayTaskId=4-7%2 JobState=PENDING ExitCode=0:0\n";
        let ends = parse_scontrol(scontrol, "55");
        assert_eq!(ends.len(), 1);
        assert_eq!(ends[&2].state, "TIMEOUT");
        assert_eq!(ends[&2].exit_code, "0:15");
    }
}
