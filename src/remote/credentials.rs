//! `AWS_PROFILE` and the shared credentials file. object_store reads the AWS
//! environment variables (and instance/container credentials) but not
//! `~/.aws/credentials`, which is where most users keep a centre's keys: the
//! profile's keys are read here, a few lines of INI, when the environment has none.

use std::path::PathBuf;

use crate::error::{Error, Result, show};

/// Keys of one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// The shared credentials file: where it is, and how a message names it
/// (the variable that chose it, or `~/.aws/credentials`).
struct SharedFile {
    path: PathBuf,
    named: String,
    /// Chosen by `AWS_SHARED_CREDENTIALS_FILE`: a missing one is a mistake.
    explicit: bool,
}

impl SharedFile {
    fn in_use() -> SharedFile {
        match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").filter(|p| !p.is_empty()) {
            Some(path) => {
                let path = PathBuf::from(path);
                let named = format!("AWS_SHARED_CREDENTIALS_FILE={}", show(&path));
                SharedFile {
                    path,
                    named,
                    explicit: true,
                }
            }
            None => {
                let path = match std::env::var_os("HOME") {
                    Some(home) => PathBuf::from(home).join(".aws/credentials"),
                    None => PathBuf::from("~/.aws/credentials"),
                };
                SharedFile {
                    named: show(&path),
                    path,
                    explicit: false,
                }
            }
        }
    }
}

/// The keys of `AWS_PROFILE` (else `default`) in `AWS_SHARED_CREDENTIALS_FILE`
/// (else `~/.aws/credentials`); `None` when the environment already gives
/// keys, or when no file is there to read (`~/.aws/credentials` absent:
/// no credentials at all, which the caller says) or `other_source` (a web
/// identity or container role) is meant to give them. A profile the file lacks
/// or has only half of, and a file named but not there, are setting errors
/// naming the file and what it lacks: falling through to the
/// instance-metadata service would only mislead.
pub(crate) fn from_shared_file(other_source: bool) -> Result<Option<Keys>> {
    // The environment gives keys only with both halves (the AWS SDKs' rule).
    if is_set("AWS_ACCESS_KEY_ID") && is_set("AWS_SECRET_ACCESS_KEY") {
        return Ok(None);
    }
    let file = SharedFile::in_use();
    let profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    // Only a profile named, or a file named with nothing else to give keys,
    // makes a missing file a mistake.
    let must_exist = profile.is_some() || (file.explicit && !other_source);
    let text = match std::fs::read_to_string(&file.path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(None),
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_string()
            } else {
                format!("cannot be read ({e})")
            };
            let whose = profile
                .map(|p| format!("AWS_PROFILE '{p}': "))
                .unwrap_or_default();
            return Err(Error::usage(format!(
                "{whose}{} {why} (docs/remote.md)",
                file.named
            )));
        }
    };
    let named = profile.is_some();
    let profile = profile.unwrap_or_else(|| "default".to_string());
    // ~/.aws/credentials holding only named profiles on a cloud machine with an
    // instance role: the SDKs pass over the missing [default] and ask the
    // metadata service, so do we (with that switched off, it is a mistake).
    let instance_role = !file.explicit && !metadata_service_disabled();
    match (
        profile_keys(&text, &profile),
        named || !(other_source || instance_role),
    ) {
        (Section::Complete(keys), _) => {
            warn_if_others_can_read(&file.path);
            Ok(Some(keys))
        }
        // The AWS SDKs pass over a profile the file lacks when another source
        // gives keys, never over half of one.
        (Section::Absent | Section::Empty, false) => Ok(None),
        (section, _) => {
            let whose = if named {
                format!("AWS_PROFILE '{profile}': ")
            } else {
                String::new()
            };
            Err(Error::usage(format!(
                "{whose}{} (docs/remote.md)",
                section.lacks(&profile, &file.named)
            )))
        }
    }
}

/// The shared credentials file and profile keys would come from, as a
/// message names them: `~/.aws/credentials [default]`.
pub(crate) fn file_and_profile() -> String {
    let profile = std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".to_string());
    format!("{} [{profile}]", SharedFile::in_use().named)
}

/// The end of an access key id, to tell keys apart in a message (an id is
/// no secret, but nobody needs all of it to see which one was used).
pub(crate) fn key_id_end(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let end: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{end}")
}

/// A credentials file open to group or others: one WARN, as ssh gives
/// for a key file (its keys are still used: refusing would stop backups).
fn warn_if_others_can_read(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} is open to others than its owner (mode {mode:o}): its keys are used, but run `chmod 600 {}`",
            show(path),
            show(path)
        );
    }
}

/// `AWS_EC2_METADATA_DISABLED`: the AWS SDKs' switch for the cloud
/// instance-metadata service (off on most clusters, where it would hang).
pub(crate) fn metadata_service_disabled() -> bool {
    std::env::var("AWS_EC2_METADATA_DISABLED")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether the variable `name` is set to something: an empty one (a cleared
/// variable in a module or job script) is unset, as the AWS SDKs take it.
pub(crate) fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// One of `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` set, the other not:
/// `(set, unset)`. Half of the environment's keys are no keys.
pub(crate) fn half_keys_in_env() -> Option<(&'static str, &'static str)> {
    match (is_set("AWS_ACCESS_KEY_ID"), is_set("AWS_SECRET_ACCESS_KEY")) {
        (true, false) => Some(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
        (false, true) => Some(("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")),
        _ => None,
    }
}

/// `AWS_ACCESS_KEY_ID` or `AWS_SECRET_ACCESS_KEY` set but empty: the
/// environment's keys would sign with nothing (the store refuses them), so
/// they count only when the shared file gives none (the caller says so).
pub(crate) fn empty_keys_in_env() -> Option<&'static str> {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .into_iter()
        .find(|name| std::env::var_os(name).is_some_and(|v| v.is_empty()))
}

/// `key = value` or `key: value`: Python's configparser, which the AWS CLI
/// and boto3 read this file with, splits at the first of either.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let at = line.find(['=', ':'])?;
    Some((&line[..at], &line[at + 1..]))
}

/// What the file holds for one profile.
#[derive(Debug, PartialEq, Eq)]
enum Section {
    Absent,
    /// The section, without either key.
    Empty,
    /// One of the two keys: which one it has.
    Half(&'static str),
    Complete(Keys),
}

impl Section {
    /// What the file lacks for `profile` (never a key's value).
    fn lacks(&self, profile: &str, file: &str) -> String {
        match self {
            Section::Absent => format!("{file} has no [{profile}] section"),
            Section::Empty => format!(
                "[{profile}] in {file} has no aws_access_key_id and no aws_secret_access_key"
            ),
            Section::Half(has) => {
                let missing = if *has == "aws_access_key_id" {
                    "aws_secret_access_key"
                } else {
                    "aws_access_key_id"
                };
                format!("[{profile}] in {file} has {has} but no {missing}")
            }
            Section::Complete(_) => String::new(),
        }
    }
}

/// `[profile]` then `key = value` (or `key: value`) lines; `#`/`;` comments.
fn profile_keys(text: &str, profile: &str) -> Section {
    let (mut inside, mut found) = (false, false);
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == profile;
            found |= inside;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((key, value)) = key_value(line) {
            let value = value.trim().to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = Some(value),
                "aws_secret_access_key" => secret = Some(value),
                "aws_session_token" => token = Some(value),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Section::Complete(Keys {
            access_key_id,
            secret_access_key,
            session_token: token,
        }),
        (Some(_), None) => Section::Half("aws_access_key_id"),
        (None, Some(_)) => Section::Half("aws_secret_access_key"),
        (None, None) if found => Section::Empty,
        (None, None) => Section::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_profile_keys_are_read_and_others_ignored() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n# c\n[centre]\naws_access_key_id=C\naws_secret_access_key= D\naws_session_token = T\n";
        let keys = |profile| match profile_keys(text, profile) {
            Section::Complete(keys) => keys,
            other => panic!("{other:?}"),
        };
        assert_eq!(keys("default").access_key_id, "A");
        let centre = keys("centre");
        assert_eq!(
            (
                centre.secret_access_key.as_str(),
                centre.session_token.as_deref()
            ),
            ("D", Some("T"))
        );
        assert_eq!(profile_keys(text, "missing"), Section::Absent);
    }

    #[test]
    fn colon_lines_are_read_as_configparser_reads_them() {
        let text = "[default]\naws_access_key_id: A\naws_secret_access_key = B:C=D\n";
        let Section::Complete(keys) = profile_keys(text, "default") else {
            panic!("no keys")
        };
        assert_eq!(
            (keys.access_key_id.as_str(), keys.secret_access_key.as_str()),
            ("A", "B:C=D")
        );
    }
}
