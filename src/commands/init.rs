//! `dbbackup init [--slurm]`: a commented `dbbackup.yaml` to start from, and on
//! request the SLURM templates with the user's paths filled in.

use std::fs;
use std::path::{Path, PathBuf};

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
    if let Some(parent) = args.path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).context(|| format!("cannot create {}", show(parent)))?;
    }
    let entry = ctx
        .settings
        .db_path
        .as_deref()
        .map(|db| db_path_entry(db, &args.path))
        .transpose()?;
    let text = fill(EXAMPLE, entry.as_deref());
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

/// The example with its `db_path` line replaced by `entry`, if any.
fn fill(example: &str, entry: Option<&str>) -> String {
    match entry {
        Some(entry) => example.replace("db_path: results.db", entry),
        None => example.to_string(),
    }
}

/// The `db_path: ...` line for a file at `config`: the path as the file's reader
/// will take it (relative to the file's directory), written by serde so that
/// any name (`[x].db`, `yes`, `#x`, `a: b`) reads back as the same string.
fn db_path_entry(db: &Path, config: &Path) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        db_path: &'a str,
    }
    let path = seen_from(db, config.parent().unwrap_or(Path::new("")))?;
    let text = path
        .to_str()
        .ok_or_else(|| Error::usage(format!("database path {} is not valid UTF-8", show(&path))))?;
    // The reader expands `~` and `$HOME` at the start and refuses other `$...`.
    let text = if text.starts_with(['~', '$']) {
        format!("./{text}")
    } else {
        text.to_string()
    };
    let yaml = serde_norway::to_string(&Entry { db_path: &text })
        .map_err(|e| Error::failed(format!("cannot write the database path as YAML: {e}")))?;
    Ok(yaml.trim_end().to_string())
}

/// `db` (absolute, or relative to the working directory) as a path from `dir`
/// (which exists). Both directories are resolved first, so each `..` climbs a
/// real directory; a path that would climb to `/` is written absolute.
fn seen_from(db: &Path, dir: &Path) -> Result<PathBuf> {
    if db.is_absolute() || dir.as_os_str().is_empty() {
        return Ok(db.to_path_buf());
    }
    let real = |d: &Path| fs::canonicalize(d).context(|| format!("cannot resolve {}", show(d)));
    let (here, there) = (real(Path::new("."))?, real(dir)?);
    if here == there {
        return Ok(db.to_path_buf());
    }
    let common = here
        .components()
        .zip(there.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        return Ok(here.join(db));
    }
    let mut path: PathBuf = there.components().skip(common).map(|_| "..").collect();
    path.extend(here.components().skip(common));
    Ok(path.join(db))
}
