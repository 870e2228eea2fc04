//! `dbbackup auto`: cheap enough to call from every job script. It reads only the
//! directory listing, one backup header and the database's stat before deciding;
//! when another process is making a backup it returns at once.

use serde_json::json;

use super::Ctx;
use super::report::report;
use crate::cli::FormatArgs;
use crate::create::{self, Attempt, Filled, Skip};
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::output::Output;
use crate::store::Kind;

pub(crate) fn run(ctx: &Ctx, args: &FormatArgs) -> Result<ExitCode> {
    let out = ctx.output(args.format);
    let db = ctx.settings.db_path()?;
    let attempt = create::if_due(&ctx.settings, &ctx.job, &ctx.backup_dir(), db, Kind::Auto);
    let attempt = create::recorded(&ctx.settings, &ctx.job, Kind::Auto, attempt)?;
    Ok(match attempt {
        Attempt::Skipped { reason, filled } => skip(&out, &reason, filled.as_ref()),
        Attempt::Made(outcome) => {
            let code = report(&out, &outcome);
            // Only after a backup was made: a skipping `auto` stays cheap.
            if let Some(line) = crate::remote::upload_inline(&ctx.settings, &ctx.job) {
                out.line(line);
            }
            super::report::stopped_or(code)
        }
    })
}

fn skip(out: &Output, reason: &Skip, filled: Option<&Filled>) -> ExitCode {
    tracing::debug!("auto: {reason}");
    out.line(format!("skipped: {reason}"));
    // The code `backup` gives for the same case, the words beside it.
    let mut document =
        json!({"status": "skipped", "reason": reason.code(), "detail": reason.to_string()});
    if let (Some(newest), Some(fields)) = (reason.newest(), document.as_object_mut()) {
        fields.insert("newest".into(), json!(newest));
    }
    super::report::report_filled(out, filled, &mut document)
}
