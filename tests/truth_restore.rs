//! Issue 18 ("every ok is true"), the restore and input side: two restores into a
//! missing database at once, stale `-wal`/`-shm` beside a missing one, an empty
//! target, a database that is empty or not SQLite, a path that is not UTF-8, the
//! backup directory as its own mirror, empty environment variables, `~` in YAML
//! paths. Real databases and real `dbbackup` processes, checked by content.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::common::*;

/// Our temp files beside a restore target (a restore extracting into it).
fn temps_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".dbbackup-tmp-")
        })
        .map(|e| e.path())
        .collect()
}

fn integrity(path: &Path) -> String {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn signal(child: &std::process::Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

fn restore_process(env: &Env, args: &[&str]) -> std::process::Child {
    env.command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The README's recipe at the start of two array tasks at once: the second
/// restore must never replace the database the first one put back and a job
/// then wrote to. The second is frozen (SIGSTOP) while the first finishes and a
/// row is committed, so the interleaving that lost the row is forced, not hoped
/// for.
#[test]
fn two_restores_if_db_missing_at_once_never_replace_the_first_ones_database() {
    let env = Env::empty();
    // Large enough that a restore takes well over the 0.3 s between the two.
    make_results_db(&env.db, 24.0, false);
    env.run(&["backup"]).ok();
    fs::remove_file(&env.db).unwrap();

    let mut first = restore_process(&env, &["restore", "latest", "--if-db-missing"]);
    // Until it is extracting (or, on a fast machine, already done).
    wait_until(
        "the first restore begins",
        Duration::from_secs(60),
        Duration::from_millis(5),
        || !temps_in(env.root.path()).is_empty() || first.try_wait().unwrap().is_some(),
    );
    let second = restore_process(&env, &["restore", "latest", "--if-db-missing"]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&second, nix::sys::signal::Signal::SIGSTOP);
    let first = Run::from(first.wait_with_output().unwrap());
    first.ok();
    assert!(first.stdout.contains("restored"), "{}", first.stdout);

    // The job starts working on the restored database.
    Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE job_work (x TEXT); INSERT INTO job_work VALUES ('precious');")
        .unwrap();
    signal(&second, nix::sys::signal::Signal::SIGCONT);
    let second = Run::from(second.wait_with_output().unwrap());
    second.ok();
    let kept: rusqlite::Result<String> =
        Connection::open(&env.db)
            .unwrap()
            .query_row("SELECT x FROM job_work", [], |r| r.get(0));
    assert_eq!(
        kept.as_deref(),
        Ok("precious"),
        "the job's work was replaced"
    );
    assert!(
        second.stdout.contains("exists; nothing to restore"),
        "{}",
        second.stdout
    );
    assert!(temps_in(env.root.path()).is_empty());
}

/// A writer committed into the -wal and died; then the database was deleted.
/// The restored file must be exactly the backup, not the backup with that stale
/// WAL replayed onto it.
fn stale_wal_beside_a_missing_database(args: &[&str]) {
    let env = Env::empty();
    make_ledger_db(&env.db, 400, true);
    env.run(&["backup"]).ok();
    let expected = content_digest(&gunzip_to(&env.newest_backup(), &env.path("expected.db")));
    commit_into_wal_without_checkpoint(&env.db, 50);
    // Many more pages than the backup has: replayed, they point past its end.
    Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "PRAGMA wal_autocheckpoint = 0; CREATE TABLE big (b BLOB);
             INSERT INTO big SELECT randomblob(3000) FROM generate_series(1, 200);",
        )
        .ok();
    commit_into_wal_without_checkpoint(&env.db, 5);
    let wal = env.path("results.db-wal");
    assert!(
        fs::metadata(&wal).unwrap().len() > 0,
        "the writer left its WAL"
    );
    fs::remove_file(&env.db).unwrap();

    // No database was there to be replaced (T13 #7): said as news; the WAL,
    // which may hold the lost database's last commits, kept aside (T27b F11).
    let wal_bytes = fs::read(&wal).unwrap();
    let restored = env.run(args);
    restored.ok();
    assert!(
        restored.stderr.contains("results.db-wal aside as ")
            && restored.stderr.contains("it had no database beside it")
            && !restored.stderr.contains("was replaced"),
        "{}",
        restored.stderr
    );
    let aside: Vec<_> = fs::read_dir(env.root.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("results.db-wal.orphaned-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(fs::read(aside[0].path()).unwrap(), wal_bytes);
    // Before anything opens it (the restored database is in WAL mode too).
    for suffix in ["-wal", "-shm", "-journal"] {
        assert!(
            !env.path(&format!("results.db{suffix}")).exists(),
            "stale {suffix} left beside the restored database"
        );
    }
    assert_eq!(content_digest(&env.db), expected);
    assert_eq!(integrity(&env.db), "ok");
}

#[test]
fn restore_into_a_missing_database_removes_its_stale_wal() {
    stale_wal_beside_a_missing_database(&["restore", "latest"]);
}

#[test]
fn restore_if_db_missing_removes_the_stale_wal_of_the_missing_database() {
    stale_wal_beside_a_missing_database(&["restore", "latest", "--if-db-missing"]);
}

/// An empty file where the database was (a job that opened it before the
/// restore, a `touch`): nothing to save, so no "pre-restore" copy of nothing,
/// which would later fail `verify --all`.
#[test]
fn restore_over_an_empty_file_saves_no_copy_of_nothing() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let expected = content_digest(&env.db);
    let before = env.backup_files();
    fs::write(&env.db, b"").unwrap();

    env.run(&["restore", "latest", "--if-db-missing"]).ok();
    assert_eq!(content_digest(&env.db), expected);
    assert_eq!(
        env.backup_files(),
        before,
        "no pre-restore copy of an empty file"
    );
    fs::write(&env.db, b"").unwrap();
    let run = env.run(&["restore", "latest"]);
    run.ok();
    assert!(!run.stdout.contains("previous content"), "{}", run.stdout);
    assert_eq!(env.backup_files(), before);
    env.run(&["verify", "--all"]).ok();
}

/// `check` healthy means `backup` would work: an empty or foreign file where the
/// database should be is unhealthy, named, while `backup` refuses it.
#[test]
fn check_is_unhealthy_for_an_empty_or_non_sqlite_database() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
    fs::write(&env.db, b"").unwrap();
    env.run(&["backup", "--force"])
        .failed_with(1, "is empty (0 bytes)");
    env.run(&["check"])
        .reported(1, "is empty (0 B): not an SQLite database");
    let nagios = env.run(&["check", "--format", "nagios"]);
    nagios.reported(2, "DBBACKUP CRITICAL");
    fs::write(&env.db, vec![b'x'; 5000]).unwrap();
    env.run(&["backup", "--force"])
        .failed_with(1, "is not an SQLite database");
    env.run(&["check"]).reported(1, "is not an SQLite database");
}

/// A database whose file name is not UTF-8 (Latin-1 "résults.db"): refused with
/// one line, exit 2, before anything is written; never a full backup per call
/// that retention cannot count as this database's.
#[test]
fn a_database_path_that_is_not_utf8_is_refused_not_backed_up_over_and_over() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::empty();
    let name = std::ffi::OsStr::from_bytes(b"r\xe9sults.db");
    let db = env.root.path().join(name);
    make_ledger_db(&db, 200, false);
    let by_flag = |args: &[&str]| -> Run {
        env.command()
            .arg("--db-path")
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    for args in [
        &["backup"][..],
        &["auto"],
        &["check"],
        &["restore", "latest"],
    ] {
        let run = by_flag(args);
        run.failed_with(2, "is not valid UTF-8");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    let by_env: Run = env
        .command()
        .env("DBBACKUP_DB_PATH", &db)
        .arg("auto")
        .output()
        .unwrap()
        .into();
    by_env.failed_with(2, "is not valid UTF-8");
    // A link with a UTF-8 name leads to it: the path backups record is the real one.
    let link = env.path("link.db");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    env.run(&["--db-path", link.to_str().unwrap(), "backup"])
        .failed_with(2, "which is not valid UTF-8");
    assert!(env.backup_files().is_empty(), "nothing written");
    // Nor as a restore target: its pre-restore copy would record it altered.
    make_ledger_db(&env.db, 10, false);
    env.run(&["backup"]).ok();
    let run: Run = env
        .command()
        .args(["restore", "latest", "--target"])
        .arg(&db)
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "is not valid UTF-8");
    assert_eq!(env.backup_files().len(), 1, "no pre-restore copy");
}

/// The backup directory given as its own mirror, however spelled: a
/// configuration error (exit 2, one line), not a "MIRROR FAILED" and a false
/// stale-lock warning.
#[test]
fn the_backup_directory_as_its_own_mirror_is_a_configuration_error() {
    let env = Env::new();
    let spellings = [
        env.backups.to_str().unwrap().to_string(),
        format!("{}/../backups", env.backups.to_str().unwrap()),
        "backups/".to_string(),
    ];
    for spelling in &spellings {
        // Before the directory exists (names alone), and after.
        let run = env.run(&["--mirror-dir", spelling, "backup"]);
        run.failed_with(2, "is the backup directory");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        env.run(&["backup"]).ok();
        env.run(&["--mirror-dir", spelling, "backup", "--force"])
            .failed_with(2, "is the backup directory");
    }
    fs::write(env.path("dbbackup.yaml"), "mirror_dirs: [./backups/.]\n").unwrap();
    env.run(&["backup", "--force"])
        .failed_with(2, "is the backup directory");
    // One mirror twice: its second copy failed with "File exists".
    fs::write(env.path("dbbackup.yaml"), "mirror_dirs: [m, ./m/]\n").unwrap();
    env.run(&["backup", "--force"])
        .failed_with(2, "mirror directory ./m/ is given twice (also as ");
    // An empty entry would mirror into the project directory itself.
    fs::write(env.path("dbbackup.yaml"), "mirror_dirs: [\"\"]\n").unwrap();
    env.run(&["backup", "--force"])
        .failed_with(2, "mirror_dirs must not hold an empty path");
}

/// `VAR=` is how a job script clears a setting: every empty `DBBACKUP_*`
/// variable counts as unset, for global settings and a command's own alike.
#[test]
fn empty_dbbackup_variables_count_as_unset() {
    let env = Env::new();
    let empty = [
        "DBBACKUP_MIRROR_DIRS",
        "DBBACKUP_MAX_BACKUPS",
        "DBBACKUP_CONFIG",
        "DBBACKUP_SUMMARY_LOG",
        "DBBACKUP_LOCK_TIMEOUT_SECONDS",
        "DBBACKUP_CHECK_MAX_AGE",
        "DBBACKUP_CHECK_MIN_COUNT",
    ];
    let with_empty = |args: &[&str]| -> Run {
        let mut command = env.command();
        for name in empty {
            command.env(name, "");
        }
        command.args(args).output().unwrap().into()
    };
    with_empty(&["backup"]).ok();
    with_empty(&["list"]).ok();
    with_empty(&["check"]).ok();
    // Empty elements of a `:` list (built as `DIRS=$DIRS:m`) name no directory.
    let mirror = env.path("m");
    fs::create_dir(&mirror).unwrap();
    for (value, copies) in [(format!("{}:", mirror.display()), 1), (":".into(), 1)] {
        let mut command = env.command();
        command
            .env("DBBACKUP_MIRROR_DIRS", value)
            .args(["backup", "--force"]);
        Run::from(command.output().unwrap()).ok();
        assert_eq!(backup_files_in(&mirror).len(), copies);
    }
    // An empty database path is no path: the usual "no database given".
    let mut command = env.command();
    command.env("DBBACKUP_DB_PATH", "").arg("backup");
    Run::from(command.output().unwrap()).failed_with(2, "no database given");
}

/// `backup_dir: ~/dbb_backups` in the YAML file means the home directory's, as
/// in a shell, not a directory named `~` in the project.
#[test]
fn home_in_yaml_paths_is_the_home_directory() {
    let env = Env::new();
    let home = env.path("home");
    fs::create_dir(&home).unwrap();
    let project = env.path("project");
    fs::create_dir(&project).unwrap();
    fs::write(
        project.join("dbbackup.yaml"),
        format!(
            "db_path: {}\nbackup_dir: ~/dbb_backups\nsummary_log: $HOME/logs/summary.log\nmirror_dirs: ['${{HOME}}/mirror']\n",
            env.db.display()
        ),
    )
    .unwrap();
    fs::create_dir(home.join("mirror")).unwrap();
    let run = |args: &[&str]| -> Run {
        env.command()
            .current_dir(&project)
            .env_remove("DBBACKUP_BACKUP_DIR")
            .env_remove("DBBACKUP_DB_PATH")
            .env("HOME", &home)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    run(&["backup"]).ok();
    let names = |dir: &Path| {
        fs::read_dir(dir).map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("backup_"))
                .count()
        })
    };
    assert_eq!(names(&home.join("dbb_backups")), 1);
    assert_eq!(names(&home.join("mirror")), 1);
    run(&["post-job", "--status", "0"]).ok();
    assert!(home.join("logs/summary.log").is_file());
    let in_project: Vec<_> = fs::read_dir(&project)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(in_project, vec![std::ffi::OsString::from("dbbackup.yaml")]);

    fs::write(project.join("dbbackup.yaml"), "backup_dir: $SCRATCH/b\n").unwrap();
    run(&["list"]).failed_with(
        2,
        "line 1: `backup_dir` contains shell syntax `$SCRATCH`; dbbackup does not expand it: write the path, or use DBBACKUP_BACKUP_DIR=...",
    );

    // A shell leaves `--backup-dir=~/b` and a quoted variable as they are.
    fs::remove_file(project.join("dbbackup.yaml")).unwrap();
    let db = format!("--db-path={}", env.db.display());
    let mut command = env.command();
    command
        .current_dir(&project)
        .env("HOME", &home)
        .env("DBBACKUP_MIRROR_DIRS", "$HOME/mirror2")
        .args([db.as_str(), "--backup-dir=~/flagged", "backup", "--force"]);
    Run::from(command.output().unwrap()).ok();
    assert_eq!(names(&home.join("flagged")), 1);
    assert_eq!(names(&home.join("mirror2")), 1);
    assert!(!project.join("~").exists() && !project.join("$HOME").exists());
    run(&["--backup-dir=~bob/b", "list"]).failed_with(2, "--backup-dir ~bob/b: only ~ and $HOME");
}

/// A command's path argument is a path setting's: a quoted `~` (the shell left
/// it) is home, another `$VARIABLE` is refused in one line before anything is
/// made (they were taken literally: `./~/t.db`, `./$SCRATCH/x`).
#[test]
fn home_in_path_arguments_is_the_home_directory_and_other_variables_are_refused() {
    let env = Env::new();
    let home = env.path("home");
    let project = env.path("project");
    fs::create_dir(&home).unwrap();
    fs::create_dir(&project).unwrap();
    env.run(&["backup"]).ok();
    let run = |args: &[&str]| -> Run {
        env.command()
            .current_dir(&project)
            .env("HOME", &home)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    run(&["restore", "latest", "--target", "~/t.db"]).ok();
    assert_eq!(content_digest(&home.join("t.db")), content_digest(&env.db));
    run(&["export", "latest", "--out", "$HOME/e.db.gz"]).ok();
    assert!(home.join("e.db.gz").is_file());
    run(&["templates", "--out", "~/slurm"]).ok();
    assert!(home.join("slurm/job_single.sbatch").is_file());
    for (args, says) in [
        (
            &["templates", "--out", "$SCRATCH/x"][..],
            "invalid value '$SCRATCH/x' for '--out <DIR>': it contains shell syntax `$SCRATCH`; dbbackup does not expand it",
        ),
        (
            &["restore", "latest", "--target", "~bob/t.db"][..],
            "invalid value '~bob/t.db' for '--target <PATH>': only ~ and $HOME are expanded",
        ),
        (
            &["periodic", "--metrics-file", "$SCRATCH/m.prom"][..],
            "invalid value '$SCRATCH/m.prom' for '--metrics-file <PATH>'",
        ),
    ] {
        let refused = run(args);
        refused.failed_with(2, says);
        assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    }
    for literal in ["~", "~bob", "$HOME", "$SCRATCH"] {
        assert!(
            !project.join(literal).exists(),
            "{literal} made in the project"
        );
    }
}

/// A restore into a missing database decides under the lock: while another
/// dbbackup holds it, it waits; `--if-db-missing` stops waiting as soon as the
/// database is back (put there by the holder) and leaves it as it is.
#[test]
fn restore_if_db_missing_waits_for_the_lock_and_stops_once_the_database_is_back() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let moved = env.path("elsewhere.db");
    fs::rename(&env.db, &moved).unwrap();
    let holder = hold_dir_lock(&env.lock_file(), "another restore");
    let mut waiting = restore_process(&env, &["restore", "latest", "--if-db-missing"]);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "decided without the lock"
    );
    Connection::open(&moved)
        .unwrap()
        .execute_batch("CREATE TABLE job_work (x); INSERT INTO job_work VALUES ('precious');")
        .unwrap();
    fs::rename(&moved, &env.db).unwrap();
    let started = Instant::now();
    let run = Run::from(waiting.wait_with_output().unwrap());
    assert!(started.elapsed() < Duration::from_secs(10));
    run.ok();
    assert!(
        run.stdout.contains("exists; nothing to restore"),
        "{}",
        run.stdout
    );
    assert_eq!(row_count(&env.db, "job_work"), 1);
    drop(holder);
}

/// The database was deleted while a job still has it open (WAL): its `-wal` and
/// `-shm` are live, not stale. Restoring beside them would pair that job's WAL
/// with the restored file: refused, naming the process, nothing published.
#[test]
fn restore_into_a_deleted_database_still_open_by_a_job_is_refused() {
    let env = Env::empty();
    make_ledger_db(&env.db, 50, true);
    env.run(&["backup"]).ok();
    let job = Connection::open(&env.db).unwrap();
    job.execute_batch("INSERT INTO ledger (amount, note) VALUES (0, 'open')")
        .unwrap();
    fs::remove_file(&env.db).unwrap();
    env.run(&["restore", "latest", "--if-db-missing"])
        .failed_with(1, &format!("is in use by pid {}", std::process::id()));
    assert!(!env.db.exists(), "nothing published");
    assert!(env.path("results.db-wal").exists(), "the job's WAL kept");
    drop(job);
}

/// A file that appears at a missing target while the restore extracts (another
/// program, not a dbbackup, so no lock stops it) is never replaced: a plain
/// restore fails saying so, `--if-db-missing` finds the database there.
#[test]
fn a_target_that_appears_during_the_restore_is_never_replaced() {
    let env = Env::empty();
    make_results_db(&env.db, 12.0, false);
    env.run(&["backup"]).ok();
    let appeared = env.path("appeared.db");
    make_ledger_db(&appeared, 10, false);
    let content = fs::read(&appeared).unwrap();
    for if_db_missing in [false, true] {
        let target = env.path("target.db");
        let _ = fs::remove_file(&target);
        let mut args = vec!["restore", "latest", "--target", target.to_str().unwrap()];
        if if_db_missing {
            args.push("--if-db-missing");
        }
        let mut restore = restore_process(&env, &args);
        // Polled without a pause: the extraction of 12 MiB is short.
        wait_until(
            "the restore extracts",
            Duration::from_secs(60),
            Duration::ZERO,
            || {
                if !temps_in(env.root.path()).is_empty() {
                    return true;
                }
                assert!(
                    restore.try_wait().unwrap().is_none(),
                    "finished before it was stopped"
                );
                false
            },
        );
        signal(&restore, nix::sys::signal::Signal::SIGSTOP);
        fs::write(&target, &content).unwrap();
        signal(&restore, nix::sys::signal::Signal::SIGCONT);
        let run = Run::from(restore.wait_with_output().unwrap());
        // Not assert_eq: a replaced file would print megabytes.
        assert!(
            fs::read(&target).unwrap() == content,
            "the file that appeared was replaced"
        );
        if if_db_missing {
            run.ok();
            assert!(
                run.stdout.contains("exists; nothing to restore"),
                "{}",
                run.stdout
            );
        } else {
            run.failed_with(
                1,
                "appeared while the backup was being restored; it was left as it is",
            );
        }
        assert!(temps_in(env.root.path()).is_empty());
    }
}

/// T12 #11: a restore whose replaced database is already in backup Y makes no
/// pre-restore copy; Y stands in for it and is kept as long as a copy would be
/// (`keep_pre_restore`), not aged out by `max_backups`; it restores the
/// replaced rows, and `prune` says why it is kept.
#[test]
fn the_backup_standing_in_for_a_pre_restore_copy_is_kept_like_one() {
    let env = Env::empty();
    let ins = |v: &str| {
        let c = Connection::open(&env.db).unwrap();
        c.execute_batch("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        c.execute("INSERT INTO t(v) VALUES (?1)", [v]).unwrap();
    };
    fs::create_dir_all(&env.backups).unwrap();
    fs::write(env.path("dbbackup.yaml"), "max_backups: 2\n").unwrap();
    ins("s1");
    env.run(&["backup"]).ok();
    let first = env.backup_files()[0].clone();
    ins("s2-UNDO");
    env.run(&["backup"]).ok();
    let undo = env.backup_files()[1].clone();
    let run = env.run(&["restore", &first]);
    run.ok();
    assert!(
        run.stdout
            .contains(&format!("already in {undo}: no pre-restore copy needed")),
        "{}",
        run.stdout
    );
    // Among the newest `max_backups` anyway: kept without a word (T25 #8).
    let quiet = env.run(&["prune"]);
    quiet.ok();
    assert!(
        !quiet.stderr.contains("retention keeps"),
        "{}",
        quiet.stderr
    );
    for i in 0..3 {
        ins(&format!("n{i}"));
        env.run(&["backup"]).ok();
    }
    assert!(
        env.backup_files().contains(&undo),
        "{:?}",
        env.backup_files()
    );
    let target = env.path("undo.db");
    env.run(&["restore", &undo, "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(row_count(&target, "t"), 2);
    let prune = env.run(&["prune"]);
    prune.ok();
    assert!(
        prune.stderr.contains(&format!(
            "retention keeps {undo}: it holds what a restore replaced"
        )),
        "{}",
        prune.stderr
    );
}

/// T15 #10: `restore latest` from a backup directory that does not exist
/// failed, but made it (with its lock file) on the way: `list` then said "no
/// backups", exit 0, instead of naming the missing (or mistyped) directory.
#[test]
fn a_restore_from_a_missing_backup_directory_says_so_and_does_not_make_it() {
    let env = Env::new();
    let before = content_digest(&env.db);
    let missing = format!("backup directory {} does not exist", env.backups.display());
    // Twice: the first one must not have made it.
    for _ in 0..2 {
        env.run(&["restore", "latest"]).failed_with(1, &missing);
        assert!(!env.backups.exists());
    }
    env.run(&["list"]).failed_with(1, "does not exist");
    assert_eq!(content_digest(&env.db), before);
}

/// T19 #10: after a deliberate rollback (`restore NAME` of an older point),
/// `restore latest` brought the undone state back without a word (the newest
/// point is the one rolled back from). Until a backup is made after it, the
/// point the database was set back to is `latest`, and the undone one named.
#[test]
fn restore_latest_after_a_rollback_takes_the_state_rolled_back_to() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let good = env.backup_files()[0].clone();
    let good_state = content_digest(&env.db);
    crate::common::s3::add_row(&env.db);
    env.run(&["backup", "--force"]).ok();
    let undone = env.backup_files().last().unwrap().clone();
    assert_ne!(undone, good);
    env.run(&["restore", &good]).ok();
    fs::remove_file(&env.db).unwrap();
    let restore = env.run(&["restore", "latest"]);
    restore.ok();
    assert_eq!(content_digest(&env.db), good_state);
    assert!(
        restore
            .stderr
            .contains(&format!("the newer {undone} holds what that restore undid")),
        "{}",
        restore.stderr
    );
    // `export latest` says the same (T21 F4: it exported the undone state).
    let exported = env.path("exported.db.gz");
    env.run(&["export", "latest", "--out", exported.to_str().unwrap()])
        .ok();
    let plain = crate::common::gunzip_to(&exported, &env.path("exported.db"));
    assert_eq!(content_digest(&plain), good_state);
    // A backup made after the rollback is `latest` again.
    crate::common::s3::add_row(&env.db);
    let newer_state = content_digest(&env.db);
    env.run(&["backup"]).ok();
    fs::remove_file(&env.db).unwrap();
    env.run(&["restore", "latest"]).ok();
    assert_eq!(content_digest(&env.db), newer_state);
}
