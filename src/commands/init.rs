//! `dbbackup init [--slurm]`: a commented `dbbackup.yaml` to start from, and on
//! request the SLURM templates with the user's paths filled in.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::Ctx;
use crate::cli::InitArgs;
use crate::error::{Context, Error, Result, show};
use crate::exit_code::ExitCode;
use crate::options::Options;
use crate::slurm::templates::sh_quote;

const EXAMPLE: &str = include_str!("../../examples/dbbackup.yaml");

pub(crate) fn run(ctx: &Ctx, args: &InitArgs) -> Result<ExitCode> {
    let out = ctx.output(crate::cli::Format::Text);
    refuse_the_path(args)?;
    // The templates too are checked (filled in, none there to replace) before
    // the file is written: a refusal leaves nothing behind to trip the rerun.
    let templates = if args.slurm {
        // The jobs read the config about to be written.
        let settings = crate::config::Settings {
            config_file: Some(args.path.clone()),
            ..ctx.settings.clone()
        };
        Some(crate::slurm::templates::prepare(
            &args.slurm_dir,
            &settings,
            args.overwrite,
        )?)
    } else {
        None
    };
    if let Some(parent) = args.path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).context(|| format!("cannot create {}", show(parent)))?;
    }
    // Every setting the command line and environment gave, as the file will
    // read it back (the same key, paths relative to the file's directory).
    let dir = args.path.parent().unwrap_or(Path::new("")).to_path_buf();
    // A path default not given is relative to the working directory, a path
    // in the file to the file's directory: written rebased too, so that a file
    // elsewhere (`--path sub/x.yaml`) points where the default did.
    let mut given = ctx.settings.given.clone();
    given
        .backup_dir
        .get_or_insert_with(|| crate::options::DEFAULT_BACKUP_DIR.into());
    given
        .summary_log
        .get_or_insert_with(|| crate::options::DEFAULT_SUMMARY_LOG.into());
    let given =
        crate::config::map_paths(given, |_, flag, path| seen_as_written(&path, &dir, flag))?;
    let text = fill(EXAMPLE, &given)?;
    // Whole or not at all, with the templates: a full disk must not leave an
    // empty or half set that blocks the retry (an empty file reads as "no settings").
    let mut new = crate::store::NewFiles::default();
    new.write(&args.path, 0o644, text.as_bytes())?;
    out.line(format!("wrote {}", args.path.display()));
    match ctx.settings.given.db_path.as_deref() {
        None => warn_of_placeholder(&args.path, &dir),
        // Set up before the first job run, which creates the database: normal,
        // said so that a mistyped path is noticed now.
        Some(db) if db.symlink_metadata().is_err() => out.line(format!(
            "note: database {} does not exist yet; the configuration was written anyway (backups start once it exists, e.g. after the first job run creates it)",
            show(&tidy(db))
        )),
        Some(_) => {}
    }
    if let Some(templates) = templates
        && let Err(error) = templates.write(&mut new, |path| {
            out.line(format!("wrote {}", path.display()));
        })
    {
        return Err(new.undo(error));
    }
    out.line(next_steps(&args.path));
    Ok(ExitCode::Success)
}

/// What to run next. Without `--config`, dbbackup reads `DBBACKUP_CONFIG` when
/// set, else `./dbbackup.yaml` (T25 #11): the short form only when that is the
/// file just written.
fn next_steps(written: &Path) -> String {
    let configured = std::env::var_os("DBBACKUP_CONFIG").filter(|v| !v.is_empty());
    let read_by_default = match &configured {
        Some(named) => Path::new(named) == written || same_file(Path::new(named), written),
        None => written
            .components()
            .filter(|c| *c != Component::CurDir)
            .eq(Path::new(crate::options::DEFAULT_CONFIG_FILE).components()),
    };
    if read_by_default {
        return "next: edit it, then `dbbackup backup` and `dbbackup list`".to_string();
    }
    let config = sh_quote(written);
    // Exported, it is read from every directory: the whole path.
    let exported =
        sh_quote(&std::path::absolute(written).unwrap_or_else(|_| written.to_path_buf()));
    let read_instead = match &configured {
        Some(named) => format!("DBBACKUP_CONFIG={}, set here", sh_quote(Path::new(named))),
        None => "./dbbackup.yaml".to_string(),
    };
    format!(
        "next: edit it, then `dbbackup --config {config} backup` and `dbbackup --config {config} list` (or export DBBACKUP_CONFIG={exported}): without --config, dbbackup reads {read_instead}"
    )
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// What the command line settles about `--path` (and `--slurm-dir`), before
/// anything is written (README: one `error:` line, exit 2).
fn refuse_the_path(args: &InitArgs) -> Result<()> {
    // Written into the templates as text: refused before anything is written.
    crate::config::refuse_non_utf8("configuration file", &args.path)?;
    if args.slurm {
        crate::config::refuse_non_utf8("SLURM template directory", &args.slurm_dir)?;
    }
    // Said before "exists; use --overwrite", which could not replace it either.
    if args.path.is_dir() {
        return Err(Error::usage(format!(
            "{} is a directory; give the file to write, e.g. --path {}",
            show(&args.path),
            show(&args.path.join(crate::options::DEFAULT_CONFIG_FILE))
        )));
    }
    // `--path results.db --overwrite` (read as "the database's path") replaced
    // a live database with YAML: never, whatever --overwrite says.
    if matches!(
        crate::sqlite_file::header(&args.path),
        Ok(crate::sqlite_file::Header::Sqlite)
    ) {
        return Err(Error::usage(format!(
            "{} is an SQLite database; --path is where the configuration file goes (the database is --db-path)",
            show(&args.path)
        )));
    }
    // A refusal the command line settles (README: one `error:` line, exit 2).
    if args.path.exists() && !args.overwrite {
        return Err(Error::usage(format!(
            "{} exists; use --overwrite to replace it",
            show(&args.path)
        )));
    }
    Ok(())
}

/// No database given: the file names the example's (`results.db`), which works
/// only where that file exists. Where it does not, say so now, not at the
/// first backup.
fn warn_of_placeholder(path: &Path, dir: &Path) {
    let Some(example) = crate::config::parse(EXAMPLE).ok().and_then(|o| o.db_path) else {
        return;
    };
    if !dir.join(&example).exists() {
        tracing::warn!(
            "{}: db_path is the example {} (no --db-path or DBBACKUP_DB_PATH given), which does not exist: edit db_path to name your database",
            show(path),
            show(&example)
        );
    }
}

/// The example with each setting of `given` in place of the example's line
/// for its key (commented out or not), written by serde so that any value
/// (`[x].db`, `yes`, `#x`, `a: b`) reads back as the same one.
fn fill(example: &str, given: &Options) -> Result<String> {
    let yaml =
        |e: serde_norway::Error| Error::failed(format!("cannot write the settings as YAML: {e}"));
    let mut lines: Vec<String> = example.lines().map(str::to_string).collect();
    let serde_norway::Value::Mapping(settings) = serde_norway::to_value(given).map_err(yaml)?
    else {
        return Ok(example.to_string());
    };
    for (key, value) in settings {
        match (key.as_str(), value) {
            (_, serde_norway::Value::Null) | (None, _) => {}
            (Some("check"), serde_norway::Value::Mapping(check)) => {
                for (key, value) in check {
                    if let (Some(key), false) = (key.as_str(), value.is_null()) {
                        put(&mut lines, key, value, "  ").map_err(yaml)?;
                    }
                }
            }
            (Some(key), value) => put(&mut lines, key, value, "").map_err(yaml)?,
        }
    }
    Ok(lines.join("\n") + "\n")
}

/// `key: value` (indented by `indent`) in place of the first line for `key`,
/// set or commented out, else at the end.
fn put(
    lines: &mut Vec<String>,
    key: &str,
    value: serde_norway::Value,
    indent: &str,
) -> std::result::Result<(), serde_norway::Error> {
    let mut entry = serde_norway::Mapping::new();
    entry.insert(key.into(), value);
    let text: Vec<String> = serde_norway::to_string(&entry)?
        .lines()
        .map(|line| format!("{indent}{line}"))
        .collect();
    let text = text.join("\n");
    let set = format!("{indent}{key}:");
    let commented = format!("{indent}# {key}:");
    match lines
        .iter()
        .position(|line| line.starts_with(&set) || line.starts_with(&commented))
    {
        Some(at) => lines[at] = text,
        None => lines.push(text),
    }
    Ok(())
}

/// A path setting as the file's reader will take it: relative to the file's
/// directory `dir`, and not starting with `~` or `$` (which the reader expands
/// at the start and refuses otherwise).
fn seen_as_written(path: &Path, dir: &Path, flag: &str) -> Result<PathBuf> {
    let path = seen_from(&tidy(path), dir)?;
    let text = path
        .to_str()
        .ok_or_else(|| Error::usage(format!("{flag} {} is not valid UTF-8", show(&path))))?;
    Ok(if text.starts_with(['~', '$']) {
        PathBuf::from(format!("./{text}"))
    } else {
        path
    })
}

/// `../old/../data/x.db` (a path from another config file, rebased) as
/// `../data/x.db`: each `dir/..` is dropped where `dir` is a real directory,
/// not a symbolic link (whose `..` climbs from its target, elsewhere).
fn tidy(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        let climbs_a_directory = part == Component::ParentDir
            && matches!(out.components().next_back(), Some(Component::Normal(_)))
            && out.symlink_metadata().is_ok_and(|meta| meta.is_dir());
        if climbs_a_directory {
            out.pop();
        } else {
            out.push(part);
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::options::{CheckOptions, RemoteUpload, Shared};

    /// Every setting written reads back as the same value, whatever it is.
    #[test]
    fn every_setting_given_round_trips_through_the_file() {
        let given = Options {
            db_path: Some("[x] yes.db".into()),
            backup_dir: Some("#b".into()),
            config: None,
            compression_level: Some(9),
            max_backups: Some(3),
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_pre_restore: Some(2),
            diff_backups: Some(5),
            min_interval_hours: Some(0.25),
            summary_log: Some("logs/s: x.log".into()),
            mirror_dirs: Some(vec!["m1".into(), "null".into()]),
            busy_timeout_seconds: Some(5),
            lock_timeout_seconds: Some(0),
            term_grace_seconds: Some(9),
            threads: Some(2),
            shared: Some(Shared::Group),
            remote: Some("s3://bucket/results".into()),
            remote_upload: Some(RemoteUpload::Inline),
            remote_max_backups: Some(6),
            remote_timeout_seconds: Some(30),
            check: Some(CheckOptions {
                max_age: Some(Duration::from_secs(7200)),
                min_count: Some(4),
                max_shrink: Some(12.5),
                min_free: Some(1 << 30),
                remote_max_age: Some(Duration::from_secs(86400)),
            }),
        };
        let text = fill(EXAMPLE, &given).unwrap();
        let read = crate::config::parse(&text).unwrap();
        let value = |o: &Options| serde_norway::to_value(o).unwrap();
        assert_eq!(value(&read), value(&given), "{text}");
        // Still the commented example, each key once.
        assert!(text.lines().filter(|l| l.starts_with('#')).count() > 10);
        assert_eq!(text.matches("\nmax_backups:").count(), 1, "{text}");
        // Nothing given: the example as it is.
        assert_eq!(fill(EXAMPLE, &Options::default()).unwrap(), EXAMPLE);
    }
}
