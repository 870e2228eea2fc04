//! `dbbackup run`'s supervisor, as `tini` and `dumb-init` are: the work runs in
//! its own process group; TERM, INT, HUP, USR2 and CONT are forwarded to the
//! whole group (a script that runs `python3 work.py` without `exec` must not
//! leave python writing after the job ended); USR1 (`--signal=B:USR1@N`) becomes
//! a request for the time-limit backup, run on its own thread while the work
//! goes on; after a termination signal the group is waited for, bounded, then
//! killed, and so is what the work leaves running when it exits by itself. The
//! work's exact status (128+N for a signal death) is returned.
//!
//! It knows nothing of backups: `run` says what USR1 does and how long the time
//! after TERM is (KillWait). Signals are received from `start` on, so a TERM
//! during pre-job keeps the work from starting.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use super::descendants;

const RECEIVED: [i32; 6] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT];

/// How often the work's status is looked at; signals are forwarded at once by
/// their own thread, whatever this is.
const POLL: Duration = Duration::from_millis(10);
/// After the work ended without a termination signal noted: how long its group
/// may take to end before its processes are said to be left behind, and how
/// long a work killed by TERM/INT/HUP waits for that signal to be noted.
const LEFT_BEHIND_AFTER: Duration = Duration::from_millis(300);
/// After SIGKILL: how long the group may take to disappear (the kernel's work).
const AFTER_KILL: Duration = Duration::from_secs(2);

const BEFORE: u8 = 0;
const WORK: u8 = 1;
const AFTER: u8 = 2;

/// The first termination signal (TERM, INT or HUP) and when it came.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Termination {
    pub signal: i32,
    pub at: Instant,
}

/// How the work ended.
#[derive(Debug)]
pub(crate) struct WorkEnd {
    /// Its exit code, or 128+N for a death by signal N, as a shell reports it.
    pub status: i32,
    /// What happened, for the log.
    pub how: String,
    /// Processes it left running when it exited by itself (no termination
    /// signal), stopped before post-job.
    pub left_running: Option<LeftRunning>,
}

/// Processes the work left running when it exited, and how they were stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeftRunning {
    pub pids: Vec<i32>,
    pub stopped: Stopped,
}

/// How the processes the work left running ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// All ended after SIGTERM.
    Term,
    /// Some still ran after the bound: SIGKILL.
    Kill,
    /// Some still run even after SIGKILL (stuck in the kernel, or not ours to kill).
    No,
}

impl Stopped {
    /// The summary line's `left_running_stopped` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stopped::Term => "TERM",
            Stopped::Kill => "KILL",
            Stopped::No => "no",
        }
    }
}

/// Why a command cannot be executed, with the shell's status for it.
#[derive(Debug)]
pub(crate) struct CannotExecute {
    /// 127 not found, 126 found but not executable.
    pub status: i32,
    pub message: String,
}

struct Shared {
    /// The work's process group while it runs (0: none).
    group: AtomicI32,
    phase: AtomicU8,
    /// The first termination signal (0: none yet). An atomic, read and written
    /// in sequence with `group`, so that a TERM arriving as the work starts is
    /// forwarded by one side or the other.
    term_signal: AtomicI32,
    term_at: OnceLock<Instant>,
    /// The time allowed after a termination signal, and why (asked once).
    budget: OnceLock<(Duration, String)>,
    budget_of: Box<dyn Fn() -> (Duration, String) + Send + Sync>,
    /// What post-job is expected to need of the budget, in ms (0: unknown),
    /// from this database's recent backups: the rest is the work's.
    post_job_need_ms: AtomicU64,
    /// USR1 requests to the time-limit thread, while the work runs.
    usr1: Mutex<Option<mpsc::Sender<()>>>,
}

impl Shared {
    fn termination(&self) -> Option<Termination> {
        match self.term_signal.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(Termination {
                signal,
                at: *self.term_at.get()?,
            }),
        }
    }

    fn budget(&self) -> &(Duration, String) {
        self.budget.get_or_init(|| (self.budget_of)())
    }

    /// The work's share of the budget: all but what post-job is expected to
    /// need, and never less than [`work_bound`]'s share.
    fn work_bound(&self) -> Duration {
        let budget = self.budget().0;
        let need = Duration::from_millis(self.post_job_need_ms.load(Ordering::SeqCst));
        work_share(budget, (!need.is_zero()).then_some(need))
    }

    fn forward(&self, signal: i32) {
        let group = self.group.load(Ordering::SeqCst);
        if group > 0 {
            send_group(group, signal);
            descendants::signal(group, signal);
        }
    }

    fn on_signal(&self, signal: i32) {
        match signal {
            SIGTERM | SIGINT | SIGHUP => {
                let at = Instant::now();
                let first = self
                    .term_signal
                    .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if first {
                    let _ = self.term_at.set(at);
                }
                // The work first: every moment counts inside KillWait.
                self.forward(signal);
                if !first {
                    // "again" only when it is the same signal: SIGTERM after a
                    // Ctrl-C is the first TERM.
                    let earlier = self.term_signal.load(Ordering::SeqCst);
                    tracing::info!("{}: passed on to the work", repeated(signal, earlier));
                    return;
                }
                match self.phase.load(Ordering::SeqCst) {
                    // Pre-job or a time-limit backup stops (post-job follows).
                    BEFORE | WORK => crate::signals::interrupt(signal),
                    // Post-job goes on, bounded by the time SLURM allows.
                    _ => {}
                }
                let (budget, why) = self.budget();
                if self.phase.load(Ordering::SeqCst) == AFTER {
                    // The work has ended: nothing to pass it on to.
                    tracing::warn!(
                        "{}: the work has ended; post-job finishing within {why}",
                        signal_name(signal)
                    );
                    crate::signals::bound_since(at, *budget);
                } else if self.phase.load(Ordering::SeqCst) == BEFORE {
                    // No work yet, and none will start.
                    tracing::warn!(
                        "{}: before the work started (it will not start); finishing within {why}",
                        signal_name(signal)
                    );
                } else {
                    tracing::warn!(
                        "{}: passed on to the work; finishing within {why}; the work gets {:.1} s of it",
                        signal_name(signal),
                        self.work_bound().as_secs_f64()
                    );
                }
            }
            SIGUSR1 => match self.usr1.lock().ok().as_deref().and_then(Option::as_ref) {
                Some(requests) => {
                    let _ = requests.send(());
                }
                None => tracing::info!("USR1 (time limit near) while no work runs: ignored"),
            },
            _ => self.forward(signal),
        }
    }
}

/// Receives the job's signals from `start` on, and runs the work.
pub(crate) struct Supervisor {
    shared: Arc<Shared>,
}

impl Supervisor {
    /// Start receiving signals. `budget` says how long everything may take after
    /// a termination signal (the cluster's KillWait, less a margin); it is asked
    /// once, at the first such signal.
    pub(crate) fn start(
        budget: impl Fn() -> (Duration, String) + Send + Sync + 'static,
    ) -> io::Result<Supervisor> {
        let shared = Arc::new(Shared {
            group: AtomicI32::new(0),
            phase: AtomicU8::new(BEFORE),
            term_signal: AtomicI32::new(0),
            term_at: OnceLock::new(),
            budget: OnceLock::new(),
            budget_of: Box::new(budget),
            post_job_need_ms: AtomicU64::new(0),
            usr1: Mutex::new(None),
        });
        let mut signals = Signals::new(RECEIVED)?;
        let receiver = Arc::clone(&shared);
        thread::Builder::new()
            .name("supervisor-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    receiver.on_signal(signal);
                }
            })?;
        Ok(Supervisor { shared })
    }

    /// Handle a signal that came before `start` (seen by the process's flag
    /// handlers), as if it came now.
    pub(crate) fn catch_up(&self, signal: i32) {
        if matches!(signal, SIGTERM | SIGINT | SIGHUP) {
            self.shared.on_signal(signal);
        }
    }

    /// The first termination signal so far, if any.
    pub(crate) fn termination(&self) -> Option<Termination> {
        self.shared.termination()
    }

    /// The time allowed after a termination signal, and which bound applied.
    pub(crate) fn budget(&self) -> (Duration, String) {
        self.shared.budget().clone()
    }

    /// What is left of the work's share of the time after a termination
    /// signal (zero without one).
    pub(crate) fn work_time_left(&self) -> Duration {
        self.termination().map_or(Duration::ZERO, |term| {
            self.shared.work_bound().saturating_sub(term.at.elapsed())
        })
    }

    /// What post-job is expected to need after a termination signal (from
    /// this database's recent backups): kept from the work's share.
    pub(crate) fn expect_post_job_to_need(&self, need: Duration) {
        let ms = u64::try_from(need.as_millis()).unwrap_or(u64::MAX).max(1);
        self.shared.post_job_need_ms.store(ms, Ordering::SeqCst);
    }

    /// Run `program ARGS` in its own process group (stdin, stdout and stderr
    /// passed through) until it ends; `on_usr1` runs on its own thread for
    /// each USR1 meanwhile (several arriving during one run count once). After
    /// a termination signal the group gets its share of the budget
    /// (`work_share`) to end, then SIGKILL.
    pub(crate) fn run(
        &self,
        program: &OsString,
        args: &[OsString],
        on_usr1: impl FnMut() + Send,
    ) -> WorkEnd {
        let (requests, received) = mpsc::channel();
        if let Ok(mut usr1) = self.shared.usr1.lock() {
            *usr1 = Some(requests);
        }
        self.shared.phase.store(WORK, Ordering::SeqCst);
        let end = thread::scope(|scope| {
            let mut on_usr1 = on_usr1;
            scope.spawn(move || {
                while received.recv().is_ok() {
                    while received.try_recv().is_ok() {}
                    on_usr1();
                }
            });
            let end = self.run_work(program, args);
            // Closing the channel ends the time-limit thread once its backup is done.
            if let Ok(mut usr1) = self.shared.usr1.lock() {
                *usr1 = None;
            }
            end
        });
        self.shared.phase.store(AFTER, Ordering::SeqCst);
        // A TERM that came while the time-limit backup ran stopped it; post-job
        // is bounded from that TERM on.
        if let Some(term) = self.termination() {
            crate::signals::bound_since(term.at, self.budget().0);
        }
        end
    }

    fn run_work(&self, program: &OsString, args: &[OsString]) -> WorkEnd {
        descendants::adopt_orphans();
        let mut child = match Command::new(program).args(args).process_group(0).spawn() {
            Ok(child) => child,
            Err(error) => {
                let cannot = cannot_execute(Path::new(program), &error);
                tracing::error!("{}", cannot.message);
                return WorkEnd {
                    status: cannot.status,
                    how: cannot.message,
                    left_running: None,
                };
            }
        };
        let group = child.id() as i32;
        self.shared.group.store(group, Ordering::SeqCst);
        // A TERM that came between the spawn and now was not forwarded.
        if let Some(term) = self.termination() {
            send_group(group, term.signal);
            descendants::signal(group, term.signal);
        }
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(error) => break Err(error),
            }
            if !killed && self.past_work_bound() {
                tracing::error!(
                    "the work did not end after the termination signal: SIGKILL to it and every process it started"
                );
                kill_all(group);
                killed = true;
            }
            thread::sleep(POLL);
        };
        let (status, mut how): (i32, String) = match status {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => (code, format!("exited with status {code}")),
                (None, Some(signal)) => (128 + signal, format!("ended by signal {signal}")),
                _ => (1, "ended without a status".to_string()),
            },
            Err(error) => (1, format!("its status could not be read: {error}")),
        };
        let (killed, left_running) = self.wait_for_the_rest(group, status, killed);
        if killed {
            how.push_str("; its processes were killed (SIGKILL) after the termination signal");
        }
        if let Some(left) = &left_running {
            how.push_str(&format!(
                "; the processes it left running were stopped by {}",
                match left.stopped {
                    Stopped::Term => "SIGTERM",
                    Stopped::Kill => "SIGKILL",
                    Stopped::No => "nothing (some still run)",
                }
            ));
        }
        self.shared.group.store(0, Ordering::SeqCst);
        WorkEnd {
            status,
            how,
            left_running,
        }
    }

    /// After the work ended: what it started, in its group or not. SLURM's TERM
    /// reaches every process of the job at once: the work may die of it (and be
    /// reaped) before our own handler has recorded it, and its children be a
    /// moment from dying too. Wait that moment, so the TERM is known (post-job
    /// bounded, `after_term`) and nothing is called left behind. After a TERM,
    /// what it started (a script's python, a `timeout`'s child) may still be
    /// writing: the post-job backup must come after the last of them. Without
    /// a TERM, what it left running is stopped the same way (`stop_left_running`).
    /// Whether SIGKILL was needed after a TERM, and what was left running.
    fn wait_for_the_rest(
        &self,
        group: i32,
        status: i32,
        mut killed: bool,
    ) -> (bool, Option<LeftRunning>) {
        let stopped = [SIGTERM, SIGINT, SIGHUP].map(|s| 128 + s).contains(&status);
        let settle = Instant::now();
        while self.termination().is_none()
            && (stopped || work_alive(group))
            && settle.elapsed() < LEFT_BEHIND_AFTER
        {
            thread::sleep(POLL);
        }
        if self.termination().is_none() {
            let left = work_alive(group).then(|| self.stop_left_running(group));
            return (killed, left);
        }
        while work_alive(group) && !killed {
            if self.past_work_bound() {
                tracing::error!(
                    "processes the work started are still running after the termination signal: SIGKILL to each of them"
                );
                kill_all(group);
                killed = true;
            }
            thread::sleep(POLL);
        }
        wait_after_kill(group);
        (killed, None)
    }

    /// The work exited by itself, but processes it started still run (`cmd &`,
    /// `setsid`, a daemon). Once `run` exits they are init's, and SLURM's
    /// proctrack/linuxproc does not end them: they would go on writing after
    /// the post-job backup, which claims to be the job's final state. So they
    /// are stopped as after a TERM: SIGTERM to the group and to each, the
    /// work's share of the time after TERM (`work_share`), then SIGKILL.
    fn stop_left_running(&self, group: i32) -> LeftRunning {
        let pids = descendants::alive(group);
        let bound = self.shared.work_bound();
        tracing::warn!(
            "the work exited but left processes running (process group {group}, pids {}): SIGTERM to them, SIGKILL after {:.1} s, so that the post-job backup holds what they wrote",
            self::pids(&pids),
            bound.as_secs_f64()
        );
        send_group(group, SIGTERM);
        descendants::signal(group, SIGTERM);
        let started = Instant::now();
        // A TERM that comes meanwhile is forwarded by the handler and bounds
        // this from its own moment.
        while work_alive(group) && started.elapsed() < bound && !self.past_work_bound() {
            thread::sleep(POLL);
        }
        let mut stopped = Stopped::Term;
        if work_alive(group) {
            tracing::error!(
                "processes the work left running are still running after SIGTERM: SIGKILL to each of them"
            );
            kill_all(group);
            stopped = Stopped::Kill;
            if !wait_after_kill(group) {
                stopped = Stopped::No;
            }
        }
        LeftRunning { pids, stopped }
    }

    /// Whether the work has had its share of the time after a termination signal.
    fn past_work_bound(&self) -> bool {
        let Some(term) = self.termination() else {
            return false;
        };
        term.at.elapsed() >= self.shared.work_bound()
    }
}

/// `SIGTERM` for 15: what the log says.
pub(crate) fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string())
}

/// How a termination signal after the first is named: "SIGTERM again", or
/// "SIGTERM (after SIGINT)" when the first was another one.
fn repeated(signal: i32, first: i32) -> String {
    if signal == first {
        format!("{} again", signal_name(signal))
    } else {
        format!("{} (after {})", signal_name(signal), signal_name(first))
    }
}

/// The work's share of the time after TERM when post-job's need is unknown:
/// a third (the rest is post-job's), at least 1 s, at most 10 s.
pub(crate) fn work_bound(budget: Duration) -> Duration {
    (budget / 3)
        .clamp(Duration::from_secs(1), Duration::from_secs(10))
        .min(budget)
}

/// The work's share of the time after TERM: what post-job is expected to
/// `need` of the budget is kept for it, the rest is the work's (a program
/// writing its checkpoint on TERM keeps most of SLURM's KillWait); never less
/// than [`work_bound`]'s share.
pub(crate) fn work_share(budget: Duration, need: Option<Duration>) -> Duration {
    let floor = work_bound(budget);
    need.map_or(floor, |need| budget.saturating_sub(need).max(floor))
}

fn send_group(group: i32, signal: i32) {
    if let Ok(signal) = Signal::try_from(signal) {
        // ESRCH: the group has ended already.
        let _ = killpg(Pid::from_raw(group), signal);
    }
}

/// SIGKILL to the work's group and to every process it started elsewhere.
fn kill_all(group: i32) {
    send_group(group, SIGKILL);
    descendants::signal(group, SIGKILL);
}

/// After SIGKILL, until the work's processes are gone (bounded by
/// `AFTER_KILL`); names those that are not in a WARN line. Whether all are gone.
fn wait_after_kill(group: i32) -> bool {
    let started = Instant::now();
    while work_alive(group) && started.elapsed() < AFTER_KILL {
        thread::sleep(POLL);
    }
    let left = descendants::alive(group);
    if !left.is_empty() {
        tracing::warn!(
            "processes the work started could not be stopped (pids {}): the post-job backup may not hold what they write",
            pids(&left)
        );
    }
    left.is_empty()
}

/// Whether anything the work started (in its group or out of it) still runs.
fn work_alive(group: i32) -> bool {
    group_alive(group) || !descendants::alive(group).is_empty()
}

fn pids(pids: &[i32]) -> String {
    let shown: Vec<String> = pids.iter().map(i32::to_string).collect();
    shown.join(", ")
}

/// Whether any process of `group` is still alive (zombies do not count: their
/// work is done). From /proc, where there is one; else by signal 0.
fn group_alive(group: i32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return killpg(Pid::from_raw(group), None).is_ok();
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Ok(stat) = fs::read_to_string(format!("/proc/{name}/stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(group) && !matches!(state, "Z" | "X")
    })
}

/// Whether `program` can be executed, as a shell finds it (a name without '/'
/// is looked up in PATH): checked before pre-job, so that a typo costs no backup.
pub(crate) fn check_executable(program: &Path) -> Result<(), CannotExecute> {
    let shown = program.display();
    let candidates: Vec<PathBuf> = if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        vec![program.to_path_buf()]
    } else {
        std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(program))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut not_executable = None;
    for candidate in &candidates {
        let Ok(meta) = fs::metadata(candidate) else {
            continue;
        };
        if meta.is_file() && nix::unistd::access(candidate, nix::unistd::AccessFlags::X_OK).is_ok()
        {
            return Ok(());
        }
        not_executable.get_or_insert((candidate.clone(), meta));
    }
    Err(match not_executable {
        Some((path, meta)) => CannotExecute {
            status: 126,
            message: format!(
                "cannot execute {}: {}",
                path.display(),
                if meta.is_dir() {
                    "it is a directory".to_string()
                } else {
                    format!(
                        "permission denied (mode {:o})",
                        meta.permissions().mode() & 0o7777
                    )
                }
            ),
        },
        None => CannotExecute {
            status: 127,
            message: format!("{shown}: command not found{}", one_word_hint(program)),
        },
    })
}

/// A command given as one quoted word (`run -- 'python3 w.py'`) whose first
/// word is a command: the quoting is the mistake (T27 F-L).
fn one_word_hint(program: &Path) -> String {
    let text = program.to_string_lossy();
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(first), Some(_)) if check_executable(Path::new(first)).is_ok() => format!(
            " (it is one word: give the command and its arguments as separate words, `dbbackup run -- {text}`, not quoted together)"
        ),
        _ => String::new(),
    }
}

fn cannot_execute(program: &Path, error: &io::Error) -> CannotExecute {
    let status = match error.kind() {
        io::ErrorKind::NotFound => 127,
        _ => 126,
    };
    CannotExecute {
        status,
        message: format!("cannot execute {}: {error}", program.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_gets_a_third_of_the_time_after_term_within_1_to_10_s() {
        assert_eq!(work_bound(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(work_bound(Duration::from_secs(18)), Duration::from_secs(6));
        assert_eq!(
            work_bound(Duration::from_secs(118)),
            Duration::from_secs(10)
        );
        // Never more than the whole budget.
        assert_eq!(
            work_bound(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn the_work_keeps_all_but_what_post_job_needs_and_never_less_than_its_third() {
        let s = Duration::from_secs;
        assert_eq!(work_share(s(28), Some(s(3))), s(25));
        assert_eq!(work_share(s(28), None), work_bound(s(28)));
        // A slow backup: the work still gets its third.
        assert_eq!(work_share(s(18), Some(s(17))), s(6));
        assert_eq!(work_share(s(3), Some(s(60))), s(1));
    }

    #[test]
    fn a_later_termination_signal_is_again_only_when_it_is_the_same() {
        assert_eq!(repeated(SIGTERM, SIGTERM), "SIGTERM again");
        assert_eq!(repeated(SIGTERM, SIGINT), "SIGTERM (after SIGINT)");
    }

    #[test]
    fn commands_that_cannot_run_get_the_shells_status() {
        assert_eq!(
            check_executable(Path::new("no-such-command-dbbackup"))
                .unwrap_err()
                .status,
            127
        );
        assert_eq!(check_executable(Path::new("/")).unwrap_err().status, 126);
        assert!(check_executable(Path::new("sh")).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("x.sh");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
        // root may read anything, but not execute a file without an x bit.
        assert_eq!(check_executable(&script).unwrap_err().status, 126);
    }
}
