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

/// The `#SCRON` options and the command of a scrontab file, checked as scrontab
/// needs them: absolute paths (jobs start in the home directory, and `#SCRON`
/// lines are not expanded), an output directory that exists, a cron schedule.
pub(crate) fn parse_scrontab(text: &str) -> (Vec<String>, String) {
    let mut options = Vec::new();
    let mut command = None;
    for line in text.lines() {
        if let Some(option) = line.strip_prefix("#SCRON ") {
            options.push(option.trim().to_string());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            assert!(command.is_none(), "one entry: {text}");
            command = Some(check_cron_line(line));
        }
    }
    (options, command.expect("a cron line"))
}

/// Five schedule fields, then a command; returns the command.
pub(crate) fn check_cron_line(line: &str) -> String {
    let fields: Vec<&str> = line.splitn(6, ' ').collect();
    assert_eq!(fields.len(), 6, "{line}");
    for field in &fields[..5] {
        assert!(
            field
                .chars()
                .all(|c| c.is_ascii_digit() || "*/,-".contains(c)),
            "schedule field {field:?}: {line}"
        );
    }
    fields[5].to_string()
}

#[test]
fn scrontab_and_crontab_are_written_with_absolute_paths_and_checked() {
    // The shipped files say what to fill in.
    let slurm = Path::new(env!("CARGO_MANIFEST_DIR")).join("slurm");
    for name in ["periodic.scrontab", "periodic.crontab"] {
        let shipped = std::fs::read_to_string(slurm.join(name)).unwrap();
        assert!(shipped.contains("FILL IN"), "{name}");
        assert!(shipped.contains("/ABSOLUTE/PATH/TO/PROJECT"), "{name}");
    }
    let env = Env::new();
    std::fs::write(env.path("dbbackup.yaml"), "max_backups: 5\n").unwrap();
    let out = env.path("my-slurm");
    env.run(&["templates", "--out", out.to_str().unwrap()]).ok();
    let project = env.root.path().display().to_string();
    for name in ["periodic.scrontab", "periodic.crontab"] {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(!text.contains("FILL IN"), "{name}");
        let live: String = text
            .lines()
            .filter(|l| !l.starts_with("# ") && *l != "#")
            .collect();
        for placeholder in ["/ABSOLUTE/PATH", "/path/to", "$HOME", "~"] {
            assert!(
                !live.contains(placeholder),
                "{name} keeps {placeholder}:\n{text}"
            );
        }
        assert!(
            text.contains(&format!(
                "cd \"{project}\" && {BIN} --config {project}/dbbackup.yaml periodic"
            )),
            "{text}"
        );
    }
    let (options, _) =
        parse_scrontab(&std::fs::read_to_string(out.join("periodic.scrontab")).unwrap());
    let value = |key: &str| {
        options
            .iter()
            .find_map(|o| o.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {options:?}"))
            .to_string()
    };
    assert_eq!(value("--chdir="), project);
    let output = std::path::PathBuf::from(value("--output="));
    assert!(output.is_absolute(), "{output:?}");
    assert!(
        output.parent().unwrap().is_dir(),
        "the output directory exists"
    );
    let cron = std::fs::read_to_string(out.join("periodic.crontab")).unwrap();
    let lines: Vec<&str> = cron.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 1);
    check_cron_line(lines[0]);
    // sbatch templates: absolute --chdir and --output too.
    for name in [
        "job_single.sbatch",
        "job_array.sbatch",
        "final_backup.sbatch",
    ] {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(
            text.contains(&format!("#SBATCH --chdir={project}\n")),
            "{name}"
        );
        assert!(
            text.contains(&format!("#SBATCH --output={project}/slrm_logs/")),
            "{name}"
        );
    }
}
