//! Retention's plan with the restore points kept for jobs that may still run
//! (`array::Pin`, pre-job's promise), and why each is kept beyond the policy.
//!
//! A job whose post-job ran after SLURM's TERM (scancel, time limit,
//! preemption) never says it ended: it may be requeued. Its pin would last
//! `PROTECT_FOR` (14 days), one full copy beyond `max_backups` per such job.
//! So when a pin holds a restore point the policy would delete, the scheduler
//! is asked whether the job still exists; one that ended for good (every run
//! or task in a final state) is marked ended and its pin dropped. The question
//! is asked at retention time only, never after a TERM (the controller is
//! then at its busiest and every second counts toward KillWait); when the
//! scheduler cannot tell (no SLURM here, another cluster's job, a controller
//! that does not answer, a job it forgot without accounting), the pin stays:
//! the safe side.

use std::collections::HashSet;

use super::array::{JobState, Pin};
use super::scheduler;
use crate::lock::DirLock;
use crate::restored;
use crate::retention::{self, KeepOrDelete, Policy};
use crate::store::{BackupDir, DbId};

/// `db`'s retention plan in `dir` with the pins that hold, and those pins.
/// With `lock`, a job the scheduler says ended is marked ended (asked once).
pub(crate) fn plan(
    dir: &BackupDir,
    db: &DbId,
    policy: Policy,
    lock: Option<&DirLock>,
) -> crate::error::Result<(KeepOrDelete, Vec<Pin>)> {
    let set = dir.set(db)?;
    let restored = restored::read(dir.path(), db);
    let mut pins = JobState::pins(dir);
    let mut plan = retention::plan(&set, policy, &names(&pins), restored.as_ref());
    if !plan.pinned.is_empty() && may_ask() {
        let before = pins.len();
        pins = settle(dir, pins, &plan.pinned, lock);
        if pins.len() != before {
            plan = retention::plan(&set, policy, &names(&pins), restored.as_ref());
        }
    }
    // A file holding another backup under its name, that backup here under
    // its own, is no evidence to keep: its bytes are that backup's. Kept, it
    // would pass for a backup of its own once retention deleted the original
    // (T32 G6). One whose backup is not here (renamed) is the only file of
    // it: never deleted (T35 R2, R9).
    let copies = dir.copies()?;
    plan.keep.retain(|name| {
        !copies
            .get(name)
            .is_some_and(crate::store::copies::Copy::deletable)
    });
    plan.delete.retain(|name| {
        copies
            .get(name)
            .is_none_or(crate::store::copies::Copy::deletable)
    });
    for (name, copy) in &copies {
        if copy.deletable()
            && set.own_files().any(|e| &e.file_name == name)
            && !plan.delete.contains(name)
        {
            plan.delete.push(name.clone());
        }
    }
    Ok((plan, pins))
}

/// The backups `pins` keep.
pub(crate) fn names(pins: &[Pin]) -> HashSet<String> {
    pins.iter().map(|pin| pin.backup.clone()).collect()
}

/// Why `name` is kept beyond the policy, if a pin keeps it.
pub(crate) fn why(pins: &[Pin], name: &str) -> Option<String> {
    let pin = pins.iter().find(|pin| pin.backup == name)?;
    Some(format!(
        "pre-job restore point of job {}, which may be requeued (until {})",
        pin.job().1,
        pin.until.strftime("%Y-%m-%d %H:%M UTC")
    ))
}

/// Say (INFO) each restore point kept beyond the policy for a job, and why.
pub(crate) fn say_kept(plan: &KeepOrDelete, pins: &[Pin]) {
    for name in &plan.pinned {
        if let Some(why) = why(pins, name) {
            tracing::info!("retention keeps {name} beyond max_backups: {why}");
        }
    }
}

/// Not after a signal (SLURM's TERM: post-job is bounded, the controller busy).
fn may_ask() -> bool {
    crate::signals::remaining().is_none() && crate::signals::received().is_none()
}

/// `pins` without those of jobs the scheduler says ended for good, asked only
/// about pins that keep one of `kept_by_pin`.
fn settle(
    dir: &BackupDir,
    pins: Vec<Pin>,
    kept_by_pin: &[String],
    lock: Option<&DirLock>,
) -> Vec<Pin> {
    // Job ids repeat across clusters sharing a filesystem: only this cluster's
    // jobs (or those recorded without a cluster name) are asked about.
    let cluster = match scheduler::show_config() {
        Ok(config) => config.cluster_name,
        Err(why) => {
            tracing::debug!("pinned restore points kept: scheduler not asked ({why})");
            return pins;
        }
    };
    let state = lock.and_then(|lock| JobState::open(dir, lock).ok());
    pins.into_iter()
        .filter(|pin| {
            let (on, id) = pin.job();
            let ours = on == "-" || Some(on) == cluster.as_deref();
            if !kept_by_pin.contains(&pin.backup) || !ours || !id.bytes().all(|b| b.is_ascii_digit()) {
                return true;
            }
            match scheduler::ended_for_good(id) {
                Ok(true) => {
                    tracing::info!(
                        "job {id} ended (the scheduler says so): its pre-job restore point {} is no longer kept for it",
                        pin.backup
                    );
                    if let Some(state) = &state
                        && let Err(e) = state.mark_ended(&pin.key)
                    {
                        tracing::debug!("job {id} not marked ended: {e}");
                    }
                    false
                }
                Ok(false) => true,
                Err(why) => {
                    tracing::debug!("job {id}'s restore point kept: {why}");
                    true
                }
            }
        })
        .collect()
}
