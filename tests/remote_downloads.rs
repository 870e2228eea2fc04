//! `verify --from-remote` reads every point: each object is downloaded once,
//! a base kept while the diffs on it are read (docs/remote.md).

use crate::common::s3::{self, Remote};

#[test]
fn verify_from_remote_downloads_each_object_once() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "once");
    // Two fulls, each with diffs on it: 1 full + 2 diffs, 1 full + 1 diff.
    let names = s3::names(&r.points(5, &["--diff-backups", "2"]));
    let diffs = names.iter().filter(|n| n.ends_with(".diff.gz")).count();
    assert_eq!(diffs, 3, "{names:?}");
    let (proxy, requests) = s3::recording_proxy(&r.endpoint);
    let verify: crate::common::Run = s3::command(&r.env, &proxy, &r.url)
        .args(["verify", "--from-remote"])
        .output()
        .unwrap()
        .into();
    verify.ok();
    for name in &names {
        assert!(
            verify.stdout.contains(&format!("{name}: ok")),
            "{}",
            verify.stdout
        );
    }
    let requests = requests.lock().unwrap().clone();
    for name in &names {
        let get = format!("GET /{}/{} ", r.bucket, r.key(name));
        let n = requests.iter().filter(|l| l.starts_with(&get)).count();
        assert_eq!(n, 1, "{name} downloaded {n} times: {requests:#?}");
    }
}

/// T14 #12: with an unusable TMPDIR, `verify --from-remote` said "FAILED" of
/// every point (never read) as well as naming the directory each time. Now
/// one line names the directory and TMPDIR, before anything is listed.
#[test]
fn verify_from_remote_with_an_unusable_tmpdir_is_one_line() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "tmpdir");
    r.points(2, &[]);
    let missing = r.env.path("no-such-tmp");
    let verify: crate::common::Run = r
        .command()
        .env("TMPDIR", &missing)
        .args(["verify", "--from-remote"])
        .output()
        .unwrap()
        .into();
    verify.failed_with(1, "(downloads go to TMPDIR)");
    assert!(!verify.stdout.contains("FAILED"), "{}", verify.stdout);
    assert_eq!(verify.stderr.lines().count(), 1, "{}", verify.stderr);
}
