//! Driving jobs the way SLURM does: a program (`sbatch`, `bash TEMPLATE`) with
//! the test's settings exported, and waits on the real cluster's queue.

use std::process::Command;
use std::time::Duration;

use super::{BIN, Env, poll::wait_until, without_inherited_settings};

/// `program` in the test's directory, nothing inherited, with the test's
/// settings exported as a job would see them: `DBBACKUP` (the binary the
/// templates run), the database, the backup directory and the summary log.
pub(crate) fn job_command(env: &Env, program: &str) -> Command {
    let mut command = Command::new(program);
    command.current_dir(env.root.path());
    without_inherited_settings(&mut command)
        .env("DBBACKUP", BIN)
        .env("DBBACKUP_DB_PATH", &env.db)
        .env("DBBACKUP_BACKUP_DIR", &env.backups)
        .env("DBBACKUP_SUMMARY_LOG", env.summary_log());
    command
}

/// Until none of `jobs` is queued or running on the cluster (`squeue`).
pub(crate) fn wait_until_jobs_leave_the_queue(jobs: &[&str], limit: Duration) {
    let what = format!("jobs {jobs:?} leave the queue");
    wait_until(&what, limit, Duration::from_millis(500), || {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i", "-j", &jobs.join(",")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().is_empty()
    });
}
