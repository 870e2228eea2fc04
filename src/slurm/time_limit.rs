//! The time-limit backup (`--signal=B:USR1@N` under `dbbackup run`): back up the
//! work so far before SLURM's TERM. One backup per job (an array: per array)
//! per window: an array's tasks all receive the warning at about the same
//! moment, and a job may be sent USR1 again and again (`scancel -b -s USR1`),
//! so twenty warnings do not make twenty backups that push older restore
//! points out. The window is the interval (`min_interval_hours`), at least
//! `MIN_WINDOW`.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Settings;
use crate::create::{self, Outcome};
use crate::error::{Context, Result, show};
use crate::lock::DirLock;
use crate::slurm::array::{self, STATE_DIR};
use crate::slurm::job::JobContext;
use crate::store::{BackupDir, DbId, Kind};
use crate::units::human_duration;

/// An array's time-limit warnings within this long of its last time-limit
/// backup are served by it, whatever the interval says.
pub(crate) const MIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What the warning led to.
pub(crate) enum TimeLimit {
    /// No backup: why.
    Skipped(String),
    Made(Outcome),
}

pub(crate) fn back_up(settings: &Settings, job: &JobContext) -> Result<TimeLimit> {
    let db = settings.db_path()?;
    let dir = BackupDir::new(&settings.backup_dir);
    dir.ensure_exists()?;
    // Never waits: another task's backup (or any other) is as good as ours.
    let Some(lock) = DirLock::try_acquire(dir.path(), job)? else {
        let holder = crate::lock::holder(dir.path(), &crate::store::atomic::this_host())
            .ok()
            .and_then(|holder| holder.recorded);
        return Ok(TimeLimit::Skipped(
            crate::create::Skip::Busy(holder).to_string(),
        ));
    };
    // Outside SLURM a run has no state to share; `run` serves a burst of USR1
    // that arrives during one backup with that backup.
    let mut claimed = None;
    if job.own_id.is_some() {
        let window = settings.min_interval.max(MIN_WINDOW);
        // A requeued plain job's next run has a time limit of its own.
        let run = match &job.array {
            Some(_) => String::new(),
            None => format!("-run{}", job.restarts),
        };
        let marker = dir.path().join(STATE_DIR).join(format!(
            "timelimit-{}{run}",
            array::key(&job.state_key(), &DbId::of(db))
        ));
        if let Some(age) = age_of(&marker)
            && age < window
        {
            return Ok(TimeLimit::Skipped(format!(
                "this {}'s time-limit backup was made {} ago (one per {})",
                if job.array.is_some() { "array" } else { "job" },
                human_duration(age),
                human_duration(window)
            )));
        }
        claimed = Some(marker);
    }
    // Stamped with the backup's start, written only once it exists: a backup
    // that failed (or was interrupted, or killed) claims no window, so the
    // next warning, of this task or another, tries again, and "was made" is
    // never said of a backup that was not made. The lock serializes attempts.
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut job = job.clone();
    job.tag = job.job_id().to_string();
    let outcome = create::if_changed(settings, &job, &dir, &lock, db, Kind::Auto, false)?;
    // Nothing was made, so nothing was pushed out: a later warning, after the
    // work wrote, still gets its backup.
    if let (Outcome::Created(_), Some(marker)) = (&outcome, claimed) {
        claim(&dir, &marker, started.as_secs());
    }
    Ok(TimeLimit::Made(outcome))
}

/// Record the window's backup. The backup exists either way: a marker that
/// cannot be written costs at most one more backup at the next warning.
fn claim(dir: &BackupDir, marker: &std::path::Path, at: u64) {
    let parent = dir.path().join(STATE_DIR);
    let written = crate::store::perms::create_dir_all(&parent)
        .context(|| format!("cannot create {}", show(&parent)))
        .and_then(|()| crate::store::replace_file(marker, 0o664, format!("{at}\n").as_bytes()));
    if let Err(error) = written {
        tracing::warn!("cannot record this time-limit backup's window: {error}");
    }
}

/// How long ago the marker says the last time-limit backup was claimed.
fn age_of(marker: &std::path::Path) -> Option<Duration> {
    let text = fs::read_to_string(marker).ok()?;
    let at = UNIX_EPOCH + Duration::from_secs(text.trim().parse().ok()?);
    Some(SystemTime::now().duration_since(at).unwrap_or_default())
}
