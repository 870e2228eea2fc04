//! S3 trial T14: points whose remote number ranks them above newer backups
//! of their own backup directory (copied in from another prefix, or an
//! unsealed record changed at the store), and a newer name whose record is
//! another point's.

use crate::common::s3::{self, Remote};
use crate::common::{Run, content_digest};

fn with(r: &Remote, url: &str, args: &[&str]) -> Run {
    r.command()
        .env("DBBACKUP_REMOTE", url)
        .env("DBBACKUP_MAX_BACKUPS", "2")
        .env("DBBACKUP_REMOTE_MAX_BACKUPS", "10")
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// Invert the byte at `at` of the file at `path`.
fn flip_byte(path: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// `restore latest --from-remote --target TARGET` from `url`.
fn restore_latest_into(r: &Remote, url: &str, target: &std::path::Path) -> Run {
    with(
        r,
        url,
        &[
            "restore",
            "latest",
            "--from-remote",
            "--target",
            target.to_str().unwrap(),
        ],
    )
}

/// T14 #14: the remote moved to a new prefix, and an old point copied over
/// from the old prefix (a valid, sealed record numbered there) ranked above
/// every newer point: after a scratch purge `restore latest` took the older
/// data, exit 0. It is now read below the newer points of its directory, and
/// a warning names it.
#[test]
fn a_point_copied_from_another_prefix_does_not_become_the_newest() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "old");
    let new = format!("s3://{}/new", r.bucket);
    let mut names = Vec::new();
    for _ in 0..5 {
        r.add_row();
        with(&r, &r.url, &["backup"]).ok();
        with(&r, &r.url, &["sync"]).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
    }
    for _ in 0..2 {
        r.add_row();
        with(&r, &new, &["backup"]).ok();
        with(&r, &new, &["sync"]).ok();
    }
    let newest = content_digest(&r.env.db);
    let copied = &names[3];
    for object in [copied.clone(), format!("{copied}.meta.json")] {
        let bytes = s3::object(&r.endpoint, &r.bucket, &format!("old/{object}"));
        s3::put_object(&r.endpoint, &r.bucket, &format!("new/{object}"), &bytes);
    }
    std::fs::remove_dir_all(&r.env.backups).unwrap();
    let target = r.env.path("latest.db");
    let restore = restore_latest_into(&r, &new, &target);
    restore.ok();
    assert_eq!(content_digest(&target), newest, "{}", restore.stderr);
    assert!(
        restore
            .stderr
            .contains(&format!("{copied} on {new} is numbered above ")),
        "{}",
        restore.stderr
    );
}

/// T14 #1: an unsealed (format 1) record of the oldest point changed at the
/// store to a high number, its point no longer in the backup directory:
/// `restore latest --from-remote` took it, and no sync set it right.
#[test]
fn an_old_format_record_numbered_above_newer_points_is_read_below_them() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "forged");
    let mut names = Vec::new();
    for _ in 0..3 {
        r.add_row();
        with(&r, &r.url, &["backup"]).ok();
        with(&r, &r.url, &["sync"]).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
    }
    let newest = content_digest(&r.env.db);
    let oldest = &names[0];
    assert!(!r.env.backup_files().contains(oldest), "pruned locally");
    let mut record = r.record(oldest);
    record["remote_seq"] = 5000.into();
    record.as_object_mut().unwrap().remove("from");
    r.put_old_record(oldest, record);
    let sync = with(&r, &r.url, &["sync"]);
    sync.ok();
    assert!(
        sync.stdout
            .contains(&format!("moved {oldest} below the newer points")),
        "{}",
        sync.stdout
    );
    // Written again at the store with the number it is read with, sealed.
    let written = r.record(oldest);
    assert!(written["remote_seq"].as_u64().unwrap() < 5000, "{written}");
    assert_eq!(written["format"], 2, "{written}");
    let target = r.env.path("latest.db");
    let restore = r.restore_from_remote("latest", &target);
    restore.ok();
    assert_eq!(content_digest(&target), newest, "{}", restore.stderr);
    let listed = r.listed();
    assert_ne!(listed[0]["name"], oldest.as_str(), "{listed:?}");
}

/// T14 #6: the newest name's record replaced by an older point's record:
/// `restore latest --from-remote` restored the point below it without naming
/// the newest name it passed over (`list` called it damaged).
#[test]
fn restore_latest_names_a_newer_point_whose_record_is_another_points() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "copied-record");
    let names = s3::names(&r.points(3, &[]));
    let older_record = r.object(&format!("{}.meta.json", names[0]));
    r.put(&format!("{}.meta.json", names[2]), &older_record);
    let target = r.env.path("latest.db");
    let restore = r.restore_from_remote("latest", &target);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!("restored {}", names[1])),
        "{}",
        restore.stdout
    );
    assert!(
        restore.stderr.contains(&format!(
            "passed over newer {} on {}: its record",
            names[2], r.url
        )),
        "{}",
        restore.stderr
    );
}

/// T14 #10: with `remote_upload: inline`, the SLURM hooks made their backups
/// and said nothing of the upload they never make (by design); a user who set
/// `inline` for a job had no sign that nothing went up. They say so now.
#[test]
fn the_hooks_say_they_do_not_upload_with_remote_upload_inline() {
    let env = crate::common::Env::new();
    let hook = |args: &[&str]| -> Run {
        env.command()
            .env("DBBACKUP_REMOTE", "s3://bkt/hooks")
            .env("DBBACKUP_REMOTE_UPLOAD", "inline")
            .env("SLURM_JOB_ID", "7700")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let note = "not uploaded to s3://bkt/hooks: the SLURM hooks never upload";
    let pre = hook(&["pre-job"]);
    pre.ok();
    assert!(pre.stdout.contains(note), "{}", pre.stdout);
    crate::common::s3::add_row(&env.db);
    let post = hook(&["post-job", "--status", "0"]);
    post.ok();
    assert!(post.stdout.contains(note), "{}", post.stdout);
    // Nothing made, nothing to say.
    let again = hook(&["post-job", "--status", "0"]);
    again.ok();
    assert!(!again.stdout.contains(note), "{}", again.stdout);
}

/// T16 #1: after a scratch purge (local numbers start again at 1), an old
/// point copied in from the previous prefix ranked above the backup made
/// since, which is numbered lower and not comparable by the local number:
/// list, sync and check said OK and `restore latest` restored the older
/// data. `sync` numbers the backup directory's newest point above it again.
/// A scratch purge between two prefixes, `after` backups synced to the new
/// one, and then the old prefix's newest point copied into the new one (as
/// `aws s3 cp --recursive` would): the new prefix's URL, the copied point,
/// the purged directory's newest backup and the database's content when it
/// was made.
fn purged_then_copied(r: &Remote, after: usize) -> (String, String, String, String) {
    let new = format!("s3://{}/after", r.bucket);
    for _ in 0..3 {
        r.add_row();
        with(r, &r.url, &["backup"]).ok();
        with(r, &r.url, &["sync"]).ok();
    }
    let old = r.env.backup_files().last().unwrap().clone();
    std::fs::remove_dir_all(&r.env.backups).unwrap();
    for _ in 0..after {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        r.add_row();
        with(r, &new, &["backup"]).ok();
        with(r, &new, &["sync"]).ok();
    }
    let newest_state = content_digest(&r.env.db);
    let newest = r.env.backup_files().last().unwrap().clone();
    for object in [old.clone(), format!("{old}.meta.json")] {
        let bytes = s3::object(&r.endpoint, &r.bucket, &format!("before/{object}"));
        s3::put_object(&r.endpoint, &r.bucket, &format!("after/{object}"), &bytes);
    }
    (new, old, newest, newest_state)
}

#[test]
fn sync_lifts_the_newest_point_above_an_older_one_copied_in_after_a_purge() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "before");
    let (new, old, newest, newest_state) = purged_then_copied(&r, 1);
    let sync = with(&r, &new, &["sync"]);
    sync.ok();
    assert!(
        sync.stdout.contains(&format!("moved {newest} above {old}")),
        "{}",
        sync.stdout
    );
    std::fs::remove_dir_all(&r.env.backups).unwrap();
    std::fs::remove_file(&r.env.db).unwrap();
    let restore = with(&r, &new, &["restore", "latest"]);
    restore.ok();
    assert_eq!(
        content_digest(&r.env.db),
        newest_state,
        "{}",
        restore.stdout
    );
}

/// T17 F3: the same copy made *after* the purged directory's last `sync`:
/// until the next `sync`, `list --from-remote` ranked the pre-purge point
/// first and `restore latest --from-remote` restored its older data, exit 0,
/// no warning. Every reader with the backup directory at hand now reads the
/// directory's newest point above it, and says so.
#[test]
fn readers_take_the_backup_directorys_newest_above_an_older_point_copied_in_since_the_sync() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "before");
    let (new, old, newest, newest_state) = purged_then_copied(&r, 1);
    let list = with(&r, &new, &["list", "--from-remote"]);
    list.ok();
    let at = |name: &str| {
        list.stdout
            .find(name)
            .unwrap_or_else(|| panic!("{name}: {}", list.stdout))
    };
    assert!(at(&newest) < at(&old), "{}", list.stdout);
    let out = r.env.root.path().join("out.db");
    let restore = restore_latest_into(&r, &new, &out);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!("downloaded {newest}")),
        "{}",
        restore.stdout
    );
    assert!(
        restore
            .stderr
            .contains(&format!("{newest} on {new} is numbered below {old}")),
        "{}",
        restore.stderr
    );
    assert_eq!(content_digest(&out), newest_state);
}

/// T18 #1: as above, and one more backup made before the next `sync`: the
/// lift looked at the backup directory's newest point only, which was not on
/// the remote yet, and the copied pre-purge point was `latest` again.
#[test]
fn a_backup_not_yet_synced_does_not_hide_the_newest_synced_one() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "before");
    let (new, _old, _newest, newest_state) = purged_then_copied(&r, 1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    r.add_row();
    with(&r, &new, &["backup"]).ok();
    let out = r.env.root.path().join("out.db");
    restore_latest_into(&r, &new, &out).ok();
    assert_eq!(content_digest(&out), newest_state);
}

/// T18 #2b: two backups synced since the purge, then the copy: only the
/// newest was lifted, and remote retention then deleted the other one and
/// kept the older pre-purge copy.
#[test]
fn every_point_of_the_directory_ranks_above_an_older_copy_for_remote_retention() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "before");
    let (new, old, _newest, _state) = purged_then_copied(&r, 2);
    let since_purge = r.env.backup_files();
    with(&r, &new, &["sync", "--remote-max-backups", "2"]).ok();
    let listed = with(&r, &new, &["list", "--from-remote"]);
    assert!(!listed.stdout.contains(&old), "{}", listed.stdout);
    for name in &since_purge {
        assert!(
            listed.stdout.contains(name.as_str()),
            "{name}: {}",
            listed.stdout
        );
    }
}

/// T18 #3: the one backup made since the purge damaged in its header: the
/// fall-back of `restore latest` to the remote took the pre-purge copy. The
/// remote records carry the directory's identity: its point is read above.
#[test]
fn the_fall_back_reads_the_directorys_own_point_above_an_older_copy() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "before");
    let (new, _old, newest, newest_state) = purged_then_copied(&r, 1);
    flip_byte(&r.env.backups.join(&newest), 100);
    let restore = with(&r, &new, &["restore", "latest"]);
    restore.ok();
    assert_eq!(
        content_digest(&r.env.db),
        newest_state,
        "{}",
        restore.stdout
    );
}

/// T18 #8: the only local backup damaged in its body (its header and size
/// pass the cheap tests): `restore latest` refused it without a word of the
/// intact copy the last sync proved on the remote. Now (T31 R22) it is said
/// and that copy restored, in the same run.
#[test]
fn a_local_point_found_damaged_while_read_names_the_remote() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "bodydamage");
    with(&r, &r.url, &["backup"]).ok();
    with(&r, &r.url, &["sync"]).ok();
    let name = r.env.backup_files()[0].clone();
    // Just past the header: the deflate stream, which only a whole read sees.
    flip_byte(
        &r.env.backups.join(&name),
        dbbackup::store::metadata::HEADER_LEN + 58,
    );
    let digest = content_digest(&r.env.db);
    std::fs::remove_file(&r.env.db).unwrap();
    let restore = with(&r, &r.url, &["restore", "latest"]);
    restore.ok();
    assert!(
        restore
            .stderr
            .contains(&format!("backup {name} is damaged"))
            && restore.stderr.contains("restoring the newest from s3://"),
        "{}",
        restore.stderr
    );
    assert_eq!(content_digest(&r.env.db), digest);
}

/// T20 F1: after a rollback (`restore NAME` of an older point), `restore
/// latest --from-remote` brought back the state that was undone, exit 0, no
/// word. The point rolled back to is the remote's `latest` too, until a
/// backup is made after it.
#[test]
fn restore_latest_from_the_remote_after_a_rollback_takes_the_state_rolled_back_to() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "rollback");
    with(&r, &r.url, &["backup"]).ok();
    let good = r.env.backup_files()[0].clone();
    let good_state = content_digest(&r.env.db);
    r.add_row();
    with(&r, &r.url, &["backup"]).ok();
    with(&r, &r.url, &["sync"]).ok();
    with(&r, &r.url, &["restore", &good]).ok();
    let out = r.env.root.path().join("out.db");
    let restore = restore_latest_into(&r, &r.url, &out);
    restore.ok();
    assert_eq!(content_digest(&out), good_state, "{}", restore.stderr);
    assert!(
        restore.stderr.contains("what that restore undid"),
        "{}",
        restore.stderr
    );
}

/// T22 F6: `sync` from cron while a job runs deleted the job's pre-job restore
/// point from the remote (`remote_max_backups`), though local retention kept it
/// for the running job: the off-site copy of the state before the job was
/// gone. Remote retention keeps what the local pins keep.
#[test]
fn remote_retention_keeps_a_running_jobs_restore_point() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "pins");
    let step = |args: &[&str]| -> Run {
        r.command()
            .env("DBBACKUP_REMOTE", &r.url)
            .env("DBBACKUP_MAX_BACKUPS", "1")
            .env("DBBACKUP_REMOTE_MAX_BACKUPS", "1")
            .env("SLURM_JOB_ID", "88000600")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    r.add_row();
    step(&["pre-job"]).ok();
    let point = r.env.backup_files().last().unwrap().clone();
    let cron = |args: &[&str]| -> Run {
        r.command()
            .env("DBBACKUP_REMOTE", &r.url)
            .env("DBBACKUP_MAX_BACKUPS", "1")
            .env("DBBACKUP_REMOTE_MAX_BACKUPS", "1")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    cron(&["sync"]).ok();
    for _ in 0..3 {
        r.add_row();
        cron(&["backup"]).ok();
        cron(&["sync"]).ok();
    }
    assert!(r.env.backups.join(&point).exists(), "kept locally");
    let listed = cron(&["list", "--from-remote"]);
    listed.ok();
    assert!(
        listed.stdout.contains(&point),
        "the running job's restore point left the remote: {}",
        listed.stdout
    );
    // The job ends: its point may go at the next sync.
    step(&["post-job", "--status", "0"]).ok();
    r.add_row();
    cron(&["backup"]).ok();
    cron(&["sync"]).ok();
    let listed = cron(&["list", "--from-remote"]);
    assert!(!listed.stdout.contains(&point), "{}", listed.stdout);
}
