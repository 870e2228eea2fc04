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
    /// `max` is only the type's limit: say "at least MIN".
    open_ended: bool,
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
pub(crate) const MIN_COUNT: Limit = Limit::at_least("check.min_count", 0);
pub(crate) const MAX_SHRINK: Limit = Limit::real("check.max_shrink", 0.0, 100.0);

impl Limit {
    const fn whole(key: &'static str, min: u32, max: u32) -> Limit {
        Limit {
            key,
            min: min as f64,
            max: max as f64,
            whole: true,
            open_ended: false,
        }
    }

    const fn at_least(key: &'static str, min: u32) -> Limit {
        Limit {
            key,
            min: min as f64,
            max: u32::MAX as f64,
            whole: true,
            open_ended: true,
        }
    }

    const fn real(key: &'static str, min: f64, max: f64) -> Limit {
        Limit {
            key,
            min,
            max,
            whole: false,
            open_ended: false,
        }
    }

    /// "at least 1", "a whole number from 1 to 9", "a number from 0 to 100".
    pub(crate) fn range(&self) -> String {
        let kind = if self.whole {
            "a whole number"
        } else {
            "a number"
        };
        if self.open_ended {
            format!("at least {}", self.min)
        } else {
            format!("{kind} from {} to {}", self.min, self.max)
        }
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
            Err(format!("must be {}, not {value}", self.range_for(value)))
        }
    }

    /// The bound `value` breaks: "at least 1", or "at most 4294967295" past the
    /// type's limit of an open-ended range.
    fn range_for(&self, value: f64) -> String {
        if self.open_ended && value > self.max {
            format!("at most {}", self.max)
        } else if self.open_ended && self.whole && value.fract() != 0.0 {
            // "at least 1, not 2.5" would hide what is wrong.
            format!("a whole number, at least {}", self.min)
        } else {
            self.range()
        }
    }

    /// Parse a flag's or environment variable's text (`%` allowed after a percentage).
    pub(crate) fn parse(&self, text: &str) -> Result<f64, String> {
        let number = text.trim().trim_end_matches('%');
        match number.parse::<f64>() {
            Ok(value) => self
                .check(value)
                .map_err(|_| format!("must be {}, not '{text}'", self.range_for(value))),
            Err(_) => Err(format!(
                "'{text}' is not a number; must be {}",
                self.range()
            )),
        }
    }

    /// A clap value parser for the flag (and its environment variable).
    pub(crate) fn parser(
        self,
    ) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
        move |text| self.parse(text)
    }

    /// The config-file key, range checked: `Err` names the key.
    pub(crate) fn file_value(&self, value: Option<f64>) -> Result<Option<f64>, String> {
        value
            .map(|value| self.check(value).map_err(|e| format!("{} {e}", self.key)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_range() {
        assert_eq!(
            MAX_BACKUPS.parse("-1").unwrap_err(),
            "must be at least 1, not '-1'"
        );
        assert_eq!(
            MIN_INTERVAL_HOURS.parse("1e20").unwrap_err(),
            "must be a number from 0 to 876000, not '1e20'"
        );
        assert_eq!(
            THREADS.parse("100000").unwrap_err(),
            "must be a whole number from 0 to 64, not '100000'"
        );
        assert_eq!(
            MAX_BACKUPS.parse("4294967296").unwrap_err(),
            "must be at most 4294967295, not '4294967296'"
        );
        assert!(COMPRESSION_LEVEL.parse("1.5").is_err());
        assert_eq!(
            MAX_BACKUPS.parse("2.5").unwrap_err(),
            "must be a whole number, at least 1, not '2.5'"
        );
        assert!(MIN_INTERVAL_HOURS.parse("NaN").is_err());
        assert_eq!(MAX_SHRINK.parse("25%"), Ok(25.0));
        assert_eq!(BUSY_TIMEOUT_SECONDS.parse("30"), Ok(30.0));
        assert_eq!(
            MAX_SHRINK.file_value(Some(200.0)).unwrap_err(),
            "check.max_shrink must be a number from 0 to 100, not 200"
        );
    }
}
