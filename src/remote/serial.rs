//! One upload of a backup directory to a remote at a time: the inline uploads
//! of an array job's tasks (and a `sync` beside them) take turns.
//!
//! Interleaved, each works from its own listing: one's retention deletes the
//! base another is placing a diff on, both number their points from the same
//! highest `remote_seq`, and whichever records its outcome last (not the one
//! that uploaded the newest point) is what `check` reads. A turn is held for
//! the whole list → upload → record → retention sequence and until the outcome
//! is recorded, so the next one finds the earlier points there and numbers
//! above them. It is its own lock, never the backup-directory lock: a backup
//! never waits for an upload.
//!
//! An `fcntl` lock (`crate::lock`), never `flock`: flock is node-local on GPFS
//! and on Lustre `-o localflock`, while the tasks of an array run on many nodes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;

use super::RemoteUrl;
use crate::error::{Error, Result, show};
use crate::lock::{Backoff, try_lock, wait_lock};
use crate::slurm::array::STATE_DIR;
use crate::slurm::job::JobContext;

/// How many `remote_timeout_seconds` an upload waits for the turn: the
/// uploads before it (each a listing, an upload or two, retention) must fit.
const WAIT_FACTOR: u32 = 5;

/// Holding this is holding the turn (released when dropped); an unheld turn
/// when the backup directory does not exist or cannot be written (nothing
/// there to take turns with, or nothing to record).
#[derive(Debug)]
pub(crate) struct Turn {
    _held: Option<(File, Option<File>)>,
}

/// How long an upload with this `remote_timeout` waits for its turn.
pub(crate) fn limit(remote_timeout: Duration) -> Duration {
    remote_timeout * WAIT_FACTOR
}

/// Wait up to `limit` for the turn to upload from `backup_dir` to `url`;
/// fails naming the holder when the wait runs out or a stop is requested.
pub(crate) fn wait_turn(
    backup_dir: &Path,
    url: &RemoteUrl,
    job: &JobContext,
    limit: Duration,
) -> Result<Turn> {
    let Some(mut file) = open(backup_dir, url)? else {
        return Ok(Turn { _held: None });
    };
    let started = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    let mut announced = false;
    let waited = loop {
        match try_lock(&file) {
            Ok(()) => break None,
            Err(Errno::EAGAIN | Errno::EACCES | Errno::EINTR) => {}
            Err(errno) => return Err(cannot_lock(backup_dir, errno)),
        }
        crate::signals::stop_if_requested()?;
        let left = limit
            .saturating_sub(started.elapsed())
            .min(crate::signals::remaining().unwrap_or(Duration::MAX));
        if left.is_zero() {
            return Err(Error::failed(format!(
                "another upload from {} to {url} ({}) still runs after {} s (remote_timeout_seconds × {WAIT_FACTOR})",
                show(backup_dir),
                holder(&mut file),
                limit.as_secs()
            )));
        }
        if !announced {
            tracing::info!(
                "waiting for another upload from this backup directory to {url} ({})",
                holder(&mut file)
            );
            announced = true;
        }
        let stop = || crate::signals::stop_if_requested().is_err();
        match wait_lock(&file, left, stop) {
            Ok(handle) => break Some(handle),
            // A cycle through another lock this process waits for: back off.
            Err(Errno::EDEADLK) => std::thread::sleep(backoff.next_pause().min(left)),
            // Timed out or stopped: said above; an error `try_lock` names.
            Err(_) => {}
        }
    };
    // Who holds it, for a waiter's message; informative only.
    let line = format!("host={} pid={} job={}", job.host, job.pid, job.tag);
    // (From the start: reading the holder moved this descriptor's offset.)
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(line.as_bytes()));
    Ok(Turn {
        _held: Some((file, waited)),
    })
}

/// The turn's lock file (one per remote, beside the upload records), or
/// `None` when the backup directory is missing or not writable here.
fn open(backup_dir: &Path, url: &RemoteUrl) -> Result<Option<File>> {
    use sha2::{Digest, Sha256};
    if !backup_dir.is_dir() {
        return Ok(None);
    }
    let digest = Sha256::digest(url.to_string().as_bytes());
    let dir = backup_dir.join(STATE_DIR);
    let path = dir.join(format!(
        "upload-{}.lock",
        crate::sqlite_file::hex(&digest[..6])
    ));
    let opened = crate::store::perms::create_dir_all(&dir).and_then(|()| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o664)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
    });
    match opened {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => {
            crate::store::perms::settle_file(&file, 0o664, &path);
            Ok(Some(file))
        }
        Ok(_) => Err(Error::failed(format!(
            "lock file {} is not a regular file; remove it",
            show(&path)
        ))),
        // A sync by an account that may only read the directory: it cannot
        // record its outcome either, and says so.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            tracing::warn!(
                "cannot take the upload lock {} ({e}): an inline upload from there may run at the same time",
                show(&path)
            );
            Ok(None)
        }
        Err(e) => Err(Error::Io {
            context: format!("cannot open lock file {}", show(&path)),
            source: e,
        }),
    }
}

fn cannot_lock(backup_dir: &Path, errno: Errno) -> Error {
    match errno {
        Errno::ENOLCK | Errno::ENOSYS | Errno::EOPNOTSUPP => Error::failed(format!(
            "cannot lock {}: the filesystem does not support POSIX locks ({errno}); see docs/locking.md",
            show(&backup_dir.join(STATE_DIR))
        )),
        errno => Error::Io {
            context: format!("cannot lock {}", show(&backup_dir.join(STATE_DIR))),
            source: io::Error::from(errno),
        },
    }
}

/// What the holder wrote into the lock file, or that it is unknown.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file
        .rewind()
        .and_then(|()| file.take(256).read_to_string(&mut text));
    match text.trim() {
        "" => "held by another process".to_string(),
        line => format!("held by {}", line.replace('\n', " ")),
    }
}
