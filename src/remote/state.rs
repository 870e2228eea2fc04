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
    /// The endpoint of the store it was made at (`None`: the AWS default):
    /// kept with the URL's record, whatever the endpoint, so that a sync
    /// failing at a wrong endpoint (a cron job without `AWS_ENDPOINT_URL`)
    /// is still this remote's failure for `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// What was done, or the error.
    pub detail: String,
    /// The database's restore points on the remote after this upload (a failed
    /// one keeps those the previous record had).
    pub on_remote: Vec<String>,
}

/// One record per database and remote: a one-off `sync --remote OTHER` must
/// not overwrite what is known of the configured remote.
fn place(backup_dir: &Path, db: &DbId, remote: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let url =
        super::RemoteUrl::parse(remote).map_or_else(|_| remote.to_string(), |u| u.to_string());
    let digest = Sha256::digest(url.as_bytes());
    backup_dir.join(STATE_DIR).join(format!(
        "remote-{}-{}",
        db.key(),
        crate::sqlite_file::hex(&digest[..6])
    ))
}

/// Where versions before the per-remote records kept the one record of the
/// database (whichever remote ran last).
fn single_place(backup_dir: &Path, db: &DbId) -> PathBuf {
    backup_dir
        .join(STATE_DIR)
        .join(format!("remote-{}", db.key()))
}

fn read_at(place: &Path) -> Option<Uploaded> {
    let text = std::fs::read(place).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The newest record of an upload to `remote` (else the older single
/// record, when it is of `remote`): one to another remote says nothing about
/// this one.
pub(crate) fn read_for(backup_dir: &Path, db: &DbId, remote: &str) -> Option<Uploaded> {
    let same = |record: &Uploaded| match (
        super::RemoteUrl::parse(&record.remote),
        super::RemoteUrl::parse(remote),
    ) {
        (Ok(recorded), Ok(configured)) => recorded == configured,
        _ => record.remote == remote,
    };
    read_at(&place(backup_dir, db, remote))
        .or_else(|| read_at(&single_place(backup_dir, db)))
        .filter(same)
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
    let written = record_checked(settings, db, job, (event, remote), outcome, detail);
    if let Err(error) = written {
        tracing::debug!("remote upload not recorded: {error}");
    }
}

/// [`record`], saying why the record could not be written (naming the
/// file): `check` would go on judging by the one before. A backup
/// directory that does not exist is not made for it (`check` says so).
pub(crate) fn record_checked(
    settings: &crate::config::Settings,
    db: &DbId,
    job: &JobContext,
    (event, remote): (&str, &str),
    outcome: Result<Vec<String>, String>,
    detail: &str,
) -> Result<(), String> {
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
        endpoint: super::client::endpoint_in_env(),
        detail: detail.clone(),
        on_remote,
    };
    let dir = backup_dir.join(STATE_DIR);
    let mut written = Ok(());
    if backup_dir.is_dir() {
        let file = place(backup_dir, db, remote);
        written = crate::store::perms::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let json = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
                replace_file(&file, 0o644, &json).map_err(|e| e.to_string())
            })
            .map_err(|e| format!("cannot write {}: {e}", crate::error::show(&file)));
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
    written
}
