//! Leftovers of trials 5 and 8: size and duration units as documented, `init
//! --slurm` that writes nothing when it refuses, `init` paths written tidy.

use std::fs;

use crate::common::*;

/// T8 #8: `GB` reads as 10^9 bytes to some and 2^30 to others: refused, naming
/// the spellings that are read; `G`, `g`, `Gi`, `GiB` are all 2^30, and `w` is
/// a week, as README and `check --help` now say.
#[test]
fn sizes_in_gb_are_refused_as_ambiguous_and_binary_spellings_agree() {
    let env = Env::new();
    env.run(&["backup"]).ok();
    let refused = env.run(&["check", "--min-free", "5GB"]);
    refused.failed_with(
        2,
        "'5GB' is ambiguous (GB is a power of 1000 to some tools, of 1024 to others): \
         write 5G or 5GiB for powers of 1024 (500M, 1G)",
    );
    fs::write(env.path("dbbackup.yaml"), "check:\n  min_free: 2mb\n").unwrap();
    env.run(&["--config", "dbbackup.yaml", "check"])
        .failed_with(2, "'2mb' is ambiguous");
    fs::remove_file(env.path("dbbackup.yaml")).unwrap();
    for same in ["1K", "1k", "1Ki", "1KiB"] {
        let run = env.run(&["check", "--min-free", same, "--format", "json"]);
        run.ok();
        let free = run.json()["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "free")
            .unwrap()
            .clone();
        assert!(
            free["detail"].as_str().unwrap().ends_with("(min 1.0 KiB)"),
            "{same}: {free}"
        );
    }
    let week = env.run(&["check", "--max-age", "1w"]);
    week.ok();
    assert!(week.stdout.contains("(max 7d 0h)"), "{}", week.stdout);
    let help = env.run(&["check", "--help"]);
    assert!(help.stdout.contains("7d, 2w)"), "{}", help.stdout);
    assert!(help.stdout.contains("powers of 1024"), "{}", help.stdout);
}

/// `init --slurm` where the templates exist: refused (exit 2) before the
/// config file is written, so the rerun with the right flag is not refused
/// for the file the failed run left.
#[test]
fn init_slurm_over_existing_templates_writes_no_config_file() {
    let env = Env::new();
    env.run(&["templates"]).ok();
    let refused = env.run(&["init", "--slurm"]);
    refused.failed_with(2, "exists; use --overwrite to replace it");
    assert!(
        !env.path("dbbackup.yaml").exists(),
        "no config written: {}",
        refused.stdout
    );
    assert_eq!(refused.stdout, "", "nothing said written");
    env.run(&["init"]).ok();
    assert!(env.path("dbbackup.yaml").exists());
}

/// T5 #15: `init --config ../old/dbbackup.yaml` in `new/` wrote
/// `db_path: ../old/../data/results.db`: now `../data/results.db`. A `..`
/// after a symbolic link stays: it climbs from the link's target.
#[test]
fn init_writes_paths_from_another_config_tidy() {
    let env = Env::empty();
    for dir in ["old", "new", "data", "links"] {
        fs::create_dir(env.path(dir)).unwrap();
    }
    fs::write(
        env.path("old/dbbackup.yaml"),
        "db_path: ../data/results.db\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../old", env.path("links/old")).unwrap();
    for (config, expected) in [
        ("../old/dbbackup.yaml", "db_path: ../data/results.db"),
        (
            "../links/old/dbbackup.yaml",
            "db_path: ../links/old/../data/results.db",
        ),
    ] {
        let _ = fs::remove_file(env.path("new/dbbackup.yaml"));
        let run: Run = env
            .command()
            .current_dir(env.path("new"))
            .env_remove("DBBACKUP_DB_PATH")
            .env_remove("DBBACKUP_BACKUP_DIR")
            .args(["--config", config, "init"])
            .output()
            .unwrap()
            .into();
        run.ok();
        let written = fs::read_to_string(env.path("new/dbbackup.yaml")).unwrap();
        assert!(
            written.lines().any(|line| line == expected),
            "{config}: {written}"
        );
    }
}
