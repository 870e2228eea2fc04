//! Giving backups recorded under a database's old path to the database at its new
//! path (a project directory that moved): the metadata header is rewritten with
//! the new source and `adopted_from` the old one. The data members are copied
//! unchanged, so the recorded checksum still holds; the new file is written under
//! a temp name, flushed and checked, then renamed over the old one, so a crash
//! leaves either the old file or the new one.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::metadata::{self, Metadata};
use super::{BackupDir, Entry, copy_mode, open_no_follow, sync_dir};
use crate::error::{Context, Error, Result, show};

/// Evidence that `old` (a backup's `source`) was a second database, not this
/// one before a move: a backup of `db` made no later than `old`'s newest one
/// (both were backed up while both existed). Returns (ours, old's newest).
pub(crate) fn side_by_side(
    entries: &[Entry],
    db: &super::DbId,
    is_old: impl Fn(&str) -> bool,
) -> Option<(String, String)> {
    let of = |e: &&Entry| e.meta.as_ref().ok().map(|m| m.source.clone());
    let old_newest = entries
        .iter()
        .filter(|e| of(e).is_some_and(|s| is_old(&s)))
        .max_by_key(|e| e.created())?;
    let ours = entries
        .iter()
        .filter(|e| of(e).is_some_and(|s| db.owns(&s) && !is_old(&s)))
        .filter(|e| e.created() <= old_newest.created())
        .min_by_key(|e| e.created())?;
    Some((ours.file_name.clone(), old_newest.file_name.clone()))
}

/// The other databases among `entries` whose file no longer exists, each with
/// how many backups of it there are: where `db` may have moved from (a
/// database backed up side by side with `db` was a second one, not it before
/// a move: `adopt` refuses it, so it is left out).
pub(crate) fn moved_from(
    entries: &[Entry],
    db: &super::DbId,
    legacy: &super::Legacy,
) -> Vec<(String, usize)> {
    let mut gone: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for entry in entries {
        if super::ownership::role(entry, db, legacy) == super::Role::Other
            && let Ok(meta) = &entry.meta
            && !std::path::Path::new(&meta.source).exists()
        {
            *gone.entry(meta.source.as_str()).or_default() += 1;
        }
    }
    gone.retain(|source, _| side_by_side(entries, db, |s| s == *source).is_none());
    gone.into_iter()
        .map(|(source, n)| (source.to_string(), n))
        .collect()
}

/// Record `new_source` as `entry`'s source. Call only while holding the lock.
pub(crate) fn rewrite_source(dir: &BackupDir, entry: &Entry, new_source: &str) -> Result<()> {
    let Ok(old) = &entry.meta else {
        return Err(Error::failed(format!(
            "backup {} has no readable metadata to rewrite",
            entry.file_name
        )));
    };
    let meta = Metadata {
        source: new_source.to_string(),
        adopted_from: Some(old.adopted_from.clone().unwrap_or(old.source.clone())),
        // The rewritten header carries its own checksum (`metadata::encode`).
        format: old.format.max(metadata::FORMAT_VERSION),
        ..old.clone()
    };
    let header = metadata::encode(&meta)
        .context(|| format!("cannot record new metadata for {}", entry.file_name))?;
    let mut source =
        open_no_follow(&entry.path).context(|| format!("cannot read {}", show(&entry.path)))?;
    // The header member has a fixed length: everything after it is the data.
    source
        .seek(SeekFrom::Start(metadata::HEADER_LEN as u64))
        .context(|| format!("cannot read {}", show(&entry.path)))?;
    let mut temp = dir.create_temp(copy_mode(&entry.path))?;
    let write = |e: io::Error| Error::Io {
        context: format!("cannot write in {}", show(dir.path())),
        source: e,
    };
    temp.file().write_all(&header).map_err(write)?;
    let copied = io::copy(&mut source, temp.file()).map_err(write)?;
    if copied + metadata::HEADER_LEN as u64 != entry.size {
        return Err(Error::failed(format!(
            "backup {} changed while being rewritten; left as it was",
            entry.file_name
        )));
    }
    temp.sync()?;
    let mut check = Vec::new();
    std::fs::File::open(temp.path())
        .and_then(|f| f.take(metadata::HEADER_LEN as u64).read_to_end(&mut check))
        .context(|| format!("cannot read back {}", show(temp.path())))?;
    if metadata::decode(&mut &check[..]).ok().as_ref() != Some(&meta) {
        return Err(Error::failed(format!(
            "rewritten metadata of {} does not read back; left as it was",
            entry.file_name
        )));
    }
    crate::signals::stop_if_requested()?;
    std::fs::rename(temp.path(), &entry.path)
        .context(|| format!("cannot replace {}", show(&entry.path)))?;
    temp.keep();
    sync_dir(dir.path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::metadata::Kind;
    use crate::store::ownership::tests::entry;

    /// A backup file of `source` (its metadata header, then `data`) and its entry.
    fn backup_of(dir: &BackupDir, source: &str, data: &[u8]) -> Entry {
        let mut e = entry("20250101_000000", source, Kind::Manual, false);
        e.path = dir.path().join(&e.file_name);
        let mut bytes = metadata::encode(e.meta.as_ref().unwrap()).unwrap();
        bytes.extend_from_slice(data);
        std::fs::write(&e.path, &bytes).unwrap();
        e.size = bytes.len() as u64;
        e
    }

    fn header_and_data(path: &std::path::Path) -> (Metadata, Vec<u8>) {
        let bytes = std::fs::read(path).unwrap();
        let meta = metadata::decode(&mut &bytes[..metadata::HEADER_LEN]).unwrap();
        (meta, bytes[metadata::HEADER_LEN..].to_vec())
    }

    #[test]
    fn adoption_records_the_new_source_and_the_first_old_one_and_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let dir = BackupDir::new(dir.path());
        let backup = backup_of(&dir, "/old/r.db", b"compressed members");
        rewrite_source(&dir, &backup, "/moved/r.db").unwrap();
        let (meta, data) = header_and_data(&backup.path);
        assert_eq!(meta.source, "/moved/r.db");
        assert_eq!(meta.adopted_from.as_deref(), Some("/old/r.db"));
        assert_eq!(data, b"compressed members");
        // Moved again: still adopted from where it was made.
        let mut again = backup.clone();
        again.meta = Ok(meta);
        rewrite_source(&dir, &again, "/again/r.db").unwrap();
        let (meta, data) = header_and_data(&backup.path);
        assert_eq!(meta.source, "/again/r.db");
        assert_eq!(meta.adopted_from.as_deref(), Some("/old/r.db"));
        assert_eq!(data, b"compressed members");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }

    #[test]
    fn a_backup_that_changed_since_it_was_listed_is_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let dir = BackupDir::new(dir.path());
        let mut backup = backup_of(&dir, "/old/r.db", b"compressed members");
        let before = std::fs::read(&backup.path).unwrap();
        backup.size += 1;
        let refused = rewrite_source(&dir, &backup, "/moved/r.db").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("changed while being rewritten"),
            "{refused}"
        );
        assert_eq!(std::fs::read(&backup.path).unwrap(), before);
    }
}
