//! `dbbackup init [--slurm]`: a commented `dbbackup.yaml` to start from, and on
//! request the SLURM templates with the user's paths filled in.

use std::fs;
use std::path::Path;

use super::{Ctx, Status};
use crate::cli::{InitArgs, TemplatesArgs};
use crate::error::{Context, Error, Result, show};

const EXAMPLE: &str = include_str!("../../examples/dbbackup.yaml");

pub fn run(ctx: &Ctx, args: &InitArgs) -> Result<Status> {
    let out = ctx.output(crate::cli::Format::Text);
    if args.path.exists() && !args.force {
        return Err(Error::failed(format!(
            "{} exists; use --force to replace it",
            show(&args.path)
        )));
    }
    let text = fill(EXAMPLE, ctx.settings.db_path.as_deref());
    if let Some(parent) = args.path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).context(|| format!("cannot create {}", show(parent)))?;
    }
    fs::write(&args.path, text).context(|| format!("cannot write {}", show(&args.path)))?;
    out.line(format!("wrote {}", args.path.display()));
    if args.slurm {
        let mut settings = ctx.settings.clone();
        settings.config_file = Some(args.path.clone());
        let ctx = Ctx {
            settings,
            job: ctx.job.clone(),
            quiet: ctx.quiet,
        };
        super::templates::run(
            &ctx,
            &TemplatesArgs {
                out: args.slurm_dir.clone(),
                overwrite: args.force,
            },
        )?;
    }
    out.line("next: edit it, then `dbbackup backup` and `dbbackup list`");
    Ok(Status::Success)
}

/// The example with `db_path` set to the given database, if any.
fn fill(example: &str, db_path: Option<&Path>) -> String {
    match db_path {
        Some(db) => example.replace(
            "db_path: results.db",
            &format!(
                "db_path: {}",
                crate::summary_log::escape(&db.display().to_string())
            ),
        ),
        None => example.to_string(),
    }
}
