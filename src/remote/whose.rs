//! Whose backup a remote point asked for by name is. The remote record says
//! which database it was made of (`source`); one prefix may hold several
//! databases' points, and two of them may carry the same name (made in the
//! same second). A point of another database handed over under a name this
//! database's backup directory also holds would be the wrong data without a
//! word (docs/remote.md, "One prefix, one backup set").

use std::path::Path;

use super::RemotePoint;
use crate::error::show;
use crate::store::{BackupDir, DbId};

/// The database the point `name` in `points` is a backup of, when that is
/// not `db`.
pub(crate) fn other_database<'a>(
    points: &'a [RemotePoint],
    name: &str,
    db: &DbId,
) -> Option<&'a str> {
    let point = points.iter().find(|p| p.record.name == name)?;
    let source = point.record.metadata.source.as_str();
    (!db.owns(source)).then_some(source)
}

/// What `other_database` found, as one clause: the point, whose it is, and
/// (when `backup_dir` holds a backup of `db` under the same name) that the
/// local one is another backup.
pub(crate) fn said(
    url: &super::RemoteUrl,
    name: &str,
    source: &str,
    db: &DbId,
    backup_dir: &Path,
) -> String {
    let ours_here = BackupDir::new(backup_dir)
        .by_name(name)
        .ok()
        .and_then(|entry| entry.meta.ok())
        .is_some_and(|meta| db.owns(&meta.source));
    let local = if ours_here {
        format!(
            " (the local {name} in {} is this database's, another backup: without --from-remote it is taken from there)",
            show(backup_dir)
        )
    } else {
        String::new()
    };
    format!(
        "{name} on {url} is a backup of {source}, not of {}{local}",
        show(db.canonical())
    )
}
