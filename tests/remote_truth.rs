//! False "ok"s of `sync` and `check` against a real store (issue 22): diffs
//! that cannot be uploaded, a prefix emptied at the store, a record whose
//! SHA-256 is wrong, and restore points only a mirror still holds.

use std::fs;

use crate::common::s3::{self, Remote};
use crate::common::{Run, content_digest};

/// (a) A full and two diffs on it, never synced; the full deleted from the
/// backup directory: the diffs cannot be uploaded (nothing to rebuild them on
/// from the remote). `sync` said "0 uploaded" and exit 0, `check` "OK remote:
/// no restore point to upload yet".
#[test]
fn diffs_whose_base_is_missing_and_not_on_the_remote_fail_sync_and_check() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "nobase");
    let mut names = Vec::new();
    for _ in 0..3 {
        r.add_row();
        r.run(&["--diff-backups", "2", "backup"]).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
    }
    assert!(names[2].ends_with(".diff.gz"), "{names:?}");
    fs::remove_file(r.env.backups.join(&names[0])).unwrap();

    let check = r.run(&["check"]);
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("FAIL remote:") && line.contains(&names[2]),
        "{}",
        check.stdout
    );
    let sync = r.run(&["sync"]);
    sync.failed_with(1, &names[1]);
    let error = sync
        .stderr
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("{}", sync.stderr));
    assert!(
        error.contains(&names[2]) && error.contains(&format!("base backup {}", names[0])),
        "{error}"
    );
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(line.starts_with("FAIL remote:"), "{line}");
    assert_eq!(r.remote_names(), Vec::<String>::new());
}

/// (b) Every object under the prefix deleted at the store, the backup
/// directory's proofs left: `check` never reaches the store (docs/remote.md),
/// so its OK says it is judged from the last sync's read-back; the next
/// `sync` lists the remote, drops the stale proofs and uploads again.
#[test]
fn a_prefix_emptied_at_the_store_is_uploaded_again_and_check_says_what_it_judged_from() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "emptied");
    let points = r.points(2, &[]);
    let names = s3::names(&points);
    for name in &names {
        r.delete(&format!("{name}.meta.json"));
        r.delete(name);
    }
    let check = r.run(&["check"]);
    check.ok();
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("OK   remote:")
            && line.contains(&names[1])
            && line.contains("as of the last read-back")
            && line.contains("check does not reach the store"),
        "{line}"
    );

    let sync = r.run(&["sync"]);
    sync.ok();
    for name in &names {
        assert!(
            sync.stdout.contains(&format!("uploaded {name}")),
            "{}",
            sync.stdout
        );
    }
    assert_eq!(r.remote_names(), names);
    assert!(r.checks().iter().all(|(_, check)| check == "ok"));
    fs::remove_dir_all(&r.env.backups).unwrap();
    let target = r.env.path("copy.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), points[1].1);
}

/// (c) One hex digit of a record's `sha256` changed at the store (a record
/// of an earlier version: no checksum of its own): the object and the
/// backup directory's copy are intact, the record is wrong. Every sync failed
/// "no intact copy" without saying what to do: it names the record's key and
/// the remedy, which works.
#[test]
fn a_record_whose_sha256_was_changed_at_the_store_is_named_with_its_key_and_remedy() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "flipsha");
    let points = r.points(2, &[]);
    let newest = &points[1].0;
    let mut record = r.record(newest);
    let mut sha = record["sha256"].as_str().unwrap().to_string();
    let last = sha.pop().unwrap();
    sha.push(if last == '0' { '1' } else { '0' });
    record["sha256"] = sha.into();
    r.put_old_record(newest, record);

    let key = format!(
        "s3://{}/{}",
        r.bucket,
        r.key(&format!("{newest}.meta.json"))
    );
    for _ in 0..2 {
        let sync = r.run(&["sync"]);
        sync.failed_with(1, &key);
        let error = sync.stderr.lines().find(|l| l.contains(&key)).unwrap();
        assert!(
            error.contains("delete it") && error.contains(&format!("uploads {newest} again")),
            "{error}"
        );
    }
    r.delete(&format!("{newest}.meta.json"));
    let sync = r.run(&["sync"]);
    sync.ok();
    assert!(
        sync.stdout.contains(&format!("uploaded {newest}")),
        "{}",
        sync.stdout
    );
    r.run(&["check"]).ok();
    let target = r.env.path("copy.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), points[1].1);
}

/// (d) The backup directory purged (emptied), its mirror whole: `sync`
/// uploaded nothing and exit 0. It uploads the mirror's restore points,
/// saying from where. (The directory itself gone: `remote_t9`.)
#[test]
fn sync_uploads_from_a_mirror_the_points_the_backup_directory_lost() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "mirrored");
    let mirror = r.env.path("mirror");
    let mirror_arg = mirror.to_str().unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        r.add_row();
        r.run(&["--mirror-dir", mirror_arg, "backup"]).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
    }
    let want = content_digest(&r.env.db);
    fs::remove_dir_all(&r.env.backups).unwrap();
    fs::create_dir(&r.env.backups).unwrap();

    let sync = r.run(&["--mirror-dir", mirror_arg, "sync"]);
    sync.ok();
    for name in &names {
        assert!(
            sync.stdout.contains(&format!("uploaded {name}")),
            "{}",
            sync.stdout
        );
    }
    assert!(
        sync.stderr
            .contains(&format!("mirror {}", mirror.display())),
        "{}",
        sync.stderr
    );
    assert_eq!(r.remote_names(), names);
    let target = r.env.path("copy.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), want);
}

/// A diff's copy is proved with its base's: `check` says the time is the
/// earlier of the two (it gave the base's as the diff's own; T7 #13).
#[test]
fn checks_ok_line_for_a_diff_names_its_base_in_the_read_back_time() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "diff-proof");
    let points = r.points(2, &["--diff-backups", "2"]);
    assert!(points[1].0.ends_with(".diff.gz"), "{points:?}");
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with("OK   remote:")
            && line.contains("it and its base read back whole there, the earlier at")
            && line.contains("by sync, verify, restore or export"),
        "{line}"
    );
}

/// An inline upload that went up while an older point only the remote holds is
/// damaged there: said as uploaded, and the damage as its own problem (the
/// line said "not uploaded … `dbbackup sync` uploads it"; T9 #10).
#[test]
fn an_inline_upload_beside_an_older_damaged_point_is_said_as_uploaded() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "inline-beside");
    let points = r.points(3, &[]);
    let oldest = &points[0].0;
    fs::remove_file(r.env.backups.join(oldest)).unwrap();
    r.corrupt(oldest);
    r.add_row();
    let run = r.run(&["--remote-upload", "inline", "backup"]);
    run.ok();
    let url = &r.url;
    assert!(
        run.stdout.contains(&format!(
            "uploaded to {url}: 1 new; the remote needs attention besides (see above)"
        )),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stderr.contains(oldest.as_str()), "{}", run.stderr);
    let newest = r.env.backup_files().last().unwrap().clone();
    assert!(r.remote_names().contains(&newest));
    // `check` fails for the damaged point, not as "not uploaded".
    assert_eq!(r.run(&["check"]).code, 1);
}

/// T16 #7: what is known of a remote was kept by its s3:// URL alone: with
/// `AWS_ENDPOINT_URL` pointing at another store (a centre's new store, a
/// test endpoint) that holds a bucket of the same name but none of the
/// backups, `check` said "OK remote: ... read back whole". Read-backs and
/// upload records are kept per endpoint now.
#[test]
fn check_does_not_count_read_backs_made_at_another_store_under_the_same_url() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "moved");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    assert!(s3::remote_line(&r.run(&["check"])).starts_with("OK"));
    let Some(other) = s3::start() else { return };
    other.bucket(&r.bucket);
    let at_other = |args: &[&str]| s3::run(&r.env, &other.endpoint, &r.url, args);
    // Not there yet, within remote_max_age: pending, as before a first sync.
    let line = s3::remote_line(&at_other(&["check"]));
    assert!(line.starts_with("WAIT"), "{line}");
    assert!(line.contains("no upload recorded yet"), "{line}");
    // That store's own sync is what its check goes by.
    at_other(&["sync"]).ok();
    assert!(s3::remote_line(&at_other(&["check"])).starts_with("OK"));
}

/// T27b F17: after a scratch purge took the backup directory and the database,
/// with only the remote left, `list` and `check` said the directory is missing
/// and "no restore point to put back", never the remote that `restore latest`
/// restores from. Both name it and the commands; followed, they work.
#[test]
fn after_a_purge_list_and_check_name_the_remote_holding_the_points() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "purged");
    let points = r.points(2, &[]);
    let (newest, digest) = points.last().unwrap().clone();
    fs::remove_dir_all(&r.env.backups).unwrap();
    fs::remove_file(&r.env.db).unwrap();
    let said = format!(
        "the remote {} may hold restore points: `dbbackup list --from-remote` shows them; `dbbackup restore latest` restores its newest",
        r.url
    );
    let list = r.run(&["list"]);
    list.failed_with(1, &said);
    let check = r.run(&["check"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    let database = check
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL database:"))
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert!(database.contains(&said), "{database}");
    let remote = r.run(&["list", "--from-remote"]);
    remote.ok();
    assert!(remote.stdout.contains(&newest), "{}", remote.stdout);
    r.run(&["restore", "latest"]).ok();
    assert_eq!(content_digest(&r.env.db), digest);
    // The database back: backing up is the next step, not restoring.
    let list = r.run(&["list"]);
    list.failed_with(
        1,
        "shows them; `dbbackup backup` starts the backup directory again",
    );
}

/// T31 R13: the only backups lost before any reached the store: `check`'s
/// remote line said "OK no restore point to upload yet", as for a database
/// never backed up, while nothing of it was anywhere.
#[test]
fn backups_lost_before_reaching_the_remote_fail_the_remote_line() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "lost-first");
    r.run(&["backup"]).ok();
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(line.starts_with("WAIT remote:"), "{line}");
    purge_backup_files(&r);
    r.run(&["sync"]).ok();
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with(&format!(
            "FAIL remote: no restore point in the backup directory and none recorded on {}: its backup backup_",
            r.url
        )),
        "{line}"
    );
    // A database never backed up: nothing to upload, said so.
    let fresh = Remote::new(server, "never");
    fs::create_dir_all(&fresh.env.backups).unwrap();
    let line = s3::remote_line(&fresh.run(&["check"]));
    assert_eq!(line, "OK   remote: no restore point to upload yet");
}

/// T31 R7: purged, the remote the only copy, and its point read back cut by
/// `verify --from-remote`: the remote line stayed OK ("the last sync proved
/// 1") until the next sync.
#[test]
fn with_the_backup_directory_purged_a_remote_point_read_back_damaged_fails_at_once() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "purged-cut");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let name = r.env.backup_files()[0].clone();
    fs::remove_file(r.env.backups.join(&name)).unwrap();
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with("OK   remote: no restore point in the backup directory; the last sync"),
        "{line}"
    );
    let bytes = r.object(&name);
    r.put(&name, &bytes[..bytes.len() / 2]);
    r.run(&["verify", "--from-remote"]).reported(1, "FAILED");
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with(&format!(
            "FAIL remote: no restore point in the backup directory, and {name} on {} was read back damaged at",
            r.url
        )),
        "{line}"
    );
}

/// T31 R22: `restore latest` whose only local point passed the cheap tests
/// but failed as it was read: exit 1 naming the remote, and a second run
/// fell back to it. The remote's newest is restored in the same run.
#[test]
fn restore_latest_falls_back_to_the_remote_in_the_run_that_finds_the_local_point_damaged() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "late-damage");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let digest = content_digest(&r.env.db);
    let path = r.env.newest_backup();
    let mut bytes = fs::read(&path).unwrap();
    let near_end = bytes.len() - 200;
    bytes[near_end] ^= 1;
    fs::write(&path, &bytes).unwrap();
    fs::remove_file(&r.env.db).unwrap();
    let restore = r.run(&["restore", "latest"]);
    restore.ok();
    assert!(
        restore.stderr.contains("is damaged")
            && restore.stderr.contains("restoring the newest from"),
        "{}",
        restore.stderr
    );
    assert_eq!(content_digest(&r.env.db), digest);
}

/// T31 R8: purged, and the remote's newest point gone from the store (a
/// lifecycle rule, another tool): `restore latest` restored the older point
/// as "the newest", saying nothing, though the last sync recorded the newer.
#[test]
fn restore_latest_says_when_a_newer_point_the_last_sync_recorded_is_gone_from_the_store() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "gone-newest");
    r.run(&["backup"]).ok();
    let older_digest = content_digest(&r.env.db);
    r.add_row();
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let files = r.env.backup_files();
    let (older, newer) = (&files[0], &files[1]);
    purge_backup_files(&r);
    r.delete(newer);
    r.delete(&format!("{newer}.meta.json"));
    fs::remove_file(&r.env.db).unwrap();
    let restore = r.run(&["restore", "latest"]);
    restore.ok();
    assert!(
        restore.stderr.contains(&format!(
            "{newer} newer than {older}, on {} at the last sync (",
            r.url
        )) && restore.stderr.contains(
            "), is gone from the store: the restored data is older than what was backed up"
        ),
        "{}",
        restore.stderr
    );
    assert_eq!(content_digest(&r.env.db), older_digest);
}

/// T31 R20: without a database configured, `sync` of a backup directory
/// holding two databases' backups uploaded both into one prefix (one prefix
/// is one database's) while `check` refused the same directory.
#[test]
fn sync_without_a_database_refuses_a_directory_of_two_databases() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "two-dbs");
    r.run(&["backup"]).ok();
    let other = r.env.path("other.db");
    crate::common::make_ledger_db(&other, 50, false);
    r.command()
        .env("DBBACKUP_DB_PATH", &other)
        .arg("backup")
        .output()
        .unwrap();
    assert_eq!(r.env.backup_files().len(), 2);
    let sync: crate::common::Run = r
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .arg("sync")
        .output()
        .unwrap()
        .into();
    sync.failed_with(2, "holds backups of 2 databases");
    assert!(r.remote_names().is_empty());
}

/// T31 R15: a point the last sync proved on the remote, its record
/// overwritten at the store (no longer restorable from there), and its local
/// copy pruned: `verify --from-remote` said ok for the rest and exit 0.
#[test]
fn verify_from_remote_fails_a_recorded_point_whose_record_the_store_lost() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "junk-record");
    r.run(&["backup"]).ok();
    r.add_row();
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let older = r.env.backup_files()[0].clone();
    fs::remove_file(r.env.backups.join(&older)).unwrap();
    r.put(&format!("{older}.meta.json"), b"{\"junk\": 1}");
    let verify = r.run(&["verify", "--from-remote"]);
    verify.reported(
        1,
        &format!("{older}: FAILED: recorded on {} by the last sync (", r.url),
    );
}

/// T32 G10, G9: purged, the remote's point older than the newest backup
/// (never synced), or its record gone at the store as `verify --from-remote`
/// found: the remote line said "OK ... the last sync proved 1".
#[test]
fn purged_with_the_newest_never_synced_or_a_record_gone_the_remote_line_fails() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "unsynced-newest");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    r.add_row();
    r.run(&["backup"]).ok();
    let newest = r.env.backup_files()[1].clone();
    purge_backup_files(&r);
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with(&format!(
            "FAIL remote: no restore point in the backup directory, and its newest backup {newest} (attempt at "
        )),
        "{line}"
    );

    let r = Remote::new(server, "record-gone");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let name = r.env.backup_files()[0].clone();
    fs::remove_file(r.env.backups.join(&name)).unwrap();
    r.delete(&format!("{name}.meta.json"));
    r.run(&["verify", "--from-remote"]).reported(1, "FAILED");
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with(&format!(
            "FAIL remote: no restore point in the backup directory, and {name} on {} was read back damaged at",
            r.url
        )),
        "{line}"
    );
}

/// The backup directory's backup files deleted (a scratch purge; its state
/// directory, with the last sync's record, stays).
fn purge_backup_files(r: &Remote) {
    for name in r.env.backup_files() {
        fs::remove_file(r.env.backups.join(name)).unwrap();
    }
}

/// T31 R18: disaster recovery under another path: `restore latest
/// --from-remote` said only "no restore point of X" though the prefix held
/// the database's points under its old path. It names them and the way.
#[test]
fn restore_from_the_remote_under_another_path_names_the_databases_the_prefix_holds() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "elsewhere");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let digest = content_digest(&r.env.db);
    let old = r.env.db.canonicalize().unwrap();
    let target = r.env.path("recovered.db");
    let elsewhere: crate::common::Run = r
        .command()
        .env("DBBACKUP_DB_PATH", r.env.path("new-home.db"))
        .args(["restore", "latest", "--from-remote", "--target"])
        .arg(&target)
        .output()
        .unwrap()
        .into();
    elsewhere.failed_with(
        1,
        &format!(
            "; it holds restore points of {}: give `--db-path {}` (with `--target FILE` to restore it elsewhere)",
            old.display(),
            old.display()
        ),
    );
    let taken: crate::common::Run = r
        .command()
        .env("DBBACKUP_DB_PATH", &old)
        .args(["restore", "latest", "--from-remote", "--target"])
        .arg(&target)
        .output()
        .unwrap()
        .into();
    taken.ok();
    assert_eq!(content_digest(&target), digest);
}

/// T31 R19: the seed's legacy backups are restore points, which `sync`
/// never uploads: it said "0 uploaded" and `check` asked, then failed, for
/// a sync that could never help. Both say what does.
#[test]
fn a_legacy_newest_restore_point_is_said_by_sync_and_check() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "legacy");
    fs::create_dir_all(&r.env.backups).unwrap();
    let name = crate::common::seed_backup_name(
        jiff::Timestamp::now() - jiff::SignedDuration::from_mins(5),
        &jiff::tz::TimeZone::system(),
    );
    crate::common::seed_backup(&r.env.db, &r.env.backups, &name);
    // The project's own file (legacy files are only its there), and the store.
    let run = |args: &[&str]| -> crate::common::Run {
        let mut command = r.env.configured();
        for (key, value) in s3::command(&r.env, &r.endpoint, &r.url).get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
            .env_remove("DBBACKUP_DB_PATH")
            .env_remove("DBBACKUP_BACKUP_DIR")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let sync = run(&["sync"]);
    sync.ok();
    assert!(
        sync.stderr
            .contains(&format!("not uploaded: {name}: a legacy backup")),
        "{}",
        sync.stderr
    );
    let line = s3::remote_line(&run(&["check"]));
    assert!(
        line.starts_with(&format!(
            "FAIL remote: the newest restore point {name} is a legacy backup (plain gzip), which sync does not upload"
        )),
        "{line}"
    );
}

/// T33 H7: `check` needs no store, so a monitoring cron runs it without
/// `AWS_ENDPOINT_URL`: it judged by the findings kept for "no endpoint", of
/// which there were none, and said WAIT "not on the remote yet" (nagios OK)
/// while `verify --from-remote` had found the newest point's data object
/// gone. Without an endpoint it judges by the one the last upload used.
#[test]
fn check_without_the_endpoint_in_its_environment_sees_what_verify_found() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "noendpoint");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let newest = r.env.backup_files().pop().unwrap();
    let without_endpoint = || -> crate::common::Run {
        r.command()
            .env_remove("AWS_ENDPOINT_URL")
            .args(["check"])
            .output()
            .unwrap()
            .into()
    };
    let ok = without_endpoint();
    assert!(s3::remote_line(&ok).starts_with("OK"), "{}", ok.stdout);
    r.delete(&newest);
    r.run(&["verify", "--from-remote"]).reported(1, "FAILED");
    let check = without_endpoint();
    let line = s3::remote_line(&check);
    assert!(line.starts_with("FAIL") && line.contains(&newest), "{line}");
    assert_eq!(check.code, 1, "{}", check.stdout);
}

/// T33 H15: the newest point's record changed at the store (junk, or one
/// byte: its own checksum fails), the backup directory purged: `restore
/// latest --from-remote` took the older point saying only that a record was
/// "ignored", and `verify --from-remote` was green. The newest's data object
/// is named with how to use it, and `verify` fails on the record.
#[test]
fn a_junk_record_of_the_newest_point_fails_verify_and_its_data_object_is_named() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "junkrecord");
    r.run(&["backup"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    r.add_row();
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let newest = r.env.backup_files().pop().unwrap();
    r.put(&format!("{newest}.meta.json"), b"{\"garbage\":1}");
    fs::remove_dir_all(&r.env.backups).unwrap();
    let target = r.env.path("g.db");
    let restore = r.restore_from_remote("latest", &target);
    restore.ok();
    let named = format!("{newest} (");
    assert!(
        restore.stderr.contains(&named) && restore.stderr.contains("has no valid record beside it"),
        "{}",
        restore.stderr
    );
    let verify = r.run(&["verify", "--from-remote"]);
    verify.reported(1, &format!("{newest}: FAILED: its record "));
}

/// T33 H13: a prefix holding only another database's points (a mistyped
/// `db_path`, a prefix shared with a colleague): `verify --from-remote` said
/// `ok` of each, exit 0, though the configured database has nothing there.
#[test]
fn verify_from_the_remote_fails_when_the_configured_database_has_no_point_there() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "othersonly");
    let other = r.env.path("other.db");
    crate::common::make_ledger_db(&other, 50, false);
    let dir = r.env.path("other-backups");
    let as_other = [
        "--db-path",
        other.to_str().unwrap(),
        "--backup-dir",
        dir.to_str().unwrap(),
    ];
    r.run(&[&as_other[..], &["backup"]].concat()).ok();
    r.run(&[&as_other[..], &["sync"]].concat()).ok();
    let verify = r.run(&["verify", "--from-remote"]);
    verify.failed_with(1, "no restore point of ");
    assert!(
        verify.stderr.contains("it holds restore points of"),
        "{}",
        verify.stderr
    );
    assert!(!verify.stdout.contains(": ok ("), "{}", verify.stdout);
}

/// What [`unsound_newest_synced`] made: the sound database's digest, its
/// backup, and the newer backup holding a database with a corrupt index.
struct Synced {
    sound: String,
    first: String,
    unsound: String,
}

/// A sound backup, then one of a database whose index is corrupt
/// (`quick_check` passes, `integrity_check` fails), both synced.
fn unsound_newest_synced(server: &s3::Server, prefix: &str) -> (Remote, Synced) {
    let r = Remote::empty(server, prefix);
    let env = &r.env;
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE keep(x); INSERT INTO keep VALUES (1);")
        .unwrap();
    r.run(&["backup"]).ok();
    let sound = content_digest(&env.db);
    let first = env.backup_files().pop().unwrap();
    fs::remove_file(&env.db).unwrap();
    crate::truth_trial5::make_index_corrupt_db(&env.db);
    r.run(&["backup"]).ok();
    let unsound = env.backup_files().pop().unwrap();
    assert_ne!(first, unsound);
    r.run(&["sync"]).ok();
    (
        r,
        Synced {
            sound,
            first,
            unsound,
        },
    )
}

/// T35 R8: the newest point holds a database whose index is corrupt
/// (`quick_check` passes, `integrity_check` fails), found so by `verify`:
/// locally `restore latest` passes over it, but from the remote it was
/// restored, exit 0, `passed_over` empty. Passed over there too.
#[test]
fn restore_latest_from_the_remote_passes_over_a_database_verify_found_unsound() {
    let Some(server) = s3::shared() else { return };
    let (
        r,
        Synced {
            sound,
            first,
            unsound,
        },
    ) = unsound_newest_synced(server, "unsoundremote");
    let env = &r.env;
    r.run(&["verify"]).reported(1, "integrity_check");
    let target = env.path("g.db");
    let restore = r.run(&[
        "restore",
        "latest",
        "--from-remote",
        "--format",
        "json",
        "--target",
        target.to_str().unwrap(),
    ]);
    restore.ok();
    let json = restore.json();
    assert_eq!(json["name"], first.as_str(), "{json}");
    assert!(json["passed_over"].to_string().contains(&unsound), "{json}");
    assert_eq!(content_digest(&target), sound);
    let checks = r.checks();
    assert!(
        checks.contains(&(unsound, "damaged".to_string())),
        "{checks:?}"
    );
}

/// T35 R8, the rest: the backup directory lost (a scratch purge), the
/// newest point's database found failing `integrity_check` only by
/// `verify --from-remote`: `list --from-remote` said `ok` and `restore
/// latest --from-remote` took it. The finding is kept with the point's
/// read-back: damaged, passed over, until the point's bytes change.
#[test]
fn a_point_verify_from_the_remote_found_unsound_is_passed_over_after_a_purge() {
    let Some(server) = s3::shared() else { return };
    let (
        r,
        Synced {
            sound,
            first,
            unsound,
        },
    ) = unsound_newest_synced(server, "unsoundpurged");
    let env = &r.env;
    fs::remove_dir_all(&env.backups).unwrap();
    let verify = r.run(&["verify", "--from-remote"]);
    verify.reported(1, "integrity_check");
    assert!(
        verify.stdout.contains(&format!("{first}: ok")),
        "{}",
        verify.stdout
    );
    let checks = r.checks();
    assert!(
        checks.contains(&(unsound.clone(), "damaged".to_string())),
        "{checks:?}"
    );
    assert!(
        checks.contains(&(first.clone(), "ok".to_string())),
        "{checks:?}"
    );
    for _ in 0..2 {
        let target = env.path("g.db");
        let _ = fs::remove_file(&target);
        let restore = r.run(&[
            "restore",
            "latest",
            "--from-remote",
            "--format",
            "json",
            "--target",
            target.to_str().unwrap(),
        ]);
        restore.ok();
        let json = restore.json();
        assert_eq!(json["name"], first.as_str(), "{json}");
        let passed = json["passed_over"].to_string();
        assert!(passed.contains(&unsound), "{json}");
        assert!(passed.contains("failing integrity_check"), "{json}");
        assert_eq!(content_digest(&target), sound);
    }
}

/// T37 S7: `AWS_ENDPOINT_URL_S3` (the AWS SDKs' S3-specific endpoint) sends
/// the requests elsewhere than `AWS_ENDPOINT_URL`, but read-backs and
/// upload records were kept and judged under `AWS_ENDPOINT_URL`: `check`
/// pointed at an empty store said OK, and its endpoint was never checked.
/// The endpoint requests go to is the one everything is kept under.
#[test]
fn the_s3_specific_endpoint_is_the_one_records_and_checks_go_by() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "s3specific");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(line.starts_with("OK"), "{line}");
    // Another store (nothing listens there): nothing is known of it.
    let elsewhere = |extra: &[(&str, &str)], args: &[&str]| -> Run {
        let mut command = r.command();
        for (key, value) in extra {
            command.env(key, value);
        }
        Run::from(command.args(args).output().unwrap())
    };
    let check = elsewhere(&[("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")], &["check"]);
    let line = s3::remote_line(&check);
    assert!(!line.starts_with("OK"), "{line}");
    assert!(line.contains("no upload recorded yet"), "{line}");
    // Its endpoint is checked as AWS_ENDPOINT_URL's is.
    elsewhere(
        &[
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
            ("AWS_ALLOW_HTTP", "false"),
        ],
        &["sync"],
    )
    .failed_with(2, "AWS_ENDPOINT_URL_S3 http://127.0.0.1:9 is plain http");
}
