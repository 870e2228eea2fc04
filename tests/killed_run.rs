//! T23 #12: a job whose `dbbackup run` is SIGKILLed (the OOM killer, a node
//! failure) after its pre-job leaves its work in no backup. `check` called
//! the pre-job the newest good attempt and said OK. Now the attempt fails
//! once the job is known to have ended, and is OK (saying the post-job is to
//! come) while it runs.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

/// The work: one row into the ledger, then SIGKILL to `dbbackup run` (its
/// parent), as the OOM killer would.
const KILLED_AFTER_WRITING: &str = "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (1, 'work')\\\"); c.commit()\" \"$DB\"; kill -KILL $PPID";

/// The `attempt` line of `check`'s text report.
fn attempt_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|line| line[4..].trim_start().starts_with("attempt:"))
        .unwrap_or_else(|| panic!("no attempt line\n{stdout}"))
}

#[test]
fn a_run_killed_after_its_pre_job_fails_check_until_the_next_backup() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env("DB", &env.db)
        .args(["run", "--", "sh", "-c", KILLED_AFTER_WRITING])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.signal, Some(9), "run was SIGKILLed\n{}", run.stderr);
    assert_eq!(env.backup_files().len(), 1, "the pre-job backup only");
    let check = env.run(&["check"]);
    check.reported(1, "FAIL attempt: newest attempt (pre-job");
    let line = attempt_line(&check.stdout);
    assert!(
        line.contains("ended without its post-job backup")
            && line.contains("(no longer running;")
            && line.contains("in no backup"),
        "{line}"
    );
    env.run(&["check", "--format", "nagios"])
        .reported(2, "DBBACKUP CRITICAL - attempt: ");
    let metrics = env.run(&["check", "--format", "prometheus"]);
    assert!(
        metrics
            .stdout
            .lines()
            .any(|l| l.starts_with("dbbackup_last_attempt_success{") && l.ends_with(" 0")),
        "{}",
        metrics.stdout
    );
    // The next backup holds the work: healthy again.
    env.run(&["backup"]).ok();
    let check = env.run(&["check"]);
    check.ok();
    assert!(
        attempt_line(&check.stdout).starts_with("OK"),
        "{}",
        check.stdout
    );
}

#[test]
fn a_running_run_is_healthy_and_says_its_post_job_is_to_come() {
    let env = Env::new();
    let mut child = start_run(&env, "sleep 60");
    let check = env.run(&["check"]);
    check.ok();
    let line = attempt_line(&check.stdout);
    assert!(
        line.starts_with("OK")
            && line.contains(&format!("(pid {} on ", child.id()))
            && line.contains("has not ended (its process is alive)")
            && line.contains("its post-job backup is to come"),
        "{line}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(exit_within(&mut child, Duration::from_secs(60)).is_some());
    let check = env.run(&["check"]);
    check.ok();
    let line = attempt_line(&check.stdout);
    assert!(
        line.contains("newest attempt (post-job") && !line.contains("post-job backup is to come"),
        "{line}"
    );
}

/// Submit a batch job running `body` (sh) with the test's settings and `DB`,
/// and wait until it left the queue: its id and output.
fn run_batch_job(env: &Env, sbatch_args: &[&str], body: &str) -> (String, String) {
    let script = env.path("job.sh");
    fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
    let submitted = job_command(env, "sbatch")
        .env("DB", &env.db)
        .args(["--parsable", "-o"])
        .arg(env.path("job.out"))
        .args(sbatch_args)
        .arg(&script)
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
    (
        job,
        fs::read_to_string(env.path("job.out")).unwrap_or_default(),
    )
}

/// `work` quoted for `sh -c` in a job script.
fn quoted(work: &str) -> String {
    format!("'{}'", work.replace('\'', "'\\''"))
}

/// On a real cluster: a batch job whose `run` is SIGKILLed, alone (T23 #12)
/// or after an earlier `run` in the same script whose pre-job made the point
/// (T24 F13: the second pre-job found it made and recorded nothing). Once
/// SLURM says the job ended, `check` (from the login node) fails the attempt.
#[test]
fn a_slurm_job_whose_run_was_killed_fails_check_once_it_ended() {
    if !cluster_ready() {
        return;
    }
    let killed = format!(
        "\"$DBBACKUP\" run -- sh -c {}",
        quoted(KILLED_AFTER_WRITING)
    );
    for (body, newest) in [
        (killed.clone(), "pre-job"),
        (format!("\"$DBBACKUP\" run -- true\n{killed}"), "post-job"),
        // T24b N4: two runs at once in one job, one killed.
        (
            format!(
                "\"$DBBACKUP\" run -- true &\n\"$DBBACKUP\" run -- sh -c {} &\nwait",
                quoted(&format!("sleep 2; {KILLED_AFTER_WRITING}"))
            ),
            "",
        ),
    ] {
        let env = Env::new();
        let (job, log) = run_batch_job(&env, &[], &body);
        assert_eq!(
            row_count(&env.db, "ledger"),
            401,
            "the work wrote its row\n{log}"
        );
        let check = env.run(&["check"]);
        check.reported(1, &format!("FAIL attempt: newest attempt ({newest}"));
        let line = attempt_line(&check.stdout);
        assert!(
            line.contains(&format!("job {job} ended without its post-job backup")),
            "{line}\n{log}"
        );
    }
}

/// Killed before the work wrote anything: the database still holds the
/// pre-job's state, so nothing is lost and `check` says so (no false FAIL).
#[test]
fn a_run_killed_before_the_work_wrote_anything_loses_nothing() {
    let env = Env::new();
    let run: Run = env
        .command()
        .args(["run", "--", "sh", "-c", "kill -KILL $PPID"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.signal, Some(9), "{}", run.stderr);
    let check = env.run(&["check"]);
    check.ok();
    let line = attempt_line(&check.stdout);
    assert!(
        line.starts_with("OK")
            && line.contains("ended without its post-job backup")
            && line.contains("but the database is unchanged since")
            && line.contains("nothing is lost"),
        "{line}"
    );
}

/// An array whose tasks did not all finish (one killed): no task backs up,
/// the array's final job does once it runs. While it is queued `check` is OK
/// and says so; once it ended without a backup, FAIL.
#[test]
fn an_array_whose_final_job_is_queued_is_not_a_failure_yet() {
    let env = Env::new();
    let bin = env.path("fake-bin");
    let final_state = env.path("final.state");
    fs::write(&final_state, "PENDING").unwrap();
    fake_tool(&bin, "sbatch", "#!/bin/sh\necho 777\n");
    fake_tool(
        &bin,
        "scontrol",
        &format!(
            "#!/bin/sh\ncase \"$*\" in\n\
             *'show job 777'*) echo \"JobId=777 JobState=$(cat '{}')\";;\n\
             *'show job 5500'*) echo 'JobId=5500000 ArrayJobId=5500 ArrayTaskId=0 JobState=COMPLETED'; \
             echo 'JobId=5500 ArrayJobId=5500 ArrayTaskId=1 JobState=OUT_OF_MEMORY';;\n\
             esac\n",
            final_state.display()
        ),
    );
    fake_tool(&bin, "sacct", "#!/bin/sh\nexit 1\n");
    let slurm = |args: &[&str]| -> Run {
        env.command()
            .env("PATH", path_with(&bin))
            .env("SLURM_ARRAY_JOB_ID", "5500")
            .env("SLURM_ARRAY_TASK_ID", "0")
            .env("SLURM_ARRAY_TASK_COUNT", "2")
            .env("SLURM_JOB_ID", "5500000")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let final_script = env.path("final_backup.sbatch");
    slurm(&["pre-job", "--final-job", final_script.to_str().unwrap()]).ok();
    crate::common::s3::add_row(&env.db);
    let check = || -> Run {
        env.command()
            .env("PATH", path_with(&bin))
            .arg("check")
            .output()
            .unwrap()
            .into()
    };
    let queued = check();
    queued.ok();
    let line = attempt_line(&queued.stdout);
    assert!(
        line.contains("job 5500 has not ended (its tasks have ended; the array's final job 777 is to back it up (SLURM: PENDING))"),
        "{line}"
    );
    fs::write(&final_state, "CANCELLED").unwrap();
    let cancelled = check();
    cancelled.reported(1, "FAIL attempt: newest attempt (pre-job");
    assert!(
        attempt_line(&cancelled.stdout)
            .contains("job 5500 ended without its post-job backup (SLURM says it has ended;"),
        "{}",
        cancelled.stdout
    );
}

/// `dbbackup run -- sh -c WORK` in the background (`DB` set), once its
/// work has started.
fn start_run(env: &Env, work: &str) -> std::process::Child {
    let started = env.path("started");
    let child = env
        .command()
        .env("DB", &env.db)
        .args(["run", "--", "sh", "-c"])
        .arg(format!("touch '{}'; {work}", started.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "the work starts",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || started.exists(),
    );
    child
}

/// `dbbackup run` of a work that waits for `go`, then writes a row and
/// SIGKILLs its `run`; returns once its work has started.
fn start_run_killed_on_go(env: &Env) -> std::process::Child {
    let go = env.path("go");
    start_run(
        env,
        &format!(
            "while [ ! -e '{}' ]; do sleep 0.05; done; {KILLED_AFTER_WRITING}",
            go.display()
        ),
    )
}

/// T24 F1, F3: a second job's post-job, or a backup made while the first job
/// ran (a periodic or manual one), became the newest attempt and `check` said
/// OK although the first job, killed later, left its work in no backup. The
/// debt is carried from record to record until paid.
#[test]
fn a_later_attempt_does_not_hide_a_run_killed_after_it() {
    for later in [&["backup"][..], &["run", "--", "true"]] {
        let env = Env::new();
        let mut killed = start_run_killed_on_go(&env);
        env.run(later).ok();
        fs::write(env.path("go"), "").unwrap();
        assert!(exit_within(&mut killed, Duration::from_secs(60)).is_some());
        let check = env.run(&["check"]);
        check.reported(1, "FAIL attempt: newest attempt (");
        let line = attempt_line(&check.stdout);
        assert!(
            line.contains(&format!("`dbbackup run` (pid {} on ", killed.id()))
                && line.contains("ended without its post-job backup"),
            "{later:?}: {line}"
        );
        // A backup after it ended holds its work.
        env.run(&["backup"]).ok();
        let check = env.run(&["check"]);
        check.ok();
        assert!(
            !attempt_line(&check.stdout).contains("post-job"),
            "{}",
            check.stdout
        );
    }
}

/// T24 F4: `srun -n 2 dbbackup run`, task 1 killed after task 0's post-job:
/// task 0's backup does not pay task 1's debt.
#[test]
fn one_task_of_a_step_killed_after_the_others_post_job_fails_check() {
    if !cluster_ready() {
        return;
    }
    let env = Env::new();
    let work = format!("if [ \"$SLURM_PROCID\" = 1 ]; then sleep 3; {KILLED_AFTER_WRITING}; fi");
    let (job, log) = run_batch_job(
        &env,
        &["-n", "2"],
        &format!(
            "srun -n 2 \"$DBBACKUP\" run -- sh -c {}\nexit 0",
            quoted(&work)
        ),
    );
    assert_eq!(row_count(&env.db, "ledger"), 401, "task 1 wrote\n{log}");
    let check = env.run(&["check"]);
    check.reported(1, "FAIL attempt: newest attempt (post-job");
    assert!(
        attempt_line(&check.stdout).contains(&format!(
            "task 1 of step {job}.0 ended without its post-job backup"
        )),
        "{}\n{log}",
        check.stdout
    );
}

/// Twelve `run`s of one database at once, each finishing normally: every
/// debt is paid (replacing the record is one step under its lock: a debt
/// read by one and paid by another is never written back), so `check` is
/// OK and names none of them.
#[test]
fn concurrent_runs_that_all_finish_leave_nothing_owed() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let runs: Vec<_> = (0..12)
        .map(|i| {
            env.command()
                .env("DB", &env.db)
                .args(["run", "--", "sh", "-c"])
                .arg(format!(
                    "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=60); c.execute(\\\"INSERT INTO ledger (amount, note) VALUES ({i}, 'run')\\\"); c.commit()\" \"$DB\""
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let check = env.run(&["check"]);
    check.ok();
    let line = attempt_line(&check.stdout);
    assert!(!line.contains("`dbbackup run`"), "{line}");
    let record = fs::read_dir(env.backups.join(".dbbackup-state"))
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name().to_string_lossy().starts_with("attempt-")
                && !e.file_name().to_string_lossy().ends_with(".lock")
        })
        .unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(record.path()).unwrap()).unwrap();
    assert!(record.get("owed").is_none(), "{record}");
}

/// T24b N5 / T24 F6: a killed run that only touched the database (its
/// content the same): `backup` finds it unchanged, which holds the state
/// now, so it pays the debt (before, only `backup --force` did).
#[test]
fn a_backup_that_finds_the_database_unchanged_pays_an_ended_jobs_debt() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env("DB", &env.db)
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "sleep 1.1; touch \"$DB\"; kill -KILL $PPID",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.signal, Some(9), "{}", run.stderr);
    let backup = env.run(&["backup"]);
    backup.ok();
    assert!(backup.stdout.contains("unchanged"), "{}", backup.stdout);
    let check = env.run(&["check"]);
    check.ok();
    assert!(
        !attempt_line(&check.stdout).contains("post-job"),
        "{}",
        check.stdout
    );
}

/// A script outside SLURM, `sh -c BODY` with `$DBBACKUP` the binary and `DB`
/// the database, the settings as `Env::command` gives them.
fn script(env: &Env, body: &str) -> std::process::Command {
    let mut command = std::process::Command::new("sh");
    without_inherited_settings(&mut command);
    command
        .current_dir(env.path(""))
        .env("DBBACKUP_DB_PATH", &env.db)
        .env("DBBACKUP_BACKUP_DIR", &env.backups)
        .env("DB", &env.db)
        .env("DBBACKUP", BIN)
        .args(["-c", body]);
    command
}

/// The work of a script: one row into the ledger.
const WRITE_A_ROW: &str = "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\\\"INSERT INTO ledger (amount, note) VALUES (1, 'work')\\\"); c.commit()\" \"$DB\"";

/// A script in the background: `PRE`, one row written, then it waits for the
/// file `go` (in the test's directory) and runs `THEN`; returns once the row
/// is in the database.
fn start_script_until_go(env: &Env, pre: &str, then: &str) -> std::process::Child {
    let rows = row_count(&env.db, "ledger");
    let go = env.path("go");
    let child = script(
        env,
        &format!(
            "{pre} && {WRITE_A_ROW} && while [ ! -e '{}' ]; do sleep 0.05; done; {then}",
            go.display()
        ),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_until(
        "the row is written",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || row_count(&env.db, "ledger") > rows,
    );
    child
}

/// T24 F9: a bare `pre-job` outside SLURM (a script: `pre-job; work;
/// post-job`) owed nothing, so a script killed after its pre-job, or one that
/// never ran its post-job, left `check` OK with its work in no backup. The
/// script (the pre-job's parent process) now owes the post-job.
#[test]
fn a_script_that_ran_pre_job_owes_its_post_job_outside_slurm() {
    let env = Env::new();
    // Pre-job, work, post-job in one script: nothing owed.
    let done = script(
        &env,
        &format!("\"$DBBACKUP\" pre-job && {WRITE_A_ROW} && \"$DBBACKUP\" post-job"),
    )
    .output()
    .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let check = env.run(&["check"]);
    check.ok();
    let line = attempt_line(&check.stdout);
    assert!(
        line.starts_with("OK") && line.contains("(post-job") && !line.contains("pre-job`"),
        "{line}"
    );

    // A script still running after its pre-job: OK, its post-job to come.
    let go = env.path("go");
    let mut running = start_script_until_go(&env, "\"$DBBACKUP\" pre-job", "kill -KILL $$");
    let check = env.run(&["check"]);
    check.ok();
    let line = attempt_line(&check.stdout);
    assert!(
        line.contains(&format!(
            "the process that ran `dbbackup pre-job` (pid {} on ",
            running.id()
        )) && line.contains("has not ended (its process is alive): its post-job backup is to come"),
        "{line}"
    );
    // Killed before its post-job: FAIL until a backup holds the row.
    fs::write(&go, "").unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&running.wait().unwrap()),
        Some(9)
    );
    let check = env.run(&["check"]);
    check.reported(1, "FAIL attempt: newest attempt (pre-job");
    let line = attempt_line(&check.stdout);
    assert!(
        line.contains("the process that ran `dbbackup pre-job` (pid ")
            && line.contains("ended without its post-job backup (no longer running;"),
        "{line}"
    );
    env.run(&["backup"]).ok();
    assert!(attempt_line(&env.run(&["check"]).stdout).starts_with("OK"));

    // A script that ends without running post-job at all: the same FAIL.
    let ended = script(&env, &format!("\"$DBBACKUP\" pre-job && {WRITE_A_ROW}"))
        .output()
        .unwrap();
    assert!(
        ended.status.success(),
        "{}",
        String::from_utf8_lossy(&ended.stderr)
    );
    env.run(&["check"])
        .reported(1, "ended without its post-job backup (no longer running;");
}

/// Review of T24 F9: `timeout 600 dbbackup pre-job` made `timeout` (gone as
/// soon as pre-job was) owe the post-job, so `check` failed for the whole
/// work; and `timeout 1h dbbackup post-job` (its parent `timeout`, not the
/// script) did not pay it. The script past its launchers owes it, and a
/// post-job anywhere under the script pays.
#[test]
fn a_launcher_around_pre_job_or_post_job_is_not_the_job() {
    // A shell that only runs dbbackup (Python's `os.system`, R's `system()`;
    // the pipe keeps sh from exec'ing it) is a launcher too (T25b NEW-4).
    let one_command_shell = |verb: &str| format!("sh -c '{BIN} {verb} 2>&1 | cat'");
    for (pre, post) in [
        (
            "timeout 600 \"$DBBACKUP\" pre-job".to_string(),
            "(timeout 600 \"$DBBACKUP\" post-job --status 0)".to_string(),
        ),
        (
            one_command_shell("pre-job"),
            one_command_shell("post-job --status 0"),
        ),
    ] {
        launched_pre_job_and_post_job(&pre, &post);
    }
}

fn launched_pre_job_and_post_job(pre: &str, post: &str) {
    let env = Env::new();
    let go = env.path("go");
    let mut running = start_script_until_go(&env, pre, post);
    let check = env.run(&["check"]);
    check.ok();
    let line = attempt_line(&check.stdout);
    assert!(
        line.contains(&format!(
            "the process that ran `dbbackup pre-job` (pid {} on ",
            running.id()
        )) && line.contains("its post-job backup is to come"),
        "{line}"
    );
    fs::write(&go, "").unwrap();
    assert!(running.wait().unwrap().success());
    let check = env.run(&["check"]);
    check.ok();
    let line = attempt_line(&check.stdout);
    assert!(
        line.starts_with("OK") && line.contains("(post-job") && !line.contains("pre-job`"),
        "{line}"
    );
}
