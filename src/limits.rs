//! The range of every numeric setting, in one place. Flags and environment
//! variables (through clap's value parsers, [`Limit::parser`]) and the config
//! file (in `config`) are all checked against this table, so no value can reach code that would overflow or panic,
//! and every refusal names the setting and its range.

/// One numeric setting's accepted values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    /// The config-file key (flags are the same words with dashes).
    pub key: &'static str,
    pub min: f64,
    pub max: f64,
    pub whole: bool,
    /// A percentage: a flag may end in `%`.
    percent: bool,
}

pub(crate) const COMPRESSION_LEVEL: Limit = Limit::whole("compression_level", 1, 9);
pub(crate) const MAX_BACKUPS: Limit = Limit::at_least("max_backups", 1);
pub(crate) const KEEP_DAILY: Limit = Limit::at_least("keep_daily", 0);
pub(crate) const KEEP_WEEKLY: Limit = Limit::at_least("keep_weekly", 0);
/// At least 1: a restore reports where the replaced content went, and that copy
/// must still exist after the command.
pub(crate) const KEEP_PRE_RESTORE: Limit = Limit::at_least("keep_pre_restore", 1);
/// Diffs after each full backup; a thousand is far past any use (each diff grows,
/// and one larger than half its full backup becomes a full backup anyway).
pub(crate) const DIFF_BACKUPS: Limit = Limit::whole("diff_backups", 0, 1_000);
/// A century: beyond it the interval means "never", and durations overflow.
pub(crate) const MIN_INTERVAL_HOURS: Limit = Limit::real("min_interval_hours", 0.0, 876_000.0);
/// A week: SQLite's busy timeout is kept in milliseconds in a C int.
pub(crate) const BUSY_TIMEOUT_SECONDS: Limit = Limit::whole("busy_timeout_seconds", 0, 604_800);
pub(crate) const LOCK_TIMEOUT_SECONDS: Limit = Limit::whole("lock_timeout_seconds", 0, 604_800);
/// An hour: it bounds the time after SLURM's TERM, which KillWait (30 s by
/// default) keeps short; more than that is surely a typo.
pub(crate) const TERM_GRACE_SECONDS: Limit = Limit::whole("term_grace_seconds", 1, 3_600);
/// Each thread keeps two 1 MiB blocks in flight; beyond this, memory grows with
/// no gain (compression is already faster than the disk).
pub(crate) const THREADS: Limit = Limit::whole("threads", 0, 64);
pub(crate) const REMOTE_MAX_BACKUPS: Limit = Limit::at_least("remote_max_backups", 1);
/// A day: a stalled request and its retries; more is a typo.
pub(crate) const REMOTE_TIMEOUT_SECONDS: Limit = Limit::whole("remote_timeout_seconds", 1, 86_400);
pub(crate) const MIN_COUNT: Limit = Limit::at_least("check.min_count", 0);
pub(crate) const MAX_SHRINK: Limit = Limit::percent("check.max_shrink");

/// Every numeric setting.
pub(crate) const ALL: [Limit; 13] = [
    COMPRESSION_LEVEL,
    MAX_BACKUPS,
    KEEP_DAILY,
    KEEP_WEEKLY,
    KEEP_PRE_RESTORE,
    DIFF_BACKUPS,
    MIN_INTERVAL_HOURS,
    BUSY_TIMEOUT_SECONDS,
    LOCK_TIMEOUT_SECONDS,
    TERM_GRACE_SECONDS,
    THREADS,
    MIN_COUNT,
    MAX_SHRINK,
];

impl Limit {
    const fn whole(key: &'static str, min: u32, max: u32) -> Limit {
        Limit {
            key,
            min: min as f64,
            max: max as f64,
            whole: true,
            percent: false,
        }
    }

    const fn at_least(key: &'static str, min: u32) -> Limit {
        Limit {
            key,
            min: min as f64,
            max: u32::MAX as f64,
            whole: true,
            percent: false,
        }
    }

    const fn real(key: &'static str, min: f64, max: f64) -> Limit {
        Limit {
            key,
            min,
            max,
            whole: false,
            percent: false,
        }
    }

    const fn percent(key: &'static str) -> Limit {
        Limit {
            percent: true,
            ..Limit::real(key, 0.0, 100.0)
        }
    }

    /// "a whole number from 1 to 9", "a number from 0 to 100": one form for
    /// every setting, with its real bounds (an open-ended count's upper bound
    /// is the type's, 4294967295).
    pub(crate) fn range(&self) -> String {
        let kind = if self.whole {
            "a whole number"
        } else {
            "a number"
        };
        format!("{kind} from {} to {}", self.min, self.max)
    }

    /// `Err("must be ..., not X")` unless `value` is in range.
    pub(crate) fn check(&self, value: f64) -> Result<f64, String> {
        let in_range = value.is_finite()
            && value >= self.min
            && value <= self.max
            && (!self.whole || value.fract() == 0.0);
        if in_range {
            Ok(value)
        } else {
            Err(format!(
                "must be {}, not {}",
                self.range(),
                number_text(value)
            ))
        }
    }

    /// A whole-number setting from the file's integer: the `u32` the code uses.
    pub(crate) fn check_whole(&self, value: i128) -> Result<u32, String> {
        debug_assert!(self.whole, "{} is not a whole-number setting", self.key);
        match u32::try_from(value) {
            Ok(whole) if f64::from(whole) >= self.min && f64::from(whole) <= self.max => Ok(whole),
            _ => Err(format!("must be {}, not {value}", self.range())),
        }
    }

    /// Parse a flag's or environment variable's number (`%` allowed after a percentage).
    pub(crate) fn parse(&self, text: &str) -> Result<f64, String> {
        let trimmed = text.trim();
        let number = if self.percent {
            trimmed.strip_suffix('%').unwrap_or(trimmed)
        } else {
            trimmed
        };
        match number.parse::<f64>() {
            Ok(value) => self
                .check(value)
                .map_err(|_| format!("must be {}, not '{text}'", self.range())),
            Err(_) => Err(format!(
                "'{text}' is not a number; must be {}",
                self.range()
            )),
        }
    }

    /// Parse a flag's or environment variable's whole number: digits only, so
    /// `6%`, `6.0` and `1e3` are refused, as a file's `6.0` is.
    pub(crate) fn parse_whole(&self, text: &str) -> Result<u32, String> {
        let number = text.trim();
        let digits = number.strip_prefix(['-', '+']).unwrap_or(number);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            // Past i128 is past every range: the message names the bound.
            let value = number.parse::<i128>().unwrap_or(i128::MAX);
            return self
                .check_whole(value)
                .map_err(|_| format!("must be {}, not '{text}'", self.range()));
        }
        if number.parse::<f64>().is_ok() {
            Err(format!("must be {}, not '{text}'", self.range()))
        } else {
            Err(format!(
                "'{text}' is not a number; must be {}",
                self.range()
            ))
        }
    }

    /// A clap value parser for a number flag (and its environment variable).
    pub(crate) fn parser(
        self,
    ) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
        move |text| self.parse(text)
    }

    /// A clap value parser for a whole-number flag (and its environment variable).
    pub(crate) fn whole_parser(
        self,
    ) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync + 'static {
        move |text| self.parse_whole(text)
    }

    /// What a whole-number setting accepts, for a YAML type error.
    pub(crate) fn expecting_whole(&self) -> String {
        self.range()
    }
}

/// A number as a message shows it: `1e300` stays short, `200` has no `.0`.
pub(crate) fn number_text(value: f64) -> String {
    if value.is_finite() && value != 0.0 && !(1e-4..1e16).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_range() {
        assert_eq!(
            MAX_BACKUPS.parse_whole("-1").unwrap_err(),
            "must be a whole number from 1 to 4294967295, not '-1'"
        );
        assert_eq!(
            MIN_INTERVAL_HOURS.parse("1e20").unwrap_err(),
            "must be a number from 0 to 876000, not '1e20'"
        );
        assert_eq!(
            THREADS.parse_whole("100000").unwrap_err(),
            "must be a whole number from 0 to 64, not '100000'"
        );
        assert_eq!(
            MAX_BACKUPS.parse_whole("4294967296").unwrap_err(),
            "must be a whole number from 1 to 4294967295, not '4294967296'"
        );
        assert!(COMPRESSION_LEVEL.parse_whole("1.5").is_err());
        assert_eq!(
            MAX_BACKUPS.parse_whole("2.5").unwrap_err(),
            "must be a whole number from 1 to 4294967295, not '2.5'"
        );
        assert!(MIN_INTERVAL_HOURS.parse("NaN").is_err());
        assert_eq!(MAX_SHRINK.parse("25%"), Ok(25.0));
        assert!(MIN_INTERVAL_HOURS.parse("2%").is_err());
        assert_eq!(BUSY_TIMEOUT_SECONDS.parse_whole("30"), Ok(30));
        assert_eq!(
            MAX_SHRINK.check(200.0).unwrap_err(),
            "must be a number from 0 to 100, not 200"
        );
        assert_eq!(
            MIN_INTERVAL_HOURS.check(1e300).unwrap_err(),
            "must be a number from 0 to 876000, not 1e300"
        );
    }

    #[test]
    fn whole_numbers_are_digits_in_range() {
        assert_eq!(COMPRESSION_LEVEL.parse_whole(" 6 "), Ok(6));
        for text in ["6%", "6.0", "1e0", "0x6"] {
            assert!(COMPRESSION_LEVEL.parse_whole(text).is_err(), "{text}");
        }
        assert_eq!(
            COMPRESSION_LEVEL.parse_whole("6%").unwrap_err(),
            "'6%' is not a number; must be a whole number from 1 to 9"
        );
        assert_eq!(
            COMPRESSION_LEVEL.parse_whole("6.0").unwrap_err(),
            "must be a whole number from 1 to 9, not '6.0'"
        );
        assert_eq!(
            MAX_BACKUPS.parse_whole("1e3").unwrap_err(),
            "must be a whole number from 1 to 4294967295, not '1e3'"
        );
        assert_eq!(
            MAX_BACKUPS
                .parse_whole("99999999999999999999999999999999999999999")
                .unwrap_err(),
            "must be a whole number from 1 to 4294967295, not '99999999999999999999999999999999999999999'"
        );
        assert_eq!(
            COMPRESSION_LEVEL.check_whole(-1).unwrap_err(),
            "must be a whole number from 1 to 9, not -1"
        );
        assert_eq!(KEEP_DAILY.check_whole(0), Ok(0));
    }
}
