//! Files as a user checks them: their SHA-256, and what lies under a directory.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// `bytes` in lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes` in lower-case hex (as `sha256sum` prints it).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The SHA-256 of the file at `path`: byte-for-byte equality of two files.
pub(crate) fn file_sha256(path: &Path) -> String {
    sha256_hex(&fs::read(path).unwrap())
}

/// Every file and directory below `dir` (not `dir` itself), at any depth, sorted.
pub(crate) fn everything_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir).unwrap().flatten() {
        let path = item.path();
        found.push(path.clone());
        if item.file_type().unwrap().is_dir() {
            found.extend(everything_under(&path));
        }
    }
    found.sort();
    found
}

/// The files below `dir` at any depth (no directories), sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    everything_under(dir)
        .into_iter()
        .filter(|path| !path.is_dir())
        .collect()
}

/// Cut the file at `path` to its first `len` bytes (a copy that stopped short).
pub(crate) fn truncate_to(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Cut the last `bytes` bytes off the file at `path`.
pub(crate) fn cut_tail(path: &Path, bytes: u64) {
    let len = fs::metadata(path).unwrap().len();
    truncate_to(path, len - bytes);
}
