//! The shipped `slurm/` templates submitted with `sbatch` to a real (local) SLURM:
//! `slurm/dev/local-cluster.sh start`. Without a cluster these tests say they are
//! skipped; with DBBACKUP_REQUIRE_SLURM=1 (CI) a missing cluster is a failure.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::common::*;

/// `program` in the test's directory, with the test's settings exported.
fn slurm_command(env: &Env, program: &str) -> Command {
    let mut command = job_command(env, program);
    // The templates' default is $SLURM_SUBMIT_DIR/slurm/final_backup.sbatch;
    // tests submit from their own directory.
    command.env(
        "DBBACKUP_FINAL_SCRIPT",
        slurm_dir().join("final_backup.sbatch"),
    );
    command
}

/// A test's directory for jobs on the cluster: the ledger database,
/// `slrm_logs/` (where the templates write) and each `(name, text)` of
/// `files`; `None`, the test skipped, without a cluster.
fn cluster_env(files: &[(&str, &str)]) -> Option<Env> {
    if !cluster_ready() {
        return None;
    }
    let env = Env::new();
    fs::create_dir_all(env.path("slrm_logs")).unwrap();
    for (name, text) in files {
        fs::write(env.path(name), text).unwrap();
    }
    Some(env)
}

/// `sbatch --parsable` in the test's directory, with the test's settings exported.
fn sbatch(env: &Env, args: &[&str]) -> String {
    let mut command = slurm_command(env, "sbatch");
    command.arg("--parsable").args(args);
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
    let Some(env) = cluster_env(&[("work.py", TASK_WORK)]) else {
        return;
    };
    let rows_before = row_count(&env.db, "ledger");
    let submit = slurm_command(
        &env,
        slurm_dir()
            .join("submit_array_with_final.sh")
            .to_str()
            .unwrap(),
    )
    .args([
        "--array=0-11",
        "--",
        "python3",
        "work.py",
        env.db.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&submit.stdout).into_owned();
    assert!(
        submit.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    // "array job N, final backup job M"
    let ids: Vec<String> = said
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let (array, final_job) = (ids[0].clone(), ids[1].clone());
    wait_until_jobs_leave_the_queue(&[&array, &final_job], Duration::from_secs(300));

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
    let lines = summary_lines(&env.summary_log());
    let count = |event: &str, prefix: &str| {
        lines
            .iter()
            .filter(|l| l["event"] == event && l["job"].starts_with(prefix))
            .count()
    };
    assert_eq!(count("pre-job", &format!("{array}_")), 12, "{lines:#?}");
    assert_eq!(count("post-job", &format!("{array}_")), 12, "{lines:#?}");
    assert_eq!(count("final", &final_job), 1, "{lines:#?}");
    assert_eq!(count("summary", &final_job), 1, "{lines:#?}");
    let last_word = lines.iter().find(|l| l["event"] == "final").unwrap();
    assert_eq!(last_word["array"], array.as_str());
    assert_eq!(last_word["state_completed"], "0-11", "{last_word:?}");
    assert_eq!(last_word["post_job"], "0-11", "{last_word:?}");
    assert!(
        lines
            .iter()
            .filter(|l| l["event"] == "post-job")
            .all(|l| l["exit_status"] == "0")
    );
    assert_eq!(job_state(&final_job), "COMPLETED");
}

/// `--time=2` with the warning 45 s before the limit: SLURM may send it up to 60 s
/// early, so it lands 15-75 s into the job, after the work has written and well
/// before the time-limit TERM (which would also stop the trap's backup).
#[test]
fn a_job_that_hits_its_time_limit_still_leaves_a_backup() {
    let Some(env) = cluster_env(&[("endless.py", &python_ledger_writer(0.2, None, None))]) else {
        return;
    };
    let template = slurm_dir().join("job_single.sbatch");
    let job = sbatch(
        &env,
        &[
            "--time=2",
            "--signal=B:USR1@45",
            template.to_str().unwrap(),
            "srun",
            "python3",
            "endless.py",
            env.db.to_str().unwrap(),
        ],
    );
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(240));
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
    let lines = summary_lines(&env.summary_log());
    // The USR1 backup says so in the summary log (it used to write no line).
    let time_limit: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "time-limit" && l["job"] == job.as_str())
        .collect();
    assert_eq!(time_limit.len(), 1, "job output:\n{job_output}");
    assert_eq!(time_limit[0]["status"], "ok", "{:?}", time_limit[0]);
    assert_eq!(time_limit[0]["backup"], warned[0]["name"].as_str().unwrap());
    // TERM at the limit: run survived it and logged post-job before the KILL.
    let post: Vec<_> = lines
        .into_iter()
        .filter(|l| l["event"] == "post-job" && l["job"] == job.as_str())
        .collect();
    assert_eq!(post.len(), 1, "job output:\n{job_output}");
    assert_eq!(post[0]["after_term"], "true");
    env.run(&["verify", "--all"]).ok();
}

/// Writes 5 balanced pairs, then sleeps argv[2] seconds (argv[3] after a requeue).
const SLOW_WORK: &str = r#"
import os, sqlite3, sys, time
task = os.environ.get("SLURM_ARRAY_TASK_ID", "-")
restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
con = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)
for i in range(5):
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO ledger (amount, note) VALUES (?, ?)", (i + 1, f"task {task}"))
    con.execute("INSERT INTO ledger (amount, note) VALUES (?, 'balance')", (-(i + 1),))
    con.execute("UPDATE counter SET n = n + 2")
    con.execute("COMMIT")
con.close()
time.sleep(float(sys.argv[3] if restarts and len(sys.argv) > 3 else sys.argv[2]))
"#;

fn scancel(args: &[&str]) {
    let out = Command::new("scancel").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "scancel {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Summary lines matching `filter`, waiting up to `limit` for at least `count`.
fn await_lines(
    env: &Env,
    count: usize,
    limit: Duration,
    filter: impl Fn(&std::collections::BTreeMap<String, String>) -> bool,
) -> Vec<std::collections::BTreeMap<String, String>> {
    let log = env.summary_log();
    poll_until(
        &format!("{count} summary lines"),
        limit,
        Duration::from_millis(300),
        || {
            let found: Vec<_> = if log.exists() {
                summary_lines(&log).into_iter().filter(&filter).collect()
            } else {
                Vec::new()
            };
            if found.len() >= count {
                Ok(found)
            } else {
                Err(found)
            }
        },
    )
}

/// The issue's scenario: `sbatch --array=0-3%2 job_array.sbatch ...`, then task 3
/// cancelled while pending. No task is "last", yet the work ends in a backup: the
/// final job the array submitted for itself makes it, and logs each task's end.
#[test]
fn an_array_task_cancelled_while_pending_still_ends_in_a_backup() {
    let Some(env) = cluster_env(&[("work.py", SLOW_WORK)]) else {
        return;
    };
    let rows_before = row_count(&env.db, "ledger");
    let template = slurm_dir().join("job_array.sbatch");
    let array = sbatch(
        &env,
        &[
            "--array=0-3%2",
            template.to_str().unwrap(),
            "python3",
            "work.py",
            env.db.to_str().unwrap(),
            "4",
        ],
    );
    scancel(&[&format!("{array}_3")]);
    let last_word = await_lines(&env, 1, Duration::from_secs(300), |l| {
        l["event"] == "final" && l["array"] == array.as_str()
    });
    let final_job = last_word[0]["job"].clone();
    wait_until_jobs_leave_the_queue(&[&array, &final_job], Duration::from_secs(120));
    assert_eq!(row_count(&env.db, "ledger"), rows_before + 3 * 10);
    let line = &last_word[0];
    assert_eq!(line["status"], "ok", "{line:?}");
    // sacct says CANCELLED; without accounting, scontrol has already purged it.
    let cancelled = line.get("state_cancelled").or(line.get("state_unreported"));
    assert_eq!(cancelled.map(String::as_str), Some("3"), "{line:?}");
    assert_eq!(line["post_job"], "0-2", "{line:?}");
    assert_eq!(line["no_post_job"], "3", "{line:?}");
    assert!(
        !line.contains_key("nonzero_exit"),
        "no task failed: {line:?}"
    );
    let listed = listed(&env);
    let finals: Vec<_> = listed.values().filter(|r| r["kind"] == "final").collect();
    assert_eq!(finals.len(), 1, "{listed:#?}");
    assert_eq!(finals[0]["job"], array.as_str());
    let copy = gunzip_to(
        &env.backups.join(finals[0]["name"].as_str().unwrap()),
        &env.path("final.db"),
    );
    assert_eq!(content_digest(&copy), content_digest(&env.db));
    assert_eq!(
        listed.values().filter(|r| r["kind"] == "post-job").count(),
        0,
        "no task was last"
    );
    assert_eq!(job_state(&final_job), "COMPLETED");
}

/// `scancel`, then `scancel` again, of jobs running the shipped template under
/// `set -euo pipefail`: every job logs its post-job line with the work's status.
#[test]
fn jobs_cancelled_twice_always_log_their_post_job_line() {
    let Some(env) = cluster_env(&[]) else {
        return;
    };
    let template = slurm_dir().join("job_single.sbatch");
    let jobs: Vec<String> = (0..10)
        .map(|_| {
            let mut command = slurm_command(&env, "sbatch");
            // Inside the test cluster's KillWait of 5 s.
            command.env("DBBACKUP_TERM_GRACE_SECONDS", "3").args([
                "--parsable",
                template.to_str().unwrap(),
                "sleep",
                "300",
            ]);
            let out = command.output().unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    await_lines(&env, jobs.len(), Duration::from_secs(120), |l| {
        l["event"] == "pre-job"
    });
    std::thread::sleep(Duration::from_millis(500));
    for (i, job) in jobs.iter().enumerate() {
        scancel(&[job]);
        std::thread::sleep(Duration::from_millis(50 * i as u64));
        // The job may be gone already: a second scancel may fail.
        let _ = Command::new("scancel").arg(job).output();
    }
    let refs: Vec<&str> = jobs.iter().map(String::as_str).collect();
    wait_until_jobs_leave_the_queue(&refs, Duration::from_secs(120));
    let lines = summary_lines(&env.summary_log());
    for job in &jobs {
        let post: Vec<_> = lines
            .iter()
            .filter(|l| l["event"] == "post-job" && &l["job"] == job)
            .collect();
        let output = fs::read_to_string(env.path(&format!("slrm_logs/analysis_{job}.out")))
            .unwrap_or_default();
        assert_eq!(post.len(), 1, "job {job}: {post:?}\n{output}");
        assert_eq!(post[0]["exit_status"], "143", "job {job}: {:?}", post[0]);
        assert_eq!(post[0]["after_term"], "true");
        assert_eq!(job_state(job), "CANCELLED");
    }
    env.run(&["verify", "--all"]).ok();
}

/// A task requeued while running is not counted as finished; when it runs again
/// (SLURM_RESTART_COUNT=1) and finishes, it is counted once and, being last,
/// backs up.
#[test]
fn a_requeued_task_counts_once() {
    let Some(env) = cluster_env(&[("work.py", SLOW_WORK)]) else {
        return;
    };
    let template = slurm_dir().join("job_array.sbatch");
    let array = sbatch(
        &env,
        &[
            "--array=0-1",
            "--requeue",
            template.to_str().unwrap(),
            "python3",
            "work.py",
            env.db.to_str().unwrap(),
            "25",
            "1",
        ],
    );
    await_lines(&env, 2, Duration::from_secs(120), |l| {
        l["event"] == "pre-job"
    });
    std::thread::sleep(Duration::from_secs(1));
    let out = Command::new("scontrol")
        .args(["requeue", &format!("{array}_1")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last_word = await_lines(&env, 1, Duration::from_secs(400), |l| {
        l["event"] == "final" && l["array"] == array.as_str()
    });
    wait_until_jobs_leave_the_queue(&[&array, &last_word[0]["job"]], Duration::from_secs(120));
    let lines = summary_lines(&env.summary_log());
    let task1: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "post-job" && l["job"] == format!("{array}_1"))
        .collect();
    assert_eq!(task1.len(), 2, "{lines:#?}");
    assert_eq!(task1[0]["after_term"], "true", "{:?}", task1[0]);
    assert!(task1[0]["reason"].contains("not counted"), "{:?}", task1[0]);
    // The final job it promises is the one that ran (T21 F5).
    let promised = format!(
        "the array's final job {} is to back up (cancelled too, it does not: `dbbackup check` then says this work is in no backup)",
        last_word[0]["job"]
    );
    assert!(task1[0]["reason"].contains(&promised), "{:?}", task1[0]);
    assert_eq!(task1[1]["restarts"], "1", "{:?}", task1[1]);
    assert!(
        task1[1]["trigger"].starts_with("last task (2 of 2"),
        "{:?}",
        task1[1]
    );
    assert_eq!(last_word[0]["post_job"], "0-1");
    assert_ledger_invariant(&env.db);
}

/// The scrontab `dbbackup templates` writes, launched the way scrontab launches
/// it: from the home directory (here `/`), with the `#SCRON` options as they
/// stand and no environment from the user. It runs, logs where it says, backs up.
#[test]
fn the_written_scrontab_entry_launches_from_the_home_directory() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    fs::write(
        env.path("dbbackup.yaml"),
        "db_path: results.db\nbackup_dir: backups\nsummary_log: slrm_logs/backup_summary.log\n",
    )
    .unwrap();
    let out = env.path("slurm");
    env.run(&["templates", "--out", out.to_str().unwrap()]).ok();
    let text = fs::read_to_string(out.join("periodic.scrontab")).unwrap();
    let (options, command) = crate::templates::parse_scrontab(&text);
    let submitted = Command::new("sbatch")
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("--parsable")
        .arg("--export=NONE")
        .args(&options)
        .arg("--wrap")
        .arg(&command)
        .output()
        .unwrap();
    assert!(
        submitted.status.success(),
        "{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    let job = String::from_utf8_lossy(&submitted.stdout)
        .trim()
        .to_string();
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    assert_eq!(job_state(&job), "COMPLETED");
    assert!(env.path("slrm_logs/dbbackup-periodic.out").exists());
    assert_eq!(env.backup_files().len(), 1, "periodic backed up");
    let lines = summary_lines(&env.summary_log());
    assert_eq!(lines[0]["event"], "periodic");
    assert_eq!(lines[0]["job"], job.as_str());
}

/// `scancel` twice while another dbbackup holds the backup-directory lock: the
/// second TERM arrives during post-job, which is undisturbed, gives up within
/// term_grace_seconds (inside the cluster's KillWait) and says so.
#[test]
fn a_second_term_during_post_job_waiting_for_the_lock() {
    let Some(env) = cluster_env(&[]) else {
        return;
    };
    let template = slurm_dir().join("job_single.sbatch");
    let mut command = slurm_command(&env, "sbatch");
    command.env("DBBACKUP_TERM_GRACE_SECONDS", "3").args([
        "--parsable",
        template.to_str().unwrap(),
        "sleep",
        "300",
    ]);
    let out = command.output().unwrap();
    assert!(out.status.success());
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    await_lines(&env, 1, Duration::from_secs(120), |l| {
        l["event"] == "pre-job" && l["job"] == job.as_str()
    });
    // Another dbbackup (here: a process holding the same fcntl lock).
    let mut holder = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import fcntl, time\nf = open('{}', 'r+')\nfcntl.lockf(f, fcntl.LOCK_EX)\n\
                 f.truncate(0); f.write('host=other pid=1 job=holder since=2026-01-01T00:00:00Z\\n'); f.flush()\n\
                 print('locked', flush=True)\ntime.sleep(60)\n",
                env.lock_file().display()
            ),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    scancel(&[&job]);
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("scancel").arg(&job).output();
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(60));
    let _ = holder.kill();
    let _ = holder.wait();
    let output =
        fs::read_to_string(env.path(&format!("slrm_logs/analysis_{job}.out"))).unwrap_or_default();
    let post = await_lines(&env, 1, Duration::from_secs(5), |l| {
        l["event"] == "post-job" && l["job"] == job.as_str()
    });
    assert_eq!(post.len(), 1, "{output}");
    assert_eq!(post[0]["status"], "failed", "{:?}", post[0]);
    assert!(
        post[0]["error"].contains("gave up after 3 s"),
        "{:?}\n{output}",
        post[0]
    );
    assert!(
        output.contains("job=holder"),
        "it named the holder:\n{output}"
    );
    assert_eq!(job_state(&job), "CANCELLED");
}

/// Every task's pre-job fails (the database is locked past busy_timeout): the
/// array still submits its final job, once, and that job backs up the work.
#[test]
fn an_array_whose_pre_jobs_all_fail_still_gets_its_final_job() {
    let Some(env) = cluster_env(&[]) else {
        return;
    };
    let holder = hold_exclusive(&env.db);
    let template = slurm_dir().join("job_array.sbatch");
    let array = {
        let mut command = slurm_command(&env, "sbatch");
        command.env("DBBACKUP_BUSY_TIMEOUT_SECONDS", "1").args([
            "--parsable",
            "--array=0-1",
            template.to_str().unwrap(),
            "true",
        ]);
        let output = command.output().expect("sbatch");
        assert!(output.status.success(), "sbatch: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let pre = await_lines(&env, 2, Duration::from_secs(120), |l| {
        l["event"] == "pre-job" && l["job"].starts_with(&format!("{array}_"))
    });
    drop(holder);
    assert!(pre.iter().all(|l| l["status"] == "failed"), "{pre:#?}");
    let submitted: Vec<_> = pre.iter().filter_map(|l| l.get("final")).collect();
    assert_eq!(submitted.len(), 1, "submitted once: {pre:#?}");
    let last_word = await_lines(&env, 1, Duration::from_secs(180), |l| {
        l["event"] == "final" && l["array"] == array.as_str()
    });
    assert_eq!(&last_word[0]["job"], submitted[0], "{last_word:?}");
    assert_ne!(last_word[0]["status"], "failed", "{last_word:?}");
    wait_until_jobs_leave_the_queue(&[&array, submitted[0]], Duration::from_secs(60));
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// The issue's first trial: the job script runs `bash task.sh`, and task.sh runs
/// python without `exec`. `scancel -b -s TERM` (the batch shell only) and plain
/// `scancel` (every process of the job): python stops with the job (with
/// proctrack/linuxproc SLURM itself leaves a re-parented grandchild running),
/// and the post-job backup holds every row it committed.
#[test]
fn a_program_the_script_did_not_exec_stops_with_the_job_and_is_backed_up() {
    if !cluster_ready() {
        return;
    }
    let template = slurm_dir().join("job_single.sbatch");
    let cases: Vec<(Env, &[&str], String)> = [&["-b", "-s", "TERM"][..], &[][..]]
        .into_iter()
        .map(|how| {
            let env = Env::new();
            fs::create_dir_all(env.path("slrm_logs")).unwrap();
            let writer = python_ledger_writer(0.05, None, Some(&env.path("writer.pid")));
            fs::write(env.path("writer.py"), writer).unwrap();
            fs::write(
                env.path("task.sh"),
                format!("python3 writer.py '{}'\necho after\n", env.db.display()),
            )
            .unwrap();
            let job = sbatch(&env, &[template.to_str().unwrap(), "bash", "task.sh"]);
            (env, how, job)
        })
        .collect();
    for (env, how, job) in &cases {
        let rows = row_count(&env.db, "ledger");
        wait_for_ledger_rows(&env.db, rows + 40, Duration::from_secs(120));
        let mut args = how.to_vec();
        args.push(job);
        scancel(&args);
    }
    for (env, how, job) in &cases {
        wait_until_jobs_leave_the_queue(&[job], Duration::from_secs(60));
        let output = fs::read_to_string(env.path(&format!("slrm_logs/analysis_{job}.out")))
            .unwrap_or_default();
        let python: i32 = fs::read_to_string(env.path("writer.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let still = alive(python);
        if still {
            let _ = Command::new("kill")
                .args(["-9", &python.to_string()])
                .status();
        }
        assert!(
            !still,
            "scancel {how:?}: python outlived job {job}:\n{output}"
        );
        let rows = row_count(&env.db, "ledger");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(row_count(&env.db, "ledger"), rows, "written after the job");
        let post = await_lines(env, 1, Duration::from_secs(5), |l| {
            l["event"] == "post-job" && l["job"] == job.as_str()
        });
        assert_eq!(post[0]["exit_status"], "143", "{:?}\n{output}", post[0]);
        let copy = gunzip_to(&env.backups.join(&post[0]["backup"]), &env.path("post.db"));
        assert_eq!(
            content_digest(&copy),
            content_digest(&env.db),
            "scancel {how:?}: the post-job backup holds all the work\n{output}"
        );
        assert_ledger_invariant(&copy);
    }
}

/// T10 #3 on the cluster (proctrack/linuxproc, which never ends a re-parented
/// process): the work starts a writer in the background and exits 0. The job
/// ends with the writer stopped before post-job, the post-job line says so, and
/// its backup holds exactly what the database holds.
#[test]
fn a_writer_the_work_left_running_does_not_outlive_the_job() {
    let Some(env) = cluster_env(&[]) else {
        return;
    };
    let pid_file = env.path("writer.pid");
    fs::write(
        env.path("writer.py"),
        python_ledger_writer(0.02, None, Some(&pid_file)),
    )
    .unwrap();
    let template = slurm_dir().join("job_single.sbatch");
    let work = format!("python3 writer.py '{}' & sleep 2", env.db.display());
    let job = sbatch(&env, &[template.to_str().unwrap(), "bash", "-c", &work]);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    let output =
        fs::read_to_string(env.path(&format!("slrm_logs/analysis_{job}.out"))).unwrap_or_default();
    let python: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let still = alive(python);
    if still {
        let _ = Command::new("kill")
            .args(["-9", &python.to_string()])
            .status();
    }
    assert!(!still, "the writer outlived job {job}:\n{output}");
    let rows = row_count(&env.db, "ledger");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(row_count(&env.db, "ledger"), rows, "written after the job");
    assert_eq!(job_state(&job), "COMPLETED", "{output}");
    let post = await_lines(&env, 1, Duration::from_secs(5), |l| {
        l["event"] == "post-job" && l["job"] == job.as_str()
    });
    assert_eq!(post[0]["status"], "ok", "{:?}\n{output}", post[0]);
    assert_eq!(post[0]["exit_status"], "0", "{:?}", post[0]);
    assert_eq!(post[0]["left_running"], python.to_string(), "{:?}", post[0]);
    assert_eq!(post[0]["left_running_stopped"], "TERM", "{:?}", post[0]);
    let copy = gunzip_to(&env.backups.join(&post[0]["backup"]), &env.path("post.db"));
    assert_eq!(row_count(&copy, "ledger"), rows, "{output}");
    assert_eq!(
        content_digest(&copy),
        content_digest(&env.db),
        "the post-job backup is the job's final state\n{output}"
    );
}

/// `scancel -b -s USR1` to a running array reaches every task's batch shell at
/// once (as `--signal=B:USR1@N` does at the time limit): one time-limit backup
/// for the whole array, and every task says so in a summary line.
#[test]
fn usr1_to_a_running_array_makes_exactly_one_time_limit_backup() {
    let Some(env) = cluster_env(&[("endless.py", &python_ledger_writer(0.2, None, None))]) else {
        return;
    };
    let template = slurm_dir().join("job_array.sbatch");
    let array = sbatch(
        &env,
        &[
            "--array=0-3",
            template.to_str().unwrap(),
            "python3",
            "endless.py",
            env.db.to_str().unwrap(),
        ],
    );
    await_lines(&env, 4, Duration::from_secs(120), |l| {
        l["event"] == "pre-job" && l["job"].starts_with(&format!("{array}_"))
    });
    let rows = row_count(&env.db, "ledger");
    wait_for_ledger_rows(&env.db, rows + 40, Duration::from_secs(60));
    scancel(&["-b", "-s", "USR1", &array]);
    let warned = await_lines(&env, 4, Duration::from_secs(60), |l| {
        l["event"] == "time-limit"
    });
    scancel(&[&array]);
    assert_eq!(
        warned.iter().filter(|l| l["status"] == "ok").count(),
        1,
        "{warned:#?}"
    );
    assert!(
        warned.iter().all(|l| l["status"] != "failed"),
        "{warned:#?}"
    );
    let listed = listed(&env);
    let made: Vec<_> = listed.values().filter(|r| r["kind"] == "auto").collect();
    assert_eq!(made.len(), 1, "{listed:#?}");
    assert_eq!(made[0]["job"], array.as_str());
    let copy = gunzip_to(
        &env.backups.join(made[0]["name"].as_str().unwrap()),
        &env.path("warned.db"),
    );
    assert!(row_count(&copy, "ledger") >= rows + 40);
    assert_ledger_invariant(&copy);
    let last_word = await_lines(&env, 1, Duration::from_secs(120), |l| {
        l["event"] == "final" && l["array"] == array.as_str()
    });
    wait_until_jobs_leave_the_queue(&[&array, &last_word[0]["job"]], Duration::from_secs(120));
}

/// `sbatch slurm/job_single.sbatch` with no command used to end COMPLETED 0:0
/// having run nothing; now the job fails with exit 2 and says why in one line.
#[test]
fn a_job_submitted_without_a_command_fails() {
    let Some(env) = cluster_env(&[]) else {
        return;
    };
    let template = slurm_dir().join("job_single.sbatch");
    let job = sbatch(&env, &[template.to_str().unwrap()]);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(60));
    let out = Command::new("scontrol")
        .args(["show", "job", &job])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("JobState=FAILED"), "{text}");
    assert!(text.contains("ExitCode=2:0"), "{text}");
    let output = fs::read_to_string(env.path(&format!("slrm_logs/analysis_{job}.out"))).unwrap();
    assert_eq!(output.lines().count(), 1, "{output}");
    assert!(output.contains("no COMMAND"), "{output}");
    assert!(env.backup_files().is_empty());
}

/// The trial's scenario: a plain `scancel` while pre-job copies a large
/// database. SLURM's TERM reaches every process of the job; the bound after it
/// is the cluster's KillWait (5 s here) minus 2 s, known because pre-job read
/// it before its snapshot — not the 20 s default, which SLURM's KILL cut
/// short (no post-job line, a temp file left).
#[test]
fn scancel_during_pre_job_ends_inside_kill_wait_with_its_post_job_line() {
    if !cluster_ready() {
        return;
    }
    let env = Env::empty();
    make_results_db(&env.db, 150.0, false);
    fs::create_dir_all(env.path("slrm_logs")).unwrap();
    let template = slurm_dir().join("job_single.sbatch");
    let marker = env.path("work-ran");
    let job = sbatch(
        &env,
        &[
            "-J",
            "runfix-term-prejob",
            template.to_str().unwrap(),
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    // Pre-job has started its snapshot.
    env.wait_for_temp_file(0, Duration::from_secs(180));
    scancel(&[&job]);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(60));
    let output =
        fs::read_to_string(env.path(&format!("slrm_logs/analysis_{job}.out"))).unwrap_or_default();
    let post = await_lines(&env, 1, Duration::from_secs(10), |l| {
        l["event"] == "post-job" && l["job"] == job.as_str()
    });
    assert_eq!(post[0]["exit_status"], "143", "{:?}\n{output}", post[0]);
    assert_eq!(
        post[0]["term_grace"], "3 s: KillWait 5 s minus 2 s",
        "{:?}\n{output}",
        post[0]
    );
    assert!(!marker.exists(), "the work must not start");
    assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
    assert!(!output.contains("KillWait unknown"), "{output}");
}

/// T10 #5 on the cluster: a scancelled plain job's pre-job restore point is
/// pinned (it may be requeued), but retention asks the scheduler, which says
/// the job is CANCELLED for good: the pin goes, `max_backups` holds again, and
/// the job is marked ended (asked once).
#[test]
fn a_cancelled_jobs_pin_goes_once_the_scheduler_says_it_ended() {
    let Some(env) = cluster_env(&[]) else {
        return;
    };
    let template = slurm_dir().join("job_single.sbatch");
    let mut command = slurm_command(&env, "sbatch");
    command.env("DBBACKUP_TERM_GRACE_SECONDS", "3").args([
        "--parsable",
        template.to_str().unwrap(),
        "sleep",
        "300",
    ]);
    let out = command.output().unwrap();
    assert!(out.status.success());
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let pre = await_lines(&env, 1, Duration::from_secs(180), |l| {
        l["event"] == "pre-job" && l["job"] == job
    });
    let pinned = pre[0]["backup"].clone();
    std::thread::sleep(Duration::from_millis(500));
    scancel(&[&job]);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    assert_eq!(job_state(&job), "CANCELLED");
    let post = await_lines(&env, 1, Duration::from_secs(30), |l| {
        l["event"] == "post-job" && l["job"] == job
    });
    assert_eq!(post[0]["after_term"], "true");
    let mut said = String::new();
    for i in 0..3 {
        rusqlite::Connection::open(&env.db)
            .unwrap()
            .execute_batch(&format!(
                "INSERT INTO ledger (amount, note) VALUES ({i}, 'x'); \
                 INSERT INTO ledger (amount, note) VALUES (-{i}, 'balance'); UPDATE counter SET n = n + 2"
            ))
            .unwrap();
        let run = env.run(&["--max-backups", "1", "backup"]);
        run.ok();
        said.push_str(&run.stderr);
    }
    assert!(
        said.contains(&format!(
            "job {job} ended (the scheduler says so): its pre-job restore point {pinned} is no longer kept for it"
        )),
        "{said}"
    );
    assert_eq!(said.matches("the scheduler says so").count(), 1, "{said}");
    assert!(
        !env.backup_files().contains(&pinned),
        "{:?}",
        env.backup_files()
    );
    assert_eq!(env.backup_files().len(), 1, "{:?}", env.backup_files());
}

/// T21 F1: `dbbackup run -- srun …` (docs/slurm.md's advice for one database
/// shared by a step's tasks), scancel'ed: the step's task is slurmstepd's
/// child, not the work's, and SLURM lets it run until KillWait; it wrote its
/// TERM checkpoint after the post-job backup, whose line said a plain
/// `status=ok`. The line names the step still running then, with a warning.
#[test]
fn a_step_still_running_after_term_is_named_on_the_post_job_line() {
    let writer = "import sqlite3, signal, sys, time\n\
                  c = sqlite3.connect(sys.argv[1], timeout=60)\n\
                  def term(*_):\n    time.sleep(4)\n    \
                  c.execute(\"INSERT INTO ledger (amount, note) VALUES (0, 'checkpoint')\")\n    \
                  c.commit()\n    sys.exit(0)\n\
                  signal.signal(signal.SIGTERM, term)\n\
                  open(sys.argv[2], 'w').close()\n\
                  while True:\n    time.sleep(0.2)\n";
    let Some(env) = cluster_env(&[("writer.py", writer)]) else {
        return;
    };
    let started = env.path("started");
    let template = slurm_dir().join("job_single.sbatch");
    let out = env.path("job.out");
    let job = sbatch(
        &env,
        &[
            "-o",
            out.to_str().unwrap(),
            template.to_str().unwrap(),
            "srun",
            "python3",
            "writer.py",
            env.db.to_str().unwrap(),
            started.to_str().unwrap(),
        ],
    );
    wait_until(
        "the step's task to start",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || started.exists(),
    );
    scancel(&[&job]);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    let lines = summary_lines(&env.summary_log());
    let post: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "post-job" && l["job"] == job)
        .collect();
    let output = fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(post.len(), 1, "{lines:#?}\n{output}");
    assert_eq!(
        post[0].get("steps_running").map(String::as_str),
        Some(format!("{job}.0").as_str()),
        "{:?}\n{output}",
        post[0]
    );
    assert!(
        output.contains(&format!(
            "step {job}.0 of this job still runs on this node (SLURM lets its tasks run until KillWait)"
        )),
        "{output}"
    );
}
