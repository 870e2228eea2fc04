//! Differential backups (docs/differential.md): after a full
//! backup, up to `diff_backups` restore points hold only the pages that differ
//! from it, in `backup_*.diff.gz`.
//!
//! - [`pagehash`]: the per-page hashes of each full backup (a sidecar cache);
//! - [`write`](mod@write): the diff payload, built while the snapshot streams;
//! - [`rebuild`]: base + diff back into the database, checked.
//!
//! Payload (decompressed): `DBBKDIFF`, u32 BE page size, u32 BE page count, then
//! for each changed or new page in ascending order a u32 BE page number (1-based)
//! and the page's bytes.

pub(crate) mod pagehash;
pub(crate) mod rebuild;
pub(crate) mod write;

use crate::archive::decompress::{self, Extracted};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::metadata::{DiffInfo, Kind};
use crate::store::{BackupDir, DbId, Entry, TempFile};
use pagehash::{FileStamp, HashReader, HashWriter};

pub(crate) const MAGIC: &[u8; 8] = b"DBBKDIFF";
/// Magic, page size, page count.
pub(crate) const HEADER_LEN: usize = 16;

/// What the next backup of a database will be.
pub(crate) enum Plan {
    /// A full backup; `hashes`: also keep its page hashes (it may become a base);
    /// `why`: why not a diff, when one was due (said in the outcome and summary).
    Full { hashes: bool, why: Option<String> },
    /// A diff against this full backup.
    Diff(Box<Base>),
}

pub(crate) struct Base {
    pub entry: Entry,
    /// This diff's number among the diffs of `entry`, 1 for the first.
    pub index: u32,
    /// How the base is confirmed before the diff may be published, when it must
    /// be: [`Confirmation`] does it while the snapshot streams.
    pub confirm: Option<Confirm>,
}

/// What confirms a base beside the snapshot, and why.
#[derive(Debug, Clone)]
pub(crate) struct Confirm {
    pub why: String,
    /// Read it whole (inflate, CRCs, SHA-256, page hashes); else hash its
    /// compressed bytes against the XXH3 recorded when they were written.
    pub whole: bool,
}

/// How long a base is trusted on its compressed bytes' XXH3 alone: after this
/// since it was written or last read whole, the next diff reads it whole.
const WHOLE_READ_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The base confirmed before the diff may be published: by the XXH3 of its
/// compressed bytes, on the calling thread once the snapshot has streamed (while
/// its `quick_check`, the longer task, still runs: the check keeps a core to
/// itself); or read whole (CRCs, size, SHA-256, page hashes) on another thread
/// while the snapshot streams against the page hashes its sidecar recorded. On
/// two cores either costs almost nothing (the diff's own work is one reader
/// thread and the check).
pub(crate) struct Confirmation {
    how: How,
    started: std::time::Instant,
    because: String,
}

enum How {
    /// The XXH3 test, not started yet (`finish` makes it).
    Cheap(Box<Entry>),
    /// `Some(same)` when the base was read whole (`same`: its pages have the
    /// hashes the diff was made against); `None` when its compressed bytes
    /// matched their recorded XXH3.
    Whole(std::thread::JoinHandle<std::result::Result<Option<bool>, String>>),
}

impl Confirmation {
    pub(crate) fn start(base: &Base) -> Option<Confirmation> {
        let confirm = base.confirm.clone()?;
        let entry = base.entry.clone();
        let how = if confirm.whole {
            How::Whole(std::thread::spawn(move || read_whole_beside(&entry)))
        } else {
            How::Cheap(Box::new(entry))
        };
        Some(Confirmation {
            how,
            started: std::time::Instant::now(),
            because: confirm.why,
        })
    }

    /// `Err` says why the diff cannot be published ("base NAME ...").
    pub(crate) fn finish(self, dir: &BackupDir, base: &Base) -> std::result::Result<(), String> {
        let name = &base.entry.file_name;
        let read = match self.how {
            How::Cheap(entry) => match compressed_bytes_match(&entry) {
                Ok(()) => Ok(None),
                // The whole read gives the verdict (and remembers it).
                Err(why) => {
                    tracing::warn!("base {name} {why}; reading it whole");
                    read_whole_beside(&entry)
                }
            },
            How::Whole(thread) => thread
                .join()
                .unwrap_or_else(|_| Err("its check panicked".into())),
        };
        let same = match read {
            Ok(Some(same)) => same,
            Ok(None) => {
                tracing::debug!(
                    "base {name}: compressed bytes as written ({})",
                    self.because
                );
                return Ok(());
            }
            Err(why) => return Err(format!("base {name} {why}")),
        };
        if !same {
            // The sidecar described other bytes: the next plan reads afresh.
            pagehash::remove(dir.path(), name);
            return Err(format!("base {name} does not match its page hashes"));
        }
        tracing::info!(
            "base {name} read whole and checked in {:.2} s, beside the snapshot ({})",
            self.started.elapsed().as_secs_f64(),
            self.because
        );
        // Its sidecar's age schedules the next whole read.
        if let Err(e) = pagehash::renew(dir, &base.entry) {
            tracing::warn!("cannot renew the page hashes of {name}: {e}");
        }
        Ok(())
    }
}

/// Read `entry` whole, comparing its pages with its sidecar's hashes page by
/// page (no table in memory): `Ok(Some(same))`; `Err` completes "base NAME ...".
fn read_whole_beside(entry: &Entry) -> std::result::Result<Option<bool>, String> {
    let dir = entry.path.parent().unwrap_or(std::path::Path::new("."));
    pagehash::matches(dir, entry, 1)
        .map(Some)
        .map_err(|e| whole_read_failed(&e))
}

/// Read full backup `base` whole and hash its pages (CRCs, size and SHA-256
/// checked); `Err` completes "base NAME ...". A failure other than a signal is
/// recorded beside the sidecar, so nobody counts on the base meanwhile.
fn read_whole(dir: &BackupDir, base: &Entry) -> std::result::Result<HashWriter, Unusable> {
    // Before the read: a directory that cannot be written is no fault of the base.
    let out = HashWriter::create(dir.path()).map_err(|e| Unusable {
        why: format!("has no page hashes, and they cannot be saved ({e})"),
        damaged: false,
    })?;
    Ok(pagehash::rehash(out, base, 1).map_err(|e| whole_read_failed(&e))?)
}

/// Why a base is not diffed against: `damaged` when the base itself is at fault
/// (a warning), not when only its page hashes cannot be saved (an info).
struct Unusable {
    why: String,
    damaged: bool,
}

impl From<String> for Unusable {
    fn from(why: String) -> Unusable {
        Unusable { why, damaged: true }
    }
}

/// Remember a whole read's failure (not a signal's) and say it.
fn whole_read_failed(e: &Error) -> String {
    if let Error::Damaged { backup, why, .. } = e {
        crate::store::damage::mark(backup, why);
    }
    format!("failed its check: {e}")
}

/// Whether `base`'s data members are the bytes written, by their XXH3-128
/// recorded in its metadata: every in-place change, truncation or extension of
/// them is caught by reading the file, without inflating it. `Err` completes
/// "base NAME ...".
fn compressed_bytes_match(base: &Entry) -> std::result::Result<(), String> {
    use std::io::Read;
    let Some(members) = base.meta.as_ref().ok().and_then(|m| m.members.as_ref()) else {
        return Err("records no hash of its compressed bytes".into());
    };
    let start = crate::store::metadata::HEADER_LEN as u64;
    let file =
        crate::store::open_no_follow(&base.path).map_err(|e| format!("cannot be read ({e})"))?;
    let mut data = std::io::BufReader::with_capacity(1 << 20, file)
        .take(members.index_at.saturating_sub(start));
    let mut skipped = [0u8; crate::store::metadata::HEADER_LEN];
    data.get_mut()
        .read_exact(&mut skipped)
        .map_err(|e| format!("cannot be read ({e})"))?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = data
            .read(&mut buffer)
            .map_err(|e| format!("cannot be read ({e})"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        read += n as u64;
    }
    let hash = crate::archive::compress::format_xxh3(hasher.digest128());
    if read + start == members.index_at && hash == members.xxh3 {
        return Ok(());
    }
    Err(format!(
        "does not hold the compressed bytes written ({hash} over {read} bytes, {} recorded over {})",
        members.xxh3,
        members.index_at - start
    ))
}

/// Keep the page hashes of `base` just read whole, with its file as it is now:
/// what the next cheap tests compare.
fn record(dir: &BackupDir, base: &Entry, table: HashWriter) -> std::result::Result<(), Unusable> {
    let Ok(meta) = &base.meta else {
        return Err(String::from("has unreadable metadata").into());
    };
    table
        .save(dir, &base.file_name, &meta.checksum)
        .map_err(|e| Unusable {
            why: format!("was read whole, but its page hashes cannot be saved ({e})"),
            damaged: false,
        })
}

/// The page hashes a diff on `base` streams against, read from its sidecar in
/// step with the snapshot (its seal is checked when the diff ends).
pub(crate) fn hashes_of(dir: &BackupDir, base: &Base) -> std::result::Result<HashReader, String> {
    HashReader::open(dir.path(), &base.entry)
        .map_err(|why| format!("base {}: {why}", base.entry.file_name))
}

/// Decide for the next backup of `db`: a diff when fewer than `diff_backups`
/// diffs were made against the newest full restore point and that base is whole.
pub(crate) fn plan(diff_backups: u32, dir: &BackupDir, db: &DbId, kind: Kind) -> Plan {
    if diff_backups == 0 || kind == Kind::PreRestore {
        // Pre-restore copies are always full, and never bases.
        return Plan::Full {
            hashes: false,
            why: None,
        };
    }
    let full = |why| Plan::Full { hashes: true, why };
    let set = match dir.set(db) {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!("cannot read the backups to plan a diff ({e}); making a full backup");
            return full(None);
        }
    };
    // Restore points only: pre-restore copies and failed snapshots are never bases.
    let Some(index) = set
        .restore_points
        .iter()
        .position(|e| matches!(&e.meta, Ok(m) if m.diff.is_none()))
    else {
        return full(None);
    };
    let entry = set.restore_points[index].clone();
    let earlier: Vec<&DiffInfo> = set.restore_points[..index]
        .iter()
        .filter_map(|e| e.meta.as_ref().ok()?.diff.as_ref())
        .filter(|d| d.base == entry.file_name)
        .collect();
    // Counted by the numbers the diffs record, not by the diffs retention left
    // (with max_backups <= diff_backups the count on disk never reaches N).
    let made = earlier
        .iter()
        .map(|d| d.diff_index)
        .max()
        .unwrap_or(0)
        .max(u32::try_from(index).unwrap_or(u32::MAX));
    if made >= diff_backups {
        return full(None);
    }
    match usable_base(dir, &entry, &earlier, made + 1) {
        Ok(confirm) => Plan::Diff(Box::new(Base {
            entry,
            index: made + 1,
            confirm,
        })),
        // Stopped by a signal while reading the base: no verdict on it (the
        // caller stops before making anything).
        Err(_) if crate::signals::pending().is_some() => full(None),
        Err(Unusable { why, damaged }) => {
            let why = format!("base {} {why}", entry.file_name);
            if damaged {
                tracing::warn!("making a full backup instead of a diff: {why}");
            } else {
                tracing::info!("making a full backup instead of a diff: {why}");
            }
            full(Some(why))
        }
    }
}

/// The page hashes to diff against full backup `base` (the `index`-th diff of
/// it), once the base file is known to be the one they describe; `Err`
/// completes "base NAME ...".
///
/// Cheap tests, every time: the file's size must be the one its sidecar and
/// every earlier diff of it recorded (else it was truncated or replaced: a diff
/// on it could never be restored), and its mtime, inode and device the ones the
/// sidecar recorded. The base is read whole (CRCs, size and SHA-256, as `verify`
/// does, and its page hashes recomputed) for every diff: first when those differ
/// or the sidecar is missing or damaged, else beside the snapshot
/// ([`Confirmation`]). The sidecar was made from the stream and the cheap tests
/// cannot see an in-place bit flip; a diff is only worth its base.
fn usable_base(
    dir: &BackupDir,
    base: &Entry,
    earlier: &[&DiffInfo],
    index: u32,
) -> std::result::Result<Option<Confirm>, Unusable> {
    let checksum = match &base.meta {
        Ok(meta) => meta.checksum,
        Err(why) => return Err(format!("has unreadable metadata ({why})").into()),
    };
    let now = FileStamp::of(&base.path).map_err(|e| format!("cannot be read ({e})"))?;
    if let Some(diff) = earlier
        .iter()
        .find(|d| d.base_size != now.size || d.base_checksum != checksum)
    {
        return Err(format!(
            "is {} bytes long, {} when its earlier diffs were made: it was truncated or replaced",
            now.size, diff.base_size
        )
        .into());
    }
    // Read through (seal checked) without keeping its hashes: the diff reads
    // them again in step with the snapshot.
    let sidecar = pagehash::check(dir.path(), base);
    if let Ok(recorded) = &sidecar
        && recorded.stamp.size != now.size
    {
        return Err(format!(
            "is {} bytes long, {} when it was written: it was truncated or replaced",
            now.size, recorded.stamp.size
        )
        .into());
    }
    // Known not to restore (its recorded file size, a failed read remembered).
    if let Some(damage) = &base.damage {
        return Err(format!("cannot be used: {damage}").into());
    }
    // The sidecar's hashes are what the file held when written: diff against
    // them and confirm while the snapshot streams, by the compressed bytes'
    // XXH3 when recorded and the base was written or read whole recently, else
    // by reading it whole.
    let sidecar = match sidecar {
        Ok(recorded) if recorded.stamp == now => {
            let has_xxh3 = matches!(&base.meta, Ok(m) if m.members.is_some());
            let age = std::fs::metadata(pagehash::sidecar_path(dir.path(), &base.file_name))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            let whole = !has_xxh3 || age.is_none_or(|age| age > WHOLE_READ_AGE);
            let why = if whole && has_xxh3 {
                format!("diff {index} of it; not read whole for a day")
            } else {
                format!("diff {index} of it")
            };
            return Ok(Some(Confirm { why, whole }));
        }
        other => other,
    };
    let read_because = match &sidecar {
        Ok(_) => "its file was modified, copied or restored since its page hashes were recorded"
            .to_string(),
        Err(why) => why.clone(),
    };
    tracing::debug!("reading base {} whole ({read_because})", base.file_name);
    let started = std::time::Instant::now();
    let table = read_whole(dir, base)?;
    tracing::info!(
        "base {} read whole and checked in {:.2} s ({read_because})",
        base.file_name,
        started.elapsed().as_secs_f64()
    );
    if let Ok(recorded) = &sidecar
        && recorded.digest != table.digest()
    {
        tracing::warn!(
            "page hashes of {} did not match it; replaced",
            base.file_name
        );
    }
    record(dir, base, table).map(|()| None)
}

/// Decompress any backup into `temp` and flush it: a full backup as it is, a diff
/// rebuilt on its base. Sizes and checksums are checked; `integrity_check` is the
/// caller's.
pub(crate) fn extract_to_file(
    entry: &Entry,
    temp: &mut TempFile,
    progress: &Progress,
    threads: usize,
    bases: rebuild::Bases,
) -> Result<Extracted> {
    let extracted = if entry.name.diff {
        decompress::fill_temp(temp, progress, |writer| {
            rebuild::rebuild(entry, writer, progress, threads, bases)
        })
    } else {
        decompress::extract_to_file(entry, temp, progress, threads)
    };
    // What a whole read finds is remembered at once, for `list`, `check`,
    // "unchanged", `latest` and retention (`store::damage`).
    match &extracted {
        Err(Error::Damaged { backup, why, .. }) => crate::store::damage::mark(backup, why),
        Ok(_) if entry.damage.is_some() => crate::store::damage::clear(&entry.path),
        _ => {}
    }
    extracted
}

/// Why `entry` cannot be restored, from cheap checks only: its file is not the
/// one its metadata describes, or a whole read found it damaged
/// (`Entry::damage`); a diff whose base is
/// missing, of another size than recorded (by the diff and by the base's
/// sidecar) or with another checksum; a full backup whose size is not the one
/// its sidecar recorded when it was written. `None` when it looks whole;
/// `verify` checks the content.
pub(crate) fn restore_problem(entry: &Entry) -> Option<String> {
    if let Some(damage) = &entry.damage {
        return Some(damage.clone());
    }
    if !entry.name.diff {
        return pagehash::size_problem(entry);
    }
    rebuild::base_of(entry, rebuild::Bases::Sound)
        .err()
        .map(|e| e.to_string())
}

/// Restore points split into the good ones and those [`restore_problem`] finds
/// cannot be restored (with why): `check`, `summary` and the metrics do not
/// count them.
pub(crate) fn split_restorable(points: &[Entry]) -> (Vec<Entry>, Vec<(Entry, String)>) {
    let mut good = Vec::new();
    let mut no_base = Vec::new();
    for entry in points {
        match restore_problem(entry) {
            None => good.push(entry.clone()),
            Some(problem) => no_base.push((entry.clone(), problem)),
        }
    }
    (good, no_base)
}
