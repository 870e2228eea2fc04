//! Trial 5's bugs and rough edges (T5 findings 6, 7, 11, 12, 14, 15): a
//! database behind a link whose target is lost is one database to every
//! command; a restore point from another host onto a node-local disk is
//! warned about; small message fixes.

use std::fs;

use rusqlite::Connection;

use crate::common::*;

fn make_db(path: &std::path::Path, value: &str) {
    Connection::open(path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE t(x); INSERT INTO t VALUES ('{value}');"
        ))
        .unwrap();
}

/// T5 #6: `results.db -> real/results.db`, the target lost. `restore latest`
/// resolves the link; `list`, `check` and `restore --target` must too.
#[test]
fn a_dangling_database_link_is_the_same_database_to_every_command() {
    let env = Env::empty();
    fs::create_dir(env.path("real")).unwrap();
    make_db(&env.path("real/results.db"), "kept");
    std::os::unix::fs::symlink("real/results.db", &env.db).unwrap();
    env.run(&["backup"]).ok();
    fs::rename(env.path("real/results.db"), env.path("lost.db")).unwrap();

    let list = env.run(&["list"]);
    list.ok();
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with("backup_"))
        .expect("a row");
    assert!(row.trim_end().ends_with("this"), "{}", list.stdout);
    assert!(!list.stderr.contains("adopt") && !list.stdout.contains("adopt"));

    let check = env.run(&["check"]);
    check.reported(1, "restore latest");
    assert!(
        !check.stdout.contains("no restore point of it"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("adopt"), "{}", check.stdout);

    env.run(&["restore", "latest", "--target", "peek.db"]).ok();
    let peek = Connection::open(env.path("peek.db")).unwrap();
    let x: String = peek.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, "kept");

    env.run(&["restore", "latest"]).ok();
    assert!(env.path("real/results.db").is_file());
}
