//! Trial 3's smaller findings: `restore latest --if-db-missing` on a new
//! project's first run is not an error (F10); `DBBACKUP_STRICT` is read one way
//! by `run`, `pre-job`, `post-job` and the hooks shim (F5); a lost backup
//! directory's `restore latest` and `list` name the mirrors that hold restore
//! points (F4).

use std::fs;

use rusqlite::Connection;

use crate::common::*;

fn make_db(path: &std::path::Path) {
    Connection::open(path)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
}

#[test]
fn restore_if_db_missing_on_a_first_run_exits_0_and_creates_nothing() {
    let env = Env::empty();
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.ok();
    assert_eq!(run.stdout, "no backup yet, nothing to restore\n");
    assert!(!env.db.exists() && !env.backups.exists());
    // Another database's backups there, that database still in place: not
    // one this database moved from, so still a first run and no `adopt` hint.
    let other = env.path("b.db");
    make_db(&other);
    env.run(&["--db-path", other.to_str().unwrap(), "backup"])
        .ok();
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.ok();
    assert_eq!(run.stdout, "no backup yet, nothing to restore\n");
    assert!(!env.db.exists());
    // Once that database is gone, it may be where this one moved from.
    fs::rename(&other, env.path("c.db")).unwrap();
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.failed_with(
        1,
        &format!("claim them with `dbbackup adopt {}`", other.display()),
    );
}

/// `source` the hooks shim and call `dbbackup_pre_job` with `DBBACKUP_STRICT`
/// set to `strict`; the "database" is a text file, so pre-job fails.
fn shim_pre_job(env: &Env, strict: &str) -> Run {
    let not_a_database = env.path("notes.db");
    std::fs::write(&not_a_database, "my notes, not SQLite\n").unwrap();
    let mut command = std::process::Command::new("bash");
    command
        .current_dir(env.root.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("DBBACKUP", BIN)
        .env("DBBACKUP_DB_PATH", &not_a_database)
        .env("DBBACKUP_BACKUP_DIR", &env.backups)
        .env("DBBACKUP_STRICT", strict)
        .args([
            "-c",
            &format!(
                "source '{}'; dbbackup_pre_job; echo \"returned $?\"",
                slurm_dir().join("hooks/dbbackup_hooks.sh").display()
            ),
        ]);
    command.output().unwrap().into()
}

#[test]
fn strict_is_read_one_way_by_the_shim_and_junk_is_refused_everywhere() {
    let env = Env::new();
    for yes in ["1", "true", "YES", "on"] {
        let run = shim_pre_job(&env, yes);
        assert_eq!(run.stdout, "returned 1\n", "{yes}: {}", run.stderr);
    }
    for no in ["0", "false", "no", "off", ""] {
        let run = shim_pre_job(&env, no);
        assert_eq!(run.stdout, "returned 0\n", "{no:?}: {}", run.stderr);
    }
    let run = shim_pre_job(&env, "maybe");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stdout, "", "the script stops");
    assert!(
        run.stderr
            .contains("DBBACKUP_STRICT: 'maybe' is not a yes/no value"),
        "{}",
        run.stderr
    );
    for args in [&["pre-job"][..], &["post-job", "--status", "0"]] {
        let run: Run = env
            .command()
            .env("DBBACKUP_STRICT", "maybe")
            .args(args)
            .output()
            .unwrap()
            .into();
        run.failed_with(2, "DBBACKUP_STRICT: 'maybe' is not a yes/no value");
    }
}

#[test]
fn a_lost_backup_directory_names_the_mirror_to_restore_from() {
    let env = Env::new();
    let mirror = env.path("m2");
    let m = mirror.to_str().unwrap();
    env.run(&["--mirror-dir", m, "backup"]).ok();
    let name = env.backup_files()[0].clone();
    fs::remove_dir_all(&env.backups).unwrap();
    let hint = format!(
        "mirror {m} holds 1 restore point of it (newest {name}): restore from it with `dbbackup --backup-dir {m} restore latest`"
    );
    // The suggestion keeps the target given (trial 5).
    let into_x = format!("{} --target x.db`", hint.trim_end_matches('`'));
    env.run(&["--mirror-dir", m, "restore", "latest", "--target", "x.db"])
        .failed_with(1, &into_x);
    // The directory is gone: `list` fails (exit 1), naming the mirror; the
    // database is there, so the next step is a backup (T27 F-I).
    env.run(&["--mirror-dir", m, "list"]).failed_with(
        1,
        &format!(
            "mirror {m} holds 1 restore point of it (newest {name}); {} is there: `dbbackup backup` starts the backup directory again (to restore from the mirror instead: `dbbackup --backup-dir {m} restore latest`)",
            env.db.display()
        ),
    );
    // What the hint says works, and gives the database's content.
    env.run(&["--backup-dir", m, "restore", "latest", "--target", "x.db"])
        .ok();
    assert_eq!(content_digest(&env.path("x.db")), content_digest(&env.db));
}
