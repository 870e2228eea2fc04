//! The first stage of a backup: the snapshot streamed, checked and compressed
//! into a temp file in the backup directory, as a full backup or a diff. Nothing
//! is published here; a diff that cannot be kept says why ([`Fallback`]).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use jiff::Timestamp;

use super::{Target, write_error};
use crate::archive::{self, compress, compress::Compressed};
use crate::config::Settings;
use crate::diff::write::{DiffStream, Limited, Stopped};
use crate::diff::{self, Base, Confirmation, pagehash::HashWriter};
use crate::error::{Context, Error, Result};
use crate::progress::Progress;
use crate::slurm::job::JobContext;
use crate::snapshot::{Check, Source};
use crate::sqlite_file::{CheckKind, Integrity};
use crate::store::metadata::{self, DiffInfo, DiffType, Members};
use crate::store::{Checksum, TempFile, copy_mode};

/// How the source is read.
pub(crate) enum Reader {
    /// A live SQLite database, through one read transaction.
    Sqlite(Source),
    /// Raw bytes of a file SQLite cannot open (only for pre-restore copies of a
    /// damaged target, so that restoring never destroys the only copy of anything).
    RawFile(File, String),
}

/// How the payload is compressed, and whether a person sees its progress.
pub(crate) struct Encoding<'a> {
    pub level: u32,
    pub threads: usize,
    pub progress: bool,
    /// A batch job shows no progress bar.
    pub job: &'a JobContext,
}

impl<'a> Encoding<'a> {
    pub(crate) fn of(settings: &Settings, job: &'a JobContext) -> Self {
        Encoding {
            level: settings.compression_level,
            threads: archive::worker_threads(settings.threads, job.cpus_per_task),
            progress: settings.progress(),
            job,
        }
    }
}

/// A temp file holding a whole backup but its metadata header (a placeholder of
/// the header's length), with what the header will say.
pub(crate) struct Checked {
    pub(super) temp: TempFile,
    pub(super) created: Timestamp,
    pub(crate) check: Integrity,
    pub(super) check_kind: CheckKind,
    /// Size and `sha256:` of the database content (a diff: of what it rebuilds to).
    pub(crate) db_size: u64,
    pub(crate) checksum: Checksum,
    /// Bytes of its free pages, from the snapshot's header (none for a raw copy).
    pub(super) free_bytes: Option<u64>,
    pub(super) members: Members,
    pub(super) diff: Option<DiffInfo>,
    /// A full backup's page hashes, kept when it may become a diff's base.
    pub(super) hashes: Option<HashWriter>,
}

/// What the first stage came to.
pub(crate) enum Written {
    Checked(Box<Checked>),
    /// A diff was given up (too large, failed check, not describable): make a
    /// full backup instead. The temp file is gone.
    Fallback(Fallback),
}

/// Why a diff was given up for a full backup.
#[derive(Debug)]
pub(crate) struct Fallback {
    pub why: String,
    /// Its base failed the check beside the snapshot: news (a warning), where a
    /// diff grown too large or a snapshot it cannot describe is routine.
    pub base_damaged: bool,
}

impl Fallback {
    fn routine(why: String) -> Self {
        Fallback {
            why,
            base_damaged: false,
        }
    }
}

/// What the compressor wrote into the temp file, after the header's placeholder.
struct Payload {
    /// The snapshot's check, perhaps still running.
    check: Check,
    free_bytes: Option<u64>,
    compressed: Compressed,
    members: Members,
    hashes: Option<HashWriter>,
}

/// What the metadata says about the content, once a diff is confirmed.
struct Content {
    db_size: u64,
    checksum: Checksum,
    diff: Option<DiffInfo>,
}

/// Stream `reader`'s snapshot into a new temp file of `target`'s backup
/// directory as `plan` says (a full backup, or a diff against its base).
pub(crate) fn write(
    target: &Target,
    encoding: &Encoding,
    reader: &Reader,
    plan: &diff::Plan,
) -> Result<Written> {
    let created = Timestamp::now();
    let (base, keep_hashes) = match plan {
        diff::Plan::Diff(base) => (Some(&**base), false),
        diff::Plan::Full { hashes, .. } => (None, *hashes),
    };
    // A diff reads its base's page hashes from the sidecar in step with the
    // pages; a full backup that may become a base writes its own to disk as it
    // streams (16 bytes a page: never a table in memory).
    let mut stream = match base
        .map(|base| diff::hashes_of(target.dir, base))
        .transpose()
    {
        Ok(hashes) => hashes.map(DiffStream::new),
        Err(why) => return Ok(Written::Fallback(Fallback::routine(why))),
    };
    let hashes = keep_hashes
        .then(|| HashWriter::create(target.dir.path()))
        .and_then(|made| {
            made.inspect_err(|e| tracing::warn!("cannot keep page hashes: {e}"))
                .ok()
        });
    let confirmation = base.and_then(Confirmation::start);
    let mut temp = target.dir.create_temp(copy_mode(target.db))?;
    let pages = Pages {
        stream: stream.as_mut(),
        hashes,
        header: None,
    };
    let payload = match write_payload(&mut temp, target, encoding, reader, pages, base)? {
        Ok(payload) => payload,
        Err(fallback) => return Ok(Written::Fallback(fallback)),
    };
    let Payload {
        check,
        free_bytes,
        compressed,
        members,
        hashes,
    } = payload;
    // A diff's base is confirmed first: its cheap test runs here while the
    // check, which ran beside the stream, may still be running.
    if let (Some(confirmation), Some(base)) = (confirmation, base)
        && let Err(why) = confirmation.finish(target.dir, base)
    {
        return Ok(Written::Fallback(Fallback {
            why,
            base_damaged: true,
        }));
    }
    let (check, check_kind) = check.wait()?;
    let content = match (stream, base) {
        (Some(stream), Some(base)) => match finish_diff(base, stream, &check, &compressed)? {
            Ok(content) => content,
            Err(fallback) => return Ok(Written::Fallback(fallback)),
        },
        _ => Content {
            db_size: compressed.raw_bytes,
            checksum: compressed.checksum,
            diff: None,
        },
    };
    Ok(Written::Checked(Box::new(Checked {
        temp,
        created,
        check,
        check_kind,
        db_size: content.db_size,
        checksum: content.checksum,
        free_bytes,
        members,
        diff: content.diff,
        hashes,
    })))
}

/// Where each page of the snapshot goes: through a diff's stream when there is
/// one, else to the compressor whole, its hash kept when `hashes` is `Some`.
struct Pages<'s> {
    stream: Option<&'s mut DiffStream>,
    hashes: Option<HashWriter>,
    /// The database header (the first page's first 100 bytes).
    header: Option<[u8; 100]>,
}

impl Pages<'_> {
    /// Bytes of the snapshot's free pages, from its header.
    fn free_bytes(&self) -> Option<u64> {
        self.header.as_ref().map(crate::sqlite_file::free_bytes)
    }
}

/// Compress the snapshot into `temp` after a placeholder for the header, and
/// append the member index. `Ok(Err(..))`: the diff was given up.
fn write_payload(
    temp: &mut TempFile,
    target: &Target,
    encoding: &Encoding,
    reader: &Reader,
    mut pages: Pages,
    base: Option<&Base>,
) -> Result<std::result::Result<Payload, Fallback>> {
    let dir = target.dir;
    let file = temp.file();
    // Placeholder for the metadata member, rewritten once sizes are known.
    file.write_all(&[0u8; metadata::HEADER_LEN])
        .map_err(write_error(dir))?;
    // A diff larger than half its base is given up for a full backup.
    let limit = base.map_or(u64::MAX, |b| {
        (b.entry.size / 2).saturating_sub(metadata::HEADER_LEN as u64)
    });
    let mut out = Limited::new(BufWriter::with_capacity(1 << 20, &*file), limit);
    let total = std::fs::metadata(target.db).map_or(0, |m| m.len());
    let progress = Progress::bytes(total, "backup", encoding.progress, encoding.job);
    let produced =
        compress::compress_parallel(&mut out, encoding.level, encoding.threads, |sink| {
            snapshot(reader, target, &progress, &mut pages, sink)
        });
    let (check, compressed) = match produced {
        Err(_) if out.stopped == Some(Stopped::TooLarge) => {
            let (name, size) = base.map_or((String::new(), 0), |b| {
                (b.entry.file_name.clone(), b.entry.size)
            });
            return Ok(Err(Fallback::routine(format!(
                "{} {name} ({size} bytes)",
                diff::write::TOO_LARGE
            ))));
        }
        Err(_) if let Some(why) = pages.stream.as_ref().and_then(|s| s.abandoned.clone()) => {
            return Ok(Err(Fallback::routine(why)));
        }
        // Say where the write failed (a full disk names its directory).
        Err(Error::Io { source, .. }) if out.stopped == Some(Stopped::OutputFailed) => {
            return Err(write_error(dir)(source));
        }
        other => other?,
    };
    // Past the diff's size limit: the index is a few bytes a member.
    let members = compressed
        .write_index(&mut out.inner, metadata::HEADER_LEN as u64)
        .map_err(write_error(dir))?;
    out.flush().map_err(write_error(dir))?;
    progress.finish();
    // The check still runs (beside the stream, the last block's compression
    // and the write until now): the caller waits for it.
    Ok(Ok(Payload {
        check,
        free_bytes: pages.free_bytes(),
        compressed,
        members,
        hashes: pages.hashes,
    }))
}

/// Feed the snapshot to the compressor's `sink`, page by page; its check,
/// perhaps still running (a raw file's verdict: the reason SQLite could not
/// open it).
fn snapshot(
    reader: &Reader,
    target: &Target,
    progress: &Progress,
    pages: &mut Pages,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Check> {
    match reader {
        Reader::Sqlite(source) => {
            let counted = |page: &[u8]| {
                progress.advance(page.len() as u64);
                if pages.header.is_none() {
                    pages.header = page.get(..100).and_then(|h| h.try_into().ok());
                }
                if let Some(stream) = pages.stream.as_mut() {
                    return stream.page(page, sink);
                }
                if let Some(hashes) = pages.hashes.as_mut() {
                    hashes.push(page);
                }
                sink(page)
            };
            source.stream(target.dir.path(), counted).map(|info| {
                tracing::debug!("snapshot: {} pages of {} bytes", info.pages, info.page_size);
                info.check
            })
        }
        Reader::RawFile(file, why) => {
            copy_raw(file, sink)?;
            // SQLite's refusal to open it, said as `quick_check`'s verdict.
            Ok(Check::Done((
                Integrity::Failed(why.clone()),
                CheckKind::QuickCheck,
            )))
        }
    }
}

/// The diff's own stage, once its payload is written and its base confirmed:
/// the snapshot's check passed, the stream complete. `Ok(Err(..))`: give the
/// diff up for a full backup.
fn finish_diff(
    base: &Base,
    mut stream: DiffStream,
    check: &Integrity,
    compressed: &Compressed,
) -> Result<std::result::Result<Content, Fallback>> {
    if *check != Integrity::Ok {
        // Failed snapshots are kept as full backups: evidence anyone can read.
        return Ok(Err(Fallback::routine(
            "the snapshot failed its check".into(),
        )));
    }
    let summary = match stream.finish() {
        Ok(summary) => summary,
        Err(e) => return Ok(Err(Fallback::routine(e.to_string()))),
    };
    let base_meta = base
        .entry
        .meta
        .as_ref()
        .map_err(|e| Error::failed(e.clone()))?;
    Ok(Ok(Content {
        db_size: summary.db_size,
        checksum: summary.checksum,
        diff: Some(DiffInfo {
            kind: DiffType::Diff,
            base: base.entry.file_name.clone(),
            base_checksum: base_meta.checksum,
            base_size: base.entry.size,
            page_size: summary.page_size,
            page_count: summary.page_count,
            changed_pages: summary.changed_pages,
            diff_checksum: compressed.checksum,
            diff_index: base.index,
        }),
    }))
}

fn copy_raw(file: &File, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let mut reader = BufReader::new(file);
    reader
        .seek(SeekFrom::Start(0))
        .context(|| "cannot read file")?;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer).context(|| "cannot read file")?;
        if n == 0 {
            return Ok(());
        }
        sink(&buffer[..n])?;
        crate::signals::stop_if_requested()?;
    }
}
