//! Issue 9 (README "Whose backup is it: restore points"): `restore latest` puts
//! back this database's own newest good backup. Each case the issue reported
//! replayed on real databases, checked by content (the restored rows are the
//! intended backup's), not only exit codes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;

use crate::backup::corrupt_index;
use crate::common::*;

/// A small database whose rows say whose it is.
fn db_with(path: &Path, rows: &[&str]) -> PathBuf {
    let _ = fs::remove_file(path);
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE t (x TEXT)").unwrap();
    for row in rows {
        conn.execute("INSERT INTO t VALUES (?1)", [row]).unwrap();
    }
    path.to_path_buf()
}

/// `dbbackup ARGS` with the local time zone `zone` (seed names are local time).
fn run_in_zone(env: &Env, zone: &str, args: &[&str]) -> Run {
    env.command()
        .env("TZ", zone)
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// `run_in_zone`, configured by the project's `dbbackup.yaml` (`Env::configured`).
fn run_configured_in_zone(env: &Env, zone: &str, args: &[&str]) -> Run {
    env.configured()
        .env("TZ", zone)
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// The rows of a `db_with` database, in order (also used by `restore_safety`).
pub(crate) fn rows(path: &Path) -> Vec<String> {
    Connection::open(path)
        .unwrap()
        .prepare("SELECT x FROM t ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub(crate) fn add_row(path: &Path, row: &str) {
    Connection::open(path)
        .unwrap()
        .execute("INSERT INTO t VALUES (?1)", [row])
        .unwrap();
}

/// `list --format json` rows as seen by `db`.
fn list_for(env: &Env, db: &Path) -> Vec<serde_json::Value> {
    let run = env.run(&[
        "--db-path",
        db.to_str().unwrap(),
        "list",
        "--format",
        "json",
    ]);
    run.ok();
    run.json().as_array().unwrap().clone()
}

fn names_where(rows: &[serde_json::Value], key: &str, value: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| r[key] == value)
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn scratch_restores_never_become_latest_or_displace_real_backups() {
    let env = Env::empty();
    db_with(&env.db, &["main"]);
    env.run(&["backup"]).ok();
    let real = env.backup_files();
    let scratch = db_with(&env.path("scratch.db"), &["scratch"]);
    // The seed's "restore for testing" recipe, three times, with a tight retention.
    for _ in 0..3 {
        env.run(&[
            "--max-backups",
            "2",
            "restore",
            "latest",
            "--target",
            s(&scratch),
        ])
        .ok();
        assert_eq!(rows(&scratch), ["main"]);
        add_row(&scratch, "scratch work");
    }
    add_row(&env.db, "after the backup");
    env.run(&["--max-backups", "2", "restore", "latest"]).ok();
    assert_eq!(rows(&env.db), ["main"], "main.db's own backup came back");
    for name in &real {
        assert!(env.backups.join(name).exists(), "{name} survived retention");
    }
    let listed = list_for(&env, &env.db);
    assert_eq!(
        names_where(&listed, "role", "restore-point"),
        real,
        "the scratch copies are not main.db's restore points"
    );
    assert_eq!(
        names_where(&listed, "role", "pre-restore").len(),
        1,
        "only the restore over main.db saved a copy of main.db"
    );
    // Undo: the pre-restore copy is restorable by name.
    let undo = names_where(&listed, "role", "pre-restore");
    env.run(&["restore", &undo[0]]).ok();
    assert_eq!(rows(&env.db), ["main", "after the backup"]);
    // The second and third scratch states are the same bytes: one copy holds both.
    let scratch_copies = names_where(&listed, "role", "other-database");
    assert_eq!(scratch_copies.len(), 2, "{listed:?}");
    for row in listed.iter().filter(|r| r["role"] == "other-database") {
        assert_eq!(row["kind"], "pre-restore");
        assert!(row["source"].as_str().unwrap().ends_with("/scratch.db"));
    }
}

#[test]
fn two_databases_sharing_the_default_backup_directory_never_restore_or_prune_each_others_backups() {
    let env = Env::empty();
    let a = db_with(&env.path("a.db"), &["a"]);
    let b = db_with(&env.path("b.db"), &["b"]);
    // Both on the default directory, as a new user would run them.
    let run = |args: &[&str]| -> Run {
        env.command()
            .env_remove("DBBACKUP_BACKUP_DIR")
            .env_remove("DBBACKUP_DB_PATH")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    run(&["--db-path", "a.db", "backup"]).ok();
    run(&["--db-path", "b.db", "backup"]).ok();
    add_row(&a, "a later");
    run(&["--db-path", "a.db", "restore", "latest"]).ok();
    assert_eq!(rows(&a), ["a"]);
    // a's retention never deletes b's only backup.
    run(&["--db-path", "a.db", "--max-backups", "1", "prune"]).ok();
    let dir = env.path("outputs/db_backups");
    let listed: Vec<serde_json::Value> = run(&["--db-path", "b.db", "list", "--format", "json"])
        .json()
        .as_array()
        .unwrap()
        .clone();
    let b_points = names_where(&listed, "role", "restore-point");
    assert_eq!(b_points.len(), 1, "b.db keeps its backup: {listed:?}");
    // b's backup by name over a: refused, naming both; --target or --force allowed.
    let refused = run(&["--db-path", "a.db", "restore", &b_points[0]]);
    refused.failed_with(1, "is a backup of");
    assert!(
        refused
            .stderr
            .contains(&fs::canonicalize(&b).unwrap().display().to_string())
    );
    assert!(refused.stderr.contains("a.db"));
    assert_eq!(rows(&a), ["a"], "a.db untouched");
    run(&[
        "--db-path",
        "a.db",
        "restore",
        &b_points[0],
        "--target",
        "copy.db",
    ])
    .ok();
    assert_eq!(rows(&env.path("copy.db")), ["b"]);
    run(&["--db-path", "a.db", "restore", &b_points[0], "--force"]).ok();
    assert_eq!(rows(&a), ["b"]);
    assert!(dir.join(&b_points[0]).exists());
}

#[test]
fn restore_latest_twice_keeps_the_repair() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let good = content_digest(&env.db);
    corrupt_index(&env.db);
    env.run(&["restore", "latest"]).ok();
    assert_eq!(content_digest(&env.db), good);
    assert_ledger_invariant(&env.db);
    let second = env.run(&["restore", "latest"]);
    second.ok();
    // What the second restore replaced is the backup's own content: not copied again.
    let backup = env.backup_files()[0].clone();
    assert!(
        second.stdout.contains(&format!(
            "(its previous content is already in {backup}: no pre-restore copy needed)"
        )),
        "{}",
        second.stdout
    );
    assert_eq!(
        content_digest(&env.db),
        good,
        "not the damaged pre-restore copy"
    );
    assert_ledger_invariant(&env.db);
    // The damaged state is still there for undo, by name.
    let listed = list_for(&env, &env.db);
    let copies = names_where(&listed, "role", "pre-restore");
    assert_eq!(copies.len(), 1, "{listed:?}");
    let damaged = copies.last().unwrap();
    let undo = env.path("undo.db");
    env.run(&["restore", damaged, "--target", s(&undo)])
        .failed_with(1, "integrity_check");
    assert!(!undo.exists());
}

#[test]
fn seed_backups_are_listed_verified_restored_counted_and_aged_out() {
    // Configured as `init` leaves it (the seed's files are the database's).
    let env = Env::empty();
    make_ledger_db(&env.db, 400, false);
    let first = content_digest(&env.db);
    seed_backup(&env.db, &env.backups, "backup_20250909_093708.db.gz");
    add_row_ledger(&env.db);
    let second = content_digest(&env.db);
    seed_backup(&env.db, &env.backups, "backup_20250909_110245.db.gz");
    add_row_ledger(&env.db);
    let truncated = seed_backup(&env.db, &env.backups, "backup_20250909_143022.db.gz");
    let bytes = fs::read(&truncated).unwrap();
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    // list: kind legacy, created from the name in local time.
    let list = run_configured_in_zone(&env, "Europe/Berlin", &["list", "--format", "json"]);
    let rows = list.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(row["kind"], "legacy", "{row}");
    }
    for row in &rows[1..] {
        assert_eq!(row["role"], "restore-point", "{row}");
        assert!(row.get("error").is_none(), "legacy is not an error: {row}");
    }
    // The truncated one: its gzip trailer disagrees with its SQLite header.
    assert_eq!(rows[0]["role"], "damaged", "{}", rows[0]);
    assert!(
        rows[0]["error"].as_str().unwrap().contains("truncated"),
        "{}",
        rows[0]
    );
    assert_eq!(rows[2]["created"], "2025-09-09T07:37:08Z", "09:37:08 CEST");
    let text = run_configured_in_zone(&env, "Europe/Berlin", &["list"]).stdout;
    assert!(text.contains("CREATED (Europe/Berlin)"), "{text}");
    assert!(text.contains("2025-09-09 09:37:08"), "{text}");

    // verify: says what it could check, and catches the truncated one.
    let verify = env.run_configured(&["verify", "backup_20250909_093708.db.gz"]);
    verify.ok();
    assert!(
        verify.stdout.contains("all that could be checked"),
        "{}",
        verify.stdout
    );
    let all = env.run_configured(&["verify", "--all"]);
    assert_eq!(all.code, 1, "{}", all.stdout);
    assert!(
        all.stdout.contains("backup_20250909_143022.db.gz: FAILED"),
        "{}",
        all.stdout
    );

    // restore NAME --target: the seed's documented command.
    let test_db = env.path("test_db.db");
    env.run_configured(&[
        "restore",
        "backup_20250909_093708.db.gz",
        "--target",
        s(&test_db),
    ])
    .ok();
    assert_eq!(content_digest(&test_db), first);
    let damaged = env.path("damaged.db");
    env.run_configured(&[
        "restore",
        "backup_20250909_143022.db.gz",
        "--target",
        s(&damaged),
    ])
    .failed_with(1, "truncated");
    assert!(!damaged.exists());

    // latest: the newest plausible one (the truncated newest is never a candidate).
    let latest = env.run_configured(&["restore", "latest"]);
    latest.ok();
    assert!(
        latest
            .stdout
            .contains("restored backup_20250909_110245.db.gz"),
        "{}",
        latest.stdout
    );
    assert_eq!(content_digest(&env.db), second);

    counted_then_aged_out(&env);
}

/// The rest of `seed_backups_are_...`: `check` counts the seed's whole files,
/// retention ages them out.
fn counted_then_aged_out(env: &Env) {
    // check counts the two whole ones (stale, so age fails, but count holds).
    let check = env.run_configured(&["check", "--format", "json"]).json();
    let count = check["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "count")
        .unwrap()
        .clone();
    assert_eq!(count["ok"], true, "{check}");
    assert!(
        count["detail"]
            .as_str()
            .unwrap()
            .starts_with("2 good backups")
    );

    // Retention ages them out as new backups arrive; the undo copy stays.
    env.run_configured(&["--max-backups", "2", "backup"]).ok();
    add_row_ledger(&env.db);
    env.run_configured(&["--max-backups", "2", "backup"]).ok();
    let left = env
        .run_configured(&["list", "--format", "json"])
        .json()
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        names_where(&left, "kind", "legacy"),
        ["backup_20250909_143022.db.gz"],
        "the whole ones aged out; the damaged one is left for a person: {left:?}"
    );
    assert_eq!(names_where(&left, "role", "restore-point").len(), 2);
    assert_eq!(names_where(&left, "role", "pre-restore").len(), 1);
}

#[test]
fn a_backup_with_damaged_metadata_is_never_deleted_by_retention() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let damaged = env.newest_backup();
    let mut bytes = fs::read(&damaged).unwrap();
    bytes[16] = b'!';
    fs::write(&damaged, bytes).unwrap();
    for _ in 0..3 {
        add_row_ledger(&env.db);
        env.run(&["--max-backups", "1", "backup"]).ok();
    }
    assert!(
        damaged.exists(),
        "damaged is not legacy: kept for a person to judge"
    );
    let listed = list_for(&env, &env.db);
    assert_eq!(names_where(&listed, "role", "damaged").len(), 1);
    assert_eq!(names_where(&listed, "role", "restore-point").len(), 1);
}

#[test]
fn backups_kept_beside_the_database_restore_and_leave_no_temp_file() {
    let env = Env::empty();
    db_with(&env.db, &["kept"]);
    let run = |args: &[&str]| -> Run {
        env.command()
            .env("DBBACKUP_BACKUP_DIR", ".")
            .env("DBBACKUP_DB_PATH", "results.db")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    run(&["backup"]).ok();
    add_row(&env.db, "later");
    run(&["restore", "latest"]).ok();
    assert_eq!(rows(&env.db), ["kept"]);
    let files: Vec<String> = fs::read_dir(env.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files.iter().any(|f| f.starts_with(".dbbackup-tmp")),
        "{files:?}"
    );
    assert_eq!(
        files.iter().filter(|f| f.starts_with("backup_")).count(),
        2,
        "one backup and one pre-restore copy: {files:?}"
    );
}

#[test]
fn a_corrupt_database_leaves_bounded_evidence_and_check_fails() {
    let env = Env::empty();
    make_ledger_db(&env.db, 3000, false);
    env.run(&["backup"]).ok();
    corrupt_index(&env.db);
    for _ in 0..6 {
        let run = env.run(&["backup", "--force"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.stdout.lines().count(), 1, "one line: {}", run.stdout);
        assert!(
            run.stdout.contains("quick_check: ") && run.stdout.contains(" problems, first: "),
            "{}",
            run.stdout
        );
        for line in run.stderr.lines() {
            assert!(line.len() < 600, "log line of {} bytes: {line}", line.len());
        }
    }
    let tasks = run_array_tasks(&env, "91", 8, |_| vec!["backup".into(), "--force".into()]);
    assert!(tasks.iter().all(|t| t.code == 1));
    let files = env.backup_files();
    let failed = files
        .iter()
        .filter(|f| f.ends_with(".failed.db.gz"))
        .count();
    assert_eq!(failed, 2, "newest two failed snapshots only: {files:?}");
    assert_eq!(files.len(), 3, "and the good backup: {files:?}");
    // The whole check output is there for whoever asks.
    let listed = list_for(&env, &env.db);
    let detail = listed[0]["check_detail"].as_str().unwrap();
    assert!(detail.lines().count() > 3, "{detail}");

    env.run(&["check"]).reported(1, "FAIL last");
    let text = env.run(&["check"]);
    assert!(
        text.stdout.contains("FAIL last: newest snapshot"),
        "{}",
        text.stdout
    );
    let nagios = env.run(&["check", "--format", "nagios"]);
    assert_eq!(nagios.code, 2, "{}", nagios.stdout);
    assert!(nagios.stdout.starts_with("DBBACKUP CRITICAL - "));
    assert_eq!(nagios.stdout.lines().count(), 1);
    let log = env.path("periodic.log");
    let periodic = env
        .command()
        .env("DBBACKUP_SUMMARY_LOG", &log)
        .args(["periodic", "--min-interval-hours", "0"])
        .output()
        .unwrap();
    assert_eq!(periodic.status.code(), Some(1));
    let lines = summary_lines(&log);
    assert_eq!(lines.last().unwrap()["healthy"], "false");
    assert!(lines.last().unwrap()["problems"].contains("last:"));
    assert!(fs::read_to_string(&log).unwrap().len() < 1500);
    // The good backup is still the one `latest` restores.
    env.run(&["restore", "latest"]).ok();
    assert_ledger_invariant(&env.db);
}

#[test]
fn restore_over_a_file_that_is_not_a_database_is_refused_unless_forced_and_keeps_its_bytes() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let notes = env.path("notes.txt");
    fs::write(&notes, "my notes\n").unwrap();
    env.run(&["restore", "latest", "--target", s(&notes)])
        .failed_with(1, "is not an SQLite database");
    assert_eq!(fs::read_to_string(&notes).unwrap(), "my notes\n");
    assert_eq!(env.backup_files().len(), 1, "nothing saved or written");
    // With --force it is replaced, and its bytes are kept.
    let forced = env.run(&["restore", "latest", "--target", s(&notes), "--force"]);
    forced.ok();
    assert_eq!(content_digest(&notes), content_digest(&env.db));
    let listed = list_for(&env, &env.db);
    let saved = listed
        .iter()
        .find(|r| r["kind"] == "pre-restore")
        .expect("pre-restore copy");
    assert_eq!(
        gunzip(&env.backups.join(saved["name"].as_str().unwrap())),
        b"my notes\n"
    );
}

/// A small tmpfs at `path`, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path) -> Option<Mount> {
        fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(path.to_path_buf()))
    }

    fn read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_backup_directory_can_be_read_and_restored_from() {
    let env = Env::new();
    let archive = env.path("archive");
    let Some(mount) = Mount::tmpfs(&archive) else {
        eprintln!("read-only backup directory test SKIPPED: cannot mount a tmpfs (not root?)");
        return;
    };
    let run = |args: &[&str]| -> Run {
        env.command()
            .env("DBBACKUP_BACKUP_DIR", &archive)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    run(&["backup"]).ok();
    let digest = content_digest(&env.db);
    add_row_ledger(&env.db);
    mount.read_only();
    assert!(
        fs::write(archive.join("probe"), "x").is_err(),
        "really read-only"
    );
    let list = run(&["list", "--format", "json"]);
    list.ok();
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    run(&["verify", "--all"]).ok();
    let new = env.path("new.db");
    run(&["restore", "latest", "--target", s(&new)]).ok();
    assert_eq!(content_digest(&new), digest);
    // Over the existing database a pre-restore copy is needed: refused, untouched.
    let before = content_digest(&env.db);
    let refused = run(&["restore", "latest"]);
    refused.failed_with(1, "nothing was changed");
    assert_eq!(
        refused
            .stderr
            .lines()
            .filter(|l| l.contains("ERROR"))
            .count(),
        1
    );
    assert_eq!(content_digest(&env.db), before);
}

#[test]
fn three_databases_share_a_directory_through_backups_restores_and_retention() {
    let env = Env::empty();
    let names = ["a", "b", "c"];
    let dbs: Vec<PathBuf> = names
        .iter()
        .map(|n| db_with(&env.path(&format!("{n}.db")), &[n]))
        .collect();
    let mirror = env.path("mirror");
    let with = |db: &Path, args: &[&str]| -> Run {
        let mut all = vec!["--db-path", s(db), "--max-backups", "2"];
        all.push("--mirror-dir");
        all.push(s(&mirror));
        all.extend_from_slice(args);
        env.run(&all)
    };
    // Interleaved: every round each database changes and is backed up, and a
    // scratch restore of another's backup happens in between.
    for round in 0..4 {
        for (i, db) in dbs.iter().enumerate() {
            add_row(db, &format!("{} round {round}", names[i]));
            with(db, &["backup"]).ok();
            // The database backed up just before this one.
            if round > 0 || i > 0 {
                let other = &dbs[(i + 2) % 3];
                with(other, &["restore", "latest", "--target", "scratch.db"]).ok();
            }
        }
    }
    for (i, db) in dbs.iter().enumerate() {
        let expected = rows(db);
        assert_eq!(expected.last().unwrap(), &format!("{} round 3", names[i]));
        add_row(db, "unsaved");
        with(db, &["restore", "latest"]).ok();
        assert_eq!(rows(db), expected, "{} got its own newest backup", names[i]);
        let listed = list_for(&env, db);
        assert_eq!(names_where(&listed, "role", "restore-point").len(), 2);
        assert_eq!(names_where(&listed, "role", "pre-restore").len(), 1);
        // Each database's retention left the others' two restore points alone,
        // in the backup directory and in the shared mirror.
        let own_points = |rows: &[serde_json::Value]| {
            rows.iter()
                .filter(|r| r["kind"] == "manual" && r["role"] == "restore-point")
                .count()
        };
        assert_eq!(own_points(&listed), 2);
        let mirrored: Run = env
            .command()
            .env("DBBACKUP_BACKUP_DIR", &mirror)
            .args(["--db-path", s(db), "list", "--format", "json"])
            .output()
            .unwrap()
            .into();
        assert_eq!(own_points(mirrored.json().as_array().unwrap()), 2);
    }
    let all = env.run(&["list", "--format", "json"]).json();
    let manual = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "manual")
        .count();
    assert_eq!(manual, 6, "two per database");
    let scratch_copies = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["source"].as_str().unwrap().ends_with("/scratch.db"))
        .count();
    assert_eq!(
        scratch_copies, 3,
        "11 scratch restores, newest 3 undo copies kept"
    );
}

#[test]
fn auto_and_post_job_judge_only_this_databases_backups() {
    let env = Env::empty();
    let a = db_with(&env.path("a.db"), &["a"]);
    let b = db_with(&env.path("b.db"), &["b"]);
    env.run(&["--db-path", s(&a), "auto"]).ok();
    let run = env.run(&["--db-path", s(&b), "auto"]);
    run.ok();
    assert!(
        run.stdout.starts_with("created"),
        "a's fresh backup is not b's: {}",
        run.stdout
    );
    // post-job of a non-last array task backs up when *its* database's newest
    // restore point is older than the interval, whatever the others have.
    let c = db_with(&env.path("c.db"), &["c"]);
    let task = env
        .command()
        .env("SLURM_ARRAY_JOB_ID", "5")
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "4")
        .env("DBBACKUP_SUMMARY_LOG", env.path("s.log"))
        .args(["--db-path", s(&c), "post-job"])
        .output()
        .unwrap();
    let task: Run = task.into();
    task.ok();
    assert!(task.stdout.starts_with("created"), "{}", task.stdout);
}

#[test]
fn a_moved_project_claims_its_backups_with_adopt() {
    let env = Env::empty();
    let old_dir = env.path("old");
    fs::create_dir(&old_dir).unwrap();
    let old = db_with(&old_dir.join("results.db"), &["before the move"]);
    env.run(&["--db-path", s(&old), "backup"]).ok();
    let new_dir = env.path("new");
    fs::rename(&old_dir, &new_dir).unwrap();
    let new = new_dir.join("results.db");
    let refused = env.run(&["--db-path", s(&new), "restore", "latest"]);
    refused.failed_with(1, "no restore point");
    // T25 #11: one backup "is" here.
    let check = env.run(&["--db-path", s(&new), "check"]);
    assert!(
        check.stdout.contains(", which no longer exists, is here: "),
        "{}",
        check.stdout
    );
    assert!(
        refused.stderr.contains("dbbackup adopt"),
        "{}",
        refused.stderr
    );
    let list = env.run(&["--db-path", s(&new), "list"]);
    list.ok();
    assert!(list.stdout.contains("other: "), "{}", list.stdout);
    assert!(
        list.stdout.contains("which no longer exists"),
        "{}",
        list.stdout
    );
    let recorded = list_for(&env, &new)[0]["source"]
        .as_str()
        .unwrap()
        .to_string();

    // A database still at the old path keeps its backups.
    let other = env.path("other.db");
    db_with(&other, &["other"]);
    env.run(&["--db-path", s(&other), "backup"]).ok();
    env.run(&["--db-path", s(&new), "adopt", s(&other)])
        .failed_with(1, "still exists");

    let dry = env.run(&["--db-path", s(&new), "adopt", &recorded, "--dry-run"]);
    dry.ok();
    assert!(dry.stdout.contains("1 backup of"), "{}", dry.stdout);
    assert_eq!(
        names_where(&list_for(&env, &new), "role", "restore-point").len(),
        0
    );
    let before = fs::read(env.backups.join(&env.backup_files()[0])).unwrap();
    env.run(&["--db-path", s(&new), "adopt", &recorded]).ok();
    let listed = list_for(&env, &new);
    let points = names_where(&listed, "role", "restore-point");
    assert_eq!(points.len(), 1);
    let after = fs::read(env.backups.join(&points[0])).unwrap();
    assert_eq!(&before[8192..], &after[8192..], "data members unchanged");
    env.run(&["verify", &points[0]]).ok();
    add_row(&new, "after the move");
    env.run(&["--db-path", s(&new), "restore", "latest"]).ok();
    assert_eq!(rows(&new), ["before the move"]);
    // other.db's backup was not adopted.
    assert_eq!(
        names_where(&list_for(&env, &other), "role", "restore-point").len(),
        1
    );
}

#[test]
fn in_use_messages_say_who_and_how() {
    let env = Env::empty();
    make_ledger_db(&env.db, 50, false);
    env.run(&["backup"]).ok();
    let before = content_digest(&env.db);
    for (mode, expected) in [
        ("read", "which is reading it"),
        ("write", "which is writing to it"),
    ] {
        // Another process's SQLite connection, as the restore sees it (this test
        // process is not the restore's).
        let holder = rusqlite::Connection::open(&env.db).unwrap();
        if mode == "read" {
            holder
                .execute_batch("BEGIN; SELECT count(*) FROM ledger;")
                .unwrap();
        } else {
            holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        }
        let run = env.run(&["restore", "latest"]);
        drop(holder);
        let pid = std::process::id();
        // The holder is this test, the process that ran dbbackup (T27 F-K).
        run.failed_with(
            1,
            &format!("is in use by pid {pid}, the process that ran this dbbackup, {expected}"),
        );
        if mode == "read" {
            assert!(!run.stderr.contains("writer"), "{}", run.stderr);
        }
        assert_eq!(content_digest(&env.db), before);
    }
}

/// In WAL mode every connection keeps a read lock on the database file, a
/// writer too: the writer is told by WAL's write lock (it was "reading it"),
/// a reader by its read mark, and a connection doing neither "has it open".
#[test]
fn in_use_messages_in_wal_mode_tell_a_writer_from_a_reader() {
    let env = Env::empty();
    make_ledger_db(&env.db, 50, true);
    env.run(&["backup"]).ok();
    let before = content_digest(&env.db);
    for (begin, expected) in [
        ("BEGIN IMMEDIATE", "which is writing to it"),
        ("BEGIN; SELECT count(*) FROM ledger;", "which is reading it"),
        ("SELECT count(*) FROM ledger", "which has it open"),
    ] {
        let holder = rusqlite::Connection::open(&env.db).unwrap();
        holder.execute_batch(begin).unwrap();
        let run = env.run(&["restore", "latest"]);
        drop(holder);
        let pid = std::process::id();
        // The holder is this test, the process that ran dbbackup (T27 F-K).
        run.failed_with(
            1,
            &format!("is in use by pid {pid}, the process that ran this dbbackup, {expected}"),
        );
        assert_eq!(content_digest(&env.db), before);
    }
}

/// T15 #6: a process that opened the database through a bind mount of its
/// directory (one project space under two paths) was not seen by its path:
/// the restore replaced the database under it, exit 0.
#[test]
fn a_process_with_the_database_open_through_a_bind_mount_is_seen() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let before = content_digest(&env.db);
    let other_path = env.path("same-project");
    let Some(_mounted) = crate::common::bind_mount(env.db.parent().unwrap(), &other_path) else {
        return;
    };
    let holder = rusqlite::Connection::open(other_path.join(env.db.file_name().unwrap())).unwrap();
    holder.execute_batch("SELECT count(*) FROM ledger").unwrap();
    let run = env.run(&["restore", "latest"]);
    drop(holder);
    let pid = std::process::id();
    run.failed_with(
        1,
        &format!("is in use by pid {pid}, the process that ran this dbbackup, which has it open; close its own connections to the database before restoring"),
    );
    assert_eq!(content_digest(&env.db), before);
}

#[test]
fn a_restore_stopped_by_a_signal_says_the_target_is_untouched() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    add_row_ledger(&env.db);
    let before = content_digest(&env.db);
    // Hold the backup-directory lock so the restore is waiting when the signal comes.
    fs::create_dir_all(&env.backups).unwrap();
    let holder = hold_dir_lock(&env.lock_file(), "test holder");
    let mut restore = env
        .command()
        .args(["restore", "latest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal once it says it waits for the lock (an observable state, not a sleep).
    let mut stderr = std::io::BufReader::new(restore.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        seen.push_str(&line);
        if n == 0 || line.contains("waiting for the backup-directory lock") {
            break;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(restore.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let mut run: Run = restore.wait_with_output().unwrap().into();
    run.stderr = seen;
    drop(holder);
    run.stopped_by(15, "restore stopped by signal 15");
    assert!(
        run.stderr.contains("results.db left untouched"),
        "{}",
        run.stderr
    );
    assert_eq!(content_digest(&env.db), before);
}

#[test]
fn list_reads_well_for_tiny_databases_failed_names_and_time_zones() {
    let env = Env::empty();
    db_with(&env.db, &["tiny"]);
    env.run(&["backup"]).ok();
    env.run(&["backup", "--force"]).ok();
    // A failed snapshot's longer name must not shift the columns.
    let good = env.newest_backup();
    let failed = env.backups.join(
        good.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".db.gz", ".failed.db.gz"),
    );
    copy_backup(&good, &failed);
    let text = run_in_zone(&env, "Europe/Berlin", &["list"]).stdout;
    let lines: Vec<&str> = text.lines().collect();
    // Rows from winter and summer alike: the zone's name, not one abbreviation.
    assert!(lines[0].contains("CREATED (Europe/Berlin)"), "{text}");
    // Columns by character (the "—" is one character, three bytes).
    let chars = |line: &str| line.chars().collect::<Vec<char>>();
    let header = chars(lines[0]);
    let column = |name: &str| {
        let name = chars(name);
        header
            .windows(name.len())
            .position(|w| w == name.as_slice())
            .unwrap()
    };
    let (created_at, database_at) = (column("CREATED"), column("DATABASE"));
    assert_eq!(lines.len(), 4, "{text}");
    for line in &lines[1..] {
        let line = chars(line);
        assert!(
            line[created_at - 1] == ' ' && line[created_at].is_ascii_digit(),
            "CREATED column aligned:\n{text}"
        );
        let database: String = line[database_at..].iter().collect();
        assert_eq!(database, "this", "{text}");
        assert!(
            line.contains(&'—'),
            "tiny database: no negative percentage\n{text}"
        );
    }
    assert!(!text.contains('%'), "{text}");
}

#[test]
fn nagios_perfdata_uses_range_syntax_and_counts_read_well() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let one = env.run(&["check"]);
    one.ok();
    assert!(
        one.stdout.contains("count: 1 good backup (min 1)"),
        "{}",
        one.stdout
    );
    add_row_ledger(&env.db);
    env.run(&["backup"]).ok();
    let nagios = env.run(&["check", "--format", "nagios"]);
    nagios.ok();
    let perf = nagios.stdout.split(" | ").nth(1).unwrap();
    let db_size = perf
        .split_whitespace()
        .find(|p| p.starts_with("'db_size'="))
        .unwrap();
    let warn = db_size.split(';').nth(1).unwrap();
    assert!(
        warn.ends_with(':') && warn[..warn.len() - 1].parse::<u64>().is_ok(),
        "a lower bound is `N:`: {db_size}"
    );
}

#[test]
fn pre_job_makes_a_restore_point_for_each_database_sharing_a_directory() {
    let env = Env::empty();
    let a = db_with(&env.path("a.db"), &["a"]);
    let b = db_with(&env.path("b.db"), &["b"]);
    let pre_job = |db: &Path| -> Run {
        env.command()
            .env("SLURM_JOB_ID", "777")
            .env("DBBACKUP_SUMMARY_LOG", env.path("s.log"))
            .args(["--db-path", s(db), "pre-job"])
            .output()
            .unwrap()
            .into()
    };
    assert!(pre_job(&a).ok().stdout.contains("created"));
    assert!(
        pre_job(&b).ok().stdout.contains("created"),
        "b needs its own"
    );
    assert!(pre_job(&a).ok().stdout.contains("exists"));
    for (db, row) in [(&a, "a"), (&b, "b")] {
        let listed = list_for(&env, db);
        let points = names_where(&listed, "role", "restore-point");
        assert_eq!(points.len(), 1);
        let out = env.path(&format!("{row}-check.db"));
        env.run(&[
            "--db-path",
            s(db),
            "restore",
            &points[0],
            "--target",
            s(&out),
        ])
        .ok();
        assert_eq!(rows(&out), [row]);
    }
}

#[test]
fn without_a_configured_database_latest_needs_a_single_one() {
    let env = Env::empty();
    let a = db_with(&env.path("a.db"), &["a"]);
    env.run(&["--db-path", s(&a), "backup"]).ok();
    let no_db = |args: &[&str]| -> Run {
        env.command()
            .env_remove("DBBACKUP_DB_PATH")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    no_db(&["restore", "latest", "--target", "x.db"]).ok();
    assert_eq!(rows(&env.path("x.db")), ["a"]);
    let b = db_with(&env.path("b.db"), &["b"]);
    env.run(&["--db-path", s(&b), "backup"]).ok();
    no_db(&["restore", "latest", "--target", "y.db"]).failed_with(2, "say which with --db-path");
    assert!(!env.path("y.db").exists());
    no_db(&["prune"]).failed_with(2, "no database given");
    // verify's default is the configured database's newest restore point.
    let verify = env.run(&["--db-path", s(&a), "verify", "--format", "json"]);
    verify.ok();
    let a_point = names_where(&list_for(&env, &a), "role", "restore-point");
    assert_eq!(verify.json()[0]["name"], a_point[0].as_str());
}

#[test]
fn without_a_configured_database_check_and_summary_judge_the_single_one() {
    let env = Env::empty();
    let no_db = |args: &[&str]| -> Run {
        env.command()
            .env_remove("DBBACKUP_DB_PATH")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let a = db_with(&env.path("a.db"), &["a"]);
    env.run(&["--db-path", s(&a), "backup"]).ok();
    // One database: judged, and the `database` and `attempt` criteria are there,
    // naming the database assumed.
    let check = no_db(&["check", "--format", "json"]);
    check.ok();
    let names: Vec<String> = check.json()["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "database"), "{names:?}");
    assert!(names.iter().any(|n| n == "attempt"), "{names:?}");
    assert!(
        check.stdout.contains("no --db-path given"),
        "{}",
        check.stdout
    );
    no_db(&["check", "--format", "nagios"]).reported(
        0,
        &format!(
            "no --db-path given: judged {}",
            a.canonicalize().unwrap().display()
        ),
    );
    // Its database gone: not healthy.
    fs::rename(&a, env.path("moved.db")).unwrap();
    no_db(&["check"]).reported(1, "FAIL database:");
    fs::rename(env.path("moved.db"), &a).unwrap();
    // Two databases: refused like `verify`, nagios UNKNOWN.
    let b = db_with(&env.path("b.db"), &["b"]);
    env.run(&["--db-path", s(&b), "backup"]).ok();
    no_db(&["check"]).failed_with(2, "say which with --db-path");
    let nagios = no_db(&["check", "--format", "nagios"]);
    assert_eq!(nagios.code, 3, "{} {}", nagios.stdout, nagios.stderr);
    assert!(
        nagios.stdout.starts_with("DBBACKUP UNKNOWN"),
        "{}",
        nagios.stdout
    );
    no_db(&["summary"]).failed_with(2, "say which with --db-path");
    env.run(&["--db-path", s(&b), "check"]).ok();
}

#[test]
fn legacy_local_time_names_are_ordered_by_their_real_time() {
    // In Tokyo (UTC+9) a seed backup made an hour ago has a name that sorts after
    // a backup made now (UTC name): order must follow the real time.
    let env = Env::empty();
    let old = db_with(&env.path("old.db"), &["an hour ago"]);
    let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let tokyo = seed_backup_name(an_hour_ago, &jiff::tz::TimeZone::get("Asia/Tokyo").unwrap());
    db_with(&env.db, &["now"]);
    let tokyo_run = |args: &[&str]| run_in_zone(&env, "Asia/Tokyo", args);
    tokyo_run(&["backup"]).ok();
    // Copied in from the old tool's directory afterwards.
    seed_backup(&old, &env.backups, &tokyo);
    assert!(
        env.backup_files().last().unwrap() == &tokyo,
        "the legacy name sorts last"
    );
    let listed = tokyo_run(&["list", "--format", "json"]).json();
    assert_ne!(
        listed[0]["name"],
        tokyo.as_str(),
        "newest first by real time"
    );
    let auto = tokyo_run(&["auto", "--min-interval-hours", "0.5"]);
    auto.ok();
    assert!(auto.stdout.contains("less than the"), "{}", auto.stdout);
    // New names stay UTC: the legacy name "ahead" is not a clock that stepped back.
    db_with(&env.db, &["later"]);
    tokyo_run(&["backup"]).ok();
    let newest = env.backup_files()[1].clone();
    assert!(newest < tokyo, "{newest} vs {tokyo}");
    let out = env.path("x.db");
    tokyo_run(&["restore", "latest", "--target", s(&out)]).ok();
    assert_eq!(rows(&out), ["later"], "not the hour-old seed backup");
}

#[test]
fn latest_passes_over_a_damaged_newest_backup_and_says_so() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let older = content_digest(&env.db);
    add_row_ledger(&env.db);
    env.run(&["backup"]).ok();
    let newest = env.newest_backup();
    let bytes = fs::read(&newest).unwrap();
    fs::write(&newest, &bytes[..bytes.len() - 100]).unwrap();
    add_row_ledger(&env.db);
    let run = env.run(&["restore", "latest", "--format", "json"]);
    run.ok();
    let report = run.json();
    assert_eq!(
        report["passed_over"][0]["name"],
        newest.file_name().unwrap().to_str().unwrap()
    );
    assert!(
        report["passed_over"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("damaged")
    );
    assert_eq!(content_digest(&env.db), older);
}

#[test]
fn adopt_also_claims_the_copies_in_mirrors() {
    let env = Env::empty();
    let mirror = env.path("mirror");
    let old_dir = env.path("old");
    fs::create_dir(&old_dir).unwrap();
    let old = db_with(&old_dir.join("results.db"), &["moved"]);
    let recorded = fs::canonicalize(&old).unwrap();
    env.run(&["--db-path", s(&old), "--mirror-dir", s(&mirror), "backup"])
        .ok();
    fs::rename(&old_dir, env.path("new")).unwrap();
    let new = env.path("new/results.db");
    let adopted = env.run(&[
        "--db-path",
        s(&new),
        "--mirror-dir",
        s(&mirror),
        "adopt",
        s(&recorded),
    ]);
    adopted.ok();
    assert!(
        adopted.stdout.contains("2 backups of"),
        "{}",
        adopted.stdout
    );
    let in_mirror: Run = env
        .command()
        .env("DBBACKUP_BACKUP_DIR", &mirror)
        .args(["--db-path", s(&new), "list", "--format", "json"])
        .output()
        .unwrap()
        .into();
    let rows = in_mirror.json();
    assert_eq!(rows[0]["role"], "restore-point", "{rows}");
    assert_eq!(
        rows[0]["source"],
        fs::canonicalize(&new).unwrap().to_str().unwrap()
    );
}

/// A seed-style (local time) backup name `offset` from now.
fn legacy_name_at(offset: jiff::SignedDuration) -> String {
    seed_backup_name(
        jiff::Timestamp::now() + offset,
        &jiff::tz::TimeZone::system(),
    )
}

/// `dbbackup --db-path DB ARGS...` in the test's directory.
fn as_db(env: &Env, db: &Path, args: &[&str]) -> Run {
    env.command()
        .arg("--db-path")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// Issue 23: a backup directory holding only the seed's backups of other.db,
/// given to mine.db by `--backup-dir`: nothing says they are mine.db's, so its
/// retention keeps every one byte for byte and `restore latest` refuses,
/// leaving mine.db as it was. Only the config file giving the directory to the
/// database makes them its restore points.
#[test]
fn seed_backups_of_another_database_in_a_backup_dir_flag_are_never_this_databases() {
    let env = Env::empty();
    let other = db_with(&env.path("other.db"), &["other"]);
    let mine = db_with(&env.path("mine.db"), &["mine"]);
    let thatdir = env.path("thatdir");
    let mut seeds = Vec::new();
    for hours in [3, 2, 1] {
        add_row(&other, "other more");
        let name = legacy_name_at(jiff::SignedDuration::from_hours(-hours));
        seed_backup(&other, &thatdir, &name);
        seeds.push((name.clone(), fs::read(thatdir.join(&name)).unwrap()));
    }
    let run = |args: &[&str]| -> Run {
        env.command()
            .env_remove("DBBACKUP_DB_PATH")
            .env_remove("DBBACKUP_BACKUP_DIR")
            .args(["--db-path", s(&mine), "--backup-dir", s(&thatdir)])
            .args(args)
            .output()
            .unwrap()
            .into()
    };

    let listed = run(&["list", "--format", "json"]);
    listed.ok();
    for row in listed.json().as_array().unwrap() {
        assert_eq!(row["role"], "unknown-owner", "{row}");
    }
    let text = run(&["list"]);
    text.ok();
    assert!(
        text.stdout
            .contains("note: 3 legacy backups (plain gzip, no recorded database) are not counted as this database's")
            && text.stdout.contains("--backup-dir"),
        "{}",
        text.stdout
    );

    // Retention of mine.db, twice over its limit: every seed file stays.
    for _ in 0..3 {
        add_row(&mine, "mine more");
        run(&["--max-backups", "1", "backup"]).ok();
    }
    for (name, bytes) in &seeds {
        assert_eq!(
            fs::read(thatdir.join(name)).ok().as_ref(),
            Some(bytes),
            "{name} was deleted or changed by mine.db's retention"
        );
    }

    // Only mine.db's own backup is `latest`; with it gone, latest refuses.
    for name in backup_files_in(&thatdir) {
        if !seeds.iter().any(|(seed, _)| *seed == name) {
            fs::remove_file(thatdir.join(name)).unwrap();
        }
    }
    let mine_before = fs::read(&mine).unwrap();
    run(&["restore", "latest"]).failed_with(1, "no restore point");
    assert_eq!(fs::read(&mine).unwrap(), mine_before, "mine.db unchanged");
    assert_eq!(rows(&mine)[0], "mine");

    // The config file giving this directory to other.db: they are its own.
    fs::write(
        env.path("dbbackup.yaml"),
        format!("db_path: {}\nbackup_dir: {}\n", s(&other), s(&thatdir)),
    )
    .unwrap();
    let configured = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    let configured: Run = configured.into();
    configured.ok();
    for row in configured.json().as_array().unwrap() {
        assert_eq!(row["role"], "restore-point", "{row}");
    }
}

#[test]
fn legacy_backups_beside_another_databases_are_not_restored_counted_or_pruned_as_its_own() {
    let env = Env::empty();
    let a = db_with(&env.path("a.db"), &["a"]);
    let b = db_with(&env.path("b.db"), &["b"]);
    as_db(&env, &a, &["backup"]).ok();
    as_db(&env, &b, &["backup"]).ok();
    // `gzip -6 -c a.db > bk/backup_<now>.db.gz`, the newest file of all (an hour
    // ahead, so its name cannot clash with the ones just made).
    let seed = legacy_name_at(jiff::SignedDuration::from_hours(1));
    seed_backup(&a, &env.backups, &seed);
    add_row(&b, "b later");

    let latest = as_db(&env, &b, &["restore", "latest"]);
    latest.ok();
    assert_eq!(rows(&b), ["b"], "b.db's own backup, not a.db's seed copy");
    assert!(!latest.stdout.contains(&seed), "{}", latest.stdout);

    // Listed as owner unknown, with what to do about it.
    let listed = list_for(&env, &b);
    let row = listed.iter().find(|r| r["name"] == seed.as_str()).unwrap();
    assert_eq!(row["role"], "unknown-owner", "{row}");
    assert_eq!(row["kind"], "legacy", "{row}");
    let text = as_db(&env, &b, &["list"]);
    text.ok();
    let line = text.stdout.lines().find(|l| l.starts_with(&seed)).unwrap();
    assert!(line.ends_with("unknown (legacy, see note)"), "{line}");
    assert!(
        text.stdout.contains("note: 1 legacy backup") && text.stdout.contains("--target"),
        "{}",
        text.stdout
    );

    // check counts b.db's own backup only.
    as_db(&env, &b, &["check", "--min-count", "2"]).reported(1, "count: 1 good backup (min 2)");

    // By name: over b.db only with --force; into another file freely.
    as_db(&env, &b, &["restore", &seed]).failed_with(1, "records no database");
    assert_eq!(rows(&b), ["b"], "b.db untouched");
    let copy = env.path("copy.db");
    as_db(&env, &b, &["restore", &seed, "--target", s(&copy)]).ok();
    assert_eq!(rows(&copy), ["a"]);

    // Neither database's retention deletes it.
    for db in [&b, &a] {
        for _ in 0..2 {
            add_row(db, "more");
            as_db(&env, db, &["--max-backups", "1", "backup"]).ok();
        }
        assert!(
            env.backups.join(&seed).exists(),
            "{} pruned it",
            db.display()
        );
    }
    as_db(&env, &b, &["restore", &seed, "--force"]).ok();
    assert_eq!(rows(&b), ["a"], "--force restores it on purpose");
}

#[test]
fn a_moved_project_with_seed_backups_is_unhealthy_until_adopt_then_restores_its_newest() {
    let env = Env::empty();
    let old_proj = env.path("old/proj");
    fs::create_dir_all(&old_proj).unwrap();
    let db = db_with(&old_proj.join("results.db"), &["seed"]);
    seed_backup(
        &db,
        &old_proj.join("outputs/db_backups"),
        "backup_20250909_093708.db.gz",
    );
    add_row(&db, "later");
    // The default backup directory, a relative database path, set up with
    // `init` (which gives the seed's directory to the database): as a user runs it.
    let run_in = |dir: &Path, args: &[&str]| -> Run {
        env.command()
            .current_dir(dir)
            .env_remove("DBBACKUP_DB_PATH")
            .env_remove("DBBACKUP_BACKUP_DIR")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    run_in(&old_proj, &["--db-path", "results.db", "init"]).ok();
    run_in(&old_proj, &["backup"]).ok();
    // A seed backup counts as good once read whole (T8 #2).
    run_in(&old_proj, &["verify", "--all"]).ok();
    run_in(&old_proj, &["check", "--min-count", "2"]).ok();

    let proj2 = env.path("proj2");
    fs::rename(&old_proj, &proj2).unwrap();
    let moved = proj2.join("results.db");
    add_row(&moved, "unsaved");
    run_in(&proj2, &["check"]).reported(1, "no good backup");
    run_in(&proj2, &["restore", "latest"]).failed_with(1, "dbbackup adopt");
    assert_eq!(rows(&moved), ["seed", "later", "unsaved"], "untouched");

    // The old path, relative and gone, resolved by name against the current directory.
    let adopt = run_in(&proj2, &["adopt", "../old/proj/results.db"]);
    adopt.ok();
    assert!(
        adopt.stdout.contains("1 backup of ") && adopt.stdout.contains(" is now a backup of "),
        "{}",
        adopt.stdout
    );
    // No other database's backups left: the seed's file is this database's again.
    run_in(&proj2, &["check", "--min-count", "2"]).ok();
    run_in(&proj2, &["restore", "latest"]).ok();
    assert_eq!(
        rows(&moved),
        ["seed", "later"],
        "the newest, not the seed's"
    );
}

#[test]
fn truncated_or_future_dated_legacy_files_count_for_nothing() {
    let env = Env::empty();
    make_ledger_db(&env.db, 2000, false);
    // What an interrupted seed run leaves: `gzip -6 -c r.db | head -c N`.
    let cut_name = legacy_name_at(jiff::SignedDuration::ZERO);
    let cut = seed_backup(&env.db, &env.backups, &cut_name);
    let bytes = fs::read(&cut).unwrap();
    fs::write(&cut, &bytes[..(bytes.len() / 2).min(100_000)]).unwrap();
    let future = env.backups.join("backup_20991231_000000.db.gz");
    let mut hello = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut hello, b"hello").unwrap();
    fs::write(&future, hello.finish().unwrap()).unwrap();

    env.run(&["check"]).reported(1, "age: no good backup");
    let listed = list_for(&env, &env.db);
    for (name, why) in [
        (cut_name.as_str(), "truncated"),
        ("backup_20991231_000000.db.gz", "in the future"),
    ] {
        let row = listed.iter().find(|r| r["name"] == name).unwrap();
        assert_eq!(row["role"], "damaged", "{row}");
        assert!(row["error"].as_str().unwrap().contains(why), "{row}");
    }
    let text = env.run(&["list"]);
    assert!(text.stdout.contains("? (truncated"), "{}", text.stdout);
    env.run(&["restore", "latest"])
        .failed_with(1, "no restore point");

    // auto is not blocked by them, and retention leaves them for a person.
    let auto = env.run(&["auto"]);
    auto.ok();
    assert!(auto.stdout.starts_with("created "), "{}", auto.stdout);
    for _ in 0..2 {
        add_row_ledger(&env.db);
        env.run(&["--max-backups", "1", "backup"]).ok();
    }
    assert!(cut.exists() && future.exists());
    env.run(&["check"]).ok();
    let verify = env.run(&["verify", &cut_name]);
    verify.reported(1, "FAILED");
}

#[test]
fn adopt_resolves_a_relative_old_path_and_fails_when_nothing_is_recorded_under_it() {
    let env = Env::empty();
    fs::create_dir_all(env.path("old/proj")).unwrap();
    let old = db_with(&env.path("old/proj/results.db"), &["moved"]);
    as_db(&env, &old, &["backup"]).ok();
    fs::create_dir(env.path("new")).unwrap();
    fs::rename(env.path("old/proj"), env.path("new/proj")).unwrap();
    let here = env.path("new/proj");
    let run_here = |args: &[&str]| -> Run {
        env.command()
            .current_dir(&here)
            .args(["--db-path", "results.db"])
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let recorded = fs::canonicalize(env.path("old"))
        .unwrap()
        .join("proj/results.db");
    let nothing = run_here(&["adopt", "../../old/proj/other.db"]);
    nothing.failed_with(1, "no backups are recorded under");
    assert!(
        nothing
            .stderr
            .contains(&recorded.with_file_name("other.db").display().to_string()),
        "names the resolved path: {}",
        nothing.stderr
    );
    assert_eq!(
        nothing.stderr.trim().lines().count(),
        1,
        "{}",
        nothing.stderr
    );
    let dry = run_here(&["adopt", "../../old/proj/results.db", "--dry-run"]);
    dry.ok();
    assert!(
        dry.stdout.contains(&format!(
            "1 backup of {} would become a backup of ",
            recorded.display()
        )),
        "{}",
        dry.stdout
    );
    run_here(&["adopt", "../../old/proj/results.db"]).ok();
    add_row(&here.join("results.db"), "later");
    run_here(&["restore", "latest"]).ok();
    assert_eq!(rows(&here.join("results.db")), ["moved"]);
}

#[test]
fn check_fails_while_the_configured_database_is_missing() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
    let away = env.path("away.db");
    fs::rename(&env.db, &away).unwrap();
    let check = env.run(&["check"]);
    check.reported(1, "FAIL database: ");
    assert!(
        check
            .stdout
            .contains(&format!("{} does not exist", env.db.display())),
        "{}",
        check.stdout
    );
    let nagios = env.run(&["check", "--format", "nagios"]);
    nagios.reported(2, "DBBACKUP CRITICAL - database: ");
    fs::rename(&away, &env.db).unwrap();
    env.run(&["check"]).ok();
}

#[test]
fn verify_fails_a_backup_whose_metadata_is_damaged() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let damaged = env.newest_backup();
    let mut bytes = fs::read(&damaged).unwrap();
    bytes[16] = b'!';
    fs::write(&damaged, bytes).unwrap();
    let name = damaged.file_name().unwrap().to_str().unwrap();
    let verify = env.run(&["verify", name]);
    verify.reported(1, &format!("{name}: FAILED: its metadata is damaged"));
    assert!(
        verify.stdout.contains("cannot be trusted"),
        "{}",
        verify.stdout
    );
    env.run(&["verify", "--all"]).reported(1, "FAILED");
}

#[test]
fn verify_all_lists_newest_first_by_creation_time_like_list() {
    // In Tokyo a seed backup from an hour ago has a name that sorts after ours.
    let env = Env::empty();
    let old = db_with(&env.path("old.db"), &["an hour ago"]);
    db_with(&env.db, &["now"]);
    let tokyo = seed_backup_name(
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        &jiff::tz::TimeZone::get("Asia/Tokyo").unwrap(),
    );
    let in_tokyo = |args: &[&str]| run_in_zone(&env, "Asia/Tokyo", args);
    in_tokyo(&["backup"]).ok();
    seed_backup(&old, &env.backups, &tokyo);
    let verify = in_tokyo(&["verify", "--all", "--format", "json"]);
    verify.ok();
    let list = in_tokyo(&["list", "--format", "json"]).json();
    let order = |rows: &serde_json::Value| -> Vec<String> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(order(&verify.json()), order(&list));
    assert_eq!(order(&list)[1], tokyo);
}

/// T12 #12: two databases backed up side by side in one directory, one of
/// them lost (a purge): not a move. `list` offers no `adopt`, and `adopt`
/// refuses (exit 1, naming the interleaved backups) unless --force.
#[test]
fn adopt_refuses_a_lost_database_that_was_backed_up_side_by_side_with_this_one() {
    let env = Env::empty();
    let a = db_with(&env.path("A.db"), &["A"]);
    let b = db_with(&env.path("B.db"), &["B"]);
    for _ in 0..2 {
        as_db(&env, &a, &["backup", "--force"]).ok();
        as_db(&env, &b, &["backup", "--force"]).ok();
    }
    let before = env.backup_files();
    fs::remove_file(&b).unwrap();
    let list = as_db(&env, &a, &["list"]);
    list.ok();
    assert!(
        !list.stdout.contains("adopt") && !list.stderr.contains("adopt"),
        "{}\n{}",
        list.stdout,
        list.stderr
    );
    let refused = as_db(&env, &a, &["adopt", b.to_str().unwrap()]);
    refused.failed_with(
        1,
        "was another database, backed up side by side with this one",
    );
    assert!(refused.stderr.contains(&before[0]), "{}", refused.stderr);
    assert_eq!(
        refused.stderr.trim().lines().count(),
        1,
        "{}",
        refused.stderr
    );
    // Nothing changed hands: B's newest backup still restores B.
    let target = env.path("b_back.db");
    as_db(
        &env,
        &b,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .ok();
    let row: String = Connection::open(&target)
        .unwrap()
        .query_row("SELECT x FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(row, "B");
    as_db(&env, &a, &["adopt", b.to_str().unwrap(), "--force"]).ok();
}

/// T13 #15: restoring another database's backup over this one is refused
/// without `--force`; the refusal was skipped when `--target` named this
/// database under another spelling (`b/../a/results.db`, a linked directory),
/// and `a` silently held `b`'s data.
#[test]
fn another_databases_backup_over_this_one_is_refused_under_any_spelling() {
    let env = Env::empty();
    for name in ["a", "b"] {
        fs::create_dir(env.path(name)).unwrap();
        let db = db_with(&env.path(name).join("results.db"), &[name]);
        env.run(&["--db-path", s(&db), "backup"]).ok();
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let a = env.path("a").join("results.db");
    let b_backup = env.backup_files().last().unwrap().clone();
    std::os::unix::fs::symlink(env.path("a"), env.path("a-link")).unwrap();
    let spellings = [
        a.clone(),
        env.path("b").join("..").join("a").join("results.db"),
        env.path("a-link").join("results.db"),
    ];
    // A bind mount of a's directory (one filesystem under two paths).
    let bound = env.path("a-bound");
    let mounted = bind_mount(&env.path("a"), &bound);
    let spellings: Vec<PathBuf> = spellings
        .into_iter()
        .chain(mounted.as_ref().map(|_| bound.join("results.db")))
        .collect();
    for target in &spellings {
        env.run(&[
            "--db-path",
            s(&a),
            "restore",
            &b_backup,
            "--target",
            s(target),
        ])
        .failed_with(1, "is a backup of ");
        assert_eq!(rows(&a), ["a"], "{}", target.display());
    }
}

/// Issue 22 / T18 #5: a scratch purge empties the backup directory, the next
/// backups number from 1 again, and the backups from before the purge (kept
/// aside, copied back in) carried higher numbers: `latest` restored the older
/// data and `list` showed it first. Each backup now records when its
/// numbering began, and a numbering begun later ranks above.
#[test]
fn backups_copied_back_after_a_purge_rank_below_the_new_ones() {
    // Made by this version, and by one that recorded no numbering (T26b #1).
    for older_version in [false, true] {
        copied_back_after_a_purge(older_version);
    }
}

fn copied_back_after_a_purge(older_version: bool) {
    let env = Env::empty();
    let db = db_with(&env.db, &["before"]);
    for row in ["a", "b", "c"] {
        add_row(&db, row);
        env.run(&["backup", "-q"]).ok();
    }
    let aside = env.path("aside");
    fs::create_dir(&aside).unwrap();
    let before: Vec<String> = env.backup_files();
    for name in &before {
        fs::copy(env.backups.join(name), aside.join(name)).unwrap();
        if older_version {
            rewrite_meta(&aside.join(name), |meta| meta.numbering_since = None);
        }
    }
    // The purge, then a new backup of newer data (number 1 of a new numbering).
    fs::remove_dir_all(&env.backups).unwrap();
    // Names are by the second: the new one's must not be an old one's.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    add_row(&db, "after the purge");
    env.run(&["backup", "-q"]).ok();
    let new = env.backup_files();
    assert_eq!(new.len(), 1);
    for name in &before {
        fs::copy(aside.join(name), env.backups.join(name)).unwrap();
    }
    let listed = env.run(&["list", "--format", "json"]).json();
    assert_eq!(listed[0]["name"], new[0].as_str(), "{listed:#}");
    let copy = env.path("copy.db");
    env.run(&["restore", "latest", "--target", s(&copy)]).ok();
    assert_eq!(rows(&copy), rows(&db));
    // The next backup continues the new numbering, above both.
    add_row(&db, "later");
    env.run(&["backup", "-q"]).ok();
    let listed = env.run(&["list", "--format", "json"]).json();
    fs::remove_file(&copy).unwrap();
    env.run(&["restore", "latest", "--target", s(&copy)]).ok();
    assert_eq!(rows(&copy), rows(&db), "{listed:#}");
    // Retention keeps the newest: the pre-purge ones go first.
    env.run(&["prune", "--max-backups", "2"]).ok();
    let kept = env.backup_files();
    assert!(kept.contains(&new[0]), "{kept:?}");
    assert!(before.iter().all(|b| !kept.contains(b)), "{kept:?}");
}
