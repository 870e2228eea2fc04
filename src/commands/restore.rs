//! `dbbackup restore NAME|latest [--target PATH] [--if-db-missing] [--force]`:
//! glue over the restore engine in [`crate::restore`].

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::Ctx;
use crate::cli::RestoreArgs;
use crate::error::{Error, Result, show};
use crate::exit_code::ExitCode;
use crate::restore::{self, Outcome, Request};
use crate::store::BackupDir;

/// Over the live database (not a copy beside it, under any name of it): not
/// under a running job, whichever directory the backup comes from.
fn refuse_under_running_job(ctx: &Ctx, args: &RestoreArgs) -> Result<()> {
    if !args.force
        && !args.if_db_missing
        && let Some(db) = ctx.db_id()
        && args.target.as_deref().is_none_or(|t| db.is_file(t))
    {
        let configured = ctx
            .settings
            .configured_backup_dir
            .as_deref()
            .map(BackupDir::new);
        crate::slurm::writers::refuse_under_running_job(
            &ctx.backup_dir(),
            configured.as_ref(),
            &db,
            &ctx.job,
        )?;
    }
    Ok(())
}

pub(crate) fn run(ctx: &Ctx, args: &RestoreArgs) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    // The configured database may be a link into scratch (`results.db ->
    // /scratch/...`), as backup accepts: restore into the file it names, so the
    // temp file, the rename, the guard and the in-use checks all act on the real
    // file and the link stays. An explicit --target that is a link stays refused.
    let (target, link) = target_of(ctx, args)?;
    // A pre-restore copy records the target's path as its source, as a backup does.
    crate::config::refuse_non_utf8_database(&target)?;
    let through = link.map_or(String::new(), |link| {
        format!(" (through the symbolic link {})", show(link))
    });
    // `--before-job`: the restore point is chosen here; the engine restores it.
    let (name, chosen) = match (&args.before_job, &args.name) {
        (Some(job), _) => {
            let (name, why) = before_job(ctx, job, args.force)?;
            (name, Some(why))
        }
        (None, Some(name)) => (name.as_str().to_string(), None),
        (None, None) => {
            return Err(Error::usage(
                "give a backup name, `latest`, or --before-job JOBID",
            ));
        }
    };
    refuse_under_running_job(ctx, args)?;
    refuse_another_projects_database(ctx, args)?;
    if let Some(why) = &chosen {
        out.line(format!("before the job: {name} ({why})"));
        if let Some(note) = args
            .before_job
            .as_deref()
            .and_then(|j| later_jobs_note(ctx, j, &name))
        {
            out.line(note);
        }
    }
    let mut read_back = None;
    let mut staged = staged_from_remote(ctx, args, &name, &target, &mut read_back)?;
    let latest = name == "latest";
    let mut request = Request {
        name: staged.as_ref().map_or(name, |s| s.name.clone()),
        from: staged.as_ref().map(|s| s.dir().to_path_buf()),
        target: target.clone(),
        // The real path: backups record it as their source, and a link into a
        // purged scratch directory no longer leads there.
        db: match link {
            Some(_) => Some(target.clone()),
            None => ctx.settings.db_path.clone(),
        },
        force: args.force,
        named: args.before_job.is_none()
            && matches!(args.name, Some(crate::cli::BackupRef::Named(_))),
        if_db_missing: args.if_db_missing,
        full_check: args.full_check,
    };
    let local = staged.is_none() && !args.if_db_missing;
    let mut result = restore_with(ctx, &request, local);
    if latest && staged.is_none() {
        staged = fall_back(ctx, args, &mut request, &mut result, &mut read_back)?;
    }
    // `latest` from the remote: the newer points passed over there.
    let passed_on_remote = staged
        .as_ref()
        .map(|s| s.passed_over.clone())
        .unwrap_or_default();
    let result =
        result.map_err(|error| with_mirror_hint(ctx, &request, args.target.as_deref(), error));
    // A purged backup directory is made again by the pre-restore copy: the
    // download's read-back, not written before, is recorded there now.
    if let Some((proofs, url)) = &read_back {
        proofs.save(url);
    }
    match result? {
        Outcome::NothingYet => skipped(
            &out,
            &target,
            "no backup yet",
            "no backup yet, nothing to restore".into(),
        ),
        Outcome::Skipped => skipped(
            &out,
            &target,
            "database exists",
            format!("database {} exists; nothing to restore", show(&target)),
        ),
        Outcome::Restored(mut done) => {
            let mut passed_over = passed_on_remote;
            passed_over.append(&mut done.passed_over);
            done.passed_over = passed_over;
            let local = staged.is_none();
            if local && request.name == "latest" {
                done.passed_over.extend(unreadable_newer(ctx, &done.name));
                if let Some(newer) = newer_in_configured(ctx, &done.name) {
                    tracing::warn!("{newer}");
                }
            }
            passed_over_lines(ctx, &done.passed_over, local, args.target.as_deref())
                .for_each(|line| out.line(line));
            restored(&out, &done, link, &through);
            if let Some(warning) = other_database_replaced(ctx, args.target.as_deref(), &done) {
                tracing::warn!("{warning}");
            }
        }
    }
    Ok(ExitCode::Success)
}

/// The file the restore writes, and the configured database's symbolic link
/// when that is what leads there.
fn target_of<'a>(ctx: &'a Ctx, args: &RestoreArgs) -> Result<(PathBuf, Option<&'a Path>)> {
    if let Some(target) = &args.target {
        return Ok((target.clone(), None));
    }
    let db = ctx.settings.db_path()?;
    Ok(match fs::symlink_metadata(db) {
        Ok(meta) if meta.file_type().is_symlink() => (crate::store::link::end_of(db)?, Some(db)),
        _ => (db.to_path_buf(), None),
    })
}

/// `latest` whose local points the cheap tests passed all failed as they
/// were read (now marked damaged): the remote's newest in this same run, as
/// a second run would take it (T31 R22). What was staged, if anything.
fn fall_back(
    ctx: &Ctx,
    args: &RestoreArgs,
    request: &mut Request,
    result: &mut Result<Outcome>,
    read_back: &mut Option<(crate::remote::proof::Proofs, crate::remote::RemoteUrl)>,
) -> Result<Option<crate::remote::fetch::Staged>> {
    let Err(error @ Error::Failed(_)) = &*result else {
        return Ok(None);
    };
    if !no_local_point(ctx).unwrap_or(false) {
        return Ok(None);
    }
    tracing::warn!("{error}");
    let staged = staged_from_remote(ctx, args, "latest", &request.target, read_back)?;
    if let Some(staged) = &staged {
        request.name = staged.name.clone();
        request.from = Some(staged.dir().to_path_buf());
        *result = restore_with(ctx, request, false);
    }
    Ok(staged)
}

/// `--target` naming another project's configured database (a `dbbackup.yaml`
/// near it names it): replaced without `--force`, its undo copy landed in
/// this project's backup directory, where that project never looks (T28 F12).
fn refuse_another_projects_database(ctx: &Ctx, args: &RestoreArgs) -> Result<()> {
    let Some(target) = args.target.as_deref() else {
        return Ok(());
    };
    if args.force || !fs::metadata(target).is_ok_and(|m| m.is_file() && m.len() > 0) {
        return Ok(());
    }
    let ours = ctx.settings.db_path.as_deref().map(crate::store::DbId::of);
    if ours.is_some_and(|db| db.is_file(target)) {
        return Ok(());
    }
    let Some(theirs) = crate::config::project_file_of(target) else {
        return Ok(());
    };
    if ctx
        .settings
        .config_file
        .as_deref()
        .is_some_and(|ours| crate::store::DbId::of(&theirs).is_file(ours))
    {
        return Ok(());
    }
    Err(Error::failed(format!(
        "{} is the database of another project ({} names it); refusing to replace it without --force (its own restore points: `dbbackup --config {} list`); nothing was changed",
        show(target),
        show(&theirs),
        show(&theirs)
    )))
}

/// `--target` is relative to the working directory while the config's paths
/// are relative to the config file: `--config ../other/dbbackup.yaml restore
/// latest --target results.db` replaces this directory's database, and its
/// undo copy goes among the other database's backups. Said by full paths, so
/// the user knows which file changed and where its previous content is (T23 #18).
fn other_database_replaced(
    ctx: &Ctx,
    target: Option<&Path>,
    done: &restore::Restored,
) -> Option<String> {
    let (target, saved, db) = (
        target?,
        done.saved.as_ref()?,
        ctx.settings.db_path.as_deref()?,
    );
    if crate::store::DbId::of(target) == crate::store::DbId::of(db) {
        return None;
    }
    let full = |path: &Path| {
        fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let config = ctx
        .settings
        .config_file
        .as_deref()
        .map_or(String::new(), |file| {
            format!(" (config {})", show(&full(file)))
        });
    Some(format!(
        "--target {} replaced {}, which is not the configured database {}{config}: its previous content is in {} as {saved}, listed there as another database's",
        show(target),
        show(&full(target)),
        show(&full(db)),
        show(&full(ctx.backup_dir().path())),
    ))
}

/// `restore latest` through another directory than the configured one (a
/// mirror that missed a copy): the configured directory's newest restore
/// point, when it is newer than `restored` and holds other content (T23 #4).
fn newer_in_configured(ctx: &Ctx, restored: &str) -> Option<String> {
    let configured = BackupDir::new(ctx.settings.other_configured_dir()?);
    let here = ctx.backup_dir();
    let db = ctx.db_id()?;
    let restored = here.by_name(restored).ok()?;
    let restored = restored.meta.as_ref().ok()?;
    let newest = configured
        .set(&db)
        .ok()?
        .restore_points
        .into_iter()
        .next()?;
    let meta = newest.meta.as_ref().ok()?;
    (meta.created > restored.created && meta.checksum != restored.checksum).then(|| {
        format!(
            "{} holds a newer restore point of this database than {}: {} ({}); `dbbackup restore {}` without --backup-dir restores it",
            show(configured.path()),
            show(here.path()),
            newest.file_name,
            meta.created,
            newest.file_name
        )
    })
}

/// `--before-job JOB`: the restore point from before it, and how it was
/// chosen; refused while the job runs (unless `force`).
fn before_job(ctx: &Ctx, job: &str, force: bool) -> Result<(String, String)> {
    let given = job;
    let job = crate::slurm::undo::JobRef::parse_in(given, &ctx.backup_dir())?;
    if job.task.is_some() && !given.contains('_') {
        tracing::info!("job {given} is task {} of array {}", job.id(), job.job);
    }
    let db = ctx
        .db_id()
        .ok_or_else(|| Error::usage("--before-job needs the database (--db-path)"))?;
    if !force {
        crate::slurm::undo::refuse_while_running(&ctx.backup_dir(), &db, &job)?;
    }
    let dir = ctx.backup_dir();
    crate::slurm::undo::point_before(&dir, &db, &job, force).map_err(|error| {
        // The recorded point gone here but held by a mirror: that, before
        // `--force` onto an older point.
        let Error::Failed(message) = &error else {
            return error;
        };
        let Some(name) = crate::slurm::undo::recorded_pre_job(&dir, &db, &job.job) else {
            return error;
        };
        let mirror = ctx.settings.mirror_dirs.iter().find(|m| {
            crate::store::BackupDir::new(m)
                .set(&db)
                .is_ok_and(|set| set.restore_points.iter().any(|e| e.file_name == name))
        });
        match mirror {
            Some(mirror) => Error::failed(format!(
                "{message}; mirror {} holds {name}, the state at the job's start: `dbbackup --backup-dir {} restore {name}`",
                show(mirror),
                show(mirror)
            )),
            None => error,
        }
    })
}

/// The later jobs that restoring `point` (from before `job`) undoes too.
fn later_jobs_note(ctx: &Ctx, job: &str, point: &str) -> Option<String> {
    let job = crate::slurm::undo::JobRef::parse_in(job, &ctx.backup_dir()).ok()?;
    let later = crate::slurm::undo::later_jobs(&ctx.backup_dir(), &ctx.db_id()?, &job, point);
    if later.is_empty() {
        return None;
    }
    let jobs: Vec<String> = later
        .iter()
        .map(|(job, newest)| format!("job {job} (newest {newest})"))
        .collect();
    Some(format!(
        "note: this also undoes what came after that point: {}; their restore points stay (`dbbackup list`)",
        jobs.join(", ")
    ))
}

/// Files newer than the restored point whose header cannot be read (`check`'s
/// `unreadable`): whose backup each was cannot be told, so `latest` could not
/// weigh it, but passing it over in silence hid that it may have been newer.
fn unreadable_newer(ctx: &Ctx, restored: &str) -> Vec<(String, String)> {
    let Ok(set) = ctx.backup_set(&ctx.backup_dir()) else {
        return Vec::new();
    };
    let Some(good) = set.restore_points.iter().find(|e| e.file_name == restored) else {
        return Vec::new();
    };
    crate::health::unreadable_passed_over(&set, good)
}

/// `passed over NAME: WHY` for each, and (`local`: from the backup
/// directory) where a newer intact copy is.
fn passed_over_lines(
    ctx: &Ctx,
    passed_over: &[(String, String)],
    local: bool,
    target: Option<&Path>,
) -> impl Iterator<Item = String> {
    let notes = local
        .then(|| {
            let remote = crate::restore::newer_copy::on_remote(&ctx.settings, passed_over, target);
            let mirror = ctx.db_id().and_then(|db| {
                crate::restore::newer_copy::in_mirror(&ctx.settings, &db, passed_over, target)
            });
            remote.into_iter().chain(mirror)
        })
        .into_iter()
        .flatten();
    passed_over
        .iter()
        .map(|(name, why)| format!("passed over {name}: {why}"))
        .chain(notes)
        .collect::<Vec<_>>()
        .into_iter()
}

/// The restore point downloaded into a staging directory beside `target`: from
/// the remote when asked, or for `latest` when the backup directory holds no
/// intact restore point (a purged scratch) and a remote is set. `None`: restore
/// from the backup directory.
fn staged_from_remote(
    ctx: &Ctx,
    args: &RestoreArgs,
    name: &str,
    target: &Path,
    read_back: &mut Option<(crate::remote::proof::Proofs, crate::remote::RemoteUrl)>,
) -> Result<Option<crate::remote::fetch::Staged>> {
    if !(args.from_remote || (name == "latest" && no_local_point(ctx)?)) {
        return Ok(None);
    }
    // A database already there: nothing to fetch, from the remote as from
    // the fall-back (the engine says so, as on the local path).
    if args.if_db_missing && fs::metadata(target).is_ok_and(|m| m.len() > 0) {
        return Ok(None);
    }
    let out = ctx.output(args.output.format);
    let remote = crate::remote::configured(&ctx.settings)?;
    let db = ctx.db_id();
    if !args.from_remote {
        // A mirror with restore points: the lost directory is chosen
        // deliberately, as without a remote; the remote may be older than the
        // mirror (backups since the last sync).
        if let Some(db) = &db
            && let Some(hint) = crate::store::latest::mirror_instead(
                &ctx.backup_dir(),
                &ctx.settings.mirror_dirs,
                db,
                args.target.as_deref(),
                usable,
            )
        {
            return Err(Error::failed(format!(
                "no intact restore point in {}; {hint}; or take the newest on {} on purpose (it may be older: backups since the last sync are not there): `dbbackup restore latest --from-remote`",
                show(&ctx.settings.backup_dir),
                remote.url()
            )));
        }
    }
    // An unreachable store fails here; a prefix listed without a point of
    // the database is a new project's: `--if-db-missing` then finds "no
    // backup yet" in the backup directory, as without a remote.
    let points = crate::remote::mend::points_here(&remote, &ctx.backup_dir(), db.as_ref())?;
    if !args.from_remote {
        if args.if_db_missing
            && db
                .as_ref()
                .is_some_and(|db| crate::remote::fetch::holds_none_of(&remote, &points, db))
        {
            return Ok(None);
        }
        tracing::warn!(
            "no intact restore point in {}: restoring the newest from {}",
            show(&ctx.settings.backup_dir),
            remote.url()
        );
    }
    if args.from_remote && !args.force {
        refuse_other_database(ctx, &remote, &points, name, target)?;
    }
    let beside = crate::store::atomic::parent_or_dot(target);
    let mut proofs = crate::remote::proof::Proofs::load(&ctx.settings.backup_dir, remote.url());
    if let Some(db) = &db {
        let dir = &ctx.settings.backup_dir;
        crate::remote::newest::note_if_unlisted(dir, db, remote.url(), &points, &mut proofs);
    }
    let unsound = crate::remote::fetch::unsound(&ctx.settings.backup_dir, &proofs);
    let staged = crate::remote::fetch::stage(
        &remote,
        (&points, &unsound),
        name,
        db.as_ref(),
        beside,
        &mut proofs,
    );
    proofs.save(remote.url());
    *read_back = Some((proofs, remote.url().clone()));
    let staged = staged?;
    out.line(format!("downloaded {} from {}", staged.name, remote.url()));
    if !args.from_remote
        && let Some(note) =
            newer_local_diffs(ctx, &staged.name, remote.url(), args.target.as_deref())
    {
        tracing::warn!("{note}");
        out.line(format!("note: {note}"));
    }
    if name == "latest" {
        let so = format!("`restore latest` took {}", staged.name);
        crate::remote::unrecorded::warn_newer(&remote, Some(&staged.name), &so);
        if let Some(db) = &db
            && let Some(gone) = gone_newer(ctx, db, remote.url(), &points, &staged.name)
        {
            tracing::warn!("{gone}");
        }
    }
    Ok(Some(staged))
}

/// The points newer than `taken` that the last sync recorded on `url` and
/// the listing no longer shows: gone from the store (a lifecycle rule,
/// another tool), so `latest` there is older than what was backed up; said,
/// or a user resumes work on older data unknowing (T31 R8).
fn gone_newer(
    ctx: &Ctx,
    db: &crate::store::DbId,
    url: &crate::remote::RemoteUrl,
    points: &[crate::remote::RemotePoint],
    taken: &str,
) -> Option<String> {
    let record = crate::remote::state::read_for(&ctx.settings.backup_dir, db, &url.to_string())?;
    let order = |name: &str| crate::store::BackupName::parse(name).map(|n| n.order_key());
    let gone: Vec<&str> = crate::remote::newest::unlisted(&record, points)
        .filter(|name| order(name) > order(taken))
        .map(String::as_str)
        .collect();
    (!gone.is_empty()).then(|| {
        format!(
            "{} newer than {taken}, on {url} at the last sync ({}), {} gone from the store: the restored data is older than what was backed up",
            gone.join(", "),
            record.time,
            if gone.len() == 1 { "is" } else { "are" }
        )
    })
}

/// The engine's restore. `local`: from the backup directory only (no remote
/// download, not `--if-db-missing`): one that is not there is said so (as the
/// engine would), without making it and its lock file for a later `list` to
/// read as "no backups".
fn restore_with(ctx: &Ctx, request: &Request, local: bool) -> Result<Outcome> {
    if local && !ctx.settings.backup_dir.exists() {
        return Err(Error::failed(crate::store::latest::missing_dir(
            &ctx.backup_dir(),
            ctx.db_id().as_ref(),
        )));
    }
    restore::restore(&ctx.settings, &ctx.job, &ctx.backup_dir(), request)
}

/// The fall-back took `taken` from the remote while the backup directory
/// holds newer diffs whose base is gone from it (a purge by age takes the
/// oldest file: the base): their data is newer than what was restored. Said,
/// with how to restore the newest of them.
fn newer_local_diffs(
    ctx: &Ctx,
    taken: &str,
    url: &crate::remote::RemoteUrl,
    target: Option<&Path>,
) -> Option<String> {
    let target = target.map_or_else(String::new, |t| format!(" --target {}", show(t)));
    let taken = crate::store::BackupName::parse(taken)?;
    let db = ctx.db_id()?;
    let points = ctx.backup_dir().restore_points(&db, |_| true).ok()?;
    let newer: Vec<_> = points
        .iter()
        .filter(|e| e.name.diff && e.name.order_key() > taken.order_key())
        .collect();
    let newest = newer.first()?;
    let base = newest.meta.as_ref().ok()?.diff.as_ref()?.base.clone();
    let dir = show(&ctx.settings.backup_dir);
    Some(format!(
        "{dir} holds {} newer diff{} (newest {}) whose base {base} is gone from it: their data is newer than what was restored; to restore {}, copy {base} back from {url} (e.g. `aws s3 cp {url}/{base} {dir}/`) and run `dbbackup restore latest{target}` again",
        newer.len(),
        if newer.len() == 1 { "" } else { "s" },
        newest.file_name,
        newest.file_name
    ))
}

/// A point asked for by name that the remote's record says is another
/// database's, restored into another file than the database: refused before
/// the download, naming whose it is (the name may be this database's too, in
/// the backup directory). Over the database the engine refuses it, as a
/// local backup of another database.
fn refuse_other_database(
    ctx: &Ctx,
    remote: &crate::remote::Remote,
    points: &[crate::remote::RemotePoint],
    name: &str,
    target: &Path,
) -> Result<()> {
    let Some(db) = ctx.db_id() else {
        return Ok(());
    };
    if name == "latest" || crate::store::DbId::of(target) == db {
        return Ok(());
    }
    let Some(source) = crate::remote::whose::other_database(points, name, &db) else {
        return Ok(());
    };
    let said =
        crate::remote::whose::said(remote.url(), name, source, &db, &ctx.settings.backup_dir);
    Err(Error::failed(format!(
        "backup {said}; refusing to restore it into {} (--force if you mean it)",
        show(target)
    )))
}

/// A remote is set and the backup directory holds no restore point of the
/// database that passes the cheap tests.
fn no_local_point(ctx: &Ctx) -> Result<bool> {
    let (Some(_), Some(db)) = (&ctx.settings.remote, ctx.db_id()) else {
        return Ok(false);
    };
    Ok(ctx.backup_dir().restore_points(&db, usable)?.is_empty())
}

/// A local restore point `latest` may take without the remote: one that
/// passes the cheap tests.
fn usable(entry: &crate::store::Entry) -> bool {
    crate::diff::restore_problem(entry).is_none()
}

/// Say what was restored, and from which point.
fn restored(
    out: &crate::output::Output,
    done: &restore::Restored,
    link: Option<&Path>,
    through: &str,
) {
    match &done.saved {
        Some(saved) if done.saved_before => out.line(format!(
            "restored {} into {}{through} (its previous content is already in {saved}: no pre-restore copy needed)",
            done.name,
            show(&done.target)
        )),
        Some(saved) => out.line(format!(
            "restored {} into {}{through} (previous content saved as {saved})",
            done.name,
            show(&done.target)
        )),
        None => out.line(format!(
            "restored {} into {}{through}",
            done.name,
            show(&done.target)
        )),
    }
    out.document(&json!({
        "status": "ok",
        "name": done.name,
        "target": done.target,
        "through_link": link,
        // The backup holding the replaced content: a copy made now, or
        // an existing backup of the same content (kept for compatibility).
        "pre_restore_backup": done.saved,
        // Only a pre-restore copy this restore made (the undo copy).
        "pre_restore_copy": done.saved.as_ref().filter(|_| !done.saved_before),
        "passed_over": super::report::passed_over_json(&done.passed_over),
    }));
}

/// `latest` found no restore point in the backup directory (lost, say): the
/// mirrors that hold some are named, with how to restore from one (into the
/// `--target` given, if any).
fn with_mirror_hint(ctx: &Ctx, request: &Request, target: Option<&Path>, error: Error) -> Error {
    let Error::Failed(message) = &error else {
        return error;
    };
    let Some(db) = ctx.db_id() else {
        return error;
    };
    if request.from.is_some() {
        return error;
    }
    if request.name != "latest" {
        return with_remote_copy(ctx, &request.name, target, error);
    }
    let mirrors = &ctx.settings.mirror_dirs;
    match crate::store::latest::mirror_instead(&ctx.backup_dir(), mirrors, &db, target, |_| true) {
        Some(hint) => Error::failed(format!("{message}; {hint}")),
        None => with_remote_fall_back(ctx, &db, target, error),
    }
}

/// `restore latest` that found its only local points damaged as it read them
/// (the cheap tests had passed them, so it did not fall back to the remote
/// first): the remote is named, when one is configured and the backup
/// directory now holds no point known to be intact.
fn with_remote_fall_back(
    ctx: &Ctx,
    db: &crate::store::DbId,
    target: Option<&Path>,
    error: Error,
) -> Error {
    let Error::Failed(message) = &error else {
        return error;
    };
    let Some(url) = ctx.settings.remote.as_deref() else {
        return error;
    };
    let intact = ctx
        .backup_dir()
        .newest_restore_point(db, |e| crate::diff::restore_problem(e).is_none());
    if !matches!(intact, Ok(None)) {
        return error;
    }
    let target = target.map_or_else(String::new, |t| format!(" --target {}", show(t)));
    Error::failed(format!(
        "{message}; no intact restore point is left in {}: restore the newest from {url} with `dbbackup restore latest --from-remote{target}`",
        show(&ctx.settings.backup_dir)
    ))
}

/// A backup `name` the backup directory does not hold (pruned there) that
/// the last sync proved on the remote (its proofs: no network): restored
/// from there with `--from-remote`, said instead of only a local name.
fn with_remote_copy(ctx: &Ctx, name: &str, target: Option<&Path>, error: Error) -> Error {
    let Error::Failed(message) = &error else {
        return error;
    };
    let Some(url) =
        (ctx.settings.remote.as_deref()).and_then(|url| crate::remote::RemoteUrl::parse(url).ok())
    else {
        return error;
    };
    if ctx.backup_dir().path().join(name).exists() {
        return error;
    }
    let proofs = crate::remote::proof::Proofs::load(&ctx.settings.backup_dir, &url);
    if !proofs.proved().any(|(proved, _)| proved == name) {
        return error;
    }
    let target = target.map_or_else(String::new, |t| format!(" --target {}", show(t)));
    Error::failed(format!(
        "{message}; {name} is on {url} (proved there by an earlier sync or read): `dbbackup restore {name} --from-remote{target}`"
    ))
}

/// `--if-db-missing` found nothing to do: `line` for people, `reason` in JSON.
fn skipped(out: &crate::output::Output, target: &std::path::Path, reason: &str, line: String) {
    out.line(line);
    out.document(&json!({"status": "skipped", "reason": reason, "target": target}));
}
