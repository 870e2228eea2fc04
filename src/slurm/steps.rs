//! The job's steps still running after a termination signal. A batch script's
//! `srun …` starts tasks that are slurmstepd's children, not the script's:
//! SLURM signals them itself and lets them run until KillWait, past the reach
//! of `run` (which stops only what the work started). A backup made while one
//! runs misses what it writes next (a checkpoint on TERM), so post-job waits
//! for them while time allows and names those still running.

use std::time::{Duration, Instant};

use super::job::JobContext;
use super::scheduler;

/// The job's numbered steps with tasks on this node, waited for up to `wait`
/// (polled; each question is bounded on its own): those still running then,
/// or `unknown` when the node's slurmd did not answer in time. Outside SLURM,
/// or for a job with no steps on this node, none.
pub(crate) fn still_running(job: &JobContext, wait: Duration) -> Vec<String> {
    let Some(id) = job.own_id.as_deref() else {
        return Vec::new();
    };
    let own_step = std::env::var("SLURM_STEP_ID").ok();
    let started = Instant::now();
    loop {
        let steps = match scheduler::steps_here(id, own_step.as_deref()) {
            Ok(steps) => steps,
            // No answer in time (a stuck slurmd): said, and on the line.
            Err(failure @ scheduler::Failure::TimedOut(..)) => {
                tracing::warn!(
                    "cannot tell whether steps of job {id} still run on this node ({failure}): what one writes after this backup would be in no backup"
                );
                return vec!["unknown".to_string()];
            }
            // Refused: the job has no steps on this node (or no SLURM here).
            Err(failure) => {
                tracing::debug!("no steps of job {id} known on this node: {failure}");
                return Vec::new();
            }
        };
        if steps.is_empty() || started.elapsed() + POLL >= wait {
            return steps;
        }
        std::thread::sleep(POLL);
    }
}

const POLL: Duration = Duration::from_millis(100);
