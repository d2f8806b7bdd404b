//! Log set-up with `tracing`: JSON lines (default) or a human format for a terminal, level from
//! config unless `RUST_LOG` is set. What is logged is chosen at each call site; nothing logs
//! credentials, gateway keys, phone numbers, emails or transcripts.
//!
//! One guard sits above every level setting: Pingora's TRACE events print raw request headers
//! (client `Authorization`, vendor credentials), so TRACE from `pingora*` targets is never
//! emitted, even under `RUST_LOG=trace`.
//!
//! Lines are written to stdout by a thread of their own (tracing-appender's non-blocking
//! writer): a request's log line is queued, not written, on the Pingora worker thread that
//! served it, so a slow log pipe does not stall requests. The queue holds 128k lines; past that
//! writers wait (no line is dropped). Dropping the [`LogGuard`] flushes what is queued.

use tracing_subscriber::filter::{filter_fn, EnvFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Keeps the log writer thread and the tracer; dropping it writes out the lines still queued
/// and exports the spans still queued.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    // Dropped in this order: the tracer's last spans, then the log lines.
    _tracing: crate::telemetry::Tracing,
    _writer: tracing_appender::non_blocking::WorkerGuard,
}

/// Installs the global subscriber writing to stdout from a writer thread, with the tracing
/// layer `[tracing]` asks for. Calling it twice keeps the first.
pub fn init(format: &str, level: &str, tracing: &crate::config::TracingSettings) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("callgate-log")
        .finish(std::io::stdout());
    let tracing = crate::telemetry::provider(tracing);
    init_with(format, level, writer, &tracing);
    LogGuard {
        _tracing: tracing,
        _writer: guard,
    }
}

/// Like [`init`], with another writer (tests capture logs this way) and a tracer the caller
/// keeps. `RUST_LOG` wins over `level` when set. Request spans (target
/// [`crate::telemetry::TARGET`]) reach the tracer whatever the level; the log does not format
/// them (that cost a quarter of a cache hit's throughput, measured): the request's own line
/// carries its `trace_id`.
pub fn init_with<W>(format: &str, level: &str, writer: W, tracing: &crate::telemetry::Tracing)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let no_header_dumps = filter_fn(|meta| {
        !(*meta.level() == tracing::Level::TRACE && meta.target().starts_with("pingora"))
    });
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let layer = match format {
        "pretty" => fmt
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .boxed(),
        _ => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    };
    // A `Targets` filter, not a closure: it tells every callsite once whether it is wanted, so
    // the level's fast check still skips Pingora's debug and trace events (with a closure the
    // maximum level became TRACE and each of them was looked at: a third of a cache hit's
    // throughput, measured).
    let request_spans = Targets::new().with_target(crate::telemetry::TARGET, tracing::Level::INFO);
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(no_header_dumps).with_filter(filter))
        .with(tracing.layer().with_filter(request_spans))
        .try_init();
}
