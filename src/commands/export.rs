//! `dbbackup export NAME|latest --out FILE.db.gz`: glue over [`crate::export`].

use serde_json::json;

use super::Ctx;
use crate::cli::{BackupRef, ExportArgs};
use crate::error::{Result, show};
use crate::exit_code::ExitCode;
use crate::remote::proof::Proofs;
use crate::units::human_bytes;

pub(crate) fn run(ctx: &Ctx, args: &ExportArgs) -> Result<ExitCode> {
    // Printed as text (and JSON) once written: refused before anything is.
    crate::config::refuse_non_utf8("export file", &args.out)?;
    refuse_directory(ctx, args)?;
    refuse_plain_name(args)?;
    let out = ctx.output(args.output.format);
    let beside = crate::store::atomic::parent_or_dot(&args.out);
    let done = if args.from_remote {
        // Downloaded beside the export file, checked, then exported from there;
        // an `--out` already there is refused first, as the local path does.
        crate::export::output_parent(&args.out)?;
        let remote = crate::remote::configured(&ctx.settings)?;
        let db = ctx.db_id();
        let mut proofs = Proofs::load(&ctx.settings.backup_dir, remote.url());
        let points = crate::remote::mend::points_here(&remote, &ctx.backup_dir(), db.as_ref())?;
        refuse_other_database(ctx, &remote, &points, args)?;
        let unsound = crate::remote::fetch::unsound(&ctx.settings.backup_dir, &proofs);
        let staged = crate::remote::fetch::stage(
            &remote,
            (&points, &unsound),
            args.name.as_str(),
            db.as_ref(),
            beside,
            &mut proofs,
        );
        proofs.save(remote.url());
        let staged = staged?;
        let dir = crate::store::BackupDir::new(staged.dir());
        let mut done =
            crate::export::export(&ctx.settings, &ctx.job, &dir, &staged.name, None, &args.out)?;
        done.passed_over = staged.passed_over.clone();
        done
    } else {
        local(ctx, args).map_err(|error| with_remote_hint(ctx, args, error))?
    };
    for (name, why) in &done.passed_over {
        out.line(format!("passed over {name}: {why}"));
    }
    out.line(format!(
        "exported {} to {} ({} -> {}, a plain gzip of the database)",
        done.name,
        show(&done.out),
        human_bytes(done.db_size),
        human_bytes(done.size)
    ));
    out.document(&json!({
        "status": "ok",
        "name": done.name,
        "out": done.out,
        "size": done.size,
        "db_size": done.db_size,
        "checksum": done.checksum,
        "passed_over": super::report::passed_over_json(&done.passed_over),
    }));
    Ok(ExitCode::Success)
}

/// The export from the backup directory.
fn local(ctx: &Ctx, args: &ExportArgs) -> Result<crate::export::Exported> {
    let dir = ctx.backup_dir();
    let set = match args.name {
        BackupRef::Latest => Some(crate::restored::latest_points(
            &dir,
            ctx.db_id().as_ref(),
            None,
        )?),
        BackupRef::Named(_) => None,
    };
    let name = args.name.as_str();
    crate::export::export(&ctx.settings, &ctx.job, &dir, name, set, &args.out)
}

/// `latest` found no intact restore point in the backup directory while a
/// remote is set: the remote may hold one (`restore latest` takes it by
/// itself; export only when asked, as it was not).
fn with_remote_hint(
    ctx: &Ctx,
    args: &ExportArgs,
    error: crate::error::Error,
) -> crate::error::Error {
    let (crate::error::Error::Failed(message), BackupRef::Latest) = (&error, &args.name) else {
        return error;
    };
    let (Some(remote), Some(db)) = (&ctx.settings.remote, ctx.db_id()) else {
        return error;
    };
    let usable = |e: &crate::store::Entry| crate::diff::restore_problem(e).is_none();
    if !ctx
        .backup_dir()
        .restore_points(&db, usable)
        .is_ok_and(|points| points.is_empty())
    {
        return error;
    }
    crate::error::Error::failed(format!(
        "{message}; {remote} may hold intact ones: `dbbackup export latest --from-remote --out {}`",
        show(&args.out)
    ))
}

/// A point asked for by name that the remote's record says is another
/// database's: refused before the download, naming whose it is (the name may
/// be this database's too, in the backup directory: same second, one prefix).
fn refuse_other_database(
    ctx: &Ctx,
    remote: &crate::remote::Remote,
    points: &[crate::remote::RemotePoint],
    args: &ExportArgs,
) -> Result<()> {
    let (BackupRef::Named(name), Some(db)) = (&args.name, ctx.db_id()) else {
        return Ok(());
    };
    let Some(source) = crate::remote::whose::other_database(points, name, &db) else {
        return Ok(());
    };
    let said =
        crate::remote::whose::said(remote.url(), name, source, &db, &ctx.settings.backup_dir);
    Err(crate::error::Error::failed(format!(
        "backup {said}; refusing to export it (--db-path {source} if you mean that database's backup)"
    )))
}

/// An existing directory as `--out`: a file name inside it is what was meant,
/// and `restore --target` (the plain-name hint) refuses a directory too.
fn refuse_directory(ctx: &Ctx, args: &ExportArgs) -> Result<()> {
    if !args.out.is_dir() {
        return Ok(());
    }
    // Named after the database, as the file would be in a listing of backups.
    let name = ctx
        .settings
        .db_path
        .as_deref()
        .and_then(std::path::Path::file_name)
        .map_or_else(|| "export.db".into(), |n| n.to_string_lossy().into_owned());
    Err(crate::error::Error::usage(format!(
        "{} is a directory: give a file name ending in .gz, e.g. --out {}",
        show(&args.out),
        show(&args.out.join(format!("{name}.gz"))),
    )))
}

/// The export is gzip: a name without `.gz` (`plain.db`) would hold bytes
/// `sqlite3` cannot open. Refused before anything is read or written, pointing
/// at what writes a plain database. (`-` is the engine's to refuse.)
fn refuse_plain_name(args: &ExportArgs) -> Result<()> {
    // Not a name `restore --target` would take either (T27 F-G).
    let out = show(&args.out);
    if args.out.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(crate::error::Error::usage(format!(
            "--out {out} names a directory, and there is none: give a file name ending in .gz in an existing directory"
        )));
    }
    if std::fs::metadata(&args.out).is_ok_and(|meta| !meta.is_file() && !meta.is_dir()) {
        return Err(crate::error::Error::usage(format!(
            "--out {out} is not a regular file: export writes a new file (--out copy.db.gz; then `zcat copy.db.gz` gives its database)"
        )));
    }
    let gz = args
        .out
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz"));
    if gz || args.out.as_os_str() == "-" {
        return Ok(());
    }
    let from_remote = if args.from_remote {
        " --from-remote"
    } else {
        ""
    };
    Err(crate::error::Error::usage(format!(
        "--out {}: export writes a gzip file, so its name must end in .gz; for a plain SQLite database use `dbbackup restore {}{from_remote} --target {}`",
        show(&args.out),
        args.name.as_str(),
        show(&args.out)
    )))
}
