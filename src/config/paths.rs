//! The rules for the paths in the settings: `~` and `$HOME` in the file, paths
//! relative to the file, a database path backups can record, mirrors that are
//! other directories.

use std::fs;
use std::path::{Path, PathBuf};

use super::Settings;
use crate::error::{Error, Result};
use crate::options::Options;

/// Backups record their database's path as text: a path that is not UTF-8
/// would be recorded altered, its backups would never count as its own, and
/// every `auto` would make another full backup. Refused, the real path too (a
/// link with a UTF-8 name may lead to one that is not).
/// A database path named like SQLite's own file beside a database
/// (`results.db-wal`: one key too many after tab completion) is refused for
/// every command alike when it is that file (not a database) or one sits
/// beside a database of that stem: SQLite would take it for that file.
pub(crate) fn refuse_sidecar_database(db: &Path) -> Result<()> {
    let Some(name) = db.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    for (suffix, what) in [
        ("-wal", "write-ahead log"),
        ("-shm", "shared-memory index"),
        ("-journal", "rollback journal"),
    ] {
        // `lab-journal` alone, an SQLite database, is a database named so.
        if let Some(stem) = name.strip_suffix(suffix)
            && !stem.is_empty()
            && (db.with_file_name(stem).is_file()
                || matches!(
                    crate::sqlite_file::header(db),
                    Ok(crate::sqlite_file::Header::Other)
                ))
        {
            return Err(Error::usage(format!(
                "database path {} is named like the {what} SQLite keeps beside database {stem}: give the database itself ({}), or rename a database named so",
                crate::error::show(db),
                crate::error::show(&db.with_file_name(stem))
            )));
        }
    }
    Ok(())
}

pub(crate) fn refuse_non_utf8_database(db: &Path) -> Result<()> {
    let real = crate::store::DbId::of(db);
    for path in [db, real.canonical()] {
        if path.to_str().is_none() {
            let leads = if path == db {
                String::new()
            } else {
                format!(" leads to {}, which", crate::error::show(path))
            };
            return Err(Error::usage(format!(
                "database path {}{leads} is not valid UTF-8: backups record the path as text, so rename the file (or the directory with the odd name) to a UTF-8 name",
                crate::error::show(db)
            )));
        }
    }
    Ok(())
}

/// The other paths the settings name are written into JSON output, summary
/// lines and metadata as text: one that is not UTF-8 would fail there after the
/// backup is made. Refused before anything is written, the way the database
/// path is.
pub(crate) fn refuse_non_utf8_paths(settings: &Settings) -> Result<()> {
    let named = std::iter::once(("backup directory", &settings.backup_dir))
        .chain(settings.mirror_dirs.iter().map(|m| ("mirror directory", m)))
        .chain(std::iter::once(("summary log", &settings.summary_log)));
    for (what, path) in named {
        refuse_non_utf8(what, path)?;
    }
    refuse_precious_output("summary log", &settings.summary_log)
}

/// Why an output file dbbackup writes over or appends to (`what`: the
/// summary log, a metrics file) must not be `path`: it holds a database or
/// a backup (by its first bytes), or it is a YAML file (a configuration). A
/// mistyped flag must never damage either (T36 N11, N12).
pub(crate) fn refuse_precious_output(what: &str, path: &Path) -> Result<()> {
    let mut head = [0u8; 16];
    // Only a regular file is read: opening a FIFO would wait for a writer
    // (what else is there is refused where the file is written).
    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    let read = regular
        .then(|| std::fs::File::open(path).ok())
        .flatten()
        .and_then(|mut file| std::io::Read::read(&mut file, &mut head).ok())
        .unwrap_or(0);
    let is_yaml = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml"));
    let holds = if read == 16 && head == *crate::sqlite_file::SQLITE_MAGIC {
        "an SQLite database"
    } else if read >= 2 && head[..2] == [0x1f, 0x8b] {
        "gzip data (a backup?)"
    } else if is_yaml {
        "a YAML file (a configuration?)"
    } else {
        return Ok(());
    };
    Err(Error::usage(format!(
        "{what} {} is {holds}; refusing to write into it: give the {what} its own file",
        crate::error::show(path)
    )))
}

/// One path setting (`what` names it) must be valid UTF-8.
pub(crate) fn refuse_non_utf8(what: &str, path: &Path) -> Result<()> {
    if path.to_str().is_some() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{what} {} is not valid UTF-8: dbbackup writes its paths as text (output, logs, metadata, templates), so use a UTF-8 name",
        crate::error::show(path)
    )))
}

/// A mirror that is the backup directory itself, or another mirror (under any
/// spelling), would "copy" each backup onto itself: a configuration mistake,
/// said as one.
/// The message only: the caller knows whether the mirrors came from the file.
pub(super) fn refuse_backup_dir_as_mirror(settings: &Settings) -> std::result::Result<(), String> {
    let mut seen: Vec<&PathBuf> = Vec::new();
    let home_dir = home();
    for mirror in &settings.mirror_dirs {
        // `- ~` (YAML's null, arriving as the text `~`), `~/`, `--mirror-dir
        // '~'`: every backup copied into the home directory itself, on
        // clusters a small quota (T28 F20).
        if home_dir
            .as_deref()
            .is_some_and(|home| same_dir(mirror, home))
        {
            return Err(format!(
                "mirror directory {} is your home directory itself; give a directory for the copies (`~/NAME`), or leave the mirror out",
                crate::error::show(mirror)
            ));
        }
        if same_dir(mirror, &settings.backup_dir) {
            return Err(format!(
                "mirror directory {} is the backup directory {} itself; a mirror must be another directory, ideally on another disk",
                crate::error::show(mirror),
                crate::error::show(&settings.backup_dir)
            ));
        }
        // Inside it (or holding it): one tree, gone together; and the
        // directory's listing would see the mirror's files.
        let backups = &settings.backup_dir;
        let nested = if inside(mirror, backups) {
            Some((("mirror", mirror), ("backup", backups)))
        } else if inside(backups, mirror) {
            Some((("backup", backups), ("mirror", mirror)))
        } else {
            None
        };
        if let Some(((inner, inner_dir), (outer, outer_dir))) = nested {
            return Err(format!(
                "{inner} directory {} is inside the {outer} directory {}; a mirror must be another directory, ideally on another disk",
                crate::error::show(inner_dir),
                crate::error::show(outer_dir)
            ));
        }
        // Twice the same mirror: the second copy would fail with "File exists".
        if let Some(first) = seen.iter().find(|seen| same_dir(seen, mirror)) {
            return Err(format!(
                "mirror directory {} is given twice (also as {})",
                crate::error::show(mirror),
                crate::error::show(first)
            ));
        }
        seen.push(mirror);
    }
    Ok(())
}

/// `--backup-dir M` naming a mirror the file or a variable configures (the
/// command dbbackup suggests when the backup directory is lost): M is the
/// backup directory for this run, so it is not also its own mirror. Mirrors
/// given on the command line with it stay a mistake, refused.
pub(super) fn drop_backup_dir_from_mirrors(settings: &mut Settings, given_longs: &[String]) {
    let given = |long: &str| given_longs.iter().any(|g| g == long);
    if !given("backup-dir") || given("mirror-dir") {
        return;
    }
    let backups = settings.backup_dir.clone();
    settings.mirror_dirs.retain(|mirror| {
        let same = same_dir(mirror, &backups);
        if same {
            tracing::debug!(
                "mirror {} is the --backup-dir of this run: not mirrored to",
                crate::error::show(mirror)
            );
        }
        !same
    });
}

/// Whether `inner` is (or, once made, will be) inside `outer`, under any name
/// of either: by path, or an existing directory above `inner` that is `outer`
/// (a link, a bind mount: the same device and inode).
fn inside(inner: &Path, outer: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (i, o) = (same_dir_key(inner), same_dir_key(outer));
    if i != o && i.starts_with(&o) {
        return true;
    }
    let Ok(outer) = fs::metadata(outer) else {
        return false;
    };
    let absolute = std::path::absolute(inner).unwrap_or_else(|_| inner.to_path_buf());
    absolute.ancestors().skip(1).any(|above| {
        fs::metadata(above).is_ok_and(|m| m.dev() == outer.dev() && m.ino() == outer.ino())
    })
}

/// Whether `a` and `b` are one directory: under any spelling (links, `..`),
/// or reached through two mounts of it (a bind mount, one project space under
/// two paths): the same device and inode.
fn same_dir(a: &Path, b: &Path) -> bool {
    same_dir_key(a) == same_dir_key(b) || crate::store::same_existing_dir(a, b)
}

/// What identifies a directory: its real path when it exists, else its
/// absolute path with `.` and `..` resolved by name.
fn same_dir_key(dir: &Path) -> PathBuf {
    if let Ok(real) = fs::canonicalize(dir) {
        return real;
    }
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut key = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                key.pop();
            }
            std::path::Component::CurDir => {}
            other => key.push(other),
        }
    }
    key
}

/// The file's paths: `~`, `~/...`, `$HOME` and `${HOME}` at the start mean the
/// home directory (a YAML file has no shell to expand them); any other relative
/// path is relative to the file's directory.
pub(super) fn relative_to(
    file: Options,
    config_file: &Path,
    line_of: impl Fn(&str) -> Option<usize>,
) -> Result<Options> {
    let base = config_file.parent().unwrap_or(Path::new(""));
    let home = home();
    map_paths(file, |key, flag, path| {
        let path = expand(&path, home.as_deref()).map_err(|unexpanded| Error::Config {
            path: config_file.to_path_buf(),
            line: line_of(key),
            message: match unexpanded {
                // The YAML file has no shell; the variable, set in one, does.
                Unexpanded::Shell(syntax) => format!(
                    "`{key}` contains shell syntax `{syntax}`; dbbackup does not expand it: write the path, or use {}=...",
                    flag.split_once(" / ").map_or(flag, |(_, variable)| variable)
                ),
                Unexpanded::Other(message) => format!("{key}: {}: {message}", path.display()),
            },
        })?;
        Ok(if path.is_absolute() {
            path
        } else {
            base.join(path)
        })
    })
}

/// The same home expansion for flags and environment variables: a shell leaves
/// `--backup-dir=~/b` and a quoted `DBBACKUP_BACKUP_DIR='~/b'` as they are.
pub(super) fn expand_flags(flags: Options, given_longs: &[String]) -> Result<Options> {
    let home = home();
    // "--db-path / DBBACKUP_DB_PATH": the one of the two the value came from.
    let named = |flag: &str| -> String {
        let (long, variable) = flag.split_once(" / ").unwrap_or((flag, flag));
        let given = given_longs
            .iter()
            .any(|given| Some(given.as_str()) == long.strip_prefix("--"));
        if given { long } else { variable }.to_string()
    };
    let refused = |flag: &str, path: &Path, unexpanded: Unexpanded| {
        Error::usage(match unexpanded {
            Unexpanded::Shell(syntax) => format!(
                "{} contains shell syntax `{syntax}`; dbbackup does not expand it: write the path",
                named(flag)
            ),
            Unexpanded::Other(message) => {
                format!("{} {}: {message}", named(flag), path.display())
            }
        })
    };
    let config = flags
        .config
        .clone()
        .map(|path| {
            expand(&path, home.as_deref())
                .map_err(|u| refused("--config / DBBACKUP_CONFIG", &path, u))
        })
        .transpose()?;
    let mut flags = map_paths(flags, |_, flag, path| {
        expand(&path, home.as_deref()).map_err(|u| refused(flag, &path, u))
    })?;
    flags.config = config;
    Ok(flags)
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Every path setting through `map(key, flag, path)`.
pub(crate) fn map_paths(
    mut options: Options,
    map: impl Fn(&str, &str, PathBuf) -> Result<PathBuf>,
) -> Result<Options> {
    let one = |key, flag, path: Option<PathBuf>| path.map(|p| map(key, flag, p)).transpose();
    options.db_path = one("db_path", "--db-path / DBBACKUP_DB_PATH", options.db_path)?;
    options.backup_dir = one(
        "backup_dir",
        "--backup-dir / DBBACKUP_BACKUP_DIR",
        options.backup_dir,
    )?;
    options.summary_log = one(
        "summary_log",
        "--summary-log / DBBACKUP_SUMMARY_LOG",
        options.summary_log,
    )?;
    options.mirror_dirs = options
        .mirror_dirs
        .map(|dirs| {
            dirs.into_iter()
                .map(|p| map("mirror_dirs", "--mirror-dir / DBBACKUP_MIRROR_DIRS", p))
                .collect()
        })
        .transpose()?;
    Ok(options)
}

/// A path argument of a command (`restore --target`, `templates --out`, ...)
/// under the path settings' rule (`expand`): a quoted `'~/t.db'` reaches
/// dbbackup unexpanded, and the user means home by it. For clap, whose error
/// line already quotes the value.
pub(crate) fn path_arg() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new().try_map(|text| {
        if text.is_empty() {
            return Err("an empty path".to_string());
        }
        expand(Path::new(&text), home().as_deref()).map_err(|unexpanded| match unexpanded {
            Unexpanded::Shell(syntax) => format!(
                "it contains shell syntax `{syntax}`; dbbackup does not expand it: write the path"
            ),
            Unexpanded::Other(message) => message,
        })
    })
}

/// Why a path is not taken as written.
#[derive(Debug, PartialEq, Eq)]
enum Unexpanded {
    /// Shell syntax at the start of the path (`${SCRATCH:-/tmp}`, `$USER`,
    /// `$(pwd)`), named whole: dbbackup is no shell.
    Shell(String),
    /// Another reason, said in full (`~bob`, HOME not set).
    Other(String),
}

/// `path` with a leading `~` or `$HOME` replaced by home. Another `~user` or
/// `$VARIABLE` at the start is refused: kept as written it would make a
/// directory named `~user` or `$SCRATCH` in the project (`./$x.db` is the
/// file of that name).
fn expand(path: &Path, home: Option<&Path>) -> std::result::Result<PathBuf, Unexpanded> {
    let Some(text) = path.to_str() else {
        return Ok(path.to_path_buf());
    };
    let (first, rest) = text.split_once('/').unwrap_or((text, ""));
    if !(first.starts_with('~') || first.starts_with('$')) {
        return Ok(path.to_path_buf());
    }
    if !matches!(first, "~" | "$HOME" | "${HOME}") {
        // The whole expression: `${SCRATCH:-/tmp}` holds a `/` of its own.
        if let Some(syntax) = shell_syntax(text) {
            return Err(Unexpanded::Shell(syntax.to_string()));
        }
        return Err(Unexpanded::Other(format!(
            "only ~ and $HOME are expanded at the start of a path; write {first} out in full (./{first} for a name that starts so)"
        )));
    }
    let home =
        home.ok_or_else(|| Unexpanded::Other(format!("cannot expand {first}: HOME is not set")))?;
    Ok(if rest.is_empty() {
        home.to_path_buf()
    } else {
        home.join(rest)
    })
}

/// The shell expansion `text` starts with, whole: `$NAME`, `${...}` or
/// `$(...)` (to its closing bracket, nested ones counted; to the end if none).
fn shell_syntax(text: &str) -> Option<&str> {
    let after = text.strip_prefix('$')?;
    let end = match after.bytes().next()? {
        b'{' => closing(text, b'{', b'}'),
        b'(' => closing(text, b'(', b')'),
        b if b == b'_' || b.is_ascii_alphabetic() => Some(
            1 + after
                .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                .unwrap_or(after.len()),
        ),
        _ => return None,
    };
    Some(&text[..end.unwrap_or(text.len())])
}

/// The end (past the bracket) of the bracket `open` at `text[1]`, nested
/// ones counted; `None` if it is never closed.
fn closing(text: &str, open: u8, close: u8) -> Option<usize> {
    let mut depth = 0usize;
    for (at, byte) in text.bytes().enumerate().skip(1) {
        if byte == open {
            depth += 1;
        } else if byte == close {
            depth -= 1;
            if depth == 0 {
                return Some(at + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_expanded_at_the_start_of_a_path_and_other_variables_are_refused() {
        let home = Some(Path::new("/home/ann"));
        let expand = |p: &str| expand(Path::new(p), home);
        let shell = |s: &str| Err(Unexpanded::Shell(s.to_string()));
        assert_eq!(expand("~").unwrap(), Path::new("/home/ann"));
        assert_eq!(expand("~/b").unwrap(), Path::new("/home/ann/b"));
        assert_eq!(expand("$HOME/b/c").unwrap(), Path::new("/home/ann/b/c"));
        assert_eq!(expand("${HOME}/b").unwrap(), Path::new("/home/ann/b"));
        assert_eq!(expand("a/~/b").unwrap(), Path::new("a/~/b"));
        assert_eq!(expand("/x/$HOME").unwrap(), Path::new("/x/$HOME"));
        assert_eq!(expand("./$x.db").unwrap(), Path::new("./$x.db"));
        assert_eq!(expand("`x`").unwrap(), Path::new("`x`"));
        assert_eq!(expand("${SCRATCH:-/tmp}/b"), shell("${SCRATCH:-/tmp}"));
        assert_eq!(expand("${A:-${B}}/c"), shell("${A:-${B}}"));
        assert_eq!(expand("$SCRATCH/b"), shell("$SCRATCH"));
        assert_eq!(expand("$USER.d/b"), shell("$USER"));
        assert_eq!(expand("$(pwd)/x"), shell("$(pwd)"));
        assert_eq!(expand("${open/x"), shell("${open/x"));
        assert!(
            matches!(expand("$1/x"), Err(Unexpanded::Other(m)) if m.contains("write $1 out in full"))
        );
        assert!(
            matches!(expand("~bob/b"), Err(Unexpanded::Other(m)) if m.contains("write ~bob out in full"))
        );
        assert!(
            matches!(super::expand(Path::new("~/b"), None), Err(Unexpanded::Other(m)) if m.contains("HOME is not set"))
        );
    }
}
