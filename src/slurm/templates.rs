//! The SLURM templates and hooks shim shipped in `slurm/`, filled in for the
//! project they are written for: the binary, the config and the final-job
//! script in the shell lines (shell-quoted), `--output` as an absolute path in
//! the `#SBATCH` lines (quoted when it holds a space; refused when a directive
//! cannot express it), and the USR1 lead time from this database's last
//! measured full backup. No `--chdir`: a job runs where it is submitted.
//! `slrm_logs/` is created, since a missing output directory fails a launch
//! without any output.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::config::Settings;
use crate::error::{Context, Error, Result, show};
use crate::store::{BackupDir, DbId};

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

/// The USR1 warning never comes less than this long before the time limit.
pub(crate) const LEAD_FLOOR: Duration = Duration::from_secs(300);

/// The paths and numbers the templates are filled in with.
pub(crate) struct Fill<'a> {
    pub exe: &'a Path,
    pub config: Option<&'a Path>,
    pub out_dir: &'a Path,
    pub project: &'a Path,
    /// The `--signal=B:USR1@N` lead time, and why it is that.
    pub lead: (u64, String),
}

/// Write every template under `out` for the project in the current directory,
/// naming each file to `written` as it is written.
pub(crate) fn write_all(
    out: &Path,
    settings: &Settings,
    overwrite: bool,
    written: impl FnMut(&Path),
) -> Result<()> {
    let mut new = crate::store::NewFiles::default();
    match prepare(out, settings, overwrite)?.write(&mut new, written) {
        Ok(()) => Ok(()),
        Err(error) => Err(new.undo(error)),
    }
}

/// The templates filled in and every refusal settled, nothing written yet:
/// `init --slurm` prepares them before writing its config file, so that a
/// refusal leaves nothing behind.
pub(crate) struct Prepared {
    out_dir: std::path::PathBuf,
    project: std::path::PathBuf,
    texts: Vec<(&'static str, String, bool)>,
}

/// Fill in every template for `out` and check that all can be written.
pub(crate) fn prepare(out: &Path, settings: &Settings, overwrite: bool) -> Result<Prepared> {
    let out_dir = std::path::absolute(out).context(|| format!("cannot resolve {}", show(out)))?;
    let exe = std::env::current_exe().context(|| "cannot find the dbbackup binary")?;
    let config = match settings.config_file.as_deref() {
        Some(config) => Some(
            std::path::absolute(config).context(|| format!("cannot resolve {}", show(config)))?,
        ),
        None => None,
    };
    let project = std::env::current_dir().context(|| "cannot find the current directory")?;
    let fill = Fill {
        exe: &exe,
        config: config.as_deref(),
        out_dir: &out_dir,
        project: &project,
        lead: usr1_lead(last_full_backup(settings)),
    };
    // Before anything is written: a path no template can express.
    let texts: Vec<(&'static str, String, bool)> = TEMPLATES
        .iter()
        .map(|(name, content, executable)| Ok((*name, fill_in(content, &fill)?, *executable)))
        .collect::<Result<_>>()?;
    // Before anything is written too: one file there means none is replaced
    // (a set half old, half new would not work together). A refusal the
    // command line settles: a usage error.
    if !overwrite
        && let Some(path) = texts
            .iter()
            .map(|(name, _, _)| out_dir.join(name))
            .find(|path| path.exists())
    {
        return Err(Error::usage(format!(
            "{} exists; use --overwrite to replace it",
            show(&path)
        )));
    }
    Ok(Prepared {
        out_dir,
        project,
        texts,
    })
}

impl Prepared {
    /// Write the templates, naming each file to `written` as it is written;
    /// `new`: the files created so far by the command (removed on a failure).
    pub(crate) fn write(
        self,
        new: &mut crate::store::NewFiles,
        mut written: impl FnMut(&Path),
    ) -> Result<()> {
        let logs = self.project.join("slrm_logs");
        crate::store::perms::create_dir_all(&logs)
            .context(|| format!("cannot create {}", show(&logs)))?;
        for (name, text, executable) in self.texts {
            let path = self.out_dir.join(name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).context(|| format!("cannot create {}", show(parent)))?;
            }
            // Whole or not at all, and the set too: a full disk part-way must
            // not leave files that refuse the retry.
            new.write(&path, 0o644, text.as_bytes())?;
            let mode = if executable { 0o755 } else { 0o644 };
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .context(|| format!("cannot set mode of {}", show(&path)))?;
            written(&path);
        }
        Ok(())
    }
}

/// The lead time for `--signal=B:USR1@N`: three times the last full backup of
/// this database (it grows while the job runs, and a busy filesystem slows
/// the copy), plus a minute to start and take the lock, rounded up to a
/// minute; never under `LEAD_FLOOR`. SLURM may send the warning up to 60 s
/// early, never late, so the error is on the safe side.
pub(crate) fn usr1_lead(measured: Option<f64>) -> (u64, String) {
    let floor = LEAD_FLOOR.as_secs();
    match measured {
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            let wanted = (seconds * 3.0 + 60.0).ceil() as u64;
            let lead = wanted.div_ceil(60) * 60;
            if lead > floor {
                (
                    lead,
                    format!(
                        "{lead} s: 3 x the last full backup ({seconds:.1} s) + 60 s, rounded up to a minute"
                    ),
                )
            } else {
                (
                    floor,
                    format!("{floor} s: the floor (the last full backup took {seconds:.1} s)"),
                )
            }
        }
        _ => (
            floor,
            format!(
                "{floor} s: the floor (no full backup of this database with a recorded duration yet; run `dbbackup templates --overwrite` after one)"
            ),
        ),
    }
}

/// How long this database's newest measured full backup took: its restore
/// points, newest first, full backups only; each one's own record (metadata
/// `duration_seconds`, any command that made it), else a summary line naming it
/// with `seconds=` (backups made before the metadata recorded it).
fn last_full_backup(settings: &Settings) -> Option<f64> {
    let db = settings.db_path.as_deref()?;
    let dir = BackupDir::new(&settings.backup_dir);
    let mut set = dir.set(&DbId::of(db)).ok()?;
    set.restore_points
        .sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
    let log = fs::read_to_string(&settings.summary_log).unwrap_or_default();
    let logged = |name: &str| {
        log.lines().rev().find_map(|line| {
            let fields = logfmt_fields(line);
            let field = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            if field("backup")? != name || field("type").is_some_and(|t| t == "diff") {
                return None;
            }
            field("seconds")?.parse::<f64>().ok()
        })
    };
    set.restore_points
        .iter()
        .filter(|e| !e.name.diff)
        .find_map(|e| {
            e.meta
                .as_ref()
                .ok()
                .and_then(|m| m.duration_seconds)
                .or_else(|| logged(&e.file_name))
        })
}

/// `key=value` pairs of a summary line (values may be double-quoted).
fn logfmt_fields(line: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = line.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().to_string();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        fields.push((key, value));
        rest = next.trim_start();
    }
    fields
}

/// `path` as one shell word: bare when it is plain, else single-quoted.
pub(crate) fn sh_quote(path: &Path) -> String {
    let text = path.display().to_string();
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@,=".contains(&b))
    {
        return text;
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `path` as the value of an `#SBATCH`/`#SCRON` option: quoted when it holds
/// whitespace (sbatch's directive parser takes double quotes); refused when
/// no directive can hold it.
/// `project` is checked, `rest` is the template's own (may hold `%j`).
fn directive_value(project: &str, rest: &str) -> Result<String> {
    if let Some(bad) = project
        .chars()
        .find(|c| matches!(c, '"' | '%' | '\\' | '\n' | '\r'))
    {
        return Err(Error::failed(format!(
            "cannot write the SLURM templates for {project:?}: an #SBATCH line cannot hold {bad:?} in a path; move the project or write --output by hand"
        )));
    }
    let path = format!("{project}{rest}");
    Ok(if path.chars().any(char::is_whitespace) {
        format!("\"{path}\"")
    } else {
        path
    })
}

/// Fill one template in; fails on a path a template cannot express.
pub(crate) fn fill_in(content: &str, fill: &Fill) -> Result<String> {
    let project = fill.project.display().to_string();
    for (what, path) in [("binary", Some(fill.exe)), ("config file", fill.config)] {
        // A crontab line ends at a '%'; no shell word holds a newline safely.
        if let Some(path) = path.map(|p| p.display().to_string())
            && path.contains(['%', '\n', '\r'])
        {
            return Err(Error::failed(format!(
                "cannot write the SLURM templates: the {what} path {path:?} holds '%' or a newline, which a crontab line cannot; move it"
            )));
        }
    }
    let mut text = String::new();
    for line in content.lines() {
        // The note on what to fill in no longer applies.
        if line.contains("FILL IN") {
            continue;
        }
        let filled = if let Some(rest) = line.strip_prefix("#SBATCH --output=slrm_logs/") {
            format!(
                "#SBATCH --output={}",
                directive_value(&project, &format!("/slrm_logs/{rest}"))?
            )
        } else if line.starts_with("#SBATCH --signal=B:USR1@") {
            let (lead, why) = &fill.lead;
            format!("# USR1 lead time {why}\n#SBATCH --signal=B:USR1@{lead}")
        } else if let Some(rest) = line.strip_prefix("#SCRON ")
            && let Some((option, value)) = rest.split_once('=')
            && value.contains("/ABSOLUTE/PATH/TO/PROJECT")
        {
            let rest = value.replace("/ABSOLUTE/PATH/TO/PROJECT", "");
            format!("#SCRON {option}={}", directive_value(&project, &rest)?)
        } else if line.contains("/path/to/dbbackup periodic") {
            let config = fill
                .config
                .map(|c| format!(" --config {}", sh_quote(c)))
                .unwrap_or_default();
            line.replace("\"/ABSOLUTE/PATH/TO/PROJECT\"", &sh_quote(fill.project))
                .replace(
                    "/path/to/dbbackup periodic",
                    &format!("{}{config} periodic", sh_quote(fill.exe)),
                )
        } else if line == "DBBACKUP=${DBBACKUP:-dbbackup}" {
            format!("DBBACKUP=${{DBBACKUP:-{}}}", sh_quote(fill.exe))
        } else if line == "# export DBBACKUP_CONFIG=/path/to/dbbackup.yaml" {
            match fill.config {
                Some(config) => format!("export DBBACKUP_CONFIG={}", sh_quote(config)),
                // No config given: the project's, where the job runs (not a
                // placeholder a user may take for a real path).
                None => format!(
                    "# No configuration was given to `dbbackup templates`: the job reads\n# dbbackup.yaml in the directory it is submitted from, if there is one.\n# FILL IN and uncomment to use another file:\n# export DBBACKUP_CONFIG={}",
                    sh_quote(&fill.project.join("dbbackup.yaml"))
                ),
            }
        } else if line.contains("$SLURM_SUBMIT_DIR/slurm/final_backup.sbatch}") {
            line.replace(
                "$SLURM_SUBMIT_DIR/slurm/final_backup.sbatch}",
                &format!("{}}}", sh_quote(&fill.out_dir.join("final_backup.sbatch"))),
            )
        } else {
            line.to_string()
        };
        text.push_str(&filled);
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usr1_lead_follows_the_last_full_backup_with_a_floor() {
        assert_eq!(usr1_lead(None).0, 300);
        assert_eq!(usr1_lead(Some(2.0)).0, 300);
        // 3 x 100 + 60 = 360: a minute already.
        assert_eq!(usr1_lead(Some(100.0)).0, 360);
        // 3 x 130 + 60 = 450 -> 480.
        assert_eq!(usr1_lead(Some(130.0)).0, 480);
        assert!(usr1_lead(Some(130.0)).1.contains("130.0 s"));
    }

    #[test]
    fn summary_line_fields_are_read_with_quotes() {
        let fields = logfmt_fields(
            r#"time=t job=1 event=post-job reason="a \"b\" c" backup=backup_1.db.gz seconds=2.50"#,
        );
        assert!(fields.contains(&("reason".into(), "a \"b\" c".into())));
        assert!(fields.contains(&("seconds".into(), "2.50".into())));
    }

    #[test]
    fn paths_are_quoted_for_the_shell_and_for_directives() {
        assert_eq!(sh_quote(Path::new("/a/b-c.d")), "/a/b-c.d");
        assert_eq!(sh_quote(Path::new("/sp ace/it's")), r"'/sp ace/it'\''s'");
        assert_eq!(
            directive_value("/sp ace", "/%x_%j.out").unwrap(),
            "\"/sp ace/%x_%j.out\""
        );
        assert!(directive_value("/a\"b", "").is_err());
        assert!(directive_value("/100%", "/x").is_err());
    }
}
