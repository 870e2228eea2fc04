//! pre-job / post-job / auto / periodic from many real processes at once, with
//! array-job variables, as hundreds of array tasks would run them.

use std::fs;

use crate::common::*;

#[test]
fn concurrent_pre_jobs_make_exactly_one_restore_point_per_array() {
    let env = Env::new();
    let runs = run_array_tasks(&env, "5100", 32, |_| vec!["pre-job".into()]);
    for run in &runs {
        run.ok();
    }
    let files = env.backup_files();
    assert_eq!(files.len(), 1, "{files:?}");
    // Every task names that same backup: none returned before it existed.
    for run in &runs {
        assert!(run.stdout.contains(&files[0]), "{}", run.stdout);
    }
    let listed = listed(&env);
    let row = &listed[&files[0]];
    assert_eq!(row["kind"], "pre-job");
    assert_eq!(row["job"], "5100", "tagged with the array id");
    env.run(&["verify", "--all"]).ok();
    let lines = summary_lines(&env.summary_log());
    assert_eq!(lines.len(), 32, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l["status"] == "ok").count(), 1);
    let mut tasks: Vec<&str> = lines.iter().map(|l| l["job"].as_str()).collect();
    tasks.sort();
    tasks.dedup();
    assert_eq!(tasks.len(), 32, "one line per task");
    // A task that starts later (a throttled array) finds it too.
    let late = run_array_tasks(&env, "5100", 1, |_| vec!["pre-job".into()]);
    late[0].ok();
    assert_eq!(env.backup_files().len(), 1);
    // Another array, the database unchanged: the restore point is reused.
    let reused = run_array_tasks(&env, "5200", 4, |_| vec!["pre-job".into()]);
    assert!(reused[0].stdout.contains(&files[0]), "{}", reused[0].stdout);
    assert_eq!(env.backup_files().len(), 1);
    // Changed since: it gets its own.
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'x'); UPDATE counter SET n = n + 1",
        )
        .unwrap();
    run_array_tasks(&env, "5300", 4, |_| vec!["pre-job".into()]);
    assert_eq!(env.backup_files().len(), 2);
}

#[test]
fn concurrent_post_jobs_back_up_once_from_the_last_task_and_log_every_status() {
    let env = Env::new();
    run_array_tasks(&env, "6100", 1, |_| vec!["pre-job".into()]);
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'work'); UPDATE counter SET n = n + 1",
        )
        .unwrap();
    let runs = run_array_tasks(&env, "6100", 40, |task| {
        vec!["post-job".into(), "--status".into(), (task % 3).to_string()]
    });
    for run in &runs {
        run.ok();
    }
    let listed = listed(&env);
    let post: Vec<_> = listed
        .values()
        .filter(|r| r["kind"] == "post-job")
        .collect();
    assert_eq!(post.len(), 1, "exactly one post-job backup: {listed:?}");
    assert_eq!(post[0]["job"], "6100");
    let copy = gunzip_to(
        &env.backups.join(post[0]["name"].as_str().unwrap()),
        &env.path("post.db"),
    );
    assert_eq!(
        content_digest(&copy),
        content_digest(&env.db),
        "it holds the work"
    );
    let lines: Vec<_> = summary_lines(&env.summary_log())
        .into_iter()
        .filter(|l| l["event"] == "post-job")
        .collect();
    assert_eq!(lines.len(), 40);
    assert_eq!(lines.iter().filter(|l| l["status"] == "ok").count(), 1);
    assert!(lines.iter().all(|l| l.contains_key("exit_status")));
    assert_eq!(lines.iter().filter(|l| l["exit_status"] == "2").count(), 13);
    let last = lines.iter().find(|l| l["status"] == "ok").unwrap();
    assert!(
        last["trigger"].starts_with("last task (40 of 40"),
        "{last:?}"
    );
}

#[test]
fn a_post_job_task_backs_up_when_the_newest_backup_is_older_than_the_interval() {
    let env = Env::new();
    let task = |id: u32, interval: &str| {
        let run: Run = env
            .command()
            .env("SLURM_ARRAY_JOB_ID", "6300")
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("DBBACKUP_SUMMARY_LOG", env.path("log"))
            .args(["post-job", "--min-interval-hours", interval])
            .output()
            .unwrap()
            .into();
        run.ok();
    };
    let write = || {
        rusqlite::Connection::open(&env.db)
            .unwrap()
            .execute_batch("INSERT INTO ledger (amount, note) VALUES (0, 'work'); UPDATE counter SET n = n + 1")
            .unwrap();
    };
    task(0, "1");
    assert_eq!(
        env.backup_files().len(),
        1,
        "no backup existed: older than any interval"
    );
    write();
    task(1, "1");
    assert_eq!(
        env.backup_files().len(),
        1,
        "fresh backup and not the last task: none"
    );
    task(1, "0");
    assert_eq!(
        env.backup_files().len(),
        2,
        "interval passed (0 h) and the database changed"
    );
    write();
    task(2, "1");
    assert_eq!(env.backup_files().len(), 3, "the last task backs up");
}

#[test]
fn concurrent_auto_makes_one_backup_and_nobody_waits() {
    let env = Env::new();
    let runs = run_array_tasks(&env, "7100", 24, |_| vec!["auto".into()]);
    for run in &runs {
        run.ok();
    }
    assert_eq!(env.backup_files().len(), 1);
    env.run(&["verify", "--all"]).ok();
}

#[test]
fn mixed_commands_at_once_keep_every_summary_line_whole() {
    let env = Env::new();
    let runs = run_array_tasks(&env, "8100", 36, |task| match task % 3 {
        0 => vec!["pre-job".into()],
        1 => vec!["post-job".into(), "--status".into(), "0".into()],
        _ => vec!["auto".into()],
    });
    for run in &runs {
        run.ok();
    }
    let lines = summary_lines(&env.summary_log());
    assert_eq!(
        lines.len(),
        24,
        "pre-job and post-job each log one line per task"
    );
    env.run(&["verify", "--all"]).ok();
    assert!(
        env.stray_files().iter().all(|f| f == ".dbbackup-state"),
        "{:?}",
        env.stray_files()
    );
}

#[test]
fn hostile_job_variables_cannot_forge_summary_fields() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env("SLURM_JOB_ID", "1 status=ok\nevent=forged")
        .env("DBBACKUP_SUMMARY_LOG", env.path("log"))
        .args(["post-job", "--status", "3"])
        .output()
        .unwrap()
        .into();
    run.ok();
    let lines = summary_lines(&env.path("log"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["event"], "post-job");
    assert_eq!(lines[0]["job"], "1_status_ok_event_forged");
}

#[test]
fn periodic_is_silent_when_nothing_is_due_and_logs_backups_and_problems() {
    let env = Env::new();
    let log = env.summary_log();
    let first = env.run(&["periodic"]);
    first.ok();
    assert_eq!(first.stdout, "");
    assert_eq!(env.backup_files().len(), 1);
    let lines = summary_lines(&log);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["event"], "periodic");
    assert_eq!(lines[0]["healthy"], "true");
    env.run(&["periodic"]).ok();
    assert_eq!(summary_lines(&log).len(), 1, "nothing done, nothing logged");
    fs::write(env.path("dbbackup.yaml"), "check:\n  min_count: 3\n").unwrap();
    let unhealthy = env.run(&["periodic"]);
    assert_eq!(unhealthy.code, 1);
    let lines = summary_lines(&log);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["status"], "failed");
    assert!(lines[1]["problems"].contains("count"), "{:?}", lines[1]);
}

#[test]
fn summary_appends_a_line_about_the_backup_set() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let log = env.path("custom/summary.log");
    env.run(&["summary", "--log", log.to_str().unwrap()]).ok();
    let lines = summary_lines(&log);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["event"], "summary");
    assert_eq!(lines[0]["count"], "1");
    assert_eq!(lines[0]["newest"], env.backup_files()[0]);
}

/// `count`, `failed`, `pre_restore` and `unusable` count this database's backup
/// files, each once, and `total_size` is exactly their bytes (it used to add
/// pre-restore copies and diffs without a base that no count included).
#[test]
fn summary_counts_and_total_size_cover_the_same_files() {
    let env = Env::empty();
    // Large enough that one changed row makes a diff, not a full backup.
    make_ledger_db(&env.db, 5000, false);
    let change = |n: i64| {
        rusqlite::Connection::open(&env.db)
            .unwrap()
            .execute("INSERT INTO ledger (amount, note) VALUES (?1, 'x')", [n])
            .unwrap();
    };
    let diffs = ["--diff-backups", "1"];
    env.run(&[&["backup"][..], &diffs].concat()).ok();
    let base = env.backup_files()[0].clone();
    change(1);
    env.run(&[&["backup"][..], &diffs].concat()).ok();
    change(2);
    env.run(&[&["backup"][..], &diffs].concat()).ok();
    change(3);
    env.run(&["restore", "latest"]).ok();
    // The first diff's base is gone: a restore point that cannot be restored.
    fs::remove_file(env.backups.join(&base)).unwrap();
    let files = env.backup_files();
    assert_eq!(files.len(), 3, "diff, full, pre-restore copy: {files:?}");
    let log = env.path("summary.log");
    env.run(&["summary", "--log", log.to_str().unwrap()]).ok();
    let line = summary_lines(&log).pop().unwrap();
    let number = |key: &str| -> u64 {
        line.get(key).map_or(0, |v| {
            v.parse().unwrap_or_else(|_| panic!("{key}: {line:?}"))
        })
    };
    assert_eq!(
        (
            number("count"),
            number("unusable"),
            number("pre_restore"),
            number("failed")
        ),
        (1, 1, 1, 0),
        "{line:?}"
    );
    assert_eq!(
        number("count") + number("unusable") + number("pre_restore") + number("failed"),
        files.len() as u64,
        "{line:?}"
    );
    let bytes: u64 = files
        .iter()
        .map(|f| fs::metadata(env.backups.join(f)).unwrap().len())
        .sum();
    assert_eq!(number("total_size"), bytes, "{line:?}");
}

#[test]
fn check_reports_in_text_json_and_nagios() {
    let env = Env::empty();
    make_ledger_db(&env.db, 3000, false);
    let empty = env.run(&["check", "--format", "nagios"]);
    assert_eq!(empty.code, 2, "CRITICAL without backups: {}", empty.stdout);
    assert!(empty.stdout.starts_with("DBBACKUP CRITICAL - "));
    // Before the first backup the directory does not exist: said, so that a
    // mistyped --backup-dir does not read like "backups stopped".
    assert!(
        empty.stdout.contains("backup directory") && empty.stdout.contains("does not exist"),
        "{}",
        empty.stdout
    );
    env.run(&["check"]).reported(1, "FAIL age: no good backup");
    env.run(&["backup"]).ok();
    let ok = env.run(&["check", "--format", "nagios"]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert!(
        ok.stdout.starts_with("DBBACKUP OK - ") && ok.stdout.contains(" | 'age'="),
        "{}",
        ok.stdout
    );
    assert_eq!(ok.stdout.lines().count(), 1);
    let text = env.run(&["check"]);
    text.ok();
    assert_eq!(
        text.stdout.lines().count(),
        6,
        "one line per criterion (age, count, shrink, last, database, attempt): {}",
        text.stdout
    );
    let json = env.run(&["check", "--format", "json", "--min-count", "2"]);
    assert_eq!(json.code, 1);
    assert_eq!(json.json()["healthy"], false);
    // Freshness comes from the recorded creation time, not the file's mtime.
    let backup = env.newest_backup();
    let old = fs::File::options().write(true).open(&backup).unwrap();
    old.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    env.run(&["check", "--max-age", "1h"]).ok();
    // Changed since (unchanged, an old backup is no failure: check_truth).
    add_row_ledger(&env.db);
    backdate(&backup, std::time::Duration::from_secs(7200));
    env.run(&["check", "--max-age", "1h"])
        .reported(1, "FAIL age");
    env.run(&["check", "--max-age", "3h"]).ok();
    // A sudden shrink is a warning.
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch("DELETE FROM ledger; UPDATE counter SET n = 0; VACUUM;")
        .unwrap();
    env.run(&["backup", "--force"]).ok();
    let shrunk = env.run(&["check", "--format", "nagios"]);
    assert_eq!(shrunk.code, 1, "WARNING: {}", shrunk.stdout);
    assert!(shrunk.stdout.contains("shrink"), "{}", shrunk.stdout);
    let free = env.run(&["check", "--min-free", "1000T"]);
    assert!(free.stdout.contains("FAIL free"), "{}", free.stdout);
    let unknown = env.run(&["check", "--format", "nagios", "--max-age", "soon"]);
    assert_eq!(unknown.code, 3);
    assert!(
        unknown.stdout.starts_with("DBBACKUP UNKNOWN - "),
        "{}",
        unknown.stdout
    );
}

#[test]
fn mirrors_get_verified_copies_and_their_own_retention() {
    let env = Env::new();
    let (m1, m2) = (env.path("mirror1"), env.path("mirror2"));
    let mirrors = [
        "--mirror-dir",
        m1.to_str().unwrap(),
        "--mirror-dir",
        m2.to_str().unwrap(),
    ];
    for _ in 0..3 {
        let mut args = vec!["backup", "--force", "--max-backups", "2"];
        args.extend(mirrors);
        env.run(&args).ok();
    }
    let primary = env.backup_files();
    assert_eq!(primary.len(), 2);
    for mirror in [&m1, &m2] {
        for name in &primary {
            assert_eq!(
                fs::read(mirror.join(name)).unwrap(),
                fs::read(env.backups.join(name)).unwrap()
            );
        }
        let count = backup_files_in(mirror).len();
        assert_eq!(count, 2, "retention ran on the mirror");
    }
    let mut args = vec!["check"];
    args.extend(mirrors);
    let check = env.run(&args);
    check.ok();
    assert!(check.stdout.contains("mirror:"), "{}", check.stdout);
    // A mirror that cannot be written: exit 1, primary kept.
    let blocked = env.path("blocked");
    fs::write(&blocked, "a file").unwrap();
    let run = env.run(&[
        "backup",
        "--force",
        "--mirror-dir",
        blocked.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("MIRROR FAILED"), "{}", run.stdout);
    assert_eq!(env.backup_files().len(), 3);
    env.run(&["verify"]).ok();
}
