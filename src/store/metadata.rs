//! Each backup's metadata lives in the header of its first gzip member, an empty
//! member whose FEXTRA field holds JSON. It travels with the file, is read from the
//! first few KiB without decompressing anything, and `gzip -d`, `zcat` and Python's
//! `gzip` skip it (an empty member decompresses to nothing).
//!
//! The field has a fixed size, so the header is written first as a placeholder and
//! rewritten in place once the checksum and sizes are known.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

/// Bytes reserved for the whole metadata member.
pub const HEADER_LEN: usize = 8192;
/// gzip header (10) + XLEN (2) + subfield id and length (4).
const PREAMBLE: usize = 16;
/// Final empty fixed-Huffman deflate block (2) + CRC32 (4) + ISIZE (4).
const TRAILER: usize = 10;
const PAYLOAD_LEN: usize = HEADER_LEN - PREAMBLE - TRAILER;
const SUBFIELD_ID: [u8; 2] = *b"DB";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Manual,
    Auto,
    PreJob,
    PostJob,
    Periodic,
    /// Made after every task of an array ended (`dbbackup final`).
    Final,
    PreRestore,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Manual => "manual",
            Kind::Auto => "auto",
            Kind::PreJob => "pre-job",
            Kind::PostJob => "post-job",
            Kind::Periodic => "periodic",
            Kind::Final => "final",
            Kind::PreRestore => "pre-restore",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    Ok,
    Failed,
}

/// What the source looked like when the snapshot began: if it looks the same
/// later, the database is unchanged and a new backup would be a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(pub String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub format: u32,
    pub created: jiff::Timestamp,
    pub source: String,
    pub db_size: u64,
    /// `sha256:<hex>` of the decompressed database: `zcat B | sha256sum` shows it.
    pub checksum: String,
    pub host: String,
    pub job: String,
    pub kind: Kind,
    pub check: CheckResult,
    /// The integrity check's own words when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    pub tool: String,
    /// The source this backup was first recorded under, when `dbbackup adopt`
    /// gave it to a database that moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_from: Option<String>,
}

/// The metadata member, padded to `HEADER_LEN` bytes.
pub fn encode(meta: &Metadata) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    if json.len() > PAYLOAD_LEN {
        return Err(io::Error::other(format!(
            "backup metadata is {} bytes, more than the {PAYLOAD_LEN} reserved (is the source path that long?)",
            json.len()
        )));
    }
    let mut out = Vec::with_capacity(HEADER_LEN);
    // ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=unix
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 3]);
    out.extend_from_slice(&((PAYLOAD_LEN + 4) as u16).to_le_bytes());
    out.extend_from_slice(&SUBFIELD_ID);
    out.extend_from_slice(&(PAYLOAD_LEN as u16).to_le_bytes());
    out.extend_from_slice(&json);
    out.resize(PREAMBLE + PAYLOAD_LEN, b' ');
    // Empty deflate stream, CRC32 of nothing, ISIZE 0.
    out.extend_from_slice(&[0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    debug_assert_eq!(out.len(), HEADER_LEN);
    Ok(out)
}

/// Why a file has no readable metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("not a gzip file")]
    NotGzip,
    #[error("gzip file without dbbackup metadata")]
    Missing,
    #[error("damaged metadata: {0}")]
    Damaged(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Read the metadata from the start of a backup file.
pub fn decode(reader: &mut impl Read) -> Result<Metadata, MetaError> {
    let mut head = [0u8; PREAMBLE];
    read_up_to(reader, &mut head)?;
    if head[0..3] != [0x1f, 0x8b, 8] {
        return Err(MetaError::NotGzip);
    }
    if head[3] & 0x04 == 0 || head[12..14] != SUBFIELD_ID {
        return Err(MetaError::Missing);
    }
    let len = u16::from_le_bytes([head[14], head[15]]) as usize;
    if len != PAYLOAD_LEN {
        return Err(MetaError::Damaged(format!("metadata field of {len} bytes")));
    }
    let mut payload = vec![0u8; len];
    read_up_to(reader, &mut payload)?;
    let json = payload.trim_ascii_end();
    serde_json::from_slice(json).map_err(|e| MetaError::Damaged(e.to_string()))
}

/// `read_exact`, but a short file is "damaged", not an I/O error.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), MetaError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Err(MetaError::NotGzip),
            Ok(0) => return Err(MetaError::Damaged("file ends inside the header".into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub fn sample() -> Metadata {
        Metadata {
            format: FORMAT_VERSION,
            created: "2026-11-26T09:10:43.5Z".parse().unwrap(),
            source: "/data/results.db".into(),
            db_size: 4096,
            checksum: "sha256:00".into(),
            host: "node1".into(),
            job: "42_7".into(),
            kind: Kind::PreJob,
            check: CheckResult::Ok,
            check_detail: None,
            fingerprint: Some(Fingerprint("x".into())),
            tool: "dbbackup test".into(),
            adopted_from: None,
        }
    }

    #[test]
    fn header_round_trips_and_is_an_empty_gzip_member() {
        let meta = sample();
        let header = encode(&meta).unwrap();
        assert_eq!(header.len(), HEADER_LEN);
        assert_eq!(decode(&mut &header[..]).unwrap(), meta);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&header[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert!(decoded.is_empty());
    }

    #[test]
    fn header_then_data_members_decode_as_one_stream() {
        let mut file = encode(&sample()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"payload").unwrap();
        file.extend(gz.finish().unwrap());
        let mut decoded = Vec::new();
        flate2::read::MultiGzDecoder::new(&file[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, b"payload");
    }

    #[test]
    fn too_long_metadata_is_refused_not_truncated() {
        let mut meta = sample();
        meta.source = "x".repeat(PAYLOAD_LEN);
        assert!(encode(&meta).is_err());
    }

    #[test]
    fn foreign_and_damaged_headers() {
        assert!(matches!(decode(&mut &b""[..]), Err(MetaError::NotGzip)));
        assert!(matches!(
            decode(&mut &b"SQLite format 3\0"[..]),
            Err(MetaError::NotGzip)
        ));
        let mut plain = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        plain.write_all(b"legacy").unwrap();
        let plain = plain.finish().unwrap();
        assert!(matches!(decode(&mut &plain[..]), Err(MetaError::Missing)));
        let header = encode(&sample()).unwrap();
        assert!(matches!(
            decode(&mut &header[..100]),
            Err(MetaError::Damaged(_))
        ));
        let mut flipped = header.clone();
        flipped[PREAMBLE] = b'!';
        assert!(matches!(
            decode(&mut &flipped[..]),
            Err(MetaError::Damaged(_))
        ));
    }
}
