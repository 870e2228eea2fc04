//! Export: any restore point as a plain full `.db.gz` (a diff rebuilt on its base),
//! for archiving, sharing, or reading with nothing but `gzip -d` and `sqlite3`.
//!
//! The database is rebuilt in a temp file beside the output and checked (sizes,
//! SHA-256, `integrity_check`) before it is compressed into a second temp file,
//! which is published under the output name by a link that never replaces: an
//! existing file is refused, and an interrupted export leaves nothing.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::archive::decompress::Extracted;
use crate::archive::{self, compress};
use crate::config::Settings;
use crate::error::{Context, Error, Result, show};
use crate::progress::Progress;
use crate::slurm::job::JobContext;
use crate::sqlite_file::{self, Integrity};
use crate::store::{
    BackupDir, Checksum, Entry, TempFile, copy_mode, link_no_replace, metadata, sync_dir,
};

/// What was written.
#[derive(Debug)]
pub(crate) struct Exported {
    pub name: String,
    pub out: PathBuf,
    pub size: u64,
    pub db_size: u64,
    pub checksum: Checksum,
    /// `latest`: newer restore points passed over, and why.
    pub passed_over: Vec<(String, String)>,
}

/// Export backup `name` (or the newest restore point of `latest`, from
/// `latest_of`) to `out`.
pub(crate) fn export(
    settings: &Settings,
    job: &JobContext,
    dir: &BackupDir,
    name: &str,
    latest_of: Option<Vec<Entry>>,
    out: &Path,
) -> Result<Exported> {
    refuse_backup_dirs(settings, dir, out)?;
    let candidates = candidates(dir, name, latest_of)?;
    let parent = output_parent(out)?;
    // The temp files of an export killed here before (its rebuilt database
    // and gzip, as large as the backup), as a restore removes its own.
    crate::store::remove_dead_temps_in(&parent);
    let (entry, database, extracted, passed_over) =
        first_exportable(settings, job, candidates, &parent)?;
    let gz = compressed_and_checked(settings, job, &entry, &database, &extracted, &parent)?;
    publish(gz, out, &parent)?;
    let size = fs::metadata(out).map_or(0, |m| m.len());
    tracing::info!(target: crate::logging::REPORTED, "exported {} to {}", entry.file_name, show(out));
    Ok(Exported {
        name: entry.file_name,
        out: out.to_path_buf(),
        size,
        db_size: extracted.bytes,
        checksum: extracted.checksum,
        passed_over,
    })
}

/// The backups to try, in order, and whether one was asked for by name.
struct Candidates {
    entries: Vec<Entry>,
    by_name: bool,
}

/// `latest`: the newest restore point that rebuilds and checks, as `restore
/// latest` does (`latest_of`, never empty); by name: that one.
fn candidates(dir: &BackupDir, name: &str, latest_of: Option<Vec<Entry>>) -> Result<Candidates> {
    Ok(match latest_of {
        Some(entries) => Candidates {
            entries,
            by_name: false,
        },
        None => Candidates {
            entries: vec![{
                let entry = dir.by_name(name)?;
                dir.refuse_copy(&entry)?;
                entry
            }],
            by_name: true,
        },
    })
}

/// The directory `out` goes in, where the temp files are written: `out` must
/// not exist, its directory must.
pub(crate) fn output_parent(out: &Path) -> Result<PathBuf> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(Error::failed(format!(
            "{} exists; refusing to overwrite it (export never replaces a file: remove it, or give another --out)",
            show(out)
        )));
    }
    let parent = crate::store::atomic::parent_or_dot(out).to_path_buf();
    if !parent.is_dir() {
        return Err(Error::failed(format!(
            "directory {} does not exist; create it first to export into {}",
            show(&parent),
            show(out)
        )));
    }
    Ok(parent)
}

/// Restore points passed over by `latest`, and why.
type PassedOver = Vec<(String, String)>;

/// The first candidate that rebuilds and checks, as a database in a temp file
/// in `parent`; `latest` passes over damaged ones, a backup named fails.
fn first_exportable(
    settings: &Settings,
    job: &JobContext,
    candidates: Candidates,
    parent: &Path,
) -> Result<(Entry, TempFile, Extracted, PassedOver)> {
    let by_name = candidates.by_name;
    let mut first_error = None;
    // Said in the report, as `restore latest` says it: the export is older.
    let mut passed_over = Vec::new();
    for entry in candidates.entries {
        // A base put back since it was found damaged: read again (T32 G12).
        crate::verify::reread_changed_base(&entry, job, 1);
        // `latest`: one known not to restore is passed over without reading it.
        if !by_name && let Some(why) = crate::diff::restore_problem(&entry) {
            let error = Error::failed(format!("backup {} is damaged: {why}", entry.file_name));
            passed_over.push((entry.file_name.clone(), error.to_string()));
            first_error.get_or_insert(error);
            continue;
        }
        match rebuilt_and_checked(settings, job, &entry, parent) {
            Ok((database, extracted)) => return Ok((entry, database, extracted, passed_over)),
            Err(error @ (Error::Interrupted(_) | Error::Io { .. })) => return Err(error),
            Err(error) if by_name => return Err(error),
            Err(error) => {
                passed_over.push((entry.file_name.clone(), error.to_string()));
                first_error.get_or_insert(error);
            }
        }
    }
    let error = first_error.map_or_else(String::new, |e| e.to_string());
    Err(Error::failed(format!(
        "no restore point can be exported (newest: {error}); nothing was written"
    )))
}

/// How a failed write in the output's directory is said.
fn write_error(parent: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        context: format!("cannot write in {}", show(parent)),
        source,
    }
}

/// The checked `database` of `entry` compressed into a temp file in `parent`,
/// with a full backup's metadata member; refused when what was compressed is
/// not what was checked.
fn compressed_and_checked(
    settings: &Settings,
    job: &JobContext,
    entry: &Entry,
    database: &TempFile,
    extracted: &Extracted,
    parent: &Path,
) -> Result<TempFile> {
    let mut gz = TempFile::create_in(parent, copy_mode(&entry.path))?;
    // A full backup's metadata member (`gzip -d` skips it), so the export can
    // also be put back into a backup directory by hand (docs/differential.md).
    // Rewritten with this file's own size once it is known (`file_size`).
    let mut header_meta = entry.meta.as_ref().ok().cloned().map(|mut meta| {
        meta.diff = None;
        meta.file_size = None;
        meta.members = None;
        // Written with its header checksum (`metadata::encode`).
        meta.format = meta.format.max(metadata::FORMAT_VERSION);
        meta
    });
    if let Some(meta) = &header_meta {
        let header = metadata::encode(meta).map_err(write_error(parent))?;
        gz.file().write_all(&header).map_err(write_error(parent))?;
    }
    let encoding = (
        settings.compression_level,
        archive::worker_threads(settings.threads, job.cpus_per_task),
    );
    let compressed = compress_into(&mut gz, database, encoding, header_meta.as_mut(), parent)?;
    if compressed.checksum != extracted.checksum || compressed.raw_bytes != extracted.bytes {
        return Err(Error::failed(format!(
            "the rebuilt database of {} changed while being compressed; nothing was written",
            entry.file_name
        )));
    }
    if let Some(meta) = &mut header_meta {
        use std::os::unix::fs::FileExt;
        meta.file_size = Some(gz.file().metadata().map_err(write_error(parent))?.len());
        let header = metadata::encode(meta).map_err(write_error(parent))?;
        gz.file()
            .write_all_at(&header, 0)
            .map_err(write_error(parent))?;
    }
    gz.sync()?;
    Ok(gz)
}

/// Compress `database` into `gz` at (level, threads) `encoding`, then the
/// member index, which `meta` (when there is a metadata member) records.
fn compress_into(
    gz: &mut TempFile,
    database: &TempFile,
    (level, threads): (u32, usize),
    meta: Option<&mut metadata::Metadata>,
    parent: &Path,
) -> Result<compress::Compressed> {
    let source =
        File::open(database.path()).context(|| format!("cannot read {}", show(database.path())))?;
    let mut writer = BufWriter::with_capacity(1 << 20, gz.file());
    let ((), compressed) = compress::compress_parallel(&mut writer, level, threads, |sink| {
        let mut reader = BufReader::with_capacity(1 << 20, source);
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buffer)
                .context(|| "cannot read the rebuilt database")?;
            if n == 0 {
                return Ok(());
            }
            sink(&buffer[..n])?;
        }
    })?;
    // The index only means something to the metadata that points to it.
    if let Some(meta) = meta {
        let at = metadata::HEADER_LEN as u64;
        meta.members = Some(
            compressed
                .write_index(&mut writer, at)
                .map_err(write_error(parent))?,
        );
    }
    writer.flush().map_err(write_error(parent))?;
    Ok(compressed)
}

/// Give the finished temp file the name `out` by a link that never replaces.
fn publish(gz: TempFile, out: &Path, parent: &Path) -> Result<()> {
    crate::signals::stop_if_requested()?;
    link_no_replace(gz.path(), out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            Error::failed(format!("{} exists; refusing to overwrite it (export never replaces a file: remove it, or give another --out)", show(out)))
        }
        _ => Error::Io {
            context: format!("cannot write {}", show(out)),
            source: e,
        },
    })?;
    drop(gz);
    sync_dir(parent)
}

/// `--out` must name a file outside the backup directory and the mirrors: there
/// a plain `.db.gz` with a full backup's metadata member could be taken for a
/// restore point (and be counted or deleted by retention). `-` is not standard
/// output here: the export is published atomically under a name, never streamed.
fn refuse_backup_dirs(settings: &Settings, dir: &BackupDir, out: &Path) -> Result<()> {
    if out.as_os_str() == "-" {
        return Err(Error::usage(
            "--out -: export writes a file, not standard output; give a file name (--out copy.db.gz, then `zcat copy.db.gz`)",
        ));
    }
    let parent = crate::store::atomic::parent_or_dot(out);
    let Ok(parent) = fs::canonicalize(parent) else {
        return Ok(()); // a missing directory is reported by the caller
    };
    let dirs = std::iter::once(dir.path()).chain(settings.mirror_dirs.iter().map(PathBuf::as_path));
    for backups in dirs {
        // Under any name of it (a bind mount too).
        if crate::store::same_existing_dir(backups, &parent) {
            return Err(Error::usage(format!(
                "refusing to export into {}: it is a backup directory, where the export would look like a backup; choose another directory for --out",
                show(backups)
            )));
        }
    }
    Ok(())
}

/// `entry` as the database it holds, in a temp file in `parent`, checked (a diff
/// rebuilt on its base; checksums and `integrity_check`).
fn rebuilt_and_checked(
    settings: &Settings,
    job: &JobContext,
    entry: &Entry,
    parent: &Path,
) -> Result<(TempFile, Extracted)> {
    if entry.is_failed() {
        return Err(Error::failed(format!(
            "backup {} is a failed snapshot; refusing to export it (to inspect it: zcat {} > copy.db)",
            entry.file_name,
            show(&entry.path)
        )));
    }
    if let Some(problem) = entry.problem() {
        return Err(Error::failed(format!(
            "backup {} cannot be exported: {problem}",
            entry.file_name
        )));
    }
    let total = entry.meta.as_ref().map_or(0, |m| m.db_size);
    let mut database = TempFile::create_in(parent, 0o600)?;
    let progress = Progress::bytes(total, "export", settings.progress(), job);
    let extracted = crate::diff::extract_to_file(
        entry,
        &mut database,
        &progress,
        archive::worker_threads(settings.threads, job.cpus_per_task),
        crate::diff::rebuild::Bases::Sound,
    )
    // Reading a backup never fails for lack of space: writing the copy did,
    // in the output's directory, which is named (T28 F22).
    .map_err(|error| match error {
        Error::Io { source, .. } if error.is_disk_full() => Error::Io {
            context: format!(
                "cannot write the exported copy in {}; nothing was written",
                show(parent)
            ),
            source,
        },
        other => other,
    })?;
    if let Integrity::Failed(detail) = sqlite_file::integrity_check_file(database.path())? {
        let bytes_whole = entry.records_checksum();
        let detail = sqlite_file::one_line(&detail);
        crate::store::damage::mark_unsound(
            &entry.path,
            &format!("integrity_check: {detail}"),
            bytes_whole,
        );
        let name = &entry.file_name;
        return Err(Error::failed(if bytes_whole {
            format!(
                "backup {name} fails integrity_check ({detail}), as the database did when it was backed up (its content is exactly what was backed up); nothing was written: `dbbackup restore {name} --target FILE --force` gives it back to be repaired"
            )
        } else {
            format!("backup {name} fails integrity_check ({detail}); nothing was written")
        }));
    }
    crate::store::damage::clear_checked(&entry.path);
    Ok((database, extracted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_must_not_exist_and_its_directory_must() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("copy.db.gz");
        assert_eq!(output_parent(&out).unwrap(), dir.path());
        assert_eq!(
            output_parent(Path::new("copy.db.gz")).unwrap(),
            Path::new(".")
        );
        let missing = output_parent(&dir.path().join("typo/copy.db.gz")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("does not exist; create it first"),
            "{missing}"
        );
        fs::write(&out, "kept").unwrap();
        let exists = output_parent(&out).unwrap_err();
        assert!(
            exists
                .to_string()
                .contains("exists; refusing to overwrite it"),
            "{exists}"
        );
        assert_eq!(fs::read_to_string(&out).unwrap(), "kept");
    }

    #[test]
    fn an_output_that_appeared_meanwhile_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("copy.db.gz");
        let mut gz = TempFile::create_in(dir.path(), 0o600).unwrap();
        gz.file().write_all(b"the export").unwrap();
        fs::write(&out, "another program's file").unwrap();
        let refused = publish(gz, &out, dir.path()).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("exists; refusing to overwrite it"),
            "{refused}"
        );
        assert_eq!(fs::read_to_string(&out).unwrap(), "another program's file");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn the_compressed_export_holds_the_database_and_says_its_checksum() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut database = TempFile::create_in(dir.path(), 0o600).unwrap();
        database.file().write_all(&content).unwrap();
        let mut gz = TempFile::create_in(dir.path(), 0o600).unwrap();
        let compressed = compress_into(&mut gz, &database, (6, 2), None, dir.path()).unwrap();
        let mut inflated = Vec::new();
        flate2::read::MultiGzDecoder::new(File::open(gz.path()).unwrap())
            .read_to_end(&mut inflated)
            .unwrap();
        assert!(inflated == content, "gzip -d gives the database back");
        assert_eq!(compressed.raw_bytes, content.len() as u64);
        let hex: String = sha2::Sha256::digest(&content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(compressed.checksum.to_string(), format!("sha256:{hex}"));
    }
}
