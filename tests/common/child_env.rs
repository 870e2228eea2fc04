//! What a program under test inherits from the test run.

use std::process::Command;

/// Removes every `DBBACKUP_*` and `SLURM_*` variable the test run inherited:
/// a setting in the developer's shell, or the job id of a CI job that runs
/// inside SLURM, must not reach the program under test.
pub(crate) fn without_inherited_settings(command: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("DBBACKUP_") || key.starts_with("SLURM_") {
            command.env_remove(key.as_ref());
        }
    }
    command
}
