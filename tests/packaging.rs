//! What the crate (and so the sdist: maturin packages `cargo package --list`) holds.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A checkout of the project's tracked files plus what people keep in one (a venv,
/// notes, a scratch database): `cargo package --list` names only the project's files.
#[test]
fn the_crate_holds_the_projects_files_not_untracked_ones() {
    if !have_or_skip("git") {
        return;
    }
    let env = Env::new();
    let tree = env.path("checkout");
    let listed = Command::new("git")
        .current_dir(ROOT)
        .args(["ls-files", "-z"])
        .output()
        .unwrap();
    let tracked: Vec<String> = String::from_utf8(listed.stdout)
        .unwrap()
        .split('\0')
        .filter(|name| !name.is_empty() && Path::new(ROOT).join(name).is_file())
        .map(str::to_owned)
        .collect();
    for name in &tracked {
        std::fs::create_dir_all(tree.join(name).parent().unwrap()).unwrap();
        std::fs::copy(Path::new(ROOT).join(name), tree.join(name)).unwrap();
    }
    git(&tree, &["init", "-q"]);
    git(&tree, &["add", "-A"]);
    git(&tree, &["commit", "-q", "-m", "tracked"]);
    for scratch in [
        "venv/bin/python3",
        "venv/pyvenv.cfg",
        "notes.txt",
        "t/typed.py",
        "scratch.db",
    ] {
        std::fs::create_dir_all(tree.join(scratch).parent().unwrap()).unwrap();
        std::fs::write(tree.join(scratch), "secret\n").unwrap();
    }

    let out = Command::new("cargo")
        .current_dir(&tree)
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .env("CARGO_TARGET_DIR", env.path("target"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crate_files: Vec<&str> = stdout.lines().collect();
    let strays: Vec<&&str> = crate_files
        .iter()
        .filter(|f| {
            ["venv/", "notes.txt", "t/", "scratch.db"]
                .iter()
                .any(|s| f.starts_with(s))
        })
        .collect();
    assert!(
        strays.is_empty(),
        "untracked files in the crate: {strays:?}"
    );
    // Everything the sdist and the crate build need is still there.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
        "pyproject.toml",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "src/main.rs",
        "python/dbbackup/__init__.py",
        "python/dbbackup/py.typed",
        "packaging/modules/dbbackup.tcl",
    ] {
        assert!(
            crate_files.contains(&needed),
            "{needed} missing from the crate: {stdout}"
        );
    }
    let shipped = tracked
        .iter()
        .filter(|f| !f.starts_with(".ci/") && *f != ".gitignore");
    for name in shipped {
        assert!(
            crate_files.contains(&name.as_str()),
            "{name} missing from the crate"
        );
    }
}
