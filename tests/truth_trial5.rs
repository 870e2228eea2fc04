//! Trial 5's false "ok"s: `restore latest --if-db-missing` with the backup
//! directory lost and a mirror holding restore points (#2); a `damaged` mark
//! set by `integrity_check` cleared by a restore's `quick_check` (#4);
//! `periodic --metrics-file` left saying healthy when a flag or variable is
//! bad (#3); a failure that cannot be recorded (#1); the suggested
//! `--backup-dir MIRROR` command with that mirror configured (#5); `export
//! --out DIR` (#10).

use std::fs;

use crate::common::*;

/// `results.db` backed up once with `mirror_dirs: [m1]` in `dbbackup.yaml`;
/// returns the mirror's copy's name.
fn backed_up_with_mirror(env: &Env) -> String {
    fs::write(env.path("dbbackup.yaml"), "mirror_dirs: [m1]\n").unwrap();
    env.run(&["backup"]).ok();
    let names = backup_files_in(&env.path("m1"));
    assert_eq!(names.len(), 1, "{names:?}");
    names[0].clone()
}

/// stderr's lines past their log prefix (`... ERROR job=... host=...: `).
fn messages(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .map(|line| line.split_once(": ").map_or(line, |(_, m)| m).to_string())
        .collect()
}

#[test]
fn if_db_missing_with_the_backup_dir_lost_and_a_mirror_holding_points_fails() {
    let env = Env::new();
    let name = backed_up_with_mirror(&env);
    // A scratch purge: the database and the backup directory gone.
    fs::remove_dir_all(&env.backups).unwrap();
    fs::remove_file(&env.db).unwrap();
    let hint = format!(
        "mirror m1 holds 1 restore point of it (newest {name}): restore from it with `dbbackup --backup-dir m1 restore latest`"
    );
    let plain = env.run(&["restore", "latest"]);
    plain.failed_with(1, &hint);
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.failed_with(1, &hint);
    assert_eq!(run.stdout, "", "never 'no backup yet'");
    assert_eq!(
        messages(&run),
        messages(&plain),
        "the same error as without it"
    );
    assert!(!env.db.exists());
}

/// A database whose index disagrees with its table (row 100 indexed as 101):
/// `integrity_check` finds it, `quick_check` does not.
pub(crate) fn make_index_corrupt_db(path: &std::path::Path) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(a INTEGER); CREATE INDEX i ON t(a);
             WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 120)
             INSERT INTO t SELECT x FROM n;",
        )
        .unwrap();
    corrupt_index(path);
}

/// Row 100's index entry made to say 101: `quick_check` passes, `integrity_check` not.
fn corrupt_index(path: &std::path::Path) {
    let mut bytes = fs::read(path).unwrap();
    // The index's page (the third): the record (a = 100, rowid 100).
    let page = &bytes[2 * 4096..3 * 4096];
    let at = 2 * 4096
        + page
            .windows(5)
            .position(|w| w == [3, 1, 1, 100, 100])
            .expect("index entry of row 100");
    bytes[at + 3] = 101;
    fs::write(path, bytes).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    let quick: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    let full: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (quick.as_str(), full.as_str()),
        ("ok", "row 100 missing from index i")
    );
}

#[test]
fn a_damaged_mark_set_by_integrity_check_survives_restores() {
    let env = Env::empty();
    make_index_corrupt_db(&env.db);
    env.run(&["backup"]).ok();
    let name = env.backup_files()[0].clone();
    let finding = "integrity_check: row 100 missing from index i";
    env.run(&["verify"]).reported(1, finding).reported(
        1,
        // The backup is a faithful copy: the database itself is what to look at.
        &format!(
            "(size and checksum match: the database was already like this when backed up; \
             check it with `sqlite3 {} 'PRAGMA integrity_check'`)",
            env.db.display()
        ),
    );
    assert_eq!(env.run(&["check"]).code, 1);
    // The only restore point, marked damaged: `latest` passes over it unread.
    let look = env.path("look.db");
    env.run(&["restore", "latest", "--target", "look.db"])
        .failed_with(
            1,
            &format!(
                "backup {name} is damaged: the database in it fails its check: {finding} (only `restore {name} --target FILE --force` gives it back, to be repaired)"
            ),
        );
    assert!(!look.exists());
    // By name, to look at it: read with integrity_check, refused, still marked.
    env.run(&["restore", &name, "--target", "byname.db"])
        .failed_with(
            1,
            &format!("backup {name} fails integrity_check (row 100 missing from index i), as the database did when it was backed up (its content is exactly what was backed up): `dbbackup restore {name} --target FILE --force` gives it back to be repaired"),
        );
    assert!(!env.path("byname.db").exists());
    env.run(&["export", &name, "--out", "e.db.gz"]).failed_with(
        1,
        &format!("nothing was written: `dbbackup restore {name} --target FILE --force` gives it back to be repaired"),
    );
    // T26 #1: its rows may be nowhere else; with --force it is given back,
    // byte for byte, with a warning.
    let forced = env.run(&["restore", &name, "--target", "forced.db", "--force"]);
    forced.ok();
    assert!(
        forced.stderr.contains(&format!(
            "WARN job=local host={}: backup {name} fails integrity_check (row 100 missing from index i), as the database did when it was backed up: restored because of --force",
            nix::unistd::gethostname().unwrap().to_string_lossy()
        )),
        "{}",
        forced.stderr
    );
    assert_eq!(
        fs::read(env.path("forced.db")).unwrap(),
        gunzip(&env.backups.join(&name))
    );
    // `latest` never takes it, even with --force.
    env.run(&["restore", "latest", "--target", "look.db", "--force"])
        .failed_with(1, "is damaged");
    let list = env.run(&["list"]);
    list.ok();
    let line = list.stdout.lines().find(|l| l.starts_with(&name)).unwrap();
    assert!(line.contains("damaged"), "{}", list.stdout);
    let check = env.run(&["check"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    // A good backup made after it: `latest` restores that one, and restoring
    // the marked one by name still does not clear its mark.
    fs::remove_file(&env.db).unwrap();
    make_ledger_db(&env.db, 50, false);
    env.run(&["backup"]).ok();
    env.run(&["restore", &name, "--target", "byname.db"])
        .failed_with(1, "fails integrity_check (row 100 missing from index i)");
    env.run(&["restore", "latest", "--target", "look.db"]).ok();
    assert_eq!(content_digest(&look), content_digest(&env.db));
    env.run(&["verify", &name]).reported(1, finding);
}

/// The `dbbackup_healthy` and `dbbackup_unjudged` lines of a metrics file.
fn health_lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("dbbackup_healthy") || l.starts_with("dbbackup_unjudged"))
        .map(str::to_string)
        .collect()
}

#[test]
fn periodic_with_a_bad_flag_or_variable_leaves_the_metrics_file_unjudged() {
    let env = Env::new();
    let prom = env.path("m.prom");
    let healthy = |env: &Env| {
        env.run(&["periodic", "--metrics-file", "m.prom"]).ok();
        let lines = health_lines(&prom);
        assert!(
            lines[0].starts_with("dbbackup_healthy{") && lines[0].ends_with(" 1"),
            "{lines:?}"
        );
    };
    let unjudged = vec![
        "dbbackup_healthy 0".to_string(),
        "dbbackup_unjudged 1".to_string(),
    ];
    for (var, value, needle) in [
        ("DBBACKUP_CHECK_MAX_AGE", "24", "DBBACKUP_CHECK_MAX_AGE"),
        ("DBBACKUP_MAX_BACKUPS", "3x", "DBBACKUP_MAX_BACKUPS"),
        ("DBBACKUP_SHARED", "Group", "DBBACKUP_SHARED"),
        ("DBBACKUP_CHECK_MIN_COUNT", "x", "DBBACKUP_CHECK_MIN_COUNT"),
    ] {
        healthy(&env);
        let run: Run = env
            .command()
            .env(var, value)
            .args(["periodic", "--metrics-file", "m.prom"])
            .output()
            .unwrap()
            .into();
        run.failed_with(2, needle);
        assert_eq!(health_lines(&prom), unjudged, "{var}={value}");
    }
    for args in [
        &["--max-backups", "0", "periodic", "--metrics-file", "m.prom"][..],
        &["periodic", "--metrics-file=m.prom", "--no-such-flag"],
    ] {
        healthy(&env);
        let run = env.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(health_lines(&prom), unjudged, "{args:?}");
    }
    // Another command's bad line, or a value that only looks like the flag,
    // leaves the file alone.
    healthy(&env);
    let before = fs::read(&prom).unwrap();
    assert_eq!(env.run(&["check", "--max-age", "24"]).code, 2);
    assert_eq!(
        env.run(&["--db-path", "periodic", "list", "--metrics-file", "m.prom"])
            .code,
        2
    );
    assert_eq!(fs::read(&prom).unwrap(), before);
}

/// A failure that neither the backup directory nor the database's directory
/// can take (another member's 755 directories): said on stderr, not lost in
/// silence while `check` reports the older success.
#[test]
fn a_failure_that_cannot_be_recorded_is_said() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let Some(run) = crate::full_disk::as_nobody(&env, &["backup"]) else {
        return;
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    let error = lines.iter().find(|l| l.contains(" ERROR ")).unwrap();
    assert!(error.contains("is not writable"), "{}", run.stderr);
    let warning = lines.iter().find(|l| l.contains(" WARN ")).unwrap();
    let (_, warning) = warning.split_once(": ").unwrap();
    let state = env.backups.join(".dbbackup-state");
    assert_eq!(
        warning,
        format!(
            "this failure could not be recorded ({}: Permission denied (os error 13); {}: Permission denied (os error 13)): `check` will not see it",
            state.display(),
            env.root.path().display()
        ),
    );
}

/// The command a lost backup directory's error suggests works with that mirror
/// in `mirror_dirs`, and keeps the `--target` given.
#[test]
fn the_suggested_mirror_command_works_and_keeps_the_target() {
    let env = Env::new();
    backed_up_with_mirror(&env);
    let digest = content_digest(&env.db);
    fs::remove_dir_all(&env.backups).unwrap();
    env.run(&[
        "--backup-dir",
        "m1",
        "restore",
        "latest",
        "--target",
        "q.db",
    ])
    .ok();
    assert_eq!(content_digest(&env.path("q.db")), digest);
    env.run(&["restore", "latest", "--target", "r.db"])
        .failed_with(
            1,
            "restore from it with `dbbackup --backup-dir m1 restore latest --target r.db`",
        );
    assert!(!env.path("r.db").exists());
    fs::remove_file(&env.db).unwrap();
    env.run(&["restore", "latest"]).failed_with(
        1,
        "restore from it with `dbbackup --backup-dir m1 restore latest`\n",
    );
    env.run(&["--backup-dir", "m1", "restore", "latest"]).ok();
    assert_eq!(content_digest(&env.db), digest);
    // A mirror given with it on the command line is still a mistake.
    env.run(&["--backup-dir", "m1", "--mirror-dir", "m1", "list"])
        .failed_with(2, "is the backup directory");
}

/// `export --out DIR`: the hint names a file in it (`restore --target DIR`,
/// the plain-name hint, is refused too).
#[test]
fn export_into_a_directory_suggests_a_file_in_it() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    fs::create_dir(env.path("d")).unwrap();
    let run = env.run(&["export", "latest", "--out", "d"]);
    run.failed_with(
        2,
        "d is a directory: give a file name ending in .gz, e.g. --out d/results.db.gz",
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // What it suggests works.
    env.run(&["export", "latest", "--out", "d/results.db.gz"])
        .ok();
    assert!(env.path("d/results.db.gz").is_file());
}

/// README's corrupted-database recipe: a file SQLite cannot read is refused
/// without `--force`, and with it restored, its content saved first.
#[test]
fn restoring_a_database_sqlite_cannot_read_takes_force_as_readme_says() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let digest = content_digest(&env.db);
    let mut bytes = fs::read(&env.db).unwrap();
    bytes[..100].fill(0x5a);
    fs::write(&env.db, &bytes).unwrap();
    env.run(&["restore", "latest"]).failed_with(
        1,
        "is not an SQLite database; refusing to replace it without --force",
    );
    // The recipe says so (its paragraph, line breaks as spaces).
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let recipe = readme
        .split("\n\n")
        .find(|p| p.starts_with("**Restoring a corrupted database.**"))
        .unwrap()
        .replace('\n', " ");
    assert!(
        recipe.contains("`dbbackup restore latest --force`"),
        "{recipe}"
    );
    env.run(&["restore", "latest", "--force"]).ok();
    assert_eq!(content_digest(&env.db), digest);
    assert!(
        env.backup_files()
            .iter()
            .any(|n| n.ends_with(".failed.db.gz"))
    );
}

/// The newest backup's header damaged: `restore latest` restored the older
/// point without a word (T9 #2); it names the file it passed over.
#[test]
fn restore_latest_names_a_newer_file_whose_header_is_damaged() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let older = content_digest(&env.db);
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE later(x); INSERT INTO later VALUES (1);")
        .unwrap();
    env.run(&["backup"]).ok();
    let newest = env.backup_files().last().unwrap().clone();
    let path = env.backups.join(&newest);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let target = env.path("look.db");
    let run = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    run.ok();
    assert!(
        run.stdout.contains(&format!("passed over {newest}: "))
            && run
                .stdout
                .contains("it may well have been this database's newest backup"),
        "{}",
        run.stdout
    );
    assert_eq!(content_digest(&target), older);
}

/// T26b #1: once `verify` found that a backup's database fails
/// `integrity_check`, the next backup of the very same database passed its
/// `quick_check` and `check` was healthy again. It fails `restorable` while
/// the newest point holds that same database; a repaired one is healthy.
#[test]
fn a_new_backup_of_a_database_known_to_fail_its_check_is_no_healthy_newest() {
    // Found by `verify`, or by a restore by name (which remembers it too).
    for found_by in ["verify", "restore"] {
        new_backup_of_known_unsound(found_by);
    }
}

fn new_backup_of_known_unsound(found_by: &str) {
    let env = Env::empty();
    make_index_corrupt_db(&env.db);
    env.run(&["backup"]).ok();
    let unsound = env.backup_files()[0].clone();
    match found_by {
        "verify" => env.run(&["verify"]).reported(1, "integrity_check"),
        _ => env
            .run(&["restore", &unsound, "--target", "look.db", "--full-check"])
            .failed_with(1, "integrity_check"),
    };
    // Its quick_check passes, but the finding holds for it: a failed
    // snapshot, never a restore point listed `ok` (T34 N11). The whole check
    // runs (T35 R3) and says what it found.
    env.run(&["backup"]).reported(
        1,
        "INTEGRITY CHECK FAILED: integrity_check: row 100 missing from index i",
    );
    let same = env.newest_backup();
    let same = same.file_name().unwrap().to_string_lossy().to_string();
    assert!(same.ends_with(".failed.db.gz"), "{same}");
    env.run(&["check"]).reported(
        1,
        &format!("FAIL last: newest snapshot {same} failed its integrity check"),
    );
    let rows = crate::common::listed(&env);
    assert_eq!(rows[same.as_str()]["check"], "failed", "{rows:?}");
    // Repaired: healthy again.
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch("REINDEX")
        .unwrap();
    env.run(&["backup"]).ok();
    let check = env.run(&["check"]);
    check.ok();
    assert!(
        check.stdout.contains("OK   restorable: newest good backup"),
        "{}",
        check.stdout
    );
}

/// T35 R3: one more write to a database `verify` found failing
/// `integrity_check` (an index out of step with its table) and the next
/// backup's `quick_check` passed: a restore point listed `ok`, `check`
/// healthy, the database still corrupt. Until a backup passes the whole
/// `integrity_check`, each new one runs it.
#[test]
fn after_a_write_to_a_database_found_unsound_the_next_backup_runs_the_whole_check() {
    // Right after `verify`, and after the failed snapshot of the same content.
    for same_content_first in [false, true] {
        let env = Env::empty();
        make_index_corrupt_db(&env.db);
        env.run(&["backup"]).ok();
        env.run(&["verify"]).reported(1, "integrity_check");
        if same_content_first {
            env.run(&["backup"]).reported(
                1,
                "INTEGRITY CHECK FAILED: integrity_check: row 100 missing from index i",
            );
        }
        let write = |sql: &str| {
            rusqlite::Connection::open(&env.db)
                .unwrap()
                .execute_batch(sql)
                .unwrap();
        };
        write("CREATE TABLE other(x); INSERT INTO other VALUES (1);");
        env.run(&["backup"]).reported(
            1,
            "INTEGRITY CHECK FAILED: integrity_check: row 100 missing from index i",
        );
        let newest = env.newest_backup();
        let newest = newest.file_name().unwrap().to_string_lossy().to_string();
        assert!(newest.ends_with(".failed.db.gz"), "{newest}");
        env.run(&["check"]).reported(
            1,
            &format!("FAIL last: newest snapshot {newest} failed its integrity check (integrity_check: row 100 missing from index i)"),
        );
        // `restore latest` does not take a point made after the finding.
        let rows = crate::common::listed(&env);
        let ok_points: Vec<_> = rows
            .iter()
            .filter(|(_, row)| row["status"] == "ok")
            .map(|(name, _)| name.clone())
            .collect();
        assert!(ok_points.is_empty(), "{ok_points:?}");
        // Repaired: the first backup passes the whole check and says so; the
        // next one is back to quick_check.
        write("REINDEX");
        env.run(&["backup"]).reported(0, "integrity_check ok");
        env.run(&["check"]).ok();
        write("INSERT INTO other VALUES (2);");
        env.run(&["backup"]).reported(0, "quick_check ok");
    }
}

/// A backup passed `integrity_check` since the finding, so `quick_check` runs
/// again; the database put back as it was when found unsound (a restore with
/// `--force`) passes it, yet the finding holds for that very content (T34
/// N11): a failed snapshot.
#[test]
fn the_content_found_unsound_put_back_after_a_repair_is_a_failed_snapshot() {
    let env = Env::empty();
    make_index_corrupt_db(&env.db);
    env.run(&["backup"]).ok();
    let unsound = env.backup_files()[0].clone();
    env.run(&["verify"]).reported(1, "integrity_check");
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch("REINDEX")
        .unwrap();
    env.run(&["backup"]).reported(0, "integrity_check ok");
    env.run(&["restore", &unsound, "--force"]).ok();
    env.run(&["backup"]).reported(
        1,
        &format!("INTEGRITY CHECK FAILED: quick_check: ok, but it is the same database as {unsound}, which failed integrity_check: row 100 missing from index i"),
    );
}

/// T26b #2: a diff whose base holds a database that fails `integrity_check`
/// (found by `verify`) is given back by name with `--force`, checked whole and
/// said; without `--force`, the error names the diff's own command.
#[test]
fn a_diff_on_a_base_known_to_fail_its_check_is_restored_by_name_with_force() {
    let env = Env::empty();
    fs::write(env.path("dbbackup.yaml"), "diff_backups: 2\n").unwrap();
    make_index_corrupt_db(&env.db);
    // Pages enough that one more row makes a diff, not a full backup.
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.execute_batch(
        "CREATE TABLE u(b BLOB);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200)
         INSERT INTO u SELECT randomblob(1000) FROM n;",
    )
    .unwrap();
    env.run(&["backup"]).ok();
    conn.execute("INSERT INTO u VALUES (randomblob(1000))", [])
        .unwrap();
    drop(conn);
    env.run(&["backup"]).ok();
    let names = env.backup_files();
    let (base, diff) = (names[0].clone(), names[1].clone());
    assert!(diff.ends_with(".diff.gz"), "{names:?}");
    env.run(&["verify", &base])
        .reported(1, "integrity_check: row 100 missing from index i");
    env.run(&["restore", &diff, "--target", "plain.db"]).failed_with(
        1,
        &format!(
            "base backup {base} of diff {diff} is damaged: the database in it fails its check (integrity_check: row 100 missing from index i); `dbbackup restore {diff} --target FILE --force` gives this diff back, checked with integrity_check; refusing to restore it; plain.db left untouched"
        ),
    );
    assert!(!env.path("plain.db").exists());
    let forced = env.run(&["restore", &diff, "--target", "forced.db", "--force"]);
    forced.ok();
    assert!(
        forced.stderr.contains(&format!(
            "backup {diff} fails integrity_check (row 100 missing from index i), as the database did when it was backed up: restored because of --force"
        )),
        "{}",
        forced.stderr
    );
    assert_eq!(
        content_digest(&env.path("forced.db")),
        content_digest(&env.db)
    );
    // `latest` still never takes it.
    env.run(&["restore", "latest", "--target", "look.db", "--force"])
        .failed_with(1, "is damaged");
    assert!(!env.path("look.db").exists());
}

/// T27 F-M: `restore latest` over a database that fails its check (why one
/// restores) checks the candidates with `integrity_check`: the newest point,
/// whose `quick_check` passed on damage already in it, is passed over for
/// the sound one before it.
#[test]
fn restore_latest_over_a_corrupt_database_passes_over_points_holding_its_damage() {
    let env = Env::empty();
    make_index_corrupt_db(&env.db);
    // The sound state first: the index rebuilt.
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch("REINDEX")
        .unwrap();
    env.run(&["backup"]).ok();
    let sound = env.backup_files().pop().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Silent damage, backed up: its quick_check passes.
    corrupt_index(&env.db);
    env.run(&["backup"]).ok();
    let damaged = env.backup_files().pop().unwrap();
    assert_ne!(sound, damaged);
    // Then damage quick_check sees: the table's page header.
    let mut bytes = fs::read(&env.db).unwrap();
    bytes[4096 + 5..4096 + 7].copy_from_slice(&[0xff, 0xff]);
    fs::write(&env.db, bytes).unwrap();
    let run = env.run(&["restore", "latest"]);
    run.ok();
    assert!(
        run.stderr.contains("fails its check (")
            && run
                .stderr
                .contains("the restore points are checked with integrity_check (as --full-check)")
            && run.stderr.contains(&format!("passing over {damaged}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains(&format!("restored {sound}")),
        "{}",
        run.stdout
    );
    let check: String = rusqlite::Connection::open(&env.db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// T27 F-I: once the database is back (restored from the mirror), `list`
/// says the next step is a backup, not another restore; the backup then
/// starts the backup directory again.
#[test]
fn after_restoring_from_a_mirror_the_hint_is_to_back_up() {
    let env = Env::new();
    let name = backed_up_with_mirror(&env);
    fs::remove_dir_all(&env.backups).unwrap();
    fs::remove_file(&env.db).unwrap();
    env.run(&["--backup-dir", "m1", "restore", "latest"]).ok();
    env.run(&["list"]).failed_with(
        1,
        &format!(
            "mirror m1 holds 1 restore point of it (newest {name}); {} is there: `dbbackup backup` starts the backup directory again (to restore from the mirror instead: `dbbackup --backup-dir m1 restore latest`)",
            env.db.display()
        ),
    );
    // T27b F4: `check` too, on its `age` line.
    env.run(&["check"]).reported(
        1,
        &format!(
            "does not exist; mirror m1 holds 1 restore point of it (newest {name}); {} is there: `dbbackup backup` starts the backup directory again",
            env.db.display()
        ),
    );
    env.run(&["backup"]).ok();
    env.run(&["list"]).ok();
}

/// T36 N1: a database whose index went out of step with its table, backed
/// up since (its `quick_check` passed), then `restore latest` as the README
/// advises for a corrupt database: the same damaged content was "restored",
/// exit 0. The database the restore would give back as it is gets the
/// whole `integrity_check`: failing, the restore points are checked whole
/// and the sound older one is restored.
#[test]
fn restore_latest_of_a_database_whose_index_drifted_gives_the_sound_older_point() {
    let env = Env::empty();
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(a INTEGER); CREATE INDEX i ON t(a);
             WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 120)
             INSERT INTO t SELECT x FROM n;",
        )
        .unwrap();
    env.run(&["backup"]).ok();
    let sound = env.backup_files()[0].clone();
    let sound_digest = content_digest(&env.db);
    corrupt_index(&env.db);
    env.run(&["backup"]).reported(0, "quick_check ok");
    let drifted = env.newest_backup();
    let drifted = drifted.file_name().unwrap().to_string_lossy().to_string();
    let restore = env.run(&["restore", "latest", "--format", "json"]);
    restore.ok();
    assert!(
        restore
            .stderr
            .contains("fails its check (row 100 missing from index i"),
        "{}",
        restore.stderr
    );
    let json = restore.json();
    assert_eq!(json["name"], sound.as_str(), "{json}");
    assert!(json["passed_over"].to_string().contains(&drifted), "{json}");
    assert_eq!(content_digest(&env.db), sound_digest);
}
