//! `NAME.meta.json`: what makes an uploaded file a restore point on the remote.

use serde::{Deserialize, Serialize};

use crate::store::Metadata;

pub(crate) const SUFFIX: &str = ".meta.json";
pub(crate) const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub format: u32,
    /// The backup's file name (the object's name under the prefix).
    pub name: String,
    /// The backup file's length in bytes.
    pub size: u64,
    /// `sha256:<hex>` of the backup file as uploaded (not of the database:
    /// that is `metadata.checksum`).
    pub sha256: String,
    /// The metadata the file's own header holds.
    pub metadata: Metadata,
    /// The remote's order, before the local `seq` (`sync::place`): one more
    /// than the highest under the prefix for a new point, so one made after a
    /// scratch purge (local `seq` from 1 again) is newer; an older point
    /// uploaded again takes the number of the oldest newer one there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_seq: Option<u64>,
}

impl Record {
    /// `other` records the same backup file: same database, content, size
    /// and bytes (its `remote_seq` may differ).
    pub(crate) fn same_file(&self, other: &Record) -> bool {
        self.name == other.name
            && self.size == other.size
            && self.sha256 == other.sha256
            && self.metadata.source == other.metadata.source
            && self.metadata.checksum == other.metadata.checksum
    }
}
