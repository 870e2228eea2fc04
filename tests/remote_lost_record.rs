//! A base whose record was deleted at the store (its data object left
//! behind): its diffs cannot be restored from the remote, so `sync` uploads
//! it again from the backup directory, or, without a local copy, fails naming
//! the diffs it leaves unrestorable; `check` is not OK meanwhile.

use std::fs;

use crate::common::s3::{self, Remote};

/// A full and two diffs on it, synced; then the full's record deleted at
/// the store: the test's remote and the names (oldest first).
fn base_record_lost(server: &s3::Server, prefix: &str) -> (Remote, Vec<String>) {
    let r = Remote::sizeable(server, prefix);
    let names = s3::names(&r.points(3, &["--diff-backups", "2"]));
    assert_eq!(r.env.backup_files(), names);
    assert!(names[1].ends_with(".diff.gz"), "{names:?}");
    r.delete(&format!("{}.meta.json", names[0]));
    (r, names)
}

#[test]
fn a_base_whose_record_was_deleted_at_the_store_is_uploaded_again_by_sync() {
    let Some(server) = s3::shared() else { return };
    let (r, names) = base_record_lost(server, "lostrec");
    let sync = r.run(&["sync", "--format", "json"]);
    sync.ok();
    let json = sync.json();
    let uploaded: Vec<&str> = json["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(uploaded, [names[0].as_str()], "{}", sync.stdout);
    let want: Vec<(String, String)> = names.iter().map(|n| (n.clone(), "ok".into())).collect();
    assert_eq!(r.checks(), want);
    r.run(&["check"]).ok();
}

#[test]
fn a_base_whose_record_was_deleted_with_no_local_copy_fails_sync_and_check() {
    let Some(server) = s3::shared() else { return };
    let (r, names) = base_record_lost(server, "lostbase");
    fs::remove_file(r.env.backups.join(&names[0])).unwrap();
    let sync = r.run(&["sync"]);
    sync.failed_with(1, &names[1]);
    assert!(sync.stderr.contains(&names[2]), "{}", sync.stderr);
    assert!(sync.stderr.contains(&names[0]), "{}", sync.stderr);
    r.run(&["check"]).reported(1, "remote");
}

/// T7 #10: the newest point's record deleted at the store, the backup
/// directory lost: `restore latest --from-remote` takes the older point and
/// names the newer data object, with a way to use it that works.
#[test]
fn restore_latest_names_a_newer_data_object_whose_record_is_gone() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "norecord");
    let points = r.points(2, &[]);
    let (older, newest) = (&points[0], &points[1]);
    r.delete(&format!("{}.meta.json", newest.0));
    fs::remove_dir_all(&r.env.backups).unwrap();
    let target = r.env.path("restored.db");
    let restore = r.restore_from_remote("latest", &target);
    restore.ok();
    assert_eq!(crate::common::content_digest(&target), older.1);
    let object = format!("{}/{}", r.url, newest.0);
    let warned = restore
        .stderr
        .lines()
        .find(|l| l.contains(&object))
        .unwrap_or_else(|| panic!("{}", restore.stderr));
    assert!(warned.contains("WARN"), "{warned}");
    assert!(warned.contains("has no valid record"), "{warned}");
    assert!(
        warned.contains(&format!("dbbackup verify {}", newest.0)),
        "{warned}"
    );
    // `list --from-remote` names it too.
    let listed = r.run(&["list", "--from-remote"]);
    listed.ok();
    assert!(
        listed.stderr.contains(&object) && listed.stderr.contains("leaves it out"),
        "{}",
        listed.stderr
    );
    // What the line says to do gives the newer data back.
    fs::create_dir_all(&r.env.backups).unwrap();
    fs::write(r.env.backups.join(&newest.0), r.object(&newest.0)).unwrap();
    r.run(&["verify", &newest.0]).ok();
    let again = r.env.path("newest.db");
    r.run(&["restore", &newest.0, "--target", again.to_str().unwrap()])
        .ok();
    assert_eq!(crate::common::content_digest(&again), newest.1);
}
