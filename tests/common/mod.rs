//! Helpers: a fresh temp dir per test, the built binary with a clean environment,
//! real SQLite databases, and content digests to compare them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;
use sha2::{Digest, Sha256};

pub const BIN: &str = env!("CARGO_BIN_EXE_dbbackup");

pub struct Env {
    pub root: tempfile::TempDir,
    pub db: PathBuf,
    pub backups: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn failed_with(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}\nstderr: {}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Env {
    /// A temp dir with `results.db` (a small database) and `backups/` (not created).
    pub fn new() -> Env {
        let env = Env::empty();
        make_ledger_db(&env.db, 200, false);
        env
    }

    pub fn empty() -> Env {
        let root = tempfile::tempdir().expect("temp dir");
        let db = root.path().join("results.db");
        let backups = root.path().join("backups");
        Env { root, db, backups }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The binary, run in the temp dir, with no DBBACKUP_* or SLURM_* inherited.
    pub fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command.current_dir(self.root.path());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("DBBACKUP_") || key.starts_with("SLURM_") {
                command.env_remove(key.as_ref());
            }
        }
        command.env("DBBACKUP_DB_PATH", &self.db);
        command.env("DBBACKUP_BACKUP_DIR", &self.backups);
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.command()
            .args(args)
            .output()
            .expect("run dbbackup")
            .into()
    }

    /// Backup file names, oldest first (the order `ls` shows).
    pub fn backup_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.backups)
            .map(|dir| {
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("backup_"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn newest_backup(&self) -> PathBuf {
        self.backups
            .join(self.backup_files().last().expect("a backup"))
    }

    /// Files in the backup dir that are neither backups nor the lock.
    pub fn stray_files(&self) -> Vec<String> {
        fs::read_dir(&self.backups)
            .map(|dir| {
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with("backup_") && n != ".dbbackup.lock")
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A database with an invariant writers keep: `counter.n` equals the number of
/// `ledger` rows and `sum(ledger.amount)` is 0.
pub fn make_ledger_db(path: &Path, pairs: u32, wal: bool) {
    let conn = Connection::open(path).unwrap();
    if wal {
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
    }
    conn.execute_batch(
        "CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, note TEXT);
         CREATE INDEX ledger_amount ON ledger(amount);
         CREATE TABLE counter (n INTEGER NOT NULL);
         INSERT INTO counter VALUES (0);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..pairs {
        let amount = (i as i64 % 97) - 48;
        tx.execute(
            "INSERT INTO ledger (amount, note) VALUES (?1, ?2)",
            (amount, format!("row {i} {}", "x".repeat(40))),
        )
        .unwrap();
        tx.execute(
            "INSERT INTO ledger (amount, note) VALUES (?1, 'balance')",
            (-amount,),
        )
        .unwrap();
        tx.execute("UPDATE counter SET n = n + 2", []).unwrap();
    }
    tx.commit().unwrap();
}

/// Python that appends balanced pairs to the ledger, one transaction each, until
/// killed. Argument: the database path.
pub const LEDGER_WRITER: &str = r#"
import sqlite3, sys, itertools
con = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
for i in itertools.count():
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO ledger (amount, note) VALUES (?, ?)", (i % 50 + 1, "w" * 200))
    con.execute("INSERT INTO ledger (amount, note) VALUES (?, 'balance')", (-(i % 50 + 1),))
    con.execute("UPDATE counter SET n = n + 2")
    con.execute("COMMIT")
    if i == 0:
        print("started", flush=True)
"#;

/// Panics unless the ledger invariant holds in the database at `path`.
pub fn assert_ledger_invariant(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let (n, rows, sum): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT n FROM counter), (SELECT count(*) FROM ledger), (SELECT coalesce(sum(amount),0) FROM ledger)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(n, rows, "counter matches ledger rows in {}", path.display());
    assert_eq!(sum, 0, "ledger balances in {}", path.display());
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// A digest of every row of every table, to compare databases by content.
pub fn content_digest(path: &Path) -> String {
    let conn =
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut hasher = Sha256::new();
    for table in tables {
        hasher.update(table.as_bytes());
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
            .unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                hasher.update(format!("{:?}|", row.get_ref(i).unwrap()).as_bytes());
            }
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn row_count(path: &Path, table: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Decompress with the flate2 reader (all members).
pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut data = Vec::new();
    flate2::read::MultiGzDecoder::new(fs::File::open(path).unwrap())
        .read_to_end(&mut data)
        .unwrap();
    data
}

/// Decompress a backup into `out` and return its path.
pub fn gunzip_to(backup: &Path, out: &Path) -> PathBuf {
    fs::write(out, gunzip(backup)).unwrap();
    out.to_path_buf()
}

/// `list --format json`, by name.
pub fn listed(env: &Env) -> BTreeMap<String, serde_json::Value> {
    let list = env.run(&["list", "--format", "json"]);
    list.ok();
    list.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["name"].as_str().unwrap().to_string(), row.clone()))
        .collect()
}

/// `../shared/bench/make_results_db.py`, for realistic larger data.
pub fn make_results_db(path: &Path, size_mb: f64, wal: bool) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/make_results_db.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .arg(path)
        .arg("--size-mb")
        .arg(size_mb.to_string());
    if wal {
        command.arg("--wal");
    }
    let output = command.output().expect("python3");
    assert!(
        output.status.success(),
        "make_results_db: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Parse one logfmt line; `None` unless every field is `key=value` (quoted
/// values with escapes allowed).
pub fn parse_logfmt(line: &str) -> Option<BTreeMap<String, String>> {
    let mut fields = BTreeMap::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(fields);
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|&c| c != '=' && c != ' ')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        'u' => {
                            if chars.next()? != '{' {
                                return None;
                            }
                            let hex: String =
                                std::iter::from_fn(|| chars.next_if(|&c| c != '}')).collect();
                            chars.next()?;
                            value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                        }
                        c @ ('"' | '\\') => value.push(c),
                        _ => return None,
                    },
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|&c| c != ' ')).collect();
            if value.contains('"') || value.contains('=') {
                return None;
            }
        }
        fields.insert(key, value);
    }
}

/// The summary log's lines, each checked to be whole and well-formed.
pub fn summary_lines(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "last line is whole"
    );
    text.lines()
        .map(|line| {
            let fields =
                parse_logfmt(line).unwrap_or_else(|| panic!("malformed summary line: {line}"));
            assert!(line.starts_with("time="), "{line}");
            for key in ["time", "job", "host", "event", "status"] {
                assert!(fields.contains_key(key), "{key} missing: {line}");
            }
            assert!(
                ["ok", "skipped", "failed"].contains(&fields["status"].as_str()),
                "{line}"
            );
            fields
        })
        .collect()
}

/// Start `count` copies of the binary at once with array-task variables.
pub fn run_array_tasks(
    env: &Env,
    array_id: &str,
    count: u32,
    args: impl Fn(u32) -> Vec<String>,
) -> Vec<Run> {
    let children: Vec<_> = (0..count)
        .map(|task| {
            env.command()
                .env("SLURM_ARRAY_JOB_ID", array_id)
                .env("SLURM_ARRAY_TASK_ID", task.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
                .env("SLURM_JOB_ID", format!("{array_id}{task:03}"))
                .env(
                    "DBBACKUP_SUMMARY_LOG",
                    env.path("slrm_logs/backup_summary.log"),
                )
                .args(args(task))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn dbbackup")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().into())
        .collect()
}
