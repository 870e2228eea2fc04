//! tracing to stderr, one line per event, each carrying time, job tag and host,
//! so lines read back from `slrm_logs/` say which job wrote them.

use std::fmt;
use std::io;

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

struct LineFormat {
    job: String,
    host: String,
    /// Other crates' events below WARN are shown only with -v: object_store's
    /// "backing off, retry 2 of 4" lines are detail, the error line says how it ended.
    others_from: Level,
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
        let now = jiff::Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .unwrap_or(jiff::Timestamp::now());
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
        .with_max_level(level)
        .with_ansi(false)
        .event_format(LineFormat {
            job: job.tag.clone(),
            host: job.host.clone(),
            others_from: if verbose == 0 { Level::WARN } else { level },
        })
        .try_init();
}
