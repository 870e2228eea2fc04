//! Is this job an array task? `sbatch` exports the submitter's environment, so
//! a job submitted from inside an array task inherits `SLURM_ARRAY_JOB_ID` and
//! `SLURM_ARRAY_TASK_ID`, and SLURM does not clear them for a plain job; only
//! `SLURM_JOB_ID` is always the job's own. So the variables are a claim, and
//! SLURM's record of `SLURM_JOB_ID` decides: asked once, at pre-job (one
//! `scontrol show job`), and kept in the backup directory's state under the
//! job's own id, so post-job (and the `run` supervisor at TERM) asks nobody.
//!
//! When there is nobody to ask (no `scontrol`, a job SLURM does not know) the
//! variables are trusted. When the question fails (an error, a timeout) the
//! job goes as its own job, with a warning: an unverified task never counts
//! toward its claimed array's last task.

use std::fs;

use super::array::STATE_DIR;
use super::job::{ArrayTask, JobContext, sanitize};
use super::scheduler::{self, Failure};
use crate::error::{Context, show};
use crate::store::{BackupDir, replace_file};

/// The job as SLURM says it is, asked now (pre-job), and remembered for the
/// later steps of the same job. Plain jobs (no array claimed) ask nothing.
pub(crate) fn decide(job: &JobContext, dir: &BackupDir) -> JobContext {
    let (Some(claimed), Some(own)) = (&job.array, &job.own_id) else {
        return job.clone();
    };
    // Asked again even when a decision is recorded: the record may be an
    // earlier job's that had the same id (a controller whose state was
    // reset); it serves only when SLURM cannot be asked.
    let answer = scheduler::show_job(own);
    if answer.is_err()
        && let Some(known) = recorded(job, dir)
    {
        crate::logging::retag(&known.tag);
        return known;
    }
    let decided = match answer {
        Ok(record) => match record.array {
            Some((array, task)) if array == claimed.array_job_id && task == claimed.task_id => {
                job.clone()
            }
            Some((array, task)) => {
                crate::logging::retag(&format!("{}_{task}", sanitize(&array)));
                tracing::warn!(
                    "SLURM says job {own} is task {array}_{task}, not {}: going by SLURM",
                    job.tag
                );
                job.with_array(Some(ArrayTask {
                    array_job_id: sanitize(&array),
                    task_id: task,
                    task_count: None,
                    range: None,
                }))
            }
            None => {
                crate::logging::retag(own);
                tracing::info!(
                    "job {own} is not a task of array {} (SLURM says so; the array variables were inherited from the submitting task)",
                    claimed.array_job_id
                );
                job.with_array(None)
            }
        },
        // No SLURM tools here, or SLURM does not know the job (refused as an
        // invalid id, or answered without its record; never a running job's
        // own id): nothing to ask, the variables are all there is.
        Err(failure)
            if matches!(failure, Failure::Missing(_) | Failure::Unreadable(..))
                || scheduler::unknown_job(&failure) =>
        {
            tracing::debug!("job {own} not checked with SLURM ({failure}); trusting the variables");
            return job.clone();
        }
        // The question failed (a controller that errs or is stuck): the claim
        // is unverified, and an unverified task must not count toward the
        // array's last task (its backup would come while a real task still
        // writes), so the job goes as its own, as when SLURM says so.
        Err(failure) => {
            crate::logging::retag(own);
            tracing::warn!(
                "cannot ask SLURM whether job {own} is task {} ({failure}); going as its own job {own}, not as a task of array {}",
                job.tag,
                claimed.array_job_id
            );
            job.with_array(None)
        }
    };
    remember(job, dir, &decided);
    crate::logging::retag(&decided.tag);
    decided
}

/// The decision pre-job recorded for this job, else SLURM's word asked now
/// (post-job of a job that ran no pre-job).
pub(crate) fn recalled_or_decided(job: &JobContext, dir: &BackupDir) -> JobContext {
    if job.array.is_some()
        && let Some(known) = recorded(job, dir)
    {
        crate::logging::retag(&known.tag);
        return known;
    }
    decide(job, dir)
}

/// The decision pre-job recorded for this job, else the variables as given.
/// Never asks the scheduler.
pub(crate) fn recalled(job: &JobContext, dir: &BackupDir) -> JobContext {
    if job.array.is_none() {
        return job.clone();
    }
    let known = recorded(job, dir).unwrap_or_else(|| job.clone());
    crate::logging::retag(&known.tag);
    known
}

fn file_name(job: &JobContext) -> Option<String> {
    let own = job.own_id.as_deref()?;
    Some(format!(
        "identity-{}",
        super::job::state_key(job.cluster.as_deref(), own)
    ))
}

/// A recorded decision, `array=<id>_<task>` or `array=` (its own job):
/// `Some(None)` for its own job, `None` when unreadable.
pub(crate) fn read_decision(path: &std::path::Path) -> Option<Option<(String, u64)>> {
    let text = fs::read_to_string(path).ok()?;
    let value = text.lines().find_map(|l| l.strip_prefix("array="))?.trim();
    if value.is_empty() {
        return Some(None);
    }
    let (array, task) = value.split_once('_')?;
    Some(Some((array.to_string(), task.parse().ok()?)))
}

fn recorded(job: &JobContext, dir: &BackupDir) -> Option<JobContext> {
    let path = dir.path().join(STATE_DIR).join(file_name(job)?);
    let Some((array, task)) = read_decision(&path)? else {
        return Some(job.with_array(None));
    };
    match &job.array {
        Some(claimed) if claimed.array_job_id == array && claimed.task_id == task => {
            Some(job.clone())
        }
        _ => Some(job.with_array(Some(ArrayTask {
            array_job_id: array,
            task_id: task,
            task_count: None,
            range: None,
        }))),
    }
}

/// One small file per job, written by that job only (atomically): needs no lock.
fn remember(job: &JobContext, dir: &BackupDir, decided: &JobContext) {
    let Some(name) = file_name(job) else {
        return;
    };
    let state = dir.path().join(STATE_DIR);
    let text = match &decided.array {
        Some(task) => format!("array={}_{}\n", task.array_job_id, task.task_id),
        None => "array=\n".to_string(),
    };
    let written = crate::store::perms::create_dir_all(&state)
        .context(|| format!("cannot create {}", show(&state)))
        .and_then(|()| replace_file(&state.join(name), 0o664, text.as_bytes()));
    if let Err(error) = written {
        tracing::warn!("cannot record whether this job is an array task: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Job `own` claiming (by inherited variables) to be task `task` of `array`.
    fn claiming(own: &str, array: &str, task: &str) -> JobContext {
        let vars = [
            ("SLURM_JOB_ID", own),
            ("SLURM_ARRAY_JOB_ID", array),
            ("SLURM_ARRAY_TASK_ID", task),
            ("SLURM_CLUSTER_NAME", "alpha"),
        ];
        JobContext::from_lookup(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_string())
            },
            "node1".into(),
        )
    }

    fn array_of(job: &JobContext) -> Option<(String, u64)> {
        job.array
            .as_ref()
            .map(|a| (a.array_job_id.clone(), a.task_id))
    }

    #[test]
    fn what_pre_job_decided_is_what_later_steps_of_the_job_recall() {
        let dir = tempfile::tempdir().unwrap();
        let dir = BackupDir::new(dir.path());
        // A follow-up job that inherited its submitter's array variables.
        let follow_up = claiming("501", "400", "2");
        remember(&follow_up, &dir, &follow_up.with_array(None));
        let recalled_job = recalled(&follow_up, &dir);
        assert_eq!(array_of(&recalled_job), None);
        assert_eq!(recalled_job.tag, "501");
        // SLURM said another task than the variables claim.
        let moved = claiming("502", "400", "3");
        let said = moved.with_array(Some(ArrayTask {
            array_job_id: "410".into(),
            task_id: 7,
            task_count: None,
            range: None,
        }));
        remember(&moved, &dir, &said);
        assert_eq!(array_of(&recalled(&moved, &dir)), Some(("410".into(), 7)));
    }

    #[test]
    fn a_job_nothing_was_recorded_for_keeps_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let dir = BackupDir::new(dir.path());
        let other = claiming("501", "400", "2");
        remember(&other, &dir, &other.with_array(None));
        let task = claiming("503", "400", "4");
        assert_eq!(array_of(&recalled(&task, &dir)), Some(("400".into(), 4)));
        assert_eq!(recalled(&task, &dir).tag, "400_4");
    }
}
