//! `dbbackup final ARRAY_JOB_ID`: glue over [`crate::slurm::final_job`]: one
//! summary line with every task's final state, and the backup's report. Its
//! exit code reports the backup.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::Ctx;
use crate::cli::FinalArgs;
use crate::create::Outcome;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::slurm::final_job::{self, ranges, state_field};
use crate::summary_log::{self, Line};

pub(crate) fn run(ctx: &Ctx, args: &FinalArgs) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    let done = final_job::run(&ctx.settings, &ctx.job, &args.array_job_id, args.force)?;
    if let Some(warning) = &done.unknown {
        // A log line, once: stdout is the report (JSON has it as `warning`).
        tracing::warn!("{warning}");
    }
    let mut line = match &done.result {
        Ok((_, outcome)) => {
            // The same status as post-job's and periodic's lines: a failed check or
            // a failed mirror copy is `failed` (and final exits 1).
            let mut line = super::report::outcome_line(&ctx.job, "final", outcome);
            match outcome {
                Outcome::Created(created) if !created.is_good() => {
                    line.field("check", "failed");
                }
                Outcome::Created(created) if !created.is_complete() => {
                    line.field("mirror", "failed");
                }
                Outcome::Created(_) => {}
                Outcome::Unchanged { .. } => {
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
    line.field("array", &done.array)
        .field("states_from", done.source);
    if let Some(warning) = &done.unknown {
        line.field("warning", warning);
    }
    if done.result.is_ok() && !done.marked_ended {
        line.field("marked_ended", "no");
    }
    let ends = &done.ends;
    if !ends.is_empty() {
        line.field("tasks", &ends.len().to_string());
        let mut by_state: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
        for (task, end) in ends {
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
    if let Ok((reached, _)) = &done.result {
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
    let (_, outcome) = done.result?;
    // One JSON document: the backup's report with the array's fields.
    let tasks: Vec<_> = ends
        .iter()
        .map(|(t, e)| json!({"task": t, "state": e.state, "exit_code": e.exit_code}))
        .collect();
    let array = serde_json::Map::from_iter([
        ("array".to_string(), json!(done.array)),
        ("states_from".to_string(), json!(done.source)),
        ("warning".to_string(), json!(done.unknown)),
        ("marked_ended".to_string(), json!(done.marked_ended)),
        ("tasks".to_string(), json!(tasks)),
    ]);
    let code = super::report::report_with(&out, &outcome, array);
    if let Outcome::Created(_) = &outcome
        && let Some(note) = crate::remote::not_uploaded_by_hooks(&ctx.settings)
    {
        out.line(note);
    }
    Ok(code)
}
