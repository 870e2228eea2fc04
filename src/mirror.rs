//! Mirrors: each new backup is copied to every `mirror_dirs` entry the same way it
//! was published (temp name, flush, no-replace link, directory flush), read back
//! and compared byte for byte by SHA-256, then retention runs there too. A failed
//! mirror is reported; the primary backup stays. A differential backup's base goes
//! first when the mirror lacks it, so a mirror never holds a diff without its base.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result, show};
use crate::lock::{DirLock, Wait};
use crate::retention::{self, Policy};
use crate::slurm::job::JobContext;
use crate::store::{BackupDir, DbId, Entry, copy_mode, link_no_replace, open_no_follow, sync_dir};

#[derive(Debug)]
pub struct MirrorResult {
    pub dir: PathBuf,
    pub result: std::result::Result<(), String>,
}

/// Copy `entry` into every mirror; never fails as a whole.
pub(crate) fn copy_to_all(
    mirrors: &[PathBuf],
    entry: &Entry,
    db: &DbId,
    job: &JobContext,
    lock_wait: Wait,
    policy: Policy,
    protected: &HashSet<String>,
) -> Vec<MirrorResult> {
    mirrors
        .iter()
        .map(|dir| {
            let result = copy_to(dir, entry, db, job, lock_wait, policy, protected)
                .map_err(|e| e.to_string());
            match &result {
                Ok(()) => tracing::info!("mirrored {} to {}", entry.file_name, show(dir)),
                Err(error) => tracing::error!("mirror {} failed: {error}", show(dir)),
            }
            MirrorResult {
                dir: dir.clone(),
                result,
            }
        })
        .collect()
}

fn copy_to(
    dir: &Path,
    entry: &Entry,
    db: &DbId,
    job: &JobContext,
    lock_wait: Wait,
    policy: Policy,
    protected: &HashSet<String>,
) -> Result<()> {
    let mirror = BackupDir::new(dir);
    mirror.ensure_exists()?;
    let _lock = DirLock::acquire(dir, job, lock_wait)?.ok_or_else(|| {
        Error::failed(format!("mirror {} is locked by another process", show(dir)))
    })?;
    mirror.remove_stale_temps();
    if let Some(diff) = entry.meta.as_ref().ok().and_then(|m| m.diff.as_ref())
        && std::fs::symlink_metadata(dir.join(&diff.base)).is_err()
    {
        let (base, _) = crate::diff::rebuild::base_of(entry)?;
        copy_file(dir, &base)?;
        tracing::info!("mirrored base {} to {}", base.file_name, show(dir));
    }
    copy_file(dir, entry)?;
    // Only this database's copies (a mirror may be shared as well); the primary's
    // restore points of running jobs are kept in mirrors too.
    let plan = retention::plan(&mirror.set(db)?, policy, protected);
    retention::apply(&mirror, &plan)
}

/// Copy one backup file into mirror `dir`: temp name, flush, read back and
/// compare, no-replace link, directory flush.
fn copy_file(dir: &Path, entry: &Entry) -> Result<()> {
    let mirror = BackupDir::new(dir);
    let mut temp = mirror.create_temp(copy_mode(&entry.path))?;
    let expected = {
        let mut source =
            open_no_follow(&entry.path).context(|| format!("cannot read {}", show(&entry.path)))?;
        let mut hashing = HashingWriter {
            inner: temp.file(),
            hasher: Sha256::new(),
        };
        io::copy(&mut source, &mut hashing)
            .context(|| format!("cannot copy to mirror {}", show(dir)))?;
        hashing.hasher.finalize()
    };
    temp.sync()?;
    let copied = sha256_of(temp.path())
        .context(|| format!("cannot read back mirror copy in {}", show(dir)))?;
    if copied[..] != expected[..] {
        return Err(Error::failed(format!(
            "mirror copy in {} differs from the backup",
            show(dir)
        )));
    }
    let target = dir.join(&entry.file_name);
    link_no_replace(temp.path(), &target)
        .context(|| format!("cannot publish mirror copy {}", show(&target)))?;
    drop(temp);
    sync_dir(dir)
}

fn sha256_of(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finalize().to_vec());
        }
        hasher.update(&buffer[..n]);
    }
}

struct HashingWriter<'a> {
    inner: &'a mut File,
    hasher: Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
