//! Which of one database's backups to keep (README "Whose backup is it: restore
//! points", `max_backups`/`keep_*` in README "Configuration"), planned from
//! its [`BackupSet`] so another database's backups are never touched:
//! - restore points (legacy ones included): the `keep_last` newest, plus the
//!   newest of each of the last `keep_daily` days and `keep_weekly` ISO weeks (as
//!   restic's `forget` does), plus any `protected` names a caller must keep (the
//!   pre-job restore points of arrays still running);
//! - pre-restore copies: the `keep_pre_restore` newest that can be restored,
//!   counted apart (damaged ones: the newest [`KEEP_DAMAGED`] kept as evidence);
//! - failed snapshots: the newest [`KEEP_FAILED`], as evidence, counted apart, so
//!   they never displace a good backup;
//! - differential backups count as restore points like full ones, and a full
//!   backup that a kept diff (or a protected one) is built on is always kept;
//! - restore points that cannot be restored by cheap tests (truncated or
//!   extended, found damaged by a whole read, diffs whose base is missing or
//!   truncated): never counted, the newest [`KEEP_DAMAGED`] kept as evidence (a
//!   base copied back from a mirror makes such a diff whole again);
//! - restore points dated in the future (a fast clock): never counted, the
//!   newest `keep_last` kept;
//! - files whose metadata is damaged, implausible legacy files and legacy files
//!   whose database cannot be told: never deleted automatically and never
//!   counted (whose they are cannot be told; `verify` and `list` report them).

use std::collections::HashSet;
use std::fs;

use jiff::tz::TimeZone;

use crate::config::Settings;
use crate::error::{Context, Result, show};
use crate::restored::Restored;
use crate::store::{BackupDir, BackupSet, Entry, sync_dir};

/// Failed snapshots kept per database: enough to compare two, bounded so that a
/// corrupt database backed up by every array task cannot fill the disk.
pub(crate) const KEEP_FAILED: usize = 2;

/// Restore points of a database that cannot be restored (truncated, found
/// damaged, a diff without its base) kept as evidence, newest first; bounded like
/// failed snapshots, so that they never fill the disk and `check` recovers once a
/// good backup is the newest again.
pub(crate) const KEEP_DAMAGED: usize = 2;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_pre_restore: u32,
    /// `check.max_shrink`: a shrink by more than this holds the pre-shrink point.
    pub max_shrink_percent: f64,
}

/// The policy the settings give.
pub(crate) fn policy(settings: &Settings) -> Policy {
    Policy {
        keep_last: settings.max_backups,
        keep_daily: settings.keep_daily,
        keep_weekly: settings.keep_weekly,
        keep_pre_restore: settings.keep_pre_restore,
        max_shrink_percent: settings.check.max_shrink_percent,
    }
}

/// The restore point held because the database shrank: when the newest point's
/// database is smaller than the largest one's by more than `max_shrink_percent`,
/// the newest point of that largest size. Rows lost by a mistaken `DELETE` or a
/// re-created database must not age out unnoticed, so it is kept (and `check`
/// warns) until the user deletes it. `points` newest first.
pub(crate) fn pre_shrink<'a>(
    points: impl IntoIterator<Item = &'a Entry>,
    max_shrink_percent: f64,
) -> Option<&'a Entry> {
    held_by_shrink(&shrink_sizes(points), max_shrink_percent).map(|(e, _)| e)
}

/// [`pre_shrink`] of points already sized by [`shrink_sizes`] (`check` uses
/// the sizes too: an older backup's header is read once), with its size.
pub(crate) fn held_by_shrink<'a>(
    sized: &[(&'a Entry, u64)],
    max_shrink_percent: f64,
) -> Option<(&'a Entry, u64)> {
    let &(_, newest) = sized.first()?;
    let largest = sized.iter().map(|&(_, size)| size).max()?;
    let floor = largest as f64 * (100.0 - max_shrink_percent) / 100.0;
    if (newest as f64) >= floor {
        return None;
    }
    sized.iter().copied().find(|&(_, size)| size == largest)
}

/// The sizes the shrink rule compares, with their points: the pages in use
/// (the file's size less its free pages) when every point's are known, else
/// the file sizes. A backup made before its free pages were recorded has
/// them read from its own database header (the first bytes of its data,
/// T25b: an upgraded project's older points counted whole file sizes, and a
/// `DELETE` without `VACUUM` pushed them all out); a diff made then, or an
/// unreadable one, leaves file sizes for all.
pub(crate) fn shrink_sizes<'a>(
    points: impl IntoIterator<Item = &'a Entry>,
) -> Vec<(&'a Entry, u64)> {
    let sized: Vec<(&Entry, u64, Option<u64>)> = points
        .into_iter()
        .filter_map(|e| {
            let meta = e.meta.as_ref().ok()?;
            let free = meta.free_bytes.or_else(|| {
                crate::archive::decompress::db_header(e)
                    .map(|header| crate::sqlite_file::free_bytes(&header))
            });
            Some((e, meta.db_size, free))
        })
        .collect();
    let in_use = sized.iter().all(|(_, _, free)| free.is_some());
    sized
        .into_iter()
        .map(|(e, size, free)| match free {
            Some(free) if in_use => (e, size.saturating_sub(free)),
            _ => (e, size),
        })
        .collect()
}

/// Which of a set's backups retention keeps and which it deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeepOrDelete {
    pub keep: Vec<String>,
    pub delete: Vec<String>,
    /// The pre-shrink restore point kept beyond the policy, if any.
    pub held: Option<String>,
    /// Whether every restore point newer than `held` is a diff of it
    /// ([`only_diffs_since`]): the advice then waits for a full backup.
    pub held_is_base: bool,
    /// Backups kept because they stand in for a restore's pre-restore copy,
    /// that the count alone would delete.
    pub undo: Vec<String>,
    /// Kept only because a caller protected them (a job's pre-job restore
    /// point), newest first: the policy alone would delete them.
    pub pinned: Vec<String>,
    /// Restore points dated in the future (a node's clock ahead), kept apart
    /// from the count: their date cannot place them among the others.
    pub future: Vec<String>,
}

/// Decide for one database's set; `protected` names are kept whatever their age;
/// `restored`: the last restore into the database (`restored::read` of the
/// directory the set is in).
pub(crate) fn plan(
    set: &BackupSet,
    policy: Policy,
    protected: &HashSet<String>,
    restored: Option<&Restored>,
) -> KeepOrDelete {
    plan_with(set, policy, protected, restored, |e| {
        crate::diff::restore_problem(e).is_none()
    })
}

/// [`plan`], with the cheap "can this restore point be restored" test given.
fn plan_with(
    set: &BackupSet,
    policy: Policy,
    protected: &HashSet<String>,
    restored: Option<&Restored>,
    restorable: impl Fn(&Entry) -> bool,
) -> KeepOrDelete {
    // A restore point that cheap checks show cannot be restored (truncated,
    // found damaged, a diff whose base is missing or truncated) is never counted:
    // it must not push out an older restore point that can be. The newest
    // `KEEP_DAMAGED` are kept as evidence.
    let (restorable_points, unrestorable): (Vec<&Entry>, Vec<&Entry>) =
        set.restore_points.iter().partition(|e| restorable(e));
    // One dated in the future cannot be placed among the others by its date: kept
    // (the newest `keep_last` of them), never counted.
    let (future, points): (Vec<&Entry>, Vec<&Entry>) = restorable_points
        .into_iter()
        .partition(|e| e.future_dated());
    let mut keep: HashSet<&str> = points
        .iter()
        .take(policy.keep_last.max(1) as usize)
        .map(|e| e.file_name.as_str())
        .collect();
    keep_newest_per(&points, policy.keep_daily, &mut keep, |e| {
        let date = e.created().to_zoned_datetime(TimeZone::UTC).date();
        (i32::from(date.year()), i32::from(date.day_of_year()))
    });
    keep_newest_per(&points, policy.keep_weekly, &mut keep, |e| {
        let week = e
            .created()
            .to_zoned_datetime(TimeZone::UTC)
            .date()
            .iso_week_date();
        (i32::from(week.year()), i32::from(week.week()))
    });
    // The size drop a restore made is the user's act: compared only since it.
    let held = pre_shrink(
        crate::restored::since(points.iter().copied(), restored),
        policy.max_shrink_percent,
    );
    keep.extend(held.map(|e| e.file_name.as_str()));
    // Likewise a pre-restore copy that cannot be restored is not one of the
    // `keep_pre_restore`: kept, bounded, as evidence.
    let (pre_restore, damaged_pre): (Vec<&Entry>, Vec<&Entry>) =
        set.pre_restore.iter().partition(|e| restorable(e));
    keep.extend(
        pre_restore
            .iter()
            .take(policy.keep_pre_restore as usize)
            .map(|e| e.file_name.as_str()),
    );
    let undo = undo_kept(set, &pre_restore, restored, policy.keep_pre_restore);
    let undo_beyond = not_kept_yet(&undo, &keep);
    keep.extend(undo.iter().map(String::as_str));
    keep.extend(
        damaged_pre
            .iter()
            .take(KEEP_DAMAGED)
            .map(|e| e.file_name.as_str()),
    );
    keep.extend(
        set.failed
            .iter()
            .take(KEEP_FAILED)
            .map(|e| e.file_name.as_str()),
    );
    keep.extend(set.damaged.iter().map(|e| e.file_name.as_str()));
    keep.extend(
        unrestorable
            .iter()
            .take(KEEP_DAMAGED)
            .map(|e| e.file_name.as_str()),
    );
    let future: Vec<String> = future
        .iter()
        .take(policy.keep_last.max(1) as usize)
        .map(|e| e.file_name.clone())
        .collect();
    keep.extend(future.iter().map(String::as_str));
    // Never a diff without its base: the bases of every diff that stays.
    let bases: Vec<&str> = set
        .restore_points
        .iter()
        .filter(|e| keep.contains(e.file_name.as_str()) || protected.contains(&e.file_name))
        .filter_map(|e| e.meta.as_ref().ok()?.diff.as_ref())
        .map(|d| d.base.as_str())
        .collect();
    let held_is_base = held.is_some_and(|h| only_diffs_since(&set.restore_points, &h.file_name));
    keep.extend(bases);
    let mut plan = KeepOrDelete {
        keep: Vec::new(),
        delete: Vec::new(),
        held: held.map(|e| e.file_name.clone()),
        held_is_base,
        undo: undo_beyond,
        pinned: Vec::new(),
        future: future.clone(),
    };
    let mut own: Vec<&Entry> = set
        .restore_points
        .iter()
        .chain(&set.pre_restore)
        .chain(&set.failed)
        .chain(&set.damaged)
        .collect();
    own.sort_by_key(|e| std::cmp::Reverse(e.name.order_key()));
    for entry in own {
        if keep.contains(entry.file_name.as_str()) {
            plan.keep.push(entry.file_name.clone());
        } else if protected.contains(&entry.file_name) {
            plan.keep.push(entry.file_name.clone());
            plan.pinned.push(entry.file_name.clone());
        } else {
            plan.delete.push(entry.file_name.clone());
        }
    }
    plan
}

/// Those of `names` that `keep` does not hold yet: the undo points said to be
/// kept beyond the count, not on every run while among the newest anyway
/// (T25 #8).
fn not_kept_yet(names: &[String], keep: &HashSet<&str>) -> Vec<String> {
    names
        .iter()
        .filter(|name| !keep.contains(name.as_str()))
        .cloned()
        .collect()
}

/// The backups standing in for a pre-restore copy (`restored::Undo`) that
/// are among the newest `keep_pre_restore` undos, counted with the real
/// pre-restore copies by time: kept exactly as long as a copy would be.
fn undo_kept(
    set: &BackupSet,
    pre_restore: &[&Entry],
    restored: Option<&Restored>,
    keep_pre_restore: u32,
) -> Vec<String> {
    let Some(restored) = restored else {
        return Vec::new();
    };
    let mut undos: Vec<(jiff::Timestamp, Option<&str>)> = pre_restore
        .iter()
        .map(|e| (e.created(), None))
        .chain(
            // One naming a pre-restore copy is counted as that copy already.
            restored
                .undo
                .iter()
                .filter(|u| !set.pre_restore.iter().any(|e| e.file_name == u.backup))
                .map(|u| (u.time, Some(u.backup.as_str()))),
        )
        .collect();
    undos.sort_by_key(|&(time, _)| std::cmp::Reverse(time));
    let here: HashSet<&str> = set
        .restore_points
        .iter()
        .map(|e| e.file_name.as_str())
        .collect();
    let mut names: Vec<String> = Vec::new();
    for (_, name) in undos.into_iter().take(keep_pre_restore as usize) {
        if let Some(name) = name.filter(|n| here.contains(n) && !names.iter().any(|k| k == n)) {
            names.push(name.to_string());
        }
    }
    names
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

/// Say (once a run) which pre-shrink restore point is kept beyond the policy.
pub(crate) fn say_held(plan: &KeepOrDelete, policy: Policy) {
    if let Some(name) = &plan.held {
        tracing::warn!(
            "retention keeps {name}: the database is smaller by more than {}% than in it (check.max_shrink); {}",
            policy.max_shrink_percent,
            shrink_advice(name, plan.held_is_base, "")
        );
    }
}

/// Whether deleting `held` now would leave no newer restore point restorable:
/// some newer point is a diff of it and none newer is a full backup.
/// `points` newest first.
pub(crate) fn only_diffs_since<'a>(
    points: impl IntoIterator<Item = &'a Entry>,
    held: &str,
) -> bool {
    let mut diff_of_held = false;
    for entry in points.into_iter().take_while(|e| e.file_name != held) {
        match entry.meta.as_ref().map(|m| m.diff.as_ref()) {
            Ok(None) => return false,
            Ok(Some(d)) if d.base == held => diff_of_held = true,
            _ => {}
        }
    }
    diff_of_held
}

/// What to do about a held pre-shrink point `name`. When newer restore points
/// are diffs of it, deleting it now would leave none of them restorable: the
/// advice waits for a full backup (made every `diff_backups` backups), which
/// is no diff of it. `also`: what else goes with the file (the remote's record).
pub(crate) fn shrink_advice(name: &str, is_base: bool, also: &str) -> String {
    if is_base {
        format!(
            "if the shrink was intended, delete {name}{also} once a full backup newer than it exists (the newer restore points are diffs of it: deleting it now leaves them unrestorable)"
        )
    } else {
        format!("if the shrink was intended, delete {name}{also}")
    }
}

/// Say which backups are kept beyond the count, and why: the undo of a
/// restore, and restore points dated in the future.
pub(crate) fn say_undo(plan: &KeepOrDelete) {
    for name in &plan.undo {
        tracing::info!(
            "retention keeps {name}: it holds what a restore replaced (no pre-restore copy was made), kept like one (keep_pre_restore)"
        );
    }
    for name in &plan.future {
        tracing::info!(
            "retention keeps {name} apart from the count: it is dated in the future (a node's clock was ahead), so its date cannot place it among the others; delete it by hand once newer backups exist (`dbbackup check` names it)"
        );
    }
}

/// Delete what the plan says. Call only while holding the directory's lock.
pub(crate) fn apply(dir: &BackupDir, plan: &KeepOrDelete) -> Result<()> {
    for name in &plan.delete {
        let path = dir.path().join(name);
        match fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(target: crate::logging::REPORTED, "retention removed {name}");
                crate::diff::pagehash::remove(dir.path(), name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).context(|| format!("cannot remove old backup {}", show(&path)));
            }
        }
    }
    if !plan.delete.is_empty() {
        sync_dir(dir.path())?;
    }
    crate::diff::pagehash::remove_orphans(dir.path());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every point restorable, none protected, no restore recorded.
    fn plan_all_restorable(set: &BackupSet, policy: Policy) -> KeepOrDelete {
        plan_with(set, policy, &HashSet::new(), None, |_| true)
    }
    use crate::store::metadata::Kind;
    use crate::store::ownership::tests::{entry as owned, legacy};
    use crate::store::{BackupSet, DbId};
    use std::path::Path;

    const DB: &str = "/proj/a.db";

    fn entry(stamp: &str, failed: bool, damaged: bool) -> Entry {
        let mut e = owned(stamp, DB, Kind::Manual, failed);
        if damaged {
            e.meta = Err("damaged metadata: x".into());
        }
        e
    }

    /// The set as a.db sees it, its config file giving it the directory.
    fn set(entries: Vec<Entry>) -> BackupSet {
        let db = DbId::of(Path::new(DB));
        let legacy = crate::store::Legacy::judge_claimed(&entries, &db, true);
        BackupSet::judged(entries, &db, &legacy)
    }

    fn policy(keep_last: u32, keep_daily: u32, keep_weekly: u32) -> Policy {
        Policy {
            keep_last,
            keep_daily,
            keep_weekly,
            keep_pre_restore: 3,
            max_shrink_percent: 50.0,
        }
    }

    fn deleted(entries: &[Entry], policy: Policy) -> Vec<String> {
        plan_with(
            &set(entries.to_vec()),
            policy,
            &HashSet::new(),
            None,
            |_| true,
        )
        .delete
    }

    fn diff(stamp: &str, base: &str) -> Entry {
        let mut e = entry(stamp, false, false);
        e.name = e.name.as_diff(true);
        e.file_name = e.name.file_name();
        if let Ok(meta) = &mut e.meta {
            meta.diff = Some(crate::store::metadata::DiffInfo {
                kind: crate::store::metadata::DiffType::Diff,
                base: base.into(),
                base_checksum: crate::store::Checksum::of(b""),
                base_size: 1,
                page_size: 4096,
                page_count: 1,
                changed_pages: 1,
                diff_checksum: crate::store::Checksum::of(b""),
                diff_index: 1,
            });
        }
        e
    }

    #[test]
    fn an_unrestorable_diff_is_kept_and_never_pushes_out_a_restorable_point() {
        let entries = vec![
            diff("20250104_000000", "backup_20250103_000000.db.gz"),
            diff("20250103_120000", "backup_20250103_000000.db.gz"),
            entry("20250102_000000", false, false),
            entry("20250101_000000", false, false),
        ];
        // The base of both diffs is gone: they cannot count as the 2 kept.
        let no_base = |e: &Entry| !e.name.diff;
        let plan = plan_with(
            &set(entries),
            policy(2, 0, 0),
            &HashSet::new(),
            None,
            no_base,
        );
        assert!(plan.delete.is_empty(), "{plan:?}");
        assert_eq!(plan.keep.len(), 4);
    }

    #[test]
    fn unrestorable_points_are_kept_as_evidence_bounded_and_never_counted() {
        let entries = vec![
            entry("20250106_000000", false, false),
            entry("20250105_000000", false, false),
            entry("20250104_000000", false, false),
            entry("20250103_000000", false, false),
            entry("20250102_000000", false, false),
            entry("20250101_000000", false, false),
        ];
        // The four newest cannot be restored (truncated, say).
        let cut = |e: &Entry| e.created() < "2025-01-03T00:00:00Z".parse().unwrap();
        let plan = plan_with(&set(entries), policy(1, 0, 0), &HashSet::new(), None, cut);
        assert_eq!(
            plan.keep,
            vec![
                "backup_20250106_000000.db.gz",
                "backup_20250105_000000.db.gz",
                "backup_20250102_000000.db.gz",
            ],
            "the newest intact one and the newest {KEEP_DAMAGED} as evidence"
        );
        assert_eq!(
            plan.delete,
            vec![
                "backup_20250104_000000.db.gz",
                "backup_20250103_000000.db.gz",
                "backup_20250101_000000.db.gz",
            ]
        );
    }

    #[test]
    fn a_future_dated_point_is_kept_and_never_pushes_out_a_correctly_dated_one() {
        let entries = vec![
            entry("20991231_000000", false, false),
            entry("20250102_000000", false, false),
            entry("20250101_000000", false, false),
        ];
        let plan = plan_all_restorable(&set(entries), policy(1, 0, 0));
        assert_eq!(plan.delete, vec!["backup_20250101_000000.db.gz"]);
        assert!(
            plan.keep
                .contains(&"backup_20991231_000000.db.gz".to_string())
        );
        assert!(
            plan.keep
                .contains(&"backup_20250102_000000.db.gz".to_string())
        );
    }

    #[test]
    fn a_kept_or_protected_diff_keeps_its_base() {
        let base1 = "backup_20250101_000000.db.gz";
        let base2 = "backup_20250104_000000.db.gz";
        let entries = vec![
            diff("20250105_000000", base2),
            entry("20250104_000000", false, false),
            diff("20250103_000000", base1),
            diff("20250102_000000", base1),
            entry("20250101_000000", false, false),
        ];
        let plan1 = plan_with(
            &set(entries.clone()),
            policy(3, 0, 0),
            &HashSet::new(),
            None,
            |_| true,
        );
        assert_eq!(plan1.delete, vec!["backup_20250102_000000.diff.gz"]);
        assert!(plan1.keep.contains(&base1.to_string()), "{plan1:?}");
        let plan2 = plan_with(
            &set(entries.clone()),
            policy(2, 0, 0),
            &HashSet::new(),
            None,
            |_| true,
        );
        assert_eq!(
            plan2.delete,
            vec![
                "backup_20250103_000000.diff.gz",
                "backup_20250102_000000.diff.gz",
                base1
            ]
        );
        let protected = HashSet::from(["backup_20250102_000000.diff.gz".to_string()]);
        let plan3 = plan_with(&set(entries), policy(1, 0, 0), &protected, None, |_| true);
        assert_eq!(plan3.delete, vec!["backup_20250103_000000.diff.gz"]);
        assert!(plan3.keep.contains(&base1.to_string()));
        assert!(plan3.keep.contains(&base2.to_string()));
    }

    #[test]
    fn protected_restore_points_are_kept() {
        let entries = vec![
            entry("20250105_000000", false, false),
            entry("20250104_000000", false, false),
            entry("20250103_000000", false, false),
        ];
        let protected: HashSet<String> = ["backup_20250103_000000.db.gz".to_string()].into();
        let plan = plan_with(&set(entries), policy(1, 0, 0), &protected, None, |_| true);
        assert_eq!(plan.delete, vec!["backup_20250104_000000.db.gz"]);
        assert!(
            plan.keep
                .contains(&"backup_20250103_000000.db.gz".to_string())
        );
    }

    fn sized(stamp: &str, db_size: u64) -> Entry {
        let mut e = entry(stamp, false, false);
        if let Ok(meta) = &mut e.meta {
            meta.db_size = db_size;
        }
        e
    }

    /// `sized` with `free` bytes of free pages recorded.
    fn with_free(stamp: &str, db_size: u64, free: Option<u64>) -> Entry {
        let mut e = sized(stamp, db_size);
        if let Ok(meta) = &mut e.meta {
            meta.free_bytes = free;
        }
        e
    }

    #[test]
    fn the_pages_in_use_are_compared_only_when_every_point_recorded_them() {
        let deleted = with_free("20250103_000000", 1000, Some(990));
        let full = with_free("20250102_000000", 1000, Some(0));
        let points = [deleted.clone(), full.clone()];
        assert_eq!(
            pre_shrink(&points, 50.0).map(|e| e.file_name.as_str()),
            Some("backup_20250102_000000.db.gz")
        );
        // A point made before free pages were recorded: file sizes, no shrink.
        let old = with_free("20250102_000000", 1000, None);
        assert!(pre_shrink(&[deleted, old], 50.0).is_none());
    }

    #[test]
    fn a_shrink_holds_the_newest_point_of_the_largest_size() {
        let entries = vec![
            sized("20250105_000000", 10),
            sized("20250104_000000", 10),
            sized("20250103_000000", 1000),
            sized("20250102_000000", 1000),
        ];
        let plan = plan_with(
            &set(entries.clone()),
            policy(1, 0, 0),
            &HashSet::new(),
            None,
            |_| true,
        );
        assert_eq!(plan.held.as_deref(), Some("backup_20250103_000000.db.gz"));
        assert_eq!(
            plan.delete,
            vec![
                "backup_20250104_000000.db.gz",
                "backup_20250102_000000.db.gz"
            ]
        );
        // Within max_shrink (50%): nothing held.
        let grown: Vec<Entry> = vec![sized("20250106_000000", 500)]
            .into_iter()
            .chain(entries)
            .collect();
        let plan = plan_with(&set(grown), policy(1, 0, 0), &HashSet::new(), None, |_| {
            true
        });
        assert_eq!(plan.held, None);
        assert_eq!(plan.keep, vec!["backup_20250106_000000.db.gz"]);
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
    fn failed_snapshots_are_bounded_and_never_displace_good_backups() {
        let entries = vec![
            entry("20250106_000000", true, false),
            entry("20250105_000000", true, false),
            entry("20250104_000000", false, false),
            entry("20250103_000000", true, false),
            entry("20250102_000000", false, false),
        ];
        let plan = plan_all_restorable(&set(entries), policy(1, 0, 0));
        assert_eq!(
            plan.keep,
            vec![
                "backup_20250106_000000.failed.db.gz",
                "backup_20250105_000000.failed.db.gz",
                "backup_20250104_000000.db.gz",
            ]
        );
        assert_eq!(
            plan.delete,
            vec![
                "backup_20250103_000000.failed.db.gz",
                "backup_20250102_000000.db.gz"
            ]
        );
    }

    #[test]
    fn pre_restore_copies_have_their_own_count() {
        let mut entries: Vec<Entry> = (1..=5)
            .map(|day| owned(&format!("2025010{day}_120000"), DB, Kind::PreRestore, false))
            .collect();
        entries.push(entry("20250101_000000", false, false));
        let plan = plan_all_restorable(&set(entries), policy(1, 0, 0));
        assert_eq!(
            plan.delete,
            vec![
                "backup_20250102_120000.db.gz",
                "backup_20250101_120000.db.gz"
            ]
        );
        assert!(
            plan.keep
                .contains(&"backup_20250101_000000.db.gz".to_string())
        );
    }

    /// A backup standing in for a pre-restore copy counts among the newest
    /// `keep_pre_restore` by its restore's time: kept while it is one of
    /// them, under normal retention once newer copies push it out.
    #[test]
    fn an_undo_stand_in_is_kept_like_a_pre_restore_copy_and_ages_out_like_one() {
        let undo = "backup_20250102_000000.db.gz";
        let restored = Restored {
            time: "2025-01-03T00:00:00Z".parse().unwrap(),
            backup: "backup_20250101_000000.db.gz".into(),
            seq: 3,
            undo: vec![crate::restored::Undo {
                time: "2025-01-03T00:00:00Z".parse().unwrap(),
                backup: undo.into(),
            }],
            forced: false,
        };
        let mut entries: Vec<Entry> = ["20250105_000000", "20250104_000000", "20250102_000000"]
            .iter()
            .map(|stamp| entry(stamp, false, false))
            .collect();
        let plan_of = |entries: &[Entry]| {
            let mut policy = policy(1, 0, 0);
            policy.keep_pre_restore = 1;
            plan_with(
                &set(entries.to_vec()),
                policy,
                &HashSet::new(),
                Some(&restored),
                |_| true,
            )
        };
        let plan = plan_of(&entries);
        assert_eq!(plan.delete, vec!["backup_20250104_000000.db.gz"]);
        assert_eq!(plan.undo, vec![undo.to_string()]);
        // Among the newest the count keeps anyway: kept, and not said (T25 #8).
        let mut roomy = policy(3, 0, 0);
        roomy.keep_pre_restore = 1;
        let plan = plan_with(
            &set(entries.clone()),
            roomy,
            &HashSet::new(),
            Some(&restored),
            |_| true,
        );
        assert!(plan.delete.is_empty() && plan.undo.is_empty(), "{plan:?}");
        // A newer restore's real copy: the stand-in is no longer among the 1.
        entries.push(owned("20250106_000000", DB, Kind::PreRestore, false));
        let plan = plan_of(&entries);
        assert!(plan.delete.contains(&undo.to_string()), "{plan:?}");
        assert!(plan.undo.is_empty());
    }

    #[test]
    fn other_databases_and_damaged_files_are_never_planned_for_deletion() {
        let entries = vec![
            entry("20250105_000000", false, false),
            owned("20250104_000000", "/proj/b.db", Kind::Manual, false),
            owned("20250103_000000", "/proj/b.db", Kind::Manual, false),
            entry("20250102_000000", false, true),
        ];
        let plan = plan_all_restorable(&set(entries), policy(1, 0, 0));
        assert!(plan.delete.is_empty(), "{plan:?}");
        assert!(
            !plan
                .keep
                .iter()
                .any(|n| n.contains("20250104") || n.contains("20250103")),
            "b.db's backups are not a.db's to keep or delete"
        );
        assert_eq!(plan.keep.len(), 2);
    }

    #[test]
    fn legacy_backups_age_out_and_protected_names_stay() {
        let entries = vec![
            entry("20250105_000000", false, false),
            entry("20250104_000000", false, false),
            legacy("20250101_000000"),
        ];
        assert_eq!(
            deleted(&entries, policy(2, 0, 0)),
            vec!["backup_20250101_000000.db.gz"]
        );
        let protected = HashSet::from(["backup_20250104_000000.db.gz".to_string()]);
        let plan = plan_with(&set(entries), policy(1, 0, 0), &protected, None, |_| true);
        assert_eq!(plan.delete, vec!["backup_20250101_000000.db.gz"]);
    }

    #[test]
    fn legacy_backups_of_unknown_owner_or_implausible_are_never_planned_for_deletion() {
        let mut cut = legacy("20250102_000000");
        cut.implausible = Some("truncated".into());
        let entries = vec![
            entry("20250105_000000", false, false),
            owned("20250104_000000", "/proj/b.db", Kind::Manual, false),
            legacy("20250101_000000"),
            cut,
        ];
        let plan = plan_all_restorable(&set(entries), policy(1, 0, 0));
        assert!(plan.delete.is_empty(), "{plan:?}");
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
}
