//! The remote's points stay each database's and in their own order: a name taken
//! by another database is never replaced, a point made later is newer, and
//! `check` judges the remote it is given (docs/remote.md).

use std::fs;

use crate::common::s3::{self, Remote, add_row};
use crate::common::{Env, content_digest};

#[test]
fn two_databases_on_one_prefix_never_replace_each_others_point() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/same");
    let (a, b) = (Env::new(), Env::empty());
    crate::common::make_ledger_db(&b.db, 300, false);
    let run = |env: &Env, args: &[&str]| s3::run(env, &server.endpoint, &url, args);
    run(&a, &["backup"]).ok();
    run(&b, &["backup"]).ok();
    // Both made in the same second: the same name (b's, the later: a name
    // is never earlier than its backup, `store::copies`).
    let name = b.backup_files()[0].clone();
    let a_file = a.backups.join(&a.backup_files()[0]);
    if a_file.file_name().unwrap() != name.as_str() {
        crate::common::rename_backup(&a_file, &a.backups.join(&name));
    }
    run(&a, &["sync"]).ok();
    let sync = run(&b, &["sync"]);
    sync.failed_with(1, &name);
    assert!(
        sync.stderr
            .contains("give each database its own remote prefix")
            && sync
                .stderr
                .contains(&a.db.canonicalize().unwrap().display().to_string()),
        "{}",
        sync.stderr
    );
    run(&b, &["check"]).reported(1, "remote");
    run(&a, &["check"]).ok();
    // a's point is whole on the remote: restored after a scratch purge.
    let want = content_digest(&a.db);
    fs::remove_dir_all(&a.backups).unwrap();
    fs::remove_file(&a.db).unwrap();
    run(&a, &["restore", "latest"]).ok();
    assert_eq!(content_digest(&a.db), want);
}

#[test]
fn after_a_scratch_purge_a_point_uploaded_later_is_the_remotes_latest_and_kept() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/p");
    let env = Env::new();
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    for _ in 0..3 {
        add_row(&env.db);
        run(&["backup"]).ok();
    }
    run(&["sync"]).ok();
    fs::remove_dir_all(&env.backups).unwrap();
    fs::remove_file(&env.db).unwrap();
    run(&["restore", "latest"]).ok();
    add_row(&env.db);
    let want = content_digest(&env.db);
    // Not the second of an old point's name (that would be refused).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run(&["backup"]).ok();
    let new = env.backup_files().last().unwrap().clone();
    let sync = run(&["--remote-max-backups", "1", "sync", "--format", "json"]);
    sync.ok();
    // The new point stays; the three older ones go.
    assert_eq!(
        sync.json()["deleted"].as_array().unwrap().len(),
        3,
        "{}",
        sync.stdout
    );
    let listed = run(&["list", "--from-remote", "--format", "json"]);
    listed.ok();
    let names: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, [new]);
    let target = env.path("fresh.db");
    run(&[
        "restore",
        "latest",
        "--from-remote",
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(content_digest(&target), want);
}

fn remote_criterion(run: &crate::common::Run) -> serde_json::Value {
    run.json()["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "remote")
        .cloned()
        .unwrap_or_else(|| panic!("{}", run.stdout))
}

#[test]
fn check_judges_the_configured_remote_not_the_one_last_uploaded_to() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let (here, elsewhere) = (
        format!("s3://{bucket}/here"),
        format!("s3://{bucket}/elsewhere"),
    );
    let env = Env::new();
    s3::run(&env, &server.endpoint, &here, &["backup"]).ok();
    s3::run(&env, &server.endpoint, &here, &["sync"]).ok();
    let json = ["check", "--format", "json"];
    let on_here = s3::run(&env, &server.endpoint, &here, &json);
    assert_eq!(remote_criterion(&on_here)["ok"], true);
    // Nothing was ever uploaded to `elsewhere`.
    let other = s3::run(&env, &server.endpoint, &elsewhere, &json);
    let detail = remote_criterion(&other)["detail"].to_string();
    assert!(detail.contains("no upload recorded yet"), "{detail}");
    s3::check_when_stale(&env, &server.endpoint, &elsewhere).reported(1, "not on");

    // A failed upload to a remote since abandoned is not this remote's failure.
    let closed = format!("http://127.0.0.1:{}", s3::free_port());
    s3::command(&env, &closed, &here)
        .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "2")
        .arg("sync")
        .output()
        .unwrap();
    s3::run(&env, &server.endpoint, &here, &["check"]).reported(1, "failed");
    s3::run(&env, &server.endpoint, &elsewhere, &["check"]).ok();
}

#[test]
fn a_missing_or_truncated_data_object_is_named_by_verify_list_and_restore() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/gone");
    let env = Env::new();
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    for _ in 0..3 {
        add_row(&env.db);
        run(&["backup"]).ok();
    }
    run(&["sync"]).ok();
    let names = env.backup_files();
    // Behind the tool's back: the newest object deleted, the middle one emptied.
    s3::delete_object(&server.endpoint, &bucket, &format!("gone/{}", names[2]));
    s3::put_object(
        &server.endpoint,
        &bucket,
        &format!("gone/{}", names[1]),
        b"",
    );

    let verify = run(&["verify", "--from-remote"]);
    assert_eq!(verify.code, 1, "{}{}", verify.stdout, verify.stderr);
    let said = format!("{}{}", verify.stdout, verify.stderr);
    for name in &names[1..] {
        assert!(
            said.lines()
                .any(|l| l.contains("FAILED") && l.contains(name.as_str())),
            "{said}"
        );
    }

    let listed = run(&["list", "--from-remote", "--format", "json"]);
    listed.ok();
    let rows = listed.json().as_array().unwrap().clone();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        let broken = row["name"] != names[0].as_str();
        assert_eq!(row["check"] == "damaged", broken, "{row}");
    }

    let target = env.path("restored.db");
    let restore = run(&[
        "restore",
        "latest",
        "--from-remote",
        "--target",
        target.to_str().unwrap(),
    ]);
    restore.ok();
    assert!(
        restore
            .stderr
            .contains(&format!("passed over newer {}", names[2]))
            && restore.stderr.contains("missing"),
        "{}",
        restore.stderr
    );
    assert!(restore.stdout.contains(&names[0]) || restore.stderr.contains(&names[0]));
}

#[test]
fn a_restore_from_the_remote_removes_the_staging_left_by_a_killed_one() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/stage");
    let env = Env::new();
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    run(&["backup"]).ok();
    run(&["sync"]).ok();
    // What `kill -9` mid-download leaves: the staging directory of a process
    // now dead, and one of a process still alive (this one), which stays.
    let host = String::from_utf8(
        std::process::Command::new("hostname")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .replace('-', "_");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let out = env.path("out");
    let stage = |pid: u32| out.join(format!(".dbbackup-remote-{host}-{pid}-0"));
    for pid in [dead, std::process::id()] {
        fs::create_dir_all(stage(pid)).unwrap();
        fs::write(stage(pid).join("backup_x.db.gz"), vec![0u8; 4096]).unwrap();
    }
    let target = out.join("restored.db");
    run(&[
        "restore",
        "latest",
        "--from-remote",
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert!(!stage(dead).exists());
    assert!(stage(std::process::id()).exists());
    assert!(target.exists());
}

fn remote_names(run: &crate::common::Run) -> Vec<String> {
    run.ok();
    run.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// Backups 1..4 of `env` (each with one more row); their names and the
/// content of the database at each.
fn four_backups(env: &Env, run: &dyn Fn(&[&str]) -> crate::common::Run) -> Vec<String> {
    let mut digests = Vec::new();
    for _ in 0..4 {
        add_row(&env.db);
        run(&["backup"]).ok();
        digests.push(content_digest(&env.db));
    }
    digests
}

fn restored_latest(env: &Env, run: &dyn Fn(&[&str]) -> crate::common::Run, n: u32) -> String {
    let target = env.path(&format!("latest{n}.db"));
    run(&[
        "restore",
        "latest",
        "--from-remote",
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    content_digest(&target)
}

#[test]
fn an_old_point_uploaded_again_keeps_its_place_below_the_newer_ones() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/raise");
    let env = Env::new();
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    let digests = four_backups(&env, &run);
    let names = env.backup_files();
    run(&["--remote-max-backups", "2", "sync"]).ok();
    // Raising remote_max_backups uploads backups 1 and 2 now, after 3 and 4.
    run(&["--remote-max-backups", "4", "sync"]).ok();
    let listed = remote_names(&run(&["list", "--from-remote", "--format", "json"]));
    let mut newest_first = names.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    assert_eq!(restored_latest(&env, &run, 1), digests[3]);
    // Retention keeps the two newest, not the two uploaded last.
    run(&["--remote-max-backups", "2", "sync"]).ok();
    let mut kept = remote_names(&run(&["list", "--from-remote", "--format", "json"]));
    kept.sort();
    assert_eq!(kept, names[2..]);
    assert_eq!(restored_latest(&env, &run, 2), digests[3]);
}

#[test]
fn an_old_point_whose_object_or_record_was_deleted_is_uploaded_again_in_its_place() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/lost");
    let env = Env::new();
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    let digests = four_backups(&env, &run);
    let names = env.backup_files();
    run(&["sync"]).ok();
    // Behind the tool's back: the oldest data object, the second's record.
    s3::delete_object(&server.endpoint, &bucket, &format!("lost/{}", names[0]));
    s3::delete_object(
        &server.endpoint,
        &bucket,
        &format!("lost/{}.meta.json", names[1]),
    );
    let sync = run(&["sync", "--format", "json"]);
    sync.ok();
    assert_eq!(
        sync.json()["uploaded"].as_array().unwrap().len(),
        2,
        "{}",
        sync.stdout
    );
    assert_eq!(restored_latest(&env, &run, 1), digests[3]);
    run(&["--remote-max-backups", "1", "sync"]).ok();
    let kept = remote_names(&run(&["list", "--from-remote", "--format", "json"]));
    assert_eq!(kept, names[3..]);
    assert_eq!(restored_latest(&env, &run, 2), digests[3]);
}

#[test]
fn two_syncs_of_one_database_at_once_both_succeed() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let env = Env::new();
    for _ in 0..3 {
        add_row(&env.db);
        s3::run(
            &env,
            &server.endpoint,
            &format!("s3://{bucket}/x"),
            &["backup"],
        )
        .ok();
    }
    // A new prefix each round: both syncs upload every point.
    for round in 0..6 {
        let url = format!("s3://{bucket}/both{round}");
        let spawn = || {
            s3::command(&env, &server.endpoint, &url)
                .arg("sync")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        s3::run(&env, &server.endpoint, &url, &["check"]).ok();
    }
}

#[test]
fn an_old_point_an_earlier_version_made_the_newest_is_moved_back_below_the_newer_ones() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "mend");
    let run = |args: &[&str]| r.run(args);
    let digests = four_backups(&r.env, &run);
    let names = r.env.backup_files();
    run(&["sync"]).ok();
    // What an earlier version left after uploading the oldest point again:
    // the highest number under the prefix, in a record as that version wrote it.
    let mut record = r.record(&names[0]);
    record["remote_seq"] = serde_json::json!(99);
    r.put_old_record(&names[0], record);
    // Read below the newer points of its directory at once (T14 #1).
    assert_eq!(restored_latest(&r.env, &run, 1), digests[3]);

    let sync = run(&["sync"]);
    sync.ok();
    assert!(
        sync.stdout.contains(&format!("moved {}", names[0])),
        "{}",
        sync.stdout
    );
    assert_eq!(restored_latest(&r.env, &run, 2), digests[3]);
    run(&["--remote-max-backups", "2", "sync"]).ok();
    let mut kept = remote_names(&run(&["list", "--from-remote", "--format", "json"]));
    kept.sort();
    assert_eq!(kept, names[2..]);
}

#[test]
fn a_data_object_written_again_before_the_record_is_not_proved_and_the_next_sync_repairs_it() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/race");
    let env = Env::new();
    s3::run(&env, &server.endpoint, &url, &["backup"]).ok();
    let name = env.backup_files()[0].clone();
    let want = content_digest(&env.db);
    // Another database's sync of the same name, in the instant between this
    // sync's read-back and its record: other bytes under the name.
    let (endpoint, key, bucket2) = (
        server.endpoint.clone(),
        format!("race/{name}"),
        bucket.clone(),
    );
    let proxy = s3::racing_proxy(&server.endpoint, move || {
        s3::corrupt_same_size(&endpoint, &bucket2, &key);
    });
    let sync = s3::run(&env, &proxy, &url, &["sync"]);
    sync.failed_with(1, "written again while it was uploaded");
    s3::run(&env, &server.endpoint, &url, &["check"]).reported(1, "remote");

    let repair = s3::run(&env, &server.endpoint, &url, &["sync"]);
    repair.ok();
    assert!(
        repair.stdout.contains(&format!("repaired {name}")),
        "{}",
        repair.stdout
    );
    s3::run(&env, &server.endpoint, &url, &["check"]).ok();
    let target = env.path("copy.db");
    s3::run(
        &env,
        &server.endpoint,
        &url,
        &[
            "restore",
            "latest",
            "--from-remote",
            "--target",
            target.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(content_digest(&target), want);
}

#[test]
fn every_name_clash_on_a_shared_prefix_is_named_and_the_other_points_still_go_up() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/shared");
    let (a, b) = (Env::new(), Env::empty());
    crate::common::make_ledger_db(&b.db, 300, false);
    let run = |env: &Env, args: &[&str]| {
        let args = [&["--diff-backups", "0"][..], args].concat();
        s3::run(env, &server.endpoint, &url, &args)
    };
    for _ in 0..3 {
        add_row(&b.db);
        run(&b, &["backup"]).ok();
    }
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        add_row(&a.db);
        run(&a, &["backup"]).ok();
    }
    // b's two oldest named as a's two (as if made in their seconds; a name
    // is never earlier than its backup, `store::copies`): the same names.
    let taken = a.backup_files();
    let mine = b.backup_files();
    for (theirs, own) in taken.iter().zip(&mine) {
        crate::common::rename_backup(&b.backups.join(own), &b.backups.join(theirs));
    }
    let free = mine[2].clone();
    assert!(!taken.contains(&free), "{taken:?} {free}");
    run(&a, &["sync"]).ok();
    let sync = run(&b, &["sync"]);
    sync.failed_with(1, &taken[0]);
    assert!(sync.stderr.contains(&taken[1]), "{}", sync.stderr);
    assert!(sync.stdout.contains("1 uploaded"), "{}", sync.stdout);
    let listed = run(&b, &["list", "--from-remote", "--format", "json"]);
    listed.ok();
    let names: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&free), "{names:?}");
}

/// One flipped bit in a record at the store (the oldest point's `remote_seq`
/// 1 -> 9) would make it the remote's newest: `restore latest --from-remote`
/// restored old data and retention deleted the newer points by that order.
/// The record carries the SHA-256 of its own bytes: it is not a record then.
#[test]
fn a_flipped_bit_in_a_stored_record_never_reorders_the_remote() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/flip");
    let env = Env::new();
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    let digests = four_backups(&env, &run);
    let names = env.backup_files();
    run(&["sync"]).ok();
    let key = format!("flip/{}.meta.json", names[0]);
    let mut bytes = s3::object(&server.endpoint, &bucket, &key);
    let at = bytes
        .windows(14)
        .position(|w| w == b"\"remote_seq\":1")
        .expect("the oldest point's remote_seq is 1")
        + 13;
    bytes[at] ^= 0x08; // '1' -> '9'
    s3::put_object(&server.endpoint, &bucket, &key, &bytes);

    assert_eq!(restored_latest(&env, &run, 1), digests[3]);
    // Not a record: left out of the order, never counted; `sync` fails
    // naming it (docs/remote.md; it said WARN and exit 0 until trial 7).
    let sync = run(&["--remote-max-backups", "2", "sync"]);
    sync.failed_with(1, &format!("s3://{bucket}/{key} ("));
    assert!(
        sync.stderr.contains("record_sha256 does not match"),
        "{}",
        sync.stderr
    );
    assert_eq!(restored_latest(&env, &run, 2), digests[3]);
    let mut kept = remote_names(&run(&["list", "--from-remote", "--format", "json"]));
    kept.sort();
    assert!(
        kept.ends_with(&names[2..]),
        "the newest points stay: {kept:?}"
    );
}

/// `list --remote URL` and `verify --remote URL`, as the spec spells them, act
/// on that remote: they listed and verified the backup directory, and
/// `verify --remote s3://nosuchbucket/x` said ok without asking any store.
#[test]
fn list_and_verify_given_a_remote_act_on_the_remote() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/given");
    let env = Env::new();
    let run = |remote: &str, args: &[&str]| s3::run(&env, &server.endpoint, remote, args);
    run(&url, &["backup"]).ok();
    run(&url, &["sync"]).ok();
    add_row(&env.db);
    run(&url, &["backup"]).ok();
    // Configured: an empty prefix; given on the command line: the synced one.
    let empty = format!("s3://{bucket}/empty");
    let listed = remote_names(&run(
        &empty,
        &["list", "--remote", &url, "--format", "json"],
    ));
    assert_eq!(listed, env.backup_files()[..1], "the remote's one point");
    run(&empty, &["verify", "--remote", &url]).ok();
    let missing = run(
        &empty,
        &["verify", "--remote", "s3://no-such-bucket-here/x"],
    );
    missing.failed_with(1, "no-such-bucket-here");
}

/// T18 #7: after a scratch purge with the mirror out of reach at the first
/// backup (the new numbering begun then), a first `sync` to an empty prefix
/// uploads the mirror's older points and the new one: the new one is the
/// remote's latest, not the old point with the higher local number.
#[test]
fn a_first_sync_after_a_purge_ranks_a_mirrors_older_points_below_the_new_one() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/p");
    let env = Env::new();
    fs::write(env.path("dbbackup.yaml"), "mirror_dirs: [m1]\n").unwrap();
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    for _ in 0..3 {
        add_row(&env.db);
        run(&["backup"]).ok();
    }
    let (mirror, away) = (env.path("m1"), env.path("m1.away"));
    // The purge; the mirror's filesystem not mounted at the next backup.
    fs::remove_dir_all(&env.backups).unwrap();
    fs::rename(&mirror, &away).unwrap();
    fs::write(&mirror, "not mounted").unwrap();
    add_row(&env.db);
    let want = content_digest(&env.db);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run(&["backup"]).failed_with(1, "m1");
    let new = env.backup_files();
    assert_eq!(new.len(), 1, "{new:?}");
    fs::remove_file(&mirror).unwrap();
    fs::rename(&away, &mirror).unwrap();
    run(&["sync"]).ok();
    let listed = run(&["list", "--from-remote", "--format", "json"]);
    listed.ok();
    assert_eq!(
        listed.json()[0]["name"],
        new[0].as_str(),
        "{}",
        listed.stdout
    );
    run(&["restore", "latest", "--from-remote", "--target", "got.db"]).ok();
    assert_eq!(content_digest(&env.path("got.db")), want);
}

/// Review of T18 #7: a backup made by a version that records no numbering
/// after one that does (a job pinned to an older module) counts, on the
/// remote as here, in the numbering begun before it: newer than the point
/// before it, however the two share a publication number there.
#[test]
fn a_point_of_a_version_without_numberings_keeps_its_place_on_the_remote() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/p");
    let env = Env::new();
    let run = |args: &[&str]| s3::run(&env, &server.endpoint, &url, args);
    add_row(&env.db);
    run(&["backup"]).ok();
    add_row(&env.db);
    let want = content_digest(&env.db);
    run(&["backup"]).ok();
    let newer = env.backup_files().pop().unwrap();
    crate::common::rewrite_meta(&env.backups.join(&newer), |meta| {
        meta.numbering_since = None;
    });
    run(&["sync"]).ok();
    let listed = run(&["list", "--from-remote", "--format", "json"]);
    listed.ok();
    assert_eq!(
        listed.json()[0]["name"],
        newer.as_str(),
        "{}",
        listed.stdout
    );
    run(&["restore", "latest", "--from-remote", "--target", "got.db"]).ok();
    assert_eq!(content_digest(&env.path("got.db")), want);
}

/// T27b F14: on a prefix two databases share, `verify --from-remote latest`
/// reads this database's newest point, not the other's newer one.
#[test]
fn verify_from_remote_latest_is_this_databases_newest() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/shared");
    let (a, b) = (Env::new(), Env::empty());
    crate::common::make_ledger_db(&b.db, 300, false);
    let run = |env: &Env, args: &[&str]| s3::run(env, &server.endpoint, &url, args);
    run(&a, &["backup"]).ok();
    let ours = a.backup_files().pop().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run(&b, &["backup"]).ok();
    let theirs = b.backup_files().pop().unwrap();
    run(&a, &["sync"]).ok();
    run(&b, &["sync"]).ok();
    let verify = run(&a, &["verify", "--from-remote", "latest"]);
    verify.ok();
    assert!(
        verify.stdout.contains(&ours) && !verify.stdout.contains(&theirs),
        "{}",
        verify.stdout
    );
}
