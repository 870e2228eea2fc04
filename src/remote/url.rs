//! The `remote` setting: `s3://BUCKET/PREFIX` (`s3://BUCKET/` for the bucket's top), checked before any request.

use crate::error::{Error, Result};

/// A parsed remote: where restore points go in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's top.
    pub prefix: String,
}

impl RemoteUrl {
    /// `s3://bucket/prefix`; any other scheme, or no bucket, is a usage error
    /// naming the setting (one line, exit 2 as every bad setting).
    pub(crate) fn parse(text: &str) -> Result<RemoteUrl> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(Error::usage(format!(
                "remote '{text}' is not a URL: give s3://BUCKET/PREFIX"
            )));
        };
        if !scheme.eq_ignore_ascii_case("s3") {
            return Err(Error::usage(format!(
                "remote '{text}': scheme {scheme}:// is not supported; give s3://BUCKET/PREFIX (any S3-compatible store: set AWS_ENDPOINT_URL)"
            )));
        }
        // The bucket's top only when asked for with a trailing `/`: in a
        // bucket shared by a group, `s3://bucket` is more often a prefix
        // forgotten than a choice (docs/remote.md, "Bucket and prefix").
        if rest.is_empty() || rest.starts_with('/') {
            return Err(Error::usage(format!(
                "remote '{text}' names no bucket: give s3://BUCKET/PREFIX"
            )));
        }
        let Some((bucket, prefix)) = rest.split_once('/') else {
            return Err(Error::usage(format!(
                "remote '{text}' names no prefix: give s3://{rest}/PREFIX (one prefix per database), or s3://{rest}/ to use the bucket's top on purpose"
            )));
        };
        // Credentials in the URL would end up in logs; they belong in the
        // environment or the shared credentials file.
        if bucket.contains('@') || bucket.contains(':') {
            return Err(Error::usage(format!(
                "remote s3://{}: give the bucket name only; credentials and endpoint come from the AWS environment variables or ~/.aws/credentials",
                bucket.rsplit('@').next().unwrap_or_default()
            )));
        }
        if let Some(bad) = bucket
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
        {
            return Err(Error::usage(format!(
                "remote '{}': bucket names hold only lowercase letters, digits, `-` and `.`, not {bad:?}",
                text.escape_debug()
            )));
        }
        // One trailing `/` is the prefix's own end; any other empty part
        // (`s3://bkt//p`, `s3://bkt//`) is refused below, as `.` parts are:
        // the same URL written two ways would name one prefix.
        let prefix = prefix
            .strip_suffix('/')
            .filter(|stripped| !stripped.is_empty())
            .unwrap_or(prefix)
            .to_string();
        // Characters S3 keys take without escaping (AWS's "safe" set): a
        // space, `%`, `+`, `#`, `?` or a non-ASCII letter is escaped
        // differently by each client and tool, and the restore points would
        // be hard to find or to copy by hand.
        if let Some(bad) = prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/-_.!*'()".contains(*c)))
        {
            return Err(Error::usage(format!(
                "remote '{}': the prefix holds {bad:?}; use letters, digits and - _ . ! * ' ( ) /",
                text.escape_debug()
            )));
        }
        if prefix
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            && !prefix.is_empty()
        {
            return Err(Error::usage(format!(
                "remote '{text}': the prefix must not hold empty, `.` or `..` parts"
            )));
        }
        refuse_long(bucket, &prefix)?;
        Ok(RemoteUrl {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

/// S3's limit on a key's length, in bytes (AWS, MinIO and Ceph RGW refuse
/// longer keys; some stores take them, so it is checked here).
const MAX_KEY: usize = 1024;

/// The longest object name dbbackup writes under the prefix: a record
/// (`NAME.meta.json`) of the longest backup name.
fn longest_name() -> usize {
    let stamp = jiff::civil::date(2000, 1, 1).at(0, 0, 0, 0);
    let name = crate::store::BackupName::new(stamp, crate::store::naming::MAX_SEQ, true);
    [false, true]
        .map(|diff| name.as_diff(diff).file_name().len())
        .into_iter()
        .max()
        .unwrap_or_default()
        + super::record::SUFFIX.len()
}

/// A prefix too long for the keys under it to fit S3's limit: refused before
/// any request, not at the first record written after its data object went
/// up. (The prefix is not repeated: it is the long part.)
fn refuse_long(bucket: &str, prefix: &str) -> Result<()> {
    let longest = prefix.len() + 1 + longest_name();
    if prefix.is_empty() || longest <= MAX_KEY {
        return Ok(());
    }
    Err(Error::usage(format!(
        "remote s3://{bucket}/...: the prefix is {} bytes long, so keys under it would be up to {longest} bytes, over S3's limit of {MAX_KEY}; use a prefix of at most {} bytes",
        prefix.len(),
        MAX_KEY - 1 - longest_name()
    )))
}

impl RemoteUrl {
    /// The URL of object `name` under the prefix.
    pub(crate) fn object(&self, name: &str) -> String {
        format!("{}/{name}", self.to_string().trim_end_matches('/'))
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            // As it must be written: `s3://BUCKET` alone is refused.
            write!(f, "s3://{}/", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_parse_and_other_schemes_or_no_bucket_are_refused() {
        let url = RemoteUrl::parse("s3://bkt/a/b/").unwrap();
        assert_eq!((url.bucket.as_str(), url.prefix.as_str()), ("bkt", "a/b"));
        assert_eq!(url.to_string(), "s3://bkt/a/b");
        assert_eq!(RemoteUrl::parse("s3://bkt/").unwrap().prefix, "");
        let err = RemoteUrl::parse("s3://bkt").unwrap_err().to_string();
        assert!(
            err.contains("names no prefix") && err.contains("s3://bkt/"),
            "{err}"
        );
        for bad in [
            "s3://bkt/my results",
            "s3://bkt/a%20b",
            "s3://bkt/r\u{e9}s",
            "s3://bkt/a+b",
            "s3://bkt/a#b",
        ] {
            let err = RemoteUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("the prefix holds"), "{bad}: {err}");
        }
        let err = RemoteUrl::parse("s3://My_Bucket/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bucket names"), "{err}");
        let err = RemoteUrl::parse("gs://bkt/x").unwrap_err().to_string();
        assert!(err.contains("gs:// is not supported"), "{err}");
        for bad in ["s3:///x", "s3://", "s3:///"] {
            let err = RemoteUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("names no bucket"), "{bad}: {err}");
        }
        assert!(RemoteUrl::parse("bkt/x").is_err());
        assert!(RemoteUrl::parse("s3://bkt/a//b").is_err());
        for bad in ["s3://bkt//p2", "s3://bkt//", "s3://bkt/p//"] {
            let err = RemoteUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("empty, `.` or `..` parts"), "{bad}: {err}");
        }
        let fits = "a".repeat(MAX_KEY - 1 - longest_name());
        assert!(RemoteUrl::parse(&format!("s3://bkt/{fits}")).is_ok());
        let err = RemoteUrl::parse(&format!("s3://bkt/{fits}b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("over S3's limit of 1024"), "{err}");
        assert_eq!(
            longest_name(),
            "backup_20250909_093708_999.failed.diff.gz.meta.json".len()
        );
        let err = RemoteUrl::parse("s3://KEY:SECRET@bkt/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }
}
