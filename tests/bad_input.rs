//! Spec section 5: every bad input gets one clear line, the right exit code, and
//! leaves the backups and the database untouched.

use std::fs;
use std::io::Write;

use crate::common::*;

/// The error is one line on stderr.
fn one_error_line(run: &Run) {
    let errors: Vec<_> = run.stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error line: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn missing_database() {
    let env = Env::empty();
    let run = env.run(&["backup"]);
    run.failed_with(1, "does not exist");
    one_error_line(&run);
    assert!(env.backup_files().is_empty());
}

#[test]
fn no_database_configured_is_a_usage_error() {
    let env = Env::empty();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .arg("backup")
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "no database given");
}

#[test]
fn database_path_is_a_directory() {
    let env = Env::empty();
    fs::create_dir(&env.db).unwrap();
    env.run(&["backup"]).failed_with(1, "is a directory");
}

#[test]
fn database_is_not_sqlite() {
    let env = Env::empty();
    fs::write(
        &env.db,
        "these are not the rows you are looking for\n".repeat(100),
    )
    .unwrap();
    let run = env.run(&["backup"]);
    run.failed_with(1, "is not an SQLite database");
    one_error_line(&run);
    fs::write(&env.db, "").unwrap();
    env.run(&["backup"]).failed_with(1, "is empty");
}

/// T19 #14: the database's write-ahead log given for it (tab completion
/// stops at `results.db`, one more key gives `results.db-wal`): the error
/// names the database it belongs to.
#[test]
fn a_databases_write_ahead_log_given_for_it_names_the_database() {
    let env = Env::new();
    let writer = rusqlite::Connection::open(&env.db).unwrap();
    writer
        .execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;              INSERT INTO ledger (amount, note) VALUES (1, 'in the log')",
        )
        .unwrap();
    let wal = env.db.with_file_name(format!(
        "{}-wal",
        env.db.file_name().unwrap().to_str().unwrap()
    ));
    assert!(wal.exists());
    let run = env.run(&["--db-path", wal.to_str().unwrap(), "backup"]);
    run.failed_with(
        2,
        &format!(
            "is named like the write-ahead log SQLite keeps beside database {}: give the database itself ({})",
            env.db.file_name().unwrap().to_str().unwrap(),
            env.db.display()
        ),
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(env.backup_files().is_empty());
    // `init` does not write it into a config file, `run` does not start the
    // work without its restore point (T23 #1).
    let config = env.path("w.yaml");
    env.run(&[
        "--db-path",
        wal.to_str().unwrap(),
        "init",
        "--path",
        config.to_str().unwrap(),
    ])
    .failed_with(2, "is named like the write-ahead log");
    assert!(!config.exists());
    let marker = env.path("work-ran");
    env.run(&[
        "--db-path",
        wal.to_str().unwrap(),
        "run",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ])
    .failed_with(2, "is named like the write-ahead log");
    assert!(!marker.exists());
    drop(writer);
}

#[test]
fn backup_dir_that_is_a_file_or_cannot_be_created() {
    let env = Env::new();
    fs::write(&env.backups, "not a directory").unwrap();
    env.run(&["backup"]).failed_with(1, "not a directory");
    assert_eq!(fs::read_to_string(&env.backups).unwrap(), "not a directory");
    let below_a_file = env.backups.join("sub");
    // The file in the way is named (T26 #11).
    let message = format!(
        "backup directory {} cannot be a directory: {} is a file",
        below_a_file.display(),
        env.backups.display()
    );
    env.run(&["backup", "--backup-dir", below_a_file.to_str().unwrap()])
        .failed_with(1, &message);
    env.run(&["check", "--backup-dir", below_a_file.to_str().unwrap()])
        .failed_with(1, &message);
}

#[test]
fn missing_backup_dir_is_created_with_parents() {
    let env = Env::new();
    let deep = env.path("a/b/c");
    env.run(&["backup", "--backup-dir", deep.to_str().unwrap()])
        .ok();
    assert!(deep.is_dir());
}

#[test]
fn truncated_and_foreign_backups_fail_verify_and_restore_cleanly() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let good = env.newest_backup();
    let bytes = fs::read(&good).unwrap();
    // Truncated copy, under a later backup name.
    let truncated = env.backups.join("backup_29990101_000000.db.gz");
    fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    // Not gzip at all.
    fs::write(
        env.backups.join("backup_29990101_000001.db.gz"),
        "plain text",
    )
    .unwrap();
    // gzip holding something that is not SQLite.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&b"hello world\n".repeat(1000)).unwrap();
    fs::write(
        env.backups.join("backup_29990101_000002.db.gz"),
        gz.finish().unwrap(),
    )
    .unwrap();

    let before = content_digest(&env.db);
    for (name, needle) in [
        ("backup_29990101_000000.db.gz", "damaged"),
        ("backup_29990101_000001.db.gz", "not a gzip file"),
        (
            "backup_29990101_000002.db.gz",
            "does not hold an SQLite database",
        ),
    ] {
        let run = env.run(&["verify", name]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stdout.contains(needle), "{name}: {}", run.stdout);
        let run = env.run(&["restore", name]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
    }
    assert_eq!(content_digest(&env.db), before);
    assert_eq!(fs::read(&good).unwrap(), bytes, "good backup untouched");
    // list shows every file and says which it cannot read, without failing.
    let list = env.run(&["list"]);
    list.ok();
    assert!(list.stdout.contains("unknown"), "{}", list.stdout);
    // verify --all reports every damaged file and fails; the good one still passes.
    let all = env.run(&["verify", "--all"]);
    assert_eq!(all.code, 1, "{}", all.stderr);
    for name in [
        "backup_29990101_000000.db.gz",
        "backup_29990101_000001.db.gz",
        "backup_29990101_000002.db.gz",
    ] {
        assert!(all.stdout.contains(name), "{name}: {}", all.stdout);
    }
    let run = env.run(&["verify", env.backup_files()[0].as_str()]);
    run.ok();
}

#[test]
fn a_backup_name_planted_as_a_symlink_is_not_followed() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let secret = env.path("secret.txt");
    fs::write(&secret, "secret").unwrap();
    std::os::unix::fs::symlink(&secret, env.backups.join("backup_29990101_000000.db.gz")).unwrap();
    let run = env.run(&["restore", "backup_29990101_000000.db.gz"]);
    assert_ne!(run.code, 0);
    assert_eq!(fs::read_to_string(&secret).unwrap(), "secret");
}

/// A usage error is one line on stderr (what is wrong, a similar name if
/// any, where the help is), exit 2: no usage block, no "For more information".
#[test]
fn usage_errors_are_one_line_with_exit_code_2() {
    let env = Env::new();
    for (args, says) in [
        (
            vec!["summary", "--formt", "json"],
            "did you mean '--format'?",
        ),
        (vec!["bakup"], "did you mean 'backup'?"),
        (
            vec!["restore"],
            "dbbackup restore needs NAME: a backup file name from 'dbbackup list', or 'latest'",
        ),
        (
            vec!["list", "--format", "xml"],
            "[possible values: text, json]",
        ),
        (vec!["--max-backups", "x", "list"], "'x' is not a number"),
        (vec!["backup", "--force=3"], "unexpected value '3'"),
        (vec!["completions"], "needs SHELL: one of bash,"),
    ] {
        let run = env.run(&args);
        run.failed_with(2, says);
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{args:?}: one line\n{}",
            run.stderr
        );
        assert!(
            run.stderr.starts_with("error: "),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// `post-job --status` is a shell's `$?`: 0-255 (a signal is 128+N), in the
/// user's words, not Rust's parse error.
#[test]
fn post_job_status_is_an_exit_status_0_to_255() {
    let env = Env::new();
    for status in ["abc", "-1", "300", "+3", " 3", ""] {
        let run = env.run(&["post-job", "--status", status]);
        run.failed_with(
            2,
            &format!("'{status}' is not an exit status: a whole number from 0 to 255"),
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(!run.stderr.contains("digit"), "{}", run.stderr);
    }
    assert!(env.backup_files().is_empty());
    env.run(&["post-job", "--status", "143"]).ok();
    let log = fs::read_to_string(env.path("slrm_logs/backup_summary.log")).unwrap_or_default();
    assert!(log.contains("exit_status=143"), "{log}");
}

/// A bad value from a `DBBACKUP_*` variable is named by that variable, the
/// one the user set; from the flag, by the flag.
#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env("DBBACKUP_MAX_BACKUPS", "x")
        .arg("list")
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "invalid value 'x' for DBBACKUP_MAX_BACKUPS");
    let run: Run = env
        .command()
        .env("DBBACKUP_CHECK_MIN_COUNT", "-3")
        .arg("check")
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "DBBACKUP_CHECK_MIN_COUNT");
    // The flag given: the flag is what is wrong (the variable is not used).
    let run: Run = env
        .command()
        .env("DBBACKUP_MAX_BACKUPS", "x")
        .args(["--max-backups", "y", "list"])
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "invalid value 'y' for '--max-backups <N>'");
    assert!(
        !run.stderr.contains("DBBACKUP_MAX_BACKUPS"),
        "{}",
        run.stderr
    );
}

/// A path setting's bad value is named by where it came from: the variable
/// when only the variable was set, the flag when the flag was given.
#[test]
fn a_bad_path_from_the_environment_names_only_the_variable() {
    let env = Env::new();
    for (variable, flag) in [
        ("DBBACKUP_DB_PATH", "--db-path"),
        ("DBBACKUP_BACKUP_DIR", "--backup-dir"),
        ("DBBACKUP_MIRROR_DIRS", "--mirror-dir"),
        ("DBBACKUP_CONFIG", "--config"),
    ] {
        let run: Run = env
            .command()
            .env(variable, "$USER/x")
            .arg("backup")
            .output()
            .unwrap()
            .into();
        run.failed_with(
            2,
            &format!(
                "{variable} contains shell syntax `$USER`; dbbackup does not expand it: write the path"
            ),
        );
        assert!(!run.stderr.contains(flag), "{}", run.stderr);
        let run = env.run(&[flag, "$USER/y", "backup"]);
        run.failed_with(2, &format!("{flag} contains shell syntax `$USER`;"));
        assert!(!run.stderr.contains(variable), "{}", run.stderr);
    }
    assert!(env.backup_files().is_empty());
}

/// `--mirror-dir ''` is refused as `--db-path ''` is (it was dropped without a
/// word); an empty `DBBACKUP_MIRROR_DIRS` still means unset.
#[test]
fn an_empty_mirror_flag_is_refused_an_empty_variable_is_unset() {
    let env = Env::new();
    for value in ["", "m:"] {
        let run = env.run(&["--mirror-dir", value, "backup"]);
        run.failed_with(
            2,
            "invalid value '' for '--mirror-dir <DIR>': a mirror directory must not be empty",
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    assert!(env.backup_files().is_empty());
    let run: Run = env
        .command()
        .env("DBBACKUP_MIRROR_DIRS", "")
        .arg("backup")
        .output()
        .unwrap()
        .into();
    run.ok();
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
}

/// A misspelled `DBBACKUP_*` variable is warned about once, with the close
/// name, and does not fail the command (another tool may own the prefix).
#[test]
fn a_misspelled_variable_is_warned_about_with_the_close_name() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env("DBBACKUP_MAX_BACKUP", "3")
        .arg("backup")
        .output()
        .unwrap()
        .into();
    run.ok();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].ends_with(
            "DBBACKUP_MAX_BACKUP is not a dbbackup variable (did you mean DBBACKUP_MAX_BACKUPS?); ignored"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(env.backup_files().len(), 1);
}

/// A variable named after a setting but not its variable (`DBBACKUP_MAX_AGE`
/// for `check`'s `DBBACKUP_CHECK_MAX_AGE`) was ignored without a word, so
/// `check` said OK against the default: each is named with the variable meant.
/// (Other names: `cli_finish::every_unknown_dbbackup_variable_is_named_and_the_test_suites_are_not`.)
#[test]
fn a_variable_named_after_a_setting_names_the_variable_meant() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let mut command = env.command();
    for (given, _) in MEANT {
        command.env(given, "1");
    }
    command.env("DBBACKUP_FINAL_SCRIPT", "x");
    let run: Run = command.arg("list").output().unwrap().into();
    run.ok();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), MEANT.len(), "{}", run.stderr);
    for (given, meant) in MEANT {
        let line = format!("{given} is not a dbbackup variable (did you mean {meant}?); ignored");
        assert!(run.stderr.contains(&line), "{line}\n{}", run.stderr);
    }
}

const MEANT: [(&str, &str); 5] = [
    ("DBBACKUP_MAX_AGE", "DBBACKUP_CHECK_MAX_AGE"),
    ("DBBACKUP_MIN_COUNT", "DBBACKUP_CHECK_MIN_COUNT"),
    ("DBBACKUP_MIRROR", "DBBACKUP_MIRROR_DIRS"),
    ("DBBACKUP_DIR", "DBBACKUP_BACKUP_DIR"),
    ("DBBACKUP_DB", "DBBACKUP_DB_PATH"),
];

/// A path that starts with `-` is taken where it cannot be an option
/// (`--db-path '- x.db'`); one that reads as an option is a missing value,
/// said in one line with the `=` form that gives it.
#[test]
fn a_path_that_starts_with_a_dash() {
    let env = Env::empty();
    make_ledger_db(&env.path("- x.db"), 20, false);
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .args(["--db-path", "- x.db", "backup"])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert_eq!(env.backup_files().len(), 1);
    let run = env.run(&["--db-path", "--max-backups", "3", "list"]);
    run.failed_with(
        2,
        "--db-path needs a value, but '--max-backups' is an option",
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let run = env.run(&["restore", "latest", "--target", "-q"]);
    run.failed_with(2, "write --target=-q");
    // The `=` form takes the value as it is.
    make_ledger_db(&env.path("-q"), 20, false);
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .args(["--db-path=-q", "backup"])
        .output()
        .unwrap()
        .into();
    run.ok();
}

/// The work `run` runs has its own arguments: dbbackup's checks of its own
/// (an option where a path belongs, a flag overriding its variable) leave
/// them alone.
#[test]
fn the_work_of_run_keeps_its_own_arguments() {
    let env = Env::new();
    let run = env.run(&["run", "echo", "--db-path", "-q", "--max-backups", "x"]);
    run.ok();
    assert_eq!(run.stdout.trim(), "--db-path -q --max-backups x");
    // A bad variable is still dbbackup's: the work's `--max-backups` is not
    // the flag that would override it.
    let run: Run = env
        .command()
        .env("DBBACKUP_MAX_BACKUPS", "x")
        .args(["run", "echo", "--max-backups", "3"])
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "DBBACKUP_MAX_BACKUPS");
}

/// A yes/no variable takes the documented words only: `DBBACKUP_STRICT=maybe`
/// was taken as yes while every other bad `DBBACKUP_*` value is refused.
#[test]
fn a_yes_no_variable_refuses_other_words() {
    let env = Env::new();
    let run = |value: &str| -> Run {
        env.command()
            .env("DBBACKUP_STRICT", value)
            .args(["run", "--", "true"])
            .output()
            .expect("run dbbackup")
            .into()
    };
    let refused = run("maybe");
    refused.failed_with(2, "DBBACKUP_STRICT");
    refused.failed_with(2, "'maybe' is not a yes/no value");
    assert_eq!(
        refused.stderr.trim().lines().count(),
        1,
        "{}",
        refused.stderr
    );
    assert!(env.backup_files().is_empty(), "nothing ran");
    for value in ["yes", "ON", "1", "true", "no", "off", "0", "False", ""] {
        run(value).ok();
    }
}

/// A remote with no prefix (a bucket shared by a group) and prefixes whose
/// characters each tool escapes its own way are refused before any request:
/// one line, exit 2; the bucket's top only as `s3://BUCKET/`.
#[test]
fn a_remote_without_a_prefix_or_with_a_space_in_it_is_refused_in_one_line() {
    let env = Env::new();
    for (url, says) in [
        (
            "s3://lab-bucket",
            "names no prefix: give s3://lab-bucket/PREFIX",
        ),
        ("s3://lab-bucket/my results", "the prefix holds ' '"),
        ("s3://lab-bucket/a%20b", "the prefix holds '%'"),
        ("s3://Lab_Bucket/x", "bucket names hold only"),
    ] {
        let run = env.run(&["--remote", url, "list", "--from-remote"]);
        run.failed_with(2, says);
        assert_eq!(run.stderr.lines().count(), 1, "{url}: {}", run.stderr);
    }
}

/// A database named like a sidecar but none (`lab-journal`, no `lab` beside
/// it) is a database: backed up as any other.
#[test]
fn a_database_named_like_a_journal_with_nothing_beside_it_is_backed_up() {
    let env = Env::new();
    let named = env.path("lab-journal");
    fs::copy(&env.db, &named).unwrap();
    env.run(&["--db-path", named.to_str().unwrap(), "backup"])
        .ok();
    assert_eq!(env.backup_files().len(), 1);
}
