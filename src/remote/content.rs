//! A backup's content read back whole, as a restore reads it: every member
//! inflated (gzip CRCs and trailers included), the content's size and SHA-256
//! against the header's, a diff rebuilt on its base. What a point must pass
//! before it is uploaded or counted as proved: its bytes matching a record or
//! a members hash say nothing of a header or trailer damaged before that.

use crate::error::{Error, Result};
use crate::store::Entry;

/// Why `entry` does not read back whole, if it does not. Costs one local
/// read and inflate of the file (a diff: of its base too), no network.
pub(crate) fn problem(entry: &Entry) -> Result<Option<String>> {
    if let Err(why) = &entry.meta {
        return Ok(Some(format!("its metadata is damaged ({why})")));
    }
    // Part of an upload or a restore: a few cores, not the whole node.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let progress = crate::progress::Progress::hidden();
    let mut sink = std::io::sink();
    let read = if entry.name.diff {
        crate::diff::rebuild::rebuild(entry, &mut sink, &progress, threads)
    } else {
        crate::archive::decompress::extract(entry, &mut sink, &progress, threads)
    };
    match read {
        Ok(_) => Ok(None),
        Err(Error::Damaged { why, .. }) => Ok(Some(why)),
        Err(error) => Err(error),
    }
}
