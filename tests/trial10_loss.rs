//! Trial 10's data-loss findings (T10 #9, #10, #11, #14): refused restores that
//! pushed a unique undo copy out, `final` run under a running array, job id 0,
//! and the templates' empty arrays under bash before 4.4.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rusqlite::Connection;

use crate::common::*;

/// `db` with table `w(tag, data)` of `megabytes` random MiB: big enough that a
/// pre-restore copy takes long enough for a writer to open the database meanwhile.
fn blob_db(db: &Path, megabytes: u32) {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("CREATE TABLE w (tag TEXT, data BLOB)")
        .unwrap();
    for _ in 0..megabytes {
        conn.execute("INSERT INTO w VALUES ('bulk', randomblob(1048576))", [])
            .unwrap();
    }
}

fn insert_tag(db: &Path, tag: &str) {
    Connection::open(db)
        .unwrap()
        .execute("INSERT INTO w VALUES (?1, NULL)", [tag])
        .unwrap();
}

fn tagged(db: &Path, tag: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM w WHERE tag = ?1", [tag], |r| r.get(0))
        .unwrap()
}

/// `restore latest` while a writer opens the database during its pre-restore
/// copy (as array tasks do, each opening and closing it): the writer's insert
/// waits for the restore's lock, and the restore is refused, "came into use".
fn restore_refused_by_a_writer(env: &Env, round: usize) -> Run {
    let child = env
        .command()
        .args(["--keep-pre-restore", "3", "restore", "latest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The pre-restore copy is being written (under the restore's write lock).
    env.wait_for_temp_file(1, Duration::from_secs(60));
    let db = env.db.clone();
    let writer = std::thread::spawn(move || {
        let conn = Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(60)).unwrap();
        conn.execute(
            "INSERT INTO w VALUES (?1, NULL)",
            [format!("writer {round}")],
        )
        .unwrap();
    });
    let run: Run = output_within(child, Duration::from_secs(120))
        .expect("restore ends")
        .into();
    writer.join().unwrap();
    run.failed_with(1, "came into use by pid ");
    run
}

/// T10 #10: restores refused because the database came into use each saved a
/// pre-restore copy, and retention over those copies deleted the undo copy of
/// an earlier, real restore — the only copy of a row.
#[test]
fn refused_restores_never_push_out_the_undo_copy_of_a_real_one() {
    let env = Env::empty();
    blob_db(&env.db, 24);
    env.run(&["backup"]).ok();
    // A row written after the newest backup: the real restore's copy is its only one.
    insert_tag(&env.db, "precious");
    let undo = env.run(&["restore", "latest", "--format", "json"]);
    undo.ok();
    let undo = undo.json()["pre_restore_backup"]
        .as_str()
        .unwrap()
        .to_string();
    // More refused restores than `keep_pre_restore`, each over new content.
    let refused: Vec<Run> = (0..4)
        .map(|round| {
            insert_tag(&env.db, &format!("before {round}"));
            restore_refused_by_a_writer(&env, round)
        })
        .collect();
    let copy = env.backups.join(&undo);
    assert!(copy.exists(), "{undo} deleted: {:?}", env.backup_files());
    let out = env.path("undone.db");
    env.run(&["restore", &undo, "--target", out.to_str().unwrap()])
        .ok();
    assert_eq!(tagged(&out, "precious"), 1);
    // The writers' rows went into the database, which was left in place.
    assert_eq!(tagged(&env.db, "writer 3"), 1);
    // The copies of refused restores held what stayed in place: none is kept.
    for run in refused {
        let error = run.stderr.lines().find(|l| l.contains("ERROR")).unwrap();
        assert!(error.ends_with("; nothing was replaced"), "{}", run.stderr);
    }
    assert_eq!(env.backup_files().len(), 2, "{:?}", env.backup_files());
    let _ = fs::remove_file(out);
}

/// The names assigned an empty array (`name=()`) in a shell script: arrays that
/// can be empty when expanded.
fn arrays_that_can_be_empty(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().split_once("=()"))
        .map(|(name, _)| name.trim().to_string())
        .filter(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .collect()
}

/// T10 #9: bash before 4.4 (CentOS 7's 4.2) treats `"${a[@]}"` of an empty array
/// as unbound under `set -u`: the array template died before its work with
/// `final[@]: unbound variable`. Every such expansion in the shipped scripts
/// must be guarded, `${a[@]+"${a[@]}"}`. (bash 4.2 itself is not here to run
/// them; shellcheck does not flag this.)
#[test]
fn shipped_scripts_guard_every_expansion_of_an_array_that_can_be_empty() {
    let mut checked = 0;
    for script in files_under(&slurm_dir()) {
        let text = fs::read_to_string(&script).unwrap();
        for name in arrays_that_can_be_empty(&text) {
            let plain = format!("\"${{{name}[@]}}\"");
            let guarded = format!("${{{name}[@]+{plain}}}");
            let unguarded = text.matches(&plain).count() - text.matches(&guarded).count();
            assert_eq!(
                unguarded,
                0,
                "{}: {plain} expanded without the guard {guarded}",
                script.display()
            );
            checked += 1;
        }
    }
    // final, array_options, final_options, dbbackup__final at least.
    assert!(checked >= 4, "{checked} arrays found");
}

/// A test's directory for jobs on the cluster (`slrm_logs/` where the templates
/// write); `None`, the test skipped, without a cluster.
fn cluster_env() -> Option<Env> {
    if !cluster_ready() {
        return None;
    }
    let env = Env::new();
    fs::create_dir_all(env.path("slrm_logs")).unwrap();
    Some(env)
}

/// `sbatch --parsable ARGS` in the test's directory, the test's settings exported.
fn sbatch(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> String {
    let output = job_command(env, "sbatch")
        .envs(vars.iter().copied())
        .arg("--parsable")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "sbatch: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.trim().split(';').next().unwrap().to_string()
}

fn add_ledger_row(db: &Path) {
    Connection::open(db)
        .unwrap()
        .execute("INSERT INTO ledger (amount, note) VALUES (0, 'later')", [])
        .unwrap();
}

fn scancel(job: &str) {
    let status = std::process::Command::new("scancel")
        .arg(job)
        .status()
        .unwrap();
    assert!(status.success(), "scancel {job}");
}

/// T10 #11: `final ARRAY` run by hand while the array's tasks still run (or
/// wait) reported success and marked the array ended, so retention deleted its
/// restore point under the running tasks. Now it refuses, naming them.
#[test]
fn final_refuses_while_the_arrays_tasks_have_not_ended() {
    let Some(env) = cluster_env() else {
        return;
    };
    let template = slurm_dir().join("job_array.sbatch");
    let array = sbatch(
        &env,
        &[("DBBACKUP_FINAL", "0")],
        &["--array=0-2%1", template.to_str().unwrap(), "sleep", "300"],
    );
    // Task 0's pre-job made the array's restore point.
    wait_until(
        "the array's pre-job restore point",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || !env.backup_files().is_empty(),
    );
    let point = env.backup_files()[0].clone();
    let early = env.run(&["final", &array]);
    early.failed_with(1, &format!("array {array} has not ended"));
    assert!(
        early.stderr.contains("tasks pending 1-2, running 0"),
        "{}",
        early.stderr
    );
    // Not marked ended: retention keeps the restore point under the running array.
    for _ in 0..3 {
        add_ledger_row(&env.db);
        env.run(&["--max-backups", "1", "backup"]).ok();
    }
    let kept = env.backups.join(&point);
    assert!(kept.exists(), "{point} deleted: {:?}", env.backup_files());
    env.run(&["final", "--force", &array]).ok();
    scancel(&array);
    wait_until_jobs_leave_the_queue(&[&array], Duration::from_secs(120));
}

/// T10 #14: job id 0 (`scontrol show job 0` lists every job) is not a job id.
#[test]
fn job_id_zero_is_refused() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["restore", "--before-job", "0", "--target", "x.db"])
        .failed_with(2, "'0' is not a SLURM job id");
    env.run(&["list", "--job", "0"])
        .failed_with(2, "'0' is not a SLURM job id");
    env.run(&["final", "0"])
        .failed_with(2, "'0' is not an array job id");
    assert!(!env.path("x.db").exists());
}

/// T10 #11: `restore --before-job` whose recorded restore point was deleted fell
/// back to the newest point before the job started, which may be older than
/// the state at its start, and restored it. Now that needs `--force`.
#[test]
fn a_before_job_fallback_older_than_the_jobs_start_needs_force() {
    let Some(env) = cluster_env() else {
        return;
    };
    env.run(&["backup"]).ok();
    let older = env.backup_files()[0].clone();
    add_ledger_row(&env.db);
    // SLURM gives start times in whole seconds: the job starts a second later.
    std::thread::sleep(Duration::from_millis(1100));
    let template = slurm_dir().join("job_single.sbatch");
    let job = sbatch(&env, &[], &[template.to_str().unwrap(), "true"]);
    wait_until_jobs_leave_the_queue(&[&job], Duration::from_secs(120));
    let recorded: Vec<String> = env
        .backup_files()
        .into_iter()
        .filter(|name| *name != older)
        .collect();
    assert_eq!(recorded.len(), 1, "the job's pre-job point: {recorded:?}");
    fs::remove_file(env.backups.join(&recorded[0])).unwrap();
    let target = env.path("undone.db");
    let target = target.to_str().unwrap();
    let refused = env.run(&["restore", "--before-job", &job, "--target", target]);
    refused.failed_with(1, &format!("is {older}, which may be older than the state"));
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert!(!Path::new(target).exists());
    env.run(&[
        "restore",
        "--before-job",
        &job,
        "--target",
        target,
        "--force",
    ])
    .ok();
    let copy = gunzip_to(&env.backups.join(&older), &env.path("older.db"));
    assert_eq!(content_digest(Path::new(target)), content_digest(&copy));
}
