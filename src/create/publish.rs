//! The second stage of a backup: the checked temp file gets its metadata header
//! and its backup name, under the backup directory's lock.

use std::path::{Path, PathBuf};

use super::checked::Checked;
use super::{Target, write_error};
use crate::config::Settings;
use crate::error::{Result, show};
use crate::lock::DirLock;
use crate::sqlite_file::Integrity;
use crate::store::Entry;
use crate::store::metadata::{CheckResult, FORMAT_VERSION, Fingerprint, Kind, Metadata};

/// What the metadata records beside the content, and the names to avoid.
pub(crate) struct Record<'a> {
    pub kind: Kind,
    /// The database's fingerprint when the backup was due (none for a
    /// pre-restore copy, which is found by content instead).
    pub fingerprint: Option<Fingerprint>,
    /// Names and sequence numbers are unique across the primary and these.
    pub mirrors: &'a [PathBuf],
}

impl<'a> Record<'a> {
    pub(crate) fn new(
        settings: &'a Settings,
        kind: Kind,
        fingerprint: Option<Fingerprint>,
    ) -> Self {
        Record {
            kind,
            fingerprint,
            mirrors: &settings.mirror_dirs,
        }
    }
}

/// A published backup and its metadata.
#[derive(Debug)]
pub(crate) struct Published {
    pub entry: Entry,
    pub meta: Metadata,
}

/// Write the header of `checked` and publish it under the next backup name;
/// the lock keeps the sequence number and the name ours until published.
pub(crate) fn publish(
    checked: Checked,
    target: &Target,
    _lock: &DirLock,
    record: &Record,
) -> Result<Published> {
    let Checked {
        mut temp,
        created,
        check,
        check_kind,
        db_size,
        checksum,
        free_bytes,
        members,
        diff,
        hashes,
    } = checked;
    let dir = target.dir;
    let (check, check_detail) = match check {
        Integrity::Ok => (CheckResult::Ok, None),
        Integrity::Failed(detail) => (CheckResult::Failed, Some(detail)),
    };
    // The lock is held from here to `publish_as`: no other backup can take
    // the same number or be published in between. (A mirror is written under
    // its own lock; its numbers only need to be passed.)
    let number = dir.next_number(record.mirrors)?;
    let meta = Metadata {
        format: FORMAT_VERSION,
        created,
        source: target.id.canonical().to_string_lossy().into_owned(),
        db_size,
        checksum,
        host: target.job.host.clone(),
        job: target.job.tag.clone(),
        kind: record.kind,
        check,
        check_detail,
        check_kind,
        fingerprint: record.fingerprint.clone(),
        tool: format!("dbbackup {}", env!("CARGO_PKG_VERSION")),
        adopted_from: None,
        // The header keeps its length when rewritten: this is the final size.
        file_size: Some(temp.file().metadata().map_err(write_error(dir))?.len()),
        seq: Some(number.seq),
        numbering_since: Some(number.since),
        members: Some(members),
        diff,
        // On this host's clock, as `created` was taken: no other node's.
        free_bytes,
        // Written by `publish_as` with the name it takes.
        name: None,
        duration_seconds: Some(
            std::time::Duration::try_from(jiff::Timestamp::now().duration_since(created))
                .map_or(0.0, |d| (d.as_secs_f64() * 100.0).round() / 100.0),
        ),
    };
    crate::signals::stop_if_requested()?;
    // The header, with the name, is written by `publish_as` before each name
    // is tried.
    let entry = dir.publish_as(temp, &meta, record.mirrors)?;
    let failed = meta.check != CheckResult::Ok;
    let meta = entry.meta.clone().unwrap_or(meta);
    if let Some(table) = hashes.filter(|_| !failed) {
        // A cache: a missing table is rebuilt from the backup when needed.
        if let Err(e) = table.save(dir, &entry.file_name, &meta.checksum) {
            tracing::warn!("cannot save the page hashes of {}: {e}", entry.file_name);
        }
    }
    tracing::info!(
        target: crate::logging::REPORTED,
        "published {} ({} -> {}, {} of {}{})",
        entry.file_name,
        meta.db_size,
        entry.size,
        meta.kind.as_str(),
        // As `list` shows it: resolved (`sub/../results.db` is `results.db`).
        show(Path::new(&meta.source)),
        meta.diff.as_ref().map_or(String::new(), |d| format!(
            ", diff of {}: {} of {} pages",
            d.base, d.changed_pages, d.page_count
        ))
    );
    Ok(Published { entry, meta })
}
