//! When a backup was last read whole and found sound (`verify`, `periodic`'s
//! own verify): `.dbbackup-pages/<name>.read`, one JSON line with the time and
//! the file's stamp (`stamped`). `list`, `check` and `backup` trust the cheap tests (size,
//! header); bytes that go bad inside a file of the same size are found only by
//! a whole read, so `periodic` reads the newest restore point again once this
//! record (or its creation) is older than [`REREAD_AFTER`] (T25 #2). It holds
//! while the file is the same and is removed with it.

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::stamped;

/// How old the newest restore point's last whole read (or its creation) may
/// be before `periodic` reads it whole again: the bound on how long damage to
/// it goes unseen by `check`.
pub(crate) const REREAD_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

const KIND: &str = "read";

#[derive(Serialize, Deserialize)]
struct Read {
    at: Timestamp,
}

/// Remember that the backup `path` was read whole and found sound now (or is
/// being read: `periodic` claims it first). In a read-only backup directory
/// it is read again next time.
pub(crate) fn record(path: &Path) {
    stamped::record(
        path,
        KIND,
        Read {
            at: Timestamp::now(),
        },
    );
}

/// When the backup `path` was last read whole and found sound, if it is still
/// the same file.
pub(crate) fn last(path: &Path) -> Option<Timestamp> {
    stamped::recorded::<Read>(path, KIND).map(|read| read.at)
}

/// Remove the record of `name` (its file was deleted).
pub(crate) fn forget(dir: &Path, name: &str) {
    stamped::forget(dir, name, KIND);
}
