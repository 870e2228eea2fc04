//! tracing to stderr, one line per event, each carrying time, job tag and host,
//! so lines read back from `slrm_logs/` say which job wrote them.

use std::fmt;
use std::io::{self, IsTerminal};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::slurm::job::JobContext;

/// The job tag once SLURM has said what this job is (`slurm::identity`): an
/// inherited array variable must not tag a plain job's lines.
static DECIDED_TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// From now on, log lines carry `tag`.
pub(crate) fn retag(tag: &str) {
    let _ = DECIDED_TAG.set(tag.to_string());
}

/// The target of an event that says what the command's report line on stdout
/// says too (`published …`, `restored … into …`): written to a log (stderr
/// to a file, a job's output) and with -v, but not to a terminal that also
/// shows the report, where the user would read it twice.
pub(crate) const REPORTED: &str = "dbbackup::reported";

struct LineFormat {
    job: String,
    host: String,
    /// Other crates' events below WARN are shown only with -v: object_store's
    /// "backing off, retry 2 of 4" lines are detail, the error line says how it ended.
    others_from: Level,
    /// Leave out `REPORTED` events: stdout and stderr are one terminal, no -v.
    reported_on_screen: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if *meta.level() > self.others_from && !meta.target().starts_with("dbbackup") {
            return Ok(());
        }
        if self.reported_on_screen && meta.target() == REPORTED {
            return Ok(());
        }
        // The summary log's stamp: a fixed width, so the columns line up.
        let now = crate::summary_log::stamp(jiff::Timestamp::now());
        let mut fields = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut fields), event)?;
        // A message may quote a path or SQLite text with newlines: keep one event, one line.
        let fields = fields.replace('\n', "\\n").replace('\r', "\\r");
        writeln!(
            writer,
            "{now} {level:>5} job={job} host={host}: {fields}",
            level = event.metadata().level(),
            job = DECIDED_TAG.get().unwrap_or(&self.job),
            host = self.host,
        )
    }
}

/// `quiet`: warnings and errors only; `verbose` 1: debug; 2+: trace.
pub(crate) fn init(job: &JobContext, quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => Level::WARN,
        (false, 0) => Level::INFO,
        (false, 1) => Level::DEBUG,
        (false, _) => Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        // Its report of a failed write is an `eprintln!`, which panics when stderr
        // is a closed pipe or on a full disk: a lost log line must not stop the work.
        .log_internal_errors(false)
        .with_max_level(level)
        .with_ansi(false)
        .event_format(LineFormat {
            job: job.tag.clone(),
            host: job.host.clone(),
            others_from: if verbose == 0 { Level::WARN } else { level },
            // With --quiet there is no report line: the error line is all there is.
            reported_on_screen: !quiet
                && verbose == 0
                && io::stdout().is_terminal()
                && io::stderr().is_terminal(),
        })
        .try_init();
}
