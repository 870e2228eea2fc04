//! SIGTERM / SIGINT / SIGHUP become a flag that long operations poll, so a
//! running backup can remove its temp files and release its lock before exiting.

use std::sync::Arc;
use std::sync::Once;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::error::{Error, Result};

static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

const HANDLED: [i32; 3] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGHUP,
];

/// How long cleanup may take after a termination signal before the process ends
/// anyway: a system call that cannot be interrupted (a write to a pipe nobody
/// reads, a hung filesystem) must not keep a job, its lock and its node forever.
pub const GRACE: Duration = Duration::from_secs(5);

/// Install the handlers and the watchdog that enforces `GRACE`. Safe to call more
/// than once.
pub fn install() {
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
    });
}

/// Once a signal has arrived, give cleanup `GRACE`, then end the process the way
/// the signal's default action would (a killed run's temp files are removed by
/// the next lock holder; the lock goes with the process).
fn watchdog() {
    let signal = loop {
        if pending().is_some() {
            thread::sleep(GRACE);
            // Re-read after the grace: `pending` decides whether the signal still
            // counts (a run may stop counting signals and keep its own deadline).
            if let Some(signal) = pending() {
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
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    // emulate_default_handler only returns for signals whose default is to ignore.
    std::process::exit(128 + signal);
}

/// The signal received so far, if any.
pub fn pending() -> Option<i32> {
    match RECEIVED.get()?.load(Ordering::Relaxed) {
        0 => None,
        signal => Some(signal as i32),
    }
}

/// `Err(Interrupted)` once a termination signal has arrived.
pub fn check() -> Result<()> {
    match pending() {
        Some(signal) => Err(Error::Interrupted(signal)),
        None => Ok(()),
    }
}
