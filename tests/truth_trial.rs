//! Issue 18's new-user trial: "latest", "unchanged" and the newest attempt go by
//! the order of publication and of writing, not by the clocks of the nodes; a
//! newest backup whose metadata cannot be read is not invisible; a damaged
//! pre-restore copy never pushes out an intact one.

use std::fs;
use std::process::Command;

use rusqlite::Connection;

use crate::common::*;

fn sql(env: &Env, statements: &str) {
    Connection::open(&env.db)
        .unwrap()
        .execute_batch(statements)
        .unwrap();
}

fn max_x(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT max(x) FROM t", [], |row| row.get(0))
        .unwrap()
}

/// `dbbackup args` under a clock `offset` away (`faketime -f +10m`).
fn faketime(env: &Env, offset: &str, args: &[&str]) -> Run {
    let command = env.command();
    let program = command.get_program().to_owned();
    let mut wrapped = Command::new("faketime");
    wrapped.current_dir(env.root.path());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
        .args(["-f", offset])
        .arg(program)
        .args(args)
        .output()
        .unwrap()
        .into()
}

fn skip_without_faketime() -> bool {
    let missing = !have("faketime");
    if missing {
        eprintln!("SKIPPED: faketime is not installed");
    }
    missing
}

fn table_db(env: &Env) {
    sql(env, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
}

#[test]
fn latest_is_the_backup_published_last_even_when_a_fast_clock_dated_it() {
    if skip_without_faketime() {
        return;
    }
    let env = Env::empty();
    table_db(&env);
    env.run(&["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    faketime(&env, "+10m", &["backup", "-q"]).ok();
    // "Unchanged" compares with the backup published last: it holds this state.
    let files = env.backup_files();
    env.run(&["backup"]).ok();
    assert_eq!(env.backup_files(), files, "a duplicate of the newest");
    fs::remove_file(&env.db).unwrap();
    env.run(&["restore", "latest", "--if-db-missing"]).ok();
    assert_eq!(max_x(&env.db), 2, "the newer content, not the older");
}

#[test]
fn latest_is_the_backup_published_last_after_a_fast_clock_made_an_older_one() {
    if skip_without_faketime() {
        return;
    }
    let env = Env::empty();
    table_db(&env);
    faketime(&env, "+10m", &["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    env.run(&["backup", "-q"]).ok();
    fs::remove_file(&env.db).unwrap();
    env.run(&["restore", "latest", "--if-db-missing"]).ok();
    assert_eq!(max_x(&env.db), 2);
}

/// A success recorded by a fast clock, then a lock timeout on a correct one.
fn failure_after_fast_success(offset: &str) -> Env {
    let env = Env::empty();
    table_db(&env);
    env.run(&["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    faketime(&env, offset, &["backup", "--force", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (3)");
    let holder = hold_dir_lock(&env.backups.join(".dbbackup.lock"), "host=n9 pid=1 job=9");
    env.run(&["backup", "--lock-timeout-seconds", "1"])
        .failed_with(1, "still locked by");
    drop(holder);
    env
}

#[test]
fn a_failure_after_a_success_recorded_by_a_fast_clock_is_the_newest_attempt() {
    if skip_without_faketime() {
        return;
    }
    for offset in ["+200d", "+4m"] {
        let env = failure_after_fast_success(offset);
        let check = env.run(&["check"]);
        check.reported(1, "FAIL attempt: newest attempt (manual");
        assert!(
            check.stdout.contains("still locked by"),
            "{offset}: {}",
            check.stdout
        );
        // Healthy again after the next success (the clock warning stays).
        env.run(&["backup", "-q"]).ok();
        let check = env.run(&["check"]);
        assert!(
            check
                .stdout
                .contains("OK   attempt: newest attempt (manual"),
            "{offset}: {}",
            check.stdout
        );
    }
}

#[test]
fn an_attempt_dated_in_the_future_is_not_said_to_be_0s_ago() {
    if skip_without_faketime() {
        return;
    }
    let env = Env::empty();
    table_db(&env);
    faketime(&env, "+200d", &["backup", "-q"]).ok();
    let check = env.run(&["check"]);
    assert!(
        check.stdout.contains("attempt: newest attempt (manual")
            && check.stdout.contains("in the future"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("0s ago"), "{}", check.stdout);
}

#[test]
fn a_newest_backup_truncated_inside_its_header_makes_check_critical() {
    for cut in [0u64, 5000] {
        let env = Env::empty();
        sql(&env, "CREATE TABLE t(x); INSERT INTO t VALUES (0);");
        env.run(&["backup", "-q"]).ok();
        sql(&env, "INSERT INTO t VALUES (1)");
        env.run(&["backup", "-q"]).ok();
        let newest = env.newest_backup();
        let name = newest.file_name().unwrap().to_str().unwrap().to_string();
        fs::OpenOptions::new()
            .write(true)
            .open(&newest)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let nagios = env.run(&["check", "--format", "nagios"]);
        assert_eq!(nagios.code, 2, "cut {cut}: {}", nagios.stdout);
        assert!(
            nagios.stdout.starts_with("DBBACKUP CRITICAL") && nagios.stdout.contains(&name),
            "cut {cut}: {}",
            nagios.stdout
        );
        let check = env.run(&["check"]);
        check.reported(1, "FAIL unreadable: ");
        // The success that made it is no success now.
        check.reported(1, "FAIL attempt: ");
        assert!(
            check
                .stdout
                .contains(&format!("its backup {name} cannot be restored")),
            "{}",
            check.stdout
        );
        let summary = env.run(&["summary"]);
        summary.ok();
        let line = parse_logfmt(summary.stdout.trim()).unwrap();
        assert_eq!(line["unusable"], "1", "{}", summary.stdout);
        assert_eq!(line["healthy"], "false", "{}", summary.stdout);
        // A good backup newer than it: healthy again, the file kept as evidence.
        env.run(&["backup", "-q"]).ok();
        env.run(&["check"]).ok();
        assert!(newest.exists());
    }
}

#[test]
fn a_damaged_pre_restore_copy_never_pushes_out_an_intact_one() {
    let env = Env::empty();
    // Incompressible pages: 500 bytes cut from a copy land in its data.
    sql(
        &env,
        "CREATE TABLE t(x); INSERT INTO t VALUES (0); CREATE TABLE pad(b); INSERT INTO pad VALUES (randomblob(100000));",
    );
    env.run(&["backup", "-q"]).ok();
    let b0 = env.backup_files()[0].clone();
    let keep = ["--keep-pre-restore", "2"];
    let restore = |row: i64| {
        sql(&env, &format!("INSERT INTO t VALUES ({row})"));
        let mut args = vec!["restore", b0.as_str(), "-q"];
        args.extend_from_slice(&keep);
        env.run(&args).ok();
        let rows = listed(&env);
        let mut copies: Vec<String> = rows
            .iter()
            .filter(|(_, row)| row["kind"] == "pre-restore")
            .map(|(name, _)| name.clone())
            .collect();
        copies.sort();
        copies
    };
    let first = restore(1);
    let copies = restore(2);
    assert_eq!(copies.len(), 2, "{copies:?}");
    let p1 = first[0].clone();
    let p2 = copies.iter().find(|c| **c != p1).unwrap().clone();
    let path = env.backups.join(&p2);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 500)
        .unwrap();
    restore(3);
    assert!(
        env.backups.join(&p1).exists(),
        "the intact copy P1 (holding row 1) is kept: {:?}",
        env.backup_files()
    );
    let out = env.path("p1.db");
    env.run(&["restore", &p1, "--target", out.to_str().unwrap()])
        .ok();
    assert_eq!(max_x(&out), 1);
}

#[test]
fn a_base_found_damaged_through_one_diff_is_not_blamed_on_that_diff_in_the_others() {
    let env = Env::empty();
    fs::create_dir_all(&env.backups).unwrap();
    fs::write(
        env.path("dbbackup.yaml"),
        "diff_backups: 5\nmax_backups: 10\n",
    )
    .unwrap();
    make_results_db(&env.db, 2.0, false);
    let mut made = Vec::new();
    for n in 0..3 {
        sql(
            &env,
            &format!("CREATE TABLE IF NOT EXISTS touched(n); INSERT INTO touched VALUES ({n});"),
        );
        env.run(&["backup", "-q"]).ok();
        made.push(env.backup_files().last().unwrap().clone());
    }
    let (base, first, second) = (&made[0], &made[1], &made[2]);
    assert!(
        first.ends_with(".diff.gz") && second.ends_with(".diff.gz"),
        "{made:?}"
    );
    // One byte flipped in the middle of the base's data, its mtime kept.
    let path = env.backups.join(base);
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let verify = env.run(&["verify", second]);
    assert_ne!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let rows = listed(&env);
    let note = rows[first]["restore_problem"].as_str().unwrap_or_default();
    assert!(note.contains(base.as_str()), "{note}");
    assert!(
        !note.contains(second.as_str()),
        "{first}'s note names {second}: {note}"
    );
}

#[test]
fn a_backup_a_few_minutes_ahead_is_not_said_to_be_0s_old() {
    if skip_without_faketime() {
        return;
    }
    let env = Env::empty();
    table_db(&env);
    faketime(&env, "+4m", &["backup", "-q"]).ok();
    let check = env.run(&["check"]);
    check.ok();
    assert!(
        check.stdout.contains("OK   age: newest good backup")
            && check.stdout.contains("in the future"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("0s old"), "{}", check.stdout);
}

#[test]
fn last_never_praises_a_mirror_copy_the_cheap_tests_find_truncated() {
    let env = Env::empty();
    // Incompressible pages, so a cut lands in the data, past the header.
    sql(
        &env,
        "CREATE TABLE t(x); INSERT INTO t VALUES (0); CREATE TABLE pad(b); INSERT INTO pad VALUES (randomblob(100000));",
    );
    let mirror = env.path("mirror");
    let with_mirror = ["--mirror-dir", mirror.to_str().unwrap()];
    let mut args = with_mirror.to_vec();
    args.extend(["backup", "-q"]);
    env.run(&args).ok();
    let name = env.backup_files()[0].clone();
    let copy = mirror.join(&name);
    let len = fs::metadata(&copy).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_len(len - 500)
        .unwrap();
    let mut args = with_mirror.to_vec();
    args.push("check");
    let check = env.run(&args);
    let last = check
        .stdout
        .lines()
        .find(|line| line.contains(":last:"))
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert!(
        !last.ends_with(&format!("newest snapshot {name} passed its check")),
        "{}",
        check.stdout
    );
    assert!(last.contains("cannot be restored now"), "{last}");
}

#[test]
fn a_success_whose_backup_was_deleted_is_no_success() {
    let env = Env::empty();
    table_db(&env);
    env.run(&["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    env.run(&["backup", "-q"]).ok();
    let newest = env.newest_backup();
    let name = newest.file_name().unwrap().to_str().unwrap().to_string();
    fs::remove_file(&newest).unwrap();
    let check = env.run(&["check"]);
    check.reported(1, "FAIL attempt: ");
    assert!(
        check
            .stdout
            .contains(&format!("its backup {name} is now missing")),
        "{}",
        check.stdout
    );
    // The next backup (the database is not unchanged: its backup is gone).
    env.run(&["backup", "-q"]).ok();
    env.run(&["check"]).ok();
}
