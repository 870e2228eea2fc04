//! Backup file names: `backup_YYYYMMDD_HHMMSS[_NNN][.failed].db.gz`, UTC, and
//! `backup_YYYYMMDD_HHMMSS[_NNN][.failed].diff.gz` for differential backups (not a
//! database on their own, so they stay out of `backup_*.db.gz` globs).
//!
//! UTC so names sort in creation order across daylight-saving changes. A second
//! backup in the same second gets `_001`, `_002`, ...: `.` sorts before `_`, so
//! `backup_X.db.gz` < `backup_X_001.db.gz` < the next second's name, in `ls` too.

use jiff::civil::DateTime;

const PREFIX: &str = "backup_";
const SUFFIX: &str = ".db.gz";
const DIFF_SUFFIX: &str = ".diff.gz";
const FAILED: &str = ".failed";
/// The last sequence number of a second (three digits).
pub(crate) const MAX_SEQ: u32 = 999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupName {
    /// Creation second, UTC.
    pub stamp: DateTime,
    /// 0 for the first backup of a second.
    pub seq: u32,
    /// The snapshot failed its integrity check.
    pub failed: bool,
    /// A differential backup (`.diff.gz`): only the pages that differ from a base.
    pub diff: bool,
}

impl BackupName {
    pub fn new(stamp: DateTime, seq: u32, failed: bool) -> Self {
        BackupName {
            stamp: stamp.with().subsec_nanosecond(0).build().unwrap_or(stamp),
            seq,
            failed,
            diff: false,
        }
    }

    /// The same name for a differential backup.
    pub fn as_diff(mut self, diff: bool) -> Self {
        self.diff = diff;
        self
    }

    /// Parse a file name; `None` for anything that is not a backup name.
    pub fn parse(file_name: &str) -> Option<Self> {
        let rest = file_name.strip_prefix(PREFIX)?;
        let (core, diff) = match rest.strip_suffix(SUFFIX) {
            Some(core) => (core, false),
            None => (rest.strip_suffix(DIFF_SUFFIX)?, true),
        };
        let (core, failed) = match core.strip_suffix(FAILED) {
            Some(core) => (core, true),
            None => (core, false),
        };
        let (stamp_text, seq) = match core.len() {
            15 => (core, 0),
            19 if core.as_bytes()[15] == b'_' => {
                let seq = &core[16..];
                if !seq.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (&core[..15], seq.parse().ok()?)
            }
            _ => return None,
        };
        if !stamp_text.bytes().enumerate().all(|(i, b)| {
            if i == 8 {
                b == b'_'
            } else {
                b.is_ascii_digit()
            }
        }) {
            return None;
        }
        let stamp = DateTime::strptime("%Y%m%d_%H%M%S", stamp_text).ok()?;
        Some(BackupName {
            stamp,
            seq,
            failed,
            diff,
        })
    }

    pub fn file_name(&self) -> String {
        let stamp = self.stamp.strftime("%Y%m%d_%H%M%S");
        let seq = if self.seq == 0 {
            String::new()
        } else {
            format!("_{:03}", self.seq)
        };
        let failed = if self.failed { FAILED } else { "" };
        let suffix = if self.diff { DIFF_SUFFIX } else { SUFFIX };
        format!("{PREFIX}{stamp}{seq}{failed}{suffix}")
    }

    /// Order of creation (failed or not).
    pub fn order_key(&self) -> (DateTime, u32) {
        (self.stamp, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(text: &str) -> DateTime {
        DateTime::strptime("%Y%m%d_%H%M%S", text).unwrap()
    }

    #[test]
    fn round_trip() {
        for (name, seq, failed) in [
            ("backup_20250909_093708.db.gz", 0, false),
            ("backup_20250909_093708_001.db.gz", 1, false),
            ("backup_20250909_093708_012.failed.db.gz", 12, true),
            ("backup_20250909_093708.failed.db.gz", 0, true),
            ("backup_20250909_093708_002.diff.gz", 2, false),
        ] {
            let parsed = BackupName::parse(name).unwrap();
            assert_eq!((parsed.seq, parsed.failed), (seq, failed), "{name}");
            assert_eq!(parsed.diff, name.ends_with(".diff.gz"));
            assert_eq!(parsed.stamp, stamp("20250909_093708"));
            assert_eq!(parsed.file_name(), name);
        }
    }

    #[test]
    fn rejects_other_names() {
        for name in [
            "backup_20250909_093708.db",
            "backup_2025090_093708.db.gz",
            "backup_20251309_093708.db.gz",
            "backup_20250909-093708.db.gz",
            "backup_20250909_093708_1.db.gz",
            "backup_20250909_093708_+01.db.gz",
            ".dbbackup-tmp-x.db.gz",
            "../backup_20250909_093708.db.gz",
            "backup_20250909_093708.db.gz.tmp",
            "backup_20250909_093708.diff",
            "backup_20250909_093708.db.diff.gz",
        ] {
            assert!(BackupName::parse(name).is_none(), "{name}");
        }
    }

    #[test]
    fn file_names_sort_in_creation_order() {
        let names = [
            BackupName::new(stamp("20250909_093708"), 0, false),
            BackupName::new(stamp("20250909_093708"), 1, true),
            BackupName::new(stamp("20250909_093708"), 2, false),
            BackupName::new(stamp("20250909_093709"), 0, false),
            BackupName::new(stamp("20251010_000000"), 0, false),
        ];
        let mut files: Vec<String> = names.iter().map(BackupName::file_name).collect();
        files.sort();
        let expected: Vec<String> = names.iter().map(BackupName::file_name).collect();
        assert_eq!(files, expected);
        let mut keys = names.to_vec();
        keys.sort_by_key(BackupName::order_key);
        assert_eq!(keys, names);
    }
}
