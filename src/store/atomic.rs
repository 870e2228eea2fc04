//! Files that appear whole or not at all: temp files beside their destination,
//! publication by hard link that never replaces, directory sync, and removal of
//! temp files a killed run left.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::perms;
use crate::error::{Context, Error, Result, show};

/// Temp files in a backup or mirror directory start with this; only a lock holder
/// writes them, so a lock holder may remove any it finds (left by a killed run).
pub(crate) const TEMP_PREFIX: &str = ".dbbackup-tmp-";

/// This host's name as used in temp-file names (no `-`, which separates fields).
pub(crate) fn this_host() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let host = crate::host::local_host_name();
        let host = crate::host::sanitize(&host).replace('-', "_");
        if host.is_empty() { "host".into() } else { host }
    })
    .clone()
}

/// Remove temp files in `dir` left by dead dbbackup processes of this host: for
/// directories outside the backup directory (a restore target's), where other
/// processes' temp files may be live and only ours are known to be dead.
pub(crate) fn remove_dead_temps_in(dir: &Path) -> usize {
    let prefix = format!("{TEMP_PREFIX}{}-", this_host());
    remove_temps_where(dir, |name| {
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        pid.is_some_and(is_dead)
    })
}

/// No process `pid` on this host.
pub(crate) fn is_dead(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH)
}

/// Remove every dbbackup temp file in `dir` (a lock holder's job), except this
/// process's own: a restore beside its backups (`--backup-dir .`) has its checked
/// copy there while it saves the old database.
pub(crate) fn remove_temps_in(dir: &Path) -> usize {
    let ours = format!("{TEMP_PREFIX}{}-{}-", this_host(), std::process::id());
    remove_temps_where(dir, |name| {
        name.starts_with(TEMP_PREFIX) && !name.starts_with(&ours)
    })
}

fn remove_temps_where(dir: &Path, removable: impl Fn(&str) -> bool) -> usize {
    let Ok(items) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for item in items.flatten() {
        if item.file_name().to_str().is_some_and(&removable) && fs::remove_file(item.path()).is_ok()
        {
            tracing::info!(
                "removed temp file {} left by an interrupted run",
                show(&item.path())
            );
            removed += 1;
        }
    }
    removed
}

/// Hard-link `from` to `to`, failing with `AlreadyExists` instead of replacing:
/// rename(2) would silently overwrite. Filesystems without hard links fall back to
/// a rename after an existence check (we hold the directory lock).
pub(crate) fn link_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Err(e) if matches!(e.raw_os_error(), Some(code) if code == nix::libc::EPERM || code == nix::libc::EOPNOTSUPP || code == nix::libc::EXDEV) =>
        {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        other => other,
    }
}

/// Replace (or create) `target` with `bytes` atomically: a temp file with
/// `mode` beside it (in `.` for a bare name), synced, renamed over it. Readers
/// see the old file or the new one, never part of either; the caller syncs the
/// directory (`sync_dir`) if the new name must survive a crash.
pub(crate) fn replace_file(target: &Path, mode: u32, bytes: &[u8]) -> Result<()> {
    let dir = parent_or_dot(target);
    let mut temp = TempFile::create_in(dir, mode)?;
    // The file's name, not the temp's: that is what the user asked for.
    io::Write::write_all(temp.file(), bytes)
        .context(|| format!("cannot write {}", show(target)))?;
    temp.sync()?;
    fs::rename(temp.path(), target).context(|| format!("cannot write {}", show(target)))?;
    temp.keep();
    Ok(())
}

/// The files a command that writes a set (templates, man pages, `init`)
/// created or replaced: on a failure part-way (a full disk) the created ones
/// are removed and the replaced ones put back, so that the retry is not
/// refused ("exists; use --overwrite") and no half set is left, nor a user's
/// file replaced by a template. A replaced file's old content is kept under
/// a hard link until the set is written (a link and a rename need no space).
#[derive(Default)]
pub(crate) struct NewFiles {
    created: Vec<PathBuf>,
    /// (the file, the link to its old content).
    replaced: Vec<(PathBuf, PathBuf)>,
}

impl NewFiles {
    /// Write `bytes` to `target` whole ([`replace_file`]), remembering what
    /// was there before.
    pub(crate) fn write(&mut self, target: &Path, mode: u32, bytes: &[u8]) -> Result<()> {
        let existed = fs::symlink_metadata(target).is_ok();
        let old = existed
            .then(|| {
                let name = target.file_name()?.to_string_lossy().into_owned();
                let old = target.with_file_name(format!(
                    "{TEMP_PREFIX}{name}.replaced-{}",
                    std::process::id()
                ));
                let _ = fs::remove_file(&old);
                fs::hard_link(target, &old).ok().map(|()| old)
            })
            .flatten();
        if let Err(error) = replace_file(target, mode, bytes) {
            if let Some(old) = old {
                let _ = fs::remove_file(old);
            }
            return Err(error);
        }
        match (existed, old) {
            (false, _) => self.created.push(target.to_path_buf()),
            (true, Some(old)) => self.replaced.push((target.to_path_buf(), old)),
            (true, None) => {}
        }
        Ok(())
    }

    /// `error` after removing the files created so far and putting the
    /// replaced ones back, saying so.
    pub(crate) fn undo(mut self, error: Error) -> Error {
        let removed = self
            .created
            .iter()
            .filter(|path| fs::remove_file(path).is_ok())
            .count();
        let put_back = std::mem::take(&mut self.replaced)
            .into_iter()
            .filter(|(path, old)| fs::rename(old, path).is_ok())
            .count();
        let files = |n: usize| {
            if n == 1 {
                "1 file".to_string()
            } else {
                format!("{n} files")
            }
        };
        let undone: Vec<String> = [
            (removed > 0)
                .then(|| format!("the {} this run had written were removed", files(removed))),
            (put_back > 0)
                .then(|| format!("the {} it had replaced were put back", files(put_back))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if undone.is_empty() {
            return error;
        }
        Error::failed(format!(
            "{error}; {}, so a retry starts clean",
            undone.join(" and ")
        ))
    }
}

impl Drop for NewFiles {
    /// The set was written (or put back): the old contents kept aside go.
    fn drop(&mut self) {
        for (_, old) in &self.replaced {
            let _ = fs::remove_file(old);
        }
    }
}

/// Whether `a` and `b` are one existing directory under any name: the same
/// real path, or (a bind mount, one filesystem under two paths) the same
/// device and inode.
pub(crate) fn same_existing_dir(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if fs::canonicalize(a).is_ok_and(|a| fs::canonicalize(b).is_ok_and(|b| a == b)) {
        return true;
    }
    matches!((fs::metadata(a), fs::metadata(b)),
        (Ok(a), Ok(b)) if a.is_dir() && a.dev() == b.dev() && a.ino() == b.ino())
}

/// The directory `path` is in: its parent, or `.` for a bare name (whose
/// parent is the empty path).
pub(crate) fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Flush a directory's entries (a new or renamed name) to disk; `""` is `.`.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context(|| format!("cannot flush directory {}", show(dir)))
}

/// Open for reading without following a symlink planted under a backup's name,
/// and without blocking on a FIFO planted there (callers `fstat` and skip what is
/// not a regular file; O_NONBLOCK changes nothing for reads of regular files).
pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
}

/// The permission bits a copy of `path` may have: never more readable than it,
/// never writable by others.
pub(crate) fn copy_mode(path: &Path) -> u32 {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o664)
        .unwrap_or(0o600)
}

/// A file that is removed when dropped unless it was published.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TempFile {
    /// Create a new temp file in `dir` with at most `mode` permissions.
    pub(crate) fn create_in(dir: &Path, mode: u32) -> Result<Self> {
        let name = format!(
            "{TEMP_PREFIX}{}-{}-{}.part",
            this_host(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self::create_named(dir.join(name), mode)
    }

    /// Create `path` exclusively (never through a planted symlink), with the
    /// group bits of `mode` granted under group sharing (`perms`).
    pub(crate) fn create_named(path: PathBuf, mode: u32) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| {
                let dir = path.parent().unwrap_or(Path::new("."));
                Error::Io {
                    // The directory is what the user must fix, not our temp name.
                    context: perms::excluded(&[("directory", dir)], dir, &source)
                        .or_else(|| crate::error::not_writable("directory", dir, &source))
                        .unwrap_or_else(|| format!("cannot create {}", show(&path))),
                    source,
                }
            })?;
        perms::settle_file(&file, mode, &path);
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("temp file is open until removed")
    }

    /// Flush content and size to disk.
    pub(crate) fn sync(&mut self) -> Result<()> {
        let path = self.path.clone();
        self.file()
            .sync_all()
            .context(|| format!("cannot flush {}", show(&path)))
    }

    /// Close without removing: the caller has renamed it into place.
    pub(crate) fn keep(mut self) {
        self.file = None;
        self.path = PathBuf::new();
    }

    pub(crate) fn remove(&mut self) {
        self.file = None;
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
            self.path = PathBuf::new();
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn link_no_replace_publishes_a_new_name_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        fs::write(&from, "new").unwrap();
        link_no_replace(&from, &to).unwrap();
        assert_eq!(fs::read_to_string(&to).unwrap(), "new");
        // A new file under `from` (the link shares the old one's inode).
        fs::remove_file(&from).unwrap();
        fs::write(&from, "newer").unwrap();
        let refused = link_no_replace(&from, &to).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&to).unwrap(), "new");
    }

    #[test]
    fn replace_file_leaves_the_new_bytes_with_their_mode_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state");
        fs::write(&target, "old and longer").unwrap();
        replace_file(&target, 0o600, b"new").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(names_in(dir.path()), ["state"]);
    }

    #[test]
    fn a_temp_file_is_removed_when_dropped_and_kept_once_published() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = TempFile::create_in(dir.path(), 0o600).unwrap();
        let name = dropped
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(TEMP_PREFIX), "{name}");
        drop(dropped);
        assert!(names_in(dir.path()).is_empty());
        let kept = TempFile::create_in(dir.path(), 0o600).unwrap();
        fs::rename(kept.path(), dir.path().join("published")).unwrap();
        kept.keep();
        assert_eq!(names_in(dir.path()), ["published"]);
    }

    #[test]
    fn a_temp_name_is_created_exclusively_never_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let planted = dir.path().join(format!("{TEMP_PREFIX}planted"));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(TempFile::create_named(planted, 0o600).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn a_lock_holder_removes_every_temp_file_but_its_own_process_ones() {
        let dir = tempfile::tempdir().unwrap();
        let own = TempFile::create_in(dir.path(), 0o600).unwrap();
        let own_name = own
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let killed = format!("{TEMP_PREFIX}otherhost-1-0.part");
        fs::write(dir.path().join(&killed), "left by a killed run").unwrap();
        fs::write(dir.path().join("backup_x.db.gz"), "a backup").unwrap();
        assert_eq!(remove_temps_in(dir.path()), 1);
        assert_eq!(names_in(dir.path()), [own_name.as_str(), "backup_x.db.gz"]);
    }

    #[test]
    fn outside_the_backup_directory_only_temp_files_of_dead_processes_here_go() {
        let dir = tempfile::tempdir().unwrap();
        // A process that has exited and been reaped: its pid is dead.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let host = this_host();
        let of_dead = format!("{TEMP_PREFIX}{host}-{dead}-0.part");
        let of_live = format!("{TEMP_PREFIX}{host}-{}-0.part", std::process::id());
        let elsewhere = format!("{TEMP_PREFIX}otherhost-{dead}-0.part");
        for name in [&of_dead, &of_live, &elsewhere] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(remove_dead_temps_in(dir.path()), 1);
        let mut expected = vec![of_live, elsewhere];
        expected.sort();
        assert_eq!(names_in(dir.path()), expected);
    }

    #[test]
    fn open_no_follow_refuses_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(open_no_follow(&real).is_ok());
        let refused = open_no_follow(&link).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(nix::libc::ELOOP));
    }
}
