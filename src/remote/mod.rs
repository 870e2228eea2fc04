//! Off-cluster copies in an S3-compatible object store (docs/remote.md).
//!
//! Each restore point is two objects under the remote's prefix: the backup file
//! itself, under its local name, and then `NAME.meta.json` ([`record::Record`]:
//! the metadata the file's header holds, plus the file's size and SHA-256). The
//! record is written only after the file was uploaded and read back, and deleted
//! before the file: a point counts on the remote only when its record exists and
//! the object's size matches it, so no partial upload is ever taken for a backup.
//!
//! object_store is async; a current-thread runtime lives here and nowhere else,
//! so the rest of the crate stays synchronous.

mod client;
mod content;
mod credentials;
mod endpoint;
pub(crate) mod fetch;
mod identity;
pub(crate) mod mend;
pub(crate) mod newest;
mod parts;
pub(crate) mod proof;
pub(crate) mod record;
mod sent;
pub(crate) mod serial;
mod set_id;
pub(crate) mod state;
mod store_error;
pub(crate) mod sync;
pub(crate) mod unrecorded;
mod url;
mod vanished;
pub(crate) mod whose;

pub(crate) use client::{Remote, RemotePoint, Uploaded, endpoint_in_env};
pub(crate) use url::RemoteUrl;

use crate::config::Settings;
use crate::error::{Error, Result};

/// The configured remote, or the error every `--from-remote` command gives.
pub(crate) fn configured(settings: &Settings) -> Result<Remote> {
    let url = settings.remote.as_deref().ok_or_else(|| {
        Error::usage(
            "no remote configured: use --remote s3://BUCKET/PREFIX, DBBACKUP_REMOTE or remote in dbbackup.yaml",
        )
    })?;
    Remote::open(&RemoteUrl::parse(url)?, settings.remote_timeout)
}

/// With `remote_upload: inline`, the line a SLURM hook (`pre-job`,
/// `post-job`, `final`, `run`) prints after making a backup: it never uploads
/// (a job's first and last seconds are no time for a transfer), which a user
/// who set `inline` for their job would otherwise not know.
pub(crate) fn not_uploaded_by_hooks(settings: &Settings) -> Option<String> {
    if settings.remote_upload != crate::options::RemoteUpload::Inline {
        return None;
    }
    let url = settings.remote.as_deref()?;
    Some(format!(
        "not uploaded to {url}: the SLURM hooks never upload (remote_upload: inline is for backup, auto and periodic); `dbbackup sync` uploads it"
    ))
}

/// `remote_upload: inline`: after a local backup, what `sync` would do, for
/// nodes that reach the store. The local backup is published and its lock
/// released before this starts; a failure is a WARN line and a failed upload
/// recorded for `check` and the summary log, never the backup's failure. A
/// stalled request and its retries end after `remote_timeout_seconds`.
/// Returns the line for the command's output (the outcome belongs beside the
/// backup's own line, not only on stderr), `None` when nothing was tried.
pub(crate) fn upload_inline(
    settings: &Settings,
    job: &crate::slurm::job::JobContext,
) -> Option<String> {
    if settings.remote_upload != crate::options::RemoteUpload::Inline {
        return None;
    }
    let (Some(url), Some(db)) = (&settings.remote, settings.db_path.as_deref()) else {
        return None;
    };
    let db = crate::store::DbId::of(db);
    // Held until the outcome is recorded: another task's upload of this
    // directory waits, then finds this one's points there (`serial`).
    let mut turn = None;
    // What was uploaded, and what (else) is wrong on the remote.
    let result = configured(settings).and_then(|remote| {
        let wait = serial::limit(settings.remote_timeout);
        turn = Some(serial::wait_turn(
            &settings.backup_dir,
            remote.url(),
            job,
            wait,
        )?);
        let set = crate::store::BackupDir::new(&settings.backup_dir).set(&db)?;
        let mut proofs = proof::Proofs::load(&settings.backup_dir, remote.url());
        let done = sync::sync(
            &remote,
            (&set, Some(&db)),
            sync::Rules::of(settings),
            &mut proofs,
        );
        proofs.save(remote.url());
        let done = done?;
        let problem = done.problem(&remote);
        Ok((done, problem))
    });
    let uploaded = |n: usize| format!("uploaded to {url}: {n} new");
    let (detail, line, outcome) = match result {
        Ok((done, None)) => (
            format!("{} uploaded", done.uploaded.len()),
            uploaded(done.uploaded.len()),
            Ok(done.on_remote),
        ),
        Err(error) => {
            tracing::warn!(
                "the backup is kept locally, but the upload to the remote failed: {error}"
            );
            (
                String::new(),
                format!(
                    "not uploaded to {url} (the upload failed, see above): the backup is kept \
                     locally and `dbbackup sync` uploads it"
                ),
                Err(error.to_string()),
            )
        }
        // The new point may be up while something else on the remote is wrong
        // (an older point damaged there): both said, neither as the other.
        Ok((done, Some(problem))) => {
            tracing::warn!("the remote {url} needs attention: {problem}");
            let line = if done.uploaded.is_empty() {
                format!(
                    "not uploaded to {url} (see above): the backup is kept locally; `dbbackup sync` says what to do"
                )
            } else {
                format!(
                    "{}; the remote needs attention besides (see above)",
                    uploaded(done.uploaded.len())
                )
            };
            (
                format!("{} uploaded", done.uploaded.len()),
                line,
                Err(problem),
            )
        }
    };
    state::record(settings, &db, job, "upload", url, outcome, &detail);
    drop(turn);
    Some(line)
}
