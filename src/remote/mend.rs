//! A point numbered above one its own backup directory made after it: its
//! record copied in from another prefix (numbered there), or an unsealed
//! (format 1) record changed at the store. Within one backup directory the
//! local `seq` and the clock agree on which backup is newer; when both say
//! another point is newer, the remote's number is wrong, and `restore latest`
//! would take the older data for the newest. Such a point is read below that
//! newer one (every reader of the listing: restore, list, verify, retention),
//! and a warning names it.

use super::{Remote, RemotePoint, RemoteUrl};
use crate::error::Result;
use crate::error::show;
use crate::store::{BackupDir, DbId};

/// The directory a record was uploaded from (`HOST:DIR`, any host: sync may
/// run on any login node); `None` for records before it was kept.
fn dir(point: &RemotePoint) -> Option<&str> {
    let from = point.record.from.as_deref()?;
    Some(from.split_once(':').map_or(from, |(_, dir)| dir))
}

/// The lowest number among points that `points[i]`'s own backup directory
/// made after it (a higher local `seq` and a later time) but that rank below
/// it, with the newest of them by name.
fn newer_ranked_below(points: &[RemotePoint], i: usize) -> Option<(u64, &str)> {
    let point = &points[i];
    let record = &point.record;
    let now = record.remote_seq?;
    let seq = record.metadata.seq?;
    if point.misplaced.is_some() {
        return None;
    }
    let same_dir = |other: &RemotePoint| {
        let same_path = match (dir(point), dir(other)) {
            (Some(a), Some(b)) => a == b,
            // A record without it: the local number and the clock decide alone.
            _ => true,
        };
        same_path
            && !super::identity::other_identity(record.set.as_deref(), other.record.set.as_deref())
    };
    points
        .iter()
        .filter(|other| {
            let r = &other.record;
            other.misplaced.is_none()
                && r.metadata.source == record.metadata.source
                && same_dir(other)
                && r.metadata.seq.is_some_and(|s| s > seq)
                && r.metadata.created > record.metadata.created
                && r.remote_seq.is_some_and(|n| n < now)
        })
        .filter_map(|other| Some((other.record.remote_seq?, other.record.name.as_str())))
        .min()
}

/// Read each point numbered above a newer point of its own backup directory
/// just below that point (a tie in the number is ordered by the local `seq`),
/// warning once for each.
pub(crate) fn order(points: &mut [RemotePoint], url: &RemoteUrl) {
    let mut warned: Vec<String> = Vec::new();
    // Moving one down may rank it below an older point of its directory,
    // which then moves too: at most one pass per point.
    for _ in 0..points.len() {
        let mut moved = false;
        for i in 0..points.len() {
            let Some((number, newer)) = newer_ranked_below(points, i) else {
                continue;
            };
            let newer = newer.to_string();
            let point = &mut points[i];
            if !warned.contains(&point.record.name) {
                tracing::warn!(
                    "{} on {url} is numbered above {newer}, which its backup directory made after it \
                     (its record copied from another prefix, or changed at the store): read below it, \
                     so `restore latest` does not take the older data for the newest",
                    point.record.name
                );
                warned.push(point.record.name.clone());
            }
            let stored = point.record.remote_seq;
            point.mended_from = point.mended_from.or(stored);
            point.record.remote_seq = Some(number);
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

/// The remote's points as this backup directory knows them: its points
/// ranked below older points not its own (from before a scratch purge, whose
/// numbers restarted, or copied in from another prefix since the last `sync`)
/// are read above them, with a warning, as the next `sync` writes them
/// (`lift_own`, `identity::lifts`); after a rollback, the point rolled
/// back to is `latest`. Without the backup directory or a configured
/// database, the listing as it is.
pub(crate) fn points_here(
    remote: &Remote,
    backups: &BackupDir,
    db: Option<&DbId>,
) -> Result<Vec<RemotePoint>> {
    let mut points = remote.points()?;
    let Some(set) = db.and_then(|db| backups.set(db).ok()) else {
        return Ok(points);
    };
    let here = super::identity::origin_of(backups.path());
    for lift in super::identity::lifts(points.iter(), &set, &here) {
        if !lift.above.is_empty() {
            tracing::warn!(
                "{} on {} is numbered below {}, though {} made it later (that one is from before a scratch purge, \
                 or copied in from another prefix): read above it, so `restore latest` takes the newest data; \
                 `dbbackup sync` writes its record so",
                lift.name,
                remote.url(),
                lift.above,
                show(backups.path())
            );
        }
        if let Some(point) = points.iter_mut().find(|p| p.record.name == lift.name) {
            point.mended_from = point.mended_from.or(point.record.remote_seq);
            point.record.remote_seq = Some(lift.number);
        }
    }
    if let Some(db) = db {
        rolled_back_above(&mut points, backups, db, &set, remote);
    }
    Ok(points)
}

/// After a rollback (`restore NAME` of an older point into the database) and
/// before any backup since, `latest` is the point rolled back to, on the
/// remote as in the backup directory (`restored::rolled_back_first`): the
/// newer points, all made here before that restore, hold what it undid. Read
/// above them, with a warning naming them.
fn rolled_back_above(
    points: &mut [RemotePoint],
    backups: &BackupDir,
    db: &DbId,
    set: &crate::store::BackupSet,
    remote: &Remote,
) {
    let Some(restored) = crate::restored::read(backups.path(), db) else {
        return;
    };
    let Some(at) = points
        .iter()
        .position(|p| p.misplaced.is_none() && p.record.name == restored.backup)
    else {
        return;
    };
    let source = points[at].record.metadata.source.clone();
    let made_before_the_restore = |name: &str| {
        set.own_files()
            .any(|e| e.file_name == name && e.seq().is_some_and(|seq| seq <= restored.seq))
    };
    let above: Vec<&RemotePoint> = points
        .iter()
        .filter(|p| p.misplaced.is_none() && p.record.metadata.source == source)
        .filter(|p| p.rank() > points[at].rank())
        .collect();
    if above.is_empty()
        || !above
            .iter()
            .all(|p| made_before_the_restore(&p.record.name))
    {
        return;
    }
    let undone: Vec<String> = above.iter().map(|p| p.record.name.clone()).collect();
    let highest = points
        .iter()
        .filter_map(|p| p.record.remote_seq)
        .max()
        .unwrap_or(0);
    tracing::warn!(
        "`latest` on {} is {}: the database was set back to it at {} and no backup was made since; \
         the newer {} hold{} what that restore undid (`dbbackup restore NAME --from-remote` takes one)",
        remote.url(),
        restored.backup,
        restored.time,
        undone.join(", "),
        if undone.len() == 1 { "s" } else { "" }
    );
    points[at].record.remote_seq = Some(highest + 1);
}
