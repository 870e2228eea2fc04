//! A cheap plausibility check of the seed's plain-gzip backups, which record no
//! size or checksum: without it a half-written file (an interrupted seed run) or
//! a name in the future would count as the newest good backup for `check`,
//! `auto` and `restore latest`. Reads the first 100 decompressed bytes and the
//! gzip trailer only; `verify` still does the full check.

use std::io::{self, Read, Seek, SeekFrom};

use flate2::read::GzDecoder;
use jiff::{SignedDuration, Timestamp};

use super::Entry;
use crate::sqlite_file::SQLITE_MAGIC;

/// The SQLite file header's length.
const HEADER: usize = 100;
/// How far in the future a legacy name may be: a clock or time-zone slip, not more.
const FUTURE_SLACK: SignedDuration = SignedDuration::from_hours(24);

/// Why `entry` (a legacy file, read through `file`) cannot be what its name
/// claims; `None` when it looks like a whole `gzip -6` of an SQLite database.
pub(crate) fn implausible(file: &mut (impl Read + Seek), entry: &Entry) -> Option<String> {
    let created = entry.created();
    if created > Timestamp::now() + FUTURE_SLACK {
        return Some(format!(
            "named for {}, more than a day in the future (a wrong clock or time zone?)",
            created
                .to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
        ));
    }
    match check(file) {
        Ok(problem) => problem,
        Err(e) => Some(format!("cannot read it: {e}")),
    }
}

fn check(file: &mut (impl Read + Seek)) -> io::Result<Option<String>> {
    file.seek(SeekFrom::Start(0))?;
    let mut header = [0u8; HEADER];
    let mut decoder = GzDecoder::new(io::BufReader::with_capacity(4096, &mut *file));
    if let Err(e) = decoder.read_exact(&mut header) {
        return Ok(Some(match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                "truncated: its data ends before the SQLite header".to_string()
            }
            _ => format!("damaged gzip data at its start ({e})"),
        }));
    }
    drop(decoder);
    if &header[..SQLITE_MAGIC.len()] != SQLITE_MAGIC {
        return Ok(Some("it does not hold an SQLite database".into()));
    }
    let Some(expected) = expected_isize(&header) else {
        return Ok(Some("its SQLite header is damaged (page size)".into()));
    };
    // gzip's trailer ends with ISIZE, the data's length mod 2^32.
    file.seek(SeekFrom::End(-4))?;
    let mut trailer = [0u8; 4];
    file.read_exact(&mut trailer)?;
    let isize = u32::from_le_bytes(trailer);
    Ok(match expected {
        Expected::Exactly(bytes) if bytes != isize => Some(format!(
            "truncated or damaged: its gzip trailer gives {isize} bytes, its SQLite header {bytes} bytes (mod 4 GiB)"
        )),
        Expected::PageMultiple(page) if isize % page != 0 || isize == 0 => Some(format!(
            "truncated or damaged: its gzip trailer gives {isize} bytes, not a multiple of its {page}-byte pages"
        )),
        _ => None,
    })
}

enum Expected {
    /// Page size × page count, mod 2^32.
    Exactly(u32),
    /// The header's page count is not valid (SQLite before 3.7.0 left it stale).
    PageMultiple(u32),
}

/// What ISIZE must be for the SQLite header `header`; `None` if its page size is
/// not one SQLite uses.
fn expected_isize(header: &[u8; HEADER]) -> Option<Expected> {
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n if n >= 512 && n.is_power_of_two() => u32::from(n),
        _ => return None,
    };
    let (pages, change_counter, valid_for) = (be32(28), be32(24), be32(92));
    // The in-header size counts only when "version-valid-for" matches the
    // change counter (SQLite file format, section 1.3.7).
    Some(if pages != 0 && change_counter == valid_for {
        Expected::Exactly(page.wrapping_mul(pages))
    } else {
        Expected::PageMultiple(page)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn sqlite_file(pages: u32) -> Vec<u8> {
        let mut data = vec![0u8; 4096 * pages as usize];
        data[..16].copy_from_slice(SQLITE_MAGIC);
        data[16..18].copy_from_slice(&4096u16.to_be_bytes());
        data[24..28].copy_from_slice(&7u32.to_be_bytes());
        data[28..32].copy_from_slice(&pages.to_be_bytes());
        data[92..96].copy_from_slice(&7u32.to_be_bytes());
        for (i, b) in data.iter_mut().enumerate().skip(100) {
            *b = (i * 7919 % 251) as u8;
        }
        data
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn judge(bytes: &[u8]) -> Option<String> {
        check(&mut Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn a_whole_gzip_of_a_database_is_plausible_and_a_cut_one_is_not() {
        let whole = gzip(&sqlite_file(8));
        assert_eq!(judge(&whole), None);
        for cut in [whole.len() - 1, whole.len() / 2, 40, 10] {
            assert!(judge(&whole[..cut]).is_some(), "cut at {cut}");
        }
        // The header says 9 pages, the file holds 8: the trailer disagrees.
        let mut short = sqlite_file(8);
        short[28..32].copy_from_slice(&9u32.to_be_bytes());
        assert!(judge(&gzip(&short)).unwrap().contains("truncated"));
        assert!(judge(&gzip(b"hello")).unwrap().contains("truncated"));
        assert!(
            judge(&gzip(&[b'x'; 200]))
                .unwrap()
                .contains("does not hold an SQLite database")
        );
    }

    #[test]
    fn a_stale_page_count_falls_back_to_whole_pages() {
        let mut old = sqlite_file(3);
        old[92..96].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(judge(&gzip(&old)), None);
        old.truncate(4096 * 2 + 100);
        assert!(judge(&gzip(&old)).unwrap().contains("not a multiple"));
    }
}
