//! Giving backups recorded under a database's old path to the database at its new
//! path (a project directory that moved): the metadata header is rewritten with
//! the new source and `adopted_from` the old one. The data members are copied
//! unchanged, so the recorded checksum still holds; the new file is written under
//! a temp name, flushed and checked, then renamed over the old one, so a crash
//! leaves either the old file or the new one.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::metadata::{self, Metadata};
use super::{BackupDir, Entry, copy_mode, open_no_follow, sync_dir};
use crate::error::{Context, Error, Result, show};

/// Record `new_source` as `entry`'s source. Call only while holding the lock.
pub(crate) fn rewrite_source(dir: &BackupDir, entry: &Entry, new_source: &str) -> Result<()> {
    let Ok(old) = &entry.meta else {
        return Err(Error::failed(format!(
            "backup {} has no readable metadata to rewrite",
            entry.file_name
        )));
    };
    let meta = Metadata {
        source: new_source.to_string(),
        adopted_from: Some(old.adopted_from.clone().unwrap_or(old.source.clone())),
        ..old.clone()
    };
    let header = metadata::encode(&meta)
        .context(|| format!("cannot record new metadata for {}", entry.file_name))?;
    let mut source =
        open_no_follow(&entry.path).context(|| format!("cannot read {}", show(&entry.path)))?;
    // The header member has a fixed length: everything after it is the data.
    source
        .seek(SeekFrom::Start(metadata::HEADER_LEN as u64))
        .context(|| format!("cannot read {}", show(&entry.path)))?;
    let mut temp = dir.create_temp(copy_mode(&entry.path))?;
    let write = |e: io::Error| Error::Io {
        context: format!("cannot write in {}", show(dir.path())),
        source: e,
    };
    temp.file().write_all(&header).map_err(write)?;
    let copied = io::copy(&mut source, temp.file()).map_err(write)?;
    if copied + metadata::HEADER_LEN as u64 != entry.size {
        return Err(Error::failed(format!(
            "backup {} changed while being rewritten; left as it was",
            entry.file_name
        )));
    }
    temp.sync()?;
    let mut check = Vec::new();
    std::fs::File::open(temp.path())
        .and_then(|f| f.take(metadata::HEADER_LEN as u64).read_to_end(&mut check))
        .context(|| format!("cannot read back {}", show(temp.path())))?;
    if metadata::decode(&mut &check[..]).ok().as_ref() != Some(&meta) {
        return Err(Error::failed(format!(
            "rewritten metadata of {} does not read back; left as it was",
            entry.file_name
        )));
    }
    crate::signals::stop_if_requested()?;
    std::fs::rename(temp.path(), &entry.path)
        .context(|| format!("cannot replace {}", show(&entry.path)))?;
    temp.keep();
    sync_dir(dir.path())
}
