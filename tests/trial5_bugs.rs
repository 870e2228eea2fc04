//! Trial 5's bugs and rough edges (T5 findings 6, 7, 11, 12, 14, 15): a
//! database behind a link whose target is lost is one database to every
//! command; a restore point from another host onto a node-local disk is
//! warned about; small message fixes.

use std::fs;

use rusqlite::Connection;

use crate::common::*;

fn make_db(path: &std::path::Path, value: &str) {
    Connection::open(path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE t(x); INSERT INTO t VALUES ('{value}');"
        ))
        .unwrap();
}

/// T5 #6: `results.db -> real/results.db`, the target lost. `restore latest`
/// resolves the link; `list`, `check` and `restore --target` must too.
#[test]
fn a_dangling_database_link_is_the_same_database_to_every_command() {
    let env = Env::empty();
    fs::create_dir(env.path("real")).unwrap();
    make_db(&env.path("real/results.db"), "kept");
    std::os::unix::fs::symlink("real/results.db", &env.db).unwrap();
    env.run(&["backup"]).ok();
    fs::rename(env.path("real/results.db"), env.path("lost.db")).unwrap();

    let list = env.run(&["list"]);
    list.ok();
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with("backup_"))
        .expect("a row");
    assert!(row.trim_end().ends_with("this"), "{}", list.stdout);
    assert!(!list.stderr.contains("adopt") && !list.stdout.contains("adopt"));

    let check = env.run(&["check"]);
    check.reported(1, "restore latest");
    assert!(
        !check.stdout.contains("no restore point of it"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("adopt"), "{}", check.stdout);

    env.run(&["restore", "latest", "--target", "peek.db"]).ok();
    let peek = Connection::open(env.path("peek.db")).unwrap();
    let x: String = peek.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, "kept");

    env.run(&["restore", "latest"]).ok();
    assert!(env.path("real/results.db").is_file());
}

/// `dbbackup ARGS` as host `host` (a UTS namespace of its own: tests run as
/// root), with `env`'s database and backup directory.
fn as_host(env: &Env, host: &str, args: &[&str]) -> Run {
    let mut command = std::process::Command::new("unshare");
    command.current_dir(env.root.path());
    without_inherited_settings(&mut command);
    command
        .env("DBBACKUP_DB_PATH", &env.db)
        .env("DBBACKUP_BACKUP_DIR", &env.backups)
        .args([
            "-u",
            "sh",
            "-c",
            "hostname \"$0\" && exec \"$@\"",
            host,
            BIN,
        ])
        .args(args);
    command.output().expect("run unshare").into()
}

fn value_of(db: &std::path::Path) -> String {
    let conn = Connection::open(db).unwrap();
    conn.query_row("SELECT group_concat(x) FROM t", [], |r| r.get(0))
        .unwrap()
}

/// T5 #7: the same path on two nodes' own disks is one database to dbbackup;
/// a restore point made on the other host is restored, with one warning line.
#[test]
fn a_restore_point_from_another_host_onto_a_node_local_disk_is_warned_about() {
    let fs_type = std::process::Command::new("stat")
        .args(["-f", "-c", "%t", "/tmp"])
        .output()
        .unwrap();
    let magic = String::from_utf8_lossy(&fs_type.stdout).trim().to_string();
    // The test's directory must be node-local (ext4, xfs, tmpfs, overlay, ...).
    assert!(
        !["6969", "bd00bd0", "65735546"].contains(&magic.as_str()),
        "{magic}"
    );
    let env = Env::empty();
    make_db(&env.db, "A");
    as_host(&env, "nodeA", &["backup"]).ok();
    let made_on_a = env.backup_files();
    fs::remove_file(&env.db).unwrap();
    make_db(&env.db, "B");
    as_host(&env, "nodeB", &["backup", "--force"]).ok();
    fs::remove_file(&env.db).unwrap();
    make_db(&env.db, "A");

    // Node A: the newest restore point is node B's.
    let run = as_host(&env, "nodeA", &["restore", "latest"]);
    run.ok();
    let warned: Vec<_> = run.stderr.lines().filter(|l| l.contains("nodeB")).collect();
    assert_eq!(warned.len(), 1, "{}", run.stderr);
    assert!(
        warned[0].contains("was made on host nodeB, not on nodeA")
            && warned[0].contains("node-local filesystem"),
        "{}",
        warned[0]
    );
    assert_eq!(value_of(&env.db), "B");

    // Restoring node A's own point on node A: nothing to warn about.
    let run = as_host(
        &env,
        "nodeA",
        &["restore", &made_on_a[0], "--target", "a.db"],
    );
    run.ok();
    assert!(!run.stderr.contains("made on host"), "{}", run.stderr);
    assert_eq!(value_of(&env.path("a.db")), "A");
}

/// T5 #12: a database in a read-only directory (a read-only bind mount, in a
/// mount namespace of its own) is backed up without a warning about a failure
/// marker that does not exist.
#[test]
fn a_backup_of_a_database_in_a_read_only_directory_warns_about_nothing() {
    let env = Env::empty();
    fs::create_dir(env.path("src")).unwrap();
    fs::create_dir(env.path("mnt")).unwrap();
    make_db(&env.path("src/del.db"), "kept");
    let mut command = std::process::Command::new("unshare");
    command.current_dir(env.root.path());
    without_inherited_settings(&mut command);
    command
        .env("DBBACKUP_DB_PATH", env.path("mnt/del.db"))
        .env("DBBACKUP_BACKUP_DIR", &env.backups)
        .args([
            "-m",
            "sh",
            "-c",
            "mount --bind src mnt && mount -o remount,bind,ro mnt && exec \"$0\" backup",
            BIN,
        ]);
    let run: Run = command.output().expect("run unshare").into();
    run.ok();
    assert!(run.stdout.starts_with("created backup_"), "{}", run.stdout);
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
}

/// `dbbackup --config FILE list`, FILE holding `text`.
fn list_with_config(env: &Env, text: &str) -> Run {
    fs::write(env.path("dbbackup.yaml"), text).unwrap();
    env.run(&["--config", "dbbackup.yaml", "list"])
}

/// T5 #11: a top-level key indented by mistake is said so, the line quoted
/// with its indentation (the parser's "mapping values are not allowed" was).
#[test]
fn an_indented_top_level_key_is_named_with_its_indentation() {
    let env = Env::new();
    let hint = "this line is indented: top-level keys start in column 1 (only the keys under `check:` are indented)";
    let run = list_with_config(&env, "db_path: results.db\n  max_backups: 3\n");
    run.failed_with(
        2,
        &format!(
            "error: config file dbbackup.yaml line 2: {hint} (the line reads:   max_backups: 3)\n"
        ),
    );
    let run = list_with_config(&env, "  db_path: results.db\nmax_backups: 3\n");
    run.failed_with(
        2,
        &format!("error: config file dbbackup.yaml line 1: {hint} (the line reads:   db_path: results.db)\n"),
    );
    // Under `check:` indentation is right: no such hint.
    let run = list_with_config(&env, "check:\n  max_age: 2h\n  min_count: x\n");
    assert_eq!(run.code, 2);
    assert!(
        !run.stderr.contains("this line is indented"),
        "{}",
        run.stderr
    );
}

/// T5 #15: a second YAML document is named with its line.
#[test]
fn a_second_yaml_document_is_named_with_its_line() {
    let env = Env::new();
    let run = list_with_config(&env, "db_path: results.db\n---\nmax_backups: 3\n");
    run.failed_with(
        2,
        "error: config file dbbackup.yaml line 2: `---` starts a second YAML document; a configuration file is one: remove it\n",
    );
    // One at the top only starts the document (`list` of a directory not
    // made yet fails, so it is made).
    fs::create_dir_all(&env.backups).unwrap();
    list_with_config(&env, "---\ndb_path: results.db\n").ok();
}

/// T5 #14: every flag README's `summary [...]` usage names is one
/// `summary --help` shows (`--log` was documented but hidden).
#[test]
fn the_summary_flags_readme_names_are_the_ones_help_shows() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let usage = readme
        .split("`summary [")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("README names summary's usage");
    let env = Env::empty();
    let help = env.run(&["summary", "--help"]);
    help.ok();
    let flags: Vec<&str> = usage
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .filter(|word| word.starts_with("--"))
        .collect();
    assert!(!flags.is_empty(), "{usage}");
    for flag in flags {
        assert!(
            help.stdout.contains(&format!("{flag} ")),
            "README's `summary [{usage}` names {flag}, which `summary --help` does not show"
        );
    }
}

/// T5 #15: a duration as dbbackup prints it (`1d 0h`) is accepted as input,
/// on the command line and in the file.
#[test]
fn a_duration_as_printed_is_accepted_as_input() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let run = env.run(&["check", "--max-age", "1d 0h"]);
    run.reported(0, "(max 1d 0h)");
    let run = list_with_config(&env, "check:\n  max_age: 1d12h\n");
    run.ok();
    let run = env.run(&["--config", "dbbackup.yaml", "check"]);
    run.reported(0, "(max 1d 12h)");
}

/// T5 #15: an interval under a second is not printed as `0s`.
#[test]
fn a_sub_second_interval_is_not_printed_as_0s() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let run = env.run(&["--min-interval-hours", "0.0001", "auto"]);
    run.ok();
    assert!(
        run.stdout.contains("less than the 0.36s interval"),
        "{}",
        run.stdout
    );
}

/// T5 #15: `check:` that is not a map is told every threshold it may hold.
#[test]
fn a_check_that_is_not_a_map_lists_remote_max_age_too() {
    let env = Env::new();
    let run = list_with_config(&env, "check: 24h\n");
    run.failed_with(
        2,
        "line 1: check: expected a map of check thresholds (max_age, min_count, max_shrink, min_free, remote_max_age)",
    );
}

/// T5 #15: a mirror in the file that is the backup directory is named with
/// the file and its line, as every other mistake in the file is.
#[test]
fn a_mirror_in_the_file_that_is_the_backup_directory_names_the_file_and_line() {
    let env = Env::new();
    let run = list_with_config(&env, "max_backups: 3\nmirror_dirs: [backups]\n");
    run.failed_with(
        2,
        "error: config file dbbackup.yaml line 2: mirror directory ",
    );
    assert!(
        run.stderr
            .contains("itself; a mirror must be another directory"),
        "{}",
        run.stderr
    );
    // Given on the command line: a usage error, no file named.
    let run = env.run(&["--mirror-dir", env.backups.to_str().unwrap(), "list"]);
    run.failed_with(2, "error: mirror directory ");
}

/// T5 #15: `init` over an existing file and `templates --out` over existing
/// templates are refusals the command line settles: one `error:` line, exit 2
/// (README), and no template is replaced when one is there.
#[test]
fn init_and_templates_over_existing_files_are_one_error_line_and_exit_2() {
    let env = Env::new();
    env.run(&["init"]).ok();
    let run = env.run(&["init"]);
    run.failed_with(2, "exists; use --overwrite to replace it");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);

    env.run(&["templates", "--out", "tpl"]).ok();
    let array = env.path("tpl/job_array.sbatch");
    let single = env.path("tpl/job_single.sbatch");
    fs::remove_file(&array).unwrap();
    fs::write(&single, "# mine\n").unwrap();
    let run = env.run(&["templates", "--out", "tpl"]);
    run.failed_with(2, "exists; use --overwrite to replace it");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&single).unwrap(), "# mine\n");
    assert!(
        !array.exists(),
        "nothing is written when one file is refused"
    );
}

/// T5 #15: `--min-free` before the first backup (no backup directory yet)
/// measures where the directory will be: its nearest existing parent.
#[test]
fn min_free_on_a_missing_backup_directory_measures_its_nearest_parent() {
    let env = Env::new();
    let run = env.run(&["--backup-dir", "not/yet", "check", "--min-free", "1K"]);
    let free = run
        .stdout
        .lines()
        .find(|l| l.contains("free:"))
        .unwrap_or_else(|| panic!("a free line: {}", run.stdout));
    assert!(free.starts_with("OK   free: "), "{free}");
    assert!(
        free.contains("not/yet does not exist yet: measured at "),
        "{free}"
    );
    assert!(!run.stdout.contains("ENOENT"), "{}", run.stdout);
}

/// T5 #15: the lock file as a restore target is called the lock file, not a
/// file "named like a backup file".
#[test]
fn the_lock_file_as_a_restore_target_is_called_the_lock_file() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let lock = env.lock_file();
    let run = env.run(&[
        "restore",
        "latest",
        "--target",
        lock.to_str().unwrap(),
        "--force",
    ]);
    run.failed_with(
        1,
        "and is its lock file; refusing to write a database there",
    );
}
