//! SIGTERM / SIGINT / SIGHUP become a flag that long operations poll, so a
//! running backup can remove its temp files and release its lock before exiting.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

const HANDLED: [i32; 3] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGHUP,
];

/// Install the handlers. Safe to call more than once.
pub fn install() {
    let flag = RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for signal in HANDLED {
        // Registration only fails for forbidden signals, which these are not.
        let _ = signal_hook::flag::register_usize(signal, Arc::clone(flag), signal as usize);
    }
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
