//! The exit codes dbbackup documents (README "Exit codes"), one name each.

/// How a run ends. The numbers are a contract: job scripts, the SLURM hooks and
/// monitoring read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: done, or deliberately skipped (nothing changed, not due).
    Success,
    /// 1: the command failed; `check`: the backup set is unhealthy.
    Failure,
    /// 2: bad arguments or configuration. The SLURM hooks stop a job at pre-job
    /// on it (as on the shell's 126 and 127): the job must not run unprotected.
    Usage,
    /// `check --format nagios`: the monitoring-plugins states.
    Nagios(Nagios),
    /// Stopped by signal N after cleaning up: the process then dies of N, which
    /// a shell shows as 128+N (SIGTERM: 143, SIGINT: 130).
    Signal(i32),
    /// `dbbackup run`: the work's own status (its exit code, or 128+N when
    /// signal N ended it), passed on as the job's.
    Work(u8),
}

/// The monitoring-plugins exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nagios {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    /// Anything that stops the check itself: bad arguments, an error.
    Unknown = 3,
}

impl ExitCode {
    /// The number: what a `Signal` run exits with when it cannot die of it.
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Nagios(state) => state as u8,
            ExitCode::Signal(signal) => (128 + signal) as u8,
            ExitCode::Work(status) => status,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_numbers() {
        assert_eq!(ExitCode::Success.code(), 0);
        assert_eq!(ExitCode::Failure.code(), 1);
        assert_eq!(ExitCode::Usage.code(), 2);
        assert_eq!(ExitCode::Nagios(Nagios::Warning).code(), 1);
        assert_eq!(ExitCode::Nagios(Nagios::Critical).code(), 2);
        assert_eq!(ExitCode::Nagios(Nagios::Unknown).code(), 3);
        assert_eq!(ExitCode::Signal(15).code(), 143);
        assert_eq!(ExitCode::Signal(2).code(), 130);
    }
}
