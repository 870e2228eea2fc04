//! `dbbackup adopt OLD_PATH [--dry-run] [--force]`: after a project moved, give
//! the backups recorded under the database's old path to the configured
//! database, in the backup directory and every mirror. From then on they are its
//! restore points for `restore latest`, retention and `check`.

use std::path::{Component, Path, PathBuf};

use serde_json::json;

use super::Ctx;
use crate::cli::AdoptArgs;
use crate::error::{Error, Result, show};
use crate::exit_code::ExitCode;
use crate::lock::DirLock;
use crate::store::{BackupDir, DbId, adopt};

pub(crate) fn run(ctx: &Ctx, args: &AdoptArgs) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    let db = DbId::of(ctx.settings.db_path()?);
    // The old path usually no longer exists, so it cannot be canonicalized: a
    // relative one (`../../old/proj/results.db`) is resolved by its components,
    // as the shell would, to match the absolute sources backups record.
    let old_path = lexical_absolute(&args.old_path)?;
    let old = DbId::of(&old_path);
    if old == db || old.owns(&db.canonical().to_string_lossy()) {
        return Err(Error::usage(format!(
            "{} is the configured database itself; give the path it had before it moved",
            show(&args.old_path)
        )));
    }
    // A database still at the old path owns its backups: claiming them would
    // let this one restore or prune another database's restore points.
    if old_path.exists() && !args.force {
        return Err(Error::failed(format!(
            "{} still exists, so its backups are its own; adopt only the backups of a database that moved (--force to claim them anyway)",
            show(&old_path)
        )));
    }
    if !args.force {
        refuse_side_by_side(ctx, &db, &old, &old_path)?;
    }
    let new_source = db.canonical().to_string_lossy().into_owned();
    let dirs = std::iter::once(ctx.settings.backup_dir.clone())
        .chain(ctx.settings.mirror_dirs.iter().cloned())
        .filter(|d| d.is_dir());
    let dirs: Vec<_> = dirs.collect();
    let mut adopted = Vec::new();
    for dir in &dirs {
        for name in adopt_in(ctx, dir, &old, &old_path, &new_source, args.dry_run)? {
            adopted.push(json!({"dir": dir, "name": name}));
            let verb = if args.dry_run {
                "would adopt"
            } else {
                "adopted"
            };
            out.line(format!("{verb} {}", dir.join(&name).display()));
        }
    }
    if adopted.is_empty() {
        let searched: Vec<String> = dirs.iter().map(|d| show(d)).collect();
        return Err(Error::failed(format!(
            "no backups are recorded under {} in {}; nothing to adopt (`dbbackup list` shows each backup's database)",
            show(&old_path),
            if searched.is_empty() {
                show(&ctx.settings.backup_dir)
            } else {
                searched.join(", ")
            }
        )));
    }
    let one = adopted.len() == 1;
    out.line(format!(
        "{} backup{} of {} {} {new_source}",
        adopted.len(),
        if one { "" } else { "s" },
        show(&old_path),
        match (args.dry_run, one) {
            (true, true) => "would become a backup of",
            (true, false) => "would become backups of",
            (false, true) => "is now a backup of",
            (false, false) => "are now backups of",
        },
    ));
    out.document(&json!({
        "dry_run": args.dry_run,
        "from": old_path,
        "to": new_source,
        "adopted": adopted,
    }));
    Ok(ExitCode::Success)
}

/// Both databases backed up side by side: two databases, one of them lost
/// (a case for `restore`), not one that moved.
fn refuse_side_by_side(ctx: &Ctx, db: &DbId, old: &DbId, old_path: &Path) -> Result<()> {
    if !ctx.settings.backup_dir.is_dir() {
        return Ok(());
    }
    let entries = BackupDir::new(&ctx.settings.backup_dir).entries()?;
    let is_old = |source: &str| old.owns(source) || Path::new(source) == old_path;
    match adopt::side_by_side(&entries, db, is_old) {
        Some((ours, theirs)) => Err(Error::failed(format!(
            "{} was another database, backed up side by side with this one ({ours} of this database is older than {theirs} of it), not this one before a move; restore it with `dbbackup --db-path {} restore latest`, or --force to adopt its backups anyway",
            show(old_path),
            show(old_path)
        ))),
        None => Ok(()),
    }
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
        Some(DirLock::acquire(dir, &ctx.job, ctx.settings.lock_timeout)?)
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

/// `path` made absolute against the current directory with `.` and `..` resolved
/// by name (the path need not exist; symlinks are not followed).
fn lexical_absolute(path: &Path) -> Result<PathBuf> {
    let base = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().map_err(|e| Error::Io {
            context: format!(
                "cannot resolve {} against the current directory",
                show(path)
            ),
            source: e,
        })?
    };
    let mut resolved = base;
    for component in path.components() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::Normal(part) => resolved.push(part),
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_by_name_against_the_current_directory() {
        let cwd = std::env::current_dir().unwrap();
        let up2 = cwd.parent().and_then(Path::parent).unwrap();
        assert_eq!(
            lexical_absolute(Path::new("../../old/./proj/results.db")).unwrap(),
            up2.join("old/proj/results.db")
        );
        assert_eq!(
            lexical_absolute(Path::new("/a/b/../c/./d.db")).unwrap(),
            Path::new("/a/c/d.db")
        );
        assert_eq!(
            lexical_absolute(Path::new("/../x.db")).unwrap(),
            Path::new("/x.db")
        );
    }
}
