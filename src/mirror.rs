//! Mirrors: each new backup is copied to every `mirror_dirs` entry the same way it
//! was published (temp name, flush, no-replace link, directory flush), read back
//! and compared byte for byte by SHA-256, then retention runs there too. A failed
//! mirror is reported; the primary backup stays. A differential backup's base goes
//! first when the mirror lacks it or holds a damaged copy (by size and metadata,
//! replaced atomically), so a mirror never holds a diff without its base.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result, show};
use crate::lock::DirLock;
use crate::retention::{self, Policy};
use crate::slurm::job::JobContext;
use crate::store::{BackupDir, DbId, Entry, copy_mode, link_no_replace, open_no_follow, sync_dir};

/// Where this run's mirrors are configured, said with a broken mirror's name:
/// set once by `commands::dispatch` (`configure`).
static ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `mirror_dirs` came from config file `file`, else from the command line or
/// the environment.
pub(crate) fn configure(file: Option<&Path>) {
    let origin = match file {
        Some(file) => format!("mirror_dirs in {}", show(file)),
        None => "--mirror-dir or DBBACKUP_MIRROR_DIRS".to_string(),
    };
    let _ = ORIGIN.set(origin);
}

/// Mirror `dir`, named in its messages as a mirror with where it is configured
/// ("mirror directory M (mirror_dirs in dbbackup.yaml)"), not "backup directory".
pub(crate) fn dir(dir: &Path) -> BackupDir {
    let origin = ORIGIN.get().map_or("mirror_dirs", String::as_str);
    BackupDir::named(dir, format!("mirror directory {} ({origin})", show(dir)))
}

#[derive(Debug)]
pub(crate) struct MirrorResult {
    pub dir: PathBuf,
    pub result: std::result::Result<(), String>,
}

/// Copy `entry` into every mirror; never fails as a whole.
pub(crate) fn copy_to_all(
    mirrors: &[PathBuf],
    entry: &Entry,
    db: &DbId,
    job: &JobContext,
    lock_wait: std::time::Duration,
    policy: Policy,
    protected: &HashSet<String>,
) -> Vec<MirrorResult> {
    mirrors
        .iter()
        .map(|dir| {
            let result = copy_to(dir, entry, db, job, lock_wait, policy, protected)
                .map_err(|e| e.to_string());
            match &result {
                Ok(()) => tracing::info!("mirrored {} to {}", entry.file_name, show(dir)),
                Err(error) => tracing::error!(
                    "backup {} exists; its copy to mirror {} failed: {error}",
                    entry.file_name,
                    show(dir)
                ),
            }
            MirrorResult {
                dir: dir.clone(),
                result,
            }
        })
        .collect()
}

fn copy_to(
    dir: &Path,
    entry: &Entry,
    db: &DbId,
    job: &JobContext,
    lock_wait: std::time::Duration,
    policy: Policy,
    protected: &HashSet<String>,
) -> Result<()> {
    let mirror = self::dir(dir);
    let _lock = place(&mirror, entry, job, lock_wait)?;
    // Only this database's copies (a mirror may be shared as well); the primary's
    // restore points of running jobs are kept in mirrors too.
    // A restore recorded in the primary holds for its copies alike.
    let primary = entry.path.parent().unwrap_or(Path::new("."));
    let restored = crate::restored::read(primary, db);
    let plan = retention::plan(&mirror.set(db)?, policy, protected, restored.as_ref());
    retention::apply(&mirror, &plan)
}

/// Copy `entry` (a diff: and its base) into `to` under its lock, which is
/// returned still held; no retention there.
pub(crate) fn place(
    to: &BackupDir,
    entry: &Entry,
    job: &JobContext,
    lock_wait: std::time::Duration,
) -> Result<DirLock> {
    to.ensure_exists()?;
    let lock = DirLock::acquire(to.path(), job, lock_wait)?;
    lock.remove_stale_temps();
    if entry.name.diff {
        // The primary's base, trusted once it passes the cheap tests against
        // what the diff recorded; the copy must match it.
        let (base, _) = crate::diff::rebuild::base_of(entry, crate::diff::rebuild::Bases::Sound)?;
        put(to, &base, "base ")?;
    }
    // A copy already there (another run filled the mirror in meanwhile) is kept;
    // a damaged one is replaced.
    put(to, entry, "")?;
    Ok(lock)
}

/// Copy `primary` into `mirror` unless a whole copy (by cheap tests) is there;
/// a damaged copy is replaced atomically. `what` prefixes its name in messages.
fn put(mirror: &BackupDir, primary: &Entry, what: &str) -> Result<()> {
    let dir = mirror.path();
    match copy_problem(mirror, primary)? {
        None => Ok(()),
        Some(None) => {
            copy_file(dir, primary, false)?;
            if !what.is_empty() {
                tracing::info!("mirrored {what}{} to {}", primary.file_name, show(dir));
            }
            Ok(())
        }
        Some(Some(why)) => {
            tracing::warn!(
                "mirror copy of {what}{} in {} is damaged ({why}); replacing it from {}",
                primary.file_name,
                show(dir),
                show(&primary.path)
            );
            copy_file(dir, primary, true)
        }
    }
}

/// Why `dir` lacks the primary's `entry` (a diff: or its base), by the cheapest
/// tests: a file of that name and size whose metadata records the same source
/// and checksum (names are unique only within one primary: another database
/// sharing the mirror may hold a backup of the same name). `None` when it looks
/// held; for `check` and for the runs that fill a mirror in
/// (`create::fill_mirrors`).
pub(crate) fn lacks(dir: &Path, entry: &Entry) -> Option<String> {
    let held = |e: &Entry| match std::fs::symlink_metadata(dir.join(&e.file_name)) {
        Ok(stat) if stat.len() == e.size => other_content(&BackupDir::new(dir), e),
        Ok(stat) => Some(format!(
            "its copy of {} is {} bytes, the primary's {}",
            e.file_name,
            stat.len(),
            e.size
        )),
        Err(_) => Some(format!("{} is missing from it", e.file_name)),
    };
    held(entry).or_else(|| {
        entry
            .name
            .diff
            .then(|| crate::diff::rebuild::base_of(entry, crate::diff::rebuild::Bases::Sound).ok())
            .flatten()
            .and_then(|(base, _)| {
                held(&base).map(|why| format!("{why} (the base of {})", entry.file_name))
            })
    })
}

/// Why the file of `primary`'s name in `mirror` (of the same size) is not a copy
/// of it, by its metadata (one 8 KiB read); `None` when it records the same
/// source and checksum, or when the primary has no metadata (a legacy file).
fn other_content(mirror: &BackupDir, primary: &Entry) -> Option<String> {
    let Ok(theirs) = &primary.meta else {
        return None;
    };
    match mirror.entry(&primary.file_name) {
        Ok(Some(copy)) => match &copy.meta {
            Ok(meta) if same_backup(meta, theirs) => copy
                .damage
                .as_ref()
                .map(|why| format!("its copy of {} is damaged: {why}", primary.file_name)),
            Ok(meta) => Some(format!(
                "its {} is another backup (of {}), not the primary's",
                primary.file_name, meta.source
            )),
            Err(why) => Some(format!(
                "its copy of {} cannot be read: {why}",
                primary.file_name
            )),
        },
        Ok(None) => Some(format!("{} is missing from it", primary.file_name)),
        Err(e) => Some(format!(
            "its copy of {} cannot be read: {e}",
            primary.file_name
        )),
    }
}

/// Whether the file of `primary`'s name in a mirror (`occupant`) records
/// `primary`'s database.
fn same_database(occupant: &Entry, primary: &Entry) -> bool {
    matches!((&occupant.meta, &primary.meta), (Ok(a), Ok(b)) if a.source == b.source)
}

/// Whether `dir` holds a file of `entry`'s name that is another backup (of
/// another database, or other content of this one): never replaced, so no
/// later run copies `entry` there until it is moved away.
pub(crate) fn occupied(dir: &Path, entry: &Entry) -> bool {
    BackupDir::new(dir)
        .entry(&entry.file_name)
        .ok()
        .flatten()
        .is_some_and(|copy| not_a_copy(&copy, entry).is_some())
}

/// The same backup: the same database's same content.
fn same_backup(a: &crate::store::Metadata, b: &crate::store::Metadata) -> bool {
    a.source == b.source && a.checksum == b.checksum
}

/// What is wrong with `mirror`'s copy of `primary` by cheap tests (same size, and
/// metadata readable with the same checksum): `None` when it looks whole,
/// `Some(None)` when it is missing, else why it is damaged. A file of that name
/// that is not a copy of `primary` (another database's backup of the same name,
/// or a file whose bytes are not the primary's) is an error: it is never
/// replaced.
fn copy_problem(mirror: &BackupDir, primary: &Entry) -> Result<Option<Option<String>>> {
    let Some(copy) = mirror.entry(&primary.file_name)? else {
        return Ok(Some(None));
    };
    if let Some(why) = not_a_copy(&copy, primary) {
        // Another backup of this same database under this name (a copy put
        // there by hand, T32 G3) is no name clash with another database.
        let cause = if same_database(&copy, primary) {
            "a copy of another backup of this database under this name: move it away, and the next backup, auto or periodic copies this one"
        } else {
            "another database sharing the mirror made a backup of the same name (this database's next backup gets a name free there), or move the file away"
        };
        return Err(Error::failed(format!(
            "{} is already there and is not a copy of this backup ({why}); it was left \
             as it is and this backup was not copied: {cause}",
            primary.file_name
        )));
    }
    let checksum = |e: &Entry| e.meta.as_ref().ok().map(|m| m.checksum);
    let why = if copy.size != primary.size {
        Some(format!(
            "{} bytes, the primary's {}",
            copy.size, primary.size
        ))
    } else if let Err(why) = &copy.meta {
        Some(format!("its metadata is unreadable: {why}"))
    } else if let Some(why) = &copy.damage {
        // `verify` found it damaged (T26b #3).
        Some(why.clone())
    } else if checksum(&copy) != checksum(primary) {
        Some("it records other content than the primary's".to_string())
    } else {
        None
    };
    Ok(why.map(Some))
}

/// Why `copy` (a file of `primary`'s name in a mirror) is not a copy of
/// `primary`, whole or damaged: its metadata records another source or
/// checksum, or (metadata unreadable) its bytes after the header differ from
/// the primary's. `None` for a copy, and for an empty file (it holds nothing).
fn not_a_copy(copy: &Entry, primary: &Entry) -> Option<String> {
    match (&copy.meta, &primary.meta) {
        (Ok(mine), Ok(theirs)) if same_backup(mine, theirs) => None,
        (Ok(mine), Ok(theirs)) if mine.source == theirs.source => Some(match &mine.name {
            Some(own) if *own != copy.file_name => format!("it holds backup {own}"),
            _ => format!("it holds the backup made at {}", mine.created),
        }),
        (Ok(mine), _) => Some(format!("it is a backup of {}", mine.source)),
        // Not even gzip (zeros, say): no backup of anything (T26b #3).
        _ if copy.size == 0 || !starts_as_gzip(&copy.path) => None,
        // Cut inside its header: the primary's first bytes, or not (T26 #6).
        _ if copy.size <= crate::store::metadata::HEADER_LEN as u64 => {
            match same_bytes_from(&copy.path, &primary.path, 0) {
                Ok(true) => None,
                Ok(false) => Some("its content differs from the primary's".to_string()),
                Err(e) => Some(format!("it cannot be compared: {e}")),
            }
        }
        _ => match same_bytes_from(
            &copy.path,
            &primary.path,
            crate::store::metadata::HEADER_LEN as u64,
        ) {
            Ok(true) => None,
            Ok(false) => Some("its content differs from the primary's".to_string()),
            Err(e) => Some(format!("it cannot be compared: {e}")),
        },
    }
}

/// Whether the file begins with gzip's magic bytes.
fn starts_as_gzip(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let mut magic = [0u8; 2];
    open_no_follow(path)
        .is_ok_and(|file| file.read_exact_at(&mut magic, 0).is_ok() && magic == [0x1f, 0x8b])
}

/// Whether the bytes from `start` (past the metadata header, or 0 for a copy
/// cut inside it; up to 64 KiB) are the same in both files, over the length
/// both have: a copy whose header was damaged or whose tail was cut still
/// matches; another backup's compressed data does not.
fn same_bytes_from(copy: &Path, primary: &Path, start: u64) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    const WINDOW: usize = 64 * 1024;
    let read = |path: &Path| -> io::Result<Vec<u8>> {
        let file = open_no_follow(path)?;
        let mut buffer = vec![0u8; WINDOW];
        let mut filled = 0;
        while filled < WINDOW {
            match file.read_at(&mut buffer[filled..], start + filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        buffer.truncate(filled);
        Ok(buffer)
    };
    let (mine, theirs) = (read(copy)?, read(primary)?);
    let common = mine.len().min(theirs.len());
    Ok(common > 0 && mine[..common] == theirs[..common])
}

/// Copy one backup file into mirror `dir`: temp name, flush, read back and
/// compare, then a no-replace link (or, to replace a damaged copy, a rename: one
/// atomic step, so the name never goes missing), directory flush.
fn copy_file(dir: &Path, entry: &Entry, replace: bool) -> Result<()> {
    let mirror = BackupDir::new(dir);
    let mut temp = mirror.create_temp(copy_mode(&entry.path))?;
    let expected = {
        let mut source =
            open_no_follow(&entry.path).context(|| format!("cannot read {}", show(&entry.path)))?;
        let mut hashing = HashingWriter {
            inner: temp.file(),
            hasher: Sha256::new(),
        };
        io::copy(&mut source, &mut hashing)
            .context(|| format!("cannot copy to mirror {}", show(dir)))?;
        hashing.hasher.finalize()
    };
    temp.sync()?;
    let copied = sha256_of(temp.path())
        .context(|| format!("cannot read back mirror copy in {}", show(dir)))?;
    if copied[..] != expected[..] {
        return Err(Error::failed(format!(
            "mirror copy in {} differs from the backup",
            show(dir)
        )));
    }
    let target = dir.join(&entry.file_name);
    if replace {
        std::fs::rename(temp.path(), &target)
            .context(|| format!("cannot replace mirror copy {}", show(&target)))?;
        temp.keep();
    } else {
        link_no_replace(temp.path(), &target)
            .context(|| format!("cannot publish mirror copy {}", show(&target)))?;
        drop(temp);
    }
    // A finding about the copy it replaced (damage outlives a changed
    // stamp) is not this one's: its bytes were just read back equal.
    crate::store::damage::forget(dir, &entry.file_name);
    sync_dir(dir)
}

fn sha256_of(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finalize().to_vec());
        }
        hasher.update(&buffer[..n]);
    }
}

struct HashingWriter<'a> {
    inner: &'a mut File,
    hasher: Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::metadata::{HEADER_LEN, Kind};
    use crate::store::ownership::tests::entry;

    /// An entry of `source` recording the checksum of the text `checksum`, for
    /// the file at `path`.
    fn entry_at(path: &Path, source: &str, checksum: &str) -> Entry {
        let mut e = entry("20250101_000000", source, Kind::Manual, false);
        e.meta.as_mut().unwrap().checksum = crate::store::Checksum::of(checksum.as_bytes());
        e.path = path.to_path_buf();
        e.size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        e
    }

    /// A header's worth of `header` bytes, then `data`.
    /// A gzip file's magic, then a header of `header` bytes, then `data`.
    fn backup_like(path: &Path, header: u8, data: &[u8]) {
        let mut bytes = vec![header; HEADER_LEN];
        bytes[..2].copy_from_slice(&[0x1f, 0x8b]);
        bytes.extend_from_slice(data);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_copy_is_published_whole_and_never_over_another_file_unless_replacing() {
        let (primary_dir, mirror) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = primary_dir.path().join("backup_x.db.gz");
        std::fs::write(&source, b"compressed backup bytes").unwrap();
        let mut primary = entry_at(&source, "/p/a.db", "sha256:aa");
        primary.file_name = "backup_x.db.gz".into();
        let copy = mirror.path().join("backup_x.db.gz");
        copy_file(mirror.path(), &primary, false).unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"compressed backup bytes");

        std::fs::write(&copy, b"damaged").unwrap();
        let refused = copy_file(mirror.path(), &primary, false).unwrap_err();
        assert!(
            refused.to_string().contains("cannot publish mirror copy"),
            "{refused}"
        );
        assert_eq!(std::fs::read(&copy).unwrap(), b"damaged");
        copy_file(mirror.path(), &primary, true).unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"compressed backup bytes");
        let names: Vec<_> = std::fs::read_dir(mirror.path())
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }

    #[test]
    fn a_file_recording_the_same_source_and_checksum_is_a_copy_another_source_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        backup_like(&path, b'h', b"data");
        let primary = entry_at(&path, "/p/a.db", "sha256:aa");
        assert_eq!(
            not_a_copy(&entry_at(&path, "/p/a.db", "sha256:aa"), &primary),
            None
        );
        let other = not_a_copy(&entry_at(&path, "/p/b.db", "sha256:aa"), &primary);
        assert_eq!(other.as_deref(), Some("it is a backup of /p/b.db"));
        let changed = not_a_copy(&entry_at(&path, "/p/a.db", "sha256:bb"), &primary);
        // This database's other backup under this name (T32 G3).
        assert_eq!(
            changed.as_deref(),
            Some("it holds the backup made at 2025-01-01T00:00:00Z")
        );
    }

    #[test]
    fn with_its_metadata_unreadable_a_copy_is_judged_by_its_bytes_after_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let (primary_path, copy_path) = (dir.path().join("primary"), dir.path().join("copy"));
        backup_like(&primary_path, b'h', b"compressed data of this backup");
        let primary = entry_at(&primary_path, "/p/a.db", "sha256:aa");
        let unreadable = |data: &[u8]| {
            // Its header damaged, its data as given.
            backup_like(&copy_path, b'!', data);
            let mut copy = entry_at(&copy_path, "/p/a.db", "sha256:aa");
            copy.meta = Err("not JSON".into());
            copy
        };
        // Damaged header, or its tail cut: still a copy of this backup.
        assert_eq!(
            not_a_copy(&unreadable(b"compressed data of this backup"), &primary),
            None
        );
        assert_eq!(not_a_copy(&unreadable(b"compressed data"), &primary), None);
        let other = not_a_copy(&unreadable(b"another backup's data"), &primary);
        assert_eq!(
            other.as_deref(),
            Some("its content differs from the primary's")
        );
        // Not even gzip (zeros): no backup of anything (T26b #3).
        std::fs::write(&copy_path, vec![0u8; HEADER_LEN + 8]).unwrap();
        let mut zeros = entry_at(&copy_path, "/p/a.db", "sha256:aa");
        zeros.meta = Err("not gzip".into());
        assert_eq!(not_a_copy(&zeros, &primary), None);
        // An empty file holds nothing to protect.
        std::fs::write(&copy_path, b"").unwrap();
        let mut empty = entry_at(&copy_path, "/p/a.db", "sha256:aa");
        empty.meta = Err("empty".into());
        assert_eq!(not_a_copy(&empty, &primary), None);
    }

    #[test]
    fn sha256_of_a_file_is_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        let hex: String = sha256_of(&path)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
