//! A first `sync` that is stopped part-way (its cron window, a kill, a lost
//! network) has put the newest restore point on the remote, not the oldest:
//! uploads go newest first, each diff's base before it (docs/remote.md).

use crate::common::content_digest;
use crate::common::s3::{self, Remote};

#[test]
fn a_first_sync_cut_off_after_two_points_has_put_up_the_newest_and_its_base() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "cut");
    // A full, then two diffs on it: the newest needs the full.
    let mut digests = Vec::new();
    for _ in 0..3 {
        r.add_row();
        r.run(&["--diff-backups", "2", "backup"]).ok();
        digests.push(content_digest(&r.env.db));
    }
    let names = r.env.backup_files();
    assert!(names[2].ends_with(".diff.gz"), "{names:?}");
    // The network is lost once two points are recorded on the store.
    let proxy = s3::cutting_proxy(&r.endpoint, 2);
    let cut: crate::common::Run = s3::command(&r.env, &proxy, &r.url)
        .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "3")
        .arg("sync")
        .output()
        .unwrap()
        .into();
    assert_eq!(cut.code, 1, "{}\n{}", cut.stdout, cut.stderr);
    let mut want = vec![names[0].clone(), names[2].clone()];
    want.sort();
    assert_eq!(r.remote_names(), want);
    let target = r.env.path("from-remote.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), digests[2]);

    // The next sync uploads the rest, below the newest.
    let sync = r.run(&["sync", "--format", "json"]);
    sync.ok();
    assert_eq!(sync.json()["uploaded"][0]["name"], names[1].as_str());
    assert_eq!(r.remote_names(), names);
    std::fs::remove_file(&target).unwrap();
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), digests[2]);
}
