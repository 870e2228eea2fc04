//! Trial 5's false "ok"s: `restore latest --if-db-missing` with the backup
//! directory lost and a mirror holding restore points (#2); a `damaged` mark
//! set by `integrity_check` cleared by a restore's `quick_check` (#4);
//! `periodic --metrics-file` left saying healthy when a flag or variable is
//! bad (#3); a failure that cannot be recorded (#1); the suggested
//! `--backup-dir MIRROR` command with that mirror configured (#5); `export
//! --out DIR` (#10).

use std::fs;

use crate::common::*;

/// `results.db` backed up once with `mirror_dirs: [m1]` in `dbbackup.yaml`;
/// returns the mirror's copy's name.
fn backed_up_with_mirror(env: &Env) -> String {
    fs::write(env.path("dbbackup.yaml"), "mirror_dirs: [m1]\n").unwrap();
    env.run(&["backup"]).ok();
    let names = backup_files_in(&env.path("m1"));
    assert_eq!(names.len(), 1, "{names:?}");
    names[0].clone()
}

/// stderr's lines past their log prefix (`... ERROR job=... host=...: `).
fn messages(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .map(|line| line.split_once(": ").map_or(line, |(_, m)| m).to_string())
        .collect()
}

#[test]
fn if_db_missing_with_the_backup_dir_lost_and_a_mirror_holding_points_fails() {
    let env = Env::new();
    let name = backed_up_with_mirror(&env);
    // A scratch purge: the database and the backup directory gone.
    fs::remove_dir_all(&env.backups).unwrap();
    fs::remove_file(&env.db).unwrap();
    let hint = format!(
        "mirror m1 holds 1 restore point of it (newest {name}): restore from it with `dbbackup --backup-dir m1 restore latest`"
    );
    let plain = env.run(&["restore", "latest"]);
    plain.failed_with(1, &hint);
    let run = env.run(&["restore", "latest", "--if-db-missing"]);
    run.failed_with(1, &hint);
    assert_eq!(run.stdout, "", "never 'no backup yet'");
    assert_eq!(
        messages(&run),
        messages(&plain),
        "the same error as without it"
    );
    assert!(!env.db.exists());
}
