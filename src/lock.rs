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
use crate::signals;
use crate::slurm::job::JobContext;
use crate::store::{LOCK_FILE, PAGES_DIR, perms};

/// Read and written by every member of a shared project's group.
const LOCK_MODE: u32 = 0o664;

/// Waits between attempts grow from FIRST_WAIT to MAX_WAIT: on NFS, Lustre and GPFS
/// every attempt is a round trip to the lock manager, so a thousand waiting tasks
/// must not poll in step.
const FIRST_WAIT: Duration = Duration::from_millis(10);
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Exponential backoff with jitter: each pause is random in [d/2, d], d doubling
/// up to a cap, so waiters spread out instead of retrying together.
pub(crate) struct Backoff {
    next: Duration,
    cap: Duration,
    state: u64,
}

impl Backoff {
    pub(crate) fn new(first: Duration, cap: Duration) -> Backoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // Any per-process seed will do: this spreads retries, it is not security.
        let state = (nanos ^ (u64::from(std::process::id()) << 32)) | 1;
        Backoff {
            next: first,
            cap,
            state,
        }
    }

    /// The next pause (advancing the schedule).
    pub(crate) fn next_pause(&mut self) -> Duration {
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let fraction = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        let pause = self.next.mul_f64(0.5 + fraction / 2.0);
        self.next = (self.next * 2).min(self.cap);
        pause
    }
}

/// Holding this means holding the directory's lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
    path: PathBuf,
    /// The descriptor a blocking wait took the lock through, kept open with it.
    _waited: Option<File>,
}

/// How to behave when another process holds the lock.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// Return `None` at once.
    No,
    /// Wait up to this long, then fail naming the holder.
    Upto(Duration),
}

impl DirLock {
    /// Take the lock of `dir` (which must exist), waiting up to `limit` for
    /// another holder (`lock_timeout_seconds`), then failing naming it.
    pub(crate) fn acquire(dir: &Path, job: &JobContext, limit: Duration) -> Result<DirLock> {
        // `take` gives up without an error only for `Wait::No` or `done`.
        Self::take(dir, job, Wait::Upto(limit), || false)?
            .ok_or_else(|| Error::failed(format!("lock of {} not acquired", show(dir))))
    }

    /// One attempt: `Ok(None)` when another process holds the lock (`auto`,
    /// `periodic`, the time-limit backup do not wait).
    pub(crate) fn try_acquire(dir: &Path, job: &JobContext) -> Result<Option<DirLock>> {
        Self::take(dir, job, Wait::No, || false)
    }

    /// `acquire`, but while waiting give up (`Ok(None)`) as soon as `done()` says
    /// the lock is no longer needed (pre-job: another task recorded the restore
    /// point meanwhile).
    pub(crate) fn acquire_unless(
        dir: &Path,
        job: &JobContext,
        limit: Duration,
        done: impl Fn() -> bool,
    ) -> Result<Option<DirLock>> {
        Self::take(dir, job, Wait::Upto(limit), done)
    }

    fn take(
        dir: &Path,
        job: &JobContext,
        wait: Wait,
        done: impl Fn() -> bool,
    ) -> Result<Option<DirLock>> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            // Group-shared project directories: the lock must be usable by the
            // group (granted whatever the umask under `shared: group`).
            .mode(LOCK_MODE)
            // O_NONBLOCK: a FIFO planted as the lock file opens at once (and is
            // refused below); it changes nothing for a regular file.
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => Error::failed(format!(
                    "lock file {} is a symbolic link; refusing to use it",
                    show(&path)
                )),
                // Made by another member with a mode that excludes us: say whose
                // it is and the fix, at once (never a wait, never a skip).
                // (An I/O error still: a restore into a new file goes on without
                // the lock of a backup directory it may not write.)
                _ => Error::Io {
                    context: perms::excluded(
                        &[("backup directory", dir), ("lock file", &path)],
                        dir,
                        &e,
                    )
                    .or_else(|| crate::error::not_writable("backup directory", dir, &e))
                    .unwrap_or_else(|| format!("cannot open lock file {}", show(&path))),
                    source: e,
                },
            })?;
        refuse_non_regular(&file, &path)?;
        perms::settle_file(&file, LOCK_MODE, &path);
        let started = Instant::now();
        let mut announced = false;
        let mut backoff = Backoff::new(FIRST_WAIT, MAX_WAIT);
        let mut waited = None;
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
                Wait::Upto(limit) => {
                    if !announced {
                        tracing::info!("waiting for the backup-directory lock held by {holder}");
                        announced = true;
                    }
                    signals::stop_if_requested()?;
                    // Never past the wait limit or a post-job deadline.
                    let left = limit
                        .saturating_sub(started.elapsed())
                        .min(signals::remaining().unwrap_or(Duration::MAX));
                    let stopped = std::cell::Cell::new(false);
                    let stop = || {
                        let now_done = done();
                        stopped.set(now_done);
                        now_done || signals::stop_if_requested().is_err()
                    };
                    match wait_lock(&file, left, stop) {
                        Ok(handle) => {
                            waited = Some(handle);
                            break;
                        }
                        Err(_) if stopped.get() => return Ok(None),
                        // Deadlock detected (two processes each waiting for the
                        // other's directory): back off with jitter, then retry.
                        Err(Errno::EDEADLK) => thread::sleep(backoff.next_pause().min(left)),
                        // Timed out, stopped, or an error try_lock will name.
                        Err(_) => {}
                    }
                }
            }
        }
        let mut lock = DirLock {
            file,
            path,
            _waited: waited,
        };
        lock.record_holder(job)?;
        Ok(Some(lock))
    }

    /// Write who holds the lock; say so if a previous holder died holding it,
    /// and keep its record: `check` says that run did not finish until the
    /// database's next attempt, whatever takes the lock meanwhile (T27b F1).
    fn record_holder(&mut self, job: &JobContext) -> Result<()> {
        let previous = read_holder(&mut self.file);
        if !previous.is_empty() {
            tracing::warn!(
                "previous lock holder ({}) ended without releasing cleanly; its lock was freed when it died",
                shown(&previous)
            );
            if let Some(dir) = self.path.parent() {
                keep_died(dir, &previous);
            }
        }
        let record = HolderRecord {
            host: job.host.clone(),
            pid: job.pid,
            job: job.tag.clone(),
            since: jiff::Timestamp::now()
                // Truncated: never a moment after the line that shows it.
                .round(
                    jiff::TimestampRound::new()
                        .smallest(jiff::Unit::Second)
                        .mode(jiff::RoundMode::Trunc),
                )
                .unwrap_or(jiff::Timestamp::now())
                .to_string(),
        };
        let line = record.to_line();
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

impl DirLock {
    /// Remove the temp files killed runs left in the directory (and its page
    /// hashes): only the lock's holder knows that no other run is writing them.
    pub(crate) fn remove_stale_temps(&self) -> usize {
        let Some(dir) = self.path.parent() else {
            return 0;
        };
        crate::store::remove_temps_in(dir) + crate::store::remove_temps_in(&dir.join(PAGES_DIR))
    }
}

/// One non-blocking attempt at a whole-file write lock.
pub(crate) fn try_lock(file: &File) -> std::result::Result<(), Errno> {
    let request = whole_file_lock(libc::F_WRLCK);
    fcntl(file, FcntlArg::F_SETLK(&request)).map(|_| ())
}

/// Wait for a whole-file write lock with one blocking `F_SETLKW`, in a helper
/// thread so the wait is bounded by `limit` and ends early when `stop()` says so
/// (checked with exponential backoff and jitter, 10 ms growing to 1 s): the
/// kernel or the NFS lock manager
/// queues the waiters, and nothing polls the lock. Returns the duplicate
/// descriptor the lock was taken through: keep it open as long as the lock is
/// held (closing any descriptor of a file drops the process's locks on it).
/// `EAGAIN`: timed out; `EINTR`: stopped. A lock granted after we gave up is
/// released when the thread drops its descriptor.
pub(crate) fn wait_lock(
    file: &File,
    limit: Duration,
    stop: impl Fn() -> bool,
) -> std::result::Result<File, Errno> {
    let handle = file
        .try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let (sender, receiver) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let request = whole_file_lock(libc::F_WRLCK);
        let result = loop {
            match fcntl(&handle, FcntlArg::F_SETLKW(&request)) {
                Err(Errno::EINTR) => continue,
                other => break other.map(|_| ()),
            }
        };
        let _ = sender.send((result, handle));
    });
    let started = Instant::now();
    let mut backoff = Backoff::new(FIRST_WAIT, MAX_WAIT);
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(Errno::EAGAIN);
        }
        if stop() {
            return Err(Errno::EINTR);
        }
        match receiver.recv_timeout(left.min(backoff.next_pause())) {
            Ok((result, handle)) => return result.map(|()| handle),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err(Errno::EIO),
        }
    }
}

/// One attempt, then `wait_lock` (the summary log's append lock). `EDEADLK`
/// (the kernel sees a cycle through another lock this process waits for, e.g. a
/// directory-lock wait pre-job stopped caring about) is retried after a backoff.
pub(crate) fn lock_waiting(
    file: &File,
    limit: Duration,
) -> std::result::Result<Option<File>, Errno> {
    let started = Instant::now();
    let mut backoff = Backoff::new(FIRST_WAIT, MAX_WAIT);
    loop {
        match try_lock(file) {
            Ok(()) => return Ok(None),
            Err(Errno::EAGAIN | Errno::EACCES) => {}
            Err(errno) => return Err(errno),
        }
        let left = limit.saturating_sub(started.elapsed());
        match wait_lock(file, left, || false) {
            Err(Errno::EDEADLK) if !left.is_zero() => {
                thread::sleep(backoff.next_pause().min(left));
            }
            other => return other.map(Some),
        }
    }
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

/// Who holds the lock, as its holder wrote it into the lock file: one JSON
/// line. Purely informative: the lock itself is the `fcntl` lock, so a reader
/// that cannot parse the line (an older dbbackup reading a newer one, another
/// tool) still knows whether the lock is held (docs/locking.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct HolderRecord {
    host: String,
    pid: u32,
    job: String,
    since: String,
}

impl HolderRecord {
    fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }

    /// The JSON line, or the `host=… pid=… job=… since=…` line dbbackup wrote
    /// before (an older binary on another node of the same cluster).
    fn parse(text: &str) -> Option<HolderRecord> {
        let text = text.trim();
        if let Ok(record) = serde_json::from_str(text) {
            return Some(record);
        }
        let field = |key: &str| {
            text.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(HolderRecord {
            host: field("host")?,
            pid: field("pid")?.parse().ok()?,
            job: field("job").unwrap_or_default(),
            since: field("since").unwrap_or_default(),
        })
    }
}

/// How the holder is named in messages and `lock status`, whichever format it
/// was written in.
impl std::fmt::Display for HolderRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host={} pid={} job={} since={}",
            self.host, self.pid, self.job, self.since
        )
    }
}

/// The lock file's text, trimmed (empty: released cleanly or never held).
fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file
        .rewind()
        .and_then(|()| file.take(512).read_to_string(&mut text));
    text.trim().to_string()
}

/// A holder's text as messages show it: the record when it parses, else the
/// text itself on one line (another tool wrote it).
fn shown(text: &str) -> String {
    HolderRecord::parse(text).map_or_else(|| text.replace('\n', " "), |r| r.to_string())
}

/// "pid 123 on host n1 (job 55_2) since ..." from the file, else from F_GETLK.
fn describe_holder(file: &File) -> String {
    let Ok(mut handle) = file.try_clone() else {
        return "another process".into();
    };
    let recorded = read_holder(&mut handle);
    drop(handle);
    if !recorded.is_empty() {
        return shown(&recorded);
    }
    let mut probe = whole_file_lock(libc::F_WRLCK);
    match fcntl(file, FcntlArg::F_GETLK(&mut probe)) {
        Ok(_) if probe.l_type != libc::F_UNLCK as libc::c_short && probe.l_pid > 0 => {
            format!("pid {}", probe.l_pid)
        }
        _ => "another process".into(),
    }
}

/// Who holds the lock of `dir`, for `dbbackup lock status`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Holder {
    /// Whether any process holds the lock now (`F_GETLK`).
    pub held: bool,
    /// What the holder recorded, shown as `host=… pid=… job=… since=…` (the
    /// text itself when it is in neither of dbbackup's formats), if anything.
    pub recorded: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub job: Option<String>,
    pub since: Option<String>,
    /// On this host: whether that pid is alive. `None` on another host.
    pub alive: Option<bool>,
}

/// A lock file must be a regular file: anything else was planted or is broken.
fn refuse_non_regular(file: &File, path: &Path) -> Result<()> {
    if file.metadata().is_ok_and(|m| m.is_file()) {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "lock file {} is not a regular file; remove it",
            show(path)
        )))
    }
}

/// The record of the last holder that died holding the lock, kept when the
/// next run took it (beside the attempt records).
const DIED_HOLDING: &str = ".dbbackup-state/died-holding-lock";
/// The line after the record: when the next run took the lock, by its clock
/// (the clock attempts are recorded by; a file's mtime is the file server's).
const TAKEN: &str = "taken=";

/// Keep the dead holder's record `previous`, best effort (shared-directory
/// permissions, replaced atomically: never written through a symlink).
fn keep_died(dir: &Path, previous: &str) {
    let state = dir.join(DIED_HOLDING);
    let Some(parent) = state.parent() else { return };
    let text = format!("{previous}\n{TAKEN}{}\n", jiff::Timestamp::now());
    if perms::create_dir_all(parent).is_ok() {
        let _ = crate::store::atomic::replace_file(&state, 0o664, text.as_bytes());
    }
}

/// What the last run that died holding `dir`'s lock recorded (shown as `lock
/// status` shows a holder), and when the next run took the lock: after that
/// run died, before anything the next one did.
pub(crate) fn died_holding(dir: &Path) -> Option<(String, jiff::Timestamp)> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(dir.join(DIED_HOLDING))
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    Read::take(&mut file, 4096).read_to_string(&mut text).ok()?;
    let (record, taken) = text.trim().rsplit_once('\n')?;
    let taken = taken.strip_prefix(TAKEN)?.parse().ok()?;
    let record = record.trim();
    (!record.is_empty()).then(|| (shown(record), taken))
}

/// Inspect the lock without taking it. A directory without a lock file is unlocked.
pub(crate) fn holder(dir: &Path, this_host: &str) -> Result<Holder> {
    let path = dir.join(LOCK_FILE);
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(file) => {
            refuse_non_regular(&file, &path)?;
            Some(file)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context(|| format!("cannot open lock file {}", show(&path))),
    };
    let Some(file) = file.as_mut() else {
        return Ok(Holder {
            held: false,
            recorded: None,
            host: None,
            pid: None,
            job: None,
            since: None,
            alive: None,
        });
    };
    // F_GETLK with a read-lock probe works on a read-only descriptor.
    let mut probe = whole_file_lock(libc::F_RDLCK);
    let held = fcntl(&*file, FcntlArg::F_GETLK(&mut probe))
        .is_ok_and(|_| probe.l_type != libc::F_UNLCK as libc::c_short);
    let text = read_holder(file);
    let record = HolderRecord::parse(&text);
    let recorded = Some(shown(&text)).filter(|r| !r.is_empty());
    // kill(pid, 0): EPERM means it exists but belongs to someone else.
    let exists = |pid: u32| {
        matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None),
            Ok(()) | Err(Errno::EPERM)
        )
    };
    // Nothing (readable) recorded: the kernel still names the holder, as the
    // lock's own waiters say ("still locked by pid N"). A process of this host
    // holding a lock is alive (the lock dies with it): a pid not found here
    // (or 0) is another host's, on a shared filesystem.
    let kernel_pid = u32::try_from(probe.l_pid)
        .ok()
        .filter(|&pid| held && pid > 0 && exists(pid));
    let (host, pid) = match &record {
        Some(r) => (Some(r.host.clone()), Some(r.pid)),
        None if kernel_pid.is_some() => (Some(this_host.to_string()), kernel_pid),
        None => (None, None),
    };
    let nonempty = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let alive = match (&host, pid) {
        (Some(host), Some(pid)) if host == this_host => Some(exists(pid)),
        _ => None,
    };
    Ok(Holder {
        held,
        host,
        pid,
        job: record.as_ref().and_then(|r| nonempty(&r.job)),
        since: record.as_ref().and_then(|r| nonempty(&r.since)),
        alive,
        recorded,
    })
}

/// Check whether any process holds a POSIX lock on part of `path` (restore uses this
/// to refuse a database in use). Returns the holder's pid (0 if unknown, e.g. on
/// another node) and whether its lock is a write lock (a writer, not a reader).
pub(crate) fn locked_by_other(file: &File, start: i64, len: i64) -> Option<(i32, bool)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(host: &str) -> JobContext {
        JobContext::from_lookup(
            |name| (name == "SLURM_JOB_ID").then(|| "55".to_string()),
            host.into(),
        )
    }

    #[test]
    fn the_holder_writes_one_json_line_and_is_read_back_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DirLock::try_acquire(dir.path(), &job("n1"))
            .unwrap()
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["host"], "n1");
        assert_eq!(json["pid"], std::process::id());
        assert_eq!(json["job"], "55");
        assert!(
            text.ends_with('\n') && text.lines().count() == 1,
            "{text:?}"
        );
        // (`held` is F_GETLK's answer, which never names this process's own lock.)
        let held = holder(dir.path(), "n1").unwrap();
        assert_eq!(held.host.as_deref(), Some("n1"));
        assert_eq!(held.pid, Some(std::process::id()));
        assert_eq!(held.job.as_deref(), Some("55"));
        assert_eq!(held.since, json["since"].as_str().map(str::to_string));
        assert_eq!(held.alive, Some(true));
        // Messages name it as they always did.
        let since = json["since"].as_str().unwrap();
        assert_eq!(
            held.recorded.unwrap(),
            format!("host=n1 pid={} job=55 since={since}", std::process::id())
        );
        drop(lock);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            ""
        );
    }

    #[test]
    fn a_line_an_older_dbbackup_wrote_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let line = "host=n7 pid=4242 job=5100_3 since=2026-01-01T00:00:00Z";
        std::fs::write(dir.path().join(LOCK_FILE), format!("{line}\n")).unwrap();
        let old = holder(dir.path(), "elsewhere").unwrap();
        assert!(!old.held);
        assert_eq!(old.host.as_deref(), Some("n7"));
        assert_eq!(old.pid, Some(4242));
        assert_eq!(old.job.as_deref(), Some("5100_3"));
        assert_eq!(old.since.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(old.recorded.as_deref(), Some(line));
        let record = HolderRecord::parse(line).unwrap();
        assert_eq!(HolderRecord::parse(&record.to_line()), Some(record));
        // Another tool's text is shown as it is, and names no host or pid.
        std::fs::write(dir.path().join(LOCK_FILE), "locked by\nmy script\n").unwrap();
        let other = holder(dir.path(), "elsewhere").unwrap();
        assert_eq!(other.recorded.as_deref(), Some("locked by my script"));
        assert_eq!((other.host, other.pid), (None, None));
    }
}
