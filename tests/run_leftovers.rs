//! `dbbackup run` when the work exits by itself but leaves processes running
//! (`cmd &`, `setsid`): they are stopped before the post-job backup, as after
//! a TERM, so that the backup is the job's final state and nothing writes after
//! the job (T10 #3). Also how a TERM after a Ctrl-C is named (T10 #2).

use std::fs;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// The pid a work wrote into `path`, once it is there.
fn pid_in(path: &std::path::Path) -> i32 {
    poll_until(
        &format!("a pid in {}", path.display()),
        Duration::from_secs(30),
        Duration::from_millis(10),
        || {
            fs::read_to_string(path)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
                .ok_or(())
        },
    )
}

/// `run`'s output once it exits, and whether `leftover` was still alive then
/// (it is killed, so that the pipes it inherited close and nothing outlives
/// the test).
fn finish_and_reap(mut child: Child, leftover: i32) -> (Run, bool) {
    let exited = exit_within(&mut child, Duration::from_secs(60));
    let still = alive(leftover);
    if still {
        let _ = kill(Pid::from_raw(leftover), Signal::SIGKILL);
    }
    assert!(exited.is_some(), "`dbbackup run` did not end");
    (child.wait_with_output().unwrap().into(), still)
}

/// The only post-job line of the summary log.
fn post_job_line(env: &Env) -> std::collections::BTreeMap<String, String> {
    let mut post: Vec<_> = summary_lines(&env.summary_log())
        .into_iter()
        .filter(|l| l["event"] == "post-job")
        .collect();
    assert_eq!(post.len(), 1, "{post:?}");
    post.remove(0)
}

/// T10's job: `bash -c 'python3 writer.py & sleep 2'`. The work exits 0 while
/// the writer it started in the background goes on writing. `run` stops the
/// writer before post-job, says so, and the post-job backup holds exactly what
/// the database holds: nothing is written after the job.
#[test]
fn a_writer_the_work_left_running_is_stopped_before_the_post_job_backup() {
    let env = Env::new();
    let pid_file = env.path("writer.pid");
    fs::write(
        env.path("writer.py"),
        python_ledger_writer(0.02, None, Some(&pid_file)),
    )
    .unwrap();
    let rows_before = row_count(&env.db, "ledger");
    let work = format!(
        "python3 writer.py '{}' & sleep 1.5; echo work done",
        env.db.display()
    );
    let child = env
        .command()
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["run", "--", "bash", "-c", &work])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = pid_in(&pid_file);
    let (out, still) = finish_and_reap(child, writer);
    assert!(
        !still,
        "the writer outlived `dbbackup run`:\n{}",
        out.stderr
    );
    assert_eq!(out.code, 0, "the work's status: {}", out.stderr);
    let rows = row_count(&env.db, "ledger");
    assert!(rows > rows_before, "the writer wrote");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(row_count(&env.db, "ledger"), rows, "nothing written after");
    assert!(
        out.stderr
            .contains("the work exited but left processes running (process group")
            && out.stderr.contains(&format!("pids {writer})")),
        "{}",
        out.stderr
    );
    let post = post_job_line(&env);
    assert_eq!(post["status"], "ok", "{post:?}");
    assert_eq!(post["exit_status"], "0", "{post:?}");
    assert_eq!(post["left_running"], writer.to_string(), "{post:?}");
    assert_eq!(post["left_running_stopped"], "TERM", "{post:?}");
    let copy = gunzip_to(&env.backups.join(&post["backup"]), &env.path("post.db"));
    assert_eq!(row_count(&copy, "ledger"), rows, "{post:?}");
    assert_eq!(
        content_digest(&copy),
        content_digest(&env.db),
        "the post-job backup is the final state"
    );
    assert_ledger_invariant(&copy);
}

/// A left-behind process in a new session that ignores TERM gets SIGKILL
/// after the work's share of the time after TERM (a third of
/// term_grace_seconds 3: 1 s), and the line says KILL.
#[test]
fn a_left_behind_process_that_ignores_term_is_killed_within_the_bound() {
    let env = Env::new();
    let pid_file = env.path("stubborn.pid");
    let work = format!(
        "setsid sh -c 'trap \"\" TERM; echo $$ > {}; while :; do sleep 0.1; done' & sleep 0.5",
        pid_file.display()
    );
    let started = Instant::now();
    let child = env
        .command()
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .env("DBBACKUP_TERM_GRACE_SECONDS", "3")
        .args(["run", "--", "bash", "-c", &work])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stubborn = pid_in(&pid_file);
    let (out, still) = finish_and_reap(child, stubborn);
    let took = started.elapsed();
    assert!(!still, "it outlived `dbbackup run`:\n{}", out.stderr);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        out.stderr
            .contains("processes the work left running are still running after SIGTERM: SIGKILL"),
        "{}",
        out.stderr
    );
    let post = post_job_line(&env);
    assert_eq!(post["left_running_stopped"], "KILL", "{post:?}");
    assert!(
        post["left_running"]
            .split(',')
            .any(|pid| pid == stubborn.to_string()),
        "{post:?}"
    );
}

/// A work that leaves nothing behind: no WARN, nothing on the line.
#[test]
fn a_work_that_leaves_nothing_running_says_nothing_of_it() {
    let env = Env::new();
    let out = Run::from(
        env.command()
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(["run", "--", "sh", "-c", "sleep 0.1; exit 3"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!out.stderr.contains("left processes"), "{}", out.stderr);
    let post = post_job_line(&env);
    assert!(!post.contains_key("left_running"), "{post:?}");
}

/// T10 #2: Ctrl-C, then a TERM: the TERM is the first one, not "again".
#[test]
fn a_term_after_an_int_is_named_after_it_not_again() {
    let env = Env::new();
    let child = env
        .command()
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .env("DBBACKUP_TERM_GRACE_SECONDS", "3")
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "trap '' INT TERM; echo started; sleep 100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = Pid::from_raw(child.id() as i32);
    wait_until(
        "the work starts",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || {
            summary_lines_if_any(&env)
                .iter()
                .any(|l| l["event"] == "pre-job")
        },
    );
    std::thread::sleep(Duration::from_millis(200));
    kill(run, Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill(run, Signal::SIGTERM).unwrap();
    let out: Run = output_within(child, Duration::from_secs(60))
        .expect("run ends")
        .into();
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("SIGTERM (after SIGINT): passed on to the work"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("again"), "{}", out.stderr);
}

fn summary_lines_if_any(env: &Env) -> Vec<std::collections::BTreeMap<String, String>> {
    if env.summary_log().exists() {
        summary_lines(&env.summary_log())
    } else {
        Vec::new()
    }
}

/// docs/slurm.md's way to keep a service past the work: the job script starts
/// it in the background before `exec dbbackup run`. It is the batch shell's
/// (run's own process group), not the work's: left alone, not named.
#[test]
fn a_service_the_job_script_started_before_exec_run_is_left_alone() {
    let env = Env::new();
    let pid_file = env.path("service.pid");
    let script = format!(
        "sleep 60 >/dev/null 2>&1 & echo $! > '{}'\nexec \"$DBBACKUP\" run -- sh -c 'sleep 0.2'\n",
        pid_file.display()
    );
    fs::write(env.path("job.sh"), script).unwrap();
    let out = Run::from(job_command(&env, "bash").arg("job.sh").output().unwrap());
    let service = pid_in(&pid_file);
    let still = alive(service);
    let _ = kill(Pid::from_raw(service), Signal::SIGKILL);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(still, "the script's service was stopped:\n{}", out.stderr);
    assert!(!out.stderr.contains("left processes"), "{}", out.stderr);
    assert!(!post_job_line(&env).contains_key("left_running"));
}
