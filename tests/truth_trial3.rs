//! Trial 3's smaller findings: `restore latest --if-db-missing` on a new
//! project's first run is not an error (F10).

use std::fs;

use rusqlite::Connection;

use crate::common::*;

fn make_db(path: &std::path::Path) {
    Connection::open(path)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
}

#[test]
fn restore_if_db_missing_on_a_first_run_exits_0_and_creates_nothing() {
    let env = Env::empty();
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.ok();
    assert_eq!(run.stdout, "no backup yet, nothing to restore\n");
    assert!(!env.db.exists() && !env.backups.exists());
    // Another database's backups there, that database still in place: not
    // one this database moved from, so still a first run and no `adopt` hint.
    let other = env.path("b.db");
    make_db(&other);
    env.run(&["--db-path", other.to_str().unwrap(), "backup"])
        .ok();
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.ok();
    assert_eq!(run.stdout, "no backup yet, nothing to restore\n");
    assert!(!env.db.exists());
    // Once that database is gone, it may be where this one moved from.
    fs::rename(&other, env.path("c.db")).unwrap();
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.failed_with(
        1,
        &format!("claim them with `dbbackup adopt {}`", other.display()),
    );
}
