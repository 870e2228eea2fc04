//! Arrays without a cluster: many real processes with array-task variables, and
//! `sbatch` / `scontrol` / `sacct` replaced on PATH by scripts that record what
//! they were asked and answer as SLURM does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

/// A directory of fake SLURM tools; `sbatch` records its arguments and answers 777.
fn fake_slurm(env: &Env, scontrol_output: &str) -> PathBuf {
    let bin = env.path("fake-bin");
    let tools = [
        (
            "sbatch",
            format!(
                "#!/bin/sh\necho \"$@\" >> '{}'\necho 777\n",
                env.path("sbatch.log").display()
            ),
        ),
        (
            "scontrol",
            format!("#!/bin/sh\ncat <<'EOF'\n{scontrol_output}EOF\n"),
        ),
        // Accounting disabled, as on the local test cluster.
        (
            "sacct",
            "#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n".into(),
        ),
    ];
    for (name, text) in tools {
        fake_tool(&bin, name, &text);
    }
    bin
}

fn with_path(command: &mut Command, bin: &Path) {
    command.env("PATH", path_with(bin));
}

/// `count` tasks of `array` at once, running `args`, with the fake tools on PATH.
fn tasks(env: &Env, bin: &Path, array: &str, ids: &[u32], count: u32, args: &[&str]) -> Vec<Run> {
    tasks_with(env, bin, array, ids, count, args, &[])
}

/// `tasks` with extra environment variables.
fn tasks_with(
    env: &Env,
    bin: &Path,
    array: &str,
    ids: &[u32],
    count: u32,
    args: &[&str],
    vars: &[(&str, &str)],
) -> Vec<Run> {
    let children: Vec<_> = ids
        .iter()
        .map(|task| {
            let mut command = env.command();
            with_path(&mut command, bin);
            command.envs(vars.iter().copied());
            command
                .env("SLURM_ARRAY_JOB_ID", array)
                .env("SLURM_ARRAY_TASK_ID", task.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
                .env("SLURM_JOB_ID", format!("{array}{task:03}"))
                .env("SLURM_CLUSTER_NAME", "alpha")
                .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().into())
        .collect()
}

fn work(env: &Env) {
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (5, 'work'); \
             INSERT INTO ledger (amount, note) VALUES (-5, 'balance'); UPDATE counter SET n = n + 2",
        )
        .unwrap();
}

/// The scenario: `--array=0-3`, task 3 cancelled while pending. Tasks
/// 0-2 finish, nobody is "last", yet the work ends in a backup: the final job
/// (submitted once, by pre-job) makes it and logs every task's end.
#[test]
fn a_task_cancelled_while_pending_still_ends_in_a_final_backup() {
    let env = Env::new();
    let scontrol = "JobId=9101 ArrayJobId=9100 ArrayTaskId=0 JobState=COMPLETED Reason=None ExitCode=0:0\n\
                    JobId=9102 ArrayJobId=9100 ArrayTaskId=1 JobState=COMPLETED Reason=None ExitCode=0:0\n\
                    JobId=9103 ArrayJobId=9100 ArrayTaskId=2 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0\n\
                    JobId=9100 ArrayJobId=9100 ArrayTaskId=3 JobState=CANCELLED Reason=None ExitCode=0:0\n";
    let bin = fake_slurm(&env, scontrol);
    let final_script = env.path("final_backup.sbatch");
    let pre = tasks(
        &env,
        &bin,
        "9100",
        &[0, 1, 2],
        4,
        &["pre-job", "--final-job", final_script.to_str().unwrap()],
    );
    for run in &pre {
        run.ok();
    }
    let submitted = fs::read_to_string(env.path("sbatch.log")).unwrap();
    assert_eq!(
        submitted,
        format!(
            "--parsable --dependency=afterany:9100 {} 9100\n",
            final_script.display()
        ),
        "submitted once per array"
    );
    work(&env);
    for (task, status) in [(0, "0"), (1, "0"), (2, "3")] {
        tasks(
            &env,
            &bin,
            "9100",
            &[task],
            4,
            &["post-job", "--status", status],
        )[0]
        .ok();
    }
    let before_final = env.backup_files();
    assert_eq!(before_final.len(), 1, "no task was last: {before_final:?}");

    let mut command = env.command();
    with_path(&mut command, &bin);
    let done: Run = command
        .env("SLURM_JOB_ID", "777")
        .env("SLURM_CLUSTER_NAME", "alpha")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["final", "9100"])
        .output()
        .unwrap()
        .into();
    done.ok();
    let listed = listed(&env);
    let finals: Vec<_> = listed.values().filter(|r| r["kind"] == "final").collect();
    assert_eq!(finals.len(), 1, "{listed:#?}");
    assert_eq!(finals[0]["job"], "9100", "tagged with the array");
    let copy = gunzip_to(
        &env.backups.join(finals[0]["name"].as_str().unwrap()),
        &env.path("final.db"),
    );
    assert_eq!(
        content_digest(&copy),
        content_digest(&env.db),
        "it holds the work"
    );
    let lines = summary_lines(&env.summary_log());
    let line = lines.iter().find(|l| l["event"] == "final").unwrap();
    assert_eq!(line["job"], "777");
    assert_eq!(line["array"], "9100");
    assert_eq!(line["status"], "ok");
    assert_eq!(line["states_from"], "scontrol");
    assert_eq!(line["state_completed"], "0-1");
    assert_eq!(line["state_failed"], "2");
    assert_eq!(line["state_cancelled"], "3");
    assert_eq!(line["post_job"], "0-2");
    assert_eq!(line["no_post_job"], "3");
    assert_eq!(line["nonzero_exit"], "2");
    assert!(!line.contains_key("warning"), "{line:?}");
    // Unchanged since: a second run reuses it rather than copying it again.
    let again: Run = {
        let mut command = env.command();
        with_path(&mut command, &bin);
        command.args(["final", "9100"]).output().unwrap().into()
    };
    again.ok();
    assert_eq!(env.backup_files().len(), 2);
    env.run(&["final", "9100; rm -rf /"])
        .failed_with(2, "not an array job id");
}

/// A task ended by SLURM's TERM (time limit, preemption) may be requeued: it is
/// not counted as finished, so no other task declares itself last while it is
/// pending again; when it runs again and finishes, it counts once.
#[test]
fn requeued_tasks_count_once_and_are_not_given_up_on() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    tasks(&env, &bin, "9200", &[0], 2, &["pre-job"])[0].ok();
    work(&env);
    let preempted = tasks(
        &env,
        &bin,
        "9200",
        &[0],
        2,
        &["post-job", "--status", "143", "--after-term"],
    );
    preempted[0].ok();
    // No final job was asked for at pre-job (DBBACKUP_FINAL=0): none is promised
    // (T21 F5).
    let said = &summary_lines(&env.summary_log())[1]["reason"];
    assert!(
        said.contains("no final job is recorded for this array (DBBACKUP_FINAL=0)")
            && !said.contains("the array's final job backs up"),
        "{said}"
    );
    tasks(&env, &bin, "9200", &[1], 2, &["post-job", "--status", "0"])[0].ok();
    // Task 1 is not "last" (task 0 may be requeued): the array is not ended.
    // With no final job for the array, it backs up all the same: nothing else
    // would, were task 0 not requeued (T22 F2).
    assert_eq!(env.backup_files().len(), 2);
    let line = summary_lines(&env.summary_log()).pop().unwrap();
    assert_eq!(
        line["trigger"],
        "the last of the array's 2 tasks to end (1 finished, 1 ended by SLURM's TERM) and no final job backs up this array",
        "{line:?}"
    );
    let state = env.backups.join(".dbbackup-state");
    assert!(
        !fs::read_dir(&state)
            .unwrap()
            .flatten()
            .any(|f| f.file_name().to_string_lossy().starts_with("ended-")),
        "the array was marked ended while task 0 may be requeued"
    );
    // Task 0 runs again (SLURM_RESTART_COUNT=1) and finishes: now it is last.
    let mut command = env.command();
    let rerun: Run = command
        .env("SLURM_ARRAY_JOB_ID", "9200")
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .env("SLURM_CLUSTER_NAME", "alpha")
        .env("SLURM_RESTART_COUNT", "1")
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["post-job", "--status", "0"])
        .output()
        .unwrap()
        .into();
    rerun.ok();
    // Unchanged since task 1's backup: nothing new to write.
    assert_eq!(env.backup_files().len(), 2);
    let lines = summary_lines(&env.summary_log());
    let last = lines.last().unwrap();
    assert!(last["trigger"].starts_with("last task (2 of 2"), "{last:?}");
    assert_eq!(last["restarts"], "1");
}

/// Restore points exist when reported, stay while their array runs, and the
/// same job id from another cluster gets its own state.
#[test]
fn restore_points_of_running_arrays_are_kept_and_exist_when_reported() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    let mirror = env.path("mirror");
    let mirror_arg = mirror.to_str().unwrap();
    let pre = tasks(
        &env,
        &bin,
        "9300",
        &[0],
        8,
        &["pre-job", "--mirror-dir", mirror_arg],
    );
    pre[0].ok();
    let restore_point = env.backup_files()[0].clone();
    // A busy directory: many backups, max_backups 2. The running array's restore
    // point survives them all, in the mirror too.
    for _ in 0..4 {
        work(&env);
        env.run(&["backup", "--max-backups", "2", "--mirror-dir", mirror_arg])
            .ok();
    }
    let files = env.backup_files();
    assert!(files.contains(&restore_point), "{files:?}");
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(mirror.join(&restore_point).exists(), "kept in the mirror");
    // Gone by hand: the next task does not report it, it makes another.
    fs::remove_file(env.backups.join(&restore_point)).unwrap();
    let next = tasks(&env, &bin, "9300", &[1], 8, &["pre-job"]);
    next[0].ok();
    assert!(
        !next[0].stdout.contains(&restore_point),
        "{}",
        next[0].stdout
    );
    let remade = env.newest_backup();
    assert!(remade.exists());
    // The same id on another cluster sharing the filesystem: its own state.
    work(&env);
    let mut command = env.command();
    let other: Run = command
        .env("SLURM_ARRAY_JOB_ID", "9300")
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_CLUSTER_NAME", "beta")
        .args(["pre-job"])
        .output()
        .unwrap()
        .into();
    other.ok();
    assert!(other.stdout.contains("created"), "{}", other.stdout);
    // The array ends (its final job): the restore point is no longer protected.
    let mut command = env.command();
    with_path(&mut command, &bin);
    let done: Run = command
        .env("SLURM_CLUSTER_NAME", "alpha")
        .args(["final", "9300"])
        .output()
        .unwrap()
        .into();
    done.ok();
    let beta_point = env.backup_files().last().unwrap().clone();
    env.run(&["prune", "--max-backups", "1"]).ok();
    assert_eq!(
        env.backup_files(),
        vec![beta_point],
        "alpha's ended, beta's array still runs"
    );
}

/// A snapshot that fails its check is attempted once per array: the other tasks
/// report it (exit 1) instead of each making another `.failed` file.
#[test]
fn a_failed_pre_job_snapshot_is_attempted_once_per_array() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    crate::backup::corrupt_index(&env.db);
    let first = tasks(&env, &bin, "9400", &[0], 20, &["pre-job"]);
    assert_eq!(first[0].code, 1, "{}", first[0].stderr);
    let rest = tasks(
        &env,
        &bin,
        "9400",
        &(1..20).collect::<Vec<_>>(),
        20,
        &["pre-job"],
    );
    for run in &rest {
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("do not retry"), "{}", run.stderr);
    }
    let failed: Vec<_> = env
        .backup_files()
        .into_iter()
        .filter(|f| f.contains(".failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
}

/// `lock status` names the holder and, on this host, whether it is alive.
#[test]
fn lock_status_names_the_holder_and_whether_it_lives() {
    let env = Env::new();
    // Not "free": a wrong path or a missing mount must not look like a free lock.
    env.run(&["lock", "status"])
        .failed_with(1, "no backup directory");
    fs::create_dir_all(&env.backups).unwrap();
    let free = env.run(&["lock", "status"]);
    free.ok();
    assert!(
        free.stdout.contains(": free (no lock file yet"),
        "{}",
        free.stdout
    );
    // A lock file that cannot be opened is an error, not "free".
    std::os::unix::fs::symlink("/etc/hostname", env.lock_file()).unwrap();
    env.run(&["lock", "status"])
        .failed_with(1, "cannot open lock file");
    fs::remove_file(env.lock_file()).unwrap();
    env.run(&["backup"]).ok();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    // A holder that died on this host without releasing (SIGKILL leaves its line).
    fs::write(
        env.lock_file(),
        format!("host={host} pid=999999 job=31337 since=2026-01-01T00:00:00Z\n"),
    )
    .unwrap();
    let dead = env.run(&["lock", "status", "--format", "json"]);
    dead.ok();
    let json = dead.json();
    assert_eq!(json["lock"]["held"], false);
    assert_eq!(json["lock"]["job"], "31337");
    assert_eq!(json["lock"]["alive"], false);
    // Held now by a live process on this host.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import fcntl, os, sys, time\n\
                 f = open('{}', 'r+')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX)\n\
                 f.truncate(0); f.write('host={host} pid=%d job=4242 since=2026-01-01T00:00:00Z\\n' % os.getpid()); f.flush()\n\
                 print('locked', flush=True)\n\
                 time.sleep(30)\n",
                env.lock_file().display()
            ),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let held = env.run(&["lock", "status"]);
    let _ = holder.kill();
    let _ = holder.wait();
    held.ok();
    assert!(
        held.stdout.contains("held by host=") && held.stdout.contains("job=4242"),
        "{}",
        held.stdout
    );
    assert!(
        held.stdout.contains("alive on this host"),
        "{}",
        held.stdout
    );
}

/// Every task's pre-job fails (the database is locked past busy_timeout): the
/// final job is still submitted, exactly once, so the work ends in a backup; the
/// submitting task's summary line names it.
#[test]
fn the_final_job_is_submitted_even_when_no_restore_point_can_be_made() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    let final_script = env.path("final_backup.sbatch");
    let holder = hold_exclusive(&env.db);
    let pre = tasks_with(
        &env,
        &bin,
        "9500",
        &[0, 1, 2],
        3,
        &["pre-job", "--final-job", final_script.to_str().unwrap()],
        &[("DBBACKUP_BUSY_TIMEOUT_SECONDS", "1")],
    );
    drop(holder);
    for run in &pre {
        assert_ne!(run.code, 0, "the database was locked: {}", run.stdout);
    }
    let submitted = fs::read_to_string(env.path("sbatch.log")).unwrap_or_default();
    assert_eq!(
        submitted,
        format!(
            "--parsable --dependency=afterany:9500 {} 9500\n",
            final_script.display()
        ),
        "submitted once per array"
    );
    let lines = summary_lines(&env.summary_log());
    let pre_lines: Vec<_> = lines.iter().filter(|l| l["event"] == "pre-job").collect();
    assert_eq!(pre_lines.len(), 3, "{lines:#?}");
    assert!(pre_lines.iter().all(|l| l["status"] == "failed"));
    let named: Vec<_> = pre_lines.iter().filter_map(|l| l.get("final")).collect();
    assert_eq!(named, vec!["777"], "{pre_lines:#?}");
}

/// The final job is submitted with the array's account, partition and QOS:
/// sites that enforce accounts reject it otherwise.
#[test]
fn the_final_job_gets_the_arrays_account_partition_and_qos() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    let final_script = env.path("final_backup.sbatch");
    tasks_with(
        &env,
        &bin,
        "9600",
        &[0],
        2,
        &["pre-job", "--final-job", final_script.to_str().unwrap()],
        &[
            ("SLURM_JOB_ACCOUNT", "proj42"),
            ("SLURM_JOB_PARTITION", "short"),
            ("SLURM_JOB_QOS", "normal"),
        ],
    )[0]
    .ok();
    let submitted = fs::read_to_string(env.path("sbatch.log")).unwrap();
    assert_eq!(
        submitted,
        format!(
            "--parsable --account=proj42 --partition=short --qos=normal \
             --dependency=afterany:9600 {} 9600\n",
            final_script.display()
        )
    );
    let lines = summary_lines(&env.summary_log());
    let line = lines.iter().find(|l| l["event"] == "pre-job").unwrap();
    assert_eq!(line["status"], "ok");
    assert_eq!(line["final"], "777");
}

/// sbatch refuses the final job: the submitting task's pre-job line says why
/// and is `failed` (the array is not protected), and it exits non-zero.
#[test]
fn a_refused_final_job_fails_the_submitting_pre_job_visibly() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    let sbatch = bin.join("sbatch");
    fs::write(
        &sbatch,
        "#!/bin/sh\necho 'sbatch: error: Invalid account or account/partition combination specified' >&2\nexit 1\n",
    )
    .unwrap();
    let final_script = env.path("final_backup.sbatch");
    let first = tasks(
        &env,
        &bin,
        "9700",
        &[0],
        2,
        &["pre-job", "--final-job", final_script.to_str().unwrap()],
    );
    assert_eq!(first[0].code, 1, "{}", first[0].stderr);
    assert!(
        first[0].stderr.contains("Invalid account"),
        "{}",
        first[0].stderr
    );
    let lines = summary_lines(&env.summary_log());
    let line = lines.iter().find(|l| l["event"] == "pre-job").unwrap();
    assert_eq!(line["status"], "failed", "{line:?}");
    assert!(
        line["final"].starts_with("not submitted: sbatch: error: Invalid account"),
        "{line:?}"
    );
    assert!(
        line.contains_key("backup"),
        "the restore point exists: {line:?}"
    );
}

/// T5 #15: `run` in an array task whose final job sbatch refuses: the restore
/// point is made, so the job log says the final job is missing, not that the
/// work starts without a restore point; `--strict` says why the work did not start.
#[test]
fn run_with_a_refused_final_job_says_the_final_job_is_missing_not_the_restore_point() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    fake_tool(
        &bin,
        "sbatch",
        "#!/bin/sh\necho 'sbatch: error: Invalid account' >&2\nexit 1\n",
    );
    let final_script = env.path("final_backup.sbatch");
    let script = final_script.to_str().unwrap();
    let run = &tasks(
        &env,
        &bin,
        "9710",
        &[0],
        2,
        &["run", "--final-job", script, "--", "true"],
    )[0];
    assert_eq!(run.code, 0, "the work's status: {}", run.stderr);
    assert!(
        run.stderr.contains(
            "pre-job failed: the array's final job was not submitted (the restore point is there)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("without a new restore point"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("see its summary line"),
        "{}",
        run.stderr
    );
    let strict = &tasks(
        &env,
        &bin,
        "9711",
        &[0],
        2,
        &["run", "--strict", "--final-job", script, "--", "true"],
    )[0];
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(
        strict
            .stderr
            .contains("--strict: the work does not start: the array's final job was not submitted"),
        "{}",
        strict.stderr
    );
    assert!(
        !strict.stderr.contains("without its restore point"),
        "{}",
        strict.stderr
    );
}

/// `final` for an array nobody knows (a mistyped id): refused, saying that
/// neither the scheduler nor pre-job knew it; `--force` backs up anyway.
#[test]
fn final_for_an_unknown_array_says_so() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    let mut command = env.command();
    with_path(&mut command, &bin);
    let run: Run = command
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["final", "99999"])
        .output()
        .unwrap()
        .into();
    // A typo: refused, once, and nothing planted under a job that never
    // existed (T19 #2).
    let refusal = "knows nothing of array 99999";
    run.failed_with(1, refusal);
    assert_eq!(run.stderr.matches(refusal).count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("Nothing was backed up"),
        "{}",
        run.stderr
    );
    assert!(env.backup_files().is_empty());
    // `--force`: backed up, with the warning; nothing to mark ended, so not
    // recorded, not claimed (T13 #12).
    let mut command = env.command();
    with_path(&mut command, &bin);
    let json: Run = command
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
        .args(["final", "99999", "--force", "--format", "json"])
        .output()
        .unwrap()
        .into();
    json.ok();
    assert_eq!(env.backup_files().len(), 1, "--force backs up");
    assert_eq!(json.json()["marked_ended"], false, "{}", json.stdout);
    let marked: Vec<_> = std::fs::read_dir(env.backups.join(".dbbackup-state"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !marked
            .iter()
            .any(|n| n.to_string_lossy().starts_with("ended-")),
        "{marked:?}"
    );
}

/// A requeued single job's second pre-job finds its first run's restore point:
/// it says so, rather than naming "another task" of a job that has none.
#[test]
fn a_requeued_single_jobs_pre_job_names_its_earlier_run() {
    let env = Env::new();
    let log = env.summary_log();
    for restarts in ["0", "1"] {
        let run: Run = env
            .command()
            .env("SLURM_JOB_ID", "9800")
            .env("SLURM_RESTART_COUNT", restarts)
            .env("DBBACKUP_SUMMARY_LOG", &log)
            .arg("pre-job")
            .output()
            .unwrap()
            .into();
        run.ok();
    }
    let lines = summary_lines(&log);
    let pre: Vec<_> = lines.iter().filter(|l| l["event"] == "pre-job").collect();
    assert_eq!(pre.len(), 2, "{lines:#?}");
    assert_eq!(pre[1]["status"], "skipped");
    assert_eq!(
        pre[1]["reason"], "made by an earlier run of this job (requeued)",
        "{:?}",
        pre[1]
    );
    assert_eq!(pre[1]["restarts"], "1");
}

/// A holder that recorded nothing (another tool, or its line lost) is still
/// named by `lock status`, by the pid the kernel gives, as `backup` names it.
#[test]
fn lock_status_names_a_holder_that_recorded_nothing_by_its_pid() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let mut holder = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import fcntl, os, sys, time\n\
                 f = open('{}', 'r+')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX)\n\
                 f.truncate(0); f.flush()\n\
                 print('locked', flush=True)\n\
                 time.sleep(30)\n",
                env.backups.join(".dbbackup.lock").display()
            ),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let json = env.run(&["lock", "status", "--format", "json"]);
    let text = env.run(&["lock", "status"]);
    let backup = env.run(&["--lock-timeout-seconds", "0", "backup", "--force"]);
    let pid = holder.id();
    let _ = holder.kill();
    let _ = holder.wait();
    json.ok();
    let lock = &json.json()["lock"];
    assert_eq!(lock["held"], true);
    assert_eq!(lock["pid"], pid, "{lock}");
    assert_eq!(lock["alive"], true, "{lock}");
    text.ok();
    assert!(
        text.stdout
            .contains(&format!("held by pid {pid} on this host")),
        "{}",
        text.stdout
    );
    backup.failed_with(1, &format!("still locked by pid {pid}"));
}

/// Fake `scontrol` (and `sacct`, accounting disabled): `show config` names the
/// cluster `alpha`; `show job` answers from the returned file, or fails as a
/// controller that cannot be reached while it does not exist.
fn scheduler_answering_from(env: &Env) -> (PathBuf, PathBuf) {
    let bin = env.path("fake-bin");
    let jobs = env.path("jobs");
    fake_tool(
        &bin,
        "scontrol",
        &format!(
            "#!/bin/sh\nif [ \"$2\" = config ]; then printf 'ClusterName = alpha\\nKillWait = 5 sec\\n'; exit 0; fi\n\
             [ -f '{0}' ] || {{ echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1; }}\ncat '{0}'\n",
            jobs.display()
        ),
    );
    fake_tool(
        &bin,
        "sacct",
        "#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n",
    );
    (bin, jobs)
}

/// T10 #5: a plain job whose post-job ran after SLURM's TERM may be requeued,
/// so its pre-job restore point is kept beyond `max_backups`; `prune` (dry run
/// or not) and retention say which and why. Once the scheduler says the job
/// ended for good, the pin goes; while it cannot be asked, or says the job is
/// pending again, it stays.
#[test]
fn a_termed_jobs_restore_point_is_kept_with_a_reason_until_the_scheduler_says_it_ended() {
    let env = Env::new();
    let (bin, jobs) = scheduler_answering_from(&env);
    let job = |args: &[&str]| -> Run {
        let mut command = env.command();
        with_path(&mut command, &bin);
        command
            .env("SLURM_JOB_ID", "9300")
            .env("SLURM_CLUSTER_NAME", "alpha")
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let run = |args: &[&str]| -> Run {
        let mut command = env.command();
        with_path(&mut command, &bin);
        command.args(args).output().unwrap().into()
    };
    job(&["pre-job"]).ok();
    let pinned = env.backup_files()[0].clone();
    work(&env);
    job(&["post-job", "--status", "143", "--after-term"]).ok();
    let mut last = None;
    for _ in 0..3 {
        work(&env);
        last = Some(run(&["--max-backups", "2", "backup"]));
        last.as_ref().unwrap().ok();
    }
    let why = "pre-job restore point of job 9300, which may be requeued (until ";
    let stderr = &last.unwrap().stderr;
    assert!(
        stderr.contains(&format!(
            "retention keeps {pinned} beyond max_backups: {why}"
        )),
        "{stderr}"
    );
    let dry = run(&["--max-backups", "2", "prune", "--dry-run"]);
    dry.ok();
    assert!(
        dry.stdout.contains(&format!("kept {pinned}: {why}")),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("3 kept, 0 would delete"),
        "{}",
        dry.stdout
    );
    let json = run(&[
        "--max-backups",
        "2",
        "prune",
        "--dry-run",
        "--format",
        "json",
    ])
    .json();
    assert_eq!(json["pinned"][0]["name"], pinned.as_str());
    assert!(json["pinned"][0]["why"].as_str().unwrap().starts_with(why));

    // Pending again (requeued): still kept.
    fs::write(
        &jobs,
        "JobId=9300 JobName=x JobState=PENDING Reason=BeginTime\n",
    )
    .unwrap();
    let dry = run(&["--max-backups", "2", "prune", "--dry-run"]);
    assert!(
        dry.stdout.contains(&format!("kept {pinned}: {why}")),
        "{}",
        dry.stdout
    );
    // Ended for good: the pin goes, and stays gone.
    fs::write(
        &jobs,
        "JobId=9300 JobName=x JobState=CANCELLED Reason=None\n",
    )
    .unwrap();
    let dry = run(&["--max-backups", "2", "prune", "--dry-run"]);
    assert!(
        dry.stdout.contains(&format!("would delete {pinned}")),
        "{}",
        dry.stdout
    );
    run(&["--max-backups", "2", "prune"]).ok();
    assert!(
        !env.backup_files().contains(&pinned),
        "{:?}",
        env.backup_files()
    );
    assert_eq!(env.backup_files().len(), 2, "{:?}", env.backup_files());
}

/// T10 #1: `list --job N` shows the restore point `restore --before-job N`
/// restores also when pre-job reused one made earlier (the database was
/// unchanged): KIND `pre-job (reused)`, JSON `pre_job_of`.
#[test]
fn list_job_shows_the_reused_pre_job_restore_point() {
    let env = Env::new();
    let (bin, _) = scheduler_answering_from(&env);
    env.run(&["backup"]).ok();
    let earlier = env.backup_files()[0].clone();
    let job = |args: &[&str]| -> Run {
        let mut command = env.command();
        with_path(&mut command, &bin);
        command
            .env("SLURM_JOB_ID", "9400")
            .env("SLURM_CLUSTER_NAME", "alpha")
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    job(&["pre-job"]).ok();
    assert_eq!(
        env.backup_files(),
        std::slice::from_ref(&earlier),
        "reused, not made again"
    );
    work(&env);
    job(&["post-job", "--status", "0"]).ok();
    let post = env.backup_files().last().unwrap().clone();
    let list = env.run(&["list", "--job", "9400"]);
    list.ok();
    let line = |name: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", list.stdout))
            .to_string()
    };
    assert!(
        line(&earlier).contains(" pre-job (reused) "),
        "{}",
        list.stdout
    );
    assert!(line(&post).contains(" post-job "), "{}", list.stdout);
    let json = env
        .run(&["list", "--job", "9400", "--format", "json"])
        .json();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{json}");
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap();
    assert_eq!(row(&earlier)["pre_job_of"], "9400");
    assert_eq!(row(&earlier)["kind"], "manual");
    assert!(row(&post).get("pre_job_of").is_none(), "{json}");
    let undo = env.run(&["restore", "--before-job", "9400", "--target", "undone.db"]);
    undo.ok();
    assert!(
        undo.stdout.contains(&format!("before the job: {earlier}")),
        "{}",
        undo.stdout
    );
}

/// T15 #13: an array whose tasks each back up their own database
/// (`DBBACKUP_DB_PATH` per task): each post-job said "1 of 3 array tasks
/// finished; the last one backs up" and none did, since no database's count
/// reaches the array's. With more than one database among the array's
/// pre-jobs, each task's post-job backs up its own.
#[test]
fn an_array_whose_tasks_back_up_their_own_databases_backs_each_up() {
    let env = Env::new();
    let bin = fake_slurm(&env, "");
    let dbs: Vec<PathBuf> = (0..3).map(|i| env.path(&format!("task_{i}.db"))).collect();
    for db in &dbs {
        make_ledger_db(db, 10, false);
    }
    let step = |task: u32, args: &[&str]| -> Run {
        let db = dbs[task as usize].to_str().unwrap().to_string();
        tasks_with(
            &env,
            &bin,
            "9500",
            &[task],
            3,
            args,
            &[("DBBACKUP_DB_PATH", &db)],
        )
        .remove(0)
    };
    for task in 0..3 {
        step(task, &["pre-job"]).ok();
    }
    for task in 0..3 {
        rusqlite::Connection::open(&dbs[task as usize])
            .unwrap()
            .execute_batch("INSERT INTO ledger (amount, note) VALUES (0, 'task wrote'); UPDATE counter SET n = n + 1")
            .unwrap();
        let post = step(task, &["post-job", "--status", "0"]);
        post.ok();
        assert!(
            post.stdout.contains("created backup_"),
            "task {task}: {}\n{}",
            post.stdout,
            post.stderr
        );
    }
    // Each database's newest restore point holds what its task wrote.
    for db in &dbs {
        let target = env.path("check.db");
        let _ = std::fs::remove_file(&target);
        let db_arg = db.to_str().unwrap();
        env.run(&[
            "--db-path",
            db_arg,
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ])
        .ok();
        assert_eq!(
            content_digest(&target),
            content_digest(db),
            "{}",
            db.display()
        );
    }
}

/// T22 F7: an array requeued after it ended (`scontrol requeue ARRAY` once its
/// tasks and final job ran): its restore point was no longer kept, and the
/// first rerun task to finish said `last task (3 of 3 finished)` while the
/// others still ran. A requeued task's pre-job keeps the point again; its
/// post-job asks SLURM which tasks still run.
#[test]
fn an_array_requeued_after_it_ended_keeps_its_point_until_the_rerun_ends() {
    let env = Env::new();
    let running = |states: [&str; 3]| -> String {
        states
            .iter()
            .enumerate()
            .map(|(task, state)| {
                format!(
                    "JobId=9500{task:03} ArrayJobId=9500 ArrayTaskId={task} JobState={state} Restarts=1\n"
                )
            })
            .collect()
    };
    let bin = fake_slurm(&env, &running(["COMPLETED", "COMPLETED", "COMPLETED"]));
    let run = |ids: &[u32], args: &[&str], restarts: &str| -> Vec<Run> {
        tasks_with(
            &env,
            &bin,
            "9500",
            ids,
            3,
            args,
            &[("SLURM_RESTART_COUNT", restarts)],
        )
    };
    run(&[0], &["pre-job"], "0")[0].ok();
    let point = env.newest_backup();
    for task in 0..3 {
        work(&env);
        run(&[task], &["post-job", "--status", "0"], "0")[0].ok();
    }
    // Requeued, weeks later (its pin would have run out): every task runs again.
    let state = env.backups.join(".dbbackup-state");
    for item in fs::read_dir(&state).unwrap().flatten() {
        if item.file_name().to_string_lossy().starts_with("prejob-") {
            let weeks_ago =
                std::time::SystemTime::now() - std::time::Duration::from_secs(20 * 86_400);
            fs::File::options()
                .write(true)
                .open(item.path())
                .unwrap()
                .set_modified(weeks_ago)
                .unwrap();
        }
    }
    fake_slurm(&env, &running(["RUNNING", "RUNNING", "RUNNING"]));
    for pre in run(&[0, 1, 2], &["pre-job"], "1") {
        pre.ok();
    }
    work(&env);
    let first = run(&[0], &["post-job", "--status", "0"], "1");
    first[0].ok();
    let line = summary_lines(&env.summary_log()).pop().unwrap();
    assert_eq!(
        line["reason"],
        "the array was requeued and its tasks 1,2 still run (SLURM says so): the last of them backs up",
        "{line:?}"
    );
    // A backup meanwhile (cron): the array's restore point stays.
    work(&env);
    env.run(&["backup", "--max-backups", "1"]).ok();
    assert!(
        point.exists(),
        "the requeued array's restore point was deleted"
    );
    // The rerun's last task ends it.
    fake_slurm(&env, &running(["COMPLETED", "COMPLETED", "RUNNING"]));
    run(&[1], &["post-job", "--status", "0"], "1")[0].ok();
    run(&[2], &["post-job", "--status", "0"], "1")[0].ok();
    let line = summary_lines(&env.summary_log()).pop().unwrap();
    assert!(line["trigger"].starts_with("last task (3 of 3"), "{line:?}");
    work(&env);
    env.run(&["backup", "--max-backups", "1"]).ok();
    assert!(!point.exists(), "kept after the array ended");
}
