//! The command line as clap sees it: the option groups of `options`, flattened,
//! and each command's own arguments. `config` turns the options, the environment
//! and the YAML file into validated `Settings`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Request;
pub use crate::options::{CheckOptions, Options};
pub use crate::output::Format;

mod usage;
pub use usage::{missing_subcommand, one_line, periodic_metrics_file};

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
    /// The long flags on the command line, to name a bad value's source.
    #[arg(skip)]
    pub given_longs: Vec<String>,
}

/// Every setting is a global flag, an environment variable and a config key
/// (`options`); `--quiet` and `-v` are for this run only.
#[derive(Debug, Default, Args)]
pub struct GlobalArgs {
    #[command(flatten)]
    pub options: Options,
    /// Nothing on stdout; errors still go to stderr
    #[arg(long, short, global = true, help_heading = crate::options::GLOBAL)]
    pub quiet: bool,
    /// More detail on stderr (-vv for even more)
    #[arg(long, short, global = true, help_heading = crate::options::GLOBAL, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// What `dbbackup` alone prints: the usage, the commands and where the options
/// are explained, without the option list of `--help`.
pub fn overview() -> String {
    use clap::CommandFactory;
    let mut command = Cli::command().help_template(
        "{about}\n\n{usage-heading} {usage}\n\nCommands:\n{subcommands}\n\n\
         'dbbackup --help' lists the options; 'dbbackup help COMMAND' explains a command.\n",
    );
    command.render_help().to_string()
}

impl Cli {
    /// This process's command line, as `Parser::try_parse` reads it, except that
    /// an empty `DBBACKUP_*` variable counts as unset (`VAR=` is how shells and
    /// job scripts clear a setting, and it should not break every command), and
    /// so does one whose flag is given.
    pub fn try_parse_ignoring_empty_env() -> Result<Cli, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        let args: Vec<OsString> = std::env::args_os().collect();
        let own = usage::own_words(&Cli::command(), &args);
        usage::refuse_option_as_value(&Cli::command(), &own)?;
        let given_longs = usage::given_longs(&own);
        let command = without_unused_env(help_command(), &given_longs);
        let mut matches = command.try_get_matches_from(args)?;
        let mut cli =
            Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut Cli::command()))?;
        // An empty DBBACKUP_MIRROR_DIRS element is dropped (`request`), an
        // empty flag value refused, as `--db-path ''` is.
        let empty_mirror = cli
            .global
            .options
            .mirror_dirs
            .iter()
            .flatten()
            .any(|d| d.as_os_str().is_empty());
        if empty_mirror && given_longs.iter().any(|long| long == "mirror-dir") {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                "invalid value '' for '--mirror-dir <DIR>': a mirror directory must not be empty ('' or a stray ':')\n",
            )
            .format(&mut Cli::command()));
        }
        // `list --remote URL`, `verify --remote URL` (the spec's spelling) are of
        // the remote: as a plain setting they listed and verified the backup
        // directory, and said ok without asking the store.
        if given_longs.iter().any(|long| long == "remote") {
            match &mut cli.command {
                Command::List(args) if args.job.is_none() => args.from_remote = true,
                Command::Verify(args) if args.names.is_empty() && !args.all => {
                    args.from_remote = true;
                }
                _ => {}
            }
        }
        cli.given_longs = given_longs;
        // Every command that judges health reads the `DBBACKUP_CHECK_*`
        // thresholds (`check` through its own flags), and refuses a bad one.
        if matches!(
            cli.command,
            Command::Init(_) | Command::Periodic(_) | Command::Summary(_)
        ) {
            cli.global.options.check = check_from_environment()?;
        }
        Ok(cli)
    }

    /// The settings this command line gives, the command's own folded in, so
    /// that `config::resolve` merges them all once, before dispatch.
    pub fn request(&self) -> Request {
        let mut flags = self.global.options.clone();
        // `DBBACKUP_MIRROR_DIRS=m:` or `=:`: empty elements name no directory.
        if let Some(dirs) = &mut flags.mirror_dirs {
            dirs.retain(|dir| !dir.as_os_str().is_empty());
            if dirs.is_empty() {
                flags.mirror_dirs = None;
            }
        }
        let mut written_config = None;
        let mut given_longs = self.given_longs.clone();
        let init = matches!(self.command, Command::Init(_));
        match &self.command {
            Command::Check(args) => flags.check = Some(args.thresholds.clone()),
            // `summary --log` is summary_log for this run.
            Command::Summary(SummaryArgs { log: Some(log), .. }) => {
                flags.summary_log = Some(log.clone());
                given_longs.push("summary-log".into());
            }
            Command::Init(args) if args.slurm => written_config = Some(args.path.clone()),
            _ => {}
        }
        Request {
            flags,
            quiet: self.global.quiet,
            written_config,
            init,
            given_longs,
            // `templates` says it in its own words, about the jobs it writes.
            project_above_said: matches!(self.command, Command::Templates(_)),
        }
    }
}

/// The command line, the shared settings hidden from the help of the commands
/// they do nothing for (`completions`, `man`, `lock`): still accepted there, as
/// everywhere, but not listed as if they mattered.
fn help_command() -> clap::Command {
    use clap::CommandFactory;
    fn hide_settings(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| {
                let heading = arg.get_help_heading();
                if heading == Some(crate::options::BACKUP)
                    || heading == Some(crate::options::RETENTION)
                    || heading == Some(crate::options::REMOTE)
                {
                    arg.hide(true)
                } else {
                    arg
                }
            })
            .mut_subcommands(hide_settings)
    }
    // Built first: the global settings are copied into each command then.
    let mut command = Cli::command();
    command.build();
    for name in ["completions", "man", "lock"] {
        command = command.mut_subcommand(name, hide_settings);
    }
    command
}

/// `DBBACKUP_*` variables that are none of dbbackup's settings: a misspelled
/// variable would else be ignored without a word. Each is named, with the
/// variable meant where one is close (`DBBACKUP_MAX_BACKUP`) or has the name as
/// a part (`DBBACKUP_MAX_AGE`). The names of `OTHER_VARIABLES` are left alone,
/// and none fails the command.
pub fn unknown_variables() -> Vec<String> {
    use clap::CommandFactory;
    fn collect(command: &clap::Command, names: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
                names.extend(name.strip_prefix(PREFIX).map(str::to_string));
            }
        }
        for sub in command.get_subcommands() {
            collect(sub, names);
        }
    }
    const PREFIX: &str = "DBBACKUP_";
    let mut known = vec![
        crate::snapshot_copy::FORCE_ENV[PREFIX.len()..].to_string(),
        crate::archive::CORES_ENV[PREFIX.len()..].to_string(),
    ];
    collect(&Cli::command(), &mut known);
    collect(
        &CheckOptions::augment_args(clap::Command::new("check")),
        &mut known,
    );
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter_map(|name| {
            let suffix = name.strip_prefix(PREFIX)?;
            if known.iter().any(|k| k == suffix) || OTHER_VARIABLES.contains(&suffix) {
                return None;
            }
            let meant = crate::spelling::closest(suffix, &known)
                .or_else(|| part_of(suffix, &known))
                .map(|close| format!(" (did you mean {PREFIX}{close}?)"))
                .unwrap_or_default();
            Some(format!("{name} is not a dbbackup variable{meant}; ignored"))
        })
        .collect();
    unknown.sort();
    unknown
}

/// `DBBACKUP_*` variables that are not settings of the binary and are not
/// warned about (README, "variables of the test suite"): the SLURM templates'
/// and hooks shim's, and those of the test suite, benches, CI and packaging,
/// which a developer's shell exports while every test runs the binary.
const OTHER_VARIABLES: &[&str] = &[
    // slurm/job_array.sbatch, slurm/hooks/dbbackup_hooks.sh
    "FINAL",
    "FINAL_SCRIPT",
    // tests/, .ci/run, python/tests, packaging/, benches/, slurm/dev/
    "QUICK",
    "MOTO_SERVER",
    "REQUIRE_TOOLS",
    "REQUIRE_SLURM",
    "STRESS_SECONDS",
    "FUZZ_CASES",
    "CRASH_RUNS",
    "EXPECT_WHEEL",
    "BUILD_VENV",
    "BIN",
    "TEST_CPUS",
];

/// The known name `suffix` is a whole part of (`MAX_AGE` of `CHECK_MAX_AGE`,
/// `MIRROR` of `MIRROR_DIRS`, `DIR` of `BACKUP_DIR`), the shortest: a guess
/// from the setting's name that is no misspelling, and was ignored silently
/// (`DBBACKUP_MAX_AGE=1s dbbackup check` said OK).
fn part_of<'a>(suffix: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .filter(|k| {
            k.starts_with(&format!("{suffix}_"))
                || k.ends_with(&format!("_{suffix}"))
                || k.contains(&format!("_{suffix}_"))
        })
        .map(String::as_str)
        .min_by_key(|k| k.len())
}

/// The `check` thresholds the `DBBACKUP_CHECK_*` variables set, read by
/// `check`'s own parsers: `init` writes them too, and `periodic` and `summary`
/// judge health by them, though they are not their flags.
fn check_from_environment() -> Result<Option<CheckOptions>, clap::Error> {
    use clap::FromArgMatches;
    let mut command =
        without_unused_env(CheckOptions::augment_args(clap::Command::new("check")), &[]);
    let mut matches = command.try_get_matches_from_mut(["check"])?;
    let check =
        CheckOptions::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))?;
    let given = check.max_age.is_some()
        || check.min_count.is_some()
        || check.max_shrink.is_some()
        || check.min_free.is_some()
        || check.remote_max_age.is_some();
    Ok(given.then_some(check))
}

/// Every argument of `command` and its subcommands, minus the environment
/// variable of those whose variable is set but empty, or that the command line
/// gives (`given`: long names): the flag wins, so a bad value in the variable
/// it overrides is not an error either.
fn without_unused_env(command: clap::Command, given: &[String]) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .is_some_and(|name| std::env::var_os(name).is_some_and(|v| v.is_empty()));
            let overridden = arg
                .get_long()
                .is_some_and(|long| given.iter().any(|g| g == long));
            if empty || overridden {
                arg.env(None::<&'static str>)
            } else {
                arg
            }
        })
        .mut_subcommands(|sub| without_unused_env(sub, given))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a backup now (skips when the database is unchanged, unless --force)
    #[command(after_help = "Examples:\n  dbbackup backup\n  dbbackup backup --force --format json")]
    Backup(BackupArgs),
    /// Show the backups, newest first
    #[command(
        after_help = "Examples:\n  dbbackup list\n  dbbackup list --format json | jq '.[0].name'\n  dbbackup list --job 264"
    )]
    List(ListArgs),
    /// Restore a backup into the database path (or --target)
    #[command(
        override_usage = "dbbackup restore [OPTIONS] <NAME>\n       dbbackup restore [OPTIONS] --before-job <JOBID>",
        after_help = "Examples:\n  dbbackup restore latest\n  dbbackup restore backup_20250909_093708.db.gz --target test.db\n  dbbackup restore latest --if-db-missing\n  dbbackup restore --before-job 264"
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
    /// Fully decompress and check backups (default: the newest; exit 1 if any is damaged)
    #[command(
        after_help = "`latest` is the backup `restore latest` would use; a newer one it passes over as\ndamaged is reported FAILED (exit 1). With --all, failed snapshots (.failed.db.gz,\nknown-failed attempts kept for inspection, not restore points) are reported but\ndo not make verify exit 1.\n\nExamples:\n  dbbackup verify\n  dbbackup verify --all"
    )]
    Verify(VerifyArgs),
    /// Apply retention now
    #[command(after_help = "Example:\n  dbbackup prune --dry-run")]
    Prune(PruneArgs),
    /// Guarantee a restore point from before this job's work (once per array job)
    #[command(after_help = "Example (first lines of a job script):\n  dbbackup pre-job || exit 1")]
    PreJob(PreJobArgs),
    /// A job's work between pre-job and post-job, with SLURM's signals handled
    // In after_help, not long_about: a long about turns --help into the long layout.
    #[command(
        after_help = "Runs pre-job (a restore point from before the work), the work in its own process group with SLURM's TERM, INT, HUP, USR2 and CONT passed on to all of it, a backup on USR1 (#SBATCH --signal=B:USR1@N: the time limit is near), then post-job. Exits with the work's own status (128+N when signal N ended it). A failed backup only warns, unless --strict.\n\nExamples (the last line of a job script):\n  exec dbbackup run -- \"$@\"\n  exec dbbackup run --final-job slurm/final_backup.sbatch -- python3 sweep.py"
    )]
    Run(RunArgs),
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
    /// Copy restore points not yet on the remote (s3://...) there, then apply remote retention
    #[command(
        after_help = "Examples (from a login or transfer node that reaches the store):\n  dbbackup sync --remote s3://project-backups/results\n  17 * * * * cd /project && dbbackup sync --quiet"
    )]
    Sync(SyncArgs),
    /// Inspect the backup-directory lock
    #[command(after_help = "Example:\n  dbbackup lock status")]
    Lock(LockArgs),
    /// Health of the backup set, for monitoring (exit 0 healthy, 1 not)
    #[command(
        after_help = "Examples:\n  dbbackup check --max-age 12h --min-count 3\n  dbbackup check --format nagios"
    )]
    Check(CheckArgs),
    /// Append one line describing the backup set to the summary log
    #[command(
        after_help = "Exit 0 once the line is appended, whatever it says (`status=failed healthy=false`\nincluded); 1 if it cannot be. For a health exit code use `dbbackup check`.\n\nExamples:\n  dbbackup summary --summary-log slrm_logs/backup_summary.log\n  dbbackup summary --format json"
    )]
    Summary(SummaryArgs),
    /// Write the SLURM job templates (and the hooks shim), with your paths filled in
    #[command(after_help = "Example:\n  dbbackup templates --out slurm")]
    Templates(TemplatesArgs),
    /// Write a commented dbbackup.yaml to start from (and the SLURM templates with --slurm)
    #[command(
        after_help = "Every setting given on the command line or in a DBBACKUP_* variable is written into the file.\n\nExamples:\n  dbbackup --db-path results.db init\n  dbbackup --db-path results.db --max-backups 20 init --slurm"
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
    // `--out`: the word of the other commands that write a file (T27 F-B).
    #[arg(
        long,
        visible_alias = "out",
        allow_hyphen_values = true,
        value_name = "FILE",
        value_parser = crate::config::path_arg(),
        default_value = "dbbackup.yaml"
    )]
    pub path: PathBuf,
    /// Also write the SLURM templates
    #[arg(long)]
    pub slurm: bool,
    /// Directory for the SLURM templates
    #[arg(
        long,
        allow_hyphen_values = true,
        value_name = "DIR",
        value_parser = crate::config::path_arg(),
        default_value = "slurm"
    )]
    pub slurm_dir: PathBuf,
    /// Replace files that already exist
    // `--force` was this flag's name before `templates --overwrite` set the
    // vocabulary: kept, hidden, so that scripts written for it still work.
    #[arg(long, alias = "force")]
    pub overwrite: bool,
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
    #[arg(long, allow_hyphen_values = true, value_name = "DIR", value_parser = crate::config::path_arg())]
    pub out: Option<PathBuf>,
    /// Replace pages that already exist in --out
    #[arg(long, requires = "out")]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct PreJobArgs {
    /// In an array task: once per array, submit this script with
    /// `sbatch --dependency=afterany:<array>`, passing the array id (the final backup)
    #[arg(long, allow_hyphen_values = true, value_name = "SCRIPT", value_parser = crate::config::path_arg())]
    pub final_job: Option<PathBuf>,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// In an array task: once per array, submit this script with
    /// `sbatch --dependency=afterany:<array>`, passing the array id (the final backup)
    #[arg(long, allow_hyphen_values = true, value_name = "SCRIPT", value_parser = crate::config::path_arg())]
    pub final_job: Option<std::path::PathBuf>,
    /// A failed backup fails the job (exit 1 when the work succeeded; no work
    /// after a failed pre-job)
    #[arg(long, env = "DBBACKUP_STRICT", hide_env_values = true, value_parser = crate::units::parse_switch)]
    pub strict: bool,
    /// The work and its arguments (after `--` when they start with `-`)
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..
    )]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct FinalArgs {
    /// The array job whose tasks have all ended
    #[arg(value_name = "ARRAY_JOB_ID")]
    pub array_job_id: String,
    /// Back up and mark the array ended even while the scheduler reports tasks
    /// of it pending or running (their restore point is then no longer kept)
    #[arg(long)]
    pub force: bool,
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
    #[command(
        after_help = "Examples:\n  dbbackup lock status\n  dbbackup lock status --format json"
    )]
    Status(FormatArgs),
}

/// `--status`: an exit status as a shell's `$?` holds it (a signal is 128+N),
/// so anything outside 0-255 is a mistake in the job script.
fn exit_status(text: &str) -> Result<i32, String> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u8>() {
        Ok(status) if digits => Ok(i32::from(status)),
        _ => Err(format!(
            "'{text}' is not an exit status: a whole number from 0 to 255"
        )),
    }
}

#[derive(Debug, Args)]
pub struct PostJobArgs {
    /// The job's exit status (0-255, its `$?`), recorded in the summary line
    /// (without it: `exit_status=unknown`, and a warning)
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = exit_status)]
    pub status: Option<i32>,
    /// SLURM has sent TERM (for hand-written scripts; `run` handles it itself): finish within term_grace_seconds,
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
    #[arg(long, allow_hyphen_values = true, value_name = "PATH", value_parser = crate::config::path_arg())]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    #[default]
    Text,
    Json,
    // Plain comments, said in `--format`'s help: doc comments here would turn
    // `check --help` into the long layout.
    Nagios,
    Prometheus,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Merged over the file's `check:` by `config`.
    #[command(flatten)]
    pub thresholds: CheckOptions,
    /// Output format; nagios: a monitoring-plugins status line with perfdata, exit
    /// 0/1/2/3; prometheus: the text exposition format, exit 0 healthy, 1 not
    #[arg(long, value_enum, default_value_t)]
    pub format: CheckFormat,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    // Hidden: `--summary-log`, the setting's name everywhere, is the documented
    // one; `--log` stays for the scripts that use it.
    /// Append here instead of summary_log
    #[arg(long, hide = true, allow_hyphen_values = true, value_name = "PATH")]
    pub log: Option<PathBuf>,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// Directory to write the templates into (created if missing)
    #[arg(
        long,
        allow_hyphen_values = true,
        value_name = "DIR",
        value_parser = crate::config::path_arg(),
        default_value = "slurm"
    )]
    pub out: PathBuf,
    /// Replace files that already exist
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Accept as lost the proved restore points gone from the store (else every sync fails naming them)
    #[arg(long)]
    pub forget_missing: bool,
    #[command(flatten)]
    pub output: FormatArgs,
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
pub struct ListArgs {
    /// The restore points on the remote (`remote`), not in the backup directory
    /// (so does the `remote` setting given as a flag on this command line)
    #[arg(long, conflicts_with = "job")]
    pub from_remote: bool,
    /// Only what SLURM job JOBID made (`264`: the job or array and its tasks;
    /// `264_3`: one task, and its array's backups)
    #[arg(long, value_name = "JOBID")]
    pub job: Option<String>,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup file name from `dbbackup list`, or `latest`
    // Required, and so shown `<NAME>` in the usage and under Arguments alike:
    // clap lets a required argument be missing when one it conflicts with
    // (`--before-job`) is given.
    #[arg(required = true, value_parser = BackupRef::parse)]
    pub name: Option<BackupRef>,
    /// Undo SLURM job JOBID: restore the state from before its work (its
    /// pre-job restore point, else the newest one made before it started)
    #[arg(long, value_name = "JOBID", conflicts_with = "name")]
    pub before_job: Option<String>,
    /// Restore here instead of the database path
    #[arg(long, allow_hyphen_values = true, value_name = "PATH", value_parser = crate::config::path_arg())]
    pub target: Option<PathBuf>,
    /// Do nothing (exit 0) when the target exists (an empty, 0-byte file counts as missing)
    #[arg(long)]
    pub if_db_missing: bool,
    /// Replace a target that is not an SQLite database, restore another
    /// database's backup over this one, or undo (--before-job) a job that has
    /// not ended or backed up another database, or whose own restore point was
    /// deleted (what is replaced is saved first)
    #[arg(long)]
    pub force: bool,
    /// Run `PRAGMA integrity_check` on the restored copy even when its recorded
    /// checksum proves it is the snapshot that passed its check (then
    /// `quick_check` is run)
    #[arg(long)]
    pub full_check: bool,
    /// Take the backup from the remote (`remote`), downloaded and checked first
    #[arg(long, conflicts_with = "before_job")]
    pub from_remote: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A backup file name from `dbbackup list`, or `latest` (default: latest,
    /// as for `verify`; only `restore`, which replaces the database, needs it)
    #[arg(value_parser = BackupRef::parse, default_value = BackupRef::LATEST, hide_default_value = true)]
    pub name: BackupRef,
    /// The .db.gz file to write (must not exist)
    #[arg(long, allow_hyphen_values = true, value_name = "FILE", value_parser = crate::config::path_arg())]
    pub out: PathBuf,
    /// Take the backup from the remote (`remote`), downloaded and checked first
    #[arg(long)]
    pub from_remote: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Where the database was before it moved (as recorded in `dbbackup list`)
    #[arg(value_name = "OLD_PATH", value_parser = crate::config::path_arg())]
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
    /// Backup file names from `dbbackup list`, or `latest` (default: latest)
    #[arg(value_name = "NAME", value_parser = BackupRef::parse)]
    pub names: Vec<BackupRef>,
    /// Verify every backup
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// The restore points on the remote (`remote`) instead: the NAMEs given,
    /// else every one (`--all` says the same); each downloaded, size and
    /// SHA-256 against its record, then checked whole as a local one
    /// (so does the `remote` setting given as a flag here, without NAMEs)
    #[arg(long)]
    pub from_remote: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

/// A backup as every command that takes one names it: `latest` (the newest
/// restore point, as `restore latest` picks it) or a file name from `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupRef {
    Latest,
    Named(String),
}

impl BackupRef {
    pub const LATEST: &'static str = "latest";

    /// The name as the restore and export engines take it.
    pub fn as_str(&self) -> &str {
        match self {
            BackupRef::Latest => Self::LATEST,
            BackupRef::Named(name) => name,
        }
    }

    #[allow(clippy::unnecessary_wraps)] // clap's value parser signature
    fn parse(text: &str) -> Result<BackupRef, String> {
        Ok(if text == Self::LATEST {
            BackupRef::Latest
        } else {
            BackupRef::Named(text.to_string())
        })
    }
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Say what would be deleted, delete nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}
