//! Results go to stdout (empty under `--quiet`), only through this module;
//! diagnostics go to stderr via tracing. A closed pipe (`dbbackup list | head`) is
//! not an error.

use std::io::{self, Write};
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

fn print(bytes: &[u8]) {
    if let Err(e) = write_stdout(bytes) {
        tracing::warn!("cannot write to stdout: {e}");
    }
}

/// Set once a reader has gone away; later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Write and flush stdout: every byte a command prints goes through here. A closed
/// pipe (`dbbackup list | head`) is not an error: the reader has what it wanted, so
/// the rest of the output is dropped while the command finishes its work, cleans
/// up and exits with its own status.
pub(crate) fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            tracing::debug!("stdout closed by its reader; output dropped");
            Ok(())
        }
        other => other,
    }
}
