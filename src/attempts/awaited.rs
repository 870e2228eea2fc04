//! A pre-job backup is half of a job's protection: its post-job backup holds
//! the work. When the newest attempt is a pre-job whose job has ended without
//! a post-job (its `run` SIGKILLed by the OOM killer, a node failure), what the
//! work wrote is in no backup, and `check` must not call that healthy (T23 #12).
//! A record names how to ask whether its job still runs: SLURM for a job, the
//! process for a `dbbackup run` outside SLURM.

use serde::{Deserialize, Serialize};

use crate::slurm::job::JobContext;
use crate::slurm::scheduler::{self, Running};

/// Who still owes a post-job backup after a successful pre-job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PostJobDue {
    /// The SLURM job (the array's id for an array task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The supervising `dbbackup run` outside SLURM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl PostJobDue {
    /// What a pre-job of `job` leaves owed, in this process: a SLURM job's id,
    /// or `run`'s own pid outside SLURM. A bare `pre-job` outside SLURM owes
    /// nothing anyone can ask about.
    pub(crate) fn of(job: &JobContext) -> Option<PostJobDue> {
        if job.own_id.is_some() {
            Some(PostJobDue {
                slurm_job: Some(job.job_id().to_string()),
                cluster: job.cluster.clone(),
                pid: None,
            })
        } else if crate::signals::supervising() {
            Some(PostJobDue {
                slurm_job: None,
                cluster: None,
                pid: Some(job.pid),
            })
        } else {
            None
        }
    }

    /// Whether the job that owes the post-job backup still runs, as far as
    /// this host can tell; `host` is where the pre-job ran.
    pub(crate) fn judge(&self, host: &str) -> Awaited {
        match (&self.slurm_job, self.pid) {
            (Some(job), _) => slurm_job(job, self.cluster.as_deref()),
            (None, Some(pid)) => local_run(pid, host),
            (None, None) => Awaited::CannotTell("the record names no job".into()),
        }
    }
}

/// Where the post-job backup a pre-job left owed stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Awaited {
    /// Its job still runs: what says so (`SLURM: RUNNING`, `pid 77`).
    Running(String),
    /// Its job has ended without it: what says so.
    Ended(String),
    /// Nobody here can tell (no SLURM, another host): why.
    CannotTell(String),
}

fn slurm_job(job: &str, cluster: Option<&str>) -> Awaited {
    if !scheduler::installed() {
        return Awaited::CannotTell(format!(
            "SLURM's scontrol is not installed here to ask whether job {job} still runs"
        ));
    }
    // Another cluster's job id means nothing to this controller.
    if let Some(recorded) = cluster
        && let Ok(config) = scheduler::show_config()
        && let Some(here) = config.cluster_name.as_deref()
        && here != recorded
    {
        return Awaited::CannotTell(format!(
            "job {job} ran on cluster {recorded}, this host is on {here}"
        ));
    }
    match scheduler::running(job) {
        Ok(Running::Yes(state)) => Awaited::Running(format!("SLURM: {state}")),
        Ok(Running::No) => Awaited::Ended(format!("SLURM says job {job} has ended")),
        Ok(Running::Unknown) => Awaited::Ended(format!(
            "SLURM no longer knows job {job} (it ended a while ago)"
        )),
        Err(failure) => Awaited::CannotTell(format!("SLURM could not be asked: {failure}")),
    }
}

fn local_run(pid: u32, host: &str) -> Awaited {
    let here = crate::host::sanitize(&crate::host::local_host_name());
    if here != host {
        return Awaited::CannotTell(format!(
            "its `dbbackup run` (pid {pid}) ran on host {host}, not this one"
        ));
    }
    if is_dbbackup(pid) {
        Awaited::Running(format!("its `dbbackup run` (pid {pid}) still runs"))
    } else {
        Awaited::Ended(format!(
            "its `dbbackup run` (pid {pid}) is no longer running on this host"
        ))
    }
}

/// Whether `pid` is a live `dbbackup` process (not a zombie, not a pid reused
/// by another program).
fn is_dbbackup(pid: u32) -> bool {
    let live = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    });
    let program = std::fs::read(format!("/proc/{pid}/cmdline")).ok();
    let arg0 = program
        .as_deref()
        .and_then(|cmdline| cmdline.split(|&b| b == 0).next())
        .map(|arg0| String::from_utf8_lossy(arg0).into_owned());
    live && arg0.is_some_and(|arg0| {
        std::path::Path::new(&arg0)
            .file_name()
            .is_some_and(|name| name.to_string_lossy().contains("dbbackup"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_a_dbbackup_run_but_a_dead_pid_is_ended() {
        let me = std::process::id();
        // The unit-test binary is named `dbbackup-<hash>`: live and ours.
        assert!(is_dbbackup(me));
        let host = crate::host::sanitize(&crate::host::local_host_name());
        assert!(matches!(local_run(me, &host), Awaited::Running(_)));
        // Pid numbers stop far below this.
        assert!(matches!(local_run(4_000_000_000, &host), Awaited::Ended(_)));
        assert!(matches!(
            local_run(me, "another-host"),
            Awaited::CannotTell(_)
        ));
    }
}
