//! A remote restore point brought next to where it is needed: downloaded into a
//! private directory beside the restore target (or export file), checked against
//! its record, with its base for a diff. The restore and export engines then
//! read it there exactly as from the backup directory (SHA-256, integrity check,
//! never a partial target).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::proof::Proofs;
use super::{Remote, RemotePoint};
use crate::error::{Context, Error, Result, show};
use crate::store::{BackupName, BackupSet, Checksum, DbId, Entry};

/// The downloaded files; removed with this value.
#[derive(Debug)]
pub(crate) struct Staged {
    dir: PathBuf,
    /// The restore point's file name in [`Staged::dir`].
    pub name: String,
    /// `latest`: newer points passed over, and why (missing, damaged, or
    /// bytes that do not match their SHA-256).
    pub passed_over: Vec<(String, String)>,
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

impl Staged {
    /// A new private directory for downloads in `beside` (those a killed
    /// run of this host left there removed first).
    pub(crate) fn new(beside: &Path) -> Result<Staged> {
        check_beside(beside)?;
        Staged::create(beside)
    }

    fn create(beside: &Path) -> Result<Staged> {
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
        Ok(Staged {
            dir,
            name: String::new(),
            passed_over: Vec::new(),
        })
    }

    /// Download the point `name` and, for a diff, its base into this
    /// directory (a file already here, a base fetched for an earlier diff, is
    /// not downloaded again); it becomes [`Staged::name`]. A point that
    /// cannot be restored is refused, naming it.
    pub(crate) fn add(
        &mut self,
        remote: &Remote,
        points: &[RemotePoint],
        name: &str,
        proofs: &mut Proofs,
    ) -> Result<()> {
        let point = by_name(remote, points, name)?;
        match fetch(remote, points, point, &self.dir, proofs) {
            Ok(()) => {
                self.name = point.record.name.clone();
                Ok(())
            }
            Err(Skip::Unrestorable(why)) => Err(Error::failed(format!(
                "{} cannot be restored from {}: {why}",
                point.record.name,
                remote.url()
            ))),
            Err(Skip::Fail(error)) => Err(error),
        }
    }
}

/// The user's mistake, said as the local commands say it, not as the
/// private download directory that could not be made in it.
fn check_beside(beside: &Path) -> Result<()> {
    if !beside.as_os_str().is_empty() && !beside.is_dir() {
        return Err(Error::failed(format!(
            "directory {} does not exist; create it first",
            show(beside)
        )));
    }
    Ok(())
}

/// The databases (by SHA-256) a whole read found failing `integrity_check`,
/// with why a remote point holding one cannot be restored: a backup in the
/// backup directory (`damage::unsound_by_checksum`), or a point of the
/// remote (`verify --from-remote`, [`Proofs::unsound_by_checksum`]).
pub(crate) fn unsound(backup_dir: &Path, proofs: &Proofs) -> HashMap<Checksum, String> {
    let remote = proofs
        .unsound_by_checksum()
        .into_iter()
        .map(|(sum, (name, finding))| {
            let why =
                format!("a whole read of {name} there found the database in it failing {finding}");
            (sum, why)
        });
    let here = crate::store::damage::unsound_by_checksum(backup_dir)
        .into_iter()
        .map(|(sum, (name, finding))| {
            let why = format!(
                "it holds the same database as {name} in the backup directory, which failed {finding}"
            );
            (sum, why)
        });
    // The backup directory's finding is said where both have one.
    remote.chain(here).collect()
}

/// Download `name` (or the newest intact restore point of `db`, for
/// `latest`) and, for a diff, its base into a new directory in `beside`.
/// `points`: the remote's listing. What each download read is noted in
/// `proofs`. `latest` passes over a point whose bytes do not match their
/// SHA-256 (or whose base's do not), naming it, as over a missing one; a
/// point asked for by name is refused (`Error::Damaged`).
///
/// `unsound`: databases (by SHA-256) a whole read found failing
/// `integrity_check` ([`unsound`]): `latest` passes over a point holding
/// one, as a local `restore latest` does (T35 R8).
pub(crate) fn stage(
    remote: &Remote,
    (points, unsound): (&[RemotePoint], &HashMap<Checksum, String>),
    name: &str,
    db: Option<&DbId>,
    beside: &Path,
    proofs: &mut Proofs,
) -> Result<Staged> {
    check_beside(beside)?;
    if name != "latest" {
        // Named before a directory is made for it.
        by_name(remote, points, name)?;
        let mut staged = Staged::create(beside)?;
        staged.add(remote, points, name, proofs)?;
        return Ok(staged);
    }
    let candidates = newest_first(remote, points, db)?;
    let mut staged = Staged::create(beside)?;
    for point in candidates {
        if let Some(why) = unsound.get(&point.record.metadata.checksum) {
            let why = why.clone();
            tracing::warn!(
                "passed over newer {} on {}: {why}",
                point.record.name,
                remote.url()
            );
            staged.passed_over.push((point.record.name.clone(), why));
            continue;
        }
        let why = match fetch(remote, points, point, &staged.dir, proofs) {
            Ok(()) => {
                staged.name = point.record.name.clone();
                misplaced_newer(remote, points, db, &mut staged);
                return Ok(staged);
            }
            Err(Skip::Fail(Error::Damaged { name, why, .. })) => {
                if name == point.record.name {
                    why
                } else {
                    format!("its base {name} is damaged: {why}")
                }
            }
            Err(Skip::Unrestorable(why)) => why,
            Err(Skip::Fail(error)) => return Err(error),
        };
        tracing::warn!(
            "passed over newer {} on {}: {why}",
            point.record.name,
            remote.url()
        );
        staged.passed_over.push((point.record.name.clone(), why));
    }
    let owner = db.map_or_else(String::new, |db| format!(" of {}", show(db.canonical())));
    Err(Error::failed(if staged.passed_over.is_empty() {
        format!("no restore point{owner} on {}", remote.url())
    } else {
        format!(
            "no intact restore point{owner} on {}: {}",
            remote.url(),
            staged
                .passed_over
                .iter()
                .map(|(name, why)| format!("{name}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        )
    }))
}

/// Downloads for a run that reads every point (`verify --from-remote`):
/// each base is downloaded once and kept while the diffs on it are read,
/// given grouped by base ([`by_base`]); a diff's download goes once it was
/// read. Disk: one base and one diff at a time.
pub(crate) struct OneBaseAtATime<'a> {
    beside: &'a Path,
    /// The base (or full point) of the group being read, and its directory.
    held: Option<(String, Staged)>,
}

impl<'a> OneBaseAtATime<'a> {
    pub(crate) fn new(beside: &'a Path) -> Self {
        OneBaseAtATime { beside, held: None }
    }

    /// The point `name` downloaded with its base (the base kept from the
    /// point before it when they share it), in the directory returned.
    pub(crate) fn stage(
        &mut self,
        remote: &Remote,
        points: &[RemotePoint],
        name: &str,
        proofs: &mut Proofs,
    ) -> Result<&Staged> {
        let group = group_of(points, name);
        let mut staged = match self.held.take() {
            Some((held, staged)) if held == group => staged,
            // The group before is done: its directory goes with it.
            _ => Staged::new(self.beside)?,
        };
        staged.add(remote, points, name, proofs)?;
        Ok(&self.held.insert((group, staged)).1)
    }

    /// `name` was read: a diff's download goes, its base stays for the next
    /// diff on it. After a failure nothing is kept: the next point is
    /// downloaded as if alone, with its base.
    pub(crate) fn read(&mut self, name: &str, ok: bool) {
        match &self.held {
            Some(_) if !ok => self.held = None,
            Some((group, staged)) if group != name => {
                let _ = fs::remove_file(staged.dir.join(name));
            }
            _ => {}
        }
    }
}

/// The base a point's group is named by: a diff's base, or the point itself.
fn group_of(points: &[RemotePoint], name: &str) -> String {
    points
        .iter()
        .find(|p| p.record.name == name)
        .and_then(|p| p.record.metadata.diff.as_ref())
        .map_or_else(|| name.to_string(), |diff| diff.base.clone())
}

/// `entries` (remote points, newest first) with the diffs on one base and
/// that base side by side, so that [`OneBaseAtATime`] downloads each base
/// once; groups in the order of their newest point, newest first in each.
pub(crate) fn by_base(points: &[RemotePoint], entries: Vec<Entry>) -> Vec<Entry> {
    let mut groups: Vec<(String, Vec<Entry>)> = Vec::new();
    for entry in entries {
        let group = group_of(points, &entry.file_name);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(entry),
            None => groups.push((group, vec![entry])),
        }
    }
    groups
        .into_iter()
        .flat_map(|(_, members)| members)
        .collect()
}

/// Why a point was not fetched.
enum Skip {
    /// Known before anything is read: its object is missing or of another
    /// size, or it is a diff whose base is.
    Unrestorable(String),
    /// A download that failed: `Error::Damaged` for bytes that do not match.
    Fail(Error),
}

impl From<Error> for Skip {
    fn from(e: Error) -> Self {
        Skip::Fail(e)
    }
}

/// `point` and, for a diff, its base, downloaded into `dir` and checked.
fn fetch(
    remote: &Remote,
    points: &[RemotePoint],
    point: &RemotePoint,
    dir: &Path,
    proofs: &mut Proofs,
) -> std::result::Result<(), Skip> {
    // A missing or cut object is noted like other bytes: `check` must not
    // keep an older proof of it (or of a diff on it) as good.
    if let Some(problem) = &point.problem {
        proofs.note(point, point.e_tag.clone(), Some(problem.clone()));
        return Err(Skip::Unrestorable(problem.clone()));
    }
    let mut wanted = vec![point];
    if let Some(diff) = &point.record.metadata.diff {
        let base = points.iter().find(|p| p.record.name == diff.base);
        if let Some(base) = base
            && let Some(problem) = &base.problem
        {
            proofs.note(base, base.e_tag.clone(), Some(problem.clone()));
        }
        let why = format!("it is a diff whose base {} is not there", diff.base);
        // No record of the base (deleted or damaged there): noted as a
        // mismatch would be, so that `check` fails until a sync repairs it.
        if base.is_none() {
            proofs.note_unlisted(&diff.base, "no record of it is listed there".to_string());
        }
        let base = base
            .filter(|p| p.complete())
            .ok_or_else(|| Skip::Unrestorable(why))?;
        wanted.push(base);
    }
    // The base first: a diff's content is read through it.
    for point in wanted.into_iter().rev() {
        // A base already fetched (and read) for a diff passed over.
        if dir.join(&point.record.name).exists() {
            continue;
        }
        tracing::info!("downloading {} from {}", point.record.name, remote.url());
        let e_tag = match remote.download(point, dir) {
            Ok((_, e_tag)) => e_tag,
            Err(error) => {
                if let Error::Damaged { why, .. } = &error {
                    proofs.note(point, point.e_tag.clone(), Some(why.clone()));
                }
                return Err(Skip::Fail(error));
            }
        };
        // Bytes that match their record prove nothing if the record was
        // made of a damaged file: a point is proved only once its content
        // reads back whole, as a restore reads it.
        match content_problem(dir, &point.record.name)? {
            None => proofs.note(point, e_tag, None),
            Some(why) => {
                proofs.note_content_damage(point, e_tag, why.clone());
                return Err(Skip::Fail(Error::Damaged {
                    backup: PathBuf::from(format!("{}/{}", remote.url(), point.record.name)),
                    name: point.record.name.clone(),
                    why,
                }));
            }
        }
    }
    Ok(())
}

/// Why the downloaded `name` in `dir` does not read back whole, if it does
/// not (`content::problem`).
fn content_problem(dir: &Path, name: &str) -> Result<Option<String>> {
    super::content::problem(&crate::store::BackupDir::new(dir).by_name(name)?)
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

/// The point `name` names.
fn by_name<'a>(remote: &Remote, points: &'a [RemotePoint], name: &str) -> Result<&'a RemotePoint> {
    points
        .iter()
        .find(|p| p.record.name == name)
        .ok_or_else(|| {
            Error::failed(format!(
                "no restore point named '{name}' on {} (see `dbbackup list --from-remote`)",
                remote.url()
            ))
        })
}

/// Whether the remote's listing `points` holds no restore point of `db`.
pub(crate) fn holds_none_of(remote: &Remote, points: &[RemotePoint], db: &DbId) -> bool {
    newest_first(remote, points, Some(db)).map_or(true, |chosen| chosen.is_empty())
}

/// For `latest`: the restore points of `db`, or of the one database the
/// remote holds points of, newest first.
/// Names newer than the point `latest` took whose record is another point's
/// (copied under the name): never a candidate, so without this the newest
/// name under the prefix was passed over in silence. Said as passed over.
fn misplaced_newer(
    remote: &Remote,
    points: &[RemotePoint],
    db: Option<&DbId>,
    staged: &mut Staged,
) {
    let Some(taken) = BackupName::parse(&staged.name) else {
        return;
    };
    for point in points {
        let (Some(_), Some(problem), Some(name)) = (
            &point.misplaced,
            &point.problem,
            BackupName::parse(&point.record.name),
        ) else {
            continue;
        };
        let ours = db.is_none_or(|db| db.owns(&point.record.metadata.source));
        if ours && name.order_key() > taken.order_key() {
            tracing::warn!(
                "passed over newer {} on {}: {problem}",
                point.record.name,
                remote.url()
            );
            staged
                .passed_over
                .push((point.record.name.clone(), problem.clone()));
        }
    }
}

/// The databases `points` are of, each once, sorted.
fn databases<'a>(points: impl Iterator<Item = &'a RemotePoint>) -> Vec<&'a str> {
    let mut sources: Vec<&str> = points.map(|p| p.record.metadata.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    sources
}

fn newest_first<'a>(
    remote: &Remote,
    points: &'a [RemotePoint],
    db: Option<&DbId>,
) -> Result<Vec<&'a RemotePoint>> {
    let entries: Vec<Entry> = points
        .iter()
        .filter_map(|p| p.entry(remote.url()))
        .collect();
    let owner = match db {
        Some(db) => db.clone(),
        None => {
            let sources = databases(
                points
                    .iter()
                    .filter(|p| p.record.metadata.kind != crate::store::Kind::PreRestore),
            );
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
    let chosen: Vec<&RemotePoint> = set
        .iter()
        .filter_map(|e| points.iter().find(|p| p.record.name == e.file_name))
        .collect();
    if chosen.is_empty() {
        return Err(none_of(&owner, remote, points));
    }
    Ok(chosen)
}

/// No restore point of `owner` among `points`: the databases the prefix
/// does hold, and how to take one (the day it matters is often on another
/// machine or path, T31 R18).
pub(crate) fn none_of(owner: &DbId, remote: &Remote, points: &[RemotePoint]) -> Error {
    let held = match databases(points.iter().filter(|p| p.complete())).as_slice() {
        [] => String::new(),
        [only] => format!(
            "; it holds restore points of {only}: give `--db-path {only}` (with `--target FILE` to restore it elsewhere)"
        ),
        many => format!(
            "; it holds restore points of {}: give the one meant with --db-path (with `--target FILE` to restore it elsewhere)",
            many.join(", ")
        ),
    };
    Error::failed(format!(
        "no restore point of {} on {}{held}",
        show(owner.canonical()),
        remote.url()
    ))
}
