//! `dbbackup summary [--summary-log PATH]`: one line describing the backup set.

use serde::Serialize;

use super::Ctx;
use crate::cli::SummaryArgs;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::summary_log::{self, Line};

/// `--log` is already `ctx.settings.summary_log` (`config::resolve`).
/// `--format json`: the line's fields, typed (docs/json.md).
#[derive(Serialize)]
struct Report<'a> {
    event: &'static str,
    status: &'static str,
    count: usize,
    failed: usize,
    pre_restore: usize,
    unusable: usize,
    newest: Option<&'a str>,
    total_size: u64,
    healthy: bool,
    problems: Vec<String>,
    /// The line appended to the log, as text shows it.
    line: &'a str,
}

pub(crate) fn run(ctx: &Ctx, args: &SummaryArgs) -> Result<ExitCode> {
    // The same database `check` judges (refused when the directory holds several).
    let set = match crate::health::judged_database(&ctx.settings)?.0 {
        Some(db) => ctx.backup_dir().set(&db)?,
        None => ctx.backup_set(&ctx.backup_dir())?,
    };
    let (good, unusable) = crate::diff::split_restorable(&set.restore_points);
    let criteria = crate::health::evaluate_all(&ctx.settings, &ctx.settings.check)?;
    let healthy = criteria.iter().all(|c| c.ok);
    let status = if healthy {
        summary_log::EventStatus::Ok
    } else {
        summary_log::EventStatus::Failed
    };
    let mut line = Line::new(&ctx.job, "summary", status);
    // `total_size` is the bytes of exactly the files the counts count: good
    // restore points, failed snapshots, pre-restore copies and restore points
    // that cannot be restored (a diff without its base), all this database's.
    let total_size: u64 = set
        .restore_points
        .iter()
        .chain(&set.pre_restore)
        .chain(&set.failed)
        .map(|e| e.size)
        .sum();
    let unusable = unusable.len() + crate::health::unreadable_newer(&set, &good).len();
    let newest = good.first().map(|e| e.file_name.as_str());
    let problems = if healthy {
        Vec::new()
    } else {
        crate::health::problems(&criteria)
    };
    line.field("count", &good.len().to_string())
        .field("failed", &set.failed.len().to_string())
        .field("pre_restore", &set.pre_restore.len().to_string())
        .field("unusable", &unusable.to_string())
        .field("newest", newest.unwrap_or("none"))
        .field("total_size", &total_size.to_string())
        .field("healthy", if healthy { "true" } else { "false" });
    if !healthy {
        line.field("problems", &problems.join("; "));
    }
    summary_log::append(&ctx.settings.summary_log, &line)?;
    let out = ctx.output(args.output.format);
    out.line(line.text());
    out.document(&Report {
        event: "summary",
        status: status.as_str(),
        count: good.len(),
        failed: set.failed.len(),
        pre_restore: set.pre_restore.len(),
        unusable,
        newest,
        total_size,
        healthy,
        problems,
        line: line.text(),
    });
    Ok(ExitCode::Success)
}
