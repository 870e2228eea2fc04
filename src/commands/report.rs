//! What several commands print the same way: a backup's outcome, the space
//! compression saved, the health metrics, and `check --format nagios`'s UNKNOWN.

use serde_json::json;

use super::Ctx;
use crate::cli::Format;
use crate::create::{Created, Filled, Outcome};
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::health::Criterion;
use crate::output::Output;
use crate::slurm::job::JobContext;
use crate::summary_log::{EventStatus, Line};
use crate::units::human_bytes;

/// A backup attempt's summary-log `status`: ok when made, passed its check and
/// copied to every mirror; failed when made but not; skipped when unchanged.
pub(crate) fn event_status(outcome: &Outcome) -> EventStatus {
    match outcome {
        Outcome::Created(created) if created.is_complete() => EventStatus::Ok,
        Outcome::Created(_) => EventStatus::Failed,
        // Unchanged, but the newest restore point could not be put in a mirror.
        Outcome::Unchanged { .. } if !outcome.is_complete() => EventStatus::Failed,
        Outcome::Unchanged { .. } => EventStatus::Skipped,
    }
}

/// A backup attempt's summary line: [`event_status`] of the outcome, then the
/// backup made or found (`backup=`); the event's own fields follow.
pub(crate) fn outcome_line(job: &JobContext, event: &str, outcome: &Outcome) -> Line {
    let mut line = Line::new(job, event, event_status(outcome));
    match outcome {
        Outcome::Created(created) => created_fields(&mut line, created),
        Outcome::Unchanged { newest, filled } => {
            line.backup(newest);
            if let Some(filled) = filled {
                filled_fields(&mut line, filled);
            }
        }
    }
    line
}

/// The backup made (`backup=`, with `type=diff` for a diff), and why it is
/// full when a diff was due (`full_because=`).
pub(crate) fn created_fields(line: &mut Line, created: &Created) {
    line.backup(&created.entry.file_name);
    if let Some(why) = &created.full_because {
        line.field("full_because", why);
    }
}

/// A mirror filled in by a run that made no backup: `mirror=filled`, or
/// `mirror=failed` with `error=`.
pub(crate) fn filled_fields(line: &mut Line, filled: &Filled) {
    if filled.is_complete() {
        line.field("mirror", "filled");
        return;
    }
    let why: Vec<String> = filled
        .mirrors
        .iter()
        .filter_map(|m| {
            m.result
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", m.dir.display()))
        })
        .collect();
    line.field("mirror", "failed").field(
        "error",
        &format!("{} not copied to {}", filled.name, why.join("; ")),
    );
}

/// Points passed over on the way to the one used, and why: the JSON
/// `passed_over` array of `restore` and `export` (`[{"name", "reason"}]`).
pub(crate) fn passed_over_json(passed_over: &[(String, String)]) -> serde_json::Value {
    passed_over
        .iter()
        .map(|(name, why)| json!({"name": name, "reason": why}))
        .collect()
}

/// Print a backup outcome the same way for every command that makes one.
pub(crate) fn report(out: &Output, outcome: &Outcome) -> ExitCode {
    report_with(out, outcome, serde_json::Map::new())
}

/// [`report`], with the command's own fields (`extra`) in the same JSON
/// document: stdout holds one document.
pub(crate) fn report_with(
    out: &Output,
    outcome: &Outcome,
    extra: serde_json::Map<String, serde_json::Value>,
) -> ExitCode {
    let with_extra = |mut document: serde_json::Value| {
        if let Some(fields) = document.as_object_mut() {
            fields.extend(extra.clone());
        }
        document
    };
    match outcome {
        Outcome::Unchanged { newest, filled } => {
            out.not_made(format!("skipped: database unchanged since {newest}"));
            let mut document =
                with_extra(json!({"status": "skipped", "reason": "unchanged", "newest": newest}));
            report_filled(out, filled.as_ref(), &mut document)
        }
        Outcome::Created(created) => {
            out.line(describe(created));
            out.document(&with_extra(json!({
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
                "check_kind": created.meta.check_kind,
                "seconds": created.duration.as_secs_f64(),
                "pruned": created.pruned,
                "mirrors": mirrors_json(&created.mirrors),
            })));
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

/// Print what a run that made no backup copied to mirrors that lacked the
/// newest restore point (JSON: `filled` with `mirrors`, added to `document`),
/// then the document; exit 1 when a copy failed.
pub(crate) fn report_filled(
    out: &Output,
    filled: Option<&Filled>,
    document: &mut serde_json::Value,
) -> ExitCode {
    let Some(filled) = filled else {
        out.document(document);
        return ExitCode::Success;
    };
    document["filled"] = json!(filled.name);
    document["mirrors"] = mirrors_json(&filled.mirrors);
    out.document(document);
    for mirror in &filled.mirrors {
        match &mirror.result {
            Ok(()) => out.line(format!(
                "mirrored {} to {} (it lacked it)",
                filled.name,
                mirror.dir.display()
            )),
            Err(why) => out.line(format!("MIRROR FAILED: {}: {why}", mirror.dir.display())),
        }
    }
    if filled.is_complete() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    }
}

fn mirrors_json(mirrors: &[crate::mirror::MirrorResult]) -> serde_json::Value {
    json!(
        mirrors
            .iter()
            .map(|m| json!({
                "dir": m.dir,
                "ok": m.result.is_ok(),
                "error": m.result.as_ref().err(),
            }))
            .collect::<Vec<_>>()
    )
}

fn describe(created: &Created) -> String {
    let saved = saved_text(created.meta.db_size, created.entry.size)
        .map_or_else(|| "nothing saved".to_string(), |p| format!("{p} saved"));
    let kind = created.meta.check_kind;
    let check = match &created.meta.check_detail {
        None => format!("{kind} ok"),
        Some(detail) => format!(
            "INTEGRITY CHECK FAILED: {kind}: {}",
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
    let percent = saved_percent(db_size, compressed);
    // 99.85% is not 100%: near it, one decimal, rounded down.
    (compressed < db_size).then(|| match percent {
        p if p >= 99.5 => format!("{:.1}%", (p * 10.0).floor() / 10.0),
        p => format!("{}%", p.round()),
    })
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

/// A stop request (TERM from scancel or a time limit) that came while the
/// inline upload ran: the backup is kept, the upload given up, and the run
/// still ends as stopped by the signal (128+N), so `backup && next` stops.
pub(crate) fn stopped_or(code: ExitCode) -> ExitCode {
    crate::signals::received().map_or(code, ExitCode::Signal)
}
