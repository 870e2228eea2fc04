//! dbbackup: compressed, verified, online backups of SQLite databases, made to fit
//! SLURM batch work. `main.rs` parses arguments and calls [`run`].

mod archive;
mod attempts;
pub mod cli;
mod commands;
pub mod config;
mod create;
mod diff;
mod due;
pub mod error;
pub mod exit_code;
mod export;
mod health;
mod host;
mod limits;
mod lock;
mod logging;
mod man_page;
mod metrics;
mod mirror;
pub mod options;
mod output;
mod progress;
mod quota;
mod remote;
mod restore;
mod restored;
mod retention;
mod signals;
pub mod slurm;
mod snapshot;
mod snapshot_copy;
mod spelling;
mod sqlite_file;
pub mod store;
pub mod summary_log;
pub mod units;
mod verify;

use commands::Ctx;
use exit_code::ExitCode;

/// Stdout was closed when the process started (`main.rs` looks, before the
/// runtime reopens it on /dev/null): the first write fails with EBADF.
pub fn stdout_closed_at_start() {
    output::closed_at_start();
}

/// Run a parsed command line: settings first, then the command; the one place
/// errors are printed.
pub fn run(cli: cli::Cli) -> std::process::ExitCode {
    let job = slurm::job::JobContext::from_env();
    // From the flags themselves: a bad config file must be logged too.
    logging::init(&job, cli.global.quiet, cli.global.verbose);
    for unknown in cli::unknown_variables() {
        tracing::warn!("{unknown}");
    }
    if let Some(zone) = unknown_time_zone() {
        // Legacy names are read in this zone: a typo would shift them silently.
        tracing::warn!("TZ={zone} is not a known time zone; using UTC");
    }
    signals::install();
    let result = commands::templates::refuse_flag_settings(&cli)
        .and_then(|()| config::resolve(cli.request()))
        .and_then(|settings| commands::dispatch(&cli.command, &Ctx { settings, job }));
    let nagios = matches!(&cli.command, cli::Command::Check(args) if args.format == cli::CheckFormat::Nagios);
    let code = match result {
        // The report is what was asked for: lost (`> /dev/full`), the command
        // failed, said once. A command that failed anyway keeps its status.
        Ok(code) => match output::lost() {
            Some(why) => {
                // Done, only unreported: a script retrying on exit 1 would
                // make a second backup (T28 F23).
                tracing::error!(
                    "cannot write to stdout: {why}; the command itself was carried out, only its report is lost"
                );
                if nagios {
                    commands::report::nagios_unknown(&format!("cannot write to stdout: {why}"))
                } else if code == ExitCode::Success {
                    ExitCode::Failure
                } else {
                    code
                }
            }
            None => code,
        },
        Err(error) => {
            // Settings that cannot be resolved: the metrics file must not keep
            // saying healthy.
            if error.exit_code() == ExitCode::Usage
                && let cli::Command::Periodic(args) = &cli.command
                && let Some(path) = &args.metrics_file
            {
                metrics::write_unjudged(path);
            }
            let prometheus = matches!(&cli.command, cli::Command::Check(args) if args.format == cli::CheckFormat::Prometheus);
            if prometheus && !cli.global.quiet {
                // Nothing judged (bad settings, an unreadable directory): a
                // scrape (a script exporter) sees "unjudged", not nothing.
                let _ = output::write_stdout(metrics::UNJUDGED.as_bytes());
            }
            let json = matches!(&cli.command, cli::Command::Check(args) if args.format == cli::CheckFormat::Json);
            if json && !cli.global.quiet {
                // A JSON consumer gets a document it can read (docs/json.md),
                // not empty input.
                let document = serde_json::json!({"healthy": false, "error": error.to_string()});
                let _ = output::write_stdout(format!("{document}\n").as_bytes());
            }
            // A usage error (exit 2: the command line or the configuration) in
            // the one format of the command line's own, clap's; what went wrong
            // while working is a log line, with its time and job.
            let line = error.to_string();
            let line = error::escape_controls(&line);
            if error.exit_code() == ExitCode::Usage {
                to_stderr(format_args!("error: {}\n", error::elide_long_words(&line)));
            } else {
                tracing::error!("{}", error::elide_long_words(&line));
            }
            if nagios {
                commands::report::nagios_unknown(&error.to_string())
            } else {
                error.exit_code()
            }
        }
    };
    // Cleanup is done and the message printed: die of the signal, as asked.
    if let ExitCode::Signal(signal) = code {
        signals::die_of(signal);
    }
    code.into()
}

/// `TZ` when it is set but names no time zone jiff can load (it then uses
/// UTC). Unset `TZ` with no `/etc/localtime` is UTC too, but that is the
/// system's setting, not a typo.
fn unknown_time_zone() -> Option<String> {
    let zone = std::env::var_os("TZ")?;
    if zone.is_empty() || jiff::tz::TimeZone::try_system().is_ok() {
        return None;
    }
    Some(zone.to_string_lossy().into_owned())
}

/// Print a command-line parsing error in one line (help and version as clap
/// prints them); `check --format nagios` reports bad arguments as UNKNOWN (exit 3).
pub fn usage_error(error: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    // Help asked for goes to stdout; help because the subcommand is missing is a
    // usage error: stderr, exit 2.
    let is_help = matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    // `args()` panics on an argument that is not UTF-8: the error may be about one.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let nagios = args.iter().any(|a| a == "check")
        && args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "nagios" || w[1] == "--format=nagios");
    if nagios && !is_help {
        return commands::report::nagios_unknown(&cli::one_line(&error)).into();
    }
    // As for settings that cannot be resolved (`run`): a broken cron line's
    // metrics file must not keep saying healthy.
    if !is_help
        && let Some(path) = cli::periodic_metrics_file(&std::env::args_os().collect::<Vec<_>>())
    {
        metrics::write_unjudged(&path);
    }
    // No command at all: what there is to choose from, with the usage.
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
    ) {
        // A command's own subcommand left out (`lock`), or a command after
        // options (`dbbackup -q`): one line, as any usage error.
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let top_level = error.kind() == ErrorKind::MissingSubcommand;
        if let Some(line) = cli::missing_subcommand(&args, top_level) {
            to_stderr(format_args!("error: {}\n", error::elide_long_words(&line)));
            return ExitCode::Usage.into();
        }
        // Nothing typed: the commands to choose from and where the rest is,
        // on stdout (`dbbackup | less`); the full help is 90 lines of options.
        // `print!` panics on a closed stdout: the exit code stays the usage error's.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), cli::overview().as_bytes());
        return ExitCode::Usage.into();
    }
    if is_help {
        // Through the one writer of stdout, so that help lost (`> /dev/full`,
        // `>&-`) fails as every report does (T30 F1); a terminal keeps clap's
        // colours.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            let _ = error.print();
            return ExitCode::Success.into();
        }
        return match output::write_stdout(error.render().to_string().as_bytes()) {
            Ok(()) => ExitCode::Success.into(),
            Err(why) => {
                to_stderr(format_args!("error: cannot write to stdout: {why}\n"));
                ExitCode::Failure.into()
            }
        };
    }
    // One line per bad input, as every other error (`cli::one_line`).
    let line = cli::one_line(&error);
    let line = error::escape_controls(&line);
    to_stderr(format_args!("error: {}\n", error::elide_long_words(&line)));
    ExitCode::Usage.into()
}

/// Write to stderr, ignoring failure: `eprint!` panics when stderr is a closed
/// pipe or a full disk (a job's output file), and the exit code must stay the
/// command's own.
fn to_stderr(text: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(std::io::stderr(), "{text}");
}
