//! `restore`: checked before touching anything, pre-restore backup, atomic
//! replacement, no stale WAL.

use std::fs;

use crate::common::*;

#[test]
fn restore_latest_into_a_new_target() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let target = env.path("restored/results.db");
    // A typo in --target must not create directories.
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .failed_with(
            1,
            &format!(
                "directory {} does not exist",
                env.path("restored").display()
            ),
        );
    assert!(!env.path("restored").exists());
    fs::create_dir(env.path("restored")).unwrap();
    let run = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    run.ok();
    assert_eq!(content_digest(&target), content_digest(&env.db));
}

#[test]
fn restore_over_a_wal_database_drops_rows_that_live_only_in_its_wal() {
    let env = Env::empty();
    make_ledger_db(&env.db, 300, true);
    env.run(&["backup"]).ok();
    let backup_digest = content_digest(&env.db);
    let backup_name = env.backup_files()[0].clone();
    // Commit more rows and leave them in the -wal: the process dies without a checkpoint.
    commit_into_wal_without_checkpoint(&env.db, 50);
    let wal = env.path("results.db-wal");
    assert!(
        fs::metadata(&wal).unwrap().len() > 0,
        "rows are in the -wal"
    );
    assert_eq!(row_count(&env.db, "ledger"), 650);
    let run = env.run(&["restore", &backup_name]);
    run.ok();
    assert!(
        run.stdout.contains("previous content saved as"),
        "{}",
        run.stdout
    );
    assert!(
        !wal.exists() || fs::metadata(&wal).unwrap().len() == 0,
        "no stale -wal"
    );
    assert_eq!(content_digest(&env.db), backup_digest);
    assert_eq!(row_count(&env.db, "ledger"), 600);
    assert_ledger_invariant(&env.db);
    // The pre-restore backup kept the late rows.
    let listed = listed(&env);
    let pre: Vec<_> = listed
        .iter()
        .filter(|(_, r)| r["kind"] == "pre-restore")
        .collect();
    assert_eq!(pre.len(), 1);
    let saved = gunzip_to(&env.backups.join(pre[0].0), &env.path("saved.db"));
    assert_eq!(row_count(&saved, "ledger"), 650);
}

#[test]
fn restore_refuses_names_that_are_paths() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let before = content_digest(&env.db);
    for bad in ["../results.db", "/etc/passwd", ".."] {
        env.run(&["restore", bad]).failed_with(2, "not a path");
    }
    // A path to a backup that is not there: said so, with where backups are
    // (T23 #2); the directory itself: give a backup in it.
    env.run(&["restore", "sub/backup_20250101_000000.db.gz"])
        .failed_with(1, &format!(
            "no backup at 'sub/backup_20250101_000000.db.gz': no such file, and the backup directory is {}",
            env.backups.display()
        ));
    env.run(&["restore", env.backups.to_str().unwrap()])
        .failed_with(2, "that is the backup directory; give a backup in it");
    env.run(&["restore", "backup_19990101_000000.db.gz"])
        .failed_with(1, "no backup named");
    assert_eq!(content_digest(&env.db), before);
    assert_eq!(env.backup_files().len(), 1);
}

/// T19 #9: a shell's tab completion gives the path to a backup
/// (`outputs/db_backups/backup_….db.gz`): one in the backup directory names
/// that backup (relative, absolute, under another name of the directory) for
/// `restore`, `verify` and `export`; one elsewhere is refused with the way to
/// name it, nothing touched.
#[test]
fn a_path_to_a_backup_in_the_backup_directory_names_it() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let backup = env.newest_backup();
    let name = backup.file_name().unwrap().to_str().unwrap().to_string();
    let expected = content_digest(&gunzip_to(&backup, &env.path("expected.db")));
    let relative = format!(
        "{}/{name}",
        env.backups.strip_prefix(env.root.path()).unwrap().display()
    );
    let absolute = backup.to_str().unwrap().to_string();
    let linked = env.path("linked-backups");
    std::os::unix::fs::symlink(&env.backups, &linked).unwrap();
    let through_link = format!("{}/{name}", linked.display());
    for (i, given) in [&relative, &absolute, &through_link].iter().enumerate() {
        let target = env.path(&format!("copy{i}.db"));
        let run = env.run(&["restore", given, "--target", target.to_str().unwrap()]);
        run.ok();
        assert!(
            run.stdout.contains(&format!("restored {name}")),
            "{}",
            run.stdout
        );
        assert_eq!(content_digest(&target), expected);
    }
    env.run(&["verify", &relative]).ok();
    let out = env.path("export.db.gz");
    env.run(&["export", &absolute, "--out", out.to_str().unwrap()])
        .ok();
    assert_eq!(
        content_digest(&gunzip_to(&out, &env.path("exported.db"))),
        expected
    );
    // A copy elsewhere: refused, saying how to name it.
    let elsewhere = env.path("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::copy(&backup, elsewhere.join(&name)).unwrap();
    let before = content_digest(&env.db);
    let given = format!("{}/{name}", elsewhere.display());
    let run = env.run(&["restore", &given]);
    run.failed_with(2, "is not in the backup directory");
    assert!(
        run.stderr
            .contains(&format!("--backup-dir {}", elsewhere.display())),
        "{}",
        run.stderr
    );
    assert_eq!(content_digest(&env.db), before);
}

#[test]
fn a_damaged_backup_is_refused_before_the_target_is_touched() {
    let env = Env::empty();
    make_results_db(&env.db, 2.0, false);
    env.run(&["backup"]).ok();
    let backup = env.newest_backup();
    let bytes = fs::read(&backup).unwrap();
    fs::write(&backup, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let before = fs::read(&env.db).unwrap();
    env.run(&["restore", "latest"]).failed_with(1, "damaged");
    assert_eq!(fs::read(&env.db).unwrap(), before, "database untouched");
    let leftovers: Vec<_> = fs::read_dir(env.root.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".dbbackup-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp file removed");
}

#[test]
fn if_db_missing_restores_only_a_missing_database() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let digest = content_digest(&env.db);
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.ok();
    assert!(run.stdout.contains("nothing to restore"));
    assert_eq!(env.backup_files().len(), 1, "no pre-restore backup made");
    fs::remove_file(&env.db).unwrap();
    env.run(&["restore", "latest", "--if-db-missing"]).ok();
    assert_eq!(content_digest(&env.db), digest);
}

#[test]
fn a_target_open_by_a_writer_is_refused() {
    let env = Env::empty();
    make_ledger_db(&env.db, 50, true);
    env.run(&["backup"]).ok();
    // An open connection that has read: it keeps the -shm mapped and locked.
    let holder = rusqlite::Connection::open(&env.db).unwrap();
    holder
        .query_row("SELECT count(*) FROM ledger", [], |_| Ok(()))
        .unwrap();
    let run = env.run(&["restore", "latest"]);
    drop(holder);
    run.failed_with(1, "is in use");
    assert_eq!(env.backup_files().len(), 1, "nothing saved or replaced");
}

/// The cluster layout `results.db -> scratch/results.db`: backup accepts the link,
/// and so does restore of the configured database, into the real file (temp file
/// and rename beside it, in-use detection on it); the link stays a link.
#[test]
fn restore_of_a_symlinked_database_goes_into_the_real_file() {
    let env = Env::new();
    fs::create_dir(env.path("scratch")).unwrap();
    fs::rename(&env.db, env.path("scratch/results.db")).unwrap();
    std::os::unix::fs::symlink("scratch/results.db", &env.db).unwrap();
    let real = fs::canonicalize(env.path("scratch"))
        .unwrap()
        .join("results.db");
    env.run(&["backup"]).ok();
    let backed_up = content_digest(&real);
    let name = env.backup_files()[0].clone();
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (5, 'later'); UPDATE counter SET n = n + 1",
        )
        .unwrap();
    assert_ne!(content_digest(&real), backed_up);

    // In use through the link: detected on the real file, nothing changed.
    let changed = content_digest(&real);
    let holder = hold_exclusive(&env.db);
    env.run(&["restore", "latest"]).failed_with(1, "is in use");
    drop(holder);
    assert_eq!(content_digest(&real), changed);

    let run = env.run(&["restore", "latest"]);
    run.ok();
    let line = run.stdout.lines().next().unwrap_or("");
    let expected = format!(
        "restored {name} into {} (through the symbolic link {}) (previous content saved as ",
        real.display(),
        env.db.display()
    );
    assert!(line.starts_with(&expected), "{}", run.stdout);
    assert_eq!(
        fs::read_link(&env.db).unwrap(),
        std::path::Path::new("scratch/results.db"),
        "the link stays"
    );
    assert!(fs::symlink_metadata(&real).unwrap().is_file());
    assert_eq!(content_digest(&real), backed_up);
    assert_ledger_invariant(&real);
    for dir in [env.root.path().to_path_buf(), env.path("scratch")] {
        let temps: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".dbbackup-tmp"))
            .collect();
        assert!(temps.is_empty(), "{}: {temps:?}", dir.display());
    }

    // Scratch purged, the link dangling: `latest` is still this database's
    // newest backup, restored where the link leads.
    fs::remove_file(&real).unwrap();
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.ok();
    assert_eq!(
        run.stdout.lines().next().unwrap_or(""),
        format!(
            "restored {name} into {} (through the symbolic link {})",
            real.display(),
            env.db.display()
        ),
        "{}",
        run.stdout
    );
    assert!(fs::symlink_metadata(&env.db).unwrap().is_symlink());
    assert_eq!(content_digest(&real), backed_up);
}

/// T23 #4: `--backup-dir MIRROR restore latest` (the way back when the backup
/// directory is lost) restored the mirror's older point without a word while
/// the configured backup directory, intact, held a newer one.
#[test]
fn restore_latest_through_a_mirror_names_a_newer_point_in_the_backup_directory() {
    let env = Env::new();
    let mirror = env.path("m");
    env.configure_with_mirror(&mirror);
    let root = env.root.path();
    bare(root, &["backup"]).ok();
    crate::common::s3::add_row(&env.db);
    // The mirror misses this one (unmounted, its copy failed).
    let other = env.path("other");
    bare(root, &["--mirror-dir", other.to_str().unwrap(), "backup"]).ok();
    let newest = env.newest_backup();
    let newest = newest.file_name().unwrap().to_str().unwrap();
    let run = bare(
        root,
        &[
            "--backup-dir",
            mirror.to_str().unwrap(),
            "restore",
            "latest",
        ],
    );
    run.ok();
    assert!(
        run.stderr.contains(&format!(
            "{} holds a newer restore point of this database than {}: {newest}",
            env.backups.display(),
            mirror.display()
        )),
        "{}",
        run.stderr
    );
}

/// T22 F4: a rollback made through a mirror (`--backup-dir MIRROR restore
/// OLD`) was not recorded for the configured backup directory: its `restore
/// latest` then brought back the state the rollback undid, without a word.
#[test]
fn a_rollback_through_a_mirror_is_latest_in_the_backup_directory_too() {
    let env = Env::new();
    let mirror = env.path("m");
    env.configure_with_mirror(&mirror);
    let root = env.root.path();
    bare(root, &["backup"]).ok();
    let rolled_back_to = env.newest_backup();
    let name = rolled_back_to.file_name().unwrap().to_str().unwrap();
    let wanted = content_digest(&gunzip_to(&rolled_back_to, &env.path("wanted.db")));
    for _ in 0..2 {
        crate::common::s3::add_row(&env.db);
        bare(root, &["backup"]).ok();
    }
    bare(
        root,
        &["--backup-dir", mirror.to_str().unwrap(), "restore", name],
    )
    .ok();
    assert_eq!(content_digest(&env.db), wanted);
    fs::remove_file(&env.db).unwrap();
    let run = bare(root, &["restore", "latest"]);
    run.ok();
    assert_eq!(
        content_digest(&env.db),
        wanted,
        "latest brought back what the rollback undid: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "`latest` is {name}: the database was set back to it"
        )),
        "{}",
        run.stderr
    );
}

/// T23 #11: the undo copy of a restore through a mirror (`--backup-dir MIRROR
/// restore latest`) was written to the mirror only: `dbbackup restore NAME`,
/// as the restore's own line says, found nothing in the configured backup
/// directory. It is copied there too.
#[test]
fn the_undo_of_a_restore_through_a_mirror_is_in_the_backup_directory_too() {
    let env = Env::new();
    let mirror = env.path("m");
    env.configure_with_mirror(&mirror);
    let root = env.root.path();
    bare(root, &["backup"]).ok();
    crate::common::s3::add_row(&env.db);
    bare(root, &["backup"]).ok();
    crate::common::s3::add_row(&env.db);
    let replaced = content_digest(&env.db);
    let before: Vec<String> = backup_files_in(&mirror);
    let points = env.backup_files();
    assert_eq!(points.len(), 2);
    bare(
        root,
        &[
            "--backup-dir",
            mirror.to_str().unwrap(),
            "--max-backups",
            "1",
            "restore",
            "latest",
        ],
    )
    .ok();
    // The copy is only placed there: that directory's retention is its own.
    for point in &points {
        assert!(env.backups.join(point).is_file(), "{point} was deleted");
    }
    assert_ne!(content_digest(&env.db), replaced);
    let undo: Vec<String> = backup_files_in(&mirror)
        .into_iter()
        .filter(|name| !before.contains(name))
        .collect();
    assert_eq!(
        undo.len(),
        1,
        "one pre-restore copy in the mirror: {undo:?}"
    );
    assert!(
        env.backups.join(&undo[0]).is_file(),
        "the undo {} is not in the backup directory: {:?}",
        undo[0],
        env.backup_files()
    );
    let run = bare(root, &["restore", &undo[0], "--force"]);
    run.ok();
    assert_eq!(content_digest(&env.db), replaced, "{}", run.stderr);
}
