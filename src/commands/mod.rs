//! One module per subcommand: thin glue over the core modules.

pub mod auto;
pub mod backup;
pub mod list;
pub mod prune;
pub mod restore;
pub mod verify;

use crate::cli::Command;
use crate::config::Settings;
use crate::error::Result;
use crate::jobenv::JobContext;
use crate::store::BackupDir;

/// Everything a command needs.
pub struct Ctx {
    pub settings: Settings,
    pub job: JobContext,
    pub quiet: bool,
}

impl Ctx {
    pub fn backup_dir(&self) -> BackupDir {
        BackupDir::new(&self.settings.backup_dir)
    }

    pub fn output(&self, format: crate::cli::Format) -> crate::output::Output {
        crate::output::Output {
            quiet: self.quiet,
            format,
        }
    }
}

/// How a command that ran to the end came out: exit 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
}

pub fn dispatch(command: &Command, ctx: &Ctx) -> Result<Status> {
    match command {
        Command::Backup(args) => backup::run(ctx, args),
        Command::List(args) => list::run(ctx, args),
        Command::Restore(args) => restore::run(ctx, args),
        Command::Auto(args) => auto::run(ctx, args),
        Command::Verify(args) => verify::run(ctx, args),
        Command::Prune(args) => prune::run(ctx, args),
    }
}
