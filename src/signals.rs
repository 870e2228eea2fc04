//! SIGTERM / SIGINT / SIGHUP, and the other signals that end a process by default
//! and reach jobs on a cluster (USR1/USR2 from `--signal` without `B:`, ALRM,
//! XCPU at a CPU-time limit), become a flag that long operations poll, so a
//! running backup can remove its temp files and release its lock before exiting.
//!
//! After SLURM's TERM (post-job `--after-term`) the run is bounded by a deadline
//! instead: further TERMs are expected (time limit, then preemption; a second
//! `scancel`) and change nothing, the deadline ends the run well inside KillWait.
//!
//! Under `dbbackup run` the process is a supervisor: signals are the work's
//! (forwarded by [`crate::slurm::supervise`]), not ours. A received signal then
//! interrupts a backup only when the supervisor says so ([`interrupt`]), and the
//! watchdog leaves the supervisor alone until a deadline is set.

use std::sync::Arc;
use std::sync::Once;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The latest signal, set in the handler itself (seen by the next poll at once).
static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
/// The first signal, in order of arrival (set by the `signal-order` thread): it
/// decides the exit status and the recorded reason, so a second signal (INT
/// after SLURM's TERM) does not rewrite why the run stopped.
static FIRST: AtomicUsize = AtomicUsize::new(0);
/// Set once, by `bound`: (deadline, the budget it was set from).
static DEADLINE: OnceLock<(Instant, Duration)> = OnceLock::new();
/// Set by `supervise`: signals are forwarded, and only `interrupt` stops a backup.
static SUPERVISING: AtomicBool = AtomicBool::new(false);
/// The signal the supervisor asked running backups to stop for (0: none).
static STOP: AtomicUsize = AtomicUsize::new(0);

const HANDLED: [i32; 7] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGUSR2,
    signal_hook::consts::SIGALRM,
    signal_hook::consts::SIGXCPU,
];

/// How long cleanup may take after a termination signal before the process ends
/// anyway: a system call that cannot be interrupted (a write to a pipe nobody
/// reads, a hung filesystem) must not keep a job, its lock and its node forever.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// Install the handlers and the watchdog that enforces `GRACE`. Safe to call more
/// than once.
pub(crate) fn install() {
    let flag = RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for signal in HANDLED {
        // Registration only fails for forbidden signals, which these are not.
        let _ = signal_hook::flag::register_usize(signal, Arc::clone(flag), signal as usize);
    }
    static WATCHDOG: Once = Once::new();
    WATCHDOG.call_once(|| {
        let _ = thread::Builder::new()
            .name("signal-watchdog".into())
            .spawn(watchdog);
        // Signals are delivered to the iterator in the order they came (a
        // handler of our own would need unsafe code); without it, the latest counts.
        if let Ok(mut signals) = signal_hook::iterator::Signals::new(HANDLED) {
            let _ = thread::Builder::new()
                .name("signal-order".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        let _ = FIRST.compare_exchange(
                            0,
                            signal as usize,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        );
                    }
                });
        }
    });
}

/// The first signal received, or, before the `signal-order` thread has seen it,
/// the latest (the only one so far, but for a race of two within microseconds).
fn first_received() -> Option<i32> {
    match FIRST.load(Ordering::SeqCst) {
        0 => match RECEIVED.get()?.load(Ordering::Relaxed) {
            0 => None,
            signal => Some(signal as i32),
        },
        signal => Some(signal as i32),
    }
}

/// Once a signal has arrived, give cleanup `GRACE`, then end the process the way
/// the signal's default action would (a killed run's temp files are removed by
/// the next lock holder; the lock goes with the process).
fn watchdog() {
    let signal = loop {
        if watched().is_some() {
            thread::sleep(GRACE);
            // Re-read after the grace: `pending` decides whether the signal still
            // counts (a run may stop counting signals and keep its own deadline).
            if let Some(signal) = watched() {
                break signal;
            }
        }
        thread::sleep(Duration::from_millis(100));
    };
    // Say so from another thread: stderr itself may be what blocks.
    let _ = thread::Builder::new().spawn(move || {
        tracing::error!(
            "still running {} s after signal {signal}; ending now, without cleanup",
            GRACE.as_secs()
        );
    });
    thread::sleep(Duration::from_millis(200));
    die_of(signal);
}

/// End the process by `signal`'s default action, so that the parent sees a death
/// by signal (`WIFSIGNALED`; a shell shows 128+N, as an `exit` would), as it
/// would of a program with no handler. Called once cleanup is done.
pub(crate) fn die_of(signal: i32) -> ! {
    // XCPU's default also dumps core: a deliberate exit is no crash to debug.
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE)
    {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, hard);
    }
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    // emulate_default_handler only returns for signals whose default is to ignore.
    std::process::exit(128 + signal);
}

/// What the watchdog acts on: a supervisor waiting for its work is never ended
/// by it (the work may take its time to stop); its deadline is.
fn watched() -> Option<i32> {
    if SUPERVISING.load(Ordering::Relaxed) && DEADLINE.get().is_none() {
        return None;
    }
    pending()
}

/// This process supervises a work (`dbbackup run`): from now on, signals stop a
/// running backup only through `interrupt`.
pub(crate) fn supervise() {
    SUPERVISING.store(true, Ordering::Relaxed);
}

/// Whether this process is a `dbbackup run` supervising a work.
pub(crate) fn supervising() -> bool {
    SUPERVISING.load(Ordering::Relaxed)
}

/// The first signal the handlers saw, if any: a supervisor starting up
/// takes over what came before its own handlers were in place.
pub(crate) fn received() -> Option<i32> {
    first_received()
}

/// Ask a backup running in this (supervising) process to stop, as `signal`
/// would; the first request decides.
pub(crate) fn interrupt(signal: i32) {
    let _ = STOP.compare_exchange(0, signal as usize, Ordering::SeqCst, Ordering::SeqCst);
}

/// The signal received so far, if any (none counts under `bound`).
pub(crate) fn pending() -> Option<i32> {
    if DEADLINE.get().is_some() {
        return stop_if_requested()
            .err()
            .map(|_| signal_hook::consts::SIGTERM);
    }
    if SUPERVISING.load(Ordering::Relaxed) {
        return match STOP.load(Ordering::Relaxed) {
            0 => None,
            signal => Some(signal as i32),
        };
    }
    first_received()
}

/// From now on, signals no longer interrupt; the run ends `budget` after `start`
/// (when SLURM's TERM came: KillWait runs from then, not from when the backup
/// began). Only the first call counts.
pub(crate) fn bound_since(start: Instant, budget: Duration) {
    let _ = DEADLINE.set((start + budget, budget));
}

/// Time left before the deadline set by `bound`, if any.
pub(crate) fn remaining() -> Option<Duration> {
    DEADLINE
        .get()
        .map(|(deadline, _)| deadline.saturating_duration_since(Instant::now()))
}

/// `Err(Interrupted)` once a termination signal has arrived; under `bound`,
/// `Err(OutOfTime)` once the deadline has passed.
pub(crate) fn stop_if_requested() -> Result<()> {
    if let Some(&(deadline, budget)) = DEADLINE.get() {
        return if Instant::now() >= deadline {
            Err(Error::OutOfTime(budget.as_secs()))
        } else {
            Ok(())
        };
    }
    match pending() {
        Some(signal) => Err(Error::Interrupted(signal)),
        None => Ok(()),
    }
}
