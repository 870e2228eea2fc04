//! Results go to stdout (empty under `--quiet`); diagnostics go to stderr via
//! tracing. A closed pipe (`dbbackup list | head`) is not an error.

use std::io::{self, Write};

use serde::Serialize;

use crate::cli::Format;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub quiet: bool,
    pub format: Format,
}

impl Output {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// One line of text (text format only).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.quiet && !self.json() {
            print(format!("{}\n", text.as_ref()).as_bytes());
        }
    }

    /// A JSON document (JSON format only).
    pub fn document(&self, value: &impl Serialize) {
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

/// Write and flush stdout. A closed pipe ends the process quietly: the reader
/// (`dbbackup list | head`) has what it wanted.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}
