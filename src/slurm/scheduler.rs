//! The one place dbbackup runs the scheduler's commands (`sbatch`, `scontrol`,
//! `sacct`): one timeout for all of them, typed answers, never a hang. A stuck
//! controller costs a job at most [`TIMEOUT`] per question, and the caller
//! decides what to do without the answer (the job goes on).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any scheduler command may take. `scontrol` itself retries for
/// about `MessageTimeout` (10 s by default) before giving up on a controller.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(8);
/// After SLURM's TERM every second counts toward KillWait: a question asked
/// then (only by a job whose pre-job did not record KillWait) gets this long.
pub(crate) const AFTER_TERM_TIMEOUT: Duration = Duration::from_millis(2_500);

/// Why the scheduler gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The tool is not installed (not on a cluster, or PATH without it).
    Missing(&'static str),
    /// The tool did not answer in time (a stuck or unreachable controller).
    TimedOut(&'static str, Duration),
    /// This process was asked to stop while waiting.
    Interrupted(&'static str),
    /// The tool ran and refused: its exit status and first line of stderr.
    Refused(&'static str, String),
    /// `scontrol` refused because SLURM does not know the job (never was, or
    /// forgotten after `MinJobAge`); its first line of stderr.
    UnknownJob(String),
    /// It answered, but not what we asked (no such field).
    Unreadable(&'static str, String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Missing(tool) => write!(f, "{tool} not found"),
            Failure::TimedOut(tool, limit) => write!(
                f,
                "{tool} did not answer within {:.1} s (controller stuck or unreachable)",
                limit.as_secs_f64()
            ),
            Failure::Interrupted(tool) => write!(f, "{tool} interrupted by a signal"),
            Failure::Refused(_, why) | Failure::UnknownJob(why) => write!(f, "{why}"),
            Failure::Unreadable(tool, what) => write!(f, "{tool}: {what}"),
        }
    }
}

/// A job id as sbatch printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobId(pub String);

/// What `scontrol show config` says that dbbackup needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Config {
    pub cluster_name: Option<String>,
    /// Seconds between SLURM's TERM and KILL.
    pub kill_wait: Option<u64>,
}

/// What `scontrol show job ID` says of one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JobRecord {
    /// `(ArrayJobId, ArrayTaskId)` when SLURM says this job is an array task.
    pub array: Option<(String, u64)>,
    /// `SubmitTime`: for an array task, the array's submission; reset by a
    /// requeue (then `restarts` > 0).
    pub submitted: Option<jiff::Timestamp>,
    pub restarts: u64,
}

/// A task's end as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskEnd {
    pub state: String,
    pub exit_code: String,
}

/// Job states (`JobState=` of `scontrol`, `State` of `sacct`, first word) of a
/// task that has not ended: queued, running, held for a requeue. `COMPLETING`
/// is not among them: its work has ended (an `afterany` dependency is met).
const NOT_ENDED: [&str; 11] = [
    "PENDING",
    "RUNNING",
    "SUSPENDED",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
];

impl TaskEnd {
    /// Whether the scheduler says this task has not ended yet.
    pub(crate) fn not_ended(&self) -> bool {
        let word = self.state.split_whitespace().next().unwrap_or("");
        NOT_ENDED.contains(&word)
    }
}

/// The tasks of an array task list as SLURM prints a not-yet-split remainder
/// (`4-7%2`, `[4-7%2]`, `1,3,5-9:2`); `None` if it is not one. Bounded, as
/// SLURM's `MaxArraySize` is.
fn task_list(spec: &str) -> Option<Vec<u64>> {
    const MOST: u64 = 4_000_001;
    let spec = spec.trim_start_matches('[').trim_end_matches(']');
    let spec = spec.split_once('%').map_or(spec, |(list, _)| list);
    let mut tasks = Vec::new();
    for part in spec.split(',') {
        let (range, step) = part.split_once(':').unwrap_or((part, "1"));
        let step: u64 = step.parse().ok().filter(|s| *s > 0)?;
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?),
            None => (range.parse().ok()?, range.parse().ok()?),
        };
        if last < first || last - first > MOST || tasks.len() as u64 > MOST {
            return None;
        }
        tasks.extend((first..=last).step_by(usize::try_from(step).ok()?));
    }
    Some(tasks)
}

/// The tasks of `spec` (one task, or a remainder not yet split) with `end`:
/// a remainder only while it has not ended (an ended one reads as before:
/// not reported, named from pre-job's record).
fn insert_tasks(ends: &mut BTreeMap<u64, TaskEnd>, spec: &str, end: TaskEnd) {
    if let Ok(task) = spec.parse() {
        ends.insert(task, end);
    } else if end.not_ended() {
        for task in task_list(spec).unwrap_or_default() {
            ends.entry(task).or_insert_with(|| end.clone());
        }
    }
}

/// `sbatch --parsable ARGS`, with the caller's SLURM variables removed (they
/// would make the new job look like part of this one; `SLURM_CONF` is kept).
pub(crate) fn submit(args: &[String]) -> Result<JobId, Failure> {
    let text = run(
        "sbatch",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        true,
        TIMEOUT,
    )?;
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Failure::Unreadable(
            "sbatch",
            format!("no job id in {:?}", text.trim()),
        ));
    }
    Ok(JobId(id))
}

/// `scontrol show config`: the cluster's name and KillWait.
pub(crate) fn show_config() -> Result<Config, Failure> {
    show_config_within(TIMEOUT)
}

/// `show_config` after SLURM's TERM, in [`AFTER_TERM_TIMEOUT`].
pub(crate) fn show_config_after_term() -> Result<Config, Failure> {
    show_config_within(AFTER_TERM_TIMEOUT)
}

fn show_config_within(timeout: Duration) -> Result<Config, Failure> {
    let text = run("scontrol", &["show", "config"], false, timeout)?;
    let config = parse_config(&text);
    if config == Config::default() {
        return Err(Failure::Unreadable(
            "scontrol",
            "no ClusterName or KillWait in `scontrol show config`".into(),
        ));
    }
    Ok(config)
}

/// `scontrol show job ID -o`: the record whose `JobId` is `id` (array records
/// list every task; only this job's line counts).
/// Whether SLURM's commands are on PATH (a cluster's login or compute node).
pub(crate) fn installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("scontrol").is_file()))
}

/// Job `id`'s `SubmitTime` when SLURM knows it and it was never requeued (a
/// requeue resets it): what tells one job from an earlier one with its id.
pub(crate) fn first_run_submitted(id: &str) -> Option<jiff::Timestamp> {
    let record = show_job(id).ok()?;
    record.submitted.filter(|_| record.restarts == 0)
}

/// Asked once per process, whatever the answer (pre-job asks of its own job
/// twice: who it is, when it was submitted; a stuck controller costs one wait).
pub(crate) fn show_job(id: &str) -> Result<JobRecord, Failure> {
    type Answer = (String, Result<JobRecord, Failure>);
    static ANSWERED: std::sync::Mutex<Option<Answer>> = std::sync::Mutex::new(None);
    let mut answered = ANSWERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((asked, answer)) = answered.as_ref()
        && asked == id
    {
        return answer.clone();
    }
    let answer = run("scontrol", &["show", "job", id, "-o"], false, TIMEOUT).and_then(|text| {
        parse_job(&text, id)
            .ok_or_else(|| Failure::Unreadable("scontrol", format!("no record of job {id}")))
    });
    *answered = Some((id.to_string(), answer.clone()));
    answer
}

/// What SLURM says of whether a job (or every task of an array) has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Running {
    /// A state that is not final (`RUNNING`, `PENDING`, `COMPLETING`, …).
    Yes(String),
    /// Every record SLURM has of it is in a final state.
    No,
    /// SLURM does not know the job (never was, or forgotten after `MinJobAge`).
    Unknown,
}

/// `scontrol show job ID -o`: whether job (or array) `id` is still running;
/// once the controller forgot it, `sacct` where accounting is configured.
pub(crate) fn running(id: &str) -> Result<Running, Failure> {
    running_until(id).map(|(running, _)| running)
}

/// [`running`], and when it ended (the latest `EndTime` of its records, once
/// none runs, while the controller remembers it), from one `scontrol` call.
pub(crate) fn running_until(id: &str) -> Result<(Running, Option<jiff::Timestamp>), Failure> {
    match run("scontrol", &["show", "job", id, "-o"], false, TIMEOUT) {
        Ok(text) => Ok((parse_running(&text, id), parse_end(&text, id))),
        Err(failure) if unknown_job(&failure) => Ok((accounted(id), None)),
        Err(failure) => Err(failure),
    }
}

/// `sacct -j ID -X -o JobID,State`: every run of the job (its array's tasks),
/// `Unknown` without accounting or a record.
fn accounted(id: &str) -> Running {
    match run(
        "sacct",
        &["-j", id, "-n", "-P", "-X", "-o", "JobID,State"],
        false,
        TIMEOUT,
    ) {
        // `JobID|State` as `JobId=… JobState=…`; `CANCELLED by 0`: the word.
        Ok(text) => parse_running(
            &text
                .lines()
                .filter_map(|line| {
                    let mut fields = line.split('|');
                    let (job, state) = (fields.next()?, fields.next()?);
                    let array = job.split_once('_').map_or(job, |(array, _)| array);
                    let state = state.split_whitespace().next().unwrap_or("UNKNOWN");
                    Some(format!("JobId={job} ArrayJobId={array} JobState={state}\n"))
                })
                .collect::<String>(),
            id,
        ),
        Err(why) => {
            tracing::debug!("sacct: {why}");
            Running::Unknown
        }
    }
}

/// `scontrol show job` refused because SLURM does not know the job (never
/// was, or forgotten after `MinJobAge`), not because it cannot reach the
/// controller.
pub(crate) fn unknown_job(failure: &Failure) -> bool {
    matches!(failure, Failure::UnknownJob(_))
}

/// The first state that is not final among the records of `id` (the job, or
/// the array's tasks and its pending remainder).
pub(crate) fn parse_running(text: &str, id: &str) -> Running {
    const FINAL: [&str; 9] = [
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    ];
    let mut seen = false;
    for line in text.lines() {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        if field("JobId") != Some(id) && field("ArrayJobId") != Some(id) {
            continue;
        }
        seen = true;
        let state = field("JobState").unwrap_or("UNKNOWN");
        if !FINAL.contains(&state) {
            return Running::Yes(state.to_string());
        }
    }
    if seen { Running::No } else { Running::Unknown }
}

/// The final states of `array`'s tasks and where they came from: `sacct` where
/// accounting is configured, else `scontrol` while the controller remembers
/// the array, else none (`post-job-records`). Without states, the third value
/// is why the controller could not be asked (unreachable, stuck): then nobody
/// can tell whether the tasks ended. `None` when it said it forgot the array,
/// or when SLURM is not installed at all.
pub(crate) fn task_ends(array: &str) -> (&'static str, BTreeMap<u64, TaskEnd>, Option<Failure>) {
    match run(
        "sacct",
        &["-j", array, "-n", "-P", "-X", "-o", "JobID,State,ExitCode"],
        false,
        TIMEOUT,
    ) {
        Ok(text) => {
            let ends = parse_sacct(&text, array);
            if !ends.is_empty() {
                return ("sacct", ends, None);
            }
        }
        Err(why) => tracing::debug!("sacct: {why}"),
    }
    match run("scontrol", &["show", "job", array, "-o"], false, TIMEOUT) {
        Ok(text) => {
            let ends = parse_scontrol(&text, array);
            if !ends.is_empty() {
                return ("scontrol", ends, None);
            }
            ("post-job-records", BTreeMap::new(), None)
        }
        Err(why) if unknown_job(&why) || matches!(why, Failure::Missing(_)) => {
            tracing::debug!("scontrol: {why}");
            ("post-job-records", BTreeMap::new(), None)
        }
        Err(why) => ("post-job-records", BTreeMap::new(), Some(why)),
    }
}

/// States after which SLURM runs a job no more (`PREEMPTED` is not one: a
/// preempted job may be requeued).
const FINAL_STATES: &[&str] = &[
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
];

/// Whether job `id` (a job, or a whole array) ended for good: every run or
/// task the scheduler reports is in a final state (`CANCELLED by 0` too), none
/// pending, running or requeued. `scontrol` while the controller remembers the
/// job, else `sacct`; `Err` when neither tells (the caller keeps what it keeps
/// for the job: the safe side).
pub(crate) fn ended_for_good(id: &str) -> Result<bool, Failure> {
    let all_final = |states: &[&str]| {
        states
            .iter()
            .all(|s| FINAL_STATES.contains(&s.split(' ').next().unwrap_or("")))
    };
    let scontrol = run("scontrol", &["show", "job", id, "-o"], false, TIMEOUT);
    if let Ok(text) = &scontrol {
        let states = scontrol_states(text, id);
        if !states.is_empty() {
            return Ok(all_final(&states));
        }
    }
    let text = run(
        "sacct",
        &["-j", id, "-n", "-P", "-X", "-o", "JobID,State"],
        false,
        TIMEOUT,
    )?;
    let states = sacct_states(&text, id);
    if states.is_empty() {
        return Err(Failure::Unreadable(
            "sacct",
            format!("no record of job {id}"),
        ));
    }
    Ok(all_final(&states))
}

/// The `JobState` of each line of `scontrol show job ID -o` that is job `id`
/// or one of its array's tasks.
fn scontrol_states<'a>(text: &'a str, id: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| {
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            };
            (field("JobId") == Some(id) || field("ArrayJobId") == Some(id))
                .then(|| field("JobState").unwrap_or("UNKNOWN"))
        })
        .collect()
}

/// The states of `sacct -n -P -X -o JobID,State` lines of job `id` or its
/// array's tasks (`55_3`, a pending remainder `55_[4-7%2]`).
fn sacct_states<'a>(text: &'a str, id: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| {
            let (job, state) = line.split_once('|')?;
            let rest = job.strip_prefix(id)?;
            (rest.is_empty() || rest.starts_with('_')).then_some(state.trim())
        })
        .collect()
}

/// When a job started, as SLURM reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    pub at: jiff::Timestamp,
    /// Its first start (`false`: a requeued job whose first start SLURM no
    /// longer tells; `at` is then its last requeue, `SubmitTime`).
    pub first: bool,
}

/// When job `id` (a job, an array: its first task, or `264_3`) FIRST started:
/// `sacct --duplicates` (every run of a requeued job) earliest `Start`, else
/// `scontrol` while the controller remembers the job: its `StartTime` when it
/// was never requeued, else its `SubmitTime` (reset by a requeue: not the first
/// start, and said so).
pub(crate) fn start_time(id: &str) -> Result<Start, Failure> {
    let sacct = run(
        "sacct",
        &["-j", id, "-X", "-D", "-n", "-P", "-o", "JobID,Start"],
        false,
        TIMEOUT,
    )
    .map(|text| parse_sacct_start(&text, id));
    if let Ok(Some(at)) = sacct {
        return Ok(Start { at, first: true });
    }
    let text = run("scontrol", &["show", "job", id, "-o"], false, TIMEOUT)?;
    parse_start(&text, id)
        .ok_or_else(|| Failure::Unreadable("scontrol", format!("no start time for job {id}")))
}

/// The steps of job `id` (`srun` inside a batch script) with tasks on this
/// node, as `JOB.STEP`, but `own_step` (a `run` inside a step): asked of the
/// node's slurmd (`scontrol listpids`), not the controller, at TERM time.
pub(crate) fn steps_here(id: &str, own_step: Option<&str>) -> Result<Vec<String>, Failure> {
    let text = run("scontrol", &["listpids", id], false, AFTER_TERM_TIMEOUT)?;
    Ok(parse_steps(&text, id, own_step))
}

/// `PID JOBID STEPID LOCALID GLOBALID` lines: the numbered steps of job `id`.
pub(crate) fn parse_steps(text: &str, id: &str, own_step: Option<&str>) -> Vec<String> {
    let mut steps: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let (job, step) = (fields.next()?, fields.next()?);
            let numbered = step.split('+').all(|n| n.parse::<u32>().is_ok());
            (job == id && numbered && Some(step) != own_step).then(|| format!("{id}.{step}"))
        })
        .collect();
    steps.sort();
    steps.dedup();
    steps
}

/// Whether a record with these ids is job `id` or part of it: the job itself,
/// an array's task (`id` an array, or `ARRAY_TASK`), a heterogeneous job's
/// component. The scheduler's answer is checked, not trusted: `scontrol show
/// job 0` lists every job.
fn is_part_of(id: &str, job: Option<&str>, array: Option<(&str, &str)>, het: Option<&str>) -> bool {
    let of_array = match id.split_once('_') {
        Some((array_id, task)) => array == Some((array_id, task)),
        None => array.is_some_and(|(array_id, _)| array_id == id),
    };
    job == Some(id) || of_array || het == Some(id)
}

/// When job `id` (a job, or every task of an array) ended: the latest
/// `EndTime` of its records once none of them runs; `None` while one runs.
pub(crate) fn parse_end(text: &str, id: &str) -> Option<jiff::Timestamp> {
    if !matches!(parse_running(text, id), Running::No) {
        return None;
    }
    local_times(records_of(text, id).flat_map(|line| {
        line.split_whitespace()
            .filter_map(|kv| kv.strip_prefix("EndTime="))
    }))
    .max()
}

/// The lines of `scontrol show job ID -o` that are job `id`'s records (the
/// job, its array's tasks, its heterogeneous components).
fn records_of<'a>(text: &'a str, id: &str) -> impl Iterator<Item = &'a str> {
    text.lines().filter(move |line| {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        let array = field("ArrayJobId").zip(field("ArrayTaskId"));
        is_part_of(id, field("JobId"), array, field("HetJobId"))
    })
}

/// `sacct -o JobID,Start` lines of job `id`: the earliest start.
fn parse_sacct_start(text: &str, id: &str) -> Option<jiff::Timestamp> {
    earliest(text.lines().filter_map(|line| {
        let (job, start) = line.split_once('|')?;
        let (job, task) = match job.split_once('_') {
            Some((array, task)) => (None, Some((array, task))),
            None => (Some(job), None),
        };
        let het = job.and_then(|j| j.split_once('+')).map(|(het, _)| het);
        is_part_of(id, job, task, het).then_some(start)
    }))
}

/// The start of job `id` from `scontrol show job ID -o`, reading only the
/// records that are that job's.
pub(crate) fn parse_start(text: &str, id: &str) -> Option<Start> {
    let lines: Vec<&str> = records_of(text, id).collect();
    let field = |key: &'static str| {
        earliest(lines.iter().flat_map(move |line| {
            line.split_whitespace()
                .filter_map(move |kv| kv.strip_prefix(key))
        }))
    };
    let requeued = lines.iter().any(|line| {
        line.split_whitespace()
            .filter_map(|kv| kv.strip_prefix("Restarts="))
            .any(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
    });
    if requeued {
        field("SubmitTime=").map(|at| Start { at, first: false })
    } else {
        field("StartTime=").map(|at| Start { at, first: true })
    }
}

/// The earliest of SLURM's local times (`2026-12-05T18:22:06`; `Unknown`,
/// `None` skipped).
fn earliest<'a>(times: impl Iterator<Item = &'a str>) -> Option<jiff::Timestamp> {
    local_times(times).min()
}

/// SLURM's local times as instants (`Unknown`, `None` skipped).
fn local_times<'a>(times: impl Iterator<Item = &'a str>) -> impl Iterator<Item = jiff::Timestamp> {
    let zone = jiff::tz::TimeZone::system();
    times
        .filter_map(|t| t.trim().parse::<jiff::civil::DateTime>().ok())
        .filter_map(move |t| zone.to_ambiguous_timestamp(t).compatible().ok())
}

/// A scheduler command of this process did not answer in time.
static TIMED_OUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a scheduler command of this process has already timed out: a
/// question that only refines what is said is then not asked again.
pub(crate) fn timed_out_before() -> bool {
    TIMED_OUT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Run `tool ARGS` for at most [`TIMEOUT`]; its stdout when it exits 0.
fn run(
    tool: &'static str,
    args: &[&str],
    strip_slurm_env: bool,
    timeout: Duration,
) -> Result<String, Failure> {
    // SLURM's TERM reaches every process of a job, a scheduler command run
    // after it included (post-job's fallback KillWait question): the tool runs
    // with TERM ignored (inherited across exec); the timeout still bounds it.
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", "trap '' TERM; exec \"$0\" \"$@\"", tool])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills whatever it started too (a wrapper
        // script's children would otherwise hold the pipes open).
        .process_group(0);
    if strip_slurm_env {
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("SLURM_") && key != "SLURM_CONF" {
                command.env_remove(&key);
            }
        }
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Err(Failure::Refused(
                tool,
                format!("cannot run /bin/sh for {tool}: {e}"),
            ));
        }
    };
    let (sender, receiver) = mpsc::channel();
    for (which, pipe) in [
        (
            0,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            1,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let sender = sender.clone();
        // Read in threads: a full pipe must not stall the tool past the timeout.
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = sender.send((which, bytes));
        });
    }
    drop(sender);
    let started = Instant::now();
    let kill = |child: &mut std::process::Child| {
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Err(e) => return Err(Failure::Refused(tool, format!("{tool}: {e}"))),
            Ok(None) if crate::signals::pending().is_some() => {
                kill(&mut child);
                return Err(Failure::Interrupted(tool));
            }
            Ok(None) if started.elapsed() > timeout => {
                kill(&mut child);
                tracing::warn!(
                    "{tool} did not answer within {:.1} s; going on without it",
                    timeout.as_secs_f64()
                );
                TIMED_OUT.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(Failure::TimedOut(tool, timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    // Whatever the tool left running may still hold a pipe: bounded too.
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(200));
        match receiver.recv_timeout(left) {
            Ok((0, bytes)) => stdout = bytes,
            Ok((_, bytes)) => stderr = bytes,
            Err(_) => break,
        }
    }
    if status.success() {
        return Ok(String::from_utf8_lossy(&stdout).into_owned());
    }
    // The shell's answer for a command it cannot find.
    if status.code() == Some(127) {
        return Err(Failure::Missing(tool));
    }
    Err(refused(tool, status, &stderr))
}

/// A tool that ran and failed, by its first line of stderr.
fn refused(tool: &'static str, status: std::process::ExitStatus, stderr: &[u8]) -> Failure {
    let why = String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map_or_else(|| format!("{tool} failed ({status})"), str::to_string);
    let why = crate::sqlite_file::one_line(&why);
    // scontrol exits 1 both for a job it does not know and for a controller it
    // cannot reach: its words are its only answer, read here into a type once.
    if tool == "scontrol" && why.contains("Invalid job id") {
        return Failure::UnknownJob(why);
    }
    Failure::Refused(tool, why)
}

/// `ClusterName = x` and `KillWait = 5 sec` in `scontrol show config`.
pub(crate) fn parse_config(text: &str) -> Config {
    let mut config = Config::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim() {
            "ClusterName" => {
                config.cluster_name =
                    Some(value.trim().to_string()).filter(|v| !v.is_empty() && v != "(null)");
            }
            "KillWait" => {
                let mut words = value.split_whitespace();
                config.kill_wait = words
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|_| matches!(words.next(), None | Some("sec" | "secs" | "seconds")));
            }
            _ => {}
        }
    }
    config
}

/// The line of `scontrol show job ID -o` whose `JobId` is `id`.
pub(crate) fn parse_job(text: &str, id: &str) -> Option<JobRecord> {
    text.lines().find_map(|line| {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        (field("JobId")? == id).then(|| JobRecord {
            array: field("ArrayJobId")
                .zip(field("ArrayTaskId").and_then(|t| t.parse().ok()))
                .map(|(array, task)| (array.to_string(), task)),
            submitted: field("SubmitTime").and_then(|t| earliest(std::iter::once(t))),
            restarts: field("Restarts").and_then(|n| n.parse().ok()).unwrap_or(0),
        })
    })
}

/// `123_4|CANCELLED by 0|0:0` lines (`sacct -n -P -X -o JobID,State,ExitCode`).
pub(crate) fn parse_sacct(text: &str, array: &str) -> BTreeMap<u64, TaskEnd> {
    let mut ends = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split('|');
        let (Some(id), Some(state), Some(exit)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(task) = id
            .strip_prefix(array)
            .and_then(|rest| rest.strip_prefix('_'))
        else {
            continue;
        };
        let end = TaskEnd {
            state: state.trim().to_string(),
            exit_code: exit.trim().to_string(),
        };
        insert_tasks(&mut ends, task, end);
    }
    ends
}

/// `scontrol show job <array> -o`: one line per task, `ArrayJobId=… ArrayTaskId=…
/// JobState=… ExitCode=…`.
pub(crate) fn parse_scontrol(text: &str, array: &str) -> BTreeMap<u64, TaskEnd> {
    let mut ends = BTreeMap::new();
    for line in text.lines() {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        if field("ArrayJobId") != Some(array) {
            continue;
        }
        // A still-pending remainder reads `ArrayTaskId=4-7%2`: its tasks.
        let Some(task) = field("ArrayTaskId") else {
            continue;
        };
        let end = TaskEnd {
            state: field("JobState").unwrap_or("UNKNOWN").to_string(),
            exit_code: field("ExitCode").unwrap_or("?").to_string(),
        };
        insert_tasks(&mut ends, task, end);
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_gives_cluster_name_and_kill_wait() {
        let config = "Configuration data as of 2026-11-26T13:00:00\n\
                      ClusterName             = dbbackup-test\n\
                      KillOnBadExit           = 0\n\
                      KillWait                = 5 sec\n";
        assert_eq!(
            parse_config(config),
            Config {
                cluster_name: Some("dbbackup-test".into()),
                kill_wait: Some(5)
            }
        );
        assert_eq!(parse_config("KillWait = 30\n").kill_wait, Some(30));
        assert_eq!(parse_config("KillOnBadExit = 0\n").kill_wait, None);
        assert_eq!(parse_config("KillWait = 2 min\n").kill_wait, None);
        assert_eq!(parse_config("KillWait = (null)\n").kill_wait, None);
    }

    #[test]
    fn the_numbered_steps_of_the_job_are_read_from_listpids() {
        let text = "PID      JOBID    STEPID   LOCALID GLOBALID\n\
                    11342    2370     0        0       0\n\
                    11343    2370     0        1       1\n\
                    11350    2370     1        0       0\n\
                    11324    2370     batch    0       0\n\
                    11325    2370     extern   -       -\n\
                    11399    2371     0        0       0\n";
        assert_eq!(
            parse_steps(text, "2370", None),
            vec!["2370.0".to_string(), "2370.1".to_string()]
        );
        assert_eq!(
            parse_steps(text, "2370", Some("1")),
            vec!["2370.0".to_string()]
        );
        assert!(parse_steps("PID JOBID STEPID LOCALID GLOBALID\n", "2370", None).is_empty());
    }

    #[test]
    fn a_job_record_says_whether_it_is_an_array_task() {
        let task = "JobId=2 ArrayJobId=1 ArrayTaskId=0 JobName=x JobState=RUNNING\n";
        assert_eq!(parse_job(task, "2").unwrap().array, Some(("1".into(), 0)));
        let own = "JobId=4 JobName=child.sh JobState=RUNNING\n";
        assert_eq!(parse_job(own, "4").unwrap().array, None);
        assert_eq!(parse_job(task, "3"), None);
        let requeued = "JobId=7 JobState=RUNNING Restarts=2 SubmitTime=2026-12-06T10:05:00\n";
        let record = parse_job(requeued, "7").unwrap();
        assert_eq!(record.restarts, 2);
        assert_eq!(
            record.submitted,
            earliest(["2026-12-06T10:05:00"].into_iter())
        );
        assert!(record.submitted.is_some());
        assert_eq!(parse_job(own, "4").unwrap().submitted, None);
    }

    #[test]
    fn an_end_time_is_the_latest_of_a_job_whose_records_all_ended() {
        let array = "JobId=501 ArrayJobId=500 ArrayTaskId=1 JobState=COMPLETED EndTime=2026-12-06T10:00:09\n\
                     JobId=500 ArrayJobId=500 ArrayTaskId=0 JobState=OUT_OF_MEMORY EndTime=2026-12-06T10:00:05\n\
                     JobId=77 JobState=RUNNING EndTime=2026-12-07T10:00:00\n";
        assert_eq!(
            parse_end(array, "500"),
            earliest(["2026-12-06T10:00:09"].into_iter())
        );
        // Still running: no end yet (EndTime is then the time limit).
        assert_eq!(parse_end(array, "77"), None);
        assert_eq!(parse_end(array, "5"), None);
    }

    #[test]
    fn a_start_time_is_read_only_from_the_jobs_own_records() {
        // `scontrol show job 0` lists every job: none of them is job 0.
        let all = "JobId=465 ArrayJobId=464 ArrayTaskId=0 JobState=COMPLETED Restarts=1 SubmitTime=2026-12-06T10:00:00 StartTime=2026-12-06T10:00:01\n\
                   JobId=470 JobState=RUNNING Restarts=0 SubmitTime=2026-12-06T10:05:00 StartTime=2026-12-06T10:05:02\n";
        assert_eq!(parse_start(all, "0"), None);
        assert_eq!(parse_start(all, "46"), None);
        let plain = parse_start(all, "470").unwrap();
        assert!(plain.first);
        assert_eq!(parse_start(all, "464_0").map(|s| s.first), Some(false));
        assert_eq!(parse_start(all, "464").map(|s| s.first), Some(false));
        assert_eq!(parse_start(all, "464_1"), None);
        let sacct = "12|2026-12-06T10:00:00\n120|2026-12-06T09:00:00\n7_1|2026-12-06T08:00:00\n7_[2-3]|Unknown\n";
        assert!(parse_sacct_start(sacct, "12").unwrap() > parse_sacct_start(sacct, "120").unwrap());
        assert!(parse_sacct_start(sacct, "7").is_some());
        assert_eq!(parse_sacct_start(sacct, "0"), None);
        assert_eq!(parse_sacct_start(sacct, "7_2"), None);
    }

    #[test]
    fn job_states_are_read_for_the_job_and_its_tasks_only() {
        let scontrol = "JobId=57 ArrayJobId=55 ArrayTaskId=2 JobState=TIMEOUT\n\
                        JobId=55 ArrayJobId=55 ArrayTaskId=4-7%2 JobState=PENDING\n\
                        JobId=58 JobState=RUNNING\n";
        assert_eq!(scontrol_states(scontrol, "55"), ["TIMEOUT", "PENDING"]);
        assert_eq!(scontrol_states(scontrol, "58"), ["RUNNING"]);
        let sacct = "353|CANCELLED by 0\n3530|RUNNING\n55_3|COMPLETED\n55_[4-7%2]|PENDING\n";
        assert_eq!(sacct_states(sacct, "353"), ["CANCELLED by 0"]);
        assert_eq!(sacct_states(sacct, "55"), ["COMPLETED", "PENDING"]);
    }

    #[test]
    fn a_job_is_running_until_every_record_is_final() {
        let array = "JobId=57 ArrayJobId=55 ArrayTaskId=2 JobState=COMPLETED ExitCode=0:0\n\
                     JobId=55 ArrayJobId=55 ArrayTaskId=4-7%2 JobState=PENDING ExitCode=0:0\n";
        assert_eq!(parse_running(array, "55"), Running::Yes("PENDING".into()));
        let done = "JobId=60 JobName=x JobState=CANCELLED Reason=None ExitCode=0:15\n";
        assert_eq!(parse_running(done, "60"), Running::No);
        assert_eq!(parse_running(done, "61"), Running::Unknown);
        let live = "JobId=62 JobName=x JobState=COMPLETING ExitCode=0:0\n";
        assert_eq!(parse_running(live, "62"), Running::Yes("COMPLETING".into()));
    }

    #[test]
    fn scheduler_reports_are_parsed() {
        let sacct = "55_0|COMPLETED|0:0\n55_3|CANCELLED by 0|0:0\n55_4|OUT_OF_MEMORY|0:125\n56_1|COMPLETED|0:0\n";
        let ends = parse_sacct(sacct, "55");
        assert_eq!(ends.len(), 3);
        assert_eq!(ends[&3].state, "CANCELLED by 0");
        let scontrol = "JobId=57 ArrayJobId=55 ArrayTaskId=2 JobName=x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15\n\
                        JobId=55 ArrayJobId=55 ArrayTaskId=4-7%2 JobState=PENDING ExitCode=0:0\n";
        let ends = parse_scontrol(scontrol, "55");
        assert_eq!(ends.len(), 5);
        assert_eq!(ends[&2].state, "TIMEOUT");
        assert_eq!(ends[&2].exit_code, "0:15");
        assert!(!ends[&2].not_ended());
        // The pending remainder is its tasks, not yet ended.
        assert!((4..=7).all(|t| ends[&t].state == "PENDING" && ends[&t].not_ended()));
        let sacct = "55_0|RUNNING|0:0\n55_[1-5:2%1]|PENDING|0:0\n55_[6-7]|CANCELLED by 0|0:0\n";
        let ends = parse_sacct(sacct, "55");
        assert_eq!(ends.keys().copied().collect::<Vec<_>>(), [0, 1, 3, 5]);
        assert!(ends.values().all(TaskEnd::not_ended));
        assert_eq!(task_list("1,3,5-7"), Some(vec![1, 3, 5, 6, 7]));
        assert_eq!(task_list("7-5"), None);
    }
}
