//! `AWS_ENDPOINT_URL`, checked once before any request: object_store takes
//! what it is given, and its mistakes surface later as a panic or as a store
//! error that points elsewhere.

use object_store::ClientConfigKey;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use crate::error::{Error, Result};

/// The endpoint the builder holds (from `AWS_ENDPOINT_URL`), if any, parsed
/// once and refused, naming the setting, when it:
/// - holds a user name or password (it would be printed with every error line);
/// - is not an http(s) URL without spaces (object_store panics at the first
///   request on `s3.hpc.example.org` without its scheme, or a trailing space);
/// - holds a path (object_store puts it before the bucket: a pasted
///   `https://store/bucket` gives "NoSuchKey" or "NoSuchBucket");
/// - is plain http without `AWS_ALLOW_HTTP` (object_store's own error, "URL
///   scheme is not allowed", does not say which setting is missing).
pub(super) fn refuse_bad_endpoint(builder: &AmazonS3Builder) -> Result<()> {
    let Some((var, endpoint)) = effective(builder) else {
        return Ok(());
    };
    let url = parse(var, &endpoint)?;
    refuse_path(var, &endpoint, &url)?;
    if url.scheme() == "http" && !http_allowed(builder) {
        return Err(Error::usage(format!(
            "{var} {endpoint} is plain http: set AWS_ALLOW_HTTP=true to allow it (a store on 127.0.0.1 or a private network only), or give an https:// endpoint"
        )));
    }
    Ok(())
}

/// The endpoint requests go to, and the variable that set it: as
/// object_store builds it, `AWS_ENDPOINT_URL_S3` (the AWS SDKs'
/// S3-specific one) over `AWS_ENDPOINT_URL` (T37 S7).
pub(crate) fn effective(builder: &AmazonS3Builder) -> Option<(&'static str, String)> {
    let specific = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .map(|e| ("AWS_ENDPOINT_URL_S3", e));
    specific.or_else(|| {
        builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .map(|e| ("AWS_ENDPOINT_URL", e))
    })
}

/// The endpoint (set by `var`) as an http(s) URL with a host and without
/// credentials.
fn parse(var: &str, endpoint: &str) -> Result<reqwest::Url> {
    // `Url::parse` trims spaces that the request's URI refuses: checked first.
    let clean = !endpoint.is_empty() && endpoint.chars().all(|c| c.is_ascii_graphic());
    let parsed = reqwest::Url::parse(endpoint).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    // Before anything that prints the endpoint: never its password.
    if endpoint.contains('@') || parsed.as_ref().is_some_and(|u| !u.username().is_empty()) {
        let host = endpoint.rsplit('@').next().unwrap_or_default().trim();
        // The scheme as given: an http-only store would fail TLS on https.
        let scheme = parsed.as_ref().map_or("https", |u| u.scheme());
        return Err(Error::usage(format!(
            "{var} holds a user name or password: give the endpoint without them ({scheme}://{host}) and the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or ~/.aws/credentials"
        )));
    }
    match parsed {
        Some(url) if clean => Ok(url),
        _ => {
            let example = endpoint.trim();
            let example = if example.contains("://") || example.is_empty() {
                "https://s3.example.org".to_string()
            } else {
                format!("https://{example}")
            };
            Err(Error::usage(format!(
                "{var} {endpoint:?} is not an http(s) URL without spaces: give it as {example}"
            )))
        }
    }
}

/// A path, query or fragment after the store's address (a trailing `/` is
/// none): object_store would prefix every key's path with it.
fn refuse_path(var: &str, endpoint: &str, url: &reqwest::Url) -> Result<()> {
    let mut extra = url.path().to_string();
    if let Some(query) = url.query() {
        extra.push('?');
        extra.push_str(query);
    }
    if let Some(fragment) = url.fragment() {
        extra.push('#');
        extra.push_str(fragment);
    }
    if extra == "/" {
        return Ok(());
    }
    let address = &url.origin().ascii_serialization();
    Err(Error::usage(format!(
        "{var} {endpoint} holds a path ({extra}): give the store's address only ({address}); the bucket goes in remote: s3://BUCKET/PREFIX"
    )))
}

/// `AWS_ALLOW_HTTP` as object_store reads a true value.
fn http_allowed(builder: &AmazonS3Builder) -> bool {
    builder
        .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
        .is_some_and(|v| {
            ["1", "true", "on", "yes", "y"]
                .iter()
                .any(|t| v.trim().eq_ignore_ascii_case(t))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(endpoint: &str, allow_http: bool) -> Result<()> {
        let mut builder = AmazonS3Builder::new().with_endpoint(endpoint);
        if allow_http {
            builder = builder.with_allow_http(true);
        }
        refuse_bad_endpoint(&builder)
    }

    #[test]
    fn an_address_with_or_without_a_trailing_slash_is_taken() {
        for endpoint in [
            "https://s3.example.org",
            "https://s3.example.org/",
            "http://127.0.0.1:5077/",
        ] {
            assert!(check(endpoint, true).is_ok(), "{endpoint}");
        }
    }

    #[test]
    fn a_path_is_refused_naming_it_and_the_address() {
        let error = check("https://s3.example.org/bkt1", false).unwrap_err();
        assert!(matches!(error, Error::Usage(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "AWS_ENDPOINT_URL https://s3.example.org/bkt1 holds a path (/bkt1): give the store's address only (https://s3.example.org); the bucket goes in remote: s3://BUCKET/PREFIX"
        );
        for endpoint in ["https://s3.example.org/a/", "https://s3.example.org/?x=1"] {
            assert!(
                check(endpoint, false)
                    .unwrap_err()
                    .to_string()
                    .contains("holds a path"),
                "{endpoint}"
            );
        }
    }
}
