//! packaging/install-prefix.sh run on a release tree (the built binary in it):
//! its arguments in any order, its usage, and modes users can read under a
//! strict umask.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/install-prefix.sh");

/// The tarball's layout, as a directory: bin/dbbackup and share/.
fn release_tree(env: &Env) -> std::path::PathBuf {
    let tree = env.path("dbbackup-release");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("share/doc/dbbackup")).unwrap();
    std::fs::copy(BIN, tree.join("bin/dbbackup")).unwrap();
    std::fs::write(tree.join("share/doc/dbbackup/README.md"), "readme\n").unwrap();
    tree
}

/// The script under `umask`, in `dir`.
fn install(dir: &Path, umask: &str, args: &[&str]) -> Run {
    Command::new("bash")
        .current_dir(dir)
        .arg("-c")
        .arg(format!("umask {umask}; exec bash \"$0\" \"$@\""))
        .arg(SCRIPT)
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn options_anywhere_unknown_ones_refused_help_on_stdout() {
    let env = Env::new();
    let tree = release_tree(&env);
    let tree = tree.to_str().unwrap();
    let work = env.path("work");
    std::fs::create_dir(&work).unwrap();

    // --tcl after the positionals is the Tcl modulefile, not MODULEFILES.
    install(&work, "022", &[tree, "p2", "--tcl"]).ok();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        work.join("p2/share/modulefiles/dbbackup")
            .join(version)
            .is_file()
    );
    assert!(!work.join("--tcl").exists());

    let refused = install(&work, "022", &[tree, "p3", "--tlc"]);
    refused.failed_with(2, "install-prefix.sh: unknown option --tlc");
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(!work.join("p3").exists() && !work.join("--tlc").exists());

    let help = install(&work, "022", &["--help"]);
    help.ok();
    assert!(
        help.stdout.starts_with("usage: install-prefix.sh"),
        "{}",
        help.stdout
    );
}

#[test]
fn what_is_installed_is_readable_by_users_under_a_strict_umask() {
    let env = Env::new();
    let tree = release_tree(&env);
    let prefix = env.path("opt/dbbackup");
    install(
        env.root.path(),
        "077",
        &[tree.to_str().unwrap(), prefix.to_str().unwrap()],
    )
    .ok();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(mode(&prefix.join("bin/dbbackup")), 0o755);
    assert_eq!(mode(&prefix.join("share/doc/dbbackup/README.md")), 0o644);
    assert_eq!(mode(&prefix), 0o755);
    let modulefile = prefix.join(format!("share/modulefiles/dbbackup/{version}.lua"));
    assert_eq!(mode(&modulefile), 0o644);
    for dir in [
        "bin",
        "share",
        "share/doc/dbbackup",
        "share/modulefiles/dbbackup",
    ] {
        assert_eq!(mode(&prefix.join(dir)), 0o755, "{dir}");
    }
}

#[test]
fn the_script_passes_shellcheck() {
    if have_or_skip("shellcheck") {
        let out = Command::new("shellcheck").arg(SCRIPT).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// A file that is not a tarball: one line naming it and why (tar's first word
/// on it), exit 1, nothing installed.
#[test]
fn a_file_that_is_not_a_tarball_is_one_line() {
    let env = Env::new();
    let work = env.path("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("README.md"), "# not a tarball\n").unwrap();
    let refused = install(&work, "022", &["README.md", "prefix"]);
    refused.failed_with(
        1,
        "install-prefix.sh: cannot unpack README.md: gzip: stdin: not in gzip format",
    );
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(!work.join("prefix").exists());
    // A name mistyped is said to be missing, not "neither a tarball nor a directory".
    let missing = install(&work, "022", &["dbbackup.tar.gz", "prefix"]);
    missing.failed_with(
        1,
        "install-prefix.sh: dbbackup.tar.gz does not exist: give the release tarball",
    );
    assert_eq!(missing.stderr.lines().count(), 1, "{}", missing.stderr);
    assert!(!work.join("prefix").exists());
}
