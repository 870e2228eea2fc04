//! Trial 11 #1: an inline upload racing local retention (another task of an
//! array job pruning) passes over what was pruned meanwhile; only a diff still
//! in the backup directory without its base needs the user.

use std::process::Command;

use crate::common::s3::{self, Remote};
use crate::common::{BIN, without_inherited_settings};

/// A full, a diff on it and a second full, oldest first: the next backup
/// (`--diff-backups 3`) is a diff on the second full.
fn full_diff_full(r: &Remote) -> Vec<String> {
    for diffs in ["3", "3", "0"] {
        r.add_row();
        r.run(&["--diff-backups", diffs, "backup", "--force"]).ok();
    }
    r.add_row();
    let names = r.env.backup_files();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[1].ends_with(".diff.gz"), "{names:?}");
    names
}

/// Another task's real `prune` keeping the newest two, run (once) just before
/// the upload writes its first record: the oldest full and its diff go.
fn pruning_proxy(r: &Remote) -> String {
    let (db, backups, cwd) = (
        r.env.db.clone(),
        r.env.backups.clone(),
        r.env.root.path().to_path_buf(),
    );
    s3::racing_proxy(&r.endpoint, move || {
        let mut prune = Command::new(BIN);
        without_inherited_settings(&mut prune)
            .current_dir(&cwd)
            .env("DBBACKUP_DB_PATH", &db)
            .env("DBBACKUP_BACKUP_DIR", &backups)
            .args(["--max-backups", "2", "prune"]);
        let out = prune.output().expect("run prune");
        assert!(out.status.success(), "{out:?}");
    })
}

#[test]
fn an_inline_upload_passes_over_a_diff_and_base_pruned_while_it_ran() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "t11race");
    let before = full_diff_full(&r);
    let proxy = pruning_proxy(&r);
    let backup = s3::command(&r.env, &proxy, &r.url)
        .env("DBBACKUP_REMOTE_UPLOAD", "inline")
        .args(["--diff-backups", "3", "backup", "--force"])
        .output()
        .expect("run dbbackup");
    let backup: crate::common::Run = backup.into();
    backup.ok();
    // Newest first (the full and diff just made); the pruned pair is then
    // passed over, not taken for a diff whose base is gone.
    // The prune ran: the first full and its diff are gone.
    let after = r.env.backup_files();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(!after.contains(&before[0]) && !after.contains(&before[1]));
    assert!(
        !backup.stderr.contains("needs attention") && !backup.stderr.contains("base is gone"),
        "{}",
        backup.stderr
    );
    assert!(
        backup
            .stdout
            .contains(&format!("uploaded to {}: 2 new\n", r.url))
            && !backup.stdout.contains("needs attention"),
        "{}",
        backup.stdout
    );
    // Judged for the store the upload went to (read-backs are kept per endpoint).
    let check = s3::run(&r.env, &proxy, &r.url, &["check"]);
    assert!(
        s3::remote_line(&check).starts_with("OK   remote:"),
        "{}",
        check.stdout
    );
}

#[test]
fn a_diff_still_there_without_its_base_still_needs_the_base_put_back() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "t11nobase");
    let names = full_diff_full(&r);
    std::fs::remove_file(r.env.backups.join(&names[0])).unwrap();
    r.run(&["sync"]).failed_with(
        1,
        &format!(
            "diffs whose base is gone from the backup directory: {} (base backup {} of diff {} is missing from",
            names[1], names[0], names[1]
        ),
    );
}
