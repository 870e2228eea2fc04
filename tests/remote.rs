//! Off-cluster copies (docs/remote.md) against a real S3 server on 127.0.0.1
//! (moto, `common::s3`): sync, list, restore and export from the remote.

use std::fs;

use crate::common::s3::{self, Remote};
use crate::common::{Env, content_digest};

/// The summary log's `upload` line (an inline upload's outcome).
fn upload_line(env: &Env) -> std::collections::BTreeMap<String, String> {
    let lines = crate::common::summary_lines(&env.path("slrm_logs/backup_summary.log"));
    lines
        .into_iter()
        .find(|l| l["event"] == "upload")
        .expect("upload line")
}

/// Three backups (a full and two diffs on it).
fn three_points(r: &Remote) {
    for i in 0..3 {
        if i > 0 {
            r.add_rows(3);
        }
        r.run(&["--diff-backups", "2", "backup"]).ok();
    }
}

#[test]
fn backup_dir_lost_restore_latest_comes_from_the_remote_with_the_same_content() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "proj/results");
    let (env, url) = (&r.env, &r.url);
    let run = |args: &[&str]| r.run(args);
    three_points(&r);
    let local = env.backup_files();
    assert_eq!(local.len(), 3, "{local:?}");

    let sync = run(&["sync", "--format", "json"]);
    sync.ok();
    let uploaded: Vec<String> = sync.json()["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    // Base first (the diffs are checked on it there), then the diffs.
    let full = local
        .iter()
        .find(|n| n.ends_with(".db.gz"))
        .unwrap()
        .clone();
    assert_eq!(uploaded[0], full, "{uploaded:?}");
    assert_eq!(uploaded.len(), 3);

    // Idempotent: a second sync uploads nothing.
    let again = run(&["sync", "--format", "json"]);
    again.ok();
    assert_eq!(again.json()["uploaded"].as_array().unwrap().len(), 0);
    assert_eq!(again.json()["already_there"], 3);

    let rows = r.listed();
    let mut types: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["type"].as_str().unwrap().to_string(),
                r["base"].as_str().map(str::to_string),
            )
        })
        .collect();
    types.sort();
    assert_eq!(types.len(), 3, "{rows:?}");
    assert_eq!(types.iter().filter(|t| t.1 == "full").count(), 1);
    for (name, kind, base) in &types {
        if kind == "diff" {
            assert_eq!(base.as_deref(), Some(full.as_str()), "{name}");
        }
    }
    assert!(rows.iter().all(|r| r["check"] == "ok"), "{rows:?}");
    let text = run(&["list", "--from-remote"]);
    text.ok();
    assert!(
        text.stdout.contains("TYPE") && text.stdout.contains("BASE"),
        "{}",
        text.stdout
    );

    // The scratch purge: backups and database gone.
    let want = content_digest(&env.db);
    fs::remove_dir_all(&env.backups).unwrap();
    fs::remove_file(&env.db).unwrap();
    let restored = run(&["restore", "latest"]);
    restored.ok();
    assert!(
        restored.stderr.contains("no intact restore point") && restored.stderr.contains(url),
        "{}",
        restored.stderr
    );
    assert_eq!(content_digest(&env.db), want);
    // Nothing downloaded is left beside the database.
    let left: Vec<String> = fs::read_dir(env.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dbbackup"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn restore_and_export_by_name_from_the_remote_check_the_content() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "");
    let (env, url) = (&r.env, &r.url);
    let run = |args: &[&str]| r.run(args);
    run(&["backup"]).ok();
    let first = env.backup_files()[0].clone();
    let first_digest = content_digest(&env.db);
    r.add_rows(10);
    run(&["--diff-backups", "1", "backup"]).ok();
    run(&["sync"]).ok();
    let target = env.path("copy.db");
    run(&[
        "restore",
        &first,
        "--from-remote",
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(content_digest(&target), first_digest);

    // Intact local points: `latest` stays local, no download.
    let local = run(&[
        "restore",
        "latest",
        "--target",
        env.path("local.db").to_str().unwrap(),
    ]);
    local.ok();
    assert!(
        !local.stdout.contains("downloaded") && !local.stderr.contains(url),
        "{}",
        local.stderr
    );

    let out = env.path("export.db.gz");
    run(&[
        "export",
        "latest",
        "--from-remote",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    let plain = crate::common::gunzip_to(&out, &env.path("exported.db"));
    assert_eq!(content_digest(&plain), content_digest(&env.db));

    let verify = run(&["verify", "--from-remote"]);
    verify.ok();
    assert_eq!(
        verify.stdout.matches(": ok (").count(),
        2,
        "{}",
        verify.stdout
    );
    // T27 F-A: `--all` says the same; a NAME or `latest` verifies that one.
    let all = run(&["verify", "--from-remote", "--all"]);
    all.ok();
    assert_eq!(all.stdout.matches(": ok (").count(), 2, "{}", all.stdout);
    let newest = env.backup_files().pop().unwrap();
    for name in [newest.as_str(), "latest"] {
        let one = run(&["verify", "--from-remote", name]);
        one.ok();
        assert_eq!(one.stdout.matches(": ok (").count(), 1, "{}", one.stdout);
        assert!(one.stdout.contains(&newest), "{}", one.stdout);
    }
    run(&["verify", "--from-remote", "backup_20000101_000000.db.gz"]).failed_with(
        1,
        &format!("no restore point named 'backup_20000101_000000.db.gz' on {url}"),
    );
    // A name the remote does not hold: one line naming the remote.
    run(&[
        "restore",
        "backup_20000101_000000.db.gz",
        "--from-remote",
        "--target",
        "x.db",
    ])
    .failed_with(
        1,
        &format!("no restore point named 'backup_20000101_000000.db.gz' on {url}"),
    );
}

#[test]
fn remote_retention_keeps_the_newest_and_the_base_a_kept_diff_needs() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "r");
    let env = &r.env;
    let run = |args: &[&str]| r.run(args);
    // F1, D1, D2 (on F1), F2.
    for i in 0..4 {
        if i > 0 {
            r.add_rows(5);
        }
        run(&["--diff-backups", "2", "backup"]).ok();
    }
    let names = env.backup_files();
    assert_eq!(names.len(), 4, "{names:?}");
    run(&["sync"]).ok();
    assert_eq!(r.remote_names(), names);
    let pruned = run(&["--remote-max-backups", "2", "sync", "--format", "json"]);
    pruned.ok();
    // The two newest are F2 and D2; D2 needs F1: only D1 goes.
    let diffs: Vec<&String> = names.iter().filter(|n| n.ends_with(".diff.gz")).collect();
    assert_eq!(pruned.json()["deleted"], serde_json::json!([diffs[0]]));
    let left: Vec<String> = names.iter().filter(|n| *n != diffs[0]).cloned().collect();
    assert_eq!(r.remote_names(), left);
    // D2 still restores from the remote: its base stayed.
    r.restore_from_remote(diffs[1], &env.path("d2.db")).ok();
}

#[test]
fn inline_upload_failure_keeps_the_backup_warns_and_check_says_remote() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "inline");
    let env = &r.env;
    // Nothing listens there: the upload fails, the backup does not.
    let closed = format!("http://127.0.0.1:{}", s3::free_port());
    let url = "s3://bucket/inline";
    let backup = s3::command(env, &closed, url)
        .env("DBBACKUP_REMOTE_UPLOAD", "inline")
        .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "2")
        .arg("backup")
        .output()
        .unwrap();
    let backup = crate::common::Run::from(backup);
    backup.ok();
    assert!(
        backup.stderr.contains("WARN") && backup.stderr.contains(url),
        "{}",
        backup.stderr
    );
    // Beside the backup's own line, not only in the WARN on stderr.
    assert!(
        backup.stdout.contains(&format!(
            "not uploaded to {url} (the upload failed, see above): the backup is kept locally and `dbbackup sync` uploads it"
        )),
        "{}",
        backup.stdout
    );
    assert_eq!(env.backup_files().len(), 1);
    let upload = upload_line(env);
    assert_eq!(upload["status"], "failed");
    assert_eq!(upload["remote"], url);
    // A sync that cannot reach the store still answers `--format json`.
    let sync = s3::run(env, &closed, url, &["sync", "--format", "json"]);
    assert_eq!(sync.code, 1, "{}", sync.stderr);
    let document = sync.json();
    assert_eq!(document["status"], "failed", "{document}");
    assert_eq!(document["remote"], url, "{document}");
    assert!(
        document["error"].as_str().is_some_and(|e| e.contains(url)),
        "{document}"
    );
    let check = s3::run(env, &closed, url, &["check"]);
    check.reported(1, "remote");
    let nagios = s3::run(env, &closed, url, &["check", "--format", "nagios"]);
    assert!(nagios.stdout.contains("remote"), "{}", nagios.stdout);
    let prom = s3::run(env, &closed, url, &["check", "--format", "prometheus"]);
    assert!(
        prom.stdout
            .lines()
            .any(|l| l.contains("criterion=\"remote\"") && l.ends_with(" 0")),
        "{}",
        prom.stdout
    );

    // A reachable store: the inline upload makes the point remote, check is healthy.
    let url = &r.url;
    r.add_rows(5);
    let backup = r.run_inline(&["backup"]);
    backup.ok();
    assert!(
        backup.stdout.contains(&format!("uploaded to {url}: 2 new")),
        "{}",
        backup.stdout
    );
    assert_eq!(r.remote_count(), 2);
    let check = r.run(&["check", "--format", "json"]);
    let criteria = check.json();
    let remote = criteria["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "remote")
        .cloned()
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert_eq!(remote["ok"], true, "{remote}");

    // `auto` that makes a backup uploads it too.
    r.add_rows(5);
    r.run_inline(&["--min-interval-hours", "0", "auto"]).ok();
    assert_eq!(r.remote_count(), 3);

    // `periodic` too (the SLURM hooks never upload: docs/remote.md).
    r.add_rows(5);
    r.run_inline(&["--min-interval-hours", "0", "periodic"])
        .ok();
    assert_eq!(r.remote_count(), 4);

    // A newer point not synced: fine while young, unhealthy once older than remote_max_age.
    r.add_rows(5);
    r.run(&["backup"]).ok();
    r.run(&["check"]).ok();
    r.check_when_stale().reported(1, "is not on");
}

#[test]
fn a_sync_killed_mid_upload_leaves_no_point_and_the_next_sync_completes_it() {
    let Some(server) = s3::shared() else { return };
    // Incompressible: the backup is as large as the database, several parts.
    let mb = if crate::common::quick() { 60 } else { 300 };
    let r = Remote::incompressible(server, "big", mb);
    r.run(&["backup"]).ok();
    // Killed once a multipart upload is under way on the server.
    let killed = r.sync_stopped_mid_upload(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(killed.signal, Some(9), "{}", killed.stderr);
    let rows = r.listed();
    assert!(rows.is_empty(), "a partial upload counted: {rows:?}");
    r.run(&["sync"]).ok();
    assert_eq!(r.remote_count(), 1);
    r.run(&["verify", "--from-remote"]).ok();
}

#[test]
fn sync_never_waits_for_the_backup_directory_lock() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "locked");
    r.run(&["backup"]).ok();
    // A job's backup holds the lock (this process): a sync from a login node
    // goes ahead, and so a backup never waits for an upload.
    let _held =
        crate::common::hold_dir_lock(&r.env.backups.join(".dbbackup.lock"), "pid 1 on node7");
    let started = std::time::Instant::now();
    let sync = r.run(&["--lock-timeout-seconds", "0", "sync", "--format", "json"]);
    sync.ok();
    assert_eq!(sync.json()["uploaded"].as_array().unwrap().len(), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn a_sync_stopped_by_term_aborts_its_multipart_upload() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::incompressible(server, "term", 80);
    r.run(&["backup"]).ok();
    let run = r.sync_stopped_mid_upload(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(run.signal, Some(15), "{}", run.stderr);
    // Aborted: no parts left on the store, and no point listed.
    assert!(!r.uploads().contains("<UploadId>"), "{}", r.uploads());
    let rows = r.listed();
    assert!(rows.is_empty(), "{rows:?}");
}

#[test]
fn files_restored_or_exported_from_the_remote_get_the_modes_a_local_one_gets() {
    use std::os::unix::fs::PermissionsExt;
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "modes");
    let env = &r.env;
    let run = |args: &[&str]| r.run(args);
    run(&["backup"]).ok();
    run(&["sync"]).ok();
    let mode = |name: &str| {
        std::fs::metadata(env.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    let path = |name: &str| env.path(name).to_str().unwrap().to_string();
    run(&["restore", "latest", "--target", &path("local.db")]).ok();
    run(&[
        "restore",
        "latest",
        "--from-remote",
        "--target",
        &path("remote.db"),
    ])
    .ok();
    run(&["export", "latest", "--out", &path("local.db.gz")]).ok();
    run(&[
        "export",
        "latest",
        "--from-remote",
        "--out",
        &path("remote.db.gz"),
    ])
    .ok();
    assert_eq!(mode("remote.db"), mode("local.db"));
    assert_eq!(mode("remote.db.gz"), mode("local.db.gz"));
}

#[test]
fn a_damaged_base_that_a_kept_diff_needs_is_named_and_sync_ends() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "base");
    let env = &r.env;
    three_points(&r);
    r.run(&["sync"]).ok();
    let base = env.backup_files()[0].clone();
    r.corrupt(&base);
    fs::remove_file(env.backups.join(&base)).unwrap();
    let mut child = r
        .command()
        .args(["--remote-max-backups", "1", "sync"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("sync did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let run: crate::common::Run = child.wait_with_output().unwrap().into();
    run.failed_with(1, &base);
    // The kept diff on it cannot be restored: named too, not counted.
    let newest = env.backup_files().last().unwrap().clone();
    assert!(
        run.stderr
            .contains(&format!("{newest} (its base {base} is damaged)")),
        "{}",
        run.stderr
    );
}

/// An endpoint without its scheme, with a trailing space, or keys with a
/// character a header cannot hold panicked inside object_store (exit 101):
/// each is one line naming the setting (never the secret's value), exit 2; an
/// inline upload keeps the backup (exit 0) and records the failed upload.
#[test]
fn an_endpoint_or_keys_a_request_cannot_hold_are_named_not_a_panic() {
    let env = Env::new();
    let url = "s3://bucket/bad-endpoint";
    for (endpoint, said) in [
        (
            "s3.hpc.example.org",
            "AWS_ENDPOINT_URL \"s3.hpc.example.org\" is not an http(s) URL without spaces: give it as https://s3.hpc.example.org",
        ),
        (
            "http://127.0.0.1:9 ",
            "AWS_ENDPOINT_URL \"http://127.0.0.1:9 \" is not an http(s) URL without spaces",
        ),
        (
            "http://",
            "AWS_ENDPOINT_URL \"http://\" is not an http(s) URL",
        ),
        // A password there would be in every error line (T9 #3): never shown.
        (
            "http://user:pa55word@127.0.0.1:9",
            "AWS_ENDPOINT_URL holds a user name or password: give the endpoint without them (http://127.0.0.1:9)",
        ),
        (
            "user:pa55word@s3.example.org",
            "AWS_ENDPOINT_URL holds a user name or password",
        ),
    ] {
        for args in [&["sync"][..], &["list", "--from-remote"][..]] {
            let run = s3::run(&env, endpoint, url, args);
            run.failed_with(2, said);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
            assert!(!run.stderr.contains("pa55word"), "{}", run.stderr);
        }
    }
    let secret = "line\nbreak";
    let run = crate::common::Run::from(
        s3::command(&env, "http://127.0.0.1:9", url)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .arg("sync")
            .output()
            .unwrap(),
    );
    run.failed_with(
        2,
        "the secret access key (from an AWS_* variable or the credentials file) holds a space, line break or non-ASCII character",
    );
    assert!(!run.stderr.contains("line\nbreak") && !run.stderr.contains("panicked"));
    let run = crate::common::Run::from(
        s3::command(&env, "http://127.0.0.1:9", url)
            .env("AWS_ACCESS_KEY_ID", "tést")
            .arg("sync")
            .output()
            .unwrap(),
    );
    run.failed_with(2, "the access key id (from an AWS_* variable");

    // Inline: the backup stands, the failed upload is recorded for `check`.
    let backup = crate::common::Run::from(
        s3::command(&env, "s3.hpc.example.org", url)
            .env("DBBACKUP_REMOTE_UPLOAD", "inline")
            .arg("backup")
            .output()
            .unwrap(),
    );
    backup.ok();
    assert!(
        backup.stderr.contains("WARN") && !backup.stderr.contains("panicked"),
        "{}",
        backup.stderr
    );
    assert_eq!(env.backup_files().len(), 1);
    assert_eq!(upload_line(&env)["status"], "failed");
}

/// `--from-remote` into a directory that does not exist is said as the local
/// commands say it (T7 #18), not as the private download directory.
#[test]
fn restore_or_export_from_the_remote_into_a_missing_directory_names_it() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "missing-dir");
    let env = &r.env;
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let missing = env.path("nonexist");
    let said = format!(
        "directory {} does not exist; create it first",
        missing.display()
    );
    let target = missing.join("x.db");
    let out = missing.join("x.db.gz");
    for args in [
        [
            "restore",
            "latest",
            "--from-remote",
            "--target",
            target.to_str().unwrap(),
        ],
        [
            "export",
            "latest",
            "--from-remote",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let run = r.run(&args);
        run.failed_with(1, &said);
        assert!(!run.stderr.contains(".dbbackup-remote"), "{}", run.stderr);
    }
    assert!(!missing.exists());
}

/// The backup directory and the database lost, a mirror holding a backup made
/// since the last sync: `restore latest` took the remote's older point (exit
/// 0, the mirror unmentioned). It refuses as without a remote, naming the
/// mirror and the remote both (T9 #1).
#[test]
fn a_mirror_with_restore_points_is_named_before_the_remote_is_taken() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "mirror-first");
    let env = &r.env;
    let mirror = env.path("mirror");
    let m = mirror.to_str().unwrap();
    let run = |args: &[&str]| r.run(&[&["--mirror-dir", m][..], args].concat());
    run(&["backup"]).ok();
    run(&["sync"]).ok();
    r.add_rows(5);
    run(&["backup"]).ok();
    let newest = content_digest(&env.db);
    fs::remove_dir_all(&env.backups).unwrap();
    fs::remove_file(&env.db).unwrap();
    let refused = run(&["restore", "latest"]);
    refused.failed_with(1, &format!("mirror {m} holds 2 restore points of it"));
    refused.failed_with(1, "`dbbackup restore latest --from-remote`");
    assert!(!env.db.exists(), "nothing restored");
    run(&["restore", "latest", "--if-db-missing"]).failed_with(1, &format!("mirror {m}"));
    assert!(!env.db.exists(), "nothing restored");
    // What the line says works and gives the newest data.
    r.run(&["--backup-dir", m, "restore", "latest"]).ok();
    assert_eq!(content_digest(&env.db), newest);
    // A database already there: --if-db-missing downloads nothing.
    run(&["restore", "latest", "--if-db-missing"]).reported(0, "exists; nothing to restore");
}
