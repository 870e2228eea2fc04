//! Parallel gzip: the producer (the SQLite reader) fills fixed-size blocks, worker
//! threads compress each into its own gzip member with libdeflate, and a writer
//! puts the members out in order. Several members make one standard gzip file
//! (`gzip -d`, `zcat` and Python read them all). A fixed pool of block buffers
//! bounds memory whatever the database size.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use libdeflater::{CompressionLvl, Compressor};
use sha2::{Digest, Sha256};

use super::members;
use crate::error::{Error, Result};
use crate::signals;
use crate::store::Checksum;
use crate::store::metadata::Members;

pub(crate) use crate::store::metadata::BLOCK_SIZE;

/// What was written.
#[derive(Debug, Clone)]
pub(crate) struct Compressed {
    pub raw_bytes: u64,
    /// `sha256:<hex>` of the uncompressed stream.
    pub checksum: Checksum,
    /// Compressed length of each member, in order.
    pub member_lengths: Vec<u32>,
    /// XXH3-128 of all members' compressed bytes.
    pub members_xxh3: u128,
}

impl Compressed {
    /// Append the member index after the members, which start at byte
    /// `data_start` of the file; what the metadata records about them.
    pub(crate) fn write_index(
        &self,
        out: &mut impl Write,
        data_start: u64,
    ) -> std::io::Result<Members> {
        out.write_all(&members::encode(&self.member_lengths))?;
        let total: u64 = self.member_lengths.iter().map(|&l| u64::from(l)).sum();
        Ok(Members {
            count: self.member_lengths.len() as u64,
            index_at: data_start + total,
            xxh3: format_xxh3(self.members_xxh3),
        })
    }
}

/// How `Members::xxh3` is written.
pub(crate) fn format_xxh3(hash: u128) -> String {
    format!("xxh3:{hash:032x}")
}

type Block = (usize, Vec<u8>);
type Done = (usize, Vec<u8>, Vec<u8>);

/// Compress what `produce` feeds to its sink into `out`, using `threads` workers.
/// Returns `produce`'s own result with the totals.
pub(crate) fn compress_parallel<W, R>(
    out: &mut W,
    level: u32,
    threads: usize,
    produce: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<R>,
) -> Result<(R, Compressed)>
where
    W: Write + Send,
{
    let (threads, pool_size) = super::pipeline(threads);
    let level = CompressionLvl::new(level as i32)
        .map_err(|_| Error::usage(format!("invalid compression level {level}")))?;
    let (pool_tx, pool_rx) = mpsc::sync_channel::<Vec<u8>>(pool_size);
    for _ in 0..pool_size {
        let _ = pool_tx.send(Vec::with_capacity(BLOCK_SIZE));
    }
    let (work_tx, work_rx) = mpsc::sync_channel::<Block>(threads);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, done_rx) = mpsc::sync_channel::<Done>(pool_size);

    thread::scope(|scope| {
        for _ in 0..threads {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || compress_worker(&work_rx, &done_tx, level));
        }
        // Only workers may keep the work queue alive, so a dead pipeline unblocks the producer.
        drop(work_rx);
        drop(done_tx);
        let writer = scope.spawn(move || write_in_order(out, done_rx, pool_tx));

        let mut producer = Producer {
            pool: pool_rx,
            work: work_tx,
            current: None,
            next_index: 0,
            hasher: Sha256::new(),
            raw_bytes: 0,
        };
        let produced =
            produce(&mut |bytes| producer.push(bytes)).and_then(|r| producer.finish().map(|()| r));
        let hasher = producer.hasher.clone();
        let raw_bytes = producer.raw_bytes;
        drop(producer);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(Error::failed("compression writer panicked")));
        // The writer's error (a full disk, say) is the real cause of a stalled producer.
        let (member_lengths, members_xxh3) = written?;
        let result = produced?;
        Ok((
            result,
            Compressed {
                raw_bytes,
                checksum: Checksum::finish(hasher),
                member_lengths,
                members_xxh3,
            },
        ))
    })
}

struct Producer {
    pool: Receiver<Vec<u8>>,
    work: SyncSender<Block>,
    current: Option<Vec<u8>>,
    next_index: usize,
    hasher: Sha256,
    raw_bytes: u64,
}

impl Producer {
    fn push(&mut self, mut bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.raw_bytes += bytes.len() as u64;
        while !bytes.is_empty() {
            if self.current.is_none() {
                self.current = Some(self.take_buffer()?);
            }
            let block = self.current.as_mut().expect("filled above");
            let room = BLOCK_SIZE - block.len();
            let take = room.min(bytes.len());
            block.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if block.len() == BLOCK_SIZE {
                self.send_current()?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.current.as_ref().is_some_and(|b| !b.is_empty()) {
            self.send_current()?;
        }
        Ok(())
    }

    /// Wait for a free buffer, staying responsive to signals.
    fn take_buffer(&mut self) -> Result<Vec<u8>> {
        loop {
            signals::stop_if_requested()?;
            match self.pool.recv_timeout(Duration::from_millis(100)) {
                Ok(mut buffer) => {
                    buffer.clear();
                    return Ok(buffer);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(stopped()),
            }
        }
    }

    fn send_current(&mut self) -> Result<()> {
        let block = self.current.take().unwrap_or_default();
        self.work
            .send((self.next_index, block))
            .map_err(|_| stopped())?;
        self.next_index += 1;
        Ok(())
    }
}

fn stopped() -> Error {
    Error::failed("compression stopped")
}

fn compress_worker(work: &Mutex<Receiver<Block>>, done: &SyncSender<Done>, level: CompressionLvl) {
    let mut compressor = Compressor::new(level);
    loop {
        let next = match work.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok((index, raw)) = next else { return };
        let mut member = vec![0u8; compressor.gzip_compress_bound(raw.len())];
        let Ok(len) = compressor.gzip_compress(&raw, &mut member) else {
            return;
        };
        member.truncate(len);
        if done.send((index, raw, member)).is_err() {
            return;
        }
    }
}

/// Write members in block order; hand each block buffer back to the pool only
/// once its member is written, which bounds the blocks in flight. Returns each
/// member's length and the XXH3-128 of them all.
fn write_in_order<W: Write>(
    out: &mut W,
    done: Receiver<Done>,
    pool: SyncSender<Vec<u8>>,
) -> Result<(Vec<u32>, u128)> {
    let mut pending: BTreeMap<usize, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
    let mut next = 0usize;
    let mut lengths = Vec::new();
    let mut xxh3 = xxhash_rust::xxh3::Xxh3::new();
    for (index, raw, member) in done {
        pending.insert(index, (raw, member));
        while let Some((raw, member)) = pending.remove(&next) {
            out.write_all(&member).map_err(|source| Error::Io {
                context: "cannot write backup".into(),
                source,
            })?;
            lengths.push(u32::try_from(member.len()).map_err(|_| stopped())?);
            xxh3.update(&member);
            let _ = pool.send(raw);
            next += 1;
        }
    }
    if !pending.is_empty() {
        return Err(stopped());
    }
    Ok((lengths, xxh3.digest128()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn round_trip(data: &[u8], threads: usize, piece: usize) {
        let mut out = Vec::new();
        let ((), summary) = compress_parallel(&mut out, 6, threads, |sink| {
            for chunk in data.chunks(piece.max(1)) {
                sink(chunk)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(summary.raw_bytes, data.len() as u64);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(summary.checksum, Checksum::of(data));
    }

    #[test]
    fn many_blocks_come_back_in_order() {
        let data: Vec<u8> = (0..(BLOCK_SIZE * 5 + 1234))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        round_trip(&data, 3, 4096);
        round_trip(&data, 1, 1 << 21);
    }

    #[test]
    fn small_and_empty_inputs() {
        round_trip(b"x", 2, 1);
        // No data, no members: a backup's metadata member is written separately.
        let mut out = Vec::new();
        let ((), summary) = compress_parallel(&mut out, 6, 2, |_| Ok(())).unwrap();
        assert!(out.is_empty());
        assert_eq!(summary.raw_bytes, 0);
    }

    #[test]
    fn a_failing_writer_stops_the_producer_with_its_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(nix::libc::ENOSPC))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let data = vec![1u8; BLOCK_SIZE * 20];
        let error = compress_parallel(&mut Full, 6, 2, |sink| {
            for chunk in data.chunks(4096) {
                sink(chunk)?;
            }
            Ok(())
        })
        .unwrap_err();
        assert!(error.is_disk_full(), "{error}");
    }
}
