//! 64 processes mixing auto, backup --force, pre-job, post-job, list, check and
//! prune while 2 writers commit. DBBACKUP_STRESS_SECONDS sets the length
//! (20 s by default; 60 s or more for the long mode).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    let logged = Arc::new(AtomicUsize::new(0));
    let commands = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..64)
        .map(|worker| {
            let (env, logged, failures, commands) = (
                Arc::clone(&env),
                Arc::clone(&logged),
                Arc::clone(&failures),
                Arc::clone(&commands),
            );
            std::thread::spawn(move || {
                let mut round = 0u32;
                while Instant::now() < deadline {
                    let args: Vec<String> = match (worker + round as usize) % 7 {
                        0 => vec!["auto".into(), "--min-interval-hours".into(), "0".into()],
                        1 => vec!["backup".into(), "--force".into()],
                        2 => vec!["pre-job".into()],
                        3 => vec![
                            "post-job".into(),
                            "--status".into(),
                            "0".into(),
                            "--min-interval-hours".into(),
                            "0".into(),
                        ],
                        4 => vec!["list".into(), "--format".into(), "json".into()],
                        5 => vec!["check".into(), "--format".into(), "json".into()],
                        _ => vec!["prune".into()],
                    };
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
                    commands.fetch_add(1, Ordering::Relaxed);
                    if args[0] == "pre-job" || args[0] == "post-job" {
                        logged.fetch_add(1, Ordering::Relaxed);
                    }
                    // check may report unhealthy (exit 1) early on; nothing may crash.
                    let acceptable = run.code == 0 || (args[0] == "check" && run.code == 1);
                    if !acceptable || run.stderr.contains("panicked") {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{args:?}: exit {} {}", run.code, run.stderr));
                    }
                    round += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(writers);
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures[0]
    );
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
    assert_eq!(
        lines.len(),
        logged.load(Ordering::Relaxed),
        "one whole line per pre-job/post-job"
    );
    assert!(
        env.stray_files().iter().all(|f| f == ".dbbackup-state"),
        "{:?}",
        env.stray_files()
    );
    assert_ledger_invariant(&env.db);
    eprintln!(
        "stress: {seconds} s, {} commands, {} summary lines, {good} backups kept",
        commands.load(Ordering::Relaxed),
        lines.len()
    );
}
