//! A restore point found to hold the database's content again under another
//! fingerprint (the file touched, restored, copied with `cp -p`: its stat
//! changed, its content did not): `.dbbackup-pages/<name>.fingerprint`, one
//! JSON line with that fingerprint and the backup file's stamp. Without it,
//! every later backup read the whole database again to find it unchanged
//! (T25 #3: seconds per call on 200 MiB, minutes on 50 GB). It holds while the
//! backup file is the same and is removed with it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PAGES_DIR;
use super::damage::Stamp;
use super::metadata::Fingerprint;

#[derive(Serialize, Deserialize)]
struct Held {
    fingerprint: Fingerprint,
    file: Stamp,
}

fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(PAGES_DIR).join(format!("{name}.fingerprint"))
}

/// Remember that the backup `path` holds the database in the state
/// `fingerprint` describes (its content was compared whole). Best effort: in a
/// read-only backup directory the next backup compares again.
pub(crate) fn record(path: &Path, fingerprint: &Fingerprint) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Ok(stat) = fs::symlink_metadata(path) else {
        return;
    };
    let held = Held {
        fingerprint: fingerprint.clone(),
        file: Stamp::of(&stat),
    };
    let mut text = serde_json::to_string(&held).unwrap_or_default();
    text.push('\n');
    let written = super::perms::write_record(&dir.join(PAGES_DIR), &record_path(dir, name), &text);
    if let Err(e) = written {
        tracing::debug!("cannot record that {name} holds the database as it is now: {e}");
    }
}

/// Whether the backup `path` was found to hold the database in the state
/// `fingerprint` describes, and is still the same file.
pub(crate) fn holds(path: &Path, fingerprint: &Fingerprint) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let (Ok(stat), Ok(text)) = (
        fs::symlink_metadata(path),
        fs::read_to_string(record_path(dir, name)),
    ) else {
        return false;
    };
    serde_json::from_str::<Held>(text.trim())
        .is_ok_and(|held| held.fingerprint == *fingerprint && held.file == Stamp::of(&stat))
}

/// Remove the record of `name` (its file was deleted).
pub(crate) fn forget(dir: &Path, name: &str) {
    let _ = fs::remove_file(record_path(dir, name));
}
