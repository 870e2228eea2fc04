//! That `verify` read a legacy backup (the seed's plain gzip) whole and found a
//! sound database: `.dbbackup-pages/<name>.verified`, the file's stamp as one
//! JSON line. Nothing else vouches for a legacy file (no size or checksum was
//! recorded), so `check` counts one as a good backup only with this record. It
//! holds while the file is the same (size, mtime, inode, device) and is removed
//! with the file.

use std::fs;
use std::path::{Path, PathBuf};

use super::PAGES_DIR;
use super::damage::Stamp;

fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(PAGES_DIR).join(format!("{name}.verified"))
}

/// Remember that `verify` found the legacy backup `path` sound. Best effort: in
/// a read-only backup directory `check` keeps asking for `verify`.
pub(crate) fn record(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Ok(stat) = fs::symlink_metadata(path) else {
        return;
    };
    let mut text = serde_json::to_string(&Stamp::of(&stat)).unwrap_or_default();
    text.push('\n');
    let record = record_path(dir, name);
    // Never through a planted symlink; group-writable in a shared project.
    let written = super::perms::write_record(&dir.join(PAGES_DIR), &record, &text);
    if let Err(e) = written {
        tracing::warn!("cannot record that {name} was verified: {e}");
    }
}

/// Whether `verify` found the legacy backup `path` sound, and it is still the
/// same file.
pub(crate) fn is_verified(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let (Ok(stat), Ok(text)) = (
        fs::symlink_metadata(path),
        fs::read_to_string(record_path(dir, name)),
    ) else {
        return false;
    };
    serde_json::from_str::<Stamp>(text.trim()).is_ok_and(|stamp| stamp == Stamp::of(&stat))
}

/// Remove the record of `name` (its file was deleted).
pub(crate) fn forget(dir: &Path, name: &str) {
    let _ = fs::remove_file(record_path(dir, name));
}
