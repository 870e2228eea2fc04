//! `NAME.meta.json`: what makes an uploaded file a restore point on the remote.

use serde::{Deserialize, Serialize};

use crate::store::Metadata;
use crate::store::sealed::{self, Seal};

pub(crate) const SUFFIX: &str = ".meta.json";
/// 2: the record carries `record_sha256` (the SHA-256 of its own bytes): a
/// flipped bit in `remote_seq` or the metadata at the store would reorder the
/// remote, and retention would delete by that order. 1: written before it.
pub(crate) const FORMAT: u32 = 2;
const SUM_KEY: &str = "record_sha256";

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
    /// `HOST:DIR`, the backup directory it was uploaded from: named when
    /// another backup directory of the same database would be ordered
    /// against it (`identity::misordered`). Records before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The identity of that backup directory (`remote::set_id`): two under
    /// one path are told apart by it. Records before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
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

/// The record's bytes as stored: compact JSON, sealed (`store::sealed`).
pub(crate) fn encode(record: &Record) -> serde_json::Result<Vec<u8>> {
    let mut record = record.clone();
    record.format = record.format.max(FORMAT);
    Ok(sealed::seal(&serde_json::to_vec(&record)?, SUM_KEY))
}

/// A record read from the store, or why it is not a valid one.
pub(crate) fn decode(bytes: &[u8]) -> Result<Record, String> {
    let seal = sealed::check(bytes, SUM_KEY);
    if seal == Seal::Broken {
        return Err(format!(
            "its {SUM_KEY} does not match its bytes (changed since it was written)"
        ));
    }
    let record: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if seal == Seal::Absent && record.format >= 2 {
        // A flip in the field's name must not make a new record pass as old.
        return Err(format!(
            "format {} record without its {SUM_KEY}",
            record.format
        ));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            format: FORMAT,
            name: "backup_20261206_040918.db.gz".into(),
            size: 8389,
            sha256: "sha256:00".into(),
            metadata: crate::store::metadata::tests::sample(),
            remote_seq: Some(3),
            from: Some("login1:/scratch/backups".into()),
            set: Some("0123456789abcdef0123456789abcdef".into()),
        }
    }

    #[test]
    fn no_flipped_bit_reads_as_another_record() {
        let record = sample();
        let bytes = encode(&record).unwrap();
        assert_eq!(decode(&bytes).unwrap(), record);
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(read) = decode(&flipped) {
                assert_eq!(read, record, "bit {bit}");
            }
        }
    }

    #[test]
    fn records_written_before_the_checksum_are_read_and_format_2_without_it_is_not() {
        let mut old = sample();
        old.format = 1;
        let pretty = serde_json::to_vec_pretty(&old).unwrap();
        assert_eq!(decode(&pretty).unwrap(), old);
        let unsealed = serde_json::to_vec(&sample()).unwrap();
        assert!(decode(&unsealed).unwrap_err().contains(SUM_KEY));
    }
}
