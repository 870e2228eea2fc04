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
    crate::common::copy_binary(&tree.join("bin/dbbackup"));
    std::fs::write(tree.join("share/doc/dbbackup/README.md"), "readme\n").unwrap();
    tree
}

/// The script under `umask`, in `dir`, from a shell of no module system.
fn install(dir: &Path, umask: &str, args: &[&str]) -> Run {
    install_in(dir, umask, args, None)
}

/// The script from a shell whose `$LMOD_CMD` is `lmod_cmd` (`None`: not Lmod).
fn install_in(dir: &Path, umask: &str, args: &[&str], lmod_cmd: Option<&str>) -> Run {
    let mut command = Command::new("bash");
    command.env_remove("LMOD_CMD").env_remove("MODULES_CMD");
    if let Some(cmd) = lmod_cmd {
        command.env("LMOD_CMD", cmd);
    }
    command
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
        &["--lua", tree.to_str().unwrap(), prefix.to_str().unwrap()],
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

/// A reinstall while a job runs the installed binary (`dbbackup run -- sleep`):
/// the file is replaced by renaming, so no "Text file busy"; the running process
/// keeps the old file and finishes, the prefix holds the new one whole.
#[test]
fn a_reinstall_while_the_installed_binary_runs_replaces_it() {
    let env = Env::new();
    let tree = release_tree(&env);
    let prefix = env.path("opt/dbbackup");
    let args = [tree.to_str().unwrap(), prefix.to_str().unwrap()];
    install(env.root.path(), "022", &args).ok();
    let db = env.path("r.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t (a); INSERT INTO t VALUES (1);")
        .unwrap();
    let mut job = Command::new(prefix.join("bin/dbbackup"))
        .current_dir(env.root.path())
        .args([
            "--db-path",
            "r.db",
            "--backup-dir",
            "b",
            "run",
            "--",
            "sleep",
            "3",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::write(tree.join("share/doc/dbbackup/README.md"), "readme 2\n").unwrap();

    let again = install(env.root.path(), "022", &args);
    again.ok();
    assert!(
        again.stdout.contains("installed dbbackup"),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read(prefix.join("bin/dbbackup")).unwrap(),
        std::fs::read(BIN).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(prefix.join("share/doc/dbbackup/README.md")).unwrap(),
        "readme 2\n"
    );
    assert_eq!(job.wait().unwrap().code(), Some(0));
    let leftovers: Vec<_> = std::fs::read_dir(prefix.join("bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "dbbackup")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A file that cannot be put in place: one `install-prefix.sh:` line naming it.
#[test]
fn a_file_that_cannot_be_installed_is_one_line_naming_it() {
    let env = Env::new();
    let tree = release_tree(&env);
    let prefix = env.path("opt/dbbackup");
    // Something else's directory where the binary goes.
    std::fs::create_dir_all(prefix.join("bin/dbbackup/x")).unwrap();
    let refused = install(
        env.root.path(),
        "022",
        &[tree.to_str().unwrap(), prefix.to_str().unwrap()],
    );
    let expected = format!(
        "install-prefix.sh: cannot install {}: mv: cannot overwrite directory",
        prefix.join("bin/dbbackup").display()
    );
    refused.failed_with(1, &expected);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert_eq!(std::fs::read_dir(prefix.join("bin")).unwrap().count(), 1);
}

/// Without --lua or --tcl: the Tcl file (both module systems read it), unless the
/// shell's `module` is Lmod. The "use it" line works as printed, also with a space
/// in MODULEFILES; comments keep the template's placeholders.
#[test]
fn the_modulefile_format_follows_the_module_system_and_use_it_is_quoted() {
    let env = Env::new();
    let tree = release_tree(&env);
    let tree = tree.to_str().unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let mods = env.path("my mods");
    let mods_arg = mods.to_str().unwrap();

    let plain = install(env.root.path(), "022", &[tree, "p1", mods_arg]);
    plain.ok();
    let tcl = mods.join("dbbackup").join(version);
    assert!(tcl.is_file(), "{}", plain.stdout);
    let escaped = mods_arg.replace(' ', "\\ ");
    assert!(
        plain.stdout.contains(&format!(
            "use it:     module use {escaped}; module load dbbackup"
        )),
        "{}",
        plain.stdout
    );
    let text = std::fs::read_to_string(&tcl).unwrap();
    assert!(
        text.contains("## MODULEFILES/dbbackup/VERSION with @PREFIX@ and @VERSION@ filled in.")
    );
    let prefix = env.path("p1");
    assert!(
        text.contains(&format!("set prefix  \"{}\"", prefix.display())),
        "{text}"
    );

    let lmod = install_in(
        env.root.path(),
        "022",
        &[tree, "p2", "m2"],
        Some("/usr/bin/lmod"),
    );
    lmod.ok();
    assert!(
        env.path(&format!("m2/dbbackup/{version}.lua")).is_file(),
        "{}",
        lmod.stdout
    );
    assert!(
        lmod.stdout
            .contains("(Lmod; for Environment Modules rerun with --tcl)")
    );
    // An explicit choice wins over the shell's module system.
    install_in(
        env.root.path(),
        "022",
        &["--tcl", tree, "p3", "m3"],
        Some("/usr/bin/lmod"),
    )
    .ok();
    assert!(env.path(&format!("m3/dbbackup/{version}")).is_file());
}

/// The Tcl modulefile under Environment Modules in a bash without bash-completion:
/// `module load` sources the completion, as the Lua file does under Lmod.
#[test]
fn the_tcl_modulefile_gives_bash_completion_on_load() {
    let init = "/usr/share/modules/init/bash";
    if !Path::new(init).is_file() {
        eprintln!("SKIPPED: Environment Modules ({init}) is not installed");
        return;
    }
    let env = Env::new();
    let tree = release_tree(&env);
    let completions = tree.join("share/bash-completion/completions");
    std::fs::create_dir_all(&completions).unwrap();
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    std::fs::write(completions.join("dbbackup"), out.stdout).unwrap();
    let mods = env.path("mods");
    install(
        env.root.path(),
        "022",
        &[
            tree.to_str().unwrap(),
            env.path("p").to_str().unwrap(),
            mods.to_str().unwrap(),
        ],
    )
    .ok();
    let script = format!(
        "source {init}; module use {}; module load dbbackup; complete -p dbbackup",
        mods.display()
    );
    let run: Run = Command::new("env")
        .args([
            "-i",
            "PATH=/usr/bin:/bin",
            "bash",
            "--noprofile",
            "--norc",
            "-c",
            &script,
        ])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert!(
        run.stdout.contains("-F _dbbackup dbbackup"),
        "{}",
        run.stdout
    );
}
