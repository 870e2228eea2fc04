//! Differential backups (docs/differential.md): ten restore points of a growing
//! database restored row for row, retention never orphaning a diff, damage to a
//! base or a diff caught by name with the target untouched, export read by
//! `gzip -d` and `sqlite3`, mirrors, and `diff_backups: 0` unchanged.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A results database of `mb` MiB, one full backup, then `diffs` diffs, each
/// after growing the database by about 1.5 %. Returns the backup names and a
/// copy of the database taken at each backup.
fn full_then_diffs(env: &Env, mb: f64, diffs: usize) -> Vec<(String, std::path::PathBuf)> {
    make_results_db(&env.db, mb, false);
    let mut points = Vec::new();
    for i in 0..=diffs {
        if i > 0 {
            grow_results_db(&env.db, 1.01, 100 + i as u64);
        }
        let copy = env.path(&format!("at_{i}.db"));
        fs::copy(&env.db, &copy).unwrap();
        let run = env.run(&["backup", "--format", "json"]);
        run.ok();
        points.push((run.json()["name"].as_str().unwrap().to_string(), copy));
    }
    points
}

fn diff_env(n: &str) -> Env {
    let env = Env::empty();
    fs::create_dir_all(&env.backups).unwrap();
    fs::write(
        env.path("dbbackup.yaml"),
        format!("diff_backups: {n}\nmax_backups: 10\n"),
    )
    .unwrap();
    env
}

#[test]
fn one_full_and_nine_diffs_of_a_growing_database_restore_row_for_row() {
    let env = diff_env("9");
    let points = full_then_diffs(&env, 3.0, 9);
    assert!(points[0].0.ends_with(".db.gz"), "{points:?}");
    for (name, _) in &points[1..] {
        assert!(name.ends_with(".diff.gz"), "{name}");
    }
    let listed = listed(&env);
    for (name, _) in &points[1..] {
        assert_eq!(listed[name]["type"], "diff");
        assert_eq!(listed[name]["base"], points[0].0.as_str());
    }
    assert_eq!(listed[&points[0].0]["type"], "full");
    for (i, (name, copy)) in points.iter().enumerate() {
        let target = env.path(&format!("restored_{i}.db"));
        env.run(&["restore", name, "--target", target.to_str().unwrap()])
            .ok();
        assert_eq!(content_digest(&target), content_digest(copy), "{name}");
        assert_eq!(
            row_count(&target, "runs"),
            row_count(copy, "runs"),
            "{name}"
        );
    }
    let verify = env.run(&["verify", "--all"]);
    verify.ok();
    assert_eq!(
        verify.stdout.matches(": ok").count(),
        10,
        "{}",
        verify.stdout
    );
    // Ten restore points for far less than ten full backups.
    let sizes: u64 = points
        .iter()
        .map(|(n, _)| fs::metadata(env.backups.join(n)).unwrap().len())
        .sum();
    let full = fs::metadata(env.backups.join(&points[0].0)).unwrap().len();
    assert!(sizes < full * 3, "{sizes} vs one full {full}");
    // `restore latest` is the newest diff; unchanged detection works with diffs.
    let latest = env.path("latest.db");
    env.run(&["restore", "latest", "--target", latest.to_str().unwrap()])
        .ok();
    assert_eq!(content_digest(&latest), content_digest(&points[9].1));
    env.run(&["backup"])
        .reported(0, "skipped: database unchanged");
    // The eleventh restore point after the full: a full backup again.
    grow_results_db(&env.db, 1.2, 999);
    let next = env.run(&["backup", "--format", "json"]);
    next.ok();
    let name = next.json()["name"].as_str().unwrap().to_string();
    assert!(name.ends_with(".db.gz"), "{name}");
    let next_diff = env.run(&["backup", "--force", "--format", "json"]);
    let next_name = next_diff.json()["name"].as_str().unwrap().to_string();
    assert!(next_name.ends_with(".diff.gz"), "{next_name}");
}

#[test]
fn retention_never_leaves_a_diff_without_its_base() {
    let env = diff_env("2");
    make_results_db(&env.db, 1.0, false);
    for round in 0..8u64 {
        grow_results_db(&env.db, 1.05, 200 + round);
        env.run(&["--max-backups", "2", "backup"]).ok();
        let rows = listed(&env);
        for row in rows.values() {
            if row["type"] == "diff" {
                let base = row["base"].as_str().unwrap();
                assert!(rows.contains_key(base), "round {round}: {row} lost {base}");
            }
        }
        // A pre-job protected point keeps its base too: prune hard, keep the newest.
        env.run(&["--max-backups", "1", "prune"]).ok();
        let after = listed(&env);
        let newest = after.keys().max().unwrap();
        if let Some(base) = after[newest]["base"].as_str() {
            assert!(after.contains_key(base), "prune removed {base}");
        }
    }
    env.run(&["verify", "--all"]).ok();
    let pages: Vec<_> = fs::read_dir(env.backups.join(".dbbackup-pages"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for sidecar in &pages {
        // Page hashes, and the record of `verify`'s whole read.
        let backup = sidecar
            .strip_suffix(".xxh3")
            .or_else(|| sidecar.strip_suffix(".read"))
            .unwrap();
        assert!(
            env.backups.join(backup).exists(),
            "orphan sidecar {sidecar}"
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Delete,
    Truncate,
    FlipBit,
}

fn damage(path: &Path, how: Damage) {
    match how {
        Damage::Delete => fs::remove_file(path).unwrap(),
        Damage::Truncate => {
            let len = fs::metadata(path).unwrap().len();
            truncate_to(path, 8192 + (len - 8192) / 2);
        }
        Damage::FlipBit => {
            let mut bytes = fs::read(path).unwrap();
            let at = 8192 + (bytes.len() - 8192) / 2;
            bytes[at] ^= 0x10;
            fs::write(path, bytes).unwrap();
        }
    }
}

#[test]
fn a_damaged_base_or_diff_is_caught_by_verify_and_restore_with_the_target_untouched() {
    for (which, how) in [
        ("base", Damage::Delete),
        ("base", Damage::Truncate),
        ("base", Damage::FlipBit),
        ("diff", Damage::Truncate),
        ("diff", Damage::FlipBit),
    ] {
        let env = diff_env("3");
        let points = full_then_diffs(&env, 1.0, 1);
        let (base, diff) = (&points[0].0, &points[1].0);
        let victim = if which == "base" { base } else { diff };
        damage(&env.backups.join(victim), how);
        let context = format!("{which} {how:?}");
        let verify = env.run(&["verify", diff]);
        assert_eq!(verify.code, 1, "{context}: {}", verify.stdout);
        assert!(
            verify.stdout.contains(&format!("{diff}: FAILED")),
            "{context}"
        );
        assert!(
            verify.stdout.contains(victim.as_str()),
            "{context}: {}",
            verify.stdout
        );
        // Over an existing database and into a new file: nothing is written.
        let target = env.path("target.db");
        make_ledger_db(&target, 20, false);
        let before = file_sha256(&target);
        let restore = env.run(&["restore", diff, "--target", target.to_str().unwrap()]);
        restore.failed_with(1, victim);
        assert!(
            restore.stderr.contains("left untouched"),
            "{context}: {}",
            restore.stderr
        );
        assert_eq!(file_sha256(&target), before, "{context}");
        let fresh = env.path("fresh.db");
        env.run(&["restore", diff, "--target", fresh.to_str().unwrap()])
            .failed_with(1, victim);
        assert!(!fresh.exists(), "{context}");
        let export = env.run(&["export", diff, "--out", "copy.db.gz"]);
        export.failed_with(1, victim);
        assert!(!env.path("copy.db.gz").exists(), "{context}");
        let stray: Vec<_> = fs::read_dir(env.root.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".dbbackup-tmp"))
            .collect();
        assert!(stray.is_empty(), "{context}: {stray:?}");
        if which == "base" && !matches!(how, Damage::FlipBit) {
            // Cheap checks see a missing or truncated base; bit flips need verify.
            let check = env.run(&["check"]);
            assert_ne!(check.code, 0, "{context}: {}", check.stdout);
            assert!(check.stdout.contains(base.as_str()), "{}", check.stdout);
        }
    }
}

#[test]
fn export_writes_a_plain_gzip_that_gzip_and_sqlite3_read() {
    let env = diff_env("3");
    let points = full_then_diffs(&env, 1.0, 2);
    let (diff, copy) = &points[2];
    env.run(&["export", diff, "--out", "export.db.gz"]).ok();
    let exported = env.path("export.db.gz");
    // Refuses to overwrite.
    let before = file_sha256(&exported);
    env.run(&["export", diff, "--out", "export.db.gz"])
        .failed_with(1, "exists; refusing to overwrite");
    assert_eq!(file_sha256(&exported), before);
    let plain = gunzip_to(&exported, &env.path("plain.db"));
    assert_eq!(content_digest(&plain), content_digest(copy));
    if !have("gzip") || !have("sqlite3") {
        eprintln!("gzip or sqlite3 missing: skipping the command-line readers");
        return;
    }
    let status = Command::new("gzip")
        .args(["-t", exported.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("sh")
        .arg("-c")
        .arg("gzip -dc export.db.gz > cli.db && sqlite3 cli.db 'PRAGMA integrity_check; SELECT count(*) FROM runs;'")
        .current_dir(env.root.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), format!("ok\n{}", row_count(copy, "runs")));
    // A diff file is gzip too: `gzip -t` checks it alone.
    let status = Command::new("gzip")
        .args(["-t", env.backups.join(diff).to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn mirrors_receive_the_base_before_any_diff_that_needs_it() {
    let env = diff_env("3");
    make_results_db(&env.db, 1.0, false);
    env.run(&["backup"]).ok();
    grow_results_db(&env.db, 1.1, 7);
    let mirror = env.path("mirror");
    // The mirror is new: the diff brings its base along.
    let run = env.run(&["--mirror-dir", mirror.to_str().unwrap(), "backup"]);
    run.ok();
    let names = backup_files_in(&mirror);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].ends_with(".db.gz") && names[1].ends_with(".diff.gz"));
    verify_all_in(&env, &mirror, "");
    // (`verify` there records its whole reads beside them.)
    let hashes: Vec<String> = fs::read_dir(mirror.join(".dbbackup-pages"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".xxh3"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        hashes.is_empty(),
        "page hashes are not mirrored: {hashes:?}"
    );
}

#[test]
fn diff_backups_0_keeps_full_backups_in_todays_shape() {
    let env = Env::empty();
    make_results_db(&env.db, 1.0, false);
    for round in 0..3u64 {
        grow_results_db(&env.db, 1.1, 300 + round);
        env.run(&["backup"]).ok();
    }
    for name in env.backup_files() {
        assert!(name.ends_with(".db.gz"), "{name}");
        let header = fs::read(env.backups.join(&name)).unwrap();
        let meta = dbbackup::store::metadata::decode(&mut &header[..]).unwrap();
        let json = serde_json::to_value(&meta).unwrap();
        for key in ["type", "base", "page_size", "diff_checksum"] {
            assert!(json.get(key).is_none(), "{name}: {key}");
        }
    }
    assert!(env.stray_files().is_empty(), "{:?}", env.stray_files());
}

#[test]
fn the_stdlib_python_script_rebuilds_a_diff() {
    if !have("python3") {
        eprintln!("python3 missing: skipping");
        return;
    }
    let env = diff_env("3");
    let points = full_then_diffs(&env, 1.0, 1);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rebuild_diff.py");
    let out = env.path("rebuilt.db");
    let run = Command::new("python3")
        .arg(&script)
        .arg(env.backups.join(&points[0].0))
        .arg(env.backups.join(&points[1].0))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(content_digest(&out), content_digest(&points[1].1));
    // A damaged diff is refused by the script too.
    damage(&env.backups.join(&points[1].0), Damage::FlipBit);
    let bad = Command::new("python3")
        .arg(&script)
        .arg(env.backups.join(&points[0].0))
        .arg(env.backups.join(&points[1].0))
        .arg(env.path("bad.db"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    // A missing file is one line, not a traceback (T30 F11).
    let missing = env.path("no-such-base.db.gz");
    let gone = Command::new("python3")
        .arg(&script)
        .arg(&missing)
        .arg(env.backups.join(&points[1].0))
        .arg(env.path("gone.db"))
        .output()
        .unwrap();
    assert_eq!(
        (
            gone.status.code(),
            String::from_utf8_lossy(&gone.stderr).into_owned()
        ),
        (
            Some(1),
            format!("{}: No such file or directory\n", missing.display())
        )
    );
}

/// `full` or `diff`, from the backup's name (what any build says).
fn type_of(made: &serde_json::Value) -> &'static str {
    if made["name"].as_str().unwrap().ends_with(".diff.gz") {
        "diff"
    } else {
        "full"
    }
}

fn backup_json(env: &Env, args: &[&str]) -> (Run, serde_json::Value) {
    let run = env.run(&[args, &["backup", "--force", "--format", "json"][..]].concat());
    let json = run.json();
    (run, json)
}

/// A base damaged after it was written (its page-hash sidecar intact) is never
/// built on: the next backup is full, says why in its output, its JSON and the
/// summary line, and `check` and `list` name the older diff that lost its base.
#[test]
fn a_damaged_base_is_never_built_on_and_the_next_backup_says_why() {
    for how in [Damage::Truncate, Damage::FlipBit] {
        let env = diff_env("5");
        let points = full_then_diffs(&env, 1.0, 1);
        let (base, diff) = (&points[0].0, &points[1].0);
        damage(&env.backups.join(base), how);
        grow_results_db(&env.db, 1.01, 400);
        let log = env.path("summary.log");
        let run = env
            .command()
            .env("DBBACKUP_SUMMARY_LOG", &log)
            .args(["post-job", "--status", "0", "--format", "json"])
            .output()
            .unwrap();
        let run = Run::from(run);
        run.ok();
        let made = run.json();
        let name = made["name"].as_str().unwrap();
        assert!(name.ends_with(".db.gz"), "{how:?}: {made}");
        assert_eq!(made["type"], "full", "{how:?}");
        assert!(made["base"].is_null(), "{how:?}");
        let why = made["full_because"].as_str().unwrap();
        assert!(why.contains(base.as_str()), "{how:?}: {why}");
        let expected = match how {
            Damage::Truncate => "truncated or replaced",
            _ => "failed its check",
        };
        assert!(why.contains(expected), "{how:?}: {why}");
        assert!(
            run.stderr.contains(base.as_str()) && run.stderr.contains(expected),
            "{how:?}: the warning names the base and why: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("grew past half"), "{}", run.stderr);
        let line = summary_lines(&log).pop().unwrap();
        assert_eq!(line["backup"], name, "{line:?}");
        assert!(!line.contains_key("type"), "a full backup: no type field");
        assert!(line["full_because"].contains(base.as_str()), "{line:?}");
        // The new full backup restores; the next backup is a diff of it.
        grow_results_db(&env.db, 1.01, 401);
        let (_, next) = backup_json(&env, &[]);
        assert_eq!(next["type"], "diff", "{next}");
        assert_eq!(next["base"], name);
        env.run(&["verify", next["name"].as_str().unwrap()]).ok();
        if matches!(how, Damage::Truncate) {
            // The older diff lost its base: not counted, named by `check` (as
            // evidence: a newer good backup exists), `no-base` in `list`.
            let check = env.run(&["check", "--min-count", "3", "--format", "json"]);
            assert_eq!(check.code, 1, "{}", check.stdout);
            let criteria = check.json()["criteria"].as_array().unwrap().clone();
            let by_name = |n: &str| criteria.iter().find(|c| c["name"] == n).unwrap().clone();
            assert_eq!(by_name("restorable")["ok"], true);
            let detail = by_name("restorable")["detail"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                detail.contains(diff.as_str()) && detail.contains(base.as_str()),
                "{detail}"
            );
            assert!(
                by_name("count")["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("2 good"),
                "neither the truncated base nor its diff is counted: {criteria:?}"
            );
            let rows = listed(&env);
            assert_eq!(rows[diff]["check"], "no-base");
            assert_eq!(rows[base]["check"], "damaged");
            assert!(
                rows[diff]["restore_problem"]
                    .as_str()
                    .unwrap()
                    .contains(base.as_str())
            );
            let text = env.run(&["list"]);
            let row = text
                .stdout
                .lines()
                .find(|l| l.starts_with(diff.as_str()))
                .unwrap();
            assert!(row.contains(" no-base "), "{row}");
        }
    }
}

/// `check`'s cheap base test also compares the base's size with what its
/// page-hash sidecar recorded when it was written: a diff that recorded an
/// already truncated size no longer hides the damage.
#[test]
fn check_compares_the_base_size_with_the_sidecar_record() {
    let env = diff_env("5");
    let points = full_then_diffs(&env, 1.0, 1);
    let (base, diff) = (&points[0].0, &points[1].0);
    damage(&env.backups.join(base), Damage::Truncate);
    let truncated = fs::metadata(env.backups.join(base)).unwrap().len();
    rewrite_meta(&env.backups.join(diff), |meta| {
        meta.diff.as_mut().unwrap().base_size = truncated;
    });
    let check = env.run(&["check"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        check.stdout.contains(base.as_str()) && check.stdout.contains("when it was written"),
        "{}",
        check.stdout
    );
}

/// With `max_backups` <= `diff_backups`, retention deletes diffs faster than
/// they accumulate; the diffs' recorded numbers still bring the next full.
#[test]
fn max_backups_below_diff_backups_still_makes_a_full_every_n_plus_one() {
    let env = diff_env("3");
    make_results_db(&env.db, 1.0, false);
    let mut made = Vec::new();
    for round in 0..9u64 {
        grow_results_db(&env.db, 1.01, 500 + round);
        let (run, json) = backup_json(&env, &["--max-backups", "2"]);
        run.ok();
        made.push(json);
    }
    let types: Vec<_> = made.iter().map(type_of).collect();
    let expected = [
        "full", "diff", "diff", "diff", "full", "diff", "diff", "diff", "full",
    ];
    assert_eq!(types, expected);
    for json in &made {
        assert_eq!(json["type"], type_of(json), "backup's JSON says the type");
    }
    env.run(&["verify", "--all"]).ok();
}

/// A mirror's copy of a base that is truncated or has damaged metadata is
/// replaced from the primary when the next diff of it is mirrored.
#[test]
fn a_damaged_base_in_a_mirror_is_replaced_from_the_primary() {
    for how in ["truncate", "metadata"] {
        let env = diff_env("5");
        let mirror = env.path("mirror");
        let with_mirror = ["--mirror-dir", mirror.to_str().unwrap()];
        make_results_db(&env.db, 1.0, false);
        let (_, base) = backup_json(&env, &with_mirror);
        let base = base["name"].as_str().unwrap().to_string();
        grow_results_db(&env.db, 1.01, 600);
        backup_json(&env, &with_mirror).0.ok();
        let copy = mirror.join(&base);
        match how {
            "truncate" => damage(&copy, Damage::Truncate),
            _ => {
                let file = fs::OpenOptions::new().write(true).open(&copy).unwrap();
                std::os::unix::fs::FileExt::write_all_at(&file, b"XXXXXXXX", 40).unwrap();
            }
        }
        grow_results_db(&env.db, 1.01, 601);
        let (run, made) = backup_json(&env, &with_mirror);
        run.ok();
        assert_eq!(made["type"], "diff", "{how}");
        assert!(
            run.stderr.contains(&format!("mirror copy of base {base}")),
            "{how}: {}",
            run.stderr
        );
        assert_eq!(
            file_sha256(&copy),
            file_sha256(&env.backups.join(&base)),
            "{how}"
        );
        verify_all_in(&env, &mirror, how);
    }
}

/// `export --out -` and an output in the backup directory or a mirror are
/// refused (exit 2) with a line saying why; nothing is written.
#[test]
fn export_refuses_stdout_and_backup_directories() {
    let env = diff_env("3");
    let points = full_then_diffs(&env, 1.0, 1);
    let diff = &points[1].0;
    env.run(&["export", diff, "--out", "-"])
        .failed_with(2, "not standard output");
    assert!(!env.path("-").exists());
    let mirror = env.path("mirror");
    fs::create_dir_all(&mirror).unwrap();
    let before = env.backup_files();
    for dir in [&env.backups, &mirror] {
        let out = dir.join("backup_20990101_000000.db.gz");
        env.run(&[
            "--mirror-dir",
            mirror.to_str().unwrap(),
            "export",
            diff,
            "--out",
            out.to_str().unwrap(),
        ])
        .failed_with(2, "is a backup directory");
        assert!(!out.exists());
    }
    // Through a relative path too.
    env.run(&["export", diff, "--out", "backups/../backups/copy.db.gz"])
        .failed_with(2, "is a backup directory");
    // Through a bind mount of the backup directory (T17 F8).
    let bound = env.path("bound");
    if let Some(_mounted) = bind_mount(&env.backups, &bound) {
        let out = bound.join("copy.db.gz");
        env.run(&["export", diff, "--out", out.to_str().unwrap()])
            .failed_with(2, "is a backup directory");
        assert!(!out.exists());
    }
    assert_eq!(env.backup_files(), before);
}

/// A bit flip that keeps the base's size and mtime (bit rot) is invisible to the
/// cheap tests; the base is read whole for every diff, so the next backup is a
/// full one naming it, and no diff is ever published on it.
#[test]
fn a_silent_bit_flip_in_a_base_is_caught_by_the_next_backup() {
    let env = diff_env("9");
    let points = full_then_diffs(&env, 1.0, 1);
    let base = env.backups.join(&points[0].0);
    rot(&base);
    let mut types = Vec::new();
    for round in 0..4u64 {
        grow_results_db(&env.db, 1.01, 700 + round);
        let (run, made) = backup_json(&env, &[]);
        run.ok();
        types.push(type_of(&made));
        if type_of(&made) == "full" {
            let why = made["full_because"].as_str().unwrap();
            assert!(
                why.contains(&points[0].0) && why.contains("failed its check"),
                "{why}"
            );
        }
    }
    // Then diffs again, of the new full backup.
    assert_eq!(types, ["full", "diff", "diff", "diff"]);
    // The failed read is remembered: the base is no good restore point any more
    // for list (and so check and retention), without reading it again.
    let list = env.run(&["list", "--format", "json"]);
    list.ok();
    let entries = list.json();
    let base_row = entries
        .as_array()
        .or_else(|| entries["backups"].as_array())
        .unwrap()
        .iter()
        .find(|row| row["name"] == points[0].0.as_str())
        .unwrap()
        .clone();
    assert!(
        base_row["restore_problem"]
            .as_str()
            .is_some_and(|p| p.contains("failed its check when read whole")),
        "{base_row}"
    );
}

/// `export latest`, like `restore latest`, passes over restore points that cannot
/// be rebuilt (a diff whose base rotted in place) to the newest that can.
#[test]
fn export_latest_passes_over_a_diff_whose_base_is_damaged() {
    let env = diff_env("1");
    // full, diff, full, diff: two chains.
    let points = full_then_diffs(&env, 1.0, 3);
    let kinds: Vec<bool> = points
        .iter()
        .map(|(n, _)| n.ends_with(".diff.gz"))
        .collect();
    assert_eq!(kinds, [false, true, false, true], "{points:?}");
    let newest_base = env.backups.join(&points[2].0);
    rot(&newest_base);
    let out = env.path("latest.db.gz");
    let run = env.run(&["export", "latest", "--out", out.to_str().unwrap()]);
    run.ok();
    // In the report, as `restore latest` says it (it was only a log line).
    let passed = format!("passed over {}: ", points[3].0);
    assert!(run.stdout.contains(&passed), "{}", run.stdout);
    assert!(run.stdout.contains(&points[1].0), "{}", run.stdout);
    let json_out = env.path("latest-json.db.gz");
    let json = env
        .run(&[
            "export",
            "latest",
            "--out",
            json_out.to_str().unwrap(),
            "--format",
            "json",
        ])
        .json();
    assert_eq!(
        json["passed_over"][0]["name"],
        points[3].0.as_str(),
        "{json}"
    );
    let plain = env.path("latest.db");
    let unzipped = Command::new("gzip").arg("-dc").arg(&out).output().unwrap();
    assert!(unzipped.status.success());
    fs::write(&plain, unzipped.stdout).unwrap();
    assert_eq!(file_sha256(&plain), file_sha256(&points[1].1));
    // By name, the damaged chain is refused, naming the base.
    env.run(&[
        "export",
        &points[3].0,
        "--out",
        env.path("named.db.gz").to_str().unwrap(),
    ])
    .failed_with(1, &points[2].0);
}

/// SIGTERM while a base is being read whole (before a diff): the run ends there,
/// dying of the signal, without calling the base damaged and without starting a
/// full backup instead.
#[test]
fn a_signal_while_reading_the_base_stops_the_run_without_a_verdict_on_the_base() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let env = diff_env("4");
    make_results_db(&env.db, 60.0, false);
    env.run(&["backup", "--threads", "1"]).ok();
    grow_results_db(&env.db, 1.01, 5);
    // Without its page hashes the base is read whole before the diff starts.
    fs::remove_dir_all(env.backups.join(".dbbackup-pages")).unwrap();
    let before = env.backup_files();
    let mut child = env
        .command()
        .args(["-v", "backup", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no base read:\n{seen}"
        );
        seen.push_str(&line);
        if line.contains("reading base") {
            break;
        }
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "{seen}");
    assert!(!seen.contains("making a full backup"), "{seen}");
    assert!(!seen.contains("failed its check"), "{seen}");
    assert_eq!(env.backup_files(), before, "{seen}");
    let pages = env.backups.join(".dbbackup-pages");
    let markers: Vec<_> = fs::read_dir(&pages)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !markers
            .iter()
            .any(|n| n.to_string_lossy().ends_with(".damaged")),
        "{markers:?}"
    );
}

/// Bit rot: one bit flipped in place, the file's mtime kept, so only a whole read
/// can tell.
fn rot(path: &Path) {
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    damage(path, Damage::FlipBit);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

/// `verify --all` of another backup directory (a mirror) passes.
fn verify_all_in(env: &Env, dir: &Path, context: &str) {
    let verify = env
        .command()
        .env("DBBACKUP_BACKUP_DIR", dir)
        .args(["verify", "--all"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{context}: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// A base without page hashes whose `.dbbackup-pages/` cannot be written (a
/// read-only bind mount): a full backup instead, saying that its page hashes
/// cannot be saved (an info), not that the base failed a check.
#[test]
fn a_base_whose_page_hashes_cannot_be_saved_is_not_called_damaged() {
    let env = diff_env("4");
    make_results_db(&env.db, 2.0, false);
    env.run(&["backup"]).ok();
    grow_results_db(&env.db, 1.01, 5);
    let pages = env.backups.join(".dbbackup-pages");
    for entry in fs::read_dir(&pages).unwrap().flatten() {
        fs::remove_file(entry.path()).unwrap();
    }
    let mount = |args: &[&str]| {
        std::process::Command::new("mount")
            .args(args)
            .arg(&pages)
            .arg(&pages)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !mount(&["--bind"]) {
        eprintln!("read-only page hashes test SKIPPED: cannot bind-mount (not root?)");
        return;
    }
    let read_only = mount(&["-o", "remount,bind,ro"]);
    let run = env.run(&["backup", "--format", "json"]);
    let _ = std::process::Command::new("umount").arg(&pages).status();
    assert!(read_only, "remount read-only");
    run.ok();
    assert!(
        run.stdout.contains(".db.gz"),
        "a full backup: {}",
        run.stdout
    );
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("making a full backup instead of a diff"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        line.contains("has no page hashes, and they cannot be saved")
            && line.contains("Read-only file system"),
        "{line}"
    );
    assert!(!line.contains("failed its check"), "{line}");
    assert!(line.contains("INFO"), "an info, not a warning: {line}");
}

/// T30 F2: a base marked damaged, then put back intact from a copy: `verify
/// --all` (newest first) failed its diffs on the old finding, then read the
/// base and found it sound. The base is read again before its diffs are
/// judged: every line ok, exit 0.
#[test]
fn verify_all_judges_diffs_on_a_base_put_back_intact_after_it_was_marked_damaged() {
    let (env, points) = diffs_on_a_base_put_back_after_it_was_found_damaged();
    let verify = env.run(&["verify", "--all"]);
    verify.ok();
    for (name, _) in &points {
        assert!(
            verify.stdout.contains(&format!("{name}: ok (")),
            "{name}: {}",
            verify.stdout
        );
    }
    assert!(!verify.stdout.contains("FAILED"), "{}", verify.stdout);
}

/// T32 G12: the base put back intact after it was found damaged, the
/// database lost: `restore latest` refused "none of the restore points is
/// intact" on the old finding until a `verify` read the base again. It reads
/// the base again itself and restores the newest diff.
#[test]
fn restore_latest_reads_again_a_base_put_back_intact_after_it_was_marked_damaged() {
    let (env, points) = diffs_on_a_base_put_back_after_it_was_found_damaged();
    env.run(&["export", "latest", "--out", "latest.db.gz"])
        .reported(0, &format!("exported {}", points[2].0));
    fs::remove_file(&env.db).unwrap();
    let restore = env.run(&["restore", "latest"]);
    restore.ok();
    assert!(
        restore
            .stdout
            .contains(&format!("restored {}", points[2].0)),
        "{}",
        restore.stdout
    );
    assert_eq!(content_digest(&env.db), content_digest(&points[2].1));
}

/// A full backup and two diffs on it; the base found damaged by `verify`,
/// then put back intact from a copy.
fn diffs_on_a_base_put_back_after_it_was_found_damaged() -> (Env, Vec<(String, std::path::PathBuf)>)
{
    let env = diff_env("3");
    let points = full_then_diffs(&env, 1.0, 2);
    let base = env.backups.join(&points[0].0);
    let intact = fs::read(&base).unwrap();
    damage(&base, Damage::FlipBit);
    env.run(&["verify", &points[0].0]).failed_with(1, "FAILED");
    fs::remove_file(&base).unwrap();
    fs::write(&base, &intact).unwrap();
    (env, points)
}
