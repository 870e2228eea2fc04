//! What a restore or verify that listed the remote finds of the backup
//! directory's newest restore point there: a point this directory's last
//! upload record says is on the remote, but that the listing no longer shows
//! as a restore point (its record deleted or damaged at the store), cannot be
//! restored from there. Noted in the proofs, as a mismatch is, so that
//! `check` fails until a `sync` uploads it again.

use std::path::Path;

use super::proof::Proofs;
use super::{RemotePoint, RemoteUrl};
use crate::store::{BackupDir, DbId};

/// The newest restore point of `db` in `backup_dir`, when it is recorded on
/// `url` but `points` (the remote's listing) has no complete point of that
/// name: its name and why, noted in `proofs`.
pub(crate) fn note_if_unlisted(
    backup_dir: &Path,
    db: &DbId,
    url: &RemoteUrl,
    points: &[RemotePoint],
    proofs: &mut Proofs,
) -> Option<(String, String)> {
    let newest = BackupDir::new(backup_dir)
        .newest_restore_point(db, |e| crate::diff::restore_problem(e).is_none())
        .ok()??;
    let record = super::state::read_for(backup_dir, db, &url.to_string())?;
    let name = newest.file_name;
    if !record.on_remote.contains(&name) || listed(points, &name) {
        return None;
    }
    let why =
        "no valid restore-point record of it is listed there (deleted or damaged at the store)";
    proofs.note_unlisted(&name, why.to_string());
    Some((name, why.to_string()))
}

/// Of the points the last sync's `record` says are on the remote, those the
/// listing `points` no longer shows as restore points (a record deleted or
/// overwritten at the store, a point gone).
pub(crate) fn unlisted<'a>(
    record: &'a super::state::Uploaded,
    points: &'a [RemotePoint],
) -> impl Iterator<Item = &'a String> + 'a {
    record.on_remote.iter().filter(|name| !listed(points, name))
}

fn listed(points: &[RemotePoint], name: &str) -> bool {
    points.iter().any(|p| p.record.name == name)
}
