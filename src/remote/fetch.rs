//! A remote restore point brought next to where it is needed: downloaded into a
//! private directory beside the restore target (or export file), checked against
//! its record, with its base for a diff. The restore and export engines then
//! read it there exactly as from the backup directory (SHA-256, integrity check,
//! never a partial target).

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::{Remote, RemotePoint};
use crate::error::{Context, Error, Result, show};
use crate::store::{BackupSet, DbId, Entry};

/// The downloaded files; removed with this value.
#[derive(Debug)]
pub(crate) struct Staged {
    dir: PathBuf,
    /// The restore point's file name in [`Staged::dir`].
    pub name: String,
}

impl Staged {
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Download `name` (or the newest restore point of `db`, for `latest`) and,
/// for a diff, its base into a new directory in `beside`.
/// `points`: the remote's listing.
pub(crate) fn stage(
    remote: &Remote,
    points: &[RemotePoint],
    name: &str,
    db: Option<&DbId>,
    beside: &Path,
) -> Result<Staged> {
    let point = choose(remote, points, name, db)?;
    let mut wanted = vec![point.clone()];
    if let Some(diff) = &point.record.metadata.diff {
        let base = points
            .iter()
            .find(|p| p.record.name == diff.base && p.complete())
            .ok_or_else(|| {
                Error::failed(format!(
                    "{} on {} is a diff whose base {} is not there; it cannot be restored",
                    point.record.name,
                    remote.url(),
                    diff.base
                ))
            })?;
        wanted.push(base.clone());
    }
    remove_dead_stages(beside);
    static STAGED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STAGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = beside.join(format!("{}{}-{n}", stage_prefix(), std::process::id()));
    // Left by a run of this process id that was killed: ours now.
    let _ = fs::remove_dir_all(&dir);
    // Private: the database's content passes through it.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .context(|| format!("cannot create {} for the download", show(&dir)))?;
    let staged = Staged {
        dir,
        name: point.record.name.clone(),
    };
    for point in &wanted {
        tracing::info!("downloading {} from {}", point.record.name, remote.url());
        remote.download(point, &staged.dir)?;
    }
    Ok(staged)
}

/// `.dbbackup-remote-HOST-`: the staging directories of this host's
/// processes (the pid follows), told apart on a shared file system.
fn stage_prefix() -> String {
    format!(".dbbackup-remote-{}-", crate::store::atomic::this_host())
}

/// Remove the staging directories a killed restore or export of this host
/// left in `dir` (a download of a whole backup each); a live one's stays.
fn remove_dead_stages(dir: &Path) {
    let prefix = stage_prefix();
    let Ok(items) = fs::read_dir(dir) else { return };
    for item in items.flatten() {
        let name = item.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        if pid.is_some_and(crate::store::atomic::is_dead) && fs::remove_dir_all(item.path()).is_ok()
        {
            tracing::info!(
                "removed {}, left by an interrupted download",
                show(&item.path())
            );
        }
    }
}

/// The point `name` names; `latest`: the newest restore point of `db`, or of
/// the one database the remote holds points of.
fn choose<'a>(
    remote: &Remote,
    points: &'a [RemotePoint],
    name: &str,
    db: Option<&DbId>,
) -> Result<&'a RemotePoint> {
    if name != "latest" {
        return points
            .iter()
            .find(|p| p.record.name == name)
            .ok_or_else(|| {
                Error::failed(format!(
                    "no restore point named '{name}' on {} (see `dbbackup list --from-remote`)",
                    remote.url()
                ))
            });
    }
    let entries: Vec<Entry> = points
        .iter()
        .filter_map(|p| p.entry(remote.url()))
        .collect();
    let owner = match db {
        Some(db) => db.clone(),
        None => {
            let mut sources: Vec<&str> = points
                .iter()
                .filter(|p| p.record.metadata.kind != crate::store::Kind::PreRestore)
                .map(|p| p.record.metadata.source.as_str())
                .collect();
            sources.sort_unstable();
            sources.dedup();
            match sources.as_slice() {
                [only] => DbId::of(Path::new(only)),
                [] => {
                    return Err(Error::failed(format!(
                        "no restore point on {}",
                        remote.url()
                    )));
                }
                many => {
                    return Err(Error::usage(format!(
                        "{} holds restore points of {} databases ({}); say which with --db-path",
                        remote.url(),
                        many.len(),
                        many.join(", ")
                    )));
                }
            }
        }
    };
    let mut set = BackupSet::of(entries, &owner).restore_points;
    set.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
    let chosen = set
        .iter()
        .position(|e| e.damage.is_none())
        .unwrap_or(set.len());
    for passed in &set[..chosen] {
        tracing::warn!(
            "passed over newer {} on {}: {}",
            passed.file_name,
            remote.url(),
            passed.damage.as_deref().unwrap_or_default()
        );
    }
    let newest = set.get(chosen).ok_or_else(|| {
        Error::failed(format!(
            "no restore point of {} on {}",
            show(owner.canonical()),
            remote.url()
        ))
    })?;
    points
        .iter()
        .find(|p| p.record.name == newest.file_name)
        .ok_or_else(|| Error::failed("remote listing changed while read"))
}
