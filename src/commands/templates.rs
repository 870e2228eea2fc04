//! `dbbackup templates --out DIR`: the SLURM templates and hooks shipped in `slurm/`,
//! written out for users who installed only the binary (see
//! [`crate::slurm::templates`]).

use super::Ctx;
use crate::cli::TemplatesArgs;
use crate::error::Result;
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
