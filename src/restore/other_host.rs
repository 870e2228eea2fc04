//! A restore point made on another host, restored onto a node-local disk
//! (README "Whose backup is it"). A database is identified by its path only, so
//! jobs that keep `/tmp/results.db` on each node's own disk and back up into one
//! shared directory are one database to dbbackup: node A's `restore latest`
//! may choose node B's backup. The host recorded in the backup tells; the
//! filesystem type says whether the path can name the same file on both hosts.
//! Warned, not refused: staging a database onto node-local scratch from the
//! shared backup directory on whichever node a job lands is the normal HPC
//! pattern, and refusing it would break `restore latest --if-db-missing`.

use std::path::Path;

use nix::sys::statfs::{FsType, statfs};

use crate::error::show;
use crate::store::Entry;

/// Filesystems one path reaches from every node (`f_type` of statfs(2)):
/// NFS, Lustre, GPFS, BeeGFS, CephFS, CIFS/SMB (three magics), AFS, GFS2,
/// OCFS2, and FUSE (sshfs, s3fs and most site-mounted shared stores).
const SHARED: &[(i64, &str)] = &[
    (0x6969, "nfs"),
    (0x0BD0_0BD0, "lustre"),
    (0x4750_4653, "gpfs"),
    (0x1983_0326, "beegfs"),
    (0x00C3_6400, "ceph"),
    (0xFF53_4D42, "cifs"),
    (0xFE53_4D42, "smb2"),
    (0x517B, "smb"),
    (0x5346_414F, "afs"),
    (0x0116_1970, "gfs2"),
    (0x7461_636F, "ocfs2"),
    (0x6573_5546, "fuse"),
];

/// Names for the usual local types, for the message only.
const LOCAL: &[(i64, &str)] = &[
    (0xEF53, "ext4"),
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
    (0x0102_1994, "tmpfs"),
    (0x794C_7630, "overlay"),
    (0x2FC1_2FC1, "zfs"),
];

/// Whether a filesystem of type `magic` is seen the same from every node.
fn is_shared(magic: i64) -> bool {
    SHARED.iter().any(|(m, _)| *m == magic)
}

/// The node-local filesystem type `dir` is on (its name, or its magic in hex);
/// `None` when shared or when it cannot be told (never a false alarm).
fn node_local_type(dir: &Path) -> Option<String> {
    let FsType(magic) = statfs(dir).ok()?.filesystem_type();
    #[allow(clippy::unnecessary_cast)] // fs_type_t is i64 or i32 by target
    let magic = magic as i64;
    if is_shared(magic) {
        return None;
    }
    Some(match LOCAL.iter().find(|(m, _)| *m == magic) {
        Some((_, name)) => (*name).to_string(),
        None => format!("type {magic:#x}"),
    })
}

/// One warning line when `entry` was made on another host and `target`'s
/// directory `dir` is on a node-local filesystem.
pub(super) fn warn(entry: &Entry, target: &Path, dir: &Path) {
    let Ok(meta) = &entry.meta else {
        return;
    };
    let here = crate::host::local_host_name();
    if meta.host.is_empty() || meta.host == here {
        return;
    }
    let Some(fs_type) = node_local_type(dir) else {
        return;
    };
    tracing::warn!(
        "{} was made on host {}, not on {here}, and {} is on a node-local filesystem ({fs_type}): if {} holds its own database at this path, this is that database's content (a database is identified by its path: give node-local databases distinct paths or backup directories)",
        entry.file_name,
        meta.host,
        show(target),
        meta.host
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_filesystems_are_told_from_local_ones() {
        for (magic, _) in SHARED {
            assert!(is_shared(*magic));
        }
        for (magic, _) in LOCAL {
            assert!(!is_shared(*magic));
        }
        // Whatever the test machine's /tmp is, it can be judged without error.
        let _ = node_local_type(Path::new("/tmp"));
    }
}
