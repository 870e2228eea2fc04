//! Per-page hashes of a full backup: what a differential backup compares the live
//! database with, so that finding the changed pages never decompresses the base.
//!
//! One 128-bit XXH3 hash per page (16 bytes a page: 4 MiB for a 1 GiB database of
//! 4 KiB pages), computed while the full backup streams, kept in a sidecar file
//! `.dbbackup-pages/<full backup name>.xxh3` in the backup directory: hidden, never
//! a backup name, so `list`, retention's choices and mirrors never see it. It is a
//! cache: written atomically, deleted with its full backup, and rebuilt from the
//! full backup (checked against its recorded SHA-256 on the way) when missing or
//! damaged.
//!
//! It also records the base file as it was on disk when the hashes were last known
//! to describe it (size, modification time, inode, device): a base whose file
//! changed since is not trusted as a base without being read again.
//!
//! File layout (big-endian): `DBBKPH02`, u32 page size, u64 page count, the base
//! file's u64 size, i64 mtime seconds, u32 mtime nanoseconds, u64 inode, u64
//! device, u16 length and the base's `checksum` text, the hashes, then the
//! XXH3-128 of all that.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_128;

use crate::archive::decompress;
use crate::error::{Context, Error, Result, show};
use crate::progress::Progress;
use crate::store::{BackupDir, Checksum, Entry, PAGES_DIR, copy_mode, replace_file, sync_dir};

const MAGIC: &[u8; 8] = b"DBBKPH02";
/// Magic, page size, page count, the base file's stamp, checksum length.
const FIXED: usize = 8 + 4 + 8 + FileStamp::LEN + 2;

/// A file as it is on disk: what tells, without reading it, that a base changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub size: u64,
    pub mtime: (i64, u32),
    pub inode: u64,
    pub device: u64,
}

impl FileStamp {
    const LEN: usize = 8 + 8 + 4 + 8 + 8;

    pub(crate) fn of(path: &Path) -> io::Result<FileStamp> {
        let meta = fs::symlink_metadata(path)?;
        Ok(FileStamp {
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec().clamp(0, 999_999_999) as u32),
            inode: meta.ino(),
            device: meta.dev(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.mtime.0.to_be_bytes());
        out.extend_from_slice(&self.mtime.1.to_be_bytes());
        out.extend_from_slice(&self.inode.to_be_bytes());
        out.extend_from_slice(&self.device.to_be_bytes());
    }

    fn decode(b: &[u8]) -> FileStamp {
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
        FileStamp {
            size: u64_at(0),
            mtime: (
                i64::from_be_bytes(b[8..16].try_into().unwrap_or_default()),
                u32::from_be_bytes(b[16..20].try_into().unwrap_or_default()),
            ),
            inode: u64_at(20),
            device: u64_at(28),
        }
    }
}

/// A sidecar as read: the hashes and the base file they were last known to match.
#[derive(Debug, Clone)]
pub(crate) struct Sidecar {
    pub table: PageHashes,
    pub stamp: FileStamp,
}

/// The page hashes of one full backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageHashes {
    pub page_size: u32,
    pub hashes: Vec<u128>,
}

impl PageHashes {
    pub(crate) fn new(page_size: u32) -> PageHashes {
        PageHashes {
            page_size,
            hashes: Vec::new(),
        }
    }

    /// Hash one page (pages come in order, page 1 first).
    pub(crate) fn push(&mut self, page: &[u8]) {
        self.hashes.push(hash(page));
    }

    /// Whether page `pgno` (1-based) differs from the base, or is new.
    pub(crate) fn differs(&self, pgno: u64, page: &[u8]) -> bool {
        match self.hashes.get((pgno as usize).wrapping_sub(1)) {
            Some(&known) => known != hash(page),
            None => true,
        }
    }

    /// Bytes the table takes in memory.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.hashes.len() * std::mem::size_of::<u128>()
    }

    fn encode(&self, base_checksum: &Checksum, stamp: &FileStamp) -> Vec<u8> {
        // The checksum's text, as in metadata: sidecars written before it had a type read the same.
        let base_checksum = base_checksum.to_string();
        let mut out = Vec::with_capacity(FIXED + 16 + base_checksum.len() + self.memory_bytes());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.page_size.to_be_bytes());
        out.extend_from_slice(&(self.hashes.len() as u64).to_be_bytes());
        stamp.encode(&mut out);
        out.extend_from_slice(&(base_checksum.len() as u16).to_be_bytes());
        out.extend_from_slice(base_checksum.as_bytes());
        for h in &self.hashes {
            out.extend_from_slice(&h.to_be_bytes());
        }
        let seal = xxh3_128(&out);
        out.extend_from_slice(&seal.to_be_bytes());
        out
    }

    /// Parse a sidecar; `Err` says what is wrong with it.
    #[cfg(test)]
    fn decode(bytes: &[u8], base_checksum: &Checksum) -> std::result::Result<Sidecar, String> {
        Self::read_from(&mut &bytes[..], bytes.len() as u64, base_checksum)
    }

    /// Parse a sidecar of `len` bytes from `reader`, holding only its table in
    /// memory (16 bytes a page: 40 MiB for a 10 GB database, never twice).
    fn read_from(
        reader: &mut impl Read,
        len: u64,
        base_checksum: &Checksum,
    ) -> std::result::Result<Sidecar, String> {
        let truncated = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => "truncated".to_string(),
            _ => e.to_string(),
        };
        let mut seal = xxhash_rust::xxh3::Xxh3::new();
        let mut fixed = [0u8; FIXED];
        reader.read_exact(&mut fixed).map_err(truncated)?;
        seal.update(&fixed);
        if &fixed[..8] != MAGIC {
            // Also a sidecar of the first format, which recorded no file stamp.
            return Err("not a page-hash file of this version".into());
        }
        let page_size = u32::from_be_bytes(fixed[8..12].try_into().unwrap_or_default());
        let count = u64::from_be_bytes(fixed[12..20].try_into().unwrap_or_default());
        let stamp = FileStamp::decode(&fixed[20..20 + FileStamp::LEN]);
        let text_len =
            u16::from_be_bytes(fixed[FIXED - 2..FIXED].try_into().unwrap_or_default()) as usize;
        let expected = count
            .checked_mul(16)
            .and_then(|t| t.checked_add((FIXED + text_len + 16) as u64));
        if expected != Some(len) {
            return Err("its page count does not match its length".into());
        }
        let mut text = vec![0u8; text_len];
        reader.read_exact(&mut text).map_err(truncated)?;
        seal.update(&text);
        let mut hashes = Vec::with_capacity(count as usize);
        let mut chunk = vec![0u8; 16 * 4096];
        let mut left = count as usize * 16;
        while left > 0 {
            let part = &mut chunk[..left.min(16 * 4096)];
            reader.read_exact(part).map_err(truncated)?;
            seal.update(part);
            hashes.extend(
                part.chunks_exact(16)
                    .map(|c| u128::from_be_bytes(c.try_into().unwrap_or_default())),
            );
            left -= part.len();
        }
        let mut recorded = [0u8; 16];
        reader.read_exact(&mut recorded).map_err(truncated)?;
        if seal.digest128().to_be_bytes() != recorded {
            return Err("its seal does not match (damaged)".into());
        }
        if text != base_checksum.to_string().as_bytes() {
            return Err("made for other content than the base holds".into());
        }
        Ok(Sidecar {
            table: PageHashes { page_size, hashes },
            stamp,
        })
    }
}

/// The 128-bit page hash.
pub(crate) fn hash(page: &[u8]) -> u128 {
    xxh3_128(page)
}

/// Where the sidecar of full backup `name` in `dir` lives.
pub(crate) fn sidecar_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(PAGES_DIR).join(format!("{name}.xxh3"))
}

/// Write the sidecar of `name` atomically (temp file, flush, rename), recording
/// the backup file as it is now: call it only when `table` is known to describe
/// that file (just written from the same stream, or just read back from it).
pub(crate) fn save(
    dir: &BackupDir,
    name: &str,
    base_checksum: &Checksum,
    table: &PageHashes,
) -> Result<()> {
    let file = dir.path().join(name);
    let stamp = FileStamp::of(&file).context(|| format!("cannot stat {}", show(&file)))?;
    let pages = dir.path().join(PAGES_DIR);
    match crate::store::perms::create_dir(&pages) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).context(|| format!("cannot create {}", show(&pages))),
    }
    replace_file(
        &sidecar_path(dir.path(), name),
        // Page hashes tell about the content: no more readable than the backup.
        copy_mode(&file),
        &table.encode(base_checksum, &stamp),
    )?;
    sync_dir(&pages)
}

/// Remove the sidecar of `name`, if any (its full backup was deleted).
pub(crate) fn remove(dir: &Path, name: &str) {
    let _ = fs::remove_file(sidecar_path(dir, name));
    crate::store::damage::forget(dir, name);
}

/// Remove sidecars whose full backup is gone (deleted by hand, say).
pub(crate) fn remove_orphans(dir: &Path) {
    let Ok(items) = fs::read_dir(dir.join(PAGES_DIR)) else {
        return;
    };
    for item in items.flatten() {
        let name = item.file_name();
        let Some(backup) = name.to_str().and_then(|n| {
            n.strip_suffix(".xxh3")
                .or_else(|| n.strip_suffix(".damaged"))
        }) else {
            continue;
        };
        if fs::symlink_metadata(dir.join(backup)).is_err() {
            let _ = fs::remove_file(item.path());
        }
    }
}

/// The sidecar of full backup `base` in `dir` (its seal and base checksum
/// checked), or why there is no usable one.
pub(crate) fn load(dir: &Path, base: &Entry) -> std::result::Result<Sidecar, String> {
    let checksum = match &base.meta {
        Ok(meta) if meta.diff.is_none() => &meta.checksum,
        _ => {
            return Err(format!(
                "{} is not a full backup with metadata",
                base.file_name
            ));
        }
    };
    let path = sidecar_path(dir, &base.file_name);
    let opened = fs::File::open(&path).and_then(|f| Ok((f.metadata()?.len(), f)));
    match opened {
        Ok((len, file)) => PageHashes::read_from(&mut io::BufReader::new(file), len, checksum)
            .map_err(|why| format!("page hashes {} unusable: {why}", show(&path))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(format!("no page hashes for {}", base.file_name))
        }
        Err(e) => Err(format!("cannot read {}: {e}", show(&path))),
    }
}

/// Why full backup `entry` is not the file it was when written, by its size
/// against what its sidecar recorded then (cheap: no decompression); `None`
/// without a usable sidecar (a mirror, `diff_backups: 0`). What the file's own
/// metadata and a failed whole read say is `Entry::damage`.
pub(crate) fn size_problem(entry: &Entry) -> Option<String> {
    // A recorded `file_size` already told (`Entry::damage`), without reading a
    // sidecar of 16 bytes a page: `auto` stays cheap for a large database.
    if matches!(&entry.meta, Ok(meta) if meta.file_size.is_some()) {
        return None;
    }
    let dir = entry.path.parent()?;
    let recorded = load(dir, entry).ok()?.stamp.size;
    (recorded != entry.size).then(|| {
        format!(
            "it is {} bytes long, {recorded} when it was written (truncated?)",
            entry.size
        )
    })
}

/// Hash the pages of a full backup by decompressing it (CRCs, size and SHA-256
/// checked by the decompressor).
pub(crate) fn rehash(base: &Entry, threads: usize) -> Result<PageHashes> {
    let mut hasher = Hasher::default();
    decompress::extract(base, &mut hasher, &Progress::hidden(), threads)?;
    hasher.finish(&base.file_name)
}

/// Whether full backup `base`, decompressed (CRCs, size and SHA-256 checked),
/// holds pages with exactly the hashes of `expected`: compared as they come,
/// without a second table in memory.
pub(crate) fn matches(base: &Entry, expected: &PageHashes, threads: usize) -> Result<bool> {
    let mut matcher = Matcher {
        expected,
        page: 0,
        pending: Vec::new(),
        same: true,
    };
    decompress::extract(base, &mut matcher, &Progress::hidden(), threads)?;
    Ok(matcher.same && matcher.pending.is_empty() && matcher.page == expected.hashes.len())
}

struct Matcher<'a> {
    expected: &'a PageHashes,
    page: usize,
    pending: Vec<u8>,
    same: bool,
}

impl Write for Matcher<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        // A sealed sidecar never records another page size than SQLite's.
        let size = (self.expected.page_size as usize).max(512);
        let whole = self.pending.len() / size * size;
        for page in self.pending[..whole].chunks_exact(size) {
            self.same &= self.expected.hashes.get(self.page) == Some(&hash(page));
            self.page += 1;
        }
        self.pending.drain(..whole);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Splits a database byte stream into pages and hashes them.
#[derive(Default)]
struct Hasher {
    table: Option<PageHashes>,
    pending: Vec<u8>,
}

impl Hasher {
    fn finish(self, name: &str) -> Result<PageHashes> {
        match self.table {
            Some(table) if self.pending.is_empty() => Ok(table),
            _ => Err(Error::failed(format!(
                "backup {name} does not hold whole pages of a database"
            ))),
        }
    }
}

impl Write for Hasher {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        if self.table.is_none() {
            if self.pending.len() < 18 {
                return Ok(bytes.len());
            }
            let size = u16::from_be_bytes([self.pending[16], self.pending[17]]);
            let size = if size == 1 { 65536 } else { u32::from(size) };
            if size < 512 || !size.is_power_of_two() {
                return Err(io::Error::other("invalid page size in the database header"));
            }
            self.table = Some(PageHashes::new(size));
        }
        let table = self.table.as_mut().expect("set above");
        let size = table.page_size as usize;
        let whole = self.pending.len() / size * size;
        for page in self.pending[..whole].chunks_exact(size) {
            table.push(page);
        }
        self.pending.drain(..whole);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_round_trips_and_refuses_damage_and_other_content() {
        let mut table = PageHashes::new(4096);
        for i in 0..5u8 {
            table.push(&[i; 4096]);
        }
        let stamp = FileStamp {
            size: 12345,
            mtime: (-3, 999_999_999),
            inode: 7,
            device: u64::MAX,
        };
        let ab = Checksum::of(b"ab");
        let bytes = table.encode(&ab, &stamp);
        let back = PageHashes::decode(&bytes, &ab).unwrap();
        assert_eq!((back.table, back.stamp), (table.clone(), stamp));
        assert!(PageHashes::decode(&bytes, &Checksum::of(b"cd")).is_err());
        let mut flipped = bytes.clone();
        flipped[60] ^= 1;
        assert!(PageHashes::decode(&flipped, &ab).is_err());
        assert!(PageHashes::decode(&bytes[..bytes.len() - 3], &ab).is_err());
        assert!(PageHashes::decode(b"", &ab).is_err());
        assert!(!table.differs(2, &[1; 4096]));
        assert!(table.differs(2, &[2; 4096]));
        assert!(table.differs(6, &[5; 4096]), "a new page differs");
        assert_eq!(table.memory_bytes(), 80);
    }

    #[test]
    fn hasher_splits_a_stream_into_pages() {
        let mut db = vec![0u8; 3 * 1024];
        db[16..18].copy_from_slice(&1024u16.to_be_bytes());
        db[2000] = 7;
        let mut hasher = Hasher::default();
        for chunk in db.chunks(7) {
            hasher.write_all(chunk).unwrap();
        }
        let table = hasher.finish("x").unwrap();
        assert_eq!(table.page_size, 1024);
        assert_eq!(
            table.hashes,
            vec![hash(&db[..1024]), hash(&db[1024..2048]), hash(&db[2048..])]
        );
    }
}
