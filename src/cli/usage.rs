//! Usage errors as one line: clap's own text says what is wrong, but spreads
//! it over a usage block and a "For more information" line; a value from a
//! `DBBACKUP_*` variable is named by the variable the user set, not the flag.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// `error` in one line (no "error: " prefix): clap's first line, a similar
/// name when clap found one, and where the command's help is.
pub fn one_line(error: &clap::Error) -> String {
    if let Some(line) = missing_arguments(error)
        .or_else(|| conflict(error))
        .or_else(|| misplaced_option(error))
    {
        return line;
    }
    // The first paragraph: the error, and what clap lists under it (the
    // missing arguments, the possible values); usage and tips come after.
    let rendered = error.render().to_string();
    let words: Vec<&str> = rendered
        .trim_start()
        .split("\n\n")
        .next()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let mut line = match words.join(" ") {
        text if text.is_empty() => "bad arguments".to_string(),
        text => text.trim_start_matches("error: ").to_string(),
    };
    if let Some((flag, variable)) = from_environment(error) {
        line = line.replace(
            &format!("'{flag}'"),
            &format!(
                "{variable} (the environment variable of --{})",
                long_of(&flag)
            ),
        );
    }
    for kind in [
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
    ] {
        match error.get(kind) {
            Some(ContextValue::String(similar)) => {
                line.push_str(&format!("; did you mean '{similar}'?"));
            }
            Some(ContextValue::Strings(similar)) if !similar.is_empty() => {
                line.push_str(&format!("; did you mean '{}'?", similar.join("' or '")));
            }
            _ => {}
        }
    }
    let help = match error.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(usage)) => command_path(&usage.to_string()),
        _ => None,
    };
    if let Some(hint) = help.as_deref().and_then(|path| database_hint(error, path)) {
        line.push_str(&hint);
    }
    if let Some(path) = help {
        line.push_str(&format!(" (see '{path} --help')"));
    }
    line
}

/// A required argument left out, said as what the command needs and what may
/// be given (`dbbackup restore needs NAME: a backup file name from 'dbbackup
/// list', or 'latest'; or --before-job JOBID`), instead of clap's bare
/// `<NAME>`, which names neither `latest` nor where names come from.
fn missing_arguments(error: &clap::Error) -> Option<String> {
    if error.kind() != ErrorKind::MissingRequiredArgument {
        return None;
    }
    let Some(ContextValue::StyledStr(usage)) = error.get(ContextKind::Usage) else {
        return None;
    };
    let path = command_path(&usage.to_string())?;
    let Some(ContextValue::Strings(missing)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let mut command = <super::Cli as clap::CommandFactory>::command();
    command.build();
    let command = path
        .split_whitespace()
        .skip(1)
        .try_fold(&command, |command, name| command.find_subcommand(name))?;
    let mut args: Vec<&clap::Arg> = missing
        .iter()
        .map(|shown| command.get_arguments().find(|arg| is_shown_as(arg, shown)))
        .collect::<Option<_>>()?;
    // What the command is about (the positional) before its options.
    args.sort_by_key(|arg| !arg.is_positional());
    let needs: Vec<String> = args
        .iter()
        .map(|arg| {
            let alternatives: Vec<String> = command
                .get_arguments()
                .filter(|other| {
                    !other.is_hide_set()
                        && command
                            .get_arg_conflicts_with(other)
                            .iter()
                            .any(|c| c.get_id() == arg.get_id())
                })
                .map(name_of)
                .collect();
            let mut text = format!("{}{}", name_of(arg), what_it_is(arg));
            for other in alternatives {
                text.push_str(&format!("; or {other}"));
            }
            text
        })
        .collect();
    Some(format!(
        "{path} needs {} (see '{path} --help')",
        needs.join("; and ")
    ))
}

/// A command's own option given before the command (`dbbackup --force restore
/// latest`): clap says only "unexpected argument"; this says whose option it
/// is and gives the line with it after the command. Every command's options
/// are so (only the settings, `--quiet` and `-v` go anywhere).
fn misplaced_option(error: &clap::Error) -> Option<String> {
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(given)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = given.strip_prefix("--")?.split('=').next()?;
    let command = <super::Cli as clap::CommandFactory>::command();
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut own = own_words(&command, &args);
    let at = own
        .iter()
        .position(|word| word == given || word.starts_with(&format!("--{long}=")))?;
    let mut sub_at = at
        + own[at..]
            .iter()
            .position(|w| command.find_subcommand(w).is_some())?;
    let mut sub = command.find_subcommand(&own[sub_at])?;
    let mut path = vec![sub.get_name()];
    // `lock status`: the option is the innermost command's.
    while let Some(inner) = own.get(sub_at + 1).and_then(|w| sub.find_subcommand(w)) {
        sub = inner;
        sub_at += 1;
        path.push(sub.get_name());
    }
    let arg = sub
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))?;
    // The option and its value (`--target x`), moved to just after the command.
    let with_value = arg.get_action().takes_values() && !own[at].contains('=');
    let moved: Vec<String> = own
        .drain(at..(at + 1 + usize::from(with_value)).min(sub_at))
        .collect();
    let sub_at = sub_at - moved.len();
    own.splice(sub_at + 1..sub_at + 1, moved);
    // The work of `run` (its own words) follows as it was given.
    if own.len() + 1 < args.len() {
        own.push("...".into());
    }
    let name = path.join(" ");
    Some(format!(
        "{given} is an option of '{name}': put it after the command: dbbackup {} (see 'dbbackup {name} --help')",
        own.join(" ")
    ))
}

/// Two arguments that exclude each other, named as typed (`NAME`, `--before-job
/// JOBID`) rather than as clap's usage shows them (`'[NAME]'`, which reads as
/// if NAME were optional there).
fn conflict(error: &clap::Error) -> Option<String> {
    if error.kind() != ErrorKind::ArgumentConflict {
        return None;
    }
    let Some(ContextValue::String(first)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let mut names = vec![as_typed(first)];
    let Some(ContextValue::StyledStr(usage)) = error.get(ContextKind::Usage) else {
        return None;
    };
    let path = command_path(&usage.to_string())?;
    // clap reports an option given twice as a conflict with itself.
    if let Some(ContextValue::String(other)) = error.get(ContextKind::PriorArg)
        && other == first
    {
        let flag = first.split_whitespace().next().unwrap_or(first);
        return Some(format!(
            "{flag} given twice: give it once (see '{path} --help')"
        ));
    }
    match error.get(ContextKind::PriorArg) {
        Some(ContextValue::String(other)) => names.push(as_typed(other)),
        Some(ContextValue::Strings(others)) => names.extend(others.iter().map(|o| as_typed(o))),
        _ => return None,
    }
    Some(format!(
        "{} cannot be used together: give one (see '{path} --help')",
        names.join(" and ")
    ))
}

/// `NAME` from `[NAME]` or `<NAME>...`, `--out FILE` from `--out <FILE>`.
fn as_typed(shown: &str) -> String {
    shown
        .split_whitespace()
        .map(|word| {
            word.trim_start_matches(['[', '<'])
                .trim_end_matches([']', '>', '.'])
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether clap shows `arg` as `shown` in a missing-argument error (`<NAME>`,
/// `--out <FILE>`).
fn is_shown_as(arg: &clap::Arg, shown: &str) -> bool {
    let value = shown.split_whitespace().last().unwrap_or(shown);
    let value = value.trim_start_matches('<').trim_end_matches(['>', '.']);
    match arg.get_long() {
        Some(long) => shown.split_whitespace().next() == Some(&format!("--{long}")),
        None => arg
            .get_value_names()
            .is_some_and(|names| names.iter().any(|name| name.as_str() == value)),
    }
}

/// `NAME` or `--out FILE`, as a user types it.
fn name_of(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
    match arg.get_long() {
        Some(long) if arg.get_action().takes_values() => format!("--{long} {value}"),
        Some(long) => format!("--{long}"),
        None => value,
    }
}

/// ": one of bash, fish, …" for a choice, else ": " and the first line of its
/// help, in the quotes of an error line.
fn what_it_is(arg: &clap::Arg) -> String {
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| value.get_name().to_string())
        .collect();
    if !choices.is_empty() {
        return format!(": one of {}", choices.join(", "));
    }
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    let help = help.lines().next().unwrap_or("").trim().replace('`', "'");
    let mut letters = help.chars();
    match letters.next() {
        Some(first) => format!(": {}{}", first.to_lowercase(), letters.as_str()),
        None => String::new(),
    }
}

/// A command that needs a subcommand given without one (`dbbackup lock`): what
/// there is to choose from in one line; at the top level only when asked
/// (`dbbackup -q`). None for nothing typed at all: the help is the list a new
/// user wants.
pub fn missing_subcommand(args: &[OsString], top_level: bool) -> Option<String> {
    let command = <super::Cli as clap::CommandFactory>::command();
    let mut path = vec![command.get_name().to_string()];
    let mut current = &command;
    let words = own_words(&command, args);
    if words.is_empty() {
        return None;
    }
    for word in words {
        if let Some(sub) = current.find_subcommand(&word) {
            path.push(sub.get_name().to_string());
            current = sub;
        }
    }
    if (path.len() < 2 && !top_level) || !current.has_subcommands() {
        return None;
    }
    let names: Vec<&str> = current
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(clap::Command::get_name)
        .collect();
    let path = path.join(" ");
    Some(format!(
        "{path} needs a command: {} (see '{path} --help')",
        names.join(", ")
    ))
}

/// An unexpected word that names a database (`restore latest x.db`): the
/// database is a setting, given before the command, not a positional argument.
fn database_hint(error: &clap::Error, path: &str) -> Option<String> {
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(word)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let named = std::path::Path::new(word);
    let database = !word.starts_with('-')
        && (named.is_file()
            || named
                .extension()
                .is_some_and(|e| ["db", "sqlite", "sqlite3"].iter().any(|x| e == *x)));
    if !database {
        return None;
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let own = own_words(&<super::Cli as clap::CommandFactory>::command(), &args);
    let rest: Vec<&str> = own
        .iter()
        .map(String::as_str)
        .filter(|w| w != word)
        .collect();
    let rest = rest.join(" ");
    let mut hint =
        format!("; the database is named by --db-path: dbbackup --db-path {word} {rest}");
    if path == "dbbackup restore" {
        hint.push_str(&format!(
            " (or, to restore into that file instead of the configured database: dbbackup {rest} --target {word})"
        ));
    }
    Some(hint)
}

/// "dbbackup restore" from "Usage: dbbackup restore [OPTIONS] [NAME]".
fn command_path(usage: &str) -> Option<String> {
    let usage = usage.trim().strip_prefix("Usage:")?;
    let words: Vec<&str> = usage
        .split_whitespace()
        .take_while(|word| !word.starts_with(['[', '<', '-']))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// "max-backups" from "--max-backups <N>".
fn long_of(flag: &str) -> &str {
    flag.split_whitespace()
        .next()
        .unwrap_or(flag)
        .trim_start_matches("--")
}

/// For a bad value that came from an environment variable (set, and the flag
/// not on the command line): the flag as clap names it, and the variable.
fn from_environment(error: &clap::Error) -> Option<(String, String)> {
    if !matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(flag)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = long_of(flag);
    let command = <super::Cli as clap::CommandFactory>::command();
    let variable = env_of(&command, long)?;
    // A flag given drops its variable (`Cli::try_parse_ignoring_empty_env`):
    // without the flag, a variable set is where the value came from.
    std::env::var_os(&variable).filter(|value| !value.is_empty())?;
    let args: Vec<OsString> = std::env::args_os().collect();
    let given = given_longs(&own_words(&command, &args));
    (!given.iter().any(|g| g == long)).then(|| (flag.clone(), variable))
}

/// The environment variable of `--long` in `command` or any subcommand.
fn env_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, long)))
}

/// The words of `args` that are dbbackup's own (the program name left out):
/// up to `--`, or up to where the work of `run` begins (`run python x.py -q`:
/// the `-q` is the work's).
pub(super) fn own_words(command: &clap::Command, args: &[OsString]) -> Vec<String> {
    let mut takes_value = Vec::new();
    collect(command, &mut |arg| {
        if let Some(long) = arg.get_long().filter(|_| arg.get_action().takes_values()) {
            takes_value.push(long.to_string());
        }
    });
    let mut own = Vec::new();
    let mut words = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let mut subcommand = None;
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let value_follows = !long.contains('=') && takes_value.iter().any(|t| t == long);
            own.push(word);
            if value_follows {
                own.extend(words.next());
            }
            continue;
        }
        if !word.starts_with('-') {
            match &subcommand {
                None => subcommand = Some(word.clone()),
                Some(run) if run == "run" => break,
                Some(_) => {}
            }
        }
        own.push(word);
    }
    own
}

/// The `--metrics-file` of a `periodic` command line that did not parse (a bad
/// flag, or a bad `DBBACKUP_*` value read with the flags): that run judged
/// nothing, and the file must not keep the last run's `dbbackup_healthy 1`.
pub fn periodic_metrics_file(args: &[OsString]) -> Option<std::path::PathBuf> {
    let command = <super::Cli as clap::CommandFactory>::command();
    let mut takes_value = Vec::new();
    collect(&command, &mut |arg| {
        if let Some(long) = arg.get_long().filter(|_| arg.get_action().takes_values()) {
            takes_value.push(long.to_string());
        }
    });
    let words = own_words(&command, args);
    let mut words = words.iter();
    let mut in_periodic = false;
    while let Some(word) = words.next() {
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let value = match inline {
                Some(value) => Some(value),
                None if takes_value.iter().any(|t| t == name) => words.next().cloned(),
                None => None,
            };
            if in_periodic && name == "metrics-file" {
                return value.filter(|v| !v.is_empty()).map(Into::into);
            }
        } else if !word.starts_with('-') && !in_periodic {
            // The first word that is no option's value: the command.
            if word != "periodic" {
                return None;
            }
            in_periodic = true;
        }
    }
    None
}

/// The long options `own` names (`--name` or `--name=value`).
pub(super) fn given_longs(own: &[String]) -> Vec<String> {
    own.iter()
        .filter_map(|word| {
            let name = word.strip_prefix("--")?;
            Some(name.split('=').next().unwrap_or(name).to_string())
        })
        .collect()
}

/// Options that take a path accept one that starts with `-` (`--db-path '-
/// x.db'`), except where it would be read as another option: `--db-path -q`
/// or `--db-path --max-backups 3` is a missing value, said so in one line
/// (the `=` form, `--db-path=-q`, always takes the value as it is).
pub(super) fn refuse_option_as_value(
    command: &clap::Command,
    own: &[String],
) -> Result<(), clap::Error> {
    let mut longs = vec!["help".to_string(), "version".to_string()];
    let mut shorts = vec!['h', 'V'];
    let mut hyphen_values = Vec::new();
    collect(command, &mut |arg| {
        if let Some(long) = arg.get_long() {
            longs.push(long.to_string());
            if arg.is_allow_hyphen_values_set() && arg.get_action().takes_values() {
                hyphen_values.push(long.to_string());
            }
        }
        shorts.extend(arg.get_short());
    });
    let is_option = |text: &str| match text.strip_prefix("--") {
        Some(rest) => {
            let name = rest.split('=').next().unwrap_or(rest);
            longs.iter().any(|long| long == name)
        }
        None => {
            let letters = text.strip_prefix('-').unwrap_or("");
            !letters.is_empty() && letters.chars().all(|c| shorts.contains(&c))
        }
    };
    for pair in own.windows(2) {
        let (flag, value) = (&pair[0], &pair[1]);
        let takes_path = flag
            .strip_prefix("--")
            .is_some_and(|long| hyphen_values.iter().any(|h| h == long));
        if takes_path && is_option(value) {
            return Err(clap::Error::raw(
                ErrorKind::InvalidValue,
                format!(
                    "{flag} needs a value, but '{value}' is an option; for a path that starts with '-', write {flag}={value} or {flag} ./{value}"
                ),
            ));
        }
    }
    Ok(())
}

/// Call `each` on every argument of `command` and its subcommands.
fn collect(command: &clap::Command, each: &mut impl FnMut(&clap::Arg)) {
    for arg in command.get_arguments() {
        each(arg);
    }
    for sub in command.get_subcommands() {
        collect(sub, each);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_path_of_a_usage_line() {
        assert_eq!(
            command_path("Usage: dbbackup restore [OPTIONS] [NAME]").as_deref(),
            Some("dbbackup restore")
        );
        assert_eq!(
            command_path("Usage: dbbackup lock status [OPTIONS]").as_deref(),
            Some("dbbackup lock status")
        );
        assert_eq!(command_path("nothing"), None);
    }

    #[test]
    fn the_work_of_run_is_not_dbbackups() {
        use clap::CommandFactory;
        let words = |args: &[&str]| {
            let args: Vec<OsString> = args.iter().map(OsString::from).collect();
            own_words(&super::super::Cli::command(), &args)
        };
        assert_eq!(
            words(&[
                "dbbackup",
                "--db-path",
                "r.db",
                "run",
                "--strict",
                "sh",
                "--out",
                "-q"
            ]),
            ["--db-path", "r.db", "run", "--strict"]
        );
        assert_eq!(
            words(&["dbbackup", "run", "--final-job", "f.sbatch", "--", "-q"]),
            ["run", "--final-job", "f.sbatch"]
        );
        assert_eq!(
            words(&["dbbackup", "restore", "latest", "--target", "-q"]),
            ["restore", "latest", "--target", "-q"]
        );
    }
}
