//! The shipped `slurm/` templates submitted with `sbatch` to a real (local) SLURM:
//! `slurm/dev/local-cluster.sh start`. Without a cluster these tests say they are
//! skipped; with DBBACKUP_REQUIRE_SLURM=1 (CI) a missing cluster is a failure.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

fn cluster_ready() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !String::from_utf8_lossy(&o.stdout).trim().is_empty());
    if !up {
        assert!(
            std::env::var("DBBACKUP_REQUIRE_SLURM").as_deref() != Ok("1"),
            "DBBACKUP_REQUIRE_SLURM=1 but no SLURM cluster answers (slurm/dev/local-cluster.sh start)"
        );
        // Straight to stderr, past the test harness's capture, so it is seen.
        let _ = writeln!(
            std::io::stderr(),
            "SLURM tests SKIPPED: no cluster (start one with `slurm/dev/local-cluster.sh start` as root)"
        );
    }
    up
}

fn slurm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("slurm")
}

/// `sbatch --parsable` in the test's directory, with the test's settings exported.
fn sbatch(env: &Env, args: &[&str]) -> String {
    let mut command = Command::new("sbatch");
    command.current_dir(env.root.path());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("DBBACKUP_") || key.starts_with("SLURM_") {
            command.env_remove(&key);
        }
    }
    command
        .env("DBBACKUP", BIN)
        .env(
            "DBBACKUP_HOOKS",
            slurm_dir().join("hooks/dbbackup_hooks.sh"),
        )
        .env("DBBACKUP_DB_PATH", &env.db)
        .env("DBBACKUP_BACKUP_DIR", &env.backups)
        .env(
            "DBBACKUP_SUMMARY_LOG",
            env.path("slrm_logs/backup_summary.log"),
        )
        .arg("--parsable")
        .args(args);
    let output = command.output().expect("sbatch");
    assert!(
        output.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// Wait until none of `jobs` is queued or running.
fn wait_for(jobs: &[&str], limit: Duration) {
    let started = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i", "-j", &jobs.join(",")])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "jobs {jobs:?} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn job_state(job: &str) -> String {
    let out = Command::new("scontrol")
        .args(["show", "job", job])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .find_map(|f| f.strip_prefix("JobState="))
        .unwrap_or("")
        .to_string()
}

const TASK_WORK: &str = r#"
import os, sqlite3, sys, time
task = int(os.environ["SLURM_ARRAY_TASK_ID"])
con = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)
for i in range(20):
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO ledger (amount, note) VALUES (?, ?)", (i + 1, f"task {task}"))
    con.execute("INSERT INTO ledger (amount, note) VALUES (?, 'balance')", (-(i + 1),))
    con.execute("UPDATE counter SET n = n + 2")
    con.execute("COMMIT")
    time.sleep(0.05)
"#;

#[test]
fn array_job_with_final_dependent_backup() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    fs::create_dir_all(env.path("slrm_logs")).unwrap();
    fs::write(env.path("work.py"), TASK_WORK).unwrap();
    let rows_before = row_count(&env.db, "ledger");
    let template = slurm_dir().join("job_array.sbatch");
    let array = sbatch(
        &env,
        &[
            "--array=0-11",
            template.to_str().unwrap(),
            "python3",
            "work.py",
            env.db.to_str().unwrap(),
        ],
    );
    let dependency = format!("--dependency=afterany:{array}");
    let final_job = sbatch(
        &env,
        &[
            &dependency,
            slurm_dir().join("final_backup.sbatch").to_str().unwrap(),
        ],
    );
    wait_for(&[&array, &final_job], Duration::from_secs(300));

    // The work happened and the database is consistent.
    assert_eq!(row_count(&env.db, "ledger"), rows_before + 12 * 40);
    assert_ledger_invariant(&env.db);
    // One restore point from before the work, one backup after it, both tagged with the array.
    let listed = listed(&env);
    let of_array: Vec<_> = listed
        .values()
        .filter(|r| r["job"] == array.as_str())
        .collect();
    let pre: Vec<_> = of_array.iter().filter(|r| r["kind"] == "pre-job").collect();
    let post: Vec<_> = of_array
        .iter()
        .filter(|r| r["kind"] == "post-job")
        .collect();
    assert_eq!(pre.len(), 1, "{listed:#?}");
    assert_eq!(post.len(), 1, "{listed:#?}");
    let pre_copy = gunzip_to(
        &env.backups.join(pre[0]["name"].as_str().unwrap()),
        &env.path("pre.db"),
    );
    assert_eq!(
        row_count(&pre_copy, "ledger"),
        rows_before,
        "pre-job backup predates the work"
    );
    let post_copy = gunzip_to(
        &env.backups.join(post[0]["name"].as_str().unwrap()),
        &env.path("post.db"),
    );
    assert_eq!(
        content_digest(&post_copy),
        content_digest(&env.db),
        "post-job backup holds all the work"
    );
    env.run(&["verify", "--all"]).ok();
    // Every task and the final job left whole summary lines.
    let lines = summary_lines(&env.path("slrm_logs/backup_summary.log"));
    let count = |event: &str, prefix: &str| {
        lines
            .iter()
            .filter(|l| l["event"] == event && l["job"].starts_with(prefix))
            .count()
    };
    assert_eq!(count("pre-job", &format!("{array}_")), 12, "{lines:#?}");
    assert_eq!(count("post-job", &format!("{array}_")), 12, "{lines:#?}");
    assert_eq!(count("post-job", &final_job), 1, "{lines:#?}");
    assert_eq!(count("summary", &final_job), 1, "{lines:#?}");
    assert!(
        lines
            .iter()
            .filter(|l| l["event"] == "post-job")
            .all(|l| l["exit_status"] == "0")
    );
    assert_eq!(job_state(&final_job), "COMPLETED");
}

const ENDLESS_WORK: &str = r#"
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)
while True:
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO ledger (amount, note) VALUES (1, 'slow')")
    con.execute("INSERT INTO ledger (amount, note) VALUES (-1, 'balance')")
    con.execute("UPDATE counter SET n = n + 2")
    con.execute("COMMIT")
    time.sleep(0.2)
"#;

/// `--time=2` with the warning 45 s before the limit: SLURM may send it up to 60 s
/// early, so it lands 15-75 s into the job, after the work has written and well
/// before the time-limit TERM (which would also stop the trap's backup).
#[test]
fn a_job_that_hits_its_time_limit_still_leaves_a_backup() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    fs::create_dir_all(env.path("slrm_logs")).unwrap();
    fs::write(env.path("endless.py"), ENDLESS_WORK).unwrap();
    let template = slurm_dir().join("job_single.sbatch");
    let job = sbatch(
        &env,
        &[
            "--time=2",
            "--signal=B:USR1@45",
            template.to_str().unwrap(),
            "python3",
            "endless.py",
            env.db.to_str().unwrap(),
        ],
    );
    wait_for(&[&job], Duration::from_secs(240));
    assert_eq!(job_state(&job), "TIMEOUT");
    let listed = listed(&env);
    let of_job: Vec<_> = listed
        .values()
        .filter(|r| r["job"] == job.as_str())
        .collect();
    assert!(of_job.iter().any(|r| r["kind"] == "pre-job"), "{listed:#?}");
    let warned: Vec<_> = of_job.iter().filter(|r| r["kind"] == "auto").collect();
    let job_output =
        fs::read_to_string(env.path(&format!("slrm_logs/analysis_{job}.out"))).unwrap_or_default();
    assert_eq!(
        warned.len(),
        1,
        "one backup from the USR1 trap: {listed:#?}\njob output:\n{job_output}"
    );
    let copy = gunzip_to(
        &env.backups.join(warned[0]["name"].as_str().unwrap()),
        &env.path("warned.db"),
    );
    assert!(
        row_count(&copy, "ledger") > 400,
        "it holds work done before the warning"
    );
    assert_ledger_invariant(&copy);
    env.run(&["verify", "--all"]).ok();
}
