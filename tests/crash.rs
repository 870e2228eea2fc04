//! SIGKILL at random moments during backup, restore, prune and post-job. After
//! every kill: each visible backup verifies, the source is untouched, a restore
//! target holds the old or the new content (never a mix, never a stale -wal), and
//! the next run recovers the lock and removes the temp files.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

/// xorshift: reproducible "random" delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A small database with content different from the source: the "old" target.
fn make_old_target(target: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", target.display()));
    }
    make_ledger_db(target, 50, true);
}

/// The operations killed: backup, restore, prune, post-job.
fn operations(target: &str) -> [Vec<&str>; 4] {
    [
        vec!["backup", "--force", "--max-backups", "4"],
        vec![
            "restore",
            "latest",
            "--target",
            target,
            "--max-backups",
            "4",
        ],
        vec!["prune", "--max-backups", "2"],
        vec![
            "post-job",
            "--status",
            "0",
            "--max-backups",
            "4",
            "--min-interval-hours",
            "0",
        ],
    ]
}

/// Each operation's own duration, measured here on this machine, so that most
/// kills land mid-operation however fast the machine is.
fn durations(env: &Env, operations: &[Vec<&str>]) -> Vec<Duration> {
    operations
        .iter()
        .map(|args| {
            let started = Instant::now();
            let _ = env.command().args(args).output().unwrap();
            started.elapsed().max(Duration::from_millis(2))
        })
        .collect()
}

/// What must hold after every kill.
struct Unharmed<'a> {
    env: &'a Env,
    source_sha: String,
    /// The database's content, and the restore target's before any restore.
    source_digest: String,
    old_digest: String,
    target: &'a Path,
}

impl Unharmed<'_> {
    fn check(&self, context: &str) {
        // Every visible backup verifies (temp names are never visible as backups).
        let verify = self.env.run(&["verify", "--all"]);
        assert_eq!(
            verify.code, 0,
            "{context}\n{}{}",
            verify.stdout, verify.stderr
        );
        // The source is never written by a backup.
        assert_eq!(file_sha256(&self.env.db), self.source_sha, "{context}");
        // The target holds the old or the new content, never a mix, no stale WAL.
        if self.target.exists() {
            let digest = content_digest(self.target);
            assert!(
                digest == self.old_digest || digest == self.source_digest,
                "{context}: mixed content"
            );
        }
        summary_lines(&self.env.path("summary.log"));
    }
}

#[test]
fn sigkill_at_random_moments_never_damages_anything() {
    let runs: u64 = std::env::var("DBBACKUP_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rounds(60, 12));
    let env = Env::empty();
    make_results_db(&env.db, 12.0, true);
    let source_sha = file_sha256(&env.db);
    let source_digest = content_digest(&env.db);
    env.run(&["backup", "--max-backups", "4"]).ok();
    let target = env.path("target/restored.db");
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    let target_arg = target.to_str().unwrap();
    let operations = operations(target_arg);
    make_old_target(&target);
    let durations = durations(&env, &operations);
    make_old_target(&target);
    let unharmed = Unharmed {
        env: &env,
        source_sha,
        source_digest,
        old_digest: content_digest(&target),
        target: &target,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut killed = 0;
    for run in 0..runs {
        let op = (rng.next() % 4) as usize;
        let window = durations[op].as_micros() as u64 * 11 / 10;
        let delay = Duration::from_micros(rng.next() % window);
        let args = &operations[op];
        let mut child = env
            .command()
            .env("SLURM_JOB_ID", format!("9{run}"))
            .env("DBBACKUP_SUMMARY_LOG", env.path("summary.log"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if sigkill_after(&mut child, delay) {
            killed += 1;
        }
        unharmed.check(&format!("run {run}: {args:?} killed after {delay:?}"));
    }
    assert!(
        killed >= runs / 3,
        "only {killed} of {runs} runs were killed mid-way ({durations:?})"
    );
    the_next_runs_clean_up(&env, &target, &unharmed.source_digest);
    eprintln!("crash test: {runs} runs, {killed} killed mid-operation, no damage");
}

/// The next backup takes the lock and cleans up after the dead; the next
/// restore leaves nothing beside its target.
fn the_next_runs_clean_up(env: &Env, target: &Path, source_digest: &str) {
    env.run(&["backup", "--force", "--lock-timeout-seconds", "0"])
        .ok();
    assert!(
        env.stray_files().iter().all(|f| f == ".dbbackup-state"),
        "{:?}",
        env.stray_files()
    );
    let target_arg = target.to_str().unwrap();
    env.run(&[
        "restore",
        "latest",
        "--target",
        target_arg,
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
    assert_eq!(content_digest(target), source_digest);
}

/// SIGKILL at random moments of differential backups: every visible backup (full
/// or diff) still verifies, and the next run removes every temp file, the page-hash
/// directory's included.
#[test]
fn sigkill_during_diff_backups_leaves_nothing_visible() {
    let env = Env::empty();
    make_results_db(&env.db, 8.0, false);
    let diff_args = [
        "backup",
        "--force",
        "--diff-backups",
        "1000",
        "--max-backups",
        "4",
    ];
    env.run(&diff_args).ok();
    // Every diff then carries about a tenth of the pages.
    grow_results_db(&env.db, 1.1, 77);
    let started = Instant::now();
    env.run(&diff_args).ok();
    assert!(env.newest_backup().to_string_lossy().ends_with(".diff.gz"));
    let window = started.elapsed().as_micros().max(2000) as u64 * 11 / 10;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut killed = 0;
    // Until enough runs were killed mid-way: how many finish before their kill
    // depends on the machine's load, not on the code under test.
    for run in 0..64 {
        if killed >= rounds(8, 2) && run >= rounds(16, 4) {
            break;
        }
        let delay = Duration::from_micros(rng.next() % window);
        let mut child = env
            .command()
            .args(diff_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if sigkill_after(&mut child, delay) {
            killed += 1;
        }
        let verify = env.run(&["verify", "--all"]);
        assert_eq!(
            verify.code, 0,
            "run {run} killed after {delay:?}\n{}{}",
            verify.stdout, verify.stderr
        );
    }
    // The loop may stop at its own quick-mode floor of kills.
    assert!(
        killed >= rounds(4, 2),
        "only {killed} runs were killed mid-way"
    );
    env.run(&diff_args).ok();
    assert!(
        env.stray_files().iter().all(|f| f == ".dbbackup-pages"),
        "{:?}",
        env.stray_files()
    );
    let pages: Vec<String> = fs::read_dir(env.backups.join(".dbbackup-pages"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Page hashes and `verify --all`'s records of whole reads; nothing half-made.
    assert!(
        pages
            .iter()
            .all(|p| p.ends_with(".db.gz.xxh3") || p.ends_with(".gz.read")),
        "{pages:?}"
    );
    let target = env.path("restored.db");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(content_digest(&target), content_digest(&env.db));
}

/// SIGKILL `child` after `delay` unless it has ended by then; wait for it.
/// Whether it was killed mid-way.
fn sigkill_after(child: &mut std::process::Child, delay: Duration) -> bool {
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    if running {
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    }
    child.wait().unwrap();
    running
}
