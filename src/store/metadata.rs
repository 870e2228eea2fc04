//! Each backup's metadata lives in the header of its first gzip member, an empty
//! member whose FEXTRA field holds JSON. It travels with the file, is read from the
//! first few KiB without decompressing anything, and `gzip -d`, `zcat` and Python's
//! `gzip` skip it (an empty member decompresses to nothing).
//!
//! The field has a fixed size, so the header is written first as a placeholder and
//! rewritten in place once the checksum and sizes are known.
//!
//! Nothing else covers these bytes (the gzip CRC is of the empty data, the content
//! checksum of the database), so the JSON starts with its own SHA-256:
//! `{"header_sha256":"<64 hex>",...}`, taken over the JSON with those 64 digits
//! as `0`s. It is added and checked here, not a field of `Metadata`: it belongs
//! to these bytes, not to the backup, so listings and remote records that
//! serialize `Metadata` do not carry a checksum of some other text.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

pub use super::checksum::Checksum;

/// Bytes reserved for the whole metadata member.
pub const HEADER_LEN: usize = 8192;
/// gzip header (10) + XLEN (2) + subfield id and length (4).
const PREAMBLE: usize = 16;
/// Final empty fixed-Huffman deflate block (2) + CRC32 (4) + ISIZE (4).
const TRAILER: usize = 10;
const PAYLOAD_LEN: usize = HEADER_LEN - PREAMBLE - TRAILER;
const SUBFIELD_ID: [u8; 2] = *b"DB";
/// 2: the header carries `header_sha256` (a format-2 header without it is
/// damaged); 1: made before it was recorded, read without that check.
pub const FORMAT_VERSION: u32 = 2;
const SUM_KEY: &str = "header_sha256";
/// Uncompressed bytes per data member (the last one holds less): what a
/// backup's members are, also in backups that record no member index.
pub(crate) const BLOCK_SIZE: usize = 1 << 20;

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

/// Computed from the database file (`sqlite_file::fingerprint`), recorded here.
pub use crate::sqlite_file::Fingerprint;

pub use crate::sqlite_file::CheckKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub format: u32,
    pub created: jiff::Timestamp,
    pub source: String,
    pub db_size: u64,
    /// Of the decompressed database: `zcat B | sha256sum` shows it.
    pub checksum: Checksum,
    pub host: String,
    pub job: String,
    pub kind: Kind,
    pub check: CheckResult,
    /// The integrity check's own words when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_detail: Option<String>,
    /// Which check `check` is the verdict of; unsaid: `quick_check`.
    #[serde(default, skip_serializing_if = "CheckKind::is_quick")]
    pub check_kind: CheckKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    pub tool: String,
    /// The source this backup was first recorded under, when `dbbackup adopt`
    /// gave it to a database that moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_from: Option<String>,
    /// The whole backup file's length in bytes, this header included, known once
    /// the data is written: a stat then tells a truncated or extended file without
    /// decompressing it. Absent in backups made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// Publication order in its backup directory: 1 + the highest `seq` among the
    /// directory's backups, assigned under the directory's lock just before the
    /// file is published (mirrors copy it as is). Unlike `created`, it does not
    /// depend on the clock of the node that made the backup. Absent in backups
    /// made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When the numbering `seq` belongs to began: the first backup published
    /// into its directory (and mirrors) while none of theirs was numbered. A
    /// directory purged and begun again numbers from 1 anew; its backups from
    /// before the purge, copied back, carry the older start and rank below the
    /// new ones whatever their numbers (`place_unnumbered`). Absent in backups
    /// made before it was recorded: they count as of the newest numbering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbering_since: Option<jiff::Timestamp>,
    /// Where the data members are (`archive::members`): restore and verify
    /// inflate them on every core. Absent in backups made before it was
    /// recorded, which are read as one stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Members>,
    /// Present only for a differential backup (`"type": "diff"`); a full backup
    /// records no type (older files) or `"type": "full"`. `checksum` and `db_size`
    /// then describe the database rebuilt from base + diff (docs/differential.md).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffInfo>,
    /// Seconds from the start of writing (snapshot streaming, compression,
    /// integrity check) to this header, on the clock of the host that made it:
    /// the templates' USR1 lead time is sized from a full backup's. Absent in
    /// backups made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Bytes of the snapshot's free pages (SQLite's freelist): a `DELETE` or
    /// `DROP TABLE` without `VACUUM` leaves the file its size, so the shrink
    /// rule judges the pages in use (`retention::shrink_sizes`). Absent in
    /// backups made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
    /// The file name it was published under, written into the header just
    /// before the name is taken (`BackupDir::publish_as`): a file of another
    /// name holds a copy of that backup, not one of its own (`store::copies`).
    /// Absent in backups made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Metadata {
    /// `full` or `diff`.
    pub fn type_name(&self) -> &'static str {
        if self.diff.is_some() { "diff" } else { "full" }
    }
}

/// The data members of a backup, recorded once they are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// Data members (each `BLOCK_SIZE` bytes of data, the last one less).
    pub count: u64,
    /// Where the index member listing their lengths starts: the data members
    /// fill the bytes from the end of this header up to it.
    pub index_at: u64,
    /// `xxh3:<hex>` (XXH3-128) of those compressed bytes: a diff's base is
    /// known to be the bytes written by reading it, without inflating it.
    pub xxh3: String,
}

/// The `type` of a differential backup's metadata: always `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffType {
    Diff,
}

/// What a differential backup records about its base and its pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffInfo {
    #[serde(rename = "type")]
    pub kind: DiffType,
    /// File name of the full backup the pages are taken against.
    pub base: String,
    /// The base's own `checksum` (of its database content).
    pub base_checksum: Checksum,
    /// The base file's size on disk, so `check` can tell a truncated base cheaply.
    pub base_size: u64,
    pub page_size: u32,
    /// Pages of the complete database this restore point represents.
    pub page_count: u64,
    /// Page records in the payload.
    pub changed_pages: u64,
    /// `sha256:<hex>` of the decompressed diff payload (header and records).
    pub diff_checksum: Checksum,
    /// 1 for the first diff made against this base, 2 for the next, ...: what
    /// decides when the next full backup is due, whatever retention deleted
    /// since (0 in diffs made before it was recorded).
    #[serde(default)]
    pub diff_index: u32,
}

/// The metadata member, padded to `HEADER_LEN` bytes.
pub fn encode(meta: &Metadata) -> io::Result<Vec<u8>> {
    let json = with_header_sum(&serde_json::to_vec(meta).map_err(io::Error::other)?);
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
    let summed = check_header_sum(json)?;
    let meta: Metadata =
        serde_json::from_slice(json).map_err(|e| MetaError::Damaged(e.to_string()))?;
    if !summed && meta.format >= 2 {
        // A flip in the field's name must not make a new header pass as old.
        return Err(MetaError::Damaged(format!(
            "format {} metadata without its header_sha256",
            meta.format
        )));
    }
    Ok(meta)
}

/// `json` with `"header_sha256"` first, over the whole text.
fn with_header_sum(json: &[u8]) -> Vec<u8> {
    super::sealed::seal(json, SUM_KEY)
}

/// Whether `json` carries a header checksum (an error when it does not hold).
fn check_header_sum(json: &[u8]) -> Result<bool, MetaError> {
    match super::sealed::check(json, SUM_KEY) {
        super::sealed::Seal::Holds => Ok(true),
        super::sealed::Seal::Absent => Ok(false),
        super::sealed::Seal::Broken => Err(MetaError::Damaged(
            "metadata checksum mismatch (the header's bytes changed since it was written)".into(),
        )),
    }
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
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn sample() -> Metadata {
        Metadata {
            format: FORMAT_VERSION,
            created: "2026-11-26T09:10:43.5Z".parse().unwrap(),
            source: "/data/results.db".into(),
            db_size: 4096,
            checksum: Checksum::of(b"00"),
            host: "node1".into(),
            job: "42_7".into(),
            kind: Kind::PreJob,
            check: CheckResult::Ok,
            check_detail: None,
            check_kind: CheckKind::QuickCheck,
            fingerprint: Some(Fingerprint("x".into())),
            tool: "dbbackup test".into(),
            adopted_from: None,
            file_size: Some(123_456),
            seq: Some(7),
            members: Some(Members {
                count: 1,
                index_at: 9000,
                xxh3: "xxh3:00".into(),
            }),
            diff: None,
            duration_seconds: Some(1.5),
            free_bytes: None,
            numbering_since: None,
            name: None,
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
    fn diff_fields_round_trip_and_full_backups_keep_their_old_shape() {
        let full = sample();
        let json = serde_json::to_string(&full).unwrap();
        assert!(!json.contains("\"type\""), "{json}");
        let mut with_type: serde_json::Value = serde_json::from_str(&json).unwrap();
        with_type["type"] = "full".into();
        let read: Metadata = serde_json::from_value(with_type).unwrap();
        assert_eq!(read.diff, None, "type full is a full backup");
        let mut diff = sample();
        diff.diff = Some(DiffInfo {
            kind: DiffType::Diff,
            base: "backup_20260101_000000.db.gz".into(),
            base_checksum: Checksum::of(b"11"),
            base_size: 1234,
            page_size: 4096,
            page_count: 3,
            changed_pages: 1,
            diff_checksum: Checksum::of(b"22"),
            diff_index: 1,
        });
        let header = encode(&diff).unwrap();
        let back = decode(&mut &header[..]).unwrap();
        assert_eq!(back, diff);
        assert_eq!(back.type_name(), "diff");
        let json = serde_json::to_string(&diff).unwrap();
        assert!(json.contains("\"type\":\"diff\""), "{json}");
    }

    /// Backups written while checksums were plain text (the fixtures, a full and
    /// a diff) decode, and encode back to the very same header bytes.
    #[test]
    fn headers_written_before_the_checksum_type_read_and_write_the_same() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/before_member_index");
        let mut diffs = 0;
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let meta = decode(&mut &bytes[..]).unwrap();
            let text = std::str::from_utf8(&bytes[PREAMBLE..HEADER_LEN - TRAILER]).unwrap();
            assert!(
                text.contains(&format!("\"checksum\":\"{}\"", meta.checksum)),
                "{text}"
            );
            if let Some(diff) = &meta.diff {
                diffs += 1;
                assert!(text.contains(&format!("\"base_checksum\":\"{}\"", diff.base_checksum)));
                assert!(text.contains(&format!("\"diff_checksum\":\"{}\"", diff.diff_checksum)));
            }
            // Rewritten, the same JSON follows the new header checksum.
            let again = encode(&meta).unwrap();
            let json = |b: &[u8]| b[PREAMBLE..HEADER_LEN - TRAILER].trim_ascii_end().to_vec();
            let (old, new) = (json(&bytes), json(&again));
            // `{"header_sha256":"<64>",` then the old text after its `{`.
            assert_eq!(old[1..], new[SUM_KEY.len() + 5 + 64 + 2..]);
            assert_eq!(decode(&mut &again[..]).unwrap(), meta);
            assert_eq!(meta.format, 1);
        }
        assert_eq!(diffs, 1);
        let mut damaged = encode(&sample()).unwrap();
        let text = sample().checksum.to_string();
        let at = damaged
            .windows(text.len())
            .position(|w| w == text.as_bytes())
            .unwrap();
        damaged[at + 7] = b'X';
        assert!(matches!(
            decode(&mut &damaged[..]),
            Err(MetaError::Damaged(_))
        ));
    }

    /// Any one bit flipped anywhere in the JSON (and the padding after it)
    /// either reads as damaged or as the very metadata written: never as
    /// other metadata, such as a larger `seq` making an old backup latest.
    #[test]
    fn no_single_bit_flip_in_the_header_reads_as_other_metadata() {
        let meta = sample();
        let header = encode(&meta).unwrap();
        let json_end = PREAMBLE + header[PREAMBLE..].iter().position(|&b| b == b' ').unwrap();
        let end = (json_end + 64).max(1024);
        for at in PREAMBLE..end {
            for bit in 0..8 {
                let mut flipped = header.clone();
                flipped[at] ^= 1 << bit;
                match decode(&mut &flipped[..]) {
                    Ok(read) => assert_eq!(read, meta, "byte {at} bit {bit}"),
                    Err(MetaError::Damaged(_)) => {}
                    Err(e) => panic!("byte {at} bit {bit}: {e}"),
                }
            }
        }
    }

    /// A header made before the checksum (format 1) reads as before; a format-2
    /// header without it (its name damaged, say) does not.
    #[test]
    fn header_checksum_absent_is_old_in_format_1_and_damaged_in_format_2() {
        let header = |format: u32| {
            let mut meta = sample();
            meta.format = format;
            let mut out = encode(&meta).unwrap();
            let json = serde_json::to_vec(&meta).unwrap();
            out[PREAMBLE..PREAMBLE + PAYLOAD_LEN].fill(b' ');
            out[PREAMBLE..PREAMBLE + json.len()].copy_from_slice(&json);
            (meta, out)
        };
        let (old, bytes) = header(1);
        assert_eq!(decode(&mut &bytes[..]).unwrap(), old);
        let (_, bytes) = header(2);
        let err = decode(&mut &bytes[..]).unwrap_err();
        assert!(
            matches!(&err, MetaError::Damaged(m) if m.contains("header_sha256")),
            "{err}"
        );
        let mut renamed = encode(&sample()).unwrap();
        renamed[PREAMBLE + 2] ^= 1;
        assert!(matches!(
            decode(&mut &renamed[..]),
            Err(MetaError::Damaged(_))
        ));
        let bytes = encode(&sample()).unwrap();
        assert!(bytes[PREAMBLE..].starts_with(b"{\"header_sha256\":\""));
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
