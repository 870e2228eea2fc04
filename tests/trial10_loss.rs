//! Trial 10's data-loss findings (T10 #9, #10, #11, #14): refused restores that
//! pushed a unique undo copy out, `final` run under a running array, job id 0,
//! and the templates' empty arrays under bash before 4.4.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rusqlite::Connection;

use crate::common::*;

/// `db` with table `w(tag, data)` of `megabytes` random MiB: big enough that a
/// pre-restore copy takes long enough for a writer to open the database meanwhile.
fn blob_db(db: &Path, megabytes: u32) {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("CREATE TABLE w (tag TEXT, data BLOB)")
        .unwrap();
    for _ in 0..megabytes {
        conn.execute("INSERT INTO w VALUES ('bulk', randomblob(1048576))", [])
            .unwrap();
    }
}

fn insert_tag(db: &Path, tag: &str) {
    Connection::open(db)
        .unwrap()
        .execute("INSERT INTO w VALUES (?1, NULL)", [tag])
        .unwrap();
}

fn tagged(db: &Path, tag: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM w WHERE tag = ?1", [tag], |r| r.get(0))
        .unwrap()
}

/// `restore latest` while a writer opens the database during its pre-restore
/// copy (as array tasks do, each opening and closing it): the writer's insert
/// waits for the restore's lock, and the restore is refused, "came into use".
fn restore_refused_by_a_writer(env: &Env, round: usize) -> Run {
    let child = env
        .command()
        .args(["--keep-pre-restore", "3", "restore", "latest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The pre-restore copy is being written (under the restore's write lock).
    env.wait_for_temp_file(1, Duration::from_secs(60));
    let db = env.db.clone();
    let writer = std::thread::spawn(move || {
        let conn = Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(60)).unwrap();
        conn.execute(
            "INSERT INTO w VALUES (?1, NULL)",
            [format!("writer {round}")],
        )
        .unwrap();
    });
    let run: Run = output_within(child, Duration::from_secs(120))
        .expect("restore ends")
        .into();
    writer.join().unwrap();
    run.failed_with(1, "came into use by pid ");
    run
}

/// T10 #10: restores refused because the database came into use each saved a
/// pre-restore copy, and retention over those copies deleted the undo copy of
/// an earlier, real restore — the only copy of a row.
#[test]
fn refused_restores_never_push_out_the_undo_copy_of_a_real_one() {
    let env = Env::empty();
    blob_db(&env.db, 24);
    env.run(&["backup"]).ok();
    // A row written after the newest backup: the real restore's copy is its only one.
    insert_tag(&env.db, "precious");
    let undo = env.run(&["restore", "latest", "--format", "json"]);
    undo.ok();
    let undo = undo.json()["pre_restore_backup"]
        .as_str()
        .unwrap()
        .to_string();
    // More refused restores than `keep_pre_restore`, each over new content.
    let refused: Vec<Run> = (0..4)
        .map(|round| {
            insert_tag(&env.db, &format!("before {round}"));
            restore_refused_by_a_writer(&env, round)
        })
        .collect();
    let copy = env.backups.join(&undo);
    assert!(copy.exists(), "{undo} deleted: {:?}", env.backup_files());
    let out = env.path("undone.db");
    env.run(&["restore", &undo, "--target", out.to_str().unwrap()])
        .ok();
    assert_eq!(tagged(&out, "precious"), 1);
    // The writers' rows went into the database, which was left in place.
    assert_eq!(tagged(&env.db, "writer 3"), 1);
    // The copies of refused restores held what stayed in place: none is kept.
    for run in refused {
        let error = run.stderr.lines().find(|l| l.contains("ERROR")).unwrap();
        assert!(error.ends_with("; nothing was replaced"), "{}", run.stderr);
    }
    assert_eq!(env.backup_files().len(), 2, "{:?}", env.backup_files());
    let _ = fs::remove_file(out);
}
