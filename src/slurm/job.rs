//! Who is running: the SLURM job tag and host name that every log and summary
//! line carries, and the array-task facts that pre-job / post-job need.

use std::env;

pub use crate::host::{local_host_name, sanitize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayTask {
    pub array_job_id: String,
    pub task_id: u64,
    pub task_count: Option<u64>,
    /// `SLURM_ARRAY_TASK_MIN`, `_MAX`, `_STEP`: with the count, which ids exist
    /// (a sparse list like `1,3,5-7` has fewer than the range).
    pub range: Option<(u64, u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    /// `<array job>_<task>` in an array task, `<job id>` in a job, else `local`.
    pub tag: String,
    pub host: String,
    pub pid: u32,
    /// `SLURM_JOB_ID`: always this job's own id, even in an array task.
    pub own_id: Option<String>,
    /// What the environment claims; trusted only once `slurm::identity` has
    /// asked SLURM about `own_id` (inherited variables lie in a job submitted
    /// from inside an array task).
    pub array: Option<ArrayTask>,
    /// `SLURM_CLUSTER_NAME`: job ids repeat across clusters sharing a filesystem.
    pub cluster: Option<String>,
    /// `SLURM_RESTART_COUNT`: how many times this job (task) was requeued.
    pub restarts: u64,
    /// `SLURM_CPUS_PER_TASK`: the cores the job was given (a positive count).
    pub cpus_per_task: Option<usize>,
    /// In a batch job (`SLURM_JOB_ID` without `SLURM_PTY_PORT`, which `srun --pty`
    /// sets): nobody watches stderr as a terminal.
    pub batch: bool,
    /// `SLURM_JOB_ACCOUNT`, `SLURM_JOB_PARTITION`, `SLURM_JOB_QOS` as given
    /// (trimmed): what a job submitted on this job's behalf must carry.
    pub account: Option<String>,
    pub partition: Option<String>,
    pub qos: Option<String>,
}

impl JobContext {
    pub fn from_env() -> Self {
        Self::from_lookup(|name| env::var(name).ok(), local_host_name())
    }

    /// Built from a variable lookup so tests need not touch the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>, host: String) -> Self {
        let clean = |name: &str| var(name).map(|v| sanitize(&v)).filter(|v| !v.is_empty());
        // Passed to sbatch as arguments, never into a line or a file name: kept as is.
        let given = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let array = match (clean("SLURM_ARRAY_JOB_ID"), clean("SLURM_ARRAY_TASK_ID")) {
            (Some(array_job_id), Some(task)) => task.parse().ok().map(|task_id| ArrayTask {
                array_job_id,
                task_id,
                task_count: clean("SLURM_ARRAY_TASK_COUNT")
                    .and_then(|c| c.parse().ok())
                    .or_else(|| count_from_range(&clean)),
                range: range(&clean),
            }),
            _ => None,
        };
        let tag = match (&array, clean("SLURM_JOB_ID")) {
            (Some(task), _) => format!("{}_{}", task.array_job_id, task.task_id),
            (None, Some(job)) => job,
            (None, None) => "local".to_string(),
        };
        JobContext {
            tag,
            host: sanitize(&host),
            pid: std::process::id(),
            own_id: clean("SLURM_JOB_ID"),
            array,
            cluster: clean("SLURM_CLUSTER_NAME"),
            restarts: clean("SLURM_RESTART_COUNT")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            cpus_per_task: var("SLURM_CPUS_PER_TASK")
                .and_then(|v| v.trim().parse().ok())
                .filter(|&n| n > 0),
            batch: var("SLURM_JOB_ID").is_some() && var("SLURM_PTY_PORT").is_none(),
            account: given("SLURM_JOB_ACCOUNT"),
            partition: given("SLURM_JOB_PARTITION"),
            qos: given("SLURM_JOB_QOS"),
        }
    }
}

/// One task of a job step that runs several (`srun -n 8 dbbackup run -- CMD`):
/// srun sets these for each task; the batch script itself has none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepTask {
    pub step: String,
    pub task: u64,
    pub tasks: u64,
}

/// This process's [`StepTask`], when its step runs more than one task.
pub(crate) fn step_task() -> Option<StepTask> {
    step_task_from(|name| env::var(name).ok())
}

fn step_task_from(var: impl Fn(&str) -> Option<String>) -> Option<StepTask> {
    let number = |name: &str| var(name)?.trim().parse::<u64>().ok();
    let tasks = number("SLURM_STEP_NUM_TASKS").filter(|&n| n > 1)?;
    Some(StepTask {
        step: sanitize(&var("SLURM_STEP_ID")?),
        task: number("SLURM_PROCID")?,
        tasks,
    })
}

/// Older SLURM sets only MIN, MAX and STEP; `1-10:3` has 4 tasks.
fn count_from_range(clean: &impl Fn(&str) -> Option<String>) -> Option<u64> {
    let (min, max, step) = range(clean)?;
    Some((max - min) / step + 1)
}

fn range(clean: &impl Fn(&str) -> Option<String>) -> Option<(u64, u64, u64)> {
    let get = |name: &str| clean(name).and_then(|v| v.parse::<u64>().ok());
    let (min, max) = (get("SLURM_ARRAY_TASK_MIN")?, get("SLURM_ARRAY_TASK_MAX")?);
    let step = get("SLURM_ARRAY_TASK_STEP").unwrap_or(1).max(1);
    (max >= min).then_some((min, max, step))
}

impl JobContext {
    /// The id that names the whole job: the array's id in an array task.
    pub fn job_id(&self) -> &str {
        match &self.array {
            Some(task) => &task.array_job_id,
            None => &self.tag,
        }
    }

    /// This job as SLURM's word makes it: `array` the task it is (`None`: not
    /// an array task, its own job whatever it inherited).
    pub fn with_array(&self, array: Option<ArrayTask>) -> JobContext {
        let mut job = self.clone();
        job.tag = match (&array, &self.own_id) {
            (Some(task), _) => format!("{}_{}", task.array_job_id, task.task_id),
            (None, Some(own)) => own.clone(),
            (None, None) => "local".to_string(),
        };
        job.array = array;
        job
    }

    /// `<cluster>-<job id>`: what names this job's shared state, unique across
    /// clusters that share the filesystem.
    pub fn state_key(&self) -> String {
        state_key(self.cluster.as_deref(), self.job_id())
    }
}

/// `<cluster>-<job id>` for a job of `cluster` (`-` when SLURM names none).
pub fn state_key(cluster: Option<&str>, job_id: &str) -> String {
    format!("{}-{}", cluster.unwrap_or("-"), sanitize(job_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_of_a_step_of_several_and_not_the_batch_script() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_string())
            }
        };
        const TASK: [(&str, &str); 3] = [
            ("SLURM_STEP_ID", "0"),
            ("SLURM_STEP_NUM_TASKS", "8"),
            ("SLURM_PROCID", "3"),
        ];
        assert_eq!(
            step_task_from(vars(&TASK)),
            Some(StepTask {
                step: "0".into(),
                task: 3,
                tasks: 8
            })
        );
        // The batch script (SLURM_NTASKS=8, no step variables), one task.
        assert_eq!(
            step_task_from(vars(&[("SLURM_NTASKS", "8"), ("SLURM_PROCID", "0")])),
            None
        );
        const ONE: [(&str, &str); 3] = [
            ("SLURM_STEP_ID", "0"),
            ("SLURM_STEP_NUM_TASKS", "1"),
            ("SLURM_PROCID", "0"),
        ];
        assert_eq!(step_task_from(vars(&ONE)), None);
    }

    fn ctx(vars: &[(&str, &str)]) -> JobContext {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        JobContext::from_lookup(
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            "node 1\n".into(),
        )
    }

    #[test]
    fn tag_prefers_array_then_job_then_local() {
        assert_eq!(ctx(&[]).tag, "local");
        assert_eq!(ctx(&[("SLURM_JOB_ID", "77")]).tag, "77");
        let array = ctx(&[
            ("SLURM_JOB_ID", "78"),
            ("SLURM_ARRAY_JOB_ID", "70"),
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "16"),
        ]);
        assert_eq!(array.tag, "70_3");
        assert_eq!(array.job_id(), "70");
        assert_eq!(array.array.unwrap().task_count, Some(16));
        let ranged = ctx(&[
            ("SLURM_ARRAY_JOB_ID", "70"),
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "10"),
            ("SLURM_ARRAY_TASK_STEP", "3"),
        ]);
        assert_eq!(ranged.array.unwrap().task_count, Some(4));
    }

    #[test]
    fn state_is_keyed_by_cluster_and_job() {
        let a = ctx(&[("SLURM_JOB_ID", "9"), ("SLURM_CLUSTER_NAME", "alpha")]);
        let b = ctx(&[("SLURM_JOB_ID", "9"), ("SLURM_CLUSTER_NAME", "beta")]);
        assert_eq!(a.state_key(), "alpha-9");
        assert_ne!(a.state_key(), b.state_key());
        assert_eq!(ctx(&[("SLURM_JOB_ID", "9")]).state_key(), "--9");
        let requeued = ctx(&[("SLURM_JOB_ID", "9"), ("SLURM_RESTART_COUNT", "2")]);
        assert_eq!(requeued.restarts, 2);
    }

    #[test]
    fn cores_and_batch_mode_are_read_here() {
        assert_eq!(
            ctx(&[("SLURM_CPUS_PER_TASK", " 4 ")]).cpus_per_task,
            Some(4)
        );
        assert_eq!(ctx(&[("SLURM_CPUS_PER_TASK", "0")]).cpus_per_task, None);
        assert_eq!(ctx(&[("SLURM_CPUS_PER_TASK", "x")]).cpus_per_task, None);
        assert!(!ctx(&[]).batch);
        assert!(ctx(&[("SLURM_JOB_ID", "9")]).batch);
        assert!(!ctx(&[("SLURM_JOB_ID", "9"), ("SLURM_PTY_PORT", "4000")]).batch);
    }

    #[test]
    fn hostile_values_are_neutralised_and_bounded() {
        let hostile = ctx(&[("SLURM_JOB_ID", "1 event=forged\nstatus=ok")]);
        assert_eq!(hostile.tag, "1_event_forged_status_ok");
        assert_eq!(hostile.host, "node_1");
        let huge = "9".repeat(10_000);
        assert_eq!(
            ctx(&[("SLURM_JOB_ID", &huge)]).tag.len(),
            crate::host::MAX_LABEL
        );
    }
}
