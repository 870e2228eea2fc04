//! Which of the seed's legacy files hold another database. They record no
//! database, and the seed wrote every database's backups under the same names
//! into a shared directory: a legacy file sharing no table with the database
//! (or, the database missing or empty, with its newest backup or the other
//! legacy files) is taken for another database's, so that `restore latest`
//! never puts it over this one and retention and `check` neither count nor
//! delete it (T28 F13, T28b #1, #2). Each file's schema is read wherever its
//! pages lie, once per file (recorded beside it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Entry, Kind};
use crate::error::show;

pub(crate) type Tables = BTreeSet<String>;

/// Each file's tables (by path and size), as read.
type ReadTables = HashMap<(PathBuf, u64), Option<Tables>>;

/// A database's schema pages are read wherever they are: at the start, or
/// (tables added later) where the file then ended, so possibly the whole
/// file is inflated, once per file (recorded beside it). A limit would leave
/// a large file's owner untold, and such a file was counted as this
/// database's (T29 F2: another database's only backup deleted).
const SCHEMA_READ_LIMIT: u64 = u64::MAX;

/// Legacy files, by name, taken for another database's, each with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Unlike(BTreeMap<String, String>);

impl Unlike {
    /// Judge the legacy files among `entries` for the database at `db` (`None`:
    /// no database configured; the legacy files are compared among themselves).
    pub(crate) fn judge(entries: &[Entry], db: Option<&super::DbId>) -> Unlike {
        let legacy: Vec<(&Entry, Option<Tables>)> = entries
            .iter()
            .filter(|e| e.legacy && e.implausible.is_none())
            .map(|e| (e, head_tables(e)))
            .collect();
        if legacy.is_empty() {
            return Unlike::default();
        }
        let reference = match db {
            Some(db) => reference(entries, db),
            None => Err(Missing::NotConfigured),
        };
        let mut unlike = BTreeMap::new();
        match reference {
            Ok((ours, of_what)) => {
                for (entry, theirs) in &legacy {
                    if let Some(theirs) = theirs.as_ref().filter(|t| !alike(t, &ours)) {
                        let why = format!(
                            "holds tables ({}) mostly not among {of_what}'s ({}): most likely another database's",
                            listed(theirs),
                            listed(&ours)
                        );
                        unlike.insert(entry.file_name.clone(), why);
                    }
                }
            }
            // Its own backups are here, and none can be read to compare with.
            Err(Missing::OwnBackupsUnreadable(database)) => {
                let why = format!(
                    "cannot be compared with anything: {database}, and its backups here give no tables to compare with (none can be read, or one's metadata cannot)"
                );
                for (entry, _) in &legacy {
                    unlike.insert(entry.file_name.clone(), why.clone());
                }
            }
            Err(missing) => unlike = by_groups(&legacy, &missing.to_string()),
        }
        // Nothing says whose one is whose tables cannot be read (a damaged
        // schema page, no table at all):
        // never counted, chosen or deleted as this database's (T29b N8, N12).
        for (entry, theirs) in &legacy {
            // (One deleted since it was listed says nothing.)
            if theirs.is_none() && std::fs::symlink_metadata(&entry.path).is_ok() {
                unlike.entry(entry.file_name.clone()).or_insert_with(|| {
                    "its tables cannot be read (a damaged schema, or no table): whose it is cannot be told; `dbbackup restore NAME --force` takes it if it is this database's".to_string()
                });
            }
        }
        Unlike(unlike)
    }

    /// Why `file_name` is taken for another database's, if it is.
    pub(crate) fn why(&self, file_name: &str) -> Option<&str> {
        self.0.get(file_name).map(String::as_str)
    }
}

/// Two schemas of one database: more than half of the tables of the smaller
/// are in the other (names as SQLite compares them, ignoring ASCII case). A
/// schema that grew keeps all of the old one's; two databases that share a
/// generic table (`config`, `metadata`) share little else (T29 F1).
pub(crate) fn alike(a: &Tables, b: &Tables) -> bool {
    let lower = |t: &Tables| {
        t.iter()
            .map(|n| n.to_ascii_lowercase())
            .collect::<BTreeSet<_>>()
    };
    let (a, b) = (lower(a), lower(b));
    let shared = a.intersection(&b).count();
    shared > 0 && shared * 2 > a.len().min(b.len())
}

/// With nothing to compare them with (`database`: why not): they are this
/// database's only while every two whose tables can be read are alike. Else
/// which are this database's cannot be told, and none is counted, chosen or deleted
/// (T29 F8: a vote by numbers, flipped by a `prune`, restored the other
/// database and deleted its backup; T29b N2: groups chained through one
/// file alike both).
fn by_groups(legacy: &[(&Entry, Option<Tables>)], database: &str) -> BTreeMap<String, String> {
    let read: Vec<&Tables> = legacy.iter().filter_map(|(_, t)| t.as_ref()).collect();
    let unlike_pair = read
        .iter()
        .enumerate()
        .find_map(|(i, a)| read[..i].iter().find(|b| !alike(a, b)).map(|b| (*a, *b)));
    let Some((a, b)) = unlike_pair else {
        return BTreeMap::new();
    };
    let why = format!(
        "is one of legacy backups here holding unlike tables (one holds {}; another {}), and {database}: which of them are this database's cannot be told",
        listed(a),
        listed(b)
    );
    legacy
        .iter()
        .map(|(entry, _)| (entry.file_name.clone(), why.clone()))
        .collect()
}

/// Why there is nothing to compare legacy files with.
enum Missing {
    NotConfigured,
    /// The database cannot be read for its tables (missing, empty, damaged).
    Database(String),
    /// Nor can any of its own full backups here.
    OwnBackupsUnreadable(String),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::NotConfigured => f.write_str("no database is configured"),
            Missing::Database(why) | Missing::OwnBackupsUnreadable(why) => f.write_str(why),
        }
    }
}

/// The tables to compare legacy files with, and whose they are: the
/// database's own, else (missing, empty, damaged) those of its newest full
/// backup here that can be read; else why there are none.
fn reference(entries: &[Entry], db: &super::DbId) -> Result<(Tables, String), Missing> {
    let path = db.canonical();
    if let Some(tables) = crate::sqlite_file::table_names(path).filter(|t| !t.is_empty()) {
        return Ok((tables, format!("the database {}", show(path))));
    }
    let database = match std::fs::metadata(path) {
        Err(_) => format!("the database {} is missing", show(path)),
        Ok(meta) if meta.len() == 0 => format!("the database {} is empty", show(path)),
        Ok(_) => format!(
            "the database {} cannot be read for its tables (damaged, not SQLite, or none)",
            show(path)
        ),
    };
    let mut own: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.meta
                .as_ref()
                .is_ok_and(|m| m.kind != Kind::PreRestore && m.diff.is_none() && db.owns(&m.source))
                && !e.is_failed()
                // Deleted since it was listed: no evidence either way.
                && std::fs::symlink_metadata(&e.path).is_ok()
        })
        .collect();
    own.sort_by_key(|e| std::cmp::Reverse(e.order()));
    // A backup whose metadata cannot be read may well be this database's
    // (T29b N11): nothing then says the legacy files are.
    let unreadable_metadata = entries.iter().any(|e| !e.legacy && e.meta.is_err());
    if own.is_empty() && !unreadable_metadata {
        return Err(Missing::Database(database));
    }
    own.iter()
        .filter(|e| e.damage.is_none())
        .find_map(|e| {
            head_tables(e).map(|t| (t, format!("its newest readable backup {}", e.file_name)))
        })
        .ok_or(Missing::OwnBackupsUnreadable(database))
}

/// At most five names, for a one-line message.
pub(crate) fn listed(names: &Tables) -> String {
    // A name is data: a newline in it must not start a line of its own (T29b N13).
    let mut shown = names
        .iter()
        .take(5)
        .map(|name| {
            name.chars()
                .map(|c| match c.is_control() {
                    true => c.escape_default().to_string(),
                    false => c.to_string(),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 5 {
        shown.push_str(", ...");
    }
    shown
}

/// The tables of the database `entry` holds (a full backup or a legacy
/// file), from its schema's pages inflated ([`crate::sqlite_file::schema`]);
/// `None` when they cannot be read or name none. Remembered per file for
/// the process.
pub(crate) fn head_tables(entry: &Entry) -> Option<Tables> {
    static READ: Mutex<Option<ReadTables>> = Mutex::new(None);
    let key = (entry.path.clone(), entry.size);
    let mut read = READ
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    read.get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert_with(|| recorded_or_read(entry))
        .clone()
}

/// What a file's schema was found to hold, kept beside it
/// (`.dbbackup-pages/NAME.tables`) while the file is the same: reading a
/// large legacy file's schema can inflate tens of MiB.
#[derive(serde::Serialize, serde::Deserialize)]
struct Recorded {
    tables: Option<Tables>,
    /// The reader that found none: an older one could not follow a row onto
    /// overflow pages, so its "none" is read again (T29d).
    #[serde(default)]
    reader: u32,
}

/// The schema reader's version, recorded with a file it found no tables in.
const READER: u32 = 2;

fn recorded_or_read(entry: &Entry) -> Option<Tables> {
    match super::stamped::recorded(&entry.path, "tables") {
        Some(Recorded { tables, reader }) if tables.is_some() || reader >= READER => {
            return tables;
        }
        _ => {}
    }
    let tables = read_tables(entry);
    let record = Recorded {
        tables: tables.clone(),
        reader: READER,
    };
    super::stamped::record(&entry.path, "tables", record);
    tables
}

fn read_tables(entry: &Entry) -> Option<Tables> {
    let read = || db_stream(entry);
    crate::sqlite_file::schema::table_names(read, SCHEMA_READ_LIMIT)
        .filter(|names| !names.is_empty())
}

/// The database a full backup or a legacy file holds, inflated as it is
/// read from its first byte; `None` for a diff or a file that cannot be opened.
pub(crate) fn db_stream(entry: &Entry) -> Option<impl std::io::Read + use<>> {
    use std::io::{Seek, SeekFrom};
    let start = match &entry.meta {
        Ok(meta) if meta.diff.is_none() => super::metadata::HEADER_LEN as u64,
        Err(_) if entry.legacy => 0,
        _ => return None,
    };
    let mut file = super::open_no_follow(&entry.path).ok()?;
    file.seek(SeekFrom::Start(start)).ok()?;
    let buffered = std::io::BufReader::with_capacity(64 * 1024, file);
    Some(flate2::read::MultiGzDecoder::new(buffered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ownership::tests::legacy;

    fn tables(names: &[&str]) -> Tables {
        names.iter().map(ToString::to_string).collect()
    }

    fn judged(files: &[(&str, &[&str])]) -> Vec<String> {
        let entries: Vec<Entry> = files.iter().map(|(stamp, _)| legacy(stamp)).collect();
        let pairs: Vec<(&Entry, Option<Tables>)> = entries
            .iter()
            .zip(files)
            .map(|(entry, (_, names))| (entry, Some(tables(names))))
            .collect();
        by_groups(&pairs, "the database is missing")
            .into_keys()
            .collect()
    }

    #[test]
    fn without_a_database_groups_of_unlike_legacy_files_are_nobodys() {
        let runs: &[&str] = &["runs", "metrics"];
        let grown: &[&str] = &["runs", "metrics", "extra"];
        let samples: &[&str] = &["samples"];
        // A schema that grew is one family with the one it grew from.
        assert!(judged(&[("20250101_000000", runs), ("20250102_000000", grown)]).is_empty());
        // Two groups, whatever their sizes, also linked through a file alike
        // both (a merged database): which are whose cannot be told.
        let merged: &[&str] = &["runs", "metrics", "samples"];
        assert_eq!(
            judged(&[
                ("20250101_000000", runs),
                ("20250102_000000", merged),
                ("20250103_000000", samples),
            ])
            .len(),
            3
        );
        for files in [
            &[("20250101_000000", runs), ("20250103_000000", samples)][..],
            &[
                ("20250101_000000", runs),
                ("20250102_000000", grown),
                ("20250103_000000", samples),
            ][..],
        ] {
            assert_eq!(judged(files).len(), files.len());
        }
    }

    #[test]
    fn schemas_are_alike_when_most_of_the_smaller_ones_tables_are_in_the_other() {
        let alike_names = |a: &[&str], b: &[&str]| alike(&tables(a), &tables(b));
        assert!(alike_names(&["runs"], &["runs", "metrics", "config"]));
        assert!(alike_names(&["RUNS", "Metrics"], &["runs", "metrics"]));
        assert!(!alike_names(
            &["users", "orders", "config"],
            &["runs", "metrics", "config"]
        ));
        assert!(!alike_names(&["samples"], &["runs"]));
        assert!(!alike_names(&[], &["runs"]));
    }
}
