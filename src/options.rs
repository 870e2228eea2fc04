//! Every setting written once: each options group below is at the same time
//! clap's flags (with their `DBBACKUP_*` environment variables) and the YAML
//! file's keys. Every field is optional, so "not given" can be told apart from a
//! default, and [`Options::merge`] layers them: flags (and environment) over the
//! file. `config` validates the result against `limits` and the defaults below
//! into `Settings`; nothing past `config` sees these types.
//!
//! Numbers are typed and range checked as they are read, once: whole-number
//! settings as `u32`, the others as `f64`, by clap's value parsers (flags and
//! environment) and by the `read` deserializers (the file), both from the same
//! `limits` table, so `6%`, `6.0`, `-1` and `1e300` fail at the edge naming the
//! setting and its range; durations and sizes by `units`, the same way.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::limits;

pub const DEFAULT_CONFIG_FILE: &str = "dbbackup.yaml";
pub const DEFAULT_BACKUP_DIR: &str = "outputs/db_backups";
/// libdeflate's level 5: about 13 % less CPU than 6 for 0.2 % more bytes, still
/// smaller than `gzip -6` (docs/performance.md).
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 5;
pub const DEFAULT_MAX_BACKUPS: u32 = 10;
pub const DEFAULT_KEEP_DAILY: u32 = 0;
pub const DEFAULT_KEEP_WEEKLY: u32 = 0;
pub const DEFAULT_KEEP_PRE_RESTORE: u32 = 3;
/// 0: every backup is full, as the seed made them.
pub const DEFAULT_DIFF_BACKUPS: u32 = 0;
pub const DEFAULT_MIN_INTERVAL_HOURS: f64 = 1.0;
pub const DEFAULT_SUMMARY_LOG: &str = "slrm_logs/backup_summary.log";
pub const DEFAULT_BUSY_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_LOCK_TIMEOUT_SECONDS: u64 = 600;
pub const DEFAULT_TERM_GRACE_SECONDS: u64 = 20;
/// 0 = the cores this process may use.
pub const DEFAULT_THREADS: u32 = 0;
pub const DEFAULT_MAX_AGE: &str = "24h";
/// [`DEFAULT_MAX_AGE`] as the code uses it.
pub const DEFAULT_MAX_AGE_DURATION: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_MIN_COUNT: u32 = 1;
/// A request to the remote that receives nothing this long fails; its retries
/// with backoff stop after as long (docs/remote.md).
pub const DEFAULT_REMOTE_TIMEOUT_SECONDS: u64 = 60;
pub const DEFAULT_REMOTE_MAX_AGE: &str = "48h";
/// [`DEFAULT_REMOTE_MAX_AGE`] as the code uses it.
pub const DEFAULT_REMOTE_MAX_AGE_DURATION: Duration = Duration::from_secs(48 * 3600);

/// `remote_upload`: when restore points go to the remote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteUpload {
    // Only `dbbackup sync` uploads (from a node that reaches the store).
    #[default]
    Sync,
    // Also after each local backup; a failure only warns.
    Inline,
}
pub const DEFAULT_MAX_SHRINK: f64 = 50.0;

/// The help headings of the shared settings: `COMMAND --help` shows the
/// command's own options first, then these (as cargo and restic do).
pub(crate) const GLOBAL: &str = "Global options";
pub(crate) const BACKUP: &str = "Backup settings";
pub(crate) const RETENTION: &str = "Retention";
pub(crate) const REMOTE: &str = "Remote copies";

/// The `shared` setting: who may use the files and directories dbbackup
/// creates (`store::perms`). Not given: the database decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shared {
    // Plain comments: doc comments here would turn every command's `--help`
    // into the long layout.
    // Group read/write, directories setgid, whatever the umask.
    Group,
    // As the umask makes them.
    Umask,
}

/// The global settings: a flag on every command, an environment variable, and a
/// top-level key of the config file (`check:` holds the `check` thresholds).
/// Serialized (`init` writes the settings given), `None` is `null`.
#[derive(Debug, Default, Clone, Args, Deserialize, Serialize)]
// What a type error says it expected: the user's words, not a type's name.
#[serde(
    deny_unknown_fields,
    expecting = "a map of settings, one `key: value` per line"
)]
pub struct Options {
    /// The SQLite database to back up
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        hide_env_values = true,
        env = "DBBACKUP_DB_PATH",
        value_name = "PATH",
        allow_hyphen_values = true
    )]
    pub db_path: Option<PathBuf>,
    #[arg(long, global = true, help_heading = GLOBAL, hide_env_values = true, env = "DBBACKUP_BACKUP_DIR", allow_hyphen_values = true, value_name = "DIR",
          help = format!("Where backups go [default: {DEFAULT_BACKUP_DIR}]"))]
    pub backup_dir: Option<PathBuf>,
    // Where the settings come from: a flag and a variable, not a key of the file.
    #[arg(long, global = true, help_heading = GLOBAL, hide_env_values = true, env = "DBBACKUP_CONFIG", allow_hyphen_values = true, value_name = "FILE",
          help = format!("YAML configuration file [default: ./{DEFAULT_CONFIG_FILE} if present]"))]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    #[arg(long, global = true, help_heading = BACKUP, hide_env_values = true, env = "DBBACKUP_COMPRESSION_LEVEL", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::COMPRESSION_LEVEL.whole_parser(),
          help = format!("gzip level 1-9 [default: {DEFAULT_COMPRESSION_LEVEL}]"))]
    #[serde(default, deserialize_with = "read::compression_level")]
    pub compression_level: Option<u32>,
    #[arg(long, global = true, help_heading = RETENTION, hide_env_values = true, env = "DBBACKUP_MAX_BACKUPS", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::MAX_BACKUPS.whole_parser(),
          help = format!("Keep this many newest good backups [default: {DEFAULT_MAX_BACKUPS}]"))]
    #[serde(default, deserialize_with = "read::max_backups")]
    pub max_backups: Option<u32>,
    #[arg(long, global = true, help_heading = RETENTION, hide_env_values = true, env = "DBBACKUP_KEEP_DAILY", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::KEEP_DAILY.whole_parser(),
          help = format!("Also keep the newest backup of each of the last N days [default: {DEFAULT_KEEP_DAILY}]"))]
    #[serde(default, deserialize_with = "read::keep_daily")]
    pub keep_daily: Option<u32>,
    #[arg(long, global = true, help_heading = RETENTION, hide_env_values = true, env = "DBBACKUP_KEEP_WEEKLY", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::KEEP_WEEKLY.whole_parser(),
          help = format!("Also keep the newest backup of each of the last N weeks [default: {DEFAULT_KEEP_WEEKLY}]"))]
    #[serde(default, deserialize_with = "read::keep_weekly")]
    pub keep_weekly: Option<u32>,
    #[arg(long, global = true, help_heading = RETENTION, hide_env_values = true, env = "DBBACKUP_KEEP_PRE_RESTORE", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::KEEP_PRE_RESTORE.whole_parser(),
          help = format!("Keep this many newest pre-restore copies (undo of a restore) [default: {DEFAULT_KEEP_PRE_RESTORE}]"))]
    #[serde(default, deserialize_with = "read::keep_pre_restore")]
    pub keep_pre_restore: Option<u32>,
    #[arg(long, global = true, help_heading = BACKUP, hide_env_values = true, env = "DBBACKUP_DIFF_BACKUPS", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::DIFF_BACKUPS.whole_parser(),
          help = format!("After each full backup, make up to N differential backups (changed pages only) [default: {DEFAULT_DIFF_BACKUPS}]"))]
    #[serde(default, deserialize_with = "read::diff_backups")]
    pub diff_backups: Option<u32>,
    #[arg(long, global = true, help_heading = BACKUP, hide_env_values = true, env = "DBBACKUP_MIN_INTERVAL_HOURS", value_name = "HOURS",
          allow_negative_numbers = true, value_parser = limits::MIN_INTERVAL_HOURS.parser(),
          help = format!("`auto` makes at most one backup per this many hours [default: {DEFAULT_MIN_INTERVAL_HOURS}]"))]
    #[serde(default, deserialize_with = "read::min_interval_hours")]
    pub min_interval_hours: Option<f64>,
    #[arg(long, global = true, help_heading = BACKUP, hide_env_values = true, env = "DBBACKUP_SUMMARY_LOG", allow_hyphen_values = true, value_name = "PATH",
          help = format!("Where summary lines are appended [default: {DEFAULT_SUMMARY_LOG}]"))]
    pub summary_log: Option<PathBuf>,
    /// Extra directory that receives a copy of each backup (repeatable)
    #[arg(
        long = "mirror-dir",
        global = true,
        help_heading = BACKUP,
        hide_env_values = true,
        env = "DBBACKUP_MIRROR_DIRS",
        allow_hyphen_values = true,
        value_delimiter = ':',
        value_name = "DIR",
        // Empty elements (`DIRS=$DIRS:m` from an empty start) are dropped by
        // `Cli::request`, as an empty variable is ignored: accepted here.
        value_parser = clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from)
    )]
    #[serde(default, deserialize_with = "read::mirror_dirs")]
    pub mirror_dirs: Option<Vec<PathBuf>>,
    #[arg(long, global = true, help_heading = BACKUP, hide_env_values = true, env = "DBBACKUP_BUSY_TIMEOUT_SECONDS", value_name = "SECONDS",
          allow_negative_numbers = true, value_parser = limits::BUSY_TIMEOUT_SECONDS.whole_parser(),
          help = format!("How long to wait for a database locked by a writer [default: {DEFAULT_BUSY_TIMEOUT_SECONDS}]"))]
    #[serde(default, deserialize_with = "read::busy_timeout_seconds")]
    pub busy_timeout_seconds: Option<u32>,
    #[arg(long, global = true, help_heading = BACKUP, hide_env_values = true, env = "DBBACKUP_LOCK_TIMEOUT_SECONDS", value_name = "SECONDS",
          allow_negative_numbers = true, value_parser = limits::LOCK_TIMEOUT_SECONDS.whole_parser(),
          help = format!("How long to wait for another dbbackup holding the backup-dir lock [default: {DEFAULT_LOCK_TIMEOUT_SECONDS}]"))]
    #[serde(default, deserialize_with = "read::lock_timeout_seconds")]
    pub lock_timeout_seconds: Option<u32>,
    #[arg(long, global = true, help_heading = BACKUP, hide_env_values = true, env = "DBBACKUP_TERM_GRACE_SECONDS", value_name = "SECONDS",
          allow_negative_numbers = true, value_parser = limits::TERM_GRACE_SECONDS.whole_parser(),
          help = format!("After SLURM's TERM, post-job gives up after this many seconds [default: {DEFAULT_TERM_GRACE_SECONDS}]"))]
    #[serde(default, deserialize_with = "read::term_grace_seconds")]
    pub term_grace_seconds: Option<u32>,
    #[arg(long, global = true, help_heading = BACKUP, hide_env_values = true, env = "DBBACKUP_THREADS", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::THREADS.whole_parser(),
          help = format!("Compression threads; 0 = the cores this process may use [default: {DEFAULT_THREADS}]"))]
    #[serde(default, deserialize_with = "read::threads")]
    pub threads: Option<u32>,
    #[arg(
        long,
        global = true,
        help_heading = BACKUP,
        hide_env_values = true,
        env = "DBBACKUP_SHARED",
        value_name = "MODE",
        value_enum,
        help = "Modes of what dbbackup creates [default: group if the database is group-writable in a directory of its group, else umask]"
    )]
    pub shared: Option<Shared>,
    /// Object store for off-cluster copies: s3://BUCKET/PREFIX (docs/remote.md)
    #[arg(
        long,
        global = true, help_heading = REMOTE,
        hide_env_values = true,
        env = "DBBACKUP_REMOTE",
        value_name = "URL",
        // `--remote ""` is refused as `--backup-dir ""` is, not taken for no
        // remote over the file's (T31 R4).
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    pub remote: Option<String>,
    #[arg(
        long,
        global = true, help_heading = REMOTE,
        hide_env_values = true,
        env = "DBBACKUP_REMOTE_UPLOAD",
        value_name = "WHEN",
        value_enum,
        help = "When restore points go to the remote: `sync` (only `dbbackup sync`) or `inline` (also after each backup) [default: sync]"
    )]
    pub remote_upload: Option<RemoteUpload>,
    #[arg(long, global = true, help_heading = REMOTE, hide_env_values = true, env = "DBBACKUP_REMOTE_MAX_BACKUPS", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::REMOTE_MAX_BACKUPS.whole_parser(),
          help = "Keep this many newest restore points on the remote [default: max_backups]")]
    #[serde(default, deserialize_with = "read::remote_max_backups")]
    pub remote_max_backups: Option<u32>,
    #[arg(long, global = true, help_heading = REMOTE, hide_env_values = true, env = "DBBACKUP_REMOTE_TIMEOUT_SECONDS", value_name = "N",
          allow_negative_numbers = true, value_parser = limits::REMOTE_TIMEOUT_SECONDS.whole_parser(),
          help = format!("Give up on a stalled request to the remote, and on retrying it, after this many seconds [default: {DEFAULT_REMOTE_TIMEOUT_SECONDS}]"))]
    #[serde(default, deserialize_with = "read::remote_timeout_seconds")]
    pub remote_timeout_seconds: Option<u32>,
    /// `check:` in the file; on the command line these are `check`'s own flags,
    /// which `cli` puts here before the merge.
    #[arg(skip)]
    pub check: Option<CheckOptions>,
}

/// The health thresholds: `check`'s flags and the file's `check:` map.
#[derive(Debug, Default, Clone, Args, Deserialize, Serialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a map of check thresholds (max_age, min_count, max_shrink, min_free, remote_max_age)"
)]
pub struct CheckOptions {
    #[arg(long, hide_env_values = true, env = "DBBACKUP_CHECK_MAX_AGE", value_name = "DURATION", allow_hyphen_values = true, value_parser = crate::units::parse_duration,
          help = format!("Newest good backup at most this old (90s, 30m, 24h, 7d, 2w) [default: {DEFAULT_MAX_AGE}]"))]
    #[serde(
        default,
        deserialize_with = "read::max_age",
        serialize_with = "write_seconds"
    )]
    pub max_age: Option<Duration>,
    #[arg(long, hide_env_values = true, env = "DBBACKUP_CHECK_MIN_COUNT", value_name = "N", allow_negative_numbers = true, value_parser = limits::MIN_COUNT.whole_parser(),
          help = format!("At least this many good backups [default: {DEFAULT_MIN_COUNT}]"))]
    #[serde(default, deserialize_with = "read::min_count")]
    pub min_count: Option<u32>,
    #[arg(long, hide_env_values = true, env = "DBBACKUP_CHECK_MAX_SHRINK", value_name = "PERCENT", allow_negative_numbers = true, value_parser = limits::MAX_SHRINK.parser(),
          help = format!("Newest may be at most this many percent smaller than the median of earlier ones [default: {DEFAULT_MAX_SHRINK}]"))]
    #[serde(default, deserialize_with = "read::max_shrink")]
    pub max_shrink: Option<f64>,
    /// At least this much free space where backups go (500M, 1G: K, M, G, T are powers of 1024)
    #[arg(long, hide_env_values = true, env = "DBBACKUP_CHECK_MIN_FREE", value_name = "SIZE", allow_hyphen_values = true, value_parser = crate::units::parse_size)]
    #[serde(
        default,
        deserialize_with = "read::min_free",
        serialize_with = "write_size"
    )]
    pub min_free: Option<u64>,
    #[arg(long, hide_env_values = true, env = "DBBACKUP_CHECK_REMOTE_MAX_AGE", value_name = "DURATION", allow_hyphen_values = true, value_parser = crate::units::parse_duration,
          help = format!("With a remote: the newest restore point is on it and at most this old [default: {DEFAULT_REMOTE_MAX_AGE}]"))]
    #[serde(
        default,
        deserialize_with = "read::max_age",
        serialize_with = "write_seconds"
    )]
    pub remote_max_age: Option<Duration>,
}

/// A duration as the file reads it back, in the largest unit it is a whole
/// number of (`2h`, not `7200s`): as a person wrote it, most likely.
#[allow(clippy::ref_option)] // serde's signature
fn write_seconds<S: serde::Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    let Some(duration) = value else {
        return s.serialize_none();
    };
    if duration.subsec_nanos() != 0 {
        return s.serialize_str(&format!("{}s", duration.as_secs_f64()));
    }
    let seconds = duration.as_secs();
    let (count, unit) = [(86_400, "d"), (3_600, "h"), (60, "m")]
        .into_iter()
        .find(|(size, _)| seconds != 0 && seconds % size == 0)
        .map_or((seconds, "s"), |(size, unit)| (seconds / size, unit));
    s.serialize_str(&format!("{count}{unit}"))
}

/// A size as the file reads it back (a bare number is refused): in the
/// largest binary unit it is a whole number of (`1G`), else in bytes (`100B`).
#[allow(clippy::ref_option)] // serde's signature
fn write_size<S: serde::Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    let Some(bytes) = *value else {
        return s.serialize_none();
    };
    let (count, unit) = [
        (1u64 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ]
    .into_iter()
    .find(|(size, _)| bytes != 0 && bytes % size == 0)
    .map_or((bytes, "B"), |(size, unit)| (bytes / size, unit));
    s.serialize_str(&format!("{count}{unit}"))
}

impl Options {
    /// Each setting from `self` if given there, else from `lower`.
    pub fn merge(self, lower: Options) -> Options {
        Options {
            db_path: self.db_path.or(lower.db_path),
            backup_dir: self.backup_dir.or(lower.backup_dir),
            config: self.config.or(lower.config),
            compression_level: self.compression_level.or(lower.compression_level),
            max_backups: self.max_backups.or(lower.max_backups),
            keep_daily: self.keep_daily.or(lower.keep_daily),
            keep_weekly: self.keep_weekly.or(lower.keep_weekly),
            keep_pre_restore: self.keep_pre_restore.or(lower.keep_pre_restore),
            diff_backups: self.diff_backups.or(lower.diff_backups),
            min_interval_hours: self.min_interval_hours.or(lower.min_interval_hours),
            summary_log: self.summary_log.or(lower.summary_log),
            // An empty list (an empty DBBACKUP_MIRROR_DIRS) is not given.
            mirror_dirs: self
                .mirror_dirs
                .filter(|dirs| !dirs.is_empty())
                .or(lower.mirror_dirs),
            busy_timeout_seconds: self.busy_timeout_seconds.or(lower.busy_timeout_seconds),
            lock_timeout_seconds: self.lock_timeout_seconds.or(lower.lock_timeout_seconds),
            term_grace_seconds: self.term_grace_seconds.or(lower.term_grace_seconds),
            threads: self.threads.or(lower.threads),
            shared: self.shared.or(lower.shared),
            remote: self.remote.or(lower.remote),
            remote_upload: self.remote_upload.or(lower.remote_upload),
            remote_max_backups: self.remote_max_backups.or(lower.remote_max_backups),
            remote_timeout_seconds: self.remote_timeout_seconds.or(lower.remote_timeout_seconds),
            check: match (self.check, lower.check) {
                (Some(upper), Some(lower)) => Some(upper.merge(lower)),
                (upper, lower) => upper.or(lower),
            },
        }
    }
}

impl CheckOptions {
    /// Each threshold from `self` if given there, else from `lower`.
    pub fn merge(self, lower: CheckOptions) -> CheckOptions {
        CheckOptions {
            max_age: self.max_age.or(lower.max_age),
            min_count: self.min_count.or(lower.min_count),
            max_shrink: self.max_shrink.or(lower.max_shrink),
            min_free: self.min_free.or(lower.min_free),
            remote_max_age: self.remote_max_age.or(lower.remote_max_age),
        }
    }
}

/// The file's numbers, each checked against its range (`limits`) as it is read,
/// so a bad one fails with serde's path (the key) and the range; `key:` or `key:
/// ~` is not given, as for every other key.
mod read {
    use std::time::Duration;

    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    use crate::limits::{self, Limit, number_text};

    macro_rules! read_as {
        ($read:ident -> $t:ty: $($name:ident = $limit:ident),* $(,)?) => {$(
            pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
                d.deserialize_any($read(limits::$limit))
            }
        )*};
    }

    read_as!(Whole -> u32:
        compression_level = COMPRESSION_LEVEL,
        max_backups = MAX_BACKUPS,
        keep_daily = KEEP_DAILY,
        keep_weekly = KEEP_WEEKLY,
        keep_pre_restore = KEEP_PRE_RESTORE,
        diff_backups = DIFF_BACKUPS,
        busy_timeout_seconds = BUSY_TIMEOUT_SECONDS,
        lock_timeout_seconds = LOCK_TIMEOUT_SECONDS,
        term_grace_seconds = TERM_GRACE_SECONDS,
        threads = THREADS,
        remote_max_backups = REMOTE_MAX_BACKUPS,
        remote_timeout_seconds = REMOTE_TIMEOUT_SECONDS,
        min_count = MIN_COUNT,
    );
    read_as!(Real -> f64:
        min_interval_hours = MIN_INTERVAL_HOURS,
        max_shrink = MAX_SHRINK,
    );

    /// `check.max_age`: a duration (a bare number is seconds).
    pub(super) fn max_age<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_any(Unit {
            what: "a duration (90s, 30m, 24h, 7d, 2w)",
            parse: crate::units::parse_duration,
        })
    }

    /// `check.min_free`: a size with a unit (a bare number other than 0 is refused).
    pub(super) fn min_free<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(Unit {
            what: "a size (500M, 1G)",
            parse: crate::units::parse_size,
        })
    }

    /// `mirror_dirs`: a list of paths, or one path written alone. A visitor, not an
    /// either-or (untagged) enum: that one judges a copy of the value and its error
    /// loses the value's line.
    pub(super) fn mirror_dirs<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<std::path::PathBuf>>, D::Error> {
        d.deserialize_any(Dirs)
    }

    struct Dirs;

    impl<'de> Visitor<'de> for Dirs {
        type Value = Option<Vec<std::path::PathBuf>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a path or a list of paths (- path)")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![v.into()]))
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut dirs = Vec::new();
            while let Some(dir) = seq.next_element::<std::path::PathBuf>()? {
                dirs.push(dir);
            }
            Ok(Some(dirs))
        }
    }

    /// A value with a unit, parsed by `units` as a flag's is.
    struct Unit<T> {
        what: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }

    impl<T> Visitor<'_> for Unit<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.what)
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
            (self.parse)(v).map(Some).map_err(E::custom)
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_u128<E: Error>(self, v: u128) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i128<E: Error>(self, v: i128) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
            self.visit_str(&number_text(v))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    /// An integer in range: `6.0` is refused as `--compression-level 6.0` is.
    struct Whole(Limit);

    impl Visitor<'_> for Whole {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(&self.0.expecting_whole())
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            self.0.check_whole(v.into()).map(Some).map_err(E::custom)
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            self.0.check_whole(v.into()).map(Some).map_err(E::custom)
        }
        // Past u64 (the YAML reader's own type, else): named by its digits.
        fn visit_i128<E: Error>(self, v: i128) -> Result<Self::Value, E> {
            self.0.check_whole(v).map(Some).map_err(E::custom)
        }
        fn visit_u128<E: Error>(self, v: u128) -> Result<Self::Value, E> {
            match i128::try_from(v) {
                Ok(v) => self.visit_i128(v),
                Err(_) => Err(E::custom(format!(
                    "must be {}, not {v}",
                    self.0.expecting_whole()
                ))),
            }
        }
        /// `05` is a string to YAML (1.1 read it as octal), and `'5'` is one:
        /// read as the flag reads its digits, so `05` is 5.
        fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
            self.0.parse_whole(v).map(Some).map_err(E::custom)
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
            // `6.0` and `1e3` are whole numbers written as decimals: what is
            // wrong is the form, so say the form that works ("not 1000.0"
            // named neither what was written nor what to write).
            if v.fract() == 0.0 && v.abs() < 1e16 {
                return Err(E::custom(format!(
                    "must be {} written in digits, such as {v:.0}",
                    self.0.expecting_whole()
                )));
            }
            Err(E::custom(format!(
                "must be {}, not {}",
                self.0.expecting_whole(),
                number_text(v)
            )))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    /// Any number in range.
    struct Real(Limit);

    impl Visitor<'_> for Real {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(&self.0.range())
        }
        #[allow(clippy::cast_precision_loss)] // the ranges are far inside f64's whole numbers
        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            self.0.check(v as f64).map(Some).map_err(E::custom)
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            self.0.check(v as f64).map(Some).map_err(E::custom)
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_u128<E: Error>(self, v: u128) -> Result<Self::Value, E> {
            self.0.check(v as f64).map(Some).map_err(E::custom)
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_i128<E: Error>(self, v: i128) -> Result<Self::Value, E> {
            self.0.check(v as f64).map(Some).map_err(E::custom)
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
            self.0.check(v).map(Some).map_err(E::custom)
        }
        /// `max_shrink: 50%` is a string to YAML: read as the flag reads it.
        fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
            self.0.parse(v).map(Some).map_err(E::custom)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
}
