//! Trial 7 (issue 22): what a restore or verify finds of the remote copy of
//! the newest restore point reaches `check`; a new project's empty prefix is
//! "no backup yet"; credentials as the AWS tools read them.

use std::fs;

use crate::common::Run;
use crate::common::s3::{self, Remote};

/// A full and a diff on it, synced: their names.
fn full_and_diff(r: &Remote) -> (String, String) {
    let names = s3::names(&r.points(2, &["--diff-backups", "2"]));
    assert!(names[1].ends_with(".diff.gz"), "{names:?}");
    (names[0].clone(), names[1].clone())
}

/// T7 #15: the newest diff's base record deleted at the store. The restore
/// found the newest point unrestorable; `check` said OK until the fix.
#[test]
fn a_base_record_deleted_at_the_store_fails_check_after_a_restore_until_sync() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "t7base");
    let (base, diff) = full_and_diff(&r);
    r.delete(&format!("{base}.meta.json"));
    let target = r.env.path("x.db");
    r.restore_from_remote("latest", &target)
        .failed_with(1, &format!("whose base {base} is not there"));
    for args in [&["check"][..], &["check", "--format", "nagios"]] {
        let check = r.run(args);
        assert_ne!(check.code, 0, "{}", check.stdout);
        assert!(
            check.stdout.contains(&format!(
                "the newest restore point {diff} cannot be restored from {}: its base {base} has no valid record there",
                r.url
            )),
            "{}",
            check.stdout
        );
    }
    r.run(&["sync"]).ok();
    let check = r.run(&["check"]);
    assert!(
        s3::remote_line(&check).starts_with("OK   remote:"),
        "{}",
        check.stdout
    );
}

/// T7 #15, the verify side: `verify --from-remote` failed the newest point
/// and `check` stayed OK.
#[test]
fn a_base_record_deleted_at_the_store_fails_check_after_verify() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "t7verify");
    let (base, diff) = full_and_diff(&r);
    r.delete(&format!("{base}.meta.json"));
    r.run(&["verify", "--from-remote"]).reported(1, &diff);
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with("FAIL remote:")
            && line.contains(&format!("its base {base} has no valid record there")),
        "{line}"
    );
}

/// T7 #15 variant: the newest diff's own record damaged at the store (not a
/// record any more): verify checked only the base and exit 0, `check` OK.
#[test]
fn the_newest_points_record_damaged_at_the_store_fails_verify_and_check_until_sync() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "t7own");
    let (_, diff) = full_and_diff(&r);
    let record = format!("{diff}.meta.json");
    let mut bytes = r.object(&record);
    let at = bytes.iter().position(|&b| b == b'{').unwrap();
    bytes[at] = b'[';
    r.put(&record, &bytes);
    let verify = r.run(&["verify", "--from-remote"]);
    verify.reported(
        1,
        &format!(
            "{diff} (the newest restore point here) cannot be restored from {}",
            r.url
        ),
    );
    let check = r.run(&["check"]);
    assert_ne!(check.code, 0, "{}", check.stdout);
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("FAIL remote:")
            && line.contains(&format!(
                "the newest restore point {diff} cannot be restored from {}: it has no valid record there",
                r.url
            )),
        "{line}"
    );
    // As sync's error says: the damaged record deleted, sync uploads it again.
    r.delete(&record);
    r.run(&["sync"]).ok();
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(line.starts_with("OK   remote:"), "{line}");
}

/// T7 #4: a new project (no database, no backup directory) whose remote
/// prefix is empty: "no backup yet", exit 0, as without a remote.
#[test]
fn if_db_missing_with_an_empty_remote_prefix_is_no_backup_yet() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "t7new");
    fs::remove_file(&r.env.db).unwrap();
    let run = r.run(&["restore", "latest", "--if-db-missing"]);
    run.ok();
    assert_eq!(run.stdout.trim(), "no backup yet, nothing to restore");
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
    assert!(!r.env.db.exists());
}

/// T7 #4: an unreachable store is no "no backup yet": exit 1, naming it.
#[test]
fn if_db_missing_with_an_unreachable_store_fails() {
    let env = crate::common::Env::new();
    fs::remove_file(&env.db).unwrap();
    let port = s3::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = s3::run(
        &env,
        &endpoint,
        "s3://nobucket/t7",
        &["restore", "latest", "--if-db-missing"],
    );
    run.failed_with(1, "s3://nobucket/t7");
    assert!(!run.stdout.contains("no backup yet"), "{}", run.stdout);
}

/// T7 #8 (a): `key: value` lines in the shared credentials file, as the AWS
/// CLI and boto3 (configparser) read them.
#[test]
fn credentials_file_with_colon_lines_is_read() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "t7colon");
    let file = r.env.path("aws-credentials");
    fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id: {}\naws_secret_access_key:{}\n",
            s3::KEY_ID,
            s3::SECRET
        ),
    )
    .unwrap();
    r.run(&["backup"]).ok();
    let sync = s3::command(&r.env, &r.endpoint, &r.url)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", &file)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("sync")
        .output()
        .map(Run::from)
        .unwrap();
    sync.ok();
    assert!(sync.stdout.contains("1 uploaded"), "{}", sync.stdout);
    assert!(!sync.stderr.contains(s3::SECRET), "{}", sync.stderr);
}

/// T7 #8 (b): empty `AWS_*` keys are unset, as the AWS SDKs take them: the
/// file's keys are used; without a file, one line says so (the store would
/// refuse empty keys).
#[test]
fn empty_key_variables_are_unset() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "t7empty");
    r.run(&["backup"]).ok();
    let with_empty = |file: &std::path::Path| -> Run {
        s3::command(&r.env, &r.endpoint, &r.url)
            .env("AWS_ACCESS_KEY_ID", "")
            .env("AWS_SECRET_ACCESS_KEY", "")
            .env("AWS_SHARED_CREDENTIALS_FILE", file)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg("sync")
            .output()
            .map(Run::from)
            .unwrap()
    };
    // No credentials file at all (HOME has none).
    Run::from(
        s3::command(&r.env, &r.endpoint, &r.url)
            .env("AWS_ACCESS_KEY_ID", "")
            .env("AWS_SECRET_ACCESS_KEY", "")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg("sync")
            .output()
            .unwrap(),
    )
    .failed_with(1, "AWS_ACCESS_KEY_ID is set but empty");
    let file = r.env.path("aws-credentials");
    fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s3::KEY_ID,
            s3::SECRET
        ),
    )
    .unwrap();
    let sync = with_empty(&file);
    sync.ok();
    assert!(sync.stdout.contains("1 uploaded"), "{}", sync.stdout);
}

/// T7 #5: backup directory purged, `restore latest` from the remote (the
/// pre-restore copy makes the directory again): the download's read-back is
/// recorded, and `check` says the newest point is the remote's, no sync
/// recorded here (it said "no restore point to upload yet").
#[test]
fn a_restore_from_the_remote_after_a_purge_is_recorded_and_check_says_so() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "t7purge");
    let name = s3::names(&r.points(1, &[])).remove(0);
    fs::remove_dir_all(&r.env.backups).unwrap();
    r.add_row();
    r.run(&["restore", "latest"]).ok();
    let list = r.run(&["list", "--from-remote"]);
    list.ok();
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{}", list.stdout));
    assert!(!row.contains("unverified"), "{row}");
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with("WAIT remote:")
            && line.contains(&format!(
                "the newest are on {} ({name} read back whole there at",
                r.url
            ))
            && line.contains("run `dbbackup sync`"),
        "{line}"
    );
    r.run(&["sync"]).ok();
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(line.starts_with("OK   remote:"), "{line}");
}

/// T7 #6: the backup directory gone (no mirror): `sync` said it was done,
/// exit 0, recording nothing, and `check` kept advising `dbbackup sync`.
#[test]
fn sync_without_the_backup_directory_fails_naming_it_and_check_says_what_to_do() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "t7gone");
    r.points(1, &[]);
    fs::remove_dir_all(&r.env.backups).unwrap();
    let dir = r.env.backups.display().to_string();
    r.run(&["sync"]).failed_with(
        1,
        &format!("backup directory {dir} does not exist: nothing to upload"),
    );
    assert!(!r.env.backups.exists());
    let line = s3::remote_line(&r.run(&["check"]));
    assert!(
        line.starts_with("FAIL remote:")
            && line.contains(&format!(
                "create it (`mkdir -p {dir}`) and run `dbbackup sync`"
            )),
        "{line}"
    );
}
