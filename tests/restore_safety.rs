//! Issue 9 trial: the restore engine never loses a commit or the only copy of
//! anything, keeps the database's permissions, and never writes over a backup.
//! Real databases, real `dbbackup` processes, checked by content.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::common::*;
use crate::restore_points::{add_row, rows};

fn ids(path: &Path) -> BTreeSet<i64> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM w").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A short-lived writer in a thread of the test process (another process than
/// the dbbackup under test): connect, insert one id, commit, close, log the id
/// only once COMMIT returned success.
struct ShortWriter {
    stop: Arc<AtomicBool>,
    committed: Arc<Mutex<Vec<i64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ShortWriter {
    fn start(db: &Path) -> ShortWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(Mutex::new(Vec::new()));
        let (db, stopped, log) = (db.to_path_buf(), Arc::clone(&stop), Arc::clone(&committed));
        let thread = std::thread::spawn(move || {
            let mut next: i64 = 1_000_000;
            while !stopped.load(Ordering::Relaxed) {
                next += 1;
                // Busy or moved under us: the commit failed, so it is not logged.
                let attempt = Connection::open(&db).and_then(|conn| {
                    conn.busy_timeout(Duration::ZERO)?;
                    conn.execute("INSERT INTO w (id) VALUES (?1)", [next])?;
                    conn.close().map_err(|(_, e)| e)
                });
                if attempt.is_ok() {
                    log.lock().unwrap().push(next);
                }
                // Pacing only (the writer of the report), not a wait for a state.
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        ShortWriter {
            stop,
            committed,
            thread: Some(thread),
        }
    }

    fn count(&self) -> usize {
        self.committed.lock().unwrap().len()
    }

    /// Returns once the writer has committed at least one more id.
    fn wait_for_a_commit(&self) {
        let before = self.count();
        while self.count() == before {
            std::thread::yield_now();
        }
    }

    fn finish(mut self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.committed.lock().unwrap().clone()
    }
}

fn restores_never_lose_a_commit(wal: bool) {
    let env = Env::empty();
    {
        let conn = Connection::open(&env.db).unwrap();
        if wal {
            conn.pragma_update(None, "journal_mode", "wal").unwrap();
        }
        conn.execute_batch("CREATE TABLE w (id INTEGER PRIMARY KEY); INSERT INTO w VALUES (1);")
            .unwrap();
    }
    env.run(&["backup"]).ok();
    let writer = ShortWriter::start(&env.db);
    let mut copies = Vec::new();
    let (mut restored, mut refused) = (0, 0);
    for _ in 0..rounds(40, 15) {
        // Something new to lose in every round.
        writer.wait_for_a_commit();
        let run = env.run(&[
            "--keep-pre-restore",
            "1000",
            "restore",
            "latest",
            "--format",
            "json",
        ]);
        if run.code == 0 {
            restored += 1;
            let name = run.json()["pre_restore_backup"]
                .as_str()
                .unwrap()
                .to_string();
            copies.push(name);
        } else {
            assert_eq!(run.code, 1, "{}", run.stderr);
            // Before anything was done, or after the copy: the target untouched either way.
            let db = env.db.display().to_string();
            // (A refusal after the copy also logs the copy's publication.)
            let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("ERROR")).collect();
            assert_eq!(errors.len(), 1, "{}", run.stderr);
            let line = errors[0];
            let before = line.contains(&format!("database {db} is in use by pid "))
                && line.ends_with("; nothing was changed");
            // Its new copy removed again (the database left in place holds it),
            // or its content already held by a backup, or (a commit in the
            // instant the guard left WAL mode) the copy kept and named.
            let after = line.contains(&format!("database {db} came into use by "))
                && (line.ends_with("; nothing was replaced")
                    || line.contains(
                        "; nothing was replaced (its content is also held by backup backup_",
                    )
                    || line.contains("which wrote to it; nothing was replaced ("));
            assert!(before || after, "only an in-use refusal: {line}");
            refused += 1;
        }
    }
    let committed = writer.finish();
    eprintln!(
        "{restored} restored, {refused} refused, {} committed",
        committed.len()
    );
    assert!(restored > 0, "no restore ran: {refused} refused");
    let mut held = ids(&env.db);
    for (i, name) in copies.iter().enumerate() {
        let backup = env.backups.join(name);
        assert!(backup.exists(), "{name} exists");
        let copy = gunzip_to(&backup, &env.path(&format!("copy{i}.db")));
        held.extend(ids(&copy));
    }
    let lost: Vec<_> = committed.iter().filter(|id| !held.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} committed ids lost ({restored} restores, {refused} refused): {lost:?}",
        lost.len(),
        committed.len()
    );
    assert_eq!(
        Connection::open(&env.db)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
}

#[test]
fn restores_never_lose_a_commit_of_a_short_lived_wal_writer() {
    restores_never_lose_a_commit(true);
}

#[test]
fn restores_never_lose_a_commit_of_a_short_lived_rollback_writer() {
    restores_never_lose_a_commit(false);
}

/// `env.db` with table `t`, and a backup after each of `rows`; returns the names.
fn backups_of_rows(env: &Env, rows: &[&str]) -> Vec<String> {
    Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE t (x TEXT)")
        .unwrap();
    let mut names = Vec::new();
    for row in rows {
        add_row(&env.db, row);
        let run = env.run(&["backup", "--format", "json"]);
        run.ok();
        names.push(run.json()["name"].as_str().unwrap().to_string());
    }
    names
}

#[test]
fn restoring_round_the_backups_keeps_the_only_copy_of_unsaved_rows() {
    let env = Env::empty();
    let names = backups_of_rows(&env, &["a", "b", "c"]);
    let unique: Vec<String> = (0..10).map(|i| format!("unsaved {i}")).collect();
    for row in &unique {
        add_row(&env.db, row);
    }
    let mut reported = Vec::new();
    for name in names.iter().chain(&names) {
        let run = env.run(&["restore", name, "--format", "json"]);
        run.ok();
        reported.push(
            run.json()["pre_restore_backup"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // The unsaved rows are still in some backup.
    let mut wanted = vec!["a".to_string(), "b".into(), "c".into()];
    wanted.extend(unique);
    let holders: Vec<String> = env
        .backup_files()
        .into_iter()
        .filter(|name| {
            let copy = gunzip_to(&env.backups.join(name), &env.path("probe.db"));
            let held = rows(&copy) == wanted;
            fs::remove_file(&copy).unwrap();
            held
        })
        .collect();
    assert_eq!(holders.len(), 1, "exactly one copy of the unsaved rows");
    // The first restore saved the unsaved rows; every later one replaced content
    // that a restore point already holds: named, not copied again.
    let first = &reported[0];
    assert!(!names.contains(first), "a new copy: {reported:?}");
    let expected: Vec<&String> = std::iter::once(first)
        .chain([&names[0], &names[1], &names[2], &names[0], &names[1]])
        .collect();
    assert_eq!(reported.iter().collect::<Vec<_>>(), expected);
    let run = env.run(&["restore", &names[1]]);
    run.ok();
    assert!(
        run.stdout.contains(&format!(
            "restored {} into {} (its previous content is already in {}: no pre-restore copy needed)",
            names[1],
            env.db.display(),
            names[2]
        )),
        "{}",
        run.stdout
    );
    // The unsaved rows survive in their copy, which is the only pre-restore copy.
    assert_eq!(&holders[0], first);
    let listed = listed(&env);
    let pre: Vec<_> = listed
        .iter()
        .filter(|(_, row)| row["kind"] == "pre-restore")
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(pre, std::slice::from_ref(first));
    // And it restores by name.
    env.run(&["restore", first]).ok();
    assert_eq!(rows(&env.db), wanted);
}

#[test]
fn keep_pre_restore_0_is_refused_and_the_reported_copy_always_exists() {
    let env = Env::empty();
    let names = backups_of_rows(&env, &["a"]);
    add_row(&env.db, "unsaved");
    let before = fs::read(&env.db).unwrap();
    env.run(&["--keep-pre-restore", "0", "restore", "latest"])
        .failed_with(
            2,
            "invalid value '0' for '--keep-pre-restore <N>': must be a whole number from 1 to 4294967295, not '0'",
        );
    assert_eq!(fs::read(&env.db).unwrap(), before, "untouched");
    fs::write(env.path("dbbackup.yaml"), "keep_pre_restore: 0\n").unwrap();
    let run: Run = env
        .command()
        .args(["--config", "dbbackup.yaml", "restore", "latest"])
        .output()
        .unwrap()
        .into();
    run.failed_with(
        2,
        "config file dbbackup.yaml line 1: keep_pre_restore: must be a whole number from 1 to 4294967295, not 0",
    );
    assert_eq!(fs::read(&env.db).unwrap(), before, "untouched");
    fs::remove_file(env.path("dbbackup.yaml")).unwrap();
    // The smallest retention: each reported copy is there after its command.
    for round in 0..3 {
        add_row(&env.db, &format!("round {round}"));
        let run = env.run(&[
            "--keep-pre-restore",
            "1",
            "restore",
            &names[0],
            "--format",
            "json",
        ]);
        run.ok();
        let saved = run.json()["pre_restore_backup"]
            .as_str()
            .unwrap()
            .to_string();
        let copy = gunzip_to(&env.backups.join(&saved), &env.path("copy.db"));
        assert_eq!(rows(&copy), ["a", "unsaved", &format!("round {round}")][..]);
        fs::remove_file(&copy).unwrap();
        // Back to the same state for the next round.
        env.run(&["--keep-pre-restore", "1", "restore", &saved])
            .ok();
        Connection::open(&env.db)
            .unwrap()
            .execute("DELETE FROM t WHERE x LIKE 'round%'", [])
            .unwrap();
    }
}

#[test]
fn restore_keeps_the_databases_mode_group_and_owner() {
    let env = Env::empty();
    let names = backups_of_rows(&env, &["a"]);
    add_row(&env.db, "later");
    fs::set_permissions(&env.db, fs::Permissions::from_mode(0o664)).unwrap();
    let root = nix::unistd::geteuid().is_root();
    // daemon:daemon (1:1) on any Linux; only root may give a file away.
    if root {
        std::os::unix::fs::chown(&env.db, Some(1), Some(1)).unwrap();
    }
    let before = fs::metadata(&env.db).unwrap();
    let run: Run = env
        .command()
        .args(["restore", &names[0]])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert_eq!(rows(&env.db), ["a"]);
    let after = fs::metadata(&env.db).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o664, "mode kept despite the umask");
    assert_eq!(after.gid(), before.gid(), "group kept");
    assert_eq!(after.uid(), before.uid(), "owner kept");
    if root {
        assert_eq!((after.uid(), after.gid()), (1, 1));
    }
    // A new target gets the backup's mode, as before.
    let target = env.path("new.db");
    env.run(&["restore", &names[0], "--target", target.to_str().unwrap()])
        .ok();
    let backup_mode = fs::metadata(env.backups.join(&names[0])).unwrap().mode() & 0o666;
    assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, backup_mode);
}

#[test]
fn a_target_named_like_a_backup_in_a_backup_directory_is_refused_even_with_force() {
    let env = Env::empty();
    let names = backups_of_rows(&env, &["a"]);
    let mirror = env.path("mirror");
    env.run(&[
        "--mirror-dir",
        mirror.to_str().unwrap(),
        "backup",
        "--force",
    ])
    .ok();
    let mirrored = backup_files_in(&mirror);
    assert_eq!(mirrored.len(), 1);
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            // Files: the state directory (attempt records) is not a restore target.
            .filter(|e| e.path().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let (backups_before, mirror_before) = (snapshot(&env.backups), snapshot(&mirror));
    let through_link = env.path("link");
    std::os::unix::fs::symlink(&env.backups, &through_link).unwrap();
    let mut targets = vec![
        (env.backups.clone(), names[0].clone()),
        (env.backups.clone(), "backup_20990101_000000.db.gz".into()),
        (env.backups.clone(), ".dbbackup-tmp-x.part".into()),
        (env.backups.clone(), ".dbbackup.lock".into()),
        (through_link.clone(), names[0].clone()),
        (mirror.clone(), mirrored[0].clone()),
    ];
    // Through a bind mount of the backup directory (T15 #12).
    let bound = env.path("bound");
    // Held to the end of the test: unmounted when it drops.
    let mounted = bind_mount(&env.backups, &bound);
    if mounted.is_some() {
        targets.push((bound.clone(), names[0].clone()));
        targets.push((bound.clone(), ".dbbackup.lock".into()));
    }
    for (dir, name) in targets {
        let target = dir.join(&name);
        let run = env.run(&[
            "--mirror-dir",
            mirror.to_str().unwrap(),
            "restore",
            &names[0],
            "--force",
            "--target",
            target.to_str().unwrap(),
        ]);
        let home = if dir == mirror { &mirror } else { &env.backups };
        let what = if name == ".dbbackup.lock" {
            "is its lock file"
        } else if name.starts_with(".dbbackup-tmp-") {
            "is named like its temp files"
        } else {
            "is named like a backup file"
        };
        run.failed_with(
            1,
            &format!(
                "restore target {} is in backup directory {} and {what}; refusing to write a database there, even with --force (restore into another path)",
                target.display(),
                home.display()
            ),
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    assert_eq!(snapshot(&env.backups), backups_before, "backups untouched");
    assert_eq!(snapshot(&mirror), mirror_before, "mirror untouched");
    // Other names in the backup directory are the user's business.
    let elsewhere = env.backups.join("scratch.db");
    env.run(&[
        "restore",
        &names[0],
        "--target",
        elsewhere.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(rows(&elsewhere), ["a"]);
}

#[test]
fn a_target_named_like_an_sqlite_sidecar_is_refused_even_with_force() {
    let env = Env::empty();
    let names = backups_of_rows(&env, &["a"]);
    // A WAL database with a reader holding it open: its -wal and -shm exist.
    let conn = Connection::open(&env.db).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.execute("INSERT INTO t VALUES ('b')", []).unwrap();
    let sidecars = |suffix: &str| fs::read(format!("{}{suffix}", env.db.display())).ok();
    let before: Vec<_> = ["-wal", "-shm", "-journal"].map(sidecars).into();
    assert!(before[0].is_some(), "the -wal exists");
    for suffix in ["-wal", "-shm", "-journal"] {
        let target = format!("{}{suffix}", env.db.display());
        for force in [false, true] {
            let mut args = vec!["restore", &names[0], "--target", &target];
            if force {
                args.push("--force");
            }
            let run = env.run(&args);
            run.failed_with(
                2,
                &format!(
                    "restore target {target} is named like the {suffix} file SQLite keeps beside database results.db; refusing to restore a database there, even with --force"
                ),
            );
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        }
    }
    let after: Vec<_> = ["-wal", "-shm", "-journal"].map(sidecars).into();
    assert_eq!(after, before, "sidecars untouched");
    drop(conn);
    assert_eq!(rows(&env.db), ["a", "b"]);
}

#[test]
fn restore_by_name_of_a_damaged_backup_is_worded_as_a_refusal() {
    let env = Env::empty();
    let names = backups_of_rows(&env, &["a"]);
    let backup = env.backups.join(&names[0]);
    let bytes = fs::read(&backup).unwrap();
    fs::write(&backup, &bytes[..bytes.len() - 10]).unwrap();
    add_row(&env.db, "later");
    let before = fs::read(&env.db).unwrap();
    let run = env.run(&["restore", &names[0]]);
    run.failed_with(1, &format!("backup {} is damaged", names[0]));
    run.failed_with(
        1,
        &format!(
            "; refusing to restore it; {} left untouched",
            env.db.display()
        ),
    );
    assert!(!run.stderr.contains("passing over"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert_eq!(fs::read(&env.db).unwrap(), before);
}
