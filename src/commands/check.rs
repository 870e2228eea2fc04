//! `dbbackup check`: health for monitoring and cron, for the backup directory and
//! each mirror. Text and JSON exit 0 healthy / 1 not; `--format nagios` follows
//! the monitoring-plugins conventions (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

use serde_json::json;

use super::{Ctx, report};
use crate::cli::{CheckArgs, CheckFormat, Format};
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::exit_code::Nagios;
use crate::health::{self, Criterion, Severity};
use crate::store::DbId;

pub(crate) fn run(ctx: &Ctx, args: &CheckArgs) -> Result<ExitCode> {
    // This call's threshold flags are already in `ctx.settings.check` (`config::resolve`).
    let criteria = health::evaluate_all(&ctx.settings, &ctx.settings.check)?;
    let healthy = criteria.iter().all(|c| c.ok);
    match args.format {
        CheckFormat::Nagios => {
            let (db, assumed) = health::judged_database(&ctx.settings)?;
            let assumed = db.filter(|_| assumed);
            let (state, text) = nagios(&criteria, assumed.as_ref());
            ctx.output(Format::Text).line(text);
            return Ok(ExitCode::Nagios(state));
        }
        CheckFormat::Prometheus => {
            let text = report::prometheus(ctx, &criteria)?;
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
                // The word agrees with nagios and JSON `severity`; the exit
                // code (1 while any criterion fails) does not depend on it.
                let verdict = match (criterion.ok, criterion.pending) {
                    (false, _) if criterion.severity == Severity::Warning => "WARN",
                    (false, _) => "FAIL",
                    (true, true) => "WAIT",
                    (true, false) => "OK  ",
                };
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

/// One status line with perfdata, and the plugin exit code. `assumed`: the
/// database judged without a configured one, named in the line.
fn nagios(criteria: &[Criterion], assumed: Option<&DbId>) -> (Nagios, String) {
    let worst = criteria.iter().filter(|c| !c.ok).map(|c| c.severity).max();
    let (code, word) = match worst {
        None => (Nagios::Ok, "OK"),
        Some(Severity::Warning) => (Nagios::Warning, "WARNING"),
        Some(Severity::Critical) => (Nagios::Critical, "CRITICAL"),
    };
    let summary: Vec<String> = match worst {
        // Age and count; and the remote's word when one is configured (it
        // may be waiting for the next sync).
        None => criteria
            .iter()
            .take(2)
            .chain(criteria.iter().filter(|c| c.name == "remote"))
            .map(|c| c.detail.clone())
            .collect(),
        Some(_) => health::problems(criteria),
    };
    let mut summary = summary;
    if let Some(db) = assumed {
        summary.push(format!(
            "no --db-path given: judged {}",
            crate::error::show(db.canonical())
        ));
    }
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
