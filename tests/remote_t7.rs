//! Trial 7 (object storage): remote retention and restore points that only
//! the remote holds.

use std::fs;

use rusqlite::Connection;

use crate::common::row_count;
use crate::common::s3::{self, Remote};

const ROWS: i64 = 2000;

fn sql(r: &Remote, statements: &str) {
    Connection::open(&r.env.db)
        .unwrap()
        .execute_batch(statements)
        .unwrap();
}

/// A database of `ROWS` padded rows, backed up and synced with `keep`: the
/// big point the shrink tests must never see deleted from the remote.
fn big_point_synced(r: &Remote, keep: &[&str]) -> String {
    sql(
        r,
        &format!(
            "CREATE TABLE t(x, pad);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
             INSERT INTO t SELECT i, randomblob(500) FROM n;"
        ),
    );
    r.run(&[keep, &["backup"]].concat()).ok();
    let big = r.env.backup_files().last().unwrap().clone();
    r.run(&[keep, &["sync"]].concat()).ok();
    big
}

/// Finding 1: after the database shrank by more than `check.max_shrink`,
/// remote retention deleted the pre-shrink point that local retention keeps
/// on purpose (exit 0, no word). It keeps it, says so, and it restores the
/// pre-shrink rows from the remote once the backup directory is gone.
#[test]
fn remote_retention_keeps_the_pre_shrink_point_as_local_retention_does() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "shrink");
    let keep = ["--max-backups", "2", "--remote-max-backups", "2"];
    let big = big_point_synced(&r, &keep);
    sql(&r, "DELETE FROM t WHERE x > 10; VACUUM;");
    for _ in 0..3 {
        r.add_row();
        r.run(&[&keep[..], &["backup", "--force"]].concat()).ok();
        let sync = r.run(&[&keep[..], &["sync"]].concat());
        sync.ok();
        assert!(
            !sync.stdout.contains(&format!("deleted {big}")),
            "{}",
            sync.stdout
        );
        let warned: Vec<&str> = sync
            .stderr
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(&format!("remote retention keeps {big}")))
            .collect();
        assert_eq!(warned.len(), 1, "{}", sync.stderr);
        assert!(warned[0].contains("check.max_shrink"), "{}", warned[0]);
    }
    let names = r.remote_names();
    assert!(names.contains(&big), "{names:?}");
    assert_eq!(
        names.len(),
        3,
        "the newest 2 and the pre-shrink one: {names:?}"
    );

    fs::remove_dir_all(&r.env.backups).unwrap();
    let target = r.env.path("pre_shrink.db");
    r.restore_from_remote(&big, &target).ok();
    assert_eq!(row_count(&target, "t"), ROWS);
}

/// T10 #4 on the remote: a restore to a smaller state (the user's undo) is no
/// shrink there either; the big point ages out of the remote as usual.
#[test]
fn a_restore_to_a_smaller_state_holds_nothing_on_the_remote() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "restored");
    let keep = ["--max-backups", "2", "--remote-max-backups", "2"];
    sql(&r, "CREATE TABLE small(x)");
    r.run(&[&keep[..], &["backup"]].concat()).ok();
    let small = r.env.backup_files().last().unwrap().clone();
    let big = big_point_synced(&r, &keep);
    r.run(&["restore", &small]).ok();
    for _ in 0..3 {
        r.add_row();
        r.run(&[&keep[..], &["backup", "--force"]].concat()).ok();
        let sync = r.run(&[&keep[..], &["sync"]].concat());
        sync.ok();
        assert!(
            !sync.stderr.contains("remote retention keeps"),
            "{}",
            sync.stderr
        );
    }
    let names = r.remote_names();
    assert!(!names.contains(&big), "{names:?}");
    assert_eq!(names.len(), 2, "{names:?}");
}

/// Finding 3: the record of a point only the remote holds (pruned locally,
/// inside remote_max_backups) changed at the store: `sync` said WARN and
/// exit 0, `check` OK, and the point was no longer restorable. `sync` fails
/// naming the record's key and the remedy; `check` fails; putting the
/// original record back ends it.
#[test]
fn an_invalid_record_of_a_point_only_the_remote_holds_fails_sync_and_check() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "badrecord");
    let keep = ["--max-backups", "1", "--remote-max-backups", "3"];
    let mut names = Vec::new();
    for _ in 0..3 {
        r.add_row();
        r.run(&[&keep[..], &["backup", "--force"]].concat()).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
        r.run(&[&keep[..], &["sync"]].concat()).ok();
    }
    let oldest = &names[0];
    assert!(!r.env.backup_files().contains(oldest));
    let record_name = format!("{oldest}.meta.json");
    let original = r.object(&record_name);
    let mut record = r.record(oldest);
    let job = record["metadata"]["job"].as_str().unwrap().to_string();
    record["metadata"]["job"] = format!("{job}X").into();
    r.put(&record_name, &serde_json::to_vec(&record).unwrap());

    let key = format!("s3://{}/{}", r.bucket, r.key(&record_name));
    let sync = r.run(&[&keep[..], &["sync"]].concat());
    sync.failed_with(1, &key);
    let error = sync
        .stderr
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("{}", sync.stderr));
    assert!(
        error.contains("that are not valid restore-point records: ")
            && error.contains(&format!(
                "{oldest} is not in the backup directory to upload again: put the original record back"
            )),
        "{error}"
    );
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with("FAIL remote:") && line.contains(&key),
        "{line}"
    );

    r.put(&record_name, &original);
    r.run(&[&keep[..], &["sync"]].concat()).ok();
    assert!(s3::remote_line(&r.run(&["check"])).starts_with("OK   remote:"));
    assert!(r.remote_names().contains(oldest));
}

/// Finding 2: points only the remote held (remote_max_backups above
/// max_backups), proved by earlier syncs, deleted at the store with their
/// records: `sync` dropped their proofs in silence, exit 0, `check` OK. Every
/// sync names them and fails, `check` fails, until `sync --forget-missing`
/// accepts the loss.
#[test]
fn proved_points_only_the_remote_held_gone_from_the_store_fail_until_forgotten() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "vanish");
    let keep = ["--max-backups", "2", "--remote-max-backups", "5"];
    let mut names = Vec::new();
    for _ in 0..5 {
        r.add_row();
        r.run(&[&keep[..], &["backup", "--force"]].concat()).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
        r.run(&[&keep[..], &["sync"]].concat()).ok();
    }
    assert_eq!(r.remote_names().len(), 5);
    let lost = &names[..2];
    for name in lost {
        assert!(!r.env.backup_files().contains(name));
        r.delete(&format!("{name}.meta.json"));
        r.delete(name);
    }
    let said = format!("gone from the store {}", r.url);
    for _ in 0..2 {
        let sync = r.run(&[&keep[..], &["sync"]].concat());
        sync.failed_with(1, &said);
        let error = sync
            .stderr
            .lines()
            .find(|l| l.contains("ERROR"))
            .unwrap_or_else(|| panic!("{}", sync.stderr));
        assert!(
            error.contains(&format!("{}, {}", lost[0], lost[1]))
                && error.contains("`dbbackup sync --forget-missing`"),
            "{error}"
        );
        let line = s3::remote_line(&r.run(&["check"]));
        assert!(
            line.starts_with("FAIL remote:") && line.contains(&lost[0]),
            "{line}"
        );
    }

    let forget = r.run(&[&keep[..], &["sync", "--forget-missing"]].concat());
    forget.ok();
    for name in lost {
        assert!(
            forget
                .stdout
                .contains(&format!("forgot {name}: gone from {}", r.url)),
            "{}",
            forget.stdout
        );
    }
    r.run(&[&keep[..], &["sync"]].concat()).ok();
    assert!(s3::remote_line(&r.run(&["check"])).starts_with("OK   remote:"));
}

/// A proved point gone from the store that retention would no longer keep
/// (enough newer points): not a loss, nothing said.
#[test]
fn a_proved_point_gone_from_the_store_outside_remote_max_backups_is_not_a_failure() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "vanishold");
    let keep = ["--max-backups", "1", "--remote-max-backups", "3"];
    let mut names = Vec::new();
    for _ in 0..3 {
        r.add_row();
        r.run(&[&keep[..], &["backup", "--force"]].concat()).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
        r.run(&[&keep[..], &["sync"]].concat()).ok();
    }
    r.delete(&format!("{}.meta.json", names[0]));
    r.delete(&names[0]);
    let narrower = ["--max-backups", "1", "--remote-max-backups", "2"];
    let sync = r.run(&[&narrower[..], &["sync"]].concat());
    sync.ok();
    assert!(
        !sync.stderr.contains("gone from the store"),
        "{}",
        sync.stderr
    );
}

/// Finding 1, after a scratch purge: the backup directory and the database
/// gone, a job re-creates the database nearly empty and backs it up; its
/// syncs must not push the real rows off the remote, the only copy left.
#[test]
fn after_a_purge_a_recreated_empty_database_never_pushes_the_real_points_off_the_remote() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "purged");
    let keep = ["--max-backups", "2", "--remote-max-backups", "2"];
    let big = big_point_synced(&r, &keep);

    fs::remove_dir_all(&r.env.backups).unwrap();
    fs::remove_file(&r.env.db).unwrap();
    // Names are by the second: the purged directory's first name again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sql(&r, "CREATE TABLE t(x, pad); INSERT INTO t VALUES (1, 'x');");
    for _ in 0..3 {
        r.add_row();
        r.run(&[&keep[..], &["backup", "--force"]].concat()).ok();
        let sync = r.run(&[&keep[..], &["sync"]].concat());
        sync.ok();
        assert!(
            sync.stderr
                .contains(&format!("remote retention keeps {big} on {}", r.url)),
            "{}",
            sync.stderr
        );
    }
    assert!(r.remote_names().contains(&big), "{:?}", r.remote_names());
    let target = r.env.path("real.db");
    r.restore_from_remote(&big, &target).ok();
    assert_eq!(row_count(&target, "t"), ROWS);
}

/// T12 #10 on the remote: when the remote's newer points are all diffs of the
/// held pre-shrink point, the advice waits for a newer full backup instead of
/// saying to delete it now (which would leave the remote nothing restorable).
#[test]
fn remote_shrink_advice_waits_for_a_full_backup_while_newer_points_are_diffs_of_it() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "shrinkdiff");
    let keep = ["--max-backups", "1", "--remote-max-backups", "1"];
    let run = |args: &[&str]| -> crate::common::Run {
        r.command()
            .env("DBBACKUP_DIFF_BACKUPS", "3")
            .args(keep)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let big = big_point_synced(&r, &keep);
    sql(&r, "DELETE FROM t WHERE x > 10; VACUUM;");
    r.add_row();
    let made = run(&["backup", "--force", "--format", "json"]);
    made.ok();
    assert!(
        made.json()["name"].as_str().unwrap().ends_with(".diff.gz"),
        "{}",
        made.stdout
    );
    let sync = run(&["sync"]);
    sync.ok();
    assert!(
        sync.stderr.contains(&format!(
            "delete {big} from the backup directory (else `dbbackup sync` uploads it again) and from the store with its record (NAME.meta.json) once a full backup newer than it exists"
        )),
        "{}",
        sync.stderr
    );
}
