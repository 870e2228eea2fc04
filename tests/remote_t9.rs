//! T9 leftovers of `sync` and `restore` against a real store: a database or
//! export file already there is found before any download; a lost backup
//! directory fails `sync` even when a mirror's points went up; a newest backup
//! whose header is damaged locally but intact on the remote; the count of
//! points "already there" after a purge.

use std::fs;

use crate::common::content_digest;
use crate::common::s3::{self, Remote};

/// No download was made (the INFO line `downloading NAME` and the WARN of the
/// fall-back are what a user sees of one).
fn downloaded_nothing(stderr: &str) {
    assert!(
        !stderr.contains("downloading") && !stderr.contains("WARN"),
        "{stderr}"
    );
}

/// `restore latest --if-db-missing` with the database there: "nothing to
/// restore" at once, from the remote (`--from-remote`) as from the fall-back
/// of a lost backup directory; it downloaded the whole newest point first
/// (T9 #4).
#[test]
fn if_db_missing_with_the_database_there_downloads_nothing() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "ifmissing");
    r.points(1, &[]);
    let want = content_digest(&r.env.db);

    let remote = r.run(&["restore", "latest", "--if-db-missing", "--from-remote"]);
    remote.ok();
    assert!(
        remote.stdout.contains("exists; nothing to restore"),
        "{}",
        remote.stdout
    );
    downloaded_nothing(&remote.stderr);

    fs::rename(&r.env.backups, r.env.path("aside")).unwrap();
    let fallback = r.run(&["restore", "latest", "--if-db-missing"]);
    fallback.ok();
    assert!(
        fallback.stdout.contains("exists; nothing to restore"),
        "{}",
        fallback.stdout
    );
    downloaded_nothing(&fallback.stderr);
    assert_eq!(content_digest(&r.env.db), want);
}

/// `export --from-remote` to an `--out` that exists: refused before the
/// download, as the local export refuses it (T9 #4).
#[test]
fn export_from_remote_to_an_existing_out_is_refused_before_the_download() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "exportthere");
    r.points(1, &[]);
    let out = r.env.path("there.db.gz");
    fs::write(&out, "mine").unwrap();
    let run = r.run(&[
        "export",
        "latest",
        "--from-remote",
        "--out",
        out.to_str().unwrap(),
    ]);
    run.failed_with(1, "exists; refusing to overwrite it");
    downloaded_nothing(&run.stderr);
    assert_eq!(fs::read(&out).unwrap(), b"mine");
}

/// The backup directory gone, a mirror holding its points: `sync` uploads
/// them from the mirror, then fails naming the missing directory and
/// `mkdir`, as without a mirror: nothing of it is recorded for `check`. It
/// exited 0 (T9 #6).
#[test]
fn sync_from_a_mirror_without_the_backup_directory_uploads_then_fails_naming_it() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "lostdir");
    let mirror = r.env.path("mirror");
    let mirror_arg = mirror.to_str().unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        r.add_row();
        r.run(&["--mirror-dir", mirror_arg, "backup"]).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
    }
    fs::remove_dir_all(&r.env.backups).unwrap();

    let sync = r.run(&["--mirror-dir", mirror_arg, "sync"]);
    let dir = r.env.backups.display().to_string();
    sync.failed_with(1, &format!("backup directory {dir} does not exist"));
    assert!(
        sync.stderr.contains(&format!("mkdir -p {dir}")),
        "{}",
        sync.stderr
    );
    for name in &names {
        assert!(
            sync.stdout.contains(&format!("uploaded {name}")),
            "{}",
            sync.stdout
        );
    }
    assert_eq!(r.remote_names(), names);
    assert!(!r.env.backups.exists());
}

/// The newest backup's header damaged in the backup directory after it was
/// uploaded and proved: `sync` counts the remote's copy, warns about the
/// local one with the remedy, exit 0, and `check`'s remote line is OK. Every
/// sync failed "not uploaded … older points are kept in its place" (T9 #9).
#[test]
fn a_newest_backup_with_a_damaged_header_that_is_proved_on_the_remote_passes_sync() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "header");
    let points = r.points(2, &[]);
    let newest = &points[1].0;
    let path = r.env.backups.join(newest);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    for _ in 0..2 {
        let sync = r.run(&["sync"]);
        sync.ok();
        assert!(
            sync.stdout
                .contains(&format!("{}: 0 uploaded, 2 already there", r.url)),
            "{}",
            sync.stdout
        );
        let warn = sync
            .stderr
            .lines()
            .find(|l| l.contains("WARN") && l.contains(newest.as_str()))
            .unwrap_or_else(|| panic!("{}", sync.stderr));
        assert!(
            warn.contains(&format!(
                "dbbackup export {newest} --from-remote --out FILE"
            )),
            "{warn}"
        );
    }
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(line.starts_with("OK   remote:"), "{line}");
    let target = r.env.path("copy.db");
    r.restore_from_remote(newest, &target).ok();
    assert_eq!(content_digest(&target), points[1].1);
}

/// The backup directory purged and made again: the points of this database
/// on the remote, proved by a restore's download or by this sync's
/// read-back, are "already there"; it said "0 already there" (T9 #11).
#[test]
fn sync_after_a_purge_counts_the_points_proved_there() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "purged");
    let points = r.points(3, &[]);
    fs::remove_dir_all(&r.env.backups).unwrap();
    fs::create_dir(&r.env.backups).unwrap();
    let target = r.env.path("copy.db");
    r.restore_from_remote("latest", &target).ok();
    assert_eq!(content_digest(&target), points[2].1);

    let sync = r.run(&["sync", "--format", "json"]);
    sync.ok();
    let json = sync.json();
    assert_eq!(json["already_there"], 3, "{json}");
    assert_eq!(json["read_back"].as_array().unwrap().len(), 2, "{json}");
    let sync = r.run(&["sync"]);
    sync.ok();
    assert!(
        sync.stdout
            .contains(&format!("{}: 0 uploaded, 3 already there", r.url)),
        "{}",
        sync.stdout
    );
}

/// A point damaged at the store, repaired from the backup directory: one
/// WARN says so (the mismatch was warned about twice, the second time with
/// "uploading it again"; T7 #15).
#[test]
fn a_repair_is_warned_about_once() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "repaironce");
    let points = r.points(2, &[]);
    let newest = &points[1].0;
    r.corrupt(newest);
    let sync = r.run(&["sync"]);
    sync.ok();
    assert!(
        sync.stdout
            .contains(&format!("repaired {newest} on {}", r.url)),
        "{}",
        sync.stdout
    );
    let warnings: Vec<&str> = sync
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(newest.as_str()))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", sync.stderr);
    assert!(
        warnings[0].contains("uploading it again from the backup directory"),
        "{}",
        warnings[0]
    );
    assert_eq!(
        r.object(newest),
        fs::read(r.env.backups.join(newest)).unwrap()
    );
}
