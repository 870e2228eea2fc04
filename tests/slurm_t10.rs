//! SLURM trial T10's leftovers: a failed time-limit backup claims no window;
//! an identity SLURM could not confirm is the job's own; `restore --before-job`
//! of a job that has not ended, or that backed up another database.

use std::fs;
use std::process::{Command, Stdio};
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

/// `dbbackup ARGS` as a step of job `job` (SLURM's variables of a plain job).
fn job_step(env: &Env, job: &str, db: &std::path::Path, args: &[&str]) -> Run {
    env.command()
        .env("SLURM_JOB_ID", job)
        .env("SLURM_CLUSTER_NAME", "alpha")
        .env("DBBACKUP_DB_PATH", db)
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(args)
        .output()
        .unwrap()
        .into()
}

fn add_row(db: &std::path::Path, note: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO ledger (amount, note) VALUES (5, '{note}'); \
             INSERT INTO ledger (amount, note) VALUES (-5, 'balance')"
        ))
        .unwrap();
}

/// `restore` with a `scontrol` on PATH that prints `script`'s answer.
fn restore_with_scontrol(env: &Env, script: &str, args: &[&str]) -> Run {
    let bin = env.path("fake-bin");
    fake_tool(&bin, "scontrol", script);
    env.command()
        .env("PATH", path_with(&bin))
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// T10 #16: undoing a job in the middle of it is refused while SLURM reports
/// it running (or pending), while SLURM cannot be asked, and, once SLURM has
/// forgotten it, while dbbackup's own record says it has not ended; nothing is
/// restored. `--force` restores anyway; an ended job is undone as before.
#[test]
fn restore_before_a_job_that_has_not_ended_is_refused() {
    let env = Env::new();
    job_step(&env, "88000020", &env.db, &["pre-job"]).ok();
    let before = content_digest(&env.db);
    add_row(&env.db, "job 88000020");
    let during = content_digest(&env.db);
    let args = ["restore", "--before-job", "88000020"];

    let running = "#!/bin/sh\necho \"JobId=$3 JobName=x JobState=RUNNING ExitCode=0:0\"\n";
    restore_with_scontrol(&env, running, &args).failed_with(
        1,
        "job 88000020 is still running (SLURM: RUNNING): scancel it first, or --force",
    );
    let array = "#!/bin/sh\necho \"JobId=88000021 ArrayJobId=$3 ArrayTaskId=0 JobState=COMPLETED ExitCode=0:0\"\n\
                 echo \"JobId=$3 ArrayJobId=$3 ArrayTaskId=1-3 JobState=PENDING ExitCode=0:0\"\n";
    restore_with_scontrol(&env, array, &args)
        .failed_with(1, "job 88000020 is still running (SLURM: PENDING)");
    // One task of it: its array still writes the database.
    restore_with_scontrol(&env, array, &["restore", "--before-job", "88000020_0"])
        .failed_with(1, "job 88000020 is still running (SLURM: PENDING)");
    let down = "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n";
    restore_with_scontrol(&env, down, &args).failed_with(
        1,
        "cannot ask SLURM whether job 88000020 is still running (slurm_load_jobs error: Unable to contact slurm controller (connect failure)): --force to restore anyway",
    );
    // SLURM does not know the job (the real one, or none on PATH): pre-job ran
    // and nothing recorded its end.
    let forgotten =
        "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n";
    restore_with_scontrol(&env, forgotten, &args)
        .failed_with(1, "job 88000020 has not ended by dbbackup's record");
    // Accounting remembers it: sacct decides.
    let bin = env.path("fake-bin");
    fake_tool(
        &bin,
        "sacct",
        "#!/bin/sh
echo '88000020|RUNNING'
",
    );
    restore_with_scontrol(&env, forgotten, &args)
        .failed_with(1, "job 88000020 is still running (SLURM: RUNNING)");
    fake_tool(
        &bin,
        "sacct",
        "#!/bin/sh
echo '88000020|CANCELLED by 0'
",
    );
    let target = env.path("undone.db");
    let target_arg = target.to_str().unwrap();
    restore_with_scontrol(
        &env,
        forgotten,
        &[&args[..], &["--target", target_arg]].concat(),
    )
    .ok();
    assert_eq!(content_digest(&target), before);
    fs::remove_file(bin.join("sacct")).unwrap();
    assert_eq!(content_digest(&env.db), during, "nothing was restored");

    let forced = restore_with_scontrol(
        &env,
        running,
        &["restore", "--before-job", "88000020", "--force"],
    );
    forced.ok();
    assert_eq!(content_digest(&env.db), before);

    // Its post-job ended it: undone without --force.
    add_row(&env.db, "job 88000020 again");
    job_step(&env, "88000020", &env.db, &["post-job", "--status", "0"]).ok();
    restore_with_scontrol(&env, forgotten, &args).ok();
    assert_eq!(content_digest(&env.db), before);
    let done = "#!/bin/sh\necho \"JobId=$3 JobName=x JobState=COMPLETED ExitCode=0:0\"\n";
    restore_with_scontrol(&env, done, &args).ok();
}

/// T15 #1, #4: the refusal of a restore over the database while a job writes
/// it missed a job whose pre-job made no restore point (the lock not had; a
/// note records it) and a `--target` naming the database itself.
#[test]
fn a_restore_over_the_database_is_refused_under_any_running_job_that_ran_pre_job() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let point = env.backup_files()[0].clone();
    let holder = hold_dir_lock(&env.lock_file(), "host=n9 pid=1 job=9");
    job_step(
        &env,
        "88000060",
        &env.db,
        &["pre-job", "--lock-timeout-seconds", "1"],
    )
    .failed_with(1, "still locked by");
    drop(holder);
    add_row(&env.db, "job 88000060 writes");
    let during = content_digest(&env.db);
    let running = "#!/bin/sh\necho \"JobId=$3 JobName=x JobState=RUNNING ExitCode=0:0\"\n";
    restore_with_scontrol(&env, running, &["restore", &point]).failed_with(
        1,
        "job 88000060 ran pre-job for this database (it made no restore point) and is still running",
    );
    let itself = env.db.to_str().unwrap();
    restore_with_scontrol(&env, running, &["restore", &point, "--target", itself])
        .failed_with(1, "job 88000060 ran pre-job for this database");
    assert_eq!(content_digest(&env.db), during, "nothing was restored");
}

/// T13 #13: `restore --before-job J` also undoes the work of every job
/// after J; it said nothing of them. A note names them (their points stay).
#[test]
fn undoing_a_job_names_the_later_jobs_it_undoes_too() {
    let env = Env::new();
    for job in ["88000050", "88000051"] {
        job_step(&env, job, &env.db, &["pre-job"]).ok();
        add_row(&env.db, job);
        job_step(&env, job, &env.db, &["post-job", "--status", "0"]).ok();
    }
    let target = env.path("undone.db");
    let forgotten =
        "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n";
    let undo = restore_with_scontrol(
        &env,
        forgotten,
        &[
            "restore",
            "--before-job",
            "88000050",
            "--target",
            target.to_str().unwrap(),
        ],
    );
    undo.ok();
    assert!(
        undo.stdout
            .contains("note: this also undoes what came after that point: job 88000051 (newest "),
        "{}",
        undo.stdout
    );
    let last = restore_with_scontrol(
        &env,
        forgotten,
        &[
            "restore",
            "--before-job",
            "88000051",
            "--target",
            target.to_str().unwrap(),
            "--force",
        ],
    );
    last.ok();
    assert!(!last.stdout.contains("also undoes"), "{}", last.stdout);
}

/// A plain restore over the database while a job that backed it up in its
/// pre-job still runs: the job writes on top of the restored state. Refused
/// while SLURM says it runs (nothing restored), a warning when SLURM cannot be
/// asked, `--force` and a copy beside it (`--target`) go on; the job's own
/// script restoring is not refused.
#[test]
fn a_plain_restore_under_a_running_job_of_that_database_is_refused() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let first = content_digest(&env.db);
    add_row(&env.db, "before the job");
    job_step(&env, "88000040", &env.db, &["pre-job"]).ok();
    add_row(&env.db, "job 88000040 writes");
    let during = content_digest(&env.db);
    let oldest = env.backup_files()[0].clone();
    let restore = |script: &str, extra: &[&str]| {
        restore_with_scontrol(
            &env,
            script,
            &[&["restore", oldest.as_str()], extra].concat(),
        )
    };
    let running = "#!/bin/sh\necho \"JobId=$3 JobName=x JobState=RUNNING ExitCode=0:0\"\n";
    restore(running, &[]).failed_with(1, "job 88000040 backed up this database in its pre-job (");
    assert_eq!(content_digest(&env.db), during, "nothing was restored");
    let beside = env.path("beside.db");
    restore(running, &["--target", beside.to_str().unwrap()]).ok();
    assert_eq!(content_digest(&beside), first);
    // The job's own script restores on purpose.
    let bin = env.path("fake-bin");
    let own: Run = env
        .command()
        .env("PATH", path_with(&bin))
        .env("SLURM_JOB_ID", "88000040")
        .env("SLURM_CLUSTER_NAME", "alpha")
        .args(["restore", oldest.as_str()])
        .output()
        .unwrap()
        .into();
    own.ok();
    assert_eq!(content_digest(&env.db), first);
    add_row(&env.db, "job 88000040 writes again");
    let down = "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n";
    let warned = restore(down, &[]);
    warned.ok();
    assert!(
        warned.stderr.contains("SLURM cannot be asked")
            && warned
                .stderr
                .contains("job 88000040 backed up this database"),
        "{}",
        warned.stderr
    );
    assert_eq!(content_digest(&env.db), first);
    add_row(&env.db, "job 88000040 writes a third time");
    restore(running, &["--force"]).ok();
    assert_eq!(content_digest(&env.db), first);
}

/// T10 #8: two databases share one backup directory; undoing a job that
/// backed up only the other one is refused, naming it and the command, while
/// SLURM knows the job or not; `--force` goes by this database's history.
#[test]
fn restore_before_a_job_of_another_database_names_it() {
    let env = Env::new();
    let other = env.path("b.db");
    make_ledger_db(&other, 20, false);
    env.run(&["backup"]).ok();
    job_step(&env, "88000030", &other, &["pre-job"]).ok();
    add_row(&other, "job 88000030");
    job_step(&env, "88000030", &other, &["post-job", "--status", "0"]).ok();
    add_row(&env.db, "later, another job");
    let digest = content_digest(&env.db);
    let run = env.run(&["restore", "--before-job", "88000030"]);
    let canonical = fs::canonicalize(&other).unwrap();
    let db = fs::canonicalize(&env.db).unwrap();
    run.failed_with(
        1,
        &format!(
            "job 88000030 backed up {b}, not {db}: `dbbackup --db-path {b} restore --before-job 88000030`",
            b = canonical.display(),
            db = db.display()
        ),
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert_eq!(content_digest(&env.db), digest, "nothing was restored");
    // The command it names undoes the job on its database.
    let b_before = env
        .command()
        .env("DBBACKUP_DB_PATH", &canonical)
        .args(["restore", "--before-job", "88000030"])
        .output()
        .unwrap();
    assert_eq!(b_before.status.code(), Some(0), "{b_before:?}");
    // --force: this database's own history (SLURM does not know this job's start).
    env.run(&["restore", "--before-job", "88000030", "--force"])
        .failed_with(1, "no pre-job restore point of job 88000030");
    assert_eq!(content_digest(&env.db), digest);
}

/// Task `task` of a two-task array `array` as SLURM runs it, as job `own`.
fn task_step(env: &Env, own: &str, array: &str, task: u32, path: Option<&str>) -> Command {
    let mut command = env.command();
    command
        .env("SLURM_ARRAY_JOB_ID", array)
        .env("SLURM_ARRAY_TASK_ID", task.to_string())
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .env("SLURM_ARRAY_TASK_MIN", "0")
        .env("SLURM_ARRAY_TASK_MAX", "1")
        .env("SLURM_ARRAY_TASK_STEP", "1")
        .env("SLURM_JOB_ID", own)
        .env("SLURM_CLUSTER_NAME", "alpha")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command
}

/// T10 #17: a job submitted from inside task 0 inherits its array variables;
/// when `scontrol` fails outright (not a timeout) the claim cannot be checked:
/// a warning says so, and the job goes as its own job, so it never counts as
/// the array's task 0 (the array's "last task" backup waits for the real one).
#[test]
fn an_identity_slurm_could_not_confirm_is_the_jobs_own() {
    let env = Env::new();
    let bin = env.path("down-bin");
    fake_tool(
        &bin,
        "scontrol",
        "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n",
    );
    let down = path_with(&bin);
    let run = |command: &mut Command, args: &[&str]| -> Run {
        command.args(args).output().unwrap().into()
    };
    run(
        &mut task_step(&env, "88000041", "88000040", 1, None),
        &["pre-job"],
    )
    .ok();
    // The inner job: task 0's variables, its own SLURM_JOB_ID.
    let inner = |args: &[&str]| {
        run(
            &mut task_step(&env, "88000043", "88000040", 0, Some(&down)),
            args,
        )
    };
    let pre = inner(&["pre-job"]);
    pre.ok();
    assert!(
        pre.stderr.contains(
            "cannot ask SLURM whether job 88000043 is task 88000040_0 \
             (slurm_load_jobs error: Unable to contact slurm controller (connect failure)); \
             going as its own job 88000043, not as a task of array 88000040"
        ),
        "{}",
        pre.stderr
    );
    add_row(&env.db, "inner job");
    inner(&["post-job", "--status", "0"]).ok();
    add_row(&env.db, "task 1");
    run(
        &mut task_step(&env, "88000041", "88000040", 1, None),
        &["post-job", "--status", "0"],
    )
    .ok();

    let lines = summary_lines(&env.summary_log());
    let inner_lines: Vec<_> = lines.iter().filter(|l| l["job"] == "88000043").collect();
    assert_eq!(inner_lines.len(), 2, "{lines:#?}");
    assert_eq!(inner_lines[1]["event"], "post-job");
    assert_eq!(inner_lines[1]["trigger"], "job finished", "{lines:#?}");
    let task1 = lines
        .iter()
        .rfind(|l| l["job"] == "88000040_1" && l["event"] == "post-job")
        .unwrap();
    assert_eq!(task1["status"], "skipped", "{task1:?}");
    assert!(
        task1["reason"].contains("1 of 2 array tasks finished"),
        "{task1:?}"
    );
}

/// T10 #17, a stuck controller: the identity question times out (bounded),
/// says so, and the job goes as its own job, not as the claimed task.
#[test]
fn an_identity_question_that_times_out_leaves_the_job_its_own() {
    let env = Env::new();
    let bin = env.path("stuck-bin");
    fake_tool(&bin, "scontrol", "#!/bin/sh\nsleep 120\n");
    let pre: Run = task_step(&env, "88000053", "88000050", 0, Some(&path_with(&bin)))
        .arg("pre-job")
        .output()
        .unwrap()
        .into();
    pre.ok();
    assert!(
        pre.stderr.contains("cannot ask SLURM whether job 88000053 is task 88000050_0 (scontrol did not answer within"),
        "{}",
        pre.stderr
    );
    let lines = summary_lines(&env.summary_log());
    assert_eq!(lines[0]["job"], "88000053", "{lines:#?}");
    assert_eq!(lines[0]["status"], "ok", "{lines:#?}");
}

/// T10 #16 on the local cluster: an array whose tasks SLURM still runs (or
/// holds pending) is not undone; once it left the queue it is.
#[test]
fn restore_before_a_running_array_on_the_cluster_is_refused() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    env.run(&["backup"]).ok();
    // SLURM's start times are to the second: the point is before it.
    wait_for_the_next_second();
    let digest = content_digest(&env.db);
    let stop = env.path("stop");
    let output = job_command(&env, "sbatch")
        .args(["--parsable", "--array=0-1", "-o", "/dev/null", "--wrap"])
        .arg(format!(
            "while [ ! -e '{}' ]; do sleep 0.2; done",
            stop.display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let array = String::from_utf8_lossy(&output.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let run = env.run(&["restore", "--before-job", &array]);
    fs::write(&stop, "").unwrap();
    run.failed_with(1, &format!("job {array} is still running (SLURM: "));
    assert!(
        run.stderr.contains("): scancel it first, or --force"),
        "{}",
        run.stderr
    );
    assert_eq!(content_digest(&env.db), digest, "nothing was restored");
    wait_until_jobs_leave_the_queue(&[&array], Duration::from_secs(120));
    // Ended by SLURM's record: undone (the newest point before it started).
    env.run(&["restore", "--before-job", &array]).ok();
}

/// T13 #17: a mirror copy that failed was `status=ok` in pre-job (its restore
/// point was there) but `status=failed` in post-job, and failed a `--strict`
/// job only at its end. One rule now: a restore point not in every mirror is a
/// failed backup in both; under `--strict` the work does not start.
#[test]
fn a_failed_mirror_copy_fails_pre_job_as_it_fails_post_job() {
    let env = Env::new();
    let not_a_dir = env.path("mirror-is-a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let mirror = not_a_dir.to_str().unwrap();
    let marker = env.path("work-ran");
    let work = format!("touch {}", marker.display());
    let strict = job_step(
        &env,
        "6100",
        &env.db,
        &[
            "--mirror-dir",
            mirror,
            "run",
            "--strict",
            "--",
            "sh",
            "-c",
            &work,
        ],
    );
    strict.failed_with(
        1,
        "--strict: the work does not start: its restore point was not copied to every mirror",
    );
    assert!(!marker.exists());
    let pre = lines_of(&env, "6100", "pre-job");
    assert_eq!(pre[0]["status"], "failed", "{pre:#?}");
    assert!(pre[0]["mirror"].contains("mirror-is-a-file"), "{pre:#?}");
    // Without --strict the work runs; both hooks say the mirror failed.
    job_step(
        &env,
        "6101",
        &env.db,
        &["--mirror-dir", mirror, "run", "--", "sh", "-c", &work],
    )
    .ok();
    assert!(marker.exists());
    for event in ["pre-job", "post-job"] {
        let lines = lines_of(&env, "6101", event);
        assert_eq!(lines[0]["status"], "failed", "{event}: {lines:#?}");
    }
}

/// T19 #5: `srun -n 8 dbbackup run -- CMD` runs one `run` per task: the
/// first task to end marked the job ended, and the post-job backups of the
/// others then pushed out its pre-job restore point while the job still ran
/// (`restore --before-job` impossible, `check` healthy). T20 F2: nor may the
/// end of a step end the job (the script may run another). A step's task
/// never marks the job ended: its pin lasts until it expires.
#[test]
fn a_task_of_a_multi_task_step_does_not_end_the_job() {
    let env = Env::new();
    let task = |step: &str, id: &str| {
        let run: Run = env
            .command()
            .env("SLURM_JOB_ID", "6200")
            .env("SLURM_STEP_ID", step)
            .env("SLURM_STEP_NUM_TASKS", "2")
            .env("SLURM_PROCID", id)
            .env("DBBACKUP_MAX_BACKUPS", "1")
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(["run", "--", "sh", "-c"])
            .arg(format!(
                "sqlite3 {} \"INSERT INTO ledger (amount, note) VALUES (1, 'step {step} task {id}')\"",
                env.db.display()
            ))
            .output()
            .unwrap()
            .into();
        run.ok();
    };
    let before = content_digest(&env.db);
    // Two steps of two tasks each, one after the other.
    for (step, id) in [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")] {
        task(step, id);
    }
    let out = env.path("before-job.db");
    let target = out.to_str().unwrap();
    env.run(&[
        "restore",
        "--before-job",
        "6200",
        "--target",
        target,
        "--force",
    ])
    .ok();
    assert_eq!(content_digest(&out), before);
    let post = lines_of(&env, "6200", "post-job");
    assert!(
        post[3]["trigger"].contains("task 1 of 2 of step 1 finished"),
        "{post:#?}"
    );
}

/// T19 #6: a new project's first job creates its database: pre-job failed
/// ("database does not exist"), an ERROR in every first job's log, and under
/// `--strict` the work never ran, so the database could never be made. A
/// database that does not exist and has no backups is nothing to protect.
#[test]
fn a_first_job_that_creates_the_database_runs_under_strict() {
    let env = Env::empty();
    let create = format!(
        "sqlite3 {} 'CREATE TABLE t(x); INSERT INTO t VALUES (1)'",
        env.db.display()
    );
    let run = job_step(
        &env,
        "6300",
        &env.db,
        &["run", "--strict", "--", "sh", "-c", &create],
    );
    run.ok();
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
    assert_eq!(lines_of(&env, "6300", "pre-job")[0]["status"], "skipped");
    assert_eq!(lines_of(&env, "6300", "post-job")[0]["status"], "ok");
    // A lost database (it has backups) still fails pre-job: the work would
    // start from nothing.
    std::fs::remove_file(&env.db).unwrap();
    job_step(&env, "6301", &env.db, &["run", "--strict", "--", "true"])
        .failed_with(1, "does not exist");
}

/// T20 F4: under `--strict` with a failing mirror, only the task that made
/// the restore point refused; the job's other tasks found it made by another
/// task and ran their work, exit 0. Each task's pre-job names the mirrors
/// that lack the job's restore point.
#[test]
fn every_task_of_a_strict_job_refuses_a_restore_point_missing_from_a_mirror() {
    let env = Env::new();
    let not_a_dir = env.path("mirror-is-a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let marker = env.path("work-ran");
    let work = format!("touch {}", marker.display());
    for task in ["0", "1"] {
        let run: Run = env
            .command()
            .env("SLURM_JOB_ID", "6400")
            .env("SLURM_STEP_ID", "0")
            .env("SLURM_STEP_NUM_TASKS", "2")
            .env("SLURM_PROCID", task)
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(["--mirror-dir", not_a_dir.to_str().unwrap()])
            .args(["run", "--strict", "--", "sh", "-c", &work])
            .output()
            .unwrap()
            .into();
        run.failed_with(1, "not copied to every mirror");
        assert!(!marker.exists(), "task {task}'s work ran");
    }
    let pre = lines_of(&env, "6400", "pre-job");
    assert!(pre.iter().all(|l| l["status"] == "failed"), "{pre:#?}");
}

/// T19 #16: restoring through a mirror (`--backup-dir MIRROR`, the way back
/// when the backup directory is lost) skipped the running-job guard: the jobs'
/// records are in the backup directory the configuration names, which a
/// mirror's copies do not carry. With that directory gone, a warning says the
/// check could not be made.
#[test]
fn restore_through_a_mirror_under_a_running_job_is_refused() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    let mirror = env.path("mirror");
    env.configure_with_mirror(&mirror);
    let stop = env.path("stop");
    let mut sbatch = Command::new("sbatch");
    without_inherited_settings(&mut sbatch);
    let output = sbatch
        .current_dir(env.root.path())
        .env("DBBACKUP", BIN)
        .args(["--parsable", "-o", "/dev/null", "--wrap"])
        .arg(format!(
            "\"$DBBACKUP\" pre-job && while [ ! -e '{}' ]; do sleep 0.2; done",
            stop.display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let job = String::from_utf8_lossy(&output.stdout).trim().to_string();
    wait_until(
        "the job's pre-job line",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || env.summary_log().exists(),
    );
    let digest = content_digest(&env.db);
    let mirror_arg = mirror.to_str().unwrap();
    let run = bare(
        env.root.path(),
        &["--backup-dir", mirror_arg, "restore", "latest"],
    );
    fs::write(&stop, "").unwrap();
    run.failed_with(
        1,
        &format!("job {job} backed up this database in its pre-job"),
    );
    assert_eq!(content_digest(&env.db), digest, "nothing was restored");
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));

    // The backup directory lost: the mirror is all there is, and says so.
    fs::rename(&env.backups, env.path("lost")).unwrap();
    let run = bare(
        env.root.path(),
        &["--backup-dir", mirror_arg, "restore", "latest"],
    );
    run.ok();
    assert!(
        run.stderr
            .contains("holds no records of jobs (a mirror's copies carry none): cannot tell whether a SLURM job still writes"),
        "{}",
        run.stderr
    );
}
