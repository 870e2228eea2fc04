//! Human units: durations like `90s`, `30m`, `24h`, `7d`, `2w`; sizes like `512M`,
//! `1G`; and yes/no switches (`DBBACKUP_STRICT=yes`).

use std::time::Duration;

/// Parse `<number><unit>` with unit s, m, h, d or w (a bare number other than 0
/// is refused), or several such parts, summed: what [`human_duration`] prints
/// (`1d 12h`, `3h 5m`) is read back the same.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let not_one = || format!("'{text}' is not a duration (examples: 90s, 30m, 24h, 7d, 1d 12h)");
    let mut rest = text;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let (value, after) = number_and_unit(rest).ok_or_else(not_one)?;
        let end = after
            .find(|c: char| c.is_whitespace() || c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(end);
        // `2 hours`: a unit was meant, written apart and in full.
        if unit.is_empty() && next.trim_start().starts_with(char::is_alphabetic) {
            return Err(format!(
                "'{text}' is not a duration: write the unit right after the number, one of s, m, h, d, w (90s, 30m, 2h, 7d)"
            ));
        }
        seconds += value * unit_seconds(text, value, unit, next.trim().is_empty() && rest == text)?;
        rest = next.trim_start();
    }
    if text.is_empty() {
        return Err(not_one());
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("'{text}' is out of range (examples: 90s, 30m, 24h, 7d)"))
}

/// Seconds per `unit` in a duration `text`; `alone`: the number is the whole text.
fn unit_seconds(text: &str, value: f64, unit: &str, alone: bool) -> Result<f64, String> {
    Ok(match unit {
        // A bare number is ambiguous (`24` meant as hours was taken as
        // seconds): refused, except a lone 0, which is 0 in any unit.
        "" if value == 0.0 && alone => 1.0,
        "" => return Err(format!("{text}: give a unit: 90s, 30m, 24h, 7d")),
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}' (use s, m, h, d or w: 90s, 30m, 24h, 7d)"
            ));
        }
    })
}

/// `90s` → (90.0, "s"); `None` when the text does not start with a number.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit))
}

/// Parse `<number>K|M|G|T|B`: K, M, G and T (any case, optionally `Ki`/`KiB`)
/// are powers of 1024, as `df -h` and `ls -h` print them; B is bytes. A bare
/// number other than 0 is refused, and so are `KB`..`TB`: SI reads them as
/// powers of 1000, other tools as powers of 1024, so either reading would
/// surprise someone.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (value, unit) = number_and_unit(text)
        .ok_or_else(|| format!("'{text}' is not a size (examples: 500M, 1G)"))?;
    let unit = unit.trim();
    // A bare number is refused as durations are (`5` meant as gigabytes was
    // taken as bytes), except 0; `100B` says bytes.
    if unit.is_empty() && value != 0.0 {
        return Err(format!("{text}: give a unit: 500M, 1G (or 100B for bytes)"));
    }
    let bytes = value * size_scale(text, unit)?;
    if bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64 {
        Ok(bytes as u64)
    } else {
        Err(format!("'{text}' is out of range (examples: 500M, 1G)"))
    }
}

/// Bytes per `unit` of a size `text`.
fn size_scale(text: &str, unit: &str) -> Result<f64, String> {
    let lower = unit.to_ascii_lowercase();
    let prefix = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('i'))
        .unwrap_or(&lower);
    let power = match prefix {
        "" | "b" if prefix == lower => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "kb" | "mb" | "gb" | "tb" => {
            let number = &text[..text.len() - unit.len()];
            let binary = &unit[..1];
            return Err(format!(
                "'{text}' is ambiguous ({unit} is a power of 1000 to some tools, of 1024 to others): \
                 write {number}{binary} or {number}{binary}iB for powers of 1024 (500M, 1G)"
            ));
        }
        _ => {
            return Err(format!(
                "unknown unit '{unit}' in '{text}' (use K, M, G or T, powers of 1024: 500M, 1G)"
            ));
        }
    };
    Ok(1024f64.powi(power))
}

/// A switch: true/false, 1/0, yes/no, on/off (any case); empty is off. Anything
/// else is refused: `DBBACKUP_STRICT=maybe` must not silently mean yes.
pub fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(format!(
            "'{text}' is not a yes/no value (use true/false, 1/0, yes/no or on/off)"
        )),
    }
}

/// `DBBACKUP_STRICT` as `run --strict` reads it; `pre-job` and `post-job` (whose
/// exit code the hooks shim judges by it) refuse a value that is neither yes nor no.
pub(crate) fn strict_env() -> crate::error::Result<bool> {
    match std::env::var_os("DBBACKUP_STRICT") {
        None => Ok(false),
        Some(value) => parse_switch(&value.to_string_lossy())
            .map_err(|why| crate::error::Error::usage(format!("DBBACKUP_STRICT: {why}"))),
    }
}

/// `12.3 MiB`-style size for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `3h 12m`-style age for people.
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        // Not `0s` for a short interval (`--min-interval-hours 0.0001`):
        // milliseconds, rounded up, written as seconds `parse_duration` reads.
        0 if !duration.is_zero() => {
            let millis = duration.subsec_nanos().div_ceil(1_000_000);
            let shown = format!("{:.3}", f64::from(millis) / 1000.0);
            format!("{}s", shown.trim_end_matches('0').trim_end_matches('.'))
        }
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_take_the_documented_words_only() {
        for yes in ["true", "TRUE", "1", "yes", "On"] {
            assert_eq!(parse_switch(yes), Ok(true), "{yes}");
        }
        for no in ["false", "0", "no", "OFF", ""] {
            assert_eq!(parse_switch(no), Ok(false), "{no}");
        }
        for bad in ["maybe", "2", "y", "enable"] {
            assert!(parse_switch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(1_209_600)
        );
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("42").unwrap_err(),
            "42: give a unit: 90s, 30m, 24h, 7d"
        );
        assert_eq!(
            parse_duration("2 hours").unwrap_err(),
            "'2 hours' is not a duration: write the unit right after the number, one of s, m, h, d, w (90s, 30m, 2h, 7d)"
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("1y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
        // What human_duration prints is read back as it was.
        assert_eq!(human_duration(Duration::from_millis(360)), "0.36s");
        assert_eq!(human_duration(Duration::from_nanos(1)), "0.001s");
        assert_eq!(human_duration(Duration::from_nanos(999_999_999)), "1s");
        for secs in [0, 59, 61, 3700, 86_400, 129_600, 3_600_000] {
            let shown = human_duration(Duration::from_secs(secs));
            let back = parse_duration(&shown).unwrap();
            assert_eq!(human_duration(back), shown);
        }
        assert_eq!(
            parse_duration("1d12h").unwrap(),
            Duration::from_secs(129_600)
        );
        assert_eq!(
            parse_duration("1d 0h").unwrap(),
            Duration::from_secs(86_400)
        );
        assert!(parse_duration("1d 5").unwrap_err().contains("give a unit"));
        assert!(parse_duration("2h min_count").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("10KiB").unwrap(), 10 << 10);
        assert!(parse_size("100").unwrap_err().contains("give a unit"));
        assert_eq!(parse_size("100B").unwrap(), 100);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("1X").is_err());
        assert!(parse_size("G").is_err());
        // Binary, in any case, with or without `i`/`iB`; `GB` is ambiguous.
        for same in ["5G", "5g", "5Gi", "5GiB", "5gib"] {
            assert_eq!(parse_size(same).unwrap(), 5 << 30, "{same}");
        }
        for ambiguous in ["5GB", "5gb", "5MB", "1kB", "2TB"] {
            assert!(
                parse_size(ambiguous).unwrap_err().contains("is ambiguous"),
                "{ambiguous}"
            );
        }
        assert_eq!(
            parse_size("5GB").unwrap_err(),
            "'5GB' is ambiguous (GB is a power of 1000 to some tools, of 1024 to others): \
             write 5G or 5GiB for powers of 1024 (500M, 1G)"
        );
        assert!(parse_size("5Bi").is_err());
        assert!(parse_size("5iB").is_err());
        assert!(parse_size("5kibib").is_err());
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(Duration::from_secs(3700)), "1h 1m");
    }
}
