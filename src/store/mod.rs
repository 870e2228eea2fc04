//! The backup directory: which files are backups, their metadata, temp files and
//! atomic, never-overwriting publication.

pub(crate) mod adopt;
pub(crate) mod also_held;
pub(crate) mod atomic;
pub mod checksum;
pub(crate) mod copies;
pub(crate) mod damage;
pub(crate) mod latest;
pub(crate) mod legacy;
pub(crate) mod link;
pub mod metadata;
pub mod naming;
pub(crate) mod ownership;
pub(crate) mod perms;
pub(crate) mod read_whole;
pub(crate) mod sealed;
mod stamped;
pub(crate) mod unlike;
pub(crate) mod verified;

use std::fs;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::error::{Context, Error, Result, show};
pub(crate) use atomic::{
    NewFiles, TEMP_PREFIX, TempFile, copy_mode, link_no_replace, open_no_follow,
    remove_dead_temps_in, remove_temps_in, replace_file, same_existing_dir, sync_dir,
};
pub use checksum::Checksum;
pub use metadata::{CheckResult, Kind, Metadata};
pub use naming::BackupName;
use naming::MAX_SEQ;
pub(crate) use ownership::{BackupSet, DbId, Legacy, Role};
pub(crate) use unlike::db_stream;

pub const LOCK_FILE: &str = ".dbbackup.lock";
/// Hidden directory of per-page hash tables of full backups (`crate::diff::pagehash`).
pub const PAGES_DIR: &str = ".dbbackup-pages";
/// How far ahead of this host's clock a backup may be dated and still be placed
/// by its date: clocks of a cluster's nodes agree to well within this.
pub const CLOCK_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

pub struct BackupDir {
    path: PathBuf,
    /// How messages name it, when not "backup directory PATH" (a mirror).
    named: Option<String>,
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
    /// Why the file is not the one its metadata describes (truncated, extended)
    /// or a whole read found it damaged (`damage`), from cheap tests: it cannot be
    /// restored, so it is never chosen or counted.
    pub damage: Option<String>,
    /// Its numbering, and for a backup without `seq` (older versions, the
    /// seed's legacy files) the highest `seq` among the directory's numbered
    /// backups created no later than it ([`place_unnumbered`]).
    pub(crate) placed: Placed,
}

/// [`Entry::order`]: numbering, number (on the remote: its publication number,
/// the numbering of the point's own directory, its number there), unnumbered,
/// not future-dated, creation time, name.
pub(crate) type OrderKey = (
    Option<Timestamp>,
    u64,
    Option<Timestamp>,
    u64,
    bool,
    bool,
    Timestamp,
    (jiff::civil::DateTime, u32),
);

/// What the next published backup records of its place in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Number {
    pub seq: u64,
    pub since: Timestamp,
}

/// An entry's place among the numbered ones, set by [`place_unnumbered`] for
/// the entries listed together: the numbering it counts in, and for one
/// without `seq` the highest `seq` it ranks right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Placed {
    pub numbering: Option<Timestamp>,
    pub after: u64,
    /// A point on the remote: the numbering of the directory it was made in,
    /// which orders the points that share a remote publication number
    /// (`remote::sync::place`) before their numbers there do: a point from
    /// before a scratch purge placed below a newer one (T18 #6, #7).
    pub remote_numbering: Option<Timestamp>,
}

/// A remote point's `seq` as `remote::client` packs it: this bit, its remote
/// publication number, then ([`LOCAL_SEQ_BITS`]) its number in its directory.
/// Numbered points rank above every point recorded without a remote number.
pub(crate) const REMOTE_SEQ_BASE: u64 = 1 << 62;
/// The bits of a packed remote `seq` that hold the local number.
pub(crate) const LOCAL_SEQ_BITS: u32 = 32;

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

    /// Dated more than [`CLOCK_SLACK`] ahead of this host's clock (made on a node
    /// whose clock was fast): its date cannot be compared with the others'.
    pub fn future_dated(&self) -> bool {
        self.created() > Timestamp::now() + CLOCK_SLACK
    }

    /// It records the SHA-256 of its database: read without error, its bytes
    /// are the ones backed up (a legacy file, or unreadable metadata: unknown).
    pub fn records_checksum(&self) -> bool {
        !self.legacy && self.meta.is_ok()
    }

    /// Its publication number in its directory (`Metadata::seq`), if recorded.
    pub fn seq(&self) -> Option<u64> {
        self.meta.as_ref().ok().and_then(|m| m.seq)
    }

    /// The order of "newest" (`latest`, "unchanged", `check`, retention): by
    /// numbering (a directory begun again after a purge ranks above the one
    /// before it), then publication number, which no node's clock affects. A
    /// backup without one
    /// (made before it was recorded, or by the seed script) ranks right after
    /// the numbered backups created no later than it ([`place_unnumbered`]);
    /// among equals, those dated in the future first (older), then by creation
    /// time (legacy names are local time and ours UTC, so names do not sort
    /// together) and name. A total order: every key is fixed once the entries
    /// are placed (sort with `sort_by_cached_key`: "the future" moves).
    pub(crate) fn order(&self) -> OrderKey {
        let (seq, unnumbered) = match self.seq() {
            Some(seq) => (seq, false),
            None => (self.placed.after, true),
        };
        let (number, local) = match seq & REMOTE_SEQ_BASE {
            0 => (seq, 0),
            _ => (seq >> LOCAL_SEQ_BITS, seq & ((1 << LOCAL_SEQ_BITS) - 1)),
        };
        (
            self.placed.numbering,
            number,
            self.placed.remote_numbering,
            local,
            unnumbered,
            !self.future_dated(),
            self.created(),
            self.name.order_key(),
        )
    }

    /// The snapshot was recorded as failing its integrity check.
    pub fn is_failed(&self) -> bool {
        self.name.failed || matches!(&self.meta, Ok(m) if m.check != CheckResult::Ok)
    }
}

/// Place each backup without a publication number among the numbered ones by
/// the clock: right after the highest `seq` among those created no later than
/// it, so a seed-script backup made today is newer than dbbackup's of two days
/// ago. One dated in the future cannot be placed by its date: before them all.
/// And give each numbered one its numbering: its own, or, made by a version
/// that records none, the newest begun by the time it was made (none before
/// them all: an older version's backups from before a purge, copied back,
/// rank below the numbering begun after it; T26b #1).
pub(crate) fn place_unnumbered(entries: &mut [Entry]) {
    let mut begun: Vec<Timestamp> = entries
        .iter()
        .filter_map(|e| e.meta.as_ref().ok()?.numbering_since)
        .collect();
    begun.sort_unstable();
    begun.dedup();
    for entry in entries.iter_mut() {
        if let Ok(meta) = &entry.meta
            && meta.seq.is_some()
        {
            let created = meta.created;
            entry.placed.numbering = meta.numbering_since.or_else(|| {
                let before = begun.partition_point(|start| *start <= created);
                before.checked_sub(1).map(|i| begun[i])
            });
        }
    }
    let mut numbered: Vec<(Timestamp, Placed)> = entries
        .iter()
        .filter_map(|e| {
            let placed = Placed {
                numbering: e.placed.numbering,
                after: e.seq()?,
                remote_numbering: None,
            };
            Some((e.created(), placed))
        })
        .collect();
    numbered.sort_unstable_by_key(|(time, _)| *time);
    // The highest place taken up to each time.
    let mut highest = Placed::default();
    for (_, placed) in &mut numbered {
        highest = highest.max(*placed);
        *placed = highest;
    }
    for entry in entries.iter_mut().filter(|e| e.seq().is_none()) {
        let created = entry.created();
        let before = numbered.partition_point(|(time, _)| *time <= created);
        entry.placed = match before {
            _ if entry.future_dated() => Placed::default(),
            0 => Placed::default(),
            n => numbered[n - 1].1,
        };
    }
}

impl BackupDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        BackupDir {
            path: path.into(),
            named: None,
        }
    }

    /// A directory its messages call `named` (a mirror, with where it is
    /// configured), not "backup directory PATH".
    pub(crate) fn named(path: impl Into<PathBuf>, named: String) -> Self {
        BackupDir {
            path: path.into(),
            named: Some(named),
        }
    }

    /// "backup directory PATH", or the name given to [`BackupDir::named`].
    pub(crate) fn name(&self) -> String {
        self.named
            .clone()
            .unwrap_or_else(|| format!("backup directory {}", show(&self.path)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create the directory (with parents) if needed; refuse a non-directory.
    pub fn ensure_exists(&self) -> Result<()> {
        match fs::metadata(&self.path) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(self.not_a_directory()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => perms::create_dir_all(&self.path)
                .context(|| format!("cannot create {}", self.name())),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => Err(self.not_a_directory()),
            Err(e) => Err(e).context(|| format!("cannot access {}", self.name())),
        }
    }

    /// The directory is a file, or a file stands where one of its parents
    /// should be (`backup_dir: afile/sub`): named, whichever it is.
    fn not_a_directory(&self) -> Error {
        let in_the_way = self
            .path
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty())
            .find(|p| fs::metadata(p).is_ok_and(|m| !m.is_dir()));
        Error::failed(match in_the_way {
            Some(file) if file != self.path => format!(
                "{} cannot be a directory: {} is {}",
                self.name(),
                show(file),
                if fs::metadata(file).is_ok_and(|m| m.is_file()) {
                    "a file"
                } else {
                    "not a directory"
                }
            ),
            _ => format!("{} exists but is not a directory", self.name()),
        })
    }

    /// Backup names, newest first, from the directory listing alone (cheap).
    /// A directory that does not exist yet holds no backups.
    pub fn names(&self) -> Result<Vec<(BackupName, String)>> {
        let dir = match fs::read_dir(&self.path) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {
                return Err(self.not_a_directory());
            }
            Err(e) => {
                let context = perms::unreadable(&self.path, &e)
                    .unwrap_or_else(|| format!("cannot read {}", self.name()));
                return Err(e).context(|| context);
            }
        };
        let mut names = Vec::new();
        for item in dir {
            let item = item.context(|| format!("cannot read {}", self.name()))?;
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
        let mut entries = self.entries_as_read()?;
        copies::mark(&mut entries);
        Ok(entries)
    }

    /// The backups that hold another's backup under their own name, by file
    /// name, with why (`store::copies`).
    pub(crate) fn copies(&self) -> Result<std::collections::HashMap<String, copies::Copy>> {
        Ok(copies::of(&self.entries_as_read()?))
    }

    /// A backup asked for by name that holds another's backup ([`Self::copies`]):
    /// refused, or its name would be reported over the other's content (T32 G1).
    pub(crate) fn refuse_copy(&self, entry: &Entry) -> Result<()> {
        match self.copies()?.remove(&entry.file_name) {
            Some(copy) => Err(Error::failed(format!(
                "backup {} is damaged: {}; refusing it",
                entry.file_name, copy.why
            ))),
            None => Ok(()),
        }
    }

    fn entries_as_read(&self) -> Result<Vec<Entry>> {
        self.names()?
            .into_iter()
            .filter_map(|(name, file_name)| self.read_entry(name, file_name).transpose())
            .collect()
    }

    /// This database's backups, sorted into restore points, pre-restore copies,
    /// failed snapshots, damaged files and other databases' backups.
    pub(crate) fn set(&self, db: &DbId) -> Result<BackupSet> {
        Ok(BackupSet::of(self.entries()?, db))
    }

    /// `db`'s restore points that are `usable` (restorable, by cheap tests),
    /// newest first by [`Entry::order`]: the first is the one `latest` and
    /// "unchanged" mean; the interval rule takes the first not dated in the
    /// future. Reads every header (8 KiB each): which was published last cannot
    /// be told from the names, which follow the clocks of the nodes.
    pub(crate) fn restore_points(
        &self,
        db: &DbId,
        usable: impl Fn(&Entry) -> bool,
    ) -> Result<Vec<Entry>> {
        let mut points = self.set(db)?.restore_points;
        points.retain(|e| usable(e));
        Ok(points)
    }

    /// The first of [`BackupDir::restore_points`]: what `latest` means.
    pub(crate) fn newest_restore_point(
        &self,
        db: &DbId,
        usable: impl Fn(&Entry) -> bool,
    ) -> Result<Option<Entry>> {
        Ok(self.restore_points(db, usable)?.into_iter().next())
    }

    /// The number the next published backup records as its `seq`: 1 + the
    /// highest recorded in the directory or any of `mirrors` (a primary that was
    /// lost must not restart below the copies the mirrors keep, or they would
    /// rank its new backups older). A mirror that cannot be read is passed over
    /// with a warning (its copy will fail and say so). Call only while holding
    /// the lock.
    ///
    /// With it, the numbering it belongs to (`Metadata::numbering_since`): the
    /// newest recorded among them, or one begun now when none is (an empty or
    /// purged directory, or none recorded one yet).
    pub(crate) fn next_number(&self, mirrors: &[PathBuf]) -> Result<Number> {
        let (mut seq, mut since) = self.highest_numbers()?;
        for mirror in mirrors {
            let named = BackupDir::named(mirror, format!("mirror directory {}", show(mirror)));
            match named.highest_numbers() {
                Ok((their_seq, their_since)) => {
                    seq = seq.max(their_seq);
                    since = since.max(their_since);
                }
                // The error names the mirror.
                Err(e) => tracing::warn!("cannot read the publication numbers of a mirror: {e}"),
            }
        }
        Ok(Number {
            seq: seq + 1,
            since: since.unwrap_or_else(Timestamp::now),
        })
    }

    /// The highest `seq` recorded in the directory (0 when none records one).
    pub(crate) fn highest_seq(&self) -> Result<u64> {
        Ok(self.highest_numbers()?.0)
    }

    /// The highest `seq` and the newest `numbering_since` of its numbered backups.
    fn highest_numbers(&self) -> Result<(u64, Option<Timestamp>)> {
        Ok(self
            .entries()?
            .iter()
            .filter_map(|e| e.meta.as_ref().ok())
            .filter_map(|meta| Some((meta.seq?, meta.numbering_since)))
            .fold((0, None), |(seq, since), (s, n)| (seq.max(s), since.max(n))))
    }

    /// Look up a backup given by file name (already validated as a plain name).
    pub fn entry(&self, file_name: &str) -> Result<Option<Entry>> {
        match BackupName::parse(file_name) {
            Some(name) => self.read_entry(name, file_name.to_string()),
            None => Ok(None),
        }
    }

    /// A backup named by its file name, as `restore` and `verify` take one. Paths
    /// are refused: only names in the backup directory can be restored or verified.
    /// A path to a backup in this directory (what a shell's tab completion
    /// gives: `outputs/db_backups/backup_….db.gz`) names that backup.
    pub fn by_name(&self, name: &str) -> Result<Entry> {
        if let Some(file_name) = self.file_name_in_here(name)? {
            return self.by_name(&file_name);
        }
        if name.contains('/') || name.contains('\\') || name.contains("..") || name.is_empty() {
            let file_name = Path::new(name).file_name().and_then(|n| n.to_str());
            // A path, but not into this directory (tab completion from another
            // place than the config file's), or the directory itself.
            if same_existing_dir(Path::new(name), self.path()) {
                return Err(Error::usage(format!(
                    "invalid backup name '{name}': that is the backup directory; give a backup in it (a file name from `dbbackup list`)"
                )));
            }
            if file_name.is_some_and(|f| BackupName::parse(f).is_some()) {
                return Err(Error::failed(format!(
                    "no backup at '{name}': no such file, and the backup directory is {} (give a file name from `dbbackup list`)",
                    show(self.path())
                )));
            }
            return Err(Error::usage(format!(
                "invalid backup name '{name}': give a file name from `dbbackup list`, not a path (a path names a backup only in the backup directory {})",
                show(self.path())
            )));
        }
        match self.entry(name)? {
            Some(entry) => Ok(entry),
            None => Err(Error::failed(format!(
                "no backup named '{name}' in {}{} (see `dbbackup list`)",
                show(self.path()),
                self.meant(name)
            ))),
        }
    }

    /// The file name of `name` when it is a path whose directory is this one
    /// (under any name of it); a path to a backup elsewhere is refused with
    /// the way to name it (`--backup-dir`).
    fn file_name_in_here(&self, name: &str) -> Result<Option<String>> {
        let path = Path::new(name);
        let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
            return Ok(None);
        };
        let Some(file_name) = file_name.to_str().filter(|_| name.contains('/')) else {
            return Ok(None);
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let (Ok(there), Ok(here)) = (fs::canonicalize(dir), fs::canonicalize(self.path())) else {
            return Ok(None);
        };
        if there == here {
            return Ok(Some(file_name.to_string()));
        }
        if BackupName::parse(file_name).is_some() && path.is_file() {
            return Err(Error::usage(format!(
                "{name} is not in the backup directory {}: name it there with `--backup-dir {} … {file_name}`",
                show(self.path()),
                show(dir)
            )));
        }
        Ok(None)
    }

    /// "; did you mean 'latest'?" for a name within two typing mistakes of
    /// `latest` or of a backup here (`lastest`, a digit of the time); else
    /// nothing. Closer than `spelling::closest`'s bound: backup names differ
    /// from each other by only a few digits.
    fn meant(&self, name: &str) -> String {
        let mut known = vec!["latest".to_string()];
        known.extend(
            self.entries()
                .unwrap_or_default()
                .into_iter()
                .map(|entry| entry.file_name),
        );
        // As typed, in lower case (`LATEST`), and with a backup's ending left
        // off (`backup_20261207_015742`).
        let tried = [
            name.to_string(),
            name.to_lowercase(),
            format!("{name}.db.gz"),
            format!("{name}.diff.gz"),
        ];
        known
            .iter()
            .map(|known| {
                let distance = tried
                    .iter()
                    .map(|tried| crate::spelling::edit_distance(tried, known))
                    .min()
                    .unwrap_or(usize::MAX);
                (distance, known)
            })
            .filter(|(distance, _)| *distance <= 2)
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, close)| format!("; did you mean '{close}'?"))
            .unwrap_or_default()
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
                    damage: None,
                    placed: Placed::default(),
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
        let legacy =
            matches!(meta, Err(metadata::MetaError::Missing)) && !name.failed && !name.diff;
        // A `.diff.gz` name must hold a diff's metadata and a `.db.gz` a full
        // backup's: either mismatch is a damaged file, never guessed at.
        let meta = match meta {
            Ok(meta) if meta.diff.is_some() != name.diff => Err(format!(
                "damaged metadata: a {} backup's metadata under a {} backup's name",
                meta.type_name(),
                if name.diff { "diff" } else { "full" }
            )),
            other => other.map_err(|e| e.to_string()),
        };
        let file = reader.into_inner();
        let damage = damage::recorded(&self.path, &file_name, &stat).or_else(|| match &meta {
            Ok(meta) => damage::size_problem(meta, &file, &stat),
            Err(_) => None,
        });
        let mut entry = Entry {
            name,
            file_name,
            path,
            size: stat.len(),
            meta,
            legacy,
            implausible: None,
            damage,
            placed: Placed::default(),
        };
        if legacy {
            entry.implausible = legacy::implausible(&mut &file, &entry);
        }
        Ok(Some(entry))
    }

    /// A new temp file for a backup, readable by no one the database does not allow.
    pub(crate) fn create_temp(&self, mode: u32) -> Result<TempFile> {
        TempFile::create_in(&self.path, mode)
    }

    /// Give a finished, flushed temp file its backup name without ever replacing
    /// an existing file, and make the name durable: a differential backup
    /// (`.diff.gz`) when `diff`, under a name none of `mirrors` holds either (names are unique within one primary
    /// only; another database sharing a mirror may have taken one there: its
    /// copy there is never replaced, so this one's copy would fail). A mirror
    /// that cannot be listed is passed over.
    ///
    /// `meta` is written as the file's header, with the name about to be
    /// tried (`Metadata::name`), before each try: the file says its own name
    /// from the moment it has one.
    pub(crate) fn publish_as(
        &self,
        mut temp: TempFile,
        meta: &Metadata,
        mirrors: &[PathBuf],
    ) -> Result<Entry> {
        let created = meta.created;
        let failed = meta.check != metadata::CheckResult::Ok;
        let diff = meta.diff.is_some();
        let utc = created.to_zoned_datetime(TimeZone::UTC).datetime();
        let existing = self.names()?;
        let mut taken: Vec<BackupName> = existing.iter().map(|(name, _)| *name).collect();
        for mirror in mirrors {
            if let Ok(names) = BackupDir::new(mirror).names() {
                taken.extend(names.into_iter().map(|(name, _)| name));
            }
        }
        // Names must sort in creation order even if the clock stepped back a
        // little (or another node's runs a little ahead); a name further ahead
        // than `CLOCK_SLACK` came from a fast clock and must not pin every later
        // name to its second. The seed's legacy names are local time, so one
        // "ahead" of UTC says nothing about our clock (only names ahead of now
        // are read to find out).
        let horizon = (created + CLOCK_SLACK)
            .to_zoned_datetime(TimeZone::UTC)
            .datetime();
        let newest = existing
            .iter()
            .filter(|(name, _)| name.stamp <= horizon)
            .find(|(name, file_name)| {
                name.stamp <= utc
                    || !matches!(self.read_entry(*name, file_name.clone()), Ok(Some(e)) if e.legacy)
            })
            .map(|(name, _)| name.stamp);
        let mut stamp = match newest {
            Some(newest) if newest > utc => newest,
            _ => BackupName::new(utc, 0, false).stamp,
        };
        let next_seq = |stamp| {
            taken
                .iter()
                .filter(|name| name.stamp == stamp)
                .map(|name| name.seq + 1)
                .max()
                .unwrap_or(0)
        };
        let mut seq = next_seq(stamp);
        loop {
            // `_999` is the last name of a second: the next second's, never `_1000`.
            if seq > MAX_SEQ {
                stamp = stamp
                    .checked_add(jiff::SignedDuration::from_secs(1))
                    .map_err(|e| Error::failed(format!("cannot name a backup: {e}")))?;
                seq = next_seq(stamp);
                continue;
            }
            let name = BackupName::new(stamp, seq, failed).as_diff(diff);
            let file_name = name.file_name();
            let path = self.path.join(&file_name);
            let named = Metadata {
                name: Some(file_name.clone()),
                ..meta.clone()
            };
            write_header(&mut temp, &named, &self.path)?;
            match link_no_replace(temp.path(), &path) {
                Ok(()) => {
                    temp.remove();
                    // What was recorded of a deleted file of that name (a
                    // damage finding outlives a changed stamp) is not this one's.
                    damage::forget(&self.path, &file_name);
                    sync_dir(&self.path)?;
                    let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    return Ok(Entry {
                        name,
                        file_name,
                        path,
                        size,
                        meta: Ok(named),
                        legacy: false,
                        implausible: None,
                        damage: None,
                        placed: Placed::default(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => seq += 1,
                Err(e) => {
                    return Err(e).context(|| format!("cannot publish backup {}", show(&path)));
                }
            }
        }
    }
}

/// Write `meta` as `temp`'s header (its fixed-length first member) and make
/// it durable before the file is given a name.
fn write_header(temp: &mut TempFile, meta: &Metadata, dir: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let header = metadata::encode(meta).context(|| {
        format!(
            "cannot record metadata of {}",
            show(Path::new(&meta.source))
        )
    })?;
    temp.file()
        .write_all_at(&header, 0)
        .context(|| format!("cannot write backup in {}", show(dir)))?;
    temp.sync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish_at(dir: &BackupDir, when: &str) -> String {
        let created: Timestamp = when.parse().unwrap();
        let temp = dir.create_temp(0o600).unwrap();
        let meta = Metadata {
            created,
            ..metadata::tests::sample()
        };
        dir.publish_as(temp, &meta, &[]).unwrap().file_name
    }

    #[test]
    fn unnumbered_backups_are_placed_by_the_clock_in_a_total_order() {
        use crate::store::ownership::tests::{entry, legacy};
        let numbered = |stamp: &str, seq| {
            let mut e = entry(stamp, "/p/a.db", Kind::Manual, false);
            e.meta.as_mut().unwrap().seq = Some(seq);
            e
        };
        let mut entries = vec![
            legacy("20250101_000000"),
            numbered("20250110_000000", 1),
            numbered("20250111_000000", 2),
            // The seed script, run after dbbackup's backups: newest by far.
            legacy("20250112_000000"),
            legacy("20250112_010000"),
            // Dated in the future: cannot be placed by its date.
            legacy("20990101_000000"),
            // Published after 2 by a node whose clock was slow.
            numbered("20250105_000000", 3),
            // After 1 and 3 by the clock (3 was made by a slow clock).
            legacy("20250110_120000"),
        ];
        place_unnumbered(&mut entries);
        let newest_first = |list: &[Entry]| {
            let mut list = list.to_vec();
            list.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
            list.into_iter()
                .map(|e| e.name.stamp.to_string())
                .collect::<Vec<_>>()
        };
        let expected: Vec<String> = [
            "2025-01-12T01:00:00",
            "2025-01-12T00:00:00",
            "2025-01-10T12:00:00",
            "2025-01-05T00:00:00",
            "2025-01-11T00:00:00",
            "2025-01-10T00:00:00",
            "2025-01-01T00:00:00",
            "2099-01-01T00:00:00",
        ]
        .map(String::from)
        .into();
        assert_eq!(newest_first(&entries), expected);
        // Total: every shuffle sorts to the same list.
        let mut state = 7u64;
        for _ in 0..20 {
            for i in (1..entries.len()).rev() {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                entries.swap(i, (state >> 33) as usize % (i + 1));
            }
            assert_eq!(newest_first(&entries), expected);
        }
    }

    #[test]
    fn a_numbering_begun_later_ranks_above_higher_numbers_of_an_earlier_one() {
        use crate::store::ownership::tests::{entry, legacy};
        let numbered = |stamp: &str, seq, since: Option<&str>| {
            let mut e = entry(stamp, "/p/a.db", Kind::Manual, false);
            let meta = e.meta.as_mut().unwrap();
            meta.seq = Some(seq);
            meta.numbering_since = since.map(|t| t.parse().unwrap());
            e
        };
        let mut entries = vec![
            // Before the purge (copied back): high numbers, the older numbering.
            numbered("20250110_000000", 40, Some("2025-01-01T00:00:00Z")),
            numbered("20250111_000000", 41, Some("2025-01-01T00:00:00Z")),
            // After the purge, from 1 again.
            numbered("20250201_000000", 1, Some("2025-02-01T00:00:00Z")),
            numbered("20250202_000000", 2, Some("2025-02-01T00:00:00Z")),
            // By a version that records no numbering (a job's older module):
            // of the newest one begun by then.
            numbered("20250203_000000", 3, None),
            // By such a version before the purge, copied back: below the new.
            numbered("20250112_000000", 45, None),
            // Before any numbering was recorded (an upgraded directory).
            numbered("20241201_000000", 50, None),
            // The seed script, after the purge's first backup by the clock.
            legacy("20250201_120000"),
        ];
        place_unnumbered(&mut entries);
        entries.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
        let stamps: Vec<String> = entries.iter().map(|e| e.name.stamp.to_string()).collect();
        assert_eq!(
            stamps,
            [
                "2025-02-03T00:00:00",
                "2025-02-02T00:00:00",
                "2025-02-01T12:00:00",
                "2025-02-01T00:00:00",
                "2025-01-12T00:00:00",
                "2025-01-11T00:00:00",
                "2025-01-10T00:00:00",
                "2024-12-01T00:00:00",
            ]
        );
    }

    #[test]
    fn on_the_remote_a_numbering_orders_only_points_that_share_a_number() {
        use crate::store::ownership::tests::entry;
        // As `remote::client` gives a point: its remote number, its local one.
        let remote = |stamp: &str, number: u64, local: u64, since: &str| {
            let mut e = entry(stamp, "/p/a.db", Kind::Manual, false);
            e.meta.as_mut().unwrap().seq =
                Some(REMOTE_SEQ_BASE | (number << LOCAL_SEQ_BITS) | local);
            e.placed.remote_numbering = Some(since.parse().unwrap());
            e
        };
        let mut entries = vec![
            // Placed below the new point (`sync::place`): its number, and a
            // higher local one from before the purge.
            remote("20250110_000000", 7, 41, "2025-01-01T00:00:00Z"),
            remote("20250201_000000", 7, 1, "2025-02-01T00:00:00Z"),
            // The remote's own number first, whatever the numbering.
            remote("20250105_000000", 8, 40, "2025-01-01T00:00:00Z"),
            remote("20250103_000000", 6, 39, "2025-01-01T00:00:00Z"),
        ];
        place_unnumbered(&mut entries);
        entries.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
        let stamps: Vec<String> = entries.iter().map(|e| e.name.stamp.to_string()).collect();
        assert_eq!(
            stamps,
            [
                "2025-01-05T00:00:00",
                "2025-02-01T00:00:00",
                "2025-01-10T00:00:00",
                "2025-01-03T00:00:00",
            ]
        );
    }

    #[test]
    fn the_first_number_begins_a_numbering() {
        let root = tempfile::tempdir().unwrap();
        let dir = BackupDir::new(root.path());
        let before = Timestamp::now();
        let first = dir.next_number(&[]).unwrap();
        assert_eq!(first.seq, 1);
        assert!(first.since >= before);
    }

    #[test]
    fn names_never_leave_the_format_nor_follow_a_future_dated_name() {
        let root = tempfile::tempdir().unwrap();
        let dir = BackupDir::new(root.path());
        // A name 200 days ahead (a fast clock) does not pin later names.
        fs::write(root.path().join("backup_20270623_120000.db.gz"), b"x").unwrap();
        assert_eq!(
            publish_at(&dir, "2026-12-05T12:00:00Z"),
            "backup_20261205_120000.db.gz"
        );
        // One a few seconds ahead (clocks of two nodes) still keeps names in order.
        fs::write(root.path().join("backup_20261205_120105.db.gz"), b"x").unwrap();
        assert_eq!(
            publish_at(&dir, "2026-12-05T12:01:00Z"),
            "backup_20261205_120105_001.db.gz"
        );
        // After a second's last name, `_999`, comes the next second's first.
        fs::write(root.path().join("backup_20261205_130000_999.db.gz"), b"x").unwrap();
        assert_eq!(
            publish_at(&dir, "2026-12-05T13:00:00Z"),
            "backup_20261205_130001.db.gz"
        );
        for name in dir.names().unwrap() {
            assert!(BackupName::parse(&name.1).is_some(), "{name:?}");
        }
    }
}
