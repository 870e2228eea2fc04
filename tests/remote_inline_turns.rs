//! Concurrent inline uploads (an array job whose tasks each `backup --force`
//! with `remote_upload: inline`): they are serialised per backup directory and
//! remote, so the remote ends as one sync would leave it (T11 #8).

use std::process::Stdio;

use crate::common::Run;
use crate::common::s3::{self, Remote};

/// `count` `backup --force` processes at once, uploading inline, with diffs
/// and one point kept on the remote.
fn racing_backups(r: &Remote, count: usize) -> Vec<Run> {
    let children: Vec<_> = (0..count)
        .map(|_| {
            r.command()
                .env("DBBACKUP_REMOTE_UPLOAD", "inline")
                .args([
                    "--diff-backups",
                    "4",
                    "--max-backups",
                    "40",
                    "--remote-max-backups",
                    "1",
                    "backup",
                    "--force",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn dbbackup")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().into())
        .collect()
}

/// The first row's name of `list` (newest first) with `args`.
fn newest(r: &Remote, args: &[&str]) -> String {
    let list = r.run(&[args, &["--format", "json"]].concat());
    list.ok();
    list.json()[0]["name"].as_str().unwrap().to_string()
}

#[test]
fn concurrent_inline_uploads_leave_the_remote_restorable_in_the_backups_order() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "race");
    r.run(&["backup"]).ok();
    r.add_row();
    let count = if crate::common::quick() { 8 } else { 14 };
    for run in racing_backups(&r, count) {
        run.ok();
        assert!(run.stdout.contains("uploaded to "), "{}", run.stdout);
    }
    // Every point retention kept can be restored: no diff lost its base.
    let verify = r.run(&["verify", "--from-remote"]);
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
    // The remote's newest is the newest backup, and one point (with its base
    // when it is a diff) is kept.
    let local = newest(&r, &["list"]);
    assert_eq!(newest(&r, &["list", "--from-remote"]), local);
    let listed = r.listed();
    let wanted = if local.contains(".diff.") { 2 } else { 1 };
    assert_eq!(listed.len(), wanted, "{listed:?}");
    // The remote's numbers order the kept points as the backups' own numbers.
    let mut numbers: Vec<(u64, u64)> = listed
        .iter()
        .map(|row| {
            let record = r.record(row["name"].as_str().unwrap());
            let remote_seq = record["remote_seq"].as_u64().unwrap();
            (remote_seq, record["metadata"]["seq"].as_u64().unwrap())
        })
        .collect();
    numbers.sort();
    assert!(numbers.windows(2).all(|w| w[0].1 < w[1].1), "{numbers:?}");
    // `check` knows it is there, without a sync.
    let check = r.run(&["check"]);
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("OK") && line.contains(&format!("{local} is on {}", r.url)),
        "{}",
        check.stdout
    );
}

/// The upload turn's lock file of the backup directory (one remote).
fn turn_lock(r: &Remote) -> std::path::PathBuf {
    let state = r.env.backups.join(".dbbackup-state");
    let mut locks: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".lock"))
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    locks.remove(0)
}

#[test]
fn an_inline_upload_that_waits_too_long_for_its_turn_is_left_to_sync() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "turn");
    r.run_inline(&["backup"]).ok();
    let held = crate::common::hold_dir_lock(&turn_lock(&r), "host=n9 pid=4242 job=77_3");
    r.add_row();
    let started = std::time::Instant::now();
    let backup: Run = r
        .command()
        .env("DBBACKUP_REMOTE_UPLOAD", "inline")
        .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "1")
        .arg("backup")
        .output()
        .unwrap()
        .into();
    backup.ok();
    // remote_timeout_seconds × 5, not for ever.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        backup.stdout.contains(&format!(
            "not uploaded to {} (the upload failed, see above): the backup is kept locally and `dbbackup sync` uploads it",
            r.url
        )),
        "{}",
        backup.stdout
    );
    assert!(
        backup.stderr.contains(&format!(
            "another upload from {} to {} (held by host=n9 pid=4242 job=77_3) still runs after 5 s",
            r.env.backups.display(),
            r.url
        )),
        "{}",
        backup.stderr
    );
    // Said when the wait began, not only when it ran out.
    assert!(
        backup.stderr.contains(&format!(
            "waiting for another upload from this backup directory to {} (held by host=n9 pid=4242 job=77_3)",
            r.url
        )),
        "{}",
        backup.stderr
    );
    let lines = crate::common::summary_lines(&r.env.summary_log());
    let upload = lines.iter().rev().find(|l| l["event"] == "upload").unwrap();
    assert_eq!(upload["status"], "failed", "{upload:?}");
    assert_eq!(r.remote_count(), 1);
    r.run(&["check"]).reported(1, "the last upload to");
    // A sync takes its turn too: it waits, then fails naming the holder.
    let sync: Run = r
        .command()
        .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "1")
        .arg("sync")
        .output()
        .unwrap()
        .into();
    sync.failed_with(1, "held by host=n9 pid=4242 job=77_3");
    drop(held);
    r.run(&["sync"]).ok();
    assert_eq!(r.remote_count(), 2);
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(line.starts_with("OK"), "{line}");
}

#[test]
fn an_inline_upload_waits_for_its_turn_then_uploads_and_names_itself_there() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "waits");
    r.run_inline(&["backup"]).ok();
    let lock = turn_lock(&r);
    let held = crate::common::hold_dir_lock(&lock, "host=n9 pid=4242 job=77_3");
    r.add_row();
    let backup = r
        .command()
        .env("DBBACKUP_REMOTE_UPLOAD", "inline")
        .arg("backup")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it waits (its backup is made and published first).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while r.env.backup_files().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no second backup");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(held);
    let backup: Run = backup.wait_with_output().unwrap().into();
    backup.ok();
    assert!(
        backup
            .stdout
            .contains(&format!("uploaded to {}: 1 new", r.url)),
        "{}\n{}",
        backup.stdout,
        backup.stderr
    );
    assert!(
        backup.stderr.contains("waiting for another upload"),
        "{}",
        backup.stderr
    );
    assert_eq!(r.remote_count(), 2);
    // The holder's line, whole, for the next waiter's message.
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(text.starts_with("host="), "{text:?}");
}
