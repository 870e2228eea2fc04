//! `dbbackup run` and the shipped job templates as SLURM really drives them,
//! without a cluster: `bash slurm/job_single.sbatch` (which execs `dbbackup
//! run`) with SLURM's variables, in its own process group, and signals sent the
//! way SLURM sends them: TERM to every process of the job at once, more than
//! once; TERM or USR1 to the batch shell alone (`scancel -b`, `--signal=B:`).
//! These replace the tests of the old bash supervisor (the hooks file is now a
//! shim) and cover the same dangers.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::common::*;

/// `bash SCRIPT WORK...` as a batch shell: its own process group, SLURM's
/// variables, the test's settings, nothing inherited.
fn batch_shell(env: &Env, job_id: &str, script: &Path, work: &[&str]) -> Command {
    let mut command = job_command(env, "bash");
    command
        .env("SLURM_JOB_ID", job_id)
        .env("SLURM_SUBMIT_DIR", env!("CARGO_MANIFEST_DIR"))
        .arg(script)
        .args(work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    command
}

/// Whether `pid` catches `signal` (`SigCgt` in /proc/PID/status).
fn catches(pid: u32, signal: Signal) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (signal as u64 - 1)) != 0)
}

/// Until the batch shell has exec'd `dbbackup run` and it catches TERM and
/// USR1: before that, any program dies of them.
fn wait_for_supervisor(child: &Child) {
    wait_until(
        "dbbackup run starts",
        Duration::from_secs(30),
        Duration::from_millis(1),
        || catches(child.id(), Signal::SIGTERM) && catches(child.id(), Signal::SIGUSR1),
    );
}

fn term_group(child: &Child) {
    // ESRCH: the job already ended, as it may have between two of SLURM's TERMs.
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
}

/// Wait for the batch shell, failing (and killing its group) past `limit`.
fn finish(mut child: Child, limit: Duration) -> Run {
    if exit_within(&mut child, limit).is_none() {
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let out = child.wait_with_output().unwrap();
        panic!(
            "job script still running after {limit:?}; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.wait_with_output().unwrap().into()
}

fn lines_of(env: &Env, job: &str, event: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let log = env.summary_log();
    if !log.exists() {
        return Vec::new();
    }
    summary_lines(&log)
        .into_iter()
        .filter(|l| l["job"] == job && l["event"] == event)
        .collect()
}

fn wait_for_line(env: &Env, job: &str, event: &str) {
    wait_until(
        &format!("job {job} logs its {event} line"),
        Duration::from_secs(30),
        Duration::from_millis(10),
        || !lines_of(env, job, event).is_empty(),
    );
}

/// SLURM's time limit or `scancel`, then a second TERM (preemption, a second
/// `scancel`), at varied moments: during pre-job, during the work, during
/// post-job. `run` logs its post-job line with the work's status and exits
/// with that status every time.
#[test]
fn repeated_term_at_any_moment_never_loses_the_post_job_line() {
    let env = Env::new();
    let template = slurm_dir().join("job_single.sbatch");
    for run in 0..rounds(10, 4) {
        let job = format!("4{run:03}");
        let child = batch_shell(&env, &job, &template, &["sleep", "30"])
            .spawn()
            .unwrap();
        wait_for_supervisor(&child);
        std::thread::sleep(Duration::from_millis(run * 30));
        term_group(&child);
        std::thread::sleep(Duration::from_millis(30 + run * 20));
        term_group(&child);
        let out = finish(child, Duration::from_secs(60));
        let post = lines_of(&env, &job, "post-job");
        assert_eq!(
            post.len(),
            1,
            "run {run}: one post-job line; exit {} stderr:\n{}",
            out.code,
            out.stderr
        );
        assert_eq!(post[0]["exit_status"], "143", "run {run}: {:?}", post[0]);
        assert_eq!(post[0]["after_term"], "true", "run {run}: {:?}", post[0]);
        assert_eq!(post[0]["after_signal"], "TERM", "run {run}: {:?}", post[0]);
        assert_eq!(
            out.code, 143,
            "run {run}: the work's status; {}",
            out.stderr
        );
    }
    env.run(&["verify", "--all"]).ok();
}

/// A second TERM arrives while post-job waits for a lock another process holds:
/// post-job is undisturbed, gives up within the time allowed after TERM and
/// says so in its summary line; the job exits with the work's status.
#[test]
fn post_job_after_term_is_bounded_and_says_when_it_gave_up() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let template = slurm_dir().join("job_single.sbatch");
    let child = batch_shell(&env, "5001", &template, &["sleep", "30"])
        .env("DBBACKUP_TERM_GRACE_SECONDS", "3")
        .spawn()
        .unwrap();
    wait_for_line(&env, "5001", "pre-job");
    let lock = hold_dir_lock(
        &env.lock_file(),
        "host=elsewhere pid=1 job=9999 since=2026-01-01T00:00:00Z",
    );
    std::thread::sleep(Duration::from_millis(300));
    term_group(&child);
    let first_term = Instant::now();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        term_group(&child);
    }
    let out = finish(child, Duration::from_secs(30));
    let took = first_term.elapsed();
    drop(lock);
    assert_eq!(out.code, 143, "{}", out.stderr);
    let post = lines_of(&env, "5001", "post-job");
    assert_eq!(post.len(), 1, "{}", out.stderr);
    assert_eq!(post[0]["status"], "failed");
    assert!(
        post[0]["error"].contains("gave up after 3 s"),
        "{:?}",
        post[0]
    );
    assert_eq!(post[0]["exit_status"], "143");
    // Bounded from the first TERM: a correctness bound (SLURM kills at
    // KillWait), not a speed target.
    assert!(took < Duration::from_secs(8), "post-job took {took:?}");
    assert!(
        out.stderr.contains("job=9999"),
        "it said whom it waited for: {}",
        out.stderr
    );
}

/// T10 #13b: a TERM that comes after the work ended (post-job waiting for a
/// lock) said "passed on to the work"; it now says the work has ended.
#[test]
fn a_term_after_the_work_ended_does_not_claim_to_reach_it() {
    let env = Env::new();
    let template = slurm_dir().join("job_single.sbatch");
    let child = batch_shell(&env, "5002", &template, &["sleep", "1"])
        .env("DBBACKUP_TERM_GRACE_SECONDS", "3")
        .spawn()
        .unwrap();
    wait_for_line(&env, "5002", "pre-job");
    let lock = hold_dir_lock(
        &env.lock_file(),
        "host=elsewhere pid=1 job=9999 since=2026-01-01T00:00:00Z",
    );
    // The work (1 s) has ended; post-job waits for the lock.
    std::thread::sleep(Duration::from_millis(2500));
    term_group(&child);
    let out = finish(child, Duration::from_secs(30));
    drop(lock);
    assert!(
        out.stderr
            .contains("SIGTERM: the work has ended; post-job finishing within 3 s"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("passed on to the work"),
        "{}",
        out.stderr
    );
}

/// The bug `run` fixes: a job script runs a program without `exec` (here
/// `bash task.sh`, which runs python). TERM to the batch shell alone (`scancel
/// -b -s TERM`) must stop python too, before post-job: the post-job backup then
/// holds every row python committed, and nothing is written after the job.
#[test]
fn term_to_the_batch_shell_stops_a_program_the_script_did_not_exec() {
    let env = Env::new();
    let pid_file = env.path("writer.pid");
    fs::write(
        env.path("writer.py"),
        python_ledger_writer(0.02, None, Some(&pid_file)),
    )
    .unwrap();
    // Not `exec`: bash stays python's parent.
    fs::write(
        env.path("task.sh"),
        format!("python3 writer.py '{}'\necho after\n", env.db.display()),
    )
    .unwrap();
    let template = slurm_dir().join("job_single.sbatch");
    let rows_before = row_count(&env.db, "ledger");
    let child = batch_shell(&env, "5010", &template, &["bash", "task.sh"])
        .spawn()
        .unwrap();
    wait_for_ledger_rows(&env.db, rows_before + 20, Duration::from_secs(30));
    let python: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // `scancel -b -s TERM`: the batch shell (now `dbbackup run`) only.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = finish(child, Duration::from_secs(30));
    assert_eq!(out.code, 143, "{}", out.stderr);
    let alive = fs::read_to_string(format!("/proc/{python}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .unwrap()
            .1
            .trim_start()
            .starts_with('Z')
    });
    if alive {
        let _ = kill(Pid::from_raw(python), Signal::SIGKILL);
    }
    assert!(!alive, "python still running after the job ended");
    let rows = row_count(&env.db, "ledger");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(row_count(&env.db, "ledger"), rows, "nothing written after");
    let post = lines_of(&env, "5010", "post-job");
    assert_eq!(post.len(), 1, "{}", out.stderr);
    assert_eq!(post[0]["exit_status"], "143");
    let copy = gunzip_to(&env.backups.join(&post[0]["backup"]), &env.path("post.db"));
    assert_eq!(
        content_digest(&copy),
        content_digest(&env.db),
        "the post-job backup holds all the work"
    );
    assert_ledger_invariant(&copy);
}

/// USR1 arriving as the work exits must not change its status 7: `run` reports
/// what waitpid said, whatever the signals did meanwhile.
#[test]
fn the_work_exit_status_survives_usr1_arriving_as_it_exits() {
    let env = Env::new();
    for i in 0..rounds(30, 8) {
        let job = format!("52{i:02}");
        let mut child = env
            .command()
            .env("SLURM_JOB_ID", &job)
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(["run", "--", "sh", "-c"])
            .arg(format!("sleep 0.{:02}; exit 7", 10 + (i * 7) % 20))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&env, &job, "pre-job");
        std::thread::sleep(Duration::from_millis(5 + (i * 13) % 40));
        for _ in 0..5 {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGUSR1);
            std::thread::sleep(Duration::from_millis(2));
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(7), "run {i}");
        let post = lines_of(&env, &job, "post-job");
        assert_eq!(post.len(), 1, "run {i}");
        assert_eq!(post[0]["exit_status"], "7", "run {i}: {:?}", post[0]);
    }
}

/// Runs the batch shell and, once `dbbackup run` catches signals, signals it
/// every millisecond until it ends: USR1 to it (`--signal=B:USR1`) and, with
/// `term`, TERM to the whole group (SLURM's TERM reaches every process).
fn under_signal_storm(env: &Env, mut command: Command, term: bool) -> (Run, Duration) {
    // Files, not pipes: nobody reads a pipe while the storm goes on.
    let (stdout, stderr) = (env.path("storm.out"), env.path("storm.err"));
    let mut child = command
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let shell = Pid::from_raw(child.id() as i32);
    wait_for_supervisor(&child);
    let storm = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if storm.elapsed() > Duration::from_secs(60) {
            let _ = killpg(shell, Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "still running after 60 s of signals; stderr:\n{}",
                fs::read_to_string(&stderr).unwrap()
            );
        }
        if term {
            let _ = killpg(shell, Signal::SIGTERM);
        }
        let _ = kill(shell, Signal::SIGUSR1);
        std::thread::sleep(Duration::from_millis(1));
    };
    let took = storm.elapsed();
    let _ = killpg(shell, Signal::SIGKILL);
    let run = Run {
        code: status.code().unwrap_or(-1),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        stdout: fs::read_to_string(&stdout).unwrap(),
        stderr: fs::read_to_string(&stderr).unwrap(),
    };
    (run, took)
}

/// USR1 alone, then TERM and USR1, every millisecond from the moment `run`
/// catches them: it never dies of one, exits with the work's status (7, or
/// 143 when TERM stopped it), writes one post-job line saying so, and every
/// USR1 backup wrote a whole summary line.
#[test]
fn a_storm_of_signals_never_loses_the_status_nor_the_post_job_line() {
    let env = Env::new();
    let template = slurm_dir().join("job_single.sbatch");
    for (job, term) in [("5301", false), ("5302", true)] {
        let command = batch_shell(&env, job, &template, &["sh", "-c", "sleep 1; exit 7"]);
        let (out, took) = under_signal_storm(&env, command, term);
        let want = if term { 143 } else { 7 };
        assert_eq!(out.signal, None, "{}", out.stderr);
        assert_eq!(out.code, want, "term {term}: {}", out.stderr);
        let post = lines_of(&env, job, "post-job");
        assert_eq!(post.len(), 1, "term {term}: {}", out.stderr);
        assert_eq!(post[0]["exit_status"], want.to_string());
        if !term {
            assert!(!lines_of(&env, job, "time-limit").is_empty());
        }
        assert!(took < Duration::from_secs(30), "{took:?}");
    }
    env.run(&["verify", "--all"]).ok();
}

/// exit 127 (not found), 126 (not executable), 2 (bad configuration) from
/// dbbackup stop the job before its work, strict or not, loudly.
#[test]
fn a_dbbackup_that_cannot_run_stops_the_job_before_its_work() {
    let env = Env::new();
    let template = slurm_dir().join("job_single.sbatch");
    let not_executable = env.path("dbbackup-copy");
    fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    // (expected exit, DBBACKUP, DBBACKUP_CONFIG, what stderr says)
    let cases: [(i32, PathBuf, Option<&str>, &str); 3] = [
        (127, env.path("missing/dbbackup"), None, "FATAL"),
        (126, not_executable, None, "FATAL"),
        (
            2,
            PathBuf::from(BIN),
            Some("/nonexistent/dbbackup.yaml"),
            "/nonexistent/dbbackup.yaml",
        ),
    ];
    for (code, dbbackup, config, says) in cases {
        for strict in ["0", "1"] {
            let marker = env.path("work-ran");
            let mut command = batch_shell(
                &env,
                "5003",
                &template,
                &["touch", marker.to_str().unwrap()],
            );
            command
                .env("DBBACKUP", &dbbackup)
                .env("DBBACKUP_STRICT", strict);
            if let Some(config) = config {
                command.env("DBBACKUP_CONFIG", config);
            }
            let out = finish(command.spawn().unwrap(), Duration::from_secs(30));
            assert_eq!(out.code, code, "{}", out.stderr);
            assert!(!marker.exists(), "exit {code}: the work must not start");
            assert!(out.stderr.contains(says), "{}", out.stderr);
        }
    }
}

/// `sbatch slurm/job_single.sbatch` with no command used to run nothing and
/// succeed; now it is a usage error, said in one line, before any backup. A
/// command that cannot be executed fails as a shell's would.
#[test]
fn a_job_without_a_runnable_command_fails_like_a_shell() {
    let env = Env::new();
    let template = slurm_dir().join("job_single.sbatch");
    let out = finish(
        batch_shell(&env, "5020", &template, &[]).spawn().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("no COMMAND"), "{}", out.stderr);
    assert!(lines_of(&env, "5020", "pre-job").is_empty());
    let not_executable = env.path("work.sh");
    fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    for (code, work, says) in [
        (127, "no-such-program-here", "command not found"),
        (126, not_executable.to_str().unwrap(), "permission denied"),
        // T27 F-L: the command and its arguments quoted as one word.
        (
            127,
            "sh -c true",
            "sh -c true: command not found (it is one word: give the command and its arguments as separate words, `dbbackup run -- sh -c true`, not quoted together)",
        ),
    ] {
        let out = finish(
            batch_shell(&env, "5021", &template, &[work])
                .spawn()
                .unwrap(),
            Duration::from_secs(30),
        );
        assert_eq!(out.code, code, "{}", out.stderr);
        assert!(out.stderr.contains(says), "{}", out.stderr);
    }
    assert!(env.backup_files().is_empty(), "no backup for a typo");
}

/// A work that ignores TERM is killed (SIGKILL to its group) within its share
/// of the time after TERM, so that post-job still runs inside KillWait; the
/// summary line says 137.
#[test]
fn a_work_that_ignores_term_is_killed_within_the_bound() {
    let env = Env::new();
    let template = slurm_dir().join("job_single.sbatch");
    let child = batch_shell(
        &env,
        "5030",
        &template,
        &["sh", "-c", "trap '' TERM; sleep 60; sleep 60"],
    )
    .env("DBBACKUP_TERM_GRACE_SECONDS", "3")
    .spawn()
    .unwrap();
    wait_for_line(&env, "5030", "pre-job");
    std::thread::sleep(Duration::from_millis(200));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let term = Instant::now();
    let out = finish(child, Duration::from_secs(30));
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert!(
        term.elapsed() < Duration::from_secs(5),
        "{:?}",
        term.elapsed()
    );
    assert!(out.stderr.contains("SIGKILL"), "{}", out.stderr);
    let post = lines_of(&env, "5030", "post-job");
    assert_eq!(post.len(), 1, "{}", out.stderr);
    assert_eq!(post[0]["exit_status"], "137");
    assert_ne!(post[0]["status"], "failed", "{:?}", post[0]);
}

/// Twenty tasks of one array get USR1 at once while they write (SLURM's
/// warning reaches every task at the same moment): one time-limit backup for
/// the array, not one per task pushing older restore points out; every task
/// writes its time-limit line.
#[test]
fn usr1_to_every_task_of_an_array_makes_one_time_limit_backup() {
    let env = Env::new();
    // Ten older restore points, the most retention keeps.
    for i in 0..10 {
        commit_into_wal_without_checkpoint(&env.db, 1);
        env.run(&["backup"]).ok();
        backdate(&env.newest_backup(), Duration::from_secs(3600 * (20 - i)));
    }
    let before = env.backup_files();
    let tasks = 20;
    let work = python_ledger_writer(0.05, Some(8), None);
    fs::write(env.path("work.py"), work).unwrap();
    let children: Vec<Child> = (0..tasks)
        .map(|task| {
            env.command()
                .env("SLURM_JOB_ID", (7000 + task).to_string())
                .env("SLURM_ARRAY_JOB_ID", "6999")
                .env("SLURM_ARRAY_TASK_ID", task.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", tasks.to_string())
                .env("SLURM_ARRAY_TASK_MIN", "0")
                .env("SLURM_ARRAY_TASK_MAX", (tasks - 1).to_string())
                .env("SLURM_ARRAY_TASK_STEP", "1")
                .env("DBBACKUP_MAX_BACKUPS", "10")
                .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
                .args(["run", "python3", "work.py", env.db.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let log = env.summary_log();
    wait_until(
        &format!("{tasks} pre-job lines"),
        Duration::from_secs(60),
        Duration::from_millis(20),
        || {
            log.exists()
                && summary_lines(&log)
                    .iter()
                    .filter(|l| l["event"] == "pre-job")
                    .count()
                    >= tasks
        },
    );
    // Every task's work is writing.
    let rows = row_count(&env.db, "ledger");
    wait_for_ledger_rows(
        &env.db,
        rows + 2 * 2 * tasks as i64,
        Duration::from_secs(60),
    );
    for child in &children {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGUSR1);
    }
    for mut child in children {
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
    let lines = summary_lines(&log);
    let warned: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "time-limit")
        .collect();
    assert_eq!(warned.len(), tasks, "{warned:#?}");
    let made: Vec<_> = warned.iter().filter(|l| l["status"] == "ok").collect();
    assert_eq!(made.len(), 1, "one backup for the array: {warned:#?}");
    let listed = listed(&env);
    assert_eq!(
        listed.values().filter(|r| r["kind"] == "auto").count(),
        1,
        "{listed:#?}"
    );
    // Pre-job, the time-limit backup and the last task's post-job: the older
    // restore points that went are those three, no more.
    let kept = before
        .iter()
        .filter(|name| env.backup_files().contains(name))
        .count();
    assert!(kept >= 7, "{kept} of 10 older restore points kept");
}

/// The shim for hand-written scripts: `dbbackup_pre_job`, then
/// `dbbackup_run_work` (which becomes `dbbackup run`), keep their meaning.
#[test]
fn the_hooks_shim_keeps_old_scripts_working() {
    let env = Env::new();
    let script = env.path("old.sh");
    fs::write(
        &script,
        format!(
            "set -euo pipefail\nsource '{}'\ndbbackup_pre_job || exit 1\nstatus=0\n\
             dbbackup_run_work sh -c 'exit 3' || status=$?\ndbbackup_post_job \"$status\"\nexit \"$status\"\n",
            slurm_dir().join("hooks/dbbackup_hooks.sh").display()
        ),
    )
    .unwrap();
    let out = finish(
        batch_shell(&env, "5040", &script, &[]).spawn().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let post = lines_of(&env, "5040", "post-job");
    assert_eq!(post.len(), 1, "{}", out.stderr);
    assert_eq!(post[0]["exit_status"], "3");
    assert_eq!(lines_of(&env, "5040", "pre-job")[0]["status"], "ok");
    // A dbbackup that cannot run still stops such a script at pre-job.
    let marker = env.path("work-ran");
    fs::write(
        &script,
        format!(
            "set -euo pipefail\nsource '{}'\ndbbackup_pre_job || exit 1\ntouch '{}'\n",
            slurm_dir().join("hooks/dbbackup_hooks.sh").display(),
            marker.display()
        ),
    )
    .unwrap();
    let out = finish(
        batch_shell(&env, "5041", &script, &[])
            .env("DBBACKUP", env.path("missing/dbbackup"))
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 127, "{}", out.stderr);
    assert!(out.stderr.contains("FATAL"), "{}", out.stderr);
    assert!(!marker.exists(), "the work must not start");
}

/// After TERM, post-job's grace stays inside the cluster's KillWait (read from
/// `scontrol show config`, here a fake on PATH that gets a TERM as it starts):
/// with KillWait 4 s, the default 20 s becomes 2 s, and the summary line says
/// which bound applied.
#[test]
fn post_job_after_term_stays_inside_the_clusters_kill_wait() {
    let env = Env::new();
    let bin = env.path("fake-bin");
    fake_tool(
        &bin,
        "scontrol",
        // SLURM's repeated TERM reaches scontrol too: it must be immune.
        "#!/bin/sh\nkill -TERM $$\nprintf 'KillOnBadExit           = 0\\nKillWait                = 4 sec\\n'\n",
    );
    let path = path_with(&bin);
    let run: Run = env
        .command()
        .env("PATH", path)
        .env("SLURM_JOB_ID", "5101")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["post-job", "--after-term", "--status", "143"])
        .output()
        .unwrap()
        .into();
    run.ok();
    let post = lines_of(&env, "5101", "post-job");
    assert_eq!(post.len(), 1, "{}", run.stderr);
    assert_eq!(
        post[0]["term_grace"], "2 s: KillWait 4 s minus 2 s",
        "{:?}",
        post[0]
    );
}

/// A failed backup (here post-job cannot get the lock) never fails the job:
/// the exit code is the work's. With `--strict` (`DBBACKUP_STRICT=1`) a
/// successful work's job fails (exit 1); a failed work keeps its own status.
#[test]
fn a_failed_backup_fails_the_job_only_with_strict() {
    let env = Env::new();
    for (i, (strict, work_status, want)) in [("0", 0, 0), ("1", 0, 1), ("1", 5, 5)]
        .into_iter()
        .enumerate()
    {
        let job = format!("560{i}");
        let child = env
            .command()
            .env("SLURM_JOB_ID", &job)
            .env("DBBACKUP_STRICT", strict)
            .env("DBBACKUP_LOCK_TIMEOUT_SECONDS", "1")
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(["run", "--", "sh", "-c"])
            .arg(format!("sleep 1; exit {work_status}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&env, &job, "pre-job");
        let lock = hold_dir_lock(
            &env.lock_file(),
            "host=elsewhere pid=1 job=9999 since=2026-01-01T00:00:00Z",
        );
        let out: Run = child.wait_with_output().unwrap().into();
        drop(lock);
        assert_eq!(out.code, want, "strict {strict}: {}", out.stderr);
        let post = lines_of(&env, &job, "post-job");
        assert_eq!(post[0]["status"], "failed", "{:?}", post[0]);
        assert_eq!(post[0]["exit_status"], work_status.to_string());
    }
}

/// A fake `scontrol` on PATH that answers `show config` with `KillWait` and
/// notes each call in `scontrol-calls`; the PATH to use.
fn fake_scontrol(env: &Env, kill_wait: u64) -> String {
    let bin = env.path("fake-bin");
    fake_tool(
        &bin,
        "scontrol",
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nprintf 'ClusterName = c\\nKillWait = {kill_wait} sec\\n'\n",
            env.path("scontrol-calls").display()
        ),
    );
    path_with(&bin)
}

/// T10 #12: a work that writes its checkpoint on TERM got a third of the
/// time after TERM (here 6 s of KillWait 20 s minus 2 s) and was killed while
/// saving. It now keeps all but what post-job is expected to need (this
/// database backs up in well under a second): its 8 s checkpoint is written,
/// it exits with its own status, and the post-job backup holds the checkpoint.
#[test]
fn a_work_checkpointing_on_term_keeps_most_of_kill_wait() {
    let env = Env::new();
    let path = fake_scontrol(&env, 20);
    let started = env.path("started");
    let script = env.path("ckpt.sh");
    fs::write(
        &script,
        format!(
            "trap 'sleep 8; sqlite3 {db} \"INSERT INTO ledger (amount, note) VALUES (0, '\\''ckpt'\\'')\"; exit 7' TERM\n\
             touch {started}\nwhile :; do sleep 0.1; done\n",
            db = env.db.display(),
            started = started.display()
        ),
    )
    .unwrap();
    let child = env
        .command()
        .env("PATH", path)
        .env("SLURM_JOB_ID", "5300")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["run", "--", "bash"])
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_until(
        "the work runs",
        Duration::from_secs(60),
        Duration::from_millis(10),
        || started.exists(),
    );
    term_group(&child);
    let out = finish(child, Duration::from_secs(60));
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("the work gets "), "{}", out.stderr);
    assert!(!out.stderr.contains("SIGKILL"), "{}", out.stderr);
    let checkpoint = "SELECT count(*) FROM ledger WHERE note = 'ckpt'";
    let count = |db: &std::path::Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row(checkpoint, [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&env.db), 1, "the checkpoint was written");
    let post = lines_of(&env, "5300", "post-job");
    assert_eq!(post[0]["status"], "ok", "{:?}", post[0]);
    let restored = env.path("post.db");
    env.run(&["restore", "latest", "--target", restored.to_str().unwrap()])
        .ok();
    assert_eq!(count(&restored), 1, "the post-job backup holds it");
}

/// SLURM's TERM (to every process of the job) while pre-job copies a large
/// database: KillWait was read before the snapshot, so post-job is bounded by
/// KillWait 5 s minus 2 s, not by the 20 s default that SLURM's KILL cuts
/// short (no post-job line, a temp file left). The work never starts.
#[test]
fn term_during_pre_job_is_bounded_by_kill_wait_read_before_the_snapshot() {
    let env = Env::empty();
    make_results_db(&env.db, 120.0, false);
    let path = fake_scontrol(&env, 5);
    let marker = env.path("work-ran");
    let child = env
        .command()
        .env("PATH", path)
        .env("SLURM_JOB_ID", "5200")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["run", "--", "touch"])
        .arg(&marker)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    env.wait_for_temp_file(0, Duration::from_secs(60));
    term_group(&child);
    let term = Instant::now();
    let out = finish(child, Duration::from_secs(60));
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(!marker.exists(), "the work must not start");
    let post = lines_of(&env, "5200", "post-job");
    assert_eq!(post.len(), 1, "{}", out.stderr);
    assert_eq!(
        post[0]["term_grace"], "3 s: KillWait 5 s minus 2 s",
        "{:?}",
        post[0]
    );
    // Inside KillWait, with a margin for this busy machine.
    assert!(
        term.elapsed() < Duration::from_secs(5),
        "{:?}",
        term.elapsed()
    );
    assert!(
        !out.stderr.contains("the work starts without"),
        "{}",
        out.stderr
    );
    // No work to pass it to (T15 #7).
    assert!(
        out.stderr
            .contains("SIGTERM: before the work started (it will not start)")
            && !out.stderr.contains("passed on to the work"),
        "{}",
        out.stderr
    );
    assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
}

/// Outside SLURM (no SLURM_JOB_ID) a Ctrl-C is bounded by term_grace_seconds,
/// scontrol is never asked, and nothing speaks of SLURM's TERM or KillWait.
#[test]
fn int_outside_slurm_asks_no_scheduler_and_says_which_bound_applies() {
    let env = Env::new();
    let path = fake_scontrol(&env, 5);
    let child = env
        .command()
        .env("PATH", path)
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["run", "--", "sleep", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for_line(&env, "local", "pre-job");
    std::thread::sleep(Duration::from_millis(300));
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = finish(child, Duration::from_secs(30));
    assert_eq!(out.code, 130, "{}", out.stderr);
    let post = lines_of(&env, "local", "post-job");
    assert_eq!(post.len(), 1, "{}", out.stderr);
    assert_eq!(
        post[0]["term_grace"], "20 s: term_grace_seconds (not a SLURM job)",
        "{:?}",
        post[0]
    );
    // Ctrl-C is no TERM: the line says which signal came (issue 23).
    assert_eq!(post[0]["after_signal"], "INT", "{:?}", post[0]);
    assert!(!post[0].contains_key("after_term"), "{:?}", post[0]);
    assert!(!env.path("scontrol-calls").exists(), "scontrol was asked");
    assert!(!out.stderr.contains("SLURM's TERM"), "{}", out.stderr);
    assert!(!out.stderr.contains("KillWait"), "{}", out.stderr);
}

/// T19 #14: two `dbbackup run` lines in one batch script: the second pre-job
/// finds the first's restore point; there is no other task to name.
#[test]
fn a_second_run_in_one_job_says_an_earlier_pre_job_made_its_point() {
    let env = Env::new();
    for _ in 0..2 {
        env.command()
            .env("SLURM_JOB_ID", "88000300")
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(["run", "--", "true"])
            .output()
            .unwrap();
    }
    let pre = lines_of(&env, "88000300", "pre-job");
    assert_eq!(pre.len(), 2, "{pre:?}");
    assert_eq!(
        pre[1].get("reason").map(String::as_str),
        Some("made by an earlier pre-job of this job"),
        "{:?}",
        pre[1]
    );
}

/// Outside SLURM every `run` is its own job: the second run's pre-job does not
/// reuse the first run's record (a restore point without the first run's
/// rows) but holds the database as the first run left it; and a busy failure
/// under `--strict` is not remembered for later runs.
#[test]
fn local_runs_are_each_their_own_job() {
    let env = Env::new();
    let log = env.summary_log();
    let insert = |rows: u32| -> Run {
        env.command()
            .env("DBBACKUP_SUMMARY_LOG", &log)
            .args(["run", "--", "python3", "-c"])
            .arg(format!(
                "import sqlite3, sys\ncon = sqlite3.connect(sys.argv[1])\n\
                 con.executemany(\"INSERT INTO ledger (amount, note) VALUES (?, 'w')\", [(0,)] * {rows})\n\
                 con.commit()\n"
            ))
            .arg(&env.db)
            .output()
            .unwrap()
            .into()
    };
    insert(5).ok();
    let after_first = row_count(&env.db, "ledger");
    insert(7).ok();
    let pre: Vec<_> = lines_of(&env, "local", "pre-job");
    assert_eq!(pre.len(), 2);
    assert_ne!(
        pre[1].get("reason").map(String::as_str),
        Some("chosen by another task of this job"),
        "{:?}",
        pre[1]
    );
    let second = gunzip_to(
        &env.backups.join(&pre[1]["backup"]),
        &env.path("second-pre.db"),
    );
    assert_eq!(row_count(&second, "ledger"), after_first, "{:?}", pre[1]);

    // A database locked past the busy timeout fails one --strict run only.
    let strict = || -> Run {
        env.command()
            .env("DBBACKUP_SUMMARY_LOG", &log)
            .env("DBBACKUP_BUSY_TIMEOUT_SECONDS", "1")
            .args(["run", "--strict", "--", "true"])
            .output()
            .unwrap()
            .into()
    };
    let writer = hold_exclusive(&env.db);
    let out = strict();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("locked"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("other tasks"),
        "a local run has no other tasks: {}",
        out.stderr
    );
    drop(writer);
    let out = strict();
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// A single job sent USR1 again and again (`scancel -b -s USR1` twelve times)
/// while it writes: one time-limit backup per window, not one per signal
/// pushing older restore points out.
#[test]
fn a_usr1_storm_on_a_single_job_makes_one_time_limit_backup() {
    let env = Env::new();
    let log = env.summary_log();
    let work = python_ledger_writer(0.02, Some(9), None);
    fs::write(env.path("work.py"), work).unwrap();
    let child = env
        .command()
        .env("SLURM_JOB_ID", "5300")
        .env("DBBACKUP_SUMMARY_LOG", &log)
        .args(["run", "python3", "work.py", env.db.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_line(&env, "5300", "pre-job");
    // The work is writing (a warning before it changed anything makes none).
    let rows = row_count(&env.db, "ledger");
    wait_for_ledger_rows(&env.db, rows + 4, Duration::from_secs(30));
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(400));
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGUSR1);
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let warned = lines_of(&env, "5300", "time-limit");
    assert!(warned.len() >= 2, "{warned:#?}");
    let made = warned.iter().filter(|l| l["status"] == "ok").count();
    assert_eq!(made, 1, "one time-limit backup: {warned:#?}");
    let listed = listed(&env);
    let auto: Vec<_> = listed
        .keys()
        .filter(|n| listed[*n]["kind"] == "auto")
        .collect();
    assert_eq!(auto.len(), 1, "{listed:#?}");
    // The job's log says what its `auto` backup was for (T25b #11).
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches(&format!(
                ": time-limit backup made: {} (listed as kind auto, job 5300)\n",
                auto[0]
            ))
            .count(),
        1,
        "{stderr}"
    );
}

/// The processes whose command line holds `marker` (the test's own work).
fn processes_with(marker: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'));
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !zombie
                && String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(marker)
        })
        .collect()
}

/// A writer the work's shell put in a new process group or session (`timeout`,
/// `set -m`, `setsid`), which a signal to the work's group does not reach.
/// TERM to `dbbackup run` alone stops it too, before post-job: nothing the work
/// started outlives the job, and the post-job backup holds the final state.
#[test]
fn term_stops_what_the_work_started_in_a_new_group_or_session() {
    let cases = [
        ("timeout", "timeout 600 python3 writer.py DB MARK; echo end"),
        ("set -m", "set -m; python3 writer.py DB MARK & wait"),
        ("setsid", "setsid python3 writer.py DB MARK & sleep 314"),
    ];
    for (i, (name, shape)) in cases.into_iter().enumerate() {
        let env = Env::new();
        fs::write(
            env.path("writer.py"),
            python_ledger_writer(0.02, None, None),
        )
        .unwrap();
        let marker = format!("dbbackup-reaper-{}-{i}", std::process::id());
        let script = shape
            .replace("DB", &format!("'{}'", env.db.display()))
            .replace("MARK", &marker);
        let job = format!("53{i:02}");
        let rows_before = row_count(&env.db, "ledger");
        let child = env
            .command()
            .env("SLURM_JOB_ID", &job)
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(["run", "--", "bash", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_ledger_rows(&env.db, rows_before + 20, Duration::from_secs(30));
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let out = finish(child, Duration::from_secs(30));
        let left = processes_with(&marker);
        for pid in &left {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        assert_eq!(out.code, 143, "{name}: {}", out.stderr);
        assert!(
            left.is_empty(),
            "{name}: still running after dbbackup ended: {left:?}; stderr:\n{}",
            out.stderr
        );
        let rows = row_count(&env.db, "ledger");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            row_count(&env.db, "ledger"),
            rows,
            "{name}: nothing written after"
        );
        let post = lines_of(&env, &job, "post-job");
        assert_eq!(post.len(), 1, "{name}: {}", out.stderr);
        let copy = gunzip_to(&env.backups.join(&post[0]["backup"]), &env.path("post.db"));
        assert_eq!(
            content_digest(&copy),
            content_digest(&env.db),
            "{name}: the post-job backup holds the final state"
        );
    }
}

/// T25 #11: under `dbbackup run` (whose stdout is the work's) a pre-job that
/// reused its restore point, a post-job that found the database unchanged and
/// a USR1 backup skipped as unchanged said nothing in the job's output: a
/// user reading it could not tell whether the post-job ran. Each is logged.
#[test]
fn run_says_in_its_log_what_came_of_backups_it_did_not_make() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let newest = env.backup_files().pop().unwrap();
    let run: Run = env
        .command()
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "kill -USR1 $PPID; sleep 1; echo work",
        ])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert_eq!(run.stdout, "work\n", "stdout is the work's");
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|line| line.split_once(": ").map(|(_, said)| said))
        .collect();
    assert_eq!(
        said,
        [
            format!("restore point for job local reused {newest}"),
            "USR1: the time limit is near; backing up".to_string(),
            format!("time-limit backup skipped: database unchanged since {newest}"),
            "the work exited with status 0".to_string(),
            format!("skipped: database unchanged since {newest}"),
        ],
        "{}",
        run.stderr
    );
}
