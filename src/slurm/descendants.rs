//! Every process the work started, wherever it went: `timeout`, `set -m`,
//! `setsid` or Python's `start_new_session` put a descendant in a new process
//! group or session, which a signal to the work's group does not reach. As a
//! child subreaper, dbbackup becomes the parent of the work's orphans (instead
//! of init), so the parent chains in /proc still lead to it: those are what
//! it signals, waits for and reaps.

use std::collections::HashMap;
use std::fs;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{Pid, getpgrp, getpid};

/// One process, as /proc/PID/stat says.
struct Proc {
    ppid: i32,
    pgid: i32,
    zombie: bool,
}

/// Make the work's orphans dbbackup's children (so they can be found, waited
/// for and reaped) rather than init's.
pub(crate) fn adopt_orphans() {
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        // Without it only the work's own group is stopped, as before.
        tracing::debug!("cannot become a child subreaper: {error}");
    }
}

/// The live processes descended from the work (`work`: its pid and process
/// group), its orphans included; dbbackup's own helpers (children in its own
/// process group, such as `scontrol`) are not the work's. Orphans that ended
/// are reaped on the way (the work itself is left to its `Child`).
pub(crate) fn alive(work: i32) -> Vec<i32> {
    let mut pids: Vec<i32> = live(work).into_iter().map(|(pid, _)| pid).collect();
    pids.sort_unstable();
    pids
}

/// The live descendants with their process groups; reaps ended orphans.
fn live(work: i32) -> Vec<(i32, i32)> {
    let me = getpid().as_raw();
    let my_group = getpgrp().as_raw();
    let table = table();
    let mut found = Vec::new();
    for (&pid, proc) in &table {
        let Some(top) = child_of_me_above(pid, me, &table) else {
            continue;
        };
        let own_helper = top != work && table.get(&top).is_some_and(|t| t.pgid == my_group);
        if own_helper {
            continue;
        }
        if !proc.zombie {
            found.push((pid, proc.pgid));
        } else if proc.ppid == me && pid != work {
            // A re-parented orphan that ended: its status is nobody's.
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
    found
}

/// Send `signal` to every live descendant of the work that is not in its
/// group (the caller signals the group itself).
pub(crate) fn signal(work: i32, signal: i32) {
    let Ok(signal) = Signal::try_from(signal) else {
        return;
    };
    // Once is enough: a second TERM means "now" to some programs.
    for (pid, _) in live(work).into_iter().filter(|&(_, group)| group != work) {
        // ESRCH: it ended meanwhile.
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// The ancestor of `pid` (itself included) whose parent is `me`, if any.
fn child_of_me_above(pid: i32, me: i32, table: &HashMap<i32, Proc>) -> Option<i32> {
    let mut at = pid;
    // A chain is at most as long as the table; a loop (pids reused during the
    // scan) ends there.
    for _ in 0..=table.len() {
        let parent = table.get(&at)?.ppid;
        if parent == me {
            return Some(at);
        }
        if parent <= 1 {
            return None;
        }
        at = parent;
    }
    None
}

fn table() -> HashMap<i32, Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and ')'.
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?;
            let ppid = fields.next()?.parse().ok()?;
            let pgid = fields.next()?.parse().ok()?;
            let zombie = matches!(state, "Z" | "X");
            Some((pid, Proc { ppid, pgid, zombie }))
        })
        .collect()
}
