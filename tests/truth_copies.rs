//! Issue 18, "every ok is true": the copies a user relies on. A restore's undo
//! (the pre-restore copy) is never left to a backup that cannot be restored; a
//! mirror left behind by a failed copy is filled in by the next run, and
//! reported until it is; odd path names are refused, not a panic.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rusqlite::Connection;

use crate::common::*;
use crate::full_disk::Tmpfs;

/// 500 rows of random blobs (about 500 KB, hardly compressible), backed up; then
/// one precious row, backed up again. Returns (older, newest) backup names.
fn precious_after_two_backups(env: &Env) -> (String, String) {
    Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500)
             INSERT INTO t(v) SELECT randomblob(1000) FROM c;",
        )
        .unwrap();
    env.run(&["backup", "-q"]).ok();
    Connection::open(&env.db)
        .unwrap()
        .execute("INSERT INTO t(v) VALUES ('precious')", [])
        .unwrap();
    // Names are per second: the second backup must not share the first's.
    wait_for_the_next_second();
    env.run(&["backup", "-q"]).ok();
    let files = env.backup_files();
    assert_eq!(files.len(), 2, "{files:?}");
    (files[0].clone(), files[1].clone())
}

fn precious_rows(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM t WHERE v = 'precious'", [], |r| {
            r.get(0)
        })
        .unwrap()
}

fn pre_restore_copies(env: &Env) -> Vec<String> {
    let listed = env.run(&["list", "--format", "json"]);
    listed.ok();
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["role"] == "pre-restore")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// How the newest backup, the only other holder of the database's content, got
/// damaged before the restore.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// 1000 bytes cut off its end (seen by its recorded size).
    Truncated,
    /// 4 bytes flipped, and `verify` recorded it.
    FlippedAndVerified,
    /// 4 bytes flipped, nobody looked: only a whole read sees it.
    FlippedUnseen,
}

#[test]
fn a_restore_keeps_an_undo_when_the_backup_holding_the_same_content_is_damaged() {
    for damage in [
        Damage::Truncated,
        Damage::FlippedAndVerified,
        Damage::FlippedUnseen,
    ] {
        for restore in ["older", "latest"] {
            let env = Env::empty();
            let (older, newest) = precious_after_two_backups(&env);
            let path = env.backups.join(&newest);
            match damage {
                Damage::Truncated => {
                    cut_tail(&path, 1000);
                }
                Damage::FlippedAndVerified => {
                    flip_middle(&path);
                    env.run(&["verify", &newest]).reported(1, "FAILED");
                }
                Damage::FlippedUnseen => flip_middle(&path),
            }
            let name = if restore == "older" { &older } else { "latest" };
            let run = env.run(&["restore", name]);
            // `latest` passes over the damaged newest (the unseen flip is found
            // by its read) and restores the older one.
            let case = format!("{damage:?}, restore {restore}");
            run.ok();
            assert!(
                !run.stdout.contains(&format!("already in {newest}"))
                    && !run.stderr.contains(&format!("held by backup {newest}")),
                "{case}: the damaged backup was taken as the undo\n{}{}",
                run.stdout,
                run.stderr
            );
            assert_eq!(precious_rows(&env.db), 0, "{case}: restored the older one");
            // The undo: the pre-restore copy brings the precious row back.
            let copies = pre_restore_copies(&env);
            assert_eq!(copies.len(), 1, "{case}: {copies:?}");
            env.run(&["restore", &copies[0]]).ok();
            assert_eq!(precious_rows(&env.db), 1, "{case}: the undo");
        }
    }
}

#[test]
fn a_restore_over_content_an_intact_backup_holds_makes_no_copy() {
    let env = Env::empty();
    let (older, newest) = precious_after_two_backups(&env);
    let run = env.run(&["restore", &older]);
    run.ok();
    assert!(
        run.stdout.contains(&newest),
        "says which backup holds the content: {}",
        run.stdout
    );
    assert_eq!(pre_restore_copies(&env), Vec::<String>::new());
    env.run(&["restore", &newest]).ok();
    assert_eq!(precious_rows(&env.db), 1);
}

#[test]
fn a_mirror_left_behind_by_a_failed_copy_is_filled_in_and_reported_until_it_is() {
    let env = Env::new();
    let mount = env.path("mnt");
    let Some(disk) = Tmpfs::mount(&mount, "2m") else {
        return;
    };
    let mirror = mount.join("m");
    fs::create_dir(&mirror).unwrap();
    let log = env.path("summary.log");
    let run = |args: &[&str]| -> Run {
        env.command()
            .env("DBBACKUP_MIRROR_DIRS", &mirror)
            .env("DBBACKUP_SUMMARY_LOG", &log)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let insert = |n: i64| {
        Connection::open(&env.db)
            .unwrap()
            .execute("INSERT INTO ledger (amount, note) VALUES (?1, 'x')", (n,))
            .unwrap();
    };
    run(&["backup", "-q"]).ok();
    disk.remount_read_only();
    insert(1);
    run(&["backup"]).reported(1, "MIRROR FAILED");
    let newest = env.backup_files().last().unwrap().clone();
    assert!(!backup_files_in(&mirror).contains(&newest));

    // The database is unchanged: every run that finds so must still not say ok.
    let again = run(&["backup"]);
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("unchanged since"), "{}", again.stdout);
    assert!(again.stdout.contains("MIRROR FAILED"), "{}", again.stdout);
    let auto = run(&["auto"]);
    assert_eq!(auto.code, 1, "{}{}", auto.stdout, auto.stderr);
    assert!(auto.stdout.contains("MIRROR FAILED"), "{}", auto.stdout);
    let periodic = run(&["periodic"]);
    assert_eq!(periodic.code, 1, "{}{}", periodic.stdout, periodic.stderr);
    let last = summary_lines(&log).pop().unwrap();
    assert_eq!(last["event"], "periodic");
    assert_eq!(last["status"], "failed", "{last:?}");
    assert_eq!(last["mirror"], "failed", "{last:?}");
    let nagios = run(&["check", "--format", "nagios"]);
    assert_eq!(nagios.code, 2, "CRITICAL: {}", nagios.stdout);
    assert!(
        nagios
            .stdout
            .contains(&format!("{newest} is not in the mirror")),
        "{}",
        nagios.stdout
    );
    assert!(!backup_files_in(&mirror).contains(&newest));

    // Writable again: the next run finds the database unchanged and fills the
    // mirror in; check is healthy.
    disk.remount_read_write();
    let filled = run(&["backup"]);
    filled.ok();
    assert!(
        filled.stdout.contains(&format!("mirrored {newest}")),
        "{}",
        filled.stdout
    );
    assert!(backup_files_in(&mirror).contains(&newest));
    assert_eq!(
        fs::read(mirror.join(&newest)).unwrap(),
        fs::read(env.backups.join(&newest)).unwrap()
    );
    let healthy = run(&["check", "--format", "nagios"]);
    assert_eq!(healthy.code, 0, "OK: {}", healthy.stdout);
    run(&["periodic"]).ok();
    run(&["auto"]).ok();
}

#[test]
fn auto_within_the_interval_fills_in_a_mirror_that_lacks_the_newest_backup() {
    let env = Env::new();
    let mirror = env.path("m");
    let run = |args: &[&str]| env.run_mirrored(&mirror, args);
    run(&["backup", "-q"]).ok();
    let newest = env.backup_files().pop().unwrap();
    fs::remove_file(mirror.join(&newest)).unwrap();
    run(&["check"]).reported(1, "is not in the mirror");
    // Not due (the interval has not passed): nothing is backed up, the mirror
    // is filled in anyway.
    let auto = run(&["auto"]);
    auto.ok();
    assert!(auto.stdout.contains("skipped"), "{}", auto.stdout);
    assert_eq!(env.backup_files(), vec![newest.clone()]);
    assert_eq!(backup_files_in(&mirror), vec![newest]);
    run(&["check"]).ok();
}

fn assert_no_panic(run: &Run) {
    assert!(!run.stderr.contains("panicked"), "a panic:\n{}", run.stderr);
}

#[test]
fn path_settings_that_are_not_utf8_are_refused_before_anything_is_written() {
    let env = Env::new();
    let odd = |prefix: &str| {
        let mut bytes = prefix.as_bytes().to_vec();
        bytes.push(0xff);
        env.root.path().join(std::ffi::OsStr::from_bytes(&bytes))
    };
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec!["--backup-dir".into(), odd("b").into(), "backup".into()],
            "backup directory",
        ),
        (
            vec!["--mirror-dir".into(), odd("m").into(), "backup".into()],
            "mirror directory",
        ),
        (
            vec!["--summary-log".into(), odd("s").into(), "backup".into()],
            "summary log",
        ),
        (
            vec!["periodic".into(), "--metrics-file".into(), odd("p").into()],
            "metrics file",
        ),
        (
            vec![
                "export".into(),
                "latest".into(),
                "--out".into(),
                odd("e").into(),
            ],
            "export file",
        ),
        (
            vec![
                "init".into(),
                "--slurm".into(),
                "--slurm-dir".into(),
                odd("t").into(),
            ],
            "SLURM template directory",
        ),
    ];
    for (args, what) in cases {
        let run: Run = env.command().args(&args).output().unwrap().into();
        assert_no_panic(&run);
        run.failed_with(2, &format!("{what} "));
        assert!(run.stderr.contains("not valid UTF-8"), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        assert!(!env.backups.exists(), "{what}: nothing written");
        let entries = fs::read_dir(env.root.path()).unwrap().count();
        assert_eq!(entries, 1, "{what}: only the database is there");
    }
}

#[test]
fn a_usage_error_naming_an_argument_that_is_not_utf8_exits_2() {
    let env = Env::new();
    let bad = std::ffi::OsStr::from_bytes(b"\xff").to_os_string();
    let odd_dir = std::ffi::OsStr::from_bytes(b"b\xff").to_os_string();
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["--bogus".into(), bad.clone()],
        vec![
            "--backup-dir".into(),
            "x".into(),
            "--backup-dir".into(),
            odd_dir,
            "backup".into(),
        ],
        vec![
            "check".into(),
            "--format".into(),
            "nagios".into(),
            "--bogus".into(),
            bad,
        ],
    ];
    for args in cases {
        let run: Run = env.command().args(&args).output().unwrap().into();
        assert_no_panic(&run);
        let expected = if args.iter().any(|a| a == "nagios") {
            3
        } else {
            2
        };
        assert_eq!(run.code, expected, "{args:?}\n{}{}", run.stdout, run.stderr);
    }
}

#[test]
fn verify_of_an_empty_file_says_not_a_gzip_file_once() {
    let env = Env::new();
    env.run(&["backup", "-q"]).ok();
    fs::write(env.backups.join("backup_20250101_000000.db.gz"), b"").unwrap();
    let run = env.run(&["verify", "backup_20250101_000000.db.gz"]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "{all}");
    assert_eq!(
        all.matches("not a gzip file").count(),
        2,
        "stdout and log: {all}"
    );
    assert!(!all.contains("not a gzip file (not a gzip file)"), "{all}");
}

/// T12 #9: `restore latest` passed over a damaged newest backup to an older
/// one without a word of the mirror holding that newest backup intact. Now a
/// note names the mirror's copy and the commands to verify and restore it;
/// following them gives the newest state.
#[test]
fn restore_latest_names_a_mirrors_copy_of_a_damaged_newest_backup() {
    let env = Env::new();
    let mirror = env.path("mirror");
    let with_mirror = |args: &[&str]| env.run_mirrored(&mirror, args);
    with_mirror(&["backup"]).ok();
    Connection::open(&env.db)
        .unwrap()
        .execute_batch("INSERT INTO ledger (amount, note) VALUES (7, 'newest');")
        .unwrap();
    with_mirror(&["backup", "--force"]).ok();
    let newest_state = content_digest(&env.db);
    let names = env.backup_files();
    let newest = env.backups.join(&names[1]);
    let mut bytes = fs::read(&newest).unwrap();
    let near_end = bytes.len() - 100;
    bytes[near_end] ^= 0xff;
    fs::write(&newest, &bytes).unwrap();
    let target = env.path("t.db");
    let restore = with_mirror(&["restore", "latest", "--target", target.to_str().unwrap()]);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!("restored {}", names[0])),
        "{}",
        restore.stdout
    );
    let m = mirror.display();
    let note = format!(
        "note: mirror {m} holds a copy of {} (its header there names this backup; not read whole yet): \
         dbbackup --backup-dir {m} verify {}, then dbbackup --backup-dir {m} restore {} --target {}",
        names[1],
        names[1],
        names[1],
        target.display()
    );
    assert!(restore.stdout.contains(&note), "{}", restore.stdout);
    env.run(&[
        "--backup-dir",
        mirror.to_str().unwrap(),
        "verify",
        &names[1],
    ])
    .ok();
    let from_mirror = env.path("m.db");
    env.run(&[
        "--backup-dir",
        mirror.to_str().unwrap(),
        "restore",
        &names[1],
        "--target",
        from_mirror.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(content_digest(&from_mirror), newest_state);
}

/// T13 #8: a mirror that is the backup directory reached through a bind
/// mount (one project space mounted under two paths) was accepted: every
/// backup said "mirrored", `check` passed the mirror, and there was one copy.
/// It is refused like the backup directory under another spelling.
#[test]
fn a_mirror_that_is_the_backup_directory_through_another_mount_is_refused() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let other = env.path("same-place");
    let Some(_mounted) = bind_mount(&env.backups, &other) else {
        return;
    };
    let before = env.backup_files();
    let run = env.run_mirrored(&other, &["backup", "--force"]);
    let check = env.run_mirrored(&other, &["check"]);
    run.failed_with(2, "is the backup directory");
    check.failed_with(2, "is the backup directory");
    assert_eq!(env.backup_files(), before, "nothing made");
}

/// T15 #3: a mirror inside the backup directory (one tree, lost together)
/// was accepted, every backup said "mirrored" and `check` passed it.
#[test]
fn a_mirror_inside_the_backup_directory_is_refused() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let inside = env.backups.join("mirror");
    let run = env.run_mirrored(&inside, &["backup", "--force"]);
    run.failed_with(2, "is inside the backup directory");
    env.run_mirrored(&inside, &["check"])
        .failed_with(2, "is inside the backup directory");
    assert!(!inside.exists());
    // Under other names of the backup directory (T17 F1, F2, F7): a link to
    // it, a bind mount of it, a bind mount of the directory above it.
    let link = env.path("link");
    std::os::unix::fs::symlink(&env.backups, &link).unwrap();
    env.run_mirrored(&link.join("m2"), &["backup", "--force"])
        .failed_with(2, "is inside the backup directory");
    let bound = env.path("bound");
    let above = env.path("above");
    let Some(_bound) = bind_mount(&env.backups, &bound) else {
        return;
    };
    let _above = bind_mount(env.backups.parent().unwrap(), &above).expect("bind-mount");
    env.run_mirrored(&bound.join("m4"), &["backup", "--force"])
        .failed_with(2, "is inside the backup directory");
    env.run_mirrored(&above, &["backup", "--force"])
        .failed_with(2, "is inside the mirror directory");
    assert!(!bound.join("m4").exists());
}

/// T15 #11: with the newest backup's header damaged and an older one damaged
/// in its body, the note named the mirror's copy of the older one only (the
/// body damage is found first). It names the newest with an intact copy.
#[test]
fn the_mirror_note_names_the_newest_passed_over_backup_it_holds() {
    let env = Env::new();
    let mirror = env.path("mirror");
    for round in 0..3 {
        Connection::open(&env.db)
            .unwrap()
            .execute(
                "INSERT INTO ledger (amount, note) VALUES (1, ?1)",
                [format!("round {round}")],
            )
            .unwrap();
        env.run_mirrored(&mirror, &["backup"]).ok();
    }
    let names = env.backup_files();
    let older = env.backups.join(&names[1]);
    let mut bytes = fs::read(&older).unwrap();
    let near_end = bytes.len() - 100;
    bytes[near_end] ^= 0xff;
    fs::write(&older, &bytes).unwrap();
    let newest = env.backups.join(&names[2]);
    let mut bytes = fs::read(&newest).unwrap();
    let at = bytes
        .windows(10)
        .position(|w| w == b"\"source\":\"")
        .unwrap()
        + 12;
    bytes[at] ^= 0x01;
    fs::write(&newest, &bytes).unwrap();
    let target = env.path("t.db");
    let restore = env.run_mirrored(
        &mirror,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    restore.ok();
    assert!(
        restore.stdout.contains(&format!(
            "note: mirror {} holds a copy of {}",
            mirror.display(),
            names[2]
        )),
        "{}",
        restore.stdout
    );
}
