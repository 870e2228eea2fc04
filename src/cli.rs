//! The command line as clap sees it. Only raw values live here; `config` turns
//! them, the environment and the YAML file into validated `Settings`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dbbackup",
    version,
    about = "Compressed, verified, online backups of SQLite results databases on SLURM clusters",
    after_help = "Examples:\n  dbbackup --db-path results.db backup\n  dbbackup list\n  dbbackup restore latest --target restored.db"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Every setting is a global flag, an environment variable and a config key.
#[derive(Debug, Default, Args)]
pub struct GlobalArgs {
    /// The SQLite database to back up
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_DB_PATH",
        value_name = "PATH"
    )]
    pub db_path: Option<PathBuf>,
    /// Where backups go [default: outputs/db_backups]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_BACKUP_DIR",
        value_name = "DIR"
    )]
    pub backup_dir: Option<PathBuf>,
    /// YAML configuration file [default: ./dbbackup.yaml if present]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// gzip level 1-9 [default: 6]
    #[arg(long, global = true, hide_env_values = true, env = "DBBACKUP_COMPRESSION_LEVEL", value_name = "N",
          allow_negative_numbers = true, value_parser = crate::limits::parse::compression_level)]
    pub compression_level: Option<u32>,
    /// Keep this many newest good backups [default: 10]
    #[arg(long, global = true, hide_env_values = true, env = "DBBACKUP_MAX_BACKUPS", value_name = "N",
          allow_negative_numbers = true, value_parser = crate::limits::parse::max_backups)]
    pub max_backups: Option<u32>,
    /// Also keep the newest backup of each of the last N days [default: 0]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_KEEP_DAILY",
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = crate::limits::parse::keep_daily
    )]
    pub keep_daily: Option<u32>,
    /// Also keep the newest backup of each of the last N weeks [default: 0]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_KEEP_WEEKLY",
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = crate::limits::parse::keep_weekly
    )]
    pub keep_weekly: Option<u32>,
    /// Keep this many newest pre-restore copies (undo of a restore) [default: 3]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_KEEP_PRE_RESTORE",
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = crate::limits::parse::keep_pre_restore
    )]
    pub keep_pre_restore: Option<u32>,
    /// After each full backup, make up to N differential backups (changed pages only) [default: 0]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_DIFF_BACKUPS",
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = crate::limits::parse::diff_backups
    )]
    pub diff_backups: Option<u32>,
    /// `auto` makes at most one backup per this many hours [default: 1]
    #[arg(long, global = true, hide_env_values = true, env = "DBBACKUP_MIN_INTERVAL_HOURS", value_name = "HOURS",
          allow_negative_numbers = true, value_parser = crate::limits::parse::min_interval_hours)]
    pub min_interval_hours: Option<f64>,
    /// Where summary lines are appended [default: slrm_logs/backup_summary.log]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_SUMMARY_LOG",
        value_name = "PATH"
    )]
    pub summary_log: Option<PathBuf>,
    /// Extra directory that receives a copy of each backup (repeatable)
    #[arg(
        long = "mirror-dir",
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_MIRROR_DIRS",
        value_delimiter = ':',
        value_name = "DIR"
    )]
    pub mirror_dirs: Vec<PathBuf>,
    /// How long to wait for a database locked by a writer [default: 30]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_BUSY_TIMEOUT_SECONDS",
        value_name = "SECONDS",
        allow_negative_numbers = true,
        value_parser = crate::limits::parse::busy_timeout_seconds
    )]
    pub busy_timeout_seconds: Option<u64>,
    /// How long to wait for another dbbackup holding the backup-dir lock [default: 600]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_LOCK_TIMEOUT_SECONDS",
        value_name = "SECONDS",
        allow_negative_numbers = true,
        value_parser = crate::limits::parse::lock_timeout_seconds
    )]
    pub lock_timeout_seconds: Option<u64>,
    /// After SLURM's TERM, post-job gives up after this many seconds [default: 20]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_TERM_GRACE_SECONDS",
        value_name = "SECONDS",
        allow_negative_numbers = true,
        value_parser = crate::limits::parse::term_grace_seconds
    )]
    pub term_grace_seconds: Option<u64>,
    /// Compression threads; 0 = the cores this process may use [default: 0]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        env = "DBBACKUP_THREADS",
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = crate::limits::parse::threads
    )]
    pub threads: Option<u32>,
    /// Nothing on stdout; errors still go to stderr
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More detail on stderr (-vv for even more)
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a backup now (skips when the database is unchanged, unless --force)
    #[command(after_help = "Examples:\n  dbbackup backup\n  dbbackup backup --force --format json")]
    Backup(BackupArgs),
    /// Show the backups, newest first
    #[command(
        after_help = "Examples:\n  dbbackup list\n  dbbackup list --format json | jq '.[0].name'"
    )]
    List(FormatArgs),
    /// Restore a backup into the database path (or --target)
    #[command(
        after_help = "Examples:\n  dbbackup restore latest\n  dbbackup restore backup_20250909_093708.db.gz --target test.db\n  dbbackup restore latest --if-db-missing"
    )]
    Restore(RestoreArgs),
    /// Write any restore point (a diff rebuilt on its base) as a plain full .db.gz
    #[command(
        after_help = "Examples:\n  dbbackup export latest --out results-copy.db.gz\n  dbbackup export backup_20250909_093708.diff.gz --out /archive/results.db.gz\n  gzip -dc results-copy.db.gz > results-copy.db"
    )]
    Export(ExportArgs),
    /// Claim the backups recorded under the database's old path, after the project moved
    #[command(
        after_help = "Example (the project moved from /scratch/old/proj to here):\n  dbbackup adopt /scratch/old/proj/results.db --dry-run\n  dbbackup adopt /scratch/old/proj/results.db"
    )]
    Adopt(AdoptArgs),
    /// Back up only if the newest backup is older than the interval and the database changed
    #[command(after_help = "Example (in a job script or cron):\n  dbbackup auto --quiet")]
    Auto(FormatArgs),
    /// Fully decompress and check backups (default: the newest)
    #[command(after_help = "Examples:\n  dbbackup verify\n  dbbackup verify --all")]
    Verify(VerifyArgs),
    /// Apply retention now
    #[command(after_help = "Example:\n  dbbackup prune --dry-run")]
    Prune(PruneArgs),
    /// Guarantee a restore point from before this job's work (once per array job)
    #[command(after_help = "Example (first lines of a job script):\n  dbbackup pre-job || exit 1")]
    PreJob(PreJobArgs),
    /// After the work: back up (last array task, or interval passed) and log the job's exit status
    #[command(
        after_help = "Example (last lines of a job script):\n  status=$?\n  dbbackup post-job --status \"$status\""
    )]
    PostJob(PostJobArgs),
    /// After an array's tasks all ended: log their states, make the `final` backup
    #[command(
        after_help = "Example (slurm/final_backup.sbatch, submitted with --dependency=afterany:<array>):\n  dbbackup final \"$ARRAY_JOB_ID\""
    )]
    Final(FinalArgs),
    /// For scrontab or cron: auto, retention and check in one quiet run
    #[command(
        after_help = "Examples (crontab):\n  17 */6 * * * cd /project && dbbackup periodic\n  */5 * * * * cd /project && dbbackup periodic --metrics-file /var/lib/node_exporter/dbbackup.prom"
    )]
    Periodic(PeriodicArgs),
    /// Inspect the backup-directory lock
    #[command(after_help = "Example:\n  dbbackup lock status")]
    Lock(LockArgs),
    /// Health of the backup set, for monitoring (exit 0 healthy, 1 not)
    #[command(
        after_help = "Examples:\n  dbbackup check --max-age 12h --min-count 3\n  dbbackup check --format nagios"
    )]
    Check(CheckArgs),
    /// Append one line describing the backup set to the summary log
    #[command(after_help = "Example:\n  dbbackup summary --log slrm_logs/backup_summary.log")]
    Summary(SummaryArgs),
    /// Write the SLURM job templates and shell hooks, with your paths filled in
    #[command(after_help = "Example:\n  dbbackup templates --out slurm")]
    Templates(TemplatesArgs),
    /// Write a commented dbbackup.yaml to start from (and the SLURM templates with --slurm)
    #[command(
        after_help = "Examples:\n  dbbackup --db-path results.db init\n  dbbackup --db-path results.db init --slurm"
    )]
    Init(InitArgs),
    /// Print shell completions
    #[command(
        after_help = "Examples:\n  dbbackup completions bash > ~/.local/share/bash-completion/completions/dbbackup\n  dbbackup completions zsh > ~/.zfunc/_dbbackup\n  dbbackup completions fish > ~/.config/fish/completions/dbbackup.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page, or write one per command into a directory
    #[command(
        after_help = "Examples:\n  dbbackup man | man -l -\n  dbbackup man --out ~/.local/share/man/man1"
    )]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the configuration
    #[arg(long, value_name = "FILE", default_value = "dbbackup.yaml")]
    pub path: PathBuf,
    /// Also write the SLURM templates and hooks
    #[arg(long)]
    pub slurm: bool,
    /// Directory for the SLURM templates
    #[arg(long, value_name = "DIR", default_value = "slurm")]
    pub slurm_dir: PathBuf,
    /// Replace files that already exist
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write dbbackup.1 and dbbackup-COMMAND.1 here instead of printing dbbackup.1
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PreJobArgs {
    /// In an array task: once per array, submit this script with
    /// `sbatch --dependency=afterany:<array>`, passing the array id (the final backup)
    #[arg(long, value_name = "SCRIPT")]
    pub final_job: Option<PathBuf>,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct FinalArgs {
    /// The array job whose tasks have all ended
    #[arg(value_name = "ARRAY_JOB_ID")]
    pub array_job_id: String,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(subcommand)]
    pub command: LockCommand,
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds the backup-directory lock (host, pid, job, since) and, on this host, whether it is alive
    Status(FormatArgs),
}

#[derive(Debug, Args)]
pub struct PostJobArgs {
    /// The job's own exit status, recorded in the summary line
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub status: Option<i32>,
    /// SLURM has sent TERM (the hooks pass this): finish within term_grace_seconds,
    /// undisturbed by further TERMs, and do not count an array task as finished
    /// (it may be requeued)
    #[arg(long)]
    pub after_term: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct PeriodicArgs {
    /// Also write check's metrics here in the Prometheus text format, atomically
    /// (for node_exporter's textfile collector: a *.prom file in its directory)
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    #[default]
    Text,
    Json,
    /// monitoring-plugins: one status line with perfdata; exit 0/1/2/3
    Nagios,
    /// Prometheus text exposition format; exit 0 healthy, 1 not
    Prometheus,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Newest good backup at most this old (90s, 30m, 24h, 7d) [default: 24h]
    #[arg(long, value_parser = crate::units::parse_duration, value_name = "DURATION",
          allow_hyphen_values = true)]
    pub max_age: Option<std::time::Duration>,
    /// At least this many good backups [default: 1]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = crate::limits::parse::min_count)]
    pub min_count: Option<u32>,
    /// Newest may be at most this many percent smaller than the median of earlier ones [default: 50]
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true,
          value_parser = crate::limits::parse::max_shrink)]
    pub max_shrink: Option<f64>,
    /// At least this much free space where backups go (500M, 1G)
    #[arg(long, value_parser = crate::units::parse_size, value_name = "SIZE",
          allow_hyphen_values = true)]
    pub min_free: Option<u64>,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: CheckFormat,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Append here instead of summary_log
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// Directory to write the templates into (created if missing)
    #[arg(long, value_name = "DIR", default_value = "slurm")]
    pub out: PathBuf,
    /// Replace files that already exist
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Back up even when the database is unchanged since the newest backup
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup file name from `dbbackup list`, or `latest`
    pub name: String,
    /// Restore here instead of the database path
    #[arg(long, value_name = "PATH")]
    pub target: Option<PathBuf>,
    /// Do nothing (exit 0) when the target already exists
    #[arg(long)]
    pub if_db_missing: bool,
    /// Replace a target that is not an SQLite database, or restore another
    /// database's backup over this one (what is replaced is saved first)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A backup file name from `dbbackup list`, or `latest`
    pub name: String,
    /// The .db.gz file to write (must not exist)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Where the database was before it moved (as recorded in `dbbackup list`)
    #[arg(value_name = "OLD_PATH")]
    pub old_path: PathBuf,
    /// Say what would be adopted, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Adopt even though a file still exists at OLD_PATH
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Backup file names (default: the newest backup)
    pub names: Vec<String>,
    /// Verify every backup
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Say what would be deleted, delete nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}
