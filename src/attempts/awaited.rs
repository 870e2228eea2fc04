//! A pre-job backup is half of a job's protection: its post-job backup holds
//! the work. When the newest attempt is a pre-job whose job has ended without
//! a post-job (its `run` SIGKILLed by the OOM killer, a node failure), what the
//! work wrote is in no backup, and `check` must not call that healthy (T23 #12).
//! A record names how to ask whether its job still runs: SLURM for a job, the
//! process for a `dbbackup run` outside SLURM.

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::slurm::array::{FinalJob, JobState};
use crate::slurm::job::JobContext;
use crate::slurm::scheduler::{self, JobId, Running};
use crate::store::{BackupDir, DbId};

/// Who still owes a post-job backup after a successful pre-job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PostJobDue {
    /// The SLURM job (the array's id for an array task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The supervising `dbbackup run` outside SLURM, and what tells it from a
    /// later process given the same pid: its start (clock ticks after boot)
    /// and the boot it started in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
}

impl PostJobDue {
    /// What a pre-job of `job` leaves owed, in this process: a SLURM job's id,
    /// or `run`'s own process outside SLURM. A bare `pre-job` outside SLURM
    /// owes nothing anyone can ask about.
    pub(crate) fn of(job: &JobContext) -> Option<PostJobDue> {
        let none = PostJobDue {
            slurm_job: None,
            cluster: None,
            pid: None,
            started: None,
            boot: None,
        };
        if job.own_id.is_some() {
            Some(PostJobDue {
                slurm_job: Some(job.job_id().to_string()),
                cluster: job.cluster.clone(),
                ..none
            })
        } else if crate::signals::supervising() {
            Some(PostJobDue {
                pid: Some(job.pid),
                started: start_ticks(job.pid),
                boot: boot_id(),
                ..none
            })
        } else {
            None
        }
    }

    /// Who owes it, for a line: `job 264`, `` `dbbackup run` (pid 77 on n1) ``.
    pub(crate) fn who(&self, host: &str) -> String {
        match (&self.slurm_job, self.pid) {
            (Some(job), _) => format!("job {job}"),
            (None, Some(pid)) => format!("`dbbackup run` (pid {pid} on {host})"),
            (None, None) => "its job".to_string(),
        }
    }

    /// Whether the job that owes the post-job backup of `db` (backed up in
    /// `dir`) still runs, as far as this host can tell; `host` is where the
    /// pre-job ran. Asked once per process (`check --format prometheus` and
    /// `periodic` judge the record twice: one answer for both).
    pub(crate) fn judge(&self, host: &str, dir: &Path, db: &DbId) -> Awaited {
        static JUDGED: Mutex<Option<(PostJobDue, Awaited)>> = Mutex::new(None);
        let mut judged = JUDGED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((due, answer)) = judged.as_ref()
            && due == self
        {
            return answer.clone();
        }
        let answer = match (&self.slurm_job, self.pid) {
            (Some(job), _) => slurm_job(job, self.cluster.as_deref(), dir, db),
            (None, Some(pid)) => self.local_run(pid, host),
            (None, None) => Awaited::CannotTell("the record names no job".into()),
        };
        *judged = Some((self.clone(), answer.clone()));
        answer
    }

    fn local_run(&self, pid: u32, host: &str) -> Awaited {
        let here = crate::host::sanitize(&crate::host::local_host_name());
        if here != host {
            return Awaited::CannotTell(format!("it ran on host {host}, not this one"));
        }
        use nix::errno::Errno;
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None) {
            Err(Errno::ESRCH) => return Awaited::Ended("no longer running".into()),
            // Another user's process (`check` run by monitoring): it exists.
            Err(Errno::EPERM) | Ok(()) => {}
            Err(other) => return Awaited::CannotTell(format!("kill -0: {other}")),
        }
        if self.boot.is_some() && boot_id() != self.boot {
            return Awaited::Ended("the host has rebooted since".into());
        }
        match (start_ticks(pid), self.started) {
            // /proc hidden (hidepid) or another pid namespace: unknown.
            (None, _) => Awaited::CannotTell(format!("pid {pid} cannot be read in /proc")),
            (Some(now), Some(then)) if now != then => {
                Awaited::Ended("no longer running (its pid is another process's now)".into())
            }
            _ => Awaited::Running("its process is alive".into()),
        }
    }
}

/// Where the post-job backup a pre-job left owed stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Awaited {
    /// Its job has not ended: what says so (`SLURM: RUNNING`, `pid 77 still
    /// runs`, the array's final job to come).
    Running(String),
    /// Its job has ended without it: what says so.
    Ended(String),
    /// Its job has ended without it, but the database still holds the state
    /// of the pre-job's backup: nothing is lost.
    EndedUnchanged(String),
    /// Nobody here can tell (no SLURM, another host): why.
    CannotTell(String),
}

fn slurm_job(job: &str, cluster: Option<&str>, dir: &Path, db: &DbId) -> Awaited {
    if !scheduler::installed() {
        return Awaited::CannotTell("SLURM's scontrol is not installed here".into());
    }
    // Another cluster's job id means nothing to this controller.
    if let Some(recorded) = cluster
        && let Ok(config) = scheduler::show_config()
        && let Some(here) = config.cluster_name.as_deref()
        && here != recorded
    {
        return Awaited::CannotTell(format!(
            "it ran on cluster {recorded}, this host is on {here}"
        ));
    }
    let ended = match scheduler::running(job) {
        Ok(Running::Yes(state)) => return Awaited::Running(format!("SLURM: {state}")),
        Ok(Running::No) => "SLURM says it has ended".to_string(),
        Ok(Running::Unknown) => "SLURM no longer knows it: it ended a while ago".to_string(),
        Err(failure) => return Awaited::CannotTell(format!("SLURM could not be asked: {failure}")),
    };
    // An array whose tasks did not all finish: its final job backs it up.
    let key = crate::slurm::array::key(&crate::slurm::job::state_key(cluster, job), db);
    let final_job = JobState::reader(&BackupDir::new(dir))
        .pre_job(&key)
        .and_then(|record| record.final_job);
    if let Some(FinalJob::Submitted(JobId(id))) = final_job
        && let Ok(Running::Yes(state)) = scheduler::running(&id)
    {
        return Awaited::Running(format!(
            "its tasks have ended; the array's final job {id} is to back it up (SLURM: {state})"
        ));
    }
    Awaited::Ended(ended)
}

/// When process `pid` started, in clock ticks after boot (`/proc/PID/stat`
/// field 22); `None` when it cannot be read.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(pid: u32) -> PostJobDue {
        PostJobDue {
            slurm_job: None,
            cluster: None,
            pid: Some(pid),
            started: start_ticks(pid),
            boot: boot_id(),
        }
    }

    #[test]
    fn a_live_process_runs_a_dead_or_reused_pid_has_ended() {
        let me = std::process::id();
        let host = crate::host::sanitize(&crate::host::local_host_name());
        assert!(start_ticks(me).is_some());
        assert!(matches!(
            run_of(me).local_run(me, &host),
            Awaited::Running(_)
        ));
        // Pid numbers stop far below this.
        let gone = 0x3fff_ffff;
        assert!(matches!(
            run_of(gone).local_run(gone, &host),
            Awaited::Ended(_)
        ));
        // The same pid, started at another time: another process now.
        let reused = PostJobDue {
            started: start_ticks(me).map(|t| t + 1),
            ..run_of(me)
        };
        assert!(matches!(reused.local_run(me, &host), Awaited::Ended(_)));
        assert!(matches!(
            run_of(me).local_run(me, "another-host"),
            Awaited::CannotTell(_)
        ));
    }
}
