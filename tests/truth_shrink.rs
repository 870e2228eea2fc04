//! Trial 3's F1: a database that shrinks (rows deleted and vacuumed, or the file
//! re-created) keeps its newest pre-shrink restore point through retention, and
//! `check` warns until the user deletes that file.

use std::fs;

use rusqlite::Connection;

use crate::common::*;

const ROWS: i64 = 2000;

/// `t` with `rows` rows of 500 bytes each.
fn fill(env: &Env, rows: i64) {
    Connection::open(&env.db)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS t(x, pad);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO t SELECT i, randomblob(500) FROM n;"
        ))
        .unwrap();
}

fn sql(env: &Env, statements: &str) {
    Connection::open(&env.db)
        .unwrap()
        .execute_batch(statements)
        .unwrap();
}

/// The big backup survives, `check` warns naming it, it restores the pre-shrink
/// rows, and deleting it ends the warning.
fn assert_held(env: &Env, big: &str, args: &[&str]) {
    assert!(
        env.backup_files().contains(&big.to_string()),
        "{:?}",
        env.backup_files()
    );
    let mut check = args.to_vec();
    check.extend(["check", "--format", "nagios"]);
    let run = env.run(&check);
    run.reported(1, "DBBACKUP WARNING");
    assert!(
        run.stdout.contains(&format!(
            "(kept while the database is smaller by more than 50%): if the shrink was intended, delete {big}"
        )),
        "{}",
        run.stdout
    );
    let target = env.path("pre_shrink.db");
    let mut restore = args.to_vec();
    restore.extend(["restore", big, "--target", target.to_str().unwrap()]);
    env.run(&restore).ok();
    assert_eq!(row_count(&target, "t"), ROWS);
    fs::remove_file(env.backups.join(big)).unwrap();
    let run = env.run(&check);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn retention_keeps_the_pre_shrink_point_after_a_vacuum_and_check_warns() {
    let env = Env::empty();
    fill(&env, ROWS);
    env.run(&["backup"]).ok();
    let big = env.backup_files()[0].clone();
    sql(&env, "DELETE FROM t WHERE x > 10; VACUUM;");
    env.run(&["backup"]).ok();
    for i in 0..3 {
        sql(&env, &format!("INSERT INTO t(x) VALUES ({i})"));
        let run = env.run(&["--max-backups", "2", "backup"]);
        run.ok();
        assert!(
            run.stderr.contains(&format!("retention keeps {big}")),
            "{}",
            run.stderr
        );
    }
    assert_eq!(env.backup_files().len(), 3, "{:?}", env.backup_files());
    assert_held(&env, &big, &["--max-backups", "2"]);
}

/// T25 #1: rows deleted (or a table dropped) without `VACUUM` leave the file
/// its size: the shrink rule compared file sizes, so `max_backups` more
/// backups deleted every backup holding the rows while `check` said OK. The
/// pages in use are compared now. T25b: also against a backup made before
/// free pages were recorded (an upgraded project): read from its own header.
#[test]
fn a_delete_without_vacuum_is_a_shrink_too() {
    for (statements, made_before) in [
        ("DELETE FROM t WHERE x > 10;", false),
        ("DROP TABLE t; CREATE TABLE t(x, pad);", false),
        ("DELETE FROM t WHERE x > 10;", true),
    ] {
        let env = Env::empty();
        fill(&env, ROWS);
        env.run(&["backup"]).ok();
        let big = env.backup_files()[0].clone();
        if made_before {
            rewrite_meta(&env.backups.join(&big), |meta| meta.free_bytes = None);
        }
        let size = fs::metadata(&env.db).unwrap().len();
        sql(&env, statements);
        assert_eq!(
            fs::metadata(&env.db).unwrap().len(),
            size,
            "no VACUUM: same size"
        );
        for i in 0..3 {
            sql(&env, &format!("INSERT INTO t(x) VALUES ({i})"));
            let run = env.run(&["--max-backups", "2", "backup"]);
            run.ok();
            assert!(
                run.stderr.contains(&format!("retention keeps {big}")),
                "{statements}: {}",
                run.stderr
            );
        }
        assert_eq!(env.backup_files().len(), 3, "{:?}", env.backup_files());
        let check = env.run(&["--max-backups", "2", "check"]);
        check.reported(1, "\nWARN shrink: newest database size ");
        assert!(
            check.stdout.contains(&format!(
                " in use ({} with its free pages) vs ",
                dbbackup::units::human_bytes(size)
            )),
            "{}",
            check.stdout
        );
        if statements.starts_with("DELETE") {
            assert_held(&env, &big, &["--max-backups", "2"]);
        }
    }
}

#[test]
fn retention_keeps_the_only_big_backup_of_a_re_created_database() {
    let env = Env::empty();
    fill(&env, ROWS);
    env.run(&["backup"]).ok();
    let big = env.backup_files()[0].clone();
    fs::remove_file(&env.db).unwrap();
    sql(&env, "CREATE TABLE t(x, pad)");
    env.run(&["--max-backups", "1", "backup"]).ok();
    assert_eq!(env.backup_files().len(), 2, "{:?}", env.backup_files());
    assert_held(&env, &big, &["--max-backups", "1"]);
}

/// T10 #4: a restore (the documented "undo a job") sets the database back to a
/// smaller size on the user's request: neither retention nor `check` takes that
/// for a shrink, and the backup holding what it replaced is kept like a
/// pre-restore copy (T12 #11), not as a shrink. A real
/// shrink after further backups is still held and warned of.
#[test]
fn a_restore_to_a_smaller_state_is_not_a_shrink_but_a_later_one_is() {
    let env = Env::empty();
    fill(&env, 10);
    env.run(&["backup"]).ok();
    let small = env.backup_files()[0].clone();
    fill(&env, ROWS);
    env.run(&["backup"]).ok();
    let big = env.backup_files()[1].clone();
    env.run(&["restore", &small]).ok();
    assert_eq!(row_count(&env.db, "t"), 10);
    for i in 0..3 {
        sql(&env, &format!("INSERT INTO t(x) VALUES ({i})"));
        let run = env.run(&["--max-backups", "2", "backup"]);
        run.ok();
        assert!(
            !run.stderr.contains("smaller by more than"),
            "{}",
            run.stderr
        );
    }
    // What the restore replaced (here held by the big backup) is the undo of
    // the undo: kept like a pre-restore copy (T12 #11), never as a shrink.
    assert!(
        env.backup_files().contains(&big),
        "{:?}",
        env.backup_files()
    );
    let run = env.run(&["--max-backups", "2", "check", "--format", "nagios"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("DBBACKUP OK"), "{}", run.stdout);
    let text = env.run(&["--max-backups", "2", "check"]);
    assert!(
        text.stdout.contains(&format!(
            "of 1 earlier since the restore of {small} (may shrink 50%)"
        )),
        "{}",
        text.stdout
    );

    // Grown after the restore, then a mistaken DELETE: held as always.
    fill(&env, ROWS);
    env.run(&["--max-backups", "2", "backup"]).ok();
    let grown = env.backup_files().last().unwrap().clone();
    sql(&env, "DELETE FROM t WHERE x > 10; VACUUM;");
    for i in 0..3 {
        sql(&env, &format!("INSERT INTO t(x) VALUES ({i})"));
        let run = env.run(&["--max-backups", "2", "backup"]);
        run.ok();
        assert!(
            run.stderr.contains(&format!("retention keeps {grown}")),
            "{}",
            run.stderr
        );
    }
    let run = env.run(&["--max-backups", "2", "check", "--format", "nagios"]);
    run.reported(1, "DBBACKUP WARNING");
    assert!(
        run.stdout.contains(&format!(
            "(kept while the database is smaller by more than 50%): if the shrink was intended, delete {grown}"
        )),
        "{}",
        run.stdout
    );
}

/// A mirror's copies are judged alike: after a restore, neither the mirror's
/// retention nor its `check` criteria take the restore for a shrink.
#[test]
fn a_restore_is_no_shrink_in_a_mirror_either() {
    let env = Env::empty();
    let mirror = env.path("mirror");
    let mirror = mirror.to_str().unwrap();
    let args = ["--max-backups", "2", "--mirror-dir", mirror];
    fill(&env, 10);
    env.run(&[&args[..], &["backup"]].concat()).ok();
    let small = env.backup_files()[0].clone();
    fill(&env, ROWS);
    env.run(&[&args[..], &["backup"]].concat()).ok();
    let big = env.backup_files()[1].clone();
    env.run(&[&args[..], &["restore", &small]].concat()).ok();
    for i in 0..3 {
        sql(&env, &format!("INSERT INTO t(x) VALUES ({i})"));
        env.run(&[&args[..], &["backup"]].concat()).ok();
        // The first time, the big point is still in both, within max_backups.
        let run = env.run(&[&args[..], &["check", "--format", "nagios"]].concat());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }
    // The big point stands in for the restore's pre-restore copy: kept there
    // too (T12 #11), and still no shrink.
    assert!(
        backup_files_in(std::path::Path::new(mirror)).contains(&big),
        "{:?}",
        backup_files_in(std::path::Path::new(mirror))
    );
    let run = env.run(&[&args[..], &["check", "--format", "nagios"]].concat());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

/// T12 #10: with diffs, every restore point after a shrink is a diff of the
/// held pre-shrink full backup: the advice must not say to delete it now, but
/// once a newer full backup exists; followed then, the newest point restores.
#[test]
fn the_shrink_advice_waits_for_a_full_backup_when_newer_points_are_diffs_of_it() {
    let env = Env::empty();
    fs::create_dir_all(&env.backups).unwrap();
    fs::write(
        env.path("dbbackup.yaml"),
        "diff_backups: 3\nmax_backups: 2\n",
    )
    .unwrap();
    fill(&env, ROWS);
    env.run(&["backup"]).ok();
    let big = env.backup_files()[0].clone();
    sql(&env, "DELETE FROM t WHERE x > 10; VACUUM;");
    let wait = format!(
        "delete {big} once a full backup newer than it exists (the newer restore points are diffs of it: deleting it now leaves them unrestorable)"
    );
    for i in 0..3 {
        sql(&env, &format!("INSERT INTO t(x) VALUES ({i})"));
        let run = env.run(&["backup"]);
        run.ok();
        assert!(run.stderr.contains(&wait), "{}", run.stderr);
    }
    let check = env.run(&["check", "--format", "nagios"]);
    check.reported(1, "DBBACKUP WARNING");
    assert!(check.stdout.contains(&wait), "{}", check.stdout);
    // The next backup is a full one (diff_backups: 3): the advice is now plain.
    sql(&env, "INSERT INTO t(x) VALUES (99)");
    let run = env.run(&["backup"]);
    run.ok();
    assert!(!run.stderr.contains(&wait), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("if the shrink was intended, delete {big}")),
        "{}",
        run.stderr
    );
    fs::remove_file(env.backups.join(&big)).unwrap();
    let target = env.path("latest.db");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(row_count(&target, "t"), row_count(&env.db, "t"));
}
