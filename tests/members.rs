//! Backups record where their gzip members are (issue 21): restore and verify
//! inflate them in parallel, a diff's base is confirmed by the XXH3 of its
//! compressed bytes, and backups written before (no member index) restore,
//! verify and export exactly as before.

use std::fs;
use std::path::Path;

use crate::common::*;

/// A full backup and a diff of it written by dbbackup before the member index
/// (commit 005569b): `tests/fixtures/before_member_index`.
const OLD_FULL: &str = "backup_20261205_185508.db.gz";
const OLD_DIFF: &str = "backup_20261205_185509.diff.gz";
const OLD_FULL_SHA: &str = "2e1bcebb7be6ceab233a7055d97c75685eb4feeb2326a1fd65ee7081b72eafbc";
const OLD_DIFF_SHA: &str = "5ea3a677fa5700ff0384ae3f475e1040576eb4ba04ebc2f1260bbcc4481b9408";

/// The JSON metadata in a backup's first member.
fn header(path: &Path) -> serde_json::Value {
    let bytes = fs::read(path).unwrap();
    let field = &bytes[16..8192 - 10];
    let text = std::str::from_utf8(field).unwrap().trim_end();
    serde_json::from_str(text).unwrap()
}

#[test]
fn backups_written_before_the_member_index_restore_verify_and_export_as_before() {
    let env = Env::empty();
    fs::create_dir_all(&env.backups).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/before_member_index");
    for name in [OLD_FULL, OLD_DIFF] {
        fs::copy(fixtures.join(name), env.backups.join(name)).unwrap();
        assert!(header(&env.backups.join(name)).get("members").is_none());
    }
    for (name, sha) in [(OLD_FULL, OLD_FULL_SHA), (OLD_DIFF, OLD_DIFF_SHA)] {
        let target = env.path(&format!("{name}.restored.db"));
        let run = env.run(&["-v", "restore", name, "--target", target.to_str().unwrap()]);
        run.ok();
        // One stream, as before: no index to find the members by.
        assert!(!run.stderr.contains("inflating"), "{}", run.stderr);
        assert_eq!(file_sha256(&target), sha, "{name} restored");
        let out = env.path(&format!("{name}.export.gz"));
        env.run(&["export", name, "--out", out.to_str().unwrap()])
            .ok();
        assert_eq!(sha256_hex(&gunzip(&out)), sha, "{name} exported");
    }
    let verify = env.run(&["verify", "--all"]);
    verify.ok();
    assert_eq!(
        verify.stdout.matches(": ok (").count(),
        2,
        "{}",
        verify.stdout
    );
    // The fixtures themselves are untouched by all this.
    for name in [OLD_FULL, OLD_DIFF] {
        assert_eq!(
            fs::read(env.backups.join(name)).unwrap(),
            fs::read(fixtures.join(name)).unwrap()
        );
    }
}

#[test]
fn a_backup_records_its_members_and_restores_them_on_every_thread_count() {
    let env = Env::empty();
    make_results_db(&env.db, 5.0, false);
    env.run(&["backup"]).ok();
    let backup = env.newest_backup();
    let meta = header(&backup);
    let db_size = meta["db_size"].as_u64().unwrap();
    let members = &meta["members"];
    assert_eq!(
        members["count"].as_u64().unwrap(),
        db_size.div_ceil(1 << 20),
        "{meta}"
    );
    assert!(members["xxh3"].as_str().unwrap().starts_with("xxh3:"));
    assert_eq!(
        meta["file_size"].as_u64().unwrap(),
        fs::metadata(&backup).unwrap().len()
    );
    // Plain gzip still reads it whole (the index is an empty member).
    let plain = gunzip(&backup);
    assert_eq!(plain.len() as u64, db_size);
    if have("gzip") {
        let test = std::process::Command::new("gzip")
            .arg("-t")
            .arg(&backup)
            .status()
            .unwrap();
        assert!(test.success());
    }
    for threads in ["1", "2", "3"] {
        let target = env.path(&format!("restored_{threads}.db"));
        let run = env.run(&[
            "-v",
            "restore",
            "latest",
            "--threads",
            threads,
            "--target",
            target.to_str().unwrap(),
        ]);
        run.ok();
        let count = db_size.div_ceil(1 << 20);
        assert!(
            run.stderr
                .contains(&format!("inflating {count} members on")),
            "{}",
            run.stderr
        );
        assert_eq!(fs::read(&target).unwrap(), plain, "{threads} threads");
    }
    env.run(&["verify"]).ok();
}

#[test]
fn a_damaged_member_stops_the_parallel_restore_with_the_target_untouched() {
    let env = Env::empty();
    make_results_db(&env.db, 4.0, false);
    env.run(&["backup"]).ok();
    let backup = env.newest_backup();
    let index_at = header(&backup)["members"]["index_at"].as_u64().unwrap();
    // A byte in the middle of the data members, the file's size and mtime kept.
    let mut bytes = fs::read(&backup).unwrap();
    let at = (8192 + index_at as usize) / 2;
    bytes[at] ^= 0x10;
    let mtime = fs::metadata(&backup).unwrap().modified().unwrap();
    fs::write(&backup, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&backup)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let name = backup.file_name().unwrap().to_str().unwrap().to_string();
    let target = env.path("restored.db");
    env.run(&["restore", &name, "--target", target.to_str().unwrap()])
        .failed_with(1, &format!("backup {name} is damaged"));
    assert!(!target.exists());
    env.run(&["verify", &name])
        .reported(1, &format!("{name}: FAILED"));
}

/// A database whose index no longer matches its table: `quick_check` passes,
/// `integrity_check` does not.
fn index_out_of_step(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(a INTEGER, b INTEGER);
         CREATE INDEX t_a ON t(a);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO t SELECT i, 1000 - i FROM n;
         PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = 'CREATE INDEX t_a ON t(b)' WHERE name = 't_a';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
}

/// Restore runs `quick_check` on a copy whose SHA-256 is the one recorded when
/// the snapshot passed its check; `--full-check` and `verify` run
/// `integrity_check` (docs/reliability.md).
#[test]
fn restore_trusts_a_proven_checksum_with_quick_check_and_full_check_runs_integrity_check() {
    let env = Env::empty();
    index_out_of_step(&env.db);
    let backup = env.run(&["backup", "--format", "json"]);
    backup.ok();
    assert_eq!(backup.json()["check"], "ok", "{}", backup.stdout);
    let quick = env.path("quick.db");
    env.run(&["restore", "latest", "--target", quick.to_str().unwrap()])
        .ok();
    assert_eq!(file_sha256(&quick), file_sha256(&env.db));
    let full = env.path("full.db");
    env.run(&[
        "restore",
        "latest",
        "--full-check",
        "--target",
        full.to_str().unwrap(),
    ])
    .failed_with(1, "fails integrity_check");
    assert!(!full.exists());
    env.run(&["verify"]).reported(1, "FAILED: integrity_check");
}

/// A diff's base is confirmed by the XXH3 of its compressed bytes; a flipped
/// byte (size and mtime kept) makes it read whole, found damaged, and a full
/// backup made instead.
#[test]
fn a_base_whose_compressed_bytes_changed_is_read_whole_and_not_built_on() {
    let env = Env::empty();
    fs::write(env.path("dbbackup.yaml"), "diff_backups: 4\n").unwrap();
    make_results_db(&env.db, 3.0, false);
    env.run(&["backup"]).ok();
    let base = env.newest_backup();
    grow_results_db(&env.db, 1.01, 7);
    let diff = env.run(&["-v", "backup", "--format", "json"]);
    diff.ok();
    assert!(diff.json()["name"].as_str().unwrap().ends_with(".diff.gz"));
    assert!(!diff.stderr.contains("read whole"), "{}", diff.stderr);
    let index_at = header(&base)["members"]["index_at"].as_u64().unwrap();
    let mut bytes = fs::read(&base).unwrap();
    let at = (8192 + index_at as usize) / 2;
    bytes[at] ^= 0x01;
    let mtime = fs::metadata(&base).unwrap().modified().unwrap();
    fs::write(&base, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&base)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    grow_results_db(&env.db, 1.01, 8);
    let next = env.run(&["backup", "--format", "json"]);
    next.ok();
    let made = next.json();
    assert!(made["name"].as_str().unwrap().ends_with(".db.gz"), "{made}");
    assert!(
        made["full_because"]
            .as_str()
            .is_some_and(|why| why.contains("failed its check")),
        "{made}"
    );
}

/// `verify --all` checks backups side by side (one per core) and still reports
/// them in order, newest first, a damaged one named among them.
#[test]
fn verify_all_checks_backups_side_by_side_and_reports_them_in_order() {
    let env = Env::empty();
    make_results_db(&env.db, 2.0, false);
    for seed in 0..4 {
        if seed > 0 {
            grow_results_db(&env.db, 1.02, 40 + seed);
        }
        let run: Run = env
            .command()
            .env("DBBACKUP_MAX_BACKUPS", "20")
            .args(["backup", "--force"])
            .output()
            .unwrap()
            .into();
        run.ok();
    }
    let names = env.backup_files();
    assert_eq!(names.len(), 4, "{names:?}");
    let damaged = env.backups.join(&names[1]);
    let mut bytes = fs::read(&damaged).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    fs::write(&damaged, &bytes).unwrap();
    let run = env.run(&["verify", "--all", "--threads", "2"]);
    run.reported(1, &format!("{}: FAILED", names[1]));
    let order: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|line| line.split(':').next())
        .collect();
    let newest_first: Vec<&str> = names.iter().rev().map(String::as_str).collect();
    assert_eq!(order, newest_first, "{}", run.stdout);
    assert_eq!(run.stdout.matches(": ok (").count(), 3, "{}", run.stdout);
}

/// A member index that no longer matches the file (one length changed) is not
/// trusted: the backup is read as one stream, every CRC and the SHA-256 still
/// checked, and restores as it is.
#[test]
fn a_damaged_member_index_is_read_as_one_stream() {
    let env = Env::empty();
    make_results_db(&env.db, 3.0, false);
    env.run(&["backup"]).ok();
    let backup = env.newest_backup();
    let mut bytes = fs::read(&backup).unwrap();
    // The index member ends with: the last length's digits, NUL, 10 bytes.
    let last_digit = bytes.len() - 12;
    assert!(bytes[last_digit].is_ascii_digit());
    bytes[last_digit] = if bytes[last_digit] == b'9' {
        b'8'
    } else {
        bytes[last_digit] + 1
    };
    fs::write(&backup, &bytes).unwrap();
    let target = env.path("restored.db");
    let run = env.run(&[
        "-v",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    run.ok();
    assert!(!run.stderr.contains("inflating"), "{}", run.stderr);
    assert_eq!(file_sha256(&target), file_sha256(&env.db));
}

/// Once a day per base, a diff reads its base whole beside the snapshot (its
/// sidecar older than a day), and the read renews the sidecar.
#[test]
fn a_base_not_read_whole_for_a_day_is_read_whole_beside_the_next_diff() {
    let env = Env::empty();
    fs::write(env.path("dbbackup.yaml"), "diff_backups: 4\n").unwrap();
    make_results_db(&env.db, 3.0, false);
    env.run(&["backup"]).ok();
    let base = env.newest_backup();
    let name = base.file_name().unwrap().to_str().unwrap().to_string();
    let sidecar = env
        .backups
        .join(".dbbackup-pages")
        .join(format!("{name}.xxh3"));
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
    fs::File::options()
        .write(true)
        .open(&sidecar)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    grow_results_db(&env.db, 1.01, 9);
    let run = env.run(&["-v", "backup", "--format", "json"]);
    run.ok();
    assert!(run.json()["name"].as_str().unwrap().ends_with(".diff.gz"));
    assert!(
        run.stderr
            .contains(&format!("base {name} read whole and checked")),
        "{}",
        run.stderr
    );
    let renewed = fs::metadata(&sidecar).unwrap().modified().unwrap();
    assert!(renewed > two_days_ago + std::time::Duration::from_secs(86400));
    // The next diff trusts the compressed bytes again.
    grow_results_db(&env.db, 1.01, 10);
    let run = env.run(&["-v", "backup", "--format", "json"]);
    run.ok();
    assert!(!run.stderr.contains("read whole"), "{}", run.stderr);
}

/// SIGTERM while the members are being inflated on several threads: the run
/// dies of the signal, nothing appears at the target and no temp file is left.
#[test]
fn a_signal_during_the_parallel_inflation_leaves_nothing_behind() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let env = Env::empty();
    make_results_db(&env.db, 40.0, false);
    env.run(&["backup"]).ok();
    let target = env.path("restored.db");
    let mut child = env
        .command()
        .args(["-v", "restore", "latest", "--threads", "2", "--target"])
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
        if line.contains("inflating") {
            break;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let status = child.wait().unwrap();
    if status.signal() == Some(15) {
        assert!(seen.contains("restore stopped by signal 15"), "{seen}");
        assert!(!target.exists(), "{seen}");
    } else {
        // It finished first (a fast machine): then it restored whole.
        assert!(status.success(), "{seen}");
        assert_eq!(file_sha256(&target), file_sha256(&env.db));
    }
    let temps: Vec<_> = fs::read_dir(env.root.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".dbbackup-tmp-")
        })
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

/// Peak RSS (KiB) of `dbbackup ARGS` run as `env.command()` would, measured
/// by GNU time (the child's own maximum resident set, from `wait4`).
fn peak_rss_kib(env: &Env, cores: &str, args: &[&str]) -> u64 {
    let command = env.command();
    let out = env.path("peak-rss.txt");
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(&out)
        .arg(command.get_program())
        .args(args)
        .current_dir(env.root.path())
        .env("DBBACKUP_ASSUME_CORES", cores);
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(name, value),
            None => timed.env_remove(name),
        };
    }
    let run: Run = timed
        .output()
        .expect("GNU time (/usr/bin/time) runs dbbackup")
        .into();
    run.ok();
    fs::read_to_string(&out).unwrap().trim().parse().unwrap()
}

/// Issue 21: peak RSS < 64 MiB whatever the thread count. On a 64-core node
/// (`DBBACKUP_ASSUME_CORES=64`, `--threads 64`) a backup, a restore and a
/// verify of ~190 MB of random blobs (incompressible: every gzip member as
/// large as its block, the most bytes in flight) stay under it; before the
/// pipelines were bounded each took ~200 MiB.
#[test]
fn a_64_core_node_stays_under_64_mib() {
    let env = Env::empty();
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(x); WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n \
             WHERE v < 2900) INSERT INTO t SELECT randomblob(65536) FROM n;",
        )
        .unwrap();
    let threads = ["--threads", "64"];
    let backup = peak_rss_kib(&env, "64", &[&["backup", "--force"][..], &threads].concat());
    let name = env.backup_files().pop().unwrap();
    let target = env.path("restored.db");
    let restore = peak_rss_kib(
        &env,
        "64",
        &[
            &["restore", &name, "--target", target.to_str().unwrap()][..],
            &threads,
        ]
        .concat(),
    );
    assert_eq!(file_sha256(&target), file_sha256(&env.db));
    let verify = peak_rss_kib(&env, "64", &[&["verify", &name][..], &threads].concat());
    for (what, kib) in [("backup", backup), ("restore", restore), ("verify", verify)] {
        assert!(
            kib < 64 * 1024,
            "{what} with 64 threads peaked at {} MiB",
            kib / 1024
        );
    }
}

/// `verify --all` on a 64-core node checks at most 4 backups side by side
/// (each holds its buffers and SQLite's cache): under 64 MiB with twelve
/// backups of random blobs, where one per core (twelve) took 87 MiB.
#[test]
fn verify_all_on_a_64_core_node_stays_under_64_mib() {
    let env = Env::empty();
    let db = rusqlite::Connection::open(&env.db).unwrap();
    db.execute_batch("CREATE TABLE t(x);").unwrap();
    for round in 0..12 {
        db.execute_batch(
            "WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 20) \
             INSERT INTO t SELECT randomblob(65536) FROM n;",
        )
        .unwrap();
        let run: Run = env
            .command()
            .env("DBBACKUP_MAX_BACKUPS", "20")
            .args(["backup", "--force"])
            .output()
            .unwrap()
            .into();
        run.ok();
        assert_eq!(env.backup_files().len(), round + 1);
    }
    let kib = peak_rss_kib(&env, "64", &["verify", "--all", "--threads", "64"]);
    assert!(
        kib < 64 * 1024,
        "verify --all with 64 threads peaked at {} MiB",
        kib / 1024
    );
}
