//! `dbbackup backup [--force]`

use super::Ctx;
use super::report::report;
use crate::cli::BackupArgs;
use crate::create;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::store::Kind;

pub(crate) fn run(ctx: &Ctx, args: &BackupArgs) -> Result<ExitCode> {
    let db = ctx.settings.db_path()?;
    let dir = ctx.backup_dir();
    let attempt = ctx.lock(&dir).and_then(|lock| {
        create::if_changed(
            &ctx.settings,
            &ctx.job,
            &dir,
            &lock,
            db,
            Kind::Manual,
            args.force,
        )
    });
    let outcome = create::recorded(&ctx.settings, &ctx.job, Kind::Manual, attempt)?;
    let out = ctx.output(args.output.format);
    let code = report(&out, &outcome);
    // After the lock is released: the upload never holds up other backups.
    if let Some(line) = crate::remote::upload_inline(&ctx.settings, &ctx.job) {
        out.line(line);
    }
    Ok(super::report::stopped_or(code))
}
