//! Whose backups the remote's points are, before an upload is placed among
//! them (docs/remote.md, "One prefix, one backup set").
//!
//! The remote orders a database's points by publication number, then by the
//! local `seq`: both are true within one backup directory's history only. A
//! point of the same database that this directory does not hold (by name and
//! content: a mirror holds the same backups, and is not another set) may come
//! from another backup directory, whose numbers say nothing about ours; only
//! the clocks that made them do. An upload that the remote's order would place
//! against that clock (above a backup made after it, or below one made before
//! it) is refused: the older data would be the remote's newest, and remote
//! retention would delete the real newest.

use std::collections::{HashMap, HashSet};

use super::RemotePoint;
use super::record::Record;
use crate::store::{BackupSet, Checksum, Entry, Metadata};

/// The backups `set` holds, by name and content.
fn held(set: &BackupSet) -> HashSet<(&str, &Checksum)> {
    set.own_files()
        .filter_map(|e| Some((e.file_name.as_str(), &e.meta.as_ref().ok()?.checksum)))
        .collect()
}

/// One of this backup directory's points ranked on the remote below an older
/// point (by the clock) uploaded from the same directory path but not by this
/// directory: one from before a scratch purge (the directory made again has
/// a new identity, and its local numbers restart), or copied in from another
/// prefix, which `restore latest` would take for the newest. `number` ranks
/// it above every point, as a fresh upload of it would be.
pub(crate) struct Lift {
    pub name: String,
    /// The older point ranked above it (the newest such).
    pub above: String,
    pub number: u64,
}

/// The points to lift ([`Lift`]), oldest first: once one of this directory's
/// points of a database ranks below such an older point, it and every later
/// point of this directory of that database go to the top, in their own
/// order. This directory's points: those whose record carries its identity
/// (`here.set`), and those it holds (by name and content), also with a
/// damaged local copy or none left.
pub(crate) fn lifts<'a>(
    on_remote: impl IntoIterator<Item = &'a RemotePoint>,
    set: &BackupSet,
    here: &Origin,
) -> Vec<Lift> {
    let points: Vec<&RemotePoint> = on_remote
        .into_iter()
        .filter(|p| p.misplaced.is_none())
        .collect();
    let held = held(set);
    let here_dir = dir_of(&here.from);
    let ours = |p: &RemotePoint| {
        let r = &p.record;
        (here.set.is_some() && r.set == here.set)
            || held.contains(&(r.name.as_str(), &r.metadata.checksum))
    };
    let same_path = |p: &RemotePoint| p.record.from.as_deref().and_then(dir_of) == here_dir;
    let mut mine: Vec<&RemotePoint> = points.iter().copied().filter(|p| ours(p)).collect();
    mine.sort_by_key(|p| p.rank());
    let mut highest = points
        .iter()
        .filter_map(|p| p.record.remote_seq)
        .max()
        .unwrap_or(0);
    let mut lifted: Vec<Lift> = Vec::new();
    let mut sources_lifting: Vec<&str> = Vec::new();
    for point in mine {
        let source = point.record.metadata.source.as_str();
        let above = points
            .iter()
            .filter(|other| {
                !ours(other)
                    && same_path(other)
                    && other.record.metadata.source == source
                    && other.record.metadata.created < point.record.metadata.created
                    && other.rank() > point.rank()
            })
            .max_by_key(|other| other.record.metadata.created);
        if above.is_none() && !sources_lifting.contains(&source) {
            continue;
        }
        if !sources_lifting.contains(&source) {
            sources_lifting.push(source);
        }
        highest += 1;
        lifted.push(Lift {
            name: point.record.name.clone(),
            above: above.map_or_else(String::new, |a| a.record.name.clone()),
            number: highest,
        });
    }
    lifted
}

/// The newest point of `meta`'s database on the remote, not held by `set`
/// nor uploaded from `entry`'s directory (one its retention pruned since:
/// ordered by that directory's numbers, as its backups are, whatever the
/// clocks of the nodes that made them), that `remote_seq` would order
/// against the clock: `entry` ranked above a backup made after it, or below
/// one made before it.
pub(crate) fn misordered<'a>(
    on_remote: impl IntoIterator<Item = &'a RemotePoint>,
    set: &BackupSet,
    (entry, meta): (&Entry, &Metadata),
    remote_seq: u64,
) -> Option<&'a RemotePoint> {
    let held = held(set);
    let here = origin(entry);
    // `RemotePoint::entry`'s order: unnumbered records rank below all others.
    let ours = (remote_seq, entry.placed.numbering, meta.seq.unwrap_or(0));
    on_remote
        .into_iter()
        .filter(|point| {
            let r = &point.record;
            // A misplaced record is another point's metadata: that point is
            // judged under its own name.
            point.misplaced.is_none()
                && r.metadata.source == meta.source
                && r.name != entry.file_name
                && !held.contains(&(r.name.as_str(), &r.metadata.checksum))
                && other_set(r, &here)
        })
        .filter(|point| {
            let r = &point.record;
            let above = ours > point.rank();
            if above {
                r.metadata.created > meta.created
            } else {
                r.metadata.created < meta.created
            }
        })
        .max_by_key(|point| point.record.metadata.created)
}

/// Why `entry` is not uploaded beside `other` (from [`misordered`]): one
/// clause naming the other backup set and the fix.
pub(crate) fn mixed_sets(other: &Record, entry: &Entry, meta: &Metadata) -> String {
    let name = &entry.file_name;
    let same_path = other.from.as_deref().and_then(dir_of) == dir_of(&origin(entry).from);
    let set = match &other.from {
        Some(from) if same_path => format!(
            "another backup directory once under this same path ({from}: made again, or a project cloned again; its backups are numbered apart from these)"
        ),
        Some(from) => format!("backup directory {from}"),
        None => format!(
            "another backup directory (made on {} by {})",
            other.metadata.host, other.metadata.job
        ),
    };
    let when = if other.metadata.created > meta.created {
        "after"
    } else {
        "before"
    };
    format!(
        "the remote holds {} of this database from {set}, made at {}, {when} {name}, and the numbers of two backup directories cannot order one against the other (the older data would become the remote's newest): give each backup directory its own remote prefix",
        other.name, other.metadata.created
    )
}

/// `there` is `entry` itself before `dbbackup adopt` gave it to this
/// database: same name and content, recorded under the path it was adopted
/// from. Its upload again replaces it (same place in the order).
pub(crate) fn adopted(there: &Record, entry: &Entry, meta: &Metadata) -> bool {
    let Some(from) = &meta.adopted_from else {
        return false;
    };
    there.name == entry.file_name
        && there.metadata.checksum == meta.checksum
        && there.metadata.source != meta.source
        && (&there.metadata.source == from || there.metadata.adopted_from.as_ref() == Some(from))
}

/// The record under `name` on the remote is another point's (copied under
/// this name): where it is, whose, and the fix.
pub(crate) fn misplaced(there: &Record, name: &str, remote: &super::RemoteUrl) -> Option<String> {
    (there.name != name).then(|| {
        format!(
            "{} holds the record of {}, not of {name} (copied under another point's name): delete that object, and the next sync uploads {name} again",
            remote.object(&format!("{name}{}", super::record::SUFFIX)),
            there.name
        )
    })
}

/// A point of this backup directory (`ours`) and `other`, of another,
/// that the remote ranks against their clocks (an earlier version placed
/// them; `sync` no longer does): which data is newer, and what to do.
pub(crate) fn misranked(ours: &Record, other: &Record, url: &super::RemoteUrl) -> String {
    let (newer, older) = if other.metadata.created > ours.metadata.created {
        (other, ours)
    } else {
        (ours, other)
    };
    format!(
        "{} on {url} ranks below {}, a backup of this database made before it in another backup directory (ranked so by an earlier version): `restore latest --from-remote` may restore older data; restore {} by name, and give each backup directory its own remote prefix",
        newer.name, older.name, newer.name
    )
}

/// Of `newest` (the backup directory's newest point of each database), those
/// on the remote ranked below a point of their database that another backup
/// directory uploaded from the same path (`here`): (the name, the highest
/// such point). A directory made again under a path after a loss makes its
/// backups after the old one's, and [`lifts`] ranks them above where the
/// clocks agree; what is still below is dated after it by the clock: the
/// node that made it runs behind (T31 R17), or two live directories share
/// the prefix. Either way `restore latest` from the remote takes the other.
pub(crate) fn below_other_set<'a>(
    on_remote: impl IntoIterator<Item = &'a RemotePoint>,
    newest: &[&Entry],
    here: &Origin,
) -> Vec<(String, String)> {
    let points: Vec<&RemotePoint> = on_remote
        .into_iter()
        .filter(|p| p.misplaced.is_none())
        .collect();
    let here_dir = dir_of(&here.from);
    newest
        .iter()
        .filter_map(|entry| {
            let meta = entry.meta.as_ref().ok()?;
            let ours = points.iter().find(|p| {
                p.record.name == entry.file_name && p.record.metadata.checksum == meta.checksum
            })?;
            let above = points
                .iter()
                .filter(|other| {
                    let r = &other.record;
                    r.metadata.source == meta.source
                        && other_identity(r.set.as_deref(), here.set.as_deref())
                        && r.from.as_deref().and_then(dir_of) == here_dir
                        && other.rank() > ours.rank()
                })
                .max_by_key(|other| other.rank())?;
            Some((entry.file_name.clone(), above.record.name.clone()))
        })
        .collect()
}

/// `keep` (retention's choice among the remote's points `entries`, by
/// their order), and every point made after the newest kept one of its
/// database, by the clock, with its base: where an earlier version ordered
/// two backup directories' points against their clocks, the order's newest
/// is not the newest data, and retention must not delete that. (Within one
/// directory, a node's clock that ran ahead only keeps a point longer.)
pub(crate) fn made_after_kept(entries: &[Entry], mut keep: HashSet<String>) -> HashSet<String> {
    let mut newest: HashMap<&str, jiff::Timestamp> = HashMap::new();
    for entry in entries.iter().filter(|e| keep.contains(&e.file_name)) {
        if let Ok(meta) = &entry.meta {
            let at = newest.entry(&meta.source).or_insert(meta.created);
            *at = (*at).max(meta.created);
        }
    }
    for entry in entries {
        let Ok(meta) = &entry.meta else { continue };
        if newest
            .get(meta.source.as_str())
            .is_some_and(|&at| meta.created > at)
        {
            keep.insert(entry.file_name.clone());
            if let Some(diff) = &meta.diff {
                keep.insert(diff.base.clone());
            }
        }
    }
    keep
}

/// The backup directory a point is uploaded from.
pub(crate) struct Origin {
    /// `HOST:DIR`.
    pub from: String,
    /// Its identity (`remote::set_id`), if it has one.
    pub set: Option<String>,
}

/// Where `entry` is uploaded from.
pub(crate) fn origin(entry: &Entry) -> Origin {
    origin_of(entry.path.parent().unwrap_or(&entry.path))
}

/// The backup directory `dir` as an upload's origin.
pub(crate) fn origin_of(dir: &std::path::Path) -> Origin {
    let set = super::set_id::of(dir);
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Origin {
        from: format!("{}:{}", crate::host::local_host_name(), dir.display()),
        set,
    }
}

/// Whether `record` was uploaded from another backup set than `here`: another
/// directory, or one under the same path with another identity (both known).
fn other_set(record: &Record, here: &Origin) -> bool {
    let other_dir = record.from.as_deref().and_then(dir_of) != dir_of(&here.from);
    other_dir || other_identity(record.set.as_deref(), here.set.as_deref())
}

/// Whether `record` was uploaded from `here`'s path by another backup
/// directory (both identities known): one there before it, made again since.
pub(crate) fn earlier_here(record: &Record, here: &Origin) -> bool {
    record.from.as_deref().and_then(dir_of) == dir_of(&here.from)
        && other_identity(record.set.as_deref(), here.set.as_deref())
}

/// The directory of an upload's `HOST:DIR`: the directory, not the host, is
/// the backup set's (sync may run on any login node).
pub(crate) fn dir_of(from: &str) -> Option<String> {
    from.split_once(':').map(|(_, dir)| dir.to_string())
}

/// Two backup directories' identities, both known and not the same: one made
/// again under the other's path numbers its backups from 1 again.
pub(crate) fn other_identity(a: Option<&str>, b: Option<&str>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}
