//! False "ok"s found by the second fresh-eye S3 trial (T2): a damaged or
//! unproved remote point that `sync` or `check` let pass.

use std::fs;

use crate::common::s3::{self, Remote};
use crate::common::{Env, Run};

/// `name`'s data object at the store cut to its first 100 bytes.
fn truncate(r: &Remote, name: &str) {
    let bytes = r.object(name);
    r.put(name, &bytes[..100]);
}

/// F1: the backup directory purged (then made again, empty): `sync` still
/// reads back the remote's kept points, fails naming the truncated newest one,
/// and `check` says so.
#[test]
fn sync_with_no_local_backup_still_checks_the_remote_points() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "purged");
    let names = s3::names(&r.points(2, &[]));
    fs::remove_dir_all(&r.env.backups).unwrap();
    fs::create_dir(&r.env.backups).unwrap();
    truncate(&r, &names[1]);
    let sync = r.run(&["sync"]);
    sync.failed_with(1, &names[1]);
    let check = r.run(&["check"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("FAIL") && line.contains(&names[1]),
        "{}",
        check.stdout
    );
    // Gone altogether: nothing can be recorded, and `check` does not take
    // that for "nothing to upload".
    fs::remove_dir_all(&r.env.backups).unwrap();
    r.run(&["sync"]).failed_with(1, &names[1]);
    let check = r.run(&["check"]);
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("FAIL") && line.contains("does not exist"),
        "{line}"
    );
}

/// F2: the newest point is a diff, and its base on the remote is found
/// damaged (by `verify`) or missing (by `restore`): `check` fails naming the
/// base until a `sync` repairs it from the backup directory.
#[test]
fn check_fails_while_the_newest_diffs_base_on_the_remote_is_damaged() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "base");
    let names = s3::names(&r.points(3, &["--diff-backups", "2"]));
    assert!(names[2].ends_with(".diff.gz"), "{names:?}");
    let base = &names[0];
    r.run(&["check"]).ok();
    r.corrupt(base);
    assert_eq!(r.run(&["verify", "--from-remote"]).code, 1);
    let check = r.run(&["check"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("FAIL") && line.contains(&format!("its base {base}")),
        "{line}"
    );
    r.run(&["sync"]).ok();
    r.run(&["check"]).ok();

    r.delete(base);
    let target = r.env.path("copy.db");
    assert_eq!(
        r.run(&[
            "restore",
            "latest",
            "--from-remote",
            "--target",
            target.to_str().unwrap()
        ])
        .code,
        1
    );
    let check = r.run(&["check"]);
    let line = s3::remote_line(&check);
    assert!(line.starts_with("FAIL") && line.contains(base), "{line}");
}

/// The proofs' read-back times set to `time` (RFC 3339).
fn age_proofs(env: &Env, time: &str) {
    for item in fs::read_dir(env.backups.join(".dbbackup-state"))
        .unwrap()
        .flatten()
    {
        if !item
            .file_name()
            .to_string_lossy()
            .starts_with("remote-proofs-")
        {
            continue;
        }
        let mut doc: serde_json::Value =
            serde_json::from_slice(&fs::read(item.path()).unwrap()).unwrap();
        for proof in doc["points"].as_object_mut().unwrap().values_mut() {
            proof["time"] = serde_json::Value::from(time);
        }
        fs::write(item.path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    }
}

/// F4: a proof older than a week is what `list --from-remote` calls
/// `unverified`: `check` waits for the next sync's read-back within
/// remote_max_age, then fails; never OK.
#[test]
fn check_does_not_take_a_proof_older_than_a_week() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "stale");
    let names = s3::names(&r.points(1, &[]));
    r.run(&["check"]).ok();
    let eight_days_ago = std::process::Command::new("date")
        .args(["-u", "-d", "8 days ago", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    age_proofs(
        &r.env,
        String::from_utf8_lossy(&eight_days_ago.stdout).trim(),
    );
    let listed = r.run(&["list", "--from-remote"]);
    assert!(listed.stdout.contains("unverified"), "{}", listed.stdout);
    let check = r.run(&["check", "--remote-max-age", "30d"]);
    check.ok();
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("WAIT") && line.contains(&names[0]),
        "{line}"
    );
    let check = r.run(&["check", "--remote-max-age", "1d"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        s3::remote_line(&check).starts_with("FAIL"),
        "{}",
        check.stdout
    );
    // The next sync reads it back.
    r.run(&["sync"]).ok();
    assert!(s3::remote_line(r.run(&["check"]).ok()).starts_with("OK"));
}

/// F3: `sync` by an account that can read the backups but not write the
/// backup directory's `.dbbackup-state`: the upload goes, but `check` would
/// not see it: one line naming the file, exit 1.
#[test]
fn a_sync_that_cannot_record_its_outcome_says_so_and_fails() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: not root, cannot run as another account");
        return;
    }
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "readonly");
    r.points(1, &[]);
    r.add_row();
    r.run(&["backup"]).ok();
    let newest = r.env.backup_files().last().unwrap().clone();
    // Readable by all, writable by its owner only (root).
    fs::set_permissions(r.env.path(""), fs::Permissions::from_mode(0o755)).unwrap();
    let plain = s3::command(&r.env, &r.endpoint, &r.url);
    let mut nobody = std::process::Command::new("setpriv");
    nobody
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(plain.get_program())
        .arg("sync")
        .current_dir(r.env.path(""))
        .env_clear()
        .env("HOME", "/tmp");
    for (key, value) in plain.get_envs() {
        if let Some(value) = value {
            nobody.env(key, value);
        }
    }
    let sync: Run = nobody.output().unwrap().into();
    sync.failed_with(1, "not recorded for `check`");
    assert!(
        sync.stdout.contains(&format!("uploaded {newest}")),
        "{}",
        sync.stdout
    );
    let line = sync
        .stderr
        .lines()
        .find(|l| l.contains("not recorded"))
        .unwrap();
    assert!(line.contains(".dbbackup-state/remote-"), "{line}");
}

/// C1: a record at the store that is not valid JSON: `sync` names it and
/// says what to do, never blames another sync; once it is deleted, the next
/// sync uploads the point again.
#[test]
fn sync_names_an_unparsable_record_and_what_to_do() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "garbled");
    let names = s3::names(&r.points(2, &[]));
    let record = r.key(&format!("{}.meta.json", names[1]));
    r.put(
        &format!("{}.meta.json", names[1]),
        b"{\"format\":1, garbage",
    );
    let sync = r.run(&["sync"]);
    sync.failed_with(1, &format!("{record} is not a valid restore-point record"));
    assert!(!sync.stderr.contains("another sync"), "{}", sync.stderr);
    assert!(sync.stderr.contains("delete it"), "{}", sync.stderr);
    r.delete(&format!("{}.meta.json", names[1]));
    let sync = r.run(&["sync"]);
    sync.ok();
    assert!(
        sync.stdout.contains(&format!("uploaded {}", names[1])),
        "{}",
        sync.stdout
    );
}

/// C2: the local base of a new diff is damaged, its copy on the remote is
/// proved: `sync` names the base (not the diff) as damaged and uploads the
/// diff, which restores from the remote with the newest content.
#[test]
fn a_diff_on_a_locally_damaged_base_proved_on_the_remote_is_uploaded() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "localbase");
    let names = s3::names(&r.points(2, &["--diff-backups", "2"]));
    r.add_row();
    r.run(&["--diff-backups", "2", "backup"]).ok();
    let newest = r.env.backup_files().last().unwrap().clone();
    assert!(newest.ends_with(".diff.gz"), "{newest}");
    let want = crate::common::content_digest(&r.env.db);
    let base = r.env.backups.join(&names[0]);
    let mut bytes = fs::read(&base).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&base, &bytes).unwrap();
    let sync = r.run(&["sync"]);
    sync.ok();
    assert!(
        sync.stdout.contains(&format!("uploaded {newest}")),
        "{}",
        sync.stdout
    );
    let warned = sync
        .stderr
        .lines()
        .find(|l| l.contains("damaged"))
        .unwrap_or_default();
    assert!(
        warned.contains(&format!("{} is damaged", names[0])),
        "{}",
        sync.stderr
    );
    let target = r.env.path("copy.db");
    r.run(&[
        "restore",
        "latest",
        "--from-remote",
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(crate::common::content_digest(&target), want);
}

/// D1: local `restore latest` passes over a damaged newest point whose copy
/// on the remote is proved: it says where the newer copy is, and how to
/// restore it.
#[test]
fn restore_latest_says_a_newer_intact_copy_is_on_the_remote() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "newer");
    let names = s3::names(&r.points(2, &[]));
    let newest = r.env.backups.join(&names[1]);
    let mut bytes = fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&newest, &bytes).unwrap();
    let target = r.env.path("copy.db");
    let restore = r.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!("restored {}", names[0])),
        "{}",
        restore.stdout
    );
    let note = format!("note: a newer intact copy of {} is on {}", names[1], r.url);
    assert!(
        restore.stdout.contains(&note),
        "{names:?}\n{}\n{}",
        restore.stdout,
        restore.stderr
    );
    assert!(
        restore.stdout.contains(&format!(
            "dbbackup restore {} --from-remote --target {}",
            names[1],
            target.display()
        )),
        "the note keeps the user's --target (T14 #13): {}",
        restore.stdout
    );
}

/// T12 #3: with the newest point's *header* damaged locally (nothing to
/// compare its remote copy with), `restore latest` restored the older point
/// without naming the copy a sync had read back whole on the remote.
#[test]
fn restore_latest_names_the_remote_copy_of_a_point_whose_local_header_is_damaged() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "newer-header");
    let names = s3::names(&r.points(2, &[]));
    let newest = r.env.backups.join(&names[1]);
    let mut bytes = fs::read(&newest).unwrap();
    // A letter of the recorded source path: still JSON, no longer its checksum.
    let at = bytes
        .windows(10)
        .position(|w| w == b"\"source\":\"")
        .expect("a source in the header")
        + 12;
    bytes[at] ^= 0x01;
    fs::write(&newest, &bytes).unwrap();
    let target = r.env.path("copy.db");
    let restore = r.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!("restored {}", names[0]))
            && restore.stdout.contains("metadata checksum mismatch"),
        "{}",
        restore.stdout
    );
    let note = format!(
        "note: {}'s local header is damaged; a sync read its copy on {} back whole at ",
        names[1], r.url
    );
    assert!(
        restore.stdout.contains(&note)
            && restore.stdout.contains(&format!(
                "dbbackup restore {} --from-remote --target {}",
                names[1],
                target.display()
            )),
        "{names:?}\n{}\n{}",
        restore.stdout,
        restore.stderr
    );
}

/// T16 #9: the newest point is a diff whose base is gone locally (a purge,
/// retention): `restore latest` restored an older point without the note
/// that the diff, and the base it names, are proved on the remote.
#[test]
fn restore_latest_names_the_remote_copy_of_a_diff_whose_local_base_is_gone() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "diff-base-gone");
    let names = s3::names(&r.points(4, &["--diff-backups", "1"]));
    assert!(
        names[1].ends_with(".diff.gz") && names[3].ends_with(".diff.gz"),
        "{names:?}"
    );
    fs::remove_file(r.env.backups.join(&names[2])).unwrap();
    let target = r.env.path("copy.db");
    let restore = r.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!("restored {}", names[1])),
        "{}",
        restore.stdout
    );
    assert!(
        restore.stdout.contains(&format!(
            "note: a newer intact copy of {} is on {}",
            names[3], r.url
        )),
        "{}\n{}",
        restore.stdout,
        restore.stderr
    );
}

/// T16 #8: a purge by age took the base (the oldest file) and kept its newer
/// diffs; with the database lost, `restore latest` restored the base from the
/// remote (older data) without a word of the newer diffs. It says so, with
/// how to restore the newest of them.
#[test]
fn the_remote_fall_back_names_newer_local_diffs_whose_base_is_gone() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::sizeable(server, "purged-base");
    let base = s3::names(&r.points(1, &["--diff-backups", "3"]))[0].clone();
    for _ in 0..2 {
        r.add_row();
        r.run(&["--diff-backups", "3", "backup"]).ok();
    }
    let newest = r.env.backup_files().last().unwrap().clone();
    assert!(newest.ends_with(".diff.gz"), "{newest}");
    fs::remove_file(r.env.backups.join(&base)).unwrap();
    fs::remove_file(&r.env.db).unwrap();
    let restore = r.run(&["restore", "latest"]);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!(
            "holds 2 newer diffs (newest {newest}) whose base {base} is gone from it"
        )),
        "{}",
        restore.stdout
    );
    // The command it gives keeps the user's --target (T17 F6).
    let copy = r.env.path("copy.db");
    let restore = r.run(&["restore", "latest", "--target", copy.to_str().unwrap()]);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!(
            "run `dbbackup restore latest --target {}` again",
            copy.display()
        )),
        "{}",
        restore.stdout
    );
}
