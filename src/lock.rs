//! The backup-directory lock: a POSIX `fcntl` write lock on `.dbbackup.lock`.
//!
//! `fcntl` record locks, not `flock(2)`: flock is node-local on GPFS and on Lustre
//! mounted `-o localflock` (it succeeds without excluding other nodes), while fcntl
//! locks are cluster-wide on NFS, GPFS and Lustre `-o flock`. The kernel (or the NFS
//! lock manager) releases the lock when its holder dies, so a crash never leaves a
//! stuck lock; the holder's host, pid and job tag are written into the file so a
//! waiter can say whom it waits for, and so the next holder can tell that the
//! previous one died without cleaning up.
//!
//! fcntl locks belong to the process, and closing *any* descriptor of the file drops
//! them: a process takes one `DirLock` per directory and passes it by reference.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

use crate::error::{Context, Error, Result, show};
use crate::jobenv::JobContext;
use crate::signals;
use crate::store::LOCK_FILE;

const POLL: Duration = Duration::from_millis(50);

/// Holding this means holding the directory's lock; dropping it releases it.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

/// How to behave when another process holds the lock.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// Return `None` at once.
    No,
    /// Wait up to this long, then fail naming the holder.
    Upto(Duration),
}

impl DirLock {
    /// Take the lock of `dir` (which must exist). `Ok(None)`: busy and `Wait::No`.
    pub fn acquire(dir: &Path, job: &JobContext, wait: Wait) -> Result<Option<DirLock>> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            // Group-shared project directories: the lock must be usable by the group.
            .mode(0o664)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => Error::failed(format!(
                    "lock file {} is a symbolic link; refusing to use it",
                    show(&path)
                )),
                _ => Error::Io {
                    context: format!("cannot open lock file {}", show(&path)),
                    source: e,
                },
            })?;
        let started = Instant::now();
        let mut announced = false;
        loop {
            match try_lock(&file) {
                Ok(()) => break,
                Err(Errno::EAGAIN | Errno::EACCES) => {}
                Err(Errno::EINTR) => {}
                Err(errno @ (Errno::ENOLCK | Errno::ENOSYS | Errno::EOPNOTSUPP)) => {
                    return Err(Error::failed(format!(
                        "cannot lock {}: the filesystem does not support POSIX locks ({errno}); see docs/locking.md",
                        show(&path)
                    )));
                }
                Err(errno) => {
                    return Err(Error::Io {
                        context: format!("cannot lock {}", show(&path)),
                        source: io::Error::from(errno),
                    });
                }
            }
            let holder = describe_holder(&file);
            match wait {
                Wait::No => {
                    tracing::info!("backup directory is locked by {holder}; not waiting");
                    return Ok(None);
                }
                Wait::Upto(limit) if started.elapsed() >= limit => {
                    return Err(Error::failed(format!(
                        "backup directory {} is still locked by {holder} after {} s (lock_timeout_seconds)",
                        show(dir),
                        limit.as_secs()
                    )));
                }
                Wait::Upto(_) => {
                    if !announced {
                        tracing::info!("waiting for the backup-directory lock held by {holder}");
                        announced = true;
                    }
                    signals::check()?;
                    thread::sleep(POLL);
                }
            }
        }
        let mut lock = DirLock { file, path };
        lock.record_holder(job)?;
        Ok(Some(lock))
    }

    /// Write who holds the lock; say so if a previous holder died holding it.
    fn record_holder(&mut self, job: &JobContext) -> Result<()> {
        let previous = read_holder(&mut self.file);
        if !previous.is_empty() {
            tracing::warn!(
                "previous lock holder ({}) ended without releasing cleanly; its lock was freed when it died",
                previous
            );
        }
        let line = format!(
            "host={} pid={} job={} since={}\n",
            job.host,
            job.pid,
            job.tag,
            jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or(jiff::Timestamp::now())
        );
        let path = self.path.clone();
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .and_then(|()| self.file.write_all(line.as_bytes()))
            .context(|| format!("cannot write lock file {}", show(&path)))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // An empty file means "released cleanly"; the lock itself goes with the fd.
        let _ = self.file.set_len(0);
    }
}

/// One non-blocking attempt at a whole-file write lock.
pub(crate) fn try_lock(file: &File) -> std::result::Result<(), Errno> {
    let request = whole_file_lock(libc::F_WRLCK);
    fcntl(file, FcntlArg::F_SETLK(&request)).map(|_| ())
}

fn whole_file_lock(kind: libc::c_int) -> libc::flock {
    // start 0, len 0: the whole file, however long it grows.
    let mut request = libc::flock {
        l_type: 0,
        l_whence: 0,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    request.l_type = kind as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    request
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file
        .rewind()
        .and_then(|()| file.take(512).read_to_string(&mut text));
    text.trim().replace('\n', " ")
}

/// "pid 123 on host n1 (job 55_2) since ..." from the file, else from F_GETLK.
fn describe_holder(file: &File) -> String {
    let mut handle = match file.try_clone() {
        Ok(handle) => handle,
        Err(_) => return "another process".into(),
    };
    let recorded = read_holder(&mut handle);
    drop(handle);
    if !recorded.is_empty() {
        return recorded;
    }
    let mut probe = whole_file_lock(libc::F_WRLCK);
    match fcntl(file, FcntlArg::F_GETLK(&mut probe)) {
        Ok(_) if probe.l_type != libc::F_UNLCK as libc::c_short && probe.l_pid > 0 => {
            format!("pid {}", probe.l_pid)
        }
        _ => "another process".into(),
    }
}

/// Check whether any process holds a POSIX lock on part of `path` (restore uses this
/// to refuse a database in use). Returns the holder's pid (0 if unknown, e.g. on
/// another node) and whether its lock is a write lock (a writer, not a reader).
pub fn locked_by_other(file: &File, start: i64, len: i64) -> Option<(i32, bool)> {
    let mut probe = whole_file_lock(libc::F_WRLCK);
    probe.l_start = start;
    probe.l_len = len;
    match fcntl(file, FcntlArg::F_GETLK(&mut probe)) {
        Ok(_) if probe.l_type != libc::F_UNLCK as libc::c_short => {
            Some((probe.l_pid, probe.l_type == libc::F_WRLCK as libc::c_short))
        }
        _ => None,
    }
}
