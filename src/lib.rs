//! dbbackup: compressed, verified, online backups of SQLite databases, made to fit
//! SLURM batch work. `main.rs` parses arguments and calls [`run`].

pub mod archive;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod jobenv;
pub mod lock;
pub mod logging;
pub mod output;
pub mod retention;
pub mod signals;
pub mod snapshot;
pub mod store;
pub mod units;

use std::process::ExitCode;

use commands::{Ctx, Status};

/// Run a parsed command line; the one place errors are printed.
pub fn run(cli: cli::Cli) -> ExitCode {
    let job = jobenv::JobContext::from_env();
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
    match result {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Failure) => ExitCode::from(1),
        Err(error) => {
            tracing::error!("{error}");
            error.exit_code()
        }
    }
}
