//! `dbbackup periodic`: for scrontab or cron. The newest restore point read
//! whole when it was not for a week, `auto` (never waiting for another
//! backup), retention, and `check`, in one run that prints nothing when all is
//! well; a summary line when it made a backup or found a problem.

use super::Ctx;
use crate::attempts::Verdict;
use crate::cli::PeriodicArgs;
use crate::create::{self, Attempt, Outcome};
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::health::ATTEMPT;
use crate::store::Kind;
use crate::summary_log::{self, Line};

pub(crate) fn run(ctx: &Ctx, args: &PeriodicArgs) -> Result<ExitCode> {
    // A bad path is a usage error, found before any work (run as root, a rename
    // over /dev/null would replace the device).
    if let Some(path) = &args.metrics_file {
        crate::metrics::validate_path(path)?;
    }
    // No database is a usage error, said alone, before any health is judged.
    ctx.settings.db_path()?;
    // Before the backup: a point found damaged no longer holds the database's
    // state, so a new one is made now.
    let reread = reread_if_stale(ctx);
    let made = back_up_if_due(ctx);
    let thresholds = ctx.settings.check.clone();
    let mut criteria = match crate::health::evaluate_all(&ctx.settings, &thresholds) {
        Ok(criteria) => criteria,
        Err(error) => {
            if let Some(path) = &args.metrics_file {
                crate::metrics::write_unjudged(path);
            }
            return Err(error);
        }
    };
    // This run's own failed attempt fails the `attempt` criterion also when no
    // place could take its record (the criterion then sees an older one).
    if let Some(Verdict::Failed(why) | Verdict::NotCopied { detail: why, .. }) =
        create::verdict_of(&made)
        && let Some(attempt) = criteria.iter_mut().find(|c| c.name == ATTEMPT && c.ok)
    {
        attempt.ok = false;
        attempt.detail = format!("this run failed: {why}");
    }
    let mut problems = crate::health::problems(&criteria);
    // Said by this run even when its new backup is healthy: a point that
    // matched its checksum yet failed `integrity_check` was a faithful copy of
    // a database already damaged, and so may the new one be.
    problems.extend(reread);
    if let Some(path) = &args.metrics_file {
        let written = super::report::prometheus(ctx, &criteria)
            .and_then(|text| crate::metrics::write_file(path, &text));
        if let Err(error) = written {
            problems.push(format!("metrics file not written: {error}"));
        }
    }
    for problem in &problems {
        tracing::warn!("unhealthy: {problem}");
    }
    // Only a backup made (or a mirror filled in) is news here: "unchanged" is
    // periodic's quiet case.
    let (status, backup) = match &made {
        Ok(Some(outcome @ Outcome::Created(created))) => {
            (super::report::event_status(outcome), Some(created))
        }
        Ok(Some(outcome)) => (super::report::event_status(outcome), None),
        Ok(None) => (summary_log::EventStatus::Skipped, None),
        Err(_) => (summary_log::EventStatus::Failed, None),
    };
    let filled = match &made {
        Ok(Some(Outcome::Unchanged {
            filled: Some(filled),
            ..
        })) => Some(filled),
        _ => None,
    };
    if backup.is_some() || filled.is_some() || !problems.is_empty() || made.is_err() {
        let status = if problems.is_empty() {
            status
        } else {
            summary_log::EventStatus::Failed
        };
        let mut line = Line::new(&ctx.job, "periodic", status);
        if let Some(created) = backup {
            super::report::created_fields(&mut line, created);
        }
        if let Some(filled) = filled {
            line.backup(&filled.name);
            super::report::filled_fields(&mut line, filled);
        }
        line.field(
            "healthy",
            if problems.is_empty() { "true" } else { "false" },
        );
        if !problems.is_empty() {
            line.field("problems", &problems.join("; "));
        }
        if let Err(error) = &made {
            line.field("error", &error.to_string());
        }
        summary_log::append_or_warn(&ctx.settings.summary_log, &line);
    }
    let made = made?;
    let backup_ok = made.as_ref().is_none_or(Outcome::is_complete);
    Ok(if backup_ok && problems.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// Read the newest restore point (what `restore latest` takes) whole, as
/// `verify` does, when neither its creation nor its last whole read is within
/// [`REREAD_AFTER`]: bytes gone bad in a file of the same size pass every
/// cheap test, so `check` would call it good for ever (T25 #2). Damage found
/// is marked, and `check` reports it (`count`, `restorable`); what the read
/// found wrong is this run's problem too.
fn reread_if_stale(ctx: &Ctx) -> Option<String> {
    use crate::store::read_whole::{self, REREAD_AFTER};
    let points =
        crate::store::latest::restore_points(&ctx.backup_dir(), ctx.db_id().as_ref(), None).ok()?;
    let newest = points
        .iter()
        .find(|e| crate::diff::restore_problem(e).is_none())?;
    let last =
        read_whole::last(&newest.path).map_or(newest.created(), |at| at.max(newest.created()));
    if jiff::Timestamp::now().duration_since(last) < REREAD_AFTER {
        return None;
    }
    // Claimed first: runs that start while it reads (cron every 15 minutes, a
    // point of 50 GB), and a read that fails for want of room in $TMPDIR, do
    // not read it again before the next week.
    read_whole::record(&newest.path);
    let threads = crate::archive::worker_threads(ctx.settings.threads, ctx.job.cpus_per_task);
    match crate::verify::one(newest, false, &ctx.job, threads) {
        Ok(said) => {
            tracing::info!(
                "{} read whole (not for {}): {said}",
                newest.file_name,
                crate::units::human_duration(REREAD_AFTER.unsigned_abs())
            );
            None
        }
        // Deleted meanwhile (another job's retention): nothing to say.
        Err(_) if !newest.path.exists() => None,
        // WARNed with the run's other problems.
        Err(error) => Some(format!("{} read whole: {error}", newest.file_name)),
    }
}

/// `auto`'s rule: never waiting for a lock someone else holds.
fn back_up_if_due(ctx: &Ctx) -> Result<Option<Outcome>> {
    let db = ctx.settings.db_path()?;
    let attempt = create::if_due(
        &ctx.settings,
        &ctx.job,
        &ctx.backup_dir(),
        db,
        Kind::Periodic,
    );
    match create::recorded(&ctx.settings, &ctx.job, Kind::Periodic, attempt)? {
        // Not due, but a mirror lacked the newest restore point: reported as
        // "unchanged since" it, with what the copy came to.
        Attempt::Skipped {
            reason,
            filled: Some(filled),
        } => {
            tracing::debug!("periodic: {reason}");
            Ok(Some(Outcome::Unchanged {
                newest: filled.name.clone(),
                filled: Some(filled),
            }))
        }
        Attempt::Skipped { reason, .. } => {
            tracing::debug!("periodic: {reason}");
            Ok(None)
        }
        Attempt::Made(outcome) => {
            // Before health is judged, so `check`'s remote criterion sees it.
            if matches!(outcome, Outcome::Created(_)) {
                let _said_in_the_log = crate::remote::upload_inline(&ctx.settings, &ctx.job);
            }
            Ok(Some(outcome))
        }
    }
}
