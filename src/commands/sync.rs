//! `dbbackup sync`: glue over [`crate::remote::sync`]; the outcome is recorded
//! for `check` (`remote::state`) and the summary log.

use serde_json::json;

use super::Ctx;
use crate::cli::FormatArgs;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::remote::sync::Synced;
use crate::units::human_bytes;

pub(crate) fn run(ctx: &Ctx, args: &FormatArgs) -> Result<ExitCode> {
    let out = ctx.output(args.format);
    let remote = crate::remote::configured(&ctx.settings)?;
    let url = remote.url().to_string();
    let result = ctx
        .backup_set(&ctx.backup_dir())
        .and_then(|set| crate::remote::sync::sync(&remote, &set, ctx.settings.remote_max_backups));
    if let Some(db) = ctx.db_id() {
        let detail = match &result {
            Ok(done) => format!(
                "{} uploaded, {} already there",
                done.uploaded.len(),
                done.present
            ),
            Err(_) => String::new(),
        };
        crate::remote::state::record(
            &ctx.settings,
            &db,
            &ctx.job,
            "sync",
            &url,
            result
                .as_ref()
                .map(|d| d.on_remote.clone())
                .map_err(ToString::to_string),
            &detail,
        );
    }
    let done: Synced = result?;
    for (name, size) in &done.uploaded {
        out.line(format!("uploaded {name} ({}) to {url}", human_bytes(*size)));
    }
    for (name, why) in &done.passed_over {
        tracing::warn!("not uploaded: {name}: {why}");
    }
    for name in &done.deleted {
        out.line(format!("deleted {name} from {url} (remote_max_backups)"));
    }
    out.line(format!(
        "{url}: {} uploaded, {} already there",
        done.uploaded.len(),
        done.present
    ));
    out.document(&json!({
        "status": "ok",
        "remote": url,
        "uploaded": done.uploaded.iter()
            .map(|(name, size)| json!({"name": name, "size": size}))
            .collect::<Vec<_>>(),
        "already_there": done.present,
        "passed_over": done.passed_over.iter()
            .map(|(name, why)| json!({"name": name, "reason": why}))
            .collect::<Vec<_>>(),
        "deleted": done.deleted,
    }));
    Ok(ExitCode::Success)
}
