//! A group-shared project directory (root:proj 2775, results.db proj 664): two
//! real users of one group, each with umask 022, back up, prune, restore and run
//! SLURM hooks on the same database (issue 24). Needs root to make the users;
//! skipped otherwise (CI runs as root).

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::*;

const GROUP: &str = "dbb_proj";
const ALICE: &str = "dbb_alice";
const BOB: &str = "dbb_bob";

/// The two users and their group, made once per test process (concurrent
/// `useradd`s would fight over /etc/passwd's lock); `false` when not root.
fn users() -> bool {
    static MADE: OnceLock<bool> = OnceLock::new();
    *MADE.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must test shared groups"
            );
            let _ = writeln!(
                std::io::stderr(),
                "shared-group tests SKIPPED: not root, cannot make users"
            );
            return false;
        }
        let exists = |db: &str, name: &str| {
            Command::new("getent")
                .args([db, name])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !exists("group", GROUP) {
            let made = Command::new("groupadd").arg(GROUP).status().unwrap();
            assert!(made.success() || exists("group", GROUP), "groupadd {GROUP}");
        }
        for user in [ALICE, BOB] {
            if !exists("passwd", user) {
                let made = Command::new("useradd")
                    .args(["-M", "-N", "-g", GROUP, "-s", "/bin/sh", user])
                    .status()
                    .unwrap();
                assert!(made.success() || exists("passwd", user), "useradd {user}");
            }
        }
        true
    })
}

fn gid(name: &str) -> u32 {
    nix::unistd::Group::from_name(name)
        .unwrap()
        .expect("group exists")
        .gid
        .as_raw()
}

fn uid(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .expect("user exists")
        .uid
        .as_raw()
}

fn chown(path: &Path, user: Option<&str>, group: &str) {
    std::os::unix::fs::chown(path, user.map(uid), Some(gid(group))).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn owner(path: &Path) -> String {
    let meta = fs::symlink_metadata(path).unwrap();
    nix::unistd::User::from_uid(meta.uid().into())
        .unwrap()
        .map_or(meta.uid().to_string(), |u| u.name)
}

/// A project directory root:dbb_proj 2775 holding `results.db` with `db_mode`
/// (group dbb_proj, owned by `db_owner`), and a copy of the binary everyone can
/// run (the worktree may be out of the users' reach).
struct Project {
    _root: tempfile::TempDir,
    dir: PathBuf,
    db: PathBuf,
    bin: PathBuf,
}

impl Project {
    fn new(db_owner: Option<&str>, db_mode: u32) -> Project {
        let root = tempfile::tempdir().unwrap();
        chmod(root.path(), 0o755);
        let bin = root.path().join("dbbackup");
        copy_binary(&bin);
        let dir = root.path().join("project");
        fs::create_dir(&dir).unwrap();
        chown(&dir, None, GROUP);
        chmod(&dir, 0o2775);
        let db = dir.join("results.db");
        // Big enough that a one-row change makes a small diff.
        make_ledger_db(&db, 5000, false);
        chown(&db, db_owner, GROUP);
        chmod(&db, db_mode);
        Project {
            _root: root,
            dir,
            db,
            bin,
        }
    }

    fn backups(&self) -> PathBuf {
        self.dir.join("outputs/db_backups")
    }

    /// A command run as `user` (group dbb_proj and its supplementary groups)
    /// with umask 022 (or `umask`), in the project directory, without inherited settings.
    fn as_user(&self, user: &str) -> Command {
        self.as_user_with_umask(user, "022")
    }

    fn as_user_with_umask(&self, user: &str, umask: &str) -> Command {
        let mut command = Command::new("setpriv");
        command.current_dir(&self.dir);
        without_inherited_settings(&mut command);
        command.args([
            &format!("--reuid={user}"),
            &format!("--regid={GROUP}"),
            "--init-groups",
            "sh",
            "-c",
            &format!("umask {umask}; exec \"$@\""),
            "sh",
        ]);
        command
    }

    /// `dbbackup ARGS` as `user`, with the default backup directory and summary
    /// log; `env` adds variables.
    fn run_as(&self, user: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.as_user(user);
        command.envs(env.iter().copied());
        command
            .arg(&self.bin)
            .args(["--db-path", "results.db"])
            .args(args);
        command.output().unwrap().into()
    }

    fn change_database(&self) {
        rusqlite::Connection::open(&self.db)
            .unwrap()
            .execute_batch(
                "INSERT INTO ledger (amount, note) VALUES (0, 'x'); UPDATE counter SET n = n + 1",
            )
            .unwrap();
    }
}

/// What a user checks in a shared project: every directory dbbackup made is
/// group-writable and setgid, every file it made group-readable, the lock and
/// state files group-writable, nothing writable by others, all in the group.
fn assert_shared(project: &Project) {
    let mut seen = 0;
    for path in everything_under(&project.dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("results.db") || name == "dbbackup.yaml" {
            continue;
        }
        seen += 1;
        let (mode, meta) = (mode(&path), fs::symlink_metadata(&path).unwrap());
        let what = format!("{} (mode {mode:o}, owner {})", path.display(), owner(&path));
        assert_eq!(meta.gid(), gid(GROUP), "{what}: in the project's group");
        assert_eq!(mode & 0o002, 0, "{what}: never writable by others");
        if meta.is_dir() {
            assert_eq!(mode, 0o2775, "{what}: group rwx, setgid");
        } else if name.starts_with("backup_") || path.parent().unwrap().ends_with(".dbbackup-pages")
        {
            // The database's own bits (664): never more readable than it.
            assert_eq!(mode, 0o664, "{what}");
        } else {
            assert_eq!(mode, 0o664, "{what}: group read/write");
        }
    }
    assert!(
        seen >= 8,
        "dbbackup made its files: {:?}",
        everything_under(&project.dir)
    );
}

#[test]
fn two_members_of_a_group_back_up_prune_and_restore_the_same_database() {
    if !users() {
        return;
    }
    let project = Project::new(None, 0o664);
    // The project's settings: differential backups after each full one.
    fs::write(project.dir.join("dbbackup.yaml"), "diff_backups: 3\n").unwrap();
    let alices = alice_starts(&project);
    bob_diffs_on_alices_base_and_restores(&project, &alices);
    both_run_jobs(&project);
    bob_prunes_alices_backups_and_alice_goes_on(&project, &alices);
    every_member_writes_the_summary_log(&project);
}

/// alice's full backup and SLURM job make the directories, the lock and the
/// summary log, group-shared; the name of her backup.
fn alice_starts(project: &Project) -> String {
    let backups = project.backups();
    // alice's umask 022 would make 2755 directories and a 644 lock.
    project.run_as(ALICE, &["backup", "--force"], &[]).ok();
    let alices = fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("backup_"))
        .unwrap();
    assert_eq!(owner(&backups.join(&alices)), ALICE);
    assert_eq!(mode(&project.dir.join("outputs")), 0o2775);
    assert_eq!(mode(&backups), 0o2775);
    assert_eq!(mode(&backups.join(".dbbackup.lock")), 0o664);
    // alice's SLURM job starts the summary log and the array state.
    project
        .run_as(ALICE, &["pre-job"], &[("SLURM_JOB_ID", "7000")])
        .ok();
    assert_eq!(mode(&project.dir.join("slrm_logs")), 0o2775);
    assert_eq!(
        mode(&project.dir.join("slrm_logs/backup_summary.log")),
        0o664
    );
    alices
}

/// bob's differential backup on alice's full one (her page hashes), restored.
fn bob_diffs_on_alices_base_and_restores(project: &Project, alices: &str) {
    let backups = project.backups();
    project.change_database();
    let made = project.run_as(BOB, &["backup"], &[]);
    made.ok();
    let list = project.run_as(BOB, &["list", "--format", "json"], &[]);
    list.ok();
    let rows = list.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let diff = rows.iter().find(|r| r["name"] != alices).unwrap();
    assert_eq!(diff["type"], "diff", "{diff}: {}", made.stderr);
    let bobs = diff["name"].as_str().unwrap().to_string();
    assert_eq!(owner(&backups.join(&bobs)), BOB);
    let expected = content_digest(&project.db);

    // bob restores his diff (alice's base under it) over the database.
    project.change_database();
    project.run_as(BOB, &["restore", &bobs], &[]).ok();
    assert_eq!(content_digest(&project.db), expected);
    assert_eq!(
        mode(&project.db),
        0o664,
        "the database stays group-writable"
    );
    assert_eq!(fs::metadata(&project.db).unwrap().gid(), gid(GROUP));
}

/// bob's jobs (pre-job and post-job; `dbbackup run`) in what alice's made, and
/// alice's job's end in what bob's wrote.
fn both_run_jobs(project: &Project) {
    // bob's SLURM job: pre-job and post-job in the directory alice made.
    let job = [("SLURM_JOB_ID", "7001"), ("SLURM_JOB_NAME", "sweep")];
    project.run_as(BOB, &["pre-job"], &job).ok();
    project.change_database();
    project.run_as(BOB, &["post-job"], &job).ok();
    // bob's job under `dbbackup run`: its pre-job, work and post-job in what
    // alice's and bob's jobs made; the work's status is run's.
    let run_job = [("SLURM_JOB_ID", "7002"), ("SLURM_JOB_NAME", "sweep")];
    project.change_database();
    let run = project.run_as(BOB, &["run", "--", "sh", "-c", "exit 3"], &run_job);
    assert_eq!(
        run.code, 3,
        "run exits with the work's status\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Permission denied"), "{}", run.stderr);
    // alice's job ends in what bob's wrote.
    project.change_database();
    project
        .run_as(ALICE, &["post-job"], &[("SLURM_JOB_ID", "7000")])
        .ok();
}

/// bob's retention deletes alice's backups once his own full backup is the
/// newest; alice can still do everything in what bob made.
fn bob_prunes_alices_backups_and_alice_goes_on(project: &Project, alices: &str) {
    let backups = project.backups();
    // bob's retention deletes alice's backups (and her page hashes) once his
    // own full backup is the newest.
    project.change_database();
    project
        .run_as(BOB, &["--diff-backups", "0", "backup"], &[])
        .ok();
    project
        .run_as(BOB, &["prune", "--max-backups", "1"], &[])
        .ok();
    assert!(!backups.join(alices).exists(), "alice's backup pruned");
    let left: Vec<String> = fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backup_"))
        .collect();
    assert!(!left.is_empty());
    // alice can still do everything in what bob made.
    project.change_database();
    project.run_as(ALICE, &["backup"], &[]).ok();
    project.run_as(ALICE, &["verify", "--all"], &[]).ok();
    // A backup found damaged by bob's verify: the marker is the group's too.
    let damaged = backups.join(&left[0]);
    let mut bytes = fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&damaged, bytes).unwrap();
    let verify = project.run_as(BOB, &["verify", "--all"], &[]);
    assert_eq!(verify.code, 1, "{}", verify.stderr);
    let marker = backups.join(format!(".dbbackup-pages/{}.damaged", left[0]));
    assert_eq!(owner(&marker), BOB);
    assert_shared(project);
}

/// The summary log has every member's lines.
fn every_member_writes_the_summary_log(project: &Project) {
    let lines = summary_lines(&project.dir.join("slrm_logs/backup_summary.log"));
    assert!(
        lines
            .iter()
            .any(|l| l["job"] == "7002" && l["event"] == "post-job" && l["exit_status"] == "3"),
        "bob's run wrote its post-job line: {lines:#?}"
    );
    let jobs: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["job"].as_str(), l["status"].as_str()))
        .collect();
    assert_eq!(
        jobs,
        [
            ("7000", "ok"),
            ("7001", "ok"),
            ("7001", "ok"),
            ("7002", "ok"),
            ("7002", "skipped"),
            ("7000", "ok")
        ],
        "{lines:#?}"
    );
}

#[test]
fn a_private_database_keeps_its_backups_private_even_when_sharing_is_asked_for() {
    if !users() {
        return;
    }
    let project = Project::new(Some(ALICE), 0o600);
    project.run_as(ALICE, &["backup"], &[]).ok();
    project.change_database();
    project
        .run_as(
            ALICE,
            &["--shared", "group", "--diff-backups", "2", "backup"],
            &[],
        )
        .ok();
    let backups = project.backups();
    let mut files = 0;
    for path in everything_under(&backups) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("backup_") || path.parent().unwrap().ends_with(".dbbackup-pages") {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    assert!(
        files >= 3,
        "two backups and a page-hash table: {:?}",
        everything_under(&backups)
    );
}

#[test]
fn a_lock_file_another_member_made_private_is_named_with_its_owner_mode_and_fix() {
    if !users() {
        return;
    }
    let project = Project::new(None, 0o664);
    // alice chose the umask's modes: 2755 directory, 644 lock.
    project
        .run_as(ALICE, &["--shared", "umask", "backup"], &[])
        .ok();
    let backups = project.backups();
    let lock = backups.join(".dbbackup.lock");
    assert_eq!(mode(&backups), 0o2755);
    assert_eq!(mode(&lock), 0o644);
    let before = everything_under(&backups);
    // As the user named them: relative to the project directory.
    let (dir, lock_shown) = ("outputs/db_backups", "outputs/db_backups/.dbbackup.lock");
    let fix = format!(
        "not writable by you [fix: {ALICE} runs `chmod -R g+rwX {dir}`; \
         `shared: group` keeps what dbbackup creates group-writable]: Permission denied (os error 13)"
    );
    let line = format!(
        "backup directory {dir} (owner {ALICE}, group {GROUP}, mode 2755) and \
         lock file {lock_shown} (owner {ALICE}, group {GROUP}, mode 644) are {fix}"
    );
    // Changed since alice's backup: every command has work to do.
    project.change_database();
    let job = [("SLURM_JOB_ID", "7002")];
    for args in [
        &["backup", "--force"][..],
        &["--min-interval-hours", "0", "auto"],
        &["prune"],
        &["restore", "latest"],
        &["pre-job"],
        &["post-job"],
        &["--min-interval-hours", "0", "periodic"],
        &["adopt", "/old/results.db"],
    ] {
        let run = project.run_as(BOB, args, &job);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains(" ERROR "))
            .collect();
        assert_eq!(errors.len(), 1, "{args:?}: {}", run.stderr);
        assert!(errors[0].contains(&line), "{args:?}: {}", run.stderr);
    }
    assert_eq!(everything_under(&backups), before, "nothing changed");
    // Reading alice's backups needs no write: a restore into a new file works
    // without the lock, as from any read-only archive.
    project
        .run_as(BOB, &["restore", "latest", "--target", "copy.db"], &[])
        .ok();
    assert_eq!(owner(&project.dir.join("copy.db")), BOB);
    // The directory fixed, not the lock: the lock alone is named.
    chmod(&backups, 0o2775);
    let run = project.run_as(BOB, &["backup", "--force"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = format!("lock file {lock_shown} (owner {ALICE}, group {GROUP}, mode 644) is {fix}");
    assert!(run.stderr.contains(&line), "{}", run.stderr);
    // The fix as the line says it: then bob's backups work.
    let fixed = project
        .as_user(ALICE)
        .args(["chmod", "-R", "g+rwX", dir])
        .status()
        .unwrap();
    assert!(fixed.success());
    project.run_as(BOB, &["backup", "--force"], &[]).ok();
}

#[test]
fn a_backup_directory_another_member_made_private_is_named_by_commands_that_only_read() {
    if !users() {
        return;
    }
    let project = Project::new(None, 0o664);
    // alice under umask 077 without sharing: a 2700 directory bob cannot enter.
    let made = project
        .as_user_with_umask(ALICE, "077")
        .arg(&project.bin)
        .args(["--db-path", "results.db", "--shared", "umask", "backup"])
        .status()
        .unwrap();
    assert!(made.success());
    let backups = project.backups();
    assert_eq!(mode(&backups), 0o2700);
    // `outputs/`, made by alice's backup too, is the first that keeps bob out.
    assert_eq!(mode(backups.parent().unwrap()), 0o2700);
    let dir = "outputs";
    let line = format!(
        "directory {dir} (owner {ALICE}, group {GROUP}, mode 2700) is not readable by you \
         [fix: {ALICE} runs `chmod -R g+rwX {dir}`; `shared: group` keeps what dbbackup creates \
         group-writable]: Permission denied (os error 13)"
    );
    for args in [&["list"][..], &["check"], &["verify", "--all"]] {
        let run = project.run_as(BOB, args, &[]);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(&line), "{args:?}: {}", run.stderr);
    }
    // The fix as the line says it (g+w alone would leave 2720: still closed).
    let fixed = project
        .as_user(ALICE)
        .args(["chmod", "-R", "g+rwX", dir])
        .status()
        .unwrap();
    assert!(fixed.success());
    project.run_as(BOB, &["list"], &[]).ok();
    project.run_as(BOB, &["backup", "--force"], &[]).ok();
}

#[test]
fn a_private_umask_still_leaves_the_group_its_read_and_write() {
    if !users() {
        return;
    }
    let project = Project::new(None, 0o664);
    let made = project
        .as_user_with_umask(ALICE, "077")
        .arg(&project.bin)
        .args(["--db-path", "results.db", "backup"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let backups = project.backups();
    assert_eq!(mode(&project.dir.join("outputs")), 0o2770);
    assert_eq!(mode(&backups), 0o2770);
    assert_eq!(mode(&backups.join(".dbbackup.lock")), 0o660);
    let files = everything_under(&backups);
    for path in &files {
        let expected = if path.is_dir() { 0o2770 } else { 0o660 };
        assert_eq!(mode(path), expected, "{}", path.display());
    }
    // bob works in it.
    project.change_database();
    project.run_as(BOB, &["backup"], &[]).ok();
    project
        .run_as(BOB, &["prune", "--max-backups", "1"], &[])
        .ok();
    assert_eq!(backup_files_in(&backups).len(), 1);
}

/// A backup directory of one's own made read-only: the fix is the owner's own
/// `u+rwX` (the group's bits do not help the owner).
#[test]
fn a_read_only_backup_directory_of_ones_own_is_fixed_with_u_rwx() {
    if !users() {
        return;
    }
    let project = Project::new(None, 0o664);
    project.run_as(ALICE, &["backup"], &[]).ok();
    let backups = project.backups();
    chmod(&backups, 0o2555);
    project.change_database();
    let dir = "outputs/db_backups";
    let run = project.run_as(ALICE, &["backup", "--force"], &[]);
    run.failed_with(1, &format!("[fix: run `chmod -R u+rwX {dir}`]"));
    assert!(!run.stderr.contains("g+rwX"), "{}", run.stderr);
    // The fix as the line says it: then her backups work.
    let fixed = project
        .as_user(ALICE)
        .args(["chmod", "-R", "u+rwX", dir])
        .status()
        .unwrap();
    assert!(fixed.success());
    project.run_as(ALICE, &["backup", "--force"], &[]).ok();
    // Another member still gets the group fix, naming the owner.
    chmod(&backups, 0o2755);
    project.change_database();
    project
        .run_as(BOB, &["backup", "--force"], &[])
        .failed_with(1, &format!("[fix: {ALICE} runs `chmod -R g+rwX {dir}`"));
}
