//! Every "ok" is true (docs/reliability.md, issue 18): a truncated, extended or
//! damaged backup, a diff without its base and a backup dated in the future are
//! seen by `list`, `check`, "unchanged", `latest` and retention at once, without
//! decompressing anything.

use std::fs;
use std::path::Path;
use std::process::Command;

use rusqlite::Connection;

use crate::common::*;

/// Change the database so the next backup is not "unchanged".
fn touch_db(env: &Env, n: i64) {
    Connection::open(&env.db)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS touched(n); INSERT INTO touched VALUES ({n});"
        ))
        .unwrap();
}

/// The backup `backup --format json` made (or skipped to).
fn backup(env: &Env, args: &[&str]) -> (Run, serde_json::Value) {
    let mut all = vec!["backup", "--format", "json"];
    all.extend_from_slice(args);
    let run = env.run(&all);
    let json = if run.code == 0 {
        run.json()
    } else {
        serde_json::Value::Null
    };
    (run, json)
}

fn made(json: &serde_json::Value) -> String {
    json["name"].as_str().unwrap_or_default().to_string()
}

fn truncate_half(path: &Path) {
    truncate_to(path, fs::metadata(path).unwrap().len() / 2);
}

/// Two restore points, the older intact; returns (older, newest).
fn two_backups(env: &Env) -> (String, String) {
    let older = made(&backup(env, &[]).1);
    touch_db(env, 1);
    let newest = made(&backup(env, &[]).1);
    assert_ne!(older, newest);
    (older, newest)
}

#[test]
fn a_truncated_newest_backup_is_seen_by_list_check_unchanged_and_prune() {
    let env = Env::empty();
    make_results_db(&env.db, 3.0, false);
    let (older, newest) = two_backups(&env);
    truncate_half(&env.backups.join(&newest));

    let rows = listed(&env);
    assert_eq!(rows[&newest]["check"], "damaged", "{}", rows[&newest]);
    assert!(
        rows[&newest]["restore_problem"]
            .as_str()
            .unwrap()
            .contains("truncated"),
        "{}",
        rows[&newest]
    );
    assert_eq!(rows[&older]["check"], "ok");
    env.run(&["check"]).reported(1, &newest);

    // Retention keeps the intact older one and the truncated one as evidence.
    env.run(&["prune", "--max-backups", "1"]).ok();
    assert!(
        env.backups.join(&older).exists(),
        "the intact backup was pruned"
    );
    assert!(env.backups.join(&newest).exists(), "evidence kept");

    // The database is unchanged since the truncated one: not a reason to skip.
    let (run, json) = backup(&env, &[]);
    run.ok();
    let fresh = made(&json);
    assert!(env.backups.join(&fresh).exists(), "{}", run.stdout);
    assert_ne!(fresh, newest);
    // A good backup newer than the evidence: healthy again.
    env.run(&["check"]).ok();
}

#[test]
fn bytes_appended_to_a_backup_are_seen_without_decompressing() {
    let env = Env::new();
    let (_, newest) = two_backups(&env);
    let path = env.backups.join(&newest);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"appended by accident");
    fs::write(&path, bytes).unwrap();
    let rows = listed(&env);
    assert_eq!(rows[&newest]["check"], "damaged", "{}", rows[&newest]);
    let (run, json) = backup(&env, &[]);
    run.ok();
    assert_ne!(made(&json), newest, "{}", run.stdout);
}

#[test]
fn an_older_backup_without_a_recorded_file_size_is_judged_by_its_last_gzip_trailer() {
    let env = Env::empty();
    make_results_db(&env.db, 2.5, false);
    let (older, newest) = two_backups(&env);
    for name in [&older, &newest] {
        rewrite_meta(&env.backups.join(name), |meta| meta.file_size = None);
    }
    assert_eq!(listed(&env)[&newest]["check"], "ok");
    env.run(&["check"]).ok();
    truncate_half(&env.backups.join(&newest));
    let rows = listed(&env);
    assert_eq!(rows[&newest]["check"], "damaged", "{}", rows[&newest]);
    assert_eq!(rows[&older]["check"], "ok");
    env.run(&["check"]).reported(1, &newest);
}

#[test]
fn damage_found_by_verify_is_remembered_by_list_check_unchanged_and_latest() {
    let env = Env::empty();
    make_results_db(&env.db, 3.0, false);
    let (older, newest) = two_backups(&env);
    let path = env.backups.join(&newest);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 4] {
        *b ^= 0xff;
    }
    fs::write(&path, bytes).unwrap();
    // Cheap tests cannot see a flip: only a whole read can.
    assert_eq!(listed(&env)[&newest]["check"], "ok");
    env.run(&["verify", "--all"]).reported(1, "FAILED");

    let rows = listed(&env);
    assert_eq!(rows[&newest]["check"], "damaged", "{}", rows[&newest]);
    assert_eq!(rows[&older]["check"], "ok");
    let check = env.run(&["check"]);
    check.reported(1, &newest);
    assert!(check.stdout.contains("1 good backup"), "{}", check.stdout);
    // `latest` passes over it without reading it again, and says so.
    let target = env.path("latest.db");
    let restore = env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--format",
        "json",
    ]);
    restore.ok();
    let report = restore.json();
    assert_eq!(report["passed_over"][0]["name"], newest.as_str());
    assert!(
        report["passed_over"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("when read whole"),
        "{report}"
    );
    // Unchanged since a damaged backup is not unchanged.
    let (run, json) = backup(&env, &[]);
    run.ok();
    assert_ne!(made(&json), newest, "{}", run.stdout);
    env.run(&["check"]).ok();
}

fn diff_env() -> Env {
    let env = Env::empty();
    fs::create_dir_all(&env.backups).unwrap();
    fs::write(
        env.path("dbbackup.yaml"),
        "diff_backups: 5\nmax_backups: 2\n",
    )
    .unwrap();
    make_results_db(&env.db, 2.0, false);
    env
}

#[test]
fn unchanged_and_the_interval_look_only_at_restorable_points() {
    let env = diff_env();
    let base = made(&backup(&env, &[]).1);
    grow_results_db(&env.db, 1.01, 7);
    let diff = made(&backup(&env, &[]).1);
    assert!(diff.ends_with(".diff.gz"), "{diff}");
    fs::remove_file(env.backups.join(&base)).unwrap();
    env.run(&["check"]).reported(1, &diff);

    // Neither `backup` nor `auto` calls the database unchanged since the orphan.
    let auto = env.run(&["auto", "--min-interval-hours", "1"]);
    auto.ok();
    assert!(
        !auto.stdout.contains("unchanged") && !auto.stderr.contains("unchanged"),
        "{}{}",
        auto.stdout,
        auto.stderr
    );
    let files = env.backup_files();
    let fresh = files.iter().find(|n| *n != &diff).expect("a new backup");
    assert!(fresh.ends_with(".db.gz"), "a full backup: {files:?}");
    // Healthy again once a good backup is the newest, orphan kept as evidence.
    env.run(&["check"]).ok();
    assert!(env.backups.join(&diff).exists());
}

#[test]
fn orphaned_diffs_are_kept_as_evidence_but_bounded() {
    let env = diff_env();
    let mut orphans = Vec::new();
    for round in 0..3 {
        let base = made(&backup(&env, &[]).1);
        grow_results_db(&env.db, 1.01, 10 + round);
        let diff = made(&backup(&env, &[]).1);
        assert!(diff.ends_with(".diff.gz"), "{diff}");
        fs::remove_file(env.backups.join(&base)).unwrap();
        orphans.push(diff);
        grow_results_db(&env.db, 1.01, 20 + round);
        wait_for_the_next_second();
    }
    backup(&env, &[]).0.ok();
    env.run(&["prune"]).ok();
    let left: Vec<_> = orphans
        .iter()
        .filter(|o| env.backups.join(o).exists())
        .collect();
    assert_eq!(left, [&orphans[1], &orphans[2]], "the newest two kept");
    env.run(&["check"]).ok();
}

#[test]
fn a_backup_dated_in_the_future_never_blocks_or_pins_later_backups() {
    if !have_or_skip("faketime") {
        return;
    }
    let env = Env::new();
    let good = made(&backup(&env, &[]).1);
    touch_db(&env, 1);
    let future = faketime(&env, "+200d", &["backup", "--force", "--format", "json"]);
    future.ok();
    let future = made(&future.json());
    assert!(future > good, "{future}");

    let check = env.run(&["check"]);
    assert!(
        check.stdout.contains("future") && check.stdout.contains(&future),
        "check names the clock skew: {}",
        check.stdout
    );
    assert!(!check.stdout.contains(" 0 s old"), "{}", check.stdout);

    // `auto` on a correct clock: the future backup is not "too recent".
    backdate(
        &env.backups.join(&good),
        std::time::Duration::from_secs(7200),
    );
    touch_db(&env, 1);
    let before = env.backup_files();
    let auto = env.run(&["auto", "--min-interval-hours", "1"]);
    auto.ok();
    let fresh = env
        .backup_files()
        .into_iter()
        .find(|f| !before.contains(f))
        .unwrap_or_else(|| panic!("auto made nothing: {}{}", auto.stdout, auto.stderr));
    // Named by this clock, in the documented format.
    assert!(fresh < future, "{fresh} pinned to {future}");
    assert_eq!(fresh[..15], good[..15], "named for today: {fresh}");
    for _ in 0..3 {
        touch_db(&env, 1);
        backup(&env, &[]).0.ok();
    }
    let files = env.backup_files();
    let rows = listed(&env);
    assert_eq!(rows.len(), files.len(), "list shows every file: {files:?}");
    // `latest` is the newest correctly dated one.
    let newest_now = files.iter().filter(|f| **f != future).max().unwrap();
    let target = env.path("latest.db");
    let restore = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    restore.ok();
    assert_eq!(content_digest(&target), content_digest(&env.db));
    assert!(
        restore.stdout.contains(newest_now.as_str())
            || restore.stderr.contains(newest_now.as_str()),
        "{}{}",
        restore.stdout,
        restore.stderr
    );
}

#[test]
fn check_says_passed_its_check_only_for_a_backup_whose_check_ran() {
    let env = Env::new();
    fs::create_dir_all(&env.backups).unwrap();
    let stamp = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y%m%d_%H%M%S")
        .to_string();
    let legacy = format!("backup_{stamp}.db.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut gz, &fs::read(&env.db).unwrap()).unwrap();
    fs::write(env.backups.join(&legacy), gz.finish().unwrap()).unwrap();
    // Its own only when the config file gives it the directory; counted as a
    // good backup (check healthy) once `verify` has read it whole.
    env.run_configured(&["verify", "--all"]).ok();
    let check = env.run_configured(&["check"]);
    check.ok();
    assert!(
        !check.stdout.contains("passed its quick_check"),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("unknown"), "{}", check.stdout);
}

#[test]
fn prune_dry_run_works_on_a_read_only_backup_directory() {
    let env = Env::new();
    for n in 0..3 {
        touch_db(&env, n);
        backup(&env, &[]).0.ok();
    }
    let ro = env.path("ro");
    fs::create_dir_all(&ro).unwrap();
    let mounted = Command::new("mount")
        .args(["--bind"])
        .arg(&env.backups)
        .arg(&ro)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot bind-mount (not root?)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&ro);
    assert!(
        Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(&ro)
            .status()
            .unwrap()
            .success()
    );
    fs::remove_file(env.lock_file()).ok();
    let run = env
        .command()
        .env("DBBACKUP_BACKUP_DIR", &ro)
        .args(["prune", "--dry-run", "--max-backups", "1"])
        .output()
        .unwrap();
    let run = Run::from(run);
    run.ok();
    assert!(run.stdout.contains("would delete"), "{}", run.stdout);
    let backups = fs::read_dir(&ro)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".db.gz")
        })
        .count();
    assert_eq!(backups, 3);
}

#[test]
fn damage_found_by_restore_or_export_by_name_is_remembered() {
    let env = Env::empty();
    make_results_db(&env.db, 3.0, false);
    let (older, newest) = two_backups(&env);
    flip_middle(&env.backups.join(&older));
    flip_middle(&env.backups.join(&newest));
    let target = env.path("copy.db");
    env.run(&["restore", &older, "--target", target.to_str().unwrap()])
        .failed_with(1, "damaged");
    let out = env.path("export.db.gz");
    env.run(&["export", &newest, "--out", out.to_str().unwrap()])
        .failed_with(1, "damaged");
    let rows = listed(&env);
    for name in [&older, &newest] {
        assert_eq!(rows[name]["check"], "damaged", "{}", rows[name]);
    }
    env.run(&["check"]).reported(1, "0 good backups");
}
