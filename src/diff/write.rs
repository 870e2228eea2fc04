//! Writing a differential backup's payload while the snapshot streams: each page
//! is hashed and compared with the base's page hashes; changed and new pages go to
//! the compressor as records, and the SHA-256 of the whole database content is
//! computed on the way (it is what the diff represents and what restore checks).

use std::io::{self, Write};

use sha2::{Digest, Sha256};

use super::pagehash::{self, HashReader};
use super::{HEADER_LEN, MAGIC};
use crate::error::{Error, Result};
use crate::store::Checksum;

/// Why a diff was given up for a full backup.
pub(crate) const TOO_LARGE: &str = "the diff grew past half the size of its base";

/// The payload of one diff, fed page by page, compared with the base's page
/// hashes read from its sidecar in step (never a table in memory).
pub(crate) struct DiffStream<R = std::io::BufReader<std::fs::File>> {
    base: Option<HashReader<R>>,
    page_size: u32,
    pgno: u64,
    page_count: u64,
    changed: u64,
    content: Sha256,
    content_bytes: u64,
    /// Set when the stream stopped because a diff cannot describe this snapshot
    /// (a full backup is made instead).
    pub abandoned: Option<String>,
}

/// What a finished diff holds.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub page_size: u32,
    pub page_count: u64,
    pub changed_pages: u64,
    /// `sha256:` of the complete database content.
    pub checksum: Checksum,
    pub db_size: u64,
}

impl<R: std::io::Read> DiffStream<R> {
    pub(crate) fn new(base: HashReader<R>) -> Self {
        DiffStream {
            page_size: base.page_size,
            base: Some(base),
            pgno: 0,
            page_count: 0,
            changed: 0,
            content: Sha256::new(),
            content_bytes: 0,
            abandoned: None,
        }
    }

    fn abandon(&mut self, why: String) -> Error {
        let error = Error::failed(format!("diff abandoned: {why}"));
        self.abandoned = Some(why);
        error
    }

    /// The next page of the snapshot (page 1 first).
    pub(crate) fn page(
        &mut self,
        page: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.pgno += 1;
        self.content.update(page);
        self.content_bytes += page.len() as u64;
        if page.len() != self.page_size as usize {
            return Err(self.abandon(format!(
                "the page size is {} bytes, the base's {}",
                page.len(),
                self.page_size
            )));
        }
        if self.pgno == 1 {
            // The page count in the header of this same snapshot, valid when the
            // "version-valid-for" number equals the change counter.
            let count = u32::from_be_bytes([page[28], page[29], page[30], page[31]]);
            if page.len() < 100 || page[92..96] != page[24..28] || count == 0 {
                return Err(self.abandon("the database header holds no valid page count".into()));
            }
            self.page_count = u64::from(count);
            let mut header = [0u8; HEADER_LEN];
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&self.page_size.to_be_bytes());
            header[12..16].copy_from_slice(&count.to_be_bytes());
            sink(&header)?;
        }
        if self.pgno > self.page_count {
            return Err(self.abandon(format!(
                "the snapshot has more pages than its header's {}",
                self.page_count
            )));
        }
        let known = match self.base.as_mut().map(HashReader::next_hash) {
            Some(Ok(known)) => known,
            Some(Err(why)) => return Err(self.abandon(format!("its page hashes {why}"))),
            None => None,
        };
        if known != Some(pagehash::hash(page)) {
            sink(&(self.pgno as u32).to_be_bytes())?;
            sink(page)?;
            self.changed += 1;
        }
        Ok(())
    }

    /// The diff's totals, once the base's page hashes are known to be the
    /// sealed ones (read to their end: a diff made against hashes that changed
    /// underneath is not kept).
    pub(crate) fn finish(&mut self) -> Result<Summary> {
        if self.pgno == 0 || self.pgno != self.page_count {
            return Err(self.abandon(format!(
                "the snapshot has {} pages, its header says {}",
                self.pgno, self.page_count
            )));
        }
        if let Some(Err(why)) = self.base.take().map(HashReader::finish) {
            return Err(self.abandon(format!("the base's page hashes changed: {why}")));
        }
        Ok(Summary {
            page_size: self.page_size,
            page_count: self.page_count,
            changed_pages: self.changed,
            checksum: Checksum::finish(self.content.clone()),
            db_size: self.content_bytes,
        })
    }
}

/// A writer that refuses to grow past `limit` bytes: a diff larger than half
/// its base is not worth keeping (a full backup is made).
pub(crate) struct Limited<W> {
    pub inner: W,
    pub written: u64,
    pub limit: u64,
    /// Why writing stopped, when it did. The compressor's writer thread borrows
    /// this value only until `compress_parallel` returns; the caller reads it
    /// then, to tell a diff grown too large or a failed output (a full disk where
    /// the backup goes) from a failure of the input.
    pub stopped: Option<Stopped>,
}

/// Why a [`Limited`] writer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// Past its limit.
    TooLarge,
    /// `inner` failed a write.
    OutputFailed,
}

impl<W> Limited<W> {
    pub(crate) fn new(inner: W, limit: u64) -> Self {
        Limited {
            inner,
            written: 0,
            limit,
            stopped: None,
        }
    }
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.written + bytes.len() as u64 > self.limit {
            self.stopped = Some(Stopped::TooLarge);
            return Err(io::Error::other(TOO_LARGE));
        }
        let n = self.inner.write(bytes).inspect_err(|_| {
            self.stopped = Some(Stopped::OutputFailed);
        })?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::pagehash::tests::sealed;

    fn page(size: usize, fill: u8, count: u32) -> Vec<u8> {
        let mut page = vec![fill; size];
        page[24..28].copy_from_slice(&[0, 0, 0, 9]);
        page[92..96].copy_from_slice(&[0, 0, 0, 9]);
        page[28..32].copy_from_slice(&count.to_be_bytes());
        page
    }

    #[test]
    fn only_changed_and_new_pages_become_records() {
        let first = page(512, 1, 2);
        let base = sealed(&[&first, &[2; 512]], &crate::store::Checksum::of(b"ab"));
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        let mut stream = DiffStream::new(
            HashReader::from_bytes(&base, &crate::store::Checksum::of(b"ab")).unwrap(),
        );
        stream.page(&page(512, 1, 3), &mut sink).unwrap();
        stream.page(&[2; 512], &mut sink).unwrap();
        stream.page(&[3; 512], &mut sink).unwrap();
        let summary = stream.finish().unwrap();
        assert_eq!((summary.page_count, summary.changed_pages), (3, 2));
        assert_eq!(summary.db_size, 3 * 512);
        assert_eq!(&out[..8], MAGIC);
        assert_eq!(out.len(), HEADER_LEN + 2 * (4 + 512));
        assert_eq!(
            &out[16..20],
            &1u32.to_be_bytes(),
            "page 1 changed (its count)"
        );
        assert_eq!(&out[20 + 512..24 + 512], &3u32.to_be_bytes());
    }

    /// Hashes whose seal fails (changed while the diff was made) are found at
    /// the end, when the database shrank as well as when it grew.
    #[test]
    fn a_diff_against_damaged_page_hashes_is_abandoned() {
        let pages = [page(512, 1, 2), vec![2; 512], vec![4; 512]];
        let mut base = sealed(
            &[&pages[0], &pages[1], &pages[2]],
            &crate::store::Checksum::of(b"ab"),
        );
        let at = base.len() - 20;
        base[at] ^= 1;
        let mut stream = DiffStream::new(
            HashReader::from_bytes(&base, &crate::store::Checksum::of(b"ab")).unwrap(),
        );
        stream.page(&page(512, 1, 2), &mut |_| Ok(())).unwrap();
        stream.page(&[2; 512], &mut |_| Ok(())).unwrap();
        assert!(stream.finish().is_err());
        assert!(
            stream
                .abandoned
                .as_deref()
                .unwrap()
                .contains("page hashes changed")
        );
    }

    #[test]
    fn another_page_size_abandons_the_diff() {
        let base = sealed(&[&[0; 1024]], &crate::store::Checksum::of(b"ab"));
        let mut stream = DiffStream::new(
            HashReader::from_bytes(&base, &crate::store::Checksum::of(b"ab")).unwrap(),
        );
        assert!(stream.page(&page(512, 1, 1), &mut |_| Ok(())).is_err());
        assert!(stream.abandoned.is_some());
    }

    #[test]
    fn a_limited_writer_says_why_it_stopped() {
        let mut out = Limited::new(Vec::new(), 4);
        out.write_all(b"abcd").unwrap();
        assert_eq!(out.stopped, None);
        assert!(out.write_all(b"e").is_err());
        assert_eq!(out.stopped, Some(Stopped::TooLarge));
        assert_eq!(out.inner, b"abcd");

        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = Limited::new(Full, 10);
        assert!(out.write_all(b"abc").is_err());
        assert_eq!(out.stopped, Some(Stopped::OutputFailed));
    }
}
