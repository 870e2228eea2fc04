//! Inflating a backup's data members on several threads, found by the member
//! index, handed back in order on the calling thread (which hashes and writes
//! them). A fixed pool of buffers bounds memory whatever the backup's size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use libdeflater::Decompressor;

use super::compress::BLOCK_SIZE;
use crate::error::Error;
use crate::signals;

/// Why inflating stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The backup's content is wrong (CRC, deflate data, sizes).
    Damaged(String),
    /// Reading the backup failed (the disk, not the content).
    Read(io::Error),
    /// What the caller's `each` returned (a write error, a signal).
    Caller(Error),
}

/// The members of one backup: where each starts and how long it is, and how
/// much data each must hold.
pub(crate) struct Layout {
    members: Vec<(u64, u32)>,
    db_size: u64,
}

impl Layout {
    /// `None` when the index cannot describe `db_size` bytes in blocks of
    /// `BLOCK_SIZE` (the caller reads the backup as one stream instead).
    pub(crate) fn new(lengths: &[u32], data_start: u64, db_size: u64) -> Option<Layout> {
        if lengths.is_empty() || lengths.len() as u64 != db_size.div_ceil(BLOCK_SIZE as u64) {
            return None;
        }
        let mut at = data_start;
        let members = lengths
            .iter()
            .map(|&length| {
                let member = (at, length);
                at += u64::from(length);
                member
            })
            .collect();
        Some(Layout { members, db_size })
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Bytes of data member `i` holds.
    fn data_len(&self, i: usize) -> usize {
        let before = i as u64 * BLOCK_SIZE as u64;
        (self.db_size - before).min(BLOCK_SIZE as u64) as usize
    }
}

type Inflated = (usize, Result<(Vec<u8>, Vec<u8>), Stop>);

/// Inflate every member of `layout` from `file` on `threads` threads and give
/// each one's data to `each`, in order, on this thread.
pub(crate) fn inflate(
    file: &File,
    layout: &Layout,
    threads: usize,
    mut each: impl FnMut(&[u8]) -> crate::error::Result<()>,
) -> Result<(), Stop> {
    let (threads, pool_size) = super::pipeline(threads);
    let count = layout.members.len();
    let (pool_tx, pool_rx) = mpsc::sync_channel::<(Vec<u8>, Vec<u8>)>(pool_size);
    for _ in 0..pool_size {
        let _ = pool_tx.send((Vec::new(), Vec::new()));
    }
    let pool_rx = Arc::new(Mutex::new(pool_rx));
    let (done_tx, done_rx) = mpsc::sync_channel::<Inflated>(pool_size);
    let next_claim = AtomicUsize::new(0);
    // A cross-thread stop flag (set once the reader is done, also early on a
    // failure: the workers stop claiming members), not a result.
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        for _ in 0..threads.min(count) {
            let pool_rx = Arc::clone(&pool_rx);
            let done_tx = done_tx.clone();
            let (next_claim, stop) = (&next_claim, &stop);
            scope.spawn(move || worker(file, layout, &pool_rx, &done_tx, next_claim, stop));
        }
        drop(done_tx);
        // Dropping the pool's sender and the results' receiver on return frees
        // every worker blocked on either.
        let result = in_order(count, done_rx, pool_tx, &mut each);
        stop.store(true, Ordering::SeqCst);
        result
    })
}

/// Take the results as they come and hand them to `each` in member order.
fn in_order(
    count: usize,
    done: Receiver<Inflated>,
    pool: SyncSender<(Vec<u8>, Vec<u8>)>,
    each: &mut impl FnMut(&[u8]) -> crate::error::Result<()>,
) -> Result<(), Stop> {
    let mut pending = BTreeMap::new();
    let mut next = 0;
    while next < count {
        signals::stop_if_requested().map_err(Stop::Caller)?;
        match done.recv_timeout(Duration::from_millis(100)) {
            Ok((index, result)) => {
                pending.insert(index, result);
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Stop::Caller(Error::failed("decompression stopped")));
            }
        }
        while let Some(result) = pending.remove(&next) {
            let (member, data) = result?;
            each(&data).map_err(Stop::Caller)?;
            let _ = pool.send((member, data));
            next += 1;
        }
    }
    Ok(())
}

/// Claim the next member only once holding a buffer pair: every claimed member
/// has its buffers, so the member the writer waits for is never starved.
fn worker(
    file: &File,
    layout: &Layout,
    pool: &Mutex<Receiver<(Vec<u8>, Vec<u8>)>>,
    done: &SyncSender<Inflated>,
    next_claim: &AtomicUsize,
    stop: &AtomicBool,
) {
    let mut decompressor = Decompressor::new();
    while !stop.load(Ordering::SeqCst) {
        let buffers = match pool.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok((mut member, mut data)) = buffers else {
            return;
        };
        let index = next_claim.fetch_add(1, Ordering::SeqCst);
        if index >= layout.members.len() {
            return;
        }
        let result = inflate_one(
            &mut decompressor,
            file,
            layout,
            index,
            &mut member,
            &mut data,
        )
        .map(|()| (member, data));
        let failed = result.is_err();
        if done.send((index, result)).is_err() || failed {
            return;
        }
    }
}

fn inflate_one(
    decompressor: &mut Decompressor,
    file: &File,
    layout: &Layout,
    index: usize,
    member: &mut Vec<u8>,
    data: &mut Vec<u8>,
) -> Result<(), Stop> {
    let (at, length) = layout.members[index];
    member.resize(length as usize, 0);
    file.read_exact_at(member, at).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Stop::Damaged(format!(
            "truncated: it ends inside member {} of {}",
            index + 1,
            layout.members.len()
        )),
        _ => Stop::Read(e),
    })?;
    let expected = layout.data_len(index);
    data.resize(expected, 0);
    // libdeflate checks the member's CRC32 and length; the buffer's size bounds
    // what it may inflate to (no gzip bomb).
    match decompressor.gzip_decompress(member, data) {
        Ok(n) if n == expected => Ok(()),
        Ok(n) => Err(Stop::Damaged(format!(
            "member {} of {} holds {n} bytes of data, {expected} expected",
            index + 1,
            layout.members.len()
        ))),
        Err(_) => Err(Stop::Damaged(format!(
            "{} (member {} of {})",
            why_not(member),
            index + 1,
            layout.members.len()
        ))),
    }
}

/// What the single-stream reader (flate2) says about a member libdeflate
/// refused, so both paths name damage in the same words.
fn why_not(member: &[u8]) -> String {
    let mut sink = Vec::new();
    match flate2::read::GzDecoder::new(member)
        .take(BLOCK_SIZE as u64 + 1)
        .read_to_end(&mut sink)
    {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => "truncated member".into(),
        Err(e) => e.to_string(),
        Ok(_) => "a member does not inflate to its recorded length".into(),
    }
}
