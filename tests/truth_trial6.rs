//! Trial T28 (fresh-eye new user, stop 38): false alarms and false "ok"s it
//! found, each against real databases and real `dbbackup` processes.

use std::fs;
use std::path::Path;

use rusqlite::Connection;

use crate::common::*;

/// A WAL database whose main file a crash left half checkpointed: the first
/// half of the `-wal`'s frames copied into it, the `-wal` still there (as a
/// checkpoint killed part way leaves them). SQLite replays the `-wal` on
/// open; the main file alone is torn. `sound` runs on the first state.
fn half_checkpointed_wal_db(path: &Path, sound: impl FnOnce()) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);
         CREATE INDEX t_v ON t (v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO t SELECT i, randomblob(100) FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    sound();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .unwrap();
    conn.execute_batch(
        "DELETE FROM t WHERE id % 2 = 0;
         WITH RECURSIVE n(i) AS (SELECT 5000 UNION ALL SELECT i + 1 FROM n WHERE i < 7000)
         INSERT INTO t SELECT i, randomblob(100) FROM n;",
    )
    .unwrap();
    drop(conn);
    let wal = fs::read(sibling(path, "-wal")).unwrap();
    let page_size = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
    let frames: Vec<&[u8]> = wal[32..].chunks(24 + page_size).collect();
    let mut db = fs::read(path).unwrap();
    for frame in &frames[..frames.len() / 2] {
        let page = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        let at = (page - 1) * page_size;
        if db.len() < at + page_size {
            db.resize(at + page_size, 0);
        }
        db[at..at + page_size].copy_from_slice(&frame[24..]);
    }
    fs::write(path, db).unwrap();
}

fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// T28 F4: `restore latest` judged the database it replaces by its main file
/// alone (`immutable`), which ignores the `-wal`: a sound WAL database (a
/// live writer's, or one a crash left half checkpointed) was said to fail its
/// check ("database disk image is malformed").
#[test]
fn restore_latest_reads_a_wal_database_through_its_wal_before_calling_it_damaged() {
    let env = Env::empty();
    half_checkpointed_wal_db(&env.db, || {
        env.run(&["backup"]).ok();
    });
    // The precondition: the main file alone is torn, through SQLite it is sound.
    let alone = Connection::open_with_flags(
        format!("file:{}?immutable=1", env.db.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap()
    .query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0));
    assert!(!matches!(&alone, Ok(ok) if ok == "ok"), "torn: {alone:?}");
    let copy = env.path("copy.db");
    fs::copy(&env.db, &copy).unwrap();
    fs::copy(sibling(&env.db, "-wal"), sibling(&copy, "-wal")).unwrap();
    let through: String = Connection::open(&copy)
        .unwrap()
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(through, "ok");
    let count = |db: &Path| -> i64 {
        Connection::open(db)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    };
    let current = count(&copy);

    let run = env.run(&["restore", "latest", "--format", "json"]);
    run.ok();
    assert!(!run.stderr.contains("fails its check"), "{}", run.stderr);
    assert_eq!(count(&env.db), 3000, "the backup's content");
    // What it replaced, read through its WAL, is the undo copy.
    let saved = run.json()["pre_restore_backup"]
        .as_str()
        .unwrap()
        .to_string();
    let undo = gunzip_to(&env.backups.join(&saved), &env.path("undo.db"));
    assert_eq!(count(&undo), current);

    // A live writer's: refused as in use, without a word of damage.
    let writer = Connection::open(&env.db).unwrap();
    writer
        .execute("INSERT INTO t (v) VALUES (x'00')", [])
        .unwrap();
    let run = env.run(&["restore", "latest"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("is in use by pid"), "{}", run.stderr);
    assert!(!run.stderr.contains("fails its check"), "{}", run.stderr);
}

/// T28 F11: a backup found damaged was forgotten once its file's stamp
/// changed (`touch` against a scratch purge, `cp -a` or `rsync -a` of the
/// backup directory): `list` said ok, `check` counted it healthy, and
/// retention counted it as a good restore point and deleted an intact one.
#[test]
fn a_damaged_backup_stays_damaged_when_touched_or_copied_until_it_reads_whole() {
    let env = Env::empty();
    // Large enough that its middle is compressed data, not the header.
    make_results_db(&env.db, 1.0, false);
    let mut names = Vec::new();
    for _ in 0..3 {
        add_extra_row(&env.db);
        env.run(&["--max-backups", "3", "backup"]).ok();
        names.push(env.backup_files().pop().unwrap());
    }
    let newest = names[2].clone();
    let path = env.backups.join(&newest);
    let good = fs::read(&path).unwrap();
    flip_middle(&path);
    let verify = env.run(&["verify", &newest]);
    assert_eq!(verify.code, 1, "{}", verify.stdout);
    assert!(
        std::process::Command::new("touch")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let row = &listed(&env)[&newest];
    assert_eq!(row["check"], "damaged", "{row}");
    assert!(
        row["restore_problem"]
            .as_str()
            .unwrap()
            .ends_with(&format!("`dbbackup verify {newest}` reads it again")),
        "{row}"
    );
    assert_eq!(env.run(&["check"]).code, 1);
    // A copy of the directory (new inodes) says the same.
    let copy = env.path("copy");
    assert!(
        std::process::Command::new("cp")
            .args(["-a", env.backups.to_str().unwrap(), copy.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let list = env.run(&[
        "--backup-dir",
        copy.to_str().unwrap(),
        "list",
        "--format",
        "json",
    ]);
    let rows = list.json();
    let copied = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == newest.as_str())
        .unwrap();
    assert_eq!(copied["check"], "damaged", "{copied}");
    // Retention counts only the intact points: with 3 kept, a new backup
    // keeps both older intact ones.
    add_extra_row(&env.db);
    env.run(&["--max-backups", "3", "backup"]).ok();
    let files = env.backup_files();
    for name in &names[..2] {
        assert!(files.contains(name), "{name} kept: {files:?}");
    }
    // The good bytes put back: said damaged until read whole, then ok.
    fs::write(&path, &good).unwrap();
    assert_eq!(listed(&env)[&newest]["check"], "damaged");
    env.run(&["verify", &newest]).ok();
    assert_eq!(listed(&env)[&newest]["check"], "ok");
}

fn add_extra_row(db: &Path) {
    Connection::open(db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS extra (x BLOB); INSERT INTO extra VALUES (randomblob(64));",
        )
        .unwrap();
}

/// T28 F10: `verify --all` beside a backup whose retention deleted a listed
/// backup before verify read it said `FAILED: cannot open backup` and exit 1
/// (a monitoring `verify --all` overlapping any array task's backup paged
/// someone). Such a backup is said deleted, not verified, and is no failure.
#[test]
fn verify_all_beside_backups_says_a_backup_deleted_meanwhile_and_does_not_fail() {
    let env = Env::empty();
    make_results_db(&env.db, 3.0, false);
    for _ in 0..4 {
        env.run(&["--max-backups", "4", "backup", "--force"]).ok();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let backups = {
        let (stop, root, db) = (stop.clone(), env.root.path().to_path_buf(), env.db.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let status = std::process::Command::new(BIN)
                    .current_dir(&root)
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .args(["--db-path", db.to_str().unwrap(), "--backup-dir", "backups"])
                    .args(["--max-backups", "2", "-q", "backup", "--force"])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        })
    };
    let mut deleted = 0;
    for _ in 0..20 {
        let verify = env.run(&["verify", "--all", "--format", "json"]);
        assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
        for verdict in verify.json().as_array().unwrap() {
            if verdict["deleted"] == true {
                assert_eq!(verdict["ok"], false);
                assert!(
                    verdict["detail"]
                        .as_str()
                        .unwrap()
                        .starts_with("deleted since verify listed it"),
                    "{verdict}"
                );
                deleted += 1;
            } else {
                assert_eq!(verdict["ok"], true, "{verdict}");
            }
        }
        if deleted > 0 {
            break;
        }
    }
    // Plain `verify` (the newest) beside backups keeping two: a newest
    // deleted before it was read is chosen again, never a FAILED (T28b #3).
    for _ in 0..30 {
        let verify = env.run(&["verify", "--format", "json"]);
        assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
        let verdicts = verify.json();
        let last = verdicts.as_array().unwrap().last().unwrap();
        assert_eq!(last["ok"], true, "{last}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    backups.join().unwrap();
    assert!(
        deleted > 0,
        "no backup was deleted under a verify in 20 tries"
    );
}

/// T28 F16: the undo copy of a restore over a corrupt database (a failed
/// snapshot) could not be restored by name even with `--force`, though the
/// README names it as the undo and `--force` as what allows what is
/// otherwise refused. Named with `--force` it is given back as saved.
#[test]
fn a_failed_snapshot_and_the_failed_undo_copy_are_restored_by_name_with_force() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let mut bytes = fs::read(&env.db).unwrap();
    bytes[4096 + 5..4096 + 7].copy_from_slice(&[0xff, 0xff]);
    fs::write(&env.db, &bytes).unwrap();
    // A backup of it: a failed snapshot, kept for inspection.
    assert_eq!(env.run(&["backup"]).code, 1);
    let snapshot = env.backup_files().pop().unwrap();
    assert!(snapshot.ends_with(".failed.db.gz"), "{snapshot}");
    let refused = env.run(&["restore", &snapshot, "--target", "s.db"]);
    refused.failed_with(
        1,
        &format!("or `dbbackup restore {snapshot} --target FILE --force` to have it back as saved"),
    );
    env.run(&["restore", &snapshot, "--target", "s.db", "--force"])
        .ok();
    assert_eq!(fs::read(env.path("s.db")).unwrap(), bytes);
    let run = env.run(&["restore", "latest", "--format", "json"]);
    run.ok();
    // Exit 0: the corrupt content kept is said, as no error (T28b).
    assert!(!run.stderr.contains(" ERROR "), "{}", run.stderr);
    let undo = run.json()["pre_restore_backup"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(undo.ends_with(".failed.db.gz"), "{undo}");
    let refused = env.run(&["restore", &undo, "--target", "f.db"]);
    refused.failed_with(
        1,
        &format!("`dbbackup restore {undo} --target FILE --force`"),
    );
    assert!(!env.path("f.db").exists());
    let run = env.run(&["restore", &undo, "--target", "f.db", "--force"]);
    run.ok();
    assert!(
        run.stderr
            .contains(&format!("backup {undo} is a failed snapshot ("))
            && run.stderr.contains("restored as saved because of --force"),
        "{}",
        run.stderr
    );
    // The corrupt content, as it was: the same pages.
    assert_eq!(fs::read(env.path("f.db")).unwrap(), bytes);
}

/// T28 F17: a truncated backup showed a SAVED percentage computed from its
/// truncated size ("64%" of a file that saved 23%): none is said.
#[test]
fn a_truncated_backup_says_no_saved_percentage() {
    let env = Env::empty();
    make_results_db(&env.db, 1.0, false);
    env.run(&["backup"]).ok();
    let name = env.backup_files().pop().unwrap();
    let path = env.backups.join(&name);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let row = &listed(&env)[&name];
    assert_eq!(row["check"], "damaged", "{row}");
    assert!(row["saved_percent"].is_null(), "{row}");
    let list = env.run(&["list"]);
    let line = list.stdout.lines().find(|l| l.starts_with(&name)).unwrap();
    assert!(!line.contains('%'), "{line}");
}

/// T28 F13 (part): a restore's pre-restore copy ran the whole retention and
/// deleted restore points beyond `max_backups` (three good ones in the
/// trial, keeping a wrong one as the newest). A restore prunes only undo
/// copies; the next backup's retention prunes restore points.
#[test]
fn a_restore_deletes_no_restore_point() {
    let env = Env::empty();
    make_results_db(&env.db, 0.5, false);
    let mut names = Vec::new();
    for _ in 0..4 {
        add_extra_row(&env.db);
        env.run(&["--max-backups", "10", "backup"]).ok();
        names.push(env.backup_files().pop().unwrap());
    }
    add_extra_row(&env.db);
    env.run(&["--max-backups", "2", "restore", &names[1]]).ok();
    let files = env.backup_files();
    for name in &names {
        assert!(files.contains(name), "{name} kept: {files:?}");
    }
    // The next backup prunes to max_backups.
    add_extra_row(&env.db);
    env.run(&["--max-backups", "2", "backup"]).ok();
    let points = listed(&env)
        .values()
        .filter(|row| row["role"] == "restore-point")
        .count();
    assert_eq!(points, 2);
}

/// T28 F13: in a seed-era directory holding plain-gzip backups of two
/// databases (names carry none), `restore latest` put the newest, another
/// database's (no table in common, 24 times smaller), over results.db, exit
/// 0. A legacy backup sharing no table with the database it would replace
/// is passed over by `latest`, and refused by name without `--force`.
#[test]
fn restore_latest_passes_over_a_legacy_backup_sharing_no_table_with_the_database() {
    let env = Env::empty();
    make_results_db(&env.db, 0.5, false);
    fs::create_dir_all(&env.backups).unwrap();
    let hour = |h: i64| jiff::Timestamp::now() - jiff::SignedDuration::from_hours(h);
    let system = jiff::tz::TimeZone::system();
    let ours = seed_backup_name(hour(3), &system);
    seed_backup(&env.db, &env.backups, &ours);
    let digest = content_digest(&env.db);
    let other = env.path("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x); INSERT INTO unrelated VALUES (1);")
        .unwrap();
    let theirs = seed_backup_name(hour(1), &system);
    seed_backup(&other, &env.backups, &theirs);
    add_extra_row(&env.db);
    let run = env.run_configured(&["restore", "latest"]);
    run.ok();
    assert!(
        run.stderr.contains(&format!(
            "passing over {theirs}: a legacy backup (plain gzip, no recorded database) that holds tables (unrelated) mostly not among the database "
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains(&format!("restored {ours}")),
        "{}",
        run.stdout
    );
    assert_eq!(content_digest(&env.db), digest);
    let by_name = env.run_configured(&["restore", &theirs]);
    by_name.failed_with(
        1,
        "most likely another database's; refusing to restore it over",
    );
    assert_eq!(content_digest(&env.db), digest);
    env.run_configured(&["restore", &theirs, "--force"]).ok();
    assert_eq!(content_digest(&env.db), content_digest(&other));
}

/// T28 F7: with no database configured, `list` said a seed backup's
/// DATABASE was `this` (JSON: role null): there is no "this".
#[test]
fn with_no_database_configured_a_legacy_backup_is_nobodys_in_particular() {
    let env = Env::empty();
    make_results_db(&env.db, 0.2, false);
    fs::create_dir_all(&env.backups).unwrap();
    let name = seed_backup_name(
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        &jiff::tz::TimeZone::system(),
    );
    seed_backup(&env.db, &env.backups, &name);
    let list = bare(
        env.root.path(),
        &["--backup-dir", env.backups.to_str().unwrap(), "list"],
    );
    list.ok();
    let line = list.stdout.lines().find(|l| l.starts_with(&name)).unwrap();
    assert!(line.ends_with("unknown (legacy, no metadata)"), "{line}");
}

/// A bind mount (`mount --bind`), unmounted when dropped.
struct Bind(std::path::PathBuf);

impl Bind {
    fn mount(from: &Path, at: &Path) -> Option<Bind> {
        fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must bind-mount"
            );
            return None;
        }
        Some(Bind(at.to_path_buf()))
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// T28 F21: the same database file reached through a bind mount (a
/// container's `--bind`, an automounter's second path) was another database:
/// the backup made through one path was `other:` through the other, and
/// `restore latest` passed over that newer backup for an older one.
#[test]
fn the_same_file_through_a_bind_mount_is_the_same_database() {
    let env = Env::empty();
    let project = env.path("project");
    fs::create_dir_all(&project).unwrap();
    let db = project.join("results.db");
    make_results_db(&db, 0.2, false);
    let run_as = |path: &Path, args: &[&str]| -> Run {
        env.command()
            .env("DBBACKUP_DB_PATH", path)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    run_as(&db, &["backup"]).ok();
    let Some(_bind) = Bind::mount(&project, &env.path("bound")) else {
        return;
    };
    let through = env.path("bound/results.db");
    add_extra_row(&through);
    run_as(&through, &["backup"]).ok();
    let newest = env.backup_files().pop().unwrap();
    let digest = content_digest(&db);
    let list = run_as(&db, &["list", "--format", "json"]);
    for row in list.json().as_array().unwrap() {
        assert_eq!(row["role"], "restore-point", "{row}");
    }
    add_extra_row(&db);
    let restore = run_as(&db, &["restore", "latest"]);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!("restored {newest}")),
        "{}",
        restore.stdout
    );
    assert_eq!(content_digest(&db), digest);
}

/// The seed's name for a backup made `hours` ago here.
fn hours_ago(hours: i64) -> String {
    seed_backup_name(
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours),
        &jiff::tz::TimeZone::system(),
    )
}

/// T28b #1, T29 F3/F8: the same seed-era directory with the database missing
/// (or an empty file): nothing to compare a legacy candidate with, so
/// `restore latest` put the other database's newest in place; a vote by
/// numbers instead was flipped by a `prune`. With no database and no backup
/// of it to compare with, groups of unlike legacy files cannot be told apart:
/// `latest` chooses none, says so, and nothing is pruned; by name with
/// `--force` each is restored.
#[test]
fn with_the_database_missing_latest_chooses_no_legacy_backup_among_unlike_groups() {
    let env = Env::empty();
    make_results_db(&env.db, 0.5, false);
    fs::create_dir_all(&env.backups).unwrap();
    seed_backup(&env.db, &env.backups, &hours_ago(5));
    add_extra_row(&env.db);
    let ours = hours_ago(3);
    seed_backup(&env.db, &env.backups, &ours);
    let digest = content_digest(&env.db);
    let other = env.path("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x); INSERT INTO unrelated VALUES (1);")
        .unwrap();
    let theirs = hours_ago(1);
    seed_backup(&other, &env.backups, &theirs);
    let files = env.backup_files();
    for missing in [true, false] {
        let _ = fs::remove_file(&env.db);
        if !missing {
            fs::write(&env.db, b"").unwrap();
        }
        let run = env.run_configured(&["restore", "latest"]);
        run.failed_with(1, "no restore point of");
        assert!(
            run.stderr.contains(&format!(
                "passing over {theirs} (and 2 more legacy backups like it"
            )),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("which of them are this database's cannot be told"),
            "{}",
            run.stderr
        );
        env.run_configured(&["--max-backups", "1", "prune"]).ok();
        assert_eq!(env.backup_files(), files);
    }
    fs::remove_file(&env.db).unwrap();
    env.run_configured(&["restore", &ours, "--force"]).ok();
    assert_eq!(content_digest(&env.db), digest);
}

#[test]
fn retention_and_check_neither_count_nor_delete_another_databases_legacy_backup() {
    for theirs_oldest in [false, true] {
        let env = Env::empty();
        make_results_db(&env.db, 0.3, false);
        fs::create_dir_all(&env.backups).unwrap();
        let other = env.path("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE samples (x); INSERT INTO samples VALUES (1);")
            .unwrap();
        let (theirs, ours) = match theirs_oldest {
            false => (hours_ago(3), [hours_ago(5), hours_ago(4)]),
            true => (hours_ago(6), [hours_ago(5), hours_ago(4)]),
        };
        for name in &ours {
            add_extra_row(&env.db);
            seed_backup(&env.db, &env.backups, name);
        }
        seed_backup(&other, &env.backups, &theirs);
        // Read whole, the legacy files count for `check` (T28b did so too).
        env.run_configured(&["verify", "--all"]).ok();
        add_extra_row(&env.db);
        let backup = env.run_configured(&["--max-backups", "2", "backup"]);
        backup.ok();
        let files = env.backup_files();
        assert!(files.contains(&theirs), "{files:?}");
        assert!(files.contains(&ours[1]), "{files:?}");
        assert!(!files.contains(&ours[0]), "{files:?}");
        let check = env.run_configured(&["check", "--format", "json"]);
        check.ok();
        let criteria = check.json()["criteria"].as_array().unwrap().clone();
        let count = &criteria.iter().find(|c| c["name"] == "count").unwrap()["detail"];
        assert!(
            count.as_str().unwrap() == "2 good backups (min 1)",
            "{}\n{}",
            check.stdout,
            check.stderr
        );
        let list = env.run_configured(&["list", "--format", "json"]);
        list.ok();
        let rows = list.json();
        let role = |name: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|row| row["name"] == name)
                .map(|row| row["role"].as_str().unwrap().to_string())
        };
        assert_eq!(role(&theirs).as_deref(), Some("unknown-owner"));
        assert_eq!(role(&ours[1]).as_deref(), Some("restore-point"));
        let table = env.run_configured(&["list"]);
        table.ok();
        assert!(
            table.stdout.contains(&format!(
                "note: {theirs} is a legacy backup (plain gzip, no recorded database) that holds tables (samples) mostly not among the database "
            )),
            "{}",
            table.stdout
        );
    }
}

/// T28b: a backup of a corrupt database fails (`attempt` FAIL); a checked
/// `restore latest` then put a good restore point in its place, yet `check`
/// stayed FAIL `attempt` until the next backup. What the database holds is in
/// a backup again: `attempt` says the failure and the restore since, OK.
#[test]
fn a_checked_restore_after_a_failed_attempt_leaves_check_healthy() {
    let env = Env::empty();
    make_ledger_db(&env.db, 2000, false);
    env.run(&["backup"]).ok();
    crate::backup::corrupt_index(&env.db);
    assert_eq!(env.run(&["backup", "--force"]).code, 1);
    let attempt = |run: &Run| -> String {
        run.stdout
            .lines()
            .find(|l| l.contains(" attempt: "))
            .unwrap_or_default()
            .to_string()
    };
    let before = env.run(&["check"]);
    assert!(
        attempt(&before).starts_with("FAIL attempt: "),
        "{}",
        before.stdout
    );
    // Records may be read to the second: the restore comes after the attempt.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The failed snapshot given back as saved is no checked restore (T29 F13).
    let failed = env
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".failed.db.gz"))
        .unwrap();
    env.run(&["restore", &failed, "--force"]).ok();
    let forced = env.run(&["check"]);
    assert!(
        attempt(&forced).starts_with("FAIL attempt: "),
        "{}",
        forced.stdout
    );
    env.run(&["restore", "latest"]).ok();
    let after = env.run(&["check"]);
    after.ok();
    let line = attempt(&after);
    assert!(line.starts_with("OK   attempt: "), "{}", after.stdout);
    assert!(
        line.contains("the database was replaced since by a checked restore of"),
        "{line}"
    );
}

/// T29 F2, F1: another database's legacy backup whose schema pages lie past
/// its first 64 MiB (tables added after the data) was not read, so taken for
/// this database's: counted, and deleted by its retention; and one generic
/// table in common (`config`) made another database's file this one's.
#[test]
fn a_large_legacy_backup_with_its_schema_at_its_end_is_told_apart() {
    let env = Env::empty();
    make_results_db(&env.db, 0.3, false);
    Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE config (k, v); INSERT INTO config VALUES ('seed', 1);")
        .unwrap();
    let other = env.path("other.db");
    let conn = Connection::open(&other).unwrap();
    // 96 MiB of data (zeros: a small gzip), then the tables.
    conn.execute_batch(
        "CREATE TABLE blobs (b);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 96)
         INSERT INTO blobs SELECT zeroblob(1048576) FROM n;
         CREATE TABLE config (k, v);",
    )
    .unwrap();
    for i in 0..80 {
        conn.execute_batch(&format!(
            "CREATE TABLE sample_{i:03} (x, y, z); CREATE INDEX i_{i:03} ON sample_{i:03} (x);"
        ))
        .unwrap();
    }
    drop(conn);
    assert!(fs::metadata(&other).unwrap().len() > 96 << 20);
    fs::create_dir_all(&env.backups).unwrap();
    let ours = hours_ago(3);
    seed_backup(&env.db, &env.backups, &ours);
    let theirs = hours_ago(2);
    seed_backup(&other, &env.backups, &theirs);
    let list = env.run_configured(&["list", "--format", "json"]);
    list.ok();
    let rows = list.json();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|row| row["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row(&theirs)["role"], "unknown-owner");
    assert!(
        row(&theirs)["unknown_owner"]
            .as_str()
            .unwrap()
            .starts_with("holds tables (blobs, config, sample_000, sample_001, sample_002, ...) mostly not among the database "),
        "{}",
        row(&theirs)
    );
    assert_eq!(row(&ours)["role"], "restore-point");
    add_extra_row(&env.db);
    env.run_configured(&["--max-backups", "1", "backup"]).ok();
    let files = env.backup_files();
    assert!(files.contains(&theirs), "{files:?}");
    assert!(!files.contains(&ours), "{files:?}");
}

/// T29b N1, N8: two databases with one full-text index in common shared its
/// half-dozen shadow tables, so the other's legacy file was alike and
/// deleted by this database's retention; and a legacy file whose schema
/// cannot be read (here: cut inside its first page) counted as this
/// database's beside another database's files, and was deleted too.
#[test]
fn shadow_tables_do_not_make_databases_alike_nor_is_an_unreadable_file_ours_beside_anothers() {
    let env = Env::empty();
    make_results_db(&env.db, 0.3, false);
    Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE VIRTUAL TABLE docs USING fts5(body);")
        .unwrap();
    let other = env.path("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch(
            "CREATE TABLE users (x); CREATE TABLE orders (y);
             CREATE VIRTUAL TABLE docs USING fts5(body);",
        )
        .unwrap();
    fs::create_dir_all(&env.backups).unwrap();
    let ours = hours_ago(4);
    seed_backup(&env.db, &env.backups, &ours);
    let theirs = hours_ago(3);
    seed_backup(&other, &env.backups, &theirs);
    // Another database's backup whose SQLite header is whole but whose schema
    // page is not: zeros from byte 100 on, the gzip whole.
    let mut bytes = fs::read(&other).unwrap();
    bytes[100..].fill(0);
    let broken_db = env.path("broken.db");
    fs::write(&broken_db, &bytes).unwrap();
    let unreadable = hours_ago(2);
    seed_backup(&broken_db, &env.backups, &unreadable);
    let list = env.run_configured(&["list", "--format", "json"]);
    list.ok();
    let roles: std::collections::BTreeMap<String, String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["name"].as_str().unwrap().to_string(),
                row["role"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(roles[&ours], "restore-point", "{roles:?}");
    assert_eq!(roles[&theirs], "unknown-owner", "{roles:?}");
    assert_eq!(roles[&unreadable], "unknown-owner", "{roles:?}");
    add_extra_row(&env.db);
    env.run_configured(&["--max-backups", "1", "backup"]).ok();
    let files = env.backup_files();
    assert!(
        files.contains(&theirs) && files.contains(&unreadable),
        "{files:?}"
    );
    assert!(!files.contains(&ours), "{files:?}");
}

/// T29b N11: the database missing and its own dbbackup backup damaged (cut):
/// the other database's legacy files, alike each other, were taken for this
/// database's, pruned and restored. With its own backups here and none
/// readable, no legacy file is counted, chosen or deleted.
#[test]
fn with_the_database_missing_and_its_own_backup_damaged_no_legacy_file_is_its() {
    // Its data cut, or its metadata made unreadable.
    for metadata in [false, true] {
        let env = Env::empty();
        make_results_db(&env.db, 0.3, false);
        env.run_configured(&["backup"]).ok();
        let own = env.backup_files().pop().unwrap();
        let other = env.path("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE samples (x); INSERT INTO samples VALUES (1);")
            .unwrap();
        let legacy = [hours_ago(3), hours_ago(2)];
        for name in &legacy {
            seed_backup(&other, &env.backups, name);
        }
        fs::remove_file(&env.db).unwrap();
        let path = env.backups.join(&own);
        let mut bytes = fs::read(&path).unwrap();
        match metadata {
            true => bytes[30..60].fill(0xff),
            false => bytes.truncate(bytes.len() / 2),
        }
        fs::write(&path, bytes).unwrap();
        env.run_configured(&["--max-backups", "1", "prune"]).ok();
        for name in &legacy {
            assert!(
                env.backup_files().contains(name),
                "{name} (metadata: {metadata})"
            );
        }
        let restore = env.run_configured(&["restore", "latest"]);
        assert_eq!(restore.code, 1, "{}", restore.stderr);
        assert!(!env.db.exists());
    }
}

/// T29b N8, T29c: a legacy file whose tables cannot be read (its schema page
/// zeroed) counted as this database's in a directory of its own, so
/// retention deleted it, and with the database missing `prune` kept it over
/// intact points. Whose it is cannot be told: never counted or deleted.
#[test]
fn a_legacy_backup_whose_tables_cannot_be_read_is_never_counted_nor_deleted() {
    let env = Env::empty();
    make_results_db(&env.db, 0.3, false);
    fs::create_dir_all(&env.backups).unwrap();
    let ours = hours_ago(4);
    seed_backup(&env.db, &env.backups, &ours);
    let mut bytes = fs::read(&env.db).unwrap();
    bytes[100..].fill(0);
    let broken = env.path("broken.db");
    fs::write(&broken, &bytes).unwrap();
    let unreadable = hours_ago(5);
    seed_backup(&broken, &env.backups, &unreadable);
    let rows = listed_configured(&env);
    assert_eq!(rows[&unreadable]["role"], "unknown-owner");
    assert_eq!(rows[&ours]["role"], "restore-point");
    add_extra_row(&env.db);
    env.run_configured(&["--max-backups", "1", "backup"]).ok();
    let files = env.backup_files();
    assert!(files.contains(&unreadable), "{files:?}");
    assert!(!files.contains(&ours), "{files:?}");
}

/// T29d: a table name longer than a page holds (its `sqlite_schema` row on
/// overflow pages) made the database's own legacy backups unknown-owner, so
/// `restore latest` found no restore point. The name is read whole.
#[test]
fn a_legacy_backup_with_a_table_name_longer_than_a_page_is_this_databases() {
    let env = Env::empty();
    make_results_db(&env.db, 0.3, false);
    let long = "q".repeat(1500);
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE \"{long}\" (x); INSERT INTO \"{long}\" VALUES (1);"
        ))
        .unwrap();
    fs::create_dir_all(&env.backups).unwrap();
    let older = hours_ago(5);
    let newer = hours_ago(4);
    seed_backup(&env.db, &env.backups, &older);
    seed_backup(&env.db, &env.backups, &newer);
    let digest = content_digest(&env.db);
    let rows = listed_configured(&env);
    assert_eq!(rows[&older]["role"], "restore-point", "{rows:?}");
    assert_eq!(rows[&newer]["role"], "restore-point", "{rows:?}");
    // What the reader before this one recorded: no tables, and no version.
    for name in [&older, &newer] {
        let record = env
            .backups
            .join(".dbbackup-pages")
            .join(format!("{name}.tables"));
        let mut stamped: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
        assert!(stamped["tables"].is_array(), "{stamped}");
        stamped["tables"] = serde_json::Value::Null;
        stamped.as_object_mut().unwrap().remove("reader");
        fs::write(&record, stamped.to_string()).unwrap();
    }
    let rows = listed_configured(&env);
    assert_eq!(rows[&newer]["role"], "restore-point", "{rows:?}");
    fs::remove_file(&env.db).unwrap();
    let restore = env.run_configured(&["restore", "latest"]);
    restore.ok();
    assert!(restore.stdout.contains(&newer), "{}", restore.stdout);
    assert_eq!(content_digest(&env.db), digest);
}

/// `list --format json` of the configured project, by name.
fn listed_configured(env: &Env) -> std::collections::BTreeMap<String, serde_json::Value> {
    crate::common::by_name(env.run_configured(&["list", "--format", "json"]))
}

/// T29c C2: a database whose first page SQLite cannot read could not be
/// saved before a restore, and the error gave no way through. It still is
/// not replaced unsaved; the error says how (move it aside), and that works.
#[test]
fn a_database_sqlite_cannot_read_to_save_is_refused_saying_how_to_go_on() {
    let env = Env::empty();
    make_results_db(&env.db, 0.3, false);
    env.run_configured(&["backup"]).ok();
    let digest = content_digest(&env.db);
    let mut bytes = fs::read(&env.db).unwrap();
    bytes[100..107].fill(0xff);
    fs::write(&env.db, &bytes).unwrap();
    let run = env.run_configured(&["restore", "latest"]);
    run.failed_with(1, "(SQLite cannot read it to save it: move it aside, `mv ");
    assert_eq!(fs::read(&env.db).unwrap(), bytes);
    fs::rename(&env.db, env.path("results.db.damaged")).unwrap();
    env.run_configured(&["restore", "latest"]).ok();
    assert_eq!(content_digest(&env.db), digest);
}

/// T30 F12: an older backup copied over a newer one's name (a bad copy back
/// from a mirror or tape) was listed, verified and restored as the newer
/// one, `check` healthy, while `restore latest` wrote the older content. The
/// copy is no backup of its own: damaged, FAILED, passed over.
#[test]
fn a_backup_copied_over_another_ones_name_is_no_backup_of_its_own() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let older_digest = content_digest(&env.db);
    add_extra_row(&env.db);
    env.run(&["backup"]).ok();
    let files = env.backup_files();
    let (older, newer) = (&files[0], &files[1]);
    fs::copy(env.backups.join(older), env.backups.join(newer)).unwrap();
    let why = format!("its header says it was published as {older}: a copy");
    let list = env.run(&["list"]);
    list.ok();
    assert!(list.stdout.contains(&why), "{}", list.stdout);
    let check = env.run(&["check"]);
    check.reported(
        1,
        &format!("FAIL restorable: newest restore point {newer} cannot be restored: {why}"),
    );
    let verify = env.run(&["verify", "--all"]);
    verify.reported(1, &format!("{newer}: FAILED: {why}"));
    assert!(
        verify.stdout.contains(&format!("{older}: ok (")),
        "{}",
        verify.stdout
    );
    env.run(&["verify", newer])
        .reported(1, &format!("{newer}: FAILED: {why}"));
    // By name too (T32 G1): never the older content under the newer's name.
    let target = env.path("by-name.db");
    env.run(&["restore", newer, "--target", target.to_str().unwrap()])
        .failed_with(1, &format!("backup {newer} is damaged: {why}"));
    assert!(!target.exists());
    env.run(&["export", newer, "--out", "copy.db.gz"])
        .failed_with(1, &format!("backup {newer} is damaged: {why}"));
    // Retention takes the copy, never keeping it while the original ages
    // out, after which it would pass for a backup of its own (T32 G6).
    env.run(&["prune", "--dry-run"])
        .reported(0, &format!("would delete {newer}"));
    fs::remove_file(&env.db).unwrap();
    let restore = env.run(&["restore", "latest"]);
    restore.ok();
    assert!(
        restore.stderr.contains(&format!("passing over {newer}")),
        "{}",
        restore.stderr
    );
    assert!(
        restore.stdout.contains(&format!("restored {older}")),
        "{}",
        restore.stdout
    );
    assert_eq!(content_digest(&env.db), older_digest);
    // The copy holds no state that restore undid (T32 G2).
    let again = env.run(&["export", "latest", "--out", "latest.db.gz"]);
    again.ok();
    assert!(!again.stderr.contains("undid"), "{}", again.stderr);

    // T32 G8: the newer copied over the older name: the copy is the file
    // named before its backup was made, not the genuine newer one.
    let env = Env::new();
    env.run(&["backup"]).ok();
    add_extra_row(&env.db);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.run(&["backup"]).ok();
    let files = env.backup_files();
    let (older, newer) = (&files[0], &files[1]);
    fs::copy(env.backups.join(newer), env.backups.join(older)).unwrap();
    let rows = crate::common::listed(&env);
    assert_eq!(rows[newer]["check"], "ok", "{rows:?}");
    assert_eq!(rows[older]["check"], "damaged", "{rows:?}");
    env.run(&["verify", "--all"]).reported(
        1,
        &format!("{older}: FAILED: its header says it was published as {newer}"),
    );
}

/// T32 G5: the original deleted after an older backup was copied over its
/// name (`cp A B; rm A`), the copy named minutes after its backup was made:
/// listed, verified, checked and restored as B. The header names the file
/// each backup was published as: the copy is no backup of its own, also
/// alone, for a full backup and for a diff.
#[test]
fn a_copy_whose_original_was_deleted_is_still_no_backup_of_its_own() {
    for diff in [false, true] {
        let env = Env::empty();
        crate::common::make_results_db(&env.db, 1.0, false);
        let run = |args: &[&str]| {
            let mut all = vec!["--diff-backups", if diff { "2" } else { "0" }];
            all.extend_from_slice(args);
            env.run(&all)
        };
        run(&["backup"]).ok();
        for seed in 0..2 {
            crate::common::grow_results_db(&env.db, 1.01, 100 + seed);
            run(&["backup"]).ok();
        }
        let files = env.backup_files();
        let (older, newer) = (&files[1], &files[2]);
        assert_eq!(newer.ends_with(".diff.gz"), diff, "{files:?}");
        fs::copy(env.backups.join(older), env.backups.join(newer)).unwrap();
        fs::remove_file(env.backups.join(older)).unwrap();
        // Its own name free: the backup renamed, to be renamed back (N10).
        let why = format!(
            "its header says it was published as {older}, and no file of that name is here"
        );
        let rows = crate::common::listed(&env);
        assert_eq!(
            rows[newer.as_str()]["check"],
            "damaged",
            "diff {diff}: {rows:?}"
        );
        env.run(&["verify", "--all"])
            .reported(1, &format!("{newer}: FAILED: {why}"));
        env.run(&["check"]).reported(
            1,
            &format!("FAIL restorable: newest restore point {newer} cannot be restored: {why}"),
        );
        fs::remove_file(&env.db).unwrap();
        let restore = env.run(&["restore", "latest"]);
        assert!(
            !restore.stdout.contains(&format!("restored {newer}")),
            "diff {diff}: {}{}",
            restore.stdout,
            restore.stderr
        );
    }
}

/// T30 F14: the newest restore point damaged (or a failed snapshot newest),
/// the database set back to an older sound point: `backup` said "unchanged
/// since" that point and made nothing, so `check` stayed CRITICAL however
/// often the advised backup ran. A new backup is made: healthy again.
#[test]
fn a_database_equal_to_an_older_point_below_an_unsound_newest_is_backed_up_again() {
    // The newest restore point rots; `restore latest` takes the older one.
    let env = Env::new();
    env.run(&["backup"]).ok();
    add_extra_row(&env.db);
    env.run(&["backup"]).ok();
    flip_middle(&env.newest_backup());
    env.run(&["restore", "latest"]).ok();
    env.run(&["check"]).reported(1, "FAIL ");
    env.run(&["backup"]).reported(0, "created backup_");
    env.run(&["check"]).ok();
    env.run(&["backup"]).reported(0, "unchanged");

    // A failed snapshot newest; the good backup put back by hand (`zcat`).
    let env = Env::new();
    env.run(&["backup"]).ok();
    let good = env.newest_backup();
    crate::backup::corrupt_index(&env.db);
    env.run(&["backup"]).failed_with(1, "integrity");
    let zcat = std::process::Command::new("zcat")
        .arg(&good)
        .output()
        .unwrap();
    fs::write(&env.db, zcat.stdout).unwrap();
    env.run(&["backup"]).reported(0, "created backup_");
    env.run(&["check"]).ok();
}

/// T30 F8: the README's undo of `restore latest --force` over a database
/// whose header was destroyed: its pre-restore copy (a failed snapshot of a
/// file that is no SQLite database) was refused even with `--force`, and
/// called damaged. Given back byte for byte, as saved.
#[test]
fn the_pre_restore_copy_of_a_file_with_a_destroyed_header_is_given_back_as_saved() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    add_extra_row(&env.db);
    let mut bytes = fs::read(&env.db).unwrap();
    bytes[..100].fill(0);
    fs::write(&env.db, &bytes).unwrap();
    env.run(&["restore", "latest"])
        .failed_with(1, "is not an SQLite database");
    env.run(&["restore", "latest", "--force"]).ok();
    let saved = env
        .backup_files()
        .into_iter()
        .find(|name| name.ends_with(".failed.db.gz"))
        .expect("a pre-restore copy");
    let back = env.path("back.db");
    env.run(&[
        "restore",
        &saved,
        "--target",
        back.to_str().unwrap(),
        "--force",
    ])
    .ok();
    assert_eq!(fs::read(&back).unwrap(), bytes);
    env.run(&["restore", &saved, "--force"]).ok();
    assert_eq!(fs::read(&env.db).unwrap(), bytes);
    // Its bytes are the ones saved: not marked damaged by the reads.
    let list = env.run(&["list"]);
    assert!(
        !list.stdout.contains("cannot be restored"),
        "{}",
        list.stdout
    );
}

/// A `dbbackup` run with `args` (and `TMPDIR` at `tmp`), killed outright
/// once one of its temp files appears in `watched`.
fn killed_once_its_temp_file_is_in(env: &Env, args: &[&str], tmp: &Path, watched: &Path) {
    let temps = || -> Vec<String> {
        fs::read_dir(watched)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".dbbackup-tmp-"))
            .collect()
    };
    let mut child = env
        .command()
        .env("TMPDIR", tmp)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while temps().is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "{args:?} ended first");
        assert!(std::time::Instant::now() < deadline, "no temp file seen");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!temps().is_empty(), "{args:?}");
}

/// T31 R9, T30 F5: a verify killed outright left its decompressed copy in
/// TMPDIR, and a restore its checked copy beside the database, each the
/// database's size, removed by no later command (a restore into that
/// directory only). The next verify, and the next backup, remove them.
#[test]
fn temp_copies_of_killed_verifies_and_restores_are_removed_by_the_next_run() {
    let env = Env::empty();
    make_results_db(&env.db, 40.0, false);
    env.run(&["backup"]).ok();
    let tmp = env.path("tmp");
    fs::create_dir(&tmp).unwrap();
    killed_once_its_temp_file_is_in(&env, &["verify"], &tmp, &tmp);
    let verify: crate::common::Run = env
        .command()
        .env("TMPDIR", &tmp)
        .arg("verify")
        .output()
        .unwrap()
        .into();
    verify.ok();
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "{}", verify.stderr);

    add_extra_row(&env.db);
    let beside = env.db.parent().unwrap().to_path_buf();
    let left = || -> Vec<_> {
        fs::read_dir(&beside)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".dbbackup-tmp-")
            })
            .collect()
    };
    // `auto` that skips (the interval has not passed) as well (T32 G13).
    for next in [&["auto"][..], &["backup"][..]] {
        killed_once_its_temp_file_is_in(&env, &["restore", "latest", "--force"], &tmp, &beside);
        env.run(next).ok();
        assert!(left().is_empty(), "{next:?}: {:?}", left());
    }
}

/// T32 G14: a WAL database whose header was destroyed, its `-wal` holding a
/// committed row no backup has: `restore latest --force` saved the main file
/// alone and deleted the `-wal`, the row lost for good. Refused, even with
/// `--force`, saying how to keep both; that way works.
#[test]
fn a_forced_restore_never_deletes_the_wal_of_a_database_it_cannot_open() {
    let env = Env::empty();
    make_results_db(&env.db, 0.3, true);
    env.run(&["backup"]).ok();
    // A committed row left in the -wal (the writer exits without a checkpoint).
    let script = "import sqlite3, os, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute(\"CREATE TABLE late (x)\")\nc.execute(\"INSERT INTO late VALUES ('only in the wal')\")\nc.commit()\nos._exit(0)";
    let wrote = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&env.db)
        .status()
        .unwrap();
    assert!(wrote.success());
    let wal = env.path("results.db-wal");
    let wal_bytes = fs::read(&wal).unwrap();
    assert!(!wal_bytes.is_empty());
    let mut bytes = fs::read(&env.db).unwrap();
    bytes[..100].fill(0);
    fs::write(&env.db, &bytes).unwrap();
    let run = env.run(&["restore", "latest", "--force"]);
    run.failed_with(1, "may hold committed changes no backup has; refusing to replace them, even with --force: move both aside");
    assert_eq!(fs::read(&wal).unwrap(), wal_bytes);
    assert_eq!(fs::read(&env.db).unwrap(), bytes);
    fs::rename(&env.db, env.path("results.db.damaged")).unwrap();
    fs::rename(&wal, env.path("results.db.damaged-wal")).unwrap();
    env.run(&["restore", "latest"]).ok();
}

/// T32 G3: an older backup copied over the newest's name inside a mirror:
/// `check` promised "the next backup, auto or periodic copies it", and every
/// backup then failed blaming "another database sharing the mirror". The
/// file is named as this database's other backup, and the way out (move it
/// away) is said; after that the next backup fills the mirror in.
#[test]
fn a_copy_under_the_newest_name_in_a_mirror_is_named_as_this_databases_and_the_way_out_said() {
    let env = Env::new();
    let mirror = env.path("mirror");
    env.configure_with_mirror(&mirror);
    env.run_configured(&["backup"]).ok();
    add_extra_row(&env.db);
    env.run_configured(&["backup"]).ok();
    let files = env.backup_files();
    let (older, newer) = (&files[0], &files[1]);
    fs::copy(mirror.join(older), mirror.join(newer)).unwrap();
    let check = env.run_configured(&["check"]);
    let line = check
        .stdout
        .lines()
        .find(|l| l.contains(":newest:"))
        .unwrap_or_else(|| panic!("{}", check.stdout))
        .to_string();
    assert!(
        line.starts_with("FAIL") && line.contains("move that file away, and the next backup"),
        "{line}"
    );
    let backup = env.run_configured(&["backup"]);
    backup.failed_with(
        1,
        &format!(
            "{newer} is already there and is not a copy of this backup (it holds backup {older})"
        ),
    );
    assert!(
        backup
            .stderr
            .contains("a copy of another backup of this database under this name")
            && !backup.stderr.contains("another database sharing"),
        "{}",
        backup.stderr
    );
    fs::rename(mirror.join(newer), env.path("moved-away.db.gz")).unwrap();
    env.run_configured(&["backup"]).ok();
    env.run_configured(&["check"]).ok();
}

/// T34 N10: the only file of the newest backup renamed (a tidy-up script):
/// called "a copy under another name … delete it", with no word of the name
/// to give it back. Its header names it: rename it back, and it is that
/// restore point again.
#[test]
fn a_renamed_backup_whose_own_name_is_free_is_told_to_be_renamed_back_never_deleted() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    add_extra_row(&env.db);
    env.run(&["backup"]).ok();
    let newest_digest = content_digest(&env.db);
    let own = env.backup_files().pop().unwrap();
    let renamed = "backup_20200101_000000.db.gz";
    fs::rename(env.backups.join(&own), env.backups.join(renamed)).unwrap();
    let how = format!("`mv {renamed} {own}` in the backup directory");
    let verify = env.run(&["verify", renamed]);
    verify.reported(1, &how);
    assert!(!verify.stdout.contains("delete it"), "{}", verify.stdout);
    env.run(&["list"]).reported(0, &how);
    // Never deleted by retention: the only file of that backup (T35 R2).
    env.run(&["--max-backups", "1", "prune"]).ok();
    assert!(
        env.backups.join(renamed).exists(),
        "{:?}",
        env.backup_files()
    );
    fs::rename(env.backups.join(renamed), env.backups.join(&own)).unwrap();
    env.run(&["verify", &own]).ok();
    fs::remove_file(&env.db).unwrap();
    env.run(&["restore", "latest"])
        .reported(0, &format!("restored {own}"));
    assert_eq!(content_digest(&env.db), newest_digest);
}

/// T34 N14: the newest backup deleted by hand (or a purge of that file):
/// `restore latest` gave the older one without a word and an empty
/// `passed_over`, though `check` names the lost backup. Said, and listed.
#[test]
fn restore_latest_names_the_last_backup_made_when_it_is_gone() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    add_extra_row(&env.db);
    env.run(&["backup"]).ok();
    let files = env.backup_files();
    let (older, newest) = (&files[0], &files[1]);
    fs::remove_file(env.backups.join(newest)).unwrap();
    let restore = env.run(&["restore", "latest", "--force", "--format", "json"]);
    restore.ok();
    assert!(
        restore
            .stderr
            .contains(&format!("passing over {newest}: the last backup made")),
        "{}",
        restore.stderr
    );
    let json = restore.json();
    assert_eq!(json["name"], older.as_str(), "{json}");
    assert!(
        json["passed_over"].to_string().contains(newest.as_str()),
        "{json}"
    );
}

/// T35 R1: an older backup copied over the newest (`cp A N`, A still
/// there): the copy carries A's time and sorts below the middle point, so
/// `restore latest` restored that one without a word. N, the last backup
/// made, is named as passed over.
#[test]
fn restore_latest_names_the_last_backup_made_when_its_file_holds_another() {
    let env = Env::new();
    for _ in 0..3 {
        env.run(&["backup"]).ok();
        add_extra_row(&env.db);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let files = env.backup_files();
    let (oldest, newest) = (&files[0], &files[2]);
    fs::copy(env.backups.join(oldest), env.backups.join(newest)).unwrap();
    // `verify` (the newest) and `verify latest` fail on it too (T35 R6).
    for args in [&["verify"][..], &["verify", "latest"]] {
        env.run(args)
            .reported(1, &format!("{newest}: FAILED: the last backup made"));
    }
    let restore = env.run(&["restore", "latest", "--force", "--format", "json"]);
    restore.ok();
    assert!(
        restore
            .stderr
            .contains(&format!("passing over {newest}: the last backup made")),
        "{}",
        restore.stderr
    );
    let json = restore.json();
    assert_eq!(json["name"], files[1].as_str(), "{json}");
    assert_eq!(json["passed_over"].as_array().unwrap().len(), 1, "{json}");
}

/// T36 N9, N10: the newest backup's file overwritten by another database's
/// backup (two backup directories merged), or by a plain gzip of an older
/// state (the seed's script writing the same name): `restore latest` gave
/// the older point without a word, `verify` said ok, and (for the plain
/// gzip) `check` said the attempt succeeded with that file. The last backup
/// made is named as passed over; `verify` and `check` fail on it.
#[test]
fn the_last_backup_made_overwritten_by_another_databases_or_a_plain_gzip_is_named() {
    for by in ["another database", "plain gzip"] {
        let env = Env::new();
        let old_state = fs::read(&env.db).unwrap();
        env.run(&["backup"]).ok();
        add_extra_row(&env.db);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        env.run(&["backup"]).ok();
        let files = env.backup_files();
        let (older, newest) = (&files[0], &files[1]);
        let replacement = match by {
            "another database" => {
                let other = Env::new();
                other.run(&["backup"]).ok();
                fs::read(other.newest_backup()).unwrap()
            }
            _ => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut gz, &old_state).unwrap();
                gz.finish().unwrap()
            }
        };
        fs::write(env.backups.join(newest), replacement).unwrap();
        env.run(&["verify"])
            .reported(1, &format!("{newest}: FAILED: the last backup made"));
        let check = env.run(&["check"]);
        assert_eq!(check.code, 1, "{by}: {}", check.stdout);
        assert!(
            check
                .stdout
                .contains(&format!("but that is no success now: its backup {newest}")),
            "{by}: {}",
            check.stdout
        );
        let restore = env.run(&["restore", "latest", "--force", "--format", "json"]);
        restore.ok();
        assert!(
            restore
                .stderr
                .contains(&format!("passing over {newest}: the last backup made")),
            "{by}: {}",
            restore.stderr
        );
        let json = restore.json();
        assert_eq!(json["name"], older.as_str(), "{by}: {json}");
        assert!(
            json["passed_over"].to_string().contains(newest.as_str()),
            "{by}: {json}"
        );
    }
}
