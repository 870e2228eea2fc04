//! Configuration: precedence, relative paths, and refusal of bad keys and values.

use std::fs;

use crate::common::*;

fn write_config(env: &Env, text: &str) -> std::path::PathBuf {
    let path = env.path("conf/dbbackup.yaml");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn unknown_key_is_refused_naming_key_and_file() {
    let env = Env::new();
    let config = write_config(&env, "max_backup: 3\n");
    let run = env.run(&["--config", config.to_str().unwrap(), "backup"]);
    run.failed_with(2, "max_backup");
    assert!(run.stderr.contains("dbbackup.yaml"), "{}", run.stderr);
    assert!(env.backup_files().is_empty());
}

#[test]
fn out_of_range_and_mistyped_values_are_refused() {
    let env = Env::new();
    for (text, needle) in [
        ("compression_level: 12\n", "compression_level"),
        ("compression_level: 0\n", "compression_level"),
        ("min_interval_hours: -1\n", "min_interval_hours"),
        ("max_backups: many\n", "max_backups"),
        ("max_backups: 0\n", "max_backups"),
        ("check:\n  max_age: soon\n", "check.max_age"),
        // Passed the old fuzzed parser, failed only in a real run.
        (
            "check:\n  max_shrink: 200\n",
            "check.max_shrink: must be a number from 0 to 100, not 200",
        ),
        (
            "threads: 100000\n",
            "threads: must be a whole number from 0 to 64",
        ),
        ("min_interval_hours: 1e20\n", "min_interval_hours: must be"),
        (
            "busy_timeout_seconds: 1.5\n",
            "busy_timeout_seconds: must be a whole number",
        ),
        ("- just\n- a list\n", "dbbackup.yaml"),
    ] {
        let config = write_config(&env, text);
        env.run(&["--config", config.to_str().unwrap(), "list"])
            .failed_with(2, needle);
    }
    env.run(&["--compression-level", "0", "backup"])
        .failed_with(2, "compression-level");
    env.run(&["--min-interval-hours=-0.5", "auto"])
        .failed_with(2, "min-interval-hours");
    let run: Run = env
        .command()
        .env("DBBACKUP_MAX_BACKUPS", "lots")
        .arg("list")
        .output()
        .unwrap()
        .into();
    run.failed_with(2, "max-backups");
    env.run(&["--config", env.path("nope.yaml").to_str().unwrap(), "list"])
        .failed_with(2, "nope.yaml");
}

#[test]
fn flags_beat_environment_beat_file_and_file_paths_are_relative_to_it() {
    let env = Env::new();
    fs::create_dir_all(env.path("conf")).unwrap();
    fs::copy(&env.db, env.path("conf/file.db")).unwrap();
    let config = write_config(
        &env,
        "db_path: file.db\nbackup_dir: file-backups\nmax_backups: 4\n",
    );
    let base = || {
        let mut command = env.command();
        command
            .env_remove("DBBACKUP_DB_PATH")
            .env_remove("DBBACKUP_BACKUP_DIR");
        command.arg("--config").arg(&config);
        command
    };
    // File only: paths relative to the file's directory, max_backups 4.
    for _ in 0..6 {
        let run: Run = base()
            .args(["backup", "--force", "-q"])
            .output()
            .unwrap()
            .into();
        run.ok();
    }
    let count = |dir: &str| {
        fs::read_dir(env.path(dir))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("backup_"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(count("conf/file-backups"), 4);
    // The environment beats the file.
    let run: Run = base()
        .env("DBBACKUP_MAX_BACKUPS", "3")
        .args(["prune"])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert_eq!(count("conf/file-backups"), 3);
    // A flag beats the environment.
    let run: Run = base()
        .env("DBBACKUP_MAX_BACKUPS", "3")
        .args(["prune", "--max-backups", "2"])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert_eq!(count("conf/file-backups"), 2);
}

#[test]
fn dbbackup_yaml_in_the_working_directory_is_read() {
    let env = Env::new();
    fs::write(env.path("dbbackup.yaml"), "backup_dir: from-cwd-config\n").unwrap();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_BACKUP_DIR")
        .arg("backup")
        .output()
        .unwrap()
        .into();
    run.ok();
    assert!(env.path("from-cwd-config").is_dir());
}

/// `./dbbackup.yaml` that is a directory, a FIFO or a dangling symlink is refused
/// as `--config` would refuse it, never skipped in favour of the defaults.
#[test]
fn a_dbbackup_yaml_in_the_working_directory_that_cannot_be_read_is_refused() {
    let env = Env::new();
    let path = env.path("dbbackup.yaml");
    let makers: [(&str, &dyn Fn()); 3] = [
        ("directory", &|| fs::create_dir(&path).unwrap()),
        ("fifo", &|| {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        }),
        ("dangling symlink", &|| {
            std::os::unix::fs::symlink(env.path("nothere.yaml"), &path).unwrap();
        }),
    ];
    for (what, make) in makers {
        make();
        let run = env.run(&["backup"]);
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains("dbbackup.yaml"),
            "{what}: {}",
            run.stderr
        );
        assert_eq!(
            run.stderr.trim().lines().count(),
            1,
            "{what}: {}",
            run.stderr
        );
        assert!(
            env.backup_files().is_empty(),
            "{what}: no backup with defaults"
        );
        let _ = fs::remove_dir(&path);
        let _ = fs::remove_file(&path);
    }
}

#[test]
fn the_shipped_example_config_parses_and_backs_up_the_example_database() {
    let env = Env::empty();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    fs::copy(examples.join("dbbackup.yaml"), env.path("dbbackup.yaml")).unwrap();
    fs::copy(examples.join("results.db"), env.path("results.db")).unwrap();
    let run: Run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .args(["--config", "dbbackup.yaml", "backup"])
        .output()
        .unwrap()
        .into();
    run.ok();
    let dir = env.path("outputs/db_backups");
    let backup = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("backup_"))
        .unwrap();
    let copy = gunzip_to(&backup.path(), &env.path("copy.db"));
    assert_eq!(
        content_digest(&copy),
        content_digest(&env.path("results.db"))
    );
}

/// One setting as a flag, an environment variable and a file key.
struct Setting {
    flag: &'static str,
    var: &'static str,
    /// `check.x` is `x` under `check:` in the file, and `check`'s own flag.
    key: &'static str,
    /// What every refusal says is accepted.
    range: &'static str,
    bad: &'static [&'static str],
}

const SETTINGS: &[Setting] = &[
    Setting {
        flag: "--compression-level",
        var: "DBBACKUP_COMPRESSION_LEVEL",
        key: "compression_level",
        range: "a whole number from 1 to 9",
        bad: &["6%", "6.0", "-1", "1e300", "0", "10"],
    },
    Setting {
        flag: "--max-backups",
        var: "DBBACKUP_MAX_BACKUPS",
        key: "max_backups",
        range: "a whole number from 1 to 4294967295",
        bad: &["6%", "6.0", "-1", "1e300", "0"],
    },
    Setting {
        flag: "--keep-daily",
        var: "DBBACKUP_KEEP_DAILY",
        key: "keep_daily",
        range: "a whole number from 0 to 4294967295",
        bad: &["6%", "6.0", "-1", "1e300"],
    },
    Setting {
        flag: "--threads",
        var: "DBBACKUP_THREADS",
        key: "threads",
        range: "a whole number from 0 to 64",
        bad: &["6%", "6.0", "-1", "1e300", "65"],
    },
    Setting {
        flag: "--lock-timeout-seconds",
        var: "DBBACKUP_LOCK_TIMEOUT_SECONDS",
        key: "lock_timeout_seconds",
        range: "a whole number from 0 to 604800",
        bad: &["6%", "6.0", "-1", "1e300"],
    },
    Setting {
        flag: "--min-interval-hours",
        var: "DBBACKUP_MIN_INTERVAL_HOURS",
        key: "min_interval_hours",
        range: "a number from 0 to 876000",
        bad: &["6%", "-1", "1e300"],
    },
    Setting {
        flag: "--min-count",
        var: "DBBACKUP_CHECK_MIN_COUNT",
        key: "check.min_count",
        range: "a whole number from 0 to 4294967295",
        bad: &["6%", "6.0", "-1", "1e300"],
    },
    Setting {
        flag: "--max-shrink",
        var: "DBBACKUP_CHECK_MAX_SHRINK",
        key: "check.max_shrink",
        range: "a number from 0 to 100",
        bad: &["101%", "-1", "1e300"],
    },
    Setting {
        flag: "--max-age",
        var: "DBBACKUP_CHECK_MAX_AGE",
        key: "check.max_age",
        range: "90s, 30m, 24h, 7d",
        // A bare number: `24` meant as hours was taken as seconds.
        bad: &["6%", "-1", "1e300", "1e300h", "soon", "24"],
    },
    Setting {
        flag: "--min-free",
        var: "DBBACKUP_CHECK_MIN_FREE",
        key: "check.min_free",
        range: "500M, 1G",
        bad: &["6%", "-1", "1e300", "1e300G", "lots", "5"],
    },
];

/// The stderr line that names the setting, which must also name the range.
fn refusal(run: &Run, name: &str, range: &str, source: &str) {
    assert_eq!(run.code, 2, "{source}: {}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("{source}: no line names {name}: {}", run.stderr));
    assert!(line.contains(range), "{source}: {line}");
}

#[test]
fn numbers_are_typed_once_at_the_edge_from_flag_environment_and_file() {
    let env = Env::new();
    for setting in SETTINGS {
        let (command, file_key) = match setting.key.strip_prefix("check.") {
            Some(key) => ("check", format!("check:\n  {key}")),
            None => ("list", setting.key.to_string()),
        };
        for bad in setting.bad {
            let flag = format!("{}={bad}", setting.flag);
            let args: Vec<&str> = if command == "check" {
                vec!["check", &flag]
            } else {
                vec![&flag, "list"]
            };
            refusal(&env.run(&args), setting.flag, setting.range, &flag);
            let by_env: Run = env
                .command()
                .env(setting.var, bad)
                .arg(command)
                .output()
                .unwrap()
                .into();
            let source = format!("{}={bad}", setting.var);
            refusal(&by_env, setting.flag, setting.range, &source);
            let config = write_config(&env, &format!("{file_key}: {bad}\n"));
            let by_file = env.run(&["--config", config.to_str().unwrap(), command]);
            let source = format!("{file_key}: {bad}");
            refusal(&by_file, setting.key, setting.range, &source);
        }
    }
    // In range, each way: accepted (a percentage may say so).
    env.run(&["backup"]).ok();
    env.run(&["--compression-level", " 7", "list"]).ok();
    env.run(&[
        "check",
        "--max-shrink",
        "60%",
        "--max-age",
        "2h",
        "--min-free=1K",
    ])
    .ok();
    let config = write_config(
        &env,
        "compression_level: 7\nmin_interval_hours: 0.5\ncheck:\n  max_age: 90s\n  min_free: 1K\n",
    );
    env.run(&["--config", config.to_str().unwrap(), "list"])
        .ok();
}

/// A configuration error says what the user wrote and what is expected, in
/// the user's words (no Rust type names), with the line.
#[test]
fn config_errors_say_what_was_written_what_is_expected_and_where() {
    let env = Env::new();
    let error = |text: &str| -> String {
        let config = write_config(&env, text);
        let run = env.run(&["--config", config.to_str().unwrap(), "list"]);
        assert_eq!(run.code, 2, "{text:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{text:?}: {}", run.stderr);
        assert!(env.backup_files().is_empty());
        run.stderr
    };
    for (text, says) in [
        (
            "check: 5\n",
            "line 1: check: expected a map of check thresholds (max_age, min_count, max_shrink, min_free, remote_max_age), found 5",
        ),
        (
            "- a\n",
            "line 1: expected a map of settings, one `key: value` per line, found a list",
        ),
        (
            "max_backups: 99999999999999999999999999999\n",
            "line 1: max_backups: must be a whole number from 1 to 4294967295, not 99999999999999999999999999999",
        ),
        (
            "busy_timeout_seconds: 1e300\n",
            "busy_timeout_seconds: must be a whole number from 0 to 604800, not 1e300",
        ),
        // libyaml's errors at the very start carried no position.
        (":\n", "line 1: "),
        (
            "nope: 1\n",
            "line 1: unknown key nope; the keys are db_path,",
        ),
        (
            "\tmax_backups: 3\n",
            "line 1: found character that cannot start any token, while scanning for the next token; YAML indents with spaces, not tabs",
        ),
        ("max_backups: 3\n\tkeep_daily: 2\n", "line 2: "),
        ("check:\n  max_age: 1h\n min_count: 2\n", "line 3: "),
        // Hexadecimal, octal or binary for a count is surely a mistake.
        (
            "max_backups: 0x10\n",
            "line 1: max_backups: 0x10 is not a decimal number",
        ),
        (
            "keep_daily: 0o17\n",
            "keep_daily: 0o17 is not a decimal number",
        ),
        (
            "check:\n  min_count: 0b11\n",
            "line 2: check.min_count: 0b11 is not a decimal number",
        ),
    ] {
        let stderr = error(text);
        assert!(stderr.contains(says), "{text:?}: wanted {says:?}\n{stderr}");
        for internal in [
            "struct",
            "u128",
            "i128",
            "FileCheck",
            "FileConfig",
            "Options",
        ] {
            assert!(!stderr.contains(internal), "{text:?}: {stderr}");
        }
    }
    // `05` is 5, as an HPC user writing it means (YAML 1.1 would read octal).
    let config = write_config(&env, "max_backups: 05\nkeep_daily: 010\n");
    env.run(&["--config", config.to_str().unwrap(), "backup"])
        .ok();
    let config = write_config(&env, "max_backups: '3'\n");
    env.run(&["--config", config.to_str().unwrap(), "list"])
        .ok();
}

/// Every config message has one form: `config file F line N: what is wrong`,
/// in the user's words, the value as written, the line of the mistake.
#[test]
fn config_messages_name_the_line_first_and_say_it_plainly() {
    let env = Env::new();
    for (text, says) in [
        (
            "max_backups: 3\nthreads: 2\nmax_backups: 4\n",
            "dbbackup.yaml line 3: duplicate key max_backups (first on line 1)",
        ),
        (
            "max_backups: 99999999999999999999999999999999999999999\n",
            "line 1: max_backups: must be a whole number from 1 to 4294967295, not 99999999999999999999999999999999999999999",
        ),
        (
            "keep_daily: 4294967296\n",
            "line 1: keep_daily: must be a whole number from 0 to 4294967295, not 4294967296",
        ),
        (
            "max_backups: 2\nthreads: 0x10\n",
            "dbbackup.yaml line 2: threads: 0x10 is not a decimal number",
        ),
        (
            "compression_level: 6.0\n",
            "line 1: compression_level: must be a whole number from 1 to 9 written in digits, such as 6 (the line reads: compression_level: 6.0)",
        ),
        (
            "shared: maybe\n",
            "line 1: shared: 'maybe' is not one of group, umask",
        ),
        (
            "db_path: [a]\n",
            "line 1: db_path: expected a path, found a list (the line reads: db_path: [a])",
        ),
        (
            "max_bakups: 3\n",
            "line 1: unknown key max_bakups (did you mean max_backups?)",
        ),
        (
            "check:\n  max_agee: 1h\n",
            "line 2: unknown key check.max_agee (did you mean max_age?)",
        ),
        (
            "threads: 2\ndb_path: ''\n",
            "line 2: db_path must not be empty",
        ),
        (
            "threads: 2\nmirror_dirs: ['']\n",
            "line 2: mirror_dirs must not hold an empty path",
        ),
        // The line of the value, not of the file's start (an either-or reader lost it).
        (
            "db_path: results.db\n\n\nmirror_dirs: 5\n",
            "line 4: mirror_dirs: expected a path or a list of paths (- path), found 5",
        ),
        (
            "db_path: results.db\n\n\nmirror_dirs: {a: b}\n",
            "line 4: mirror_dirs: expected a path or a list of paths (- path), found a map",
        ),
        (
            "db_path: results.db\nmirror_dirs:\n  - m1\n  - [x]\n",
            "line 4: mirror_dirs[1]: expected a path, found a list",
        ),
        (
            "threads: 2\ndb_path: $USER/x.db\n",
            "line 2: `db_path` contains shell syntax `$USER`; dbbackup does not expand it: write the path, or use DBBACKUP_DB_PATH=...",
        ),
        (
            "check:\n\tmin_count: 1\n",
            "line 2: found character that cannot start any token, while scanning for the next token; YAML indents with spaces, not tabs",
        ),
        (
            "max_backups: 3\n  x: [\n",
            "line 2: this indented line continues the value of max_backups (line 1)",
        ),
    ] {
        let config = write_config(&env, text);
        let run = env.run(&["--config", config.to_str().unwrap(), "list"]);
        run.failed_with(2, says);
        assert_eq!(run.stderr.lines().count(), 1, "{text:?}: {}", run.stderr);
        for serde in ["field", "variant", "invalid type", "sequence", " at line "] {
            assert!(!run.stderr.contains(serde), "{text:?}: {}", run.stderr);
        }
    }
    // One mirror may be written without the list around it.
    let config = write_config(
        &env,
        &format!("mirror_dirs: {}\n", env.path("m1").display()),
    );
    env.run(&[
        "--config",
        config.to_str().unwrap(),
        "--db-path",
        env.db.to_str().unwrap(),
        "backup",
    ])
    .ok();
    let backup = env.backup_files().pop().expect("a backup");
    assert!(
        env.path("m1").join(&backup).is_file(),
        "{backup} not mirrored"
    );
}

/// `init` never reads `./dbbackup.yaml` (the file it may replace): a broken one
/// does not block it. A file named by `--config` is read, and its settings are
/// the new file's.
#[test]
fn init_reads_no_config_but_the_one_given_and_copies_its_settings() {
    let env = Env::new();
    fs::write(env.path("dbbackup.yaml"), "max_backups: [\n").unwrap();
    env.run(&["--db-path", "r.db", "init", "--force"]).ok();
    let written = fs::read_to_string(env.path("dbbackup.yaml")).unwrap();
    assert!(written.contains("db_path: r.db"), "{written}");
    fs::write(env.path("dbbackup.yaml"), "max_backups: [\n").unwrap();
    env.run(&["init", "--path", "other.yaml"]).ok();

    fs::write(env.path("old.yaml"), "mirror_dirs: [m]\nmax_backups: 7\n").unwrap();
    env.run(&[
        "--config",
        "old.yaml",
        "--keep-daily",
        "2",
        "init",
        "--path",
        "sub/new.yaml",
    ])
    .ok();
    let new = fs::read_to_string(env.path("sub/new.yaml")).unwrap();
    for line in ["- ../m", "max_backups: 7", "keep_daily: 2"] {
        assert!(new.lines().any(|l| l == line), "{line}\n{new}");
    }

    fs::create_dir(env.path("adir")).unwrap();
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec!["init", "--path", "adir"];
        args.extend(force);
        env.run(&args).failed_with(
            2,
            "adir is a directory; give the file to write, e.g. --path adir/dbbackup.yaml",
        );
    }
}

/// The trial: `init --path sub/full.yaml` wrote the example's
/// `backup_dir: outputs/db_backups`, read relative to `sub/`, while without
/// the key backups go to `./outputs/db_backups`. The path defaults are written
/// rebased: the file points where the default did when it was written.
#[test]
fn init_elsewhere_writes_the_path_defaults_where_they_point() {
    let env = Env::new();
    let command = || {
        let mut command = env.command();
        command.env_remove("DBBACKUP_BACKUP_DIR");
        command
    };
    let run: Run = command()
        .args(["init", "--path", "sub/full.yaml"])
        .output()
        .unwrap()
        .into();
    run.ok();
    let text = fs::read_to_string(env.path("sub/full.yaml")).unwrap();
    assert!(
        text.contains("\nbackup_dir: ../outputs/db_backups\n"),
        "{text}"
    );
    assert!(
        text.contains("\nsummary_log: ../slrm_logs/backup_summary.log\n"),
        "{text}"
    );
    for args in [
        &["--config", "sub/full.yaml", "backup"][..],
        &["--config", "sub/full.yaml", "summary"],
    ] {
        let run: Run = command().args(args).output().unwrap().into();
        run.ok();
    }
    assert_eq!(backup_files_in(&env.path("outputs/db_backups")).len(), 1);
    assert!(!env.path("sub/outputs").exists());
    assert_eq!(summary_lines(&env.summary_log()).len(), 1);
    assert!(!env.path("sub/slrm_logs").exists());
    // Written where it is read from, the file is the example's text.
    command().args(["init"]).output().unwrap();
    let here = fs::read_to_string(env.path("dbbackup.yaml")).unwrap();
    assert!(
        here.contains("\nbackup_dir: outputs/db_backups\n"),
        "{here}"
    );
}

/// A configuration file named by DBBACKUP_CONFIG (set in a profile and
/// forgotten) that does not exist: the error names the variable; by --config,
/// the flag. Exit 2, nothing written.
#[test]
fn a_missing_config_file_names_where_it_was_named() {
    let env = Env::new();
    let missing = env.path("missing.yaml");
    let shown = missing.display().to_string();
    let run = Run::from(
        env.command()
            .env("DBBACKUP_CONFIG", &missing)
            .arg("list")
            .output()
            .unwrap(),
    );
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            format!("error: DBBACKUP_CONFIG names {shown}, which does not exist\n").as_str()
        )
    );
    env.run(&["--config", &shown, "list"]).failed_with(
        2,
        &format!("error: --config names {shown}, which does not exist"),
    );
    assert!(!env.backups.exists());
}

/// What the reader made of a value (1000.0, a list) is not what was written:
/// the line is quoted as written, and a whole number written as a decimal is
/// told the form that works.
#[test]
fn config_errors_quote_the_line_as_written() {
    let env = Env::new();
    for (text, says) in [
        (
            "db_path: [r.db\n",
            "line 1: the `[` at column 10 is not closed by `]`: YAML reads a value starting with `[` as a list; quote it if it is text (the line reads: db_path: [r.db)",
        ),
        // T26 #9: not "found a list" for a list never closed.
        (
            "max_backups: 3\nmirror_dirs: [a, b\nthreads: 2\n",
            "line 2: the `[` at column 14 is not closed by `]`: YAML reads a value starting with `[` as a list; quote it if it is text (the line reads: mirror_dirs: [a, b)",
        ),
        (
            "check:\n  max_age: {2h\n",
            "line 2: the `{` at column 12 is not closed by `}`: YAML reads a value starting with `{` as a map; quote it if it is text (the line reads:   max_age: {2h)",
        ),
        // T27b F6: not "end of stream" on a line past the end.
        (
            "db_path: \"r.db\nmax_backups: 3\n",
            "line 1: the `\"` at column 10 is not closed by another `\"` (the line reads: db_path: \"r.db)",
        ),
        // Closed on its line: a `,` missing, as the reader says.
        (
            "mirror_dirs: [\"/a\" \"/b\"]\n",
            "line 1: did not find expected ',' or ']', while parsing a flow sequence at line 1 column 14 (the line reads: mirror_dirs: [\"/a\" \"/b\"])",
        ),
        (
            "db_path: [r.db]\n",
            "line 1: db_path: expected a path, found a list (the line reads: db_path: [r.db])",
        ),
        (
            "max_backups: 1e3\n",
            "line 1: max_backups: must be a whole number from 1 to 4294967295 written in digits, such as 1000 (the line reads: max_backups: 1e3)",
        ),
    ] {
        let config = write_config(&env, text);
        let run = env.run(&["--config", config.to_str().unwrap(), "list"]);
        run.failed_with(2, says);
        assert_eq!(run.stderr.lines().count(), 1, "{text:?}: {}", run.stderr);
    }
}

/// Issue 23 item 4: a `check:` threshold at the top level, or a top-level
/// setting under `check:`, is refused saying where it belongs (not the list of
/// every valid key).
#[test]
fn a_setting_in_the_wrong_section_is_refused_saying_where_it_belongs() {
    let env = Env::new();
    for (text, says) in [
        (
            "max_age: 2d\n",
            "line 1: `max_age` is a `check:` setting; write it as `check:` with `  max_age: 2d` indented on the next line",
        ),
        (
            "max_backups: 3\nmin_count: 3\n",
            "line 2: `min_count` is a `check:` setting; write it as `check:` with `  min_count: 3` indented",
        ),
        (
            "check:\n  max_age: 2d\n  max_backups: 3\n",
            "line 3: `max_backups` is a top-level setting, not a `check:` one; write it unindented, outside `check:`",
        ),
    ] {
        let config = write_config(&env, text);
        let run = env.run(&["--config", config.to_str().unwrap(), "check"]);
        run.failed_with(2, says);
        assert!(!run.stderr.contains("the keys are"), "{}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    }
}

/// Issue 23 item 7: `init` before the first job run, whose database does not
/// exist yet: the configuration is written, and one line says the database is
/// not there yet (a mistyped path is noticed now, not at the first backup).
#[test]
fn init_for_a_database_not_created_yet_writes_the_config_and_says_so_once() {
    let env = Env::empty();
    let run = env
        .command()
        .env_remove("DBBACKUP_DB_PATH")
        .env_remove("DBBACKUP_BACKUP_DIR")
        .args(["--db-path", "later.db", "init"])
        .output()
        .unwrap();
    let run: Run = run.into();
    run.ok();
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(
        all.matches("database later.db does not exist yet; the configuration was written anyway")
            .count(),
        1,
        "{all}"
    );
    let written = fs::read_to_string(env.path("dbbackup.yaml")).unwrap();
    assert!(
        written.lines().any(|l| l == "db_path: later.db"),
        "{written}"
    );
    // An existing database: no such line.
    let env = Env::new();
    let run = env
        .command()
        .env_remove("DBBACKUP_BACKUP_DIR")
        .arg("init")
        .output()
        .unwrap();
    let run: Run = run.into();
    run.ok();
    assert!(!run.stdout.contains("does not exist"), "{}", run.stdout);
}

/// `backup --db-path DB` from `notebooks/` under the project: nothing made
/// there, and the project's own `list`, from its directory, shows a backup.
fn back_up_from_a_notebook(env: &Env, db: &str) {
    let elsewhere = env.path("notebooks");
    fs::create_dir(&elsewhere).unwrap();
    bare(&elsewhere, &["--db-path", db, "backup"]).ok();
    assert!(!elsewhere.join("outputs").exists());
    let listed = bare(env.root.path(), &["list"]);
    listed.ok();
    assert!(listed.stdout.contains("backup_"), "{}", listed.stdout);
}

/// T19 #15: the database given by its absolute path from another directory
/// (a notebook, the Python API): `./dbbackup.yaml` is not there, and the
/// backups went to a new `outputs/db_backups` under the current directory,
/// which the project's `list` and `restore latest` never see. The project's
/// file beside the database, naming that database, is read.
#[test]
fn the_configuration_beside_the_database_is_read_from_another_directory() {
    let env = Env::new();
    fs::write(
        env.path("dbbackup.yaml"),
        "db_path: results.db\nbackup_dir: project-backups\n",
    )
    .unwrap();
    back_up_from_a_notebook(&env, env.db.to_str().unwrap());
}

/// T20 F3: the layout `init --db-path data/results.db` writes (the file at
/// the project's root, the database one directory down) was not found from a
/// notebook elsewhere: the nearest `dbbackup.yaml` above the database that
/// names it is read.
#[test]
fn the_projects_configuration_above_the_database_is_read_from_another_directory() {
    let env = Env::empty();
    let data = env.path("data");
    fs::create_dir(&data).unwrap();
    let db = data.join("results.db");
    make_ledger_db(&db, 20, false);
    fs::write(
        env.path("dbbackup.yaml"),
        "db_path: data/results.db\nbackup_dir: project-backups\n",
    )
    .unwrap();
    back_up_from_a_notebook(&env, "../data/results.db");
}

/// T20 F5: the project's file found from elsewhere, without `backup_dir`:
/// the default went to the caller's directory (`./outputs/db_backups`), not
/// the project's. The path defaults are the file's directory's then.
#[test]
fn the_path_defaults_of_a_configuration_found_from_elsewhere_are_the_projects() {
    let env = Env::new();
    fs::write(env.path("dbbackup.yaml"), "db_path: results.db\n").unwrap();
    let elsewhere = env.path("notebooks");
    fs::create_dir(&elsewhere).unwrap();
    bare(
        &elsewhere,
        &["--db-path", env.db.to_str().unwrap(), "backup"],
    )
    .ok();
    assert!(!elsewhere.join("outputs").exists());
    assert!(!elsewhere.join("slrm_logs").exists());
    assert!(env.path("outputs/db_backups").is_dir());
}

/// T28 F14: a file saved with a byte-order mark (Windows editors; YAML
/// allows one) was refused as "unknown key db_path (did you mean db_path?)".
/// Read as it means, CRLF line ends too.
#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_read_past() {
    let env = Env::new();
    let text = format!(
        "\u{feff}db_path: {}\r\nbackup_dir: {}\r\nmax_backups: 3\r\n",
        env.db.display(),
        env.backups.display()
    );
    let config = write_config(&env, &text);
    let run = bare(
        env.root.path(),
        &["--config", config.to_str().unwrap(), "backup"],
    );
    run.ok();
    assert_eq!(env.backup_files().len(), 1);
}

/// T28 F20: `mirror_dirs: [~]` made every backup a copy in the home
/// directory itself, silently (a bare `~` is YAML's null; as a list item it
/// arrived as the text `~`); so did `~/`, `--mirror-dir '~'` and the
/// variable. Refused, naming what to write.
#[test]
fn the_home_directory_itself_as_a_mirror_is_refused() {
    let env = Env::new();
    let home = env.path("home");
    fs::create_dir_all(&home).unwrap();
    let said = format!(
        "mirror directory {} is your home directory itself; give a directory for the copies (`~/NAME`), or leave the mirror out",
        home.display()
    );
    let mut runs: Vec<std::process::Command> = Vec::new();
    for text in [
        "mirror_dirs:\n  - ~\n",
        "mirror_dirs: [~]\n",
        "mirror_dirs: [\"~/\"]\n",
    ] {
        let config = write_config(&env, text);
        let mut command = env.command();
        command.arg("--config").arg(&config).arg("backup");
        runs.push(command);
    }
    let mut flag = env.command();
    flag.args(["--mirror-dir", "~", "backup"]);
    runs.push(flag);
    let mut variable = env.command();
    variable.env("DBBACKUP_MIRROR_DIRS", "~/").arg("backup");
    runs.push(variable);
    for mut command in runs {
        let run: Run = command.env("HOME", &home).output().unwrap().into();
        run.failed_with(2, &said);
        assert!(env.backup_files().is_empty());
        assert_eq!(fs::read_dir(&home).unwrap().count(), 0);
    }
}

/// T28 F15: a pasted 5000-digit value was echoed whole (twice) in the
/// one-line error: a 5100-character line. Each over-long word is said by its
/// ends and its length; the line still names the key and the file's line.
#[test]
fn an_over_long_value_is_shortened_in_the_one_line_error() {
    let env = Env::new();
    let digits = "9".repeat(5000);
    let config = write_config(&env, &format!("check:\n  max_age: {digits}h\n"));
    let run = env.run(&["--config", config.to_str().unwrap(), "backup"]);
    run.failed_with(2, "line 2: check.max_age: '999");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.len() < 600, "{}", run.stderr);
    assert!(
        run.stderr.contains("…(5003 characters in all)…"),
        "{}",
        run.stderr
    );
    // The line quoted is cut, and says so (T29b N6).
    assert!(run.stderr.trim_end().ends_with("99999…)"), "{}", run.stderr);
    let flag = env.run(&["--compression-level", &digits, "backup"]);
    assert_eq!(flag.code, 2);
    assert!(flag.stderr.len() < 600, "{}", flag.stderr);
    // And an error while working (T29 F6): a name no backup has.
    let name = "b".repeat(3000);
    fs::create_dir_all(&env.backups).unwrap();
    let restore = env.run(&["restore", &name, "--target", "x.db"]);
    assert_eq!(restore.code, 1);
    assert!(restore.stderr.len() < 800, "{}", restore.stderr);
    assert!(
        restore.stderr.contains("(3002 characters in all)"),
        "{}",
        restore.stderr
    );
    assert!(env.backup_files().is_empty());
}
