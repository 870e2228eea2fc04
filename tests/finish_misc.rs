//! Leftovers of trials 5 and 8: size and duration units as documented.

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
