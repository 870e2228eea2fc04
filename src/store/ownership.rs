//! Whose backup a file is, and what it is to that database (README "Whose backup
//! is it: restore points").
//!
//! A backup belongs to the database recorded as its `source`: the canonical
//! absolute path at backup time. Every command that chooses or deletes backups
//! (restore, unchanged detection, auto, pre-job/post-job, retention, check,
//! mirrors) sorts the directory through [`role`] / [`BackupSet::of`], so a
//! scratch restore, a second database sharing the directory or an undo copy can
//! never become "the newest backup" of this one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::unlike::Unlike;
use super::{Entry, metadata::Kind};

/// A database as backups record it: its canonical path, plus the plain absolute
/// form (what older dbbackup versions recorded, and the only form available when
/// a path's directory is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbId {
    canonical: PathBuf,
    absolute: PathBuf,
}

impl DbId {
    /// Identify `path`, which need not exist (a lost database is restored too).
    pub(crate) fn of(path: &Path) -> DbId {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        DbId {
            canonical: canonical(&absolute),
            absolute,
        }
    }

    /// The path new backups record as their source.
    pub(crate) fn canonical(&self) -> &Path {
        &self.canonical
    }

    /// A short stable name for per-database state files (hex of a hash of the
    /// canonical path).
    pub(crate) fn key(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.canonical.as_os_str().as_encoded_bytes());
        crate::sqlite_file::hex(&digest[..6])
    }

    /// Whether `path` is this database's file under any name: its canonical
    /// path, or (a bind mount, one filesystem under two paths) the same
    /// device and inode.
    pub(crate) fn is_file(&self, path: &Path) -> bool {
        DbId::of(path).canonical == self.canonical || self.is_same_existing_file(path)
    }

    /// Whether a backup recorded with `source` is a backup of this database.
    pub(crate) fn owns(&self, source: &str) -> bool {
        let source = Path::new(source);
        if source == self.canonical || source == self.absolute {
            return true;
        }
        // Recorded through another path to the same place: a symlinked project
        // directory, in a backup made before sources were recorded canonically.
        if source.is_absolute()
            && source.file_name() == self.canonical.file_name()
            && canonical(source) == self.canonical
        {
            return true;
        }
        // Or the same file through another mount: a container's `--bind`, an
        // automounter's second path (T28 F21; the canonical path cannot see it).
        source.is_absolute() && source != self.canonical && self.is_same_existing_file(source)
    }

    fn is_same_existing_file(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(path), std::fs::metadata(&self.canonical)) {
            (Ok(a), Ok(b)) => a.is_file() && a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
}

/// `realpath`, else (a link whose file is lost) where the link leads, as
/// `restore` resolves it, else the real path of its directory plus the file
/// name (the file may be missing), else the path as given.
fn canonical(absolute: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(absolute) {
        return real;
    }
    if std::fs::symlink_metadata(absolute).is_ok_and(|m| m.file_type().is_symlink())
        && let Ok(end) = super::link::end_of(absolute)
    {
        return end;
    }
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or_else(|_| absolute.to_path_buf()),
        _ => absolute.to_path_buf(),
    }
}

/// The database and backup directory the configuration file names together
/// (`Settings::dir_configured`), set by [`configure`] at the start of each
/// command: the one directory whose legacy files may be that database's.
static CONFIGURED: Mutex<Option<(DbId, PathBuf)>> = Mutex::new(None);

/// Say which database the config file gives which backup directory (`None`:
/// the file does not, or a flag or variable overrode either).
pub(crate) fn configure(pair: Option<(&Path, &Path)>) {
    let pair = pair.map(|(db, dir)| (DbId::of(db), DbId::of(dir).canonical));
    *CONFIGURED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = pair;
}

/// Whether the configuration gives `dir` to `db`.
fn configured_for(dir: &Path, db: &DbId) -> bool {
    let configured = CONFIGURED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    configured.as_ref().is_some_and(|(ours, ours_dir)| {
        ours.canonical == db.canonical && *ours_dir == DbId::of(dir).canonical
    })
}

/// Whose the seed's legacy files (no recorded source) are, for one database.
///
/// Their names carry no database (`backup_YYYYMMDD_HHMMSS.db.gz`), so only the
/// configuration can say: they are its restore points when the config file
/// names this database and this directory together ([`configure`]) and nothing
/// in the directory says another database is backed up there (no backup of a
/// restore-point kind, passed its check or not, recorded from another path).
/// Otherwise nobody can tell whose they are, and guessing wrong would restore
/// one database's content over another's, or let its retention delete them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Legacy {
    /// This database's, but those whose tables say they are another's.
    Ours(Unlike),
    /// Other databases' backups are recorded beside them.
    OwnerUnknown,
    /// Nothing says they are this database's: the directory is not the one the
    /// config file gives it (a `--backup-dir` or variable pointed here).
    Unclaimed,
}

impl Legacy {
    /// Judge from every entry of the directory, as seen by `db`.
    pub(crate) fn judge(entries: &[Entry], db: &DbId) -> Legacy {
        let claimed = entries
            .iter()
            .find(|e| e.legacy)
            .is_none_or(|e| configured_for(super::atomic::parent_or_dot(&e.path), db));
        Legacy::judge_claimed(entries, db, claimed)
    }

    /// [`Legacy::judge`], given whether the configuration claims the directory.
    pub(crate) fn judge_claimed(entries: &[Entry], db: &DbId, claimed: bool) -> Legacy {
        if entries
            .iter()
            .any(|e| matches!(backed_up_database(e), Some(source) if !db.owns(source)))
        {
            Legacy::OwnerUnknown
        } else if claimed {
            Legacy::Ours(Unlike::judge(entries, Some(db)))
        } else {
            Legacy::Unclaimed
        }
    }

    /// Without a configured database: the legacy files belong to the directory's
    /// one database, if it holds backups of at most one.
    pub(crate) fn judge_whole_dir(entries: &[Entry]) -> Legacy {
        let mut sources = entries.iter().filter_map(backed_up_database);
        match sources.next() {
            Some(first) if sources.any(|other| !DbId::of(Path::new(first)).owns(other)) => {
                Legacy::OwnerUnknown
            }
            _ => Legacy::Ours(Unlike::judge(entries, None)),
        }
    }

    /// Why the legacy file `file_name` is not this database's restore point
    /// though the directory's legacy files are ([`Unlike`]).
    pub(crate) fn unlike(&self, file_name: &str) -> Option<&str> {
        match self {
            Legacy::Ours(unlike) => unlike.why(file_name),
            _ => None,
        }
    }
}

/// The database a restore-point-kind backup records (pre-restore copies of a
/// scratch `--target` restore say nothing about whose the directory is).
fn backed_up_database(entry: &Entry) -> Option<&str> {
    match &entry.meta {
        Ok(meta) if meta.kind != Kind::PreRestore => Some(&meta.source),
        _ => None,
    }
}

/// What a backup file is to one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A good backup of this database that `restore latest`, retention and
    /// `check` count: kinds manual, auto, pre-job, post-job, periodic, final, and
    /// the seed's legacy plain-gzip backups when they are this database's
    /// ([`Legacy`]).
    RestorePoint,
    /// The database as it was before a restore replaced it: for undo, by name.
    PreRestore,
    /// A snapshot of this database that failed its integrity check: evidence.
    Failed,
    /// Metadata present but unreadable, or a legacy file that is implausible
    /// (truncated, named in the future): never chosen, counted or deleted
    /// automatically.
    Damaged,
    /// Another database's backup sharing the directory.
    Other,
    /// A legacy file not known to be this database's ([`Legacy`]), or whose
    /// tables say it is another's ([`Unlike`]): listed,
    /// restorable by name, never chosen, counted or deleted automatically.
    OwnerUnknown,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::RestorePoint => "restore-point",
            Role::PreRestore => "pre-restore",
            Role::Failed => "failed",
            Role::Damaged => "damaged",
            Role::Other => "other-database",
            Role::OwnerUnknown => "unknown-owner",
        }
    }
}

/// The one answer to "what is this file to database `db`"; `legacy` says whose
/// the directory's legacy files are ([`Legacy::judge`]).
pub(crate) fn role(entry: &Entry, db: &DbId, legacy: &Legacy) -> Role {
    if entry.legacy {
        return match (&entry.implausible, legacy) {
            (Some(_), _) => Role::Damaged,
            (None, Legacy::Ours(unlike)) if unlike.why(&entry.file_name).is_some() => {
                Role::OwnerUnknown
            }
            (None, Legacy::Ours(_)) => Role::RestorePoint,
            (None, Legacy::OwnerUnknown | Legacy::Unclaimed) => Role::OwnerUnknown,
        };
    }
    let Ok(meta) = &entry.meta else {
        return Role::Damaged;
    };
    if !db.owns(&meta.source) {
        Role::Other
    } else if meta.kind == Kind::PreRestore {
        // Even when marked failed (a damaged database saved raw before a restore).
        Role::PreRestore
    } else if entry.is_failed() {
        Role::Failed
    } else {
        Role::RestorePoint
    }
}

/// One database's view of a backup directory; each list newest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct BackupSet {
    pub restore_points: Vec<Entry>,
    pub pre_restore: Vec<Entry>,
    pub failed: Vec<Entry>,
    pub damaged: Vec<Entry>,
    pub others: Vec<Entry>,
    /// Legacy files whose database cannot be told ([`Legacy::OwnerUnknown`]).
    pub owner_unknown: Vec<Entry>,
}

impl BackupSet {
    /// Every backup file of this database in the directory: restore points,
    /// damaged ones, failed snapshots and pre-restore copies.
    pub(crate) fn own_files(&self) -> impl Iterator<Item = &Entry> {
        [
            &self.restore_points,
            &self.damaged,
            &self.failed,
            &self.pre_restore,
        ]
        .into_iter()
        .flatten()
    }

    pub(crate) fn of(entries: Vec<Entry>, db: &DbId) -> BackupSet {
        let legacy = Legacy::judge(&entries, db);
        BackupSet::judged(entries, db, &legacy)
    }

    /// [`BackupSet::of`], the legacy files' owner judged already.
    pub(crate) fn judged(mut entries: Vec<Entry>, db: &DbId, legacy: &Legacy) -> BackupSet {
        super::place_unnumbered(&mut entries);
        let mut set = BackupSet::default();
        for entry in entries {
            let list = match role(&entry, db, legacy) {
                Role::RestorePoint => &mut set.restore_points,
                Role::PreRestore => &mut set.pre_restore,
                Role::Failed => &mut set.failed,
                Role::Damaged => &mut set.damaged,
                Role::Other => &mut set.others,
                Role::OwnerUnknown => &mut set.owner_unknown,
            };
            list.push(entry);
        }
        set.sort();
        set
    }

    /// The whole directory as one database's (no database configured): every
    /// source counts, nothing is "other".
    pub(crate) fn whole_dir(entries: Vec<Entry>) -> BackupSet {
        let legacy = Legacy::judge_whole_dir(&entries);
        BackupSet::whole_dir_judged(entries, &legacy)
    }

    /// [`BackupSet::whole_dir`], the legacy files' owner judged already.
    pub(crate) fn whole_dir_judged(mut entries: Vec<Entry>, legacy: &Legacy) -> BackupSet {
        super::place_unnumbered(&mut entries);
        let mut set = BackupSet::default();
        for entry in entries {
            let source = entry.meta.as_ref().map(|m| m.source.clone()).ok();
            let db = DbId::of(Path::new(source.as_deref().unwrap_or("/")));
            let list = match role(&entry, &db, legacy) {
                Role::RestorePoint => &mut set.restore_points,
                Role::PreRestore => &mut set.pre_restore,
                Role::Failed => &mut set.failed,
                Role::Damaged | Role::Other => &mut set.damaged,
                Role::OwnerUnknown => &mut set.owner_unknown,
            };
            list.push(entry);
        }
        set.sort();
        set
    }

    fn sort(&mut self) {
        for list in [
            &mut self.restore_points,
            &mut self.pre_restore,
            &mut self.failed,
            &mut self.damaged,
            &mut self.others,
            &mut self.owner_unknown,
        ] {
            list.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
        }
    }

    /// The newest backup attempt of this database: a restore point or a failed
    /// snapshot, whichever is newer by [`Entry::order`] (pre-restore copies are
    /// not attempts).
    pub(crate) fn newest_attempt(&self) -> Option<&Entry> {
        self.restore_points
            .iter()
            .chain(&self.failed)
            .max_by_key(|e| e.order())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::metadata::{CheckResult, Metadata};
    use crate::store::naming::BackupName;
    use jiff::civil::DateTime;
    use jiff::tz::TimeZone;

    /// An entry of `source`, created at `stamp` (UTC), for core-logic tests.
    pub(crate) fn entry(stamp: &str, source: &str, kind: Kind, failed: bool) -> Entry {
        let stamp = DateTime::strptime("%Y%m%d_%H%M%S", stamp).unwrap();
        let name = BackupName::new(stamp, 0, failed);
        let meta = Metadata {
            format: 1,
            created: stamp.to_zoned_datetime(TimeZone::UTC).unwrap().timestamp(),
            source: source.into(),
            db_size: 1,
            checksum: crate::store::Checksum::of(b""),
            host: "h".into(),
            job: "local".into(),
            kind,
            check: if failed {
                CheckResult::Failed
            } else {
                CheckResult::Ok
            },
            check_detail: None,
            check_kind: Default::default(),
            fingerprint: None,
            tool: String::new(),
            adopted_from: None,
            file_size: None,
            seq: None,
            members: None,
            diff: None,
            duration_seconds: None,
            free_bytes: None,
            numbering_since: None,
            name: None,
        };
        Entry {
            name,
            file_name: name.file_name(),
            path: name.file_name().into(),
            size: 1,
            meta: Ok(meta),
            legacy: false,
            implausible: None,
            damage: None,
            placed: crate::store::Placed::default(),
        }
    }

    pub(crate) fn legacy(stamp: &str) -> Entry {
        let mut e = entry(stamp, "/", Kind::Manual, false);
        e.meta = Err("gzip file without dbbackup metadata".into());
        e.legacy = true;
        e
    }

    #[test]
    fn each_file_has_one_role() {
        let db = DbId::of(Path::new("/proj/a.db"));
        let cases = [
            (
                entry("20250101_000000", "/proj/a.db", Kind::Manual, false),
                Role::RestorePoint,
            ),
            (
                entry("20250101_000000", "/proj/a.db", Kind::PreJob, false),
                Role::RestorePoint,
            ),
            (
                entry("20250101_000000", "/proj/a.db", Kind::PreRestore, false),
                Role::PreRestore,
            ),
            (
                entry("20250101_000000", "/proj/a.db", Kind::PreRestore, true),
                Role::PreRestore,
            ),
            (
                entry("20250101_000000", "/proj/a.db", Kind::Auto, true),
                Role::Failed,
            ),
            (
                entry("20250101_000000", "/proj/b.db", Kind::Manual, false),
                Role::Other,
            ),
            (
                entry("20250101_000000", "/proj/b.db", Kind::PreRestore, false),
                Role::Other,
            ),
            (legacy("20250101_000000"), Role::RestorePoint),
        ];
        for (entry, expected) in cases {
            assert_eq!(
                role(&entry, &db, &Legacy::Ours(Unlike::default())),
                expected,
                "{entry:?}"
            );
        }
        let mut damaged = entry("20250101_000000", "/proj/a.db", Kind::Manual, false);
        damaged.meta = Err("damaged metadata: x".into());
        assert_eq!(
            role(&damaged, &db, &Legacy::Ours(Unlike::default())),
            Role::Damaged
        );
        let old = legacy("20250101_000000");
        assert_eq!(role(&old, &db, &Legacy::OwnerUnknown), Role::OwnerUnknown);
        let mut cut = legacy("20250101_000000");
        cut.implausible = Some("truncated".into());
        assert_eq!(
            role(&cut, &db, &Legacy::Ours(Unlike::default())),
            Role::Damaged
        );
    }

    #[test]
    fn legacy_files_are_ours_only_while_no_other_database_is_backed_up_beside_them() {
        let db = DbId::of(Path::new("/proj/a.db"));
        let old = legacy("20250101_000000");
        let judge = |others: Vec<Entry>| {
            let mut entries = vec![old.clone()];
            entries.extend(others);
            Legacy::judge_claimed(&entries, &db, true)
        };
        assert_eq!(judge(vec![]), Legacy::Ours(Unlike::default()));
        // A directory the configuration does not give this database: nothing
        // says whose they are.
        assert_eq!(
            Legacy::judge_claimed(std::slice::from_ref(&old), &db, false),
            Legacy::Unclaimed
        );
        assert_eq!(
            Legacy::judge(std::slice::from_ref(&old), &db),
            Legacy::Unclaimed
        );
        assert_eq!(
            judge(vec![entry(
                "20250102_000000",
                "/proj/a.db",
                Kind::Manual,
                false
            )]),
            Legacy::Ours(Unlike::default())
        );
        // A scratch restore's undo copy says nothing about the directory.
        assert_eq!(
            judge(vec![entry(
                "20250102_000000",
                "/proj/s.db",
                Kind::PreRestore,
                false
            )]),
            Legacy::Ours(Unlike::default())
        );
        for kind in [
            Kind::Manual,
            Kind::Auto,
            Kind::PreJob,
            Kind::PostJob,
            Kind::Periodic,
        ] {
            assert_eq!(
                judge(vec![entry("20250102_000000", "/proj/b.db", kind, false)]),
                Legacy::OwnerUnknown,
                "{kind:?}"
            );
        }
        assert_eq!(
            judge(vec![entry(
                "20250102_000000",
                "/proj/b.db",
                Kind::Auto,
                true
            )]),
            Legacy::OwnerUnknown,
            "a failed snapshot of b.db still says b.db is backed up here"
        );
        let set = BackupSet::of(
            vec![
                old.clone(),
                entry("20250102_000000", "/proj/b.db", Kind::Manual, false),
            ],
            &db,
        );
        assert!(set.restore_points.is_empty());
        assert_eq!(set.owner_unknown.len(), 1);
        let alone = BackupSet::whole_dir(vec![
            old.clone(),
            entry("20250102_000000", "/proj/b.db", Kind::Manual, false),
        ]);
        assert_eq!(alone.restore_points.len(), 2);
        let shared = BackupSet::whole_dir(vec![
            old,
            entry("20250102_000000", "/proj/b.db", Kind::Manual, false),
            entry("20250103_000000", "/proj/c.db", Kind::Manual, false),
        ]);
        assert_eq!(shared.restore_points.len(), 2);
        assert_eq!(shared.owner_unknown.len(), 1);
    }

    #[test]
    fn a_source_recorded_through_a_symlinked_directory_is_the_same_database() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("a.db"), b"").unwrap();
        std::os::unix::fs::symlink(&real, root.path().join("link")).unwrap();
        let db = DbId::of(&real.join("a.db"));
        let via_link = root.path().join("link/a.db");
        assert!(db.owns(via_link.to_str().unwrap()));
        assert!(!db.owns(root.path().join("link/b.db").to_str().unwrap()));
        assert!(!db.owns("a.db"), "relative sources are never guessed");
    }

    #[test]
    fn sets_are_newest_first_and_the_newest_attempt_may_be_a_failure() {
        let db = DbId::of(Path::new("/proj/a.db"));
        let set = BackupSet::of(
            vec![
                entry("20250101_000000", "/proj/a.db", Kind::Manual, false),
                entry("20250103_000000", "/proj/a.db", Kind::Auto, true),
                entry("20250102_000000", "/proj/a.db", Kind::Manual, false),
                entry("20250104_000000", "/proj/b.db", Kind::Manual, false),
            ],
            &db,
        );
        let names: Vec<_> = set.restore_points.iter().map(|e| &e.file_name).collect();
        assert_eq!(
            names,
            [
                "backup_20250102_000000.db.gz",
                "backup_20250101_000000.db.gz"
            ]
        );
        assert!(set.newest_attempt().unwrap().name.failed);
        assert_eq!(set.others.len(), 1);
    }

    #[test]
    fn the_publication_number_orders_before_any_date() {
        let db = DbId::of(Path::new("/proj/a.db"));
        let numbered = |stamp: &str, seq: u64| {
            let mut e = entry(stamp, "/proj/a.db", Kind::Manual, false);
            if let Ok(meta) = &mut e.meta {
                meta.seq = Some(seq);
            }
            e
        };
        let set = BackupSet::of(
            vec![
                // Published second by a node whose clock was far ahead.
                numbered("29990101_000000", 2),
                // Published third, by a correct clock.
                numbered("20250102_000000", 3),
                numbered("20250101_000000", 1),
                // Made without a number (an older version, the seed script)
                // after all of them by the clock: placed after them.
                entry("20250105_000000", "/proj/a.db", Kind::Manual, false),
                // Made without a number before any of them.
                entry("20241231_000000", "/proj/a.db", Kind::Manual, false),
            ],
            &db,
        );
        let names: Vec<_> = set.restore_points.iter().map(|e| &e.file_name).collect();
        assert_eq!(
            names,
            [
                "backup_20250105_000000.db.gz",
                "backup_20250102_000000.db.gz",
                "backup_29990101_000000.db.gz",
                "backup_20250101_000000.db.gz",
                "backup_20241231_000000.db.gz"
            ]
        );
    }
}
