//! Where a newer copy of a point `restore latest` passed over (damaged here)
//! is kept intact: on the remote (by the proofs its syncs kept: no network) or
//! in a mirror directory. Said, not done: the user chose the backup directory.

use std::path::Path;

use crate::config::Settings;
use crate::error::show;
use crate::remote::RemoteUrl;
use crate::remote::proof::Proofs;
use crate::store::{BackupDir, BackupSet, DbId, Entry};

fn local_set(settings: &Settings) -> Option<BackupSet> {
    let dir = BackupDir::new(&settings.backup_dir);
    match settings.db_path.as_deref() {
        Some(db) => dir.set(&DbId::of(db)).ok(),
        None => Some(BackupSet::whole_dir(dir.entries().ok()?)),
    }
}

/// The passed-over names, newest first (by the time in the name): the note
/// names the newest one with an intact copy, whatever order they were
/// passed over in (damage in the body is found before a damaged header).
fn newest_first(passed_over: &[(String, String)]) -> Vec<&str> {
    let mut names: Vec<&str> = passed_over.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_by_cached_key(|name| {
        std::cmp::Reverse(crate::store::BackupName::parse(name).map(|n| n.order_key()))
    });
    names
}

fn point<'a>(set: &'a BackupSet, name: &str) -> Option<&'a Entry> {
    set.restore_points.iter().find(|e| e.file_name == name)
}

/// The newest passed-over point whose copy on the remote is proved intact,
/// with its base for a diff. Proved as this very backup (its database
/// checksum); a point whose local header is damaged (nothing to compare) by
/// a proof this backup directory's sync made of this database's point. A
/// point of the same name proved there that is another backup is named so.
pub(crate) fn on_remote(
    settings: &Settings,
    passed_over: &[(String, String)],
    target: Option<&Path>,
) -> Option<String> {
    let target = target.map_or_else(String::new, |t| format!(" --target {}", show(t)));
    let url = RemoteUrl::parse(settings.remote.as_deref()?).ok()?;
    let proofs = Proofs::load(&settings.backup_dir, &url);
    let set = local_set(settings)?;
    let db = settings.db_path.as_deref().map(DbId::of);
    let meta = |name: &str| point(&set, name)?.meta.as_ref().ok();
    let copy = |name: &str| {
        let proved = proofs.proved_recently_as(name, &meta(name)?.checksum)?;
        Some(proved.map_err(|_| name.to_string()))
    };
    let ours = |name: &str| {
        proofs.proved().any(|(proved, source)| {
            proved == name && source.is_some_and(|s| db.as_ref().is_some_and(|db| db.owns(s)))
        })
    };
    let mut other = None;
    for name in newest_first(passed_over) {
        let at = match copy(name) {
            Some(Ok(at)) => at,
            Some(Err(name)) => {
                other = other.or(Some(name));
                continue;
            }
            None if meta(name).is_none() && ours(name) => {
                let Some(at) = proofs.proved_recently(name) else {
                    continue;
                };
                return Some(format!(
                    "note: {name}'s local header is damaged; a sync read its copy on {url} back whole at {at}, \
                     a backup of this database: dbbackup restore {name} --from-remote{target}"
                ));
            }
            None => continue,
        };
        // Its base proved there as the very base it names (by checksum): also
        // when the local base is gone (a purge, retention).
        if let Some(diff) = &meta(name).and_then(|m| m.diff.as_ref())
            && !matches!(
                proofs.proved_recently_as(&diff.base, &diff.base_checksum),
                Some(Ok(_))
            )
        {
            continue;
        }
        return Some(format!(
            "note: a newer intact copy of {name} is on {url} (read back whole at {at}): dbbackup restore {name} --from-remote{target}"
        ));
    }
    other.map(|name| {
        format!("note: {name} on {url} is another backup than the local {name} (its content differs): not a copy of it")
    })
}

/// The newest passed-over point a mirror directory holds as this very backup
/// (its header readable there, the same database checksum as the local
/// header's when that is readable; a diff with its base beside it). Only its
/// header is read here: the note says to verify it first.
pub(crate) fn in_mirror(
    settings: &Settings,
    db: &DbId,
    passed_over: &[(String, String)],
    target: Option<&Path>,
) -> Option<String> {
    let local = local_set(settings);
    let mirrors: Vec<(&Path, BackupSet)> = settings
        .mirror_dirs
        .iter()
        .filter_map(|m| Some((m.as_path(), BackupDir::new(m).set(db).ok()?)))
        .collect();
    let target = target.map_or_else(String::new, |t| format!(" --target {}", show(t)));
    newest_first(passed_over).into_iter().find_map(|name| {
        let checksum = local
            .as_ref()
            .and_then(|set| point(set, name)?.meta.as_ref().ok())
            .map(|m| m.checksum);
        mirrors.iter().find_map(|(mirror, set)| {
            let meta = point(set, name)?.meta.as_ref().ok()?;
            let same = checksum.as_ref().is_none_or(|c| *c == meta.checksum);
            let based = meta.diff.as_ref().is_none_or(|d| point(set, &d.base).is_some());
            (same && based).then(|| {
                let m = show(mirror);
                format!(
                    "note: mirror {m} holds a copy of {name} (its header there names this backup; not read whole yet): \
                     dbbackup --backup-dir {m} verify {name}, then dbbackup --backup-dir {m} restore {name}{target}"
                )
            })
        })
    })
}
