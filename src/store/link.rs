//! Where a database path that is a symbolic link leads, also when the file it
//! names is gone (a link into a purged scratch directory: the case restores are
//! for). One answer for `restore` (which restores into that file) and for
//! [`super::DbId`] (whose backups they are), so no command calls a lost
//! database's backups another database's.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result, show};

/// The file a chain of symbolic links ends at, which need not exist: its
/// directory canonical when that exists (the file beside which a restore puts
/// its temp file), else the path as the last link names it.
pub(crate) fn end_of(link: &Path) -> Result<PathBuf> {
    let mut path = link.to_path_buf();
    // As the kernel does: a loop of links is an error, not a hang.
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let next = fs::read_link(&path)
                    .context(|| format!("cannot read symbolic link {}", show(&path)))?;
                path = match path.parent() {
                    Some(parent) => parent.join(next),
                    None => next,
                };
            }
            _ => return Ok(with_real_dir(path)),
        }
    }
    Err(Error::failed(format!(
        "{} is a loop of symbolic links; give the real path of the database",
        show(link)
    )))
}

/// `path` with its directory canonical, when that directory exists.
fn with_real_dir(path: PathBuf) -> PathBuf {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return path;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    match fs::canonicalize(parent) {
        Ok(parent) => parent.join(name),
        // Missing: the restore engine says so, naming it.
        Err(_) => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dangling_chain_ends_at_the_file_the_last_link_names() {
        let root = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(root.path()).unwrap().join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink("real/a.db", root.path().join("b.db")).unwrap();
        std::os::unix::fs::symlink("b.db", root.path().join("c.db")).unwrap();
        assert_eq!(
            end_of(&root.path().join("c.db")).unwrap(),
            real.join("a.db")
        );
        std::os::unix::fs::symlink("loop", root.path().join("loop")).unwrap();
        assert!(end_of(&root.path().join("loop")).is_err());
    }
}
