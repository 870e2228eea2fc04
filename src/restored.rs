//! The last restore into each database, recorded so that the size drop it made
//! is not taken for an unintended shrink (`check`'s `shrink`, retention's
//! pre-shrink hold, locally, in mirrors and on the remote): a restore is the
//! user's explicit act ("undo a job" with `restore --before-job`).
//!
//! One small JSON record per database, `<backup dir>/.dbbackup-state/restored-<db key>`,
//! replaced by each restore. It holds the highest publication number (`seq`)
//! in the directory when the restore was made: the shrink criteria compare only
//! the restore points published after it, and the one restored (its size is
//! what the database was set to). A shrink after further backups is caught as
//! before.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, show};
use crate::slurm::array::STATE_DIR;
use crate::store::{DbId, Entry, replace_file};

/// Largest record read back: a record is a few hundred bytes.
const MAX_RECORD: u64 = 64 * 1024;

/// One restore into a database, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Restored {
    pub time: jiff::Timestamp,
    /// The backup restored (by file name).
    pub backup: String,
    /// The highest publication number in the backup directory right after the
    /// restore: restore points above it were made after the restore.
    pub seq: u64,
    /// The existing backups that stood in for a pre-restore copy (the
    /// replaced database was already in them), oldest first, carried from
    /// record to record: retention keeps them as it keeps pre-restore copies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<Undo>,
    /// Restored with `--force`: not known to be a restore point that passed
    /// its check (another database's file, a failed snapshot), so `check`
    /// does not take it for a repair (T29c N4).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

/// A backup standing in for a restore's pre-restore copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Undo {
    /// When the restore was made.
    pub time: jiff::Timestamp,
    pub backup: String,
}

/// Stand-ins remembered: far more than any `keep_pre_restore` in use.
const MAX_UNDO: usize = 64;

fn place(backup_dir: &Path, db: &DbId) -> std::path::PathBuf {
    backup_dir
        .join(STATE_DIR)
        .join(format!("restored-{}", db.key()))
}

/// Record that `backup` was restored into `db` (`forced`: with `--force`),
/// in `backup_dir` (whose publication numbers `seq` is of); `undo`: the
/// existing backup that holds what it replaced, when no pre-restore copy
/// was made.
pub(crate) fn record(
    backup_dir: &Path,
    db: &DbId,
    (backup, forced): (&str, bool),
    seq: u64,
    undo: Option<&str>,
) -> Result<()> {
    let state = backup_dir.join(STATE_DIR);
    match crate::store::perms::create_dir(&state) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Io {
                context: format!("cannot create {}", show(&state)),
                source: e,
            });
        }
        _ => {}
    }
    let time = jiff::Timestamp::now();
    let mut kept = read(backup_dir, db).map_or(Vec::new(), |r| r.undo);
    kept.extend(undo.map(|backup| Undo {
        time,
        backup: backup.to_string(),
    }));
    let excess = kept.len().saturating_sub(MAX_UNDO);
    kept.drain(..excess);
    let restored = Restored {
        time,
        backup: backup.to_string(),
        seq,
        undo: kept,
        forced,
    };
    let text = serde_json::to_vec(&restored)
        .map_err(|e| Error::failed(format!("cannot encode restore record: {e}")))?;
    replace_file(&place(backup_dir, db), 0o664, &text)
}

/// The last restore into `db` recorded in `backup_dir`, if any (an unreadable
/// record is none: the shrink criteria then compare every restore point, the
/// safe side).
pub(crate) fn read(backup_dir: &Path, db: &DbId) -> Option<Restored> {
    use std::io::Read;
    let file = crate::store::open_no_follow(&place(backup_dir, db)).ok()?;
    let mut text = Vec::new();
    file.take(MAX_RECORD).read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

/// `points` (newest first) with the one `restored` set the database back to
/// first when no backup was made since that restore (what the database last
/// held): the newer points made before it hold what the restore undid, and
/// `latest` must not bring that back in silence. Also those undone points.
pub(crate) fn rolled_back_first(
    mut points: Vec<Entry>,
    restored: Option<&Restored>,
) -> (Vec<Entry>, Vec<String>) {
    let Some(restored) = restored else {
        return (points, Vec::new());
    };
    let Some(at) = points.iter().position(|e| e.file_name == restored.backup) else {
        return (points, Vec::new());
    };
    let before_restore = |e: &Entry| e.seq().is_some_and(|seq| seq <= restored.seq);
    if !points[..at].iter().all(before_restore) {
        return (points, Vec::new());
    }
    // Only points that can be restored hold what it undid: a damaged one
    // (a copy of another backup, say) is no way back (T32 G2).
    let undone = points[..at]
        .iter()
        .filter(|e| crate::diff::restore_problem(e).is_none())
        .map(|e| e.file_name.clone())
        .collect();
    let chosen = points.remove(at);
    points.insert(0, chosen);
    (points, undone)
}

/// The restore points `latest` chooses from (`store::latest::restore_points`),
/// the point a rollback set the database back to first until a backup is made
/// after it (`rolled_back_first`), with a warning naming the undone ones: one
/// `latest` for restore and export.
pub(crate) fn latest_points(
    dir: &crate::store::BackupDir,
    db: Option<&DbId>,
    target: Option<&DbId>,
) -> Result<Vec<Entry>> {
    let points = crate::store::latest::restore_points(dir, db, target)?;
    let Some(db) = db else {
        return Ok(points);
    };
    let restored = read(dir.path(), db);
    let (points, undone) = rolled_back_first(points, restored.as_ref());
    if let (Some(restored), false) = (&restored, undone.is_empty()) {
        tracing::warn!(
            "`latest` is {}: the database was set back to it at {} and no backup was made since; \
             the newer {} hold{} what that restore undid (`dbbackup restore NAME` takes one)",
            restored.backup,
            restored.time,
            undone.join(", "),
            if undone.len() == 1 { "s" } else { "" }
        );
    }
    Ok(points)
}

/// The restore points among `points` (newest first) that the shrink criteria
/// compare: after `restored`, those published since and the one restored;
/// without a restore, all of them.
pub(crate) fn since<'a>(
    points: impl IntoIterator<Item = &'a Entry>,
    restored: Option<&Restored>,
) -> Vec<&'a Entry> {
    since_by(points, restored, Entry::seq)
}

/// [`since`], with each point's publication number in the backup directory
/// given (the remote's entries rank by the store's order).
pub(crate) fn since_by<'a>(
    points: impl IntoIterator<Item = &'a Entry>,
    restored: Option<&Restored>,
    seq_of: impl Fn(&Entry) -> Option<u64>,
) -> Vec<&'a Entry> {
    points
        .into_iter()
        .filter(|e| match restored {
            None => true,
            Some(r) => e.file_name == r.backup || seq_of(e).is_some_and(|seq| seq > r.seq),
        })
        .collect()
}
