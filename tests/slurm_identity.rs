//! The SLURM protocol's edges: a stuck controller, a job submitted from inside
//! an array task, a database locked past the busy timeout at pre-job, `final`
//! run by hand from a login node, and undoing a job (`restore --before-job`,
//! `list --job`). Tests that need SLURM use the local cluster and say when they
//! are skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Ids no real job has (above SLURM's MaxJobId), so the local cluster's
/// `scontrol` answers "invalid job id" and the variables are trusted.
const FAKE_ARRAY: &str = "88000001";

fn cluster_name() -> String {
    let out = Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "ClusterName").then(|| v.trim().to_string())
        })
        .expect("ClusterName")
}

/// `sbatch`, `scontrol` and `sacct` that never answer (a stuck controller).
fn stuck_tools(env: &Env) -> PathBuf {
    let bin = env.path("stuck-bin");
    for tool in ["sbatch", "scontrol", "sacct"] {
        fake_tool(&bin, tool, "#!/bin/sh\nsleep 120\necho 1\n");
    }
    bin
}

/// Run `command`, killing it after `limit`: `None` when it had to be killed.
fn run_within(mut command: Command, limit: Duration) -> Option<(Run, Duration)> {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = output_within(child, limit)?;
    Some((output.into(), started.elapsed()))
}

fn array_task(env: &Env, array: &str, task: u32, count: u32) -> Command {
    let mut command = env.command();
    command
        .env("SLURM_ARRAY_JOB_ID", array)
        .env("SLURM_ARRAY_TASK_ID", task.to_string())
        .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
        .env("SLURM_ARRAY_TASK_MIN", "0")
        .env("SLURM_ARRAY_TASK_MAX", (count - 1).to_string())
        .env("SLURM_ARRAY_TASK_STEP", "1")
        .env("SLURM_JOB_ID", format!("{array}{task:03}"))
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log());
    command
}

/// A stuck controller: every scheduler command is bounded, says so, and the
/// job goes on (pre-job still makes its restore point; final still backs up).
#[test]
fn a_stuck_controller_delays_pre_job_and_final_but_never_hangs_them() {
    let env = Env::new();
    let bin = stuck_tools(&env);
    // The task's own record answers (SLURM does not know these ids): an
    // identity question that fails makes the task its own job, with no final
    // job to submit (tests/slurm_t10.rs); here sbatch is what is stuck.
    fake_tool(
        &bin,
        "scontrol",
        &format!(
            "#!/bin/sh
if [ \"$1 $2 $3\" = 'show job {FAKE_ARRAY}000' ]; then \
             echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1; fi\nsleep 120\n"
        ),
    );
    let script = env.path("final_backup.sbatch");
    fs::write(&script, "#!/bin/sh\n").unwrap();
    let mut pre = array_task(&env, FAKE_ARRAY, 0, 2);
    pre.env("PATH", path_with(&bin))
        .env("SLURM_CLUSTER_NAME", "alpha")
        .args(["pre-job", "--final-job"])
        .arg(&script);
    let (run, took) =
        run_within(pre, Duration::from_secs(60)).expect("pre-job hung on a stuck controller");
    run.failed_with(1, "did not answer within");
    assert!(took < Duration::from_secs(40), "took {took:?}");
    let lines = summary_lines(&env.summary_log());
    let line = &lines[0];
    assert_eq!(line["event"], "pre-job");
    assert!(
        line["final"].starts_with("not submitted: sbatch did not answer within"),
        "{line:?}"
    );
    assert_eq!(
        env.backup_files().len(),
        1,
        "the restore point is still made"
    );
    assert!(line["backup"].starts_with("backup_"), "{line:?}");

    // By hand, no cluster name in the environment: scontrol is asked, bounded.
    let mut fin = env.command();
    fin.env("PATH", path_with(&bin)).args(["final", FAKE_ARRAY]);
    let (run, took) =
        run_within(fin, Duration::from_secs(60)).expect("final hung on a stuck controller");
    run.ok();
    assert!(took < Duration::from_secs(40), "took {took:?}");
    assert!(
        run.stderr.contains("did not answer within"),
        "{}",
        run.stderr
    );
}

/// Eight tasks against a database a writer holds past the busy timeout: they
/// wait side by side (no directory lock held while SQLite is busy), all give
/// up within one busy timeout of each other, and the failure is recorded so a
/// later task does not wait again.
#[test]
fn a_locked_database_does_not_serialize_an_array_at_pre_job() {
    let env = Env::new();
    let writer = hold_exclusive(&env.db);
    let started = Instant::now();
    let children: Vec<_> = (0..8)
        .map(|task| {
            let mut command = array_task(&env, FAKE_ARRAY, task, 9);
            command
                .env("DBBACKUP_BUSY_TIMEOUT_SECONDS", "2")
                .env("DBBACKUP_LOCK_TIMEOUT_SECONDS", "60")
                .arg("pre-job")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            std::thread::spawn(move || {
                let output = command.output().unwrap();
                (Instant::now(), Run::from(output))
            })
        })
        .collect();
    let ends: Vec<(Instant, Run)> = children.into_iter().map(|c| c.join().unwrap()).collect();
    let first = ends.iter().map(|(t, _)| *t).min().unwrap();
    let last = ends.iter().map(|(t, _)| *t).max().unwrap();
    for (_, run) in &ends {
        run.failed_with(1, "locked by another process");
    }
    eprintln!(
        "8 tasks against a locked database gave up {:?} apart, {:?} after the start",
        last - first,
        last - started
    );
    assert!(
        last - first < Duration::from_secs(2),
        "tasks gave up {:?} apart (serialized?); all done after {:?}",
        last - first,
        last - started
    );
    // A task starting now finds the recorded failure and does not wait.
    let mut late = array_task(&env, FAKE_ARRAY, 8, 9);
    late.env("DBBACKUP_BUSY_TIMEOUT_SECONDS", "2")
        .arg("pre-job");
    let (run, took) = run_within(late, Duration::from_secs(30)).unwrap();
    run.failed_with(1, "the other tasks do not wait for it again");
    assert!(
        took < Duration::from_millis(1500),
        "late task waited {took:?}"
    );
    let lines = summary_lines(&env.summary_log());
    assert_eq!(lines.len(), 9);
    assert!(lines.iter().all(|l| l["status"] == "failed"));
    drop(writer);
    assert_ledger_invariant(&env.db);
    assert!(env.backup_files().is_empty());
}

/// A task whose post-job ran after SLURM's TERM reached post-job: the final
/// line lists it under `post_job`, not `no_post_job`.
#[test]
fn final_counts_tasks_whose_post_job_ran_after_term() {
    let env = Env::new();
    let array = "88000002";
    for task in 0..3 {
        let mut pre = array_task(&env, array, task, 3);
        pre.env("SLURM_CLUSTER_NAME", "alpha").arg("pre-job");
        Run::from(pre.output().unwrap()).ok();
    }
    for task in 0..2 {
        let mut post = array_task(&env, array, task, 3);
        post.env("SLURM_CLUSTER_NAME", "alpha")
            .args(["post-job", "--status", "0"]);
        Run::from(post.output().unwrap()).ok();
    }
    let mut termed = array_task(&env, array, 2, 3);
    termed
        .env("SLURM_CLUSTER_NAME", "alpha")
        .args(["post-job", "--status", "143", "--after-term"]);
    Run::from(termed.output().unwrap()).ok();
    let run: Run = env
        .command()
        .env("SLURM_CLUSTER_NAME", "alpha")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["final", array])
        .output()
        .unwrap()
        .into();
    run.ok();
    let lines = summary_lines(&env.summary_log());
    let line = lines.iter().find(|l| l["event"] == "final").unwrap();
    assert_eq!(line["post_job"], "0-2", "{line:?}");
    assert_eq!(line["no_post_job"], "-", "{line:?}");
}

/// `final ARRAY` by hand from a login node (no SLURM_CLUSTER_NAME): the state
/// the tasks wrote under the cluster's name is found, and the array is marked
/// ended under that key (no stray marker under a key without a cluster).
#[test]
fn final_by_hand_from_a_login_node_reads_the_arrays_state() {
    if !cluster_ready() {
        return;
    }
    let cluster = cluster_name();
    let env = Env::new();
    let array = "88000003";
    for task in 0..2 {
        let mut pre = array_task(&env, array, task, 2);
        pre.env("SLURM_CLUSTER_NAME", &cluster).arg("pre-job");
        Run::from(pre.output().unwrap()).ok();
        let mut post = array_task(&env, array, task, 2);
        post.env("SLURM_CLUSTER_NAME", &cluster)
            .args(["post-job", "--status", "0"]);
        Run::from(post.output().unwrap()).ok();
    }
    let run: Run = env
        .command()
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["final", array])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert!(!run.stdout.contains("knows nothing"), "{}", run.stdout);
    let lines = summary_lines(&env.summary_log());
    let line = lines.iter().find(|l| l["event"] == "final").unwrap();
    assert_eq!(line["post_job"], "0-1", "{line:?}");
    let state: Vec<String> = fs::read_dir(env.backups.join(".dbbackup-state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        state
            .iter()
            .any(|n| n.starts_with(&format!("ended-{cluster}-{array}-"))),
        "{state:?}"
    );
    assert!(
        !state.iter().any(|n| n.starts_with("ended---")),
        "{state:?}"
    );
}

/// The text of the file at `path` once its last line is whole, trimmed.
fn wait_for_file(path: &Path, limit: Duration) -> String {
    let what = format!("{} is written", path.display());
    poll_until(
        &what,
        limit,
        Duration::from_millis(300),
        || match fs::read_to_string(path) {
            Ok(text) if text.ends_with('\n') => Ok(text.trim().to_string()),
            seen => Err(seen),
        },
    )
}

/// The scenario on the real cluster: an array task submits a follow-up
/// job (sbatch exports the task's SLURM_ARRAY_* variables to it). The follow-up
/// is its own job: its lines carry its own id, its pre-job makes its own
/// restore point, and its post-job backup holds its work.
#[test]
fn a_job_submitted_from_an_array_task_is_its_own_job() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    let work = |note: &str| {
        format!(
            "python3 -c \"import sqlite3; c = sqlite3.connect('{db}', timeout=60); \
             c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (3, '{note}')\\\"); \
             c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (-3, 'balance')\\\"); \
             c.execute('UPDATE counter SET n = n + 2'); c.commit()\"",
            db = env.db.display()
        )
    };
    let child = env.path("child.sh");
    fs::write(
        &child,
        format!(
            "#!/bin/bash\n\"$DBBACKUP\" pre-job\n{}\n\"$DBBACKUP\" post-job --status 0\n",
            work("child")
        ),
    )
    .unwrap();
    let parent = env.path("parent.sh");
    fs::write(
        &parent,
        format!(
            "#!/bin/bash\n\"$DBBACKUP\" pre-job\n{}\n\
             if [ \"$SLURM_ARRAY_TASK_ID\" = 0 ]; then sbatch --parsable -o '{out}/child.out' '{child}' > '{out}/child.id.tmp' && mv '{out}/child.id.tmp' '{out}/child.id'; fi\n\
             \"$DBBACKUP\" post-job --status 0\n",
            work("parent"),
            out = env.root.path().display(),
            child = child.display()
        ),
    )
    .unwrap();
    for script in [&child, &parent] {
        chmod(script, 0o755);
    }
    let output = job_command(&env, "sbatch")
        .args(["--parsable", "--array=0-1", "-o"])
        .arg(env.path("parent-%a.out"))
        .arg(&parent)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let array = String::from_utf8_lossy(&output.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let child_id = wait_for_file(&env.path("child.id"), Duration::from_secs(120));
    wait_until_jobs_leave_the_queue(&[&array, &child_id], Duration::from_secs(180));

    let lines = summary_lines(&env.summary_log());
    let child_lines: Vec<_> = lines.iter().filter(|l| l["job"] == child_id).collect();
    assert_eq!(
        child_lines.len(),
        2,
        "the follow-up's lines carry its own id {child_id}: {lines:#?}"
    );
    let pre = child_lines
        .iter()
        .find(|l| l["event"] == "pre-job")
        .unwrap();
    assert_eq!(pre["status"], "ok", "{pre:?}");
    assert!(
        !pre.get("reason")
            .is_some_and(|r| r.contains("another task")),
        "{pre:?}"
    );
    let post = child_lines
        .iter()
        .find(|l| l["event"] == "post-job")
        .unwrap();
    assert_eq!(post["status"], "ok", "{post:?}");
    assert_eq!(post["trigger"], "job finished", "{post:?}");
    // Its backup holds its work.
    let listed = listed(&env);
    let (name, _) = listed
        .iter()
        .rfind(|(_, row)| row["job"] == child_id.as_str() && row["kind"] == "post-job")
        .expect("a post-job backup of the follow-up");
    let restored = gunzip_to(&env.backups.join(name), &env.path("child-backup.db"));
    let conn = rusqlite::Connection::open(&restored).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM ledger WHERE note = 'child'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
    assert_ledger_invariant(&restored);
}

fn job_step(env: &Env, job: &str, args: &[&str]) -> Run {
    env.command()
        .env("SLURM_JOB_ID", job)
        .env("SLURM_CLUSTER_NAME", "alpha")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(args)
        .output()
        .unwrap()
        .into()
}

fn work(env: &Env, note: &str) {
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO ledger (amount, note) VALUES (7, '{note}'); \
             INSERT INTO ledger (amount, note) VALUES (-7, 'balance'); UPDATE counter SET n = n + 2"
        ))
        .unwrap();
}

/// Three jobs one after another; each can be undone: `restore --before-job`
/// brings back the database as it was before that job's work (its pre-job
/// point, also when pre-job reused an unchanged one), and `list --job` shows
/// what the job made.
#[test]
fn restore_before_job_undoes_a_job_and_list_job_shows_what_it_made() {
    let env = Env::new();
    let mut before = Vec::new();
    for (job, changes) in [("88000010", true), ("88000011", true), ("88000012", false)] {
        job_step(&env, job, &["pre-job"]).ok();
        before.push(content_digest(&env.db));
        if changes {
            work(&env, job);
        }
        job_step(&env, job, &["post-job", "--status", "0"]).ok();
    }
    let after = content_digest(&env.db);
    for (job, digest) in ["88000010", "88000011", "88000012"].iter().zip(&before) {
        let run = env.run(&["restore", "--before-job", job]);
        run.ok();
        assert!(run.stdout.contains("before the job:"), "{}", run.stdout);
        // The third job's point was made by the second: said, as `list` shows it.
        assert_eq!(
            run.stdout
                .contains("(reused: made by job 88000011, the database was unchanged)"),
            *job == "88000012",
            "{}",
            run.stdout
        );
        assert_eq!(&content_digest(&env.db), digest, "before job {job}");
    }
    assert_ne!(before[0], after);

    let made = env.run(&["list", "--job", "88000010", "--format", "json"]);
    made.ok();
    let rows = made.json();
    let kinds: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["job"], "88000010");
            r["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kinds, ["post-job", "pre-job"]);
    // The third job changed nothing: its pre-job reused a point (listed for it,
    // the one `restore --before-job` took), its post-job found the database
    // unchanged.
    let reused = env.run(&["list", "--job", "88000012", "--format", "json"]);
    reused.ok();
    let rows = reused.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["job"], "88000011");
    assert_eq!(rows[0]["pre_job_of"], "88000012");
}

/// Bad job ids are usage errors; a job nobody knows is a clear failure, and
/// nothing is restored.
#[test]
fn restore_before_job_refuses_bad_or_unknown_jobs() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let digest = content_digest(&env.db);
    env.run(&["restore", "--before-job", "12;rm"])
        .failed_with(2, "not a SLURM job id");
    env.run(&["list", "--job", "abc"])
        .failed_with(2, "not a SLURM job id");
    env.run(&["restore", "latest", "--before-job", "5"])
        .failed_with(2, "NAME and --before-job JOBID cannot be used together");
    env.run(&["restore", "--before-job", "88000099"])
        .failed_with(1, "no pre-job restore point of job 88000099");
    assert_eq!(content_digest(&env.db), digest);
}

/// KillWait is read once, at pre-job, and kept with the job's state: after
/// SLURM's TERM no task asks the controller (`scontrol show config` in every
/// task at the controller's busiest moment), and the bound still comes from it.
#[test]
fn kill_wait_is_read_once_at_pre_job_not_by_every_task_at_term() {
    let env = Env::new();
    let bin = env.path("counting-bin");
    let calls = env.path("scontrol.calls");
    fake_tool(
        &bin,
        "scontrol",
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\n\
                 if [ \"$1 $2\" = 'show config' ]; then printf 'ClusterName = alpha\\nKillWait = 7 sec\\n'; exit 0; fi\n\
                 echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n",
            calls.display()
        ),
    );
    let array = "88000004";
    let step = |task: u32, args: &[&str]| -> Run {
        let mut command = array_task(&env, array, task, 4);
        command
            .env("PATH", path_with(&bin))
            .env("SLURM_CLUSTER_NAME", "alpha")
            .args(args);
        command.output().unwrap().into()
    };
    for task in 0..4 {
        step(task, &["pre-job"]).ok();
    }
    let at_pre_job = fs::read_to_string(&calls).unwrap();
    assert_eq!(
        at_pre_job.lines().filter(|l| *l == "show config").count(),
        1,
        "{at_pre_job}"
    );
    fs::remove_file(&calls).unwrap();
    for task in 0..4 {
        step(task, &["post-job", "--status", "143", "--after-term"]).ok();
    }
    // The controller is not asked; the node's slurmd is, for the job's steps
    // still running (`scontrol listpids`, T21 F1).
    let after_term = fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        after_term.lines().all(|l| l.starts_with("listpids ")),
        "the controller asked after TERM: {after_term}"
    );
    let lines = summary_lines(&env.summary_log());
    let post: Vec<_> = lines.iter().filter(|l| l["event"] == "post-job").collect();
    assert_eq!(post.len(), 4);
    for line in post {
        assert_eq!(
            line["term_grace"], "5 s: KillWait 7 s minus 2 s",
            "{line:?}"
        );
    }
}

/// A job that ran no pre-job: `restore --before-job` takes the newest restore
/// point made before SLURM says the job started.
#[test]
fn restore_before_job_without_a_pre_job_uses_the_jobs_start_time() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    env.run(&["backup"]).ok();
    let before = content_digest(&env.db);
    // SLURM's start times have whole seconds.
    std::thread::sleep(Duration::from_millis(1100));
    let script = env.path("job.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/bash\nsleep 1\npython3 -c \"import sqlite3; c = sqlite3.connect('{db}', timeout=60); \
             c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (4, 'job')\\\"); \
             c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (-4, 'balance')\\\"); \
             c.execute('UPDATE counter SET n = n + 2'); c.commit()\"\n\"$DBBACKUP\" backup\n",
            db = env.db.display()
        ),
    )
    .unwrap();
    chmod(&script, 0o755);
    let output = job_command(&env, "sbatch")
        .args(["--parsable", "-o"])
        .arg(env.path("job.out"))
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let job = String::from_utf8_lossy(&output.stdout).trim().to_string();
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    assert_eq!(env.backup_files().len(), 2, "the job backed up its work");
    assert_ne!(content_digest(&env.db), before);
    let run = env.run(&["restore", "--before-job", &job]);
    run.ok();
    assert!(run.stdout.contains("before job"), "{}", run.stdout);
    assert!(run.stdout.contains("started"), "{}", run.stdout);
    assert_eq!(content_digest(&env.db), before);
}

/// The same without a cluster: `scontrol` (a script answering as SLURM does for
/// a plain job) says the job is not an array task; pre-job asks once, post-job
/// asks nobody and still treats it as its own job.
#[test]
fn inherited_array_variables_lose_to_slurms_record() {
    let env = Env::new();
    let bin = env.path("record-bin");
    let calls = env.path("scontrol.calls");
    fake_tool(
        &bin,
        "scontrol",
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\n\
                 if [ \"$1 $2\" = 'show job' ]; then echo \"JobId=$3 JobName=follow-up JobState=RUNNING\"; exit 0; fi\n\
                 printf 'ClusterName = alpha\\nKillWait = 5 sec\\n'\n",
            calls.display()
        ),
    );
    let step = |args: &[&str]| -> Run {
        // Task 0 of array 88000005 submitted job 88000007: it inherited these.
        let mut command = array_task(&env, "88000005", 0, 2);
        command
            .env("SLURM_JOB_ID", "88000007")
            .env("PATH", path_with(&bin))
            .env("SLURM_CLUSTER_NAME", "alpha")
            .args(args);
        command.output().unwrap().into()
    };
    let pre = step(&["pre-job"]);
    pre.ok();
    assert!(pre.stderr.contains("job=88000007 "), "{}", pre.stderr);
    assert!(!pre.stderr.contains("job=88000005_0"), "{}", pre.stderr);
    let asked = fs::read_to_string(&calls).unwrap();
    assert_eq!(
        asked.lines().filter(|l| l.starts_with("show job")).count(),
        1,
        "{asked}"
    );
    fs::remove_file(&calls).unwrap();
    work(&env, "follow-up");
    step(&["post-job", "--status", "0"]).ok();
    assert!(!calls.exists(), "post-job asked scontrol");
    let lines = summary_lines(&env.summary_log());
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["job"], "88000007", "{line:?}");
        assert_eq!(line["status"], "ok", "{line:?}");
    }
    assert_eq!(lines[1]["trigger"], "job finished");
    let restored = gunzip_to(&env.newest_backup(), &env.path("follow-up.db"));
    let rows: i64 = rusqlite::Connection::open(&restored)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM ledger WHERE note = 'follow-up'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
}

/// T21 F2: the same job calling only `post-job` (no pre-job asked SLURM for
/// it): it went by the inherited variables, counted as the array's task,
/// marked the array ended while it ran, and retention deleted the array's
/// pre-job restore point. Post-job asks SLURM itself then.
#[test]
fn a_job_submitted_from_an_array_task_that_runs_only_post_job_is_its_own_job() {
    let env = Env::new();
    let bin = env.path("record-bin");
    fake_tool(
        &bin,
        "scontrol",
        "#!/bin/sh
\
         if [ \"$1 $2\" = 'show job' ]; then echo \"JobId=$3 JobName=follow-up JobState=RUNNING\"; exit 0; fi\n\
         printf 'ClusterName = alpha\\nKillWait = 5 sec\\n'\n",
    );
    let mut command = array_task(&env, "88000105", 0, 1);
    command
        .env("SLURM_JOB_ID", "88000107")
        .env("PATH", path_with(&bin))
        .env("SLURM_CLUSTER_NAME", "alpha")
        .args(["post-job", "--status", "0"]);
    let run: Run = command.output().unwrap().into();
    run.ok();
    let lines = summary_lines(&env.summary_log());
    assert_eq!(lines[0]["job"], "88000107", "{lines:?}");
    assert_eq!(lines[0]["trigger"], "job finished", "{lines:?}");
}

/// A requeued job (SLURM's TERM, then a second run with
/// `SLURM_RESTART_COUNT=1`): the second run's post-job backup does not let
/// retention delete the job's recorded pre-job restore point (the job is still
/// running while it backs up), so `restore --before-job` brings back the state
/// from before the first run. Once a later backup has pushed the point out,
/// the answer says it was deleted instead of inventing another reason.
#[test]
fn a_requeued_jobs_restore_point_outlives_its_second_run() {
    let env = Env::new();
    let job = "88000020";
    let step = |restarts: &str, args: &[&str]| -> Run {
        env.command()
            .env("SLURM_JOB_ID", job)
            .env("SLURM_CLUSTER_NAME", "alpha")
            .env("SLURM_RESTART_COUNT", restarts)
            .env("DBBACKUP_MAX_BACKUPS", "2")
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    step("0", &["pre-job"]).ok();
    let before = content_digest(&env.db);
    let point = env.newest_backup();
    work(&env, "first run");
    step("0", &["post-job", "--after-term", "--status", "143"]).ok();
    step("1", &["pre-job"]).ok();
    work(&env, "second run");
    step("1", &["post-job", "--status", "0"]).ok();
    assert!(
        point.exists(),
        "retention deleted the running job's restore point"
    );
    let run = env.run(&["restore", "--before-job", job]);
    run.ok();
    assert!(
        run.stdout.contains("pre-job restore point"),
        "{}",
        run.stdout
    );
    assert_eq!(content_digest(&env.db), before);

    // The job has ended: its point may go like any other.
    work(&env, "later");
    env.command()
        .env("DBBACKUP_MAX_BACKUPS", "2")
        .arg("backup")
        .output()
        .unwrap();
    assert!(!point.exists());
    let run = env.run(&["restore", "--before-job", job]);
    let name = point.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        run.stderr.contains(&format!(
            "job {job}'s pre-job restore point {name} was deleted"
        )) || run.stdout.contains(&format!(
            "job {job}'s pre-job restore point {name} was deleted"
        )),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stderr
            .contains("no restore point of this database was made before"),
        "{}",
        run.stderr
    );
}

/// Without a recorded point, `restore --before-job` of a requeued job goes by
/// its FIRST start (`sacct --duplicates`: every run), never its last: a backup
/// made between the runs (here by the job itself) holds part of its work.
#[test]
fn restore_before_a_requeued_job_goes_by_its_first_start() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let before = content_digest(&env.db);
    // SLURM's local time, whole seconds.
    let local = |t: std::time::SystemTime| {
        let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let out = Command::new("date")
            .arg(format!("--date=@{secs}"))
            .arg("+%Y-%m-%dT%H:%M:%S")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    std::thread::sleep(Duration::from_millis(1100));
    let first = std::time::SystemTime::now();
    let job = "88000021";
    work(&env, "first run");
    job_step(&env, job, &["backup"]).ok();
    std::thread::sleep(Duration::from_millis(1100));
    let second = std::time::SystemTime::now();
    let bin = env.path("sacct-bin");
    fake_tool(
        &bin,
        "sacct",
        &format!(
            // `JobID|Start`: the start is read only from the job's own lines.
            // `JobID,State` (is it still running?): ended.
            "#!/bin/sh\ncase \" $* \" in *JobID,State*) echo '{job}|COMPLETED'; exit 0;; esac\ncase \" $* \" in *' -D '*|*' --duplicates '*) echo '{job}|{}';; esac\necho '{job}|{}'\necho '9{job}|2000-01-01T00:00:00'\n",
            local(first),
            local(second)
        ),
    );
    fake_tool(
        &bin,
        "scontrol",
        "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n",
    );
    let run: Run = env
        .command()
        .env("PATH", path_with(&bin))
        .args(["restore", "--before-job", job])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert!(run.stdout.contains("first started"), "{}", run.stdout);
    assert_eq!(content_digest(&env.db), before);
}

/// State files written without the lock (identity, attempt records, time-limit
/// markers) are written through temp files in `.dbbackup-state`: expiring the
/// state removes only temp files of dead processes on this host, or old ones,
/// never a live writer's (which then failed: "cannot write …identity-…").
#[test]
fn expiring_state_spares_live_writers_temp_files() {
    let env = Env::new();
    job_step(&env, "88000030", &["pre-job"]).ok();
    let state = env.backups.join(".dbbackup-state");
    let host: String = String::from_utf8_lossy(&Command::new("hostname").output().unwrap().stdout)
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let live = state.join(format!(
        ".dbbackup-tmp-{host}-{}-0.part",
        std::process::id()
    ));
    let of_dead = state.join(format!(".dbbackup-tmp-{host}-{dead_pid}-0.part"));
    let elsewhere = state.join(".dbbackup-tmp-otherhost-12345-0.part");
    let elsewhere_old = state.join(".dbbackup-tmp-otherhost-12346-0.part");
    for file in [&live, &of_dead, &elsewhere, &elsewhere_old] {
        fs::write(file, "array=\n").unwrap();
    }
    let touched = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&elsewhere_old)
        .status()
        .unwrap();
    assert!(touched.success());
    job_step(&env, "88000031", &["pre-job"]).ok();
    assert!(live.exists(), "a live writer's temp file was removed");
    assert!(
        elsewhere.exists(),
        "another host's fresh temp file was removed"
    );
    assert!(!of_dead.exists(), "a dead writer's temp file was kept");
    assert!(!elsewhere_old.exists(), "an old temp file was kept");
}

/// `final` given a plain job's id (its post-job ran): a warning that it is not
/// an array, in the output and the summary line, not a silent `post_job=-`.
#[test]
fn final_of_a_plain_job_warns_that_it_is_not_an_array() {
    let env = Env::new();
    let job = "88000040";
    job_step(&env, job, &["pre-job"]).ok();
    work(&env, job);
    job_step(&env, job, &["post-job", "--status", "0"]).ok();
    let run: Run = env
        .command()
        .env("SLURM_CLUSTER_NAME", "alpha")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["final", job])
        .output()
        .unwrap()
        .into();
    run.ok();
    // Once, as a log line on stderr (stdout is the report).
    assert_eq!(
        run.stderr.matches("is not an array").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("is not an array"), "{}", run.stdout);
    let lines = summary_lines(&env.summary_log());
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "final");
    assert!(last["warning"].contains("is not an array"), "{last:?}");
}

/// `scontrol release JOB` of a held job.
fn release(job: &str) {
    let released = Command::new("scontrol")
        .args(["release", job])
        .status()
        .unwrap();
    assert!(released.success(), "scontrol release {job}");
}

/// The state file of `job`'s pre-job record (on this cluster).
fn prejob_record(env: &Env, job: &str) -> PathBuf {
    fs::read_dir(env.backups.join(".dbbackup-state"))
        .unwrap()
        .flatten()
        .map(|item| item.path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("prejob-{}-{job}-", cluster_name()))
        })
        .expect("the job's pre-job record")
}

/// The pre-job record of `job` written as an earlier job with that id did,
/// two days before: made then, submitted then (a held job's SLURM record,
/// asked when it was written, has today's submission).
fn date_earlier_record(env: &Env, job: &str) {
    let record = prejob_record(env, job);
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    let days_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    json["made"] = serde_json::Value::String(days_ago.to_string());
    json["submitted"] =
        serde_json::Value::String((days_ago - jiff::SignedDuration::from_mins(1)).to_string());
    fs::write(&record, json.to_string()).unwrap();
}

/// T21 F3: a job id SLURM gives again (a controller whose state was reset)
/// found the earlier job's pre-job record: no restore point was made, and
/// `restore --before-job` brought back the earlier job's state, exit 0. On the
/// real cluster: the earlier job's state is written under a held job's id (as
/// that earlier job would have, weeks before), then the job runs.
#[test]
fn a_job_id_given_again_gets_its_own_restore_point() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    let script = env.path("job.sh");
    fs::write(
        &script,
        "#!/bin/bash\n\"$DBBACKUP\" pre-job || exit 1\n\
         python3 -c \"import sqlite3, os; c = sqlite3.connect(os.environ['DBBACKUP_DB_PATH'], timeout=60); \
         c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (5, 'new job')\\\"); \
         c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (-5, 'balance')\\\"); c.commit()\"\n\
         \"$DBBACKUP\" post-job --status $?\n",
    )
    .unwrap();
    chmod(&script, 0o755);
    let output = job_command(&env, "sbatch")
        .args(["--parsable", "--hold", "-o"])
        .arg(env.path("job.out"))
        .arg(&script)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let job = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let earlier_job = |args: &[&str]| {
        env.command()
            .env("SLURM_JOB_ID", &job)
            .env("SLURM_CLUSTER_NAME", cluster_name())
            .args(args)
            .output()
            .unwrap()
    };
    let pre = earlier_job(&["pre-job"]);
    assert!(pre.status.success(), "{pre:?}");
    work(&env, "earlier job");
    assert!(earlier_job(&["post-job", "--status", "0"]).status.success());
    // Its record as that job wrote it, days before this one was submitted.
    date_earlier_record(&env, &job);
    // Later work, backed up, then more: the state right before the new job is
    // in no backup yet.
    work(&env, "between the jobs");
    env.run(&["backup"]).ok();
    work(&env, "just before the new job");
    let before = content_digest(&env.db);

    release(&job);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    let pre = summary_lines(&env.summary_log())
        .into_iter()
        .rfind(|line| line["job"] == job && line["event"] == "pre-job")
        .expect("the job's pre-job line");
    assert_eq!(pre["status"], "ok", "{pre:?}");
    let restored = env.path("before.db");
    let run = env.run(&[
        "restore",
        "--before-job",
        &job,
        "--target",
        restored.to_str().unwrap(),
    ]);
    run.ok();
    assert_eq!(
        content_digest(&restored),
        before,
        "restore --before-job {job} is not the state right before it: {}",
        run.stdout
    );
}

/// T22 F8: a job id given again found the earlier job's recorded identity (a
/// task of another array) and went by it: its post-job waited for that
/// array's "last task" and its work was in no backup. Pre-job asks SLURM
/// again; the record serves only when SLURM cannot be asked.
#[test]
fn a_job_id_given_again_does_not_take_the_earlier_jobs_identity() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    fs::create_dir_all(env.path("slrm_logs")).unwrap();
    let template = slurm_dir().join("job_single.sbatch");
    // Submitted from inside a task of array 88000400: the variables are inherited.
    let output = job_command(&env, "sbatch")
        .env("SLURM_ARRAY_JOB_ID", "88000400")
        .env("SLURM_ARRAY_TASK_ID", "1")
        .args(["--parsable", "--hold", "-o"])
        .arg(env.path("job.out"))
        .arg(&template)
        .args(["python3", "-c"])
        .arg(format!(
            "import sqlite3; c = sqlite3.connect('{}', timeout=60); \
             c.execute(\"INSERT INTO ledger (amount, note) VALUES (4, 'reused id')\"); \
             c.execute(\"INSERT INTO ledger (amount, note) VALUES (-4, 'balance')\"); c.commit()",
            env.db.display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let job = String::from_utf8_lossy(&output.stdout).trim().to_string();
    // What the earlier job with this id (task 1 of array 88000499) recorded.
    let state = env.backups.join(".dbbackup-state");
    fs::create_dir_all(&state).unwrap();
    fs::write(
        state.join(format!("identity-{}-{job}", cluster_name())),
        "array=88000499_1\n",
    )
    .unwrap();
    release(&job);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    let lines = summary_lines(&env.summary_log());
    let post = lines
        .iter()
        .find(|l| l["event"] == "post-job")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(post["job"], job, "{lines:#?}");
    assert_eq!(post["status"], "ok", "{post:?}");
    assert_eq!(post["trigger"], "job finished", "{post:?}");
    let copy = gunzip_to(&env.backups.join(&post["backup"]), &env.path("post.db"));
    assert_eq!(content_digest(&copy), content_digest(&env.db));
}

/// T22 F9: after a TERM, a node whose slurmd does not answer which steps of
/// the job still run: post-job said nothing of them. It says it cannot tell
/// (WARN, `steps_running=unknown`).
#[test]
fn a_stuck_slurmd_leaves_the_steps_unknown_on_the_post_job_line() {
    let env = Env::new();
    let bin = env.path("stuck-listpids");
    fake_tool(
        &bin,
        "scontrol",
        "#!/bin/sh\n\
         if [ \"$1\" = listpids ]; then sleep 120; fi\n\
         if [ \"$1 $2\" = 'show config' ]; then printf 'ClusterName = alpha\\nKillWait = 30 sec\\n'; exit 0; fi\n\
         echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n",
    );
    let child = env
        .command()
        .env("SLURM_JOB_ID", "88000500")
        .env("SLURM_CLUSTER_NAME", "alpha")
        .env("PATH", path_with(&bin))
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["run", "--", "sleep", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        "the pre-job line",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || env.summary_log().exists(),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = output_within(child, Duration::from_secs(30)).expect("run ended");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines = summary_lines(&env.summary_log());
    let post = lines
        .iter()
        .find(|l| l["event"] == "post-job")
        .unwrap_or_else(|| panic!("{lines:#?}\n{stderr}"));
    assert_eq!(
        post.get("steps_running").map(String::as_str),
        Some("unknown"),
        "{post:?}"
    );
    assert!(
        stderr.contains("cannot tell whether steps of job 88000500 still run on this node"),
        "{stderr}"
    );
}

/// T23 #6: an array task's own job id (`$SLURM_JOB_ID` in the task, the id in
/// slurmstepd's messages) given to `restore --before-job` was taken for a job
/// of its own: the newest point before it started, not its array's pre-job
/// restore point, which holds what was written just before the array.
#[test]
fn restore_before_an_array_tasks_own_job_id_goes_by_its_array() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    fs::create_dir_all(env.path("slrm_logs")).unwrap();
    env.run(&["backup"]).ok();
    work(&env, "after the last backup");
    let before = content_digest(&env.db);
    let template = slurm_dir().join("job_array.sbatch");
    let ids = env.path("ids");
    fs::create_dir(&ids).unwrap();
    let output = job_command(&env, "sbatch")
        .env(
            "DBBACKUP_FINAL_SCRIPT",
            slurm_dir().join("final_backup.sbatch"),
        )
        .args(["--parsable", "--array=0-1", "-o"])
        .arg(env.path("task-%a.out"))
        .arg(&template)
        .args(["sh", "-c"])
        .arg(format!(
            "echo $SLURM_JOB_ID > {}/$SLURM_ARRAY_TASK_ID; python3 -c \"import sqlite3; c = sqlite3.connect('{}', timeout=60); \
             c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (2, 'task')\\\"); \
             c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (-2, 'balance')\\\"); c.commit()\"",
            ids.display(),
            env.db.display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let array = String::from_utf8_lossy(&output.stdout).trim().to_string();
    wait_until(
        "the array's final line",
        Duration::from_secs(180),
        Duration::from_millis(300),
        || {
            env.summary_log().exists()
                && summary_lines(&env.summary_log())
                    .iter()
                    .any(|l| l["event"] == "final")
        },
    );
    // One task keeps the array's id as its own; the other has its own.
    let task_job = ["0", "1"]
        .iter()
        .map(|task| {
            fs::read_to_string(ids.join(task))
                .unwrap()
                .trim()
                .to_string()
        })
        .find(|id| *id != array)
        .expect("a task with its own job id");
    let target = env.path("before.db");
    let run = env.run(&[
        "restore",
        "--before-job",
        &task_job,
        "--target",
        target.to_str().unwrap(),
    ]);
    run.ok();
    assert!(
        run.stdout
            .contains(&format!("(job {array}'s pre-job restore point)")),
        "{}",
        run.stdout
    );
    assert_eq!(content_digest(&target), before);
}

/// T22 F5: a job id given again whose new job ran no pre-job (a plain
/// `sbatch --wrap` writing the database): `restore --before-job` took the
/// earlier job's record, days old, for this job's restore point, exit 0. A
/// record made before SLURM's record of the job begins is not the job's.
#[test]
fn restore_before_a_reused_job_id_without_a_pre_job_ignores_the_earlier_record() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    let output = job_command(&env, "sbatch")
        .args(["--parsable", "--hold", "-o", "/dev/null", "--wrap"])
        .arg(format!(
            "python3 -c \"import sqlite3; c = sqlite3.connect('{}', timeout=60); \
             c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (6, 'new job')\\\"); \
             c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (-6, 'balance')\\\"); c.commit()\"",
            env.db.display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let job = String::from_utf8_lossy(&output.stdout).trim().to_string();
    // The earlier job with this id, two days before (its clock).
    if !have_or_skip("faketime") {
        return;
    }
    let earlier = |args: &[&str]| {
        let mut job_step = env.command();
        job_step
            .env("SLURM_JOB_ID", &job)
            .env("SLURM_CLUSTER_NAME", cluster_name());
        under_faketime(&job_step, "-2d")
            .current_dir(env.root.path())
            .args(args)
            .output()
            .unwrap()
    };
    let pre = earlier(&["pre-job"]);
    assert!(pre.status.success(), "{pre:?}");
    work(&env, "earlier job");
    assert!(earlier(&["post-job", "--status", "0"]).status.success());
    date_earlier_record(&env, &job);
    work(&env, "between the jobs");
    env.run(&["backup"]).ok();
    let before = content_digest(&env.db);
    // SLURM's start times are to the second: the backup is before it.
    std::thread::sleep(Duration::from_millis(1100));
    release(&job);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    assert_ne!(content_digest(&env.db), before, "the job wrote");
    let target = env.path("before.db");
    let run = env.run(&[
        "restore",
        "--before-job",
        &job,
        "--target",
        target.to_str().unwrap(),
    ]);
    run.ok();
    assert!(
        !run.stdout.contains("pre-job restore point"),
        "{}",
        run.stdout
    );
    assert_eq!(content_digest(&target), before, "{}", run.stdout);
}

/// The review of T21 F3: a node clock minutes behind the controller's made
/// the job's own record look older than its submission, and a later task set
/// it aside (a second restore point, a second final job). The record keeps
/// SLURM's `SubmitTime` as pre-job read it; the same submission is the same
/// job, whatever the node's clock said.
#[test]
fn a_node_clock_behind_the_controller_does_not_set_the_jobs_own_record_aside() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    let output = job_command(&env, "sbatch")
        .args(["--parsable", "--hold", "-o", "/dev/null", "--wrap"])
        .arg("\"$DBBACKUP\" pre-job")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let job = String::from_utf8_lossy(&output.stdout).trim().to_string();
    // Its first pre-job, on a node whose clock is 20 minutes behind.
    let first = env
        .command()
        .env("SLURM_JOB_ID", &job)
        .env("SLURM_CLUSTER_NAME", cluster_name())
        .arg("pre-job")
        .output()
        .unwrap();
    assert!(first.status.success(), "{first:?}");
    let point = env.newest_backup();
    let record = prejob_record(&env, &job);
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    assert!(json["submitted"].is_string(), "{json}");
    let behind = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(20);
    json["made"] = serde_json::Value::String(behind.to_string());
    fs::write(&record, json.to_string()).unwrap();
    work(&env, "after the first pre-job");
    release(&job);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    let lines = summary_lines(&env.summary_log());
    let again = lines
        .iter()
        .rfind(|l| l["job"] == job && l["event"] == "pre-job")
        .unwrap();
    assert_eq!(
        again.get("backup").map(String::as_str),
        Some(point.file_name().unwrap().to_str().unwrap()),
        "{again:?}"
    );
}
