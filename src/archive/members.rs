//! The member index: where each data member of a backup starts, so restore and
//! verify can inflate members on every core. It is an empty gzip member written
//! after the data, whose comment (FCOMMENT) lists each data member's compressed
//! length; `gzip -d`, `zcat` and older dbbackup versions read it as an empty
//! member. The metadata records where it starts (`Members::index_at`). Backups
//! without one (plain gzip, older backups) are read as one stream.

use std::fs::File;
use std::os::unix::fs::FileExt;

const TAG: &str = "dbbackup-members 1";
/// ID1 ID2 CM=deflate FLG=FCOMMENT MTIME=0 XFL=0 OS=unix.
const GZIP_HEAD: [u8; 10] = [0x1f, 0x8b, 8, 0x10, 0, 0, 0, 0, 0, 3];
/// Empty fixed-Huffman block, CRC32 of nothing, ISIZE 0.
const GZIP_TAIL: [u8; 10] = [0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];

/// The index member for data members of these compressed lengths.
pub(crate) fn encode(lengths: &[u32]) -> Vec<u8> {
    let mut text = String::with_capacity(TAG.len() + lengths.len() * 8);
    text.push_str(TAG);
    for length in lengths {
        text.push(' ');
        text.push_str(&length.to_string());
    }
    let mut out = Vec::with_capacity(text.len() + 21);
    out.extend_from_slice(&GZIP_HEAD);
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    out.extend_from_slice(&GZIP_TAIL);
    out
}

/// The compressed length of each data member, read from the index member at
/// `index_at` in `file` (`file_len` bytes) and checked against what the metadata
/// says: `count` members filling exactly the bytes from `data_start` to the
/// index, each at most `max_member` bytes. `Err` says why it cannot be used.
pub(crate) fn read(
    file: &File,
    index_at: u64,
    file_len: u64,
    data_start: u64,
    count: u64,
    max_member: u64,
) -> Result<Vec<u32>, String> {
    // Up to 10 digits and a space per member: a bound before allocating.
    let bound = (GZIP_HEAD.len() + TAG.len() + 1 + GZIP_TAIL.len()) as u64 + count * 11;
    let len = file_len
        .checked_sub(index_at)
        .filter(|len| (21..=bound).contains(len))
        .ok_or_else(|| format!("no index member of {count} entries at byte {index_at}"))?;
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, index_at)
        .map_err(|e| format!("cannot read the member index: {e}"))?;
    let (head, rest) = bytes.split_at(GZIP_HEAD.len());
    let (text, tail) = rest.split_at(rest.len() - GZIP_TAIL.len());
    if head != GZIP_HEAD || tail != GZIP_TAIL || text.last() != Some(&0) {
        return Err("the member index is not an index member".into());
    }
    let text = std::str::from_utf8(&text[..text.len() - 1])
        .map_err(|_| "the member index is not text".to_string())?;
    let mut words = text.split(' ');
    let tag = [words.next(), words.next()];
    if tag != [Some("dbbackup-members"), Some("1")] {
        return Err("the member index has another format".into());
    }
    let lengths: Vec<u32> = words
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| "the member index holds something other than lengths".to_string())?;
    let total: u64 = lengths.iter().map(|&l| u64::from(l)).sum();
    if lengths.len() as u64 != count
        || data_start + total != index_at
        || lengths.iter().any(|&l| l < 18 || u64::from(l) > max_member)
    {
        return Err("the member index does not match the file".into());
    }
    Ok(lengths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn an_index_is_an_empty_member_and_reads_back() {
        let index = encode(&[100, 2000, 18]);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&index[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert!(decoded.is_empty(), "gzip -d sees nothing");
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[0u8; 2118]).unwrap();
        file.write_all(&index).unwrap();
        let len = 2118 + index.len() as u64;
        assert_eq!(
            read(&file, 2118, len, 0, 3, 1 << 21).unwrap(),
            vec![100, 2000, 18]
        );
        // What the metadata says must be what the index says.
        assert!(read(&file, 2118, len, 0, 2, 1 << 21).is_err());
        assert!(read(&file, 2118, len, 1, 3, 1 << 21).is_err());
        assert!(read(&file, 2118, len, 0, 3, 1000).is_err());
        assert!(read(&file, 2117, len, 0, 3, 1 << 21).is_err());
        assert!(read(&file, 2118, len - 1, 0, 3, 1 << 21).is_err());
    }

    #[test]
    fn a_damaged_index_is_refused() {
        let mut index = encode(&[100, 200]);
        let at = index.len() - 12;
        index[at] = b'x';
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[0u8; 300]).unwrap();
        file.write_all(&index).unwrap();
        assert!(read(&file, 300, 300 + index.len() as u64, 0, 2, 1 << 21).is_err());
    }
}
