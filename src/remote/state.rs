//! The outcome of the newest upload to the remote (`sync`, or the inline upload
//! after a backup), kept beside the attempt records so that `check` judges the
//! remote without reaching it (a compute node often cannot): a failed upload is
//! a failed attempt there, and the summary log has its line.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::slurm::array::STATE_DIR;
use crate::slurm::job::JobContext;
use crate::store::{DbId, replace_file};
use crate::summary_log::{EventStatus, Line};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Uploaded {
    pub time: Timestamp,
    pub ok: bool,
    /// The remote's URL (never credentials).
    pub remote: String,
    /// What was done, or the error.
    pub detail: String,
    /// The database's restore points on the remote after this upload (a failed
    /// one keeps those the previous record had).
    pub on_remote: Vec<String>,
}

fn place(backup_dir: &Path, db: &DbId) -> PathBuf {
    backup_dir
        .join(STATE_DIR)
        .join(format!("remote-{}", db.key()))
}

/// The newest record, if any.
pub(crate) fn read(backup_dir: &Path, db: &DbId) -> Option<Uploaded> {
    let text = std::fs::read(place(backup_dir, db)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The newest record of an upload to `remote`: one to another remote (the
/// setting was changed since) says nothing about this one.
pub(crate) fn read_for(backup_dir: &Path, db: &DbId, remote: &str) -> Option<Uploaded> {
    let record = read(backup_dir, db)?;
    let same = match (
        super::RemoteUrl::parse(&record.remote),
        super::RemoteUrl::parse(remote),
    ) {
        (Ok(recorded), Ok(configured)) => recorded == configured,
        _ => record.remote == remote,
    };
    same.then_some(record)
}

/// Record one upload's outcome and append its summary line (`event=sync`,
/// or `event=upload` after a backup); never fails the command.
pub(crate) fn record(
    settings: &crate::config::Settings,
    db: &DbId,
    job: &JobContext,
    event: &str,
    remote: &str,
    outcome: Result<Vec<String>, String>,
    detail: &str,
) {
    let (backup_dir, summary_log) = (&settings.backup_dir, &settings.summary_log);
    let (ok, on_remote, detail) = match outcome {
        Ok(names) => (true, names, detail.to_string()),
        Err(error) => (
            false,
            read_for(backup_dir, db, remote)
                .map(|r| r.on_remote)
                .unwrap_or_default(),
            error,
        ),
    };
    let record = Uploaded {
        time: Timestamp::now(),
        ok,
        remote: remote.to_string(),
        detail: detail.clone(),
        on_remote,
    };
    let dir = backup_dir.join(STATE_DIR);
    if backup_dir.is_dir() {
        let written = crate::store::perms::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let json = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
                replace_file(&place(backup_dir, db), 0o644, &json).map_err(|e| e.to_string())
            });
        if let Err(error) = written {
            tracing::debug!("remote upload not recorded: {error}");
        }
    }
    let status = if ok {
        EventStatus::Ok
    } else {
        EventStatus::Failed
    };
    let mut line = Line::new(job, event, status);
    line.field("db", &db.canonical().to_string_lossy())
        .field("remote", remote)
        .field("detail", &detail);
    crate::summary_log::append_or_warn(summary_log, &line);
}
