//! The shipped `slurm/` scripts are valid, and `dbbackup templates` writes them
//! out with the user's paths filled in.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// The shell scripts (`.sh`, `.sbatch`) under `dir`, at any depth.
fn scripts(dir: &Path) -> Vec<std::path::PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with(".sh") || name.ends_with(".sbatch")
        })
        .collect()
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
    let slurm = slurm_dir();
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
        single.contains(&format!("DBBACKUP=${{DBBACKUP:-{BIN}}}\n")),
        "{single}"
    );
    assert!(
        single.contains("exec \"$DBBACKUP\" run -- \"$@\"\n"),
        "{single}"
    );
    assert!(!single.contains("dbbackup_hooks.sh"), "{single}");
    assert!(single.contains(&format!(
        "export DBBACKUP_CONFIG={}",
        env.path("dbbackup.yaml").display()
    )));
    let array = std::fs::read_to_string(out.join("job_array.sbatch")).unwrap();
    assert!(
        array.contains(&format!(
            "${{DBBACKUP_FINAL_SCRIPT:-{}/final_backup.sbatch}}",
            out.display()
        )),
        "{array}"
    );
    let cron = std::fs::read_to_string(out.join("periodic.crontab")).unwrap();
    assert!(cron.contains(BIN));
    for script in scripts(&out) {
        lint(&script);
    }
    // Existing files are not replaced without --overwrite.
    env.run(&["templates", "--out", out.to_str().unwrap()])
        .failed_with(2, "--overwrite");
    env.run(&["templates", "--out", out.to_str().unwrap(), "--overwrite"])
        .ok();
}

/// The issue's trial: a project path with a space broke sbatch ("Invalid
/// directive ... ace/proj"). The written `#SBATCH --output` is quoted (sbatch
/// takes double quotes in directives), the shell lines are quoted, and a path
/// no directive can hold ('"', '%') is refused with one clear line, writing
/// nothing.
#[test]
fn a_project_path_with_a_space_is_quoted_and_one_no_directive_holds_is_refused() {
    let env = Env::new();
    let project = env.path("sp ace/proj");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("dbbackup.yaml"), "max_backups: 5\n").unwrap();
    let run: Run = env
        .command()
        .current_dir(&project)
        .args(["templates", "--out", "slurm"])
        .output()
        .unwrap()
        .into();
    run.ok();
    let single = std::fs::read_to_string(project.join("slurm/job_single.sbatch")).unwrap();
    assert!(
        single.contains(&format!(
            "#SBATCH --output=\"{}/slrm_logs/%x_%j.out\"\n",
            project.display()
        )),
        "{single}"
    );
    assert!(
        single.contains(&format!(
            "export DBBACKUP_CONFIG='{}/dbbackup.yaml'",
            project.display()
        )),
        "{single}"
    );
    for script in scripts(&project.join("slurm")) {
        lint(&script);
    }
    // The filled-in script runs: `bash -c` reads the same assignments.
    let array = std::fs::read_to_string(project.join("slurm/job_array.sbatch")).unwrap();
    let line = array
        .lines()
        .find(|l| l.starts_with("final_script="))
        .unwrap();
    let said = Command::new("bash")
        .arg("-c")
        .arg(format!("{line}; printf %s \"$final_script\""))
        .env_remove("DBBACKUP_FINAL_SCRIPT")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&said.stdout),
        format!("{}/slurm/final_backup.sbatch", project.display())
    );
    for bad in ["quo\"te", "100%"] {
        let project = env.path(bad);
        std::fs::create_dir_all(&project).unwrap();
        let run: Run = env
            .command()
            .current_dir(&project)
            .args(["templates", "--out", "slurm"])
            .output()
            .unwrap()
            .into();
        run.failed_with(1, "an #SBATCH line cannot hold");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(!project.join("slurm").exists(), "nothing written");
    }
}

/// The USR1 lead time comes from this database's last measured full backup
/// (a post-job line's `seconds=` for a backup that records no duration of its
/// own), with a floor of 300 s.
#[test]
fn the_usr1_lead_time_follows_the_last_full_backup() {
    let env = Env::new();
    let log = env.summary_log();
    let write = |env: &Env| {
        let out = env.path("slurm");
        let _ = std::fs::remove_dir_all(&out);
        env.command()
            .env("DBBACKUP_SUMMARY_LOG", &log)
            .args(["templates", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        std::fs::read_to_string(out.join("job_single.sbatch")).unwrap()
    };
    let text = write(&env);
    assert!(text.contains("#SBATCH --signal=B:USR1@300\n"), "{text}");
    assert!(text.contains("no full backup of this database"), "{text}");
    // A post-job backup of this database that took 130 s: 3 x 130 + 60 -> 480.
    env.command()
        .env("DBBACKUP_SUMMARY_LOG", &log)
        .env("SLURM_JOB_ID", "42")
        .args(["post-job", "--status", "0"])
        .output()
        .unwrap();
    let name = env.backup_files().pop().unwrap();
    // As made before backups recorded their own duration.
    rewrite_meta(&env.backups.join(&name), |m| m.duration_seconds = None);
    let mut lines = std::fs::read_to_string(&log).unwrap();
    lines.push_str(&format!(
        "time=2026-01-01T00:00:00.000Z job=43 host=h event=post-job status=ok backup={name} seconds=130.00\n"
    ));
    // Another database's backup, and a diff, do not count.
    lines.push_str(
        "time=2026-01-01T00:00:01.000Z job=44 host=h event=post-job status=ok backup=backup_20200101_000000.db.gz seconds=999.00\n",
    );
    std::fs::write(&log, lines).unwrap();
    let text = write(&env);
    assert!(text.contains("#SBATCH --signal=B:USR1@480\n"), "{text}");
    assert!(text.contains("(130.0 s)"), "{text}");
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
    let slurm = slurm_dir();
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
                "cd {project} && {BIN} --config {project}/dbbackup.yaml periodic"
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
    // sbatch templates: an absolute --output, appended; no --chdir (a job runs
    // where it was submitted).
    for name in [
        "job_single.sbatch",
        "job_array.sbatch",
        "final_backup.sbatch",
    ] {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(!text.contains("--chdir"), "{name}:\n{text}");
        assert!(
            text.contains(&format!("#SBATCH --output={project}/slrm_logs/")),
            "{name}"
        );
        assert!(text.contains("#SBATCH --open-mode=append\n"), "{name}");
    }
    let scrontab = std::fs::read_to_string(out.join("periodic.scrontab")).unwrap();
    assert!(
        scrontab.contains("#SCRON --open-mode=append\n"),
        "{scrontab}"
    );
}

/// The trial: `--db-path results.db templates` wrote scripts that named no
/// database, and every job failed "pre-job: no database given". A setting flag
/// is refused (exit 2, naming it and `init --slurm`), nothing is written; the
/// way it points at, `init --slurm`, gives a job script that backs up that
/// database when run with nothing but `PATH` in its environment.
#[test]
fn templates_refuse_a_setting_flag_and_init_slurm_carries_it_into_the_jobs() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .args(["--db-path", "results.db", "--max-backups", "3"])
        .args(["templates", "--out", "slurmx"])
        .output()
        .unwrap()
        .into();
    run.failed_with(
        2,
        "--db-path given on the command line is in no config file",
    );
    assert!(run.stderr.contains("init --slurm"), "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    assert!(!env.path("slurmx").exists(), "nothing written");
    // A different --db-path beside a ./dbbackup.yaml is refused too.
    std::fs::write(env.path("dbbackup.yaml"), "db_path: other.db\n").unwrap();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .args(["--db-path", "results.db", "templates", "--out", "slurmx"])
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "--db-path");
    std::fs::remove_file(env.path("dbbackup.yaml")).unwrap();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .args(["--db-path", "results.db", "init", "--slurm"])
        .output()
        .unwrap()
        .into();
    run.ok();
    let job = Command::new("bash")
        .arg(env.path("slurm/job_single.sbatch"))
        .arg("true")
        .current_dir(env.root.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .output()
        .unwrap();
    let job: Run = job.into();
    job.ok();
    let backups = env.path("outputs/db_backups");
    let names = backup_files_in(&backups);
    assert!(!names.is_empty(), "{}", job.stderr);
    let copy = gunzip_to(&backups.join(names.last().unwrap()), &env.path("copy.db"));
    assert_eq!(content_digest(&copy), content_digest(&env.db));
}

/// `DBBACKUP_FINAL` is a yes/no, read as `DBBACKUP_STRICT` is: the array
/// template and the hooks shim pass `--final-job` when it is unset, empty,
/// `1` or `yes`, none for `0`, `false`, `no` or `off` (`false` submitted a
/// final job anyway), and stop before the work on another word (exit 2).
#[test]
fn dbbackup_final_is_a_yes_no_in_the_array_template_and_the_hooks_shim() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    // A stand-in for dbbackup that says what it was given.
    let fake = env.path("fake-dbbackup");
    std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' \"$*\"\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let slurm = slurm_dir();
    let hooks = slurm.join("hooks/dbbackup_hooks.sh");
    let shim = format!("source {}; dbbackup_run_work work", hooks.to_str().unwrap());
    let run = |shell_args: &[&str], value: Option<&str>| -> Run {
        let mut command = Command::new("bash");
        command
            .args(shell_args)
            .env("DBBACKUP", &fake)
            .env("SLURM_SUBMIT_DIR", "/proj")
            .env("SLURM_ARRAY_JOB_ID", "5")
            .env_remove("DBBACKUP_FINAL_SCRIPT")
            .env_remove("DBBACKUP_FINAL");
        if let Some(value) = value {
            command.env("DBBACKUP_FINAL", value);
        }
        command.output().unwrap().into()
    };
    let template = slurm.join("job_array.sbatch");
    let shells: [Vec<&str>; 2] = [vec![template.to_str().unwrap(), "work"], vec!["-c", &shim]];
    let with_final = [
        (
            &shells[0],
            "run --final-job /proj/slurm/final_backup.sbatch -- work\n".to_string(),
        ),
        (
            &shells[1],
            format!(
                "run --final-job {}/../final_backup.sbatch -- work\n",
                slurm.join("hooks").display()
            ),
        ),
    ];
    for (shell, said) in &with_final {
        for value in [None, Some(""), Some("1"), Some("yes"), Some(" On")] {
            let out = run(shell, value);
            out.ok();
            assert_eq!(&out.stdout, said, "{value:?}");
        }
        for value in ["0", "false", "no", "OFF"] {
            let out = run(shell, Some(value));
            out.ok();
            assert_eq!(out.stdout, "run -- work\n", "{value:?}");
        }
        let out = run(shell, Some("nope"));
        out.failed_with(
            2,
            "dbbackup: FATAL: DBBACKUP_FINAL: 'nope' is not a yes/no value (use true/false, 1/0, yes/no or on/off); the job stops before its work.",
        );
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
}

/// `templates` where no dbbackup.yaml and no database say what the jobs
/// would back up (T10 #6).
fn templates_in(dir: &Path, env: &Env) -> Run {
    env.command()
        .current_dir(dir)
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .args(["templates", "--out", "t"])
        .output()
        .unwrap()
        .into()
}

/// T10 #6: with no dbbackup.yaml and no database, the jobs were written
/// silently; one WARN line names what is missing and what to do (still exit
/// 0: the templates are written). From a project's sub-directory it names
/// the project's dbbackup.yaml, not read there, and where the output would go.
#[test]
fn templates_without_a_config_or_database_warn_once_naming_what_to_do() {
    let env = Env::empty();
    let empty = env.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let run = templates_in(&empty, &env);
    run.ok();
    assert!(empty.join("t/job_single.sbatch").exists());
    let warns: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warns.len(), 1, "{}", run.stderr);
    assert!(
        warns[0].ends_with(&format!(
            "no dbbackup.yaml in {} and no database given: the jobs would have no database; run `dbbackup --db-path DATABASE init --slurm` here (it writes dbbackup.yaml and the templates naming it), or set DBBACKUP_CONFIG or DBBACKUP_DB_PATH in the job",
            empty.display()
        )),
        "{}",
        run.stderr
    );

    let project = env.path("proj");
    let sub = project.join("slurm");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(project.join("dbbackup.yaml"), "db_path: results.db\n").unwrap();
    let run = templates_in(&sub, &env);
    run.ok();
    let warns: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warns.len(), 1, "{}", run.stderr);
    assert!(
        warns[0].contains(&format!(
            "their output would go to {}; {} is not read from here (dbbackup reads the current directory's): run `dbbackup templates` in {} for that project",
            sub.join("slrm_logs").display(),
            project.join("dbbackup.yaml").display(),
            project.display()
        )),
        "{}",
        run.stderr
    );
    // In the project itself: nothing to warn about.
    let run = templates_in(&project, &env);
    run.ok();
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
    // A dbbackup.yaml without db_path, and no DBBACKUP_DB_PATH.
    std::fs::write(empty.join("dbbackup.yaml"), "max_backups: 3\n").unwrap();
    std::fs::remove_dir_all(empty.join("t")).unwrap();
    let run = templates_in(&empty, &env);
    run.ok();
    let warns: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warns.len(), 1, "{}", run.stderr);
    assert!(
        warns[0].contains(&format!(
            "{} gives no db_path and DBBACKUP_DB_PATH is not set: the jobs would have no database",
            empty.join("dbbackup.yaml").display()
        )),
        "{}",
        run.stderr
    );
}
