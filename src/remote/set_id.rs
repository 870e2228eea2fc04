//! A backup directory's own identity (`.dbbackup-state/backup-set`): made
//! once, by its first `sync`, and recorded with each point it uploads. Two
//! backup directories under one path (a project cloned again, a scratch
//! directory made again after a purge, another cluster with the same paths)
//! number their backups each from 1, and their numbers say nothing about each
//! other; the path alone cannot tell them apart, this can. The directory's
//! inode is kept with it: a copy of the directory (`cp -a`, `rsync -a` to
//! another cluster) carries the file but not the inode, and is given an
//! identity of its own; a move (`mv`) keeps both.

use std::io::Write;
use std::path::Path;

use crate::slurm::array::STATE_DIR;

const FILE: &str = "backup-set";

/// The identity of the backup directory `dir`, if it has one (not one copied
/// in with it from another directory).
pub(crate) fn of(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(STATE_DIR).join(FILE)).ok()?;
    let mut words = text.split_whitespace();
    let id = words.next()?;
    let valid = id.len() >= 16 && id.chars().all(|c| c.is_ascii_hexdigit());
    // The inode is the same on every node (unlike the device of an NFS mount).
    let made_here = match words.next() {
        Some(inode) => inode_of(dir).is_some_and(|here| inode == here.to_string()),
        None => true,
    };
    (valid && made_here).then(|| id.to_string())
}

fn inode_of(dir: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| m.ino())
}

/// [`of`], made first if `dir` has none. `None` when it cannot be written (a
/// read-only directory): its uploads are then recorded without one, and
/// ordered by the path, as before identities were kept.
pub(crate) fn ensure(dir: &Path) -> Option<String> {
    if let Some(id) = of(dir) {
        return Some(id);
    }
    let state = dir.join(STATE_DIR);
    crate::store::perms::create_dir_all(&state).ok()?;
    // Written whole under a name of its own, then linked: of two processes
    // making it at once, one identity wins and both read it.
    let temp = state.join(format!("{FILE}.{}", std::process::id()));
    let line = format!("{} {}\n", new_id(dir), inode_of(dir)?);
    let written = std::fs::File::create(&temp)
        .and_then(|mut f| f.write_all(line.as_bytes()).and(f.sync_all()));
    let place = state.join(FILE);
    if written.is_ok() {
        if place.exists() {
            // Copied in from another directory: this one's replaces it.
            let _ = std::fs::rename(&temp, &place);
        } else {
            let _ = std::fs::hard_link(&temp, &place);
        }
    }
    let _ = std::fs::remove_file(&temp);
    of(dir)
}

/// 128 bits no other directory has: the kernel's random UUID where there is
/// one, else a hash of what makes this moment and place unique.
fn new_id(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{uuid}|{}|{}|{nanos}|{}",
        crate::host::local_host_name(),
        std::process::id(),
        dir.display()
    );
    crate::sqlite_file::hex(&Sha256::digest(seed.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(of(dir.path()), None);
        let id = ensure(dir.path()).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(ensure(dir.path()), Some(id.clone()));
        assert_eq!(of(dir.path()), Some(id));
        let other = tempfile::tempdir().unwrap();
        assert_ne!(ensure(other.path()), of(dir.path()));
    }

    #[test]
    fn a_copy_of_the_directory_gets_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let id = ensure(dir.path()).unwrap();
        let copy = tempfile::tempdir().unwrap();
        std::fs::create_dir(copy.path().join(STATE_DIR)).unwrap();
        std::fs::copy(
            dir.path().join(STATE_DIR).join(FILE),
            copy.path().join(STATE_DIR).join(FILE),
        )
        .unwrap();
        assert_eq!(of(copy.path()), None);
        let own = ensure(copy.path()).unwrap();
        assert_ne!(own, id);
        assert_eq!(of(copy.path()), Some(own));
        assert_eq!(of(dir.path()), Some(id));
    }
}
