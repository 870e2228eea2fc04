//! 64 processes mixing auto, backup --force, pre-job, post-job, list, check and
//! prune while 2 writers commit. DBBACKUP_STRESS_SECONDS sets the length
//! (20 s by default; 60 s or more for the long mode).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn sixty_four_processes_and_two_writers() {
    let seconds: u64 = std::env::var("DBBACKUP_STRESS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rounds(20, 5));
    let env = Arc::new(Env::empty());
    make_ledger_db(&env.db, 3000, true);
    let writers = [LedgerWriter::start(&env.db), LedgerWriter::start(&env.db)];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tally = Arc::new(Tally::default());
    let threads: Vec<_> = (0..64)
        .map(|worker| {
            let (env, tally) = (Arc::clone(&env), Arc::clone(&tally));
            std::thread::spawn(move || work(&env, worker, deadline, &tally))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(writers);
    let failures = tally.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures[0]
    );
    let logged = tally.logged.load(Ordering::Relaxed);
    let listed = listed(&env);
    let good = listed.values().filter(|r| r["check"] == "ok").count();
    // max_backups 5, plus the restore point of each of the 5 arrays still
    // running (retention keeps those).
    assert!(
        (1..=10).contains(&good),
        "retention bound: {good} good backups"
    );
    assert_eq!(listed.len(), good, "no failed snapshots");
    env.run(&["verify", "--all"]).ok();
    let lines = summary_lines(&env.path("summary.log"));
    assert_eq!(lines.len(), logged, "one whole line per pre-job/post-job");
    assert!(
        env.stray_files().iter().all(|f| f == ".dbbackup-state"),
        "{:?}",
        env.stray_files()
    );
    assert_ledger_invariant(&env.db);
    eprintln!(
        "stress: {seconds} s, {} commands, {} summary lines, {good} backups kept",
        tally.commands.load(Ordering::Relaxed),
        lines.len()
    );
}

/// What the workers did, counted across threads.
#[derive(Default)]
struct Tally {
    /// Pre-job and post-job runs: each writes one summary line.
    logged: AtomicUsize,
    commands: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

/// One worker: its share of the command mix until `deadline`, as array task
/// `worker` of one of 5 arrays; what failed goes in `tally`.
fn work(env: &Env, worker: usize, deadline: Instant, tally: &Tally) {
    let mut round = 0u32;
    while Instant::now() < deadline {
        let args = command_of(worker, round);
        let run: Run = env
            .command()
            .env("SLURM_ARRAY_JOB_ID", format!("{}", 100 + round % 5))
            .env("SLURM_ARRAY_TASK_ID", worker.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "64")
            .env("DBBACKUP_SUMMARY_LOG", env.path("summary.log"))
            .env("DBBACKUP_MAX_BACKUPS", "5")
            .env("DBBACKUP_BUSY_TIMEOUT_SECONDS", "120")
            .env("DBBACKUP_LOCK_TIMEOUT_SECONDS", "600")
            .args(&args)
            .output()
            .unwrap()
            .into();
        tally.commands.fetch_add(1, Ordering::Relaxed);
        if args[0] == "pre-job" || args[0] == "post-job" {
            tally.logged.fetch_add(1, Ordering::Relaxed);
        }
        // check may report unhealthy (exit 1) early on, and list a backup directory
        // the first backup has not created yet (exit 1); nothing may crash.
        let acceptable = run.code == 0
            || (args[0] == "check" && run.code == 1)
            || (args[0] == "list" && run.code == 1 && run.stderr.contains("does not exist"));
        if !acceptable || run.stderr.contains("panicked") {
            tally
                .failures
                .lock()
                .unwrap()
                .push(format!("{args:?}: exit {} {}", run.code, run.stderr));
        }
        round += 1;
    }
}

/// The mix: auto, backup --force, pre-job, post-job, list, check, prune.
fn command_of(worker: usize, round: u32) -> Vec<String> {
    let args: &[&str] = match (worker + round as usize) % 7 {
        0 => &["auto", "--min-interval-hours", "0"],
        1 => &["backup", "--force"],
        2 => &["pre-job"],
        3 => &["post-job", "--status", "0", "--min-interval-hours", "0"],
        4 => &["list", "--format", "json"],
        5 => &["check", "--format", "json"],
        _ => &["prune"],
    };
    args.iter().map(ToString::to_string).collect()
}
