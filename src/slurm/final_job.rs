//! The final job: the array's last word, run after every task has ended
//! (`sbatch --dependency=afterany:<array>`), however the tasks ended. It
//! gathers each task's final state (from `sacct`, else `scontrol`, else only
//! which tasks reached post-job), makes the `final` backup (tagged with the
//! array id) or reuses the newest restore point, and marks the array ended.
//!
//! Run by hand from a login node there is no `SLURM_CLUSTER_NAME`: the cluster
//! name that keys the array's state is asked of `scontrol show config`.

use std::collections::{BTreeMap, BTreeSet};

use super::array::JobState;
use super::job::{JobContext, sanitize, state_key};
use super::scheduler::{self, TaskEnd};
use crate::config::Settings;
use crate::create::{self, Outcome};
use crate::error::{Error, Result};
use crate::store::{BackupDir, DbId, Kind};

/// What the final job found and did.
pub(crate) struct FinalRun {
    pub array: String,
    /// Where the tasks' states came from: `sacct`, `scontrol`, `post-job-records`.
    pub source: &'static str,
    pub ends: BTreeMap<u64, TaskEnd>,
    /// Set when nobody knows this array (probably a mistyped id), or when the
    /// scheduler could not be asked whether its tasks ended.
    pub unknown: Option<String>,
    /// Whether the array was marked ended (not when the scheduler could not
    /// be asked, unless `--force`).
    pub marked_ended: bool,
    /// The tasks that reached post-job (finished, or after SLURM's TERM), and
    /// the backup's outcome.
    pub result: Result<(BTreeSet<u64>, Outcome)>,
}

/// Check the id, gather the tasks' ends, back up. `Err` only for a bad id.
/// The tasks that reached post-job, and the final backup's outcome: what the
/// attempt record judges.
struct Reached((BTreeSet<u64>, Outcome));

impl create::Attempted for Reached {
    fn verdict(&self) -> Option<crate::attempts::Verdict> {
        self.0.1.verdict()
    }
}

pub(crate) fn run(
    settings: &Settings,
    job: &JobContext,
    array_arg: &str,
    force: bool,
) -> Result<FinalRun> {
    let array = sanitize(array_arg);
    if array.is_empty() || !array.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::usage(format!(
            "'{array_arg}' is not an array job id (digits, as sbatch --parsable prints)"
        )));
    }
    // SLURM's job ids start at 1; `scontrol show job 0` lists every job.
    if array.chars().all(|c| c == '0') {
        return Err(Error::usage(format!(
            "'{array_arg}' is not an array job id (job ids start at 1)"
        )));
    }
    // `0805` is job 805 to SLURM, and in pre-job's records.
    let array = super::undo::job_number(&array);
    let db = DbId::of(settings.db_path()?);
    let cluster = cluster_name(job);
    let key = super::array::key(&state_key(cluster.as_deref(), &array), &db);
    let (source, mut ends, unasked) = scheduler::task_ends(&array);
    refuse_unended(&array, source, &ends, force)?;
    let dir = BackupDir::new(&settings.backup_dir);
    let reader = JobState::reader(&dir);
    // A mistyped id would otherwise pass for "nothing to do", and plant a
    // backup labelled with a job that never existed: refused, nothing made,
    // unless `--force` (an array whose records are gone).
    let never_heard_of = ends.is_empty()
        && reader.pre_job(&key).is_none()
        && reader.reached_post_job(&key).is_ok_and(|t| t.is_empty());
    // (Only when the scheduler answered: a stuck one says nothing of the id.)
    if never_heard_of && unasked.is_none() && !force {
        return Err(Error::failed(format!(
            "the scheduler knows nothing of array {array} and no pre-job state exists for it: \
             is the id right? Nothing was backed up (`--force` backs up anyway, labelled job {array})"
        )));
    }
    let unknown = never_heard_of.then(|| {
        format!(
            "the scheduler knows nothing of array {array} and no pre-job state exists for it: \
             is the id right?"
        )
    });
    // `final` of a plain job: its own post-job backed it up; say so rather
    // than report an array of no tasks.
    let unknown = unknown.or_else(|| {
        let record = reader.pre_job(&key)?;
        (ends.is_empty()
            && record.task_ids.is_none()
            && record.final_job.is_none()
            && reader.reached_post_job(&key).is_ok_and(|t| t.is_empty()))
        .then(|| {
            format!(
                "job {array} is not an array, as far as its state and the scheduler tell \
                 (no task reported, none reached post-job, no final job submitted): \
                 a plain job's own post-job backs it up; is the id right?"
            )
        })
    });
    // Not knowing whether the tasks still run, marking the array ended could
    // leave its restore point to retention under them: it stays pinned (until
    // the pin expires) unless `--force`. The backup is made as ever.
    // An id nobody knows (a typo) has nothing to mark: said, not recorded.
    let mark = !never_heard_of && (unasked.is_none() || force);
    let unknown = unasked
        .map(|why| unasked_warning(&array, &why, force))
        .or(unknown);
    // Tasks the scheduler no longer reports (a task cancelled while pending may
    // be purged at once) are still named, when pre-job recorded every task id.
    if let Some(all) = reader.pre_job(&key).and_then(|r| r.all_tasks()) {
        for task in all {
            ends.entry(task).or_insert_with(|| TaskEnd {
                state: "UNREPORTED".into(),
                exit_code: "?".into(),
            });
        }
    }
    let result = (|| -> Result<(BTreeSet<u64>, Outcome)> {
        let db = settings.db_path()?;
        create::prepare_dir(settings, &dir, db)?;
        let lock = crate::lock::DirLock::acquire(dir.path(), job, settings.lock_timeout)?;
        let state = JobState::open(&dir, &lock)?;
        let reached = state.reached_post_job(&key)?;
        let mut tagged = job.clone();
        tagged.tag = array.clone();
        let outcome = create::if_changed(settings, &tagged, &dir, &lock, db, Kind::Final, false)?;
        if mark {
            state.mark_ended(&key)?;
        }
        Ok((reached, outcome))
    })();
    let result =
        create::recorded(settings, job, Kind::Final, result.map(Reached)).map(|Reached(done)| done);
    Ok(FinalRun {
        marked_ended: mark && result.is_ok(),
        array,
        source,
        ends,
        unknown,
        result,
    })
}

/// The warning of a `final` whose scheduler could not be asked (`why`).
fn unasked_warning(array: &str, why: &scheduler::Failure, force: bool) -> String {
    if force {
        return format!(
            "cannot tell whether array {array}'s tasks have ended ({why}); \
             --force: marking it ended now"
        );
    }
    format!(
        "cannot tell whether array {array}'s tasks have ended ({why}): the array was not \
         marked ended, so its pre-job restore point stays kept from retention until that \
         expires; `dbbackup final --force {array}` marks it ended"
    )
}

/// Refuse (unless `force`) while the scheduler reports tasks of the array not
/// ended: marked ended, the array's restore point would be left to retention
/// under tasks still writing. The final job itself starts after every task
/// ended (`afterany`), so only a `final` run early, by hand, meets this.
fn refuse_unended(
    array: &str,
    source: &str,
    ends: &BTreeMap<u64, TaskEnd>,
    force: bool,
) -> Result<()> {
    let mut by_state: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (task, end) in ends.iter().filter(|(_, end)| end.not_ended()) {
        let word = end.state.split_whitespace().next().unwrap_or("");
        by_state
            .entry(word.to_ascii_lowercase())
            .or_default()
            .insert(*task);
    }
    if by_state.is_empty() {
        return Ok(());
    }
    let tasks = by_state
        .iter()
        .map(|(state, tasks)| format!("{state} {}", ranges(tasks)))
        .collect::<Vec<_>>()
        .join(", ");
    if force {
        tracing::warn!(
            "array {array} has not ended ({source}: tasks {tasks}); --force: backing up and marking it ended now"
        );
        return Ok(());
    }
    Err(Error::failed(format!(
        "array {array} has not ended ({source}: tasks {tasks}); `final` runs after every task ended \
         (sbatch --dependency=afterany:{array}); nothing was done (--force to back up and mark it ended now)"
    )))
}

/// The cluster whose array this is: `SLURM_CLUSTER_NAME` in a job, else what
/// the controller calls itself (a login node has no such variable).
fn cluster_name(job: &JobContext) -> Option<String> {
    if job.cluster.is_some() {
        return job.cluster.clone();
    }
    match scheduler::show_config() {
        Ok(config) => config.cluster_name.map(|name| sanitize(&name)),
        Err(failure) => {
            tracing::warn!(
                "no SLURM_CLUSTER_NAME and the cluster's name is unknown ({failure}): \
                 reading the array's state as recorded without one"
            );
            None
        }
    }
}

/// `0-2,4,7-9`; `-` for none.
pub(crate) fn ranges(tasks: &BTreeSet<u64>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = tasks.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

/// `CANCELLED by 0` → `state_cancelled`: a logfmt key.
pub(crate) fn state_field(state: &str) -> String {
    let word = state.split_whitespace().next().unwrap_or("unknown");
    format!("state_{}", sanitize(word).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lists_are_compressed_to_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 4, 7, 8, 9].into()), "0-2,4,7-9");
        assert_eq!(ranges(&BTreeSet::new()), "-");
        assert_eq!(state_field("CANCELLED by 0"), "state_cancelled");
    }
}
