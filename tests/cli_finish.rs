//! Issue 23: the small things a new user trips on, each as the user meets it.

use crate::common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Every `DBBACKUP_*` variable that is no setting's is named once, with the
/// variable meant where there is one; the templates' and the test suite's own
/// variables are not warned about.
#[test]
fn every_unknown_dbbackup_variable_is_named_and_the_test_suites_are_not() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let run: Run = env
        .command()
        .env("DBBACKUP_MIN_FREE", "1G")
        .env("DBBACKUP_FOO", "1")
        .env("DBBACKUP_QUICK", "1")
        .env("DBBACKUP_MOTO_SERVER", "/x")
        .env("DBBACKUP_REQUIRE_TOOLS", "1")
        .env("DBBACKUP_FINAL", "0")
        .env("DBBACKUP_FINAL_SCRIPT", "x")
        .arg("list")
        .output()
        .unwrap()
        .into();
    run.ok();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{}", run.stderr);
    assert!(
        warnings[0].ends_with("DBBACKUP_FOO is not a dbbackup variable; ignored"),
        "{}",
        run.stderr
    );
    assert!(
        warnings[1].ends_with(
            "DBBACKUP_MIN_FREE is not a dbbackup variable (did you mean DBBACKUP_CHECK_MIN_FREE?); ignored"
        ),
        "{}",
        run.stderr
    );
}

/// `${SCRATCH:-/tmp}` in a config path was cut at its `/` in the message
/// (`write ${SCRATCH:- out in full`): the key and the whole shell syntax are
/// named, with the variable a shell would expand, and every command refuses
/// it before anything is made.
#[test]
fn shell_syntax_in_a_config_path_is_named_whole_with_its_key() {
    let env = Env::new();
    std::fs::write(
        env.path("dbbackup.yaml"),
        "max_backups: 3\nbackup_dir: ${SCRATCH:-/tmp}/b\n",
    )
    .unwrap();
    let says = "error: config file dbbackup.yaml line 2: `backup_dir` contains shell syntax `${SCRATCH:-/tmp}`; dbbackup does not expand it: write the path, or use DBBACKUP_BACKUP_DIR=...\n";
    for args in [
        &["backup"][..],
        &["list"],
        &["check"],
        &["templates", "--out", "s"],
    ] {
        let run: Run = env
            .command()
            .env_remove("DBBACKUP_BACKUP_DIR")
            .args(args)
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr, says, "{args:?}");
    }
    let run = env.run(&[
        "--backup-dir",
        "${SCRATCH:-/tmp}/b",
        "init",
        "--path",
        "n.yaml",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: --backup-dir contains shell syntax `${SCRATCH:-/tmp}`; dbbackup does not expand it: write the path\n"
    );
    let made: Vec<String> = std::fs::read_dir(env.path(""))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "results.db" && name != "dbbackup.yaml")
        .collect();
    assert!(made.is_empty(), "{made:?}");
}

/// `--config results.db` (the database's flag mistaken) said the file was not
/// UTF-8: it names the database and the flag meant.
#[test]
fn a_database_given_as_the_config_names_the_flag_meant() {
    let env = Env::new();
    let run = env.run(&["--config", "results.db", "list"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: results.db is an SQLite database, not a config file; did you mean --db-path results.db?\n"
    );
    let run: Run = env
        .command()
        .env("DBBACKUP_CONFIG", "results.db")
        .arg("list")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: results.db is an SQLite database, not a config file (DBBACKUP_CONFIG); did you mean DBBACKUP_DB_PATH=results.db?\n"
    );
}

/// `restore lastest`: clap suggests commands, not backup names; a name close
/// to `latest` or to a backup gets the one meant, a name close to none nothing.
#[test]
fn a_backup_name_close_to_latest_or_to_a_backup_names_the_one_meant() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let name = env.backup_files().pop().unwrap();
    let dir = env.backups.display().to_string();
    for args in [
        &["restore", "lastest"][..],
        &["verify", "lastest"],
        &["export", "lastest", "--out", "e.db.gz"],
    ] {
        env.run(args).failed_with(
            1,
            &format!(
                "no backup named 'lastest' in {dir}; did you mean 'latest'? (see `dbbackup list`)"
            ),
        );
    }
    let typo = name.replacen("backup_", "bakup_", 1);
    env.run(&["restore", &typo]).failed_with(
        1,
        &format!("no backup named '{typo}' in {dir}; did you mean '{name}'? (see `dbbackup list`)"),
    );
    env.run(&["restore", "yesterday"]).failed_with(
        1,
        &format!("no backup named 'yesterday' in {dir} (see `dbbackup list`)"),
    );
    // T25 #5: in capitals, or without the `.db.gz` ending.
    env.run(&["verify", "LATEST"]).failed_with(
        1,
        &format!("no backup named 'LATEST' in {dir}; did you mean 'latest'? (see `dbbackup list`)"),
    );
    let stem = name.trim_end_matches(".db.gz");
    env.run(&["restore", stem, "--target", "t.db"]).failed_with(
        1,
        &format!("no backup named '{stem}' in {dir}; did you mean '{name}'? (see `dbbackup list`)"),
    );
}

/// A command's option before the command (`dbbackup --force restore latest`)
/// was "unexpected argument": it is named as the command's, with the line
/// that gives it after the command; nothing is done.
#[test]
fn a_commands_option_before_the_command_says_where_it_belongs() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    for (args, line) in [
        (
            &["--force", "restore", "latest"][..],
            "error: --force is an option of 'restore': put it after the command: dbbackup restore --force latest (see 'dbbackup restore --help')\n",
        ),
        (
            &["--target", "t.db", "restore", "latest"],
            "error: --target is an option of 'restore': put it after the command: dbbackup restore --target t.db latest (see 'dbbackup restore --help')\n",
        ),
        (
            &["--dry-run", "prune"],
            "error: --dry-run is an option of 'prune': put it after the command: dbbackup prune --dry-run (see 'dbbackup prune --help')\n",
        ),
        (
            &["--format=json", "lock", "status"],
            "error: --format is an option of 'lock status': put it after the command: dbbackup lock status --format=json (see 'dbbackup lock status --help')\n",
        ),
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr, line, "{args:?}");
    }
    assert!(!env.path("t.db").exists());
    // The line it gives works.
    env.run(&["restore", "--target", "t.db", "latest"]).ok();
    assert_eq!(content_digest(&env.path("t.db")), content_digest(&env.db));
}

/// `man --out DIR` wrote over existing pages without a word: like `templates
/// --out` and `init`, an existing file is refused (exit 1) unless
/// `--overwrite`, and nothing is written unless all can be — `templates` too.
#[test]
fn man_and_templates_out_refuse_existing_files_unless_overwrite() {
    let env = Env::new();
    let dir = env.path("man1");
    std::fs::create_dir(&dir).unwrap();
    let mine = dir.join("dbbackup-restore.1");
    std::fs::write(&mine, "mine").unwrap();
    let out = dir.to_str().unwrap();
    // A refusal the command line settles (`--overwrite`): exit 2, as `init`.
    env.run(&["man", "--out", out]).failed_with(
        2,
        &format!("{} exists; use --overwrite to replace it", mine.display()),
    );
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
    assert!(!dir.join("dbbackup.1").exists(), "nothing written");
    env.run(&["man", "--out", out, "--overwrite"]).ok();
    assert!(std::fs::read_to_string(&mine).unwrap().contains(".TH"));
    assert!(dir.join("dbbackup.1").is_file());

    let slurm = env.path("s");
    env.run(&["templates", "--out", "s"]).ok();
    // The first file written missing, the others there.
    std::fs::remove_file(slurm.join("hooks/dbbackup_hooks.sh")).unwrap();
    env.run(&["templates", "--out", "s"])
        .failed_with(2, "exists; use --overwrite to replace it");
    assert!(
        !slurm.join("hooks/dbbackup_hooks.sh").exists(),
        "nothing written"
    );
}

/// T23 #18: `--target` is relative to the working directory, the config's
/// paths to the config file. `--config ../a/dbbackup.yaml restore latest
/// --target results.db` run in project b replaces b's database (as CLIs do):
/// the user is told so by full paths, and where b's previous content went
/// (among a's backups), so it can be undone.
#[test]
fn a_target_that_is_not_the_configured_database_is_named_with_where_its_undo_went() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    make_ledger_db(&a.join("results.db"), 50, false);
    make_ledger_db(&b.join("results.db"), 80, false);
    let b_before = content_digest(&b.join("results.db"));
    fs::write(
        a.join("dbbackup.yaml"),
        "db_path: results.db\nbackup_dir: backups\n",
    )
    .unwrap();
    bare(&a, &["backup"]).ok();
    let run = bare(
        &b,
        &[
            "--config",
            "../a/dbbackup.yaml",
            "restore",
            "latest",
            "--target",
            "results.db",
        ],
    );
    run.ok();
    assert_eq!(
        content_digest(&b.join("results.db")),
        content_digest(&a.join("results.db"))
    );
    let undo = backup_files_in(&a.join("backups"))
        .into_iter()
        .find(|name| {
            run.stdout
                .contains(&format!("previous content saved as {name}"))
        })
        .unwrap_or_else(|| panic!("no undo copy named: {}", run.stdout));
    let real = |p: &Path| fs::canonicalize(p).unwrap().display().to_string();
    let warning = format!(
        ": --target results.db replaced {}, which is not the configured database {} (config {}): its previous content is in {} as {undo}, listed there as another database's\n",
        real(&b.join("results.db")),
        real(&a.join("results.db")),
        real(&a.join("dbbackup.yaml")),
        real(&a.join("backups")),
    );
    let warn_lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(" WARN "))
        .collect();
    assert_eq!(warn_lines.len(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(&warning), "{warning}\n{}", run.stderr);
    // The undo copy holds b's content.
    let restored_undo = gunzip_to(&a.join("backups").join(&undo), &root.path().join("undo.db"));
    assert_eq!(content_digest(&restored_undo), b_before);
    // Into a new file, or over the configured database by another name: no warning.
    let run = bare(&a, &["restore", "latest", "--target", "copy.db"]);
    run.ok();
    let run2 = bare(
        &a,
        &["restore", "latest", "--target", "./results.db", "--force"],
    );
    run2.ok();
    for run in [run, run2] {
        assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
    }
}

/// T25 #11: `init --path sub/dir/x.yaml` ended with "next: `dbbackup
/// backup`", which reads no such file: the next commands name it. The hint
/// is followed here, and works.
#[test]
fn init_elsewhere_names_the_config_in_its_next_commands() {
    let env = Env::new();
    let run = bare(
        env.path("").as_path(),
        &[
            "--db-path",
            "results.db",
            "init",
            "--path",
            "sub/dir/x.yaml",
        ],
    );
    run.ok();
    assert!(
        run.stdout.ends_with(&format!("next: edit it, then `dbbackup --config sub/dir/x.yaml backup` and `dbbackup --config sub/dir/x.yaml list` (or export DBBACKUP_CONFIG={}): without --config, dbbackup reads ./dbbackup.yaml\n", env.path("sub/dir/x.yaml").display())),
        "{}",
        run.stdout
    );
    bare(
        env.path("").as_path(),
        &["--config", "sub/dir/x.yaml", "backup"],
    )
    .ok();
    let list = bare(
        env.path("").as_path(),
        &["--config", "sub/dir/x.yaml", "list"],
    );
    list.ok();
    assert_eq!(list.stdout.lines().count(), 2, "{}", list.stdout);
    let here = bare(
        env.path("").as_path(),
        &[
            "--db-path",
            "results.db",
            "init",
            // T27 F-B: `--out`, as the other commands that write a file say.
            "--out",
            "./dbbackup.yaml",
        ],
    );
    here.ok();
    assert!(
        here.stdout
            .ends_with("next: edit it, then `dbbackup backup` and `dbbackup list`\n"),
        "{}",
        here.stdout
    );
}

/// T25 review: the `next:` hint quoted only whitespace and quotes, so a path
/// with `(`, `;` or `&` broke the command pasted from it; and with
/// `DBBACKUP_CONFIG` set, "without --config, dbbackup reads ./dbbackup.yaml"
/// was untrue. The hint is run here by a real shell, as pasted.
#[test]
fn init_hint_is_one_shell_word_and_names_dbbackup_config_when_set() {
    let env = Env::new();
    let root = env.path("");
    let path = "run (1); a&b/x.yaml";
    fs::create_dir_all(root.join("run (1); a&b")).unwrap();
    let mut command = Command::new(BIN);
    without_inherited_settings(&mut command);
    // Another project's file, exported: its backup directory must not be copied.
    let elsewhere = root.join("other.yaml");
    fs::write(
        &elsewhere,
        "db_path: results.db\nbackup_dir: /elsewhere/db_backups\nmax_backups: 77\n",
    )
    .unwrap();
    let run: Run = command
        .current_dir(&root)
        .env("DBBACKUP_CONFIG", &elsewhere)
        .args([
            "--db-path",
            env.db.to_str().unwrap(),
            "init",
            "--path",
            path,
        ])
        .output()
        .unwrap()
        .into();
    run.ok();
    let written = fs::read_to_string(root.join(path)).unwrap();
    assert!(
        !written.contains("/elsewhere") && !written.contains("77"),
        "{written}"
    );
    let hint = run.stdout.lines().last().unwrap().to_string();
    assert_eq!(
        hint,
        format!(
            "next: edit it, then `dbbackup --config 'run (1); a&b/x.yaml' backup` and `dbbackup --config 'run (1); a&b/x.yaml' list` (or export DBBACKUP_CONFIG='{}'): without --config, dbbackup reads DBBACKUP_CONFIG={}, set here",
            root.join(path).display(),
            elsewhere.display()
        )
    );
    let pasted = hint.split('`').nth(1).unwrap().replacen("dbbackup", BIN, 1);
    let shell = Command::new("sh")
        .arg("-c")
        .arg(&pasted)
        .current_dir(&root)
        .env_remove("DBBACKUP_CONFIG")
        .output()
        .unwrap();
    assert!(shell.status.success(), "{pasted}: {shell:?}");
    let list = bare(&root, &["--config", path, "list"]);
    list.ok();
    assert_eq!(list.stdout.lines().count(), 2, "{}", list.stdout);
    // DBBACKUP_CONFIG naming the file written: the short form.
    let mut command = Command::new(BIN);
    without_inherited_settings(&mut command);
    let same: Run = command
        .current_dir(&root)
        .env("DBBACKUP_CONFIG", root.join("y.yaml"))
        .args(["--db-path", "results.db", "init", "--path", "y.yaml"])
        .output()
        .unwrap()
        .into();
    same.ok();
    assert!(
        same.stdout
            .ends_with("next: edit it, then `dbbackup backup` and `dbbackup list`\n"),
        "{}",
        same.stdout
    );
}

/// T25 #6: `man --out DIR` made a missing directory chain without a word (a
/// typo such as `man/mna1` left a tree where man never looks): it says so.
#[test]
fn man_out_says_when_it_created_the_directory() {
    let env = Env::new();
    let run = env.run(&["man", "--out", "share/man/mna1"]);
    run.ok();
    assert!(
        run.stdout
            .starts_with("created directory share/man/mna1\nwrote share/man/mna1/dbbackup.1\n"),
        "{}",
        run.stdout
    );
    let again = env.run(&["man", "--out", "share/man/mna1", "--overwrite"]);
    again.ok();
    assert!(again.stdout.starts_with("wrote "), "{}", again.stdout);
    // A file where the directory goes: said so, not mkdir's "File exists"
    // (T30 F7); likewise the summary log's directory.
    fs::write(env.path("afile"), "x").unwrap();
    env.run(&["man", "--out", "afile"]).failed_with(
        2,
        "--out afile is not a directory: give the directory the man pages go in",
    );
    env.run(&["--summary-log", "afile/x.log", "summary"])
        .failed_with(
            1,
            "cannot write summary log afile/x.log: afile is not a directory",
        );
}

/// T27 F-N: an exported `DBBACKUP_CONFIG` (another project's, from a profile)
/// is read instead of this directory's `dbbackup.yaml`, and an exported
/// `DBBACKUP_DB_PATH` instead of the file's `db_path`: every command says so,
/// or "unchanged" and a healthy `check` read as if about this database.
#[test]
fn an_exported_config_or_database_read_instead_of_this_directorys_is_said() {
    let (a, b) = (Env::new(), Env::new());
    a.configured().arg("backup").output().unwrap();
    b.configured().arg("backup").output().unwrap();
    crate::common::add_row_ledger(&b.db);
    let a_config = a.path("dbbackup.yaml");
    let exported = |args: &[&str]| -> Run {
        b.configured()
            .env("DBBACKUP_CONFIG", &a_config)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let warning = format!(
        "DBBACKUP_CONFIG={} is read, not ./dbbackup.yaml here: `unset DBBACKUP_CONFIG` (or give --config dbbackup.yaml) to use this directory's",
        a_config.display()
    );
    for command in ["backup", "check"] {
        let run = exported(&[command]);
        run.ok();
        assert!(run.stderr.contains(&warning), "{command}: {}", run.stderr);
    }
    // Given on purpose, or naming this very file: nothing to say.
    let here = exported(&["--config", "dbbackup.yaml", "backup"]);
    here.ok();
    assert!(!here.stderr.contains("DBBACKUP_CONFIG"), "{}", here.stderr);
    assert!(here.stdout.starts_with("created "), "{}", here.stdout);
    let run: Run = b
        .configured()
        .env("DBBACKUP_DB_PATH", &a.db)
        .arg("list")
        .output()
        .unwrap()
        .into();
    run.ok();
    assert!(
        run.stderr.contains(&format!(
            "DBBACKUP_DB_PATH={} is used, not {} (db_path in dbbackup.yaml)",
            a.db.display(),
            b.db.display()
        )),
        "{}",
        run.stderr
    );
    // T27b F13: any exported setting the file sets otherwise (retention!);
    // F5: not another name of the same file.
    std::os::unix::fs::symlink(&b.db, b.path("link.db")).unwrap();
    let mut config = fs::read_to_string(b.path("dbbackup.yaml")).unwrap();
    config.push_str("max_backups: 10\nmirror_dirs: [m1, m2]\ncheck:\n  max_age: 1d\n");
    fs::write(b.path("dbbackup.yaml"), config).unwrap();
    let run: Run = b
        .configured()
        .env("DBBACKUP_DB_PATH", b.path("link.db"))
        .env("DBBACKUP_MAX_BACKUPS", "1")
        .env("DBBACKUP_MIRROR_DIRS", "m3:m4")
        .env("DBBACKUP_CHECK_MAX_AGE", "3h")
        .arg("check")
        .output()
        .unwrap()
        .into();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| {
            l.split_once("WARN ")
                .map(|(_, w)| w.split_once(": ").map_or(w, |(_, m)| m))
        })
        .collect();
    assert_eq!(
        warnings,
        [
            "DBBACKUP_MAX_BACKUPS=1 is used, not 10 (max_backups in dbbackup.yaml)",
            // As set, not as YAML (`- m3 - m4`, T30 F4).
            "DBBACKUP_MIRROR_DIRS=m3:m4 is used, not [m1, m2] (mirror_dirs in dbbackup.yaml)",
            "DBBACKUP_CHECK_MAX_AGE=3h is used, not 1d (check: max_age in dbbackup.yaml)",
        ],
        "{}",
        run.stderr
    );
}

/// T27b F9: from a subdirectory of a project, `backup` said only "no database
/// given" and `list` that `outputs/db_backups` does not exist. The project's
/// file above is named (not read: it could be anyone's), with how to use it.
#[test]
fn from_a_subdirectory_the_projects_file_above_is_named() {
    let env = Env::new();
    env.configured().arg("backup").output().unwrap();
    let sub = env.path("analysis/plots");
    fs::create_dir_all(&sub).unwrap();
    let config = env.path("dbbackup.yaml");
    let said = format!(
        "no dbbackup.yaml in {}; {} is not read from a subdirectory: run from {}, or give --config {}",
        sub.display(),
        config.display(),
        env.root.path().display(),
        config.display()
    );
    let backup = bare(&sub, &["backup"]);
    assert_eq!(backup.code, 2, "{}", backup.stderr);
    assert!(backup.stderr.contains(&said), "{}", backup.stderr);
    assert!(bare(&sub, &["list"]).stderr.contains(&said));
    // As said: the project's backup, its restore point listed.
    let given = bare(
        &sub,
        &["--config", config.to_str().unwrap(), "backup", "--force"],
    );
    given.ok();
    assert!(
        !given.stderr.contains("not read from a subdirectory"),
        "{}",
        given.stderr
    );
    let list = bare(&sub, &["--config", config.to_str().unwrap(), "list"]);
    assert_eq!(list.stdout.matches("backup_").count(), 2, "{}", list.stdout);
    // Settings given another way: nothing to say.
    let flags = bare(&sub, &["--db-path", env.db.to_str().unwrap(), "list"]);
    assert!(
        !flags.stderr.contains("not read from a subdirectory"),
        "{}",
        flags.stderr
    );
}

/// T28 F5: another project's `DBBACKUP_CONFIG`, exported, in a directory
/// without its own file: `backup` answered "skipped: database unchanged"
/// about that project's database while this directory's `results.db` was
/// never backed up, and `--db-path` sent this database's backups into that
/// project's backup directory, silently.
#[test]
fn another_projects_exported_config_is_said_where_there_is_no_file() {
    let (a, b) = (Env::new(), Env::new());
    a.configured().arg("backup").output().unwrap();
    let a_config = a.path("dbbackup.yaml");
    let exported = |args: &[&str]| -> Run {
        let mut command = Command::new(BIN);
        without_inherited_settings(&mut command);
        command
            .current_dir(b.root.path())
            .env("DBBACKUP_CONFIG", &a_config)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let run = exported(&["backup"]);
    run.ok();
    let said = format!(
        "DBBACKUP_CONFIG={} is read here: its database is {}, not ./results.db in this directory; `unset DBBACKUP_CONFIG` (then `dbbackup init` here) for this one",
        a_config.display(),
        a.db.display()
    );
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    let run = exported(&["--db-path", "results.db", "backup"]);
    run.ok();
    let said = format!(
        "--db-path results.db is backed up with the settings of DBBACKUP_CONFIG={}, made for {}: into its backup directory {}",
        a_config.display(),
        a.db.display(),
        a.backups.display()
    );
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    // A database of that project, or its own: nothing to say.
    let run = exported(&["--db-path", a.db.to_str().unwrap(), "list"]);
    assert!(!run.stderr.contains("DBBACKUP_CONFIG="), "{}", run.stderr);
}

/// T28 F12: `restore --target` replaced another project's configured
/// database without `--force` (a WARN after the fact), its undo copy in this
/// project's backup directory, where that project never looks. Refused
/// without `--force`, nothing changed.
#[test]
fn restore_target_refuses_another_projects_database_without_force() {
    let (a, b) = (Env::new(), Env::new());
    a.configured().arg("backup").output().unwrap();
    b.configured().arg("backup").output().unwrap();
    let before = fs::read(&b.db).unwrap();
    let target = b.db.to_str().unwrap();
    let run: Run = a
        .configured()
        .args(["restore", "latest", "--target", target])
        .output()
        .unwrap()
        .into();
    run.failed_with(
        1,
        &format!(
            "{target} is the database of another project ({} names it); refusing to replace it without --force (its own restore points: `dbbackup --config {} list`); nothing was changed",
            b.path("dbbackup.yaml").display(),
            b.path("dbbackup.yaml").display()
        ),
    );
    assert_eq!(fs::read(&b.db).unwrap(), before);
    // Reached through `..`: the project's file is named by its own path (T28b).
    let roundabout = a
        .root
        .path()
        .join("..")
        .join(b.root.path().file_name().unwrap())
        .join(b.db.file_name().unwrap());
    let run: Run = a
        .configured()
        .args([
            "restore",
            "latest",
            "--target",
            roundabout.to_str().unwrap(),
        ])
        .output()
        .unwrap()
        .into();
    run.failed_with(
        1,
        &format!(
            "is the database of another project ({} names it)",
            fs::canonicalize(b.path("dbbackup.yaml")).unwrap().display()
        ),
    );
    assert_eq!(fs::read(&b.db).unwrap(), before);
    let run: Run = a
        .configured()
        .args(["restore", "latest", "--target", target, "--force"])
        .output()
        .unwrap()
        .into();
    run.ok();
    assert_eq!(content_digest(&b.db), content_digest(&a.db));
    // A copy of one's own (no project names it): no --force needed.
    let copy = a.path("copy.db");
    fs::copy(&b.db, &copy).unwrap();
    let run: Run = a
        .configured()
        .args(["restore", "latest", "--target", copy.to_str().unwrap()])
        .output()
        .unwrap()
        .into();
    run.ok();
}

/// T28 F3: `export` needed NAME on the command line while `verify` (and the
/// Python `export()`) take the newest without one. Without NAME it exports
/// `latest`: gzip reads it, and its database is the newest restore point's.
#[test]
fn export_without_a_name_writes_the_newest_restore_point() {
    let env = Env::new();
    env.run(&["backup", "--force"]).ok();
    let out = env.path("copy.db.gz");
    let run = env.run(&["export", "--out", out.to_str().unwrap()]);
    run.ok();
    let newest = env.backup_files().pop().unwrap();
    assert!(run.stdout.contains(&newest), "{}", run.stdout);
    let zcat = Command::new("zcat").arg(&out).output().unwrap();
    assert!(zcat.status.success());
    let plain = env.path("copy.db");
    fs::write(&plain, zcat.stdout).unwrap();
    assert_eq!(content_digest(&plain), content_digest(&env.db));
}

/// T30 F9: ESC and a line break in a NAME were escaped in the error line,
/// other control characters (`\x01`) reached the terminal raw.
#[test]
fn control_characters_in_a_name_reach_no_terminal_raw() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let run = env.run(&["verify", "backup_\u{1b}[2J\u{1}.db.gz"]);
    run.failed_with(1, "no backup named 'backup_\\u{1b}[2J\\u{1}.db.gz'");
    assert!(
        !run.stderr.chars().any(|c| c.is_control() && c != '\n'),
        "{:?}",
        run.stderr
    );
}

/// T30 F6: the same "unchanged" skip was `"reason": "unchanged"` with
/// `newest` from `backup`, and a sentence without `newest` from `auto`.
#[test]
fn auto_and_backup_give_one_skip_reason_code() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let newest = env.backup_files()[0].clone();
    let backup = env.run(&["backup", "--format", "json"]).json();
    let auto = env
        .run(&["--min-interval-hours", "0", "auto", "--format", "json"])
        .json();
    for document in [&backup, &auto] {
        assert_eq!(document["status"], "skipped", "{document}");
        assert_eq!(document["reason"], "unchanged", "{document}");
        assert_eq!(document["newest"], newest.as_str(), "{document}");
    }
    assert_eq!(
        auto["detail"],
        format!("database unchanged since {newest}").as_str()
    );
    let recent = env.run(&["auto", "--format", "json"]).json();
    assert_eq!(recent["reason"], "interval", "{recent}");
    assert!(recent.get("newest").is_none(), "{recent}");
}
