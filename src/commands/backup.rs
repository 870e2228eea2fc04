//! `dbbackup backup [--force]`

use super::report::report;
use super::{Ctx, Status};
use crate::cli::BackupArgs;
use crate::create;
use crate::error::Result;
use crate::store::Kind;

pub fn run(ctx: &Ctx, args: &BackupArgs) -> Result<Status> {
    let db = ctx.settings.db_path()?;
    let dir = ctx.backup_dir();
    let lock = ctx.lock(&dir)?;
    let outcome = create::if_changed(
        &ctx.settings,
        &ctx.job,
        &dir,
        &lock,
        db,
        Kind::Manual,
        args.force,
    )?;
    Ok(report(&ctx.output(args.output.format), &outcome))
}
