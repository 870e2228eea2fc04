//! The SLURM templates and hooks shipped in `slurm/`, filled in with absolute
//! paths for the project they are written for: the binary, the config, the
//! hooks, `--chdir` and `--output` (scrontab and cron start jobs in the home
//! directory, and a missing output directory fails a launch silently, so
//! `slrm_logs/` is created too).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Context, Error, Result, show};

/// (path under the output directory, content, executable)
pub(crate) const TEMPLATES: &[(&str, &str, bool)] = &[
    (
        "hooks/dbbackup_hooks.sh",
        include_str!("../../slurm/hooks/dbbackup_hooks.sh"),
        false,
    ),
    (
        "job_single.sbatch",
        include_str!("../../slurm/job_single.sbatch"),
        true,
    ),
    (
        "job_array.sbatch",
        include_str!("../../slurm/job_array.sbatch"),
        true,
    ),
    (
        "final_backup.sbatch",
        include_str!("../../slurm/final_backup.sbatch"),
        true,
    ),
    (
        "submit_array_with_final.sh",
        include_str!("../../slurm/submit_array_with_final.sh"),
        true,
    ),
    (
        "periodic.scrontab",
        include_str!("../../slurm/periodic.scrontab"),
        false,
    ),
    (
        "periodic.crontab",
        include_str!("../../slurm/periodic.crontab"),
        false,
    ),
];

/// Write every template under `out` for the project in the current directory,
/// naming each file to `written` as it is written. `config`: the config file the
/// jobs should read, if any.
pub(crate) fn write_all(
    out: &Path,
    config: Option<&Path>,
    overwrite: bool,
    mut written: impl FnMut(&Path),
) -> Result<()> {
    let out_dir = std::path::absolute(out).context(|| format!("cannot resolve {}", show(out)))?;
    let exe = std::env::current_exe().context(|| "cannot find the dbbackup binary")?;
    let config = match config {
        Some(config) => Some(
            std::path::absolute(config).context(|| format!("cannot resolve {}", show(config)))?,
        ),
        None => None,
    };
    let hooks = out_dir.join("hooks/dbbackup_hooks.sh");
    let project = std::env::current_dir().context(|| "cannot find the current directory")?;
    let logs = project.join("slrm_logs");
    crate::store::perms::create_dir_all(&logs)
        .context(|| format!("cannot create {}", show(&logs)))?;
    for (name, content, executable) in TEMPLATES {
        let path = out_dir.join(name);
        if path.exists() && !overwrite {
            return Err(Error::failed(format!(
                "{} exists; use --overwrite to replace it",
                show(&path)
            )));
        }
        let text = fill(content, &exe, config.as_deref(), &hooks, &out_dir, &project);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).context(|| format!("cannot create {}", show(parent)))?;
        }
        fs::write(&path, text).context(|| format!("cannot write {}", show(&path)))?;
        let mode = if *executable { 0o755 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .context(|| format!("cannot set mode of {}", show(&path)))?;
        written(&path);
    }
    Ok(())
}

/// Replace the templates' defaults and placeholders with absolute paths.
pub(crate) fn fill(
    content: &str,
    exe: &Path,
    config: Option<&Path>,
    hooks: &Path,
    out_dir: &Path,
    project: &Path,
) -> String {
    // The config line first: "/path/to/dbbackup" is a prefix of its placeholder.
    let mut text = content.to_string();
    let project_text = project.display().to_string();
    // sbatch jobs: run in the project, log under it, wherever they are submitted from.
    text = text.replace(
        "#SBATCH --output=slrm_logs/",
        &format!("#SBATCH --chdir={project_text}\n#SBATCH --output={project_text}/slrm_logs/"),
    );
    text = text.replace("/ABSOLUTE/PATH/TO/PROJECT", &project_text);
    if let Some(config) = config {
        text = text.replace(
            "/path/to/dbbackup periodic",
            &format!("/path/to/dbbackup --config {} periodic", config.display()),
        );
    }
    // The note on what to fill in no longer applies.
    text = text
        .lines()
        .filter(|line| !line.contains("FILL IN"))
        .map(|line| format!("{line}\n"))
        .collect();
    if let Some(config) = config {
        text = text.replace(
            "# export DBBACKUP_CONFIG=/path/to/dbbackup.yaml",
            &format!("export DBBACKUP_CONFIG={}", config.display()),
        );
    }
    text.replace(
        ": \"${DBBACKUP:=dbbackup}\"",
        &format!(": \"${{DBBACKUP:={}}}\"", exe.display()),
    )
    .replace(
        ": \"${DBBACKUP_HOOKS:=$SLURM_SUBMIT_DIR/slurm/hooks/dbbackup_hooks.sh}\"",
        &format!(": \"${{DBBACKUP_HOOKS:={}}}\"", hooks.display()),
    )
    .replace(
        "$SLURM_SUBMIT_DIR/slurm/",
        &format!("{}/", out_dir.display()),
    )
    .replace("/path/to/dbbackup", &exe.display().to_string())
}
