//! Who may use what dbbackup creates. In a group-shared project directory every
//! member's jobs back up the same database, so the backup directory, the lock, the
//! state files and the backups must be usable by the group whatever each member's
//! umask (as git's `core.sharedRepository=group`). Decided once per command from
//! the `shared` setting and the database's own permissions; every place that
//! creates a file or a directory applies it explicitly after creating (the umask
//! masks the mode given to `open`/`mkdir`).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::show;
use crate::options::Shared;

/// What this process does with the modes of what it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    Umask,
    Group,
}

/// Set by `decide` at the start of each command (a library caller may run
/// several in one process); 0 until then: umask modes.
static SHARING: AtomicU8 = AtomicU8::new(0);

/// Decide, before anything is created: `setting` if given, else group sharing
/// when `db` is group-writable and its directory belongs to the database's
/// group and lets the group write.
pub(crate) fn decide(setting: Option<Shared>, db: Option<&Path>) -> Sharing {
    let sharing = match setting {
        Some(Shared::Group) => Sharing::Group,
        Some(Shared::Umask) => Sharing::Umask,
        None if db.is_some_and(group_shared_database) => Sharing::Group,
        None => Sharing::Umask,
    };
    SHARING.store(u8::from(sharing == Sharing::Group), Ordering::Relaxed);
    sharing
}

/// The decision of the command being run.
pub(crate) fn sharing() -> Sharing {
    if SHARING.load(Ordering::Relaxed) == 1 {
        Sharing::Group
    } else {
        Sharing::Umask
    }
}

fn group_shared_database(db: &Path) -> bool {
    let Ok(meta) = fs::metadata(db) else {
        return false;
    };
    let dir = crate::store::atomic::parent_or_dot(db);
    fs::metadata(dir)
        .is_ok_and(|d| meta.mode() & 0o020 != 0 && d.gid() == meta.gid() && d.mode() & 0o020 != 0)
}

/// The mode a file created with `requested` ends with, given the mode the umask
/// left (`made`): under group sharing the group bits the caller asked for are
/// granted whatever the umask. Never more than `requested` for the group, never
/// writable by others.
pub(crate) fn file_mode(sharing: Sharing, requested: u32, made: u32) -> u32 {
    let made = made & 0o777;
    let mode = match sharing {
        Sharing::Umask => made,
        Sharing::Group => made | (requested & 0o060),
    };
    mode & !0o002
}

/// The mode of a directory we made, given what the umask left: group
/// read/write/search and setgid (new files keep the project's group) under group
/// sharing; never writable by others.
pub(crate) fn dir_mode(sharing: Sharing, made: u32) -> u32 {
    let made = made & 0o7777;
    let mode = match sharing {
        Sharing::Umask => made,
        Sharing::Group => made | 0o070 | 0o2000,
    };
    mode & !0o002
}

/// Give a file just created at `path` with `requested` its mode (fchmod: the
/// umask masked `requested` at open). A file whose mode already is right, or
/// another user's (an existing lock file), is left alone. Best effort: a
/// filesystem without modes (vfat) never fails a backup over them.
pub(crate) fn settle_file(file: &File, requested: u32, path: &Path) {
    let Ok(meta) = file.metadata() else {
        return;
    };
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return;
    }
    let mode = file_mode(sharing(), requested, meta.mode());
    if mode != meta.mode() & 0o7777
        && let Err(e) = file.set_permissions(fs::Permissions::from_mode(mode))
    {
        tracing::warn!("cannot give {} mode {mode:o}: {e}", show(path));
    }
}

/// Give a directory we just made its mode, through a descriptor opened
/// without following a symlink (in a directory the group may write, the name
/// could have been replaced meanwhile). Best effort, as `settle_file`.
fn settle_dir(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let settled = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .and_then(|dir| {
            let made = dir.metadata()?.mode();
            let mode = dir_mode(sharing(), made);
            if mode != made & 0o7777 {
                dir.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            Ok(())
        });
    if let Err(e) = settled {
        tracing::warn!("cannot give directory {} its shared mode: {e}", show(path));
    }
}

/// `text` written in place as the small record file `path` inside `dir`
/// (made if missing): group-writable in a shared project, never through a
/// planted symlink, never blocking on a FIFO planted there.
pub(crate) fn write_record(dir: &Path, path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    create_dir_all(dir)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o664)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    settle_file(&file, 0o664, path);
    file.write_all(text.as_bytes())
}

/// `mkdir` one directory with the shared mode; `AlreadyExists` as `fs::create_dir`.
pub(crate) fn create_dir(path: &Path) -> io::Result<()> {
    fs::create_dir(path)?;
    settle_dir(path);
    Ok(())
}

/// `mkdir -p`: every directory made here gets the shared mode, those that
/// existed are left as they are.
pub(crate) fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut at = path;
    while !at.as_os_str().is_empty() && fs::symlink_metadata(at).is_err() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for dir in missing.iter().rev() {
        match create_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            other => other?,
        }
    }
    // A symlink to a directory, or a race: what `fs::create_dir_all` accepts.
    if path.is_dir() {
        Ok(())
    } else {
        fs::create_dir_all(path)
    }
}

/// For a write refused with `source` under `items` (what, path: the directory
/// to create in, the file to open): the context (before `source`'s text) naming
/// each that excludes us, a member of its group (another member made it with a
/// private umask), with its owner and mode, and the one fix: making all under
/// `fix` group-writable (what that member made there excludes us too);
/// `None` when that is not the cause.
pub(crate) fn excluded(items: &[(&str, &Path)], fix: &Path, source: &io::Error) -> Option<String> {
    use nix::libc::{EACCES, EPERM};
    if !matches!(source.raw_os_error(), Some(EACCES | EPERM)) {
        return None;
    }
    let found: Vec<Excluding> = items
        .iter()
        .filter_map(|(what, path)| excluding(what, path, Need::Write))
        .collect();
    if found.is_empty() {
        return None;
    }
    let named: Vec<String> = found
        .iter()
        .map(|f| {
            format!(
                "{} {} (owner {}, group {}, mode {:o})",
                f.what,
                show(f.path),
                f.owner,
                f.group,
                f.mode
            )
        })
        .collect();
    Some(format!(
        "{} {} not writable by you [fix: {}]",
        named.join(" and "),
        if found.len() == 1 { "is" } else { "are" },
        fix_for(&found, fix),
    ))
}

/// The one fix for all of `found`: ours, we give ourselves the access (the
/// group bits would not help us); another member's, that member opens it to
/// the group.
fn fix_for(found: &[Excluding], fix: &Path) -> String {
    if found.iter().all(|f| f.ours) {
        return format!("run `chmod -R u+rwX {}`", show(fix));
    }
    let mut owners: Vec<&str> = found
        .iter()
        .filter(|f| !f.ours)
        .map(|f| f.owner.as_str())
        .collect();
    owners.dedup();
    format!(
        "{} runs `chmod -R g+rwX {}`; `shared: group` keeps what dbbackup creates group-writable",
        owners.join(" and "),
        show(fix)
    )
}

struct Excluding<'a> {
    what: &'a str,
    path: &'a Path,
    owner: String,
    group: String,
    mode: u32,
    /// Ours: its owner is this process's user.
    ours: bool,
}

/// What a command needs of a path another member made.
#[derive(Clone, Copy)]
enum Need {
    Read,
    Write,
}

/// For a read of backup directory `dir` refused with `source`: the context
/// naming its owner and mode and the fix, when its mode keeps us, a member of
/// its group, out (`list`, `check`, `verify` take no lock); `None` otherwise.
pub(crate) fn unreadable(dir: &Path, source: &io::Error) -> Option<String> {
    use nix::libc::{EACCES, EPERM};
    if !matches!(source.raw_os_error(), Some(EACCES | EPERM)) {
        return None;
    }
    // The outermost directory on the way that keeps us out: a parent dbbackup
    // made under a private umask (`outputs/`) hides the backup directory too.
    let on_the_way: Vec<&Path> = dir
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    let f = on_the_way.iter().rev().find_map(|path| {
        let what = if *path == dir {
            "backup directory"
        } else {
            "directory"
        };
        excluding(what, path, Need::Read)
    })?;
    Some(format!(
        "{} {} (owner {}, group {}, mode {:o}) is not readable by you [fix: {}]",
        f.what,
        show(f.path),
        f.owner,
        f.group,
        f.mode,
        fix_for(std::slice::from_ref(&f), f.path),
    ))
}

/// `path` if its mode keeps us, a member of its group, from what we need.
fn excluding<'a>(what: &'a str, path: &'a Path, need: Need) -> Option<Excluding<'a>> {
    use nix::unistd::{AccessFlags, Group, User, access};
    let meta = fs::metadata(path).ok()?;
    let wanted = match (need, meta.is_dir()) {
        (Need::Write, true) => AccessFlags::W_OK | AccessFlags::X_OK,
        (Need::Write, false) => AccessFlags::W_OK,
        (Need::Read, true) => AccessFlags::R_OK | AccessFlags::X_OK,
        (Need::Read, false) => AccessFlags::R_OK,
    };
    // The kernel's own answer for this process, not a guess from the mode bits;
    // and only a member of its group is helped by the group's write bit.
    if access(path, wanted).is_ok() || !member_of(meta.gid()) {
        return None;
    }
    // Refused though the mode lets us in (an immutable file, a read-only
    // mount, an ACL or SELinux): no chmod helps; the system's error says it.
    let ours = meta.uid() == nix::unistd::geteuid().as_raw();
    let user_bits = u32::try_from(wanted.bits()).unwrap_or(0) << 6;
    let group_bits = user_bits >> 3;
    let bits = if ours { user_bits } else { group_bits };
    if nix::unistd::geteuid().is_root() || meta.mode() & bits == bits {
        return None;
    }
    Some(Excluding {
        what,
        path,
        owner: User::from_uid(meta.uid().into())
            .ok()
            .flatten()
            .map_or_else(|| meta.uid().to_string(), |user| user.name),
        group: Group::from_gid(meta.gid().into())
            .ok()
            .flatten()
            .map_or_else(|| meta.gid().to_string(), |group| group.name),
        mode: meta.mode() & 0o7777,
        ours,
    })
}

/// Whether this process has `gid` as its group or a supplementary one.
fn member_of(gid: u32) -> bool {
    let gid = nix::unistd::Gid::from_raw(gid);
    nix::unistd::getegid() == gid
        || nix::unistd::getgroups().is_ok_and(|groups| groups.contains(&gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_writable_database_in_a_group_writable_directory_of_its_group_is_shared() {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("results.db");
        fs::write(&db, b"").unwrap();
        let set = |path: &Path, mode| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        };
        set(root.path(), 0o2775);
        set(&db, 0o664);
        assert!(group_shared_database(&db));
        set(&db, 0o644);
        assert!(
            !group_shared_database(&db),
            "the database not group-writable"
        );
        set(&db, 0o664);
        set(root.path(), 0o755);
        assert!(
            !group_shared_database(&db),
            "the directory not group-writable"
        );
        assert!(!group_shared_database(&root.path().join("missing.db")));
    }

    #[test]
    fn create_dir_all_makes_every_missing_parent() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        // Existing: nothing to do, no error.
        create_dir_all(&deep).unwrap();
        assert!(create_dir(&deep).unwrap_err().kind() == io::ErrorKind::AlreadyExists);
        fs::write(root.path().join("file"), b"").unwrap();
        assert!(create_dir_all(&root.path().join("file/x")).is_err());
    }

    #[test]
    fn group_sharing_grants_the_requested_group_bits_whatever_the_umask() {
        // umask 022 left 0644 of a requested 0664: the group gets its write back.
        assert_eq!(file_mode(Sharing::Group, 0o664, 0o644), 0o664);
        // umask 077: the group gets what was asked, others stay out.
        assert_eq!(file_mode(Sharing::Group, 0o664, 0o600), 0o660);
        // A 0600 database's backup stays 0600.
        assert_eq!(file_mode(Sharing::Group, 0o600, 0o600), 0o600);
        assert_eq!(file_mode(Sharing::Umask, 0o664, 0o644), 0o644);
        // Never writable by others, even with umask 000.
        assert_eq!(file_mode(Sharing::Umask, 0o666, 0o666), 0o664);
    }

    #[test]
    fn group_sharing_makes_directories_group_writable_and_setgid() {
        assert_eq!(dir_mode(Sharing::Group, 0o755), 0o2775);
        assert_eq!(dir_mode(Sharing::Group, 0o700), 0o2770);
        assert_eq!(dir_mode(Sharing::Group, 0o2777), 0o2775);
        assert_eq!(dir_mode(Sharing::Umask, 0o755), 0o755);
    }
}
