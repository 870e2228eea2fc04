//! The shipped `slurm/` scripts are valid, and `dbbackup templates` writes them
//! out with the user's paths filled in.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn scripts(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let name = entry.to_string_lossy();
        if name.ends_with(".sh") || name.ends_with(".sbatch") {
            found.push(entry);
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn lint(path: &Path) {
    let syntax = Command::new("bash").arg("-n").arg(path).status().unwrap();
    assert!(syntax.success(), "bash -n {}", path.display());
    if have("shellcheck") {
        let out = Command::new("shellcheck")
            .arg("-x")
            .arg("-P")
            .arg("SCRIPTDIR")
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "shellcheck {}:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    } else if std::env::var_os("CI").is_some() {
        panic!("shellcheck is required in CI");
    }
}

#[test]
fn shipped_scripts_pass_bash_n_and_shellcheck() {
    let slurm = Path::new(env!("CARGO_MANIFEST_DIR")).join("slurm");
    let found = scripts(&slurm);
    assert!(found.len() >= 6, "{found:?}");
    for script in found {
        lint(&script);
    }
}

#[test]
fn templates_are_written_with_paths_filled_in() {
    let env = Env::new();
    std::fs::write(env.path("dbbackup.yaml"), "max_backups: 5\n").unwrap();
    let out = env.path("my-slurm");
    env.run(&["templates", "--out", out.to_str().unwrap()]).ok();
    let single = std::fs::read_to_string(out.join("job_single.sbatch")).unwrap();
    assert!(
        single.contains(&format!(": \"${{DBBACKUP:={BIN}}}\"")),
        "{single}"
    );
    assert!(single.contains(&format!("{}/hooks/dbbackup_hooks.sh", out.display())));
    assert!(single.contains(&format!(
        "export DBBACKUP_CONFIG={}",
        env.path("dbbackup.yaml").display()
    )));
    let cron = std::fs::read_to_string(out.join("periodic.crontab")).unwrap();
    assert!(cron.contains(BIN));
    for script in scripts(&out) {
        lint(&script);
    }
    // Existing files are not replaced without --overwrite.
    env.run(&["templates", "--out", out.to_str().unwrap()])
        .failed_with(1, "--overwrite");
    env.run(&["templates", "--out", out.to_str().unwrap(), "--overwrite"])
        .ok();
}
