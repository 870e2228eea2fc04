//! Data objects without a record (an upload stopped before its record, a
//! record lost) are deleted by `sync` once the store's own clock says they
//! are over 24 h old, unless the backup directory holds that backup or no
//! restore point on the remote is newer (docs/remote.md).

use crate::common::s3::{self, Remote};

/// Whether `name` is an object under `r`'s prefix, asked of the store.
fn there(r: &Remote, name: &str) -> bool {
    let path = format!("/{}/{}", r.bucket, r.key(name));
    s3::raw(&r.endpoint, "HEAD", &path, b"").0 == 200
}

#[test]
fn sync_deletes_a_data_object_without_a_record_once_the_store_says_it_is_a_day_old() {
    let clock = tempfile::NamedTempFile::new().unwrap();
    let Some(server) = s3::start_with_clock(clock.path()) else {
        return;
    };
    let r = Remote::new(&server, "orphans");
    for _ in 0..2 {
        r.add_row();
        r.run(&["backup"]).ok();
    }
    let local = r.env.backup_files();
    let older_bytes = std::fs::read(r.env.backups.join(&local[0])).unwrap();
    // Written before the restore point the sync uploads: a backup of this
    // database (its header says so) whose record was lost.
    let stale = "backup_20200101_000000.db.gz";
    r.put(stale, &older_bytes);
    // Kept (T37 S1): a file copied there by hand (no dbbackup header), and
    // another database's backup whose record was lost (a shared prefix).
    let by_hand = "backup_20200103_000000.db.gz";
    r.put(by_hand, b"a plain file copied there by hand");
    let other = crate::common::Env::new();
    other.run(&["backup"]).ok();
    let others = "backup_20200104_000000.db.gz";
    r.put(others, &std::fs::read(other.newest_backup()).unwrap());
    // Only the newer is uploaded: the older is this directory's, not there.
    r.run(&["--remote-max-backups", "1", "sync"]).ok();
    // Older by name, but written after that restore point (a node whose
    // clock was behind made it): maybe the newest data there is. Kept.
    let behind = "backup_20200105_000000.db.gz";
    // In a later second than that upload (the store's times are to the second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    r.put(behind, &older_bytes);
    r.put(
        &local[0],
        &std::fs::read(r.env.backups.join(&local[0])).unwrap(),
    );
    // Newer than every restore point there: maybe the newest data there is.
    let newest = "backup_20991231_000000.db.gz";
    r.put(newest, b"a backup whose record was lost");
    // A day later by the store's clock only (this machine's has not moved).
    std::fs::write(clock.path(), "+25h\n").unwrap();
    let fresh = "backup_20200102_000000.db.gz";
    r.put(fresh, b"an upload running now");
    let sync = r.run(&["--remote-max-backups", "1", "sync"]);
    sync.ok();
    assert!(
        sync.stdout
            .contains(&format!("deleted {stale} from {}", r.url))
            && sync.stdout.contains("by the store's clock"),
        "{}",
        sync.stdout
    );
    assert!(!there(&r, stale), "{stale} is still there");
    // Younger than a day by the store's clock, this directory's, or newer
    // than every restore point there: kept.
    assert!(there(&r, fresh) && there(&r, &local[0]) && there(&r, newest));
    for kept in [by_hand, others, behind] {
        assert!(there(&r, kept), "{kept} was deleted: {}", sync.stdout);
    }
    assert!(
        !sync.stdout.contains(&format!("deleted {fresh}")),
        "{}",
        sync.stdout
    );
    assert_eq!(r.remote_names(), [local[1].clone()]);
}

/// T38 V10 (DATA LOSS): after a purge, the base of a recorded diff whose
/// own record was lost was deleted as a data object without a record
/// "older than a restore point there": the diff, the newest point, could
/// not be restored any more. A recorded diff's base is never deleted.
#[test]
fn the_base_of_a_recorded_diff_is_never_deleted_for_lack_of_its_record() {
    let clock = tempfile::NamedTempFile::new().unwrap();
    let Some(server) = s3::start_with_clock(clock.path()) else {
        return;
    };
    let r = Remote::sizeable(&server, "orphanbase");
    r.run(&["--diff-backups", "2", "backup"]).ok();
    r.add_row();
    r.run(&["--diff-backups", "2", "backup"]).ok();
    let files = r.env.backup_files();
    let (base, diff) = (&files[0], &files[1]);
    assert!(diff.ends_with(".diff.gz"), "{files:?}");
    r.run(&["sync"]).ok();
    // The base's record lost at the store, the backup directory purged.
    s3::delete_object(&r.endpoint, &r.bucket, &r.key(&format!("{base}.meta.json")));
    std::fs::remove_dir_all(&r.env.backups).unwrap();
    std::fs::create_dir_all(&r.env.backups).unwrap();
    std::fs::write(clock.path(), "+25h\n").unwrap();
    let sync = r.run(&["sync"]);
    assert!(
        !sync.stdout.contains(&format!("deleted {base}")),
        "{}",
        sync.stdout
    );
    assert!(there(&r, base), "{base} was deleted: {}", sync.stdout);
}
