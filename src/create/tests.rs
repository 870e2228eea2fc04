//! The stages of one backup, each on its own, against real SQLite files in a
//! temp backup directory.

use std::path::{Path, PathBuf};

use super::*;
use crate::archive::decompress;
use crate::progress::Progress;
use crate::retention::Policy;
use crate::sqlite_file::Integrity;
use crate::store::{Checksum, TEMP_PREFIX};

struct Setup {
    root: tempfile::TempDir,
    db: PathBuf,
    id: DbId,
    dir: BackupDir,
    job: JobContext,
}

impl Setup {
    /// A database of `rows` rows of 1000 bytes, and an empty backup directory.
    fn new(rows: u32) -> Setup {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("results.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
            .unwrap();
        insert(&db, 0, rows);
        let dir = BackupDir::new(root.path().join("backups"));
        dir.ensure_exists().unwrap();
        Setup {
            id: DbId::of(&db),
            db,
            dir,
            job: JobContext::from_lookup(|_| None, "n1".into()),
            root,
        }
    }

    fn target(&self) -> Target<'_> {
        Target {
            dir: &self.dir,
            db: &self.db,
            id: &self.id,
            job: &self.job,
        }
    }

    fn encoding(&self) -> Encoding<'_> {
        Encoding {
            level: 6,
            threads: 2,
            progress: false,
            job: &self.job,
        }
    }

    fn lock(&self) -> DirLock {
        DirLock::try_acquire(self.dir.path(), &self.job)
            .unwrap()
            .expect("nobody else holds a test's lock")
    }

    fn reader(&self) -> Reader {
        Reader::Sqlite(Source::open(&self.db, Duration::from_secs(5)).unwrap())
    }

    fn checked(&self, plan: &diff::Plan) -> Written {
        write_checked(&self.target(), &self.encoding(), &self.reader(), plan).unwrap()
    }

    fn publish(&self, checked: Checked) -> Published {
        let record = Record {
            kind: Kind::Manual,
            fingerprint: None,
            mirrors: &[],
        };
        publish::publish(checked, &self.target(), &self.lock(), &record).unwrap()
    }

    /// Files in the backup directory, page-hash directory left out.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.') || name.starts_with(TEMP_PREFIX))
            .collect();
        names.sort();
        names
    }
}

fn insert(db: &Path, from: u32, rows: u32) {
    let conn = rusqlite::Connection::open(db).unwrap();
    for i in from..from + rows {
        conn.execute(
            "INSERT OR REPLACE INTO t(id, v) VALUES (?1, ?2)",
            rusqlite::params![i, noise(i)],
        )
        .unwrap();
    }
}

/// 1000 bytes that do not compress, different for each row.
fn noise(row: u32) -> Vec<u8> {
    let mut state = u64::from(row).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..1000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn full(hashes: bool) -> diff::Plan {
    diff::Plan::Full { hashes, why: None }
}

fn sha256(bytes: &[u8]) -> Checksum {
    Checksum::of(bytes)
}

fn checked(written: Written) -> Checked {
    match written {
        Written::Checked(checked) => *checked,
        Written::Fallback(fallback) => panic!("unexpected fallback: {}", fallback.why),
    }
}

/// What a published full backup decompresses to.
fn content(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    decompress::extract(entry, &mut out, &Progress::hidden(), 1).unwrap();
    out
}

#[test]
fn a_checked_temp_file_is_not_a_backup_until_published() {
    let setup = Setup::new(50);
    let source = std::fs::read(&setup.db).unwrap();
    let checked = checked(setup.checked(&full(false)));
    assert_eq!(checked.check, Integrity::Ok);
    assert_eq!(checked.db_size, source.len() as u64);
    assert_eq!(checked.checksum, sha256(&source));
    assert!(
        setup.dir.entries().unwrap().is_empty(),
        "nothing published yet"
    );

    let Published { entry, meta } = setup.publish(checked);
    assert_eq!(meta.checksum, sha256(&source));
    assert_eq!(meta.seq, Some(1));
    assert_eq!(meta.kind, Kind::Manual);
    assert_eq!(entry.meta.as_ref().unwrap(), &meta);
    assert_eq!(
        setup.files(),
        std::slice::from_ref(&entry.file_name),
        "no temp file left"
    );
    let read = setup.dir.entry(&entry.file_name).unwrap().unwrap();
    assert_eq!(
        read.meta.unwrap().checksum,
        meta.checksum,
        "the header says it"
    );
    assert_eq!(content(&entry), source);
}

#[test]
fn a_raw_file_is_published_as_a_failed_backup_of_its_bytes() {
    let setup = Setup::new(1);
    let garbage = b"not a database at all".repeat(100);
    std::fs::write(&setup.db, &garbage).unwrap();
    let file = std::fs::File::open(&setup.db).unwrap();
    let reader = Reader::RawFile(file, "file is not a database".into());
    let written = write_checked(&setup.target(), &setup.encoding(), &reader, &full(false));
    let checked = checked(written.unwrap());
    assert_eq!(
        checked.check,
        Integrity::Failed("file is not a database".into())
    );
    let Published { entry, meta } = setup.publish(checked);
    assert!(entry.is_failed(), "{}", entry.file_name);
    assert_eq!(meta.check, CheckResult::Failed);
    assert_eq!(meta.checksum, sha256(&garbage), "its bytes as they are");
    assert_eq!(meta.db_size, garbage.len() as u64);
}

#[test]
fn a_diff_holds_only_the_changed_pages_and_rebuilds_the_database() {
    let setup = Setup::new(200);
    let base = setup.publish(checked(setup.checked(&full(true))));
    insert(&setup.db, 0, 3);
    let plan = diff::plan(5, &setup.dir, &setup.id, Kind::Manual);
    assert!(
        matches!(plan, diff::Plan::Diff(_)),
        "a base with page hashes"
    );
    let checked = checked(setup.checked(&plan));
    let diff = checked.diff.clone().expect("a diff");
    assert_eq!(diff.base, base.entry.file_name);
    assert!(diff.changed_pages < diff.page_count / 4, "{diff:?}");
    let Published { entry, .. } = setup.publish(checked);
    assert!(entry.name.diff, "{}", entry.file_name);
    let mut rebuilt = Vec::new();
    diff::rebuild::rebuild(
        &entry,
        &mut rebuilt,
        &Progress::hidden(),
        1,
        diff::rebuild::Bases::Sound,
    )
    .unwrap();
    assert_eq!(rebuilt, std::fs::read(&setup.db).unwrap());
}

#[test]
fn a_diff_past_half_its_base_falls_back_leaving_no_temp_file() {
    let setup = Setup::new(200);
    let base = setup.publish(checked(setup.checked(&full(true))));
    insert(&setup.db, 0, 3);
    let diff::Plan::Diff(mut base_plan) = diff::plan(5, &setup.dir, &setup.id, Kind::Manual) else {
        panic!("a base with page hashes");
    };
    // As if the base were tiny: any diff is past half of it.
    base_plan.entry.size = 0;
    base_plan.confirm = None;
    let Written::Fallback(fallback) = setup.checked(&diff::Plan::Diff(base_plan)) else {
        panic!("a diff past its limit is given up");
    };
    assert!(
        fallback.why.starts_with(diff::write::TOO_LARGE),
        "{}",
        fallback.why
    );
    assert!(!fallback.base_damaged, "too large is routine");
    assert_eq!(setup.files(), [base.entry.file_name]);
}

#[test]
fn only_a_diff_falls_back_to_a_full_backup() {
    let fallback = || Fallback {
        why: "the diff grew".into(),
        base_damaged: false,
    };
    let Err(error) = full_instead(&full(true), fallback()) else {
        panic!("a full backup has nothing to fall back to");
    };
    assert_eq!(error.to_string(), "the diff grew");

    let setup = Setup::new(20);
    setup.publish(checked(setup.checked(&full(true))));
    let plan = diff::plan(5, &setup.dir, &setup.id, Kind::Manual);
    assert!(matches!(plan, diff::Plan::Diff(_)));
    match full_instead(&plan, fallback()).unwrap() {
        diff::Plan::Full { hashes, why } => {
            assert!(hashes, "the full backup may become the next base");
            assert_eq!(why.as_deref(), Some("the diff grew"));
        }
        diff::Plan::Diff(_) => panic!("a full backup instead"),
    }
}

#[test]
fn retention_after_publishing_keeps_the_newest_and_copies_to_mirrors() {
    let setup = Setup::new(10);
    let mirror = setup.root.path().join("mirror");
    let mirrors = [mirror.clone()];
    let keep = Keep {
        policy: Policy {
            keep_last: 2,
            keep_daily: 0,
            keep_weekly: 0,
            keep_pre_restore: 1,
            max_shrink_percent: 50.0,
        },
        mirrors: &mirrors,
        lock_wait: std::time::Duration::ZERO,
    };
    let mut names = Vec::new();
    let mut last = None;
    for round in 0..3 {
        insert(&setup.db, 100 + round, 1);
        let checked = checked(setup.checked(&full(false)));
        let record = Record {
            kind: Kind::Manual,
            fingerprint: None,
            mirrors: &mirrors,
        };
        let created = finish(checked, &setup.target(), &setup.lock(), &record, &keep).unwrap();
        names.push(created.entry.file_name.clone());
        last = Some(created);
    }
    let created = last.unwrap();
    assert_eq!(created.pruned, [names[0].clone()], "the oldest of three");
    assert_eq!(setup.files(), names[1..]);
    assert_eq!(created.mirrors.len(), 1);
    assert!(created.mirrors[0].result.is_ok(), "{:?}", created.mirrors);
    assert!(mirror.join(&created.entry.file_name).is_file());
    assert!(created.is_complete());
}
