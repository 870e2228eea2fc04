//! Trial 8's leftovers about what `check` (and the commands around it) say:
//! a seed backup nothing vouches for, the word for a warning, a broken mirror,
//! a closed stdout, an unknown `TZ`.

use crate::common::*;

/// A legacy (plain gzip) backup made ten minutes ago by the seed script.
fn seed_backup_now(env: &Env) -> std::path::PathBuf {
    let ago = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    let name = seed_backup_name(ago, &jiff::tz::TimeZone::system());
    seed_backup(&env.db, &env.backups, &name)
}

#[test]
fn an_unverified_legacy_backup_alone_warns_until_verify_passes() {
    let env = Env::new();
    let legacy = seed_backup_now(&env);
    let advice = "counting 1 unverified legacy backup (plain gzip, never read whole): run `dbbackup verify --all`";
    let check = env.run_configured(&["check"]);
    check.reported(1, &format!("WARN count: 1 good backup (min 1), {advice}"));
    assert!(
        check.stdout.contains("WARN age: newest good backup"),
        "{}",
        check.stdout
    );
    env.run_configured(&["check", "--format", "nagios"])
        .reported(1, "DBBACKUP WARNING - age:");
    env.run_configured(&["verify", "--all"]).ok();
    env.run_configured(&["check"])
        .reported(0, "OK   count: 1 good backup (min 1)\n");
    // Damaged after it was verified (same size): the record no longer holds.
    flip_middle(&legacy);
    env.run_configured(&["check"]).reported(1, advice);
    env.run_configured(&["verify", "--all"])
        .reported(1, "FAILED");
    env.run_configured(&["check"])
        .reported(1, "FAIL count: 0 good backups (min 1)\n");
}

/// T30 F3: unverified legacy backups days old read "FAIL age: no good
/// backup; not counting 3 ..." beside "WARN count: 3 good backups": the age
/// that fails with them counted is said too.
#[test]
fn old_unverified_legacy_backups_fail_age_saying_how_old_they_are() {
    let env = Env::new();
    for days in [6, 5, 4] {
        let at = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days);
        let name = seed_backup_name(at, &jiff::tz::TimeZone::system());
        seed_backup(&env.db, &env.backups, &name);
    }
    let check = env.run_configured(&["check"]);
    check.reported(
        1,
        "FAIL age: no good backup; counting 3 unverified legacy backups too: newest good backup backup_",
    );
    let age = check.stdout.lines().next().unwrap();
    assert!(
        age.contains(
            " is 4d 0h old (max 1d 0h) (plain gzip, never read whole): run `dbbackup verify --all`"
        ),
        "{age}"
    );
}

#[test]
fn a_failing_warning_criterion_reads_warn_in_text() {
    let env = Env::empty();
    make_ledger_db(&env.db, 5000, false);
    env.run(&["backup"]).ok();
    let shrunk = "DELETE FROM ledger WHERE id > 10; VACUUM;";
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(shrunk)
        .unwrap();
    env.run(&["backup"]).ok();
    let check = env.run(&["check"]);
    check.reported(1, "\nWARN shrink: newest database size");
    assert!(!check.stdout.contains("FAIL"), "{}", check.stdout);
}

#[test]
fn check_prometheus_with_a_broken_configuration_prints_the_unjudged_metrics() {
    let env = Env::new();
    std::fs::write(env.path("dbbackup.yaml"), "max_bakups: 3\n").unwrap();
    let run = env.run(&["check", "--format", "prometheus"]);
    run.failed_with(2, "unknown key max_bakups");
    let samples: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        samples,
        ["dbbackup_healthy 0", "dbbackup_unjudged 1"],
        "{}",
        run.stdout
    );
}

/// T10 #15: `check --format json` that cannot judge (a backup directory it
/// cannot read, a broken configuration) prints `{"healthy": false, "error"}`,
/// not empty input, with the same exit code.
#[test]
fn check_json_that_cannot_judge_prints_unhealthy_with_the_error() {
    let env = Env::new();
    std::fs::write(&env.backups, "not a directory").unwrap();
    let run = env.run(&["check", "--format", "json"]);
    run.failed_with(1, "not a directory");
    let document = run.json();
    assert_eq!(document["healthy"], false, "{}", run.stdout);
    assert_eq!(
        document["error"],
        format!(
            "backup directory {} exists but is not a directory",
            env.backups.display()
        ),
        "{}",
        run.stdout
    );
    std::fs::remove_file(&env.backups).unwrap();
    std::fs::write(env.path("dbbackup.yaml"), "max_bakups: 3\n").unwrap();
    let run = env.run(&["check", "--format", "json"]);
    run.failed_with(2, "unknown key max_bakups");
    assert_eq!(run.json()["healthy"], false, "{}", run.stdout);
    assert!(
        run.json()["error"]
            .as_str()
            .unwrap()
            .contains("unknown key max_bakups"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unknown_tz_is_said_once_and_a_known_one_not_at_all() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let list = |zone: &str| -> Run {
        env.command()
            .env("TZ", zone)
            .arg("list")
            .output()
            .unwrap()
            .into()
    };
    let unknown = list("Nowhere/City");
    unknown.ok();
    let warning = " WARN job=local host=";
    let said = "TZ=Nowhere/City is not a known time zone; using UTC\n";
    assert_eq!(
        unknown.stderr.matches(said).count(),
        1,
        "{}",
        unknown.stderr
    );
    assert!(unknown.stderr.contains(warning), "{}", unknown.stderr);
    for known in ["Europe/Berlin", "UTC0", ":Asia/Tokyo"] {
        let run = list(known);
        run.ok();
        assert!(!run.stderr.contains("time zone"), "{known}: {}", run.stderr);
    }
}

#[test]
fn a_broken_mirror_is_one_failing_criterion_named_as_a_mirror() {
    let env = Env::new();
    let mirror = env.path("mirror");
    env.configure_with_mirror(&mirror);
    env.run_configured(&["backup"]).ok();
    std::fs::remove_dir_all(&mirror).unwrap();
    std::fs::write(&mirror, "x").unwrap();
    let named = format!(
        "mirror directory {} (mirror_dirs in dbbackup.yaml) exists but is not a directory",
        mirror.display()
    );
    let check = env.run_configured(&["check"]);
    check.reported(
        1,
        &format!("FAIL mirror:{}:directory: {named}\n", mirror.display()),
    );
    // The backup directory's own report is all there.
    for line in ["OK   age:", "OK   count:", "OK   last:", "OK   attempt:"] {
        assert!(check.stdout.contains(line), "{line}: {}", check.stdout);
    }
    assert!(
        !check.stdout.contains("backup directory"),
        "{}",
        check.stdout
    );
    let nagios = env.run_configured(&["check", "--format", "nagios"]);
    nagios.reported(
        2,
        &format!(
            "DBBACKUP CRITICAL - mirror:{}:directory: {named} |",
            mirror.display()
        ),
    );
    let backup = env.run_configured(&["backup", "--force"]);
    backup.reported(
        1,
        &format!("MIRROR FAILED: {}: {named}\n", mirror.display()),
    );
    assert!(
        !backup.stderr.contains("backup directory"),
        "{}",
        backup.stderr
    );
}

/// `dbbackup ARGS >&-` through a shell: stdout really closed, not a pipe.
fn with_stdout_closed(env: &Env, args: &[&str]) -> Run {
    let mut command = std::process::Command::new("sh");
    without_inherited_settings(&mut command);
    command
        .current_dir(env.root.path())
        .env("DBBACKUP_DB_PATH", &env.db)
        .env("DBBACKUP_BACKUP_DIR", &env.backups)
        .args(["-c", "\"$0\" \"$@\" >&-", BIN])
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn a_closed_stdout_fails_a_command_that_reports() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let said = "cannot write to stdout: Bad file descriptor (os error 9)";
    with_stdout_closed(&env, &["list"]).failed_with(1, said);
    let nagios = with_stdout_closed(&env, &["check", "--format", "nagios"]);
    nagios.failed_with(3, said);
    // Nothing to write: nothing lost.
    with_stdout_closed(&env, &["--quiet", "list"]).ok();
    // /dev/null is where the caller sent it: not an error.
    let run: Run = env
        .command()
        .arg("list")
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap()
        .into();
    run.ok();
}

/// T13 #4, #6, #10: `check`'s advice is what works. Without `--db-path` its
/// `restore latest` hint names the database (or the restore refuses); with
/// the backup directory lost and a mirror intact it names the mirror, not
/// "no restore point to put back"; after a project move, `age` names the
/// old path's backups and `adopt`, as `list` does.
#[test]
fn checks_advice_is_a_command_that_works() {
    // No --db-path: the one database the backups record.
    let env = Env::new();
    env.run(&["backup"]).ok();
    std::fs::remove_file(&env.db).unwrap();
    let bare = |args: &[&str]| -> Run {
        env.command()
            .env_remove("DBBACKUP_DB_PATH")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let check = bare(&["check"]);
    let hint = format!("`dbbackup --db-path {} restore latest`", env.db.display());
    assert!(check.stdout.contains(&hint), "{}", check.stdout);
    bare(&["--db-path", env.db.to_str().unwrap(), "restore", "latest"]).ok();

    // The backup directory lost, a mirror intact.
    let env = Env::new();
    let mirror = env.path("mirror");
    let mirrored = |args: &[&str]| env.run_mirrored(&mirror, args);
    mirrored(&["backup"]).ok();
    std::fs::remove_dir_all(&env.backups).unwrap();
    std::fs::remove_file(&env.db).unwrap();
    let check = mirrored(&["check"]);
    assert!(
        check.stdout.contains(&format!(
            "restore from it with `dbbackup --backup-dir {} restore latest`",
            mirror.display()
        )) && !check.stdout.contains("no restore point of it"),
        "{}",
        check.stdout
    );

    // A moved project.
    let env = Env::empty();
    let old = env.path("old");
    std::fs::create_dir(&old).unwrap();
    make_ledger_db(&old.join("results.db"), 10, false);
    let at = |dir: &std::path::Path, args: &[&str]| -> Run {
        env.command()
            .env("DBBACKUP_DB_PATH", dir.join("results.db"))
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    at(&old, &["backup"]).ok();
    let new = env.path("new");
    std::fs::rename(&old, &new).unwrap();
    let check = at(&new, &["check"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    let adopt = format!("`dbbackup adopt {}`", old.join("results.db").display());
    assert!(check.stdout.contains(&adopt), "{}", check.stdout);
}

/// T19 #7: after a corrupt database's failed snapshot and a `restore latest`
/// that repaired it, `check` stayed CRITICAL ("the database may be corrupt")
/// and the next backups, skipped as unchanged, could not clear it. A failed
/// snapshot made before a restore into the database judges what the restore
/// replaced.
#[test]
fn a_restore_that_replaced_a_corrupt_database_clears_the_failed_snapshot() {
    let env = Env::empty();
    make_results_db(&env.db, 4.0, false);
    env.run(&["backup"]).ok();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&env.db)
            .unwrap();
        file.seek(SeekFrom::Start(4096 * 500)).unwrap();
        file.write_all(&[0xde; 4096]).unwrap();
    }
    env.run(&["backup"])
        .failed_with(1, "failed its integrity check");
    env.run(&["check"])
        .reported(1, "the database may be corrupt");
    env.run(&["restore", "latest"]).ok();
    // Unchanged since the restored backup: a good attempt, no new snapshot.
    let again = env.run(&["backup"]);
    again.ok();
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    let check = env.run(&["check"]);
    check.ok();
    assert!(
        check.stdout.contains("replaced since by a checked restore"),
        "{}",
        check.stdout
    );
}

/// T15 #8: snapshots are checked with quick_check, which an index that
/// disagrees with its table passes; `check`'s `last` said the database
/// "passed its integrity check". It says quick_check, and where the full
/// check is (`verify`, which fails such a backup).
#[test]
fn check_says_the_snapshot_passed_quick_check_not_integrity_check() {
    let env = Env::empty();
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (i INTEGER, v TEXT); CREATE INDEX iv ON t (v);
         WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 3000)
         INSERT INTO t SELECT k, printf('v%05d', 3000 - k) FROM n;
         PRAGMA writable_schema = ON;
         UPDATE sqlite_master SET sql = 'CREATE INDEX iv ON t (i)' WHERE name = 'iv';",
    )
    .unwrap();
    drop(conn);
    env.run(&["backup"]).ok();
    let check = env.run(&["check"]);
    check.ok();
    let last = check
        .stdout
        .lines()
        .find(|line| line.contains("last:"))
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert!(
        last.contains("passed its quick_check (`dbbackup verify` runs the full integrity_check)"),
        "{last}"
    );
    assert!(
        !check.stdout.contains("integrity check"),
        "{}",
        check.stdout
    );
    env.run(&["verify"]).failed_with(1, "integrity_check");
}

/// T25 #2: bytes gone bad inside a backup of the same size pass every cheap
/// test: `list` and `check` called it good for ever, and with the database
/// unchanged nothing made a new one. `periodic` reads the newest restore point
/// whole once neither its creation nor its last whole read is within a week:
/// the damage is found, marked, and a new backup made.
#[test]
fn periodic_reads_a_week_old_newest_point_whole_and_replaces_a_damaged_one() {
    let env = Env::empty();
    // Large enough that the middle of the backup is data, not its header.
    make_results_db(&env.db, 1.0, false);
    env.run(&["backup"]).ok();
    let damaged = env.newest_backup();
    // A week-old newest point is old for `age` (1 day): not this test's matter.
    let periodic = || -> Run {
        env.command()
            .env("DBBACKUP_CHECK_MAX_AGE", "30d")
            .arg("periodic")
            .output()
            .unwrap()
            .into()
    };
    let name = damaged.file_name().unwrap().to_str().unwrap().to_string();
    flip_middle(&damaged);
    // Made less than a week ago: the cheap tests only (the documented bound).
    let run = periodic();
    run.ok();
    assert!(!run.stderr.contains("read whole"), "{}", run.stderr);
    // A week old: read whole. The run fails (cron mails it), and replaces it.
    flip_middle(&damaged);
    backdate(&damaged, std::time::Duration::from_secs(8 * 24 * 3600));
    flip_middle(&damaged);
    let run = periodic();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            " WARN job=local host={}: unhealthy: {name} read whole: backup {name} is damaged: ",
            listed(&env)[&name]["host"].as_str().unwrap()
        )),
        "{}",
        run.stderr
    );
    let line = summary_lines(&env.summary_log()).pop().unwrap();
    assert_eq!(line["healthy"], "false", "{line:?}");
    assert!(
        line["problems"].contains(&format!("{name} read whole: ")),
        "{line:?}"
    );
    let list = listed(&env);
    assert_eq!(list.len(), 2, "a new backup was made: {list:?}");
    assert_eq!(list[&name]["check"], "damaged", "{:?}", list[&name]);
    let newest = env.newest_backup();
    assert_ne!(newest, damaged);
    let restored = env.path("restored.db");
    env.run(&["restore", "latest", "--target", restored.to_str().unwrap()])
        .ok();
    assert_eq!(content_digest(&restored), content_digest(&env.db));

    // A sound point read whole once a week, not at every run.
    backdate(&newest, std::time::Duration::from_secs(8 * 24 * 3600));
    let first = periodic();
    first.ok();
    assert!(
        first.stderr.contains(" read whole (not for 7d"),
        "{}",
        first.stderr
    );
    let second = periodic();
    second.ok();
    assert!(!second.stderr.contains("read whole"), "{}", second.stderr);
}

/// T25b NEW-7: a finished project's database, unchanged since its newest
/// backup, is healthy past `max_age` (`backup` would skip it: nothing is
/// unprotected), said so; one write later `age` fails again, and a mirror's
/// `age` is judged the same way.
#[test]
fn an_unchanged_database_keeps_age_healthy_past_max_age() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let newest = env.newest_backup();
    let name = newest.file_name().unwrap().to_string_lossy().to_string();
    backdate(&newest, std::time::Duration::from_secs(3 * 24 * 3600));
    env.run(&["check", "--max-age", "1d"]).reported(
        0,
        &format!(
            "OK   age: newest good backup {name} is 3d 0h old (max 1d 0h), and the database is unchanged since it: nothing to back up\n"
        ),
    );
    env.run(&["check", "--max-age", "1d", "--format", "nagios"])
        .reported(0, "DBBACKUP OK");
    add_row_ledger(&env.db);
    env.run(&["check", "--max-age", "1d"]).reported(
        1,
        &format!("FAIL age: newest good backup {name} is 3d 0h old (max 1d 0h)\n"),
    );
    env.run(&["check", "--max-age", "1d", "--format", "nagios"])
        .reported(2, "DBBACKUP CRITICAL");
}

/// T26 #5: after `restore`, the database (a new file, byte for byte the
/// restored backup) failed `age` until the next backup read it whole. The
/// restore remembers that the point holds it: healthy at once, and the next
/// backup is "unchanged" without a whole read. A write after it still counts.
#[test]
fn a_restored_database_is_known_to_be_held_by_its_point() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let point = env.newest_backup();
    let name = point.file_name().unwrap().to_string_lossy().to_string();
    // Before the restore: rewriting the header makes it another file.
    backdate(&point, std::time::Duration::from_secs(3 * 24 * 3600));
    add_row_ledger(&env.db);
    env.run(&["restore", &name]).ok();
    env.run(&["check", "--max-age", "1d"]).reported(
        0,
        &format!("OK   age: newest good backup {name} is 3d 0h old (max 1d 0h), and the database is unchanged since it"),
    );
    let backup = env.run(&["backup"]);
    backup.ok();
    assert!(
        backup
            .stdout
            .contains(&format!("skipped: database unchanged since {name}")),
        "{}",
        backup.stdout
    );
    assert!(
        !backup.stderr.contains("content did not"),
        "{}",
        backup.stderr
    );
    // Into another file: nothing recorded for the configured database.
    env.run(&["restore", &name, "--target", "copy.db"]).ok();
    add_row_ledger(&env.db);
    env.run(&["check", "--max-age", "1d"]).reported(
        1,
        &format!("FAIL age: newest good backup {name} is 3d 0h old (max 1d 0h)\n"),
    );
}

/// T27 F-E: while the run that published the newest point holds the backup
/// directory's lock (copying it to the mirror, minutes on a slow filesystem),
/// the mirror lacking it is pending, not CRITICAL; once no run holds the lock,
/// a mirror still lacking it fails.
#[test]
fn a_mirror_copy_under_way_is_pending_not_failing() {
    let env = Env::new();
    std::fs::write(env.path("dbbackup.yaml"), "mirror_dirs: [m1]\n").unwrap();
    env.run(&["backup"]).ok();
    add_row_ledger(&env.db);
    env.run(&["backup"]).ok();
    let name = env.backup_files().pop().unwrap();
    std::fs::remove_file(env.path("m1").join(&name)).unwrap();
    let failing = format!(
        "FAIL mirror:m1:newest: the newest restore point {name} is not in the mirror: {name} is missing from it; the next backup, auto or periodic copies it"
    );
    env.run(&["check"]).reported(1, &failing);
    // The lock's record: the publishing run took it before it made the point.
    let lock = env.backups.join(".dbbackup.lock");
    let record = |since: &str| {
        std::fs::write(
            &lock,
            format!(r#"{{"host":"n1","pid":4242,"job":"77","since":"{since}"}}"#),
        )
        .unwrap();
    };
    record("2000-01-01T00:00:00Z");
    let holder = LockHolder::hold(&lock, &env.path("holding"));
    let during = env.run(&["check"]);
    // T27b F2: one that took it after (a restore, another database's
    // backup) copies nothing of this point.
    record("2100-01-01T00:00:00Z");
    let later = env.run(&["check"]);
    drop(holder);
    later.reported(1, &failing);
    during.reported(
        0,
        &format!(
            "WAIT mirror:m1:newest: the newest restore point {name} is not in the mirror yet ({name} is missing from it): the dbbackup run holding the backup directory's lock (host=n1 pid=4242 job=77 since=2000-01-01T00:00:00Z) copies it"
        ),
    );
    std::fs::write(&lock, "").unwrap();
    env.run(&["check"]).reported(1, &failing);
}

/// T27b F1: a run that died holding the lock (a backup killed mid-snapshot)
/// stays said by `check` when another run takes the lock next (a restore to
/// look at a backup, a prune, another database's backup), until this
/// database's next attempt.
#[test]
fn a_run_that_died_holding_the_lock_stays_said_after_another_takes_it() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // What a killed backup leaves: its record, nobody holding the lock.
    let since = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap();
    std::fs::write(
        env.backups.join(".dbbackup.lock"),
        format!(r#"{{"host":"n1","pid":4242,"job":"78","since":"{since}"}}"#),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let died = "a dbbackup run (host=n1 pid=4242 job=78";
    env.run(&["check"]).reported(1, died);
    env.run(&["restore", "latest", "--target", "look.db"]).ok();
    env.run(&["prune"]).ok();
    env.run(&["check"]).reported(1, died);
    add_row_ledger(&env.db);
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
}

/// T36 N8: `auto` skipped for a busy backup directory said "another process
/// is making a backup right now", though the holder was a restore into a
/// scratch file (or another database's backup): nobody backed up the
/// change. It says what is known: the lock's holder, and that this run did
/// not back up.
#[test]
fn auto_on_a_busy_directory_names_the_lock_holder_and_claims_no_backup() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    add_row_ledger(&env.db);
    let _lock = hold_dir_lock(
        &env.backups.join(".dbbackup.lock"),
        r#"{"host":"n9","pid":4242,"job":"77","since":"2026-01-01T00:00:00Z"}"#,
    );
    let auto = env.run(&["--min-interval-hours", "0", "auto", "--format", "json"]);
    auto.ok();
    let json = auto.json();
    assert_eq!(json["status"], "skipped", "{json}");
    assert_eq!(json["reason"], "busy", "{json}");
    let detail = json["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the backup directory is busy: another dbbackup process holds its lock (host=n9 pid=4242 job=77"),
        "{detail}"
    );
    assert!(detail.ends_with("not backed up this time"), "{detail}");
    assert!(!detail.contains("making a backup"), "{detail}");
}
