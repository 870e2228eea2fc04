//! `verify`, `list`, `prune` and `auto`.

use std::fs;

use crate::common::*;

#[test]
fn verify_checks_every_backup_and_catches_a_flipped_bit() {
    let env = Env::empty();
    make_results_db(&env.db, 2.0, false);
    env.run(&["backup"]).ok();
    env.run(&["backup", "--force"]).ok();
    let run = env.run(&["verify", "--all"]);
    run.ok();
    assert_eq!(run.stdout.matches(": ok").count(), 2, "{}", run.stdout);
    let newest = env.newest_backup();
    let mut bytes = fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    fs::write(&newest, bytes).unwrap();
    let run = env.run(&["verify", "--all", "--format", "json"]);
    assert_eq!(run.code, 1);
    let verdicts = run.json();
    let failed: Vec<_> = verdicts
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["detail"].as_str().unwrap().contains("damaged"));
}

#[test]
fn list_json_has_the_documented_fields_newest_first() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["backup", "--force"]).ok();
    let list = env.run(&["list", "--format", "json"]).json();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        for field in [
            "name", "created", "size", "db_size", "checksum", "host", "job", "kind", "check",
        ] {
            assert!(!row[field].is_null(), "{field} missing in {row}");
        }
    }
    assert!(rows[0]["name"].as_str().unwrap() > rows[1]["name"].as_str().unwrap());
    let empty = Env::new();
    let run = empty.run(&["list", "--format", "json"]);
    run.ok();
    assert_eq!(run.json(), serde_json::json!([]));
}

#[test]
fn prune_dry_run_deletes_nothing() {
    let env = Env::new();
    for _ in 0..4 {
        env.run(&["backup", "--force", "-q"]).ok();
    }
    let run = env.run(&["prune", "--dry-run", "--max-backups", "1"]);
    run.ok();
    assert_eq!(
        run.stdout.matches("would delete").count(),
        4,
        "{}",
        run.stdout
    );
    assert_eq!(env.backup_files().len(), 4);
    env.run(&["prune", "--max-backups", "1"]).ok();
    let files = env.backup_files();
    assert_eq!(files.len(), 1);
}

#[test]
fn auto_respects_the_interval_and_changes() {
    let env = Env::new();
    env.run(&["auto"]).ok();
    assert_eq!(env.backup_files().len(), 1);
    let run = env.run(&["auto"]);
    run.ok();
    assert!(run.stdout.contains("less than the"), "{}", run.stdout);
    let run = env.run(&["auto", "--min-interval-hours", "0"]);
    run.ok();
    assert!(run.stdout.contains("unchanged"), "{}", run.stdout);
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'new'); UPDATE counter SET n = n + 1",
        )
        .unwrap();
    env.run(&["auto", "--min-interval-hours", "0"]).ok();
    assert_eq!(env.backup_files().len(), 2);
    assert_eq!(
        listed(&env)
            .values()
            .filter(|r| r["kind"] == "auto")
            .count(),
        2
    );
}

#[test]
fn auto_does_not_wait_for_a_backup_in_progress() {
    let env = Env::new();
    fs::create_dir_all(&env.backups).unwrap();
    let holder = hold_dir_lock(&env.lock_file(), "host=elsewhere pid=1 job=77_1 since=now");
    // Waiting would mean blocking until this timeout (the holder never lets go).
    let started = std::time::Instant::now();
    let run = env.run(&["auto", "--lock-timeout-seconds", "600"]);
    let elapsed = started.elapsed();
    let waited = env.run(&["backup", "--lock-timeout-seconds", "1"]);
    drop(holder);
    run.ok();
    assert!(
        run.stdout.contains("another process is making a backup"),
        "{}",
        run.stdout
    );
    assert!(elapsed.as_secs() < 300, "auto did not wait for the lock");
    waited.failed_with(1, "job=77_1");
    assert!(env.backup_files().is_empty());
}
