//! `dbbackup auto`: cheap enough to call from every job script. It reads only the
//! directory listing, one backup header and the database's stat before deciding;
//! when another process is making a backup it returns at once.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::Ctx;
use crate::cli::FormatArgs;
use crate::create::{self, is_snapshot_of};
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::lock::{DirLock, Wait};
use crate::sqlite_file;
use crate::store::{BackupDir, DbId, Kind};
use crate::units::human_duration;

pub fn run(ctx: &Ctx, args: &FormatArgs) -> Result<ExitCode> {
    let out = ctx.output(args.format);
    let db = sqlite_file::validate_database(ctx.settings.db_path()?)?;
    let dir = ctx.backup_dir();
    if let Some(reason) = not_due(&dir, &db, ctx.settings.min_interval)? {
        return Ok(skip(&out, &reason));
    }
    dir.ensure_exists()?;
    let Some(lock) = DirLock::acquire(dir.path(), &ctx.job, Wait::No)? else {
        return Ok(skip(&out, "another process is making a backup right now"));
    };
    // Decide again under the lock: the holder we raced may have just published.
    if let Some(reason) = not_due(&dir, &db, ctx.settings.min_interval)? {
        return Ok(skip(&out, &reason));
    }
    let outcome = create::run(&ctx.settings, &ctx.job, &dir, &lock, &db, Kind::Auto, false)?;
    Ok(super::backup::report(&out, &outcome))
}

/// Why no backup is due, or `None` when one is: judged by this database's own
/// newest restore point only.
pub fn not_due(dir: &BackupDir, db: &Path, interval: Duration) -> Result<Option<String>> {
    let id = DbId::of(db);
    let Some(newest) = dir.newest_restore_point(&id)? else {
        return Ok(None);
    };
    let age = newest.age();
    if age < interval {
        return Ok(Some(format!(
            "newest backup {} is {} old, less than the {} interval",
            newest.file_name,
            human_duration(age),
            human_duration(interval)
        )));
    }
    let fingerprint = sqlite_file::fingerprint(db)?;
    Ok(is_snapshot_of(&newest, &id, &fingerprint)
        .then(|| format!("database unchanged since {}", newest.file_name)))
}

fn skip(out: &crate::output::Output, reason: &str) -> ExitCode {
    tracing::debug!("auto: {reason}");
    out.line(format!("skipped: {reason}"));
    out.document(&json!({"status": "skipped", "reason": reason}));
    ExitCode::Success
}
