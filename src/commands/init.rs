//! `dbbackup init [--slurm]`: a commented `dbbackup.yaml` to start from, and on
//! request the SLURM templates with the user's paths filled in.

use std::fs;
use std::path::Path;

use super::Ctx;
use crate::cli::InitArgs;
use crate::error::{Context, Error, Result, show};
use crate::exit_code::ExitCode;

const EXAMPLE: &str = include_str!("../../examples/dbbackup.yaml");

pub(crate) fn run(ctx: &Ctx, args: &InitArgs) -> Result<ExitCode> {
    let out = ctx.output(crate::cli::Format::Text);
    // Written into the templates as text: refused before anything is written.
    crate::config::refuse_non_utf8("configuration file", &args.path)?;
    if args.slurm {
        crate::config::refuse_non_utf8("SLURM template directory", &args.slurm_dir)?;
    }
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
        // The jobs read the config just written.
        let settings = crate::config::Settings {
            config_file: Some(args.path.clone()),
            ..ctx.settings.clone()
        };
        crate::slurm::templates::write_all(&args.slurm_dir, &settings, args.force, |path| {
            out.line(format!("wrote {}", path.display()));
        })?;
    }
    out.line("next: edit it, then `dbbackup backup` and `dbbackup list`");
    Ok(ExitCode::Success)
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
