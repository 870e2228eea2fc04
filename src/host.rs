//! This machine's name and the labels (job tags, host names) that go into log
//! lines and file names: a leaf, so the store's temp-file names and the SLURM
//! job context read the host name the same way.

/// Longest tag or host name we keep; SLURM ids are far shorter, hostile input is not.
pub(crate) const MAX_LABEL: usize = 64;

/// This machine's host name, read in this one place ("unknown" when it cannot be).
pub fn local_host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Keep labels to characters that cannot break a log line, a logfmt field or a
/// file name, and bound their length.
pub fn sanitize(value: &str) -> String {
    value
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_LABEL)
        .collect()
}
