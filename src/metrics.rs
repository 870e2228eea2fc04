//! `check --format prometheus` and `periodic --metrics-file`: the Prometheus text
//! exposition format (version 0.0.4), labelled by database path, for
//! node_exporter's textfile collector. Written atomically: a collector reading
//! the directory never sees half a file.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::error::{Error, Result, show};
use crate::health::Criterion;
use crate::store::{BackupDir, BackupSet, DbId};

/// What the metrics describe, gathered by `check`.
pub(crate) struct Facts<'a> {
    pub db: &'a str,
    /// Whose restore points count; without a database, the whole directory's.
    pub db_id: Option<&'a DbId>,
    pub backup_dir: &'a Path,
    pub criteria: &'a [Criterion],
}

/// Escape a label value: backslash, double quote and newline, as the format says.
pub(crate) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) fn render(facts: &Facts) -> Result<String> {
    let db = label(facts.db);
    let dir = label(&facts.backup_dir.display().to_string());
    let entries = BackupDir::new(facts.backup_dir).entries()?;
    let set = match facts.db_id {
        Some(id) => BackupSet::of(entries, id),
        None => BackupSet::whole_dir(entries),
    };
    let (good, _) = crate::diff::split_restorable(&set.restore_points);
    let mut text = String::new();
    let mut family = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(text, "{name}{{{labels}}} {value}");
        }
    };
    let base = format!("db=\"{db}\",backup_dir=\"{dir}\"");
    let healthy = facts.criteria.iter().all(|c| c.ok);
    family(
        "dbbackup_healthy",
        "1 when every check criterion passes, else 0.",
        &[(base.clone(), f64::from(u8::from(healthy)))],
    );
    let criteria: Vec<(String, f64)> = facts
        .criteria
        .iter()
        .map(|c| {
            (
                format!("{base},criterion=\"{}\"", label(&c.name)),
                f64::from(u8::from(c.ok)),
            )
        })
        .collect();
    family(
        "dbbackup_check_ok",
        "1 when this check criterion passes, else 0.",
        &criteria,
    );
    // `WAIT` passes (ok 1): without this an alert cannot tell it from `OK`.
    let pending: Vec<(String, f64)> = facts
        .criteria
        .iter()
        .map(|c| {
            (
                format!("{base},criterion=\"{}\"", label(&c.name)),
                f64::from(u8::from(c.pending)),
            )
        })
        .collect();
    family(
        "dbbackup_check_pending",
        "1 when this check criterion passes but waits (WAIT: e.g. the newest backup not on the remote yet), else 0.",
        &pending,
    );
    family(
        "dbbackup_restore_points",
        "Number of good restore points in the backup directory.",
        &[(base.clone(), good.len() as f64)],
    );
    // One dated in the future has no age this clock can tell (`clock` criterion).
    if let Some(newest) = good.iter().find(|e| !e.future_dated()) {
        family(
            "dbbackup_newest_age_seconds",
            "Age of the newest good restore point, from its recorded creation time.",
            &[(base.clone(), newest.age().as_secs_f64().floor())],
        );
        family(
            "dbbackup_newest_timestamp_seconds",
            "Creation time of the newest good restore point (Unix time).",
            &[(base.clone(), newest.created().as_second() as f64)],
        );
        family(
            "dbbackup_newest_size_bytes",
            "Compressed size of the newest good restore point.",
            &[(base.clone(), newest.size as f64)],
        );
    }
    if let Some(last) = facts
        .db_id
        .and_then(|id| crate::attempts::last(facts.backup_dir, &crate::due::Current::of(id)))
    {
        family(
            "dbbackup_last_attempt_success",
            "1 when the newest backup attempt of the database succeeded, else 0.",
            &[(base.clone(), f64::from(u8::from(last.succeeded())))],
        );
        family(
            "dbbackup_last_attempt_timestamp_seconds",
            "When the newest backup attempt ended (Unix time).",
            &[(base.clone(), last.time.as_second() as f64)],
        );
    }
    if let Ok(meta) = fs::metadata(facts.db) {
        family(
            "dbbackup_database_size_bytes",
            "Size of the database file now.",
            &[(base, meta.len() as f64)],
        );
    }
    Ok(text)
}

/// A metrics file may only replace a regular file (or be new) in a directory that
/// exists: the rename below would replace a device, a FIFO or a symbolic link
/// itself, and a mistyped directory is better reported than created.
pub(crate) fn validate_path(path: &Path) -> Result<()> {
    crate::config::refuse_non_utf8("metrics file", path)?;
    let parent = parent_of(path);
    match fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::usage(format!(
                "metrics file {}: {} is not a directory",
                show(path),
                show(parent)
            )));
        }
        Err(_) => {
            return Err(Error::usage(format!(
                "metrics file {}: directory {} does not exist; create it first",
                show(path),
                show(parent)
            )));
        }
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::usage(format!(
            "metrics file {} is a symbolic link; give the real path",
            show(path)
        ))),
        Ok(meta) if !meta.is_file() => Err(Error::usage(format!(
            "metrics file {} exists and is not a regular file; refusing to replace it",
            show(path)
        ))),
        Ok(meta) if meta.len() > 0 => {
            crate::config::refuse_precious_output("metrics file", path)?;
            refuse_other_text(path)
        }
        _ => Ok(()),
    }
}

/// A file there already is replaced only when it is a metrics file (what
/// this writes starts so): any other is someone's, never overwritten.
fn refuse_other_text(path: &Path) -> Result<()> {
    let mut head = [0u8; 16];
    let read = fs::File::open(path)
        .and_then(|mut file| std::io::Read::read(&mut file, &mut head))
        .unwrap_or(0);
    if head[..read].starts_with(b"# HELP dbbackup_")
        || b"# HELP dbbackup_".starts_with(&head[..read])
    {
        return Ok(());
    }
    Err(Error::usage(format!(
        "metrics file {} exists and is not a metrics file dbbackup wrote; refusing to replace it (give a new path, or remove it first)",
        show(path)
    )))
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Replace `path` atomically: temp file in the same directory, fsync, rename.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    validate_path(path)?;
    crate::store::replace_file(path, 0o644, text.as_bytes()).map_err(|error| {
        // Left in place, the last run's verdict (`dbbackup_healthy 1`) would be
        // scraped for as long as this fails (a full disk). Gone, the metrics
        // are absent, which alerts; an unlink needs no free space.
        match std::fs::remove_file(path) {
            Ok(()) => crate::error::Error::failed(format!(
                "{error}; the previous metrics file was removed, so no stale verdict is scraped"
            )),
            // A read-only filesystem: the old verdict stays; say so.
            Err(_) if path.exists() => crate::error::Error::failed(format!(
                "{error}; the previous metrics file could not be removed either: scrapes still read the last run's verdict"
            )),
            Err(_) => error,
        }
    })
}

/// What `periodic --metrics-file` leaves when it cannot judge health (a broken
/// configuration, no database, a directory it cannot read): never the last
/// run's `dbbackup_healthy 1` and a frozen age, which would keep alerts quiet
/// while nothing is backed up. Label-free: the database may be what is unknown.
/// The metrics of a run that could not judge health (its settings cannot be
/// resolved): what `periodic --metrics-file` writes and `check --format
/// prometheus` prints, so a scrape shows "unhealthy, unjudged", not nothing.
pub(crate) const UNJUDGED: &str = "# HELP dbbackup_healthy 1 when every check criterion passes, else 0.\n\
                # TYPE dbbackup_healthy gauge\n\
                dbbackup_healthy 0\n\
                # HELP dbbackup_unjudged 1 when health could not be judged (the error is on stderr).\n\
                # TYPE dbbackup_unjudged gauge\n\
                dbbackup_unjudged 1\n";

pub(crate) fn write_unjudged(path: &Path) {
    let text = UNJUDGED;
    // A path refused is that error's own line already.
    if validate_path(path).is_err() {
        return;
    }
    if let Err(error) = write_file(path, text) {
        tracing::warn!("metrics file not written: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
