//! Settings from, highest first: command-line flags, environment variables (both
//! through clap), the YAML file, then defaults. Core code only sees `Settings`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::{limits, units};

pub const DEFAULT_CONFIG_FILE: &str = "dbbackup.yaml";

/// Health thresholds for `check` (the `check:` map in the YAML file).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckThresholds {
    pub max_age: Duration,
    pub min_count: u32,
    pub max_shrink_percent: f64,
    pub min_free_bytes: Option<u64>,
}

impl Default for CheckThresholds {
    fn default() -> Self {
        CheckThresholds {
            max_age: Duration::from_secs(24 * 3600),
            min_count: 1,
            max_shrink_percent: 50.0,
            min_free_bytes: None,
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub db_path: Option<PathBuf>,
    pub backup_dir: PathBuf,
    pub compression_level: u32,
    pub max_backups: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    /// Pre-restore copies kept per database (apart from `max_backups`).
    pub keep_pre_restore: u32,
    /// Differential backups after each full one (0: every backup is full).
    pub diff_backups: u32,
    pub min_interval: Duration,
    pub summary_log: PathBuf,
    pub mirror_dirs: Vec<PathBuf>,
    pub busy_timeout: Duration,
    pub lock_timeout: Duration,
    /// How long post-job may take after SLURM's TERM (inside KillWait, 30 s by default).
    pub term_grace: Duration,
    /// 0 = the cores this process may use.
    pub threads: u32,
    pub check: CheckThresholds,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Show progress bars (a person at a terminal; not under --quiet).
    pub progress: bool,
}

impl Settings {
    /// The database path, or the error every command that needs one gives.
    pub fn db_path(&self) -> Result<&Path> {
        let path = self.db_path.as_deref().ok_or_else(|| {
            Error::usage(
                "no database given: use --db-path PATH, DBBACKUP_DB_PATH or db_path in dbbackup.yaml",
            )
        })?;
        // Before any command takes a lock or opens it (a FIFO would block for ever).
        crate::sqlite_file::refuse_special_file(path, "database")?;
        Ok(path)
    }
}

/// The YAML file as written; every key optional, unknown keys refused. Numbers are
/// read as numbers and range checked by `limits`, so every bad value gets the same
/// message as on the command line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db_path: Option<PathBuf>,
    backup_dir: Option<PathBuf>,
    compression_level: Option<Number>,
    max_backups: Option<Number>,
    keep_daily: Option<Number>,
    keep_weekly: Option<Number>,
    keep_pre_restore: Option<Number>,
    diff_backups: Option<Number>,
    min_interval_hours: Option<Number>,
    summary_log: Option<PathBuf>,
    mirror_dirs: Option<Vec<PathBuf>>,
    busy_timeout_seconds: Option<Number>,
    lock_timeout_seconds: Option<Number>,
    term_grace_seconds: Option<Number>,
    threads: Option<Number>,
    check: Option<FileCheck>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCheck {
    max_age: Option<String>,
    min_count: Option<Number>,
    max_shrink: Option<Number>,
    min_free: Option<String>,
}

/// A number as the YAML file writes it (integer or not); `limits` judges it, so
/// the type error for text says "a number", not a Rust type.
#[derive(Debug, Clone, Copy)]
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Number, E> {
                Ok(Number(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A configuration file after every check: what `resolve` merges.
#[derive(Debug, Default)]
struct FileSettings {
    db_path: Option<PathBuf>,
    backup_dir: Option<PathBuf>,
    compression_level: Option<u32>,
    max_backups: Option<u32>,
    keep_daily: Option<u32>,
    keep_weekly: Option<u32>,
    keep_pre_restore: Option<u32>,
    diff_backups: Option<u32>,
    min_interval_hours: Option<f64>,
    summary_log: Option<PathBuf>,
    mirror_dirs: Option<Vec<PathBuf>>,
    busy_timeout_seconds: Option<u64>,
    lock_timeout_seconds: Option<u64>,
    term_grace_seconds: Option<u64>,
    threads: Option<u32>,
    check: CheckThresholds,
}

/// Merge the command line (which already includes the environment) with the file.
pub fn resolve(args: &GlobalArgs) -> Result<Settings> {
    let config_file = match &args.config {
        Some(path) => Some(path.clone()),
        // Anything under the default name counts, so that a directory, a FIFO or
        // a dangling symlink there is refused, not silently replaced by defaults.
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.symlink_metadata().is_ok()),
    };
    let file = match &config_file {
        Some(path) => load(path)?,
        None => FileSettings::default(),
    };
    let base = config_file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let relative_to_file = |path: PathBuf| {
        if path.is_absolute() {
            path
        } else {
            base.join(path)
        }
    };

    let mirror_dirs = if args.mirror_dirs.is_empty() {
        file.mirror_dirs
            .unwrap_or_default()
            .into_iter()
            .map(relative_to_file)
            .collect()
    } else {
        args.mirror_dirs.clone()
    };
    Ok(Settings {
        db_path: args.db_path.clone().or(file.db_path.map(relative_to_file)),
        backup_dir: args
            .backup_dir
            .clone()
            .or(file.backup_dir.map(relative_to_file))
            .unwrap_or_else(|| PathBuf::from("outputs/db_backups")),
        compression_level: args
            .compression_level
            .or(file.compression_level)
            .unwrap_or(6),
        max_backups: args.max_backups.or(file.max_backups).unwrap_or(10),
        keep_daily: args.keep_daily.or(file.keep_daily).unwrap_or(0),
        keep_weekly: args.keep_weekly.or(file.keep_weekly).unwrap_or(0),
        keep_pre_restore: args.keep_pre_restore.or(file.keep_pre_restore).unwrap_or(3),
        diff_backups: args.diff_backups.or(file.diff_backups).unwrap_or(0),
        min_interval: Duration::from_secs_f64(
            args.min_interval_hours
                .or(file.min_interval_hours)
                .unwrap_or(1.0)
                * 3600.0,
        ),
        summary_log: args
            .summary_log
            .clone()
            .or(file.summary_log.map(relative_to_file))
            .unwrap_or_else(|| PathBuf::from("slrm_logs/backup_summary.log")),
        mirror_dirs,
        busy_timeout: Duration::from_secs(
            args.busy_timeout_seconds
                .or(file.busy_timeout_seconds)
                .unwrap_or(30),
        ),
        lock_timeout: Duration::from_secs(
            args.lock_timeout_seconds
                .or(file.lock_timeout_seconds)
                .unwrap_or(600),
        ),
        term_grace: Duration::from_secs(
            args.term_grace_seconds
                .or(file.term_grace_seconds)
                .unwrap_or(20),
        ),
        threads: args.threads.or(file.threads).unwrap_or(0),
        check: file.check,
        config_file,
        progress: !args.quiet,
    })
}

fn load(path: &Path) -> Result<FileSettings> {
    let bad = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    // A FIFO would block the read for ever; a directory cannot be read.
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(bad("not a regular file".into()));
    }
    let text = fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    parse(&text).map_err(bad)
}

/// Parse and check a configuration file's text: the one path every file takes,
/// in a real run and in `check_text`. The error names the key.
fn parse(text: &str) -> std::result::Result<FileSettings, String> {
    if text.trim().is_empty() {
        return Ok(FileSettings::default());
    }
    let file: FileConfig = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    for (key, path) in [
        ("db_path", &file.db_path),
        ("backup_dir", &file.backup_dir),
        ("summary_log", &file.summary_log),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(format!("{key} must not be empty"));
        }
    }
    let real = |limit: limits::Limit, value: Option<Number>| limit.file_value(value.map(|n| n.0));
    let whole = |limit: limits::Limit, value: Option<Number>| {
        real(limit, value).map(|v| v.map(|v| v as u64))
    };
    let small = |limit: limits::Limit, value: Option<Number>| {
        whole(limit, value).map(|v| v.map(|v| v as u32))
    };
    Ok(FileSettings {
        compression_level: small(limits::COMPRESSION_LEVEL, file.compression_level)?,
        max_backups: small(limits::MAX_BACKUPS, file.max_backups)?,
        keep_daily: small(limits::KEEP_DAILY, file.keep_daily)?,
        keep_weekly: small(limits::KEEP_WEEKLY, file.keep_weekly)?,
        keep_pre_restore: small(limits::KEEP_PRE_RESTORE, file.keep_pre_restore)?,
        diff_backups: small(limits::DIFF_BACKUPS, file.diff_backups)?,
        min_interval_hours: real(limits::MIN_INTERVAL_HOURS, file.min_interval_hours)?,
        busy_timeout_seconds: whole(limits::BUSY_TIMEOUT_SECONDS, file.busy_timeout_seconds)?,
        lock_timeout_seconds: whole(limits::LOCK_TIMEOUT_SECONDS, file.lock_timeout_seconds)?,
        term_grace_seconds: whole(limits::TERM_GRACE_SECONDS, file.term_grace_seconds)?,
        threads: small(limits::THREADS, file.threads)?,
        check: file_check(file.check.unwrap_or_default())?,
        db_path: file.db_path,
        backup_dir: file.backup_dir,
        summary_log: file.summary_log,
        mirror_dirs: file.mirror_dirs,
    })
}

/// Whether `text` is a valid configuration file (for tests and fuzzing): `Err`
/// carries the one-line message a user would see. The same `parse` a run uses.
pub fn check_text(text: &str) -> std::result::Result<(), String> {
    parse(text).map(|_| ())
}

fn file_check(check: FileCheck) -> std::result::Result<CheckThresholds, String> {
    let defaults = CheckThresholds::default();
    Ok(CheckThresholds {
        max_age: match check.max_age {
            Some(text) => {
                units::parse_duration(&text).map_err(|e| format!("check.max_age: {e}"))?
            }
            None => defaults.max_age,
        },
        min_count: limits::MIN_COUNT
            .file_value(check.min_count.map(|n| n.0))?
            .map_or(defaults.min_count, |v| v as u32),
        max_shrink_percent: limits::MAX_SHRINK
            .file_value(check.max_shrink.map(|n| n.0))?
            .unwrap_or(defaults.max_shrink_percent),
        min_free_bytes: match check.min_free {
            Some(text) => {
                Some(units::parse_size(&text).map_err(|e| format!("check.min_free: {e}"))?)
            }
            None => None,
        },
    })
}
