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
/// (polled; each question is bounded on its own): those still running then.
/// Outside SLURM, or when the node's slurmd cannot be asked, none are known.
pub(crate) fn still_running(job: &JobContext, wait: Duration) -> Vec<String> {
    let Some(id) = job.own_id.as_deref() else {
        return Vec::new();
    };
    let own_step = std::env::var("SLURM_STEP_ID").ok();
    let started = Instant::now();
    loop {
        let steps = match scheduler::steps_here(id, own_step.as_deref()) {
            Ok(steps) => steps,
            Err(failure) => {
                tracing::debug!("cannot tell which steps of job {id} still run: {failure}");
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
