//! Jobs that may be writing a database while it is restored over: a job whose
//! pre-job backed it up and that has not ended by dbbackup's record (a pin).
//! Restoring under it leaves neither the restored state nor the job's result:
//! the job writes on top, and its post-job backs up that mix as its outcome.

use super::array::JobState;
use super::job::JobContext;
use super::scheduler::{self, Failure, Running};
use crate::error::{Error, Result};
use crate::store::{BackupDir, DbId};

/// Refuse (exit 1; `--force` skips this) a restore into `db` while SLURM says
/// a job that backed it up in pre-job still runs. The restoring job itself (or
/// its array) is not asked about: its own script restores on purpose. When
/// SLURM cannot be asked, a warning says what may be wrong.
pub(crate) fn refuse_under_running_job(dir: &BackupDir, db: &DbId, me: &JobContext) -> Result<()> {
    let suffix = format!("-{}", db.key());
    let mine = |job: &str| {
        me.own_id.as_deref() == Some(job)
            || me.array.as_ref().is_some_and(|a| a.array_job_id == job)
    };
    let mut asked = Vec::new();
    for pin in JobState::pins(dir) {
        if !pin.key.ends_with(&suffix) {
            continue;
        }
        let (cluster, job) = pin.job();
        // Another cluster's job ids mean nothing to this one's scheduler.
        let elsewhere = me
            .cluster
            .as_deref()
            .is_some_and(|here| cluster != "-" && cluster != here);
        if mine(job) || elsewhere || asked.contains(&job.to_string()) {
            continue;
        }
        asked.push(job.to_string());
        match scheduler::running(job) {
            Ok(Running::Yes(state)) => {
                return Err(Error::failed(format!(
                    "job {job} backed up this database in its pre-job ({}) and is still running \
                     (SLURM: {state}): it would write on top of the restored database; \
                     scancel it first, or --force",
                    pin.backup
                )));
            }
            Ok(Running::No | Running::Unknown) | Err(Failure::Missing(_)) => {}
            Err(failure) => tracing::warn!(
                "job {job} backed up this database in its pre-job ({}) and has not ended by \
                 dbbackup's record; SLURM cannot be asked ({failure}): if it still runs, it \
                 writes on top of the restored database",
                pin.backup
            ),
        }
    }
    Ok(())
}
