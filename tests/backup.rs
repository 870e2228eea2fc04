//! `backup`: content, standard gzip, metadata, names, skip/force, retention.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::*;

#[test]
fn backup_holds_the_same_rows_as_the_source() {
    let env = Env::new();
    let run = env.run(&["backup"]);
    run.ok();
    assert!(run.stdout.starts_with("created backup_"), "{}", run.stdout);
    let files = env.backup_files();
    assert_eq!(files.len(), 1);
    let copy = gunzip_to(&env.newest_backup(), &env.path("copy.db"));
    assert_eq!(content_digest(&copy), content_digest(&env.db));
    assert_ledger_invariant(&copy);
    assert!(
        env.stray_files().is_empty(),
        "temp files left: {:?}",
        env.stray_files()
    );
}

#[test]
fn system_gzip_zcat_and_python_read_a_backup_and_checksum_matches() {
    let env = Env::empty();
    make_results_db(&env.db, 3.0, false);
    env.run(&["backup"]).ok();
    let backup = env.newest_backup();
    let tested = Command::new("gzip")
        .arg("-t")
        .arg(&backup)
        .status()
        .unwrap();
    assert!(tested.success(), "gzip -t");
    let out = env.path("by-gzip.db");
    let decompressed = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}' > '{}'",
            backup.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(decompressed.success());
    assert_eq!(
        fs::read(&out).unwrap(),
        fs::read(&env.db).unwrap(),
        "byte-for-byte copy"
    );
    assert_eq!(content_digest(&out), content_digest(&env.db));
    // zcat | sha256sum equals the recorded checksum.
    let sum = Command::new("sh")
        .arg("-c")
        .arg(format!("zcat '{}' | sha256sum", backup.display()))
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    let listed = listed(&env);
    let row = listed.values().next().unwrap();
    assert_eq!(
        row["checksum"],
        format!("sha256:{}", sum.split_whitespace().next().unwrap())
    );
    // Python's gzip module, where Python is installed (optional for the tests).
    if !have("python3") {
        return;
    }
    let python = Command::new("python3")
        .arg("-c")
        .arg("import gzip,sys; print(len(gzip.open(sys.argv[1]).read()))")
        .arg(&backup)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&python.stdout).trim(),
        fs::metadata(&env.db).unwrap().len().to_string()
    );
}

#[test]
fn metadata_is_recorded_and_survives_a_copy() {
    let env = Env::new();
    env.command()
        .env("SLURM_JOB_ID", "4242")
        .arg("backup")
        .output()
        .unwrap();
    let listed = listed(&env);
    let row = listed.values().next().unwrap();
    assert_eq!(row["job"], "4242");
    assert_eq!(row["kind"], "manual");
    assert_eq!(row["check"], "ok");
    assert_eq!(row["db_size"], fs::metadata(&env.db).unwrap().len());
    assert_eq!(
        row["size"],
        fs::metadata(env.newest_backup()).unwrap().len()
    );
    assert!(row["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(
        row["created"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 UTC"
    );
    assert_eq!(row["source"], env.db.to_str().unwrap());
    // Copied elsewhere, the file still tells what it is.
    let elsewhere = env.path("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::copy(
        env.newest_backup(),
        elsewhere.join(env.backup_files()[0].clone()),
    )
    .unwrap();
    let run = env.run(&[
        "list",
        "--format",
        "json",
        "--backup-dir",
        elsewhere.to_str().unwrap(),
    ]);
    assert_eq!(run.json()[0]["job"], "4242");
}

/// T13 #11: after `run` stopped a writer it left running, SQLite's recovery
/// rewrote the database's files without changing its content, and the next
/// `backup`/`final` made a byte-identical copy that pushed an older, different
/// restore point out of retention. A snapshot whose content is the newest
/// restore point's is not published (here the files change by a `touch`);
/// `--force` still makes one.
#[test]
fn a_database_whose_files_changed_but_not_its_content_is_not_backed_up_again() {
    let env = Env::new();
    env.run(&["--max-backups", "2", "backup"]).ok();
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'second'); UPDATE counter SET n = n + 1",
        )
        .unwrap();
    env.run(&["--max-backups", "2", "backup"]).ok();
    let before = env.backup_files();
    let touch = |when: &str| {
        assert!(
            Command::new("touch")
                .args(["-d", when])
                .arg(&env.db)
                .status()
                .unwrap()
                .success()
        );
    };
    touch("2030-01-01 00:00:00");
    env.run(&["--max-backups", "2", "backup"])
        .reported(0, "skipped: database unchanged");
    touch("2030-01-02 00:00:00");
    let post: Run = env
        .command()
        .env("SLURM_JOB_ID", "4300")
        .args(["--max-backups", "2", "post-job", "--status", "0"])
        .output()
        .unwrap()
        .into();
    post.ok();
    assert_eq!(env.backup_files(), before, "nothing pushed out");
    env.run(&["--max-backups", "2", "backup", "--force"]).ok();
    assert_eq!(env.backup_files().len(), 2);
    assert_ne!(env.backup_files(), before);
}

#[test]
fn unchanged_database_is_skipped_unless_forced() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["backup"])
        .reported(0, "skipped: database unchanged");
    assert_eq!(env.backup_files().len(), 1);
    env.run(&["backup", "--force"]).ok();
    assert_eq!(env.backup_files().len(), 2);
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'new'); UPDATE counter SET n = n + 1",
        )
        .unwrap();
    env.run(&["backup"]).ok();
    assert_eq!(env.backup_files().len(), 3, "a commit counts as a change");
}

#[test]
fn backups_in_the_same_second_get_distinct_names_in_creation_order() {
    let env = Env::new();
    // Back up until two land in one second (each takes milliseconds; a machine
    // slow enough to need more than 100 tries makes the test fail, not pass).
    let mut tries = 0;
    while !env.backup_files().iter().any(|f| f.contains("_00")) {
        assert!(
            tries < 100,
            "never two in one second: {:?}",
            env.backup_files()
        );
        env.run(&["backup", "--force", "-q", "--max-backups", "1000"])
            .ok();
        tries += 1;
    }
    let files = env.backup_files();
    assert_eq!(files.len(), tries);
    // Sorted by name == sorted by recorded creation time.
    let listed = listed(&env);
    let mut created: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            (
                listed[f]["created"].as_str().unwrap().to_string(),
                f.clone(),
            )
        })
        .collect();
    created.sort();
    let by_time: Vec<String> = created.into_iter().map(|(_, f)| f).collect();
    assert_eq!(by_time, files);
}

#[test]
fn retention_keeps_the_newest_max_backups() {
    let env = Env::new();
    for _ in 0..5 {
        env.run(&["backup", "--force", "--max-backups", "3"]).ok();
    }
    let files = env.backup_files();
    assert_eq!(files.len(), 3);
    let all = env.run(&["list", "--format", "json"]).json();
    assert_eq!(all.as_array().unwrap().len(), 3);
}

#[test]
fn quiet_leaves_stdout_empty_and_logs_carry_job_and_host() {
    let env = Env::new();
    let quiet = env.run(&["backup", "--quiet"]);
    quiet.ok();
    assert_eq!(quiet.stdout, "");
    let run: Run = env
        .command()
        .env("SLURM_ARRAY_JOB_ID", "900")
        .env("SLURM_ARRAY_TASK_ID", "7")
        .env("SLURM_JOB_ID", "907")
        .args(["backup", "--force"])
        .output()
        .unwrap()
        .into();
    run.ok();
    for line in run.stderr.lines() {
        assert!(
            line.contains(" job=900_7 host="),
            "untagged log line: {line}"
        );
    }
    assert!(!run.stderr.is_empty());
}

#[test]
fn flags_work_before_and_after_the_subcommand() {
    let env = Env::new();
    let other = env.path("other");
    env.run(&["--backup-dir", other.to_str().unwrap(), "backup"])
        .ok();
    env.run(&["backup", "--backup-dir", other.to_str().unwrap(), "--force"])
        .ok();
    assert_eq!(
        fs::read_dir(&other)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("backup_"))
            .count(),
        2
    );
}

#[test]
fn backups_are_never_more_readable_than_the_database() {
    let env = Env::new();
    fs::set_permissions(&env.db, fs::Permissions::from_mode(0o600)).unwrap();
    env.run(&["backup"]).ok();
    let mode = fs::metadata(env.newest_backup())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(
        mode & !0o600,
        0,
        "backup mode {mode:o} wider than the database's 600"
    );
}

#[test]
fn a_snapshot_that_fails_its_check_is_kept_as_failed_and_never_displaces_good_ones() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    corrupt_index(&env.db);
    let run = env.run(&["backup", "--max-backups", "1"]);
    assert_eq!(run.code, 1, "stdout: {} stderr: {}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("INTEGRITY CHECK FAILED"),
        "{}",
        run.stdout
    );
    let files = env.backup_files();
    assert_eq!(files.len(), 2, "the good backup is kept: {files:?}");
    assert!(files.iter().any(|f| f.ends_with(".failed.db.gz")));
    let listed = listed(&env);
    let failed: Vec<_> = listed.values().filter(|r| r["check"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    // `latest` means the newest good backup.
    let restored = env.path("restored.db");
    env.run(&["restore", "latest", "--target", restored.to_str().unwrap()])
        .ok();
    assert_ledger_invariant(&restored);
}

/// Overwrite the middle of the index's root page so `quick_check` reports it while
/// the database still opens.
pub(crate) fn corrupt_index(db: &std::path::Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let (root, page_size): (i64, i64) = conn
        .query_row(
            "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_master WHERE name='ledger_amount'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(conn);
    let mut bytes = fs::read(db).unwrap();
    let start = ((root - 1) * page_size) as usize;
    for b in &mut bytes[start + 8..start + page_size as usize] {
        *b = 0x5a;
    }
    fs::write(db, bytes).unwrap();
}

/// Builds whose SQLite lacks `sqlite_dbpage` (no .cargo/config.toml) copy through
/// the online backup API; DBBACKUP_FORCE_BACKUP_API takes that path here.
#[test]
fn without_sqlite_dbpage_the_backup_api_path_makes_the_same_backup() {
    let env = Env::empty();
    make_ledger_db(&env.db, 3000, true);
    let writer = LedgerWriter::start(&env.db);
    let fallback = |args: &[&str]| -> Run {
        env.command()
            .env("DBBACKUP_FORCE_BACKUP_API", "1")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    for _ in 0..3 {
        let run = fallback(&["backup", "--force", "--max-backups", "10"]);
        run.ok();
        let warnings: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("sqlite_dbpage"))
            .collect();
        assert_eq!(warnings.len(), 1, "one warning line: {}", run.stderr);
        assert!(
            warnings[0].contains("cargo install --path ."),
            "says how to build the faster path: {}",
            warnings[0]
        );
        assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
    }
    drop(writer);
    // Each backup holds a consistent state, and is checked, listed and verified.
    for (i, file) in env.backup_files().iter().enumerate() {
        assert_ledger_invariant(&gunzip_to(
            &env.backups.join(file),
            &env.path(&format!("copy{i}.db")),
        ));
    }
    assert!(listed(&env).values().all(|row| row["check"] == "ok"));
    // Only "1" forces the copy: "0" leaves the direct path, without a warning.
    let direct: Run = env
        .command()
        .env("DBBACKUP_FORCE_BACKUP_API", "0")
        .args(["backup", "--force"])
        .output()
        .unwrap()
        .into();
    direct.ok();
    assert!(
        !direct.stderr.contains("sqlite_dbpage"),
        "{}",
        direct.stderr
    );
    env.run(&["verify", "--all"]).ok();
    // The writer has stopped: both paths see the same state, pages and rows.
    fallback(&["backup", "--force"]).ok();
    let via_copy = gunzip_to(&env.newest_backup(), &env.path("via-copy.db"));
    env.run(&["backup", "--force"]).ok();
    let via_pages = gunzip_to(&env.newest_backup(), &env.path("via-pages.db"));
    assert_eq!(content_digest(&via_copy), content_digest(&env.db));
    assert_eq!(content_digest(&via_copy), content_digest(&via_pages));
    assert_eq!(
        fs::metadata(&via_copy).unwrap().len(),
        fs::metadata(&via_pages).unwrap().len()
    );
}

/// T25 #3: after the database's file was touched (or restored, or copied with
/// `cp -p`) without a change of content, every later backup read the whole
/// database again to find it unchanged, for ever (seconds per call on 200
/// MiB). The comparison is remembered: only the first backup reads it whole,
/// and a real change is still backed up.
#[test]
fn a_touched_but_unchanged_database_is_read_whole_once() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let read_whole = "but its content did not: no new backup";
    let touch = |when: &str| {
        let done = std::process::Command::new("touch")
            .args(["-d", when])
            .arg(&env.db)
            .status()
            .unwrap();
        assert!(done.success());
    };
    touch("2020-01-01");
    let first = env.run(&["backup"]);
    first.ok();
    assert!(first.stderr.contains(read_whole), "{}", first.stderr);
    for args in [
        &["backup"][..],
        &["pre-job"],
        &["auto", "--min-interval-hours", "0"],
    ] {
        let again = env.run(args);
        again.ok();
        assert!(
            !again.stderr.contains(read_whole),
            "{args:?}: {}",
            again.stderr
        );
        assert!(
            again.stdout.contains("unchanged") || again.stdout.contains("reused"),
            "{args:?}: {}",
            again.stdout
        );
    }
    assert_eq!(env.backup_files().len(), 1);
    // Touched again: read whole once more (another state of the file).
    touch("2021-01-01");
    assert!(env.run(&["backup"]).stderr.contains(read_whole));
    // A real change is backed up.
    commit_into_wal_without_checkpoint(&env.db, 3);
    let changed = env.run(&["backup"]);
    changed.ok();
    assert!(changed.stdout.starts_with("created "), "{}", changed.stdout);
    assert_eq!(env.backup_files().len(), 2);
}

/// T26 #1, #2: "unchanged" went by the database file's size, mtime and header.
/// In WAL mode a commit leaves the header as it is, so a checkpointed write
/// whose mtime was set back (`touch -d`, `rsync -t`, `tar -x`), or another
/// database of the same size and header copied over with `cp -p`, was
/// "unchanged": every backup skipped it and `check` said "nothing to back
/// up" while the change was in no backup. The ctime, which no tool sets
/// back, is in the fingerprint now.
#[test]
fn a_changed_database_with_its_mtime_set_back_is_not_unchanged() {
    let env = Env::empty();
    let make = |path: &std::path::Path, value: &str, wal: bool| {
        let conn = rusqlite::Connection::open(path).unwrap();
        if wal {
            conn.pragma_update(None, "journal_mode", "wal").unwrap();
        }
        conn.execute_batch("CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        conn.execute("INSERT INTO r(v) VALUES (?1)", [value])
            .unwrap();
    };
    let value = |path: &std::path::Path| -> String {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT v FROM r", [], |row| row.get(0))
            .unwrap()
    };
    let set_mtime = |path: &std::path::Path, to: std::time::SystemTime| {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(to)
            .unwrap();
    };
    // WAL: a checkpointed write, then the mtime set back.
    make(&env.db, "aaaa", true);
    env.run(&["backup"]).ok();
    let mtime = fs::metadata(&env.db).unwrap().modified().unwrap();
    let header = fs::read(&env.db).unwrap()[..100].to_vec();
    // The last connection's close checkpoints the write into the file.
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute("UPDATE r SET v = 'bbbb'", [])
        .unwrap();
    assert!(!env.db.with_extension("db-wal").exists());
    set_mtime(&env.db, mtime);
    assert_eq!(fs::read(&env.db).unwrap()[..100], header[..], "same header");
    let run = env.run(&["backup"]);
    run.ok();
    assert!(run.stdout.starts_with("created "), "{}", run.stdout);
    let copy = env.path("copy.db");
    env.run(&["restore", "latest", "--target", copy.to_str().unwrap()])
        .ok();
    assert_eq!(value(&copy), "bbbb");
    // `cp -p` of another database with the same size, header and mtime.
    let other = env.path("other.db");
    let db2 = env.path("results2.db");
    make(&db2, "aaaa", false);
    make(&other, "cccc", false);
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    set_mtime(&db2, old);
    let backup2 = ["--db-path", db2.to_str().unwrap(), "backup"];
    env.run(&backup2).ok();
    fs::write(&db2, fs::read(&other).unwrap()).unwrap();
    set_mtime(&db2, old);
    let run = env.run(&backup2);
    run.ok();
    assert!(run.stdout.starts_with("created "), "{}", run.stdout);
    let copy2 = env.path("copy2.db");
    env.run(&[
        "--db-path",
        db2.to_str().unwrap(),
        "restore",
        "latest",
        "--target",
        copy2.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(value(&copy2), "cccc");
}
