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

/// Every help is the compact layout (a long doc comment or value help would
/// switch one to clap's blank-line layout), shows no empty `[env: X=]`, lists
/// the shared settings only where they do something, and says a true usage.
#[test]
fn help_is_compact_and_shows_what_matters_for_the_command() {
    let env = Env::empty();
    let mut commands: Vec<Vec<&str>> = COMMANDS.iter().map(|c| vec![*c]).collect();
    commands.extend([
        vec!["export"],
        vec!["final"],
        vec!["lock"],
        vec!["lock", "status"],
    ]);
    for command in commands {
        let mut args = command.clone();
        args.push("--help");
        let help = env.run(&args);
        help.ok();
        let text = &help.stdout;
        assert!(
            !text.contains("see a summary with '-h'"),
            "{command:?} long layout:\n{text}"
        );
        assert!(!text.contains("=]"), "{command:?}:\n{text}");
        assert!(
            text.contains("Example"),
            "{command:?} has no example:\n{text}"
        );
        let settings = text.contains("--max-backups") || text.contains("--compression-level");
        let tool = matches!(command[0], "completions" | "man" | "lock");
        assert_eq!(
            settings, !tool,
            "{command:?} settings listed: {settings}\n{text}"
        );
    }
    let restore = env.run(&["restore", "--help"]);
    assert!(
        restore.stdout.contains("Usage: dbbackup restore [OPTIONS] <NAME>\n       dbbackup restore [OPTIONS] --before-job <JOBID>"),
        "{}",
        restore.stdout
    );
    // Hidden from the help, still accepted.
    env.run(&["completions", "bash", "--max-backups", "3"]).ok();
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
        // The NAME column is as wide as the longest name: `_001` when both
        // backups fall in the same second, else not.
        (r"^NAME +CREATED", "NAME [PAD] CREATED"),
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

/// A command's man page reads as the command is typed (`dbbackup restore
/// [OPTIONS] <NAME>`, not the file name `dbbackup-restore`), with the sections a
/// man page reader looks for: EXAMPLES (not clap's EXTRA), EXIT STATUS,
/// ENVIRONMENT and FILES.
#[test]
fn man_pages_have_the_typed_synopsis_and_the_usual_sections() {
    let env = Env::new();
    let dir = env.path("man1");
    env.run(&["man", "--out", dir.to_str().unwrap()]).ok();
    let page = fs::read_to_string(dir.join("dbbackup-restore.1")).unwrap();
    assert!(
        page.contains(".SH SYNOPSIS\n\\fBdbbackup restore\\fR [OPTIONS] <NAME>\n"),
        "{page}"
    );
    for section in [
        ".SH EXAMPLES",
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH FILES",
    ] {
        assert!(page.contains(section), "{section}: {page}");
    }
    assert!(!page.contains(".SH EXTRA"), "{page}");
    assert!(page.contains("DBBACKUP_CONFIG") && page.contains("AWS_ACCESS_KEY_ID"));
    assert!(
        page.contains("dbbackup restore \\-\\-before\\-job 264"),
        "{page}"
    );
    if have("man") {
        let shown = Command::new("man")
            .arg("-l")
            .arg(dir.join("dbbackup-restore.1"))
            .env("MANWIDTH", "200")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.contains("SYNOPSIS\n       dbbackup restore [OPTIONS] <NAME>\n"),
            "{shown}"
        );
        assert!(
            shown.contains("\nEXIT STATUS\n       0: success"),
            "{shown}"
        );
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
    env.run(&["init"]).failed_with(2, "--overwrite");
    env.run(&["init", "--overwrite"]).ok();
}

/// One word for "replace the files already there": `--overwrite`, in `init` as
/// in `templates` (`--force` elsewhere means "do it though it is not due or
/// looks wrong"). `init --force`, its old name, still works for old scripts,
/// unlisted in the help.
#[test]
fn init_and_templates_replace_files_with_overwrite_and_init_still_takes_force() {
    let env = Env::new();
    let config = env.path("dbbackup.yaml");
    let array = env.path("slurm/job_array.sbatch");
    env.run(&["init", "--slurm"]).ok();
    for (file, args) in [
        (&config, &["init"][..]),
        (&config, &["init", "--slurm"][..]),
        (&array, &["templates"][..]),
    ] {
        fs::write(file, "# mine\n").unwrap();
        let refused = env.run(args);
        refused.failed_with(2, "exists; use --overwrite to replace it");
        assert_eq!(fs::read_to_string(file).unwrap(), "# mine\n", "{args:?}");
        for flag in ["--overwrite", "--force"] {
            if args[0] == "templates" && flag == "--force" {
                continue;
            }
            fs::write(file, "# mine\n").unwrap();
            let with: Vec<&str> = args.iter().copied().chain([flag]).collect();
            env.run(&with).ok();
            assert_ne!(fs::read_to_string(file).unwrap(), "# mine\n", "{with:?}");
        }
    }
    for command in ["init", "templates"] {
        let help = env.run(&[command, "--help"]);
        help.ok();
        assert!(help.stdout.contains("--overwrite"), "{}", help.stdout);
        assert!(!help.stdout.contains("--force"), "{}", help.stdout);
    }
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

/// The README names the commands that take `--format json` and those that do
/// not: each named is run with it where it needs no cluster or remote (the
/// JSON parsed), and its `--help` offers it; each said not to, does not.
#[test]
fn the_readme_names_exactly_the_commands_with_json() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("These commands take `--format json`")
        .expect("README names the commands with --format json");
    let text = &readme[start..];
    let text = &text[..text.find("do not.").expect("and those without")];
    let names = |part: &str| -> Vec<String> {
        part.split('`')
            .skip(1)
            .step_by(2)
            .filter(|word| !word.starts_with('-'))
            .map(str::to_string)
            .collect()
    };
    let (with, without) = text.split_once(';').unwrap();
    let (with, without) = (names(with), names(without));
    assert!(
        with.len() >= 10 && without.len() >= 4,
        "{with:?} {without:?}"
    );
    let env = Env::new();
    env.run(&["backup"]).ok();
    for command in with.iter().chain(&without) {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let help = env.run(&args);
        help.ok();
        assert_eq!(
            help.stdout.contains("--format <FORMAT>"),
            with.contains(command),
            "{command}: the README says otherwise"
        );
    }
    let restored = env.path("restored.db");
    let exported = env.path("exported.db.gz");
    for command in &with {
        let args: Vec<&str> = match command.as_str() {
            // A cluster's scontrol, a remote, another database's backups.
            "final" | "sync" | "adopt" => continue,
            "restore" => vec!["restore", "latest", "--target", restored.to_str().unwrap()],
            "export" => vec!["export", "latest", "--out", exported.to_str().unwrap()],
            "post-job" => vec!["post-job", "--status", "0"],
            "verify" => vec!["verify", "--all"],
            "prune" => vec!["prune", "--dry-run"],
            other => other.split(' ').collect(),
        };
        let mut args = args;
        args.extend(["--format", "json"]);
        let run = env.run(&args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        run.json();
    }
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
    // The default backup directory, written rebased: where it pointed at init.
    let backups = env.path("outputs/db_backups");
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

/// Every command that takes a backup name takes `latest` too: the newest
/// restore point, as `restore latest` means it.
#[test]
fn every_command_that_takes_a_backup_name_takes_latest() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let newest = env.newest_backup();
    let name = newest.file_name().unwrap().to_str().unwrap();
    let verify = env.run(&["verify", "latest", "--format", "json"]);
    verify.ok();
    assert_eq!(verify.json()[0]["name"], name);
    assert_eq!(verify.json()[0]["ok"], true);
    // Named and `latest` side by side, naming one backup: verified once.
    let both = env.run(&["verify", name, "latest", "--format", "json"]);
    both.ok();
    assert_eq!(both.json().as_array().unwrap().len(), 1);
    let out = env.path("copy.db.gz");
    env.run(&["export", "latest", "--out", out.to_str().unwrap()])
        .ok();
    let target = env.path("r.db");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    // No backup at all: the same refusal as `verify` alone and `restore
    // latest`, not "no backup named".
    let empty = Env::new();
    empty
        .run(&["verify", "latest"])
        .failed_with(1, "no restore point of");
    empty.run(&["verify"]).failed_with(1, "no restore point of");
}

/// `summary --format json`: the line's fields as one JSON document (docs/json.md).
#[test]
fn summary_speaks_json() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let log = env.path("summary.log");
    let run = env.run(&[
        "summary",
        "--log",
        log.to_str().unwrap(),
        "--format",
        "json",
    ]);
    run.ok();
    let doc = run.json();
    assert_eq!(doc["event"], "summary");
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["count"], 1);
    assert_eq!(doc["healthy"], true);
    assert_eq!(
        doc["newest"],
        env.newest_backup().file_name().unwrap().to_str().unwrap()
    );
    assert!(doc["total_size"].as_u64().unwrap() > 0);
    // The line is still appended, the same as in text.
    let line = fs::read_to_string(&log).unwrap();
    assert_eq!(doc["line"].as_str().unwrap(), line.trim_end());
}

/// `COMMAND --help` shows the command's own options under "Options:" and the
/// settings every command shares under their own headings after them.
#[test]
fn help_shows_a_commands_own_options_first_and_the_shared_settings_under_headings() {
    use clap::CommandFactory;
    let cli = dbbackup::cli::Cli::command();
    let global: Vec<&clap::Arg> = cli.get_arguments().filter(|a| a.is_global_set()).collect();
    assert!(global.len() > 10);
    for arg in &global {
        assert!(
            arg.get_help_heading().is_some(),
            "--{} is shared by every command: give it a help heading (options.rs)",
            arg.get_id()
        );
    }
    let env = Env::empty();
    for command in COMMANDS {
        let help = env.run(&[command, "--help"]);
        help.ok();
        // "Options:" up to the next heading: the command's own.
        let own: String = help
            .stdout
            .split("\nOptions:\n")
            .nth(1)
            .unwrap_or("")
            .split("\n\n")
            .next()
            .unwrap()
            .to_string();
        for arg in &global {
            let flag = format!("--{} ", arg.get_long().unwrap());
            assert!(
                !own.contains(&flag),
                "{command} --help lists {flag} among its own options:\n{own}"
            );
        }
        // completions and man use none of the settings (help_is_compact_...).
        let headings: &[&str] = if matches!(*command, "completions" | "man") {
            &["Global options:"]
        } else {
            &["Global options:", "Backup settings:", "Retention:"]
        };
        for heading in headings {
            assert!(
                help.stdout.contains(heading),
                "{command} --help: no {heading}"
            );
        }
    }
}

/// `init` writes every setting the command line and the environment give, not
/// only `db_path`; the file alone then does what they did.
#[test]
fn init_writes_every_setting_given_and_the_file_reads_them_back() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_BACKUP_DIR")
        .env("DBBACKUP_THREADS", "2")
        .env("DBBACKUP_CHECK_MAX_AGE", "2h")
        .env("DBBACKUP_CHECK_MIN_COUNT", "3")
        .env("DBBACKUP_CHECK_MIN_FREE", "1K")
        .args([
            "--max-backups",
            "3",
            "--keep-daily",
            "2",
            "--mirror-dir",
            "mirror",
            "--shared",
            "umask",
            "--min-interval-hours",
            "0.5",
            "init",
            "--path",
            "conf/dbbackup.yaml",
        ])
        .output()
        .unwrap()
        .into();
    run.ok();
    let text = fs::read_to_string(env.path("conf/dbbackup.yaml")).unwrap();
    let file: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(file["max_backups"], 3, "{text}");
    assert_eq!(file["keep_daily"], 2, "{text}");
    assert_eq!(file["threads"], 2, "from the environment: {text}");
    assert_eq!(file["shared"], "umask", "{text}");
    assert_eq!(file["min_interval_hours"], 0.5, "{text}");
    // `check`'s thresholds from their variables, in the `check:` map.
    // As a person writes it (DBBACKUP_CHECK_MAX_AGE=2h), not as `7200s`.
    assert_eq!(file["check"]["max_age"], "2h", "{text}");
    assert_eq!(file["check"]["min_count"], 3, "{text}");
    // With its unit: a bare number is refused when read back.
    assert_eq!(file["check"]["min_free"], "1K", "{text}");
    assert_eq!(file["check"]["max_shrink"], 50, "the example's: {text}");
    // Paths relative to the file, as its reader takes them.
    assert_eq!(file["mirror_dirs"][0], "../mirror", "{text}");
    // An absolute path (the environment's) stays absolute.
    assert_eq!(file["db_path"], env.db.to_str().unwrap(), "{text}");
    // The file alone: the mirror receives the backup, and retention keeps 3.
    let alone = || -> Run {
        env.command()
            .env_remove("DBBACKUP_DB_PATH")
            .env_remove("DBBACKUP_BACKUP_DIR")
            .args(["--config", "conf/dbbackup.yaml", "backup", "--force"])
            .output()
            .unwrap()
            .into()
    };
    for _ in 0..5 {
        alone().ok();
    }
    let count = |dir: &str| {
        fs::read_dir(env.path(dir))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("backup_"))
            .count()
    };
    assert_eq!(count("outputs/db_backups"), 3);
    assert!(count("mirror") >= 1);
    // A bad threshold in the environment is refused, naming the variable.
    let run: Run = env
        .command()
        .env("DBBACKUP_CHECK_MIN_COUNT", "-1")
        .args(["init", "--force"])
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "DBBACKUP_CHECK_MIN_COUNT");
}

/// `templates` without a configuration: the hint names the project's
/// `dbbackup.yaml` (where the job runs) and says to fill it in, never a path
/// beside the binary.
#[test]
fn templates_without_a_config_point_at_the_project() {
    let env = Env::new();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_CONFIG")
        .args(["templates", "--out", "jobs"])
        .output()
        .unwrap()
        .into();
    run.ok();
    let project = env.root.path().canonicalize().unwrap();
    for name in [
        "job_single.sbatch",
        "job_array.sbatch",
        "final_backup.sbatch",
    ] {
        let text = fs::read_to_string(env.path("jobs").join(name)).unwrap();
        let hint = format!(
            "# export DBBACKUP_CONFIG={}/dbbackup.yaml",
            project.display()
        );
        assert!(
            text.contains(&hint)
                || text.contains(&format!(
                    "# export DBBACKUP_CONFIG='{}/dbbackup.yaml'",
                    project.display()
                )),
            "{name}: {text}"
        );
        assert!(text.contains("FILL IN"), "{name}");
        assert!(!text.contains("/path/to/dbbackup.yaml"), "{name}");
        // Still a valid shell script.
        let path = env.path("jobs").join(name);
        assert!(
            Command::new("bash")
                .arg("-n")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
    }
}

/// The README's scenario, up to its `list` (in Berlin time, as the README shows it).
fn run_the_readme_scenario(env: &Env) -> Run {
    let scratch = env.path("scratch.db");
    make_ledger_db(&scratch, 50, false);
    fs::create_dir_all(&env.backups).unwrap();
    let legacy = fs::File::create(env.backups.join("backup_20250909_093708.db.gz")).unwrap();
    assert!(
        Command::new("gzip")
            .arg("-c")
            .arg(&env.db)
            .stdout(legacy)
            .status()
            .unwrap()
            .success()
    );
    let task = |args: &[&str]| {
        let run: Run = env
            .command()
            .env("SLURM_JOB_ID", "77")
            .env("SLURM_ARRAY_JOB_ID", "77")
            .env("SLURM_ARRAY_TASK_ID", "0")
            .env("SLURM_ARRAY_TASK_COUNT", "1")
            .args(args)
            .output()
            .unwrap()
            .into();
        run.ok();
    };
    task(&["pre-job"]);
    env.run(&["--db-path", scratch.to_str().unwrap(), "backup"])
        .ok();
    fs::remove_file(&env.db).unwrap();
    make_ledger_db(&env.db, 300, false);
    task(&["post-job", "--status", "2"]);
    let list: Run = env
        .command()
        .env("TZ", "Europe/Berlin")
        .arg("list")
        .output()
        .unwrap()
        .into();
    list.ok();
    list
}

/// `list`'s output has the README sample's header, rows (column by column) and note.
fn assert_list_is_the_sample(sample: &[&str], stdout: &str) {
    let real: Vec<&str> = stdout.lines().collect();

    // The NAME column is as wide as the longest name (`_001` when two
    // backups fall in the same second): the rest is shifted alike.
    let shift = |header: &str| header.find("CREATED").unwrap();
    let (sample_at, real_at) = (shift(sample[0]), shift(real[0]));
    assert_eq!(
        sample[0][sample_at..],
        real[0][real_at..],
        "the header:\n{}\n{}",
        sample[0],
        real[0]
    );
    let rows = |lines: &[&str]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.starts_with("backup_"))
            .map(ToString::to_string)
            .collect()
    };
    let (sample_rows, real_rows) = (rows(sample), rows(&real));
    assert_eq!(sample_rows.len(), real_rows.len(), "rows:\n{stdout}");
    for (shown, printed) in sample_rows.iter().zip(&real_rows) {
        let (shown_tokens, printed_tokens) = (tokens(shown), tokens(printed));
        assert_eq!(
            shown_tokens.iter().map(|t| kind(&t.2)).collect::<Vec<_>>(),
            printed_tokens
                .iter()
                .map(|t| kind(&t.2))
                .collect::<Vec<_>>(),
            "README row:\n{shown}\nreal row:\n{printed}"
        );
        // Left-aligned columns start, right-aligned ones end, in the same place.
        for (a, b) in shown_tokens.iter().zip(&printed_tokens).skip(1) {
            let (start, end) = (a.0 + real_at - sample_at, a.1 + real_at - sample_at);
            assert!(
                start == b.0 || end == b.1,
                "README row:\n{shown}\nreal row:\n{printed}\n{:?} is out of its column",
                a.2
            );
        }
    }
    let note = sample.iter().find(|l| l.starts_with("note:")).unwrap();
    let note = note.trim_end_matches(" ...");
    assert!(
        real.iter().any(|l| l.starts_with(note)),
        "README note {note:?}, real:\n{stdout}"
    );
}

/// What the README shows `list` and a summary line to look like is what they
/// look like: the README's own scenario (a pre-job and post-job of array job
/// 77, a manual backup of another database in the same directory, a legacy
/// plain gzip) is run, and the README's sample is compared with the output:
/// the header exactly, each row token by token (the same kind of value in
/// the same column), the note's words, the summary line's keys.
#[test]
fn the_readme_list_and_summary_samples_are_what_the_commands_print() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let sample: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "$ dbbackup list")
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(sample.len() >= 3, "README has a `$ dbbackup list` sample");

    let env = Env::new();
    let list = run_the_readme_scenario(&env);
    assert_list_is_the_sample(&sample, &list.stdout);

    // The README's tour of the commands, run as written (after `list`: the
    // restores change the set), each with the exit status it documents.
    let tour: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("dbbackup backup --force"))
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(tour.len() >= 8, "{tour:?}");
    for line in tour {
        let command = line.split('#').next().unwrap().trim();
        let words: Vec<&str> = command.split_whitespace().skip(1).collect();
        let run = env.run(&words);
        assert_eq!(
            run.code, 0,
            "README: {command}
{}",
            run.stderr
        );
    }

    // The summary line: the README's keys, in its order.
    let shown = readme
        .lines()
        .find(|l| l.starts_with("time=") && l.contains("event=post-job"))
        .expect("a summary line in the README");
    let log = fs::read_to_string(env.path("slrm_logs/backup_summary.log")).unwrap();
    let printed = log.lines().find(|l| l.contains("event=post-job")).unwrap();
    assert_eq!(
        keys(shown),
        keys(printed),
        "README:\n{shown}\nreal:\n{printed}"
    );
}

/// Each whitespace-separated token with its start and end column.
fn tokens(line: &str) -> Vec<(usize, usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i] != ' ' {
            i += 1;
        }
        out.push((start, i, chars[start..i].iter().collect()));
    }
    out
}

/// What kind of value a `list` token is: numbers, names, dates and paths by
/// their form; words (kinds, types, checks, units) as themselves.
fn kind(token: &str) -> String {
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    let dated = |t: &str, sep: char| {
        let parts: Vec<&str> = t.split(sep).collect();
        parts.len() == 3 && parts.iter().all(|p| digits(p))
    };
    if token.starts_with("backup_") && token.ends_with(".gz") {
        "NAME".into()
    } else if dated(token, '-') {
        "DATE".into()
    } else if dated(token, ':') {
        "TIME".into()
    } else if digits(token) {
        "WHOLE".into()
    } else if token.parse::<f64>().is_ok() {
        "NUMBER".into()
    } else if token.strip_suffix('%').is_some_and(digits) {
        "PERCENT".into()
    } else if token.starts_with('/') {
        "PATH".into()
    } else {
        token.to_string()
    }
}

/// The keys of a logfmt line, in order (values may be quoted and hold spaces).
fn keys(line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut quoted = false;
    let mut word = String::new();
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            '=' if !quoted && !word.is_empty() => {
                keys.push(std::mem::take(&mut word));
            }
            ' ' if !quoted => word.clear(),
            _ if !quoted => word.push(c),
            _ => {}
        }
    }
    keys
}

/// One vocabulary: every command docs/json.md documents takes `--format json`
/// (its `--help` says so), and every command with `--format` is documented.
#[test]
fn docs_json_and_the_commands_with_format_agree() {
    let docs = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    let mut documented: Vec<String> = docs
        .lines()
        .filter(|l| l.starts_with("## "))
        .flat_map(|l| {
            l.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    // Mentioned in the text, not under a heading of their own.
    documented.extend(["pre-job".to_string(), "final".to_string()]);
    let env = Env::empty();
    let mut with_format = Vec::new();
    for command in COMMANDS.iter().chain(&["final", "export", "lock status"]) {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let help = env.run(&args);
        help.ok();
        if help.stdout.contains("--format <FORMAT>") {
            with_format.push((*command).to_string());
        }
    }
    for command in &documented {
        assert!(
            with_format.contains(command),
            "docs/json.md documents {command}, which has no --format"
        );
    }
    for command in &with_format {
        let said = documented.contains(command)
            || docs.contains(&format!("`{command}`"))
            || docs.contains(&format!("`{command}:"));
        assert!(
            said,
            "{command} has --format but docs/json.md says nothing of it"
        );
    }
}

/// `final --format json` prints one JSON document (it printed the backup's
/// report and then the array's, two documents no reader could parse).
#[test]
fn final_speaks_one_json_document() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let run = env.run(&["final", "424242", "--force", "--format", "json"]);
    run.ok();
    let doc = run.json();
    assert_eq!(doc["status"], "skipped", "{doc}");
    assert_eq!(doc["array"], "424242", "{doc}");
    assert!(doc["tasks"].is_array(), "{doc}");
}

/// The README says the licence the crate declares, and the files it names exist.
#[test]
fn the_readme_names_the_licence_and_its_files() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = fs::read_to_string(format!("{root}/README.md")).unwrap();
    let section: String = readme
        .lines()
        .skip_while(|l| *l != "## Licence")
        .take_while(|l| !l.starts_with("## ") || *l == "## Licence")
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        section.contains(env!("CARGO_PKG_LICENSE")),
        "README has no '## Licence' section saying {}",
        env!("CARGO_PKG_LICENSE")
    );
    for file in ["LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(section.contains(&format!("]({file})")), "{file} not linked");
        assert!(std::path::Path::new(root).join(file).is_file(), "{file}");
    }
}

/// A required argument left out: one line that says what the command needs and
/// what may be given (`latest`, the names `list` shows, the shells), exit 2.
#[test]
fn a_missing_argument_is_one_line_naming_what_to_give() {
    let env = Env::new();
    for (args, line) in [
        (
            &["restore"][..],
            "error: dbbackup restore needs NAME: a backup file name from 'dbbackup list', or 'latest'; or --before-job JOBID (see 'dbbackup restore --help')",
        ),
        (
            &["export"][..],
            "error: dbbackup export needs --out FILE: the .db.gz file to write (must not exist) (see 'dbbackup export --help')",
        ),
        (
            &["export", "latest"][..],
            "error: dbbackup export needs --out FILE: the .db.gz file to write (must not exist) (see 'dbbackup export --help')",
        ),
        (
            &["adopt"][..],
            "error: dbbackup adopt needs OLD_PATH: where the database was before it moved (as recorded in 'dbbackup list') (see 'dbbackup adopt --help')",
        ),
        (
            &["final"][..],
            "error: dbbackup final needs ARRAY_JOB_ID: the array job whose tasks have all ended (see 'dbbackup final --help')",
        ),
        (
            &["completions"][..],
            "error: dbbackup completions needs SHELL: one of bash, elvish, fish, powershell, zsh (see 'dbbackup completions --help')",
        ),
        (
            &["--quiet", "lock"][..],
            "error: dbbackup lock needs a command: status (see 'dbbackup lock --help')",
        ),
    ] {
        let run = env.run(args);
        assert_eq!(
            (run.code, run.stderr.as_str(), run.stdout.as_str()),
            (2, format!("{line}\n").as_str(), ""),
            "{args:?}"
        );
    }
    let no_command = env.run(&["--quiet"]);
    assert_eq!(no_command.code, 2);
    assert!(
        no_command
            .stderr
            .starts_with("error: dbbackup needs a command: backup, list, restore, export,"),
        "{}",
        no_command.stderr
    );
    assert_eq!(
        no_command.stderr.lines().count(),
        1,
        "{}",
        no_command.stderr
    );
    // `dbbackup` alone, settings in the environment or not: the commands, the
    // list a new user wants, on stdout and short; the options are in --help.
    let mut bare = env.command();
    for run in [
        Run::from(bare.output().unwrap()),
        Run::from(
            bare.env_remove("DBBACKUP_DB_PATH")
                .env_remove("DBBACKUP_BACKUP_DIR")
                .output()
                .unwrap(),
        ),
    ] {
        assert_eq!((run.code, run.stderr.as_str()), (2, ""));
        assert!(
            run.stdout.contains("Commands:\n  backup "),
            "{}",
            run.stdout
        );
        assert!(run.stdout.ends_with(
            "'dbbackup --help' lists the options; 'dbbackup help COMMAND' explains a command.\n"
        ));
        assert!(run.stdout.lines().count() < 40, "{}", run.stdout);
        assert!(!run.stdout.contains("--max-backups"), "{}", run.stdout);
    }
}

/// `command` (a shell line) under a pseudo-terminal (`script`), in `env`'s
/// directory with its settings: what the terminal showed, stdout and stderr as
/// one.
fn on_a_terminal(env: &Env, command: &str) -> String {
    assert!(
        have("script"),
        "`script` (util-linux/bsdutils) is needed to give the command a terminal"
    );
    let output = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .current_dir(env.root.path())
        .env("DBBACKUP_DB_PATH", &env.db)
        .env("DBBACKUP_BACKUP_DIR", &env.backups)
        .env("TERM", "dumb")
        .env_remove("SLURM_JOB_ID")
        .env_remove("DBBACKUP_CONFIG")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{command}: {shown}");
    shown
}

/// On a terminal `verify`'s FAILED line is shown once, naming the backup once
/// (not the log line beside the report, nor "NAME: FAILED: backup NAME is
/// damaged"); with --quiet the error line is all there is, and it is shown.
#[test]
fn a_terminal_shows_a_failed_verify_once() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let path = env.newest_backup();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = fs::read(&path).unwrap();
    // Inside the deflate stream: the data's checksum no longer matches.
    let at = bytes.len() - 60;
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    for (args, expected) in [("verify", "FAILED: damaged: "), ("-q verify", "ERROR")] {
        let shown = on_a_terminal(&env, &format!("{BIN} {args} || true"));
        let failed: Vec<&str> = shown.lines().filter(|l| l.contains("FAILED")).collect();
        assert_eq!(failed.len(), 1, "{args}: {shown}");
        assert!(failed[0].contains(expected), "{args}: {shown}");
        assert_eq!(failed[0].matches(&name).count(), 1, "{args}: {shown}");
    }
}

/// On a terminal the report line is what the user reads: the log line that
/// says the same (`published …`, `restored … into …`, `exported …`,
/// `retention removed …`) is not shown beside it. It is still written when
/// stderr is a log (a pipe, a file, a job's output), and on a terminal with -v.
#[test]
fn a_terminal_shows_the_report_once_and_a_log_keeps_every_line() {
    let env = Env::new();
    let shown = on_a_terminal(
        &env,
        &format!(
            "{BIN} backup; {BIN} backup --force; {BIN} --max-backups 1 prune; \
             {BIN} restore latest --target copy.db; {BIN} export latest --out copy.db.gz"
        ),
    );
    for report in [
        "created backup_",
        "restored backup_",
        "exported backup_",
        "deleted backup_",
    ] {
        assert!(shown.contains(report), "{report}: {shown}");
    }
    for echo in [
        "published",
        "into copy.db\r\n20",
        "retention removed",
        " INFO ",
    ] {
        assert!(!shown.contains(echo), "{echo:?} shown twice: {shown}");
    }
    let verbose = on_a_terminal(&env, &format!("{BIN} -v backup --force"));
    assert!(
        verbose.contains(" INFO ") && verbose.contains("published"),
        "{verbose}"
    );
    // A log (stderr piped) keeps them.
    let logged = env.run(&["backup", "--force"]);
    logged.ok();
    assert!(logged.stderr.contains("INFO") && logged.stderr.contains("published"));
    let restored = env.run(&["restore", "latest", "--target", "again.db"]);
    restored.ok();
    assert!(
        restored.stderr.contains("restored backup_"),
        "{}",
        restored.stderr
    );
}

/// Every log line starts with a timestamp of one width, as the summary log's:
/// RFC 3339 UTC with three fractional digits, even at a whole second (a frozen
/// clock), so the columns after it line up.
#[test]
fn log_lines_start_with_a_fixed_width_timestamp() {
    let fixed = |line: &str| {
        let stamp = line.get(..24).unwrap_or("");
        let b = stamp.as_bytes();
        let digits = [0..4, 5..7, 8..10, 11..13, 14..16, 17..19, 20..23];
        stamp.len() == 24
            && digits
                .into_iter()
                .all(|r| b[r].iter().all(u8::is_ascii_digit))
            && [
                (4, b'-'),
                (7, b'-'),
                (10, b'T'),
                (13, b':'),
                (16, b':'),
                (19, b'.'),
                (23, b'Z'),
            ]
            .iter()
            .all(|&(at, c)| b[at] == c)
            && line[24..].starts_with(' ')
    };
    let env = Env::new();
    let run = env.run(&["-vv", "backup"]);
    run.ok();
    assert!(run.stderr.lines().count() >= 2, "{}", run.stderr);
    for line in run.stderr.lines() {
        assert!(fixed(line), "{line:?}");
    }
    if !have_or_skip("faketime") {
        return;
    }
    // A clock stopped at a whole second: `.000`, not dropped.
    let run = faketime(&env, "2030-01-01 00:00:00", &["verify", "no-such-backup"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("2030-01-01T00:00:00.000Z ERROR "),
        "{}",
        run.stderr
    );
    for line in run.stderr.lines() {
        assert!(fixed(line), "{line:?}");
    }
}

/// `init` with no database given writes the example's `db_path: results.db`:
/// where no such file is, one line on stderr says so and what to edit; the
/// commands that then read the file say in one line that it does not exist.
#[test]
fn init_without_a_database_says_the_example_path_needs_editing() {
    let env = Env::empty();
    let init: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .arg("init")
        .output()
        .unwrap()
        .into();
    init.ok();
    let lines: Vec<&str> = init.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", init.stderr);
    assert!(
        lines[0].contains(" WARN ")
            && lines[0].contains("dbbackup.yaml: db_path is the example results.db")
            && lines[0].contains("edit db_path to name your database"),
        "{}",
        init.stderr
    );
    let without_db = |args: &[&str]| -> Run {
        env.command()
            .env_remove("DBBACKUP_DB_PATH")
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let backup = without_db(&["backup"]);
    backup.failed_with(1, "database results.db does not exist");
    assert_eq!(backup.stderr.lines().count(), 1, "{}", backup.stderr);
    without_db(&["check"]).reported(1, "FAIL database: results.db does not exist");
    // The example names a database that is there, or one was given: nothing to say.
    make_ledger_db(&env.db, 10, false);
    for args in [
        &["init", "--overwrite"][..],
        &["--db-path", "x.db", "init", "--overwrite"][..],
    ] {
        let run = without_db(args);
        run.ok();
        assert_eq!(run.stderr, "", "{args:?}");
    }
}

/// Two arguments that exclude each other are named as typed (`NAME`, not
/// clap's `'[NAME]'`, which reads as if NAME were optional), in one line, exit 2.
#[test]
fn arguments_that_exclude_each_other_are_named_as_typed() {
    let env = Env::new();
    for (args, line) in [
        (
            &["restore", "latest", "--before-job", "5"][..],
            "error: NAME and --before-job JOBID cannot be used together: give one (see 'dbbackup restore --help')",
        ),
        (
            &["verify", "--all", "latest"][..],
            "error: --all and NAME cannot be used together: give one (see 'dbbackup verify --help')",
        ),
        (
            &["list", "--from-remote", "--job", "3"][..],
            "error: --from-remote and --job JOBID cannot be used together: give one (see 'dbbackup list --help')",
        ),
        // An option given twice is not two options that exclude each other.
        (
            &["--max-backups", "3", "--max-backups", "4", "list"][..],
            "error: --max-backups given twice: give it once (see 'dbbackup --help')",
        ),
    ] {
        let run = env.run(args);
        assert_eq!(
            (run.code, run.stderr.as_str(), run.stdout.as_str()),
            (2, format!("{line}\n").as_str(), ""),
            "{args:?}"
        );
    }
}

/// A report that cannot be written (stdout on a full device) fails the command
/// in one line, exit 1 (it said exit 0, with one WARN per line lost); a reader
/// that goes away (`| head -1`) is still no error.
#[test]
fn a_report_lost_to_a_full_stdout_is_one_error_and_exit_1() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    env.run(&["backup", "--force"]).ok();
    for args in [
        &["list"][..],
        &["list", "--format", "json"][..],
        &["check", "--format", "json"][..],
        &["verify", "--all"][..],
    ] {
        let run: Run = env
            .command()
            .args(args)
            .stdout(fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", run.stderr);
        assert!(
            lines[0].contains(" ERROR ")
                && lines[0]
                    .ends_with("cannot write to stdout: No space left on device (os error 28); the command itself was carried out, only its report is lost"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // A reader gone (process_edges tests it at length): exit 0, nothing said.
    let closed = env.command();
    let mut sh = Command::new("bash");
    sh.current_dir(env.root.path());
    for (key, value) in closed.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    let run: Run = sh
        .args(["-c", "set -o pipefail; \"$0\" list | head -n 1 >/dev/null"])
        .arg(closed.get_program())
        .output()
        .unwrap()
        .into();
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "closed pipe");
}

/// Help and the version lost to a full stdout said nothing and exited 0
/// (T30 F1): one line and exit 1, as every report; `| head -1` stays exit 0.
#[test]
fn help_and_version_lost_to_a_full_stdout_are_one_error_and_exit_1() {
    let env = Env::new();
    for args in [&["--help"][..], &["--version"][..], &["backup", "-h"][..]] {
        let run: Run = env
            .command()
            .args(args)
            .stdout(fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap()
            .into();
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (
                1,
                "error: cannot write to stdout: No space left on device (os error 28)\n"
            ),
            "{args:?}"
        );
        let shown = env.run(args);
        assert_eq!((shown.code, shown.stderr.as_str()), (0, ""), "{args:?}");
        assert!(
            shown.stdout.starts_with(match args[0] {
                "--version" => "dbbackup ",
                "backup" => "Make a backup now",
                _ => "Compressed, verified",
            }),
            "{args:?}: {}",
            shown.stdout
        );
    }
}

/// The README's configuration table has a row for every key the configuration
/// file takes (the binary's own list, from its unknown-key error), so that a
/// new setting cannot be left out of it (`term_grace_seconds` was).
#[test]
fn the_readme_configuration_table_names_every_key() {
    let env = Env::new();
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ")).collect();
    let keys_of = |yaml: &str| -> Vec<String> {
        fs::write(env.path("keys.yaml"), yaml).unwrap();
        let run = env.run(&["--config", "keys.yaml", "list"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        let (_, keys) = run.stderr.trim_end().split_once("the keys are ").unwrap();
        keys.split(", ").map(str::to_string).collect()
    };
    let top = keys_of("zzz: 1\n");
    let check = keys_of("check:\n  zzz: 1\n");
    assert!(top.len() > 15 && check.len() > 3, "{top:?} {check:?}");
    for key in top.iter().chain(&check) {
        assert!(
            rows.iter()
                .any(|row| row.contains(&format!("`{key}`")) || row.contains(&format!("`{key}:`"))),
            "README's configuration table has no row for {key}"
        );
    }
}

/// A usage error (exit 2) has one format wherever it is found: `error: …`, one
/// line, as clap's own (the settings' checks printed a timestamped log line);
/// a bad `remote:` in the file names the file and line, as every other key.
#[test]
fn usage_errors_have_one_format_and_the_file_names_a_bad_remote() {
    let env = Env::new();
    fs::write(
        env.path("remote.yaml"),
        "max_backups: 3\nremote: http://x\n",
    )
    .unwrap();
    for (args, line) in [
        (
            &["list", "--job", "abc"][..],
            "error: 'abc' is not a SLURM job id (digits, or ARRAY_TASK such as 264_3)",
        ),
        (
            &["--config", "nosuch.yaml", "list"][..],
            "error: --config names nosuch.yaml, which does not exist",
        ),
        (
            &["--config", "remote.yaml", "list"][..],
            "error: config file remote.yaml line 2: remote 'http://x': scheme http:// is not supported; give s3://BUCKET/PREFIX (any S3-compatible store: set AWS_ENDPOINT_URL)",
        ),
        (
            &["--max-backups", "x", "list"][..],
            "error: invalid value 'x' for '--max-backups <N>': 'x' is not a number; must be a whole number from 1 to 4294967295",
        ),
    ] {
        let run = env.run(args);
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (2, format!("{line}\n").as_str()),
            "{args:?}"
        );
    }
    let home = env.run(&["--backup-dir", "~nobody/x", "list"]);
    assert_eq!(home.code, 2);
    assert!(
        home.stderr.starts_with("error: --backup-dir ~nobody/x: ")
            && home.stderr.lines().count() == 1,
        "{}",
        home.stderr
    );
}

/// A command's help says one thing of its positionals: one the usage shows
/// required (`<NAME>`) is not listed as optional (`[NAME]`) under Arguments
/// (`restore` did, the name being needed unless --before-job is given).
#[test]
fn help_shows_a_positional_the_same_in_usage_and_arguments() {
    let env = Env::new();
    let mut checked = 0;
    for command in COMMANDS {
        let help = env.run(&[command, "--help"]);
        help.ok();
        let usage = help
            .stdout
            .split("Usage: ")
            .nth(1)
            .and_then(|u| u.split("\n\n").next())
            .expect("a usage");
        let Some(arguments) = help.stdout.split("\nArguments:\n").nth(1) else {
            continue;
        };
        for line in arguments.lines().take_while(|l| !l.is_empty()) {
            let Some(shown) = line.split_whitespace().next() else {
                continue;
            };
            let name = shown.trim_matches(['[', ']', '<', '>', '.']);
            let required = format!("<{name}>");
            let in_usage = usage.contains(&required)
                && !usage.contains(&format!("-{required}"))
                && !usage.contains(&format!(" <{name}>]"));
            if in_usage {
                assert!(
                    shown.starts_with('<'),
                    "{command}: usage shows {required}, Arguments {shown}:\n{}",
                    help.stdout
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "positionals checked: {checked}");
}

/// `init --path results.db --overwrite` (--path read as the database's path)
/// wrote YAML over the live database: refused, whatever --overwrite says.
#[test]
fn init_never_writes_over_an_sqlite_database() {
    let env = Env::new();
    let before = content_digest(&env.db);
    let db = env.db.to_str().unwrap();
    for args in [
        vec!["init", "--path", db],
        vec!["init", "--path", db, "--overwrite"],
    ] {
        env.run(&args).failed_with(
            2,
            "is an SQLite database; --path is where the configuration file goes",
        );
        assert_eq!(content_digest(&env.db), before, "{args:?}");
    }
}

/// Issue 23 item 2: every `name(1)` a page written by `man --out` refers to is
/// a page it wrote (there were references to dbbackup-lock-status(1) and
/// dbbackup-help(1), never written), and each command's page points to
/// dbbackup(1) for the global settings.
#[test]
fn every_man_page_reference_is_a_page_that_man_out_writes() {
    let env = Env::new();
    let dir = env.path("man1");
    env.run(&["man", "--out", dir.to_str().unwrap()]).ok();
    let written: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        written.contains(&"dbbackup-lock-status.1".to_string()),
        "{written:?}"
    );
    let mut references = 0;
    for page in &written {
        let text = fs::read_to_string(dir.join(page)).unwrap();
        // Roff: `\-` is a hyphen, `\fB`/`\fR` change the font.
        let plain = text
            .replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fR", "");
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("(1)") {
            let name: String = rest[..at]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if !name.is_empty() {
                references += 1;
                assert!(
                    dir.join(format!("{name}.1")).exists(),
                    "{page} refers to {name}(1), which `man --out` did not write"
                );
            }
            rest = &rest[at + 3..];
        }
        if page != "dbbackup.1" {
            assert!(
                text.contains(".SH \"SEE ALSO\"")
                    && plain.contains("dbbackup(1): the global settings"),
                "{page}: {text}"
            );
        }
    }
    assert!(references > written.len(), "{references} references");
}

/// Issue 23 item 6: `restore latest x.db` (the database as a second word) says
/// how the database is named; `final` of an array nobody knows warns once on
/// a terminal (it printed the warning and its log line).
#[test]
fn a_database_as_an_argument_gets_the_db_path_form_and_final_warns_once() {
    let env = Env::new();
    let run = env.run(&["restore", "latest", "x.db"]);
    run.failed_with(2, "'x.db'");
    assert!(
        run.stderr
            .contains("the database is named by --db-path: dbbackup --db-path x.db restore latest"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("dbbackup restore latest --target x.db"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    // Not a database-like word: clap's line alone.
    let other = env.run(&["restore", "latest", "extra"]);
    assert_eq!(other.code, 2, "{}", other.stderr);
    assert!(!other.stderr.contains("--db-path"), "{}", other.stderr);

    env.run(&["backup"]).ok();
    let shown = on_a_terminal(&env, &format!("{BIN} final 99999 || true"));
    assert_eq!(shown.matches("is the id right?").count(), 1, "{shown}");
}
