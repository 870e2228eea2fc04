//! The check of a backup's bytes as they are sent: a file damaged on disk
//! after it was made (bit rot, a bad write on scratch) must never become the
//! remote's copy, where retention would count it in place of intact ones.

use xxhash_rust::xxh3::Xxh3;

use crate::store::Metadata;
use crate::store::metadata::HEADER_LEN;

/// Hashes the data members' bytes (from the end of the header up to the
/// index member) as they go by, to compare with the header's
/// `Members::xxh3` and `file_size`, recorded when the backup was written.
pub(crate) struct SentCheck {
    /// The range hashed: `[start, end)`.
    start: u64,
    end: u64,
    at: u64,
    hasher: Xxh3,
}

impl SentCheck {
    pub(crate) fn new(meta: &Metadata) -> SentCheck {
        let end = meta.members.as_ref().map_or(0, |m| m.index_at);
        SentCheck {
            start: HEADER_LEN as u64,
            end,
            at: 0,
            hasher: Xxh3::new(),
        }
    }

    pub(crate) fn update(&mut self, chunk: &[u8]) {
        let from = self.at;
        self.at += chunk.len() as u64;
        let (lo, hi) = (from.max(self.start), self.at.min(self.end));
        if lo < hi {
            self.hasher
                .update(&chunk[(lo - from) as usize..(hi - from) as usize]);
        }
    }

    /// Why the bytes sent are not the backup as written, if they are not.
    /// A backup made before its members were recorded is taken as it is.
    pub(crate) fn problem(&self, meta: &Metadata) -> Option<String> {
        if let Some(recorded) = meta.file_size
            && recorded != self.at
        {
            return Some(format!(
                "it is {} bytes, its header says {recorded}",
                self.at
            ));
        }
        let members = meta.members.as_ref()?;
        if self.at < members.index_at {
            return Some(format!(
                "it ends at byte {}, before its index member ({})",
                self.at, members.index_at
            ));
        }
        let hash = crate::archive::compress::format_xxh3(self.hasher.digest128());
        (hash != members.xxh3).then(|| {
            format!(
                "its compressed data is not what was written ({hash}, its header records {})",
                members.xxh3
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_only_the_data_members_in_any_chunking() {
        let file: Vec<u8> = (0..HEADER_LEN as u32 + 5000).map(|i| i as u8).collect();
        let index_at = HEADER_LEN as u64 + 3000;
        let data = &file[HEADER_LEN..HEADER_LEN + 3000];
        let mut meta = crate::store::ownership::tests::entry(
            "20250101_000000",
            "/a.db",
            crate::store::Kind::Manual,
            false,
        )
        .meta
        .unwrap();
        meta.file_size = Some(file.len() as u64);
        meta.members = Some(crate::store::metadata::Members {
            count: 1,
            index_at,
            xxh3: crate::archive::compress::format_xxh3(xxhash_rust::xxh3::xxh3_128(data)),
        });
        for chunk in [1, 7, 4096, 1 << 20] {
            let mut check = SentCheck::new(&meta);
            file.chunks(chunk).for_each(|c| check.update(c));
            assert_eq!(check.problem(&meta), None, "chunks of {chunk}");
        }
        let mut flipped = file.clone();
        flipped[HEADER_LEN + 10] ^= 0xff;
        let mut check = SentCheck::new(&meta);
        check.update(&flipped);
        assert!(
            check
                .problem(&meta)
                .unwrap()
                .contains("not what was written")
        );
    }
}
