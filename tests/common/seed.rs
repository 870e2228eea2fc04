//! Backups as the seed's `backup_database.py` wrote them, which dbbackup still
//! lists, verifies, restores and ages out: plain `gzip -6` of the database file
//! (no metadata), named by local time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Write `gzip -6` of `db` as `dir/name`; returns its path.
pub(crate) fn seed_backup(db: &Path, dir: &Path, name: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let out = dir.join(name);
    let gz = Command::new("gzip")
        .args(["-6", "-c"])
        .arg(db)
        .output()
        .expect("gzip");
    assert!(gz.status.success(), "gzip {}", db.display());
    fs::write(&out, gz.stdout).unwrap();
    out
}

/// The name the seed gave a backup made at `at` on a machine in `zone`.
pub(crate) fn seed_backup_name(at: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> String {
    at.to_zoned_datetime(zone.clone())
        .strftime("backup_%Y%m%d_%H%M%S.db.gz")
        .to_string()
}
