//! The backup directory: which files are backups, their metadata, temp files and
//! atomic, never-overwriting publication.

pub mod adopt;
pub mod legacy;
pub mod metadata;
pub mod naming;
pub mod ownership;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::error::{Context, Error, Result, show};
pub use metadata::{CheckResult, Kind, Metadata};
pub use naming::BackupName;
pub use ownership::{BackupSet, DbId, Legacy, Role};

/// Temp files in a backup or mirror directory start with this; only a lock holder
/// writes them, so a lock holder may remove any it finds (left by a killed run).
pub const TEMP_PREFIX: &str = ".dbbackup-tmp-";
pub const LOCK_FILE: &str = ".dbbackup.lock";

pub struct BackupDir {
    path: PathBuf,
}

/// One backup file and what we could read of it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: BackupName,
    pub file_name: String,
    pub path: PathBuf,
    /// Compressed bytes on disk.
    pub size: u64,
    /// The metadata, or why it could not be read (legacy gzip, damaged file).
    pub meta: std::result::Result<Metadata, String>,
    /// A plain gzip file without metadata under a non-failed backup name: what the
    /// seed's `backup_database.py` wrote (named in local time).
    pub legacy: bool,
    /// Why a legacy file cannot be the whole backup its name claims (truncated,
    /// not a database, named in the future): such a file is damaged, never
    /// chosen, counted or deleted automatically.
    pub implausible: Option<String>,
}

impl Entry {
    /// How long ago it was created (zero if the clock says the future).
    pub fn age(&self) -> std::time::Duration {
        std::time::Duration::try_from(Timestamp::now().duration_since(self.created()))
            .unwrap_or_default()
    }

    /// Creation time: recorded in the metadata, else the name's second (local
    /// time for the seed's legacy backups, UTC for ours).
    pub fn created(&self) -> Timestamp {
        let zone = if self.legacy {
            TimeZone::system()
        } else {
            TimeZone::UTC
        };
        match &self.meta {
            Ok(meta) => meta.created,
            Err(_) => self
                .name
                .stamp
                .to_zoned_datetime(zone)
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }

    /// `manual`, ..., `pre-restore`, or `legacy`; `None` for a damaged file.
    pub fn kind_name(&self) -> Option<&'static str> {
        match &self.meta {
            Ok(meta) => Some(meta.kind.as_str()),
            Err(_) if self.legacy => Some("legacy"),
            Err(_) => None,
        }
    }

    /// What is wrong with a file that has no usable metadata (`None` for a good
    /// legacy file or a file with metadata): shown by `list`, `restore`, `verify`.
    pub fn problem(&self) -> Option<&str> {
        match (&self.meta, &self.implausible) {
            (_, Some(why)) => Some(why),
            (Err(_), None) if self.legacy => None,
            (Err(why), None) => Some(why),
            (Ok(_), None) => None,
        }
    }

    /// The snapshot was recorded as failing its integrity check.
    pub fn is_failed(&self) -> bool {
        self.name.failed || matches!(&self.meta, Ok(m) if m.check != CheckResult::Ok)
    }
}

impl BackupDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        BackupDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create the directory (with parents) if needed; refuse a non-directory.
    pub fn ensure_exists(&self) -> Result<()> {
        match fs::metadata(&self.path) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(Error::failed(format!(
                "backup directory {} exists but is not a directory",
                show(&self.path)
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(&self.path)
                .context(|| format!("cannot create backup directory {}", show(&self.path))),
            Err(e) => {
                Err(e).context(|| format!("cannot access backup directory {}", show(&self.path)))
            }
        }
    }

    /// Backup names, newest first, from the directory listing alone (cheap).
    /// A directory that does not exist yet holds no backups.
    pub fn names(&self) -> Result<Vec<(BackupName, String)>> {
        let dir = match fs::read_dir(&self.path) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {
                return Err(Error::failed(format!(
                    "backup directory {} is not a directory",
                    show(&self.path)
                )));
            }
            Err(e) => {
                return Err(e)
                    .context(|| format!("cannot read backup directory {}", show(&self.path)));
            }
        };
        let mut names = Vec::new();
        for item in dir {
            let item =
                item.context(|| format!("cannot read backup directory {}", show(&self.path)))?;
            if let Some(file_name) = item.file_name().to_str()
                && let Some(name) = BackupName::parse(file_name)
            {
                names.push((name, file_name.to_string()));
            }
        }
        names.sort_by_key(|(name, _)| std::cmp::Reverse(name.order_key()));
        Ok(names)
    }

    /// Every backup with its metadata, newest first.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        self.names()?
            .into_iter()
            .filter_map(|(name, file_name)| self.read_entry(name, file_name).transpose())
            .collect()
    }

    /// This database's backups, sorted into restore points, pre-restore copies,
    /// failed snapshots, damaged files and other databases' backups.
    pub fn set(&self, db: &DbId) -> Result<BackupSet> {
        Ok(BackupSet::of(self.entries()?, db))
    }

    /// The newest restore point of `db`, reading only as many headers as needed
    /// (`auto` must stay cheap): the whole directory is read only when a legacy
    /// file comes first, to learn whether it is `db`'s.
    pub fn newest_restore_point(&self, db: &DbId) -> Result<Option<Entry>> {
        let mut found: Option<Entry> = None;
        let mut legacy_owner: Option<Legacy> = None;
        for (name, file_name) in self.names()? {
            if name.failed {
                continue;
            }
            let Some(entry) = self.read_entry(name, file_name)? else {
                continue;
            };
            let owner = match legacy_owner {
                Some(known) => known,
                None if entry.legacy => *legacy_owner.insert(Legacy::judge(&self.entries()?, db)),
                // Not consulted for a file with metadata.
                None => Legacy::Ours,
            };
            if ownership::role(&entry, db, owner) != Role::RestorePoint {
                continue;
            }
            let legacy = entry.legacy;
            if found.as_ref().is_none_or(|f| entry.created() > f.created()) {
                found = Some(entry);
            }
            // Legacy names are local time, ours UTC: near a legacy one, the name
            // order may not be creation order, so look one further.
            if !legacy {
                break;
            }
        }
        Ok(found)
    }

    /// Look up a backup given by file name (already validated as a plain name).
    pub fn entry(&self, file_name: &str) -> Result<Option<Entry>> {
        match BackupName::parse(file_name) {
            Some(name) => self.read_entry(name, file_name.to_string()),
            None => Ok(None),
        }
    }

    /// `None` when the file vanished (pruned by another process meanwhile).
    fn read_entry(&self, name: BackupName, file_name: String) -> Result<Option<Entry>> {
        let path = self.path.join(&file_name);
        let file = match open_no_follow(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // Something planted under a backup's name: show it, never follow it.
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Ok(Some(Entry {
                    name,
                    file_name,
                    path,
                    size: 0,
                    meta: Err("a symbolic link, not a backup; not followed".into()),
                    legacy: false,
                    implausible: None,
                }));
            }
            Err(e) => return Err(e).context(|| format!("cannot open backup {}", show(&path))),
        };
        let stat = file
            .metadata()
            .context(|| format!("cannot stat backup {}", show(&path)))?;
        if !stat.is_file() {
            return Ok(None);
        }
        let mut reader = BufReader::with_capacity(metadata::HEADER_LEN, file);
        let meta = metadata::decode(&mut reader);
        let legacy = matches!(meta, Err(metadata::MetaError::Missing)) && !name.failed;
        let mut entry = Entry {
            name,
            file_name,
            path,
            size: stat.len(),
            meta: meta.map_err(|e| e.to_string()),
            legacy,
            implausible: None,
        };
        if legacy {
            entry.implausible = legacy::implausible(&mut reader.into_inner(), &entry);
        }
        Ok(Some(entry))
    }

    /// A new temp file for a backup, readable by no one the database does not allow.
    pub fn create_temp(&self, mode: u32) -> Result<TempFile> {
        TempFile::create_in(&self.path, mode)
    }

    /// Give a finished, flushed temp file its backup name without ever replacing
    /// an existing file, and make the name durable.
    pub fn publish(&self, mut temp: TempFile, created: Timestamp, failed: bool) -> Result<Entry> {
        let utc = created.to_zoned_datetime(TimeZone::UTC).datetime();
        let existing = self.names()?;
        // Names must sort in creation order even if the clock stepped back; the
        // seed's legacy names are local time, so one "ahead" of UTC says nothing
        // about our clock (only names ahead of now are read to find out).
        let newest = existing
            .iter()
            .find(|(name, file_name)| {
                name.stamp <= utc
                    || !matches!(self.read_entry(*name, file_name.clone()), Ok(Some(e)) if e.legacy)
            })
            .map(|(name, _)| name.stamp);
        let stamp = match newest {
            Some(newest) if newest > utc => newest,
            _ => utc,
        };
        let mut seq = existing
            .iter()
            .filter(|(name, _)| name.stamp == BackupName::new(stamp, 0, false).stamp)
            .map(|(name, _)| name.seq + 1)
            .max()
            .unwrap_or(0);
        loop {
            let name = BackupName::new(stamp, seq, failed);
            let file_name = name.file_name();
            let path = self.path.join(&file_name);
            match link_no_replace(temp.path(), &path) {
                Ok(()) => {
                    temp.remove();
                    sync_dir(&self.path)?;
                    let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    return Ok(Entry {
                        name,
                        file_name,
                        path,
                        size,
                        meta: Err("not read".into()),
                        legacy: false,
                        implausible: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && seq < 999 => seq += 1,
                Err(e) => {
                    return Err(e).context(|| format!("cannot publish backup {}", show(&path)));
                }
            }
        }
    }

    /// Remove temp files left by killed runs. Call only while holding the lock.
    pub fn remove_stale_temps(&self) -> usize {
        remove_temps_in(&self.path)
    }
}

/// This host's name as used in temp-file names (no `-`, which separates fields).
fn this_host() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let host = crate::jobenv::sanitize(&host).replace('-', "_");
        if host.is_empty() { "host".into() } else { host }
    })
    .clone()
}

/// Remove temp files in `dir` left by dead dbbackup processes of this host: for
/// directories outside the backup directory (a restore target's), where other
/// processes' temp files may be live and only ours are known to be dead.
pub fn remove_dead_temps_in(dir: &Path) -> usize {
    let prefix = format!("{TEMP_PREFIX}{}-", this_host());
    remove_temps_where(dir, |name| {
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        pid.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH)
        })
    })
}

/// Remove every dbbackup temp file in `dir` (a lock holder's job), except this
/// process's own: a restore beside its backups (`--backup-dir .`) has its checked
/// copy there while it saves the old database.
pub fn remove_temps_in(dir: &Path) -> usize {
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
pub fn link_no_replace(from: &Path, to: &Path) -> io::Result<()> {
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

/// Flush a directory's entries (a new or renamed name) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
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
pub fn open_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
}

/// The permission bits a copy of `path` may have: never more readable than it.
pub fn copy_mode(path: &Path) -> u32 {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o666)
        .unwrap_or(0o600)
}

/// A file that is removed when dropped unless it was published.
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TempFile {
    /// Create a new temp file in `dir` with at most `mode` permissions.
    pub fn create_in(dir: &Path, mode: u32) -> Result<Self> {
        let name = format!(
            "{TEMP_PREFIX}{}-{}-{}.part",
            this_host(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self::create_named(dir.join(name), mode)
    }

    /// Create `path` exclusively (never through a planted symlink).
    pub fn create_named(path: PathBuf, mode: u32) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path)
            .context(|| format!("cannot create {}", show(&path)))?;
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("temp file is open until removed")
    }

    /// Flush content and size to disk.
    pub fn sync(&mut self) -> Result<()> {
        let path = self.path.clone();
        self.file()
            .sync_all()
            .context(|| format!("cannot flush {}", show(&path)))
    }

    /// Close without removing: the caller has renamed it into place.
    pub fn keep(mut self) {
        self.file = None;
        self.path = PathBuf::new();
    }

    fn remove(&mut self) {
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
