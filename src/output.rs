//! Results go to stdout (empty under `--quiet`), only through this module;
//! diagnostics go to stderr via tracing. A closed pipe (`dbbackup list | head`) is
//! not an error; a stdout that cannot be written (a full disk) fails the command.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

/// `--format` of the commands that report something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub quiet: bool,
    pub format: Format,
}

impl Output {
    pub(crate) fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// One line of text (text format only).
    pub(crate) fn line(&self, text: impl AsRef<str>) {
        if !self.quiet && !self.json() {
            print(format!("{}\n", text.as_ref()).as_bytes());
        }
    }

    /// [`Output::line`] of a backup not made (skipped, reused, unchanged):
    /// under `dbbackup run`, whose stdout is the work's, logged instead, so
    /// that the job's output says what came of its pre-job and post-job
    /// (a made backup's own `published` line says it) (T25 #11).
    pub(crate) fn not_made(&self, text: impl AsRef<str>) {
        if self.quiet && crate::signals::supervising() {
            tracing::info!("{}", text.as_ref());
        } else {
            self.line(text);
        }
    }

    /// A JSON document (JSON format only).
    pub(crate) fn document(&self, value: &impl Serialize) {
        if !self.quiet && self.json() {
            match serde_json::to_string_pretty(value) {
                Ok(text) => print(format!("{text}\n").as_bytes()),
                Err(e) => tracing::error!("cannot encode JSON output: {e}"),
            }
        }
    }
}

/// A write that fails is kept in `LOST` (said once, by `lost`, when the command
/// ends), not warned about per line.
fn print(bytes: &[u8]) {
    let _ = write_stdout(bytes);
}

/// Set once a reader has gone away; later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Why stdout could not be written (a full disk, an I/O error), first time:
/// later output is dropped, and the command fails with this one reason.
static LOST: OnceLock<String> = OnceLock::new();

/// Why the report (or part of it) could not be written to stdout, if it could
/// not: a command whose output is lost has not done what it was asked.
pub(crate) fn lost() -> Option<&'static str> {
    LOST.get().map(String::as_str)
}

/// Set before `main` when fd 1 was closed at start (`crate::stdout_closed_at_start`):
/// what the runtime put there is /dev/null, not where the caller looks.
static CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

pub(crate) fn closed_at_start() {
    CLOSED_AT_START.store(true, Ordering::Relaxed);
}

/// Write and flush stdout: every byte a command prints goes through here. A closed
/// pipe (`dbbackup list | head`) is not an error: the reader has what it wanted, so
/// the rest of the output is dropped while the command finishes its work, cleans
/// up and exits with its own status.
pub(crate) fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) || LOST.get().is_some() {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    let written = if CLOSED_AT_START.load(Ordering::Relaxed) {
        // What the write would have met had the runtime left fd 1 closed.
        Err(io::Error::from_raw_os_error(nix::libc::EBADF))
    } else {
        stdout.write_all(bytes).and_then(|()| stdout.flush())
    };
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            tracing::debug!("stdout closed by its reader; output dropped");
            Ok(())
        }
        Err(e) => {
            let _ = LOST.set(e.to_string());
            Err(e)
        }
        Ok(()) => Ok(()),
    }
}
