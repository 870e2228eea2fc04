//! Rebuilding the database a differential backup represents: the base is
//! decompressed (its CRCs, size and SHA-256 checked as for any full backup) and,
//! page by page, merged with the diff's records in one sequential pass; the result
//! is cut or extended to the diff's page count, and its size and SHA-256 must be
//! the ones the diff recorded. Nothing here writes anywhere but `out`.

use std::io::{self, BufReader, Read, Write};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::{HEADER_LEN, MAGIC};
use crate::archive::decompress::{self, Extracted};
use crate::error::{Error, Result, show};
use crate::progress::Progress;
use crate::store::Checksum;
use crate::store::metadata::DiffInfo;
use crate::store::{BackupDir, BackupName, Entry, open_no_follow};

/// Which bases a diff is rebuilt on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bases {
    /// Only one nothing is known against.
    Sound,
    /// Also one whose bytes are those backed up though the database in them
    /// fails `integrity_check` (`damage::unsound_finding`): a diff the user
    /// named with `--force` (T26b #2); its result gets `integrity_check`.
    AlsoUnsound,
}

/// The full backup `diff` was made against, looked up beside it and checked
/// against what the diff recorded (cheap: metadata and size, no decompression).
pub(crate) fn base_of(diff: &Entry, bases: Bases) -> Result<(Entry, DiffInfo)> {
    let info = match &diff.meta {
        Ok(meta) => meta.diff.clone(),
        Err(why) => {
            return Err(Error::failed(format!(
                "diff {} has damaged metadata ({why}); it cannot be rebuilt without it",
                diff.file_name
            )));
        }
    };
    let Some(info) = info else {
        return Err(Error::failed(format!(
            "{} is not a differential backup",
            diff.file_name
        )));
    };
    let base_name = &info.base;
    if BackupName::parse(base_name).is_none_or(|n| n.diff || n.failed) {
        return Err(Error::failed(format!(
            "diff {} records an invalid base name '{base_name}'",
            diff.file_name
        )));
    }
    let dir = BackupDir::new(crate::store::atomic::parent_or_dot(&diff.path).to_path_buf());
    let missing = || {
        Error::failed(format!(
            "base backup {base_name} of diff {} is missing from {}; the diff cannot be rebuilt",
            diff.file_name,
            show(dir.path())
        ))
    };
    let base = dir.entry(base_name)?.ok_or_else(missing)?;
    let problem = match &base.meta {
        Err(why) => Some(format!("its metadata is unreadable ({why})")),
        Ok(meta) if meta.diff.is_some() => Some("it is itself a diff".into()),
        Ok(meta) if meta.checksum != info.base_checksum => Some(format!(
            "it holds {} while the diff was made against {}",
            meta.checksum, info.base_checksum
        )),
        Ok(_) if base.size != info.base_size => Some(format!(
            "it is {} bytes long, {} when the diff was made (truncated?)",
            base.size, info.base_size
        )),
        Ok(_) if base.is_failed() => Some("it failed its integrity check".into()),
        Ok(_)
            if base.damage.is_some()
                && let Some(finding) = crate::store::damage::unsound_finding(&base.path) =>
        {
            if bases == Bases::Sound {
                return Err(Error::failed(format!(
                    "base backup {base_name} of diff {name} is damaged: the database in it fails its check ({finding}); `dbbackup restore {name} --target FILE --force` gives this diff back, checked with integrity_check",
                    name = diff.file_name
                )));
            }
            None
        }
        Ok(_) if let Some(damage) = &base.damage => Some(damage.clone()),
        // Also what the base's page-hash sidecar recorded when the base was
        // written: a diff made on an already truncated base recorded that size.
        Ok(_) => super::pagehash::size_problem(&base),
    };
    match problem {
        Some(why) => Err(Error::failed(format!(
            "base backup {base_name} of diff {} is damaged: {why}; the diff cannot be rebuilt",
            diff.file_name
        ))),
        None => Ok((base, info)),
    }
}

/// Whether `diff`'s base holds a database known to fail `integrity_check`
/// (then so may the diff's, which `quick_check` cannot tell).
pub(crate) fn on_unsound_base(diff: &Entry) -> bool {
    diff.name.diff
        && base_of(diff, Bases::AlsoUnsound)
            .is_ok_and(|(base, _)| crate::store::damage::unsound_finding(&base.path).is_some())
}

/// Write the database `diff` represents to `out`.
pub(crate) fn rebuild(
    diff: &Entry,
    out: &mut dyn Write,
    progress: &Progress,
    threads: usize,
    bases: Bases,
) -> Result<Extracted> {
    let (base, info) = base_of(diff, bases)?;
    let meta = diff.meta.as_ref().map_err(|e| Error::failed(e.clone()))?;
    let damaged = |what: String| Error::Damaged {
        backup: diff.path.clone(),
        name: diff.file_name.clone(),
        why: what,
    };
    if u64::from(info.page_size) * info.page_count != meta.db_size
        || info.changed_pages > info.page_count
    {
        return Err(damaged(
            "its page size, page count and size disagree".into(),
        ));
    }
    let file = open_no_follow(&diff.path).map_err(|e| Error::Io {
        context: format!("cannot open backup {}", show(&diff.path)),
        source: e,
    })?;
    let mut records = Records {
        reader: MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file)),
        hasher: Sha256::new(),
        page_size: info.page_size as usize,
        page_count: info.page_count,
        last: 0,
        read: 0,
    };
    let mut header = [0u8; HEADER_LEN];
    records
        .read_exact(&mut header)
        .map_err(|e| damaged(e.to_string()))?;
    if &header[..8] != MAGIC
        || header[8..12] != info.page_size.to_be_bytes()
        || u64::from(u32::from_be_bytes([
            header[12], header[13], header[14], header[15],
        ])) != info.page_count
    {
        return Err(damaged(
            "its payload header does not match its metadata".into(),
        ));
    }
    let mut merge = Merge {
        out,
        records,
        next: None,
        page: Vec::with_capacity(info.page_size as usize),
        pgno: 0,
        hasher: Sha256::new(),
        total: 0,
        error: None,
    };
    merge.next = merge.records.next().map_err(|e| damaged(e.to_string()))?;
    if let Err(error) = decompress::extract(&base, &mut merge, progress, threads) {
        return Err(match merge.error.take() {
            Some(own) => damaged(own.to_string()),
            None if matches!(error, Error::Interrupted(_) | Error::Io { .. }) => error,
            // The base is the damaged file: that is what to remember, in its
            // own words ("backup BASE is damaged: ..."), which the base's other
            // diffs repeat (naming this diff there would blame the wrong one).
            None if matches!(error, Error::Damaged { .. }) => error,
            None => Error::failed(format!(
                "base backup {} of diff {} cannot be used: {error}",
                base.file_name, diff.file_name
            )),
        });
    }
    if !merge.page.is_empty() {
        return Err(Error::failed(format!(
            "base backup {} of diff {} does not hold whole pages of {} bytes",
            base.file_name, diff.file_name, info.page_size
        )));
    }
    merge.extend(&damaged)?;
    let Merge {
        records,
        hasher,
        total,
        ..
    } = merge;
    records.end(&info).map_err(|e| damaged(e.to_string()))?;
    let checksum = Checksum::finish(hasher);
    if total != meta.db_size || checksum != meta.checksum {
        return Err(damaged(format!(
            "the rebuilt database ({total} bytes, {checksum}) is not the one recorded ({} bytes, {})",
            meta.db_size, meta.checksum
        )));
    }
    Ok(Extracted {
        bytes: total,
        checksum,
    })
}

/// The diff's page records, read in order and checked as they come.
struct Records<R: Read> {
    reader: R,
    hasher: Sha256,
    page_size: usize,
    page_count: u64,
    last: u64,
    read: u64,
}

impl<R: Read> Records<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.reader.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::other("truncated"),
            _ => e,
        })?;
        self.hasher.update(&*buf);
        Ok(())
    }

    /// The next record, `None` at a clean end of the payload.
    fn next(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let mut number = [0u8; 4];
        let mut filled = 0;
        while filled < 4 {
            match self.reader.read(&mut number[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(io::Error::other("truncated inside a page record")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(io::Error::other("truncated"));
                }
                Err(e) => return Err(e),
            }
        }
        self.hasher.update(number);
        let pgno = u64::from(u32::from_be_bytes(number));
        if pgno <= self.last || pgno > self.page_count {
            return Err(io::Error::other(format!(
                "page record {pgno} out of order or beyond the page count {}",
                self.page_count
            )));
        }
        let mut page = vec![0u8; self.page_size];
        self.read_exact(&mut page)?;
        self.last = pgno;
        self.read += 1;
        Ok(Some((pgno, page)))
    }

    /// Everything was read: the record count and the payload's SHA-256 match.
    fn end(self, info: &DiffInfo) -> io::Result<()> {
        if self.read != info.changed_pages {
            return Err(io::Error::other(format!(
                "{} page records, {} recorded",
                self.read, info.changed_pages
            )));
        }
        let checksum = Checksum::finish(self.hasher);
        if checksum != info.diff_checksum {
            return Err(io::Error::other(format!(
                "payload checksum {checksum} does not match the recorded {}",
                info.diff_checksum
            )));
        }
        Ok(())
    }
}

/// Receives the base's decompressed bytes and writes the rebuilt database.
struct Merge<'a, R: Read> {
    out: &'a mut dyn Write,
    records: Records<R>,
    next: Option<(u64, Vec<u8>)>,
    page: Vec<u8>,
    pgno: u64,
    hasher: Sha256,
    total: u64,
    /// The diff's own error, kept while `extract` sees only an I/O error.
    error: Option<Error>,
}

impl<R: Read> Merge<'_, R> {
    fn emit(&mut self, page: &[u8]) -> io::Result<()> {
        self.hasher.update(page);
        self.total += page.len() as u64;
        self.out.write_all(page)
    }

    /// One whole base page: the diff's version of it if it has one; dropped past
    /// the diff's page count (the database shrank).
    fn base_page(&mut self) -> io::Result<()> {
        self.pgno += 1;
        let page = std::mem::take(&mut self.page);
        if self.pgno <= self.records.page_count {
            match self.next.take() {
                Some((pgno, record)) if pgno == self.pgno => {
                    self.emit(&record)?;
                    self.next = self.diff_next()?;
                }
                other => {
                    self.next = other;
                    self.emit(&page)?;
                }
            }
        }
        self.page = page;
        self.page.clear();
        Ok(())
    }

    fn diff_next(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        self.records.next().map_err(|e| {
            self.error = Some(Error::failed(e.to_string()));
            io::Error::other("diff payload")
        })
    }

    /// Pages past the end of the base: all must come from the diff.
    fn extend(&mut self, damaged: &dyn Fn(String) -> Error) -> Result<()> {
        while self.pgno < self.records.page_count {
            self.pgno += 1;
            match self.next.take() {
                Some((pgno, record)) if pgno == self.pgno => {
                    self.emit(&record).map_err(|e| Error::Io {
                        context: "cannot write decompressed data".into(),
                        source: e,
                    })?;
                    self.next = self.records.next().map_err(|e| damaged(e.to_string()))?;
                }
                _ => {
                    return Err(damaged(format!(
                        "page {} is neither in its base nor in the diff",
                        self.pgno
                    )));
                }
            }
        }
        if let Some((pgno, _)) = &self.next {
            return Err(damaged(format!("page record {pgno} was never used")));
        }
        Ok(())
    }
}

impl<R: Read> Write for Merge<'_, R> {
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<usize> {
        let n = bytes.len();
        let size = self.records.page_size;
        while !bytes.is_empty() {
            let take = (size - self.page.len()).min(bytes.len());
            self.page.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.page.len() == size {
                self.base_page()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
