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
    // Only the newer is uploaded: the older is this directory's, not there.
    r.run(&["--remote-max-backups", "1", "sync"]).ok();
    let stale = "backup_20200101_000000.db.gz";
    r.put(stale, b"a stopped upload's bytes");
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
    assert!(
        !sync.stdout.contains(&format!("deleted {fresh}")),
        "{}",
        sync.stdout
    );
    assert_eq!(r.remote_names(), [local[1].clone()]);
}
