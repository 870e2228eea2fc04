//! A progress bar on stderr for long backups, verifies and restores — only for a
//! person at a terminal: never under `--quiet`, when stderr is not a terminal
//! (log files, pipes), in a SLURM batch job, or with TERM=dumb.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::slurm::job::JobContext;

/// A byte-counting bar, or nothing.
#[derive(Clone)]
pub(crate) struct Progress(Option<ProgressBar>);

impl Progress {
    pub(crate) fn hidden() -> Progress {
        Progress(None)
    }

    /// `total` bytes of `what`, shown only when `wanted` and a person can see it
    /// (not in `job` when it is a batch job).
    pub(crate) fn bytes(total: u64, what: &str, wanted: bool, job: &JobContext) -> Progress {
        if !wanted || job.batch || !visible() {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>8} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Progress(Some(bar))
    }

    pub(crate) fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }

    /// Remove the bar, leaving the terminal as it was.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}

/// A terminal that can draw a bar.
fn visible() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |term| term != "dumb")
}
