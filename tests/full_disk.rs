//! A real full disk (a small tmpfs) and a read-only filesystem, as root. Without
//! root (or without permission to mount) these tests say so and pass.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;

use crate::common::*;

/// A tmpfs mounted for the life of the value.
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(crate) fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must mount a tmpfs"
            );
            let _ = writeln!(
                std::io::stderr(),
                "full-disk tests SKIPPED: cannot mount a tmpfs (not root?)"
            );
            return None;
        }
        Some(Tmpfs(path.to_path_buf()))
    }

    pub(crate) fn remount_read_only(&self) {
        self.remount("remount,ro");
    }

    pub(crate) fn remount_read_write(&self) {
        self.remount("remount,rw");
    }

    fn remount(&self, how: &str) {
        assert!(
            Command::new("mount")
                .args(["-o", how])
                .arg(&self.0)
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A 3 MB results database compresses to about 1 MB: one backup fits in 1500k, two do not.
fn env_with_db() -> Env {
    let env = Env::empty();
    make_results_db(&env.db, 3.0, false);
    env
}

#[test]
fn a_full_backup_dir_fails_cleanly_and_keeps_older_backups() {
    let env = env_with_db();
    let Some(_disk) = Tmpfs::mount(&env.backups, "1500k") else {
        return;
    };
    env.run(&["backup", "--max-backups", "1"]).ok();
    let first = env.backup_files();
    let first_bytes = fs::read(env.newest_backup()).unwrap();
    let run = env.run(&["backup", "--force", "--max-backups", "1"]);
    // Names the directory that is full.
    run.failed_with(
        1,
        &format!(
            "cannot write backup in {}: No space left on device",
            env.backups.display()
        ),
    );
    assert_eq!(
        run.stderr.lines().filter(|l| l.contains("ERROR")).count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(
        env.backup_files(),
        first,
        "nothing published, retention deleted nothing"
    );
    assert_eq!(fs::read(env.newest_backup()).unwrap(), first_bytes);
    assert!(
        env.stray_files().is_empty(),
        "temp file removed: {:?}",
        env.stray_files()
    );
    env.run(&["verify", "--all"]).ok();
}

#[test]
fn a_full_mirror_keeps_the_primary_backup() {
    let env = env_with_db();
    let mirror = env.path("mirror");
    let Some(_disk) = Tmpfs::mount(&mirror, "200k") else {
        return;
    };
    let run = env.run(&["backup", "--mirror-dir", mirror.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("MIRROR FAILED: {}:", mirror.display()))
            && run.stdout.contains("No space left"),
        "{}",
        run.stdout
    );
    assert_eq!(env.backup_files().len(), 1);
    env.run(&["verify"]).ok();
    let leftovers: Vec<_> = fs::read_dir(&mirror)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        leftovers.iter().all(|n| n == ".dbbackup.lock"),
        "{leftovers:?}"
    );
}

#[test]
fn a_full_restore_target_directory_leaves_the_target_untouched() {
    let env = env_with_db();
    env.run(&["backup"]).ok();
    let dir = env.path("restore-here");
    let Some(_disk) = Tmpfs::mount(&dir, "1M") else {
        return;
    };
    let target = dir.join("results.db");
    make_ledger_db(&target, 20, false);
    let before = fs::read(&target).unwrap();
    let run = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    // Where, why, and that the target is safe.
    run.failed_with(
        1,
        &format!(
            "cannot write the restored copy in {}: No space left on device (os error 28); {} left untouched",
            dir.display(),
            target.display()
        ),
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(fs::read(&target).unwrap(), before);
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["results.db".to_string()], "no temp file left");
}

#[test]
fn a_full_summary_log_disk_does_not_fail_the_backup_but_fails_summary() {
    let env = Env::new();
    let logs = env.path("logs");
    let Some(_disk) = Tmpfs::mount(&logs, "8k") else {
        return;
    };
    fs::write(logs.join("filler"), vec![b'x'; 8192]).ok();
    let log = logs.join("summary.log");
    let run: Run = env
        .command()
        .env("DBBACKUP_SUMMARY_LOG", &log)
        .args(["post-job", "--status", "0"])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert!(
        run.stderr.contains("summary line not written"),
        "{}",
        run.stderr
    );
    assert_eq!(env.backup_files().len(), 1);
    env.run(&["summary", "--log", log.to_str().unwrap()])
        .failed_with(1, "summary log");
}

#[test]
fn a_read_only_backup_dir_is_reported() {
    let env = env_with_db();
    let Some(disk) = Tmpfs::mount(&env.backups, "4M") else {
        return;
    };
    env.run(&["backup"]).ok();
    disk.remount_read_only();
    let before = env.backup_files();
    env.run(&["backup", "--force"])
        .failed_with(1, "Read-only file system");
    assert_eq!(env.backup_files(), before);
    env.run(&["list"]).ok();
    env.run(&["verify", "--all"]).ok();
    // The failure is recorded beside the database, so `check` says it although
    // the backups themselves still look fresh.
    env.run(&["check"])
        .reported(1, "FAIL attempt: newest attempt (manual");
    let nagios = env.run(&["check", "--format", "nagios"]);
    assert_eq!(nagios.code, 2, "{}", nagios.stdout);
    assert!(
        nagios.stdout.contains("Read-only file system"),
        "{}",
        nagios.stdout
    );
}

/// Fill a mounted tmpfs to the last byte.
fn fill(dir: &Path) {
    let mut filler = fs::File::create(dir.join("filler")).unwrap();
    let block = vec![b'x'; 4096];
    while filler.write_all(&block).is_ok() {}
}

/// The disk fills up before the lock file's holder line can be written: the
/// attempt leaves no file in the backup directory, yet `check` is CRITICAL at
/// once (the record went beside the database) and healthy after the next success.
#[test]
fn a_full_disk_before_the_lock_is_written_makes_check_critical() {
    let env = env_with_db();
    let Some(_disk) = Tmpfs::mount(&env.backups, "1500k") else {
        return;
    };
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
    fill(&env.backups);
    env.run(&["backup", "--force"])
        .failed_with(1, "No space left on device");
    let check = env.run(&["check"]);
    check.reported(1, "FAIL attempt: newest attempt (manual");
    assert!(
        check.stdout.contains("No space left on device"),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("OK   age:"), "{}", check.stdout);
    fs::remove_file(env.backups.join("filler")).unwrap();
    // The next success: here "unchanged" (a second backup would not fit).
    env.run(&["backup"]).ok();
    env.run(&["check"]).ok();
}

/// The database and its backups on one full disk: no record fits anywhere, but
/// an empty marker does (an inode, no data block), and `check` is CRITICAL.
#[test]
fn a_disk_too_full_for_any_record_still_makes_check_critical() {
    let mut env = Env::empty();
    let project = env.path("project");
    let Some(_disk) = Tmpfs::mount(&project, "1M") else {
        return;
    };
    env.db = project.join("results.db");
    env.backups = project.join("backups");
    make_ledger_db(&env.db, 200, false);
    env.run(&["backup"]).ok();
    fill(&project);
    env.run(&["backup", "--force"])
        .failed_with(1, "No space left on device");
    env.run(&["check"])
        .reported(1, "failed: no room to record why");
    let nagios = env.run(&["check", "--format", "nagios"]);
    assert_eq!(nagios.code, 2, "{}", nagios.stdout);
    fs::remove_file(project.join("filler")).unwrap();
    env.run(&["backup", "--force"]).ok();
    env.run(&["check"]).ok();
    assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
}

/// `dir/hot.db` with a hot journal: the files as a writer that died
/// mid-transaction leaves them, copied while a spilling transaction is open.
fn hot_journal_db(env: &Env, dir: &Path) -> std::path::PathBuf {
    let source = env.path("source.db");
    make_ledger_db(&source, 3000, false);
    let writer = rusqlite::Connection::open(&source).unwrap();
    writer
        .execute_batch("PRAGMA cache_size = 5; BEGIN; UPDATE ledger SET note = note || 'x';")
        .unwrap();
    let hot = dir.join("hot.db");
    fs::copy(&source, &hot).unwrap();
    fs::copy(env.path("source.db-journal"), dir.join("hot.db-journal")).unwrap();
    drop(writer);
    hot
}

/// SQLite writes beside a database even to read it when a crashed writer left a
/// hot journal, or to create a WAL database's -shm: in a directory that cannot be
/// written, say so instead of "attempt to write a readonly database".
#[test]
fn a_hot_journal_or_wal_database_in_a_read_only_directory_says_what_sqlite_needs() {
    let env = Env::empty();
    let dir = env.path("ro");
    let Some(disk) = Tmpfs::mount(&dir, "16M") else {
        return;
    };
    // WAL: the header says WAL; the -wal and -shm went with the last connection.
    let wal = dir.join("wal.db");
    make_ledger_db(&wal, 100, true);
    let hot = hot_journal_db(&env, &dir);
    disk.remount_read_only();
    for (db, why) in [(&wal, "-shm"), (&hot, "hot journal")] {
        let run: Run = env
            .command()
            .env("DBBACKUP_DB_PATH", db)
            .arg("backup")
            .output()
            .unwrap()
            .into();
        run.failed_with(1, "SQLite needs write access to the database's directory");
        assert!(run.stderr.contains(why), "{}", run.stderr);
        assert!(env.backup_files().is_empty());
        assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
    }
}

#[test]
fn a_full_backup_dir_during_restore_leaves_the_database_untouched_and_says_where() {
    let env = env_with_db();
    let Some(_disk) = Tmpfs::mount(&env.backups, "1500k") else {
        return;
    };
    env.run(&["backup"]).ok();
    let backups = env.backup_files();
    // New content, so the pre-restore copy (another 1 MB) does not fit.
    Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE later (x); INSERT INTO later VALUES ('unsaved');")
        .unwrap();
    let before = fs::read(&env.db).unwrap();
    let run = env.run(&["restore", "latest"]);
    run.failed_with(
        1,
        &format!(
            "cannot save {} in {} before replacing it: ",
            env.db.display(),
            env.backups.display()
        ),
    );
    run.failed_with(
        1,
        "No space left on device (os error 28); nothing was changed",
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(fs::read(&env.db).unwrap(), before, "database untouched");
    assert_eq!(env.backup_files(), backups, "nothing published or deleted");
    assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
}

/// `dbbackup ARGS` as the unprivileged user `nobody` (the permission bits that
/// root ignores), in the test's directory; `None` (test skipped) when not root.
pub(crate) fn as_nobody(env: &Env, args: &[&str]) -> Option<Run> {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must run as nobody"
        );
        let _ = writeln!(
            std::io::stderr(),
            "permission tests SKIPPED: not root, cannot run as nobody"
        );
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    // tempfile's 0700 root directory would hide everything from nobody.
    fs::set_permissions(env.root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // The binary too: a checkout in a 0700 directory (CI clones into `mktemp -d`)
    // is out of nobody's reach, so run a copy from the test's directory.
    let bin = env.root.path().join("dbbackup-bin");
    if !bin.exists() {
        copy_binary(&bin);
    }
    let mut command = Command::new("runuser");
    command.current_dir(env.root.path());
    without_inherited_settings(&mut command);
    let output = command
        .args(["-u", "nobody", "--"])
        .arg(&bin)
        .arg("--db-path")
        .arg(&env.db)
        .arg("--backup-dir")
        .arg(&env.backups)
        .args(args)
        .output()
        .unwrap();
    Some(output.into())
}

/// The one line on stderr, past its log prefix (`... ERROR job=... host=...: `).
fn error_line(run: &Run) -> String {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    let (_, message) = lines[0].split_once(": ").unwrap();
    message.to_string()
}

/// A backup directory the user cannot write: named as the cause, not the lock
/// file inside it; nothing created there.
#[test]
fn backup_into_a_directory_the_user_cannot_write_names_the_directory() {
    let env = Env::new();
    fs::create_dir(&env.backups).unwrap();
    chmod(&env.backups, 0o555);
    let Some(mut run) = as_nobody(&env, &["backup"]) else {
        return;
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The database's directory is not nobody's either: the failure is not
    // recorded, which a line of its own says (`truth_trial5`).
    let (unrecorded, error): (Vec<&str>, Vec<&str>) = run
        .stderr
        .lines()
        .partition(|line| line.contains("this failure could not be recorded"));
    assert_eq!(unrecorded.len(), 1, "{}", run.stderr);
    run.stderr = format!("{}\n", error.join("\n"));
    assert_eq!(
        error_line(&run),
        format!(
            "backup directory {} is not writable (owner root, mode 555): Permission denied (os error 13)",
            env.backups.display()
        )
    );
    assert_eq!(fs::read_dir(&env.backups).unwrap().count(), 0);
}

/// Restoring into a directory the user cannot write: the directory is named;
/// into a new file "nothing was written", over an existing one "left untouched"
/// (and no pre-restore copy made).
#[test]
fn restore_into_a_directory_the_user_cannot_write_names_the_directory() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    chmod(&env.backups, 0o755);
    for name in env.backup_files() {
        chmod(&env.backups.join(name), 0o644);
    }
    let rodir = env.path("rodir");
    fs::create_dir(&rodir).unwrap();
    chmod(&rodir, 0o555);
    let target = rodir.join("new.db");
    let Some(run) = as_nobody(
        &env,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ) else {
        return;
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        error_line(&run),
        format!(
            "cannot restore into {}: directory {} is not writable (owner root, mode 555): Permission denied (os error 13); nothing was written",
            target.display(),
            rodir.display()
        )
    );
    assert_eq!(fs::read_dir(&rodir).unwrap().count(), 0);

    // Over an existing database there (the backup directory now nobody's, so the
    // pre-restore copy could be written): refused before anything is saved.
    chmod(&rodir, 0o755);
    let existing = rodir.join("existing.db");
    fs::copy(&env.db, &existing).unwrap();
    chmod(&existing, 0o666);
    chmod(&rodir, 0o555);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    for entry in dir_and_its_entries(&env.backups) {
        nix::unistd::chown(&entry, Some(nobody.uid), None).unwrap();
    }
    let before = content_digest(&existing);
    let backups_before = env.backup_files();
    let run = as_nobody(
        &env,
        &["restore", "latest", "--target", existing.to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        error_line(&run),
        format!(
            "cannot restore into {}: directory {} is not writable (owner root, mode 555): Permission denied (os error 13); it was left untouched",
            existing.display(),
            rodir.display()
        )
    );
    assert_eq!(content_digest(&existing), before);
    assert_eq!(env.backup_files(), backups_before, "no pre-restore copy");
    let names: Vec<_> = fs::read_dir(&rodir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["existing.db"]);
}

/// `dir` and its entries (not their contents).
fn dir_and_its_entries(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    for entry in fs::read_dir(dir).unwrap().flatten() {
        all.push(entry.path());
    }
    all
}

/// A full backup disk: no restore point can be made and the state file cannot
/// be written, yet the array's final job is submitted once, not once per task
/// (a create-once marker needs no data blocks).
#[test]
fn a_full_disk_still_submits_the_final_job_once() {
    let env = env_with_db();
    let Some(_disk) = Tmpfs::mount(&env.backups, "1500k") else {
        return;
    };
    let bin = env.path("fake-bin");
    fake_tool(
        &bin,
        "sbatch",
        &format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho 777\n",
            env.path("sbatch.log").display()
        ),
    );
    let path = path_with(&bin);
    // Fill the disk.
    let mut filler = fs::File::create(env.backups.join("filler")).unwrap();
    while filler.write_all(&[0u8; 65536]).is_ok() {}
    let _ = filler.write_all(&[0u8; 1]);
    drop(filler);
    for task in 0..3 {
        let run: Run = env
            .command()
            .env("PATH", &path)
            .env("SLURM_ARRAY_JOB_ID", "9900")
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SLURM_JOB_ID", format!("990{task}"))
            .args(["pre-job", "--final-job", "final_backup.sbatch"])
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, 1, "the disk is full: {}", run.stderr);
    }
    let submitted = fs::read_to_string(env.path("sbatch.log")).unwrap_or_default();
    assert_eq!(submitted.lines().count(), 1, "{submitted}");
}

/// `periodic` run by a user who can write neither the backup directory nor
/// the database's directory: no record of its failure fits anywhere, yet its
/// own line says `status=failed healthy=false` (not `healthy=true`).
#[test]
fn periodic_that_can_record_nothing_still_calls_its_failure_unhealthy() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    // Due for nobody's periodic: older than the interval, and changed since.
    backdate(&env.newest_backup(), std::time::Duration::from_secs(7200));
    Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'x'); UPDATE counter SET n = n + 1;",
        )
        .unwrap();
    let logs = env.path("logs");
    fs::create_dir(&logs).unwrap();
    chmod(&logs, 0o777);
    let log = logs.join("summary.log");
    let metrics = logs.join("dbbackup.prom");
    let Some(run) = as_nobody(
        &env,
        &[
            "--summary-log",
            log.to_str().unwrap(),
            "periodic",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    ) else {
        return;
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("is not writable"), "{}", run.stderr);
    let line = summary_lines(&log).pop().unwrap();
    assert_eq!(
        (line["status"].as_str(), line["healthy"].as_str()),
        ("failed", "false"),
        "{line:?}"
    );
    assert!(
        line["problems"].contains("attempt: this run failed: "),
        "{line:?}"
    );
    let text = fs::read_to_string(&metrics).unwrap();
    for sample in ["dbbackup_healthy{", "criterion=\"attempt\"}"] {
        let found = text
            .lines()
            .find(|l| l.contains(sample))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(found.ends_with(" 0"), "{found}");
    }
}

/// A backup directory that already holds backups (and its lock file), made
/// read-only for the user: the directory is named as the cause, not the temp
/// file the backup would have been written to (T6 #15).
#[test]
fn backup_into_a_used_directory_the_user_cannot_write_names_the_directory() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    for entry in fs::read_dir(&env.backups).unwrap() {
        chmod(&entry.unwrap().path(), 0o666);
    }
    chmod(&env.backups, 0o555);
    let before = env.backup_files();
    let Some(run) = as_nobody(&env, &["backup", "--force"]) else {
        return;
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Two lines: the failure could not be recorded either (the database's
    // directory is root's too: T5 #1), then the cause.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(
        lines[0].contains("WARN") && lines[0].contains("this failure could not be recorded"),
        "{}",
        run.stderr
    );
    assert_eq!(
        lines[1].split_once(": ").unwrap().1,
        format!(
            "directory {} is not writable (owner root, mode 555): Permission denied (os error 13)",
            env.backups.display()
        )
    );
    assert_eq!(env.backup_files(), before);
}

/// T13 #3: `init` and `man --out` on a full disk left empty files, which
/// then refused the retry ("exists; use --overwrite") and, for the config,
/// read as "no settings". Nothing is left behind now, and the retry after
/// space is freed writes them whole.
#[test]
fn init_and_man_pages_on_a_full_disk_leave_nothing_to_block_the_retry() {
    let env = Env::new();
    let project = env.path("full");
    let Some(_disk) = Tmpfs::mount(&project, "1m") else {
        return;
    };
    fill(&project);
    let config = project.join("dbbackup.yaml");
    let man = project.join("man1");
    let init = |args: &[&str]| -> Run {
        env.command()
            .current_dir(&project)
            .args(["--db-path", env.db.to_str().unwrap(), "init"])
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    init(&[]).failed_with(1, "dbbackup.yaml");
    assert!(!config.exists(), "no empty config left");
    env.run(&["man", "--out", man.to_str().unwrap()])
        .failed_with(1, "No space left on device");
    let pages: Vec<_> = fs::read_dir(&man).map_or(Vec::new(), |d| d.flatten().collect());
    assert!(
        pages.iter().all(|p| p.metadata().unwrap().len() > 0),
        "no empty page: {pages:?}"
    );
    fs::remove_file(project.join("filler")).unwrap();
    init(&[]).ok();
    assert!(fs::read_to_string(&config).unwrap().contains("db_path:"));
    env.run(&["man", "--out", man.to_str().unwrap()]).ok();
    assert!(fs::metadata(man.join("dbbackup.1")).unwrap().len() > 0);
}

/// T15 #16: with room for part of the set, `init --slurm` wrote the config
/// and some templates, then stopped: the retry was refused for the files
/// already there. The files the run created are removed on the failure.
#[test]
fn init_slurm_on_a_disk_with_room_for_part_of_the_set_leaves_nothing() {
    let env = Env::new();
    let project = env.path("small");
    let Some(_disk) = Tmpfs::mount(&project, "20k") else {
        return;
    };
    let run: Run = env
        .command()
        .current_dir(&project)
        .args(["--db-path", env.db.to_str().unwrap(), "init", "--slurm"])
        .output()
        .unwrap()
        .into();
    run.failed_with(1, "were removed, so a retry starts clean");
    assert!(
        run.stdout.contains("wrote "),
        "part of the set was written: {}",
        run.stdout
    );
    let files = || -> Vec<PathBuf> { walk(&project).into_iter().filter(|p| p.is_file()).collect() };
    assert!(files().is_empty(), "{:?}", files());
    // T17 F4: with --overwrite, the user's own config replaced before the
    // failure is put back, not left as the template.
    let mine = "# my settings\nmax_backups: 7\n";
    fs::write(project.join("dbbackup.yaml"), mine).unwrap();
    let run: Run = env
        .command()
        .current_dir(&project)
        .args([
            "--db-path",
            env.db.to_str().unwrap(),
            "init",
            "--slurm",
            "--overwrite",
        ])
        .output()
        .unwrap()
        .into();
    run.failed_with(1, "were put back, so a retry starts clean");
    assert_eq!(
        fs::read_to_string(project.join("dbbackup.yaml")).unwrap(),
        mine
    );
    assert_eq!(
        files(),
        [project.join("dbbackup.yaml")],
        "nothing else left"
    );
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(walk(&path));
        }
        all.push(path);
    }
    all
}

/// T15 #9: `periodic --metrics-file` on a full filesystem could not replace
/// the file, and the last run's `dbbackup_healthy 1` stayed for every scrape
/// while the set was unhealthy. The stale file is removed (absent metrics
/// alert), and the line says so.
#[test]
fn a_metrics_file_that_cannot_be_written_is_not_left_stale() {
    let env = Env::new();
    let dir = env.path("textfile");
    let Some(_disk) = Tmpfs::mount(&dir, "64k") else {
        return;
    };
    let metrics = dir.join("dbbackup.prom");
    let periodic = || -> Run {
        env.command()
            .args(["periodic", "--metrics-file", metrics.to_str().unwrap()])
            .output()
            .unwrap()
            .into()
    };
    periodic().ok();
    assert!(
        fs::read_to_string(&metrics)
            .unwrap()
            .contains("dbbackup_healthy")
    );
    fill(&dir);
    fs::write(&env.db, b"not a database any more").unwrap();
    let run = periodic();
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(!metrics.exists(), "the stale verdict is gone");
    assert!(
        run.stderr.contains("the previous metrics file was removed"),
        "{}",
        run.stderr
    );
    // Read-only (T17 F5): it cannot go either, and the line says the old
    // verdict stays.
    fs::remove_file(dir.join("filler")).unwrap();
    fs::remove_file(&env.db).unwrap();
    make_ledger_db(&env.db, 10, false);
    let _ = periodic();
    assert!(metrics.exists(), "written again once there is room");
    _disk.remount_read_only();
    fs::write(&env.db, b"not a database any more").unwrap();
    let run = periodic();
    _disk.remount_read_write();
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("could not be removed either: scrapes still read the last run's verdict"),
        "{}",
        run.stderr
    );
}

/// T25 #7: a restore refused because its pre-restore copy cannot be saved (a
/// read-only backup directory) first warned that "the restored results.db"
/// could not get the group of the file it replaces, though nothing was
/// restored. Said only of a restore that replaced the file.
#[test]
fn a_refused_restore_says_nothing_of_the_restored_files_group() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let project = env.path("project");
    fs::create_dir(&project).unwrap();
    let db = project.join("results.db");
    fs::copy(&env.db, &db).unwrap();
    // nobody's database in nobody's directory, of a group nobody is not in.
    nix::unistd::chown(&project, Some(nobody.uid), None).unwrap();
    nix::unistd::chown(&db, Some(nobody.uid), Some(nix::unistd::Gid::from_raw(0))).unwrap();
    chmod(&db, 0o664);
    chmod(&env.backups, 0o555);
    for name in env.backup_files() {
        chmod(&env.backups.join(name), 0o644);
    }
    let args = ["restore", "latest", "--target", db.to_str().unwrap()];
    let Some(run) = as_nobody(&env, &args) else {
        return;
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("group"), "{}", run.stderr);
    let line = error_line(&run);
    assert!(
        line.starts_with(&format!("cannot save {} in ", db.display())),
        "{line}"
    );
    // Allowed to save it: restored, and then the group is said.
    for entry in dir_and_its_entries(&env.backups) {
        nix::unistd::chown(&entry, Some(nobody.uid), None).unwrap();
    }
    chmod(&env.backups, 0o755);
    let run = as_nobody(&env, &args).unwrap();
    run.ok();
    assert!(
        run.stderr.contains(&format!(
            " WARN job=local host={}: the restored {} could not be given the group 0 of the file it replaced: EPERM",
            nix::unistd::gethostname().unwrap().to_string_lossy(),
            db.display()
        )),
        "{}",
        run.stderr
    );
}

/// T28 F9: the same hot journal in a directory of mode 555, read by a user
/// who cannot write there (not root): SQLite fails with "disk I/O error",
/// which read as failing hardware. Said as what SQLite needs.
#[test]
fn a_hot_journal_in_a_directory_the_user_cannot_write_says_what_sqlite_needs() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        return; // another user is needed; CI runs as root
    }
    let env = Env::empty();
    fs::set_permissions(env.root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = env.path("ro");
    fs::create_dir(&dir).unwrap();
    let hot = hot_journal_db(&env, &dir);
    // The user's own files (SQLite can open the journal to roll it back, and
    // fails only to delete it): "disk I/O error".
    for file in [&hot, &dir.join("hot.db-journal")] {
        std::os::unix::fs::chown(file, Some(65534), Some(65534)).unwrap();
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    fs::create_dir(&env.backups).unwrap();
    fs::set_permissions(&env.backups, fs::Permissions::from_mode(0o777)).unwrap();
    // A copy of the binary that user can run (CI builds in a directory of mode 700).
    let binary = env.path("dbbackup");
    copy_binary(&binary);
    let settings = env.command();
    let mut command = Command::new(&binary);
    command.current_dir(env.root.path());
    for (name, value) in settings.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let run: Run = command
        .env("DBBACKUP_DB_PATH", &hot)
        .uid(65534)
        .gid(65534)
        .arg("backup")
        .output()
        .unwrap()
        .into();
    run.failed_with(1, "SQLite needs write access to the database's directory");
    assert!(run.stderr.contains("hot journal"), "{}", run.stderr);
}

/// T28 F22: `export` onto a full disk said "cannot write decompressed data",
/// naming no place. It names the output's directory, and leaves nothing.
#[test]
fn export_onto_a_full_disk_names_the_directory_and_leaves_nothing() {
    let env = env_with_db();
    env.run(&["backup"]).ok();
    let out_dir = env.path("out");
    let Some(_disk) = Tmpfs::mount(&out_dir, "300k") else {
        return;
    };
    let out = out_dir.join("e.db.gz");
    let run = env.run(&["export", "latest", "--out", out.to_str().unwrap()]);
    run.failed_with(
        1,
        &format!(
            "cannot write the exported copy in {}; nothing was written",
            out_dir.display()
        ),
    );
    assert_eq!(fs::read_dir(&out_dir).unwrap().count(), 0);
}
