//! Data objects under the prefix with a backup's name and no record beside
//! them: an upload stopped before its record was written (a kill, a lost
//! network), an upload in progress, or a record deleted at the store. No
//! record says they were read back whole, so they are not restore points;
//! but `restore latest` taking an older point must not leave a newer one
//! unmentioned (docs/remote.md, "Data objects without a record").

use std::collections::{HashMap, HashSet};

use super::record::SUFFIX;
use super::{Remote, RemotePoint};
use crate::error::Result;
use crate::store::{BackupName, BackupSet};

/// How old, by the store's clock, a data object without a record must be
/// before `sync` deletes it: far longer than any upload takes between its
/// data object and its record, so another sync's upload in progress (from
/// another machine) is never taken for a stopped one.
const STALE_HOURS: i64 = 24;

/// A data object without a record.
#[derive(Debug, Clone)]
pub(crate) struct Unrecorded {
    pub name: String,
    pub size: u64,
    /// When the store wrote it, by the store's clock.
    pub written: jiff::Timestamp,
}

/// The data objects under the prefix with a backup's name and no record
/// object beside them (valid or not, except those `invalid` names: records
/// that are none), in name order.
pub(crate) fn list(remote: &Remote, invalid: &HashSet<String>) -> Result<Vec<Unrecorded>> {
    let objects = remote.objects()?;
    let records: HashSet<&str> = objects
        .iter()
        .filter_map(|o| o.location.filename()?.strip_suffix(SUFFIX))
        .filter(|name| !invalid.contains(*name))
        .collect();
    let mut found: Vec<Unrecorded> = objects
        .iter()
        .filter_map(|o| {
            let name = o.location.filename()?;
            (BackupName::parse(name).is_some() && !records.contains(name)).then(|| Unrecorded {
                name: name.to_string(),
                size: o.size,
                written: super::client::timestamp_of(o),
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// A WARN naming each data object without a record whose name is newer
/// than `newest` (the restore point a command took or shows as the newest;
/// `None`: there is none), with how to use it; `so` says what the command
/// did instead. The command never fails for this (a listing that fails is
/// only logged).
pub(crate) fn warn_newer(remote: &Remote, newest: Option<&str>, so: &str) {
    let newest_name = newest.and_then(BackupName::parse);
    // A record that is none (changed at the store) is no record: its data
    // object, the newest backup maybe, is named too (T33 H15).
    let invalid = remote
        .invalid_records()
        .into_iter()
        .map(|r| r.name)
        .collect();
    let found = match list(remote, &invalid) {
        Ok(found) => found,
        Err(error) => {
            tracing::debug!("cannot look for data objects without a record: {error}");
            return;
        }
    };
    for object in found {
        let newer = BackupName::parse(&object.name).is_some_and(|n| {
            newest_name
                .as_ref()
                .is_none_or(|newest| n.order_key() > newest.order_key())
        });
        if newer {
            tracing::warn!("{}", newer_note(remote, &object, newest, so));
        }
    }
}

/// One line: what the object is, why it was not taken, how to use it.
fn newer_note(remote: &Remote, object: &Unrecorded, newest: Option<&str>, so: &str) -> String {
    let name = &object.name;
    let than = newest.unwrap_or("every restore point there");
    format!(
        "{} ({} bytes), newer than {than}, has no valid record beside it (an upload stopped before its record was written or still running, or its record deleted or changed at the store): not a restore point, so {so}; if it is a whole backup, `dbbackup sync` from a backup directory holding {name} records it again (a record changed at the store: delete that first), or copy it into the backup directory with an S3 client (a diff needs its base beside it), then `dbbackup verify {name}` and `dbbackup restore {name}`",
        remote.url().object(name),
        object.size
    )
}

/// `sync`: delete the data objects without a record written more than
/// [`STALE_HOURS`] before now by the store's clock (`Remote::store_now`:
/// this machine's clock may be anything), except those named like a backup
/// the backup directory holds (`sync` uploads and records a restore point
/// again; the others are left to the user), and unless a restore point with
/// a record (`recorded`), proved whole (`proved`), is of the same database, as the object's own
/// header says, and newer both by name and by when the store wrote its
/// data (no earlier): the newest backup data of a database under the prefix is never
/// deleted for lack of a record (`restore latest` names it), nor another
/// database's, nor one from a node whose clock was behind (T37 S1), nor an
/// object without a dbbackup header (a file copied there by hand). The
/// deleted, with their age in hours.
pub(crate) fn clean<'a>(
    remote: &Remote,
    set: &BackupSet,
    recorded: impl IntoIterator<Item = &'a RemotePoint>,
    proved: &HashSet<String>,
) -> Result<Vec<(String, i64)>> {
    let held: HashSet<&str> = set.own_files().map(|e| e.file_name.as_str()).collect();
    let recorded: Vec<&RemotePoint> = recorded.into_iter().collect();
    let newest_name = recorded
        .iter()
        .filter_map(|p| Some(BackupName::parse(&p.record.name)?.order_key()))
        .max();
    let older = |name: &str| {
        BackupName::parse(name).is_some_and(|n| newest_name.is_some_and(|at| n.order_key() < at))
    };
    // A recorded diff's base is never deleted: the diff is restorable only
    // with it, record or not (T38 V10).
    let bases: HashSet<&str> = recorded
        .iter()
        .filter_map(|p| Some(p.record.metadata.diff.as_ref()?.base.as_str()))
        .collect();
    let candidates: Vec<Unrecorded> = list(remote, &HashSet::new())?
        .into_iter()
        .filter(|o| {
            !held.contains(o.name.as_str()) && !bases.contains(o.name.as_str()) && older(&o.name)
        })
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let now = remote.store_now()?;
    let written: HashMap<String, jiff::Timestamp> = remote
        .objects()?
        .iter()
        .filter_map(|o| {
            Some((
                o.location.filename()?.to_string(),
                super::client::timestamp_of(o),
            ))
        })
        .collect();
    let mut deleted = Vec::new();
    for object in candidates {
        let hours = now.duration_since(object.written).as_hours();
        if hours < STALE_HOURS {
            continue;
        }
        let Some(meta) = remote.data_header(&object.name) else {
            continue;
        };
        let name = BackupName::parse(&object.name).map(|n| n.order_key());
        // Only a point proved whole stands for an older object (T38 V10:
        // one this very run found damaged did).
        let superseded = recorded.iter().any(|point| {
            proved.contains(&point.record.name)
                && point.record.metadata.source == meta.source
                && BackupName::parse(&point.record.name).map(|n| n.order_key()) > name
                && written
                    .get(&point.record.name)
                    // The listing's times are to the second (S3): a
                    // tie is written together, not after.
                    .is_some_and(|at| *at >= object.written)
        });
        // A record written since the listing makes it a point again.
        if !superseded || remote.record(&object.name)?.is_some() {
            continue;
        }
        remote.delete_data(&object.name)?;
        tracing::info!(
            "deleted {} ({} bytes, no record, written {hours} h ago by the store's clock)",
            remote.url().object(&object.name),
            object.size
        );
        deleted.push((object.name, hours));
    }
    Ok(deleted)
}
