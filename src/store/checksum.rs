//! The SHA-256 of a database or a diff payload, as recorded in metadata and
//! printed in JSON: `sha256:<64 lowercase hex digits>`, the text `zcat B |
//! sha256sum` shows after the prefix. One type, so it is written one way, parsed
//! one way, and compared as a value rather than as text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sha256:";
const LEN: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum([u8; LEN]);

impl Checksum {
    /// The checksum of everything `hasher` was fed.
    pub(crate) fn finish(hasher: Sha256) -> Self {
        Checksum(hasher.finalize().into())
    }

    /// The checksum of `data`.
    #[cfg(test)]
    pub(crate) fn of(data: &[u8]) -> Self {
        Checksum(Sha256::digest(data).into())
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a text is not a checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAChecksum(String);

impl fmt::Display for NotAChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a checksum (sha256: and 64 hex digits)",
            self.0
        )
    }
}

impl std::error::Error for NotAChecksum {}

impl FromStr for Checksum {
    type Err = NotAChecksum;

    fn from_str(text: &str) -> Result<Self, NotAChecksum> {
        let wrong = || NotAChecksum(text.to_string());
        let digits = text.strip_prefix(PREFIX).ok_or_else(wrong)?.as_bytes();
        // Lowercase only: the text on disk is exactly what Display writes back.
        let lower_hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
        if digits.len() != 2 * LEN || !digits.iter().all(lower_hex) {
            return Err(wrong());
        }
        let value = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
        let mut bytes = [0u8; LEN];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = value(pair[0]) << 4 | value(pair[1]);
        }
        Ok(Checksum(bytes))
    }
}

impl Serialize for Checksum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf abc | sha256sum`.
    const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn the_text_is_sha256sum_with_a_prefix_and_parses_back_to_the_same_value() {
        let sum = Checksum::of(b"abc");
        assert_eq!(sum.to_string(), ABC);
        assert_eq!(ABC.parse::<Checksum>().unwrap(), sum);
        let mut hasher = Sha256::new();
        hasher.update(b"a");
        hasher.update(b"bc");
        assert_eq!(Checksum::finish(hasher), sum);
        assert_eq!(serde_json::to_string(&sum).unwrap(), format!("\"{ABC}\""));
        let back: Checksum = serde_json::from_str(&format!("\"{ABC}\"")).unwrap();
        assert_eq!(back, sum);
    }

    #[test]
    fn anything_else_is_refused_naming_the_text() {
        for bad in [
            "",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:",
            "sha256:00",
            "md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:+a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
            "sha256:é7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
        ] {
            let error = bad.parse::<Checksum>().unwrap_err();
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }
}
