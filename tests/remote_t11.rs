//! Trial T11's findings on the remote: a point of another database under a
//! name this database's backup directory also holds is never handed over as
//! this database's; prefixes whose keys cannot fit S3's limit are refused
//! up front; a `*` in the prefix is stored as written.

use std::fs;

use crate::common::s3::{self, Remote};
use crate::common::{backup_files_in, content_digest, make_ledger_db};

/// Another database's point on the same prefix under the name of this
/// database's local backup (two projects backing up in the same second).
/// Returns (the name, the other database's path, its content digest).
fn other_databases_point_under_our_name(r: &Remote) -> (String, String, String) {
    let env = &r.env;
    let other = env.path("other.db");
    make_ledger_db(&other, 50, false);
    let other_arg = other.to_str().unwrap();
    let b = env.path("other-backups");
    let b_arg = b.to_str().unwrap();
    let as_other = ["--db-path", other_arg, "--backup-dir", b_arg];
    // The other's first: a name is never earlier than its backup was made
    // (`store::copies`), so ours, taken for it, is the later.
    r.run(&[&as_other[..], &["backup"]].concat()).ok();
    env.run(&["backup"]).ok();
    let name = env.backup_files()[0].clone();
    let b_file = backup_files_in(&b)[0].clone();
    crate::common::rename_backup(&b.join(&b_file), &b.join(&name));
    r.run(&[&as_other[..], &["sync"]].concat()).ok();
    let source = fs::canonicalize(&other).unwrap();
    (
        name,
        source.to_str().unwrap().to_string(),
        content_digest(&other),
    )
}

#[test]
fn export_and_restore_by_name_refuse_another_databases_point_and_verify_names_it() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "same");
    let (name, other, other_digest) = other_databases_point_under_our_name(&r);
    let env = &r.env;
    let out = env.path("o.db.gz");
    let export = r.run(&[
        "export",
        &name,
        "--from-remote",
        "--out",
        out.to_str().unwrap(),
    ]);
    let says = format!("backup {name} on {} is a backup of {other}, not of", r.url);
    export.failed_with(1, &says);
    export.failed_with(1, &format!("the local {name} in"));
    assert!(!out.exists(), "nothing written");
    let target = env.path("copy.db");
    let restore = r.restore_from_remote(&name, &target);
    restore.failed_with(1, &says);
    restore.failed_with(1, "refusing to restore it into");
    assert!(!target.exists(), "nothing written");
    // The other database's point, asked for as that database's: handed over.
    r.run(&[
        "--db-path",
        &other,
        "export",
        &name,
        "--from-remote",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    r.run(&[
        "restore",
        &name,
        "--from-remote",
        "--force",
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(content_digest(&target), other_digest);
    // Without a name: none of the prefix's points is this database's, and
    // the other's `ok` says nothing of its off-site copy (T33 H13).
    r.run(&["verify", "--from-remote"])
        .failed_with(1, "no restore point of ");
    // By name: read, and whose it is said.
    let verify = r.run(&["verify", "--from-remote", &name]);
    verify.ok();
    let line = verify
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name}: ok")))
        .unwrap_or_else(|| panic!("{}", verify.stdout))
        .to_string();
    assert!(
        line.ends_with(&format!(
            "; a backup of {other}, not of {})",
            fs::canonicalize(&env.db).unwrap().display()
        )),
        "{line}"
    );
    let json = r.run(&["verify", "--from-remote", &name, "--format", "json"]);
    json.ok();
    let verdicts = json.json();
    let verdict = verdicts
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name.as_str())
        .unwrap();
    assert_eq!(verdict["other_database"], other.as_str(), "{verdict}");
}

/// A prefix whose longest key (`PREFIX/NAME.meta.json`) would pass S3's
/// 1024 bytes is refused before any request, in one line naming the limit;
/// the longest that fits is taken.
#[test]
fn a_prefix_too_long_for_s3_keys_is_refused_up_front() {
    let Some(server) = s3::shared() else { return };
    let too_long = vec!["a".repeat(99); 10].join("/");
    let r = Remote::new(server, &too_long);
    // Any command: the setting is checked as it is read.
    r.run(&["backup"]).failed_with(2, "over S3's limit of 1024");
    let sync = r.run(&["sync"]);
    sync.failed_with(2, "keys under it would be up to 1051 bytes, over S3's limit of 1024; use a prefix of at most 972 bytes");
    assert_eq!(sync.stderr.lines().count(), 1, "{}", sync.stderr);
    assert!(!sync.stderr.contains(&too_long), "{}", sync.stderr);
    let fits = Remote::new(server, &too_long[..972]);
    fits.run(&["backup"]).ok();
    fits.run(&["sync"]).ok();
    assert_eq!(fits.remote_count(), 1);
}

/// `! * ' ( )` are kept in the keys as written: another S3 client given the
/// same URL finds the points there (a `*` was stored as `%2A`).
#[test]
fn a_star_in_the_prefix_is_stored_as_written() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "we!rd*pre'fix(1)/x.y_z-");
    r.run(&["backup"]).ok();
    r.run(&["sync"]).ok();
    let name = r.env.backup_files()[0].clone();
    assert_eq!(
        r.object(&name),
        fs::read(r.env.backups.join(&name)).unwrap()
    );
    assert_eq!(r.record(&name)["name"], name.as_str());
    assert_eq!(r.remote_names(), vec![name]);
}

/// Five backups, two kept locally, all five on the remote: the names, oldest
/// first; the oldest two only the remote holds.
fn five_points_two_local(r: &Remote, keep: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..5 {
        r.add_row();
        r.run(&[keep, &["backup", "--force"]].concat()).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
        r.run(&[keep, &["sync"]].concat()).ok();
    }
    assert!(!r.env.backup_files().contains(&names[0]));
    names
}

/// A point whose record only was deleted at the store is said to be that
/// (its data object is still there), with the remedy; `--forget-missing`
/// says so of what it forgets, and that diffs on it stay damaged.
#[test]
fn a_point_whose_record_only_is_gone_is_said_so() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "recordonly");
    let keep = ["--max-backups", "2", "--remote-max-backups", "5"];
    let names = five_points_two_local(&r, &keep);
    r.delete(&format!("{}.meta.json", names[0]));
    let sync = r.run(&[&keep[..], &["sync"]].concat());
    sync.failed_with(
        1,
        &format!(
            "records missing on {} (their data objects are still there), with no copy in the backup directory to upload again: {}; ",
            r.url, names[0]
        ),
    );
    sync.failed_with(1, "put each record (NAME.meta.json) back");
    assert!(
        !sync.stderr.contains("record and data object"),
        "{}",
        sync.stderr
    );
    let forget = r.run(&[&keep[..], &["sync", "--forget-missing"]].concat());
    forget.ok();
    assert!(
        forget.stdout.contains(&format!(
            "forgot {}: its record is gone from {}, with no copy here to upload again (--forget-missing); diffs on it stay damaged",
            names[0], r.url
        )),
        "{}",
        forget.stdout
    );
}

/// The oldest point, only on the remote, with its data object deleted: no
/// "older points are kept in its place" (there are none), the ways out
/// named, and `--forget-missing` says it does not cover it.
#[test]
fn the_oldest_damaged_point_names_the_way_out_and_no_older_points() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "oldestlost");
    let keep = ["--max-backups", "2", "--remote-max-backups", "5"];
    let names = five_points_two_local(&r, &keep);
    let oldest = r.object(&names[0]);
    r.delete(&names[0]);
    let sync = r.run(&[&keep[..], &["sync"]].concat());
    sync.failed_with(1, &format!("{} (its data object is missing", names[0]));
    sync.failed_with(1, "; no older point is there to take its place; put what is missing back at the store, or delete the damaged points' records (NAME.meta.json) there to drop them; else this fails until remote_max_backups newer points are there");
    assert!(
        !sync.stderr.contains("older points are kept"),
        "{}",
        sync.stderr
    );
    let forget = r.run(&[&keep[..], &["sync", "--forget-missing"]].concat());
    forget.failed_with(
        1,
        "(--forget-missing covers only points gone from the store entirely, record and data object)",
    );
    // A newer point damaged: the older one does take its place.
    r.put(&names[0], &oldest);
    r.delete(&names[1]);
    r.run(&[&keep[..], &["sync"]].concat())
        .failed_with(1, "older points are kept in its place");
}

/// Local-only errors point at the remote that holds the point: `export
/// latest` with no intact local point, `restore NAME` of a point pruned
/// locally that a sync proved on the remote (T11 #9 a, b).
#[test]
fn local_errors_name_the_remote_that_holds_the_point() {
    let Some(server) = s3::shared() else { return };
    let r = Remote::new(server, "hints");
    let keep = ["--max-backups", "2", "--remote-max-backups", "5"];
    let mut names = Vec::new();
    for _ in 0..3 {
        r.add_row();
        r.run(&[&keep[..], &["backup", "--force"]].concat()).ok();
        names.push(r.env.backup_files().last().unwrap().clone());
        r.run(&[&keep[..], &["sync"]].concat()).ok();
    }
    let target = r.env.path("old.db");
    let target = target.to_str().unwrap();
    r.run(&["restore", &names[0], "--target", target]).failed_with(
        1,
        &format!(
            "; {} is on {} (proved there by an earlier sync or read): `dbbackup restore {} --from-remote --target {target}`",
            names[0], r.url, names[0]
        ),
    );
    for name in r.env.backup_files() {
        fs::remove_file(r.env.backups.join(name)).unwrap();
    }
    let out = r.env.path("ex.db.gz");
    let out = out.to_str().unwrap();
    r.run(&["export", "latest", "--out", out]).failed_with(
        1,
        &format!(
            "; {} may hold intact ones: `dbbackup export latest --from-remote --out {out}`",
            r.url
        ),
    );
}
