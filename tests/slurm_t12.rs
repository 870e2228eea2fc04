//! SLURM trial T12: `final` when the scheduler cannot be asked; `restore
//! --before-job` of a job whose pre-job failed.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const DOWN: &str = "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n";

/// A command whose SLURM (scontrol, sacct) answers as a real cluster does for
/// jobs it has never heard of: whatever SLURM this machine has, running or
/// configured but down, cannot decide these tests.
fn slurm_forgets(env: &Env) -> Command {
    let bin = env.path("forgetful-slurm-bin");
    if !bin.exists() {
        fake_tool(
            &bin,
            "scontrol",
            "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n",
        );
        fake_tool(&bin, "sacct", "#!/bin/sh\nexit 0\n");
    }
    let mut command = env.command();
    command.env("PATH", path_with(&bin));
    command
}

/// `restore --before-job JOB --target TARGET [--force]` once SLURM has
/// forgotten the job and accounting says it (as `first`, its first task or
/// itself) first started at `started` and completed.
fn undo_ended(env: &Env, job: &str, first: &str, started: &str, target: &Path, force: bool) -> Run {
    let bin = env.path("slurm-bin");
    fake_tool(
        &bin,
        "scontrol",
        "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n",
    );
    fake_tool(
        &bin,
        "sacct",
        &format!(
            "#!/bin/sh\ncase \"$*\" in *JobID,Start*) echo '{first}|{started}';; \
             *) echo '{first}|COMPLETED|0:0';; esac\n"
        ),
    );
    let mut command = env.command();
    command.env("PATH", path_with(&bin)).args([
        "restore",
        "--before-job",
        job,
        "--target",
        target.to_str().unwrap(),
    ]);
    if force {
        command.arg("--force");
    }
    command.output().unwrap().into()
}

/// A step of task `task` (own job id `own`) of a two-task array `array`.
fn task_step(env: &Env, own: &str, array: &str, task: u32) -> Command {
    let mut command = slurm_forgets(env);
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
    command
}

fn add_row(db: &std::path::Path, note: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute("INSERT INTO ledger (amount, note) VALUES (1, ?1)", [note])
        .unwrap();
}

fn ended_markers(env: &Env, array: &str) -> Vec<String> {
    std::fs::read_dir(env.backups.join(".dbbackup-state"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("ended-alpha-{array}-")))
        .collect()
}

/// T12 #6: `final ARRAY` while the controller cannot be reached (its tasks may
/// still run) made its backup, said `status=ok` and marked the array ended, so
/// the next retention deleted the running array's pre-job restore point. Now
/// it still backs up (exit 0) but marks nothing ended, and says so; `--force`
/// marks it.
#[test]
fn final_without_the_scheduler_does_not_mark_the_array_ended() {
    let env = Env::new();
    let pre: Run = task_step(&env, "88001201", "88001200", 0)
        .arg("pre-job")
        .output()
        .unwrap()
        .into();
    pre.ok();
    let point = env.backup_files()[0].clone();
    add_row(&env.db, "task 0 writes");
    let bin = env.path("down-bin");
    for tool in ["scontrol", "sacct", "squeue"] {
        fake_tool(&bin, tool, DOWN);
    }
    let final_run = |args: &[&str]| -> Run {
        slurm_forgets(&env)
            .env("PATH", path_with(&bin))
            .env("SLURM_CLUSTER_NAME", "alpha")
            .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let done = final_run(&["final", "88001200"]);
    done.ok();
    assert!(
        done.stderr.contains(
            "cannot tell whether array 88001200's tasks have ended \
             (slurm_load_jobs error: Unable to contact slurm controller (connect failure)): \
             the array was not marked ended"
        ),
        "{}",
        done.stderr
    );
    assert_eq!(ended_markers(&env, "88001200"), Vec::<String>::new());
    let lines = summary_lines(&env.summary_log());
    let line = lines.iter().rfind(|l| l["event"] == "final").unwrap();
    assert_eq!(line["marked_ended"], "no", "{line:?}");
    // The restore point stays pinned under the tasks that may still write.
    for round in 0..2 {
        add_row(&env.db, &format!("round {round}"));
        env.run(&["--max-backups", "1", "backup"]).ok();
    }
    assert!(
        env.backups.join(&point).exists(),
        "{point} deleted: {:?}",
        env.backup_files()
    );
    let forced = final_run(&["final", "--force", "88001200"]);
    forced.ok();
    assert!(
        forced.stderr.contains("--force: marking it ended now"),
        "{}",
        forced.stderr
    );
    assert_eq!(ended_markers(&env, "88001200").len(), 1);
}

/// SLURM's local time of now, whole seconds.
fn slurm_now() -> String {
    let out = Command::new("date")
        .arg("+%Y-%m-%dT%H:%M:%S")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// T12 #7: `restore --before-job J` whose pre-job recorded that it made no
/// restore point (the database stayed locked) restored the newest point before
/// J's start, older than the state at its start, exit 0. Now that needs
/// `--force`, as when the recorded point was deleted.
#[test]
fn a_before_job_fallback_after_a_failed_pre_job_needs_force() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let older = env.backup_files()[0].clone();
    add_row(&env.db, "pre-array");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let started = slurm_now();
    let holder = hold_exclusive(&env.db);
    let pre: Run = task_step(&env, "88001301", "88001300", 0)
        .args(["pre-job", "--busy-timeout-seconds", "1"])
        .output()
        .unwrap()
        .into();
    drop(holder);
    assert_eq!(pre.code, 1, "{}", pre.stderr);
    assert!(
        pre.stderr
            .contains("recorded, so the other tasks do not wait"),
        "{}",
        pre.stderr
    );
    // SLURM: the array ended; it first started at `started`.
    let target = env.path("undo.db");
    let restore = |force| undo_ended(&env, "88001300", "88001300_0", &started, &target, force);
    let why = "the newest restore point before job 88001300 first started";
    fallback_needs_force(restore, "88001300", why, &older, &target);
}

/// A plain job whose pre-job could not take the backup directory's lock (or hit
/// a full disk) recorded nothing, so `restore --before-job` took the newest
/// older point for the state at the job's start without a word. Now pre-job
/// leaves a note without the lock, and the fallback needs `--force`.
#[test]
fn a_before_job_fallback_after_a_pre_job_without_the_lock_needs_force() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let older = env.backup_files()[0].clone();
    add_row(&env.db, "after the older point, before the job");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let started = slurm_now();
    let holder = hold_dir_lock(&env.lock_file(), "host=n9 pid=1 job=9");
    let pre: Run = slurm_forgets(&env)
        .env("SLURM_JOB_ID", "88001700")
        .env("SLURM_CLUSTER_NAME", "alpha")
        .args(["pre-job", "--lock-timeout-seconds", "1"])
        .output()
        .unwrap()
        .into();
    drop(holder);
    pre.failed_with(1, "still locked by");
    let target = env.path("undo.db");
    let restore = |force| undo_ended(&env, "88001700", "88001700", &started, &target, force);
    fallback_needs_force(restore, "88001700", "still locked by", &older, &target);
}

/// `restore(force)` of job `job`, whose pre-job made no restore point, is
/// refused naming `why` and the older point `older` it would take, restoring
/// nothing; forced, it restores.
fn fallback_needs_force(
    restore: impl Fn(bool) -> Run,
    job: &str,
    why: &str,
    older: &str,
    target: &Path,
) {
    let refused = restore(false);
    refused.failed_with(1, &format!("job {job}'s pre-job made no restore point ("));
    assert!(
        refused.stderr.contains(why)
            && refused.stderr.contains(&format!(
                "is {older}, which may be older than the state at its start"
            )),
        "{}",
        refused.stderr
    );
    assert!(!target.exists());
    restore(true).ok();
    assert!(target.exists());
}

/// T12 #1: `list --job 0805` said "no backups made by job 0805" (exit 0) while
/// job 805 had backups; SLURM reads `0805` as 805, and so do `list`,
/// `restore --before-job` and `final` now.
#[test]
fn job_ids_with_leading_zeros_are_read_as_slurm_reads_them() {
    let env = Env::new();
    let pre: Run = slurm_forgets(&env)
        .env("SLURM_JOB_ID", "88001400")
        .env("SLURM_CLUSTER_NAME", "alpha")
        .arg("pre-job")
        .output()
        .unwrap()
        .into();
    pre.ok();
    let point = env.backup_files()[0].clone();
    let listed = env.run(&["list", "--job", "088001400"]);
    listed.ok();
    assert!(listed.stdout.contains(&point), "{}", listed.stdout);
    task_step(&env, "88001501", "88001500", 0)
        .arg("pre-job")
        .output()
        .unwrap();
    let done: Run = slurm_forgets(&env)
        .env("SLURM_CLUSTER_NAME", "alpha")
        .args(["final", "0088001500"])
        .output()
        .unwrap()
        .into();
    done.ok();
    assert_eq!(ended_markers(&env, "88001500").len(), 1, "{}", done.stderr);
}

/// T12 #2: `restore --before-job J` whose pre-job point is present but damaged
/// said it "was deleted (retention, or by hand)"; now it says it is damaged.
#[test]
fn a_damaged_pre_job_point_is_called_damaged_not_deleted() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    add_row(&env.db, "before the job");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let started = slurm_now();
    let pre: Run = slurm_forgets(&env)
        .env("SLURM_JOB_ID", "88001600")
        .env("SLURM_CLUSTER_NAME", "alpha")
        .arg("pre-job")
        .output()
        .unwrap()
        .into();
    pre.ok();
    let point = env.backup_files().last().unwrap().clone();
    let path = env.backups.join(&point);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    bytes[middle + 1] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let target = env.path("x.db");
    let refused = undo_ended(&env, "88001600", "88001600", &started, &target, false);
    refused.failed_with(
        1,
        &format!(
            "job 88001600's pre-job restore point {point} is damaged (`dbbackup verify {point}`)"
        ),
    );
    assert!(
        !refused.stderr.contains("was deleted"),
        "{}",
        refused.stderr
    );
}

/// T15 #15: `restore --before-job J` whose recorded point is gone here but
/// held by a mirror said "was deleted" and offered `--force` onto an older
/// point; it names the mirror's copy of the very point first.
#[test]
fn a_before_job_point_gone_here_but_in_a_mirror_is_named() {
    let env = Env::new();
    let mirror = env.path("mirror");
    let step = |args: &[&str]| -> Run {
        slurm_forgets(&env)
            .env("SLURM_JOB_ID", "88001800")
            .env("SLURM_CLUSTER_NAME", "alpha")
            .env("DBBACKUP_MIRROR_DIRS", &mirror)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    step(&["pre-job"]).ok();
    let point = env.backup_files()[0].clone();
    step(&["post-job", "--status", "0"]).ok();
    std::fs::remove_file(env.backups.join(&point)).unwrap();
    let target = env.path("undo.db");
    let refused: Run = slurm_forgets(&env)
        .env("DBBACKUP_MIRROR_DIRS", &mirror)
        .args([
            "restore",
            "--before-job",
            "88001800",
            "--target",
            target.to_str().unwrap(),
        ])
        .output()
        .unwrap()
        .into();
    refused.failed_with(
        1,
        &format!(
            "mirror {} holds {point}, the state at the job's start: `dbbackup --backup-dir {} restore {point}`",
            mirror.display(),
            mirror.display()
        ),
    );
    env.run(&[
        "--backup-dir",
        mirror.to_str().unwrap(),
        "restore",
        &point,
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
}
