//! A backup's content read back whole, as a restore reads it: every member
//! inflated (gzip CRCs and trailers included), the content's size and SHA-256
//! against the header's, a diff rebuilt on its base. What a point must pass
//! before it is uploaded or counted as proved: its bytes matching a record or
//! a members hash say nothing of a header or trailer damaged before that.

use crate::error::{Error, Result};
use crate::store::Entry;

/// A file found damaged: which (a diff's base, or the file itself), where,
/// and why.
pub(crate) struct Damage {
    pub name: String,
    pub path: std::path::PathBuf,
    pub why: String,
}

/// Why `entry` does not read back whole, if it does not. Costs one local
/// read and inflate of the file (a diff: of its base too), no network.
pub(crate) fn problem(entry: &Entry) -> Result<Option<String>> {
    Ok(damage(entry)?.map(|d| d.why))
}

/// [`problem`], naming the damaged file: for a diff, its base may be the one.
pub(crate) fn damage(entry: &Entry) -> Result<Option<Damage>> {
    if let Err(why) = &entry.meta {
        return Ok(Some(Damage {
            name: entry.file_name.clone(),
            path: entry.path.clone(),
            why: format!("its metadata is damaged ({why})"),
        }));
    }
    // Part of an upload or a restore: a few cores, not the whole node.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let progress = crate::progress::Progress::hidden();
    let mut sink = std::io::sink();
    let read = if entry.name.diff {
        crate::diff::rebuild::rebuild(
            entry,
            &mut sink,
            &progress,
            threads,
            crate::diff::rebuild::Bases::Sound,
        )
    } else {
        crate::archive::decompress::extract(entry, &mut sink, &progress, threads)
    };
    match read {
        Ok(_) => Ok(None),
        Err(Error::Damaged { backup, name, why }) => Ok(Some(Damage {
            name,
            path: backup,
            why,
        })),
        Err(error) => Err(error),
    }
}
