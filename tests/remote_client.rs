//! The S3 client's input and its errors in the user's terms: an endpoint
//! with a path, credentials-file problems named with the file and what it
//! lacks, a store's refusal said as the store's answer (T9 #7, #8; T7 #14).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::Run;
use crate::common::s3::{self, Remote};

/// One line on stderr, exit `code`, holding `words`; never the secret.
fn one_line(run: &Run, code: i32, words: &str) {
    run.failed_with(code, words);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains(s3::SECRET), "{}", run.stderr);
    assert!(!run.stdout.contains(s3::SECRET), "{}", run.stdout);
}

/// T9 #7: a pasted `https://store/bucket` was prefixed to every key and gave
/// "NoSuchKey" for a list; refused, naming the path. A trailing `/` is fine.
#[test]
fn an_endpoint_with_a_path_is_refused_naming_the_path() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "t9path");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    for args in [&["list", "--from-remote"][..], &["sync"]] {
        let run = Run::from(
            s3::command(&r.env, &format!("{}/{}", r.endpoint, r.bucket), &r.url)
                .args(args)
                .output()
                .unwrap(),
        );
        one_line(
            &run,
            2,
            &format!(
                "error: AWS_ENDPOINT_URL {}/{} holds a path (/{}): give the store's address only ({}); the bucket goes in remote: s3://BUCKET/PREFIX",
                r.endpoint, r.bucket, r.bucket, r.endpoint
            ),
        );
    }
    let slash = Run::from(
        s3::command(&r.env, &format!("{}/", r.endpoint), &r.url)
            .args(["list", "--from-remote"])
            .output()
            .unwrap(),
    );
    slash.ok();
    assert_eq!(r.remote_names(), r.env.backup_files());
}

/// `sync` with the keys only where `file` (None: `AWS_SHARED_CREDENTIALS_FILE`
/// unset, HOME has none) and `profile` say.
fn sync_with_file(r: &Remote, file: Option<&Path>, profile: Option<&str>) -> Run {
    let mut command = s3::command(&r.env, &r.endpoint, &r.url);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if let Some(file) = file {
        command.env("AWS_SHARED_CREDENTIALS_FILE", file);
    }
    if let Some(profile) = profile {
        command.env("AWS_PROFILE", profile);
    }
    Run::from(command.arg("sync").output().unwrap())
}

/// T9 #8: the file in use and what it lacks are named, and a profile the
/// file lacks or holds half of is a setting error (exit 2) whether it is
/// `[default]` or named; no file and no keys at all: "no credentials found".
#[test]
fn credentials_file_problems_name_the_file_and_what_it_lacks() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "t9creds");
    r.run(&["backup"]).ok();
    let missing = r.env.path("nonexist");
    let named = format!("AWS_SHARED_CREDENTIALS_FILE={}", missing.display());
    one_line(
        &sync_with_file(&r, Some(&missing), None),
        2,
        &format!("error: {named} does not exist"),
    );
    one_line(
        &sync_with_file(&r, Some(&missing), Some("nosuch")),
        2,
        &format!("error: AWS_PROFILE 'nosuch': {named} does not exist"),
    );
    // Outside the test's directory (nothing there may hold the secret).
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("credentials");
    let named = format!("AWS_SHARED_CREDENTIALS_FILE={}", file.display());
    fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = {}\n\n[half]\naws_secret_access_key = {}\n",
            s3::KEY_ID,
            s3::SECRET
        ),
    )
    .unwrap();
    one_line(
        &sync_with_file(&r, Some(&file), None),
        2,
        &format!("error: [default] in {named} has aws_access_key_id but no aws_secret_access_key"),
    );
    one_line(
        &sync_with_file(&r, Some(&file), Some("half")),
        2,
        &format!(
            "error: AWS_PROFILE 'half': [half] in {named} has aws_secret_access_key but no aws_access_key_id"
        ),
    );
    one_line(
        &sync_with_file(&r, Some(&file), Some("nosuch")),
        2,
        &format!("error: AWS_PROFILE 'nosuch': {named} has no [nosuch] section"),
    );
    // ~/.aws/credentials: named by its path.
    let aws = home.path().join(".aws");
    fs::create_dir(&aws).unwrap();
    fs::write(aws.join("credentials"), "[centre]\naws_access_key_id = A\n").unwrap();
    let run = Run::from(
        s3::command(&r.env, &r.endpoint, &r.url)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("HOME", home.path())
            // With the metadata service allowed, a missing [default] is passed
            // over as the SDKs do (an instance role may give the keys).
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg("sync")
            .output()
            .unwrap(),
    );
    one_line(
        &run,
        2,
        &format!(
            "error: {} has no [default] section",
            aws.join("credentials").display()
        ),
    );
    // The metadata service allowed (here at a closed port): the missing
    // [default] is passed over to it, as the SDKs do, and its failure said.
    let run = Run::from(
        s3::command(&r.env, &r.endpoint, &r.url)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_EC2_METADATA_DISABLED")
            .env("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
            .env("HOME", home.path())
            .arg("sync")
            .output()
            .unwrap(),
    );
    one_line(
        &run,
        1,
        "the cloud instance-metadata service, asked instead",
    );
    // No file and no keys at all: the message as it was.
    one_line(
        &sync_with_file(&r, None, None),
        1,
        "no credentials found for",
    );
    assert!(r.remote_names().is_empty());
}

/// T9 #8: a credentials file group or others can read: one WARN naming it
/// (as ssh does), the keys still used; mode 600: not a word.
#[test]
fn a_credentials_file_others_can_read_is_one_warning_not_a_refusal() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "t9mode");
    r.run(&["backup"]).ok();
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("credentials");
    fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s3::KEY_ID,
            s3::SECRET
        ),
    )
    .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let open = sync_with_file(&r, Some(&file), None);
    open.ok();
    let warnings: Vec<&str> = open.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{}", open.stderr);
    assert!(
        warnings[0].contains(&format!(
            "{} is open to others than its owner (mode 644)",
            file.display()
        )) && warnings[0].contains("chmod 600"),
        "{}",
        open.stderr
    );
    assert!(!open.stderr.contains(s3::SECRET) && !open.stdout.contains(s3::SECRET));
    assert_eq!(r.remote_names(), r.env.backup_files());
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let private = sync_with_file(&r, Some(&file), None);
    private.ok();
    assert!(!private.stderr.contains("WARN"), "{}", private.stderr);
}

/// A store's refusal is said as the store's answer (status, S3 code and
/// message) after the remote: not the request's URL with its query and
/// timing, which `-v` keeps.
#[test]
fn a_store_error_is_the_stores_answer_not_the_request() {
    let Some(server) = s3::shared() else { return };
    let env = crate::common::Env::new();
    let url = "s3://no-such-bucket-t9/p";
    let run = s3::run(&env, &server.endpoint, url, &["list", "--from-remote"]);
    one_line(&run, 1, url);
    assert!(
        run.stderr.trim_end().ends_with(
            ": cannot list s3://no-such-bucket-t9/p: the store answered 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        ),
        "{}",
        run.stderr
    );
    let verbose = s3::run(
        &env,
        &server.endpoint,
        url,
        &["-v", "list", "--from-remote"],
    );
    assert!(
        verbose
            .stderr
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("list-type=2")),
        "{}",
        verbose.stderr
    );
    // No answer at all: why, without the request.
    let closed = format!("http://127.0.0.1:{}", s3::free_port());
    let run = s3::run(&env, &closed, url, &["list", "--from-remote"]);
    one_line(&run, 1, url);
    assert!(
        run.stderr.trim_end().ends_with(&format!(
            "cannot list {url}: cannot connect to the store at {closed} (AWS_ENDPOINT_URL): Connection refused (os error 111)"
        )),
        "the endpoint tried is named (T14 #2): {}",
        run.stderr
    );
    // https:// for a plain-http store: said so, with the fix.
    let tls = server.endpoint.replace("http://", "https://");
    let run = s3::run(&env, &tls, url, &["list", "--from-remote"]);
    one_line(&run, 1, url);
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to the store at {tls} (AWS_ENDPOINT_URL)"
        )) && run
            .stderr
            .contains("use an http:// endpoint and AWS_ALLOW_HTTP=true"),
        "{}",
        run.stderr
    );
}

/// T7 #14: a diff whose base is damaged at the store is "its base … on the
/// remote is damaged" (not "not on the remote"); before any read-back, a
/// diff beside an `unverified` base is `unverified` too.
#[test]
fn a_diff_is_only_as_restorable_as_its_base_on_the_remote() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "t7base");
    r.run(&["backup"]).ok();
    r.add_row();
    r.run(&["--diff-backups", "1", "backup"]).ok();
    let names = r.env.backup_files();
    let (full, diff) = (names[0].clone(), names[1].clone());
    assert!(diff.ends_with(".diff.gz"), "{names:?}");
    r.run(&["sync"]).ok();
    let check = |name: &str| r.checks().into_iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!((check(&full), check(&diff)), ("ok".into(), "ok".into()));
    r.corrupt(&full);
    assert_eq!(
        (check(&full), check(&diff)),
        ("unverified".into(), "unverified".into())
    );
    assert_eq!(r.run(&["verify", "--from-remote"]).code, 1);
    assert_eq!(
        (check(&full), check(&diff)),
        ("damaged".into(), "no-base".into())
    );
    let listed = r.run(&["list", "--from-remote"]);
    listed.ok();
    assert!(
        listed.stdout.contains(&format!(
            "note: {diff} cannot be restored: its base {full} on the remote is damaged"
        )),
        "{}",
        listed.stdout
    );
}
