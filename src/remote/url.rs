//! The `remote` setting: `s3://BUCKET[/PREFIX]`, checked before any request.

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
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::usage(format!(
                "remote '{text}' names no bucket: give s3://BUCKET/PREFIX"
            )));
        }
        // Credentials in the URL would end up in logs; they belong in the
        // environment or the shared credentials file.
        if bucket.contains('@') || bucket.contains(':') {
            return Err(Error::usage(format!(
                "remote s3://{}: give the bucket name only; credentials and endpoint come from the AWS environment variables or ~/.aws/credentials",
                bucket.rsplit('@').next().unwrap_or_default()
            )));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            && !prefix.is_empty()
        {
            return Err(Error::usage(format!(
                "remote '{text}': the prefix must not hold empty, `.` or `..` parts"
            )));
        }
        Ok(RemoteUrl {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
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
        assert_eq!(RemoteUrl::parse("s3://bkt").unwrap().prefix, "");
        let err = RemoteUrl::parse("gs://bkt/x").unwrap_err().to_string();
        assert!(err.contains("gs:// is not supported"), "{err}");
        let err = RemoteUrl::parse("s3:///x").unwrap_err().to_string();
        assert!(err.contains("names no bucket"), "{err}");
        assert!(RemoteUrl::parse("bkt/x").is_err());
        assert!(RemoteUrl::parse("s3://bkt/a//b").is_err());
        let err = RemoteUrl::parse("s3://KEY:SECRET@bkt/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }
}
