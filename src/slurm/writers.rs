//! Jobs that may be writing a database while it is restored over: a job whose
//! pre-job ran for it and that has not ended by dbbackup's record (a pin, or
//! a pre-job that made no restore point: its note). Restoring under it leaves
//! neither the restored state nor the job's result: the job writes on top,
//! and its post-job backs up that mix as its outcome.

use super::array::{JobState, STATE_DIR, job_of_key};
use super::job::JobContext;
use super::scheduler::{self, Failure, Running};
use crate::error::{Error, Result, show};
use crate::store::{BackupDir, DbId};

/// A job that ran pre-job for the database: its state key and what its
/// pre-job did, as the messages say it.
struct PreJobOf {
    key: String,
    did: String,
}

/// The jobs that ran pre-job for `db` and have not ended by dbbackup's
/// record: pins (a restore point kept for them), and pre-jobs that made none.
fn pre_jobs(dir: &BackupDir, db: &DbId) -> Vec<PreJobOf> {
    let suffix = format!("-{}", db.key());
    let mut found: Vec<PreJobOf> = JobState::pins(dir)
        .into_iter()
        .filter(|pin| pin.key.ends_with(&suffix))
        .map(|pin| PreJobOf {
            did: format!("backed up this database in its pre-job ({})", pin.backup),
            key: pin.key,
        })
        .collect();
    let reader = JobState::reader(dir);
    for key in reader.keys("nopoint") {
        if key.ends_with(&suffix) && !reader.ended(&key) {
            found.push(PreJobOf {
                key,
                did: "ran pre-job for this database (it made no restore point)".to_string(),
            });
        }
    }
    found
}

/// Refuse (exit 1; `--force` skips this) a restore into `db` while SLURM says
/// a job that ran pre-job for it still runs. The restoring job itself (or its
/// array) is not asked about: its own script restores on purpose. When SLURM
/// cannot be asked, a warning says what may be wrong.
///
/// The jobs' records are in the backup directory pre-job used: restoring from
/// another (`--backup-dir MIRROR`, whose copies carry no records) reads those
/// of `configured`, the directory the configuration names, too; when neither
/// holds any, a warning says the check could not be made.
pub(crate) fn refuse_under_running_job(
    dir: &BackupDir,
    configured: Option<&BackupDir>,
    db: &DbId,
    me: &JobContext,
) -> Result<()> {
    let has_records = |d: &BackupDir| d.path().join(STATE_DIR).is_dir();
    let other = configured.filter(|other| {
        has_records(other) && !crate::store::same_existing_dir(other.path(), dir.path())
    });
    // Restoring through another directory than the configured one (a mirror)
    // with no records anywhere, on a machine with SLURM: say what was not
    // checked. A directory that does not exist fails the restore anyway.
    if other.is_none()
        && configured.is_some()
        && dir.path().is_dir()
        && !has_records(dir)
        && scheduler::installed()
    {
        tracing::warn!(
            "{} holds no records of jobs (a mirror's copies carry none): cannot tell whether a SLURM job still writes {}; check `squeue` before restoring over it",
            show(dir.path()),
            show(db.canonical()),
        );
    }
    let mine = |job: &str| {
        me.own_id.as_deref() == Some(job)
            || me.array.as_ref().is_some_and(|a| a.array_job_id == job)
    };
    let mut asked = Vec::new();
    let found = pre_jobs(dir, db)
        .into_iter()
        .chain(other.map(|other| pre_jobs(other, db)).unwrap_or_default());
    for pre_job in found {
        let (cluster, job) = job_of_key(&pre_job.key);
        // Another cluster's job ids mean nothing to this one's scheduler.
        let elsewhere = me
            .cluster
            .as_deref()
            .is_some_and(|here| cluster != "-" && cluster != here);
        if mine(job) || elsewhere || asked.contains(&job.to_string()) {
            continue;
        }
        asked.push(job.to_string());
        let did = &pre_job.did;
        match scheduler::running(job) {
            Ok(Running::Yes(state)) => {
                return Err(Error::failed(format!(
                    "job {job} {did} and is still running (SLURM: {state}): it would write on top \
                     of the restored database; scancel it first, or --force"
                )));
            }
            Ok(Running::No | Running::Unknown) | Err(Failure::Missing(_)) => {}
            Err(failure) => tracing::warn!(
                "job {job} {did} and has not ended by dbbackup's record; SLURM cannot be asked \
                 ({failure}): if it still runs, it writes on top of the restored database"
            ),
        }
    }
    Ok(())
}
