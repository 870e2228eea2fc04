//! Data objects under the prefix with a backup's name and no record beside
//! them: an upload stopped before its record was written (a kill, a lost
//! network), an upload in progress, or a record deleted at the store. No
//! record says they were read back whole, so they are not restore points;
//! but `restore latest` taking an older point must not leave a newer one
//! unmentioned (docs/remote.md, "Data objects without a record").

use std::collections::HashSet;

use super::Remote;
use super::record::SUFFIX;
use crate::error::Result;
use crate::store::BackupName;

/// A data object without a record.
#[derive(Debug, Clone)]
pub(crate) struct Unrecorded {
    pub name: String,
    pub size: u64,
}

/// The data objects under the prefix with a backup's name and no record
/// object (valid or not) beside them, in name order.
pub(crate) fn list(remote: &Remote) -> Result<Vec<Unrecorded>> {
    let objects = remote.objects()?;
    let records: HashSet<&str> = objects
        .iter()
        .filter_map(|o| o.location.filename()?.strip_suffix(SUFFIX))
        .collect();
    let mut found: Vec<Unrecorded> = objects
        .iter()
        .filter_map(|o| {
            let name = o.location.filename()?;
            (BackupName::parse(name).is_some() && !records.contains(name)).then(|| Unrecorded {
                name: name.to_string(),
                size: o.size,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// After `restore latest` took `restored` from the remote: a WARN naming
/// each data object without a record whose name is newer, with how to use
/// it. The restore never fails for this (a listing that fails is only
/// logged).
pub(crate) fn warn_newer(remote: &Remote, restored: &str) {
    let Some(restored_name) = BackupName::parse(restored) else {
        return;
    };
    let found = match list(remote) {
        Ok(found) => found,
        Err(error) => {
            tracing::debug!("cannot look for data objects without a record: {error}");
            return;
        }
    };
    for object in found {
        let newer = BackupName::parse(&object.name)
            .is_some_and(|n| n.order_key() > restored_name.order_key());
        if newer {
            tracing::warn!("{}", newer_note(remote, &object, restored));
        }
    }
}

/// One line: what the object is, why it was not taken, how to use it.
fn newer_note(remote: &Remote, object: &Unrecorded, restored: &str) -> String {
    let name = &object.name;
    format!(
        "{} ({} bytes) is newer than {restored} but has no record there (an upload stopped before its record was written or still running, or its record deleted at the store), so it is not a restore point and was not taken; if it is a whole backup: `dbbackup sync` from a backup directory that holds {name} records it again, or copy it into the backup directory with an S3 client (a diff needs its base beside it), then `dbbackup verify {name}` and `dbbackup restore {name}`",
        remote.url().object(name),
        object.size
    )
}
