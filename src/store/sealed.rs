//! JSON that carries the SHA-256 of its own bytes as its first field
//! (`{"<key>":"<64 hex>",...}`, the sum taken with those 64 digits set to `0`):
//! a backup's header (`header_sha256`) and a remote record (`record_sha256`).
//! One flipped bit anywhere — a digit of `seq`, the field's own name — is told
//! from metadata that was written so.

const SUM_HEX: usize = 64;

/// `json` (an object) with `"<key>"` first, over the whole text.
pub(crate) fn seal(json: &[u8], key: &str) -> Vec<u8> {
    let prefix = prefix(key);
    let mut out = Vec::with_capacity(json.len() + prefix.len() + SUM_HEX + 2);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&[b'0'; SUM_HEX]);
    out.extend_from_slice(b"\"");
    // `{}` has no field to follow it: no comma then.
    if json.len() > 2 {
        out.push(b',');
    }
    out.extend_from_slice(&json[1..]);
    let sum = sum(&out);
    out[prefix.len()..][..SUM_HEX].copy_from_slice(sum.as_bytes());
    out
}

/// What a JSON text says of its own checksum.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seal {
    /// Present and true of the bytes.
    Holds,
    /// Not there (written before it was recorded, or its name damaged).
    Absent,
    /// There, and not true of the bytes (or cut short).
    Broken,
}

pub(crate) fn check(json: &[u8], key: &str) -> Seal {
    let prefix = prefix(key);
    let Some(rest) = json.strip_prefix(prefix.as_slice()) else {
        return Seal::Absent;
    };
    let Some(recorded) = rest.get(..SUM_HEX) else {
        return Seal::Broken;
    };
    let mut zeroed = json.to_vec();
    zeroed[prefix.len()..][..SUM_HEX].fill(b'0');
    if sum(&zeroed).as_bytes() == recorded {
        Seal::Holds
    } else {
        Seal::Broken
    }
}

fn prefix(key: &str) -> Vec<u8> {
    format!("{{\"{key}\":\"").into_bytes()
}

/// Lowercase hex SHA-256 of `bytes`.
fn sum(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_text_holds_and_every_flipped_bit_breaks_or_hides_it() {
        let sealed = seal(br#"{"seq":7,"name":"x"}"#, "k");
        assert_eq!(check(&sealed, "k"), Seal::Holds);
        assert_eq!(check(br#"{"seq":7}"#, "k"), Seal::Absent);
        for bit in 0..sealed.len() * 8 {
            let mut flipped = sealed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(check(&flipped, "k"), Seal::Holds, "bit {bit}");
        }
    }
}
