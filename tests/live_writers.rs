//! Backups of a database that another process is writing, in rollback-journal and
//! WAL mode: every backup must hold a consistent state (the writer's invariant).

use crate::common::*;

fn backups_during_writes_are_consistent(wal: bool) {
    let env = Env::empty();
    make_ledger_db(&env.db, 2000, wal);
    let writer = LedgerWriter::start(&env.db);
    let mut sizes = Vec::new();
    for _ in 0..8 {
        env.run(&["backup", "--force", "--max-backups", "100", "-q"])
            .ok();
        sizes.push(row_count(
            &gunzip_to(&env.newest_backup(), &env.path("probe.db")),
            "ledger",
        ));
    }
    drop(writer);
    let files = env.backup_files();
    assert_eq!(files.len(), 8);
    for (i, file) in files.iter().enumerate() {
        let copy = gunzip_to(&env.backups.join(file), &env.path(&format!("copy{i}.db")));
        assert_ledger_invariant(&copy);
    }
    assert!(
        sizes.windows(2).any(|w| w[1] > w[0]),
        "the writer made progress between backups: {sizes:?}"
    );
    assert!(env.stray_files().is_empty());
    // The source is intact too.
    assert_ledger_invariant(&env.db);
}

#[test]
fn backups_during_writes_are_consistent_in_rollback_mode() {
    backups_during_writes_are_consistent(false);
}

#[test]
fn backups_during_writes_are_consistent_in_wal_mode() {
    backups_during_writes_are_consistent(true);
}

#[test]
fn a_database_locked_longer_than_the_busy_timeout_is_reported() {
    let env = Env::new();
    // Rollback mode: an exclusive transaction keeps every reader out.
    let holder = hold_exclusive(&env.db);
    let started = std::time::Instant::now();
    let run = env.run(&["backup", "--busy-timeout-seconds", "1"]);
    drop(holder);
    run.failed_with(1, "is locked by another process");
    assert!(
        started.elapsed().as_secs() < 20,
        "gave up after the busy timeout"
    );
    assert!(env.backup_files().is_empty());
    assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
}
