//! A base whose record was deleted at the store (its data object left
//! behind): its diffs cannot be restored from the remote, so `sync` uploads
//! it again from the backup directory, or, without a local copy, fails naming
//! the diffs it leaves unrestorable; `check` is not OK meanwhile.

use std::fs;
use std::path::Path;

use crate::common::s3;
use crate::common::{Env, Run};

fn write_rows(db: &Path, n: u32) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS extra(x BLOB)")
        .unwrap();
    for _ in 0..n {
        conn.execute("INSERT INTO extra VALUES (randomblob(2000))", [])
            .unwrap();
    }
}

/// A full and two diffs on it, synced; then the full's record deleted at
/// the store: the test's env, bucket, remote URL and the names (oldest first).
fn base_record_lost(server: &s3::Server, prefix: &str) -> (Env, String, String, Vec<String>) {
    let env = Env::empty();
    crate::common::make_results_db(&env.db, 4.0, false);
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/{prefix}");
    for i in 0..3 {
        if i > 0 {
            write_rows(&env.db, 3);
        }
        s3::run(
            &env,
            &server.endpoint,
            &url,
            &["--diff-backups", "2", "backup"],
        )
        .ok();
    }
    s3::run(&env, &server.endpoint, &url, &["sync"]).ok();
    let names = env.backup_files();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[1].ends_with(".diff.gz"), "{names:?}");
    s3::delete_object(
        &server.endpoint,
        &bucket,
        &format!("{prefix}/{}.meta.json", names[0]),
    );
    (env, bucket, url, names)
}

fn checks(run: &Run) -> Vec<(String, String)> {
    run.ok();
    let mut rows: Vec<(String, String)> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_base_whose_record_was_deleted_at_the_store_is_uploaded_again_by_sync() {
    let Some(server) = s3::shared() else { return };
    let (env, _bucket, url, names) = base_record_lost(server, "lostrec");
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    let sync = run(&["sync", "--format", "json"]);
    sync.ok();
    let json = sync.json();
    let uploaded: Vec<&str> = json["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(uploaded, [names[0].as_str()], "{}", sync.stdout);
    let listed = checks(&run(&["list", "--from-remote", "--format", "json"]));
    let want: Vec<(String, String)> = names.iter().map(|n| (n.clone(), "ok".into())).collect();
    assert_eq!(listed, want);
    run(&["check"]).ok();
}

#[test]
fn a_base_whose_record_was_deleted_with_no_local_copy_fails_sync_and_check() {
    let Some(server) = s3::shared() else { return };
    let (env, _bucket, url, names) = base_record_lost(server, "lostbase");
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    fs::remove_file(env.backups.join(&names[0])).unwrap();
    let sync = run(&["sync"]);
    sync.failed_with(1, &names[1]);
    assert!(sync.stderr.contains(&names[2]), "{}", sync.stderr);
    assert!(sync.stderr.contains(&names[0]), "{}", sync.stderr);
    run(&["check"]).reported(1, "remote");
}
