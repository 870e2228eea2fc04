//! The remote when it is wrong: unknown scheme, missing bucket, wrong secret,
//! unreachable, failing or stalling store. One line naming the remote, exit 1
//! (2 for a remote that is not an s3:// URL, as every bad setting), nothing
//! local touched, never the secret.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::s3::{self, SECRET};
use crate::common::{Env, Run};

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(&dir).unwrap().flatten() {
            let path = item.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.display().to_string(), fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The backup directory's files (not `.dbbackup-state`, where a failed upload
/// is recorded) by SHA-256: "nothing local touched" compares two.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    use sha2::Digest;
    files(dir)
        .into_iter()
        .filter(|(path, _)| !path.contains(".dbbackup-state"))
        .map(|(path, bytes)| {
            let digest = sha2::Sha256::digest(&bytes);
            (path, digest.iter().map(|b| format!("{b:02x}")).collect())
        })
        .collect()
}

/// Neither stream nor any file under the test's directory holds the secret.
fn no_secret(env: &Env, runs: &[&Run]) {
    for run in runs {
        assert!(
            !run.stdout.contains(SECRET),
            "secret on stdout: {}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(SECRET),
            "secret on stderr: {}",
            run.stderr
        );
    }
    for (path, bytes) in files(env.root.path()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "secret in {path}"
        );
    }
}

/// One line on stderr (an ERROR line), naming `url`, exit `code`.
fn one_line(run: &Run, code: i32, url: &str) {
    run.failed_with(code, url);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains(url)).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
}

fn with_backup() -> (Env, BTreeMap<String, String>) {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let before = snapshot(&env.backups);
    (env, before)
}

#[test]
fn a_remote_that_is_not_s3_or_names_no_bucket_is_one_line_and_nothing_is_touched() {
    let (env, before) = with_backup();
    for url in ["gs://bucket/x", "s3:///x", "bucket/x"] {
        let run = s3::run(&env, "http://127.0.0.1:9", url, &["sync"]);
        one_line(&run, 2, url);
        assert_eq!(snapshot(&env.backups), before);
        no_secret(&env, &[&run]);
    }
    // Refused by every command, before anything is made.
    let run = s3::run(
        &env,
        "http://127.0.0.1:9",
        "gs://bucket/x",
        &["backup", "--force"],
    );
    one_line(&run, 2, "gs://bucket/x");
    assert_eq!(snapshot(&env.backups), before);
    // Asked for without one: says how to set it.
    let run = env.run(&["list", "--from-remote"]);
    run.failed_with(2, "no remote configured");
    // An empty --remote is no way to unset the configured one (T31 R4).
    let run = s3::run(
        &env,
        "http://127.0.0.1:9",
        "s3://b/p",
        &["--remote", "", "sync"],
    );
    run.failed_with(2, "a value is required for '--remote <URL>'");
    // s3:// alone names no bucket, said so (not "give s3:///PREFIX", T31 R1).
    let run = s3::run(&env, "http://127.0.0.1:9", "s3://", &["sync"]);
    run.failed_with(2, "remote 's3://' names no bucket: give s3://BUCKET/PREFIX");
}

#[test]
fn a_missing_bucket_or_a_wrong_secret_fails_naming_the_remote_never_the_secret() {
    let Some(server) = s3::shared() else { return };
    // A store that checks credentials refuses ours.
    let Some(auth) = s3::start_with_auth("authbucket") else {
        return;
    };
    let (env, before) = with_backup();
    // Each store: the remote, the commands, and the S3 error code and
    // message the line carries (not the store's XML document).
    let cases: [(&str, &str, &[&[&str]], &str); 2] = [
        (
            &server.endpoint,
            "s3://no-such-bucket-here/p",
            &[
                &["sync"],
                &["list", "--from-remote"],
                &["verify", "--from-remote"],
            ],
            "NoSuchBucket: The specified bucket does not exist",
        ),
        (
            &auth.endpoint,
            "s3://authbucket/p",
            &[&["sync", "--format", "json"], &["list", "--from-remote"]],
            "InvalidAccessKeyId",
        ),
    ];
    for (endpoint, url, commands, words) in cases {
        let mut runs = Vec::new();
        for args in commands {
            let run = s3::run(&env, endpoint, url, args);
            one_line(&run, 1, url);
            assert!(
                run.stderr.contains(words) && !run.stderr.contains('<'),
                "{}",
                run.stderr
            );
            runs.push(run);
        }
        assert_eq!(snapshot(&env.backups), before, "{url}");
        let refs: Vec<&Run> = runs.iter().collect();
        no_secret(&env, &refs);
    }
    let sync_line = crate::common::summary_lines(&env.summary_log())
        .into_iter()
        .find(|l| l["event"] == "sync")
        .expect("sync line");
    assert!(
        sync_line["detail"].contains("NoSuchBucket") && !sync_line["detail"].contains('<'),
        "{sync_line:?}"
    );
}

#[test]
fn an_unreachable_failing_or_stalling_store_fails_in_bounded_time() {
    let (env, before) = with_backup();
    let closed = format!("http://127.0.0.1:{}", s3::free_port());
    let failing = s3::fake_store(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    ));
    let stalling = s3::fake_store(None);
    let mut causes = Vec::new();
    for endpoint in [closed, failing, stalling] {
        let url = "s3://bucket/p";
        let started = Instant::now();
        let run = s3::command(&env, &endpoint, url)
            .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "3")
            .arg("sync")
            .output()
            .unwrap();
        let run = Run::from(run);
        // The retries' budget (3 s) and one request's timeout, with room for a busy machine.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{endpoint}: {:?}",
            started.elapsed()
        );
        one_line(&run, 1, url);
        // Only that line: object_store's "backing off, retry 2 of 4" lines are -v detail.
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert_eq!(snapshot(&env.backups), before, "{endpoint}");
        no_secret(&env, &[&run]);
        causes.push(run.stderr);
    }
    // The cause is named, not only "error sending request".
    assert!(causes[0].contains("Connection refused"), "{}", causes[0]);
    assert!(causes[1].contains("500"), "{}", causes[1]);
    // The failed upload is a failed attempt: `check` and the summary log say so.
    env.run(&["--remote", "s3://bucket/p", "check"])
        .reported(1, "the last upload to s3://bucket/p failed");
    let lines = crate::common::summary_lines(&env.path("slrm_logs/backup_summary.log"));
    let syncs: Vec<_> = lines.iter().filter(|l| l["event"] == "sync").collect();
    assert_eq!(syncs.len(), 3);
    assert!(
        syncs
            .iter()
            .all(|l| l["status"] == "failed" && l["remote"] == "s3://bucket/p")
    );
}

#[test]
fn the_server_stopped_mid_upload_fails_cleanly_and_a_later_sync_completes() {
    let Some(mut server) = s3::start() else {
        return;
    };
    server.bucket("big");
    let url = "s3://big/p";
    let env = Env::empty();
    {
        let conn = rusqlite::Connection::open(&env.db).unwrap();
        conn.execute_batch("CREATE TABLE blobs(x BLOB)").unwrap();
        for _ in 0..60 {
            conn.execute("INSERT INTO blobs SELECT randomblob(1048576)", [])
                .unwrap();
        }
    }
    env.run(&["backup"]).ok();
    let before = snapshot(&env.backups);
    let sync = s3::command(&env, &server.endpoint, url)
        .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "3")
        .arg("sync")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !s3::get(&server.endpoint, "/big?uploads").contains("<UploadId>") {
        assert!(Instant::now() < deadline, "no multipart upload seen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = server.endpoint.rsplit(':').next().unwrap().to_string();
    server.stop();
    let stopped = Instant::now();
    let run = Run::from(sync.wait_with_output().unwrap());
    assert!(
        stopped.elapsed() < Duration::from_secs(40),
        "{:?}",
        stopped.elapsed()
    );
    one_line(&run, 1, url);
    assert_eq!(snapshot(&env.backups), before);
    no_secret(&env, &[&run]);
    // The store is back (empty: moto keeps nothing): the next sync uploads it whole.
    let Some(again) = s3::start_on(port.parse().unwrap()) else {
        return;
    };
    again.bucket("big");
    s3::run(&env, &again.endpoint, url, &["sync"]).ok();
    s3::run(&env, &again.endpoint, url, &["verify", "--from-remote"]).ok();
}

/// A shared credentials file holding `text`, outside the test's directory
/// (which `no_secret` reads whole); the directory lives as long as the guard.
fn credentials_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("credentials");
    fs::write(&file, text).unwrap();
    (home, file)
}

#[test]
fn an_aws_profile_the_credentials_file_lacks_is_refused_naming_both() {
    let env = Env::new();
    let (endpoint, heads) = s3::recording_store();
    let (_home, file) =
        credentials_file("[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = x\n");
    let url = "s3://bucket/p";
    let run = Run::from(
        s3::command(&env, &endpoint, url)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .env("AWS_PROFILE", "nope")
            .args(["list", "--from-remote"])
            .output()
            .unwrap(),
    );
    run.failed_with(2, "'nope'");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].contains(&file.display().to_string()),
        "{}",
        run.stderr
    );
    // Nothing asked of any store (nor of the instance-metadata service).
    assert!(heads.lock().unwrap().is_empty());
}

/// T14 #11: a stale `AWS_SESSION_TOKEN` (an earlier `assume-role` export)
/// was sent with the credentials file's keys, and the store refused them
/// (`InvalidToken`). As in the AWS SDKs, the environment's token goes with
/// the environment's keys only; the file's own token goes with its keys.
#[test]
fn an_environment_session_token_is_not_sent_with_the_files_keys() {
    let env = Env::new();
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("credentials");
    let url = "s3://bucket/p";
    let heads_with = |credentials: &str, env_keys: bool| -> Vec<String> {
        fs::write(&file, credentials).unwrap();
        let (endpoint, heads) = s3::recording_store();
        let mut command = s3::command(&env, &endpoint, url);
        command
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .env("AWS_SESSION_TOKEN", "STALETOKEN");
        if !env_keys {
            command
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY");
        }
        Run::from(command.args(["list", "--from-remote"]).output().unwrap()).failed_with(1, url);
        heads.lock().unwrap().clone()
    };
    let keys = "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = x\n";
    let heads = heads_with(keys, false);
    assert!(
        heads.iter().any(|h| h.contains("Credential=AKIAFILE/"))
            && heads.iter().all(|h| !h.contains("STALETOKEN")),
        "{heads:?}"
    );
    let heads = heads_with(&format!("{keys}aws_session_token = FILETOKEN\n"), false);
    assert!(
        heads.iter().any(|h| h.contains("FILETOKEN"))
            && heads.iter().all(|h| !h.contains("STALETOKEN")),
        "{heads:?}"
    );
    // The environment's keys keep the environment's token.
    let heads = heads_with(keys, true);
    assert!(heads.iter().any(|h| h.contains("STALETOKEN")), "{heads:?}");
}

/// T14 #3: `AWS_ACCESS_KEY_ID` without `AWS_SECRET_ACCESS_KEY` printed the
/// library's "Missing SecretAccessKey" even with a credentials file holding
/// keys. Half of the environment's keys are no keys (as in the AWS SDKs): the
/// file's keys are used, and without them one line says what is missing.
#[test]
fn half_of_the_environments_keys_falls_through_to_the_file_or_says_what_is_missing() {
    let env = Env::new();
    let (home, file) =
        credentials_file("[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = x\n");
    let url = "s3://bucket/p";
    let (endpoint, heads) = s3::recording_store();
    let run = Run::from(
        s3::command(&env, &endpoint, url)
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .args(["list", "--from-remote"])
            .output()
            .unwrap(),
    );
    run.failed_with(1, url);
    let heads = heads.lock().unwrap().clone();
    assert!(
        heads.iter().any(|h| h.contains("Credential=AKIAFILE/")),
        "{heads:?}"
    );
    // Refused (403): which keys, from where (T14 #7).
    assert!(
        run.stderr.contains(&format!(
            "(keys: access key …FILE from AWS_SHARED_CREDENTIALS_FILE={} [default])",
            file.display()
        )),
        "{}",
        run.stderr
    );
    let (endpoint, heads) = s3::recording_store();
    let run = Run::from(
        s3::command(&env, &endpoint, url)
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env("HOME", home.path().join("no-aws-here"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["list", "--from-remote"])
            .output()
            .unwrap(),
    );
    one_line(
        &run,
        1,
        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
    );
    assert!(heads.lock().unwrap().is_empty());
}

#[test]
fn keys_come_from_the_aws_profile_in_the_shared_credentials_file() {
    let env = Env::new();
    let (endpoint, heads) = s3::recording_store();
    // Outside the test's directory, which `no_secret` reads whole.
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("credentials");
    fs::write(
        &file,
        format!("[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = x\n\n[centre]\naws_access_key_id = AKIACENTRE\naws_secret_access_key = {SECRET}\n"),
    )
    .unwrap();
    let url = "s3://bucket/p";
    let run = Run::from(
        s3::command(&env, &endpoint, url)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .env("AWS_PROFILE", "centre")
            .args(["list", "--from-remote"])
            .output()
            .unwrap(),
    );
    one_line(&run, 1, url);
    let heads = heads.lock().unwrap().clone();
    assert!(
        heads.iter().any(|h| h.contains("Credential=AKIACENTRE/")),
        "{heads:?}"
    );
    // Signed with it, never sent.
    assert!(heads.iter().all(|h| !h.contains(SECRET)));
    no_secret(&env, &[&run]);
    // The environment's keys win over the file.
    let (endpoint, heads) = s3::recording_store();
    let run = Run::from(
        s3::command(&env, &endpoint, url)
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .args(["list", "--from-remote"])
            .output()
            .unwrap(),
    );
    run.failed_with(1, url);
    let heads = heads.lock().unwrap().clone();
    assert!(
        heads
            .iter()
            .any(|h| h.contains(&format!("Credential={}/", s3::KEY_ID))),
        "{heads:?}"
    );
    // No keys anywhere: the line says where they go (object_store's own error
    // is about the cloud instance-metadata service).
    let (endpoint, _) = s3::recording_store();
    let run = Run::from(
        s3::command(&env, &endpoint, url)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .args(["list", "--from-remote"])
            .output()
            .unwrap(),
    );
    one_line(&run, 1, url);
    assert!(
        run.stderr.contains("no credentials found"),
        "{}",
        run.stderr
    );
    // The AWS SDKs' switch off for the metadata service (a cluster, where its
    // address hangs): said at once, nothing asked of the store or the service.
    let (endpoint, heads) = s3::recording_store();
    let run = Run::from(
        s3::command(&env, &endpoint, url)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["list", "--from-remote"])
            .output()
            .unwrap(),
    );
    one_line(&run, 1, url);
    assert!(
        run.stderr.contains("no credentials found for s3://bucket/")
            && run.stderr.contains("AWS_EC2_METADATA_DISABLED"),
        "{}",
        run.stderr
    );
    assert!(
        heads.lock().unwrap().is_empty(),
        "asked the store without keys"
    );
}

#[test]
fn an_inline_upload_to_a_stalling_store_keeps_the_backup_and_ends_in_bounded_time() {
    let env = Env::new();
    let stalling = s3::fake_store(None);
    let url = "s3://bucket/inline";
    let started = Instant::now();
    let run = Run::from(
        s3::command(&env, &stalling, url)
            .env("DBBACKUP_REMOTE_UPLOAD", "inline")
            .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "2")
            .arg("backup")
            .output()
            .unwrap(),
    );
    run.ok();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains("WARN") && run.stderr.contains(url),
        "{}",
        run.stderr
    );
    assert_eq!(env.backup_files().len(), 1);
    no_secret(&env, &[&run]);
}

#[test]
fn an_http_endpoint_without_aws_allow_http_names_that_variable() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let env = Env::new();
    env.run(&["backup"]).ok();
    let out: crate::common::Run = s3::command(&env, &server.endpoint, &format!("s3://{bucket}/h"))
        .env_remove("AWS_ALLOW_HTTP")
        .arg("sync")
        .output()
        .unwrap()
        .into();
    out.failed_with(2, "AWS_ALLOW_HTTP=true");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_bad_record_is_named_by_its_own_url() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/q");
    let env = Env::new();
    s3::run(&env, &server.endpoint, &url, &["backup"]).ok();
    let junk = "q/backup_20991231_000001.db.gz.meta.json";
    s3::put_object(&server.endpoint, &bucket, junk, b"{not json");
    let listed = s3::run(&env, &server.endpoint, &url, &["list", "--from-remote"]);
    listed.ok();
    assert!(
        listed
            .stderr
            .contains(&format!("s3://{bucket}/{junk}: not a restore-point record")),
        "{}",
        listed.stderr
    );
}

#[test]
fn a_store_that_stalls_mid_upload_is_reported_as_the_stalled_part_not_the_abort() {
    let Some(server) = s3::start() else {
        return;
    };
    server.bucket("slow");
    let url = "s3://slow/p";
    let env = Env::empty();
    {
        let conn = rusqlite::Connection::open(&env.db).unwrap();
        conn.execute_batch("CREATE TABLE blobs(x BLOB)").unwrap();
        for _ in 0..60 {
            conn.execute("INSERT INTO blobs SELECT randomblob(1048576)", [])
                .unwrap();
        }
    }
    env.run(&["backup"]).ok();
    let name = env.backup_files()[0].clone();
    let sync = s3::command(&env, &server.endpoint, url)
        .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "3")
        .arg("sync")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !s3::get(&server.endpoint, "/slow?uploads").contains("<UploadId>") {
        assert!(Instant::now() < deadline, "no multipart upload seen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // moto stopped, not gone: every request now waits for a reply.
    server.signal(nix::sys::signal::Signal::SIGSTOP);
    let run = Run::from(sync.wait_with_output().unwrap());
    server.signal(nix::sys::signal::Signal::SIGCONT);
    one_line(&run, 1, url);
    let error = run.stderr.lines().find(|l| l.contains("ERROR")).unwrap();
    assert!(
        error.contains(&format!("cannot upload {name}"))
            && error.contains("(PUT of part")
            && error.contains("remote_timeout_seconds (3 s)")
            && !error.contains("DELETE"),
        "{error}"
    );
}

/// T11 #3: a TERM (scancel, a time limit) in the middle of the inline upload's
/// parts: the backup is kept and the upload given up, and the run dies of
/// TERM (143) as every command does, so `backup && next` stops; it exited 0.
#[test]
fn term_during_an_inline_upload_keeps_the_backup_and_dies_of_it() {
    let Some(server) = s3::shared() else { return };
    let r = s3::Remote::incompressible(server, "inline-term", 80);
    let backup = r
        .command()
        .env("DBBACKUP_REMOTE_UPLOAD", "inline")
        .arg("backup")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !r.uploads().contains("<UploadId>") {
        assert!(Instant::now() < deadline, "no multipart upload seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(backup.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let run = Run::from(backup.wait_with_output().unwrap());
    run.stopped_by(15, "signal 15");
    assert!(run.stdout.contains("not uploaded to"), "{}", run.stdout);
    assert_eq!(r.env.backup_files().len(), 1);
    r.run(&["verify"]).ok();
}

/// T14 #9: an upload whose parts all went up but whose completion failed
/// (the store assembles the parts then; a short remote_timeout_seconds cut
/// it) did not say which request failed. It names the completion now.
#[test]
fn a_failed_completion_of_a_multipart_upload_is_named() {
    let Some(server) = s3::shared() else { return };
    let r = s3::Remote::incompressible(server, "complete", 20);
    r.run(&["backup"]).ok();
    let proxy = s3::completion_cutting_proxy(&r.endpoint);
    let sync = Run::from(
        s3::command(&r.env, &proxy, &r.url)
            .arg("sync")
            .output()
            .unwrap(),
    );
    one_line(&sync, 1, &r.url);
    assert!(
        sync.stderr.contains("(completing the multipart upload)"),
        "{}",
        sync.stderr
    );
}

/// T31 R2: a store (or a gateway before it) that answered a record's upload
/// with success and kept nothing made `sync` say "uploaded" and exit 0,
/// `check` say the newest point was on the remote, and remote retention
/// delete the one point the remote did hold.
#[test]
fn a_record_the_store_did_not_keep_is_no_upload_and_the_point_before_stays() {
    let Some(server) = s3::shared() else { return };
    let r = s3::Remote::new(server, "dropped");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let before = r.remote_names();
    assert_eq!(before.len(), 1);
    r.add_row();
    r.run(&["backup"]).ok();
    let proxy = s3::record_dropping_proxy(&r.endpoint);
    let sync = Run::from(
        s3::command(&r.env, &proxy, &r.url)
            .env("DBBACKUP_REMOTE_MAX_BACKUPS", "1")
            .arg("sync")
            .output()
            .unwrap(),
    );
    one_line(&sync, 1, &r.url);
    assert!(
        sync.stderr.contains("is not there when read back"),
        "{}",
        sync.stderr
    );
    assert!(!sync.stdout.contains("uploaded"), "{}", sync.stdout);
    assert_eq!(r.remote_names(), before);
    let check = r.run(&["check"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        s3::remote_line(&check).starts_with("FAIL"),
        "{}",
        check.stdout
    );
}

/// T31 R3: a backup damaged in the backup directory before its upload was
/// said to leave "older points kept in its place" with none on the remote.
#[test]
fn a_backup_damaged_before_its_upload_says_whether_an_older_point_is_there() {
    let Some(server) = s3::shared() else { return };
    let damage_newest = |r: &s3::Remote| {
        let path = r.env.newest_backup();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
    };
    let r = s3::Remote::new(server, "first-damaged");
    r.run(&["backup"]).ok();
    damage_newest(&r);
    r.run(&["sync"])
        .failed_with(1, "; no older point is there to take its place");
    assert!(r.remote_names().is_empty());

    let r = s3::Remote::new(server, "newest-damaged");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    r.add_row();
    r.run(&["backup"]).ok();
    damage_newest(&r);
    r.run(&["sync"])
        .failed_with(1, "; older points are kept in its place");
    assert_eq!(r.remote_names().len(), 1);
}

/// T31 R12: a sync whose read-back of its upload failed (interrupted, or the
/// store gone) said "nothing half-done was kept" while the data object stayed
/// on the store without a record. It is deleted again.
#[test]
fn a_sync_whose_read_back_fails_leaves_no_data_object_without_a_record() {
    let Some(server) = s3::shared() else { return };
    let r = s3::Remote::new(server, "readback-cut");
    r.run(&["backup"]).ok();
    let name = r.env.backup_files()[0].clone();
    let proxy = s3::read_back_cutting_proxy(&r.endpoint);
    let sync = Run::from(
        s3::command(&r.env, &proxy, &r.url)
            .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "3")
            .arg("sync")
            .output()
            .unwrap(),
    );
    sync.failed_with(1, &format!("cannot read back {name} from"));
    let head = s3::http(
        &r.endpoint,
        "HEAD",
        &format!("/{}/{}", r.bucket, r.key(&name)),
    );
    assert!(head.contains(" 404 "), "{head}");
}

/// T31 R10: a store without conditional writes answered each record's
/// upload 501; the error gave the store's words only, not that every sync
/// would fail the same way, nor why.
#[test]
fn a_store_without_conditional_writes_is_named_as_such() {
    let Some(server) = s3::shared() else { return };
    let r = s3::Remote::new(server, "no-conditional");
    r.run(&["backup"]).ok();
    let proxy = s3::conditional_write_refusing_proxy(&r.endpoint);
    let sync = Run::from(
        s3::command(&r.env, &proxy, &r.url)
            .arg("sync")
            .output()
            .unwrap(),
    );
    one_line(&sync, 1, &r.url);
    sync.failed_with(
        1,
        "the store does not support conditional writes (`If-None-Match: *`",
    );
    assert!(r.remote_names().is_empty());
}

/// T33 H4: remote retention's DELETE failed after a good upload: `sync`
/// printed no report (no "uploaded" line; `--format json` only `error`),
/// and `check` said the last upload failed. The uploads are said, the sync
/// fails with retention's error (exit 1), and the point it read back is
/// proved there.
#[test]
fn a_failed_retention_delete_keeps_the_syncs_report() {
    let Some(server) = s3::shared() else { return };
    let r = s3::Remote::new(server, "delete-cut");
    r.run(&["backup"]).ok();
    r.run(&["--remote-max-backups", "1", "sync"]).ok();
    let older = r.env.backup_files()[0].clone();
    s3::add_row(&r.env.db);
    r.run(&["backup"]).ok();
    let newer = r.env.backup_files().pop().unwrap();
    assert_ne!(older, newer);
    let proxy = s3::delete_cutting_proxy(&r.endpoint);
    let sync = Run::from(
        s3::command(&r.env, &proxy, &r.url)
            .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "3")
            .args(["--remote-max-backups", "1", "sync", "--format", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(sync.code, 1, "{}\n{}", sync.stdout, sync.stderr);
    assert!(
        sync.stderr.contains(&format!("cannot delete {older}")),
        "{}",
        sync.stderr
    );
    let json = sync.json();
    assert_eq!(json["status"], "failed", "{json}");
    assert!(json["error"].as_str().unwrap().contains(&older), "{json}");
    assert_eq!(json["uploaded"][0]["name"], newer.as_str(), "{json}");
    assert!(json["deleted"].as_array().unwrap().is_empty(), "{json}");
    // Its read-back counts: proved there (read-backs are kept per endpoint).
    let listed = Run::from(
        s3::command(&r.env, &proxy, &r.url)
            .args(["list", "--from-remote", "--format", "json"])
            .output()
            .unwrap(),
    );
    let newest = &listed.json()[0];
    assert_eq!(newest["name"], newer.as_str(), "{newest}");
    assert_eq!(newest["check"], "ok", "{newest}");
    let text = Run::from(
        s3::command(&r.env, &proxy, &r.url)
            .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "3")
            .args(["--remote-max-backups", "1", "sync"])
            .output()
            .unwrap(),
    );
    assert_eq!(text.code, 1, "{}\n{}", text.stdout, text.stderr);
    assert!(
        text.stdout.contains("0 uploaded, 1 already there"),
        "{}",
        text.stdout
    );
    // Once the store deletes again, retention is done.
    let pruned = r.run(&["--remote-max-backups", "1", "sync"]);
    pruned.reported(0, &format!("deleted {older}"));
}
