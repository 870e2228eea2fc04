//! `dbbackup completions SHELL` and `dbbackup man [--out DIR]`: generated from the
//! clap definitions, so they never drift from the real flags.

use std::fs;

use clap::CommandFactory;

use super::Ctx;
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::{Context, Error, Result, show};
use crate::exit_code::ExitCode;

pub(crate) fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut text = Vec::new();
    clap_complete::generate(args.shell, &mut command, "dbbackup", &mut text);
    write_stdout(&text)
}

pub(crate) fn man(ctx: &Ctx, args: &ManArgs) -> Result<ExitCode> {
    let command = Cli::command();
    let Some(dir) = &args.out else {
        let mut page = Vec::new();
        crate::man_page::render(command, "dbbackup", &mut page)
            .context(|| "cannot render man page")?;
        return write_stdout(&page);
    };
    let made = !dir.exists();
    // Not "File exists" from mkdir (T30 F7).
    if !made && !dir.is_dir() {
        return Err(Error::usage(format!(
            "--out {} is not a directory: give the directory the man pages go in",
            show(dir)
        )));
    }
    fs::create_dir_all(dir).context(|| format!("cannot create {}", show(dir)))?;
    let out = ctx.output(crate::cli::Format::Text);
    if made {
        // Said: a mistyped directory (`man1` as `mna1`) is noticed (T25 #6).
        out.line(format!("created directory {}", dir.display()));
    }
    let mut pages = Vec::new();
    collect_pages(&command, "dbbackup", &mut pages);
    let pages: Vec<_> = pages
        .into_iter()
        .map(|(name, typed, page_command)| (dir.join(format!("{name}.1")), typed, page_command))
        .collect();
    // As `templates --out` and `init`: nothing written unless all can be.
    if !args.overwrite
        && let Some((path, ..)) = pages.iter().find(|(path, ..)| path.exists())
    {
        return Err(Error::usage(format!(
            "{} exists; use --overwrite to replace it",
            show(path)
        )));
    }
    // Whole or not at all, the set too: pages left by a full disk part-way
    // would refuse the retry.
    let mut new = crate::store::NewFiles::default();
    for (path, typed, page_command) in pages {
        let mut page = Vec::new();
        let written = crate::man_page::render(page_command, &typed, &mut page)
            .context(|| "cannot render man page")
            .and_then(|()| new.write(&path, 0o644, &page));
        if let Err(error) = written {
            return Err(new.undo(error));
        }
        out.line(format!("wrote {}", path.display()));
    }
    Ok(ExitCode::Success)
}

/// `command` (typed as `typed`) and every subcommand under it, each as (page
/// name, as typed, the command named for its page): every page another page
/// names (`dbbackup-lock-status(1)`) is written.
fn collect_pages(
    command: &clap::Command,
    typed: &str,
    pages: &mut Vec<(String, String, clap::Command)>,
) {
    let name = crate::man_page::page_name(typed);
    pages.push((name.clone(), typed.to_string(), command.clone().name(name)));
    for sub in command.get_subcommands() {
        collect_pages(sub, &format!("{typed} {}", sub.get_name()), pages);
    }
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    crate::output::write_stdout(bytes).context(|| "cannot write to stdout")?;
    Ok(ExitCode::Success)
}
