//! When a backup was last read whole and found sound (`verify`, `periodic`'s
//! own verify): `.dbbackup-pages/<name>.read`, one JSON line with the time and
//! the file's stamp. `list`, `check` and `backup` trust the cheap tests (size,
//! header); bytes that go bad inside a file of the same size are found only by
//! a whole read, so `periodic` reads the newest restore point again once this
//! record (or its creation) is older than [`REREAD_AFTER`] (T25 #2). It holds
//! while the file is the same and is removed with it.

use std::fs;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::PAGES_DIR;
use super::damage::Stamp;

/// How old the newest restore point's last whole read (or its creation) may
/// be before `periodic` reads it whole again: the bound on how long damage to
/// it goes unseen by `check`.
pub(crate) const REREAD_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

#[derive(Serialize, Deserialize)]
struct Read {
    at: Timestamp,
    file: Stamp,
}

fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(PAGES_DIR).join(format!("{name}.read"))
}

/// Remember that the backup `path` was read whole and found sound now. Best
/// effort: in a read-only backup directory it is read again next time.
pub(crate) fn record(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Ok(stat) = fs::symlink_metadata(path) else {
        return;
    };
    let read = Read {
        at: Timestamp::now(),
        file: Stamp::of(&stat),
    };
    let mut text = serde_json::to_string(&read).unwrap_or_default();
    text.push('\n');
    let written = super::perms::write_record(&dir.join(PAGES_DIR), &record_path(dir, name), &text);
    if let Err(e) = written {
        tracing::debug!("cannot record that {name} was read whole: {e}");
    }
}

/// When the backup `path` was last read whole and found sound, if it is still
/// the same file.
pub(crate) fn last(path: &Path) -> Option<Timestamp> {
    let dir = path.parent()?;
    let name = path.file_name()?.to_str()?;
    let stat = fs::symlink_metadata(path).ok()?;
    let read: Read =
        serde_json::from_str(fs::read_to_string(record_path(dir, name)).ok()?.trim()).ok()?;
    (read.file == Stamp::of(&stat)).then_some(read.at)
}

/// Remove the record of `name` (its file was deleted).
pub(crate) fn forget(dir: &Path, name: &str) {
    let _ = fs::remove_file(record_path(dir, name));
}
