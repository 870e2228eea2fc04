//! Which backups to keep: the `max_backups` newest good ones, plus (optionally) the
//! newest of each of the last `keep_daily` days and `keep_weekly` ISO weeks, as
//! restic's `forget` does. Failed snapshots never displace a good backup: they are
//! kept only while newer than the oldest kept good backup (or, with no good backup
//! at all, as evidence), at most `max_backups` of them. Backups whose metadata cannot be read (legacy or damaged files) are never
//! deleted automatically; `verify` reports them.

use std::collections::HashSet;
use std::fs;

use jiff::tz::TimeZone;

use crate::error::{Context, Result, show};
use crate::store::{BackupDir, Entry, sync_dir};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub keep: Vec<String>,
    pub delete: Vec<String>,
}

/// Decide from entries sorted newest first.
pub fn plan(entries: &[Entry], policy: Policy) -> Plan {
    let good: Vec<&Entry> = entries.iter().filter(|e| e.is_good()).collect();
    let mut keep: HashSet<&str> = good
        .iter()
        .take(policy.keep_last.max(1) as usize)
        .map(|e| e.file_name.as_str())
        .collect();
    keep_newest_per(&good, policy.keep_daily, &mut keep, |e| {
        let date = e.created().to_zoned_datetime(TimeZone::UTC).date();
        (date.year() as i32, date.day_of_year() as i32)
    });
    keep_newest_per(&good, policy.keep_weekly, &mut keep, |e| {
        let week = e
            .created()
            .to_zoned_datetime(TimeZone::UTC)
            .date()
            .iso_week_date();
        (week.year() as i32, week.week() as i32)
    });
    let oldest_kept = good
        .iter()
        .filter(|e| keep.contains(e.file_name.as_str()))
        .map(|e| e.name.order_key())
        .min();
    let mut failed_kept = 0;
    for entry in entries {
        let failed = entry.name.failed
            || matches!(&entry.meta, Ok(m) if m.check != crate::store::CheckResult::Ok);
        if failed
            && oldest_kept.is_none_or(|oldest| entry.name.order_key() > oldest)
            && failed_kept < policy.keep_last
        {
            keep.insert(&entry.file_name);
            failed_kept += 1;
        }
    }
    let mut plan = Plan {
        keep: Vec::new(),
        delete: Vec::new(),
    };
    for entry in entries {
        let unreadable_and_not_failed = entry.meta.is_err() && !entry.name.failed;
        if keep.contains(entry.file_name.as_str()) || unreadable_and_not_failed {
            plan.keep.push(entry.file_name.clone());
        } else {
            plan.delete.push(entry.file_name.clone());
        }
    }
    plan
}

/// `plan`, but never deleting `protected` (restore points of jobs still running).
pub fn plan_keeping(entries: &[Entry], policy: Policy, protected: &HashSet<String>) -> Plan {
    let mut plan = plan(entries, policy);
    let (kept, delete) = plan
        .delete
        .into_iter()
        .partition(|name| protected.contains(name));
    plan.delete = delete;
    plan.keep.extend::<Vec<String>>(kept);
    plan
}

fn keep_newest_per<'a>(
    good: &[&'a Entry],
    periods: u32,
    keep: &mut HashSet<&'a str>,
    period_of: impl Fn(&Entry) -> (i32, i32),
) {
    let mut seen = HashSet::new();
    for entry in good {
        if seen.len() >= periods as usize {
            break;
        }
        if seen.insert(period_of(entry)) {
            keep.insert(entry.file_name.as_str());
        }
    }
}

/// Delete what the plan says. Call only while holding the directory's lock.
pub fn apply(dir: &BackupDir, plan: &Plan) -> Result<()> {
    for name in &plan.delete {
        let path = dir.path().join(name);
        match fs::remove_file(&path) {
            Ok(()) => tracing::info!("retention removed {name}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).context(|| format!("cannot remove old backup {}", show(&path)));
            }
        }
    }
    if !plan.delete.is_empty() {
        sync_dir(dir.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::metadata::{CheckResult, Kind, Metadata};
    use crate::store::naming::BackupName;
    use jiff::civil::DateTime;

    fn entry(stamp: &str, failed: bool, legacy: bool) -> Entry {
        let stamp = DateTime::strptime("%Y%m%d_%H%M%S", stamp).unwrap();
        let name = BackupName::new(stamp, 0, failed);
        let meta = Metadata {
            format: 1,
            created: stamp.to_zoned_datetime(TimeZone::UTC).unwrap().timestamp(),
            source: "/db".into(),
            db_size: 1,
            checksum: String::new(),
            host: "h".into(),
            job: "local".into(),
            kind: Kind::Manual,
            check: if failed {
                CheckResult::Failed
            } else {
                CheckResult::Ok
            },
            check_detail: None,
            fingerprint: None,
            tool: String::new(),
        };
        Entry {
            name,
            file_name: name.file_name(),
            path: name.file_name().into(),
            size: 1,
            meta: if legacy {
                Err("legacy".into())
            } else {
                Ok(meta)
            },
        }
    }

    fn policy(keep_last: u32, keep_daily: u32, keep_weekly: u32) -> Policy {
        Policy {
            keep_last,
            keep_daily,
            keep_weekly,
        }
    }

    fn deleted(entries: &[Entry], policy: Policy) -> Vec<String> {
        plan(entries, policy).delete
    }

    #[test]
    fn protected_restore_points_are_kept() {
        let entries = vec![
            entry("20250105_000000", false, false),
            entry("20250104_000000", false, false),
            entry("20250103_000000", false, false),
        ];
        let protected: HashSet<String> = ["backup_20250103_000000.db.gz".to_string()].into();
        let plan = plan_keeping(&entries, policy(1, 0, 0), &protected);
        assert_eq!(plan.delete, vec!["backup_20250104_000000.db.gz"]);
        assert!(
            plan.keep
                .contains(&"backup_20250103_000000.db.gz".to_string())
        );
    }

    #[test]
    fn keeps_the_newest_good_ones() {
        let entries = vec![
            entry("20250105_000000", false, false),
            entry("20250104_000000", false, false),
            entry("20250103_000000", false, false),
        ];
        assert_eq!(
            deleted(&entries, policy(2, 0, 0)),
            vec!["backup_20250103_000000.db.gz"]
        );
        assert!(deleted(&entries, policy(10, 0, 0)).is_empty());
    }

    #[test]
    fn failed_snapshots_never_displace_good_backups() {
        let entries = vec![
            entry("20250106_000000", true, false),
            entry("20250105_000000", true, false),
            entry("20250104_000000", false, false),
            entry("20250103_000000", true, false),
            entry("20250102_000000", false, false),
        ];
        let plan = plan(&entries, policy(1, 0, 0));
        assert!(
            plan.keep
                .contains(&"backup_20250104_000000.db.gz".to_string())
        );
        assert!(
            plan.keep
                .contains(&"backup_20250106_000000.failed.db.gz".to_string())
        );
        assert_eq!(
            plan.delete,
            vec![
                "backup_20250105_000000.failed.db.gz",
                "backup_20250103_000000.failed.db.gz",
                "backup_20250102_000000.db.gz"
            ]
        );
    }

    #[test]
    fn without_good_backups_the_newest_failed_ones_are_kept_as_evidence() {
        let entries = vec![
            entry("20250106_000000", true, false),
            entry("20250105_000000", true, false),
            entry("20250104_000000", true, false),
        ];
        assert_eq!(
            deleted(&entries, policy(2, 0, 0)),
            vec!["backup_20250104_000000.failed.db.gz"]
        );
    }

    #[test]
    fn daily_and_weekly_keep_one_per_period() {
        let entries = vec![
            entry("20250115_120000", false, false),
            entry("20250115_080000", false, false),
            entry("20250114_230000", false, false),
            entry("20250114_100000", false, false),
            entry("20250108_100000", false, false),
            entry("20250101_100000", false, false),
        ];
        let daily = deleted(&entries, policy(1, 2, 0));
        assert_eq!(
            daily,
            vec![
                "backup_20250115_080000.db.gz",
                "backup_20250114_100000.db.gz",
                "backup_20250108_100000.db.gz",
                "backup_20250101_100000.db.gz"
            ]
        );
        let weekly = deleted(&entries, policy(1, 0, 3));
        assert!(weekly.contains(&"backup_20250114_230000.db.gz".to_string()));
        assert!(!weekly.contains(&"backup_20250108_100000.db.gz".to_string()));
        assert!(!weekly.contains(&"backup_20250101_100000.db.gz".to_string()));
    }

    #[test]
    fn unreadable_backups_are_left_alone() {
        let entries = vec![
            entry("20250105_000000", false, false),
            entry("20250101_000000", false, true),
        ];
        assert!(deleted(&entries, policy(1, 0, 0)).is_empty());
    }
}
