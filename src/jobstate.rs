//! What array tasks share through the backup directory, read and written only
//! under the directory lock: which job already has its pre-job backup, and which
//! tasks of an array have finished (a set, so a requeued task counts once).
//! Files live in `.dbbackup-state/` and expire after 30 days.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::error::{Context, Result, show};
use crate::store::{BackupDir, TempFile, sync_dir};

pub const STATE_DIR: &str = ".dbbackup-state";
const EXPIRY: Duration = Duration::from_secs(30 * 86_400);

pub struct JobState {
    dir: PathBuf,
}

impl JobState {
    /// The state of `backups`; the caller holds its lock.
    pub fn open(backups: &BackupDir) -> Result<JobState> {
        let dir = backups.path().join(STATE_DIR);
        fs::create_dir_all(&dir).context(|| format!("cannot create {}", show(&dir)))?;
        let state = JobState { dir };
        state.expire();
        Ok(state)
    }

    /// The backup that serves as `job_id`'s pre-job restore point, if made.
    pub fn pre_job_backup(&self, job_id: &str) -> Option<String> {
        let text = fs::read_to_string(self.dir.join(format!("prejob-{job_id}"))).ok()?;
        Some(text.trim().to_string()).filter(|name| !name.is_empty())
    }

    pub fn record_pre_job(&self, job_id: &str, backup: &str) -> Result<()> {
        self.write(&format!("prejob-{job_id}"), &format!("{backup}\n"))
    }

    /// Record that `task` of `array_job_id` finished; returns how many distinct
    /// tasks have finished so far.
    pub fn finish_task(&self, array_job_id: &str, task: u64) -> Result<u64> {
        let name = format!("finished-{array_job_id}");
        let mut tasks: BTreeSet<u64> = match fs::read_to_string(self.dir.join(&name)) {
            Ok(text) => text
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => {
                return Err(e).context(|| format!("cannot read {}", show(&self.dir.join(&name))));
            }
        };
        tasks.insert(task);
        let text: String = tasks.iter().map(|t| format!("{t}\n")).collect();
        self.write(&name, &text)?;
        Ok(tasks.len() as u64)
    }

    /// Replace a state file atomically: temp file, flush, rename.
    fn write(&self, name: &str, text: &str) -> Result<()> {
        let mut temp = TempFile::create_in(&self.dir, 0o664)?;
        io::Write::write_all(temp.file(), text.as_bytes())
            .context(|| format!("cannot write {}", show(temp.path())))?;
        temp.sync()?;
        let target = self.dir.join(name);
        fs::rename(temp.path(), &target).context(|| format!("cannot write {}", show(&target)))?;
        temp.keep();
        sync_dir(&self.dir)
    }

    fn expire(&self) {
        let Ok(items) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for item in items.flatten() {
            let old = item
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| now.duration_since(modified).unwrap_or_default() > EXPIRY);
            let stale_temp = item
                .file_name()
                .to_string_lossy()
                .starts_with(crate::store::TEMP_PREFIX);
            if old || stale_temp {
                let _ = fs::remove_file(item.path());
            }
        }
    }
}
