//! The outcome of every backup attempt, kept so that `check` is unhealthy while
//! a database's newest attempt failed, also when that attempt left no file (a
//! full disk, a read-only or missing backup directory, a lock or busy timeout):
//! docs/reliability.md "A failed attempt that leaves no file".
//!
//! One small JSON record per database, replaced atomically, in the first place
//! that takes it:
//! 1. `<backup dir>/.dbbackup-state/attempt-<db key>`, when the backup directory
//!    exists (a failed attempt never creates it);
//! 2. beside the database, `.<name>.dbbackup-attempt` (the backup directory is
//!    missing, read-only or on a full disk);
//! 3. for a failure neither can take (no data block left for the record), an
//!    empty marker `<either>.failed` whose mtime is the failure time: an empty
//!    file needs an inode, not a data block.
//!
//! The attempt that ended last wins, by the order of writing, not by any clock
//! (a node with a fast clock must not pin its record over later attempts): each
//! attempt replaces the record, then removes the other place's record and every
//! marker. So a marker that is present was left after the last record was
//! written, and readers take it over any record; two records (a removal that
//! failed, e.g. on a read-only backup directory) are told apart by the
//! publication number each saw (a failure wins a tie), else by time.
//!
//! A record also holds the highest publication number (`seq`) in the backup
//! directory when the attempt ended: a restore point published after a failed
//! attempt (by a version that kept no records, or whose record could not be
//! written) has a higher one, which no clock affects. A success names its
//! backup: when that is gone or cannot be restored any more, the attempt is not
//! a success (`Record::lost`).

mod awaited;

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Result, show};
use crate::slurm::array::STATE_DIR;
use crate::slurm::job::JobContext;
use crate::store::{DbId, Kind, open_no_follow, replace_file};

pub(crate) use awaited::{Awaited, PostJobDue};

/// Largest record read back: a record is a few hundred bytes, plus about 100
/// per debt (`srun -n 1000 dbbackup run` owes 1000).
const MAX_RECORD: u64 = 4 * 1024 * 1024;

/// How one attempt came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A good backup was made or found (unchanged): which file, and what to say.
    Succeeded { backup: String, detail: String },
    /// Nothing usable came of it: why.
    Failed(String),
    /// Backup `backup` is in the backup directory but not in every mirror.
    NotCopied { backup: String, detail: String },
    /// Nothing was due; a mirror that lacked restore point `backup` was
    /// filled in. A success over a success, or over the failure to copy that
    /// very backup; never over another failure (the changed database a
    /// failed backup left is still in no backup: T24 F7).
    Filled { backup: String, detail: String },
    /// The database holds exactly backup `backup`'s state (found now).
    Unchanged { backup: String, detail: String },
}

impl Verdict {
    /// Backup `name` was made (or another task's was taken).
    pub(crate) fn made(name: &str) -> Verdict {
        Verdict::Succeeded {
            backup: name.to_string(),
            detail: name.to_string(),
        }
    }

    /// The database was unchanged since backup `name`.
    pub(crate) fn unchanged(name: &str) -> Verdict {
        Verdict::Unchanged {
            backup: name.to_string(),
            detail: format!("unchanged since {name}"),
        }
    }
}

/// One attempt as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// When the attempt ended.
    pub time: Timestamp,
    pub ok: bool,
    /// The backup's kind (`manual` for `backup`, `auto`, `pre-job`, ...).
    pub kind: String,
    pub host: String,
    pub job: String,
    /// The database, canonical (as backups record their source).
    pub db: String,
    /// The backup made or found, or the error.
    pub detail: String,
    /// The backup file a success rests on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The highest `seq` in the backup directory when the attempt ended (0: none
    /// recorded one); absent when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The jobs that ran a successful pre-job and still owe the post-job
    /// backup of their work: carried from record to record until paid (their
    /// own post-job, or a success after they ended), so that another job's
    /// attempt or a periodic backup does not hide a job killed later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owed: Vec<PostJobDue>,
    /// A failure to copy this backup to every mirror (it is in the backup
    /// directory): filling the mirror in later pays it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_copied: Option<String>,
    /// Why a success is no success any more (its backup is gone or cannot be
    /// restored): set by [`last`], never recorded.
    #[serde(skip)]
    pub lost: Option<Lost>,
    /// Where each unpaid debt of `owed` stands: set by [`last`].
    #[serde(skip)]
    pub awaited: Vec<(PostJobDue, Awaited)>,
}

impl Record {
    /// Succeeded, its backup is still there to restore, and no job that ended
    /// without its post-job backup left its work in no backup.
    pub(crate) fn succeeded(&self) -> bool {
        self.ok
            && self.lost.is_none()
            && !self
                .awaited
                .iter()
                .any(|(_, a)| matches!(a, Awaited::Ended { .. }))
    }
}

/// The debts of the current record that a success now pays (their job ended
/// before its snapshot, or their array was marked ended): asked before the
/// record's lock is taken, since it may ask SLURM.
fn paid_now(
    backup_dir: &Path,
    db: &DbId,
    job: &JobContext,
    kind: Kind,
    verdict: &Verdict,
) -> Vec<PostJobDue> {
    // When the database's state was taken: the backup's snapshot, or now for
    // a database found unchanged since a backup (it holds that state now).
    let snapshot = match verdict {
        Verdict::Succeeded { backup, .. } => crate::store::BackupDir::new(backup_dir)
            .entry(backup)
            .ok()
            .flatten()
            .map(|e| e.created()),
        Verdict::Unchanged { .. } => Some(Timestamp::now() - jiff::SignedDuration::from_secs(1)),
        // A mirror filled in, a failure: no state of the database was taken.
        _ => return Vec::new(),
    };
    current_owed(backup_dir, db)
        .into_iter()
        // Its own post-job pays its own debt without asking SLURM.
        .filter(|due| !(kind == Kind::PostJob && due.owed_by(job)))
        .filter(|due| due.paid_by(snapshot, true, backup_dir, db))
        .collect()
}

/// The debts the newest record carries (a failure marker, written where no
/// record fits, carries none and hides none).
fn current_owed(backup_dir: &Path, db: &DbId) -> Vec<PostJobDue> {
    read_places(backup_dir, db)
        .iter()
        .filter_map(|place| read(place))
        .filter(|record| db.owns(&record.db))
        .max_by(later)
        .map(|record| record.owed)
        .unwrap_or_default()
}

/// The debts a new record carries, read under the record's lock: the
/// replaced record's, but those this attempt pays (its own post-job; `paid`),
/// and its own when it is a successful pre-job.
fn owed_after(
    backup_dir: &Path,
    db: &DbId,
    job: &JobContext,
    kind: Kind,
    point_made: bool,
    paid: &[PostJobDue],
) -> Vec<PostJobDue> {
    let mut owed = current_owed(backup_dir, db);
    let paid_by_this = |due: &PostJobDue| kind == Kind::PostJob && due.owed_by(job);
    owed.retain(|due| !paid.contains(due) && !paid_by_this(due));
    if point_made && kind == Kind::PreJob {
        for due in PostJobDue::of_step(job) {
            if !owed.contains(&due) {
                owed.push(due);
            }
        }
    }
    owed
}

/// The lock that makes reading the record, working out its debts and
/// replacing it one step for concurrent attempts (none when the state
/// directory is not there: then the record goes beside the database).
fn record_lock(backup_dir: &Path, db: &DbId) -> Option<(fs::File, Option<fs::File>)> {
    let path = backup_dir
        .join(STATE_DIR)
        .join(format!("attempt-{}.lock", db.key()));
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    // Group-writable in a shared backup directory, as the records are.
    crate::store::perms::settle_file(&file, 0o664, &path);
    // Held through `file` itself, or a duplicate of it that must stay open.
    match crate::lock::lock_waiting(&file, RECORD_LOCK_WAIT) {
        Ok(held) => Some((file, held)),
        Err(errno) => {
            // Recorded anyway: a record is never lost to a stuck lock holder.
            tracing::warn!(
                "the attempt record is replaced without its lock {} ({errno}): a concurrent job's owed post-job may be dropped or said again",
                show(&path)
            );
            None
        }
    }
}

/// How long an attempt waits for another to finish replacing the record.
const RECORD_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Record `verdict` for `db`; never fails the command (its own exit code and
/// error line already say what happened).
pub(crate) fn record(backup_dir: &Path, db: &DbId, job: &JobContext, kind: Kind, verdict: Verdict) {
    let paid = paid_now(backup_dir, db, job, kind, &verdict);
    let _locked = record_lock(backup_dir, db);
    let (ok, detail, backup, not_copied) = match verdict {
        Verdict::Succeeded { backup, detail } | Verdict::Unchanged { backup, detail } => {
            (true, detail, Some(backup), None)
        }
        Verdict::Filled { backup, detail } => {
            if newest(backup_dir, db)
                .is_some_and(|newest| !newest.ok && newest.not_copied.as_ref() != Some(&backup))
            {
                tracing::debug!("a mirror filled in does not undo the failed attempt before it");
                return;
            }
            (true, detail, Some(backup), None)
        }
        Verdict::Failed(detail) => (false, detail, None, None),
        Verdict::NotCopied { backup, detail } => (false, detail, None, Some(backup)),
    };
    let record = Record {
        time: Timestamp::now(),
        ok,
        kind: kind.as_str().to_string(),
        host: job.host.clone(),
        job: job.tag.clone(),
        db: db.canonical().to_string_lossy().into_owned(),
        detail,
        seq: crate::store::BackupDir::new(backup_dir).highest_seq().ok(),
        // A pre-job whose point is there but not in every mirror owes too.
        owed: owed_after(backup_dir, db, job, kind, ok || not_copied.is_some(), &paid),
        backup,
        not_copied,
        lost: None,
        awaited: Vec::new(),
    };
    let places = places(backup_dir, db);
    let mut written = None;
    let mut errors = Vec::new();
    for place in &places {
        match write(place, &record) {
            Ok(()) => {
                written = Some(place);
                break;
            }
            Err(error) => {
                tracing::debug!("attempt not recorded in {}: {error}", show(place));
                let why = match &error {
                    crate::error::Error::Io { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                let dir = place.parent().unwrap_or(Path::new("."));
                errors.push(format!("{}: {why}", show(dir)));
            }
        }
    }
    match written {
        Some(at) => supersede(&read_places(backup_dir, db), at),
        None if !ok && places.iter().any(|place| mark_failed(place)) => {}
        // Said, or `check` reports the older success as the newest attempt.
        // Without the database `check` fails anyway (`database`).
        None if !ok && db.canonical().exists() => tracing::warn!(
            "this failure could not be recorded ({}): `check` will not see it",
            errors.join("; ")
        ),
        // The command's own error line is the one line a failure prints.
        None => tracing::debug!(
            "the outcome of this attempt could not be recorded in {} or beside {}",
            show(backup_dir),
            show(db.canonical())
        ),
    }
}

/// A pre-job that found its restore point made (by another task, an earlier
/// `run` in the same script, the first run of a requeued job) recorded no
/// attempt, yet its work owes a post-job backup: added to the newest record.
pub(crate) fn owe(backup_dir: &Path, db: &DbId, job: &JobContext) {
    let Some(due) = PostJobDue::of(job) else {
        return;
    };
    let Some(place) = places(backup_dir, db).into_iter().next() else {
        return;
    };
    let _locked = record_lock(backup_dir, db);
    let Some(mut newest) = read(&place).filter(|r| db.owns(&r.db)) else {
        return;
    };
    if newest.owed.contains(&due) {
        return;
    }
    newest.owed.push(due);
    if let Err(error) = write(&place, &newest) {
        tracing::debug!("the post-job this task owes is not recorded: {error}");
    }
}

/// The newest recorded attempt of `db`, from every place a record may be: a
/// marker over any record (every record written removes the markers), else the
/// record (two only when a removal failed: the later by [`later`]).
pub(crate) fn newest(backup_dir: &Path, db: &DbId) -> Option<Record> {
    let places = read_places(backup_dir, db);
    let marker = places
        .iter()
        .filter_map(|place| read_marker(place, db))
        .max_by_key(|record| record.time);
    marker.or_else(|| {
        places
            .iter()
            .filter_map(|place| read(place))
            .filter(|record| db.owns(&record.db))
            .max_by(later)
    })
}

/// Which of two records (a removal failed) was written last: by the publication
/// numbers they saw when they tell (no clock), else by time. On equal numbers a
/// failure is the later: it saw the backup a success made already published.
/// (A success that made nothing new and could not remove the failure is the
/// rare case the other way: it errs toward unhealthy.)
fn later(a: &Record, b: &Record) -> std::cmp::Ordering {
    match (a.seq, b.seq) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), Some(_)) => (!a.ok, a.time).cmp(&(!b.ok, b.time)),
        _ => (a.time, !a.ok).cmp(&(b.time, !b.ok)),
    }
}

/// The database's newest attempt as `check` and the metrics judge it: the newest record,
/// unless a restore point was published after it (a success whose record could
/// not be written, or made by a version that kept no records); a success whose
/// backup is gone or cannot be restored any more is `lost`.
pub(crate) fn last(backup_dir: &Path, current: &crate::due::Current) -> Option<Record> {
    let db = current.db();
    let mut record = newest(backup_dir, db)?;
    let dir = crate::store::BackupDir::new(backup_dir);
    let points = dir
        .restore_points(db, |entry| crate::diff::restore_problem(entry).is_none())
        .unwrap_or_default();
    // A plain gzip under its name is not the backup dbbackup made there
    // (which had a header): replaced since (T36 N10).
    let rests_on = |record: &Record| {
        record.ok
            && record
                .backup
                .as_ref()
                .is_none_or(|name| points.iter().any(|p| &p.file_name == name && !p.legacy))
    };
    if let Some(backup) = points.first()
        && !rests_on(&record)
        && published_after(backup, &record)
    {
        record = Record {
            time: backup.created(),
            ok: true,
            kind: backup.kind_name().unwrap_or("unknown").to_string(),
            host: backup
                .meta
                .as_ref()
                .map_or_else(|_| "unknown".into(), |m| m.host.clone()),
            job: backup
                .meta
                .as_ref()
                .map_or_else(|_| "unknown".into(), |m| m.job.clone()),
            db: record.db,
            detail: backup.file_name.clone(),
            backup: Some(backup.file_name.clone()),
            seq: backup.seq(),
            // Published since: the jobs that owed still owe (the backup
            // pays those that had ended by then, judged below).
            owed: record.owed,
            not_copied: None,
            lost: None,
            awaited: Vec::new(),
        };
    }
    if record.ok && !rests_on(&record) {
        record.lost = record.backup.as_deref().map(|name| lost_why(&dir, name));
    }
    if record.ok && record.lost.is_none() && !record.owed.is_empty() {
        let snapshot = record
            .backup
            .as_deref()
            .and_then(|name| dir.entry(name).ok().flatten())
            .map(|e| e.created());
        let unchanged = std::cell::OnceCell::new();
        record.awaited = record
            .owed
            .iter()
            .filter(|due| !due.paid_by(snapshot, false, backup_dir, db))
            .map(|due| {
                let judged = match due.judge(backup_dir, db) {
                    // Killed before it wrote anything: its state is in the backup.
                    Awaited::Ended { how, .. }
                        if *unchanged.get_or_init(|| {
                            record.backup.is_some() && current.held_by(&dir) == record.backup
                        }) =>
                    {
                        Awaited::EndedUnchanged(how)
                    }
                    other => other,
                };
                (due.clone(), judged)
            })
            .collect();
        // A job that ended while SLURM was asked may have paid its debt by
        // then (its post-job recorded just before it ended): read again.
        if record
            .awaited
            .iter()
            .any(|(_, a)| matches!(a, Awaited::Ended { .. }))
        {
            let still = current_owed(backup_dir, db);
            record.awaited.retain(|(due, awaited)| {
                !matches!(awaited, Awaited::Ended { .. }) || still.contains(due)
            });
        }
    }
    Some(record)
}

/// Whether restore point `backup` was published after the attempt `record`
/// ended: by publication numbers when both tell (no clock), else by the time
/// this host's clock can place.
fn published_after(backup: &crate::store::Entry, record: &Record) -> bool {
    match (backup.seq(), record.seq) {
        (Some(seq), Some(highest)) => seq > highest,
        // An unnumbered one placed before the numbers this attempt saw is older.
        (None, Some(highest)) if backup.placed.after < highest => false,
        _ => !backup.future_dated() && backup.created() > record.time,
    }
}

/// Why the backup a success recorded is no restore point now. `check` words
/// it: for a damaged one it points at the `unreadable` or `restorable` line,
/// which says why (each failing fact said once in a report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lost {
    Missing,
    /// Its metadata cannot be read.
    Unreadable,
    /// The cheap tests find it cannot be restored.
    Unrestorable,
    /// Readable and whole, yet no restore point of this database now.
    NotARestorePoint,
    /// The backup directory could not be read: the error.
    CannotRead(String),
}

fn lost_why(dir: &crate::store::BackupDir, name: &str) -> Lost {
    match dir.entry(name) {
        Ok(None) => Lost::Missing,
        Ok(Some(entry)) if entry.problem().is_some() => Lost::Unreadable,
        Ok(Some(entry)) if crate::diff::restore_problem(&entry).is_some() => Lost::Unrestorable,
        Ok(Some(_)) => Lost::NotARestorePoint,
        Err(e) => Lost::CannotRead(e.to_string()),
    }
}

/// Where `db`'s record of an attempt aimed at `backup_dir` may be, in the
/// order records are written. The place beside the database is named for the
/// backup directory too: a failed one-off `--backup-dir /tmp/elsewhere backup`
/// belongs to that set, not to the configured one `check` judges.
fn places(backup_dir: &Path, db: &DbId) -> Vec<PathBuf> {
    let mut places = vec![
        backup_dir
            .join(STATE_DIR)
            .join(format!("attempt-{}", db.key())),
    ];
    if let Some(beside) = beside_db(db, &format!("-{}", DbId::of(backup_dir).key())) {
        places.push(beside);
    }
    places
}

/// Every place a record for `backup_dir` may be read from: [`places`], and the
/// one beside the database that versions before the directory's key wrote
/// (read and superseded as before, never written).
fn read_places(backup_dir: &Path, db: &DbId) -> Vec<PathBuf> {
    let mut places = places(backup_dir, db);
    places.extend(beside_db(db, ""));
    places
}

/// `.<name>.dbbackup-attempt<suffix>` beside the database.
fn beside_db(db: &DbId, suffix: &str) -> Option<PathBuf> {
    let canonical = db.canonical();
    let (dir, name) = (canonical.parent()?, canonical.file_name()?);
    let mut file = std::ffi::OsString::from(".");
    file.push(name);
    file.push(".dbbackup-attempt");
    file.push(suffix);
    Some(dir.join(file))
}

fn marker_of(place: &Path) -> PathBuf {
    let mut name = place.as_os_str().to_os_string();
    name.push(".failed");
    PathBuf::from(name)
}

/// Replace the record at `place`: the attempt that ended last wins.
fn write(place: &Path, record: &Record) -> Result<()> {
    let dir = place.parent().unwrap_or(Path::new("."));
    // Not `create_dir_all`: the state directory is made only inside a backup
    // directory that exists (a failed attempt never creates that).
    match crate::store::perms::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(crate::error::Error::Io {
                context: format!("cannot create {}", show(dir)),
                source: e,
            });
        }
        _ => {}
    }
    let text = serde_json::to_vec(record)
        .map_err(|e| crate::error::Error::failed(format!("cannot encode attempt record: {e}")))?;
    replace_file(place, 0o664, &text)
}

/// An empty marker of a failure that had no room for its record.
fn mark_failed(place: &Path) -> bool {
    let marker = marker_of(place);
    let touched = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o664)
        // A planted link is refused, never written through; a FIFO opens at once.
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&marker)
        .and_then(|file| {
            crate::store::perms::settle_file(&file, 0o664, &marker);
            file.set_modified(std::time::SystemTime::now())
        });
    match touched {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!("failure marker {} not written: {error}", show(&marker));
            false
        }
    }
}

/// After a record was written at `at`: the other place's record and every
/// marker are older (removed best effort; see the module's order).
fn supersede(places: &[PathBuf], at: &Path) {
    for place in places {
        if place != at {
            let _ = fs::remove_file(place);
        }
        let marker = marker_of(place);
        match fs::remove_file(&marker) {
            // ENOTDIR: its directory cannot exist (the backup directory is a
            // file), so neither can the marker; the real error is said after.
            // A read-only directory says EROFS even for a marker that is not
            // there: only one that is there is worth a warning.
            Err(e)
                if e.kind() != std::io::ErrorKind::NotFound
                    && e.raw_os_error() != Some(nix::libc::ENOTDIR)
                    && fs::symlink_metadata(&marker).is_ok() =>
            {
                tracing::warn!("cannot remove failure marker {}: {e}", show(&marker));
            }
            _ => {}
        }
    }
}

fn read(place: &Path) -> Option<Record> {
    let file = open_no_follow(place).ok()?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut text = Vec::new();
    file.take(MAX_RECORD).read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

fn marker_time(marker: &Path) -> Option<Timestamp> {
    let meta = fs::symlink_metadata(marker).ok()?;
    if !meta.is_file() {
        return None;
    }
    Timestamp::try_from(meta.modified().ok()?).ok()
}

fn read_marker(place: &Path, db: &DbId) -> Option<Record> {
    let marker = marker_of(place);
    Some(Record {
        time: marker_time(&marker)?,
        ok: false,
        kind: "unknown".into(),
        host: "unknown".into(),
        job: "unknown".into(),
        db: db.canonical().to_string_lossy().into_owned(),
        detail: format!(
            "no room to record why (see the command's error output; marker {})",
            show(&marker)
        ),
        backup: None,
        seq: None,
        owed: Vec::new(),
        not_copied: None,
        lost: None,
        awaited: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobContext {
        JobContext::from_lookup(|_| None, "n1".into())
    }

    #[test]
    fn the_newest_record_wins_wherever_it_is() {
        let root = tempfile::tempdir().unwrap();
        let backups = root.path().join("backups");
        let db = DbId::of(&root.path().join("results.db"));
        // No backup directory: the record goes beside the database.
        record(
            &backups,
            &db,
            &job(),
            Kind::Manual,
            Verdict::Failed("disk full".into()),
        );
        assert!(
            !backups.exists(),
            "a failed attempt creates no backup directory"
        );
        let failed = newest(&backups, &db).unwrap();
        assert!(!failed.ok);
        assert_eq!(failed.detail, "disk full");
        // A success in the backup directory supersedes it and removes it.
        fs::create_dir(&backups).unwrap();
        record(&backups, &db, &job(), Kind::Auto, Verdict::made("b"));
        let ok = newest(&backups, &db).unwrap();
        assert!(ok.ok && ok.time > failed.time);
        assert_eq!(ok.kind, "auto");
        assert!(!places(&backups, &db)[1].exists());
        // The attempt written last wins, whatever the clocks said: a success
        // dated ahead (a fast clock) does not hide a later failure.
        let mut later = ok.clone();
        later.ok = false;
        later.time = ok.time - jiff::SignedDuration::from_secs(5);
        write(&places(&backups, &db)[0], &later).unwrap();
        assert_eq!(newest(&backups, &db).unwrap(), later);
        // Another database's record under this key does not count.
        let other = DbId::of(&root.path().join("other.db"));
        assert!(newest(&backups, &other).is_none());
    }

    #[test]
    fn a_restore_point_supersedes_a_failure_by_publication_number_not_by_clock() {
        use crate::store::ownership::tests::entry;
        let numbered = |stamp: &str, seq: Option<u64>| {
            let mut e = entry(stamp, "/proj/a.db", Kind::Manual, false);
            if let Ok(meta) = &mut e.meta {
                meta.seq = seq;
            }
            e
        };
        let failed = |time: &str, seq: Option<u64>| Record {
            time: time.parse().unwrap(),
            ok: false,
            kind: "manual".into(),
            host: "n1".into(),
            job: "local".into(),
            db: "/proj/a.db".into(),
            detail: "locked".into(),
            backup: None,
            seq,
            owed: Vec::new(),
            not_copied: None,
            lost: None,
            awaited: Vec::new(),
        };
        // A failure recorded by a clock 200 days fast, then a backup published.
        let ahead = failed("2099-01-01T00:00:00Z", Some(2));
        assert!(published_after(
            &numbered("20250101_000000", Some(3)),
            &ahead
        ));
        // A backup dated far ahead but published before the failure.
        let now = failed("2025-01-01T00:00:00Z", Some(2));
        assert!(!published_after(
            &numbered("20250601_000000", Some(2)),
            &now
        ));
        // An unnumbered backup placed before the numbers the attempt saw is older.
        assert!(!published_after(&numbered("20250601_000000", None), &now));
        // Neither numbered: the date this host's clock can place.
        let old = failed("2025-01-01T00:00:00Z", None);
        assert!(published_after(&numbered("20250102_000000", None), &old));
        assert!(!published_after(&numbered("20241231_000000", None), &old));
    }

    #[test]
    fn a_marker_stands_for_a_failure_without_room_for_its_record() {
        let root = tempfile::tempdir().unwrap();
        let backups = root.path().join("backups");
        fs::create_dir(&backups).unwrap();
        let db = DbId::of(&root.path().join("results.db"));
        record(&backups, &db, &job(), Kind::Manual, Verdict::made("b"));
        assert!(mark_failed(&places(&backups, &db)[0]));
        let newest = newest(&backups, &db).unwrap();
        assert!(!newest.ok, "{newest:?}");
        record(&backups, &db, &job(), Kind::Manual, Verdict::made("c"));
        assert!(!marker_of(&places(&backups, &db)[0]).exists());
        assert!(super::newest(&backups, &db).unwrap().ok);
    }
}
