//! The table names of a compressed database, read from its pages as they
//! stream past, without writing it out: `sqlite_schema` is the b-tree rooted
//! at page 1, but a schema that grew after the database did has its pages at
//! the end of the file, so the first pages alone do not hold it (T28b #2).
//! Only the pages of that b-tree (and the overflow pages of a row too long
//! for its page) are kept; the stream is read at most to a limit, and again
//! from the start for a page behind the one read (rare).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::sqlite_file::SQLITE_MAGIC;

/// Table names (not SQLite's own) of the database `open` yields from its
/// first byte, reading at most `limit` bytes per pass; `None` when a page of
/// the schema lies beyond it, or the pages are not what SQLite writes.
pub(crate) fn table_names<R: Read>(
    mut open: impl FnMut() -> Option<R>,
    limit: u64,
) -> Option<BTreeSet<String>> {
    let mut names = Vec::new();
    let mut wanted = BTreeSet::from([1u32]);
    // Rows too long for their page, by the overflow page that continues them.
    let mut spilled: BTreeMap<u32, Spilled> = BTreeMap::new();
    // A b-tree of a few levels, an overflow chain or two: a page behind the
    // stream costs one more pass.
    for _pass in 0..8 {
        let mut stream = open()?;
        let mut page = Vec::new();
        let mut layout = None;
        let mut behind = BTreeSet::new();
        let mut number = 0u32;
        while let Some(&last) = wanted.last() {
            number += 1;
            if number > last {
                break;
            }
            let (size, usable, encoding) = match layout {
                Some(layout) => layout,
                None => {
                    let found = page_layout(&mut stream)?;
                    page = vec![0u8; found.0];
                    layout = Some(found);
                    found
                }
            };
            let start = if number == 1 { HEADER } else { 0 };
            if u64::from(number) * size as u64 > limit {
                return None;
            }
            stream.read_exact(&mut page[start..]).ok()?;
            if !wanted.remove(&number) {
                continue;
            }
            let mut follow = |next: u32| match next > number {
                true => wanted.insert(next),
                false => behind.insert(next),
            };
            if let Some(row) = spilled.remove(&number) {
                match row.continued(&page[..usable])? {
                    Continued::Whole(record) => names.extend(record_table(&record, encoding)?),
                    Continued::Part(next, row) => {
                        follow(next);
                        spilled.insert(next, row);
                    }
                }
                continue;
            }
            match parse_page(&page, start, (usable, encoding), &mut names)? {
                Children(children) => children.into_iter().for_each(|child| {
                    follow(child);
                }),
                Leaf(rows) => {
                    for (next, row) in rows {
                        follow(next);
                        spilled.insert(next, row);
                    }
                }
            }
        }
        if behind.is_empty() {
            return spilled
                .is_empty()
                .then(|| crate::sqlite_file::user_tables(names));
        }
        wanted = behind;
    }
    None
}

/// The database header's length, on page 1.
const HEADER: usize = 100;

/// How text is stored: the header's text encoding.
#[derive(Clone, Copy)]
enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    fn decode(self, bytes: &[u8]) -> String {
        let units = |from: fn([u8; 2]) -> u16| -> Vec<u16> {
            bytes
                .chunks_exact(2)
                .map(|pair| from([pair[0], pair[1]]))
                .collect()
        };
        match self {
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Utf16Le => String::from_utf16_lossy(&units(u16::from_le_bytes)),
            Encoding::Utf16Be => String::from_utf16_lossy(&units(u16::from_be_bytes)),
        }
    }
}

/// The page size, the usable size of each page and the text encoding, from
/// the header.
fn page_layout(stream: &mut impl Read) -> Option<(usize, usize, Encoding)> {
    let mut header = [0u8; HEADER];
    stream.read_exact(&mut header).ok()?;
    if &header[..SQLITE_MAGIC.len()] != SQLITE_MAGIC {
        return None;
    }
    let size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n if n >= 512 && n.is_power_of_two() => usize::from(n),
        _ => return None,
    };
    let usable = size.checked_sub(usize::from(header[20]))?;
    let encoding = match u32::from_be_bytes([header[56], header[57], header[58], header[59]]) {
        2 => Encoding::Utf16Le,
        3 => Encoding::Utf16Be,
        _ => Encoding::Utf8,
    };
    (usable >= 480).then_some((size, usable, encoding))
}

enum Parsed {
    Children(Vec<u32>),
    /// The rows too long for the page: each with its first overflow page.
    Leaf(Vec<(u32, Spilled)>),
}
use Parsed::{Children, Leaf};

/// A table's name, and for a virtual table its `CREATE VIRTUAL TABLE`.
type Table = (String, Option<String>);

/// The longest `sqlite_schema` row followed through its overflow pages; a
/// longer one is not what a schema holds.
const LONGEST_ROW: u64 = 16 << 20;

/// A `sqlite_schema` row whose end lies on overflow pages (a table name of
/// over a kilobyte or so, T29d): the part read so far.
struct Spilled {
    record: Vec<u8>,
    remaining: usize,
}

enum Continued {
    Whole(Vec<u8>),
    Part(u32, Spilled),
}

impl Spilled {
    /// The row with an overflow page's content added: whole, or still wanting
    /// the page the overflow page names next.
    fn continued(mut self, page: &[u8]) -> Option<Continued> {
        let next = u32::from_be_bytes(page.get(..4)?.try_into().ok()?);
        let take = self.remaining.min(page.len() - 4);
        self.record.extend_from_slice(&page[4..4 + take]);
        self.remaining -= take;
        match (self.remaining, next) {
            (0, _) => Some(Continued::Whole(self.record)),
            (_, 0) => None,
            (_, next) => Some(Continued::Part(next, self)),
        }
    }
}

/// One page of `sqlite_schema`'s b-tree (its header at `start`): an interior
/// page's children, or a leaf's table names added to `names`.
fn parse_page(
    page: &[u8],
    start: usize,
    (usable, encoding): (usize, Encoding),
    names: &mut Vec<Table>,
) -> Option<Parsed> {
    let kind = *page.get(start)?;
    let cells = usize::from(u16::from_be_bytes([
        *page.get(start + 3)?,
        *page.get(start + 4)?,
    ]));
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(page.get(at..at + 4)?.try_into().ok()?))
    };
    let pointers = |header: usize| {
        (0..cells).map(move |i| {
            let at = start + header + 2 * i;
            page.get(at..at + 2)
                .map(|p| usize::from(u16::from_be_bytes([p[0], p[1]])))
        })
    };
    match kind {
        // Interior table b-tree page: a left child per cell, and the right-most.
        0x05 => {
            let mut children = vec![be32(start + 8)?];
            for cell in pointers(12) {
                children.push(be32(cell?)?);
            }
            Some(Children(children))
        }
        0x0d => {
            let mut spilled = Vec::new();
            for cell in pointers(8) {
                let cell = cell?;
                let (payload, n) = varint(page.get(cell..)?)?;
                let (_rowid, m) = varint(page.get(cell + n..)?)?;
                let local = local_payload(payload, usable);
                let record = page.get(cell + n + m..cell + n + m + local)?;
                if payload <= local as u64 {
                    names.extend(record_table(record, encoding)?);
                } else if payload <= LONGEST_ROW {
                    let row = Spilled {
                        record: record.to_vec(),
                        remaining: usize::try_from(payload).ok()? - local,
                    };
                    spilled.push((be32(cell + n + m + local)?, row));
                } else {
                    return None;
                }
            }
            Some(Leaf(spilled))
        }
        _ => None,
    }
}

/// The table a whole `sqlite_schema` row names, if it is one, and for a
/// virtual table (its root page 0) its `CREATE VIRTUAL TABLE` (which names
/// its module).
fn record_table(record: &[u8], encoding: Encoding) -> Option<Option<Table>> {
    let (header_len, mut at) = varint(record)?;
    let header_len = usize::try_from(header_len).ok()?;
    let mut types = Vec::new();
    while at < header_len && types.len() < 5 {
        let (serial, k) = varint(record.get(at..)?)?;
        types.push(serial);
        at += k;
    }
    let mut body = header_len;
    let mut values = Vec::new();
    for serial in types {
        let len = serial_len(serial)?;
        values.push((serial, record.get(body..body + len)?));
        body += len;
    }
    // Text is an odd serial type of 13 or more.
    let text = |i: usize| {
        values
            .get(i)
            .filter(|(serial, _)| *serial >= 13 && serial % 2 == 1)
            .map(|(_, bytes)| encoding.decode(bytes))
    };
    let root_is_zero = match values.get(3) {
        Some((8, _)) => true,
        Some((1..=6, bytes)) => bytes.iter().all(|b| *b == 0),
        _ => false,
    };
    let virtual_sql = root_is_zero.then(|| text(4).unwrap_or_default());
    Some(match (text(0), text(1)) {
        (Some(kind), Some(name)) if kind == "table" => Some((name, virtual_sql)),
        _ => None,
    })
}

/// How much of a cell's payload is on the page (file format, section 1.6).
fn local_payload(payload: u64, usable: usize) -> usize {
    let max = usable - 35;
    let min = (usable - 12) * 32 / 255 - 23;
    match usize::try_from(payload) {
        Ok(p) if p <= max => p,
        _ => {
            let k = min as u64 + (payload - min as u64) % (usable as u64 - 4);
            if k <= max as u64 { k as usize } else { min }
        }
    }
}

/// A record column's length in bytes, from its serial type.
fn serial_len(serial: u64) -> Option<usize> {
    Some(match serial {
        0 | 8 | 9 => 0,
        1..=4 => serial as usize,
        5 => 6,
        6 | 7 => 8,
        10 | 11 => return None,
        n => usize::try_from((n - 12) / 2).ok()?,
    })
}

/// SQLite's variable-length integer: its value and length.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        if i == 8 {
            return Some(((value << 8) | u64::from(b), 9));
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use std::io::Cursor;

    fn names_by_sqlite(path: &std::path::Path) -> BTreeSet<String> {
        crate::sqlite_file::table_names(path).unwrap()
    }

    fn read(bytes: &[u8], limit: u64) -> Option<BTreeSet<String>> {
        table_names(|| Some(Cursor::new(bytes)), limit)
    }

    #[test]
    fn a_schema_that_grew_after_the_data_is_read_from_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, blob BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO runs SELECT i, randomblob(2000) FROM n;",
        )
        .unwrap();
        // Enough tables for sqlite_schema to split, its new pages at the end.
        for i in 0..60 {
            conn.execute_batch(&format!(
                "CREATE TABLE results_{i:02} (id INTEGER, value REAL, note TEXT);
                 CREATE INDEX idx_results_{i:02} ON results_{i:02} (value);"
            ))
            .unwrap();
        }
        conn.execute_batch(
            "CREATE TABLE a_very_long_table_name_that_still_fits_on_its_page_for_sure (x)",
        )
        .unwrap();
        drop(conn);
        let bytes = std::fs::read(&path).unwrap();
        let expected = names_by_sqlite(&path);
        assert_eq!(expected.len(), 62);
        assert_eq!(read(&bytes, u64::MAX), Some(expected));
        // Its pages past the limit: not known, rather than part of it.
        assert_eq!(read(&bytes, 256 * 1024), None);
        assert_eq!(
            read(b"not a database at all, not even a header of one", u64::MAX),
            None
        );
    }

    #[test]
    fn a_schema_on_page_one_alone_is_read_from_the_first_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE samples (x); CREATE TABLE runs (y); CREATE INDEX i ON runs (y);",
            )
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(read(&bytes, 4096), Some(names_by_sqlite(&path)));
    }

    #[test]
    fn table_names_longer_than_a_page_are_read_through_their_overflow_pages() {
        for page_size in [512, 1024, 4096] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("d.db");
            let conn = Connection::open(&path).unwrap();
            let long = "q".repeat(1500);
            let longer = "r".repeat(5000);
            let virtual_name = "v".repeat(1400);
            conn.execute_batch(&format!(
                "PRAGMA page_size = {page_size};
                 CREATE TABLE runs (x);
                 CREATE TABLE \"{long}\" (y);
                 CREATE TABLE \"{longer}\" (z);
                 CREATE VIRTUAL TABLE \"{virtual_name}\" USING fts5(body);
                 CREATE TABLE metrics (w);"
            ))
            .unwrap();
            drop(conn);
            let expected = names_by_sqlite(&path);
            let wanted: BTreeSet<String> = ["runs", "metrics", &long, &longer, &virtual_name]
                .iter()
                .map(ToString::to_string)
                .collect();
            // The fts5 table's shadow tables (long names too) left out.
            assert_eq!(expected, wanted, "page size {page_size}");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                read(&bytes, u64::MAX),
                Some(expected),
                "page size {page_size}"
            );
        }
    }

    #[test]
    fn utf16_text_and_a_virtual_tables_shadow_tables_are_read_as_sqlite_lists_them() {
        for encoding in ["UTF-16le", "UTF-16be", "UTF-8"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.db");
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA encoding = '{encoding}';
                 CREATE TABLE runs (x); CREATE TABLE Résumé (y); CREATE TABLE docs_meta (z);
                 CREATE VIRTUAL TABLE docs USING fts5(body);
                 CREATE VIRTUAL TABLE geo USING rtree(id, minx, maxx);
                 CREATE TABLE geo_content (a);
                 CREATE VIRTUAL TABLE notes USING fts4(body);
                 CREATE TABLE notes_data (b); CREATE TABLE notes_idx (c);
                 CREATE VIRTUAL TABLE bare USING fts5(body, content='');
                 CREATE TABLE bare_content (d);"
            ))
            .unwrap();
            drop(conn);
            let expected = names_by_sqlite(&path);
            // Only each module's own shadow tables left out (T29d C1-b).
            let wanted: BTreeSet<String> = [
                "runs",
                "Résumé",
                "docs_meta",
                "docs",
                "geo",
                "geo_content",
                "notes",
                "notes_data",
                "notes_idx",
                "bare",
                "bare_content",
            ]
            .iter()
            .map(ToString::to_string)
            .collect();
            assert_eq!(expected, wanted, "{encoding}");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(read(&bytes, u64::MAX), Some(expected), "{encoding}");
        }
    }
}
