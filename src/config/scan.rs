//! A line-by-line look at a configuration file before the YAML reader takes
//! it: what the reader reports without a line (a duplicate or misspelled key)
//! or reads differently from what was written (`0x10`, digits past any
//! number type, a number that runs on into an indented line) is said here,
//! with its line. The reader stays the judge of the YAML itself.

use super::Bad;
use crate::limits::{self, Limit};
use crate::options::{CheckOptions, Options};
use crate::spelling::closest;

/// Refuse numbers not written as one decimal number on one line, and, when
/// the YAML reader refused the file (`refused`), duplicate and unknown keys (top
/// level and under `check:`) with their line: a key the reader takes is never
/// called unknown here.
pub(super) fn keys(text: &str, refused: bool) -> Result<(), Bad> {
    let top = known(&Options::default());
    let check = known(&CheckOptions::default());
    let mut seen_top: Vec<(&str, usize)> = Vec::new();
    let mut seen_check: Vec<(&str, usize)> = Vec::new();
    let mut section: Option<&str> = None;
    // A number written on its key's line, whose value an indented line would continue.
    let mut open_number: Option<(&str, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let body = line.trim_start_matches(' ');
        if body.trim().is_empty() || body.starts_with('#') {
            continue;
        }
        // A tab in the indentation: the YAML reader says what is wrong, and where.
        if body.starts_with('\t') {
            return Ok(());
        }
        let indented = body.len() != line.len();
        if indented {
            if let Some((key, at)) = open_number {
                return Err(Bad::at(
                    Some(number),
                    format!(
                        "this indented line continues the value of {key} (line {at}); a number takes one line: unindent or remove this line"
                    ),
                ));
            }
        } else {
            open_number = None;
            section = None;
        }
        let Some((key, value)) = entry(body).filter(|(key, _)| !key.is_empty()) else {
            continue;
        };
        let (keys, seen, name) = match (indented, section) {
            (false, _) => (&top, &mut seen_top, key.to_string()),
            (true, Some("check")) => (&check, &mut seen_check, format!("check.{key}")),
            (true, _) => continue,
        };
        if refused && let Some((_, first)) = seen.iter().find(|(seen, _)| *seen == key) {
            return Err(Bad::at(
                Some(number),
                format!("duplicate key {name} (first on line {first})"),
            ));
        }
        seen.push((key, number));
        if refused && !keys.iter().any(|known| known == key) {
            let misplaced = if indented {
                misplaced_under_check(key, &top)
            } else {
                misplaced_at_top(key, value, &check)
            };
            let message = misplaced.unwrap_or_else(|| unknown(&name, key, keys));
            return Err(Bad::at(Some(number), message));
        }
        if !indented {
            section = Some(key);
        }
        if let Some(limit) = limits::ALL.iter().find(|limit| limit.key == name) {
            number_as_written(limit, value).map_err(|message| Bad::at(Some(number), message))?;
            if !value.is_empty() && !indented {
                open_number = Some((limit.key, number));
            }
        }
    }
    Ok(())
}

/// Whether line `number` (from 1) is indented where nothing opens a map: the
/// content line before it is at column 1 and has its value (or there is none),
/// so it is a top-level key indented by mistake.
pub(super) fn misindented(text: &str, number: usize) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    let Some(line) = number.checked_sub(1).and_then(|i| lines.get(i)) else {
        return false;
    };
    if !line.starts_with(' ') || line.trim().is_empty() {
        return false;
    }
    let before = lines[..number - 1]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    match before {
        None => true,
        Some(before) => {
            !before.starts_with([' ', '\t'])
                && entry(before).is_some_and(|(_, value)| !value.is_empty())
        }
    }
}

/// The line (from 1) of the first line that is neither blank nor a comment.
pub(super) fn first_content_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|index| index + 1)
}

/// The line of a `---` that ends a first document with content (one at the
/// very top only starts the one document).
pub(super) fn second_document(text: &str) -> Option<usize> {
    let mut content = false;
    for (index, line) in text.lines().enumerate() {
        let separator = line.trim_end() == "---" || line.starts_with("--- ");
        if separator && content {
            return Some(index + 1);
        }
        content |= !separator && !line.trim().is_empty() && !line.starts_with(['#', '%']);
    }
    None
}

/// The line of top-level `key`, if written so.
pub(super) fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| entry(line).is_some_and(|(k, _)| k == key))
        .map(|index| index + 1)
}

/// `key: value` (value without its comment), for a line that is one.
fn entry(body: &str) -> Option<(&str, &str)> {
    if body.starts_with(['-', '[', '{', '#']) {
        return None;
    }
    let (key, value) = match body.split_once(": ") {
        Some(split) => split,
        None => (body.trim_end().strip_suffix(':')?, ""),
    };
    let key = key.trim().trim_matches(['"', '\'']);
    let value = if value.starts_with('#') {
        ""
    } else {
        value.split(" #").next().unwrap_or("")
    };
    Some((key, value.trim()))
}

/// The keys a map of these settings has, as serde names them.
fn known<T: serde::Serialize>(options: &T) -> Vec<String> {
    match serde_norway::to_value(options) {
        Ok(serde_norway::Value::Mapping(map)) => map
            .keys()
            .filter_map(|key| key.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A `check:` threshold written at the top level: where it belongs.
fn misplaced_at_top(key: &str, value: &str, check: &[String]) -> Option<String> {
    check.iter().any(|known| known == key).then(|| {
        let value = if value.is_empty() { "..." } else { value };
        format!(
            "`{key}` is a `check:` setting; write it as `check:` with `  {key}: {value}` indented on the next line"
        )
    })
}

/// A top-level setting written under `check:`: where it belongs.
fn misplaced_under_check(key: &str, top: &[String]) -> Option<String> {
    (key != "check" && top.iter().any(|known| known == key)).then(|| {
        format!("`{key}` is a top-level setting, not a `check:` one; write it unindented, outside `check:`")
    })
}

/// "unknown key max_bakups (did you mean max_backups?)", or the keys there are.
fn unknown(name: &str, key: &str, keys: &[String]) -> String {
    match closest(key, keys) {
        Some(known) => format!("unknown key {name} (did you mean {known}?)"),
        None => format!("unknown key {name}; the keys are {}", keys.join(", ")),
    }
}

/// `0x10` (YAML would read 16: a count in hexadecimal is surely a mistake) and
/// digits past every number type (YAML would read `1e41`) are said as written.
fn number_as_written(limit: &Limit, value: &str) -> Result<(), String> {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    let radix = ["0x", "0X", "0o", "0O", "0b", "0B"]
        .iter()
        .any(|prefix| digits.len() > 2 && digits.starts_with(prefix));
    if radix {
        return Err(format!(
            "{}: {value} is not a decimal number; write it in digits 0-9 ({})",
            limit.key,
            limit.range()
        ));
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let verdict = if limit.whole {
        limit.parse_whole(value).map(|_| ())
    } else {
        limit.parse(value).map(|_| ())
    };
    verdict.map_err(|_| format!("{}: must be {}, not {value}", limit.key, limit.range()))
}

/// The `[` or `{` that opened a list or map the reader could not finish, and
/// its line and column, from the reader's message (display only, as
/// [`plain_words`]). The reader says the same of a missing `,`: see
/// [`closed_on_its_line`].
pub(super) fn unclosed_flow(message: &str) -> Option<(char, usize, usize)> {
    for (phrase, open) in [
        ("while parsing a flow sequence at line ", '['),
        ("while parsing a flow mapping at line ", '{'),
    ] {
        if let Some((_, rest)) = message.split_once(phrase) {
            let (line, rest) = rest.split_once(" column ")?;
            let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return Some((open, line.parse().ok()?, column.parse().ok()?));
        }
    }
    None
}

/// Where the quoted value the reader reached the end of the file in began
/// (an unclosed quote), from its message, as [`unclosed_flow`].
pub(super) fn unclosed_quote(message: &str) -> Option<(usize, usize)> {
    let (_, rest) = message
        .strip_prefix("found unexpected end of stream")?
        .split_once("while scanning a quoted scalar at line ")?;
    let (line, rest) = rest.split_once(" column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// Whether the list or map opened by `open` at `column` (1-based) of `line` is
/// closed on that line: then a `,` is what is missing, not its closer.
pub(super) fn closed_on_its_line(line: &str, column: usize, open: char) -> bool {
    let close = if open == '[' { ']' } else { '}' };
    let mut depth = 0usize;
    let mut quote = None;
    for c in line.chars().skip(column.saturating_sub(1)) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c == open => depth += 1,
            (None, c) if c == close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The reader's (serde's) phrases in the user's words: "expected a path, found
/// a list", "'maybe' is not one of group, umask", "unknown key x". Display
/// only: what is accepted or refused never depends on this text (serde's
/// errors carry no kind to match on); an unknown phrase passes through as is.
pub(super) fn plain_words(message: &str) -> String {
    if let Some((before, rest)) = message.split_once("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!(
            "{before}expected {}, found {}",
            expected_words(expected),
            found_words(found)
        );
    }
    if let Some((before, rest)) = message.split_once("unknown variant `")
        && let Some((value, expected)) = rest.split_once("`, expected ")
    {
        let choices = expected
            .trim_start_matches("one of ")
            .replace(" or ", ", ")
            .replace('`', "");
        return format!("{before}'{value}' is not one of {choices}");
    }
    for (phrase, says) in [
        ("unknown field `", "unknown key "),
        ("duplicate field `", "duplicate key "),
    ] {
        if let Some((before, rest)) = message.split_once(phrase) {
            let name = rest.split('`').next().unwrap_or(rest);
            return format!("{before}{says}{name}");
        }
    }
    message.to_string()
}

fn expected_words(expected: &str) -> &str {
    match expected {
        "path string" | "a string" => "a path",
        "a sequence" => "a list",
        other => other,
    }
}

fn found_words(found: &str) -> String {
    match found {
        "sequence" => "a list".into(),
        "map" => "a map (key: value lines)".into(),
        "unit value" => "nothing".into(),
        other => match other.split_once(' ') {
            Some(("string", text)) => format!("the text {text}"),
            Some((_, value)) => value.trim_matches('`').to_string(),
            None => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_key_is_suggested_else_the_keys_are_listed() {
        let keys = known(&Options::default());
        assert_eq!(
            unknown("max_bakups", "max_bakups", &keys),
            "unknown key max_bakups (did you mean max_backups?)"
        );
        assert!(unknown("zzz", "zzz", &keys).starts_with("unknown key zzz; the keys are db_path,"));
    }

    #[test]
    fn serde_phrases_become_plain_words() {
        assert_eq!(
            plain_words("db_path: invalid type: sequence, expected path string"),
            "db_path: expected a path, found a list"
        );
        assert_eq!(
            plain_words("shared: unknown variant `maybe`, expected `group` or `umask`"),
            "shared: 'maybe' is not one of group, umask"
        );
        assert_eq!(
            plain_words("check: invalid type: integer `5`, expected a map of check thresholds"),
            "check: expected a map of check thresholds, found 5"
        );
    }

    #[test]
    fn a_check_that_is_not_a_map_is_told_every_threshold() {
        let said = super::super::check_text("check: 24h\n").unwrap_err();
        for key in known(&CheckOptions::default()) {
            assert!(said.contains(&key), "{key} missing from: {said}");
        }
    }
}
