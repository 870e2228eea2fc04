//! `dbbackup check`: health for monitoring and cron, for the backup directory and
//! each mirror. Text and JSON exit 0 healthy / 1 not; `--format nagios` follows
//! the monitoring-plugins conventions (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

use serde_json::json;

use super::{Ctx, Status, report};
use crate::cli::{CheckArgs, CheckFormat, Format};
use crate::config::CheckThresholds;
use crate::error::Result;
use crate::health::{self, Criterion, Severity};

pub fn run(ctx: &Ctx, args: &CheckArgs) -> Result<Status> {
    let thresholds = thresholds(ctx, args);
    let criteria = health::evaluate_all(&ctx.settings, &thresholds)?;
    let healthy = criteria.iter().all(|c| c.ok);
    match args.format {
        CheckFormat::Nagios => {
            let (code, text) = nagios(&criteria);
            ctx.output(Format::Text).line(text);
            return Ok(Status::Code(code));
        }
        CheckFormat::Prometheus => {
            let text = report::prometheus(ctx, &criteria)?;
            if !ctx.quiet {
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
        Status::Success
    } else {
        Status::Failure
    })
}

/// The configured thresholds with this call's flags on top.
pub fn thresholds(ctx: &Ctx, args: &CheckArgs) -> CheckThresholds {
    let configured = &ctx.settings.check;
    CheckThresholds {
        max_age: args.max_age.unwrap_or(configured.max_age),
        min_count: args.min_count.unwrap_or(configured.min_count),
        max_shrink_percent: args.max_shrink.unwrap_or(configured.max_shrink_percent),
        min_free_bytes: args.min_free.or(configured.min_free_bytes),
    }
}

/// One status line with perfdata, and the plugin exit code.
fn nagios(criteria: &[Criterion]) -> (u8, String) {
    let worst = criteria.iter().filter(|c| !c.ok).map(|c| c.severity).max();
    let (code, word) = match worst {
        None => (0, "OK"),
        Some(Severity::Warning) => (1, "WARNING"),
        Some(Severity::Critical) => (2, "CRITICAL"),
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
