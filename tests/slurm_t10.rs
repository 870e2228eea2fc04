//! SLURM trial T10's leftovers: a failed time-limit backup claims no window;
//! an identity SLURM could not confirm is the job's own; `restore --before-job`
//! of a job that has not ended, or that backed up another database.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

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

fn wait_for_lines(env: &Env, job: &str, event: &str, count: usize) {
    wait_until(
        &format!("job {job} logs {count} {event} line(s)"),
        Duration::from_secs(60),
        Duration::from_millis(10),
        || lines_of(env, job, event).len() >= count,
    );
}

/// T10 #7: a time-limit backup that failed (here: the database could not be
/// read at that moment) does not claim the window: the next warning backs up,
/// and no line says "was made" of a backup that was not made.
#[test]
fn a_failed_time_limit_backup_leaves_the_window_to_the_next_warning() {
    let env = Env::new();
    let stop = env.path("stop");
    let mut child = env
        .command()
        .env("SLURM_JOB_ID", "5310")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["run", "sh", "-c"])
        .arg(format!(
            "touch '{}'; while [ ! -e '{}' ]; do sleep 0.1; done",
            env.path("started").display(),
            stop.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = Pid::from_raw(child.id() as i32);
    // The work runs: `run` serves warnings from now on.
    wait_until(
        "the work starts",
        Duration::from_secs(60),
        Duration::from_millis(10),
        || env.path("started").exists(),
    );
    let saved = env.path("saved.db");
    fs::rename(&env.db, &saved).unwrap();
    fs::write(&env.db, vec![7u8; 8192]).unwrap();
    kill(run, Signal::SIGUSR1).unwrap();
    wait_for_lines(&env, "5310", "time-limit", 1);
    assert_eq!(lines_of(&env, "5310", "time-limit")[0]["status"], "failed");

    fs::rename(&saved, &env.db).unwrap();
    commit_into_wal_without_checkpoint(&env.db, 1);
    kill(run, Signal::SIGUSR1).unwrap();
    wait_for_lines(&env, "5310", "time-limit", 2);
    fs::write(&stop, "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let warned = lines_of(&env, "5310", "time-limit");
    assert_eq!(warned[1]["status"], "ok", "{warned:#?}");
    let listed = listed(&env);
    assert_eq!(
        listed.values().filter(|r| r["kind"] == "auto").count(),
        1,
        "{listed:#?}"
    );
}
