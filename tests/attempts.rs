//! Issue 18 item 4: a failed attempt that leaves no file (lock timeout, busy
//! database, not a database) makes `check` unhealthy (nagios CRITICAL, metrics
//! `dbbackup_last_attempt_success 0`) until the next success; `periodic` never
//! calls such a run healthy; a failure creates no backup directory.

use std::fs;

use crate::common::*;

fn check_json(env: &Env) -> (i32, serde_json::Value) {
    let run = env.run(&["check", "--format", "json"]);
    (run.code, run.json())
}

/// The `attempt` criterion of `check --format json`.
fn attempt_criterion(env: &Env) -> serde_json::Value {
    let (_, json) = check_json(env);
    json["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "attempt")
        .unwrap_or_else(|| panic!("no attempt criterion: {json}"))
        .clone()
}

fn prometheus_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(&format!("{name}{{")))
        .and_then(|line| line.rsplit(' ').next())
        .map(|value| value.parse().unwrap())
}

#[test]
fn a_lock_timeout_makes_check_critical_until_the_next_success() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
    let holder = hold_dir_lock(&env.lock_file(), "host=n9 pid=1 job=9");
    env.run(&["backup", "--force", "--lock-timeout-seconds", "1"])
        .failed_with(1, "still locked by");
    // Older backups are fresh, yet the newest attempt failed: said at once.
    let check = env.run(&["check"]);
    check.reported(1, "FAIL attempt: newest attempt (manual");
    assert!(check.stdout.contains("still locked by"), "{}", check.stdout);
    assert!(check.stdout.contains("OK   age:"), "{}", check.stdout);
    let nagios = env.run(&["check", "--format", "nagios"]);
    assert_eq!(nagios.code, 2, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("DBBACKUP CRITICAL - attempt: "),
        "{}",
        nagios.stdout
    );
    let metrics = env.run(&["check", "--format", "prometheus"]);
    assert_eq!(metrics.code, 1);
    assert_eq!(
        prometheus_value(&metrics.stdout, "dbbackup_last_attempt_success"),
        Some(0.0)
    );
    let failed_at =
        prometheus_value(&metrics.stdout, "dbbackup_last_attempt_timestamp_seconds").unwrap();
    let now = jiff::Timestamp::now().as_second() as f64;
    assert!((now - failed_at).abs() < 60.0, "{failed_at} vs {now}");
    assert_eq!(attempt_criterion(&env)["severity"], "critical");
    // `auto` finds nothing due (the interval has not passed): not an attempt.
    drop(holder);
    env.run(&["auto"]).ok();
    env.run(&["check"]).reported(1, "FAIL attempt");
    // `auto` (or `periodic`) finding it unchanged once the interval passed is
    // a success, as for `backup`: cron ends the failure (T34 N7).
    env.run(&["--min-interval-hours", "0", "auto"])
        .reported(0, "unchanged");
    env.run(&["check"])
        .reported(0, "OK   attempt: newest attempt (auto");
    let holder = hold_dir_lock(&env.lock_file(), "host=n9 pid=1 job=9");
    env.run(&["backup", "--force", "--lock-timeout-seconds", "1"])
        .failed_with(1, "still locked by");
    drop(holder);
    // The next success, even "unchanged", makes it healthy again.
    env.run(&["backup"]).ok();
    let check = env.run(&["check"]);
    check.ok();
    assert!(
        check
            .stdout
            .contains("OK   attempt: newest attempt (manual"),
        "{}",
        check.stdout
    );
    let metrics = env.run(&["check", "--format", "prometheus"]);
    metrics.ok();
    assert_eq!(
        prometheus_value(&metrics.stdout, "dbbackup_last_attempt_success"),
        Some(1.0)
    );
    assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
}

/// A database locked past the busy timeout: the first backup fails without
/// creating the backup directory; `check` names the failure, beside the
/// database, where it could be recorded.
#[test]
fn a_busy_database_is_a_failed_attempt_and_creates_no_backup_dir() {
    let env = Env::new();
    let holder = hold_exclusive(&env.db);
    env.run(&["backup", "--busy-timeout-seconds", "1"])
        .failed_with(1, "locked by another process");
    assert!(!env.backups.exists(), "no empty backup directory");
    let criterion = attempt_criterion(&env);
    assert_eq!(criterion["ok"], false);
    assert!(
        criterion["detail"]
            .as_str()
            .unwrap()
            .contains("locked by another process"),
        "{criterion}"
    );
    drop(holder);
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
    // The record beside the database is gone once superseded.
    let beside: Vec<_> = fs::read_dir(env.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("dbbackup-attempt"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

#[test]
fn a_file_that_is_not_a_database_creates_no_backup_dir() {
    let env = Env::empty();
    fs::write(&env.db, "not a database\n").unwrap();
    for command in [&["backup"][..], &["auto"], &["periodic"], &["post-job"]] {
        let run = env.run(command);
        assert_eq!(run.code, 1, "{command:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("is not an SQLite database"),
            "{command:?}: {}",
            run.stderr
        );
        assert!(!env.backups.exists(), "{command:?} created the backup dir");
    }
    env.run(&["check"])
        .reported(1, "is not an SQLite database; healthy again after");
}

/// `periodic` on a busy database: its line says `status=failed healthy=false`
/// (never `healthy=true` for a failed attempt), and the next run that backs up
/// says healthy again.
#[test]
fn periodic_never_calls_a_failed_attempt_healthy() {
    let env = Env::new();
    let log = env.summary_log();
    env.run(&["backup"]).ok();
    // Due: older than the interval, and changed since.
    backdate(&env.newest_backup(), std::time::Duration::from_secs(7200));
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'x'); UPDATE counter SET n = n + 1;",
        )
        .unwrap();
    let holder = hold_exclusive(&env.db);
    let run = env.run(&["periodic", "--busy-timeout-seconds", "1"]);
    drop(holder);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = summary_lines(&log);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "periodic");
    assert_eq!(last["status"], "failed", "{last:?}");
    assert_eq!(last["healthy"], "false", "{last:?}");
    assert!(last["problems"].contains("attempt: "), "{last:?}");
    env.run(&["check"]).reported(1, "FAIL attempt");
    env.run(&["periodic"]).ok();
    let last = summary_lines(&log).pop().unwrap();
    assert_eq!(
        (last["status"].as_str(), last["healthy"].as_str()),
        ("ok", "true"),
        "{last:?}"
    );
    env.run(&["check"]).ok();
}

/// post-job that cannot get the lock logs `status=failed`; `check` agrees.
#[test]
fn a_post_job_that_failed_makes_check_fail() {
    let env = Env::new();
    let log = env.summary_log();
    env.run(&["backup"]).ok();
    let holder = hold_dir_lock(&env.lock_file(), "host=n9 pid=1 job=9");
    let run = env.run(&["post-job", "--status", "0", "--lock-timeout-seconds", "1"]);
    drop(holder);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(summary_lines(&log).last().unwrap()["status"], "failed");
    env.run(&["check"])
        .reported(1, "FAIL attempt: newest attempt (post-job");
    env.run(&["post-job", "--status", "0"]).ok();
    env.run(&["check"]).ok();
}

/// pre-job on a database locked past the busy timeout logs `status=failed`;
/// `check` agrees until a pre-job succeeds.
#[test]
fn a_pre_job_that_failed_makes_check_fail() {
    let env = Env::new();
    let log = env.summary_log();
    env.run(&["backup"]).ok();
    // Changed since, so pre-job must read it.
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'x'); UPDATE counter SET n = n + 1;",
        )
        .unwrap();
    let holder = hold_exclusive(&env.db);
    let run: Run = env
        .command()
        .env("SLURM_JOB_ID", "5150")
        .args(["pre-job", "--busy-timeout-seconds", "1"])
        .output()
        .unwrap()
        .into();
    drop(holder);
    run.failed_with(1, "locked by another process");
    assert_eq!(summary_lines(&log).last().unwrap()["status"], "failed");
    env.run(&["check"])
        .reported(1, "FAIL attempt: newest attempt (pre-job, host");
    // Job 5151 runs, as SLURM says: its pre-job is a success, its post-job to come.
    let bin = env.path("slurm-bin");
    fake_tool(
        &bin,
        "scontrol",
        "#!/bin/sh\necho 'JobId=5151 JobName=work JobState=RUNNING'\n",
    );
    let again: Run = env
        .command()
        .env("SLURM_JOB_ID", "5151")
        .env("PATH", path_with(&bin))
        .arg("pre-job")
        .output()
        .unwrap()
        .into();
    again.ok();
    let check: Run = env
        .command()
        .env("PATH", path_with(&bin))
        .arg("check")
        .output()
        .unwrap()
        .into();
    check.ok();
    assert!(
        check
            .stdout
            .contains("job 5151 has not ended (SLURM: RUNNING): its post-job backup is to come"),
        "{}",
        check.stdout
    );
}

/// Twelve processes fail at once (the lock is held): every record is whole,
/// the newest failure is what `check` reports, and no temp file is left; one
/// success then clears it.
#[test]
fn concurrent_failures_leave_one_whole_record() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let holder = hold_dir_lock(&env.lock_file(), "host=n9 pid=1 job=9");
    let runs = run_array_tasks(&env, "4242", 12, |_| {
        vec![
            "backup".into(),
            "--force".into(),
            "--lock-timeout-seconds".into(),
            "1".into(),
        ]
    });
    drop(holder);
    assert!(runs.iter().all(|r| r.code == 1));
    let state = env.backups.join(".dbbackup-state");
    let names: Vec<String> = fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // The lock that serializes replacing the record stays (as every lock file).
        .filter(|name| !name.ends_with(".lock"))
        .collect();
    assert_eq!(names.len(), 1, "one record, no temp file: {names:?}");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(state.join(&names[0])).unwrap()).unwrap();
    assert_eq!(record["ok"], false, "{record}");
    assert!(
        record["job"].as_str().unwrap().starts_with("4242_"),
        "{record}"
    );
    env.run(&["check"]).reported(1, "FAIL attempt");
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
}

/// A backup directory that is a file: one error line, no warning about a
/// failure marker that cannot exist under it.
#[test]
fn a_backup_directory_that_is_a_file_is_said_in_one_line() {
    let env = Env::new();
    let db = env.db.to_str().unwrap();
    let run = env.run(&["--backup-dir", db, "backup", "--force"]);
    run.failed_with(1, "is not a directory");
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

/// Issue 23 item 3: a failed one-off backup into another directory belongs to
/// that set. `check` of the configured set stays healthy; `check --backup-dir`
/// of the other one reports the failure; and the configured set's own failure
/// is not hidden by a later success elsewhere.
#[test]
fn a_failed_attempt_counts_for_the_backup_directory_it_was_aimed_at() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
    // Fails before it creates the directory: the record goes beside the database.
    let elsewhere = env.path("elsewhere");
    let elsewhere = elsewhere.to_str().unwrap();
    let holder = hold_exclusive(&env.db);
    env.run(&[
        "--backup-dir",
        elsewhere,
        "backup",
        "--busy-timeout-seconds",
        "1",
    ])
    .failed_with(1, "locked by another process");
    drop(holder);
    env.run(&["check"]).ok();
    let other = env.run(&["--backup-dir", elsewhere, "check"]);
    other.reported(1, "FAIL attempt: newest attempt (manual");
    assert!(
        other.stdout.contains("locked by another process"),
        "{}",
        other.stdout
    );

    // The configured set's own failure beside the database (its directory not
    // made yet), then a success elsewhere: the failure still stands.
    let env = Env::new();
    let holder = hold_exclusive(&env.db);
    env.run(&["backup", "--busy-timeout-seconds", "1"])
        .failed_with(1, "locked by another process");
    drop(holder);
    let other_dir = env.path("other-backups");
    env.run(&["--backup-dir", other_dir.to_str().unwrap(), "backup"])
        .ok();
    let criterion = attempt_criterion(&env);
    assert_eq!(criterion["ok"], false, "{criterion}");
}

/// A backup killed by SIGKILL (the OOM killer, SLURM's KILL after its grace
/// time) records no attempt, but the lock file still names it: `check` fails
/// `attempt` (nagios CRITICAL) until the next successful backup. It said the
/// previous attempt "succeeded" (T8 #1).
#[test]
fn a_backup_killed_holding_the_lock_fails_the_attempt_until_the_next_success() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    // A writer holds the database: the next backup waits for it, holding
    // the backup directory's lock, and is killed there.
    let holder = hold_exclusive(&env.db);
    let mut backup = env
        .command()
        .args(["--busy-timeout-seconds", "60", "backup", "--force"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "the backup holds the backup directory's lock",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(50),
        || env.run(&["lock", "status"]).stdout.contains("held by"),
    );
    backup.kill().unwrap();
    backup.wait().unwrap();
    drop(holder);
    let check = env.run(&["check"]);
    check.reported(
        1,
        "ended without releasing the backup directory's lock (killed?), after this database's newest recorded attempt",
    );
    assert!(check.stdout.contains("FAIL attempt:"), "{}", check.stdout);
    assert_eq!(env.run(&["check", "--format", "nagios"]).code, 2);
    env.run(&["backup", "--force"]).ok();
    env.run(&["check"]).ok();
}

/// T24 F7: a failed backup (the database changed since the newest backup),
/// then `auto`, not due by its interval, filled in a mirror that lacked the
/// newest backup: that skip was recorded as a success and `check` said OK,
/// with the change in no backup. A fill pays only the failure to copy that
/// backup (second half), never another failure.
#[test]
fn a_mirror_filled_in_by_a_skipped_auto_does_not_undo_a_failed_backup() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    crate::common::s3::add_row(&env.db);
    let holder = hold_dir_lock(&env.lock_file(), "host=n9 pid=1 job=9");
    env.run(&["backup", "--lock-timeout-seconds", "1"])
        .failed_with(1, "locked");
    drop(holder);
    let mirror = env.path("new-mirror");
    let auto = env.run(&["--mirror-dir", mirror.to_str().unwrap(), "auto"]);
    auto.ok();
    assert_eq!(
        backup_files_in(&mirror).len(),
        1,
        "filled in\n{}",
        auto.stderr
    );
    env.run(&["check"])
        .reported(1, "FAIL attempt: newest attempt (manual");

    // A copy to a mirror that failed is paid by filling that mirror in.
    let env = Env::new();
    let blocked = env.path("blocked");
    fs::write(&blocked, "a file where the mirror directory should be").unwrap();
    let mirrored = ["--mirror-dir", blocked.to_str().unwrap()];
    env.run(&[&mirrored[..], &["backup"]].concat())
        .failed_with(1, "failed: mirror directory");
    env.run(&["check"])
        .reported(1, "FAIL attempt: newest attempt (manual");
    fs::remove_file(&blocked).unwrap();
    env.run(&[&mirrored[..], &["auto"]].concat()).ok();
    let check = env.run(&[&mirrored[..], &["check"]].concat());
    check.ok();
    assert!(
        check.stdout.contains("OK   attempt: newest attempt (auto"),
        "{}",
        check.stdout
    );
}

/// T24c N8: a process holding the attempt record's lock past its wait (a
/// suspended job, a hung NFS client): the record is still written, and the
/// WARN says what that may cost (it was silent).
#[test]
fn a_stuck_record_lock_is_said_and_the_attempt_still_recorded() {
    let env = Env::new();
    // The lock file is made in the state directory the first record made.
    env.run(&["backup"]).ok();
    env.run(&["backup", "--force"]).ok();
    let state = env.backups.join(".dbbackup-state");
    let lock = fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".lock"))
        .expect("the record's lock file");
    let holder = LockHolder::hold(&lock, &env.path("holding"));
    crate::common::s3::add_row(&env.db);
    let run = env.run(&["backup"]);
    drop(holder);
    run.ok();
    assert!(
        run.stderr
            .contains("the attempt record is replaced without its lock"),
        "{}",
        run.stderr
    );
    let check = env.run(&["check"]);
    check.ok();
    let newest = env.newest_backup();
    assert!(
        check.stdout.contains(&format!(
            "succeeded: {}",
            newest.file_name().unwrap().to_string_lossy()
        )),
        "{}",
        check.stdout
    );
}
