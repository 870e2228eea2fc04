//! A pre-job backup is half of a job's protection: its post-job backup holds
//! the work. When the newest attempt is a pre-job whose job has ended without
//! a post-job (its `run` SIGKILLed by the OOM killer, a node failure), what the
//! work wrote is in no backup, and `check` must not call that healthy (T23 #12).
//! A record names how to ask whether its job still runs: SLURM for a job, the
//! process for a `dbbackup run` outside SLURM.

use std::path::Path;
use std::sync::Mutex;

use jiff::Timestamp;
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
    /// One task of a step that runs several (`srun -n 2 dbbackup run`,
    /// `STEP.TASK`): each owes its own post-job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// An array's debt, paid by the backup that marks the array ended (its
    /// final job's, its last task's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub array: bool,
    /// Where its pre-job ran (a `run` outside SLURM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The supervising `dbbackup run` outside SLURM, and what tells it from a
    /// later process given the same pid: its start (clock ticks after boot)
    /// and the boot it started in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// Its pid namespace (`pid:[4026531836]`): a pid means nothing in another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
    /// `pid` is the process that ran a bare `pre-job` outside SLURM (a
    /// script: `pre-job; work; post-job`), not a `dbbackup run`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parent: bool,
}

impl PostJobDue {
    /// What a pre-job of `job` leaves owed, in this process: a SLURM job's id,
    /// or `run`'s own process outside SLURM. A bare `pre-job` outside SLURM
    /// stands for the process that ran it (its script, its Python session);
    /// an orphan's (parent pid 1) owes nothing anyone can ask about.
    pub(crate) fn of(job: &JobContext) -> Option<PostJobDue> {
        let none = PostJobDue {
            slurm_job: None,
            cluster: None,
            task: None,
            array: false,
            // Only a process is asked of by host: one job's tasks on several
            // nodes owe one debt.
            host: String::new(),
            pid: None,
            started: None,
            boot: None,
            pid_ns: None,
            parent: false,
        };
        // `dbbackup run`'s own process: two runs of one job (`run … &` twice
        // in a script) owe one debt each. Not an array task's (the array
        // owes one), nor a step task's (its task number tells).
        let process = PostJobDue {
            host: job.host.clone(),
            pid: Some(job.pid),
            started: start_ticks(job.pid),
            boot: boot_id(),
            pid_ns: pid_namespace(),
            ..none.clone()
        };
        let task = step_task_key(job);
        if job.own_id.is_some() {
            let own = if crate::signals::supervising() && job.array.is_none() && task.is_none() {
                process
            } else {
                none
            };
            Some(PostJobDue {
                slurm_job: Some(job.job_id().to_string()),
                cluster: job.cluster.clone(),
                task,
                array: job.array.is_some(),
                ..own
            })
        } else if crate::signals::supervising() {
            Some(process)
        } else {
            let parent = owner_of_this_process()?;
            Some(PostJobDue {
                pid: Some(parent),
                started: start_ticks(parent),
                parent: true,
                ..process
            })
        }
    }

    /// What a pre-job that made the restore point leaves owed: every task's
    /// debt when it is one task of a step running several (they start
    /// together; the others find the point made and record nothing).
    pub(crate) fn of_step(job: &JobContext) -> Vec<PostJobDue> {
        let Some(own) = PostJobDue::of(job) else {
            return Vec::new();
        };
        match (crate::slurm::job::step_task(), own.slurm_job.is_some()) {
            (Some(step), true) => (0..step.tasks)
                .map(|task| PostJobDue {
                    task: Some(format!("{}.{task}", step.step)),
                    ..own.clone()
                })
                .collect(),
            _ => vec![own],
        }
    }

    /// Who owes it, for a line: `job 264`, `task 1 of step 264.0`,
    /// `` `dbbackup run` (pid 77 on n1) ``.
    pub(crate) fn who(&self) -> String {
        match (&self.slurm_job, &self.task, self.pid) {
            (Some(job), Some(task), _) => match task.split_once('.') {
                Some((step, task)) => format!("task {task} of step {job}.{step}"),
                None => format!("job {job}"),
            },
            (Some(job), None, _) => format!("job {job}"),
            (None, _, Some(pid)) if self.parent => format!(
                "the process that ran `dbbackup pre-job` (pid {pid} on {})",
                self.host
            ),
            (None, _, Some(pid)) => format!("`dbbackup run` (pid {pid} on {})", self.host),
            (None, _, None) => "its job".to_string(),
        }
    }

    /// Whether this process (job `job`) is the one that owes it: its own
    /// post-job pays it, whatever its outcome (a failure is its own record).
    pub(crate) fn owed_by(&self, job: &JobContext) -> bool {
        let same_process = self.pid == Some(job.pid) && self.host == job.host;
        if self.parent {
            // A bare `post-job` run by the same script as the `pre-job`, from
            // it or from anything it started (`timeout 1h dbbackup post-job`,
            // a subshell).
            return job.own_id.is_none()
                && !crate::signals::supervising()
                && self.host == job.host
                && self.pid.is_some_and(|pid| is_ancestor(pid, self.started));
        }
        match &self.slurm_job {
            Some(id) => {
                job.own_id.is_some()
                    && id == job.job_id()
                    && self.task == step_task_key(job)
                    && (self.pid.is_none() || same_process)
            }
            None => same_process,
        }
    }

    /// Whether a backup whose snapshot was taken at `snapshot` surely holds
    /// the work: its job had ended by then, or its array's final (or last
    /// task's) backup marked the array ended. Asked when a later success is
    /// recorded (`at_record`: a job SLURM forgot ended minutes before it), so
    /// that debts of jobs that ended before it are not carried on, and by
    /// `check` of the debts a record carries.
    pub(crate) fn paid_by(
        &self,
        snapshot: Option<Timestamp>,
        at_record: bool,
        dir: &Path,
        db: &DbId,
    ) -> bool {
        if let Some(job) = &self.slurm_job {
            if self.array && array_ended(job, self.cluster.as_deref(), dir, db) {
                return true;
            }
            if at_record {
                return ended_before(job, snapshot);
            }
        }
        match self.judge(dir, db) {
            Awaited::Ended { at: Some(end), .. } => after_end(end, snapshot),
            Awaited::Ended { at: None, .. } => at_record,
            _ => false,
        }
    }

    /// Whether the job that owes the post-job backup of `db` (backed up in
    /// `dir`) still runs, as far as this host can tell; `host` is where the
    /// pre-job ran. Asked once per process (`check --format prometheus` and
    /// `periodic` judge the record twice: one answer for both).
    pub(crate) fn judge(&self, dir: &Path, db: &DbId) -> Awaited {
        static JUDGED: Asked<PostJobDue, Awaited> = Mutex::new(Vec::new());
        asked(&JUDGED, self.clone(), || {
            match (&self.slurm_job, self.pid) {
                (Some(job), _) => slurm_job(job, self.cluster.as_deref(), dir, db),
                (None, Some(pid)) => self.local_run(pid),
                (None, None) => Awaited::CannotTell("the record names no job".into()),
            }
        })
    }

    fn local_run(&self, pid: u32) -> Awaited {
        let here = crate::host::sanitize(&crate::host::local_host_name());
        if here != self.host {
            return Awaited::CannotTell(format!("it ran on host {}, not this one", self.host));
        }
        // First: in another pid namespace the pid names another process, or none.
        if self.pid_ns.is_some() && pid_namespace() != self.pid_ns {
            return Awaited::CannotTell(format!(
                "pid {pid} is in another pid namespace (a container) than this check"
            ));
        }
        use nix::errno::Errno;
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None) {
            Err(Errno::ESRCH) => return ended("no longer running"),
            // Another user's process (`check` run by monitoring): it exists.
            Err(Errno::EPERM) | Ok(()) => {}
            Err(other) => return Awaited::CannotTell(format!("kill -0: {other}")),
        }
        if self.boot.is_some() && boot_id() != self.boot {
            return ended("the host has rebooted since");
        }
        match (start_ticks(pid), self.started) {
            // /proc hidden (hidepid) or another pid namespace: unknown.
            (None, _) => Awaited::CannotTell(format!("pid {pid} cannot be read in /proc")),
            (Some(now), Some(then)) if now != then => {
                ended("no longer running (its pid is another process's now)")
            }
            _ => Awaited::Running("its process is alive".into()),
        }
    }
}

/// How long after SLURM's `EndTime` a snapshot must be to hold the job's work.
const ENDED_BEFORE_SLACK_SECONDS: i64 = 2;

/// Where the post-job backup a pre-job left owed stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Awaited {
    /// Its job has not ended: what says so (`SLURM: RUNNING`, `pid 77 still
    /// runs`, the array's final job to come).
    Running(String),
    /// Its job has ended without it: what says so, and when (SLURM's
    /// `EndTime` while it remembers the job).
    Ended { how: String, at: Option<Timestamp> },
    /// Its job has ended without it, but the database still holds the state
    /// of the pre-job's backup: nothing is lost.
    EndedUnchanged(String),
    /// Nobody here can tell (no SLURM, another host): why.
    CannotTell(String),
}

/// At a success being recorded: whether SLURM says job `job` ended before
/// `snapshot` (forgotten: minutes before). Not asked after a TERM (every
/// second counts) nor once the controller was found stuck: kept.
fn ended_before(job: &str, snapshot: Option<Timestamp>) -> bool {
    if crate::signals::remaining().is_some()
        || scheduler::timed_out_before()
        || !scheduler::installed()
    {
        return false;
    }
    match running_until(job) {
        Ok((Running::Unknown, _)) => true,
        Ok((Running::No, Some(end))) => after_end(end, snapshot),
        _ => false,
    }
}

/// SLURM's answers, asked once per job id per process: the N debts of one
/// step's tasks (and N post-jobs each judging the others') are one question.
type Asked<K, T> = Mutex<Vec<(K, T)>>;

fn asked<K: PartialEq, T: Clone>(memo: &Asked<K, T>, key: K, ask: impl FnOnce() -> T) -> T {
    let mut memo = memo
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, answer)) = memo.iter().find(|(known, _)| *known == key) {
        return answer.clone();
    }
    let answer = ask();
    memo.push((key, answer.clone()));
    answer
}

/// Whether job `job` runs, and when it ended: one `scontrol` call.
fn running_until(job: &str) -> Result<(Running, Option<Timestamp>), scheduler::Failure> {
    type Answer = Result<(Running, Option<Timestamp>), scheduler::Failure>;
    static ASKED: Asked<String, Answer> = Mutex::new(Vec::new());
    asked(&ASKED, job.to_string(), || scheduler::running_until(job))
}

/// Whether a snapshot taken at `snapshot` came after a job SLURM says ended
/// at `end`: its `EndTime` is in whole seconds, from the controller's clock,
/// so a snapshot in the same second or just after may predate its last writes.
fn after_end(end: Timestamp, snapshot: Option<Timestamp>) -> bool {
    snapshot.is_some_and(|snapshot| {
        snapshot.as_second() >= end.as_second() + ENDED_BEFORE_SLACK_SECONDS
    })
}

/// `STEP.TASK` of a `run` that is one task of a step running several.
fn step_task_key(job: &JobContext) -> Option<String> {
    job.own_id.as_ref()?;
    crate::slurm::job::step_task().map(|step| format!("{}.{}", step.step, step.task))
}

/// Whether array `job`'s work was backed up once all its tasks ended (the
/// final job's backup, or the last task's): marked ended in its state.
fn array_ended(job: &str, cluster: Option<&str>, dir: &Path, db: &DbId) -> bool {
    JobState::reader(&BackupDir::new(dir)).ended(&state_key(job, cluster, db))
}

/// The key of job `job`'s state for database `db` (its pre-job record, its
/// ended marker).
fn state_key(job: &str, cluster: Option<&str>, db: &DbId) -> String {
    crate::slurm::array::key(&crate::slurm::job::state_key(cluster, job), db)
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
    if scheduler::timed_out_before() {
        return Awaited::CannotTell("SLURM's controller did not answer".into());
    }
    let ended = match running_until(job) {
        Ok((Running::Yes(state), _)) => return Awaited::Running(format!("SLURM: {state}")),
        Ok((Running::No, at)) => Awaited::Ended {
            how: "SLURM says it has ended".to_string(),
            at,
        },
        Ok((Running::Unknown, _)) => ended("SLURM no longer knows it: it ended a while ago"),
        Err(failure) => return Awaited::CannotTell(format!("SLURM could not be asked: {failure}")),
    };
    // An array whose tasks did not all finish: its final job backs it up.
    let final_job = JobState::reader(&BackupDir::new(dir))
        .pre_job(&state_key(job, cluster, db))
        .and_then(|record| record.final_job);
    if let Some(FinalJob::Submitted(JobId(id))) = final_job
        && let Ok((Running::Yes(state), _)) = running_until(&id)
    {
        return Awaited::Running(format!(
            "its tasks have ended; the array's final job {id} is to back it up (SLURM: {state})"
        ));
    }
    ended
}

fn ended(how: &str) -> Awaited {
    Awaited::Ended {
        how: how.to_string(),
        at: None,
    }
}

/// When process `pid` started, in clock ticks after boot (`/proc/PID/stat`
/// field 22); `None` when it cannot be read.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The process that ran this one.
fn parent_pid() -> Option<u32> {
    u32::try_from(nix::unistd::getppid().as_raw()).ok()
}

/// A process's command name and parent, from `/proc`.
fn name_and_parent(pid: u32) -> Option<(String, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    Some((name, rest.split_whitespace().nth(1)?.parse().ok()?))
}

/// Programs that run a command as their child and end with it: the script
/// that ran `timeout 600 dbbackup pre-job` owes the post-job, not `timeout`,
/// gone as soon as pre-job is (review of T24 F9).
const LAUNCHERS: &[&str] = &[
    "timeout",
    "time",
    "flock",
    "xargs",
    "sudo",
    "su",
    "runuser",
    "conda",
    "mamba",
    "micromamba",
    "uv",
    "pixi",
    "apptainer",
    "singularity",
    "starter",
    "starter-suid",
];

/// A shell that exists only to run this command: `sh -c 'dbbackup pre-job >
/// log'`, as Python's `os.system`, `subprocess(..., shell=True)` and R's
/// `system()` start it, ends with it, so the program that asked owes the
/// post-job (T25b NEW-4). A `-c` script with more in it (`;`, `&`, a line
/// break) is the job itself.
fn runs_only_dbbackup(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    shell_running_only_dbbackup(&args)
}

fn shell_running_only_dbbackup(args: &[String]) -> bool {
    const SHELLS: &[&str] = &["sh", "dash", "bash", "zsh", "ksh", "mksh"];
    let [shell, flag, script, ..] = args else {
        return false;
    };
    let base = |word: &str| word.rsplit('/').next().unwrap_or_default().to_string();
    if !SHELLS.contains(&base(shell).trim_start_matches('-')) || flag != "-c" {
        return false;
    }
    // `2>&1`, `&>log`: redirections, not a second command.
    let script = script
        .replace(">&", ">")
        .replace("<&", "<")
        .replace("&>", ">");
    if script.contains([';', '&', '\n', '(', '`']) || script.contains("$(") {
        return false;
    }
    // `|| exit 1`: the shell ends then too. Anything else after `||` is work.
    let (script, fallback) = script.split_once("||").unwrap_or((&script, ""));
    let first_word = |text: &str| text.split_whitespace().next().map(base);
    if first_word(fallback).is_some_and(|w| !["exit", "true", ":", "echo"].contains(&w.as_str())) {
        return false;
    }
    // A pipe into a log (`| tee -a log`); `dbbackup pre-job | python work.py`
    // is the job.
    const LOGGERS: &[&str] = &["tee", "cat", "logger", "ts", "grep", "sed", "awk"];
    let mut stages = script.split('|');
    let first_stage = stages.next().unwrap_or_default();
    if !stages.all(|stage| first_word(stage).is_some_and(|w| LOGGERS.contains(&w.as_str()))) {
        return false;
    }
    // Past `VAR=value`, `exec` and launchers with their arguments
    // (`timeout 60 dbbackup pre-job`): dbbackup.
    let command = |word: &&str| !word.contains('=') && *word != "exec";
    let mut words = first_stage
        .split_whitespace()
        .filter(command)
        .map(|word| base(word.trim_matches(['"', '\''])));
    // Commands that run their arguments in their own place (`exec`) are no
    // launchers of the process tree, but in front of dbbackup here they are.
    const PREFIXES: &[&str] = &[
        "nice", "env", "ionice", "stdbuf", "nohup", "command", "chrt", "taskset", "numactl",
        "setsid",
    ];
    match words.next() {
        Some(first) if first == "dbbackup" => true,
        Some(first)
            if LAUNCHERS.contains(&first.as_str()) || PREFIXES.contains(&first.as_str()) =>
        {
            words.any(|w| w == "dbbackup")
        }
        _ => false,
    }
}

/// Who a bare `pre-job` outside SLURM leaves owing the post-job: the process
/// that ran it, past the launchers wrapping it; none for an orphan.
fn owner_of_this_process() -> Option<u32> {
    let mut pid = parent_pid()?;
    for _ in 0..16 {
        match name_and_parent(pid) {
            Some((name, up))
                if up > 1 && (LAUNCHERS.contains(&name.as_str()) || runs_only_dbbackup(pid)) =>
            {
                pid = up;
            }
            _ => break,
        }
    }
    (pid > 1).then_some(pid)
}

/// Whether `pid`, started at `started` (clock ticks after boot), is this
/// process's parent or an ancestor of it.
fn is_ancestor(pid: u32, started: Option<u64>) -> bool {
    let mut at = parent_pid();
    for _ in 0..64 {
        match at {
            Some(up) if up == pid => return start_ticks(up) == started,
            Some(up) if up > 1 => at = name_and_parent(up).map(|(_, next)| next),
            _ => return false,
        }
    }
    false
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.to_string_lossy().into_owned())
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
            task: None,
            array: false,
            host: crate::host::sanitize(&crate::host::local_host_name()),
            pid: Some(pid),
            started: start_ticks(pid),
            boot: boot_id(),
            pid_ns: pid_namespace(),
            parent: false,
        }
    }

    #[test]
    fn a_shell_that_only_runs_dbbackup_is_a_launcher() {
        let shell = |script: &str| {
            let args = ["/bin/sh", "-c", script].map(String::from);
            shell_running_only_dbbackup(&args)
        };
        for launcher in [
            "dbbackup pre-job",
            "/opt/bin/dbbackup pre-job > pj.log",
            "dbbackup pre-job 2>&1",
            "dbbackup pre-job >> pj.log 2>&1",
            "dbbackup pre-job &> pj.log",
            "dbbackup pre-job 2>&1 | tee -a pj.log",
            "DBBACKUP_CONFIG=x.yaml exec dbbackup pre-job",
            "timeout 60 dbbackup pre-job",
            "flock /tmp/l dbbackup pre-job || exit 1",
            "'dbbackup' pre-job",
            "nice -n 10 dbbackup pre-job >> log 2>&1",
            "nohup env A=1 dbbackup pre-job",
        ] {
            assert!(shell(launcher), "{launcher}");
        }
        for job in [
            "dbbackup pre-job; python work.py",
            "dbbackup pre-job && python work.py",
            "dbbackup pre-job & wait",
            "dbbackup pre-job\npython work.py",
            "(dbbackup pre-job)",
            "echo $(dbbackup pre-job)",
            "python work.py",
            "cat list | dbbackup pre-job",
            "timeout 60 python work.py",
            "dbbackup pre-job | python work.py",
            "dbbackup pre-job || python work.py",
        ] {
            assert!(!shell(job), "{job}");
        }
        let not_a_shell = ["python3", "-c", "dbbackup pre-job"].map(String::from);
        assert!(!shell_running_only_dbbackup(&not_a_shell));
    }

    #[test]
    fn a_live_process_runs_a_dead_or_reused_pid_has_ended() {
        let me = std::process::id();
        assert!(start_ticks(me).is_some());
        assert!(matches!(run_of(me).local_run(me), Awaited::Running(_)));
        // Pid numbers stop far below this.
        let gone = 0x3fff_ffff;
        assert!(matches!(
            run_of(gone).local_run(gone),
            Awaited::Ended { .. }
        ));
        // The same pid, started at another time: another process now.
        let reused = PostJobDue {
            started: start_ticks(me).map(|t| t + 1),
            ..run_of(me)
        };
        assert!(matches!(reused.local_run(me), Awaited::Ended { .. }));
        let elsewhere = PostJobDue {
            host: "another-host".into(),
            ..run_of(me)
        };
        assert!(matches!(elsewhere.local_run(me), Awaited::CannotTell(_)));
    }
}
