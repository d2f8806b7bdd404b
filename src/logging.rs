//! Log set-up with `tracing`: JSON lines (default) or a human format for a terminal, level from
//! config unless `RUST_LOG` is set. What is logged is chosen at each call site; nothing logs
//! credentials, gateway keys, phone numbers, emails or transcripts.
//!
//! One guard sits above every level setting: Pingora's TRACE events print raw request headers
//! (client `Authorization`, vendor credentials), so TRACE from `pingora*` targets is never
//! emitted, even under `RUST_LOG=trace`.

use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Installs the global subscriber writing to stdout. Calling it twice keeps the first.
pub fn init(format: &str, level: &str) {
    init_with(format, level, std::io::stdout);
}

/// Like [`init`], with another writer (tests capture logs this way). `RUST_LOG` wins over
/// `level` when set.
pub fn init_with<W>(format: &str, level: &str, writer: W)
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
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(no_header_dumps).with_filter(filter))
        .try_init();
}
