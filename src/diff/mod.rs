//! Differential backups (SPEC section 8, docs/differential.md): after a full
//! backup, up to `diff_backups` restore points hold only the pages that differ
//! from it, in `backup_*.diff.gz`.
//!
//! - [`pagehash`]: the per-page hashes of each full backup (a sidecar cache);
//! - [`write`](mod@write): the diff payload, built while the snapshot streams;
//! - [`rebuild`]: base + diff back into the database, checked.
//!
//! Payload (decompressed): `DBBKDIFF`, u32 BE page size, u32 BE page count, then
//! for each changed or new page in ascending order a u32 BE page number (1-based)
//! and the page's bytes.

pub(crate) mod pagehash;
pub(crate) mod rebuild;
pub(crate) mod write;

use crate::archive::decompress::{self, Extracted};
use crate::error::Result;
use crate::progress::Progress;
use crate::store::metadata::Kind;
use crate::store::{BackupDir, DbId, Entry, TempFile};
use pagehash::PageHashes;

pub(crate) const MAGIC: &[u8; 8] = b"DBBKDIFF";
/// Magic, page size, page count.
pub(crate) const HEADER_LEN: usize = 16;

/// What the next backup of a database will be.
pub(crate) enum Plan {
    /// A full backup; `hashes`: also keep its page hashes (it may become a base).
    Full { hashes: bool },
    /// A diff against this full backup.
    Diff(Box<Base>),
}

pub(crate) struct Base {
    pub entry: Entry,
    pub hashes: PageHashes,
}

/// Decide for the next backup of `db`: a diff when `diff_backups` allows one
/// more since the newest full restore point and that base is usable.
pub(crate) fn plan(diff_backups: u32, dir: &BackupDir, db: &DbId, kind: Kind) -> Plan {
    if diff_backups == 0 || kind == Kind::PreRestore {
        // Pre-restore copies are always full, and never bases.
        return Plan::Full { hashes: false };
    }
    let full = Plan::Full { hashes: true };
    let set = match dir.set(db) {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!("cannot read the backups to plan a diff ({e}); making a full backup");
            return full;
        }
    };
    // Restore points only: pre-restore copies and failed snapshots are never bases.
    let Some(index) = set
        .restore_points
        .iter()
        .position(|e| matches!(&e.meta, Ok(m) if m.diff.is_none()))
    else {
        return full;
    };
    if index >= diff_backups as usize {
        return full;
    }
    let entry = set.restore_points[index].clone();
    match pagehash::load_or_rebuild(dir, &entry) {
        Ok(hashes) => Plan::Diff(Box::new(Base { entry, hashes })),
        Err(e) => {
            tracing::warn!(
                "cannot use {} as the base of a diff ({e}); making a full backup",
                entry.file_name
            );
            full
        }
    }
}

/// Decompress any backup into `temp` and flush it: a full backup as it is, a diff
/// rebuilt on its base. Sizes and checksums are checked; `integrity_check` is the
/// caller's.
pub(crate) fn extract_to_file(
    entry: &Entry,
    temp: &mut TempFile,
    progress: &Progress,
) -> Result<Extracted> {
    if !entry.name.diff {
        return decompress::extract_to_file(entry, temp, progress);
    }
    decompress::fill_temp(temp, progress, |writer| {
        rebuild::rebuild(entry, writer, progress)
    })
}

/// Why diff `entry` cannot be rebuilt, from cheap checks only (its base is there,
/// whole in size, with the checksum the diff was made against); `None` for a full
/// backup or a diff whose base looks right. `verify` checks the content.
pub(crate) fn base_problem(entry: &Entry) -> Option<String> {
    if !entry.name.diff {
        return None;
    }
    rebuild::base_of(entry).err().map(|e| e.to_string())
}
