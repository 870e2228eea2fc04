//! `dbbackup templates --out DIR`: the SLURM templates and hooks shipped in `slurm/`,
//! written out for users who installed only the binary (see
//! [`crate::slurm::templates`]).

use std::path::Path;

use super::Ctx;
use crate::cli::{Cli, Command, TemplatesArgs};
use crate::config::Settings;
use crate::error::{Error, Result, show};
use crate::exit_code::ExitCode;
use crate::options::DEFAULT_CONFIG_FILE;
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
    if let Ok(project) = std::env::current_dir()
        && let Some(warning) = no_database(&ctx.settings, &project)
    {
        tracing::warn!("{warning}");
    }
    Ok(ExitCode::Success)
}

/// Why jobs from these templates would have no database, with what to do:
/// neither a config file nor `DBBACKUP_DB_PATH` gives one. The config is
/// looked for only in the directory a job is submitted from, so a
/// `dbbackup.yaml` in a parent directory (run from a project's
/// sub-directory) is named with where the job output would go instead.
fn no_database(settings: &Settings, project: &Path) -> Option<String> {
    if settings.db_path.is_some() {
        return None;
    }
    if let Some(config) = &settings.config_file {
        return Some(format!(
            "{} gives no db_path and DBBACKUP_DB_PATH is not set: the jobs would have no database; add db_path to it, or set DBBACKUP_DB_PATH in the job",
            show(&project.join(config))
        ));
    }
    let here = format!(
        "no {DEFAULT_CONFIG_FILE} in {} and no database given: the jobs would have no database",
        show(project)
    );
    let parent = project
        .ancestors()
        .skip(1)
        .find(|dir| dir.join(DEFAULT_CONFIG_FILE).symlink_metadata().is_ok());
    Some(match parent {
        Some(parent) => format!(
            "{here}, and their output would go to {}; {} is not read from here (dbbackup reads the current directory's): run `dbbackup templates` in {} for that project, or set DBBACKUP_CONFIG or DBBACKUP_DB_PATH in the job",
            show(&project.join("slrm_logs")),
            show(&parent.join(DEFAULT_CONFIG_FILE)),
            show(parent)
        ),
        None => format!(
            "{here}; run `dbbackup --db-path DATABASE init --slurm` here (it writes {DEFAULT_CONFIG_FILE} and the templates naming it), or set DBBACKUP_CONFIG or DBBACKUP_DB_PATH in the job"
        ),
    })
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
