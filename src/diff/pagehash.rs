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
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::archive::decompress;
use crate::error::{Context, Error, Result, show};
use crate::progress::Progress;
use crate::store::{BackupDir, Checksum, Entry, PAGES_DIR, TempFile, copy_mode, sync_dir};

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

/// The 128-bit page hash.
pub(crate) fn hash(page: &[u8]) -> u128 {
    xxh3_128(page)
}

/// The fixed header of a sidecar, and its base checksum text.
fn header(page_size: u32, count: u64, stamp: &FileStamp, base_checksum: &Checksum) -> Vec<u8> {
    // The checksum's text, as in metadata: sidecars written before it had a type read the same.
    let base_checksum = base_checksum.to_string();
    let mut out = Vec::with_capacity(FIXED + base_checksum.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&page_size.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    stamp.encode(&mut out);
    out.extend_from_slice(&(base_checksum.len() as u16).to_be_bytes());
    out.extend_from_slice(base_checksum.as_bytes());
    out
}

/// Page hashes as they are computed (a full backup streaming, a base read
/// whole), written to a temp file beside the sidecars: 16 bytes a page on disk,
/// nothing that grows in memory (a 10 GB database has 2.6 million pages).
/// [`HashWriter::save`] makes the sidecar of it.
pub(crate) struct HashWriter {
    /// The hashes' file, removed when the writer is dropped.
    _body: TempFile,
    out: io::BufWriter<fs::File>,
    page_size: Option<u32>,
    count: u64,
    /// XXH3 of the hashes alone: tells two tables apart without holding either.
    digest: Xxh3,
    /// The first write that failed: the sidecar is then not saved (a cache).
    failed: Option<io::Error>,
}

impl HashWriter {
    /// A writer into a temp file in `dir`'s page-hash directory.
    pub(crate) fn create(dir: &Path) -> Result<HashWriter> {
        let pages = pages_dir(dir)?;
        let mut temp = TempFile::create_in(&pages, 0o600)?;
        let file = temp
            .file()
            .try_clone()
            .context(|| format!("cannot write {}", show(&pages)))?;
        Ok(HashWriter {
            _body: temp,
            out: io::BufWriter::with_capacity(64 * 1024, file),
            page_size: None,
            count: 0,
            digest: Xxh3::new(),
            failed: None,
        })
    }

    /// Hash one page (pages come in order, page 1 first).
    pub(crate) fn push(&mut self, page: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.page_size.get_or_insert(page.len() as u32);
        let bytes = hash(page).to_be_bytes();
        self.digest.update(&bytes);
        self.count += 1;
        if let Err(e) = self.out.write_all(&bytes) {
            self.failed = Some(e);
        }
    }

    /// XXH3 of the hashes alone, as [`Checked::digest`].
    pub(crate) fn digest(&self) -> u128 {
        self.digest.digest128()
    }

    /// Write the sidecar of backup `name` atomically (temp file, flush, rename),
    /// recording the backup file as it is now: call it only when these hashes
    /// are known to describe that file (just written from the same stream, or
    /// just read back from it).
    pub(crate) fn save(
        mut self,
        dir: &BackupDir,
        name: &str,
        base_checksum: &Checksum,
    ) -> Result<()> {
        let what = || format!("cannot write the page hashes of {name}");
        if let Some(e) = self.failed.take() {
            return Err(e).context(what);
        }
        let Some(page_size) = self.page_size else {
            return Err(Error::failed(format!("{}: no pages", what())));
        };
        self.out.flush().context(what)?;
        let mut body = self
            .out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
            .context(what)?;
        body.seek(io::SeekFrom::Start(0)).context(what)?;
        let mut body = io::BufReader::with_capacity(64 * 1024, body).take(self.count * 16);
        write_sidecar(dir, name, base_checksum, page_size, self.count, &mut body)
    }
}

/// Write `count` hashes read from `body` as the sidecar of `name`, atomically.
fn write_sidecar(
    dir: &BackupDir,
    name: &str,
    base_checksum: &Checksum,
    page_size: u32,
    count: u64,
    body: &mut impl Read,
) -> Result<()> {
    let file = dir.path().join(name);
    let stamp = FileStamp::of(&file).context(|| format!("cannot stat {}", show(&file)))?;
    let pages = pages_dir(dir.path())?;
    // Page hashes tell about the content: no more readable than the backup.
    let mut temp = TempFile::create_in(&pages, copy_mode(&file))?;
    let what = || format!("cannot write {}", show(&pages));
    let mut seal = Xxh3::new();
    {
        let mut out = io::BufWriter::with_capacity(64 * 1024, temp.file());
        let head = header(page_size, count, &stamp, base_checksum);
        seal.update(&head);
        out.write_all(&head).context(what)?;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut left = count * 16;
        while left > 0 {
            let part = &mut chunk[..left.min(64 * 1024) as usize];
            body.read_exact(part).context(what)?;
            seal.update(part);
            out.write_all(part).context(what)?;
            left -= part.len() as u64;
        }
        out.write_all(&seal.digest128().to_be_bytes())
            .context(what)?;
        out.flush().context(what)?;
    }
    temp.sync()?;
    let target = sidecar_path(dir.path(), name);
    fs::rename(temp.path(), &target).context(|| format!("cannot write {}", show(&target)))?;
    temp.keep();
    sync_dir(&pages)
}

/// The page-hash directory of backup directory `dir`, made if missing.
fn pages_dir(dir: &Path) -> Result<PathBuf> {
    let pages = dir.join(PAGES_DIR);
    match crate::store::perms::create_dir(&pages) {
        Ok(()) => Ok(pages),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(pages),
        Err(e) => Err(e).context(|| format!("cannot create {}", show(&pages))),
    }
}

/// A sidecar read in page order, one hash at a time: its header is checked
/// when opened, its seal when [`HashReader::finish`] reaches the end. Nothing
/// read from it may be relied on before `finish` says it is sealed.
pub(crate) struct HashReader<R = io::BufReader<fs::File>> {
    reader: R,
    pub page_size: u32,
    pub count: u64,
    /// The base file as it was when these hashes were last known to describe it.
    pub stamp: FileStamp,
    read: u64,
    seal: Xxh3,
    digest: Xxh3,
}

impl HashReader {
    /// Open the sidecar of full backup `base` in `dir` (its header and the
    /// base checksum it was made for checked), or say why there is no usable one.
    pub(crate) fn open(dir: &Path, base: &Entry) -> std::result::Result<HashReader, String> {
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
            Ok((len, file)) => {
                HashReader::new(io::BufReader::with_capacity(64 * 1024, file), len, checksum)
                    .map_err(|why| format!("page hashes {} unusable: {why}", show(&path)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(format!("no page hashes for {}", base.file_name))
            }
            Err(e) => Err(format!("cannot read {}: {e}", show(&path))),
        }
    }
}

fn truncated(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "truncated".to_string(),
        _ => e.to_string(),
    }
}

impl<R: Read> HashReader<R> {
    /// Read a sidecar's header from `reader` (`len` bytes in all).
    fn new(
        mut reader: R,
        len: u64,
        base_checksum: &Checksum,
    ) -> std::result::Result<HashReader<R>, String> {
        let mut seal = Xxh3::new();
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
        if text != base_checksum.to_string().as_bytes() {
            return Err("made for other content than the base holds".into());
        }
        Ok(HashReader {
            reader,
            page_size,
            count,
            stamp,
            read: 0,
            seal,
            digest: Xxh3::new(),
        })
    }

    /// The hash of the next page, `None` past the last; `Err` says why not.
    pub(crate) fn next_hash(&mut self) -> std::result::Result<Option<u128>, String> {
        if self.read == self.count {
            return Ok(None);
        }
        let mut bytes = [0u8; 16];
        self.reader.read_exact(&mut bytes).map_err(truncated)?;
        self.seal.update(&bytes);
        self.digest.update(&bytes);
        self.read += 1;
        Ok(Some(u128::from_be_bytes(bytes)))
    }

    /// Read what is left and check the seal: `Ok` (with the XXH3 of the hashes
    /// alone) only when every byte is the one written.
    pub(crate) fn finish(mut self) -> std::result::Result<u128, String> {
        while self.next_hash()?.is_some() {}
        let mut recorded = [0u8; 16];
        self.reader.read_exact(&mut recorded).map_err(truncated)?;
        if self.seal.digest128().to_be_bytes() != recorded {
            return Err("its seal does not match (damaged)".into());
        }
        Ok(self.digest.digest128())
    }
}

/// What a whole, sealed sidecar says, read through without keeping its hashes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    pub stamp: FileStamp,
    /// XXH3 of the hashes alone (compared with a [`HashWriter`]'s).
    pub digest: u128,
}

/// Check the sidecar of full backup `base` in `dir` end to end (header, base
/// checksum, seal) in bounded memory, or say why it is unusable.
pub(crate) fn check(dir: &Path, base: &Entry) -> std::result::Result<Checked, String> {
    let reader = HashReader::open(dir, base)?;
    let stamp = reader.stamp;
    let path = sidecar_path(dir, &base.file_name);
    let digest = reader
        .finish()
        .map_err(|why| format!("page hashes {} unusable: {why}", show(&path)))?;
    Ok(Checked { stamp, digest })
}

/// Where the sidecar of full backup `name` in `dir` lives.
pub(crate) fn sidecar_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(PAGES_DIR).join(format!("{name}.xxh3"))
}

/// Mark the sidecar of full backup `base` as just confirmed against it (a
/// whole read): its age is what schedules the next whole read. Its time is set
/// to now; a sidecar this user may not write (another group member's) is
/// copied anew instead, its seal checked on the way.
pub(crate) fn renew(dir: &BackupDir, base: &Entry) -> Result<()> {
    let path = sidecar_path(dir.path(), &base.file_name);
    let touched = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    if touched.is_ok() {
        return Ok(());
    }
    recopy(dir, base)
}

/// Write the sidecar of `base` anew from itself (seal checked first), with the
/// base file's stamp as it is now.
fn recopy(dir: &BackupDir, base: &Entry) -> Result<()> {
    let checksum = match &base.meta {
        Ok(meta) => meta.checksum,
        Err(why) => return Err(Error::failed(why.clone())),
    };
    check(dir.path(), base).map_err(Error::failed)?;
    let mut reader = HashReader::open(dir.path(), base).map_err(Error::failed)?;
    let (page_size, count) = (reader.page_size, reader.count);
    let mut body = Body(&mut reader);
    write_sidecar(dir, &base.file_name, &checksum, page_size, count, &mut body)
}

/// A sidecar's hashes as bytes, to copy them.
struct Body<'a>(&'a mut HashReader);

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while buf.len() - n >= 16 {
            match self.0.next_hash().map_err(io::Error::other)? {
                Some(h) => buf[n..n + 16].copy_from_slice(&h.to_be_bytes()),
                None => break,
            }
            n += 16;
        }
        Ok(n)
    }
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
                .or_else(|| n.strip_suffix(".verified"))
                .or_else(|| n.strip_suffix(".fingerprint"))
                .or_else(|| n.strip_suffix(".read"))
                .or_else(|| n.strip_suffix(".tables"))
        }) else {
            continue;
        };
        if fs::symlink_metadata(dir.join(backup)).is_err() {
            let _ = fs::remove_file(item.path());
        }
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
    let recorded = check(dir, entry).ok()?.stamp.size;
    (recorded != entry.size).then(|| {
        format!(
            "it is {} bytes long, {recorded} when it was written (truncated?)",
            entry.size
        )
    })
}

/// Hash the pages of a full backup by decompressing it (CRCs, size and SHA-256
/// checked by the decompressor) into `out`, a new sidecar.
pub(crate) fn rehash(out: HashWriter, base: &Entry, threads: usize) -> Result<HashWriter> {
    let mut hasher = Hasher {
        out,
        pending: Vec::new(),
    };
    decompress::extract(base, &mut hasher, &Progress::hidden(), threads)?;
    hasher.finish(&base.file_name)
}

/// Whether full backup `base`, decompressed (CRCs, size and SHA-256 checked),
/// holds pages with exactly the hashes its sealed sidecar in `dir` records:
/// compared as they come, without a table in memory. A sidecar that cannot be
/// read through, or whose seal fails, does not match.
pub(crate) fn matches(dir: &Path, base: &Entry, threads: usize) -> Result<bool> {
    let expected = match HashReader::open(dir, base) {
        Ok(expected) => expected,
        Err(why) => {
            tracing::warn!("{why}");
            return Ok(false);
        }
    };
    let mut matcher = Matcher {
        size: (expected.page_size as usize).max(512),
        expected,
        pending: Vec::new(),
        same: true,
    };
    decompress::extract(base, &mut matcher, &Progress::hidden(), threads)?;
    let Matcher {
        expected,
        pending,
        same,
        ..
    } = matcher;
    let all = expected.read == expected.count;
    if let Err(why) = expected.finish() {
        tracing::warn!("page hashes of {} unusable: {why}", base.file_name);
        return Ok(false);
    }
    Ok(same && pending.is_empty() && all)
}

/// Compares pages with a sidecar's hashes as they come.
struct Matcher {
    expected: HashReader,
    size: usize,
    pending: Vec<u8>,
    same: bool,
}

impl Write for Matcher {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        let size = self.size;
        let whole = self.pending.len() / size * size;
        for page in self.pending[..whole].chunks_exact(size) {
            // An unreadable sidecar is the sidecar's fault, not the base's.
            let known = self.expected.next_hash().unwrap_or(None);
            self.same &= known == Some(hash(page));
        }
        self.pending.drain(..whole);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Splits a database byte stream into pages and hashes them.
struct Hasher {
    out: HashWriter,
    pending: Vec<u8>,
}

impl Hasher {
    fn finish(self, name: &str) -> Result<HashWriter> {
        match self.out.page_size {
            Some(_) if self.pending.is_empty() => Ok(self.out),
            _ => Err(Error::failed(format!(
                "backup {name} does not hold whole pages of a database"
            ))),
        }
    }
}

impl Write for Hasher {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        let size = match self.out.page_size {
            Some(size) => size as usize,
            None => {
                if self.pending.len() < 18 {
                    return Ok(bytes.len());
                }
                let size = u16::from_be_bytes([self.pending[16], self.pending[17]]);
                let size = if size == 1 { 65536 } else { u32::from(size) };
                if size < 512 || !size.is_power_of_two() {
                    return Err(io::Error::other("invalid page size in the database header"));
                }
                size as usize
            }
        };
        let whole = self.pending.len() / size * size;
        for page in self.pending[..whole].chunks_exact(size) {
            self.out.push(page);
        }
        self.pending.drain(..whole);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl<'a> HashReader<&'a [u8]> {
    pub(crate) fn from_bytes(
        bytes: &'a [u8],
        checksum: &Checksum,
    ) -> std::result::Result<Self, String> {
        HashReader::new(bytes, bytes.len() as u64, checksum)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sealed sidecar's bytes for `pages`.
    pub(crate) fn sealed(pages: &[&[u8]], checksum: &Checksum) -> Vec<u8> {
        let stamp = FileStamp {
            size: 1,
            mtime: (0, 0),
            inode: 1,
            device: 1,
        };
        sidecar(pages, checksum, &stamp)
    }

    /// A sealed sidecar's bytes for `pages`, as `write_sidecar` lays them out.
    fn sidecar(pages: &[&[u8]], checksum: &Checksum, stamp: &FileStamp) -> Vec<u8> {
        let mut out = header(
            pages.first().map_or(0, |p| p.len() as u32),
            pages.len() as u64,
            stamp,
            checksum,
        );
        for page in pages {
            out.extend_from_slice(&hash(page).to_be_bytes());
        }
        let seal = xxh3_128(&out);
        out.extend_from_slice(&seal.to_be_bytes());
        out
    }

    fn read_all(bytes: &[u8], checksum: &Checksum) -> std::result::Result<Vec<u128>, String> {
        let mut reader = HashReader::new(bytes, bytes.len() as u64, checksum)?;
        let mut hashes = Vec::new();
        while let Some(h) = reader.next_hash()? {
            hashes.push(h);
        }
        reader.finish()?;
        Ok(hashes)
    }

    #[test]
    fn sidecar_round_trips_and_refuses_damage_and_other_content() {
        let pages: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 4096]).collect();
        let refs: Vec<&[u8]> = pages.iter().map(Vec::as_slice).collect();
        let stamp = FileStamp {
            size: 12345,
            mtime: (-3, 999_999_999),
            inode: 7,
            device: u64::MAX,
        };
        let bytes = sidecar(&refs, &Checksum::of(b"ab"), &stamp);
        let reader = HashReader::new(&bytes[..], bytes.len() as u64, &Checksum::of(b"ab")).unwrap();
        assert_eq!(
            (reader.stamp, reader.page_size, reader.count),
            (stamp, 4096, 5)
        );
        let expected: Vec<u128> = pages.iter().map(|p| hash(p)).collect();
        assert_eq!(read_all(&bytes, &Checksum::of(b"ab")).unwrap(), expected);
        assert!(read_all(&bytes, &Checksum::of(b"cd")).is_err());
        let mut flipped = bytes.clone();
        flipped[60] ^= 1;
        assert!(read_all(&flipped, &Checksum::of(b"ab")).is_err());
        assert!(read_all(&bytes[..bytes.len() - 3], &Checksum::of(b"ab")).is_err());
        assert!(read_all(b"", &Checksum::of(b"ab")).is_err());
    }

    #[test]
    fn the_writer_saves_what_the_reader_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let backups = BackupDir::new(dir.path().to_path_buf());
        fs::write(dir.path().join("b.db.gz"), b"backup").unwrap();
        let mut writer = HashWriter::create(dir.path()).unwrap();
        let pages: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_be_bytes().repeat(256)).collect();
        for page in &pages {
            writer.push(page);
        }
        assert_eq!(writer.count, 3000);
        writer
            .save(&backups, "b.db.gz", &Checksum::of(b"ab"))
            .unwrap();
        let bytes = fs::read(sidecar_path(dir.path(), "b.db.gz")).unwrap();
        let expected: Vec<u128> = pages.iter().map(|p| hash(p)).collect();
        assert_eq!(read_all(&bytes, &Checksum::of(b"ab")).unwrap(), expected);
        // Only the sidecar is left: the writer's temp file is gone.
        let left: Vec<_> = fs::read_dir(dir.path().join(PAGES_DIR)).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    /// The copy a sidecar this user may not write is renewed by holds the
    /// same hashes, sealed, with the base file's stamp as it is now.
    #[test]
    fn a_recopied_sidecar_keeps_its_hashes_with_a_new_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let backups = BackupDir::new(dir.path().to_path_buf());
        let mut base = crate::store::ownership::tests::entry(
            "20250101_000000",
            "/p/a.db",
            crate::store::metadata::Kind::Manual,
            false,
        );
        base.path = dir.path().join(&base.file_name);
        base.meta.as_mut().unwrap().checksum = Checksum::of(b"ab");
        fs::write(&base.path, b"backup").unwrap();
        let mut writer = HashWriter::create(dir.path()).unwrap();
        for i in 0..5000u32 {
            writer.push(&i.to_be_bytes().repeat(128));
        }
        writer
            .save(&backups, &base.file_name, &Checksum::of(b"ab"))
            .unwrap();
        let before = check(dir.path(), &base).unwrap();
        fs::write(&base.path, b"backup, rewritten").unwrap();
        recopy(&backups, &base).unwrap();
        let after = check(dir.path(), &base).unwrap();
        assert_eq!(after.digest, before.digest);
        assert_eq!(after.stamp, FileStamp::of(&base.path).unwrap());
        assert_ne!(after.stamp.size, before.stamp.size);
    }

    #[test]
    fn hasher_splits_a_stream_into_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = vec![0u8; 3 * 1024];
        db[16..18].copy_from_slice(&1024u16.to_be_bytes());
        db[2000] = 7;
        let mut hasher = Hasher {
            out: HashWriter::create(dir.path()).unwrap(),
            pending: Vec::new(),
        };
        for chunk in db.chunks(7) {
            hasher.write_all(chunk).unwrap();
        }
        let writer = hasher.finish("x").unwrap();
        assert_eq!((writer.page_size, writer.count), (Some(1024), 3));
        let mut expected = Xxh3::new();
        for page in db.chunks(1024) {
            expected.update(&hash(page).to_be_bytes());
        }
        assert_eq!(writer.digest.digest128(), expected.digest128());
    }
}
