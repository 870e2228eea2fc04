//! Undoing a job: what it made (`list --job`) and the restore point from before
//! its work (`restore --before-job`) — the reason pre-job backups exist.
//!
//! The point before a job is, in order: the restore point its pre-job recorded
//! (made by it, or reused when the database was unchanged); else its own
//! `pre-job` backup (state files expire after 30 days, backups do not); else
//! the newest restore point created before the job started, as SLURM reports
//! the start (`sacct`, else `scontrol` while it remembers the job).

use super::array::{JobState, db_of_key, job_of_key};
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
            job: job_number(job),
            task: task.map(job_number),
        })
    }

    /// `text` as [`JobRef::parse`] reads it, where an array task's own job id
    /// (`265`, what `$SLURM_JOB_ID` and slurmstepd's messages show for task
    /// `264_0`) is that task: its state is kept under its array (T23 #6).
    pub(crate) fn parse_in(text: &str, dir: &BackupDir) -> Result<JobRef> {
        let job = JobRef::parse(text)?;
        if job.task.is_some() || !pre_job_records(dir, &job.job).is_empty() {
            return Ok(job);
        }
        // SLURM first: a recorded identity may be an earlier job's that had
        // this id; it serves when SLURM no longer knows the job.
        let task = match scheduler::show_job(&job.job) {
            Ok(record) => record.array.filter(|(array, _)| *array != job.job),
            Err(_) => recorded_task(dir, &job.job),
        };
        Ok(match task {
            Some((array, task)) => JobRef {
                job: array,
                task: Some(task.to_string()),
            },
            None => job,
        })
    }

    /// As the user wrote it: `264` or `264_3`.
    pub(crate) fn id(&self) -> String {
        match &self.task {
            Some(task) => format!("{}_{task}", self.job),
            None => self.job.clone(),
        }
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

/// `0805` as SLURM reads it (`scontrol show job 0805` is job 805): the tags
/// and state files hold `805`. All zeros stays `0` (a task id).
pub(crate) fn job_number(digits: &str) -> String {
    match digits.trim_start_matches('0') {
        "" => "0".to_string(),
        number => number.to_string(),
    }
}

/// The restore point of `db` from before `job`'s work, and how it was chosen.
///
/// `force`: take this database's state from before the job even when the job
/// backed up another database only, or when the recorded point was deleted (or
/// pre-job recorded that it made none) and
/// the newest point before the job's start may be older than the state at its
/// start (the points between deleted too); without it that point is named in
/// the error.
pub(crate) fn point_before(
    dir: &BackupDir,
    db: &DbId,
    job: &JobRef,
    force: bool,
) -> Result<(String, String)> {
    let set = dir.set(db)?;
    let damaged: Vec<String> = set.damaged.iter().map(|e| e.file_name.clone()).collect();
    let points = set.restore_points;
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
    // Said in every answer below: the fallback is not what pre-job made (it
    // was deleted, or pre-job recorded that it made none).
    let deleted = recorded
        .map(|name| {
            // Present but unreadable: say so, or the user hunts for who deleted it.
            let what = if damaged.contains(&name) {
                format!("is damaged (`dbbackup verify {name}`)")
            } else {
                "was deleted (retention, or by hand)".to_string()
            };
            format!("job {}'s pre-job restore point {name} {what}; ", job.job)
        })
        .or_else(|| failed_pre_job(dir, db, &job.job))
        .unwrap_or_default();
    let earlier_job = of_an_earlier_job(job);
    let made_by_job =
        |e: &Entry| e.meta.as_ref().is_ok_and(|m| job.made(&m.job)) && !earlier_job(e);
    let own = |e: &&Entry| {
        e.meta
            .as_ref()
            .is_ok_and(|m| m.kind == Kind::PreJob && job.made(&m.job))
            && !earlier_job(e)
    };
    // Newest first: the oldest pre-job backup tagged with the job is its own.
    if let Some(entry) = points.iter().rev().find(own) {
        return Ok((
            entry.file_name.clone(),
            format!("{deleted}job {}'s pre-job backup", job.job),
        ));
    }
    let id = job.id();
    if !force && let Some(source) = other_database(dir, db, job, &set.others) {
        return Err(Error::failed(format!(
            "job {id} backed up {source}, not {}: `dbbackup --db-path {source} restore --before-job {id}` \
             (--force: this database's state from before the job started)",
            db.canonical().display()
        )));
    }
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

/// Whether a backup tagged with `job`'s id was made before SLURM's record of
/// the job begins: an earlier job's that had the same id (T22 F5).
fn of_an_earlier_job(job: &JobRef) -> impl Fn(&Entry) -> bool {
    let submitted = scheduler::first_run_submitted(&job.job);
    move |e| submitted.is_some_and(|at| e.created() < at - super::prejob::CLOCKS_APART)
}

/// Other jobs whose backups of `db` are newer than `point` (each once, newest
/// backup first): restoring `point` undoes their work too, which "undo job J"
/// does not say by itself. Their restore points stay.
pub(crate) fn later_jobs(
    dir: &BackupDir,
    db: &DbId,
    job: &JobRef,
    point: &str,
) -> Vec<(String, String)> {
    let Ok(set) = dir.set(db) else {
        return Vec::new();
    };
    let points = set.restore_points;
    let Some(chosen) = points.iter().find(|e| e.file_name == point) else {
        return Vec::new();
    };
    let mut later: Vec<(String, String)> = Vec::new();
    // Newest first.
    for entry in points.iter().filter(|e| e.order() > chosen.order()) {
        let Ok(meta) = &entry.meta else { continue };
        let tag = meta.job.as_str();
        if tag.is_empty() || tag == "local" || job.made(tag) {
            continue;
        }
        // An array task's tag names its array: one job.
        let whose = tag
            .split_once('_')
            .map_or(tag, |(array, _)| array)
            .to_string();
        if !later.iter().any(|(j, _)| *j == whose) {
            later.push((whose, entry.file_name.clone()));
        }
    }
    later
}

/// Undoing a job in the middle of it leaves neither the state before it nor
/// its result: the running tasks write on top of the restored database, and
/// their post-job and final backups record that mix as the job's outcome. So
/// a job SLURM reports not ended, or (SLURM no longer knowing it) whose end
/// dbbackup never recorded, is refused; `--force` skips this.
/// Asked of the whole job (an array: all its tasks write the one database),
/// and said of it.
pub(crate) fn refuse_while_running(dir: &BackupDir, db: &DbId, job: &JobRef) -> Result<()> {
    let id = &job.job;
    let unrecorded_end = || {
        let reader = JobState::reader(dir);
        let keys = job_keys(&reader, "prejob", Some(db), &job.job);
        keys.iter().any(|key| !reader.ended(key))
    };
    match scheduler::running(&job.job) {
        Ok(scheduler::Running::No) => Ok(()),
        Ok(scheduler::Running::Yes(state)) => Err(Error::failed(format!(
            "job {id} is still running (SLURM: {state}): scancel it first, or --force"
        ))),
        // No SLURM here, or it forgot the job: dbbackup's own record decides.
        Ok(scheduler::Running::Unknown) | Err(scheduler::Failure::Missing(_)) => {
            if unrecorded_end() {
                return Err(Error::failed(format!(
                    "job {id} has not ended by dbbackup's record (its pre-job ran, no post-job or final job ended it) \
                     and SLURM does not know it: if it still runs, scancel it first; else --force"
                )));
            }
            Ok(())
        }
        Err(failure) => Err(Error::failed(format!(
            "cannot ask SLURM whether job {id} is still running ({failure}): --force to restore anyway"
        ))),
    }
}

/// The database job `job` made its pre-job restore point of, when that is not
/// `db` (its pre-job record, or its `pre-job` backup, is of another database).
fn other_database(dir: &BackupDir, db: &DbId, job: &JobRef, others: &[Entry]) -> Option<String> {
    let recorded = pre_job_records(dir, &job.job)
        .into_iter()
        .filter(|(key, _)| *key != db.key())
        .map(|(_, backup)| backup)
        .collect::<Vec<_>>();
    others.iter().find_map(|entry| {
        let meta = entry.meta.as_ref().ok()?;
        let ours = recorded.contains(&entry.file_name)
            || (meta.kind == Kind::PreJob && job.made(&meta.job));
        ours.then(|| meta.source.clone())
    })
}

/// The array task job `id` is, as its pre-job recorded SLURM's word
/// (`identity-<cluster>-<id>`: `array=264_0`).
fn recorded_task(dir: &BackupDir, id: &str) -> Option<(String, u64)> {
    let state = dir.path().join(super::array::STATE_DIR);
    let suffix = format!("-{id}");
    std::fs::read_dir(state)
        .ok()?
        .flatten()
        .filter(|item| {
            item.file_name()
                .to_str()
                .is_some_and(|name| name.starts_with("identity-") && name.ends_with(&suffix))
        })
        .find_map(|item| super::identity::read_decision(&item.path()).flatten())
        .filter(|(array, _)| array != id)
}

/// `(database key, restore point)` of every pre-job record of `job` (state
/// files `prejob-<cluster>-<job>-<db key>`).
fn pre_job_records(dir: &BackupDir, job: &str) -> Vec<(String, String)> {
    let reader = JobState::reader(dir);
    job_keys(&reader, "prejob", None, job)
        .into_iter()
        .filter_map(|key| Some((db_of_key(&key).to_string(), reader.pre_job(&key)?.backup?)))
        .collect()
}

/// The state keys of `kind` (`prejob`, `nopoint`) of `job` (any cluster),
/// of `db` or of every database (`None`).
fn job_keys(reader: &JobState, kind: &str, db: Option<&DbId>, job: &str) -> Vec<String> {
    let db_key = db.map(DbId::key);
    reader
        .keys(kind)
        .into_iter()
        .filter(|key| {
            job_of_key(key).1 == job && db_key.as_deref().is_none_or(|k| k == db_of_key(key))
        })
        .collect()
}

/// What pre-job recorded when it made no restore point of `db` for `job` (its
/// snapshot failed the check, or the database stayed locked), as the start of
/// an answer: the newest point before the job may then be older than its start.
fn failed_pre_job(dir: &BackupDir, db: &DbId, job: &str) -> Option<String> {
    let reader = JobState::reader(dir);
    let mut keys = job_keys(&reader, "prejob", Some(db), job);
    keys.extend(job_keys(&reader, "nopoint", Some(db), job));
    keys.iter().find_map(|key| {
        let Some(record) = reader.pre_job(key) else {
            // Pre-job ended in an error that left no record (no lock, a full disk).
            let why = reader.no_point(key)?;
            let why = if why.is_empty() { String::new() } else { format!(" ({why})") };
            return Some(format!("job {job}'s pre-job made no restore point{why}; "));
        };
        if record.backup.is_some() {
            return None;
        }
        if let Some(failed) = record.failed {
            return Some(format!(
                "job {job}'s pre-job snapshot failed its integrity check (kept as {failed}), so it has no restore point; "
            ));
        }
        match (record.busy, reader.no_point(key)) {
            (Some(why), _) | (None, Some(why)) if !why.is_empty() => {
                Some(format!("job {job}'s pre-job made no restore point ({why}); "))
            }
            (None, Some(_)) => Some(format!("job {job}'s pre-job made no restore point; ")),
            _ => None,
        }
    })
}

/// The restore point pre-job recorded for `job` (any cluster): state files are
/// named `prejob-<cluster>-<job>-<db key>`.
/// A record made before SLURM's record of `job` begins is an earlier job's
/// that had the same id (T22 F5): not this job's.
pub(crate) fn recorded_pre_job(dir: &BackupDir, db: &DbId, job: &str) -> Option<String> {
    let reader = JobState::reader(dir);
    job_keys(&reader, "prejob", Some(db), job)
        .iter()
        .filter_map(|key| reader.pre_job(key))
        .filter(|record| super::prejob::made_before_job(job, record).is_none())
        .filter_map(|record| record.backup)
        .min()
}

/// The restore points pre-job recorded for `job` (any cluster), of `db` or of
/// every database (`None`).
pub(crate) fn recorded_pre_jobs(dir: &BackupDir, db: Option<&DbId>, job: &str) -> Vec<String> {
    let reader = JobState::reader(dir);
    let mut names: Vec<String> = job_keys(&reader, "prejob", db, job)
        .iter()
        .filter_map(|key| reader.pre_job(key)?.backup)
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
        let padded = JobRef::parse("0264_03").unwrap();
        assert_eq!((padded.job.as_str(), padded.id()), ("264", "264_3".into()));
        assert_eq!(JobRef::parse("264_00").unwrap().id(), "264_0");
        let task = JobRef::parse("264_3").unwrap();
        assert!(task.made("264") && task.made("264_3") && !task.made("264_4"));
        for bad in ["", "abc", "264_", "_3", "1;rm", "264_3_1", "0", "00", "0_3"] {
            assert!(JobRef::parse(bad).is_err(), "{bad}");
        }
    }
}
