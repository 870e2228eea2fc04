//! Realistic network-analysis results databases, deterministic for a seed.
//!
//! The shape mimics what sweeps of network simulations write: one row per run
//! (parameters, host, Slurm job id), per-step scalar metrics, degree histograms and
//! packed float arrays. It compresses with gzip -6 to roughly a third of its size,
//! like the databases dbbackup is meant for. Shared by the `make_results_db`
//! example (benchmarks, docs) and the integration tests (`tests/common`), so both
//! measure the same kind of data.

use std::path::Path;

use rusqlite::Connection;

const SCHEMA: &str = "
CREATE TABLE runs (
  id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, n_nodes INTEGER, param REAL,
  label TEXT, model TEXT, variant TEXT, dist TEXT, seed INTEGER, host TEXT,
  slurm_job TEXT, status TEXT);
CREATE TABLE metrics (run_id INTEGER REFERENCES runs(id), step INTEGER, name TEXT, value REAL);
CREATE INDEX metrics_run ON metrics(run_id, name);
CREATE TABLE degree_hist (run_id INTEGER REFERENCES runs(id), degree INTEGER, count INTEGER);
CREATE TABLE snapshots (run_id INTEGER REFERENCES runs(id), step INTEGER, payload BLOB);
";

const NAMES: [&str; 8] = [
    "clustering",
    "mean_path_length",
    "giant_component",
    "assortativity",
    "mean_degree",
    "max_degree",
    "edge_length_mean",
    "edge_length_var",
];

/// What to make.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Stop once the file holds at least this many MiB (checked every 20 runs).
    pub size_mb: f64,
    pub seed: u64,
    /// Leave the database in WAL mode.
    pub wal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size_mb: 35.0,
            seed: 1,
            wal: false,
        }
    }
}

/// What was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Made {
    pub runs: u64,
    pub bytes: u64,
}

/// Make a new database at `path`; refuses to overwrite an existing file.
pub(crate) fn make(path: &Path, options: Options) -> Result<Made, String> {
    if path.exists() {
        return Err(format!("{} exists; refusing to overwrite", path.display()));
    }
    fill(path, options).map_err(|e| format!("{}: {e}", path.display()))
}

/// Grow an existing results database by appending runs (as a sweep does) until
/// it holds at least `options.size_mb` MiB; `options.seed` should differ from the
/// one it was made with, so the new runs differ too.
pub(crate) fn append(path: &Path, options: Options) -> Result<Made, String> {
    grow(path, options).map_err(|e| format!("{}: {e}", path.display()))
}

fn grow(path: &Path, options: Options) -> rusqlite::Result<Made> {
    let conn = Connection::open(path)?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let target = (options.size_mb.max(0.0) * 1024.0 * 1024.0) as u64;
    let mut rng = Rng::new(options.seed);
    let last: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM runs", [], |r| r.get(0))?;
    let mut run = last as u64;
    let mut made = 0u64;
    loop {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        if (pages * page_size) as u64 >= target {
            break;
        }
        let tx = conn.unchecked_transaction()?;
        for _ in 0..5 {
            run += 1;
            made += 1;
            insert_run(&tx, &mut rng, run)?;
        }
        tx.commit()?;
    }
    drop(conn);
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    Ok(Made { runs: made, bytes })
}

fn fill(path: &Path, options: Options) -> rusqlite::Result<Made> {
    let conn = Connection::open(path)?;
    conn.execute_batch(SCHEMA)?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let target = (options.size_mb.max(0.0) * 1024.0 * 1024.0) as u64;
    let mut rng = Rng::new(options.seed);
    let mut run = 0u64;
    let mut tx = conn.unchecked_transaction()?;
    loop {
        run += 1;
        insert_run(&tx, &mut rng, run)?;
        if run.is_multiple_of(20) {
            tx.commit()?;
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            if (pages * page_size) as u64 >= target {
                break;
            }
            tx = conn.unchecked_transaction()?;
        }
    }
    if options.wal {
        conn.pragma_update(None, "journal_mode", "wal")?;
    }
    drop(conn);
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    Ok(Made { runs: run, bytes })
}

fn insert_run(conn: &Connection, rng: &mut Rng, run: u64) -> rusqlite::Result<()> {
    let n = *rng.choice(&[100i64, 200, 400, 800]);
    let p = *rng.choice(&[0.05f64, 0.1, 0.2, 0.3]);
    let created = format!(
        "2025-09-{:02}T{:02}:{:02}:00",
        rng.range(1, 28),
        rng.range(0, 23),
        rng.range(0, 59)
    );
    conn.prepare_cached("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")?
        .execute(rusqlite::params![
            run as i64,
            created,
            n,
            p,
            rng.choice(&["test", "prod", "sweep"]),
            rng.choice(&["URL", "ER", "BA"]),
            rng.choice(&["V", "E"]),
            rng.choice(&["length_power_law", "uniform", "exp"]),
            rng.range(0, 1 << 31),
            format!("node{:03}", rng.range(1, 64)),
            format!("{}_{}", rng.range(100_000, 999_999), rng.range(0, 99)),
            "done",
        ])?;
    let mut metric = conn.prepare_cached("INSERT INTO metrics VALUES (?,?,?,?)")?;
    for step in 0..40i64 {
        for name in NAMES {
            let digits = *rng.choice(&[3i32, 4, 6]);
            let value = round_to(rng.gauss(1.0, 0.3), digits);
            metric.execute(rusqlite::params![run as i64, step, name, value])?;
        }
    }
    let mut hist = conn.prepare_cached("INSERT INTO degree_hist VALUES (?,?,?)")?;
    for degree in 0..60i64 {
        let count = (n as f64 * 0.3 / ((degree + 1) as f64).powf(1.5) + rng.unit() * 3.0) as i64;
        hist.execute(rusqlite::params![run as i64, degree, count.max(0)])?;
    }
    let mut snapshot = conn.prepare_cached("INSERT INTO snapshots VALUES (?,?,?)")?;
    for step in [0i64, 20] {
        let payload: Vec<u8> = (0..256)
            .flat_map(|_| (round_to(rng.gauss(0.0, 1.0), 2) as f32).to_le_bytes())
            .collect();
        snapshot.execute(rusqlite::params![run as i64, step, payload])?;
    }
    Ok(())
}

fn round_to(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// splitmix64: tiny, fast, and the same sequence on every platform for a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high], both included.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    fn choice<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }

    /// Normal deviate (Box-Muller).
    fn gauss(&mut self, mean: f64, sd: f64) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(dir: &Path, name: &str, options: Options) -> Vec<u8> {
        let path = dir.join(name);
        make(&path, options).unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn deterministic_for_a_seed_sized_and_shaped_like_results() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            size_mb: 1.0,
            seed: 7,
            wal: false,
        };
        let first = made(dir.path(), "a.db", options);
        assert_eq!(first, made(dir.path(), "b.db", options), "same seed");
        let other = Options { seed: 8, ..options };
        assert_ne!(first, made(dir.path(), "c.db", other), "another seed");
        assert!((1 << 20..3 << 19).contains(&first.len()), "{}", first.len());
        let conn = Connection::open(dir.path().join("a.db")).unwrap();
        for table in ["runs", "metrics", "degree_hist", "snapshots"] {
            let rows: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert!(rows > 0, "{table}");
        }
        let wal = Options {
            wal: true,
            ..options
        };
        let wal = made(dir.path(), "w.db", wal);
        assert_eq!((wal[18], wal[19]), (2, 2), "left in WAL mode");
        assert!(
            make(&dir.path().join("a.db"), options).is_err(),
            "never overwrites"
        );
    }
}
