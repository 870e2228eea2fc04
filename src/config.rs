//! Settings from, highest first: command-line flags, environment variables (both
//! through clap), the YAML file, then defaults. Core code only sees `Settings`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::units;

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
        self.db_path.as_deref().ok_or_else(|| {
            Error::usage(
                "no database given: use --db-path PATH, DBBACKUP_DB_PATH or db_path in dbbackup.yaml",
            )
        })
    }
}

/// The YAML file as written; every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db_path: Option<PathBuf>,
    backup_dir: Option<PathBuf>,
    compression_level: Option<u32>,
    max_backups: Option<u32>,
    keep_daily: Option<u32>,
    keep_weekly: Option<u32>,
    min_interval_hours: Option<f64>,
    summary_log: Option<PathBuf>,
    mirror_dirs: Option<Vec<PathBuf>>,
    busy_timeout_seconds: Option<u64>,
    lock_timeout_seconds: Option<u64>,
    term_grace_seconds: Option<u64>,
    threads: Option<u32>,
    check: Option<FileCheck>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCheck {
    max_age: Option<String>,
    min_count: Option<u32>,
    max_shrink: Option<f64>,
    min_free: Option<String>,
}

/// Merge the command line (which already includes the environment) with the file.
pub fn resolve(args: &GlobalArgs) -> Result<Settings> {
    let config_file = match &args.config {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
    };
    let file = match &config_file {
        Some(path) => load(path)?,
        None => FileConfig::default(),
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

    let check = match file.check {
        None => CheckThresholds::default(),
        Some(check) => file_check(check, config_file.as_deref().unwrap_or(Path::new("")))?,
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
        check,
        config_file,
        progress: !args.quiet,
    })
}

fn load(path: &Path) -> Result<FileConfig> {
    let bad = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    let text = fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    parse(&text).map_err(bad)
}

/// Parse and range-check a configuration file's text; the error names the key.
fn parse(text: &str) -> std::result::Result<FileConfig, String> {
    let file: FileConfig = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    validate(&file)?;
    if let Some(check) = &file.check {
        if let Some(age) = &check.max_age {
            units::parse_duration(age).map_err(|e| format!("check.max_age: {e}"))?;
        }
        if let Some(free) = &check.min_free {
            units::parse_size(free).map_err(|e| format!("check.min_free: {e}"))?;
        }
    }
    Ok(file)
}

/// Whether `text` is a valid configuration file (for tests and fuzzing): `Err`
/// carries the one-line message a user would see.
pub fn check_text(text: &str) -> std::result::Result<(), String> {
    if text.trim().is_empty() {
        return Ok(());
    }
    parse(text).map(|_| ())
}

/// Range checks, each naming the key (the caller names the file).
fn validate(file: &FileConfig) -> std::result::Result<(), String> {
    if let Some(level) = file.compression_level
        && !(1..=9).contains(&level)
    {
        return Err(format!("compression_level must be 1-9, not {level}"));
    }
    if file.max_backups == Some(0) {
        return Err("max_backups must be at least 1".into());
    }
    if let Some(hours) = file.min_interval_hours
        && !(hours.is_finite() && hours >= 0.0)
    {
        return Err(format!(
            "min_interval_hours must be a non-negative number, not {hours}"
        ));
    }
    for (key, path) in [
        ("db_path", &file.db_path),
        ("backup_dir", &file.backup_dir),
        ("summary_log", &file.summary_log),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(format!("{key} must not be empty"));
        }
    }
    Ok(())
}

fn file_check(check: FileCheck, path: &Path) -> Result<CheckThresholds> {
    let bad = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    let defaults = CheckThresholds::default();
    let max_shrink_percent = check.max_shrink.unwrap_or(defaults.max_shrink_percent);
    if !(0.0..=100.0).contains(&max_shrink_percent) {
        return Err(bad(format!(
            "check.max_shrink must be 0-100, not {max_shrink_percent}"
        )));
    }
    Ok(CheckThresholds {
        max_age: match check.max_age {
            Some(text) => {
                units::parse_duration(&text).map_err(|e| bad(format!("check.max_age: {e}")))?
            }
            None => defaults.max_age,
        },
        min_count: check.min_count.unwrap_or(defaults.min_count),
        max_shrink_percent,
        min_free_bytes: match check.min_free {
            Some(text) => {
                Some(units::parse_size(&text).map_err(|e| bad(format!("check.min_free: {e}")))?)
            }
            None => None,
        },
    })
}
