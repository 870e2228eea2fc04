//! Settings exported as `DBBACKUP_*` variables (often in a profile, for one
//! project) that take the place of this directory's configuration file: each
//! said in a WARN on every command, or every answer in another project is
//! silently about the first one's database, directory and retention (T27 F-N,
//! T27b F13).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_norway::Value;

use crate::error::show;
use crate::options::{self as defaults, Options};

/// Say what the environment put in place of the file's settings: `flags` as
/// merged from the command line and the environment, `given_longs` the flags
/// given on the command line (said by the user, not exported).
pub(super) fn said(flags: &Options, given_longs: &[String], file: &Options, config: Option<&Path>) {
    let given = |long: &str| given_longs.iter().any(|l| l == long);
    if let (false, Some(exported)) = (given("config"), &flags.config) {
        ignored_here(exported);
        another_projects(flags.db_path.as_deref(), given("db-path"), file, exported);
    }
    let Some(config) = config else { return };
    for (key, ours, theirs) in differing(flags, file) {
        // The flag's name: the key's, but `--mirror-dir` (given once each).
        let long = match key.as_str() {
            "mirror_dirs" => "mirror-dir".to_string(),
            key => key.trim_start_matches("check_").replace('_', "-"),
        };
        if given(&long) || given(&key.replace('_', "-")) {
            continue;
        }
        let name = match key.strip_prefix("check_") {
            Some(threshold) => format!("check: {threshold}"),
            None => key.clone(),
        };
        tracing::warn!(
            "DBBACKUP_{}={ours} is used, not {theirs} ({name} in {})",
            key.to_uppercase(),
            show(config)
        );
    }
}

/// An exported `DBBACKUP_CONFIG` is read instead of the current directory's
/// own `dbbackup.yaml` (the same file under another name is no other).
fn ignored_here(exported: &Path) {
    let here = Path::new(defaults::DEFAULT_CONFIG_FILE);
    if here.is_file() && !same_file(here, exported) {
        tracing::warn!(
            "DBBACKUP_CONFIG={} is read, not ./{} here: `unset DBBACKUP_CONFIG` (or give --config {}) to use this directory's",
            show(exported),
            defaults::DEFAULT_CONFIG_FILE,
            defaults::DEFAULT_CONFIG_FILE
        );
    }
}

/// An exported `DBBACKUP_CONFIG` read where there is no `./dbbackup.yaml`
/// (T28 F5): said when it is plainly another project's. Its database is not
/// the one of that name here (`backup` answered "unchanged" about the other
/// project's while this one's was never backed up), or `--db-path` names a
/// database outside the file's project, whose backups then go to that
/// project's backup directory.
fn another_projects(db: Option<&Path>, db_given: bool, file: &Options, config: &Path) {
    let Some(theirs) = file.db_path.as_deref() else {
        return;
    };
    if Path::new(defaults::DEFAULT_CONFIG_FILE).exists() {
        return; // `ignored_here` says it
    }
    let config_dir = config.parent().unwrap_or(Path::new("."));
    let here = theirs.file_name().map(Path::new);
    match (db, db_given) {
        (Some(ours), true) => {
            let real = |path: &Path| fs::canonicalize(path).or_else(|_| std::path::absolute(path));
            let within = matches!((real(config_dir), real(ours)), (Ok(project), Ok(ours)) if ours.starts_with(&project));
            if !within && !same_path(&ours.to_string_lossy(), &theirs.to_string_lossy()) {
                let backup_dir = file
                    .backup_dir
                    .clone()
                    .unwrap_or_else(|| config_dir.join(defaults::DEFAULT_BACKUP_DIR));
                tracing::warn!(
                    "--db-path {} is backed up with the settings of DBBACKUP_CONFIG={}, made for {}: into its backup directory {}; `unset DBBACKUP_CONFIG` for this project's own",
                    show(ours),
                    show(config),
                    show(theirs),
                    show(&backup_dir)
                );
            }
        }
        (None, _) => {
            if let Some(here) = here.filter(|here| here.is_file() && !same_file(here, theirs)) {
                tracing::warn!(
                    "DBBACKUP_CONFIG={} is read here: its database is {}, not ./{} in this directory; `unset DBBACKUP_CONFIG` (then `dbbackup init` here) for this one",
                    show(config),
                    show(theirs),
                    show(here)
                );
            }
        }
        _ => {}
    }
}

/// One file under two names (the same device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Each setting both set and set otherwise: its key (`check_` before a
/// `check:` one), the value in `flags` and in `file`, as YAML shows them.
fn differing(flags: &Options, file: &Options) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    if let (Ok(ours), Ok(theirs)) = (serde_norway::to_value(flags), serde_norway::to_value(file)) {
        compare(&ours, &theirs, "", &mut found);
    }
    found
}

fn compare(ours: &Value, theirs: &Value, prefix: &str, found: &mut Vec<(String, String, String)>) {
    let (Value::Mapping(ours), Value::Mapping(theirs)) = (ours, theirs) else {
        return;
    };
    for (key, mine) in ours {
        let (Some(name), Some(other)) = (key.as_str(), theirs.get(key)) else {
            continue;
        };
        match (mine, other) {
            (Value::Null, _) | (_, Value::Null) => {}
            (Value::Mapping(_), Value::Mapping(_)) if name == "check" => {
                compare(mine, other, "check_", found);
            }
            (Value::String(a), Value::String(b)) if same_path(a, b) => {}
            _ if mine != other => {
                found.push((format!("{prefix}{name}"), as_exported(mine), shown(other)));
            }
            _ => {}
        }
    }
}

/// Two names of one file (a symlink, `./x` and `x`): no other setting (T27b F5).
fn same_path(a: &str, b: &str) -> bool {
    let real = |p: &str| fs::canonicalize(p).or_else(|_| std::path::absolute(p));
    a == b || matches!((real(a), real(b)), (Ok(a), Ok(b)) if a == b)
}

/// A file's value, one line: a list as `[a, b]`.
fn shown(value: &Value) -> String {
    match value {
        Value::Sequence(items) => format!(
            "[{}]",
            items.iter().map(shown).collect::<Vec<_>>().join(", ")
        ),
        value => serde_norway::to_string(value)
            .map(|text| text.trim().replace('\n', " "))
            .unwrap_or_default(),
    }
}

/// A variable's value as the user set it: a list `a:b` (T30 F4: it showed
/// the list as YAML, `- a - b`).
fn as_exported(value: &Value) -> String {
    match value {
        Value::Sequence(items) => items.iter().map(shown).collect::<Vec<_>>().join(":"),
        value => shown(value),
    }
}
