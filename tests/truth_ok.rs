//! Task E's trial findings: every `ok` and every exit 0 is true. `verify` fails
//! when the newest backup is damaged; `check` names each failing fact once; the
//! templates learn the time of any full backup; `post-job`, `export`, `list`
//! and `summary` say what they did.

use std::fs;

use crate::common::*;

/// Two backups of `results.db`, the newest cut short by 1000 bytes; returns
/// (older, newest) names.
fn newest_truncated(env: &Env) -> (String, String) {
    env.run(&["backup"]).ok();
    env.run(&["backup", "--force"]).ok();
    let files = env.backup_files();
    let (older, newest) = (files[0].clone(), files[1].clone());
    let path = env.newest_backup();
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    (older, newest)
}

#[test]
fn verify_fails_when_the_newest_backup_is_damaged() {
    let env = Env::new();
    let (older, newest) = newest_truncated(&env);
    for args in [
        &["verify"][..],
        &["verify", "latest"],
        &["verify", "latest", "latest"],
    ] {
        let run = env.run(args);
        run.reported(1, &format!("{newest}: FAILED: truncated"));
        assert!(
            run.stdout.contains(&format!("{older}: ok")),
            "{args:?} still checks the one restore uses\n{}",
            run.stdout
        );
        assert_eq!(
            run.stdout.lines().count(),
            2,
            "{args:?}: each backup once\n{}",
            run.stdout
        );
    }
    let json = env.run(&["verify", "--format", "json"]).json();
    assert_eq!(json[0]["name"], newest.as_str());
    assert_eq!(json[0]["ok"], false);
    assert_eq!(json[1]["name"], older.as_str());
    assert_eq!(json[1]["ok"], true);
    // Naming the intact one checks only it.
    env.run(&["verify", &older]).ok();
}

#[test]
fn verify_latest_twice_checks_it_once() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let run = env.run(&["verify", "latest", "latest"]);
    run.ok();
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
}

/// The line of `check`'s text report for criterion `name`.
fn check_line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|line| line[4..].trim_start().starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} line\n{text}"))
}

#[test]
fn check_names_a_truncated_newest_full_backup_once_and_never_ok() {
    let env = Env::new();
    let (_, newest) = newest_truncated(&env);
    let check = env.run(&["check"]);
    check.reported(
        1,
        &format!("FAIL restorable: newest restore point {newest} cannot be restored: truncated"),
    );
    for line in check.stdout.lines().filter(|l| l.starts_with("OK")) {
        assert!(
            !line.contains("cannot be restored") && !line.contains("truncated"),
            "an OK line describes the failure: {line}\n{}",
            check.stdout
        );
    }
    assert!(
        !check.stdout.contains("FAIL base") && !check.stdout.contains("OK   base"),
        "no diff, so no `base`\n{}",
        check.stdout
    );
    let last = check_line(&check.stdout, "last");
    assert!(last.starts_with("OK"), "{last}");
    // The attempt that made it fails too, pointing at `restorable` for why.
    assert_eq!(
        check.stdout.matches("truncated: it is").count(),
        1,
        "why is said once\n{}",
        check.stdout
    );
    assert!(
        check_line(&check.stdout, "attempt").contains("cannot be restored (see `restorable`)"),
        "{}",
        check.stdout
    );
    let nagios = env.run(&["check", "--format", "nagios"]);
    nagios.reported(2, "DBBACKUP CRITICAL - restorable: ");
    let prometheus = env.run(&["check", "--format", "prometheus"]);
    assert!(
        prometheus.stdout.contains("criterion=\"restorable\"} 0"),
        "{}",
        prometheus.stdout
    );
}

#[test]
fn check_after_a_failed_first_attempt_does_not_contradict_itself() {
    let env = Env::new();
    let holder = hold_exclusive(&env.db);
    env.run(&["backup", "--busy-timeout-seconds", "1"])
        .failed_with(1, "locked by another process");
    drop(holder);
    let check = env.run(&["check"]);
    check.reported(1, "FAIL attempt: newest attempt");
    let last = check_line(&check.stdout, "last");
    assert!(
        !last.contains("attempt"),
        "`last` must not say there was no attempt next to a failed one: {last}"
    );
}

#[test]
fn templates_size_the_usr1_lead_from_any_full_backup() {
    let env = Env::new();
    env.run(&["init", "--slurm"]).ok();
    env.run(&["backup", "--force"]).ok();
    env.run(&["templates", "--out", "t"]).ok();
    let text = fs::read_to_string(env.path("t/job_single.sbatch")).unwrap();
    let lead = text
        .lines()
        .find(|l| l.contains("USR1 lead"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        lead.contains("the last full backup") && !lead.contains("no "),
        "a manual backup is a measurement: {lead}"
    );
}

#[test]
fn post_job_without_a_status_records_it_as_unknown_and_says_so() {
    let env = Env::new();
    let log = env.summary_log();
    let run: Run = env
        .command()
        .env("DBBACKUP_SUMMARY_LOG", &log)
        .env("SLURM_JOB_ID", "901")
        .args(["post-job"])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert!(
        run.stderr.matches("no --status given").count() == 1,
        "one warning line\n{}",
        run.stderr
    );
    let line = summary_lines(&log).pop().unwrap();
    assert_eq!(line["exit_status"], "unknown", "{line:?}");
    // Given, it is the number.
    env.command()
        .env("DBBACKUP_SUMMARY_LOG", &log)
        .env("SLURM_JOB_ID", "902")
        .args(["post-job", "--status", "3"])
        .output()
        .unwrap();
    assert_eq!(summary_lines(&log).pop().unwrap()["exit_status"], "3");
}

#[test]
fn export_refuses_a_name_that_is_not_gz_and_points_at_restore() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let run = env.run(&["export", "latest", "--out", "plain.db"]);
    run.failed_with(2, "must end in .gz");
    assert!(
        run.stderr
            .contains("dbbackup restore latest --target plain.db"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!env.path("plain.db").exists(), "nothing written");
    // What it points at works: a plain database sqlite3 opens.
    env.run(&["restore", "latest", "--target", "plain.db"]).ok();
    let rows: i64 = rusqlite::Connection::open(env.path("plain.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert!(rows > 0);
    env.run(&["export", "latest", "--out", "copy.db.GZ"]).ok();
    // T27 F-G: names `restore --target` refuses too get no such hint.
    for (out, says) in [
        (
            "/dev/null",
            "--out /dev/null is not a regular file: export writes a new file (--out copy.db.gz; then `zcat copy.db.gz` gives its database)",
        ),
        (
            "newdir/",
            "--out newdir/ names a directory, and there is none: give a file name ending in .gz in an existing directory",
        ),
    ] {
        let run = env.run(&["export", "latest", "--out", out]);
        run.failed_with(2, says);
        assert!(!run.stderr.contains("restore latest"), "{}", run.stderr);
    }
}

#[test]
fn list_with_a_missing_database_says_so_and_still_lists() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let run = env.run(&["--db-path", "nosuch.db", "list"]);
    run.ok();
    assert!(
        run.stdout.contains("other: "),
        "still listed\n{}",
        run.stdout
    );
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("nosuch.db does not exist"))
        .collect();
    assert_eq!(said.len(), 1, "{}", run.stderr);
    assert!(said[0].contains("mistyped --db-path?"), "{}", said[0]);
    // The database that is there: nothing said.
    let fine = env.run(&["list"]);
    assert!(!fine.stderr.contains("does not exist"), "{}", fine.stderr);
}

#[test]
fn check_of_a_missing_database_advises_restore_only_when_it_would_work() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let typo = env.run(&["--db-path", "typo.db", "check"]);
    typo.reported(1, "FAIL database: typo.db does not exist");
    assert!(
        !typo.stdout.contains("restore latest"),
        "no restore point of typo.db: {}",
        typo.stdout
    );
    env.run(&["--db-path", "typo.db", "restore", "latest"])
        .failed_with(1, "no restore point");
    // Its own backups exist: the advice is given, and works.
    fs::remove_file(&env.db).unwrap();
    env.run(&["check"])
        .reported(1, "`dbbackup restore latest` puts its newest backup back");
    env.run(&["restore", "latest"]).ok();
    env.run(&["check"]).ok();
}

#[test]
fn restore_says_which_backup_holds_the_old_content_and_which_copy_it_made() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let backup = env.backup_files()[0].clone();
    // The database as backed up: its content is already in `backup`.
    let same = env.run(&["restore", "latest", "--format", "json"]).json();
    assert_eq!(same["pre_restore_backup"], backup.as_str());
    assert!(same["pre_restore_copy"].is_null(), "{same}");
    let text = env.run(&["restore", "latest"]);
    text.ok();
    assert!(
        text.stdout.contains(&format!(
            "its previous content is already in {backup}: no pre-restore copy needed"
        )) && !text.stdout.contains("backup backup_"),
        "{}",
        text.stdout
    );
    // Changed since: a pre-restore copy is made, and named in both fields.
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE unsaved(x); INSERT INTO unsaved VALUES (1);")
        .unwrap();
    let made = env.run(&["restore", "latest", "--format", "json"]).json();
    let copy = made["pre_restore_copy"].as_str().unwrap().to_string();
    assert_eq!(made["pre_restore_backup"], copy.as_str());
    let listed = env.run(&["list", "--format", "json"]).json();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == copy.as_str())
        .unwrap();
    assert_eq!(row["kind"], "pre-restore", "{row}");
}

#[test]
fn summary_documents_that_it_exits_0_for_an_unhealthy_set() {
    let env = Env::new();
    let log = env.path("summary.log");
    // No backup at all: unhealthy.
    let run = env.run(&["summary", "--log", log.to_str().unwrap()]);
    run.ok();
    let line = summary_lines(&log).pop().unwrap();
    assert_eq!(line["healthy"], "false", "{line:?}");
    let help = env.run(&["summary", "--help"]);
    help.ok();
    assert!(
        help.stdout
            .contains("Exit 0 once the line is appended, whatever it says"),
        "{}",
        help.stdout
    );
    env.run(&["check"]).reported(1, "FAIL");
}

#[test]
fn verify_fails_when_a_newer_file_has_unreadable_metadata() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["backup", "--force"]).ok();
    let files = env.backup_files();
    let (older, newest) = (files[0].clone(), files[1].clone());
    // Cut inside the 8 KiB metadata header: whose backup it was cannot be read.
    let path = env.backups.join(&newest);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..100]).unwrap();
    env.run(&["check"]).reported(1, "FAIL unreadable");
    let run = env.run(&["verify"]);
    // Said as `restore latest` says the file it passes over.
    run.reported(1, &format!("{newest}: FAILED: "))
        .reported(1, "it may well have been this database's newest backup");
    assert!(
        run.stdout.contains(&format!("{older}: ok")),
        "{}",
        run.stdout
    );
}

/// `pre-job` of SLURM job `job`, outside SLURM.
fn pre_job_of(env: &Env, job: &str) -> Run {
    env.command()
        .env("SLURM_JOB_ID", job)
        .args(["pre-job"])
        .output()
        .unwrap()
        .into()
}

/// T27 F-J: a job started on a lost database (a scratch purge, a wrong `rm`)
/// is told how to put it back before its work fills a new, empty one.
#[test]
fn pre_job_on_a_lost_database_says_how_to_put_it_back() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let newest = env.backup_files().pop().unwrap();
    fs::remove_file(&env.db).unwrap();
    pre_job_of(&env, "903").failed_with(
        1,
        &format!(
            "does not exist, but its restore points are here (newest {newest}): if it was lost, put it back with `dbbackup restore latest` before the work runs (a job script can start with `dbbackup restore latest --if-db-missing`); to start a new database on purpose instead, move the old restore points aside (or give a new backup_dir)"
        ),
    );
    assert!(!env.db.exists());
    // T27b F3: `run` does not start the work, which would begin a new, empty
    // database that its post-job would publish as the newest state.
    let ran = env.path("ran");
    let run: Run = env
        .command()
        .args(["run", "--", "touch"])
        .arg(&ran)
        .output()
        .unwrap()
        .into();
    run.failed_with(
        1,
        "the job stops here, before its work: it would start a new, empty database in its place",
    );
    assert!(!ran.exists() && !env.db.exists());
    assert_eq!(env.backup_files(), [newest]);
}

/// T27b F16: a scratch purge took the backup directory too, a mirror keeps
/// the points: the database is lost, not new; pre-job names the mirror.
#[test]
fn pre_job_after_a_purge_of_database_and_backups_names_the_mirror() {
    let env = Env::new();
    fs::write(env.path("dbbackup.yaml"), "mirror_dirs: [m1]\n").unwrap();
    env.run(&["backup"]).ok();
    let newest = env.backup_files().pop().unwrap();
    fs::remove_dir_all(&env.backups).unwrap();
    fs::remove_file(&env.db).unwrap();
    pre_job_of(&env, "904").failed_with(
        1,
        &format!(
            "but mirror m1 holds 1 restore point of it (newest {newest}): restore from it with `dbbackup --backup-dir m1 restore latest`, before the work runs"
        ),
    );
    assert!(!env.db.exists());
}
