//! A record about one backup file, `.dbbackup-pages/<name>.<kind>`: one JSON
//! line with what is recorded and the file's stamp (size, mtime, inode,
//! device). It holds while the file is the same, and is removed with it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PAGES_DIR;
use super::damage::Stamp;

#[derive(Serialize, serde::Deserialize)]
struct Stamped<T> {
    file: Stamp,
    #[serde(flatten)]
    value: T,
}

fn record_path(dir: &Path, name: &str, kind: &str) -> PathBuf {
    dir.join(PAGES_DIR).join(format!("{name}.{kind}"))
}

/// Record `value` about the backup `path`, as its `kind`. Best effort: in a
/// read-only backup directory nothing is recorded (said at debug).
pub(super) fn record<T: Serialize>(path: &Path, kind: &str, value: T) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Ok(stat) = fs::symlink_metadata(path) else {
        return;
    };
    let stamped = Stamped {
        file: Stamp::of(&stat),
        value,
    };
    let mut text = serde_json::to_string(&stamped).unwrap_or_default();
    text.push('\n');
    let written =
        super::perms::write_record(&dir.join(PAGES_DIR), &record_path(dir, name, kind), &text);
    if let Err(e) = written {
        tracing::debug!("cannot record the {kind} of {name}: {e}");
    }
}

/// What is recorded about the backup `path` as its `kind`, if it is still the
/// same file.
pub(super) fn recorded<T: DeserializeOwned>(path: &Path, kind: &str) -> Option<T> {
    let dir = path.parent()?;
    let name = path.file_name()?.to_str()?;
    let stat = fs::symlink_metadata(path).ok()?;
    let text = fs::read_to_string(record_path(dir, name, kind)).ok()?;
    let stamped: Stamped<T> = serde_json::from_str(text.trim()).ok()?;
    (stamped.file == Stamp::of(&stat)).then_some(stamped.value)
}

/// Remove the `kind` record of `name` (its file was deleted).
pub(super) fn forget(dir: &Path, name: &str, kind: &str) {
    let _ = fs::remove_file(record_path(dir, name, kind));
}
