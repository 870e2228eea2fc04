//! One backup read whole, as `verify` reads it: decompressed (every member's
//! CRC), its size and SHA-256 against the metadata, then `PRAGMA
//! integrity_check` on the copy (in `$TMPDIR`). Used by `verify` and by
//! `periodic`'s weekly read of the newest restore point.

use crate::archive::decompress;
use crate::error::{Error, Result};
use crate::slurm::job::JobContext;
use crate::sqlite_file::{self, Integrity};
use crate::store::{Entry, TempFile};

/// Read `entry` whole; what was found sound, or why it is not.
pub(crate) fn one(
    entry: &Entry,
    show_progress: bool,
    job: &JobContext,
    threads: usize,
) -> Result<String> {
    if let Err(why) = &entry.meta
        && !decompress::looks_like_gzip(&entry.path)
    {
        // Said once: the metadata's own reason may be this very finding.
        let reason = crate::store::open_no_follow(&entry.path)
            .map_err(crate::store::metadata::MetaError::from)
            .and_then(|mut file| crate::store::metadata::decode(&mut file).map(|_| ()));
        return Err(Error::failed(match reason {
            Err(crate::store::metadata::MetaError::NotGzip) => "not a gzip file".to_string(),
            _ => format!("not a gzip file ({why})"),
        }));
    }
    reread_changed_base(entry, job, threads);
    // A verify killed outright leaves its decompressed copy in TMPDIR (a
    // login node's small /tmp): this host's dead ones go first (T31 R9).
    crate::store::remove_dead_temps_in(&std::env::temp_dir());
    let mut temp = TempFile::create_in(&std::env::temp_dir(), 0o600)?;
    let total = entry.meta.as_ref().map_or(0, |m| m.db_size);
    let progress = crate::progress::Progress::bytes(total, "verify", show_progress, job);
    let extracted = crate::diff::extract_to_file(
        entry,
        &mut temp,
        &progress,
        threads,
        crate::diff::rebuild::Bases::Sound,
    )?;
    match sqlite_file::integrity_check_file(temp.path())? {
        Integrity::Ok => crate::store::damage::clear_checked(&entry.path),
        Integrity::Failed(detail) => {
            tracing::debug!("integrity_check output:\n{detail}");
            let why = format!("integrity_check: {}", sqlite_file::one_line(&detail));
            // Sound gzip of an unsound database: it cannot be restored either.
            if !entry.is_failed() {
                crate::store::damage::mark_unsound(&entry.path, &why, entry.records_checksum());
            }
            return Err(Error::failed(match &entry.meta {
                // Size and checksum matched: a faithful copy of a database that
                // was already unsound (`quick_check` at backup time does not see
                // every fault), so the database itself needs looking at.
                Ok(meta) => format!(
                    "{why} (size and checksum match: the database was already like this when \
                     backed up; check it with `sqlite3 {} 'PRAGMA integrity_check'`)",
                    meta.source
                ),
                Err(_) => why,
            }));
        }
    }
    if entry.legacy {
        // `check` counts a legacy file as a good backup only once read whole.
        if entry.implausible.is_none() {
            crate::store::verified::record(&entry.path);
        }
        let caveat = entry
            .implausible
            .as_deref()
            .map_or_else(String::new, |why| format!("; but it is {why}"));
        return Ok(format!(
            "{} bytes, integrity_check ok; a legacy backup without metadata: no recorded size or checksum, so decompression and integrity_check are all that could be checked{caveat}",
            extracted.bytes
        ));
    }
    if let Err(why) = &entry.meta {
        // Without its metadata nothing says whose it is or that it is whole:
        // decompressing to a sound database proves neither.
        return Err(Error::failed(format!(
            "its metadata is damaged ({why}): no recorded size, checksum or database to check it against, so it cannot be trusted as a backup ({} bytes decompressed, integrity_check ok; to keep the data: zcat {} > copy.db)",
            extracted.bytes,
            crate::error::show(&entry.path)
        )));
    }
    crate::store::read_whole::record(&entry.path);
    let rebuilt = match entry.meta.as_ref().ok().and_then(|m| m.diff.as_ref()) {
        Some(diff) => format!(" (rebuilt from base {} + diff)", diff.base),
        None => String::new(),
    };
    Ok(format!(
        "{} bytes{rebuilt}, size and checksum match, integrity_check ok",
        extracted.bytes
    ))
}

/// A diff's base marked damaged before its file changed (put back from a
/// copy) is read whole first, as `verify BASE` does, so that the diff is
/// judged on the base as it is now, not on the old finding (T30 F2: `verify
/// --all` failed the diffs, then found their base sound).
pub(crate) fn reread_changed_base(entry: &Entry, job: &JobContext, threads: usize) {
    let Some(base) = entry.meta.as_ref().ok().and_then(|m| m.diff.as_ref()) else {
        return;
    };
    let dir = crate::store::BackupDir::new(
        crate::store::atomic::parent_or_dot(&entry.path).to_path_buf(),
    );
    if let Ok(Some(base)) = dir.entry(&base.base)
        && base.damage.is_some()
        && crate::store::damage::changed_since_marked(&base.path)
    {
        // Its own verdict is the base's line; this diff's follows from it.
        let _ = one(&base, false, job, threads);
    }
}
