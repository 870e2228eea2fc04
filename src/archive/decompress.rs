//! Bounded, checked decompression of a backup into any writer (a temp file for
//! restore, verify and export).
//!
//! Every gzip member's CRC is checked by the decoder; the total is bounded by the
//! size recorded in the metadata (a gzip bomb stops there), and the SHA-256 and
//! size of the output are compared with the metadata.

use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::{inflate, members};
use crate::error::{Error, Result, show};
use crate::progress::Progress;
use crate::signals;
use crate::sqlite_file::SQLITE_MAGIC;
use crate::store::Checksum;
use crate::store::{Entry, open_no_follow};

const CHUNK: usize = 256 * 1024;
/// Without recorded metadata (a legacy backup) the only bound is deflate's own
/// maximum ratio, about 1032:1.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// What came out.
#[derive(Debug, Clone)]
pub(crate) struct Extracted {
    pub bytes: u64,
    pub checksum: Checksum,
}

/// Decompress `entry` into `out`, checking CRCs, the size bound, the SQLite header,
/// and (when recorded) size and checksum. Errors name the backup. A backup whose
/// metadata records its members is inflated on `threads` threads; others (plain
/// gzip, backups made before the member index, diffs) as one stream.
pub(crate) fn extract(
    entry: &Entry,
    out: &mut (impl Write + ?Sized),
    progress: &Progress,
    threads: usize,
) -> Result<Extracted> {
    let file = open_no_follow(&entry.path).map_err(|e| Error::Io {
        context: format!("cannot open backup {}", show(&entry.path)),
        source: e,
    })?;
    let mut check = Check::new(entry);
    match layout(entry, &file) {
        Some(layout) => {
            tracing::debug!(
                "{}: inflating {} members on {threads} threads",
                entry.file_name,
                layout.len()
            );
            let each = |data: &[u8]| {
                check.data(data)?;
                progress.advance(data.len() as u64);
                write_out(out, data)
            };
            inflate::inflate(&file, &layout, threads, each).map_err(|stop| match stop {
                inflate::Stop::Damaged(why) => check.damaged(why),
                inflate::Stop::Read(source) => read_error(entry, source),
                inflate::Stop::Caller(error) => error,
            })?;
        }
        None => {
            let mut decoder = MultiGzDecoder::new(BufReader::with_capacity(CHUNK, file));
            let mut buffer = vec![0u8; CHUNK];
            loop {
                signals::stop_if_requested()?;
                let n = match decoder.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        let total = check.total;
                        return Err(check.damaged(format!("truncated after {total} bytes of data")));
                    }
                    // The disk or the network failed, not the file's content.
                    Err(e) if e.raw_os_error().is_some() => return Err(read_error(entry, e)),
                    Err(e) => return Err(check.damaged(e.to_string())),
                };
                check.data(&buffer[..n])?;
                progress.advance(n as u64);
                write_out(out, &buffer[..n])?;
            }
        }
    }
    check.finish()
}

/// The members of `entry` as its metadata and index record them, when they can
/// be inflated in parallel.
fn layout(entry: &Entry, file: &std::fs::File) -> Option<inflate::Layout> {
    let meta = entry.meta.as_ref().ok()?;
    let members = meta.members.as_ref()?;
    // A diff's payload is not the database: its size is not `db_size`.
    if meta.diff.is_some() {
        return None;
    }
    let data_start = crate::store::metadata::HEADER_LEN as u64;
    // Deflate adds a few bytes per 64 KiB to data it cannot shrink: 1/64 is ample.
    let block = super::compress::BLOCK_SIZE as u64;
    let max_member = block + block / 64;
    match members::read(
        file,
        members.index_at,
        entry.size,
        data_start,
        members.count,
        max_member,
    ) {
        Ok(lengths) => inflate::Layout::new(&lengths, data_start, meta.db_size),
        Err(why) => {
            // The stream read below says what is wrong with the data, if anything.
            tracing::debug!("{}: {why}; reading it as one stream", entry.file_name);
            None
        }
    }
}

fn read_error(entry: &Entry, source: io::Error) -> Error {
    Error::Io {
        context: format!("cannot read backup {}", show(&entry.path)),
        source,
    }
}

fn write_out(out: &mut (impl Write + ?Sized), data: &[u8]) -> Result<()> {
    out.write_all(data).map_err(|e| Error::Io {
        context: "cannot write decompressed data".into(),
        source: e,
    })
}

/// What every byte of decompressed data is checked against, in order: the
/// SQLite header, the size bound (a gzip bomb stops there), and at the end the
/// recorded size and SHA-256.
struct Check<'a> {
    entry: &'a Entry,
    limit: u64,
    total: u64,
    hasher: Sha256,
}

impl<'a> Check<'a> {
    fn new(entry: &'a Entry) -> Self {
        let limit = match &entry.meta {
            Ok(meta) => meta.db_size,
            Err(_) => entry.size.saturating_mul(MAX_DEFLATE_RATIO),
        };
        Check {
            entry,
            limit,
            total: 0,
            hasher: Sha256::new(),
        }
    }

    fn damaged(&self, what: String) -> Error {
        Error::Damaged {
            backup: self.entry.path.clone(),
            name: self.entry.file_name.clone(),
            why: what,
        }
    }

    fn data(&mut self, data: &[u8]) -> Result<()> {
        // A failed snapshot records what it saved, an SQLite database or not
        // (the pre-restore copy of a file whose header was destroyed): its
        // size and checksum say whether these are those bytes (T30 F8).
        let saved_as_is = self.entry.is_failed() && self.entry.records_checksum();
        if self.total == 0
            && !saved_as_is
            && (data.len() < SQLITE_MAGIC.len() || &data[..SQLITE_MAGIC.len()] != SQLITE_MAGIC)
        {
            return Err(self.damaged("it does not hold an SQLite database".into()));
        }
        self.total += data.len() as u64;
        if self.total > self.limit {
            return Err(self.damaged(format!(
                "it expands beyond its recorded size of {} bytes; stopped (gzip bomb?)",
                self.limit
            )));
        }
        self.hasher.update(data);
        Ok(())
    }

    fn finish(self) -> Result<Extracted> {
        let total = self.total;
        if total == 0 {
            return Err(self.damaged("it holds no data".into()));
        }
        let checksum = Checksum::finish(self.hasher.clone());
        if let Ok(meta) = &self.entry.meta {
            if total != meta.db_size {
                return Err(self.damaged(format!(
                    "{total} bytes of data, {} recorded (truncated?)",
                    meta.db_size
                )));
            }
            if checksum != meta.checksum {
                return Err(self.damaged(format!(
                    "checksum {checksum} does not match the recorded {}",
                    meta.checksum
                )));
            }
        }
        Ok(Extracted {
            bytes: total,
            checksum,
        })
    }
}

/// `extract` into `temp`, flushed (not synced: see `fill_temp`).
pub(crate) fn extract_to_file(
    entry: &Entry,
    temp: &mut crate::store::TempFile,
    progress: &Progress,
    threads: usize,
) -> Result<Extracted> {
    fill_temp(temp, progress, |writer| {
        extract(entry, writer, progress, threads)
    })
}

/// Write what `fill` produces (a decompressed backup or a rebuilt diff) into
/// `temp` through a buffer, and flush it. Not synced: only a restore, which
/// publishes the file, needs it on disk, and syncs it once; `verify` and
/// `export` only read it back.
pub(crate) fn fill_temp(
    temp: &mut crate::store::TempFile,
    progress: &Progress,
    fill: impl FnOnce(&mut dyn Write) -> Result<Extracted>,
) -> Result<Extracted> {
    let path = temp.path().to_path_buf();
    let extracted = {
        let mut writer = io::BufWriter::with_capacity(CHUNK, temp.file());
        let extracted = fill(&mut writer)?;
        progress.finish();
        writer.flush().map_err(|e| Error::Io {
            context: format!("cannot write {}", show(&path)),
            source: e,
        })?;
        extracted
    };
    Ok(extracted)
}

/// Whether `path` starts with the gzip magic (for messages about what a file is).
/// The database header (its first 100 bytes) of a full backup, inflated from
/// the start of its data: a few KiB read, whatever the backup's size. `None`
/// for a diff (its data is not the database) or an unreadable file.
pub(crate) fn db_header(entry: &Entry) -> Option<[u8; 100]> {
    // A legacy file records no metadata to read a header against.
    entry.meta.as_ref().ok()?;
    db_head(entry, 100)?.try_into().ok()
}

/// The first `len` bytes of the database a full backup or a legacy file
/// holds (fewer when it is smaller), inflated from the start of its data;
/// `None` for a diff or an unreadable file.
pub(crate) fn db_head(entry: &Entry, len: u64) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    crate::store::db_stream(entry)?
        .take(len)
        .read_to_end(&mut head)
        .ok()?;
    head.starts_with(SQLITE_MAGIC).then_some(head)
}

pub(crate) fn looks_like_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    open_no_follow(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}
