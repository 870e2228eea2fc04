//! SIGKILL at random moments during backup, restore, prune and post-job. After
//! every kill: each visible backup verifies, the source is untouched, a restore
//! target holds the old or the new content (never a mix, never a stale -wal), and
//! the next run recovers the lock and removes the temp files.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

/// xorshift: reproducible "random" delays, seed printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn file_sha(path: &std::path::Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(fs::read(path).unwrap()).to_vec()
}

#[test]
fn sigkill_at_random_moments_never_damages_anything() {
    let runs: u64 = std::env::var("DBBACKUP_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let env = Env::empty();
    make_results_db(&env.db, 6.0, true);
    let source_sha = file_sha(&env.db);
    let source_digest = content_digest(&env.db);
    env.run(&["backup", "--max-backups", "4"]).ok();
    // The restore target starts with different ("old") content.
    let target = env.path("target/restored.db");
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    make_ledger_db(&target, 50, true);
    let old_digest = content_digest(&target);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut killed = 0;
    for run in 0..runs {
        let op = rng.next() % 4;
        let delay = Duration::from_millis(rng.next() % 250);
        let args: Vec<&str> = match op {
            0 => vec!["backup", "--force", "--max-backups", "4"],
            1 => vec![
                "restore",
                "latest",
                "--target",
                target.to_str().unwrap(),
                "--max-backups",
                "4",
            ],
            2 => vec!["prune", "--max-backups", "2"],
            _ => vec![
                "post-job",
                "--status",
                "0",
                "--max-backups",
                "4",
                "--min-interval-hours",
                "0",
            ],
        };
        let mut child = env
            .command()
            .env("SLURM_JOB_ID", format!("9{run}"))
            .env("DBBACKUP_SUMMARY_LOG", env.path("summary.log"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        let context = format!("run {run}: {args:?} killed after {delay:?}");
        // Every visible backup verifies (temp names are never visible as backups).
        let verify = env.run(&["verify", "--all"]);
        assert_eq!(
            verify.code, 0,
            "{context}\n{}{}",
            verify.stdout, verify.stderr
        );
        // The source is never written by a backup.
        assert_eq!(file_sha(&env.db), source_sha, "{context}");
        // The target holds the old or the new content, never a mix, no stale WAL.
        if target.exists() {
            let digest = content_digest(&target);
            assert!(
                digest == old_digest || digest == source_digest,
                "{context}: mixed content"
            );
        }
        let summary = env.path("summary.log");
        summary_lines(&summary);
    }
    assert!(
        killed >= runs / 3,
        "only {killed} of {runs} runs were killed mid-way; delays too long"
    );
    // The next run takes the lock and cleans up after the dead.
    env.run(&["backup", "--force", "--lock-timeout-seconds", "0"])
        .ok();
    assert!(
        env.stray_files().iter().all(|f| f == ".dbbackup-state"),
        "{:?}",
        env.stray_files()
    );
    env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--lock-timeout-seconds",
        "0",
    ])
    .ok();
    let beside_target: Vec<String> = fs::read_dir(target.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dbbackup-tmp"))
        .collect();
    assert!(beside_target.is_empty(), "{beside_target:?}");
    assert_eq!(content_digest(&target), source_digest);
    eprintln!("crash test: {runs} runs, {killed} killed mid-way, no damage");
}
