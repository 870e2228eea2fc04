//! `dbbackup templates --out DIR`: the SLURM templates and hooks shipped in `slurm/`,
//! written out for users who installed only the binary (see
//! [`crate::slurm::templates`]).

use super::Ctx;
use crate::cli::{Cli, Command, TemplatesArgs};
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::slurm::templates;

pub(crate) fn run(ctx: &Ctx, args: &TemplatesArgs) -> Result<ExitCode> {
    // Both are written into the templates as text (`final_backup.sbatch`'s
    // path, `#SBATCH` lines): refused before anything is written.
    crate::config::refuse_non_utf8("templates output directory", &args.out)?;
    if let Ok(project) = std::env::current_dir() {
        crate::config::refuse_non_utf8("project directory (the current directory)", &project)?;
    }
    let out = ctx.output(crate::cli::Format::Text);
    templates::write_all(&args.out, &ctx.settings, args.overwrite, |path| {
        out.line(format!("wrote {}", path.display()));
    })?;
    Ok(ExitCode::Success)
}

/// `templates` after a setting flag (`--db-path`, `--max-backups`, …): the job
/// scripts name only the config file, so a job would run without the setting
/// (and with no database, fail). Refused, pointing at `init`, which writes the
/// flags into a file the scripts then name. A `DBBACKUP_*` variable is not
/// refused: `sbatch` passes the submitting shell's environment to the job.
pub(crate) fn refuse_flag_settings(cli: &Cli) -> Result<()> {
    use clap::Args;
    if !matches!(cli.command, Command::Templates(_)) {
        return Ok(());
    }
    let options = crate::options::Options::augment_args(clap::Command::new("templates"));
    let given = options.get_arguments().find(|arg| {
        arg.get_env().is_some_and(|env| env != "DBBACKUP_CONFIG")
            && arg
                .get_long()
                .is_some_and(|long| cli.given_longs.iter().any(|given| given == long))
    });
    match given.and_then(clap::Arg::get_long) {
        Some(long) => Err(Error::usage(format!(
            "--{long} given on the command line is in no config file, so the job scripts would run without it: run `dbbackup --{long} … init --slurm` (it writes the file and the templates naming it), or add it to the config file, then `dbbackup templates`"
        ))),
        None => Ok(()),
    }
}
