//! A backup copied over another's name (`cp` of an older backup onto a newer
//! one, a copy put back from a mirror or tape under the wrong name): both
//! files record one backup, made at one instant, so the later name holds no
//! backup of its own. Listed, verified and restored as itself, it made
//! `latest` the older content while every report said the newest backup was
//! fine (T30 F12). The earliest name not from before the backup was made is
//! the backup's own (a name is never earlier than its backup's creation);
//! the others are damaged.

use std::collections::HashMap;

use super::Entry;
use super::checksum::Checksum;

/// Mark each entry that records the same backup as an earlier-named one.
pub(super) fn mark(entries: &mut [Entry]) {
    for (i, why) in copies(entries) {
        entries[i].damage.get_or_insert(why);
    }
}

/// The entries among `entries` that record the same backup as an
/// earlier-named one, by file name, with why they are no backup of their own.
pub(super) fn of(entries: &[Entry]) -> HashMap<String, String> {
    copies(entries)
        .into_iter()
        .map(|(i, why)| (entries[i].file_name.clone(), why))
        .collect()
}

fn copies(entries: &[Entry]) -> Vec<(usize, String)> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // The backup's own name first: one named before the backup was made is
    // a copy whatever its place (`cp B A` of a newer B, T32 G8).
    order.sort_by_key(|&i| (named_before_made(&entries[i]), entries[i].name.order_key()));
    // Of one kind of name (a failed snapshot's copy is no restore point
    // anyway); a file already known damaged says that instead.
    let mut first: HashMap<(jiff::Timestamp, Checksum, bool, bool), usize> = HashMap::new();
    let mut found = Vec::new();
    for i in order {
        let entry = &entries[i];
        let (Ok(meta), None) = (&entry.meta, &entry.damage) else {
            continue;
        };
        // The name it was published under, in its header (since stop 41):
        // any other name is a copy's, whatever the times (T32 G5: the
        // original deleted, the copy named minutes after it was made).
        if let Some(own) = meta.name.as_deref().filter(|own| *own != entry.file_name) {
            let why = if entries.iter().any(|e| e.file_name == own) {
                format!(
                    "its header says it was published as {own}: a copy of that backup under another name, not a backup of its own; delete it, or put the backup of this name back from a mirror"
                )
            } else {
                // Renamed, its own name free: the only file of that backup
                // (T34 N10). Never "delete it".
                format!(
                    "its header says it was published as {own}, and no file of that name is here: that backup renamed; rename it back (`mv {} {own}` in the backup directory) and it is that restore point again",
                    entry.file_name
                )
            };
            found.push((i, why));
            continue;
        }
        let key = (
            meta.created,
            meta.checksum,
            entry.name.failed,
            entry.name.diff,
        );
        match first.get(&key) {
            // Alone, under a name from before it was made: a copy too.
            None if named_before_made(entry) => {
                first.insert(key, i);
                found.push((
                    i,
                    format!(
                        "it holds a backup made at {}, after the time its name says: a copy or a renamed backup, not a backup of its own; if no other file holds that backup, rename this one to a name of that second ({}) and it is that restore point again, else delete it",
                        meta.created,
                        crate::store::BackupName::new(
                            meta.created.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime(),
                            0,
                            entry.name.failed
                        )
                        .as_diff(entry.name.diff)
                        .file_name()
                    ),
                ));
            }
            None => {
                first.insert(key, i);
            }
            Some(&original) => found.push((
                i,
                format!(
                    "it holds the same backup as {} (made at {}, same content): a copy under another name, not a backup of its own; delete it, or put the backup of this name back from a mirror",
                    entries[original].file_name, meta.created
                ),
            )),
        }
    }
    found
}

/// Named for a second before its backup was made: never so when published
/// (a name is the creation second, or a later one when the clock stepped
/// back), so the file is a copy of a later backup.
fn named_before_made(entry: &Entry) -> bool {
    let Ok(meta) = &entry.meta else {
        return false;
    };
    entry
        .name
        .stamp
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .is_ok_and(|named| named.timestamp() + jiff::SignedDuration::from_secs(1) <= meta.created)
}
