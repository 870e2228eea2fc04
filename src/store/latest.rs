//! What `latest` means, one way for `restore`, `verify` and `export`: the
//! restore points of the configured database, or, without one, of the one
//! database the directory holds backups of (refused when it holds several).

use std::path::Path;

use super::{BackupDir, BackupSet, DbId, Entry, Kind};
use crate::error::{Error, Result, show};

/// The restore points `latest` chooses from, newest first; never empty.
/// `db`: the configured database; `target`: without one, a restore target
/// whose own backups the directory may hold.
pub(crate) fn restore_points(
    dir: &BackupDir,
    db: Option<&DbId>,
    target: Option<&DbId>,
) -> Result<Vec<Entry>> {
    let entries = dir.entries()?;
    let owner = match db {
        Some(db) => Some(db.clone()),
        None => sole_database(dir, &entries, target)?,
    };
    let legacy = match &owner {
        Some(owner) => super::Legacy::judge(&entries, owner),
        None => super::Legacy::judge_whole_dir(&entries),
    };
    let set = match &owner {
        Some(owner) => BackupSet::judged(entries, owner, &legacy),
        // Legacy files alone: the whole directory is the one database's.
        None => BackupSet::whole_dir_judged(entries, &legacy),
    };
    warn_unlike_newer(&set, &legacy);
    if set.restore_points.is_empty() {
        return Err(Error::failed(no_restore_point(dir, owner.as_ref(), &set)));
    }
    Ok(set.restore_points)
}

/// Legacy files newer than the newest restore point, left out for their
/// tables ([`super::unlike`]): said in one line, as files `latest` passes over.
fn warn_unlike_newer(set: &BackupSet, legacy: &super::Legacy) {
    let newest = set.restore_points.first().map(Entry::order);
    let mut passed = set.owner_unknown.iter().filter_map(|entry| {
        let why = legacy.unlike(&entry.file_name)?;
        newest
            .is_none_or(|newest| entry.order() > newest)
            .then_some((entry, why))
    });
    let Some((first, why)) = passed.next() else {
        return;
    };
    let more = match passed.count() {
        0 => String::new(),
        1 => " (and 1 more legacy backup like it: `dbbackup list` says why)".to_string(),
        n => format!(" (and {n} more legacy backups like it: `dbbackup list` says why)"),
    };
    tracing::warn!(
        "passing over {}{more}: a legacy backup (plain gzip, no recorded database) that {why}; restore it by name if you mean it",
        first.file_name
    );
}

/// Without a configured database: the one database `dir` holds backups of
/// (`check` and `summary` judge it); refused when it holds several; `None`
/// when no backup records its database.
pub(crate) fn sole_database_of(dir: &BackupDir) -> Result<Option<DbId>> {
    sole_database(dir, &dir.entries()?, None)
}

/// Without a configured database, `latest` needs the directory to hold restore
/// points of exactly one database (or of the target itself); `None`: it records
/// no database at all.
fn sole_database(
    dir: &BackupDir,
    entries: &[Entry],
    target: Option<&DbId>,
) -> Result<Option<DbId>> {
    let mut sources: Vec<String> = entries
        .iter()
        .filter(|e| !e.is_failed())
        .filter_map(|e| e.meta.as_ref().ok())
        .filter(|m| m.kind != Kind::PreRestore)
        .map(|m| m.source.clone())
        .collect();
    sources.sort();
    sources.dedup();
    if let Some(target) = target
        && sources.iter().any(|s| target.owns(s))
    {
        return Ok(Some(target.clone()));
    }
    match sources.as_slice() {
        [] => Ok(target.cloned()),
        [only] => Ok(Some(DbId::of(Path::new(only)))),
        many => Err(Error::usage(format!(
            "{} holds backups of {} databases ({}); say which with --db-path",
            show(dir.path()),
            many.len(),
            many.join(", ")
        ))),
    }
}

/// When the backup directory holds no restore point of `db`: which mirrors do,
/// and how to restore from one (`--backup-dir` makes it the backup directory;
/// dbbackup does not switch by itself, so the lost directory is noticed), into
/// `target` when the user gave one: copied as shown, the command must not
/// restore over the configured database instead.
pub(crate) fn mirror_hint(
    mirrors: &[std::path::PathBuf],
    db: &DbId,
    target: Option<&Path>,
) -> Option<String> {
    let (first, holding) = mirrors_holding(mirrors, db)?;
    let into = target.map_or(String::new(), |target| {
        format!(" --target {}", show(target))
    });
    Some(format!(
        "{holding}: restore from it with `dbbackup --backup-dir {first} restore latest{into}`"
    ))
}

/// The first mirror holding restore points of `db`, and a line naming each
/// one that does, with how many and the newest.
fn mirrors_holding(mirrors: &[std::path::PathBuf], db: &DbId) -> Option<(String, String)> {
    let holding: Vec<(String, usize, String)> = mirrors
        .iter()
        .filter_map(|dir| {
            let set = BackupDir::new(dir).set(db).ok()?;
            let newest = set.restore_points.first()?.file_name.clone();
            Some((show(dir), set.restore_points.len(), newest))
        })
        .collect();
    let (first, ..) = holding.first()?;
    let each: Vec<String> = holding
        .iter()
        .map(|(dir, n, newest)| {
            let s = if *n == 1 { "" } else { "s" };
            format!("mirror {dir} holds {n} restore point{s} of it (newest {newest})")
        })
        .collect();
    Some((first.clone(), each.join(", ")))
}

/// [`mirror_hint`] for a report (`list`, `check`): once the database is there
/// again (restored from the mirror, say), the next step is a backup, which
/// starts the backup directory again, not another restore (T27 F-I).
pub(crate) fn mirror_report(mirrors: &[std::path::PathBuf], db: &DbId) -> Option<String> {
    if !std::fs::metadata(db.canonical()).is_ok_and(|m| m.is_file() && m.len() > 0) {
        return mirror_hint(mirrors, db, None);
    }
    let (first, holding) = mirrors_holding(mirrors, db)?;
    Some(format!(
        "{holding}; {} is there: `dbbackup backup` starts the backup directory again (to restore from the mirror instead: `dbbackup --backup-dir {first} restore latest`)",
        show(db.canonical())
    ))
}

/// With no restore point here to put back, where else to look when a remote
/// is configured (T27b F17): said without asking it (no network for `list`
/// or `check`), `restore latest` falls back to it.
/// With the database there, backing up is the next step, not restoring.
pub(crate) fn remote_hint(remote: Option<&str>, db: Option<&DbId>) -> Option<String> {
    let present = db.is_some_and(|db| {
        std::fs::metadata(db.canonical()).is_ok_and(|m| m.is_file() && m.len() > 0)
    });
    let next = match present {
        true => "`dbbackup backup` starts the backup directory again",
        false => "`dbbackup restore latest` restores its newest",
    };
    remote.map(|url| {
        format!(
            "the remote {url} may hold restore points: `dbbackup list --from-remote` shows them; {next}"
        )
    })
}

/// Is a mirror holding restore points of `db` while `dir` holds none that is
/// `usable`? Then the backup directory was lost, not never used, and the answer
/// is [`mirror_hint`]'s line naming the mirror; `None` otherwise. A `dir` that
/// cannot be read holds none. `restore` asks it for `latest` before it falls
/// back to the remote, before it treats `--if-db-missing` as a first run, and
/// when it found no restore point.
pub(crate) fn mirror_instead(
    dir: &BackupDir,
    mirrors: &[std::path::PathBuf],
    db: &DbId,
    target: Option<&Path>,
    usable: impl Fn(&Entry) -> bool,
) -> Option<String> {
    if dir
        .restore_points(db, usable)
        .is_ok_and(|points| !points.is_empty())
    {
        return None;
    }
    mirror_hint(mirrors, db, target)
}

/// A new project's first run for `db`: no backup of it of any kind, and no
/// other database's backups it could have moved from (one whose file is gone,
/// which `adopt` would claim). `restore latest --if-db-missing` then has nothing
/// to do, which is not an error.
pub(crate) fn first_run(dir: &BackupDir, db: &DbId) -> Result<bool> {
    if !dir.path().exists() {
        return Ok(true);
    }
    let set = dir.set(db)?;
    Ok(set.restore_points.is_empty()
        && set.pre_restore.is_empty()
        && set.failed.is_empty()
        && set.damaged.is_empty()
        && set.owner_unknown.is_empty()
        && adoptable(&set).is_empty())
}

/// Other databases' sources, newest first, each once, whose file is gone: the
/// ones this database may have moved from (`adopt` refuses a source that exists).
fn adoptable(set: &BackupSet) -> Vec<&str> {
    let mut sources: Vec<&str> = Vec::new();
    for entry in &set.others {
        if let Ok(meta) = &entry.meta
            && !sources.contains(&meta.source.as_str())
            && !Path::new(&meta.source).exists()
        {
            sources.push(&meta.source);
        }
    }
    sources
}

/// Why `latest` found nothing, with what is there instead.
/// "No restore point" when the backup directory `dir` does not exist.
pub(crate) fn missing_dir(dir: &BackupDir, db: Option<&DbId>) -> String {
    let of = db.map_or(String::new(), |db| format!(" of {}", show(db.canonical())));
    format!(
        "no restore point{of}: backup directory {} does not exist",
        show(dir.path())
    )
}

fn no_restore_point(dir: &BackupDir, db: Option<&DbId>, set: &BackupSet) -> String {
    let of = db.map_or(String::new(), |db| format!(" of {}", show(db.canonical())));
    if !dir.path().exists() {
        return missing_dir(dir, db);
    }
    let mut text = format!("no restore point{of} in {}", show(dir.path()));
    if !set.pre_restore.is_empty() {
        text.push_str(&format!(
            "; {} pre-restore copies are there (not restore points; restore one by name)",
            set.pre_restore.len()
        ));
    }
    // Newest first, each source once; `adopt` only for one whose file is gone
    // (it refuses a database that is still there).
    let mut sources: Vec<&str> = Vec::new();
    for entry in &set.others {
        if let Ok(meta) = &entry.meta
            && !sources.contains(&meta.source.as_str())
        {
            sources.push(&meta.source);
        }
    }
    if let Some(first) = sources.first() {
        let more = if sources.len() > 1 { ", ..." } else { "" };
        text.push_str(&match adoptable(set).first() {
            Some(gone) => format!(
                "; it holds backups of other databases ({first}{more}): if this database moved from {gone}, claim them with `dbbackup adopt {gone}`"
            ),
            None => format!("; it holds backups of other databases ({first}{more})"),
        });
    }
    if let Some(newest) = set.owner_unknown.first() {
        text.push_str(&format!(
            "; {n} legacy backup{s} (plain gzip, no recorded database) may be another database's, so {not_points} (look at one with `dbbackup restore {} --target copy.db`)",
            newest.file_name,
            n = set.owner_unknown.len(),
            s = if set.owner_unknown.len() == 1 { "" } else { "s" },
            not_points = if set.owner_unknown.len() == 1 {
                "it is not a restore point"
            } else {
                "they are not restore points"
            },
        ));
    }
    text
}
