//! Issue 18's new-user trial: "latest", "unchanged" and the newest attempt go by
//! the order of publication and of writing, not by the clocks of the nodes; a
//! newest backup whose metadata cannot be read is not invisible; a damaged
//! pre-restore copy never pushes out an intact one.

use std::fs;

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

fn skip_without_faketime() -> bool {
    !have_or_skip("faketime")
}

fn table_db(env: &Env) {
    sql(env, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
}

/// A test's directory whose database is table `t` holding 1.
fn table_env() -> Env {
    let env = Env::empty();
    table_db(&env);
    env
}

/// Table `t` holding 0, padded with incompressible pages, so that a few
/// hundred bytes cut from a backup land in its data, past the header.
fn padded_table_db(env: &Env) {
    sql(
        env,
        "CREATE TABLE t(x); INSERT INTO t VALUES (0); CREATE TABLE pad(b); INSERT INTO pad VALUES (randomblob(100000));",
    );
}

/// `dbbackup ARGS` on the test's database with `backup_dir` as its backup directory.
fn in_backup_dir(env: &Env, backup_dir: &std::path::Path, args: &[&str]) -> Run {
    env.command()
        .env("DBBACKUP_BACKUP_DIR", backup_dir)
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn latest_is_the_backup_published_last_even_when_a_fast_clock_dated_it() {
    if skip_without_faketime() {
        return;
    }
    let env = table_env();
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
    let env = table_env();
    faketime(&env, "+10m", &["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    env.run(&["backup", "-q"]).ok();
    fs::remove_file(&env.db).unwrap();
    env.run(&["restore", "latest", "--if-db-missing"]).ok();
    assert_eq!(max_x(&env.db), 2);
}

/// A success recorded by a fast clock, then a lock timeout on a correct one.
fn failure_after_fast_success(offset: &str) -> Env {
    let env = table_env();
    env.run(&["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    faketime(&env, offset, &["backup", "--force", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (3)");
    let holder = hold_dir_lock(&env.lock_file(), "host=n9 pid=1 job=9");
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
    let env = table_env();
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
        truncate_to(&newest, cut);
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
    padded_table_db(&env);
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
    cut_tail(&path, 500);
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
    let env = table_env();
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
    padded_table_db(&env);
    let mirror = env.path("mirror");
    let with_mirror = ["--mirror-dir", mirror.to_str().unwrap()];
    let mut args = with_mirror.to_vec();
    args.extend(["backup", "-q"]);
    env.run(&args).ok();
    let name = env.backup_files()[0].clone();
    let copy = mirror.join(&name);
    cut_tail(&copy, 500);
    let mut args = with_mirror.to_vec();
    args.push("check");
    let check = env.run(&args);
    let last = check
        .stdout
        .lines()
        .find(|line| line.contains(":last:"))
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert!(
        !last.contains(&format!("newest snapshot {name} passed")),
        "{}",
        check.stdout
    );
    // `last` judges the database at that moment; `restorable` fails the copy.
    assert!(
        last.contains("the database passed its quick_check"),
        "{last}"
    );
    assert!(
        check.stdout.contains(&format!(
            "FAIL mirror:{}:restorable: newest restore point {name} cannot be restored",
            mirror.display()
        )),
        "{}",
        check.stdout
    );
}

#[test]
fn a_success_whose_backup_was_deleted_is_no_success() {
    let env = table_env();
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

#[test]
fn a_failure_on_a_read_only_backup_dir_outranks_a_fast_clocks_older_success() {
    if skip_without_faketime() {
        return;
    }
    let env = Env::empty();
    let Some(disk) = crate::full_disk::Tmpfs::mount(&env.backups, "3m") else {
        return;
    };
    table_db(&env);
    env.run(&["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (4)");
    faketime(&env, "+30s", &["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (5)");
    disk.remount_read_only();
    let failed = env.run(&["backup"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    // The failure went beside the database; the success's record in the
    // read-only directory could not be removed: the failure is the newer.
    env.run(&["check"])
        .reported(1, "FAIL attempt: newest attempt (manual");
    disk.remount_read_write();
}

fn restored_max(env: &Env, backup_dir: &std::path::Path, target: &str) -> i64 {
    let target = env.path(target);
    in_backup_dir(
        env,
        backup_dir,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .ok();
    max_x(&target)
}

#[test]
fn after_the_primary_is_lost_the_mirror_ranks_the_new_backups_newest() {
    let env = Env::empty();
    let mirror = env.path("mirror");
    let mirrored = |args: &[&str]| {
        let mut command = env.command();
        command.arg("--mirror-dir").arg(&mirror).args(args);
        Run::from(command.output().unwrap())
    };
    table_db(&env);
    sql(&env, "INSERT INTO t VALUES (2)");
    for row in 3..=4 {
        mirrored(&["backup", "-q"]).ok();
        wait_for_the_next_second();
        sql(&env, &format!("INSERT INTO t VALUES ({row})"));
    }
    mirrored(&["backup", "-q"]).ok();
    // The primary is lost (a purged scratch directory); the mirror keeps 1..4.
    fs::remove_dir_all(&env.backups).unwrap();
    for row in 5..=6 {
        wait_for_the_next_second();
        sql(&env, &format!("INSERT INTO t VALUES ({row})"));
        mirrored(&["backup", "-q"]).ok();
    }
    assert_eq!(restored_max(&env, &mirror, "from-mirror.db"), 6);
    assert_eq!(restored_max(&env, &env.backups, "from-primary.db"), 6);
    // The mirror's retention keeps the newest: 2 of them hold 5 and 6.
    in_backup_dir(&env, &mirror, &["prune", "--max-backups", "2"]).ok();
    assert_eq!(restored_max(&env, &mirror, "pruned-mirror.db"), 6);
}

#[test]
fn two_databases_sharing_a_mirror_never_overwrite_each_others_copies() {
    let a = Env::empty();
    let b = Env::empty();
    let mirror = a.path("mirror");
    let backup = |env: &Env| {
        let mut command = env.command();
        command.arg("--mirror-dir").arg(&mirror).arg("backup");
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let from_mirror = |env: &Env, target: &str| {
        let _ = fs::remove_file(env.path(target));
        restored_max(env, &mirror, target)
    };
    table_db(&a);
    table_db(&b);
    let mut collided = 0;
    for round in 1..=6_i64 {
        sql(&a, &format!("INSERT INTO t VALUES ({})", 100 + round));
        sql(
            &b,
            &format!(
                "INSERT INTO t VALUES ({}); INSERT INTO t VALUES (0)",
                200 + round
            ),
        );
        wait_for_the_next_second();
        // Sequential in one second, then both at once.
        let runs: Vec<Run> = if round % 2 == 1 {
            let first: Run = backup(&a).wait_with_output().unwrap().into();
            let second: Run = backup(&b).wait_with_output().unwrap().into();
            vec![first, second]
        } else {
            let (x, y) = (backup(&a), backup(&b));
            vec![
                x.wait_with_output().unwrap().into(),
                y.wait_with_output().unwrap().into(),
            ]
        };
        if a.backup_files().last() == b.backup_files().last() {
            collided += 1;
        }
        for (env, run, row) in [(&a, &runs[0], 100 + round), (&b, &runs[1], 200 + round)] {
            if run.code == 0 {
                assert_eq!(from_mirror(env, "restored.db"), row, "round {round}");
            } else {
                // The clash is reported, never an overwrite.
                run.reported(1, "MIRROR FAILED");
                run.reported(1, "is already there and is not a copy of this backup");
                env.run(&["--mirror-dir", mirror.to_str().unwrap(), "check"])
                    .reported(1, "FAIL mirror:");
            }
        }
        // Each database's copies in the mirror are its own.
        for (env, own) in [(&a, 100), (&b, 200)] {
            let restored = from_mirror(env, "own.db");
            assert!(
                (own..own + 100).contains(&restored),
                "round {round}: {restored}"
            );
        }
    }
    eprintln!("primaries' newest names collided in {collided} of 6 rounds");
}

/// What the seed's `backup_database.py auto` still writes, `ago` before now.
fn seed_backup_made(env: &Env, ago: jiff::SignedDuration) -> String {
    let name = seed_backup_name(jiff::Timestamp::now() - ago, &jiff::tz::TimeZone::system());
    seed_backup(&env.db, &env.backups, &name);
    name
}

#[test]
fn seed_script_backups_made_today_are_newer_than_dbbackups_of_days_ago() {
    if skip_without_faketime() {
        return;
    }
    let env = table_env();
    faketime(&env, "-3d", &["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    faketime(&env, "-2d", &["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (3)");
    let older = seed_backup_made(&env, jiff::SignedDuration::from_mins(60));
    sql(&env, "INSERT INTO t VALUES (4)");
    let newest = seed_backup_made(&env, jiff::SignedDuration::from_mins(10));
    // The config file gives the directory to the database: the seed's are its own.
    env.run_configured(&["restore", "latest", "--target", "latest.db"])
        .ok();
    assert_eq!(max_x(&env.path("latest.db")), 4, "the seed's newest backup");
    env.run_configured(&["prune", "--max-backups", "2"]).ok();
    assert_eq!(
        env.backup_files(),
        vec![older, newest],
        "today's two are kept"
    );
}

#[test]
fn templates_refuse_an_output_or_project_directory_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let env = table_env();
    let odd = std::ffi::OsStr::from_bytes(b"t\xff");
    let run: Run = env
        .command()
        .args(["templates", "--out"])
        .arg(odd)
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "templates output directory");
    assert!(run.stderr.contains("is not valid UTF-8"), "{}", run.stderr);
    assert!(!env.root.path().join(odd).exists(), "nothing written");
    let project = env.root.path().join(odd);
    fs::create_dir(&project).unwrap();
    let run: Run = env
        .command()
        .current_dir(&project)
        .args(["templates", "--out", "slurm"])
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "project directory");
    assert!(!project.join("slurm").exists(), "nothing written");
}

#[test]
fn auto_says_a_backup_a_few_minutes_ahead_is_in_the_future_not_0s_old() {
    if skip_without_faketime() {
        return;
    }
    let env = table_env();
    faketime(&env, "+4m", &["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    let run = env.run(&["auto"]);
    run.ok();
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("in the future"), "{said}");
    assert!(!said.contains("0s old"), "{said}");
}

#[test]
fn list_shows_first_the_backup_latest_means() {
    if skip_without_faketime() {
        return;
    }
    let env = table_env();
    env.run(&["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (2)");
    faketime(&env, "+200d", &["backup", "-q"]).ok();
    sql(&env, "INSERT INTO t VALUES (3)");
    env.run(&["backup", "-q"]).ok();
    let list = env.run(&["list", "--format", "json"]);
    list.ok();
    let first = list.json()[0]["name"].as_str().unwrap().to_string();
    env.run(&["restore", "latest", "--target", "latest.db"])
        .ok();
    assert_eq!(max_x(&env.path("latest.db")), 3);
    assert!(!first.starts_with("backup_2027"), "{first}");
    assert_eq!(
        first,
        env.backup_files()
            .into_iter()
            .rfind(|n| !n.starts_with("backup_2027"))
            .unwrap()
    );
}

/// T26 #6: a mirror copy cut inside its metadata header (`truncate -s 4000`)
/// was taken for another database's backup of the same name: never replaced,
/// every run failed ("backup ... published; mirror failed") while `check`
/// said the next backup would copy it. It is a prefix of the primary's file:
/// the next run replaces it.
#[test]
fn a_mirror_copy_cut_inside_its_header_is_replaced() {
    let env = Env::empty();
    padded_table_db(&env);
    let mirror = env.path("mirror");
    let run = |what: &[&str]| {
        let mut args = vec!["--mirror-dir", mirror.to_str().unwrap()];
        args.extend(what);
        env.run(&args)
    };
    run(&["backup", "-q"]).ok();
    let name = env.backup_files()[0].clone();
    let copy = mirror.join(&name);
    let primary = fs::read(env.backups.join(&name)).unwrap();
    // Cut inside its header; zeros of the right size; a byte flipped in its
    // data, found by `verify` of the mirror (T26b #3).
    for damage in ["cut", "zeros", "flipped"] {
        match damage {
            "cut" => fs::write(&copy, &primary[..4000]).unwrap(),
            "zeros" => fs::write(&copy, vec![0u8; primary.len()]).unwrap(),
            _ => {
                flip_middle(&copy);
                env.run(&["--backup-dir", mirror.to_str().unwrap(), "verify", "--all"])
                    .reported(1, "FAILED");
            }
        }
        run(&["check"]).reported(1, "the next backup, auto or periodic copies it");
        // The database is unchanged: the run fills the mirror in.
        let backup = run(&["backup"]);
        backup.ok();
        assert!(
            backup.stdout.contains("unchanged"),
            "{damage}: {}",
            backup.stdout
        );
        assert_eq!(fs::read(&copy).unwrap(), primary, "{damage}");
        run(&["check"]).ok();
    }
}
