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

/// A file that holds another backup than its name's.
#[derive(Debug, Clone)]
pub(crate) struct Copy {
    /// Why it is no backup of its own, and what to do.
    pub why: String,
    pub kind: CopyKind,
}

/// What a [`Copy`] is to the backup it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyKind {
    /// That backup is in the directory under its own name: this file adds
    /// nothing, and retention may delete it.
    Spare,
    /// That backup renamed, the only file of it here (its own name free,
    /// or taken by another backup since): never deleted (T35 R2, R9).
    Renamed { name_free: bool },
    /// Named before its backup was made, no header name to tell which
    /// backup's file it was: possibly the only one, never deleted.
    Unplaced,
}

impl Copy {
    /// Whether retention may delete it ([`CopyKind::Spare`]).
    pub(crate) fn deletable(&self) -> bool {
        self.kind == CopyKind::Spare
    }
}

/// Mark each entry that records the same backup as an earlier-named one.
pub(super) fn mark(entries: &mut [Entry]) {
    for (i, copy) in copies(entries) {
        entries[i].damage.get_or_insert(copy.why);
    }
}

/// The entries among `entries` that hold another backup than their name's,
/// by file name.
pub(super) fn of(entries: &[Entry]) -> HashMap<String, Copy> {
    copies(entries)
        .into_iter()
        .map(|(i, copy)| (entries[i].file_name.clone(), copy))
        .collect()
}

/// The same backup: made at one instant, one content, one kind of name.
type Key = (jiff::Timestamp, Checksum, bool, bool);

fn key_of(entry: &Entry) -> Option<Key> {
    let meta = entry.meta.as_ref().ok()?;
    Some((
        meta.created,
        meta.checksum,
        entry.name.failed,
        entry.name.diff,
    ))
}

fn copies(entries: &[Entry]) -> Vec<(usize, Copy)> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // The backup's own name first: one named before the backup was made is
    // a copy whatever its place (`cp B A` of a newer B, T32 G8).
    order.sort_by_key(|&i| (named_before_made(&entries[i]), entries[i].name.order_key()));
    // Of one kind of name (a failed snapshot's copy is no restore point
    // anyway); a file already known damaged says that instead.
    let mut first: HashMap<Key, usize> = HashMap::new();
    let mut found = Vec::new();
    for i in order {
        let entry = &entries[i];
        let (Ok(meta), None, Some(key)) = (&entry.meta, &entry.damage, key_of(entry)) else {
            continue;
        };
        // The name it was published under, in its header (since stop 41):
        // any other name is a copy's, whatever the times (T32 G5: the
        // original deleted, the copy named minutes after it was made).
        if let Some(own) = meta.name.as_deref().filter(|own| *own != entry.file_name) {
            found.push((i, named_otherwise(entries, entry, own, key)));
            continue;
        }
        match first.get(&key) {
            // Alone, under a name from before it was made: a copy or a
            // renamed backup, which one cannot be told.
            None if named_before_made(entry) => {
                first.insert(key, i);
                found.push((
                    i,
                    Copy {
                        why: format!(
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
                        kind: CopyKind::Unplaced,
                    },
                ));
            }
            None => {
                first.insert(key, i);
            }
            Some(&original) => found.push((
                i,
                Copy {
                    why: format!(
                        "it holds the same backup as {} (made at {}, same content): a copy under another name, not a backup of its own; delete it, or put the backup of this name back from a mirror",
                        entries[original].file_name, meta.created
                    ),
                    kind: CopyKind::Spare,
                },
            )),
        }
    }
    found
}

/// `entry`, whose header says it was published as `own`: a spare copy when
/// the file of that name holds the same backup, else that backup renamed.
fn named_otherwise(entries: &[Entry], entry: &Entry, own: &str, key: Key) -> Copy {
    let there = entries.iter().find(|e| e.file_name == own);
    match there {
        Some(original) if key_of(original) == Some(key) => Copy {
            why: format!(
                "its header says it was published as {own}: a copy of that backup under another name, not a backup of its own; delete it, or put the backup of this name back from a mirror"
            ),
            kind: CopyKind::Spare,
        },
        // The only file of that backup: never "delete it" (T34 N10).
        Some(_) => Copy {
            why: format!(
                "its header says it was published as {own}, a name another backup has taken since: that backup renamed, the only file of it here; kept, and `dbbackup restore {} --force --target FILE` gives back what it holds",
                entry.file_name
            ),
            kind: CopyKind::Renamed { name_free: false },
        },
        None => Copy {
            why: format!(
                "its header says it was published as {own}, and no file of that name is here: that backup renamed; rename it back (`mv {} {own}` in the backup directory) and it is that restore point again",
                entry.file_name
            ),
            kind: CopyKind::Renamed { name_free: true },
        },
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Kind;
    use crate::store::ownership::tests::entry;

    /// `stamp`'s entry whose header names `published` and records `content`.
    fn named(stamp: &str, published: &str, content: &[u8]) -> Entry {
        let mut e = entry(stamp, "/p/a.db", Kind::Manual, false);
        let meta = e.meta.as_mut().unwrap();
        meta.name = Some(published.to_string());
        meta.checksum = Checksum::of(content);
        e
    }

    #[test]
    fn only_a_spare_copy_of_a_backup_held_under_its_own_name_may_be_deleted() {
        let own = "backup_20250101_000001.db.gz";
        let copy = "backup_20250101_000005.db.gz";
        // The original there: the copy is spare.
        let original = named("20250101_000001", own, b"a");
        let mut spare = named("20250101_000001", own, b"a");
        spare.file_name = copy.to_string();
        let found = of(&[original.clone(), spare.clone()]);
        assert!(found[copy].deletable(), "{found:?}");
        assert_eq!(found[copy].kind, CopyKind::Spare, "{found:?}");
        // Renamed, its own name free: the only file of that backup.
        let found = of(std::slice::from_ref(&spare));
        assert!(
            !found[copy].deletable() && found[copy].kind == CopyKind::Renamed { name_free: true },
            "{found:?}"
        );
        // Its own name taken since by another backup (T35 R9).
        let other = named("20250101_000001", own, b"b");
        let found = of(&[other, spare]);
        assert!(
            !found[copy].deletable() && found[copy].kind == CopyKind::Renamed { name_free: false },
            "{found:?}"
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }
}
