//! What the tasks of a job share through the backup directory: its pre-job
//! restore point (or the failed attempt, so that not every task retries it), the
//! final job submitted for it, which array tasks finished (a set, so a requeued
//! task counts once), and whether the job has ended.
//!
//! Files live in `.dbbackup-state/`, named by `<cluster>-<job id>` (job ids repeat
//! across clusters sharing a filesystem), are replaced atomically (temp file +
//! rename) and written only under the directory lock. Reading needs no lock:
//! a reader sees the old file or the new one, never half of one. They expire
//! after 30 days.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::scheduler::JobId;
use crate::error::{Context, Result, show};
use crate::lock::DirLock;
use crate::store::{BackupDir, DbId, replace_file, sync_dir};

pub(crate) const STATE_DIR: &str = ".dbbackup-state";
const EXPIRY: Duration = Duration::from_secs(30 * 86_400);
/// A temp file this old is no live writer's (they write a few lines at once).
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// A job that never said it ended (killed, opted out of the final job) stops
/// protecting its restore point from retention after this long.
const PROTECT_FOR: Duration = Duration::from_secs(14 * 86_400);

/// A job's pre-job record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PreJob {
    /// The restore point that serves this job.
    pub backup: Option<String>,
    /// The failed snapshot attempt, kept as evidence; other tasks do not retry.
    pub failed: Option<String>,
    /// The final job submitted for this array, or why submitting failed.
    pub final_job: Option<FinalJob>,
    /// The array's task ids, when SLURM's variables tell them all: a range whose
    /// size equals the task count (`0-3`, `1-10:3`; not a sparse list).
    pub task_ids: Option<String>,
    /// The cluster's KillWait (s), read once at pre-job: what bounds the work
    /// after SLURM's TERM, without asking the controller at its busiest moment.
    pub kill_wait: Option<u64>,
    /// The database was locked past the busy timeout when pre-job tried (when,
    /// and what was said): the other tasks do not wait for it again.
    pub busy: Option<String>,
    /// When the record was first written: a record made before SLURM says
    /// this job was submitted is an earlier job's that had the same id.
    pub made: Option<jiff::Timestamp>,
    /// SLURM's `SubmitTime` of the job as pre-job read it (never requeued
    /// then): the controller's clock, compared with the controller's.
    pub submitted: Option<jiff::Timestamp>,
}

/// The array's final job, as pre-job's sbatch answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FinalJob {
    Submitted(JobId),
    NotSubmitted(String),
}

impl fmt::Display for FinalJob {
    /// What the summary line's `final` field says.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FinalJob::Submitted(JobId(id)) => write!(f, "{id}"),
            FinalJob::NotSubmitted(why) => write!(f, "not submitted: {why}"),
        }
    }
}

impl PreJob {
    /// Every task id of the array, from `task_ids` (`MIN-MAX:STEP`).
    pub(crate) fn all_tasks(&self) -> Option<Vec<u64>> {
        let (range, step) = self.task_ids.as_deref()?.split_once(':')?;
        let (min, max) = range.split_once('-')?;
        let (min, max, step): (u64, u64, u64) =
            (min.parse().ok()?, max.parse().ok()?, step.parse().ok()?);
        // Bounded: SLURM's MaxArraySize is at most 4,000,001.
        if step == 0 || max < min || (max - min) / step > 4_000_000 {
            return None;
        }
        Some((min..=max).step_by(step as usize).collect())
    }

    /// The JSON record, or the `key=value` lines earlier builds wrote (an
    /// older binary may still write them beside a newer one during an upgrade).
    fn parse(text: &str) -> PreJob {
        match serde_json::from_str::<Stored>(text) {
            Ok(stored) => stored.into(),
            Err(_) => Self::parse_lines(text),
        }
    }

    fn parse_lines(text: &str) -> PreJob {
        let mut stored = Stored::default();
        for line in text.lines() {
            let value = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
            match line.split_once('=') {
                Some(("backup", v)) => stored.backup = value(v),
                Some(("failed", v)) => stored.failed = value(v),
                Some(("final", v)) => stored.final_id = value(v),
                Some(("final_error", v)) => stored.final_error = value(v),
                Some(("tasks", v)) => stored.tasks = value(v),
                Some(("kill_wait", v)) => stored.kill_wait = v.trim().parse().ok(),
                Some(("busy", v)) => stored.busy = value(v),
                // Before keys existed the file held just the backup's name.
                None if stored.backup.is_none() => stored.backup = value(line),
                _ => {}
            }
        }
        stored.into()
    }

    fn render(&self) -> String {
        let mut text = serde_json::to_string(&Stored::from(self)).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// A pre-job record as stored: one JSON object whose keys are those of the
/// `key=value` lines earlier builds wrote.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
    /// The submitted final job's id.
    #[serde(default, rename = "final", skip_serializing_if = "Option::is_none")]
    final_id: Option<String>,
    /// Why the final job was not submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tasks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kill_wait: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    busy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    made: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    submitted: Option<jiff::Timestamp>,
}

impl From<Stored> for PreJob {
    fn from(stored: Stored) -> PreJob {
        let final_job = match (stored.final_id, stored.final_error) {
            (_, Some(why)) => Some(FinalJob::NotSubmitted(why)),
            // Older versions wrote `final=not submitted: why`.
            (Some(id), None) if !id.chars().all(|c| c.is_ascii_digit()) => {
                let why = id.strip_prefix("not submitted: ").unwrap_or(&id);
                Some(FinalJob::NotSubmitted(why.to_string()))
            }
            (Some(id), None) => Some(FinalJob::Submitted(JobId(id))),
            (None, None) => None,
        };
        PreJob {
            backup: stored.backup,
            failed: stored.failed,
            final_job,
            task_ids: stored.tasks,
            kill_wait: stored.kill_wait,
            busy: stored.busy,
            made: stored.made,
            submitted: stored.submitted,
        }
    }
}

impl From<&PreJob> for Stored {
    fn from(record: &PreJob) -> Stored {
        let (final_id, final_error) = match &record.final_job {
            Some(FinalJob::Submitted(JobId(id))) => (Some(id.clone()), None),
            Some(FinalJob::NotSubmitted(why)) => (None, Some(why.clone())),
            None => (None, None),
        };
        Stored {
            backup: record.backup.clone(),
            failed: record.failed.clone(),
            final_id,
            final_error,
            tasks: record.task_ids.clone(),
            kill_wait: record.kill_wait,
            busy: record.busy.clone(),
            made: record.made,
            submitted: record.submitted,
        }
    }
}

/// A restore point retention keeps because its job may still run (pre-job's
/// promise): the job has not said it ended (post-job after SLURM's TERM, a
/// job killed, an array whose final job has not run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    pub backup: String,
    /// The job's state key, `<cluster>-<job id>-<db key>`.
    pub key: String,
    /// Kept until then if the job never says it ended.
    pub until: jiff::Timestamp,
}

impl Pin {
    /// The cluster (`-`: SLURM named none) and the job id in the key.
    pub(crate) fn job(&self) -> (&str, &str) {
        job_of_key(&self.key)
    }
}

/// `(cluster, job id)` in a state key `<cluster>-<job id>-<db key>` (`-`:
/// SLURM named no cluster).
pub(crate) fn job_of_key(key: &str) -> (&str, &str) {
    let rest = key.rsplit_once('-').map_or("", |(rest, _db)| rest);
    rest.rsplit_once('-').unwrap_or(("-", rest))
}

/// The database key in a state key `<cluster>-<job id>-<db key>`.
pub(crate) fn db_of_key(key: &str) -> &str {
    key.rsplit_once('-').map_or(key, |(_, db)| db)
}

/// The key of one job's state for one database: `<cluster>-<job id>-<db key>`.
/// Databases sharing a backup directory each need their own restore point and
/// their own count of finished tasks.
pub(crate) fn key(job_key: &str, db: &DbId) -> String {
    format!("{job_key}-{}", db.key())
}

pub(crate) struct JobState {
    dir: PathBuf,
}

impl JobState {
    /// The state of `backups`, created if missing; written under its lock.
    pub(crate) fn open(backups: &BackupDir, _lock: &DirLock) -> Result<JobState> {
        let dir = backups.path().join(STATE_DIR);
        crate::store::perms::create_dir_all(&dir)
            .context(|| format!("cannot create {}", show(&dir)))?;
        let state = JobState { dir };
        state.expire();
        Ok(state)
    }

    /// Read-only view, without the lock and without creating anything.
    pub(crate) fn reader(backups: &BackupDir) -> JobState {
        JobState {
            dir: backups.path().join(STATE_DIR),
        }
    }

    pub(crate) fn pre_job(&self, key: &str) -> Option<PreJob> {
        let text = fs::read_to_string(self.dir.join(format!("prejob-{key}"))).ok()?;
        Some(PreJob::parse(&text))
    }

    pub(crate) fn record_pre_job(&self, key: &str, record: &PreJob) -> Result<()> {
        self.write(&format!("prejob-{key}"), &record.render())
    }

    /// Record that `task` of the array `key` finished; returns how many distinct
    /// tasks have finished so far.
    pub(crate) fn finish_task(&self, key: &str, task: u64) -> Result<u64> {
        let mut tasks = self.finished_tasks(key)?;
        tasks.insert(task);
        let text: String = tasks.iter().map(|t| format!("{t}\n")).collect();
        self.write(&format!("finished-{key}"), &text)?;
        Ok(tasks.len() as u64)
    }

    /// Record that `task` of the array `key` ran post-job after SLURM's TERM
    /// (not counted as finished: it may be requeued).
    pub(crate) fn term_task(&self, key: &str, task: u64) -> Result<()> {
        let mut tasks = self.read_set(&format!("termed-{key}"))?;
        tasks.insert(task);
        let text: String = tasks.iter().map(|t| format!("{t}\n")).collect();
        self.write(&format!("termed-{key}"), &text)
    }

    /// The array tasks that ran post-job to the end of their work.
    pub(crate) fn finished_tasks(&self, key: &str) -> Result<BTreeSet<u64>> {
        self.read_set(&format!("finished-{key}"))
    }

    /// Every array task that reached post-job: finished, or after SLURM's TERM.
    pub(crate) fn reached_post_job(&self, key: &str) -> Result<BTreeSet<u64>> {
        let mut tasks = self.finished_tasks(key)?;
        tasks.extend(self.read_set(&format!("termed-{key}"))?);
        Ok(tasks)
    }

    fn read_set(&self, name: &str) -> Result<BTreeSet<u64>> {
        let path = self.dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(e) => Err(e).context(|| format!("cannot read {}", show(&path))),
        }
    }

    /// Claim the submission of `key`'s final job: `Ok(true)` for exactly one
    /// caller. A create-once marker, so it holds without the directory lock and
    /// on a full disk (an empty file needs no data blocks), where neither the
    /// lock's holder line nor a state file can be written.
    pub(crate) fn claim_final(backups: &BackupDir, key: &str) -> Result<bool> {
        let dir = backups.path().join(STATE_DIR);
        crate::store::perms::create_dir_all(&dir)
            .context(|| format!("cannot create {}", show(&dir)))?;
        let marker = dir.join(format!("final-{key}"));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o664)
            .open(&marker)
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).context(|| format!("cannot create {}", show(&marker))),
        }
    }

    /// Note that pre-job of `key` ended without a restore point (the directory
    /// lock not had, a full disk, a failed snapshot not recorded otherwise), so
    /// `restore --before-job` does not take the newest older point for the state
    /// at the job's start without saying so. Like `claim_final`, a create-once
    /// file written without the lock (which may be what was missing); the reason
    /// is best effort (a full disk takes the empty file, not its text).
    pub(crate) fn note_no_point(backups: &BackupDir, key: &str, why: &str) {
        let marker = backups
            .path()
            .join(STATE_DIR)
            .join(format!("nopoint-{key}"));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o664)
            .open(&marker);
        if let Ok(mut file) = file {
            let _ = io::Write::write_all(&mut file, why.lines().next().unwrap_or("").as_bytes());
        }
    }

    /// Why pre-job of `key` made no restore point, as noted by `note_no_point`
    /// (empty when its reason could not be written).
    pub(crate) fn no_point(&self, key: &str) -> Option<String> {
        fs::read_to_string(self.dir.join(format!("nopoint-{key}"))).ok()
    }

    /// The state keys of the files named `<kind>-<key>` (`prejob`,
    /// `nopoint`), in name order: the one listing every reader of the jobs'
    /// records goes through (parse them with [`job_of_key`], [`db_of_key`]).
    pub(crate) fn keys(&self, kind: &str) -> Vec<String> {
        let prefix = format!("{kind}-");
        let items = fs::read_dir(&self.dir).into_iter().flatten().flatten();
        let mut keys: Vec<String> = items
            .filter_map(|item| {
                Some(
                    item.file_name()
                        .to_str()?
                        .strip_prefix(&prefix)?
                        .to_string(),
                )
            })
            .collect();
        keys.sort();
        keys
    }

    /// Forget an earlier job's state under `key`: SLURM gave its id again (a
    /// controller whose state was reset). Its restore point stays a backup
    /// like any other; its tasks' counts, end and final job are not this job's.
    pub(crate) fn set_aside(&self, key: &str) -> Result<()> {
        // A time-limit marker is `timelimit-<key>`, or `…-run<N>` per requeue.
        let time_limits = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|item| item.file_name().into_string().ok())
            .filter(|name| {
                name.strip_prefix("timelimit-")
                    .and_then(|rest| rest.strip_prefix(key))
                    .is_some_and(|run| run.is_empty() || run.starts_with("-run"))
            });
        let kinds = ["prejob", "finished", "termed", "ended", "final", "nopoint"];
        let names: Vec<String> = kinds
            .iter()
            .map(|kind| format!("{kind}-{key}"))
            .chain(time_limits)
            .collect();
        for name in names {
            let path = self.dir.join(name);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(e).context(|| format!("cannot remove {}", show(&path)));
                }
                _ => {}
            }
        }
        sync_dir(&self.dir)
    }

    /// A job requeued after it had said it ended (`scontrol requeue` of a
    /// finished array or job): it runs again, so its restore point is kept
    /// again until it says so anew (T22 F7).
    pub(crate) fn reopen(&self, key: &str) {
        let _ = fs::remove_file(self.dir.join(format!("ended-{key}")));
        // Its pin runs PROTECT_FOR from the record's time: from now again.
        if let Ok(record) = fs::File::options()
            .write(true)
            .open(self.dir.join(format!("prejob-{key}")))
        {
            let _ = record.set_modified(SystemTime::now());
        }
    }

    /// Whether the job of `key` has said it ended (post-job or the final job).
    pub(crate) fn ended(&self, key: &str) -> bool {
        self.dir.join(format!("ended-{key}")).exists()
    }

    /// The job has ended: its restore point no longer needs protecting.
    pub(crate) fn mark_ended(&self, key: &str) -> Result<()> {
        self.write(&format!("ended-{key}"), "")
    }

    /// Restore points of jobs that have not ended: retention keeps them.
    pub(crate) fn protected(backups: &BackupDir) -> HashSet<String> {
        JobState::pins(backups)
            .into_iter()
            .map(|pin| pin.backup)
            .collect()
    }

    /// Each restore point kept for a job that has not said it ended, and until
    /// when (`PROTECT_FOR` after its pre-job record was last written).
    pub(crate) fn pins(backups: &BackupDir) -> Vec<Pin> {
        let reader = JobState::reader(backups);
        let now = SystemTime::now();
        let mut pins = Vec::new();
        for key in reader.keys("prejob") {
            let Some(until) = fs::metadata(reader.dir.join(format!("prejob-{key}")))
                .and_then(|m| m.modified())
                .ok()
                .map(|t| t + PROTECT_FOR)
                .filter(|&until| until > now)
            else {
                continue;
            };
            if reader.ended(&key) {
                continue;
            }
            if let Some(backup) = reader.pre_job(&key).and_then(|r| r.backup) {
                pins.push(Pin {
                    backup,
                    key,
                    until: jiff::Timestamp::try_from(until).unwrap_or(jiff::Timestamp::MAX),
                });
            }
        }
        pins
    }

    /// Replace a state file atomically: temp file, flush, rename.
    fn write(&self, name: &str, text: &str) -> Result<()> {
        replace_file(&self.dir.join(name), 0o664, text.as_bytes())?;
        sync_dir(&self.dir)
    }

    /// Old state files go; so do temp files left by a dead writer. Files here
    /// are also written without the lock (identity, attempt records, time-limit
    /// markers: temp + rename), so a live process's temp file is never touched:
    /// only those of dead processes on this host, or older than `STALE_TEMP`
    /// (another host's, whose process cannot be checked).
    fn expire(&self) {
        crate::store::remove_dead_temps_in(&self.dir);
        let Ok(items) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for item in items.flatten() {
            let age = item
                .metadata()
                .and_then(|m| m.modified())
                .map(|modified| now.duration_since(modified).unwrap_or_default())
                .unwrap_or_default();
            let name = item.file_name().to_string_lossy().into_owned();
            let temp = name.starts_with(crate::store::TEMP_PREFIX);
            // A lock file (`remote::serial`) is never removed: a process that
            // opened it before would hold a lock a newly created one ignores.
            if name.ends_with(".lock") {
                continue;
            }
            // The last restore into a database stays (one small file per
            // database): once gone, a pre-restore-size point that keep_daily or
            // keep_weekly still holds would read as a shrink again.
            let restore_record = name.starts_with("restored-");
            if (age > EXPIRY && !restore_record) || (temp && age > STALE_TEMP) {
                let _ = fs::remove_file(item.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_state_expires_but_the_last_restore_record_stays() {
        let root = tempfile::tempdir().unwrap();
        let backups = BackupDir::new(root.path());
        let state = root.path().join(STATE_DIR);
        fs::create_dir(&state).unwrap();
        let old = SystemTime::now() - EXPIRY - Duration::from_secs(86_400);
        for name in ["restored-abc", "prejob-x-1-abc"] {
            let file = fs::File::create(state.join(name)).unwrap();
            file.set_modified(old).unwrap();
        }
        let job = crate::slurm::job::JobContext::from_lookup(|_| None, "n1".into());
        let lock = DirLock::try_acquire(root.path(), &job).unwrap().unwrap();
        JobState::open(&backups, &lock).unwrap();
        assert!(state.join("restored-abc").exists());
        assert!(!state.join("prejob-x-1-abc").exists());
    }

    #[test]
    fn records_round_trip_and_old_files_still_read() {
        let record = PreJob {
            backup: Some("backup_20250101_000000.db.gz".into()),
            failed: None,
            final_job: Some(FinalJob::Submitted(JobId("77".into()))),
            task_ids: Some("0-3:1".into()),
            kill_wait: Some(5),
            busy: None,
            made: None,
            submitted: None,
        };
        assert_eq!(PreJob::parse(&record.render()), record);
        let dated = PreJob {
            made: Some("2026-12-06T10:00:00Z".parse().unwrap()),
            ..record.clone()
        };
        assert_eq!(PreJob::parse(&dated.render()), dated);
        assert!(dated.render().contains(r#""made":"2026-12-06T10:00:00Z""#));
        let refused = PreJob {
            final_job: Some(FinalJob::NotSubmitted("Invalid account".into())),
            busy: Some("locked".into()),
            ..PreJob::default()
        };
        assert_eq!(PreJob::parse(&refused.render()), refused);
        // One JSON line, with the keys of the earlier lines.
        let json: serde_json::Value = serde_json::from_str(&record.render()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"backup": "backup_20250101_000000.db.gz", "final": "77",
                "tasks": "0-3:1", "kill_wait": 5})
        );
        let json: serde_json::Value = serde_json::from_str(&refused.render()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"final_error": "Invalid account", "busy": "locked"})
        );
        // What earlier builds (or an older binary beside this one) wrote.
        let old = "backup=backup_20250101_000000.db.gz\nfinal=77\ntasks=0-3:1\nkill_wait=5\n";
        assert_eq!(PreJob::parse(old), record);
        let old = "final_error=Invalid account\nbusy=locked\n";
        assert_eq!(PreJob::parse(old), refused);
        let later = r#"{"backup": "b.db.gz", "a_later_field": 1}"#;
        assert_eq!(PreJob::parse(later).backup.as_deref(), Some("b.db.gz"));
        assert_eq!(
            PreJob::parse("final=not submitted: x\n").final_job,
            Some(FinalJob::NotSubmitted("x".into()))
        );
        assert_eq!(
            PreJob::parse("backup_20250101_000000.db.gz\n")
                .backup
                .as_deref(),
            Some("backup_20250101_000000.db.gz")
        );
    }

    #[test]
    fn expiry_removes_old_records_but_never_a_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - EXPIRY - Duration::from_secs(86_400);
        for name in ["prejob-c-1-k", "upload-0a1b2c.lock"] {
            let file = fs::File::create(dir.path().join(name)).unwrap();
            file.set_modified(old).unwrap();
        }
        JobState {
            dir: dir.path().to_path_buf(),
        }
        .expire();
        assert!(!dir.path().join("prejob-c-1-k").exists());
        assert!(dir.path().join("upload-0a1b2c.lock").exists());
    }

    #[test]
    fn setting_aside_an_earlier_jobs_state_leaves_other_jobs_alone() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = [
            "prejob-c-9-k",
            "finished-c-9-k",
            "termed-c-9-k",
            "ended-c-9-k",
            "final-c-9-k",
            "nopoint-c-9-k",
            "timelimit-c-9-k",
            "timelimit-c-9-k-run1",
        ];
        let others = [
            "prejob-c-90-k",
            "timelimit-c-90-k",
            "restored-k",
            "identity-c-9",
        ];
        for name in earlier.iter().chain(&others) {
            fs::write(dir.path().join(name), "").unwrap();
        }
        JobState {
            dir: dir.path().to_path_buf(),
        }
        .set_aside("c-9-k")
        .unwrap();
        for name in earlier {
            assert!(!dir.path().join(name).exists(), "{name}");
        }
        for name in others {
            assert!(dir.path().join(name).exists(), "{name}");
        }
    }
}
