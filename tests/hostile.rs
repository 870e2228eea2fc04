//! Corrupt and hostile backups, hostile names and paths: every command gives a
//! clear result, never crashes or hangs, and never writes outside its directory.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// Run with a deadline: a hang is a failure, not a stuck test run.
fn run_within(env: &Env, args: &[&str], limit: Duration) -> Run {
    let child = env
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run: Run = output_within(child, limit)
        .unwrap_or_else(|| panic!("{args:?} hung for more than {limit:?}"))
        .into();
    assert!(
        !run.stderr.contains("panicked"),
        "{args:?} panicked: {}",
        run.stderr
    );
    run
}

fn plant(env: &Env, name: &str, bytes: &[u8]) {
    fs::write(env.backups.join(name), bytes).unwrap();
}

/// verify and restore refuse `name`; list and check still work.
fn refused_everywhere(env: &Env, name: &str, why: &str) {
    let limit = Duration::from_secs(60);
    let verify = run_within(env, &["verify", name], limit);
    assert_eq!(
        verify.code, 1,
        "verify {name} ({why}): {}{}",
        verify.stdout, verify.stderr
    );
    let target = env.path("restored.db");
    let restore = run_within(
        env,
        &["restore", name, "--target", target.to_str().unwrap()],
        limit,
    );
    assert_eq!(
        restore.code, 1,
        "restore {name} ({why}): {}",
        restore.stderr
    );
    assert!(!target.exists(), "restore {name} ({why}) wrote the target");
    assert_eq!(
        run_within(env, &["list"], limit).code,
        0,
        "list with {name} ({why})"
    );
    assert_ne!(
        run_within(env, &["check", "--format", "json"], limit).code,
        3
    );
    fs::remove_file(env.backups.join(name)).unwrap();
}

#[test]
fn truncation_at_many_offsets_is_always_caught() {
    let env = Env::empty();
    make_results_db(&env.db, 2.5, false);
    env.run(&["backup"]).ok();
    let good = fs::read(env.newest_backup()).unwrap();
    let len = good.len();
    let mut offsets: Vec<usize> = vec![
        0,
        1,
        9,
        10,
        100,
        8191,
        8192,
        8193,
        8200,
        len - 8,
        len - 4,
        len - 1,
    ];
    offsets.extend((1..20).map(|i| i * len / 20));
    for offset in offsets {
        plant(&env, "backup_29990101_000000.db.gz", &good[..offset]);
        refused_everywhere(
            &env,
            "backup_29990101_000000.db.gz",
            &format!("truncated at {offset}"),
        );
    }
    // Exactly at a member boundary the gzip stream is valid but short: the
    // recorded size and checksum still catch it.
    let boundary = find_member_start(&good, 8192 + 100).expect("a second data member");
    plant(&env, "backup_29990101_000000.db.gz", &good[..boundary]);
    let gzip_ok = Command::new("gzip")
        .arg("-t")
        .arg(env.backups.join("backup_29990101_000000.db.gz"))
        .status()
        .unwrap();
    assert!(gzip_ok.success(), "gzip itself accepts the short file");
    refused_everywhere(
        &env,
        "backup_29990101_000000.db.gz",
        "truncated at a member boundary",
    );
}

/// The offset of the next gzip member header after `from`.
fn find_member_start(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len() - 3).find(|&i| bytes[i..i + 4] == [0x1f, 0x8b, 8, 0])
}

#[test]
fn bit_flips_in_header_body_and_trailer_are_caught() {
    let env = Env::empty();
    make_results_db(&env.db, 2.5, false);
    env.run(&["backup"]).ok();
    let good = fs::read(env.newest_backup()).unwrap();
    let len = good.len();
    let json_start = good.windows(10).position(|w| w == b"\"checksum\"").unwrap();
    for (offset, bit, place) in [
        (0, 0x01, "gzip magic"),
        (3, 0x04, "metadata member flags"),
        (json_start + 15, 0x01, "recorded checksum"),
        (8192 + 3, 0x08, "first data member header"),
        (8192 + 40, 0x20, "deflate body"),
        (len / 2, 0x01, "middle"),
        (len - 6, 0x10, "CRC32 trailer"),
        (len - 2, 0x01, "ISIZE trailer"),
    ] {
        let mut bad = good.clone();
        bad[offset] ^= bit;
        plant(&env, "backup_29990101_000000.db.gz", &bad);
        refused_everywhere(&env, "backup_29990101_000000.db.gz", place);
    }
}

#[test]
fn a_gzip_bomb_is_stopped_at_the_recorded_size() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let good = fs::read(env.newest_backup()).unwrap();
    // Keep the real metadata member (8192 bytes, small recorded size), then 16 GiB
    // of zeros: one 16 MiB member of zeros repeated.
    let mut zeros = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut block = b"SQLite format 3\0".to_vec();
    block.resize(16 << 20, 0);
    zeros.write_all(&block).unwrap();
    let member = zeros.finish().unwrap();
    let mut bomb = good[..8192].to_vec();
    for _ in 0..1024 {
        bomb.extend_from_slice(&member);
    }
    assert!(bomb.len() < 20 << 20, "small file: {}", bomb.len());
    plant(&env, "backup_29990101_000000.db.gz", &bomb);
    // Stopped at the recorded size, not after inflating and hashing 16 GiB: that
    // takes far more than 3 s of CPU (the limit counts CPU, not a loaded machine's
    // wall clock); stopping early takes a fraction of one.
    let mut limited = Command::new("sh");
    limited
        .args(["-c", "ulimit -t 3 && exec \"$0\" \"$@\"", BIN, "verify"])
        .arg("backup_29990101_000000.db.gz")
        .current_dir(env.root.path());
    for (key, value) in env.command().get_envs() {
        match value {
            Some(value) => limited.env(key, value),
            None => limited.env_remove(key),
        };
    }
    let output = limited.output().unwrap();
    let run: Run = output.into();
    assert_eq!(run.code, 1, "not killed by the CPU limit: {}", run.stderr);
    assert!(
        run.stdout.contains("expands beyond its recorded size"),
        "{}",
        run.stdout
    );
    refused_everywhere(&env, "backup_29990101_000000.db.gz", "gzip bomb");
}

#[test]
fn a_valid_backup_of_a_database_that_fails_integrity_check_is_refused() {
    let env = Env::new();
    crate::backup::corrupt_index(&env.db);
    // Publish it as a "good" backup by hand: right size and checksum, bad content.
    let env2 = Env::new();
    env2.run(&["backup"]).ok();
    let good = fs::read(env2.newest_backup()).unwrap();
    let bad_db = fs::read(&env.db).unwrap();
    let checksum = sha256_hex(&bad_db);
    let header = String::from_utf8_lossy(&good[16..8192 - 10])
        .trim_end()
        .to_string();
    let mut meta: serde_json::Value = serde_json::from_str(&header).unwrap();
    meta["db_size"] = bad_db.len().into();
    meta["checksum"] = format!("sha256:{checksum}").into();
    let json = serde_json::to_vec(&meta).unwrap();
    let mut file = good[..16].to_vec();
    file.extend_from_slice(&json);
    file.resize(8192 - 10, b' ');
    file.extend_from_slice(&good[8192 - 10..8192]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bad_db).unwrap();
    file.extend(gz.finish().unwrap());
    fs::create_dir_all(&env.backups).unwrap();
    plant(&env, "backup_29990101_000000.db.gz", &file);
    let verify = env.run(&["verify", "backup_29990101_000000.db.gz"]);
    assert_eq!(verify.code, 1);
    assert!(
        verify.stdout.contains("integrity_check"),
        "{}",
        verify.stdout
    );
    refused_everywhere(
        &env,
        "backup_29990101_000000.db.gz",
        "fails integrity_check",
    );
}

#[test]
fn restore_names_that_escape_the_backup_dir_are_refused() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let outside = env.path("outside.db.gz");
    fs::copy(env.newest_backup(), &outside).unwrap();
    for name in [
        "../outside.db.gz",
        outside.to_str().unwrap(),
        "./backup_x.db.gz",
        "backup_20250101_000000.db.gz/..",
        "..\\x",
    ] {
        let run = env.run(&["restore", name]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        let run = env.run(&["verify", name]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
    }
}

#[test]
fn planted_symlinks_are_never_followed() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let secret = env.path("secret.txt");
    fs::write(&secret, "secret").unwrap();
    let link = |name: &str| std::os::unix::fs::symlink(&secret, env.backups.join(name)).unwrap();
    // Under temp-file names (any pid), a backup name, and as the lock file.
    for pid in [1, 2, std::process::id() + 1] {
        link(&format!(".dbbackup-tmp-x-{pid}-0.part"));
    }
    link("backup_29990101_000000.db.gz");
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "INSERT INTO ledger (amount, note) VALUES (0, 'x'); UPDATE counter SET n = n + 1",
        )
        .unwrap();
    env.run(&["backup", "--max-backups", "1"]).ok();
    env.run(&["prune", "--max-backups", "1"]).ok();
    let list = env.run(&["list"]);
    list.ok();
    assert!(list.stdout.contains("symbolic link"), "{}", list.stdout);
    env.run(&["verify", "backup_29990101_000000.db.gz"])
        .reported(1, "symbolic link");
    fs::remove_file(env.lock_file()).unwrap();
    link(".dbbackup.lock");
    env.run(&["backup", "--force"])
        .failed_with(1, "symbolic link");
    assert_eq!(
        fs::read_to_string(&secret).unwrap(),
        "secret",
        "nothing written through a link"
    );
    // A symlinked restore target is refused; its target is untouched.
    let real = env.path("real.db");
    fs::copy(&env.db, &real).unwrap();
    let linked = env.path("linked.db");
    std::os::unix::fs::symlink(&real, &linked).unwrap();
    fs::remove_file(env.lock_file()).unwrap();
    env.run(&["restore", "latest", "--target", linked.to_str().unwrap()])
        .failed_with(1, "symbolic link");
    assert_eq!(content_digest(&real), content_digest(&env.db));
    let _ = Path::new("");
}

/// A FIFO planted as the lock file: every command that takes or reads the lock
/// says so at once instead of hanging, and nothing is published.
#[test]
fn a_fifo_planted_as_the_lock_file_is_refused_at_once() {
    let env = Env::new();
    fs::create_dir_all(&env.backups).unwrap();
    let lock = env.lock_file();
    nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for args in [&["backup"][..], &["lock", "status"], &["prune"]] {
        let run = run_within(&env, args, Duration::from_secs(60));
        run.failed_with(1, "is not a regular file; remove it");
    }
    assert!(env.backup_files().is_empty());
}
