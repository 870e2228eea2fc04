//! The edges of the process: a closed stdout, values that would overflow, files
//! that are not regular files, signals while blocked, and usage mistakes.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use nix::fcntl::OFlag;

use crate::common::*;

/// A pipe whose ends are not inherited by other children (close-on-exec).
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe")
}

/// Run with stdout a pipe whose reader has already gone (`dbbackup list | true`).
fn run_into_closed_pipe(env: &Env, args: &[&str]) -> Run {
    let (reader, writer) = pipe();
    drop(reader);
    env.command()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbbackup")
        .wait_with_output()
        .unwrap()
        .into()
}

/// The lock file is empty once its holder released it cleanly (a holder that
/// exits without cleaning up leaves its record for the next one to warn about).
fn lock_released_cleanly(env: &Env) -> bool {
    fs::read(env.lock_file()).map_or(true, |bytes| bytes.is_empty())
}

#[test]
fn every_reporting_command_into_a_closed_pipe_finishes_cleans_up_and_keeps_its_status() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let target = env.path("restored.db");
    let templates = env.path("tpl");
    let config = env.path("new.yaml");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["backup", "--force"], 0),
        (vec!["backup", "--force", "--format", "json"], 0),
        (vec!["list"], 0),
        (vec!["list", "--format", "json"], 0),
        (
            vec!["restore", "latest", "--target", target.to_str().unwrap()],
            0,
        ),
        (vec!["auto"], 0),
        (vec!["verify", "--all"], 0),
        (vec!["prune", "--dry-run"], 0),
        (vec!["prune"], 0),
        (vec!["pre-job"], 0),
        (vec!["post-job", "--status", "0"], 0),
        (vec!["periodic"], 0),
        (vec!["check"], 0),
        (vec!["check", "--min-count", "99"], 1),
        (vec!["check", "--format", "nagios", "--min-count", "99"], 2),
        (vec!["summary"], 0),
        (vec!["templates", "--out", templates.to_str().unwrap()], 0),
        (vec!["init", "--path", config.to_str().unwrap()], 0),
        (vec!["completions", "bash"], 0),
        (vec!["man"], 0),
    ];
    for (args, code) in cases {
        let run = run_into_closed_pipe(&env, &args);
        assert_eq!(
            run.code, code,
            "{args:?} exit status\nstderr: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        assert!(lock_released_cleanly(&env), "{args:?} left its lock record");
        assert!(
            env.stray_files().iter().all(|f| f == ".dbbackup-state"),
            "{args:?} left {:?}",
            env.stray_files()
        );
        assert!(
            !run.stderr.contains("ended without releasing cleanly"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // The work was done although nobody read the report.
    assert!(target.exists());
    assert!(templates.join("job_array.sbatch").exists());
    assert!(config.exists());
    assert!(env.summary_log().exists());
}

/// Run with stdout a pipe whose reader takes the first line and goes away
/// (`dbbackup verify --all | head -1`), stderr discarded.
fn run_into_pipe_closed_after_first_line(env: &Env, args: &[&str]) -> (String, i32) {
    let mut child = env
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dbbackup");
    let mut stdout = child.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    drop(stdout);
    let status = child.wait().unwrap();
    (
        String::from_utf8_lossy(&first).into_owned(),
        status.code().unwrap_or(-1),
    )
}

/// The earlier cases are healthy runs, where "exit 0 into a closed pipe" cannot
/// tell a kept status from a lost one: failing ones must keep their 1 or 2.
#[test]
fn a_failing_status_survives_a_reader_that_went_away() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let damaged = env.backups.join("backup_20000101_000000.db.gz");
    let bytes = fs::read(env.newest_backup()).unwrap();
    fs::write(&damaged, &bytes[..bytes.len() - 100]).unwrap();
    for (args, code) in [
        (vec!["check", "--min-count", "50"], 1),
        (vec!["check", "--format", "nagios", "--min-count", "50"], 2),
        (vec!["check", "--format", "json", "--min-count", "50"], 1),
        (vec!["verify", "--all"], 1),
        (vec!["verify", "--all", "--format", "json"], 1),
    ] {
        let unpiped = env.run(&args);
        assert_eq!(unpiped.code, code, "{args:?} unpiped: {}", unpiped.stdout);
        let closed = run_into_closed_pipe(&env, &args);
        assert_eq!(closed.code, code, "{args:?} | head -0: {}", closed.stderr);
        let (first, after_first) = run_into_pipe_closed_after_first_line(&env, &args);
        assert_eq!(after_first, code, "{args:?} | head -1 (read {first:?})");
    }
    assert!(lock_released_cleanly(&env));
}

#[test]
fn a_backup_whose_mirror_failed_exits_1_even_into_a_closed_pipe() {
    let env = Env::new();
    let blocker = env.path("not-a-dir");
    fs::write(&blocker, "a file where the mirror directory should be").unwrap();
    let mirror = blocker.join("mirror");
    let args = ["backup", "--mirror-dir", mirror.to_str().unwrap()];
    let run = run_into_closed_pipe(&env, &args);
    let made = env.backup_files();
    assert_eq!(made.len(), 1, "the primary backup was made");
    // The error line says the backup exists: only the mirror's copy failed.
    run.failed_with(
        1,
        &format!(
            "backup {} exists; its copy to mirror {} failed: ",
            made[0],
            mirror.display()
        ),
    );
    assert!(lock_released_cleanly(&env));
}

#[test]
fn every_numeric_option_is_range_checked_naming_option_and_range() {
    let env = Env::new();
    for (args, needle) in [
        (
            vec!["--min-interval-hours", "1e20", "auto"],
            "must be a number from 0 to 876000",
        ),
        (
            vec!["--threads", "100000", "backup"],
            "must be a whole number from 0 to 64",
        ),
        (
            vec!["--max-backups", "-1", "backup"],
            "must be a whole number from 1 to 4294967295",
        ),
        (
            vec!["--max-backups", "0", "prune"],
            "must be a whole number from 1 to 4294967295",
        ),
        (
            vec!["--keep-daily", "-3", "prune"],
            "must be a whole number from 0 to 4294967295",
        ),
        (
            vec!["--keep-pre-restore", "0", "prune"],
            "must be a whole number from 1 to 4294967295",
        ),
        (vec!["--compression-level", "10", "backup"], "from 1 to 9"),
        (
            vec!["--busy-timeout-seconds", "99999999999", "backup"],
            "from 0 to 604800",
        ),
        (
            vec!["--lock-timeout-seconds", "-5", "backup"],
            "from 0 to 604800",
        ),
        (vec!["check", "--max-shrink", "200"], "from 0 to 100"),
        (
            vec!["check", "--min-count", "-1"],
            "must be a whole number from 0 to 4294967295",
        ),
        (vec!["check", "--max-age", "-1h"], "'-1h' is not a duration"),
        (vec!["check", "--min-free", "-1G"], "'-1G' is not a size"),
        (
            vec!["--min-interval-hours", "NaN", "auto"],
            "from 0 to 876000",
        ),
    ] {
        let run = env.run(&args);
        run.failed_with(2, needle);
        let option = args.iter().find(|a| a.starts_with("--")).unwrap();
        assert!(
            run.stderr.contains(option),
            "names {option}: {}",
            run.stderr
        );
    }
    // The environment takes the same path.
    let run: Run = env
        .command()
        .env("DBBACKUP_THREADS", "100000")
        .arg("backup")
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "--threads");
    assert!(env.backup_files().is_empty());
    assert!(!env.backups.exists(), "nothing started");
}

#[test]
fn the_largest_accepted_values_work() {
    let env = Env::new();
    env.run(&[
        "--threads",
        "64",
        "--busy-timeout-seconds",
        "604800",
        "--lock-timeout-seconds",
        "604800",
        "--max-backups",
        "4294967295",
        "backup",
    ])
    .ok();
    env.run(&["--min-interval-hours", "876000", "auto"]).ok();
    env.run(&["check", "--max-shrink", "100", "--max-age", "99999w"])
        .ok();
}

#[test]
fn files_that_are_not_regular_files_are_refused_before_any_lock() {
    let env = Env::empty();
    nix::unistd::mkfifo(&env.db, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let link = env.path("link.db");
    std::os::unix::fs::symlink(&env.db, &link).unwrap();
    for db in [
        env.db.as_path(),
        link.as_path(),
        std::path::Path::new("/dev/null"),
    ] {
        for args in [
            vec!["backup"],
            vec!["auto"],
            vec!["pre-job"],
            vec!["post-job", "--status", "0"],
            vec!["periodic"],
            vec!["restore", "latest"],
        ] {
            let run: Run = env
                .command()
                .env("DBBACKUP_DB_PATH", db)
                .args(&args)
                .output()
                .unwrap()
                .into();
            assert_ne!(run.code, 0, "{db:?} {args:?}");
            assert!(
                run.stderr.contains("is not a regular file"),
                "{db:?} {args:?}: {}",
                run.stderr
            );
            assert!(!env.backups.exists(), "{args:?} took the lock");
        }
    }
    // Other files a run opens: the config file, the summary log, a restore target.
    let fifo = env.db.to_str().unwrap();
    env.run(&["--config", fifo, "list"])
        .failed_with(2, "not a regular file");
    let real = env.path("real.db");
    make_ledger_db(&real, 10, false);
    let with_real = |args: &[&str]| -> Run {
        env.command()
            .env("DBBACKUP_DB_PATH", &real)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    with_real(&["backup"]).ok();
    with_real(&["--summary-log", fifo, "summary"]).failed_with(1, "not a regular file");
    with_real(&["restore", "latest", "--target", fifo]).failed_with(1, "not a regular file");
}

/// A write that never completes (a full pipe nobody reads) cannot be
/// interrupted; SIGTERM still ends the process after the grace period.
#[test]
fn sigterm_ends_a_process_blocked_in_a_write_nobody_reads() {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::sys::signal::{Signal, kill};
    use std::os::unix::process::ExitStatusExt;
    let env = Env::empty();
    let (reader, writer) = pipe();
    // The smallest pipe: the 50 KB of completions cannot fit.
    fcntl(&writer, FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    let mut child = env
        .command()
        .args(["completions", "bash"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // One byte read: the process is running and writing; the rest never will be.
    // Kept open to the end: a closed reader would end the writer with EPIPE instead.
    let mut reader = fs::File::from(reader);
    let mut first = [0u8; 1];
    reader.read_exact(&mut first).unwrap();
    kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    // Grace is 5 s; a blocked process without the watchdog never ends at all.
    let status = exit_within(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    drop(reader);
    let status = status.expect("ended after SIGTERM");
    // The watchdog, too, ends the run by the signal's default action.
    assert_eq!(status.signal(), Some(15), "{status:?}");
}

/// A FIFO as the database used to block in open() for ever, deaf to SIGTERM.
#[test]
fn a_fifo_database_never_blocks_and_sigterm_is_never_needed() {
    let env = Env::empty();
    nix::unistd::mkfifo(&env.db, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = env
        .command()
        .arg("backup")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = exit_within(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(status.expect("ended on its own").code(), Some(1));
}

/// No command: exit 2 (a usage error), and the commands to choose from on
/// stdout, as git and cargo show them (`dbbackup | less` works).
#[test]
fn no_subcommand_is_a_usage_error_with_the_commands_on_stdout() {
    let env = Env::empty();
    let run = env.run(&[]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr, "");
    assert!(run.stdout.contains("Usage: dbbackup"), "{}", run.stdout);
    assert!(run.stdout.contains("pre-job"), "lists the commands");
    // Asking for help is not an error.
    let help = env.run(&["--help"]);
    help.ok();
    assert!(help.stdout.contains("Usage: dbbackup"));
}

/// Opening a FIFO for reading waits for a writer: one planted under a backup's
/// name must be passed over, not waited on.
#[test]
fn a_fifo_planted_under_a_backup_name_is_passed_over() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let good = env.backup_files();
    nix::unistd::mkfifo(
        &env.backups.join("backup_29990101_000000.db.gz"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let target = env.path("restored.db");
    for args in [
        vec!["list"],
        vec!["check"],
        vec!["verify", "--all"],
        vec!["prune"],
        vec!["summary"],
        vec!["auto"],
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
    ] {
        let mut child = env
            .command()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let status = exit_within(&mut child, Duration::from_secs(60));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(
            status.expect("did not wait on the FIFO").code(),
            Some(0),
            "{args:?}"
        );
    }
    assert_eq!(content_digest(&target), content_digest(&env.db));
    assert!(env.backup_files().starts_with(&good));
}

/// Run with stderr lost: a pipe whose reader has gone, or `/dev/full` (a job's
/// output file on a full filesystem). Returns the exit code.
fn run_with_stderr_lost(env: &Env, args: &[&str], to_full_disk: bool) -> i32 {
    let stderr = if to_full_disk {
        Stdio::from(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    } else {
        let (reader, writer) = pipe();
        drop(reader);
        Stdio::from(writer)
    };
    let status = env
        .command()
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .status()
        .expect("spawn dbbackup");
    // A panic exits 101; a signal (SIGPIPE) has no code.
    status.code().expect("exited, not killed by a signal")
}

/// A log line that cannot be written is dropped: the work, the backup and the
/// exit code are what they would be with a terminal (it used to panic, exit 101,
/// after or before the backup, and `run` never started the job's work).
#[test]
fn a_lost_stderr_changes_neither_the_work_nor_the_exit_code() {
    for to_full_disk in [false, true] {
        let env = Env::new();
        let before = env.backup_files().len();
        let code = run_with_stderr_lost(&env, &["backup", "-v"], to_full_disk);
        assert_eq!(code, 0, "backup -v, stderr to /dev/full: {to_full_disk}");
        assert_eq!(
            env.backup_files().len(),
            before + 1,
            "a backup was published"
        );

        let target = env.path("restored.db");
        let args = ["restore", "latest", "--target", target.to_str().unwrap()];
        assert_eq!(run_with_stderr_lost(&env, &args, to_full_disk), 0);
        assert_eq!(content_digest(&target), content_digest(&env.db));

        let marker = env.path("work-ran");
        let work = format!("touch '{}'", marker.display());
        let code = run_with_stderr_lost(&env, &["run", "--", "sh", "-c", &work], to_full_disk);
        assert_eq!(code, 0, "run, stderr to /dev/full: {to_full_disk}");
        assert!(marker.exists(), "the job's work ran");

        let missing = env.path("missing.db");
        let args = ["--db-path", missing.to_str().unwrap(), "backup"];
        assert_eq!(run_with_stderr_lost(&env, &args, to_full_disk), 1);
        assert_eq!(
            run_with_stderr_lost(&env, &["--no-such-option"], to_full_disk),
            2
        );
    }
}
