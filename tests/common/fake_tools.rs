//! Stand-ins for site tools (`sbatch`, `scontrol`, `sacct`, `lfs`...): shell
//! scripts in a directory put first on the `PATH` of the program under test.

use std::fs;
use std::path::{Path, PathBuf};

/// Write `script` as the executable `bin/name`, creating `bin`; returns its path.
pub(crate) fn fake_tool(bin: &Path, name: &str, script: &str) -> PathBuf {
    fs::create_dir_all(bin).unwrap();
    let path = bin.join(name);
    fs::write(&path, script).unwrap();
    super::chmod(&path, 0o755);
    path
}

/// The test run's `PATH` with `bin` first, so its fake tools are found first.
pub(crate) fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
