//! dbbackup: compressed, verified, online backups of SQLite databases, made to fit
//! SLURM batch work. `main.rs` parses arguments and calls [`run`].

pub mod archive;
pub mod cli;
pub mod commands;
pub mod config;
pub mod create;
pub mod diff;
pub mod error;
pub mod export;
pub mod health;
pub mod limits;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod mirror;
pub mod output;
pub mod progress;
pub mod quota;
pub mod restore;
pub mod retention;
pub mod signals;
pub mod slurm;
pub mod snapshot;
pub mod snapshot_copy;
pub mod sqlite_file;
pub mod store;
pub mod summary_log;
pub mod units;

use std::process::ExitCode;

use commands::{Ctx, Status};

/// Run a parsed command line; the one place errors are printed.
pub fn run(cli: cli::Cli) -> ExitCode {
    let job = slurm::job::JobContext::from_env();
    logging::init(&job, cli.global.quiet, cli.global.verbose);
    signals::install();
    let result = config::resolve(&cli.global).and_then(|settings| {
        let ctx = Ctx {
            settings,
            job,
            quiet: cli.global.quiet,
        };
        commands::dispatch(&cli.command, &ctx)
    });
    let nagios = matches!(&cli.command, cli::Command::Check(args) if args.format == cli::CheckFormat::Nagios);
    match result {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Failure) => ExitCode::from(1),
        Ok(Status::Code(code)) => ExitCode::from(code),
        Err(error) => {
            tracing::error!("{error}");
            if nagios {
                ExitCode::from(commands::check::nagios_unknown(&error.to_string()))
            } else {
                error.exit_code()
            }
        }
    }
}

/// Print a command-line parsing error (or help/version) the way clap does, except
/// that `check --format nagios` reports bad arguments as UNKNOWN (exit 3).
pub fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    // Help asked for goes to stdout; help because the subcommand is missing is a
    // usage error: stderr, exit 2.
    let is_help = matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    let args: Vec<String> = std::env::args().collect();
    let nagios = args.iter().any(|a| a == "check")
        && args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "nagios" || w[1] == "--format=nagios");
    if nagios && !is_help {
        let first = error
            .to_string()
            .lines()
            .next()
            .unwrap_or("bad arguments")
            .trim_start_matches("error: ")
            .to_string();
        return ExitCode::from(commands::check::nagios_unknown(&first));
    }
    if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        eprint!("{}", error.render());
        return ExitCode::from(2);
    }
    let _ = error.print();
    ExitCode::from(if is_help { 0 } else { 2 })
}
