//! The summary log: one logfmt line per event,
//! `time=<RFC 3339> job=<tag> host=<name> event=<what> status=<ok|skipped|failed> ...`.
//!
//! Each line is written whole by one `write(2)` on an `O_APPEND` descriptor while
//! holding a POSIX lock on the log file: `O_APPEND` alone keeps lines whole on a
//! local filesystem, and the lock keeps them whole on NFS, where appends from
//! different clients are not atomic.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;

use crate::error::{Context, Error, Result, show};
use crate::slurm::job::JobContext;

/// Longest value kept in a line: values come from the environment and errors.
const MAX_VALUE: usize = 512;
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A line's `status`: how the event went (not an exit code: see `exit_code::ExitCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Ok,
    Skipped,
    Failed,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Ok => "ok",
            EventStatus::Skipped => "skipped",
            EventStatus::Failed => "failed",
        }
    }
}

/// A line being built; `fields` follow the fixed prefix in the order given.
pub struct Line {
    text: String,
}

impl Line {
    pub fn new(job: &JobContext, event: &str, status: EventStatus) -> Line {
        let mut line = Line {
            text: String::new(),
        };
        line.field("time", &stamp(jiff::Timestamp::now()));
        line.field("job", &job.tag);
        line.field("host", &job.host);
        line.field("event", event);
        line.field("status", status.as_str());
        line
    }

    /// `backup=NAME`, followed by `type=diff` when it names a differential
    /// backup (a full one adds no field, as before differential backups existed).
    pub fn backup(&mut self, name: &str) -> &mut Self {
        self.field("backup", name);
        if crate::store::BackupName::parse(name).is_some_and(|name| name.diff) {
            self.field("type", "diff");
        }
        self
    }

    /// Add `key=value`, quoting and escaping the value as logfmt requires.
    pub fn field(&mut self, key: &str, value: &str) -> &mut Self {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(&escape(value));
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// RFC 3339 UTC with exactly three fractional digits: fixed width, so sorting
/// lines as text keeps them in time order (`…32.910Z`, never `…32.91Z`), and
/// log lines (`logging`) line up in columns.
pub(crate) fn stamp(now: jiff::Timestamp) -> String {
    let now = now.round(jiff::Unit::Millisecond).unwrap_or(now);
    format!("{now:.3}")
}

/// logfmt value: bare when safe, else double-quoted with `\"`, `\\`, `\n`, `\r`,
/// `\t` and `\u{..}` escapes, so no value can end a line or forge a key.
pub fn escape(value: &str) -> String {
    let value: String = value.chars().take(MAX_VALUE).collect();
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '=' | '\\'));
    if bare {
        return value;
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{{{:x}}}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Append `line` to the log at `path` (creating it and its directory).
pub fn append(path: &Path, line: &Line) -> Result<()> {
    crate::sqlite_file::refuse_special_file(path, "summary log")?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Not "File exists" from mkdir (T30 F7).
        if parent.exists() && !parent.is_dir() {
            return Err(Error::failed(format!(
                "cannot write summary log {}: {} is not a directory",
                show(path),
                show(parent)
            )));
        }
        crate::store::perms::create_dir_all(parent)
            .context(|| format!("cannot create directory for summary log {}", show(path)))?;
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o664)
        // O_NONBLOCK: a FIFO planted as the log fails or opens at once, never hangs.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .context(|| format!("cannot open summary log {}", show(path)))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(Error::failed(format!(
            "summary log {} is not a regular file",
            show(path)
        )));
    }
    crate::store::perms::settle_file(&file, 0o664, path);
    let mut bytes = line.text.clone().into_bytes();
    bytes.push(b'\n');
    let _waited = lock_for_append(&file, path)?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_data())
        .context(|| format!("cannot append to summary log {}", show(path)))
    // Closing the file releases the lock.
}

/// Take the append lock: one attempt, then one blocking wait in the kernel (or
/// the NFS lock manager) rather than polling, so a thousand tasks appending at
/// once cost one or two lock calls each.
fn lock_for_append(file: &fs::File, path: &Path) -> Result<Option<fs::File>> {
    match crate::lock::lock_waiting(file, LOCK_WAIT) {
        Ok(waited) => Ok(waited),
        // Without working locks, O_APPEND still keeps local lines whole.
        Err(Errno::ENOLCK | Errno::ENOSYS | Errno::EOPNOTSUPP) => Ok(None),
        Err(errno) => Err(Error::Io {
            context: format!("cannot lock summary log {}", show(path)),
            source: errno.into(),
        }),
    }
}

/// Append, but only warn on failure: a summary line is never worth failing a job.
pub fn append_or_warn(path: &Path, line: &Line) {
    if let Err(error) = append(path, line) {
        tracing::warn!("summary line not written: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_break_or_forge_a_line() {
        assert_eq!(escape("plain-1.2"), "plain-1.2");
        assert_eq!(escape(""), "\"\"");
        assert_eq!(escape("a b"), "\"a b\"");
        assert_eq!(escape("x\nstatus=ok"), "\"x\\nstatus=ok\"");
        assert_eq!(escape("say \"hi\" \\"), "\"say \\\"hi\\\" \\\\\"");
        assert_eq!(escape("bell\u{7}"), "\"bell\\u{7}\"");
        assert_eq!(escape(&"x".repeat(10_000)).len(), MAX_VALUE);
    }

    #[test]
    fn timestamps_have_fixed_width_milliseconds() {
        let at = |s: &str| stamp(s.parse::<jiff::Timestamp>().unwrap());
        assert_eq!(at("2026-11-26T13:46:32.91Z"), "2026-11-26T13:46:32.910Z");
        assert_eq!(at("2026-11-26T13:46:32Z"), "2026-11-26T13:46:32.000Z");
        assert_eq!(at("2026-11-26T13:46:32.2364Z"), "2026-11-26T13:46:32.236Z");
        assert!(at("2026-11-26T13:46:32.91Z") > at("2026-11-26T13:46:32.236Z"));
    }

    #[test]
    fn a_line_starts_with_the_fixed_fields() {
        let job = JobContext::from_lookup(|_| None, "n1".into());
        let mut line = Line::new(&job, "post-job", EventStatus::Ok);
        line.field("exit_status", "3");
        let text = line.text();
        assert!(text.starts_with("time="));
        assert!(
            text.contains(" job=local host=n1 event=post-job status=ok exit_status=3"),
            "{text}"
        );
    }

    #[test]
    fn a_line_naming_a_diff_says_so_and_a_full_backup_adds_nothing() {
        let job = JobContext::from_lookup(|_| None, "n1".into());
        let mut line = Line::new(&job, "post-job", EventStatus::Ok);
        line.backup("backup_20260101_000000.diff.gz");
        assert!(
            line.text()
                .ends_with(" backup=backup_20260101_000000.diff.gz type=diff"),
            "{}",
            line.text()
        );
        let mut line = Line::new(&job, "post-job", EventStatus::Ok);
        line.backup("backup_20260101_000000.db.gz")
            .field("note", "backup");
        assert!(
            line.text()
                .ends_with(" backup=backup_20260101_000000.db.gz note=backup"),
            "{}",
            line.text()
        );
        // Any other field is only itself, whatever its key or value.
        let mut line = Line::new(&job, "post-job", EventStatus::Ok);
        line.field("base", "backup_20260101_000000.diff.gz");
        assert!(!line.text().contains("type="), "{}", line.text());
    }
}
