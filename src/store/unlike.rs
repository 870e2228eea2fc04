//! Which of the seed's legacy files hold another database. They record no
//! database, and the seed wrote every database's backups under the same names
//! into a shared directory: a legacy file sharing no table with the database
//! (or, the database missing or empty, with its newest backup or the other
//! legacy files) is taken for another database's, so that `restore latest`
//! never puts it over this one and retention and `check` neither count nor
//! delete it (T28 F13, T28b #1, #2). Read from the first pages of each file
//! (the schema is there), once per file per process.

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
        let legacy: Vec<(&Entry, Tables)> = entries
            .iter()
            .filter(|e| e.legacy && e.implausible.is_none())
            .filter_map(|e| head_tables(e).map(|tables| (e, tables)))
            .collect();
        if legacy.is_empty() {
            return Unlike::default();
        }
        let reference = match db {
            Some(db) => reference(entries, db),
            None => Err("no database is configured".to_string()),
        };
        let (ours, of_what) = match reference {
            Ok(found) => found,
            Err(database) => return Unlike(by_families(&legacy, &database)),
        };
        let mut unlike = BTreeMap::new();
        for (entry, theirs) in &legacy {
            if !alike(theirs, &ours) {
                let why = format!(
                    "holds tables ({}) mostly not among {of_what}'s ({}): most likely another database's",
                    listed(theirs),
                    listed(&ours)
                );
                unlike.insert(entry.file_name.clone(), why);
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

/// With nothing to compare them with (`database`: why not): the legacy
/// files fall into families, files linked by [`alike`] schemas. One family:
/// they are this database's. Several: whose each is cannot be told, and none
/// is counted, chosen or deleted (T29 F8: a vote by numbers, flipped by a
/// `prune`, restored the other database and deleted its backup).
fn by_families(legacy: &[(&Entry, Tables)], database: &str) -> BTreeMap<String, String> {
    let mut family: Vec<usize> = (0..legacy.len()).collect();
    for i in 0..legacy.len() {
        for j in 0..i {
            if alike(&legacy[i].1, &legacy[j].1) {
                let (a, b) = (family[i], family[j]);
                family.iter_mut().filter(|f| **f == a).for_each(|f| *f = b);
            }
        }
    }
    let families: BTreeSet<usize> = family.iter().copied().collect();
    if families.len() <= 1 {
        return BTreeMap::new();
    }
    legacy
        .iter()
        .map(|(entry, tables)| {
            let why = format!(
                "holds tables ({}) unlike other legacy backups' here, and {database}: whose each of the {} groups of tables is cannot be told",
                listed(tables),
                families.len()
            );
            (entry.file_name.clone(), why)
        })
        .collect()
}

/// The tables to compare legacy files with, and whose they are: the
/// database's own, else (missing, empty, unreadable) those of its newest full
/// backup that records it; else why there are none.
fn reference(entries: &[Entry], db: &super::DbId) -> Result<(Tables, String), String> {
    let path = db.canonical();
    if let Some(tables) = crate::sqlite_file::table_names(path).filter(|t| !t.is_empty()) {
        return Ok((tables, format!("the database {}", show(path))));
    }
    let newest = entries
        .iter()
        .filter(|e| {
            e.meta
                .as_ref()
                .is_ok_and(|m| m.kind != Kind::PreRestore && m.diff.is_none() && db.owns(&m.source))
                && !e.is_failed()
                && e.damage.is_none()
        })
        .max_by_key(|e| e.order());
    if let Some(tables) = newest.and_then(head_tables) {
        let name = newest.map_or("", |e| e.file_name.as_str());
        return Ok((tables, format!("its newest backup {name}")));
    }
    Err(match std::fs::metadata(path) {
        Err(_) => format!("the database {} is missing", show(path)),
        Ok(meta) if meta.len() == 0 => format!("the database {} is empty", show(path)),
        Ok(_) => format!(
            "the database {} has no tables it can be read for",
            show(path)
        ),
    })
}

/// At most five names, for a one-line message.
pub(crate) fn listed(names: &Tables) -> String {
    let mut shown = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        shown.push_str(", ...");
    }
    shown
}

/// The tables of the database `entry` holds (a full backup or a legacy
/// file), from its schema's pages inflated ([`crate::archive::schema`]);
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
}

fn recorded_or_read(entry: &Entry) -> Option<Tables> {
    if let Some(Recorded { tables }) = super::stamped::recorded(&entry.path, "tables") {
        return tables;
    }
    let tables = read_tables(entry);
    let record = Recorded {
        tables: tables.clone(),
    };
    super::stamped::record(&entry.path, "tables", record);
    tables
}

fn read_tables(entry: &Entry) -> Option<Tables> {
    let read = || crate::archive::decompress::db_stream(entry);
    crate::archive::schema::table_names(read, SCHEMA_READ_LIMIT).filter(|names| !names.is_empty())
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
        let pairs: Vec<(&Entry, Tables)> = entries
            .iter()
            .zip(files)
            .map(|(entry, (_, names))| (entry, tables(names)))
            .collect();
        by_families(&pairs, "the database is missing")
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
        // Two groups, whatever their sizes: whose each is cannot be told.
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
