//! A restore point found to hold the database's content again under another
//! fingerprint (the file touched, restored, copied with `cp -p`: its stat
//! changed, its content did not): `.dbbackup-pages/<name>.fingerprint`.
//! Without it, every later backup read the whole database again to find it
//! unchanged (T25 #3: seconds per call on 200 MiB, minutes on 50 GB).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metadata::Fingerprint;
use super::stamped;

const KIND: &str = "fingerprint";

#[derive(Serialize, Deserialize)]
struct Held {
    fingerprint: Fingerprint,
}

/// Remember that the backup `path` holds the database in the state
/// `fingerprint` describes (its content was compared whole). In a read-only
/// backup directory the next backup compares again.
pub(crate) fn record(path: &Path, fingerprint: &Fingerprint) {
    let held = Held {
        fingerprint: fingerprint.clone(),
    };
    stamped::record(path, KIND, held);
}

/// Whether the backup `path` was found to hold the database in the state
/// `fingerprint` describes, and is still the same file.
pub(crate) fn holds(path: &Path, fingerprint: &Fingerprint) -> bool {
    stamped::recorded::<Held>(path, KIND).is_some_and(|held| held.fingerprint == *fingerprint)
}

/// Remove the record of `name` (its file was deleted).
pub(crate) fn forget(dir: &Path, name: &str) {
    stamped::forget(dir, name, KIND);
}
