//! A remote point is only what its bytes prove (docs/remote.md, "What is
//! guaranteed"): a data object damaged at the store without changing its
//! size is found by `sync`, `list`, `restore` and `check`, repaired from the
//! backup directory when it can be, and never lets remote retention delete
//! the older intact points.

use std::fs;

use crate::common::s3::{self, Remote};
use crate::common::{Env, Run, content_digest};

#[test]
fn a_point_damaged_at_the_store_with_its_size_is_not_already_there_and_sync_repairs_it() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "same-size");
    let points = r.points(3, &[]);
    let newest = &points[2].0;
    assert!(r.checks().iter().all(|(_, check)| check == "ok"));
    r.corrupt(newest);

    // Not proved since it was written again: never `ok`.
    let checks = r.checks();
    let newest_check = &checks.iter().find(|(n, _)| n == newest).unwrap().1;
    assert_eq!(newest_check, "unverified", "{checks:?}");
    let text = r.run(&["list", "--from-remote"]);
    text.ok();
    assert!(
        text.stdout
            .lines()
            .any(|l| l.contains(newest.as_str()) && l.contains("unverified")),
        "{}",
        text.stdout
    );

    // `sync` reads it back, finds other bytes, and uploads the local copy
    // again; only then may retention delete the older points.
    let sync = r.run(&["--remote-max-backups", "1", "sync", "--format", "json"]);
    sync.ok();
    let json = sync.json();
    assert_eq!(json["repaired"], serde_json::json!([newest]), "{json}");
    assert_eq!(json["already_there"], 0, "{json}");
    assert_eq!(json["uploaded"].as_array().unwrap().len(), 0, "{json}");
    assert_eq!(
        r.object(newest),
        fs::read(r.env.backups.join(newest)).unwrap(),
        "the object's bytes are the backup file's again"
    );
    assert_eq!(r.remote_names(), std::slice::from_ref(newest));
    assert_eq!(r.checks()[0].1, "ok");
    let target = r.env.path("restored.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), points[2].1);
    r.run(&["check"]).ok();
}

#[test]
fn retention_never_deletes_older_points_for_a_newest_whose_bytes_do_not_match() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "decisive");
    let points = r.points(3, &[]);
    let (oldest, middle, newest) = (&points[0].0, &points[1].0, &points[2].0);
    r.corrupt(newest);
    // The backup directory no longer has it: nothing to repair it from.
    fs::remove_file(r.env.backups.join(newest)).unwrap();

    let sync = r.run(&["--remote-max-backups", "1", "sync"]);
    sync.failed_with(1, newest);
    assert!(
        sync.stderr.contains("damaged on") && sync.stderr.contains(&r.url),
        "{}",
        sync.stderr
    );
    // The newest intact point stays in its place; only the oldest goes.
    assert_eq!(r.remote_names(), [middle.clone(), newest.clone()]);
    assert!(!r.remote_names().contains(oldest));
    let checks = r.checks();
    assert_eq!(checks[0], (middle.clone(), "ok".to_string()), "{checks:?}");
    assert_eq!(
        checks[1],
        (newest.clone(), "damaged".to_string()),
        "{checks:?}"
    );

    let target = r.env.path("restored.db");
    let restore = r.restore_from_remote("latest", &target);
    restore.ok();
    assert_eq!(content_digest(&target), points[1].1);
    assert_passed_over(&restore, newest);
    let check = r.run(&["check"]);
    check.reported(1, newest);
    assert!(
        check.stdout.lines().any(|l| l.starts_with("FAIL remote:")),
        "{}",
        check.stdout
    );
}

#[test]
fn restore_latest_passes_over_bytes_that_fail_their_sha256_and_by_name_refuses_them() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "restore");
    let points = r.points(3, &[]);
    let newest = &points[2].0;
    r.corrupt(newest);

    let target = r.env.path("copy.db");
    let restore = r.restore_from_remote("latest", &target);
    restore.ok();
    assert_eq!(content_digest(&target), points[1].1);
    assert!(
        restore
            .stdout
            .contains(&format!("passed over {newest}: its bytes on {}", r.url)),
        "{}",
        restore.stdout
    );
    assert!(
        restore
            .stderr
            .lines()
            .any(|l| l.contains(&format!("passed over newer {newest}"))
                && l.contains("not the file uploaded")),
        "{}",
        restore.stderr
    );

    // By name: refused, naming it; nothing written.
    let named = r.env.path("named.db");
    r.restore_from_remote(newest, &named)
        .failed_with(1, &format!("backup {newest} is damaged"));
    assert!(!named.exists());

    // The scratch purge: plain `restore latest` falls back to the remote and
    // passes over it the same way.
    fs::remove_dir_all(&r.env.backups).unwrap();
    fs::remove_file(&r.env.db).unwrap();
    let fallback = r.run(&["restore", "latest"]);
    fallback.ok();
    assert_passed_over(&fallback, newest);
    assert_eq!(content_digest(&r.env.db), points[1].1);
}

/// `check --format prometheus`'s `dbbackup_check_pending` of `remote`.
fn pending_gauge(r: &Remote) -> String {
    let prometheus = r.run(&["check", "--format", "prometheus"]);
    prometheus.ok();
    prometheus
        .stdout
        .lines()
        .find(|l| l.starts_with("dbbackup_check_pending{") && l.contains("criterion=\"remote\""))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, value)| value.to_string())
        .unwrap_or_else(|| panic!("{}", prometheus.stdout))
}

#[test]
fn check_waits_for_the_newest_point_to_reach_the_remote_and_nagios_says_so() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "check");
    r.run(&["backup"]).ok();
    // Not synced yet, within remote_max_age: healthy, but not `OK`.
    let check = r.run(&["check"]);
    check.ok();
    let line = check
        .stdout
        .lines()
        .find(|l| l.contains("remote:"))
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert!(
        line.starts_with("WAIT remote:") && line.contains("not on"),
        "{line}"
    );
    let nagios = r.run(&["check", "--format", "nagios"]);
    assert_eq!(nagios.code, 0, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("DBBACKUP OK - ") && nagios.stdout.contains(&r.url),
        "{}",
        nagios.stdout
    );
    let json = r.run(&["check", "--format", "json"]).json();
    let remote = json["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "remote")
        .cloned()
        .unwrap();
    assert_eq!(remote["pending"], true, "{remote}");
    assert_eq!(pending_gauge(&r), "1");

    // Synced: read back whole, and `check` says so.
    r.run(&["sync"]).ok();
    assert_eq!(pending_gauge(&r), "0");
    let check = r.run(&["check"]);
    check.ok();
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.starts_with("OK   remote:") && l.contains("read back whole")),
        "{}",
        check.stdout
    );
    let nagios = r.run(&["check", "--format", "nagios"]);
    assert!(
        nagios.stdout.contains("read back whole"),
        "{}",
        nagios.stdout
    );
}

#[test]
fn an_export_from_the_remote_killed_mid_way_leaves_nothing_after_the_next_one() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/export");
    let env = Env::empty();
    // Incompressible: a large download and large temp files.
    let mb = if crate::common::quick() { 40 } else { 120 };
    {
        let conn = rusqlite::Connection::open(&env.db).unwrap();
        conn.execute_batch("CREATE TABLE blobs(x BLOB)").unwrap();
        for _ in 0..mb {
            conn.execute("INSERT INTO blobs SELECT randomblob(1048576)", [])
                .unwrap();
        }
    }
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    run(&["backup"]).ok();
    run(&["sync"]).ok();
    let out = env.path("out");
    fs::create_dir(&out).unwrap();
    let leftovers = || -> Vec<String> {
        fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".dbbackup"))
            .collect()
    };
    let mut export = s3::command(&env, &server.endpoint, &url)
        .args(["export", "latest", "--from-remote", "--out"])
        .arg(out.join("first.db.gz"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once it writes its temp files beside the export file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !leftovers().iter().any(|n| n.starts_with(".dbbackup-tmp-")) {
        assert!(export.try_wait().unwrap().is_none(), "export ended first");
        assert!(std::time::Instant::now() < deadline, "no temp file seen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(export.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    export.wait().unwrap();
    assert!(!leftovers().is_empty());

    let second = out.join("second.db.gz");
    run(&[
        "export",
        "latest",
        "--from-remote",
        "--out",
        second.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(leftovers(), Vec::<String>::new());
    assert!(!out.join("first.db.gz").exists());
    let plain = crate::common::gunzip_to(&second, &env.path("exported.db"));
    assert_eq!(content_digest(&plain), content_digest(&env.db));
}

/// The read-back records of the backup directory (what a machine that never
/// read the remote back has: none).
fn forget_proofs(env: &Env) {
    for item in fs::read_dir(env.backups.join(".dbbackup-state"))
        .unwrap()
        .flatten()
    {
        if item
            .file_name()
            .to_string_lossy()
            .starts_with("remote-proofs-")
        {
            fs::remove_file(item.path()).unwrap();
        }
    }
}

#[test]
fn verify_from_the_remote_proves_points_and_check_wants_the_newest_proved() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "verify");
    let points = r.points(2, &[]);
    forget_proofs(&r.env);
    assert!(
        r.checks().iter().all(|(_, check)| check == "unverified"),
        "{:?}",
        r.checks()
    );
    // Recorded on the remote by the last sync, but not proved: not `OK`.
    let check = r.run(&["check"]);
    check.ok();
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.starts_with("WAIT remote:") && l.contains("not read back whole")),
        "{}",
        check.stdout
    );

    r.run(&["verify", "--from-remote"]).ok();
    assert!(
        r.checks().iter().all(|(_, check)| check == "ok"),
        "{:?}",
        r.checks()
    );
    let check = r.run(&["check"]);
    check.ok();
    assert!(
        check.stdout.lines().any(|l| l.starts_with("OK   remote:")),
        "{}",
        check.stdout
    );

    // A mismatch verify found stays known (`damaged`) while the object is
    // the one it read.
    let oldest = &points[0].0;
    r.corrupt(oldest);
    let verify = r.run(&["verify", "--from-remote"]);
    assert_eq!(verify.code, 1, "{}{}", verify.stdout, verify.stderr);
    let checks = r.checks();
    assert_eq!(
        checks[0],
        (oldest.clone(), "damaged".to_string()),
        "{checks:?}"
    );
    assert_eq!(checks[1].1, "ok", "{checks:?}");

    forget_proofs(&r.env);
    s3::check_when_stale(&r.env, &r.endpoint, &r.url).reported(1, "not read back whole");
}

#[test]
fn a_damaged_point_is_not_repaired_from_a_local_copy_that_is_damaged_too() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "both");
    let points = r.points(2, &[]);
    let newest = &points[1].0;
    r.corrupt(newest);
    let on_remote = r.object(newest);
    // The backup directory's copy damaged too, its size kept (in its
    // compressed pages: its metadata, at the front, still reads).
    let local = r.env.backups.join(newest);
    let mut bytes = fs::read(&local).unwrap();
    let at = bytes.len() * 3 / 4;
    bytes[at] ^= 0x55;
    fs::write(&local, &bytes).unwrap();

    let sync = r.run(&["sync"]);
    sync.failed_with(1, newest);
    assert!(
        sync.stderr.contains("does not match its record either"),
        "{}",
        sync.stderr
    );
    // Nothing sent: the remote still holds the bytes it had.
    assert_eq!(r.object(newest), on_remote);
    r.run(&["check"]).reported(1, newest);
}

#[test]
fn sync_refuses_a_backup_damaged_on_disk_since_it_was_made_and_keeps_the_intact_points() {
    // One byte of its compressed data changed, same size: bit rot on scratch.
    refuses_a_damaged_local_backup("rot", |bytes| {
        let at = 8192 + (bytes.len() - 8192) / 3;
        bytes[at] ^= 0xff;
    });
}

#[test]
fn sync_refuses_a_backup_whose_header_checksum_was_damaged_on_disk() {
    // One hex character of the recorded checksum, in the 8 KiB header.
    refuses_a_damaged_local_backup("head", |bytes| {
        let needle = b"\"checksum\":\"sha256:";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
            + needle.len();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    });
}

#[test]
fn sync_refuses_a_backup_whose_last_byte_was_damaged_on_disk() {
    // The gzip trailer of the index member.
    refuses_a_damaged_local_backup("tail", |bytes| {
        *bytes.last_mut().unwrap() ^= 0x01;
    });
}

/// Two intact points synced, a third backup damaged on disk by `damage`:
/// `sync --remote-max-backups 1` names it (one ERROR, exit 1), uploads
/// nothing of it, and keeps the newest intact point, which restores.
fn refuses_a_damaged_local_backup(prefix: &str, damage: impl Fn(&mut Vec<u8>)) {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, prefix);
    let points = r.points(2, &[]);
    r.add_row();
    r.run(&["backup"]).ok();
    let newest = r.env.backup_files().last().unwrap().clone();
    let path = r.env.backups.join(&newest);
    let mut bytes = fs::read(&path).unwrap();
    damage(&mut bytes);
    fs::write(&path, &bytes).unwrap();

    let sync = r.run(&["--remote-max-backups", "1", "sync"]);
    sync.failed_with(1, &newest);
    let errors: Vec<&str> = sync
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", sync.stderr);
    assert!(
        errors[0].contains("damaged in the backup directory"),
        "{}",
        sync.stderr
    );
    // No record, no object; retention kept the newest intact point.
    assert_eq!(r.remote_names(), [points[1].0.clone()]);
    let (code, _) = s3::raw(
        &r.endpoint,
        "HEAD",
        &format!("/{}/{prefix}/{newest}", r.bucket),
        b"",
    );
    assert_eq!(code, 404);
    r.run(&["check"]).reported(1, "remote");
    let target = r.env.path("restored.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), points[1].1);
}

#[test]
fn a_point_truncated_or_without_its_object_and_no_local_copy_fails_sync_and_check() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "lost");
    let windows = ["--max-backups", "2", "--remote-max-backups", "4"];
    let run = |args: &[&str]| r.run(&[&windows[..], args].concat());
    let mut names = Vec::new();
    for _ in 0..4 {
        r.add_row();
        run(&["backup"]).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
        run(&["sync"]).ok();
    }
    assert_eq!(r.env.backup_files(), names[2..]);
    // Behind the tool's back, two points no longer in the backup directory:
    // one truncated, one without its data object.
    let half = r.object(&names[1]);
    r.put(&names[1], &half[..half.len() / 2]);
    r.delete(&names[0]);

    let sync = run(&["sync"]);
    sync.failed_with(1, &names[0]);
    let errors: Vec<&str> = sync
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", sync.stderr);
    assert!(errors[0].contains(&names[1]), "{}", sync.stderr);
    run(&["check"]).reported(1, "remote");
}

#[test]
fn check_fails_when_a_restore_found_the_newest_remote_point_damaged() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "found");
    let points = r.points(2, &[]);
    r.run(&["check"]).ok();
    r.corrupt(&points[1].0);
    let target = r.env.path("copy.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), points[0].1);
    let check = r.run(&["check"]);
    check.reported(1, &points[1].0);
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.contains("remote") && l.contains("does not match")),
        "{}",
        check.stdout
    );
}

#[test]
fn a_point_lost_at_the_store_whose_local_copy_is_damaged_too_is_named_once() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "twice");
    let points = r.points(2, &[]);
    let newest = &points[1].0;
    r.delete(newest);
    let path = r.env.backups.join(newest);
    let mut bytes = fs::read(&path).unwrap();
    let at = 8192 + (bytes.len() - 8192) / 3;
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let sync = r.run(&["sync"]);
    sync.failed_with(1, newest);
    let errors: Vec<&str> = sync
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", sync.stderr);
    assert_eq!(
        errors[0].matches(newest.as_str()).count(),
        1,
        "{}",
        errors[0]
    );
}

/// Replace `name`'s data object by `bytes` AND its record's SHA-256 and
/// size by theirs: a point whose record matches its bytes, but whose content
/// does not restore (what a damaged local file uploaded would leave).
fn damage_content_keeping_the_record_true(r: &Remote, name: &str, bytes: &[u8]) {
    use sha2::Digest;
    let mut record = r.record(name);
    let sha = sha2::Sha256::digest(bytes);
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    record["sha256"] = format!("sha256:{hex}").into();
    record["size"] = bytes.len().into();
    r.put(name, bytes);
    // Valid, so that only the content is wrong.
    r.put_old_record(name, record);
}

#[test]
fn a_read_from_the_remote_that_fails_on_the_content_is_never_a_proof() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "content");
    let points = r.points(3, &[]);
    let newest = &points[2].0;
    // The last byte: the gzip trailer of the index member.
    let mut bytes = r.object(newest);
    *bytes.last_mut().unwrap() ^= 0x01;
    damage_content_keeping_the_record_true(&r, newest, &bytes);
    forget_proofs(&r.env);

    // Restore latest passes over it to the newest intact point.
    let target = r.env.path("copy.db");
    let restore = r.restore_from_remote("latest", &target);
    restore.ok();
    assert_eq!(content_digest(&target), points[1].1);
    assert_passed_over(&restore, newest);
    // ... and what it read is a finding, never a proof.
    let check = r.run(&["check"]);
    check.reported(1, newest);
    assert!(
        !check
            .stdout
            .lines()
            .any(|l| l.starts_with("OK") && l.contains("remote")),
        "{}",
        check.stdout
    );
    let listed = r.checks();
    let row = listed.iter().find(|(name, _)| name == newest).unwrap();
    assert_ne!(row.1, "ok", "{listed:?}");

    // Export and verify by name fail the same way, and check stays failed.
    let export = r.env.path("e.db.gz");
    r.run(&[
        "export",
        newest,
        "--from-remote",
        "--out",
        export.to_str().unwrap(),
    ])
    .failed_with(1, &format!("backup {newest} is damaged"));
    forget_proofs(&r.env);
    r.run(&["verify", "--from-remote"]).failed_with(1, newest);
    r.run(&["check"]).reported(1, newest);
    // A sync reads its bytes again: they match the record, which cannot clear it.
    r.run(&["sync"]).failed_with(1, newest);
    r.run(&["check"]).reported(1, newest);
}

#[test]
fn every_sync_names_a_newest_backup_damaged_locally_that_is_not_on_the_remote() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "again");
    let points = r.points(2, &[]);
    r.add_row();
    r.run(&["backup"]).ok();
    let newest = r.env.backup_files().last().unwrap().clone();
    let path = r.env.backups.join(&newest);
    let mut bytes = fs::read(&path).unwrap();
    let at = 8192 + (bytes.len() - 8192) / 3;
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    r.run(&["sync"]).failed_with(1, &newest);
    // Marked damaged now: the next syncs still say it never reached the remote.
    for _ in 0..2 {
        r.run(&["sync"]).failed_with(1, &newest);
        let check = r.run(&["check"]);
        assert!(
            check
                .stdout
                .lines()
                .any(|l| l.starts_with("FAIL") && l.contains("remote") && l.contains(&newest)),
            "{}",
            check.stdout
        );
    }
    // A newer intact backup on the remote ends it.
    r.add_row();
    r.run(&["backup"]).ok();
    let sync = r.run(&["sync"]);
    sync.ok();
    assert!(!sync.stderr.contains(&newest), "{}", sync.stderr);
    assert_eq!(
        r.remote_names().len(),
        3,
        "{:?} {points:?}",
        r.remote_names()
    );
}

#[test]
fn a_one_off_sync_to_another_remote_keeps_the_configured_remotes_failure() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "mine");
    r.points(1, &[]);
    let failing = s3::fake_store(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    ));
    r.add_row();
    r.run(&["backup"]).ok();
    let failed = Run::from(
        s3::command(&r.env, &failing, &r.url)
            .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "3")
            .arg("sync")
            .output()
            .unwrap(),
    );
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let failure = format!("the last upload to {} failed", r.url);
    r.run(&["check"]).reported(1, &failure);

    let other = format!("s3://{}/other", r.bucket);
    r.run(&["--remote", &other, "sync"]).ok();
    r.run(&["check"]).reported(1, &failure);
    r.run(&["--remote", &other, "check"]).ok();

    // A record kept by an earlier version (one file, no remote in its name)
    // is still read.
    let state = r.env.backups.join(".dbbackup-state");
    let mut records: Vec<String> = fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|i| i.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("remote-") && !n.starts_with("remote-proofs-"))
        .collect();
    records.sort();
    assert_eq!(records.len(), 2, "{records:?}");
    let mine = records
        .iter()
        .find(|name| {
            let bytes = fs::read(state.join(name)).unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["remote"] == r.url.as_str()
        })
        .unwrap();
    let db_key = mine.rsplit_once('-').unwrap().0;
    fs::rename(state.join(mine), state.join(db_key)).unwrap();
    r.run(&["check"]).reported(1, &failure);
}

/// A restore that went past `newest` says so on stderr.
fn assert_passed_over(run: &Run, newest: &str) {
    assert!(
        run.stderr.contains(&format!("passed over newer {newest}")),
        "{}",
        run.stderr
    );
}

/// A local backup whose header `seq` had a bit flipped (1 -> 9) is damaged:
/// `sync` does not upload it, so it never becomes the remote's latest and
/// remote retention keeps the newest point.
#[test]
fn a_backup_with_a_flipped_header_bit_is_not_uploaded_nor_made_the_remotes_latest() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "header-local");
    let mut digests = Vec::new();
    for _ in 0..3 {
        r.add_row();
        r.run(&["backup"]).ok();
        digests.push(content_digest(&r.env.db));
    }
    let names = r.env.backup_files();
    let path = r.env.backups.join(&names[0]);
    let mut bytes = fs::read(&path).unwrap();
    crate::common::flip_seq_bit(&mut bytes);
    fs::write(&path, bytes).unwrap();

    let sync = r.run(&["sync"]);
    sync.failed_with(1, &names[0]);
    assert!(
        sync.stderr.contains("metadata checksum mismatch"),
        "{}",
        sync.stderr
    );
    assert_eq!(r.remote_names(), names[1..], "{}", sync.stderr);
    r.run(&["--remote-max-backups", "1", "sync"])
        .failed_with(1, &names[0]);
    assert_eq!(r.remote_names(), names[2..]);

    fs::remove_dir_all(&r.env.backups).unwrap();
    let target = r.env.path("restored.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), digests[2]);
}

/// The same flip made in the oldest point's object on the store: restore
/// from the remote takes the newest point, and retention keeps it.
#[test]
fn a_flipped_header_bit_in_a_stored_point_never_makes_it_the_remotes_latest() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "header-store");
    let points = r.points(3, &[]);
    let (oldest, newest) = (&points[0].0, &points[2].0);
    let mut bytes = r.object(oldest);
    crate::common::flip_seq_bit(&mut bytes);
    r.put(oldest, &bytes);
    fs::remove_dir_all(&r.env.backups).unwrap();

    let target = r.env.path("restored.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), points[2].1);
    let sync = r.run(&["--remote-max-backups", "1", "sync"]);
    assert!(
        r.remote_names().contains(newest),
        "{:?}\n{}",
        r.remote_names(),
        sync.stderr
    );
    fs::remove_file(&target).unwrap();
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), points[2].1);
}

/// T33 H3: the newest point damaged at the store and its local copy damaged
/// too, the older point gone from the remote (remote_max_backups: 1): every
/// sync left the local copy `ok`, said "no older point is there to take its
/// place" and never sent the intact older backup the directory held. The
/// local copy is marked damaged and the older point goes up in the same run.
#[test]
fn a_newest_point_damaged_at_the_store_and_here_has_the_older_intact_one_sent_in_its_place() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "bothkeep1");
    let keep_one = ["--remote-max-backups", "1"];
    let points = r.points(2, &[]);
    let (older, newest) = (&points[0].0, &points[1].0);
    r.run(&[&keep_one[..], &["sync"]].concat()).ok();
    assert_eq!(r.remote_names(), std::slice::from_ref(newest));
    r.corrupt(newest);
    let local = r.env.backups.join(newest);
    let mut bytes = fs::read(&local).unwrap();
    let at = bytes.len() * 3 / 4;
    bytes[at] ^= 0x55;
    fs::write(&local, &bytes).unwrap();
    let sync = r.run(&[&keep_one[..], &["sync"]].concat());
    sync.failed_with(1, "does not match its record either");
    assert!(
        sync.stdout.contains(&format!("uploaded {older}")),
        "{}",
        sync.stdout
    );
    assert!(
        sync.stderr.contains("older points are kept in its place"),
        "{}",
        sync.stderr
    );
    let checks = r.checks();
    assert!(
        checks.contains(&(older.clone(), "ok".to_string())),
        "{checks:?}"
    );
    let rows = crate::common::listed(&r.env);
    assert_eq!(rows[newest.as_str()]["check"], "damaged", "{rows:?}");
}
