//! Waiting for something another process does, with a deadline: a condition
//! polled until it holds, a child until it exits. A wait that runs out is a
//! test failure naming what never happened, never a stuck test run.

use std::fmt::Debug;
use std::process::{Child, ExitStatus, Output};
use std::time::{Duration, Instant};

/// Calls `probe` every `every` until it returns `Ok`; panics after `limit`
/// with `what` and the last `Err` (what was seen instead).
pub(crate) fn poll_until<T, Seen: Debug>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, Seen>,
) -> T {
    let started = Instant::now();
    loop {
        let seen = match probe() {
            Ok(found) => return found,
            Err(seen) => seen,
        };
        assert!(
            started.elapsed() < limit,
            "{what}: not so after {limit:?}; last seen: {seen:?}"
        );
        std::thread::sleep(every);
    }
}

/// Polls `done` every `every` until it is true; panics after `limit` with `what`.
pub(crate) fn wait_until(
    what: &str,
    limit: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) {
    poll_until(what, limit, every, || if done() { Ok(()) } else { Err(()) });
}

/// The child's exit status once it exits within `limit`; `None` if it is
/// still running then (it is left running: the caller decides what to kill).
pub(crate) fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The child's output once it exits within `limit`; `None` after killing it
/// (the child alone, not its group) if it did not.
pub(crate) fn output_within(mut child: Child, limit: Duration) -> Option<Output> {
    if exit_within(&mut child, limit).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    Some(child.wait_with_output().unwrap())
}

/// Until the wall clock is in a second after the one it is in now (backup
/// names are by the second; a new name needs a new second).
pub(crate) fn wait_for_the_next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 5_000_000,
    ));
}
