//! What a person meets: help, version, completions, man pages, progress, `init`,
//! JSON from every reporting command, and snapshots of what people read.

use std::fs;
use std::process::Command;

use crate::common::*;

const COMMANDS: &[&str] = &[
    "backup",
    "list",
    "restore",
    "adopt",
    "auto",
    "verify",
    "prune",
    "pre-job",
    "run",
    "post-job",
    "periodic",
    "sync",
    "check",
    "summary",
    "templates",
    "init",
    "completions",
    "man",
];

#[test]
fn every_command_has_help_with_an_example_and_help_snapshots_hold() {
    let env = Env::empty();
    let top = env.run(&["--help"]);
    top.ok();
    insta::assert_snapshot!("help", top.stdout);
    for command in COMMANDS {
        let help = env.run(&[command, "--help"]);
        help.ok();
        assert!(
            help.stdout.contains("Example"),
            "{command} --help has no example:\n{}",
            help.stdout
        );
        insta::assert_snapshot!(format!("help_{command}"), help.stdout);
    }
    let version = env.run(&["--version"]);
    version.ok();
    assert_eq!(
        version.stdout.trim(),
        format!("dbbackup {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn list_and_summary_line_snapshots() {
    let env = Env::new();
    env.command()
        .env("SLURM_JOB_ID", "4242")
        .args(["backup"])
        .output()
        .unwrap();
    env.run(&["backup", "--force"]).ok();
    // A fixed zone: the header names the machine's zone (`Etc/UTC`, `UTC`, ...).
    let list: Run = env
        .command()
        .env("TZ", "UTC")
        .arg("list")
        .output()
        .unwrap()
        .into();
    list.ok();
    let log = env.path("summary.log");
    env.command()
        .env("SLURM_ARRAY_JOB_ID", "77")
        .env("SLURM_ARRAY_TASK_ID", "3")
        .env("SLURM_ARRAY_TASK_COUNT", "8")
        .env("DBBACKUP_SUMMARY_LOG", &log)
        .args(["post-job", "--status", "1"])
        .output()
        .unwrap();
    let line = fs::read_to_string(&log).unwrap();
    insta::with_settings!({filters => vec![
        (r"backup_\d{8}_\d{6}(_\d{3})?\.db\.gz *", "[NAME] "),
        (r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?Z? *", "[TIME] "),
        (r"host=\S+", "host=[HOST]"),
        (r" *\d+\.\d KiB", " [SIZE]"),
        (r" *\d+% *", " [PCT] "),
    ]}, {
        insta::assert_snapshot!("list", list.stdout);
        insta::assert_snapshot!("summary_line", line);
    });
}

#[test]
fn completions_and_man_pages_are_generated_from_the_flags() {
    let env = Env::empty();
    for shell in ["bash", "zsh", "fish"] {
        let run = env.run(&["completions", shell]);
        run.ok();
        for word in ["pre-job", "post-job", "db-path", "max-backups"] {
            assert!(run.stdout.contains(word), "{shell} completion lacks {word}");
        }
        if shell == "bash" {
            let file = env.path("dbbackup.bash");
            fs::write(&file, &run.stdout).unwrap();
            assert!(
                Command::new("bash")
                    .arg("-n")
                    .arg(&file)
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }
    env.run(&["completions", "tcsh-or-so"])
        .failed_with(2, "invalid value");
    let man = env.run(&["man"]);
    man.ok();
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH dbbackup"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    assert!(man.stdout.contains("pre\\-job"), "subcommands listed");
    let dir = env.path("man1");
    env.run(&["man", "--out", dir.to_str().unwrap()]).ok();
    for page in [
        "dbbackup.1",
        "dbbackup-backup.1",
        "dbbackup-restore.1",
        "dbbackup-check.1",
    ] {
        let text = fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn progress_is_absent_without_a_terminal_and_present_under_one() {
    let env = Env::empty();
    make_results_db(&env.db, 40.0, false);
    let piped = env.run(&["backup"]);
    piped.ok();
    assert!(
        !piped.stderr.contains('\r') && !piped.stderr.contains('\u{1b}'),
        "no escape codes in logs"
    );
    assert!(
        have("script"),
        "`script` (util-linux/bsdutils) is needed to give the command a terminal"
    );
    // `script` gives the command a pseudo-terminal.
    let under_tty = |extra: &str, slurm_job: Option<&str>| -> String {
        let command = format!("{BIN} backup --force --threads 1 --compression-level 9 {extra}");
        let mut script = Command::new("script");
        script
            .args(["-qec", &command, "/dev/null"])
            .current_dir(env.root.path())
            .env("DBBACKUP_DB_PATH", &env.db)
            .env("DBBACKUP_BACKUP_DIR", &env.backups)
            .env("TERM", "xterm")
            .env_remove("SLURM_JOB_ID")
            .env_remove("SLURM_PTY_PORT");
        if let Some(job) = slurm_job {
            script.env("SLURM_JOB_ID", job);
        }
        let output = script.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let drawn = under_tty("", None);
    assert!(
        drawn.contains("backup [") && drawn.contains("MiB"),
        "a bar was drawn:\n{drawn:?}"
    );
    assert!(
        !under_tty("--quiet", None).contains("backup ["),
        "silent under --quiet"
    );
    assert!(
        !under_tty("", Some("123")).contains("backup ["),
        "silent in a SLURM batch job"
    );
}

#[test]
fn init_writes_a_working_commented_config_and_templates() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_BACKUP_DIR")
        .args(["init", "--slurm", "--slurm-dir", "my-slurm"])
        .output()
        .unwrap()
        .into();
    run.ok();
    let config = fs::read_to_string(env.path("dbbackup.yaml")).unwrap();
    assert!(
        config.contains(&format!("db_path: {}", env.db.display())),
        "{config}"
    );
    assert!(
        config
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            > 10,
        "commented"
    );
    assert!(env.path("my-slurm/job_array.sbatch").exists());
    let array = fs::read_to_string(env.path("my-slurm/job_array.sbatch")).unwrap();
    assert!(array.contains("export DBBACKUP_CONFIG="), "{array}");
    // The written config works as it is.
    let backup: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .arg("backup")
        .output()
        .unwrap()
        .into();
    backup.ok();
    assert!(env.path("outputs/db_backups").is_dir());
    env.run(&["init"]).failed_with(1, "--force");
    env.run(&["init", "--force"]).ok();
}

#[test]
fn every_reporting_command_speaks_json() {
    let env = Env::new();
    // Each with the exit status it must have: JSON is no excuse to fail.
    let json = |args: &[&str], code: i32| {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let run = env.run(&all);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        run.json()
    };
    assert_eq!(json(&["backup"], 0)["status"], "ok");
    assert_eq!(json(&["backup"], 0)["status"], "skipped");
    assert_eq!(json(&["auto"], 0)["status"], "skipped");
    assert!(json(&["list"], 0).is_array());
    assert!(json(&["verify", "--all"], 0).is_array());
    assert!(json(&["prune", "--dry-run"], 0)["keep"].is_array());
    assert_eq!(json(&["check"], 0)["healthy"], true);
    assert_eq!(json(&["check", "--min-count", "5"], 1)["healthy"], false);
    assert_eq!(json(&["pre-job"], 0)["status"], "ok");
    assert!(json(&["post-job", "--status", "0"], 0)["status"].is_string());
    let target = env.path("r.db");
    assert_eq!(
        json(
            &["restore", "latest", "--target", target.to_str().unwrap()],
            0
        )["status"],
        "ok"
    );
}

/// Names a YAML writer must quote (or prefix) to read back as the same path.
const HOSTILE_NAMES: &[&str] = &[
    "[x].db",
    "{x}.db",
    "a: b.db",
    "#x.db",
    "x #y.db",
    "'q'.db",
    "\"d\".db",
    "résultats ü 数据.db",
    " lead.db",
    "trail.db ",
    "- x.db",
    "? x.db",
    "*x",
    "&x",
    "!x",
    "%x",
    "@x",
    "`x`",
    "|x",
    ">x",
    "yes",
    "null",
    "./~x.db",
    "./$x.db",
    "1e3",
    "0x10",
    "true",
    "a\\b.db",
    "tab\tx.db",
];

/// `init --db-path NAME [--path FILE]`, then `backup --config FILE` alone: the
/// backup is of NAME (a decoy of the same name next to FILE must not be taken).
fn init_then_backup(env: &Env, name: &str, config: &str, pairs: u32) {
    let db = env.path(name);
    make_ledger_db(&db, pairs, false);
    let config_dir = env.path(config).parent().unwrap().to_path_buf();
    fs::create_dir_all(&config_dir).unwrap();
    if config_dir != env.root.path() {
        let decoy = config_dir.join(name);
        fs::create_dir_all(decoy.parent().unwrap()).unwrap();
        make_ledger_db(&decoy, pairs + 1, false);
    }
    let init: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .arg(format!("--db-path={name}"))
        .args(["init", "--force", "--path", config])
        .output()
        .unwrap()
        .into();
    init.ok();
    let backup: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .args(["--config", config, "backup"])
        .output()
        .unwrap()
        .into();
    let written = fs::read_to_string(env.path(config)).unwrap();
    assert_eq!(
        backup.code,
        0,
        "{name:?} in {config}: {}\n{}",
        backup.stderr,
        written.lines().find(|l| l.starts_with("db_path")).unwrap()
    );
    let backups = config_dir.join("outputs/db_backups");
    let newest = fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("backup_")
        })
        .max()
        .expect("a backup");
    let restored = gunzip_to(&newest, &env.path("restored.db"));
    assert_eq!(
        content_digest(&restored),
        content_digest(&db),
        "{name:?} in {config}: the backup is of another database"
    );
    fs::remove_dir_all(&backups).unwrap();
}

#[test]
fn init_round_trips_any_database_name_relative_to_the_file_it_writes() {
    for name in HOSTILE_NAMES {
        init_then_backup(&Env::empty(), name, "dbbackup.yaml", 10);
        init_then_backup(&Env::empty(), name, "sub/deeper/dbbackup.yaml", 10);
    }
    // A database in a directory beside the file's, as the issue found it.
    let env = Env::empty();
    fs::create_dir_all(env.path("data")).unwrap();
    init_then_backup(&env, "data/r.db", "sub/dbbackup.yaml", 5);
}
