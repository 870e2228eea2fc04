//! Is a backup of this database due? Two rules, both judged against the
//! database's own intact, restorable restore points: the interval has passed
//! since the newest dated no later than this host's clock allows
//! (`store::CLOCK_SLACK`) was made (`auto`, `periodic`, an array task's
//! `post-job`), and the newest by publication order (`Entry::order`, no clock)
//! does not already hold the database's current state (every backup but a
//! forced one).
//!
//! A backup that is due carries what was computed to decide it (the validated
//! path, the fingerprint), so that `create` takes them instead of computing them
//! again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;
use crate::sqlite_file;
use crate::store::metadata::{CheckKind, CheckResult, Fingerprint};
use crate::store::{BackupDir, DbId, Entry};
use crate::units::human_duration;

/// A backup that is due, and what deciding it found out.
#[derive(Debug)]
pub(crate) struct Due {
    db: PathBuf,
    id: DbId,
    fingerprint: Fingerprint,
    /// The newest restore point it was judged against: a second look under the
    /// lock that finds the same one need not judge (or fingerprint) again.
    judged_against: Option<String>,
    /// Asked for whatever the database holds (`--force`): made even when
    /// its content is the newest restore point's.
    forced: bool,
}

impl Due {
    /// The database, validated, as an absolute path.
    pub(crate) fn db(&self) -> &Path {
        &self.db
    }

    /// Whether this backup is made whatever the database holds (`--force`).
    pub(crate) fn forced(&self) -> bool {
        self.forced
    }

    pub(crate) fn id(&self) -> &DbId {
        &self.id
    }

    /// The database's state, taken before any snapshot of it starts.
    pub(crate) fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

/// The interval rule and the change rule together (`auto`, `periodic`).
#[derive(Debug)]
pub(crate) enum Decision {
    Due(Due),
    NotDue(NotDue),
}

/// Why no backup is due: what `auto` says, and its JSON `reason` code (the
/// same as `backup`'s for the same case, T30 F6).
#[derive(Debug, Clone)]
pub(crate) enum NotDue {
    /// The newest restore point, named, already holds this state.
    Unchanged(String),
    /// The newest restore point is too recent: why, in words.
    Interval(String),
}

impl NotDue {
    /// The JSON `reason`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            NotDue::Unchanged(_) => "unchanged",
            NotDue::Interval(_) => "interval",
        }
    }

    /// The newest restore point that holds the state, when that is why.
    pub(crate) fn newest(&self) -> Option<&str> {
        match self {
            NotDue::Unchanged(newest) => Some(newest),
            NotDue::Interval(_) => None,
        }
    }
}

impl std::fmt::Display for NotDue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotDue::Unchanged(newest) => write!(f, "database unchanged since {newest}"),
            NotDue::Interval(why) => f.write_str(why),
        }
    }
}

/// The change rule alone (`backup`, `pre-job`, `post-job`, `final`).
#[derive(Debug)]
pub(crate) enum Changed {
    Due(Due),
    /// The newest restore point, named, already holds this state.
    Unchanged(String),
}

/// Due when `db` has no restore point, or the newest is at least `interval` old
/// and does not hold the database's current state. Cheap when not due: the
/// directory listing, one backup header and the database's first bytes; the
/// fingerprint is taken only once the interval has passed.
pub(crate) fn by_interval(dir: &BackupDir, db: &Path, interval: Duration) -> Result<Decision> {
    let db = sqlite_file::validate_database(db)?;
    let id = DbId::of(&db);
    let points = dir.restore_points(&id, restorable)?;
    judge(dir, (db, id), &points, interval)
}

/// `by_interval` again, under the lock: the holder this process raced may have
/// just published. While the newest restore point is still the one `due` was
/// judged against, the decision stands, fingerprint included (taken a moment
/// earlier, it can only cause one more backup later, never a missed one).
pub(crate) fn recheck(dir: &BackupDir, due: Due, interval: Duration) -> Result<Decision> {
    let points = dir.restore_points(&due.id, restorable)?;
    if points.first().map(|n| &n.file_name) == due.judged_against.as_ref() {
        return Ok(Decision::Due(due));
    }
    judge(dir, (due.db, due.id), &points, interval)
}

/// Due unless the newest restore point already holds the database's current
/// state; with `force`, due regardless.
pub(crate) fn unless_unchanged(dir: &BackupDir, db: &Path, force: bool) -> Result<Changed> {
    let db = sqlite_file::validate_database(db)?;
    let id = DbId::of(&db);
    let fingerprint = sqlite_file::fingerprint(&db)?;
    if !force
        && let Some(newest) = dir.restore_points(&id, restorable)?.first()
        && holds(newest, &id, &fingerprint)
        && !unsound_above(dir, &id, newest)
    {
        return Ok(Changed::Unchanged(newest.file_name.clone()));
    }
    Ok(Changed::Due(Due {
        db,
        id,
        fingerprint,
        judged_against: None,
        forced: force,
    }))
}

/// The database's current state, fingerprinted at most once however many
/// backup directories are asked whether they hold it (`check`: `age` in the
/// backup directory and each mirror, and the debts of the newest attempt).
pub(crate) struct Current<'a> {
    db: &'a DbId,
    fingerprint: std::cell::OnceCell<Option<Fingerprint>>,
}

impl<'a> Current<'a> {
    pub(crate) fn of(db: &'a DbId) -> Self {
        Current {
            db,
            fingerprint: std::cell::OnceCell::new(),
        }
    }

    pub(crate) fn db(&self) -> &'a DbId {
        self.db
    }

    /// The newest restore point in `dir` when it holds the database's current
    /// state; `None` when it does not, or the database cannot be read.
    pub(crate) fn held_by(&self, dir: &BackupDir) -> Option<String> {
        let fingerprint = self
            .fingerprint
            .get_or_init(|| {
                let db = sqlite_file::validate_database(self.db.canonical()).ok()?;
                sqlite_file::fingerprint(&db).ok()
            })
            .as_ref()?;
        let newest = dir
            .restore_points(self.db, restorable)
            .ok()?
            .into_iter()
            .next()?;
        holds(&newest, self.db, fingerprint).then_some(newest.file_name)
    }
}

/// The interval rule alone: `db` has no restore point, or its newest is at least
/// `interval` old.
pub(crate) fn interval_passed(dir: &BackupDir, db: &DbId, interval: Duration) -> Result<bool> {
    Ok(dated(&dir.restore_points(db, restorable)?)
        .is_none_or(|newest| too_recent(newest, interval).is_none()))
}

/// The newest point this host's clock can place: the interval is told by the
/// clock, and one dated in the future would hold every backup off until then.
fn dated(points: &[Entry]) -> Option<&Entry> {
    points.iter().find(|e| !e.future_dated())
}

fn judge(
    dir: &BackupDir,
    (db, id): (PathBuf, DbId),
    points: &[Entry],
    interval: Duration,
) -> Result<Decision> {
    if let Some(why) = dated(points).and_then(|n| too_recent(n, interval)) {
        return Ok(Decision::NotDue(NotDue::Interval(why)));
    }
    let fingerprint = sqlite_file::fingerprint(&db)?;
    let newest = points.first();
    if let Some(newest) = newest
        && holds(newest, &id, &fingerprint)
        && !unsound_above(dir, &id, newest)
    {
        return Ok(Decision::NotDue(NotDue::Unchanged(
            newest.file_name.clone(),
        )));
    }
    Ok(Decision::Due(Due {
        db,
        id,
        fingerprint,
        judged_against: newest.map(|n| n.file_name.clone()),
        forced: false,
    }))
}

/// Only a point that can be restored (by cheap tests: not truncated, extended,
/// found damaged, nor a diff without its base) holds the database's state or
/// makes the next backup wait; one dated in the future holds the state
/// ("unchanged" takes the newest by publication order) but never makes the next
/// backup wait (`dated`).
fn restorable(entry: &Entry) -> bool {
    crate::diff::restore_problem(entry).is_none()
}

/// The check a new backup of `db` gets beside `quick_check`: the whole `integrity_check` while a
/// backup of it is known to hold a database failing a check (a failed
/// snapshot, or one a whole read found failing `integrity_check`) and none
/// made since passed `integrity_check`. `quick_check` misses an index out of
/// step with its table: after one more write the database it found unsound
/// would pass it again, a restore point listed `ok` (T35 R3).
pub(crate) fn check_for(dir: &BackupDir, db: &DbId) -> CheckKind {
    let Ok(set) = dir.set(db) else {
        return CheckKind::QuickCheck;
    };
    let passed_whole = |e: &&Entry| matches!(&e.meta, Ok(m) if m.check_kind == CheckKind::IntegrityCheck && m.check == CheckResult::Ok);
    let cleared = set
        .restore_points
        .iter()
        .filter(passed_whole)
        .map(Entry::order)
        .max();
    let failing = set
        .restore_points
        .iter()
        .chain(&set.damaged)
        .chain(&set.failed)
        .filter(|e| e.is_failed() || crate::store::damage::unsound_finding(&e.path).is_some())
        .map(Entry::order)
        .max();
    match (failing, cleared) {
        (Some(failing), cleared) if cleared.is_none_or(|cleared| failing > cleared) => {
            CheckKind::IntegrityCheck
        }
        _ => CheckKind::QuickCheck,
    }
}

/// A file of `db` ranked above `point` (its newest sound restore point)
/// that `check` fails on: a restore point that cannot be restored, a failed
/// snapshot, a file whose metadata cannot be read. "Unchanged since `point`"
/// would leave it the newest, and `check` unhealthy however often the
/// advised backup runs (T30 F14): a new backup is made instead.
pub(crate) fn unsound_above(dir: &BackupDir, db: &DbId, point: &Entry) -> bool {
    let Ok(set) = dir.set(db) else {
        return false;
    };
    let order = point.order();
    // One whose metadata cannot be read is placed by its name, as `check`
    // places it (`health::unreadable_newer`).
    let above = |e: &Entry| match &e.meta {
        Ok(_) => e.order() > order,
        Err(_) => !e.legacy && e.name.order_key() > point.name.order_key(),
    };
    // A failed snapshot the database was replaced since by a checked
    // restore of `point` no longer fails `check` (`health::last_attempt`).
    let restored = crate::restored::read(dir.path(), db);
    let repaired = |e: &Entry| {
        restored
            .as_ref()
            .is_some_and(|r| r.time > e.created() && !r.forced && r.backup == point.file_name)
    };
    set.restore_points
        .iter()
        .chain(&set.damaged)
        .chain(set.failed.iter().filter(|e| !repaired(e)))
        .any(|e| e.file_name != point.file_name && above(e))
}

/// Why `newest` is too recent for another backup, or `None`.
fn too_recent(newest: &Entry, interval: Duration) -> Option<String> {
    let age = newest.age();
    let ahead = newest.created().duration_since(jiff::Timestamp::now());
    (age < interval).then(|| match Duration::try_from(ahead) {
        // Within the slack clocks may differ by (further ahead never counts).
        Ok(ahead) if !ahead.is_zero() => format!(
            "newest backup {} is dated {} in the future (its node's clock is fast, or this host's slow): the {} interval has not passed since",
            newest.file_name,
            human_duration(ahead),
            human_duration(interval)
        ),
        _ => format!(
            "newest backup {} is {} old, less than the {} interval",
            newest.file_name,
            human_duration(age),
            human_duration(interval)
        ),
    })
}

/// Whether `backup` was taken of this database in this same state.
fn holds(backup: &Entry, db: &DbId, fingerprint: &Fingerprint) -> bool {
    matches!(&backup.meta, Ok(meta)
        if db.owns(&meta.source)
            && (meta.fingerprint.as_ref() == Some(fingerprint)
                || crate::store::also_held::holds(&backup.path, fingerprint)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite_file::calls::{FINGERPRINTS, VALIDATIONS};

    fn one_row_db(dir: &std::path::Path) -> PathBuf {
        let db = dir.join("results.db");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        db
    }

    fn counts() -> (usize, usize) {
        (
            VALIDATIONS.with(std::cell::Cell::get),
            FINGERPRINTS.with(std::cell::Cell::get),
        )
    }

    #[test]
    fn auto_validates_and_fingerprints_once_per_run() {
        let root = tempfile::tempdir().unwrap();
        let db = one_row_db(root.path());
        let dir = BackupDir::new(root.path().join("backups"));
        let before = counts();
        // Before the lock, then under it, as `create::if_due` does; `create::run`
        // takes the `Due` and computes neither again.
        let Decision::Due(due) = by_interval(&dir, &db, Duration::ZERO).unwrap() else {
            panic!("no backup yet: due");
        };
        let Decision::Due(due) = recheck(&dir, due, Duration::ZERO).unwrap() else {
            panic!("nothing published meanwhile: still due");
        };
        assert_eq!(counts(), (before.0 + 1, before.1 + 1));
        assert_eq!(due.db(), std::path::absolute(&db).unwrap());
    }

    #[test]
    fn check_fingerprints_the_database_once_for_every_directory_it_asks() {
        let root = tempfile::tempdir().unwrap();
        let id = DbId::of(&one_row_db(root.path()));
        let current = Current::of(&id);
        let before = counts();
        // The backup directory, a mirror, the newest attempt's debts.
        for dir in ["backups", "mirror", "backups"] {
            let dir = BackupDir::new(root.path().join(dir));
            assert_eq!(current.held_by(&dir), None, "no restore point holds it");
        }
        assert_eq!(counts(), (before.0 + 1, before.1 + 1));
    }
}
