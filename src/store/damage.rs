//! What is known to be wrong with a backup file without decompressing it, so
//! that `list`, `check`, "unchanged", `latest` and retention never count it:
//!
//! - its length against the `file_size` its metadata recorded (a truncated or
//!   extended file), or, in backups made before that was recorded, the ISIZE of
//!   its last gzip member against the length its recorded size gives that member
//!   (members hold [`BLOCK_SIZE`] bytes each);
//! - a failed whole read (`verify`, `restore`, `export`, a diff's base check),
//!   remembered in `.dbbackup-pages/<name>.damaged` (one JSON line) with the
//!   file's size, mtime, inode and device. It holds until a whole read finds
//!   the file sound (`verify NAME`) or the file is removed, even when the file
//!   changed since: `touch`, `cp -a`, `rsync -a` or a move to another
//!   filesystem keep the damaged bytes under a new stamp, and were taken as a
//!   repair (T28 F11: `check` healthy, retention counting the damaged file and
//!   deleting an intact point). A good copy put back from a mirror is told
//!   from those only by reading it: said so, until `verify NAME` has. An older
//!   binary ignores a marker in the new format, so it reads the file whole
//!   again and finds the damage itself.

use std::fs;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PAGES_DIR;
use super::metadata::{BLOCK_SIZE, HEADER_LEN, Metadata};

/// Why the file, as `stat` shows it, is not the one its metadata describes.
pub(crate) fn size_problem(
    meta: &Metadata,
    file: &fs::File,
    stat: &fs::Metadata,
) -> Option<String> {
    let size = stat.len();
    match meta.file_size {
        Some(recorded) if size < recorded => Some(format!(
            "truncated: it is {size} bytes long, {recorded} when it was written"
        )),
        Some(recorded) if size > recorded => Some(format!(
            "extended: it is {size} bytes long, {recorded} when it was written (bytes appended?)"
        )),
        Some(_) => None,
        None => trailer_problem(meta, file, size),
    }
}

/// An older backup: the last data member's ISIZE (the last 4 bytes, or the 4
/// before the member index) must be the size of the last block of the data its
/// metadata records, and a member index must end the file.
fn trailer_problem(meta: &Metadata, file: &fs::File, size: u64) -> Option<String> {
    let raw = match &meta.diff {
        // The diff payload: its header, then a page number and a page per record.
        Some(diff) => 16 + diff.changed_pages * (4 + u64::from(diff.page_size)),
        None => meta.db_size,
    };
    let block = BLOCK_SIZE as u64;
    let expected = match raw % block {
        0 if raw == 0 => 0,
        0 => block,
        rest => rest,
    };
    // The metadata member, then at least one member of 18 bytes or more.
    let least = HEADER_LEN as u64 + if raw == 0 { 0 } else { 18 };
    if size < least {
        return Some(format!(
            "truncated: it is {size} bytes long, too short for its data"
        ));
    }
    let data_end = match &meta.members {
        Some(members) => {
            let mut last = [0u8; 4];
            let ends = file.read_exact_at(&mut last, size - 4).is_ok() && last == [0; 4];
            if members.index_at.saturating_add(21) > size || members.index_at < least || !ends {
                return Some(format!(
                    "truncated or extended: it is {size} bytes long and does not end with its member index"
                ));
            }
            members.index_at
        }
        None => size,
    };
    let mut isize = [0u8; 4];
    if let Err(e) = file.read_exact_at(&mut isize, data_end - 4) {
        return Some(format!("cannot read its gzip trailer: {e}"));
    }
    let isize = u64::from(u32::from_le_bytes(isize));
    (isize != expected).then(|| {
        format!(
            "truncated or extended: its last gzip member says {isize} bytes, {expected} expected for its recorded size"
        )
    })
}

fn marker_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(PAGES_DIR).join(format!("{name}.damaged"))
}

/// Which file a marker is about: if any of these changed, the file was
/// replaced or rewritten and the finding no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Stamp {
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    inode: u64,
    device: u64,
}

impl Stamp {
    pub(super) fn of(stat: &fs::Metadata) -> Stamp {
        Stamp {
            size: stat.len(),
            mtime: stat.mtime(),
            mtime_nsec: stat.mtime_nsec(),
            inode: stat.ino(),
            device: stat.dev(),
        }
    }
}

/// The marker file: one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    file: Stamp,
    why: String,
    /// Set by `integrity_check` (index content): a whole read that decompresses
    /// cleanly, or a restore's `quick_check`, sees nothing of that, so only
    /// another `integrity_check` clears it. A marker of an earlier build counts
    /// as one: clearing it then takes the stronger check.
    #[serde(default = "by_integrity_check")]
    integrity_check: bool,
    /// Written by this build's `integrity_check` finding: the bytes were
    /// whole (their SHA-256 the recorded one), the database in them is not.
    #[serde(default)]
    bytes_whole: bool,
}

fn by_integrity_check() -> bool {
    true
}

impl Marker {
    fn to_text(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The JSON line, or what earlier builds wrote (and a binary of one may
    /// still write beside a newer one): the five numbers of the stamp
    /// space-separated on one line, the reason on the next.
    fn parse(text: &str) -> Option<Marker> {
        if let Ok(marker) = serde_json::from_str(text) {
            return Some(marker);
        }
        let (stamp, why) = text.split_once('\n')?;
        let numbers: Vec<&str> = stamp.split(' ').collect();
        let [size, mtime, mtime_nsec, inode, device] = numbers[..] else {
            return None;
        };
        Some(Marker {
            integrity_check: true,
            bytes_whole: false,
            file: Stamp {
                size: size.parse().ok()?,
                mtime: mtime.parse().ok()?,
                mtime_nsec: mtime_nsec.parse().ok()?,
                inode: inode.parse().ok()?,
                device: device.parse().ok()?,
            },
            why: why.trim().to_string(),
        })
    }
}

/// Remember that a whole read found backup `path` damaged. Best effort: a
/// read-only backup directory cannot remember (the command still fails).
pub(crate) fn mark(path: &Path, why: &str) {
    write_marker(path, why, false, false);
}

/// Remember that `integrity_check` failed the database backup `path` holds:
/// only a passing `integrity_check` clears that ([`clear_checked`]).
/// `bytes_whole`: its bytes were found to be those recorded (a legacy file
/// records no checksum).
pub(crate) fn mark_unsound(path: &Path, why: &str, bytes_whole: bool) {
    write_marker(path, why, true, bytes_whole);
}

fn write_marker(path: &Path, why: &str, integrity_check: bool, bytes_whole: bool) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Ok(stat) = fs::symlink_metadata(path) else {
        return;
    };
    let text = Marker {
        file: Stamp::of(&stat),
        why: why.replace('\n', " "),
        integrity_check,
        bytes_whole,
    }
    .to_text();
    // Written in place (`verify` holds no lock, and a lock holder removes temp
    // files here); group-writable in a shared project (`perms`); never through
    // a planted symlink.
    let marker = marker_path(dir, name);
    let written = super::perms::write_record(&dir.join(PAGES_DIR), &marker, &text);
    match written {
        Ok(()) => tracing::debug!("{name} recorded as damaged: {why}"),
        Err(e) => tracing::warn!("cannot record that {name} is damaged: {e}"),
    }
}

/// A whole read of `path` succeeded: forget an earlier failed read, not an
/// `integrity_check` finding (the read does not look at index content).
pub(crate) fn clear(path: &Path) {
    remove_marker(path, false);
}

/// `integrity_check` passed on what `path` holds: forget any finding.
pub(crate) fn clear_checked(path: &Path) {
    remove_marker(path, true);
}

fn remove_marker(path: &Path, integrity_checked: bool) {
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        let marker = marker_path(dir, name);
        let text = fs::read_to_string(&marker).unwrap_or_default();
        if !integrity_checked && Marker::parse(&text).is_some_and(|m| m.integrity_check) {
            return;
        }
        match fs::remove_file(&marker) {
            Ok(()) => tracing::info!("{name} read whole and found sound: no longer marked damaged"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot clear the damage record of {name}: {e}"),
        }
    }
}

/// Remove the record of `name` (its file was deleted).
pub(crate) fn forget(dir: &Path, name: &str) {
    let _ = fs::remove_file(marker_path(dir, name));
    super::verified::forget(dir, name);
    super::also_held::forget(dir, name);
    super::read_whole::forget(dir, name);
}

/// Why backup `name` in `dir`, whose file `stat` describes, was found damaged by
/// a whole read, if it was and no whole read found it sound since.
pub(crate) fn recorded(dir: &Path, name: &str, stat: &fs::Metadata) -> Option<String> {
    let marker = Marker::parse(&fs::read_to_string(marker_path(dir, name)).ok()?)?;
    // A marker written before the finding was stored alone begins with the
    // file's name, which every message about it already says.
    let old_prefix = format!("backup {name} is damaged: ");
    let why = marker.why.strip_prefix(&old_prefix).unwrap_or(&marker.why);
    let finding = match marker.bytes_whole {
        // The bytes are whole; the database in them is not (T26 #1).
        true => format!(
            "the database in it fails its check: {why} (only `restore {name} --target FILE --force` gives it back, to be repaired)"
        ),
        false => format!("it failed its check when read whole: {why}"),
    };
    Some(match marker.file == Stamp::of(stat) {
        true => finding,
        false => format!(
            "{finding}; the file changed since (touched, copied or replaced): `dbbackup verify {name}` reads it again"
        ),
    })
}

/// Whether backup `path` is marked damaged and its file changed since the
/// marking (put back from a copy, say): a whole read would judge it anew.
pub(crate) fn changed_since_marked(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let (Ok(stat), Ok(text)) = (
        fs::symlink_metadata(path),
        fs::read_to_string(marker_path(dir, name)),
    ) else {
        return false;
    };
    Marker::parse(&text).is_some_and(|marker| marker.file != Stamp::of(&stat))
}

/// The backups of `dir` recorded as holding, byte for byte, a database that
/// fails `integrity_check` ([`unsound_finding`]): file name and finding.
fn unsound_in(dir: &Path) -> Vec<(String, String)> {
    let Ok(markers) = fs::read_dir(dir.join(PAGES_DIR)) else {
        return Vec::new();
    };
    markers
        .flatten()
        .filter_map(|item| {
            let file = item.file_name();
            let name = file.to_str()?.strip_suffix(".damaged")?;
            let why = unsound_finding(&dir.join(name))?;
            Some((name.to_string(), why))
        })
        .collect()
}

/// [`unsound_in`] by the SHA-256 of the database each holds: the same
/// database anywhere (a remote point of the same content) fails the same
/// way. Checksum to (backup name, finding).
pub(crate) fn unsound_by_checksum(
    dir: &Path,
) -> std::collections::HashMap<super::Checksum, (String, String)> {
    let backups = super::BackupDir::new(dir);
    unsound_in(dir)
        .into_iter()
        .filter_map(|(name, why)| {
            let meta = backups.entry(&name).ok()??.meta.ok()?;
            Some((meta.checksum, (name, why)))
        })
        .collect()
}

/// What `integrity_check` found in backup `path` when it is recorded as
/// holding, byte for byte as backed up, a database that fails that check.
pub(crate) fn unsound_finding(path: &Path) -> Option<String> {
    let (dir, name) = (path.parent()?, path.file_name()?.to_str()?);
    let marker = Marker::parse(&fs::read_to_string(marker_path(dir, name)).ok()?)?;
    // Its file there still: a finding about it holds however its stamp changed.
    fs::symlink_metadata(path).ok()?;
    marker.bytes_whole.then_some(marker.why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::metadata::tests::sample;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> (tempfile::NamedTempFile, fs::Metadata) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        let stat = file.as_file().metadata().unwrap();
        (file, stat)
    }

    /// A metadata member and `members` gzip members of the blocks of `raw` bytes.
    fn backup(raw: usize) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        let data: Vec<u8> = (0..raw).map(|i| (i * 31 % 251) as u8).collect();
        for block in data.chunks(BLOCK_SIZE) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(block).unwrap();
            out.extend(gz.finish().unwrap());
        }
        out
    }

    #[test]
    fn the_recorded_size_tells_truncated_from_extended() {
        let mut meta = sample();
        let (file, stat) = file_of(&[0u8; 100]);
        meta.file_size = Some(100);
        assert_eq!(size_problem(&meta, file.as_file(), &stat), None);
        meta.file_size = Some(200);
        assert!(
            size_problem(&meta, file.as_file(), &stat)
                .unwrap()
                .starts_with("truncated")
        );
        meta.file_size = Some(50);
        assert!(
            size_problem(&meta, file.as_file(), &stat)
                .unwrap()
                .starts_with("extended")
        );
    }

    #[test]
    fn without_a_recorded_size_the_last_trailer_is_checked() {
        for raw in [4096, BLOCK_SIZE, BLOCK_SIZE + 4096, 2 * BLOCK_SIZE] {
            let mut meta = sample();
            meta.file_size = None;
            // Older backups: no member index either.
            meta.members = None;
            meta.db_size = raw as u64;
            let whole = backup(raw);
            let (file, stat) = file_of(&whole);
            assert_eq!(size_problem(&meta, file.as_file(), &stat), None, "{raw}");
            let (file, stat) = file_of(&whole[..whole.len() - 7]);
            assert!(
                size_problem(&meta, file.as_file(), &stat).is_some(),
                "{raw} cut"
            );
            let mut longer = whole.clone();
            longer.extend_from_slice(b"junk");
            let (file, stat) = file_of(&longer);
            assert!(
                size_problem(&meta, file.as_file(), &stat).is_some(),
                "{raw} longer"
            );
        }
    }

    #[test]
    fn a_marker_holds_until_a_whole_read_clears_it_even_when_the_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup_20250101_000000.db.gz");
        fs::write(&path, b"data").unwrap();
        let name = "backup_20250101_000000.db.gz";
        mark(&path, "crc mismatch");
        let stat = fs::metadata(&path).unwrap();
        assert!(
            recorded(dir.path(), name, &stat)
                .unwrap()
                .contains("crc mismatch")
        );
        // Touched, copied or replaced: the finding holds, said with how to
        // read the file again (T28 F11).
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"other data").unwrap();
        let stat = fs::metadata(&path).unwrap();
        let said = recorded(dir.path(), name, &stat).unwrap();
        assert!(
            said.contains("crc mismatch")
                && said.ends_with(&format!(
                    "the file changed since (touched, copied or replaced): `dbbackup verify {name}` reads it again"
                )),
            "{said}"
        );
        mark(&path, "again");
        clear(&path);
        assert_eq!(recorded(dir.path(), name, &stat), None);
    }

    #[test]
    fn a_marker_is_one_json_line_and_one_an_earlier_build_wrote_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let name = "backup_20250101_000000.db.gz";
        let path = dir.path().join(name);
        fs::write(&path, b"data").unwrap();
        let stat = fs::metadata(&path).unwrap();
        mark(&path, "crc\nmismatch");
        let text = fs::read_to_string(marker_path(dir.path(), name)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["why"], "crc mismatch");
        assert_eq!(json["file"]["size"], 4);
        assert_eq!(json["file"]["inode"], stat.ino());
        assert_eq!(
            recorded(dir.path(), name, &stat).unwrap(),
            "it failed its check when read whole: crc mismatch"
        );
        // What an earlier build (or an older binary beside this one) writes.
        let old = format!(
            "{} {} {} {} {}\nbad gzip trailer\n",
            stat.len(),
            stat.mtime(),
            stat.mtime_nsec(),
            stat.ino(),
            stat.dev()
        );
        fs::write(marker_path(dir.path(), name), &old).unwrap();
        assert_eq!(
            recorded(dir.path(), name, &stat).unwrap(),
            "it failed its check when read whole: bad gzip trailer"
        );
        // Of the file before it changed (the size differs): still holds.
        fs::write(marker_path(dir.path(), name), old.replacen('4', "5", 1)).unwrap();
        assert!(
            recorded(dir.path(), name, &stat)
                .unwrap()
                .contains("bad gzip trailer; the file changed since")
        );
        for junk in ["", "\n", "1 2 3\nwhy\n", "{\"why\": 1}"] {
            fs::write(marker_path(dir.path(), name), junk).unwrap();
            assert_eq!(recorded(dir.path(), name, &stat), None, "{junk:?}");
        }
    }
}
