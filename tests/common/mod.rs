//! Helpers: a fresh temp dir per test, the built binary with a clean environment,
//! real SQLite databases, and content digests to compare them. One job per
//! submodule: `poll` (waits with a deadline), `child_env` (what a program under
//! test inherits), `files` (SHA-256, what lies under a directory, truncation),
//! `seed` (backups as the seed script wrote them), `slurm` (jobs as SLURM runs
//! them), `fake_tools` (stand-ins for site tools on `PATH`). Look here before
//! writing a helper in a test module.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;
use sha2::{Digest, Sha256};

mod child_env;
mod fake_tools;
mod files;
mod job_work;
mod poll;
mod seed;
mod slurm;

pub(crate) use child_env::without_inherited_settings;
pub(crate) use fake_tools::*;
pub(crate) use files::*;
pub(crate) use job_work::python_ledger_writer;
pub(crate) use poll::*;
pub(crate) use seed::*;
pub(crate) use slurm::*;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_dbbackup");

pub(crate) struct Env {
    pub root: tempfile::TempDir,
    pub db: PathBuf,
    pub backups: PathBuf,
}

#[must_use = "a run's exit code and output are what a test checks"]
pub(crate) struct Run {
    /// The exit code; -1 after a death by signal.
    pub code: i32,
    /// The signal the process died of, if it did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub(crate) fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Exit `code`, and stderr says `needle` (which must say something).
    pub(crate) fn failed_with(&self, code: i32, needle: &str) -> &Self {
        assert!(!needle.is_empty(), "failed_with needs a non-empty needle");
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

    /// Died of `signal` (re-raised after cleanup), and stderr says `needle`.
    pub(crate) fn stopped_by(&self, signal: i32, needle: &str) -> &Self {
        assert!(!needle.is_empty(), "stopped_by needs a non-empty needle");
        assert_eq!(
            (self.signal, self.code),
            (Some(signal), -1),
            "death by signal\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}\nstderr: {}",
            self.stderr
        );
        self
    }

    /// Exit `code`, and the report on stdout says `needle` (reporting commands
    /// such as `check` and `verify` explain a failure there).
    pub(crate) fn reported(&self, code: i32, needle: &str) -> &Self {
        assert!(!needle.is_empty(), "reported needs a non-empty needle");
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stdout.contains(needle),
            "stdout should mention {needle:?}\nstdout: {}",
            self.stdout
        );
        self
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            signal: std::os::unix::process::ExitStatusExt::signal(&output.status),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Env {
    /// A temp dir with `results.db` (a small database) and `backups/` (not created).
    pub(crate) fn new() -> Env {
        let env = Env::empty();
        make_ledger_db(&env.db, 200, false);
        env
    }

    pub(crate) fn empty() -> Env {
        let root = tempfile::tempdir().expect("temp dir");
        let db = root.path().join("results.db");
        let backups = root.path().join("backups");
        Env { root, db, backups }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The binary, run in the temp dir, with no DBBACKUP_* or SLURM_* inherited.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command.current_dir(self.root.path());
        without_inherited_settings(&mut command);
        command.env("DBBACKUP_DB_PATH", &self.db);
        command.env("DBBACKUP_BACKUP_DIR", &self.backups);
        command
    }

    /// The binary as a project set up with `dbbackup init` runs it: the database
    /// and the backup directory from `./dbbackup.yaml` (written here once), no
    /// `DBBACKUP_DB_PATH` / `DBBACKUP_BACKUP_DIR`. Only then are the seed's legacy
    /// files in that directory this database's (README "The seed's backups").
    pub(crate) fn configured(&self) -> Command {
        let config = self.path("dbbackup.yaml");
        if !config.exists() {
            fs::write(
                &config,
                format!(
                    "db_path: {}\nbackup_dir: {}\n",
                    self.db.display(),
                    self.backups.display()
                ),
            )
            .unwrap();
        }
        let mut command = self.command();
        command
            .env_remove("DBBACKUP_DB_PATH")
            .env_remove("DBBACKUP_BACKUP_DIR");
        command
    }

    /// `configured()` with `args`.
    pub(crate) fn run_configured(&self, args: &[&str]) -> Run {
        self.configured()
            .args(args)
            .output()
            .expect("run dbbackup")
            .into()
    }

    /// The backup directory's lock file.
    pub(crate) fn lock_file(&self) -> PathBuf {
        self.backups.join(".dbbackup.lock")
    }

    /// `./dbbackup.yaml` naming the database, the backup directory, `mirror`
    /// as the one mirror and the summary log: a project as `init` makes one.
    pub(crate) fn configure_with_mirror(&self, mirror: &Path) {
        fs::write(
            self.path("dbbackup.yaml"),
            format!(
                "db_path: {}\nbackup_dir: {}\nmirror_dirs: [{}]\nsummary_log: {}\n",
                self.db.display(),
                self.backups.display(),
                mirror.display(),
                self.summary_log().display()
            ),
        )
        .unwrap();
    }

    /// Where jobs in the test's directory write their summary lines (the
    /// templates' `slrm_logs/backup_summary.log`).
    pub(crate) fn summary_log(&self) -> PathBuf {
        self.path("slrm_logs/backup_summary.log")
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.command()
            .args(args)
            .output()
            .expect("run dbbackup")
            .into()
    }

    /// `dbbackup ARGS` with `mirror` as the mirror directory.
    pub(crate) fn run_mirrored(&self, mirror: &Path, args: &[&str]) -> Run {
        self.command()
            .env("DBBACKUP_MIRROR_DIRS", mirror)
            .args(args)
            .output()
            .expect("run dbbackup")
            .into()
    }

    /// Backup file names, oldest first (the order `ls` shows).
    pub(crate) fn backup_files(&self) -> Vec<String> {
        backup_files_in(&self.backups)
    }

    pub(crate) fn newest_backup(&self) -> PathBuf {
        self.backups
            .join(self.backup_files().last().expect("a backup"))
    }

    /// Files in the backup dir that are neither backups, the lock, the state
    /// directory (attempt records, array state) nor `.dbbackup-pages`.
    pub(crate) fn stray_files(&self) -> Vec<String> {
        fs::read_dir(&self.backups)
            .map(|dir| {
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| {
                        !n.starts_with("backup_")
                            && n != ".dbbackup.lock"
                            && n != ".dbbackup-state"
                            // Records about backups: page hashes, whole reads.
                            && n != ".dbbackup-pages"
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Until a backup's temp file (`.dbbackup-tmp-*`, a snapshot being made) in
    /// the backup directory holds at least `len` bytes.
    pub(crate) fn wait_for_temp_file(&self, len: u64, limit: std::time::Duration) {
        let what = format!("a temp file of {len} bytes or more in the backup directory");
        wait_until(&what, limit, std::time::Duration::from_millis(5), || {
            self.stray_files()
                .iter()
                .filter(|name| name.starts_with(".dbbackup-tmp-"))
                .filter_map(|name| fs::metadata(self.backups.join(name)).ok())
                .any(|meta| meta.len() >= len)
        });
    }
}

/// The backup file names in `dir` (a backup directory or a mirror), oldest
/// first (the order `ls` shows); none if `dir` cannot be read.
pub(crate) fn backup_files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
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

/// A database with an invariant writers keep: `counter.n` equals the number of
/// `ledger` rows and `sum(ledger.amount)` is 0.
pub(crate) fn make_ledger_db(path: &Path, pairs: u32, wal: bool) {
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
        let amount = (i64::from(i) % 97) - 48;
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

/// Appends balanced pairs to the ledger, one transaction each, on its own
/// connection in a thread of the test process (a different process from the
/// dbbackup under test, so SQLite's file locks arbitrate as between any two
/// programs), until dropped.
pub(crate) struct LedgerWriter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<rusqlite::Result<()>>>,
}

impl LedgerWriter {
    /// Start writing; returns once the first transaction has committed.
    pub(crate) fn start(db: &Path) -> LedgerWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let (started, first_commit) = std::sync::mpsc::channel();
        let (db, stopped) = (db.to_path_buf(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let conn = Connection::open(&db)?;
            conn.busy_timeout(std::time::Duration::from_secs(60))?;
            let mut i: i64 = 0;
            while !stopped.load(Ordering::Relaxed) {
                let amount = i % 50 + 1;
                conn.execute_batch("BEGIN IMMEDIATE")?;
                conn.execute(
                    "INSERT INTO ledger (amount, note) VALUES (?1, ?2)",
                    (amount, "w".repeat(200)),
                )?;
                conn.execute(
                    "INSERT INTO ledger (amount, note) VALUES (?1, 'balance')",
                    (-amount,),
                )?;
                conn.execute("UPDATE counter SET n = n + 2", [])?;
                conn.execute_batch("COMMIT")?;
                if i == 0 {
                    let _ = started.send(());
                }
                i += 1;
            }
            Ok(())
        });
        let mut writer = LedgerWriter {
            stop,
            thread: Some(thread),
        };
        if first_commit.recv().is_err() {
            let result = writer.thread.take().unwrap().join().unwrap();
            panic!("ledger writer did not start: {result:?}");
        }
        writer
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            if !std::thread::panicking() {
                result
                    .expect("ledger writer panicked")
                    .expect("ledger writer failed");
            }
        }
    }
}

/// A connection holding an exclusive transaction on `db` (rollback mode: keeps
/// every reader out) until dropped.
/// One write to a ledger database (`make_ledger_db`): a row and the counter.
pub(crate) fn add_row_ledger(db: &Path) {
    Connection::open(db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'more'); UPDATE counter SET n = n + 1;",
        )
        .unwrap();
}

pub(crate) fn hold_exclusive(db: &Path) -> Connection {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE; UPDATE counter SET n = n")
        .unwrap();
    conn
}

/// Commit `rows` ledger rows into the -wal of a WAL database and close without
/// checkpointing, as a writer that died after its commits would leave them.
pub(crate) fn commit_into_wal_without_checkpoint(db: &Path, rows: u32) {
    let conn = Connection::open(db).unwrap();
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    for _ in 0..rows {
        conn.execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'late'); UPDATE counter SET n = n + 1;",
        )
        .unwrap();
    }
}

/// Hold the backup directory's lock the way another dbbackup would (a POSIX
/// record lock on the whole file, holder recorded inside) until dropped.
pub(crate) fn hold_dir_lock(lock_file: &Path, holder: &str) -> fs::File {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(lock_file)
        .unwrap();
    // start 0, len 0: the whole file.
    let request = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&file, FcntlArg::F_SETLK(&request)).expect("lock");
    file.write_all(holder.as_bytes()).unwrap();
    file
}

/// Panics unless the ledger invariant holds in the database at `path`.
pub(crate) fn assert_ledger_invariant(path: &Path) {
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
pub(crate) fn content_digest(path: &Path) -> String {
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
    hex(&hasher.finalize())
}

pub(crate) fn row_count(path: &Path, table: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Until the `ledger` table of `db` has at least `rows` rows (a job's work
/// is writing).
pub(crate) fn wait_for_ledger_rows(db: &Path, rows: i64, limit: std::time::Duration) {
    wait_until(
        &format!("{rows} ledger rows"),
        limit,
        std::time::Duration::from_millis(20),
        || row_count(db, "ledger") >= rows,
    );
}

/// Decompress with the flate2 reader (all members).
pub(crate) fn gunzip(path: &Path) -> Vec<u8> {
    let mut data = Vec::new();
    flate2::read::MultiGzDecoder::new(fs::File::open(path).unwrap())
        .read_to_end(&mut data)
        .unwrap();
    data
}

/// Decompress a backup into `out` and return its path.
pub(crate) fn gunzip_to(backup: &Path, out: &Path) -> PathBuf {
    fs::write(out, gunzip(backup)).unwrap();
    out.to_path_buf()
}

/// `list --format json`, by name.
pub(crate) fn listed(env: &Env) -> BTreeMap<String, serde_json::Value> {
    by_name(env.run(&["list", "--format", "json"]))
}

/// A successful `list --format json`'s rows, by name.
pub(crate) fn by_name(list: Run) -> BTreeMap<String, serde_json::Value> {
    list.ok();
    list.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["name"].as_str().unwrap().to_string(), row.clone()))
        .collect()
}

/// Make a backup look `by` older: its recorded creation time (what every age
/// check reads) is moved back, so no test has to sleep for time to pass.
pub(crate) fn backdate(backup: &Path, by: std::time::Duration) {
    let by = jiff::SignedDuration::try_from(by).unwrap();
    rewrite_meta(backup, |meta| meta.created -= by);
}

/// The project's generator of realistic results databases (the one the benchmark
/// and docs use), run in-process.
#[path = "../../examples/make_results_db/generator.rs"]
// The example reads the counts `generator::make` returns; the tests do not.
#[allow(dead_code)]
mod generator;
pub(crate) mod s3;

/// A realistic results database of about `size_mb` MiB (seed 1).
pub(crate) fn make_results_db(path: &Path, size_mb: f64, wal: bool) {
    let options = generator::Options {
        size_mb,
        seed: 1,
        wal,
    };
    generator::make(path, options).unwrap_or_else(|e| panic!("make_results_db: {e}"));
}

pub(crate) fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `tool` is installed, for a test that needs it: without it the test is
/// skipped with a note, unless `DBBACKUP_REQUIRE_TOOLS=1` (CI) makes that a failure,
/// so a missing install step in `.ci/run` cannot pass as a silent skip.
pub(crate) fn have_or_skip(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var("DBBACKUP_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "DBBACKUP_REQUIRE_TOOLS=1 but {tool} is not installed (.ci/run installs it)"
    );
    eprintln!("SKIPPED: {tool} is not installed");
    false
}

/// Parse one logfmt line; `None` unless every field is `key=value` (quoted
/// values with escapes allowed).
pub(crate) fn parse_logfmt(line: &str) -> Option<BTreeMap<String, String>> {
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
pub(crate) fn summary_lines(path: &Path) -> Vec<BTreeMap<String, String>> {
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
pub(crate) fn run_array_tasks(
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
                .env("DBBACKUP_SUMMARY_LOG", env.summary_log())
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

/// Grow a results database made by `make_results_db` by `factor` (1.01: 1 %) by
/// appending runs made from `seed` (as a running sweep does).
pub(crate) fn grow_results_db(path: &Path, factor: f64, seed: u64) {
    let now = fs::metadata(path).unwrap().len() as f64 / (1024.0 * 1024.0);
    let options = generator::Options {
        size_mb: now * factor,
        seed,
        wal: false,
    };
    generator::append(path, options).unwrap_or_else(|e| panic!("grow_results_db: {e}"));
}

/// `DBBACKUP_QUICK=1`: the everyday run. Loops that hunt rare timings (SIGKILL
/// moments, signal races, the stress run, fuzz cases) run fewer rounds; unset
/// (as in CI, `.ci/run`), they run at full length. README "Development".
pub(crate) fn quick() -> bool {
    std::env::var_os("DBBACKUP_QUICK").is_some_and(|v| v == "1")
}

/// `full` rounds, or `quick` ones under `DBBACKUP_QUICK=1`.
pub(crate) fn rounds(full: u64, quick_rounds: u64) -> u64 {
    if quick() { quick_rounds } else { full }
}

/// `dbbackup args` under a clock `offset` away (`faketime -f +10m`).
pub(crate) fn faketime(env: &Env, offset: &str, args: &[&str]) -> Run {
    under_faketime(&env.command(), offset)
        .current_dir(env.root.path())
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// `command`'s program under `faketime -f OFFSET`, with its environment.
pub(crate) fn under_faketime(command: &Command, offset: &str) -> Command {
    let mut wrapped = Command::new("faketime");
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped.args(["-f", offset]).arg(command.get_program());
    wrapped
}

/// Invert 4 bytes in the middle of `path`: damage its size does not show.
pub(crate) fn flip_middle(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 4] {
        *b ^= 0xff;
    }
    fs::write(path, bytes).unwrap();
}

/// Flip one bit of the first digit of `seq` in a backup's header, `1` -> `9`:
/// the damage that would make the oldest backup look the newest.
pub(crate) fn flip_seq_bit(bytes: &mut [u8]) {
    let header = &bytes[..dbbackup::store::metadata::HEADER_LEN];
    let at = header
        .windows(6)
        .position(|w| w == b"\"seq\":")
        .expect("a seq in the header")
        + 6;
    assert_eq!(bytes[at], b'1', "the oldest backup's seq starts with 1");
    bytes[at] ^= 0x08;
}

/// Rewrite a backup's metadata in place (what an older build, or a diff made on
/// an already truncated base, left behind).
pub(crate) fn rewrite_meta(
    path: &Path,
    edit: impl FnOnce(&mut dbbackup::store::metadata::Metadata),
) {
    use dbbackup::store::metadata;
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut header = vec![0u8; metadata::HEADER_LEN];
    file.read_exact_at(&mut header, 0).unwrap();
    let mut meta = metadata::decode(&mut &header[..]).unwrap();
    edit(&mut meta);
    file.write_all_at(&metadata::encode(&meta).unwrap(), 0)
        .unwrap();
}

/// Move backup `from` to `to` as if it had been published there: its header
/// names the file it was published as (`Metadata::name`), and a file of
/// another name is a copy. For tests that need a backup under a name of
/// their choosing.
pub(crate) fn rename_backup(from: &Path, to: &Path) {
    fs::rename(from, to).unwrap();
    name_in_header(to);
}

/// [`rename_backup`], keeping `from`.
pub(crate) fn copy_backup(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap();
    name_in_header(to);
}

fn name_in_header(path: &Path) {
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    rewrite_meta(path, |meta| meta.name = Some(name));
}

/// `dbbackup ARGS` run in `dir` with no setting from the environment: as a
/// user's shell in that directory runs it.
pub(crate) fn bare(dir: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(BIN);
    without_inherited_settings(&mut command);
    command.current_dir(dir).args(args).output().unwrap().into()
}

/// Whether a SLURM cluster answers; with `DBBACKUP_REQUIRE_SLURM=1` (CI) it must.
pub(crate) fn cluster_ready() -> bool {
    use std::io::Write as _;
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !String::from_utf8_lossy(&o.stdout).trim().is_empty());
    if !up {
        assert!(
            std::env::var("DBBACKUP_REQUIRE_SLURM").as_deref() != Ok("1"),
            "DBBACKUP_REQUIRE_SLURM=1 but no SLURM cluster answers (slurm/dev/local-cluster.sh start)"
        );
        // Straight to stderr, past the test harness's capture, so it is seen.
        let _ = writeln!(
            std::io::stderr(),
            "SLURM tests SKIPPED: no cluster (start one with `slurm/dev/local-cluster.sh start` as root)"
        );
    }
    up
}

pub(crate) fn slurm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("slurm")
}

pub(crate) fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `from` bind-mounted on `to` (created here) until the guard drops, also
/// when the test fails: one filesystem under two paths, as a cluster mounts a
/// project space. `None` where mounting is not allowed (not root), which CI
/// (root) never is.
pub(crate) fn bind_mount(from: &Path, to: &Path) -> Option<Mounted> {
    fs::create_dir_all(to).unwrap();
    let mounted = Command::new("mount")
        .arg("--bind")
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must bind-mount"
        );
        eprintln!("bind-mount test SKIPPED: cannot mount (not root?)");
        return None;
    }
    Some(Mounted(to.to_path_buf()))
}

/// A bind mount, unmounted when dropped.
pub(crate) struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Another process holding an fcntl lock on all of `file` (as dbbackup's own
/// locks are taken) until dropped: a run that holds it, or one stuck.
pub(crate) struct LockHolder(std::process::Child);

impl LockHolder {
    /// Held once this returns; `ready` is a scratch path it creates then.
    pub(crate) fn hold(file: &Path, ready: &Path) -> LockHolder {
        let child = Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX); open(sys.argv[2],'w').close(); time.sleep(30)",
            ])
            .arg(file)
            .arg(ready)
            .spawn()
            .unwrap();
        let holder = LockHolder(child);
        wait_until(
            "the lock is held",
            std::time::Duration::from_secs(30),
            std::time::Duration::from_millis(20),
            || ready.exists(),
        );
        holder
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A copy of the binary at `dest` (mode 755) that can be run at once. Written
/// by `cp`, never by this process: a child another test thread forks while
/// this process held the copy open for writing would keep it open until its
/// own exec, and running the copy then fails with ETXTBSY ("Text file busy").
pub(crate) fn copy_binary(dest: &Path) {
    let status = Command::new("cp").arg(BIN).arg(dest).status().unwrap();
    assert!(status.success(), "cp {BIN} {}", dest.display());
    let status = Command::new("chmod").arg("755").arg(dest).status().unwrap();
    assert!(status.success(), "chmod 755 {}", dest.display());
}
