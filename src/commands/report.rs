//! What several commands print the same way: a backup's outcome, the space
//! compression saved, the health metrics, and `check --format nagios`'s UNKNOWN.

use serde_json::json;

use super::Ctx;
use crate::cli::Format;
use crate::create::{Created, Outcome};
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::health::Criterion;
use crate::output::Output;
use crate::units::human_bytes;

/// Print a backup outcome the same way for every command that makes one.
pub(crate) fn report(out: &Output, outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::Unchanged(newest) => {
            out.line(format!("skipped: database unchanged since {newest}"));
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
                "type": created.meta.type_name(),
                "base": created.meta.diff.as_ref().map(|d| &d.base),
                "full_because": created.full_because,
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
    if let Some(diff) = &created.meta.diff {
        text.push_str(&format!("; a diff of {}", diff.base));
    }
    if let Some(why) = &created.full_because {
        text.push_str(&format!("; a full backup, not a diff: {why}"));
    }
    if !created.pruned.is_empty() {
        text.push_str(&format!(
            "; retention removed {}",
            created.pruned.join(", ")
        ));
    }
    text
}

pub(crate) fn saved_percent(db_size: u64, compressed: u64) -> f64 {
    if db_size == 0 {
        0.0
    } else {
        100.0 * (1.0 - compressed as f64 / db_size as f64)
    }
}

/// The space saved as people read it, rounded once, here, for every command;
/// `None` when compression saved nothing (a tiny database: the metadata header
/// alone is 8 KiB; an empty one: nothing to save).
pub(crate) fn saved_text(db_size: u64, compressed: u64) -> Option<String> {
    (compressed < db_size).then(|| format!("{}%", saved_percent(db_size, compressed).round()))
}

/// The metrics of the backup directory, labelled by database path.
pub(crate) fn prometheus(ctx: &Ctx, criteria: &[Criterion]) -> Result<String> {
    // Labels name the database and directory as backups record them (canonical:
    // `dir/../results.db` and `results.db` are one series, not two).
    let db_id = ctx.db_id();
    let db = db_id
        .as_ref()
        .map(|id| id.canonical().to_path_buf())
        .unwrap_or_default();
    let dir = std::fs::canonicalize(&ctx.settings.backup_dir)
        .or_else(|_| std::path::absolute(&ctx.settings.backup_dir))
        .unwrap_or_else(|_| ctx.settings.backup_dir.clone());
    crate::metrics::render(&crate::metrics::Facts {
        db: &db.to_string_lossy(),
        db_id: db_id.as_ref(),
        backup_dir: &dir,
        criteria,
    })
}

/// For `--format nagios`, anything that stops the check is UNKNOWN (exit 3).
pub(crate) fn nagios_unknown(message: &str) -> ExitCode {
    let out = crate::output::Output {
        quiet: false,
        format: Format::Text,
    };
    out.line(format!("DBBACKUP UNKNOWN - {}", message.replace('\n', " ")));
    ExitCode::Nagios(crate::exit_code::Nagios::Unknown)
}
