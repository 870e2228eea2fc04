//! SLURM trial T12: `final` when the scheduler cannot be asked; `restore
//! --before-job` of a job whose pre-job failed.

use std::process::Command;

use crate::common::*;

const DOWN: &str = "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n";

/// A step of task `task` (own job id `own`) of a two-task array `array`.
fn task_step(env: &Env, own: &str, array: &str, task: u32) -> Command {
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
        env.command()
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
