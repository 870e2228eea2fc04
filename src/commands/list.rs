//! `dbbackup list [--format json]`

use serde::Serialize;

use super::backup::saved_percent;
use super::{Ctx, Status};
use crate::cli::FormatArgs;
use crate::error::Result;
use crate::store::Entry;
use crate::units::human_bytes;

/// One backup as `list --format json` prints it (documented in docs/json.md).
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub created: String,
    pub size: u64,
    pub db_size: Option<u64>,
    pub saved_percent: Option<f64>,
    pub checksum: Option<String>,
    pub host: Option<String>,
    pub job: Option<String>,
    pub kind: Option<String>,
    /// `ok`, `failed`, or `unknown` when the metadata cannot be read.
    pub check: String,
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Row {
    pub fn from_entry(entry: &Entry) -> Row {
        let meta = entry.meta.as_ref().ok();
        let check = match (meta, entry.name.failed) {
            (Some(meta), false) => serde_json::to_value(meta.check)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            (_, true) => "failed".into(),
            (None, false) => "unknown".into(),
        };
        Row {
            name: entry.file_name.clone(),
            created: entry.created().to_string(),
            size: entry.size,
            db_size: meta.map(|m| m.db_size),
            saved_percent: meta
                .map(|m| (saved_percent(m.db_size, entry.size) * 10.0).round() / 10.0),
            checksum: meta.map(|m| m.checksum.clone()),
            host: meta.map(|m| m.host.clone()),
            job: meta.map(|m| m.job.clone()),
            kind: meta.map(|m| m.kind.as_str().to_string()),
            check,
            source: meta.map(|m| m.source.clone()),
            error: entry.meta.as_ref().err().cloned(),
        }
    }
}

pub fn run(ctx: &Ctx, args: &FormatArgs) -> Result<Status> {
    let out = ctx.output(args.format);
    let entries = ctx.backup_dir().entries()?;
    let rows: Vec<Row> = entries.iter().map(Row::from_entry).collect();
    out.document(&rows);
    if rows.is_empty() {
        out.line(format!(
            "no backups in {}",
            ctx.settings.backup_dir.display()
        ));
        return Ok(Status::Success);
    }
    out.line(format!(
        "{:<36} {:<20} {:>10} {:>10} {:>6} {:<14} {:<11} {}",
        "NAME", "CREATED", "SIZE", "DB SIZE", "SAVED", "JOB", "KIND", "CHECK"
    ));
    for (row, entry) in rows.iter().zip(&entries) {
        let local = entry
            .created()
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        out.line(format!(
            "{:<36} {:<20} {:>10} {:>10} {:>6} {:<14} {:<11} {}",
            row.name,
            local,
            human_bytes(row.size),
            row.db_size.map(human_bytes).unwrap_or_else(|| "-".into()),
            row.saved_percent
                .map(|p| format!("{p:.0}%"))
                .unwrap_or_else(|| "-".into()),
            row.job.as_deref().unwrap_or("-"),
            row.kind.as_deref().unwrap_or("-"),
            match &row.error {
                Some(error) if row.check == "unknown" => format!("unknown ({error})"),
                _ => row.check.clone(),
            }
        ));
    }
    Ok(Status::Success)
}
