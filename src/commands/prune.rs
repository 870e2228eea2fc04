//! `dbbackup prune [--dry-run]`

use serde_json::json;

use super::Ctx;
use crate::cli::PruneArgs;

use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::lock::DirLock;
use crate::retention;
use crate::store::DbId;

pub(crate) fn run(ctx: &Ctx, args: &PruneArgs) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    let dir = ctx.backup_dir();
    if !dir.path().exists() {
        out.line("nothing to prune: no backup directory yet");
        out.document(&json!({"dry_run": args.dry_run, "keep": [], "delete": []}));
        return Ok(ExitCode::Success);
    }
    // Retention is per database: without knowing which, nothing may be deleted.
    let db = DbId::of(ctx.settings.db_path()?);
    // A dry run writes nothing, so it takes no lock (the lock file could not be
    // created in a read-only directory): its plan is a prediction that the real
    // run makes again under the lock, so a backup published meanwhile is safe.
    let lock = if args.dry_run {
        None
    } else {
        let lock = DirLock::acquire(dir.path(), &ctx.job, ctx.settings.lock_timeout)?;
        lock.remove_stale_temps();
        Some(lock)
    };
    let policy = retention::policy(&ctx.settings);
    let (plan, pins) = crate::slurm::pins::plan(&dir, &db, policy, lock.as_ref())?;
    retention::say_held(&plan, policy);
    retention::say_undo(&plan);
    if !args.dry_run {
        retention::apply(&dir, &plan)?;
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for name in &plan.delete {
        out.line(format!("{verb} {name}"));
    }
    // Beyond max_backups, always said: otherwise "12 kept" with max_backups 10
    // reads like a bug.
    let pinned: Vec<_> = plan
        .pinned
        .iter()
        .filter_map(|name| Some((name, crate::slurm::pins::why(&pins, name)?)))
        .collect();
    for (name, why) in &pinned {
        out.line(format!("kept {name}: {why}"));
    }
    out.line(format!(
        "{} kept, {} {verb}",
        plan.keep.len(),
        plan.delete.len()
    ));
    let pinned: Vec<_> = pinned
        .iter()
        .map(|(name, why)| json!({"name": name, "why": why}))
        .collect();
    out.document(&json!({"dry_run": args.dry_run, "keep": plan.keep, "delete": plan.delete, "pinned": pinned}));
    Ok(ExitCode::Success)
}
