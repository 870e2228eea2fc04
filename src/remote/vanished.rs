//! Restore points an earlier sync proved on the remote that are gone from the
//! store, record and data object (a lifecycle rule, another tool, a bucket
//! restored from an older snapshot), with no copy in the backup directory or
//! a mirror to upload again. Dropping their proofs in silence was a false
//! "ok": the remote had lost restore points retention still keeps. Such a
//! point fails every sync (its proof is kept, so the next sync knows it too)
//! until newer points push it out of `remote_max_backups`, or the user accepts
//! the loss (`sync --forget-missing`, docs/remote.md).

use std::collections::HashSet;

use super::RemotePoint;
use super::proof::Proofs;
use crate::store::{BackupName, BackupSet, Kind};

/// The proved points gone from the store that retention would still keep:
/// fewer than `keep` points of their database listed are newer. Names with
/// a record that is not valid (`skip`) are named as that instead.
pub(crate) fn missing(
    proofs: &Proofs,
    listed: &[RemotePoint],
    set: &BackupSet,
    (keep, skip): (u32, &HashSet<String>),
) -> Vec<String> {
    let here: HashSet<&str> = set
        .restore_points
        .iter()
        .map(|e| e.file_name.as_str())
        .collect();
    let there: HashSet<&str> = listed.iter().map(|p| p.record.name.as_str()).collect();
    let mut gone: Vec<String> = proofs
        .proved()
        .filter(|(name, _)| !there.contains(name) && !here.contains(name) && !skip.contains(*name))
        .filter(|&(name, source)| newer(listed, name, source) < keep as usize)
        .map(|(name, _)| name.to_string())
        .collect();
    gone.sort();
    gone
}

/// How many restore points of `source` (any, when the proof did not record
/// it) `listed` holds that were made after `name`.
fn newer(listed: &[RemotePoint], name: &str, source: Option<&str>) -> usize {
    let Some(of) = BackupName::parse(name) else {
        return usize::MAX;
    };
    listed
        .iter()
        .filter(|p| p.misplaced.is_none() && p.record.metadata.kind != Kind::PreRestore)
        .filter(|p| source.is_none_or(|s| p.record.metadata.source == s))
        .filter_map(|p| BackupName::parse(&p.record.name))
        .filter(|n| n.order_key() > of.order_key())
        .count()
}
