//! Bounded, checked decompression of a backup into a file.
//!
//! Every gzip member's CRC is checked by the decoder; the total is bounded by the
//! size recorded in the metadata (a gzip bomb stops there), and the SHA-256 and
//! size of the output are compared with the metadata.

use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, show};
use crate::progress::Progress;
use crate::signals;
use crate::sqlite_file::{SQLITE_MAGIC, hex};
use crate::store::{Entry, open_no_follow};

const CHUNK: usize = 256 * 1024;
/// Without recorded metadata (a legacy backup) the only bound is deflate's own
/// maximum ratio, about 1032:1.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// What came out.
#[derive(Debug, Clone)]
pub(crate) struct Extracted {
    pub bytes: u64,
    pub checksum: String,
}

/// Decompress `entry` into `out`, checking CRCs, the size bound, the SQLite header,
/// and (when recorded) size and checksum. Errors name the backup.
pub(crate) fn extract(
    entry: &Entry,
    out: &mut (impl Write + ?Sized),
    progress: &Progress,
) -> Result<Extracted> {
    let damaged = |what: String| Error::Damaged {
        backup: entry.path.clone(),
        message: format!("backup {} is damaged: {what}", entry.file_name),
    };
    let file = open_no_follow(&entry.path).map_err(|e| Error::Io {
        context: format!("cannot open backup {}", show(&entry.path)),
        source: e,
    })?;
    let limit = match &entry.meta {
        Ok(meta) => meta.db_size,
        Err(_) => entry.size.saturating_mul(MAX_DEFLATE_RATIO),
    };
    let mut decoder = MultiGzDecoder::new(BufReader::with_capacity(CHUNK, file));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        signals::check()?;
        let n = match decoder.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(damaged(format!("truncated after {total} bytes of data")));
            }
            // The disk or the network failed, not the file's content.
            Err(e) if e.raw_os_error().is_some() => {
                return Err(Error::Io {
                    context: format!("cannot read backup {}", show(&entry.path)),
                    source: e,
                });
            }
            Err(e) => return Err(damaged(e.to_string())),
        };
        if total == 0 && (n < SQLITE_MAGIC.len() || &buffer[..SQLITE_MAGIC.len()] != SQLITE_MAGIC) {
            return Err(damaged("it does not hold an SQLite database".into()));
        }
        total += n as u64;
        if total > limit {
            return Err(damaged(format!(
                "it expands beyond its recorded size of {limit} bytes; stopped (gzip bomb?)"
            )));
        }
        hasher.update(&buffer[..n]);
        progress.advance(n as u64);
        out.write_all(&buffer[..n]).map_err(|e| Error::Io {
            context: "cannot write decompressed data".into(),
            source: e,
        })?;
    }
    if total == 0 {
        return Err(damaged("it holds no data".into()));
    }
    let checksum = format!("sha256:{}", hex(&hasher.finalize()));
    if let Ok(meta) = &entry.meta {
        if total != meta.db_size {
            return Err(damaged(format!(
                "{total} bytes of data, {} recorded (truncated?)",
                meta.db_size
            )));
        }
        if checksum != meta.checksum {
            return Err(damaged(format!(
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

/// `extract` into a new file at `path` with `mode`, flushed to disk.
pub(crate) fn extract_to_file(
    entry: &Entry,
    temp: &mut crate::store::TempFile,
    progress: &Progress,
) -> Result<Extracted> {
    fill_temp(temp, progress, |writer| extract(entry, writer, progress))
}

/// Write what `fill` produces into `temp` through a buffer, then flush and sync it:
/// a decompressed backup or a rebuilt diff, whole on disk before anyone reads it.
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
    temp.sync()?;
    Ok(extracted)
}

/// Read the first bytes of a path (for messages about what a file is).
pub(crate) fn looks_like_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    open_no_follow(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}
