//! One man page in roff: clap_mangen's NAME, DESCRIPTION and option sections,
//! with a SYNOPSIS as typed (`dbbackup restore [OPTIONS] [NAME]`, not the
//! page's file name), the `--help` examples under EXAMPLES, and the EXIT
//! STATUS, ENVIRONMENT and FILES sections clap does not know about.

use std::io::Write;

const EXIT_STATUS: &str = "0: success (a deliberate skip, nothing changed or not due, is a success).
1: failure; for check, the backup set is unhealthy; for verify, a backup is damaged.
2: bad arguments or configuration.
check --format nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
run: the work's own status.
Stopped by signal N: dbbackup cleans up, then dies of that signal (a shell's $? is 128+N; SIGTERM: 143).";

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DBBACKUP_CONFIG",
        "The YAML configuration file (as --config); one that does not exist is an error.",
    ),
    (
        "DBBACKUP_DB_PATH, DBBACKUP_BACKUP_DIR, DBBACKUP_REMOTE, DBBACKUP_*",
        "Every setting, as its option (each option names its variable); an empty variable counts as unset.",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, AWS_WEB_IDENTITY_TOKEN_FILE",
        "Credentials for --remote s3://... (docs/remote.md).",
    ),
    (
        "AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP",
        "Where the remote is: the region, an S3-compatible endpoint, and whether http:// is allowed.",
    ),
    (
        "SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_RESTART_COUNT",
        "Set by SLURM: which job and array task this is, for pre-job, run, post-job and final, and the job tag of log lines.",
    ),
];

const FILES: &[(&str, &str)] = &[
    (
        "./dbbackup.yaml",
        "The configuration read when present and neither --config nor DBBACKUP_CONFIG is given (dbbackup init writes one).",
    ),
    (
        "outputs/db_backups/",
        "The default backup directory: backup_YYYYMMDD_HHMMSS.db.gz (full) and .diff.gz (differential) files, each with its metadata.",
    ),
    (
        "slrm_logs/backup_summary.log",
        "The default summary log (--summary-log).",
    ),
];

/// The page of `command`, whose path on the command line is `path`
/// (`dbbackup restore`).
pub(crate) fn render(command: clap::Command, path: &str, out: &mut Vec<u8>) -> std::io::Result<()> {
    let (prose, examples) = split_after_help(&command);
    let mut built = command.clone().bin_name(path);
    built.build();
    let usage = built.render_usage().to_string();
    // Without after_help clap_mangen leaves out its EXTRA section: ours follow.
    let man = clap_mangen::Man::new(command.after_help("").after_long_help(""));
    man.render_title(out)?;
    man.render_name_section(out)?;
    writeln!(out, ".SH SYNOPSIS")?;
    // One line per form (`restore NAME`, `restore --before-job JOBID`).
    for line in usage.lines() {
        let line = line.trim().trim_start_matches("Usage:").trim();
        let args = line.strip_prefix(path).unwrap_or(line).trim();
        writeln!(out, "\\fB{}\\fR {}\n.br", escape(path), escape(args))?;
    }
    man.render_description_section(out)?;
    if !prose.is_empty() {
        writeln!(out, ".PP")?;
    }
    for line in &prose {
        writeln!(out, "{}", text_line(line))?;
    }
    man.render_options_section(out)?;
    if built.has_subcommands() {
        subcommands(&built, path, out)?;
    }
    if !examples.is_empty() {
        writeln!(out, ".SH EXAMPLES\n.nf")?;
        for line in examples {
            writeln!(out, "{}", text_line(&line))?;
        }
        writeln!(out, ".fi")?;
    }
    writeln!(out, ".SH \"EXIT STATUS\"\n.nf")?;
    for line in EXIT_STATUS.lines() {
        writeln!(out, "{}", text_line(line))?;
    }
    writeln!(out, ".fi")?;
    for (heading, entries) in [("ENVIRONMENT", ENVIRONMENT), ("FILES", FILES)] {
        writeln!(out, ".SH {heading}")?;
        for (name, what) in entries {
            writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(name), text_line(what))?;
        }
    }
    if path != "dbbackup" {
        // Each command's page holds its own options only.
        writeln!(
            out,
            ".SH \"SEE ALSO\"\n\\fBdbbackup\\fR(1): the global settings (\\-\\-config, \\-\\-db\\-path, \\-\\-backup\\-dir, ...) and every command."
        )?;
    }
    if built.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// The page name of the command typed as `path` (`dbbackup lock status`:
/// `dbbackup-lock-status`), as `dbbackup man --out` writes it.
pub(crate) fn page_name(path: &str) -> String {
    path.split_whitespace().collect::<Vec<_>>().join("-")
}

/// The subcommands, each naming its page. Not clap_mangen's section: that names
/// a page for clap's `help` subcommand too, which no page documents (`--help`
/// and `dbbackup help COMMAND` print the same as the command's page).
fn subcommands(built: &clap::Command, path: &str, out: &mut Vec<u8>) -> std::io::Result<()> {
    writeln!(out, ".SH COMMANDS")?;
    for sub in built
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    {
        let page = page_name(&format!("{path} {}", sub.get_name()));
        writeln!(out, ".TP\n\\fB{}\\fR(1)", escape(&page))?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}", text_line(&about.to_string()))?;
        }
    }
    Ok(())
}

/// The after_help's prose (before the first "Example" line) and its examples,
/// without the bare "Examples:" heading the section title replaces.
fn split_after_help(command: &clap::Command) -> (Vec<String>, Vec<String>) {
    let text = command
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("Example"))
        .unwrap_or(lines.len());
    let prose = lines[..at]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .cloned()
        .collect();
    let examples = lines[at..]
        .iter()
        .filter(|l| l.as_str() != "Examples:" && l.as_str() != "Example:")
        .cloned()
        .collect();
    (prose, examples)
}

/// A line of text, safe from roff: escapes, and no control character first.
fn text_line(line: &str) -> String {
    let escaped = escape(line);
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}
