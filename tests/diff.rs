//! Differential backups (SPEC section 8): ten restore points of a growing
//! database restored row for row, retention never orphaning a diff, damage to a
//! base or a diff caught by name with the target untouched, export read by
//! `gzip -d` and `sqlite3`, mirrors, and `diff_backups: 0` unchanged.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn sha(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(fs::read(path).unwrap()).to_vec()
}

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
    let again = env.run(&["backup"]);
    again.ok();
    assert!(
        again.stdout.contains("skipped: database unchanged"),
        "{}",
        again.stdout
    );
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
        let backup = sidecar.strip_suffix(".xxh3").unwrap();
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
            let file = fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(8192 + (len - 8192) / 2).unwrap();
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
        let before = sha(&target);
        let restore = env.run(&["restore", diff, "--target", target.to_str().unwrap()]);
        restore.failed_with(1, victim);
        assert!(
            restore.stderr.contains("left untouched"),
            "{context}: {}",
            restore.stderr
        );
        assert_eq!(sha(&target), before, "{context}");
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
    let before = sha(&exported);
    env.run(&["export", diff, "--out", "export.db.gz"])
        .failed_with(1, "exists; refusing to overwrite");
    assert_eq!(sha(&exported), before);
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
    let names: Vec<String> = {
        let mut n: Vec<String> = fs::read_dir(&mirror)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("backup_"))
            .collect();
        n.sort();
        n
    };
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].ends_with(".db.gz") && names[1].ends_with(".diff.gz"));
    let verify = env
        .command()
        .env("DBBACKUP_BACKUP_DIR", &mirror)
        .args(["verify", "--all"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(
        !mirror.join(".dbbackup-pages").exists(),
        "page hashes are not mirrored"
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
}
