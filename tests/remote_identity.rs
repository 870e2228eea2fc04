//! Which backup each point on the remote is: two backup directories of one
//! database never make the older data the remote's newest, a record is judged
//! by its content and not only its name, a record copied under another name is
//! named, and an adopted set syncs (docs/remote.md, "One prefix, one backup
//! set").

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::common::s3::{self, Remote};
use crate::common::{Env, content_digest, row_count};

fn add_rows(db: &Path, n: u32) {
    let conn = rusqlite::Connection::open(db).unwrap();
    for _ in 0..n {
        conn.execute("INSERT INTO ledger(amount, note) VALUES (7, 'more')", [])
            .unwrap();
    }
}

/// Backups names are by the second: the next one gets a name of its own.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// What [`two_directories`] made.
struct TwoDirs {
    /// Directory B, `other-backups` (as an argument).
    b: String,
    /// The content digest of A's point, the newest data.
    newest: String,
    /// A's one point (in the configured backup directory).
    a_name: String,
}

/// Directory B's three backups (local seq 1..3) are made before directory
/// A's one (local seq 1), whose content is the newest: B's numbers are the
/// higher, its data the older.
fn two_directories(env: &Env) -> TwoDirs {
    let b = env.path("other-backups").to_str().unwrap().to_string();
    for _ in 0..3 {
        add_rows(&env.db, 1);
        env.run(&["--backup-dir", &b, "backup"]).ok();
    }
    next_second();
    add_rows(&env.db, 5);
    env.run(&["backup"]).ok();
    TwoDirs {
        b,
        newest: content_digest(&env.db),
        a_name: env.backup_files()[0].clone(),
    }
}

#[test]
fn an_older_backup_directory_synced_later_never_becomes_the_remotes_newest() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "mixed");
    let env = &r.env;
    let TwoDirs { b, newest, a_name } = two_directories(env);
    let b_arg = b.as_str();
    let run = |args: &[&str]| r.run(args);
    run(&["sync"]).ok();
    let sync = run(&["--backup-dir", b_arg, "sync"]);
    sync.failed_with(1, &a_name);
    let line = sync.stderr.lines().find(|l| l.contains(&a_name)).unwrap();
    assert!(
        line.contains("give each backup directory its own remote prefix")
            && line.contains(&env.backups.canonicalize().unwrap().display().to_string()),
        "{}",
        sync.stderr
    );
    assert_eq!(r.restored_latest(1), newest);
    // Remote retention from either directory keeps the true newest.
    run(&["--backup-dir", b_arg, "--remote-max-backups", "1", "sync"]).failed_with(1, &a_name);
    run(&["--remote-max-backups", "1", "sync"]).ok();
    assert_eq!(r.remote_names(), [a_name]);
    assert_eq!(r.restored_latest(2), newest);
}

#[test]
fn an_older_backup_directory_synced_first_stays_below_the_newer_one() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "first");
    let env = &r.env;
    let TwoDirs { b, newest, a_name } = two_directories(env);
    let b_arg = b.as_str();
    let run = |args: &[&str]| r.run(args);
    run(&["--backup-dir", b_arg, "sync"]).ok();
    run(&["sync"]).ok();
    assert_eq!(r.restored_latest(1), newest);
    // B's next sync does not lift its older points above A's.
    run(&["--backup-dir", b_arg, "sync"]).ok();
    run(&["--backup-dir", b_arg, "--remote-max-backups", "1", "sync"]).ok();
    // B's newest stays too (a sync never deletes its directory's newest
    // point: T31 R5), below A's.
    let b_newest = crate::common::backup_files_in(Path::new(&b)).pop().unwrap();
    let mut want = vec![a_name, b_newest];
    want.sort();
    assert_eq!(r.remote_names(), want);
    assert_eq!(r.restored_latest(2), newest);
}

#[test]
fn a_mirror_of_the_same_backups_syncs_to_the_same_prefix() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "mirrored");
    let env = &r.env;
    let mirror = env.path("mirror");
    let mirror_arg = mirror.to_str().unwrap();
    for _ in 0..3 {
        add_rows(&env.db, 1);
        env.run(&["--mirror-dir", mirror_arg, "backup"]).ok();
    }
    let newest = content_digest(&env.db);
    let run = |args: &[&str]| r.run(args);
    // The mirror first, with one point fewer; then the backup directory.
    run(&[
        "--backup-dir",
        mirror_arg,
        "--remote-max-backups",
        "2",
        "sync",
    ])
    .ok();
    run(&["sync"]).ok();
    run(&["--backup-dir", mirror_arg, "sync"]).ok();
    assert_eq!(r.restored_latest(1), newest);
}

#[test]
fn the_restore_note_never_sends_to_another_backup_of_the_same_name() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "note");
    let env = &r.env;
    let b = env.path("other-backups");
    let b_arg = b.to_str().unwrap();
    // B's backup (the oldest data), then A's two.
    env.run(&["--backup-dir", b_arg, "backup"]).ok();
    for _ in 0..2 {
        next_second();
        add_rows(&env.db, 3);
        env.run(&["backup"]).ok();
    }
    let names = env.backup_files();
    // B's point under the name of A's newest.
    let b_file = crate::common::backup_files_in(&b)[0].clone();
    crate::common::rename_backup(&b.join(&b_file), &b.join(&names[1]));
    let run = |args: &[&str]| r.run(args);
    run(&["--backup-dir", b_arg, "sync"]).ok();
    // A's newest cannot go up (the name is taken), but B's point is read back
    // whole by A's sync, under that name.
    run(&["sync"]).failed_with(1, &names[1]);
    // Damage in the data, past the header: the backup is still A's newest.
    let newest = env.backups.join(&names[1]);
    let mut bytes = fs::read(&newest).unwrap();
    let header = dbbackup::store::metadata::HEADER_LEN;
    let at = header + (bytes.len() - header) / 2;
    bytes[at] ^= 0xff;
    fs::write(&newest, &bytes).unwrap();
    let target = env.path("copy.db");
    let restore = run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    restore.ok();
    assert!(
        restore.stdout.contains(&format!("restored {}", names[0])),
        "{}",
        restore.stdout
    );
    assert!(
        !restore.stdout.contains("newer intact copy"),
        "{}",
        restore.stdout
    );
    let note = format!(
        "note: {} on {} is another backup than the local {} (its content differs)",
        names[1], r.url, names[1]
    );
    let proofs: Vec<String> = fs::read_dir(env.backups.join(".dbbackup-state"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("remote-proofs"))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        restore.stdout.contains(&note),
        "{}\n{}\n{proofs:?}",
        restore.stdout,
        restore.stderr
    );
}

#[test]
fn a_record_copied_under_another_points_name_is_named_by_list_verify_and_sync() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "copied");
    let env = &r.env;
    env.run(&["backup"]).ok();
    next_second();
    add_rows(&env.db, 2);
    env.run(&["backup"]).ok();
    let names = env.backup_files();
    let run = |args: &[&str]| r.run(args);
    run(&["sync"]).ok();
    let record = |name: &str| format!("{name}.meta.json");
    let first = r.object(&record(&names[0]));
    r.put(&record(&names[1]), &first);
    let copied = format!("{}/{}", r.url, record(&names[1]));
    let said = format!("is the record of {}", names[0]);

    let listed = run(&["list", "--from-remote"]);
    listed.ok();
    let row = listed
        .stdout
        .lines()
        .find(|l| l.starts_with(&names[1]))
        .unwrap_or_else(|| panic!("{} not listed:\n{}", names[1], listed.stdout));
    assert!(row.contains("damaged"), "{}", listed.stdout);
    let verify = run(&["verify", "--from-remote"]);
    assert_eq!(verify.code, 1, "{}\n{}", verify.stdout, verify.stderr);
    let all = format!("{}{}", verify.stdout, verify.stderr);
    let failed = all
        .lines()
        .find(|l| l.contains(&names[1]))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        failed.contains("FAILED") && failed.contains(&said) && failed.contains(&copied),
        "{all}"
    );
    let sync = run(&["sync"]);
    sync.failed_with(1, &copied);
    assert!(
        sync.stderr.contains(&format!(
            "holds the record of {}, not of {}",
            names[0], names[1]
        )),
        "{}",
        sync.stderr
    );
    // Without the point to upload, every sync still names the object.
    let aside = env.path("aside.db.gz");
    fs::rename(env.backups.join(&names[1]), &aside).unwrap();
    let sync = run(&["sync"]);
    sync.failed_with(1, &copied);
    assert!(sync.stderr.contains(&said), "{}", sync.stderr);
    fs::rename(&aside, env.backups.join(&names[1])).unwrap();
    // As the line says: delete it, and the next sync uploads it again.
    r.delete(&record(&names[1]));
    run(&["sync"]).ok();
    assert_eq!(r.restored_latest(1), content_digest(&env.db));
}

#[test]
fn after_adopt_sync_uploads_the_adopted_points_and_restores_them() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "adopted");
    let env = &r.env;
    let run = |args: &[&str]| r.run(args);
    run(&["backup"]).ok();
    next_second();
    add_rows(&env.db, 2);
    run(&["backup"]).ok();
    run(&["sync"]).ok();
    let want = content_digest(&env.db);
    let rows = row_count(&env.db, "ledger");
    let moved = env.path("moved.db");
    fs::rename(&env.db, &moved).unwrap();
    let moved_arg = moved.to_str().unwrap();
    let old = env.db.to_str().unwrap();
    run(&["--db-path", moved_arg, "adopt", old]).ok();
    let sync = run(&["--db-path", moved_arg, "sync", "--format", "json"]);
    sync.ok();
    assert_eq!(
        sync.json()["uploaded"].as_array().unwrap().len(),
        2,
        "{}",
        sync.stdout
    );
    run(&["--db-path", moved_arg, "sync"]).ok();
    // The remote's points are the moved database's now.
    fs::remove_dir_all(&env.backups).unwrap();
    fs::remove_file(&moved).unwrap();
    run(&["--db-path", moved_arg, "restore", "latest"]).ok();
    assert_eq!(content_digest(&moved), want);
    assert_eq!(row_count(&moved, "ledger"), rows);
}

#[test]
fn a_point_of_the_same_directory_made_on_a_node_whose_clock_ran_ahead_is_no_other_set() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "skew");
    let env = &r.env;
    let run = |args: &[&str]| r.run(args);
    run(&["backup"]).ok();
    // Made by a node whose clock was an hour ahead (named by that clock too,
    // as every backup is); synced, then pruned here.
    let made = env.backups.join(&env.backup_files()[0]);
    let mut created = None;
    crate::common::rewrite_meta(&made, |meta| {
        meta.created += jiff::SignedDuration::from_hours(1);
        created = Some(meta.created);
    });
    let second = created
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .strftime("%Y%m%d_%H%M%S");
    let ahead = env.backups.join(format!("backup_{second}.db.gz"));
    crate::common::rename_backup(&made, &ahead);
    run(&["sync"]).ok();
    fs::remove_file(&ahead).unwrap();
    next_second();
    add_rows(&env.db, 2);
    run(&["backup"]).ok();
    run(&["sync"]).ok();
    assert_eq!(r.restored_latest(1), content_digest(&env.db));
}

#[test]
fn remote_retention_never_deletes_a_point_made_after_the_one_an_earlier_version_ranked_newest() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "earlier");
    let env = &r.env;
    let TwoDirs { b, newest, a_name } = two_directories(env);
    let b_names = crate::common::backup_files_in(Path::new(&b));
    let run = |args: &[&str]| r.run(args);
    run(&["--backup-dir", &b, "sync"]).ok();
    run(&["sync"]).ok();
    // What an earlier version left: B's newest (older data than A's) ranked
    // above A's point. Its record as that version wrote it (format 1).
    let mut record = r.record(&b_names[2]);
    record["remote_seq"] = serde_json::json!(99);
    record.as_object_mut().unwrap().remove("from");
    r.put_old_record(&b_names[2], record);
    let sync = run(&["--remote-max-backups", "1", "sync"]);
    sync.ok();
    let ranks = format!("{a_name} on {} ranks below {}", r.url, b_names[2]);
    assert!(sync.stderr.contains(&ranks), "{}", sync.stderr);
    let mut want = vec![a_name.clone(), b_names[2].clone()];
    want.sort();
    assert_eq!(r.remote_names(), want);
    let target = env.path("a.db");
    r.restore_from_remote(&a_name, &target).ok();
    assert_eq!(content_digest(&target), newest);
}

/// T16 #6: two backup directories under one path (a project cloned again
/// beside the old one, then the old one moved back): the second's older
/// backup, synced after the first's newer one, became the remote's newest
/// (the path was the same, so the numbers were trusted): `restore latest`
/// gave the older data, every command said OK. A backup directory's own
/// identity, made by its first sync, tells them apart: that upload ranks
/// below the newer one by the clocks, and the sync fails naming both.
#[test]
fn a_backup_directory_made_again_under_the_same_path_does_not_outrank_the_newer_one() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "again");
    let env = &r.env;
    let aside = env.path("backups-of-the-old-clone");
    env.run(&["backup"]).ok();
    fs::rename(&env.backups, &aside).unwrap();
    next_second();
    add_rows(&env.db, 5);
    env.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let newest = content_digest(&env.db);
    let newer_set = env.path("backups-of-the-new-clone");
    fs::rename(&env.backups, &newer_set).unwrap();
    fs::rename(&aside, &env.backups).unwrap();
    let sync = r.run(&["sync"]);
    assert_eq!(sync.code, 1, "{}{}", sync.stdout, sync.stderr);
    // Kept on the remote below the newer one (never refused: after a loss
    // the same signs are a new directory's on a slow clock, T33 H1), and said.
    assert!(
        sync.stderr
            .contains("uploaded from this path by another backup directory and dated after it"),
        "{}",
        sync.stderr
    );
    fs::rename(&env.backups, &aside).unwrap();
    fs::rename(&newer_set, &env.backups).unwrap();
    r.run(&["sync"]).ok();
    assert_eq!(r.restored_latest(1), newest);
}

/// T18 #4: the same, with the second directory a copy of the first (`cp -a`,
/// `rsync -a` to another cluster with the same paths): the copy carried the
/// identity file, the two sets were one, and the older one's later sync put
/// its older backups above the newer one's. A copy's identity is its own.
#[test]
fn a_copied_backup_directory_is_told_apart_from_its_original() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "copied");
    let env = &r.env;
    env.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let copy = env.path("backups-copy");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&env.backups)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    // The original goes on (not synced yet); then the copy, newer, syncs.
    next_second();
    add_rows(&env.db, 1);
    env.run(&["backup"]).ok();
    let original = env.path("backups-original");
    fs::rename(&env.backups, &original).unwrap();
    fs::rename(&copy, &env.backups).unwrap();
    next_second();
    add_rows(&env.db, 5);
    env.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let newest = content_digest(&env.db);
    fs::rename(&env.backups, &copy).unwrap();
    fs::rename(&original, &env.backups).unwrap();
    let sync = r.run(&["sync"]);
    assert_eq!(sync.code, 1, "{}{}", sync.stdout, sync.stderr);
    assert_eq!(r.restored_latest(1), newest);
}

/// Two backups a second apart, both synced (`--remote-max-backups 2`).
fn two_points_synced(prefix: &str) -> Option<Remote> {
    let r = Remote::new(s3::shared()?, prefix);
    r.run(&["backup"]).ok();
    next_second();
    add_rows(&r.env.db, 1);
    r.run(&["backup"]).ok();
    r.run(&["--remote-max-backups", "2", "sync"]).ok();
    Some(r)
}

/// T31 R17 (DATA LOSS): after the backup directory was lost, the next backup,
/// made on a node whose clock is two minutes behind the one that made the
/// points already on the remote, ranked below them by the clock; remote
/// retention deleted it in the sync that uploaded it ("1 uploaded", exit 0,
/// every sync), and `restore latest` gave the data from before the loss.
/// The upload stays, and the sync fails naming the clocks.
#[test]
fn a_backup_made_after_a_purge_on_a_node_whose_clock_is_behind_stays_on_the_remote_and_is_named() {
    if !crate::common::have_or_skip("faketime") {
        return;
    }
    let Some(r) = two_points_synced("behind") else {
        return;
    };
    let env = &r.env;
    let run = |args: &[&str]| r.run(args);
    let before_loss = r.remote_names();
    fs::remove_dir_all(&env.backups).unwrap();
    add_rows(&env.db, 3);
    let newest = content_digest(&env.db);
    let made: crate::common::Run = crate::common::under_faketime(&r.command(), "-120s")
        .arg("backup")
        .output()
        .unwrap()
        .into();
    made.ok();
    let new_name = env.backup_files().pop().unwrap();
    for round in 0..2 {
        let sync = run(&["--remote-max-backups", "2", "sync"]);
        assert_eq!(
            sync.code, 1,
            "round {round}: {}{}",
            sync.stdout, sync.stderr
        );
        assert!(
            !sync.stdout.contains(&format!("deleted {new_name}")),
            "{}",
            sync.stdout
        );
        let said = format!("{new_name} ranks on {} below {}", r.url, before_loss[1]);
        assert!(sync.stderr.contains(&said), "{}", sync.stderr);
        assert!(sync.stderr.contains("clock"), "{}", sync.stderr);
    }
    let check = run(&["--remote-max-backups", "2", "check"]);
    let line = s3::remote_line(&check);
    assert!(
        line.starts_with("FAIL") && line.contains(&new_name),
        "{line}"
    );
    let mut want = before_loss.clone();
    want.push(new_name.clone());
    want.sort();
    assert_eq!(r.remote_names(), want);
    let target = env.path("after-the-loss.db");
    r.restore_from_remote(&new_name, &target).ok();
    assert_eq!(content_digest(&target), newest);
    // The next backup, by a clock past the old points', is the newest again.
    next_second();
    add_rows(&env.db, 1);
    run(&["backup", "--force"]).ok();
    run(&["--remote-max-backups", "2", "sync"]).ok();
    assert_eq!(r.restored_latest(1), content_digest(&env.db));
}

/// T31 R5: the backup directory's newest point older than the remote's
/// newest (a newer one damaged here and deleted, as the WARN advises): each
/// sync uploaded it and deleted it again (remote_max_backups: 1), and
/// `check` asked for a sync that could never put it there. Retention keeps
/// the backup directory's newest point, once proved there.
#[test]
fn the_backup_directorys_newest_point_is_not_deleted_by_the_sync_that_uploads_it() {
    for damaged in [false, true] {
        newest_here_kept(damaged);
    }
}

fn newest_here_kept(damaged: bool) {
    let Some(r) = two_points_synced("churn") else {
        return;
    };
    let env = &r.env;
    let run = |args: &[&str]| r.run(args);
    let names = env.backup_files();
    // Retention lets the older point go while the newer one is there.
    let pruned = run(&["--remote-max-backups", "1", "sync"]);
    assert!(
        pruned.stdout.contains(&format!("deleted {}", names[0])),
        "{}",
        pruned.stdout
    );
    // Rotted here and found so (T33 H5), or deleted as the WARN advises.
    if damaged {
        // In the data, past the 8 KiB header: its metadata stays readable.
        let path = env.backups.join(&names[1]);
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() * 3 / 4;
        assert!(at > 8192, "{}", bytes.len());
        bytes[at] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        run(&["verify"]).reported(1, "FAILED");
    } else {
        fs::remove_file(env.backups.join(&names[1])).unwrap();
    }
    let first = run(&["--remote-max-backups", "1", "sync"]);
    first.ok();
    assert!(
        first.stdout.contains(&format!("uploaded {}", names[0])),
        "{}",
        first.stdout
    );
    assert!(!first.stdout.contains("deleted"), "{}", first.stdout);
    let again = run(&["--remote-max-backups", "1", "sync"]);
    again.ok();
    assert!(!again.stdout.contains("uploaded "), "{}", again.stdout);
    assert!(!again.stdout.contains("deleted"), "{}", again.stdout);
    assert_eq!(r.remote_names(), names);
    let check = run(&["--remote-max-backups", "1", "check"]);
    let line = s3::remote_line(&check);
    assert!(line.contains("OK"), "{line}");
}

/// T33 H1: the same with one point on the remote from before the loss: the
/// new point, made by a node whose clock is behind, was refused as another
/// backup directory's ("give each backup directory its own remote prefix"),
/// and the diffs made on it after never went up either. It goes up, below
/// the old point by the clocks, the sync fails naming them, and the next
/// backup by a right clock is the remote's newest.
#[test]
fn after_a_loss_a_lone_old_point_never_keeps_a_new_one_from_a_slow_clock_off_the_remote() {
    if !crate::common::have_or_skip("faketime") {
        return;
    }
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "lone");
    let env = &r.env;
    let run = |args: &[&str]| {
        let mut all = vec!["--diff-backups", "2"];
        all.extend_from_slice(args);
        r.run(&all)
    };
    run(&["backup"]).ok();
    run(&["sync"]).ok();
    let old = r.remote_names();
    fs::remove_dir_all(&env.backups).unwrap();
    add_rows(&env.db, 3);
    let after_loss = content_digest(&env.db);
    let made: crate::common::Run = crate::common::under_faketime(&r.command(), "-120s")
        .args(["--diff-backups", "2", "backup"])
        .output()
        .unwrap()
        .into();
    made.ok();
    let new_name = env.backup_files().pop().unwrap();
    let sync = run(&["sync"]);
    assert_eq!(sync.code, 1, "{}{}", sync.stdout, sync.stderr);
    let said = format!("{new_name} ranks on {} below {}", r.url, old[0]);
    assert!(sync.stderr.contains(&said), "{}", sync.stderr);
    assert!(
        !sync.stderr.contains("its own remote prefix\n"),
        "{}",
        sync.stderr
    );
    let target = env.path("after-the-loss.db");
    r.restore_from_remote(&new_name, &target).ok();
    assert_eq!(content_digest(&target), after_loss);
    next_second();
    add_rows(&env.db, 1);
    run(&["backup"]).ok();
    run(&["sync"]).ok();
    run(&["sync"]).ok();
    assert_eq!(r.restored_latest(1), content_digest(&env.db));
}

/// T37 S10: an older backup's header damaged in the backup directory, its
/// point proved on the remote: the WARN advised `restore NAME
/// --from-remote`, which set the live database back to that older point.
/// The remedy is for the file: delete it, `export` gets it back.
#[test]
fn a_damaged_header_of_an_older_backup_is_advised_a_remedy_for_the_file_not_a_restore() {
    let Some(r) = two_points_synced("oldheader") else {
        return;
    };
    let older = r.env.backup_files()[0].clone();
    let path = r.env.backups.join(&older);
    let mut bytes = fs::read(&path).unwrap();
    bytes[200] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let sync = r.run(&["--remote-max-backups", "2", "sync"]);
    sync.ok();
    assert!(
        sync.stderr.contains(&format!(
            "delete the local file (`dbbackup verify` names it); to have the backup here again, `dbbackup export {older} --from-remote --out FILE`"
        )),
        "{}",
        sync.stderr
    );
    assert!(!sync.stderr.contains("restore"), "{}", sync.stderr);
}

/// T37 S4: the backup directory purged, the last sync's record the remote's
/// only word: `check`'s remote line stayed OK however old its read-backs
/// (a year later too). The same bound as with restore points there: OK for
/// 7 days after the read-back, WAIT for remote_max_age more, then FAIL.
#[test]
fn after_a_purge_the_remote_line_ages_with_its_read_backs() {
    if !crate::common::have_or_skip("faketime") {
        return;
    }
    let Some(r) = two_points_synced("purgedage") else {
        return;
    };
    for name in r.env.backup_files() {
        fs::remove_file(r.env.backups.join(name)).unwrap();
    }
    let check_at = |offset: &str| {
        let check: crate::common::Run = crate::common::under_faketime(&r.command(), offset)
            .args(["check", "--remote-max-age", "3d"])
            .output()
            .unwrap()
            .into();
        s3::remote_line(&check)
    };
    let now = check_at("+0");
    assert!(
        now.starts_with("OK   remote: no restore point in the backup directory"),
        "{now}"
    );
    let later = check_at("+8d");
    assert!(later.starts_with("WAIT remote:"), "{later}");
    assert!(later.contains("more than 7d 0h ago"), "{later}");
    let much_later = check_at("+30d");
    assert!(much_later.starts_with("FAIL remote:"), "{much_later}");
}
