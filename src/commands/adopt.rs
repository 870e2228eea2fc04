//! `dbbackup adopt OLD_PATH [--dry-run] [--force]`: after a project moved, give
//! the backups recorded under the database's old path to the configured
//! database, in the backup directory and every mirror. From then on they are its
//! restore points for `restore latest`, retention and `check`.

use std::path::Path;

use serde_json::json;

use super::{Ctx, Status};
use crate::cli::AdoptArgs;
use crate::error::{Error, Result, show};
use crate::lock::{DirLock, Wait};
use crate::store::{BackupDir, DbId, adopt};

pub fn run(ctx: &Ctx, args: &AdoptArgs) -> Result<Status> {
    let out = ctx.output(args.output.format);
    let db = DbId::of(ctx.settings.db_path()?);
    let old = DbId::of(&args.old_path);
    if old == db || old.owns(&db.canonical().to_string_lossy()) {
        return Err(Error::usage(format!(
            "{} is the configured database itself; give the path it had before it moved",
            show(&args.old_path)
        )));
    }
    // A database still at the old path owns its backups: claiming them would
    // let this one restore or prune another database's restore points.
    if args.old_path.exists() && !args.force {
        return Err(Error::failed(format!(
            "{} still exists, so its backups are its own; adopt only the backups of a database that moved (--force to claim them anyway)",
            show(&args.old_path)
        )));
    }
    let new_source = db.canonical().to_string_lossy().into_owned();
    let dirs = std::iter::once(ctx.settings.backup_dir.clone())
        .chain(ctx.settings.mirror_dirs.iter().cloned())
        .filter(|d| d.is_dir());
    let mut adopted = Vec::new();
    for dir in dirs {
        for name in adopt_in(ctx, &dir, &old, &args.old_path, &new_source, args.dry_run)? {
            adopted.push(json!({"dir": dir, "name": name}));
            let verb = if args.dry_run {
                "would adopt"
            } else {
                "adopted"
            };
            out.line(format!("{verb} {}", dir.join(&name).display()));
        }
    }
    out.line(format!(
        "{} backup{} of {} {} backups of {new_source}",
        adopted.len(),
        if adopted.len() == 1 { "" } else { "s" },
        show(&args.old_path),
        if args.dry_run {
            "would become"
        } else {
            "are now"
        },
    ));
    out.document(&json!({
        "dry_run": args.dry_run,
        "from": args.old_path,
        "to": new_source,
        "adopted": adopted,
    }));
    Ok(Status::Success)
}

/// Adopt in one directory, under its lock; returns the names.
fn adopt_in(
    ctx: &Ctx,
    dir: &Path,
    old: &DbId,
    old_path: &Path,
    new_source: &str,
    dry_run: bool,
) -> Result<Vec<String>> {
    let backups = BackupDir::new(dir);
    let _lock = if dry_run {
        None
    } else {
        DirLock::acquire(dir, &ctx.job, Wait::Upto(ctx.settings.lock_timeout))?
    };
    let mut names = Vec::new();
    for entry in backups.entries()? {
        let Ok(meta) = &entry.meta else { continue };
        if !(old.owns(&meta.source) || Path::new(&meta.source) == old_path) {
            continue;
        }
        if !dry_run {
            adopt::rewrite_source(&backups, &entry, new_source)?;
            tracing::info!("adopted {} from {}", entry.file_name, meta.source);
        }
        names.push(entry.file_name);
    }
    Ok(names)
}
