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

/// The keys of `AWS_PROFILE` (else `default`) in `AWS_SHARED_CREDENTIALS_FILE`
/// (else `~/.aws/credentials`); `None` when the environment already gives keys
/// or the file has none for `default`. A profile named in `AWS_PROFILE` that
/// the file does not give keys for is an error naming both: falling through
/// to the instance-metadata service would only mislead.
pub(crate) fn from_shared_file() -> Result<Option<Keys>> {
    if is_set("AWS_ACCESS_KEY_ID") {
        return Ok(None);
    }
    let path = match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => PathBuf::from(path),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".aws/credentials"),
            None => PathBuf::from("~/.aws/credentials"),
        },
    };
    let text = std::fs::read_to_string(&path).ok();
    let keys = |profile: &str| text.as_deref().and_then(|t| profile_keys(t, profile));
    match std::env::var("AWS_PROFILE") {
        Ok(profile) if !profile.is_empty() => match keys(&profile) {
            Some(keys) => Ok(Some(keys)),
            None => Err(Error::usage(format!(
                "AWS_PROFILE '{profile}': no such profile with aws_access_key_id and aws_secret_access_key in {} (docs/remote.md)",
                show(&path)
            ))),
        },
        _ => Ok(keys("default")),
    }
}

/// Whether the variable `name` is set to something: an empty one (a cleared
/// variable in a module or job script) is unset, as the AWS SDKs take it.
pub(crate) fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
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

/// `[profile]` then `key = value` (or `key: value`) lines; `#`/`;` comments.
fn profile_keys(text: &str, profile: &str) -> Option<Keys> {
    let mut inside = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == profile;
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
    Some(Keys {
        access_key_id: id?,
        secret_access_key: secret?,
        session_token: token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_profile_keys_are_read_and_others_ignored() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n# c\n[centre]\naws_access_key_id=C\naws_secret_access_key= D\naws_session_token = T\n";
        assert_eq!(profile_keys(text, "default").unwrap().access_key_id, "A");
        let centre = profile_keys(text, "centre").unwrap();
        assert_eq!(
            (
                centre.secret_access_key.as_str(),
                centre.session_token.as_deref()
            ),
            ("D", Some("T"))
        );
        assert_eq!(profile_keys(text, "missing"), None);
    }

    #[test]
    fn colon_lines_are_read_as_configparser_reads_them() {
        let text = "[default]\naws_access_key_id: A\naws_secret_access_key = B:C=D\n";
        let keys = profile_keys(text, "default").unwrap();
        assert_eq!(
            (keys.access_key_id.as_str(), keys.secret_access_key.as_str()),
            ("A", "B:C=D")
        );
    }
}
