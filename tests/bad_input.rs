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

#[test]
fn backup_dir_that_is_a_file_or_cannot_be_created() {
    let env = Env::new();
    fs::write(&env.backups, "not a directory").unwrap();
    env.run(&["backup"]).failed_with(1, "not a directory");
    assert_eq!(fs::read_to_string(&env.backups).unwrap(), "not a directory");
    let below_a_file = env.backups.join("sub");
    env.run(&["backup", "--backup-dir", below_a_file.to_str().unwrap()])
        .failed_with(1, "Not a directory");
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
