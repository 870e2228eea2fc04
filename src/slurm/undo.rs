//! Undoing a job: what it made (`list --job`) and the restore point from before
//! its work (`restore --before-job`) — the reason pre-job backups exist.
//!
//! The point before a job is, in order: the restore point its pre-job recorded
//! (made by it, or reused when the database was unchanged); else its own
//! `pre-job` backup (state files expire after 30 days, backups do not); else
//! the newest restore point created before the job started, as SLURM reports
//! the start (`sacct`, else `scontrol` while it remembers the job).

use std::fs;

use super::array::{JobState, STATE_DIR};
use super::scheduler;
use crate::error::{Error, Result};
use crate::store::{BackupDir, DbId, Entry, Kind};

/// A job id as a user gives it: `264` (a job, or a whole array) or `264_3`
/// (one array task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobRef {
    /// The job, or the array a task belongs to: what pre-job tags and keys.
    pub job: String,
    pub task: Option<String>,
}

impl JobRef {
    pub(crate) fn parse(text: &str) -> Result<JobRef> {
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        let (job, task) = match text.trim().split_once('_') {
            Some((job, task)) => (job, Some(task)),
            None => (text.trim(), None),
        };
        if !digits(job) || task.is_some_and(|t| !digits(t)) {
            return Err(Error::usage(format!(
                "'{text}' is not a SLURM job id (digits, or ARRAY_TASK such as 264_3)"
            )));
        }
        // SLURM's job ids start at 1; `scontrol show job 0` lists every job.
        if job.bytes().all(|b| b == b'0') {
            return Err(Error::usage(format!(
                "'{text}' is not a SLURM job id (job ids start at 1)"
            )));
        }
        Ok(JobRef {
            job: job.to_string(),
            task: task.map(str::to_string),
        })
    }

    /// Whether a backup tagged `recorded` was made by this job: its own tag,
    /// its tasks' tags (`264_*` for `264`), and the array's backups for a task.
    pub(crate) fn made(&self, recorded: &str) -> bool {
        match &self.task {
            Some(task) => recorded == self.job || recorded == format!("{}_{task}", self.job),
            None => {
                recorded == self.job
                    || recorded
                        .strip_prefix(&self.job)
                        .and_then(|rest| rest.strip_prefix('_'))
                        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            }
        }
    }
}

/// The restore point of `db` from before `job`'s work, and how it was chosen.
///
/// When the recorded point was deleted, the newest point before the job's start
/// may be older than the state at its start (the points between deleted too):
/// it is given only with `force`, else named in the error.
pub(crate) fn point_before(
    dir: &BackupDir,
    db: &DbId,
    job: &JobRef,
    force: bool,
) -> Result<(String, String)> {
    let points = dir.set(db)?.restore_points;
    let recorded = recorded_pre_job(dir, db, &job.job);
    if let Some(name) = &recorded
        && let Some(entry) = points.iter().find(|e| &e.file_name == name)
    {
        // A reused point was made by an earlier job: say whose, or `list` (which
        // shows the maker) seems to contradict this answer.
        let maker = entry.meta.as_ref().ok().map(|m| m.job.as_str());
        let how = match maker {
            Some(maker) if !maker.is_empty() && !job.made(maker) => {
                format!(" (reused: made by job {maker}, the database was unchanged)")
            }
            _ => String::new(),
        };
        return Ok((
            name.clone(),
            format!("job {}'s pre-job restore point{how}", job.job),
        ));
    }
    // Said in every answer below: the fallback is not what pre-job made.
    let deleted = recorded.map_or_else(String::new, |name| {
        format!(
            "job {}'s pre-job restore point {name} was deleted (retention, or by hand); ",
            job.job
        )
    });
    let made_by_job = |e: &Entry| e.meta.as_ref().is_ok_and(|m| job.made(&m.job));
    let own = |e: &&Entry| {
        e.meta
            .as_ref()
            .is_ok_and(|m| m.kind == Kind::PreJob && job.made(&m.job))
    };
    // Newest first: the oldest pre-job backup tagged with the job is its own.
    if let Some(entry) = points.iter().rev().find(own) {
        return Ok((
            entry.file_name.clone(),
            format!("{deleted}job {}'s pre-job backup", job.job),
        ));
    }
    let id = match &job.task {
        Some(task) => format!("{}_{task}", job.job),
        None => job.job.clone(),
    };
    let start = scheduler::start_time(&id).map_err(|failure| {
        Error::failed(format!(
            "{deleted}no pre-job restore point of job {id} in {}, and its start time is unknown ({failure}); \
             choose a restore point with `dbbackup list`",
            dir.path().display()
        ))
    })?;
    if !start.first {
        return Err(Error::failed(format!(
            "{deleted}job {id} was requeued and SLURM no longer tells its first start \
             (no accounting: sacct); choose a restore point with `dbbackup list --job {id}` \
             and `dbbackup list`"
        )));
    }
    let started = start.at;
    // Nothing the job made, nor anything after the first backup it made (a
    // backup of its own is made after it started, whatever the clock says).
    let first_own = points
        .iter()
        .filter(|e| made_by_job(e))
        .map(Entry::created)
        .min();
    let before = points
        .iter()
        .find(|e| {
            e.created() < started
                && !made_by_job(e)
                && first_own.is_none_or(|first| e.created() < first)
        })
        .ok_or_else(|| {
            Error::failed(format!(
                "{deleted}no restore point of this database was made before job {id} first started ({started})"
            ))
        })?;
    if !deleted.is_empty() && !force {
        return Err(Error::failed(format!(
            "{deleted}the newest restore point before job {id} first started ({started}) is {}, \
             which may be older than the state at its start (points between may be deleted too); \
             nothing was changed (--force to restore it, or choose with `dbbackup list`)",
            before.file_name
        )));
    }
    Ok((
        before.file_name.clone(),
        format!("{deleted}the newest restore point before job {id} first started ({started})"),
    ))
}

/// The restore point pre-job recorded for `job` (any cluster): state files are
/// named `prejob-<cluster>-<job>-<db key>`.
fn recorded_pre_job(dir: &BackupDir, db: &DbId, job: &str) -> Option<String> {
    recorded_pre_jobs(dir, Some(db), job).into_iter().next()
}

/// The restore points pre-job recorded for `job` (any cluster), of `db` or of
/// every database (`None`).
pub(crate) fn recorded_pre_jobs(dir: &BackupDir, db: Option<&DbId>, job: &str) -> Vec<String> {
    let reader = JobState::reader(dir);
    let Ok(items) = fs::read_dir(dir.path().join(STATE_DIR)) else {
        return Vec::new();
    };
    let db_key = db.map(DbId::key);
    let mut names: Vec<String> = items
        .flatten()
        .filter_map(|item| {
            let name = item.file_name().to_string_lossy().into_owned();
            let key = name.strip_prefix("prejob-")?;
            let (rest, of_db) = key.rsplit_once('-')?;
            let ours = db_key.as_deref().is_none_or(|k| k == of_db);
            if !ours || !rest.ends_with(&format!("-{job}")) {
                return None;
            }
            reader.pre_job(key)?.backup
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_and_what_a_job_made() {
        let array = JobRef::parse("264").unwrap();
        assert!(array.made("264") && array.made("264_3"));
        assert!(!array.made("2645") && !array.made("264_") && !array.made("26"));
        let task = JobRef::parse("264_3").unwrap();
        assert!(task.made("264") && task.made("264_3") && !task.made("264_4"));
        for bad in ["", "abc", "264_", "_3", "1;rm", "264_3_1", "0", "00", "0_3"] {
            assert!(JobRef::parse(bad).is_err(), "{bad}");
        }
    }
}
