//! The last stage of a backup, once it is published: retention over the
//! database's backups, then copies to the mirrors.

use std::path::PathBuf;

use super::Target;
use crate::config::Settings;
use crate::error::{Result, show};
use crate::lock::DirLock;
use crate::mirror::{self, MirrorResult};
use crate::retention::{self, Policy};
use crate::sqlite_file;
use crate::store::Entry;
use crate::store::metadata::{CheckResult, Metadata};

/// What is kept, and where copies go.
pub(crate) struct Keep<'a> {
    pub policy: Policy,
    pub mirrors: &'a [PathBuf],
    /// How long to wait for a mirror's lock.
    pub lock_wait: std::time::Duration,
}

impl<'a> Keep<'a> {
    pub(crate) fn of(settings: &'a Settings) -> Self {
        Keep {
            policy: retention::policy(settings),
            mirrors: &settings.mirror_dirs,
            lock_wait: settings.lock_timeout,
        }
    }
}

/// What retention deleted, and how each mirror's copy went.
pub(crate) struct Kept {
    pub pruned: Vec<String>,
    pub mirrors: Vec<MirrorResult>,
}

/// Apply retention, then copy a good backup to every mirror; a failed snapshot
/// is said loudly and copied nowhere.
pub(crate) fn retain_and_copy(
    entry: &Entry,
    meta: &Metadata,
    target: &Target,
    lock: &DirLock,
    keep: &Keep,
) -> Result<Kept> {
    // Published first, then retention: also after a failed snapshot, which is
    // what bounds the evidence a corrupt database leaves behind.
    // Restore points of jobs still running are kept (pre-job's promise).
    let (mut plan, pins) =
        crate::slurm::pins::plan(target.dir, target.id, keep.policy, Some(lock))?;
    if meta.kind == crate::store::metadata::Kind::PreRestore {
        // A restore's undo copy prunes only undo copies: a restore deleting
        // restore points was news to its user (T28 F13; README: retention
        // runs after a new backup), the next backup's retention does that.
        let pre_restore: std::collections::HashSet<String> = target
            .dir
            .set(target.id)?
            .pre_restore
            .iter()
            .map(|e| e.file_name.clone())
            .collect();
        plan.delete.retain(|name| pre_restore.contains(name));
    }
    retention::say_held(&plan, keep.policy);
    retention::say_undo(&plan);
    crate::slurm::pins::say_kept(&plan, &pins);
    retention::apply(target.dir, &plan)?;
    let pruned = plan.delete;
    let protected = crate::slurm::pins::names(&pins);
    let mut mirrors = Vec::new();
    if meta.check == CheckResult::Ok {
        mirrors = mirror::copy_to_all(
            keep.mirrors,
            entry,
            target.id,
            target.job,
            keep.lock_wait,
            keep.policy,
            &protected,
        );
    } else {
        let detail = meta.check_detail.as_deref().unwrap_or("");
        let (db, check) = (show(target.db), sqlite_file::one_line(detail));
        let kind = meta.check_kind;
        if meta.kind == crate::store::metadata::Kind::PreRestore {
            // The corrupt database a restore replaces: the restore's point, no
            // error of it (T28b: an ERROR line beside exit 0).
            tracing::warn!(
                "{db} failed its integrity check ({kind}: {check}); its content is kept as {}",
                entry.file_name
            );
        } else {
            tracing::error!(
                "snapshot of {db} failed its integrity check ({kind}: {check}); kept as {}",
                entry.file_name
            );
        }
        tracing::debug!("{kind} output:\n{detail}");
    }
    Ok(Kept { pruned, mirrors })
}
