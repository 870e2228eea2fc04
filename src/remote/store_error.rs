//! A store's failure in one short line. object_store's errors carry the whole
//! request (method, URL with its query, elapsed time, retry counts) wrapped
//! several times; a user needs the remote, what was being done, and the
//! store's own answer (status, S3 error code and message) or why no answer
//! came. The whole chain goes to the debug log (`-v`).

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};

use super::url::RemoteUrl;
use crate::error::Error;

/// Whether `e` is a request that received nothing for the read timeout
/// (a stalled store), by its type: reqwest's timeout, under object_store's.
pub(super) fn stalled(e: &object_store::Error) -> bool {
    causes(e).any(|cause| {
        cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
    })
}

/// One line naming the remote and what failed, then the store's answer.
/// Never the credentials: object_store's errors carry the request's URL and
/// status, not its headers (and an endpoint with a password is refused).
pub(super) fn fail_text(url: &RemoteUrl, doing: &str, e: &object_store::Error) -> Error {
    tracing::debug!("{doing} {url}: {}", whole(e));
    Error::failed(format!("{doing} {url}: {}", answer(e)))
}

/// `e` and its sources, outermost first.
fn causes<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |cause: &&'a (dyn StdError + 'static)| {
        (*cause).source()
    })
}

/// Every distinct text of the chain, on one line (the debug log's detail).
fn whole(e: &object_store::Error) -> String {
    let mut text = String::new();
    for cause in causes(e) {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause_text);
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The store's answer, or why none came. The innermost cause is what the
/// store or the connection said: a status error's text holds the status and
/// the store's body, and no URL (the layers above it add the request, its
/// query and timings).
fn answer(e: &object_store::Error) -> String {
    let innermost = causes(e).last().map(ToString::to_string);
    let innermost = innermost.unwrap_or_default();
    let innermost = innermost.split_whitespace().collect::<Vec<_>>().join(" ");
    let transport = causes(e).find_map(|cause| cause.downcast_ref::<HttpError>());
    if let Some(http) = transport {
        // No answer: reqwest's own text names the URL with its query, its
        // causes (a refused connection, an untrusted certificate) do not.
        let root = causes(e)
            .filter(|cause| !cause.is::<reqwest::Error>() && !cause.is::<HttpError>())
            .last()
            .filter(|cause| causes(*cause).all(|c| !c.is::<HttpError>()))
            .map(|cause| format!(": {cause}"))
            .unwrap_or_default();
        let what = match http.kind() {
            HttpErrorKind::Connect => "cannot connect to the store",
            HttpErrorKind::Timeout => "the store did not answer in time",
            HttpErrorKind::Decode => "the store's answer could not be read",
            _ => "the request to the store failed",
        };
        if http.kind() == HttpErrorKind::Connect {
            return format!("{what}{}{root}{}", at_endpoint(), tls_hint(&root));
        }
        return format!("{what}{root}");
    }
    // Display only: nothing decides on these words.
    let said = without_xml_body(&innermost);
    match said.strip_prefix("Server returned non-2xx status code: ") {
        Some(status) => format!("the store answered {status}"),
        None => said,
    }
}

/// Where a connection was tried, when the user set it (`AWS_ENDPOINT_URL`):
/// the setting a refused or unresolved connection points at, not the remote
/// URL. The endpoint holds no secret (a password in it is refused).
fn at_endpoint() -> String {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .into_iter()
        .find_map(|name| {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
            Some(format!(" at {value} ({name})"))
        })
        .unwrap_or_default()
}

/// A TLS handshake answered in plain HTTP (rustls: "received corrupt message
/// of type InvalidContentType"): an `https://` endpoint for a plain-http store.
fn tls_hint(root: &str) -> &'static str {
    if root.contains("InvalidContentType") {
        " (the store answered the TLS handshake in plain HTTP: for a plain-http store use an http:// endpoint and AWS_ALLOW_HTTP=true)"
    } else {
        ""
    }
}

/// Whether the store refused the request's keys (401, 403): then the line
/// says which keys were used. Typed where object_store types it; a listing's
/// refusal reaches us only as its status line (display only: the words add a
/// hint, nothing else is decided on them).
pub(super) fn keys_refused(e: &object_store::Error) -> bool {
    if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return true;
    }
    answered(e, &["401", "403"])
}

/// Whether the store answered 501 Not Implemented (display only: a hint
/// that it lacks a feature, such as conditional writes).
pub(super) fn not_implemented(e: &object_store::Error) -> bool {
    if matches!(e, object_store::Error::NotImplemented { .. }) {
        return true;
    }
    answered(e, &["501"])
}

/// Whether the innermost cause is a status line with one of `codes` (what
/// reaches us of an answer object_store does not type).
fn answered(e: &object_store::Error, codes: &[&str]) -> bool {
    let innermost = causes(e)
        .last()
        .map(ToString::to_string)
        .unwrap_or_default();
    codes.iter().any(|code| {
        innermost
            .strip_prefix("Server returned non-2xx status code: ")
            .is_some_and(|rest| rest.starts_with(code))
    })
}

/// The store's XML error body (`<Error><Code>…`) as `Code: Message`: the
/// words people read, not the document (display only; nothing decides on it).
fn without_xml_body(text: &str) -> String {
    let inner = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].trim().to_string())
    };
    let Some(code) = inner("Code") else {
        return text.to_string();
    };
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_string();
    };
    let end = text
        .rfind("</Error>")
        .map_or(text.len(), |i| i + "</Error>".len());
    let summary = match inner("Message") {
        Some(message) => format!("{code}: {message}"),
        None => code,
    };
    format!("{}{summary}{}", &text[..start], &text[end.max(start)..])
}
