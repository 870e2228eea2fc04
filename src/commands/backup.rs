//! `dbbackup backup [--force]`

use serde_json::json;

use super::Ctx;
use crate::cli::BackupArgs;
use crate::create::{self, Created, Outcome};
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::output::Output;
use crate::store::Kind;
use crate::units::human_bytes;

pub fn run(ctx: &Ctx, args: &BackupArgs) -> Result<ExitCode> {
    let db = ctx.settings.db_path()?;
    let dir = ctx.backup_dir();
    let lock = ctx.lock(&dir)?;
    let outcome = create::run(
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

/// Print a backup outcome the same way for every command that makes one.
pub fn report(out: &Output, outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::Unchanged(newest) => {
            out.line(format!("skipped: database unchanged since {}", newest));
            out.document(&json!({"status": "skipped", "reason": "unchanged", "newest": newest}));
            ExitCode::Success
        }
        Outcome::Created(created) => {
            out.line(describe(created));
            out.document(&json!({
                "status": if created.is_good() { "ok" } else { "failed" },
                "name": created.entry.file_name,
                "path": created.entry.path,
                "size": created.entry.size,
                "db_size": created.meta.db_size,
                "checksum": created.meta.checksum,
                "kind": created.meta.kind,
                "check": created.meta.check,
                "check_detail": created.meta.check_detail,
                "seconds": created.duration.as_secs_f64(),
                "pruned": created.pruned,
                "mirrors": created.mirrors.iter().map(|m| json!({
                    "dir": m.dir,
                    "ok": m.result.is_ok(),
                    "error": m.result.as_ref().err(),
                })).collect::<Vec<_>>(),
            }));
            for failed in created.mirrors.iter().filter(|m| m.result.is_err()) {
                let why = failed.result.as_ref().err().map_or("", String::as_str);
                out.line(format!("MIRROR FAILED: {}: {why}", failed.dir.display()));
            }
            if created.is_complete() {
                ExitCode::Success
            } else {
                ExitCode::Failure
            }
        }
    }
}

fn describe(created: &Created) -> String {
    let saved = saved_text(created.meta.db_size, created.entry.size)
        .map_or_else(|| "nothing saved".to_string(), |p| format!("{p} saved"));
    let check = match &created.meta.check_detail {
        None => "quick_check ok".to_string(),
        Some(detail) => format!(
            "INTEGRITY CHECK FAILED: quick_check: {}",
            crate::sqlite_file::one_line(detail)
        ),
    };
    let mut text = format!(
        "created {} ({} -> {}, {saved}, {check}, {:.2} s)",
        created.entry.file_name,
        human_bytes(created.meta.db_size),
        human_bytes(created.entry.size),
        created.duration.as_secs_f64()
    );
    if !created.pruned.is_empty() {
        text.push_str(&format!(
            "; retention removed {}",
            created.pruned.join(", ")
        ));
    }
    text
}

pub fn saved_percent(db_size: u64, compressed: u64) -> f64 {
    if db_size == 0 {
        0.0
    } else {
        100.0 * (1.0 - compressed as f64 / db_size as f64)
    }
}

/// The space saved as people read it, rounded once, here, for every command;
/// `None` when compression saved nothing (a tiny database: the metadata header
/// alone is 8 KiB; an empty one: nothing to save).
pub fn saved_text(db_size: u64, compressed: u64) -> Option<String> {
    (compressed < db_size).then(|| format!("{}%", saved_percent(db_size, compressed).round()))
}
