//! One error type for the library; printed once, in `run`, as one line.

use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};

use crate::exit_code::ExitCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or settings given on the command line or in the environment.
    #[error("{0}")]
    Usage(String),
    /// A bad configuration file: names the file.
    #[error("config file {}{}: {message}", path.display(), line.map(|n| format!(" line {n}")).unwrap_or_default())]
    Config {
        path: PathBuf,
        /// Where in the file, when known.
        line: Option<usize>,
        message: String,
    },
    /// An I/O failure, with what we were doing and on which path.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// An SQLite failure, with what we were doing.
    #[error("{context}: {source}")]
    Sqlite {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A whole read found backup file `backup` damaged (a CRC, size, checksum or
    /// payload that does not match): it names the file so that the finding can be
    /// remembered (`store::damage`), which an I/O error while reading must not be.
    /// `why` is the finding alone, as remembered; the message names the file once.
    #[error("backup {name} is damaged: {why}")]
    Damaged {
        backup: PathBuf,
        name: String,
        why: String,
    },
    /// Anything else that makes the command fail: bad backup, missing database, ...
    #[error("{0}")]
    Failed(String),
    /// The database is gone while restore points of it are kept (in the
    /// backup directory or a mirror): lost, not new. A job's work must not
    /// start a new, empty one in its place (`run`).
    #[error("{0}")]
    Lost(String),
    /// A termination signal arrived; temp files were removed and the lock released.
    // Said of every command (backup, verify, sync, export): nothing it was making counts.
    #[error("interrupted by signal {0}; nothing half-done was kept")]
    Interrupted(i32),
    /// A termination signal stopped a command that says itself what was left
    /// behind (a restore names its target).
    #[error("{message}")]
    Stopped { signal: i32, message: String },
    /// The time allowed after SLURM's TERM (`term_grace_seconds`, at most
    /// KillWait less a margin) ran out.
    #[error(
        "gave up after {0} s, the time allowed after SLURM's TERM (term_grace_seconds or KillWait): SLURM kills the job soon; nothing half-done was kept"
    )]
    OutOfTime(u64),
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    /// The documented exit code: 1 failure, 2 usage/config, death by signal N.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) | Error::Config { .. } => ExitCode::Usage,
            Error::Interrupted(signal) | Error::Stopped { signal, .. } => ExitCode::Signal(*signal),
            _ => ExitCode::Failure,
        }
    }

    /// True when the underlying cause is a full disk or exhausted quota.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc_enospc) if libc_enospc == nix::libc::ENOSPC || libc_enospc == nix::libc::EDQUOT))
    }
}

/// Attach "what we were doing" to I/O and SQLite results.
pub trait Context<T> {
    fn context<C: Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn context<C: Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context().to_string(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, rusqlite::Error> {
    fn context<C: Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Sqlite {
            context: context().to_string(),
            source,
        })
    }
}

/// For a write refused with `source` (EACCES, EPERM, EROFS) while creating a
/// file in `dir`: the context "`what` DIR is not writable (owner, mode)" when the
/// directory itself is the cause, which is what the user must fix, rather than
/// the file we tried.
pub fn not_writable(what: &str, dir: &Path, source: &io::Error) -> Option<String> {
    use nix::libc::{EACCES, EPERM, EROFS};
    use nix::unistd::{AccessFlags, User, access};
    use std::os::unix::fs::MetadataExt;
    if !matches!(source.raw_os_error(), Some(EACCES | EPERM | EROFS)) {
        return None;
    }
    // The kernel's own answer for this process, not a guess from the mode bits.
    if access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok() {
        return None;
    }
    let what = format!("{what} {} is not writable", show(dir));
    match std::fs::metadata(dir) {
        Ok(meta) if source.raw_os_error() != Some(EROFS) => {
            let owner = User::from_uid(meta.uid().into())
                .ok()
                .flatten()
                .map_or_else(|| meta.uid().to_string(), |user| user.name);
            Some(format!(
                "{what} (owner {owner}, mode {:o})",
                meta.mode() & 0o7777
            ))
        }
        _ => Some(what),
    }
}

/// An error line with each word longer than 300 characters (`LONG_WORD`)
/// shortened to its start and end: a pasted 5000-digit value is said, not
/// echoed whole, and the line stays one a terminal shows (T28 F15).
pub fn elide_long_words(line: &str) -> std::borrow::Cow<'_, str> {
    if !line
        .split_whitespace()
        .any(|w| w.chars().count() > LONG_WORD)
    {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut shortened = String::with_capacity(LONG_WORD * 2);
    let mut rest = line;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        shortened.push_str(&rest[..start]);
        let word_end = rest[start..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |end| start + end);
        let word = &rest[start..word_end];
        let chars = word.chars().count();
        if chars > LONG_WORD {
            let head: String = word.chars().take(100).collect();
            let tail: String = word.chars().skip(chars - 40).collect();
            shortened.push_str(&format!("{head}…({chars} characters in all)…{tail}"));
        } else {
            shortened.push_str(word);
        }
        rest = &rest[word_end..];
    }
    shortened.push_str(rest);
    std::borrow::Cow::Owned(shortened)
}

/// Longer than any path a user types; shorter than a pasted blob.
const LONG_WORD: usize = 300;

/// An error line with its control characters (from a name or value the user
/// gave) written as escapes, `\u{1}`: never raw to the terminal or the log
/// (T30 F9). Line breaks and tabs stay, for the few messages laid out so.
pub fn escape_controls(line: &str) -> std::borrow::Cow<'_, str> {
    let escaped = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !line.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(line);
    }
    std::borrow::Cow::Owned(
        line.chars()
            .map(|c| match escaped(c) {
                true => c.escape_unicode().to_string(),
                false => c.to_string(),
            })
            .collect(),
    )
}

/// `path.display()` for messages, quoted when it has spaces or is empty.
pub fn show(path: &Path) -> String {
    let text = path.display().to_string();
    if text.is_empty() || text.contains(char::is_whitespace) {
        format!("'{text}'")
    } else {
        text
    }
}

#[cfg(test)]
mod elide_tests {
    use super::*;

    #[test]
    fn a_long_word_is_said_by_its_ends_and_length() {
        let value = "9".repeat(5000);
        let line = format!(
            "check.max_age: '{value}h' is out of range (the line reads:   max_age: {value})"
        );
        let shown = elide_long_words(&line);
        assert!(shown.len() < 500, "{shown}");
        assert!(shown.starts_with("check.max_age: '999"), "{shown}");
        assert!(shown.contains("…(5003 characters in all)…"), "{shown}");
        assert!(shown.contains("99h' is out of range"), "{shown}");
        assert!(shown.contains("max_age: 999"), "{shown}");
        assert!(shown.contains("…(5001 characters in all)…"), "{shown}");
        let short = "a line with /a/normal/path.db and   spaces";
        assert_eq!(elide_long_words(short), short);
    }

    #[test]
    fn control_characters_a_user_gave_are_escaped_in_an_error_line() {
        assert_eq!(
            escape_controls("no backup named 'b_\u{1b}[2J\u{1}\u{7f}.db.gz'"),
            "no backup named 'b_\\u{1b}[2J\\u{1}\\u{7f}.db.gz'"
        );
        let plain = "a line\twith a tab\nand a break";
        assert_eq!(escape_controls(plain), plain);
    }
}
