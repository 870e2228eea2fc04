//! Settings from, highest first: command-line flags, environment variables (both
//! through clap), the YAML file, then defaults: [`resolve`] merges the
//! [`Options`] (each value typed and range checked as it was read), and the commands and
//! core modules see only the [`Settings`] it returns.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::options::{self as defaults, CheckOptions, Options};

mod exported;
mod paths;
mod scan;

pub(crate) use paths::path_arg;
use paths::{drop_backup_dir_from_mirrors, expand_flags, refuse_backup_dir_as_mirror, relative_to};
pub(crate) use paths::{
    map_paths, refuse_non_utf8, refuse_non_utf8_database, refuse_precious_output,
};

/// Health thresholds for `check` (the `check:` map in the YAML file).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckThresholds {
    pub max_age: Duration,
    pub min_count: u32,
    pub max_shrink_percent: f64,
    pub min_free_bytes: Option<u64>,
    /// With a remote: its newest restore point at most this old.
    pub remote_max_age: Duration,
}

impl Default for CheckThresholds {
    fn default() -> Self {
        thresholds(CheckOptions::default())
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
    /// Who may use what dbbackup creates; `None`: the database decides (`store::perms`).
    pub shared: Option<crate::options::Shared>,
    pub check: CheckThresholds,
    /// `s3://BUCKET/PREFIX` (checked when a command uses it: `remote::configured`).
    pub remote: Option<String>,
    pub remote_upload: crate::options::RemoteUpload,
    pub remote_max_backups: u32,
    pub remote_timeout: Duration,
    /// The file and line that set `remote`, when the file's value is the one
    /// used: a bad one is named there (checked by `commands::dispatch`, as the
    /// remote layer judges URLs).
    pub remote_in_file: Option<(PathBuf, Option<usize>)>,
    /// The config file that set `mirror_dirs`, when the file's value is the
    /// one used: a broken mirror is named with it.
    pub mirrors_in_file: Option<PathBuf>,
    /// The config file that was read, if any (`init --slurm`: the one it writes),
    /// for the SLURM templates to name.
    pub config_file: Option<PathBuf>,
    /// `--quiet`: nothing on stdout, no progress bars.
    pub quiet: bool,
    /// The config file names the database (`db_path`) and neither it nor the
    /// backup directory is given by a flag or a `DBBACKUP_*` variable: the file
    /// says this directory is this database's, the one evidence that the seed's
    /// legacy files in it (which record no database) are its restore points
    /// (`store::ownership::Legacy`). A one-off `--backup-dir` is no such evidence.
    pub dir_configured: bool,
    /// The backup directory the config file (or the default) names, when a
    /// flag or a `DBBACKUP_*` variable gave another one (a mirror, to restore
    /// from it): the jobs' records are kept there, not in a mirror.
    pub configured_backup_dir: Option<PathBuf>,
    /// What the command line and the environment gave (paths expanded, not
    /// yet merged over the file): `init` writes these into the file.
    pub given: Options,
}

impl Settings {
    /// The configured backup directory when this run reads another one
    /// (`--backup-dir MIRROR`) and it exists: where the jobs' records and the
    /// project's own restore points are.
    pub(crate) fn other_configured_dir(&self) -> Option<&Path> {
        self.configured_backup_dir
            .as_deref()
            .filter(|dir| dir.is_dir() && !crate::store::same_existing_dir(dir, &self.backup_dir))
    }

    /// Show progress bars (a person at a terminal; not under --quiet).
    pub fn progress(&self) -> bool {
        !self.quiet
    }

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

/// What the command line asks for, the command's own settings folded in (`cli`
/// builds it): everything `resolve` needs besides the file. Clap has already
/// put the environment variables into `flags`.
#[derive(Debug, Default)]
pub struct Request {
    /// Flags and environment variables, as clap read them.
    pub flags: Options,
    pub quiet: bool,
    /// `init --slurm`: the config file the templates name is the one init writes.
    pub written_config: Option<PathBuf>,
    /// `init`: `./dbbackup.yaml` is not read (it may be the broken file init
    /// replaces); a file named by `--config` is, and its settings are written.
    pub init: bool,
    /// The long flags on the command line (`db-path`, …): a bad value of a
    /// setting not among them came from its `DBBACKUP_*` variable, named so.
    pub given_longs: Vec<String>,
    /// The command names a project's `dbbackup.yaml` above the current
    /// directory itself (`templates`): not said here too.
    pub project_above_said: bool,
}

/// Merge the command line (which already includes the environment) over the file
/// and the defaults, and validate: the one place settings are made.
pub fn resolve(request: Request) -> Result<Settings> {
    let Request {
        flags,
        quiet,
        written_config,
        init,
        given_longs,
        project_above_said,
    } = request;
    let mut flags = expand_flags(flags, &given_longs)?;
    let given_config = given_longs.iter().any(|l| l == "config");
    // `init` copies the settings of a file named by `--config` only: a
    // `DBBACKUP_CONFIG` exported for another project would give the new one
    // that project's backup directory and log (its `next:` line names the
    // variable), and one naming the file about to be written names nothing yet.
    if init && !given_config {
        flags.config = None;
    }
    let config_file = match &flags.config {
        Some(path) => Some(path.clone()),
        // Anything under the default name counts, so that a directory, a FIFO or
        // a dangling symlink there is refused, not silently replaced by defaults.
        None if init => None,
        None => Some(PathBuf::from(defaults::DEFAULT_CONFIG_FILE))
            .filter(|p| p.symlink_metadata().is_ok()),
    };
    // None here: the project's file for the database given, found from elsewhere.
    let project_file = match (&config_file, flags.config.is_none() && !init) {
        (None, true) => beside_database(flags.db_path.as_deref()),
        _ => None,
    };
    let config_file = config_file.or_else(|| project_file.clone());
    if config_file.is_none() && !init && !project_above_said && flags.db_path.is_none() {
        say_project_above();
    }
    if let Some(path) = flags
        .config
        .as_ref()
        .filter(|p| p.try_exists().is_ok_and(|e| !e))
    {
        // Set in a profile and forgotten, the variable is the thing to look at.
        let source = if given_config {
            "--config"
        } else {
            "DBBACKUP_CONFIG"
        };
        return Err(Error::usage(format!(
            "{source} names {}, which does not exist",
            crate::error::show(path)
        )));
    }
    let (mut file, remote_line, mirrors_line) = match &config_file {
        Some(path) => {
            refuse_database_as_config(path, flags.config.is_some(), given_config)?;
            load(path)?
        }
        None => (Options::default(), None, None),
    };
    // The project's file found from elsewhere: its directory is where the
    // path defaults would be had it been run there (T20 F5).
    if let Some(path) = &project_file {
        let dir = path.parent().unwrap_or(Path::new("."));
        file.backup_dir = file
            .backup_dir
            .or_else(|| Some(dir.join(defaults::DEFAULT_BACKUP_DIR)));
        file.summary_log = file
            .summary_log
            .or_else(|| Some(dir.join(defaults::DEFAULT_SUMMARY_LOG)));
    }
    let mirrors_from_file = flags.mirror_dirs.is_none();
    let remote_in_file = match (&config_file, &file.remote, &flags.remote) {
        (Some(path), Some(_), None) => Some((path.clone(), remote_line)),
        _ => None,
    };
    let dir_configured =
        file.db_path.is_some() && flags.db_path.is_none() && flags.backup_dir.is_none();
    // Only a one-off `--backup-dir` on the command line reads another
    // directory than the project's; `DBBACKUP_BACKUP_DIR` is a way to set it.
    let configured_backup_dir = given_longs
        .iter()
        .any(|long| long == "backup-dir")
        .then(|| {
            std::env::var_os("DBBACKUP_BACKUP_DIR")
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from)
                .or_else(|| file.backup_dir.clone())
                .unwrap_or_else(|| PathBuf::from(defaults::DEFAULT_BACKUP_DIR))
        });
    exported::said(&flags, &given_longs, &file, config_file.as_deref());
    let merged = flags.clone().merge(file);
    let mut settings = settings_from(merged.clone());
    settings.dir_configured = dir_configured;
    settings.configured_backup_dir = configured_backup_dir;
    // `--config X init`: X's settings go into the new file, under the flags.
    settings.given = if init { merged } else { flags };
    if let Some(db) = &settings.db_path {
        refuse_non_utf8_database(db)?;
        paths::refuse_sidecar_database(db)?;
    }
    paths::refuse_non_utf8_paths(&settings)?;
    drop_backup_dir_from_mirrors(&mut settings, &given_longs);
    refuse_backup_dir_as_mirror(&settings).map_err(|message| match &config_file {
        // The mirrors came from the file: said as its other mistakes are.
        Some(path) if mirrors_from_file => Error::Config {
            path: path.clone(),
            line: mirrors_line,
            message,
        },
        _ => Error::usage(message),
    })?;
    settings.remote_in_file = remote_in_file;
    settings.mirrors_in_file = config_file.clone().filter(|_| mirrors_from_file);
    settings.config_file = written_config.or(config_file);
    settings.quiet = quiet;
    Ok(settings)
}

/// Without `./dbbackup.yaml`: the project's configuration for the database
/// given (`--db-path /proj/data/results.db` from another directory, the Python
/// API from a notebook elsewhere): the nearest `dbbackup.yaml` in the
/// database's directory or one above it (as git finds its repository) that
/// names that same database. Without it, the backups would go to a new
/// `outputs/db_backups` under the current directory, where the project's
/// `list` and `restore` never look.
fn beside_database(db: Option<&Path>) -> Option<PathBuf> {
    let db = db?;
    let config = project_file_of(db)?;
    tracing::info!(
        "reading {}: the project's configuration for {} (none in the current directory)",
        crate::error::show(&config),
        crate::error::show(db)
    );
    Some(config)
}

/// The nearest `dbbackup.yaml` in `db`'s directory or one above it (as git
/// finds its repository) that names that same database: its project's.
pub(crate) fn project_file_of(db: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(db).ok()?;
    absolute
        .parent()?
        .ancestors()
        .take(PROJECT_DEPTH)
        .map(|dir| dir.join(defaults::DEFAULT_CONFIG_FILE))
        .filter(|config| config.is_file())
        .find(|config| {
            load(config)
                .ok()
                .and_then(|(file, _, _)| file.db_path)
                .is_some_and(|named| crate::store::DbId::of(&named).is_file(db))
        })
        // Said as the file's path, not as `/p4A/../p5/dbbackup.yaml` (T28b).
        .map(|config| std::fs::canonicalize(&config).unwrap_or(config))
}

/// Run from a subdirectory of a project without any settings (T27b F9): the
/// project's `dbbackup.yaml` above is not read (a file read from above could
/// be anyone's, a home directory's), but it is named, with how to use it.
fn say_project_above() {
    let Ok(here) = std::env::current_dir() else {
        return;
    };
    let Some(above) = here
        .ancestors()
        .skip(1)
        .take(PROJECT_DEPTH)
        .map(|dir| dir.join(defaults::DEFAULT_CONFIG_FILE))
        .find(|config| config.is_file())
    else {
        return;
    };
    let project = above.parent().unwrap_or(Path::new("/"));
    tracing::warn!(
        "no {} in {}; {} is not read from a subdirectory: run from {}, or give --config {}",
        defaults::DEFAULT_CONFIG_FILE,
        crate::error::show(&here),
        crate::error::show(&above),
        crate::error::show(project),
        crate::error::show(&above)
    );
}

/// How far above the database a project's `dbbackup.yaml` is looked for.
const PROJECT_DEPTH: usize = 4;

/// The settings, defaults filled in. Nothing left to check: every value was
/// typed and range checked as it was read (`options`, `limits`, `units`).
fn settings_from(options: Options) -> Settings {
    let seconds =
        |value: Option<u32>, default: u64| Duration::from_secs(value.map_or(default, u64::from));
    Settings {
        compression_level: options
            .compression_level
            .unwrap_or(defaults::DEFAULT_COMPRESSION_LEVEL),
        max_backups: options.max_backups.unwrap_or(defaults::DEFAULT_MAX_BACKUPS),
        keep_daily: options.keep_daily.unwrap_or(defaults::DEFAULT_KEEP_DAILY),
        keep_weekly: options.keep_weekly.unwrap_or(defaults::DEFAULT_KEEP_WEEKLY),
        keep_pre_restore: options
            .keep_pre_restore
            .unwrap_or(defaults::DEFAULT_KEEP_PRE_RESTORE),
        diff_backups: options
            .diff_backups
            .unwrap_or(defaults::DEFAULT_DIFF_BACKUPS),
        min_interval: Duration::from_secs_f64(
            options
                .min_interval_hours
                .unwrap_or(defaults::DEFAULT_MIN_INTERVAL_HOURS)
                * 3600.0,
        ),
        busy_timeout: seconds(
            options.busy_timeout_seconds,
            defaults::DEFAULT_BUSY_TIMEOUT_SECONDS,
        ),
        lock_timeout: seconds(
            options.lock_timeout_seconds,
            defaults::DEFAULT_LOCK_TIMEOUT_SECONDS,
        ),
        term_grace: seconds(
            options.term_grace_seconds,
            defaults::DEFAULT_TERM_GRACE_SECONDS,
        ),
        threads: options.threads.unwrap_or(defaults::DEFAULT_THREADS),
        shared: options.shared,
        remote: options.remote.filter(|url| !url.is_empty()),
        remote_upload: options.remote_upload.unwrap_or_default(),
        remote_max_backups: options
            .remote_max_backups
            .or(options.max_backups)
            .unwrap_or(defaults::DEFAULT_MAX_BACKUPS),
        remote_timeout: seconds(
            options.remote_timeout_seconds,
            defaults::DEFAULT_REMOTE_TIMEOUT_SECONDS,
        ),
        check: thresholds(options.check.unwrap_or_default()),
        db_path: options.db_path,
        backup_dir: options
            .backup_dir
            .unwrap_or_else(|| defaults::DEFAULT_BACKUP_DIR.into()),
        summary_log: options
            .summary_log
            .unwrap_or_else(|| defaults::DEFAULT_SUMMARY_LOG.into()),
        mirror_dirs: options.mirror_dirs.unwrap_or_default(),
        remote_in_file: None,
        mirrors_in_file: None,
        config_file: None,
        quiet: false,
        dir_configured: false,
        configured_backup_dir: None,
        given: Options::default(),
    }
}

fn thresholds(check: CheckOptions) -> CheckThresholds {
    CheckThresholds {
        max_age: check.max_age.unwrap_or(defaults::DEFAULT_MAX_AGE_DURATION),
        min_count: check.min_count.unwrap_or(defaults::DEFAULT_MIN_COUNT),
        max_shrink_percent: check.max_shrink.unwrap_or(defaults::DEFAULT_MAX_SHRINK),
        min_free_bytes: check.min_free,
        remote_max_age: check
            .remote_max_age
            .unwrap_or(defaults::DEFAULT_REMOTE_MAX_AGE_DURATION),
    }
}

/// An SQLite database given as the configuration (`--config results.db`, the
/// database's flag mistaken) is said as that, not as text that is not UTF-8.
fn refuse_database_as_config(path: &Path, named: bool, flag: bool) -> Result<()> {
    // Only a regular file is opened: opening a FIFO would block (`load` says
    // what else it is).
    let regular = fs::metadata(path).is_ok_and(|m| m.is_file());
    if !regular
        || !matches!(
            crate::sqlite_file::header(path),
            Ok(crate::sqlite_file::Header::Sqlite)
        )
    {
        return Ok(());
    }
    let shown = crate::error::show(path);
    let meant = match (named, flag) {
        (true, true) => format!("; did you mean --db-path {shown}?"),
        (true, false) => format!(" (DBBACKUP_CONFIG); did you mean DBBACKUP_DB_PATH={shown}?"),
        (false, _) => String::new(),
    };
    Err(Error::usage(format!(
        "{shown} is an SQLite database, not a config file{meant}"
    )))
}

/// The file's settings, and the lines of its `remote` and `mirror_dirs` (named
/// if they are bad).
fn load(path: &Path) -> Result<(Options, Option<usize>, Option<usize>)> {
    let bad = |line: Option<usize>, message: String| Error::Config {
        path: path.to_path_buf(),
        line,
        message,
    };
    // A FIFO would block the read for ever; a directory cannot be read.
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(bad(None, "not a regular file".into()));
    }
    let text = fs::read_to_string(path).map_err(|e| bad(None, format!("cannot read: {e}")))?;
    // A byte-order mark (Windows editors), which YAML allows: read past, not
    // made part of the first key ("unknown key db_path", T28 F14).
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
    let file = parse(&text).map_err(|e| bad(e.line, e.message))?;
    let file = relative_to(file, path, |key| scan::line_of(&text, key))?;
    Ok((
        file,
        scan::line_of(&text, "remote"),
        scan::line_of(&text, "mirror_dirs"),
    ))
}

/// Parse and check a configuration file's text: the one path every file takes,
/// in a real run and in `check_text`. The error names the key and its line.
/// The whole file is checked, even keys a flag overrides: a mistake in it is
/// found at once.
pub(crate) fn parse(text: &str) -> std::result::Result<Options, Bad> {
    if text.trim().is_empty() {
        return Ok(Options::default());
    }
    let read: std::result::Result<Options, _> = serde_norway::from_str(text);
    // The reader judges which keys exist; the scan only says where it failed.
    scan::keys(text, read.is_err())?;
    let file = read.map_err(|error| {
        // A type error can come first in a file that is not YAML at all
        // (`max_backups: [5`, unclosed, reads as "found a list"): the syntax
        // error is the mistake to name.
        let syntax = serde_norway::from_str::<serde_norway::Value>(text)
            .err()
            .filter(|e| e.location().is_some());
        yaml_error(text, syntax.as_ref().unwrap_or(&error))
    })?;
    for (key, path) in [
        ("db_path", &file.db_path),
        ("backup_dir", &file.backup_dir),
        ("summary_log", &file.summary_log),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(Bad::at(
                scan::line_of(text, key),
                format!("{key} must not be empty"),
            ));
        }
    }
    // Joined to the file's directory, "" would mirror into the project itself.
    if file
        .mirror_dirs
        .iter()
        .flatten()
        .any(|p| p.as_os_str().is_empty())
    {
        return Err(Bad::at(
            scan::line_of(text, "mirror_dirs"),
            "mirror_dirs must not hold an empty path".into(),
        ));
    }
    Ok(file)
}

/// What is wrong with a configuration file, and on which line if known.
#[derive(Debug)]
pub(crate) struct Bad {
    pub line: Option<usize>,
    pub message: String,
}

impl Bad {
    fn at(line: Option<usize>, message: String) -> Bad {
        Bad { line, message }
    }
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What a top-level key indented by mistake is told.
const MISINDENTED: &str = "this line is indented: top-level keys start in column 1 (only the keys under `check:` are indented)";

/// The YAML reader's message in the user's words, its position as the line
/// (in front, as every other config message has it), and what a tab there
/// means.
fn yaml_error(text: &str, error: &serde_norway::Error) -> Bad {
    let mut message = error.to_string();
    let Some(at) = error.location() else {
        // Said without a position: a second document, which `---` or a first
        // line indented by mistake starts.
        if let Some(number) = scan::second_document(text) {
            return Bad::at(
                Some(number),
                "`---` starts a second YAML document; a configuration file is one: remove it"
                    .into(),
            );
        }
        if let Some(number) = scan::first_content_line(text).filter(|n| scan::misindented(text, *n))
        {
            let line = text.lines().nth(number - 1).unwrap_or("").trim_end();
            return Bad::at(
                Some(number),
                format!("{MISINDENTED} (the line reads: {line})"),
            );
        }
        return Bad::at(None, scan::plain_words(&message));
    };
    if let Some((number, column)) = scan::unclosed_quote(&message) {
        let line = text.lines().nth(number.saturating_sub(1)).unwrap_or("");
        let quote = line.chars().nth(column.saturating_sub(1)).unwrap_or('"');
        let shown = line_start(line.trim_end());
        return Bad::at(
            Some(number),
            format!(
                "the `{quote}` at column {column} is not closed by another `{quote}` (the line reads: {shown})"
            ),
        );
    }
    // Said where the reader gave up (often past the end): where it opened.
    if let Some((open, number, column)) = scan::unclosed_flow(&message)
        && let line = text.lines().nth(number.saturating_sub(1)).unwrap_or("")
        && !scan::closed_on_its_line(line, column, open)
    {
        let (close, what) = if open == '[' {
            (']', "list")
        } else {
            ('}', "map")
        };
        let shown = line_start(line.trim_end());
        return Bad::at(
            Some(number),
            format!(
                "the `{open}` at column {column} is not closed by `{close}`: YAML reads a value starting with `{open}` as a {what}; quote it if it is text (the line reads: {shown})"
            ),
        );
    }
    // The reader puts the position in its text (at the end, or in a scanner's
    // phrase; not at the very start of the file): said once, in front.
    let position = format!(" at line {} column {}", at.line(), at.column());
    message = message.replace(&position, "");
    let mut message = scan::plain_words(&message);
    if scan::misindented(text, at.line()) {
        message = MISINDENTED.into();
    }
    let line = text.lines().nth(at.line().saturating_sub(1)).unwrap_or("");
    if line.chars().take(at.column()).any(|c| c == '\t') {
        message.push_str("; YAML indents with spaces, not tabs");
    }
    // The reader's value is not what was written (`1e3` is read as 1000.0,
    // `[r.db` as a list): the line as written shows what it made of it.
    // With its indentation: a misplaced indent is the mistake to see.
    let written = line.trim_end();
    if !written.trim_start().is_empty() {
        let shown = line_start(written);
        message.push_str(&format!(" (the line reads: {shown})"));
    }
    Bad::at(Some(at.line()), message)
}

/// A config line as an error quotes it: its first 80 characters, and `…`
/// when there is more (T29b N6: a cut line read as the whole line).
fn line_start(line: &str) -> String {
    let mut shown: String = line.chars().take(80).collect();
    if line.chars().nth(80).is_some() {
        shown.push('…');
    }
    shown
}

/// Whether `text` is a valid configuration file (for tests and fuzzing): `Err`
/// carries the one-line message a user would see. The same `parse` a run uses.
pub fn check_text(text: &str) -> std::result::Result<(), String> {
    parse(text).map(|_| ()).map_err(|bad| bad.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_per_key_over_the_file_check_map_included() {
        let file =
            parse("max_backups: 4\nthreads: 2\ncheck:\n  max_age: 2h\n  min_count: 3\n").unwrap();
        let flags = Options {
            max_backups: Some(7),
            check: Some(CheckOptions {
                min_count: Some(5),
                ..CheckOptions::default()
            }),
            ..Options::default()
        };
        let settings = settings_from(flags.merge(file));
        assert_eq!((settings.max_backups, settings.threads), (7, 2));
        assert_eq!(settings.check.min_count, 5);
        assert_eq!(settings.check.max_age, Duration::from_secs(7200));
        assert_eq!(settings.check.max_shrink_percent, 50.0);
        assert_eq!(settings.compression_level, 5);
    }

    #[test]
    fn the_default_max_age_is_the_one_help_shows() {
        assert_eq!(
            Ok(defaults::DEFAULT_MAX_AGE_DURATION),
            crate::units::parse_duration(defaults::DEFAULT_MAX_AGE)
        );
        let file = parse("check:\n  max_age: 90s\n  min_free: 1K\n").unwrap();
        let check = settings_from(file).check;
        assert_eq!(check.max_age, Duration::from_secs(90));
        assert_eq!(check.min_free_bytes, Some(1024));
    }

    #[test]
    fn a_percentage_in_the_file_may_end_in_percent_as_the_flag_may() {
        for text in [
            "check:\n  max_shrink: 50%\n",
            "check:\n  max_shrink: '50%'\n",
        ] {
            let options = parse(text).unwrap();
            assert_eq!(options.check.unwrap().max_shrink, Some(50.0), "{text}");
        }
        assert!(
            check_text("check:\n  max_shrink: 150%\n")
                .unwrap_err()
                .contains("from 0 to 100")
        );
    }

    #[test]
    fn bad_file_values_keep_their_messages_and_null_is_not_given() {
        assert_eq!(
            check_text("check:\n  max_shrink: 200\n").unwrap_err(),
            "line 2: check.max_shrink: must be a number from 0 to 100, not 200"
        );
        assert!(check_text("max_backups: 0\n").unwrap_err().starts_with(
            "line 1: max_backups: must be a whole number from 1 to 4294967295, not 0"
        ));
        for (text, error) in [
            (
                "compression_level: 6.0\n",
                "line 1: compression_level: must be a whole number from 1 to 9 written in digits, such as 6 (the line reads: compression_level: 6.0)",
            ),
            (
                "compression_level: -1\n",
                "line 1: compression_level: must be a whole number from 1 to 9, not -1",
            ),
            (
                "compression_level: 1e300\n",
                "line 1: compression_level: must be a whole number from 1 to 9, not 1e300",
            ),
            (
                "compression_level: '6%'\n",
                "line 1: compression_level: '6%' is not a number; must be a whole number from 1 to 9",
            ),
            (
                "max_backups: 1e3\n",
                "line 1: max_backups: must be a whole number from 1 to 4294967295 written in digits, such as 1000 (the line reads: max_backups: 1e3)",
            ),
            (
                "keep_daily: 1.5\n",
                "line 1: keep_daily: must be a whole number from 0 to 4294967295, not 1.5",
            ),
            (
                "min_interval_hours: 1e300\n",
                "line 1: min_interval_hours: must be a number from 0 to 876000, not 1e300",
            ),
        ] {
            let message = check_text(text).unwrap_err();
            assert!(message.starts_with(error), "{text}: {message}");
        }
        assert!(check_text("compression_level: ~\ncheck:\n").is_ok());
    }

    #[test]
    fn shared_is_a_file_key_a_flag_wins_and_not_given_is_none() {
        use crate::options::Shared;
        let file = parse("shared: group\n").unwrap();
        assert_eq!(
            settings_from(Options::default().merge(file.clone())).shared,
            Some(Shared::Group)
        );
        let flags = Options {
            shared: Some(Shared::Umask),
            ..Options::default()
        };
        assert_eq!(settings_from(flags.merge(file)).shared, Some(Shared::Umask));
        assert_eq!(settings_from(Options::default()).shared, None);
        assert!(parse("shared: world\n").is_err());
    }
}
