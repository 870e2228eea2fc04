//! The remote's points stay each database's and in upload order: a name taken
//! by another database is never replaced, a point uploaded later is newer, and
//! `check` judges the remote it is given (docs/remote.md).

use std::fs;

use crate::common::s3;
use crate::common::{Env, content_digest};

#[test]
fn two_databases_on_one_prefix_never_replace_each_others_point() {
    let Some(server) = s3::shared() else { return };
    let bucket = s3::unique_bucket(server);
    let url = format!("s3://{bucket}/same");
    let (a, b) = (Env::new(), Env::empty());
    crate::common::make_ledger_db(&b.db, 300, false);
    let run = |env: &Env, args: &[&str]| s3::run(env, &server.endpoint, &url, args);
    run(&a, &["backup"]).ok();
    run(&b, &["backup"]).ok();
    // Both made in the same second: the same name.
    let name = a.backup_files()[0].clone();
    let b_file = b.backups.join(&b.backup_files()[0]);
    if b_file.file_name().unwrap() != name.as_str() {
        fs::rename(&b_file, b.backups.join(&name)).unwrap();
    }
    run(&a, &["sync"]).ok();
    let sync = run(&b, &["sync"]);
    sync.failed_with(1, &name);
    assert!(
        sync.stderr
            .contains("give each database its own remote prefix")
            && sync
                .stderr
                .contains(&a.db.canonicalize().unwrap().display().to_string()),
        "{}",
        sync.stderr
    );
    run(&b, &["check"]).reported(1, "remote");
    run(&a, &["check"]).ok();
    // a's point is whole on the remote: restored after a scratch purge.
    let want = content_digest(&a.db);
    fs::remove_dir_all(&a.backups).unwrap();
    fs::remove_file(&a.db).unwrap();
    run(&a, &["restore", "latest"]).ok();
    assert_eq!(content_digest(&a.db), want);
}
