//! `dbbackup check`: health for monitoring and cron, for the backup directory and
//! each mirror. Text and JSON exit 0 healthy / 1 not; `--format nagios` follows
//! the monitoring-plugins conventions (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

use serde_json::json;

use super::Ctx;
use crate::cli::{CheckArgs, CheckFormat, Format};
use crate::config::CheckThresholds;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::exit_code::Nagios;
use crate::health::{self, Criterion, Severity};

/// `args.thresholds` are already in `ctx.settings.check` (`config::resolve`).
pub fn run(ctx: &Ctx, args: &CheckArgs) -> Result<ExitCode> {
    let criteria = evaluate_all(ctx, &ctx.settings.check)?;
    let healthy = criteria.iter().all(|c| c.ok);
    match args.format {
        CheckFormat::Nagios => {
            let (state, text) = nagios(&criteria);
            ctx.output(Format::Text).line(text);
            return Ok(ExitCode::Nagios(state));
        }
        CheckFormat::Prometheus => {
            let text = prometheus(ctx, &criteria)?;
            if !ctx.settings.quiet {
                crate::output::write_stdout(text.as_bytes())
                    .map_err(|e| crate::error::Error::failed(format!("cannot write: {e}")))?;
            }
        }
        CheckFormat::Json | CheckFormat::Text => {
            let format = if args.format == CheckFormat::Json {
                Format::Json
            } else {
                Format::Text
            };
            let out = ctx.output(format);
            for criterion in &criteria {
                let verdict = if criterion.ok { "OK  " } else { "FAIL" };
                out.line(format!(
                    "{verdict} {}: {}",
                    criterion.name, criterion.detail
                ));
            }
            out.document(&json!({"healthy": healthy, "criteria": criteria}));
        }
    }
    Ok(if healthy {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// The backup directory's criteria, then each mirror's.
pub fn evaluate_all(ctx: &Ctx, thresholds: &CheckThresholds) -> Result<Vec<Criterion>> {
    let db = ctx.db_id();
    let mut criteria =
        health::evaluate(&ctx.settings.backup_dir, db.as_ref(), "", thresholds, true)?;
    if let Some(path) = &ctx.settings.db_path {
        criteria.push(health::database(path));
    }
    for mirror in &ctx.settings.mirror_dirs {
        let label = format!("mirror:{}:", mirror.display());
        criteria.extend(health::evaluate(
            mirror,
            db.as_ref(),
            &label,
            thresholds,
            true,
        )?);
    }
    Ok(criteria)
}

/// The metrics of the backup directory, labelled by database path.
pub fn prometheus(ctx: &Ctx, criteria: &[Criterion]) -> Result<String> {
    let db = match &ctx.settings.db_path {
        Some(db) => std::path::absolute(db).unwrap_or_else(|_| db.clone()),
        None => std::path::PathBuf::new(),
    };
    let dir = std::path::absolute(&ctx.settings.backup_dir)
        .unwrap_or_else(|_| ctx.settings.backup_dir.clone());
    let db_id = ctx.db_id();
    crate::metrics::render(&crate::metrics::Facts {
        db: &db.to_string_lossy(),
        db_id: db_id.as_ref(),
        backup_dir: &dir,
        criteria,
    })
}

/// One status line with perfdata, and the plugin exit code.
fn nagios(criteria: &[Criterion]) -> (Nagios, String) {
    let worst = criteria.iter().filter(|c| !c.ok).map(|c| c.severity).max();
    let (code, word) = match worst {
        None => (Nagios::Ok, "OK"),
        Some(Severity::Warning) => (Nagios::Warning, "WARNING"),
        Some(Severity::Critical) => (Nagios::Critical, "CRITICAL"),
    };
    let summary: Vec<String> = match worst {
        None => criteria.iter().take(2).map(|c| c.detail.clone()).collect(),
        Some(_) => health::problems(criteria),
    };
    let perf: Vec<&str> = criteria.iter().filter_map(|c| c.perf.as_deref()).collect();
    (
        code,
        format!(
            "DBBACKUP {word} - {} | {}",
            summary.join("; "),
            perf.join(" ")
        ),
    )
}

/// For `--format nagios`, anything that stops the check is UNKNOWN (exit 3).
pub fn nagios_unknown(message: &str) -> ExitCode {
    let out = crate::output::Output {
        quiet: false,
        format: Format::Text,
    };
    out.line(format!("DBBACKUP UNKNOWN - {}", message.replace('\n', " ")));
    ExitCode::Nagios(Nagios::Unknown)
}
