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

/// How much of a database is inflated, at most, for its schema: its pages
/// are at the start, or (tables added later) wherever the file then ended.
/// Past this, the tables are not known and the file is judged as before.
const SCHEMA_READ_LIMIT: u64 = 64 * 1024 * 1024;

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
        let mut unlike = BTreeMap::new();
        if legacy.is_empty() {
            return Unlike(unlike);
        }
        if let Some((ours, of_what)) = db.and_then(|db| reference(entries, db)) {
            for (entry, theirs) in &legacy {
                if theirs.is_disjoint(&ours) {
                    let why = format!(
                        "shares no table with {of_what} (it holds {}; {of_what} {})",
                        listed(theirs),
                        listed(&ours)
                    );
                    unlike.insert(entry.file_name.clone(), why);
                }
            }
            return Unlike(unlike);
        }
        Unlike(by_families(&legacy))
    }

    /// Why `file_name` is taken for another database's, if it is.
    pub(crate) fn why(&self, file_name: &str) -> Option<&str> {
        self.0.get(file_name).map(String::as_str)
    }
}

/// With nothing to compare them with: the legacy files fall into families
/// (files linked by a table in common); one family larger than every other
/// is taken for this database's, the rest for others'. Of families equally
/// large, whose each is cannot be told: none is counted.
fn by_families(legacy: &[(&Entry, Tables)]) -> BTreeMap<String, String> {
    let mut family: Vec<usize> = (0..legacy.len()).collect();
    for i in 0..legacy.len() {
        for j in 0..i {
            if !legacy[i].1.is_disjoint(&legacy[j].1) {
                let (a, b) = (family[i], family[j]);
                family.iter_mut().filter(|f| **f == a).for_each(|f| *f = b);
            }
        }
    }
    let size = |f: usize| family.iter().filter(|g| **g == f).count();
    let largest = family.iter().map(|f| size(*f)).max().unwrap_or(0);
    let leaders: BTreeSet<usize> = family
        .iter()
        .copied()
        .filter(|f| size(*f) == largest)
        .collect();
    let mut unlike = BTreeMap::new();
    if family.iter().all(|f| *f == family[0]) {
        return unlike;
    }
    let tables_of = |f: usize| -> Tables {
        legacy
            .iter()
            .zip(&family)
            .filter(|(_, g)| **g == f)
            .flat_map(|((_, tables), _)| tables.iter().cloned())
            .collect()
    };
    for ((entry, theirs), f) in legacy.iter().zip(&family) {
        let why = match (leaders.len(), leaders.contains(f)) {
            (1, true) => continue,
            (1, false) => {
                let main = *leaders.first().unwrap_or(f);
                format!(
                    "shares no table with the {largest} legacy backups here holding {} (it holds {})",
                    listed(&tables_of(main)),
                    listed(theirs)
                )
            }
            _ => format!(
                "shares no table with other legacy backups here, as many as those holding its tables ({}): which are this database's cannot be told",
                listed(theirs)
            ),
        };
        unlike.insert(entry.file_name.clone(), why);
    }
    unlike
}

/// The tables to compare legacy files with, and whose they are: the
/// database's own, else (missing, empty, unreadable) those of its newest full
/// backup that records it.
fn reference(entries: &[Entry], db: &super::DbId) -> Option<(Tables, String)> {
    if let Some(tables) = crate::sqlite_file::table_names(db.canonical()).filter(|t| !t.is_empty())
    {
        return Some((tables, format!("the database {}", show(db.canonical()))));
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
        .max_by_key(|e| e.order())?;
    let tables = head_tables(newest)?;
    Some((tables, format!("its newest backup {}", newest.file_name)))
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
        by_families(&pairs).into_keys().collect()
    }

    #[test]
    fn without_a_database_the_one_largest_family_of_legacy_files_is_its() {
        let runs: &[&str] = &["runs", "metrics"];
        let grown: &[&str] = &["runs", "metrics", "extra"];
        let samples: &[&str] = &["samples"];
        let name = |stamp: &str| legacy(stamp).file_name;
        // A schema that grew is one family with the one it grew from.
        assert!(judged(&[("20250101_000000", runs), ("20250102_000000", grown)]).is_empty());
        assert_eq!(
            judged(&[
                ("20250101_000000", runs),
                ("20250102_000000", grown),
                ("20250103_000000", samples),
            ]),
            vec![name("20250103_000000")]
        );
        // One against one: whose either is cannot be told.
        assert_eq!(
            judged(&[("20250101_000000", runs), ("20250103_000000", samples)]).len(),
            2
        );
    }
}
